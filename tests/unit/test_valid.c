/*
 * test_valid.c — the input rules of store_valid.c: usernames, domains, passwords, quotas,
 * the virtual-host label mapping, size parsing and password hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"

static void expect_fail(int (*fn)(const char *, struct store_err *), const char *v,
                        const char *rule)
{
    struct store_err e = {0};
    int rc = fn(v, &e);
    if (rc != STORE_EINVAL || !strstr(e.msg, rule))
        fail_msg("'%s': expected rule '%s', got rc %d msg '%s'", v, rule, rc, e.msg);
}

static void expect_ok(int (*fn)(const char *, struct store_err *), const char *v)
{
    struct store_err e = {0};
    if (fn(v, &e) != STORE_OK)
        fail_msg("'%s' refused: %s", v, e.msg);
}

static void test_localpart(void **state)
{
    static const char *good[] = {"alice", "a", "john.smith", "j_doe-2", "Alice", "a1.b2_c3-d4"};
    char long65[66];

    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        expect_ok(store_valid_localpart, good[i]);
    expect_fail(store_valid_localpart, "", "empty");
    expect_fail(store_valid_localpart, "1alice", "start with a letter");
    expect_fail(store_valid_localpart, ".alice", "start with a letter");
    expect_fail(store_valid_localpart, "_alice", "start with a letter");
    expect_fail(store_valid_localpart, "al..ice", "'..'");
    expect_fail(store_valid_localpart, "alice.", "end with '.'");
    expect_fail(store_valid_localpart, "al ice", "only letters, digits");
    expect_fail(store_valid_localpart, "al+ice", "only letters, digits");
    expect_fail(store_valid_localpart, "al/ice", "only letters, digits");
    expect_fail(store_valid_localpart, "al\xc3\xa9", "only letters, digits");
    memset(long65, 'a', 65);
    long65[65] = 0;
    expect_fail(store_valid_localpart, long65, "longer than 64");
    long65[64] = 0;
    expect_ok(store_valid_localpart, long65);
}

static void test_domain(void **state)
{
    static const char *good[] = {"example.com",           "my-company.com", "a.b.c.example.co.uk",
                                 "xn--bcher-kva.example", "xn--a.com",      "EXAMPLE.COM",
                                 "123.example.com"};
    char big[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        expect_ok(store_valid_domain, good[i]);
    expect_fail(store_valid_domain, "", "empty");
    expect_fail(store_valid_domain, "localhost", "two labels");
    expect_fail(store_valid_domain, "example..com", "empty label");
    expect_fail(store_valid_domain, ".example.com", "empty label");
    expect_fail(store_valid_domain, "example.com.", "empty label");
    expect_fail(store_valid_domain, "-bad.com", "start or end with '-'");
    expect_fail(store_valid_domain, "bad-.com", "start or end with '-'");
    expect_fail(store_valid_domain, "under_score.com", "only letters");
    expect_fail(store_valid_domain,
                "b\xc3\xbc"
                "cher.de",
                "punycode");
    expect_fail(store_valid_domain, "1.2.3.4", "all digits");
    memset(big, 'a', sizeof(big));
    big[70] = 0;
    strcat(big, ".com");
    expect_fail(store_valid_domain, big, "longer than 63");
    for (int i = 0; i < 290; i += 2)
        big[i] = 'a', big[i + 1] = '.';
    big[290] = 'a';
    big[291] = 0;
    expect_fail(store_valid_domain, big, "longer than 253");
}

static void test_address(void **state)
{
    expect_ok(store_valid_address, "alice@example.com");
    expect_fail(store_valid_address, "alice", "user@domain");
    expect_fail(store_valid_address, "1alice@example.com", "start with a letter");
    expect_fail(store_valid_address, "alice@localhost", "two labels");
    expect_fail(store_valid_address, "@example.com", "empty");
}

static void test_password(void **state)
{
    expect_ok(store_valid_password, "Secret-Pass1!");
    expect_ok(store_valid_password, "Aa1!aaaa");
    expect_ok(store_valid_password, "Pass word 1"); /* a space counts as a symbol */
    expect_fail(store_valid_password, "", "at least 8");
    expect_fail(store_valid_password, "Aa1!aaa", "at least 8");
    expect_fail(store_valid_password, "aa1!aaaa", "upper-case");
    expect_fail(store_valid_password, "AA1!AAAA", "lower-case");
    expect_fail(store_valid_password, "Aab!aaaa", "digit");
    expect_fail(store_valid_password, "Aab1aaaa", "symbol");
    expect_fail(store_valid_password, "Aab1!aa\x01", "control");
}

