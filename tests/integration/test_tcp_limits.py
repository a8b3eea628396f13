#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TCP that a flood cannot exhaust (README "On the open internet"): --tcp-clients (when full, the
least recently active connection goes, the new one is served), --tcp-clients-per-ip across
every TCP thread (one more connection of an address is refused before any answer, never an
older one of it closed), buffers that grow only for a long message and shrink after it, an idle
connection's memory, and RFC 7828 edns-tcp-keepalive over the wire.  A real gslbd on loopback;
every connection is this script's own and closed by it.
"""

import os
import re
import socket
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402


def frame(wire):
    return struct.pack('!H', len(wire)) + wire


def ask(s, qname='www.example.test', options=None, pad=0):
    """One query on connection s; the reply (dnspython) or None when s was closed first."""
    opts = list(options or [])
    if pad:
        opts.append(dns.edns.GenericOption(12, b'\0' * pad))   # RFC 7830 padding
    q = dns.message.make_query(qname, 'A', use_edns=0, options=opts)
    try:
        s.sendall(frame(q.to_wire(max_size=65535)))
        wire = g.tcp_read_msg(s)
    except OSError:
        return None
    return dns.message.from_wire(wire) if wire else None


def connect(port, src='127.0.0.1'):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(3)
    s.connect(('127.0.0.1', port))
    return s


def metric(port, name):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5) as r:
        m = re.search(r'^%s (\d+)$' % name, r.read().decode(), re.M)
    return int(m.group(1)) if m else None


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        return int(re.search(r'^VmRSS:\s+(\d+)', f.read(), re.M).group(1))


def main(t):
    # -- --tcp-clients: the least recently active goes, the new one is served ---------------
    mport = g.free_port(False)
    d = g.Gslbd(v6=False, extra_args=['--threads', '1', '--tcp-clients', '8',
                                      '--tcp-clients-per-ip', '0', '--metrics',
                                      '127.0.0.1:%d' % mport]).start()
    conns = [connect(d.port) for _ in range(8)]
    # Activity makes a connection recent: all but the first two ask something.
    for c in conns[2:]:
        ask(c)
    n = connect(d.port)
    r = ask(n)
    t.ok(r is not None and r.rcode() == dns.rcode.NOERROR,
         '--tcp-clients 8: a 9th connection is answered')
    closed = [i for i, c in enumerate(conns) if g.wait_for(lambda c=c: g.is_closed(c), 0.5)]
    t.eq(closed, [0], 'the least recently active one (the first, never used) was closed')
    t.ok(all(ask(c) is not None for c in conns[2:]), 'the active ones are still answered')
    t.eq(metric(mport, 'gslbd_tcp_evicted_total'), 1, 'gslbd_tcp_evicted_total counts it')
    for c in conns + [n]:
        c.close()
    d.check_stop(t)

    # -- --tcp-clients-per-ip, counted across two TCP threads -------------------------------
    mport = g.free_port(False)
    d = g.Gslbd(v6=False, extra_args=['--threads', '2', '--tcp-clients-per-ip', '4',
                                      '--metrics', '127.0.0.1:%d' % mport]).start()
    conns = [connect(d.port) for _ in range(4)]
    t.ok(all(ask(c) is not None for c in conns), '4 connections of 127.0.0.1 answered')
    extra = connect(d.port)
    t.ok(ask(extra) is None, 'a 5th of 127.0.0.1: closed before any answer')
    t.ok(all(ask(c) is not None for c in conns), '... and the 4 older ones still answered')
    other = connect(d.port, src='127.0.0.2')
    t.ok(ask(other) is not None, 'another address (127.0.0.2): answered')
    t.eq(metric(mport, 'gslbd_tcp_refused_total'), 1, 'gslbd_tcp_refused_total counts the refusal')
    conns[0].close()
    time.sleep(0.3)
    again = connect(d.port)
    t.ok(ask(again) is not None, 'once one of the 4 closes, a new one of 127.0.0.1 is answered')
    for c in conns[1:] + [extra, other, again]:
        c.close()

    # -- read buffers: a long message, byte by byte, then short ones --------------------------
    c = connect(d.port)
    r = ask(c, pad=3000)
    t.ok(r is not None and r.rcode() == dns.rcode.NOERROR and r.answer,
         'a 3 KiB query (EDNS padding) on a fresh connection: answered')
    q = dns.message.make_query('mail.example.test', 'A', use_edns=0,
                               options=[dns.edns.GenericOption(12, b'\0' * 1500)])
    data = frame(q.to_wire(max_size=65535))
    for i in range(0, len(data), 97):
        c.sendall(data[i:i + 97])
        time.sleep(0.002)
    wire = g.tcp_read_msg(c)
    m = dns.message.from_wire(wire) if wire else None
    t.ok(m is not None and m.answer and m.question[0].name.to_text() == 'mail.example.test.',
         'a 1.5 KiB query sent in 97-byte pieces: answered')
    t.ok(all(ask(c, 'ns%d.example.test' % (i % 2 + 1)) is not None for i in range(10)),
         'then 10 short queries on the same connection: answered')
    # Two long queries pipelined in one write.
    q2 = [dns.message.make_query(n, 'A', use_edns=0,
                                 options=[dns.edns.GenericOption(12, b'\0' * 900)])
          for n in ('www.example.test', 'mail.example.test')]
    c.sendall(b''.join(frame(x.to_wire(max_size=65535)) for x in q2))
    got = [dns.message.from_wire(g.tcp_read_msg(c)) for _ in q2]
    t.ok([x.id for x in got] == [x.id for x in q2], 'two 900-byte queries in one write: both '
         'answered, in order')
    # RFC 7828: the idle timeout to a client that asks, over TCP only.
    r = ask(c, options=[dns.edns.GenericOption(11, b'')])
    ka = [o for o in (r.options if r else []) if o.otype == 11]
    t.ok(len(ka) == 1 and ka[0].to_wire() == struct.pack('!H', 100),
         'edns-tcp-keepalive asked: TIMEOUT 100 (the 10 s idle timeout) in the answer')
    r = ask(c, options=[dns.edns.GenericOption(11, struct.pack('!H', 50))])
    t.ok(r is not None and r.rcode() == dns.rcode.FORMERR,
         'edns-tcp-keepalive with a value in a query: FORMERR')
    c.close()
    d.check_stop(t)

    # -- an idle connection's memory ----------------------------------------------------------
    n_idle = 2000
    d = g.Gslbd(v6=False, extra_args=['--threads', '1', '--tcp-clients', str(n_idle + 100),
                                      '--tcp-clients-per-ip', '0']).start()
    warm = [connect(d.port) for _ in range(50)]
    for c in warm:
        ask(c)
    time.sleep(0.3)
    before = rss_kib(d.proc.pid)
    idle = []
    srcs = ['127.0.%d.%d' % (1 + i // 250, 1 + i % 250) for i in range(n_idle)]
    for src in srcs:
        idle.append(connect(d.port, src))
    ask(idle[-1])
    time.sleep(0.5)
    after = rss_kib(d.proc.pid)
    per = (after - before) * 1024.0 / n_idle
    t.diag('%d idle connections: RSS %d -> %d KiB, %.0f bytes each' % (n_idle, before, after,
                                                                      per))
    t.ok(per < 3 * 1024, '%d idle connections cost gslbd %.0f bytes each (under 3 KiB)'
         % (n_idle, per))
    for c in idle + warm:
        c.close()
    d.check_stop(t)


if __name__ == '__main__':
    g.run(main)
