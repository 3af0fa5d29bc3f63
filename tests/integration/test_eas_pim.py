"""ActiveSync calendar, contacts, tasks and notes, and MeetingResponse, against the real
server, with the libwbxml-checked client (eas_client.py): items put into the store
(`polaris item put`, as a CalDAV/CardDAV client would) reach devices as Adds with the right
fields; items a device adds, changes and deletes land in the store as iCalendar / vCard
(`polaris item get`), a device's Change keeping what ActiveSync cannot carry; changes
travel between two devices; recurring events with exceptions, all-day events, time zones;
FilterType windows for calendars (occurrence based) and tasks (incomplete only); Fetch,
ItemOperations and GetItemEstimate on PIM folders; Ping woken by a calendar write;
ghosting (Supported); the same items over CalDAV/CardDAV (a PUT reaches the device, its
Change comes back merged); bad items answered with Status 6 / 8; MeetingResponse from the
Inbox (the event enters the calendar, the organizer gets an iTIP REPLY by mail) and from
the Calendar. Versions 2.5, 12.1, 14.1 and 16.1."""
import base64
import os
import struct
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(__file__))
from harness import Polaris  # noqa: E402
from eas_client import EasClient, find, findall, text, tostring  # noqa: E402

USER, PW = 'alice@example.com', 'Alice-Pass1!'

VTZ_BERLIN = (
    'BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n'
    'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n'
    'END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n'
    'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n'
    'END:DAYLIGHT\r\nEND:VTIMEZONE\r\n')

FOREIGN_EVENT = (
    'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Some CalDAV client//EN\r\n' + VTZ_BERLIN +
    'BEGIN:VEVENT\r\nUID:weekly-foreign@example.com\r\nDTSTAMP:20240101T000000Z\r\n'
    'DTSTART;TZID=Europe/Berlin:20300610T100000\r\nDTEND;TZID=Europe/Berlin:20300610T110000\r\n'
    'SUMMARY:Team meeting\r\nLOCATION:Room 1\r\nDESCRIPTION:Agenda\r\n'
    'RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10\r\nEXDATE;TZID=Europe/Berlin:20300617T100000\r\n'
    'X-CUSTOM-PROP:keep me\r\nATTACH:https://example.com/agenda.pdf\r\n'
    'END:VEVENT\r\n'
    'BEGIN:VEVENT\r\nUID:weekly-foreign@example.com\r\nDTSTAMP:20240101T000000Z\r\n'
    'RECURRENCE-ID;TZID=Europe/Berlin:20300624T100000\r\n'
    'DTSTART;TZID=Europe/Berlin:20300624T140000\r\nDTEND;TZID=Europe/Berlin:20300624T150000\r\n'
    'SUMMARY:Moved meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n')

FOREIGN_CARD = (
    'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-foreign@example.com\r\nFN:Jane Doe\r\n'
    'N:Doe;Jane;;;\r\nORG:Acme\r\nEMAIL;TYPE=INTERNET:jane@acme.example\r\n'
    'TEL;TYPE=CELL:+1 555 0102\r\nADR;TYPE=WORK:;;1 Main St;Springfield;IL;62701;USA\r\n'
    'BDAY:1980-05-01\r\nX-SOCIALPROFILE;TYPE=twitter:https://twitter.com/jane\r\n'
    'END:VCARD\r\n')

# A Berlin-like TIME_ZONE_INFORMATION: Bias -60, DST last Sunday of March 02:00 to last
# Sunday of October 03:00, DaylightBias -60.
def tz_blob(bias=-60, dst=True, name=''):
    def st(month, dow, week, hour):
        return struct.pack('<8H', 0, month, dow, week, hour, 0, 0, 0)
    nm = name.encode('utf-16-le')[:62].ljust(64, b'\0')
    b = (struct.pack('<i', bias) + nm + (st(10, 0, 5, 3) if dst else bytes(16)) +
         struct.pack('<i', 0) + nm + (st(3, 0, 5, 2) if dst else bytes(16)) +
         struct.pack('<i', -60 if dst else 0))
    assert len(b) == 172
    return base64.b64encode(b).decode()


def provision(c):
    pol = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>%s</PolicyType>'
           '%s</Policy></Policies></Provision>')
    ptype = 'MS-WAP-Provisioning-XML' if c.version == '2.5' else 'MS-EAS-Provisioning-WBXML'
    st, _, t = c.post('Provision', pol % (ptype, ''))
    assert st == 200, st
    key = text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
    c.policy_key = int(key)
    st, _, t = c.post('Provision', pol % (ptype,
                                          '<PolicyKey>%s</PolicyKey><Status>1</Status>' % key))
    c.policy_key = int(text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'))


def device(p, dev, version):
    c = EasClient(p, USER, PW, device_id=dev, version=version)
    provision(c)
    st, _, t = c.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey>'
                      '</FolderSync>')
    assert st == 200
    c.folders = {}
    for add in findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Add'):
        c.folders[int(text(add, 'FolderHierarchy:Type'))] = text(add, 'FolderHierarchy:ServerId')
    c.keys = {}
    return c


def sync(c, ftype, body='', options='', cls=None, expect_status='1', supported=''):
    """One Sync of the default folder of a type (8 calendar, 9 contacts, 7 tasks, 10
    notes), starting with SyncKey 0 the first time (with the Supported elements given).
    Returns the Collection element."""
    coll = c.folders[ftype]
    if coll not in c.keys:
        x = ('<Sync xmlns="AirSync:"><Collections><Collection>%s<SyncKey>0</SyncKey>'
             '<CollectionId>%s</CollectionId>%s%s</Collection></Collections></Sync>'
             % ('<Class>%s</Class>' % cls if cls else '', coll,
                '<Supported>%s</Supported>' % supported if supported else '',
                '<Options>%s</Options>' % options if options else ''))
        st, _, t = c.post('Sync', x)
        assert st == 200, st
        col = find(t, 'AirSync:Collections/AirSync:Collection')
        assert text(col, 'AirSync:Status') == '1', tostring(t)
        c.keys[coll] = text(col, 'AirSync:SyncKey')
    x = ('<Sync xmlns="AirSync:"><Collections><Collection>%s<SyncKey>%s</SyncKey>'
         '<CollectionId>%s</CollectionId><GetChanges/><WindowSize>100</WindowSize>%s%s'
         '</Collection></Collections></Sync>'
         % ('<Class>%s</Class>' % cls if cls else '', c.keys[coll], coll,
            '<Options>%s</Options>' % options if options else '',
            '<Commands>%s</Commands>' % body if body else ''))
    st, _, t = c.post('Sync', x)
    assert st == 200, st
    col = find(t, 'AirSync:Collections/AirSync:Collection')
    assert col is not None, tostring(t) if t is not None else t
    assert text(col, 'AirSync:Status') == expect_status, tostring(t)
    c.keys[coll] = text(col, 'AirSync:SyncKey')
    return col


def commands(col, kind):
    return {text(a, 'AirSync:ServerId'): find(a, 'AirSync:ApplicationData')
            for a in findall(col, 'AirSync:Commands/AirSync:' + kind)}


def response(col, kind, cid=None, sid=None):
    for r in findall(col, 'AirSync:Responses/AirSync:' + kind):
        if (cid and text(r, 'AirSync:ClientId') == cid) or (sid and text(r, 'AirSync:ServerId') == sid):
            return r
    raise AssertionError('no %s response for %s in %s' % (kind, cid or sid, tostring(col)))


def by_subject(items, ns, subject):
    for sid, app in items.items():
        if text(app, ns + ':Subject') == subject:
            return sid, app
    raise AssertionError('no item %r in %s' % (subject, [tostring(a) for a in items.values()]))


def item_get(p, uid):
    return p.cli_ok('item', 'get', USER, uid).stdout.replace('\r\n', '\n').replace('\n ', '')


def item_list(p, folder=None):
    args = ['item', 'list', USER] + (['--folder', folder] if folder else [])
    return [line.split('\t') for line in p.cli_ok(*args).stdout.splitlines()]


def put(p, name, body):
    path = os.path.join(p.tmp, name)
    with open(path, 'w', newline='') as f:
        f.write(body)
    return p.cli_ok('item', 'put', USER, path).stdout


def utc(s):
    """Compact EAS time to datetime."""
    return datetime.strptime(s, '%Y%m%dT%H%M%SZ').replace(tzinfo=timezone.utc)


# ---- calendar ----------------------------------------------------------------------------

