/*
 * test_dkim.c — DKIM (RFC 6376): the relaxed canonicalization examples of §3.4.5, and
 * signatures made by dkim.c checked by its verifier with the published public key,
 * including the changes relaxed canonicalization must survive and those it must not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mail/dkim.h"
#include "mail/mail.h"
#include "server/server.h"

static void canon_h(const char *in, const char *want)
{
    size_t n;
    char *out = dkim_canon_header(in, strlen(in), &n);

    assert_non_null(out);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    free(out);
}

static void canon_b(const char *in, const char *want)
{
    size_t n;
    char *out = dkim_canon_body(in, strlen(in), &n);

    assert_non_null(out);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    free(out);
}

/* RFC 6376 §3.4.5: the example's header fields and body, relaxed. */
static void test_rfc_example(void **state)
{
    canon_h("A: X\r\n", "a:X\r\n");
    canon_h("B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n");
    canon_b(" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
}

static void test_canon_edges(void **state)
{
    canon_h("Subject:  \t hello   world \t", "subject:hello world\r\n");
    canon_h("X-Empty:", "x-empty:\r\n");
    canon_b("", "");
    canon_b("\r\n\r\n", "");                         /* only empty lines: the empty body */
    canon_b("abc", "abc\r\n");                       /* a missing final CRLF is added */
    canon_b("a  \r\n\r\nb\t\r\n", "a\r\n\r\nb\r\n"); /* inner empty lines stay */
    canon_b("  lead\r\n", " lead\r\n");
}

static char *make_key(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *pem;
    long n;

    assert_non_null(k);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)n);
    BIO_free(bio);
    EVP_PKEY_free(k);
    return pem;
}

static const char MSG[] = "From: Alice <alice@example.com>\r\n"
                          "To: bob@example.net\r\n"
                          "Subject: Lunch\r\n"
                          " tomorrow?\r\n"
                          "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                          "Message-ID: <1@example.com>\r\n"
                          "X-Unsigned: whatever\r\n"
                          "\r\n"
                          "Hi Bob,\r\n"
                          "\r\n"
                          "noon at the usual place?\r\n"
                          "\r\n";

/* Signs MSG (optionally transformed) and returns signature + message, malloc'd. */
static char *signed_msg(const char *pem, const char *msg, size_t *len)
{
    char *sig = NULL, err[256], *out;

    assert_int_equal(
        dkim_sign(pem, "example.com", "sel1", msg, strlen(msg), 1700000000, &sig, err, sizeof(err)),
        0);
    assert_non_null(strstr(sig, "h=from:from:to:subject:date:message-id;"));
    assert_non_null(strstr(sig, "c=relaxed/relaxed"));
    *len = strlen(sig) + strlen(msg);
    out = malloc(*len + 1);
    strcpy(out, sig);
    strcat(out, msg);
    free(sig);
    return out;
}

static int verify(const char *m, const char *pub)
{
    char err[256];
    return dkim_verify(m, strlen(m), pub, err, sizeof(err));
}

/* Replaces the first occurrence of a with b (same message otherwise). */
static char *edit(const char *m, const char *a, const char *b)
{
    const char *p = strstr(m, a);
    char *out;

    assert_non_null(p);
    out = malloc(strlen(m) - strlen(a) + strlen(b) + 1);
    sprintf(out, "%.*s%s%s", (int)(p - m), m, b, p + strlen(a));
    return out;
}

static void test_sign_verify(void **state)
{
    char *pem = make_key(), pub[1024], *m, *t;
    size_t len;

    assert_int_equal(dkim_pubkey_b64(pem, pub, sizeof(pub)), 0);
    m = signed_msg(pem, MSG, &len);
    assert_int_equal(verify(m, pub), 0);

    /* What relaxed canonicalization forgives: refolding, case of names, WSP, trailing
     * empty lines, unsigned fields. */
    t = edit(m, "Subject: Lunch\r\n tomorrow?", "subject:   Lunch tomorrow?");
    assert_int_equal(verify(t, pub), 0);
    free(t);
    t = edit(m, "noon at the", "noon  at\tthe");
    assert_int_equal(verify(t, pub), 0);
    free(t);
    t = edit(m, "place?\r\n\r\n", "place?  \r\n\r\n\r\n\r\n");
    assert_int_equal(verify(t, pub), 0);
    free(t);
    t = edit(m, "X-Unsigned: whatever", "X-Unsigned: changed");
    assert_int_equal(verify(t, pub), 0);
    free(t);

    /* What it must not: the body, a signed field, a From added on top (over-signed). */
    t = edit(m, "noon", "one");
    assert_int_equal(verify(t, pub), -1);
    free(t);
    t = edit(m, "Subject: Lunch", "Subject: Dinner");
    assert_int_equal(verify(t, pub), -1);
    free(t);
    t = edit(m, "From: Alice", "From: Mallory <m@evil.test>\r\nFrom: Alice");
    assert_int_equal(verify(t, pub), -1);
    free(t);

    /* Another key does not verify it. */
    char *pem2 = make_key(), pub2[1024];
    assert_int_equal(dkim_pubkey_b64(pem2, pub2, sizeof(pub2)), 0);
    assert_int_equal(verify(m, pub2), -1);
    free(pem2);
    free(m);
    free(pem);
}

