"""Tenants stay apart: a user of one domain is refused on every host of another domain for
every HTTP route (ActiveSync, autodiscover, the profile, DAV paths); ActiveSync's `User`
parameter naming anyone else is refused; IMAP shows no other user's folders and no shared
namespace; SMTP does not let one tenant send as another; autoconfig and Autodiscover v2
answer the same bytes for an existing and a non-existing address.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/e2e/test_e2e_tenants.py
"""
import imaplib
import os
import poplib
import re
import smtplib
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Server, EasClient, message, text  # noqa: E402
import eas_client  # noqa: E402

ALICE, BOB, CAROL = 'alice@example.com', 'bob@example.com', 'carol@other.org'
EAS = '/Microsoft-Server-ActiveSync'
FS0 = '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'


class Tenants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        cls.addClassCleanup(cls.s.__exit__, None, None, None)   # also when setup fails
        cls.s.__enter__()
        cls.s.user(ALICE, 'enhanced')
        cls.s.user(BOB, 'enhanced')
        cls.s.user(CAROL, 'enhanced')
        cls.s.mx_send('x@example.net', [CAROL], message('carol private', to=CAROL))
        m = cls.s.imap(CAROL)
        m.create('"Carol Secret"')
        m.logout()

    def hosts(self, domain):
        return (self.s.host(domain), domain, 'mail.' + domain, 'autodiscover.' + domain,
                'autoconfig.' + domain)

    def test_http_routes_refuse_other_tenants_users(self):
        routes = [
            ('OPTIONS', EAS, None),
            ('POST', EAS + '?Cmd=FolderSync&User=alice&DeviceId=x1&DeviceType=T',
             eas_client.encode(FS0)),
            ('POST', '/autodiscover/autodiscover.xml', b'<Autodiscover/>'),
            ('GET', '/profile.mobileconfig', None),
            ('PROPFIND', '/caldav/', None),
            ('PROPFIND', '/carddav/', None),
            ('PROPFIND', '/principals/', None),
        ]
        logins = [(ALICE, self.s.pw(ALICE)), ('alice', self.s.pw(ALICE)),
                  ('EXAMPLE\\alice', self.s.pw(ALICE))]
        for host in self.hosts('other.org'):
            for method, path, body in routes:
                for login in logins:
                    with self.subTest(host=host, method=method, path=path, login=login[0]):
                        st, h, data = self.s.request(
                            method, path, host, body=body, auth=login, tls=True,
                            headers={'MS-ASProtocolVersion': '14.1', 'Depth': '0'})
                        self.assertEqual(st, 401, data[:200])
                        self.assertNotIn(b'example.com', data)
        # the same requests with carol's own login on her host get past authentication
        st, _, _ = self.s.request('OPTIONS', EAS, self.s.host('other.org'),
                                  auth=(CAROL, self.s.pw(CAROL)))
        self.assertEqual(st, 200)
        # a host that names no hosted domain says nothing
        st, _, data = self.s.request('OPTIONS', EAS, 'nosuch.example',
                                     auth=(ALICE, self.s.pw(ALICE)))
        self.assertEqual(st, 404)
        self.assertNotIn(b'example.com', data)

    def test_other_users_paths_on_own_host(self):
        """Alice, logged in on her own host, naming carol's or bob's DAV collections: never
        a success, never their data: 404, as for a path that does not exist (so a probe
        cannot tell an existing mailbox from a missing one)."""
        for path in ('/caldav/%s/' % CAROL, '/carddav/%s/' % CAROL, '/principals/%s/' % CAROL,
                     '/caldav/%s/' % BOB, '/carddav/%s/default/' % BOB):
            for method in ('PROPFIND', 'GET', 'REPORT'):
                with self.subTest(path=path, method=method):
                    st, _, data = self.s.request(method, path, self.s.host('example.com'),
                                                 auth=(ALICE, self.s.pw(ALICE)),
                                                 headers={'Depth': '1'})
                    self.assertEqual(st, 404, data[:200])
                    self.assertNotIn(b'carol', data)

    def test_autodiscover_pox_reveals_no_mailboxes(self):
        """Alice asking Outlook's autodiscover about other addresses gets one error, the
        same for a mailbox of her domain, one of another domain and no mailbox at all."""
        def ask(addr):
            body = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.'
                    'microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>'
                    '<EMailAddress>%s</EMailAddress><AcceptableResponseSchema>http://schemas.'
                    'microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
                    '</AcceptableResponseSchema></Request></Autodiscover>' % addr)
            st, _, data = self.s.request('POST', '/autodiscover/autodiscover.xml',
                                         'autodiscover.example.com', body=body.encode(),
                                         auth=(ALICE, self.s.pw(ALICE)), tls=True)
            self.assertEqual(st, 200)
            # the error's Time and Id attributes differ per answer; nothing else may
            return re.sub(rb' (Time|Id)="[^"]*"', b'', data)
        answers = [ask(a) for a in (BOB, CAROL, 'nobody@example.com', 'nobody@other.org')]
        self.assertEqual(len(set(answers)), 1, answers)
        self.assertIn(b'ErrorCode', answers[0])
        self.assertNotIn(b'bob', answers[0])

    def test_activesync_user_parameter(self):
        c = EasClient(self.s, ALICE, self.s.pw(ALICE), device_id='tenant1')
        for other in (BOB, 'bob', 'EXAMPLE\\bob', CAROL, 'carol', 'OTHER\\carol'):
            for b64 in (False, True):
                with self.subTest(user=other, base64=b64):
                    if b64:
                        q = eas_client.make_base64_query('FolderSync', 'tenant1', 'T', '14.1',
                                                         params={'User': other})
                        path = EAS + '?' + urllib.parse.quote(q, safe='')
                        h = {}
                    else:
                        path = EAS + '?' + urllib.parse.urlencode({
                            'Cmd': 'FolderSync', 'User': other, 'DeviceId': 'tenant1',
                            'DeviceType': 'T'})
                        h = {'MS-ASProtocolVersion': '14.1'}
                    h['Content-Type'] = 'application/vnd.ms-sync.wbxml'
                    st, _, _ = c.request('POST', path, body=eas_client.encode(FS0), headers=h)
                    self.assertEqual(st, 403)
        # its own name in any spelling is fine
        for me in (ALICE, 'ALICE', 'EXAMPLE\\alice'):
            c.user = me
            st, _, _ = c.post('FolderSync', FS0)
            c.user = ALICE
            self.assertNotIn(st, (401, 403), me)

    def test_imap_shows_no_other_users_folders(self):
        m = self.s.imap(ALICE)
        self.addCleanup(m.logout)
        typ, d = m.list('""', '*')
        self.assertEqual(typ, 'OK')
        names = b'\n'.join(x for x in d if x)
        self.assertNotIn(b'Carol', names)
        self.assertNotIn(b'other.org', names)
        typ, d = m.namespace()
        self.assertEqual(typ, 'OK')
        # personal namespace only: the other-users and shared parts are NIL
        self.assertRegex(d[0], rb'^\(\(.*\)\) NIL NIL$')
        for name in ('carol@other.org/INBOX', 'Carol Secret', '../carol/INBOX',
                     'Other Users/carol', '#shared/carol'):
            typ, _ = m.select('"%s"' % name)
            self.assertEqual(typ, 'NO', name)
        typ, d = m.list('""', '"%carol%"')
        self.assertEqual([x for x in d if x], [])
        typ, d = m.status('"Carol Secret"', '(MESSAGES)')
        self.assertEqual(typ, 'NO')

    def test_line_protocols_need_the_full_address(self):
        """IMAP, POP3 and SMTP have no Host to name a tenant: a bare local part or
        DOMAIN\\user login is refused even with the right password (alice exists in both
        domains here)."""
        s = self.s
        s.user('alice@other.org', 'basic')
        for login, pw in (('alice', s.pw(ALICE)), ('alice', s.pw('alice@other.org')),
                          ('carol', s.pw(CAROL)), ('OTHER\\carol', s.pw(CAROL)),
                          ('alice@other.org', s.pw(ALICE))):
            with self.subTest(login=login):
                m = imaplib.IMAP4('127.0.0.1', s.ports['imap'], timeout=30)
                with self.assertRaisesRegex(imaplib.IMAP4.error, 'AUTHENTICATIONFAILED'):
                    m.login(login, pw)
                m.logout()
                p = poplib.POP3('127.0.0.1', s.ports['pop3'], timeout=30)
                p.user(login)
                with self.assertRaises(poplib.error_proto):
                    p.pass_(pw)
                p.quit()
                sm = smtplib.SMTP('127.0.0.1', s.ports['submission'], timeout=30)
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    sm.login(login, pw)
                sm.quit()
        # each alice with her own full address and password is herself
        for addr in (ALICE, 'alice@other.org'):
            m = s.imap(addr)
            typ, d = m.select('INBOX')
            self.assertEqual(typ, 'OK')
            m.logout()

    def test_smtp_keeps_tenants_apart(self):
        sub = self.s.submit(ALICE)
        with self.assertRaises(smtplib.SMTPException):
            sub.sendmail(CAROL, [BOB], message('spoofed', sender=CAROL, to=BOB))
        sub.quit()
        # the MX relays for nobody: a foreign recipient from outside is refused
        mx = self.s.mx()
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            mx.sendmail('x@example.net', ['someone@elsewhere.example'], message('relay'))
        mx.quit()
        # carol's mailbox got nothing of that
        m = self.s.imap(CAROL)
        typ, d = m.select('INBOX')
        self.assertEqual(int(d[0]), 1)
        m.logout()

    def test_autoconfig_reveals_no_mailboxes(self):
        pairs = [
            ('autoconfig.example.com', '/mail/config-v1.1.xml?emailaddress=%s'),
            ('example.com', '/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=%s'),
            (self.s.host('example.com'), '/mail/config-v1.1.xml?emailaddress=%s'),
            ('autodiscover.example.com',
             '/autodiscover/autodiscover.json?Email=%s&Protocol=ActiveSync'),
            ('autodiscover.example.com',
             '/autodiscover/autodiscover.json?Email=%s&Protocol=AutodiscoverV1'),
        ]
        for host, path in pairs:
            answers = []
            for addr in (ALICE, 'nobody@example.com', BOB.upper()):
                st, h, data = self.s.request('GET', path % urllib.parse.quote(addr), host)
                self.assertEqual(st, 200, (host, path, data))
                h.pop('date', None)
                answers.append((h, data))
            with self.subTest(host=host, path=path):
                self.assertEqual(answers[0], answers[1])
                self.assertEqual(answers[0], answers[2])
                self.assertNotIn(b'alice', answers[0][1])
        # another domain's address on this domain's host gives no answer about it
        st, _, data = self.s.request('GET', '/mail/config-v1.1.xml?emailaddress=' +
                                     urllib.parse.quote(CAROL), 'autoconfig.example.com')
        self.assertNotIn(b'other.org', data)

    def test_activesync_items_are_per_user(self):
        """A ServerId or FileReference is read in the requesting user's own store: bob
        naming carol's item gets "not found", not her message."""
        carol = self.s.eas(CAROL, 'cdev', version='14.1')
        sids = list(carol.initial('Inbox'))
        self.assertEqual(len(sids), 1)
        bob = self.s.eas(BOB, 'bdev', version='14.1')
        bob.initial('Inbox')
        _, _, t = bob.c.post('ItemOperations', '<ItemOperations xmlns="ItemOperations:"><Fetch>'
                             '<Store>Mailbox</Store><AirSync:CollectionId xmlns:AirSync="AirSync:">'
                             '%s</AirSync:CollectionId><AirSync:ServerId xmlns:AirSync='
                             '"AirSync:">%s</AirSync:ServerId></Fetch></ItemOperations>'
                             % (sids[0].split(':')[0], sids[0]))
        self.assertNotEqual(text(t, 'ItemOperations:Response/ItemOperations:Fetch/'
                                    'ItemOperations:Status'), '1')
        self.assertNotIn(b'carol private', eas_client.tostring(t).encode())


if __name__ == '__main__':
    unittest.main(verbosity=2)
