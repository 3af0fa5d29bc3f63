/*
 * imap_fetch.c — FETCH attributes (RFC 3501 §6.4.5, RFC 9051 §6.4.5), BINARY (RFC 3516),
 * MODSEQ and the CHANGEDSINCE / VANISHED modifiers (RFC 7162), EMAILID/THREADID (RFC 8474).
 *
 * Each attribute arrives as one atom, because the tokenizer reads FETCH atoms with their
 * "[...]" whole: "BODY.PEEK[1.2.HEADER.FIELDS (From "X-A b")]<0.2048>". This file takes
 * such an atom apart with a cursor that never passes its NUL, checking the section grammar
 * strictly (MIME only after a part number, BINARY sections only part numbers, partials
 * only on BODY[...] and BINARY[...]).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/imap_parse.h"

struct fp {
    struct imap_arena *a;
    char *err;
    size_t errlen;
};

static const struct {
    const char *name;
    enum imap_fetch_type type;
} simple_items[] = {
    {"FLAGS", IMAP_FETCH_FLAGS},
    {"UID", IMAP_FETCH_UID},
    {"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
    {"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE},
    {"RFC822", IMAP_FETCH_RFC822},
    {"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER},
    {"RFC822.TEXT", IMAP_FETCH_RFC822_TEXT},
    {"ENVELOPE", IMAP_FETCH_ENVELOPE},
    {"BODY", IMAP_FETCH_BODY},
    {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
    {"MODSEQ", IMAP_FETCH_MODSEQ},
    {"EMAILID", IMAP_FETCH_EMAILID},
    {"THREADID", IMAP_FETCH_THREADID},
};

static int bad(struct fp *f, const char *what, const char *item)
{
    imap_seterr(f->err, f->errlen, "Invalid FETCH item %.60s: %s", item, what);
    return -1;
}

/* Case-insensitive "does *pp start with word", advancing past it when it does. */
static bool eat(const char **pp, const char *word)
{
    size_t n = strlen(word);

    if (strncasecmp(*pp, word, n) != 0)
        return false;
    *pp += n;
    return true;
}

/* Reads decimal digits at *pp into a uint64 (<= number64) and advances. */
static bool eat_number(const char **pp, uint64_t *v)
{
    size_t n = strspn(*pp, "0123456789");

    if (imap_parse_number64(*pp, n, v) < 0)
        return false;
    *pp += n;
    return true;
}

/* section-part: nz-number *("." nz-number); stops before a "." that is not followed by a
 * digit (the section-text that follows). */
static int parse_parts(struct fp *f, const char **pp, struct imap_section *sec, const char *it)
{
    const char *p = *pp;

    while (*p >= '0' && *p <= '9') {
        size_t n = strspn(p, "0123456789");
        if (sec->nparts >= IMAP_SECTION_MAX_PART)
            return bad(f, "too many part numbers", it);
        if (imap_parse_nz_number(p, n, &sec->part[sec->nparts++]) < 0)
            return bad(f, "invalid part number", it);
        p += n;
        if (p[0] != '.' || p[1] < '0' || p[1] > '9')
            break;
        p++;
    }
    *pp = p;
    return 0;
}

static bool is_field_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ':';
}

/* One header-fld-name: an atom or a quoted string (literals are not supported inside the
 * bracketed atom; the tokenizer refuses them). */
