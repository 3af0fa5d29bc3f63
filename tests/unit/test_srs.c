/*
 * test_srs.c — the SRS codec (mail/srs.c): the SRS0 shape and a round trip, hashes checked
 * case-insensitively and with every known secret (rotation), the 21-day limit, SRS1 for
 * re-forwarded SRS0 and SRS1 addresses, refusal of tampered or malformed addresses, and the
 * secret file (created once, 0600, shared by whoever loads it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mail/srs.h"

#define DAY   86400
#define NOW   ((int64_t)1700000000)
#define ORIG  "Carol.Smith@sender.test"
#define FWDOM "example.com"

static struct srs_keys keys(const char *a, const char *b)
{
    struct srs_keys k = {0};

    snprintf(k.key[k.n++], sizeof(k.key[0]), "%s", a);
    if (b)
        snprintf(k.key[k.n++], sizeof(k.key[0]), "%s", b);
    return k;
}

static void test_srs0_round_trip(void **state)
{
    struct srs_keys k = keys("secret-one", NULL);
    char out[320], back[320], tt[3];
    unsigned days = (unsigned)((NOW / DAY) % 1024);
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    (void)state;
    assert_int_equal(srs_forward(&k, ORIG, FWDOM, NOW, out, sizeof(out)), 0);
    /* SRS0=HHHH=TT=sender.test=Carol.Smith@example.com */
    tt[0] = b32[days >> 5];
    tt[1] = b32[days & 31];
    tt[2] = '\0';
    assert_memory_equal(out, "SRS0=", 5);
    assert_int_equal(out[9], '=');
    assert_memory_equal(out + 10, tt, 2);
    assert_string_equal(out + 12, "=sender.test=Carol.Smith@example.com");
    assert_int_equal(srs_is_srs(out, strlen(out)), 1);
    assert_int_equal(srs_is_srs("SRS2=x", 6), 0);
    assert_int_equal(srs_reverse(&k, out, NOW, back, sizeof(back)), 0);
    assert_string_equal(back, ORIG);
    /* the same input the same day gives the same address */
    assert_int_equal(srs_forward(&k, ORIG, FWDOM, NOW + 60, back, sizeof(back)), 0);
    assert_string_equal(back, out);
}

static void test_srs0_case_and_age(void **state)
{
    struct srs_keys k = keys("secret-one", NULL);
    char out[320], back[320], low[320];

    (void)state;
    assert_int_equal(srs_forward(&k, ORIG, FWDOM, NOW, out, sizeof(out)), 0);
    /* an MTA on the way folded the whole address to lower case */
    for (size_t i = 0; i <= strlen(out); i++)
        low[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] + 32 : out[i]);
    assert_int_equal(srs_reverse(&k, low, NOW, back, sizeof(back)), 0);
    assert_string_equal(back, "carol.smith@sender.test");
    /* 21 days is still fine, 22 is not; a date from the future is not either */
    assert_int_equal(srs_reverse(&k, out, NOW + 21 * DAY, back, sizeof(back)), 0);
    assert_int_equal(srs_reverse(&k, out, NOW + 22 * DAY, back, sizeof(back)), -1);
    assert_int_equal(srs_reverse(&k, out, NOW - 2 * DAY, back, sizeof(back)), -1);
}

