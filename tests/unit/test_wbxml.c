/*
 * test_wbxml.c — the ActiveSync WBXML codec: the code-page tables both ways, every token
 * of every page through the encoder and decoder, the MS-ASWBXML example byte for byte,
 * every refusal of the decoder (truncation at each offset, depth, lengths, unknown pages
 * and tokens, attributes, entities, string tables, bad headers), the streaming writer's
 * page switching, the reading helpers and the XML forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eas/wbxml.h"

static const uint8_t hdr[] = {0x03, 0x01, 0x6a, 0x00};

/* Decodes header + body; returns the document or NULL with err filled. */
static struct eas_doc *dec(const uint8_t *body, size_t len, char *err, size_t errlen)
{
    uint8_t buf[4096];
    struct eas_doc *d = NULL;

    assert_true(len + sizeof(hdr) <= sizeof(buf));
    memcpy(buf, hdr, sizeof(hdr));
    memcpy(buf + sizeof(hdr), body, len);
    if (wbxml_decode(buf, len + sizeof(hdr), &d, err, errlen) < 0)
        return NULL;
    return d;
}

static void refused(const uint8_t *body, size_t len, const char *why)
{
    char err[256];
    struct eas_doc *d = dec(body, len, err, sizeof(err));

    if (d != NULL)
        fail_msg("accepted a document that should be refused (%s)", why);
    if (strstr(err, why) == NULL)
        fail_msg("refused with '%s', expected '%s'", err, why);
}

/* ---- tables ---------------------------------------------------------------------- */

static void test_tables(void **state)
{
    unsigned count = 0;

    assert_string_equal(wbxml_page_name(EAS_PAGE_AIRSYNC), "AirSync");
    assert_string_equal(wbxml_page_name(EAS_PAGE_CALENDAR), "Calendar");
    assert_string_equal(wbxml_page_name(EAS_PAGE_FIND), "Find");
    assert_null(wbxml_page_name(26));
    assert_int_equal(EAS_PAGE_COUNT, 26);
    /* Spot checks against MS-ASWBXML. */
    assert_int_equal(EAS_AIRSYNC_SYNCKEY, EAS_TAG(0, 0x0b));
    assert_int_equal(EAS_AIRSYNC_HEARTBEATINTERVAL, EAS_TAG(0, 0x29));
    assert_int_equal(EAS_CONTACTS_WEIGHTEDRANK, EAS_TAG(1, 0x3e));
    assert_int_equal(EAS_EMAIL_DISALLOWNEWTIMEPROPOSAL, EAS_TAG(2, 0x3f));
    assert_int_equal(EAS_CALENDAR_CLIENTUID, EAS_TAG(4, 0x3c));
    assert_int_equal(EAS_FOLDERHIERARCHY_FOLDERSYNC, EAS_TAG(7, 0x16));
    assert_int_equal(EAS_MEETINGRESPONSE_SENDRESPONSE, EAS_TAG(8, 0x12));
    assert_int_equal(EAS_PROVISION_ACCOUNTONLYREMOTEWIPE, EAS_TAG(14, 0x3b));
    assert_int_equal(EAS_AIRSYNCBASE_BODY, EAS_TAG(17, 0x0a));
    assert_int_equal(EAS_AIRSYNCBASE_INSTANCEID, EAS_TAG(17, 0x2d));
    assert_int_equal(EAS_SETTINGS_RIGHTSMANAGEMENTINFORMATION, EAS_TAG(18, 0x2b));
    assert_int_equal(EAS_COMPOSEMAIL_FORWARDEEEMAIL, EAS_TAG(21, 0x18));
    assert_int_equal(EAS_EMAIL2_SEND, EAS_TAG(22, 0x17));
    assert_int_equal(EAS_RIGHTSMANAGEMENT_REMOVERIGHTSMANAGEMENTPROTECTION, EAS_TAG(24, 0x18));
    assert_int_equal(EAS_FIND_GALSEARCHCRITERION, EAS_TAG(25, 0x19));
    assert_int_equal(EAS_FIND_PICTURE, EAS_TAG(25, 0x22));
    /* Gaps the specification leaves are unknown. */
    assert_null(wbxml_tag_name(EAS_TAG(17, 0x09)));
    assert_null(wbxml_tag_name(EAS_TAG(4, 0x2b)));
    assert_null(wbxml_tag_name(EAS_TAG(14, 0x12)));
    assert_null(wbxml_tag_name(EAS_TAG(25, 0x0f)));
    assert_null(wbxml_tag_name(EAS_TAG(0, 0x04)));
    /* Every name maps back to its tag, and names are unique within a page. */
    for (unsigned p = 0; p < EAS_PAGE_COUNT; p++) {
        assert_int_equal(wbxml_page_lookup(wbxml_page_name(p)), (int)p);
        for (unsigned t = 0; t < 64; t++) {
            const char *n = wbxml_tag_name(EAS_TAG(p, t));
            if (n == NULL)
                continue;
            assert_true(t >= 5);
            assert_int_equal(wbxml_tag_lookup(wbxml_page_name(p), n), (int)EAS_TAG(p, t));
            count++;
        }
    }
    assert_int_equal(count, 644);
    assert_int_equal(wbxml_tag_lookup("AirSync", "Nope"), -1);
    assert_int_equal(wbxml_tag_lookup("Nope", "Sync"), -1);
}

