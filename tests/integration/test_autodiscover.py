"""Autodiscover, autoconfig and Apple profiles, driven through the real binary.

POX Autodiscover gets the request bodies real clients send (Outlook and eM Client: the
outlook schema; iOS, Android: the mobilesync schema) on every host and path spelling a
client may use, and the answers are checked against the elements the schemas require
([MS-OXDSCLI], [MS-ASCMD] 2.2.1.1). Autodiscover v2 (JSON), Thunderbird autoconfig and the
signed .mobileconfig are checked the way their clients read them.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_autodiscover.py
"""
import base64
import http.client
import json
import os
import plistlib
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402

ALICE = ('alice@example.com', 'Alice-Pass1!')   # enhanced (add_demo)
BOB = ('bob@example.com', 'Bob-Pass1!')         # basic (add_demo)
CAROL = ('carol@other.org', 'Carol-Pass1!')     # basic, another tenant
PUBLIC_HOST = 'mail.polaris.test'
EXTRA = '[auth]\nfail_max = 1000\n\n[autodiscover]\npublic_host = %s\n' % PUBLIC_HOST

NS_RESP = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006'
NS_OUT = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
NS_MS = 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006'
OUT_REQ = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006'
MS_REQ = 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006'

# The bodies as the clients send them.
BODIES = {
    # Outlook desktop ([MS-OXDSCLI] 4.1)
    'outlook': ('<?xml version="1.0" encoding="utf-8"?>\r\n'
                '<Autodiscover xmlns="%s">\r\n  <Request>\r\n'
                '    <EMailAddress>{addr}</EMailAddress>\r\n'
                '    <AcceptableResponseSchema>%s</AcceptableResponseSchema>\r\n'
                '  </Request>\r\n</Autodiscover>\r\n' % (OUT_REQ, NS_OUT), 'outlook'),
    # eM Client (.NET XmlSerializer: xsi/xsd declarations, BOM)
    'emclient': ('\ufeff<?xml version="1.0" encoding="utf-8"?>'
                 '<Autodiscover xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                 'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="%s"><Request>'
                 '<EMailAddress>{addr}</EMailAddress>'
                 '<AcceptableResponseSchema>%s</AcceptableResponseSchema>'
                 '</Request></Autodiscover>' % (OUT_REQ, NS_OUT), 'outlook'),
    # iOS Mail (ActiveSync account setup)
    'ios': ('<?xml version="1.0" encoding="UTF-8"?>\n<Autodiscover xmlns="%s">\n<Request>\n'
            '<EMailAddress>{addr}</EMailAddress>\n'
            '<AcceptableResponseSchema>%s</AcceptableResponseSchema>\n'
            '</Request>\n</Autodiscover>\n' % (MS_REQ, NS_MS), 'mobilesync'),
    # Android's Exchange client (XmlSerializer: single quotes, standalone)
    'android': ("<?xml version='1.0' encoding='UTF-8' standalone='no' ?>"
                '<Autodiscover xmlns="%s"><Request><EMailAddress>{addr}</EMailAddress>'
                '<AcceptableResponseSchema>%s</AcceptableResponseSchema></Request>'
                '</Autodiscover>' % (MS_REQ, NS_MS), 'mobilesync'),
    # Tools that mix the outlook request namespace with the mobilesync response schema
    'mixed': ('<Autodiscover xmlns="%s"><Request><EMailAddress>{addr}</EMailAddress>'
              '<AcceptableResponseSchema>%s</AcceptableResponseSchema></Request>'
              '</Autodiscover>' % (OUT_REQ, NS_MS), 'mobilesync'),
}
PATHS = ('/autodiscover/autodiscover.xml', '/Autodiscover/Autodiscover.xml',
         '/AutoDiscover/AutoDiscover.xml', '/AUTODISCOVER/AUTODISCOVER.XML')


def q(ns, tag):
    return '{%s}%s' % (ns, tag)


