#!/usr/bin/python3
"""ActiveSync side by side: Polaris and SOGo's ActiveSync module (with Dovecot as its IMAP
store, MariaDB and memcached, see sogo_peer.py), on this machine, in the same run, with the
same mailbox.

Workloads (issue 9):
  - initial Sync of an Inbox of N messages in windows of 512 (items/s), median of runs
    alternating between the servers;
  - D devices of a second account each holding a Ping on its empty Inbox, started in
    steps: the server's RSS after each step (the memory curve) and per waiting device;
    then one delivery to that account and the time from the delivery to each Ping's
    answer (p50/p99), every answer checked to be Status 2 (changes);
  - SOGo parks one worker process per hanging request: a few devices (fewer than its
    workers) for the delivery-to-answer time, then Pings added one by one until a fresh
    request (OPTIONS) is no longer answered within 10 s: how many it held then, and its
    memory.

Requests are encoded and answers decoded in process by wbxml_lite.py (setting up
thousands of devices through external tools would take longer than the measurements);
libwbxml (eas_client.check_agree) checks the first Sync answer of each server.

Prints JSON to stdout (bench/run.sh turns it into the results file).
Debian's /usr/bin/python3 as root; needs libwbxml2-utils.
"""
import argparse
import asyncio
import base64
import concurrent.futures
import http.client
import json
import os
import resource
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import eas_client  # noqa: E402
import wbxml_lite  # noqa: E402
from benchlib import PASSWORD, USER, free_port, wait_port  # noqa: E402
from imap_bench import Dovecot, make_corpus  # noqa: E402

# check_agree compares libwbxml's decoding with this one.
eas_client.decode_ours = wbxml_lite.decode

PING_USER = 'pinger@example.com'
PROV = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML'
        '</PolicyType></Policy></Policies></Provision>')
PROV_ACK = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>'
            'MS-EAS-Provisioning-WBXML</PolicyType><PolicyKey>%s</PolicyKey><Status>1</Status>'
            '</Policy></Policies></Provision>')
FOLDERSYNC = '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'
SYNC = ('<Sync xmlns="AirSync:" xmlns:B="AirSyncBase:"><Collections><Collection><SyncKey>%s'
        '</SyncKey><CollectionId>%s</CollectionId>%s</Collection></Collections></Sync>')
# FilterType 5 (a month back) with every message dated within the last days: SOGo 5.8
# answers no items at all to FilterType 0 (no filter), and the same request goes to both.
SYNC_OPTS = ('<GetChanges>1</GetChanges><WindowSize>512</WindowSize><Options><FilterType>5'
             '</FilterType><B:BodyPreference><B:Type>1</B:Type><B:TruncationSize>500'
             '</B:TruncationSize></B:BodyPreference></Options>')
PING = ('<Ping xmlns="Ping:"><HeartbeatInterval>%d</HeartbeatInterval><Folders><Folder><Id>%s'
        '</Id><Class>Email</Class></Folder></Folders></Ping>')
HEARTBEAT = 600  # seconds: longer than any measurement, so a quiet Ping never ends by itself


class Target:
    """Where a server's ActiveSync endpoint is, and which processes are the server."""

    def __init__(self, port, host, path, pids):
        self.port, self.host, self.path, self.pids = port, host, path, pids


class Device:
    """One device's requests over its own keep-alive connection, closed by close() (a
    SOGo worker serves one connection at a time: an idle open one would hold it)."""

    def __init__(self, target, user, device_id):
        self.t, self.user, self.device_id = target, user, device_id
        self.policy_key = None
        self.auth = 'Basic ' + base64.b64encode(('%s:%s' % (user, PASSWORD)).encode()).decode()
        self.c = None

    def _conn(self):
        if self.c is None:
            self.c = http.client.HTTPConnection('127.0.0.1', self.t.port, timeout=600)
        return self.c

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None

    def post_raw(self, cmd, xml):
        """(HTTP status, raw answer)."""
        q = urllib.parse.urlencode({'Cmd': cmd, 'User': self.user,
                                    'DeviceId': self.device_id, 'DeviceType': 'BenchDevice'})
        h = {'Host': self.t.host, 'Authorization': self.auth, 'MS-ASProtocolVersion': '14.1',
             'Content-Type': 'application/vnd.ms-sync.wbxml', 'User-Agent': 'PolarisBench/1.0'}
        if self.policy_key:
            h['X-MS-PolicyKey'] = str(self.policy_key)
        body = wbxml_lite.encode(xml)
        for attempt in range(2):
            c = self._conn()
            try:
                c.request('POST', self.t.path + '?' + q, body=body, headers=h)
                r = c.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest):
                self.close()
                if attempt:
                    raise

    def post(self, cmd, xml):
        """(HTTP status, decoded tree or None when the answer is empty)."""
        st, data = self.post_raw(cmd, xml)
        if st != 200:
            raise RuntimeError('%s %s: HTTP %d %r' % (self.device_id, cmd, st, data[:200]))
        return st, (wbxml_lite.decode(data) if data else None)


