"""IMAP against the real binary, driven by real clients nobody here wrote: Python's imaplib
(IMAPS and STARTTLS), curl (plain, STARTTLS, IMAPS, upload), mbsync (isync: a two-way
Maildir mirror), and the imapflow Node.js library (IDLE push, CONDSTORE, QRESYNC; scripts
in node/, whose node_modules `npm ci` fills the first time).

Every test works on a user of its own, so they do not see each other's changes.

A test skips only when its client is not installed (scripts/deps.sh --test installs them
all). In the sanitizer build, a UBSan/ASan report in the server's log while a test ran
fails that test.
"""
import email
import imaplib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Polaris

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, 'node')

NODE = os.environ.get('POLARIS_TEST_NODE') or (
    '/usr/bin/node' if os.access('/usr/bin/node', os.X_OK) else shutil.which('node'))
NPM = shutil.which('npm')
CURL = shutil.which('curl')
MBSYNC = shutil.which('mbsync')

PASSWORD = 'Sync-Pass1!'
_users = itertools.count(1)


def msg(subject, body='Hello.', frm='Bob <bob@example.com>', to='someone@example.com',
        date='Mon, 6 Jan 2025 10:00:00 +0000'):
    """An RFC 5322 message with CRLF line ends, as bytes."""
    mid = re.sub(r'\W', '', subject) or 'x'
    return ('From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n'
            'Message-ID: <%s.%d@example.com>\r\n\r\n%s\r\n'
            % (frm, to, subject, date, mid, time.time_ns(), body)).encode()


def setUpModule():
    global P
    P = Polaris(listeners=('imap', 'imaps'),
                extra_config='[auth]\nallow_plaintext = loopback\n')
    try:
        P.__enter__()
        P.cli_ok('domain', 'add', 'example.com')
    except BaseException:
        P.__exit__(None, None, None)
        raise


def tearDownModule():
    P.__exit__(None, None, None)


SANITIZER = re.compile(r'runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer')


class ClientTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        # In the sanitizer build UBSan reports and goes on: a report in the server's log
        # while this test ran fails the test.
        try:
            start = os.path.getsize(P.log_path)
        except OSError:
            start = 0
        self.addCleanup(self._no_sanitizer_reports, start)

    def _no_sanitizer_reports(self, start):
        with open(P.log_path, 'rb') as f:
            f.seek(start)
            new = f.read().decode('utf-8', 'replace')
        bad = [l for l in new.splitlines() if SANITIZER.search(l)]
        if bad:
            self.fail('the server reported, while this test ran:\n' + '\n'.join(bad[:10]))

    # -- accounts and messages ---------------------------------------------------------
    def new_user(self, *messages, folder=None):
        """A fresh enhanced user with MESSAGES (bytes) appended to INBOX (or FOLDER) by the
        CLI, so the messages exist before any IMAP command has to work."""
        addr = 'u%d-%s@example.com' % (next(_users), self._testMethodName[5:20].replace('_', '-'))
        P.cli_ok('user', 'add', addr, '--type', 'enhanced', '--password', PASSWORD)
        for m in messages:
            self.cli_append(addr, m, folder)
        return addr

    def cli_append(self, addr, m, folder=None):
        args = ['mail', 'append', addr] + (['--folder', folder] if folder else [])
        P.cli_ok(*args, input=m.decode())

    def cli_argv(self):
        return [os.path.abspath(BIN), '-c', P.config_path]

    # -- imaplib ---------------------------------------------------------------------
    def imap(self, addr=None, tls=False):
        if tls:
            c = imaplib.IMAP4_SSL('localhost', P.ports['imaps'], ssl_context=P.tls_context(),
                                  timeout=10)
        else:
            c = imaplib.IMAP4('127.0.0.1', P.ports['imap'], timeout=10)
        self.addCleanup(self._close, c)
        if addr:
            c.login(addr, PASSWORD)
        return c

    @staticmethod
    def _close(c):
        try:
            if c.state != 'LOGOUT':
                c.logout()
        except Exception:
            pass
        try:
            c.shutdown()
        except Exception:
            pass

    def ok(self, res, what=''):
        """The data of an OK imaplib result; fails on anything else."""
        typ, data = res
        if typ != 'OK':
            self.fail('%s: %s %r' % (what, typ, data))
        return data

    def uid_fetch(self, c, uids, items):
        """{uid: {item: value}} for a UID FETCH through imaplib."""
        data = self.ok(c.uid('FETCH', uids, items), 'UID FETCH %s %s' % (uids, items))
        out = {}
        for d in data:
            if isinstance(d, tuple):
                head, lit = d
                m = re.search(rb'UID (\d+)', head)
                out.setdefault(int(m.group(1)), {})['literal'] = lit
                fl = re.search(rb'FLAGS \(([^)]*)\)', head)
                if fl:
                    out[int(m.group(1))]['flags'] = set(fl.group(1).decode().split())
            elif isinstance(d, bytes) and b'UID' in d:
                m = re.search(rb'UID (\d+)', d)
                fl = re.search(rb'FLAGS \(([^)]*)\)', d)
                e = out.setdefault(int(m.group(1)), {})
                if fl:
                    e['flags'] = set(fl.group(1).decode().split())
        return out

    def server_messages(self, addr, box='INBOX'):
        """{Subject: set of flags} of BOX, through imaplib."""
        c = self.imap(addr)
        self.ok(c.select('"%s"' % box, readonly=True), 'EXAMINE ' + box)
        got = self.uid_fetch(c, '1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
        c.logout()
        res = {}
        for uid, e in got.items():
            subj = email.message_from_bytes(e.get('literal', b''))['Subject']
            res[subj] = e.get('flags', set())
        return res


# ======================================================================================
class ImaplibTest(ClientTest):
    """Python's imaplib over IMAPS and over STARTTLS on the plain port."""

    def test_imaps_login_select(self):
        addr = self.new_user(msg('first', 'one'), msg('second', 'two'))
        c = self.imap(tls=True)
        self.assertIn(b'Polaris', c.welcome)
        self.assertIn('AUTH=PLAIN', c.capabilities)
        self.assertNotIn('STARTTLS', c.capabilities)      # TLS already
        self.assertNotIn('LOGINDISABLED', c.capabilities)
        self.assertIn(c.sock.version(), ('TLSv1.2', 'TLSv1.3'))
        c.login(addr, PASSWORD)
        self.assertEqual(c.select('INBOX'), ('OK', [b'2']))
        self.assertRegex(c.untagged_responses['UIDVALIDITY'][0], rb'^[1-9]\d*$')
        self.assertEqual(c.noop()[0], 'OK')
        self.assertEqual(c.logout()[0], 'BYE')
        # STARTTLS inside TLS is refused
        c = self.imap(tls=True)
        typ, _ = c._simple_command('STARTTLS')     # imaplib raises on BAD, returns NO
        self.assertEqual(typ, 'NO')
        self.assertEqual(c.noop()[0], 'OK')         # and the session goes on, in TLS

    def test_imaps_fetch(self):
        m1, m2 = msg('first', 'one'), msg('second', 'two')
        addr = self.new_user(m1, m2)
        c = self.imap(addr, tls=True)
        self.ok(c.select('INBOX'))
        got = self.uid_fetch(c, '1:*', '(UID FLAGS BODY.PEEK[])')
        self.assertEqual([got[u]['literal'] for u in sorted(got)], [m1, m2])
        self.assertEqual(got[min(got)]['flags'], set())           # PEEK set no \Seen
        # BODY[] (no PEEK) sets \Seen
        self.uid_fetch(c, str(min(got)), '(BODY[])')
        self.assertEqual(self.uid_fetch(c, '1:*', '(FLAGS)')[min(got)]['flags'], {'\\Seen'})

    def test_starttls_then_login_and_authenticate(self):
        addr = self.new_user(msg('over starttls'))
        c = self.imap()
        self.assertIn('STARTTLS', c.capabilities)
        c.starttls(P.tls_context())
        self.assertIn(c.sock.version(), ('TLSv1.2', 'TLSv1.3'))
        # imaplib asks CAPABILITY again after STARTTLS: STARTTLS is no longer offered
        self.assertNotIn('STARTTLS', c.capabilities)
        self.assertIn('AUTH=PLAIN', c.capabilities)
        c.login(addr, PASSWORD)
        self.assertEqual(c.select('INBOX', readonly=True), ('OK', [b'1']))
        c.logout()

        # AUTHENTICATE PLAIN (a continuation round trip) over STARTTLS too
        c = self.imap()
        c.starttls(P.tls_context())
        typ, _ = c.authenticate('PLAIN', lambda _: ('\0%s\0%s' % (addr, PASSWORD)).encode())
        self.assertEqual(typ, 'OK')
        self.assertEqual(c.state, 'AUTH')
        self.assertEqual(c.select('INBOX', readonly=True), ('OK', [b'1']))
        c.logout()

        # a wrong password is refused with AUTHENTICATIONFAILED, in TLS and out of it
        for tls in (False, True):
            c = self.imap(tls=tls)
            with self.assertRaisesRegex(imaplib.IMAP4.error, 'AUTHENTICATIONFAILED'):
                c.login(addr, 'wrong-password')

    def test_noop_poll_sees_other_sessions(self):
        """NOOP is the poll of clients that do not IDLE (RFC 3501 6.1.2): what other sessions
        did comes as untagged data of that NOOP, before its tagged OK. (imaplib reads up to
        the tagged reply only, so an update sent after it is not seen here.)"""
        addr = self.new_user(msg('n1'), msg('n2'))
        a = self.imap(addr)
        self.ok(a.select('INBOX'))
        a.response('EXISTS')                       # forget SELECT's
        b = self.imap(addr)
        self.ok(b.select('INBOX'))

        self.cli_append(addr, msg('n3'))           # a delivery by another process
        self.assertEqual(a.noop()[0], 'OK')
        self.assertEqual(a.response('EXISTS'), ('EXISTS', [b'3']))

        self.ok(b.uid('STORE', '1', '+FLAGS.SILENT', '(\\Flagged)'), 'UID STORE')
        self.assertEqual(a.noop()[0], 'OK')
        typ, fetched = a.response('FETCH')
        self.assertTrue(fetched and fetched[0] and b'\\Flagged' in fetched[0],
                        'NOOP brought no FETCH for the flag change: %r' % (fetched,))

        self.ok(b.uid('STORE', '2', '+FLAGS.SILENT', '(\\Deleted)'), 'UID STORE')
        self.ok(b.expunge(), 'EXPUNGE')
        self.assertEqual(a.noop()[0], 'OK')
        self.assertEqual(a.response('EXPUNGE'), ('EXPUNGE', [b'2']))

    def test_fetch_sees_other_session_flags(self):
        """FETCH FLAGS answers with the flags the message has now, whoever set them."""
        addr = self.new_user(msg('f1'), msg('f2'))
        a = self.imap(addr)
        self.ok(a.select('INBOX'))
        self.assertEqual(self.uid_fetch(a, '1', '(FLAGS)')[1]['flags'], set())
        b = self.imap(addr)
        self.ok(b.select('INBOX'))
        self.ok(b.uid('STORE', '1', '+FLAGS', '(\\Answered $Label1)'), 'UID STORE')
        b.logout()
        self.assertEqual(self.uid_fetch(a, '1', '(FLAGS)')[1]['flags'],
                         {'\\Answered', '$Label1'})

    def test_append_store_expunge_roundtrip(self):
        addr = self.new_user(msg('keep'), msg('drop'))
        c = self.imap(addr, tls=True)
        self.ok(c.select('INBOX'))
        new = msg('appended by imaplib')
        typ, data = c.append('INBOX', '(\\Flagged)', None, new)
        self.assertEqual(typ, 'OK', data)
        self.assertRegex(data[0], rb'APPENDUID \d+ 3')
        self.ok(c.uid('STORE', '2', '+FLAGS.SILENT', '(\\Deleted)'), 'UID STORE')
        self.ok(c.expunge(), 'EXPUNGE')
        self.assertEqual(self.server_messages(addr),
                         {'keep': set(), 'appended by imaplib': {'\\Flagged'}})


# ======================================================================================
@unittest.skipUnless(CURL, 'curl is not installed (scripts/deps.sh --test installs it)')
class CurlTest(ClientTest):
    """curl's IMAP client: plain, STARTTLS (--ssl-reqd), IMAPS, and upload (APPEND)."""

    def curl(self, url, addr, *extra, tls_name=None, check=True):
        argv = [CURL, '-sS', '-v', '--max-time', '15', '-u', '%s:%s' % (addr, PASSWORD)]
        if tls_name:
            argv += ['--cacert', os.path.join(P.data_dir, 'tls', 'cert.pem')]
            port = re.search(r':(\d+)/', url).group(1)
            argv += ['--resolve', '%s:%s:127.0.0.1' % (tls_name, port)]
        r = subprocess.run(argv + list(extra) + [url], capture_output=True, timeout=30)
        if check and r.returncode != 0:
            self.fail('curl %s exited %d:\n%s' % (url, r.returncode,
                                                  r.stderr.decode('utf-8', 'replace')[-3000:]))
        return r

    def test_list_search_fetch_plain(self):
        m1, m2 = msg('curl one', 'body one'), msg('curl two', 'body two')
        addr = self.new_user(m1, m2)
        base = 'imap://127.0.0.1:%d/' % P.ports['imap']
        # LIST "" *
        out = self.curl(base, addr).stdout.decode()
        names = re.findall(r'^\* LIST \([^)]*\) (?:"[^"]*"|NIL) "?([^"\r\n]+)"?\r?$', out, re.M)
        for want in ('INBOX', 'Sent', 'Drafts', 'Trash'):
            self.assertIn(want, names, out)
        # SEARCH
        out = self.curl(base + 'INBOX?ALL', addr).stdout.decode()
        self.assertRegex(out, r'\* SEARCH 1 2\s*$')
        # UID FETCH n BODY[]: the message comes back byte for byte
        r = self.curl(base + 'INBOX;UID=2', addr)
        self.assertEqual(r.stdout, m2)
        # a section
        r = self.curl(base + 'INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)', addr)
        self.assertEqual(r.stdout.strip(), b'Subject: curl one')
        # a custom command
        out = self.curl(base, addr, '-X', 'EXAMINE INBOX').stdout.decode()
        self.assertIn('* 2 EXISTS', out)
        # a missing UID fails cleanly (curl: "no such message" is exit 78 or 9/67-ish)
        r = self.curl(base + 'INBOX;UID=99', addr, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b'')
        # a wrong password: curl's "Login denied" (67)
        r = subprocess.run([CURL, '-sS', '--max-time', '10', '-u', addr + ':nope',
                            base + 'INBOX;UID=1'], capture_output=True)
        self.assertEqual(r.returncode, 67, r.stderr)

    def test_starttls_required(self):
        m1 = msg('curl starttls', 'secret body')
        addr = self.new_user(m1)
        url = 'imap://localhost:%d/INBOX;UID=1' % P.ports['imap']
        r = self.curl(url, addr, '--ssl-reqd', tls_name='localhost')
        self.assertEqual(r.stdout, m1)
        err = r.stderr.decode('utf-8', 'replace')
        self.assertIn('STARTTLS', err)
        self.assertRegex(err, r'SSL connection using TLSv1\.[23]')
        # the login happens only after the handshake
        login = re.search(r'^> \S+ (LOGIN|AUTHENTICATE)\b', err, re.M)
        self.assertTrue(login, err)
        self.assertLess(err.index('SSL connection using'), login.start())
        # the certificate is checked: without the CA curl refuses
        r = subprocess.run([CURL, '-sS', '--max-time', '10', '--ssl-reqd', '-u',
                            '%s:%s' % (addr, PASSWORD), '--resolve',
                            'localhost:%d:127.0.0.1' % P.ports['imap'], url],
                           capture_output=True)
        self.assertEqual(r.returncode, 60, r.stderr)   # peer certificate cannot be verified

    def test_imaps(self):
        m1 = msg('curl imaps', 'over imaps')
        addr = self.new_user(m1)
        url = 'imaps://localhost:%d/INBOX;UID=1' % P.ports['imaps']
        r = self.curl(url, addr, tls_name='localhost')
        self.assertEqual(r.stdout, m1)
        self.assertRegex(r.stderr.decode('utf-8', 'replace'), r'SSL connection using TLSv1\.[23]')

    def test_upload_appends(self):
        addr = self.new_user()
        m = msg('uploaded by curl', 'via APPEND')
        with tempfile.NamedTemporaryFile(suffix='.eml') as f:
            f.write(m)
            f.flush()
            self.curl('imap://127.0.0.1:%d/Sent' % P.ports['imap'], addr, '-T', f.name)
        r = self.curl('imap://127.0.0.1:%d/Sent;UID=1' % P.ports['imap'], addr)
        self.assertEqual(r.stdout, m)


# ======================================================================================
@unittest.skipUnless(MBSYNC, 'mbsync is not installed (Debian package isync; '
                     'scripts/deps.sh --test installs it)')
class MbsyncTest(ClientTest):
    """A two-way Maildir mirror with mbsync (isync): pull, push, pull, and a no-op sync."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix='polaris-mbsync-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.maildir = os.path.join(self.dir, 'mail')
        os.makedirs(self.maildir)

    def write_rc(self, addr):
        rc = os.path.join(self.dir, 'mbsyncrc')
        # isync 1.4 (Debian 12) spells it SSLType; 1.5 renamed it TLSType and still reads
        # SSLType. A certificate in CertificateFile is trusted as it is.
        with open(rc, 'w') as f:
            f.write('IMAPAccount polaris\n'
                    'Host 127.0.0.1\nPort %d\nUser %s\nPass "%s"\n'
                    'SSLType STARTTLS\nCertificateFile %s\n'
                    'AuthMechs PLAIN LOGIN\n\n'
                    'IMAPStore remote\nAccount polaris\n\n'
                    'MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n'
                    'Channel polaris\nFar :remote:\nNear :local:\nPatterns *\n'
                    'Create Both\nExpunge Both\nSyncState *\n'
                    % (P.ports['imap'], addr, PASSWORD,
                       os.path.join(P.data_dir, 'tls', 'cert.pem'),
                       self.maildir, self.maildir))
        return rc

    def sync(self, rc):
        r = subprocess.run([MBSYNC, '-c', rc, '-a', '-V'], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            self.fail('mbsync exited %d:\n%s\n%s' % (r.returncode, r.stdout[-4000:],
                                                       r.stderr[-4000:]))
        return r.stdout + r.stderr

    def local(self, folder='INBOX'):
        """{Subject: (maildir flags, path)} of a local Maildir folder."""
        res = {}
        d = os.path.join(self.maildir, folder)
        for sub in ('new', 'cur'):
            for name in os.listdir(os.path.join(d, sub)):
                p = os.path.join(d, sub, name)
                with open(p, 'rb') as f:
                    subj = email.message_from_binary_file(f)['Subject']
                flags = name.split(':2,', 1)[1] if ':2,' in name else ''
                res[subj] = (flags, p)
        return res

    def snapshot(self):
        """Every file under the Maildir with its size and mtime, the sync state left out."""
        snap = {}
        for root, _, files in os.walk(self.maildir):
            for n in files:
                if n.startswith('.mbsyncstate') or n.startswith('.uidvalidity') or \
                        n == '.isyncuidmap.db':
                    continue
                p = os.path.join(root, n)
                st = os.stat(p)
                snap[os.path.relpath(p, self.maildir)] = (st.st_size, st.st_mtime_ns)
        return snap

    def server_state(self, addr, folders):
        """{folder: STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)} on the server: a
        HIGHESTMODSEQ that did not move means nothing was stored, flagged or expunged."""
        c = self.imap(addr)
        res = {}
        for f in folders:
            data = self.ok(c.status(f, '(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)'),
                           'STATUS ' + f)
            res[f] = data[0].split(b' ', 1)[1]
        c.logout()
        return res

    def test_two_way_mirror(self):
        a, b, c = msg('alpha', 'A'), msg('bravo', 'B'), msg('charlie', 'C')
        addr = self.new_user(a, b, c)
        self.cli_append(addr, msg('archived', 'old'), folder='Archive')
        rc = self.write_rc(addr)

        # 1. the first sync pulls INBOX and the folders
        self.sync(rc)
        self.assertEqual(set(self.local()), {'alpha', 'bravo', 'charlie'})
        self.assertEqual(set(self.local('Archive')), {'archived'})
        for folder in ('Sent', 'Drafts', 'Trash', 'Junk'):
            self.assertTrue(os.path.isdir(os.path.join(self.maildir, folder, 'cur')), folder)
        for folder in ('Calendar', 'Contacts', 'Tasks', 'Notes'):   # not mail
            self.assertFalse(os.path.exists(os.path.join(self.maildir, folder)), folder)
        # what came down is the message itself (mbsync stores Maildir files with LF ends
        # and may add its X-TUID header)
        with open(self.local()['bravo'][1], 'rb') as f:
            got = re.sub(rb'(?m)^X-TUID: .*\n', b'', f.read())
        self.assertEqual(got, b.replace(b'\r\n', b'\n'))

        # 2. local changes go up: a new message, \Seen on another, a new folder
        new = msg('delta from maildir', 'D')
        with open(os.path.join(self.maildir, 'INBOX', 'new',
                               '%d.polaris-test.localhost' % time.time_ns()), 'wb') as f:
            f.write(new)
        flags, path = self.local()['alpha']
        base = os.path.basename(path).split(':2,')[0]
        os.rename(path, os.path.join(self.maildir, 'INBOX', 'cur', base + ':2,S'))
        proj = os.path.join(self.maildir, 'Projects')
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(proj, sub))
        with open(os.path.join(proj, 'new', '%d.polaris-test.localhost' % time.time_ns()),
                  'wb') as f:
            f.write(msg('project plan', 'P'))
        self.sync(rc)
        self.assertEqual(self.server_messages(addr),
                         {'alpha': {'\\Seen'}, 'bravo': set(), 'charlie': set(),
                          'delta from maildir': set()})
        self.assertEqual(set(self.server_messages(addr, 'Projects')), {'project plan'})

        # 3. server changes come down: APPEND, STORE, EXPUNGE through imaplib
        cl = self.imap(addr)
        self.ok(cl.select('INBOX'))
        self.ok(cl.append('INBOX', '(\\Flagged)', None, msg('echo from server', 'E')), 'APPEND')
        uids = {e['subject']: u for u, e in self._subjects(cl).items()}
        self.ok(cl.uid('STORE', str(uids['bravo']), '+FLAGS', '(\\Answered \\Flagged)'))
        self.ok(cl.uid('STORE', str(uids['charlie']), '+FLAGS', '(\\Deleted)'))
        self.ok(cl.expunge(), 'EXPUNGE')
        cl.logout()
        self.sync(rc)
        loc = self.local()
        self.assertEqual(set(loc), {'alpha', 'bravo', 'delta from maildir', 'echo from server'})
        self.assertEqual(loc['alpha'][0], 'S')
        self.assertEqual(loc['bravo'][0], 'FR')          # Maildir: F flagged, R replied
        self.assertEqual(loc['echo from server'][0], 'F')

        # 4. a sync with nothing to do changes nothing, on either side
        folders = ('INBOX', 'Archive', 'Projects', 'Sent')
        before_local = self.snapshot()
        before_server = self.server_state(addr, folders)
        self.sync(rc)
        self.assertEqual(self.snapshot(), before_local)
        self.assertEqual(self.server_state(addr, folders), before_server)

    def _subjects(self, c):
        got = self.uid_fetch(c, '1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
        return {u: {'subject': email.message_from_bytes(e['literal'])['Subject']}
                for u, e in got.items()}


# ======================================================================================
def _node_ready():
    """None when node and imapflow can run, else why not. Runs `npm ci` (or `npm install`
    when there is no lock file) once, when node_modules is missing."""
    if not NODE:
        return 'node is not installed (scripts/deps.sh --test installs nodejs)'
    if all(os.path.isdir(os.path.join(NODE_DIR, 'node_modules', pkg))
           for pkg in ('imapflow', 'nodemailer')):
        return None
    if not NPM:
        return 'npm is not installed (scripts/deps.sh --test installs it)'
    lock = os.path.exists(os.path.join(NODE_DIR, 'package-lock.json'))
    r = subprocess.run([NPM, 'ci' if lock else 'install', '--no-audit', '--no-fund',
                        '--loglevel=error'], cwd=NODE_DIR, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise AssertionError('npm %s in %s failed (%d):\n%s%s'
                             % ('ci' if lock else 'install', NODE_DIR, r.returncode,
                                r.stdout[-3000:], r.stderr[-3000:]))
    return None


class ImapflowTest(ClientTest):
    """imapflow (Node.js): IDLE push, CONDSTORE and QRESYNC across two sessions."""

    @classmethod
    def setUpClass(cls):
        cls.why_not = _node_ready()

    def setUp(self):
        super().setUp()
        if self.why_not:
            self.skipTest(self.why_not)

    def node(self, scenario, addr):
        env = dict(os.environ, POLARIS_CLI=json.dumps(self.cli_argv()))
        r = subprocess.run([NODE, os.path.join(NODE_DIR, 'imapflow_check.js'), scenario,
                            str(P.ports['imap']), addr, PASSWORD],
                           cwd=NODE_DIR, capture_output=True, text=True, timeout=40, env=env)
        out = r.stdout + r.stderr
        if r.returncode != 0:
            self.fail('imapflow %s exited %d:\n%s' % (scenario, r.returncode, out[-4000:]))
        m = re.search(r'^RESULT (.*)$', r.stdout, re.M)
        self.assertTrue(m, out)
        return json.loads(m.group(1))

    def test_idle_push_from_cli_delivery(self):
        addr = self.new_user(msg('already there'))
        res = self.node('idle-cli', addr)
        self.assertEqual((res['before'], res['after']), (1, 2))
        print('\n  IDLE push latency (CLI append -> imapflow exists): %.1f ms'
              % res['latency_ms'], end=' ')
        self.assertLess(res['latency_ms'], 3000)

    def test_idle_push_from_imap_append(self):
        addr = self.new_user(msg('already there'))
        res = self.node('idle-imap', addr)
        self.assertEqual((res['before'], res['after']), (1, 2))
        print('\n  IDLE push latency (imapflow APPEND -> imapflow exists): %.1f ms'
              % res['latency_ms'], end=' ')
        self.assertLess(res['latency_ms'], 3000)

    def test_condstore_changedsince(self):
        addr = self.new_user(msg('c1'), msg('c2'), msg('c3'))
        res = self.node('condstore', addr)
        self.assertEqual(res['target'], 2)
        self.assertGreater(int(res['modseq_after']), int(res['modseq_before']))

    def test_qresync_vanished(self):
        addr = self.new_user(msg('q1'), msg('q2'), msg('q3'))
        res = self.node('qresync', addr)
        self.assertEqual(res['victim'], 1)
        self.assertGreater(int(res['modseq_after']), int(res['modseq_before']))


if __name__ == '__main__':
    unittest.main(verbosity=2)
