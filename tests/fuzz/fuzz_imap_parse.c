/*
 * fuzz_imap_parse.c — libFuzzer target for the IMAP parser library (mail/imap_*.c).
 *
 * The input is taken as what a client sent: it is split into lines and literal bytes the
 * way the engine reads them (imap_cmdbuf), parsed as a command, and then every argument is
 * pushed through the semantic parsers (sequence sets, SEARCH, FETCH, flags, dates,
 * modified UTF-7, the string writer). Besides crashes and sanitizer reports, it checks
 * invariants that must hold for any input: round trips of dates and mailbox names, sorted
 * sequence sets, and error messages that never contain CR or LF.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. mail/imap_*.c \
 *       tests/fuzz/fuzz_imap_parse.c -o /tmp/fuzz_imap
 *   /tmp/fuzz_imap -runs=300000 -max_len=4096 tests/fuzz/corpus/imap
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap_parse.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_err(const char *err)
{
    CHECK(!strchr(err, '\r') && !strchr(err, '\n'));
}

static int sink(void *ctx, const void *data, size_t len)
{
    size_t *total = ctx;

    (void)data;
    *total += len;
    return 0;
}

static void check_seqset(struct imap_arena *a, const char *s, size_t len)
{
    struct imap_seqset set;
    struct imap_seqset_iter it = {0};
    char err[128], out[64];
    uint32_t v, prev = 0;

    if (imap_seqset_parse(NULL, s, len, IMAP_SEQ_ALLOW_DOLLAR, &set, err, sizeof(err)) < 0) {
        check_err(err);
        return;
    }
    imap_seqset_format(&set, out, sizeof(out));
    imap_seqset_resolve(&set, (uint32_t)len * 7);
    for (size_t i = 0; i < set.n; i++) {
        CHECK(set.r[i].lo <= set.r[i].hi && set.r[i].lo > 0);
        CHECK(i == 0 || (uint64_t)set.r[i - 1].hi + 1 < set.r[i].lo);
        CHECK(imap_seqset_contains(&set, set.r[i].lo) && imap_seqset_contains(&set, set.r[i].hi));
    }
    for (int k = 0; k < 64 && imap_seqset_next(&set, &it, &v); k++) {
        CHECK(v > prev);
        prev = v;
    }
    imap_seqset_free(&set);
    if (imap_seqset_parse(a, s, len, 0, &set, err, sizeof(err)) == 0)
        imap_seqset_resolve(&set, 0);
}

static void check_dates(const char *s, size_t len)
{
    int32_t day, day2;
    int64_t t, t2;
    int tz, tz2;
    char buf[64];

    if (imap_date_parse(s, len, &day) == 0) {
        int n = imap_date_format(day, buf, sizeof(buf));
        CHECK(n > 0 && imap_date_parse(buf, (size_t)n, &day2) == 0 && day == day2);
    }
    if (imap_datetime_parse(s, len, &t, &tz) == 0) {
        int n = imap_datetime_format(t, tz, buf, sizeof(buf));
        /* second 60 normalizes to the next minute, so only the instant must agree */
        CHECK(n > 0 && imap_datetime_parse(buf, (size_t)n, &t2, &tz2) == 0 && t == t2 && tz == tz2);
    }
}

static void check_utf7(const char *s, size_t len)
{
    size_t cap = len * 5 + 16;
    char *a = malloc(cap), *b = malloc(cap);
    char err[128];
    int n, m;

    if (!a || !b)
        goto out;
    n = imap_utf7_to_utf8(s, len, a, cap, err, sizeof(err));
    if (n >= 0) {
        /* canonical: re-encoding gives back exactly the input */
        CHECK(imap_utf8_valid(a, (size_t)n));
        m = imap_utf8_to_utf7(a, (size_t)n, b, cap, err, sizeof(err));
        CHECK(m == (int)len && memcmp(b, s, len) == 0);
    } else {
        check_err(err);
    }
    if (imap_utf8_valid(s, len) && !memchr(s, 0, len)) {
        n = imap_utf8_to_utf7(s, len, a, cap, err, sizeof(err));
        CHECK(n >= 0);
        m = imap_utf7_to_utf8(a, (size_t)n, b, cap, err, sizeof(err));
        CHECK(m == (int)len && memcmp(b, s, len) == 0);
    }
out:
    free(a);
    free(b);
}

static void check_string_arg(struct imap_cmd *cmd, const struct imap_arg *arg)
{
    const char *s = imap_arg_string(cmd, arg);
    size_t total = 0;
    char small[16];

    if (!s)
        return;
    check_seqset(&cmd->arena, s, strlen(s));
    check_dates(s, strlen(s));
    check_utf7(s, strlen(s));
    imap_write_astring(arg->str, arg->len, (unsigned)arg->len & 1, sink, &total);
    CHECK(total >= arg->len);
    CHECK(imap_astring_to_buf(arg->str, arg->len, 0, small, sizeof(small)) >= arg->len);
}

