"""SMTP against the real binary: MX (25) and submission (587 STARTTLS, 465 implicit TLS),
driven by Python's smtplib and swaks (clients nobody here wrote), raw sockets for
pipelining, smuggling and hostile input; arrivals are checked over IMAP."""
import base64
import imaplib
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

from harness import Polaris

ALICE = ('alice@example.com', 'Alice-Pass1!')
BOB = ('bob@example.com', 'Bob-Pass1!')
PLAIN_OK = '[auth]\nallow_plaintext = loopback\n'
LISTENERS = ('smtp', 'submission', 'submissions', 'imap')


def start(extra=''):
    p = Polaris(listeners=LISTENERS, extra_config=PLAIN_OK + extra)
    p.__enter__()
    p.add_demo()
    return p


class Mailbox:
    """A user's INBOX as IMAP shows it."""

    def __init__(self, p, user):
        self.p, self.user = p, user

    def _imap(self):
        c = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
        c.login(*self.user)
        return c

    def count(self):
        c = self._imap()
        try:
            typ, data = c.select('INBOX', readonly=True)
            assert typ == 'OK', data
            return int(data[0])
        finally:
            c.logout()

    def messages(self):
        """Every message of the INBOX (bytes), oldest first."""
        c = self._imap()
        try:
            typ, data = c.select('INBOX', readonly=True)
            n = int(data[0])
            if n == 0:
                return []
            typ, data = c.fetch('1:%d' % n, '(BODY.PEEK[])')
            assert typ == 'OK', data
            return [part[1] for part in data if isinstance(part, tuple)]
        finally:
            c.logout()

    def wait_count(self, n, timeout=10):
        deadline = time.time() + timeout
        while True:
            got = self.count()
            if got >= n or time.time() > deadline:
                return got
            time.sleep(0.1)


def msg(subject, body='Hello.\r\n', frm='alice@example.com', to='bob@example.com'):
    return ('From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s'
            % (frm, to, subject, subject.replace(' ', '-'), body)).encode()


