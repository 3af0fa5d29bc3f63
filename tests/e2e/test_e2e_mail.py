"""Mail across protocols on one user's store: SMTP delivery seen by IMAP, POP3 and
ActiveSync; flags, keywords and deletions both ways between IMAP and ActiveSync (with
CONDSTORE MODSEQ and EXPUNGE on the IMAP side); moves both ways being moves (the same
message in a new folder); ActiveSync SendMail landing in Sent over IMAP and at the
recipient. Each test has its own mailbox, so the stores do not mix.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/e2e/test_e2e_mail.py
"""
import os
import poplib
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (Server, message, uid_by_subject, fetch_flags, text, find, findall,  # noqa: E402
                 tostring)


def read_of(appdata):
    return text(appdata, 'Email:Read')


def flag_status(appdata):
    return text(appdata, 'Email:Flag/Email:Status')


def categories(appdata):
    return [c.text for c in findall(appdata, 'Email:Categories/Email:Category')]


def modseq(m, uid):
    typ, d = m.uid('FETCH', str(uid), '(MODSEQ)')
    assert typ == 'OK', d
    return int(re.search(rb'MODSEQ \((\d+)\)', d[0]).group(1))


def untagged_expunges(m):
    """Sequence numbers of the EXPUNGEs the server sent since the last look (imaplib keeps
    untagged answers; NOOP is the point where they may come)."""
    m.noop()
    return [int(x) for x in m.untagged_responses.pop('EXPUNGE', [])]


