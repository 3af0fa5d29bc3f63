"""SOGo as a benchmark peer: a throwaway MariaDB, memcached and sogod on loopback ports, all
under one temporary directory, with one SQL user source holding the bench account.

SOGo keeps calendars and contacts in MariaDB and reads mail from an IMAP server (for the
ActiveSync workload, the Dovecot the IMAP benchmark uses). Nothing of the machine's own
configuration is used: /etc/sogo/sogo.conf is overridden key by key on sogod's command line
(GNUstep's argument domain takes precedence over it).

Needs Debian's sogo, sogo-activesync, mariadb-server and memcached (bench/run.sh installs
them without starting their system services)."""
import hashlib
import os
import shutil
import signal
import subprocess
import time

from benchlib import PASSWORD, descendants, free_port, wait_port

SOGO_USER = 'bench'


def _run(args, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError('%s failed: %s' % (args[0], r.stdout[-2000:]))
    return r


class Sogo:
    """Start with Sogo(tmpdir, imap_port=..., smtp_port=...); stop() ends everything."""

    def __init__(self, tmp, imap_port=0, smtp_port=0, workers=2, extra_users=()):
        self.extra_users = extra_users
        self.dir = os.path.join(tmp, 'sogo')
        os.makedirs(self.dir)
        # mysqld and sogod run as their own users: they must reach their directories.
        os.chmod(tmp, 0o755)
        os.chmod(self.dir, 0o755)
        self.procs = []
        self.db_port = free_port()
        self.mc_port = free_port()
        self.port = free_port()
        try:
            self._mariadb()
            self._memcached()
            self._sogod(imap_port, smtp_port, workers)
        except Exception:
            self.stop()
            raise

    def _mariadb(self):
        db = os.path.join(self.dir, 'db')
        os.makedirs(db)
        shutil.chown(db, 'mysql', 'mysql')
        _run(['mariadb-install-db', '--no-defaults', '--datadir=' + db, '--user=mysql',
              '--auth-root-authentication-method=normal', '--skip-test-db'])
        # The socket lives in the data dir: mysqld runs as mysql and must be able to
        # create it there.
        self.sock = os.path.join(db, 'mysqld.sock')
        p = subprocess.Popen(['mysqld', '--no-defaults', '--datadir=' + db, '--user=mysql',
                              '--socket=' + self.sock, '--port=%d' % self.db_port,
                              '--bind-address=127.0.0.1', '--skip-log-bin'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(self.db_port, lambda: p.poll() is None)
        pw_md5 = hashlib.md5(PASSWORD.encode()).hexdigest()
        sql = ("CREATE DATABASE sogo; CREATE USER 'sogo'@'127.0.0.1' IDENTIFIED BY 'sogopw';"
               "GRANT ALL ON sogo.* TO 'sogo'@'127.0.0.1'; USE sogo;"
               "CREATE TABLE sogo_users (c_uid VARCHAR(128) PRIMARY KEY, c_name VARCHAR(128),"
               " c_password VARCHAR(128), c_cn VARCHAR(128), mail VARCHAR(128));"
               + ''.join("INSERT INTO sogo_users VALUES ('%s', '%s', '%s', '%s',"
                         " '%s@example.com');" % (u, u, pw_md5, u, u)
                         for u in (SOGO_USER,) + tuple(self.extra_users)))
        _run(['mysql', '--no-defaults', '-S', self.sock, '-uroot', '-e', sql])

    def _memcached(self):
        p = subprocess.Popen(['memcached', '-u', 'memcache', '-l', '127.0.0.1', '-p',
                              str(self.mc_port), '-m', '64'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(self.mc_port, lambda: p.poll() is None)

    def _sogod(self, imap_port, smtp_port, workers):
        home = os.path.join(self.dir, 'home')
        os.makedirs(home)
        shutil.chown(home, 'sogo', 'sogo')
        db = 'mysql://sogo:sogopw@127.0.0.1:%d/sogo' % self.db_port
        args = ['/usr/sbin/sogod', '-WONoDetach', 'YES', '-WOPort', '127.0.0.1:%d' % self.port,
                '-WOWorkersCount', str(workers), '-WOLogFile', '-',
                '-WOPidFile', os.path.join(home, 'sogo.pid'),
                '-SOGoProfileURL', db + '/sogo_user_profile',
                '-OCSFolderInfoURL', db + '/sogo_folder_info',
                '-OCSSessionsFolderURL', db + '/sogo_sessions_folder',
                '-OCSCacheFolderURL', db + '/sogo_cache_folder',
                '-OCSStoreURL', db + '/sogo_store', '-OCSAclURL', db + '/sogo_acl',
                '-OCSEMailAlarmsFolderURL', db + '/sogo_alarms_folder',
                '-SOGoMemcachedHost', '127.0.0.1:%d' % self.mc_port,
                '-SOGoTimeZone', 'UTC', '-SOGoMailDomain', 'example.com',
                '-SOGoUserSources',
                '({type = sql; id = users; viewURL = "%s/sogo_users"; canAuthenticate = YES;'
                ' isAddressBook = NO; userPasswordAlgorithm = md5;})' % db,
                '-SOGoIMAPServer', 'imap://127.0.0.1:%d' % (imap_port or 1),
                '-SOGoSMTPServer', 'smtp://127.0.0.1:%d' % (smtp_port or 1),
                # Push over ActiveSync as SOGo's guide recommends: hold Ping/Sync requests
                # and poll the store for changes while holding them.
                '-SOGoMaximumPingInterval', '3540', '-SOGoMaximumSyncInterval', '3540',
                '-SOGoInternalSyncInterval', '10',
                # ... and let a worker stay in such a request longer than the longest Ping
                # before the watchdog kills it (minutes).
                '-WOWatchDogRequestTimeout', '60']
        self.log = open(os.path.join(self.dir, 'sogo.log'), 'w')
        p = subprocess.Popen(['setpriv', '--reuid=sogo', '--regid=sogo', '--init-groups',
                              'env', 'HOME=' + home] + args,
                             stdout=self.log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        self.sogod = p
        wait_port(self.port, lambda: p.poll() is None)

    def pids(self):
        """sogod's processes (the watchdog and its workers)."""
        return descendants(self.sogod.pid)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    if p is getattr(self, 'sogod', None):
                        os.killpg(p.pid, signal.SIGTERM)
                    else:
                        p.send_signal(signal.SIGTERM)
                    p.wait(20)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    p.kill()
        self.procs = []
        time.sleep(0.2)
