#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The DNS worker threads: --threads N gives N UDP threads per --listen address (each blocking in
recvmmsg on its own SO_REUSEPORT socket) and N TCP threads; every UDP thread answers; a reload
reaches all of them while they wait; SIGTERM ends threads blocked in recvmmsg, idle or under a
flood of queries."""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

THREADS = 3


def tasks(pid):
    """{tid: (name, voluntary context switches)} of the process's threads."""
    out = {}
    base = '/proc/%d/task' % pid
    for tid in os.listdir(base):
        try:
            with open(os.path.join(base, tid, 'comm')) as f:
                name = f.read().strip()
            with open(os.path.join(base, tid, 'status')) as f:
                vol = next(int(line.split()[1]) for line in f
                           if line.startswith('voluntary_ctxt_switches:'))
        except (OSError, StopIteration):
            continue
        out[int(tid)] = (name, vol)
    return out


def txt_of(srv, name, sock):
    """The TXT strings of name asked over the socket sock (bound to its own source port)."""
    q = g.make_query(name, 'TXT')
    wire = g.udp_raw(q.to_wire(), srv.addr4, 1.0, sock=sock)
    msg, _ = g.parse(wire) if wire else (None, None)
    if msg is None or msg.rcode() != dns.rcode.NOERROR:
        return None
    return sorted(rd.to_text() for rrset in msg.answer for rd in rrset)


def replace_file(path, text):
    tmp = os.path.join(os.path.dirname(path), '.tmp-' + os.path.basename(path))
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, path)


