"""The outbound queue end to end: polaris delivers through a smarthost to a local sink MX
(Python's aiosmtpd, with STARTTLS) — DKIM-signed (checked with dkimpy against the record
`domain dkim` / `domain dns` print), bounces for 550 and for an expired lifetime in the
sender's INBOX (over IMAP), `queue list/flush/del`, a kill -9 with mail queued, and the
MX route through a DNS server of the test's own (dnsmasq) when the machine allows it."""
import email
import imaplib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Polaris, free_port

from aiosmtpd.controller import Controller
import dkim

BOB = ('bob@example.com', 'Bob-Pass1!')


class Sink:
    """An aiosmtpd handler: recipients starting with 'reject' get 550, 'later' 451 while
    deferring; everything else is kept with whether the session was TLS."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.deferring = True

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split('@')[0]
        if local.startswith('reject'):
            return '550 5.1.1 <%s>: no such user here' % address
        if local.startswith('later') and self.deferring:
            return '451 4.3.0 try again later'
        envelope.rcpt_tos.append(address)
        return '250 2.1.5 OK'

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({'from': envelope.mail_from, 'to': list(envelope.rcpt_tos),
                                  'data': envelope.original_content or envelope.content,
                                  'tls': session.ssl is not None})
        return '250 2.0.0 accepted'

    def wait(self, rcpt, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for m in self.messages:
                    if rcpt in m['to']:
                        return m
            time.sleep(0.1)
        return None


def start_sink(tmp, port, handler):
    cert, key = os.path.join(tmp, 'sink.pem'), os.path.join(tmp, 'sink.key')
    if not os.path.exists(cert):
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                        '-subj', '/CN=sink.test', '-keyout', key, '-out', cert],
                       check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    c = Controller(handler, hostname='127.0.0.1', port=port, tls_context=ctx,
                   require_starttls=False)
    c.start()
    return c


def message(to, subject, mid):
    return ('From: Bob <bob@example.com>\r\nTo: %s\r\nSubject: %s\r\n'
            'Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <%s@example.com>\r\n'
            'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
            'Hello,\r\n.leading dot\r\n\r\nBob\r\n' % (to, subject, mid))


def inbox(p, who):
    """(subject, email.message) of every message in who's INBOX."""
    c = imaplib.IMAP4('127.0.0.1', p.ports['imap'], timeout=10)
    try:
        c.login(*who)
        typ, count = c.select('INBOX', readonly=True)
        if int(count[0]) == 0:
            return []
        typ, data = c.fetch('1:*', '(BODY.PEEK[])')
        msgs = [email.message_from_bytes(d[1]) for d in data if isinstance(d, tuple)]
        return [(m['Subject'], m) for m in msgs]
    finally:
        c.logout()


