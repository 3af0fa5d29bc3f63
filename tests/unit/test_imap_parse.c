/*
 * test_imap_parse.c — the IMAP parser library (mail/imap_*.c): literal framing and the
 * command buffer, the argument tokenizer, sequence sets, SEARCH keys, FETCH items, flags,
 * dates, modified UTF-7 and the string writers. Every malformed input must give an error
 * message, never a crash; the ASan/UBSan build runs these too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/imap_parse.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Plays the engine: splits wire text into lines and literal bytes, as net_read_line and
 * net_read would deliver them, and feeds the command buffer. */
static int feed(struct imap_cmdbuf *b, const char *wire, size_t len)
{
    size_t i = 0;
    struct imap_literal lit;
    char err[128];

    do {
        const char *nl = memchr(wire + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (wire + i)) + 1 : len - i;
        int rc = imap_cmdbuf_add_line(b, wire + i, n, &lit, err, sizeof(err));
        i += n;
        if (rc != IMAP_CMDBUF_LITERAL)
            return rc;
        if (lit.size > len - i)
            return -100; /* test input too short */
        if (imap_cmdbuf_add_literal(b, wire + i, (size_t)lit.size) < 0)
            return IMAP_CMDBUF_TOOBIG;
        i += (size_t)lit.size;
    } while (i < len || lit.size > 0 || len == 0); /* an empty line may end it */
    return -101;                                   /* ended inside a command */
}

/* Parses wire text (lines + literals) as one command. */
static int parse_wire(const char *wire, size_t len, unsigned flags, struct imap_cmd *cmd,
                      struct imap_cmdbuf *b, char *err, size_t errlen)
{
    imap_cmdbuf_init(b, 1 << 20);
    if (feed(b, wire, len) != IMAP_CMDBUF_DONE) {
        snprintf(err, errlen, "framing failed");
        return -2;
    }
    memset(cmd, 0, sizeof(*cmd));
    cmd->flags = flags;
    return imap_parse_command(b->data, b->len, cmd, err, errlen);
}

struct parsed {
    struct imap_cmdbuf b;
    struct imap_cmd cmd;
    char err[256];
};

static struct parsed *parse_ok_f(const char *wire, size_t len, unsigned flags)
{
    struct parsed *p = calloc(1, sizeof(*p));

    assert_non_null(p);
    if (parse_wire(wire, len, flags, &p->cmd, &p->b, p->err, sizeof(p->err)) != 0)
        fail_msg("'%s' refused: %s", wire, p->err);
    return p;
}

#define parse_ok(s) parse_ok_f((s), strlen(s), 0)

static void parsed_free(struct parsed *p)
{
    imap_cmd_free(&p->cmd);
    imap_cmdbuf_free(&p->b);
    free(p);
}

static void expect_bad_f(const char *wire, size_t len, unsigned flags, const char *msg)
{
    struct imap_cmdbuf b;
    struct imap_cmd cmd;
    char err[256] = "";
    int rc = parse_wire(wire, len, flags, &cmd, &b, err, sizeof(err));

    imap_cmdbuf_free(&b);
    if (rc == 0) {
        imap_cmd_free(&cmd);
        fail_msg("'%s' accepted, expected '%s'", wire, msg);
    }
    if (!strstr(err, msg))
        fail_msg("'%s': expected '%s', got '%s'", wire, msg, err);
}

#define expect_bad(s, msg) expect_bad_f((s), strlen(s), 0, (msg))

/* ---- literal framing ----------------------------------------------------------------------- */

static void test_literal_spec(void **state)
{
    struct imap_literal l;

    assert_int_equal(imap_literal_spec("a LOGIN {5}\r\n", 13, &l), 1);
    assert_true(l.size == 5 && !l.nonsync && !l.binary);
    assert_int_equal(imap_literal_spec("a LOGIN {5+}\n", 13, &l), 1);
    assert_true(l.size == 5 && l.nonsync && !l.binary);
    assert_int_equal(imap_literal_spec("a APPEND x ~{123}", 17, &l), 1);
    assert_true(l.size == 123 && !l.nonsync && l.binary);
    assert_int_equal(imap_literal_spec("a APPEND x ~{7+}\r\n", 18, &l), 1);
    assert_true(l.size == 7 && l.nonsync && l.binary);
    assert_int_equal(imap_literal_spec("{0}", 3, &l), 1);
    assert_true(l.size == 0);
    assert_int_equal(imap_literal_spec("a X {9223372036854775807}", 25, &l), 1);
    assert_true(l.size == INT64_MAX);
    /* no literal */
    assert_int_equal(imap_literal_spec("a NOOP\r\n", 8, &l), 0);
    assert_int_equal(imap_literal_spec("", 0, &l), 0);
    assert_int_equal(imap_literal_spec("\r\n", 2, &l), 0);
    assert_int_equal(imap_literal_spec("a SELECT abc123}", 16, &l), 0);
    assert_int_equal(imap_literal_spec("a SELECT }", 10, &l), 0);
    assert_int_equal(imap_literal_spec("a SELECT {5} x", 14, &l), 0);
    /* malformed */
    assert_int_equal(imap_literal_spec("a X {}", 6, &l), -1);
    assert_int_equal(imap_literal_spec("a X {+}", 7, &l), -1);
    assert_int_equal(imap_literal_spec("a X ~{}\r\n", 9, &l), -1);
    assert_int_equal(imap_literal_spec("a X {99999999999999999999}", 26, &l), -1);
    assert_int_equal(imap_literal_spec("a X {18446744073709551616}", 26, &l), -1);
    assert_int_equal(imap_literal_spec("a X {9223372036854775808}", 25, &l), -1);
    /* only the stated length is read */
    assert_int_equal(imap_literal_spec("a X {5}junk", 7, &l), 1);
}

static void test_literal_check(void **state)
{
    struct imap_literal l = {100, false, false};

    assert_int_equal(imap_literal_check(&l, 100, false), IMAP_LIT_ACCEPT);
    assert_int_equal(imap_literal_check(&l, 99, false), IMAP_LIT_TOOBIG);
    l.nonsync = true;
    l.size = 4096;
    assert_int_equal(imap_literal_check(&l, 1 << 20, true), IMAP_LIT_ACCEPT);
    l.size = 4097;
    assert_int_equal(imap_literal_check(&l, 1 << 20, true), IMAP_LIT_NONSYNC_TOOBIG);
    assert_int_equal(imap_literal_check(&l, 1 << 20, false), IMAP_LIT_ACCEPT);
    l.size = INT64_MAX;
    assert_int_equal(imap_literal_check(&l, 1 << 20, false), IMAP_LIT_TOOBIG);
}

static void test_peek(void **state)
{
    char tag[IMAP_TAG_MAX + 1], name[IMAP_NAME_MAX + 1];
    bool uid;

    assert_int_equal(imap_peek_command("A1 append INBOX {10}\r\n", 22, tag, sizeof(tag), name,
                                       sizeof(name), &uid),
                     0);
    assert_string_equal(tag, "A1");
    assert_string_equal(name, "APPEND");
    assert_false(uid);
    assert_int_equal(
        imap_peek_command("x uid fetch 1 BODY[]", 20, tag, sizeof(tag), name, sizeof(name), &uid),
        0);
    assert_string_equal(name, "FETCH");
    assert_true(uid);
    assert_int_equal(imap_peek_command("+ NOOP", 6, tag, sizeof(tag), name, sizeof(name), &uid),
                     -1);
    assert_int_equal(imap_peek_command("a (", 3, tag, sizeof(tag), name, sizeof(name), &uid), 0);
    assert_string_equal(tag, "a");
    assert_string_equal(name, "");
}

static void test_cmdbuf(void **state)
{
    struct imap_cmdbuf b;
    struct imap_literal lit;
    char err[128];
    void *p;

    imap_cmdbuf_init(&b, 64);
    assert_int_equal(imap_cmdbuf_add_line(&b, "a LOGIN {3}\r\n", 13, &lit, err, sizeof(err)),
                     IMAP_CMDBUF_LITERAL);
    assert_true(lit.size == 3);
    /* a line while literal bytes are due is misuse */
    assert_int_equal(imap_cmdbuf_add_line(&b, "x\r\n", 3, &lit, err, sizeof(err)),
                     IMAP_CMDBUF_ERROR);
    p = imap_cmdbuf_literal_space(&b);
    assert_non_null(p);
    memcpy(p, "bob", 3);
    imap_cmdbuf_literal_done(&b);
    assert_int_equal(imap_cmdbuf_add_line(&b, " {0+}\r\n", 7, &lit, err, sizeof(err)),
                     IMAP_CMDBUF_LITERAL);
    assert_int_equal(imap_cmdbuf_add_literal(&b, "", 0), 0);
    assert_int_equal(imap_cmdbuf_add_line(&b, "\r\n", 2, &lit, err, sizeof(err)), IMAP_CMDBUF_DONE);
    assert_int_equal(b.len, strlen("a LOGIN {3}\r\nbob {0+}\r\n"));
    assert_memory_equal(b.data, "a LOGIN {3}\r\nbob {0+}\r\n", b.len);

    /* the next line starts a new command */
    assert_int_equal(imap_cmdbuf_add_line(&b, "b NOOP\r\n", 8, &lit, err, sizeof(err)),
                     IMAP_CMDBUF_DONE);
    assert_int_equal(b.len, 6);

    /* the cap: a literal that would pass it gets no space */
    assert_int_equal(imap_cmdbuf_add_line(&b, "c X {100}\r\n", 11, &lit, err, sizeof(err)),
                     IMAP_CMDBUF_LITERAL);
    assert_int_equal(imap_literal_check(&lit, b.max - b.len, false), IMAP_LIT_TOOBIG);
    assert_null(imap_cmdbuf_literal_space(&b));
    imap_cmdbuf_reset(&b);
    /* a line that passes the cap */
    char longline[100];
    memset(longline, 'a', sizeof(longline));
    assert_int_equal(imap_cmdbuf_add_line(&b, longline, sizeof(longline), &lit, err, sizeof(err)),
                     IMAP_CMDBUF_TOOBIG);
    imap_cmdbuf_reset(&b);
    assert_int_equal(imap_cmdbuf_add_line(&b, "c X {}\r\n", 8, &lit, err, sizeof(err)),
                     IMAP_CMDBUF_ERROR);
    assert_int_equal(
        imap_cmdbuf_add_line(&b, "c X {99999999999999999999}\r\n", 28, &lit, err, sizeof(err)),
        IMAP_CMDBUF_ERROR);
    /* wrong size handed to add_literal */
    imap_cmdbuf_reset(&b);
    assert_int_equal(imap_cmdbuf_add_line(&b, "c X {4}\r\n", 9, &lit, err, sizeof(err)),
                     IMAP_CMDBUF_LITERAL);
    assert_int_equal(imap_cmdbuf_add_literal(&b, "abc", 3), -1);
    imap_cmdbuf_free(&b);
}

