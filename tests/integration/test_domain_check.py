"""`polaris domain dns` and `polaris domain check`: the records a domain publishes, and
their health seen through a DNS server of the test's own (dnsmasq on a loopback port)
serving a correct zone, a zone with a wrong MX, and a zone with nothing in it.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_domain_check.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris, free_port  # noqa: E402

EXTRA = ('[autodiscover]\npublic_host = mail.polaris.test\n'
         'mx = 5 mx.polaris.test, 10 mx2.polaris.test\n'
         'spf = v=spf1 include:polaris.test -all\n')
DNSMASQ = shutil.which('dnsmasq') or '/usr/sbin/dnsmasq'


def dnsmasq_args(records, wrong_mx=False):
    """dnsmasq options serving the records `domain dns --json` printed."""
    args, hosts = [], set()
    for r in records:
        name = r['name'].rstrip('.')
        v = r['value']
        if r['type'] == 'TXT':
            if name == 'example.com' and v.startswith('v=spf1'):
                v = 'v=spf1 a mx include:polaris.test include:other.test -all'  # ours among others
            chunks = [v[i:i + 255] for i in range(0, len(v), 255)]
            args.append('--txt-record=%s,%s' % (name, ','.join(chunks)))
        elif r['type'] == 'MX':
            pref, host = v.split()
            if wrong_mx:
                host = 'mx.elsewhere.test.'
            args.append('--mx-host=%s,%s,%s' % (name, host.rstrip('.'), pref))
        elif r['type'] == 'CNAME':
            target = v.rstrip('.')
            args.append('--cname=%s,%s' % (name, target))
            hosts.add(target)
        elif r['type'] == 'SRV':
            prio, weight, port, target = v.split()
            args.append('--srv-host=%s,%s,%s,%s,%s' % (name, target.rstrip('.'), port, prio,
                                                        weight))
    # dnsmasq answers CNAMEs only towards names it knows
    args += ['--host-record=%s,127.0.0.1' % h for h in sorted(hosts)]
    return args


class DomainCheck(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(DNSMASQ):
            self.skipTest('dnsmasq not installed')
        self.p = Polaris(start=False, listeners=(), extra_config=EXTRA).__enter__()
        self.p.cli_ok('domain', 'add', 'example.com')
        self.p.cli_ok('domain', 'dkim', 'example.com', '--enable')
        self.tmp = tempfile.mkdtemp(prefix='polaris-dns-')
        self.dns = None

    def tearDown(self):
        self.stop_dns()
        self.p.__exit__(None, None, None)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_dns(self, extra):
        self.stop_dns()
        self.port = free_port()
        user = 'root' if os.getuid() == 0 else os.environ.get('USER', 'nobody')
        self.dns = subprocess.Popen(
            [DNSMASQ, '--keep-in-foreground', '--no-resolv', '--no-hosts',
             '--listen-address=127.0.0.1', '--bind-interfaces', '--port=%d' % self.port,
             '--user=' + user, '--pid-file=' + os.path.join(self.tmp, 'dnsmasq.pid'),
             # authoritative answers (NXDOMAIN) for these zones, never "no upstream"
             '--local=/example.com/', '--local=/w.test/', '--local=/polaris.test/'] + extra,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.dns.poll() is not None:
                self.skipTest('dnsmasq did not start: %s' % self.dns.stderr.read())
            r = self.check()
            if r.returncode == 0:
                return
            time.sleep(0.05)

    def stop_dns(self):
        if self.dns:
            self.dns.terminate()
            self.dns.wait()
            self.dns.stderr.close()
            self.dns = None

    def check(self, json_out=True):
        return self.p.cli('domain', 'check', 'example.com', '--resolver',
                          '127.0.0.1:%d' % self.port, json=json_out)

    def records(self):
        return json.loads(self.p.cli_ok('domain', 'dns', 'example.com', json=True).stdout)

    def statuses(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        return out, {(x['name'], x['type'], x['value']): x['status'] for x in out['records']}

    # -- domain dns --------------------------------------------------------------------
    def test_dns_lists_every_record(self):
        recs = self.records()
        token = json.loads(self.p.cli_ok('domain', 'show', 'example.com', json=True).stdout)[
            'verification_token']
        got = {(r['name'], r['type']): r['value'] for r in recs}
        label = 'example--com.w.test.'
        self.assertEqual(got[('mx-verification.example.com.', 'TXT')], token)
        self.assertEqual(sorted(r['value'] for r in recs if r['type'] == 'MX'),
                         ['10 mx2.polaris.test.', '5 mx.polaris.test.'])
        self.assertEqual(got[('example.com.', 'TXT')], 'v=spf1 include:polaris.test -all')
        self.assertTrue(got[('polaris._domainkey.example.com.', 'TXT')].startswith('v=DKIM1;'))
        self.assertTrue(got[('_dmarc.example.com.', 'TXT')].startswith('v=DMARC1'))
        for name in ('autodiscover', 'autoconfig', 'mail', 'webmail'):
            self.assertEqual(got[(name + '.example.com.', 'CNAME')], label)
        self.assertEqual(got[('_imaps._tcp.example.com.', 'SRV')], '0 1 993 mail.polaris.test.')
        self.assertEqual(got[('_submissions._tcp.example.com.', 'SRV')],
                         '0 1 465 mail.polaris.test.')
        self.assertEqual(got[('_submission._tcp.example.com.', 'SRV')],
                         '0 1 587 mail.polaris.test.')
        self.assertEqual(got[('_pop3s._tcp.example.com.', 'SRV')], '10 1 995 mail.polaris.test.')
        self.assertEqual(got[('_caldavs._tcp.example.com.', 'SRV')], '0 1 443 ' + label)
        self.assertEqual(got[('_caldavs._tcp.example.com.', 'TXT')], 'path=/caldav/')
        self.assertEqual(got[('_carddavs._tcp.example.com.', 'SRV')], '0 1 443 ' + label)
        self.assertEqual(got[('_carddavs._tcp.example.com.', 'TXT')], 'path=/carddav/')
        self.assertEqual(got[('_autodiscover._tcp.example.com.', 'SRV')], '0 1 443 ' + label)
        # the zone-file fragment holds the same, TXT quoted in 255-byte strings
        text = self.p.cli_ok('domain', 'dns', 'example.com').stdout
        for r in recs:
            self.assertIn(r['name'], text)
        self.assertIn('"%s"' % token, text)
        self.assertRegex(text, r'_imaps\._tcp\.example\.com\.\s+3600 IN SRV\s+0 1 993 ')
        dk = [line for line in text.splitlines() if '_domainkey' in line][0]
        self.assertTrue(all(len(s) <= 255 for s in dk.split('"')[1::2]))

    def test_address_config_gives_a_records(self):
        with open(self.p.config_path, 'a') as f:
            f.write('address = 192.0.2.7, 2001:db8::7\n')
        got = [(r['name'], r['type'], r['value']) for r in self.records()]
        self.assertIn(('autodiscover.example.com.', 'A', '192.0.2.7'), got)
        self.assertIn(('autoconfig.example.com.', 'AAAA', '2001:db8::7'), got)
        self.assertNotIn('CNAME', [t for n, t, v in got if n == 'autodiscover.example.com.'])

    # -- domain check ------------------------------------------------------------------
    def test_correct_zone(self):
        recs = self.records()
        self.start_dns(dnsmasq_args(recs))
        out, st = self.statuses()
        bad = {k: v for k, v in st.items() if v != 'ok'}
        self.assertEqual(bad, {})
        self.assertIs(out['healthy'], True)
        self.assertIs(out['verified'], True)
        shown = json.loads(self.p.cli_ok('domain', 'show', 'example.com', json=True).stdout)
        self.assertIs(shown['verified'], True)
        text = self.check(json_out=False).stdout
        self.assertRegex(text, r'(?m)^ok\s+MX\s+example\.com\.')
        self.assertIn('example.com: verified', text)

    def test_wrong_mx(self):
        self.start_dns(dnsmasq_args(self.records(), wrong_mx=True))
        out, st = self.statuses()
        for (name, typ, value), status in st.items():
            self.assertEqual(status, 'wrong' if typ == 'MX' else 'ok', (name, typ, value))
        mx = [x for x in out['records'] if x['type'] == 'MX'][0]
        self.assertIn('mx.elsewhere.test', mx['found'])
        self.assertIs(out['healthy'], False)
        text = self.check(json_out=False).stdout
        self.assertRegex(text, r'(?m)^wrong\s+MX\s+example\.com\.\s+5 mx\.polaris\.test\.')

    def test_empty_zone(self):
        self.start_dns([])
        out, st = self.statuses()
        self.assertEqual(set(st.values()), {'missing'}, st)
        self.assertIs(out['verified'], False)
        self.assertIs(out['healthy'], False)
        shown = json.loads(self.p.cli_ok('domain', 'show', 'example.com', json=True).stdout)
        self.assertIs(shown['verified'], False)
        self.assertRegex(self.check(json_out=False).stdout,
                         r'(?m)^missing\s+TXT\s+mx-verification\.example\.com\.')

    def test_wrong_values(self):
        recs = self.records()
        args = dnsmasq_args([r for r in recs if not (r['type'] == 'TXT' and (
            r['name'].startswith('mx-verification') or r['value'].startswith('v=spf1')))])
        args += ['--txt-record=mx-verification.example.com,not-the-token',
                 '--txt-record=example.com,v=spf1 mx -all']
        args = [a for a in args if not a.startswith('--cname=autoconfig.')]
        args += ['--cname=autoconfig.example.com,elsewhere.w.test',
                 '--host-record=elsewhere.w.test,192.0.2.1']
        self.start_dns(args)
        out, st = self.statuses()
        self.assertEqual(st[('mx-verification.example.com.', 'TXT', recs[0]['value'])], 'wrong')
        self.assertEqual(st[('example.com.', 'TXT', 'v=spf1 include:polaris.test -all')], 'wrong')
        self.assertEqual(st[('autoconfig.example.com.', 'CNAME', 'example--com.w.test.')], 'wrong')
        self.assertEqual(st[('autodiscover.example.com.', 'CNAME', 'example--com.w.test.')], 'ok')
        self.assertIs(out['verified'], False)

    def test_bad_resolver_and_unknown_domain(self):
        r = self.p.cli('domain', 'check', 'example.com', '--resolver', 'not-an-ip:53')
        self.assertEqual(r.returncode, 2)
        r = self.p.cli('domain', 'check', 'nosuch.example')
        self.assertEqual(r.returncode, 1)
        self.assertIn('not found', r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
