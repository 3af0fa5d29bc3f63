"""Integration tests of the admin command line (`polaris -c FILE NOUN VERB ...`) and of
`serve` start-up and shutdown, run against the real binary with a throwaway data dir.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_cli.py
"""
import json
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402

GOOD_PW = 'Corr3ct-Horse!'
OTHER_PW = 'Batt3ry-Staple?'
STDIN_PW = 'St4ple-From-Stdin#'
ALL_PASSWORDS = (GOOD_PW, OTHER_PW, STDIN_PW)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.p = Polaris(start=False).__enter__()
        self.outputs = []

    def tearDown(self):
        self.p.__exit__(None, None, None)
        # No password, good or bad, ever shows up in anything the CLI printed.
        for out in self.outputs:
            for pw in ALL_PASSWORDS + getattr(self, 'extra_secrets', ()):
                self.assertNotIn(pw, out)

    # -- helpers ------------------------------------------------------------------------
    def run_cli(self, *args, input=None, json_out=False):
        r = self.p.cli(*args, input=input, json=json_out)
        self.outputs += [r.stdout, r.stderr]
        return r

    def ok(self, *args, **kw):
        r = self.run_cli(*args, **kw)
        self.assertEqual(r.returncode, 0, 'polaris %s: %s%s' % (' '.join(args), r.stdout,
                                                                 r.stderr))
        return r

    def js(self, *args, **kw):
        r = self.ok(*args, json_out=True, **kw)
        return json.loads(r.stdout)

    def fails(self, code, *args, **kw):
        r = self.run_cli(*args, **kw)
        self.assertEqual(r.returncode, code, 'polaris %s: expected exit %d, got %d: %s%s'
                         % (' '.join(args), code, r.returncode, r.stdout, r.stderr))
        self.assertTrue(r.stderr.startswith('polaris: '), r.stderr)
        return r

    def refused(self, *args, rule, **kw):
        """The store refused with a message naming the rule (one of them, for a tuple)."""
        r = self.fails(1, *args, **kw)
        rules = rule if isinstance(rule, tuple) else (rule,)
        self.assertTrue(any(x in r.stderr for x in rules), '%r not in %r' % (rules, r.stderr))
        return r

    def add_domain(self, name='example.com'):
        return self.ok('domain', 'add', name)

    def add_user(self, addr='alice@example.com', type_='enhanced', pw=GOOD_PW, *extra):
        return self.ok('user', 'add', addr, '--type', type_, '--password', pw, *extra)

    # -- help and usage -----------------------------------------------------------------
    def test_help_at_every_level(self):
        for args in (['--help'], ['-h'], ['help'], ['domain', '--help'], ['user', '--help'],
                     ['alias', '-h'], ['user', 'add', '--help'], ['user', 'add', '-h'],
                     ['domain', 'del', '--help'], ['alias', 'add', '--help'],
                     ['user', 'set', 'x@example.com', '--help'], ['serve', '--help']):
            r = self.ok(*args)
            self.assertIn('Usage: polaris', r.stdout, args)
            self.assertEqual(r.stderr, '', args)
        r = self.ok('--help')
        for cmd in ('serve', 'domain add', 'user add', 'user passwd', 'alias add'):
            self.assertIn(cmd, r.stdout)
        self.assertIn('--password-stdin', self.ok('user', 'add', '--help').stdout)

    def test_version(self):
        self.assertRegex(self.ok('--version').stdout, r'^polaris \d+\.\d+')

    def test_usage_errors_exit_2(self):
        r = self.fails(2, 'frobnicate')
        self.assertIn("unknown command 'frobnicate'", r.stderr)
        self.assertIn("Try 'polaris --help'.", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 2)
        r = self.fails(2, 'user', 'frob')
        self.assertIn("unknown subcommand 'frob'", r.stderr)
        self.assertIn("Try 'polaris user --help'.", r.stderr)
        self.fails(2, 'user')
        r = self.fails(2, 'user', 'add', 'a@example.com', '--type', 'basic', '--bogus', 'x',
                       '--password', GOOD_PW)
        self.assertIn("unknown option '--bogus'", r.stderr)
        self.assertIn("Try 'polaris user add --help'.", r.stderr)
        r = self.fails(2, 'user', 'add', '--type', 'basic', '--password', GOOD_PW)
        self.assertIn('missing', r.stderr)
        self.fails(2, 'domain', 'add')
        self.fails(2, 'domain', 'add', 'a.com', 'b.com')
        self.fails(2, 'domain', 'list', '--force')
        self.fails(2, 'user', 'add', 'a@example.com', '--type')
        self.fails(2, '--no-such-global')
        r = self.fails(2, 'user', 'add', 'a@example.com', '--type', 'premium', '--password',
                       GOOD_PW)
        self.assertIn('basic or enhanced', r.stderr)
        r = self.fails(2, 'user', 'add', 'a@example.com', '--type', 'basic', '--quota', 'lots',
                       '--password', GOOD_PW)
        self.assertIn('--quota', r.stderr)
        # neither or both password sources
        self.fails(2, 'user', 'add', 'a@example.com', '--type', 'basic')
        self.fails(2, 'user', 'add', 'a@example.com', '--type', 'basic', '--password', GOOD_PW,
                   '--password-stdin', input=GOOD_PW + '\n')
        self.fails(2, 'domain', 'set', 'example.com')
        self.fails(2, 'domain', 'set', 'example.com', '--local-delivery', 'maybe')
        self.fails(2, 'user', 'set', 'a@example.com')

    def test_mistyped_password_option_is_not_echoed(self):
        self.add_domain()
        r = self.fails(2, 'user', 'add', 'a@example.com', '--type', 'basic',
                       '--pasword=' + GOOD_PW)
        self.assertIn("unknown option '--pasword'", r.stderr)
        self.fails(2, 'user', 'add', 'a@example.com', '--type', 'basic', '--pasword', GOOD_PW)

    def test_global_options_after_command_and_equals_form(self):
        r = self.p.cli('domain', 'add', 'example.com', '--config=' + self.p.config_path,
                       '--json')
        self.outputs += [r.stdout, r.stderr]
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)['name'], 'example.com')
        self.ok('user', 'add', 'a@example.com', '--type=basic', '--quota=2G',
                '--password=' + GOOD_PW)
        self.assertEqual(self.js('user', 'show', 'a@example.com')['quota_bytes'], 2000000000)

    def test_missing_config_file(self):
        os.unlink(self.p.config_path)
        r = self.fails(1, 'domain', 'list')
        self.assertIn('polaris.ini', r.stderr)

    def test_bad_config_names_file_and_line(self):
        with open(self.p.config_path, 'a') as f:
            f.write('[server]\nbogus = 1\n')
        r = self.fails(1, 'domain', 'list')
        self.assertRegex(r.stderr, r'polaris\.ini:\d+: \[server\] bogus: unknown key')

    # -- domains --------------------------------------------------------------------------
    def test_domain_lifecycle(self):
        r = self.add_domain('Example.COM')
        self.assertIn('example.com', r.stdout)
        d = self.js('domain', 'show', 'example.com')
        self.assertEqual(d['name'], 'example.com')
        self.assertEqual(d['label'], 'example--com')
        self.assertEqual(d['web_host'], 'example--com.' + self.p.web_base)
        self.assertTrue(d['verification_token'])
        self.assertIs(d['verified'], False)
        self.assertIn(d['local_delivery'], (True, False))
        self.assertEqual(d['users'], 0)
        human = self.ok('domain', 'show', 'example.com').stdout
        for piece in ('example.com', 'example--com.' + self.p.web_base,
                      d['verification_token']):
            self.assertIn(piece, human)

        added = self.js('domain', 'add', 'my-company.co.uk')
        self.assertEqual(added['label'], 'my-company--co--uk')
        names = [x['name'] for x in self.js('domain', 'list')]
        self.assertEqual(sorted(names), ['example.com', 'my-company.co.uk'])
        self.assertIn('my-company.co.uk', self.ok('domain', 'list').stdout)

        self.ok('domain', 'set', 'example.com', '--local-delivery', 'on')
        self.assertIs(self.js('domain', 'show', 'example.com')['local_delivery'], True)
        self.ok('domain', 'set', 'example.com', '--local-delivery=off')
        self.assertIs(self.js('domain', 'show', 'example.com')['local_delivery'], False)

        dns = self.ok('domain', 'dns', 'example.com').stdout
        self.assertIn('mx-verification.example.com.', dns)
        self.assertIn(d['verification_token'], dns)
        self.assertIn('MX', dns)
        recs = self.js('domain', 'dns', 'example.com')
        self.assertIn('TXT', [x['type'] for x in recs])

        out = self.js('domain', 'del', 'my-company.co.uk')
        self.assertIs(out['ok'], True)
        self.assertEqual([x['name'] for x in self.js('domain', 'list')], ['example.com'])

    def test_domain_duplicate_and_label_collision(self):
        self.add_domain()
        r = self.fails(1, 'domain', 'add', 'example.com')
        self.assertIn('example.com', r.stderr)
        self.fails(1, 'domain', 'add', 'EXAMPLE.com')
        # "xn--a.com" and "xn.a.com" would both be served as xn--a--com.<web_base>
        self.add_domain('xn--a.com')
        r = self.fails(1, 'domain', 'add', 'xn.a.com')
        self.assertIn('label', r.stderr.lower())

    def test_domain_rules(self):
        for bad in ('nodot', '-bad.com', 'bad..com', 'exa mple.com', 'example.123'):
            r = self.fails(1, 'domain', 'add', '--', bad)
            self.assertIn('domain name', r.stderr, bad)

    def test_not_found(self):
        for args in (['domain', 'show', 'nosuch.com'], ['domain', 'del', 'nosuch.com'],
                     ['domain', 'dns', 'nosuch.com'],
                     ['domain', 'set', 'nosuch.com', '--local-delivery', 'on']):
            r = self.fails(1, *args)
            self.assertIn('not found', r.stderr, args)
        self.add_domain()
        for args in (['user', 'show', 'nobody@example.com'], ['user', 'del', 'nobody@example.com'],
                     ['user', 'passwd', 'nobody@example.com', '--password', GOOD_PW],
                     ['user', 'set', 'nobody@example.com', '--active', 'off']):
            r = self.fails(1, *args)
            self.assertIn('not found', r.stderr, args)
        r = self.run_cli('domain', 'show', 'nosuch.com', json_out=True)
        self.assertEqual(r.returncode, 1)
        err = json.loads(r.stdout)
        self.assertIn('not found', err['error'])
        self.assertEqual(err['code'], 'not_found')

    def test_domain_del_refuses_with_users_unless_force(self):
        self.add_domain()
        self.add_user()
        r = self.fails(1, 'domain', 'del', 'example.com')
        self.assertIn('force', r.stderr)
        self.assertIn('users', r.stderr)
        self.assertEqual(self.js('domain', 'show', 'example.com')['users'], 1)
        self.ok('user', 'show', 'alice@example.com')
        self.ok('domain', 'del', 'example.com', '--force')
        self.fails(1, 'domain', 'show', 'example.com')
        self.fails(1, 'user', 'show', 'alice@example.com')

    # -- users ----------------------------------------------------------------------------
    def test_user_lifecycle(self):
        self.add_domain()
        u = self.js('user', 'add', 'Alice@Example.com', '--type', 'enhanced', '--password',
                    GOOD_PW)
        self.assertEqual(u['address'], 'alice@example.com')
        self.assertEqual(u['type'], 'enhanced')
        self.assertEqual(u['quota_bytes'], 1000000000)  # the default, 1 GB
        self.assertIs(u['active'], True)
        self.add_user('bob@example.com', 'basic', OTHER_PW, '--quota', '500M')

        s = self.js('user', 'show', 'bob@example.com')
        self.assertEqual(s['type'], 'basic')
        self.assertEqual(s['quota_bytes'], 500000000)
        self.assertEqual(s['quota'], '500 MB')
        self.assertEqual(s['used_bytes'], 0)
        human = self.ok('user', 'show', 'bob@example.com').stdout
        for piece in ('bob@example.com', 'basic', '500 MB', '500000000 bytes', 'active'):
            self.assertIn(piece, human)

        listed = self.js('user', 'list')
        self.assertEqual(sorted(x['address'] for x in listed),
                         ['alice@example.com', 'bob@example.com'])
        self.assertEqual(len(self.js('user', 'list', 'example.com')), 2)
        self.assertIn('alice@example.com', self.ok('user', 'list').stdout)
        self.assertEqual(self.js('domain', 'show', 'example.com')['users'], 2)

        s = self.js('user', 'set', 'bob@example.com', '--type', 'enhanced', '--quota', '100G')
        self.assertEqual((s['type'], s['quota_bytes']), ('enhanced', 100000000000))
        s = self.js('user', 'set', 'bob@example.com', '--type', 'basic', '--quota', '50G')
        self.assertEqual((s['type'], s['quota_bytes']), ('basic', 50000000000))
        s = self.js('user', 'set', 'bob@example.com', '--active', 'off')
        self.assertIs(s['active'], False)
        self.assertIn('no', self.ok('user', 'show', 'bob@example.com').stdout)
        self.ok('user', 'set', 'bob@example.com', '--active=on')
        self.assertIs(self.js('user', 'show', 'bob@example.com')['active'], True)

        out = self.js('user', 'del', 'bob@example.com')
        self.assertIs(out['ok'], True)
        self.assertEqual([x['address'] for x in self.js('user', 'list')], ['alice@example.com'])

    def test_user_outputs_never_show_hash(self):
        self.add_domain()
        self.add_user()
        self.ok('user', 'passwd', 'alice@example.com', '--password', OTHER_PW)
        for r in (self.ok('user', 'show', 'alice@example.com'),
                  self.run_cli('user', 'show', 'alice@example.com', json_out=True),
                  self.run_cli('user', 'list', json_out=True), self.ok('user', 'list')):
            self.assertEqual(r.returncode, 0)
            self.assertNotIn('$y$', r.stdout)
            self.assertNotIn('$6$', r.stdout)
            self.assertNotIn('hash', r.stdout.lower())
        self.assertNotIn('pwhash', self.js('user', 'show', 'alice@example.com'))

    def test_password_stdin(self):
        self.add_domain()
        self.ok('user', 'add', 'carol@example.com', '--type', 'basic', '--password-stdin',
                input=STDIN_PW + '\r\n')
        self.ok('user', 'passwd', 'carol@example.com', '--password-stdin',
                input=OTHER_PW + '\nignored second line\n')
        self.ok('user', 'passwd', 'carol@example.com', '--password-stdin', input=GOOD_PW)
        r = self.fails(2, 'user', 'passwd', 'carol@example.com', '--password-stdin', input='')
        self.assertIn('no password on stdin', r.stderr)
        r = self.fails(2, 'user', 'passwd', 'carol@example.com', '--password-stdin',
                       input='Aa1!' * 300 + '\n')
        self.assertIn('1024', r.stderr)
        r = self.fails(1, 'user', 'passwd', 'carol@example.com', '--password-stdin',
                       input='short\n')
        self.assertIn('password must be at least', r.stderr)

    def test_user_on_unknown_domain(self):
        r = self.fails(1, 'user', 'add', 'alice@nosuch.com', '--type', 'basic', '--password',
                       GOOD_PW)
        self.assertIn('nosuch.com', r.stderr)

    def test_duplicate_user(self):
        self.add_domain()
        self.add_user()
        r = self.fails(1, 'user', 'add', 'alice@example.com', '--type', 'basic', '--password',
                       GOOD_PW)
        self.assertIn('alice@example.com', r.stderr)

    def test_localpart_rules(self):
        self.add_domain()
        cases = [
            ('1alice', 'must start with a letter'),
            ('_alice', 'must start with a letter'),
            ('al..ice', "must not contain '..'"),
            ('a' * 65, ('longer than 64', 'too long')),
            ('al+ice', 'may contain only'),
            ('al ice', 'may contain only'),
            ('alice.', "must not end with '.'"),
        ]
        for lp, rule in cases:
            self.refused('user', 'add', lp + '@example.com', '--type', 'basic', '--password',
                         GOOD_PW, rule=rule)
        self.ok('user', 'add', 'a' * 64 + '@example.com', '--type', 'basic', '--password',
                GOOD_PW)
        self.ok('user', 'add', 'j.doe-2_x@example.com', '--type', 'basic', '--password', GOOD_PW)

    def test_password_rules(self):
        self.add_domain()
        cases = [
            ('Ab1!xyz', 'at least 8'),
            ('lower-case-1', 'upper-case'),
            ('UPPER-CASE-1', 'lower-case'),
            ('No-Digits-Here', 'digit'),
            ('NoSymbols123', 'symbol'),
        ]
        self.extra_secrets = tuple(pw for pw, _ in cases)
        for pw, rule in cases:
            r = self.refused('user', 'add', 'dave@example.com', '--type', 'basic', '--password',
                             pw, rule=rule)
            self.assertIn('password', r.stderr)
        self.add_user('dave@example.com', 'basic')
        for pw, rule in cases:
            self.refused('user', 'passwd', 'dave@example.com', '--password', pw, rule=rule)
            self.refused('user', 'passwd', 'dave@example.com', '--password-stdin',
                         input=pw + '\n', rule=rule)

    def test_quota_rules(self):
        self.add_domain()
        bad = [('basic', '0.05G', '50 GB'), ('basic', '51G', '50 GB'),
               ('basic', '99M', '50 GB'), ('enhanced', '201G', '200 GB'),
               ('enhanced', '50M', '200 GB')]
        for type_, quota, limit in bad:
            r = self.refused('user', 'add', 'q@example.com', '--type', type_, '--quota', quota,
                             '--password', GOOD_PW, rule='between 0.1 GB and ' + limit)
            self.assertIn(type_, r.stderr)
        self.ok('user', 'add', 'b1@example.com', '--type', 'basic', '--quota', '0.1G',
                '--password', GOOD_PW)
        self.ok('user', 'add', 'b2@example.com', '--type', 'basic', '--quota', '50G',
                '--password', GOOD_PW)
        self.ok('user', 'add', 'e1@example.com', '--type', 'enhanced', '--quota', '200G',
                '--password', GOOD_PW)
        self.refused('user', 'set', 'b2@example.com', '--quota', '60G',
                     rule='between 0.1 GB and 50 GB')
        self.assertEqual(self.js('user', 'show', 'b2@example.com')['quota_bytes'], 50000000000)
        self.refused('user', 'set', 'e1@example.com', '--type', 'basic',
                     rule='between 0.1 GB and 50 GB')
        self.assertEqual(self.js('user', 'show', 'e1@example.com')['type'], 'enhanced')

    # -- aliases --------------------------------------------------------------------------
    def test_alias_lifecycle(self):
        self.add_domain()
        self.add_user()
        a = self.js('alias', 'add', 'sales@example.com', 'alice@example.com',
                    'partner@elsewhere.org')
        self.assertEqual(a['source'], 'sales@example.com')
        self.assertEqual(sorted(a['targets']), ['alice@example.com', 'partner@elsewhere.org'])
        self.ok('alias', 'add', 'junk@example.com', ':blackhole')
        self.ok('alias', 'add', '@example.com', 'alice@example.com')

        listed = {x['source']: sorted(x['targets']) for x in self.js('alias', 'list')}
        self.assertEqual(listed['sales@example.com'],
                         ['alice@example.com', 'partner@elsewhere.org'])
        self.assertEqual(listed['junk@example.com'], [':blackhole'])
        self.assertEqual(listed['@example.com'], ['alice@example.com'])
        self.assertEqual(len(self.js('alias', 'list', 'example.com')), 3)
        human = self.ok('alias', 'list').stdout
        self.assertIn('sales@example.com', human)
        self.assertIn('partner@elsewhere.org', human)

        self.ok('alias', 'del', 'sales@example.com', 'partner@elsewhere.org')
        listed = {x['source']: x['targets'] for x in self.js('alias', 'list')}
        self.assertEqual(listed['sales@example.com'], ['alice@example.com'])
        self.ok('alias', 'del', 'junk@example.com')
        listed = {x['source'] for x in self.js('alias', 'list')}
        self.assertNotIn('junk@example.com', listed)

        self.fails(2, 'alias', 'add', 'x@example.com')
        self.fails(1, 'alias', 'add', 'x@nosuch.com', 'alice@example.com')
        self.fails(1, 'alias', 'add', '1x@example.com', 'alice@example.com')

    # -- JSON -----------------------------------------------------------------------------
    def test_json_errors_on_stdout(self):
        r = self.run_cli('frobnicate', json_out=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn('frobnicate', json.loads(r.stdout)['error'])
        self.add_domain()
        r = self.run_cli('domain', 'add', 'example.com', json_out=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn('error', json.loads(r.stdout))
        r = self.run_cli('user', 'add', 'x"y@example.com', '--type', 'basic', '--password',
                         GOOD_PW, json_out=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn('may contain only', json.loads(r.stdout)['error'])
        r = self.run_cli('domain', 'list', json_out=True)
        self.assertEqual(json.loads(r.stdout)[0]['name'], 'example.com')

    def test_empty_lists_json(self):
        self.assertEqual(self.js('domain', 'list'), [])
        self.assertEqual(self.js('user', 'list'), [])
        self.assertEqual(self.js('alias', 'list'), [])

    # -- serve ----------------------------------------------------------------------------
    def test_serve_starts_and_stops_cleanly(self):
        self.p.start()
        code = self.p.stop(signal.SIGTERM)
        log = self.p.log()
        self.assertEqual(code, 0, log)
        self.assertIn('listening on http 127.0.0.1:%d' % self.p.http_port, log)
        self.assertIn('listening on https 127.0.0.1:%d' % self.p.https_port, log)
        self.assertIn(self.p.data_dir, log)
        self.assertRegex(log, r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO ')

    def test_serve_sigint_and_sighup(self):
        self.p.start()
        self.p.proc.send_signal(signal.SIGHUP)  # logged and ignored
        time.sleep(0.3)
        self.assertIsNone(self.p.proc.poll())
        self.assertIn('SIGHUP', self.p.log())
        self.assertEqual(self.p.stop(signal.SIGINT), 0, self.p.log())

    def test_serve_port_in_use(self):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('127.0.0.1', self.p.http_port))
            s.listen(1)
            r = self.p.cli('serve')
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r'polaris: .*in use')

    def test_serve_unwritable_data_dir(self):
        if os.geteuid() == 0:
            self.skipTest('root writes everywhere')
        os.makedirs(self.p.data_dir)
        os.chmod(self.p.data_dir, 0o500)
        try:
            r = self.p.cli('serve')
        finally:
            os.chmod(self.p.data_dir, 0o700)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(self.p.data_dir, r.stderr)

    def test_serve_starts_and_stops_line_listeners(self):
        with open(self.p.config_path, 'a') as f:
            f.write('imap = 127.0.0.1:0\npop3 = 127.0.0.1:0\n')
        self.p.start()
        self.assertEqual(self.p.stop(), 0)
        self.assertRegex(self.p.log(), r'INFO server: listening on imap port [1-9]\d*')
        self.assertRegex(self.p.log(), r'INFO server: listening on pop3 port [1-9]\d*')


if __name__ == '__main__':
    unittest.main(verbosity=2)
