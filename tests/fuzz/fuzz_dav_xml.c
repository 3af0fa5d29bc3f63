/*
 * fuzz_dav_xml.c — libFuzzer target for the DAV core's request readers (dav/dav_xml.c,
 * dav/dav_props.c): the safe XML parser, the property-request reader that hands
 * calendar-data / address-data elements to the iCalendar and vCard modules, and the
 * folder-props JSON reader and writer.
 *
 * Invariants besides sanitizer reports: a body carrying a DOCTYPE or ENTITY declaration is
 * never accepted; a JSON member written is read back as written.
 *
 *   meson setup build-fuzz -Dfuzz=true (CC=clang) && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_dav_xml -runs=200000 -max_len=4096
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int has_decl(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i + 2 < n; i++)
        if (s[i] == '<' && s[i + 1] == '!' && strchr("DdEe", s[i + 2]) && s[i + 2])
            return 1;
    return 0;
}

static void fuzz_xml(const char *data, size_t size)
{
    xmlDocPtr doc = dav_xml_parse(data, size);
    xmlNodePtr root, prop;
    struct dav_pset ps = {0};

    if (!doc)
        return;
    CHECK(!has_decl(data, size));
    root = xmlDocGetRootElement(doc);
    prop = dav_xml_child(root, NS_DAV, "prop");
    dav_pset_from_prop(prop ? prop : root, &ps);
    dav_pset_free(&ps);
    xmlFreeDoc(doc);
}

static void fuzz_json(const char *data, size_t size)
{
    char json[1024], out[1024], val[256];
    size_t n = size < sizeof(json) - 1 ? size : sizeof(json) - 1;
    size_t vn = size < sizeof(val) - 1 ? size : sizeof(val) - 1;

    memcpy(json, data, n);
    json[n] = '\0';
    memcpy(val, data, vn);
    val[vn] = '\0';
    dav_fprop_get(json, "dn", out, sizeof(out));
    if (dav_fprop_set(json, sizeof(json), "seg", val) == 0) {
        dav_fprop_get(json, "seg", out, sizeof(out));
        CHECK(strcmp(out, val) == 0);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fuzz_xml((const char *)data, size);
    fuzz_json((const char *)data, size);
    return 0;
}
