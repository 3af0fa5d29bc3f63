"""ActiveSync core, driven through the real binary with the test client of
eas_client.py (requests encoded by libwbxml's xml2wbxml, answers checked by both libwbxml
and our decoder): MS-ASHTTP (OPTIONS, auth and the gate, User check, the base64 query),
Provision (12.1, 14.1, 16.1 and 2.5's XML policy), 449 vs Status 142, Settings (Oof wired
to the auto-reply), FolderSync and FolderCreate/Update/Delete (also after an IMAP CREATE),
Ping (woken by SMTP, heartbeat bounds, superseded, 1,000 at once, gate change), remote
wipe and the `device` CLI, malformed input, and state across a restart.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_eas_core.py
"""
import base64
import imaplib
import json
import os
import resource
import select
import smtplib
import socket
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
import eas_client  # noqa: E402
from eas_client import EasClient, find, findall, text  # noqa: E402

ALICE = ('alice@example.com', 'Alice-Pass1!')
BOB = ('bob@example.com', 'Bob-Pass1!')
CAROL = ('carol@example.org', 'Carol-Pass1!')
EXTRA = ('[auth]\nfail_max = 100000\nallow_plaintext = loopback\n\n[eas]\nheartbeat_min = 2\nheartbeat_max = 30\n'
         'ping_folders = 5\n\n[server]\nmax_request = 256K\n')
PATH = '/Microsoft-Server-ActiveSync'

PROV_REQ = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>%s</PolicyType>'
            '</Policy></Policies></Provision>')
PROV_ACK = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>%s</PolicyType>'
            '<PolicyKey>%s</PolicyKey><Status>1</Status></Policy></Policies></Provision>')
WBXML_TYPE = 'MS-EAS-Provisioning-WBXML'


def fs_req(key):
    return '<FolderSync xmlns="FolderHierarchy:"><SyncKey>%s</SyncKey></FolderSync>' % key


def ping_req(hb=None, folders=()):
    parts = []
    if hb is not None:
        parts.append('<HeartbeatInterval>%d</HeartbeatInterval>' % hb)
    if folders:
        parts.append('<Folders>%s</Folders>' % ''.join(
            '<Folder><Id>%s</Id><Class>Email</Class></Folder>' % f for f in folders))
    return '<Ping xmlns="Ping:">%s</Ping>' % ''.join(parts)