def wait_bounce(p, rcpt, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for subject, m in inbox(p, BOB):
            if subject and subject.startswith('Undelivered') and rcpt in m.as_string():
                return m
        time.sleep(0.3)
    return None


def status_part(m):
    for part in m.walk():
        if part.get_content_type() == 'message/delivery-status':
            return part
    return None


class QueueTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='polaris-sink-')
        cls.sink = Sink()
        cls.sink_port = free_port()
        cls.ctl = start_sink(cls.tmp, cls.sink_port, cls.sink)
        cls.p = Polaris(listeners=('imap',),
                        extra_config='[auth]\nallow_plaintext = loopback\n'
                                     '[smtp]\nsmarthost = 127.0.0.1:%d\n' % cls.sink_port)
        cls.p.__enter__()
        p = cls.p
        p.add_demo()
        p.cli_ok('domain', 'dkim', 'example.com', '--enable')
        recs = json.loads(p.cli_ok('domain', 'dns', 'example.com', json=True).stdout)
        cls.dkim_rec = [r for r in recs if r['name'] == 'polaris._domainkey.example.com.']
        p.cli_ok('alias', 'add', 'team@example.com', 'someone@external.test')
        p.cli_ok('alias', 'add', 'gone@example.com', 'reject1@external.test')
        p.cli_ok('alias', 'add', 'slow@example.com', 'later1@external.test')
        p.cli_ok('alias', 'add', 'slow2@example.com', 'later2@external.test')
        p.cli_ok('alias', 'add', 'crash@example.com', 'after-crash@external.test')

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)
        cls.ctl.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def deliver(self, rcpt, subject, mid):
        r = self.p.cli('mail', 'deliver', '--from', 'bob@example.com', rcpt,
                       input=message(rcpt, subject, mid))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def queue(self):
        return json.loads(self.p.cli_ok('queue', 'list', json=True).stdout)

    def test_1_dkim_signed_through_alias(self):
        self.assertEqual(len(self.dkim_rec), 1)
        self.assertEqual(self.dkim_rec[0]['type'], 'TXT')
        self.assertTrue(self.dkim_rec[0]['value'].startswith('v=DKIM1; k=rsa; p='))
        self.deliver('team@example.com', 'signed', 'm1')
        m = self.sink.wait('someone@external.test')
        self.assertIsNotNone(m, self.p.log())
        self.assertEqual(m['from'], 'bob@example.com')
        self.assertTrue(m['tls'], 'STARTTLS was offered but not used')
        data = m['data']
        self.assertTrue(data.startswith(b'DKIM-Signature: '), data[:200])
        self.assertIn(b'\r\n.leading dot\r\n', data)
        txt = self.dkim_rec[0]['value'].encode()

        def dns(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            return txt if name.rstrip('.') == 'polaris._domainkey.example.com' else None
        self.assertTrue(dkim.verify(data, dnsfunc=dns), data[:600])
        # tampering breaks it
        self.assertFalse(dkim.verify(data.replace(b'Hello,', b'Hullo,'), dnsfunc=dns))

    def test_2_bounce_on_550(self):
        self.deliver('gone@example.com', 'will bounce', 'm2')
        b = wait_bounce(self.p, 'reject1@external.test')
        self.assertIsNotNone(b, self.p.log())
        self.assertEqual(b.get_content_type(), 'multipart/report')
        self.assertEqual(b.get_param('report-type'), 'delivery-status')
        self.assertIn('MAILER-DAEMON@', b['From'])
        st = status_part(b)
        self.assertIsNotNone(st)
        text = st.as_string()
        self.assertIn('Reporting-MTA: dns; localhost', text)
        self.assertIn('Final-Recipient: rfc822; reject1@external.test', text)
        self.assertIn('Action: failed', text)
        self.assertIn('Status: 5.1.1', text)
        self.assertIn('Diagnostic-Code: smtp; 550 5.1.1', text)
        self.assertIn('will bounce', b.as_string())  # the original comes back
        self.assertFalse([q for q in self.queue() if q['recipients'][0]['address']
                          == 'reject1@external.test'])

    def test_3_list_flush_del(self):
        self.sink.deferring = True
        self.deliver('slow@example.com', 'deferred', 'm3')
        self.deliver('slow2@example.com', 'to delete', 'm4')
        deadline = time.time() + 20
        while time.time() < deadline:
            q = self.queue()
            if len(q) == 2 and all(x['attempts'] >= 1 for x in q):
                break
            time.sleep(0.2)
        self.assertEqual(len(q), 2, q)
        for x in q:
            self.assertEqual(x['sender'], 'bob@example.com')
            self.assertEqual(x['recipients'][0]['status'], 'queued')
            self.assertIn('451', x['recipients'][0]['diag'])
            self.assertGreater(x['size'], 0)
        human = self.p.cli_ok('queue', 'list').stdout
        self.assertIn('later1@external.test', human)
        victim = [x['id'] for x in q if x['recipients'][0]['address'] == 'later2@external.test']
        self.p.cli_ok('queue', 'del', victim[0])
        self.assertEqual(self.p.cli('queue', 'del', victim[0]).returncode, 1)
        self.assertEqual(len(self.queue()), 1)
        # next attempt is minutes away: flush makes it now
        self.sink.deferring = False
        self.p.cli_ok('queue', 'flush')
        self.assertIsNotNone(self.sink.wait('later1@external.test'), self.p.log())
        self.assertIsNone(self.sink.wait('later2@external.test', timeout=2))
        deadline = time.time() + 10
        while self.queue() and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.queue(), [])

    def test_4_kill_and_restart(self):
        self.p.stop(signal.SIGKILL)
        # queued by the CLI while the server is down: on disk only
        self.deliver('crash@example.com', 'after crash', 'm5')
        self.assertEqual(len(self.queue()), 1)
        self.p.start()
        self.assertIsNotNone(self.sink.wait('after-crash@external.test'), self.p.log())