static void test_quota(void **state)
{
    struct store_err e = {0};

    assert_int_equal(store_valid_quota(STORE_BASIC, STORE_QUOTA_MIN, &e), STORE_OK);
    assert_int_equal(store_valid_quota(STORE_BASIC, 50000000000LL, &e), STORE_OK);
    assert_int_equal(store_valid_quota(STORE_BASIC, 50000000001LL, &e), STORE_EINVAL);
    assert_non_null(strstr(e.msg, "between 0.1 GB and 50 GB"));
    assert_int_equal(store_valid_quota(STORE_ENHANCED, 200000000000LL, &e), STORE_OK);
    assert_int_equal(store_valid_quota(STORE_ENHANCED, 200000000001LL, &e), STORE_EINVAL);
    assert_non_null(strstr(e.msg, "200 GB"));
    assert_int_equal(store_valid_quota(STORE_ENHANCED, 99999999, &e), STORE_EINVAL);
    assert_int_equal(store_valid_quota((enum store_acct_type)7, STORE_QUOTA_MIN, &e), STORE_EINVAL);
}

static void test_parse_size(void **state)
{
    assert_int_equal(store_parse_size("1G"), 1000000000LL);
    assert_int_equal(store_parse_size("0.1G"), 100000000LL);
    assert_int_equal(store_parse_size("0.1gb"), 100000000LL);
    assert_int_equal(store_parse_size("500M"), 500000000LL);
    assert_int_equal(store_parse_size("2048K"), 2048000LL);
    assert_int_equal(store_parse_size("64MiB"), 67108864LL);
    assert_int_equal(store_parse_size("12345"), 12345LL);
    assert_int_equal(store_parse_size("200G"), 200000000000LL);
    assert_int_equal(store_parse_size(""), -1);
    assert_int_equal(store_parse_size("G"), -1);
    assert_int_equal(store_parse_size("-1G"), -1);
    assert_int_equal(store_parse_size("1X"), -1);
    assert_int_equal(store_parse_size("nan"), -1);
    assert_int_equal(store_parse_size("inf"), -1);
    assert_int_equal(store_parse_size("1e30"), -1);
    assert_int_equal(store_parse_size(" 1G"), -1);
}

static void test_label(void **state)
{
    char out[254];

    assert_int_equal(store_domain_label("my-company.com", out, sizeof(out)), 0);
    assert_string_equal(out, "my-company--com");
    assert_int_equal(store_domain_label("Example.CO.uk", out, sizeof(out)), 0);
    assert_string_equal(out, "example--co--uk");
    /* The collision the design warns about: both map to the same label. */
    char a[64], b[64];
    store_domain_label("xn--a.com", a, sizeof(a));
    store_domain_label("xn.a.com", b, sizeof(b));
    assert_string_equal(a, b);
    assert_int_equal(store_domain_label("a.b", out, 4), STORE_EINVAL);
    assert_int_equal(store_domain_label("a.b", out, 5), 0);
}

static void test_password_hash(void **state)
{
    char h1[160], h2[160];
    struct store_err e = {0};

    assert_int_equal(store_password_hash("Secret-Pass1!", h1, sizeof(h1), &e), STORE_OK);
    assert_int_equal(strncmp(h1, "$y$", 3), 0); /* yescrypt */
    assert_int_equal(store_password_hash("Secret-Pass1!", h2, sizeof(h2), &e), STORE_OK);
    assert_string_not_equal(h1, h2); /* salted */
    assert_true(store_password_check("Secret-Pass1!", h1));
    assert_false(store_password_check("Secret-Pass1", h1));
    assert_false(store_password_check("", h1));
    assert_false(store_password_check("Secret-Pass1!", ""));
    assert_false(store_password_check("Secret-Pass1!", "!locked"));
    /* A SHA-512 crypt hash, as Dovecot or /etc/shadow would hold, still verifies. */
    assert_true(store_password_check(
        "password", "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwn"
                    "Sq.qc.eoxqOmSuNp2xS0ktL3nh/"));
    assert_int_equal(store_password_hash("x", h1, 10, &e), STORE_EIO);
}

static void test_names(void **state)
{
    enum store_acct_type t;

    assert_int_equal(store_acct_type_parse("Enhanced", &t), 0);
    assert_int_equal(t, STORE_ENHANCED);
    assert_int_equal(store_acct_type_parse("basic", &t), 0);
    assert_int_equal(t, STORE_BASIC);
    assert_int_equal(store_acct_type_parse("oex", &t), STORE_EINVAL);
    assert_string_equal(store_acct_type_name(STORE_BASIC), "basic");
    assert_string_equal(store_role_name(STORE_ROLE_JUNK), "junk");
    assert_string_equal(store_role_name((enum store_role)99), "");
    assert_string_equal(store_class_name(STORE_CLASS_CONTACTS), "contacts");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_localpart), cmocka_unit_test(test_domain),
        cmocka_unit_test(test_address),   cmocka_unit_test(test_password),
        cmocka_unit_test(test_quota),     cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_label),     cmocka_unit_test(test_password_hash),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
