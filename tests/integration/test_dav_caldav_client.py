"""python3-caldav (Debian's package, a client nobody here wrote) against the real binary:
discovery from the bare /caldav URL customers paste, making a calendar, save_event,
search by date range with and without expansion, todos in the task list, updating and
deleting, free-busy, and incremental sync with objects_by_sync_token.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_dav_caldav_client.py
"""
import datetime
import os
import sys
import unittest
import urllib.parse

import caldav

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from dav_util import ALICE, CHARLIE, setup_users  # noqa: E402

UTC = datetime.timezone.utc

WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//polaris tests//EN
BEGIN:VEVENT
UID:weekly-standup
DTSTAMP:20260101T000000Z
DTSTART:20260105T090000Z
DTEND:20260105T093000Z
RRULE:FREQ=WEEKLY;COUNT=10
SUMMARY:Standup
END:VEVENT
END:VCALENDAR
"""

SINGLE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//polaris tests//EN
BEGIN:VEVENT
UID:single-review
DTSTAMP:20260101T000000Z
DTSTART:20260210T140000Z
DTEND:20260210T150000Z
SUMMARY:Review
ORGANIZER;CN=Alice:mailto:alice@example.com
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION:mailto:bob@example.net
END:VEVENT
END:VCALENDAR
"""

TODO = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//polaris tests//EN
BEGIN:VTODO
UID:todo-taxes
DTSTAMP:20260101T000000Z
SUMMARY:File taxes
DUE:20260415T170000Z
END:VTODO
END:VCALENDAR
"""


def path_of(obj):
    return urllib.parse.unquote(urllib.parse.urlsplit(str(obj.url)).path)


def dt(*a):
    return datetime.datetime(*a, tzinfo=UTC)


class CaldavClient(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(extra_config='[auth]\nfail_max = 100000\n').__enter__()
        setup_users(cls.p)
        cls.url = 'http://%s:%d/caldav' % (cls.p.label_host(), cls.p.http_port)

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def client(self, auth=ALICE):
        # python-caldav dials the host in the URL: resolve the virtual host to loopback.
        c = caldav.DAVClient(url=self.url, username=auth[0], password=auth[1])
        return c

    def setUp(self):
        import socket
        real = socket.getaddrinfo
        host = self.p.label_host()

        def fake(h, *a, **k):
            return real('127.0.0.1' if h == host else h, *a, **k)
        socket.getaddrinfo = fake
        self.addCleanup(setattr, socket, 'getaddrinfo', real)

    def test_discovery_from_the_pasted_url(self):
        principal = self.client().principal()
        self.assertTrue(path_of(principal).endswith('/principals/alice@example.com/'))
        cals = principal.calendars()
        paths = sorted(path_of(c).split('/caldav/alice@example.com/')[1] for c in cals)
        self.assertEqual(paths, ['calendar/', 'notes/', 'tasks/'])
        names = sorted(c.name for c in cals)
        self.assertEqual(names, ['Calendar', 'Notes', 'Tasks'])
        home = principal.calendar_home_set
        self.assertTrue(path_of(home).endswith('/caldav/alice@example.com/'))

    def test_events_search_expand_update_delete(self):
        principal = self.client().principal()
        cal = principal.make_calendar(name='Team', cal_id='team')
        self.assertIn('team', [str(c.url).rstrip('/').rsplit('/', 1)[1]
                               for c in principal.calendars()])
        cal.save_event(WEEKLY)
        cal.save_event(SINGLE)
        self.assertEqual(len(cal.events()), 2)
        # a window with two standups and no review
        found = cal.date_search(dt(2026, 1, 10), dt(2026, 1, 24), expand=False)
        self.assertEqual([e.instance.vevent.uid.value for e in found], ['weekly-standup'])
        expanded = cal.date_search(dt(2026, 1, 10), dt(2026, 1, 24), expand=True)
        # the server expands: one object holding an instance per occurrence in the window
        starts = sorted(v.dtstart.value for e in expanded for v in e.instance.vevent_list)
        for e in expanded:
            self.assertNotIn('RRULE', e.data)
        self.assertEqual(starts, [dt(2026, 1, 12, 9), dt(2026, 1, 19, 9)])
        # past the last standup (COUNT=10 ends 2026-03-09) nothing
        found = cal.date_search(dt(2026, 3, 10), dt(2026, 4, 1), expand=False)
        self.assertEqual(found, [])
        found = cal.date_search(dt(2026, 2, 10), dt(2026, 2, 11), expand=False)
        # a Tuesday: the review, not the Monday standups
        self.assertEqual([e.instance.vevent.uid.value for e in found], ['single-review'])
        # organizer and attendees come back untouched
        ev = cal.event_by_uid('single-review')
        self.assertIn('ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION:mailto:bob@example.net', ev.data)
        # update
        ev.instance.vevent.summary.value = 'Review (moved)'
        ev.save()
        self.assertEqual(cal.event_by_uid('single-review').instance.vevent.summary.value,
                         'Review (moved)')
        ev.delete()
        self.assertEqual([e.instance.vevent.uid.value for e in cal.events()], ['weekly-standup'])

    def test_todos_live_in_the_task_list(self):
        principal = self.client().principal()
        tasks = [c for c in principal.calendars() if c.name == 'Tasks'][0]
        tasks.save_todo(TODO)
        todos = tasks.todos()
        self.assertEqual([t.instance.vtodo.uid.value for t in todos], ['todo-taxes'])
        events = [c for c in principal.calendars() if c.name == 'Calendar'][0]
        with self.assertRaises(Exception):
            events.save_todo(TODO.replace('todo-taxes', 'todo-wrong-place'))

    def test_sync_token(self):
        principal = self.client().principal()
        cal = principal.make_calendar(name='Sync', cal_id='sync-client')
        cal.save_event(SINGLE.replace('single-review', 'sync-a'))
        cal.save_event(SINGLE.replace('single-review', 'sync-b'))
        objs = cal.objects_by_sync_token(load_objects=True)
        self.assertEqual(len(list(objs)), 2)
        token = objs.sync_token
        cal.save_event(SINGLE.replace('single-review', 'sync-c'))
        cal.event_by_uid('sync-a').delete()
        changed = cal.objects_by_sync_token(sync_token=token, load_objects=False)
        urls = sorted(str(o.url).rsplit('/', 1)[1] for o in changed)
        self.assertEqual(len(urls), 2)
        self.assertNotEqual(changed.sync_token, token)
        again = cal.objects_by_sync_token(sync_token=changed.sync_token, load_objects=False)
        self.assertEqual(list(again), [])

    def test_freebusy(self):
        principal = self.client().principal()
        cal = principal.make_calendar(name='Busy', cal_id='busy')
        cal.save_event(SINGLE.replace('single-review', 'busy-1'))
        fb = cal.freebusy_request(dt(2026, 2, 10), dt(2026, 2, 11))
        self.assertIn('FREEBUSY', fb.data)
        self.assertIn('20260210T140000Z', fb.data)

    def test_another_user_sees_only_their_own(self):
        cals = self.client(CHARLIE).principal().calendars()
        for c in cals:
            self.assertTrue(path_of(c).startswith('/caldav/charlie@example.com/'), path_of(c))


if __name__ == '__main__':
    unittest.main(verbosity=2)