/* ---- the command parser --------------------------------------------------------------- */

static void test_parse_basic(void **state)
{
    struct parsed *p = parse_ok("A001 login \"bob\" secret\r\n");

    assert_string_equal(p->cmd.tag, "A001");
    assert_string_equal(p->cmd.name, "LOGIN");
    assert_false(p->cmd.uid);
    assert_int_equal(p->cmd.nargs, 2);
    assert_int_equal(p->cmd.args[0].type, IMAP_ARG_QUOTED);
    assert_string_equal(p->cmd.args[0].str, "bob");
    assert_int_equal(p->cmd.args[1].type, IMAP_ARG_ATOM);
    assert_string_equal(p->cmd.args[1].str, "secret");
    parsed_free(p);

    p = parse_ok("t1 NOOP");
    assert_int_equal(p->cmd.nargs, 0);
    parsed_free(p);

    p = parse_ok("t2 Uid Fetch 1:* (FLAGS)\r\n");
    assert_string_equal(p->cmd.name, "FETCH");
    assert_true(p->cmd.uid);
    assert_int_equal(p->cmd.nargs, 2);
    assert_int_equal(p->cmd.args[1].type, IMAP_ARG_LIST);
    parsed_free(p);

    p = parse_ok("t3 STORE 1 +FLAGS (\\Seen $Junk) nil NIL \"NIL\"\r\n");
    assert_int_equal(p->cmd.nargs, 6);
    assert_int_equal(p->cmd.args[2].list[0].type, IMAP_ARG_ATOM);
    assert_string_equal(p->cmd.args[2].list[0].str, "\\Seen");
    assert_int_equal(p->cmd.args[3].type, IMAP_ARG_NIL);
    assert_string_equal(p->cmd.args[3].str, "nil");
    assert_int_equal(p->cmd.args[4].type, IMAP_ARG_NIL);
    assert_int_equal(p->cmd.args[5].type, IMAP_ARG_QUOTED);
    parsed_free(p);

    p = parse_ok("t4 LIST \"\" %/*]\r\n");
    assert_string_equal(p->cmd.args[1].str, "%/*]");
    parsed_free(p);

    p = parse_ok("a] SELECT INBOX"); /* "]" is an ASTRING-CHAR, so valid in a tag */
    assert_string_equal(p->cmd.tag, "a]");
    parsed_free(p);
}

static void test_parse_bad_head(void **state)
{
    expect_bad("", "Invalid tag");
    expect_bad("\r\n", "Invalid tag");
    expect_bad("a\r\n", "Invalid tag");
    expect_bad("+a NOOP\r\n", "Invalid tag");
    expect_bad("a+ NOOP\r\n", "Invalid tag");
    expect_bad("a*b NOOP\r\n", "Invalid tag");
    expect_bad("\"a\" NOOP\r\n", "Invalid tag");
    expect_bad(" a NOOP\r\n", "Invalid tag");
    expect_bad("a \r\n", "Missing command name");
    expect_bad("a  NOOP\r\n", "Missing command name");
    expect_bad("a UID\r\n", "UID must be followed");
    expect_bad("a UID NOOP\r\n", "UID NOOP is not a command");
    expect_bad("a UID UID FETCH 1 FLAGS\r\n", "UID UID is not a command");
    expect_bad("a NOOP(\r\n", "Invalid character in command name");
    expect_bad("a AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n", "Command name too long");
    char longtag[200];
    memset(longtag, 't', 100);
    strcpy(longtag + 100, " NOOP");
    expect_bad(longtag, "Tag too long");

    /* the tag survives a later error, so the engine can answer "tag BAD" */
    struct imap_cmdbuf b;
    struct imap_cmd cmd;
    char err[128];
    assert_int_equal(parse_wire("x7 SELECT \"abc\r\n", 16, 0, &cmd, &b, err, sizeof(err)), -1);
    assert_string_equal(cmd.tag, "x7");
    assert_null(cmd.args);
    imap_cmdbuf_free(&b);
}

static void test_parse_quoted(void **state)
{
    struct parsed *p = parse_ok("a X \"a\\\"b\\\\c\" \"\" \"(x) {3}\"\r\n");

    assert_int_equal(p->cmd.nargs, 3);
    assert_string_equal(p->cmd.args[0].str, "a\"b\\c");
    assert_int_equal(p->cmd.args[0].len, 5);
    assert_string_equal(p->cmd.args[1].str, "");
    assert_int_equal(p->cmd.args[1].type, IMAP_ARG_QUOTED);
    assert_string_equal(p->cmd.args[2].str, "(x) {3}");
    parsed_free(p);

    expect_bad("a X \"ab\\n\"\r\n", "Invalid escape");
    expect_bad("a X \"ab\\\"\r\n", "Unterminated");
    expect_bad("a X \"ab\\", "Invalid escape");
    expect_bad("a X \"abc", "Unterminated");
    expect_bad_f("a X \"a\rb\"", 9, 0, "CR, LF or NUL");
    expect_bad_f("a X \"a\0b\"", 9, 0, "CR, LF or NUL");
    expect_bad("a X \"caf\xc3\xa9\"", "8-bit data in quoted string");
    /* UTF8=ACCEPT lets UTF-8 through, but only well-formed */
    p = parse_ok_f("a X \"caf\xc3\xa9\"", 11, IMAP_PARSE_UTF8);
    assert_string_equal(p->cmd.args[0].str, "caf\xc3\xa9");
    parsed_free(p);
    expect_bad_f("a X \"caf\xc3\"", 10, IMAP_PARSE_UTF8, "Invalid UTF-8");
    expect_bad_f("a X \"\xc0\xaf\"", 9, IMAP_PARSE_UTF8, "Invalid UTF-8");
    expect_bad("a X \"abc\"def", "Expected space");
}