def test_calendar(p, version):
    v = version.replace('.', '')
    a, b = device(p, 'cal' + v + 'a', version), device(p, 'cal' + v + 'b', version)
    put(p, 'foreign.ics', FOREIGN_EVENT)   # as it first was (a run before changed it)
    # the foreign event reaches the device with its fields
    col = sync(a, 8)
    adds = commands(col, 'Add')
    sid, app = by_subject(adds, 'Calendar', 'Team meeting')
    assert text(app, 'Calendar:UID') == 'weekly-foreign@example.com'
    assert text(app, 'Calendar:StartTime') == '20300610T080000Z', tostring(app)
    assert text(app, 'Calendar:EndTime') == '20300610T090000Z'
    tz = base64.b64decode(text(app, 'Calendar:Timezone'))
    assert struct.unpack('<i', tz[:4])[0] == -60 and struct.unpack('<i', tz[168:])[0] == -60
    assert struct.unpack('<8H', tz[68:84])[1:5] == (10, 0, 5, 3)       # last Sunday of October
    assert text(app, 'Calendar:Recurrence/Calendar:Type') == '1'
    assert text(app, 'Calendar:Recurrence/Calendar:DayOfWeek') == '2'
    assert text(app, 'Calendar:Recurrence/Calendar:Occurrences') == '10'
    exc = findall(app, 'Calendar:Exceptions/Calendar:Exception')
    assert len(exc) == 2, tostring(app)
    deleted = [e for e in exc if text(e, 'Calendar:Deleted') == '1']
    moved = [e for e in exc if text(e, 'Calendar:Deleted') != '1']
    if version >= '16.0':
        assert text(deleted[0], 'AirSyncBase:InstanceId') == '2030-06-17T08:00:00.000Z'
        assert text(app, 'AirSyncBase:Location/AirSyncBase:DisplayName') == 'Room 1'
    else:
        assert text(deleted[0], 'Calendar:ExceptionStartTime') == '20300617T080000Z'
        assert text(app, 'Calendar:Location') == 'Room 1'
    assert text(moved[0], 'Calendar:Subject') == 'Moved meeting'
    assert text(moved[0], 'Calendar:StartTime') == '20300624T120000Z'
    assert text(app, 'AirSyncBase:Body/AirSyncBase:Data') == 'Agenda'
    foreign_sid = sid

    # the device adds a meeting in its own zone (Berlin rules), with a reminder and a guest
    uid_el = ('<ClientUid xmlns="Calendar:">dev-%s@example.com</ClientUid>' % v
              if version >= '16.0' else '<UID xmlns="Calendar:">dev-%s@example.com</UID>' % v)
    loc = ('<Location xmlns="AirSyncBase:"><DisplayName>Cafe</DisplayName></Location>'
           if version >= '16.0' else '<Location xmlns="Calendar:">Cafe</Location>')
    add = ('<Add><ClientId>e1</ClientId><ApplicationData>'
           '<Timezone xmlns="Calendar:">%s</Timezone>%s'
           '<StartTime xmlns="Calendar:">20300715T120000Z</StartTime>'
           '<EndTime xmlns="Calendar:">20300715T130000Z</EndTime>'
           '<Subject xmlns="Calendar:">Lunch with Bob</Subject>%s'
           '<Body xmlns="AirSyncBase:"><Type>1</Type><Data>Bring the contract</Data></Body>'
           '<Reminder xmlns="Calendar:">15</Reminder><BusyStatus xmlns="Calendar:">2</BusyStatus>'
           '<Sensitivity xmlns="Calendar:">2</Sensitivity>'
           '<Attendees xmlns="Calendar:"><Attendee><Email>bob@example.com</Email><Name>Bob</Name>'
           '<AttendeeType>1</AttendeeType></Attendee></Attendees>'
           '</ApplicationData></Add>' % (tz_blob(name='W. Europe Standard Time'), uid_el, loc))
    bob_before = len(imap_subjects(p, 'bob@example.com', 'Bob-Pass1!'))
    col = sync(a, 8, add)
    r = response(col, 'Add', cid='e1')
    assert text(r, 'AirSync:Status') == '1', tostring(col)
    lunch_sid = text(r, 'AirSync:ServerId')
    assert lunch_sid.startswith(a.folders[8] + ':')
    assert not commands(col, 'Add'), 'the device is sent back its own Add'
    ical = item_get(p, 'dev-%s@example.com' % v)
    assert 'TZID:W. Europe Standard Time' in ical, ical
    assert 'DTSTART;TZID=W. Europe Standard Time:20300715T140000' in ical, ical
    assert 'SUMMARY:Lunch with Bob' in ical and 'LOCATION:Cafe' in ical
    assert 'DESCRIPTION:Bring the contract' in ical and 'TRIGGER:-PT15M' in ical
    assert 'CLASS:PRIVATE' in ical
    assert 'ATTENDEE;CN=Bob' in ical and 'mailto:bob@example.com' in ical, ical
    assert 'ORGANIZER:mailto:alice@example.com' in ical, ical
    names = [row[2] for row in item_list(p, 'Calendar')]
    assert 'dev-%s@example.com.ics' % v in names, names
    # 16.x leaves meeting mail to the server: the attendee gets the invitation (REQUEST);
    # before 16.0 the device sends it itself
    mails = wait_mails(p, bob_before + (1 if version >= '16.0' else 0))
    if version >= '16.0':
        inv = mails[-1]
        assert 'Subject: Lunch with Bob' in inv and 'METHOD:REQUEST' in inv, inv
        assert 'UID:dev-%s@example.com' % v in inv and 'ORGANIZER:mailto:alice@example.com' in inv
    else:
        assert len(mails) == bob_before

    # the second device gets it, as a meeting the user organises
    col = sync(b, 8)
    adds = commands(col, 'Add')
    sid_b, app = by_subject(adds, 'Calendar', 'Lunch with Bob')
    assert sid_b == lunch_sid
    assert text(app, 'Calendar:StartTime') == '20300715T120000Z'
    assert text(app, 'Calendar:MeetingStatus') == '1'
    assert text(app, 'Calendar:Reminder') == '15'
    assert text(app, 'Calendar:Attendees/Calendar:Attendee/Calendar:Email') == 'bob@example.com'
    assert text(app, 'Calendar:Sensitivity') == '2'

    if version < '16.0':
        # another device adds an event with the same UID: a new event with a UID of its
        # own, the first one untouched (a collection holds one object per UID)
        col = sync(b, 8, '<Add><ClientId>dup</ClientId><ApplicationData>%s'
                         '<StartTime xmlns="Calendar:">20300716T120000Z</StartTime>'
                         '<EndTime xmlns="Calendar:">20300716T130000Z</EndTime>'
                         '<Subject xmlns="Calendar:">Same UID</Subject></ApplicationData></Add>'
                         % uid_el)
        r = response(col, 'Add', cid='dup')
        assert text(r, 'AirSync:Status') == '1' and text(r, 'AirSync:ServerId') != lunch_sid
        assert 'SUMMARY:Lunch with Bob' in item_get(p, 'dev-%s@example.com' % v)
        dup = [row for row in item_list(p, 'Calendar') if 'Same UID' in item_get(p, row[1])]
        assert len(dup) == 1 and dup[0][1] != 'dev-%s@example.com' % v, dup
        sync(b, 8, '<Delete><ServerId>%s</ServerId></Delete>' % text(r, 'AirSync:ServerId'))
    else:
        # 16.x: the same ClientUid again is the same event again (a device that lost
        # track of its Add): no second copy, the same ServerId
        col = sync(b, 8, '<Add><ClientId>again</ClientId><ApplicationData>%s'
                         '<StartTime xmlns="Calendar:">20300715T120000Z</StartTime>'
                         '<EndTime xmlns="Calendar:">20300715T130000Z</EndTime>'
                         '<Subject xmlns="Calendar:">Lunch with Bob</Subject></ApplicationData>'
                         '</Add>' % uid_el)
        r = response(col, 'Add', cid='again')
        assert text(r, 'AirSync:Status') == '1' and text(r, 'AirSync:ServerId') == lunch_sid
        ical = item_get(p, 'dev-%s@example.com' % v)
        # ghosted (16.x): what the second Add left out stays
        assert 'LOCATION:Cafe' in ical and 'TRIGGER:-PT15M' in ical, ical
        assert len([row for row in item_list(p, 'Calendar')
                    if row[1] == 'dev-%s@example.com' % v]) == 1
    sync(a, 8)

    # the device changes the foreign event: what EAS cannot carry survives
    change = ('<Change><ServerId>%s</ServerId><ApplicationData>'
              '<Timezone xmlns="Calendar:">%s</Timezone>'
              '<StartTime xmlns="Calendar:">20300610T080000Z</StartTime>'
              '<EndTime xmlns="Calendar:">20300610T093000Z</EndTime>'
              '<Subject xmlns="Calendar:">Team meeting (long)</Subject>'
              '<Recurrence xmlns="Calendar:"><Type>1</Type><Interval>1</Interval>'
              '<DayOfWeek>2</DayOfWeek><Occurrences>10</Occurrences></Recurrence>'
              '<Exceptions xmlns="Calendar:"><Exception><Deleted>1</Deleted>%s</Exception>'
              '</Exceptions></ApplicationData></Change>'
              % (foreign_sid, tz_blob(), '<InstanceId xmlns="AirSyncBase:">2030-06-17T08:00:00.000Z'
                 '</InstanceId>' if version >= '16.0' else
                 '<ExceptionStartTime>20300617T080000Z</ExceptionStartTime>'))
    col = sync(a, 8, change)
    assert not findall(col, 'AirSync:Responses/AirSync:Change'), tostring(col)
    ical = item_get(p, 'weekly-foreign@example.com')
    assert 'SUMMARY:Team meeting (long)' in ical, ical
    assert 'X-CUSTOM-PROP:keep me' in ical and 'ATTACH:https://example.com/agenda.pdf' in ical
    # the device's zone has the stored zone's rules: the TZID stays
    assert 'DTSTART;TZID=Europe/Berlin:20300610T100000' in ical, ical
    assert 'DTEND;TZID=Europe/Berlin:20300610T113000' in ical, ical
    assert 'EXDATE;TZID=Europe/Berlin:20300617T100000' in ical
    assert 'Moved meeting' not in ical      # the device no longer lists that exception
    assert 'DESCRIPTION:Agenda' in ical     # no Body sent: the stored one stays
    # ... and the other device hears of it as a Change
    col = sync(b, 8)
    ch = commands(col, 'Change')
    assert foreign_sid in ch, tostring(col)
    assert text(ch[foreign_sid], 'Calendar:Subject') == 'Team meeting (long)'
    assert text(ch[foreign_sid], 'Calendar:EndTime') == '20300610T093000Z'

    # a server-side change (a CalDAV client) reaches both devices
    put(p, 'foreign2.ics', FOREIGN_EVENT.replace('LOCATION:Room 1', 'LOCATION:Room 2'))
    for d in (a, b):
        ch = commands(sync(d, 8), 'Change')
        assert foreign_sid in ch
        loc = (text(ch[foreign_sid], 'AirSyncBase:Location/AirSyncBase:DisplayName')
               if version >= '16.0' else text(ch[foreign_sid], 'Calendar:Location'))
        assert loc == 'Room 2'

    if version >= '16.0':
        # one occurrence: deleted, then another one moved, by InstanceId
        sync(a, 8, '<Delete><ServerId>%s</ServerId><InstanceId xmlns="AirSyncBase:">'
                   '2030-07-01T08:00:00.000Z</InstanceId></Delete>' % foreign_sid)
        sync(a, 8, '<Change><ServerId>%s</ServerId><InstanceId xmlns="AirSyncBase:">'
                   '2030-07-08T08:00:00.000Z</InstanceId><ApplicationData>'
                   '<StartTime xmlns="Calendar:">20300708T150000Z</StartTime>'
                   '<EndTime xmlns="Calendar:">20300708T160000Z</EndTime>'
                   '<Subject xmlns="Calendar:">Late one</Subject></ApplicationData></Change>'
                   % foreign_sid)
        ical = item_get(p, 'weekly-foreign@example.com')
        assert 'EXDATE;TZID=Europe/Berlin:20300701T100000' in ical, ical
        assert 'RECURRENCE-ID;TZID=Europe/Berlin:20300708T100000' in ical
        assert 'DTSTART;TZID=Europe/Berlin:20300708T170000' in ical
        assert 'RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO' in ical and 'LOCATION:Room 2' in ical
        app = commands(sync(b, 8), 'Change')[foreign_sid]
        exc = {text(e, 'AirSyncBase:InstanceId'): e
               for e in findall(app, 'Calendar:Exceptions/Calendar:Exception')}
        assert text(exc['2030-07-01T08:00:00.000Z'], 'Calendar:Deleted') == '1', tostring(app)
        assert text(exc['2030-07-08T08:00:00.000Z'], 'Calendar:Subject') == 'Late one'
        assert text(exc['2030-07-08T08:00:00.000Z'], 'Calendar:StartTime') == '20300708T150000Z'

    # all-day event: device midnights in its zone become a DATE
    add = ('<Add><ClientId>e2</ClientId><ApplicationData>%s'
           '<AllDayEvent xmlns="Calendar:">1</AllDayEvent>'
           '<StartTime xmlns="Calendar:">%s</StartTime><EndTime xmlns="Calendar:">%s</EndTime>'
           '<Subject xmlns="Calendar:">Holiday %s</Subject><BusyStatus xmlns="Calendar:">3'
           '</BusyStatus></ApplicationData></Add>'
           % (('', '20300801T000000Z', '20300802T000000Z', v) if version >= '16.0' else
              ('<Timezone xmlns="Calendar:">%s</Timezone>' % tz_blob(), '20300731T220000Z',
               '20300801T220000Z', v)))
    col = sync(a, 8, add)
    r = response(col, 'Add', cid='e2')
    assert text(r, 'AirSync:Status') == '1'
    holiday = [row for row in item_list(p, 'Calendar') if row[1] not in
               ('weekly-foreign@example.com', 'dev-%s@example.com' % v)]
    icals = [item_get(p, row[1]) for row in holiday]
    mine = [i for i in icals if 'SUMMARY:Holiday %s' % v in i]
    assert len(mine) == 1, icals
    assert 'DTSTART;VALUE=DATE:20300801' in mine[0] and 'DTEND;VALUE=DATE:20300802' in mine[0]
    assert 'X-MICROSOFT-CDO-BUSYSTATUS:OOF' in mine[0]
    app = commands(sync(b, 8), 'Add')[text(r, 'AirSync:ServerId')]
    assert text(app, 'Calendar:AllDayEvent') == '1'
    assert text(app, 'Calendar:StartTime') == '20300801T000000Z'
    assert text(app, 'Calendar:EndTime') == '20300802T000000Z'

    # Fetch of one item, and ItemOperations Fetch
    col = sync(b, 8, '<Fetch><ServerId>%s</ServerId></Fetch>' % lunch_sid)
    r = response(col, 'Fetch', sid=lunch_sid)
    assert text(r, 'AirSync:Status') == '1'
    assert text(r, 'AirSync:ApplicationData/Calendar:Subject') == 'Lunch with Bob'
    st, _, t = b.post('ItemOperations',
                      '<ItemOperations xmlns="ItemOperations:" xmlns:A="AirSync:"><Fetch>'
                      '<Store>Mailbox</Store><A:CollectionId>%s</A:CollectionId>'
                      '<A:ServerId>%s</A:ServerId></Fetch></ItemOperations>'
                      % (b.folders[8], lunch_sid))
    assert st == 200
    f = find(t, 'ItemOperations:Response/ItemOperations:Fetch')
    assert text(f, 'ItemOperations:Status') == '1', tostring(t)
    assert text(f, 'AirSync:Class') == 'Calendar'
    assert text(f, 'ItemOperations:Properties/Calendar:Subject') == 'Lunch with Bob'

    # bad items: no start (Status 6), unknown ServerId (Status 8)
    col = sync(a, 8, '<Add><ClientId>bad1</ClientId><ApplicationData><Subject xmlns="Calendar:">'
                     'no start</Subject></ApplicationData></Add>'
                     '<Change><ServerId>%s:999999</ServerId><ApplicationData><Subject '
                     'xmlns="Calendar:">x</Subject></ApplicationData></Change>' % a.folders[8])
    assert text(response(col, 'Add', cid='bad1'), 'AirSync:Status') == '6'
    assert text(response(col, 'Change', sid='%s:999999' % a.folders[8]), 'AirSync:Status') == '8'

    # the device deletes its meeting: gone from the store and from the other device
    bob_before = len(imap_subjects(p, 'bob@example.com', 'Bob-Pass1!'))
    col = sync(a, 8, '<Delete><ServerId>%s</ServerId></Delete>' % lunch_sid)
    if version >= '16.0':
        cancel = wait_mails(p, bob_before + 1)[-1]
        assert 'Subject: Canceled: Lunch with Bob' in cancel and 'METHOD:CANCEL' in cancel
        assert 'STATUS:CANCELLED' in cancel
    r = p.cli('item', 'get', USER, 'dev-%s@example.com' % v)
    assert r.returncode != 0
    assert lunch_sid in [text(d, 'AirSync:ServerId')
                         for d in findall(sync(b, 8), 'AirSync:Commands/AirSync:Delete')]
    return a


