"""Calendars, contacts and tasks across CalDAV/CardDAV and ActiveSync, on one store.

What a CalDAV client PUTs (a recurring event in a non-UTC zone with an EXDATE and a moved
override, an all-day event, a meeting with an organizer and attendees, a VTODO) reaches
ActiveSync devices (16.1 and 14.1) with the same times, recurrence, exceptions, all-day
flag, attendees and task fields; what a device adds and changes is served over CalDAV
(GET and calendar-query) under the same UID; deletes cross both ways; a MeetingResponse
sets the user's PARTSTAT in the stored event; contacts, tasks and notes cross field for
field; DAV sync
tokens and CTags move with ActiveSync changes (sync-collection names exactly the changed
and deleted hrefs) and ActiveSync SyncKeys see DAV PUT/PUT/DELETE; a Ping on the Calendar
wakes on a CalDAV PUT (printed) while an IMAP IDLE on INBOX stays silent; CalDAV and
ActiveSync writing one calendar at once lose nothing and converge.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/e2e/test_e2e_pim.py
"""
import base64
import os
import re
import struct
import sys
import threading
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Idler, Server, find, findall, message, text, tostring, wait_until  # noqa: E402,E501

D, C, CR, CS = 'DAV:', 'urn:ietf:params:xml:ns:caldav', 'urn:ietf:params:xml:ns:carddav', \
    'http://calendarserver.org/ns/'

VTZ_BERLIN = (
    'BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n'
    'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n'
    'END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n'
    'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n'
    'END:DAYLIGHT\r\nEND:VTIMEZONE\r\n')

VTZ_NY = (
    'BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\n'
    'RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n'
    'END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\n'
    'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\n'
    'END:DAYLIGHT\r\nEND:VTIMEZONE\r\n')


def vcal(body, tz=''):
    return ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//e2e//EN\r\n' + tz + body +
            'END:VCALENDAR\r\n')


def recurring(uid):
    """Every other Monday and Wednesday 10:00 Berlin (summer: 08:00Z) until 2030-08-31,
    the 2030-06-12 one deleted, the 2030-06-24 one moved to 14:00 with its own subject."""
    return vcal(
        'BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20240101T000000Z\r\n'
        'DTSTART;TZID=Europe/Berlin:20300610T100000\r\nDTEND;TZID=Europe/Berlin:20300610T113000\r\n'
        'SUMMARY:Biweekly sync\r\nLOCATION:Room 7\r\n'
        'RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;UNTIL=20300831T220000Z\r\n'
        'EXDATE;TZID=Europe/Berlin:20300612T100000\r\nEND:VEVENT\r\n'
        'BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20240101T000000Z\r\n'
        'RECURRENCE-ID;TZID=Europe/Berlin:20300624T100000\r\n'
        'DTSTART;TZID=Europe/Berlin:20300624T140000\r\nDTEND;TZID=Europe/Berlin:20300624T153000\r\n'
        'SUMMARY:Biweekly sync (moved)\r\nEND:VEVENT\r\n' % (uid, uid), VTZ_BERLIN)


def allday(uid):
    return vcal('BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20240101T000000Z\r\n'
                'DTSTART;VALUE=DATE:20301201\r\nDTEND;VALUE=DATE:20301203\r\n'
                'SUMMARY:Offsite\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n' % uid)


def meeting(uid, me):
    """Bob's meeting in New York time (09:00 EST = 14:00Z), the user invited."""
    return vcal('BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20240101T000000Z\r\nSEQUENCE:1\r\n'
                'DTSTART;TZID=America/New_York:20301105T090000\r\n'
                'DTEND;TZID=America/New_York:20301105T100000\r\nSUMMARY:Budget review\r\n'
                'ORGANIZER;CN=Bob Boss:mailto:bob@example.com\r\n'
                'ATTENDEE;CN=Bob Boss;PARTSTAT=ACCEPTED:mailto:bob@example.com\r\n'
                'ATTENDEE;CN=Me;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=REQ-PARTICIPANT:'
                'mailto:%s\r\n'
                'ATTENDEE;CN=Olga Opt;ROLE=OPT-PARTICIPANT;PARTSTAT=TENTATIVE:'
                'mailto:olga@example.net\r\nEND:VEVENT\r\n' % (uid, me), VTZ_NY)


def todo(uid, summary='File taxes', extra=''):
    return vcal('BEGIN:VTODO\r\nUID:%s\r\nDTSTAMP:20240101T000000Z\r\nSUMMARY:%s\r\n'
                'DTSTART:20300401T080000Z\r\nDUE:20300415T160000Z\r\nPRIORITY:1\r\n%s'
                'END:VTODO\r\n' % (uid, summary, extra))


PHOTO = base64.b64encode(b'\xff\xd8\xff\xe0' + bytes(range(64)) + b'\xff\xd9').decode()

CARD = ('BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nFN:Erika Mustermann\r\n'
        'N:Mustermann;Erika;Maria;Dr.;PhD\r\nORG:Acme GmbH;Research\r\nTITLE:Chief Scientist\r\n'
        'EMAIL;TYPE=INTERNET,WORK:erika@acme.example\r\n'
        'EMAIL;TYPE=INTERNET,HOME:erika@home.example\r\n'
        'TEL;TYPE=CELL:+49 170 1234567\r\nTEL;TYPE=WORK,VOICE:+49 30 9876543\r\n'
        'TEL;TYPE=HOME,VOICE:+49 30 1112223\r\n'
        'ADR;TYPE=WORK:;;Hauptstr. 1;Berlin;BE;10115;Germany\r\n'
        'ADR;TYPE=HOME:;;Gartenweg 5;Potsdam;BB;14467;Germany\r\n'
        'BDAY:1975-08-12\r\nNOTE:Met at the conference\r\nX-PHONETIC-LAST-NAME:Musterfrau\r\n'
        'PHOTO;ENCODING=b;TYPE=JPEG:%s\r\nEND:VCARD\r\n')


def unfold(b):
    return (b.decode() if isinstance(b, bytes) else b).replace('\r\n ', '').replace('\r\n', '\n')


def q(ns, tag):
    return '{%s}%s' % (ns, tag)


class Dav:
    """A CalDAV/CardDAV client of one mailbox, over the plain HTTP listener."""

    def __init__(self, s, addr):
        self.s, self.addr = s, addr
        self.host = s.host(addr.split('@', 1)[1])

    def req(self, method, path, body=None, headers=None):
        if isinstance(body, str):
            body = body.encode()
        return self.s.request(method, path, self.host, body=body, headers=headers,
                              auth=(self.addr, self.s.pw(self.addr)))

    def cal(self, coll='calendar'):
        return '/caldav/%s/%s/' % (self.addr, coll)

    def book(self):
        return '/carddav/%s/contacts/' % self.addr

    def put(self, path, data, ctype='text/calendar; charset=utf-8'):
        st, h, body = self.req('PUT', path, data, {'Content-Type': ctype})
        assert st in (201, 204), (st, body)
        return h.get('etag')

    def get(self, path):
        st, _, body = self.req('GET', path)
        return st, unfold(body) if st == 200 else body

    def propfind(self, path, props, depth='0'):
        body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:CS="%s"><D:prop>%s'
                '</D:prop></D:propfind>' % (CS, props))
        st, _, data = self.req('PROPFIND', path, body,
                               {'Depth': depth, 'Content-Type': 'application/xml'})
        assert st == 207, (st, data)
        return ET.fromstring(data)

    def tokens(self, path):
        """(sync-token, getctag) of a collection."""
        t = self.propfind(path, '<D:sync-token/><CS:getctag/>')
        return t.findtext('.//' + q(D, 'sync-token')), t.findtext('.//' + q(CS, 'getctag'))

    def sync_collection(self, path, token):
        """{href: 'changed' | 'deleted'} and the new token."""
        body = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>%s'
                '</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>'
                '</D:sync-collection>' % token)
        st, _, data = self.req('REPORT', path, body, {'Content-Type': 'application/xml'})
        assert st == 207, (st, data)
        t = ET.fromstring(data)
        out = {}
        for r in t.findall(q(D, 'response')):
            href = r.findtext(q(D, 'href'))
            stat = r.findtext(q(D, 'status')) or ''
            out[href] = 'deleted' if ' 404 ' in stat else 'changed'
        return out, t.findtext(q(D, 'sync-token'))

    def query(self, path, comp, start, end):
        """calendar-query with a time-range: {href: calendar-data}."""
        body = ('<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="%s"><D:prop>'
                '<D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter '
                'name="VCALENDAR"><C:comp-filter name="%s"><C:time-range start="%s" end="%s"/>'
                '</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>'
                % (C, comp, start, end))
        st, _, data = self.req('REPORT', path, body,
                               {'Depth': '1', 'Content-Type': 'application/xml'})
        assert st == 207, (st, data)
        return {r.findtext(q(D, 'href')): unfold(r.findtext('.//' + q(C, 'calendar-data')) or '')
                for r in ET.fromstring(data).findall(q(D, 'response'))}

    def listing(self, path):
        """Depth 1 calendar-data of every resource: {href: data} (a calendar-query with no
        time-range matches every object)."""
        body = ('<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="%s"><D:prop>'
                '<C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/>'
                '</C:filter></C:calendar-query>' % C)
        st, _, data = self.req('REPORT', path, body,
                               {'Depth': '1', 'Content-Type': 'application/xml'})
        assert st == 207, (st, data)
        return {r.findtext(q(D, 'href')): unfold(r.findtext('.//' + q(C, 'calendar-data')) or '')
                for r in ET.fromstring(data).findall(q(D, 'response'))}


