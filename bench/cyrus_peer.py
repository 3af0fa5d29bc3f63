"""Cyrus IMAP's CalDAV/CardDAV (Debian's cyrus-common + cyrus-caldav) as a benchmark peer:
a throwaway master with its httpd on a loopback port and its lmtpd on a Unix socket, all
under one temporary directory (config, partition, sockets, SASL database).

How it is made to run without the machine's own setup (found by trying, offline):
  - Debian's cyrus-imapd package (the IMAP daemon) conflicts with Dovecot's imap-server,
    so it is not installed: the CalDAV/CardDAV server is httpd from cyrus-caldav, started
    by cyrus-common's master. Nothing here needs imapd.
  - Every service gets `-C imapd.conf` on its command line (master does not pass its own
    -C on), and proc_path/mboxname_lockpath point into the directory, or httpd fails with
    "couldn't create proc directory" looking for /run/cyrus.
  - Users: plain-text Basic auth checked against a sasldb of our own (saslpasswd2 -f).
  - A user's calendar and address-book homes are provisioned by httpd at login only once
    the user's INBOX exists ("could not autoprovision calendars ... Invalid user"
    otherwise). Without imapd/cyradm, the INBOX is made the way a new account's first
    mail makes it: one LMTP delivery to lmtpd with autocreate_post on.
Cyrus logs to syslog only; with no syslog daemon the logs are lost, which costs nothing.

Needs Debian's cyrus-common, cyrus-caldav and sasl2-bin (bench/run.sh installs them without
starting their system services)."""
import os
import shutil
import signal
import smtplib
import subprocess
import time

from benchlib import PASSWORD, descendants, free_port, wait_port

CYRUS_USER = 'bench'
BIN = '/usr/lib/cyrus/bin'


class Cyrus:
    """Start with Cyrus(tmpdir); .port is httpd's; stop() ends master and its children."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, 'cyrus')
        for sub in ('config', 'spool', 'socket', 'run', 'proc', 'lock'):
            os.makedirs(os.path.join(self.dir, sub))
        # master drops to the cyrus user: it must reach every directory on the way.
        os.chmod(tmp, 0o755)
        self.port = free_port()
        self.conf = os.path.join(self.dir, 'imapd.conf')
        self.lmtp = os.path.join(self.dir, 'socket', 'lmtp')
        self._write_config()
        r = subprocess.run(['saslpasswd2', '-p', '-c', '-f', os.path.join(self.dir, 'sasldb2'),
                            '-u', 'localhost', CYRUS_USER], input=PASSWORD, text=True,
                           capture_output=True)
        if r.returncode != 0:
            raise RuntimeError('saslpasswd2 failed: %s' % r.stderr)
        subprocess.run(['chown', '-R', 'cyrus:mail', self.dir], check=True)
        self.log = open(os.path.join(self.dir, 'master.log'), 'w')
        self.proc = subprocess.Popen([BIN + '/master', '-C', self.conf, '-M',
                                      os.path.join(self.dir, 'cyrus.conf'), '-p',
                                      os.path.join(self.dir, 'run', 'master.pid'), '-D'],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_port(self.port, lambda: self.proc.poll() is None)
            self._make_inbox()
        except Exception:
            self.stop()
            raise

    def _write_config(self):
        d = self.dir
        with open(self.conf, 'w') as f:
            f.write('configdirectory: {d}/config\n'
                    'defaultpartition: default\n'
                    'partition-default: {d}/spool\n'
                    'proc_path: {d}/proc\n'
                    'mboxname_lockpath: {d}/lock\n'
                    'lmtpsocket: {d}/socket/lmtp\n'
                    'notifysocket: {d}/socket/notify\n'
                    'servername: localhost\n'
                    'admins: cyrus\n'
                    'allowplaintext: yes\n'
                    'sasl_pwcheck_method: auxprop\n'
                    'sasl_auxprop_plugin: sasldb\n'
                    'sasl_sasldb_path: {d}/sasldb2\n'
                    'sasl_mech_list: PLAIN\n'
                    'httpmodules: caldav carddav\n'
                    'httpallowcompress: no\n'
                    'autocreate_quota: 0\n'
                    'autocreate_post: yes\n'
                    'unixhierarchysep: yes\n'
                    'altnamespace: yes\n'
                    'syslog_prefix: benchcyrus\n'.format(d=d))
        with open(os.path.join(d, 'cyrus.conf'), 'w') as f:
            f.write('START {{\n'
                    '  recover cmd="ctl_cyrusdb -C {c} -r"\n'
                    '}}\n'
                    'SERVICES {{\n'
                    '  http cmd="httpd -C {c}" listen="127.0.0.1:{p}" prefork=1\n'
                    '  lmtpunix cmd="lmtpd -C {c}" listen="{l}" prefork=0\n'
                    '}}\n'
                    'EVENTS {{\n'
                    '}}\n'.format(c=self.conf, p=self.port, l=self.lmtp))

    def _make_inbox(self):
        """The first delivery creates the user's INBOX (autocreate_post)."""
        deadline = time.time() + 30
        while not os.path.exists(self.lmtp):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError('cyrus lmtpd socket never appeared')
            time.sleep(0.05)
        c = smtplib.LMTP(self.lmtp)
        try:
            refused = c.sendmail('bench@example.org', [CYRUS_USER],
                                 'From: bench@example.org\r\nTo: %s\r\nSubject: welcome\r\n'
                                 '\r\nThe first mail creates the INBOX.\r\n' % CYRUS_USER)
        finally:
            c.quit()
        if refused:
            raise RuntimeError('cyrus lmtpd refused the first delivery: %r' % refused)

    def pids(self):
        """master and its services (httpd, lmtpd: one process per connection)."""
        return descendants(self.proc.pid)

    def version(self):
        out = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'cyrus-caldav'],
                             capture_output=True, text=True)
        return 'Cyrus IMAP (httpd, caldav carddav) ' + out.stdout.strip()

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log.close()
        time.sleep(0.2)
        shutil.rmtree(self.dir, ignore_errors=True)