# ---- FilterType ----------------------------------------------------------------------------

def ev(uid, start, end, extra=''):
    return ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\n'
            'DTSTAMP:20240101T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY:%s\r\n%s'
            'END:VEVENT\r\nEND:VCALENDAR\r\n' % (uid, start, end, uid, extra))


def test_filter(p):
    now = datetime.now(timezone.utc)
    fmt = '%Y%m%dT%H%M%SZ'
    old, soon = now - timedelta(days=60), now + timedelta(days=7)
    put(p, 'old.ics', ev('f-old', old.strftime(fmt), (old + timedelta(hours=1)).strftime(fmt)))
    put(p, 'soon.ics', ev('f-soon', soon.strftime(fmt), (soon + timedelta(hours=1)).strftime(fmt)))
    start = now - timedelta(days=400)
    put(p, 'rec.ics', ev('f-weekly', start.strftime(fmt), (start + timedelta(hours=1)).strftime(fmt),
                         'RRULE:FREQ=WEEKLY\r\n'))
    put(p, 'recdone.ics', ev('f-ended', start.strftime(fmt),
                             (start + timedelta(hours=1)).strftime(fmt), 'RRULE:FREQ=DAILY;COUNT=5\r\n'))
    # two weeks back (4): the old single event and the ended series stay out
    c = device(p, 'filter4', '14.1')
    got = {text(a, 'Calendar:Subject') for a in commands(sync(c, 8, options='<FilterType>4'
                                                                '</FilterType>'), 'Add').values()}
    assert {'f-soon', 'f-weekly'} <= got, got
    assert not got & {'f-old', 'f-ended'}, got
    # GetItemEstimate agrees: nothing more to come
    st, _, t = c.post('GetItemEstimate',
                      '<GetItemEstimate xmlns="GetItemEstimate:" xmlns:A="AirSync:"><Collections>'
                      '<Collection><A:SyncKey>%s</A:SyncKey><CollectionId>%s</CollectionId>'
                      '<A:Options><A:FilterType>4</A:FilterType></A:Options></Collection>'
                      '</Collections></GetItemEstimate>' % (c.keys[c.folders[8]], c.folders[8]))
    assert text(t, 'GetItemEstimate:Response/GetItemEstimate:Status') == '1', tostring(t)
    assert text(t, 'GetItemEstimate:Response/GetItemEstimate:Collection/'
                   'GetItemEstimate:Estimate') == '0'
    # an event moved out of the window leaves the device (SoftDelete), one moved in arrives
    older = now - timedelta(days=30)
    put(p, 'soon2.ics', ev('f-soon', older.strftime(fmt), (older + timedelta(hours=1)).strftime(fmt)))
    put(p, 'old2.ics', ev('f-old', soon.strftime(fmt), (soon + timedelta(hours=1)).strftime(fmt)))
    col = sync(c, 8, options='<FilterType>4</FilterType>')
    soft = [text(d, 'AirSync:ServerId') for d in findall(col, 'AirSync:Commands/AirSync:SoftDelete')]
    added = {text(a, 'Calendar:Subject') for a in commands(col, 'Add').values()}
    assert len(soft) == 1 and added == {'f-old'}, tostring(col)
    # no filter (0): everything
    c0 = device(p, 'filter0', '14.1')
    got = {text(a, 'Calendar:Subject') for a in commands(sync(c0, 8), 'Add').values()}
    assert {'f-old', 'f-soon', 'f-weekly', 'f-ended'} <= got, got