static const char *parse_field(struct fp *f, const char **pp)
{
    const char *p = *pp;
    char buf[256];
    size_t n = 0;

    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1] != '"' && p[1] != '\\')
                return NULL;
            if (*p == '\\')
                p++;
            if (n + 1 >= sizeof(buf) || !is_field_char((unsigned char)*p))
                return NULL;
            buf[n++] = *p;
        }
        if (*p++ != '"')
            return NULL;
    } else {
        while (*p && !strchr(" ()\"{\\]%*", *p) && is_field_char((unsigned char)*p)) {
            if (n + 1 >= sizeof(buf))
                return NULL;
            buf[n++] = *p++;
        }
    }
    if (n == 0)
        return NULL;
    *pp = p;
    return imap_arena_strndup(f->a, buf, n);
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")" */
static int parse_fields(struct fp *f, const char **pp, struct imap_section *sec, const char *it)
{
    const char *p = *pp;
    size_t cap = 1;

    if (*p++ != ' ' || *p++ != '(')
        return bad(f, "header list expected", it);
    for (const char *q = p; *q && *q != ')'; q++)
        cap += *q == ' ';
    sec->fields = imap_arena_alloc(f->a, cap * sizeof(*sec->fields));
    if (!sec->fields)
        return bad(f, "out of memory", it);
    for (;;) {
        const char *name = parse_field(f, &p);
        if (!name || sec->nfields >= cap)
            return bad(f, "invalid header field name", it);
        sec->fields[sec->nfields++] = name;
        if (*p == ')')
            break;
        if (*p++ != ' ')
            return bad(f, "invalid header list", it);
    }
    *pp = p + 1;
    return 0;
}

/* section-text after the part numbers (or alone). */
static int parse_section_text(struct fp *f, const char **pp, struct imap_section *sec,
                              const char *it)
{
    if (eat(pp, "HEADER.FIELDS.NOT")) {
        sec->text = IMAP_SECTION_HEADER_FIELDS_NOT;
        return parse_fields(f, pp, sec, it);
    }
    if (eat(pp, "HEADER.FIELDS")) {
        sec->text = IMAP_SECTION_HEADER_FIELDS;
        return parse_fields(f, pp, sec, it);
    }
    if (eat(pp, "HEADER")) {
        sec->text = IMAP_SECTION_HEADER;
    } else if (eat(pp, "TEXT")) {
        sec->text = IMAP_SECTION_TEXT;
    } else if (eat(pp, "MIME")) {
        if (sec->nparts == 0)
            return bad(f, "MIME needs a part number", it);
        sec->text = IMAP_SECTION_MIME;
    } else {
        return bad(f, "unknown section", it);
    }
    return 0;
}

/* "[" section "]" at *pp; binary sections hold part numbers only. */
static int parse_section(struct fp *f, const char **pp, struct imap_section *sec, bool binary,
                         const char *it)
{
    const char *p = *pp + 1;

    if (parse_parts(f, &p, sec, it) < 0)
        return -1;
    if (*p != ']') {
        if (binary)
            return bad(f, "BINARY sections are part numbers only", it);
        if (sec->nparts && *p++ != '.')
            return bad(f, "invalid section", it);
        if (parse_section_text(f, &p, sec, it) < 0)
            return -1;
    }
    if (*p != ']')
        return bad(f, "missing ']'", it);
    *pp = p + 1;
    return 0;
}

/* "<" number "." nz-number ">" */
static int parse_partial(struct fp *f, const char **pp, struct imap_fetch_item *item,
                         const char *it)
{
    const char *p = *pp + 1;

    if (!eat_number(&p, &item->offset) || *p++ != '.' || !eat_number(&p, &item->count) ||
        item->count == 0 || *p++ != '>')
        return bad(f, "invalid partial <offset.count>", it);
    item->partial = true;
    *pp = p;
    return 0;
}

static int parse_sectioned(struct fp *f, const char *s, struct imap_fetch_item *item)
{
    const char *p = s;
    bool binary;

    if ((item->peek = eat(&p, "BODY.PEEK[")) || eat(&p, "BODY[")) {
        item->type = IMAP_FETCH_BODY_SECTION;
    } else if ((item->peek = eat(&p, "BINARY.PEEK[")) || eat(&p, "BINARY[")) {
        item->type = IMAP_FETCH_BINARY;
    } else if (eat(&p, "BINARY.SIZE[")) {
        item->type = IMAP_FETCH_BINARY_SIZE;
    } else {
        imap_seterr(f->err, f->errlen, "Unknown FETCH item %.60s", s);
        return -1;
    }
    binary = item->type != IMAP_FETCH_BODY_SECTION;
    p--; /* back on '[' */
    if (parse_section(f, &p, &item->section, binary, s) < 0)
        return -1;
    if (*p == '<' && item->type != IMAP_FETCH_BINARY_SIZE && parse_partial(f, &p, item, s) < 0)
        return -1;
    if (*p)
        return bad(f, "unexpected text after the section", s);
    return 0;
}

