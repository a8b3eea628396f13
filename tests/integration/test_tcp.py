#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DNS over TCP (RFC 7766) against a running gslbd: pipelining, idle timeout, message deadline,
connection limit."""

import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

NAMES = ['www.example.test', 'mail.example.test', 'example.test', 'nothere.example.test',
         'alias.example.test', 'foo.wild.example.test', 'bigtxt.example.test',
         'hugetxt.example.test']


# --tcp-clients for this script: 300 connections must make gslbd close some.  Used to stop
# polling early, not as a check (test_tcp_limits.py checks the limits themselves).
TOTAL_LIMIT = 256


def frame(q):
    w = q.to_wire()
    return struct.pack('!H', len(w)) + w


def query_on(s, q):
    s.sendall(frame(q))
    data = g.tcp_read_msg(s)
    if data is None:
        return None
    msg, _ = g.parse(data)
    return msg


def wait_until(when):
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def wait_closed(s, until):
    """Seconds (monotonic) when the peer closed s, or None if still open at until."""
    while True:
        left = until - time.monotonic()
        if g.is_closed(s, max(0.0, min(left, 0.2))):
            return time.monotonic()
        if left <= 0:
            return None


def trickle(addr, res):
    """One byte every 3 s of a frame announcing 64 bytes: each is activity, none completes it."""
    s = socket.create_connection(addr, timeout=3)
    data = b'\x00\x40' + b'\x00' * 64
    t0 = time.monotonic()
    closed = None
    for i in range(7):
        if i:
            closed = wait_closed(s, t0 + 3 * i)
            if closed is not None:
                break
        try:
            s.send(data[i:i + 1])
        except OSError:
            closed = time.monotonic()
            break
        if i == 0:
            t0 = time.monotonic()
    if closed is None:
        closed = wait_closed(s, t0 + 19)
    s.close()
    res['trickle'] = None if closed is None else closed - t0


def pieces(addr, res):
    """A query in four pieces over 8 s: slow, but whole within 10 s of its first byte."""
    s = socket.create_connection(addr, timeout=3)
    w = frame(g.make_query('www.example.test', 'A', qid=4242))
    cuts = [0, 1, 7, len(w) - 3, len(w)]
    t0 = time.monotonic()
    try:
        for i, at in enumerate((0, 3, 6, 8)):
            wait_until(t0 + at)
            s.sendall(w[cuts[i]:cuts[i + 1]])
        s.settimeout(3)
        data = g.tcp_read_msg(s)
        m, _ = g.parse(data) if data else (None, None)
        res['pieces'] = m is not None and m.id == 4242 and m.rcode() == dns.rcode.NOERROR
    except OSError as e:
        res['pieces'] = e
    s.close()


def idle_then_slow(addr, res):
    """Answered, 7 s idle, then a query whose two halves are 7 s apart: the message's own 10 s
    count from its first byte, not from the last answer or the connection's start."""
    s = socket.create_connection(addr, timeout=3)
    got = []
    try:
        got.append(query_on(s, g.make_query('www.example.test', 'A', qid=1)))
        t0 = time.monotonic()
        w = frame(g.make_query('mail.example.test', 'A', qid=2))
        wait_until(t0 + 7)
        s.sendall(w[:5])
        wait_until(t0 + 14)
        s.sendall(w[5:])
        data = g.tcp_read_msg(s)
        got.append(g.parse(data)[0] if data else None)
        # Idle between messages as before: 8 s of silence, then one more query.
        wait_until(time.monotonic() + 8)
        got.append(query_on(s, g.make_query('example.test', 'SOA', qid=3)))
    except OSError as e:
        got.append(e)
    s.close()
    res['idle_then_slow'] = [getattr(m, 'id', m) for m in got]


def message_deadline_start(addr):
    """A DNS message must arrive whole within 10 s of its first byte (README, gslbd(8)): three
    clients, each on its own thread, run while the idle timeout is checked."""
    res = {}
    threads = [threading.Thread(target=f, args=(addr, res), daemon=True)
               for f in (trickle, pieces, idle_then_slow)]
    for th in threads:
        th.start()
    return threads, res


def message_deadline_check(t, threads, res):
    for th in threads:
        th.join(40)
    t.diag('message deadline: %r' % res)
    t.ok(res.get('trickle') is not None and 9 <= res['trickle'] <= 13.5,
         'a client sending one byte every 3 s is closed 9-13.5 s after its first byte',
         'closed after %r s' % res.get('trickle'))
    t.eq(res.get('pieces'), True, 'a query sent in four pieces over 8 s is answered')
    t.eq(res.get('idle_then_slow'), [1, 2, 3],
         'after 7 s idle, a query whose halves come 7 s apart is answered; 8 s idle is still '
         'fine between messages')


