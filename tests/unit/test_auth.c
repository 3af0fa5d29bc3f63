/*
 * test_auth.c — login forms, the tenant check, the gate, and verification against a real
 * store: cache invalidation on password change, suspension, per-address and per-IP
 * throttling, type changes seen at once.
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

#include "server/server.h"

struct fixture {
    char dir[64];
    struct store *store;
    struct auth *auth;
    struct config cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct store_err err = {0};
    struct store_config sc = {0};

    snprintf(f->dir, sizeof(f->dir), "/tmp/polaris-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    sc.data_dir = f->dir;
    if (store_open(&f->store, &sc, &err) != 0)
        fail_msg("store_open: %s", err.msg);
    assert_int_equal(store_domain_add(f->store, "example.com", NULL, &err), 0);
    assert_int_equal(store_domain_add(f->store, "example.org", NULL, &err), 0);
    assert_int_equal(store_account_add(f->store, "alice@example.com", STORE_ENHANCED, 0,
                                       "Alice-Pass1!", NULL, NULL, &err),
                     0);
    assert_int_equal(store_account_add(f->store, "bob@example.com", STORE_BASIC, 0, "Bob-Pass1!",
                                       NULL, NULL, &err),
                     0);
    assert_int_equal(store_account_add(f->store, "carol@example.org", STORE_ENHANCED, 0,
                                       "Carol-Pass1!", NULL, NULL, &err),
                     0);
    f->cfg.auth_fail_max = 3;
    f->cfg.auth_fail_window = 300;
    f->cfg.auth_cache_ttl = 300;
    f->auth = auth_new(f->store, &f->cfg);
    assert_non_null(f->auth);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    auth_free(f->auth);
    store_close(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void expect_login(const char *login, const char *tenant, const char *want)
{
    char addr[320];
    int rc = auth_resolve_login(login, tenant, addr, sizeof(addr));

    if (!want) {
        if (rc == 0)
            fail_msg("'%s' on %s resolved to '%s', expected refusal", login,
                     tenant ? tenant : "(no tenant)", addr);
        return;
    }
    if (rc != 0)
        fail_msg("'%s' on %s refused, expected %s", login, tenant ? tenant : "(none)", want);
    assert_string_equal(addr, want);
}

static void test_login_forms(void **state)
{
    /* full address, with and without a tenant, any case */
    expect_login("alice@example.com", NULL, "alice@example.com");
    expect_login("Alice@Example.COM", "example.com", "alice@example.com");
    expect_login("alice@example.com", "example.org", NULL); /* other tenant's host */
    /* DOMAIN\user as Exchange clients send it */
    expect_login("EXAMPLE\\alice", "example.com", "alice@example.com");
    expect_login("example.com\\alice", "example.com", "alice@example.com");
    expect_login("example.com\\alice", NULL, "alice@example.com");
    expect_login("example.org\\alice", "example.com", NULL);
    expect_login("EXAMPLE\\alice", NULL, NULL); /* no way to know the domain */
    expect_login("EXAMPLE\\alice@example.com", "example.com", "alice@example.com");
    expect_login("example.org\\alice@example.com", NULL, NULL);
    /* \user and bare local part need the tenant */
    expect_login("\\alice", "example.com", "alice@example.com");
    expect_login("\\alice", NULL, NULL);
    expect_login("alice", "example.com", "alice@example.com");
    expect_login("alice", NULL, NULL);
    /* malformed */
    expect_login("", "example.com", NULL);
    expect_login("a\\b\\c", "example.com", NULL);
    expect_login("alice@", NULL, NULL);
    expect_login("@example.com", NULL, NULL);
    expect_login("a@b@example.com", NULL, NULL);
    expect_login("ali ce", "example.com", NULL);
    expect_login("alice\n@example.com", NULL, NULL);
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    expect_login(big, "example.com", NULL);
}

static void test_gate(void **state)
{
    for (int s = 0; s < SVC__COUNT; s++) {
        assert_true(gate_allows(STORE_ENHANCED, (enum gate_service)s));
        int basic = s == SVC_IMAP || s == SVC_POP3 || s == SVC_SMTP || s == SVC_NONE;
        assert_int_equal(gate_allows(STORE_BASIC, (enum gate_service)s), basic);
    }
    assert_false(gate_allows((enum store_acct_type)0, SVC_IMAP));
    assert_false(gate_allows(STORE_ENHANCED, SVC__COUNT));
    assert_string_equal(gate_service_name(SVC_EAS), "activesync");
}

