/*
 * test_mime.c — the MIME library: exact IMAP ENVELOPE/BODYSTRUCTURE/BODY strings for the
 * corpus in tests/unit/mime-corpus/ (derived by hand from the RFC 3501 grammar), the part
 * table (its offsets must slice the right bytes), decoded header values, RFC 2047/2231
 * decoding, dates, base subjects, the limits (nesting, part count) and blob validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/mime.h"

#ifndef MIME_CORPUS_DIR
#define MIME_CORPUS_DIR "tests/unit/mime-corpus"
#endif

struct msg {
    char *data;
    size_t len;
    void *blob;
    size_t bloblen;
    struct mime_cache c;
};

static char *read_corpus(const char *name, size_t *len)
{
    const char *dirs[] = {getenv("MIME_CORPUS"), MIME_CORPUS_DIR, "tests/unit/mime-corpus",
                          "../tests/unit/mime-corpus", "unit/mime-corpus"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char path[512];
        if (!dirs[i])
            continue;
        snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char *buf = malloc(1 << 20);
        assert_non_null(buf);
        *len = fread(buf, 1, 1 << 20, f);
        fclose(f);
        return buf;
    }
    fail_msg("corpus file %s not found (set MIME_CORPUS)", name);
    return NULL;
}

static void build(struct msg *m)
{
    assert_int_equal(mime_cache_build(m->data, m->len, &m->blob, &m->bloblen), 0);
    assert_int_equal(mime_cache_open(m->blob, m->bloblen, &m->c), 0);
    assert_int_equal(m->c.msg_size, m->len);
    assert_int_equal(m->c.hdr_size + m->c.body_size, m->len);
}

static void load(struct msg *m, const char *name)
{
    memset(m, 0, sizeof(*m));
    m->data = read_corpus(name, &m->len);
    build(m);
}

static void load_mem(struct msg *m, const char *data, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->data = malloc(len + 1);
    assert_non_null(m->data);
    memcpy(m->data, data, len);
    m->len = len;
    build(m);
}

static void done(struct msg *m)
{
    free(m->blob);
    free(m->data);
}

static struct mime_cache_part part(struct msg *m, const char *section)
{
    struct mime_cache_part p;
    if (mime_cache_find(&m->c, section, strlen(section), &p) < 0)
        fail_msg("no section '%s'", section);
    return p;
}

static void assert_slice(struct msg *m, uint64_t off, uint64_t len, const char *want)
{
    assert_true(off + len <= m->len);
    if (len != strlen(want) || memcmp(m->data + off, want, len) != 0)
        fail_msg("slice [%.*s] != [%s]", (int)len, m->data + off, want);
}

/* ---- the corpus ---------------------------------------------------------------------- */

static void test_simple(void **state)
{
    struct msg m;
    load(&m, "simple.eml");
    assert_string_equal(m.c.envelope.p,
                        "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" "
                        "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
                        "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
                        "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
                        "((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL "
                        "\"<B27397-0100000@Blurdybloop.example>\")");
    assert_string_equal(m.c.bodystructure.p, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL "
                                             "NIL \"7BIT\" 55 1 NIL NIL NIL NIL)");
    assert_string_equal(m.c.body.p,
                        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)");
    assert_int_equal(m.c.hdr_size, 271);
    assert_int_equal(m.c.body_size, 55);
    assert_int_equal(m.c.body_lines, 1);
    assert_true(m.c.flags & MIME_CACHE_DATE_VALID);
    assert_int_equal(m.c.date, 760686745); /* 1994-02-08 05:52:25 UTC */
    assert_int_equal(m.c.date_tz, -480);
    assert_false(m.c.flags & MIME_CACHE_HAS_ATTACHMENTS);
    assert_string_equal(m.c.subject.p, "afternoon meeting");
    assert_string_equal(m.c.from_name.p, "Fred Foobar");
    assert_string_equal(m.c.from_mailbox.p, "foobar");
    assert_string_equal(m.c.from_host.p, "Blurdybloop.example");
    assert_string_equal(m.c.to_mailbox.p, "mooch");
    assert_string_equal(m.c.message_id.p, "<B27397-0100000@Blurdybloop.example>");
    /* The message is part "" and, not being multipart, its body is part 1. */
    assert_int_equal(m.c.nparts, 2);
    struct mime_cache_part r = part(&m, ""), p1 = part(&m, "1");
    assert_true(r.flags & MIME_PART_ROOT);
    assert_int_equal(r.hdr_len, 271);
    assert_slice(&m, p1.body_off, p1.body_len,
                 "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n");
    assert_string_equal(p1.type.p, "text");
    assert_string_equal(p1.subtype.p, "plain");
    assert_string_equal(p1.charset.p, "US-ASCII");
    assert_int_equal(p1.parent, 0);
    struct mime_cache_part x;
    assert_int_equal(mime_cache_find(&m.c, "2", 1, &x), -1);
    done(&m);
}