/* ---- every token through encoder and decoder -------------------------------------- */

static void test_every_token(void **state)
{
    for (unsigned p = 0; p < EAS_PAGE_COUNT; p++) {
        for (unsigned t = 5; t < 64; t++) {
            unsigned tag = EAS_TAG(p, t);
            struct eas_doc *d, *back;
            struct eas_node *root;
            uint8_t *out;
            size_t len;
            char err[128];

            if (wbxml_tag_name(tag) == NULL)
                continue;
            /* The token as root, as an empty child, as a text child. */
            d = eas_doc_new();
            root = eas_add(d, NULL, tag);
            assert_non_null(eas_add(d, root, tag));
            assert_non_null(eas_add_text(d, root, EAS_AIRSYNC_SYNCKEY, "k"));
            assert_non_null(eas_add_text(d, root, tag, wbxml_tag_name(tag)));
            assert_int_equal(wbxml_encode(d, &out, &len), 0);
            assert_int_equal(wbxml_decode(out, len, &back, err, sizeof(err)), 0);
            root = eas_doc_root(back);
            assert_int_equal(root->tag, tag);
            assert_int_equal(root->first->tag, tag);
            assert_null(root->first->data);
            assert_int_equal(root->first->next->tag, EAS_AIRSYNC_SYNCKEY);
            assert_string_equal(eas_text(root->first->next), "k");
            assert_int_equal(root->last->tag, tag);
            assert_string_equal(eas_text(root->last), wbxml_tag_name(tag));
            /* Exactly: [SWITCH p] tag|C [SWITCH p] tag [SWITCH 0] SyncKey ... */
            assert_int_equal(out[len - 1], 0x01);
            if (p != 0) {
                assert_int_equal(out[4], 0x00);
                assert_int_equal(out[5], p);
                assert_int_equal(out[6], t | 0x40);
                assert_int_equal(out[7], t);
            } else {
                assert_int_equal(out[4], t | 0x40);
                assert_int_equal(out[5], t);
            }
            free(out);
            eas_doc_free(d);
            eas_doc_free(back);
        }
    }
}

/* ---- the MS-ASWBXML example: a Sync response with a new contact ------------------- */

static const uint8_t spec_example[] = {
    0x03, 0x01, 0x6A, 0x00, 0x45, 0x5C, 0x4F, 0x50, 0x03, 0x43, 0x6F, 0x6E, 0x74, 0x61, 0x63, 0x74,
    0x73, 0x00, 0x01, 0x4B, 0x03, 0x32, 0x00, 0x01, 0x52, 0x03, 0x32, 0x00, 0x01, 0x4E, 0x03, 0x31,
    0x00, 0x01, 0x56, 0x47, 0x4D, 0x03, 0x32, 0x3A, 0x31, 0x00, 0x01, 0x5D, 0x00, 0x11, 0x4A, 0x46,
    0x03, 0x31, 0x00, 0x01, 0x4C, 0x03, 0x30, 0x00, 0x01, 0x4D, 0x03, 0x31, 0x00, 0x01, 0x01, 0x00,
    0x01, 0x5E, 0x03, 0x46, 0x75, 0x6E, 0x6B, 0x2C, 0x20, 0x44, 0x6F, 0x6E, 0x00, 0x01, 0x5F, 0x03,
    0x44, 0x6F, 0x6E, 0x00, 0x01, 0x69, 0x03, 0x46, 0x75, 0x6E, 0x6B, 0x00, 0x01, 0x00, 0x11, 0x56,
    0x03, 0x31, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
};

