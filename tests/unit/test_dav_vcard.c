/*
 * test_dav_vcard.c — the vCard module of dav/: parsing cards as real clients write them
 * (iOS/macOS, Thunderbird, DAVx5, eM Client), refusing invalid ones with the CardDAV
 * precondition a client sees, hostile input, the builder and folding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "dav/dav_vcard.h"

/* iOS 17 Contacts, as PUT to a CardDAV server (grouped EMAIL with an X-ABLabel, a folded
 * inline JPEG, Apple's lower-case "type" parameters). */
static const char ios_card[] =
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "PRODID:-//Apple Inc.//iPhone OS 17.1//EN\r\n"
    "N:Appleseed;Johnny;Q.;Dr.;Jr.\r\n"
    "FN:Dr. Johnny Q. Appleseed Jr.\r\n"
    "ORG:Apple Inc.;Engineering\r\n"
    "item1.EMAIL;type=INTERNET;type=pref:johnny@example.com\r\n"
    "item1.X-ABLabel:_$!<Other>!$_\r\n"
    "EMAIL;type=INTERNET;type=WORK:j.appleseed@work.example\r\n"
    "TEL;type=CELL;type=VOICE;type=pref:+1 (555) 010-0100\r\n"
    "item2.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;United States\r\n"
    "item2.X-ABADR:us\r\n"
    "NOTE:Met at WWDC\\, 2023.\\nLikes apples.\r\n"
    "BDAY;value=date:1980-06-01\r\n"
    "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAASABIAAD/4QBMRXhpZgAATU0AKgAAAAgAAYdpAAQ\r\n"
    " AAAABAAAAGgAAAAAAA6ABAAMAAAABAAEAAKACAAQAAAABAAAAEKADAAQAAAABAAAAEAAAAAD/7Q\r\n"
    " A4UGhvdG9zaG9wIDMuMAA4QklNBAQAAAAAAAA4QklNBCUAAAAAABDUHYzZjwCyBOmACZjs+EJ+\r\n"
    "X-ABUID:5AD380FD-B2DE-4261-BA99-DE1D1DB52FBE:ABPerson\r\n"
    "UID:5AD380FD-B2DE-4261-BA99-DE1D1DB52FBE\r\n"
    "END:VCARD\r\n";

/* macOS Contacts group card (CardDAV "group" as a vCard 3.0 with Apple extensions). */
static const char apple_group[] = "BEGIN:VCARD\r\n"
                                  "VERSION:3.0\r\n"
                                  "PRODID:-//Apple Inc.//Mac OS X 10.15.7//EN\r\n"
                                  "N:Family\r\n"
                                  "FN:Family\r\n"
                                  "X-ADDRESSBOOKSERVER-KIND:group\r\n"
                                  "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:1A0F7C3E-0001\r\n"
                                  "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:1A0F7C3E-0002\r\n"
                                  "REV:2024-01-01T10:00:00Z\r\n"
                                  "UID:B1C2D3E4-GROUP\r\n"
                                  "END:VCARD\r\n";

/* Thunderbird 115 (vCard 4.0, bare LF line ends as some builds send them). */
static const char tb_card[] =
    "BEGIN:VCARD\n"
    "VERSION:4.0\n"
    "EMAIL;PREF=1:jane@example.org\n"
    "EMAIL;TYPE=work:jane.doe@work.example\n"
    "FN:Jane Doe\n"
    "N:Doe;Jane;;;\n"
    "TEL;TYPE=cell;VALUE=TEXT:+49 170 1234567\n"
    "TEL;TYPE=\"work,voice\";VALUE=uri:tel:+49-30-1234\n"
    "NOTE:Line one\\nLine two\\, with comma\n"
    "BDAY;VALUE=DATE:19900215\n"
    "ANNIVERSARY:20150620\n"
    "ADR;TYPE=home;LABEL=\"Hauptstr. 1\\n10115 Berlin\":;;Hauptstr. 1;Berlin;;"
    "10115;Germany\n"
    "PHOTO:data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcS"
    "JAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\n"
    "UID:e9b0c7a2-5b8e-4a61-9d3b-2f6c1f0b7e11\n"
    "END:VCARD\n";

/* DAVx5 (ez-vcard) 4.0 group and member cards. */
static const char davx5_group[] = "BEGIN:VCARD\r\n"
                                  "VERSION:4.0\r\n"
                                  "PRODID:ez-vcard 0.11.3\r\n"
                                  "UID:urn:uuid:9b8d2c44-group\r\n"
                                  "KIND:group\r\n"
                                  "FN:Colleagues\r\n"
                                  "MEMBER:urn:uuid:0f3e-member-1\r\n"
                                  "MEMBER:urn:uuid:0f3e-member-2\r\n"
                                  "REV:20240101T120000Z\r\n"
                                  "END:VCARD\r\n";