# ---- contacts, tasks, notes -------------------------------------------------------------------

def test_contacts(p, version):
    v = version.replace('.', '')
    a, b = device(p, 'cn' + v + 'a', version), device(p, 'cn' + v + 'b', version)
    put(p, 'card.vcf', FOREIGN_CARD)   # as it first was (a run before changed it)
    col = sync(a, 9)
    apps = list(commands(col, 'Add').items())
    jane = [(s, x) for s, x in apps if text(x, 'Contacts:FileAs') == 'Jane Doe']
    assert len(jane) == 1, [tostring(x) for _, x in apps]
    sid, app = jane[0]
    assert text(app, 'Contacts:FirstName') == 'Jane' and text(app, 'Contacts:LastName') == 'Doe'
    assert text(app, 'Contacts:CompanyName') == 'Acme'
    assert text(app, 'Contacts:Email1Address') == 'jane@acme.example'
    assert text(app, 'Contacts:MobilePhoneNumber') == '+1 555 0102'
    assert text(app, 'Contacts:BusinessAddressCity') == 'Springfield'
    assert text(app, 'Contacts:Birthday') == '1980-05-01T00:00:00.000Z'
    # the device changes her: the social profile survives
    change = ('<Change><ServerId>%s</ServerId><ApplicationData>'
              '<FileAs xmlns="Contacts:">Jane Doe</FileAs><FirstName xmlns="Contacts:">Jane'
              '</FirstName><LastName xmlns="Contacts:">Doe</LastName>'
              '<JobTitle xmlns="Contacts:">CEO %s</JobTitle>'
              '<Email1Address xmlns="Contacts:">jane@acme.example</Email1Address>'
              '<MobilePhoneNumber xmlns="Contacts:">+1 555 0199</MobilePhoneNumber>'
              '</ApplicationData></Change>' % (sid, v))
    sync(a, 9, change)
    card = item_get(p, 'card-foreign@example.com')
    assert 'TITLE:CEO %s' % v in card and 'TEL;TYPE=CELL:+1 555 0199' in card, card
    assert 'X-SOCIALPROFILE;TYPE=twitter:https://twitter.com/jane' in card
    assert 'ORG:' not in card   # the device sent no company: removed
    # a device that says what it supports: what it does not support survives its Change
    put(p, 'card.vcf', FOREIGN_CARD)
    g = device(p, 'cn' + v + 'g', version)
    sup = ''.join('<%s xmlns="Contacts:"/>' % e for e in
                  ('FileAs', 'FirstName', 'LastName', 'Email1Address', 'MobilePhoneNumber',
                   'CompanyName'))
    gsid = [s_ for s_, x in commands(sync(g, 9, supported=sup), 'Add').items()
            if text(x, 'Contacts:FileAs') == 'Jane Doe'][0]
    sync(g, 9, '<Change><ServerId>%s</ServerId><ApplicationData>'
               '<FileAs xmlns="Contacts:">Jane Doe</FileAs><FirstName xmlns="Contacts:">Jane'
               '</FirstName><LastName xmlns="Contacts:">Doe</LastName>'
               '<MobilePhoneNumber xmlns="Contacts:">+1 555 0200</MobilePhoneNumber>'
               '</ApplicationData></Change>' % gsid)
    card = item_get(p, 'card-foreign@example.com')
    assert 'TEL;TYPE=CELL:+1 555 0200' in card, card
    assert 'BDAY:1980-05-01' in card           # Birthday not supported: kept
    assert 'ADR;TYPE=WORK:;;1 Main St;Springfield;IL;62701;USA' in card   # kept
    assert 'EMAIL' not in card                 # Email1Address supported, left out: removed
    assert 'ORG:' not in card                  # CompanyName supported, left out: removed

    # the device adds a contact
    add = ('<Add><ClientId>k1</ClientId><ApplicationData>'
           '<FirstName xmlns="Contacts:">Max</FirstName><LastName xmlns="Contacts:">Muster %s'
           '</LastName><Email1Address xmlns="Contacts:">max@example.de</Email1Address>'
           '<HomePhoneNumber xmlns="Contacts:">+49 30 123</HomePhoneNumber>'
           '<NickName xmlns="Contacts2:">Maxi</NickName>'
           '<Body xmlns="AirSyncBase:"><Type>1</Type><Data>met in Berlin</Data></Body>'
           '</ApplicationData></Add>' % v)
    col = sync(a, 9, add)
    r = response(col, 'Add', cid='k1')
    assert text(r, 'AirSync:Status') == '1'
    rows = [row for row in item_list(p, 'Contacts') if row[1] != 'card-foreign@example.com']
    cards = [item_get(p, row[1]) for row in rows]
    max_card = [c for c in cards if 'N:Muster %s;Max;;;' % v in c]
    assert len(max_card) == 1, cards
    assert 'VERSION:3.0' in max_card[0] and 'FN:Max Muster %s' % v in max_card[0]
    assert 'TEL;TYPE=HOME,VOICE:+49 30 123' in max_card[0] and 'NICKNAME:Maxi' in max_card[0]
    assert 'NOTE:met in Berlin' in max_card[0]
    # the other device sees both
    got = {text(x, 'Contacts:FileAs') for x in commands(sync(b, 9), 'Add').values()}
    assert {'Jane Doe', 'Max Muster %s' % v} <= got, got
    # and the delete of Max
    sync(a, 9, '<Delete><ServerId>%s</ServerId></Delete>' % text(r, 'AirSync:ServerId'))
    assert text(r, 'AirSync:ServerId') in [
        text(d, 'AirSync:ServerId') for d in findall(sync(b, 9), 'AirSync:Commands/AirSync:Delete')]


