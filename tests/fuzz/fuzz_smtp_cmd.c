/*
 * fuzz_smtp_cmd.c — libFuzzer target for the SMTP command side of mail/smtp_parse.c.
 *
 * The input is taken as what a client sent: split into lines the way the session reads
 * them, each line parsed as a command, its arguments pushed through the parser its verb
 * uses (MAIL, RCPT with and without SMTPUTF8, BDAT, EHLO/HELO); the whole input is also fed
 * to the content decoder as DATA (in small pieces) and as a BDAT chunk. Besides crashes and
 * sanitizer reports it checks invariants: error texts are single lines, canonical
 * addresses fit their limits, decoded content has only CRLF line ends and respects SIZE,
 * and DATA stops exactly after a <CRLF>.<CRLF>.
 *
 *   see tests/fuzz/meson.build (-Dfuzz=true, CC=clang); run with
 *   fuzz_smtp_cmd -max_len=4096 tests/fuzz/corpus/smtp_cmd
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtp_parse.h"

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

static void check_addr(const struct smtp_addr *a)
{
    CHECK(strlen(a->addr) <= SMTP_PATH_MAX - 2);
    CHECK(!a->null || a->addr[0] == '\0');
    CHECK(!strpbrk(a->addr, "\r\n<>") || a->addr[0] == '"');
}

static void args_mail_rcpt(const char *args)
{
    struct smtp_mail m;
    struct smtp_rcpt r;
    char err[128];

    err[0] = '\0';
    if (smtp_parse_mail(args, &m, err, sizeof(err)) == SMTP_OK) {
        check_addr(&m.from);
        CHECK(!m.from.utf8 || m.smtputf8);
        CHECK(strlen(m.envid) <= SMTP_ENVID_MAX);
        for (const char *c = m.envid; *c; c++)
            CHECK(*c >= 32 && *c < 127);
    }
    check_err(err);
    for (int utf8 = 0; utf8 <= 1; utf8++) {
        err[0] = '\0';
        if (smtp_parse_rcpt(args, utf8, &r, err, sizeof(err)) == SMTP_OK) {
            check_addr(&r.to);
            CHECK(!r.to.null);
            CHECK(utf8 || !r.to.utf8);
            CHECK(!(r.notify & SMTP_NOTIFY_NEVER) || r.notify == SMTP_NOTIFY_NEVER);
        }
        check_err(err);
    }
}

static void one_line(const char *p, size_t n)
{
    char *line = malloc(n + 1);
    struct smtp_cmd cmd;
    uint64_t size;
    int last;

    if (!line)
        return;
    memcpy(line, p, n);
    line[n] = '\0';
    if (smtp_parse_command(line, n, &cmd) == SMTP_OK) {
        CHECK(cmd.args >= line && cmd.args <= line + n);
        CHECK(!strchr(cmd.args, '\r') && !strchr(cmd.args, '\n'));
        switch (cmd.verb) {
        case SMTP_V_BDAT:
            (void)smtp_parse_bdat(cmd.args, &size, &last);
            break;
        case SMTP_V_EHLO:
        case SMTP_V_HELO:
            (void)smtp_valid_helo(cmd.args, strlen(cmd.args));
            break;
        default: /* every line through the envelope parsers: they see the most */
            args_mail_rcpt(cmd.args);
            break;
        }
    }
    free(line);
}

static void check_crlf_only(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r')
            CHECK(i + 1 < n && p[i + 1] == '\n');
        if (p[i] == '\n')
            CHECK(i > 0 && p[i - 1] == '\r');
    }
}

static void content(const uint8_t *data, size_t size, int raw)
{
    struct smtp_data d;
    struct smtp_buf b = {.reserve = 8};
    size_t used = 0, max = 2048;

    smtp_data_init(&d, raw, max, 200, 1000);
    while (used < size && !d.done) {
        size_t step = 1 + (size_t)(data[used] % 13); /* pieces of varying sizes */
        if (step > size - used)
            step = size - used;
        size_t took = smtp_data_feed(&d, &b, (const char *)data + used, step);
        CHECK(took <= step);
        used += took;
        if (took < step)
            CHECK(d.done);
    }
    if (raw) {
        CHECK(!d.done && used == size);
        smtp_data_finish(&d, &b);
    }
    if (d.done) { /* it ends exactly after <CRLF>.<CRLF> (or a first line of ".") */
        CHECK(used >= 3 && memcmp(data + used - 3, ".\r\n", 3) == 0);
        CHECK(used == 3 || (used >= 5 && data[used - 5] == '\r' && data[used - 4] == '\n'));
    }
    CHECK(b.len <= max);
    CHECK(d.over_size || b.len == d.total || smtp_data_failed(&d));
    if (!smtp_data_failed(&d))
        check_crlf_only(b.p ? b.p + b.reserve : "", b.len);
    smtp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i = 0;

    while (i < size) {
        const uint8_t *lf = memchr(data + i, '\n', size - i);
        size_t n = lf ? (size_t)(lf - (data + i)) + 1 : size - i;
        one_line((const char *)data + i, n);
        i += n;
    }
    content(data, size, 0);
    content(data, size, 1);
    return 0;
}