def main(t):
    # The limits this script checks: every connection from 127.0.0.1, so no limit per address.
    srv = g.Gslbd(extra_args=['--tcp-clients', str(TOTAL_LIMIT), '--tcp-clients-per-ip',
                              '0']).start()
    t.on_fail.append(lambda: srv.dump(t))
    addr = srv.addr4

    # ---- pipelining: all queries in one send, answers in order with matching IDs
    qs = [g.make_query(n, 'TXT' if 'txt' in n else 'A', qid=1000 + i) for i, n in enumerate(NAMES)]
    s = socket.create_connection(addr, timeout=3)
    s.sendall(b''.join(frame(q) for q in qs))
    got = []
    try:
        for _ in qs:
            data = g.tcp_read_msg(s)
            if data is None:
                break
            m, err = g.parse(data)
            got.append((m.id, m.question[0].name.to_text()) if m else err)
    except OSError as e:
        got.append(str(e))
    want = [(q.id, q.question[0].name.to_text()) for q in qs]
    t.eq(got, want, 'pipelined queries in one send answered in order, IDs match')

    # ---- 100 queries on one connection (50 one by one, 50 pipelined)
    problems = []
    for i in range(50):
        q = g.make_query(NAMES[i % 6], 'A', qid=i)
        m = query_on(s, q)
        if m is None or m.id != i or m.question[0].name != q.question[0].name:
            problems.append('query %d: %s' % (i, m and m.to_text()))
    batch = [g.make_query(NAMES[i % 6], 'AAAA', qid=5000 + i) for i in range(50)]
    s.sendall(b''.join(frame(q) for q in batch))
    for q in batch:
        data = g.tcp_read_msg(s)
        m, _ = g.parse(data) if data else (None, None)
        if m is None or m.id != q.id:
            problems.append('pipelined %d: %s' % (q.id, m and m.id))
            break
    s.close()
    t.ok(not problems, '100 queries on one connection all answered', '\n'.join(problems[:5]))

    # ---- many connections at once: new ones keep being served, the oldest idle go first
    conns = []
    failed_connect = 0
    for i in range(300):
        try:
            c = socket.create_connection(addr, timeout=3)
            conns.append(c)
        except OSError:
            failed_connect += 1
    t.ok(failed_connect == 0, '300 connections opened', '%d connects failed' % failed_connect)
    m = None
    try:
        n = socket.create_connection(addr, timeout=3)
        m = query_on(n, g.make_query('www.example.test', 'A'))
        n.close()
    except OSError as e:
        t.diag('new connection: %s' % e)
    t.ok(m is not None and m.rcode() == dns.rcode.NOERROR,
         'a new connection is answered while 300 are open')
    # Give the server a moment to act on every accept, then see who was closed.
    deadline = time.monotonic() + 2
    closed = []
    while time.monotonic() < deadline:
        closed = [i for i, c in enumerate(conns) if g.is_closed(c)]
        if len(closed) >= 300 - TOTAL_LIMIT:
            break
        time.sleep(0.1)
    t.diag('%d of 300 idle connections closed by the server: %s' % (len(closed), closed[:60]))
    t.ok(len(closed) >= 1, 'the server closed idle connections to stay within its limit')
    t.ok(all(i < 200 for i in closed), 'the closed ones are among the oldest',
         'closed: %s' % closed)
    late_ok = 0
    for c in conns[-20:]:
        try:
            mm = query_on(c, g.make_query('mail.example.test', 'A'))
            late_ok += mm is not None and mm.rcode() == dns.rcode.NOERROR
        except OSError:
            pass
    t.eq(late_ok, 20, 'the 20 newest connections are still served')
    for c in conns:
        c.close()

    # ---- kdig and dig keeping one connection open for several queries
    rc, out = g.run_tool(['kdig', '@127.0.0.1', '-p', str(srv.port), '+tcp', '+keepopen',
                          'www.example.test', 'A', 'mail.example.test', 'A', 'example.test',
                          'SOA', 'nothere.example.test', 'A'])
    t.ok(rc == 0 and '192.0.2.10' in out and '192.0.2.25' in out and '2024010101' in out
         and out.count('NXDOMAIN') >= 1 and out.count('NOERROR') >= 3,
         'kdig +tcp +keepopen: four queries on one connection', out)
    rc, out = g.run_tool(['dig', '@127.0.0.1', '-p', str(srv.port), '+tcp', '+keepopen',
                          'www.example.test', 'A', 'example.test', 'MX'])
    t.ok(rc == 0 and '192.0.2.10' in out and 'mail.example.test' in out,
         'dig +tcp +keepopen: two queries', out)

    # ---- idle timeout: ~10 s; a connection in use stays open; the message deadline alongside
    deadline_threads, deadline_res = message_deadline_start(addr)
    idle = socket.create_connection(addr, timeout=3)
    t_idle = time.monotonic()
    fresh = socket.create_connection(addr, timeout=3)
    m = query_on(fresh, g.make_query('www.example.test', 'A'))
    t_fresh = time.monotonic()
    busy = socket.create_connection(addr, timeout=3)
    busy_ok = True
    closed_idle = closed_fresh = None
    next_busy = time.monotonic()
    while time.monotonic() - t_idle < 14:
        now = time.monotonic()
        if now >= next_busy:
            mm = query_on(busy, g.make_query('www.example.test', 'A'))
            busy_ok = busy_ok and mm is not None
            next_busy = now + 2
        if closed_idle is None and g.is_closed(idle, 0.05):
            closed_idle = time.monotonic() - t_idle
        if closed_fresh is None and g.is_closed(fresh, 0.05):
            closed_fresh = time.monotonic() - t_fresh
        if closed_idle is not None and closed_fresh is not None:
            break
    t.ok(closed_idle is not None and 8 <= closed_idle <= 13,
         'a connection with no query is closed after 8-13 s', 'closed after %r s' % closed_idle)
    t.ok(closed_fresh is not None and 8 <= closed_fresh <= 13,
         'a connection idle after one answer is closed after 8-13 s',
         'closed after %r s' % closed_fresh)
    t.ok(busy_ok and not g.is_closed(busy), 'a connection with a query every 2 s stays open')
    for c in (idle, fresh, busy):
        c.close()

    message_deadline_check(t, deadline_threads, deadline_res)

    t.ok(srv.alive(), 'gslbd still running')
    srv.check_stop(t)


if __name__ == '__main__':
    g.run(main)