static void test_parse_literals(void **state)
{
    static const char wire[] = "a LOGIN {3}\r\nbob {6+}\r\n\"p w\"\r\r\n";
    struct parsed *p = parse_ok_f(wire, sizeof(wire) - 1, 0);

    assert_int_equal(p->cmd.nargs, 2);
    assert_int_equal(p->cmd.args[0].type, IMAP_ARG_LITERAL);
    assert_int_equal(p->cmd.args[0].len, 3);
    assert_memory_equal(p->cmd.args[0].str, "bob", 3);
    assert_false(p->cmd.args[0].nonsync);
    assert_true(p->cmd.args[1].nonsync);
    assert_memory_equal(p->cmd.args[1].str, "\"p w\"\r", 6);
    assert_string_equal(imap_arg_string(&p->cmd, &p->cmd.args[0]), "bob");
    parsed_free(p);

    /* zero-length, binary with NUL, literal inside a list, literal ending in CRLF */
    static const char w2[] = "a APPEND {0}\r\n (\\Seen) ~{4}\r\nA\0B\n ({2}\r\n\r\n)\r\n";
    p = parse_ok_f(w2, sizeof(w2) - 1, 0);
    assert_int_equal(p->cmd.nargs, 4);
    assert_int_equal(p->cmd.args[0].len, 0);
    assert_string_equal(imap_arg_string(&p->cmd, &p->cmd.args[0]), "");
    assert_true(p->cmd.args[2].binary);
    assert_int_equal(p->cmd.args[2].len, 4);
    assert_memory_equal(p->cmd.args[2].str, "A\0B\n", 4);
    assert_null(imap_arg_string(&p->cmd, &p->cmd.args[2]));
    assert_int_equal(p->cmd.args[3].type, IMAP_ARG_LIST);
    assert_int_equal(p->cmd.args[3].list[0].len, 2);
    parsed_free(p);

    /* the last argument is a literal whose bytes are a CRLF */
    static const char w3[] = "a X {2}\r\n\r\n";
    struct imap_cmd cmd = {0};
    char err[128];
    assert_int_equal(imap_parse_command(w3, sizeof(w3) - 1, &cmd, err, sizeof(err)), 0);
    assert_int_equal(cmd.nargs, 1);
    assert_int_equal(cmd.args[0].len, 2);
    imap_cmd_free(&cmd);

    /* malformed, parsed straight from a buffer (no framing) */
    static const struct {
        const char *in;
        size_t len;
        const char *msg;
    } bad[] = {
        {"a X {3}\r\nab", 11, "shorter than announced"},
        {"a X {3}", 7, "must end the line"},
        {"a X {3} abc", 11, "must end the line"},
        {"a X {}\r\n", 8, "Invalid literal size"},
        {"a X {3x}\r\nabc", 13, "Invalid literal size"},
        {"a X {99999999999999999999}\r\n", 28, "Invalid literal size"},
        {"a X {3}\r\na\0c", 12, "NUL in literal"},
        {"a X {3}\r\nabcdef", 15, "Expected space"},
        {"a X ~{3", 7, "Invalid literal size"},
        {"a X {3+}\r\nabc)", 14, "Unexpected ')'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        memset(&cmd, 0, sizeof(cmd));
        err[0] = 0;
        if (imap_parse_command(bad[i].in, bad[i].len, &cmd, err, sizeof(err)) == 0)
            fail_msg("case %zu accepted", i);
        if (!strstr(err, bad[i].msg))
            fail_msg("case %zu: expected '%s', got '%s'", i, bad[i].msg, err);
    }
}

static void test_parse_lists(void **state)
{
    struct parsed *p = parse_ok("a X (a (b (c)) () \"d\") e\r\n");
    const struct imap_arg *l = &p->cmd.args[0];

    assert_int_equal(p->cmd.nargs, 2);
    assert_int_equal(l->type, IMAP_ARG_LIST);
    assert_int_equal(l->count, 4);
    assert_string_equal(l->list[0].str, "a");
    assert_int_equal(l->list[1].count, 2);
    assert_int_equal(l->list[1].list[1].type, IMAP_ARG_LIST);
    assert_string_equal(l->list[1].list[1].list[0].str, "c");
    assert_int_equal(l->list[2].type, IMAP_ARG_LIST);
    assert_int_equal(l->list[2].count, 0);
    assert_int_equal(l->list[3].type, IMAP_ARG_QUOTED);
    assert_string_equal(p->cmd.args[1].str, "e");
    parsed_free(p);

    p = parse_ok("a X ((()))");
    assert_int_equal(p->cmd.args[0].list[0].list[0].count, 0);
    parsed_free(p);

    expect_bad("a X (a", "Missing ')'");
    expect_bad("a X (a))", "Unexpected ')'");
    expect_bad("a X )", "Invalid character");
    expect_bad("a X ( a)", "Argument expected after '('");
    expect_bad("a X (a )", "Argument expected after space");
    expect_bad("a X a  b", "Argument expected after space");
    expect_bad("a X a ", "Argument expected after space");
    expect_bad("a X (a)(b)", "Expected space");
    expect_bad("a X (", "Missing ')'");
    expect_bad("a X caf\xc3\xa9", "8-bit data in atom");
    expect_bad_f("a X a\0b", 7, 0, "Expected space");
    expect_bad("a X a\tb", "Expected space");
}

static void test_parse_limits(void **state)
{
    char buf[200000];
    size_t n;

    /* exactly IMAP_MAX_DEPTH levels pass, one more is refused */
    n = (size_t)snprintf(buf, sizeof(buf), "a X ");
    for (int i = 0; i < IMAP_MAX_DEPTH; i++)
        buf[n++] = '(';
    for (int i = 0; i < IMAP_MAX_DEPTH; i++)
        buf[n++] = ')';
    struct parsed *p = parse_ok_f(buf, n, 0);
    parsed_free(p);
    n = (size_t)snprintf(buf, sizeof(buf), "a X ");
    for (int i = 0; i < 100000; i++)
        buf[n++] = '(';
    expect_bad_f(buf, n, 0, "nested too deep");

    /* argument count */
    n = (size_t)snprintf(buf, sizeof(buf), "a X");
    for (int i = 0; i < IMAP_MAX_ARGS; i++) {
        buf[n++] = ' ';
        buf[n++] = 'x';
    }
    p = parse_ok_f(buf, n, 0);
    assert_int_equal(p->cmd.nargs, IMAP_MAX_ARGS);
    parsed_free(p);
    buf[n++] = ' ';
    buf[n++] = 'x';
    expect_bad_f(buf, n, 0, "Too many arguments");
    /* lists count too */
    n = (size_t)snprintf(buf, sizeof(buf), "a X");
    for (int i = 0; i < IMAP_MAX_ARGS / 2 + 1; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " (x)");
    expect_bad_f(buf, n, 0, "Too many arguments");
}

static void test_parse_fetch_atoms(void **state)
{
    struct parsed *p = parse_ok("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.2048> "
                                "BODY[1.2.HEADER.FIELDS.NOT (\"X-A)\" To)] FLAGS)\r\n");
    const struct imap_arg *l = &p->cmd.args[1];

    assert_int_equal(l->count, 3);
    assert_string_equal(l->list[0].str, "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.2048>");
    assert_string_equal(l->list[1].str, "BODY[1.2.HEADER.FIELDS.NOT (\"X-A)\" To)]");
    parsed_free(p);

    /* brackets outside FETCH are ordinary atom characters */
    p = parse_ok("a SELECT a[b c]\r\n");
    assert_int_equal(p->cmd.nargs, 2);
    assert_string_equal(p->cmd.args[0].str, "a[b");
    parsed_free(p);

    expect_bad("a FETCH 1 BODY[HEADER", "Missing ']'");
    expect_bad("a FETCH 1 (BODY[HEADER.FIELDS (A {3}\r\nabc)])", "Literal inside");
    expect_bad("a FETCH 1 BODY[\"]", "Missing ']'");
    expect_bad("a FETCH 1 BODY[HEADER.FIELDS (\"a\\x\")]", "Invalid escape in [section]");
    expect_bad_f("a FETCH 1 BODY[HEADER.FIELDS (\"a\rb\")]", 38, 0, "Invalid character");
    expect_bad("a FETCH 1 BODY[HEADER.FIELDS (\"\xc3\xa9\")]", "Invalid character");
}

/* ---- sequence sets ------------------------------------------------------------------------ */

static void seq_ok(const char *s, unsigned flags, uint32_t max, const char *want)
{
    struct imap_seqset set;
    char err[128], out[256];

    if (imap_seqset_parse(NULL, s, strlen(s), flags, &set, err, sizeof(err)) < 0)
        fail_msg("'%s' refused: %s", s, err);
    imap_seqset_resolve(&set, max);
    imap_seqset_format(&set, out, sizeof(out));
    if (strcmp(out, want) != 0)
        fail_msg("'%s' max %u: got '%s', want '%s'", s, max, out, want);
    imap_seqset_free(&set);
}

static void seq_bad(const char *s, const char *msg)
{
    struct imap_seqset set;
    char err[128] = "";

    if (imap_seqset_parse(NULL, s, strlen(s), 0, &set, err, sizeof(err)) == 0)
        fail_msg("'%s' accepted", s);
    if (!strstr(err, msg))
        fail_msg("'%s': expected '%s', got '%s'", s, msg, err);
}

static void test_seqset(void **state)
{
    struct imap_seqset set;
    struct imap_arena a = {0};
    char err[128], out[64];

    seq_ok("1", 0, 10, "1");
    seq_ok("1:3", 0, 10, "1:3");
    seq_ok("3:1", 0, 10, "1:3");
    seq_ok("5,1:3,2,4", 0, 10, "1:5");
    seq_ok("7,1,3", 0, 10, "1,3,7");
    seq_ok("1:*", 0, 10, "1:10");
    seq_ok("*:4", 0, 10, "4:10");
    seq_ok("*", 0, 10, "10");
    seq_ok("*:*", 0, 10, "10");
    seq_ok("20:*", 0, 10, "10:20"); /* RFC 9051: n:* with n > max is max:n */
    seq_ok("1:*,3", 0, 0, "3");     /* empty mailbox: '*' matches nothing */
    seq_ok("4294967295", 0, 10, "4294967295");
    seq_ok("4294967294:4294967295,1", 0, 10, "1,4294967294:4294967295");
    seq_ok("00012", 0, 100, "12");

    seq_bad("", "Empty");
    seq_bad("0", "0 is not a valid");
    seq_bad("0:5", "0 is not a valid");
    seq_bad("1:0", "0 is not a valid");
    seq_bad("4294967296", "too large");
    seq_bad("99999999999999999999999", "too large");
    seq_bad("1,", "Invalid sequence set");
    seq_bad(",1", "Invalid sequence set");
    seq_bad("1,,2", "Invalid sequence set");
    seq_bad("1:", "Invalid sequence set");
    seq_bad(":1", "Invalid sequence set");
    seq_bad("1:2:3", "Invalid sequence set");
    seq_bad("a", "Invalid sequence set");
    seq_bad("-1", "Invalid sequence set");
    seq_bad("1 2", "Invalid sequence set");
    seq_bad("**", "Invalid sequence set");
    seq_bad("$", "$ is not allowed");
    seq_bad("$,1", "Invalid sequence set");

    assert_int_equal(imap_seqset_parse(&a, "$", 1, IMAP_SEQ_ALLOW_DOLLAR, &set, err, sizeof(err)),
                     0);
    assert_true(set.dollar);
    assert_int_equal(set.n, 0);

    /* contains / count / iteration on an arena set */
    assert_int_equal(imap_seqset_parse(&a, "9,2:4,*", 7, 0, &set, err, sizeof(err)), 0);
    assert_int_equal(set.nstar, 1);
    imap_seqset_format(&set, out, sizeof(out));
    assert_string_equal(out, "2:4,9,*");
    imap_seqset_resolve(&set, 12);
    assert_true(imap_seqset_contains(&set, 2));
    assert_true(imap_seqset_contains(&set, 4));
    assert_true(imap_seqset_contains(&set, 12));
    assert_false(imap_seqset_contains(&set, 1));
    assert_false(imap_seqset_contains(&set, 5));
    assert_false(imap_seqset_contains(&set, 11));
    assert_int_equal(imap_seqset_count(&set), 5);
    assert_int_equal(imap_seqset_max(&set), 12);
    struct imap_seqset_iter it = {0};
    uint32_t v, got[8];
    size_t n = 0;
    while (imap_seqset_next(&set, &it, &v) && n < 8)
        got[n++] = v;
    assert_int_equal(n, 5);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[3], 9);
    assert_int_equal(got[4], 12);
    imap_seqset_free(&set);

    /* iteration ends cleanly at the top of the range */
    assert_int_equal(imap_seqset_parse(&a, "4294967295", 10, 0, &set, err, sizeof(err)), 0);
    memset(&it, 0, sizeof(it));
    n = 0;
    while (imap_seqset_next(&set, &it, &v))
        n++;
    assert_int_equal(n, 1);
    assert_int_equal(imap_seqset_count(&set), 1);
    /* format truncates like snprintf */
    assert_int_equal(imap_seqset_parse(&a, "1,3,5,7", 7, 0, &set, err, sizeof(err)), 0);
    assert_int_equal(imap_seqset_format(&set, out, 4), 7);
    assert_string_equal(out, "1,3");
    imap_arena_free(&a);

    uint32_t u;
    uint64_t u64;
    assert_int_equal(imap_parse_nz_number("4294967295", 10, &u), 0);
    assert_int_equal(imap_parse_nz_number("4294967296", 10, &u), -1);
    assert_int_equal(imap_parse_nz_number("0", 1, &u), -1);
    assert_int_equal(imap_parse_nz_number("", 0, &u), -1);
    assert_int_equal(imap_parse_nz_number("+1", 2, &u), -1);
    assert_int_equal(imap_parse_number64("9223372036854775807", 19, &u64), 0);
    assert_int_equal(imap_parse_number64("9223372036854775808", 19, &u64), -1);
    assert_int_equal(imap_parse_number64("0", 1, &u64), 0);
}

