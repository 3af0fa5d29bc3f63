"""IMAP message commands (FETCH, STORE, SEARCH, SORT, THREAD) against the real binary,
driven by Python's imaplib (a client nobody here wrote) and raw sockets for what imaplib
cannot express (ESEARCH, literal8, CONDSTORE modifiers, hostile input)."""
import base64
import imaplib
import os
import re
import socket
import unittest

from harness import Polaris

ALICE = ('alice@example.com', 'Alice-Pass1!')
BOB = ('bob@example.com', 'Bob-Pass1!')

SUBJ3 = 'Grüße aus München'
SUBJ3_ENC = '=?UTF-8?B?%s?=' % base64.b64encode(SUBJ3.encode()).decode()

M1 = ('From: Bob <bob@example.com>\r\nTo: Alice <alice@example.com>\r\n'
      'Subject: Hello world\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n'
      'Message-ID: <m1@example.com>\r\n\r\nFirst message body.\r\n')
M2 = ('From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: Report\r\n'
      'Date: Tue, 2 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m2@example.org>\r\n'
      'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
      'preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n'
      '--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPlain report text.\r\n'
      '--inner\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>HTML report</p>\r\n'
      '--inner--\r\n--outer\r\nContent-Type: application/octet-stream; name="data.bin"\r\n'
      'Content-Disposition: attachment; filename="data.bin"\r\n'
      'Content-Transfer-Encoding: base64\r\n\r\nAAECAwRoZWxsbwD/\r\n'
      '--outer\r\nContent-Type: message/rfc822\r\n\r\n'
      'From: Eve <eve@example.net>\r\nSubject: Inner message\r\n'
      'Date: Sun, 31 Dec 2023 09:00:00 +0000\r\n\r\nInner body line.\r\n--outer--\r\n')
M3 = ('From: Dave <dave@example.com>\r\nTo: alice@example.com\r\nSubject: %s\r\n'
      'Date: Wed, 3 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m3@example.com>\r\n'
      'X-Tag: =?ISO-8859-1?Q?caf=E9_cr=E8me?=\r\nMIME-Version: 1.0\r\n'
      'Content-Type: text/plain; charset=iso-8859-1\r\n'
      'Content-Transfer-Encoding: quoted-printable\r\n\r\n'
      'Sch=F6ne Gr=FC=DFe vom Oktoberfest.\r\n' % SUBJ3_ENC)
M4 = ('From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Re: Hello world\r\n'
      'Date: Thu, 4 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m4@example.com>\r\n'
      'In-Reply-To: <m1@example.com>\r\nReferences: <m1@example.com>\r\n\r\nA reply.\r\n')
M5 = ('From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: Other topic\r\n'
      'Date: Fri, 5 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m5@example.org>\r\n\r\n'
      'Something else entirely, quite a bit longer than the others to make it bigger.\r\n')
M6 = ('From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: RE: Hello world\r\n'
      'Date: Sat, 6 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m6@example.com>\r\n'
      'In-Reply-To: <m4@example.com>\r\nReferences: <m1@example.com> <m4@example.com>\r\n\r\n'
      'Reply to the reply.\r\n')
CORPUS = [M1, M2, M3, M4, M5, M6]