static void test_alternative(void **state)
{
    struct msg m;
    load(&m, "alternative.eml");
    assert_string_equal(
        m.c.envelope.p,
        "(\"Tue, 1 Mar 2022 10:00:00 +0100\" \"Re: lunch\" "
        "((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) "
        "((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.net\")) "
        "NIL NIL \"<orig@example.net>\" \"<alt1@example.org>\")");
    assert_string_equal(m.c.bodystructure.p,
                        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 11 1 NIL "
                        "NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL "
                        "\"QUOTED-PRINTABLE\" 18 1 NIL NIL NIL NIL) \"ALTERNATIVE\" "
                        "(\"BOUNDARY\" \"alt-boundary\") NIL NIL NIL)");
    assert_string_equal(m.c.body.p, "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" "
                                    "11 1)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL "
                                    "\"QUOTED-PRINTABLE\" 18 1) \"ALTERNATIVE\")");
    assert_string_equal(m.c.base_subject.p, "lunch");
    assert_true(m.c.flags & MIME_CACHE_SUBJECT_REPLY);
    assert_string_equal(m.c.in_reply_to.p, "<orig@example.net>");
    assert_string_equal(m.c.references.p, "<root@example.net> <orig@example.net>");
    assert_int_equal(m.c.date, 1646125200);
    assert_int_equal(m.c.date_tz, 60);
    struct mime_cache_part p1 = part(&m, "1"), p2 = part(&m, "2");
    assert_slice(&m, p1.body_off, p1.body_len, "Sure, noon?");
    assert_slice(&m, p1.hdr_off, p1.hdr_len, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    assert_slice(&m, p2.body_off, p2.body_len, "<p>Sure, noon?</p>");
    assert_string_equal(p2.encoding.p, "quoted-printable");
    assert_true(part(&m, "").flags & MIME_PART_MULTIPART);
    assert_int_equal(m.c.nparts, 3);
    done(&m);
}

static void test_mixed(void **state)
{
    struct msg m;
    load(&m, "mixed.eml");
    assert_string_equal(
        m.c.bodystructure.p,
        "(((\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 22 1 NIL NIL NIL NIL)"
        "(\"IMAGE\" \"PNG\" (\"NAME\" \"dot.png\") \"<img1@x>\" NIL \"BASE64\" 12 NIL "
        "(\"INLINE\" (\"FILENAME\" \"dot.png\")) NIL NIL) \"RELATED\" (\"BOUNDARY\" \"rel\") "
        "NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") NIL \"Quarterly report\" "
        "\"BASE64\" 12 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" (\"FILENAME\" "
        "\"report.pdf\")) (\"en\" \"de\") \"http://example.com/report.pdf\") \"MIXED\" "
        "(\"BOUNDARY\" \"outer\") NIL NIL NIL)");
    assert_string_equal(m.c.body.p,
                        "(((\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 22 1)"
                        "(\"IMAGE\" \"PNG\" (\"NAME\" \"dot.png\") \"<img1@x>\" NIL \"BASE64\" 12) "
                        "\"RELATED\")(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") NIL "
                        "\"Quarterly report\" \"BASE64\" 12) \"MIXED\")");
    assert_string_equal(m.c.from_name.p, "Carol Q. Sender");
    assert_true(m.c.flags & MIME_CACHE_HAS_ATTACHMENTS);
    assert_int_equal(m.c.nparts, 5);
    struct mime_cache_part p1 = part(&m, "1"), img = part(&m, "1.2"), pdf = part(&m, "2");
    assert_true(p1.flags & MIME_PART_MULTIPART);
    assert_string_equal(p1.subtype.p, "related");
    assert_slice(&m, part(&m, "1.1").body_off, part(&m, "1.1").body_len,
                 "<img src=\"cid:img1@x\">");
    assert_slice(&m, img.body_off, img.body_len, "iVBORw0KGgo=");
    assert_string_equal(img.content_id.p, "img1@x");
    assert_string_equal(img.filename.p, "dot.png");
    assert_true(img.flags & MIME_PART_INLINE);
    assert_true(img.flags & MIME_PART_ATTACHMENT);
    assert_int_equal(img.depth, 2);
    assert_int_equal(img.parent, 1);
    assert_string_equal(pdf.filename.p, "report.pdf");
    assert_string_equal(pdf.disposition.p, "attachment");
    assert_true(pdf.flags & MIME_PART_ATTACHMENT);
    assert_false(pdf.flags & MIME_PART_INLINE);
    /* BINARY[2]: the decoded bytes of the part. */
    struct buf out = {0};
    assert_int_equal(mime_decode_cte(pdf.encoding.p, m.data + pdf.body_off, pdf.body_len, &out), 0);
    assert_int_equal(out.len, 9);
    assert_memory_equal(out.p, "%PDF-1.4\n", 9);
    buf_free(&out);
    done(&m);
}

