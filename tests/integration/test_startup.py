#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Start-up failures and --check-config (gslbd(8)): a geo file, database or CA file gslbd
cannot use stops start-up with exit status 1 and one clear message, --check-config predicts
it with the same message, and a geo file broken later is a reload failure, not a stop."""

import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
GEO = os.path.join(g.SRCDIR, 'geoip', 'gslb-test-city.mmdb')
ENOENT = os.strerror(2)


def errors(out):
    """The error lines of gslbd's output, without the 'gslbd[error]: ' prefix."""
    pre = 'gslbd[error]: '
    return [line[len(pre):] for line in out.splitlines() if line.startswith(pre)]


class Env:
    """A temporary directory with a zone directory holding one zone."""

    def __init__(self):
        self.tmp = g.tempfile.mkdtemp(prefix='gslbtest-startup-')
        self.zones = os.path.join(self.tmp, 'zones')
        os.mkdir(self.zones)
        shutil.copy(os.path.join(g.ZONES, 'example.test.zone'), self.zones)
        self.n = 0

    def path(self, name, data=None):
        p = os.path.join(self.tmp, name)
        if data is not None:
            with open(p, 'wb') as f:
                f.write(data)
        return p

    def new_db(self):
        self.n += 1
        return self.path('gslb%d.db' % self.n)

    def start(self, *args, db=None):
        """gslbd expected to fail at start-up: (exit status, output); None if still running."""
        cmd = [g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--threads', '1',
               '--zones', self.zones, '--db', db or self.new_db()] + list(args)
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=5, preexec_fn=g._pdeathsig)
            return p.returncode, p.stdout.decode('utf-8', 'replace')
        except subprocess.TimeoutExpired as e:
            # subprocess.run() has killed it.
            return None, 'still running after 5 s\n' + (e.output or b'').decode('utf-8',
                                                                               'replace')

    def check(self, *args, db=None):
        cmd = [g.GSLBD, '--check-config', '--zones', self.zones,
               '--db', db or self.new_db()] + list(args)
        return g.run_tool(cmd)


def one_error(t, rc, out, desc, *words):
    """Exit status 1 and exactly one error line, holding every one of words."""
    errs = errors(out)
    t.ok(rc == 1 and len(errs) == 1 and all(w in errs[0] for w in words),
         desc, 'exit status %r, want 1 and one error line with %r\n%s' % (rc, words, out))
    return errs[0] if len(errs) == 1 else None


def test_geo_startup(t, e):
    missing = e.path('missing.mmdb')
    rc, out = e.start('--geoip', missing)
    start_missing = one_error(t, rc, out, 'start-up with a missing geo file: exit 1, one message '
                              'naming the file and the reason', missing, ENOENT)
    garbage = e.path('garbage.mmdb', b'this is not a MaxMind DB\n' * 40)
    rc, out = e.start('--geoip', garbage)
    start_garbage = one_error(t, rc, out, 'start-up with a geo file that is not an mmdb: exit 1, '
                              'one message', garbage, 'MaxMind DB')
    rc, out = e.start('--geoip', e.path('empty.mmdb', b''))
    one_error(t, rc, out, 'start-up with an empty geo file: exit 1, one message', 'empty.mmdb')
    rc, out = e.start('--geoip', e.tmp)
    one_error(t, rc, out, 'start-up with a directory as the geo file: exit 1, one message',
              e.tmp)

    # --check-config opens the geo file as start-up does and says the same.
    rc, out = e.check('--geoip', missing)
    t.ok(rc == 1 and start_missing in errors(out),
         '--check-config: a missing geo file is exit 1 with the start-up message',
         '%r\n%s' % (rc, out))
    rc, out = e.check('--geoip', garbage)
    t.ok(rc == 1 and start_garbage in errors(out),
         '--check-config: a geo file that is not an mmdb is exit 1 with the start-up message',
         '%r\n%s' % (rc, out))
    rc, out = e.check('--geoip', GEO)
    t.ok(rc == 0 and not errors(out) and GEO in out,
         '--check-config: a good geo file is exit 0 and named', '%r\n%s' % (rc, out))


