"""The delivery pipeline end to end: `polaris mail deliver` (the LDA-style CLI) against a
serving polaris, checked over IMAP with Python's imaplib — aliases with and without their
own mailbox, catch-all, blackhole, unknown recipients, relaying, loops, idempotent retries
and auto-replies."""
import email
import imaplib
import json
import unittest

from harness import Polaris

ALICE = ('alice@example.com', 'Alice-Pass1!')
BOB = ('bob@example.com', 'Bob-Pass1!')


def message(to, subject, mid, extra='', body='Hello.'):
    return ('From: Carol <carol@internet.test>\r\nTo: %s\r\nSubject: %s\r\n'
            'Message-ID: <%s@internet.test>\r\n%s\r\n%s\r\n' % (to, subject, mid, extra, body))


class DeliverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(listeners=('imap',), extra_config='[auth]\nallow_plaintext = loopback\n')
        cls.p.__enter__()
        cls.p.add_demo()
        p = cls.p
        p.cli_ok('alias', 'add', 'sales@example.com', 'alice@example.com', 'bob@example.com')
        p.cli_ok('alias', 'add', 'spam@example.com', ':blackhole')
        p.cli_ok('alias', 'add', 'info@example.com', 'sales@example.com')

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    # -- helpers ---------------------------------------------------------------------
    def deliver(self, rcpts, msg, sender='carol@internet.test'):
        r = self.p.cli('mail', 'deliver', '--from', sender, *rcpts, input=msg, json=True)
        out = json.loads(r.stdout)
        return r.returncode, {x['recipient']: x for x in out['recipients']}

    def subjects(self, who):
        c = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
        try:
            c.login(*who)
            typ, count = c.select('INBOX', readonly=True)
            self.assertEqual(typ, 'OK')
            if int(count[0]) == 0:
                return []
            typ, data = c.fetch('1:*', '(BODY.PEEK[HEADER])')
            return [email.message_from_bytes(d[1])['Subject']
                    for d in data if isinstance(d, tuple)]
        finally:
            c.logout()

    def headers_of(self, who, subject):
        c = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'], timeout=10)
        try:
            c.login(*who)
            c.select('INBOX', readonly=True)
            typ, data = c.search(None, 'SUBJECT', '"%s"' % subject)
            uid = data[0].split()[-1]
            typ, data = c.fetch(uid, '(BODY.PEEK[])')
            return email.message_from_bytes(data[0][1])
        finally:
            c.logout()

    # -- tests -----------------------------------------------------------------------
    def test_mailbox_and_alias(self):
        code, res = self.deliver(['alice@example.com'], message('alice@example.com', 'direct', 'd1'))
        self.assertEqual(code, 0, res)
        self.assertEqual(res['alice@example.com']['code'], 250)
        self.assertIn('direct', self.subjects(ALICE))
        m = self.headers_of(ALICE, 'direct')
        self.assertEqual(m['Delivered-To'], 'alice@example.com')
        self.assertEqual(m['Return-Path'], '<carol@internet.test>')

        # An alias to two mailboxes, reached through another alias: one copy each.
        code, res = self.deliver(['info@example.com', 'sales@example.com'],
                                 message('info@example.com', 'to sales', 'd2'))
        self.assertEqual(code, 0, res)
        self.assertEqual(self.subjects(ALICE).count('to sales'), 1)
        self.assertEqual(self.subjects(BOB).count('to sales'), 1)

    def test_forward_skips_own_inbox_unless_listed(self):
        p = self.p
        p.cli_ok('domain', 'add', 'fwd.test')
        p.cli_ok('user', 'add', 'ann@fwd.test', '--type', 'basic', '--password', 'Ann-Pass1!')
        p.cli_ok('user', 'add', 'ben@fwd.test', '--type', 'basic', '--password', 'Ben-Pass1!')
        p.cli_ok('alias', 'add', 'ann@fwd.test', 'ben@fwd.test')
        self.assertEqual(self.deliver(['ann@fwd.test'], message('ann@fwd.test', 'skip', 'f1'))[0], 0)
        self.assertEqual(self.subjects(('ann@fwd.test', 'Ann-Pass1!')), [])
        self.assertEqual(self.subjects(('ben@fwd.test', 'Ben-Pass1!')), ['skip'])
        # Listing itself keeps a copy, as customers are told.
        p.cli_ok('alias', 'add', 'ann@fwd.test', 'ann@fwd.test')
        self.assertEqual(self.deliver(['ann@fwd.test'], message('ann@fwd.test', 'keep', 'f2'))[0], 0)
        self.assertEqual(self.subjects(('ann@fwd.test', 'Ann-Pass1!')), ['keep'])
        self.assertEqual(self.subjects(('ben@fwd.test', 'Ben-Pass1!')), ['skip', 'keep'])

    def test_catch_all_blackhole_unknown_relay(self):
        p = self.p
        p.cli_ok('domain', 'add', 'catch.test')
        p.cli_ok('user', 'add', 'cat@catch.test', '--type', 'basic', '--password', 'Cat-Pass1!')
        p.cli_ok('alias', 'add', '@catch.test', 'cat@catch.test')
        code, res = self.deliver(['anything@catch.test'], message('anything@catch.test', 'caught', 'c1'))
        self.assertEqual(code, 0, res)
        self.assertEqual(self.subjects(('cat@catch.test', 'Cat-Pass1!')), ['caught'])

        code, res = self.deliver(['spam@example.com'], message('spam@example.com', 'void', 'c2'))
        self.assertEqual(code, 0, res)
        self.assertNotIn('void', self.subjects(ALICE) + self.subjects(BOB))

        code, res = self.deliver(['nobody@example.com', 'friend@elsewhere.test'],
                                 message('nobody@example.com', 'nowhere', 'c3'))
        self.assertEqual(code, 1)
        self.assertEqual(res['nobody@example.com']['code'], 550)
        self.assertEqual(res['nobody@example.com']['enhanced'], '5.1.1')
        self.assertEqual(res['nobody@example.com']['text'],
                         '<nobody@example.com>: Recipient address rejected: User unknown')
        self.assertEqual(res['friend@elsewhere.test']['code'], 550)
        self.assertEqual(res['friend@elsewhere.test']['text'], 'Relaying denied')

    def test_loop_refused(self):
        code, res = self.deliver(['bob@example.com'],
                                 message('bob@example.com', 'looping', 'l1',
                                         'Delivered-To: bob@example.com\r\n'))
        self.assertEqual(code, 1)
        self.assertEqual(res['bob@example.com']['code'], 554)
        self.assertEqual(res['bob@example.com']['text'], 'Mail forwarding loop for <bob@example.com>')
        self.assertNotIn('looping', self.subjects(BOB))

    def test_retry_is_idempotent(self):
        msg = message('alice@example.com', 'once only', 'r1')
        for _ in range(3):
            self.assertEqual(self.deliver(['alice@example.com'], msg)[0], 0)
        self.assertEqual(self.subjects(ALICE).count('once only'), 1)

    def test_autoreply(self):
        p = self.p
        p.cli_ok('user', 'autoreply', 'alice@example.com', '--subject', 'Out of office',
                 '--body', 'Back on Monday.', '--days', '7')
        msg = ('From: bob@example.com\r\nTo: alice@example.com\r\nSubject: lunch?\r\n'
               'Message-ID: <a1@example.com>\r\n\r\nLunch?\r\n')
        self.assertEqual(self.deliver(['alice@example.com'], msg, sender='bob@example.com')[0], 0)
        self.assertEqual(self.subjects(BOB).count('Out of office'), 1)
        reply = self.headers_of(BOB, 'Out of office')
        self.assertEqual(reply['Auto-Submitted'], 'auto-replied')
        self.assertEqual(reply['In-Reply-To'], '<a1@example.com>')
        self.assertEqual(reply['From'], 'alice@example.com')
        self.assertEqual(reply['Return-Path'], '<>')
        # Once per sender within the days; never to lists or bulk mail.
        msg2 = msg.replace('<a1@', '<a2@')
        self.assertEqual(self.deliver(['alice@example.com'], msg2, sender='bob@example.com')[0], 0)
        self.assertEqual(self.subjects(BOB).count('Out of office'), 1)
        r = p.cli_ok('--json', 'user', 'autoreply', 'alice@example.com', '--off')
        self.assertFalse(json.loads(r.stdout)['enabled'])


if __name__ == '__main__':
    unittest.main()