static void test_rfc822(void **state)
{
    struct msg m;
    load(&m, "rfc822.eml");
    const char *inner_env =
        "(\"Wed, 2 Mar 2022 08:00:00 +0000\" \"original\" "
        "((\"Grace\" NIL \"grace\" \"example.org\")) ((\"Grace\" NIL \"grace\" \"example.org\")) "
        "((\"Grace\" NIL \"grace\" \"example.org\")) ((NIL NIL \"eve\" \"example.com\")) NIL NIL "
        "NIL \"<inner@example.org>\")";
    char want[2048];
    snprintf(want, sizeof(want),
             "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL "
             "NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 166 %s (\"TEXT\" \"PLAIN\" "
             "(\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 20 2 NIL NIL NIL NIL) 8 NIL "
             "(\"ATTACHMENT\" NIL) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"fw\") NIL NIL NIL)",
             inner_env);
    assert_string_equal(m.c.bodystructure.p, want);
    snprintf(want, sizeof(want),
             "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 1)"
             "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 166 %s (\"TEXT\" \"PLAIN\" "
             "(\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 20 2) 8) \"MIXED\")",
             inner_env);
    assert_string_equal(m.c.body.p, want);
    assert_string_equal(m.c.base_subject.p, "original");
    assert_true(m.c.flags & MIME_CACHE_HAS_ATTACHMENTS);
    struct mime_cache_part p2 = part(&m, "2"), p21 = part(&m, "2.1");
    assert_true(p2.flags & MIME_PART_MESSAGE);
    assert_false(p2.flags & MIME_PART_MULTIPART);
    assert_slice(&m, p2.hdr_off, p2.hdr_len,
                 "Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n");
    /* BODY[2.HEADER] and BODY[2.TEXT] */
    assert_slice(&m, p2.body_off, p2.msg_hdr_len,
                 "From: Grace <grace@example.org>\r\nTo: eve@example.com\r\n"
                 "Subject: original\r\nDate: Wed, 2 Mar 2022 08:00:00 +0000\r\n"
                 "Message-ID: <inner@example.org>\r\n\r\n");
    assert_slice(&m, p2.body_off + p2.msg_hdr_len, p2.body_len - p2.msg_hdr_len,
                 "Inner body\r\nline two");
    assert_slice(&m, p21.body_off, p21.body_len, "Inner body\r\nline two");
    assert_int_equal(p21.hdr_off, p2.body_off);
    assert_int_equal(p21.parent, 2);
    done(&m);
}

static void test_encoded(void **state)
{
    struct msg m;
    load(&m, "encoded.eml");
    /* ENVELOPE carries the raw header values: encoded words stay encoded. */
    assert_non_null(strstr(m.c.envelope.p, "((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL "
                                           "\"keld\" \"dkuug.dk\"))"));
    assert_non_null(strstr(m.c.envelope.p, "(\"=?utf-8?q?Ren=C3=A9?=\" NIL \"rene\" "
                                           "\"example.fr\")"));
    assert_string_equal(m.c.subject.p, "Hello World plain caf\xc3\xa9 au lait =?bogus?x?abc?= "
                                       "=?utf-8?q?broken");
    assert_string_equal(m.c.from_name.p, "Keld J\xc3\xb8rn Simonsen");
    assert_string_equal(m.c.from.p, "Keld J\xc3\xb8rn Simonsen <keld@dkuug.dk>");
    assert_string_equal(m.c.to.p, "J\xc3\xb6rg <joerg@example.de>, \"Ren\xc3\xa9\" "
                                  "<rene@example.fr>");
    assert_string_equal(m.c.to_name.p, "J\xc3\xb6rg");
    /* unknown charset: bytes kept, then read as Latin-1 to stay valid UTF-8 */
    assert_string_equal(m.c.cc.p, "abc\xc3\xbf <u@example.com>");
    assert_int_equal(m.c.date, 1646355723);
    assert_int_equal(m.c.date_tz, 0);
    done(&m);
}