def test_geo_reload(t, e):
    """A geo file broken after start-up keeps the previous one (SIGHUP and file change)."""
    geo = e.path('reload.mmdb')
    shutil.copy(GEO, geo)
    srv = g.Gslbd(zones=('example.test.zone',), identity=False, extra_args=['--geoip', geo])
    try:
        srv.start()
        with open(geo, 'wb') as f:
            f.write(b'this is not a MaxMind DB\n' * 40)
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and 'keeping the previous one' not in srv.stderr():
            time.sleep(0.05)
        time.sleep(0.3)
        err = srv.stderr()
        t.ok(srv.alive(), 'a geo file broken after start-up: gslbd keeps running', err[-2000:])
        t.ok(any(geo in line and 'keeping the previous one' in line for line in errors(err)),
             'the reload failure is logged, naming the file', err[-2000:])
        m = g.exchange(g.make_query('example.test.', 'SOA'), srv.addr4, 'udp').msg
        t.ok(m is not None and m.answer, 'still answering after the failed reload',
             m and m.to_text())
        srv.check_stop(t)
    finally:
        srv.stop()
        srv.cleanup()


def test_db(t, e):
    bad = '/nonexistent-gslbtest-dir/x.db'
    rc, out = e.start(db=bad)
    start_line = one_error(t, rc, out, 'start-up with a database in a missing directory: exit '
                           '1, one message with the reason', bad, ENOENT)
    t.eq(len(out.splitlines()), 1, 'start-up with a bad database: nothing but that line')
    rc, out = e.check(db=bad)
    t.ok(rc == 1 and start_line is not None and start_line in errors(out),
         '--check-config: a database in a missing directory is exit 1 with the start-up '
         'message', '%r\n%s' % (rc, out))
    # A "directory" that is a file: ENOTDIR, not ENOENT; the same error either way (even as root).
    under_file = os.path.join(e.path('plain', b'x'), 'x.db')
    rc, out = e.start(db=under_file)
    start_line = one_error(t, rc, out, 'start-up with a database under a plain file: exit 1, one '
                           'message', under_file, os.strerror(20))
    rc, out = e.check(db=under_file)
    t.ok(rc == 1 and start_line is not None and start_line in errors(out),
         '--check-config: a database under a plain file is exit 1 with the start-up message',
         '%r\n%s' % (rc, out))
    missing = e.path('later.db')
    rc, out = e.check(db=missing)
    t.ok(rc == 0 and 'will create it' in out and not os.path.exists(missing),
         '--check-config: a missing database in a writable directory is a warning, exit 0',
         '%r\n%s' % (rc, out))

    ro = e.path('readonly')
    os.mkdir(ro)
    os.chmod(ro, 0o555)
    if os.access(ro, os.W_OK):
        t.skip('--check-config: a database in a read-only directory is exit 1',
               'running as root: every directory is writable')
    else:
        rodb = os.path.join(ro, 'x.db')
        rc, out = e.start(db=rodb)
        start_line = one_error(t, rc, out, 'start-up with a database in a read-only directory: '
                               'exit 1, one message', rodb)
        rc, out = e.check(db=rodb)
        t.ok(rc == 1 and start_line is not None and start_line in errors(out),
             '--check-config: a database in a read-only directory is exit 1 with the start-up '
             'message', '%r\n%s' % (rc, out))

    notdb = e.path('corrupt.db', b'this is not an SQLite database, not at all\n' * 100)
    rc, out = e.start(db=notdb)
    one_error(t, rc, out, 'start-up with a file that is not a database: says so',
              notdb, 'not a database')
    rc, out = e.check(db=notdb)
    t.ok(rc == 1 and any(notdb in x and 'not a database' in x for x in errors(out)),
         '--check-config: a file that is not a database says so', '%r\n%s' % (rc, out))
    p = subprocess.run([GSLBCTL, '--db', notdb, 'pool', 'list'], capture_output=True,
                       text=True, timeout=10)
    t.ok(p.returncode != 0 and 'not a database' in p.stderr,
         'gslbctl: a file that is not a database says so',
         '%r\n%s%s' % (p.returncode, p.stdout, p.stderr))