class Raw:
    """A minimal IMAP client: commands as lines, responses with literals inlined."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.f = self.sock.makefile('rb')
        self.n = 0
        self.greeting = self.read()

    def close(self):
        self.f.close()
        self.sock.close()

    def read(self):
        out = b''
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError('connection closed')
            out += line
            m = re.search(rb'~?\{(\d+)\}\r\n$', line)
            if not m:
                return out
            out += self.f.read(int(m.group(1)))

    def cmd(self, text, lit=None):
        """Sends one command (lit: bytes sent as a {n+} literal at the end) and returns
        (tagged line, [untagged responses])."""
        self.n += 1
        tag = b'T%d' % self.n
        data = tag + b' ' + (text.encode() if isinstance(text, str) else text)
        if lit is not None:
            data += b' {%d+}\r\n' % len(lit) + lit
        self.sock.sendall(data + b'\r\n')
        untagged = []
        while True:
            r = self.read()
            if r.startswith(tag + b' '):
                return r, untagged
            untagged.append(r)

    def ok(self, text, lit=None):
        tagged, untagged = self.cmd(text, lit)
        assert tagged.split()[1] == b'OK', (text, tagged)
        return tagged, untagged

    def tag(self):
        """The tag of the last command, as ESEARCH quotes it."""
        return b'"T%d"' % self.n


class ImapMsgTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(listeners=('imap',),
                        extra_config='[auth]\nallow_plaintext = loopback\n')
        cls.p.__enter__()
        cls.p.add_demo()
        for addr in (ALICE[0], BOB[0]):
            for m in CORPUS:
                cls.p.cli_ok('mail', 'append', addr, input=m)

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def imap(self, who=ALICE, select='INBOX', readonly=False):
        c = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
        self.addCleanup(self._close, c)
        c.login(*who)
        if select:
            typ, _ = c.select(select, readonly=readonly)
            self.assertEqual(typ, 'OK')
        return c

    @staticmethod
    def _close(c):
        try:
            c.logout()
        except Exception:
            pass

    def raw(self, who=ALICE, select='INBOX'):
        r = Raw(self.p.ports['imap'])
        self.addCleanup(r.close)
        r.ok('LOGIN %s "%s"' % who)
        if select:
            r.ok('SELECT %s' % select)
        return r

    def fetch1(self, c, num, items):
        typ, data = c.fetch(str(num), items)
        self.assertEqual(typ, 'OK', data)
        return data

    def literal_of(self, data):
        """The bytes of the first literal in an imaplib FETCH answer."""
        for d in data:
            if isinstance(d, tuple):
                return d[1]
        self.fail('no literal in %r' % (data,))

    # -- FETCH -----------------------------------------------------------------------------
    def test_fetch_simple_items(self):
        c = self.imap(readonly=True)
        data = self.fetch1(c, 1, '(FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE BODY)')
        line = data[0].decode()
        self.assertRegex(line, r'^1 \(FLAGS \(\) UID 1 INTERNALDATE "\d\d?-\w{3}-\d{4} ')
        self.assertIn('RFC822.SIZE %d' % len(M1.encode()), line)
        self.assertIn('"Hello world"', line)
        self.assertIn('"<m1@example.com>"', line)
        self.assertIn('BODY ("TEXT" "PLAIN"', line.upper())

    def test_fetch_size_equals_body(self):
        c = self.imap(readonly=True)
        for n in range(1, 7):
            data = self.fetch1(c, n, '(RFC822.SIZE BODY.PEEK[])')
            size = int(re.search(rb'RFC822\.SIZE (\d+)', data[0][0]).group(1))
            body = self.literal_of(data)
            self.assertEqual(size, len(body))
            self.assertEqual(body, CORPUS[n - 1].encode())

    def test_bodystructure_multipart(self):
        c = self.imap(readonly=True)
        data = self.fetch1(c, 2, '(BODYSTRUCTURE)')
        bs = b''.join(d if isinstance(d, bytes) else d[0] + d[1] for d in data).decode().upper()
        self.assertIn('"ALTERNATIVE"', bs)
        self.assertIn('"MIXED"', bs)
        self.assertIn('"APPLICATION" "OCTET-STREAM"', bs)
        self.assertIn('"DATA.BIN"', bs)
        self.assertIn('"MESSAGE" "RFC822"', bs)
        self.assertIn('"INNER MESSAGE"', bs)  # the envelope of the attached message
        self.assertEqual(bs.count('('), bs.count(')'))

    def test_fetch_sections(self):
        c = self.imap(readonly=True)
        self.assertEqual(self.literal_of(self.fetch1(c, 2, '(BODY.PEEK[1.2])')),
                         b'<p>HTML report</p>')
        self.assertEqual(self.literal_of(self.fetch1(c, 2, '(BODY.PEEK[1.1])')),
                         b'Plain report text.')
        self.assertIn(b'Content-Type: text/html',
                      self.literal_of(self.fetch1(c, 2, '(BODY.PEEK[1.2.MIME])')))
        self.assertEqual(self.literal_of(self.fetch1(c, 2, '(BODY.PEEK[3.HEADER.FIELDS (Subject)])')),
                         b'Subject: Inner message\r\n\r\n')
        self.assertEqual(self.literal_of(self.fetch1(c, 2, '(BODY.PEEK[3.TEXT])')),
                         b'Inner body line.')
        hdr = self.literal_of(self.fetch1(c, 1, '(BODY.PEEK[HEADER.FIELDS (Subject From)])'))
        self.assertEqual(hdr, b'From: Bob <bob@example.com>\r\nSubject: Hello world\r\n\r\n')
        notf = self.literal_of(self.fetch1(c, 1, '(BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date)])'))
        self.assertEqual(notf, b'Message-ID: <m1@example.com>\r\n\r\n')
        self.assertEqual(self.literal_of(self.fetch1(c, 1, '(BODY.PEEK[TEXT])')),
                         b'First message body.\r\n')
        self.assertEqual(self.literal_of(self.fetch1(c, 1, '(BODY.PEEK[1])')),
                         b'First message body.\r\n')
        self.assertEqual(self.literal_of(self.fetch1(c, 1, '(RFC822.HEADER)')),
                         M1.split('\r\n\r\n')[0].encode() + b'\r\n\r\n')

    def test_fetch_partial(self):
        c = self.imap(readonly=True)
        data = self.fetch1(c, 1, '(BODY.PEEK[]<0.10>)')
        self.assertIn(b'BODY[]<0>', data[0][0])
        self.assertEqual(data[0][1], M1.encode()[:10])
        data = self.fetch1(c, 1, '(BODY.PEEK[TEXT]<6.7>)')
        self.assertEqual(data[0][1], b'message')
        r = self.raw()
        _, u = r.ok('FETCH 1 (BODY.PEEK[TEXT]<1000.10>)')
        self.assertIn(b'BODY[TEXT]<1000> {0}\r\n', u[0])

    def test_binary(self):
        r = self.raw(select=None)
        r.ok('EXAMINE INBOX')
        _, u = r.ok('FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])')
        self.assertIn(b'BINARY[2] ~{12}\r\n\x00\x01\x02\x03\x04hello\x00\xff', u[0])
        self.assertIn(b'BINARY.SIZE[2] 12', u[0])
        _, u = r.ok('FETCH 3 (BINARY.PEEK[1])')
        self.assertIn(b'BINARY[1] {31}\r\nSch\xf6ne Gr\xfc\xdfe vom Oktoberfest.\r\n', u[0])

    def test_seen_by_body_not_peek(self):
        c = self.imap(BOB)
        c.store('5', '-FLAGS', '(\\Seen)')
        data = self.fetch1(c, 5, '(BODY.PEEK[])')
        self.assertNotIn(b'\\Seen', data[0][0] + data[1])
        self.assertNotIn(b'\\Seen', self.fetch1(c, 5, '(FLAGS)')[0])
        data = self.fetch1(c, 5, '(BODY[])')
        joined = b''.join(d if isinstance(d, bytes) else d[0] for d in data)
        self.assertIn(b'\\Seen', joined)
        self.assertIn(b'\\Seen', self.fetch1(c, 5, '(FLAGS)')[0])
        # Read-only: a body fetch does not set \Seen.
        c.store('5', '-FLAGS', '(\\Seen)')
        c2 = self.imap(BOB, readonly=True)
        self.fetch1(c2, 5, '(BODY[])')
        self.assertNotIn(b'\\Seen', self.fetch1(c2, 5, '(FLAGS)')[0])

    def test_uid_fetch_includes_uid(self):
        c = self.imap(readonly=True)
        typ, data = c.uid('FETCH', '2:3', '(FLAGS)')
        self.assertEqual(typ, 'OK')
        self.assertEqual(len(data), 2)
        self.assertIn(b'UID 2', data[0])
        self.assertIn(b'UID 3', data[1])

    def test_fetch_bad_input(self):
        r = self.raw()
        for bad in ('FETCH 0 (FLAGS)', 'FETCH 1:*x (FLAGS)', 'FETCH 1 (FLAGS FOO)',
                    'FETCH 1 BODY[99', 'FETCH 99 (FLAGS)', 'FETCH', 'FETCH 1 (BODY[1.MIMEX])'):
            tagged, _ = r.cmd(bad)
            self.assertIn(b' BAD ', tagged, bad)
        r.ok('NOOP')
        _, u = r.ok('FETCH 1 (UID)')
        self.assertEqual(u, [b'* 1 FETCH (UID 1)\r\n'])

    # -- STORE -----------------------------------------------------------------------------
    def test_store_variants(self):
        c = self.imap(BOB)
        typ, data = c.store('1', 'FLAGS', '(\\Flagged $Label1)')
        self.assertEqual(typ, 'OK')
        self.assertIn(b'FLAGS (\\Flagged $Label1)', data[0])
        typ, data = c.store('1', '+FLAGS', '($Label2 $Forwarded \\Answered)')
        self.assertIn(b'\\Answered', data[0])
        self.assertIn(b'$Forwarded', data[0])
        self.assertIn(b'$Label2', data[0])
        typ, data = c.store('1', '-FLAGS', '($Label1 \\Flagged)')
        flags = self.fetch1(c, 1, '(FLAGS)')[0]
        self.assertNotIn(b'$Label1', flags)
        self.assertNotIn(b'\\Flagged', flags)
        self.assertIn(b'$Label2', flags)
        typ, data = c.search(None, 'KEYWORD', '$Label2')
        self.assertEqual(data, [b'1'])
        typ, data = c.search(None, 'KEYWORD', '$Forwarded')
        self.assertEqual(data, [b'1'])
        r = self.raw(BOB)
        _, u = r.ok('STORE 1 +FLAGS.SILENT (\\Deleted)')
        self.assertEqual(u, [])
        _, u = r.ok('UID STORE 1 -FLAGS (\\Deleted)')
        self.assertIn(b'UID 1', u[0])
        r.ok('STORE 1 FLAGS ()')
        _, u = r.ok('FETCH 1 (FLAGS)')
        self.assertIn(b'FLAGS ()', u[0])
        tagged, _ = r.cmd('STORE 1 FLAGS (\\Recent)')
        self.assertIn(b' BAD ', tagged)
        tagged, _ = r.cmd('STORE 1 TAGS (\\Seen)')
        self.assertIn(b' BAD ', tagged)
        # Read-only mailbox.
        r.ok('EXAMINE INBOX')
        tagged, _ = r.cmd('STORE 1 +FLAGS (\\Seen)')
        self.assertIn(b' NO ', tagged)

    def test_unchangedsince_modified(self):
        a = self.raw(BOB, select=None)
        a.ok('ENABLE CONDSTORE')
        a.ok('SELECT INBOX')
        _, u = a.ok('FETCH 3:4 (MODSEQ)')
        mods = [int(re.search(rb'MODSEQ \((\d+)\)', x).group(1)) for x in u]
        b = self.imap(BOB)
        b.store('3', '+FLAGS', '(\\Answered)')
        tagged, u = a.ok('STORE 3:4 (UNCHANGEDSINCE %d) +FLAGS ($Checked)' % max(mods))
        self.assertIn(b'[MODIFIED 3]', tagged)
        fetched = [x for x in u if b'$Checked' in x]
        self.assertEqual(len(fetched), 1)
        self.assertTrue(fetched[0].startswith(b'* 4 FETCH'))
        self.assertIn(b'MODSEQ (', fetched[0])
        tagged, _ = a.ok('UID STORE 4 (UNCHANGEDSINCE 0) +FLAGS ($Never)')
        self.assertIn(b'[MODIFIED 4]', tagged)
        # .SILENT under CONDSTORE still reports the new MODSEQ.
        _, u = a.ok('STORE 4 -FLAGS.SILENT ($Checked)')
        self.assertEqual(len(u), 1)
        self.assertIn(b'MODSEQ (', u[0])
        self.assertNotIn(b'FLAGS', u[0])

    # -- CONDSTORE / QRESYNC -------------------------------------------------------------------
    def test_changedsince_one_change(self):
        a = self.raw(BOB, select=None)
        a.ok('ENABLE CONDSTORE')
        _, u = a.ok('SELECT INBOX')
        high = int(re.search(rb'HIGHESTMODSEQ (\d+)', b''.join(u)).group(1))
        _, u = a.ok('FETCH 1:* (FLAGS) (CHANGEDSINCE %d)' % high)
        self.assertEqual(u, [])
        b = self.imap(BOB)
        b.store('2', '+FLAGS', '(\\Flagged)')
        _, u = a.ok('FETCH 1:* (FLAGS) (CHANGEDSINCE %d)' % high)
        nums = {x.split()[1] for x in u if b' FETCH ' in x}
        self.assertEqual(nums, {b'2'}, u)
        self.assertTrue(all(b'MODSEQ' in x for x in u if b' FETCH ' in x))
        # Every FETCH answer carries MODSEQ once CONDSTORE is on.
        _, u = a.ok('FETCH 1 (UID)')
        self.assertIn(b'MODSEQ (', u[0])
        b.store('2', '-FLAGS', '(\\Flagged)')

    def test_vanished_earlier(self):
        r = self.raw(BOB, select=None)
        r.ok('ENABLE QRESYNC')
        _, u = r.ok('SELECT INBOX')
        high = int(re.search(rb'HIGHESTMODSEQ (\d+)', b''.join(u)).group(1))
        c = self.imap(BOB)
        typ, _ = c.append('INBOX', None, None, M5.encode())
        if typ != 'OK':
            self.skipTest('APPEND not available')
        r.ok('NOOP')
        typ, data = c.uid('SEARCH', None, 'ALL')
        last = data[0].split()[-1].decode()
        c.uid('STORE', last, '+FLAGS', '(\\Deleted)')
        typ, _ = c.expunge()
        if typ != 'OK':
            self.skipTest('EXPUNGE not available')
        _, u = r.ok('UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)' % high)
        # (Updates from earlier commands may come first: the engine sends them after the
        # tagged reply.)
        self.assertIn(b'* VANISHED (EARLIER) %s\r\n' % last.encode(), u)
        tagged, _ = r.cmd('FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)')
        self.assertIn(b' BAD ', tagged)

    # -- SEARCH --------------------------------------------------------------------------------
    def search(self, c, *keys, charset=None):
        typ, data = c.search(charset, *keys)
        self.assertEqual(typ, 'OK', data)
        return [int(x) for x in data[0].split()]

    def test_search_keys(self):
        c = self.imap(readonly=True)
        self.assertEqual(self.search(c, 'ALL'), [1, 2, 3, 4, 5, 6])
        self.assertEqual(self.search(c, 'SUBJECT', 'hello'), [1, 4, 6])
        self.assertEqual(self.search(c, 'FROM', 'CAROL'), [2, 5])
        self.assertEqual(self.search(c, 'TO', 'bob@example.com'), [4])
        self.assertEqual(self.search(c, 'NOT', 'FROM', 'carol'), [1, 3, 4, 6])
        self.assertEqual(self.search(c, 'OR', 'FROM', 'dave', 'SUBJECT', 'report'), [2, 3])
        self.assertEqual(self.search(c, 'HEADER', 'Message-ID', 'm5@'), [5])
        self.assertEqual(self.search(c, 'HEADER', 'In-Reply-To', '""'), [4, 6])
        self.assertEqual(self.search(c, 'BODY', '"report text"'), [2])
        self.assertEqual(self.search(c, 'BODY', '"HTML REPORT"'), [2])
        self.assertEqual(self.search(c, 'TEXT', '"Inner message"'), [2])
        self.assertEqual(self.search(c, 'TEXT', 'm6@example'), [6])
        sizes = [len(m.encode()) for m in CORPUS]
        self.assertEqual(self.search(c, 'LARGER', str(sizes[2])),
                         [i + 1 for i, n in enumerate(sizes) if n > sizes[2]])
        self.assertEqual(self.search(c, 'SMALLER', str(sizes[0] + 1)),
                         [i + 1 for i, n in enumerate(sizes) if n <= sizes[0]])
        self.assertEqual(self.search(c, 'SENTSINCE', '3-Jan-2024'), [3, 4, 5, 6])
        self.assertEqual(self.search(c, 'SENTON', '2-Jan-2024'), [2])
        self.assertEqual(self.search(c, 'SENTBEFORE', '2-Jan-2024'), [1])
        self.assertEqual(self.search(c, 'SINCE', '1-Jan-2020'), [1, 2, 3, 4, 5, 6])
        self.assertEqual(self.search(c, 'BEFORE', '1-Jan-2020'), [])
        self.assertEqual(self.search(c, 'YOUNGER', '3600'), [1, 2, 3, 4, 5, 6])
        self.assertEqual(self.search(c, 'OLDER', '3600'), [])
        self.assertEqual(self.search(c, '2:4', 'UID', '3:*'), [3, 4])
        self.assertEqual(self.search(c, 'UNDELETED', 'UNDRAFT', 'NOT', 'RECENT'), [1, 2, 3, 4, 5, 6])
        typ, data = c.uid('SEARCH', 'SUBJECT', 'hello')
        self.assertEqual(data[0].split(), [b'1', b'4', b'6'])

    def test_search_charset_and_encoded_words(self):
        c = self.imap(readonly=True)
        c.literal = 'München'.encode()
        typ, data = c.search('UTF-8', 'SUBJECT')
        self.assertEqual((typ, data[0]), ('OK', b'3'))
        c.literal = 'GRÜSSE'.encode()
        typ, data = c.search('utf-8', 'SUBJECT')
        self.assertEqual(data[0], b'')  # ß is not SS here: no false match either
        c.literal = 'SCHÖNE GRÜßE'.encode()
        typ, data = c.search('UTF-8', 'BODY')
        self.assertEqual(data[0], b'3')
        self.assertEqual(self.search(c, 'SUBJECT', 'aus', charset='US-ASCII'), [3])
        r = self.raw(select='INBOX')
        _, u = r.ok('SEARCH CHARSET UTF-8 HEADER X-Tag', lit='CRÈME'.encode())
        self.assertEqual(u, [b'* SEARCH 3\r\n'])
        tagged, _ = r.cmd('SEARCH CHARSET KOI8-R SUBJECT x')
        self.assertIn(b'NO [BADCHARSET (US-ASCII UTF-8)]', tagged)

    def test_esearch_and_save(self):
        r = self.raw()
        _, u = r.ok('SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT hello')
        self.assertEqual(u, [b'* ESEARCH (TAG %s) MIN 1 MAX 6 COUNT 3 ALL 1,4,6\r\n' % r.tag()])
        _, u = r.ok('UID SEARCH RETURN (COUNT) SUBJECT nothing-like-this')
        self.assertEqual(u, [b'* ESEARCH (TAG %s) UID COUNT 0\r\n' % r.tag()])
        _, u = r.ok('SEARCH RETURN () 1:3')
        self.assertEqual(u, [b'* ESEARCH (TAG %s) ALL 1:3\r\n' % r.tag()])
        _, u = r.ok('SEARCH RETURN (SAVE) SUBJECT hello')
        self.assertEqual(u, [])
        _, u = r.ok('FETCH $ (UID)')
        self.assertEqual([x.split()[1] for x in u], [b'1', b'4', b'6'])
        _, u = r.ok('SEARCH $ FROM bob')
        self.assertEqual(u, [b'* SEARCH 1 6\r\n'])
        tagged, _ = r.cmd('SEARCH RETURN (SAVE) CHARSET KOI8-R SUBJECT x')
        self.assertIn(b' NO ', tagged)
        _, u = r.ok('FETCH $ (UID)')
        self.assertEqual(u, [])

    def test_search_modseq(self):
        r = self.raw(select=None)
        r.ok('ENABLE CONDSTORE')
        r.ok('SELECT INBOX')
        _, u = r.ok('SEARCH MODSEQ 1')
        self.assertRegex(u[0], rb'^\* SEARCH 1 2 3 4 5 6 \(MODSEQ \d+\)\r\n$')

    def test_rev2_search_is_esearch(self):
        r = self.raw(select=None)
        r.ok('ENABLE IMAP4rev2')
        r.ok('SELECT INBOX')
        _, u = r.ok('SEARCH SUBJECT hello')
        self.assertEqual(u, [b'* ESEARCH (TAG %s) ALL 1,4,6\r\n' % r.tag()])

    def test_search_bad_input(self):
        r = self.raw()
        bomb = 'SEARCH ' + 'NOT ' * 200 + 'ALL'
        tagged, _ = r.cmd(bomb)
        self.assertIn(b' BAD ', tagged)
        tagged, _ = r.cmd('SEARCH ' + '(' * 40 + 'ALL' + ')' * 40)
        self.assertIn(b' BAD ', tagged)
        for bad in ('SEARCH', 'SEARCH FROBNICATE', 'SEARCH SINCE 32-Foo-2020', 'SEARCH OR ALL'):
            tagged, _ = r.cmd(bad)
            self.assertIn(b' BAD ', tagged, bad)
        _, u = r.ok('SEARCH ALL')
        self.assertEqual(u, [b'* SEARCH 1 2 3 4 5 6\r\n'])

    def test_search_many_messages(self):
        """SEARCH reads the cached headers of many messages in runs (imap_cmd_search.c): every
        run boundary, a sparse search (cheap keys first leave most blobs unread) and messages
        expunged by another session but not yet announced must give the same answers as one
        message at a time would."""
        user = ('carol@example.com', 'Carol-Pass1!')
        self.p.cli_ok('user', 'add', user[0], '--type', 'enhanced', '--password', user[1])
        n = 1300
        d = os.path.join(self.p.tmp, 'many')
        os.makedirs(d)
        for i in range(n):
            subj = 'msg %d%s' % (i, ' needle' if i % 7 == 0 else '')
            with open(os.path.join(d, '%05d.eml' % i), 'w') as f:
                f.write('From: sender%d@example.org\r\nTo: carol@example.com\r\n'
                        'Subject: %s\r\nDate: %s\r\n\r\nbody %d\r\n'
                        % (i % 10, subj, 'Mon, 1 Jan 2024 10:00:00 +0000' if i < 650
                           else 'Mon, 1 Jul 2024 10:00:00 +0000', i))
        self.p.cli_ok('mail', 'append', user[0], d)
        a = self.imap(who=user)
        seen = [i + 1 for i in range(n) if i % 3 == 0]
        for k in range(0, len(seen), 200):
            typ, _ = a.store(','.join(map(str, seen[k:k + 200])), '+FLAGS.SILENT', '(\\Seen)')
            self.assertEqual(typ, 'OK')
        needle = [i + 1 for i in range(n) if i % 7 == 0]
        self.assertEqual(self.search(a, 'SUBJECT', 'needle'), needle)
        self.assertEqual(self.search(a, 'UNSEEN', 'SUBJECT', 'needle'),
                         [s for s in needle if (s - 1) % 3])
        self.assertEqual(self.search(a, 'SEEN', 'SUBJECT', 'NEEDLE'),
                         [s for s in needle if (s - 1) % 3 == 0])
        self.assertEqual(self.search(a, 'FROM', 'sender3@'), [i + 1 for i in range(n) if i % 10 == 3])
        self.assertEqual(self.search(a, 'SENTSINCE', '1-Jun-2024'), list(range(651, n + 1)))
        self.assertEqual(self.search(a, '600:700', 'SENTBEFORE', '1-Jun-2024'), list(range(600, 651)))
        # FETCH and SORT read the same caches ahead: a dense walk, and a sparse one.
        typ, data = a.fetch('1:*', '(ENVELOPE)')
        self.assertEqual(typ, 'OK')
        subjects = [re.search(rb'ENVELOPE \("[^"]*" "([^"]*)"', d).group(1).decode()
                    for d in data if isinstance(d, bytes)]
        self.assertEqual(subjects, ['msg %d%s' % (i, ' needle' if i % 7 == 0 else '')
                                    for i in range(n)])
        typ, data = a.fetch('3,700,1299', '(ENVELOPE)')
        self.assertEqual([re.search(rb'"(msg \d+)', d).group(1) for d in data],
                         [b'msg 2', b'msg 699', b'msg 1298'])
        r = self.raw(who=user)
        self.assertEqual(self.sort(r, 'SORT (REVERSE FROM) UTF-8 SUBJECT needle')[:4],
                         [50, 120, 190, 260])  # sender9, ties in sequence order
        # Another session expunges every fifth message; a's sequence numbers stay as they
        # were until it is told, and the expunged messages match nothing meanwhile.
        b = self.imap(who=user)
        gone = [i + 1 for i in range(n) if i % 5 == 0]
        for k in range(0, len(gone), 200):
            b.store(','.join(map(str, gone[k:k + 200])), '+FLAGS.SILENT', '(\\Deleted)')
        typ, _ = b.expunge()
        self.assertEqual(typ, 'OK')
        self.assertEqual(self.search(a, 'SUBJECT', 'needle'),
                         [s for s in needle if (s - 1) % 5])
        typ, data = a.uid('SEARCH', 'SUBJECT', 'needle')
        self.assertEqual([int(x) for x in data[0].split()],
                         [s for s in needle if (s - 1) % 5])  # UIDs: 1..n in order

    # -- SORT and THREAD -------------------------------------------------------------------
    def sort(self, r, text):
        _, u = r.ok(text)
        self.assertTrue(u[-1].startswith(b'* SORT'), u)
        return [int(x) for x in u[-1].split()[2:]]

    def test_sort(self):
        r = self.raw()
        self.assertEqual(self.sort(r, 'SORT (SUBJECT) UTF-8 ALL'), [3, 1, 4, 6, 5, 2])
        self.assertEqual(self.sort(r, 'SORT (FROM) UTF-8 ALL'), [4, 1, 6, 2, 5, 3])
        self.assertEqual(self.sort(r, 'SORT (DATE) UTF-8 ALL'), [1, 2, 3, 4, 5, 6])
        self.assertEqual(self.sort(r, 'SORT (REVERSE DATE) UTF-8 ALL'), [6, 5, 4, 3, 2, 1])
        self.assertEqual(self.sort(r, 'SORT (ARRIVAL) US-ASCII ALL'), [1, 2, 3, 4, 5, 6])
        sizes = [len(m.encode()) for m in CORPUS]
        want = sorted(range(1, 7), key=lambda n: (-sizes[n - 1], n))
        self.assertEqual(self.sort(r, 'SORT (REVERSE SIZE) UTF-8 ALL'), want)
        self.assertEqual(self.sort(r, 'SORT (TO SUBJECT) UTF-8 ALL'), [3, 1, 6, 5, 2, 4])
        self.assertEqual(self.sort(r, 'SORT (DISPLAYFROM) UTF-8 ALL'), [4, 1, 6, 2, 5, 3])
        self.assertEqual(self.sort(r, 'SORT (SUBJECT) UTF-8 FROM bob'), [1, 6])
        self.assertEqual(self.sort(r, 'UID SORT (REVERSE SUBJECT) UTF-8 ALL'), [2, 5, 1, 4, 6, 3])
        tagged, _ = r.cmd('SORT (SUBJECT) KOI8-R ALL')
        self.assertIn(b'NO [BADCHARSET', tagged)
        tagged, _ = r.cmd('SORT (BOGUS) UTF-8 ALL')
        self.assertIn(b' BAD ', tagged)

    def test_thread(self):
        r = self.raw()
        _, u = r.ok('THREAD REFERENCES UTF-8 ALL')
        self.assertEqual(u, [b'* THREAD (1 4 6)(2)(3)(5)\r\n'])
        _, u = r.ok('THREAD ORDEREDSUBJECT UTF-8 ALL')
        self.assertEqual(u, [b'* THREAD (1 (4)(6))(2)(3)(5)\r\n'])
        _, u = r.ok('UID THREAD REFERENCES UTF-8 NOT FROM carol')
        self.assertEqual(u, [b'* THREAD (1 4 6)(3)\r\n'])
        _, u = r.ok('THREAD REFERENCES UTF-8 NOT SUBJECT hello')
        self.assertEqual(u, [b'* THREAD (2)(3)(5)\r\n'])
        # Without its root, the replies still hang together (a dummy at the top).
        _, u = r.ok('THREAD REFERENCES UTF-8 4,6')
        self.assertEqual(u, [b'* THREAD (4 6)\r\n'])
        tagged, _ = r.cmd('THREAD FOO UTF-8 ALL')
        self.assertIn(b' BAD ', tagged)

    def test_thread_dummy_siblings(self):
        # Two replies to a message that is not in the mailbox: a dummy holds both.
        base = ('From: X <x@example.com>\r\nSubject: Re: lost %s\r\nDate: %s\r\n'
                'Message-ID: <%s@example.com>\r\nReferences: <lost@example.com>\r\n\r\nx\r\n')
        self.p.cli_ok('user', 'add', 'carl@example.com', '--type', 'basic',
                      '--password', 'Carl-Pass1!')
        self.p.cli_ok('mail', 'append', 'carl@example.com',
                      input=base % ('a', 'Mon, 1 Jan 2024 10:00:00 +0000', 'a'))
        self.p.cli_ok('mail', 'append', 'carl@example.com',
                      input=base % ('b', 'Tue, 2 Jan 2024 10:00:00 +0000', 'b'))
        r = self.raw(('carl@example.com', 'Carl-Pass1!'))
        _, u = r.ok('THREAD REFERENCES UTF-8 ALL')
        self.assertEqual(u, [b'* THREAD ((1)(2))\r\n'])


if __name__ == '__main__':
    unittest.main()
