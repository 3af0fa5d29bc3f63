/*
 * fuzz_smtp_addr.c — libFuzzer target for smtp_parse_address and smtp_parse_path
 * (mail/smtp_parse.c), the address parser other modules may reuse.
 *
 * The input is parsed as a bare mailbox with and without SMTPUTF8 and as "<input>" path.
 * Invariants: a success fits the RFC 5321 limits, an ASCII-only parse never reports UTF-8,
 * anything accepted without SMTPUTF8 is accepted with it, the canonical form parses again
 * to itself (canonicalisation is idempotent), and errors leave the result cleared.
 *
 *   fuzz_smtp_addr -max_len=600 tests/fuzz/corpus/smtp_addr
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

static void check_ok(const struct smtp_addr *a, int utf8)
{
    struct smtp_addr again;
    const char *at = strrchr(a->addr, '@');

    CHECK(at != NULL);
    CHECK(strlen(a->addr) <= SMTP_PATH_MAX - 2);
    CHECK(strlen(a->domain) <= SMTP_DOMAIN_MAX);
    CHECK(strcmp(at + 1, a->domain) == 0);
    CHECK(utf8 || !a->utf8);
    CHECK(!strpbrk(a->addr, "\r\n"));
    /* The canonical form is a valid address whose canonical form is itself. */
    CHECK(smtp_parse_address(a->addr, strlen(a->addr), utf8, &again) == SMTP_OK);
    CHECK(strcmp(again.addr, a->addr) == 0);
    CHECK(strcmp(again.local, a->local) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_addr a, b;
    size_t used = 0;
    char *path;
    int r0, r1;

    r0 = smtp_parse_address((const char *)data, size, 0, &a);
    if (r0 == SMTP_OK)
        check_ok(&a, 0);
    else
        CHECK(a.addr[0] == '\0');
    r1 = smtp_parse_address((const char *)data, size, 1, &b);
    if (r1 == SMTP_OK)
        check_ok(&b, 1);
    if (r0 == SMTP_OK) /* SMTPUTF8 only widens what is accepted */
        CHECK(r1 == SMTP_OK && strcmp(a.addr, b.addr) == 0);

    if (!(path = malloc(size + 2)))
        return 0;
    path[0] = '<';
    memcpy(path + 1, data, size);
    path[size + 1] = '>';
    if (smtp_parse_path(path, size + 2, 1, 1, 1, &a, &used) == SMTP_OK) {
        CHECK(used >= 2 && used <= size + 2 && used <= SMTP_PATH_MAX);
        CHECK(path[used - 1] == '>');
        if (!a.null && !a.postmaster)
            check_ok(&a, 1);
    }
    free(path);
    return 0;
}
