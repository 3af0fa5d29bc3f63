"""Crash safety of SMTP delivery: the server is killed with SIGKILL in the middle of a
burst of deliveries from several concurrent senders, then restarted. Every message that
got a 250 must be in the recipient's INBOX exactly once; no message may be there twice;
the store must pass its integrity check; and the server must serve again at once."""
import imaplib
import os
import random
import signal
import smtplib
import sqlite3
import threading
import time
import unittest

from harness import Polaris

ROUNDS = 3
SENDERS = 6


class SmtpCrashTest(unittest.TestCase):
    def test_kill9_during_burst(self):
        with Polaris(listeners=('smtp', 'imap'),
                     extra_config='[auth]\nallow_plaintext = loopback\n') as p:
            p.add_demo()
            acked = set()
            lock = threading.Lock()
            seq = [0]

            def sender(stop):
                while not stop.is_set():
                    with lock:
                        seq[0] += 1
                        mid = '<crash-%d-%d@example.org>' % (os.getpid(), seq[0])
                    msg = ('From: x@example.org\r\nTo: bob@example.com\r\nSubject: burst\r\n'
                           'Message-ID: %s\r\n\r\n%s\r\n' % (mid, 'y' * random.randint(10, 4000)))
                    try:
                        with smtplib.SMTP('127.0.0.1', p.ports['smtp'], timeout=10) as s:
                            s.sendmail('x@example.org', ['bob@example.com'], msg)
                        with lock:
                            acked.add(mid)      # 250 received: must survive
                    except (OSError, smtplib.SMTPException):
                        time.sleep(0.01)        # server gone or refusing: try again later

            for rnd in range(ROUNDS):
                stop = threading.Event()
                threads = [threading.Thread(target=sender, args=(stop,)) for _ in range(SENDERS)]
                for t in threads:
                    t.start()
                time.sleep(random.uniform(0.5, 1.5))
                p.proc.send_signal(signal.SIGKILL)  # in the middle of the burst
                p.proc.wait()
                stop.set()
                for t in threads:
                    t.join()
                p.start()                           # restart on the same data dir

            self.assertGreater(len(acked), 20, 'the burst delivered almost nothing')
            c = imaplib.IMAP4('127.0.0.1', p.ports['imap'], timeout=30)
            c.login('bob@example.com', 'Bob-Pass1!')
            c.select('INBOX', readonly=True)
            typ, data = c.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
            seen = {}
            for item in data:
                if isinstance(item, tuple):
                    mid = item[1].decode().split(':', 1)[1].strip()
                    seen[mid] = seen.get(mid, 0) + 1
            c.logout()
            missing = [m for m in acked if m not in seen]
            twice = [m for m, n in seen.items() if n > 1]
            self.assertEqual(missing, [], 'acknowledged messages lost')
            self.assertEqual(twice, [], 'messages delivered twice')
            print('\n  %d acknowledged, %d in the mailbox, 0 lost, 0 duplicated'
                  % (len(acked), len(seen)))

            db = os.path.join(p.data_dir, 'users', 'example.com', 'bob', 'store.db')
            p.stop()
            con = sqlite3.connect(db)
            self.assertEqual(con.execute('PRAGMA integrity_check').fetchone()[0], 'ok')
            con.close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
