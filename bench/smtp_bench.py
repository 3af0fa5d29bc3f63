#!/usr/bin/python3
"""SMTP side by side: Polaris against Postfix delivering to Dovecot over LMTP, on this
machine, in the same run, with the same messages.

Workload (issue 9): durable local deliveries per second. 20 concurrent sender threads
deliver N messages of about 10 KB (default 10,000) to bench@example.com over plain SMTP on
a loopback port, one SMTP session per message (connect, EHLO, MAIL, RCPT, DATA, QUIT), as
an MX sees them. The clock runs from the first connection until every accepted message is
in the mailbox, polled every 50 ms once the senders are done: for Polaris through IMAP
`STATUS INBOX (MESSAGES)`, for Dovecot by counting the files in the Maildir's new/ and
cur/. Also reported: the SMTP transaction time of each message (connect until the 250
after DATA), p50 and p99.

Why the end-to-end time is what is compared: Polaris answers 250 once the message is
durably in the mailbox; Postfix answers 250 once it is durably in its queue, and its queue
manager hands it to Dovecot's LMTP afterwards, which writes it into the Maildir. The 250
rates are printed too, but they measure different work.

Every run starts a fresh instance with an empty data directory on disk (--dir, default
/var/tmp, not a tmpfs, so that fsync costs what it costs), warms it up with one message per
sender, then measures. The two servers alternate which goes first; each figure is the
median of --runs runs. All three programs run with the logging they ship with (one or
more lines per message, to files). Network traffic stays on 127.0.0.1.

Prints JSON to stdout (bench/run.sh turns it into the results file).
Standard library only; run with Debian's /usr/bin/python3 as root.
"""
import argparse
import imaplib
import itertools
import json
import os
import random
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import PASSWORD, USER, WORDS, free_port, wait_port

SENDER = 'sender@example.org'
CLIENT_NAME = 'client.example.org'   # EHLO name; also keeps smtplib from resolving ours
POLL_S = 0.05


def tail(path, n=20):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-n:])
    except OSError:
        return ''


class Messages:
    """Message i: unique Message-ID and Subject, a ~size-byte text body (CRLF)."""

    def __init__(self, size, seed=1):
        rnd = random.Random(seed)
        self.bodies = []
        for _ in range(8):
            lines, n = [], 0
            while n < size - 400:          # leave room for the header
                line = ' '.join(rnd.choice(WORDS) for _ in range(11))
                lines.append(line)
                n += len(line) + 2
            self.bodies.append('\r\n'.join(lines) + '\r\n')

    def get(self, i, tag):
        head = ('From: Sender <%s>\r\nTo: Bench <%s>\r\nSubject: bench %s message %d\r\n'
                'Date: %s\r\nMessage-ID: <%s.%d.%d@example.org>\r\nMIME-Version: 1.0\r\n'
                'Content-Type: text/plain; charset=us-ascii\r\n\r\n'
                % (SENDER, USER, tag, i, time.strftime('%a, %d %b %Y %H:%M:%S +0000',
                                                       time.gmtime()),
                   tag, i, os.getpid()))
        return (head + self.bodies[i % len(self.bodies)]).encode()


class Server:
    name = ''
    smtp_port = 0

    def dead(self):
        return False


class Polaris(Server):
    name = 'polaris'

    def __init__(self, binary, tmp):
        self.bin = binary
        self.tmp = os.path.join(tmp, 'polaris')
        os.makedirs(self.tmp)
        self.smtp_port, self.imap_port = free_port(), free_port()
        self.conf = os.path.join(self.tmp, 'polaris.ini')
        self.log = os.path.join(self.tmp, 'polaris.log')
        # log_level left at its default (info): one line per SMTP transaction, like the peers.
        with open(self.conf, 'w') as f:
            f.write('[server]\nhostname = mx.polaris.test\ndata_dir = data\n'
                    '[listen]\nsmtp = 127.0.0.1:%d\nimap = 127.0.0.1:%d\n'
                    '[auth]\nallow_plaintext = loopback\n' % (self.smtp_port, self.imap_port))
        self.cli('domain', 'add', 'example.com')
        self.cli('user', 'add', USER, '--type', 'basic', '--quota', '50G',
                 '--password', PASSWORD)
        self.logf = open(self.log, 'ab')
        self.proc = subprocess.Popen([binary, '-c', self.conf, 'serve'], cwd=self.tmp,
                                     stdout=subprocess.DEVNULL, stderr=self.logf)
        wait_port(self.smtp_port, lambda: self.proc.poll() is None)
        wait_port(self.imap_port, lambda: self.proc.poll() is None)
        self.imap = None

    def cli(self, *args):
        subprocess.run([self.bin, '-c', self.conf] + list(args), check=True, cwd=self.tmp,
                       stdout=subprocess.DEVNULL)

    def count(self):
        if self.imap is None:
            self.imap = imaplib.IMAP4('127.0.0.1', self.imap_port, timeout=60)
            self.imap.login(USER, PASSWORD)
        typ, data = self.imap.status('INBOX', '(MESSAGES)')
        if typ != 'OK':
            raise RuntimeError('STATUS failed: %r' % data)
        return int(data[0].decode().rsplit('MESSAGES', 1)[1].strip(' )'))

    def dead(self):
        return self.proc.poll() is not None

    def logs(self):
        return tail(self.log)

    def stop(self):
        if self.imap is not None:
            try:
                self.imap.logout()
            except Exception:          # noqa: BLE001
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()

    @staticmethod
    def version(binary):
        return subprocess.run([binary, '--version'], capture_output=True,
                              text=True).stdout.strip()