class EasCore(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(listeners=('http', 'smtp', 'imap'), extra_config=EXTRA, start=False)
        cls.p.__enter__()
        cls.p.add_demo()
        cls.p.cli_ok('domain', 'add', 'example.org')
        cls.p.cli_ok('user', 'add', CAROL[0], '--type', 'enhanced', '--password', CAROL[1])
        cls.p.cli_ok('alias', 'add', 'al@example.com', ALICE[0])
        cls.p.start()

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    # -- helpers ------------------------------------------------------------------------
    def client(self, device, version='16.1', who=ALICE, **kw):
        return EasClient(self.p, who[0], who[1], device_id=device, version=version, **kw)

    def provision(self, c, ptype=WBXML_TYPE):
        st, _, t = c.post('Provision', PROV_REQ % ptype)
        self.assertEqual(st, 200)
        self.assertEqual(text(t, 'Provision:Status'), '1')
        temp = text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
        st, _, t2 = c.post('Provision', PROV_ACK % (ptype, temp))
        self.assertEqual(st, 200)
        self.assertEqual(text(t2, 'Provision:Policies/Provision:Policy/Provision:Status'), '1')
        final = text(t2, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
        self.assertNotEqual(final, temp)
        c.policy_key = int(final)
        return t, t2

    def foldersync(self, c, key='0'):
        st, h, t = c.post('FolderSync', fs_req(key))
        self.assertEqual(st, 200)
        return h, t

    def folders_by_name(self, t):
        return {text(a, 'FolderHierarchy:DisplayName'): (text(a, 'FolderHierarchy:ServerId'),
                                                         text(a, 'FolderHierarchy:Type'),
                                                         text(a, 'FolderHierarchy:ParentId'))
                for a in findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Add')}

    def ready(self, device, version='16.1', who=ALICE):
        """A provisioned device that did its first FolderSync and holds everything in its
        Inbox (so a Ping has nothing pending): (client, inbox id, hierarchy key)."""
        c = self.client(device, version, who)
        self.provision(c)
        _, t = self.foldersync(c)
        inbox = self.folders_by_name(t)['Inbox'][0]
        self.sync_all(c, inbox)
        return c, inbox, text(t, 'FolderHierarchy:SyncKey')

    def sync_all(self, c, folder):
        """Syncs a folder until the device holds all of it (the Sync engine's job; Ping
        reports folders the device has not fetched yet)."""
        key = '0'
        for _ in range(50):
            st, _, t = c.post('Sync', '<Sync xmlns="AirSync:"><Collections><Collection>'
                              '<SyncKey>%s</SyncKey><CollectionId>%s</CollectionId>'
                              '</Collection></Collections></Sync>' % (key, folder))
            self.assertEqual(st, 200)
            col = find(t, 'AirSync:Collections/AirSync:Collection')
            self.assertEqual(text(col, 'AirSync:Status'), '1')
            new = text(col, 'AirSync:SyncKey')
            if key != '0' and find(col, 'AirSync:Commands') is None and \
                    find(col, 'AirSync:MoreAvailable') is None:
                return new
            key = new
        self.fail('Sync never settled')

    def smtp_deliver(self, rcpt, subject):
        with smtplib.SMTP('127.0.0.1', self.p.ports['smtp'], timeout=30) as s:
            s.sendmail('someone@outside.test', [rcpt],
                       ('From: someone@outside.test\r\nTo: %s\r\nSubject: %s\r\n\r\nhello\r\n'
                        % (rcpt, subject)).encode())

    def raw(self, method, query, headers=None, body=None, who=ALICE):
        h = {'MS-ASProtocolVersion': '14.1'}
        h.update(headers or {})
        return self.p.request(method, PATH + query, self.p.label_host(who[0].split('@')[1]),
                              body=body, headers=h, auth=who)

    def start_ping(self, c, xml):
        """Sends a Ping without waiting: (socket, sent time)."""
        body = eas_client.encode(xml) if xml else b''
        q = urllib.parse.urlencode({'Cmd': 'Ping', 'User': c.user, 'DeviceId': c.device_id,
                                    'DeviceType': c.device_type})
        req = ('POST %s?%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n'
               'MS-ASProtocolVersion: %s\r\nX-MS-PolicyKey: %d\r\n'
               'Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n'
               % (PATH, q, c.host, c._auth(), c.version, c.policy_key, len(body))).encode()
        s = socket.create_connection(('127.0.0.1', self.p.http_port), timeout=60)
        s.sendall(req + body)
        return s, time.monotonic()

    @staticmethod
    def read_response(s, timeout=60):
        """(status, body) of one HTTP response on a raw socket."""
        s.settimeout(timeout)
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError('connection closed: %r' % data)
            data += chunk
        head, rest = data.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        length = 0
        for ln in lines[1:]:
            k, _, v = ln.partition(':')
            if k.strip().lower() == 'content-length':
                length = int(v)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, rest[:length]

    # -- MS-ASHTTP ------------------------------------------------------------------------
    def test_options(self):
        st, h, body = self.client('optdev').options()
        self.assertEqual(st, 200)
        self.assertEqual(h['ms-asprotocolversions'], '2.5,12.0,12.1,14.0,14.1,16.0,16.1')
        cmds = h['ms-asprotocolcommands'].split(',')
        for c in ('FolderSync', 'FolderCreate', 'FolderUpdate', 'FolderDelete', 'Provision',
                  'Settings', 'Ping'):
            self.assertIn(c, cmds)
        self.assertIn('ms-server-activesync', h)
        self.assertEqual(h['allow'], 'OPTIONS,POST')
        # Any case of the path, as Exchange accepts.
        st, _, _ = self.p.request('OPTIONS', '/microsoft-server-activesync',
                                  self.p.label_host(), auth=ALICE)
        self.assertEqual(st, 200)

    def test_auth_gate_user(self):
        q = '?Cmd=FolderSync&User=alice&DeviceId=authdev&DeviceType=T'
        st, h, _ = self.raw('POST', q, who=('alice@example.com', 'wrong-pass'))
        self.assertEqual(st, 401)
        self.assertIn('www-authenticate', h)
        # Basic mailbox: 403 from the gate, and no device state was created for it.
        st, _, _ = self.raw('POST', '?Cmd=FolderSync&User=bob&DeviceId=bobdev&DeviceType=T',
                            who=BOB)
        self.assertEqual(st, 403)
        r = self.p.cli('device', 'list', BOB[0], json=True)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertEqual(json.loads(r.stdout)['devices'], [])
        # Another tenant's user on this tenant's host: refused.
        st, _, _ = self.p.request('POST', PATH + q, self.p.label_host('example.com'),
                                  headers={'MS-ASProtocolVersion': '14.1'}, auth=CAROL)
        self.assertEqual(st, 401)
        # User naming someone else: 403; the forms naming alice pass (449: not provisioned).
        st, _, _ = self.raw('POST', '?Cmd=FolderSync&User=bob%40example.com&DeviceId=ud&'
                            'DeviceType=T', headers={'MS-ASProtocolVersion': '12.1'})
        self.assertEqual(st, 403)
        for user in ('alice', 'alice%40example.com', 'EXAMPLE%5Calice', 'ALICE'):
            st, _, _ = self.raw('POST', '?Cmd=FolderSync&User=%s&DeviceId=ud&DeviceType=T'
                                % user, headers={'MS-ASProtocolVersion': '12.1'})
            self.assertEqual(st, 449, user)

    def test_bad_requests(self):
        host = self.p.label_host()
        # No version / unknown version: 400 with the versions we speak.
        st, h, _ = self.raw('POST', '?Cmd=FolderSync&User=alice&DeviceId=bad1&DeviceType=T',
                            headers={'MS-ASProtocolVersion': '13.0'})
        self.assertEqual(st, 400)
        self.assertIn('ms-asprotocolversions', h)
        # Missing DeviceId, an invalid one, no Cmd: 400.
        for q in ('?Cmd=FolderSync&User=alice&DeviceType=T',
                  '?Cmd=FolderSync&DeviceId=a%20b&DeviceType=T', '?User=alice&DeviceId=x&a=b'):
            st, _, _ = self.raw('POST', q)
            self.assertEqual(st, 400, q)
        # Unknown command: 501.
        st, _, _ = self.raw('POST', '?Cmd=Frobnicate&User=alice&DeviceId=bad1&DeviceType=T')
        self.assertEqual(st, 501)
        # GET: 405 with Allow.
        st, h, _ = self.p.request('GET', PATH, host, auth=ALICE)
        self.assertEqual(st, 405)
        self.assertEqual(h.get('allow'), 'OPTIONS,POST')
        # Malformed WBXML on a provisioned device: 400, and the server keeps serving.
        c = self.client('baddev')
        self.provision(c)
        for junk in (b'\x03\x01\x6a\x00\x47\x52', b'garbage', b'\x03\x01\x6a\x00' + b'\x47' * 80):
            st, _, _ = c.post('FolderSync', raw_body=junk,
                              content_type='application/vnd.ms-sync.wbxml')
            self.assertEqual(st, 400)
        # Oversized: the front end's 413 before the body is read.
        st, _, _ = c.post('FolderSync', raw_body=b'\x03\x01\x6a\x00' + b'x' * 300000,
                          content_type='application/vnd.ms-sync.wbxml')
        self.assertEqual(st, 413)
        _, t = self.foldersync(c)
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
        # A truncated / lying base64 query: 400.
        for v in ('jAAJBAp2MTQw', 'AAAA', '%%%', 'jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25lBwU='):
            st, _, _ = self.p.request('POST', PATH + '?' + v, host, auth=ALICE)
            self.assertEqual(st, 400, v)

    def test_base64_query(self):
        c = self.client('b64dev', '14.1')
        st, _, t = c.post('Provision', PROV_REQ % WBXML_TYPE, base64_query=True)
        self.assertEqual(st, 200)
        temp = text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
        st, _, t = c.post('Provision', PROV_ACK % (WBXML_TYPE, temp), base64_query=True)
        c.policy_key = int(text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'))
        # The policy key travels inside the base64 block.
        st, h, t = c.post('FolderSync', fs_req(0), base64_query=True,
                          extra_query={'User': 'alice@example.com', 'Options': b'\x02'})
        self.assertEqual(st, 200)
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
        # The MS-ASHTTP example (v140, Sync, DeviceId "v140Device", "SmartPhone") parses:
        # Sync without the Sync engine is 501; the device is created either way.
        st, _, _ = self.p.request('POST', PATH + '?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l',
                                  self.p.label_host(), auth=ALICE)
        self.assertIn(st, (200, 449, 501))
        # User in the block naming someone else: 403. A GUID DeviceId is kept as hex.
        st, _, _ = c.post('FolderSync', fs_req(0), base64_query=True,
                          extra_query={'User': 'bob@example.com'})
        self.assertEqual(st, 403)
        q = eas_client.make_base64_query('Provision', 'x', 'T', '14.1')
        b = bytearray(base64.b64decode(q))
        b = b[:4] + bytes([16]) + bytes(range(0xa0, 0xb0)) + b[6:]
        st, _, _ = self.p.request('POST', PATH + '?' + urllib.parse.quote(
            base64.b64encode(bytes(b)).decode(), safe=''), self.p.label_host(), auth=ALICE,
            body=eas_client.encode(PROV_REQ % WBXML_TYPE),
            headers={'Content-Type': 'application/vnd.ms-sync.wbxml'})
        self.assertEqual(st, 200)
        r = self.p.cli_ok('device', 'show', ALICE[0], 'A0A1A2A3A4A5A6A7A8A9AAABACADAEAF',
                          json=True)
        self.assertEqual(json.loads(r.stdout)['type'], 'T')

    # -- Provision ----------------------------------------------------------------------------
    def test_provision_versions(self):
        for v in ('12.1', '14.1', '16.1'):
            c = self.client('prov' + v.replace('.', ''), v)
            t1, t2 = self.provision(c)
            doc = find(t1, 'Provision:Policies/Provision:Policy/Provision:Data/'
                           'Provision:EASProvisionDoc')
            self.assertIsNotNone(doc, v)
            self.assertEqual(text(doc, 'Provision:DevicePasswordEnabled'), '0')
            self.assertEqual(text(doc, 'Provision:AllowCamera'), '1')
            # A retry of the acknowledgement (answer lost) gets the same final key; a
            # stale temporary key gets Policy Status 5.
            st, _, t3 = c.post('Provision', PROV_ACK % (WBXML_TYPE, c.policy_key))
            self.assertEqual(text(t3, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'),
                             str(c.policy_key))
            st, _, t4 = c.post('Provision', PROV_ACK % (WBXML_TYPE, '12345'))
            self.assertEqual(text(t4, 'Provision:Policies/Provision:Policy/Provision:Status'),
                             '5')
            _, t = self.foldersync(c)
            self.assertEqual(text(t, 'FolderHierarchy:Status'), '1', v)
        # 14.1: DeviceInformation inside Provision is stored and acknowledged.
        c = self.client('provdi', '14.1')
        st, _, t = c.post('Provision', '<Provision xmlns="Provision:" xmlns:s="Settings:">'
                          '<s:DeviceInformation><s:Set><s:Model>Pixel 9</s:Model>'
                          '<s:OS>Android 15</s:OS><s:FriendlyName>Work phone</s:FriendlyName>'
                          '</s:Set></s:DeviceInformation><Policies><Policy><PolicyType>'
                          + WBXML_TYPE + '</PolicyType></Policy></Policies></Provision>')
        self.assertEqual(text(t, 'Settings:DeviceInformation/Settings:Status'), '1')
        r = self.p.cli_ok('device', 'show', ALICE[0], 'provdi', json=True)
        d = json.loads(r.stdout)
        self.assertEqual((d['model'], d['os'], d['friendly_name']),
                         ('Pixel 9', 'Android 15', 'Work phone'))
        # 2.5: the Windows Mobile XML policy, as a string.
        c = self.client('prov25', '2.5')
        t1, _ = self.provision(c, 'MS-WAP-Provisioning-XML')
        data = text(t1, 'Provision:Policies/Provision:Policy/Provision:Data')
        self.assertIn('<wap-provisioningdoc>', data)
        self.assertIn('name="4131" value="1"', data)
        # The wrong policy type for the version: Policy Status 3.
        st, _, t = self.client('provwrong', '14.1').post(
            'Provision', PROV_REQ % 'MS-WAP-Provisioning-XML')
        self.assertEqual(text(t, 'Provision:Policies/Provision:Policy/Provision:Status'), '3')

    def test_449_vs_142(self):
        for v, want in (('2.5', 449), ('12.0', 449), ('12.1', 449), ('14.0', 142),
                        ('14.1', 142), ('16.0', 142), ('16.1', 142)):
            c = self.client('np' + v.replace('.', ''), v)
            st, _, t = c.post('FolderSync', fs_req(0))
            if want == 449:
                self.assertEqual(st, 449, v)
            else:
                self.assertEqual(st, 200, v)
                self.assertEqual(text(t, 'FolderHierarchy:Status'), '142', v)
        # A wrong key once provisioned: 144 (14.0+).
        c = self.client('np2', '14.1')
        self.provision(c)
        c.policy_key += 1
        st, _, t = c.post('FolderSync', fs_req(0))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '144')
        # Ping too carries it in its own namespace.
        st, _, t = self.client('np3', '16.1').post('Ping', ping_req(10, ['1']))
        self.assertEqual(text(t, 'Ping:Status'), '142')

    # -- Settings -------------------------------------------------------------------------------
    def test_settings(self):
        c = self.client('setdev', '14.1')
        # Settings needs no policy (DeviceInformation comes before Provision).
        st, _, t = c.post('Settings', '<Settings xmlns="Settings:"><DeviceInformation><Set>'
                          '<Model>iPhone15,2</Model><IMEI>3566</IMEI><OS>iOS 17.1</OS>'
                          '<OSLanguage>English</OSLanguage><PhoneNumber>+1555</PhoneNumber>'
                          '<MobileOperator>Op</MobileOperator><UserAgent>Apple-iPhone/2101'
                          '</UserAgent></Set></DeviceInformation><UserInformation><Get/>'
                          '</UserInformation><RightsManagementInformation><Get/>'
                          '</RightsManagementInformation></Settings>')
        self.assertEqual(st, 200)
        self.assertEqual(text(t, 'Settings:Status'), '1')
        self.assertEqual(text(t, 'Settings:DeviceInformation/Settings:Status'), '1')
        addrs = [e.text for e in findall(t, 'Settings:UserInformation/Settings:Get/'
                                            'Settings:Accounts/Settings:Account/'
                                            'Settings:EmailAddresses/Settings:SmtpAddress')]
        self.assertEqual(sorted(addrs), ['al@example.com', 'alice@example.com'])
        self.assertEqual(text(t, 'Settings:UserInformation/Settings:Get/Settings:Accounts/'
                                 'Settings:Account/Settings:EmailAddresses/'
                                 'Settings:PrimarySmtpAddress'), 'alice@example.com')
        self.assertIsNotNone(find(t, 'Settings:RightsManagementInformation/Settings:Get/'
                                     'RightsManagement:RightsManagementTemplates'))
        d = json.loads(self.p.cli_ok('device', 'show', ALICE[0], 'setdev', json=True).stdout)
        self.assertEqual((d['model'], d['imei'], d['os'], d['phone_number']),
                         ('iPhone15,2', '3566', 'iOS 17.1', '+1555'))
        # 12.1: the older UserInformation form.
        st, _, t = self.client('setdev12', '12.1').post(
            'Settings', '<Settings xmlns="Settings:"><UserInformation><Get/></UserInformation>'
                        '</Settings>')
        self.assertEqual(sorted(e.text for e in findall(
            t, 'Settings:UserInformation/Settings:Get/Settings:EmailAddresses/'
               'Settings:SmtpAddress')), ['al@example.com', 'alice@example.com'])

    def test_oof(self):
        c = self.client('oofdev', '14.1')
        self.provision(c)
        st, _, t = c.post('Settings', '<Settings xmlns="Settings:"><Oof><Set>'
                          '<OofState>2</OofState><StartTime>2030-01-01T00:00:00.000Z</StartTime>'
                          '<EndTime>2030-01-10T12:00:00.000Z</EndTime><OofMessage>'
                          '<AppliesToInternal/><Enabled>1</Enabled><ReplyMessage>Away &amp; '
                          'back soon</ReplyMessage><BodyType>TEXT</BodyType></OofMessage>'
                          '<OofMessage><AppliesToExternalUnknown/><Enabled>0</Enabled>'
                          '</OofMessage></Set></Oof></Settings>')
        self.assertEqual(text(t, 'Settings:Oof/Settings:Status'), '1')
        # The auto-reply module sees it, as `polaris user autoreply` shows it.
        r = self.p.cli_ok('user', 'autoreply', ALICE[0], json=True)
        a = json.loads(r.stdout)
        self.assertTrue(a['enabled'])
        self.assertIn('Away & back soon', a['body'])
        self.assertIn('2030-01-01', json.dumps(a))
        st, _, t = c.post('Settings', '<Settings xmlns="Settings:"><Oof><Get><BodyType>Text'
                          '</BodyType></Get></Oof></Settings>')
        g = find(t, 'Settings:Oof/Settings:Get')
        self.assertEqual(text(g, 'Settings:OofState'), '2')
        self.assertTrue(text(g, 'Settings:StartTime').startswith('2030-01-01T00:00:00'))
        self.assertTrue(text(g, 'Settings:EndTime').startswith('2030-01-10T12:00:00'))
        msgs = findall(g, 'Settings:OofMessage')
        self.assertEqual(len(msgs), 3)
        self.assertEqual(text(msgs[0], 'Settings:ReplyMessage'), 'Away & back soon')
        # Set from the CLI, read by the device; then disabled by the device.
        self.p.cli_ok('user', 'autoreply', ALICE[0], '--body', 'On leave')
        st, _, t = c.post('Settings', '<Settings xmlns="Settings:"><Oof><Get><BodyType>Text'
                          '</BodyType></Get></Oof></Settings>')
        self.assertEqual(text(t, 'Settings:Oof/Settings:Get/Settings:OofMessage/'
                                 'Settings:ReplyMessage'), 'On leave')
        st, _, t = c.post('Settings', '<Settings xmlns="Settings:"><Oof><Set><OofState>0'
                          '</OofState></Set></Oof></Settings>')
        self.assertEqual(text(t, 'Settings:Oof/Settings:Status'), '1')
        self.assertFalse(json.loads(self.p.cli_ok('user', 'autoreply', ALICE[0],
                                                  json=True).stdout)['enabled'])
        # A bad state: Status 5, nothing changed.
        st, _, t = c.post('Settings', '<Settings xmlns="Settings:"><Oof><Set><OofState>7'
                          '</OofState></Set></Oof></Settings>')
        self.assertEqual(text(t, 'Settings:Oof/Settings:Status'), '5')

    # -- FolderSync and friends --------------------------------------------------------------
    def test_foldersync(self):
        c = self.client('fsdev', '14.1')
        self.provision(c)
        h, t = self.foldersync(c)
        self.assertIn('ms-asprotocolcommands', h)
        f = self.folders_by_name(t)
        types = {n: v[1] for n, v in f.items()}
        for name, typ in (('Inbox', '2'), ('Drafts', '3'), ('Trash', '4'), ('Sent', '5'),
                          ('Tasks', '7'), ('Calendar', '8'), ('Contacts', '9'), ('Notes', '10'),
                          ('Junk', '12'), ('Archive', '12')):
            self.assertEqual(types.get(name), typ, name)
        self.assertEqual(text(t, 'FolderHierarchy:Changes/FolderHierarchy:Count'), str(len(f)))
        key = text(t, 'FolderHierarchy:SyncKey')
        # Nothing changed: same key, no changes.
        _, t = self.foldersync(c, key)
        self.assertEqual(text(t, 'FolderHierarchy:SyncKey'), key)
        self.assertEqual(text(t, 'FolderHierarchy:Changes/FolderHierarchy:Count'), '0')
        # FolderCreate (a user mail folder under Inbox, and a calendar at the top).
        st, _, t = c.post('FolderCreate', '<FolderCreate xmlns="FolderHierarchy:"><SyncKey>%s'
                          '</SyncKey><ParentId>%s</ParentId><DisplayName>Projects</DisplayName>'
                          '<Type>12</Type></FolderCreate>' % (key, f['Inbox'][0]))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
        proj = text(t, 'FolderHierarchy:ServerId')
        key = text(t, 'FolderHierarchy:SyncKey')
        st, _, t = c.post('FolderCreate', '<FolderCreate xmlns="FolderHierarchy:"><SyncKey>%s'
                          '</SyncKey><ParentId>0</ParentId><DisplayName>Team</DisplayName>'
                          '<Type>13</Type></FolderCreate>' % key)
        team, key = text(t, 'FolderHierarchy:ServerId'), text(t, 'FolderHierarchy:SyncKey')
        # Errors: exists (2), parent missing (5), bad type (10), stale key (9).
        for parent, name, typ, want in ((f['Inbox'][0], 'Projects', 12, '2'),
                                        ('99999', 'X', 12, '5'), ('0', 'Y', 2, '10')):
            st, _, t = c.post('FolderCreate', '<FolderCreate xmlns="FolderHierarchy:"><SyncKey>'
                              '%s</SyncKey><ParentId>%s</ParentId><DisplayName>%s</DisplayName>'
                              '<Type>%d</Type></FolderCreate>' % (key, parent, name, typ))
            self.assertEqual(text(t, 'FolderHierarchy:Status'), want, name)
        st, _, t = c.post('FolderCreate', '<FolderCreate xmlns="FolderHierarchy:"><SyncKey>1'
                          '</SyncKey><ParentId>0</ParentId><DisplayName>Z</DisplayName><Type>12'
                          '</Type></FolderCreate>')
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '9')
        # The device's own creations are not sent back to it.
        _, t = self.foldersync(c, key)
        self.assertEqual(text(t, 'FolderHierarchy:Changes/FolderHierarchy:Count'), '0')
        # FolderUpdate: rename and move to the top; a default folder refuses (3).
        st, _, t = c.post('FolderUpdate', '<FolderUpdate xmlns="FolderHierarchy:"><SyncKey>%s'
                          '</SyncKey><ServerId>%s</ServerId><ParentId>0</ParentId>'
                          '<DisplayName>Projects 2026</DisplayName></FolderUpdate>' % (key, proj))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
        key = text(t, 'FolderHierarchy:SyncKey')
        st, _, t = c.post('FolderUpdate', '<FolderUpdate xmlns="FolderHierarchy:"><SyncKey>%s'
                          '</SyncKey><ServerId>%s</ServerId><ParentId>0</ParentId>'
                          '<DisplayName>Box</DisplayName></FolderUpdate>' % (key, f['Inbox'][0]))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '3')
        # IMAP sees the device's folders; an IMAP CREATE reaches the device.
        im = imaplib.IMAP4('127.0.0.1', self.p.ports['imap'])
        im.login(*ALICE)
        typ, lst = im.list()
        names = b' '.join(lst)
        self.assertIn(b'Projects 2026', names)
        self.assertEqual(im.create('FromImap')[0], 'OK')
        _, t = self.foldersync(c, key)
        adds = self.folders_by_name(t)
        self.assertEqual(list(adds), ['FromImap'])
        self.assertEqual(adds['FromImap'][1], '12')
        key2 = text(t, 'FolderHierarchy:SyncKey')
        # A lost answer: the previous key still works and gives the same changes.
        _, t = self.foldersync(c, key)
        self.assertEqual(list(self.folders_by_name(t)), ['FromImap'])
        key2 = text(t, 'FolderHierarchy:SyncKey')
        # FolderDelete; a default folder (3), an unknown one (4).
        st, _, t = c.post('FolderDelete', '<FolderDelete xmlns="FolderHierarchy:"><SyncKey>%s'
                          '</SyncKey><ServerId>%s</ServerId></FolderDelete>' % (key2, team))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
        key3 = text(t, 'FolderHierarchy:SyncKey')
        for sid, want in ((f['Inbox'][0], '3'), ('424242', '4')):
            st, _, t = c.post('FolderDelete', '<FolderDelete xmlns="FolderHierarchy:"><SyncKey>'
                              '%s</SyncKey><ServerId>%s</ServerId></FolderDelete>' % (key3, sid))
            self.assertEqual(text(t, 'FolderHierarchy:Status'), want)
        # An IMAP rename and delete show as Update and Delete.
        im.rename('FromImap', 'Renamed')
        im.delete('"Projects 2026"')
        im.logout()
        _, t = self.foldersync(c, key3)
        upd = findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Update')
        dels = findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Delete')
        self.assertEqual([text(u, 'FolderHierarchy:DisplayName') for u in upd], ['Renamed'])
        self.assertEqual([text(d, 'FolderHierarchy:ServerId') for d in dels], [proj])
        # A stale key: Status 9.
        _, t = self.foldersync(c, '77777')
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '9')

    # -- Ping -------------------------------------------------------------------------------------
    def test_ping_smtp_and_bounds(self):
        c, inbox, _ = self.ready('pingdev')
        st, _, t = c.post('Ping', ping_req(1, [inbox]))
        self.assertEqual(text(t, 'Ping:Status'), '5')
        self.assertEqual(text(t, 'Ping:HeartbeatInterval'), '2')
        st, _, t = c.post('Ping', ping_req(31, [inbox]))
        self.assertEqual((text(t, 'Ping:Status'), text(t, 'Ping:HeartbeatInterval')), ('5', '30'))
        st, _, t = c.post('Ping', ping_req(10, [inbox, '1', '2', '3', '4', '5']))
        self.assertEqual((text(t, 'Ping:Status'), text(t, 'Ping:MaxFolders')), ('6', '5'))
        st, _, t = c.post('Ping', ping_req(10, ['987654']))
        self.assertEqual(text(t, 'Ping:Status'), '7')
        # Nothing to reuse yet for this device: Status 3.
        fresh, _, _ = self.ready('pingfresh')
        st, _, t = fresh.post('Ping', None)
        self.assertEqual(text(t, 'Ping:Status'), '3')
        # A quiet heartbeat: Status 1 after about 2 s.
        t0 = time.monotonic()
        st, _, t = c.post('Ping', ping_req(2, [inbox]))
        self.assertEqual(text(t, 'Ping:Status'), '1')
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        # Woken by an SMTP delivery: Status 2 naming the Inbox. The empty Ping reuses the
        # last one's parameters.
        s, t0 = self.start_ping(c, None)
        time.sleep(0.3)
        self.smtp_deliver(ALICE[0], 'wake up')
        t1 = time.monotonic()
        st, body = self.read_response(s)
        woke = time.monotonic() - t1
        s.close()
        self.assertEqual(st, 200)
        t = eas_client.check_agree(body)
        self.assertEqual(text(t, 'Ping:Status'), '2')
        self.assertEqual([f.text for f in findall(t, 'Ping:Folders/Ping:Folder')], [inbox])
        sys.stderr.write('\nPing woke %.0f ms after the SMTP delivery completed\n'
                         % (woke * 1000))

    def test_ping_superseded(self):
        c, inbox, _ = self.ready('supdev')
        s1, _ = self.start_ping(c, ping_req(20, [inbox]))
        time.sleep(0.3)
        s2, _ = self.start_ping(c, ping_req(3, [inbox]))
        st, body = self.read_response(s1, timeout=10)
        self.assertEqual(text(eas_client.check_agree(body), 'Ping:Status'), '1')
        # The new one is the one waiting: it sees the next change.
        self.smtp_deliver(ALICE[0], 'second')
        st, body = self.read_response(s2, timeout=10)
        self.assertEqual(text(eas_client.check_agree(body), 'Ping:Status'), '2')
        s1.close()
        s2.close()

    def test_ping_gate_change(self):
        p = self.p
        p.cli_ok('user', 'add', 'dave@example.com', '--type', 'enhanced', '--password',
                 'Dave-Pass1!')
        c, inbox, _ = self.ready('davedev', who=('dave@example.com', 'Dave-Pass1!'))
        s, _ = self.start_ping(c, ping_req(25, [inbox]))
        time.sleep(0.3)
        p.cli_ok('user', 'set', 'dave@example.com', '--type', 'basic')
        # Any commit to the store wakes the Ping, which checks the gate again.
        self.smtp_deliver('dave@example.com', 'gate')
        st, _ = self.read_response(s, timeout=10)
        s.close()
        self.assertEqual(st, 403)
        st, _, _ = c.post('FolderSync', fs_req(0))
        self.assertEqual(st, 403)

    def test_ping_thousand(self):
        """1,000 Pings wait at once (8 mailboxes x 125 devices) without a thread each; one
        message to the 8 mailboxes answers all of them."""
        users, per_user = 8, 125
        n = users * per_user
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
        p = self.p
        accounts = [('load%d@example.com' % u, 'Load-Pass%d!' % u) for u in range(users)]
        inboxes = {}
        for who in accounts:
            p.cli_ok('user', 'add', who[0], '--type', 'enhanced', '--password', who[1])
            _, inboxes[who[0]], _ = self.ready('first', who=who)
        prov1 = eas_client.encode(PROV_REQ % WBXML_TYPE)
        ping_bodies = {a: eas_client.encode(ping_req(30, [i])) for a, i in inboxes.items()}
        host = self.p.label_host()

        def http(who, devid, cmd, body, key=0):
            q = urllib.parse.urlencode({'Cmd': cmd, 'User': who[0], 'DeviceId': devid,
                                        'DeviceType': 'Load'})
            auth = base64.b64encode(('%s:%s' % who).encode()).decode()
            return ('POST %s?%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n'
                    'MS-ASProtocolVersion: 14.1\r\nX-MS-PolicyKey: %d\r\nContent-Type: '
                    'application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n'
                    % (PATH, q, host, auth, key, len(body))).encode() + body

        keys = {}
        lock = threading.Lock()
        errors = []

        def provision_user(who):
            # One keep-alive connection per mailbox (their stores work in parallel); WBXML
            # built and read by hand, no process per call.
            try:
                s = socket.create_connection(('127.0.0.1', p.http_port), timeout=60)
                for i in range(per_user):
                    dev = 'load%04d' % i
                    s.sendall(http(who, dev, 'Provision', prov1))
                    temp = _raw_policy_key(self.read_response(s)[1])
                    s.sendall(http(who, dev, 'Provision', _raw_ack(temp)))
                    key = int(_raw_policy_key(self.read_response(s)[1]))
                    # The first Sync of the (empty) Inbox: afterwards nothing is pending.
                    s.sendall(http(who, dev, 'Sync', _raw_sync(inboxes[who[0]]), key))
                    st, _ = self.read_response(s)
                    if st != 200:
                        raise AssertionError('Sync: %d' % st)
                    with lock:
                        keys[(who, dev)] = key
                s.close()
            except Exception as ex:  # reported by the main thread
                errors.append(ex)

        t0 = time.monotonic()
        threads = [threading.Thread(target=provision_user, args=(who,)) for who in accounts]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(keys), n)
        t_prov = time.monotonic() - t0
        socks = []
        for (who, dev), key in sorted(keys.items()):
            s = socket.create_connection(('127.0.0.1', p.http_port), timeout=60)
            s.sendall(http(who, dev, 'Ping', ping_bodies[who[0]], key))
            socks.append((s, who[0]))
        # All waiting (none answered yet).
        time.sleep(1.0)
        r, _, _ = select.select([s for s, _ in socks], [], [], 0)
        self.assertEqual(len(r), 0, 'Pings answered before any change')
        t1 = time.monotonic()
        with smtplib.SMTP('127.0.0.1', self.p.ports['smtp'], timeout=30) as sm:
            sm.sendmail('someone@outside.test', [a for a, _ in accounts],
                        b'From: someone@outside.test\r\nSubject: all\r\n\r\nhi\r\n')
        answers = {}
        for s, addr in socks:
            st, body = self.read_response(s, timeout=60)
            self.assertEqual(st, 200)
            answers.setdefault(addr, set()).add(body)
            s.close()
        t_wake = time.monotonic() - t1
        for addr, bodies in answers.items():
            self.assertEqual(len(bodies), 1)
            t = eas_client.check_agree(bodies.pop())
            self.assertEqual(text(t, 'Ping:Status'), '2')
            self.assertEqual([f.text for f in findall(t, 'Ping:Folders/Ping:Folder')],
                             [inboxes[addr]])
        sys.stderr.write('\n%d devices provisioned and synced in %.1f s; %d Pings waiting, all '
                         'answered %.2f s after one delivery\n' % (n, t_prov, n, t_wake))

    # -- devices, wipe ------------------------------------------------------------------------------
    def test_device_cli_and_wipe(self):
        p = self.p
        c, inbox, _ = self.ready('wipedev', '14.1')
        r = json.loads(p.cli_ok('device', 'list', ALICE[0], json=True).stdout)
        ids = [d['id'] for d in r['devices']]
        self.assertIn('wipedev', ids)
        d = json.loads(p.cli_ok('device', 'show', ALICE[0], 'wipedev', json=True).stdout)
        self.assertTrue(d['provisioned'])
        self.assertEqual(d['version'], '14.1')
        self.assertEqual(d['wipe'], 'none')
        self.assertEqual(p.cli('device', 'show', ALICE[0], 'nosuchdev').returncode, 1)
        # An account-only wipe needs a 16.1 device.
        r = p.cli('device', 'wipe', ALICE[0], 'wipedev', '--account-only')
        self.assertEqual(r.returncode, 1)
        p.cli_ok('device', 'wipe', ALICE[0], 'wipedev')
        self.assertEqual(json.loads(p.cli_ok('device', 'show', ALICE[0], 'wipedev',
                                             json=True).stdout)['wipe'], 'requested')
        # Every command now sends the device to Provision (140), which carries RemoteWipe.
        st, _, t = c.post('FolderSync', fs_req(0))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '140')
        st, _, t = c.post('Provision', PROV_REQ % WBXML_TYPE)
        self.assertIsNotNone(find(t, 'Provision:RemoteWipe'))
        self.assertIsNone(find(t, 'Provision:Policies'))
        st, _, t = c.post('Provision', '<Provision xmlns="Provision:"><RemoteWipe><Status>1'
                          '</Status></RemoteWipe></Provision>')
        self.assertIsNotNone(find(t, 'Provision:RemoteWipe'))
        d = json.loads(p.cli_ok('device', 'show', ALICE[0], 'wipedev', json=True).stdout)
        self.assertEqual(d['wipe'], 'acknowledged')
        # Still wiped afterwards; 12.1 gets 449.
        st, _, t = c.post('Provision', PROV_REQ % WBXML_TYPE)
        self.assertIsNotNone(find(t, 'Provision:RemoteWipe'))
        c.version = '12.1'
        st, _, _ = c.post('FolderSync', fs_req(0))
        self.assertEqual(st, 449)
        # 16.1 account-only wipe.
        c16, _, _ = self.ready('wipe16', '16.1')
        p.cli_ok('device', 'wipe', ALICE[0], 'wipe16', '--account-only')
        c16.check = False  # libwbxml has no AccountOnlyRemoteWipe (16.1): ours decodes
        st, _, t = c16.post('Provision', PROV_REQ % WBXML_TYPE)
        self.assertIsNotNone(find(t, 'Provision:AccountOnlyRemoteWipe'))
        self.assertIsNone(find(t, 'Provision:RemoteWipe'))
        # Deleting the device forgets it: it starts over as a new, unprovisioned one.
        p.cli_ok('device', 'del', ALICE[0], 'wipedev')
        self.assertEqual(p.cli('device', 'show', ALICE[0], 'wipedev').returncode, 1)
        c.version = '14.1'
        st, _, t = c.post('FolderSync', fs_req(0))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '142')
        # Human output names the device.
        self.assertIn('wipe16', p.cli_ok('device', 'list', ALICE[0]).stdout)


