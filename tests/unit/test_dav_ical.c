/*
 * test_dav_ical.c — the CalDAV iCalendar module: resource validation and the precondition
 * each refusal names, occurrence ranges for the store index (time zones, DST, recurrence
 * rules, overrides, tasks), calendar-query filters, calendar-data rendering with expand
 * and limit-recurrence-set, free-busy, hostile input, and concurrent use from threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "dav/dav_ical.h"
#include "dav/dav_ical_int.h"

#define DAY  86400LL
#define T0   1704103200LL /* 2024-01-01T10:00:00Z */
#define JAN1 1704067200LL /* 2024-01-01T00:00:00Z */

/* A calendar around the given component lines (LF line ends; the parser takes both). */
static char *cal(const char *body)
{
    const char *head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n";
    const char *tail = "END:VCALENDAR\r\n";
    size_t n = strlen(head) + strlen(body) + strlen(tail) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%s%s%s", head, body, tail);
    return s;
}

static struct dav_ical *parse_ok(const char *body)
{
    char *s = cal(body);
    struct dav_ical *c = NULL;
    const char *pre = NULL;
    char err[256];
    int rc = dav_ical_parse(s, strlen(s), &c, &pre, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse failed: %s (%s)", err, pre ? pre : "-");
    free(s);
    return c;
}

static const char *parse_err_raw(const char *s, size_t len)
{
    struct dav_ical *c = NULL;
    const char *pre = NULL;
    char err[256];
    int rc = dav_ical_parse(s, len, &c, &pre, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_null(c);
    assert_non_null(pre);
    assert_true(err[0] != 0);
    return pre;
}

static const char *parse_err(const char *body)
{
    char *s = cal(body);
    const char *pre = parse_err_raw(s, strlen(s));
    free(s);
    return pre;
}

static void ranges(struct dav_ical *c, int64_t horizon, struct store_range **r, size_t *n,
                   int64_t *cu)
{
    assert_int_equal(dav_ical_ranges(c, horizon, r, n, cu), 0);
}

#define EV(extra) "BEGIN:VEVENT\r\nUID:ev1\r\nDTSTAMP:20240101T000000Z\r\n" extra "END:VEVENT\r\n"

/* ---- parse ---- */

static void test_parse_valid(void **state)
{
    struct dav_ical *c = parse_ok(EV("DTSTART:20240101T100000Z\r\nSUMMARY:hi\r\n"));
    assert_string_equal(dav_ical_uid(c), "ev1");
    assert_int_equal(dav_ical_kind(c), DAV_ICAL_VEVENT);
    dav_ical_free(c);
    c = parse_ok("BEGIN:VTODO\r\nUID:t1\r\nSUMMARY:x\r\nEND:VTODO\r\n");
    assert_int_equal(dav_ical_kind(c), DAV_ICAL_VTODO);
    dav_ical_free(c);
    c = parse_ok("BEGIN:VJOURNAL\r\nUID:j1\r\nEND:VJOURNAL\r\n");
    assert_int_equal(dav_ical_kind(c), DAV_ICAL_VJOURNAL);
    dav_ical_free(c);
    c = parse_ok("BEGIN:VFREEBUSY\r\nUID:f1\r\nDTSTART:20240101T000000Z\r\n"
                 "DTEND:20240102T000000Z\r\nEND:VFREEBUSY\r\n");
    assert_int_equal(dav_ical_kind(c), DAV_ICAL_VFREEBUSY);
    dav_ical_free(c);
    /* master plus an override, LF line ends, no PRODID, an X- component */
    const char *lf = "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:X-THING\nX-A:1\nEND:X-THING\n"
                     "BEGIN:VEVENT\nUID:r\nDTSTART:20240101T100000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\n"
                     "BEGIN:VEVENT\nUID:r\nRECURRENCE-ID:20240102T100000Z\n"
                     "DTSTART:20240102T120000Z\nEND:VEVENT\nEND:VCALENDAR\n";
    const char *pre;
    char err[128];
    assert_int_equal(dav_ical_parse(lf, strlen(lf), &c, &pre, err, sizeof(err)), 0);
    assert_string_equal(dav_ical_uid(c), "r");
    dav_ical_free(c);
}

static void test_parse_invalid(void **state)
{
    static const struct {
        const char *body;
        const char *pre;
    } cases[] = {
        {"METHOD:REQUEST\r\n" EV("DTSTART:20240101T100000Z\r\n"), "valid-calendar-object-resource"},
        {EV("DTSTART:20240101T100000Z\r\n") "BEGIN:VEVENT\r\nUID:other\r\nDTSTART:"
                                            "20240101T100000Z\r\nEND:VEVENT\r\n",
         "valid-calendar-object-resource"},
        {EV("DTSTART:20240101T100000Z\r\n") "BEGIN:VTODO\r\nUID:ev1\r\nEND:VTODO\r\n",
         "valid-calendar-object-resource"},
        {"BEGIN:VEVENT\r\nDTSTART:20240101T100000Z\r\nEND:VEVENT\r\n",
         "valid-calendar-object-resource"},
        {EV("DTSTART:20240101T100000Z\r\n") EV("DTSTART:20240102T100000Z\r\n"),
         "valid-calendar-object-resource"},
        {EV("DTSTART;TZID=Mars/Olympus_Mons:20240101T100000\r\n"), "valid-calendar-data"},
        {EV("DTSTART:20241399T250000Z\r\n"), "valid-calendar-data"},
        {EV("DTSTART:20240230T100000Z\r\n"), "valid-calendar-data"},
        {EV("DTSTART:garbage\r\n"), "valid-calendar-data"},
        {EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=XX\r\n"), "valid-calendar-data"},
        {EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30\r\n"),
         "valid-calendar-object-resource"},
        {EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\r\n"),
         "valid-calendar-object-resource"},
        {EV("DTSTART:20240101T100000Z\r\nDTEND:20240101T110000Z\r\nDURATION:PT1H\r\n"),
         "valid-calendar-data"},
        {EV("SUMMARY:no start\r\n"), "valid-calendar-data"},
        {EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=DAILY\r\n") "BEGIN:VEVENT\r\nUID:"
                                                                "ev1\r\nRECURRENCE-ID:"
                                                                "20240102T100000Z\r\n"
                                                                "DTSTART:20240102T100000Z\r\nEND:"
                                                                "VEVENT\r\n"
                                                                "BEGIN:VEVENT\r\nUID:"
                                                                "ev1\r\nRECURRENCE-ID:"
                                                                "20240102T100000Z\r\n"
                                                                "DTSTART:20240102T110000Z\r\nEND:"
                                                                "VEVENT\r\n",
         "valid-calendar-object-resource"},
        {"BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n",
         "valid-calendar-object-resource"},
        {"BEGIN:VTIMEZONE\r\nTZID:x\r\nBEGIN:STANDARD\r\nDTSTART:20240101T000000\r\n"
         "TZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=SECONDLY\r\nEND:STANDARD\r\n"
         "END:VTIMEZONE\r\n" EV("DTSTART;TZID=x:20240101T100000\r\n"),
         "valid-calendar-data"},
        {"X-NOTHING\r\n" EV("DTSTART:20240101T100000Z\r\n"), "valid-calendar-data"},
        {"", "valid-calendar-object-resource"}, /* no component at all */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *pre = parse_err(cases[i].body);
        if (strcmp(pre, cases[i].pre) != 0)
            fail_msg("case %zu: %s, expected %s", i, pre, cases[i].pre);
    }
    /* whole-body shapes */
    static const struct {
        const char *s;
        const char *pre;
    } raw[] = {
        {"hello world", "valid-calendar-data"},
        {"BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n", "valid-calendar-data"},
        {"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" EV("DTSTART:20240101T100000Z\r\n"),
         "valid-calendar-data"}, /* never closed */
        {"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
         "valid-calendar-data"},
        {"BEGIN:VCALENDAR\r\n" EV("DTSTART:20240101T100000Z\r\n") "END:VCALENDAR\r\n",
         "valid-calendar-data"}, /* no VERSION */
        {"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" EV(
             "DTSTART:20240101T100000Z\r\n") "END:VCALENDAR\r\nBEGIN:VCALENDAR\r\nVERSION:2."
                                             "0\r\nEND:VCALENDAR\r\n",
         "valid-calendar-object-resource"},
        {"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" EV(
             "DTSTART:20240101T100000Z\r\n") "END:VCALENDAR\r\ntrailing junk\r\n",
         "valid-calendar-data"},
    };
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        const char *pre = parse_err_raw(raw[i].s, strlen(raw[i].s));
        if (strcmp(pre, raw[i].pre) != 0)
            fail_msg("raw case %zu: %s, expected %s", i, pre, raw[i].pre);
    }
    /* a NUL inside */
    assert_string_equal(parse_err_raw("BEGIN:VCALENDAR\0x", 17), "valid-calendar-data");
    assert_string_equal(parse_err_raw("x", 0), "valid-calendar-data");
}

static void test_parse_lenient(void **state)
{
    /* TZIDs without VTIMEZONE: IANA, Windows, vendor prefix; local UNTIL; folded lines */
    static const char *const ok[] = {
        EV("DTSTART;TZID=Europe/Berlin:20240101T100000\r\n"),
        EV("DTSTART;TZID=W. Europe Standard Time:20240101T100000\r\n"),
        EV("DTSTART;TZID=\"Pacific Standard Time\":20240101T100000\r\n"),
        EV("DTSTART;TZID=/mozilla.org/20050126_1/Europe/Berlin:20240101T100000\r\n"),
        EV("DTSTART;TZID=UTC:20240101T100000\r\n"),
        EV("DTSTART;TZID=America/New_York:20240101T100000\r\n"
           "RRULE:FREQ=WEEKLY;UNTIL=20240301T100000\r\n"),
        EV("DTSTART:20240101T100000Z\r\nSUMMARY:a long\r\n  folded line\r\nX-FOO;X-P=1:x\r\n"),
        EV("DTSTART;VALUE=DATE:20240101\r\nRRULE:FREQ=YEARLY\r\n"),
        EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=HOURLY;BYDAY=MO;COUNT=5\r\n"),
        EV("DTSTART:20240101T100000Z\r\nGEO:not-a-number\r\n"),
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct dav_ical *c = parse_ok(ok[i]);
        dav_ical_free(c);
    }
}

static void test_windows_zones(void **state)
{
    size_t n = 0;
    const char *w;
    char buf[256];

    for (; (w = dav_ical_windows_zone_at(n)); n++) {
        snprintf(buf, sizeof(buf), EV("DTSTART;TZID=%s:20240101T100000\r\n"), w);
        struct dav_ical *c = parse_ok(buf);
        dav_ical_free(c);
        assert_non_null(dav_ical_windows_zone(w));
    }
    assert_true(n >= 135);
    assert_string_equal(dav_ical_windows_zone("W. Europe Standard Time"), "Europe/Berlin");
    assert_string_equal(dav_ical_windows_zone("eastern standard time"), "America/New_York");
    assert_string_equal(dav_ical_windows_zone("Tokyo Standard Time"), "Asia/Tokyo");
    assert_null(dav_ical_windows_zone("Nowhere Standard Time"));
    assert_null(dav_ical_windows_zone(NULL));
}

static void test_parse_utc(void **state)
{
    int64_t t;
    assert_int_equal(dav_ical_parse_utc("20240101T100000Z", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(dav_ical_parse_utc("19700101T000000Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(dav_ical_parse_utc("20240101T100000", &t), -1);
    assert_int_equal(dav_ical_parse_utc("20241301T100000Z", &t), -1);
    assert_int_equal(dav_ical_parse_utc("2024-01-01T10:00:00Z", &t), -1);
    assert_int_equal(dav_ical_parse_utc("20240230T000000Z", &t), -1);
    assert_int_equal(dav_ical_parse_utc("", &t), -1);
}

/* ---- ranges ---- */

static void one_range(const char *body, int64_t s, int64_t e)
{
    struct dav_ical *c = parse_ok(body);
    struct store_range *r;
    size_t n;
    int64_t cu;
    ranges(c, T0 + 365 * DAY, &r, &n, &cu);
    if (n != 1 || r[0].start != s || r[0].end != e)
        fail_msg("got %zu ranges, first [%lld, %lld), want [%lld, %lld)", n,
                 n ? (long long)r[0].start : 0, n ? (long long)r[0].end : 0, (long long)s,
                 (long long)e);
    assert_true(cu == INT64_MAX);
    free(r);
    dav_ical_free(c);
}

static void test_ranges_single(void **state)
{
    one_range(EV("DTSTART:20240101T100000Z\r\nDTEND:20240101T113000Z\r\n"), T0, T0 + 5400);
    one_range(EV("DTSTART:20240101T100000Z\r\nDURATION:PT2H\r\n"), T0, T0 + 7200);
    /* DATE-TIME without end: zero length */
    one_range(EV("DTSTART:20240101T100000Z\r\n"), T0, T0);
    /* all-day: whole UTC days; DATE without end is one day */
    one_range(EV("DTSTART;VALUE=DATE:20240101\r\n"), JAN1, JAN1 + DAY);
    one_range(EV("DTSTART;VALUE=DATE:20240101\r\nDTEND;VALUE=DATE:20240104\r\n"), JAN1,
              JAN1 + 3 * DAY);
    /* floating: as UTC */
    one_range(EV("DTSTART:20240101T100000\r\nDTEND:20240101T110000\r\n"), T0, T0 + 3600);
    /* IANA zone without VTIMEZONE: 10:00 CEST = 08:00Z */
    one_range(EV("DTSTART;TZID=Europe/Berlin:20240701T100000\r\n"
                 "DTEND;TZID=Europe/Berlin:20240701T110000\r\n"),
              1719820800, 1719820800 + 3600);
    /* Windows name: the same */
    one_range(EV("DTSTART;TZID=W. Europe Standard Time:20240701T100000\r\nDURATION:PT1H\r\n"),
              1719820800, 1719820800 + 3600);
    /* a VTIMEZONE of its own, fixed +05:00, overrides the IANA meaning of the name */
    one_range(
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\n"
        "DTSTART:19700101T000000\r\nTZOFFSETFROM:+0500\r\nTZOFFSETTO:+0500\r\n"
        "END:STANDARD\r\nEND:VTIMEZONE\r\n" EV("DTSTART;TZID=Europe/Berlin:20240101T150000\r\n"
                                               "DURATION:PT1H\r\n"),
        T0, T0 + 3600);
    /* Outlook's VTIMEZONE: observances from 1601, Windows TZID */
    one_range("BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\n"
              "DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
              "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
              "DTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
              "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n" EV(
                  "DTSTART;TZID=W. Europe Standard Time:20240701T100000\r\n"
                  "DTEND;TZID=W. Europe Standard Time:20240701T110000\r\n"),
              1719820800, 1719820800 + 3600);
    /* end before start is read as zero length */
    one_range(EV("DTSTART:20240101T100000Z\r\nDTEND:20240101T090000Z\r\n"), T0, T0);
}

static void expect_starts(const char *body, int64_t horizon, const int64_t *want, size_t nwant,
                          int complete)
{
    struct dav_ical *c = parse_ok(body);
    struct store_range *r;
    size_t n;
    int64_t cu;
    ranges(c, horizon, &r, &n, &cu);
    if (n != nwant)
        fail_msg("got %zu ranges, want %zu", n, nwant);
    for (size_t i = 0; i < n; i++)
        if (r[i].start != want[i])
            fail_msg("range %zu starts %lld, want %lld", i, (long long)r[i].start,
                     (long long)want[i]);
    if (complete)
        assert_true(cu == INT64_MAX);
    else
        assert_true(cu >= horizon && cu < INT64_MAX);
    free(r);
    dav_ical_free(c);
}

static void test_ranges_recurring(void **state)
{
    /* weekly across the DST change: 09:00 Berlin is 08:00Z then 07:00Z */
    const int64_t dst[] = {1710748800, 1711353600, 1711954800};
    expect_starts(EV("DTSTART;TZID=Europe/Berlin:20240318T090000\r\n"
                     "DTEND;TZID=Europe/Berlin:20240318T100000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\n"),
                  T0 + 3650 * DAY, dst, 3, 1);
    /* and each keeps its hour */
    struct dav_ical *c = parse_ok(EV("DTSTART;TZID=Europe/Berlin:20240318T090000\r\n"
                                     "DTEND;TZID=Europe/Berlin:20240318T100000\r\n"
                                     "RRULE:FREQ=WEEKLY;COUNT=3\r\n"));
    struct store_range *r;
    size_t n;
    int64_t cu;
    ranges(c, T0 + 3650 * DAY, &r, &n, &cu);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(r[i].end - r[i].start, 3600);
    free(r);
    dav_ical_free(c);

    /* COUNT with EXDATE and RDATE */
    const int64_t ex[] = {T0, T0 + 2 * DAY, T0 + 10 * DAY};
    expect_starts(EV("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=3\r\n"
                     "EXDATE:20240102T100000Z\r\nRDATE:20240111T100000Z\r\n"),
                  T0 + 3650 * DAY, ex, 3, 1);
    /* an EXDATE list in a zone: each value keeps the zone */
    const int64_t exl[] = {1710748800, 1712559600};
    expect_starts(EV("DTSTART;TZID=Europe/Berlin:20240318T090000\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\n"
                     "EXDATE;TZID=Europe/Berlin:20240325T090000,20240401T090000\r\n"),
                  T0 + 3650 * DAY, exl, 2, 1);
    /* UNTIL in UTC */
    const int64_t un[] = {T0, T0 + DAY, T0 + 2 * DAY};
    expect_starts(EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=DAILY;UNTIL=20240103T100000Z\r\n"),
                  T0 + 3650 * DAY, un, 3, 1);
    /* UNTIL in local time (not RFC, but sent): the last 10:00 New York one is kept */
    const int64_t ny[] = {1704207600, 1704812400, 1705417200};
    expect_starts(EV("DTSTART;TZID=America/New_York:20240102T100000\r\n"
                     "RRULE:FREQ=WEEKLY;UNTIL=20240116T100000\r\n"),
                  T0 + 3650 * DAY, ny, 3, 1);
    /* UNTIL in UTC for a zoned start */
    expect_starts(EV("DTSTART;TZID=America/New_York:20240102T100000\r\n"
                     "RRULE:FREQ=WEEKLY;UNTIL=20240116T150000Z\r\n"),
                  T0 + 3650 * DAY, ny, 3, 1);
    /* an RDATE period */
    c = parse_ok(EV("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\n"
                    "RDATE;VALUE=PERIOD:20240105T100000Z/PT3H\r\n"));
    ranges(c, T0 + 365 * DAY, &r, &n, &cu);
    assert_int_equal(n, 2);
    assert_int_equal(r[1].start, T0 + 4 * DAY);
    assert_int_equal(r[1].end, T0 + 4 * DAY + 3 * 3600);
    free(r);
    dav_ical_free(c);
}

static void test_ranges_overrides(void **state)
{
    /* the second occurrence is moved a week later, the third is cancelled by EXDATE */
    const char *body =
        EV("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\n"
           "RRULE:FREQ=DAILY;COUNT=4\r\nEXDATE:20240103T100000Z\r\n") "BEGIN:VEVENT\r\nUID:"
                                                                      "ev1\r\nRECURRENCE-ID:"
                                                                      "20240102T100000Z\r\n"
                                                                      "DTSTART:"
                                                                      "20240109T100000Z\r\nDTEND:"
                                                                      "20240109T120000Z\r\nEND:"
                                                                      "VEVENT\r\n";
    const int64_t want[] = {T0, T0 + 3 * DAY, T0 + 8 * DAY};
    expect_starts(body, T0 + 365 * DAY, want, 3, 1);

    /* THISANDFUTURE: from the third on, two hours later */
    const char *fut = EV("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\n"
                         "RRULE:FREQ=DAILY;COUNT=4\r\n") "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-ID;"
                                                         "RANGE=THISANDFUTURE:20240103T100000Z\r\n"
                                                         "DTSTART:20240103T120000Z\r\nDURATION:"
                                                         "PT1H\r\nEND:VEVENT\r\n";
    const int64_t fw[] = {T0, T0 + DAY, T0 + 2 * DAY + 7200, T0 + 3 * DAY + 7200};
    expect_starts(fut, T0 + 365 * DAY, fw, 4, 1);
}

static void test_ranges_infinite(void **state)
{
    struct dav_ical *c = parse_ok(EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=DAILY\r\n"));
    struct store_range *r;
    size_t n;
    int64_t cu;

    ranges(c, T0 + 9 * DAY + 3600, &r, &n, &cu);
    assert_int_equal(n, 10);
    assert_int_equal(r[9].start, T0 + 9 * DAY);
    assert_true(cu >= T0 + 9 * DAY + 3600 && cu < T0 + 10 * DAY);
    free(r);
    /* the number of listed occurrences is bounded; the index is complete up to the cap */
    ranges(c, T0 + 100 * 365 * DAY, &r, &n, &cu);
    assert_int_equal(n, 10000);
    assert_int_equal(r[9999].start, T0 + 9999 * DAY);
    assert_true(cu >= T0 + 9999 * DAY && cu < T0 + 10000 * DAY);
    free(r);
    dav_ical_free(c);

    /* an override of an occurrence beyond the horizon is still listed */
    c = parse_ok(EV(
        "DTSTART:20240101T100000Z\r\nRRULE:FREQ=DAILY\r\n") "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-"
                                                            "ID:20250101T100000Z\r\n"
                                                            "DTSTART:20240105T130000Z\r\nEND:"
                                                            "VEVENT\r\n");
    ranges(c, T0 + 2 * DAY, &r, &n, &cu);
    assert_int_equal(n, 4);
    assert_int_equal(r[3].start, T0 + 4 * DAY + 3 * 3600);
    free(r);
    dav_ical_free(c);
}

static void test_ranges_todo_journal(void **state)
{
#define TD(x) "BEGIN:VTODO\r\nUID:t\r\n" x "END:VTODO\r\n"
    /* DTSTART+DURATION: start <= S+D and end > S */
    one_range(TD("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\n"), T0, T0 + 3601);
    /* DTSTART+DUE: start < DUE and end > S */
    one_range(TD("DTSTART:20240101T100000Z\r\nDUE:20240101T120000Z\r\n"), T0, T0 + 7200);
    /* DTSTART only: start <= S < end */
    one_range(TD("DTSTART:20240101T100000Z\r\n"), T0, T0);
    /* DUE only: start < DUE <= end */
    one_range(TD("DUE:20240101T100000Z\r\n"), T0 - 1, T0);
    /* COMPLETED and CREATED: the closed span between them */
    one_range(TD("CREATED:20240101T100000Z\r\nCOMPLETED:20240102T100000Z\r\n"), T0 - 1,
              T0 + DAY + 1);
    /* COMPLETED only */
    one_range(TD("COMPLETED:20240101T100000Z\r\n"), T0 - 1, T0 + 1);
    /* CREATED only: everything after it */
    one_range(TD("CREATED:20240101T100000Z\r\n"), T0, INT64_MAX);
    /* nothing: all time */
    one_range(TD("SUMMARY:someday\r\n"), INT64_MIN, INT64_MAX);
    /* journals: a date-time is a point, a date a day, none no range */
    one_range("BEGIN:VJOURNAL\r\nUID:j\r\nDTSTART:20240101T100000Z\r\nEND:VJOURNAL\r\n", T0, T0);
    one_range("BEGIN:VJOURNAL\r\nUID:j\r\nDTSTART;VALUE=DATE:20240101\r\nEND:VJOURNAL\r\n", JAN1,
              JAN1 + DAY);
    struct dav_ical *c = parse_ok("BEGIN:VJOURNAL\r\nUID:j\r\nEND:VJOURNAL\r\n");
    struct store_range *r;
    size_t n;
    int64_t cu;
    ranges(c, T0, &r, &n, &cu);
    assert_int_equal(n, 0);
    assert_true(cu == INT64_MAX);
    free(r);
    dav_ical_free(c);
}

/* ---- filters ---- */

static xmlDocPtr doc;

static struct dav_ical_filter *filter_of(const char *inner, const char **pre, int want_ok)
{
    char xml[4096];
    struct dav_ical_filter *f = NULL;
    char err[256];
    const char *p = NULL;
    int rc;

    snprintf(xml, sizeof(xml), "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\">%s</C:filter>",
             inner);
    doc = xmlReadMemory(xml, (int)strlen(xml), "f.xml", NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    rc = dav_ical_filter_compile(xmlDocGetRootElement(doc), &f, &p, err, sizeof(err));
    xmlFreeDoc(doc);
    if (want_ok && rc != 0)
        fail_msg("filter refused: %s", err);
    if (!want_ok) {
        assert_int_equal(rc, -1);
        assert_null(f);
        *pre = p;
    }
    return f;
}

static int matches(const char *filter_inner, const char *body)
{
    struct dav_ical_filter *f = filter_of(filter_inner, NULL, 1);
    struct dav_ical *c = parse_ok(body);
    int m = dav_ical_filter_match(f, c);
    dav_ical_free(c);
    dav_ical_filter_free(f);
    return m;
}

#define VCAL_EV(x)                                                                                 \
    "<C:comp-filter name=\"VCALENDAR\"><C:comp-filter name=\"VEVENT\">" x                          \
    "</C:comp-filter></C:comp-filter>"
#define TR(s, e) "<C:time-range start=\"" s "\" end=\"" e "\"/>"

static void test_filter_time_range(void **state)
{
    const char *weekly =
        EV("DTSTART;TZID=Europe/Berlin:20240318T090000\r\nDURATION:PT1H\r\n"
           "RRULE:FREQ=WEEKLY;COUNT=10\r\nEXDATE;TZID=Europe/Berlin:20240401T090000\r\n");
    /* the second is 2024-03-25 08:00Z; after the DST change the third (04-01 07:00Z) is
     * excluded and the fourth is 04-08 07:00Z */
    assert_int_equal(matches(VCAL_EV(TR("20240325T073000Z", "20240325T083000Z")), weekly), 1);
    assert_int_equal(matches(VCAL_EV(TR("20240325T063000Z", "20240325T073000Z")), weekly), 0);
    assert_int_equal(matches(VCAL_EV(TR("20240401T000000Z", "20240402T000000Z")), weekly), 0);
    assert_int_equal(matches(VCAL_EV(TR("20240408T065959Z", "20240408T070001Z")), weekly), 1);
    /* an hour off: 08:00Z was the winter time, gone after the change */
    assert_int_equal(matches(VCAL_EV(TR("20240408T080000Z", "20240408T090000Z")), weekly), 0);
    /* after the last one */
    assert_int_equal(matches(VCAL_EV(TR("20240601T000000Z", "20250101T000000Z")), weekly), 0);
    /* open-ended ranges */
    assert_int_equal(matches(VCAL_EV("<C:time-range start=\"20240520T000000Z\"/>"), weekly), 1);
    assert_int_equal(matches(VCAL_EV("<C:time-range start=\"20240521T000000Z\"/>"), weekly), 0);
    assert_int_equal(matches(VCAL_EV("<C:time-range end=\"20240318T080001Z\"/>"), weekly), 1);
    assert_int_equal(matches(VCAL_EV("<C:time-range end=\"20240318T080000Z\"/>"), weekly), 0);
    /* a moved override: into the window and out of it */
    const char *moved = EV("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT="
                           "3\r\n") "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-ID:20240102T100000Z\r\n"
                                    "DTSTART:20240110T100000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n";
    assert_int_equal(matches(VCAL_EV(TR("20240102T000000Z", "20240103T000000Z")), moved), 0);
    assert_int_equal(matches(VCAL_EV(TR("20240110T000000Z", "20240111T000000Z")), moved), 1);
    /* zero-length event at the window's start matches, at its end does not */
    const char *point = EV("DTSTART:20240101T100000Z\r\n");
    assert_int_equal(matches(VCAL_EV(TR("20240101T100000Z", "20240101T110000Z")), point), 1);
    assert_int_equal(matches(VCAL_EV(TR("20240101T090000Z", "20240101T100000Z")), point), 0);
    /* all-day */
    const char *allday = EV("DTSTART;VALUE=DATE:20240101\r\n");
    assert_int_equal(matches(VCAL_EV(TR("20240101T230000Z", "20240102T010000Z")), allday), 1);
    assert_int_equal(matches(VCAL_EV(TR("20240102T000000Z", "20240102T010000Z")), allday), 0);
    /* a task with no dates matches any range; a VEVENT filter never matches a task */
    const char *todo = "BEGIN:VTODO\r\nUID:t\r\nSUMMARY:x\r\nEND:VTODO\r\n";
    assert_int_equal(
        matches("<C:comp-filter name=\"VCALENDAR\"><C:comp-filter name=\"VTODO\">" TR(
                    "20300101T000000Z", "20300102T000000Z") "</C:comp-filter></C:comp-filter>",
                todo),
        1);
    assert_int_equal(matches(VCAL_EV(""), todo), 0);
    assert_int_equal(matches(VCAL_EV(""), point), 1);
    /* a daily rule from 1990 tested in 2026: 01:00 Tokyo is 16:00Z the day before */
    const char *old = EV("DTSTART;TZID=Asia/Tokyo:19900101T010000\r\nDURATION:PT1H\r\n"
                         "RRULE:FREQ=DAILY\r\n");
    assert_int_equal(matches(VCAL_EV(TR("20260309T165959Z", "20260309T170001Z")), old), 1);
    assert_int_equal(matches(VCAL_EV(TR("20260309T170000Z", "20260310T160000Z")), old), 0);
    /* fast-forwarded rules keep their phase: every other Monday since 2000-01-03 */
    const char *biweekly = EV("DTSTART:20000103T100000Z\r\nDURATION:PT1H\r\n"
                              "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU\r\n");
    assert_int_equal(matches(VCAL_EV(TR("20260105T000000Z", "20260107T000000Z")), biweekly), 0);
    assert_int_equal(matches(VCAL_EV(TR("20260112T000000Z", "20260113T000000Z")), biweekly), 1);
    assert_int_equal(matches(VCAL_EV(TR("20260113T103000Z", "20260113T110000Z")), biweekly), 1);
    assert_int_equal(matches(VCAL_EV(TR("20260114T000000Z", "20260126T000000Z")), biweekly), 0);
    const char *days = EV("DTSTART;VALUE=DATE:19900101\r\nRRULE:FREQ=DAILY;INTERVAL=3\r\n");
    /* 2026-01-01 is day 13149 after 1990-01-01, a multiple of 3 */
    assert_int_equal(matches(VCAL_EV(TR("20260101T120000Z", "20260101T130000Z")), days), 1);
    assert_int_equal(matches(VCAL_EV(TR("20260102T000000Z", "20260104T000000Z")), days), 0);
    /* past its step budget an expansion answers yes rather than hide the event */
    const char *hourly = EV("DTSTART:19900101T000000Z\r\nRRULE:FREQ=HOURLY;COUNT=400000\r\n");
    assert_int_equal(matches(VCAL_EV(TR("19900101T010001Z", "19900101T015959Z")), hourly), 0);
    assert_int_equal(matches(VCAL_EV(TR("20260101T010001Z", "20260101T015959Z")), hourly), 1);
}

static void test_filter_window(void **state)
{
    struct dav_ical_filter *f =
        filter_of(VCAL_EV(TR("20240101T000000Z", "20240201T000000Z")), NULL, 1);
    int64_t s, e;
    assert_int_equal(dav_ical_filter_window(f, &s, &e), 1);
    assert_int_equal(s, JAN1);
    assert_int_equal(e, JAN1 + 31 * DAY);
    dav_ical_filter_free(f);
    f = filter_of(VCAL_EV("<C:time-range start=\"20240101T000000Z\"/>"), NULL, 1);
    assert_int_equal(dav_ical_filter_window(f, &s, &e), 1);
    assert_int_equal(s, JAN1);
    assert_true(e == INT64_MAX);
    dav_ical_filter_free(f);
    f = filter_of(VCAL_EV(""), NULL, 1);
    assert_int_equal(dav_ical_filter_window(f, &s, &e), 0);
    dav_ical_filter_free(f);
}

/* Which filters the occurrence index answers alone: one component kind and a time range,
 * nothing else. */
static void test_filter_simple(void **state)
{
    static const struct {
        const char *inner;
        int simple;
        unsigned kind;
    } cases[] = {
        {VCAL_EV(TR("20240101T000000Z", "20240201T000000Z")), 1, DAV_ICAL_VEVENT},
        {"<C:comp-filter name=\"VCALENDAR\"><C:comp-filter name=\"VTODO\">"
         "<C:time-range start=\"20240101T000000Z\"/></C:comp-filter></C:comp-filter>",
         1, DAV_ICAL_VTODO},
        {VCAL_EV(""), 0, 0},
        {VCAL_EV(TR("20240101T000000Z", "20240201T000000Z")
                     "<C:prop-filter name=\"SUMMARY\"><C:text-match>x</C:text-match>"
                     "</C:prop-filter>"),
         0, 0},
        {VCAL_EV(TR("20240101T000000Z", "20240201T000000Z")
                     "<C:comp-filter name=\"VALARM\"/>"),
         0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dav_ical_filter *f = filter_of(cases[i].inner, NULL, 1);
        unsigned kind = 0;
        assert_int_equal(dav_ical_filter_simple(f, &kind), cases[i].simple);
        if (cases[i].simple)
            assert_int_equal(kind, cases[i].kind);
        dav_ical_filter_free(f);
    }
}

static void test_filter_text_props(void **state)
{
    const char *ev = EV("DTSTART:20240101T100000Z\r\nSUMMARY:Team MEETING\\, weekly\r\n"
                        "ATTENDEE;PARTSTAT=ACCEPTED;CN=\"Ann\":mailto:ann@example.com\r\n"
                        "ATTENDEE;PARTSTAT=DECLINED:mailto:bob@example.com\r\n"
                        "CATEGORIES:Work,Blue\r\n");
#define PF(name, x) "<C:prop-filter name=\"" name "\">" x "</C:prop-filter>"
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "<C:text-match>meeting</C:text-match>")), ev),
                     1);
    assert_int_equal(
        matches(VCAL_EV(PF("summary", "<C:text-match>meeting, week</C:text-match>")), ev), 1);
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "<C:text-match collation=\"i;octet\">meeting"
                                                   "</C:text-match>")),
                             ev),
                     0);
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "<C:text-match collation=\"i;octet\">MEETING"
                                                   "</C:text-match>")),
                             ev),
                     1);
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "<C:text-match negate-condition=\"yes\">"
                                                   "meeting</C:text-match>")),
                             ev),
                     0);
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "<C:text-match negate-condition=\"yes\">"
                                                   "lunch</C:text-match>")),
                             ev),
                     1);
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "<C:text-match>lunch</C:text-match>")), ev), 0);
    assert_int_equal(matches(VCAL_EV(PF("CATEGORIES", "<C:text-match>blue</C:text-match>")), ev),
                     1);
    /* is-not-defined, and plain presence */
    assert_int_equal(matches(VCAL_EV(PF("LOCATION", "<C:is-not-defined/>")), ev), 1);
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "<C:is-not-defined/>")), ev), 0);
    assert_int_equal(matches(VCAL_EV(PF("SUMMARY", "")), ev), 1);
    assert_int_equal(matches(VCAL_EV(PF("LOCATION", "")), ev), 0);
    /* param-filter: a property whose parameter matches */
    assert_int_equal(
        matches(VCAL_EV(PF("ATTENDEE", "<C:text-match>bob</C:text-match>"
                                       "<C:param-filter name=\"PARTSTAT\"><C:text-match>"
                                       "declined</C:text-match></C:param-filter>")),
                ev),
        1);
    assert_int_equal(
        matches(VCAL_EV(PF("ATTENDEE", "<C:text-match>bob</C:text-match>"
                                       "<C:param-filter name=\"PARTSTAT\"><C:text-match>"
                                       "accepted</C:text-match></C:param-filter>")),
                ev),
        0);
    assert_int_equal(matches(VCAL_EV(PF("ATTENDEE", "<C:param-filter name=\"CN\"><C:text-match>ann"
                                                    "</C:text-match></C:param-filter>")),
                             ev),
                     1);
    assert_int_equal(matches(VCAL_EV(PF("ATTENDEE", "<C:param-filter name=\"ROLE\">"
                                                    "<C:is-not-defined/></C:param-filter>")),
                             ev),
                     1);
    /* time-range on a property */
    assert_int_equal(
        matches(VCAL_EV(PF("DTSTAMP", TR("20240101T000000Z", "20240101T000001Z"))), ev), 1);
    assert_int_equal(
        matches(VCAL_EV(PF("DTSTAMP", TR("20240102T000000Z", "20240103T000000Z"))), ev), 0);
    /* comp is-not-defined */
    assert_int_equal(matches("<C:comp-filter name=\"VCALENDAR\"><C:comp-filter name=\"VTODO\">"
                             "<C:is-not-defined/></C:comp-filter></C:comp-filter>",
                             ev),
                     1);
    assert_int_equal(matches(VCAL_EV("<C:is-not-defined/>"), ev), 0);
    /* RDATE occurrences tested with a prop-filter (which reads the same component) */
    const char *rd = EV("DTSTART:20240101T100000Z\r\nRDATE:20240105T100000Z\r\n"
                        "RDATE:20240110T100000Z\r\nRDATE:20240115T100000Z\r\nSUMMARY:rd\r\n");
    assert_int_equal(matches(VCAL_EV(TR("20240115T000000Z", "20240116T000000Z")
                                         PF("SUMMARY", "<C:text-match>rd</C:text-match>")),
                             rd),
                     1);
    assert_int_equal(matches(VCAL_EV(TR("20240116T000000Z", "20240117T000000Z")
                                         PF("SUMMARY", "<C:text-match>rd</C:text-match>")),
                             rd),
                     0);
    /* prop-filter and time-range together test the same occurrence's component */
    const char *ovr = EV("DTSTART:20240101T100000Z\r\nSUMMARY:regular\r\nRRULE:FREQ=DAILY;COUNT="
                         "3\r\n") "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-ID:20240102T100000Z\r\n"
                                  "DTSTART:20240102T100000Z\r\nSUMMARY:special\r\nEND:VEVENT\r\n";
    assert_int_equal(matches(VCAL_EV(TR("20240102T000000Z", "20240103T000000Z")
                                         PF("SUMMARY", "<C:text-match>special</C:text-match>")),
                             ovr),
                     1);
    assert_int_equal(matches(VCAL_EV(TR("20240103T000000Z", "20240104T000000Z")
                                         PF("SUMMARY", "<C:text-match>special</C:text-match>")),
                             ovr),
                     0);
}

