/*
 * test_b64.c — base64 in both modes (strict for credentials, lenient for MIME) and the
 * SASL PLAIN splitter built on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mail/mail.h"
#include "server/server.h"

static ssize_t dec(const char *in, unsigned flags, char *out, size_t max)
{
    ssize_t n = b64_decode(in, strlen(in), (unsigned char *)out, max, flags);
    if (n >= 0)
        out[n] = '\0';
    return n;
}

static void test_strict(void **state)
{
    char out[64];

    assert_int_equal(dec("", 0, out, 63), 0);
    assert_int_equal(dec("Zg==", 0, out, 63), 1);
    assert_string_equal(out, "f");
    assert_int_equal(dec("Zm8=", 0, out, 63), 2);
    assert_string_equal(out, "fo");
    assert_int_equal(dec("Zm9v", 0, out, 63), 3);
    assert_int_equal(dec("Zm9vYmFy", 0, out, 63), 6);
    assert_string_equal(out, "foobar");
    /* refused: no padding, padding inside, bad characters, whitespace, too much padding */
    assert_int_equal(dec("Zg", 0, out, 63), -1);
    assert_int_equal(dec("Zg=a", 0, out, 63), -1);
    assert_int_equal(dec("Z===", 0, out, 63), -1);
    assert_int_equal(dec("Zm9v\r\n", 0, out, 63), -1);
    assert_int_equal(dec("Zm 9v", 0, out, 63), -1);
    assert_int_equal(dec("Zm9v!!!!", 0, out, 63), -1);
    assert_int_equal(dec("Zm9vYmFy", 0, out, 5), -1); /* does not fit */
}

static void test_lenient(void **state)
{
    char out[64];
    const unsigned mime = B64_SKIP_JUNK;

    assert_int_equal(dec("Zm9v\r\nYmFy", mime, out, 63), 6);
    assert_string_equal(out, "foobar");
    assert_int_equal(dec("Zm9vYg", mime, out, 63), 4); /* missing padding */
    assert_string_equal(out, "foob");
    assert_int_equal(dec(" Zm9v YmFy \n", mime, out, 63), 6);
    assert_int_equal(dec("Zg==Zg==", mime, out, 63), 1); /* padding ends the data */
    assert_string_equal(out, "f");
    assert_int_equal(dec("Zm9v!YmFy", mime, out, 63), 6); /* junk skipped */
    /* encoded words: padding optional, but nothing outside the alphabet */
    assert_int_equal(dec("Zm9vYg", B64_PAD_OPTIONAL, out, 63), 4);
    assert_int_equal(dec("Zm9vYg==", B64_PAD_OPTIONAL, out, 63), 4);
    assert_int_equal(dec("Zm9v Yg", B64_PAD_OPTIONAL, out, 63), -1);
    assert_int_equal(dec("Zm9vY", B64_PAD_OPTIONAL, out, 63), -1); /* a lone sextet */
}

static void test_encode(void **state)
{
    char out[16];
    static const struct {
        const char *in, *want;
    } cases[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n =
            b64_encode((const unsigned char *)cases[i].in, strlen(cases[i].in), out, sizeof(out));
        assert_int_equal(n, strlen(cases[i].want));
        assert_string_equal(out, cases[i].want);
    }
    assert_int_equal(b64_encode((const unsigned char *)"foob", 4, out, 8), 0);
}

static void test_sasl_plain(void **state)
{
    char user[64], pass[64];

    assert_int_equal(mail_sasl_plain((const unsigned char *)"\0alice\0pw", 9, user, 64, pass, 64),
                     0);
    assert_string_equal(user, "alice");
    assert_string_equal(pass, "pw");
    assert_int_equal(
        mail_sasl_plain((const unsigned char *)"Alice\0alice\0pw", 14, user, 64, pass, 64), 0);
    assert_int_equal(
        mail_sasl_plain((const unsigned char *)"bob\0alice\0pw", 12, user, 64, pass, 64), -1);
    assert_int_equal(mail_sasl_plain((const unsigned char *)"alice\0pw", 8, user, 64, pass, 64),
                     -1);
    assert_int_equal(mail_sasl_plain((const unsigned char *)"\0\0pw", 4, user, 64, pass, 64), -1);
    assert_int_equal(mail_sasl_plain((const unsigned char *)"\0alice\0", 7, user, 64, pass, 64),
                     -1);
    assert_int_equal(mail_sasl_plain((const unsigned char *)"\0alice\0pw", 9, user, 5, pass, 64),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_lenient),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_sasl_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