/* ---- SEARCH -------------------------------------------------------------------------------- */

struct sres {
    struct parsed *p;
    struct imap_search s;
};

static struct sres search_ok_f(const char *cmd, unsigned flags)
{
    struct sres r;

    r.p = parse_ok(cmd);
    if (imap_search_parse(&r.p->cmd.arena, r.p->cmd.args, r.p->cmd.nargs, flags, &r.s, r.p->err,
                          sizeof(r.p->err)) < 0)
        fail_msg("'%s' refused: %s", cmd, r.p->err);
    return r;
}

static void search_bad(const char *cmd, const char *msg)
{
    struct parsed *p = parse_ok(cmd);
    struct imap_search s;

    p->err[0] = 0;
    if (imap_search_parse(&p->cmd.arena, p->cmd.args, p->cmd.nargs, 0, &s, p->err,
                          sizeof(p->err)) == 0)
        fail_msg("'%s' accepted", cmd);
    if (!strstr(p->err, msg))
        fail_msg("'%s': expected '%s', got '%s'", cmd, msg, p->err);
    parsed_free(p);
}

static const struct imap_search_key *only_key(const struct sres *r)
{
    assert_int_equal(r->s.root->type, IMAP_SK_AND);
    assert_int_equal(r->s.root->nchildren, 1);
    return r->s.root->child;
}

static void test_search_simple_keys(void **state)
{
    static const struct {
        const char *args;
        enum imap_sk type;
        bool negated;
        unsigned flag;
    } cases[] = {
        {"ALL", IMAP_SK_ALL, false, 0},
        {"ANSWERED", IMAP_SK_FLAG, false, IMAP_FLAG_ANSWERED},
        {"DELETED", IMAP_SK_FLAG, false, IMAP_FLAG_DELETED},
        {"DRAFT", IMAP_SK_FLAG, false, IMAP_FLAG_DRAFT},
        {"FLAGGED", IMAP_SK_FLAG, false, IMAP_FLAG_FLAGGED},
        {"RECENT", IMAP_SK_FLAG, false, IMAP_FLAG_RECENT},
        {"seen", IMAP_SK_FLAG, false, IMAP_FLAG_SEEN},
        {"OLD", IMAP_SK_FLAG, true, IMAP_FLAG_RECENT},
        {"UNANSWERED", IMAP_SK_FLAG, true, IMAP_FLAG_ANSWERED},
        {"UNDELETED", IMAP_SK_FLAG, true, IMAP_FLAG_DELETED},
        {"UNDRAFT", IMAP_SK_FLAG, true, IMAP_FLAG_DRAFT},
        {"UNFLAGGED", IMAP_SK_FLAG, true, IMAP_FLAG_FLAGGED},
        {"UNSEEN", IMAP_SK_FLAG, true, IMAP_FLAG_SEEN},
    };
    char cmd[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        snprintf(cmd, sizeof(cmd), "a SEARCH %s", cases[i].args);
        struct sres r = search_ok_f(cmd, 0);
        const struct imap_search_key *k = only_key(&r);
        if (cases[i].negated) {
            assert_int_equal(k->type, IMAP_SK_NOT);
            assert_int_equal(k->nchildren, 1);
            k = k->child;
        }
        assert_int_equal(k->type, cases[i].type);
        if (k->type == IMAP_SK_FLAG)
            assert_int_equal(k->u.flag, cases[i].flag);
        parsed_free(r.p);
    }

    struct sres r = search_ok_f("a SEARCH NEW", 0);
    const struct imap_search_key *k = only_key(&r);
    assert_int_equal(k->type, IMAP_SK_AND);
    assert_int_equal(k->nchildren, 2);
    assert_int_equal(k->child->u.flag, IMAP_FLAG_RECENT);
    assert_int_equal(k->child->next->type, IMAP_SK_NOT);
    assert_int_equal(k->child->next->child->u.flag, IMAP_FLAG_SEEN);
    parsed_free(r.p);
}

static void test_search_arg_keys(void **state)
{
    static const char *const hdr[] = {"BCC", "CC", "FROM", "SUBJECT", "TO"};
    char cmd[128];

    for (size_t i = 0; i < 5; i++) {
        snprintf(cmd, sizeof(cmd), "a SEARCH %s \"x y\"", hdr[i]);
        struct sres r = search_ok_f(cmd, 0);
        const struct imap_search_key *k = only_key(&r);
        assert_int_equal(k->type, IMAP_SK_HEADER);
        assert_string_equal(k->u.hdr.name, hdr[i]);
        assert_string_equal(k->u.hdr.value, "x y");
        parsed_free(r.p);
    }
    struct sres r = search_ok_f("a SEARCH HEADER X-Spam-Flag YES BODY {4}\r\nab c TEXT \"\"", 0);
    const struct imap_search_key *k = r.s.root->child;
    assert_int_equal(r.s.root->nchildren, 3);
    assert_int_equal(k->type, IMAP_SK_HEADER);
    assert_string_equal(k->u.hdr.name, "X-Spam-Flag");
    assert_string_equal(k->u.hdr.value, "YES");
    k = k->next;
    assert_int_equal(k->type, IMAP_SK_BODY);
    assert_string_equal(k->u.str, "ab c");
    k = k->next;
    assert_int_equal(k->type, IMAP_SK_TEXT);
    assert_string_equal(k->u.str, "");
    parsed_free(r.p);

    static const struct {
        const char *kw;
        enum imap_sk type;
    } dates[] = {{"BEFORE", IMAP_SK_BEFORE}, {"ON", IMAP_SK_ON},
                 {"SINCE", IMAP_SK_SINCE},   {"SENTBEFORE", IMAP_SK_SENTBEFORE},
                 {"SENTON", IMAP_SK_SENTON}, {"SENTSINCE", IMAP_SK_SENTSINCE}};
    for (size_t i = 0; i < 6; i++) {
        snprintf(cmd, sizeof(cmd), "a SEARCH %s %s", dates[i].kw,
                 i % 2 ? "\"1-Feb-1994\"" : "01-feb-1994");
        r = search_ok_f(cmd, 0);
        k = only_key(&r);
        assert_int_equal(k->type, dates[i].type);
        assert_int_equal(k->u.day, 8797); /* 1994-02-01 */
        parsed_free(r.p);
    }

    r = search_ok_f("a SEARCH LARGER 100 SMALLER 9223372036854775807 YOUNGER 3600 OLDER 1", 0);
    k = r.s.root->child;
    assert_int_equal(k->type, IMAP_SK_LARGER);
    assert_true(k->u.num == 100);
    assert_int_equal(k->next->type, IMAP_SK_SMALLER);
    assert_true(k->next->u.num == INT64_MAX);
    assert_int_equal(k->next->next->type, IMAP_SK_YOUNGER);
    assert_true(k->next->next->u.num == 3600);
    assert_int_equal(k->next->next->next->type, IMAP_SK_OLDER);
    parsed_free(r.p);

    r = search_ok_f("a SEARCH KEYWORD $Junk UNKEYWORD NonJunk", 0);
    k = r.s.root->child;
    assert_int_equal(k->type, IMAP_SK_KEYWORD);
    assert_string_equal(k->u.str, "$Junk");
    assert_int_equal(k->next->type, IMAP_SK_NOT);
    assert_string_equal(k->next->child->u.str, "NonJunk");
    parsed_free(r.p);

    r = search_ok_f("a SEARCH UID 1:5,9 2,4:* $", IMAP_SEARCH_DOLLAR);
    k = r.s.root->child;
    assert_int_equal(k->type, IMAP_SK_UID);
    assert_int_equal(k->u.seq.n, 2);
    assert_int_equal(k->next->type, IMAP_SK_SEQSET);
    assert_int_equal(k->next->u.seq.nstar, 1);
    assert_int_equal(k->next->next->type, IMAP_SK_SEQSET);
    assert_true(k->next->next->u.seq.dollar);
    parsed_free(r.p);

    r = search_ok_f("a SEARCH MODSEQ 620162338 MODSEQ \"/flags/\\\\draft\" all 0", 0);
    k = r.s.root->child;
    assert_true(r.s.uses_modseq);
    assert_int_equal(k->type, IMAP_SK_MODSEQ);
    assert_null(k->u.modseq.entry);
    assert_true(k->u.modseq.value == 620162338);
    assert_string_equal(k->next->u.modseq.entry, "/flags/\\draft");
    assert_int_equal(k->next->u.modseq.entry_type, IMAP_ENTRY_ALL);
    assert_true(k->next->u.modseq.value == 0);
    parsed_free(r.p);

    r = search_ok_f("a SEARCH EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9", 0);
    assert_int_equal(r.s.root->child->type, IMAP_SK_EMAILID);
    assert_string_equal(r.s.root->child->next->u.str, "T64b478a75b7ea9");
    parsed_free(r.p);
}