static void test_srs0_refused(void **state)
{
    struct srs_keys k = keys("secret-one", NULL), other = keys("secret-two", NULL);
    char out[320], back[320], bad[320];

    (void)state;
    assert_int_equal(srs_forward(&k, ORIG, FWDOM, NOW, out, sizeof(out)), 0);
    /* another secret */
    assert_int_equal(srs_reverse(&other, out, NOW, back, sizeof(back)), -1);
    /* a changed original address keeps the hash but not its validity */
    snprintf(bad, sizeof(bad), "%s", out);
    *strstr(bad, "Carol") = 'K';
    assert_int_equal(srs_reverse(&k, bad, NOW, back, sizeof(back)), -1);
    snprintf(bad, sizeof(bad), "%s", out);
    *strstr(bad, "sender") = 'S' + 1;
    assert_int_equal(srs_reverse(&k, bad, NOW, back, sizeof(back)), -1);
    /* malformed ones */
    static const char *const junk[] = {
        "SRS0=@example.com",       "SRS0=abcd@example.com",          "SRS0=abcd=AB@example.com",
        "SRS0=abcd=AB=dom@x.test", "SRS0==AB=dom=loc@example.com",   "SRS0=abcd=A=dom=l@x.test",
        "SRS1=abcd@example.com",   "SRS1=abcd=dom.test@example.com", "SRS0=abcd=AB==l@x.test",
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        assert_int_equal(srs_reverse(&k, junk[i], NOW, back, sizeof(back)), -1);
    /* not SRS at all */
    assert_int_equal(srs_reverse(&k, "carol@example.com", NOW, back, sizeof(back)), 1);
    assert_int_equal(srs_reverse(&k, "srs2=x=y@example.com", NOW, back, sizeof(back)), 1);
    assert_int_equal(srs_reverse(&k, "no-at-sign", NOW, back, sizeof(back)), 1);
    /* not an address to rewrite */
    assert_int_equal(srs_forward(&k, "no-at-sign", FWDOM, NOW, out, sizeof(out)), -1);
    assert_int_equal(srs_forward(&k, "@sender.test", FWDOM, NOW, out, sizeof(out)), -1);
}

static void test_srs_rotation(void **state)
{
    struct srs_keys old = keys("secret-old", NULL), both = keys("secret-new", "secret-old");
    char out[320], back[320], fresh[320];

    (void)state;
    assert_int_equal(srs_forward(&old, ORIG, FWDOM, NOW, out, sizeof(out)), 0);
    /* after rotation the old address still comes back; new ones use the new secret */
    assert_int_equal(srs_reverse(&both, out, NOW, back, sizeof(back)), 0);
    assert_string_equal(back, ORIG);
    assert_int_equal(srs_forward(&both, ORIG, FWDOM, NOW, fresh, sizeof(fresh)), 0);
    assert_string_not_equal(fresh, out);
    assert_int_equal(srs_reverse(&old, fresh, NOW, back, sizeof(back)), -1);
}

static void test_srs1(void **state)
{
    struct srs_keys a = keys("first-forwarder", NULL), b = keys("second-forwarder", NULL);
    struct srs_keys c = keys("third-forwarder", NULL);
    char s0[320], s1[320], s1b[320], back[320], orig[320];

    (void)state;
    /* a.test forwards to b.test, which forwards on: SRS1 pointing at a.test */
    assert_int_equal(srs_forward(&a, ORIG, "a.test", NOW, s0, sizeof(s0)), 0);
    assert_int_equal(srs_forward(&b, s0, "b.test", NOW, s1, sizeof(s1)), 0);
    assert_memory_equal(s1, "SRS1=", 5);
    const char *rest = strchr(s0, '=');
    char want[320];
    snprintf(want, sizeof(want), "=a.test=%.*s@b.test", (int)(strchr(rest, '@') - rest), rest);
    assert_string_equal(strchr(s1 + 5, '='), want);
    /* a bounce to b.test goes back to a.test's SRS0 address, which a.test reverses */
    assert_int_equal(srs_reverse(&b, s1, NOW, back, sizeof(back)), 0);
    assert_string_equal(back, s0);
    assert_int_equal(srs_reverse(&a, back, NOW, orig, sizeof(orig)), 0);
    assert_string_equal(orig, ORIG);
    assert_int_equal(srs_reverse(&a, s1, NOW, back, sizeof(back)), -1); /* not a's hash */
    /* c.test forwards the SRS1 address again: still pointing at a.test, signed by c */
    assert_int_equal(srs_forward(&c, s1, "c.test", NOW, s1b, sizeof(s1b)), 0);
    assert_memory_equal(s1b, "SRS1=", 5);
    assert_non_null(strstr(s1b, "=a.test=="));
    assert_int_equal(srs_reverse(&c, s1b, NOW, back, sizeof(back)), 0);
    assert_string_equal(back, s0);
}

static void test_srs_length(void **state)
{
    struct srs_keys k = keys("secret-one", NULL);
    char out[320], big[200];

    (void)state;
    /* a rewrite with a local part over 64 octets is not made */
    snprintf(big, sizeof(big), "%s@%s", "averyveryverylonglocalpartindeed",
             "a-rather-long-domain-name.example.org");
    assert_int_equal(srs_forward(&k, big, FWDOM, NOW, out, sizeof(out)), -1);
    assert_int_equal(srs_forward(&k, ORIG, FWDOM, NOW, out, 20), -1);
}

static void test_srs_keyfile(void **state)
{
    char dir[] = "/tmp/polaris-srs-XXXXXX", path[64], err[256];
    struct srs_keys k1, k2;
    struct stat st;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(srs_keys_load(dir, &k1, err, sizeof(err)), 0);
    assert_int_equal(k1.n, 1);
    assert_int_equal(strlen(k1.key[0]), 64);
    snprintf(path, sizeof(path), "%s/srs.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(srs_keys_load(dir, &k2, err, sizeof(err)), 0);
    assert_string_equal(k1.key[0], k2.key[0]); /* generated once */
    /* rotation: a new secret on top, the old one below; comments and blanks ignored */
    assert_non_null(f = fopen(path, "w"));
    fprintf(f, "# current first\nnew-secret\n\n%s\n", k1.key[0]);
    fclose(f);
    assert_int_equal(srs_keys_load(dir, &k2, err, sizeof(err)), 0);
    assert_int_equal(k2.n, 2);
    assert_string_equal(k2.key[0], "new-secret");
    assert_string_equal(k2.key[1], k1.key[0]);
    /* an empty file is an error, not an empty secret */
    assert_non_null(f = fopen(path, "w"));
    fclose(f);
    assert_int_equal(srs_keys_load(dir, &k2, err, sizeof(err)), -1);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srs0_round_trip),
        cmocka_unit_test(test_srs0_case_and_age),
        cmocka_unit_test(test_srs0_refused),
        cmocka_unit_test(test_srs_rotation),
        cmocka_unit_test(test_srs1),
        cmocka_unit_test(test_srs_length),
        cmocka_unit_test(test_srs_keyfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