def test_tasks(p, version):
    v = version.replace('.', '')
    a = device(p, 'tk' + v, version)
    sync(a, 7)
    adds = ''.join('<Add><ClientId>t%d</ClientId><ApplicationData>'
                   '<Subject xmlns="Tasks:">Task %d %s</Subject><Importance xmlns="Tasks:">2'
                   '</Importance><UtcDueDate xmlns="Tasks:">2030-05-0%dT10:00:00.000Z</UtcDueDate>'
                   '<DueDate xmlns="Tasks:">2030-05-0%dT12:00:00.000Z</DueDate>'
                   '<Complete xmlns="Tasks:">0</Complete></ApplicationData></Add>'
                   % (i, i, v, i, i) for i in (1, 2))
    col = sync(a, 7, adds)
    sids = [text(response(col, 'Add', cid='t%d' % i), 'AirSync:ServerId') for i in (1, 2)]
    todo = [item_get(p, row[1]) for row in item_list(p, 'Tasks')]
    t1 = [t for t in todo if 'SUMMARY:Task 1 %s' % v in t]
    # the device's local DueDate is 2 h ahead: its offset is kept beside the UTC time
    assert len(t1) == 1 and 'DUE;X-EAS-UTC-OFFSET=7200:20300501T100000Z' in t1[0], todo
    assert 'PRIORITY:1' in t1[0], todo
    # the device completes task 2
    sync(a, 7, '<Change><ServerId>%s</ServerId><ApplicationData><Subject xmlns="Tasks:">Task 2 %s'
               '</Subject><Complete xmlns="Tasks:">1</Complete><DateCompleted xmlns="Tasks:">'
               '2030-05-01T09:00:00.000Z</DateCompleted></ApplicationData></Change>' % (sids[1], v))
    t2 = [item_get(p, row[1]) for row in item_list(p, 'Tasks')]
    t2 = [t for t in t2 if 'SUMMARY:Task 2 %s' % v in t][0]
    assert 'STATUS:COMPLETED' in t2 and 'COMPLETED:20300501T090000Z' in t2, t2
    # FilterType 8: incomplete tasks only
    b = device(p, 'tk8' + v, version)
    got = {text(x, 'Tasks:Subject'): x for x in
           commands(sync(b, 7, options='<FilterType>8</FilterType>'), 'Add').values()}
    assert 'Task 1 %s' % v in got and 'Task 2 %s' % v not in got, list(got)
    assert text(got['Task 1 %s' % v], 'Tasks:UtcDueDate') == '2030-05-01T10:00:00.000Z'
    assert text(got['Task 1 %s' % v], 'Tasks:Complete') == '0'
    # all tasks without a filter, task 2 complete
    c = device(p, 'tk0' + v, version)
    got = {text(x, 'Tasks:Subject'): x for x in commands(sync(c, 7), 'Add').values()}
    assert text(got['Task 2 %s' % v], 'Tasks:Complete') == '1'
    assert text(got['Task 2 %s' % v], 'Tasks:DateCompleted') == '2030-05-01T09:00:00.000Z'
    # reopening task 2 from device c puts it back in b's filtered view
    sync(c, 7, '<Change><ServerId>%s</ServerId><ApplicationData><Subject xmlns="Tasks:">Task 2 %s'
               '</Subject><Complete xmlns="Tasks:">0</Complete></ApplicationData></Change>'
               % (sids[1], v))
    got = {text(x, 'Tasks:Subject') for x in
           commands(sync(b, 7, options='<FilterType>8</FilterType>'), 'Add').values()}
    assert got == {'Task 2 %s' % v}, got


def test_notes(p, version):
    v = version.replace('.', '')
    a, b = device(p, 'nt' + v + 'a', version), device(p, 'nt' + v + 'b', version)
    sync(a, 10)
    col = sync(a, 10, '<Add><ClientId>n1</ClientId><ApplicationData>'
                      '<Subject xmlns="Notes:">Groceries %s</Subject>'
                      '<MessageClass xmlns="Notes:">IPM.StickyNote</MessageClass>'
                      '<Body xmlns="AirSyncBase:"><Type>1</Type><Data>eggs, milk</Data></Body>'
                      '<Categories xmlns="Notes:"><Category>Home</Category></Categories>'
                      '</ApplicationData></Add>' % v)
    r = response(col, 'Add', cid='n1')
    assert text(r, 'AirSync:Status') == '1'
    notes = [item_get(p, row[1]) for row in item_list(p, 'Notes')]
    mine = [n for n in notes if 'SUMMARY:Groceries %s' % v in n]
    assert len(mine) == 1 and 'BEGIN:VJOURNAL' in mine[0], notes
    assert 'DESCRIPTION:eggs\\, milk' in mine[0] and 'CATEGORIES:Home' in mine[0]
    got = commands(sync(b, 10), 'Add')
    app = got[text(r, 'AirSync:ServerId')]
    assert text(app, 'Notes:Subject') == 'Groceries %s' % v
    assert text(app, 'Notes:MessageClass') == 'IPM.StickyNote'
    assert text(app, 'AirSyncBase:Body/AirSyncBase:Data') == 'eggs, milk'
    assert text(app, 'Notes:Categories/Notes:Category') == 'Home'
    assert text(app, 'Notes:LastModifiedDate').endswith('Z')


def test_ping(p):
    """A Ping on the calendar and the task list wakes when a CalDAV-like write lands in the
    calendar, and names only that folder."""
    import threading
    c = device(p, 'ping141', '14.1')
    sync(c, 8)
    sync(c, 8)
    sync(c, 7)
    res = {}

    def run():
        st, _, t = c.post('Ping', '<Ping xmlns="Ping:"><HeartbeatInterval>120</HeartbeatInterval>'
                          '<Folders><Folder><Id>%s</Id><Class>Calendar</Class></Folder>'
                          '<Folder><Id>%s</Id><Class>Tasks</Class></Folder></Folders></Ping>'
                          % (c.folders[8], c.folders[7]))
        res['t'] = t
    th = threading.Thread(target=run)
    th.start()
    time.sleep(1.0)
    assert th.is_alive(), 'Ping answered at once: ' + tostring(res.get('t'))
    put(p, 'pinged.ics', ev('pinged', '20301201T100000Z', '20301201T110000Z'))
    th.join(20)
    assert not th.is_alive()
    assert text(res['t'], 'Ping:Status') == '2', tostring(res['t'])
    assert [f.text for f in findall(res['t'], 'Ping:Folders/Ping:Folder')] == [c.folders[8]]
    got = {text(a, 'Calendar:Subject') for a in commands(sync(c, 8), 'Add').values()}
    assert got == {'pinged'}, got


def test_caldav(p):
    """The same items over CalDAV/CardDAV: what a CalDAV client PUTs reaches the device, the
    device's Change comes back to the CalDAV client merged (its X- properties kept), and
    what the device creates is served under <UID>.ics / .vcf."""
    host = p.label_host('example.com')
    auth = (USER, PW)
    c = device(p, 'dav141', '14.1')
    sync(c, 8)
    ics = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Thunderbird//EN\r\nBEGIN:VEVENT\r\n'
           'UID:tb-1@example.com\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20301110T100000Z\r\n'
           'DTEND:20301110T110000Z\r\nSUMMARY:From Thunderbird\r\n'
           'X-MOZ-GENERATION:3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n')
    st, _, _ = p.request('PUT', '/caldav/%s/calendar/tb-event.ics' % USER, host, ics.encode(),
                         {'Content-Type': 'text/calendar; charset=utf-8'}, auth)
    assert st in (201, 204), st
    adds = commands(sync(c, 8), 'Add')
    sid, app = by_subject(adds, 'Calendar', 'From Thunderbird')
    assert text(app, 'Calendar:StartTime') == '20301110T100000Z'
    sync(c, 8, '<Change><ServerId>%s</ServerId><ApplicationData>'
               '<StartTime xmlns="Calendar:">20301110T120000Z</StartTime>'
               '<EndTime xmlns="Calendar:">20301110T130000Z</EndTime>'
               '<Subject xmlns="Calendar:">Moved on the phone</Subject></ApplicationData>'
               '</Change>' % sid)
    st, _, body = p.request('GET', '/caldav/%s/calendar/tb-event.ics' % USER, host, None, None,
                            auth)
    body = body.decode().replace('\r\n ', '')
    assert st == 200 and 'SUMMARY:Moved on the phone' in body, (st, body)
    assert 'X-MOZ-GENERATION:3' in body and 'DTSTART:20301110T120000Z' in body, body
    # the phone's own event, under its UID
    col = sync(c, 8, '<Add><ClientId>d1</ClientId><ApplicationData>'
                     '<StartTime xmlns="Calendar:">20301111T100000Z</StartTime>'
                     '<EndTime xmlns="Calendar:">20301111T110000Z</EndTime>'
                     '<Subject xmlns="Calendar:">From the phone</Subject>'
                     '<UID xmlns="Calendar:">phone-ev-1</UID></ApplicationData></Add>')
    assert text(response(col, 'Add', cid='d1'), 'AirSync:Status') == '1'
    st, _, body = p.request('GET', '/caldav/%s/calendar/phone-ev-1.ics' % USER, host, None, None,
                            auth)
    assert st == 200 and b'SUMMARY:From the phone' in body, (st, body)
    # a contact from the phone, read over CardDAV
    sync(c, 9)
    col = sync(c, 9, '<Add><ClientId>k9</ClientId><ApplicationData>'
                     '<FirstName xmlns="Contacts:">Dora</FirstName>'
                     '<LastName xmlns="Contacts:">Dav</LastName></ApplicationData></Add>')
    assert text(response(col, 'Add', cid='k9'), 'AirSync:Status') == '1'
    uid = [row[1] for row in item_list(p, 'Contacts') if 'FN:Dora Dav' in item_get(p, row[1])][0]
    st, _, body = p.request('GET', '/carddav/%s/contacts/%s.vcf' % (USER, uid), host, None, None,
                            auth)
    assert st == 200 and b'FN:Dora Dav' in body and b'VERSION:3.0' in body, (st, body)


