#!/usr/bin/python3
"""ActiveSync side by side: Polaris and SOGo's ActiveSync module (with Dovecot as its IMAP
store, MariaDB and memcached), on this machine, in the same run, with the same mailbox.

Workloads (issue 9):
  - initial Sync of an Inbox of N messages in windows of 512 (items/s), median of runs;
  - D devices each holding a Ping on an empty Inbox of a second account: the server's RSS
    and the memory per waiting device, then one SMTP delivery to that account and the time
    from the delivery to each Ping's answer (p50/p99);
  - for SOGo, which parks one worker per hanging request, how many concurrent Pings it holds
    before a new request is no longer answered (within 10 s), and its memory then.

Requests are encoded with libwbxml's xml2wbxml (through tests/integration/eas_client.py,
an encoder nobody here wrote); responses are decoded by it too. Pings use asyncio with one
connection per device.

Prints JSON to stdout (bench/run.sh turns it into the results file).
Debian's /usr/bin/python3 as root; needs libwbxml2-utils.
"""
import argparse
import asyncio
import base64
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
from benchlib import PASSWORD, USER, free_port, wait_port  # noqa: E402
from imap_bench import Dovecot, make_corpus  # noqa: E402

# Both servers' answers are decoded by libwbxml (neutral to both), not by our decoder.
eas_client.decode_ours = eas_client.decode

PING_USER = 'pinger@example.com'
PROV = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML'
        '</PolicyType></Policy></Policies></Provision>')
PROV_ACK = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>'
            'MS-EAS-Provisioning-WBXML</PolicyType><PolicyKey>%s</PolicyKey><Status>1</Status>'
            '</Policy></Policies></Provision>')
FOLDERSYNC = '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'
SYNC = ('<Sync xmlns="AirSync:" xmlns:B="AirSyncBase:"><Collections><Collection><SyncKey>%s'
        '</SyncKey><CollectionId>%s</CollectionId>%s</Collection></Collections></Sync>')
SYNC_OPTS = ('<GetChanges>1</GetChanges><WindowSize>512</WindowSize><Options><FilterType>0'
             '</FilterType><B:BodyPreference><B:Type>1</B:Type><B:TruncationSize>500'
             '</B:TruncationSize></B:BodyPreference></Options>')
PING = ('<Ping xmlns="Ping:"><HeartbeatInterval>%d</HeartbeatInterval><Folders><Folder><Id>%s'
        '</Id><Class>Email</Class></Folder></Folders></Ping>')


class Target:
    """Where a server's ActiveSync endpoint is: enough for eas_client.EasClient."""

    def __init__(self, port, host, path):
        self.port, self.host, self.path = port, host, path

    def http(self, timeout=600):
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)

    def label_host(self, domain):
        return self.host


def client(target, user, device_id):
    c = eas_client.EasClient(target, user, PASSWORD, device_id=device_id,
                             device_type='BenchDevice', version='14.1', check=False,
                             host=target.host)
    c.PATH = target.path
    return c


def ns_text(el, path):
    return eas_client.text(el, path)


def setup_device(target, user, device_id):
    """Provision (both phases), FolderSync; returns (client, inbox collection id)."""
    c = client(target, user, device_id)
    st, _, t = c.post('Provision', PROV)
    if st != 200:
        raise RuntimeError('Provision: HTTP %d' % st)
    key = ns_text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
    c.policy_key = key
    st, _, t = c.post('Provision', PROV_ACK % key)
    key = ns_text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
    c.policy_key = key
    st, _, t = c.post('FolderSync', FOLDERSYNC)
    if st != 200:
        raise RuntimeError('FolderSync: HTTP %d' % st)
    for f in eas_client.findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Add'):
        if ns_text(f, 'FolderHierarchy:Type') == '2':
            return c, ns_text(f, 'FolderHierarchy:ServerId')
    raise RuntimeError('no Inbox in FolderSync')


