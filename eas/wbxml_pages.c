/*
 * wbxml_pages.c — the name tables of the ActiveSync code pages: page and tag names for
 * XML renderings and logs, and the reverse lookup used by `polaris wbxml encode` and
 * the tests. Built from eas/wbxml_pages.def, like the constants of wbxml_tokens.h, so
 * the numbers and the names cannot drift apart.
 */
#include <string.h>

#include "eas/wbxml.h"

/* Tag names by page and token; NULL where the page leaves the token unassigned. */
static const char *const wbxml_names[EAS_PAGE_COUNT][64] = {
#define EAS_PAGE(num, id, name)
#define EAS_TOK(page, id, tok, name) [EAS_PAGE_##page][tok] = name,
#include "eas/wbxml_pages.def"
#undef EAS_PAGE
#undef EAS_TOK
};

static const char *const wbxml_page_names[EAS_PAGE_COUNT] = {
#define EAS_PAGE(num, id, name) [num] = name,
#define EAS_TOK(page, id, tok, name)
#include "eas/wbxml_pages.def"
#undef EAS_PAGE
#undef EAS_TOK
};

const char *wbxml_page_name(unsigned page)
{
    return page < EAS_PAGE_COUNT ? wbxml_page_names[page] : NULL;
}

const char *wbxml_tag_name(unsigned tag)
{
    unsigned page = EAS_TAG_PAGE(tag), tok = tag & 0xffu;

    if (page >= EAS_PAGE_COUNT || tok < 5 || tok > 0x3f)
        return NULL;
    return wbxml_names[page][tok];
}

int wbxml_page_lookup(const char *page_name)
{
    for (unsigned p = 0; p < EAS_PAGE_COUNT; p++)
        if (strcmp(wbxml_page_names[p], page_name) == 0)
            return (int)p;
    return -1;
}

int wbxml_tag_lookup(const char *page_name, const char *tag_name)
{
    int page = wbxml_page_lookup(page_name);

    if (page < 0)
        return -1;
    for (unsigned t = 5; t < 64; t++) {
        const char *n = wbxml_names[page][t];
        if (n != NULL && strcmp(n, tag_name) == 0)
            return (int)EAS_TAG(page, t);
    }
    return -1;
}
