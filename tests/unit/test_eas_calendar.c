/*
 * test_eas_calendar.c — iCalendar VEVENT ↔ ActiveSync Calendar (eas/eas_calendar.c):
 * the TIME_ZONE_INFORMATION blob of a zone with DST rules and back, times in UTC from a
 * local zone, weekly/monthly/yearly recurrences, EXDATE and override exceptions (12.1
 * ExceptionStartTime, 16.1 InstanceId), all-day events, attendees and MeetingStatus,
 * round trips iCalendar → EAS → iCalendar, and a device Change merged into the stored
 * event keeping what ActiveSync does not carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server.h"
#include "tests/unit/pim_test_util.h"

/* 170 zero bytes in base64 after a first quantum "xP///w" (Bias -60) */
#define Z170                                                                                       \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"   \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"   \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="

#define VTZ_BERLIN                                                                                 \
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"       \
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"        \
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n"                                \
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"         \
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n"

static const char *const weekly =
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n" VTZ_BERLIN
    "BEGIN:VEVENT\r\nUID:ev1@example.com\r\nDTSTAMP:20240101T000000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20300610T100000\r\nDTEND;TZID=Europe/Berlin:20300610T110000\r\n"
    "SUMMARY:Team meeting\r\nLOCATION:Room 1\r\nDESCRIPTION:Agenda:\\nitem one\r\n"
    "CATEGORIES:Work,Weekly\r\nCLASS:PRIVATE\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10\r\nEXDATE;TZID=Europe/Berlin:20300617T100000\r\n"
    "X-CUSTOM:keep me\r\nATTACH:https://example.com/a.pdf\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:ev1@example.com\r\nDTSTAMP:20240101T000000Z\r\n"
    "RECURRENCE-ID;TZID=Europe/Berlin:20300624T100000\r\n"
    "DTSTART;TZID=Europe/Berlin:20300624T140000\r\nDTEND;TZID=Europe/Berlin:20300624T150000\r\n"
    "SUMMARY:Moved meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

static void test_timezone_blob(void **state)
{
    char *xml = pim_to(eas_calendar_to_eas, EAS_V141, weekly), b64[400], tzid[128], *vtz;
    unsigned char blob[EAS_TZ_BLOB + 4];
    const char *p;
    ssize_t n;

    (void)state;
    assert_non_null(xml);
    p = strstr(xml, "<Timezone");
    assert_non_null(p);
    p = strchr(p, '>') + 1;
    snprintf(b64, sizeof(b64), "%.*s", (int)strcspn(p, "<"), p);
    n = b64_decode(b64, strlen(b64), blob, sizeof(blob), 0);
    assert_int_equal(n, EAS_TZ_BLOB);
    /* Bias -60 (UTC+1), standard from the last Sunday (5) of October at 03:00, daylight
     * from the last Sunday of March at 02:00, DaylightBias -60 */
    assert_int_equal((int32_t)(blob[0] | blob[1] << 8 | blob[2] << 16 | (uint32_t)blob[3] << 24),
                     -60);
    assert_int_equal(blob[68 + 2], 10); /* StandardDate.wMonth */
    assert_int_equal(blob[68 + 4], 0);  /* Sunday */
    assert_int_equal(blob[68 + 6], 5);  /* last */
    assert_int_equal(blob[68 + 8], 3);  /* 03:00 */
    assert_int_equal(blob[152 + 2], 3);
    assert_int_equal(blob[152 + 6], 5);
    assert_int_equal(blob[152 + 8], 2);
    assert_int_equal(
        (int32_t)(blob[168] | blob[169] << 8 | blob[170] << 16 | (uint32_t)blob[171] << 24), -60);
    /* and back: a VTIMEZONE with the same rules */
    vtz = eas_tz_vtimezone(blob, tzid, sizeof(tzid));
    assert_non_null(vtz);
    assert_string_equal(tzid, "Europe/Berlin");
    assert_has(vtz, "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU");
    assert_has(vtz, "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU");
    assert_has(vtz, "TZOFFSETTO:+0100");
    assert_has(vtz, "TZOFFSETTO:+0200");
    free(vtz);
    free(xml);
}

/* A TZID without VTIMEZONE: libical's built-in zone (IANA or Windows name), reached
 * through the DAV module's lock; a device's Change with the same rules keeps the TZID and
 * gets the zone's VTIMEZONE under that TZID. */