def _tok(name):
    return eas_client.TOKEN_BY_NAME[(eas_client.PAGE_BY_NAME['Provision'], name)]


def _raw_policy_key(body):
    """The PolicyKey of a Provision answer, read straight from the WBXML: the element is
    the only one of its token on the page, as <token|content> STR_I "digits" NUL END."""
    mark = bytes([_tok('PolicyKey') | 0x40, 0x03])
    i = body.index(mark) + 2
    return body[i:body.index(b'\x00', i)].decode()


def _raw_sync(folder):
    """<Sync><Collections><Collection><SyncKey>0</SyncKey><CollectionId>F</CollectionId>."""
    page = eas_client.PAGE_BY_NAME['AirSync']

    def el(name, content):
        return bytes([eas_client.TOKEN_BY_NAME[(page, name)] | 0x40]) + content + b'\x01'
    coll = el('SyncKey', b'\x030\x00') + el('CollectionId', b'\x03' + folder.encode() + b'\x00')
    return b'\x03\x01\x6a\x00' + el('Sync', el('Collections', el('Collection', coll)))


def _raw_ack(temp):
    """The phase-2 Provision request in WBXML, built by hand."""
    def el(name, content):
        return bytes([_tok(name) | 0x40]) + content + b'\x01'

    def s(v):
        return b'\x03' + v.encode() + b'\x00'
    policy = el('PolicyType', s(WBXML_TYPE)) + el('PolicyKey', s(temp)) + el('Status', s('1'))
    return (b'\x03\x01\x6a\x00\x00' + bytes([eas_client.PAGE_BY_NAME['Provision']]) +
            el('Provision', el('Policies', el('Policy', policy))))