static void test_search_nesting(void **state)
{
    struct sres r = search_ok_f("a SEARCH OR (SEEN FLAGGED) NOT OR DELETED 1:3 NOT NOT ALL", 0);
    const struct imap_search_key *k = r.s.root->child, *o;

    assert_int_equal(r.s.root->nchildren, 2);
    assert_int_equal(k->type, IMAP_SK_OR);
    assert_int_equal(k->nchildren, 2);
    assert_int_equal(k->child->type, IMAP_SK_AND);
    assert_int_equal(k->child->nchildren, 2);
    assert_int_equal(k->child->next->type, IMAP_SK_NOT);
    o = k->child->next->child;
    assert_int_equal(o->type, IMAP_SK_OR);
    assert_int_equal(o->child->u.flag, IMAP_FLAG_DELETED);
    assert_int_equal(o->child->next->type, IMAP_SK_SEQSET);
    k = k->next;
    assert_int_equal(k->type, IMAP_SK_NOT);
    assert_int_equal(k->child->type, IMAP_SK_NOT);
    assert_int_equal(k->child->child->type, IMAP_SK_ALL);
    parsed_free(r.p);

    /* NOT ... NOT bomb and OR chains hit the depth limit, not the stack */
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "a SEARCH");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " NOT");
    snprintf(buf + n, sizeof(buf) - n, " ALL");
    search_bad(buf, "nested too deep");
    n = (size_t)snprintf(buf, sizeof(buf), "a SEARCH");
    for (int i = 0; i < IMAP_SEARCH_MAX_DEPTH - 1; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " OR SEEN");
    snprintf(buf + n, sizeof(buf) - n, " ALL");
    r = search_ok_f(buf, 0);
    parsed_free(r.p);
    n = (size_t)snprintf(buf, sizeof(buf), "a SEARCH");
    for (int i = 0; i < IMAP_SEARCH_MAX_DEPTH + 1; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " OR SEEN");
    snprintf(buf + n, sizeof(buf) - n, " ALL");
    search_bad(buf, "nested too deep");
    n = (size_t)snprintf(buf, sizeof(buf), "a SEARCH ");
    for (int i = 0; i < IMAP_MAX_DEPTH; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "(NOT ");
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "ALL");
    for (int i = 0; i < IMAP_MAX_DEPTH; i++)
        buf[n++] = ')';
    buf[n] = 0;
    search_bad(buf, "nested too deep");
}

static void test_search_options(void **state)
{
    struct sres r = search_ok_f("a SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 ALL", 0);

    assert_true(r.s.esearch);
    assert_int_equal(r.s.ret, IMAP_SRET_MIN | IMAP_SRET_MAX | IMAP_SRET_COUNT);
    assert_string_equal(r.s.charset, "UTF-8");
    assert_int_equal(only_key(&r)->type, IMAP_SK_ALL);
    parsed_free(r.p);

    r = search_ok_f("a UID SEARCH RETURN () 1:*", 0);
    assert_true(r.s.esearch);
    assert_int_equal(r.s.ret, IMAP_SRET_ALL);
    assert_null(r.s.charset);
    parsed_free(r.p);

    r = search_ok_f("a SEARCH CHARSET {5}\r\nUTF-8 SEEN", 0);
    assert_string_equal(r.s.charset, "UTF-8");
    assert_false(r.s.esearch);
    parsed_free(r.p);

    r = search_ok_f("a SEARCH RETURN (SAVE ALL) CHARSET \"us-ascii\" SEEN", 0);
    assert_int_equal(r.s.ret, IMAP_SRET_SAVE | IMAP_SRET_ALL);
    assert_string_equal(r.s.charset, "us-ascii");
    parsed_free(r.p);

    search_bad("a SEARCH", "Missing search keys");
    search_bad("a SEARCH CHARSET UTF-8", "Missing search keys");
    search_bad("a SEARCH RETURN (MIN BOGUS) ALL", "Unknown RETURN option");
    search_bad("a SEARCH RETURN MIN ALL", "RETURN needs a list");
    search_bad("a SEARCH CHARSET (x) ALL", "Invalid CHARSET");
}

static void test_search_errors(void **state)
{
    search_bad("a SEARCH BOGUS", "Unknown search key BOGUS");
    search_bad("a SEARCH \"SEEN\"", "Search key expected");
    search_bad("a SEARCH ()", "Empty search key list");
    search_bad("a SEARCH NOT", "Missing search key");
    search_bad("a SEARCH OR SEEN", "Missing search key");
    search_bad("a SEARCH FROM", "Missing argument for search key FROM");
    search_bad("a SEARCH FROM (x)", "Invalid string");
    search_bad("a SEARCH BEFORE 32-Jan-2020", "Invalid date");
    search_bad("a SEARCH BEFORE 29-Feb-2021", "Invalid date");
    search_bad("a SEARCH SINCE 1-Foo-2020", "Invalid date");
    search_bad("a SEARCH SINCE 1-Jan-20", "Invalid date");
    search_bad("a SEARCH ON {10}\r\n1-Jan-2020", "Invalid date");
    search_bad("a SEARCH LARGER -1", "Invalid number");
    search_bad("a SEARCH LARGER 9223372036854775808", "Invalid number");
    search_bad("a SEARCH YOUNGER 0", "Invalid number");
    search_bad("a SEARCH OLDER 4294967296", "Invalid number");
    search_bad("a SEARCH KEYWORD \\Seen", "Invalid argument for search key KEYWORD");
    search_bad("a SEARCH KEYWORD \"a b\"", "Invalid argument");
    search_bad("a SEARCH HEADER \"a:b\" x", "Invalid header field name");
    search_bad("a SEARCH HEADER \"\" x", "Invalid header field name");
    search_bad("a SEARCH HEADER Subject", "Missing argument");
    search_bad("a SEARCH UID", "Missing argument");
    search_bad("a SEARCH UID 0", "0 is not a valid");
    search_bad("a SEARCH UID \"1\"", "Invalid sequence set");
    search_bad("a SEARCH 1:0", "0 is not a valid");
    search_bad("a SEARCH $", "$ is not allowed");
    search_bad("a SEARCH MODSEQ", "Missing argument");
    search_bad("a SEARCH MODSEQ \"/flags/x\" bogus 5", "Invalid MODSEQ entry type");
    search_bad("a SEARCH MODSEQ \"/flags/x\" priv", "Missing argument");
    search_bad("a SEARCH MODSEQ 99999999999999999999", "Invalid number");
    search_bad("a SEARCH EMAILID a.b", "Invalid argument");
}

/* parse_ok with a literal containing NUL fails in the tokenizer: check that separately */
static void test_search_literal_nul(void **state)
{
    static const char wire[] = "a SEARCH TEXT ~{3}\r\na\0b";
    struct parsed *p = parse_ok_f(wire, sizeof(wire) - 1, 0);
    struct imap_search s;

    assert_int_equal(
        imap_search_parse(&p->cmd.arena, p->cmd.args, p->cmd.nargs, 0, &s, p->err, sizeof(p->err)),
        -1);
    assert_non_null(strstr(p->err, "Invalid string"));
    parsed_free(p);
}

