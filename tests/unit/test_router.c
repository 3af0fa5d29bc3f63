/*
 * test_router.c — the virtual-host router and the path table: Host header normalisation,
 * tenant resolution against a real store (label, bare domain, autodiscover./autoconfig./
 * mail. prefixes) and route matching (exact, prefix, case, longest match, replacement).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server.h"

/* ---------------------------------------------------------------------------------------
 * Host normalisation
 * ------------------------------------------------------------------------------------ */

static void assert_host(const char *in, const char *want)
{
    char out[300];

    if (!want) {
        if (router_host_normalize(in, out, sizeof(out)) == 0)
            fail_msg("\"%s\" accepted as \"%s\"", in, out);
        return;
    }
    if (router_host_normalize(in, out, sizeof(out)) != 0)
        fail_msg("\"%s\" refused", in);
    assert_string_equal(out, want);
}

static void test_host_ports_case_dot(void **state)
{
    (void)state;
    assert_host("example.com", "example.com");
    assert_host("Example.COM", "example.com");
    assert_host("example.com:8443", "example.com");
    assert_host("EXAMPLE.com.:443", "example.com");
    assert_host("example.com.", "example.com");
    assert_host("127.0.0.1:8080", "127.0.0.1");
    assert_host("my-company--com.w.Test", "my-company--com.w.test");
}

static void test_host_ipv6(void **state)
{
    (void)state;
    assert_host("[::1]", "[::1]");
    assert_host("[::1]:8443", "[::1]");
    assert_host("[2001:DB8::1]:80", "[2001:db8::1]");
    assert_host("[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]");
    assert_host("[]", NULL);
    assert_host("[::1", NULL);
    assert_host("[::1]x", NULL);
    assert_host("[::1]:", NULL);
    assert_host("[::1]:12a", NULL);
    assert_host("[fe80::1%eth0]", NULL);
    assert_host("[g::1]", NULL);
}

static void test_host_garbage(void **state)
{
    char big[300];

    (void)state;
    assert_host("", NULL);
    assert_host(":80", NULL);
    assert_host(".", NULL);
    assert_host("example.com:", NULL);
    assert_host("example.com:123456", NULL);
    assert_host("example.com:80:80", NULL);
    assert_host("example.com:8o", NULL);
    assert_host("example.com..", NULL);
    assert_host(".example.com", NULL);
    assert_host("a..b", NULL);
    assert_host("exa mple.com", NULL);
    assert_host("exa_mple.com", NULL);
    assert_host("example.com/x", NULL);
    assert_host("user@example.com", NULL);
    assert_host("ex\xc3\xa4mple.com", NULL);
    assert_host("example.com\r\nX: y", NULL);
    /* labels: 63 characters is the most */
    memset(big, 'a', 63);
    strcpy(big + 63, ".com");
    assert_host(big, big);
    memset(big, 'a', 64);
    strcpy(big + 64, ".com");
    assert_host(big, NULL);
    /* 254-character name */
    for (int i = 0; i < 254; i++)
        big[i] = (i % 2) ? '.' : 'a';
    big[253] = 'a';
    big[254] = '\0';
    assert_host(big, NULL);
    /* small output buffer */
    {
        char out[8];
        assert_int_equal(router_host_normalize("example.com", out, sizeof(out)), -1);
    }
}

/* ---------------------------------------------------------------------------------------
 * Tenant resolution against a real store
 * ------------------------------------------------------------------------------------ */

struct router_fixture {
    char dir[64];
    struct store *st;
};