class EasRestart(unittest.TestCase):
    def test_state_survives_restart(self):
        with Polaris(extra_config=EXTRA) as p:
            p.add_demo()
            c = EasClient(p, ALICE[0], ALICE[1], device_id='restartdev', version='14.1')
            st, _, t = c.post('Provision', PROV_REQ % WBXML_TYPE)
            temp = text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
            st, _, t = c.post('Provision', PROV_ACK % (WBXML_TYPE, temp))
            c.policy_key = int(text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'))
            st, _, t = c.post('FolderSync', fs_req(0))
            key = text(t, 'FolderHierarchy:SyncKey')
            inbox = [text(a, 'FolderHierarchy:ServerId') for a in findall(
                t, 'FolderHierarchy:Changes/FolderHierarchy:Add')
                if text(a, 'FolderHierarchy:DisplayName') == 'Inbox'][0]
            for k in ('0', '1'):
                st, _, t = c.post('Sync', '<Sync xmlns="AirSync:"><Collections><Collection>'
                                  '<SyncKey>%s</SyncKey><CollectionId>%s</CollectionId>'
                                  '</Collection></Collections></Sync>' % (k, inbox))
            st, _, t = c.post('Ping', ping_req(2, [inbox]))
            self.assertEqual(text(t, 'Ping:Status'), '1')
            self.assertEqual(p.stop(), 0)
            p.start()
            # Same policy key, same hierarchy key, the Ping parameters remembered.
            st, _, t = c.post('FolderSync', fs_req(key))
            self.assertEqual((text(t, 'FolderHierarchy:Status'),
                              text(t, 'FolderHierarchy:SyncKey')), ('1', key))
            st, _, t = c.post('Ping', None)
            self.assertEqual(text(t, 'Ping:Status'), '1')


if __name__ == '__main__':
    unittest.main(verbosity=2)
