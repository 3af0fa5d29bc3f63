"""Push from anywhere: an IMAP IDLE and an ActiveSync Ping wait on the same Inbox while
another engine changes it: SMTP delivery, IMAP APPEND and STORE from another session, an
ActiveSync Sync change, SendMail and MoveItems from another device, and the CLI's
`polaris mail deliver` (another process: the wake-up crosses data_dir/notify.sock). Each must wake, with the right news
(EXISTS or FETCH for IDLE, Status 2 naming the Inbox for Ping).

How fast is measured and printed, not asserted (timings on a shared machine are not a
test): for each change, the time from the start of the change to the wake-up, and from
the changing client's success answer to the wake-up (negative: the waiter heard before
the changer did; for ActiveSync changers the answer time includes the test client's
own check of the WBXML answer by two decoders, which makes it late by some milliseconds).

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/e2e/test_e2e_push.py
"""
import os
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Server, Idler, message, uid_by_subject, text, findall  # noqa: E402

ALICE = 'alice@example.com'
ROUNDS = 3


class PushFromAnywhere(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        cls.addClassCleanup(cls.s.__exit__, None, None, None)   # also when setup fails
        cls.s.__enter__()
        cls.s.user(ALICE, 'enhanced')
        cls.s.mx_send('x@example.net', [ALICE], message('seed', to=ALICE))
        cls.s.mx_send('x@example.net', [ALICE], message('mover', to=ALICE))
        cls.figures = []

    @classmethod
    def tearDownClass(cls):
        if cls.figures:
            print('\npush latency (ms): change start -> wake-up / changer answered -> wake-up')
            print('%-22s %-6s %10s %10s %10s' % ('change', 'waiter', 'min', 'median', 'max'))
            for name, waiter, since_start, since_ack in cls.figures:
                print('%-22s %-6s %10.1f %10.1f %10.1f   (after answer: median %.1f)'
                      % (name, waiter, min(since_start), statistics.median(since_start),
                         max(since_start), statistics.median(since_ack)))

    def setUp(self):
        self.phone = self.s.eas(ALICE, 'pusher')
        self.phone.initial('Inbox')
        self.other = self.s.eas(ALICE, 'changer')
        self.other_sids = {text(a, 'Email:Subject'): sid
                           for sid, a in self.other.initial('Inbox').items()}
        self.idler = Idler(self.s, ALICE)
        self.addCleanup(self.idler.close)
        self.imap = self.s.imap(ALICE)
        self.addCleanup(self.imap.logout)

    def measure(self, name, change, idle_expect):
        """Runs `change` ROUNDS times with IDLE and Ping waiting; change(i) returns the
        monotonic time its client got the success answer."""
        idle_lat, idle_ack, ping_lat, ping_ack = [], [], [], []
        inbox = self.phone.fid('Inbox')
        for i in range(ROUNDS):
            self.phone.pull('Inbox')                 # nothing pending: the Ping must wait
            self.idler.idle()
            res = {}
            th = threading.Thread(target=lambda: res.update(
                ping=self.phone.timed_post('Ping', self.phone.ping_request(['Inbox'], 30))))
            th.start()
            # IDLE is read on its own thread too, so its time is taken as the line arrives
            ti = threading.Thread(target=lambda: res.update(idle=self.idler.wait(10)))
            ti.start()
            time.sleep(0.3)                          # the Ping is suspended by now
            self.assertTrue(th.is_alive(), 'Ping answered before any change')
            t0 = time.monotonic()
            t_ack = change(i)
            ti.join(15)
            th.join(15)
            self.assertFalse(ti.is_alive(), '%s: IDLE did not wake' % name)
            t_idle, line = res['idle']
            self.assertFalse(th.is_alive(), '%s: Ping did not wake' % name)
            st, t_ping, tree = res['ping']
            self.assertEqual(st, 200)
            self.assertEqual(text(tree, 'Ping:Status'), '2', '%s: %r' % (name, tree))
            self.assertEqual([f.text for f in findall(tree, 'Ping:Folders/Ping:Folder')],
                             [inbox])
            self.assertRegex(line, idle_expect)
            self.idler.done()
            idle_lat.append((t_idle - t0) * 1000)
            idle_ack.append((t_idle - t_ack) * 1000)
            ping_lat.append((t_ping - t0) * 1000)
            ping_ack.append((t_ping - t_ack) * 1000)
        self.figures.append((name, 'IDLE', idle_lat, idle_ack))
        self.figures.append((name, 'Ping', ping_lat, ping_ack))

    def test_smtp_delivery(self):
        def change(i):
            self.s.mx_send('x@example.net', [ALICE], message('smtp push %d' % i, to=ALICE))
            return time.monotonic()
        self.measure('SMTP delivery', change, r'^\* \d+ EXISTS$')

    def test_imap_append(self):
        def change(i):
            typ, _ = self.imap.append('INBOX', None, None,
                                      message('append push %d' % i, to=ALICE).encode())
            self.assertEqual(typ, 'OK')
            return time.monotonic()
        self.measure('IMAP APPEND', change, r'^\* \d+ EXISTS$')

    def test_imap_store(self):
        u = uid_by_subject(self.imap, 'INBOX', 'seed')[0]

        def change(i):
            typ, _ = self.imap.uid('STORE', str(u), '+FLAGS' if i % 2 == 0 else '-FLAGS',
                                   '(\\Flagged)')
            self.assertEqual(typ, 'OK')
            return time.monotonic()
        self.measure('IMAP STORE', change, r'^\* \d+ FETCH \(.*FLAGS')

    def test_activesync_change(self):
        sid = self.other_sids['seed']

        def change(i):
            self.other.change('Inbox', sid, read=(i + 1) % 2)
            return time.monotonic()
        self.measure('ActiveSync Sync change', change, r'^\* \d+ FETCH \(.*FLAGS')

    def test_activesync_sendmail(self):
        def change(i):
            mime = message('sendmail push %d' % i, sender=ALICE, to=ALICE)
            st, _, body = self.other.c.post(
                'SendMail', '<SendMail xmlns="ComposeMail:"><ClientId>push-%d</ClientId>'
                '<Mime>%s</Mime></SendMail>' % (i, mime.replace('<', '&lt;')))
            self.assertEqual((st, body), (200, b''))
            return time.monotonic()
        self.measure('ActiveSync SendMail', change, r'^\* \d+ EXISTS$')

    def test_activesync_moveitems(self):
        m = self.s.imap(ALICE)
        m.create('Elsewhere')
        m.logout()
        self.other.refresh_folders()
        where = {'sid': self.other_sids['mover'], 'folder': 'Inbox'}

        def change(i):
            dst = 'Elsewhere' if where['folder'] == 'Inbox' else 'Inbox'
            st, sid = self.other.move(where['sid'], where['folder'], dst)
            self.assertEqual(st, '3')
            where.update(sid=sid, folder=dst)
            return time.monotonic()
        self.measure('ActiveSync MoveItems', change, r'^\* \d+ (EXPUNGE|EXISTS)$')

    def test_cli_mail_deliver(self):
        def change(i):
            r = self.s.cli('mail', 'deliver', ALICE,
                           input=message('cli push %d' % i, to=ALICE))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            return time.monotonic()
        self.measure('CLI mail deliver', change, r'^\* \d+ EXISTS$')


if __name__ == '__main__':
    unittest.main(verbosity=2)