def thread_names(pid, want, timeout=5.0):
    """The sorted thread names of pid once every name of want is among them (each thread names
    itself when it starts, which may be after the first answer), or as they are at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(n for n, _ in tasks(pid).values())
        if set(want) <= set(names) or time.monotonic() > deadline:
            return names
        time.sleep(0.02)


def test_threads(t, srv, nlisten):
    want_udp = ['udp/%d' % i for i in range(THREADS * nlisten)]
    want_tcp = ['tcp/%d' % i for i in range(THREADS)]
    names = thread_names(srv.proc.pid, want_udp + want_tcp + ['health'])
    udp = [n for n in names if n.startswith('udp/')]
    tcp = [n for n in names if n.startswith('tcp/')]
    t.eq(sorted(udp), sorted(want_udp),
         '--threads %d with %d addresses: %d UDP threads' % (THREADS, nlisten, THREADS * nlisten))
    t.eq(sorted(tcp), sorted(want_tcp), '--threads %d: %d TCP threads' % (THREADS, THREADS))
    t.ok('health' in names, 'the health-check thread is named', names)


def test_every_udp_thread_answers(t, srv):
    """Queries from 300 source ports: SO_REUSEPORT spreads them by port over the sockets, and
    each UDP thread wakes from recvmmsg (a voluntary context switch) to answer its share."""
    before = tasks(srv.proc.pid)
    answered = 0
    for _ in range(300):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(('127.0.0.1', 0))
            if txt_of(srv, 'www.example.test', s) is not None:
                answered += 1
    t.eq(answered, 300, '300 queries from 300 source ports all answered')
    after = tasks(srv.proc.pid)
    woke = {after[tid][0]: after[tid][1] - before[tid][1]
            for tid in after if tid in before and after[tid][0].startswith('udp/')}
    # udp/N serves --listen address N % nlisten; 127.0.0.1 is the first.
    nlisten = len(woke) // THREADS
    v4 = {n: d for n, d in woke.items() if int(n.split('/')[1]) % nlisten == 0}
    t.eq(len(v4), THREADS, 'one UDP thread per worker serves 127.0.0.1')
    t.ok(all(d > 0 for d in v4.values()), 'every UDP thread of 127.0.0.1 woke to answer',
         'wake-ups: %r' % v4)
    others = {n: d for n, d in woke.items() if n not in v4}
    t.ok(all(d == 0 for d in others.values()),
         'the threads of the other address slept through them', 'wake-ups: %r' % others)


def test_reload_reaches_all(t, srv, zfile, good):
    """A reload while every UDP thread waits in recvmmsg: the old snapshot's grace period must
    not wait for them, and each one answers from the new data at once."""
    for version in (1, 2):
        replace_file(zfile, good + 'gen\tIN TXT\t"v%d"\n' % version)
        srv.signal(signal.SIGHUP)
        want = ['"v%d"' % version]
        deadline = time.monotonic() + 5
        seen = None
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(('127.0.0.1', 0))
                seen = txt_of(srv, 'gen.example.test', s)
            if seen == want:
                break
            time.sleep(0.05)
        t.eq(seen, want, 'reload %d served' % version)
        # every thread, through 100 source ports
        stale = 0
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(('127.0.0.1', 0))
                if txt_of(srv, 'gen.example.test', s) != want:
                    stale += 1
        t.eq(stale, 0, 'reload %d: 100 queries from 100 ports all see it' % version)


def test_tcp(t, srv):
    q = g.make_query('www.example.test', 'TXT')
    rep = g.exchange(q, srv.addr4, 'tcp')
    t.ok(rep.msg is not None and rep.msg.rcode() == dns.rcode.NOERROR and rep.msg.answer,
         'TCP answered by the TCP threads', rep.error)


def flood(addr, stop, sent, limit=2_000_000, seconds=10.0):
    """Send queries without waiting for answers from 8 sockets until stop is set (bounded)."""
    wire = g.make_query('www.example.test', 'TXT').to_wire()
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
    for s in socks:
        s.setblocking(False)
    t0 = time.monotonic()
    try:
        while not stop.is_set() and sent[0] < limit and time.monotonic() - t0 < seconds:
            for s in socks:
                try:
                    s.sendto(wire, addr)
                    sent[0] += 1
                except OSError:
                    pass
                try:
                    while True:
                        s.recv(2048)
                except OSError:
                    pass
    finally:
        for s in socks:
            s.close()


def timed_stop(srv):
    t0 = time.monotonic()
    rc = srv.stop()
    return rc, time.monotonic() - t0


def main(t):
    srv = g.Gslbd(extra_args=['--threads', str(THREADS)]).start()
    nlisten = 2 if srv.v6 else 1
    zfile = os.path.join(srv.zones_dir, 'example.test.zone')
    with open(zfile) as f:
        good = f.read()

    test_threads(t, srv, nlisten)
    test_every_udp_thread_answers(t, srv)
    test_reload_reaches_all(t, srv, zfile, good)
    test_tcp(t, srv)

    # SIGTERM with every thread idle: the UDP threads are blocked in recvmmsg.
    rc, took = timed_stop(srv)
    t.eq(rc, 0, 'idle: exits 0 after SIGTERM')
    t.ok(took < 3, 'idle: the UDP threads blocked in recvmmsg are woken (stopped in %.2f s)'
         % took, 'took %.2f s' % took)

    # SIGTERM during a flood of UDP queries.
    srv = g.Gslbd(extra_args=['--threads', str(THREADS)]).start()
    stop, sent = threading.Event(), [0]
    th = threading.Thread(target=flood, args=(srv.addr4, stop, sent), daemon=True)
    th.start()
    # Stop once the flood is under way (not after a fixed time: a busy machine starts it late).
    deadline = time.monotonic() + 10
    while sent[0] <= 1000 and th.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    alive = srv.alive()
    rc, took = timed_stop(srv)
    stop.set()
    th.join(15)
    t.diag('%d queries sent before and during the stop' % sent[0])
    t.ok(alive and sent[0] > 1000, 'gslbd ran under the flood')
    t.eq(rc, 0, 'flood: exits 0 after SIGTERM')
    t.ok(took < 3, 'flood: stopped in %.2f s' % took, 'took %.2f s' % took)


if __name__ == '__main__':
    g.run(main)