static void test_rfc2231(void **state)
{
    struct msg m;
    load(&m, "rfc2231.eml");
    assert_string_equal(
        m.c.bodystructure.p,
        "((\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"=?utf-8?B?w6nDqS50eHQ=?=\") NIL NIL "
        "\"7BIT\" 4 NIL (\"ATTACHMENT\" (\"FILENAME*\" \"utf-8''%E2%82%AC%20rates.txt\")) NIL "
        "NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET*\" \"us-ascii'en'ascii\" \"TITLE*\" "
        "\"iso-8859-1'en'%A3%20rate\") NIL NIL \"7BIT\" 1 1 NIL (\"ATTACHMENT\" (\"FILENAME\" "
        "\"longname.txt\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b2231\") NIL NIL NIL)");
    struct mime_cache_part p1 = part(&m, "1"), p2 = part(&m, "2");
    assert_string_equal(p1.filename.p, "\xe2\x82\xac rates.txt");
    assert_string_equal(p2.filename.p, "longname.txt");
    assert_string_equal(p2.charset.p, "ascii");
    assert_slice(&m, p1.body_off, p1.body_len, "data");
    /* the decoded parameter API directly */
    struct mime_arena a = {0};
    char *t, *s;
    struct mime_param *pp;
    size_t np;
    const char *ct = "text/plain; title*=iso-8859-1'en'%A3%20rate; name=\"=?utf-8?q?a=C3=A9?=\"";
    assert_int_equal(mime_parse_ctype(&a, ct, strlen(ct), 1, &t, &s, &pp, &np), 0);
    assert_string_equal(mime_param_decoded(&a, pp, np, "title"), "\xc2\xa3 rate");
    assert_string_equal(mime_param_decoded(&a, pp, np, "name"), "a\xc3\xa9");
    assert_null(mime_param_decoded(&a, pp, np, "missing"));
    mime_arena_free(&a);
    done(&m);
}

static void test_missing_final_boundary(void **state)
{
    struct msg m;
    load(&m, "nofinal.eml");
    assert_string_equal(m.c.bodystructure.p,
                        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 1 NIL "
                        "NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL "
                        "\"7BIT\" 20 2 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"nf\") NIL NIL "
                        "NIL)");
    assert_slice(&m, part(&m, "1").body_off, part(&m, "1").body_len, "one");
    assert_slice(&m, part(&m, "2").body_off, part(&m, "2").body_len, "two\r\nruns to the end");
    done(&m);
}

static void test_missing_boundary(void **state)
{
    struct msg m;
    load(&m, "noboundary.eml");
    /* RFC 2046 robustness: an unusable multipart reads as text/plain. */
    assert_string_equal(m.c.bodystructure.p, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL "
                                             "NIL \"7BIT\" 47 5 NIL NIL NIL NIL)");
    assert_int_equal(m.c.nparts, 2);
    done(&m);
}

static void test_8bit_header(void **state)
{
    struct msg m;
    load(&m, "eightbit.eml");
    /* 8-bit strings travel as literals; '"' inside a literal needs no escape. */
    assert_string_equal(m.c.envelope.p,
                        "(NIL {16}\r\nGr\xc3\xbc\xc3\x9f"
                        "e \"quoted\" (({4}\r\nJ\xf6rg NIL "
                        "\"joerg\" \"example.de\")) (({4}\r\nJ\xf6rg NIL \"joerg\" "
                        "\"example.de\")) (({4}\r\nJ\xf6rg NIL \"joerg\" \"example.de\")) ((NIL "
                        "NIL \"a\" \"example.com\")) NIL NIL NIL NIL)");
    assert_string_equal(m.c.subject.p, "Gr\xc3\xbc\xc3\x9f"
                                       "e \"quoted\"");
    assert_string_equal(m.c.from_name.p, "J\xc3\xb6rg"); /* Latin-1 read as such */
    done(&m);
}