def test_v25(p):
    """2.5: the class named in the collection, bodies in the class's own Body element."""
    c = device(p, 'cal25', '2.5')
    # Truncation 0: no body bytes at all, said truncated
    col = sync(c, 8, cls='Calendar', options='<Truncation>0</Truncation>')
    _, app = by_subject(commands(col, 'Add'), 'Calendar', 'Team meeting')
    assert text(app, 'Calendar:BodyTruncated') == '1', tostring(app)
    assert find(app, 'Calendar:Body') is None
    assert find(app, 'AirSyncBase:Body') is None
    assert text(app, 'Calendar:Timezone')
    # the whole body with Truncation 1 (4 KiB)
    c2 = device(p, 'cal25b', '2.5')
    col = sync(c2, 8, cls='Calendar', options='<Truncation>1</Truncation>')
    _, app = by_subject(commands(col, 'Add'), 'Calendar', 'Team meeting')
    assert text(app, 'Calendar:Body') == 'Agenda' and text(app, 'Calendar:BodyTruncated') == '0'
    assert find(app, 'Calendar:Attendees/Calendar:Attendee/Calendar:AttendeeStatus') is None
    col = sync(c, 8, '<Add><ClientId>v25</ClientId><ApplicationData>'
                     '<Timezone xmlns="Calendar:">%s</Timezone>'
                     '<StartTime xmlns="Calendar:">20301105T090000Z</StartTime>'
                     '<EndTime xmlns="Calendar:">20301105T100000Z</EndTime>'
                     '<Subject xmlns="Calendar:">Old phone</Subject>'
                     '<Body xmlns="Calendar:">written on 2.5</Body>'
                     '<UID xmlns="Calendar:">old-phone-1</UID></ApplicationData></Add>'
               % tz_blob(), cls='Calendar')
    assert text(response(col, 'Add', cid='v25'), 'AirSync:Status') == '1'
    ical = item_get(p, 'old-phone-1')
    assert 'DESCRIPTION:written on 2.5' in ical and 'DTSTART;TZID=' in ical, ical


def test_v121_class(p):
    """12.1 names the class in the collection and answers with it."""
    c = device(p, 'cal121', '12.1')
    col = sync(c, 8, cls='Calendar')
    assert text(col, 'AirSync:Class') == 'Calendar'
    _, app = by_subject(commands(col, 'Add'), 'Calendar', 'Team meeting')
    tz = base64.b64decode(text(app, 'Calendar:Timezone'))
    assert len(tz) == 172 and struct.unpack('<i', tz[:4])[0] == -60
    assert text(app, 'Calendar:Exceptions/Calendar:Exception/Calendar:ExceptionStartTime')


# ---- MeetingResponse ------------------------------------------------------------------------

INVITE = (
    'From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Invitation: Project kickoff\r\n'
    'Date: Mon, 06 Nov 2023 10:00:00 +0000\r\nMessage-ID: <invite1@example.com>\r\n'
    'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b1"\r\n\r\n'
    '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease come.\r\n'
    '--b1\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n'
    'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bob//EN\r\nMETHOD:REQUEST\r\n'
    'BEGIN:VEVENT\r\nUID:kickoff-1@example.com\r\nDTSTAMP:20240101T000000Z\r\nSEQUENCE:2\r\n'
    'DTSTART:20301001T090000Z\r\nDTEND:20301001T100000Z\r\nSUMMARY:Project kickoff\r\n'
    'ORGANIZER;CN=Bob:mailto:bob@example.com\r\n'
    'ATTENDEE;CN=Alice;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:alice@example.com\r\n'
    'ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.com\r\nX-BOB:kept\r\n'
    'END:VEVENT\r\nEND:VCALENDAR\r\n--b1--\r\n')


def wait_mails(p, n):
    """bob's INBOX once it holds n messages (delivery is quick but not instant)."""
    for _ in range(50):
        mails = imap_subjects(p, 'bob@example.com', 'Bob-Pass1!')
        if len(mails) >= n:
            break
        time.sleep(0.1)
    return [m.replace('\r\n ', '') for m in mails]


def imap_subjects(p, user, pw):
    import imaplib
    m = imaplib.IMAP4('127.0.0.1', p.ports['imap'])
    m.login(user, pw)
    m.select('INBOX')
    typ, d = m.search(None, 'ALL')
    out = []
    for num in d[0].split():
        typ, msg = m.fetch(num, '(BODY.PEEK[])')
        out.append(msg[0][1].decode('utf-8', 'replace'))
    m.logout()
    return out


def meeting_response(c, coll, rid, response, send=False):
    x = ('<MeetingResponse xmlns="MeetingResponse:"><Request><UserResponse>%d</UserResponse>'
         '<CollectionId>%s</CollectionId><RequestId>%s</RequestId>%s</Request></MeetingResponse>'
         % (response, coll, rid, '<SendResponse/>' if send else ''))
    st, _, t = c.post('MeetingResponse', x)
    assert st == 200, st
    return find(t, 'MeetingResponse:Result')