static void test_filter_alarm(void **state)
{
    const char *ev = EV("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=5\r\n"
                        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT15M\r\n"
                        "END:VALARM\r\n");
#define AL(x) VCAL_EV("<C:comp-filter name=\"VALARM\">" x "</C:comp-filter>")
    /* the third occurrence's alarm at 2024-01-03 09:45Z */
    assert_int_equal(matches(AL(TR("20240103T094000Z", "20240103T095000Z")), ev), 1);
    assert_int_equal(matches(AL(TR("20240103T095000Z", "20240103T100000Z")), ev), 0);
    assert_int_equal(matches(AL(TR("20240110T094000Z", "20240110T095000Z")), ev), 0);
    assert_int_equal(matches(AL(""), ev), 1);
    assert_int_equal(matches(AL(""), EV("DTSTART:20240101T100000Z\r\n")), 0);
}

static void test_filter_invalid(void **state)
{
    const char *pre;
    filter_of(VCAL_EV("<C:time-range/>"), &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of(VCAL_EV("<C:time-range start=\"2024-01-01\"/>"), &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of(VCAL_EV("<C:time-range start=\"20240101T000000\"/>"), &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of(VCAL_EV(TR("20240102T000000Z", "20240101T000000Z")), &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of(VCAL_EV(PF("SUMMARY", "<C:text-match collation=\"i;unknown\">x</C:text-match>")),
              &pre, 0);
    assert_string_equal(pre, "supported-collation");
    filter_of("<C:comp-filter name=\"VEVENT\"/>", &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of("", &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of("<C:comp-filter name=\"VCALENDAR\"/><C:comp-filter name=\"VCALENDAR\"/>", &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of(VCAL_EV("<C:comp-filter name=\"VFOO\"/>"), &pre, 0);
    assert_string_equal(pre, "supported-filter");
    filter_of(VCAL_EV("<C:comp-filter/>"), &pre, 0);
    assert_string_equal(pre, "valid-filter");
    filter_of(VCAL_EV(PF("SUMMARY", "<C:is-not-defined/><C:text-match>x</C:text-match>")), &pre, 0);
    assert_string_equal(pre, "valid-filter");
    /* deep nesting is refused, not recursed into */
    char deep[4096] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "<C:comp-filter name=\"VALARM\">");
    for (int i = 0; i < 20; i++)
        strcat(deep, "</C:comp-filter>");
    char inner[4200];
    snprintf(inner, sizeof(inner), VCAL_EV("%s"), deep);
    filter_of(inner, &pre, 0);
    assert_string_equal(pre, "valid-filter");
}

/* ---- calendar-data ---- */

static char *render(const char *cd_inner, const char *body, int *needs)
{
    char xml[4096];
    struct dav_ical_data *d = NULL;
    char err[256];
    size_t len;

    snprintf(xml, sizeof(xml),
             "<C:calendar-data xmlns:C=\"urn:ietf:params:xml:ns:caldav\">%s</C:calendar-data>",
             cd_inner);
    doc = xmlReadMemory(xml, (int)strlen(xml), "d.xml", NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    if (dav_ical_data_compile(xmlDocGetRootElement(doc), &d, err, sizeof(err)) != 0)
        fail_msg("calendar-data refused: %s", err);
    xmlFreeDoc(doc);
    if (needs)
        *needs = dav_ical_data_needs_parse(d);
    struct dav_ical *c = parse_ok(body);
    char *out = dav_ical_data_render(d, c, &len);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    /* every line ends in CRLF and none is longer than 75 octets */
    for (const char *p = out; *p;) {
        const char *e = strstr(p, "\r\n");
        assert_non_null(e);
        assert_true(e - p <= 75);
        assert_null(memchr(p, '\n', (size_t)(e - p)));
        p = e + 2;
    }
    dav_ical_free(c);
    dav_ical_data_free(d);
    return out;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_data_expand(void **state)
{
    const char *body =
        "BEGIN:VTIMEZONE\r\nTZID:Fixed\r\nBEGIN:STANDARD\r\n"
        "DTSTART:19700101T000000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0200\r\n"
        "END:STANDARD\r\nEND:VTIMEZONE\r\n" EV(
            "DTSTART;TZID=Fixed:20240101T120000\r\nDTEND;TZID=Fixed:20240101T130000\r\n"
            "SUMMARY:daily\r\nRRULE:FREQ=DAILY;COUNT=5\r\nEXDATE;TZID=Fixed:"
            "20240103T120000\r\n") "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-ID;TZID=Fixed:"
                                   "20240104T120000\r\n"
                                   "DTSTART;TZID=Fixed:20240104T150000\r\nDTEND;TZID=Fixed:"
                                   "20240104T160000\r\n"
                                   "SUMMARY:moved\r\nEND:VEVENT\r\n";
    int needs;
    char *out =
        render("<C:expand start=\"20240102T000000Z\" end=\"20240105T000000Z\"/>", body, &needs);
    assert_int_equal(needs, 1);
    /* 01-02 from the rule, 01-03 excluded, 01-04 moved to 13:00Z */
    assert_int_equal(count(out, "BEGIN:VEVENT\r\n"), 2);
    assert_non_null(strstr(out, "DTSTART:20240102T100000Z\r\n"));
    assert_non_null(strstr(out, "DTEND:20240102T110000Z\r\n"));
    assert_non_null(strstr(out, "RECURRENCE-ID:20240102T100000Z\r\n"));
    assert_non_null(strstr(out, "DTSTART:20240104T130000Z\r\n"));
    assert_non_null(strstr(out, "RECURRENCE-ID:20240104T100000Z\r\n"));
    assert_non_null(strstr(out, "SUMMARY:moved\r\n"));
    assert_null(strstr(out, "RRULE"));
    assert_null(strstr(out, "EXDATE"));
    assert_null(strstr(out, "VTIMEZONE"));
    assert_null(strstr(out, "TZID"));
    assert_true(strncmp(out, "BEGIN:VCALENDAR\r\n", 17) == 0);
    assert_non_null(strstr(out, "VERSION:2.0\r\n"));
    /* the first instance comes first */
    assert_true(strstr(out, "20240102T100000Z") < strstr(out, "20240104T130000Z"));
    free(out);

    /* THISANDFUTURE: later occurrences move with the override */
    out = render(
        "<C:expand start=\"20240103T000000Z\" end=\"20240105T000000Z\"/>",
        EV("DTSTART:20240101T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=5\r\n") "BEGIN:"
                                                                                        "VEVENT\r\n"
                                                                                        "UID:"
                                                                                        "ev1\r\nREC"
                                                                                        "URRENCE-"
                                                                                        "ID;RANGE="
                                                                                        "THISANDFUT"
                                                                                        "URE:"
                                                                                        "20240103T1"
                                                                                        "00000Z\r\n"
                                                                                        "DTSTART:"
                                                                                        "20240103T1"
                                                                                        "20000Z\r\n"
                                                                                        "DURATION:"
                                                                                        "PT1H\r\nSU"
                                                                                        "MMARY:"
                                                                                        "later\r\nE"
                                                                                        "ND:"
                                                                                        "VEVENT\r"
                                                                                        "\n",
        NULL);
    assert_int_equal(count(out, "BEGIN:VEVENT\r\n"), 2);
    assert_int_equal(count(out, "SUMMARY:later\r\n"), 2);
    assert_non_null(strstr(out, "DTSTART:20240103T120000Z\r\n"));
    assert_non_null(strstr(out, "RECURRENCE-ID:20240103T100000Z\r\n"));
    assert_non_null(strstr(out, "DTSTART:20240104T120000Z\r\n"));
    assert_non_null(strstr(out, "RECURRENCE-ID:20240104T100000Z\r\n"));
    assert_null(strstr(out, "RANGE="));
    free(out);

    /* floating times come back in UTC too */
    out = render("<C:expand start=\"20240101T000000Z\" end=\"20240103T000000Z\"/>",
                 EV("DTSTART:20240101T100000\r\nDTEND:20240101T110000\r\n"), NULL);
    assert_non_null(strstr(out, "DTSTART:20240101T100000Z\r\n"));
    assert_non_null(strstr(out, "DTEND:20240101T110000Z\r\n"));
    assert_null(strstr(out, "RECURRENCE-ID"));
    free(out);

    /* all-day instances keep DATE values */
    out = render("<C:expand start=\"20240101T000000Z\" end=\"20240103T000000Z\"/>",
                 EV("DTSTART;VALUE=DATE:20240101\r\nRRULE:FREQ=DAILY\r\n"), NULL);
    assert_int_equal(count(out, "BEGIN:VEVENT\r\n"), 2);
    assert_non_null(strstr(out, "DTSTART;VALUE=DATE:20240102\r\n"));
    assert_non_null(strstr(out, "RECURRENCE-ID;VALUE=DATE:20240102\r\n"));
    free(out);
}

static void test_data_limit_and_select(void **state)
{
    const char *body =
        EV("DTSTART:20240101T100000Z\r\nSUMMARY:daily\r\nRRULE:FREQ=DAILY\r\n"
           "LOCATION:Room 1\r\n") "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-ID:20240102T100000Z\r\n"
                                  "DTSTART:20240102T100000Z\r\nSUMMARY:second\r\nEND:VEVENT\r\n"
                                  "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-ID:20240301T100000Z\r\n"
                                  "DTSTART:20240301T100000Z\r\nSUMMARY:march\r\nEND:VEVENT\r\n";
    char *out = render("<C:limit-recurrence-set start=\"20240101T000000Z\" "
                       "end=\"20240201T000000Z\"/>",
                       body, NULL);
    assert_int_equal(count(out, "BEGIN:VEVENT\r\n"), 2);
    assert_non_null(strstr(out, "SUMMARY:daily"));
    assert_non_null(strstr(out, "SUMMARY:second"));
    assert_null(strstr(out, "SUMMARY:march"));
    assert_non_null(strstr(out, "RRULE:FREQ=DAILY"));
    free(out);

    /* comp/prop selection, with novalue */
    int needs;
    out = render("<C:comp name=\"VCALENDAR\"><C:prop name=\"VERSION\"/>"
                 "<C:comp name=\"VEVENT\"><C:prop name=\"UID\"/><C:prop name=\"SUMMARY\"/>"
                 "<C:prop name=\"LOCATION\" novalue=\"yes\"/></C:comp></C:comp>",
                 body, &needs);
    assert_int_equal(needs, 1);
    assert_string_equal(out,
                        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
                        "BEGIN:VEVENT\r\nUID:ev1\r\nSUMMARY:daily\r\nLOCATION:\r\nEND:VEVENT\r\n"
                        "BEGIN:VEVENT\r\nUID:ev1\r\nSUMMARY:second\r\nEND:VEVENT\r\n"
                        "BEGIN:VEVENT\r\nUID:ev1\r\nSUMMARY:march\r\nEND:VEVENT\r\n"
                        "END:VCALENDAR\r\n");
    free(out);

    /* an empty calendar-data asks for the stored bytes */
    out = render("", body, &needs);
    assert_int_equal(needs, 0);
    free(out);
}

static void test_data_folding(void **state)
{
    char body[1024];
    char summary[400] = "";
    for (int i = 0; i < 60; i++)
        strcat(summary, "\xc3\xa4x"); /* 3 octets each, 2-byte UTF-8 sequences */
    snprintf(body, sizeof(body), EV("DTSTART:20240101T100000Z\r\nSUMMARY:%s\r\n"), summary);
    char *out = render("<C:comp name=\"VCALENDAR\"><C:allprop/><C:allcomp/></C:comp>", body, NULL);
    /* unfolded, the text comes back whole; no fold splits a UTF-8 sequence */
    char *u = malloc(strlen(out) + 1);
    size_t o = 0;
    for (size_t i = 0; out[i]; i++) {
        if (out[i] == '\r' && out[i + 1] == '\n' && out[i + 2] == ' ') {
            assert_true(((unsigned char)out[i + 3] & 0xC0) != 0x80);
            i += 2;
            continue;
        }
        u[o++] = out[i];
    }
    u[o] = 0;
    char want[512];
    snprintf(want, sizeof(want), "SUMMARY:%s\r\n", summary);
    assert_non_null(strstr(u, want));
    free(u);
    free(out);
}

static void test_data_invalid(void **state)
{
    static const char *const bad[] = {
        "<C:expand start=\"20240101T000000Z\"/>",
        "<C:expand start=\"20240102T000000Z\" end=\"20240101T000000Z\"/>",
        "<C:expand start=\"20240101T000000Z\" end=\"20240102T000000Z\"/>"
        "<C:limit-recurrence-set start=\"20240101T000000Z\" end=\"20240102T000000Z\"/>",
        "<C:comp name=\"VEVENT\"/>",
        /* regression: a selection failing halfway leaked (LeakSanitizer in the ASan run) */
        "<C:comp name=\"VCALENDAR\"><C:comp x=\"1\"/></C:comp>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char xml[1024];
        struct dav_ical_data *d = NULL;
        char err[128] = "";
        snprintf(xml, sizeof(xml),
                 "<C:calendar-data xmlns:C=\"urn:ietf:params:xml:ns:caldav\">%s</C:calendar-data>",
                 bad[i]);
        doc = xmlReadMemory(xml, (int)strlen(xml), "d.xml", NULL, XML_PARSE_NONET);
        assert_int_equal(dav_ical_data_compile(xmlDocGetRootElement(doc), &d, err, sizeof(err)),
                         -1);
        assert_null(d);
        assert_true(err[0] != 0);
        xmlFreeDoc(doc);
    }
    const char *ct = "<C:calendar-data xmlns:C=\"urn:ietf:params:xml:ns:caldav\" "
                     "content-type=\"application/json\"/>";
    struct dav_ical_data *d = NULL;
    char err[128];
    doc = xmlReadMemory(ct, (int)strlen(ct), "d.xml", NULL, XML_PARSE_NONET);
    assert_int_equal(dav_ical_data_compile(xmlDocGetRootElement(doc), &d, err, sizeof(err)), -1);
    xmlFreeDoc(doc);
}

/* ---- free-busy ---- */

static void test_freebusy(void **state)
{
    struct dav_ical_fb *fb = dav_ical_fb_new(JAN1, JAN1 + 2 * DAY);
    static const char *const evs[] = {
        /* busy 10-11, merged with 10:30-12 */
        EV("DTSTART:20240101T100000Z\r\nDTEND:20240101T110000Z\r\n"),
        EV("DTSTART:20240101T103000Z\r\nDTEND:20240101T120000Z\r\n"),
        /* tentative */
        EV("DTSTART:20240101T140000Z\r\nDURATION:PT1H\r\nSTATUS:TENTATIVE\r\n"),
        /* free: transparent, cancelled, zero length */
        EV("DTSTART:20240101T150000Z\r\nDURATION:PT1H\r\nTRANSP:TRANSPARENT\r\n"),
        EV("DTSTART:20240101T160000Z\r\nDURATION:PT1H\r\nSTATUS:CANCELLED\r\n"),
        EV("DTSTART:20240101T170000Z\r\n"),
        /* daily from the day before; clipped at the range's start and its end */
        EV("DTSTART:20231231T230000Z\r\nDURATION:PT2H\r\nRRULE:FREQ=DAILY\r\n"),
        /* a cancelled override of that rule's 2nd-day occurrence */
        EV("DTSTART:20231231T230000Z\r\nDURATION:PT2H\r\nRRULE:FREQ=DAILY;COUNT="
           "5\r\n") "BEGIN:VEVENT\r\nUID:ev1\r\nRECURRENCE-ID:20240101T230000Z\r\n"
                    "DTSTART:20240101T230000Z\r\nDURATION:PT2H\r\nSTATUS:"
                    "CANCELLED\r\nEND:VEVENT\r\n",
        /* a task takes no time */
        "BEGIN:VTODO\r\nUID:t\r\nDTSTART:20240101T200000Z\r\nDUE:"
        "20240101T210000Z\r\nEND:VTODO\r\n",
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        struct dav_ical *c = parse_ok(evs[i]);
        assert_int_equal(dav_ical_fb_add(fb, c), 0);
        dav_ical_free(c);
    }
    size_t len;
    char *out = dav_ical_fb_render(fb, &len);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    const char *stamp = strstr(out, "DTSTAMP:");
    assert_non_null(stamp);
    char *rest = strstr(stamp, "\r\n") + 2;
    assert_true(strncmp(out,
                        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Polaris//CalDAV//EN\r\n"
                        "BEGIN:VFREEBUSY\r\nDTSTAMP:",
                        (size_t)(stamp - out) + 8) == 0);
    assert_string_equal(rest, "DTSTART:20240101T000000Z\r\nDTEND:20240103T000000Z\r\n"
                              "FREEBUSY;FBTYPE=BUSY:20240101T000000Z/20240101T010000Z\r\n"
                              "FREEBUSY;FBTYPE=BUSY:20240101T100000Z/20240101T120000Z\r\n"
                              "FREEBUSY;FBTYPE=BUSY:20240101T230000Z/20240102T010000Z\r\n"
                              "FREEBUSY;FBTYPE=BUSY:20240102T230000Z/20240103T000000Z\r\n"
                              "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20240101T140000Z/20240101T150000Z\r\n"
                              "END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
    free(out);
    dav_ical_fb_free(fb);
    assert_null(dav_ical_fb_new(10, 10));
}

/* ---- hostile input ---- */

static void test_hostile(void **state)
{
    /* 10 MB of junk */
    size_t big = 10 * 1024 * 1024;
    char *junk = malloc(big);
    assert_non_null(junk);
    for (size_t i = 0; i < big; i++)
        junk[i] = (char)("BEGIN:VCALENDAR\r\n;:\"x\xff"[i % 22]);
    assert_string_equal(parse_err_raw(junk, big), "valid-calendar-data");
    /* junk after a real header */
    memcpy(junk, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", 30);
    assert_string_equal(parse_err_raw(junk, big), "valid-calendar-data");
    free(junk);

    /* 100,000 properties */
    size_t cap = 100000 * 16 + 256, o = 0;
    char *many = malloc(cap);
    o += (size_t)snprintf(many + o, cap - o,
                          "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n"
                          "DTSTART:20240101T100000Z\r\n");
    for (int i = 0; i < 100000; i++)
        o += (size_t)snprintf(many + o, cap - o, "X-P%d:v\r\n", i % 1000);
    o += (size_t)snprintf(many + o, cap - o, "END:VEVENT\r\nEND:VCALENDAR\r\n");
    assert_string_equal(parse_err_raw(many, o), "valid-calendar-data");
    free(many);

    /* deep nesting */
    char deep[8192] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n";
    for (int i = 0; i < 200; i++)
        strcat(deep, "BEGIN:VALARM\r\n");
    assert_string_equal(parse_err_raw(deep, strlen(deep)), "valid-calendar-data");

    /* many components */
    size_t ccap = 6000 * 64, co = 0;
    char *comps = malloc(ccap);
    co += (size_t)snprintf(comps + co, ccap - co, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
    for (int i = 0; i < 6000; i++)
        co += (size_t)snprintf(comps + co, ccap - co, "BEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\n");
    co += (size_t)snprintf(comps + co, ccap - co, "END:VCALENDAR\r\n");
    assert_string_equal(parse_err_raw(comps, co), "valid-calendar-object-resource");
    free(comps);

    /* garbage dates and rules */
    static const char *const bad[] = {
        EV("DTSTART:99999999T999999Z\r\n"),
        EV("DTSTART:00000000T000000Z\r\n"),
        EV("DTSTART:20240101T100000Z\r\nEXDATE:2024\r\n"),
        EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=DAILY;UNTIL=20241340T000000Z\r\n"),
        EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=SECONDLY;BYDAY=MO\r\n"),
        EV("DTSTART:20240101T100000Z\r\nRRULE:FREQ=DAILY;INTERVAL=0\r\n"),
        EV("DTSTART;TZID=../../etc/passwd:20240101T100000\r\n"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *s = cal(bad[i]);
        struct dav_ical *c = NULL;
        const char *pre = NULL;
        char err[128];
        if (dav_ical_parse(s, strlen(s), &c, &pre, err, sizeof(err)) == 0) {
            /* accepted leniently: it must still expand safely */
            struct store_range *r;
            size_t n;
            int64_t cu;
            assert_int_equal(dav_ical_ranges(c, T0 + 3650 * DAY, &r, &n, &cu), 0);
            free(r);
            dav_ical_free(c);
            fail_msg("case %zu accepted", i);
        }
        free(s);
    }

    /* far-future and far-past dates expand without trouble */
    struct dav_ical *c = parse_ok(EV("DTSTART;TZID=Europe/Berlin:99991230T100000\r\n"));
    struct store_range *r;
    size_t n;
    int64_t cu;
    ranges(c, INT64_MAX, &r, &n, &cu);
    assert_int_equal(n, 1);
    free(r);
    dav_ical_free(c);
    /* far future: summer time still applies (10:00 CEST is 08:00Z) */
    c = parse_ok(EV("DTSTART;TZID=Europe/Berlin:30000701T100000\r\n"));
    ranges(c, INT64_MAX, &r, &n, &cu);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].start, dav_ical_days_from_civil(3000, 7, 1) * DAY + 8 * 3600);
    free(r);
    dav_ical_free(c);
    /* libical cannot iterate rules that start past 2582: refused, not mis-expanded */
    assert_string_equal(parse_err(EV("DTSTART;TZID=Europe/Berlin:99991230T100000\r\n"
                                     "RRULE:FREQ=YEARLY\r\n")),
                        "valid-calendar-data");
    c = parse_ok(EV("DTSTART;VALUE=DATE:16040101\r\nRRULE:FREQ=YEARLY\r\n"));
    ranges(c, T0, &r, &n, &cu);
    assert_int_equal(n, 421); /* 1604..2024: Apple's birthdays without a year */
    assert_true(cu >= T0 && cu < INT64_MAX);
    free(r);
    dav_ical_free(c);
    c = parse_ok(EV("DTSTART;TZID=America/New_York:00010101T100000\r\nRRULE:FREQ=DAILY\r\n"));
    ranges(c, T0, &r, &n, &cu);
    assert_int_equal(n, 10000);
    assert_true(cu < T0);
    free(r);
    dav_ical_free(c);
}

/* ---- what real clients send (written for these tests in the shape each client uses) ---- */

static void test_client_shapes(void **state)
{
    /* Thunderbird: its own VTIMEZONE, X-MOZ properties, an alarm, folded description */
    const char *tb =
        "BEGIN:VCALENDAR\r\nPRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n"
        "VERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nX-LIC-LOCATION:Europe/Berlin\r\n"
        "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
        "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n"
        "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
        "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\nBEGIN:VEVENT\r\nCREATED:20240601T120000Z\r\n"
        "LAST-MODIFIED:20240601T120500Z\r\nDTSTAMP:20240601T120500Z\r\n"
        "UID:5d8a1c2e-tb-test\r\nSUMMARY:Planning\r\nRRULE:FREQ=WEEKLY;UNTIL=20240729T070000Z\r\n"
        "DTSTART;TZID=Europe/Berlin:20240701T090000\r\nDTEND;TZID=Europe/Berlin:20240701T100000\r\n"
        "TRANSP:OPAQUE\r\nX-MOZ-GENERATION:2\r\nX-MOZ-LASTACK:20240601T120600Z\r\n"
        "DESCRIPTION:A description long enough that Thunderbird folds it onto a second \r\n"
        " line\\, as it "
        "does.\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;VALUE=DURATION:-PT15M\r\n"
        "DESCRIPTION:Default Mozilla Description\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    /* iOS: Apple properties, structured location, alarm with an acknowledged time */
    const char *ios =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//iOS "
        "17.5//EN\r\nCALSCALE:GREGORIAN\r\n"
        "BEGIN:VEVENT\r\nCREATED:20240601T090000Z\r\nDTEND;VALUE=DATE:20240703\r\n"
        "DTSTAMP:20240601T090000Z\r\nDTSTART;VALUE=DATE:20240701\r\nLAST-MODIFIED:"
        "20240601T090000Z\r\n"
        "SEQUENCE:0\r\nSUMMARY:Trip\r\nTRANSP:TRANSPARENT\r\nUID:C3A1B2C4-IOS-TEST\r\n"
        "X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-APPLE-RADIUS=70;X-TITLE=\"Hotel, Main St\":"
        "geo:52.5,13.4\r\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r\nBEGIN:VALARM\r\n"
        "ACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT9H\r\nUID:A1-ALARM\r\n"
        "X-WR-ALARMUID:A1-ALARM\r\nACKNOWLEDGED:20240630T150000Z\r\nEND:VALARM\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n";
    /* Outlook CalDAV Synchronizer: Windows zone name with its VTIMEZONE, Microsoft props */
    const char *ol =
        "BEGIN:VCALENDAR\r\nPRODID:-//github.com/aluxnimm/outlookcaldavsynchronizer//NONSGML//"
        "EN\r\n"
        "VERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\n"
        "DTSTART:16011028T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n"
        "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
        "DTSTART:16010325T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n"
        "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nDTSTAMP:20240601T100000Z\r\nDTSTART;TZID=W. Europe Standard "
        "Time:20240701T090000\r\n"
        "DTEND;TZID=W. Europe Standard Time:20240701T093000\r\nSUMMARY:Standup\r\n"
        "UID:040000008200E00074C5B7101A82E008-OL\r\nRRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR\r\n"
        "CLASS:PUBLIC\r\nPRIORITY:5\r\nX-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n"
        "X-MICROSOFT-CDO-IMPORTANCE:1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    /* DAVx5 (ical4android): a task with DUE in a zone and no VTIMEZONE, percent complete */
    const char *dx =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:+//IDN bitfire.at//ical4android "
        "(org.dmfs.tasks)\r\n"
        "BEGIN:VTODO\r\nDTSTAMP:20240601T100000Z\r\nUID:3d8e-dx-task\r\nSUMMARY:Pay rent\r\n"
        "DUE;TZID=Europe/Vienna:20240701T180000\r\nPERCENT-COMPLETE:0\r\nSTATUS:NEEDS-ACTION\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n";
    /* eM Client: an invitation copy with organizer, attendees and a local UNTIL */
    const char *em =
        "BEGIN:VCALENDAR\r\nPRODID:-//eM Client/9.2.2038.0\r\nVERSION:2.0\r\n"
        "BEGIN:VEVENT\r\nUID:em-test-1\r\nDTSTART;TZID=America/New_York:20240102T100000\r\n"
        "DTEND;TZID=America/New_York:20240102T110000\r\nRRULE:FREQ=WEEKLY;UNTIL=20240116T100000\r\n"
        "ORGANIZER;CN=Ann:mailto:ann@example.com\r\n"
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Bob;RSVP=TRUE:"
        "mailto:bob@example.com\r\nSEQUENCE:1\r\nSUMMARY:Sync\r\nDTSTAMP:20240101T000000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n";
    static const struct {
        const char *name;
        size_t n;
        int64_t first, first_len;
    } want[] = {
        {"thunderbird", 5, 1719817200, 3600}, /* 2024-07-01 07:00Z, weekly to 07-29 */
        {"ios", 1, 1719792000, 2 * 86400},    /* two all-day days */
        {"outlook", 2608, 1719817200, 1800},  /* weekdays for ten years */
        {"davx5", 1, 1719849600 - 1, 1},      /* DUE 18:00 Vienna = 16:00Z */
        {"emclient", 3, 1704207600, 3600},
    };
    const char *bodies[] = {tb, ios, ol, dx, em};
    for (size_t i = 0; i < 5; i++) {
        struct dav_ical *c = NULL;
        const char *pre = NULL;
        char err[256];
        struct store_range *r;
        size_t n;
        int64_t cu;
        if (dav_ical_parse(bodies[i], strlen(bodies[i]), &c, &pre, err, sizeof(err)) != 0)
            fail_msg("%s refused: %s (%s)", want[i].name, err, pre);
        assert_int_equal(dav_ical_ranges(c, 1719792000 + 3650 * DAY, &r, &n, &cu), 0);
        if (n != want[i].n || r[0].start != want[i].first ||
            r[0].end - r[0].start != want[i].first_len)
            fail_msg("%s: %zu ranges, first [%lld, %lld)", want[i].name, n, (long long)r[0].start,
                     (long long)r[0].end);
        free(r);
        /* the whole object renders and parses again */
        size_t len;
        char *out = dav_ical_data_render(NULL, c, &len);
        struct dav_ical *back = NULL;
        assert_int_equal(dav_ical_parse(out, len, &back, &pre, err, sizeof(err)), 0);
        assert_string_equal(dav_ical_uid(back), dav_ical_uid(c));
        dav_ical_free(back);
        free(out);
        dav_ical_free(c);
    }
}

/* ---- threads ---- */

struct tcase {
    const char *body;
    int64_t first;
    size_t n;
};

static const struct tcase tcases[] = {
    {EV("DTSTART;TZID=Europe/Berlin:20240318T090000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\n"), 1710748800,
     3},
    {EV("DTSTART;TZID=America/New_York:20240102T100000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\n"),
     1704207600, 3},
    {EV("DTSTART;TZID=Tokyo Standard Time:20240101T190000\r\nRRULE:FREQ=DAILY;COUNT=30\r\n"), T0,
     30},
    {EV("DTSTART;TZID=Australia/Sydney:20240101T210000\r\nRRULE:FREQ=MONTHLY;COUNT=12\r\n"), T0,
     12},
};

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < 150; i++) {
        const struct tcase *tc = &tcases[(size_t)(id + i) % 4];
        struct dav_ical *c = NULL;
        const char *pre;
        char err[128];
        char *s = cal(tc->body);
        struct store_range *r;
        size_t n;
        int64_t cu;
        if (dav_ical_parse(s, strlen(s), &c, &pre, err, sizeof(err)) != 0)
            return (void *)1;
        free(s);
        if (dav_ical_ranges(c, T0 + 3650 * DAY, &r, &n, &cu) != 0 || n != tc->n ||
            r[0].start != tc->first) {
            dav_ical_free(c);
            return (void *)2;
        }
        free(r);
        size_t len;
        char *out = dav_ical_data_render(NULL, c, &len);
        if (!out || !strstr(out, "UID:ev1"))
            return (void *)3;
        free(out);
        dav_ical_free(c);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[6];
    for (long i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 6; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_null(rv);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads), /* first: libical's globals start cold */
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_lenient),
        cmocka_unit_test(test_windows_zones),
        cmocka_unit_test(test_parse_utc),
        cmocka_unit_test(test_ranges_single),
        cmocka_unit_test(test_ranges_recurring),
        cmocka_unit_test(test_ranges_overrides),
        cmocka_unit_test(test_ranges_infinite),
        cmocka_unit_test(test_ranges_todo_journal),
        cmocka_unit_test(test_filter_time_range),
        cmocka_unit_test(test_filter_window),
        cmocka_unit_test(test_filter_simple),
        cmocka_unit_test(test_filter_text_props),
        cmocka_unit_test(test_filter_alarm),
        cmocka_unit_test(test_filter_invalid),
        cmocka_unit_test(test_data_expand),
        cmocka_unit_test(test_data_limit_and_select),
        cmocka_unit_test(test_data_folding),
        cmocka_unit_test(test_data_invalid),
        cmocka_unit_test(test_freebusy),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_client_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