static struct dav_vcard *parse_ok(const char *s)
{
    struct dav_vcard *v = NULL;
    const char *pre = NULL;
    char err[256];
    int rc = dav_vcard_parse(s, strlen(s), &v, &pre, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse failed: %s (%s)", err, pre ? pre : "-");
    assert_non_null(v);
    return v;
}

static const char *parse_bad(const char *s, size_t len)
{
    struct dav_vcard *v = (struct dav_vcard *)1;
    const char *pre = NULL;
    char err[256] = "";
    assert_int_equal(dav_vcard_parse(s, len, &v, &pre, err, sizeof(err)), -1);
    assert_null(v);
    assert_non_null(pre);
    assert_true(err[0] != '\0');
    return pre;
}

static const struct dav_vcard_prop *nth(const struct dav_vcard *v, const char *name, size_t n)
{
    size_t it = 0;
    const struct dav_vcard_prop *p;
    while ((p = dav_vcard_find(v, name, &it)))
        if (n-- == 0)
            return p;
    return NULL;
}

static void test_parse_ios(void **state)
{
    struct dav_vcard *v = parse_ok(ios_card);
    const struct dav_vcard_prop *p;

    assert_int_equal(dav_vcard_version(v), 3);
    assert_string_equal(dav_vcard_uid(v), "5AD380FD-B2DE-4261-BA99-DE1D1DB52FBE");
    assert_int_equal(dav_vcard_nprops(v), 15); /* BEGIN, VERSION, END not listed */
    p = dav_vcard_prop(v, 0);
    assert_string_equal(p->name, "PRODID");
    assert_null(p->group);
    assert_null(dav_vcard_prop(v, 15));

    p = nth(v, "EMAIL", 0);
    assert_string_equal(p->group, "item1");
    assert_int_equal(p->nparams, 2);
    assert_string_equal(p->params[0].name, "TYPE"); /* parameter names upper-cased */
    assert_string_equal(p->params[0].value, "INTERNET");
    assert_string_equal(p->params[1].value, "pref");
    assert_true(dav_vcard_has_type(p, "PREF"));
    assert_false(dav_vcard_has_type(p, "WORK"));
    assert_string_equal(p->value, "johnny@example.com");
    p = nth(v, "X-ABLABEL", 0);
    assert_string_equal(p->group, "item1");
    assert_string_equal(p->value, "_$!<Other>!$_");

    p = nth(v, "PHOTO", 0);
    assert_string_equal(dav_vcard_param_get(p, "encoding"), "b");
    assert_string_equal(dav_vcard_param_get(p, "TYPE"), "JPEG");
    assert_null(dav_vcard_param_get(p, "VALUE"));
    /* unfolded: the three physical lines joined, leading spaces removed */
    assert_int_equal(strlen(p->value), 59 + 75 + 74);
    assert_null(strchr(p->value, ' '));
    assert_memory_equal(p->value + 59, "AAAABAAAAGgAA", 13);

    p = nth(v, "NOTE", 0);
    assert_string_equal(p->value, "Met at WWDC\\, 2023.\\nLikes apples."); /* raw */
    char *u = dav_vcard_unescape(p->value);
    assert_string_equal(u, "Met at WWDC, 2023.\nLikes apples.");
    free(u);

    char *parts[7];
    p = nth(v, "ADR", 0);
    assert_int_equal(dav_vcard_split(p->value, ';', parts, 7), 7);
    assert_string_equal(parts[0], "");
    assert_string_equal(parts[2], "1 Infinite Loop");
    assert_string_equal(parts[6], "United States");
    for (int i = 0; i < 7; i++)
        free(parts[i]);
    p = nth(v, "N", 0);
    assert_int_equal(dav_vcard_split(p->value, ';', parts, 2), 2); /* the rest dropped */
    assert_string_equal(parts[0], "Appleseed");
    assert_string_equal(parts[1], "Johnny");
    free(parts[0]);
    free(parts[1]);
    dav_vcard_free(v);
}

static void test_parse_others(void **state)
{
    struct dav_vcard *v = parse_ok(apple_group);
    assert_string_equal(dav_vcard_uid(v), "B1C2D3E4-GROUP");
    assert_string_equal(nth(v, "X-ADDRESSBOOKSERVER-KIND", 0)->value, "group");
    assert_string_equal(nth(v, "X-ADDRESSBOOKSERVER-MEMBER", 1)->value, "urn:uuid:1A0F7C3E-0002");
    dav_vcard_free(v);

    v = parse_ok(tb_card);
    const struct dav_vcard_prop *p;
    assert_int_equal(dav_vcard_version(v), 4);
    assert_string_equal(dav_vcard_uid(v), "e9b0c7a2-5b8e-4a61-9d3b-2f6c1f0b7e11");
    p = nth(v, "TEL", 1);
    assert_string_equal(p->params[0].value, "work,voice"); /* quotes removed, list joined */
    assert_true(dav_vcard_has_type(p, "voice"));
    assert_string_equal(p->value, "tel:+49-30-1234");
    p = nth(v, "ADR", 0);
    assert_string_equal(dav_vcard_param_get(p, "LABEL"), "Hauptstr. 1\\n10115 Berlin");
    p = nth(v, "PHOTO", 0);
    assert_int_equal(strncmp(p->value, "data:image/png;base64,iVBOR", 27), 0);
    dav_vcard_free(v);

    v = parse_ok(davx5_group);
    assert_string_equal(dav_vcard_uid(v), "urn:uuid:9b8d2c44-group");
    assert_string_equal(nth(v, "KIND", 0)->value, "group");
    dav_vcard_free(v);

    /* eM Client style: lower-case names, a BOM, bare "TEL;CELL" types, trailing blank lines,
     * tab continuation, an inline AGENT vCard (just a value) */
    v = parse_ok("\xEF\xBB\xBF"
                 "begin:vcard\r\nversion:3.0\r\nn:Smith;Ann\r\nfn:Ann Smith\r\n"
                 "tel;cell:+1 555\r\nemail;type=internet,work:ann@\r\n\texample.com\r\n"
                 "AGENT:BEGIN:VCARD\\nVERSION:3.0\\nFN:Bob\\nEND:VCARD\r\n"
                 "uid:ann-1\r\nend:vcard\r\n\r\n\r\n");
    p = nth(v, "TEL", 0);
    assert_string_equal(p->params[0].name, "TYPE");
    assert_string_equal(p->params[0].value, "cell");
    p = nth(v, "EMAIL", 0);
    assert_string_equal(p->value, "ann@example.com");
    assert_true(dav_vcard_has_type(p, "WORK"));
    assert_non_null(nth(v, "AGENT", 0));
    dav_vcard_free(v);
}

#define CARD(body) "BEGIN:VCARD\r\nVERSION:3.0\r\n" body "END:VCARD\r\n"

static void test_parse_refused(void **state)
{
    static const struct {
        const char *card, *precond;
    } cases[] = {
        {CARD("N:A;B;;;\r\nFN:B A\r\n"), "valid-address-data"},                /* no UID */
        {CARD("N:A;B;;;\r\nUID:x\r\n"), "valid-address-data"},                 /* no FN */
        {CARD("FN:B A\r\nUID:x\r\n"), "valid-address-data"},                   /* 3.0 needs N */
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nUID:y\r\n"), "valid-address-data"}, /* two UIDs */
        {CARD("N:A;;;;\r\nFN:A\r\nUID:\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nN:B;;;;\r\nUID:x\r\n"), "valid-address-data"},
        {"BEGIN:VCARD\r\nVERSION:2.1\r\nN:A\r\nFN:A\r\nUID:x\r\nEND:VCARD\r\n",
         "supported-address-data"},
        {"BEGIN:VCARD\r\nVERSION:5.0\r\nFN:A\r\nUID:x\r\nEND:VCARD\r\n", "supported-address-data"},
        {CARD("N:A;;;;\r\nFN;ENCODING=QUOTED-PRINTABLE:=C3=A9\r\nUID:x\r\n"),
         "supported-address-data"},
        {CARD("N:A;;;;\r\nFN;CHARSET=ISO-8859-1:A\r\nUID:x\r\n"), "supported-address-data"},
        {"BEGIN:VCARD\r\nFN:A\r\nN:A\r\nUID:x\r\nEND:VCARD\r\n", "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\n") CARD("N:B;;;;\r\nFN:B\r\nUID:y\r\n"),
         "valid-address-data"}, /* two cards */
        {CARD("N:A;;;;\r\nFN:A\r\nBEGIN:VCARD\r\nUID:x\r\n"), "valid-address-data"},
        {"BEGIN:VCARD\r\nVERSION:3.0\r\nN:A;;;;\r\nFN:A\r\nUID:x\r\n", "valid-address-data"},
        {"N:A;;;;\r\nFN:A\r\nUID:x\r\nEND:VCARD\r\n", "valid-address-data"},
        {"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nEND:VCARD\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\rUID:x\r\n"), "valid-address-data"}, /* bare CR */
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nNOTE:a\x01z\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:\xC3(\r\nUID:x\r\n"), "valid-address-data"},        /* not UTF-8 */
        {CARD("N:A;;;;\r\nFN:\xED\xA0\x80\r\nUID:x\r\n"), "valid-address-data"}, /* surrogate */
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nEMAIL;TYPE=\"a:b\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nEMAIL;TYPE=a\"b\":c\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nEMAIL;=a:c\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nno colon here\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\n:value\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\na.b.EMAIL:x@y\r\n"), "valid-address-data"},
        {CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nitem1.VERSION:3.0\r\n"), "valid-address-data"},
        {"", "valid-address-data"},
        {"\r\n\r\n", "valid-address-data"},
        {"garbage", "valid-address-data"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *pre = parse_bad(cases[i].card, strlen(cases[i].card));
        if (strcmp(pre, cases[i].precond))
            fail_msg("case %zu: %s, wanted %s", i, pre, cases[i].precond);
    }
    /* a NUL inside the body */
    static const char nul[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:A\r\nFN:A\0B\r\nUID:x\r\n"
                              "END:VCARD\r\n";
    assert_string_equal(parse_bad(nul, sizeof(nul) - 1), "valid-address-data");
    /* too many parameters on one property */
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "BEGIN:VCARD\r\nVERSION:3.0\r\nN:A\r\nFN:A\r\nUID:x\r\nTEL");
    for (int i = 0; i < 65; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ";TYPE=X%d", i);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, ":1\r\nEND:VCARD\r\n");
    assert_string_equal(parse_bad(buf, (size_t)n), "valid-address-data");
}

