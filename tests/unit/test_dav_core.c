/*
 * test_dav_core.c — unit tests of the DAV core's own parsers and writers: the safe XML
 * reader (DOCTYPE, entities, namespace errors, depth, size), XML escaping, the folder-props
 * JSON kept by the engine, percent-encoding of hrefs and decoding of paths, and path
 * resolution against a real store (own tree only; nameless ActiveSync items as <id>.ics).
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dav/dav_int.h"

static xmlDocPtr parse(const char *s)
{
    return dav_xml_parse(s, strlen(s));
}

static void test_xml_accepts_dav_bodies(void **state)
{
    xmlDocPtr doc = parse("<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\"><d:prop>"
                          "<d:getetag/></d:prop></d:propfind>");
    xmlNodePtr root;

    (void)state;
    assert_non_null(doc);
    root = xmlDocGetRootElement(doc);
    assert_true(dav_xml_is(root, NS_DAV, "propfind"));
    assert_non_null(dav_xml_child(root, NS_DAV, "prop"));
    assert_null(dav_xml_child(root, NS_DAV, "allprop"));
    xmlFreeDoc(doc);
}

static void test_xml_refuses_doctype_and_entities(void **state)
{
    static const char *const bad[] = {
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
        "<?xml version=\"1.0\"?>\n<!doctype x><x/>",
        "<x><!ENTITY y \"z\"></x>",
        "<!DOCTYPE x SYSTEM \"http://127.0.0.1:1/dtd\"><x/>",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(parse(bad[i]));
}

static void test_xml_refuses_malformed(void **state)
{
    char deep[2048] = "";
    int i;

    (void)state;
    assert_null(parse("<a><b></a>"));
    assert_null(parse("text"));
    assert_null(parse(""));
    assert_null(dav_xml_parse(NULL, 0));
    /* an undeclared prefix and an undeclared-by-empty prefix are namespace errors */
    assert_null(parse("<p:x/>"));
    assert_null(parse("<d:x xmlns:d=\"DAV:\"><e:y xmlns:e=\"\"/></d:x>"));
    /* UTF-16 would hide a DOCTYPE from the scan */
    assert_null(dav_xml_parse("\xff\xfe<\0x\0/\0>\0", 8));
    for (i = 0; i < DAV_XML_DEPTH + 1; i++)
        strcat(deep, "<a>");
    for (i = 0; i < DAV_XML_DEPTH + 1; i++)
        strcat(deep, "</a>");
    assert_null(parse(deep));
}

static void test_xml_size_bound(void **state)
{
    size_t n = DAV_XML_MAX + 16;
    char *big = malloc(n);

    (void)state;
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "<a>", 3);
    memcpy(big + n - 4, "</a>", 4);
    assert_null(dav_xml_parse(big, n));
    free(big);
}

static void test_xml_text_trimmed(void **state)
{
    xmlDocPtr doc = parse("<x>  a &amp; b\n </x>");
    char *t;

    (void)state;
    assert_non_null(doc);
    t = dav_xml_text(xmlDocGetRootElement(doc));
    assert_string_equal(t, "a & b");
    free(t);
    xmlFreeDoc(doc);
}

static void test_escape(void **state)
{
    struct buf b = {0};
    const char in[] = "a<b>&\"c\r\nd\x01";

    (void)state;
    dav_buf_esc(&b, in, sizeof(in) - 1);
    assert_string_equal(b.p, "a&lt;b&gt;&amp;&quot;c&#13;\nd");
    buf_free(&b);
}

static void test_element_names(void **state)
{
    struct buf b = {0};

    (void)state;
    dav_xml_open_el(&b, NS_CAL, "calendar-data");
    buf_puts(&b, "/>");
    dav_xml_open_el(&b, "urn:x\"y", "p");
    buf_puts(&b, "/>");
    dav_xml_open_el(&b, "", "bare");
    buf_puts(&b, ">");
    dav_xml_close_el(&b, "", "bare");
    assert_string_equal(b.p, "<C:calendar-data/><X:p xmlns:X=\"urn:x&quot;y\"/>"
                             "<bare xmlns=\"\"></bare>");
    buf_free(&b);
}