def test_meeting_response(p):
    put_path = os.path.join(p.tmp, 'invite.eml')
    with open(put_path, 'w', newline='') as f:
        f.write(INVITE)
    p.cli_ok('mail', 'append', USER, put_path)
    c = device(p, 'mr161', '16.1')
    st, h, _ = c.options()
    assert 'MeetingResponse' in h['ms-asprotocolcommands'].split(',')
    inbox = commands(sync(c, 2), 'Add')
    sid = [s for s, a in inbox.items()
           if text(a, 'Email:Subject') == 'Invitation: Project kickoff'][0]
    # the invitation shows as one: meeting class and MeetingRequest
    inv = inbox[sid]
    assert text(inv, 'Email:MessageClass') == 'IPM.Schedule.Meeting.Request', tostring(inv)
    mreq = find(inv, 'Email:MeetingRequest')
    assert text(mreq, 'Email:StartTime') == '2030-10-01T09:00:00.000Z', tostring(mreq)
    assert text(mreq, 'Email:EndTime') == '2030-10-01T10:00:00.000Z'
    assert text(mreq, 'Email:Organizer') == '"Bob" <bob@example.com>'
    assert text(mreq, 'Email:ResponseRequested') == '1'
    assert text(mreq, 'Email2:MeetingMessageType') == '1'
    goid = base64.b64decode(text(mreq, 'Email:GlobalObjId'))
    assert goid[:4] == b'\x04\x00\x00\x00' and b'vCal-Uid\x01\x00\x00\x00kickoff-1@example.com\x00' in goid
    assert struct.unpack('<I', goid[36:40])[0] == len(goid) - 40
    before = len(imap_subjects(p, 'bob@example.com', 'Bob-Pass1!'))
    # 16.1, accepted from the Inbox, the server mails the organizer
    r = meeting_response(c, c.folders[2], sid, 1, send=True)
    assert text(r, 'MeetingResponse:Status') == '1', tostring(r)
    assert text(r, 'MeetingResponse:RequestId') == sid
    cal_id = text(r, 'MeetingResponse:CalendarId')
    assert cal_id and cal_id.startswith(c.folders[8] + ':'), tostring(r)
    ical = item_get(p, 'kickoff-1@example.com')
    assert 'ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED:mailto:alice@example.com' in ical, ical
    assert 'METHOD' not in ical and 'X-BOB:kept' in ical and 'SEQUENCE:2' in ical
    app = commands(sync(c, 8), 'Add')[cal_id]
    assert text(app, 'Calendar:Subject') == 'Project kickoff'
    assert text(app, 'Calendar:MeetingStatus') == '3'
    assert text(app, 'Calendar:ResponseType') == '3'
    assert text(app, 'Calendar:OrganizerEmail') == 'bob@example.com'
    reply = wait_mails(p, before + 1)[-1]
    assert 'Subject: Accepted: Project kickoff' in reply, reply
    assert 'METHOD:REPLY' in reply and 'UID:kickoff-1@example.com' in reply
    assert 'PARTSTAT=ACCEPTED:mailto:alice@example.com' in reply and 'SEQUENCE:2' in reply
    # 14.1, declined from the Calendar: the event stays, declined; no mail (the device
    # sends its own reply before 16.0); no CalendarId
    c14 = device(p, 'mr141', '14.1')
    r = meeting_response(c14, c14.folders[8], cal_id, 3)
    assert text(r, 'MeetingResponse:Status') == '1', tostring(r)
    assert text(r, 'MeetingResponse:CalendarId') is None
    assert 'PARTSTAT=DECLINED:mailto:alice@example.com' in item_get(p, 'kickoff-1@example.com')
    time.sleep(0.3)
    assert len(imap_subjects(p, 'bob@example.com', 'Bob-Pass1!')) == before + 1
    # the first device hears of it
    ch = commands(sync(c, 8), 'Change')
    assert text(ch[cal_id], 'Calendar:ResponseType') == '4'
    # tentative again from the Inbox answers the calendar's copy (no second event)
    r = meeting_response(c, c.folders[2], sid, 2)
    assert text(r, 'MeetingResponse:CalendarId') == cal_id
    assert 'PARTSTAT=TENTATIVE:mailto:alice@example.com' in item_get(p, 'kickoff-1@example.com')
    assert len([row for row in item_list(p, 'Calendar') if row[1] == 'kickoff-1@example.com']) == 1
    # one occurrence of a recurring meeting (InstanceId): only its override is answered,
    # and the REPLY names it
    put(p, 'series.ics',
        'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bob//EN\r\nBEGIN:VEVENT\r\n'
        'UID:standup@example.com\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20301001T080000Z\r\n'
        'DTEND:20301001T081500Z\r\nRRULE:FREQ=DAILY;COUNT=5\r\nSUMMARY:Standup\r\n'
        'ORGANIZER:mailto:bob@example.com\r\n'
        'ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@example.com\r\nEND:VEVENT\r\n'
        'END:VCALENDAR\r\n')
    series = [s_ for s_, a in commands(sync(c, 8), 'Add').items()
              if text(a, 'Calendar:Subject') == 'Standup'][0]
    before = len(imap_subjects(p, 'bob@example.com', 'Bob-Pass1!'))
    x = ('<MeetingResponse xmlns="MeetingResponse:"><Request><UserResponse>1</UserResponse>'
         '<CollectionId>%s</CollectionId><RequestId>%s</RequestId>'
         '<InstanceId>2030-10-03T08:00:00.000Z</InstanceId><SendResponse/></Request>'
         '</MeetingResponse>' % (c.folders[8], series))
    st, _, t = c.post('MeetingResponse', x)
    assert text(t, 'MeetingResponse:Result/MeetingResponse:Status') == '1', tostring(t)
    ical = item_get(p, 'standup@example.com')
    assert 'RECURRENCE-ID:20301003T080000Z' in ical, ical
    assert ical.count('PARTSTAT=ACCEPTED') == 1 and ical.count('PARTSTAT=NEEDS-ACTION') == 1, ical
    last = wait_mails(p, before + 1)[-1]
    assert 'RECURRENCE-ID:20301003T080000Z' in last, last
    # 16.1 "Propose New Time": tentative with ProposedStartTime/EndTime and the user's own
    # words. The organizer gets a COUNTER with the proposed times, the words as the mail's
    # text and the COMMENT; the user's copy keeps the organizer's times.
    before = len(imap_subjects(p, 'bob@example.com', 'Bob-Pass1!'))

    def propose(extra):
        x = ('<MeetingResponse xmlns="MeetingResponse:"><Request><UserResponse>2</UserResponse>'
             '<CollectionId>%s</CollectionId><RequestId>%s</RequestId><SendResponse>%s'
             '</SendResponse></Request></MeetingResponse>' % (c.folders[8], cal_id, extra))
        st, _, t = c.post('MeetingResponse', x)
        assert st == 200, st
        return text(t, 'MeetingResponse:Result/MeetingResponse:Status')
    assert propose('<Body xmlns="AirSyncBase:"><Type>1</Type><Data>Can we do Wednesday?\n'
                   'Thanks, Alice</Data></Body>'
                   '<ProposedStartTime>20301002T130000Z</ProposedStartTime>'
                   '<ProposedEndTime>20301002T140000Z</ProposedEndTime>') == '1'
    counter = wait_mails(p, before + 1)[-1]
    assert 'Subject: New Time Proposed: Project kickoff' in counter, counter
    assert 'method=COUNTER' in counter and 'METHOD:COUNTER' in counter, counter
    assert 'DTSTART:20301002T130000Z' in counter and 'DTEND:20301002T140000Z' in counter
    assert 'UID:kickoff-1@example.com' in counter and 'SEQUENCE:2' in counter
    assert 'PARTSTAT=TENTATIVE:mailto:alice@example.com' in counter
    assert 'COMMENT:Can we do Wednesday?\\nThanks\\, Alice' in counter, counter
    assert 'Can we do Wednesday?\r\nThanks, Alice' in counter
    ical = item_get(p, 'kickoff-1@example.com')
    assert 'DTSTART:20301001T090000Z' in ical and 'PARTSTAT=TENTATIVE' in ical, ical
    # half a proposal, or one that ends before it starts: Status 2, nothing sent or changed
    for bad in ('<ProposedStartTime>20301002T130000Z</ProposedStartTime>',
                '<ProposedEndTime>20301002T140000Z</ProposedEndTime>',
                '<ProposedStartTime>20301002T140000Z</ProposedStartTime>'
                '<ProposedEndTime>20301002T130000Z</ProposedEndTime>',
                '<ProposedStartTime>tomorrow</ProposedStartTime>'
                '<ProposedEndTime>20301002T130000Z</ProposedEndTime>'):
        assert propose(bad) == '2', bad
    time.sleep(0.3)
    assert len(imap_subjects(p, 'bob@example.com', 'Bob-Pass1!')) == before + 1
    assert item_get(p, 'kickoff-1@example.com') == ical
    # not a meeting request / no such item / no such response: Status 2
    plain = [s for s, a in inbox.items() if s != sid]
    for coll, rid, resp in ((c.folders[2], c.folders[2] + ':999999', 1),
                            (c.folders[2], sid, 7),
                            (c.folders[9], sid, 1)) + (((c.folders[2], plain[0], 1),)
                                                       if plain else ()):
        r = meeting_response(c, coll, rid, resp)
        assert text(r, 'MeetingResponse:Status') == '2', (coll, rid, resp, tostring(r))


# ---- iTIP replies reaching the organizer --------------------------------------------------

REVIEW = (
    'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Alice//EN\r\nBEGIN:VEVENT\r\n'
    'UID:review-7@example.com\r\nDTSTAMP:20240101T000000Z\r\nSEQUENCE:1\r\n'
    'DTSTART:20301105T140000Z\r\nDTEND:20301105T150000Z\r\nSUMMARY:Design review\r\n'
    'ORGANIZER;CN=Alice:mailto:alice@example.com\r\n'
    'ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.com\r\n'
    'ATTENDEE;CN=Carol;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:carol@example.com\r\n'
    'ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:dave@example.org\r\n'
    'END:VEVENT\r\nEND:VCALENDAR\r\n')

WEEKLY = (
    'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Alice//EN\r\nBEGIN:VEVENT\r\n'
    'UID:weekly-7@example.com\r\nDTSTAMP:20240101T000000Z\r\n'
    'DTSTART:20301104T090000Z\r\nDTEND:20301104T093000Z\r\nRRULE:FREQ=WEEKLY;COUNT=6\r\n'
    'SUMMARY:Weekly sync\r\nORGANIZER:mailto:alice@example.com\r\n'
    'ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n')

NOT_MINE = (
    'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bob//EN\r\nBEGIN:VEVENT\r\n'
    'UID:bobs-party@example.com\r\nDTSTAMP:20240101T000000Z\r\n'
    'DTSTART:20301106T180000Z\r\nDTEND:20301106T210000Z\r\nSUMMARY:Party\r\n'
    'ORGANIZER:mailto:bob@example.com\r\n'
    'ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.com\r\n'
    'ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:dave@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n')