def prop(data, name):
    """The value of the first property line starting with name (params included in the
    match, so 'DTSTART;' and 'DTSTART:' differ)."""
    for line in data.split('\n'):
        if line.startswith(name):
            return line.split(':', 1)[1] if ':' in line[len(name) - 1:] else line
    return None


def tz_blob(bias=-60):
    """A Berlin-like TIME_ZONE_INFORMATION (MS-ASDTYPE): Bias -60, DST from the last
    Sunday of March 02:00 to the last Sunday of October 03:00, DaylightBias -60."""
    def st(month, hour):
        return struct.pack('<8H', 0, month, 0, 5, hour, 0, 0, 0)
    name = bytes(64)
    return base64.b64encode(struct.pack('<i', bias) + name + st(10, 3) + struct.pack('<i', 0) +
                            name + st(3, 2) + struct.pack('<i', -60)).decode()


def cal_opts():
    return ('<Options><AirSyncBase:BodyPreference xmlns:AirSyncBase="AirSyncBase:">'
            '<AirSyncBase:Type>1</AirSyncBase:Type><AirSyncBase:TruncationSize>5000'
            '</AirSyncBase:TruncationSize></AirSyncBase:BodyPreference></Options>')


def by(items, tag, value):
    for sid, app in items.items():
        if text(app, tag) == value:
            return sid, app
    raise AssertionError('no %s=%r in %s' % (tag, value, [tostring(a) for a in items.values()]))