static void test_bare_lf(void **state)
{
    struct msg m;
    load(&m, "barelf.eml");
    assert_string_equal(m.c.bodystructure.p,
                        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 11 2 NIL "
                        "NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL "
                        "\"7BIT\" 1 1 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"lf\") NIL NIL "
                        "NIL)");
    assert_int_equal(m.c.hdr_size, 83);
    assert_slice(&m, part(&m, "1").body_off, part(&m, "1").body_len, "line1\nline2");
    assert_slice(&m, part(&m, "2").hdr_off, part(&m, "2").hdr_len, "Content-Type: text/plain\n\n");
    done(&m);
}

static void test_addresses(void **state)
{
    struct msg m;
    load(&m, "addresses.eml");
    assert_string_equal(
        m.c.envelope.p,
        "(NIL \"addresses\" ((\"Doe, John\" NIL \"john\" \"example.com\")(\"Jane Roe\" NIL "
        "\"jane\" \"example.com\")) ((NIL NIL \"\" \"\")) ((NIL NIL \"Group\" NIL)(NIL NIL NIL "
        "NIL)) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL \"friends\" "
        "NIL)(NIL NIL \"a\" \"example.com\")(\"B \\\"Q\\\" C\" NIL \"b\" \"example.com\")(NIL "
        "NIL NIL NIL)(NIL \"@route.example,@r2.example\" \"c\" \"example.com\")) ((NIL NIL "
        "\"root\" \"\")(NIL NIL \"quoted local\" \"example.com\")) NIL NIL)");
    assert_string_equal(m.c.from_name.p, "Doe, John");
    assert_string_equal(m.c.cc_mailbox.p, "a"); /* first mailbox, inside the group */
    assert_string_equal(m.c.to_mailbox.p, "");
    done(&m);
}

