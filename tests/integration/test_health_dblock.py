#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The database write-locked by another process does not touch the health checks (README "Health checks" and "Metrics").

gslbd checks 16 healthy targets at interval 1 s, timeout 0.2 s: 12 tcp checks on listeners of
this script, 4 http checks on tests/backend.py.  Another process then holds BEGIN EXCLUSIVE on the
database for LOCK_S seconds, as `sqlite3 gslb.db 'BEGIN EXCLUSIVE'`, a `.backup`, a VACUUM or a
large `gslbctl apply` would.  No probe may fail, no target go down and no answer lose a member
meanwhile; the results of those seconds are written once the lock is released; the failure to
write is logged once, and once more when it clears, not every second.
"""

import os
import random
import selectors
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

BACKEND = os.path.join(g.SRCDIR, 'tests', 'backend.py')
PY = sys.executable or '/usr/bin/python3'
ZONE_NAME = 'dblock.test.'
ZONE = """\
$TTL 3600
$ORIGIN dblock.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
"""
CHECK = ['--interval', '1', '--timeout', '0.2', '--rise', '2', '--fall', '2']
TCP_ADDRS = ['127.0.0.%d' % (101 + i) for i in range(12)]
HTTP_ADDRS = ['127.0.0.%d' % (121 + i) for i in range(4)]
LOCK_S = 7

_procs = []


class TcpListeners:
    """One port listening on each of addrs; a thread accepts and closes (a passing tcp check)."""

    def __init__(self, addrs):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.stop = False
        for _ in range(20):
            port = random.randint(20000, 60000)
            try:
                for a in addrs:
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    self.socks.append(s)
                    s.bind((a, port))
                    s.listen(64)
                    s.setblocking(False)
                self.port = port
                break
            except OSError:
                for s in self.socks:
                    s.close()
                self.socks = []
        else:
            raise RuntimeError('cannot listen on one port of %d loopback addresses' % len(addrs))
        for s in self.socks:
            self.sel.register(s, selectors.EVENT_READ)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            for key, _ in self.sel.select(0.2):
                try:
                    c, _ = key.fileobj.accept()
                    c.close()
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.thread.join(2)
        for s in self.socks:
            s.close()


def backend(host):
    p = subprocess.Popen([PY, BACKEND, '--host', host, '--port', '0'], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         preexec_fn=g._pdeathsig)
    _procs.append(p)
    line = p.stdout.readline().decode()
    if not line.startswith('ready '):
        raise RuntimeError('backend on %s did not start: %r' % (host, line))
    return int(line.split()[1])


def metrics(port):
    """The samples of a scrape without labels or with one, as {'name{labels}': value}."""
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, _, value = line.rpartition(' ')
            out[name] = float(value)
    return out


def answer(srv, name):
    q = g.make_query(name, 'A')
    m = g.exchange(q, srv.addr4, 'udp', timeout=1.0).msg
    if m is None:
        return None
    return {rd.to_text() for rrset in m.answer for rd in rrset}


def results_by_target(db, since_ms, until_ms):
    """{target key: (results, failed results)} stored with a time in [since_ms, until_ms]."""
    con = sqlite3.connect(db, timeout=10)
    try:
        rows = con.execute('SELECT t.key, count(*), sum(p.ok = 0) FROM probe_result p '
                           'JOIN target t ON t.id = p.target_id '
                           'WHERE p.time_ms BETWEEN ? AND ? GROUP BY t.key',
                           (since_ms, until_ms)).fetchall()
        return {k: (n, f) for k, n, f in rows}
    finally:
        con.close()


def log_lines(srv, *words):
    return [line for line in srv.stderr().splitlines() if all(w in line for w in words)]


def run_tests(t, tmp):
    listeners = TcpListeners(TCP_ADDRS)
    try:
        run_locked(t, tmp, listeners)
    finally:
        listeners.close()


def run_locked(t, tmp, listeners):
    http_ports = [backend(a) for a in HTTP_ADDRS]
    zone = os.path.join(tmp, 'dblock.test.zone')
    with open(zone, 'w') as f:
        f.write(ZONE)
    mport = g.free_port(v6=False)
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=90, v6=False,
                  extra_args=['--metrics', '127.0.0.1:%d' % mport])
    db = os.path.join(srv.tmp, 'gslb.db')

    def ctl(*args):
        rc, out, err = g.gslbctl(db, *args)
        if rc != 0:
            raise RuntimeError('gslbctl %s: exit %d: %s' % (' '.join(map(str, args)), rc, err))

    ctl('init')
    tcp_pool, http_pool = 'tcp.' + ZONE_NAME, 'http.' + ZONE_NAME
    ctl('pool', 'add', tcp_pool, '--answers', str(len(TCP_ADDRS)), '--fallback', 'none')
    for i, a in enumerate(TCP_ADDRS):
        ctl('member', 'add', tcp_pool, 't%d' % i, '--address', a)
    ctl('check', 'set', tcp_pool, '--type', 'tcp', '--port', listeners.port, *CHECK)
    ctl('pool', 'add', http_pool, '--answers', str(len(HTTP_ADDRS)), '--fallback', 'none')
    for i, (a, p) in enumerate(zip(HTTP_ADDRS, http_ports)):
        ctl('member', 'add', http_pool, 'h%d' % i, '--address', a)
        ctl('check', 'set', http_pool, '--member', 'h%d' % i, '--type', 'http', '--port', p,
            *CHECK)
    srv.start()
    t.on_fail.append(lambda: srv.dump(t))
    want = {tcp_pool: set(TCP_ADDRS), http_pool: set(HTTP_ADDRS)}
    ntargets = len(TCP_ADDRS) + len(HTTP_ADDRS)

    # Steady state: every target probed and its results stored.
    t0_ms = int(time.time() * 1000)
    stored = g.wait_for(lambda: len([n for n, f in results_by_target(db, t0_ms, 2 ** 62).values()
                                   if n >= 2]) == ntargets, 8)
    t.ok(stored, 'before the lock: every one of the %d targets has results stored' % ntargets)
    for name, addrs in want.items():
        t.eq(answer(srv, name), addrs, 'before the lock: %s answers every member' % name)
    before = metrics(mport)

    # Another process write-locks the database for LOCK_S seconds, then lets go.
    locker = subprocess.Popen(
        [PY, '-c', 'import sqlite3, sys, time\n'
         'c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n'
         'c.execute("BEGIN EXCLUSIVE")\n'
         'print("locked", flush=True)\n'
         'time.sleep(float(sys.argv[2]))\n'
         'c.execute("COMMIT")\n', db, str(LOCK_S)],
        stdout=subprocess.PIPE, preexec_fn=g._pdeathsig)
    _procs.append(locker)
    line = locker.stdout.readline().decode().strip()
    lock_ms = int(time.time() * 1000)
    if not t.eq(line, 'locked', 'another process holds BEGIN EXCLUSIVE on the database'):
        return
    partial, queries, queued = [], 0, 0
    while locker.poll() is None and time.time() * 1000 < lock_ms + LOCK_S * 1000 + 5000:
        for name, addrs in want.items():
            got = answer(srv, name)
            queries += 1
            if got != addrs:
                partial.append((round(time.time() - lock_ms / 1000, 2), name, sorted(got or ())))
        if queries % 20 == 0:
            m = metrics(mport)
            queued = max(queued, m.get('gslbd_health_results_queued', 0))
        time.sleep(0.05)
    try:
        locker.wait(5)
    except subprocess.TimeoutExpired:
        locker.kill()
        locker.wait()
    unlock_ms = int(time.time() * 1000)
    t.diag('lock held %.1f s; %d queries meanwhile' % ((unlock_ms - lock_ms) / 1000, queries))
    t.eq(locker.returncode, 0, 'the lock is released after %d s' % LOCK_S)
    t.ok(not partial, 'while the database is locked both pools answer every member '
         '(%d queries)' % queries, partial[:10])
    # Two more seconds of queries after the release.
    end = time.monotonic() + 2
    while time.monotonic() < end:
        for name, addrs in want.items():
            got = answer(srv, name)
            if got != addrs:
                partial.append((round(time.time() - lock_ms / 1000, 2), name, sorted(got or ())))
        time.sleep(0.05)
    t.ok(not partial, 'and after it is released', partial[:10])
    t.ok(queued > 0, 'gslbd_health_results_queued rises while the database is locked (max %d)'
         % queued)

    after = metrics(mport)

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)
    t.eq(delta('gslbd_probes_total{result="fail"}'), 0,
         'no probe failed during the lock (gslbd_probes_total{result="fail"})')
    t.ok(delta('gslbd_probes_total{result="ok"}') >= ntargets * (LOCK_S - 1),
         'the probes went on at their interval during the lock (%d succeeded)'
         % delta('gslbd_probes_total{result="ok"}'))
    t.eq(delta('gslbd_health_transitions_total{to="down"}'), 0, 'no target went down')
    t.eq([k for k, v in after.items() if k.startswith('gslbd_target_up') and v != 1], [],
         'every target is up after the lock')
    t.eq(log_lines(srv, 'is now down'), [], 'no "is now down" in the log')
    t.eq(after.get('gslbd_health_results_dropped_total'), 0.0,
         'gslbd_health_results_dropped_total is 0: the queue held every result')

    # The results of the locked seconds are written once the lock is gone.
    def written():
        r = results_by_target(db, lock_ms + 500, unlock_ms - 1500)
        return len(r) == ntargets and all(n >= LOCK_S - 3 for n, f in r.values()) and r
    r = g.wait_for(written, 6) or results_by_target(db, lock_ms + 500, unlock_ms - 1500)
    t.ok(len(r) == ntargets and all(n >= LOCK_S - 3 for n, f in r.values()),
         'every target\'s results of the locked seconds are stored after the release '
         '(%d targets, %s results each)' % (len(r), sorted({n for n, f in r.values()})), r)
    t.eq(sum(f for n, f in r.values()), 0, 'none of them is a failure')

    # Logged once when it starts, once when it clears.
    locked = log_lines(srv, 'health', 'database is locked')
    t.diag('\n'.join(log_lines(srv, 'health: database')))
    t.ok(len(locked) == 1, 'the write failure is logged once, not every second (%d lines)'
         % len(locked), locked)
    again = log_lines(srv, 'health', 'written again')
    t.ok(len(again) == 1, 'and its end once (%d lines)' % len(again), again)
    srv.check_stop(t)


def main(t):
    if not os.access(g.GSLBCTL, os.X_OK):
        t.skip('database lock', 'gslbctl not built: %s' % g.GSLBCTL)
        return
    tmp = tempfile.mkdtemp(prefix='gslb-dblock-')
    try:
        run_tests(t, tmp)
    finally:
        for p in _procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
