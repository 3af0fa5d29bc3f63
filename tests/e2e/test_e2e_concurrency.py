"""One mailbox changed from IMAP, ActiveSync, SMTP and CalDAV at once, for a bounded time;
then every client must agree with the store and with the writers' last acknowledged changes.

Writers own disjoint things, so "the last write wins" is well defined and a lost update
is visible:
  - IMAP toggles \\Flagged and the keyword "Urgent" on the shared messages, moves the
    movers between INBOX and Work, and APPENDs new messages;
  - ActiveSync (device A, which also pulls INBOX and Work all the time) toggles Read on the
    shared messages and deletes (to Trash) messages delivered during the run;
  - SMTP delivers new messages;
  - CalDAV creates events in the calendar and renames them (a new SUMMARY), while device A
    pulls its Calendar folder.
At the end: every acknowledged message exists exactly once (no loss, no duplicate); the
shared messages carry IMAP's last \\Flagged/keyword and ActiveSync's last Read; device A's
incremental view, a new device's full sync, IMAP and POP3 all show the same messages
with the same Read/flag state; every event CalDAV was answered 201/204 for exists once
with its last SUMMARY, over CalDAV and on device A and a new device; PRAGMA
integrity_check is ok.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/e2e/test_e2e_concurrency.py
"""
import os
import random
import re
import sys
import threading
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Server, message, text, find, findall, coll_of, sync, OPTIONS  # noqa: E402
from test_e2e_pim import Dav  # noqa: E402

USER = 'busy@example.com'
DURATION = float(os.environ.get('E2E_CONCURRENCY_SECONDS', '60'))  # the minute
NSHARED, NMOVERS = 24, 8


class EasModel:
    """Device A's picture of its folders, kept from Sync answers alone."""

    def __init__(self, eas):
        self.eas = eas
        self.items = {}      # folder name -> {sid: {'subject', 'read', 'flag'}}

    def _apply(self, name, col):
        view = self.items.setdefault(name, {})
        for a in findall(col, 'AirSync:Commands/AirSync:Add'):
            d = find(a, 'AirSync:ApplicationData')
            view[text(a, 'AirSync:ServerId')] = {
                'subject': text(d, 'Email:Subject') or text(d, 'Calendar:Subject'),
                'read': text(d, 'Email:Read') == '1',
                'flag': text(d, 'Email:Flag/Email:Status') == '2'}
        for c in findall(col, 'AirSync:Commands/AirSync:Change'):
            d = find(c, 'AirSync:ApplicationData')
            it = view[text(c, 'AirSync:ServerId')]
            if find(d, 'Calendar:Subject') is not None:
                it['subject'] = text(d, 'Calendar:Subject')
            if find(d, 'Email:Read') is not None:
                it['read'] = text(d, 'Email:Read') == '1'
            if find(d, 'Email:Flag') is not None:
                it['flag'] = text(d, 'Email:Flag/Email:Status') == '2'
        for kind in ('Delete', 'SoftDelete'):
            for x in findall(col, 'AirSync:Commands/AirSync:' + kind):
                view.pop(text(x, 'AirSync:ServerId'), None)

    def sync(self, name, commands='', options=OPTIONS):
        """One Sync (with client commands) and the windows after it; returns the client
        commands' failures {sid: status}."""
        coll = self.eas.fid(name)
        failed = {}
        body = '<Commands>%s</Commands>' % commands if commands else ''
        for _ in range(200):
            col = coll_of(sync(self.eas.c, coll, self.eas.keys[coll], body=body, window=50,
                               options=options))
            assert text(col, 'AirSync:Status') == '1', text(col, 'AirSync:Status')
            self.eas.keys[coll] = text(col, 'AirSync:SyncKey')
            for r in findall(col, 'AirSync:Responses/*'):
                if text(r, 'AirSync:Status') != '1':
                    failed[text(r, 'AirSync:ServerId')] = text(r, 'AirSync:Status')
            self._apply(name, col)
            body = ''
            if find(col, 'AirSync:MoreAvailable') is None:
                return failed
        raise AssertionError('MoreAvailable never ended')

    def start(self, name, options=OPTIONS):
        coll = self.eas.fid(name)
        col = coll_of(sync(self.eas.c, coll, 0))
        self.eas.keys[coll] = text(col, 'AirSync:SyncKey')
        self.sync(name, options=options)

    def by_subject(self, name):
        out = {}
        for it in self.items.get(name, {}).values():
            assert it['subject'] not in out, 'duplicate on the device: %s' % it['subject']
            out[it['subject']] = (it['read'], it['flag'])
        return out