static void check_args(struct imap_cmd *cmd, const struct imap_arg *args, size_t n, int depth)
{
    struct imap_flags fl;
    enum imap_store_op op;
    bool silent;
    char err[256];

    CHECK(depth <= IMAP_MAX_DEPTH);
    for (size_t i = 0; i < n; i++) {
        if (imap_flags_parse(&cmd->arena, &args[i], i & 1, &fl, err, sizeof(err)) < 0)
            check_err(err);
        imap_store_item_parse(&args[i], &op, &silent, err, sizeof(err));
        if (args[i].type == IMAP_ARG_LIST)
            check_args(cmd, args[i].list, args[i].count, depth + 1);
        else
            check_string_arg(cmd, &args[i]);
    }
}

static int key_depth(const struct imap_search_key *k)
{
    int max = 0;

    for (const struct imap_search_key *c = k->child; c; c = c->next) {
        int d = key_depth(c);
        max = d > max ? d : max;
    }
    return max + 1;
}

static void check_semantics(struct imap_cmd *cmd)
{
    struct imap_search s;
    struct imap_fetch f;
    char err[256], name[512];

    /* SEARCH keys: from the start (SEARCH/UID SEARCH) and after a first argument (SORT-ish) */
    for (size_t skip = 0; skip < 2 && skip < cmd->nargs; skip++) {
        if (imap_search_parse(&cmd->arena, cmd->args + skip, cmd->nargs - skip, IMAP_SEARCH_DOLLAR,
                              &s, err, sizeof(err)) == 0)
            CHECK(key_depth(s.root) <= IMAP_SEARCH_MAX_DEPTH + 3);
        else
            check_err(err);
    }
    if (cmd->nargs >= 1) {
        struct imap_sort keys[IMAP_SORT_MAX];
        size_t n;
        if (imap_sort_parse(&cmd->args[0], keys, &n, err, sizeof(err)) == 0)
            CHECK(n > 0 && n <= IMAP_SORT_MAX);
        else
            check_err(err);
    }
    if (cmd->nargs >= 2) {
        if (imap_fetch_parse(&cmd->arena, &cmd->args[1], cmd->nargs > 2 ? &cmd->args[2] : NULL,
                             cmd->uid, &f, err, sizeof(err)) == 0) {
            for (size_t i = 0; i < f.count; i++) {
                size_t n = imap_fetch_item_name(&f.items[i], name, sizeof(name));
                CHECK(n > 0);
            }
        } else {
            check_err(err);
        }
    }
    check_args(cmd, cmd->args, cmd->nargs, 0);
}

/* Splits the input into lines and literals like the engine; returns 1 when a complete
 * command was framed. */
static int frame(struct imap_cmdbuf *b, const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct imap_literal lit;
    size_t i = 0;
    char err[128];

    do {
        const char *nl = memchr(in + i, '\n', size - i);
        size_t n = nl ? (size_t)(nl - (in + i)) + 1 : size - i;
        int rc = imap_cmdbuf_add_line(b, in + i, n, &lit, err, sizeof(err));
        i += n;
        if (rc == IMAP_CMDBUF_DONE)
            return 1;
        if (rc != IMAP_CMDBUF_LITERAL) {
            check_err(err);
            return 0;
        }
        if (imap_literal_check(&lit, b->max - b->len, size & 2) != IMAP_LIT_ACCEPT ||
            lit.size > size - i)
            return 0;
        if (imap_cmdbuf_add_literal(b, in + i, (size_t)lit.size) < 0)
            return 0;
        i += (size_t)lit.size;
    } while (i < size || lit.size > 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_cmdbuf b;
    struct imap_cmd cmd;
    struct imap_literal lit;
    char err[256], tag[IMAP_TAG_MAX + 1], name[IMAP_NAME_MAX + 1];
    bool uid;

    imap_literal_spec((const char *)data, size, &lit);
    imap_peek_command((const char *)data, size, tag, sizeof(tag), name, sizeof(name), &uid);

    /* the raw bytes as a complete buffer */
    memset(&cmd, 0, sizeof(cmd));
    cmd.flags = size & 1 ? IMAP_PARSE_UTF8 : 0;
    if (imap_parse_command((const char *)data, size, &cmd, err, sizeof(err)) == 0)
        imap_cmd_free(&cmd);
    else
        check_err(err);

    /* through the framing, then every semantic parser */
    imap_cmdbuf_init(&b, 64 * 1024);
    if (frame(&b, data, size)) {
        memset(&cmd, 0, sizeof(cmd));
        cmd.flags = size & 1 ? IMAP_PARSE_UTF8 : 0;
        if (imap_parse_command(b.data, b.len, &cmd, err, sizeof(err)) == 0) {
            check_semantics(&cmd);
            imap_cmd_free(&cmd);
        } else {
            check_err(err);
        }
    }
    imap_cmdbuf_free(&b);
    return 0;
}
