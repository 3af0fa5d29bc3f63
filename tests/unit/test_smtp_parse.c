/*
 * test_smtp_parse.c — the SMTP parser library (mail/smtp_parse.c): command lines, paths
 * and addresses (quoted local parts, literals, source routes, UTF-8, limits), the ESMTP
 * parameters of MAIL and RCPT (SIZE, BODY, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT, AUTH),
 * xtext, BDAT arguments and the DATA/BDAT content decoder, smuggling cases included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/smtp_parse.h"

/* ---- command lines ------------------------------------------------------------------- */

static int parse_cmd(const char *text, struct smtp_cmd *cmd, char *buf, size_t buflen)
{
    size_t n = strlen(text);
    assert_true(n < buflen);
    memcpy(buf, text, n + 1);
    return smtp_parse_command(buf, n, cmd);
}

static void test_command_split(void **state)
{
    struct smtp_cmd cmd;
    char buf[256];

    assert_int_equal(parse_cmd("ehlo client.example\r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_EHLO);
    assert_string_equal(cmd.name, "EHLO");
    assert_string_equal(cmd.args, "client.example");

    assert_int_equal(parse_cmd("DATA \r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_DATA);
    assert_string_equal(cmd.args, "");

    assert_int_equal(parse_cmd("QUIT\n", &cmd, buf, sizeof(buf)), SMTP_OK); /* bare LF */
    assert_int_equal(cmd.verb, SMTP_V_QUIT);

    assert_int_equal(parse_cmd("StartTLS\r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_STARTTLS);

    assert_int_equal(parse_cmd("XYZZY foo\r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_UNKNOWN);
    assert_string_equal(cmd.name, "XYZZY");

    assert_int_equal(parse_cmd("MAILX FROM:<a@b>\r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_UNKNOWN);

    assert_int_equal(parse_cmd("GET / HTTP/1.1\r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_HTTP);
    assert_int_equal(parse_cmd("Host: example.com\r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_HTTP);

    assert_int_equal(parse_cmd("\r\n", &cmd, buf, sizeof(buf)), SMTP_OK);
    assert_int_equal(cmd.verb, SMTP_V_UNKNOWN);
}

static void test_command_bad_bytes(void **state)
{
    struct smtp_cmd cmd;
    char line[] = "NOOP\0x\r\n";
    char cr[] = "NOOP\rRSET\r\n";

    assert_int_equal(smtp_parse_command(line, sizeof(line) - 1, &cmd), SMTP_E_NUL);
    assert_int_equal(smtp_parse_command(cr, sizeof(cr) - 1, &cmd), SMTP_E_NUL);
    assert_string_equal(smtp_verb_name(SMTP_V_BDAT), "BDAT");
}

/* ---- addresses ------------------------------------------------------------------------ */

static int addr(const char *s, int utf8, struct smtp_addr *a)
{
    return smtp_parse_address(s, strlen(s), utf8, a);
}

static void test_address_basic(void **state)
{
    struct smtp_addr a;

    assert_int_equal(addr("Alice@Example.COM", 0, &a), SMTP_OK);
    assert_string_equal(a.addr, "Alice@example.com"); /* domain lower-cased, local kept */
    assert_string_equal(a.local, "Alice");
    assert_string_equal(a.domain, "example.com");
    assert_int_equal(addr("first.last+tag@sub-1.example.org", 0, &a), SMTP_OK);
    assert_int_equal(addr("!#$%&'*+-/=?^_`{|}~@x.y", 0, &a), SMTP_OK);
    assert_int_equal(addr("a@localhost", 0, &a), SMTP_OK);

    assert_int_equal(addr("", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("noat", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("@example.com", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr(".a@x.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a.@x.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a..b@x.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a b@x.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@x..y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@x.y.", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@-x.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@x-.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@x_y.z", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@b@c.d", 0, &a), SMTP_E_SYNTAX);
    assert_string_equal(a.addr, ""); /* cleared on error */
}

static void test_address_quoted(void **state)
{
    struct smtp_addr a;

    assert_int_equal(addr("\"john doe\"@example.com", 0, &a), SMTP_OK);
    assert_string_equal(a.addr, "\"john doe\"@example.com");
    /* Quoting that is not needed is dropped: the same mailbox as the plain form. */
    assert_int_equal(addr("\"john.doe\"@example.com", 0, &a), SMTP_OK);
    assert_string_equal(a.addr, "john.doe@example.com");
    assert_int_equal(addr("\"a\\\"b\"@x.y", 0, &a), SMTP_OK);
    assert_string_equal(a.local, "\"a\\\"b\"");
    assert_int_equal(addr("\"\\a\"@x.y", 0, &a), SMTP_OK); /* needless escape dropped */
    assert_string_equal(a.local, "a");
    assert_int_equal(addr("\"a@b\"@x.y", 0, &a), SMTP_OK);
    assert_string_equal(a.domain, "x.y");
    assert_int_equal(addr("\"\"@x.y", 0, &a), SMTP_OK);
    assert_string_equal(a.local, "\"\"");

    assert_int_equal(addr("\"unterminated@x.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("\"a\tb\"@x.y", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("\"a\"b@x.y", 0, &a), SMTP_E_SYNTAX);
}

static void test_address_literals(void **state)
{
    struct smtp_addr a;

    assert_int_equal(addr("root@[192.0.2.1]", 0, &a), SMTP_OK);
    assert_int_equal(a.literal, 1);
    assert_string_equal(a.domain, "[192.0.2.1]");
    assert_int_equal(addr("root@[IPv6:2001:DB8::1]", 0, &a), SMTP_OK);
    assert_string_equal(a.domain, "[IPv6:2001:db8::1]");
    assert_int_equal(addr("root@[ipv6:::ffff:192.0.2.1]", 0, &a), SMTP_OK);

    assert_int_equal(addr("root@[256.0.0.1]", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("root@[1.2.3]", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("root@[1.2.3.4.5]", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("root@[1.2.3.4", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("root@[IPv6:zz::1]", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("root@[x-tag:foo]", 0, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("root@[]", 0, &a), SMTP_E_SYNTAX);
}

static void test_address_utf8(void **state)
{
    struct smtp_addr a;

    assert_int_equal(addr("j\xc3\xb6rg@b\xc3\xbc"
                          "cher.de",
                          0, &a),
                     SMTP_E_UTF8);
    assert_int_equal(addr("j\xc3\xb6rg@b\xc3\xbc"
                          "cher.de",
                          1, &a),
                     SMTP_OK);
    assert_int_equal(a.utf8, 1);
    assert_int_equal(addr("\xe7\x94\xa8\xe6\x88\xb7@example.com", 1, &a), SMTP_OK);
    /* Malformed UTF-8: overlong, surrogate, truncated, stray continuation. */
    assert_int_equal(addr("\xc0\xafx@x.y", 1, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("\xed\xa0\x80x@x.y", 1, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("\xe7\x94@x.y", 1, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("\x80@x.y", 1, &a), SMTP_E_SYNTAX);
    assert_int_equal(addr("a@\xf4\x90\x80\x80.y", 1, &a), SMTP_E_SYNTAX);
}

static void test_address_limits(void **state)
{
    struct smtp_addr a;
    char buf[600];

    memset(buf, 'a', 64);
    strcpy(buf + 64, "@x.y");
    assert_int_equal(addr(buf, 0, &a), SMTP_OK);
    memset(buf, 'a', 65);
    strcpy(buf + 65, "@x.y");
    assert_int_equal(addr(buf, 0, &a), SMTP_E_TOOLONG);

    /* A label of 63 is fine, 64 is not. */
    strcpy(buf, "a@");
    memset(buf + 2, 'b', 63);
    strcpy(buf + 65, ".com");
    assert_int_equal(addr(buf, 0, &a), SMTP_OK);
    memset(buf + 2, 'b', 64);
    strcpy(buf + 66, ".com");
    assert_int_equal(addr(buf, 0, &a), SMTP_E_SYNTAX);

    /* A mailbox over 254 octets does not fit a 256-octet path. */
    strcpy(buf, "a@");
    size_t o = 2;
    for (int i = 0; i < 5; i++) {
        memset(buf + o, 'c', 50);
        o += 50;
        buf[o++] = '.';
    }
    strcpy(buf + o, "com");
    assert_int_equal(addr(buf, 0, &a), SMTP_E_TOOLONG);
}

/* ---- paths, MAIL and RCPT -------------------------------------------------------------- */

static void test_path(void **state)
{
    struct smtp_addr a;
    size_t used = 0;
    const char *p;

    p = "<>";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 1, 0, &a, &used), SMTP_OK);
    assert_int_equal(a.null, 1);
    assert_int_equal(used, 2);
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_E_SYNTAX);

    p = "<@relay1.example,@relay2.example:user@final.example> SIZE=1";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_OK);
    assert_string_equal(a.addr, "user@final.example");
    assert_int_equal(p[used], ' ');

    p = "<Postmaster>";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 1, &a, &used), SMTP_OK);
    assert_int_equal(a.postmaster, 1);
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_E_SYNTAX);

    p = "<\"a>b\"@x.y>";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_OK);
    assert_int_equal(used, strlen(p));

    p = "<a@x.y";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_E_SYNTAX);
    p = "a@x.y";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_E_SYNTAX);
    p = "<@relay:>";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_E_SYNTAX);
    p = "<@relay user@x.y>";
    assert_int_equal(smtp_parse_path(p, strlen(p), 0, 0, 0, &a, &used), SMTP_E_SYNTAX);
}

static void test_mail_params(void **state)
{
    struct smtp_mail m;
    char err[128];

    assert_int_equal(smtp_parse_mail("FROM:<a@x.y>", &m, err, sizeof(err)), SMTP_OK);
    assert_string_equal(m.from.addr, "a@x.y");
    assert_int_equal(m.has_size, 0);

    assert_int_equal(
        smtp_parse_mail("from: <a@x.y> size=12345 body=8bitmime", &m, err, sizeof(err)), SMTP_OK);
    assert_int_equal(m.has_size, 1);
    assert_int_equal(m.size, 12345);
    assert_int_equal(m.body, SMTP_BODY_8BITMIME);

    assert_int_equal(smtp_parse_mail("FROM:<> RET=HDRS ENVID=QQ314159+2Bx", &m, err, sizeof(err)),
                     SMTP_OK);
    assert_int_equal(m.from.null, 1);
    assert_int_equal(m.ret, SMTP_RET_HDRS);
    assert_string_equal(m.envid, "QQ314159+x");

    assert_int_equal(
        smtp_parse_mail("FROM:<a@x.y> SIZE=99999999999999999999", &m, err, sizeof(err)), SMTP_OK);
    assert_true(m.size >= 99999999999999999ULL);

    assert_int_equal(smtp_parse_mail("FROM:<j\xc3\xb6rg@x.y>", &m, err, sizeof(err)), SMTP_E_UTF8);
    assert_int_equal(smtp_parse_mail("FROM:<j\xc3\xb6rg@x.y> SMTPUTF8", &m, err, sizeof(err)),
                     SMTP_OK);
    assert_int_equal(m.smtputf8, 1);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> AUTH=<>", &m, err, sizeof(err)), SMTP_OK);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> AUTH=a+2Bb@x.y", &m, err, sizeof(err)), SMTP_OK);

    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> SIZE=1 SIZE=2", &m, err, sizeof(err)),
                     SMTP_E_DUP);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> FOO=bar", &m, err, sizeof(err)), SMTP_E_PARAM);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> BODY=BINARYMIME", &m, err, sizeof(err)),
                     SMTP_E_PARAM);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> BODY=9BIT", &m, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> SIZE=", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> SIZE=1x", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> SMTPUTF8=yes", &m, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> RET=ALL", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> ENVID=a+0D+0Ab", &m, err, sizeof(err)),
                     SMTP_E_SYNTAX); /* CR LF inside ENVID */
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> ENVID=a+2b", &m, err, sizeof(err)),
                     SMTP_E_SYNTAX); /* lower-case hex */
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y> =x", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:<a@x.y>SIZE=1", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:a@x.y", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("TO:<a@x.y>", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_mail("FROM:", &m, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_true(strlen(err) > 0);
}

static void test_rcpt_params(void **state)
{
    struct smtp_rcpt r;
    char err[128];

    assert_int_equal(smtp_parse_rcpt("TO:<bob@example.com>", 0, &r, err, sizeof(err)), SMTP_OK);
    assert_string_equal(r.to.addr, "bob@example.com");
    assert_int_equal(smtp_parse_rcpt("To:<bob@example.com> NOTIFY=SUCCESS,FAILURE "
                                     "ORCPT=rfc822;Bob+2Bx@example.com",
                                     0, &r, err, sizeof(err)),
                     SMTP_OK);
    assert_int_equal(r.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
    assert_string_equal(r.orcpt_type, "rfc822");
    assert_string_equal(r.orcpt, "Bob+x@example.com");
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> NOTIFY=never", 0, &r, err, sizeof(err)), SMTP_OK);
    assert_int_equal(r.notify, SMTP_NOTIFY_NEVER);

    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> NOTIFY=NEVER,DELAY", 0, &r, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> NOTIFY=DELAY,DELAY", 0, &r, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> NOTIFY=SUCCESS,", 0, &r, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> NOTIFY=SOMETIMES", 0, &r, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> ORCPT=nosemicolon", 0, &r, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> ORCPT=;x", 0, &r, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> ORCPT=rfc822;a+00b", 0, &r, err, sizeof(err)),
                     SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.y> SIZE=1", 0, &r, err, sizeof(err)), SMTP_E_PARAM);
    assert_int_equal(smtp_parse_rcpt("TO:<>", 0, &r, err, sizeof(err)), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_rcpt("TO:<Postmaster>", 0, &r, err, sizeof(err)), SMTP_OK);
    assert_int_equal(r.to.postmaster, 1);
    /* UTF-8 recipients only in an SMTPUTF8 transaction. */
    assert_int_equal(smtp_parse_rcpt("TO:<\xc3\xa9@x.y>", 0, &r, err, sizeof(err)), SMTP_E_UTF8);
    assert_int_equal(smtp_parse_rcpt("TO:<\xc3\xa9@x.y>", 1, &r, err, sizeof(err)), SMTP_OK);
    assert_int_equal(smtp_parse_rcpt("TO:<\"a b\"@x.y> NOTIFY=DELAY", 0, &r, err, sizeof(err)),
                     SMTP_OK);
    assert_int_equal(r.notify, SMTP_NOTIFY_DELAY);
}

static void test_xtext_bdat_helo(void **state)
{
    char out[16];
    uint64_t size;
    int last;

    assert_int_equal(smtp_xtext_decode("a+2Bb+3D", 8, out, sizeof(out)), 4);
    assert_string_equal(out, "a+b=");
    assert_int_equal(smtp_xtext_decode("a+2", 3, out, sizeof(out)), -1);
    assert_int_equal(smtp_xtext_decode("a=b", 3, out, sizeof(out)), -1);
    assert_int_equal(smtp_xtext_decode("a b", 3, out, sizeof(out)), -1);
    assert_int_equal(smtp_xtext_decode("0123456789abcdefg", 17, out, sizeof(out)), -1);

    assert_int_equal(smtp_parse_bdat("1000", &size, &last), SMTP_OK);
    assert_int_equal(size, 1000);
    assert_int_equal(last, 0);
    assert_int_equal(smtp_parse_bdat("0 last", &size, &last), SMTP_OK);
    assert_int_equal(last, 1);
    assert_int_equal(smtp_parse_bdat("", &size, &last), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_bdat("-1", &size, &last), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_bdat("10 FIRST", &size, &last), SMTP_E_SYNTAX);
    assert_int_equal(smtp_parse_bdat("99999999999999999999999", &size, &last), SMTP_E_TOOLONG);

    assert_int_equal(smtp_valid_helo("mail.example.com", 16), 1);
    assert_int_equal(smtp_valid_helo("[127.0.0.1]", 11), 1);
    assert_int_equal(smtp_valid_helo("[IPv6:::1]", 10), 1);
    assert_int_equal(smtp_valid_helo("under_score", 11), 0);
    assert_int_equal(smtp_valid_helo("", 0), 0);
}

/* ---- content ---------------------------------------------------------------------------- */

struct decoded {
    struct smtp_data d;
    struct smtp_buf b;
    size_t used;
};

/* Feeds the wire bytes in pieces of `step` (0: all at once) as the session would. */
static void decode(struct decoded *r, int raw, const char *wire, size_t len, size_t step,
                   size_t max)
{
    memset(r, 0, sizeof(*r));
    r->b.reserve = 16;
    smtp_data_init(&r->d, raw, max, 100, 400);
    while (r->used < len && !r->d.done) {
        size_t n = step && step < len - r->used ? step : len - r->used;
        size_t took = smtp_data_feed(&r->d, &r->b, wire + r->used, n);
        r->used += took;
        if (took < n)
            break;
    }
    if (raw)
        smtp_data_finish(&r->d, &r->b);
}

static void assert_content(struct decoded *r, const char *want)
{
    assert_int_equal(r->b.len, strlen(want));
    if (r->b.len)
        assert_memory_equal(r->b.p + r->b.reserve, want, r->b.len);
    smtp_buf_free(&r->b);
}

#define WIRE(s) s, sizeof(s) - 1

static void test_data_basic(void **state)
{
    static const size_t steps[] = {0, 1, 2, 3, 7};

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct decoded r;
        decode(&r, 0, WIRE("Subject: x\r\n\r\nline\r\n..dot\r\n.\r\nQUIT\r\n"), steps[i], 1000);
        assert_true(r.d.done);
        assert_int_equal(r.used, sizeof("Subject: x\r\n\r\nline\r\n..dot\r\n.\r\n") - 1);
        assert_false(smtp_data_failed(&r.d));
        assert_content(&r, "Subject: x\r\n\r\nline\r\n.dot\r\n");
    }
}

static void test_data_empty_and_edges(void **state)
{
    struct decoded r;

    decode(&r, 0, WIRE(".\r\n"), 0, 1000);
    assert_true(r.d.done);
    assert_content(&r, "");

    decode(&r, 0, WIRE("a\r\n.x\r\n.\r\n"), 0, 1000); /* ".x": a stuffed-less dot is dropped */
    assert_true(r.d.done);
    assert_content(&r, "a\r\nx\r\n");

    decode(&r, 0, WIRE("a\r\n.."), 0, 1000); /* not done yet */
    assert_false(r.d.done);
    smtp_buf_free(&r.b);
}

/* Smuggling: nothing but <CRLF>.<CRLF> ends data; the rest is content, made CRLF. */
static void test_data_smuggling(void **state)
{
    static const struct {
        const char *wire;
        const char *content;
    } cases[] = {
        {"a\n.\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n"},
        {"a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n"},
        {"a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n"},
        {"a\r.\rMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n"},
        {"a\r\n.\rMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\r\nMAIL FROM:<x@y>\r\n"},
        {"a\r\n.\r\r\n.\r\n", "a\r\n.\r\n\r\n"},
        {"bare\nlf\r\n.\r\n", "bare\r\nlf\r\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t step = 0; step < 4; step++) {
            struct decoded r;
            size_t len = strlen(cases[i].wire);
            decode(&r, 0, cases[i].wire, len, step, 1000);
            assert_true(r.d.done);
            assert_int_equal(r.used, len);
            assert_content(&r, cases[i].content);
        }
    }
}

static void test_data_limits(void **state)
{
    struct decoded r;
    char wire[1200];
    size_t n;

    /* SIZE: over the limit is counted, not kept; the terminator is still found. */
    decode(&r, 0, WIRE("0123456789\r\n0123456789\r\n.\r\n"), 0, 20);
    assert_true(r.d.done);
    assert_true(r.d.over_size);
    assert_int_equal(r.d.total, 24);
    smtp_buf_free(&r.b);

    /* Line limit (100 here). */
    memset(wire, 'x', 150);
    memcpy(wire + 150, "\r\n.\r\n", 5);
    decode(&r, 0, wire, 155, 0, 10000);
    assert_true(r.d.done);
    assert_true(r.d.over_line);
    smtp_buf_free(&r.b);

    /* Header section limit (400 here); the same lines in the body are fine. */
    n = 0;
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(wire + n, sizeof(wire) - n, "X-H%02d: %040d\r\n", i, i);
    memcpy(wire + n, ".\r\n", 3);
    decode(&r, 0, wire, n + 3, 0, 10000);
    assert_true(r.d.over_header);
    smtp_buf_free(&r.b);
    wire[0] = '\r';
    wire[1] = '\n';
    decode(&r, 0, wire, n + 3, 0, 10000);
    assert_false(r.d.over_header);
    assert_false(smtp_data_failed(&r.d));
    smtp_buf_free(&r.b);

    /* A body line that is not a header field ends the header section. */
    decode(&r, 0, WIRE("no header here\r\nX: y\r\n.\r\n"), 0, 10000);
    assert_false(r.d.in_header);
    smtp_buf_free(&r.b);
}

static void test_bdat_raw(void **state)
{
    struct decoded r;

    /* No dots, no terminator: the bytes are the message; line ends normalised. */
    decode(&r, 1, WIRE("a\r\n.\r\nb\nc\r"), 0, 1000);
    assert_false(r.d.done);
    assert_content(&r, "a\r\n.\r\nb\r\nc\r\n");

    decode(&r, 1, WIRE("..x\r\n"), 1, 1000);
    assert_content(&r, "..x\r\n");
    assert_false(r.d.has_8bit);

    decode(&r, 1, WIRE("\xc3\xa9\0\r\n"), 0, 1000);
    assert_true(r.d.has_8bit);
    assert_true(r.d.has_nul);
    smtp_buf_free(&r.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_split),        cmocka_unit_test(test_command_bad_bytes),
        cmocka_unit_test(test_address_basic),        cmocka_unit_test(test_address_quoted),
        cmocka_unit_test(test_address_literals),     cmocka_unit_test(test_address_utf8),
        cmocka_unit_test(test_address_limits),       cmocka_unit_test(test_path),
        cmocka_unit_test(test_mail_params),          cmocka_unit_test(test_rcpt_params),
        cmocka_unit_test(test_xtext_bdat_helo),      cmocka_unit_test(test_data_basic),
        cmocka_unit_test(test_data_empty_and_edges), cmocka_unit_test(test_data_smuggling),
        cmocka_unit_test(test_data_limits),          cmocka_unit_test(test_bdat_raw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
