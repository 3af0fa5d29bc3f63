"""IMAP session core against the real binary: greeting and capabilities, STARTTLS, LOGIN
and AUTHENTICATE, ENABLE/ID/NAMESPACE, SELECT/EXAMINE with CONDSTORE and QRESYNC, IDLE
woken by another session, and malformed or hostile input. Python's imaplib (a client
nobody here wrote) where it can express the case, raw sockets where it cannot."""
import base64
import imaplib
import re
import socket
import ssl
import threading
import time
import unittest

from harness import Polaris

ALICE = ('alice@example.com', 'Alice-Pass1!')
PLAIN_OK = '[auth]\nallow_plaintext = loopback\n'


def msg(subject, body='hello'):
    return ('From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: %s\r\n'
            'Message-ID: <%s@example.com>\r\n\r\n%s\r\n' % (subject, subject, body))


class Raw:
    """A line-level IMAP client for what imaplib cannot express."""

    def __init__(self, port, tls_ctx=None):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=10)
        if tls_ctx:
            self.s = tls_ctx.wrap_socket(self.s, server_hostname='localhost')
        self.f = self.s.makefile('rb')
        self.greeting = self.line()

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        return self.f.readline()

    def until_tagged(self, tag):
        """Lines up to and including the tagged response."""
        out = []
        while True:
            l = self.line()
            if not l:
                raise EOFError('connection closed; got %r' % out)
            out.append(l)
            if l.startswith(tag.encode() + b' '):
                return out

    def cmd(self, tag, text):
        self.send('%s %s\r\n' % (tag, text))
        return self.until_tagged(tag)

    def login(self):
        r = self.cmd('L', 'LOGIN %s %s' % ALICE)
        assert r[-1].startswith(b'L OK'), r
        return r

    def close(self):
        self.s.close()


class ImapCoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(listeners=('imap', 'imaps'), extra_config=PLAIN_OK)
        cls.p.__enter__()
        cls.p.add_demo()
        for i in range(3):
            cls.p.cli_ok('mail', 'append', 'alice@example.com', input=msg('m%d' % i))

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def imap(self):
        c = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
        self.addCleanup(self._close, c)
        return c

    def raw(self, tls=False):
        r = Raw(self.p.ports['imaps' if tls else 'imap'],
                self.p.tls_context() if tls else None)
        self.addCleanup(r.close)
        return r

    @staticmethod
    def _close(c):
        try:
            c.logout()
        except Exception:
            pass

    # -- greeting, capabilities, login --------------------------------------------------
    def test_greeting_and_capabilities(self):
        r = self.raw()
        self.assertRegex(r.greeting, rb'^\* OK \[CAPABILITY IMAP4rev1 IMAP4rev2 .*STARTTLS')
        c = self.imap()
        for cap in ('IMAP4REV1', 'IMAP4REV2', 'STARTTLS', 'AUTH=PLAIN', 'SASL-IR', 'IDLE',
                    'LITERAL+', 'ID', 'ENABLE'):
            self.assertIn(cap, c.capabilities)
        typ, data = c.login(*ALICE)
        self.assertEqual(typ, 'OK')
        self.assertIn(b'[CAPABILITY IMAP4rev1', data[0])
        for cap in (b'CONDSTORE', b'QRESYNC', b'UIDPLUS', b'MOVE', b'SPECIAL-USE', b'QUOTA',
                    b'NAMESPACE', b'ESEARCH', b'SORT', b'THREAD=REFERENCES', b'APPENDLIMIT='):
            self.assertIn(cap, data[0])

    def test_login_failures(self):
        c = self.imap()
        with self.assertRaisesRegex(imaplib.IMAP4.error, r'AUTHENTICATIONFAILED'):
            c.login(ALICE[0], 'Wrong-Pass1!')
        with self.assertRaisesRegex(imaplib.IMAP4.error, r'AUTHENTICATIONFAILED'):
            c.login('nobody@example.com', 'Wrong-Pass1!')
        r = self.raw()
        self.assertTrue(r.cmd('a', 'SELECT INBOX')[-1].startswith(b'a BAD'))
        self.assertTrue(r.cmd('b', 'LOGIN onlyone')[-1].startswith(b'b BAD'))

    def test_basic_mailbox_may_use_imap(self):
        c = self.imap()
        self.assertEqual(c.login('bob@example.com', 'Bob-Pass1!')[0], 'OK')

    def test_authenticate_plain_and_login(self):
        tok = base64.b64encode(b'\0' + ALICE[0].encode() + b'\0' + ALICE[1].encode()).decode()
        r = self.raw()
        self.assertTrue(r.cmd('a', 'AUTHENTICATE PLAIN ' + tok)[-1].startswith(b'a OK'))
        r = self.raw()
        r.send('b AUTHENTICATE PLAIN\r\n')
        self.assertEqual(r.line(), b'+ \r\n')
        r.send(tok + '\r\n')
        self.assertTrue(r.until_tagged('b')[-1].startswith(b'b OK'))
        r = self.raw()
        r.send('c AUTHENTICATE LOGIN\r\n')
        self.assertEqual(r.line(), b'+ VXNlcm5hbWU6\r\n')
        r.send(base64.b64encode(ALICE[0].encode()).decode() + '\r\n')
        self.assertEqual(r.line(), b'+ UGFzc3dvcmQ6\r\n')
        r.send(base64.b64encode(ALICE[1].encode()).decode() + '\r\n')
        self.assertTrue(r.until_tagged('c')[-1].startswith(b'c OK'))
        # cancelled, malformed, someone else's authzid
        r = self.raw()
        r.send('d AUTHENTICATE PLAIN\r\n')
        r.line()
        r.send('*\r\n')
        self.assertTrue(r.until_tagged('d')[-1].startswith(b'd BAD'))
        self.assertTrue(r.cmd('e', 'AUTHENTICATE PLAIN !!!!')[-1].startswith(b'e BAD'))
        bad = base64.b64encode(b'bob@example.com\0' + ALICE[0].encode() + b'\0'
                               + ALICE[1].encode()).decode()
        self.assertTrue(r.cmd('f', 'AUTHENTICATE PLAIN ' + bad)[-1].startswith(b'f BAD'))
        self.assertTrue(r.cmd('g', 'AUTHENTICATE CRAM-MD5')[-1].startswith(b'g NO'))

    def test_starttls_and_imaps(self):
        c = self.imap()
        c.starttls(ssl_context=self.p.tls_context())
        self.assertNotIn('STARTTLS', c.capabilities)
        self.assertEqual(c.login(*ALICE)[0], 'OK')
        s = imaplib.IMAP4_SSL('127.0.0.1', self.p.ports['imaps'], timeout=10,
                              ssl_context=self.p.tls_context())
        self.addCleanup(self._close, s)
        self.assertEqual(s.login(*ALICE)[0], 'OK')

    def test_starttls_discards_pipelined_commands(self):
        r = self.raw()
        # A LOGIN pipelined in clear text behind STARTTLS must never run.
        r.send('a STARTTLS\r\nb LOGIN %s %s\r\n' % ALICE)
        self.assertTrue(r.until_tagged('a')[-1].startswith(b'a OK'))
        r.s = self.p.tls_context().wrap_socket(r.s, server_hostname='localhost')
        r.f = r.s.makefile('rb')
        out = r.cmd('c', 'NOOP')
        self.assertTrue(out[-1].startswith(b'c OK'))
        self.assertFalse(any(l.startswith(b'b ') for l in out))
        self.assertTrue(r.cmd('d', 'SELECT INBOX')[-1].startswith(b'd BAD'))  # not logged in

    # -- authenticated commands ------------------------------------------------------------
    def test_enable_id_namespace(self):
        r = self.raw()
        r.login()
        out = r.cmd('a', 'ENABLE CONDSTORE UTF8=ACCEPT X-UNKNOWN')
        self.assertIn(b'* ENABLED CONDSTORE UTF8=ACCEPT\r\n', out)
        self.assertIn(b'* ENABLED\r\n', r.cmd('b', 'ENABLE CONDSTORE'))  # nothing new
        self.assertIn(b'* ENABLED QRESYNC\r\n', r.cmd('c', 'ENABLE QRESYNC'))
        self.assertRegex(b''.join(r.cmd('d', 'ID ("name" "test")')), rb'\* ID \("name" "Polaris"')
        self.assertIn(b'* NAMESPACE (("" ".")) NIL NIL\r\n', r.cmd('e', 'NAMESPACE'))

    def test_select_and_examine(self):
        r = self.raw()
        r.login()
        out = b''.join(r.cmd('a', 'SELECT INBOX'))
        self.assertIn(b'* FLAGS (', out)
        self.assertIn(b'* OK [PERMANENTFLAGS (', out)
        self.assertRegex(out, rb'\* (\d+) EXISTS')
        self.assertRegex(out, rb'\* OK \[UIDVALIDITY \d+\]')
        self.assertRegex(out, rb'\* OK \[UIDNEXT \d+\]')
        self.assertRegex(out, rb'\* OK \[HIGHESTMODSEQ \d+\]')
        self.assertIn(b'a OK [READ-WRITE]', out)
        out = b''.join(r.cmd('b', 'EXAMINE inbox'))       # INBOX in any case
        self.assertIn(b'b OK [READ-ONLY]', out)
        self.assertIn(b'c NO [NONEXISTENT]', r.cmd('c', 'SELECT NoSuchBox')[-1])
        # calendars, contacts, tasks and notes are not mail folders
        for name in ('Calendar', 'Contacts', 'Tasks', 'Notes'):
            self.assertIn(b'NO [NONEXISTENT]', r.cmd('d', 'SELECT ' + name)[-1])
        # after a failed SELECT nothing is selected
        self.assertTrue(r.cmd('e', 'FETCH 1 FLAGS')[-1].startswith(b'e BAD'))

    def test_select_rev2_and_closed(self):
        r = self.raw()
        r.login()
        r.cmd('a', 'ENABLE IMAP4rev2')
        r.cmd('b', 'SELECT INBOX')
        out = b''.join(r.cmd('c', 'SELECT Sent'))
        self.assertIn(b'* OK [CLOSED]', out)
        self.assertNotIn(b'RECENT', out)                 # gone in IMAP4rev2
        self.assertIn(b'* LIST () "." Sent', out)
        self.assertTrue(r.cmd('d', 'UNSELECT')[-1].startswith(b'd OK'))
        self.assertTrue(r.cmd('e', 'UNSELECT')[-1].startswith(b'e BAD'))

    def test_idle_woken_by_another_session(self):
        r = self.raw()
        r.login()
        exists = int(re.search(rb'\* (\d+) EXISTS', b''.join(r.cmd('a', 'SELECT INBOX'))).group(1))
        r.send('b IDLE\r\n')
        self.assertEqual(r.line(), b'+ idling\r\n')
        t0 = time.monotonic()
        # the change comes from another session of another engine entry point
        self.p.cli_ok('mail', 'append', 'alice@example.com', input=msg('idle'))
        line = r.line()
        latency = time.monotonic() - t0
        self.assertRegex(line, rb'^\* \d+ EXISTS\r\n$')
        self.assertGreater(int(line.split()[1]), exists)
        print('\n  IDLE woken %.1f ms after the commit was made' % (latency * 1000))
        r.send('DONE\r\n')
        self.assertTrue(r.until_tagged('b')[-1].startswith(b'b OK'))

    def test_reselect_after_changes_elsewhere(self):
        """SELECT reuses the last view of the folder (a shared cache) and catches up from
        the journal: what it reports must equal a fresh read of the store."""
        self.p.cli_ok('user', 'add', 'carol@example.com', '--type', 'basic',
                      '--password', 'Carol-Pass1!')
        for i in range(4):
            self.p.cli_ok('mail', 'append', 'carol@example.com', input=msg('c%d' % i))
        a = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
        a.login('carol@example.com', 'Carol-Pass1!')
        a.select('INBOX')
        a.close()                                   # the view is cached now
        b = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
        b.login('carol@example.com', 'Carol-Pass1!')
        b.select('INBOX')
        b.uid('STORE', '2', '+FLAGS', '(\\Deleted)')
        b.uid('STORE', '3', '+FLAGS', '(\\Flagged $Work)')
        b.expunge()
        b.logout()
        self.p.cli_ok('mail', 'append', 'carol@example.com', input=msg('c4'))
        typ, data = a.select('INBOX')
        self.assertEqual(int(data[0]), 4)
        typ, data = a.uid('FETCH', '1:*', '(FLAGS)')
        got = {int(re.search(rb'UID (\d+)', d).group(1)): d for d in data}
        self.assertEqual(sorted(got), [1, 3, 4, 5])
        self.assertIn(b'\\Flagged', got[3])
        self.assertIn(b'$Work', got[3])
        typ, data = a.uid('SEARCH', None, 'ALL')
        self.assertEqual(data[0].split(), [b'1', b'3', b'4', b'5'])
        a.logout()

    def test_idle_needs_done(self):
        r = self.raw()
        r.login()
        r.send('a IDLE\r\n')
        r.line()
        r.send('NOOP\r\n')
        self.assertTrue(r.until_tagged('a')[-1].startswith(b'a BAD'))
        self.assertTrue(r.cmd('b', 'NOOP')[-1].startswith(b'b OK'))

    # -- hostile input --------------------------------------------------------------------
    def test_megabyte_line_without_crlf(self):
        r = self.raw()
        r.send(b'a NOOP ' + b'x' * (1 << 20))
        r.send(b'\r\n')
        self.assertTrue(r.line().startswith(b'* BAD [TOOBIG]'))
        self.assertTrue(r.cmd('b', 'NOOP')[-1].startswith(b'b OK'))

    def test_huge_literal_refused_unread(self):
        r = self.raw()
        r.login()
        r.send('a LOGIN {99999999999}\r\n')
        self.assertEqual(r.line(), b'a BAD [TOOBIG] Literal too large\r\n')
        r.send('b APPEND INBOX {99999999999}\r\n')
        self.assertTrue(r.line().startswith(b'b NO [TOOBIG]'))
        r.send('c APPEND INBOX {99999999999999999999999}\r\n')   # beyond 64 bits
        self.assertTrue(r.line().startswith(b'c BAD'))
        self.assertTrue(r.cmd('d', 'NOOP')[-1].startswith(b'd OK'))
        # a non-synchronising literal over the limit is already on its way: BYE
        r.send('e APPEND INBOX {99999999999+}\r\n')
        self.assertTrue(r.line().startswith(b'* BYE [TOOBIG]'))

    def test_nul_bytes_and_garbage(self):
        r = self.raw()
        for bad in (b'a NO\x00OP\r\n', b'\x00\x00\x00\r\n', b'*\r\n', b'a\r\n', b'a FROBNICATE\r\n',
                    b'a UID NOOP\r\n', b'a SELECT "unterminated\r\n', b'a SELECT (((\r\n'):
            r.send(bad)
            self.assertRegex(r.line(), rb'^(a|\*) BAD ', bad)
        self.assertTrue(r.cmd('b', 'NOOP')[-1].startswith(b'b OK'))

    def test_unfinished_literal_at_eof_and_others_still_served(self):
        r = self.raw()
        r.login()
        r.send('a APPEND INBOX {100}\r\n')
        self.assertTrue(r.line().startswith(b'+ '))
        r.send('only part of the literal')
        r.s.shutdown(socket.SHUT_WR)
        self.assertEqual(r.f.read(), b'')      # the server hangs up, nothing half-stored
        c = self.imap()
        self.assertEqual(c.login(*ALICE)[0], 'OK')

    def test_too_many_bad_commands(self):
        r = self.raw()
        try:
            r.send(''.join('x%d BOGUS\r\n' % i for i in range(25)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may hang up before the client has written everything
        # The server lingers before closing, so its BYE is not lost to a reset.
        lines = r.f.read().split(b'\r\n')
        self.assertTrue(any(l.startswith(b'* BYE') for l in lines))

    def test_parallel_sessions(self):
        errors = []

        def worker():
            try:
                c = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
                c.login(*ALICE)
                c.select('INBOX')
                c.noop()
                c.logout()
            except Exception as e:       # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


class TimeoutTest(unittest.TestCase):
    def test_idle_clients_are_logged_out(self):
        cfg = PLAIN_OK + '[imap]\ntimeout = 1\n[pop3]\ntimeout = 1\n'
        with Polaris(listeners=('imap', 'pop3'), extra_config=cfg) as p:
            p.add_demo()
            r = Raw(p.ports['imap'])
            t0 = time.monotonic()
            self.assertEqual(r.line(), b'* BYE Autologout; idle for too long\r\n')
            self.assertLess(time.monotonic() - t0, 5)
            # IDLE honours the same setting
            r = Raw(p.ports['imap'])
            r.login()
            r.send('a IDLE\r\n')
            r.line()
            self.assertTrue(r.line().startswith(b'* BYE'))
            s = socket.create_connection(('127.0.0.1', p.ports['pop3']), timeout=10)
            f = s.makefile('rb')
            f.readline()
            self.assertTrue(f.readline().startswith(b'-ERR Autologout'))
            s.close()


class ImapPlaintextTest(unittest.TestCase):
    def test_logindisabled_without_tls(self):
        with Polaris(listeners=('imap',)) as p:
            p.add_demo()
            c = imaplib.IMAP4('127.0.0.1', p.ports['imap'], timeout=10)
            self.assertIn('LOGINDISABLED', c.capabilities)
            self.assertNotIn('AUTH=PLAIN', c.capabilities)
            with self.assertRaisesRegex(imaplib.IMAP4.error, 'PRIVACYREQUIRED'):
                c.login(*ALICE)
            c.starttls(ssl_context=p.tls_context())
            self.assertNotIn('LOGINDISABLED', c.capabilities)
            self.assertEqual(c.login(*ALICE)[0], 'OK')
            c.logout()


if __name__ == '__main__':
    unittest.main(verbosity=2)