static void test_builtin_zone(void **state)
{
    static const char ev[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:ny\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART;TZID=America/New_York:20300715T090000\r\n"
        "DTEND;TZID=America/New_York:20300715T100000\r\nSUMMARY:NY\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n";
    static const char win[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:w\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART;TZID=W. Europe Standard Time:20300115T090000\r\n"
        "DTEND;TZID=W. Europe Standard Time:20300115T100000\r\nSUMMARY:W\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n";
    char *x = pim_to(eas_calendar_to_eas, EAS_V141, ev), *ical, b64[400], *p;
    unsigned char blob[EAS_TZ_BLOB + 4];

    (void)state;
    assert_non_null(x);
    /* 09:00 EDT = 13:00 UTC */
    assert_has(x, "<StartTime xmlns=\"Calendar:\">20300715T130000Z</StartTime>");
    p = strchr(strstr(x, "<Timezone"), '>') + 1;
    snprintf(b64, sizeof(b64), "%.*s", (int)strcspn(p, "<"), p);
    assert_int_equal(b64_decode(b64, strlen(b64), blob, sizeof(blob), 0), EAS_TZ_BLOB);
    assert_int_equal(blob[0] | blob[1] << 8, 300); /* Bias: UTC-5 */
    assert_int_equal(blob[68 + 2], 11);            /* standard: November */
    assert_int_equal(blob[68 + 6], 1);             /* first Sunday */
    assert_int_equal(blob[152 + 2], 3);            /* daylight: March */
    assert_int_equal(blob[152 + 6], 2);            /* second Sunday */
    /* the device sends it back changed, with the same zone */
    memcpy(strstr(x, ">NY<") + 1, "NZ", 2);
    ical = pim_from(eas_calendar_from_eas, EAS_V141, x, ev);
    assert_non_null(ical);
    assert_has(ical, "SUMMARY:NZ");
    assert_has(ical, "DTSTART;TZID=America/New_York:20300715T090000");
    assert_has(ical, "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n");
    free(ical);
    free(x);
    /* a Windows zone name: Berlin's rules, 09:00 CET = 08:00 UTC */
    x = pim_to(eas_calendar_to_eas, EAS_V141, win);
    assert_non_null(x);
    assert_has(x, "<StartTime xmlns=\"Calendar:\">20300115T080000Z</StartTime>");
    free(x);
}

static void test_weekly_to_eas(void **state)
{
    char *xml = pim_to(eas_calendar_to_eas, EAS_V141, weekly);

    (void)state;
    assert_non_null(xml);
    /* 10:00 in Berlin summer time is 08:00 UTC */
    assert_has(xml, "<StartTime xmlns=\"Calendar:\">20300610T080000Z</StartTime>");
    assert_has(xml, "<EndTime xmlns=\"Calendar:\">20300610T090000Z</EndTime>");
    assert_has(xml, "<UID xmlns=\"Calendar:\">ev1@example.com</UID>");
    assert_has(xml, "<Subject xmlns=\"Calendar:\">Team meeting</Subject>");
    assert_has(xml, "<Location xmlns=\"Calendar:\">Room 1</Location>");
    assert_has(xml, "<Sensitivity xmlns=\"Calendar:\">2</Sensitivity>");
    assert_has(xml, "<Reminder xmlns=\"Calendar:\">15</Reminder>");
    assert_has(xml, "<Category>Work</Category>");
    assert_has(xml, "<Category>Weekly</Category>");
    assert_has(xml, "<Type>1</Type>");
    assert_has(xml, "<Occurrences>10</Occurrences>");
    assert_has(xml, "<DayOfWeek>2</DayOfWeek>");
    /* the EXDATE and the moved instance */
    assert_has(xml, "<Deleted>1</Deleted>\n      <ExceptionStartTime>20300617T080000Z");
    assert_has(xml, "<ExceptionStartTime>20300624T080000Z</ExceptionStartTime>");
    assert_has(xml, "<StartTime>20300624T120000Z</StartTime>");
    assert_has(xml, "<Subject>Moved meeting</Subject>");
    assert_has(xml, "<Data>Agenda:\nitem one</Data>");
    assert_hasnt(xml, "keep me");
    free(xml);
    /* 16.1: exceptions by InstanceId, Location in AirSyncBase */
    xml = pim_to(eas_calendar_to_eas, EAS_V161, weekly);
    assert_non_null(xml);
    assert_has(xml, "<InstanceId xmlns=\"AirSyncBase:\">2030-06-17T08:00:00.000Z</InstanceId>");
    assert_has(xml, "<DisplayName>Room 1</DisplayName>");
    assert_hasnt(xml, "ExceptionStartTime");
    free(xml);
}

/* iCalendar → EAS → iCalendar → EAS: the second EAS form is the first one. */
static void test_round_trip(void **state)
{
    static const int versions[] = {EAS_V121, EAS_V141, EAS_V161};

    (void)state;
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        char *x1 = pim_to(eas_calendar_to_eas, versions[i], weekly), *ical, *x2;
        assert_non_null(x1);
        ical = pim_from(eas_calendar_from_eas, versions[i], x1, NULL);
        assert_non_null(ical);
        assert_has(ical, "UID:ev1@example.com");
        assert_has(ical, "DTSTART;TZID=Europe/Berlin:20300610T100000");
        assert_has(ical, "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO");
        assert_has(ical, "EXDATE;TZID=Europe/Berlin:20300617T100000");
        assert_has(ical, "RECURRENCE-ID;TZID=Europe/Berlin:20300624T100000");
        assert_has(ical, "SUMMARY:Moved meeting");
        assert_has(ical, "CLASS:PRIVATE");
        assert_has(ical, "TRIGGER:-PT15M");
        assert_has(ical, "CATEGORIES:Work");
        assert_has(ical, "DESCRIPTION:Agenda:\\nitem one");
        x2 = pim_to(eas_calendar_to_eas, versions[i], ical);
        assert_non_null(x2);
        /* DtStamp is the only difference: the device's Add is newer */
        {
            char *a = strstr(x1, "<DtStamp"), *b = strstr(x2, "<DtStamp");
            assert_non_null(a);
            assert_non_null(b);
            memset(strchr(a, '>') + 1, '0', 16);
            memset(strchr(b, '>') + 1, '0', 16);
        }
        assert_string_equal(x1, x2);
        free(x1);
        free(x2);
        free(ical);
    }
}

/* A device's Change replaces what ActiveSync carries and keeps the rest. */
static void test_change_merges(void **state)
{
    char *x = pim_to(eas_calendar_to_eas, EAS_V141, weekly), *p, *ical;

    (void)state;
    assert_non_null(x);
    p = strstr(x, "Team meeting");
    assert_non_null(p);
    memcpy(p, "Team meeting", 12);
    memcpy(p, "Crew", 4); /* "Crew meeting" */
    ical = pim_from(eas_calendar_from_eas, EAS_V141, x, weekly);
    assert_non_null(ical);
    assert_has(ical, "SUMMARY:Crew meeting");
    assert_has(ical, "X-CUSTOM:keep me");
    assert_has(ical, "ATTACH:https://example.com/a.pdf");
    assert_has(ical, "UID:ev1@example.com");
    /* the stored alarm stays as it was (same minutes) */
    assert_has(ical, "DESCRIPTION:x");
    free(ical);
    free(x);
}

static void test_allday(void **state)
{
    static const char ev[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:a1\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART;VALUE=DATE:20300101\r\n"
        "DTEND;VALUE=DATE:20300103\r\nSUMMARY:Holiday\r\nTRANSP:TRANSPARENT\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n";
    /* a device in UTC+1 (no DST) sends its local midnights */
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
        "<c:Timezone>xP///w" Z170 "</c:Timezone>"
        "<c:AllDayEvent>1</c:AllDayEvent><c:StartTime>20300309T230000Z</c:StartTime>"
        "<c:EndTime>20300310T230000Z</c:EndTime><c:Subject>Day off</c:Subject>"
        "<c:BusyStatus>3</c:BusyStatus></ApplicationData>";
    char *x = pim_to(eas_calendar_to_eas, EAS_V141, ev), *ical;

    (void)state;
    assert_non_null(x);
    assert_has(x, "<AllDayEvent xmlns=\"Calendar:\">1</AllDayEvent>");
    assert_has(x, "<StartTime xmlns=\"Calendar:\">20300101T000000Z</StartTime>");
    assert_has(x, "<EndTime xmlns=\"Calendar:\">20300103T000000Z</EndTime>");
    assert_has(x, "<BusyStatus xmlns=\"Calendar:\">0</BusyStatus>");
    free(x);
    ical = pim_from(eas_calendar_from_eas, EAS_V121, dev, NULL);
    assert_non_null(ical);
    assert_has(ical, "DTSTART;VALUE=DATE:20300310");
    assert_has(ical, "DTEND;VALUE=DATE:20300311");
    assert_has(ical, "X-MICROSOFT-CDO-BUSYSTATUS:OOF");
    assert_hasnt(ical, "TZID=");
    free(ical);
}

static void test_meeting(void **state)
{
    static const char ev[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:m1\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART:20300101T100000Z\r\nDURATION:PT30M\r\n"
        "SUMMARY:Review\r\nORGANIZER;CN=Bob:mailto:bob@example.com\r\n"
        "ATTENDEE;CN=Alice;PARTSTAT=TENTATIVE:mailto:alice@example.com\r\n"
        "ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=DECLINED:mailto:carol@example.com\r\n"
        "ATTENDEE;CUTYPE=ROOM:mailto:room@example.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n";
    char *x = pim_to(eas_calendar_to_eas, EAS_V141, ev), *ical;

    (void)state;
    assert_non_null(x);
    assert_has(x, "<EndTime xmlns=\"Calendar:\">20300101T103000Z</EndTime>");
    assert_has(x, "<OrganizerName xmlns=\"Calendar:\">Bob</OrganizerName>");
    assert_has(x, "<OrganizerEmail xmlns=\"Calendar:\">bob@example.com</OrganizerEmail>");
    /* a meeting received (3), the user's answer tentative (2) */
    assert_has(x, "<MeetingStatus xmlns=\"Calendar:\">3</MeetingStatus>");
    assert_has(x, "<ResponseType xmlns=\"Calendar:\">2</ResponseType>");
    assert_has(x, "<Email>alice@example.com</Email>\n      <Name>Alice</Name>\n      "
                  "<AttendeeStatus>2</AttendeeStatus>\n      <AttendeeType>1</AttendeeType>");
    assert_has(x, "<Email>carol@example.com</Email>\n      <Name>carol@example.com</Name>\n      "
                  "<AttendeeStatus>4</AttendeeStatus>\n      <AttendeeType>2</AttendeeType>");
    assert_has(x, "<AttendeeType>3</AttendeeType>");
    ical = pim_from(eas_calendar_from_eas, EAS_V141, x, NULL);
    assert_non_null(ical);
    assert_has(ical, "ORGANIZER;CN=Bob:mailto:bob@example.com");
    assert_has(ical, "ATTENDEE;CN=Alice;PARTSTAT=TENTATIVE;ROLE=REQ-PARTICIPANT:mailto:alice@");
    assert_has(ical, "PARTSTAT=DECLINED;ROLE=OPT-PARTICIPANT:mailto:carol@example.com");
    assert_has(ical, "CUTYPE=RESOURCE:mailto:room@example.com");
    free(ical);
    free(x);
    /* 2.5 has no attendee status or type */
    x = pim_to(eas_calendar_to_eas, EAS_V25, ev);
    assert_non_null(x);
    assert_hasnt(x, "AttendeeStatus");
    free(x);
}

static void test_device_recurrences(void **state)
{
    /* monthly on the last Friday, yearly on March 3, daily every 2 days until a date */
    static const char *const recs[][2] = {
        {"<c:Type>3</c:Type><c:Interval>1</c:Interval><c:WeekOfMonth>5</c:WeekOfMonth>"
         "<c:DayOfWeek>32</c:DayOfWeek>",
         "RRULE:FREQ=MONTHLY;BYDAY=-1FR"},
        {"<c:Type>5</c:Type><c:Interval>1</c:Interval><c:MonthOfYear>3</c:MonthOfYear>"
         "<c:DayOfMonth>3</c:DayOfMonth>",
         "RRULE:FREQ=YEARLY;BYMONTHDAY=3;BYMONTH=3"},
        {"<c:Type>0</c:Type><c:Interval>2</c:Interval><c:Until>20300201T000000Z</c:Until>",
         "RRULE:FREQ=DAILY;UNTIL=20300201T000000Z;INTERVAL=2"},
        {"<c:Type>1</c:Type><c:Interval>1</c:Interval><c:DayOfWeek>62</c:DayOfWeek>"
         "<c:FirstDayOfWeek>0</c:FirstDayOfWeek>",
         "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;WKST=SU"},
    };
    char xml[2048];

    (void)state;
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        char *ical, *back;
        snprintf(xml, sizeof(xml),
                 "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
                 "<c:StartTime>20300103T100000Z</c:StartTime><c:EndTime>20300103T110000Z"
                 "</c:EndTime><c:Subject>r</c:Subject><c:Recurrence>%s</c:Recurrence>"
                 "</ApplicationData>",
                 recs[i][0]);
        ical = pim_from(eas_calendar_from_eas, EAS_V141, xml, NULL);
        assert_non_null(ical);
        assert_has(ical, recs[i][1]);
        assert_has(ical, "DTSTART:20300103T100000Z");
        back = pim_to(eas_calendar_to_eas, EAS_V141, ical);
        assert_non_null(back);
        assert_has(back, "<Recurrence");
        free(back);
        free(ical);
    }
    /* nonsense is refused (Status 6), not stored */
    assert_null(pim_from(eas_calendar_from_eas, EAS_V141,
                         "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
                         "<c:StartTime>20300103T100000Z</c:StartTime>"
                         "<c:Recurrence><c:Type>9</c:Type></c:Recurrence></ApplicationData>",
                         NULL));
    assert_null(pim_from(eas_calendar_from_eas, EAS_V141,
                         "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
                         "<c:Subject>no start</c:Subject></ApplicationData>",
                         NULL));
    assert_null(pim_to(eas_calendar_to_eas, EAS_V141, "not a calendar"));
    assert_null(pim_to(eas_calendar_to_eas, EAS_V141,
                       "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\n"
                       "END:VCALENDAR\r\n"));
}

/* A device's exception: a moved instance becomes an override, a deleted one an EXDATE;
 * overrides the device does not list any more go. */
static void test_device_exceptions(void **state)
{
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\" xmlns:b=\"AirSyncBase:\">"
        "<c:StartTime>20300610T080000Z</c:StartTime><c:EndTime>20300610T090000Z</c:EndTime>"
        "<c:Subject>Team meeting</c:Subject><c:UID>ev1@example.com</c:UID>"
        "<c:Recurrence><c:Type>1</c:Type><c:Interval>1</c:Interval><c:DayOfWeek>2</c:DayOfWeek>"
        "<c:Occurrences>10</c:Occurrences></c:Recurrence><c:Exceptions>"
        "<c:Exception><c:Deleted>1</c:Deleted><b:InstanceId>2030-07-01T08:00:00.000Z"
        "</b:InstanceId></c:Exception>"
        "<c:Exception><c:ExceptionStartTime>20300708T080000Z</c:ExceptionStartTime>"
        "<c:StartTime>20300708T130000Z</c:StartTime><c:EndTime>20300708T140000Z</c:EndTime>"
        "<c:Subject>Later</c:Subject></c:Exception></c:Exceptions></ApplicationData>";
    char *ical = pim_from(eas_calendar_from_eas, EAS_V161, dev, weekly);

    (void)state;
    assert_non_null(ical);
    /* the stored zone stays (the device sent none: times in UTC) */
    assert_has(ical, "EXDATE:20300701T080000Z");
    assert_has(ical, "RECURRENCE-ID:20300708T080000Z");
    assert_has(ical, "DTSTART:20300708T130000Z");
    assert_has(ical, "SUMMARY:Later");
    /* the stored override of June 24 is not listed any more: gone */
    assert_hasnt(ical, "Moved meeting");
    assert_hasnt(ical, "20300617");
    /* the override copies what the series has */
    assert_has(ical, "X-CUSTOM:keep me");
    free(ical);
}

/* Ghosted elements (outside the device's Supported list) keep the stored values; a
 * supported element left out is removed. */
static void test_ghosted(void **state)
{
    static const unsigned sup[] = {EAS_CALENDAR_STARTTIME, EAS_CALENDAR_ENDTIME,
                                   EAS_CALENDAR_SUBJECT, EAS_CALENDAR_LOCATION};
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
        "<c:StartTime>20300610T080000Z</c:StartTime><c:EndTime>20300610T090000Z</c:EndTime>"
        "<c:Subject>Renamed</c:Subject></ApplicationData>";
    char *ical;

    (void)state;
    pim_supported = sup;
    pim_nsupported = sizeof(sup) / sizeof(sup[0]);
    ical = pim_from(eas_calendar_from_eas, EAS_V141, dev, weekly);
    pim_supported = NULL;
    pim_nsupported = 0;
    assert_non_null(ical);
    assert_has(ical, "SUMMARY:Renamed");
    assert_hasnt(ical, "LOCATION:"); /* supported, left out */
    /* the device does not do recurrences, reminders, categories or sensitivity: kept */
    assert_has(ical, "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO");
    assert_has(ical, "EXDATE;TZID=Europe/Berlin:20300617T100000");
    assert_has(ical, "SUMMARY:Moved meeting");
    assert_has(ical, "TRIGGER:-PT15M");
    assert_has(ical, "CATEGORIES:Work");
    assert_has(ical, "CLASS:PRIVATE");
    free(ical);
    /* without a list, the same Change removes them */
    ical = pim_from(eas_calendar_from_eas, EAS_V141, dev, weekly);
    assert_non_null(ical);
    assert_hasnt(ical, "RRULE:FREQ=WEEKLY");
    assert_hasnt(ical, "CATEGORIES");
    assert_hasnt(ical, "Moved meeting");
    free(ical);
}

/* 16.x: every top-level element the device leaves out is ghosted (kept). */
static void test_ghosted_16(void **state)
{
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
        "<c:StartTime>20300610T080000Z</c:StartTime><c:EndTime>20300610T090000Z</c:EndTime>"
        "<c:Subject>Renamed</c:Subject><c:Categories/></ApplicationData>";
    char *ical = pim_from(eas_calendar_from_eas, EAS_V161, dev, weekly);

    (void)state;
    assert_non_null(ical);
    assert_has(ical, "SUMMARY:Renamed");
    assert_has(ical, "LOCATION:Room 1");
    assert_has(ical, "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO");
    assert_has(ical, "SUMMARY:Moved meeting");
    assert_has(ical, "CLASS:PRIVATE");
    assert_has(ical, "TRIGGER:-PT15M");
    /* an element sent empty is emptied */
    assert_hasnt(ical, "CATEGORIES");
    free(ical);
}

/* Regression (e2e): a 16.x Change without StartTime (ghosted: the device changes only
 * the subject) was refused as "an event needs a start" (Status 6); it keeps the stored
 * times, and an all-day event stays all-day when AllDayEvent is left out too. An Add
 * without StartTime is still refused. */
static void test_ghosted_16_times(void **state)
{
    static const char dev[] = "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
                              "<c:Subject>Only the title</c:Subject></ApplicationData>";
    static const char allday[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:a2\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART;VALUE=DATE:20300101\r\n"
        "DTEND;VALUE=DATE:20300103\r\nSUMMARY:Holiday\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    static const char moved[] = "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
                                "<c:StartTime>20300201T000000Z</c:StartTime>"
                                "<c:EndTime>20300202T000000Z</c:EndTime></ApplicationData>";
    char *ical = pim_from(eas_calendar_from_eas, EAS_V161, dev, weekly);

    (void)state;
    assert_non_null(ical);
    assert_has(ical, "SUMMARY:Only the title");
    assert_has(ical, "DTSTART;TZID=Europe/Berlin:20300610T100000");
    assert_has(ical, "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO");
    free(ical);
    ical = pim_from(eas_calendar_from_eas, EAS_V161, dev, allday);
    assert_non_null(ical);
    assert_has(ical, "DTSTART;VALUE=DATE:20300101");
    assert_has(ical, "DTEND;VALUE=DATE:20300103");
    free(ical);
    ical = pim_from(eas_calendar_from_eas, EAS_V161, moved, allday);
    assert_non_null(ical);
    assert_has(ical, "DTSTART;VALUE=DATE:20300201");
    assert_has(ical, "SUMMARY:Holiday");
    free(ical);
    assert_null(pim_from(eas_calendar_from_eas, EAS_V161, dev, NULL));
}

/* Regression (e2e): a device's Change rebuilt every ATTENDEE from ActiveSync's fields,
 * losing RSVP and the other parameters, and setting PARTSTAT=NEEDS-ACTION for attendees
 * sent without AttendeeStatus (as 14.1 devices do). */
static void test_attendees_merge(void **state)
{
    static const char mt[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:m9\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART:20300101T100000Z\r\nDTEND:20300101T110000Z\r\n"
        "SUMMARY:Review\r\nORGANIZER:mailto:boss@example.com\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED;RSVP=TRUE;X-NUM-GUESTS=2:mailto:ann@example.com\r\n"
        "ATTENDEE;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:room@example.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n";
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\">"
        "<c:StartTime>20300101T100000Z</c:StartTime><c:EndTime>20300101T110000Z</c:EndTime>"
        "<c:Subject>Review 2</c:Subject><c:Attendees>"
        "<c:Attendee><c:Email>ANN@example.com</c:Email><c:Name>Ann</c:Name></c:Attendee>"
        "<c:Attendee><c:Email>room@example.com</c:Email><c:Name>Room</c:Name>"
        "<c:AttendeeType>3</c:AttendeeType><c:AttendeeStatus>4</c:AttendeeStatus></c:Attendee>"
        "<c:Attendee><c:Email>new@example.com</c:Email><c:Name>New</c:Name></c:Attendee>"
        "</c:Attendees></ApplicationData>";
    char *ical = pim_from(eas_calendar_from_eas, EAS_V141, dev, mt);

    (void)state;
    assert_non_null(ical);
    assert_has(ical, "ATTENDEE;PARTSTAT=ACCEPTED;RSVP=TRUE;X-NUM-GUESTS=2;CN=Ann:"
                     "mailto:ann@example.com");
    assert_has(ical, "ATTENDEE;CUTYPE=ROOM;CN=Room;PARTSTAT=DECLINED:mailto:room@example.com");
    assert_has(ical,
               "ATTENDEE;CN=New;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:new@example.com");
    free(ical);
}

/* 16.x: one occurrence changed or deleted by InstanceId, in the series' own zone. */
static void test_instance(void **state)
{
    struct eas_pim_ctx c = pim_ctx(EAS_V161);
    struct eas_pim_out out;
    struct eas_doc *d = NULL;
    char err[128];
    static const char change[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Calendar:\"><c:StartTime>20300701T120000Z"
        "</c:StartTime><c:EndTime>20300701T130000Z</c:EndTime><c:Subject>Moved by phone"
        "</c:Subject></ApplicationData>";

    (void)state;
    /* delete July 8 (08:00 UTC = 10:00 Berlin): an EXDATE in the series' zone */
    assert_int_equal(eas_calendar_instance(NULL, &c, weekly, strlen(weekly), 1909728000, &out), 0);
    assert_has(out.text, "EXDATE;TZID=Europe/Berlin:20300708T100000");
    assert_has(out.text, "EXDATE;TZID=Europe/Berlin:20300617T100000");
    assert_has(out.text, "X-CUSTOM:keep me");
    eas_pim_out_free(&out);
    /* deleting the overridden June 24 removes its override too */
    assert_int_equal(eas_calendar_instance(NULL, &c, weekly, strlen(weekly), 1908518400, &out), 0);
    assert_hasnt(out.text, "Moved meeting");
    assert_has(out.text, "EXDATE;TZID=Europe/Berlin:20300624T100000");
    eas_pim_out_free(&out);
    /* change July 1: an override, the series untouched */
    assert_int_equal(wbxml_from_xml(change, strlen(change), &d, err, sizeof(err)), 0);
    assert_int_equal(
        eas_calendar_instance(eas_doc_root(d), &c, weekly, strlen(weekly), 1909123200, &out), 0);
    assert_has(out.text, "RECURRENCE-ID;TZID=Europe/Berlin:20300701T100000");
    assert_has(out.text, "DTSTART;TZID=Europe/Berlin:20300701T140000");
    assert_has(out.text, "SUMMARY:Moved by phone");
    assert_has(out.text, "SUMMARY:Team meeting");
    assert_has(out.text, "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO");
    eas_pim_out_free(&out);
    /* not a series: refused */
    {
        static const char single[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n"
                                     "DTSTART:20300101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_int_equal(
            eas_calendar_instance(eas_doc_root(d), &c, single, strlen(single), 1909123200, &out),
            -1);
    }
    eas_doc_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timezone_blob),     cmocka_unit_test(test_builtin_zone),
        cmocka_unit_test(test_weekly_to_eas),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_change_merges),     cmocka_unit_test(test_allday),
        cmocka_unit_test(test_meeting),           cmocka_unit_test(test_device_recurrences),
        cmocka_unit_test(test_device_exceptions), cmocka_unit_test(test_instance),
        cmocka_unit_test(test_ghosted),           cmocka_unit_test(test_ghosted_16),
        cmocka_unit_test(test_ghosted_16_times),  cmocka_unit_test(test_attendees_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