static void test_verify(void **state)
{
    struct fixture *f = *state;
    struct store_account a;

    assert_int_equal(
        auth_verify(f->auth, "alice@example.com", "Alice-Pass1!", NULL, "10.0.0.1", &a), AUTH_OK);
    assert_string_equal(a.address, "alice@example.com");
    assert_int_equal(a.type, STORE_ENHANCED);
    /* the cached success is still a success, through each login form */
    assert_int_equal(
        auth_verify(f->auth, "EXAMPLE\\alice", "Alice-Pass1!", "example.com", "10.0.0.1", &a),
        AUTH_OK);
    assert_int_equal(auth_verify(f->auth, "alice", "Alice-Pass1!", "example.com", NULL, &a),
                     AUTH_OK);
    /* wrong password, unknown user, other tenant */
    assert_int_equal(auth_verify(f->auth, "alice@example.com", "alice-pass1!", NULL, NULL, &a),
                     AUTH_FAIL);
    assert_string_equal(a.address, "");
    assert_int_equal(auth_verify(f->auth, "nobody@example.com", "Alice-Pass1!", NULL, NULL, &a),
                     AUTH_FAIL);
    assert_int_equal(
        auth_verify(f->auth, "carol@example.org", "Carol-Pass1!", "example.com", NULL, &a),
        AUTH_FAIL);
    assert_int_equal(
        auth_verify(f->auth, "carol@example.org", "Carol-Pass1!", "example.org", NULL, &a),
        AUTH_OK);
    assert_int_equal(auth_verify(f->auth, "alice@example.com", "", NULL, NULL, &a), AUTH_FAIL);
}

static void test_password_change_invalidates_cache(void **state)
{
    struct fixture *f = *state;
    struct store_account a;
    struct store_err err;

    assert_int_equal(auth_verify(f->auth, "bob@example.com", "Bob-Pass1!", NULL, NULL, &a),
                     AUTH_OK);
    assert_int_equal(store_account_set_password(f->store, "bob@example.com", "Bob-Pass2!", &err),
                     0);
    assert_int_equal(auth_verify(f->auth, "bob@example.com", "Bob-Pass1!", NULL, NULL, &a),
                     AUTH_FAIL);
    assert_int_equal(auth_verify(f->auth, "bob@example.com", "Bob-Pass2!", NULL, NULL, &a),
                     AUTH_OK);
}

static void test_type_and_suspension_seen_at_once(void **state)
{
    struct fixture *f = *state;
    struct store_account a;
    struct store_err err;

    assert_int_equal(auth_verify(f->auth, "bob@example.com", "Bob-Pass1!", NULL, NULL, &a),
                     AUTH_OK);
    assert_false(gate_allows(a.type, SVC_EAS));
    assert_int_equal(store_account_set_type(f->store, "bob@example.com", STORE_ENHANCED, &err), 0);
    assert_int_equal(auth_verify(f->auth, "bob@example.com", "Bob-Pass1!", NULL, NULL, &a),
                     AUTH_OK);
    assert_true(gate_allows(a.type, SVC_EAS));
    assert_int_equal(store_account_set_active(f->store, "bob@example.com", 0, &err), 0);
    assert_int_equal(auth_verify(f->auth, "bob@example.com", "Bob-Pass1!", NULL, NULL, &a),
                     AUTH_DISABLED);
}

static void test_throttle_per_address(void **state)
{
    struct fixture *f = *state;
    struct store_account a;

    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_verify(f->auth, "alice@example.com", "wrong", NULL, NULL, &a),
                         AUTH_FAIL);
    /* Past fail_max even the right password is refused, without being checked. */
    assert_int_equal(auth_verify(f->auth, "alice@example.com", "Alice-Pass1!", NULL, NULL, &a),
                     AUTH_THROTTLED);
    /* Another address is unaffected. */
    assert_int_equal(auth_verify(f->auth, "carol@example.org", "Carol-Pass1!", NULL, NULL, &a),
                     AUTH_OK);
}

static void test_throttle_per_ip(void **state)
{
    struct fixture *f = *state;
    struct store_account a;

    /* Spraying one guess at many addresses from one source trips the per-IP limit. */
    assert_int_equal(auth_verify(f->auth, "x1@example.com", "Guess-1!", NULL, "192.0.2.7", &a),
                     AUTH_FAIL);
    assert_int_equal(auth_verify(f->auth, "x2@example.com", "Guess-1!", NULL, "192.0.2.7", &a),
                     AUTH_FAIL);
    assert_int_equal(auth_verify(f->auth, "x3@example.com", "Guess-1!", NULL, "192.0.2.7", &a),
                     AUTH_FAIL);
    assert_int_equal(
        auth_verify(f->auth, "alice@example.com", "Alice-Pass1!", NULL, "192.0.2.7", &a),
        AUTH_THROTTLED);
    assert_int_equal(
        auth_verify(f->auth, "alice@example.com", "Alice-Pass1!", NULL, "192.0.2.8", &a), AUTH_OK);
}

static void test_ct_equal(void **state)
{
    assert_true(auth_ct_equal("abcd", "abcd", 4));
    assert_false(auth_ct_equal("abcd", "abce", 4));
    assert_true(auth_ct_equal("", "", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_forms),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_change_invalidates_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_and_suspension_seen_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_per_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_per_ip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
