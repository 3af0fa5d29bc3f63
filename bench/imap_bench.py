#!/usr/bin/python3
"""IMAP side by side: Polaris and Dovecot on this machine, in the same run, same data.

Loads the same N messages into both (Polaris through `polaris mail append DIR`, Dovecot
as a Maildir it indexes on first SELECT), then times the operations of issue 3 and 9:
SELECT, UID FETCH 1:* (FLAGS), UID FETCH of the newest 500 headers, UID SEARCH SUBJECT,
APPEND, a concurrent mixed command loop, and the memory of idle sessions. Runs alternate
between the two servers; each figure is the median of several runs.

Prints JSON to stdout (bench/run.sh turns it into the results file).
Standard library only; run with Debian's /usr/bin/python3 as root.
"""
import argparse
import imaplib
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

from benchlib import PASSWORD, USER, WORDS, free_port, wait_port

def make_corpus(path, n, seed=1, t0=1700000000):
    """A Maildir of n plausible messages a minute apart from t0; every 97th subject
    carries 'zebra'."""
    rnd = random.Random(seed)
    for sub in ('cur', 'new', 'tmp'):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i in range(n):
        subj = ' '.join(rnd.choice(WORDS) for _ in range(4))
        if i % 97 == 0:
            subj += ' zebra'
        body = '\r\n'.join(' '.join(rnd.choice(WORDS) for _ in range(12)) for _ in range(20))
        msg = ('From: Sender %d <sender%d@example.org>\r\nTo: %s\r\nSubject: %s\r\n'
               'Date: %s\r\nMessage-ID: <%d.bench@example.org>\r\nMIME-Version: 1.0\r\n'
               'Content-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n'
               % (i % 50, i % 50, USER, subj,
                  time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(t0 + i * 60)),
                  i, body))
        flags = 'S' if i % 3 else ''
        name = '%010d.M%dP1.bench:2,%s' % (t0 + i * 60, i, flags)
        with open(os.path.join(path, 'cur', name), 'w') as f:
            f.write(msg)