static void test_fprops(void **state)
{
    char json[1024] = "";
    char out[256];

    (void)state;
    assert_int_equal(dav_fprop_set(json, sizeof(json), "seg", "work"), 0);
    assert_int_equal(dav_fprop_set(json, sizeof(json), "dn", "B\xc3\xbcro \"1\"\\x\n"), 0);
    dav_fprop_get(json, "seg", out, sizeof(out));
    assert_string_equal(out, "work");
    dav_fprop_get(json, "dn", out, sizeof(out));
    assert_string_equal(out, "B\xc3\xbcro \"1\"\\x\n");
    dav_fprop_get(json, "missing", out, sizeof(out));
    assert_string_equal(out, "");
    /* replacing keeps one member; removing drops it */
    assert_int_equal(dav_fprop_set(json, sizeof(json), "seg", "other"), 0);
    assert_non_null(strstr(json, "\"seg\":\"other\""));
    assert_null(strstr(json, "work"));
    assert_int_equal(dav_fprop_set(json, sizeof(json), "dn", NULL), 0);
    dav_fprop_get(json, "dn", out, sizeof(out));
    assert_string_equal(out, "");
    /* members other engines keep (numbers, objects) survive a change */
    strcpy(json, "{\"n\":12,\"o\":{\"a\":[1,\"}\"]},\"s\":\"v\"}");
    assert_int_equal(dav_fprop_set(json, sizeof(json), "color", "#ff0000"), 0);
    assert_string_equal(json,
                        "{\"n\":12,\"o\":{\"a\":[1,\"}\"]},\"s\":\"v\",\"color\":\"#ff0000\"}");
    dav_fprop_get("{\"u\":\"\\u00e9\"}", "u", out, sizeof(out));
    assert_string_equal(out, "\xc3\xa9");
}

static void test_fprops_garbage_and_bounds(void **state)
{
    char json[1024], out[64];
    int i;

    (void)state;
    /* values that are not JSON: the field is rewritten afresh, and reads back */
    strcpy(json, "{\"a\":\xff\xfe,\"seg\":\"old\"}");
    dav_fprop_get(json, "seg", out, sizeof(out));
    assert_string_equal(out, "");
    assert_int_equal(dav_fprop_set(json, sizeof(json), "seg", "new"), 0);
    assert_string_equal(json, "{\"seg\":\"new\"}");
    /* unterminated nesting, trailing junk */
    strcpy(json, "{\"o\":{\"x\":1}");
    dav_fprop_get(json, "o", out, sizeof(out));
    assert_string_equal(out, "");
    strcpy(json, "{\"s\":\"v\" junk}");
    dav_fprop_get(json, "s", out, sizeof(out));
    assert_string_equal(out, "");
    /* at most 32 members: a 33rd is refused rather than written unreadable */
    strcpy(json, "{");
    for (i = 0; i < 32; i++)
        snprintf(json + strlen(json), sizeof(json) - strlen(json), "%s\"k%d\":1", i ? "," : "", i);
    strcat(json, "}");
    assert_int_equal(dav_fprop_set(json, sizeof(json), "seg", "x"), -1);
    assert_int_equal(dav_fprop_set(json, sizeof(json), "k3", "x"), 0);
    dav_fprop_get(json, "k3", out, sizeof(out));
    assert_string_equal(out, "x");
}

static void test_fprops_overflow(void **state)
{
    char json[64] = "";
    char big[100];

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(dav_fprop_set(json, sizeof(json), "dn", big), -1);
    assert_string_equal(json, "");
}

static void test_href_and_decode(void **state)
{
    struct buf b = {0};
    char p1[] = "/caldav/a%40b.com/x%20y/%E2%82%AC.ics";
    char p2[] = "/bad%2";
    char p3[] = "/nul%00";

    (void)state;
    dav_href_seg(&b, "a@b.com/x y\xe2\x82\xac", 0);
    assert_string_equal(b.p, "a@b.com%2Fx%20y%E2%82%AC");
    buf_free(&b);
    assert_int_equal(dav_pct_decode(p1), 0);
    assert_string_equal(p1, "/caldav/a@b.com/x y/\xe2\x82\xac.ics");
    assert_int_equal(dav_pct_decode(p2), -1);
    assert_int_equal(dav_pct_decode(p3), -1);
}