class Autodiscover(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(extra_config=EXTRA)
        cls.p.__enter__()
        cls.p.add_demo()
        cls.p.cli_ok('domain', 'add', 'other.org')
        cls.p.cli_ok('user', 'add', CAROL[0], '--type', 'basic', '--password', CAROL[1])
        # sales@other.org is an alias of alice's mailbox; info@example.com too
        cls.p.cli_ok('alias', 'add', 'sales@other.org', ALICE[0])
        cls.p.cli_ok('alias', 'add', 'info@example.com', ALICE[0])
        cls.label = cls.p.label_host('example.com')
        cls.ctx = ssl.create_default_context(
            cafile=os.path.join(cls.p.data_dir, 'tls', 'cert.pem'))
        cls.ctx.check_hostname = False  # autodiscover.<domain> is not on the test cert

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    # -- plumbing ------------------------------------------------------------------------
    def https(self, method, path, host, body=None, auth=None, headers=None):
        conn = http.client.HTTPSConnection(host, self.p.https_port, timeout=10, context=self.ctx)
        conn._create_connection = lambda addr, *a, **k: socket.create_connection(
            ('127.0.0.1', self.p.https_port), *a, **k)
        h = {'Host': host}
        if auth:
            h['Authorization'] = 'Basic ' + base64.b64encode(
                ('%s:%s' % auth).encode()).decode()
        if body is not None:
            h['Content-Type'] = 'text/xml; charset=utf-8'
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def pox(self, client, addr, auth, host=None, path=PATHS[0]):
        body = BODIES[client][0].replace('{addr}', addr).encode('utf-8')
        status, headers, data = self.https('POST', path, host or self.label, body, auth)
        self.assertEqual(status, 200, data)
        self.assertTrue(headers['content-type'].startswith('text/xml'), headers)
        root = ET.fromstring(data)
        self.assertEqual(root.tag, q(NS_RESP, 'Autodiscover'))
        return root

    def check_outlook(self, root, addr):
        resp = root.find(q(NS_OUT, 'Response'))
        self.assertIsNotNone(resp, ET.tostring(root))
        self.assertEqual(resp.findtext(q(NS_OUT, 'User') + '/' + q(NS_OUT, 'AutoDiscoverSMTPAddress')),
                         addr)
        acct = resp.find(q(NS_OUT, 'Account'))
        self.assertEqual(acct.findtext(q(NS_OUT, 'AccountType')), 'email')
        self.assertEqual(acct.findtext(q(NS_OUT, 'Action')), 'settings')
        protos = {p.findtext(q(NS_OUT, 'Type')): p for p in acct.findall(q(NS_OUT, 'Protocol'))}
        self.assertEqual(sorted(protos), ['IMAP', 'POP3', 'SMTP'])
        for typ, port in (('IMAP', '993'), ('SMTP', '465'), ('POP3', '995')):
            pr = protos[typ]
            self.assertEqual(pr.findtext(q(NS_OUT, 'Server')), PUBLIC_HOST)
            self.assertEqual(pr.findtext(q(NS_OUT, 'Port')), port)
            self.assertEqual(pr.findtext(q(NS_OUT, 'SSL')), 'on')
            self.assertEqual(pr.findtext(q(NS_OUT, 'LoginName')), addr)
            self.assertEqual(pr.findtext(q(NS_OUT, 'SPA')), 'off')
        self.assertEqual(protos['SMTP'].findtext(q(NS_OUT, 'AuthRequired')), 'on')
        self.assertNotIn(b'Microsoft-Server-ActiveSync', ET.tostring(root))

    def check_mobilesync(self, root, addr):
        resp = root.find(q(NS_MS, 'Response'))
        self.assertIsNotNone(resp, ET.tostring(root))
        self.assertEqual(resp.findtext(q(NS_MS, 'User') + '/' + q(NS_MS, 'EMailAddress')), addr)
        servers = resp.findall('/'.join(q(NS_MS, t) for t in ('Action', 'Settings', 'Server')))
        self.assertEqual(len(servers), 1)
        self.assertEqual(servers[0].findtext(q(NS_MS, 'Type')), 'MobileSync')
        self.assertEqual(servers[0].findtext(q(NS_MS, 'Url')),
                         'https://%s/Microsoft-Server-ActiveSync' % self.label)

    def error_code(self, root, ns):
        resp = root.find(q(ns, 'Response')) if ns else root.find(q(NS_RESP, 'Response'))
        self.assertIsNotNone(resp, ET.tostring(root))
        err = resp.find(q(ns or NS_RESP, 'Error'))
        self.assertIsNotNone(err, ET.tostring(root))
        self.assertTrue(err.get('Time') and err.get('Id'))
        self.assertIsNotNone(err.find(q(ns or NS_RESP, 'Message')))
        return err.findtext(q(ns or NS_RESP, 'ErrorCode'))

    # -- POX: settings -------------------------------------------------------------------
    def test_every_client_on_every_host_and_path(self):
        hosts = ('autodiscover.example.com', 'example.com', 'mail.example.com', self.label)
        for host in hosts:
            for path in PATHS:
                for client, (_, schema) in BODIES.items():
                    with self.subTest(host=host, path=path, client=client):
                        root = self.pox(client, ALICE[0], ALICE, host, path)
                        if schema == 'outlook':
                            self.check_outlook(root, ALICE[0])
                        else:
                            self.check_mobilesync(root, ALICE[0])

    def test_basic_mailbox(self):
        for client, (_, schema) in BODIES.items():
            root = self.pox(client, BOB[0], BOB, 'autodiscover.example.com')
            if schema == 'outlook':
                self.check_outlook(root, BOB[0])
            else:
                # an error in the schema's format, never an ActiveSync URL
                self.assertEqual(self.error_code(root, NS_MS), '601', client)
                self.assertNotIn(b'Microsoft-Server-ActiveSync', ET.tostring(root))
                self.assertIsNone(root.find('.//' + q(NS_MS, 'Settings')))

    def test_login_forms_and_case(self):
        for login in ('ALICE@Example.COM', 'EXAMPLE\\alice', 'alice'):
            self.check_outlook(self.pox('outlook', 'Alice@Example.com', (login, ALICE[1]),
                                        'autodiscover.example.com'), ALICE[0])

    # -- POX: aliases and other people's addresses ----------------------------------------
    def test_alias_of_another_domain_redirects(self):
        # Outlook logs in with the address typed: an alias of a mailbox of another domain
        for auth in (('sales@other.org', ALICE[1]), ALICE):
            host = 'autodiscover.other.org' if auth[0] == 'sales@other.org' else self.label
            root = self.pox('outlook', 'sales@other.org', auth, host)
            acct = root.find(q(NS_OUT, 'Response') + '/' + q(NS_OUT, 'Account'))
            self.assertEqual(acct.findtext(q(NS_OUT, 'Action')), 'redirectAddr')
            self.assertEqual(acct.findtext(q(NS_OUT, 'RedirectAddr')), ALICE[0])
            self.assertIsNone(acct.find(q(NS_OUT, 'Protocol')))
            root = self.pox('ios', 'sales@other.org', auth, host)
            action = root.find(q(NS_MS, 'Response') + '/' + q(NS_MS, 'Action'))
            self.assertEqual(action.findtext(q(NS_MS, 'Redirect')), ALICE[0])
            self.assertIsNone(action.find(q(NS_MS, 'Settings')))
        # after the redirect, on the alias's host: sent to where the mailbox lives
        self.check_mobilesync(self.pox('ios', ALICE[0], ('sales@other.org', ALICE[1]),
                                       'autodiscover.other.org'), ALICE[0])
        root = self.pox('outlook', 'info@example.com', ALICE, 'example.com')
        self.assertEqual(root.findtext('.//' + q(NS_OUT, 'RedirectAddr')), ALICE[0])

    def test_someone_elses_address_is_refused(self):
        for addr in (BOB[0], CAROL[0], 'nobody@example.com', 'sales@other.org'):
            auth = BOB if addr == 'sales@other.org' else ALICE
            for client, ns in (('outlook', NS_OUT), ('ios', NS_MS)):
                root = self.pox(client, addr, auth)
                self.assertEqual(self.error_code(root, ns), '500', (addr, client))
                raw = ET.tostring(root)
                self.assertNotIn(b'Protocol', raw)
                self.assertNotIn(b'Redirect', raw)
                self.assertNotIn(b'ActiveSync', raw)

    def test_other_tenants_credentials_are_refused(self):
        body = BODIES['outlook'][0].replace('{addr}', CAROL[0]).encode()
        status, headers, _ = self.https('POST', PATHS[0], 'autodiscover.example.com', body, CAROL)
        self.assertEqual(status, 401)
        status, _, _ = self.https('POST', PATHS[0], 'autodiscover.other.org', body, ALICE)
        self.assertEqual(status, 401)
        self.check_outlook(self.pox('outlook', CAROL[0], CAROL, 'autodiscover.other.org'),
                           CAROL[0])

    # -- POX: authentication and the redirect method ------------------------------------
    def test_unauthenticated_post_is_challenged(self):
        body = BODIES['ios'][0].replace('{addr}', ALICE[0]).encode()
        for auth in (None, (ALICE[0], 'Wrong-Pass1!')):
            status, headers, _ = self.https('POST', PATHS[1], 'autodiscover.example.com', body,
                                            auth)
            self.assertEqual(status, 401)
            self.assertTrue(headers['www-authenticate'].startswith('Basic realm="example.com"'))

    def test_http_get_redirects_to_https(self):
        for path in PATHS:
            status, headers, _ = self.p.request('GET', path, 'autodiscover.example.com')
            self.assertEqual(status, 302, path)
            self.assertEqual(headers['location'],
                             'https://%s/autodiscover/autodiscover.xml' % self.label)
        status, _, _ = self.p.request('GET', PATHS[0], 'autodiscover.nosuch.example')
        self.assertEqual(status, 404)
        # over HTTPS a GET is not a redirect: authenticate, then "Invalid Request"
        status, _, _ = self.https('GET', PATHS[0], 'autodiscover.example.com')
        self.assertEqual(status, 401)
        status, _, data = self.https('GET', PATHS[0], 'autodiscover.example.com', auth=ALICE)
        self.assertEqual(self.error_code(ET.fromstring(data), None), '600')
        status, headers, _ = self.https('PUT', PATHS[0], self.label, b'x', ALICE)
        self.assertEqual(status, 405)

    # -- POX: malformed requests ---------------------------------------------------------
    def test_malformed_requests(self):
        doctype = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">'
                   '<!ENTITY y "yy"><!ENTITY z "&y;&y;&y;&y;&y;&y;&y;&y;">]>'
                   '<Autodiscover xmlns="%s"><Request><EMailAddress>&x;&z;</EMailAddress>'
                   '</Request></Autodiscover>' % OUT_REQ)
        cases = [
            (b'', None, '600'),
            (b'not xml at all', None, '600'),
            (b'<Autodiscover xmlns="%s"><Request>' % OUT_REQ.encode(), None, '600'),
            (b'<Other xmlns="%s"/>' % OUT_REQ.encode(), None, '600'),
            (b'<Autodiscover xmlns="urn:nothing"><Request/></Autodiscover>', None, '600'),
            (doctype.encode(), None, '600'),
            (('<Autodiscover xmlns="%s"/>' % MS_REQ).encode(), NS_MS, '600'),
            (('<Autodiscover xmlns="%s"><Request><EMailAddress>not-an-address</EMailAddress>'
              '</Request></Autodiscover>' % OUT_REQ).encode(), NS_OUT, '600'),
            (('<Autodiscover xmlns="%s"><Request><EMailAddress>%s</EMailAddress>'
              '<AcceptableResponseSchema>urn:other</AcceptableResponseSchema></Request>'
              '</Autodiscover>' % (OUT_REQ, ALICE[0])).encode(), NS_OUT, '601'),
            (BODIES['outlook'][0].replace('{addr}', 'a' * 20000 + '@example.com').encode(),
             None, '600'),
        ]
        for body, ns, code in cases:
            status, _, data = self.https('POST', PATHS[0], self.label, body, ALICE)
            self.assertEqual(status, 200, body[:60])
            root = ET.fromstring(data)
            self.assertEqual(root.tag, q(NS_RESP, 'Autodiscover'))
            self.assertEqual(self.error_code(root, ns), code, body[:80])
            self.assertNotIn(b'root:', data)
        # and the server is still fine
        self.check_outlook(self.pox('outlook', ALICE[0], ALICE), ALICE[0])

    # -- Autodiscover v2 -----------------------------------------------------------------
    def test_v2_json(self):
        for host in ('autodiscover.example.com', 'example.com', self.label):
            for query, proto, path in (
                    ('Email=alice@example.com&Protocol=ActiveSync', 'ActiveSync',
                     '/Microsoft-Server-ActiveSync'),
                    ('email=ALICE%40example.com&protocol=activesync', 'ActiveSync',
                     '/Microsoft-Server-ActiveSync'),
                    ('Email=alice@example.com&Protocol=AutodiscoverV1', 'AutodiscoverV1',
                     '/autodiscover/autodiscover.xml'),
                    ('Protocol=AUTODISCOVERV1&Email=nobody@example.com', 'AutodiscoverV1',
                     '/autodiscover/autodiscover.xml')):
                for base in ('/autodiscover/autodiscover.json', '/AutoDiscover/AutoDiscover.json'):
                    status, headers, data = self.p.request('GET', base + '?' + query, host)
                    self.assertEqual(status, 200, data)
                    self.assertTrue(headers['content-type'].startswith('application/json'))
                    self.assertEqual(json.loads(data),
                                     {'Protocol': proto, 'Url': 'https://%s%s' % (self.label, path)})
        status, _, data = self.p.request(
            'GET', '/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=ActiveSync',
            'autodiscover.example.com')
        self.assertEqual((status, json.loads(data)['Protocol']), (200, 'ActiveSync'))
        for query, code in (('Email=alice@example.com&Protocol=Ews', 'InvalidProtocol'),
                            ('Email=alice@example.com&Protocol=', 'InvalidProtocol'),
                            ('Email=alice@example.com', None),
                            ('Protocol=ActiveSync', None),
                            ('Email=carol@other.org&Protocol=ActiveSync', None)):
            status, _, data = self.p.request('GET', '/autodiscover/autodiscover.json?' + query,
                                             'example.com')
            self.assertEqual(status, 400, query)
            err = json.loads(data)
            self.assertIn('ErrorCode', err)
            if code:
                self.assertEqual(err['ErrorCode'], code)

    # -- Thunderbird autoconfig -----------------------------------------------------------
    def autoconfig(self, host, path):
        status, headers, data = self.p.request('GET', path, host)
        self.assertEqual(status, 200, data)
        self.assertIn('xml', headers['content-type'])
        return data

    def test_autoconfig(self):
        a = self.autoconfig('autoconfig.example.com',
                            '/mail/config-v1.1.xml?emailaddress=alice%40example.com')
        b = self.autoconfig('autoconfig.example.com',
                            '/mail/config-v1.1.xml?emailaddress=nobody%40example.com')
        c = self.autoconfig('example.com', '/.well-known/autoconfig/mail/config-v1.1.xml'
                            '?emailaddress=bob@example.com')
        # nothing in the answer depends on whether the address exists
        self.assertEqual(a.replace(b'alice', b'X'), b.replace(b'nobody', b'X'))
        self.assertEqual(a, c)
        root = ET.fromstring(a)
        self.assertEqual((root.tag, root.get('version')), ('clientConfig', '1.1'))
        prov = root.find('emailProvider')
        self.assertEqual(prov.get('id'), 'example.com')
        self.assertEqual(prov.findtext('domain'), 'example.com')
        servers = [(s.tag, s.get('type'), s.findtext('port'), s.findtext('socketType'),
                    s.findtext('hostname'), s.findtext('username'))
                   for s in prov if s.tag in ('incomingServer', 'outgoingServer')]
        u = '%EMAILADDRESS%'
        self.assertEqual(servers, [
            ('incomingServer', 'imap', '993', 'SSL', PUBLIC_HOST, u),
            ('incomingServer', 'imap', '143', 'STARTTLS', PUBLIC_HOST, u),
            ('incomingServer', 'pop3', '995', 'SSL', PUBLIC_HOST, u),
            ('incomingServer', 'pop3', '110', 'STARTTLS', PUBLIC_HOST, u),
            ('outgoingServer', 'smtp', '465', 'SSL', PUBLIC_HOST, u),
            ('outgoingServer', 'smtp', '587', 'STARTTLS', PUBLIC_HOST, u)])
        # example.com has an Enhanced mailbox: CalDAV and CardDAV in both forms
        card = 'https://%s/carddav/' % self.label
        cal = 'https://%s/caldav/' % self.label
        self.assertEqual(root.find('addressBook[@type="carddav"]').findtext('serverURL'), card)
        self.assertEqual(root.find('addressbook[@type="carddav"]').findtext('url'), card)
        cals = root.findall('calendar[@type="caldav"]')
        self.assertEqual(sorted(filter(None, [x.findtext('serverURL') for x in cals] +
                                       [x.findtext('url') for x in cals])), [cal, cal])
        for e in root.findall('addressBook') + root.findall('addressbook') + cals:
            self.assertEqual(e.findtext('username'), u)
        # other.org has only a Basic mailbox: mail only
        o = ET.fromstring(self.autoconfig('autoconfig.other.org', '/mail/config-v1.1.xml'
                                          '?emailaddress=carol%40other.org'))
        self.assertEqual(o.find('emailProvider').get('id'), 'other.org')
        self.assertIsNone(o.find('addressBook'))
        self.assertIsNone(o.find('calendar'))
        status, _, _ = self.p.request('GET', '/mail/config-v1.1.xml', 'autoconfig.nosuch.example')
        self.assertEqual(status, 404)

    # -- Apple configuration profile ------------------------------------------------------
    def profile(self, auth, query='', ua='Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)'):
        status, headers, data = self.https('GET', '/profile.mobileconfig' + query, self.label,
                                           auth=auth, headers={'User-Agent': ua})
        self.assertEqual(status, 200, data[:200])
        self.assertEqual(headers['content-type'], 'application/x-apple-aspen-config')
        with tempfile.NamedTemporaryFile(suffix='.mobileconfig') as f:
            f.write(data)
            f.flush()
            r = subprocess.run(['openssl', 'smime', '-verify', '-inform', 'DER', '-in', f.name,
                                '-CAfile', os.path.join(self.p.data_dir, 'tls', 'cert.pem'),
                                '-purpose', 'any'], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b'Verification successful', r.stderr)
        return plistlib.loads(r.stdout)

    def test_profile(self):
        a = self.profile(ALICE)
        self.assertEqual(a['PayloadType'], 'Configuration')
        self.assertEqual(a['PayloadVersion'], 1)
        (eas,) = a['PayloadContent']
        self.assertEqual(eas['PayloadType'], 'com.apple.eas.account')
        self.assertEqual(eas['Host'], self.label)
        self.assertIs(eas['SSL'], True)
        self.assertEqual(eas['EmailAddress'], ALICE[0])
        self.assertEqual(eas['UserName'], ALICE[0])
        self.assertNotIn('Password', eas)
        b = self.profile(BOB)
        (mail,) = b['PayloadContent']
        self.assertEqual(mail['PayloadType'], 'com.apple.mail.managed')
        self.assertEqual(mail['EmailAccountType'], 'EmailTypeIMAP')
        self.assertEqual((mail['IncomingMailServerHostName'], mail['IncomingMailServerPortNumber'],
                          mail['IncomingMailServerUseSSL']), (PUBLIC_HOST, 993, True))
        self.assertEqual((mail['OutgoingMailServerHostName'], mail['OutgoingMailServerPortNumber'],
                          mail['OutgoingMailServerUseSSL']), (PUBLIC_HOST, 465, True))
        self.assertEqual(mail['IncomingMailServerUsername'], BOB[0])
        self.assertNotIn(b'Bob-Pass1!', plistlib.dumps(b))

        def ids(p):
            return (p['PayloadUUID'], p['PayloadIdentifier'],
                    p['PayloadContent'][0]['PayloadUUID'], p['PayloadContent'][0]['PayloadIdentifier'])
        # stable per user and device type: a new download replaces the installed profile
        self.assertEqual(ids(a), ids(self.profile(ALICE)))
        ipad = self.profile(ALICE, ua='Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)')
        self.assertEqual(ids(ipad), ids(self.profile(ALICE, query='?device=ipad')))
        self.assertTrue(set(ids(ipad)).isdisjoint(ids(a)))
        self.assertTrue(set(ids(a)).isdisjoint(ids(b)))
        for u in [a['PayloadUUID'], eas['PayloadUUID'], mail['PayloadUUID']]:
            self.assertRegex(u, r'^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$')
        status, headers, _ = self.https('GET', '/profile.mobileconfig', self.label)
        self.assertEqual(status, 401)
        status, _, _ = self.https('GET', '/profile.mobileconfig', 'other.org', auth=ALICE)
        self.assertEqual(status, 401)


if __name__ == '__main__':
    unittest.main(verbosity=2)
