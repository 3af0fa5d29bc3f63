"""vdirsyncer (Debian's package) syncing a local filesystem storage two ways with our
calendar and address book: discover from /caldav/ and /carddav/, first sync both ways,
then an edit on each side (and a deletion) converges after the next sync.

vdirsyncer dials the host in its URL; the tenant's virtual host is resolved to loopback
by a wrapper that runs vdirsyncer's own CLI with socket.getaddrinfo pointed at
127.0.0.1 for that one name.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_dav_vdirsyncer.py
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from dav_util import ACAL, ACARD, ALICE, Dav, setup_users, vcard3, vevent  # noqa: E402

WRAPPER = r'''
import socket, sys
host = sys.argv.pop(1)
real = socket.getaddrinfo
def fake(h, *a, **k):
    return real('127.0.0.1' if h == host else h, *a, **k)
socket.getaddrinfo = fake
from vdirsyncer.cli import main
sys.argv[0] = 'vdirsyncer'
sys.exit(main())
'''

CONFIG = '''[general]
status_path = "{tmp}/status/"

[pair cal]
a = "cal_local"
b = "cal_remote"
collections = ["from b"]
conflict_resolution = "b wins"

[storage cal_local]
type = "filesystem"
path = "{tmp}/cal/"
fileext = ".ics"

[storage cal_remote]
type = "caldav"
url = "{url}/caldav/"
username = "{user}"
password = "{pw}"

[pair card]
a = "card_local"
b = "card_remote"
collections = ["from b"]
conflict_resolution = "b wins"

[storage card_local]
type = "filesystem"
path = "{tmp}/card/"
fileext = ".vcf"

[storage card_remote]
type = "carddav"
url = "{url}/carddav/"
username = "{user}"
password = "{pw}"
'''


class Vdirsyncer(unittest.TestCase):
    def setUp(self):
        self.p = Polaris(extra_config='[auth]\nfail_max = 100000\n').__enter__()
        self.addCleanup(self.p.__exit__, None, None, None)
        setup_users(self.p)
        self.tmp = tempfile.mkdtemp(prefix='polaris-vdir-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.host = self.p.label_host()
        self.conf = os.path.join(self.tmp, 'config')
        with open(self.conf, 'w') as f:
            f.write(CONFIG.format(tmp=self.tmp, url='http://%s:%d' % (self.host, self.p.http_port),
                                  user=ALICE[0], pw=ALICE[1]))
        self.dav = Dav(self.p)

    def vdir(self, *args):
        r = subprocess.run(['/usr/bin/python3', '-c', WRAPPER, self.host, '-c', self.conf] +
                           list(args), input='y\n' * 20, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, 'vdirsyncer %s: %s%s' % (args, r.stdout, r.stderr))
        return r

    def local(self, kind, coll):
        return os.path.join(self.tmp, kind, coll)

    def test_two_way_sync_converges(self):
        self.assertEqual(self.dav.put(ACAL + 'calendar/server-ev.ics', vevent('server-ev'))[0], 201)
        self.assertEqual(self.dav.put(ACARD + 'contacts/server-card.vcf', vcard3('server-card'),
                                      ctype='text/vcard')[0], 201)
        self.vdir('discover')
        self.vdir('sync')
        # the server's items arrived locally, one file each
        cal_dir = self.local('cal', 'calendar')
        card_dir = self.local('card', 'contacts')
        cal_files = glob.glob(os.path.join(cal_dir, '*.ics'))
        self.assertEqual(len(cal_files), 1, os.listdir(self.tmp))
        with open(cal_files[0]) as f:
            self.assertIn('UID:server-ev', f.read())
        self.assertEqual(len(glob.glob(os.path.join(card_dir, '*.vcf'))), 1)
        for name in ('tasks', 'notes'):
            self.assertTrue(os.path.isdir(self.local('cal', name)), name)

        # local side: a new event, a new card, and an edit of the server's event
        with open(os.path.join(cal_dir, 'local-ev.ics'), 'w') as f:
            f.write(vevent('local-ev', summary='From disk'))
        with open(os.path.join(card_dir, 'local-card.vcf'), 'w') as f:
            f.write(vcard3('local-card', fn='Local Person'))
        with open(cal_files[0], 'w') as f:
            f.write(vevent('server-ev', summary='Edited on disk'))
        # server side: an edit of the card, made meanwhile
        st, h, _ = self.dav.req('GET', ACARD + 'contacts/server-card.vcf')
        self.assertEqual(self.dav.put(ACARD + 'contacts/server-card.vcf',
                                      vcard3('server-card', fn='Edited On Server'),
                                      ctype='text/vcard', headers={'If-Match': h['etag']})[0], 204)
        self.vdir('sync')

        st, _, b = self.dav.req('GET', ACAL + 'calendar/server-ev.ics')
        self.assertIn(b'SUMMARY:Edited on disk', b)
        st, _, b = self.dav.propfind(ACAL + 'calendar/', '<d:getetag/>', depth='1')
        self.assertEqual(b.count(b'<D:response>'), 3)  # the collection and two events
        st, _, b = self.dav.propfind(ACARD + 'contacts/', '<d:getetag/>', depth='1')
        self.assertEqual(b.count(b'<D:response>'), 3)
        cards = ''
        for path in glob.glob(os.path.join(card_dir, '*.vcf')):
            with open(path) as f:
                cards += f.read()
        self.assertIn('FN:Edited On Server', cards)

        # a deletion on the server reaches the disk
        self.assertEqual(self.dav.req('DELETE', ACAL + 'calendar/server-ev.ics')[0], 204)
        self.vdir('sync')
        left = []
        for path in glob.glob(os.path.join(cal_dir, '*.ics')):
            with open(path) as f:
                left.append(f.read())
        self.assertEqual(len(left), 1)
        self.assertIn('UID:local-ev', left[0])
        # and a second sync with nothing changed changes nothing
        r = self.vdir('sync')
        self.assertNotIn('Copying', r.stdout + r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