def test_ca_file(t, e):
    missing = e.path('missing.pem')
    rc, out = e.start('--ca-file', missing)
    one_error(t, rc, out, 'start-up with a missing --ca-file: exit 1, one message with the '
              'reason', missing, ENOENT)
    t.ok('(null)' not in out and 'allocate memory' not in out,
         'start-up with a missing --ca-file: no (null), no ENOMEM', out)
    garbage = e.path('garbage.pem', b'no certificates here\n')
    rc, out = e.start('--ca-file', garbage)
    garbage_line = one_error(t, rc, out, 'start-up with a --ca-file holding no certificate: '
                             'exit 1, one message with the reason', garbage, 'no certificate')
    # --check-config loads the CA file as start-up does and says the same.
    rc, out = e.start('--ca-file', missing)
    missing_line = errors(out)[0] if errors(out) else None
    for path, line, what in ((missing, missing_line, 'a missing'),
                             (garbage, garbage_line, 'a certificate-less')):
        rc, out = e.check('--ca-file', path)
        t.ok(rc == 1 and line is not None and line in errors(out),
             '--check-config: %s --ca-file is exit 1 with the start-up message' % what,
             '%r\n%s' % (rc, out))
    good = e.path('ca.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj',
                    '/CN=gslb check-config CA', '-keyout', e.path('ca.key'), '-out', good],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
    rc, out = e.check('--ca-file', good)
    t.ok(rc == 0, '--check-config: a good --ca-file is exit 0', '%r\n%s' % (rc, out))


