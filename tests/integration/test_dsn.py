"""DSN (RFC 3461/3464) end to end, and <postmaster> (RFC 5321 §4.5.1).

An SMTP client (smtplib) sends over the MX listener with NOTIFY/ORCPT/RET/ENVID; the
outbound queue goes through a smarthost that is a small SMTP sink of this file, which
records the MAIL and RCPT lines it was given and can offer DSN or not. Reports for the
external sender therefore arrive at the sink too, where the test parses them with
Python's email package."""
import email
import imaplib
import smtplib
import socket
import socketserver
import threading
import time
import unittest

from harness import Polaris, free_port

ALICE = ('alice@example.com', 'Alice-Pass1!')
SENDER = 'carol@sender.test'


class Sink(socketserver.ThreadingTCPServer):
    """A minimal SMTP server: keeps (mail line, rcpt lines, data) per message; offers DSN
    when self.dsn; recipients starting with 'reject' get 550."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port):
        super().__init__(('127.0.0.1', port), SinkHandler)
        self.dsn = True
        self.name = 'sink.test'  # the name it greets with
        self.lock = threading.Lock()
        self.messages = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def find(self, rcpt, timeout=20, since=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for m in self.messages[since:]:
                    if any(('<%s>' % rcpt) in r for r in m['rcpts']):
                        return m
            time.sleep(0.1)
        return None


class SinkHandler(socketserver.StreamRequestHandler):
    def say(self, s):
        self.wfile.write(s.encode() + b'\r\n')

    def handle(self):
        srv = self.server
        self.say('220 %s ESMTP' % srv.name)
        mail, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode('utf-8', 'replace').rstrip('\r\n')
            verb = cmd[:4].upper()
            if verb == 'EHLO':
                self.say('250-' + srv.name)
                self.say('250-DSN' if srv.dsn else '250-HELP')
                self.say('250 8BITMIME')
            elif verb == 'MAIL':
                mail, rcpts = cmd, []
                self.say('250 2.1.0 ok')
            elif verb == 'RCPT':
                if cmd[8:].startswith('<reject'):
                    self.say('550 5.1.1 no such user here')
                else:
                    rcpts.append(cmd)
                    self.say('250 2.1.5 ok')
            elif verb == 'DATA':
                self.say('354 go on')
                data = b''
                while True:
                    l = self.rfile.readline()
                    if not l or l == b'.\r\n':
                        break
                    data += l[1:] if l.startswith(b'.') else l
                with srv.lock:
                    srv.messages.append({'mail': mail, 'rcpts': rcpts, 'data': data})
                self.say('250 2.0.0 kept')
            elif verb == 'QUIT':
                self.say('221 bye')
                return
            else:
                self.say('250 ok')


def report(data):
    """(email message, the message/delivery-status part as text) of a report."""
    m = email.message_from_bytes(data)
    for part in m.walk():
        if part.get_content_type() == 'message/delivery-status':
            return m, part.as_string()
    return m, None


def mx(p):
    c = smtplib.SMTP('127.0.0.1', p.ports['smtp'], timeout=20)
    c.ehlo('client.sender.test')
    return c


def msg(subject, mid):
    return ('From: Carol <%s>\r\nTo: someone\r\nSubject: %s\r\nMessage-ID: <%s@sender.test>\r\n'
            '\r\nbody of %s\r\n' % (SENDER, subject, mid, subject)).encode()


def inbox_subjects(p, who):
    c = imaplib.IMAP4('127.0.0.1', p.ports['imap'], timeout=10)
    try:
        c.login(*who)
        typ, data = c.select('INBOX', readonly=True)
        if int(data[0]) == 0:
            return []
        typ, data = c.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
        return [email.message_from_bytes(d[1])['Subject'] for d in data if isinstance(d, tuple)]
    finally:
        c.logout()


class DsnTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = Sink(free_port())
        port = cls.sink.server_address[1]
        cls.p = Polaris(listeners=('smtp', 'imap'),
                        extra_config='[auth]\nallow_plaintext = loopback\n[smtp]\n'
                                     'smarthost = 127.0.0.1:%d\npostmaster = alice@example.com\n'
                                     % port)
        cls.p.__enter__()
        cls.p.add_demo()
        cls.p.cli_ok('alias', 'add', 'fwd@example.com', 'dest@far.test')
        cls.p.cli_ok('alias', 'add', 'gone@example.com', 'reject1@far.test')
        cls.p.cli_ok('alias', 'add', 'pair@example.com', 'alice@example.com')
        cls.p.cli_ok('alias', 'add', 'pair@example.com', 'bob@example.com')

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)
        cls.sink.shutdown()
        cls.sink.server_close()

    def send(self, rcpt, subject, mail_opts=(), rcpt_opts=()):
        c = mx(self.p)
        try:
            code, text = c.mail(SENDER, list(mail_opts))
            self.assertEqual(code, 250, text)
            code, text = c.rcpt(rcpt, list(rcpt_opts))
            self.assertEqual(code, 250, text)
            code, text = c.data(msg(subject, subject.replace(' ', '-')))
            self.assertEqual(code, 250, text)
        finally:
            c.quit()

    def test_1_delivered_report(self):
        """NOTIFY=SUCCESS for a local mailbox: Action: delivered, with ORCPT and ENVID, the
        header only (RET=HDRS), from the null sender."""
        self.send('alice@example.com', 'local success', ['RET=HDRS', 'ENVID=env+2B1'],
                  ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;Alice+2Bx@Example.COM'])
        m = self.sink.find(SENDER)
        self.assertIsNotNone(m, self.p.log())
        self.assertEqual(m['mail'].split()[1], 'FROM:<>')
        r, status = report(m['data'])
        self.assertEqual(r.get_content_type(), 'multipart/report')
        self.assertEqual(r['Subject'], 'Successful Mail Delivery Report')
        self.assertIn('Original-Envelope-Id: env+1', status)
        self.assertIn('Original-Recipient: rfc822;Alice+x@Example.COM\n'
                      'Final-Recipient: rfc822; alice@example.com\n'
                      'Action: delivered\nStatus: 2.0.0', status)
        types = [part.get_content_type() for part in r.walk()]
        self.assertIn('text/rfc822-headers', types)
        self.assertNotIn(b'body of local success', m['data'])
        self.assertIn('local success', inbox_subjects(self.p, ALICE))

    def test_2_expanded_report(self):
        with self.sink.lock:
            since = len(self.sink.messages)
        self.send('pair@example.com', 'expanded', rcpt_opts=['NOTIFY=SUCCESS'])
        m = self.sink.find(SENDER, since=since)
        self.assertIsNotNone(m, self.p.log())
        r, status = report(m['data'])
        self.assertIn('Final-Recipient: rfc822; pair@example.com\nAction: expanded', status)

    def test_3_relayed_without_dsn(self):
        """A next hop without DSN: the forward goes out plain, and we report 'relayed'."""
        self.sink.dsn = False
        try:
            with self.sink.lock:
                since = len(self.sink.messages)
            self.send('fwd@example.com', 'relayed', rcpt_opts=['NOTIFY=SUCCESS'])
            fwd = self.sink.find('dest@far.test', since=since)
            self.assertIsNotNone(fwd, self.p.log())
            self.assertEqual(fwd['rcpts'], ['RCPT TO:<dest@far.test>'])
            m = self.sink.find(SENDER, since=since)
            self.assertIsNotNone(m, self.p.log())
            r, status = report(m['data'])
            self.assertIn('Original-Recipient: rfc822;fwd@example.com\n'
                          'Final-Recipient: rfc822; dest@far.test\nAction: relayed', status)
            self.assertIn('Remote-MTA: dns; 127.0.0.1', status)
        finally:
            self.sink.dsn = True

    def test_4_passed_to_dsn_hop(self):
        """A DSN next hop gets NOTIFY, ORCPT, RET and ENVID, and we send no report."""
        with self.sink.lock:
            since = len(self.sink.messages)
        self.send('fwd@example.com', 'passed on', ['RET=FULL', 'ENVID=abc+3D1'],
                  ['NOTIFY=SUCCESS,DELAY', 'ORCPT=rfc822;fwd@example.com'])
        fwd = self.sink.find('dest@far.test', since=since)
        self.assertIsNotNone(fwd, self.p.log())
        self.assertEqual(fwd['rcpts'], ['RCPT TO:<dest@far.test> NOTIFY=SUCCESS,DELAY '
                                        'ORCPT=rfc822;fwd@example.com'])
        self.assertIn(' RET=FULL', fwd['mail'])
        self.assertIn(' ENVID=abc+3D1', fwd['mail'])
        self.assertIsNone(self.sink.find(SENDER, timeout=2, since=since))

    def test_5_never(self):
        """NOTIFY=NEVER: a 550 at the next hop makes no bounce; without it, it does."""
        with self.sink.lock:
            since = len(self.sink.messages)
        self.send('gone@example.com', 'never tell', rcpt_opts=['NOTIFY=NEVER'])
        self.send('gone@example.com', 'do tell', rcpt_opts=['NOTIFY=FAILURE'])
        m = self.sink.find(SENDER, since=since)
        self.assertIsNotNone(m, self.p.log())
        r, status = report(m['data'])
        self.assertIn('Action: failed', status)
        self.assertIn(b'do tell', m['data'])
        time.sleep(1)
        with self.sink.lock:
            reports = [x for x in self.sink.messages[since:]
                       if any('<%s>' % SENDER in y for y in x['rcpts'])]
        self.assertEqual(len(reports), 1, [x['data'][:300] for x in reports])
        self.assertNotIn(b'never tell', reports[0]['data'])

    def test_6_postmaster(self):
        """<postmaster> in any case, and postmaster@ of a hosted domain without its own,
        reach [smtp] postmaster."""
        before = len(inbox_subjects(self.p, ALICE))
        for rcpt in ('<postmaster>', '<PostMaster>', '<postmaster@example.com>'):
            c = mx(self.p)
            try:
                self.assertEqual(c.mail(SENDER)[0], 250)
                code, text = c.docmd('RCPT TO:' + rcpt)
                self.assertEqual(code, 250, text)
                code, text = c.data(msg('to postmaster ' + rcpt, 'pm' + str(abs(hash(rcpt)))))
                self.assertEqual(code, 250, text)
            finally:
                c.quit()
        subjects = inbox_subjects(self.p, ALICE)
        self.assertEqual(len(subjects), before + 3, subjects)
        self.assertIn('to postmaster <PostMaster>', subjects)


class PostmasterUnsetTest(unittest.TestCase):
    """Nothing configured and the host name is not a hosted domain: 550 5.1.1, clearly."""

    def test_unset(self):
        with Polaris(listeners=('smtp',)) as p:
            p.add_demo()
            c = mx(p)
            try:
                self.assertEqual(c.mail(SENDER)[0], 250)
                code, text = c.docmd('RCPT TO:<Postmaster>')
                self.assertEqual(code, 550)
                self.assertEqual(text, b'5.1.1 <postmaster>: No postmaster mailbox is set up here')
                code, text = c.docmd('RCPT TO:<postmaster@example.com>')
                self.assertEqual(code, 550)
                self.assertTrue(text.startswith(b'5.1.1 '), text)
                # a domain's own postmaster mailbox is used as it is
                p.cli_ok('alias', 'add', 'postmaster@example.com', 'bob@example.com')
                code, text = c.docmd('RCPT TO:<postmaster@example.com>')
                self.assertEqual(code, 250, text)
            finally:
                c.quit()


if __name__ == '__main__':
    unittest.main(verbosity=2)
