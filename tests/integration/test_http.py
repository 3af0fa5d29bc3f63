"""HTTP front end, driven through the real binary: virtual hosts, Basic auth and the
mailbox-type gate, the neutral 404, request size limit, HTTPS with the generated
certificate (TLS 1.2+ only), request-log hygiene and a clean exit on SIGTERM.

Engine paths answer 501 until their engine is built; the checks here only rely on the
front end's own answers (401/403/404/413) and on "authenticated" meaning "not one of
those", so they keep passing once the engines land.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_http.py
"""
import base64
import os
import socket
import ssl
import sys
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402

ALICE = ('alice@example.com', 'Alice-Pass1!')   # enhanced (add_demo)
BOB = ('bob@example.com', 'Bob-Pass1!')         # basic (add_demo)
CAROL = ('carol@example.org', 'Carol-Pass1!')   # enhanced, other tenant
FRONT_END_REFUSALS = (400, 401, 403, 404, 413, 429)
MAX_REQUEST = 64 * 1024
# Refusal tests all come from 127.0.0.1: keep the per-source throttle out of the way, and
# use a small body limit so that the 413 tests stay cheap.
EXTRA_CONFIG = '[auth]\nfail_max = 1000\n\n[server]\nmax_request = 64K\n'


class HttpFrontEnd(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(extra_config=EXTRA_CONFIG)
        cls.p.__enter__()
        cls.p.add_demo()
        cls.p.cli_ok('domain', 'add', 'example.org')
        cls.p.cli_ok('user', 'add', CAROL[0], '--type', 'enhanced', '--password', CAROL[1])
        cls.host = cls.p.label_host('example.com')

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def req(self, path, host=None, auth=None, method='GET', **kw):
        return self.p.request(method, path, host or self.host, auth=auth, **kw)

    def assertAuthenticated(self, status, body, what):
        self.assertNotIn(status, FRONT_END_REFUSALS, '%s: %d %r' % (what, status, body))
        if status == 501:
            self.assertEqual(body, b'engine not available\n')

    # -- virtual hosts -------------------------------------------------------------------
    def test_unknown_host_is_neutral_404(self):
        for host in ('nobody.example.net', 'nobody--net.' + self.p.web_base, 'localhost',
                     self.p.web_base, 'www.example.com'):
            status, headers, body = self.req('/Microsoft-Server-ActiveSync', host=host,
                                             auth=ALICE)
            self.assertEqual(status, 404, host)
            self.assertEqual(body, b'Not Found\n', host)
            self.assertNotIn('www-authenticate', headers)
        # an unknown path on a known host looks the same
        status, headers, body = self.req('/no/such/path')
        self.assertEqual((status, body), (404, b'Not Found\n'))

    def test_host_forms_reach_the_tenant(self):
        hosts = [self.host, self.host.upper() + ':' + str(self.p.http_port), 'example.com',
                 'example.com.', 'autodiscover.example.com', 'autoconfig.example.com',
                 'mail.example.com']
        for host in hosts:
            status, headers, body = self.req('/caldav/', host=host)
            self.assertEqual(status, 401, host)
            self.assertEqual(headers.get('www-authenticate'),
                             'Basic realm="example.com", charset="UTF-8"', host)
            status, _, body = self.req('/caldav/', host=host, auth=ALICE)
            self.assertAuthenticated(status, body, host)

    def test_bad_host_header(self):
        status, _, _ = self.req('/caldav/', host='exa mple.com')
        self.assertEqual(status, 400)

    # -- authentication and the gate -----------------------------------------------------
    def test_no_credentials_401_with_challenge(self):
        status, headers, body = self.req('/Microsoft-Server-ActiveSync')
        self.assertEqual(status, 401)
        self.assertEqual(headers.get('www-authenticate'),
                         'Basic realm="example.com", charset="UTF-8"')
        self.assertEqual(headers.get('server'), 'Polaris')
        # ActiveSync clients authenticate OPTIONS too
        status, _, _ = self.req('/Microsoft-Server-ActiveSync', method='OPTIONS')
        self.assertEqual(status, 401)

    def test_wrong_password_401(self):
        status, headers, _ = self.req('/caldav/', auth=(ALICE[0], 'Wrong-Pass1!'))
        self.assertEqual(status, 401)
        self.assertIn('www-authenticate', headers)

    def test_malformed_basic_401(self):
        for value in ('Basic !!!', 'Basic YWxpY2U=', 'Basic ' + 'A' * 5000, 'Digest x=y'):
            status, _, _ = self.req('/caldav/', headers={'Authorization': value})
            self.assertEqual(status, 401, value[:20])

    def test_correct_password_passes_the_front_end(self):
        for path in ('/Microsoft-Server-ActiveSync', '/caldav/', '/carddav/', '/principals/',
                     '/autodiscover/autodiscover.xml', '/profile.mobileconfig'):
            status, _, body = self.req(path, auth=ALICE)
            self.assertAuthenticated(status, body, path)
        status, _, body = self.req('/Microsoft-Server-ActiveSync', auth=ALICE)
        # until the ActiveSync engine registers, its placeholder answers 501
        if status == 501:
            self.assertEqual(body, b'engine not available\n')

    def test_basic_mailbox_gets_403_on_dav_and_eas(self):
        for path in ('/caldav/', '/carddav/', '/Microsoft-Server-ActiveSync'):
            status, _, body = self.req(path, auth=BOB)
            self.assertEqual(status, 403, path)
            self.assertIn(b'mailbox type does not include', body)

    def test_other_tenants_user_is_refused(self):
        status, _, _ = self.req('/caldav/', auth=CAROL)
        self.assertEqual(status, 401)
        status, _, body = self.req('/caldav/', host='example.org', auth=CAROL)
        self.assertAuthenticated(status, body, 'carol on her own host')
        status, _, _ = self.req('/caldav/', host='example.org', auth=ALICE)
        self.assertEqual(status, 401)

    def test_login_forms(self):
        for login in ('alice@example.com', 'ALICE@EXAMPLE.COM', 'EXAMPLE\\alice', '\\alice',
                      'alice'):
            status, _, body = self.req('/caldav/', auth=(login, ALICE[1]))
            self.assertAuthenticated(status, body, login)
        status, _, _ = self.req('/caldav/', auth=('example.org\\alice', ALICE[1]))
        self.assertEqual(status, 401)

    # -- limits --------------------------------------------------------------------------
    def raw(self, data, port=None):
        with socket.create_connection(('127.0.0.1', port or self.p.http_port), timeout=10) as s:
            s.sendall(data)
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b''.join(chunks)

    def test_413_declared_length(self):
        resp = self.raw(('PUT /caldav/alice/x.ics HTTP/1.1\r\nHost: %s\r\n'
                         'Content-Length: 100000000000\r\nConnection: close\r\n\r\n'
                         % self.host).encode())
        self.assertTrue(resp.startswith(b'HTTP/1.1 413'), resp[:80])

    def chunked_put(self, path, total):
        chunk = 8192
        body = b''.join(b'%x\r\n%s\r\n' % (chunk, b'y' * chunk) for _ in range(total // chunk))
        return self.raw(('PUT %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n'
                         'Connection: close\r\n\r\n' % (path, self.host)).encode()
                        + body + b'0\r\n\r\n')

    def test_413_while_streaming(self):
        # no length declared: the limit is found while reading the body
        resp = self.chunked_put('/.well-known/caldav', 2 * MAX_REQUEST)
        self.assertTrue(resp.startswith(b'HTTP/1.1 413'), resp[:80])
        resp = self.chunked_put('/.well-known/caldav', MAX_REQUEST // 2)
        self.assertFalse(resp.startswith(b'HTTP/1.1 413'), resp[:80])

    # -- HTTPS ---------------------------------------------------------------------------
    def test_https_with_generated_certificate(self):
        cert = os.path.join(self.p.data_dir, 'tls', 'cert.pem')
        self.assertTrue(os.path.exists(cert))
        key = os.path.join(self.p.data_dir, 'tls', 'key.pem')
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        status, headers, _ = self.req('/caldav/', tls=True)
        self.assertEqual(status, 401)
        self.assertIn('www-authenticate', headers)
        status, _, body = self.req('/caldav/', auth=ALICE, tls=True)
        self.assertAuthenticated(status, body, 'https')
        conn = self.p.https()
        conn.connect()
        self.assertIn(conn.sock.version(), ('TLSv1.2', 'TLSv1.3'))
        conn.close()

    def test_tls12_accepted_tls11_refused(self):
        ctx = self.p.tls_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        conn = self.p.https(context=ctx)
        conn.connect()
        self.assertEqual(conn.sock.version(), 'TLSv1.2')
        conn.close()

        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', DeprecationWarning)
                old.set_ciphers('DEFAULT:@SECLEVEL=0')  # let OpenSSL offer TLS 1.1 at all
                old.minimum_version = ssl.TLSVersion.TLSv1
                old.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            pass
        with socket.create_connection(('127.0.0.1', self.p.https_port), timeout=10) as s:
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                with old.wrap_socket(s, server_hostname='localhost') as t:
                    t.do_handshake()

    # -- logging -------------------------------------------------------------------------
    def test_request_log_keeps_secrets_out(self):
        secret = 'Qz7-Secret-Query'
        self.req('/Microsoft-Server-ActiveSync?Cmd=Sync&Password=' + secret, auth=ALICE,
                 method='POST', body=b'body-' + secret.encode())
        deadline = time.time() + 5
        while time.time() < deadline and '/Microsoft-Server-ActiveSync ' not in self.p.log():
            time.sleep(0.05)
        log = self.p.log()
        self.assertIn('/Microsoft-Server-ActiveSync ', log)
        self.assertIn('alice@example.com', log)
        self.assertNotIn(secret, log)
        self.assertNotIn(ALICE[1], log)
        token = base64.b64encode(('%s:%s' % ALICE).encode()).decode()
        self.assertNotIn(token, log)
        self.assertNotIn('Authorization', log)


class HttpLifecycle(unittest.TestCase):
    def test_sigterm_exits_zero_quickly(self):
        with Polaris() as p:
            p.add_demo()
            status, _, _ = p.request('GET', '/caldav/', p.label_host('example.com'))
            self.assertEqual(status, 401)
            # an idle keep-alive connection must not hold the stop up
            idle = p.http()
            idle.request('GET', '/caldav/', headers={'Host': p.label_host('example.com')})
            idle.getresponse().read()
            t0 = time.time()
            code = p.stop()
            elapsed = time.time() - t0
            idle.close()
            self.assertEqual(code, 0, p.log())
            self.assertLess(elapsed, 5.0)


if __name__ == '__main__':
    unittest.main(verbosity=2)