def imap_view(m, folder):
    """{subject: (seen, flagged, urgent, message-id)} of a folder; asserts no duplicate."""
    typ, d = m.select('"%s"' % folder, readonly=True)
    assert typ == 'OK', d
    if int(d[0]) == 0:
        return {}
    typ, d = m.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])')
    assert typ == 'OK', d
    out = {}
    for part in d:
        if not isinstance(part, tuple):
            continue
        flags = re.search(rb'FLAGS \(([^)]*)\)', part[0]).group(1).split()
        hdr = part[1].decode()
        subj = re.search(r'Subject: (.*)\r\n', hdr).group(1)
        mid = re.search(r'Message-ID: (.*)\r\n', hdr, re.I).group(1)
        assert subj not in out, 'duplicate in %s: %s' % (folder, subj)
        out[subj] = (b'\\Seen' in flags, b'\\Flagged' in flags, b'Urgent' in flags, mid)
    return out


class Concurrency(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        cls.addClassCleanup(cls.s.__exit__, None, None, None)   # also when setup fails
        cls.s.__enter__()
        cls.s.user(USER, 'enhanced')

    def test_imap_activesync_smtp_at_once(self):
        s = self.s
        rnd = random.Random(8)
        shared = ['shared %02d' % i for i in range(NSHARED)]
        movers = ['mover %02d' % i for i in range(NMOVERS)]
        for subj in shared + movers:
            s.mx_send('x@example.net', [USER], message(subj, to=USER))
        m = s.imap(USER)
        m.create('Work')
        m.select('INBOX')
        uid = {}
        for subj in shared:
            typ, d = m.uid('SEARCH', None, 'SUBJECT', '"%s"' % subj)
            uid[subj] = d[0].split()[0].decode()
        eas = EasModel(s.eas(USER, 'deviceA'))
        eas.start('Inbox')
        eas.start('Work')
        sids = {it['subject']: sid for sid, it in eas.items['Inbox'].items()}

        acked = set(shared + movers)             # every message some client was told is in
        last_flag, last_urgent, last_read = {}, {}, {}
        deleted, errors = set(), []
        stop = time.monotonic() + DURATION
        lock = threading.Lock()

        def imap_writer():
            mw = s.imap(USER)
            where = {x: 'INBOX' for x in movers}
            n = 0
            try:
                mw.select('INBOX')
                while time.monotonic() < stop:
                    op = rnd.random()
                    subj = rnd.choice(shared)
                    if op < 0.4:
                        on = rnd.random() < 0.5
                        typ, _ = mw.uid('STORE', uid[subj], '+FLAGS' if on else '-FLAGS',
                                        '(\\Flagged)')
                        assert typ == 'OK'
                        last_flag[subj] = on
                    elif op < 0.6:
                        on = rnd.random() < 0.5
                        typ, _ = mw.uid('STORE', uid[subj], '+FLAGS' if on else '-FLAGS',
                                        '(Urgent)')
                        assert typ == 'OK'
                        last_urgent[subj] = on
                    elif op < 0.8:
                        mv = rnd.choice(movers)
                        src = where[mv]
                        dst = 'Work' if src == 'INBOX' else 'INBOX'
                        mw.select(src)
                        typ, d = mw.uid('SEARCH', None, 'SUBJECT', '"%s"' % mv)
                        (u,) = d[0].split()
                        typ, _ = mw.uid('MOVE', u, dst)
                        assert typ == 'OK'
                        where[mv] = dst
                        mw.select('INBOX')
                    else:
                        n += 1
                        subj = 'appended %03d' % n
                        typ, _ = mw.append('INBOX', None, None, message(subj, to=USER).encode())
                        assert typ == 'OK'
                        with lock:
                            acked.add(subj)
            except Exception as e:          # reported by the main thread
                errors.append('imap: %r' % e)
            finally:
                mw.logout()

        dav = Dav(s, USER)
        events = {}                              # uid -> last SUMMARY acknowledged

        def event(uid, summary, n):
            return ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//e2e//EN\r\nBEGIN:VEVENT\r\n'
                    'UID:%s\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:203001%02dT090000Z\r\n'
                    'DTEND:203001%02dT100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\n'
                    'END:VCALENDAR\r\n' % (uid, 1 + n % 28, 1 + n % 28, summary))

        def dav_writer():
            n = 0
            try:
                while time.monotonic() < stop:
                    if events and rnd.random() < 0.5:
                        uid = rnd.choice(sorted(events))
                        summary = '%s v%d' % (uid, n)
                    else:
                        uid = 'ev%03d' % len(events)
                        summary = uid
                    n += 1
                    dav.put(dav.cal() + uid + '.ics', event(uid, summary, len(events)))
                    events[uid] = summary                # acknowledged: 201 or 204
                    time.sleep(0.05)
            except Exception as e:
                errors.append('caldav: %r' % e)

        def smtp_writer():
            n = 0
            try:
                while time.monotonic() < stop:
                    n += 1
                    subj = 'delivered %03d' % n
                    s.mx_send('x@example.net', [USER], message(subj, to=USER))
                    with lock:
                        acked.add(subj)
                    time.sleep(0.1)
            except Exception as e:
                errors.append('smtp: %r' % e)

        eas.start('Calendar', options='')
        threads = [threading.Thread(target=imap_writer), threading.Thread(target=smtp_writer),
                   threading.Thread(target=dav_writer)]
        for t in threads:
            t.start()
        rounds = 0
        try:
            while time.monotonic() < stop:
                rounds += 1
                cmds, pending = [], {}
                for subj in rnd.sample(shared, 3):
                    on = rnd.random() < 0.5
                    pending[sids[subj]] = (subj, on)
                    cmds.append('<Change><ServerId>%s</ServerId><ApplicationData><Email:Read '
                                'xmlns:Email="Email:">%d</Email:Read></ApplicationData>'
                                '</Change>' % (sids[subj], on))
                fresh = [(sid, it['subject']) for sid, it in eas.items['Inbox'].items()
                         if it['subject'].startswith('delivered') and sid not in pending]
                gone = {}
                if fresh and rnd.random() < 0.5:
                    sid, subj = rnd.choice(fresh)
                    gone[sid] = subj
                    cmds.append('<Delete><ServerId>%s</ServerId></Delete>' % sid)
                failed = eas.sync('Inbox', ''.join(cmds),
                                  options='<DeletesAsMoves>1</DeletesAsMoves>' + OPTIONS)
                self.assertEqual(failed, {}, 'refused client changes')
                for sid, (subj, on) in pending.items():
                    last_read[subj] = on
                    eas.items['Inbox'][sid]['read'] = on    # what the phone shows now
                deleted.update(gone.values())
                for sid in gone:                  # a device's own Delete is not echoed
                    eas.items['Inbox'].pop(sid, None)
                eas.sync('Work')
                eas.sync('Calendar', options='')
        finally:
            for t in threads:
                t.join(60)
        self.assertEqual(errors, [])
        # -- the end state --------------------------------------------------------------
        eas.sync('Inbox')
        eas.sync('Work')
        views = {f: imap_view(m, f) for f in ('INBOX', 'Work', 'Trash')}
        m.logout()
        everywhere = [subj for v in views.values() for subj in v]
        self.assertEqual(sorted(everywhere), sorted(acked), 'lost or duplicated messages')
        mids = [v[3] for f in views.values() for v in f.values()]
        self.assertEqual(len(mids), len(set(mids)))
        self.assertEqual(set(views['Trash']), deleted)
        # the writers' last words
        for subj in shared:
            seen, flagged, urgent, _ = views['INBOX'][subj]
            self.assertEqual(flagged, last_flag.get(subj, False), 'lost \\Flagged: ' + subj)
            self.assertEqual(urgent, last_urgent.get(subj, False), 'lost keyword: ' + subj)
            self.assertEqual(seen, last_read.get(subj, False), 'lost Read: ' + subj)
        # every client sees the same: device A (incremental), device B (new), POP3
        fresh = EasModel(s.eas(USER, 'deviceB'))
        for f, name in (('INBOX', 'Inbox'), ('Work', 'Work'), ('Trash', 'Trash')):
            want = {subj: (v[0], v[1]) for subj, v in views[f].items()}
            fresh.start(name)
            self.assertEqual(fresh.by_subject(name), want, 'new device, ' + name)
            if name != 'Trash':
                got = eas.by_subject(name)
                diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                        if got.get(k) != want.get(k)}
                self.assertEqual(diff, {}, 'device A vs the store, ' + name)
        # the calendar: CalDAV's last words, seen over CalDAV, on device A and a new device
        eas.sync('Calendar', options='')
        want = {summary for summary in events.values()}
        st, _, body = dav.req('REPORT', dav.cal(),
                              '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
                              'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/>'
                              '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter '
                              'name="VEVENT"/></C:comp-filter></C:filter></C:calendar-query>',
                              {'Depth': '1', 'Content-Type': 'application/xml'})
        self.assertEqual(st, 207)
        got = [re.search(r'SUMMARY:([^\r\n]*)', el.text).group(1) for el in
               ET.fromstring(body).iter('{urn:ietf:params:xml:ns:caldav}calendar-data')]
        self.assertEqual(sorted(got), sorted(want), 'CalDAV: lost or duplicated events')
        self.assertEqual(sorted(it['subject'] for it in eas.items['Calendar'].values()),
                         sorted(want), 'device A calendar')
        fresh.start('Calendar', options='')
        self.assertEqual(sorted(it['subject'] for it in fresh.items['Calendar'].values()),
                         sorted(want), 'new device calendar')
        po = s.pop3(USER)
        count, _ = po.stat()
        subjects = set()
        for i in range(1, count + 1):
            hdr = b'\r\n'.join(po.top(i, 0)[1]).decode()
            subjects.add(re.search(r'Subject: (.*)', hdr).group(1).strip())
        po.quit()
        self.assertEqual(subjects, set(views['INBOX']))
        self.assertEqual(s.integrity(USER), ['ok'])
        print('\n%.0f s: %d ActiveSync rounds, %d messages in the end (%d in Trash), '
              '%d flag / %d keyword / %d read last-writes checked, %d events'
              % (DURATION, rounds, len(acked), len(deleted), len(last_flag), len(last_urgent),
                 len(last_read), len(events)))


if __name__ == '__main__':
    unittest.main(verbosity=2)
