"""End-to-end harness: one real server with every listener (HTTP and HTTPS for ActiveSync,
DAV and autodiscover; IMAP; POP3; SMTP MX and submission) and ready clients for one user's
store, so a test can change the store through one protocol and assert what the others see.

    with Server() as s:
        s.user('alice@example.com', 'enhanced')          # password: s.pw(address)
        im = s.imap('alice@example.com')                  # imaplib, logged in
        po = s.pop3('alice@example.com')                  # poplib, logged in
        s.mx_send('x@example.net', ['alice@example.com'], raw)   # SMTP MX, no auth
        sub = s.submit('alice@example.com')               # smtplib on submission, logged in
        eas = s.eas('alice@example.com', 'dev1')          # Eas: provisioned, FolderSync done
        key, adds = eas.initial('Inbox')                  # primed and fully synced
        res = eas.pull('Inbox')                           # Adds / Changes / Deletes since
        s.integrity('alice@example.com')                  # PRAGMA integrity_check of the store

Built on tests/integration: harness.Polaris (the binary on loopback ports, CLI) and
eas_client (the libwbxml-checked ActiveSync client) and the Sync helpers of
test_eas_sync. DAV and ActiveSync calendar/contacts tests plug in the same way: the HTTP
listener is already here (s.request(method, path, s.host(domain), auth=(a, s.pw(a))), or
python3-caldav at 'http://127.0.0.1:%d/' % s.http_port with that Host), s.eas(...).fid()
knows the Calendar and Contacts folders, and Eas.initial/pull work for any class (pass
the class's Options). A new file tests/e2e/test_e2e_<area>.py is a unittest module with one
Server per class (see test_e2e_mail.py), listed in tests/meson.build under e2e_tests;
keep each file well under 60 s.

Users get the password s.pw(address); one Server per test class, one mailbox per test
keeps the stores apart. Every test file prints its figures (latencies, counts) on stdout.

Runs under Debian's /usr/bin/python3; standard library only.
"""
import imaplib
import os
import poplib
import select
import smtplib
import socket
import sqlite3
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

from harness import Polaris, free_port  # noqa: E402
import eas_client  # noqa: E402
from eas_client import EasClient, find, findall, text, tostring  # noqa: E402,F401
from test_eas_sync import provision, folders, sync, coll_of, cmds  # noqa: E402,F401

LISTENERS = ('http', 'https', 'imap', 'pop3', 'smtp', 'submission')
# Plain text logins on loopback; no throttling of the many logins a test makes; Pings
# short enough for a test; a sender limit that the concurrency loop does not reach.
CONFIG = ('[auth]\nallow_plaintext = loopback\nfail_max = 100000\n\n'
          '[eas]\nheartbeat_min = 1\nheartbeat_max = 60\n\n'
          '[smtp]\nrate_per_minute = 100000\nrate_per_hour = 1000000\n')


class Server(Polaris):
    """A Polaris with every listener; users are made with user() and remembered."""

    def __init__(self, extra_config=''):
        # Mail for other domains must never leave the machine: the outbound queue's
        # smarthost and resolver are loopback ports nobody listens on.
        guard = '\nsmarthost = 127.0.0.1:%d\nresolver = 127.0.0.1:%d\n' % (free_port(),
                                                                          free_port())
        super().__init__(listeners=LISTENERS, extra_config=CONFIG + guard + extra_config)
        self._pw = {}
        self._domains = set()

    # -- accounts ----------------------------------------------------------------------
    def pw(self, address):
        return self._pw[address]

    def user(self, address, kind='enhanced'):
        dom = address.split('@', 1)[1]
        if dom not in self._domains:
            self.cli_ok('domain', 'add', dom)
            self._domains.add(dom)
        pw = 'Pw-%s-%s-1!' % (address.split('@', 1)[0].capitalize(), dom.split('.')[0])
        self.cli_ok('user', 'add', address, '--type', kind, '--password', pw)
        self._pw[address] = pw
        return pw

    def set_type(self, address, kind):
        self.cli_ok('user', 'set', address, '--type', kind)

    def host(self, domain):
        return self.label_host(domain)

    def store_path(self, address):
        """The user's SQLite file (store_sqlite.c: users/<domain>/<local part>/store.db)."""
        local, dom = address.lower().split('@', 1)
        return os.path.join(self.data_dir, 'users', dom, local, 'store.db')

    def integrity(self, address):
        """PRAGMA integrity_check on a read-only connection, beside the running server."""
        db = sqlite3.connect('file:%s?mode=ro' % self.store_path(address), uri=True, timeout=30)
        try:
            return [r[0] for r in db.execute('PRAGMA integrity_check')]
        finally:
            db.close()

    # -- clients -----------------------------------------------------------------------
    def imap(self, address, password=None):
        m = imaplib.IMAP4('127.0.0.1', self.ports['imap'], timeout=30)
        m.login(address, password or self._pw[address])
        return m

    def pop3(self, address, password=None):
        c = poplib.POP3('127.0.0.1', self.ports['pop3'], timeout=30)
        c.user(address)
        c.pass_(password or self._pw[address])
        return c

    def mx(self):
        return smtplib.SMTP('127.0.0.1', self.ports['smtp'], timeout=30)

    def mx_send(self, sender, rcpts, raw):
        s = self.mx()
        try:
            refused = s.sendmail(sender, rcpts, raw)
            assert not refused, refused
        finally:
            s.quit()

    def submit(self, address, password=None):
        s = smtplib.SMTP('127.0.0.1', self.ports['submission'], timeout=30)
        s.login(address, password or self._pw[address])
        return s

    def eas(self, address, device_id, version='16.1', password=None):
        return Eas(self, address, password or self._pw[address], device_id, version)