static char *big_card(const char *extra_name, size_t extra_len, size_t nprops, size_t *len)
{
    size_t cap = extra_len * 2 + nprops * 16 + 256;
    char *s = malloc(cap);
    size_t n = (size_t)snprintf(s, cap, "BEGIN:VCARD\r\nVERSION:3.0\r\nN:A\r\nFN:A\r\nUID:x\r\n");
    if (extra_name) {
        n += (size_t)snprintf(s + n, cap - n, "%s:", extra_name);
        for (size_t i = 0; i < extra_len; i++) {
            /* folded every 74 octets like a real PHOTO */
            if (i && i % 74 == 0) {
                memcpy(s + n, "\r\n ", 3);
                n += 3;
            }
            s[n++] = 'A';
        }
        n += (size_t)snprintf(s + n, cap - n, "\r\n");
    }
    for (size_t i = 0; i < nprops; i++)
        n += (size_t)snprintf(s + n, cap - n, "X-P:%zu\r\n", i % 100000);
    n += (size_t)snprintf(s + n, cap - n, "END:VCARD\r\n");
    *len = n;
    return s;
}

static void test_hostile(void **state)
{
    size_t len;
    struct dav_vcard *v;
    const char *pre;

    /* a 900 KB inline photo is fine, 2 MB on one logical line is not */
    char *s = big_card("PHOTO;ENCODING=b;TYPE=JPEG", 900000, 0, &len);
    assert_int_equal(dav_vcard_parse(s, len, &v, &pre, NULL, 0), 0);
    assert_int_equal(strlen(nth(v, "PHOTO", 0)->value), 900000);
    dav_vcard_free(v);
    free(s);
    s = big_card("PHOTO;ENCODING=b;TYPE=JPEG", 2u << 20, 0, &len);
    assert_string_equal(parse_bad(s, len), "valid-address-data");
    free(s);
    /* 9,000 properties are kept, 100,000 are refused */
    s = big_card(NULL, 0, 9000, &len);
    assert_int_equal(dav_vcard_parse(s, len, &v, &pre, NULL, 0), 0);
    assert_int_equal(dav_vcard_nprops(v), 9003);
    dav_vcard_free(v);
    free(s);
    s = big_card(NULL, 0, 100000, &len);
    assert_string_equal(parse_bad(s, len), "valid-address-data");
    free(s);
    /* 64 MB of junk, one huge line, deep pseudo-nesting: refused quickly */
    len = 40u << 20;
    s = malloc(len);
    memset(s, 'x', len);
    assert_string_equal(parse_bad(s, len), "valid-address-data");
    assert_string_equal(parse_bad(s, 3u << 20), "valid-address-data");
    free(s);
    /* every prefix of a valid card: refused or parsed, never a crash */
    for (size_t i = 0; i < sizeof(ios_card) - 1; i++) {
        if (dav_vcard_parse(ios_card, i, &v, &pre, NULL, 0) == 0)
            dav_vcard_free(v);
    }
    /* an error buffer of one byte is still written safely */
    char tiny[1];
    assert_int_equal(dav_vcard_parse("junk", 4, &v, &pre, tiny, sizeof(tiny)), -1);
    assert_int_equal(tiny[0], '\0');
}

static void test_escape(void **state)
{
    char *e = dav_vcard_escape("a,b;c\\d\r\nline2\n");
    assert_string_equal(e, "a\\,b\\;c\\\\d\\nline2\\n");
    char *u = dav_vcard_unescape(e);
    assert_string_equal(u, "a,b;c\\d\nline2\n");
    free(e);
    free(u);
    u = dav_vcard_unescape("x\\N y\\: z\\q end\\");
    assert_string_equal(u, "x\n y: z\\q end\\");
    free(u);
    char *parts[4];
    assert_int_equal(dav_vcard_split("a\\;b;c\\,d;;", ';', parts, 4), 4);
    assert_string_equal(parts[0], "a;b");
    assert_string_equal(parts[1], "c,d");
    assert_string_equal(parts[2], "");
    assert_string_equal(parts[3], "");
    for (int i = 0; i < 4; i++)
        free(parts[i]);
    assert_int_equal(dav_vcard_split("", ';', parts, 4), 1);
    assert_string_equal(parts[0], "");
    free(parts[0]);
}

/* Every physical line at most 75 octets plus CRLF, and each one valid UTF-8 by itself. */
static void assert_folded(const char *s)
{
    while (*s) {
        const char *e = strstr(s, "\r\n");
        assert_non_null(e);
        assert_true(e - s <= 75);
        for (const char *c = s; c < e; c++)
            assert_int_not_equal(*c, '\n');
        if (e > s) {
            unsigned char first = (unsigned char)(*s == ' ' ? s[1] : s[0]);
            if (e - s > (*s == ' '))
                assert_int_not_equal(first & 0xC0, 0x80); /* no split sequence */
        }
        s = e + 2;
    }
}

static void test_builder(void **state)
{
    struct dav_vcard *v = dav_vcard_new(3);
    struct dav_vcard_param tp[] = {{"type", "WORK"}, {"TYPE", "pref"}};
    struct dav_vcard_param lp[] = {{"LABEL", "a:b;c"}};
    char *note = dav_vcard_escape("Zeile 1\nZeile 2, mit Komma");
    size_t len;

    assert_null(dav_vcard_new(2));
    assert_int_equal(dav_vcard_add(v, NULL, "n", NULL, 0, "Muster;Erika;;;"), 0);
    assert_int_equal(dav_vcard_add(v, NULL, "FN", NULL, 0, "Erika Muster"), 0);
    assert_int_equal(dav_vcard_add(v, "item1", "EMAIL", tp, 2, "erika@example.de"), 0);
    assert_int_equal(dav_vcard_add(v, NULL, "ADR", lp, 1, ";;Weg 1;Köln;;50667;"), 0);
    assert_int_equal(dav_vcard_add(v, NULL, "NOTE", NULL, 0, note), 0);
    assert_int_equal(dav_vcard_add(v, NULL, "UID", NULL, 0, "eas-contact-17"), 0);
    /* refused: structural names, bad names, control characters, quotes in params */
    assert_int_equal(dav_vcard_add(v, NULL, "VERSION", NULL, 0, "4.0"), -1);
    assert_int_equal(dav_vcard_add(v, NULL, "END", NULL, 0, "VCARD"), -1);
    assert_int_equal(dav_vcard_add(v, NULL, "BAD NAME", NULL, 0, "x"), -1);
    assert_int_equal(dav_vcard_add(v, "a.b", "X", NULL, 0, "x"), -1);
    assert_int_equal(dav_vcard_add(v, NULL, "NOTE", NULL, 0, "a\nb"), -1);
    struct dav_vcard_param qp[] = {{"X-Q", "say \"hi\""}};
    assert_int_equal(dav_vcard_add(v, NULL, "NOTE", qp, 1, "x"), -1);
    free(note);
    /* long vendor names are fine; what ActiveSync copies from a parsed card is accepted */
    const char *longname = "X-VENDOR-WITH-A-VERY-LONG-PROPERTY-NAME-THAT-GOES-ON-AND-ON-AND-ON-"
                           "AND-ON";
    struct dav_vcard_param lnp[] = {{longname, "v"}};
    struct dav_vcard *lv = dav_vcard_new(4);
    assert_int_equal(dav_vcard_add(lv, "g", longname, lnp, 1, "x"), 0);
    assert_string_equal(dav_vcard_prop(lv, 0)->params[0].name, longname);
    dav_vcard_free(lv);
    assert_string_equal(dav_vcard_uid(v), "eas-contact-17");
    assert_int_equal(dav_vcard_nprops(v), 6);

    char *out = dav_vcard_serialize(v, &len);
    assert_string_equal(out, "BEGIN:VCARD\r\n"
                             "VERSION:3.0\r\n"
                             "N:Muster;Erika;;;\r\n"
                             "FN:Erika Muster\r\n"
                             "item1.EMAIL;TYPE=WORK;TYPE=pref:erika@example.de\r\n"
                             "ADR;LABEL=\"a:b;c\":;;Weg 1;Köln;;50667;\r\n"
                             "NOTE:Zeile 1\\nZeile 2\\, mit Komma\r\n"
                             "UID:eas-contact-17\r\n"
                             "END:VCARD\r\n");
    assert_int_equal(len, strlen(out));
    dav_vcard_free(v);
    /* what the builder wrote parses back to the same card */
    v = parse_ok(out);
    assert_string_equal(dav_vcard_param_get(nth(v, "ADR", 0), "LABEL"), "a:b;c");
    size_t len2;
    char *again = dav_vcard_serialize(v, &len2);
    assert_string_equal(again, out);
    free(again);
    free(out);
    dav_vcard_free(v);

    /* long values fold at 75 octets, never inside a UTF-8 sequence, and unfold back */
    v = dav_vcard_new(4);
    char longv[1200] = "";
    for (int i = 0; i < 150; i++)
        strcat(longv, i % 3 ? "é" : "x€");
    assert_int_equal(dav_vcard_add(v, NULL, "FN", NULL, 0, longv), 0);
    assert_int_equal(dav_vcard_add(v, NULL, "UID", NULL, 0, "u"), 0);
    out = dav_vcard_serialize(v, &len);
    assert_folded(out);
    dav_vcard_free(v);
    v = parse_ok(out);
    assert_string_equal(nth(v, "FN", 0)->value, longv);
    dav_vcard_free(v);
    free(out);
}