class MailAcross(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        cls.addClassCleanup(cls.s.__exit__, None, None, None)   # also when setup fails
        cls.s.__enter__()
        cls.s.user('bob@example.com', 'basic')

    def mailbox(self, name):
        addr = '%s@example.com' % name
        self.s.user(addr, 'enhanced')
        return addr

    def imap(self, addr):
        m = self.s.imap(addr)
        self.addCleanup(m.logout)
        return m

    def eas_with(self, addr, subjects, device='dev1'):
        """A device that has synced the Inbox; returns (eas, {subject: ServerId})."""
        eas = self.s.eas(addr, device)
        adds = eas.initial('Inbox')
        by_subj = {text(a, 'Email:Subject'): sid for sid, a in adds.items()}
        for subj in subjects:
            self.assertIn(subj, by_subj)
        return eas, by_subj

    def deliver(self, addr, *subjects):
        for subj in subjects:
            self.s.mx_send('sender@example.net', [addr], message(subj, to=addr,
                                                                body='Body of %s.' % subj))

    # ------------------------------------------------------------------------------------
    def test_smtp_delivery_seen_everywhere(self):
        addr = self.mailbox('deliv')
        eas = self.s.eas(addr, 'phone')
        eas.initial('Inbox')                      # an empty Inbox, primed before delivery
        self.s.mx_send('sender@example.net', [addr],
                       message('first delivery', body='The quick brown fox jumps.', to=addr))
        # IMAP: one message, a UID, no flags (only \Recent may be there), the same bytes
        m = self.imap(addr)
        typ, d = m.select('INBOX')
        self.assertEqual(int(d[0]), 1)
        uids = uid_by_subject(m, 'INBOX', 'first delivery')
        self.assertEqual(len(uids), 1)
        self.assertEqual(fetch_flags(m, uids[0]) - {'\\Recent'}, set())
        typ, d = m.uid('FETCH', str(uids[0]), '(BODY.PEEK[TEXT])')
        self.assertIn(b'The quick brown fox jumps.', d[0][1])
        # POP3: the same message, a UIDL that stays the same in a new session
        po = self.s.pop3(addr)
        count, _ = po.stat()
        self.assertEqual(count, 1)
        uidl = po.uidl(1).split()[-1]
        self.assertIn(b'Subject: first delivery', b'\r\n'.join(po.retr(1)[1]))
        po.quit()
        po = self.s.pop3(addr)
        self.assertEqual(po.uidl(1).split()[-1], uidl)
        po.quit()
        # ActiveSync: an Add with subject, sender and a preview of the body
        res = eas.pull('Inbox')
        self.assertEqual(len(res['add']), 1, res)
        (sid, a), = res['add'].items()
        self.assertEqual(text(a, 'Email:Subject'), 'first delivery')
        self.assertEqual(text(a, 'Email:From'), 'Sender <sender@example.net>',
                         tostring(a))
        self.assertEqual(read_of(a), '0')
        self.assertTrue(text(a, 'AirSyncBase:Body/AirSyncBase:Preview', '')
                        .startswith('The quick brown fox jumps.'), tostring(a))
        self.assertIn('The quick brown fox jumps.', text(a, 'AirSyncBase:Body/AirSyncBase:Data'))
        # reading it in POP3 (RETR) does not mark it read anywhere else
        self.assertEqual(fetch_flags(m, uids[0]) - {'\\Recent'}, set())

    def test_imap_append_with_flags_seen_by_activesync(self):
        """An APPEND with flags (a desktop client filing a read, flagged, tagged message)
        is an Add with Read, Flag and Categories; ActiveSync Search finds it."""
        addr = self.mailbox('append')
        eas = self.s.eas(addr, 'adev')
        eas.initial('Inbox')
        m = self.imap(addr)
        typ, _ = m.append('INBOX', '(\\Seen \\Flagged Invoices)', None,
                          message('filed by the desktop', to=addr,
                                  body='Quarterly numbers attached.').encode())
        self.assertEqual(typ, 'OK')
        adds = eas.pull('Inbox')['add']
        self.assertEqual(len(adds), 1)
        (sid, a), = adds.items()
        self.assertEqual((text(a, 'Email:Subject'), read_of(a), flag_status(a), categories(a)),
                         ('filed by the desktop', '1', '2', ['Invoices']))
        _, _, t = eas.c.post('Search', '<Search xmlns="Search:"><Store><Name>Mailbox</Name>'
                             '<Query><And><AirSync:Class xmlns:AirSync="AirSync:">Email'
                             '</AirSync:Class><AirSync:CollectionId xmlns:AirSync="AirSync:">'
                             '%s</AirSync:CollectionId><FreeText>Quarterly</FreeText></And>'
                             '</Query><Options><Range>0-9</Range></Options></Store></Search>'
                             % eas.fid('Inbox'))
        st = find(t, 'Search:Response/Search:Store')
        self.assertEqual(text(st, 'Search:Status'), '1')
        self.assertEqual([text(r, 'Search:Properties/Email:Subject')
                          for r in findall(st, 'Search:Result')], ['filed by the desktop'])

    def test_imap_flags_reach_activesync(self):
        addr = self.mailbox('iflags')
        subjects = ['seen one', 'flagged one', 'keyword one', 'deleted one', 'untouched one']
        self.deliver(addr, *subjects)
        eas, sid = self.eas_with(addr, subjects)
        m = self.imap(addr)
        uid = {s: uid_by_subject(m, 'INBOX', s)[0] for s in subjects}
        m.select('INBOX')
        m.uid('STORE', str(uid['seen one']), '+FLAGS', '(\\Seen)')
        m.uid('STORE', str(uid['flagged one']), '+FLAGS', '(\\Flagged)')
        m.uid('STORE', str(uid['keyword one']), '+FLAGS', '(Project-X $Label1)')
        m.uid('STORE', str(uid['deleted one']), '+FLAGS', '(\\Deleted)')
        m.expunge()
        res = eas.pull('Inbox')
        self.assertEqual(sorted(res['change']), sorted(sid[s] for s in subjects[:3]))
        self.assertEqual(res['delete'], [sid['deleted one']])
        self.assertFalse(res['add'])
        ch = res['change']
        self.assertEqual(read_of(ch[sid['seen one']]), '1')
        self.assertEqual(flag_status(ch[sid['seen one']]), None)
        self.assertEqual(read_of(ch[sid['flagged one']]), '0')
        self.assertEqual(flag_status(ch[sid['flagged one']]), '2')
        # IMAP's own conventions ($...) are no category; a user's keyword is one
        self.assertEqual(categories(ch[sid['keyword one']]), ['Project-X'])
        # taking the flags off again arrives too
        m.uid('STORE', str(uid['seen one']), '-FLAGS', '(\\Seen)')
        m.uid('STORE', str(uid['flagged one']), '-FLAGS', '(\\Flagged)')
        m.uid('STORE', str(uid['keyword one']), '-FLAGS', '(Project-X)')
        ch = eas.pull('Inbox')['change']
        self.assertEqual(read_of(ch[sid['seen one']]), '0')
        self.assertIsNone(flag_status(ch[sid['flagged one']]))
        self.assertEqual(categories(ch[sid['keyword one']]), [])
        # reading the message in IMAP (FETCH BODY[], not PEEK) sets \\Seen: Read 1
        typ, d = m.uid('FETCH', str(uid['untouched one']), '(BODY[])')
        self.assertEqual(typ, 'OK')
        ch = eas.pull('Inbox')['change']
        self.assertEqual(list(ch), [sid['untouched one']])
        self.assertEqual(read_of(ch[sid['untouched one']]), '1')
        # nothing more to tell
        res = eas.pull('Inbox')
        self.assertFalse(res['add'] or res['change'] or res['delete'])

    def test_imap_answered_forwarded_reach_activesync(self):
        """Regression: a reply or forward sent from the desktop (IMAP \\Answered,
        $Forwarded) after the phone synced the message used to arrive as a Change without
        LastVerbExecuted, so the phone never showed it replied/forwarded."""
        addr = self.mailbox('verbs')
        self.deliver(addr, 'reply to me', 'forward me')
        eas, sid = self.eas_with(addr, ['reply to me', 'forward me'])
        m = self.imap(addr)
        m.uid('STORE', str(uid_by_subject(m, 'INBOX', 'reply to me')[0]), '+FLAGS',
              '(\\Answered)')
        m.uid('STORE', str(uid_by_subject(m, 'INBOX', 'forward me')[0]), '+FLAGS',
              '($Forwarded)')
        ch = eas.pull('Inbox')['change']
        self.assertEqual(text(ch[sid['reply to me']], 'Email2:LastVerbExecuted'), '1')
        self.assertEqual(text(ch[sid['forward me']], 'Email2:LastVerbExecuted'), '3')
        # a forwarded message is no category
        self.assertEqual(categories(ch[sid['forward me']]), [])

    def test_pop3_session_while_activesync_deletes(self):
        """A POP3 session keeps its numbering while the phone deletes one of its
        messages: the session goes on (RETR answers, or -ERR for the gone one), QUIT
        succeeds, and the next session no longer lists it."""
        addr = self.mailbox('popsnap')
        self.deliver(addr, 'pop first', 'pop second')
        eas, sid = self.eas_with(addr, ['pop first', 'pop second'])
        po = self.s.pop3(addr)
        self.assertEqual(po.stat()[0], 2)
        uidls = dict(x.split()[::-1] for x in po.uidl()[1])
        eas.delete('Inbox', sid['pop second'])
        gone = 0
        for i in (1, 2):
            try:
                po.retr(i)
            except poplib.error_proto as e:
                self.assertTrue(str(e).startswith("b'-ERR"), e)
                gone += 1
        self.assertLessEqual(gone, 1)
        self.assertTrue(po.quit().startswith(b'+OK'))
        po = self.s.pop3(addr)
        self.assertEqual(po.stat()[0], 1)
        (left,) = [x.split()[1] for x in po.uidl()[1]]
        self.assertIn(left, uidls)
        self.assertIn(b'Subject: pop first', b'\r\n'.join(po.top(1, 0)[1]))
        po.quit()

    def test_smartreply_marks_answered_everywhere(self):
        """A reply from one phone: IMAP sees \\Answered, another phone LastVerbExecuted."""
        addr = self.mailbox('replier')
        self.deliver(addr, 'please answer')
        phone, sid = self.eas_with(addr, ['please answer'], device='phone1')
        tablet, tsid = self.eas_with(addr, ['please answer'], device='tablet1')
        mime = ('From: %s\r\nTo: bob@example.com\r\nSubject: Re: please answer\r\n\r\n'
                'Done.\r\n' % addr)
        st, _, body = phone.c.post('SmartReply', '<SmartReply xmlns="ComposeMail:"><ClientId>'
                                   'r1</ClientId><Source><FolderId>%s</FolderId><ItemId>%s'
                                   '</ItemId></Source><Mime>%s</Mime></SmartReply>'
                                   % (phone.fid('Inbox'), sid['please answer'], mime))
        self.assertEqual((st, body), (200, b''))
        m = self.imap(addr)
        u = uid_by_subject(m, 'INBOX', 'please answer')[0]
        self.assertIn('\\Answered', fetch_flags(m, u))
        ch = tablet.pull('Inbox')['change']
        self.assertEqual(text(ch[tsid['please answer']], 'Email2:LastVerbExecuted'), '1')

    def test_pop3_deletion_reaches_imap_and_activesync(self):
        addr = self.mailbox('popdel')
        self.deliver(addr, 'pop keeps', 'pop deletes')
        eas, sid = self.eas_with(addr, ['pop keeps', 'pop deletes'])
        m = self.imap(addr)
        m.select('INBOX')
        po = self.s.pop3(addr)
        which = [i + 1 for i in range(po.stat()[0])
                 if b'Subject: pop deletes' in b'\r\n'.join(po.top(i + 1, 0)[1])]
        self.assertEqual(len(which), 1)
        po.dele(which[0])
        po.quit()                                  # UPDATE state: the deletion happens now
        self.assertEqual(untagged_expunges(m), [which[0]])
        self.assertEqual(uid_by_subject(m, 'INBOX', 'pop deletes'), [])
        res = eas.pull('Inbox')
        self.assertEqual(res['delete'], [sid['pop deletes']])
        self.assertFalse(res['add'] or res['change'])

    def test_activesync_changes_reach_imap(self):
        addr = self.mailbox('eflags')
        subjects = ['read me', 'flag me', 'tag me', 'trash me', 'purge me']
        self.deliver(addr, *subjects)
        eas, sid = self.eas_with(addr, subjects)
        m = self.imap(addr)
        m.enable('CONDSTORE')
        uid = {s: uid_by_subject(m, 'INBOX', s)[0] for s in subjects}
        m.select('INBOX', readonly=False)
        before = {s: modseq(m, u) for s, u in uid.items()}
        col = eas.change('Inbox', sid['read me'], read=1)
        self.assertIsNone(find(col, 'AirSync:Responses'), tostring(col))
        eas.change('Inbox', sid['flag me'], flagged=True)
        eas.change('Inbox', sid['tag me'], categories=['Blue Team', 'Work'])
        self.assertIn('\\Seen', fetch_flags(m, uid['read me']))
        self.assertIn('\\Flagged', fetch_flags(m, uid['flag me']))
        self.assertNotIn('\\Seen', fetch_flags(m, uid['flag me']))
        self.assertTrue({'Blue_Team', 'Work'} <= fetch_flags(m, uid['tag me']),
                        fetch_flags(m, uid['tag me']))
        for s in ('read me', 'flag me', 'tag me'):
            self.assertGreater(modseq(m, uid[s]), before[s], s)
        self.assertEqual(modseq(m, uid['trash me']), before['trash me'])
        # CONDSTORE: CHANGEDSINCE gives exactly the three
        typ, d = m.uid('FETCH', '1:*', '(FLAGS) (CHANGEDSINCE %d)' % max(before.values()))
        changed = sorted(int(re.search(rb'UID (\d+)', x).group(1)) for x in d if x)
        self.assertEqual(changed, sorted(uid[s] for s in ('read me', 'flag me', 'tag me')))
        # unflag and unread from the phone
        eas.change('Inbox', sid['read me'], read=0)
        eas.change('Inbox', sid['flag me'], flagged=False)
        self.assertNotIn('\\Seen', fetch_flags(m, uid['read me']))
        self.assertNotIn('\\Flagged', fetch_flags(m, uid['flag me']))
        # a Delete (as a move, the default) leaves the Inbox and lands in Trash
        seq = {s: i + 1 for i, s in enumerate(sorted(uid, key=uid.get))}
        eas.delete('Inbox', sid['trash me'])
        self.assertEqual(untagged_expunges(m), [seq['trash me']])
        self.assertEqual(uid_by_subject(m, 'INBOX', 'trash me'), [])
        self.assertEqual(len(uid_by_subject(m, 'Trash', 'trash me')), 1)
        # DeletesAsMoves 0: gone for good
        m.select('INBOX')
        eas.delete('Inbox', sid['purge me'], deletes_as_moves=False)
        self.assertEqual(len(untagged_expunges(m)), 1)
        self.assertEqual(uid_by_subject(m, 'INBOX', 'purge me'), [])
        self.assertEqual(uid_by_subject(m, 'Trash', 'purge me'), [])
        # the device is not told of its own changes
        res = eas.pull('Inbox')
        self.assertFalse(res['add'] or res['change'] or res['delete'], res)

    def test_phone_read_while_desktop_flags(self):
        """Regression: the phone marks read a message that IMAP flagged since the phone's
        last Sync. The Change used to be refused (Status 7, "server wins"), losing the
        Read; now both stay and the phone gets the merged state."""
        addr = self.mailbox('conflict')
        self.deliver(addr, 'both at once')
        eas, sid = self.eas_with(addr, ['both at once'])
        m = self.imap(addr)
        u = uid_by_subject(m, 'INBOX', 'both at once')[0]
        m.uid('STORE', str(u), '+FLAGS', '(\\Flagged)')
        col = eas.change('Inbox', sid['both at once'], read=1)     # not synced since
        self.assertIsNone(find(col, 'AirSync:Responses'), tostring(col))
        self.assertTrue({'\\Seen', '\\Flagged'} <= fetch_flags(m, u), fetch_flags(m, u))
        changes = findall(col, 'AirSync:Commands/AirSync:Change')
        if not changes:                                     # or in the next Sync
            changes = [x for x in eas.pull('Inbox')['change'].values()]
        else:
            changes = [find(x, 'AirSync:ApplicationData') for x in changes]
        self.assertEqual([(read_of(a), flag_status(a)) for a in changes], [('1', '2')])
        res = eas.pull('Inbox')
        self.assertFalse(res['add'] or res['change'] or res['delete'], res)

    def test_condstore_qresync_sessions_see_activesync(self):
        """A CONDSTORE session gets the phone's flag change with its MODSEQ unasked; a
        QRESYNC session gets the phone's delete as VANISHED (RFC 7162)."""
        addr = self.mailbox('qres')
        self.deliver(addr, 'cond one', 'cond two')
        eas, sid = self.eas_with(addr, ['cond one', 'cond two'])
        m = self.imap(addr)
        m.enable('CONDSTORE')
        m.select('INBOX')
        u1 = uid_by_subject(m, 'INBOX', 'cond one')[0]
        before = modseq(m, u1)
        q = self.imap(addr)
        typ, _ = q.enable('QRESYNC')
        self.assertEqual(typ, 'OK')
        q.select('INBOX')
        eas.change('Inbox', sid['cond one'], read=1)
        m.noop()
        fetches = [x for x in m.untagged_responses.pop('FETCH', []) if x]
        self.assertEqual(len(fetches), 1, fetches)
        mm = re.search(rb'MODSEQ \((\d+)\)', fetches[0])
        self.assertIsNotNone(mm, fetches)
        self.assertGreater(int(mm.group(1)), before)
        self.assertIn(b'\\Seen', fetches[0])
        eas.delete('Inbox', sid['cond two'])
        u2 = uid_by_subject(m, 'INBOX', 'cond two')
        self.assertEqual(u2, [])
        q.noop()
        self.assertEqual(q.untagged_responses.pop('EXPUNGE', []), [])
        vanished = q.untagged_responses.pop('VANISHED', [])
        self.assertEqual(len(vanished), 1, q.untagged_responses)

    def test_folders_both_ways(self):
        """Folders made, renamed and deleted in one protocol appear so in the other."""
        addr = self.mailbox('folders')
        eas = self.s.eas(addr, 'fdev')
        m = self.imap(addr)
        # ActiveSync FolderCreate -> IMAP LIST
        _, _, t = eas.c.post('FolderCreate', '<FolderCreate xmlns="FolderHierarchy:"><SyncKey>'
                             '1</SyncKey><ParentId>0</ParentId><DisplayName>From Phone'
                             '</DisplayName><Type>12</Type></FolderCreate>')
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1', tostring(t))
        key = text(t, 'FolderHierarchy:SyncKey')
        phone_id = text(t, 'FolderHierarchy:ServerId')
        typ, d = m.list('""', '"From Phone"')
        self.assertEqual(len([x for x in d if x]), 1, d)
        # IMAP CREATE / RENAME / DELETE -> FolderSync Add / Update / Delete
        m.create('"Desk One"')
        m.create('"Desk Two"')

        def fsync(k):
            _, _, t = eas.c.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>'
                                 '%s</SyncKey></FolderSync>' % k)
            self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
            ch = {}
            for kind in ('Add', 'Update', 'Delete'):
                for x in findall(t, 'FolderHierarchy:Changes/FolderHierarchy:' + kind):
                    ch.setdefault(kind, []).append((text(x, 'FolderHierarchy:ServerId'),
                                                    text(x, 'FolderHierarchy:DisplayName')))
            return text(t, 'FolderHierarchy:SyncKey'), ch
        key, ch = fsync(key)
        self.assertEqual(sorted(n for _, n in ch['Add']), ['Desk One', 'Desk Two'])
        ids = dict((n, i) for i, n in ch['Add'])
        m.rename('"Desk One"', '"Desk Renamed"')
        m.delete('"Desk Two"')
        key, ch = fsync(key)
        self.assertEqual(ch.get('Update'), [(ids['Desk One'], 'Desk Renamed')])
        self.assertEqual(ch.get('Delete'), [(ids['Desk Two'], None)])
        self.assertNotIn('Add', ch)
        # ActiveSync FolderUpdate / FolderDelete -> IMAP LIST
        _, _, t = eas.c.post('FolderUpdate', '<FolderUpdate xmlns="FolderHierarchy:"><SyncKey>'
                             '%s</SyncKey><ServerId>%s</ServerId><ParentId>0</ParentId>'
                             '<DisplayName>Phone Renamed</DisplayName></FolderUpdate>'
                             % (key, phone_id))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1', tostring(t))
        key = text(t, 'FolderHierarchy:SyncKey')
        _, _, t = eas.c.post('FolderDelete', '<FolderDelete xmlns="FolderHierarchy:"><SyncKey>'
                             '%s</SyncKey><ServerId>%s</ServerId></FolderDelete>'
                             % (key, ids['Desk One']))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1', tostring(t))
        typ, d = m.list('""', '*')
        names = b' '.join(x for x in d if x)
        self.assertIn(b'"Phone Renamed"', names)
        self.assertNotIn(b'From Phone', names)
        self.assertNotIn(b'Desk Renamed', names)

    def test_imap_move_is_a_move_in_activesync(self):
        addr = self.mailbox('imove')
        self.deliver(addr, 'move by imap', 'stays')
        m = self.imap(addr)
        m.create('Archive')
        eas, sid = self.eas_with(addr, ['move by imap'])
        self.assertEqual(eas.initial('Archive'), {})
        u = uid_by_subject(m, 'INBOX', 'move by imap')[0]
        m.uid('STORE', str(u), '+FLAGS', '(\\Flagged)')
        eas.pull('Inbox')
        typ, _ = m.uid('MOVE', str(u), 'Archive')
        self.assertEqual(typ, 'OK')
        res = eas.pull('Inbox')
        self.assertEqual(res['delete'], [sid['move by imap']])
        self.assertFalse(res['add'] or res['change'])
        adds = eas.pull('Archive')['add']
        self.assertEqual(len(adds), 1)
        (new_sid, a), = adds.items()
        # the same message: the item keeps its id, only the folder part changes
        self.assertEqual(new_sid, '%s:%s' % (eas.fid('Archive'), sid['move by imap'].split(':')[1]))
        self.assertEqual(text(a, 'Email:Subject'), 'move by imap')
        self.assertEqual(flag_status(a), '2')

    def test_imap_copy_and_deleted_flag(self):
        """COPY makes a new message (a new item), unlike MOVE; a \\Deleted flag without
        EXPUNGE is not carried: the phone keeps the message (docs/cross-protocol.md)."""
        addr = self.mailbox('copy')
        self.deliver(addr, 'copied', 'marked deleted')
        m = self.imap(addr)
        m.create('Copies')
        eas, sid = self.eas_with(addr, ['copied', 'marked deleted'])
        eas.initial('Copies')
        m.select('INBOX')
        m.uid('COPY', str(uid_by_subject(m, 'INBOX', 'copied')[0]), 'Copies')
        m.select('INBOX')
        m.uid('STORE', str(uid_by_subject(m, 'INBOX', 'marked deleted')[0]), '+FLAGS',
              '(\\Deleted)')
        res = eas.pull('Inbox')
        self.assertEqual(res['delete'], [])
        adds = eas.pull('Copies')['add']
        self.assertEqual(len(adds), 1)
        (new_sid, a), = adds.items()
        self.assertEqual(text(a, 'Email:Subject'), 'copied')
        self.assertNotEqual(new_sid.split(':')[1], sid['copied'].split(':')[1])
        m.select('INBOX')
        m.expunge()
        self.assertEqual(eas.pull('Inbox')['delete'], [sid['marked deleted']])

    def test_activesync_move_is_a_move_in_imap(self):
        addr = self.mailbox('emove')
        self.deliver(addr, 'move by phone', 'stays here')
        m = self.imap(addr)
        m.create('Projects')
        eas, sid = self.eas_with(addr, ['move by phone'])
        eas.initial('Projects')
        m.enable('CONDSTORE')
        u = uid_by_subject(m, 'INBOX', 'move by phone')[0]
        m.uid('STORE', str(u), '+FLAGS', '(\\Seen Work)')
        typ, d = m.uid('FETCH', str(u), '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
        msgid = d[0][1].strip()
        eas.pull('Inbox')
        m.select('INBOX')
        status, new_sid = eas.move(sid['move by phone'], 'Inbox', 'Projects')
        self.assertEqual(status, '3')
        self.assertEqual(new_sid, '%s:%s' % (eas.fid('Projects'),
                                             sid['move by phone'].split(':')[1]))
        # IMAP: an EXPUNGE in the selected Inbox, the message in Projects with its flags
        self.assertEqual(untagged_expunges(m), [1])
        self.assertEqual(uid_by_subject(m, 'INBOX', 'move by phone'), [])
        moved = uid_by_subject(m, 'Projects', 'move by phone')
        self.assertEqual(len(moved), 1)
        self.assertTrue({'\\Seen', 'Work'} <= fetch_flags(m, moved[0]))
        typ, d = m.uid('FETCH', str(moved[0]), '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
        self.assertEqual(d[0][1].strip(), msgid)
        # the device is not told again: no Delete in the Inbox, no Add in Projects
        res = eas.pull('Inbox')
        self.assertEqual(res['delete'], [])
        res = eas.pull('Projects')
        self.assertEqual(res['add'], {})
        # another device sees the move as Delete + Add of the same item
        other, osid = self.eas_with(addr, ['stays here'], device='dev2')
        self.assertNotIn('move by phone', osid)
        self.assertEqual(list(other.initial('Projects')), [new_sid])

    def test_sendmail_lands_in_sent_and_at_recipient(self):
        addr = self.mailbox('sender')
        eas = self.s.eas(addr, 'phone')
        eas.initial('Sent')
        mime = ('From: %s\r\nTo: bob@example.com\r\nSubject: sent from the phone\r\n'
                'Message-ID: <phone-1@example.com>\r\n\r\nHello Bob, from ActiveSync.\r\n'
                % addr)
        st, _, body = eas.c.post('SendMail', '<SendMail xmlns="ComposeMail:"><ClientId>c1'
                                 '</ClientId><SaveInSentItems/><Mime>%s</Mime></SendMail>'
                                 % mime.replace('<', '&lt;'))
        self.assertEqual((st, body), (200, b''))
        # Sent over IMAP: the message, marked read
        m = self.imap(addr)
        sent = uid_by_subject(m, 'Sent', 'sent from the phone')
        self.assertEqual(len(sent), 1)
        self.assertIn('\\Seen', fetch_flags(m, sent[0]))
        typ, d = m.uid('FETCH', str(sent[0]), '(BODY.PEEK[])')
        self.assertIn(b'Hello Bob, from ActiveSync.', d[0][1])
        # the recipient (a Basic mailbox) has it over IMAP and POP3
        mb = self.s.imap('bob@example.com')
        got = uid_by_subject(mb, 'INBOX', 'sent from the phone')
        self.assertEqual(len(got), 1)
        typ, d = mb.uid('FETCH', str(got[0]), '(BODY.PEEK[])')
        self.assertIn(b'Message-ID: <phone-1@example.com>', d[0][1])
        mb.logout()
        po = self.s.pop3('bob@example.com')
        self.assertTrue(any(b'sent from the phone' in b'\r\n'.join(po.top(i + 1, 0)[1])
                            for i in range(po.stat()[0])))
        po.quit()
        # and the device that sent it sees it in Sent
        adds = eas.pull('Sent')['add']
        self.assertEqual([text(a, 'Email:Subject') for a in adds.values()],
                         ['sent from the phone'])


if __name__ == '__main__':
    unittest.main(verbosity=2)
