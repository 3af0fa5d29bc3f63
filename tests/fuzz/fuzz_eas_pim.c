/*
 * fuzz_eas_pim.c — libFuzzer target for the ActiveSync PIM conversions (eas/eas_calendar.c,
 * eas_contact.c, eas_task.c, eas_note.c), which read what devices send (ApplicationData
 * of Sync Add/Change) and what CalDAV/CardDAV clients stored.
 *
 * Input starting with 0x03 (WBXML 1.3) is a device's ApplicationData: each class converts
 * it (as an Add, and as a Change merged into a fixed stored object); whatever a
 * conversion accepts must read back through the same class ("what we write, we read").
 * Any other input is stored text: every class's "to ActiveSync" side must survive it, and
 * what it writes must encode.
 *
 *   fuzz_eas_pim -max_len=16384 tests/fuzz/corpus/eas_pim
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/eas_pim.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef int (*to_fn)(struct eas_doc *, struct eas_node *, const struct eas_pim_ctx *, const char *,
                     size_t);
typedef int (*from_fn)(const struct eas_node *, const struct eas_pim_ctx *, const char *, size_t,
                       struct eas_pim_out *);

static const struct {
    to_fn to;
    from_fn from;
    const char *base;
} classes[] = {
    {eas_calendar_to_eas, eas_calendar_from_eas,
     "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//F//EN\r\nBEGIN:VEVENT\r\nUID:f\r\n"
     "DTSTAMP:20240101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20300101T100000\r\n"
     "RRULE:FREQ=WEEKLY\r\nX-A:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"},
    {eas_task_to_eas, eas_task_from_eas,
     "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//F//EN\r\nBEGIN:VTODO\r\nUID:t\r\n"
     "DTSTAMP:20240101T000000Z\r\nSUMMARY:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"},
    {eas_note_to_eas, eas_note_from_eas,
     "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//F//EN\r\nBEGIN:VJOURNAL\r\nUID:n\r\n"
     "DTSTAMP:20240101T000000Z\r\nSUMMARY:n\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n"},
    {eas_contact_to_eas, eas_contact_from_eas,
     "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c\r\nFN:A B\r\nN:B;A;;;\r\nEMAIL:a@b.c\r\n"
     "item1.X-ABLABEL:x\r\nEND:VCARD\r\n"},
};

static int to_eas(to_fn fn, int version, const char *text, size_t len)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_node *app = eas_add(d, NULL, EAS_AIRSYNC_APPLICATIONDATA);
    struct eas_pim_ctx c = {.version = version, .self = "alice@example.com", .now = 1900000000};
    int rc = fn(d, app, &c, text, len);

    if (rc == 0) {
        uint8_t *out = NULL;
        size_t olen = 0;
        CHECK(wbxml_encode(d, &out, &olen) == 0);
        free(out);
    }
    eas_doc_free(d);
    return rc;
}

static void from_eas(const struct eas_node *app, int version)
{
    struct eas_pim_ctx c = {.version = version, .self = "alice@example.com", .now = 1900000000};

    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        for (int change = 0; change < 2; change++) {
            const char *base = change ? classes[i].base : NULL;
            struct eas_pim_out out;
            if (classes[i].from(app, &c, base, base ? strlen(base) : 0, &out) < 0)
                continue;
            CHECK(out.text && out.len == strlen(out.text));
            CHECK(out.uid[0]);
            CHECK(to_eas(classes[i].to, version, out.text, out.len) == 0);
            eas_pim_out_free(&out);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int versions[] = {EAS_V25, EAS_V141, EAS_V161};

    if (size > 0 && data[0] == 0x03) {
        struct eas_doc *d = NULL;
        char err[128];
        if (wbxml_decode(data, size, &d, err, sizeof(err)) == 0) {
            for (size_t v = 0; v < 3; v++)
                from_eas(eas_doc_root(d), versions[v]);
            eas_doc_free(d);
        }
        return 0;
    }
    {
        char *text = malloc(size + 1);
        if (!text)
            return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
            for (size_t v = 0; v < 3; v++)
                to_eas(classes[i].to, versions[v], text, size);
        free(text);
    }
    return 0;
}
