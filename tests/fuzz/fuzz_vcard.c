/*
 * fuzz_vcard.c — libFuzzer target for the vCard module of dav/: parses arbitrary input
 * as an address object resource and, when it is accepted, checks what the rest of the
 * server relies on: writing it back and parsing that again gives the same card, a
 * conversion to either version is itself a valid card of that version with the same UID
 * and, after one round trip, converting again gives the same properties and values;
 * the value helpers, a filter and an address-data subset run on every property.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "dav/dav_vcard.h"

static struct dav_vcard_filter *filter;
static struct dav_vcard_data *subset;

/* One filter and one address-data element, compiled once (the XML is ours, not fuzzed). */
static void setup(void)
{
    static const char fx[] =
        "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:carddav\" test=\"anyof\">"
        "<C:prop-filter name=\"EMAIL\" test=\"allof\"><C:text-match match-type=\"ends-with\">"
        "É.org</C:text-match><C:param-filter name=\"TYPE\"><C:text-match>work"
        "</C:text-match></C:param-filter></C:prop-filter>"
        "<C:prop-filter name=\"item1.FN\"><C:text-match negate-condition=\"yes\" "
        "collation=\"i;octet\">a</C:text-match></C:prop-filter>"
        "<C:prop-filter name=\"N\"><C:is-not-defined/></C:prop-filter></C:filter>";
    static const char dx[] = "<C:address-data xmlns:C=\"urn:ietf:params:xml:ns:carddav\" "
                             "version=\"4.0\"><C:prop name=\"EMAIL\"/><C:prop name=\"TEL\" "
                             "novalue=\"yes\"/></C:address-data>";
    const char *pre;
    xmlDocPtr d = xmlReadMemory(fx, sizeof(fx) - 1, "f.xml", NULL, XML_PARSE_NONET);
    if (!d || dav_vcard_filter_compile(xmlDocGetRootElement(d), &filter, &pre, NULL, 0) != 0)
        abort();
    xmlFreeDoc(d);
    d = xmlReadMemory(dx, sizeof(dx) - 1, "d.xml", NULL, XML_PARSE_NONET);
    if (!d || dav_vcard_data_compile(xmlDocGetRootElement(d), &subset, &pre, NULL, 0) != 0)
        abort();
    xmlFreeDoc(d);
}

/* Parses text we produced: it must be accepted. */
static struct dav_vcard *must_parse(const char *s, size_t n)
{
    struct dav_vcard *v;
    const char *pre;
    char err[256];
    if (!s || dav_vcard_parse(s, n, &v, &pre, err, sizeof(err)) != 0)
        abort();
    return v;
}

static void helpers(const struct dav_vcard *v)
{
    for (size_t i = 0; i < dav_vcard_nprops(v); i++) {
        const struct dav_vcard_prop *p = dav_vcard_prop(v, i);
        char *u = dav_vcard_unescape(p->value);
        char *e = u ? dav_vcard_escape(u) : NULL;
        char *parts[8];
        int n = dav_vcard_split(p->value, ';', parts, 8);
        for (int k = 0; k < n; k++)
            free(parts[k]);
        dav_vcard_has_type(p, "pref");
        dav_vcard_param_get(p, "VALUE");
        free(u);
        free(e);
    }
}

static char *check_convert(const struct dav_vcard *v, int version, size_t *n)
{
    char *out = dav_vcard_convert(v, version, n);
    struct dav_vcard *w = must_parse(out, *n);
    if (dav_vcard_version(w) != version || strcmp(dav_vcard_uid(w), dav_vcard_uid(v)))
        abort();
    dav_vcard_free(w);
    return out;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The same properties (group, name, value) in the same order. Parameters are not
 * compared: nonsense ones (several TYPEs on a PHOTO) may settle only after more trips,
 * and what matters, media types of inline data, is in the value. */
static int same_card(const struct dav_vcard *a, const struct dav_vcard *b)
{
    if (dav_vcard_nprops(a) != dav_vcard_nprops(b))
        return 0;
    for (size_t i = 0; i < dav_vcard_nprops(a); i++) {
        const struct dav_vcard_prop *p = dav_vcard_prop(a, i), *q = dav_vcard_prop(b, i);
        if (!same_str(p->group, q->group) || strcmp(p->name, q->name) || strcmp(p->value, q->value))
            return 0;
    }
    return 1;
}

/* After one trip to the other version and back, further trips change nothing. */
static void check_stable(const struct dav_vcard *v)
{
    int other = dav_vcard_version(v) == 3 ? 4 : 3;
    size_t n1, n2, n3;
    char *c1 = check_convert(v, other, &n1);
    struct dav_vcard *w1 = must_parse(c1, n1);
    char *c2 = check_convert(w1, dav_vcard_version(v), &n2);
    struct dav_vcard *w2 = must_parse(c2, n2);
    char *c3 = check_convert(w2, other, &n3);
    struct dav_vcard *w3 = must_parse(c3, n3);
    char *c4 = check_convert(w3, dav_vcard_version(v), &n3);
    struct dav_vcard *w4 = must_parse(c4, n3);
    if (!same_card(w2, w4))
        abort();
    dav_vcard_free(w4);
    dav_vcard_free(w1);
    dav_vcard_free(w2);
    dav_vcard_free(w3);
    free(c1);
    free(c2);
    free(c3);
    free(c4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dav_vcard *v, *w;
    const char *pre;
    char err[128];
    size_t n1, n2;

    if (!filter)
        setup();
    if (dav_vcard_parse((const char *)data, size, &v, &pre, err, sizeof(err)) != 0) {
        if (!pre || (strcmp(pre, "valid-address-data") && strcmp(pre, "supported-address-data")))
            abort();
        return 0;
    }
    /* written back and parsed again: the same card, written the same way */
    char *s1 = dav_vcard_serialize(v, &n1);
    w = must_parse(s1, n1);
    char *s2 = dav_vcard_serialize(w, &n2);
    if (!s2 || n1 != n2 || memcmp(s1, s2, n1) || dav_vcard_nprops(v) != dav_vcard_nprops(w))
        abort();
    free(s1);
    free(s2);
    dav_vcard_free(w);

    check_stable(v);
    helpers(v);
    dav_vcard_filter_match(filter, v);
    char *r = dav_vcard_data_render(subset, v, &n1);
    if (r) {
        dav_vcard_free(must_parse(r, n1));
        free(r);
    }
    dav_vcard_free(v);
    return 0;
}
