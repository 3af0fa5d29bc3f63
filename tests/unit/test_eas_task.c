/*
 * test_eas_task.c — iCalendar VTODO ↔ ActiveSync Tasks (eas/eas_task.c): dates in UTC and
 * local forms, importance, completion both ways, the reminder, sensitivity, categories,
 * the 2.5 body, the completed test FilterType 8 uses, and a Change keeping the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/pim_test_util.h"

static const char *const todo =
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\n"
    "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\n"
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
    "BEGIN:VTODO\r\nUID:t1@example.com\r\nDTSTAMP:20240101T000000Z\r\nSUMMARY:File taxes\r\n"
    "DESCRIPTION:forms 1040\r\nPRIORITY:1\r\nDTSTART;TZID=America/New_York:20300401T090000\r\n"
    "DUE;TZID=America/New_York:20300415T170000\r\nCATEGORIES:Home\r\nCLASS:CONFIDENTIAL\r\n"
    "RELATED-TO:parent@example.com\r\nX-KEEP:yes\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:r\r\nTRIGGER;VALUE=DATE-TIME:"
    "20300414T120000Z\r\n"
    "END:VALARM\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";

static void test_todo_to_eas(void **state)
{
    char *x = pim_to(eas_task_to_eas, EAS_V141, todo);

    (void)state;
    assert_non_null(x);
    assert_has(x, "<Subject xmlns=\"Tasks:\">File taxes</Subject>");
    assert_has(x, "<Importance xmlns=\"Tasks:\">2</Importance>");
    /* 09:00 EDT is 13:00 UTC; the local form is the wall clock */
    assert_has(x, "<UtcStartDate xmlns=\"Tasks:\">2030-04-01T13:00:00.000Z</UtcStartDate>");
    assert_has(x, "<StartDate xmlns=\"Tasks:\">2030-04-01T09:00:00.000Z</StartDate>");
    assert_has(x, "<UtcDueDate xmlns=\"Tasks:\">2030-04-15T21:00:00.000Z</UtcDueDate>");
    assert_has(x, "<DueDate xmlns=\"Tasks:\">2030-04-15T17:00:00.000Z</DueDate>");
    assert_has(x, "<Complete xmlns=\"Tasks:\">0</Complete>");
    assert_has(x, "<Sensitivity xmlns=\"Tasks:\">3</Sensitivity>");
    assert_has(x, "<ReminderSet xmlns=\"Tasks:\">1</ReminderSet>");
    assert_has(x, "<ReminderTime xmlns=\"Tasks:\">2030-04-14T12:00:00.000Z</ReminderTime>");
    assert_has(x, "<Category>Home</Category>");
    assert_has(x, "<Data>forms 1040</Data>");
    assert_hasnt(x, "DateCompleted");
    free(x);
    x = pim_to(eas_task_to_eas, EAS_V25, todo);
    assert_non_null(x);
    assert_has(x, "<BodyTruncated xmlns=\"Tasks:\">0</BodyTruncated>");
    assert_has(x, "<Body xmlns=\"Tasks:\">forms 1040</Body>");
    free(x);
    assert_int_equal(eas_task_completed(todo, strlen(todo)), 0);
}

/* The device completes the task: STATUS, COMPLETED and PERCENT-COMPLETE; what EAS does
 * not carry stays. */
static void test_complete(void **state)
{
    char *x = pim_to(eas_task_to_eas, EAS_V141, todo), *p, *v, *back;

    (void)state;
    assert_non_null(x);
    p = strstr(x, "<Complete xmlns=\"Tasks:\">0");
    assert_non_null(p);
    p[strlen("<Complete xmlns=\"Tasks:\">")] = '1';
    v = pim_from(eas_task_from_eas, EAS_V141, x, todo);
    assert_non_null(v);
    assert_has(v, "STATUS:COMPLETED");
    assert_has(v, "PERCENT-COMPLETE:100");
    assert_has(v, "COMPLETED:20300317T174640Z"); /* now, in the test context */
    assert_has(v, "RELATED-TO:parent@example.com");
    assert_has(v, "X-KEEP:yes");
    assert_has(v, "UID:t1@example.com");
    /* the reminder is the same: the stored alarm stays as written */
    assert_has(v, "DESCRIPTION:r");
    assert_int_equal(eas_task_completed(v, strlen(v)), 1);
    back = pim_to(eas_task_to_eas, EAS_V141, v);
    assert_non_null(back);
    assert_has(back, "<Complete xmlns=\"Tasks:\">1</Complete>");
    assert_has(back, "<DateCompleted xmlns=\"Tasks:\">2030-03-17T17:46:40.000Z</DateCompleted>");
    free(back);
    free(v);
    free(x);
}