def reply_mail(frm, uid, attendee, partstat, seq=1, rid='', b64=False, method='REPLY'):
    """An iTIP REPLY as mail clients send it (RFC 6047): a text part and the calendar."""
    ics = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Some client//EN\r\nMETHOD:%s\r\n'
           'BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20301001T000000Z\r\nSEQUENCE:%d\r\n%s'
           'ORGANIZER:mailto:alice@example.com\r\nATTENDEE;PARTSTAT=%s:mailto:%s\r\n'
           'END:VEVENT\r\nEND:VCALENDAR\r\n'
           % (method, uid, seq, 'RECURRENCE-ID:%s\r\n' % rid if rid else '', partstat, attendee))
    part = base64.encodebytes(ics.encode()).decode().replace('\n', '\r\n') if b64 else ics
    return ('From: <%s>\r\nTo: alice@example.com\r\nSubject: Reply %s\r\n'
            'Message-ID: <%s@example.net>\r\nMIME-Version: 1.0\r\n'
            'Content-Type: multipart/alternative; boundary="r1"\r\n\r\n'
            '--r1\r\nContent-Type: text/plain\r\n\r\nMy answer.\r\n'
            '--r1\r\nContent-Type: text/calendar; charset="utf-8"; method=%s\r\n%s\r\n%s'
            '--r1--\r\n'
            % (frm, partstat, os.urandom(8).hex(), method,
               'Content-Transfer-Encoding: base64\r\n' if b64 else '', part))


def deliver_to_alice(p, frm, msg):
    r = p.cli('mail', 'deliver', '--from', frm, USER, input=msg)
    assert r.returncode == 0, (r.stdout, r.stderr)


def partstat_of(ical, who):
    return [line.split('PARTSTAT=')[1].split(';')[0].split(':')[0]
            for line in ical.split('\n') if line.startswith('ATTENDEE') and who in line]


def test_organizer_replies(p):
    """An iTIP REPLY that reaches the organizer sets the attendee's PARTSTAT in the
    organizer's event, as Exchange does: phones and CalDAV clients see who accepted."""
    p.cli_ok('user', 'add', 'carol@example.com', '--type', 'enhanced', '--password',
             'Carol-Pass1!')
    put(p, 'review.ics', REVIEW)
    put(p, 'weekly.ics', WEEKLY)
    put(p, 'party.ics', NOT_MINE)
    org = device(p, 'organizer161', '16.1')
    sid, app = by_subject(commands(sync(org, 8), 'Add'), 'Calendar', 'Design review')
    inbox_before = len(imap_subjects(p, USER, PW))
    # The whole loop between two mailboxes: Carol's phone accepts the invitation in her
    # Inbox and asks the server to answer; the REPLY reaches Alice and her event changes.
    invite = ('From: Alice <alice@example.com>\r\nTo: carol@example.com\r\n'
              'Subject: Invitation: Design review\r\nMessage-ID: <inv-review-7@example.com>\r\n'
              'MIME-Version: 1.0\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST'
              '\r\n\r\n' + REVIEW.replace('VERSION:2.0\r\n', 'VERSION:2.0\r\nMETHOD:REQUEST\r\n'))
    r = p.cli('mail', 'deliver', '--from', USER, 'carol@example.com', input=invite)
    assert r.returncode == 0, (r.stdout, r.stderr)
    carol = EasClient(p, 'carol@example.com', 'Carol-Pass1!', device_id='carol161',
                      version='16.1')
    provision(carol)
    st, _, t = carol.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0'
                          '</SyncKey></FolderSync>')
    carol.folders = {int(text(a, 'FolderHierarchy:Type')): text(a, 'FolderHierarchy:ServerId')
                     for a in findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Add')}
    carol.keys = {}
    inv_sid, _ = by_subject(commands(sync(carol, 2), 'Add'), 'Email',
                            'Invitation: Design review')
    r = meeting_response(carol, carol.folders[2], inv_sid, 1, send=True)
    assert text(r, 'MeetingResponse:Status') == '1', tostring(r)
    ical = item_get(p, 'review-7@example.com')
    assert partstat_of(ical, 'carol@') == ['ACCEPTED'], ical
    assert partstat_of(ical, 'bob@') == ['NEEDS-ACTION'], ical
    assert 'SEQUENCE:1' in ical and 'RSVP=TRUE' in ical, ical
    # Alice's phone hears of it: a Change with Carol's AttendeeStatus 3 (accepted)
    ch = commands(sync(org, 8), 'Change')
    assert sid in ch, [tostring(a) for a in ch.values()]
    status = {text(a, 'Calendar:Email'): text(a, 'Calendar:AttendeeStatus')
              for a in findall(ch[sid], 'Calendar:Attendees/Calendar:Attendee')}
    assert status == {'bob@example.com': '5', 'carol@example.com': '3',
                      'dave@example.org': '5'}, status
    # A reply from outside, its calendar base64-encoded as Outlook sends it
    deliver_to_alice(p, 'dave@example.org',
                     reply_mail('dave@example.org', 'review-7@example.com', 'dave@example.org',
                                'TENTATIVE', b64=True))
    assert partstat_of(item_get(p, 'review-7@example.com'), 'dave@') == ['TENTATIVE']
    # Nothing changes for: a reply From someone else than the attendee it speaks for; a
    # reply to an older SEQUENCE; NEEDS-ACTION; a COUNTER; an attendee the event does not
    # list; an event Alice does not organise
    before = item_get(p, 'review-7@example.com')
    for frm, msg in (
            ('mallory@example.net', reply_mail('mallory@example.net', 'review-7@example.com',
                                               'bob@example.com', 'DECLINED')),
            ('bob@example.com', reply_mail('bob@example.com', 'review-7@example.com',
                                           'bob@example.com', 'DECLINED', seq=0)),
            ('bob@example.com', reply_mail('bob@example.com', 'review-7@example.com',
                                           'bob@example.com', 'NEEDS-ACTION')),
            ('bob@example.com', reply_mail('bob@example.com', 'review-7@example.com',
                                           'bob@example.com', 'DECLINED', method='COUNTER')),
            ('erin@example.net', reply_mail('erin@example.net', 'review-7@example.com',
                                            'erin@example.net', 'ACCEPTED')),
            # hostile: a calendar cut off mid-event, and one of 300 KB of nonsense
            ('bob@example.com', reply_mail('bob@example.com', 'review-7@example.com',
                                           'bob@example.com', 'DECLINED')
             .replace('END:VEVENT\r\nEND:VCALENDAR\r\n', '')),
            ('bob@example.com', reply_mail('bob@example.com', 'review-7@example.com',
                                           'bob@example.com', 'DECLINED')
             .replace('SEQUENCE:1', 'X-JUNK:' + 'x;' * 150000))):
        deliver_to_alice(p, frm, msg)
        assert item_get(p, 'review-7@example.com') == before, msg
    deliver_to_alice(p, 'dave@example.org',
                     reply_mail('dave@example.org', 'bobs-party@example.com',
                                'dave@example.org', 'ACCEPTED'))
    assert partstat_of(item_get(p, 'bobs-party@example.com'), 'dave@') == ['NEEDS-ACTION']
    # Bob declines the series, then accepts one occurrence: only its override says so
    deliver_to_alice(p, 'bob@example.com', reply_mail('bob@example.com', 'weekly-7@example.com',
                                                      'bob@example.com', 'DECLINED', seq=0))
    deliver_to_alice(p, 'bob@example.com', reply_mail(
        'bob@example.com', 'weekly-7@example.com', 'bob@example.com', 'ACCEPTED', seq=0,
        rid='20301118T090000Z'))
    ical = item_get(p, 'weekly-7@example.com')
    assert 'RECURRENCE-ID:20301118T090000Z' in ical, ical
    assert partstat_of(ical, 'bob@') == ['DECLINED', 'ACCEPTED'], ical
    # every one of those messages is in Alice's Inbox all the same
    got = imap_subjects(p, USER, PW)
    assert len(got) == inbox_before + 12, len(got) - inbox_before
    assert sum('Subject: Accepted: Design review' in m for m in got) == 1


def main():
    t0 = time.time()
    with Polaris(listeners=('http', 'imap'),
                 extra_config='[auth]\nallow_plaintext = loopback\n') as p:
        p.add_demo()
        test_meeting_response(p)
        test_organizer_replies(p)
        test_calendar(p, '14.1')
        test_calendar(p, '16.1')
        test_v121_class(p)
        test_v25(p)
        test_caldav(p)
        test_ping(p)
        test_filter(p)
        for version in ('14.1', '16.1'):
            test_contacts(p, version)
            test_tasks(p, version)
            test_notes(p, version)
    print('ok (%.1fs)' % (time.time() - t0))


if __name__ == '__main__':
    main()