class Eas:
    """An ActiveSync device of one mailbox: provisioned, folders known, one SyncKey per
    collection it has synced."""

    def __init__(self, server, address, password, device_id, version):
        self.c = EasClient(server, address, password, device_id=device_id, version=version)
        provision(self.c)
        self.refresh_folders()
        self.keys = {}

    def refresh_folders(self):
        self.folders = {name: sid for name, (sid, _) in folders(self.c).items()}
        return self.folders

    def fid(self, name):
        if name not in self.folders:
            self.refresh_folders()
        return self.folders[name]

    def _sync(self, coll, body='', options=None, window=100):
        opts = options if options is not None else OPTIONS
        col = coll_of(sync(self.c, coll, self.keys[coll], body=body, window=window,
                           options=opts))
        assert text(col, 'AirSync:Status') == '1', tostring(col)
        self.keys[coll] = text(col, 'AirSync:SyncKey')
        return col

    def initial(self, name, options=None):
        """SyncKey 0, then every item: {ServerId: ApplicationData element}."""
        coll = self.fid(name)
        col = coll_of(sync(self.c, coll, 0))
        assert text(col, 'AirSync:Status') == '1', tostring(col)
        self.keys[coll] = text(col, 'AirSync:SyncKey')
        return self.pull(name, options)['add']

    def pull(self, name, options=None):
        """What changed since the last Sync of the folder, every window of it:
        {'add': {sid: appdata}, 'change': {sid: appdata}, 'delete': [sid], 'soft': [sid]}."""
        coll = self.fid(name)
        out = {'add': {}, 'change': {}, 'delete': [], 'soft': []}
        for _ in range(100):
            col = self._sync(coll, options=options)
            for kind, el in (('add', 'Add'), ('change', 'Change')):
                for a in findall(col, 'AirSync:Commands/AirSync:' + el):
                    out[kind][text(a, 'AirSync:ServerId')] = find(a, 'AirSync:ApplicationData')
            out['delete'] += cmds(col, 'Delete')
            out['soft'] += cmds(col, 'SoftDelete')
            if find(col, 'AirSync:MoreAvailable') is None:
                return out
        raise AssertionError('MoreAvailable never ended')

    def push(self, name, commands, options=''):
        """Sends client commands (the inside of <Commands>); returns the Collection."""
        coll = self.fid(name)
        return self._sync(coll, body='<Commands>%s</Commands>' % commands, options=options)

    def change(self, name, sid, read=None, flagged=None, categories=None):
        data = ''
        if read is not None:
            data += '<Email:Read xmlns:Email="Email:">%d</Email:Read>' % read
        if flagged is not None:
            data += ('<Email:Flag xmlns:Email="Email:">%s</Email:Flag>'
                     % ('<Email:Status>2</Email:Status><Email:FlagType>Flag for follow up'
                        '</Email:FlagType>' if flagged else ''))
        if categories is not None:
            data += ('<Email:Categories xmlns:Email="Email:">%s</Email:Categories>'
                     % ''.join('<Email:Category>%s</Email:Category>' % c for c in categories))
        return self.push(name, '<Change><ServerId>%s</ServerId><ApplicationData>%s'
                         '</ApplicationData></Change>' % (sid, data))

    def delete(self, name, sid, deletes_as_moves=True):
        return self.push(name, '<Delete><ServerId>%s</ServerId></Delete>' % sid,
                         options='<DeletesAsMoves>%d</DeletesAsMoves>' % int(deletes_as_moves))

    def move(self, sid, src, dst):
        """MoveItems; returns (status, new ServerId)."""
        _, _, t = self.c.post('MoveItems', '<MoveItems xmlns="Move:"><Move><SrcMsgId>%s'
                              '</SrcMsgId><SrcFldId>%s</SrcFldId><DstFldId>%s</DstFldId>'
                              '</Move></MoveItems>' % (sid, self.fid(src), self.fid(dst)))
        return text(t, 'Move:Response/Move:Status'), text(t, 'Move:Response/Move:DstMsgId')

    def timed_post(self, cmd, xml, timeout=120):
        """POSTs a command and returns (status, time.monotonic() when the whole answer was
        in, answer tree or bytes): the time is taken before any decoding, for latency
        figures."""
        c = self.c
        path = c.PATH + '?' + urllib.parse.urlencode({
            'Cmd': cmd, 'User': c.user, 'DeviceId': c.device_id, 'DeviceType': c.device_type})
        h = {'Host': c.host, 'Authorization': c._auth(), 'MS-ASProtocolVersion': c.version,
             'X-MS-PolicyKey': str(c.policy_key),
             'Content-Type': 'application/vnd.ms-sync.wbxml'}
        conn = c.p.http(timeout=timeout)
        try:
            conn.request('POST', path, body=eas_client.encode(xml), headers=h)
            r = conn.getresponse()
            data = r.read()
            t = time.monotonic()
        finally:
            conn.close()
        tree = eas_client.check_agree(data) if data else data
        return r.status, t, tree

    def ping_request(self, names, heartbeat=30):
        return ('<Ping xmlns="Ping:"><HeartbeatInterval>%d</HeartbeatInterval><Folders>%s'
                '</Folders></Ping>' % (heartbeat, ''.join(
                    '<Folder><Id>%s</Id><Class>Email</Class></Folder>' % self.fid(n)
                    for n in names)))