static char *convert(const char *card, int version)
{
    struct dav_vcard *v = parse_ok(card);
    size_t len;
    char *out = dav_vcard_convert(v, version, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    assert_folded(out);
    dav_vcard_free(v);
    return out;
}

/* iOS 3.0 → 4.0 → 3.0: preference, media, dates, LABEL, SORT-STRING, groups, spelling. */
static void test_convert_ios(void **state)
{
    static const char card[] =
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        "PRODID:-//Apple Inc.//iPhone OS 17.1//EN\r\n"
        "N:Appleseed;Johnny;;;\r\n"
        "FN:Johnny Appleseed\r\n"
        "item1.EMAIL;type=INTERNET;type=pref:johnny@example.com\r\n"
        "item1.X-ABLabel:_$!<Other>!$_\r\n"
        "TEL;type=CELL;type=VOICE;type=pref:+1 555 0100\r\n"
        "item2.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;USA\r\n"
        "LABEL;TYPE=HOME:1 Infinite Loop\\nCupertino\r\n"
        "BDAY;X-APPLE-OMIT-YEAR=1604:1604-06-01\r\n"
        "X-ANNIVERSARY:2010-05-02\r\n"
        "SORT-STRING:Appleseed\r\n"
        "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAASABIAAD\r\n"
        "LOGO;VALUE=uri:https://example.com/logo.png\r\n"
        "AGENT:BEGIN:VCARD\\nFN:x\\nEND:VCARD\r\n"
        "MAILER:PINE\r\n"
        "GEO:37.386013;-122.082932\r\n"
        "UID:abc\r\n"
        "END:VCARD\r\n";
    static const char want4[] =
        "BEGIN:VCARD\r\nVERSION:4.0\r\n"
        "PRODID:-//Apple Inc.//iPhone OS 17.1//EN\r\n"
        "N;SORT-AS=\"Appleseed\":Appleseed;Johnny;;;\r\n"
        "FN:Johnny Appleseed\r\n"
        "item1.EMAIL;TYPE=INTERNET;PREF=1:johnny@example.com\r\n"
        "item1.X-ABLabel:_$!<Other>!$_\r\n"
        "TEL;TYPE=CELL;TYPE=VOICE;PREF=1:+1 555 0100\r\n"
        "item2.ADR;TYPE=HOME;PREF=1;LABEL=\"1 Infinite Loop^nCupertino\":;;1 Infinite \r\n"
        " Loop;Cupertino;CA;95014;USA\r\n"
        "BDAY:--0601\r\n"
        "ANNIVERSARY:20100502\r\n"
        "PHOTO:data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAASABIAAD\r\n"
        "LOGO:https://example.com/logo.png\r\n"
        "GEO:geo:37.386013,-122.082932\r\n"
        "UID:abc\r\n"
        "END:VCARD\r\n";
    static const char want3[] =
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        "PRODID:-//Apple Inc.//iPhone OS 17.1//EN\r\n"
        "N:Appleseed;Johnny;;;\r\n"
        "SORT-STRING:Appleseed\r\n"
        "FN:Johnny Appleseed\r\n"
        "item1.EMAIL;TYPE=INTERNET,pref:johnny@example.com\r\n"
        "item1.X-ABLabel:_$!<Other>!$_\r\n"
        "TEL;TYPE=CELL,pref;TYPE=VOICE:+1 555 0100\r\n"
        "item2.ADR;TYPE=HOME,pref:;;1 Infinite Loop;Cupertino;CA;95014;USA\r\n"
        "item2.LABEL;TYPE=HOME:1 Infinite Loop\\nCupertino\r\n"
        "BDAY;X-APPLE-OMIT-YEAR=1604:1604-06-01\r\n"
        "X-ANNIVERSARY:2010-05-02\r\n"
        "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAASABIAAD\r\n"
        "LOGO;VALUE=uri:https://example.com/logo.png\r\n"
        "GEO:37.386013;-122.082932\r\n"
        "UID:abc\r\n"
        "END:VCARD\r\n";
    char *v4 = convert(card, 4);
    assert_string_equal(v4, want4);
    char *v3 = convert(v4, 3);
    assert_string_equal(v3, want3);
    /* and a second round changes nothing more */
    char *mid = convert(v3, 4);
    char *again = convert(mid, 3);
    assert_string_equal(mid, want4);
    assert_string_equal(again, want3);
    free(mid);
    free(v4);
    free(v3);
    free(again);
}

/* Thunderbird 4.0 → 3.0 → 4.0. */
static void test_convert_tb(void **state)
{
    static const char want3[] =
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        "EMAIL;TYPE=pref:jane@example.org\r\n"
        "EMAIL;TYPE=work:jane.doe@work.example\r\n"
        "FN:Jane Doe\r\n"
        "N:Doe;Jane;;;\r\n"
        "TEL;TYPE=cell;VALUE=TEXT:+49 170 1234567\r\n"
        "TEL;TYPE=\"work,voice\":+49-30-1234\r\n"
        "NOTE:Line one\\nLine two\\, with comma\r\n"
        "BDAY:1990-02-15\r\n"
        "X-ANNIVERSARY:2015-06-20\r\n"
        "ADR;TYPE=home:;;Hauptstr. 1;Berlin;;10115;Germany\r\n"
        "LABEL;TYPE=home:Hauptstr. 1\\n10115 Berlin\r\n"
        "PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAD\r\n"
        " UlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n"
        "UID:e9b0c7a2-5b8e-4a61-9d3b-2f6c1f0b7e11\r\n"
        "END:VCARD\r\n";
    char *v3 = convert(tb_card, 3);
    assert_string_equal(v3, want3);
    char *v4 = convert(v3, 4);
    struct dav_vcard *a = parse_ok(tb_card), *b = parse_ok(v4);
    /* the data survives: preference, label, photo, dates */
    assert_string_equal(dav_vcard_param_get(nth(b, "EMAIL", 0), "PREF"), "1");
    assert_null(dav_vcard_param_get(nth(b, "EMAIL", 1), "PREF"));
    assert_string_equal(nth(b, "PHOTO", 0)->value, nth(a, "PHOTO", 0)->value);
    assert_string_equal(nth(b, "BDAY", 0)->value, "19900215");
    assert_string_equal(nth(b, "ANNIVERSARY", 0)->value, "20150620");
    assert_string_equal(dav_vcard_param_get(nth(b, "ADR", 0), "LABEL"),
                        "Hauptstr. 1^n10115 Berlin");
    assert_string_equal(nth(b, "ADR", 0)->value, nth(a, "ADR", 0)->value);
    assert_null(nth(b, "LABEL", 0));
    assert_string_equal(nth(b, "NOTE", 0)->value, nth(a, "NOTE", 0)->value);
    dav_vcard_free(a);
    dav_vcard_free(b);
    free(v3);
    free(v4);
}

/* Groups: Apple's 3.0 form and the 4.0 KIND/MEMBER form map onto each other. */
static void test_convert_groups(void **state)
{
    char *v4 = convert(apple_group, 4);
    assert_string_equal(v4, "BEGIN:VCARD\r\nVERSION:4.0\r\n"
                            "PRODID:-//Apple Inc.//Mac OS X 10.15.7//EN\r\n"
                            "N:Family\r\n"
                            "FN:Family\r\n"
                            "KIND:group\r\n"
                            "MEMBER:urn:uuid:1A0F7C3E-0001\r\n"
                            "MEMBER:urn:uuid:1A0F7C3E-0002\r\n"
                            "REV:2024-01-01T10:00:00Z\r\n"
                            "UID:B1C2D3E4-GROUP\r\n"
                            "END:VCARD\r\n");
    char *v3 = convert(v4, 3);
    assert_string_equal(v3, apple_group); /* intact, byte for byte */
    free(v3);
    free(v4);

    v3 = convert(davx5_group, 3);
    assert_string_equal(v3, "BEGIN:VCARD\r\nVERSION:3.0\r\n"
                            "PRODID:ez-vcard 0.11.3\r\n"
                            "UID:urn:uuid:9b8d2c44-group\r\n"
                            "X-ADDRESSBOOKSERVER-KIND:group\r\n"
                            "FN:Colleagues\r\n"
                            "N:;;;;\r\n" /* 3.0 requires N */
                            "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:0f3e-member-1\r\n"
                            "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:0f3e-member-2\r\n"
                            "REV:20240101T120000Z\r\n"
                            "END:VCARD\r\n");
    struct dav_vcard *v = parse_ok(v3); /* a valid 3.0 address object */
    assert_string_equal(dav_vcard_uid(v), "urn:uuid:9b8d2c44-group");
    dav_vcard_free(v);
    free(v3);
}

/* 3.0-only and 4.0-only properties, media in URIs, dates with times. */
static void test_convert_details(void **state)
{
    char *v3 = convert("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:X\r\nUID:u\r\n"
                       "KEY;MEDIATYPE=application/pgp-keys:https://example.org/key.asc\r\n"
                       "SOUND:data:audio/x-wav;base64,UklGRg==\r\n"
                       "LOGO:data:image/svg+xml,%3Csvg%2F%3E\r\n"
                       "RELATED;TYPE=agent:urn:uuid:x\r\n"
                       "RELATED;TYPE=friend:urn:uuid:y\r\n"
                       "GENDER:F\r\n"
                       "BDAY:19850412T100000-0500\r\n"
                       "ANNIVERSARY;VALUE=text:circa 2000\r\n"
                       "XML:<a/>\r\n"
                       "CLIENTPIDMAP:1;urn:uuid:x\r\n"
                       "EMAIL;PID=1.1;PREF=3:a@b\r\n"
                       "END:VCARD\r\n",
                       3);
    assert_string_equal(v3, "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nN:;;;;\r\nUID:u\r\n"
                            "KEY;VALUE=uri;TYPE=PGP:https://example.org/key.asc\r\n"
                            "SOUND;ENCODING=b;TYPE=audio/x-wav:UklGRg==\r\n"
                            "LOGO;VALUE=uri:data:image/svg+xml,%3Csvg%2F%3E\r\n"
                            "AGENT;VALUE=uri:urn:uuid:x\r\n"
                            "RELATED;TYPE=friend:urn:uuid:y\r\n"
                            "X-GENDER:F\r\n"
                            "BDAY:1985-04-12T10:00:00-05:00\r\n"
                            "X-ANNIVERSARY;VALUE=text:circa 2000\r\n"
                            "EMAIL:a@b\r\n"
                            "END:VCARD\r\n");
    char *v4 = convert(v3, 4);
    assert_string_equal(v4, "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:X\r\nN:;;;;\r\nUID:u\r\n"
                            "KEY;MEDIATYPE=application/pgp-keys:https://example.org/key.asc\r\n"
                            "SOUND:data:audio/x-wav;base64,UklGRg==\r\n"
                            "LOGO:data:image/svg+xml,%3Csvg%2F%3E\r\n"
                            "RELATED;TYPE=agent:urn:uuid:x\r\n"
                            "RELATED;TYPE=friend:urn:uuid:y\r\n"
                            "GENDER:F\r\n"
                            "BDAY:19850412T100000-0500\r\n"
                            "ANNIVERSARY;VALUE=text:circa 2000\r\n"
                            "EMAIL:a@b\r\n"
                            "END:VCARD\r\n");
    free(v3);
    free(v4);
    /* 3.0: a photo with no TYPE is sniffed, a text KEY says so, NAME/CLASS dropped */
    v4 = convert(CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nNAME:dir\r\nCLASS:PUBLIC\r\n"
                      "PHOTO;ENCODING=b:iVBORw0KGgoAAAA\r\nKEY:-----BEGIN PGP\r\n"
                      "BDAY;VALUE=date:1999-12-31\r\n"),
                 4);
    assert_string_equal(v4, "BEGIN:VCARD\r\nVERSION:4.0\r\nN:A;;;;\r\nFN:A\r\nUID:x\r\n"
                            "PHOTO:data:image/png;base64,iVBORw0KGgoAAAA\r\n"
                            "KEY;VALUE=text:-----BEGIN PGP\r\n"
                            "BDAY:19991231\r\n"
                            "END:VCARD\r\n");
    free(v4);
    /* a LABEL with no matching ADR travels on an empty ADR and comes back */
    v4 = convert(CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nADR;TYPE=HOME:;;1 Main St;;;;\r\n"
                      "LABEL;TYPE=WORK:PO Box 7\\nTown\r\n"),
                 4);
    assert_string_equal(v4, "BEGIN:VCARD\r\nVERSION:4.0\r\nN:A;;;;\r\nFN:A\r\nUID:x\r\n"
                            "ADR;TYPE=HOME:;;1 Main St;;;;\r\n"
                            "ADR;TYPE=WORK;LABEL=\"PO Box 7^nTown\":;;;;;;\r\n"
                            "END:VCARD\r\n");
    v3 = convert(v4, 3);
    assert_non_null(strstr(v3, "\r\nLABEL;TYPE=WORK:PO Box 7\\nTown\r\n"));
    free(v3);
    free(v4);
    /* dates: only the exact extended / basic shapes are rewritten */
    v4 = convert(CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nBDAY:--04-12\r\n"
                      "X-ANNIVERSARY:1985-04-12T10:00Z\r\n"),
                 4);
    assert_non_null(strstr(v4, "\r\nBDAY:--0412\r\nANNIVERSARY:19850412T1000Z\r\n"));
    v3 = convert(v4, 3);
    assert_non_null(strstr(v3, "\r\nBDAY;X-APPLE-OMIT-YEAR=1604:1604-04-12\r\n"
                               "X-ANNIVERSARY:1985-04-12T10:00Z\r\n"));
    free(v3);
    free(v4);
    v4 = convert(CARD("N:A;;;;\r\nFN:A\r\nUID:x\r\nBDAY:1985-4-12\r\n"
                      "X-ANNIVERSARY:1985-04-12T25\r\n"),
                 4);
    assert_non_null(strstr(v4, "\r\nBDAY:1985-4-12\r\nANNIVERSARY:1985-04-12T25\r\n"));
    free(v4);
    /* same version: a faithful rewrite; unknown version: nothing */
    struct dav_vcard *v = parse_ok(apple_group);
    size_t len;
    char *same = dav_vcard_convert(v, 3, &len);
    assert_string_equal(same, apple_group);
    free(same);
    assert_null(dav_vcard_convert(v, 2, &len));
    dav_vcard_free(v);
}