static void test_sort(void **state)
{
    struct parsed *p = parse_ok("a SORT (REVERSE date subject reverse DISPLAYFROM) UTF-8 ALL");
    struct imap_sort keys[IMAP_SORT_MAX];
    size_t n;

    assert_int_equal(imap_sort_parse(&p->cmd.args[0], keys, &n, p->err, sizeof(p->err)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(keys[0].key, IMAP_SORT_DATE);
    assert_true(keys[0].reverse);
    assert_int_equal(keys[1].key, IMAP_SORT_SUBJECT);
    assert_false(keys[1].reverse);
    assert_int_equal(keys[2].key, IMAP_SORT_DISPLAYFROM);
    assert_true(keys[2].reverse);
    parsed_free(p);

    static const char *const bad[] = {"a SORT () X",
                                      "a SORT DATE X",
                                      "a SORT (REVERSE) X",
                                      "a SORT (DATE REVERSE) X",
                                      "a SORT (REVERSE REVERSE DATE) X",
                                      "a SORT (BOGUS) X",
                                      "a SORT (\"DATE\") X",
                                      "a SORT (DATE DATE DATE DATE DATE DATE DATE DATE DATE DATE "
                                      "DATE DATE DATE DATE DATE DATE DATE) X"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        p = parse_ok(bad[i]);
        p->err[0] = 0;
        assert_int_equal(imap_sort_parse(&p->cmd.args[0], keys, &n, p->err, sizeof(p->err)), -1);
        assert_true(p->err[0] != 0);
        parsed_free(p);
    }
}

/* ---- FETCH ---------------------------------------------------------------------------------- */

struct fres {
    struct parsed *p;
    struct imap_fetch f;
};

static struct fres fetch_ok(const char *cmd)
{
    struct fres r;

    r.p = parse_ok(cmd);
    if (imap_fetch_parse(&r.p->cmd.arena, &r.p->cmd.args[1],
                         r.p->cmd.nargs > 2 ? &r.p->cmd.args[2] : NULL, r.p->cmd.uid, &r.f,
                         r.p->err, sizeof(r.p->err)) < 0)
        fail_msg("'%s' refused: %s", cmd, r.p->err);
    return r;
}

static void fetch_bad(const char *cmd, const char *msg)
{
    struct parsed *p = parse_ok(cmd);
    struct imap_fetch f;

    p->err[0] = 0;
    if (imap_fetch_parse(&p->cmd.arena, &p->cmd.args[1], p->cmd.nargs > 2 ? &p->cmd.args[2] : NULL,
                         p->cmd.uid, &f, p->err, sizeof(p->err)) == 0)
        fail_msg("'%s' accepted", cmd);
    if (!strstr(p->err, msg))
        fail_msg("'%s': expected '%s', got '%s'", cmd, msg, p->err);
    parsed_free(p);
}

static void item_name_is(const struct imap_fetch_item *it, const char *want)
{
    char buf[256];

    imap_fetch_item_name(it, buf, sizeof(buf));
    if (strcmp(buf, want) != 0)
        fail_msg("item name '%s', want '%s'", buf, want);
}

static void test_fetch_simple(void **state)
{
    struct fres r = fetch_ok("a FETCH 1 (FLAGS UID INTERNALDATE RFC822.SIZE RFC822 RFC822.HEADER "
                             "RFC822.TEXT ENVELOPE BODY BODYSTRUCTURE MODSEQ EMAILID THREADID)");
    static const enum imap_fetch_type want[] = {
        IMAP_FETCH_FLAGS,         IMAP_FETCH_UID,      IMAP_FETCH_INTERNALDATE,
        IMAP_FETCH_RFC822_SIZE,   IMAP_FETCH_RFC822,   IMAP_FETCH_RFC822_HEADER,
        IMAP_FETCH_RFC822_TEXT,   IMAP_FETCH_ENVELOPE, IMAP_FETCH_BODY,
        IMAP_FETCH_BODYSTRUCTURE, IMAP_FETCH_MODSEQ,   IMAP_FETCH_EMAILID,
        IMAP_FETCH_THREADID};

    assert_int_equal(r.f.count, 13);
    for (size_t i = 0; i < 13; i++)
        assert_int_equal(r.f.items[i].type, want[i]);
    assert_true(r.f.sets_seen); /* RFC822, RFC822.TEXT */
    item_name_is(&r.f.items[3], "RFC822.SIZE");
    parsed_free(r.p);

    r = fetch_ok("a FETCH 1:* fast");
    assert_int_equal(r.f.count, 3);
    assert_false(r.f.sets_seen);
    parsed_free(r.p);
    r = fetch_ok("a FETCH 1 ALL");
    assert_int_equal(r.f.count, 4);
    assert_int_equal(r.f.items[3].type, IMAP_FETCH_ENVELOPE);
    parsed_free(r.p);
    r = fetch_ok("a FETCH 1 FULL");
    assert_int_equal(r.f.count, 5);
    assert_int_equal(r.f.items[4].type, IMAP_FETCH_BODY);
    parsed_free(r.p);
    r = fetch_ok("a FETCH 1 uid");
    assert_int_equal(r.f.count, 1);
    assert_int_equal(r.f.items[0].type, IMAP_FETCH_UID);
    parsed_free(r.p);
}

static void test_fetch_sections(void **state)
{
    struct fres r = fetch_ok("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.2048> "
                             "BINARY[1.2]<5.10> BODY[] body[1.2.3.mime] BODY[TEXT] "
                             "BINARY.PEEK[] BINARY.SIZE[3] BODY[2.HEADER.FIELDS.NOT (\"X-A(b\")] "
                             "BODY.PEEK[4] BODY[HEADER])");
    const struct imap_fetch_item *it = r.f.items;

    assert_int_equal(r.f.count, 10);
    assert_int_equal(it[0].type, IMAP_FETCH_BODY_SECTION);
    assert_true(it[0].peek);
    assert_int_equal(it[0].section.text, IMAP_SECTION_HEADER_FIELDS);
    assert_int_equal(it[0].section.nfields, 2);
    assert_string_equal(it[0].section.fields[0], "SUBJECT");
    assert_string_equal(it[0].section.fields[1], "FROM");
    assert_true(it[0].partial && it[0].offset == 0 && it[0].count == 2048);
    item_name_is(&it[0], "BODY[HEADER.FIELDS (SUBJECT FROM)]<0>");

    assert_int_equal(it[1].type, IMAP_FETCH_BINARY);
    assert_false(it[1].peek);
    assert_int_equal(it[1].section.nparts, 2);
    assert_int_equal(it[1].section.part[0], 1);
    assert_int_equal(it[1].section.part[1], 2);
    assert_true(it[1].partial && it[1].offset == 5 && it[1].count == 10);
    item_name_is(&it[1], "BINARY[1.2]<5>");

    assert_int_equal(it[2].section.text, IMAP_SECTION_ALL);
    assert_int_equal(it[2].section.nparts, 0);
    item_name_is(&it[2], "BODY[]");
    assert_int_equal(it[3].section.text, IMAP_SECTION_MIME);
    assert_int_equal(it[3].section.nparts, 3);
    item_name_is(&it[3], "BODY[1.2.3.MIME]");
    assert_int_equal(it[4].section.text, IMAP_SECTION_TEXT);
    assert_true(it[5].peek);
    assert_int_equal(it[5].type, IMAP_FETCH_BINARY);
    item_name_is(&it[5], "BINARY[]");
    assert_int_equal(it[6].type, IMAP_FETCH_BINARY_SIZE);
    item_name_is(&it[6], "BINARY.SIZE[3]");
    assert_int_equal(it[7].section.text, IMAP_SECTION_HEADER_FIELDS_NOT);
    assert_string_equal(it[7].section.fields[0], "X-A(b");
    item_name_is(&it[7], "BODY[2.HEADER.FIELDS.NOT (\"X-A(b\")]");
    assert_true(it[8].peek);
    item_name_is(&it[8], "BODY[4]");
    assert_int_equal(it[9].section.text, IMAP_SECTION_HEADER);
    assert_true(r.f.sets_seen);
    parsed_free(r.p);

    r = fetch_ok("a FETCH 1 BODY.PEEK[HEADER.FIELDS (From To)]");
    assert_int_equal(r.f.count, 1);
    assert_int_equal(r.f.items[0].section.nfields, 2);
    assert_false(r.f.sets_seen);
    parsed_free(r.p);
}

static void test_fetch_modifiers(void **state)
{
    struct fres r = fetch_ok("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)");

    assert_true(r.f.changedsince);
    assert_true(r.f.since == 12345);
    assert_true(r.f.vanished);
    assert_int_equal(r.f.count, 2); /* MODSEQ added */
    assert_int_equal(r.f.items[1].type, IMAP_FETCH_MODSEQ);
    parsed_free(r.p);

    r = fetch_ok("a FETCH 1 (FLAGS MODSEQ) (CHANGEDSINCE 1)");
    assert_int_equal(r.f.count, 2);
    assert_false(r.f.vanished);
    parsed_free(r.p);
    r = fetch_ok("a FETCH 1 ALL (CHANGEDSINCE 1)");
    assert_int_equal(r.f.count, 5);
    parsed_free(r.p);

    fetch_bad("a FETCH 1 FLAGS (VANISHED)", "VANISHED needs");
    fetch_bad("a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)", "VANISHED needs");
    fetch_bad("a UID FETCH 1 FLAGS (VANISHED)", "VANISHED needs");
    fetch_bad("a FETCH 1 FLAGS (CHANGEDSINCE)", "Invalid FETCH modifiers");
    fetch_bad("a FETCH 1 FLAGS (CHANGEDSINCE x)", "Invalid FETCH modifiers");
    fetch_bad("a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "Invalid FETCH modifiers");
    fetch_bad("a FETCH 1 FLAGS (BOGUS)", "Invalid FETCH modifiers");
    fetch_bad("a FETCH 1 FLAGS ()", "Invalid FETCH modifiers");
    fetch_bad("a FETCH 1 FLAGS CHANGEDSINCE", "Invalid FETCH modifiers");
}

static void test_fetch_errors(void **state)
{
    fetch_bad("a FETCH 1 ()", "Empty FETCH item list");
    fetch_bad("a FETCH 1 BOGUS", "Unknown FETCH item");
    fetch_bad("a FETCH 1 (FLAGS ALL)", "Unknown FETCH item ALL");
    fetch_bad("a FETCH 1 (FLAGS \"UID\")", "Invalid FETCH item");
    fetch_bad("a FETCH 1 (FLAGS (UID))", "Invalid FETCH item");
    fetch_bad("a FETCH 1 BODY[MIME]", "MIME needs a part number");
    fetch_bad("a FETCH 1 BODY[0]", "invalid part number");
    fetch_bad("a FETCH 1 BODY[1.0]", "invalid part number");
    fetch_bad("a FETCH 1 BODY[4294967296]", "invalid part number");
    fetch_bad("a FETCH 1 BODY[1.]", "unknown section");
    fetch_bad("a FETCH 1 BODY[.1]", "unknown section");
    fetch_bad("a FETCH 1 BODY[1HEADER]", "invalid section");
    fetch_bad("a FETCH 1 BODY[HEADERX]", "missing ']'");
    fetch_bad("a FETCH 1 BODY[HEADER.FIELDS]", "header list expected");
    fetch_bad("a FETCH 1 BODY[HEADER.FIELDS ()]", "invalid header field name");
    fetch_bad("a FETCH 1 BODY[HEADER.FIELDS (a:b)]", "invalid header");
    fetch_bad("a FETCH 1 BODY[HEADER.FIELDS (\"a b\")]", "invalid header field name");
    fetch_bad("a FETCH 1 BODY[HEADER.FIELDS (a  b)]", "invalid header field name");
    fetch_bad("a FETCH 1 BODY[HEADER.FIELDS (a b]", "invalid header list");
    fetch_bad("a FETCH 1 BODY[TEXT]<>", "invalid partial");
    fetch_bad("a FETCH 1 BODY[TEXT]<1>", "invalid partial");
    fetch_bad("a FETCH 1 BODY[TEXT]<1.0>", "invalid partial");
    fetch_bad("a FETCH 1 BODY[TEXT]<1.2", "invalid partial");
    fetch_bad("a FETCH 1 BODY[TEXT]<99999999999999999999.1>", "invalid partial");
    fetch_bad("a FETCH 1 BODY[TEXT]<1.2>x", "unexpected text");
    fetch_bad("a FETCH 1 BODY[TEXT]x", "unexpected text");
    fetch_bad("a FETCH 1 BINARY[HEADER]", "part numbers only");
    fetch_bad("a FETCH 1 BINARY.SIZE[1]<0.5>", "unexpected text");
    fetch_bad("a FETCH 1 BODY.PEEK", "Unknown FETCH item");
    fetch_bad("a FETCH 1 RFC822.PEEK", "Unknown FETCH item");
    fetch_bad("a FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25"
              ".26.27.28.29.30.31.32.33]",
              "too many part numbers");
}

/* ---- flags and STORE ------------------------------------------------------------------------- */

static void test_flags(void **state)
{
    struct parsed *p = parse_ok("a STORE 1 +FLAGS (\\Seen \\answered $Junk $junk \\Draft Foo)");
    struct imap_flags fl;
    enum imap_store_op op;
    bool silent;

    assert_int_equal(imap_flags_parse(&p->cmd.arena, &p->cmd.args[2], IMAP_FLAGS_STORE, &fl, p->err,
                                      sizeof(p->err)),
                     0);
    assert_int_equal(fl.sys, IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED | IMAP_FLAG_DRAFT);
    assert_int_equal(fl.nkeywords, 2);
    assert_string_equal(fl.keywords[0], "$Junk");
    assert_string_equal(fl.keywords[1], "Foo");
    assert_int_equal(imap_store_item_parse(&p->cmd.args[1], &op, &silent, p->err, sizeof(p->err)),
                     0);
    assert_int_equal(op, IMAP_STORE_ADD);
    assert_false(silent);
    parsed_free(p);

    p = parse_ok("a STORE 1 -flags.silent \\Deleted");
    assert_int_equal(imap_store_item_parse(&p->cmd.args[1], &op, &silent, p->err, sizeof(p->err)),
                     0);
    assert_int_equal(op, IMAP_STORE_REMOVE);
    assert_true(silent);
    assert_int_equal(imap_flags_parse(&p->cmd.arena, &p->cmd.args[2], IMAP_FLAGS_STORE, &fl, p->err,
                                      sizeof(p->err)),
                     0);
    assert_int_equal(fl.sys, IMAP_FLAG_DELETED);
    parsed_free(p);

    p = parse_ok("a STORE 1 FLAGS ()");
    assert_int_equal(imap_store_item_parse(&p->cmd.args[1], &op, &silent, p->err, sizeof(p->err)),
                     0);
    assert_int_equal(op, IMAP_STORE_SET);
    assert_int_equal(
        imap_flags_parse(&p->cmd.arena, &p->cmd.args[2], 0, &fl, p->err, sizeof(p->err)), 0);
    assert_int_equal(fl.sys, 0);
    assert_int_equal(fl.nkeywords, 0);
    parsed_free(p);

    static const struct {
        const char *cmd;
        unsigned opts;
        const char *msg;
    } bad[] = {
        {"a STORE 1 FLAGS (\\Recent)", IMAP_FLAGS_STORE, "\\Recent cannot be changed"},
        {"a STORE 1 FLAGS (\\Bogus)", 0, "Unknown system flag"},
        {"a STORE 1 FLAGS (\\*)", 0, "Unknown system flag"},
        {"a STORE 1 FLAGS (\"Seen\")", 0, "Flags must be atoms"},
        {"a STORE 1 FLAGS ((x))", 0, "Flags must be atoms"},
        {"a STORE 1 FLAGS (a]b)", 0, "Invalid keyword"},
        {"a STORE 1 FLAGS (a%)", 0, "Invalid keyword"},
        {"a STORE 1 FLAGS NIL", 0, "Flags must be atoms"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        p = parse_ok(bad[i].cmd);
        p->err[0] = 0;
        assert_int_equal(imap_flags_parse(&p->cmd.arena, &p->cmd.args[2], bad[i].opts, &fl, p->err,
                                          sizeof(p->err)),
                         -1);
        if (!strstr(p->err, bad[i].msg))
            fail_msg("'%s': expected '%s', got '%s'", bad[i].cmd, bad[i].msg, p->err);
        parsed_free(p);
    }
    /* a flag list longer than IMAP_MAX_FLAGS */
    char *big = malloc(IMAP_MAX_FLAGS * 8 + 64);
    assert_non_null(big);
    size_t n = (size_t)sprintf(big, "a STORE 1 FLAGS (");
    for (int i = 0; i <= IMAP_MAX_FLAGS; i++)
        n += (size_t)sprintf(big + n, "%sk%d", i ? " " : "", i);
    strcpy(big + n, ")");
    p = parse_ok(big);
    assert_int_equal(
        imap_flags_parse(&p->cmd.arena, &p->cmd.args[2], 0, &fl, p->err, sizeof(p->err)), -1);
    assert_non_null(strstr(p->err, "Too many flags"));
    parsed_free(p);
    free(big);

    p = parse_ok("a STORE 1 (FLAGS) X FLAGSX +FLAG \"FLAGS\" -FLAGS.SILENTX");
    for (size_t i = 1; i < p->cmd.nargs; i++)
        assert_int_equal(
            imap_store_item_parse(&p->cmd.args[i], &op, &silent, p->err, sizeof(p->err)), -1);
    parsed_free(p);
}

/* ---- dates ------------------------------------------------------------------------------------
 */

static void test_dates(void **state)
{
    int32_t day;
    int64_t t;
    int tz;
    char buf[64];

    assert_int_equal(imap_date_parse("1-Jan-1970", 10, &day), 0);
    assert_int_equal(day, 0);
    assert_int_equal(imap_date_parse("1-Feb-1994", 10, &day), 0);
    assert_int_equal(day, 8797);
    assert_int_equal(imap_date_parse("29-feb-2000", 11, &day), 0);
    assert_int_equal(imap_date_parse("31-DEC-1969", 11, &day), 0);
    assert_int_equal(day, -1);
    assert_int_equal(imap_date_format(8797, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "1-Feb-1994");
    assert_int_equal(imap_date_format(-1, buf, sizeof(buf)), 11);
    assert_string_equal(buf, "31-Dec-1969");
    assert_int_equal(imap_date_format(8797, buf, 5), -1);

    static const char *const bad_dates[] = {
        "",           "1-Feb-94",    "0-Feb-1994",  "32-Jan-1994", "29-Feb-1900", "31-Apr-2020",
        "1-Fev-1994", "1 Feb 1994",  "1-Feb-1994 ", "x1-Feb-1994", "1-Feb-199x",  "100-Feb-1994",
        "1-Feb-0000", "-1-Feb-1994", "01-Feb-1994x"};
    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(*bad_dates); i++)
        if (imap_date_parse(bad_dates[i], strlen(bad_dates[i]), &day) == 0)
            fail_msg("date '%s' accepted", bad_dates[i]);

    assert_int_equal(imap_datetime_parse("17-Jul-1996 02:44:25 -0700", 26, &t, &tz), 0);
    assert_true(t == 837596665);
    assert_int_equal(tz, -420);
    assert_int_equal(imap_datetime_format(t, tz, buf, sizeof(buf)), 26);
    assert_string_equal(buf, "17-Jul-1996 02:44:25 -0700");
    assert_int_equal(imap_datetime_parse(" 7-Jul-1996 02:44:25 +0000", 26, &t, NULL), 0);
    assert_int_equal(imap_datetime_format(t, 0, buf, sizeof(buf)), 26);
    assert_string_equal(buf, "07-Jul-1996 02:44:25 +0000");
    assert_int_equal(imap_datetime_parse("7-Jul-1996 02:44:25 +0130", 25, &t, &tz), 0);
    assert_int_equal(tz, 90);
    assert_int_equal(imap_datetime_format(t, tz, buf, sizeof(buf)), 26);
    assert_string_equal(buf, "07-Jul-1996 02:44:25 +0130");
    assert_int_equal(imap_datetime_parse("01-Jan-1970 00:00:00 +0100", 26, &t, &tz), 0);
    assert_true(t == -3600);
    assert_int_equal(imap_datetime_format(-3600, 0, buf, sizeof(buf)), 26);
    assert_string_equal(buf, "31-Dec-1969 23:00:00 +0000");

    static const char *const bad_dt[] = {
        "17-Jul-1996 02:44:25",       "17-Jul-1996 24:00:00 +0000",  "17-Jul-1996 02:60:00 +0000",
        "17-Jul-1996 02:44:61 +0000", "17-Jul-1996 02:44:25 +2400",  "17-Jul-1996 02:44:25 -0060",
        "17-Jul-1996 02:44:25 0700",  "17-Jul-1996 2:44:25 +0000",   "17-Jul-1996T02:44:25 +0000",
        "31-Feb-1996 02:44:25 +0000", "  7-Jul-1996 02:44:25 +0000", "17-Jul-1996 02:44:25 +07:0",
        "x7-Jul-1996 02:44:25 +0000", "17-Jul-1996 02:44:25 +0700 "};
    for (size_t i = 0; i < sizeof(bad_dt) / sizeof(*bad_dt); i++)
        if (imap_datetime_parse(bad_dt[i], strlen(bad_dt[i]), &t, &tz) == 0)
            fail_msg("date-time '%s' accepted", bad_dt[i]);
    assert_int_equal(imap_datetime_format(0, 24 * 60, buf, sizeof(buf)), -1);
    assert_int_equal(imap_datetime_format(INT64_MAX, 0, buf, sizeof(buf)), -1);
    assert_int_equal(imap_datetime_format(INT64_MIN, 0, buf, sizeof(buf)), -1);
}

/* ---- modified UTF-7 -----------------------------------------------------------------------------
 */

static void utf7_pair(const char *utf7, const char *utf8)
{
    char out[256], err[128];
    int n;

    n = imap_utf7_to_utf8(utf7, strlen(utf7), out, sizeof(out), err, sizeof(err));
    if (n < 0 || strcmp(out, utf8) != 0)
        fail_msg("decode '%s': %d '%s' (%s)", utf7, n, n < 0 ? "" : out, err);
    assert_int_equal((size_t)n, strlen(utf8));
    n = imap_utf8_to_utf7(utf8, strlen(utf8), out, sizeof(out), err, sizeof(err));
    if (n < 0 || strcmp(out, utf7) != 0)
        fail_msg("encode '%s': %d '%s' (%s)", utf8, n, n < 0 ? "" : out, err);
}

static void test_utf7(void **state)
{
    char out[64], err[128];

    utf7_pair("&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    utf7_pair("&-", "&");
    utf7_pair("INBOX", "INBOX");
    utf7_pair("", "");
    utf7_pair("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
              "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    utf7_pair("Entw&APw-rfe", "Entw\xc3\xbcrfe");
    utf7_pair("&AOQA9gD8-", "\xc3\xa4\xc3\xb6\xc3\xbc");
    utf7_pair("a&-b&-&-", "a&b&&");
    utf7_pair("&2D3eAA-", "\xf0\x9f\x98\x80"); /* U+1F600 as a surrogate pair */
    utf7_pair("&2D3eANg93gE-", "\xf0\x9f\x98\x80\xf0\x9f\x98\x81");
    utf7_pair("tab&AAk-x", "tab\tx");

    static const char *const bad[] = {
        "&",                         /* unterminated */
        "&ZeVnLIqe",                 /* unterminated */
        "&Zg",                       /* unterminated */
        "&AGE-",                     /* "a" must not be encoded */
        "&AC0-",                     /* "-" must not be encoded */
        "&ZeV-",                     /* 18 bits: a whole spare char */
        "&AOl-",                     /* non-zero padding bits */
        "&A-",                       /* too short for one unit */
        "&2D0-",                     /* high surrogate alone */
        "&3gA-",                     /* low surrogate alone */
        "&2D3YPQ-",                  /* high + high */
        "&AAA-",                     /* NUL */
        "&Ze/n-",                    /* '/' is not in the modified alphabet */
        "&Ze=-",                     /* no padding */
        "caf\xc3\xa9",               /* 8-bit */
        "a\tb",                      /* control character sent directly */
        "&&-",         "&AOk-&AOk-", /* two runs back to back: the canonical form is one */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        err[0] = 0;
        if (imap_utf7_to_utf8(bad[i], strlen(bad[i]), out, sizeof(out), err, sizeof(err)) >= 0)
            fail_msg("'%s' accepted as '%s'", bad[i], out);
        assert_true(err[0] != 0);
    }
    static const char *const bad8[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                       "\xff", "a\x80"};
    for (size_t i = 0; i < sizeof(bad8) / sizeof(*bad8); i++)
        assert_int_equal(
            imap_utf8_to_utf7(bad8[i], strlen(bad8[i]), out, sizeof(out), err, sizeof(err)), -1);
    assert_int_equal(imap_utf8_to_utf7("a\0b", 3, out, sizeof(out), err, sizeof(err)), -1);
    /* output too small is an error, never an overflow */
    assert_int_equal(imap_utf7_to_utf8("&ZeVnLIqe-", 10, out, 9, err, sizeof(err)), -1);
    assert_int_equal(imap_utf7_to_utf8("&ZeVnLIqe-", 10, out, 10, err, sizeof(err)), 9);
    assert_int_equal(imap_utf8_to_utf7("\xe6\x97\xa5", 3, out, 5, err, sizeof(err)), -1);
    assert_int_equal(imap_utf7_to_utf8("abc", 3, out, 0, err, sizeof(err)), -1);
    assert_true(imap_utf8_valid("\xe6\x97\xa5", 3));
    assert_false(imap_utf8_valid("\xe6\x97", 2));
}

/* ---- string writer ----------------------------------------------------------------------------
 */

static void astring_is(const char *s, size_t len, unsigned flags, const char *want, size_t wlen)
{
    char buf[256];
    size_t n = imap_astring_to_buf(s, len, flags, buf, sizeof(buf));

    if (n != wlen || memcmp(buf, want, wlen) != 0)
        fail_msg("astring of '%s': got '%.*s'", s ? s : "(null)", (int)n, buf);
}

#define ASTR(s, flags, want) astring_is((s), sizeof(s) - 1, (flags), (want), sizeof(want) - 1)

static void test_write_astring(void **state)
{
    char buf[8];

    ASTR("INBOX", 0, "INBOX");
    ASTR("a]b", 0, "a]b");
    ASTR("", 0, "\"\"");
    ASTR("NIL", 0, "\"NIL\"");
    ASTR("nil", 0, "\"nil\"");
    ASTR("a b", 0, "\"a b\"");
    ASTR("a\"b\\c", 0, "\"a\\\"b\\\\c\"");
    ASTR("\\Seen", 0, "\"\\\\Seen\"");
    ASTR("50%", 0, "\"50%\"");
    ASTR("a{b", 0, "\"a{b\"");
    ASTR("caf\xc3\xa9", 0, "{5}\r\ncaf\xc3\xa9");
    ASTR("caf\xc3\xa9", IMAP_WRITE_UTF8, "\"caf\xc3\xa9\"");
    ASTR("caf\xc3", IMAP_WRITE_UTF8, "{4}\r\ncaf\xc3");
    ASTR("a\r\nb", 0, "{4}\r\na\r\nb");
    ASTR("a\0b", 0, "~{3}\r\na\0b");
    astring_is(NULL, 0, IMAP_WRITE_NSTRING, "NIL", 3);
    astring_is(NULL, 0, 0, "\"\"", 2);
    /* long strings become literals */
    char *big = malloc(2000);
    assert_non_null(big);
    memset(big, 'x', 2000);
    big[0] = ' ';
    assert_int_equal(imap_astring_to_buf(big, 2000, 0, buf, sizeof(buf)), 2000 + 8);
    assert_string_equal(buf, "{2000}\r");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_spec),
        cmocka_unit_test(test_literal_check),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_cmdbuf),
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_bad_head),
        cmocka_unit_test(test_parse_quoted),
        cmocka_unit_test(test_parse_literals),
        cmocka_unit_test(test_parse_lists),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_parse_fetch_atoms),
        cmocka_unit_test(test_seqset),
        cmocka_unit_test(test_search_simple_keys),
        cmocka_unit_test(test_search_arg_keys),
        cmocka_unit_test(test_search_nesting),
        cmocka_unit_test(test_search_options),
        cmocka_unit_test(test_search_errors),
        cmocka_unit_test(test_search_literal_nul),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_fetch_simple),
        cmocka_unit_test(test_fetch_sections),
        cmocka_unit_test(test_fetch_modifiers),
        cmocka_unit_test(test_fetch_errors),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_utf7),
        cmocka_unit_test(test_write_astring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
