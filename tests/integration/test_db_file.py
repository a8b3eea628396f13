#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The database file itself: the modes it and its -wal and -shm are created with, and a file
replaced or deleted while gslbd runs (README, "The database file"; gslbd(8), FILES)."""

import os
import shutil
import sqlite3
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

NOERROR, NXDOMAIN = dns.rcode.NOERROR, dns.rcode.NXDOMAIN


def mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def with_umask(mask, fn, *args, **kw):
    old = os.umask(mask)
    try:
        return fn(*args, **kw)
    finally:
        os.umask(old)


def test_modes(t):
    """Created 0644 whatever the umask, and so readable by every local user, they are now 0660
    (the group may write: operators run gslbctl), or 0600 under a umask that shuts the group out;
    never world-accessible."""
    for mask, want in ((0o022, 0o660), (0o077, 0o600)):
        tmp = tempfile.mkdtemp(prefix='gslbtest-mode-')
        try:
            db = os.path.join(tmp, 'ctl.db')
            rc, out, err = with_umask(mask, g.gslbctl, db, 'init')
            t.ok(rc == 0, 'umask %03o: gslbctl init' % mask, err)
            t.eq('%04o' % (mode(db) or 0), '%04o' % want,
                 'umask %03o: gslbctl init creates the database %04o' % (mask, want))

            srv = g.Gslbd(zones=('example.test.zone',), identity=False)
            with_umask(mask, srv.start)
            try:
                own = os.path.join(srv.tmp, 'gslb.db')
                got = ['%s %s' % (x, '%04o' % mode(own + x) if mode(own + x) is not None
                                  else 'missing') for x in ('', '-wal', '-shm')]
                t.eq(got, ['%s %04o' % (x, want) for x in ('', '-wal', '-shm')],
                     'umask %03o: gslbd creates the database, -wal and -shm %04o'
                     % (mask, want))
                srv.check_stop(t)
            finally:
                srv.stop()
                srv.cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_replaced(t):
    """A database replaced or deleted under a running gslbd was ignored without a word: it kept
    the old file open and never served the new file's pools.  It now notices a new file at the
    path (another device or inode) within a second, logs it and reads the new one; a deleted
    file is logged, and the last configuration read keeps being served."""
    srv = g.Gslbd(zones=('example.test.zone',), identity=False).start()
    t.on_fail.append(lambda: srv.dump(t))
    db = os.path.join(srv.tmp, 'gslb.db')

    def ask(name):
        m = g.exchange(g.make_query(name, 'A'), srv.addr4, 'udp', timeout=0.5).msg
        if m is None:
            return None
        return m.rcode(), sorted(rd.to_text() for rrset in m.answer for rd in rrset)

    def ctl(path, *args):
        rc, out, err = g.gslbctl(path, *args)
        if rc != 0:
            t.diag('gslbctl %s: %d %s' % (' '.join(args), rc, err))
        return rc

    def logged(*words):
        return [line for line in srv.stderr().splitlines() if all(w in line for w in words)]

    ctl(db, 'pool', 'add', 'pool.example.test')
    ctl(db, 'member', 'add', 'pool.example.test', 'a', '--address', '192.0.2.71')
    took = g.time_until(lambda: ask('pool.example.test') == (NOERROR, ['192.0.2.71']), 3)
    t.ok(took is not None, 'the first file: its pool is served')

    # gslbctl init into another file, then a rename over the path (an atomic replace).
    new = os.path.join(srv.tmp, 'new.db')
    ctl(new, 'init')
    ctl(new, 'pool', 'add', 'pool.example.test')
    ctl(new, 'member', 'add', 'pool.example.test', 'b', '--address', '192.0.2.72')
    ctl(new, 'pool', 'add', 'pool2.example.test')
    ctl(new, 'member', 'add', 'pool2.example.test', 'c', '--address', '192.0.2.73')
    # A check whose probes (to a closed loopback port) must be stored in the new file.
    ctl(new, 'check', 'set', 'pool2.example.test', '--type', 'tcp', '--port', '1',
        '--target', '127.0.0.1', '--member', 'c', '--interval', '1', '--timeout', '0.2')
    os.rename(new, db)
    took = g.time_until(lambda: ask('pool.example.test') == (NOERROR, ['192.0.2.72']) and
                    ask('pool2.example.test') == (NOERROR, ['192.0.2.73']), 3)
    t.ok(took is not None and took <= 1.5,
         'database replaced by a rename: the new file\'s pools are served within a second',
         'took %r s' % took)
    g.time_until(lambda: logged(db, 'replaced'), 2)
    t.ok(logged(db, 'replaced'), 'the replacement is logged, naming the file')

    # The new file works as the database: a change made to it is answered.
    ctl(db, 'member', 'set', 'pool.example.test', 'b', '--address', '192.0.2.74')
    took = g.time_until(lambda: ask('pool.example.test') == (NOERROR, ['192.0.2.74']), 3)
    t.ok(took is not None, 'after the replacement: a change made with gslbctl is answered')
    con = sqlite3.connect(db)
    try:
        check = con.execute('PRAGMA integrity_check').fetchall()
        names = [r[0] for r in con.execute('SELECT name FROM pool ORDER BY name')]
    finally:
        con.close()
    t.eq((check, names), ([('ok',)], ['pool.example.test.', 'pool2.example.test.']),
         'the new file is intact and holds its own pools (not paired with the old -wal)')

    def probes_stored():
        con = sqlite3.connect(db, timeout=2)
        try:
            return con.execute('SELECT count(*) FROM probe_result').fetchone()[0]
        finally:
            con.close()
    g.time_until(lambda: probes_stored() > 0, 5)
    t.ok(probes_stored() > 0, 'the health writer moved to the new file: its probes are stored '
         'there')

    # Deleted: logged; the last configuration read keeps being served.
    os.unlink(db)
    g.time_until(lambda: logged(db, 'deleted'), 3)
    t.ok(logged(db, 'deleted'), 'the deletion is logged, naming the file')
    t.eq(ask('pool.example.test'), (NOERROR, ['192.0.2.74']),
         'deleted: the last configuration read is still served')

    # A new database made at the path afterwards is read.
    ctl(db, 'init')
    ctl(db, 'pool', 'add', 'pool3.example.test')
    ctl(db, 'member', 'add', 'pool3.example.test', 'd', '--address', '192.0.2.75')
    took = g.time_until(lambda: ask('pool3.example.test') == (NOERROR, ['192.0.2.75']), 3)
    t.ok(took is not None, 'a database created at the path after the deletion: its pools are '
         'served')
    t.eq(ask('pool2.example.test')[0], NXDOMAIN,
         'and the pools of the deleted file are gone')
    srv.check_stop(t)


def test_two_daemons(t):
    """Two gslbd given one database file both ran, both probed every target and stored every
    result twice, with nothing to tell whose it was.  The second now stops at start-up, naming
    the file and the first one's PID; once the first is gone (even killed), another may start."""
    first = g.Gslbd(zones=('example.test.zone',), identity=False).start()
    t.on_fail.append(lambda: first.dump(t))
    db = os.path.join(first.tmp, 'gslb.db')
    second = g.Gslbd(zones=('example.test.zone',), identity=False,
                     extra_args=['--db', db], wait_zone=None).start()
    rc = second.proc.wait(10)
    err = second.stderr()
    t.ok(rc == 1, 'a second gslbd on the same database exits 1', 'exit %r: %s' % (rc, err))
    t.ok(('database %s is in use by another gslbd (PID %d)' % (db, first.proc.pid)) in err,
         'it says the database is in use, by which PID', err)
    t.ok(first.alive() and g.exchange(g.make_query('example.test', 'SOA'), first.addr4, 'udp',
                                      timeout=1).msg is not None,
         'the first one goes on answering')
    second.stop()
    second.cleanup()
    rc, out, err = g.gslbctl(db, 'pool', 'list')
    t.ok(rc == 0, 'gslbctl still works on the claimed database', err)
    first.proc.kill()
    first.proc.wait()
    third = g.Gslbd(zones=('example.test.zone',), identity=False, extra_args=['--db', db])
    third.start()
    t.ok(third.alive(), 'after the first one was killed (SIGKILL), a gslbd starts on the file')
    third.check_stop(t, 'the third gslbd')
    first.stop()
    first.cleanup()


def main(t):
    test_modes(t)
    test_replaced(t)
    test_two_daemons(t)


if __name__ == '__main__':
    g.run(main)