class ExpiryTest(unittest.TestCase):
    """Nothing listens and the lifetime is a minute: the sender gets a bounce saying so."""

    def test_lifetime_bounce(self):
        dead = free_port()
        with Polaris(listeners=('imap',),
                     extra_config='[auth]\nallow_plaintext = loopback\n[smtp]\n'
                                  'smarthost = 127.0.0.1:%d\nqueue_lifetime = 60\n' % dead) as p:
            p.add_demo()
            p.cli_ok('alias', 'add', 'far@example.com', 'nobody@unreachable.test')
            r = p.cli('mail', 'deliver', '--from', 'bob@example.com', 'far@example.com',
                      input=message('far@example.com', 'expires', 'e1'))
            self.assertEqual(r.returncode, 0, r.stderr)
            b = wait_bounce(p, 'nobody@unreachable.test', timeout=100)
            self.assertIsNotNone(b, p.log())
            text = status_part(b).as_string()
            self.assertIn('Action: failed', text)
            self.assertIn('Status: 4.4.7', text)
            self.assertIn('Diagnostic-Code: X-Polaris; delivery time expired', text)


class MxTest(unittest.TestCase):
    """MX routing through a resolver of the test's own: dnsmasq on a loopback port says
    external.test's MX is mx.external.test at 127.0.0.1, whose port 25 is a sink. Needs
    dnsmasq and the right to listen on port 25."""

    def test_mx_route(self):
        if not shutil.which('dnsmasq') and not os.path.exists('/usr/sbin/dnsmasq'):
            self.skipTest('dnsmasq not installed')
        sink = Sink()
        tmp = tempfile.mkdtemp(prefix='polaris-mx-')
        try:
            try:
                ctl = start_sink(tmp, 25, sink)
            except Exception as e:  # not root, or port 25 taken
                self.skipTest('cannot listen on port 25: %s' % e)
            dport = free_port()
            dns = subprocess.Popen([shutil.which('dnsmasq') or '/usr/sbin/dnsmasq',
                                    '--keep-in-foreground', '--no-resolv', '--no-hosts',
                                    '--listen-address=127.0.0.1', '--bind-interfaces',
                                    '--port=%d' % dport, '--user=root' if os.getuid() == 0
                                    else '--user=' + os.environ.get('USER', 'nobody'),
                                    '--pid-file=' + os.path.join(tmp, 'dnsmasq.pid'),
                                    '--mx-host=external.test,mx.external.test,10',
                                    '--host-record=mx.external.test,127.0.0.1'],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                time.sleep(0.5)
                if dns.poll() is not None:
                    self.skipTest('dnsmasq did not start: %s' % dns.stderr.read())
                with Polaris(listeners=('imap',),
                             extra_config='[smtp]\nresolver = 127.0.0.1:%d\n' % dport) as p:
                    p.add_demo()
                    p.cli_ok('alias', 'add', 'mx@example.com', 'viamx@external.test')
                    r = p.cli('mail', 'deliver', '--from', 'bob@example.com', 'mx@example.com',
                              input=message('mx@example.com', 'via mx', 'x1'))
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertIsNotNone(sink.wait('viamx@external.test'), p.log())
            finally:
                dns.terminate()
                dns.wait()
                dns.stderr.close()
                ctl.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    unittest.main(verbosity=2)
