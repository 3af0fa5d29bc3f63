#!/usr/bin/python3
"""CalDAV/CardDAV side by side: Polaris, Radicale, Xandikos, Cyrus (see cyrus_peer.py) and
SOGo (with its MariaDB and memcached, see sogo_peer.py) on this machine, in the same run, with the same data.

Each server gets a fresh calendar and address book (MKCALENDAR / extended MKCOL under the
home its own discovery reports), then the workload of issue 9:
  - PUT of N events (10% recurring: weekly, open-ended), from 4 keep-alive connections;
  - calendar-query for one week and for one year (time-range, VEVENT);
  - calendar-multiget of 500 events;
  - sync-collection after one change (the token taken before the change);
  - addressbook-multiget of 1,000 out of M contacts.
Query figures are the median of several runs; the runs alternate between the servers.
Every answer is checked for the number of results it must have: a wrong time-range answer
or sync-collection answer is reported as wrong next to its time, other wrong answers stop
the run.

Prints JSON to stdout (bench/run.sh turns it into the results file).
Standard library only; run with Debian's /usr/bin/python3 as root.
"""
import argparse
import base64
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

from benchlib import PASSWORD, USER, free_port, wait_port

DAV = 'DAV:'
CAL = 'urn:ietf:params:xml:ns:caldav'
CARD = 'urn:ietf:params:xml:ns:carddav'
T0 = 1767225600  # 2026-01-01T00:00:00Z: events spread over two years from here


def ical_time(t):
    return time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(t))


def event(i):
    start = T0 + i * 6311  # ~6,300 s apart: 10,000 events over two years
    rrule = 'RRULE:FREQ=WEEKLY;COUNT=52\r\n' if i % 10 == 0 else ''
    return ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Polaris bench//EN\r\n'
            'BEGIN:VEVENT\r\nUID:bench-%d@example.com\r\nDTSTAMP:20260101T000000Z\r\n'
            'DTSTART:%s\r\nDTEND:%s\r\n%sSUMMARY:Bench event %d\r\n'
            'DESCRIPTION:A plausible description of event number %d for the benchmark\r\n'
            'END:VEVENT\r\nEND:VCALENDAR\r\n'
            % (i, ical_time(start), ical_time(start + 3600), rrule, i, i))


def vcard(i):
    return ('BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bench-card-%d\r\nFN:Person %d Bench\r\n'
            'N:Bench;Person %d;;;\r\nEMAIL;TYPE=INTERNET:person%d@example.org\r\n'
            'TEL;TYPE=CELL:+1555%07d\r\nORG:Bench Org %d\r\nEND:VCARD\r\n'
            % (i, i, i, i, i, i % 100))


class Conn:
    """One keep-alive HTTP connection with Basic auth."""

    def __init__(self, port, user, password):
        self.port = port
        self.auth = 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
        self.c = http.client.HTTPConnection('127.0.0.1', port, timeout=600)

    def req(self, method, path, body=None, headers=None):
        h = {'Authorization': self.auth}
        h.update(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = body.encode()
        for attempt in range(2):
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.c.close()
                self.c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=600)
                if attempt:
                    raise


def propfind_href(conn, path, prop_ns, prop):
    body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:x="%s"><d:prop><x:%s/>'
            '</d:prop></d:propfind>' % (prop_ns, prop))
    st, _, data = conn.req('PROPFIND', path, body, {'Depth': '0',
                                                    'Content-Type': 'application/xml'})
    if st != 207:
        raise RuntimeError('PROPFIND %s %s: %d' % (path, prop, st))
    root = ET.fromstring(data)
    for el in root.iter('{%s}%s' % (prop_ns, prop)):
        href = el.find('{DAV:}href')
        if href is not None and href.text:
            return urllib.parse.urlparse(href.text.strip()).path
    raise RuntimeError('no %s at %s' % (prop, path))


def discover(conn, start):
    """The calendar and address-book homes, the way a client finds them from one URL."""
    principal = propfind_href(conn, start, DAV, 'current-user-principal')
    return (propfind_href(conn, principal, CAL, 'calendar-home-set'),
            propfind_href(conn, principal, CARD, 'addressbook-home-set'))


