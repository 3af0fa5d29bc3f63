"""POP3 against the real binary, driven by Python's poplib and curl (clients nobody here
wrote), plus raw sockets for the malformed and hostile cases."""
import base64
import poplib
import socket
import ssl
import subprocess
import unittest

from harness import Polaris

ALICE = ('alice@example.com', 'Alice-Pass1!')

MSGS = [
    b'From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: one\r\n'
    b'Message-ID: <1@example.com>\r\n\r\nHello Alice.\r\n',
    b'From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: two\r\n\r\n'
    b'line 1\r\n.starts with a dot\r\n..two dots\r\nline 4\r\n',
    b'From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: three\r\n\r\n'
    + b'x' * 5000 + b'\r\n',
]


class Pop3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(listeners=('pop3', 'pop3s'),
                        extra_config='[auth]\nallow_plaintext = loopback\n')
        cls.p.__enter__()
        cls.p.add_demo()
        for i, m in enumerate(MSGS):
            r = cls.p.cli('mail', 'append', 'alice@example.com', input=m.decode())
            assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def pop(self):
        c = poplib.POP3('127.0.0.1', self.p.ports['pop3'], timeout=10)
        self.addCleanup(lambda: c.sock and c.sock.close())
        return c

    def login(self):
        c = self.pop()
        c.user(ALICE[0])
        c.pass_(ALICE[1])
        return c

    def test_capa_and_greeting(self):
        c = self.pop()
        self.assertTrue(c.getwelcome().startswith(b'+OK'))
        capa = c.capa()
        for k in ('TOP', 'UIDL', 'USER', 'STLS', 'RESP-CODES', 'PIPELINING', 'SASL'):
            self.assertIn(k, capa)
        self.assertEqual(capa['SASL'], ['PLAIN'])

    def test_stat_list_retr_top(self):
        c = self.login()
        count, size = c.stat()
        self.assertEqual(count, 3)
        self.assertEqual(size, sum(len(m) for m in MSGS))
        resp, listing, _ = c.list()
        self.assertEqual([int(l.split()[1]) for l in listing], [len(m) for m in MSGS])
        resp, lines, octets = c.retr(2)
        # poplib undoes the dot-stuffing: the message comes back byte for byte
        self.assertEqual(b'\r\n'.join(lines) + b'\r\n', MSGS[1])
        resp, lines, _ = c.top(2, 1)
        self.assertEqual(lines[-2:], [b'', b'line 1'])
        resp, lines, _ = c.top(1, 0)
        self.assertEqual(lines[-1], b'')
        self.assertIn(b'Subject: one', lines)
        c.quit()

    def test_uidl_stable_and_dele_rset_quit(self):
        c = self.login()
        resp, uidls, _ = c.uidl()
        first = [l.split()[1] for l in uidls]
        self.assertEqual(len(set(first)), 3)
        c.dele(1)
        self.assertEqual(c.stat()[0], 2)
        with self.assertRaises(poplib.error_proto):
            c.retr(1)                       # deleted in this session
        c.rset()
        self.assertEqual(c.stat()[0], 3)
        c.quit()                            # nothing was marked: nothing removed
        c = self.login()
        self.assertEqual([l.split()[1] for l in c.uidl()[1]], first)
        self.assertEqual(c.uidl(2).split()[2], first[1])
        c.quit()

    def test_dropped_connection_deletes_nothing(self):
        c = self.login()
        n = c.stat()[0]
        c.dele(1)
        c.sock.close()                      # no QUIT: no UPDATE state
        c = self.login()
        self.assertEqual(c.stat()[0], n)
        c.quit()

    def test_zz_delete_on_quit(self):
        # runs last (name): removes one message for good
        c = self.login()
        uid1 = c.uidl(1).split()[2]
        c.dele(1)
        c.quit()
        c = self.login()
        self.assertEqual(c.stat()[0], 2)
        self.assertNotIn(uid1, [l.split()[1] for l in c.uidl()[1]])
        c.quit()

    def test_wrong_password_and_unknown_user(self):
        c = self.pop()
        c.user(ALICE[0])
        with self.assertRaisesRegex(poplib.error_proto, r'\[AUTH\]'):
            c.pass_('Wrong-Pass1!')
        c.user('nobody@example.com')
        with self.assertRaisesRegex(poplib.error_proto, r'\[AUTH\]'):
            c.pass_('Wrong-Pass1!')
        with self.assertRaisesRegex(poplib.error_proto, 'Log in first'):
            c.stat()

    def test_basic_mailbox_may_use_pop3(self):
        c = self.pop()
        c.user('bob@example.com')
        c.pass_('Bob-Pass1!')
        self.assertEqual(c.stat()[0], 0)
        c.quit()

    def test_stls_and_pop3s(self):
        ctx = self.p.tls_context()
        c = self.pop()
        c.stls(context=ctx)
        self.assertNotIn('STLS', c.capa())
        c.user(ALICE[0])
        c.pass_(ALICE[1])
        self.assertEqual(c.stat()[0] >= 2, True)
        c.quit()
        s = poplib.POP3_SSL('127.0.0.1', self.p.ports['pop3s'], context=ctx, timeout=10)
        s.user(ALICE[0])
        s.pass_(ALICE[1])
        s.quit()

    def raw(self):
        s = socket.create_connection(('127.0.0.1', self.p.ports['pop3']), timeout=10)
        self.addCleanup(s.close)
        f = s.makefile('rb')
        self.assertTrue(f.readline().startswith(b'+OK'))
        return s, f

    def test_auth_plain(self):
        s, f = self.raw()
        tok = base64.b64encode(b'\0' + ALICE[0].encode() + b'\0' + ALICE[1].encode())
        s.sendall(b'AUTH PLAIN ' + tok + b'\r\n')
        self.assertTrue(f.readline().startswith(b'+OK'))
        s.sendall(b'STAT\r\n')
        self.assertTrue(f.readline().startswith(b'+OK'))
        # and the two-step form, with someone else's authzid refused
        s2, f2 = self.raw()
        s2.sendall(b'AUTH PLAIN\r\n')
        self.assertEqual(f2.readline(), b'+ \r\n')
        s2.sendall(base64.b64encode(b'bob@example.com\0' + ALICE[0].encode() + b'\0'
                                    + ALICE[1].encode()) + b'\r\n')
        self.assertTrue(f2.readline().startswith(b'-ERR [AUTH]'))
        s2.sendall(b'AUTH PLAIN !!notbase64\r\n')
        self.assertTrue(f2.readline().startswith(b'-ERR'))

    def test_bad_input(self):
        s, f = self.raw()
        s.sendall(b'X' * (1 << 20) + b'\r\n')               # 1 MB line
        self.assertEqual(f.readline(), b'-ERR Line too long\r\n')
        s.sendall(b'NOOP\0\r\n')
        self.assertEqual(f.readline(), b'-ERR NUL bytes are not allowed\r\n')
        s.sendall(b'FROB\r\n')
        self.assertEqual(f.readline(), b'-ERR Unknown command\r\n')
        s.sendall(b'USER ' + ALICE[0].encode() + b'\r\nPASS ' + ALICE[1].encode() + b'\r\n')
        f.readline()
        self.assertTrue(f.readline().startswith(b'+OK'))
        for cmd in (b'LIST 0', b'LIST 999', b'RETR abc', b'TOP 1', b'TOP 1 -1',
                    b'DELE 99999999999999999999', b'USER x'):
            s.sendall(cmd + b'\r\n')
            self.assertTrue(f.readline().startswith(b'-ERR'), cmd)
        s.sendall(b'NOOP\r\n')                               # still serving
        self.assertTrue(f.readline().startswith(b'+OK'))
        # and the server still serves a new session
        c = self.login()
        c.quit()

    def test_curl_pop3(self):
        url = 'pop3://127.0.0.1:%d/' % self.p.ports['pop3']
        r = subprocess.run(['curl', '-sS', '--max-time', '20', '-u', '%s:%s' % ALICE, url],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(), r'^1 \d+')
        r = subprocess.run(['curl', '-sS', '--max-time', '20', '-u', '%s:%s' % ALICE,
                            url + '1'], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b'Subject:', r.stdout)
        r = subprocess.run(['curl', '-sS', '--max-time', '20', '--ssl-reqd', '--cacert',
                            self.p.data_dir + '/tls/cert.pem', '-u', '%s:%s' % ALICE,
                            'pop3://localhost:%d/1' % self.p.ports['pop3']],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b'Subject:', r.stdout)


class Pop3PlaintextRefusedTest(unittest.TestCase):
    def test_user_refused_without_tls(self):
        with Polaris(listeners=('pop3',)) as p:
            p.add_demo()
            c = poplib.POP3('127.0.0.1', p.ports['pop3'], timeout=10)
            capa = c.capa()
            self.assertNotIn('USER', capa)
            self.assertIn('STLS', capa)
            with self.assertRaisesRegex(poplib.error_proto, 'STLS'):
                c.user(ALICE[0])
            c.stls(context=p.tls_context())
            c.user(ALICE[0])
            c.pass_(ALICE[1])
            c.quit()


if __name__ == '__main__':
    unittest.main(verbosity=2)
