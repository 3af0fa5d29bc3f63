"""The mailbox-type gate across every service: a Basic and an Enhanced mailbox against IMAP,
POP3, SMTP submission, ActiveSync, CalDAV, CardDAV (and /principals), what Outlook's and
a phone's autodiscover answers contain, and what the Apple profile configures. Then
`polaris user set --type` (and `--active`) taking effect on the very next request, and
ending a Ping or a Sync with Wait that is already waiting with 403 at once (not at the
next commit or the 5-minute gate check), while an IMAP IDLE stays silent and a change
that leaves ActiveSync allowed keeps the waits going.

CalDAV/CardDAV (dav/): a Depth 0 PROPFIND of /caldav/, /carddav/ and /principals/ answers
207 for an Enhanced mailbox; a Basic mailbox gets 403 from the gate.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/e2e/test_e2e_gates.py
"""
import imaplib
import os
import plistlib
import poplib
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Server, EasClient, Idler, message, text  # noqa: E402

NS_MS = 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006'
NS_OUT = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
POX = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.'
       'com/exchange/autodiscover/%s/requestschema/2006"><Request><EMailAddress>%s'
       '</EMailAddress><AcceptableResponseSchema>%s</AcceptableResponseSchema></Request>'
       '</Autodiscover>')
PROPFIND = ('<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop>'
            '<resourcetype/></prop></propfind>')

BASIC, ENHANCED = 'basic', 'enhanced'


def q(ns, tag):
    return '{%s}%s' % (ns, tag)