static void rm_rf(const char *dir)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int store_setup(void **state)
{
    struct router_fixture *f = calloc(1, sizeof(*f));
    struct store_config sc = {0};
    struct store_err e = {0};

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/polaris-router-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    sc.data_dir = f->dir;
    if (store_open(&f->st, &sc, &e) != 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    if (store_domain_add(f->st, "example.com", NULL, &e) != 0 ||
        store_domain_add(f->st, "my-company.com", NULL, &e) != 0 ||
        store_domain_add(f->st, "mail.hosted.org", NULL, &e) != 0 ||
        store_domain_add(f->st, "hosted.org", NULL, &e) != 0) {
        fprintf(stderr, "store_domain_add: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    struct router_fixture *f = *state;

    store_close(f->st);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static void assert_tenant(struct store *st, const char *host, const char *domain, const char *kind)
{
    struct store_domain d;
    const char *k = NULL;
    int rc = router_resolve_host(st, "w.test", host, &d, &k);

    if (!domain) {
        if (rc != STORE_ENOTFOUND)
            fail_msg("%s: expected no tenant, got rc %d (%s)", host, rc, rc == 0 ? d.name : "");
        return;
    }
    if (rc != 0)
        fail_msg("%s: expected %s, got rc %d", host, domain, rc);
    assert_string_equal(d.name, domain);
    assert_string_equal(k, kind);
}

static void test_resolve_label(void **state)
{
    struct router_fixture *f = *state;

    assert_tenant(f->st, "example--com.w.test", "example.com", "label");
    assert_tenant(f->st, "my-company--com.w.test", "my-company.com", "label");
    assert_tenant(f->st, "unknown--com.w.test", NULL, NULL);
    /* the label alone decides: no prefix stripping below web_base, no dotted labels */
    assert_tenant(f->st, "autodiscover.example--com.w.test", NULL, NULL);
    assert_tenant(f->st, "example.com.w.test", NULL, NULL);
    assert_tenant(f->st, "w.test", NULL, NULL);
    assert_tenant(f->st, ".w.test", NULL, NULL);
}

static void test_resolve_domain_and_prefixes(void **state)
{
    struct router_fixture *f = *state;

    assert_tenant(f->st, "example.com", "example.com", "domain");
    assert_tenant(f->st, "autodiscover.example.com", "example.com", "autodiscover");
    assert_tenant(f->st, "autoconfig.example.com", "example.com", "autoconfig");
    assert_tenant(f->st, "mail.example.com", "example.com", "mail");
    assert_tenant(f->st, "autodiscover.my-company.com", "my-company.com", "autodiscover");
    /* the whole host wins over a stripped prefix */
    assert_tenant(f->st, "mail.hosted.org", "mail.hosted.org", "domain");
    assert_tenant(f->st, "autoconfig.hosted.org", "hosted.org", "autoconfig");
    /* only one prefix, only the known ones */
    assert_tenant(f->st, "www.example.com", NULL, NULL);
    assert_tenant(f->st, "mail.autodiscover.example.com", NULL, NULL);
    assert_tenant(f->st, "autodiscover.", NULL, NULL);
    assert_tenant(f->st, "example.org", NULL, NULL);
    assert_tenant(f->st, "com", NULL, NULL);
}

static void test_resolve_no_web_base(void **state)
{
    struct router_fixture *f = *state;
    struct store_domain d;
    const char *k = NULL;

    assert_int_equal(router_resolve_host(f->st, "", "example.com", &d, &k), 0);
    assert_string_equal(k, "domain");
    assert_int_equal(router_resolve_host(f->st, NULL, "example--com.w.test", &d, &k),
                     STORE_ENOTFOUND);
}

/* ---------------------------------------------------------------------------------------
 * Path routes
 * ------------------------------------------------------------------------------------ */

static const char *match_engine(struct router_table *t, const char *path)
{
    const struct http_route *rt = router_match(t, path);

    return rt ? rt->engine : NULL;
}

static struct router_table *demo_table(void)
{
    static const struct http_route routes[] = {
        {"/Microsoft-Server-ActiveSync", HTTP_ROUTE_PREFIX | HTTP_ROUTE_NOCASE | HTTP_ROUTE_AUTH,
         SVC_EAS, NULL, NULL, NULL, "eas"},
        {"/caldav", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH, SVC_CALDAV, NULL, NULL, NULL, "dav"},
        {"/caldav/special", 0, SVC_NONE, NULL, NULL, NULL, "special"},
        {"/caldav/deep", HTTP_ROUTE_PREFIX, SVC_NONE, NULL, NULL, NULL, "deep"},
        {"/autodiscover/autodiscover.xml", HTTP_ROUTE_NOCASE, SVC_NONE, NULL, NULL, NULL, "ad"},
        {"/.well-known/caldav", 0, SVC_NONE, NULL, NULL, NULL, "wk"},
        {"/files/", HTTP_ROUTE_PREFIX, SVC_NONE, NULL, NULL, NULL, "files"},
    };
    struct router_table *t = router_table_new();

    assert_non_null(t);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        assert_int_equal(router_table_add(t, &routes[i]), 0);
    return t;
}

static void test_route_exact_and_prefix(void **state)
{
    struct router_table *t = demo_table();

    (void)state;
    assert_string_equal(match_engine(t, "/caldav"), "dav");
    assert_string_equal(match_engine(t, "/caldav/"), "dav");
    assert_string_equal(match_engine(t, "/caldav/alice/calendar/x.ics"), "dav");
    assert_null(match_engine(t, "/caldavx"));
    assert_null(match_engine(t, "/CalDAV"));
    assert_string_equal(match_engine(t, "/.well-known/caldav"), "wk");
    assert_null(match_engine(t, "/.well-known/caldav/x"));
    assert_null(match_engine(t, "/.well-known/caldavx"));
    assert_string_equal(match_engine(t, "/files/a/b"), "files");
    assert_string_equal(match_engine(t, "/files/"), "files");
    assert_null(match_engine(t, "/files"));
    assert_null(match_engine(t, "/"));
    assert_null(match_engine(t, ""));
    assert_null(match_engine(t, "/nothing"));
    router_table_free(t);
}

static void test_route_nocase(void **state)
{
    struct router_table *t = demo_table();

    (void)state;
    assert_string_equal(match_engine(t, "/Microsoft-Server-ActiveSync"), "eas");
    assert_string_equal(match_engine(t, "/microsoft-server-activesync"), "eas");
    assert_string_equal(match_engine(t, "/MICROSOFT-SERVER-ACTIVESYNC/x"), "eas");
    assert_null(match_engine(t, "/Microsoft-Server-ActiveSyncX"));
    assert_string_equal(match_engine(t, "/AutoDiscover/AutoDiscover.xml"), "ad");
    assert_null(match_engine(t, "/AutoDiscover/AutoDiscover.xml/x"));
    router_table_free(t);
}

static void test_route_longest_match(void **state)
{
    struct router_table *t = demo_table();

    (void)state;
    assert_string_equal(match_engine(t, "/caldav/special"), "special");
    /* the longer route is exact: below it the shorter prefix route applies */
    assert_string_equal(match_engine(t, "/caldav/special/x"), "dav");
    assert_string_equal(match_engine(t, "/caldav/deep"), "deep");
    assert_string_equal(match_engine(t, "/caldav/deep/a/b"), "deep");
    assert_string_equal(match_engine(t, "/caldav/deeper"), "dav");
    router_table_free(t);
}

static void test_route_replacement(void **state)
{
    struct router_table *t = demo_table();
    struct http_route rt = {"/caldav", HTTP_ROUTE_PREFIX, SVC_CALDAV, NULL, NULL, NULL, "dav2"};
    const struct http_route *m;
    char path[16];

    (void)state;
    /* the table copies the path: the caller's buffer may change afterwards */
    snprintf(path, sizeof(path), "/caldav");
    rt.path = path;
    assert_int_equal(router_table_add(t, &rt), 0);
    path[1] = 'X';
    m = router_match(t, "/caldav/x");
    assert_non_null(m);
    assert_string_equal(m->engine, "dav2");
    assert_string_equal(m->path, "/caldav");
    assert_int_equal(m->service, SVC_CALDAV);
    assert_int_equal(m->flags, HTTP_ROUTE_PREFIX);
    /* other routes untouched */
    assert_string_equal(match_engine(t, "/caldav/special"), "special");
    /* a route path must be absolute */
    rt.path = "caldav";
    assert_int_equal(router_table_add(t, &rt), -1);
    rt.path = NULL;
    assert_int_equal(router_table_add(t, &rt), -1);
    router_table_free(t);
}

static void test_route_many(void **state)
{
    struct router_table *t = router_table_new();
    char path[32];

    (void)state;
    for (int i = 0; i < 100; i++) {
        struct http_route rt = {path, HTTP_ROUTE_PREFIX, SVC_NONE, NULL, NULL, NULL, NULL};
        snprintf(path, sizeof(path), "/r%d", i);
        assert_int_equal(router_table_add(t, &rt), 0);
    }
    assert_string_equal(router_match(t, "/r42/x")->path, "/r42");
    assert_string_equal(router_match(t, "/r99")->path, "/r99");
    assert_null(router_match(t, "/r100"));
    router_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_ports_case_dot),
        cmocka_unit_test(test_host_ipv6),
        cmocka_unit_test(test_host_garbage),
        cmocka_unit_test_setup_teardown(test_resolve_label, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_domain_and_prefixes, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_no_web_base, store_setup, store_teardown),
        cmocka_unit_test(test_route_exact_and_prefix),
        cmocka_unit_test(test_route_nocase),
        cmocka_unit_test(test_route_longest_match),
        cmocka_unit_test(test_route_replacement),
        cmocka_unit_test(test_route_many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