class Server:
    name = ''

    def login(self):
        c = imaplib.IMAP4('127.0.0.1', self.port, timeout=600)
        c.login(self.user, PASSWORD)
        return c

    def pss_kb(self):
        total = 0
        for pid in self.pids():
            try:
                with open('/proc/%d/smaps_rollup' % pid) as f:
                    for line in f:
                        if line.startswith('Pss:'):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Polaris(Server):
    name = 'polaris'

    def __init__(self, binary, tmp, corpus):
        self.tmp = os.path.join(tmp, 'polaris')
        os.makedirs(self.tmp)
        self.port = free_port()
        self.user = USER
        self.conf = os.path.join(self.tmp, 'polaris.ini')
        with open(self.conf, 'w') as f:
            f.write('[server]\nhostname = localhost\ndata_dir = data\nlog_level = warn\n'
                    '[listen]\nimap = 127.0.0.1:%d\n[auth]\nallow_plaintext = loopback\n'
                    % self.port)
        self.bin = binary
        self.cli('domain', 'add', 'example.com')
        self.cli('user', 'add', USER, '--type', 'enhanced', '--quota', '200G',
                 '--password', PASSWORD)
        self.import_s = 0
        self.add(corpus)
        self.proc = subprocess.Popen([binary, '-c', self.conf, 'serve'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, lambda: self.proc.poll() is None)

    def add(self, corpus):
        """More messages into the INBOX (also while the server runs)."""
        t0 = time.monotonic()
        self.cli('mail', 'append', USER, corpus)
        self.import_s += time.monotonic() - t0

    def cli(self, *args):
        subprocess.run([self.bin, '-c', self.conf] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

    def pids(self):
        return [self.proc.pid]

    def version(self):
        return subprocess.run([self.bin, '--version'], capture_output=True,
                              text=True).stdout.strip()


class Dovecot(Server):
    name = 'dovecot'

    def __init__(self, tmp, corpus):
        self.tmp = os.path.join(tmp, 'dovecot')
        self.port = free_port()
        self.user = 'bench'
        self.mail = mail = os.path.join(self.tmp, 'mail', 'bench')
        os.makedirs(os.path.dirname(mail))
        t0 = time.monotonic()
        shutil.copytree(corpus, mail)
        self.import_s = time.monotonic() - t0
        for d in ('run', 'home/bench'):
            os.makedirs(os.path.join(self.tmp, d))
        subprocess.run(['chown', '-R', 'nobody:nogroup', self.tmp], check=True)
        self.conf = os.path.join(self.tmp, 'dovecot.conf')
        with open(self.conf, 'w') as f:
            f.write('''protocols = imap
listen = 127.0.0.1
base_dir = {t}/run
state_dir = {t}/run
log_path = {t}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{t}/mail/%n
first_valid_uid = 1
passdb {{
  driver = static
  args = password={pw}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={t}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_limit = 100
  client_limit = 2000
}}
service imap {{
  process_limit = 2000
}}
default_client_limit = 4000
protocol imap {{
  mail_max_userip_connections = 5000
}}
default_vsz_limit = 1G
'''.format(t=self.tmp, pw=PASSWORD, port=self.port))
        self.proc = subprocess.Popen(['/usr/sbin/dovecot', '-F', '-c', self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, lambda: self.proc.poll() is None)

    def add(self, corpus):
        """More messages into the Maildir (Dovecot indexes them at the next SELECT)."""
        t0 = time.monotonic()
        cur = os.path.join(self.mail, 'cur')
        for name in os.listdir(os.path.join(corpus, 'cur')):
            dst = os.path.join(cur, name)
            shutil.copyfile(os.path.join(corpus, 'cur', name), dst)
            shutil.chown(dst, 'nobody', 'nogroup')
        self.import_s += time.monotonic() - t0

    def pids(self):
        """Every process of this instance (master, logins, one imap per session)."""
        out = subprocess.run(['ps', '-e', '-o', 'pid=,ppid='], capture_output=True,
                             text=True).stdout.split('\n')
        tree = {}
        for line in out:
            if line.strip():
                pid, ppid = map(int, line.split())
                tree.setdefault(ppid, []).append(pid)
        pids, todo = [], [self.proc.pid]
        while todo:
            p = todo.pop()
            pids.append(p)
            todo.extend(tree.get(p, []))
        return pids

    def version(self):
        return 'dovecot ' + subprocess.run(['/usr/sbin/dovecot', '--version'],
                                           capture_output=True, text=True).stdout.strip()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def op_select(srv):
    c = srv.login()
    t = timed(lambda: c.select('INBOX'))
    c.logout()
    return t


def op_fetch_flags(srv):
    c = srv.login()
    c.select('INBOX')
    t = timed(lambda: c.uid('FETCH', '1:*', '(FLAGS)'))
    c.logout()
    return t


def op_fetch_headers(srv):
    c = srv.login()
    typ, data = c.select('INBOX')
    n = int(data[0])
    typ, data = c.fetch('%d' % n, '(UID)')
    last = int(data[0].split()[2].rstrip(b')'))
    t = timed(lambda: c.uid('FETCH', '%d:%d' % (max(1, last - 499), last),
                            '(UID BODY.PEEK[HEADER])'))
    c.logout()
    return t


def op_search(srv):
    c = srv.login()
    c.select('INBOX')
    t = timed(lambda: c.uid('SEARCH', None, 'SUBJECT', 'zebra'))
    c.logout()
    return t


def op_append(srv, n):
    c = srv.login()
    folder = 'Bench%d' % random.randrange(1 << 30)
    c.create(folder)
    msg = ('From: a@example.org\r\nTo: %s\r\nSubject: appended\r\n\r\n' % USER
           + 'x' * 2000 + '\r\n').encode()
    t = timed(lambda: [c.append(folder, None, None, msg) for _ in range(n)])
    c.logout()
    return t


def op_mixed(srv, sessions, seconds):
    """Commands per second over `sessions` concurrent clients doing SELECT/FETCH/NOOP."""
    count = [0] * sessions
    stop = time.monotonic() + seconds
    errors = []

    def worker(i):
        try:
            c = srv.login()
            rnd = random.Random(i)
            while time.monotonic() < stop:
                c.select('INBOX')
                n = rnd.randint(1, 500)
                c.uid('FETCH', '%d:%d' % (n, n + 20), '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
                c.noop()
                count[i] += 3
            c.logout()
        except Exception as e:        # noqa: BLE001 - reported in the output
            errors.append(str(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / seconds, errors


def idle_memory(srv, sessions):
    """Server PSS per idle, logged-in session with a mailbox selected (KiB)."""
    base = srv.pss_kb()
    conns = []
    for _ in range(sessions):
        c = srv.login()
        c.select('INBOX')
        conns.append(c)
    time.sleep(1)
    total = srv.pss_kb()
    for c in conns:
        try:
            c.logout()
        except Exception:             # noqa: BLE001
            pass
    return (total - base) / sessions


def curve_sizes(n, points):
    """Mailbox sizes at which the scaling curve is measured: n/points, 2n/points, ..., n."""
    return sorted({max(1, round(n * k / points)) for k in range(1, points + 1)})


def split_corpus(corpus, sizes):
    """Moves the corpus (oldest first) into one Maildir per step of sizes."""
    names = sorted(os.listdir(os.path.join(corpus, 'cur')))
    dirs, prev = [], 0
    for k, n in enumerate(sizes):
        d = '%s-%d' % (corpus, k)
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(d, sub))
        for name in names[prev:n]:
            os.rename(os.path.join(corpus, 'cur', name), os.path.join(d, 'cur', name))
        dirs.append(d)
        prev = n
    return dirs


def median_runs(fn, servers, runs):
    """Alternates servers run by run; returns {name: median seconds}."""
    res = {s.name: [] for s in servers}
    for r in range(runs):
        for s in (servers if r % 2 == 0 else list(reversed(servers))):
            res[s.name].append(fn(s))
    return {k: statistics.median(v) for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--polaris', required=True)
    ap.add_argument('--messages', type=int, default=100000)
    ap.add_argument('--append', type=int, default=10000)
    ap.add_argument('--sessions', type=int, default=50)
    ap.add_argument('--idle', type=int, default=1000)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--mixed-seconds', type=int, default=10)
    ap.add_argument('--curve-points', type=int, default=1,
                    help='mailbox sizes at which UID FETCH 1:* (FLAGS) is timed as the '
                         'INBOX is loaded in steps')
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix='polaris-bench-imap-')
    os.chmod(tmp, 0o755)
    corpus = os.path.join(tmp, 'corpus')
    out = {'messages': a.messages}
    servers = []
    try:
        t0 = time.monotonic()
        make_corpus(corpus, a.messages)
        print('corpus: %d messages in %.1fs' % (a.messages, time.monotonic() - t0),
              file=sys.stderr)
        sizes = curve_sizes(a.messages, a.curve_points)
        chunks = split_corpus(corpus, sizes)
        p = Polaris(a.polaris, tmp, chunks[0])
        d = Dovecot(tmp, chunks[0])
        servers = [p, d]
        out['versions'] = {s.name: s.version() for s in servers}
        # The first SELECT after a load is where Dovecot builds its index; reported (summed
        # over the load steps), not compared.
        out['first_select_s'] = {s.name: 0 for s in servers}
        out['curve'] = {'sizes': sizes, 'uid_fetch_flags_all_s': {s.name: [] for s in servers}}
        for k, size in enumerate(sizes):
            for s in servers:
                if k:
                    s.add(chunks[k])
                out['first_select_s'][s.name] += op_select(s)
            for name, t in median_runs(op_fetch_flags, servers, a.runs).items():
                out['curve']['uid_fetch_flags_all_s'][name].append(t)
            print('%d messages: UID FETCH 1:* (FLAGS) %s' % (
                size, {n: v[-1] for n, v in out['curve']['uid_fetch_flags_all_s'].items()}),
                file=sys.stderr)
        out['load_s'] = {s.name: s.import_s for s in servers}
        ops = {
            'select': op_select,
            'uid_fetch_flags_all': op_fetch_flags,
            'uid_fetch_headers_newest_500': op_fetch_headers,
            'uid_search_subject': op_search,
        }
        out['seconds'] = {}
        for name, fn in ops.items():
            out['seconds'][name] = median_runs(fn, servers, a.runs)
            print('%s: %s' % (name, out['seconds'][name]), file=sys.stderr)
        out['seconds']['append_%d' % a.append] = median_runs(
            lambda s: op_append(s, a.append), servers, max(1, a.runs // 2))
        # The mixed loop runs like the rest: alternating, the median of (at least 3) runs.
        def mixed(s):
            rate, errs = op_mixed(s, a.sessions, a.mixed_seconds)
            if errs:
                out.setdefault('errors', {}).setdefault(s.name, []).extend(errs[:3])
            return rate
        out['mixed_cmds_per_s'] = median_runs(mixed, servers, max(3, a.runs // 2))
        print('mixed: %s' % out['mixed_cmds_per_s'], file=sys.stderr)
        out['idle_kib_per_session'] = {s.name: idle_memory(s, a.idle) for s in servers}
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    json.dump(out, sys.stdout, indent=1)


if __name__ == '__main__':
    main()
