/*
 * test_ad.c — autodiscover/ helpers: the safe XML reader (DOCTYPE and entity tricks
 * refused, size bounded), address normalisation, XML escaping, the DNS record list built
 * from the configuration and the directory, and the per-domain "has Enhanced" answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "autodiscover/ad_int.h"
#include "mail/mail.h"

/* ---------------------------------------------------------------------------------------
 * XML in
 * ------------------------------------------------------------------------------------ */

static int parses(const char *s)
{
    xmlDocPtr d = ad_xml_parse(s, strlen(s));

    xmlFreeDoc(d);
    return d != NULL;
}

static void test_xml_parse(void **state)
{
    const char *ok = "<?xml version=\"1.0\"?>\n<Autodiscover xmlns=\"urn:x\"><Request>"
                     "<EMailAddress>  a@b.example \n</EMailAddress></Request></Autodiscover>";
    xmlDocPtr d;
    xmlNodePtr req;
    char buf[64], *big;

    (void)state;
    d = ad_xml_parse(ok, strlen(ok));
    assert_non_null(d);
    req = ad_xml_child(xmlDocGetRootElement(d), "request"); /* any letter case */
    assert_non_null(req);
    assert_int_equal(ad_xml_text(ad_xml_child(req, "EMAILADDRESS"), buf, sizeof(buf)), 0);
    assert_string_equal(buf, "a@b.example");
    assert_int_equal(ad_xml_text(ad_xml_child(req, "EMailAddress"), buf, 5), -1); /* too long */
    assert_null(ad_xml_child(req, "LegacyDN"));
    xmlFreeDoc(d);

    assert_false(parses(""));
    assert_false(parses("not xml"));
    assert_false(parses("<a><b></a>"));
    assert_false(parses("<a>&undefined;</a>"));
    /* any DOCTYPE is refused: internal entities, external ones, external DTDs */
    assert_false(parses("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"));
    assert_false(parses("<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>"));
    assert_false(parses("<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x.dtd\"><a/>"));
    assert_false(parses("<!DOCTYPE a><a/>"));
    assert_false(
        parses("<!DOCTYPE a [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;"
               "&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><a>&c;</a>"));
    /* bounded: a document of AD_BODY_MAX bytes parses, one byte more does not */
    big = malloc(AD_BODY_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', AD_BODY_MAX + 1);
    memcpy(big, "<a>", 3);
    memcpy(big + AD_BODY_MAX - 4, "</a>", 4);
    assert_non_null(d = ad_xml_parse(big, AD_BODY_MAX));
    xmlFreeDoc(d);
    memcpy(big + AD_BODY_MAX - 4, "    </a>", 5);
    memcpy(big + AD_BODY_MAX - 3, "</a>", 4);
    big[AD_BODY_MAX + 1] = '\0';
    assert_null(ad_xml_parse(big, AD_BODY_MAX + 1));
    free(big);
}

static void test_xml_whitespace_only(void **state)
{
    (void)state;
    assert_false(parses("    "));
}

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------ */

static void test_addr_norm(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(ad_addr_norm("  Alice@Example.COM\r\n", out, sizeof(out)), 0);
    assert_string_equal(out, "alice@example.com");
    assert_int_equal(ad_addr_norm("alice", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("@example.com", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("alice@", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("alice@localhost", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("a@b@example.com", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("a b@example.com", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("<a@example.com>", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("", out, sizeof(out)), -1);
    assert_int_equal(ad_addr_norm("a-very-long-local-part@example.com", out, 10), -1);
}

static void test_buf_xml(void **state)
{
    struct buf b = {0};

    (void)state;
    ad_buf_xml(&b, "a<b>&\"c'd");
    ad_buf_elem(&b, 2, "x", "<&>");
    assert_false(b.oom);
    assert_string_equal(b.p, "a&lt;b&gt;&amp;&quot;c&apos;d  <x>&lt;&amp;&gt;</x>\n");
    buf_free(&b);
    for (int i = 0; i < 2000; i++)
        buf_printf(&b, "%04d", i);
    assert_int_equal(b.len, 8000);
    assert_memory_equal(b.p + 7996, "1999", 4);
    buf_free(&b);
}

/* ---------------------------------------------------------------------------------------
 * With a store: the DNS record list and the Enhanced flag
 * ------------------------------------------------------------------------------------ */

struct fx {
    char dir[64];
    struct store *st;
    struct config cfg;
    struct store_domain d;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct store_config sc = {0};
    struct store_err e = {0};

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/polaris-ad-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    sc.data_dir = f->dir;
    if (store_open(&f->st, &sc, &e) != 0 || store_domain_add(f->st, "example.com", &f->d, &e))
        return -1;
    config_defaults(&f->cfg);
    snprintf(f->cfg.hostname, sizeof(f->cfg.hostname), "mx.polaris.test");
    snprintf(f->cfg.web_base, sizeof(f->cfg.web_base), "w.test");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static const struct ad_dns_record *find(const struct ad_dns_record *r, int n, const char *name,
                                        const char *type)
{
    for (int i = 0; i < n; i++)
        if (strcmp(r[i].name, name) == 0 && strcmp(r[i].type, type) == 0)
            return &r[i];
    return NULL;
}

static void test_dns_records(void **state)
{
    struct fx *f = *state;
    struct ad_dns_record recs[AD_DNS_MAX];
    char err[128];
    int n = ad_dns_records(f->st, &f->cfg, &f->d, recs, err, sizeof(err)), n2;

    assert_true(n > 0);
    assert_string_equal(recs[0].name, "mx-verification.example.com.");
    assert_string_equal(recs[0].value, f->d.token);
    assert_string_equal(find(recs, n, "example.com.", "MX")->value, "10 mx.polaris.test.");
    assert_string_equal(find(recs, n, "example.com.", "TXT")->value, "v=spf1 mx ~all");
    assert_string_equal(find(recs, n, "autodiscover.example.com.", "CNAME")->value,
                        "example--com.w.test.");
    assert_string_equal(find(recs, n, "_submissions._tcp.example.com.", "SRV")->value,
                        "0 1 465 mx.polaris.test.");
    assert_string_equal(find(recs, n, "_carddavs._tcp.example.com.", "TXT")->value,
                        "path=/carddav/");
    assert_null(find(recs, n, "polaris._domainkey.example.com.", "TXT"));
    assert_true(find(recs, n, "_dmarc.example.com.", "TXT")->optional);

    /* public_host, MX list, addresses, webmail target */
    snprintf(f->cfg.ad_public_host, sizeof(f->cfg.ad_public_host), "imap.polaris.test");
    snprintf(f->cfg.ad_mx, sizeof(f->cfg.ad_mx), " 5 a.polaris.test. ,10 b.polaris.test");
    snprintf(f->cfg.ad_address, sizeof(f->cfg.ad_address), "192.0.2.1, 2001:db8::1");
    snprintf(f->cfg.ad_webmail, sizeof(f->cfg.ad_webmail), "webredirect.polaris.test");
    assert_int_equal(dkim_domain_enable(f->st, "example.com", "sel", NULL), STORE_OK);
    n2 = ad_dns_records(f->st, &f->cfg, &f->d, recs, err, sizeof(err));
    assert_true(n2 > n);
    assert_string_equal(recs[1].value, "5 a.polaris.test.");
    assert_string_equal(recs[2].value, "10 b.polaris.test.");
    assert_string_equal(find(recs, n2, "autoconfig.example.com.", "A")->value, "192.0.2.1");
    assert_string_equal(find(recs, n2, "autoconfig.example.com.", "AAAA")->value, "2001:db8::1");
    assert_null(find(recs, n2, "autoconfig.example.com.", "CNAME"));
    assert_string_equal(find(recs, n2, "webmail.example.com.", "CNAME")->value,
                        "webredirect.polaris.test.");
    assert_string_equal(find(recs, n2, "_imaps._tcp.example.com.", "SRV")->value,
                        "0 1 993 imap.polaris.test.");
    assert_non_null(find(recs, n2, "sel._domainkey.example.com.", "TXT"));

    /* malformed configuration is an error, not a half list */
    static const char *const bad_mx[] = {"mx.polaris.test", "10", "70000 a.test", "10 a b",
                                         "10 bad_host!",    ",",  "-1 a.test"};
    for (size_t i = 0; i < sizeof(bad_mx) / sizeof(bad_mx[0]); i++) {
        snprintf(f->cfg.ad_mx, sizeof(f->cfg.ad_mx), "%s", bad_mx[i]);
        assert_int_equal(ad_dns_records(f->st, &f->cfg, &f->d, recs, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "mx"));
    }
    f->cfg.ad_mx[0] = '\0';
    snprintf(f->cfg.ad_address, sizeof(f->cfg.ad_address), "192.0.2.300");
    assert_int_equal(ad_dns_records(f->st, &f->cfg, &f->d, recs, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "address"));
}

static void test_dns_check_unreachable_resolver(void **state)
{
    struct fx *f = *state;
    struct ad_dns_record recs[AD_DNS_MAX];
    struct ad_dns_result res[AD_DNS_MAX];
    char err[128];
    int n = ad_dns_records(f->st, &f->cfg, &f->d, recs, err, sizeof(err));

    assert_true(n > 0);
    assert_int_equal(ad_dns_check("not-an-ip:53", recs, 1, res, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "resolver"));
    /* nothing listens on port 9: every answer is "error", never "ok" or "missing" */
    assert_int_equal(ad_dns_check("127.0.0.1:9", recs, 2, res, err, sizeof(err)), 0);
    assert_int_equal(res[0].status, AD_DNS_ERROR);
    assert_int_equal(res[1].status, AD_DNS_ERROR);
    assert_string_equal(ad_dns_status_name(AD_DNS_OK), "ok");
    assert_string_equal(ad_dns_status_name(AD_DNS_WRONG), "wrong");
}

static void test_domain_has_enhanced(void **state)
{
    struct fx *f = *state;
    struct store_domain other;
    struct ad *a = ad_new(f->st, &f->cfg);

    assert_non_null(a);
    assert_int_equal(
        store_account_add(f->st, "bob@example.com", STORE_BASIC, 0, "Bob-Pass1!", NULL, NULL, NULL),
        STORE_OK);
    assert_int_equal(ad_domain_has_enhanced(a, &f->d), 0);
    assert_int_equal(store_domain_add(f->st, "example.org", &other, NULL), STORE_OK);
    assert_int_equal(store_account_add(f->st, "carol@example.org", STORE_BASIC, 0, "Carol-Pass1!",
                                       NULL, NULL, NULL),
                     STORE_OK);
    assert_int_equal(store_account_add(f->st, "dave@example.org", STORE_ENHANCED, 0, "Dave-Pass1!",
                                       NULL, NULL, NULL),
                     STORE_OK);
    assert_int_equal(ad_domain_has_enhanced(a, &other), 1);
    assert_int_equal(ad_domain_has_enhanced(a, &f->d), 0); /* still remembered per domain */
    ad_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_parse),
        cmocka_unit_test(test_xml_whitespace_only),
        cmocka_unit_test(test_addr_norm),
        cmocka_unit_test(test_buf_xml),
        cmocka_unit_test_setup_teardown(test_dns_records, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_dns_check_unreachable_resolver, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_domain_has_enhanced, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
