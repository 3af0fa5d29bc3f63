"""ActiveSync driven by a client nobody here wrote: the WBXML codec of Thunderbird's EAS
add-on (Debian's webext-eas4tbsync, loaded in Node by eas4tbsync/harness.js) encodes every
request and decodes every answer, in the sequence that add-on runs for an account with
contacts, a calendar and tasks (protocol 14.0, which it prefers): OPTIONS, Settings with
DeviceInformation, Provision twice, FolderSync, then for each folder Sync with SyncKey 0,
GetItemEstimate and Sync of the changes, then items made in Thunderbird sent as Adds.

The data comes in over CalDAV/CardDAV first and what Thunderbird adds is read back over
CalDAV/CardDAV, so the test also checks one store behind both doors.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_eas_tbsync.py
"""
import base64
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from eas_client import EasClient, find, findall, text  # noqa: E402
from eas4tbsync import tbcodec  # noqa: E402

ALICE = ('alice@example.com', 'Alice-Pass1!')
A, FH, GIE = 'AirSync:', 'FolderHierarchy:', 'GetItemEstimate:'
CAL, CON, TSK, ASB = 'Calendar:', 'Contacts:', 'Tasks:', 'AirSyncBase:'

EVENT = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n'
         'UID:tb-event-1\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300107T090000Z\r\n'
         'DTEND:20300107T100000Z\r\nSUMMARY:Planning\r\nLOCATION:Room 4\r\nEND:VEVENT\r\n'
         'END:VCALENDAR\r\n')
TODO = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\n'
        'UID:tb-todo-1\r\nDTSTAMP:20300101T000000Z\r\nSUMMARY:File the report\r\n'
        'DUE:20300110T170000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n')
CARD = ('BEGIN:VCARD\r\nVERSION:3.0\r\nUID:tb-card-1\r\nFN:Grace Hopper\r\n'
        'N:Hopper;Grace;;;\r\nEMAIL;TYPE=INTERNET:grace@example.net\r\nEND:VCARD\r\n')


# TIME_ZONE_INFORMATION of UTC (bias 0, no daylight rule): 172 zero bytes.
UTC_BLOB = base64.b64encode(bytes(172)).decode()


class TbSyncClient:
    """Requests encoded and answers decoded by the add-on's codec only."""

    def __init__(self, p, tb):
        self.c = EasClient(p, ALICE[0], ALICE[1], device_id='tbsync1234', version='14.0',
                           device_type='TbSync', user_agent='Thunderbird ActiveSync')
        self.tb = tb

    def post(self, cmd, xml):
        c = self.c
        path = '%s?%s' % (c.PATH, urllib.parse.urlencode({
            'Cmd': cmd, 'User': c.user, 'DeviceId': c.device_id, 'DeviceType': c.device_type}))
        h = {'MS-ASProtocolVersion': c.version,
             'Content-Type': 'application/vnd.ms-sync.wbxml'}
        if c.policy_key:
            h['X-MS-PolicyKey'] = str(c.policy_key)
        st, h, data = c.request('POST', path, body=self.tb.encode(xml), headers=h)
        assert st == 200, (cmd, st, data[:200])
        assert h.get('content-type', '').startswith('application/vnd.ms-sync.wbxml'), h
        return self.tb.decode(data)