static int parse_item(struct fp *f, const struct imap_arg *arg, struct imap_fetch_item *item)
{
    if (arg->type != IMAP_ARG_ATOM) {
        imap_seterr(f->err, f->errlen, "Invalid FETCH item");
        return -1;
    }
    memset(item, 0, sizeof(*item));
    for (size_t i = 0; i < sizeof(simple_items) / sizeof(*simple_items); i++) {
        if (strcasecmp(arg->str, simple_items[i].name) == 0) {
            item->type = simple_items[i].type;
            return 0;
        }
    }
    return parse_sectioned(f, arg->str, item);
}

/* ALL / FAST / FULL (RFC 3501 §6.4.5); returns the count, 0 if not a macro. */
static size_t expand_macro(const struct imap_arg *arg, struct imap_fetch_item *items)
{
    static const enum imap_fetch_type full[] = {IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE,
                                                IMAP_FETCH_RFC822_SIZE, IMAP_FETCH_ENVELOPE,
                                                IMAP_FETCH_BODY};
    size_t n = 0;

    if (arg->type != IMAP_ARG_ATOM)
        return 0;
    if (strcasecmp(arg->str, "FAST") == 0)
        n = 3;
    else if (strcasecmp(arg->str, "ALL") == 0)
        n = 4;
    else if (strcasecmp(arg->str, "FULL") == 0)
        n = 5;
    for (size_t i = 0; i < n; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        items[i].type = full[i];
    }
    return n;
}

/* (CHANGEDSINCE n [VANISHED]) — RFC 7162 §3.1.4, §3.2.6. */
static int parse_modifiers(struct fp *f, const struct imap_arg *mods, bool uid,
                           struct imap_fetch *out)
{
    const struct imap_arg *m = mods->list;

    if (mods->type != IMAP_ARG_LIST || mods->count == 0)
        goto bad;
    for (size_t i = 0; i < mods->count; i++) {
        if (imap_arg_is_atom(&m[i], "CHANGEDSINCE") && !out->changedsince && i + 1 < mods->count &&
            m[i + 1].type == IMAP_ARG_ATOM &&
            imap_parse_number64(m[i + 1].str, m[i + 1].len, &out->since) == 0) {
            out->changedsince = true;
            i++;
        } else if (imap_arg_is_atom(&m[i], "VANISHED") && !out->vanished) {
            out->vanished = true;
        } else {
            goto bad;
        }
    }
    if (out->vanished && (!uid || !out->changedsince)) {
        imap_seterr(f->err, f->errlen, "VANISHED needs UID FETCH and CHANGEDSINCE");
        return -1;
    }
    return 0;
bad:
    imap_seterr(f->err, f->errlen, "Invalid FETCH modifiers");
    return -1;
}

static bool has_type(const struct imap_fetch *out, enum imap_fetch_type t)
{
    for (size_t i = 0; i < out->count; i++)
        if (out->items[i].type == t)
            return true;
    return false;
}

static bool item_sets_seen(const struct imap_fetch_item *it)
{
    return ((it->type == IMAP_FETCH_BODY_SECTION || it->type == IMAP_FETCH_BINARY) && !it->peek) ||
           it->type == IMAP_FETCH_RFC822 || it->type == IMAP_FETCH_RFC822_TEXT;
}

