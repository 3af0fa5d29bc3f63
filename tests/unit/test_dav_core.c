/*
 * test_dav_core.c — unit tests of the DAV core's own parsers and writers: the safe XML
 * reader (DOCTYPE, entities, namespace errors, depth, size), XML escaping, the folder-props
 * JSON kept by the engine, percent-encoding of hrefs and decoding of paths.
 */
#include <setjmp.h>
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
    struct dav_buf b = {0};
    const char in[] = "a<b>&\"c\r\nd\x01";

    (void)state;
    dav_buf_esc(&b, in, sizeof(in) - 1);
    assert_string_equal(b.p, "a&lt;b&gt;&amp;&quot;c&#13;\nd");
    dav_buf_free(&b);
}

static void test_element_names(void **state)
{
    struct dav_buf b = {0};

    (void)state;
    dav_xml_open_el(&b, NS_CAL, "calendar-data");
    dav_buf_puts(&b, "/>");
    dav_xml_open_el(&b, "urn:x\"y", "p");
    dav_buf_puts(&b, "/>");
    dav_xml_open_el(&b, "", "bare");
    dav_buf_puts(&b, ">");
    dav_xml_close_el(&b, "", "bare");
    assert_string_equal(b.p, "<C:calendar-data/><X:p xmlns:X=\"urn:x&quot;y\"/>"
                             "<bare xmlns=\"\"></bare>");
    dav_buf_free(&b);
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
    struct dav_buf b = {0};
    char p1[] = "/caldav/a%40b.com/x%20y/%E2%82%AC.ics";
    char p2[] = "/bad%2";
    char p3[] = "/nul%00";

    (void)state;
    dav_href_seg(&b, "a@b.com/x y\xe2\x82\xac", 0);
    assert_string_equal(b.p, "a@b.com%2Fx%20y%E2%82%AC");
    dav_buf_free(&b);
    assert_int_equal(dav_pct_decode(p1), 0);
    assert_string_equal(p1, "/caldav/a@b.com/x y/\xe2\x82\xac.ics");
    assert_int_equal(dav_pct_decode(p2), -1);
    assert_int_equal(dav_pct_decode(p3), -1);
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
        cmocka_unit_test(test_fprops_overflow),
        cmocka_unit_test(test_href_and_decode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