/* ---- filters and address-data ---- */

#define NS "xmlns:C=\"urn:ietf:params:xml:ns:carddav\""

static xmlDocPtr xdoc(const char *xml)
{
    xmlDocPtr d = xmlReadMemory(xml, (int)strlen(xml), "t.xml", NULL, XML_PARSE_NONET);
    assert_non_null(d);
    return d;
}

static const char mueller[] = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Jürgen Müller-STRASSER\r\n"
                              "N:Müller-Strasser;Jürgen;;;\r\nNICKNAME:Ελένη\r\n"
                              "EMAIL;TYPE=home,internet:jm@example.de\r\nUID:m-1\r\n"
                              "END:VCARD\r\n";

/* How many of the sample cards (in order: ios, tb, apple group, davx5 group, mueller) the
 * filter matches, as a bit mask; -1 when it does not compile. */
static int run_filter(const char *body, const char **pre)
{
    char xml[8192];
    const char *cards[] = {ios_card, tb_card, apple_group, davx5_group, mueller};
    struct dav_vcard_filter *f;
    char err[256];
    int mask = 0;

    snprintf(xml, sizeof(xml), "<C:filter %s", body);
    xmlDocPtr d = xdoc(xml);
    *pre = NULL;
    if (dav_vcard_filter_compile(xmlDocGetRootElement(d), &f, pre, err, sizeof(err)) != 0) {
        xmlFreeDoc(d);
        assert_non_null(*pre);
        return -1;
    }
    xmlFreeDoc(d); /* the compiled filter keeps nothing from the document */
    for (int i = 0; i < 5; i++) {
        struct dav_vcard *v = parse_ok(cards[i]);
        int r = dav_vcard_filter_match(f, v);
        assert_true(r == 0 || r == 1);
        mask |= r << i;
        dav_vcard_free(v);
    }
    dav_vcard_filter_free(f);
    return mask;
}