/* A message without a body and one with fields present twice still verify. */
static void test_sign_edges(void **state)
{
    char *pem = make_key(), pub[1024], *sig = NULL, err[256], buf[4096];
    const char *msg = "From: a@example.com\r\nTo: x@example.net\r\nTo: y@example.net\r\n\r\n";

    assert_int_equal(dkim_pubkey_b64(pem, pub, sizeof(pub)), 0);
    assert_int_equal(
        dkim_sign(pem, "example.com", "s", msg, strlen(msg), 1, &sig, err, sizeof(err)), 0);
    assert_non_null(strstr(sig, "h=from:from:to:to;"));
    snprintf(buf, sizeof(buf), "%s%s", sig, msg);
    assert_int_equal(verify(buf, pub), 0);
    free(sig);
    free(pem);
}

/* The key kept in the directory: enable, record, sign, rotate, disable. */
static void test_domain_keys(void **state)
{
    char dir[] = "/tmp/polaris-dkim-XXXXXX", name[128], value[1024], value2[1024], err[256];
    struct store *s = NULL;
    struct store_err e = {0};
    struct store_config sc = {0};
    char *sig = NULL;

    assert_non_null(mkdtemp(dir));
    sc.data_dir = dir;
    assert_int_equal(store_open(&s, &sc, &e), STORE_OK);
    assert_int_equal(store_domain_add(s, "example.com", NULL, &e), STORE_OK);
    assert_int_equal(dkim_domain_record(s, "example.com", name, sizeof(name), value, sizeof(value)),
                     STORE_ENOTFOUND);
    assert_int_equal(dkim_domain_sign(s, "example.com", MSG, strlen(MSG), &sig, err, sizeof(err)),
                     1);
    assert_int_equal(dkim_domain_enable(s, "nothere.test", "sel", &e), STORE_ENOTFOUND);
    assert_int_equal(dkim_domain_enable(s, "example.com", "bad selector", &e), STORE_EINVAL);
    assert_int_equal(dkim_domain_enable(s, "example.com", "sel1", &e), STORE_OK);
    assert_int_equal(dkim_domain_record(s, "example.com", name, sizeof(name), value, sizeof(value)),
                     STORE_OK);
    assert_string_equal(name, "sel1._domainkey");
    assert_memory_equal(value, "v=DKIM1; k=rsa; p=", 18);

    assert_int_equal(dkim_domain_sign(s, "example.com", MSG, strlen(MSG), &sig, err, sizeof(err)),
                     0);
    assert_non_null(strstr(sig, "s=sel1;"));
    char *m = malloc(strlen(sig) + sizeof(MSG));
    sprintf(m, "%s%s", sig, MSG);
    assert_int_equal(verify(m, value + 18), 0);
    free(m);
    free(sig);

    /* Same selector: same key. New selector: new key. */
    assert_int_equal(dkim_domain_enable(s, "example.com", "sel1", &e), STORE_OK);
    dkim_domain_record(s, "example.com", name, sizeof(name), value2, sizeof(value2));
    assert_string_equal(value, value2);
    assert_int_equal(dkim_domain_enable(s, "example.com", "sel2", &e), STORE_OK);
    dkim_domain_record(s, "example.com", name, sizeof(name), value2, sizeof(value2));
    assert_string_equal(name, "sel2._domainkey");
    assert_string_not_equal(value, value2);

    assert_int_equal(dkim_domain_disable(s, "example.com", &e), STORE_OK);
    assert_int_equal(dkim_domain_record(s, "example.com", name, sizeof(name), value, sizeof(value)),
                     STORE_ENOTFOUND);
    store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example), cmocka_unit_test(test_canon_edges),
        cmocka_unit_test(test_sign_verify), cmocka_unit_test(test_sign_edges),
        cmocka_unit_test(test_domain_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
