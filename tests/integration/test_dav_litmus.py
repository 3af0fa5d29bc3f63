"""litmus (the WebDAV server test suite, Debian's package) against the calendar home: its
basic, copymove and props suites run, and the exact set of tests that pass is asserted,
so a regression in plain WebDAV behaviour shows up here.

Many litmus tests cannot pass on a CalDAV server and are expected to fail (docs/dav.md):
- litmus PUTs arbitrary text files, and our collections only hold iCalendar objects (a
  PUT of text/plain is 403 supported-calendar-data): put_get, put_get_utf8_segment,
  delete_fragment and copy_init / move / propinit fail, and what depends on them
  (mkcol_over_plain, delete, copy_simple, copy_overwrite, copy_nodestcoll, every
  propset/propget/propmove...) is skipped;
- collections cannot nest (no calendar inside a calendar): mkcol (and with it
  mkcol_again, delete_coll), copy_coll, copy_shallow, move_coll fail with 403;
- dead properties are kept on collections only, and litmus sets them on the text file it
  could not store: propset and the rest are skipped, propmanyns fails;
- locks (class 2) are not offered: options passes with a warning and the locks suite is
  not run.

litmus connects to 127.0.0.1; a small proxy in this test puts the tenant's virtual-host
name in the Host header of every request on the way through.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_dav_litmus.py
"""
import os
import re
import socket
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from dav_util import ALICE, setup_users  # noqa: E402

# The tests litmus passes here, per suite: the answer must be exactly these.
EXPECTED_PASS = {
    'basic': {'init', 'begin', 'options', 'put_no_parent', 'delete_null', 'mkcol_no_parent',
              'mkcol_with_body', 'finish'},
    'copymove': {'init', 'begin', 'copy_cleanup', 'move_cleanup', 'finish'},
    'props': {'init', 'begin', 'propfind_invalid', 'propfind_invalid2', 'propfind_d0',
              'propextended', 'propwformed', 'propcleanup', 'finish'},
}


class HostProxy:
    """Forwards connections to the server, rewriting each request's Host header."""

    def __init__(self, port, host):
        self.port, self.host = port, host
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.listen_port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(('127.0.0.1', self.port))
            threading.Thread(target=self.requests, args=(c, s), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def requests(self, c, s):
        buf = b''
        try:
            while True:
                while b'\r\n\r\n' not in buf:
                    data = c.recv(65536)
                    if not data:
                        raise OSError
                    buf += data
                head, buf = buf.split(b'\r\n\r\n', 1)
                lines = head.split(b'\r\n')
                out, length = [lines[0]], 0
                for line in lines[1:]:
                    name = line.split(b':', 1)[0].strip().lower()
                    if name == b'host':
                        line = b'Host: ' + self.host.encode()
                    elif name == b'content-length':
                        length = int(line.split(b':', 1)[1])
                    out.append(line)
                while len(buf) < length:
                    data = c.recv(65536)
                    if not data:
                        raise OSError
                    buf += data
                s.sendall(b'\r\n'.join(out) + b'\r\n\r\n' + buf[:length])
                buf = buf[length:]
        except OSError:
            pass
        for x in (c, s):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def parse(output):
    """{suite: {test: result}} from litmus's report lines (' 3. put_get.......... pass');
    a test that warns prints its result on a line of its own after the warning."""
    results, suite, last = {}, None, None
    for line in output.splitlines():
        m = re.match(r"-> running `(\w+)'", line)
        if m:
            suite = m.group(1)
            results[suite] = {}
            continue
        m = re.match(r'\s*\d+\.\s+(\w+)\.*\s*(pass|FAIL|SKIPPED|WARNING)', line)
        if m and suite:
            last = m.group(1)
            results[suite][last] = m.group(2)
            continue
        m = re.match(r'\s*\.+\s*(pass|FAIL)', line)
        if m and suite and last:
            results[suite][last] = m.group(1)
    return results


class Litmus(unittest.TestCase):
    def test_litmus_suites(self):
        with Polaris(extra_config='[auth]\nfail_max = 100000\n') as p:
            setup_users(p)
            proxy = HostProxy(p.http_port, p.label_host())
            try:
                url = 'http://127.0.0.1:%d/caldav/alice@example.com/' % proxy.listen_port
                env = dict(os.environ, TESTS='basic copymove props')
                # litmus writes debug.log and child.log into its working directory
                r = subprocess.run(['litmus', '-k', url, ALICE[0], ALICE[1]], env=env,
                                   capture_output=True, timeout=120, cwd=p.tmp)
            finally:
                proxy.close()
            out = (r.stdout + r.stderr).decode('utf-8', 'replace')
            got = parse(out)
            self.assertEqual(sorted(got), sorted(EXPECTED_PASS), out)
            for suite, want in EXPECTED_PASS.items():
                passed = {t for t, res in got[suite].items() if res == 'pass'}
                self.assertEqual(passed, want, '%s:\n%s' % (suite, out))
            self.assertTrue(p.proc.poll() is None, 'the server died under litmus')


if __name__ == '__main__':
    unittest.main(verbosity=2)
