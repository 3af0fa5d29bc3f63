/*
 * pim_test_util.h — helpers the PIM conversion tests share (test_eas_calendar.c,
 * test_eas_contact.c, test_eas_task.c, test_eas_note.c): running a "to ActiveSync"
 * conversion into XML text, and a "from ActiveSync" one from XML text.
 */
#ifndef POLARIS_PIM_TEST_UTIL_H
#define POLARIS_PIM_TEST_UTIL_H

#include <string.h>

#include "eas/eas_pim.h"

typedef int (*pim_to_fn)(struct eas_doc *, struct eas_node *, const struct eas_pim_ctx *,
                         const char *, size_t);
typedef int (*pim_from_fn)(const struct eas_node *, const struct eas_pim_ctx *, const char *,
                           size_t, struct eas_pim_out *);

/* A device's Supported list for the conversions that follow (NULL: none). */
static const unsigned *pim_supported;
static size_t pim_nsupported;
/* The collection's options (body preferences) for the conversions that follow. */
static const struct eas_coll_opts *pim_opts;

static inline struct eas_pim_ctx pim_ctx(int version)
{
    struct eas_pim_ctx c = {.version = version,
                            .o = pim_opts,
                            .self = "alice@example.com",
                            .now = 1900000000,
                            .supported = pim_supported,
                            .nsupported = pim_nsupported};
    return c;
}

/* The XML of the ApplicationData a conversion writes; NULL when it refused. */
static inline char *pim_to(pim_to_fn fn, int version, const char *text)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_node *app = eas_add(d, NULL, EAS_AIRSYNC_APPLICATIONDATA);
    struct eas_pim_ctx c = pim_ctx(version);
    char *xml = NULL;

    if (fn(d, app, &c, text, strlen(text)) == 0) {
        uint8_t *buf = NULL;
        size_t len = 0;
        /* what is built must encode */
        if (wbxml_encode(d, &buf, &len) == 0)
            xml = wbxml_to_xml(d);
        free(buf);
    }
    eas_doc_free(d);
    return xml;
}

/* The text a conversion makes of ApplicationData XML (with base when a Change); NULL
 * when it refused. */
static inline char *pim_from(pim_from_fn fn, int version, const char *xml, const char *base)
{
    struct eas_doc *d = NULL;
    struct eas_pim_out out;
    struct eas_pim_ctx c = pim_ctx(version);
    char err[256];

    if (wbxml_from_xml(xml, strlen(xml), &d, err, sizeof(err)) < 0) {
        fprintf(stderr, "bad test XML: %s\n", err);
        return NULL;
    }
    if (fn(eas_doc_root(d), &c, base, base ? strlen(base) : 0, &out) < 0) {
        eas_doc_free(d);
        return NULL;
    }
    eas_doc_free(d);
    /* unfolded, so that tests can look for whole lines */
    {
        char *w = out.text;
        for (const char *r = out.text; *r; r++) {
            if (r[0] == '\r' && r[1] == '\n' && r[2] == ' ')
                r += 2;
            else if (r[0] == '\n' && r[1] == ' ')
                r += 1;
            else
                *w++ = *r;
        }
        *w = '\0';
    }
    return out.text;
}

/* Asserts that hay holds needle, showing both when not. */
#define assert_has(hay, needle)                                                                    \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("missing [%s] in:\n%s", (needle), (hay));                                     \
    } while (0)
#define assert_hasnt(hay, needle)                                                                  \
    do {                                                                                           \
        if (strstr((hay), (needle)))                                                               \
            fail_msg("unexpected [%s] in:\n%s", (needle), (hay));                                  \
    } while (0)

#endif
