"""calendar-query time ranges over raw HTTP: a weekly event with an EXDATE and one moved
occurrence (an override with RECURRENCE-ID), plus a single event and an open-ended daily
rule, queried over several windows; each answer is checked exactly, with and without
<C:expand>. Windows far past the indexing horizon make the server re-expand and extend
the occurrence index; the same answer must come back the second time (from the index).

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_dav_timerange.py
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from dav_util import ACAL, C, CR, NSDECL, Dav, ms, setup_users, vevent  # noqa: E402

# Mondays 09:00-10:00 UTC from 2026-01-05, 8 times (to 2026-02-23). 2026-01-19 is
# excluded; 2026-02-02 is moved to Wednesday 2026-02-04 15:00-16:00.
WEEKLY = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//polaris tests//EN\r\n'
          'BEGIN:VEVENT\r\nUID:weekly\r\nDTSTAMP:20260101T000000Z\r\n'
          'DTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\n'
          'RRULE:FREQ=WEEKLY;COUNT=8\r\nEXDATE:20260119T090000Z\r\nSUMMARY:Weekly\r\n'
          'END:VEVENT\r\n'
          'BEGIN:VEVENT\r\nUID:weekly\r\nDTSTAMP:20260101T000000Z\r\n'
          'RECURRENCE-ID:20260202T090000Z\r\nDTSTART:20260204T150000Z\r\n'
          'DTEND:20260204T160000Z\r\nSUMMARY:Weekly (moved)\r\nEND:VEVENT\r\n'
          'END:VCALENDAR\r\n')
# Every day at 07:00 Europe/Berlin (06:00 UTC in winter), forever, from 2026-01-01.
DAILY = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//polaris tests//EN\r\n'
         'BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n'
         'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n'
         'END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n'
         'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n'
         'END:DAYLIGHT\r\nEND:VTIMEZONE\r\n'
         'BEGIN:VEVENT\r\nUID:daily\r\nDTSTAMP:20260101T000000Z\r\n'
         'DTSTART;TZID=Europe/Berlin:20260101T070000\r\nDURATION:PT30M\r\n'
         'RRULE:FREQ=DAILY\r\nSUMMARY:Daily\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n')
SINGLE = vevent('single', start='20260210T120000Z', end='20260210T130000Z', summary='Single')


def query(start, end, expand=False):
    exp = ('<c:expand start="%s" end="%s"/>' % (start, end)) if expand else ''
    return ('<c:calendar-query %s><d:prop><d:getetag/><c:calendar-data>%s</c:calendar-data>'
            '</d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            '<c:time-range start="%s" end="%s"/></c:comp-filter></c:comp-filter></c:filter>'
            '</c:calendar-query>' % (NSDECL, exp, start, end))


class TimeRange(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris().__enter__()
        setup_users(cls.p)
        cls.dav = Dav(cls.p)
        cls.cal = ACAL + 'calendar/'
        for name, data in (('weekly', WEEKLY), ('daily', DAILY), ('single', SINGLE)):
            st, _, b = cls.dav.put(cls.cal + name + '.ics', data)
            assert st == 201, (st, b)

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def names(self, start, end):
        st, _, b = self.dav.report(self.cal, query(start, end))
        self.assertEqual(st, 207, b)
        return sorted(h.rsplit('/', 1)[1][:-4] for h in ms(b)[0])

    def expanded_starts(self, start, end, uid='weekly'):
        st, _, b = self.dav.report(self.cal, query(start, end, expand=True))
        self.assertEqual(st, 207, b)
        props = ms(b)[0]
        href = self.cal + uid + '.ics'
        if href not in props:
            return []
        data = props[href][C + 'calendar-data'][1].text
        self.assertNotIn('RRULE', data)
        return sorted(re.findall(r'DTSTART(?:;[^:]*)?:(\S+)', data))

    def test_windows(self):
        day = [('20260105T000000Z', '20260106T000000Z', ['daily', 'weekly']),
               # the excluded Monday: only the daily event
               ('20260119T000000Z', '20260120T000000Z', ['daily']),
               # the moved one's original slot is empty, its new slot is not
               ('20260202T085000Z', '20260202T110000Z', []),
               ('20260204T150000Z', '20260204T153000Z', ['weekly']),
               ('20260210T123000Z', '20260210T124500Z', ['single']),
               # end is exclusive, start is inclusive
               ('20260210T130000Z', '20260210T140000Z', []),
               ('20260210T115900Z', '20260210T120001Z', ['single']),
               # after the weekly rule ended
               ('20260301T000000Z', '20260301T050000Z', []),
               ('20251201T000000Z', '20251231T000000Z', [])]
        for start, end, want in day:
            self.assertEqual(self.names(start, end), want, (start, end))

    def test_time_zone_applied(self):
        # 07:00 Berlin is 06:00 UTC in winter and 05:00 UTC in summer
        self.assertEqual(self.names('20260115T060000Z', '20260115T061000Z'), ['daily'])
        self.assertEqual(self.names('20260115T050000Z', '20260115T055900Z'), [])
        self.assertEqual(self.names('20260715T050000Z', '20260715T051000Z'), ['daily'])

    def test_expand_lists_the_right_instances(self):
        starts = self.expanded_starts('20260101T000000Z', '20260301T000000Z')
        self.assertEqual(starts, ['20260105T090000Z', '20260112T090000Z', '20260126T090000Z',
                                  '20260204T150000Z', '20260209T090000Z', '20260216T090000Z',
                                  '20260223T090000Z'])
        starts = self.expanded_starts('20260201T000000Z', '20260208T000000Z')
        self.assertEqual(starts, ['20260204T150000Z'])

    def test_far_future_reexpands(self):
        # years past the index horizon: answered by re-expanding, twice the same
        for _ in range(2):
            self.assertEqual(self.names('20400101T000000Z', '20400101T235959Z'), ['daily'])
        self.assertEqual(self.names('20400101T080000Z', '20400101T090000Z'), [])

    def test_no_time_range_returns_everything(self):
        body = ('<c:calendar-query %s><d:prop><d:getetag/></d:prop><c:filter>'
                '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter>'
                '</c:filter></c:calendar-query>' % NSDECL)
        st, _, b = self.dav.report(self.cal, body)
        self.assertEqual(st, 207)
        self.assertEqual(len(ms(b)[0]), 3)
        body = body.replace('name="VEVENT"', 'name="VTODO"')
        st, _, b = self.dav.report(self.cal, body)
        self.assertEqual(ms(b)[0], {})

    def test_text_match_with_time_range(self):
        body = ('<c:calendar-query %s><d:prop><d:getetag/></d:prop><c:filter>'
                '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
                '<c:time-range start="20260101T000000Z" end="20260301T000000Z"/>'
                '<c:prop-filter name="SUMMARY"><c:text-match collation="i;ascii-casemap">%s'
                '</c:text-match></c:prop-filter></c:comp-filter></c:comp-filter></c:filter>'
                '</c:calendar-query>')
        for text, want in (('weekly', ['weekly']), ('SINGLE', ['single']), ('nothing', [])):
            st, _, b = self.dav.report(self.cal, body % (NSDECL, text))
            self.assertEqual(st, 207)
            self.assertEqual(sorted(h.rsplit('/', 1)[1][:-4] for h in ms(b)[0]), want, text)

    def test_invalid_filter(self):
        body = ('<c:calendar-query %s><d:prop><d:getetag/></d:prop><c:filter>'
                '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
                '<c:time-range start="yesterday"/></c:comp-filter></c:comp-filter></c:filter>'
                '</c:calendar-query>' % NSDECL)
        st, _, b = self.dav.report(self.cal, body)
        self.assertIn(st, (400, 403))

    def test_free_busy(self):
        body = ('<c:free-busy-query %s><c:time-range start="20260204T000000Z" '
                'end="20260205T000000Z"/></c:free-busy-query>' % NSDECL)
        st, h, b = self.dav.report(self.cal, body)
        self.assertEqual(st, 200)
        self.assertTrue(h['content-type'].startswith('text/calendar'))
        text = b.decode().replace('\r\n ', '')
        self.assertIn('BEGIN:VFREEBUSY', text)
        self.assertIn('20260204T150000Z/', text)
        self.assertIn('20260204T060000Z/', text)
        self.assertNotIn('20260202T090000Z', text)


if __name__ == '__main__':
    unittest.main(verbosity=2)