class Gates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        cls.addClassCleanup(cls.s.__exit__, None, None, None)   # also when setup fails
        cls.s.__enter__()
        cls.s.user('bas@example.com', BASIC)
        cls.s.user('enh@example.com', ENHANCED)
        cls.ndev = 0

    # -- one probe per service: a short word for what the client saw ----------------------
    def imap(self, addr):
        m = self.s.imap(addr)
        typ, _ = m.select('INBOX')
        m.logout()
        return 'ok' if typ == 'OK' else typ

    def pop3(self, addr):
        c = self.s.pop3(addr)
        c.stat()
        c.quit()
        return 'ok'

    def smtp(self, addr):
        sub = self.s.submit(addr)
        refused = sub.sendmail(addr, [addr], message('gate check', sender=addr, to=addr))
        sub.quit()
        return 'ok' if not refused else refused

    def eas(self, addr):
        """HTTP status of a first ActiveSync request (Provision) from a new device."""
        type(self).ndev += 1
        cl = EasClient(self.s, addr, self.s.pw(addr), device_id='gate%d' % self.ndev)
        st, _, _ = cl.post('Provision', '<Provision xmlns="Provision:"><Policies><Policy>'
                           '<PolicyType>MS-EAS-Provisioning-WBXML</PolicyType></Policy>'
                           '</Policies></Provision>')
        return st

    def dav(self, addr, path):
        st, _, _ = self.s.request('PROPFIND', path, self.s.host('example.com'), body=PROPFIND,
                                  headers={'Depth': '0', 'Content-Type': 'application/xml'},
                                  auth=(addr, self.s.pw(addr)))
        return st

    def autodiscover(self, addr, schema):
        """'imap+pop3+smtp' (outlook schema), the ActiveSync URL or the error code
        (mobilesync schema)."""
        ns_resp = NS_OUT if schema == 'outlook' else NS_MS
        body = POX % (schema, addr, ns_resp)
        st, _, data = self.s.request('POST', '/autodiscover/autodiscover.xml',
                                     'autodiscover.example.com', body=body.encode(),
                                     headers={'Content-Type': 'text/xml'},
                                     auth=(addr, self.s.pw(addr)), tls=True)
        self.assertEqual(st, 200, data)
        root = ET.fromstring(data)
        if schema == 'outlook':
            protos = sorted(p.findtext(q(NS_OUT, 'Type')) for p in root.iter(q(NS_OUT, 'Protocol')))
            self.assertNotIn(b'Microsoft-Server-ActiveSync', data)
            return '+'.join(protos).lower()
        url = root.find('.//' + q(NS_MS, 'Url'))
        if url is not None:
            return url.text
        return 'error ' + root.find('.//' + q(NS_MS, 'ErrorCode')).text

    def profile(self, addr):
        """The PayloadTypes the signed .mobileconfig installs."""
        st, _, data = self.s.request('GET', '/profile.mobileconfig', self.s.host('example.com'),
                                     auth=(addr, self.s.pw(addr)), tls=True,
                                     headers={'User-Agent': 'Mozilla/5.0 (iPhone)'})
        self.assertEqual(st, 200, data[:200])
        with tempfile.NamedTemporaryFile(suffix='.mobileconfig') as f:
            f.write(data)
            f.flush()
            r = subprocess.run(['openssl', 'smime', '-verify', '-inform', 'DER', '-in', f.name,
                                '-CAfile', os.path.join(self.s.data_dir, 'tls', 'cert.pem'),
                                '-purpose', 'any'], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return '+'.join(p['PayloadType'] for p in plistlib.loads(r.stdout)['PayloadContent'])

    def row(self, addr):
        return {
            'IMAP': self.imap(addr),
            'POP3': self.pop3(addr),
            'SMTP': self.smtp(addr),
            'ActiveSync': self.eas(addr),
            'CalDAV': self.dav(addr, '/caldav/'),
            'CardDAV': self.dav(addr, '/carddav/'),
            'principals': self.dav(addr, '/principals/'),
            'autodiscover outlook': self.autodiscover(addr, 'outlook'),
            'autodiscover mobilesync': self.autodiscover(addr, 'mobilesync'),
            'profile': self.profile(addr),
        }

    def check_row(self, got, kind):
        eas_url = 'https://%s/Microsoft-Server-ActiveSync' % self.s.host('example.com')
        for svc in ('IMAP', 'POP3', 'SMTP'):
            self.assertEqual(got[svc], 'ok', (kind, svc))
        self.assertEqual(got['autodiscover outlook'], 'imap+pop3+smtp', kind)
        if kind == BASIC:
            self.assertEqual(got['ActiveSync'], 403)
            for svc in ('CalDAV', 'CardDAV', 'principals'):
                self.assertEqual(got[svc], 403, svc)
            self.assertEqual(got['autodiscover mobilesync'], 'error 601')
            self.assertEqual(got['profile'], 'com.apple.mail.managed')
        else:
            self.assertEqual(got['ActiveSync'], 200)
            for svc in ('CalDAV', 'CardDAV', 'principals'):
                self.assertEqual(got[svc], 207, svc)
            self.assertEqual(got['autodiscover mobilesync'], eas_url)
            self.assertEqual(got['profile'], 'com.apple.eas.account')

    # ------------------------------------------------------------------------------------
    def test_matrix(self):
        rows = {kind: self.row('%s@example.com' % kind[:3]) for kind in (BASIC, ENHANCED)}
        print('\n%-24s %-14s %s' % ('service', 'basic', 'enhanced'))
        for svc in rows[BASIC]:
            print('%-24s %-14s %s' % (svc, str(rows[BASIC][svc])[:14], rows[ENHANCED][svc]))
        for kind, got in rows.items():
            self.check_row(got, kind)

    def test_suspended_mailbox_refused_everywhere(self):
        """`user set --active off`: no service at all, each with its protocol's error."""
        addr = 'off@example.com'
        self.s.user(addr, ENHANCED)
        self.s.cli_ok('user', 'set', addr, '--active', 'off')
        pw = self.s.pw(addr)
        m = imaplib.IMAP4('127.0.0.1', self.s.ports['imap'], timeout=30)
        with self.assertRaisesRegex(imaplib.IMAP4.error, 'CONTACTADMIN'):
            m.login(addr, pw)
        m.logout()
        p = poplib.POP3('127.0.0.1', self.s.ports['pop3'], timeout=30)
        p.user(addr)
        with self.assertRaises(poplib.error_proto):
            p.pass_(pw)
        p.quit()
        sm = smtplib.SMTP('127.0.0.1', self.s.ports['submission'], timeout=30)
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            sm.login(addr, pw)
        sm.quit()
        for method, path in (('POST', '/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=off'
                                       '&DeviceId=x&DeviceType=T'),
                             ('PROPFIND', '/caldav/'), ('PROPFIND', '/carddav/'),
                             ('GET', '/profile.mobileconfig'),
                             ('POST', '/autodiscover/autodiscover.xml')):
            st, _, _ = self.s.request(method, path, self.s.host('example.com'), auth=(addr, pw),
                                      tls=True)
            self.assertEqual(st, 401, path)
        # on again: back to normal on the next request
        self.s.cli_ok('user', 'set', addr, '--active', 'on')
        self.check_row(self.row(addr), ENHANCED)

    def test_type_change_applies_to_the_next_request(self):
        addr = 'flip@example.com'
        self.s.user(addr, BASIC)
        self.check_row(self.row(addr), BASIC)
        self.s.set_type(addr, ENHANCED)
        self.check_row(self.row(addr), ENHANCED)
        self.s.set_type(addr, BASIC)
        self.check_row(self.row(addr), BASIC)

    def waiting_ping(self, addr, device):
        """A device of addr with a Ping waiting (heartbeat 50 s) on its Inbox; returns the
        thread and where its answer goes."""
        eas = self.s.eas(addr, device)
        eas.initial('Inbox')
        res = {}
        th = threading.Thread(target=lambda: res.update(
            r=eas.timed_post('Ping', eas.ping_request(['Inbox'], 50))))
        th.start()
        time.sleep(0.5)
        self.assertTrue(th.is_alive(), 'the Ping did not wait')
        return eas, th, res

    def modseq(self, addr):
        """The mailbox's HIGHESTMODSEQ as IMAP SELECT reports it."""
        m = self.s.imap(addr)
        m.enable('CONDSTORE')
        typ, d = m.select('INBOX')
        hms = m.untagged_responses.get('OK', [])
        m.logout()
        return [x for x in hms if b'HIGHESTMODSEQ' in x]

    def test_type_change_ends_waiting_ping(self):
        """Regression: `user set --type basic` used to leave a waiting Ping until the next
        commit to the mailbox or the 5-minute gate check; it now answers 403 at once,
        with nothing committed to the store."""
        addr = 'pinger@example.com'
        self.s.user(addr, ENHANCED)
        eas, th, res = self.waiting_ping(addr, 'typedev')
        before = self.modseq(addr)
        t0 = time.monotonic()
        self.s.set_type(addr, BASIC)
        t_cli = time.monotonic()
        th.join(10)
        self.assertFalse(th.is_alive(), 'the Ping still waits after the type change')
        st, t, _ = res['r']
        self.assertEqual(st, 403)
        print('\nPing ended %.1f ms after `user set --type basic` began (%.1f ms after the CLI '
              'exited)' % ((t - t0) * 1000, (t - t_cli) * 1000))
        self.assertEqual(self.modseq(addr), before, 'the type change committed to the store')
        # and the next request is refused too
        st, _, _ = eas.c.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0'
                              '</SyncKey></FolderSync>')
        self.assertEqual(st, 403)

    def test_account_delete_ends_waiting_ping(self):
        """Regression: `user del` left a waiting Ping hanging until its heartbeat; the
        deletion now wakes it and the gate, finding no mailbox, answers 403."""
        addr = 'leaver@example.com'
        self.s.user(addr, ENHANCED)
        eas, th, res = self.waiting_ping(addr, 'leavedev')
        self.s.cli_ok('user', 'del', addr)
        th.join(10)
        self.assertFalse(th.is_alive(), 'the Ping still waits after the mailbox was deleted')
        self.assertEqual(res['r'][0], 403)

    def test_type_change_leaves_imap_idle_alone(self):
        """The type change wakes every waiter of the mailbox; IMAP, allowed either way,
        finds nothing new and stays silent in IDLE."""
        addr = 'idler@example.com'
        self.s.user(addr, ENHANCED)
        idler = Idler(self.s, addr)
        self.addCleanup(idler.close)
        idler.idle()
        self.s.set_type(addr, BASIC)
        self.assertTrue(idler.quiet(1), 'IDLE said something after the type change')
        idler.done()
        self.s.mx_send('x@example.net', [addr], message('still idling', to=addr))
        idler.idle()
        _, line = idler.wait(timeout=10)
        self.assertRegex(line, r'^\* 1 EXISTS$')
        idler.done()

    def test_suspension_ends_waiting_ping(self):
        addr = 'paused@example.com'
        self.s.user(addr, ENHANCED)
        eas, th, res = self.waiting_ping(addr, 'pausedev')
        self.s.cli_ok('user', 'set', addr, '--active', 'off')
        th.join(10)
        self.assertFalse(th.is_alive(), 'the Ping still waits after the suspension')
        self.assertEqual(res['r'][0], 403)

    def test_type_change_ends_waiting_sync(self):
        """A Sync with Wait is the other request that hangs: it ends with 403 as well."""
        addr = 'syncwait@example.com'
        self.s.user(addr, ENHANCED)
        eas = self.s.eas(addr, 'waitdev')
        eas.initial('Inbox')
        coll = eas.fid('Inbox')
        res = {}
        req = ('<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>%s</SyncKey>'
               '<CollectionId>%s</CollectionId></Collection></Collections><Wait>1</Wait>'
               '</Sync>' % (eas.keys[coll], coll))
        th = threading.Thread(target=lambda: res.update(r=eas.timed_post('Sync', req)))
        th.start()
        time.sleep(0.5)
        self.assertTrue(th.is_alive(), 'the Sync did not wait')
        self.s.set_type(addr, BASIC)
        th.join(10)
        self.assertFalse(th.is_alive(), 'the Sync still waits after the type change')
        self.assertEqual(res['r'][0], 403)

    def test_wake_without_news_keeps_waiting(self):
        """A type change that leaves ActiveSync allowed (enhanced -> enhanced) wakes the
        waiting Ping and Sync; both find nothing, wait on, and answer the next mail."""
        addr = 'stays@example.com'
        self.s.user(addr, ENHANCED)
        eas, th, res = self.waiting_ping(addr, 'staydev')
        sync_dev = self.s.eas(addr, 'staysync')
        sync_dev.initial('Inbox')
        coll = sync_dev.fid('Inbox')
        req = ('<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>%s</SyncKey>'
               '<CollectionId>%s</CollectionId></Collection></Collections><Wait>1</Wait>'
               '</Sync>' % (sync_dev.keys[coll], coll))
        th2 = threading.Thread(target=lambda: res.update(s=sync_dev.timed_post('Sync', req)))
        th2.start()
        time.sleep(0.5)
        self.s.set_type(addr, ENHANCED)
        time.sleep(1)
        self.assertTrue(th.is_alive() and th2.is_alive(), 'a wake-up without news answered')
        self.s.mx_send('x@example.net', [addr], message('news at last', to=addr))
        th.join(10)
        th2.join(10)
        self.assertFalse(th.is_alive() or th2.is_alive())
        st, _, tree = res['r']
        self.assertEqual((st, text(tree, 'Ping:Status')), (200, '2'))
        st, _, tree = res['s']
        self.assertEqual(st, 200)
        adds = [text(a, 'AirSync:ApplicationData/Email:Subject')
                for a in tree.iter('{AirSync:}Add')]
        self.assertEqual(adds, ['news at last'])

    def test_enhanced_again_pings_again(self):
        """Back to Enhanced: the device's next Ping waits and wakes as before."""
        addr = 'back@example.com'
        self.s.user(addr, ENHANCED)
        eas, th, res = self.waiting_ping(addr, 'backdev')
        self.s.set_type(addr, BASIC)
        th.join(10)
        self.assertEqual(res['r'][0], 403)
        self.s.set_type(addr, ENHANCED)
        eas, th, res = self.waiting_ping(addr, 'backdev')
        self.s.mx_send('x@example.net', [addr], message('after the flip', to=addr))
        th.join(10)
        self.assertFalse(th.is_alive())
        st, _, tree = res['r']
        self.assertEqual((st, text(tree, 'Ping:Status')), (200, '2'))


if __name__ == '__main__':
    unittest.main(verbosity=2)