@unittest.skipIf(tbcodec.available(), tbcodec.available() or '')
class TbSync(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(start=False, extra_config='[auth]\nfail_max = 100000\n').__enter__()
        cls.p.add_demo()
        cls.p.start()
        host = cls.p.label_host()
        for path, body, ct in (('/caldav/alice@example.com/calendar/e1.ics', EVENT, 'text/calendar'),
                               ('/caldav/alice@example.com/tasks/t1.ics', TODO, 'text/calendar'),
                               ('/carddav/alice@example.com/contacts/c1.vcf', CARD, 'text/vcard')):
            st, _, b = cls.p.request('PUT', path, host, body=body.encode(),
                                     headers={'Content-Type': ct}, auth=ALICE)
            assert st == 201, b
        cls.tb = tbcodec.TbCodec()

    @classmethod
    def tearDownClass(cls):
        cls.tb.close()
        cls.p.__exit__(None, None, None)

    def dav_get(self, path):
        st, _, b = self.p.request('GET', path, self.p.label_host(), auth=ALICE)
        self.assertEqual(st, 200)
        return b.decode()

    def collection(self, c, fid, options, expect_count):
        t = c.post('Sync', '<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>0</SyncKey>'
                   '<CollectionId>%s</CollectionId></Collection></Collections></Sync>' % fid)
        coll = find(t, A + 'Collections/' + A + 'Collection')
        self.assertEqual(text(coll, A + 'Status'), '1')
        key = text(coll, A + 'SyncKey')
        t = c.post('GetItemEstimate', '<GetItemEstimate xmlns="GetItemEstimate:" '
                   'xmlns:A="AirSync:"><Collections><Collection><A:SyncKey>%s</A:SyncKey>'
                   '<CollectionId>%s</CollectionId><A:Options>%s</A:Options></Collection>'
                   '</Collections></GetItemEstimate>'
                   % (key, fid, options.replace('<FilterType>', '<A:FilterType>')
                      .replace('</FilterType>', '</A:FilterType>')))
        r = find(t, GIE + 'Response')
        self.assertEqual(text(r, GIE + 'Status'), '1')
        self.assertEqual(text(r, GIE + 'Collection/' + GIE + 'Estimate'), str(expect_count))
        t = c.post('Sync', '<Sync xmlns="AirSync:" xmlns:B="AirSyncBase:"><Collections>'
                   '<Collection><SyncKey>%s</SyncKey><CollectionId>%s</CollectionId>'
                   '<DeletesAsMoves>1</DeletesAsMoves><GetChanges>1</GetChanges>'
                   '<WindowSize>100</WindowSize><Options>%s<B:BodyPreference><B:Type>1</B:Type>'
                   '<B:TruncationSize>200000</B:TruncationSize></B:BodyPreference></Options>'
                   '</Collection></Collections></Sync>' % (key, fid, options))
        coll = find(t, A + 'Collections/' + A + 'Collection')
        self.assertEqual(text(coll, A + 'Status'), '1')
        adds = findall(coll, A + 'Commands/' + A + 'Add')
        self.assertEqual(len(adds), expect_count)
        return text(coll, A + 'SyncKey'), [find(a, A + 'ApplicationData') for a in adds]

    def add(self, c, fid, key, appdata):
        t = c.post('Sync', '<Sync xmlns="AirSync:" xmlns:C="Calendar:" xmlns:K="Contacts:" '
                   'xmlns:T="Tasks:" xmlns:B="AirSyncBase:"><Collections><Collection>'
                   '<SyncKey>%s</SyncKey><CollectionId>%s</CollectionId><GetChanges>0'
                   '</GetChanges><Commands><Add><ClientId>tb-new-1</ClientId><ApplicationData>%s'
                   '</ApplicationData></Add></Commands></Collection></Collections></Sync>'
                   % (key, fid, appdata))
        r = find(t, A + 'Collections/' + A + 'Collection/' + A + 'Responses/' + A + 'Add')
        self.assertEqual(text(r, A + 'Status'), '1')
        self.assertEqual(text(r, A + 'ClientId'), 'tb-new-1')
        return text(r, A + 'ServerId')

    def test_account_setup_and_sync(self):
        c = TbSyncClient(self.p, self.tb)
        st, h, _ = c.c.options()
        self.assertEqual(st, 200)
        self.assertIn('14.0', h['ms-asprotocolversions'].split(','))
        t = c.post('Settings', '<Settings xmlns="Settings:"><DeviceInformation><Set>'
                   '<Model>Computer</Model><FriendlyName>TbSync on Linux</FriendlyName>'
                   '<OS>Linux</OS><UserAgent>Thunderbird ActiveSync</UserAgent></Set>'
                   '</DeviceInformation></Settings>')
        self.assertEqual(text(t, 'Settings:Status'), '1')
        pol = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>'
               'MS-EAS-Provisioning-WBXML</PolicyType>%s</Policy></Policies></Provision>')
        t = c.post('Provision', pol % '')
        key = text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
        self.assertTrue(key)
        c.c.policy_key = int(key)
        t = c.post('Provision', pol % ('<PolicyKey>%s</PolicyKey><Status>1</Status>' % key))
        c.c.policy_key = int(text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'))
        t = c.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey>'
                   '</FolderSync>')
        self.assertEqual(text(t, FH + 'Status'), '1')
        by_type = {text(a, FH + 'Type'): text(a, FH + 'ServerId')
                   for a in findall(t, FH + 'Changes/' + FH + 'Add')}
        for want in ('7', '8', '9'):
            self.assertIn(want, by_type)

        # contacts
        key, items = self.collection(c, by_type['9'], '', 1)
        self.assertEqual(text(items[0], CON + 'FirstName'), 'Grace')
        self.assertEqual(text(items[0], CON + 'LastName'), 'Hopper')
        self.assertIn('grace@example.net', text(items[0], CON + 'Email1Address'))
        self.add(c, by_type['9'], key, '<K:FirstName>Ada</K:FirstName><K:LastName>Lovelace'
                 '</K:LastName><K:FileAs>Lovelace, Ada</K:FileAs>'
                 '<K:Email1Address>ada@example.net</K:Email1Address>')
        st, _, b = self.p.request('REPORT', '/carddav/alice@example.com/contacts/',
                                  self.p.label_host(), auth=ALICE, headers={
                                      'Depth': '1', 'Content-Type': 'application/xml'},
                                  body=b'<C:addressbook-query xmlns:D="DAV:" '
                                       b'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop>'
                                       b'<C:address-data/></D:prop></C:addressbook-query>')
        self.assertEqual(st, 207)
        self.assertIn(b'ada@example.net', b)
        self.assertIn(b'Lovelace', b)

        # calendar (Thunderbird's default window: all)
        key, items = self.collection(c, by_type['8'], '<FilterType>0</FilterType>', 1)
        self.assertEqual(text(items[0], CAL + 'Subject'), 'Planning')
        self.assertEqual(text(items[0], CAL + 'Location'), 'Room 4')
        self.assertEqual(text(items[0], CAL + 'StartTime'), '20300107T090000Z')
        self.assertEqual(text(items[0], CAL + 'EndTime'), '20300107T100000Z')
        self.assertEqual(text(items[0], CAL + 'UID'), 'tb-event-1')
        self.add(c, by_type['8'], key, '<C:Timezone>%s</C:Timezone>' % UTC_BLOB +
                 '<C:AllDayEvent>0</C:AllDayEvent><C:StartTime>20300108T140000Z</C:StartTime>'
                 '<C:EndTime>20300108T150000Z</C:EndTime><C:Subject>Review</C:Subject>'
                 '<C:UID>tb-made-event</C:UID><C:BusyStatus>2</C:BusyStatus>'
                 '<C:MeetingStatus>0</C:MeetingStatus><C:Sensitivity>0</C:Sensitivity>'
                 '<C:DtStamp>20300101T000000Z</C:DtStamp>')
        ics = self.dav_get('/caldav/alice@example.com/calendar/tb-made-event.ics')
        self.assertIn('SUMMARY:Review', ics)
        self.assertIn('DTSTART', ics)
        self.assertIn('20300108T', ics)

        # tasks
        key, items = self.collection(c, by_type['7'], '', 1)
        self.assertEqual(text(items[0], TSK + 'Subject'), 'File the report')
        self.assertEqual(text(items[0], TSK + 'Complete'), '0')
        self.add(c, by_type['7'], key, '<T:Subject>Book travel</T:Subject><T:Complete>0'
                 '</T:Complete><T:Importance>1</T:Importance>')
        st, _, b = self.p.request('REPORT', '/caldav/alice@example.com/tasks/',
                                  self.p.label_host(), auth=ALICE, headers={
                                      'Depth': '1', 'Content-Type': 'application/xml'},
                                  body=b'<C:calendar-query xmlns:D="DAV:" '
                                       b'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
                                       b'<C:calendar-data/></D:prop><C:filter><C:comp-filter '
                                       b'name="VCALENDAR"><C:comp-filter name="VTODO"/>'
                                       b'</C:comp-filter></C:filter></C:calendar-query>')
        self.assertEqual(st, 207)
        self.assertIn(b'SUMMARY:Book travel', b)


if __name__ == '__main__':
    unittest.main(verbosity=2)
