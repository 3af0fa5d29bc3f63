/*
 * test_eas_note.c — iCalendar VJOURNAL ↔ ActiveSync Notes (eas/eas_note.c): subject,
 * body, categories, MessageClass and LastModifiedDate out; a device's note in; a Change
 * keeping the journal entry's other properties; what is not a note refused.
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

static const char *const journal =
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VJOURNAL\r\nUID:n1@example.com\r\n"
    "DTSTAMP:20240101T000000Z\r\nLAST-MODIFIED:20240202T101010Z\r\nDTSTART;VALUE=DATE:20240101\r\n"
    "SUMMARY:Shopping\r\nDESCRIPTION:eggs\\nflour\r\nCATEGORIES:Lists,Home\r\nX-COLOR:yellow\r\n"
    "END:VJOURNAL\r\nEND:VCALENDAR\r\n";

static void test_note_to_eas(void **state)
{
    char *x = pim_to(eas_note_to_eas, EAS_V141, journal);

    (void)state;
    assert_non_null(x);
    assert_has(x, "<Subject xmlns=\"Notes:\">Shopping</Subject>");
    assert_has(x, "<Data>eggs\nflour</Data>");
    assert_has(x, "<MessageClass xmlns=\"Notes:\">IPM.StickyNote</MessageClass>");
    assert_has(x, "<LastModifiedDate xmlns=\"Notes:\">2024-02-02T10:10:10.000Z</");
    assert_has(x, "<Category>Lists</Category>");
    assert_has(x, "<Category>Home</Category>");
    free(x);
    assert_null(pim_to(eas_note_to_eas, EAS_V141,
                       "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:e\r\n"
                       "DTSTART:20240101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"));
}

static void test_note_from_eas(void **state)
{
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:n=\"Notes:\" xmlns:b=\"AirSyncBase:\">"
        "<n:Subject>Ideas</n:Subject><n:MessageClass>IPM.StickyNote</n:MessageClass>"
        "<b:Body><b:Type>1</b:Type><b:Data>one; two, three</b:Data></b:Body>"
        "<n:Categories><n:Category>Work</n:Category></n:Categories></ApplicationData>";
    char *v = pim_from(eas_note_from_eas, EAS_V141, dev, NULL), *c;

    (void)state;
    assert_non_null(v);
    assert_has(v, "BEGIN:VJOURNAL");
    assert_has(v, "SUMMARY:Ideas");
    assert_has(v, "DESCRIPTION:one\\; two\\, three");
    assert_has(v, "CATEGORIES:Work");
    assert_has(v, "DTSTART;VALUE=DATE:20300317");
    free(v);
    /* a Change: new subject, no body sent (kept), X- property kept */
    c = pim_from(eas_note_from_eas, EAS_V141,
                 "<ApplicationData xmlns=\"AirSync:\" xmlns:n=\"Notes:\"><n:Subject>Groceries"
                 "</n:Subject></ApplicationData>",
                 journal);
    assert_non_null(c);
    assert_has(c, "UID:n1@example.com");
    assert_has(c, "SUMMARY:Groceries");
    assert_has(c, "DESCRIPTION:eggs\\nflour");
    assert_has(c, "X-COLOR:yellow");
    assert_hasnt(c, "CATEGORIES");
    free(c);
}

/* Bodies in HTML both ways: a device that takes HTML only gets the text as HTML; an HTML
 * body from a device is stored as text. */
static void test_html_bodies(void **state)
{
    struct eas_coll_opts o;
    char *x, *v;

    (void)state;
    eas_coll_opts_default(&o);
    o.nprefs = 1;
    o.prefs[0].type = EAS_BODY_HTML;
    o.prefs[0].trunc = -1;
    pim_opts = &o;
    x = pim_to(eas_note_to_eas, EAS_V141, journal);
    pim_opts = NULL;
    assert_non_null(x);
    assert_has(x, "<Type>2</Type>");
    assert_has(
        x, "<Data>&lt;html&gt;&lt;body&gt;eggs&lt;br&gt;flour&lt;/body&gt;&lt;/html&gt;</Data>");
    free(x);
    v = pim_from(
        eas_note_from_eas, EAS_V141,
        "<ApplicationData xmlns=\"AirSync:\" xmlns:n=\"Notes:\" xmlns:b=\"AirSyncBase:\">"
        "<n:Subject>H</n:Subject><b:Body><b:Type>2</b:Type><b:Data>&lt;html&gt;&lt;head&gt;"
        "&lt;style&gt;p{}&lt;/style&gt;&lt;/head&gt;&lt;body&gt;&lt;p&gt;eggs &amp;amp; "
        "milk&lt;/p&gt;&lt;div&gt;flour&amp;#8364;&amp;nbsp;x&lt;/div&gt;&lt;/body&gt;"
        "&lt;/html&gt;</b:Data></b:Body></ApplicationData>",
        NULL);
    assert_non_null(v);
    assert_has(v, "DESCRIPTION:eggs & milk\\nflour\xe2\x82\xac x\r\n");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_note_to_eas),
        cmocka_unit_test(test_note_from_eas),
        cmocka_unit_test(test_html_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
