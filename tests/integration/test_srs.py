"""SRS on external forwards, and MX loop-back detection, end to end.

SRS: mail from an external sender to an alias that forwards outside leaves (through a
smarthost sink, test_dsn.Sink) with an SRS0 envelope sender at the alias's domain; a bounce
to that address comes in over MX and goes on to the original sender; a tampered one is
refused with 550 5.1.1.

Loops: the queue must never hand mail to itself. Checked four ways: an MX host with our
own name (dnsmasq as the resolver), an MX host resolving to our own SMTP listener on
port 25 (dnsmasq; when port 25 is free), a smarthost that is our own listener, and a
remote that greets with our host name. Each ends in a bounce with 5.4.6 in the sender's
INBOX, and no SMTP session of the server with itself."""
import email
import imaplib
import os
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import tempfile
import time
import unittest

import test_dsn
from harness import Polaris, free_port

BOB = ('bob@example.com', 'Bob-Pass1!')
SENDER = 'carol@sender.test'
SRS0 = re.compile(r'^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=sender\.test=carol@example\.com$')


def find_with(sink, rcpt, needle, timeout=20):
    """The message to rcpt whose data has needle (reports may arrive in any order)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with sink.lock:
            for m in sink.messages:
                if any('<%s>' % rcpt in r for r in m['rcpts']) and needle in m['data']:
                    return m
        time.sleep(0.1)
    return None


def mail_from(m):
    return re.match(r'MAIL FROM:<([^>]*)>', m['mail']).group(1)


def mx_send(p, sender, rcpt, body):
    """One message over MX; returns the RCPT reply (code, text) and the end-of-data one."""
    c = smtplib.SMTP('127.0.0.1', p.ports['smtp'], timeout=20)
    try:
        c.ehlo('client.test')
        assert c.mail(sender)[0] == 250
        code, text = c.rcpt(rcpt)
        if code != 250:
            return (code, text), None
        return (code, text), c.data(body.encode())
    finally:
        c.quit()


def message(subject):
    return ('From: Carol <%s>\r\nTo: someone\r\nSubject: %s\r\nMessage-ID: <%s@sender.test>\r\n'
            '\r\nhello\r\n' % (SENDER, subject, subject.replace(' ', '.')))


def wait_bounce(p, needle, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = imaplib.IMAP4('127.0.0.1', p.ports['imap'], timeout=10)
        try:
            c.login(*BOB)
            typ, data = c.select('INBOX', readonly=True)
            if int(data[0]):
                typ, data = c.fetch('1:*', '(BODY.PEEK[])')
                for d in data:
                    if isinstance(d, tuple) and needle in d[1]:
                        return email.message_from_bytes(d[1])
        finally:
            c.logout()
        time.sleep(0.3)
    return None


class SrsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = test_dsn.Sink(free_port())
        cls.p = Polaris(listeners=('smtp', 'imap'),
                        extra_config='[smtp]\nsmarthost = 127.0.0.1:%d\n'
                                     % cls.sink.server_address[1])
        cls.p.__enter__()
        cls.p.add_demo()
        cls.p.cli_ok('alias', 'add', 'fwd@example.com', 'dest@far.test')
        cls.p.cli_ok('alias', 'add', 'gone@example.com', 'reject2@far.test')

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)
        cls.sink.shutdown()
        cls.sink.server_close()

    def test_1_forward_rewritten_and_bounce_reversed(self):
        rcpt, data = mx_send(self.p, SENDER, 'fwd@example.com', message('srs one'))
        self.assertEqual(data[0], 250, data)
        fwd = self.sink.find('dest@far.test')
        self.assertIsNotNone(fwd, self.p.log())
        srs = mail_from(fwd)
        self.assertRegex(srs, SRS0)
        key = os.path.join(self.p.data_dir, 'srs.key')
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        # the next hop bounces to the SRS address: it reaches carol, from the null sender
        rcpt, data = mx_send(self.p, '', srs, 'From: MAILER-DAEMON@far.test\r\n'
                             'Subject: Undelivered: srs one\r\n\r\nsorry\r\n')
        self.assertEqual(rcpt[0], 250, rcpt)
        self.assertEqual(data[0], 250, data)
        back = find_with(self.sink, SENDER, b'Undelivered: srs one')
        self.assertIsNotNone(back, self.p.log())
        self.assertEqual(mail_from(back), '')
        self.assertIn(b'Undelivered: srs one', back['data'])
        # case folded on the way: still valid
        rcpt, data = mx_send(self.p, '', srs.lower(), 'Subject: folded\r\n\r\nx\r\n')
        self.assertEqual(rcpt[0], 250, rcpt)
        # a forged hash, or a forged original address: 550 5.1.1
        h = srs[5:9]
        forged = srs.replace('=' + h + '=', '=' + ('AAAA' if h != 'AAAA' else 'BBBB') + '=')
        rcpt, data = mx_send(self.p, '', forged, 'Subject: forged\r\n\r\nx\r\n')
        self.assertEqual(rcpt[0], 550, rcpt)
        self.assertTrue(rcpt[1].startswith(b'5.1.1'), rcpt)
        rcpt, data = mx_send(self.p, '', srs.replace('=carol@', '=mallory@'), 'x\r\n')
        self.assertEqual(rcpt[0], 550, rcpt)

    def test_2_bounce_of_a_forward_reaches_the_sender(self):
        """The next hop refuses the forward: our bounce goes to the SRS address, which is
        ours, reversed, and sent on to the original sender."""
        rcpt, data = mx_send(self.p, SENDER, 'gone@example.com', message('srs two'))
        self.assertEqual(data[0], 250, data)
        back = find_with(self.sink, SENDER, b'reject2@far.test')
        self.assertIsNotNone(back, self.p.log())
        self.assertEqual(mail_from(back), '')
        self.assertIn(b'Final-Recipient: rfc822; reject2@far.test', back['data'])
        self.assertIn(b'srs two', back['data'])

    def test_3_local_sender_not_rewritten(self):
        with self.sink.lock:
            since = len(self.sink.messages)
        r = self.p.cli('mail', 'deliver', '--from', 'bob@example.com', 'fwd@example.com',
                       input=message('srs three').replace(SENDER, 'bob@example.com'))
        self.assertEqual(r.returncode, 0, r.stderr)
        fwd = self.sink.find('dest@far.test', since=since)
        self.assertIsNotNone(fwd, self.p.log())
        self.assertEqual(mail_from(fwd), 'bob@example.com')


def polaris_named(name, listeners, extra):
    """A server whose host name is name (the harness writes localhost)."""
    p = Polaris(start=False, listeners=listeners,
                extra_config=extra + '[auth]\nallow_plaintext = loopback\n')
    p.__enter__()
    with open(p.config_path) as f:
        text = f.read()
    with open(p.config_path, 'w') as f:
        f.write(text.replace('hostname = localhost', 'hostname = ' + name, 1))
    return p


def deliver_out(p, target, subject):
    p.cli_ok('alias', 'add', 'out-%s@example.com' % subject, target)
    r = p.cli('mail', 'deliver', '--from', 'bob@example.com', 'out-%s@example.com' % subject,
              input='From: bob@example.com\r\nSubject: %s\r\nMessage-ID: <%s@example.com>\r\n'
                    '\r\nhi\r\n' % (subject, subject))
    assert r.returncode == 0, r.stderr


def assert_loop_bounce(t, p, target):
    b = wait_bounce(p, target.encode())
    t.assertIsNotNone(b, p.log())
    text = b.as_string()
    t.assertIn('Final-Recipient: rfc822; ' + target, text)
    t.assertIn('Status: 5.4.6', text)
    t.assertIn('would loop', text)
    t.assertIsNone(re.search(r'smtp: 127\.0\.0\.1: id=', p.log()), 'the server talked to itself')


class LoopTest(unittest.TestCase):
    def test_smarthost_is_self(self):
        p = polaris_named('localhost', ('smtp', 'imap'), '')
        try:
            with open(p.config_path, 'a') as f:
                f.write('\n[smtp]\nsmarthost = 127.0.0.1:%d\n' % p.ports['smtp'])
            p.start()
            p.add_demo()
            deliver_out(p, 'x@far.test', 'self')
            assert_loop_bounce(self, p, 'x@far.test')
        finally:
            p.__exit__(None, None, None)

    def test_remote_greets_with_our_name(self):
        sink = test_dsn.Sink(free_port())
        sink.name = 'mx.polaris.test'
        p = polaris_named('mx.polaris.test', ('smtp', 'imap'),
                          '[smtp]\nsmarthost = 127.0.0.1:%d\n' % sink.server_address[1])
        try:
            p.start()
            p.add_demo()
            deliver_out(p, 'y@far.test', 'banner')
            assert_loop_bounce(self, p, 'y@far.test')
            self.assertEqual(sink.messages, [])
        finally:
            p.__exit__(None, None, None)
            sink.shutdown()
            sink.server_close()


class MxLoopTest(unittest.TestCase):
    """dnsmasq answers for the MX records: named.test's MX is our own host name,
    loop.test's resolves to 127.0.0.1, where our SMTP listener is on port 25."""

    @classmethod
    def setUpClass(cls):
        dnsmasq = shutil.which('dnsmasq') or '/usr/sbin/dnsmasq'
        if not os.path.exists(dnsmasq):
            raise unittest.SkipTest('dnsmasq not installed')
        cls.tmp = tempfile.mkdtemp(prefix='polaris-loop-')
        cls.dport = free_port()
        cls.dns = subprocess.Popen(
            [dnsmasq, '--keep-in-foreground', '--no-resolv', '--no-hosts',
             '--listen-address=127.0.0.1', '--bind-interfaces', '--port=%d' % cls.dport,
             '--user=root' if os.getuid() == 0 else '--user=' + os.environ.get('USER', 'nobody'),
             '--pid-file=' + os.path.join(cls.tmp, 'dnsmasq.pid'),
             '--mx-host=named.test,mx.polaris.test,10', '--mx-host=loop.test,mx.loop.test,10',
             '--host-record=mx.loop.test,127.0.0.1'],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        if cls.dns.poll() is not None:
            err = cls.dns.stderr.read()
            cls.dns.stderr.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise unittest.SkipTest('dnsmasq did not start: %s' % err)

    @classmethod
    def tearDownClass(cls):
        cls.dns.terminate()
        cls.dns.wait()
        cls.dns.stderr.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_mx_named_like_us(self):
        p = polaris_named('mx.polaris.test', ('imap',),
                          '[smtp]\nresolver = 127.0.0.1:%d\n' % self.dport)
        try:
            p.start()
            p.add_demo()
            deliver_out(p, 'z@named.test', 'named')
            assert_loop_bounce(self, p, 'z@named.test')
        finally:
            p.__exit__(None, None, None)

    def test_mx_resolves_to_our_listener(self):
        p = None
        for attempt in range(20):  # port 25 may be busy for a moment (test_queue's MX sink)
            try:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(('127.0.0.1', 25))
                break
            except OSError:
                time.sleep(0.5)
        else:
            self.skipTest('cannot listen on port 25')
        p = polaris_named('localhost', ('imap',), 'smtp = 127.0.0.1:25\n'
                          '[smtp]\nresolver = 127.0.0.1:%d\n' % self.dport)
        try:
            try:
                p.start()
            except AssertionError as e:  # taken between the check and the start
                self.skipTest('cannot listen on port 25: %s' % str(e)[:200])
            p.add_demo()
            deliver_out(p, 'w@loop.test', 'addr')
            assert_loop_bounce(self, p, 'w@loop.test')
        finally:
            p.__exit__(None, None, None)


if __name__ == '__main__':
    unittest.main(verbosity=2)