int imap_fetch_parse(struct imap_arena *a, const struct imap_arg *att, const struct imap_arg *mods,
                     bool uid, struct imap_fetch *out, char *err, size_t errlen)
{
    struct fp f = {a, err, errlen};
    const struct imap_arg *list = att->type == IMAP_ARG_LIST ? att->list : att;
    size_t n = att->type == IMAP_ARG_LIST ? att->count : 1;

    memset(out, 0, sizeof(*out));
    if (n == 0) {
        imap_seterr(err, errlen, "Empty FETCH item list");
        return -1;
    }
    /* Room for the list (or a macro's 5) plus the MODSEQ that CHANGEDSINCE implies. */
    out->items = imap_arena_alloc(a, ((n > 5 ? n : 5) + 1) * sizeof(*out->items));
    if (!out->items) {
        imap_seterr(err, errlen, "Out of memory");
        return -1;
    }
    if (att->type != IMAP_ARG_LIST)
        out->count = expand_macro(att, out->items);
    for (size_t i = 0; out->count == 0 && i < n; i++) {
        if (parse_item(&f, &list[i], &out->items[i]) < 0)
            return -1;
    }
    if (out->count == 0)
        out->count = n;
    if (mods && parse_modifiers(&f, mods, uid, out) < 0)
        return -1;
    if (out->changedsince && !has_type(out, IMAP_FETCH_MODSEQ))
        out->items[out->count++].type = IMAP_FETCH_MODSEQ; /* RFC 7162 §3.1.4.1 */
    for (size_t i = 0; i < out->count; i++)
        out->sets_seen |= item_sets_seen(&out->items[i]);
    return 0;
}

/* ---- response names ------------------------------------------------------------------- */

struct nbuf {
    char *buf;
    size_t size, pos;
};

static void nput(struct nbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, b->pos++)
        if (b->pos + 1 < b->size)
            b->buf[b->pos] = s[i];
}

static void nputs(struct nbuf *b, const char *s)
{
    nput(b, s, strlen(s));
}

static void section_name(struct nbuf *b, const struct imap_section *sec)
{
    static const char *const texts[] = {"",     "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
                                        "TEXT", "MIME"};
    char num[16];

    for (size_t i = 0; i < sec->nparts; i++) {
        int n = snprintf(num, sizeof(num), "%s%u", i ? "." : "", sec->part[i]);
        nput(b, num, (size_t)n);
    }
    if (sec->text == IMAP_SECTION_ALL)
        return;
    if (sec->nparts)
        nputs(b, ".");
    nputs(b, texts[sec->text]);
    if (sec->nfields == 0)
        return;
    nputs(b, " (");
    for (size_t i = 0; i < sec->nfields; i++) {
        char q[600];
        size_t n = imap_astring_to_buf(sec->fields[i], strlen(sec->fields[i]), 0, q, sizeof(q));
        if (i)
            nputs(b, " ");
        nput(b, q, n < sizeof(q) ? n : sizeof(q) - 1);
    }
    nputs(b, ")");
}

size_t imap_fetch_item_name(const struct imap_fetch_item *it, char *buf, size_t size)
{
    struct nbuf b = {buf, size, 0};
    char num[32];

    if (it->type == IMAP_FETCH_BODY_SECTION || it->type == IMAP_FETCH_BINARY ||
        it->type == IMAP_FETCH_BINARY_SIZE) {
        nputs(&b, it->type == IMAP_FETCH_BODY_SECTION ? "BODY["
                  : it->type == IMAP_FETCH_BINARY     ? "BINARY["
                                                      : "BINARY.SIZE[");
        section_name(&b, &it->section);
        nputs(&b, "]");
        /* The response names only the origin of a partial (RFC 3501 §7.4.2). */
        if (it->partial) {
            int n = snprintf(num, sizeof(num), "<%llu>", (unsigned long long)it->offset);
            nput(&b, num, (size_t)n);
        }
    } else {
        for (size_t i = 0; i < sizeof(simple_items) / sizeof(*simple_items); i++)
            if (simple_items[i].type == it->type)
                nputs(&b, simple_items[i].name);
    }
    if (size)
        buf[b.pos < size ? b.pos : size - 1] = 0;
    return b.pos;
}