def initial_sync(c, inbox):
    """SyncKey 0, then windows of 512 until MoreAvailable is gone: (items, seconds)."""
    t0 = time.perf_counter()
    st, _, t = c.post('Sync', SYNC % ('0', inbox, ''))
    key = ns_text(t, 'AirSync:Collections/AirSync:Collection/AirSync:SyncKey')
    items = 0
    while True:
        st, _, t = c.post('Sync', SYNC % (key, inbox, SYNC_OPTS))
        if st != 200 or not isinstance(t, eas_client.ET.Element):
            raise RuntimeError('Sync: HTTP %d' % st)
        coll = eas_client.find(t, 'AirSync:Collections/AirSync:Collection')
        if coll is None:
            raise RuntimeError('Sync: no collection in %s' % eas_client.tostring(t)[:300])
        key = ns_text(coll, 'AirSync:SyncKey')
        items += len(eas_client.findall(coll, 'AirSync:Commands/AirSync:Add'))
        if eas_client.find(coll, 'AirSync:MoreAvailable') is None:
            break
    return items, time.perf_counter() - t0


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Pinger:
    """One device's hanging Ping over its own connection (asyncio)."""

    def __init__(self, target, user, device_id, key, inbox, body):
        self.target = target
        auth = base64.b64encode(('%s:%s' % (user, PASSWORD)).encode()).decode()
        q = urllib.parse.urlencode({'Cmd': 'Ping', 'User': user, 'DeviceId': device_id,
                                    'DeviceType': 'BenchDevice'})
        self.head = ('POST %s?%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n'
                     'MS-ASProtocolVersion: 14.1\r\nX-MS-PolicyKey: %s\r\n'
                     'Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n'
                     % (target.path, q, target.host, auth, key, len(body))).encode() + body
        self.answered = None
        self.status = None

    async def run(self, started):
        try:
            r, w = await asyncio.open_connection('127.0.0.1', self.target.port)
            w.write(self.head)
            await w.drain()
            started.append(1)
            line = await r.readline()
            self.answered = time.perf_counter()
            self.status = int(line.split()[1]) if line else 0
            w.close()
        except (OSError, ValueError, IndexError):
            self.status = -1


