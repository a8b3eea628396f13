#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The database file itself: the modes it and its -wal and -shm are created with (README, "The
database file"; gslbd(8), FILES)."""

import os
import shutil
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402


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


def main(t):
    test_modes(t)


if __name__ == '__main__':
    g.run(main)