# Debian's master.cf services, chroot off (the instance lives in a temp dir), smtpd on a
# loopback port. Process limits and everything else as shipped.
MASTER_CF = '''\
127.0.0.1:{port} inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
'''

MAIN_CF = '''\
compatibility_level = 3.6
queue_directory = {t}/spool
data_directory = {t}/lib
maillog_file = {t}/postfix.log
myhostname = mx.postfix.test
mydomain = postfix.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
# No DNS: nothing leaves the machine (these name lookups go through /etc/hosts).
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
# The hosted domain and its one mailbox (unknown recipients are refused at RCPT, as in
# Polaris); delivery to Dovecot over LMTP on a unix socket, the usual Postfix+Dovecot setup.
virtual_mailbox_domains = example.com
virtual_mailbox_maps = inline:{{ {user}=bench/ }}
virtual_transport = lmtp:unix:{sock}
message_size_limit = 26214400
'''

DOVECOT_CONF = '''\
protocols = lmtp
listen = 127.0.0.1
base_dir = {t}/run
state_dir = {t}/run
log_path = {t}/dovecot.log
ssl = no
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
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
'''


class PostfixDovecot(Server):
    """A throwaway Postfix (its own config, queue and data directories, loopback port)
    delivering over LMTP to a throwaway Dovecot (its own base_dir, Maildir in the temp dir).
    Dovecot's fsync settings are its defaults (mail_fsync = optimized)."""
    name = 'postfix'

    def __init__(self, tmp):
        self.tmp = os.path.join(tmp, 'postfix-dovecot')
        dt = os.path.join(self.tmp, 'dovecot')
        pt = os.path.join(self.tmp, 'postfix')
        self.maildir = os.path.join(dt, 'mail', 'bench')
        for d in ('run', 'home/bench', 'mail'):
            os.makedirs(os.path.join(dt, d))
        subprocess.run(['chown', '-R', 'nobody:nogroup', dt], check=True)
        self.dconf = os.path.join(dt, 'dovecot.conf')
        self.dlog = os.path.join(dt, 'dovecot.log')
        with open(self.dconf, 'w') as f:
            f.write(DOVECOT_CONF.format(t=dt, pw=PASSWORD))
        self.dovecot = subprocess.Popen(['/usr/sbin/dovecot', '-F', '-c', self.dconf],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = os.path.join(dt, 'run', 'lmtp')
        deadline = time.time() + 30
        while not os.path.exists(sock):
            if self.dovecot.poll() is not None or time.time() > deadline:
                raise RuntimeError('dovecot did not start:\n' + tail(self.dlog))
            time.sleep(0.05)

        self.pconf = os.path.join(pt, 'etc')
        self.plog = os.path.join(pt, 'postfix.log')
        os.makedirs(self.pconf)
        os.makedirs(os.path.join(pt, 'spool'))
        os.makedirs(os.path.join(pt, 'lib'))
        subprocess.run(['chown', 'postfix:postfix', os.path.join(pt, 'lib')], check=True)
        self.smtp_port = free_port()
        with open(os.path.join(self.pconf, 'main.cf'), 'w') as f:
            f.write(MAIN_CF.format(t=pt, sock=sock, user=USER))
        with open(os.path.join(self.pconf, 'master.cf'), 'w') as f:
            f.write(MASTER_CF.format(port=self.smtp_port))
        r = subprocess.run(['/usr/sbin/postfix', '-c', self.pconf, 'start'],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.stop()
            raise RuntimeError('postfix start failed: %s %s\n%s' % (r.stdout, r.stderr,
                                                                     tail(self.plog)))
        wait_port(self.smtp_port, lambda: not self.dead())

    def master_pid(self):
        try:
            with open(os.path.join(self.tmp, 'postfix', 'spool', 'pid', 'master.pid')) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def dead(self):
        pid = self.master_pid()
        if self.dovecot.poll() is not None:
            return True
        if pid is None:
            return False                   # still starting
        try:
            os.kill(pid, 0)
            return False
        except OSError:
            return True

    def count(self):
        n = 0
        for sub in ('new', 'cur'):
            try:
                with os.scandir(os.path.join(self.maildir, sub)) as it:
                    n += sum(1 for _ in it)
            except FileNotFoundError:
                pass
        return n

    def logs(self):
        return 'postfix:\n%s\ndovecot:\n%s' % (tail(self.plog), tail(self.dlog))

    def stop(self):
        pid = self.master_pid()
        subprocess.run(['/usr/sbin/postfix', '-c', self.pconf, 'stop'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while pid and time.time() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        if self.dovecot.poll() is None:
            self.dovecot.send_signal(signal.SIGTERM)
            try:
                self.dovecot.wait(30)
            except subprocess.TimeoutExpired:
                self.dovecot.kill()
                self.dovecot.wait()

    @staticmethod
    def version():
        pf = subprocess.run(['/usr/sbin/postconf', '-d', '-h', 'mail_version'],
                            capture_output=True, text=True).stdout.strip()
        dv = subprocess.run(['/usr/sbin/dovecot', '--version'], capture_output=True,
                            text=True).stdout.strip()
        return 'Postfix %s + Dovecot %s (LMTP)' % (pf, dv)


def send_all(srv, msgs, n, senders, per_session, tag):
    """n messages from `senders` threads; returns (seconds of each transaction, errors,
    accepted count, seconds until the last sender finished) — timed from before the first
    connection."""
    counter = itertools.count()
    lock = threading.Lock()
    times, errors = [], []
    accepted = [0]

    def next_batch():
        with lock:
            batch = []
            while len(batch) < per_session:
                i = next(counter)
                if i >= n:
                    break
                batch.append(i)
            return batch

    def worker():
        mine, ok = [], 0
        while True:
            batch = next_batch()
            if not batch:
                break
            t0 = time.perf_counter()
            try:
                c = smtplib.SMTP('127.0.0.1', srv.smtp_port, local_hostname=CLIENT_NAME,
                                 timeout=300)
                for i in batch:
                    c.sendmail(SENDER, [USER], msgs.get(i, tag))
                    t1 = time.perf_counter()
                    mine.append(t1 - t0)       # connect (or previous 250) -> 250 after DATA
                    ok += 1
                    t0 = t1
                c.quit()
            except (smtplib.SMTPException, OSError) as e:
                with lock:
                    errors.append('%s: %s' % (type(e).__name__, e))
        with lock:
            times.extend(mine)
            accepted[0] += ok

    threads = [threading.Thread(target=worker) for _ in range(senders)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return start, times, errors, accepted[0], time.perf_counter() - start


def wait_count(srv, target, start, timeout):
    """Polls the mailbox every 50 ms until it holds `target` messages; returns the seconds
    since `start` and the count seen last."""
    deadline = time.perf_counter() + timeout
    while True:
        n = srv.count()
        now = time.perf_counter()
        if n >= target:
            return now - start, n
        if now > deadline or srv.dead():
            return None, n
        time.sleep(POLL_S)


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def one_run(make, msgs, a, run_no):
    srv = make()
    try:
        # Warm-up: one message per sender, so both start with their processes/threads up.
        _, _, errs, ok, _ = send_all(srv, msgs, a.senders, a.senders, 1, 'warmup%d' % run_no)
        base_target = ok
        secs, base = wait_count(srv, base_target, time.perf_counter(), 120)
        if secs is None:
            raise RuntimeError('%s: warm-up not delivered (%d/%d, %s)\n%s'
                               % (srv.name, base, base_target, errs[:3], srv.logs()))
        cpu0 = os.times()
        start, times, errs, ok, send_s = send_all(srv, msgs, a.messages, a.senders,
                                                  a.per_session, 'run%d' % run_no)
        secs, seen = wait_count(srv, base + ok, start, a.timeout)
        cpu1 = os.times()
        res = {
            # CPU the benchmark client itself used (it shares the machine with the server).
            'client_cpu_s': (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
            'accepted': ok,
            'delivered': seen - base,
            'send_s': send_s,
            'accepted_per_s': ok / send_s if send_s else 0,
            'txn_p50_ms': quantile(times, 0.50) * 1000 if times else None,
            'txn_p99_ms': quantile(times, 0.99) * 1000 if times else None,
        }
        if secs is None:
            res['incomplete'] = True
            secs = time.perf_counter() - start
            errs.append('only %d of %d accepted messages reached the mailbox after %.0f s'
                        % (seen - base, ok, secs))
            print(srv.logs(), file=sys.stderr)
        res['end_to_end_s'] = secs
        res['deliveries_per_s'] = (seen - base) / secs
        if errs:
            res['errors'] = errs[:5]
            res['error_count'] = len(errs)
        return res
    finally:
        srv.stop()


def fs_type(path):
    r = subprocess.run(['df', '--output=fstype', path], capture_output=True, text=True)
    lines = r.stdout.split()
    return lines[-1] if len(lines) > 1 else 'unknown'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--polaris', required=True)
    ap.add_argument('--messages', type=int, default=10000)
    ap.add_argument('--senders', type=int, default=20)
    ap.add_argument('--size', type=int, default=10240, help='message size in bytes (about)')
    ap.add_argument('--per-session', type=int, default=1, help='messages per SMTP session')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--timeout', type=int, default=1800,
                    help='seconds to wait for the last delivery of a run')
    ap.add_argument('--dir', default='/var/tmp',
                    help='where the data directories go (a disk, not a tmpfs)')
    ap.add_argument('--quick', action='store_true', help='1,000 messages, 1 run')
    ap.add_argument('--keep', action='store_true', help='keep the data directories (debug)')
    a = ap.parse_args()
    if a.quick:
        a.messages, a.runs = 1000, 1

    tmp_root = tempfile.mkdtemp(prefix='polaris-bench-smtp-', dir=a.dir)
    os.chmod(tmp_root, 0o755)
    msgs = Messages(a.size)
    sample = msgs.get(0, 'run0')
    makers = {
        'polaris': lambda d: Polaris(os.path.abspath(a.polaris), d),
        'postfix': lambda d: PostfixDovecot(d),
    }
    names = list(makers)
    out = {
        'messages': a.messages, 'senders': a.senders, 'message_bytes': len(sample),
        'per_session': a.per_session, 'runs': a.runs,
        'filesystem': '%s (%s)' % (a.dir, fs_type(a.dir)),
        'versions': {'polaris': Polaris.version(a.polaris),
                     'postfix': PostfixDovecot.version()},
        'per_run': {k: [] for k in names},
    }
    try:
        for r in range(a.runs):
            order = names if r % 2 == 0 else list(reversed(names))
            for name in order:
                d = os.path.join(tmp_root, 'run%d-%s' % (r, name))
                os.makedirs(d)
                os.chmod(d, 0o755)
                res = one_run(lambda: makers[name](d), msgs, a, r)
                out['per_run'][name].append(res)
                print('run %d %s: %.0f deliveries/s end to end, %.0f accepted/s, '
                      'txn p50 %.1f ms p99 %.1f ms, client CPU %.1f s of %.1f s%s'
                      % (r + 1, name, res['deliveries_per_s'], res['accepted_per_s'],
                         res['txn_p50_ms'] or 0, res['txn_p99_ms'] or 0,
                         res['client_cpu_s'], res['end_to_end_s'],
                         ' ERRORS %s' % res['errors'] if res.get('errors') else ''),
                      file=sys.stderr)
                if not a.keep:
                    shutil.rmtree(d, ignore_errors=True)
    finally:
        if a.keep:
            print('kept: %s' % tmp_root, file=sys.stderr)
        else:
            shutil.rmtree(tmp_root, ignore_errors=True)

    def med(name, key):
        vals = [x[key] for x in out['per_run'][name] if x.get(key) is not None]
        return statistics.median(vals) if vals else None

    for key in ('deliveries_per_s', 'accepted_per_s', 'end_to_end_s', 'txn_p50_ms',
                'txn_p99_ms'):
        out[key] = {k: med(k, key) for k in names}
    errs = {k: [e for x in out['per_run'][k] for e in x.get('errors', [])] for k in names}
    if any(errs.values()):
        out['errors'] = {k: v[:5] for k, v in errs.items() if v}
    out['note'] = ("Polaris's 250 means the message is durably in the mailbox; Postfix's 250 "
                   "means it is durably in Postfix's queue, and delivery to Dovecot over LMTP "
                   "happens after. That is why the end-to-end time (first connection until "
                   "every message is in the mailbox) is what is compared.")
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == '__main__':
    main()