# Text bodies with a preview, as a phone asks (MS-ASAIRS BodyPreference, 14.0+).
OPTIONS = ('<Options><AirSyncBase:BodyPreference xmlns:AirSyncBase="AirSyncBase:">'
           '<AirSyncBase:Type>1</AirSyncBase:Type><AirSyncBase:TruncationSize>5000'
           '</AirSyncBase:TruncationSize><AirSyncBase:Preview>100</AirSyncBase:Preview>'
           '</AirSyncBase:BodyPreference></Options>')


def message(subject, sender='Sender <sender@example.net>', to='alice@example.com',
            body='Hello from the end-to-end suite.', msgid=None):
    msgid = msgid or '<%s.%d@example.net>' % (subject.replace(' ', '-'), int(time.time() * 1e6))
    return ('From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n'
            'Message-ID: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n'
            '\r\n%s\r\n' % (sender, to, subject, msgid, body))


def uid_by_subject(m, folder, subject):
    """The UIDs in folder whose Subject contains subject (imaplib, selects folder)."""
    typ, _ = m.select('"%s"' % folder)
    assert typ == 'OK', folder
    typ, d = m.uid('SEARCH', None, 'SUBJECT', '"%s"' % subject)
    assert typ == 'OK', d
    return [int(x) for x in d[0].split()]


def fetch_flags(m, uid):
    """The FLAGS of one UID of the selected folder, as a set of str; None if gone."""
    typ, d = m.uid('FETCH', str(uid), '(FLAGS)')
    assert typ == 'OK', d
    for part in d:
        if part is None:
            continue
        s = part.decode() if isinstance(part, bytes) else part[0].decode()
        if 'FLAGS (' in s:
            return set(s.split('FLAGS (', 1)[1].split(')', 1)[0].split())
    return None


def wait_until(pred, timeout=10, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Idler:
    """A raw IMAP session on a selected folder that IDLEs (imaplib has no IDLE): idle()
    enters IDLE, wait() gives (time.monotonic() of the first untagged answer, the line),
    done() leaves IDLE."""

    def __init__(self, server, address, folder='INBOX', password=None):
        self.sock = socket.create_connection(('127.0.0.1', server.ports['imap']), timeout=30)
        self.f = self.sock.makefile('rb')
        self.f.readline()                                        # greeting
        self._cmd('a LOGIN "%s" "%s"' % (address, password or server.pw(address)), 'a ')
        self._cmd('b SELECT "%s"' % folder, 'b ')

    def _cmd(self, line, tag):
        self.sock.sendall(line.encode() + b'\r\n')
        while True:
            got = self.f.readline()
            assert got, 'connection closed'
            if got.startswith(tag.encode()):
                assert got.split()[1] == b'OK', got
                return

    def idle(self):
        self.sock.sendall(b'c IDLE\r\n')
        got = self.f.readline()
        assert got.startswith(b'+'), got

    def wait(self, timeout=10):
        self.sock.settimeout(timeout)
        line = self.f.readline()
        t = time.monotonic()
        self.sock.settimeout(30)
        assert line.startswith(b'* '), line
        return t, line.decode().strip()

    def quiet(self, seconds):
        """True when the server sends nothing for that long (the reader holds nothing
        unread between commands: every answer is read up to its tagged line)."""
        r, _, _ = select.select([self.sock], [], [], seconds)
        return not r

    def done(self):
        self._cmd('DONE', 'c ')

    def close(self):
        try:
            self.sock.sendall(b'z LOGOUT\r\n')
        except OSError:
            pass
        self.f.close()
        self.sock.close()