def txt(el, path):
    return None if el is None else eas_client.text(el, path)


def setup_device(target, user, device_id):
    """Provision (both phases), FolderSync; returns (device, Inbox collection id)."""
    d = Device(target, user, device_id)
    _, t = d.post('Provision', PROV)
    key = txt(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
    if key:
        d.policy_key = key
        _, t = d.post('Provision', PROV_ACK % key)
        d.policy_key = txt(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey') or key
    _, t = d.post('FolderSync', FOLDERSYNC)
    for f in eas_client.findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Add'):
        if txt(f, 'FolderHierarchy:Type') == '2':
            return d, txt(f, 'FolderHierarchy:ServerId')
    raise RuntimeError('%s: no Inbox in FolderSync: %s' % (device_id, eas_client.tostring(t)))


def sync_key0(d, inbox):
    _, t = d.post('Sync', SYNC % ('0', inbox, ''))
    key = txt(t, 'AirSync:Collections/AirSync:Collection/AirSync:SyncKey')
    if not key:
        raise RuntimeError('Sync 0: no SyncKey in %s' % (t is not None and
                                                          eas_client.tostring(t)))
    return key


def initial_sync(d, inbox):
    """SyncKey 0, then windows of 512 until MoreAvailable is gone: (items, seconds). The
    first window is checked against libwbxml afterwards (outside the clock)."""
    t0 = time.perf_counter()
    key = sync_key0(d, inbox)
    items, first = 0, None
    while True:
        st, data = d.post_raw('Sync', SYNC % (key, inbox, SYNC_OPTS))
        if st != 200 or not data:
            raise RuntimeError('Sync window: HTTP %d, %d bytes' % (st, len(data)))
        first = first or data
        coll = eas_client.find(wbxml_lite.decode(data), 'AirSync:Collections/AirSync:Collection')
        if coll is None or txt(coll, 'AirSync:Status') != '1':
            raise RuntimeError('Sync window: %s' % eas_client.tostring(wbxml_lite.decode(data))[:300])
        key = txt(coll, 'AirSync:SyncKey')
        items += len(eas_client.findall(coll, 'AirSync:Commands/AirSync:Add'))
        if eas_client.find(coll, 'AirSync:MoreAvailable') is None:
            break
    dt = time.perf_counter() - t0
    check_with_libwbxml(first)
    return items, dt


def check_with_libwbxml(data):
    """Our decoding of an answer against libwbxml's. libwbxml's output goes through an XML
    parser, which turns CR LF into LF: so does this comparison."""
    ours = wbxml_lite.decode(data)
    for el in ours.iter():
        if el.text and el.get('opaque') != 'base64':
            el.text = el.text.replace('\r\n', '\n')
    diff = eas_client._same(eas_client._norm(ours), eas_client._norm(eas_client.decode(data)))
    if diff:
        raise RuntimeError('our WBXML decoding differs from libwbxml: %s' % diff[:300])


def mem_kb(pids):
    """(RSS, PSS) of the processes in KiB. PSS counts a page shared by several processes
    once in all (SOGo's workers share most of theirs): the fair sum for a multi-process
    server; for a single process it is its RSS less its share of the shared libraries."""
    rss = pss = 0
    for pid in pids:
        try:
            with open('/proc/%d/smaps_rollup' % pid) as f:
                for line in f:
                    if line.startswith('Rss:'):
                        rss += int(line.split()[1])
                    elif line.startswith('Pss:'):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def mem_point(target, pings):
    rss, pss = mem_kb(target.pids())
    return {'pings': pings, 'rss_kb': rss, 'pss_kb': pss}


class Pinger:
    """One device's hanging Ping over its own connection (asyncio)."""

    def __init__(self, target, user, device_id, key, inbox):
        self.target = target
        auth = base64.b64encode(('%s:%s' % (user, PASSWORD)).encode()).decode()
        q = urllib.parse.urlencode({'Cmd': 'Ping', 'User': user, 'DeviceId': device_id,
                                    'DeviceType': 'BenchDevice'})
        body = wbxml_lite.encode(PING % (HEARTBEAT, inbox))
        self.head = ('POST %s?%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n'
                     'MS-ASProtocolVersion: 14.1\r\n%sContent-Type: application/vnd.ms-sync'
                     '.wbxml\r\nContent-Length: %d\r\n\r\n'
                     % (target.path, q, target.host, auth,
                        'X-MS-PolicyKey: %s\r\n' % key if key else '',
                        len(body))).encode() + body
        self.answered = None
        self.status = None
        self.ping_status = None
        self.writer = None

    async def _body(self, r):
        length, chunked = 0, False
        while True:
            h = await r.readline()
            if h in (b'\r\n', b'\n', b''):
                break
            k, _, v = h.decode('latin-1').partition(':')
            k = k.strip().lower()
            if k == 'content-length':
                length = int(v)
            elif k == 'transfer-encoding' and 'chunked' in v.lower():
                chunked = True
        if not chunked:
            return await r.readexactly(length) if length else b''
        out = b''
        while True:
            n = int((await r.readline()).split(b';')[0], 16)
            if n == 0:
                await r.readline()
                return out
            out += await r.readexactly(n)
            await r.readline()

    async def run(self, started):
        try:
            r, w = await asyncio.open_connection('127.0.0.1', self.target.port)
            self.writer = w
            w.write(self.head)
            await w.drain()
            started.append(1)
            line = await r.readline()
            self.answered = time.perf_counter()
            self.status = int(line.split()[1]) if line else 0
            body = await self._body(r)
            if body:
                self.ping_status = txt(wbxml_lite.decode(body), 'Ping:Status')
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            self.status = self.status or -1
        finally:
            if self.writer:
                self.writer.close()


async def settle(target, max_s=30):
    """Waits until the server's memory stops moving (the Pings it was sent are parked)."""
    prev, still = mem_kb(target.pids())[0], 0
    t_end = time.perf_counter() + max_s
    await asyncio.sleep(1)
    while time.perf_counter() < t_end and still < 2:
        await asyncio.sleep(0.5)
        cur = mem_kb(target.pids())[0]
        still = still + 1 if abs(cur - prev) <= max(256, cur // 200) else 0
        prev = cur


async def start_pings(pingers, tasks, started, upto):
    for p in pingers[len(tasks):upto]:
        tasks.append(asyncio.ensure_future(p.run(started)))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(0)        # let the connections open as we go
    deadline = time.perf_counter() + 30 + upto / 200
    while len(started) < upto and time.perf_counter() < deadline:
        if sum(1 for t in tasks if t.done()) == len(tasks):
            break
        await asyncio.sleep(0.1)


async def hold_pings(target, pingers, deliver, steps, wait_s):
    """Starts the Pings in steps (RSS after each: the memory curve), then delivers one
    message and times every answer from the start of the delivery."""
    started, tasks = [], []
    curve = [mem_point(target, 0)]
    for upto in steps:
        await start_pings(pingers, tasks, started, upto)
        await settle(target)
        early = sum(1 for p in pingers if p.answered)
        curve.append(mem_point(target, len(started) - early))
        print('  %d Pings held, RSS %d KiB, PSS %d KiB' % (
            curve[-1]['pings'], curve[-1]['rss_kb'], curve[-1]['pss_kb']), file=sys.stderr)
    early = [p for p in pingers if p.answered]
    out = {'rss_before_kb': curve[0]['rss_kb'], 'pss_before_kb': curve[0]['pss_kb'],
           'held': len(started) - len(early), 'answered_early': len(early),
           'rss_kb': curve[-1]['rss_kb'], 'pss_kb': curve[-1]['pss_kb'], 'curve': curve}
    if early:
        out['early_statuses'] = sorted({'%s/%s' % (p.status, p.ping_status) for p in early})
    if out['held']:
        out['kib_per_device'] = max(0, out['pss_kb'] - out['pss_before_kb']) / out['held']
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    # The delivery runs in a thread: the event loop keeps reading answers meanwhile.
    await loop.run_in_executor(None, deliver)
    out['delivery_ms'] = (time.perf_counter() - t0) * 1000
    waiting = [t for p, t in zip(pingers, tasks) if p not in early]
    if waiting:
        await asyncio.wait(waiting, timeout=wait_s)
    woke = [p for p in pingers if p not in early and p.answered]
    lat = sorted((p.answered - t0) * 1000 for p in woke)
    out['woken'] = len(lat)
    out['woken_status2'] = sum(1 for p in woke if p.status == 200 and p.ping_status == '2')
    if lat:
        out['wake_p50_ms'] = lat[len(lat) // 2]
        out['wake_p99_ms'] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return out


def smtp_deliver(port, rcpt):
    def go():
        s = smtplib.SMTP('127.0.0.1', port, timeout=60)
        s.sendmail('sender@example.org', [rcpt],
                   'From: sender@example.org\r\nTo: %s\r\nSubject: wake up\r\nDate: %s\r\n'
                   '\r\nping\r\n'
                   % (rcpt, time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())))
        s.quit()
    return go


def make_pingers(target, user, n, prefix, threads=6):
    """n devices, each provisioned, folder-synced and with its Inbox synced once (as a
    phone does before it starts to Ping), from a few threads."""
    def one(i):
        dev = '%s%05d' % (prefix, i)
        d, inbox = setup_device(target, user, dev)
        key = sync_key0(d, inbox)
        d.post('Sync', SYNC % (key, inbox, SYNC_OPTS))
        d.close()
        return Pinger(target, user, dev, d.policy_key, inbox)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        out = list(ex.map(one, range(n)))
    print('  %d devices set up in %.1f s' % (n, time.perf_counter() - t0), file=sys.stderr)
    return out


def ping_steps(n, points):
    """Device counts at which the memory curve is sampled: n/points, 2n/points, ..., n."""
    return sorted({max(1, round(n * k / points)) for k in range(1, points + 1)})


class PolarisEas:
    name = 'polaris'

    def __init__(self, binary, tmp, corpus):
        self.binary = binary
        d = os.path.join(tmp, 'polaris')
        os.makedirs(d)
        self.http_port, self.smtp_port = free_port(), free_port()
        self.cfg = os.path.join(d, 'polaris.ini')
        with open(self.cfg, 'w') as f:
            f.write('[server]\nhostname = localhost\nweb_base = localhost\ndata_dir = %s\n'
                    'log_level = warn\n[listen]\nhttp = 127.0.0.1:%d\n'
                    'https =\nimap =\nimaps =\npop3 =\npop3s =\nsmtp = 127.0.0.1:%d\n'
                    'smtp_alt =\nsubmission =\nsubmissions =\n[auth]\nallow_plaintext = yes\n'
                    'fail_max = 1000000\n'
                    % (os.path.join(d, 'data'), self.http_port, self.smtp_port))
        self.cli('domain', 'add', 'example.com')
        for u in (USER, PING_USER):
            self.cli('user', 'add', u, '--type', 'enhanced', '--password', PASSWORD)
        self.cli('mail', 'append', USER, corpus)
        self.proc = subprocess.Popen([binary, '-c', self.cfg, 'serve'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.http_port, lambda: self.proc.poll() is None)
        # Polaris routes by virtual host: the domain's label on web_base.
        self.target = Target(self.http_port, 'example--com.localhost',
                             '/Microsoft-Server-ActiveSync', lambda: [self.proc.pid])
        self.sync_user, self.ping_user = USER, PING_USER
        self.deliver = smtp_deliver(self.smtp_port, PING_USER)

    def cli(self, *args):
        subprocess.run([self.binary, '-c', self.cfg] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

    def nofile(self):
        return nofile_of(self.proc.pid)

    def version(self):
        return subprocess.run([self.binary, '--version'], capture_output=True,
                              text=True).stdout.strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class SogoEas:
    """SOGo's ActiveSync over Dovecot. Users are SOGo's SQL users ('bench', 'pinger'); the
    wake-up mail for the Ping account is written into Dovecot's Maildir directly (SOGo
    notices it by polling IMAP every SOGoInternalSyncInterval seconds, as its guide
    configures push), which spares SOGo the cost of a delivery Polaris pays."""
    name = 'sogo'

    def __init__(self, tmp, corpus, workers):
        from sogo_peer import Sogo
        self.dovecot = Dovecot(tmp, corpus)
        self.sogo = Sogo(tmp, imap_port=self.dovecot.port, workers=workers,
                         extra_users=('pinger', 'holder'))
        self.target = Target(self.sogo.port, '127.0.0.1', '/SOGo/Microsoft-Server-ActiveSync',
                             self.sogo.pids)
        self.sync_user, self.ping_user = 'bench', 'pinger'
        # The limit is probed with a third account, whose Inbox gets no mail: SOGo answers
        # at once (Status 2) the Pings of new devices of the account that got the wake-up.
        self.hold_user = 'holder'
        self.deliver = self._deliver

    def _deliver(self):
        box = os.path.join(self.dovecot.tmp, 'mail', 'pinger')
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(box, sub), exist_ok=True)
        tmp = os.path.join(box, 'tmp', '%d.wake.bench' % time.time())
        with open(tmp, 'w') as f:
            f.write('From: sender@example.org\r\nTo: pinger@example.com\r\nSubject: wake up\r\n'
                    'Date: %s\r\n\r\nping\r\n'
                    % time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime()))
        shutil.chown(tmp, 'nobody', 'nogroup')
        os.rename(tmp, os.path.join(box, 'new', os.path.basename(tmp)))

    def nofile(self):
        return nofile_of(self.sogo.sogod.pid)

    def version(self):
        out = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'sogo'],
                             capture_output=True, text=True)
        return 'SOGo %s (ActiveSync) over %s' % (out.stdout.strip(), self.dovecot.version())

    def stop(self):
        self.sogo.stop()
        self.dovecot.stop()


def nofile_of(pid):
    try:
        with open('/proc/%d/limits' % pid) as f:
            for line in f:
                if line.startswith('Max open files'):
                    return int(line.split()[3])
    except (OSError, ValueError):
        pass
    return 0


def sogo_ping_limit(target, pingers):
    """Adds held Pings one by one until a fresh request (OPTIONS) is not answered within
    10 s; the RSS after each is the memory curve."""
    auth = base64.b64encode(('bench:%s' % PASSWORD).encode()).decode()

    async def probe():
        w = None
        try:
            r, w = await asyncio.open_connection('127.0.0.1', target.port)
            w.write(('OPTIONS %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n'
                     'Content-Length: 0\r\n\r\n' % (target.path, target.host, auth)).encode())
            await w.drain()
            line = await asyncio.wait_for(r.readline(), 10)
            return bool(line)
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            if w:
                w.close()

    async def go():
        started, tasks, curve = [], [], []
        answered = True
        for p in pingers:
            tasks.append(asyncio.ensure_future(p.run(started)))
            await asyncio.sleep(0.5)
            held = len(started) - sum(1 for x in pingers if x.answered)
            answered = await probe()
            curve.append(mem_point(target, held))
            if p.answered:
                curve[-1]['answered_at_once'] = '%s/%s' % (p.status, p.ping_status)
            if not answered:
                break
        out = {'held_before_unresponsive': curve[-1]['pings'] if not answered else None,
               'held_max_tried': curve[-1]['pings'], 'rss_kb': curve[-1]['rss_kb'],
               'pss_kb': curve[-1]['pss_kb'],
               'curve': curve}
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return out
    return asyncio.run(go())


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < need:
        try:  # root may raise the hard limit; the servers started after inherit it
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return need
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--polaris', required=True)
    ap.add_argument('--messages', type=int, default=10000)
    ap.add_argument('--devices', type=int, default=10000)
    ap.add_argument('--curve-points', type=int, default=5)
    ap.add_argument('--sogo-devices', type=int, default=64)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--sogo-workers', type=int, default=8)
    ap.add_argument('--peer', choices=('sogo', 'none'), default='sogo',
                    help="'none': Polaris alone, for checking it at scale")
    a = ap.parse_args()
    limit = raise_nofile(2 * a.devices + 2000)
    tmp = tempfile.mkdtemp(prefix='eas-bench-')
    os.chmod(tmp, 0o755)
    corpus = os.path.join(tmp, 'corpus')
    # Dated within the last week (a minute apart, the newest an hour ago): inside the
    # month of FilterType 5.
    make_corpus(corpus, a.messages, t0=int(time.time()) - 3600 - a.messages * 60)
    res = {'messages': a.messages, 'devices': a.devices, 'runs': a.runs, 'versions': {},
           'servers': {}, 'sogo_workers': a.sogo_workers, 'nofile': {'client': limit}}
    servers = []
    errors = {}
    try:
        pol = None
        if a.polaris != 'none':  # 'none': the peer only, for checking its setup
            pol = PolarisEas(a.polaris, tmp, corpus)
            servers.append(pol)
        try:
            if a.peer == 'sogo':
                servers.append(SogoEas(tmp, corpus, a.sogo_workers))
        except Exception as e:  # the peer failing to start is reported, not fatal
            errors['sogo'] = 'did not start: %s' % e
        for s in servers:
            res['versions'][s.name] = s.version()
            res['servers'][s.name] = {'sync_runs': []}
            res['nofile'][s.name] = s.nofile()
        for r in range(a.runs):
            for s in (servers if r % 2 == 0 else list(reversed(servers))):
                try:
                    d, inbox = setup_device(s.target, s.sync_user, 'syncdev%d' % r)
                    n, dt = initial_sync(d, inbox)
                    d.close()
                    res['servers'][s.name]['sync_runs'].append({'items': n, 'seconds': dt})
                    print('%s: initial Sync of %d items in %.2f s' % (s.name, n, dt),
                          file=sys.stderr)
                except Exception as e:
                    errors[s.name + ' sync'] = str(e)[:500]
        for s in servers:
            runs = res['servers'][s.name]['sync_runs']
            if runs:
                res['servers'][s.name]['sync_items_per_s'] = statistics.median(
                    x['items'] / x['seconds'] for x in runs)
                res['servers'][s.name]['sync_items'] = min(x['items'] for x in runs)
        if pol:
            if res['nofile']['polaris'] < a.devices + 100:
                errors['polaris nofile'] = ('the server may open %d files, fewer than %d '
                                            'devices need' % (res['nofile']['polaris'],
                                                              a.devices))
            try:
                print('polaris: %d Pings' % a.devices, file=sys.stderr)
                pingers = make_pingers(pol.target, pol.ping_user, a.devices, 'p')
                res['servers']['polaris']['ping'] = asyncio.run(hold_pings(
                    pol.target, pingers, pol.deliver, ping_steps(a.devices, a.curve_points),
                    120))
            except Exception as e:
                errors['polaris ping'] = str(e)[:500]
        sogo = next((s for s in servers if s.name == 'sogo'), None)
        if sogo:
            try:
                # Fewer Pings than workers first: once the workers are all held, SOGo
                # answers nothing else until a Ping ends.
                few = max(1, a.sogo_workers // 2)
                print('sogo: %d Pings' % few, file=sys.stderr)
                pingers = make_pingers(sogo.target, sogo.ping_user, few, 'w', threads=1)
                res['servers']['sogo']['ping'] = asyncio.run(hold_pings(
                    sogo.target, pingers, sogo.deliver, [few], 120))
                print('sogo: Pings until it stops answering', file=sys.stderr)
                pingers = make_pingers(sogo.target, sogo.hold_user, a.sogo_devices, 's',
                                       threads=1)
                res['servers']['sogo']['ping_limit'] = sogo_ping_limit(sogo.target, pingers)
            except Exception as e:
                errors['sogo ping'] = str(e)[:500]
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if errors:
        res['errors'] = errors
    json.dump(res, sys.stdout, indent=1)


if __name__ == '__main__':
    main()