class Pim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        cls.addClassCleanup(cls.s.__exit__, None, None, None)
        cls.s.__enter__()
        cls.n = 0

    def mailbox(self):
        Pim.n += 1
        addr = 'pim%d@example.com' % Pim.n
        self.s.user(addr, 'enhanced')
        return addr, Dav(self.s, addr)

    def tearDown(self):
        for i in range(1, Pim.n + 1):
            self.assertEqual(self.s.integrity('pim%d@example.com' % i), ['ok'])

    # -- CalDAV -> ActiveSync ------------------------------------------------------------
    def test_caldav_events_reach_activesync(self):
        addr, dav = self.mailbox()
        dav.put(dav.cal() + 'rec.ics', recurring('rec-1@example.com'))
        dav.put(dav.cal() + 'allday.ics', allday('allday-1@example.com'))
        dav.put(dav.cal() + 'meet.ics', meeting('meet-1@example.com', addr))
        for version in ('16.1', '14.1'):
            with self.subTest(version=version):
                eas = self.s.eas(addr, 'cal' + version.replace('.', ''), version)
                adds = eas.initial('Calendar', cal_opts())
                self.assertEqual(len(adds), 3, [tostring(a) for a in adds.values()])
                self.check_recurring(version, by(adds, 'Calendar:Subject', 'Biweekly sync')[1])
                self.check_allday(by(adds, 'Calendar:Subject', 'Offsite')[1])
                self.check_meeting(version, addr, by(adds, 'Calendar:Subject',
                                                     'Budget review')[1])

    def check_recurring(self, version, app):
        self.assertEqual(text(app, 'Calendar:UID'), 'rec-1@example.com')
        self.assertEqual(text(app, 'Calendar:StartTime'), '20300610T080000Z', tostring(app))
        self.assertEqual(text(app, 'Calendar:EndTime'), '20300610T093000Z')
        self.assertEqual(text(app, 'Calendar:AllDayEvent') or '0', '0')
        tz = base64.b64decode(text(app, 'Calendar:Timezone'))
        self.assertEqual(struct.unpack('<i', tz[:4])[0], -60)          # Bias: UTC+1
        self.assertEqual(struct.unpack('<i', tz[168:])[0], -60)        # DaylightBias
        self.assertEqual(struct.unpack('<8H', tz[152:168])[1:5], (3, 0, 5, 2))
        r = find(app, 'Calendar:Recurrence')
        self.assertEqual(text(r, 'Calendar:Type'), '1', tostring(r))
        self.assertEqual(text(r, 'Calendar:Interval'), '2')
        self.assertEqual(text(r, 'Calendar:DayOfWeek'), str(2 | 8))   # Monday | Wednesday
        self.assertEqual(text(r, 'Calendar:Until'), '20300831T220000Z')
        self.assertIsNone(find(r, 'Calendar:Occurrences'))
        exc = findall(app, 'Calendar:Exceptions/Calendar:Exception')
        self.assertEqual(len(exc), 2, tostring(app))
        gone = [e for e in exc if text(e, 'Calendar:Deleted') == '1']
        moved = [e for e in exc if text(e, 'Calendar:Deleted') != '1']
        self.assertEqual(len(gone), 1)
        if version >= '16.0':
            self.assertEqual(text(gone[0], 'AirSyncBase:InstanceId'), '2030-06-12T08:00:00.000Z')
            self.assertEqual(text(moved[0], 'AirSyncBase:InstanceId'),
                             '2030-06-24T08:00:00.000Z')
            self.assertEqual(text(app, 'AirSyncBase:Location/AirSyncBase:DisplayName'), 'Room 7')
        else:
            self.assertEqual(text(gone[0], 'Calendar:ExceptionStartTime'), '20300612T080000Z')
            self.assertEqual(text(moved[0], 'Calendar:ExceptionStartTime'), '20300624T080000Z')
            self.assertEqual(text(app, 'Calendar:Location'), 'Room 7')
        self.assertEqual(text(moved[0], 'Calendar:StartTime'), '20300624T120000Z')
        self.assertEqual(text(moved[0], 'Calendar:EndTime'), '20300624T133000Z')
        self.assertEqual(text(moved[0], 'Calendar:Subject'), 'Biweekly sync (moved)')

    def check_allday(self, app):
        self.assertEqual(text(app, 'Calendar:AllDayEvent'), '1', tostring(app))
        # a floating date: midnight to midnight, two days, in the zone the item names (UTC)
        self.assertEqual(text(app, 'Calendar:StartTime'), '20301201T000000Z')
        self.assertEqual(text(app, 'Calendar:EndTime'), '20301203T000000Z')
        self.assertEqual(text(app, 'Calendar:BusyStatus'), '0')               # TRANSPARENT

    def check_meeting(self, version, addr, app):
        self.assertEqual(text(app, 'Calendar:StartTime'), '20301105T140000Z', tostring(app))
        self.assertEqual(text(app, 'Calendar:EndTime'), '20301105T150000Z')
        tz = base64.b64decode(text(app, 'Calendar:Timezone'))
        self.assertEqual(struct.unpack('<i', tz[:4])[0], 300)
        self.assertEqual(text(app, 'Calendar:OrganizerEmail'), 'bob@example.com')
        self.assertEqual(text(app, 'Calendar:OrganizerName'), 'Bob Boss')
        self.assertEqual(text(app, 'Calendar:MeetingStatus'), '3')    # received meeting
        att = {text(a, 'Calendar:Email'): a
               for a in findall(app, 'Calendar:Attendees/Calendar:Attendee')}
        self.assertEqual(set(att), {'bob@example.com', addr, 'olga@example.net'})
        self.assertEqual(text(att['olga@example.net'], 'Calendar:Name'), 'Olga Opt')
        self.assertEqual(text(att['olga@example.net'], 'Calendar:AttendeeType'), '2')
        self.assertEqual(text(att[addr], 'Calendar:AttendeeType'), '1')
        self.assertEqual(text(att['olga@example.net'], 'Calendar:AttendeeStatus'), '2')
        self.assertEqual(text(att['bob@example.com'], 'Calendar:AttendeeStatus'), '3')
        self.assertEqual(text(att[addr], 'Calendar:AttendeeStatus'), '5')   # not responded

    # -- MeetingResponse -> CalDAV -------------------------------------------------------
    def test_meeting_response_sets_partstat(self):
        addr, dav = self.mailbox()
        dav.put(dav.cal() + 'meet.ics', meeting('meet-2@example.com', addr))
        eas = self.s.eas(addr, 'mr1', '16.1')
        sid, _ = by(eas.initial('Calendar', cal_opts()), 'Calendar:Subject', 'Budget review')
        st, _, t = eas.c.post('MeetingResponse', (
            '<MeetingResponse xmlns="MeetingResponse:"><Request><UserResponse>1</UserResponse>'
            '<CollectionId>%s</CollectionId><RequestId>%s</RequestId></Request>'
            '</MeetingResponse>' % (eas.fid('Calendar'), sid)))
        self.assertEqual(st, 200)
        self.assertEqual(text(t, 'MeetingResponse:Result/MeetingResponse:Status'), '1',
                         tostring(t))
        st, data = dav.get(dav.cal() + 'meet.ics')
        self.assertEqual(st, 200)
        mine = [ln for ln in data.split('\n') if ln.startswith('ATTENDEE') and
                ln.lower().endswith('mailto:' + addr)]
        self.assertEqual(len(mine), 1, data)
        self.assertIn('PARTSTAT=ACCEPTED', mine[0])
        self.assertIn('UID:meet-2@example.com', data)
        olga = [ln for ln in data.split('\n') if 'olga@example.net' in ln]
        self.assertIn('PARTSTAT=TENTATIVE', olga[0])     # others' answers untouched
        # the device sees its own answer
        chg = eas.pull('Calendar', cal_opts())['change']
        if sid in chg:
            self.assertEqual(text(chg[sid], 'Calendar:ResponseType'), '3')

    def test_invitation_by_mail_accepted_on_the_phone(self):
        """An iTIP REQUEST delivered by SMTP, accepted on the phone from the Inbox with
        SendResponse: the event is in the CalDAV calendar under its UID with the user's
        PARTSTAT=ACCEPTED, and the organizer's mailbox gets the REPLY (IMAP)."""
        addr, dav = self.mailbox()
        org = 'org%d@example.com' % Pim.n
        self.s.user(org, 'basic')
        uid = 'invite-%d@example.com' % Pim.n
        raw = ('From: Org <%s>\r\nTo: %s\r\nSubject: Invitation: Planning\r\n'
               'Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s>\r\n'
               'MIME-Version: 1.0\r\nContent-Type: text/calendar; charset=utf-8; '
               'method=REQUEST\r\n\r\n' % (org, addr, uid) +
               vcal('BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20240101T000000Z\r\nSEQUENCE:0\r\n'
                    'DTSTART;TZID=Europe/Berlin:20301202T150000\r\n'
                    'DTEND;TZID=Europe/Berlin:20301202T160000\r\nSUMMARY:Planning\r\n'
                    'ORGANIZER;CN=Org:mailto:%s\r\n'
                    'ATTENDEE;CN=Me;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:%s\r\n'
                    'END:VEVENT\r\n' % (uid, org, addr), VTZ_BERLIN)
               .replace('VERSION:2.0\r\n', 'VERSION:2.0\r\nMETHOD:REQUEST\r\n'))
        self.s.mx_send(org, [addr], raw)
        eas = self.s.eas(addr, 'inv1', '16.1')
        inbox = eas.initial('Inbox')
        rid, mail = by(inbox, 'Email:Subject', 'Invitation: Planning')
        self.assertEqual(text(mail, 'Email:MessageClass'), 'IPM.Schedule.Meeting.Request')
        st, _, t = eas.c.post('MeetingResponse', (
            '<MeetingResponse xmlns="MeetingResponse:"><Request><UserResponse>1</UserResponse>'
            '<CollectionId>%s</CollectionId><RequestId>%s</RequestId><SendResponse/></Request>'
            '</MeetingResponse>' % (eas.fid('Inbox'), rid)))
        self.assertEqual(text(t, 'MeetingResponse:Result/MeetingResponse:Status'), '1',
                         tostring(t))
        st, data = dav.get(dav.cal() + uid + '.ics')
        self.assertEqual(st, 200, data)
        self.assertIn('DTSTART;TZID=Europe/Berlin:20301202T150000', data)
        self.assertNotIn('METHOD', data)
        mine = [ln for ln in data.split('\n') if ln.startswith('ATTENDEE')]
        self.assertEqual(len(mine), 1, data)
        self.assertIn('PARTSTAT=ACCEPTED', mine[0])
        hits = dav.query(dav.cal(), 'VEVENT', '20301202T140000Z', '20301202T141000Z')
        self.assertEqual(len(hits), 1)

        def reply():
            m = self.s.imap(org)
            try:
                m.select('INBOX')
                typ, d = m.search(None, 'ALL')
                for num in d[0].split():
                    typ, msg = m.fetch(num, '(RFC822)')
                    body = msg[0][1].decode(errors='replace').replace('\r\n ', '')
                    if 'METHOD:REPLY' in body:
                        return body
            finally:
                m.logout()
            return None
        body = wait_until(reply, timeout=10)
        self.assertTrue(body, 'no REPLY reached the organizer')
        self.assertIn('UID:%s' % uid, body)
        self.assertIn('PARTSTAT=ACCEPTED', body)

    # -- ActiveSync -> CalDAV ------------------------------------------------------------
    def test_activesync_event_reaches_caldav(self):
        addr, dav = self.mailbox()
        for version in ('16.1', '14.1'):
            with self.subTest(version=version):
                v = version.replace('.', '')
                eas = self.s.eas(addr, 'add' + v, version)
                eas.initial('Calendar', cal_opts())
                uid = 'dev-%s@example.com' % v
                uid_el = ('<ClientUid xmlns="Calendar:">%s</ClientUid>' if version >= '16.0'
                          else '<UID xmlns="Calendar:">%s</UID>') % uid
                col = eas.push('Calendar', (
                    '<Add><ClientId>c1</ClientId><ApplicationData>%s'
                    '<StartTime xmlns="Calendar:">20301020T090000Z</StartTime>'
                    '<EndTime xmlns="Calendar:">20301020T100000Z</EndTime>'
                    '<Subject xmlns="Calendar:">Dentist %s</Subject>'
                    '<Recurrence xmlns="Calendar:"><Type>0</Type><Interval>1</Interval>'
                    '<Occurrences>3</Occurrences></Recurrence>'
                    '</ApplicationData></Add>' % (uid_el, v)), options=cal_opts())
                r = find(col, 'AirSync:Responses/AirSync:Add')
                self.assertEqual(text(r, 'AirSync:Status'), '1', tostring(col))
                sid = text(r, 'AirSync:ServerId')
                st, data = dav.get(dav.cal() + uid + '.ics')
                self.assertEqual(st, 200, data)
                self.assertIn('UID:%s' % uid, data)
                self.assertIn('DTSTART:20301020T090000Z', data)
                self.assertIn('RRULE:FREQ=DAILY;COUNT=3', data)
                # the change: another time, another subject
                eas.push('Calendar', (
                    '<Change><ServerId>%s</ServerId><ApplicationData>'
                    '<StartTime xmlns="Calendar:">20301021T130000Z</StartTime>'
                    '<EndTime xmlns="Calendar:">20301021T140000Z</EndTime>'
                    '<Subject xmlns="Calendar:">Dentist %s (moved)</Subject>'
                    '</ApplicationData></Change>' % (sid, v)), options=cal_opts())
                st, data = dav.get(dav.cal() + uid + '.ics')
                self.assertIn('SUMMARY:Dentist %s (moved)' % v, data)
                self.assertIn('DTSTART:20301021T130000Z', data)
                self.assertIn('UID:%s' % uid, data)
                if version >= '16.0':
                    # 16.x: an element left out of a Change keeps its value (MS-ASCAL 3.1.5.3)
                    self.assertIn('RRULE:FREQ=DAILY;COUNT=3', data)
                else:
                    self.assertNotIn('RRULE', data)     # the Change carried no Recurrence
                got = dav.query(dav.cal(), 'VEVENT', '20301021T000000Z', '20301022T000000Z')
                hits = [d for d in got.values() if 'UID:%s' % uid in d]
                self.assertEqual(len(hits), 1, got)
                self.assertIn('SUMMARY:Dentist %s (moved)' % v, hits[0])
                self.assertFalse([d for d in dav.query(dav.cal(), 'VEVENT', '20301020T000000Z',
                                                       '20301021T000000Z').values()
                                  if 'UID:%s' % uid in d])
                # delete on the device: gone over CalDAV
                eas.push('Calendar', '<Delete><ServerId>%s</ServerId></Delete>' % sid)
                self.assertEqual(dav.get(dav.cal() + uid + '.ics')[0], 404)

    def test_activesync_recurrence_and_allday_reach_caldav(self):
        """14.1: a device in Berlin adds a weekly series with a deleted and a moved
        occurrence, and an all-day event (midnight Berlin = 23:00Z the day before)."""
        addr, dav = self.mailbox()
        eas = self.s.eas(addr, 'rx141', '14.1')
        eas.initial('Calendar', cal_opts())
        tz = '<Timezone xmlns="Calendar:">%s</Timezone>' % tz_blob()
        col = eas.push('Calendar', (
            '<Add><ClientId>r</ClientId><ApplicationData>%s'
            '<StartTime xmlns="Calendar:">20300107T090000Z</StartTime>'
            '<EndTime xmlns="Calendar:">20300107T100000Z</EndTime>'
            '<Subject xmlns="Calendar:">Standup</Subject><UID xmlns="Calendar:">rx@example.com'
            '</UID><Recurrence xmlns="Calendar:"><Type>1</Type><Interval>1</Interval>'
            '<DayOfWeek>2</DayOfWeek><Until>20300225T090000Z</Until></Recurrence>'
            '<Exceptions xmlns="Calendar:"><Exception><Deleted>1</Deleted>'
            '<ExceptionStartTime>20300114T090000Z</ExceptionStartTime></Exception>'
            '<Exception><ExceptionStartTime>20300121T090000Z</ExceptionStartTime>'
            '<StartTime>20300122T150000Z</StartTime><EndTime>20300122T160000Z</EndTime>'
            '<Subject>Standup (Tuesday)</Subject></Exception></Exceptions>'
            '</ApplicationData></Add>'
            '<Add><ClientId>a</ClientId><ApplicationData>%s'
            '<AllDayEvent xmlns="Calendar:">1</AllDayEvent>'
            '<StartTime xmlns="Calendar:">20301209T230000Z</StartTime>'
            '<EndTime xmlns="Calendar:">20301210T230000Z</EndTime>'
            '<Subject xmlns="Calendar:">Holiday</Subject><UID xmlns="Calendar:">ad@example.com'
            '</UID></ApplicationData></Add>' % (tz, tz)), options=cal_opts())
        for r in findall(col, 'AirSync:Responses/AirSync:Add'):
            self.assertEqual(text(r, 'AirSync:Status'), '1', tostring(col))
        st, data = dav.get(dav.cal() + 'rx@example.com.ics')
        self.assertEqual(st, 200, data)
        tzid = prop(data, 'TZID:')
        self.assertTrue(tzid, data)
        self.assertIn('DTSTART;TZID=%s:20300107T100000' % tzid, data)
        self.assertIn('RRULE:FREQ=WEEKLY;UNTIL=20300225T090000Z;BYDAY=MO', data)
        self.assertIn('EXDATE;TZID=%s:20300114T100000' % tzid, data)
        self.assertIn('RECURRENCE-ID;TZID=%s:20300121T100000' % tzid, data)
        self.assertIn('DTSTART;TZID=%s:20300122T160000' % tzid, data)
        self.assertIn('SUMMARY:Standup (Tuesday)', data)
        # the moved occurrence is where calendar-query looks for it, the deleted one is not
        hits = dav.query(dav.cal(), 'VEVENT', '20300122T000000Z', '20300123T000000Z')
        self.assertEqual(len(hits), 1, hits)
        self.assertFalse(dav.query(dav.cal(), 'VEVENT', '20300114T000000Z', '20300115T000000Z'))
        st, data = dav.get(dav.cal() + 'ad@example.com.ics')
        self.assertIn('DTSTART;VALUE=DATE:20301210', data)
        self.assertIn('DTEND;VALUE=DATE:20301211', data)
        # a second device (16.1) gets the series back with the same shape
        other = self.s.eas(addr, 'rx161', '16.1')
        _, app = by(other.initial('Calendar', cal_opts()), 'Calendar:Subject', 'Standup')
        self.assertEqual(text(app, 'Calendar:StartTime'), '20300107T090000Z')
        self.assertEqual(text(app, 'Calendar:Recurrence/Calendar:DayOfWeek'), '2')
        self.assertEqual(text(app, 'Calendar:Recurrence/Calendar:Until'), '20300225T090000Z')
        self.assertEqual(len(findall(app, 'Calendar:Exceptions/Calendar:Exception')), 2)

    def test_personal_sensitivity(self):
        """Regression: Sensitivity 1 (Personal) came back as 2 (Private) to the other
        devices; now it is CLASS:X-PERSONAL (private to CalDAV clients, RFC 5545), kept by
        the series' overrides and by CalDAV's expanded answers (libical's clone emptied
        it to "CLASS:"); an unknown x-name CLASS from a CalDAV client is Private."""
        addr, dav = self.mailbox()
        eas = self.s.eas(addr, 'sens141', '14.1')
        eas.initial('Calendar', cal_opts())
        col = eas.push('Calendar', (
            '<Add><ClientId>p</ClientId><ApplicationData>'
            '<StartTime xmlns="Calendar:">20300107T090000Z</StartTime>'
            '<EndTime xmlns="Calendar:">20300107T100000Z</EndTime>'
            '<Subject xmlns="Calendar:">Doctor</Subject><UID xmlns="Calendar:">pers@example.com'
            '</UID><Sensitivity xmlns="Calendar:">1</Sensitivity>'
            '<Recurrence xmlns="Calendar:"><Type>0</Type><Interval>1</Interval>'
            '<Occurrences>3</Occurrences></Recurrence><Exceptions xmlns="Calendar:"><Exception>'
            '<ExceptionStartTime>20300108T090000Z</ExceptionStartTime>'
            '<StartTime>20300108T110000Z</StartTime><EndTime>20300108T120000Z</EndTime>'
            '</Exception></Exceptions></ApplicationData></Add>'), options=cal_opts())
        self.assertEqual(text(find(col, 'AirSync:Responses/AirSync:Add'), 'AirSync:Status'), '1')
        st, data = dav.get(dav.cal() + 'pers@example.com.ics')
        self.assertEqual([ln for ln in data.split('\n') if ln.startswith('CLASS')],
                         ['CLASS:X-PERSONAL'] * 2, data)
        body = ('<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="%s"><D:prop>'
                '<C:calendar-data><C:expand start="20300101T000000Z" end="20300201T000000Z"/>'
                '</C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
                '<C:comp-filter name="VEVENT"/></C:comp-filter></C:filter></C:calendar-query>'
                % C)
        st, _, out = dav.req('REPORT', dav.cal(), body,
                             {'Depth': '1', 'Content-Type': 'application/xml'})
        self.assertEqual(st, 207)
        expanded = unfold(ET.fromstring(out).findtext('.//' + q(C, 'calendar-data')))
        self.assertEqual([ln for ln in expanded.split('\n') if ln.startswith('CLASS')],
                         ['CLASS:X-PERSONAL'] * 3, expanded)
        _, app = by(self.s.eas(addr, 'sens161', '16.1').initial('Calendar', cal_opts()),
                    'Calendar:Subject', 'Doctor')
        self.assertEqual(text(app, 'Calendar:Sensitivity'), '1', tostring(app))
        self.assertIsNone(find(app, 'Calendar:Exceptions/Calendar:Exception/'
                                    'Calendar:Sensitivity'), tostring(app))
        dav.put(dav.cal() + 'x.ics', allday('xclass@example.com').replace(
            'TRANSP:TRANSPARENT', 'CLASS:X-SECRET-CLUB'))
        _, app = by(eas.pull('Calendar', cal_opts())['add'], 'Calendar:UID',
                    'xclass@example.com')
        self.assertEqual(text(app, 'Calendar:Sensitivity'), '2')

    def test_activesync_occurrence_change_and_delete_reach_caldav(self):
        """16.1: a Change and a Delete naming one occurrence (InstanceId) are an override
        (RECURRENCE-ID in the series' zone) and an EXDATE over CalDAV; a decline from the
        Calendar is PARTSTAT=DECLINED."""
        addr, dav = self.mailbox()
        dav.put(dav.cal() + 'r.ics', recurring('occ@example.com'))
        dav.put(dav.cal() + 'm.ics', meeting('occ-meet@example.com', addr))
        eas = self.s.eas(addr, 'occ161', '16.1')
        adds = eas.initial('Calendar', cal_opts())
        sid, _ = by(adds, 'Calendar:UID', 'occ@example.com')
        eas.push('Calendar', (
            '<Change><ServerId>%s</ServerId><InstanceId xmlns="AirSyncBase:">'
            '2030-06-26T08:00:00.000Z</InstanceId><ApplicationData>'
            '<Subject xmlns="Calendar:">One-off</Subject>'
            '<StartTime xmlns="Calendar:">20300626T100000Z</StartTime>'
            '<EndTime xmlns="Calendar:">20300626T110000Z</EndTime></ApplicationData></Change>'
            % sid), options=cal_opts())
        eas.push('Calendar', '<Delete><ServerId>%s</ServerId><InstanceId xmlns="AirSyncBase:">'
                 '2030-07-08T08:00:00.000Z</InstanceId></Delete>' % sid, options=cal_opts())
        st, data = dav.get(dav.cal() + 'r.ics')
        self.assertEqual(st, 200)
        self.assertIn('SUMMARY:Biweekly sync\n', data)           # the series is untouched
        self.assertIn('DTSTART;TZID=Europe/Berlin:20300610T100000', data)
        self.assertIn('EXDATE;TZID=Europe/Berlin:20300708T100000', data)
        self.assertIn('EXDATE;TZID=Europe/Berlin:20300612T100000', data)
        self.assertIn('RECURRENCE-ID;TZID=Europe/Berlin:20300626T100000', data)
        self.assertIn('DTSTART;TZID=Europe/Berlin:20300626T120000', data)
        self.assertIn('SUMMARY:One-off', data)
        hits = dav.query(dav.cal(), 'VEVENT', '20300626T095000Z', '20300626T101000Z')
        self.assertEqual(len(hits), 1, hits)
        self.assertFalse(dav.query(dav.cal(), 'VEVENT', '20300626T080000Z', '20300626T090000Z'))
        self.assertFalse(dav.query(dav.cal(), 'VEVENT', '20300708T000000Z', '20300709T000000Z'))
        msid, _ = by(adds, 'Calendar:UID', 'occ-meet@example.com')
        st, _, t = eas.c.post('MeetingResponse', (
            '<MeetingResponse xmlns="MeetingResponse:"><Request><UserResponse>3</UserResponse>'
            '<CollectionId>%s</CollectionId><RequestId>%s</RequestId></Request>'
            '</MeetingResponse>' % (eas.fid('Calendar'), msid)))
        self.assertEqual(text(t, 'MeetingResponse:Result/MeetingResponse:Status'), '1')
        st, data = dav.get(dav.cal() + 'm.ics')
        mine = [ln for ln in data.split('\n') if ln.startswith('ATTENDEE') and
                ln.endswith('mailto:' + addr)]
        self.assertIn('PARTSTAT=DECLINED', mine[0])

    def test_etag_guards_against_activesync_changes(self):
        """A CalDAV client's conditional PUT (If-Match with the ETag it read) after a device
        changed the event is refused 412, so it cannot overwrite the device's change
        unseen; with the new ETag it goes through and the device gets it."""
        addr, dav = self.mailbox()
        etag = dav.put(dav.cal() + 'e.ics', allday('etag@example.com'))
        st, h, _ = dav.req('GET', dav.cal() + 'e.ics')
        etag = h.get('etag') or etag
        self.assertTrue(etag)
        eas = self.s.eas(addr, 'etag1', '16.1')
        sid, _ = by(eas.initial('Calendar', cal_opts()), 'Calendar:UID', 'etag@example.com')
        eas.push('Calendar', '<Change><ServerId>%s</ServerId><ApplicationData>'
                 '<Subject xmlns="Calendar:">Phone title</Subject></ApplicationData></Change>'
                 % sid, options=cal_opts())
        mine = allday('etag@example.com').replace('Offsite', 'Desktop title')
        st, _, _ = dav.req('PUT', dav.cal() + 'e.ics', mine,
                           {'Content-Type': 'text/calendar', 'If-Match': etag})
        self.assertEqual(st, 412)
        st, h, data = dav.req('GET', dav.cal() + 'e.ics')
        self.assertIn(b'SUMMARY:Phone title', data)
        self.assertNotEqual(h.get('etag'), etag)
        st, _, _ = dav.req('PUT', dav.cal() + 'e.ics', mine,
                           {'Content-Type': 'text/calendar', 'If-Match': h['etag']})
        self.assertEqual(st, 204)
        chg = eas.pull('Calendar', cal_opts())['change']
        self.assertEqual(text(chg[sid], 'Calendar:Subject'), 'Desktop title')

    def test_caldav_delete_reaches_activesync(self):
        addr, dav = self.mailbox()
        eas = self.s.eas(addr, 'del1', '16.1')
        eas.initial('Calendar', cal_opts())
        dav.put(dav.cal() + 'a.ics', allday('del-1@example.com'))
        sid, _ = by(eas.pull('Calendar', cal_opts())['add'], 'Calendar:UID', 'del-1@example.com')
        st, _, _ = dav.req('DELETE', dav.cal() + 'a.ics')
        self.assertEqual(st, 204)
        self.assertEqual(eas.pull('Calendar', cal_opts())['delete'], [sid])

    # -- tasks ---------------------------------------------------------------------------
    def test_tasks_both_ways(self):
        addr, dav = self.mailbox()
        dav.put(dav.cal('tasks') + 't1.ics', todo('todo-1@example.com'))
        dav.put(dav.cal('tasks') + 't2.ics', todo(
            'todo-2@example.com', 'Renew passport',
            'STATUS:COMPLETED\r\nCOMPLETED:20300402T101500Z\r\nPERCENT-COMPLETE:100\r\n'))
        eas = self.s.eas(addr, 'task1', '16.1')
        adds = eas.initial('Tasks', cal_opts())
        _, t1 = by(adds, 'Tasks:Subject', 'File taxes')
        self.assertEqual(text(t1, 'Tasks:UtcDueDate'), '2030-04-15T16:00:00.000Z', tostring(t1))
        self.assertEqual(text(t1, 'Tasks:UtcStartDate'), '2030-04-01T08:00:00.000Z')
        self.assertEqual(text(t1, 'Tasks:Importance'), '2')
        self.assertEqual(text(t1, 'Tasks:Complete'), '0')
        _, t2 = by(adds, 'Tasks:Subject', 'Renew passport')
        self.assertEqual(text(t2, 'Tasks:Complete'), '1')
        self.assertEqual(text(t2, 'Tasks:DateCompleted'), '2030-04-02T10:15:00.000Z')
        # a todo completed by STATUS only: the same DateCompleted at every Sync (its
        # LAST-MODIFIED or DTSTAMP), not the time of the answer
        dav.put(dav.cal('tasks') + 't3.ics', todo('todo-3@example.com', 'Status only',
                                                  'STATUS:COMPLETED\r\n'))
        res = eas.pull('Tasks', cal_opts())['add']
        _, t3 = by(res, 'Tasks:Subject', 'Status only')
        self.assertEqual(text(t3, 'Tasks:DateCompleted'), '2024-01-01T00:00:00.000Z')
        # the device renames a date-only task, sending back the dates it got: CalDAV
        # keeps DUE;VALUE=DATE (not a UTC midnight)
        dav.put(dav.cal('tasks') + 't4.ics', vcal(
            'BEGIN:VTODO\r\nUID:todo-4@example.com\r\nDTSTAMP:20240101T000000Z\r\n'
            'SUMMARY:Dated\r\nDUE;VALUE=DATE:20300415\r\nEND:VTODO\r\n'))
        sid4, t4 = by(eas.pull('Tasks', cal_opts())['add'], 'Tasks:Subject', 'Dated')
        self.assertEqual(text(t4, 'Tasks:UtcDueDate'), '2030-04-15T00:00:00.000Z')
        eas.push('Tasks', (
            '<Change><ServerId>%s</ServerId><ApplicationData><Subject xmlns="Tasks:">Dated 2'
            '</Subject><UtcDueDate xmlns="Tasks:">2030-04-15T00:00:00.000Z</UtcDueDate>'
            '<DueDate xmlns="Tasks:">2030-04-15T00:00:00.000Z</DueDate>'
            '<Complete xmlns="Tasks:">0</Complete></ApplicationData></Change>' % sid4),
            options=cal_opts())
        st, data = dav.get(dav.cal('tasks') + 't4.ics')
        self.assertIn('SUMMARY:Dated 2', data)
        self.assertIn('DUE;VALUE=DATE:20300415', data)
        # the device adds a low-importance task and completes it
        col = eas.push('Tasks', (
            '<Add><ClientId>k</ClientId><ApplicationData><Subject xmlns="Tasks:">Buy milk'
            '</Subject><Importance xmlns="Tasks:">0</Importance>'
            '<UtcStartDate xmlns="Tasks:">2030-05-01T07:00:00.000Z</UtcStartDate>'
            '<StartDate xmlns="Tasks:">2030-05-01T09:00:00.000Z</StartDate>'
            '<UtcDueDate xmlns="Tasks:">2030-05-02T07:00:00.000Z</UtcDueDate>'
            '<DueDate xmlns="Tasks:">2030-05-02T09:00:00.000Z</DueDate>'
            '<Complete xmlns="Tasks:">0</Complete></ApplicationData></Add>'), options=cal_opts())
        sid = text(find(col, 'AirSync:Responses/AirSync:Add'), 'AirSync:ServerId')
        # another device gets the same local times (the device's offset is kept)
        _, got = by(self.s.eas(addr, 'task2', '14.1').initial('Tasks', cal_opts()),
                    'Tasks:Subject', 'Buy milk')
        self.assertEqual(text(got, 'Tasks:StartDate'), '2030-05-01T09:00:00.000Z', tostring(got))
        self.assertEqual(text(got, 'Tasks:DueDate'), '2030-05-02T09:00:00.000Z')
        self.assertEqual(text(got, 'Tasks:UtcDueDate'), '2030-05-02T07:00:00.000Z')
        self.assertEqual(text(got, 'Tasks:Importance'), '0')
        data = [d for d in dav.listing(dav.cal('tasks')).values() if 'SUMMARY:Buy milk' in d]
        self.assertEqual(len(data), 1)
        self.assertIn('DUE;X-EAS-UTC-OFFSET=7200:20300502T070000Z', data[0])
        self.assertIn('DTSTART;X-EAS-UTC-OFFSET=7200:20300501T070000Z', data[0])
        self.assertIn('PRIORITY:9', data[0])
        eas.push('Tasks', (
            '<Change><ServerId>%s</ServerId><ApplicationData><Subject xmlns="Tasks:">Buy milk'
            '</Subject><Complete xmlns="Tasks:">1</Complete><DateCompleted xmlns="Tasks:">'
            '2030-05-01T18:00:00.000Z</DateCompleted></ApplicationData></Change>' % sid),
            options=cal_opts())
        data = [d for d in dav.listing(dav.cal('tasks')).values() if 'SUMMARY:Buy milk' in d]
        self.assertIn('STATUS:COMPLETED', data[0])
        self.assertIn('COMPLETED:20300501T180000Z', data[0])

    # -- notes ---------------------------------------------------------------------------
    def test_notes_both_ways(self):
        """VJOURNAL in the CalDAV notes collection <-> ActiveSync Notes (14.1+): SUMMARY /
        Subject, DESCRIPTION / Body, CATEGORIES / Categories; deletes both ways."""
        addr, dav = self.mailbox()
        dav.put(dav.cal('notes') + 'n.ics', vcal(
            'BEGIN:VJOURNAL\r\nUID:note-1@example.com\r\nDTSTAMP:20240101T000000Z\r\n'
            'SUMMARY:Groceries\r\nDESCRIPTION:milk\\neggs\r\nCATEGORIES:Home\r\n'
            'END:VJOURNAL\r\n'))
        eas = self.s.eas(addr, 'note1', '14.1')
        sid, app = by(eas.initial('Notes', cal_opts()), 'Notes:Subject', 'Groceries')
        self.assertEqual(text(app, 'AirSyncBase:Body/AirSyncBase:Data'), 'milk\neggs')
        self.assertEqual(text(app, 'Notes:Categories/Notes:Category'), 'Home')
        self.assertEqual(text(app, 'Notes:MessageClass'), 'IPM.StickyNote')
        col = eas.push('Notes', (
            '<Add><ClientId>a</ClientId><ApplicationData><Subject xmlns="Notes:">Idea</Subject>'
            '<Body xmlns="AirSyncBase:"><Type>1</Type><Data>line1\nline2</Data></Body>'
            '<Categories xmlns="Notes:"><Category>Work</Category></Categories>'
            '</ApplicationData></Add><Delete><ServerId>%s</ServerId></Delete>' % sid),
            options=cal_opts())
        self.assertEqual(text(find(col, 'AirSync:Responses/AirSync:Add'), 'AirSync:Status'), '1')
        notes = list(dav.listing(dav.cal('notes')).items())
        self.assertEqual(len(notes), 1, notes)
        href, data = notes[0]
        for line in ('SUMMARY:Idea', 'DESCRIPTION:line1\\nline2', 'CATEGORIES:Work'):
            self.assertIn(line, data.split('\n'), data)
        self.assertEqual(dav.req('DELETE', href)[0], 204)
        self.assertEqual(len(eas.pull('Notes', cal_opts())['delete']), 1)

    # -- contacts ------------------------------------------------------------------------
    def test_contacts_both_ways(self):
        addr, dav = self.mailbox()
        dav.put(dav.book() + 'erika.vcf', CARD % ('card-1@example.com', PHOTO),
                'text/vcard; charset=utf-8')
        for version in ('16.1', '14.1'):
            with self.subTest(version=version):
                eas = self.s.eas(addr, 'cn' + version.replace('.', ''), version)
                sid, app = by(eas.initial('Contacts', cal_opts()), 'Contacts:LastName',
                              'Mustermann')
                want = {
                    'FirstName': 'Erika', 'MiddleName': 'Maria', 'Title': 'Dr.',
                    'Suffix': 'PhD', 'FileAs': 'Erika Mustermann', 'CompanyName': 'Acme GmbH',
                    'Department': 'Research', 'JobTitle': 'Chief Scientist',
                    'Email1Address': 'erika@acme.example', 'Email2Address': 'erika@home.example',
                    'MobilePhoneNumber': '+49 170 1234567',
                    'BusinessPhoneNumber': '+49 30 9876543', 'HomePhoneNumber': '+49 30 1112223',
                    'BusinessAddressStreet': 'Hauptstr. 1', 'BusinessAddressCity': 'Berlin',
                    'BusinessAddressState': 'BE', 'BusinessAddressPostalCode': '10115',
                    'BusinessAddressCountry': 'Germany', 'HomeAddressStreet': 'Gartenweg 5',
                    'HomeAddressCity': 'Potsdam', 'HomeAddressPostalCode': '14467',
                    'Birthday': '1975-08-12T00:00:00.000Z', 'Picture': PHOTO,
                    'YomiLastName': 'Musterfrau',
                }
                got = {k: text(app, 'Contacts:' + k) for k in want}
                self.assertEqual(got, want, tostring(app))
                self.assertEqual(text(app, 'AirSyncBase:Body/AirSyncBase:Data'),
                                 'Met at the conference')
        # the 14.1 device changes only the job title, sending every field back: the rest
        # of the card stays as the CardDAV client wrote it
        echo = ''.join(ET.tostring(ch, encoding='unicode') for ch in app
                       if not ch.tag.endswith('}Body'))
        echo = echo.replace('Chief Scientist', 'Chief Officer')
        col = eas.push('Contacts', '<Change><ServerId>%s</ServerId><ApplicationData>%s'
                       '</ApplicationData></Change>' % (sid, echo), options=cal_opts())
        r = find(col, 'AirSync:Responses/AirSync:Change')
        self.assertTrue(r is None or text(r, 'AirSync:Status') == '1', tostring(col))
        st, card = dav.get(dav.book() + 'erika.vcf')
        lines = card.split('\n')
        self.assertIn('TITLE:Chief Officer', lines)
        for line in ('EMAIL;TYPE=INTERNET,WORK:erika@acme.example',
                     'EMAIL;TYPE=INTERNET,HOME:erika@home.example', 'BDAY:1975-08-12',
                     'N:Mustermann;Erika;Maria;Dr.;PhD', 'X-PHONETIC-LAST-NAME:Musterfrau',
                     'NOTE:Met at the conference'):
            self.assertIn(line, lines, card)
        self.assertIn(PHOTO, card.replace('\n', ''))
        # the device adds one with the same fields; CardDAV serves them
        col = eas.push('Contacts', (
            '<Add><ClientId>k</ClientId><ApplicationData>' + ''.join(
                '<%s xmlns="Contacts:">%s</%s>' % (k, v, k) for k, v in (
                    ('FirstName', 'Hans'), ('LastName', 'Meier'), ('MiddleName', 'Peter'),
                    ('CompanyName', 'Meier AG'), ('Department', 'Sales'),
                    ('JobTitle', 'Director'), ('Email1Address', 'hans@meier.example'),
                    ('Email2Address', 'hp@private.example'),
                    ('MobilePhoneNumber', '+41 79 555 0000'),
                    ('BusinessPhoneNumber', '+41 44 555 1111'),
                    ('HomeAddressStreet', 'Seeweg 2'), ('HomeAddressCity', 'Zurich'),
                    ('HomeAddressPostalCode', '8001'), ('HomeAddressCountry', 'Switzerland'),
                    ('Birthday', '1966-02-03T00:00:00.000Z'), ('Picture', PHOTO))) +
            '<Body xmlns="AirSyncBase:"><Type>1</Type><Data>VIP customer</Data></Body>'
            '</ApplicationData></Add>'), options=cal_opts())
        sid = text(find(col, 'AirSync:Responses/AirSync:Add'), 'AirSync:ServerId')
        self.assertTrue(sid, tostring(col))
        st, _, data = dav.req('REPORT', dav.book(), (
            '<?xml version="1.0"?><CR:addressbook-query xmlns:D="DAV:" xmlns:CR="%s"><D:prop>'
            '<CR:address-data/></D:prop></CR:addressbook-query>' % CR),
            {'Depth': '1', 'Content-Type': 'application/xml'})
        self.assertEqual(st, 207)
        cards = [unfold(e.text) for e in ET.fromstring(data).iter(q(CR, 'address-data'))]
        hans = [c for c in cards if 'Meier' in c]
        self.assertEqual(len(hans), 1, cards)
        card = hans[0]
        for line in ('N:Meier;Hans;Peter;;', 'FN:Hans Peter Meier', 'ORG:Meier AG;Sales',
                     'TITLE:Director', 'BDAY:1966-02-03', 'NOTE:VIP customer'):
            self.assertIn(line, card.split('\n'), card)
        self.assertRegex(card, r'EMAIL[^:\n]*:hans@meier\.example')
        self.assertRegex(card, r'EMAIL[^:\n]*:hp@private\.example')
        self.assertRegex(card, r'TEL;[^:\n]*CELL[^:\n]*:\+41 79 555 0000')
        self.assertRegex(card, r'TEL;[^:\n]*WORK[^:\n]*:\+41 44 555 1111')
        self.assertRegex(card, r'ADR;[^:\n]*HOME[^:\n]*:;;Seeweg 2;Zurich;;8001;Switzerland')
        self.assertIn(PHOTO, re.sub(r'\s', '', card))

    # -- sync tokens and SyncKeys --------------------------------------------------------
    def test_dav_tokens_follow_activesync(self):
        addr, dav = self.mailbox()
        dav.put(dav.cal() + 'keep.ics', allday('keep@example.com'))
        dav.put(dav.cal() + 'change.ics', allday('change@example.com'))
        dav.put(dav.cal() + 'gone.ics', allday('gone@example.com'))
        eas = self.s.eas(addr, 'tok1', '16.1')
        adds = eas.initial('Calendar', cal_opts())
        tok, ctag = dav.tokens(dav.cal())
        self.assertTrue(tok and ctag)
        # nothing changed: an empty answer and the same token
        got, tok2 = dav.sync_collection(dav.cal(), tok)
        self.assertEqual(got, {})
        chg_sid, _ = by(adds, 'Calendar:UID', 'change@example.com')
        gone_sid, _ = by(adds, 'Calendar:UID', 'gone@example.com')
        col = eas.push('Calendar', (
            '<Change><ServerId>%s</ServerId><ApplicationData>'
            '<AllDayEvent xmlns="Calendar:">1</AllDayEvent>'
            '<StartTime xmlns="Calendar:">20301210T000000Z</StartTime>'
            '<EndTime xmlns="Calendar:">20301211T000000Z</EndTime>'
            '<Subject xmlns="Calendar:">Changed on the phone</Subject></ApplicationData>'
            '</Change><Delete><ServerId>%s</ServerId></Delete>'
            '<Add><ClientId>n</ClientId><ApplicationData>'
            '<StartTime xmlns="Calendar:">20301212T100000Z</StartTime>'
            '<EndTime xmlns="Calendar:">20301212T110000Z</EndTime>'
            '<Subject xmlns="Calendar:">New on the phone</Subject>'
            '<ClientUid xmlns="Calendar:">new@example.com</ClientUid></ApplicationData></Add>'
            % (chg_sid, gone_sid)), options=cal_opts())
        new_sid = text(find(col, 'AirSync:Responses/AirSync:Add'), 'AirSync:ServerId')
        tok3, ctag3 = dav.tokens(dav.cal())
        self.assertNotEqual(tok3, tok)
        self.assertNotEqual(ctag3, ctag)
        got, tok4 = dav.sync_collection(dav.cal(), tok)
        self.assertEqual(tok4, tok3)
        # a device's new item is named after its UID (docs/dav.md)
        new_href = dav.cal() + 'new@example.com.ics'
        self.assertEqual(got, {dav.cal() + 'change.ics': 'changed',
                               dav.cal() + 'gone.ics': 'deleted', new_href: 'changed'}, got)
        st, data = dav.get(new_href)
        self.assertIn('UID:new@example.com', data)
        st, data = dav.get(dav.cal() + 'change.ics')
        self.assertIn('DTSTART;VALUE=DATE:20301210', data)
        # DAV PUT / PUT / DELETE: the device's next Sync has Add / Change / Delete
        dav.put(dav.cal() + 'dav-new.ics', allday('dav-new@example.com'))
        dav.put(dav.cal() + 'keep.ics', allday('keep@example.com').replace('Offsite', 'Kept'))
        self.assertEqual(dav.req('DELETE', new_href)[0], 204)
        res = eas.pull('Calendar', cal_opts())
        self.assertEqual([text(a, 'Calendar:UID') for a in res['add'].values()],
                         ['dav-new@example.com'])
        self.assertEqual([text(a, 'Calendar:Subject') for a in res['change'].values()],
                         ['Kept'])
        self.assertEqual(res['delete'], [new_sid])
        got, _ = dav.sync_collection(dav.cal(), tok4)
        self.assertEqual(got, {dav.cal() + 'dav-new.ics': 'changed',
                               dav.cal() + 'keep.ics': 'changed', new_href: 'deleted'})

    def test_carddav_token_follows_activesync(self):
        addr, dav = self.mailbox()
        eas = self.s.eas(addr, 'tok2', '16.1')
        eas.initial('Contacts', cal_opts())
        tok, ctag = dav.tokens(dav.book())
        col = eas.push('Contacts', '<Add><ClientId>a</ClientId><ApplicationData>'
                       '<FirstName xmlns="Contacts:">Ada</FirstName></ApplicationData></Add>')
        sid = text(find(col, 'AirSync:Responses/AirSync:Add'), 'AirSync:ServerId')
        tok2, ctag2 = dav.tokens(dav.book())
        self.assertNotEqual((tok2, ctag2), (tok, ctag))
        got = dav.sync_collection(dav.book(), tok)[0]
        self.assertEqual(list(got.values()), ['changed'], got)
        href = list(got)[0]
        st, card = dav.get(href)
        self.assertIn('FN:Ada', card)
        eas.push('Contacts', '<Delete><ServerId>%s</ServerId></Delete>' % sid)
        self.assertEqual(dav.sync_collection(dav.book(), tok2)[0], {href: 'deleted'})
        # CardDAV PUT / PUT / DELETE: Add / Change / Delete on the device
        card = 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:k1\r\nFN:Kai One\r\nN:One;Kai;;;\r\nEND:VCARD\r\n'
        dav.put(dav.book() + 'k1.vcf', card, 'text/vcard')
        res = eas.pull('Contacts', cal_opts())
        self.assertEqual([text(a, 'Contacts:FirstName') for a in res['add'].values()], ['Kai'])
        dav.put(dav.book() + 'k1.vcf', card.replace('Kai', 'Kay'), 'text/vcard')
        res2 = eas.pull('Contacts', cal_opts())
        self.assertEqual(list(res2['change']), list(res['add']))
        self.assertEqual(text(list(res2['change'].values())[0], 'Contacts:FirstName'), 'Kay')
        self.assertEqual(dav.req('DELETE', dav.book() + 'k1.vcf')[0], 204)
        self.assertEqual(eas.pull('Contacts', cal_opts())['delete'], list(res['add']))

    # -- push ----------------------------------------------------------------------------
    def test_ping_wakes_on_caldav_put(self):
        addr, dav = self.mailbox()
        eas = self.s.eas(addr, 'ping1', '16.1')
        eas.initial('Calendar', cal_opts())
        ping = ('<Ping xmlns="Ping:"><HeartbeatInterval>30</HeartbeatInterval><Folders><Folder>'
                '<Id>%s</Id><Class>Calendar</Class></Folder></Folders></Ping>'
                % eas.fid('Calendar'))
        idler = Idler(self.s, addr)      # an IMAP IDLE on INBOX, beside the Ping
        idler.idle()
        out = {}
        th = threading.Thread(target=lambda: out.update(r=eas.timed_post('Ping', ping)))
        th.start()
        time.sleep(1.0)                  # the Ping is waiting
        t0 = time.monotonic()
        dav.put(dav.cal() + 'p.ics', allday('ping@example.com'))
        th.join(30)
        st, t1, tree = out['r']
        self.assertEqual(st, 200)
        self.assertEqual(text(tree, 'Ping:Status'), '2', tostring(tree))
        self.assertEqual(text(tree, 'Ping:Folders/Ping:Folder'), eas.fid('Calendar'))
        print('\nPing woken by a CalDAV PUT after %.1f ms' % ((t1 - t0) * 1000))
        # the calendar change is nothing to INBOX: the IDLE stays silent, and still works
        self.assertTrue(idler.quiet(1.0))
        self.s.mx_send('x@example.net', [addr], message('after the PUT', to=addr))
        self.assertIn('EXISTS', idler.wait()[1])
        idler.done()
        idler.close()

    # -- concurrency ---------------------------------------------------------------------
    def test_concurrent_caldav_and_activesync(self):
        """CalDAV PUTs and ActiveSync Adds/Changes on one calendar at once, 10 s at most:
        every write is there once, the last write of each item wins, both sides agree;
        items both sides change at the same time end as one side's whole version, the
        same on both sides."""
        addr, dav = self.mailbox()
        eas = self.s.eas(addr, 'conc1', '16.1')
        eas.initial('Calendar', cal_opts())
        n, k, errors = 25, 6, []
        deadline = time.time() + 10
        for j in range(k):
            dav.put(dav.cal() + 's%d.ics' % j, allday('s%d@example.com' % j))
        both = {}

        def dav_side():
            try:
                for i in range(n):
                    dav.put(dav.cal() + 'd%d.ics' % i, allday('d%d@example.com' % i)
                            .replace('Offsite', 'dav %d v1' % i))
                for i in range(n):
                    dav.put(dav.cal() + 'd%d.ics' % i, allday('d%d@example.com' % i)
                            .replace('Offsite', 'dav %d v2' % i))
                    if i < k:
                        dav.put(dav.cal() + 's%d.ics' % i, allday('s%d@example.com' % i)
                                .replace('Offsite', 'shared %d dav' % i))
                    if time.time() > deadline:
                        break
            except Exception as e:     # noqa: BLE001 - reported below
                errors.append(e)

        def eas_side():
            try:
                dev = self.s.eas(addr, 'conc2', '16.1')
                shared = {text(a, 'Calendar:UID'): sid
                          for sid, a in dev.initial('Calendar', cal_opts()).items()
                          if text(a, 'Calendar:UID').startswith('s')}
                both['dev'] = dev
                sids = {}
                for i in range(n):
                    col = dev.push('Calendar', (
                        '<Add><ClientId>e%d</ClientId><ApplicationData>'
                        '<StartTime xmlns="Calendar:">203010%02dT100000Z</StartTime>'
                        '<EndTime xmlns="Calendar:">203010%02dT103000Z</EndTime>'
                        '<Subject xmlns="Calendar:">eas %d v1</Subject>'
                        '<ClientUid xmlns="Calendar:">e%d@example.com</ClientUid>'
                        '</ApplicationData></Add>' % (i, i + 1, i + 1, i, i)),
                        options=cal_opts())
                    r = find(col, 'AirSync:Responses/AirSync:Add')
                    assert text(r, 'AirSync:Status') == '1', tostring(col)
                    sids[i] = text(r, 'AirSync:ServerId')
                for i in range(n):
                    col = dev.push('Calendar', (
                        '<Change><ServerId>%s</ServerId><ApplicationData>'
                        '<StartTime xmlns="Calendar:">203010%02dT100000Z</StartTime>'
                        '<EndTime xmlns="Calendar:">203010%02dT103000Z</EndTime>'
                        '<Subject xmlns="Calendar:">eas %d v2</Subject></ApplicationData>'
                        '</Change>' % (sids[i], i + 1, i + 1, i)), options=cal_opts())
                    r = find(col, 'AirSync:Responses/AirSync:Change')
                    assert r is None or text(r, 'AirSync:Status') == '1', tostring(col)
                    uid = 's%d@example.com' % i
                    if uid in shared:
                        dev.push('Calendar', (
                            '<Change><ServerId>%s</ServerId><ApplicationData>'
                            '<AllDayEvent xmlns="Calendar:">1</AllDayEvent>'
                            '<StartTime xmlns="Calendar:">20301201T000000Z</StartTime>'
                            '<EndTime xmlns="Calendar:">20301203T000000Z</EndTime>'
                            '<Subject xmlns="Calendar:">shared %d eas</Subject>'
                            '</ApplicationData></Change>' % (shared[uid], i)),
                            options=cal_opts())
            except Exception as e:     # noqa: BLE001
                errors.append(e)

        t0 = time.monotonic()
        ths = [threading.Thread(target=dav_side), threading.Thread(target=eas_side)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(15)
        took = time.monotonic() - t0
        self.assertFalse(errors, errors)
        want = {'d%d@example.com' % i: 'dav %d v2' % i for i in range(n)}
        want.update({'e%d@example.com' % i: 'eas %d v2' % i for i in range(n)})
        over_dav = {}
        for data in dav.listing(dav.cal()).values():
            uid = prop(data, 'UID:')
            self.assertNotIn(uid, over_dav, 'duplicate ' + uid)
            over_dav[uid] = prop(data, 'SUMMARY:')
        for j in range(k):
            uid = 's%d@example.com' % j
            self.assertIn(over_dav.get(uid), ('shared %d dav' % j, 'shared %d eas' % j))
            want[uid] = over_dav[uid]
        self.assertEqual(over_dav, want)
        # the first device catches up and has exactly the same set
        items = eas.pull('Calendar', cal_opts())
        self.assertFalse(items['delete'])
        uids = [text(a, 'Calendar:UID') for a in items['add'].values()]
        self.assertEqual(len(uids), len(set(uids)))
        self.assertEqual({text(a, 'Calendar:UID'): text(a, 'Calendar:Subject')
                          for a in items['add'].values()}, want)
        # the writing device converges too: what it lacks comes as Adds and Changes
        dev = both['dev']
        res = dev.pull('Calendar', cal_opts())
        self.assertFalse(res['delete'])
        got = {text(a, 'Calendar:UID'): text(a, 'Calendar:Subject')
               for a in list(res['add'].values()) + list(res['change'].values())}
        for uid, subject in got.items():
            self.assertEqual(want[uid], subject, uid)
        for j in range(k):    # the shared items it wrote last are not sent back to it
            uid = 's%d@example.com' % j
            self.assertTrue(uid in got or want[uid] == 'shared %d eas' % j, (uid, got))
        print('\n%d CalDAV PUTs and %d ActiveSync Adds/Changes at once in %.2f s'
              % (2 * n, 2 * n, took))


if __name__ == '__main__':
    unittest.main(verbosity=2)