async def hold_pings(target, devices, deliver, settle_s, limit_probe=False):
    """Starts every Ping, waits settle_s, measures RSS, delivers one message and times the
    answers. Returns a dict of figures."""
    started = []
    tasks = [asyncio.ensure_future(p.run(started)) for p in devices]
    deadline = time.perf_counter() + settle_s + len(devices) / 500.0
    while len(started) < len(devices) and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(settle_s)
    early = sum(1 for p in devices if p.answered)
    out = {'held': len(started) - early, 'answered_early': early}
    out['rss_kb'] = rss_kb(target.pids())
    t0 = time.perf_counter()
    deliver()
    done, _ = await asyncio.wait(tasks, timeout=120)
    lat = sorted((p.answered - t0) * 1000 for p in devices if p.answered and p.answered >= t0)
    out['woken'] = len(lat)
    if lat:
        out['wake_p50_ms'] = lat[len(lat) // 2]
        out['wake_p99_ms'] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    for t in tasks:
        t.cancel()
    return out


def smtp_deliver(port, rcpt):
    def go():
        s = smtplib.SMTP('127.0.0.1', port, timeout=60)
        s.sendmail('sender@example.org', [rcpt],
                   'From: sender@example.org\r\nTo: %s\r\nSubject: wake up\r\n\r\nping\r\n'
                   % rcpt)
        s.quit()
    return go


def make_pingers(target, user, n, heartbeat, prefix):
    """n devices, each provisioned, folder-synced and with its Inbox primed, Ping ready."""
    body = eas_client.encode(PING % (heartbeat, '%s'))  # placeholder replaced below
    pingers = []
    for i in range(n):
        c, inbox = setup_device(target, user, '%s%05d' % (prefix, i))
        st, _, t = c.post('Sync', SYNC % ('0', inbox, ''))
        key = ns_text(t, 'AirSync:Collections/AirSync:Collection/AirSync:SyncKey')
        st, _, t = c.post('Sync', SYNC % (key, inbox, SYNC_OPTS))
        if i == 0:
            body = eas_client.encode(PING % (heartbeat, inbox))
        pingers.append(Pinger(target, user, '%s%05d' % (prefix, i), c.policy_key, inbox, body))
    return pingers


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
                    'log_level = warn\nhttp_threads = 4\n[listen]\nhttp = 127.0.0.1:%d\n'
                    'https =\nimap =\nimaps =\npop3 =\npop3s =\nsmtp = 127.0.0.1:%d\n'
                    'smtp_alt =\nsubmission =\nsubmissions =\n[auth]\nallow_plaintext = yes\n'
                    'fail_max = 1000000\n[eas]\nheartbeat_min = 60\n'
                    % (os.path.join(d, 'data'), self.http_port, self.smtp_port))
        self.cli('domain', 'add', 'example.com')
        for u in (USER, PING_USER):
            self.cli('user', 'add', u, '--type', 'enhanced', '--password', PASSWORD)
        self.cli('mail', 'append', USER, corpus)
        self.proc = subprocess.Popen([binary, '-c', self.cfg, 'serve'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.http_port, lambda: self.proc.poll() is None)
        self.target = Target(self.http_port, 'example--com.localhost',
                             '/Microsoft-Server-ActiveSync')
        self.target.pids = lambda: [self.proc.pid]
        self.sync_user, self.ping_user = USER, PING_USER
        self.deliver = smtp_deliver(self.smtp_port, PING_USER)

    def cli(self, *args):
        subprocess.run([self.binary, '-c', self.cfg] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

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
    """SOGo's ActiveSync over Dovecot. Users are SOGo's SQL users ('bench'); mail for the
    Ping account is appended to Dovecot's Maildir directly (SOGo notices it by polling
    IMAP, every SOGoInternalSyncInterval seconds, as its guide configures push)."""
    name = 'sogo'

    def __init__(self, tmp, corpus, workers):
        from sogo_peer import Sogo
        self.dovecot = Dovecot(tmp, corpus)
        self.sogo = Sogo(tmp, imap_port=self.dovecot.port, workers=workers,
                         extra_users=('pinger',))
        self.target = Target(self.sogo.port, '127.0.0.1', '/SOGo/Microsoft-Server-ActiveSync')
        self.target.pids = self.sogo.pids
        self.sync_user, self.ping_user = 'bench', 'pinger'
        self.deliver = self._deliver

    def _deliver(self):
        new = os.path.join(self.dovecot.tmp, 'mail', 'pinger', 'new')
        os.makedirs(new, exist_ok=True)
        for sub in ('cur', 'tmp'):
            os.makedirs(os.path.join(os.path.dirname(new), sub), exist_ok=True)
        path = os.path.join(new, '%d.wake.bench' % time.time())
        with open(path, 'w') as f:
            f.write('From: sender@example.org\r\nTo: pinger@example.com\r\nSubject: wake up\r\n'
                    '\r\nping\r\n')
        subprocess.run(['chown', '-R', 'nobody:nogroup',
                        os.path.join(self.dovecot.tmp, 'mail', 'pinger')], check=False)

    def version(self):
        out = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'sogo'],
                             capture_output=True, text=True)
        return 'SOGo %s (ActiveSync) over Dovecot' % out.stdout.strip()

    def stop(self):
        self.sogo.stop()
        self.dovecot.stop()