def test_user(t, e):
    """--check-config --user checks as that user: what start-up, which drops privileges before
    opening the database, would meet."""
    if os.geteuid() != 0:
        t.skip('--check-config --user: checks as that user', 'needs root to change user')
        return
    try:
        import pwd
        pwd.getpwnam('nobody')
    except KeyError:
        t.skip('--check-config --user: checks as that user', 'no user nobody')
        return
    # Readable by everyone; the database directory writable by root only.
    top = g.tempfile.mkdtemp(prefix='gslbtest-user-')
    try:
        os.chmod(top, 0o755)
        zones = os.path.join(top, 'zones')
        shutil.copytree(e.zones, zones)
        for d, _, files in os.walk(top):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        dbdir = os.path.join(top, 'db')
        os.mkdir(dbdir, 0o755)
        db = os.path.join(dbdir, 'gslb.db')
        base = ['--zones', zones, '--db', db]

        cmd = [g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--threads', '1',
               '--user', 'nobody'] + base
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=5, preexec_fn=g._pdeathsig)
        out = p.stdout.decode('utf-8', 'replace')
        line = one_error(t, p.returncode, out, 'start-up as --user nobody with a database '
                         'directory only root may write: exit 1, one message', db)
        rc, out = g.run_tool([g.GSLBD, '--check-config'] + base)
        t.ok(rc == 0, '--check-config as root without --user: exit 0 (root could create it)',
             '%r\n%s' % (rc, out))
        rc, out = g.run_tool([g.GSLBD, '--check-config', '--user', 'nobody'] + base)
        t.ok(rc == 1 and line is not None and line in errors(out),
             '--check-config --user nobody: exit 1 with the start-up message',
             '%r\n%s' % (rc, out))
        t.ok(not os.path.exists(db), '--check-config created no database')

        rc, out = g.run_tool([g.GSLBD, '--check-config', '--user', 'no-such-user-gslb'] + base)
        t.ok(rc == 1 and any('no-such-user-gslb' in x and 'no such user' in x
                             for x in errors(out)),
             '--check-config --user with an unknown user: exit 1, says so', '%r\n%s' % (rc, out))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def nobody_ids():
    """(uid, gid) of user nobody, or None when that user cannot be used here (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd
        pw = pwd.getpwnam('nobody')
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return None


def public_tree(e):
    """A directory everyone may read and enter, with a copy of the zones: (top, zones)."""
    top = g.tempfile.mkdtemp(prefix='gslbtest-dbuser-')
    os.chmod(top, 0o755)
    zones = os.path.join(top, 'zones')
    shutil.copytree(e.zones, zones)
    os.chmod(zones, 0o755)
    for f in os.listdir(zones):
        os.chmod(os.path.join(zones, f), 0o644)
    return top, zones


def start_as(zones, db, *args):
    """gslbd expected to fail at start-up, as in Env.start(): (exit status, output)."""
    cmd = [g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--threads', '1',
           '--zones', zones, '--db', db] + list(args)
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=5, preexec_fn=g._pdeathsig)
        return p.returncode, p.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        return None, 'still running after 5 s\n' + (e.output or b'').decode('utf-8', 'replace')


def test_db_owner(t, e):
    """gslbctl init as root, then gslbd --user nobody: it used to start, open the file
    read-only without a word and fail every health write ("attempt to write a readonly
    database"), and --check-config said "no problems".  Start-up and --check-config now stop
    with one message naming the file and the user."""
    ids = nobody_ids()
    if ids is None:
        t.skip('a database another user owns: start-up and --check-config as --user stop',
               'needs root and a user nobody')
        return
    top, zones = public_tree(e)
    try:
        dbdir = os.path.join(top, 'db')
        os.mkdir(dbdir, 0o755)
        os.chown(dbdir, *ids)   # the directory is fine: only the file is root's
        db = os.path.join(dbdir, 'gslb.db')
        rc, out, err = g.gslbctl(db, 'init')
        t.ok(rc == 0, 'gslbctl init as root', err)
        base = ('--user', 'nobody')
        rc, out = start_as(zones, db, *base)
        line = one_error(t, rc, out, 'start-up as --user nobody on a database root owns: exit 1, '
                         'one message naming the file and the user', db, 'nobody')
        rc, out = g.run_tool([g.GSLBD, '--check-config', '--zones', zones, '--db', db] +
                             list(base))
        t.ok(rc == 1 and line is not None and line in errors(out),
             '--check-config --user nobody on a database root owns: exit 1 with the start-up '
             'message', '%r\n%s' % (rc, out))
        t.ok(not any(os.path.exists(db + x) for x in ('-wal', '-shm')),
             'nothing was created beside the database')

        # The file is nobody's now, but a -wal and -shm root left are not.
        os.chown(db, *ids)
        for x in ('-wal', '-shm'):
            with open(db + x, 'wb'):
                pass
            os.chmod(db + x, 0o644)
        rc, out = start_as(zones, db, *base)
        line = one_error(t, rc, out, 'start-up as --user nobody with a -wal and -shm root owns: '
                         'exit 1, one message naming one of them and the user', db + '-', 'nobody')
        rc, out = g.run_tool([g.GSLBD, '--check-config', '--zones', zones, '--db', db] +
                             list(base))
        t.ok(rc == 1 and line is not None and line in errors(out),
             '--check-config --user nobody with a -wal and -shm root owns: exit 1 with the '
             'start-up message', '%r\n%s' % (rc, out))

        # Everything nobody's: it starts, and its health writes work.
        for x in ('-wal', '-shm'):
            os.unlink(db + x)
        rc, out = g.run_tool([g.GSLBD, '--check-config', '--zones', zones, '--db', db] +
                             list(base))
        t.ok(rc == 0, '--check-config --user nobody on files nobody owns: exit 0',
             '%r\n%s' % (rc, out))
        port = g.free_port(False)
        log = os.path.join(top, 'gslbd.log')
        with open(log, 'wb') as lf:
            p = subprocess.Popen([g.GSLBD, '--listen', '127.0.0.1:%d' % port, '--threads', '1',
                                  '--zones', zones, '--db', db, '--user', 'nobody'],
                                 stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                                 preexec_fn=g._pdeathsig)
        try:
            time.sleep(2.5)
            alive = p.poll() is None
        finally:
            rc = g.terminate(p)
        with open(log) as f:
            out = f.read()
        t.ok(alive and rc == 0 and not errors(out),
             'gslbd --user nobody on files nobody owns: runs, no error (health writes work)',
             '%r %r\n%s' % (alive, rc, out))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_db_readonly_dir(t, e):
    """A database in WAL mode in a directory gslbd may not write: SQLite must create the -wal and
    -shm there.  Start-up used to say "No such file or directory" or "Read-only file system";
    it now says the directory is not writable, by whom."""
    ids = nobody_ids()
    if os.geteuid() == 0 and ids is None:
        t.skip('a read-only database directory: start-up says what is wrong', 'no user nobody')
        return
    top, zones = public_tree(e)
    try:
        dbdir = os.path.join(top, 'ro')
        os.mkdir(dbdir, 0o755)
        db = os.path.join(dbdir, 'gslb.db')
        rc, out, err = g.gslbctl(db, 'init')
        t.ok(rc == 0 and not any(os.path.exists(db + x) for x in ('-wal', '-shm')),
             'gslbctl init: a WAL database, no -wal or -shm once closed', err)
        if ids is not None:
            os.chown(db, *ids)   # nobody may write the file, not its directory
            extra = ('--user', 'nobody')
        else:
            os.chmod(dbdir, 0o555)
            extra = ()
        rc, out = start_as(zones, db, *extra)
        line = one_error(t, rc, out, 'start-up with a WAL database in a read-only directory: '
                         'exit 1, one message naming the directory', dbdir, 'write')
        t.ok(line is not None and ENOENT not in line and os.strerror(30) not in line,
             'start-up with a WAL database in a read-only directory: not "%s" nor "%s"'
             % (ENOENT, os.strerror(30)), line)
        rc, out = g.run_tool([g.GSLBD, '--check-config', '--zones', zones, '--db', db] +
                             list(extra))
        t.ok(rc == 1 and line is not None and line in errors(out),
             '--check-config: a WAL database in a read-only directory is exit 1 with the '
             'start-up message', '%r\n%s' % (rc, out))

        # No database yet in a read-only directory: the directory and the user are named too.
        missing = os.path.join(dbdir, 'new.db')
        rc, out = start_as(zones, missing, *extra)
        line = one_error(t, rc, out, 'start-up with a new database in a read-only directory: '
                         'exit 1, one message naming the directory', dbdir, 'write')
        rc, out = g.run_tool([g.GSLBD, '--check-config', '--zones', zones, '--db', missing] +
                             list(extra))
        t.ok(rc == 1 and line is not None and line in errors(out),
             '--check-config: a new database in a read-only directory is exit 1 with the '
             'start-up message', '%r\n%s' % (rc, out))
    finally:
        os.chmod(os.path.join(top, 'ro'), 0o755)
        shutil.rmtree(top, ignore_errors=True)


def test_help(t):
    rc, out = g.run_tool([g.GSLBD, '--help'])
    text = ' '.join(out.split())
    t.ok(rc == 0 and 'SIGHUP reloads the zones and the geo file' in text,
         '--help: SIGHUP reloads the geo file too', out)
    t.ok('geo file' in text.split('--check-config', 1)[-1].split('-V,')[0],
         '--help: --check-config names the geo file', out)


def main(t):
    e = Env()
    try:
        test_geo_startup(t, e)
        test_geo_reload(t, e)
        test_db(t, e)
        test_ca_file(t, e)
        test_user(t, e)
        test_db_owner(t, e)
        test_db_readonly_dir(t, e)
        test_help(t)
    finally:
        shutil.rmtree(e.tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
