/*
 * fuzz_ical.c — libFuzzer target for the CalDAV iCalendar module (dav/dav_ical*.c), which
 * reads every calendar object a client PUTs.
 *
 * Invariants: parsing never crashes, hangs or leaks; a refusal names a precondition and
 * leaves no object; an accepted object has a UID and one component kind, its index
 * ranges are well formed (start <= end, at most the cap, complete_until at or past the
 * horizon when incomplete), and filters, calendar-data rendering (whole, expanded,
 * limited) and free-busy all run on it. A rendered object parses again.
 *
 *   fuzz_ical -max_len=65536 tests/fuzz/corpus/ical
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "dav/dav_ical.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define HORIZON 1893456000LL /* 2030-01-01 */

static struct dav_ical_filter *filter;
static struct dav_ical_data *expand, *limit;

static xmlNodePtr root_of(const char *xml, xmlDocPtr *doc)
{
    *doc = xmlReadMemory(xml, (int)strlen(xml), "x.xml", NULL, XML_PARSE_NONET);
    CHECK(*doc);
    return xmlDocGetRootElement(*doc);
}

static void init(void)
{
    static const char *f =
        "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
        "<C:comp-filter name=\"VEVENT\"><C:time-range start=\"20240101T000000Z\" "
        "end=\"20240201T000000Z\"/><C:prop-filter name=\"SUMMARY\"><C:text-match "
        "negate-condition=\"yes\">x</C:text-match></C:prop-filter><C:comp-filter "
        "name=\"VALARM\"><C:time-range start=\"20240101T000000Z\" end=\"20240301T000000Z\"/>"
        "</C:comp-filter></C:comp-filter></C:comp-filter></C:filter>";
    static const char *x = "<C:calendar-data xmlns:C=\"urn:ietf:params:xml:ns:caldav\">"
                           "<C:expand start=\"20240101T000000Z\" end=\"20240115T000000Z\"/>"
                           "</C:calendar-data>";
    static const char *l = "<C:calendar-data xmlns:C=\"urn:ietf:params:xml:ns:caldav\">"
                           "<C:comp name=\"VCALENDAR\"><C:allprop/><C:comp name=\"VEVENT\">"
                           "<C:prop name=\"UID\"/><C:prop name=\"DTSTART\" novalue=\"yes\"/>"
                           "</C:comp></C:comp><C:limit-recurrence-set start=\"20240101T000000Z\" "
                           "end=\"20240201T000000Z\"/></C:calendar-data>";
    const char *pre;
    char err[256];
    xmlDocPtr d;

    CHECK(dav_ical_filter_compile(root_of(f, &d), &filter, &pre, err, sizeof(err)) == 0);
    xmlFreeDoc(d);
    CHECK(dav_ical_data_compile(root_of(x, &d), &expand, err, sizeof(err)) == 0);
    xmlFreeDoc(d);
    CHECK(dav_ical_data_compile(root_of(l, &d), &limit, err, sizeof(err)) == 0);
    xmlFreeDoc(d);
}

static void check_ranges(const struct dav_ical *c)
{
    struct store_range *r;
    size_t n;
    int64_t cu;

    CHECK(dav_ical_ranges(c, HORIZON, &r, &n, &cu) == 0);
    CHECK(n <= 20000);
    for (size_t i = 0; i < n; i++) {
        CHECK(r[i].start <= r[i].end);
        CHECK(i == 0 || r[i - 1].start <= r[i].start);
    }
    CHECK(cu == INT64_MAX || cu >= HORIZON || n >= 10000);
    free(r);
}

static void check_render(const struct dav_ical_data *d, const struct dav_ical *c, int reparse)
{
    size_t len;
    char *out = dav_ical_data_render(d, c, &len);

    if (!out)
        return;
    CHECK(strlen(out) == len);
    if (reparse) {
        struct dav_ical *back = NULL;
        const char *pre;
        char err[256];
        CHECK(dav_ical_parse(out, len, &back, &pre, err, sizeof(err)) == 0);
        CHECK(strcmp(dav_ical_uid(back), dav_ical_uid(c)) == 0);
        CHECK(dav_ical_kind(back) == dav_ical_kind(c));
        dav_ical_free(back);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dav_ical *c = NULL;
    const char *pre = NULL;
    char err[256];

    if (!filter)
        init();
    if (dav_ical_parse((const char *)data, size, &c, &pre, err, sizeof(err)) != 0) {
        CHECK(c == NULL);
        CHECK(pre != NULL && (strcmp(pre, "valid-calendar-data") == 0 ||
                              strcmp(pre, "valid-calendar-object-resource") == 0));
        return 0;
    }
    CHECK(dav_ical_uid(c) && *dav_ical_uid(c));
    unsigned k = dav_ical_kind(c);
    CHECK(k && (k & (k - 1)) == 0);
    check_ranges(c);
    (void)dav_ical_filter_match(filter, c);
    check_render(NULL, c, 0);
    check_render(expand, c, 0);
    check_render(limit, c, 0);
    struct dav_ical_fb *fb = dav_ical_fb_new(1704067200, 1706745600);
    CHECK(fb);
    dav_ical_fb_add(fb, c);
    size_t len;
    free(dav_ical_fb_render(fb, &len));
    dav_ical_fb_free(fb);
    dav_ical_free(c);
    return 0;
}