static void test_device_task(void **state)
{
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:t=\"Tasks:\"><t:Subject>Buy milk</t:Subject>"
        "<t:Importance>0</t:Importance><t:UtcDueDate>2030-05-01T10:00:00.000Z</t:UtcDueDate>"
        "<t:DueDate>2030-05-01T12:00:00.000Z</t:DueDate><t:Complete>0</t:Complete>"
        "<t:ReminderSet>1</t:ReminderSet><t:ReminderTime>2030-05-01T08:00:00.000Z"
        "</t:ReminderTime><t:Sensitivity>0</t:Sensitivity></ApplicationData>";
    char *v = pim_from(eas_task_from_eas, EAS_V141, dev, NULL), *x;

    (void)state;
    assert_non_null(v);
    assert_has(v, "BEGIN:VTODO");
    assert_has(v, "SUMMARY:Buy milk");
    assert_has(v, "PRIORITY:9");
    /* the instant in UTC, the device's wall-clock offset (+2 h) beside it */
    assert_has(v, "DUE;X-EAS-UTC-OFFSET=7200:20300501T100000Z");
    assert_has(v, "TRIGGER;VALUE=DATE-TIME:20300501T080000Z");
    assert_hasnt(v, "STATUS:COMPLETED");
    x = pim_to(eas_task_to_eas, EAS_V141, v);
    assert_non_null(x);
    assert_has(x, "<Importance xmlns=\"Tasks:\">0</Importance>");
    assert_has(x, "<UtcDueDate xmlns=\"Tasks:\">2030-05-01T10:00:00.000Z</UtcDueDate>");
    /* regression (e2e): the other devices got the UTC time as the local DueDate */
    assert_has(x, "<DueDate xmlns=\"Tasks:\">2030-05-01T12:00:00.000Z</DueDate>");
    free(x);
    free(v);
}

/* Regression (e2e): a todo COMPLETED by status only (no COMPLETED time) got the time of
 * each answer as DateCompleted, a different value at every Sync; now its LAST-MODIFIED, else
 * DTSTAMP. A UTC date without the offset parameter, or with a bad one, is local UTC. */