class Server:
    name = ''
    proc = None
    user = USER

    def conn(self):
        return Conn(self.port, self.user, PASSWORD)

    def alive(self):
        return self.proc.poll() is None

    def rss_kb(self):
        try:
            with open('/proc/%d/status' % self.proc.pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Polaris(Server):
    name = 'polaris'

    def __init__(self, binary, tmp):
        self.binary = binary
        self.port = free_port()
        d = os.path.join(tmp, 'polaris')
        os.makedirs(d)
        self.cfg = os.path.join(d, 'polaris.ini')
        with open(self.cfg, 'w') as f:
            f.write('[server]\nhostname = localhost\nweb_base = localhost\ndata_dir = %s\n'
                    'log_level = warn\nmax_request = 64M\n[listen]\nhttp = 127.0.0.1:%d\n'
                    'https =\nimap =\nimaps =\npop3 =\npop3s =\nsmtp =\nsmtp_alt =\n'
                    'submission =\nsubmissions =\n[auth]\nallow_plaintext = yes\n'
                    'fail_max = 100000\n' % (os.path.join(d, 'data'), self.port))
        self.cli('domain', 'add', 'example.com')
        self.cli('user', 'add', USER, '--type', 'enhanced', '--password', PASSWORD)
        self.proc = subprocess.Popen([binary, '-c', self.cfg, 'serve'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.alive)
        self.start_path = '/caldav/'

    def cli(self, *args):
        subprocess.run([self.binary, '-c', self.cfg] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

    def conn(self):
        # Polaris routes by virtual host: the domain's label on web_base.
        return HostConn(Conn(self.port, self.user, PASSWORD), 'example--com.localhost')

    def version(self):
        out = subprocess.run([self.binary, '--version'], capture_output=True, text=True)
        return out.stdout.strip() or 'polaris'


class HostConn:
    """A Conn that sends a fixed Host header (Polaris routes by virtual host)."""

    def __init__(self, conn, host):
        self.conn = conn
        self.host = host

    def req(self, method, path, body=None, headers=None):
        h = {'Host': self.host}
        h.update(headers or {})
        return self.conn.req(method, path, body, h)


class Radicale(Server):
    name = 'radicale'

    def __init__(self, tmp):
        self.port = free_port()
        d = os.path.join(tmp, 'radicale')
        os.makedirs(d)
        users = os.path.join(d, 'users')
        with open(users, 'w') as f:
            f.write('%s:%s\n' % (USER, PASSWORD))
        cfg = os.path.join(d, 'config')
        with open(cfg, 'w') as f:
            f.write('[server]\nhosts = 127.0.0.1:%d\nmax_content_length = 100000000\n'
                    '[auth]\ntype = htpasswd\nhtpasswd_filename = %s\n'
                    'htpasswd_encryption = plain\n[storage]\nfilesystem_folder = %s\n'
                    '[logging]\nlevel = warning\n[rights]\ntype = owner_only\n'
                    % (self.port, users, os.path.join(d, 'collections')))
        self.proc = subprocess.Popen(['/usr/bin/python3', '-m', 'radicale', '--config', cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.alive)
        self.start_path = '/'

    def version(self):
        out = subprocess.run(['/usr/bin/python3', '-m', 'radicale', '--version'],
                             capture_output=True, text=True)
        return 'Radicale ' + out.stdout.strip()


class Xandikos(Server):
    name = 'xandikos'

    def __init__(self, tmp):
        self.port = free_port()
        d = os.path.join(tmp, 'xandikos')
        os.makedirs(d)
        # Xandikos has no authentication of its own (it expects a proxy in front); it
        # ignores the Authorization header we send.
        self.proc = subprocess.Popen(['/usr/bin/xandikos', '-d', d, '--defaults', '-l',
                                      '127.0.0.1', '-p', str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.alive)
        self.start_path = '/'

    def version(self):
        out = subprocess.run(['/usr/bin/xandikos', '--version'], capture_output=True, text=True)
        return 'Xandikos ' + (out.stdout or out.stderr).strip()


class CyrusDav(Server):
    name = 'cyrus'

    def __init__(self, tmp):
        from cyrus_peer import Cyrus, CYRUS_USER
        self.cyrus = Cyrus(tmp)
        self.user = CYRUS_USER
        self.port = self.cyrus.port
        self.proc = self.cyrus.proc
        self.start_path = '/dav/'

    def rss_kb(self):
        # One process per connection: the whole instance, as for SOGo and Dovecot.
        return sum_rss(self.cyrus.pids())

    def version(self):
        return self.cyrus.version()

    def stop(self):
        self.cyrus.stop()


def sum_rss(pids):
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


class SogoDav(Server):
    name = 'sogo'
    user = 'bench'

    def __init__(self, tmp):
        from sogo_peer import Sogo, SOGO_USER
        self.sogo = Sogo(tmp)
        self.user = SOGO_USER
        self.port = self.sogo.port
        self.proc = self.sogo.sogod
        self.start_path = '/SOGo/dav/'

    def rss_kb(self):
        return sum_rss(self.sogo.pids())

    def version(self):
        out = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'sogo'], capture_output=True,
                             text=True)
        return 'SOGo ' + out.stdout.strip()

    def stop(self):
        self.sogo.stop()


def mkcalendar(conn, path):
    body = ('<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="%s"><d:set><d:prop>'
            '<d:displayname>bench</d:displayname></d:prop></d:set></c:mkcalendar>' % CAL)
    st, _, data = conn.req('MKCALENDAR', path, body, {'Content-Type': 'application/xml'})
    if st not in (200, 201):
        raise RuntimeError('MKCALENDAR %s: %d %s' % (path, st, data[:200]))


def mkaddressbook(conn, path):
    body = ('<?xml version="1.0"?><d:mkcol xmlns:d="DAV:" xmlns:c="%s"><d:set><d:prop>'
            '<d:resourcetype><d:collection/><c:addressbook/></d:resourcetype>'
            '<d:displayname>bench</d:displayname></d:prop></d:set></d:mkcol>' % CARD)
    st, _, data = conn.req('MKCOL', path, body, {'Content-Type': 'application/xml'})
    if st not in (200, 201):
        raise RuntimeError('MKCOL %s: %d %s' % (path, st, data[:200]))


def put_all(server, coll, items, ctype, threads=4):
    """PUTs every (name, body) from `threads` keep-alive connections; returns seconds."""
    errors = []

    def worker(chunk):
        c = server.conn()
        for name, body in chunk:
            st, _, data = c.req('PUT', coll + name, body,
                                {'Content-Type': ctype, 'If-None-Match': '*'})
            if st not in (201, 204):
                errors.append('%s: %d %s' % (name, st, data[:200]))
                return

    chunks = [items[i::threads] for i in range(threads)]
    t = time.perf_counter()
    ths = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    dt = time.perf_counter() - t
    if errors:
        raise RuntimeError('%s PUT failed: %s' % (server.name, errors[0]))
    return dt


def count_responses(data, with_status_200=True):
    root = ET.fromstring(data)
    n = 0
    for resp in root.findall('{DAV:}response'):
        text = ET.tostring(resp, encoding='unicode')
        if with_status_200 and '200' not in text:
            continue
        n += 1
    return n


def report(conn, path, body, depth='1'):
    t = time.perf_counter()
    st, _, data = conn.req('REPORT', path, body, {'Depth': depth,
                                                  'Content-Type': 'application/xml'})
    dt = time.perf_counter() - t
    if st != 207:
        raise RuntimeError('REPORT %s: %d %s' % (path, st, data[:300]))
    return dt, data


def query_body(start, end):
    return ('<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="%s"><d:prop>'
            '<d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
            '<c:comp-filter name="VEVENT"><c:time-range start="%s" end="%s"/>'
            '</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>'
            % (CAL, ical_time(start), ical_time(end)))


def expected_matches(n, start, end):
    """How many of the n generated events overlap [start, end): the truth the answers are
    checked against."""
    hits = 0
    for i in range(n):
        s = T0 + i * 6311
        occ = 52 if i % 10 == 0 else 1
        for k in range(occ):
            os_ = s + k * 7 * 86400
            if os_ < end and os_ + 3600 > start:
                hits += 1
                break
    return hits


def multiget_body(ns, data_el, hrefs):
    return ('<?xml version="1.0"?><x:%s xmlns:d="DAV:" xmlns:x="%s"><d:prop><d:getetag/>'
            '<x:%s/></d:prop>%s</x:%s>'
            % ('calendar-multiget' if ns == CAL else 'addressbook-multiget', ns, data_el,
               ''.join('<d:href>%s</d:href>' % h for h in hrefs),
               'calendar-multiget' if ns == CAL else 'addressbook-multiget'))


def sync_body(token):
    return ('<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>%s'
            '</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop>'
            '</d:sync-collection>' % token)


def sync_token(conn, path):
    body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop>'
            '</d:propfind>')
    st, _, data = conn.req('PROPFIND', path, body, {'Depth': '0',
                                                    'Content-Type': 'application/xml'})
    el = ET.fromstring(data).find('.//{DAV:}sync-token')
    if st != 207 or el is None or not el.text:
        raise RuntimeError('no sync-token at %s (%d)' % (path, st))
    return el.text.strip()


def create(server):
    """A fresh calendar and address book under the homes the server's discovery gives."""
    conn = server.conn()
    cal_home, card_home = discover(conn, server.start_path)
    st = {'cal': cal_home.rstrip('/') + '/benchcal/',
          'book': card_home.rstrip('/') + '/benchab/', 'put_events_s': 0.0}
    mkcalendar(conn, st['cal'])
    mkaddressbook(conn, st['book'])
    return st


def put_events(server, st, first, end):
    st['put_events_s'] += put_all(server, st['cal'], [('e%d.ics' % i, event(i))
                                                       for i in range(first, end)],
                                  'text/calendar; charset=utf-8')


def put_cards(server, st, contacts):
    st['put_cards_s'] = put_all(server, st['book'], [('c%d.vcf' % i, vcard(i))
                                                     for i in range(contacts)],
                                'text/vcard; charset=utf-8')


YEAR = (T0 + 100 * 86400, T0 + 465 * 86400)


def time_query_year(server, st, loaded):
    """(seconds, None or 'got of expected') of the one-year calendar-query."""
    dt, data = report(server.conn(), st['cal'], query_body(*YEAR))
    got, want = count_responses(data), expected_matches(loaded, *YEAR)
    return dt, (None if got == want else '%d of %d' % (got, want))


def curve_sizes(n, points):
    """Collection sizes at which the scaling curve is measured: n/points, ..., n."""
    return sorted({max(1, round(n * k / points)) for k in range(1, points + 1)})


def one_round(server, st, events, contacts, rnd_round):
    conn = server.conn()
    out = {}
    week = (T0 + 180 * 86400, T0 + 187 * 86400)
    for label, (a, b) in (('query_week_s', week), ('query_year_s', YEAR)):
        dt, data = report(conn, st['cal'], query_body(a, b))
        got = count_responses(data)
        want = expected_matches(events, a, b)
        # A wrong answer is timed all the same but reported as wrong, with its counts
        # (Xandikos 0.2.8 does not expand recurrences in time-range queries).
        out[label] = dt
        out[label + '_wrong'] = None if got == want else '%d of %d' % (got, want)
    rnd = random.Random(rnd_round)
    hrefs = [st['cal'] + 'e%d.ics' % i for i in rnd.sample(range(events), min(500, events))]
    dt, data = report(conn, st['cal'], multiget_body(CAL, 'calendar-data', hrefs))
    if count_responses(data) != len(hrefs):
        raise RuntimeError('%s calendar-multiget: %d results' % (server.name,
                                                                  count_responses(data)))
    out['multiget_500_s'] = dt
    token = sync_token(conn, st['cal'])
    # SOGo's sync tokens are timestamps in seconds: a change in the same second as the token
    # is not reported. Every server gets the same pause (it is not timed).
    time.sleep(1.1)
    name = 'e%d.ics' % ((rnd_round * 13) % events)
    body = event((rnd_round * 13) % events).replace('SUMMARY:Bench', 'SUMMARY:Changed %d'
                                                    % rnd_round)
    s, _, _ = conn.req('PUT', st['cal'] + name, body, {'Content-Type': 'text/calendar'})
    if s not in (201, 204):
        raise RuntimeError('%s PUT change: %d' % (server.name, s))
    dt, data = report(conn, st['cal'], sync_body(token))
    got = count_responses(data)
    out['sync_one_change_s'] = dt
    out['sync_one_change_s_wrong'] = None if got == 1 else '%d changes of 1' % got
    hrefs = [st['book'] + 'c%d.vcf' % i
             for i in rnd.sample(range(contacts), min(1000, contacts))]
    dt, data = report(conn, st['book'], multiget_body(CARD, 'address-data', hrefs))
    if count_responses(data) != len(hrefs):
        raise RuntimeError('%s addressbook-multiget: %d results'
                           % (server.name, count_responses(data)))
    out['ab_multiget_1000_s'] = dt
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--polaris', required=True)
    ap.add_argument('--events', type=int, default=10000)
    ap.add_argument('--contacts', type=int, default=10000)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--curve-points', type=int, default=1,
                    help='collection sizes at which the one-year calendar-query is timed as '
                         'the events are loaded in steps')
    ap.add_argument('--peers', default='radicale,xandikos,cyrus,sogo')
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='dav-bench-')
    servers = []
    result = {'events': a.events, 'contacts': a.contacts, 'runs': a.runs, 'servers': {},
              'versions': {}}
    try:
        if a.polaris != 'none':  # 'none': peers only, for checking the peers' setup
            servers.append(Polaris(a.polaris, tmp))
        for p in a.peers.split(','):
            if p == 'radicale':
                servers.append(Radicale(tmp))
            elif p == 'xandikos':
                servers.append(Xandikos(tmp))
            elif p == 'cyrus':
                servers.append(CyrusDav(tmp))
            elif p == 'sogo':
                servers.append(SogoDav(tmp))
        state = {}
        for s in servers:
            result['versions'][s.name] = s.version()
            state[s.name] = create(s)
        # The events go in in steps; after each, the one-year query is timed (alternating
        # servers, median of the runs): the curve of query time against collection size.
        sizes = curve_sizes(a.events, a.curve_points)
        curve = {'sizes': sizes, 'query_year_s': {s.name: [] for s in servers},
                 'wrong': {s.name: [] for s in servers}}
        prev = 0
        for size in sizes:
            for s in servers:
                print('%s: %d events' % (s.name, size), file=sys.stderr)
                put_events(s, state[s.name], prev, size)
            times = {s.name: [] for s in servers}
            for r in range(a.runs):
                for s in (servers if r % 2 == 0 else list(reversed(servers))):
                    dt, wrong = time_query_year(s, state[s.name], size)
                    times[s.name].append(dt)
                    note = '%d events: %s' % (size, wrong)
                    if wrong and note not in curve['wrong'][s.name]:
                        curve['wrong'][s.name].append(note)
            for s in servers:
                curve['query_year_s'][s.name].append(statistics.median(times[s.name]))
            prev = size
        result['curve'] = curve
        for s in servers:
            print('%s: %d contacts' % (s.name, a.contacts), file=sys.stderr)
            put_cards(s, state[s.name], a.contacts)
            result['servers'][s.name] = {'put_events_s': state[s.name]['put_events_s'],
                                         'put_cards_s': state[s.name]['put_cards_s'],
                                         'rounds': []}
        for r in range(a.runs):
            for s in (servers if r % 2 == 0 else list(reversed(servers))):
                result['servers'][s.name]['rounds'].append(one_round(s, state[s.name],
                                                                     a.events, a.contacts, r))
        for s in servers:
            res = result['servers'][s.name]
            for k in res['rounds'][0]:
                if k.endswith('_wrong'):
                    res[k] = next((x[k] for x in res['rounds'] if x[k]), None)
                else:
                    res[k] = statistics.median(x[k] for x in res['rounds'])
            res['rss_kb'] = s.rss_kb()
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    json.dump(result, sys.stdout, indent=1)


if __name__ == '__main__':
    main()
