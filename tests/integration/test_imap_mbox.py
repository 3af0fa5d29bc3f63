"""IMAP mailbox commands against the real binary: LIST (and LIST-EXTENDED, LIST-STATUS),
LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, STATUS, APPEND, GETQUOTA(ROOT), EXPUNGE, COPY and
MOVE. Driven by Python's imaplib (a client nobody here wrote), and raw sockets where imaplib
cannot say it (literals the server must refuse before reading them, exact response order)."""
import imaplib
import re
import socket
import unittest

from harness import Polaris

ALICE = ('alice@example.com', 'Alice-Pass1!')
BOB = ('bob@example.com', 'Bob-Pass1!')

MSG = (b'From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: hello\r\n'
       b'Message-ID: <m1@example.com>\r\n\r\nHello Alice.\r\n')


def msg(n):
    return (b'From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: msg %d\r\n'
            b'\r\nBody %d.\r\n' % (n, n))


LIST_RE = re.compile(rb'\((?P<attrs>[^)]*)\) "(?P<sep>.)" (?P<name>"[^"]*"|\S+)(?P<rest>.*)$')


def parse_list(lines):
    """imaplib LIST data → {name: (set of attributes, rest)}."""
    out = {}
    for line in lines:
        if line is None:
            continue
        if isinstance(line, tuple):  # a literal name
            line = line[0] + line[1]
        m = LIST_RE.match(line)
        assert m, line
        name = m.group('name').decode()
        if name.startswith('"'):
            name = name[1:-1]
        out[name] = (set(m.group('attrs').decode().split()), m.group('rest').decode().strip())
    return out


class Raw:
    """A line-level IMAP connection for what imaplib cannot express."""

    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.buf = b''
        self.line()  # greeting

    def close(self):
        self.s.close()

    def line(self):
        while b'\r\n' not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, tag, text):
        """Sends one command line, returns (untagged lines, tagged line)."""
        self.send(tag + b' ' + text + b'\r\n')
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + b' '):
                return lines, line
            lines.append(line)

    def login(self, who=ALICE):
        _, tagged = self.cmd(b'L', b'LOGIN %s "%s"' % (who[0].encode(), who[1].encode()))
        assert tagged.startswith(b'L OK'), tagged


class ImapMailboxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(listeners=('imap',),
                        extra_config='[auth]\nallow_plaintext = loopback\n')
        cls.p.__enter__()
        cls.p.add_demo()
        cls.p.cli_ok('user', 'add', 'carol@example.com', '--type', 'basic',
                     '--password', 'Carol-Pass1!')
        cls.p.cli_ok('user', 'add', 'dave@example.com', '--type', 'basic',
                     '--password', 'Dave-Pass1!')

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def imap(self, who=ALICE):
        c = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=30)
        self.addCleanup(self._close, c)
        c.login(*who)
        return c

    @staticmethod
    def _close(c):
        try:
            c.logout()
        except Exception:
            pass

    def raw(self, who=ALICE):
        r = Raw(self.p.ports['imap'])
        self.addCleanup(r.close)
        r.login(who)
        return r

    def ok(self, result):
        typ, data = result
        self.assertEqual(typ, 'OK', data)
        return data

    def status(self, c, box, items='(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)'):
        data = self.ok(c.status(box, items))
        m = re.search(rb'\((.*)\)', data[0])
        vals = m.group(1).split()
        return {vals[i].decode(): int(vals[i + 1]) for i in range(0, len(vals), 2)}

    # -- LIST ------------------------------------------------------------------------
    def test_list_new_account(self):
        c = self.imap(('dave@example.com', 'Dave-Pass1!'))
        boxes = parse_list(self.ok(c.list()))
        self.assertEqual(set(boxes), {'INBOX', 'Drafts', 'Sent', 'Junk', 'Trash', 'Archive'})
        want = {'INBOX': None, 'Drafts': '\\Drafts', 'Sent': '\\Sent', 'Junk': '\\Junk',
                'Trash': '\\Trash', 'Archive': '\\Archive'}
        specials = {'\\Drafts', '\\Sent', '\\Junk', '\\Trash', '\\Archive', '\\All',
                    '\\Flagged'}
        for name, attr in want.items():
            attrs = boxes[name][0]
            self.assertIn('\\HasNoChildren', attrs, name)
            self.assertEqual(attrs & specials, {attr} if attr else set(), name)
            self.assertNotIn('\\Noselect', attrs)
        # the root and the delimiter
        data = self.ok(c.list('""', '""'))
        self.assertEqual(data, [b'(\\Noselect) "." ""'])
        self.assertEqual(self.ok(c.list('Archive', '""')), [b'(\\Noselect) "." ""'])
        # other classes never show, even asked by name
        for name in ('Calendar', 'Contacts', 'Tasks', 'Notes'):
            self.assertEqual(self.ok(c.list('""', name)), [None])
            self.assertEqual(c.select(name)[0], 'NO')
            self.assertEqual(c.status(name, '(MESSAGES)')[0], 'NO')

    def test_list_wildcards(self):
        c = self.imap()
        for name in ('W1', 'W1.A', 'W1.A.B', 'W1.C'):
            self.ok(c.create(name))
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'W1.%')))), {'W1.A', 'W1.C'})
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'W1.*')))),
                         {'W1.A', 'W1.A.B', 'W1.C'})
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'W1*')))),
                         {'W1', 'W1.A', 'W1.A.B', 'W1.C'})
        self.assertEqual(set(parse_list(self.ok(c.list('W1.', '%')))), {'W1.A', 'W1.C'})
        self.assertEqual(set(parse_list(self.ok(c.list('""', '%.A.%')))), {'W1.A.B'})
        boxes = parse_list(self.ok(c.list('""', 'W1*')))
        self.assertIn('\\HasChildren', boxes['W1'][0])
        self.assertIn('\\HasChildren', boxes['W1.A'][0])
        self.assertIn('\\HasNoChildren', boxes['W1.A.B'][0])
        # INBOX matches without regard to case; top-level '%' excludes children
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'inbox')))), {'INBOX'})
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'InBo%')))), {'INBOX'})
        top = set(parse_list(self.ok(c.list('""', '%'))))
        self.assertIn('W1', top)
        self.assertNotIn('W1.A', top)
        # a pathological pattern is answered quickly
        self.assertEqual(self.ok(c.list('""', '*%' * 200 + 'zzqq')), [None])

    def test_list_extended_and_status(self):
        c = self.imap()
        self.ok(c.create('X1.Sub'))
        self.ok(c.unsubscribe('X1'))
        self.ok(c.append('X1.Sub', None, None, MSG))
        # special-use selection
        typ, data = c._simple_command('LIST', '(SPECIAL-USE)', '""', '*')
        self.assertEqual(typ, 'OK')
        boxes = parse_list(c._untagged_response(typ, data, 'LIST')[1])
        self.assertEqual(set(boxes), {'Drafts', 'Sent', 'Junk', 'Trash', 'Archive'})
        # subscribed selection with RECURSIVEMATCH: X1 is not subscribed, its child is
        typ, data = c._simple_command('LIST', '(SUBSCRIBED RECURSIVEMATCH)', '""', '%')
        boxes = parse_list(c._untagged_response(typ, data, 'LIST')[1])
        self.assertIn('X1', boxes)
        self.assertNotIn('\\Subscribed', boxes['X1'][0])
        self.assertIn('CHILDINFO', boxes['X1'][1])
        self.assertIn('\\Subscribed', boxes['INBOX'][0])
        typ, data = c._simple_command('LIST', '(SUBSCRIBED)', '""', '*')
        boxes = parse_list(c._untagged_response(typ, data, 'LIST')[1])
        self.assertNotIn('X1', boxes)
        self.assertIn('X1.Sub', boxes)
        # several patterns, return options, LIST-STATUS
        typ, data = c._simple_command('LIST', '""', '(INBOX X1.*)', 'RETURN',
                                      '(SUBSCRIBED CHILDREN STATUS (MESSAGES UIDNEXT SIZE))')
        self.assertEqual(typ, 'OK')
        boxes = parse_list(c._untagged_response(typ, data, 'LIST')[1])
        self.assertEqual(set(boxes), {'INBOX', 'X1.Sub'})
        self.assertIn('\\Subscribed', boxes['X1.Sub'][0])
        st = c._untagged_response(typ, data, 'STATUS')[1]
        st = b' '.join(x for x in st if x)
        self.assertIn(b'X1.Sub (MESSAGES 1 UIDNEXT 2 SIZE %d)' % len(MSG), st)
        # unknown options are errors
        self.assertRaises(imaplib.IMAP4.error, c._simple_command, 'LIST', '(BOGUS)', '""', '*')
        self.assertRaises(imaplib.IMAP4.error, c._simple_command, 'LIST', '(RECURSIVEMATCH)',
                          '""', '*')

    def test_list_status_order(self):
        """LIST-STATUS: each STATUS follows its LIST line (RFC 5819)."""
        r = self.raw()
        lines, tagged = r.cmd(b'A', b'LIST "" "Sent" RETURN (STATUS (MESSAGES UNSEEN))')
        self.assertTrue(tagged.startswith(b'A OK'), tagged)
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith(b'* LIST (') and lines[0].endswith(b' Sent'))
        self.assertEqual(lines[1], b'* STATUS Sent (MESSAGES 0 UNSEEN 0)')

    # -- CREATE / DELETE / RENAME ----------------------------------------------------
    def test_create_nested_and_bad_names(self):
        c = self.imap()
        self.ok(c.create('Archive.Inbox.2023'))
        boxes = parse_list(self.ok(c.list('Archive', '*')))
        self.assertEqual(set(boxes), {'Archive', 'Archive.Inbox', 'Archive.Inbox.2023'})
        self.assertIn('\\Archive', boxes['Archive'][0])
        self.assertNotIn('\\Archive', boxes['Archive.Inbox'][0])
        typ, data = c.create('Archive.Inbox.2023')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[ALREADYEXISTS]', data[0])
        typ, data = c.create('INBOX')
        self.assertEqual(typ, 'NO')
        self.assertEqual(c.create('inbox')[0], 'NO')
        # a trailing separator is dropped; children of INBOX are fine
        self.ok(c.create('Trailing.'))
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'Trailing*')))), {'Trailing'})
        self.ok(c.create('inbox.Child'))
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'INBOX.*')))), {'INBOX.Child'})
        for bad in ('A..B', '.Lead', 'Wild*', 'Pct%', '"' + 'x' * 256 + '"'):
            typ, data = c.create(bad)
            self.assertEqual(typ, 'NO', bad)
            self.assertIn(b'[CANNOT]', data[0], bad)
        self.assertEqual(c.create('"' + 'y' * 255 + '"')[0], 'OK')
        # not over a folder of another class
        typ, data = c.create('Calendar')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[CANNOT]', data[0])
        # mUTF-7 names round-trip
        self.ok(c.create('&AMk-t&AOk-'))  # "Été"
        self.assertEqual(set(parse_list(self.ok(c.list('""', '&AMk-*')))), {'&AMk-t&AOk-'})

    def test_utf8_accept_names(self):
        """Under UTF8=ACCEPT names travel as UTF-8; other sessions see modified UTF-7."""
        r = self.raw()
        _, t = r.cmd(b'E', b'ENABLE UTF8=ACCEPT')
        self.assertTrue(t.startswith(b'E OK'), t)
        _, t = r.cmd(b'C', 'CREATE "Zürich.Straße"'.encode())
        self.assertTrue(t.startswith(b'C OK'), t)
        lines, _ = r.cmd(b'L', 'LIST "" "Zürich*"'.encode())
        self.assertEqual(lines, ['* LIST (\\HasChildren) "." "Zürich"'.encode(),
                                 '* LIST (\\HasNoChildren) "." "Zürich.Straße"'.encode()])
        c = self.imap()
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'Z&APw-rich.*')))),
                         {'Z&APw-rich.Stra&AN8-e'})

    def test_create_special_use_raw(self):
        r = self.raw()
        _, t = r.cmd(b'C1', b'CREATE MySent (USE (\\Sent))')
        self.assertTrue(t.startswith(b'C1 NO [USEATTR]'), t)
        _, t = r.cmd(b'C2', b'CREATE MyAll (USE (\\All))')
        self.assertTrue(t.startswith(b'C2 NO [USEATTR]'), t)
        _, t = r.cmd(b'C3', b'CREATE MyPlain (USE ())')
        self.assertTrue(t.startswith(b'C3 OK'), t)
        _, t = r.cmd(b'C4', b'CREATE "My Bad" (FOO)')
        self.assertTrue(t.startswith(b'C4 BAD'), t)

    def test_delete(self):
        c = self.imap()
        self.ok(c.create('D1.Child'))
        typ, data = c.delete('D1')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[HASCHILDREN]', data[0])
        self.ok(c.delete('D1.Child'))
        self.ok(c.delete('D1'))
        self.assertEqual(self.ok(c.list('""', 'D1*')), [None])
        for name in ('INBOX', 'Sent', 'Trash', 'Archive'):
            typ, data = c.delete(name)
            self.assertEqual(typ, 'NO', name)
            self.assertIn(b'[CANNOT]', data[0])
        typ, data = c.delete('NoSuchBox')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[NONEXISTENT]', data[0])
        typ, data = c.delete('Calendar')  # not a mail folder: invisible here
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[NONEXISTENT]', data[0])

    def test_delete_selected_mailbox(self):
        c = self.imap()
        self.ok(c.create('DSel'))
        self.ok(c.select('DSel'))
        r = self.raw()
        _, t = r.cmd(b'S', b'SELECT DSel')
        self.assertTrue(t.startswith(b'S OK'), t)
        lines, t = r.cmd(b'D', b'DELETE DSel')
        self.assertTrue(t.startswith(b'D OK'), t)
        self.assertTrue(r.line().startswith(b'* BYE'))

    def test_rename(self):
        c = self.imap()
        self.ok(c.create('R1.Kid'))
        self.ok(c.append('R1', None, None, MSG))
        self.ok(c.rename('R1', 'Moved.Deeper.R2'))
        names = set(parse_list(self.ok(c.list('""', '*'))))
        self.assertTrue({'Moved', 'Moved.Deeper', 'Moved.Deeper.R2',
                         'Moved.Deeper.R2.Kid'} <= names)
        self.assertNotIn('R1', names)
        self.assertEqual(self.status(c, 'Moved.Deeper.R2')['MESSAGES'], 1)
        typ, data = c.rename('NoSuch', 'Other')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[NONEXISTENT]', data[0])
        self.ok(c.create('R3'))
        typ, data = c.rename('R3', 'Moved')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[ALREADYEXISTS]', data[0])
        self.assertEqual(c.rename('R3', 'INBOX')[0], 'NO')
        # into itself: refused, and the parent it needed (R3.X) is not left behind
        self.assertEqual(c.rename('R3', 'R3.X.Y')[0], 'NO')
        self.assertEqual(set(parse_list(self.ok(c.list('""', 'R3*')))), {'R3'})
        # a special-use folder keeps its role under a new name
        self.ok(c.rename('Junk', 'Spam'))
        boxes = parse_list(self.ok(c.list('""', 'Spam')))
        self.assertIn('\\Junk', boxes['Spam'][0])
        self.ok(c.rename('Spam', 'Junk'))

    def test_rename_inbox(self):
        c = self.imap(('carol@example.com', 'Carol-Pass1!'))
        for i in range(3):
            self.ok(c.append('INBOX', None, None, msg(i)))
        self.ok(c.create('INBOX.Kept'))
        self.ok(c.rename('INBOX', 'Old-Inbox'))
        self.assertEqual(self.status(c, 'INBOX')['MESSAGES'], 0)
        self.assertEqual(self.status(c, 'Old-Inbox')['MESSAGES'], 3)
        names = set(parse_list(self.ok(c.list('""', '*'))))
        self.assertTrue({'INBOX', 'INBOX.Kept', 'Old-Inbox'} <= names)
        # and INBOX still takes mail
        self.ok(c.append('INBOX', None, None, MSG))
        self.assertEqual(self.status(c, 'INBOX')['MESSAGES'], 1)

    # -- SUBSCRIBE / LSUB ------------------------------------------------------------
    def test_subscribe_lsub(self):
        c = self.imap()
        self.ok(c.create('S1.S2'))
        self.assertIn('S1', set(parse_list(self.ok(c.lsub('""', 'S1*')))))
        self.ok(c.unsubscribe('S1'))
        self.assertEqual(set(parse_list(self.ok(c.lsub('""', 'S1*')))), {'S1.S2'})
        # '%' stops at S1: it comes back \Noselect so the client can descend
        boxes = parse_list(self.ok(c.lsub('""', 'S%')))
        self.assertIn('S1', boxes)
        self.assertIn('\\Noselect', boxes['S1'][0])
        self.ok(c.subscribe('S1'))
        boxes = parse_list(self.ok(c.lsub('""', 'S1')))
        self.assertNotIn('\\Noselect', boxes['S1'][0])
        self.assertEqual(c.subscribe('Nope')[0], 'NO')
        self.ok(c.unsubscribe('S1.S2'))
        typ, data = c._simple_command('LIST', '""', 'S1*', 'RETURN', '(SUBSCRIBED)')
        boxes = parse_list(c._untagged_response(typ, data, 'LIST')[1])
        self.assertIn('\\Subscribed', boxes['S1'][0])
        self.assertNotIn('\\Subscribed', boxes['S1.S2'][0])

    # -- STATUS ------------------------------------------------------------------------
    def test_status_all_items(self):
        c = self.imap()
        self.ok(c.create('St'))
        self.ok(c.append('St', '(\\Seen)', None, msg(1)))
        self.ok(c.append('St', '(\\Deleted)', None, msg(2)))
        self.ok(c.append('St', None, None, msg(3)))
        st = self.status(c, 'St', '(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE '
                                  'HIGHESTMODSEQ APPENDLIMIT DELETED)')
        self.assertEqual(st['MESSAGES'], 3)
        self.assertEqual(st['RECENT'], 0)
        self.assertEqual(st['UIDNEXT'], 4)
        self.assertGreater(st['UIDVALIDITY'], 0)
        self.assertEqual(st['UNSEEN'], 2)
        self.assertEqual(st['SIZE'], len(msg(1)) + len(msg(2)) + len(msg(3)))
        self.assertGreater(st['HIGHESTMODSEQ'], 1)
        self.assertEqual(st['APPENDLIMIT'], 64 * 1024 * 1024)
        self.assertEqual(st['DELETED'], 1)
        # it matches SELECT
        typ, data = c.select('St')
        self.assertEqual(int(data[0]), 3)
        self.assertEqual(c.untagged_responses['UIDVALIDITY'][0], b'%d' % st['UIDVALIDITY'])
        self.assertEqual(c.status('NoSuch', '(MESSAGES)')[0], 'NO')
        self.assertRaises(imaplib.IMAP4.error, c.status, 'St', '(BOGUS)')
        self.assertRaises(imaplib.IMAP4.error, c.status, 'St', '()')

    # -- APPEND ------------------------------------------------------------------------
    def test_append_flags_date_appenduid(self):
        c = self.imap()
        self.ok(c.create('Ap'))
        before = self.status(c, 'Ap')
        typ, data = c.append('Ap', '(\\Seen \\Flagged $Work)', '"17-Jul-1996 02:44:25 -0700"',
                             MSG)
        self.assertEqual(typ, 'OK')
        m = re.search(rb'\[APPENDUID (\d+) (\d+)\]', data[0])
        self.assertTrue(m, data)
        self.assertEqual(int(m.group(1)), before['UIDVALIDITY'])
        self.assertEqual(int(m.group(2)), before['UIDNEXT'])
        self.ok(c.append('Ap', None, None, msg(7)))
        after = self.status(c, 'Ap')
        self.assertEqual(after['MESSAGES'], 2)
        self.assertEqual(after['UNSEEN'], 1)  # the first was \Seen
        self.assertEqual(after['UIDNEXT'], before['UIDNEXT'] + 2)
        typ, data = c.select('Ap')
        self.assertEqual(data, [b'2'])
        # bad date, bad flag
        self.assertRaises(imaplib.IMAP4.error, c.append, 'Ap', None, '"32-Foo-1996 1:2:3 x"',
                          MSG)
        self.assertRaises(imaplib.IMAP4.error, c.append, 'Ap', '(\\Recent)', None, MSG)

    def test_append_to_selected_sends_exists_first(self):
        r = self.raw()
        r.cmd(b'C', b'CREATE ApSel')
        _, t = r.cmd(b'S', b'SELECT ApSel')
        self.assertTrue(t.startswith(b'S OK'), t)
        r.send(b'A APPEND ApSel {%d}\r\n' % len(MSG))
        self.assertTrue(r.line().startswith(b'+'))
        r.send(MSG + b'\r\n')
        lines, t = r.until(b'A')
        self.assertIn(b'* 1 EXISTS', lines)
        self.assertTrue(t.startswith(b'A OK [APPENDUID '), t)

    def test_append_trycreate(self):
        c = self.imap()
        typ, data = c.append('Missing.Box', None, None, MSG)
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[TRYCREATE]', data[0])

    def test_append_toobig_not_read(self):
        """A 70 MB synchronizing literal is refused before the client is told to send it."""
        r = self.raw()
        r.send(b'A APPEND INBOX {%d}\r\n' % (70 * 1024 * 1024))
        line = r.line()
        self.assertTrue(line.startswith(b'A NO [TOOBIG]'), line)
        # the session goes on
        _, t = r.cmd(b'B', b'NOOP')
        self.assertTrue(t.startswith(b'B OK'), t)

    def test_append_literal8_and_utf8(self):
        r = self.raw()
        r.send(b'A APPEND INBOX ~{%d+}\r\n' % len(MSG) + MSG + b'\r\n')
        _, t = r.until(b'A')
        self.assertTrue(t.startswith(b'A OK [APPENDUID'), t)
        r.send(b'B APPEND INBOX UTF8 (~{%d+}\r\n' % len(MSG) + MSG + b')\r\n')
        _, t = r.until(b'B')
        self.assertTrue(t.startswith(b'B OK [APPENDUID'), t)
        r.send(b'C APPEND INBOX {0+}\r\n\r\n')
        _, t = r.until(b'C')
        self.assertTrue(t.startswith(b'C NO'), t)

    def test_append_overquota(self):
        """bob gets the minimum quota (0.1 GB); one 33 MB message copied twice fills it
        without sending 100 MB (copies share the stored body), then an APPEND and a COPY
        are refused with OVERQUOTA."""
        self.p.cli_ok('user', 'set', 'bob@example.com', '--quota', '0.1G')
        c = self.imap(BOB)
        big = (b'From: a@example.com\r\nSubject: big\r\n\r\n' +
               (b'x' * 998 + b'\r\n') * 33000)
        self.ok(c.append('INBOX', None, None, big))
        self.ok(c.select('INBOX'))
        self.ok(c.copy('1', 'INBOX'))
        self.ok(c.copy('1', 'INBOX'))
        typ, data = c.append('INBOX', None, None, b'Subject: small\r\n\r\n' + b'y' * 2000000)
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[OVERQUOTA]', data[0])
        typ, data = c.copy('1', 'Trash')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[OVERQUOTA]', data[0])
        self.assertEqual(self.status(c, 'Trash')['MESSAGES'], 0)
        # the quota as GETQUOTAROOT reports it
        typ, data = c.getquotaroot('INBOX')
        self.assertEqual(typ, 'OK')
        quota = data[1][0]
        m = re.match(rb'"" \(STORAGE (\d+) (\d+)\)', quota)
        self.assertTrue(m, quota)
        self.assertEqual(int(m.group(2)), 100000000 // 1024)
        self.assertGreater(int(m.group(1)), 3 * 33000 * 1000 // 1024)

    # -- QUOTA -------------------------------------------------------------------------
    def test_getquotaroot(self):
        c = self.imap()
        typ, data = c.getquotaroot('INBOX')
        self.assertEqual(typ, 'OK')
        self.assertEqual(data[0], [b'INBOX ""'])
        self.assertRegex(data[1][0], rb'^"" \(STORAGE \d+ \d+\)$')
        typ, data = c.getquota('""')
        self.assertEqual(typ, 'OK')
        self.assertRegex(data[0], rb'^"" \(STORAGE \d+ 976562\)$')  # the default 1 GB
        self.assertEqual(c.getquota('"other"')[0], 'NO')
        self.assertEqual(c.getquotaroot('NoSuch')[0], 'NO')

    # -- EXPUNGE / COPY / MOVE -------------------------------------------------------
    def fill(self, c, box, n):
        self.ok(c.create(box))
        for i in range(n):
            self.ok(c.append(box, None, None, msg(i)))

    def test_expunge(self):
        c = self.imap()
        self.ok(c.create('Ex'))
        for i in range(5):  # 2 and 4 arrive \Deleted (STORE is not needed for that)
            self.ok(c.append('Ex', '(\\Deleted)' if i in (1, 3) else None, None, msg(i)))
        self.ok(c.select('Ex'))
        typ, data = c.expunge()
        self.assertEqual(typ, 'OK')
        self.assertEqual(data, [b'4', b'2'])  # highest first, each still valid when sent
        self.assertEqual(self.status(c, 'Ex')['MESSAGES'], 3)
        # UID EXPUNGE: only the given UIDs (the view is now UIDs 1 3 5 6 7)
        for i in (6, 7):
            self.ok(c.append('Ex', '(\\Deleted)', None, msg(i)))
        typ, data = c.uid('EXPUNGE', '6')
        self.assertEqual(typ, 'OK')
        self.assertEqual(c.untagged_responses.pop('EXPUNGE', None), [b'4'])
        self.assertEqual(self.status(c, 'Ex', '(MESSAGES DELETED)'),
                         {'MESSAGES': 4, 'DELETED': 1})
        # read-only
        self.ok(c.select('Ex', readonly=True))
        self.assertEqual(c.expunge()[0], 'NO')

    def test_expunge_raw_order(self):
        r = self.raw()
        r.cmd(b'C', b'CREATE ExR')
        for i in range(3):
            flags = b'(\\Deleted) ' if i < 2 else b''
            r.send(b'A%d APPEND ExR %s{%d+}\r\n' % (i, flags, len(msg(i))) + msg(i) + b'\r\n')
            r.until(b'A%d' % i)
        r.cmd(b'S', b'SELECT ExR')
        lines, t = r.cmd(b'E', b'EXPUNGE')
        self.assertEqual(lines, [b'* 2 EXPUNGE', b'* 1 EXPUNGE'])
        self.assertTrue(t.startswith(b'E OK'), t)
        r.cmd(b'Q', b'ENABLE QRESYNC')
        r.send(b'A APPEND ExR (\\Deleted) {%d+}\r\n' % len(msg(9)) + msg(9) + b'\r\n')
        lines, t = r.until(b'A')
        self.assertEqual(lines, [b'* 2 EXISTS'])
        lines, t = r.cmd(b'U', b'UID EXPUNGE 1:*')
        self.assertEqual(lines, [b'* VANISHED 4'])
        self.assertTrue(t.startswith(b'U OK [HIGHESTMODSEQ '), t)

    def test_copy(self):
        c = self.imap()
        self.fill(c, 'CpSrc', 4)
        self.ok(c.create('CpDst'))
        dst = self.status(c, 'CpDst')
        self.ok(c.select('CpSrc'))
        typ, data = c.copy('2:4', 'CpDst')
        self.assertEqual(typ, 'OK')
        self.assertIn(b'[COPYUID %d 2:4 1:3]' % dst['UIDVALIDITY'], data[0])
        c.untagged_responses.pop('COPYUID', None)
        # imaplib keeps the tagged response's code among the untagged ones
        typ, data = c.uid('COPY', '1,3', 'CpDst')
        self.assertEqual(typ, 'OK')
        self.assertEqual(c.untagged_responses.pop('COPYUID'), [b'%d 1,3 4:5' % dst['UIDVALIDITY']])
        self.assertEqual(self.status(c, 'CpDst')['MESSAGES'], 5)
        self.assertEqual(self.status(c, 'CpSrc')['MESSAGES'], 4)
        typ, data = c.copy('1', 'NotThere')
        self.assertEqual(typ, 'NO')
        self.assertIn(b'[TRYCREATE]', data[0])
        typ, data = c.uid('COPY', '100:200', 'CpDst')
        self.assertEqual(typ, 'OK')
        self.assertNotIn('COPYUID', c.untagged_responses)
        self.assertRaises(imaplib.IMAP4.error, c.copy, '9', 'CpDst')

    def test_move(self):
        r = self.raw()
        r.cmd(b'C1', b'CREATE MvSrc')
        r.cmd(b'C2', b'CREATE MvDst')
        bodies = [msg(100 + i) for i in range(4)]
        for i, b in enumerate(bodies):
            r.send(b'A%d APPEND MvSrc {%d+}\r\n' % (i, len(b)) + b + b'\r\n')
            r.until(b'A%d' % i)
        lines, _ = r.cmd(b'T', b'STATUS MvDst (UIDVALIDITY)')
        uv = int(re.search(rb'UIDVALIDITY (\d+)', lines[0]).group(1))
        r.cmd(b'S', b'SELECT MvSrc')
        lines, _ = r.cmd(b'F', b'UID FETCH 2:4 (EMAILID)')
        ids = re.findall(rb'EMAILID \(([^)\s]+)\)', b' '.join(lines))
        self.assertEqual(len(ids), 3, lines)
        lines, t = r.cmd(b'M', b'MOVE 2:3 MvDst')
        self.assertEqual(lines, [b'* OK [COPYUID %d 2:3 1:2] Moved' % uv,
                                 b'* 3 EXPUNGE', b'* 2 EXPUNGE'])
        self.assertTrue(t.startswith(b'M OK'), t)
        lines, t = r.cmd(b'U', b'UID MOVE 4 MvDst')
        self.assertEqual(lines, [b'* OK [COPYUID %d 4 3] Moved' % uv, b'* 2 EXPUNGE'])
        _, t = r.cmd(b'N', b'MOVE 1 Nowhere')
        self.assertTrue(t.startswith(b'N NO [TRYCREATE]'), t)
        # MOVE keeps the content: the moved messages are byte for byte the same
        c = self.imap()
        self.assertEqual(self.status(c, 'MvSrc')['MESSAGES'], 1)
        self.assertEqual(self.status(c, 'MvDst')['MESSAGES'], 3)
        self.assertEqual(self.status(c, 'MvDst', '(SIZE)')['SIZE'],
                         sum(len(b) for b in bodies[1:]))
        self.ok(c.select('MvDst', readonly=True))
        data = self.ok(c.uid('FETCH', '1:*', '(EMAILID BODY.PEEK[])'))
        got = [d for d in data if isinstance(d, tuple)]
        self.assertEqual([d[1] for d in got], bodies[1:])
        # and the same messages: the item ids (EMAILID, RFC 8474) survived the move
        self.assertEqual([re.search(rb'EMAILID \(([^)\s]+)\)', d[0]).group(1) for d in got], ids)

    def test_move_readonly_and_same_mailbox(self):
        c = self.imap()
        self.fill(c, 'MvRo', 2)
        r = self.raw()
        r.cmd(b'E', b'EXAMINE MvRo')
        _, t = r.cmd(b'M', b'MOVE 1 INBOX')
        self.assertTrue(t.startswith(b'M NO'), t)
        r.cmd(b'S', b'SELECT MvRo')
        lines, t = r.cmd(b'M2', b'MOVE 1 MvRo')
        self.assertTrue(t.startswith(b'M2 OK'), t)
        self.assertIn(b'* 1 EXPUNGE', lines)
        self.assertEqual(self.status(c, 'MvRo')['MESSAGES'], 2)


if __name__ == '__main__':
    unittest.main()