#define IOS   1
#define TB    2
#define AGRP  4
#define DGRP  8
#define MUELL 16

static void test_filter_match(void **state)
{
    static const struct {
        const char *body;
        int mask;
    } cases[] = {
        {NS "/>", 31},
        {NS "><C:prop-filter name=\"FN\"/></C:filter>", 31},
        {NS "><C:prop-filter name=\"PHOTO\"/></C:filter>", IOS | TB},
        /* match types, default collation i;unicode-casemap folds case */
        {NS "><C:prop-filter name=\"FN\"><C:text-match>appleSEED</C:text-match>"
            "</C:prop-filter></C:filter>",
         IOS},
        {NS "><C:prop-filter name=\"FN\"><C:text-match match-type=\"equals\">jane doe"
            "</C:text-match></C:prop-filter></C:filter>",
         TB},
        {NS "><C:prop-filter name=\"FN\"><C:text-match match-type=\"equals\">jane"
            "</C:text-match></C:prop-filter></C:filter>",
         0},
        {NS "><C:prop-filter name=\"FN\"><C:text-match match-type=\"starts-with\">dr."
            "</C:text-match></C:prop-filter></C:filter>",
         IOS},
        {NS "><C:prop-filter name=\"FN\"><C:text-match match-type=\"ends-with\">Y"
            "</C:text-match></C:prop-filter></C:filter>",
         AGRP},
        {NS "><C:prop-filter name=\"EMAIL\"><C:text-match match-type=\"ends-with\">.EXAMPLE"
            "</C:text-match></C:prop-filter></C:filter>",
         IOS | TB},
        /* collations */
        {NS "><C:prop-filter name=\"FN\"><C:text-match collation=\"i;octet\">jane"
            "</C:text-match></C:prop-filter></C:filter>",
         0},
        {NS "><C:prop-filter name=\"FN\"><C:text-match collation=\"i;octet\">Jane"
            "</C:text-match></C:prop-filter></C:filter>",
         TB},
        {NS "><C:prop-filter name=\"FN\"><C:text-match collation=\"i;ascii-casemap\">"
            "JÜRGEN</C:text-match></C:prop-filter></C:filter>",
         0},
        {NS "><C:prop-filter name=\"FN\"><C:text-match collation=\"i;ascii-casemap\">"
            "JüRGEN</C:text-match></C:prop-filter></C:filter>",
         MUELL},
        {NS "><C:prop-filter name=\"FN\"><C:text-match>JÜRGEN MÜLLER</C:text-match>"
            "</C:prop-filter></C:filter>",
         MUELL},
        {NS "><C:prop-filter name=\"N\"><C:text-match>müller-straßer</C:text-match>"
            "</C:prop-filter></C:filter>",
         MUELL},
        {NS "><C:prop-filter name=\"NICKNAME\"><C:text-match>ΕΛΈΝΗ</C:text-match>"
            "</C:prop-filter></C:filter>",
         MUELL},
        /* values are matched unescaped */
        {NS "><C:prop-filter name=\"NOTE\"><C:text-match>wwdc, 2023</C:text-match>"
            "</C:prop-filter></C:filter>",
         IOS},
        /* negate-condition */
        {NS "><C:prop-filter name=\"FN\"><C:text-match negate-condition=\"yes\">jane"
            "</C:text-match></C:prop-filter></C:filter>",
         31 & ~TB},
        /* anyof (default) / allof between prop-filters */
        {NS "><C:prop-filter name=\"FN\"><C:text-match>jane</C:text-match></C:prop-filter>"
            "<C:prop-filter name=\"EMAIL\"><C:text-match>johnny</C:text-match>"
            "</C:prop-filter></C:filter>",
         IOS | TB},
        {NS " test=\"allof\"><C:prop-filter name=\"FN\"><C:text-match>jane</C:text-match>"
            "</C:prop-filter><C:prop-filter name=\"EMAIL\"><C:text-match>johnny"
            "</C:text-match></C:prop-filter></C:filter>",
         0},
        {NS " test=\"allof\"><C:prop-filter name=\"FN\"><C:text-match>jane</C:text-match>"
            "</C:prop-filter><C:prop-filter name=\"EMAIL\"><C:text-match>example.org"
            "</C:text-match></C:prop-filter></C:filter>",
         TB},
        /* anyof / allof inside a prop-filter, on one property instance */
        {NS "><C:prop-filter name=\"EMAIL\" test=\"allof\"><C:text-match>jane</C:text-match>"
            "<C:text-match>work</C:text-match></C:prop-filter></C:filter>",
         TB},
        {NS "><C:prop-filter name=\"EMAIL\" test=\"allof\"><C:text-match>johnny</C:text-match>"
            "<C:text-match>work</C:text-match></C:prop-filter></C:filter>",
         0},
        {NS "><C:prop-filter name=\"EMAIL\"><C:text-match>johnny</C:text-match>"
            "<C:text-match>jm@</C:text-match></C:prop-filter></C:filter>",
         IOS | MUELL},
        /* param-filter: value (comma lists item by item), defined, not defined */
        {NS "><C:prop-filter name=\"EMAIL\"><C:param-filter name=\"TYPE\">"
            "<C:text-match match-type=\"equals\">work</C:text-match></C:param-filter>"
            "</C:prop-filter></C:filter>",
         IOS | TB},
        {NS "><C:prop-filter name=\"EMAIL\"><C:param-filter name=\"type\">"
            "<C:text-match match-type=\"equals\">INTERNET</C:text-match></C:param-filter>"
            "</C:prop-filter></C:filter>",
         IOS | MUELL},
        {NS "><C:prop-filter name=\"EMAIL\"><C:param-filter name=\"PREF\"/>"
            "</C:prop-filter></C:filter>",
         TB},
        {NS "><C:prop-filter name=\"EMAIL\"><C:param-filter name=\"TYPE\">"
            "<C:is-not-defined/></C:param-filter></C:prop-filter></C:filter>",
         TB},
        {NS "><C:prop-filter name=\"TEL\" test=\"allof\"><C:param-filter name=\"TYPE\">"
            "<C:text-match negate-condition=\"yes\">cell</C:text-match></C:param-filter>"
            "</C:prop-filter></C:filter>",
         TB},
        {NS "><C:prop-filter name=\"PHOTO\" test=\"allof\"><C:text-match>/9j/</C:text-match>"
            "<C:param-filter name=\"ENCODING\"><C:text-match match-type=\"equals\">B"
            "</C:text-match></C:param-filter></C:prop-filter></C:filter>",
         IOS},
        /* is-not-defined */
        {NS "><C:prop-filter name=\"N\"><C:is-not-defined/></C:prop-filter></C:filter>", DGRP},
        {NS " test=\"allof\"><C:prop-filter name=\"X-ADDRESSBOOKSERVER-KIND\"><C:is-not-defined/>"
            "</C:prop-filter><C:prop-filter name=\"KIND\"><C:is-not-defined/></C:prop-filter>"
            "</C:filter>",
         IOS | TB | MUELL},
        /* a group-qualified name only matches in that group */
        {NS "><C:prop-filter name=\"item1.EMAIL\"/></C:filter>", IOS},
        {NS "><C:prop-filter name=\"item9.EMAIL\"/></C:filter>", 0},
        /* elements of other namespaces are ignored */
        {NS " xmlns:X=\"urn:x\"><X:hint/><C:prop-filter name=\"UID\"><X:y/><C:text-match>"
            "group</C:text-match></C:prop-filter></C:filter>",
         AGRP | DGRP},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *pre;
        int m = run_filter(cases[i].body, &pre);
        if (m != cases[i].mask)
            fail_msg("case %zu: mask %d, wanted %d", i, m, cases[i].mask);
    }
    /* no filter element at all: everything matches */
    struct dav_vcard_filter *f;
    const char *pre = NULL;
    assert_int_equal(dav_vcard_filter_compile(NULL, &f, &pre, NULL, 0), 0);
    struct dav_vcard *v = parse_ok(ios_card);
    assert_int_equal(dav_vcard_filter_match(f, v), 1);
    assert_int_equal(dav_vcard_filter_match(NULL, v), 1);
    dav_vcard_free(v);
    dav_vcard_filter_free(f);
    dav_vcard_filter_free(NULL);
}

