"""SMTP submission driven by nodemailer (Node.js), a client nobody here wrote: STARTTLS on
587, AUTH, a multipart message with a binary attachment, which must arrive intact in the
recipient's INBOX as seen over IMAP."""
import email
import imaplib
import json
import os
import re
import subprocess
import unittest

from harness import Polaris
from test_imap_clients import NODE, NODE_DIR, _node_ready


class NodemailerTest(unittest.TestCase):
    def test_submission_with_attachment(self):
        why_not = _node_ready()
        if why_not:
            self.skipTest(why_not)
        with Polaris(listeners=('submission', 'imap'),
                     extra_config='[auth]\nallow_plaintext = loopback\n') as p:
            p.add_demo()
            r = subprocess.run([NODE, os.path.join(NODE_DIR, 'nodemailer_send.js'),
                                str(p.ports['submission']), 'alice@example.com', 'Alice-Pass1!',
                                'bob@example.com', os.path.join(p.data_dir, 'tls', 'cert.pem')],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            res = json.loads(re.search(r'^RESULT (.*)$', r.stdout, re.M).group(1))
            self.assertTrue(res['response'].startswith('250'), res)
            self.assertEqual(res['accepted'], ['bob@example.com'])

            c = imaplib.IMAP4('127.0.0.1', p.ports['imap'], timeout=10)
            c.login('bob@example.com', 'Bob-Pass1!')
            c.select('INBOX')
            typ, data = c.search(None, 'HEADER', 'Message-ID', res['messageId'])
            nums = data[0].split()
            self.assertEqual(len(nums), 1)
            typ, data = c.fetch(nums[0], '(BODY.PEEK[])')
            m = email.message_from_bytes(data[0][1])
            self.assertEqual(m['Subject'], 'Report from nodemailer')
            self.assertIn('Received', m)
            parts = {part.get_filename(): part for part in m.walk()}
            self.assertEqual(parts['data.bin'].get_payload(decode=True),
                             bytes([0, 1, 2, 250, 251, 252]))
            text = [x for x in m.walk() if x.get_content_type() == 'text/plain'][0]
            self.assertEqual(text.get_payload(decode=True).decode(text.get_content_charset()),
                             'Plain body with ünïcödé.')
            c.logout()


if __name__ == '__main__':
    unittest.main(verbosity=2)