static struct eas_doc *spec_tree(void)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_node *sync, *coll, *add, *app, *body;

    sync = eas_add(d, NULL, EAS_AIRSYNC_SYNC);
    coll = eas_add(d, eas_add(d, sync, EAS_AIRSYNC_COLLECTIONS), EAS_AIRSYNC_COLLECTION);
    eas_add_text(d, coll, EAS_AIRSYNC_CLASS, "Contacts");
    eas_add_text(d, coll, EAS_AIRSYNC_SYNCKEY, "2");
    eas_add_text(d, coll, EAS_AIRSYNC_COLLECTIONID, "2");
    eas_add_int(d, coll, EAS_AIRSYNC_STATUS, 1);
    add = eas_add(d, eas_add(d, coll, EAS_AIRSYNC_COMMANDS), EAS_AIRSYNC_ADD);
    eas_add_text(d, add, EAS_AIRSYNC_SERVERID, "2:1");
    app = eas_add(d, add, EAS_AIRSYNC_APPLICATIONDATA);
    body = eas_add(d, app, EAS_AIRSYNCBASE_BODY);
    eas_add_int(d, body, EAS_AIRSYNCBASE_TYPE, 1);
    eas_add_int(d, body, EAS_AIRSYNCBASE_ESTIMATEDDATASIZE, 0);
    eas_add_int(d, body, EAS_AIRSYNCBASE_TRUNCATED, 1);
    eas_add_text(d, app, EAS_CONTACTS_FILEAS, "Funk, Don");
    eas_add_text(d, app, EAS_CONTACTS_FIRSTNAME, "Don");
    eas_add_text(d, app, EAS_CONTACTS_LASTNAME, "Funk");
    assert_non_null(eas_add_int(d, app, EAS_AIRSYNCBASE_NATIVEBODYTYPE, 1));
    return d;
}

static void test_spec_example(void **state)
{
    struct eas_doc *d = spec_tree(), *back;
    struct eas_node *coll, *app;
    uint8_t *out;
    size_t len;
    char err[128];

    assert_int_equal(wbxml_encode(d, &out, &len), 0);
    assert_int_equal(len, sizeof(spec_example));
    assert_memory_equal(out, spec_example, len);
    free(out);

    assert_int_equal(wbxml_decode(spec_example, sizeof(spec_example), &back, err, sizeof(err)), 0);
    coll =
        eas_child(eas_child(eas_doc_root(back), EAS_AIRSYNC_COLLECTIONS), EAS_AIRSYNC_COLLECTION);
    assert_string_equal(eas_child_text(coll, EAS_AIRSYNC_CLASS), "Contacts");
    assert_int_equal(eas_child_int(coll, EAS_AIRSYNC_STATUS, -1), 1);
    app = eas_child(eas_child(eas_child(coll, EAS_AIRSYNC_COMMANDS), EAS_AIRSYNC_ADD),
                    EAS_AIRSYNC_APPLICATIONDATA);
    assert_string_equal(eas_child_text(app, EAS_CONTACTS_FILEAS), "Funk, Don");
    assert_int_equal(
        eas_child_int(eas_child(app, EAS_AIRSYNCBASE_BODY), EAS_AIRSYNCBASE_ESTIMATEDDATASIZE, -1),
        0);
    assert_int_equal(eas_child_int(app, EAS_AIRSYNCBASE_NATIVEBODYTYPE, -1), 1);
    assert_null(eas_child_text(app, EAS_CONTACTS_MIDDLENAME));
    /* Re-encoding gives the same bytes. */
    assert_int_equal(wbxml_encode(back, &out, &len), 0);
    assert_memory_equal(out, spec_example, sizeof(spec_example));
    free(out);
    eas_doc_free(back);
    eas_doc_free(d);
}

/* A FolderSync request as clients send it (MS-ASCMD 4.5.1), with a multi-byte opaque
 * length and a root outside page 0. */