/* --- paths against a real store ---------------------------------------------------------- */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void test_resolve_paths(void **state)
{
    char dir[] = "/tmp/polaris-davcore-XXXXXX", path[512], want[512];
    struct store_config cfg = {0};
    struct store *st = NULL;
    struct store_user *u = NULL;
    struct store_account acct;
    struct store_folder cal;
    struct store_item named, nameless;
    struct store_err e = {0};
    struct dav_req q = {0};
    struct dav_res r;
    const char body[] = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n";
    struct store_item_new in = {.body = body,
                                .body_len = sizeof(body) - 1,
                                .ctype = "text/calendar",
                                .ext_uid = "uid-one",
                                .name = "one.ics"};

    (void)state;
    assert_non_null(mkdtemp(dir));
    cfg.data_dir = dir;
    assert_int_equal(store_open(&st, &cfg, &e), 0);
    assert_int_equal(store_domain_add(st, "example.com", NULL, &e), 0);
    assert_int_equal(store_account_add(st, "alice@example.com", STORE_ENHANCED, 0, "Alice-Pass1!",
                                       NULL, &acct, &e),
                     0);
    assert_int_equal(store_user_open(st, "alice@example.com", &u, &e), 0);
    assert_int_equal(store_folder_by_role(u, STORE_ROLE_CALENDAR, &cal), 0);
    assert_int_equal(store_item_add(u, cal.id, &in, &named, &e), 0);
    in.name = NULL; /* as ActiveSync writes them */
    in.ext_uid = "eas-uid";
    assert_int_equal(store_item_add(u, cal.id, &in, &nameless, &e), 0);
    q.acct = &acct;
    q.u = u;

    assert_int_equal(dav_resolve(&q, "/caldav/", &r), 0);
    assert_int_equal(r.kind, DAV_K_ROOT);
    assert_int_equal(dav_resolve(&q, "/caldav/ALICE@example.com", &r), 0);
    assert_int_equal(r.kind, DAV_K_HOME);
    assert_string_equal(r.href, "/caldav/alice@example.com/");
    assert_int_equal(dav_resolve(&q, "/caldav/alice@example.com/calendar/", &r), 0);
    assert_int_equal(r.kind, DAV_K_COLL);
    assert_int_equal(r.folder.id, cal.id);
    assert_int_equal(dav_resolve(&q, "/caldav/alice@example.com/calendar/one.ics", &r), 0);
    assert_int_equal(r.kind, DAV_K_ITEM);
    assert_int_equal(r.item.id, named.id);
    /* the nameless item: <id>.ics is its href, <ext_uid>.ics also finds it */
    snprintf(path, sizeof(path), "/caldav/alice@example.com/calendar/%" PRId64 ".ics", nameless.id);
    assert_int_equal(dav_resolve(&q, path, &r), 0);
    assert_int_equal(r.kind, DAV_K_ITEM);
    assert_int_equal(r.item.id, nameless.id);
    assert_string_equal(r.href, path);
    assert_int_equal(dav_resolve(&q, "/caldav/alice@example.com/calendar/eas-uid.ics", &r), 0);
    assert_int_equal(r.item.id, nameless.id);
    snprintf(want, sizeof(want), "%s", path);
    assert_string_equal(r.href, want);
    /* a named item is not reachable under its UID or id */
    assert_int_equal(dav_resolve(&q, "/caldav/alice@example.com/calendar/uid-one.ics", &r), 0);
    assert_int_equal(r.kind, DAV_K_NEWITEM);
    /* new names, new collections, other trees */
    assert_int_equal(dav_resolve(&q, "/caldav/alice@example.com/work/", &r), 0);
    assert_int_equal(r.kind, DAV_K_NEWCOLL);
    assert_int_equal(dav_resolve(&q, "/caldav/alice@example.com/work/x.ics", &r), 0);
    assert_int_equal(r.kind, DAV_K_NONE);
    assert_true(r.mine);
    assert_int_equal(dav_resolve(&q, "/caldav/bob@example.com/calendar/", &r), 0);
    assert_int_equal(r.kind, DAV_K_NONE);
    assert_false(r.mine);
    assert_int_equal(dav_resolve(&q, "/carddav/alice@example.com/calendar/", &r), 0);
    assert_int_equal(r.kind, DAV_K_NEWCOLL); /* the calendar is not an address book */
    assert_int_equal(dav_resolve(&q, "/carddav/alice@example.com/contacts/", &r), 0);
    assert_int_equal(r.kind, DAV_K_COLL);
    assert_int_equal(dav_resolve(&q, "/principals/alice@example.com/", &r), 0);
    assert_int_equal(r.kind, DAV_K_PRINCIPAL);
    assert_int_equal(dav_resolve(&q, "/principals/alice@example.com/x/", &r), 0);
    assert_int_equal(r.kind, DAV_K_NONE);
    assert_int_equal(dav_resolve(&q, "/caldav/alice@example.com/a/b/c/d/e/f/g/h/i/", &r), 0);
    assert_int_equal(r.kind, DAV_K_NONE);

    store_user_release(u);
    store_close(st);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_accepts_dav_bodies),
        cmocka_unit_test(test_xml_refuses_doctype_and_entities),
        cmocka_unit_test(test_xml_refuses_malformed),
        cmocka_unit_test(test_xml_size_bound),
        cmocka_unit_test(test_xml_text_trimmed),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_element_names),
        cmocka_unit_test(test_fprops),
        cmocka_unit_test(test_fprops_garbage_and_bounds),
        cmocka_unit_test(test_fprops_overflow),
        cmocka_unit_test(test_href_and_decode),
        cmocka_unit_test(test_resolve_paths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
