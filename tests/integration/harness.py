"""Test harness: runs the real polaris binary on free loopback ports with a throwaway
config and data dir, and gives tests the CLI and the listeners.

    with Polaris() as p:                 # serving
        p.cli_ok('domain', 'add', 'example.com')
        conn = p.http(host='example--com.' + p.web_base)

Runs under Debian's /usr/bin/python3; standard library only.
"""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

BIN = os.environ.get('POLARIS_BIN') or os.path.join(
    os.path.dirname(__file__), '..', '..', 'build', 'polaris')

LISTENERS = ('http', 'https')


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Polaris:
    def __init__(self, start=True, listeners=LISTENERS, extra_config='', web_base='w.test'):
        self.tmp = tempfile.mkdtemp(prefix='polaris-test-')
        self.data_dir = os.path.join(self.tmp, 'data')
        self.config_path = os.path.join(self.tmp, 'polaris.ini')
        self.log_path = os.path.join(self.tmp, 'server.log')
        self.web_base = web_base
        self.ports = {name: free_port() for name in listeners}
        self.proc = None
        self._log = None
        self._write_config(extra_config)
        self._start_now = start

    @property
    def http_port(self):
        return self.ports.get('http')

    @property
    def https_port(self):
        return self.ports.get('https')

    def _write_config(self, extra):
        listen = '\n'.join('%s = 127.0.0.1:%d' % kv for kv in self.ports.items())
        with open(self.config_path, 'w') as f:
            f.write('[server]\nhostname = localhost\nweb_base = %s\ndata_dir = %s\n'
                    'log_level = debug\n\n[listen]\n%s\n%s\n'
                    % (self.web_base, self.data_dir, listen, extra))

    def __enter__(self):
        if self._start_now:
            self.start()
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log:
            self._log.close()
        if os.environ.get('POLARIS_KEEP_TMP'):
            print('kept', self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the CLI ----------------------------------------------------------------------
    def cli(self, *args, input=None, json=False):
        argv = [BIN, '-c', self.config_path] + (['--json'] if json else []) + list(args)
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60)

    def cli_ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        if r.returncode != 0:
            raise AssertionError('polaris %s failed (%d): %s%s'
                                 % (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r

    def add_demo(self):
        """example.com with alice (enhanced) and bob (basic)."""
        self.cli_ok('domain', 'add', 'example.com')
        self.cli_ok('user', 'add', 'alice@example.com', '--type', 'enhanced',
                    '--password', 'Alice-Pass1!')
        self.cli_ok('user', 'add', 'bob@example.com', '--type', 'basic',
                    '--password', 'Bob-Pass1!')

    # -- the server -------------------------------------------------------------------
    def start(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            # One object, one server: a second start would orphan the first process
            # (nothing would ever kill it) and leave two servers on the same ports.
            self.proc.kill()
            self.proc.wait()
        if self._log:             # a restart: the previous server's log handle is done
            self._log.close()
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen([BIN, '-c', self.config_path, 'serve'],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError('polaris exited (%d) at start:\n%s'
                                         % (self.proc.returncode, self.log()))
                try:
                    socket.create_connection(('127.0.0.1', port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise AssertionError('port %d never opened:\n%s' % (port, self.log()))
                    time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals the server and returns its exit code (None if it did not exit)."""
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    # -- HTTP -------------------------------------------------------------------------
    def label_host(self, domain='example.com'):
        return domain.replace('.', '--') + '.' + self.web_base

    def http(self, timeout=10):
        return http.client.HTTPConnection('127.0.0.1', self.http_port, timeout=timeout)

    def https(self, timeout=10, server_hostname='localhost', context=None):
        ctx = context or self.tls_context()
        conn = http.client.HTTPSConnection('127.0.0.1', self.https_port, timeout=timeout,
                                           context=ctx)
        # SNI and certificate name checks use this name rather than the IP we dial.
        conn._tunnel_host = None
        conn.host = server_hostname
        conn._create_connection = lambda addr, *a, **k: socket.create_connection(
            ('127.0.0.1', self.https_port), *a, **k)
        return conn

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.data_dir, 'tls', 'cert.pem'))
        return ctx

    def request(self, method, path, host, body=None, headers=None, auth=None, tls=False):
        """One request; returns (status, headers dict lower-case, body bytes)."""
        import base64
        h = {'Host': host}
        if auth:
            h['Authorization'] = 'Basic ' + base64.b64encode(
                ('%s:%s' % auth).encode()).decode()
        h.update(headers or {})
        conn = self.https() if tls else self.http()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()
