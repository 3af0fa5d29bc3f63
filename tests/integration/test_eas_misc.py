"""ActiveSync ResolveRecipients, ValidateCert and GetAttachment against the real server,
with the libwbxml-checked client of eas_client.py.

ResolveRecipients: addresses and name prefixes against the domain's GAL (mailboxes and
aliases, never another tenant's), ambiguous answers and their limits, certificates and
pictures requested, malformed options. ValidateCert: certificates made here with Python's
cryptography package (a private CA given to the server as [eas] smime_ca, an intermediate,
an expired leaf, a self-signed one, a TLS-only one, one with a CRL distribution point).
GetAttachment (2.5-12.1): an attachment of a delivered message by its FileReference.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_eas_misc.py
"""
import base64
import datetime
import os
import smtplib
import sys
import tempfile
import unittest
from email.message import EmailMessage
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from eas_client import EasClient, find, findall, text  # noqa: E402

ALICE = ('alice@example.com', 'Alice-Pass1!')
PW = 'Some-Pass1!'
RR = 'ResolveRecipients:'
VC = 'ValidateCert:'

PROV_REQ = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>%s</PolicyType>'
            '</Policy></Policies></Provision>')
PROV_ACK = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>%s</PolicyType>'
            '<PolicyKey>%s</PolicyKey><Status>1</Status></Policy></Policies></Provision>')


def provision(c):
    ptype = 'MS-WAP-Provisioning-XML' if c.version == '2.5' else 'MS-EAS-Provisioning-WBXML'
    st, _, t = c.post('Provision', PROV_REQ % ptype)
    assert st == 200, st
    c.policy_key = int(text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'))
    st, _, t = c.post('Provision', PROV_ACK % (ptype, c.policy_key))
    c.policy_key = int(text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'))


# -- certificates ------------------------------------------------------------------------
NOW = datetime.datetime.now(datetime.timezone.utc)


def make_cert(cn, issuer=None, ca=False, days=(-1, 365), eku=ExtendedKeyUsageOID.EMAIL_PROTECTION,
              crl=None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ikey, iname = (issuer[1], issuer[0].subject) if issuer else (key, name)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(iname)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW + datetime.timedelta(days=days[0]))
         .not_valid_after(NOW + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                          False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                          False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(cn)]), critical=False)
    if crl:
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl)], None, None, None)]), critical=False)
    return b.sign(ikey, hashes.SHA256()), key


def b64der(cert):
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


CA = make_cert('Polaris Test Root', ca=True)
INTER = make_cert('Polaris Test Intermediate', issuer=CA, ca=True)
GOOD = make_cert('bob@example.com', issuer=CA)
VIA_INTER = make_cert('dave@example.com', issuer=INTER)
EXPIRED = make_cert('old@example.com', issuer=CA, days=(-400, -35))
SELF = make_cert('self@example.com')
TLS_ONLY = make_cert('tls@example.com', issuer=CA, eku=ExtendedKeyUsageOID.SERVER_AUTH)
WITH_CRL = make_cert('crl@example.com', issuer=CA, crl='http://crl.example.com/root.crl')