class Raw:
    """A line-oriented raw SMTP client for what smtplib will not send."""

    def __init__(self, port, tls_context=None):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        if tls_context:
            self.sock = tls_context.wrap_socket(self.sock, server_hostname='localhost')
        self.buf = b''
        self.greeting = self.reply()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b'\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('connection closed; buffered %r' % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line.rstrip(b'\r')

    def reply(self):
        """(code, [lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            l = self.line()
            lines.append(l[4:])
            if len(l) < 4 or l[3:4] != b'-':
                return int(l[:3]), lines

    def cmd(self, text):
        self.send(text.encode() + b'\r\n' if isinstance(text, str) else text + b'\r\n')
        return self.reply()

    def closed(self, timeout=5):
        """True when the server has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class SmtpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = start('[smtp]\nmax_message = 100K\nmax_recipients = 5\n')
        cls.p.cli_ok('alias', 'add', 'sales@example.com', 'alice@example.com')
        cls.bob = Mailbox(cls.p, BOB)
        cls.alice = Mailbox(cls.p, ALICE)

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def ctx(self):
        return self.p.tls_context()

    def mx(self):
        s = smtplib_SMTP('127.0.0.1', self.p.ports['smtp'])
        self.addCleanup(close_quietly, s)
        return s

    def submission(self, login=True):
        s = smtplib_SMTP('127.0.0.1', self.p.ports['submission'])
        self.addCleanup(close_quietly, s)
        s.starttls(context=self.ctx())
        s.ehlo()  # smtplib does not repeat EHLO after STARTTLS by itself
        if login:
            s.login(*ALICE)
        return s

    def raw(self, port='smtp', tls=False):
        r = Raw(self.p.ports[port], self.ctx() if tls else None)
        self.addCleanup(r.close)
        return r

    def assert_reply(self, reply, code, text=None):
        self.assertEqual(reply[0], code, reply)
        if text is not None:
            got = reply[1] if isinstance(reply[1], bytes) else b'\n'.join(reply[1])
            self.assertIn(text.encode(), got, reply)

    def delivered(self, box, subject, before, timeout=10):
        """The one message with this subject that arrived after `before` messages."""
        box.wait_count(before + 1, timeout)
        line = b'\r\nSubject: ' + subject.encode() + b'\r\n'
        found = [m for m in box.messages()[before:] if line in m]
        self.assertEqual(len(found), 1, 'expected one "%s" message' % subject)
        return found[0]

    # -- greeting, EHLO, simple commands -------------------------------------------------
    def test_ehlo_extensions(self):
        s = self.mx()
        code, text = s.ehlo('client.example.org')
        self.assertEqual(code, 250)
        for ext in ('pipelining', 'size', '8bitmime', 'smtputf8', 'enhancedstatuscodes',
                    'chunking', 'dsn', 'starttls', 'auth'):
            self.assertTrue(s.has_extn(ext), ext)
        self.assertEqual(int(s.esmtp_features['size']), 100000)  # max_message = 100K
        self.assertEqual(s.esmtp_features['auth'].split(), ['PLAIN', 'LOGIN'])

    def test_simple_commands(self):
        s = self.mx()
        s.ehlo()
        self.assert_reply(s.noop(), 250, '2.0.0')
        self.assert_reply(s.rset(), 250, '2.0.0')
        self.assert_reply(s.verify('bob'), 252, '2.5.0 Cannot VRFY user')
        self.assert_reply(s.docmd('HELP'), 214)
        self.assert_reply(s.docmd('EXPN', 'staff'), 502)
        self.assert_reply(s.docmd('FOOBAR'), 500, '5.5.2')
        self.assert_reply(s.docmd('RCPT', 'TO:<bob@example.com>'), 503, '5.5.1')
        self.assert_reply(s.docmd('DATA'), 503, '5.5.1')
        self.assert_reply(s.docmd('MAIL', 'FROM:bob@example.com'), 501)
        self.assert_reply(s.docmd('MAIL', 'FROM:<a@x.org> FOO=BAR'), 555, '5.5.4')
        self.assert_reply(s.docmd('MAIL', 'FROM:<a@x.org>'), 250)
        self.assert_reply(s.docmd('MAIL', 'FROM:<a@x.org>'), 503, '5.5.1')
        self.assert_reply(s.docmd('DATA'), 554, '5.5.1')
        self.assert_reply(s.docmd('QUIT'), 221, '2.0.0')

    def test_mail_before_helo(self):
        r = self.raw()
        self.assertEqual(r.greeting[0], 220)
        self.assertEqual(r.cmd('MAIL FROM:<a@x.org>')[0], 503)
        self.assertEqual(r.cmd('HELO client.example.org')[0], 250)
        self.assertEqual(r.cmd('MAIL FROM:<a@x.org>')[0], 250)

    # -- submission ------------------------------------------------------------------------
    def test_submission_587_reaches_bob_over_imap(self):
        before = self.bob.count()
        s = self.submission()
        refused = s.sendmail(ALICE[0], [BOB[0]], msg('via 587', 'line 1\r\n.starts with dot\r\n'))
        self.assertEqual(refused, {})
        s.quit()
        m = self.delivered(self.bob, 'via 587', before)
        self.assertIn(b'\r\n.starts with dot\r\n', m)  # dot-stuffing undone
        received = m.split(b'\r\n\r\n', 1)[0]
        self.assertIn(b'Received: from ', received)
        self.assertIn(b'with ESMTPSA', received)
        self.assertIn(b'authenticated as alice@example.com', received)
        self.assertNotIn(ALICE[1].encode(), m)

    def test_submission_465_implicit_tls(self):
        before = self.bob.count()
        s = smtplib_SMTP_SSL('127.0.0.1', self.p.ports['submissions'], context=self.ctx())
        self.addCleanup(close_quietly, s)
        s.login(*ALICE)
        s.sendmail(ALICE[0], [BOB[0]], msg('via 465'))
        s.quit()
        self.delivered(self.bob, 'via 465', before)

    def test_submission_auth_login_and_alias_sender(self):
        before = self.bob.count()
        s = smtplib_SMTP('127.0.0.1', self.p.ports['submission'])
        self.addCleanup(close_quietly, s)
        s.starttls(context=self.ctx())
        s.ehlo()
        s.user, s.password = ALICE
        self.assert_reply(s.auth('LOGIN', s.auth_login, initial_response_ok=False), 235)
        s.sendmail('sales@example.com', [BOB[0]], msg('from alias', frm='sales@example.com'))
        self.delivered(self.bob, 'from alias', before)

    def test_mail_before_auth_on_587(self):
        s = self.submission(login=False)
        self.assert_reply(s.docmd('MAIL', 'FROM:<alice@example.com>'), 530,
                          '5.7.0 Authentication required')

    def test_spoofed_sender(self):
        s = self.submission()
        self.assert_reply(s.docmd('MAIL', 'FROM:<bob@example.com>'), 553,
                          '5.7.1 Sender address rejected: not owned by user alice@example.com')
        self.assert_reply(s.docmd('MAIL', 'FROM:<>'), 553, '5.7.1')
        self.assert_reply(s.docmd('MAIL', 'FROM:<ALICE@example.com>'), 250)

    def test_sender_through_alias_chain_and_catchall(self):
        # team@ -> sales@ -> alice: the chain delivery follows makes team@ hers to send as
        self.p.cli_ok('alias', 'add', 'team@example.com', 'sales@example.com')
        s = self.submission()
        self.assert_reply(s.docmd('MAIL', 'FROM:<team@example.com>'), 250)
        s.rset()
        # an address caught by the domain's catch-all that leads to alice is hers too
        self.p.cli_ok('domain', 'add', 'example.net')
        self.p.cli_ok('alias', 'add', '@example.net', 'alice@example.com')
        self.assert_reply(s.docmd('MAIL', 'FROM:<anything@example.net>'), 250)
        s.rset()
        # but not one with a mailbox of its own, nor a chain ending elsewhere
        self.p.cli_ok('alias', 'add', 'other@example.com', 'bob@example.com')
        self.assert_reply(s.docmd('MAIL', 'FROM:<other@example.com>'), 553, '5.7.1')
        self.assert_reply(s.docmd('MAIL', 'FROM:<bob@example.com>'), 553, '5.7.1')

    def test_bad_password(self):
        s = self.submission(login=False)
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login(ALICE[0], 'wrong-password')
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertIn(b'5.7.8 Authentication credentials invalid', cm.exception.smtp_error)
        self.assertNotIn('wrong-password', self.p.log())

    def test_authenticated_user_may_send_outside(self):
        # Relaying is for authenticated users: the external recipient is accepted (and
        # queued; whether it leaves is the queue's business, not this test's).
        s = self.submission()
        self.assert_reply(s.docmd('MAIL', 'FROM:<alice@example.com>'), 250)
        self.assert_reply(s.docmd('RCPT', 'TO:<someone@elsewhere.test>'), 250)

    # -- MX -------------------------------------------------------------------------------
    def test_mx_delivery(self):
        before = self.bob.count()
        s = self.mx()
        self.assertEqual(s.sendmail('carol@example.org', [BOB[0]],
                                    msg('mx inbound', frm='carol@example.org')), {})
        m = self.delivered(self.bob, 'mx inbound', before)
        self.assertNotIn(b'authenticated as', m)

    def test_mx_null_sender(self):
        before = self.bob.count()
        s = self.mx()
        s.sendmail('', [BOB[0]], msg('bounce', frm='MAILER-DAEMON@example.org'))
        self.delivered(self.bob, 'bounce', before)

    def test_open_relay_refused(self):
        s = self.mx()
        s.ehlo()
        self.assert_reply(s.docmd('MAIL', 'FROM:<carol@example.org>'), 250)
        self.assert_reply(s.docmd('RCPT', 'TO:<victim@elsewhere.test>'), 550, '5.7.1')

    def test_unknown_recipient(self):
        s = self.mx()
        s.ehlo()
        self.assert_reply(s.docmd('MAIL', 'FROM:<carol@example.org>'), 250)
        self.assert_reply(s.docmd('RCPT', 'TO:<nobody@example.com>'), 550, '5.1.1')
        self.assert_reply(s.docmd('RCPT', 'TO:<bob@example.com>'), 250)

    def test_too_many_recipients(self):
        for i in (1, 2, 3):
            self.p.cli('alias', 'add', 'x%d@example.com' % i, 'bob@example.com')
        s = self.mx()
        s.ehlo()
        s.docmd('MAIL', 'FROM:<carol@example.org>')
        for rcpt in ('bob', 'BOB', 'alice', 'sales', 'x1', 'x2'):  # bob twice counts once
            self.assert_reply(s.docmd('RCPT', 'TO:<%s@example.com>' % rcpt), 250)
        self.assert_reply(s.docmd('RCPT', 'TO:<x3@example.com>'), 452, '4.5.3 Too many recipients')

    def test_dsn_parameters(self):
        before = self.bob.count()
        s = self.mx()
        s.ehlo()
        self.assert_reply(s.docmd('MAIL', 'FROM:<carol@example.org> RET=HDRS ENVID=QQ314159'), 250)
        self.assert_reply(s.docmd('RCPT', 'TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE '
                                  'ORCPT=rfc822;bob@example.com'), 250)
        self.assert_reply(s.docmd('RCPT', 'TO:<alice@example.com> NOTIFY=NEVER,DELAY'), 501)
        self.assert_reply(s.data(msg('dsn')), 250)
        self.delivered(self.bob, 'dsn', before)

    # -- SIZE ------------------------------------------------------------------------------
    def test_size_declared_over_limit(self):
        s = self.mx()
        s.ehlo()
        self.assert_reply(s.docmd('MAIL', 'FROM:<carol@example.org> SIZE=999999999'), 552,
                          '5.2.3 Message exceeds maximum fixed size')
        self.assert_reply(s.docmd('MAIL', 'FROM:<carol@example.org> SIZE=1000'), 250)

    def test_size_exceeded_in_data(self):
        before = self.bob.count()
        s = self.mx()
        s.ehlo()
        big = msg('too big', ('x' * 998 + '\r\n') * 150)  # ~150 KB > 100 KB
        self.assert_reply(s.mail('carol@example.org'), 250)  # no SIZE= given
        self.assert_reply(s.rcpt(BOB[0]), 250)
        self.assert_reply(s.data(big), 552, '5.2.3 Message exceeds maximum fixed size')
        # the session goes on
        self.assertEqual(s.sendmail('carol@example.org', [BOB[0]], msg('after big')), {})
        self.delivered(self.bob, 'after big', before)
        self.assertFalse(any(b'too big' in m for m in self.bob.messages()))

    def test_size_exceeded_in_bdat(self):
        r = self.raw()
        r.cmd('EHLO client.example.org')
        r.cmd('MAIL FROM:<carol@example.org>')
        r.cmd('RCPT TO:<bob@example.com>')
        chunk = b'x' * 60000
        r.send(b'BDAT 60000\r\n' + chunk + b'BDAT 60000\r\n' + chunk + b'BDAT 10 LAST\r\n'
               + b'0123456789')
        self.assertEqual(r.reply()[0], 250)
        code, text = r.reply()
        self.assertEqual(code, 552, text)
        self.assertIn(b'5.2.3', text[0])
        self.assertEqual(r.reply()[0], 503)  # the transaction is over; the chunk was eaten
        self.assertEqual(r.cmd('NOOP')[0], 250)

    # -- DATA, pipelining, BDAT ----------------------------------------------------------------
    def test_pipelining(self):
        before = self.bob.count()
        r = self.raw()
        r.cmd('EHLO client.example.org')
        r.send(b'MAIL FROM:<carol@example.org>\r\nRCPT TO:<nobody@example.com>\r\n'
               b'RCPT TO:<bob@example.com>\r\nDATA\r\n')
        codes = [r.reply()[0] for _ in range(4)]
        self.assertEqual(codes, [250, 550, 250, 354])
        r.send(msg('pipelined') + b'.\r\nMAIL FROM:<carol@example.org>\r\n'
               b'RCPT TO:<bob@example.com>\r\nDATA\r\n')
        self.assertEqual([r.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        r.send(msg('pipelined 2') + b'.\r\nQUIT\r\n')
        self.assertEqual([r.reply()[0] for _ in range(2)], [250, 221])
        self.delivered(self.bob, 'pipelined', before)
        self.delivered(self.bob, 'pipelined 2', before)

    def test_bdat(self):
        before = self.bob.count()
        r = self.raw()
        r.cmd('EHLO client.example.org')
        r.cmd('MAIL FROM:<carol@example.org> BODY=8BITMIME')
        r.cmd('RCPT TO:<bob@example.com>')
        m = msg('chunked', 'first line\r\n.dot line stays\r\n')
        a, b = m[:30], m[30:]
        r.send(b'BDAT %d\r\n' % len(a) + a + b'BDAT %d LAST\r\n' % len(b) + b)
        self.assertEqual(r.reply()[0], 250)
        code, text = r.reply()
        self.assertEqual(code, 250, text)
        # BDAT 0 LAST ends a message whose chunks are all in
        r.cmd('MAIL FROM:<carol@example.org>')
        r.cmd('RCPT TO:<bob@example.com>')
        m2 = msg('chunked 2')
        r.send(b'BDAT %d\r\n' % len(m2) + m2 + b'BDAT 0 LAST\r\n')
        self.assertEqual([r.reply()[0] for _ in range(2)], [250, 250])
        self.assertEqual(r.cmd('DATA')[0], 503)
        got = self.delivered(self.bob, 'chunked', before)
        self.assertIn(b'\r\n.dot line stays\r\n', got)  # BDAT content is not dot-stuffed
        self.delivered(self.bob, 'chunked 2', before)

    def test_bdat_without_transaction_is_consumed(self):
        r = self.raw()
        r.cmd('EHLO client.example.org')
        r.send(b'BDAT 12\r\nNOOP\r\nQUIT\r\n')  # the 12 bytes are data, not commands
        self.assertEqual(r.reply()[0], 503)
        self.assertEqual(r.cmd('NOOP')[0], 250)

    def test_smtputf8_and_8bitmime(self):
        before = self.bob.count()
        s = self.mx()
        s.ehlo()
        s.send('MAIL FROM:<jörg@bücher.example>\r\n'.encode())
        self.assert_reply(s.getreply(), 553, '5.6.7')
        body = ('From: jörg@bücher.example\r\nTo: bob@example.com\r\nSubject: utf8 mail\r\n'
                'Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße, 世界\r\n').encode()
        s.rset()
        self.assertEqual(s.sendmail('jörg@bücher.example', [BOB[0]], body,
                                    mail_options=['SMTPUTF8', 'BODY=8BITMIME']), {})
        m = self.delivered(self.bob, 'utf8 mail', before)
        self.assertIn('Grüße, 世界'.encode(), m)

    def test_smuggling_lf_dot_lf(self):
        self._smuggle(b'\n.\n', 'smuggle lf')

    def test_smuggling_cr_dot_cr(self):
        self._smuggle(b'\r.\r', 'smuggle cr')

    def test_smuggling_lf_dot_crlf(self):
        self._smuggle(b'\n.\r\n', 'smuggle mixed')

    def _smuggle(self, sep, subject):
        before = self.bob.count()
        r = self.raw()
        r.cmd('EHLO client.example.org')
        r.cmd('MAIL FROM:<carol@example.org>')
        r.cmd('RCPT TO:<bob@example.com>')
        self.assertEqual(r.cmd('DATA')[0], 354)
        r.send(b'From: carol@example.org\r\nSubject: ' + subject.encode() + b'\r\n\r\nhello'
               + sep + b'MAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\n'
               b'DATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n')
        self.assertEqual(r.reply()[0], 250)
        self.assertEqual(r.cmd('NOOP')[0], 250)  # no stray replies were queued before it
        r.cmd('QUIT')
        time.sleep(0.3)
        self.assertEqual(self.bob.wait_count(before + 1), before + 1)
        msgs = self.bob.messages()[before:]
        self.assertEqual(len(msgs), 1)
        self.assertIn(b'MAIL FROM:<admin@example.com>', msgs[0])
        self.assertFalse(any(m.startswith(b'Subject: smuggled') for m in msgs))

    # -- STARTTLS ----------------------------------------------------------------------------
    def test_starttls_discards_pipelined_commands(self):
        r = self.raw()
        r.cmd('EHLO client.example.org')
        r.send(b'STARTTLS\r\nMAIL FROM:<carol@example.org>\r\nRCPT TO:<bob@example.com>\r\n')
        code, text = r.reply()
        self.assertEqual(code, 220)
        self.assertIn(b'2.0.0 Ready to start TLS', text[0])
        self.assertEqual(r.buf, b'')
        r.sock = self.ctx().wrap_socket(r.sock, server_hostname='localhost')
        # The first reply over TLS answers our EHLO, not the injected commands, and the
        # state is back to the start: MAIL without EHLO is out of sequence.
        self.assertEqual(r.cmd('MAIL FROM:<carol@example.org>')[0], 503)
        code, lines = r.cmd('EHLO client.example.org')
        self.assertEqual(code, 250)
        self.assertNotIn(b'STARTTLS', lines)
        self.assertEqual(r.cmd('STARTTLS')[0], 503)
        self.assertEqual(r.cmd('NOOP')[0], 250)

    # -- hostile input -----------------------------------------------------------------------
    def test_bad_input_keeps_serving(self):
        r = self.raw()
        r.cmd('EHLO client.example.org')
        r.send(b'A' * (1024 * 1024) + b'\r\n')
        code, text = r.reply()
        self.assertEqual(code, 500, text)
        self.assertEqual(r.cmd(b'NO\x00OP')[0], 500)
        self.assertEqual(r.cmd(bytes(range(1, 256)).replace(b'\n', b'').replace(b'\r', b''))[0],
                         500)
        self.assertEqual(r.cmd('XUNKNOWN')[0], 500)
        self.assertEqual(r.cmd('MAIL FROM:<' + 'a' * 300 + '@example.org>')[0], 501)
        self.assertEqual(r.cmd('NOOP')[0], 250)
        # another client is served meanwhile
        s = self.mx()
        self.assertEqual(s.ehlo()[0], 250)

    def test_too_many_errors_close(self):
        r = self.raw()
        code = None
        for _ in range(30):
            try:
                code = r.cmd('BOGUS')[0]
            except (EOFError, ConnectionResetError, BrokenPipeError):
                break
            if code == 421:
                break
        self.assertEqual(code, 421)
        self.assertTrue(r.closed())

    def test_http_on_smtp_port(self):
        r = self.raw()
        r.send(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(r.reply()[0], 421)
        self.assertTrue(r.closed())

    def test_log_has_transactions_without_secrets(self):
        s = self.submission()
        s.sendmail(ALICE[0], [BOB[0]], msg('logged', 'secret body text 12345\r\n'))
        s.quit()
        time.sleep(0.2)
        log = self.p.log()
        self.assertIn('from=<alice@example.com>', log)
        self.assertNotIn('secret body text 12345', log)
        self.assertNotIn(ALICE[1], log)

    # -- swaks ---------------------------------------------------------------------------------
    def swaks(self, *args):
        if not shutil.which('swaks'):
            self.skipTest('swaks is not installed (scripts/deps.sh --test)')
        r = subprocess.run(['swaks', '--server', '127.0.0.1', '--timeout', '10'] + list(args),
                           capture_output=True, text=True, timeout=60)
        return r

    def test_swaks_submission_starttls_pipelining(self):
        before = self.bob.count()
        r = self.swaks('--port', str(self.p.ports['submission']), '--tls', '--pipeline',
                       '--auth', 'LOGIN', '--auth-user', ALICE[0], '--auth-password', ALICE[1],
                       '--from', ALICE[0], '--to', BOB[0],
                       '--header', 'Subject: swaks 587')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.delivered(self.bob, 'swaks 587', before)

    def test_swaks_465_plain(self):
        before = self.bob.count()
        r = self.swaks('--port', str(self.p.ports['submissions']), '--tls-on-connect',
                       '--auth', 'PLAIN', '--auth-user', ALICE[0], '--auth-password', ALICE[1],
                       '--from', ALICE[0], '--to', BOB[0], '--header', 'Subject: swaks 465')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.delivered(self.bob, 'swaks 465', before)

    def test_swaks_bdat_mx(self):
        before = self.bob.count()
        r = self.swaks('--port', str(self.p.ports['smtp']), '--from', 'carol@example.org',
                       '--to', BOB[0], '--header', 'Subject: swaks mx')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.delivered(self.bob, 'swaks mx', before)

    def test_swaks_relay_refused(self):
        r = self.swaks('--port', str(self.p.ports['smtp']), '--from', 'carol@example.org',
                       '--to', 'victim@elsewhere.test')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('550 5.7.1', r.stdout)


class SmtpNoPlaintextTest(unittest.TestCase):
    """allow_plaintext = no: AUTH only over TLS, also on loopback."""

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(listeners=LISTENERS)
        cls.p.__enter__()
        cls.p.add_demo()

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def test_auth_before_tls_refused_on_587(self):
        s = smtplib_SMTP('127.0.0.1', self.p.ports['submission'])
        self.addCleanup(close_quietly, s)
        s.ehlo()
        self.assertFalse(s.has_extn('auth'))
        self.assertTrue(s.has_extn('starttls'))
        code, text = s.docmd('AUTH', 'PLAIN ' + plain_b64(*ALICE))
        self.assertEqual(code, 538, text)
        self.assertEqual(s.docmd('MAIL', 'FROM:<alice@example.com>')[0], 530)
        s.starttls(context=self.p.tls_context())
        s.ehlo()
        self.assertTrue(s.has_extn('auth'))
        self.assertEqual(s.login(*ALICE)[0], 235)

    def test_mx_offers_auth_only_after_tls(self):
        s = smtplib_SMTP('127.0.0.1', self.p.ports['smtp'])
        self.addCleanup(close_quietly, s)
        s.ehlo()
        self.assertFalse(s.has_extn('auth'))
        s.starttls(context=self.p.tls_context())
        s.ehlo()
        self.assertTrue(s.has_extn('auth'))


class SmtpRateLimitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = start('[smtp]\nrate_per_hour = 3\n')

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def test_hourly_limit(self):
        s = smtplib_SMTP('127.0.0.1', self.p.ports['submission'])
        self.addCleanup(close_quietly, s)
        s.starttls(context=self.p.tls_context())
        s.login(*ALICE)
        for i in range(3):
            self.assertEqual(s.sendmail(ALICE[0], [BOB[0]], msg('rate %d' % i)), {})
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail(ALICE[0], [BOB[0]], msg('rate 3'))
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertIn(b'Administrative Prohibition', cm.exception.smtp_error)
        self.assertEqual(Mailbox(self.p, BOB).wait_count(3), 3)


class SmtpThrottleAndShutdownTest(unittest.TestCase):
    """Own server: the failures throttle 127.0.0.1 and the server is stopped at the end."""

    @classmethod
    def setUpClass(cls):
        cls.p = start('fail_max = 3\n')  # continues the [auth] section of PLAIN_OK

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def test_1_auth_failures_are_throttled(self):
        s = smtplib_SMTP('127.0.0.1', self.p.ports['submission'])
        self.addCleanup(close_quietly, s)
        s.ehlo()
        codes = []
        for _ in range(5):
            codes.append(s.docmd('AUTH', 'PLAIN ' + plain_b64(ALICE[0], 'wrong'))[0])
        self.assertEqual(codes[0], 535)
        self.assertEqual(codes[-1], 454)
        # throttled even with the right password, without revealing that it was right
        code, text = s.docmd('AUTH', 'PLAIN ' + plain_b64(*ALICE))
        self.assertEqual(code, 454, text)
        self.assertIn(b'4.7.0', text)

    def test_2_shutdown_says_goodbye(self):
        r = Raw(self.p.ports['smtp'])
        self.addCleanup(r.close)
        self.assertEqual(r.cmd('EHLO client.example.org')[0], 250)
        self.p.stop()
        code, text = r.reply()
        self.assertEqual(code, 421)
        self.assertIn(b'4.3.2', text[0])


# -- helpers ----------------------------------------------------------------------------------


def smtplib_SMTP(host, port):
    return smtplib.SMTP(host, port, local_hostname='client.example.org', timeout=15)


def smtplib_SMTP_SSL(host, port, context):
    return smtplib.SMTP_SSL(host, port, local_hostname='client.example.org', timeout=15,
                            context=context)


def close_quietly(s):
    try:
        s.close()
    except Exception:
        pass


def plain_b64(user, password):
    return base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode()).decode()


if __name__ == '__main__':
    unittest.main(verbosity=2)