static void test_completed_without_time(void **state)
{
    static const char st[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VTODO\r\nUID:c1\r\n"
        "DTSTAMP:20240101T000000Z\r\nLAST-MODIFIED:20300202T101010Z\r\nSUMMARY:Done\r\n"
        "STATUS:COMPLETED\r\nDUE;X-EAS-UTC-OFFSET=99999999:20300101T100000Z\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n";
    static const char stamp[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VTODO\r\nUID:c2\r\n"
        "DTSTAMP:20240101T000000Z\r\nSUMMARY:Done\r\nPERCENT-COMPLETE:100\r\n"
        "STATUS:COMPLETED\r\nDUE:20300101T100000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    char *x = pim_to(eas_task_to_eas, EAS_V141, st);

    (void)state;
    assert_non_null(x);
    assert_has(x, "<Complete xmlns=\"Tasks:\">1</Complete>");
    assert_has(x, "<DateCompleted xmlns=\"Tasks:\">2030-02-02T10:10:10.000Z</DateCompleted>");
    assert_has(x, "<DueDate xmlns=\"Tasks:\">2030-01-01T10:00:00.000Z</DueDate>");
    free(x);
    x = pim_to(eas_task_to_eas, EAS_V141, stamp);
    assert_non_null(x);
    assert_has(x, "<DateCompleted xmlns=\"Tasks:\">2024-01-01T00:00:00.000Z</DateCompleted>");
    assert_has(x, "<DueDate xmlns=\"Tasks:\">2030-01-01T10:00:00.000Z</DueDate>");
    free(x);
}

/* Regression (e2e): a device's Change sends back every date it got; a date-only DUE and a
 * DTSTART in a zone became UTC times. The same instant keeps the stored property; a new
 * one is the device's. */
static void test_echoed_dates_keep_their_form(void **state)
{
    static const char st[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VTODO\r\nUID:d1\r\n"
        "DTSTAMP:20240101T000000Z\r\nSUMMARY:Dated\r\nDUE;VALUE=DATE:20300415\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n";
    static const char echo[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:t=\"Tasks:\"><t:Subject>Dated 2</t:Subject>"
        "<t:UtcDueDate>2030-04-15T00:00:00.000Z</t:UtcDueDate>"
        "<t:DueDate>2030-04-15T00:00:00.000Z</t:DueDate></ApplicationData>";
    static const char moved[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:t=\"Tasks:\"><t:Subject>Dated 3</t:Subject>"
        "<t:UtcDueDate>2030-04-16T00:00:00.000Z</t:UtcDueDate></ApplicationData>";
    char *v = pim_from(eas_task_from_eas, EAS_V141, echo, st), *w;

    (void)state;
    assert_non_null(v);
    assert_has(v, "SUMMARY:Dated 2");
    assert_has(v, "DUE;VALUE=DATE:20300415");
    free(v);
    w = pim_from(eas_task_from_eas, EAS_V141, moved, st);
    assert_non_null(w);
    assert_has(w, "DUE:20300416T000000Z");
    free(w);
    /* the zoned dates of the test todo, sent back as the device got them */
    v = pim_to(eas_task_to_eas, EAS_V141, todo);
    assert_non_null(v);
    w = pim_from(eas_task_from_eas, EAS_V141, v, todo);
    assert_non_null(w);
    assert_has(w, "DTSTART;TZID=America/New_York:20300401T090000");
    assert_has(w, "DUE;TZID=America/New_York:20300415T170000");
    free(w);
    free(v);
}

/* A recurring task: RRULE ↔ Tasks:Recurrence (with Start, ISO times), both ways. */
static void test_recurrence(void **state)
{
    static const char rec[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VTODO\r\nUID:r1\r\n"
        "DTSTAMP:20240101T000000Z\r\nSUMMARY:Water plants\r\nDTSTART:20300106T090000Z\r\n"
        "DUE:20300106T100000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=SU;UNTIL=20300601T000000Z\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n";
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:t=\"Tasks:\"><t:Subject>Rent</t:Subject>"
        "<t:Recurrence><t:Type>2</t:Type><t:Start>2030-02-01T08:00:00.000Z</t:Start>"
        "<t:Interval>1</t:Interval><t:DayOfMonth>1</t:DayOfMonth><t:Occurrences>12"
        "</t:Occurrences><t:Regenerate>0</t:Regenerate><t:DeadOccur>0</t:DeadOccur>"
        "</t:Recurrence></ApplicationData>";
    char *x = pim_to(eas_task_to_eas, EAS_V141, rec), *v;

    (void)state;
    assert_non_null(x);
    assert_has(x, "<Recurrence xmlns=\"Tasks:\">\n    <Type>1</Type>\n    "
                  "<Start>2030-01-06T09:00:00.000Z</Start>");
    assert_has(x, "<DayOfWeek>1</DayOfWeek>");
    assert_has(x, "<Until>2030-06-01T00:00:00.000Z</Until>");
    assert_has(x, "<Regenerate>0</Regenerate>");
    free(x);
    v = pim_from(eas_task_from_eas, EAS_V141, dev, NULL);
    assert_non_null(v);
    assert_has(v, "DTSTART:20300201T080000Z");
    assert_has(v, "RRULE:FREQ=MONTHLY;COUNT=12;BYMONTHDAY=1");
    free(v);
    /* a Change without Recurrence ends the series; a nonsense one is refused */
    v = pim_from(eas_task_from_eas, EAS_V141,
                 "<ApplicationData xmlns=\"AirSync:\" xmlns:t=\"Tasks:\"><t:Subject>Water plants"
                 "</t:Subject></ApplicationData>",
                 rec);
    assert_non_null(v);
    assert_hasnt(v, "RRULE");
    free(v);
    assert_null(pim_from(eas_task_from_eas, EAS_V141,
                         "<ApplicationData xmlns=\"AirSync:\" xmlns:t=\"Tasks:\"><t:Recurrence>"
                         "<t:Type>4</t:Type><t:Start>2030-02-01T08:00:00.000Z</t:Start>"
                         "</t:Recurrence></ApplicationData>",
                         NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_todo_to_eas),
        cmocka_unit_test(test_complete),
        cmocka_unit_test(test_device_task),
        cmocka_unit_test(test_completed_without_time),
        cmocka_unit_test(test_echoed_dates_keep_their_form),
        cmocka_unit_test(test_recurrence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