class EasMisc(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='polaris-eas-misc-')
        ca_path = os.path.join(cls.tmp, 'smime-ca.pem')
        with open(ca_path, 'wb') as f:
            f.write(CA[0].public_bytes(serialization.Encoding.PEM))
        cls.p = Polaris(start=False, listeners=('http', 'smtp'),
                        extra_config='[auth]\nallow_plaintext = loopback\n\n'
                                     '[eas]\nsmime_ca = %s\n' % ca_path)
        cls.p.__enter__()
        cls.p.add_demo()  # alice (Enhanced) and bob (Basic) of example.com
        for u in ('bobby@example.com', 'robert@example.com'):
            cls.p.cli_ok('user', 'add', u, '--type', 'basic', '--password', PW)
        cls.p.cli_ok('alias', 'add', 'sales@example.com', 'robert@example.com',
                     'bobby@example.com')
        cls.p.cli_ok('alias', 'add', '@example.com', ALICE[0])  # a catch-all is no one
        cls.p.cli_ok('user', 'add', 'zed@example.com', '--type', 'enhanced', '--password', PW)
        cls.p.cli_ok('domain', 'add', 'example.org')
        cls.p.cli_ok('user', 'add', 'bob@example.org', '--type', 'enhanced', '--password', PW)
        cls.p.start()
        cls.c = EasClient(cls.p, ALICE[0], ALICE[1], device_id='miscdev1', version='16.1')
        provision(cls.c)

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def test_options_announce_the_commands(self):
        st, h, _ = self.c.options()
        self.assertEqual(st, 200)
        cmds = h['ms-asprotocolcommands'].split(',')
        for cmd in ('ResolveRecipients', 'ValidateCert', 'GetAttachment'):
            self.assertIn(cmd, cmds)

    # -- ResolveRecipients ----------------------------------------------------------------
    def resolve(self, tos, options='', c=None):
        xml = ('<ResolveRecipients xmlns="ResolveRecipients:">%s%s</ResolveRecipients>'
               % (''.join('<To>%s</To>' % escape(t) for t in tos),
                  '<Options>%s</Options>' % options if options else ''))
        st, _, t = (c or self.c).post('ResolveRecipients', xml)
        self.assertEqual(st, 200)
        return t

    def answers(self, t):
        out = []
        for r in findall(t, RR + 'Response'):
            out.append((text(r, RR + 'To'), int(text(r, RR + 'Status')),
                        int(text(r, RR + 'RecipientCount', '0')),
                        [(text(x, RR + 'Type'), text(x, RR + 'DisplayName'),
                          text(x, RR + 'EmailAddress')) for x in findall(r, RR + 'Recipient')]))
        return out

    def test_resolve_addresses_and_names(self):
        t = self.resolve(['bob@example.com', 'Bob Smith <BOBBY@example.com>', 'rob',
                          'nobody@example.com', 'bob@example.org', 'sales@example.com',
                          'someone@elsewhere.net'])
        self.assertEqual(text(t, RR + 'Status'), '1')
        a = self.answers(t)
        self.assertEqual(a[0], ('bob@example.com', 1, 1, [('1', 'bob', 'bob@example.com')]))
        self.assertEqual(a[1][1:], (1, 1, [('1', 'bobby', 'bobby@example.com')]))
        self.assertEqual(a[2][1:], (1, 1, [('1', 'robert', 'robert@example.com')]))
        self.assertEqual(a[3][1:3], (4, 0))  # the catch-all does not make it a GAL entry
        self.assertEqual(a[4][1:3], (4, 0))  # another tenant's mailbox is not in this GAL
        self.assertEqual(a[5][1:], (1, 1, [('1', 'sales', 'sales@example.com')]))
        self.assertEqual(a[6][1:3], (4, 0))

    def test_ambiguous_names(self):
        a = self.answers(self.resolve(['bo']))  # bob, bobby
        self.assertEqual(a[0][1:3], (2, 2))
        self.assertEqual(sorted(x[2] for x in a[0][3]), ['bob@example.com', 'bobby@example.com'])
        a = self.answers(self.resolve(['bo'], '<MaxAmbiguousRecipients>1</MaxAmbiguousRecipients>'))
        self.assertEqual(a[0][1:3], (3, 1))
        self.assertEqual(len(a[0][3]), 1)

    def test_certificates_and_pictures_requested(self):
        t = self.resolve(['bob@example.com'], '<CertificateRetrieval>2</CertificateRetrieval>'
                         '<Picture><MaxSize>1000</MaxSize></Picture>')
        r = find(t, RR + 'Response/' + RR + 'Recipient')
        self.assertEqual(text(r, RR + 'Certificates/' + RR + 'Status'), '7')
        self.assertEqual(text(r, RR + 'Certificates/' + RR + 'CertificateCount'), '0')
        self.assertEqual(text(r, RR + 'Picture/' + RR + 'Status'), '173')

    def test_availability_of_a_mailbox_and_an_alias(self):
        t = self.resolve(['bob@example.com', 'sales@example.com'],
                         '<Availability><StartTime>2030-01-07T00:00:00.000Z</StartTime>'
                         '<EndTime>2030-01-07T12:00:00.000Z</EndTime></Availability>')
        rs = findall(t, RR + 'Response')
        av = find(rs[0], RR + 'Recipient/' + RR + 'Availability')
        self.assertEqual(text(av, RR + 'Status'), '1')
        self.assertEqual(text(av, RR + 'MergedFreeBusy'), '0' * 24)  # nothing booked
        self.assertEqual(text(rs[1], RR + 'Recipient/' + RR + 'Availability/' + RR + 'Status'),
                         '163')

    def put_event(self, name, lines):
        body = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n'
                'UID:%s\r\nDTSTAMP:20291201T000000Z\r\n%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n'
                % (name, '\r\n'.join(lines)))
        st, _, data = self.p.request('PUT', '/caldav/zed@example.com/calendar/%s.ics' % name,
                                     self.p.label_host(), body=body.encode(),
                                     headers={'Content-Type': 'text/calendar'},
                                     auth=('zed@example.com', PW))
        self.assertEqual(st, 201, data)

    def test_availability_from_the_calendar(self):
        """MergedFreeBusy in 30-minute slots from events written over CalDAV: busy,
        tentative, out of office, and a transparent event that does not count; a weekly
        series whose instance lands in the window."""
        self.put_event('busy', ['DTSTART:20300107T090000Z', 'DTEND:20300107T100000Z',
                                'SUMMARY:meeting'])
        self.put_event('maybe', ['DTSTART:20300107T103000Z', 'DTEND:20300107T110000Z',
                                 'STATUS:TENTATIVE'])
        self.put_event('free', ['DTSTART:20300107T100000Z', 'DTEND:20300107T120000Z',
                                'TRANSP:TRANSPARENT'])
        self.put_event('away', ['DTSTART:20300107T110000Z', 'DTEND:20300107T113000Z',
                                'X-MICROSOFT-CDO-BUSYSTATUS:OOF'])
        self.put_event('weekly', ['DTSTART:20291231T013000Z', 'DTEND:20291231T020000Z',
                                  'RRULE:FREQ=WEEKLY'])
        t = self.resolve(['zed@example.com'],
                         '<Availability><StartTime>2030-01-07T00:00:00.000Z</StartTime>'
                         '<EndTime>2030-01-07T12:00:00.000Z</EndTime></Availability>')
        av = find(t, RR + 'Response/' + RR + 'Recipient/' + RR + 'Availability')
        self.assertEqual(text(av, RR + 'Status'), '1')
        #                 00:00 .. 01:00  01:30  .. 09:00 09:30 10:00 10:30 11:00 11:30
        self.assertEqual(text(av, RR + 'MergedFreeBusy'),
                         '000' + '2' + '0' * 14 + '22' + '0' + '1' + '3' + '0')

    def test_malformed_requests(self):
        bad = [
            '<CertificateRetrieval>9</CertificateRetrieval>',
            '<Availability><StartTime>2030-01-07T10:00:00.000Z</StartTime>'
            '<EndTime>2030-01-07T09:00:00.000Z</EndTime></Availability>',
            '<Availability><StartTime>2030-01-01T00:00:00.000Z</StartTime>'
            '<EndTime>2030-06-01T00:00:00.000Z</EndTime></Availability>',  # too long
            '<Availability><StartTime>yesterday</StartTime></Availability>',
        ]
        for opts in bad:
            t = self.resolve(['bob@example.com'], opts)
            self.assertEqual(text(t, RR + 'Status'), '5', opts)
            self.assertIsNone(find(t, RR + 'Response'))
        t = self.resolve([])
        self.assertEqual(text(t, RR + 'Status'), '5')
        t = self.resolve(['x' * 300])
        self.assertEqual(text(t, RR + 'Status'), '5')
        # free/busy came with 14.0
        old = EasClient(self.p, ALICE[0], ALICE[1], device_id='miscdev121', version='12.1')
        provision(old)
        t = self.resolve(['bob@example.com'], '<Availability><StartTime>2030-01-07T00:00:00.000Z'
                         '</StartTime><EndTime>2030-01-07T12:00:00.000Z</EndTime></Availability>',
                         c=old)
        self.assertEqual(text(t, RR + 'Status'), '5')
        t = self.resolve(['bob@example.com'], c=old)
        self.assertEqual(self.answers(t)[0][1], 1)

    # -- ValidateCert ---------------------------------------------------------------------
    def validate(self, certs, chain=(), crl=False):
        xml = ('<ValidateCert xmlns="ValidateCert:">%s%s%s</ValidateCert>'
               % ('<CertificateChain>%s</CertificateChain>'
                  % ''.join('<Certificate>%s</Certificate>' % c for c in chain) if chain else '',
                  '<Certificates>%s</Certificates>'
                  % ''.join('<Certificate>%s</Certificate>' % c for c in certs) if certs else '',
                  '<CheckCRL>1</CheckCRL>' if crl else ''))
        st, _, t = self.c.post('ValidateCert', xml)
        self.assertEqual(st, 200)
        return text(t, VC + 'Status'), [text(c, VC + 'Status')
                                        for c in findall(t, VC + 'Certificate')]

    def test_validate_certificates(self):
        top, each = self.validate([b64der(GOOD[0]), b64der(SELF[0]), b64der(EXPIRED[0]),
                                   b64der(TLS_ONLY[0]), base64.b64encode(b'junk').decode(),
                                   b64der(VIA_INTER[0])])
        self.assertEqual(top, '1')
        # trusted, self-signed (untrusted), expired, not for e-mail signing, not a
        # certificate, issuer unknown without the chain
        self.assertEqual(each, ['1', '4', '7', '6', '10', '4'])
        self.assertEqual(self.validate([b64der(VIA_INTER[0])], chain=[b64der(INTER[0])])[1],
                         ['1'])
        # revocation cannot be checked without fetching the CRL: said so, not faked
        self.assertEqual(self.validate([b64der(WITH_CRL[0]), b64der(GOOD[0])], crl=True)[1],
                         ['16', '1'])
        self.assertEqual(self.validate([b64der(WITH_CRL[0])])[1], ['1'])
        self.assertEqual(self.validate([]), ('2', []))
        self.assertEqual(self.validate([b64der(GOOD[0])] * 17), ('2', []))

    # -- a folder gone since the device's FolderSync ---------------------------------------
    def test_sync_of_a_deleted_folder_is_status_12(self):
        c = EasClient(self.p, ALICE[0], ALICE[1], device_id='miscdev12', version='14.1')
        provision(c)
        st, _, t = c.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0'
                          '</SyncKey></FolderSync>')
        st, _, t = c.post('FolderCreate', '<FolderCreate xmlns="FolderHierarchy:"><SyncKey>%s'
                          '</SyncKey><ParentId>0</ParentId><DisplayName>Short-lived'
                          '</DisplayName><Type>12</Type></FolderCreate>'
                          % text(t, 'FolderHierarchy:SyncKey'))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
        fid = text(t, 'FolderHierarchy:ServerId')
        sync = ('<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>%s</SyncKey>'
                '<CollectionId>%s</CollectionId></Collection></Collections></Sync>')
        st, _, t = c.post('Sync', sync % ('0', fid))
        key = text(t, 'AirSync:Collections/AirSync:Collection/AirSync:SyncKey')
        self.assertEqual(text(t, 'AirSync:Collections/AirSync:Collection/AirSync:Status'), '1')
        # another client removes the folder (as an IMAP DELETE would)
        other = EasClient(self.p, ALICE[0], ALICE[1], device_id='miscdev12b', version='14.1')
        provision(other)
        st, _, t = other.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0'
                              '</SyncKey></FolderSync>')
        st, _, t = other.post('FolderDelete', '<FolderDelete xmlns="FolderHierarchy:"><SyncKey>%s'
                              '</SyncKey><ServerId>%s</ServerId></FolderDelete>'
                              % (text(t, 'FolderHierarchy:SyncKey'), fid))
        self.assertEqual(text(t, 'FolderHierarchy:Status'), '1')
        st, _, t = c.post('Sync', sync % (key, fid))
        self.assertEqual(text(t, 'AirSync:Collections/AirSync:Collection/AirSync:Status'), '12')

    # -- GetAttachment --------------------------------------------------------------------
    def test_get_attachment(self):
        m = EmailMessage()
        m['From'] = 'x@elsewhere.net'
        m['To'] = ALICE[0]
        m['Subject'] = 'with attachment'
        m.set_content('see attached')
        payload = bytes(range(256)) * 40
        m.add_attachment(payload, maintype='application', subtype='octet-stream',
                         filename='data.bin')
        with smtplib.SMTP('127.0.0.1', self.p.ports['smtp'], timeout=30) as s:
            s.send_message(m)
        c = EasClient(self.p, ALICE[0], ALICE[1], device_id='miscdev25', version='12.1')
        provision(c)
        st, _, t = c.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0'
                          '</SyncKey></FolderSync>')
        inbox = [text(f, 'FolderHierarchy:ServerId')
                 for f in findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Add')
                 if text(f, 'FolderHierarchy:Type') == '2'][0]
        sync = ('<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>%s</SyncKey>'
                '<CollectionId>%s</CollectionId>%s</Collection></Collections></Sync>')
        st, _, t = c.post('Sync', sync % ('0', inbox, ''))
        key = text(t, 'AirSync:Collections/AirSync:Collection/AirSync:SyncKey')
        st, _, t = c.post('Sync', sync % (key, inbox, '<GetChanges>1</GetChanges>'))
        refs = [text(a, 'AirSyncBase:FileReference') for a in
                findall(t, 'AirSync:Collections/AirSync:Collection/AirSync:Commands/AirSync:Add/'
                        'AirSync:ApplicationData/AirSyncBase:Attachments/AirSyncBase:Attachment')]
        self.assertEqual(len(refs), 1)
        st, h, data = c.post('GetAttachment', extra_query={'AttachmentName': refs[0]})
        self.assertEqual(st, 200)
        self.assertEqual(h['content-type'], 'application/octet-stream')
        self.assertEqual(data, payload)
        # a reference to nothing: 500, as the specification says for a vanished attachment
        fid, iid, part = refs[0].split(':')
        st, _, _ = c.post('GetAttachment', extra_query={'AttachmentName': '%s:%d:%s' % (
            fid, int(iid) + 1000, part)})
        self.assertEqual(st, 500)
        st, _, _ = c.post('GetAttachment', extra_query={'AttachmentName': 'nonsense'})
        self.assertEqual(st, 400)
        # gone from 14.0 on
        st, _, _ = self.c.post('GetAttachment', extra_query={'AttachmentName': refs[0]})
        self.assertNotEqual(st, 200)


if __name__ == '__main__':
    unittest.main(verbosity=2)