static void test_filter_refused(void **state)
{
    static const struct {
        const char *body, *precond;
    } cases[] = {
        {NS "><C:prop-filter name=\"FN\"><C:text-match collation=\"i;basic\">x"
            "</C:text-match></C:prop-filter></C:filter>",
         "supported-collation"},
        {NS "><C:prop-filter name=\"FN\"><C:param-filter name=\"X\"><C:text-match "
            "collation=\"en-US\">x</C:text-match></C:param-filter></C:prop-filter></C:filter>",
         "supported-collation"},
        {NS "><C:prop-filter name=\"FN\"><C:text-match match-type=\"regex\">x"
            "</C:text-match></C:prop-filter></C:filter>",
         "valid-filter"},
        {NS " test=\"sometimes\"/>", "valid-filter"},
        {NS "><C:prop-filter name=\"FN\" test=\"oneof\"/></C:filter>", "valid-filter"},
        {NS "><C:prop-filter/></C:filter>", "valid-filter"},
        {NS "><C:prop-filter name=\"\"/></C:filter>", "valid-filter"},
        {NS "><C:prop-filter name=\"F N\"/></C:filter>", "valid-filter"},
        {NS "><C:prop-filter name=\"a.b.FN\"/></C:filter>", "valid-filter"},
        {NS "><C:prop-filter name=\"FN\"><C:is-not-defined/><C:text-match>x</C:text-match>"
            "</C:prop-filter></C:filter>",
         "valid-filter"},
        {NS "><C:prop-filter name=\"FN\"><C:text-match>x</C:text-match><C:is-not-defined/>"
            "</C:prop-filter></C:filter>",
         "valid-filter"},
        {NS "><C:prop-filter name=\"FN\"><C:text-match negate-condition=\"maybe\">x"
            "</C:text-match></C:prop-filter></C:filter>",
         "valid-filter"},
        {NS "><C:prop-filter name=\"FN\"><C:param-filter/></C:prop-filter></C:filter>",
         "valid-filter"},
        {NS "><C:prop-filter name=\"FN\"><C:param-filter name=\"X\"><C:is-not-defined/>"
            "<C:text-match>x</C:text-match></C:param-filter></C:prop-filter></C:filter>",
         "valid-filter"},
        {NS "><C:prop-filter name=\"FN\"><C:comp-filter/></C:prop-filter></C:filter>",
         "valid-filter"},
        {NS "><C:text-match>x</C:text-match></C:filter>", "valid-filter"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *pre;
        assert_int_equal(run_filter(cases[i].body, &pre), -1);
        if (strcmp(pre, cases[i].precond))
            fail_msg("case %zu: %s, wanted %s", i, pre, cases[i].precond);
    }
    /* bounds: 101 prop-filters, a text-match of 5000 characters */
    size_t cap = 16384, n;
    char *body = malloc(cap);
    const char *pre;
    n = (size_t)snprintf(body, cap, NS ">");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(body + n, cap - n, "<C:prop-filter name=\"FN\"/>");
    snprintf(body + n, cap - n, "</C:filter>");
    assert_int_equal(run_filter(body, &pre), -1);
    assert_string_equal(pre, "valid-filter");
    n = (size_t)snprintf(body, cap, NS "><C:prop-filter name=\"FN\"><C:text-match>");
    memset(body + n, 'a', 5000);
    snprintf(body + n + 5000, cap - n - 5000, "</C:text-match></C:prop-filter></C:filter>");
    assert_int_equal(run_filter(body, &pre), -1);
    assert_string_equal(pre, "valid-filter");
    free(body);
    /* the wrong element */
    xmlDocPtr d = xdoc("<C:limit " NS "/>");
    struct dav_vcard_filter *f;
    assert_int_equal(dav_vcard_filter_compile(xmlDocGetRootElement(d), &f, &pre, NULL, 0), -1);
    assert_null(f);
    xmlFreeDoc(d);
}

static struct dav_vcard_data *data_compile(const char *xml, int want_rc, const char **pre)
{
    struct dav_vcard_data *dd = (struct dav_vcard_data *)1;
    char err[256];
    xmlDocPtr d = xdoc(xml);
    *pre = "unset";
    assert_int_equal(dav_vcard_data_compile(xmlDocGetRootElement(d), &dd, pre, err, sizeof(err)),
                     want_rc);
    xmlFreeDoc(d);
    if (want_rc)
        assert_null(dd);
    return dd;
}

static char *render(const struct dav_vcard_data *dd, const char *card)
{
    struct dav_vcard *v = parse_ok(card);
    size_t len;
    char *out = dav_vcard_data_render(dd, v, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    dav_vcard_free(v);
    return out;
}

static void test_address_data(void **state)
{
    const char *pre;
    struct dav_vcard_data *dd;
    char *out;

    /* no element: as stored */
    assert_int_equal(dav_vcard_data_compile(NULL, &dd, &pre, NULL, 0), 0);
    assert_int_equal(dav_vcard_data_version(dd), 0);
    assert_int_equal(dav_vcard_data_needs_parse(dd, 3), 0);
    dav_vcard_data_free(dd);
    assert_int_equal(dav_vcard_data_needs_parse(NULL, 4), 0);
    /* content-type only: as stored too */
    dd = data_compile("<C:address-data " NS " content-type=\"text/vcard\"/>", 0, &pre);
    assert_int_equal(dav_vcard_data_version(dd), 0);
    assert_int_equal(dav_vcard_data_needs_parse(dd, 4), 0);
    out = render(dd, tb_card);
    assert_memory_equal(out, "BEGIN:VCARD\r\nVERSION:4.0\r\nEMAIL;PREF=1:", 39);
    free(out);
    dav_vcard_data_free(dd);

    /* DAVx5 asks for 4.0 */
    dd = data_compile("<C:address-data " NS " content-type=\"text/vcard\" version=\"4.0\"/>", 0,
                      &pre);
    assert_int_equal(dav_vcard_data_version(dd), 4);
    assert_int_equal(dav_vcard_data_needs_parse(dd, 3), 1);
    assert_int_equal(dav_vcard_data_needs_parse(dd, 4), 0);
    out = render(dd, apple_group);
    assert_non_null(strstr(out, "\r\nKIND:group\r\nMEMBER:urn:uuid:1A0F7C3E-0001\r\n"));
    free(out);
    dav_vcard_data_free(dd);
    dd = data_compile("<C:address-data " NS " content-type=\"Text/VCard; charset=utf-8; "
                      "version=3.0\"/>",
                      0, &pre);
    assert_int_equal(dav_vcard_data_version(dd), 3);
    dav_vcard_data_free(dd);

    /* what cannot be produced */
    data_compile("<C:address-data " NS " content-type=\"application/vcard+json\"/>", -1, &pre);
    assert_string_equal(pre, "supported-address-data-conversion");
    data_compile("<C:address-data " NS " content-type=\"text/vcard\" version=\"2.1\"/>", -1, &pre);
    assert_string_equal(pre, "supported-address-data-conversion");
    data_compile("<C:address-data " NS " content-type=\"text/vcard;version=5\"/>", -1, &pre);
    assert_string_equal(pre, "supported-address-data-conversion");
    /* malformed: 400, no precondition */
    data_compile("<C:address-data " NS "><C:allprop/><C:prop name=\"FN\"/></C:address-data>", -1,
                 &pre);
    assert_null(pre);
    data_compile("<C:address-data " NS "><C:prop/></C:address-data>", -1, &pre);
    assert_null(pre);
    data_compile("<C:address-data " NS "><C:prop name=\"EMAIL\" novalue=\"maybe\"/>"
                 "</C:address-data>",
                 -1, &pre);
    data_compile("<C:address-data " NS "><C:comp name=\"VCARD\"/></C:address-data>", -1, &pre);
    data_compile("<C:calendar-data " NS "/>", -1, &pre);

    /* allprop: the whole card */
    dd = data_compile("<C:address-data " NS "><C:allprop/></C:address-data>", 0, &pre);
    assert_int_equal(dav_vcard_data_needs_parse(dd, 3), 0);
    dav_vcard_data_free(dd);

    /* a subset: the named properties (every group), novalue, and what a card needs */
    dd = data_compile("<C:address-data " NS "><C:prop name=\"EMAIL\"/>"
                      "<C:prop name=\"tel\" novalue=\"yes\"/><C:prop name=\"item2.X-ABADR\"/>"
                      "</C:address-data>",
                      0, &pre);
    assert_int_equal(dav_vcard_data_needs_parse(dd, 3), 1);
    out = render(dd, ios_card);
    assert_string_equal(out, "BEGIN:VCARD\r\n"
                             "VERSION:3.0\r\n"
                             "N:Appleseed;Johnny;Q.;Dr.;Jr.\r\n"
                             "FN:Dr. Johnny Q. Appleseed Jr.\r\n"
                             "item1.EMAIL;TYPE=INTERNET;TYPE=pref:johnny@example.com\r\n"
                             "EMAIL;TYPE=INTERNET;TYPE=WORK:j.appleseed@work.example\r\n"
                             "TEL;TYPE=CELL;TYPE=VOICE;TYPE=pref:\r\n"
                             "item2.X-ABADR:us\r\n"
                             "UID:5AD380FD-B2DE-4261-BA99-DE1D1DB52FBE\r\n"
                             "END:VCARD\r\n");
    free(out);
    dav_vcard_data_free(dd);

    /* subset and version together */
    dd = data_compile("<C:address-data " NS " version=\"4.0\"><C:prop name=\"EMAIL\"/>"
                      "<C:prop name=\"KIND\"/></C:address-data>",
                      0, &pre);
    out = render(dd, ios_card);
    assert_non_null(strstr(out, "VERSION:4.0\r\n"));
    assert_non_null(strstr(out, "item1.EMAIL;TYPE=INTERNET;PREF=1:johnny@example.com\r\n"));
    assert_null(strstr(out, "PHOTO"));
    assert_null(strstr(out, "TEL"));
    free(out);
    out = render(dd, apple_group);
    assert_non_null(strstr(out, "\r\nKIND:group\r\n"));
    assert_null(strstr(out, "MEMBER"));
    free(out);
    dav_vcard_data_free(dd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ios),      cmocka_unit_test(test_parse_others),
        cmocka_unit_test(test_parse_refused),  cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_escape),         cmocka_unit_test(test_builder),
        cmocka_unit_test(test_convert_ios),    cmocka_unit_test(test_convert_tb),
        cmocka_unit_test(test_convert_groups), cmocka_unit_test(test_convert_details),
        cmocka_unit_test(test_filter_match),   cmocka_unit_test(test_filter_refused),
        cmocka_unit_test(test_address_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