static void test_foldersync_and_opaque(void **state)
{
    static const uint8_t fs[] = {0x00, 0x07, 0x56, 0x52, 0x03, '0', 0x00, 0x01, 0x01};
    uint8_t big[300 + 12];
    struct eas_doc *d;
    char err[128];
    size_t n = 0;

    d = dec(fs, sizeof(fs), err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(eas_doc_root(d)->tag, EAS_FOLDERHIERARCHY_FOLDERSYNC);
    assert_string_equal(eas_child_text(eas_doc_root(d), EAS_FOLDERHIERARCHY_SYNCKEY), "0");
    eas_doc_free(d);

    /* ComposeMail:SendMail with Mime as OPAQUE of 300 bytes (length 0x82 0x2C). */
    big[n++] = 0x00;
    big[n++] = 0x15;
    big[n++] = 0x45;
    big[n++] = 0x50;
    big[n++] = 0xc3;
    big[n++] = 0x82;
    big[n++] = 0x2c;
    for (int i = 0; i < 300; i++)
        big[n++] = (uint8_t)i; /* binary, NULs included */
    big[n++] = 0x01;
    big[n++] = 0x01;
    d = dec(big, n, err, sizeof(err));
    assert_non_null(d);
    struct eas_node *mime = eas_child(eas_doc_root(d), EAS_COMPOSEMAIL_MIME);
    assert_non_null(mime);
    assert_int_equal(mime->len, 300);
    assert_int_equal(mime->opaque, 1);
    assert_int_equal((uint8_t)mime->data[299], 299 & 0xff);
    /* Re-encodes as OPAQUE with the same length bytes. */
    uint8_t *out;
    size_t len;
    assert_int_equal(wbxml_encode(d, &out, &len), 0);
    assert_int_equal(len, n + 4);
    assert_memory_equal(out + 4, big, n);
    free(out);
    eas_doc_free(d);

    /* Several strings in one element are concatenated. */
    static const uint8_t two[] = {0x45, 0x4b, 0x03, 'a', 0x00, 0x03, 'b', 0x00, 0x01, 0x01};
    d = dec(two, sizeof(two), err, sizeof(err));
    assert_non_null(d);
    assert_string_equal(eas_child_text(eas_doc_root(d), EAS_AIRSYNC_SYNCKEY), "ab");
    eas_doc_free(d);
}

/* ---- refusals ---------------------------------------------------------------------- */

static void test_truncation_everywhere(void **state)
{
    char err[128];

    for (size_t cut = 0; cut < sizeof(spec_example); cut++) {
        struct eas_doc *d = (struct eas_doc *)1;
        uint8_t *copy = malloc(cut + 1); /* exact size: ASan sees any over-read */
        memcpy(copy, spec_example, cut);
        assert_int_equal(wbxml_decode(copy, cut, &d, err, sizeof(err)), -1);
        assert_null(d);
        assert_true(err[0] != '\0');
        free(copy);
    }
    struct eas_doc *d;
    assert_int_equal(wbxml_decode(NULL, 0, &d, err, sizeof(err)), -1);
}

static void test_refusals(void **state)
{
    /* Structure. */
    refused((const uint8_t[]){0x45, 0x01, 0x45, 0x01}, 4, "data after the root");
    refused((const uint8_t[]){0x45, 0x01, 0x01}, 3, "data after the root");
    refused((const uint8_t[]){0x01}, 1, "END without an open element");
    refused((const uint8_t[]){0x03, 'x', 0x00}, 3, "text outside the root");
    refused((const uint8_t[]){0x45}, 1, "truncated document");
    refused((const uint8_t[]){0x00}, 1, "truncated SWITCH_PAGE");
    refused((const uint8_t[]){0}, 0, "no root element");
    refused((const uint8_t[]){0x45, 0x4b, 0x01, 0x03, 'x', 0x00, 0x01}, 7,
            "text mixed with elements");
    refused((const uint8_t[]){0x45, 0x03, 'x', 0x00, 0x4b, 0x01, 0x01}, 7,
            "element mixed with text");
    /* Unknown pages and tokens. */
    refused((const uint8_t[]){0x00, 26, 0x45, 0x01}, 4, "unknown code page 26");
    refused((const uint8_t[]){0x00, 0xff, 0x45, 0x01}, 4, "unknown code page 255");
    refused((const uint8_t[]){0x00, 17, 0x49, 0x01}, 4, "unknown token 0x09 in code page 17");
    refused((const uint8_t[]){0x2a}, 1, "unknown token 0x2a in code page 0");
    refused((const uint8_t[]){0x00, 25, 0x4f, 0x01}, 4, "unknown token 0x0f in code page 25");
    /* WBXML features ActiveSync does not use. */
    refused((const uint8_t[]){0xc5, 0x01, 0x01}, 3, "attributes");
    refused((const uint8_t[]){0x85, 0x01}, 2, "attributes");
    refused((const uint8_t[]){0x45, 0x02, 0x41, 0x01}, 4, "character entities");
    refused((const uint8_t[]){0x45, 0x83, 0x00, 0x01}, 4, "string table references");
    refused((const uint8_t[]){0x45, 0x43, 0x01}, 3, "processing instructions");
    refused((const uint8_t[]){0x04, 0x00}, 2, "literal");
    refused((const uint8_t[]){0x45, 0x44, 0x00, 0x01}, 4, "literal");
    refused((const uint8_t[]){0x84, 0x00}, 2, "literal");
    refused((const uint8_t[]){0xc4, 0x00}, 2, "literal");
    for (uint8_t ext = 0x40; ext <= 0xc2; ext++)
        if ((ext & 0x3f) <= 0x02)
            refused((const uint8_t[]){0x45, ext, 0x00, 0x01}, 4, "extension tokens");
    /* Strings and opaque data. */
    refused((const uint8_t[]){0x45, 0x03, 'a', 'b'}, 4, "truncated inline string");
    refused((const uint8_t[]){0x45, 0xc3, 0x05, 'a', 'b'}, 5, "truncated opaque");
    refused((const uint8_t[]){0x45, 0xc3, 0x85}, 3, "truncated multi-byte integer");
    refused((const uint8_t[]){0x45, 0xc3, 0x90, 0x80, 0x80, 0x80, 0x00, 0x01}, 8,
            "overflows 32 bits");
    refused((const uint8_t[]){0x45, 0xc3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 8,
            "longer than 5 bytes");
    refused((const uint8_t[]){0x45, 0xc3, 0x88, 0x80, 0x80, 0x01, 0x01}, 7, "exceeds the limit");
    refused((const uint8_t[]){0x45, 0x03, 0xc3, 0x28, 0x00, 0x01}, 6, "not UTF-8");
    refused((const uint8_t[]){0x45, 0x03, 0xed, 0xa0, 0x80, 0x00, 0x01}, 7, "not UTF-8");
    refused((const uint8_t[]){0x45, 0x03, 0xe0, 0x80, 0xaf, 0x00, 0x01}, 7, "not UTF-8");
    refused((const uint8_t[]){0x45, 0x03, 0xf4, 0x90, 0x80, 0x80, 0x00, 0x01}, 8, "not UTF-8");
}

static void test_header_refusals(void **state)
{
    static const struct {
        uint8_t b[8];
        size_t len;
        const char *why;
    } cases[] = {
        {{0x02, 0x01, 0x6a, 0x00, 0x45, 0x01}, 6, "version 0x02"},
        {{0x03, 0x00, 0x00, 0x6a, 0x00, 0x45, 0x01}, 7, "public identifier 0"},
        {{0x03, 0x81, 0x01, 0x6a, 0x00, 0x45, 0x01}, 7, "public identifier 129"},
        {{0x03, 0x01, 0x04, 0x00, 0x45, 0x01}, 6, "charset 4"},
        {{0x03, 0x01, 0x6a, 0x02, 'a', 0x00, 0x45, 0x01}, 8, "string table of 2 bytes"},
        {{0x03, 0x01, 0x6a}, 3, "truncated header"},
        {{0x03, 0x01, 0xea}, 3, "truncated header"},
    };
    char err[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct eas_doc *d;
        assert_int_equal(wbxml_decode(cases[i].b, cases[i].len, &d, err, sizeof(err)), -1);
        if (strstr(err, cases[i].why) == NULL)
            fail_msg("case %zu: '%s', expected '%s'", i, err, cases[i].why);
    }
    /* The multi-byte form of public id 1 and of charset 106 are the same numbers. */
    static const uint8_t mb[] = {0x03, 0x80, 0x01, 0x80, 0x6a, 0x80, 0x00, 0x45, 0x01};
    struct eas_doc *d;
    assert_int_equal(wbxml_decode(mb, sizeof(mb), &d, err, sizeof(err)), 0);
    eas_doc_free(d);
}

static void test_depth_and_counts(void **state)
{
    uint8_t *buf = malloc(4 + 2 * (WBXML_MAX_DEPTH + 1));
    struct eas_doc *d;
    char err[128];
    size_t n;

    /* Exactly the limit is accepted, one more is refused. */
    for (int extra = 0; extra <= 1; extra++) {
        int depth = WBXML_MAX_DEPTH + extra;
        memcpy(buf, hdr, 4);
        n = 4;
        for (int i = 0; i < depth; i++)
            buf[n++] = 0x45;
        for (int i = 0; i < depth; i++)
            buf[n++] = 0x01;
        int rc = wbxml_decode(buf, n, &d, err, sizeof(err));
        if (extra == 0) {
            assert_int_equal(rc, 0);
            eas_doc_free(d);
        } else {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "nesting deeper"));
        }
    }
    free(buf);

    /* Too many elements. */
    size_t cap = 4 + 2 + WBXML_MAX_NODES + 1;
    buf = malloc(cap);
    memcpy(buf, hdr, 4);
    n = 4;
    buf[n++] = 0x45;
    for (int i = 0; i < WBXML_MAX_NODES; i++)
        buf[n++] = 0x0b;
    buf[n++] = 0x01;
    assert_int_equal(wbxml_decode(buf, n, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than"));
    free(buf);

    /* An inline string longer than the limit is refused without scanning past it. */
    cap = 4 + 2 + WBXML_MAX_STRING + 3;
    buf = malloc(cap);
    memcpy(buf, hdr, 4);
    buf[4] = 0x45;
    buf[5] = 0x03;
    memset(buf + 6, 'a', WBXML_MAX_STRING + 1);
    buf[6 + WBXML_MAX_STRING + 1] = 0x00;
    buf[6 + WBXML_MAX_STRING + 2] = 0x01;
    assert_int_equal(wbxml_decode(buf, cap, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exceeds the limit"));
    /* And exactly the limit is fine. */
    buf[6 + WBXML_MAX_STRING] = 0x00;
    buf[6 + WBXML_MAX_STRING + 1] = 0x01;
    assert_int_equal(wbxml_decode(buf, cap - 1, &d, err, sizeof(err)), 0);
    assert_int_equal(eas_doc_root(d)->len, WBXML_MAX_STRING);
    eas_doc_free(d);
    free(buf);
}

/* ---- encoder and writer ------------------------------------------------------------ */

static void test_writer_page_switching(void **state)
{
    struct wbxml_writer w;
    uint8_t *out;
    size_t len;
    static const uint8_t want[] = {0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x4c, 0x03, '1',
                                   0x00, 0x01, 0x4e, 0x4f, 0x48, 0x03, '5',  0x00, 0x01, 0x00,
                                   0x11, 0x4a, 0x00, 0x07, 0x07, 0x01, 0x01, 0x00, 0x00, 0x4b,
                                   0xc3, 0x02, 'o',  'k',  0x01, 0x01, 0x01};

    wbxml_writer_init(&w);
    wbxml_write_open(&w, EAS_FOLDERHIERARCHY_FOLDERSYNC);
    wbxml_write_text(&w, EAS_FOLDERHIERARCHY_STATUS, "1", 1);
    wbxml_write_open(&w, EAS_FOLDERHIERARCHY_CHANGES);
    wbxml_write_open(&w, EAS_FOLDERHIERARCHY_ADD);
    wbxml_write_text(&w, EAS_FOLDERHIERARCHY_SERVERID, "5", 1);
    wbxml_write_open(&w, EAS_AIRSYNCBASE_BODY);             /* switch to 17 */
    wbxml_write_empty(&w, EAS_FOLDERHIERARCHY_DISPLAYNAME); /* back to 7 */
    wbxml_write_close(&w);
    wbxml_write_close(&w);
    wbxml_write_opaque(&w, EAS_AIRSYNC_SYNCKEY, "ok", 2); /* to 0 */
    wbxml_write_close(&w);
    wbxml_write_close(&w);
    assert_int_equal(wbxml_writer_finish(&w, &out, &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(out, want, len);
    free(out);

    /* Sticky errors. */
    wbxml_writer_init(&w);
    wbxml_write_open(&w, EAS_AIRSYNC_SYNC);
    assert_int_equal(wbxml_writer_finish(&w, &out, &len), -1); /* unclosed */
    wbxml_writer_init(&w);
    wbxml_write_empty(&w, EAS_TAG(17, 0x09)); /* unknown tag */
    assert_int_equal(wbxml_writer_finish(&w, &out, &len), -1);
    wbxml_writer_init(&w);
    wbxml_write_empty(&w, EAS_AIRSYNC_SYNC);
    wbxml_write_empty(&w, EAS_AIRSYNC_SYNC); /* second root */
    assert_int_equal(wbxml_writer_finish(&w, &out, &len), -1);
    wbxml_writer_init(&w);
    wbxml_write_text(&w, EAS_AIRSYNC_SYNC, "a\0b", 3); /* NUL in STR_I */
    assert_int_equal(wbxml_writer_finish(&w, &out, &len), -1);
    wbxml_writer_init(&w);
    wbxml_write_close(&w);
    assert_int_equal(wbxml_writer_finish(&w, &out, &len), -1);
    wbxml_writer_init(&w);
    for (int i = 0; i <= WBXML_MAX_DEPTH; i++)
        wbxml_write_open(&w, EAS_AIRSYNC_SYNC);
    wbxml_writer_discard(&w);
    wbxml_writer_init(&w);
    assert_int_equal(wbxml_writer_finish(&w, &out, &len), -1); /* no root */
}

static void test_tree_misuse(void **state)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_node *root = eas_add(d, NULL, EAS_AIRSYNC_SYNC);
    uint8_t *out;
    size_t len;

    assert_non_null(root);
    assert_null(eas_add(d, NULL, EAS_AIRSYNC_SYNC)); /* second root */
    assert_int_equal(wbxml_encode(d, &out, &len), -1);
    eas_doc_free(d);

    d = eas_doc_new();
    root = eas_add(d, NULL, EAS_AIRSYNC_SYNC);
    assert_null(eas_add_textn(d, root, EAS_AIRSYNC_SYNCKEY, "a\0b", 3));
    assert_int_equal(wbxml_encode(d, &out, &len), -1);
    eas_doc_free(d);

    d = eas_doc_new();
    assert_null(eas_add(d, NULL, EAS_TAG(3, 0x3f)));
    assert_int_equal(wbxml_encode(d, &out, &len), -1);
    eas_doc_free(d);

    d = eas_doc_new();
    assert_int_equal(wbxml_encode(d, &out, &len), -1); /* empty */
    assert_null(wbxml_to_xml(d));
    eas_doc_free(d);
    eas_doc_free(NULL);
    assert_null(eas_doc_root(NULL));
}

static void test_reading(void **state)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_node *r = eas_add(d, NULL, EAS_PING_PING);
    struct eas_node *f1, *f2;

    eas_add_text(d, r, EAS_PING_HEARTBEATINTERVAL, "480");
    f1 = eas_add(d, eas_add(d, r, EAS_PING_FOLDERS), EAS_PING_FOLDER);
    f2 = eas_add(d, f1->parent, EAS_PING_FOLDER);
    eas_add_text(d, f1, EAS_PING_ID, "1");
    eas_add_text(d, f2, EAS_PING_ID, "2");
    eas_add_text(d, r, EAS_PING_STATUS, "0x10");
    eas_add_text(d, r, EAS_PING_MAXFOLDERS, " 12");
    eas_add_int(d, r, EAS_PING_CLASS, -42);
    eas_add_text(d, r, EAS_PING_AUTDSTATE, "99999999999999999999");
    assert_int_equal(eas_child_int(r, EAS_PING_HEARTBEATINTERVAL, 0), 480);
    assert_int_equal(eas_child_int(r, EAS_PING_STATUS, 7), 7);
    assert_int_equal(eas_child_int(r, EAS_PING_MAXFOLDERS, 7), 7);
    assert_int_equal(eas_child_int(r, EAS_PING_CLASS, 7), -42);
    assert_int_equal(eas_child_int(r, EAS_PING_AUTDSTATE, 7), 7);
    assert_int_equal(eas_child_int(r, EAS_PING_ID, 7), 7);
    assert_int_equal(eas_child_int(NULL, EAS_PING_ID, 7), 7);
    assert_ptr_equal(eas_child(f1->parent, EAS_PING_FOLDER), f1);
    assert_ptr_equal(eas_next(f1, EAS_PING_FOLDER), f2);
    assert_null(eas_next(f2, EAS_PING_FOLDER));
    assert_string_equal(eas_child_text(f2, EAS_PING_ID), "2");
    assert_string_equal(eas_text(NULL), "");
    assert_string_equal(eas_text(f1), "");
    assert_null(eas_child_text(r, EAS_PING_ID));
    eas_doc_free(d);
}

/* ---- XML forms ---------------------------------------------------------------------- */

static void test_xml(void **state)
{
    struct eas_doc *d = spec_tree(), *back;
    char *xml, err[128];
    uint8_t *a, *b;
    size_t alen, blen;
    struct eas_node *n;

    n = eas_add_opaque(d, eas_doc_root(d), EAS_AIRSYNC_LIMIT, "\x00\x01<", 3);
    assert_non_null(n);
    n = eas_add_opaque(d, eas_doc_root(d), EAS_AIRSYNC_WAIT, "a&b\r\n", 5);
    xml = wbxml_to_xml(d);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "<Sync xmlns=\"AirSync:\">"));
    assert_non_null(strstr(xml, "<Body xmlns=\"AirSyncBase:\">"));
    assert_non_null(strstr(xml, "<FileAs xmlns=\"Contacts:\">Funk, Don</FileAs>"));
    assert_non_null(strstr(xml, "<FirstName xmlns=\"Contacts:\">Don</FirstName>"));
    assert_non_null(strstr(xml, "<Limit opaque=\"base64\">AAE8</Limit>"));
    assert_non_null(strstr(xml, "<Wait opaque=\"text\">a&amp;b&#13;\n</Wait>"));
    /* Back through the XML parser: the same WBXML. */
    assert_int_equal(wbxml_from_xml(xml, strlen(xml), &back, err, sizeof(err)), 0);
    assert_int_equal(wbxml_encode(d, &a, &alen), 0);
    assert_int_equal(wbxml_encode(back, &b, &blen), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    free(a);
    free(b);
    free(xml);
    eas_doc_free(back);
    eas_doc_free(d);

    /* Prefixed namespaces without the colon, empty elements. */
    static const char px[] = "<?xml version=\"1.0\"?>\n<!DOCTYPE ActiveSync PUBLIC "
                             "\"-//MICROSOFT//DTD ActiveSync//EN\" \"http://www.microsoft.com/\">"
                             "<fh:FolderSync xmlns:fh=\"FolderHierarchy\">\n  <fh:SyncKey>0"
                             "</fh:SyncKey><fh:Count/></fh:FolderSync>";
    assert_int_equal(wbxml_from_xml(px, sizeof(px) - 1, &back, err, sizeof(err)), 0);
    assert_int_equal(eas_doc_root(back)->tag, EAS_FOLDERHIERARCHY_FOLDERSYNC);
    assert_string_equal(eas_child_text(eas_doc_root(back), EAS_FOLDERHIERARCHY_SYNCKEY), "0");
    assert_null(eas_child(eas_doc_root(back), EAS_FOLDERHIERARCHY_COUNT)->data);
    eas_doc_free(back);

    /* Refusals. */
    static const char *const bad[] = {
        "<Sync/>",                                     /* no namespace */
        "<Sync xmlns=\"Nope:\"/>",                     /* unknown page */
        "<Nope xmlns=\"AirSync:\"/>",                  /* unknown element */
        "<Sync xmlns=\"AirSync:\" a=\"1\"/>",          /* attribute */
        "<Sync xmlns=\"AirSync:\">x<SyncKey/></Sync>", /* mixed */
        "<Sync xmlns=\"AirSync:\"><?pi x?></Sync>",    /* PI */
        "<!DOCTYPE x [<!ENTITY e \"boom\">]><Sync xmlns=\"AirSync:\">&e;</Sync>",
        "<Sync xmlns=\"AirSync:\"><SyncKey>",                /* not well-formed */
        "<Sync xmlns=\"AirSync:\" opaque=\"hex\">00</Sync>", /* opaque mode */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        back = (struct eas_doc *)1;
        if (wbxml_from_xml(bad[i], strlen(bad[i]), &back, err, sizeof(err)) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_null(back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_every_token),
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_foldersync_and_opaque),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_depth_and_counts),
        cmocka_unit_test(test_writer_page_switching),
        cmocka_unit_test(test_tree_misuse),
        cmocka_unit_test(test_reading),
        cmocka_unit_test(test_xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