def sogo_ping_limit(target, pingers):
    """Adds held Pings until a fresh request (OPTIONS) is not answered within 10 s."""
    async def probe():
        try:
            r, w = await asyncio.open_connection('127.0.0.1', target.port)
            w.write(('OPTIONS %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n\r\n'
                     % (target.path, target.host, base64.b64encode(
                         ('bench:%s' % PASSWORD).encode()).decode())).encode())
            await w.drain()
            line = await asyncio.wait_for(r.readline(), 10)
            w.close()
            return bool(line)
        except (OSError, asyncio.TimeoutError):
            return False

    async def go():
        started = []
        tasks = []
        held = 0
        for p in pingers:
            tasks.append(asyncio.ensure_future(p.run(started)))
            await asyncio.sleep(0.5)
            held = len(started) - sum(1 for x in pingers if x.answered)
            if not await probe():
                break
        rss = rss_kb(target.pids())
        for t in tasks:
            t.cancel()
        return {'held_before_unresponsive': held, 'rss_kb': rss}
    return asyncio.run(go())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--polaris', required=True)
    ap.add_argument('--messages', type=int, default=10000)
    ap.add_argument('--devices', type=int, default=10000)
    ap.add_argument('--sogo-devices', type=int, default=64)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--sogo-workers', type=int, default=8)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix='eas-bench-')
    os.chmod(tmp, 0o755)
    corpus = os.path.join(tmp, 'corpus')
    make_corpus(corpus, a.messages)
    res = {'messages': a.messages, 'devices': a.devices, 'runs': a.runs, 'versions': {},
           'servers': {}, 'sogo_workers': a.sogo_workers}
    servers = []
    try:
        pol = None
        if a.polaris != 'none':  # 'none': the peer only, for checking its setup
            pol = PolarisEas(a.polaris, tmp, corpus)
            servers.append(pol)
        try:
            sogo = SogoEas(tmp, corpus, a.sogo_workers)
            servers.append(sogo)
        except Exception as e:  # the peer failing to start is reported, not fatal
            res['errors'] = {'sogo': 'did not start: %s' % e}
        for s in servers:
            res['versions'][s.name] = s.version()
            res['servers'][s.name] = {'sync_runs': []}
        for r in range(a.runs):
            for s in (servers if r % 2 == 0 else list(reversed(servers))):
                try:
                    c, inbox = setup_device(s.target, s.sync_user, 'syncdev%d' % r)
                    n, dt = initial_sync(c, inbox)
                    res['servers'][s.name]['sync_runs'].append({'items': n, 'seconds': dt})
                except Exception as e:
                    res.setdefault('errors', {})[s.name + ' sync'] = str(e)
        for s in servers:
            runs = res['servers'][s.name]['sync_runs']
            if runs:
                res['servers'][s.name]['sync_items_per_s'] = statistics.median(
                    x['items'] / x['seconds'] for x in runs)
                res['servers'][s.name]['sync_items'] = runs[0]['items']
        # Pings: Polaris holds every device; SOGo is probed for its limit.
        if pol:
            base = rss_kb(pol.target.pids())
            pingers = make_pingers(pol.target, pol.ping_user, a.devices, 600, 'p')
            out = asyncio.run(hold_pings(pol.target, pingers, pol.deliver, 3))
            out['rss_before_kb'] = base
            if out['held']:
                out['kib_per_device'] = max(0, out['rss_kb'] - base) / out['held']
            res['servers']['polaris']['ping'] = out
        sogo = next((s for s in servers if s.name == 'sogo'), None)
        if sogo:
            try:
                pingers = make_pingers(sogo.target, sogo.ping_user, a.sogo_devices, 600, 's')
                base = rss_kb(sogo.target.pids())
                lim = sogo_ping_limit(sogo.target, pingers)
                lim['rss_before_kb'] = base
                res['servers']['sogo']['ping_limit'] = lim
                few = make_pingers(sogo.target, sogo.ping_user, max(1, a.sogo_workers // 2),
                                   600, 'w')
                res['servers']['sogo']['ping'] = asyncio.run(
                    hold_pings(sogo.target, few, sogo.deliver, 3))
            except Exception as e:
                res.setdefault('errors', {})['sogo ping'] = str(e)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    json.dump(res, sys.stdout, indent=1)


if __name__ == '__main__':
    main()