static void test_empty_and_header_only(void **state)
{
    struct msg m;
    load_mem(&m, "", 0);
    assert_string_equal(m.c.envelope.p, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    assert_string_equal(m.c.bodystructure.p, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL "
                                             "NIL \"7BIT\" 0 0 NIL NIL NIL NIL)");
    assert_int_equal(m.c.hdr_size, 0);
    done(&m);
    load(&m, "headeronly.eml");
    assert_int_equal(m.c.hdr_size, m.len);
    assert_int_equal(m.c.body_size, 0);
    assert_string_equal(m.c.subject.p, "only a header");
    done(&m);
    /* No header at all: the first line is not a field, so everything is body. */
    load_mem(&m, "just text\r\n", 11);
    assert_int_equal(m.c.hdr_size, 0);
    assert_int_equal(m.c.body_lines, 1);
    done(&m);
    /* NUL bytes in a header value are dropped from IMAP strings. */
    load_mem(&m, "Subject: a\0b\r\n\r\nx", 17);
    assert_non_null(strstr(m.c.envelope.p, "\"ab\""));
    done(&m);
}

static void test_digest_and_encoding(void **state)
{
    const char *msg = "Content-Type: multipart/digest; boundary=d\r\n\r\n"
                      "--d\r\n\r\n"
                      "Subject: one\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
                      "--a\r\nContent-Type: text/plain\r\n"
                      "Content-Transfer-Encoding: Base64 (comment)\r\n\r\nQQ==\r\n"
                      "--a\r\nContent-Type: text/html\r\n\r\n<b>A</b>\r\n--a--\r\n"
                      "--d--\r\n";
    struct msg m;
    load_mem(&m, msg, strlen(msg));
    /* RFC 2046 §5.1.5: a digest part without Content-Type is message/rfc822. */
    struct mime_cache_part p1 = part(&m, "1"), p11 = part(&m, "1.1"), p12 = part(&m, "1.2");
    assert_string_equal(p1.type.p, "message");
    assert_true(p1.flags & MIME_PART_MESSAGE);
    assert_true(p1.flags & MIME_PART_MULTIPART);
    assert_int_equal(p1.hdr_len, 2);
    assert_slice(&m, p1.body_off, p1.msg_hdr_len,
                 "Subject: one\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n");
    assert_string_equal(p11.encoding.p, "base64");
    assert_slice(&m, p11.body_off, p11.body_len, "QQ==");
    assert_slice(&m, p12.body_off, p12.body_len, "<b>A</b>");
    assert_int_equal(p12.parent, 1);
    assert_int_equal(m.c.nparts, 4);
    assert_non_null(strstr(m.c.bodystructure.p, "\"BASE64\" 4 1 NIL"));
    assert_non_null(strstr(m.c.bodystructure.p, "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" "));
    done(&m);
}

/* ---- limits ------------------------------------------------------------------------- */

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_deep_nesting(void **state)
{
    struct buf b = {0};
    const int levels = 40;
    for (int i = 0; i < levels; i++) {
        char line[128];
        snprintf(line, sizeof(line),
                 "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
        buf_puts(&b, line);
    }
    buf_puts(&b, "Content-Type: text/plain\r\n\r\nleaf\r\n");
    for (int i = levels - 1; i >= 0; i--) {
        char line[64];
        snprintf(line, sizeof(line), "--b%d--\r\n", i);
        buf_puts(&b, line);
    }
    struct msg m;
    load_mem(&m, b.p, b.len);
    /* depths 0..31 are multiparts; the one at depth 32 is an opaque leaf */
    assert_int_equal(count(m.c.bodystructure.p, "\"MIXED\""), MIME_MAX_DEPTH);
    assert_int_equal(count(m.c.bodystructure.p, "\"OCTET-STREAM\""), 1);
    assert_int_equal(count(m.c.bodystructure.p, "\"PLAIN\""), 0);
    for (size_t i = 0; i < m.c.nparts; i++) {
        struct mime_cache_part p;
        assert_int_equal(mime_cache_part(&m.c, i, &p), 0);
        assert_true(p.depth <= MIME_MAX_DEPTH);
    }
    done(&m);
    /* nested message/rfc822 the same way */
    b.len = 0;
    for (int i = 0; i < levels; i++)
        buf_puts(&b, "Subject: level\r\nContent-Type: message/rfc822\r\n\r\n");
    buf_puts(&b, "Subject: last\r\n\r\nbody\r\n");
    load_mem(&m, b.p, b.len);
    assert_int_equal(count(m.c.bodystructure.p, "\"RFC822\""), MIME_MAX_DEPTH);
    assert_int_equal(count(m.c.bodystructure.p, "\"OCTET-STREAM\""), 1);
    done(&m);
    buf_free(&b);
}

static void test_many_parts(void **state)
{
    struct buf b = {0};
    buf_puts(&b, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
    for (int i = 0; i < 5000; i++)
        buf_puts(&b, "--x\r\nContent-Type: text/plain\r\n\r\npart\r\n");
    buf_puts(&b, "--x--\r\n");
    struct msg m;
    load_mem(&m, b.p, b.len);
    /* the root and 2047 parts: MIME_MAX_PARTS entities in all */
    assert_int_equal(m.c.nparts, MIME_MAX_PARTS);
    assert_int_equal(count(m.c.bodystructure.p, "\"PLAIN\""), MIME_MAX_PARTS - 1);
    struct mime_cache_part p = part(&m, "2047");
    assert_slice(&m, p.body_off, p.body_len, "part");
    struct mime_cache_part x;
    assert_int_equal(mime_cache_find(&m.c, "2048", 4, &x), -1);
    done(&m);
    buf_free(&b);
}

/* ---- header-level pieces ------------------------------------------------------------ */

static void expect_decode(const char *in, const char *want)
{
    struct buf b = {0};
    mime_header_decode(in, strlen(in), &b);
    if (strcmp(b.p, want) != 0)
        fail_msg("decode '%s': got '%s', want '%s'", in, b.p, want);
    buf_free(&b);
}

static void test_encoded_words(void **state)
{
    expect_decode("=?iso-8859-1?q?this=20is=20some=20text?=", "this is some text");
    expect_decode("=?ISO-8859-1?Q?a?= b", "a b");
    expect_decode("a =?ISO-8859-1?Q?b?=", "a b");
    expect_decode("=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a b");
    expect_decode("=?ISO-8859-1?Q?a?=  \r\n =?ISO-8859-1?Q?b?=", "ab");
    expect_decode("=?ISO-8859-1?Q?a?==?ISO-8859-1?Q?b?=", "ab");
    expect_decode("(=?ISO-8859-1?Q?a?=)", "(a)");
    expect_decode("=?UTF-8?B?4oKs?=", "\xe2\x82\xac");
    expect_decode("=?utf-8?q?=E2=82?= =?utf-8?q?=AC?=", "\xe2\x82\xac"); /* split char */
    expect_decode("=?ISO-8859-1?B?SvZyZw==?=", "J\xc3\xb6rg");
    expect_decode("=?utf-8*en?q?hi?=", "hi");
    expect_decode("=?x-foo?q?a=FFb?=", "a\xff"
                                       "b");
    /* malformed words stay as they are */
    expect_decode("=?utf-8?q?broken", "=?utf-8?q?broken");
    expect_decode("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
    expect_decode("=?utf-8?b?!!!?=", "=?utf-8?b?!!!?=");
    expect_decode("=?utf-8?q?has space?=", "=?utf-8?q?has space?=");
    expect_decode("a = b ?= c", "a = b ?= c");
    expect_decode("", "");
}

static void expect_date(const char *s, int64_t t, int tz)
{
    int64_t got = 0;
    int gtz = 0;
    if (mime_date_parse(s, strlen(s), &got, &gtz) != 0)
        fail_msg("'%s' not parsed", s);
    if (got != t || gtz != tz)
        fail_msg("'%s': got %lld %d, want %lld %d", s, (long long)got, gtz, (long long)t, tz);
}

static void expect_no_date(const char *s)
{
    int64_t t;
    int tz;
    if (mime_date_parse(s, strlen(s), &t, &tz) == 0)
        fail_msg("'%s' parsed as %lld", s, (long long)t);
}

static void test_dates(void **state)
{
    expect_date("Mon, 1 Jan 2001 12:00:00 +0000", 978350400, 0);
    expect_date("1 Jan 01 07:00 EST", 978350400, -300);       /* 2-digit year, no secs */
    expect_date("Fri, 31 Dec 99 23:59:59 GMT", 946684799, 0); /* 99 is 1999 */
    expect_date("1 Jun 49 00:00:00 Z", 2506118400, 0);        /* 49 is 2049 */
    expect_date("1 Jan 101 12:00:00 +0000", 978350400, 0);    /* 3-digit year */
    expect_date("Wed Jun 30 21:49:08 1993", 741476948, 0);    /* asctime */
    expect_date("29 Feb 2000 13:30 +0130", 951825600, 90);
    expect_date("Tue, 29 Feb 2000 12:00:00 (noon) +0000 (UTC)", 951825600, 0);
    expect_date("Tue,29 Feb 2000 04:00:00 PST", 951825600, -480);
    expect_date("1 Jan 2001 12:00:00 A", 978350400, 0); /* military: -0000 */
    expect_date("1 January 2001 12.00.00 +0000", 978350400, 0);
    expect_date("Mon, 1 Jan 2001 12:00:00 +00:00", 978350400, 0);
    expect_no_date("30 Feb 2001 10:00:00 +0000");
    expect_no_date("garbage");
    expect_no_date("");
    expect_no_date("Mon, 1 Foo 2001 10:00:00");
    expect_no_date("1 Jan 2001 25:00:00 +0000");
}

static void expect_base(const char *s, const char *want, int reply)
{
    struct buf b = {0};
    int r;
    mime_base_subject(s, strlen(s), &b, &r);
    if (strcmp(b.p ? b.p : "", want) != 0 || r != reply)
        fail_msg("'%s': got '%s' %d, want '%s' %d", s, b.p ? b.p : "", r, want, reply);
    buf_free(&b);
}

static void test_base_subject(void **state)
{
    expect_base("Re: [list] Fwd: hello (fwd)", "hello", 1);
    expect_base("[fwd: Re: test]", "test", 1);
    expect_base("[blob] subject", "subject", 0);
    expect_base("[only blob]", "[only blob]", 0);
    expect_base("RE:  Re[2]: double \t space", "double space", 1);
    expect_base("Fw: x", "x", 1);
    expect_base("FWD : y  ", "y", 1);
    expect_base("Reply", "Reply", 0);
    expect_base("", "", 0);
    expect_base("Re:", "", 1);
}

static void test_imap_strings(void **state)
{
    struct buf b = {0};
    mime_imap_nstring(&b, NULL, 0);
    buf_putc(&b, ' ');
    mime_imap_nstring(&b, "a\"b\\c", 5);
    buf_putc(&b, ' ');
    mime_imap_nstring(&b, "x\r\ny", 4);
    buf_putc(&b, ' ');
    mime_imap_nstring(&b, "caf\xc3\xa9", 5);
    buf_putc(&b, ' ');
    mime_imap_nstring(&b, "a\0b", 3);
    buf_putc(&b, ' ');
    mime_imap_nstring(&b, "", 0);
    assert_string_equal(b.p, "NIL \"a\\\"b\\\\c\" {4}\r\nx\r\ny {5}\r\ncaf\xc3\xa9 \"ab\" \"\"");
    buf_free(&b);
}

static void test_addr_parse(void **state)
{
    struct mime_arena a = {0};
    struct mime_addr *ad;
    const char *v = "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>, "
                    "A Group(Some people):Chris Jones <c@(Chris's host.)public.example>;, "
                    "\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>, "
                    "Mary Smith <mary@x.test>,, jdoe@one.test (John Doe), broken@, <>";
    assert_int_equal(mime_addr_parse(&a, v, strlen(v), &ad), 0);
    struct buf b = {0};
    for (; ad; ad = ad->next) {
        buf_putc(&b, '[');
        buf_puts(&b, ad->kind == MIME_ADDR_MAILBOX       ? "M"
                     : ad->kind == MIME_ADDR_GROUP_START ? "G"
                                                         : "E");
        buf_putc(&b, ' ');
        mime_imap_nstring(&b, ad->name, ad->name ? strlen(ad->name) : 0);
        buf_putc(&b, ' ');
        mime_imap_nstring(&b, ad->mailbox, ad->mailbox ? strlen(ad->mailbox) : 0);
        buf_putc(&b, ' ');
        mime_imap_nstring(&b, ad->host, ad->host ? strlen(ad->host) : 0);
        buf_putc(&b, ']');
    }
    assert_string_equal(b.p, "[M \"Pete\" \"pete\" \"silly.test\"]"
                             "[G NIL \"A Group\" NIL]"
                             "[M \"Chris Jones\" \"c\" \"public.example\"][E NIL NIL NIL]"
                             "[M \"Giant; \\\"Big\\\" Box\" \"sysservices\" \"example.net\"]"
                             "[M \"Mary Smith\" \"mary\" \"x.test\"]"
                             "[M \"John Doe\" \"jdoe\" \"one.test\"]"
                             "[M NIL \"broken\" \"\"][M NIL \"\" \"\"]");
    buf_free(&b);
    mime_arena_free(&a);
}

static void test_cte_and_header_filter(void **state)
{
    struct buf b = {0};
    const char *qp = "caf=C3=A9 =\r\nlong line  \r\n=3D end=";
    assert_int_equal(mime_decode_cte("Quoted-Printable", qp, strlen(qp), &b), 0);
    /* a final '=' is a soft line break: the CRLF before a boundary is not the body's */
    assert_string_equal(b.p, "caf\xc3\xa9 long line\r\n= end");
    b.len = 0;
    assert_int_equal(mime_decode_cte("base64", "aGVs\r\nbG8=", 10, &b), 0);
    assert_string_equal(b.p, "hello");
    b.len = 0;
    assert_int_equal(mime_decode_cte("x-uuencode", "abc", 3, &b), -1);
    buf_free(&b);

    const char *hdr = "From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\r\n\r\n";
    const char *names[] = {"subject", "from"};
    mime_header_filter(hdr, strlen(hdr), names, 2, 0, &b);
    assert_string_equal(b.p, "From: a@b\r\nSubject: one\r\n two\r\n\r\n");
    b.len = 0;
    mime_header_filter(hdr, strlen(hdr), names, 2, 1, &b);
    assert_string_equal(b.p, "To: c@d\r\n\r\n");
    buf_free(&b);
}

static void test_blob_validation(void **state)
{
    struct msg m;
    load(&m, "mixed.eml");
    struct mime_cache c;
    unsigned char *blob = m.blob;
    for (size_t cut = 0; cut < m.bloblen; cut += 7)
        assert_int_equal(mime_cache_open(blob, cut, &c), -1);
    blob[4] ^= 0x01; /* version */
    assert_int_equal(mime_cache_open(blob, m.bloblen, &c), -1);
    blob[4] ^= 0x01;
    blob[m.bloblen - 1] = 'x'; /* the last string loses its NUL */
    assert_int_equal(mime_cache_open(blob, m.bloblen, &c), -1);
    blob[m.bloblen - 1] = '\0';
    assert_int_equal(mime_cache_open(blob, m.bloblen, &c), 0);
    struct mime_cache_part p;
    assert_int_equal(mime_cache_part(&c, c.nparts, &p), -1);
    done(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_alternative),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_rfc822),
        cmocka_unit_test(test_encoded),
        cmocka_unit_test(test_rfc2231),
        cmocka_unit_test(test_missing_final_boundary),
        cmocka_unit_test(test_missing_boundary),
        cmocka_unit_test(test_8bit_header),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_empty_and_header_only),
        cmocka_unit_test(test_digest_and_encoding),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_many_parts),
        cmocka_unit_test(test_encoded_words),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_base_subject),
        cmocka_unit_test(test_imap_strings),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_cte_and_header_filter),
        cmocka_unit_test(test_blob_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
