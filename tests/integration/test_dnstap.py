#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""--dnstap (README "Query log"): the query log of a real gslbd, read by fstrm_capture.

Each query sent over UDP and TCP must come back from the capture file as one AUTH_QUERY and one
AUTH_RESPONSE with the bytes the client sent and received, its address and port and the transport,
both when the file is decoded here (Frame Streams and protobuf by hand) and when dnstap-read(1)
prints it.  A capture started after gslbd is connected to; one killed mid-stream is connected to
again once back, and no answer is lost meanwhile; a reader that accepts and never reads, or reads
the handshake and then nothing, never delays an answer: the records are dropped and counted in
gslbd_dnstap_dropped_total.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.message  # noqa: E402

import gslbtest as g  # noqa: E402

FSTRM_CAPTURE = shutil.which('fstrm_capture') or '/usr/bin/fstrm_capture'
DNSTAP_READ = shutil.which('dnstap-read') or '/usr/bin/dnstap-read'
CONTENT_TYPE = b'protobuf:dnstap.Dnstap'
AUTH_QUERY, AUTH_RESPONSE = 1, 2
UDP, TCP = 1, 2
INET, INET6 = 1, 2
WIRE_MAX = 1532        # TAP_WIRE_MAX in src/server/tap_ring.h
NAMES = ['example.test.', 'www.example.test.', 'nothere.example.test.', 'mail.example.test.']


# ---------------------------------------------------------------------------------------------
# Frame Streams and protobuf, decoded by hand

def frames(data):
    """A Frame Streams file -> (content types of its START frame, [data frame payloads]).
    A file cut short (its writer killed) ends at its last whole frame."""
    pos, ctypes, out = 0, [], []

    def u32():
        nonlocal pos
        (v,) = struct.unpack_from('!I', data, pos)
        pos += 4
        return v
    while pos + 8 <= len(data):
        n = u32()
        if n:
            if pos + n > len(data):
                break
            out.append(data[pos:pos + n])
            pos += n
            continue
        clen = u32()
        end = pos + clen
        if end > len(data):
            break
        ctype = u32()
        while pos < end:
            ftype, flen = u32(), u32()
            if ctype == 2 and ftype == 1:     # START: content type
                ctypes.append(data[pos:pos + flen])
            pos += flen
        pos = end
    return ctypes, out


def pb_fields(buf):
    """A protobuf message -> {field number: [values]} (varints as ints, the rest as bytes)."""
    pos, out = 0, {}

    def varint():
        nonlocal pos
        v = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v
    while pos < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
        elif wt == 1:
            v = struct.unpack_from('<Q', buf, pos)[0]
            pos += 8
        elif wt == 5:
            v = struct.unpack_from('<I', buf, pos)[0]
            pos += 4
        elif wt == 2:
            n = varint()
            v = buf[pos:pos + n]
            pos += n
        else:
            raise ValueError('wire type %d' % wt)
        out.setdefault(num, []).append(v)
    return out


def records(path):
    """The capture file as a list of dicts, one per dnstap message (the schema's field names)."""
    with open(path, 'rb') as f:
        ctypes, payloads = frames(f.read())
    recs = []
    names = {1: 'type', 2: 'socket_family', 3: 'socket_protocol', 4: 'query_address',
             5: 'response_address', 6: 'query_port', 7: 'response_port', 8: 'query_time_sec',
             9: 'query_time_nsec', 10: 'query_message', 12: 'response_time_sec',
             13: 'response_time_nsec', 14: 'response_message'}
    for p in payloads:
        top = pb_fields(p)
        msg = pb_fields(top[14][0]) if 14 in top else {}
        r = {names[k]: v[0] for k, v in msg.items() if k in names}
        r['identity'] = top.get(1, [None])[0]
        r['version'] = top.get(2, [None])[0]
        r['dnstap_type'] = top.get(15, [None])[0]
        recs.append(r)
    return ctypes, recs


# ---------------------------------------------------------------------------------------------
# Readers

class Capture:
    """fstrm_capture on a unix socket, writing a file; stopped by PID, bounded in time."""

    def __init__(self, sock, out, lifetime=90):
        self.sock, self.out = sock, out
        self.log = open(out + '.log', 'wb')
        self.proc = subprocess.Popen([FSTRM_CAPTURE, '-t', CONTENT_TYPE.decode(), '-u', sock,
                                      '-w', out], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, preexec_fn=g._pdeathsig)
        self.timer = threading.Timer(lifetime, self.kill)
        self.timer.daemon = True
        self.timer.start()
        g.wait_for(lambda: os.path.exists(sock) or self.proc.poll() is not None, 5)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM (the file is closed cleanly); the exit status."""
        self.timer.cancel()
        rc = g.terminate(self.proc)
        self.log.close()
        return rc


class SilentReader:
    """A unix socket server that accepts and then never reads (handshake=False), or answers
    the Frame Streams handshake and then never reads again (handshake=True)."""

    def __init__(self, path, handshake):
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.handshake = handshake
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _control(self, c):
        """Read one control frame: its type."""
        esc, n = struct.unpack('!II', g.recv_exact(c, 8))
        body = g.recv_exact(c, n)
        return struct.unpack_from('!I', body)[0]

    def _run(self):
        self.srv.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            if self.handshake:
                try:
                    c.settimeout(5)
                    if self._control(c) == 4:      # READY
                        body = struct.pack('!III', 1, 1, len(CONTENT_TYPE)) + CONTENT_TYPE
                        c.sendall(struct.pack('!II', 0, len(body)) + body)   # ACCEPT
                        self._control(c)           # START
                except (OSError, TypeError, struct.error):
                    pass

    def close(self):
        self.stopping = True
        self.srv.close()
        self.thread.join(2)
        for c in self.conns:
            c.close()


# ---------------------------------------------------------------------------------------------
# Helpers

def start_gslbd(sock, extra=()):
    """gslbd with --dnstap sock and --metrics, nothing queried before the test's own queries."""
    mport = g.free_port(False)
    d = g.Gslbd(extra_args=['--dnstap', sock, '--metrics', '127.0.0.1:%d' % mport] + list(extra),
                wait_zone=None)
    d.metrics_port = mport
    d.start()
    g.wait_for(lambda: 'serving' in d.stderr() or not d.alive(), 10)
    if 'serving' not in d.stderr():
        raise RuntimeError('gslbd did not start:\n' + d.stderr())
    return d


def log_count(d, text):
    return d.stderr().count(text)


def wait_connected(d, n=1, timeout=10):
    return g.wait_for(lambda: log_count(d, 'dnstap: writing the query log') >= n, timeout)


def dropped(d):
    """gslbd_dnstap_dropped_total by reason, or None when the scrape failed."""
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % d.metrics_port,
                                    timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for m in re.finditer(r'^gslbd_dnstap_dropped_total\{reason="(\w+)"\} (\d+)$', text, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


def udp_query(addr, name, qtype='A'):
    """One UDP query from a socket of its own: (wire sent, wire received or None, client port)."""
    q = g.make_query(name, qtype, edns=0).to_wire()
    s = socket.socket(g._family(addr), socket.SOCK_DGRAM)
    try:
        s.bind((addr[0], 0))
        port = s.getsockname()[1]
        return q, g.udp_raw(q, addr, 2.0, sock=s), port
    finally:
        s.close()


def tcp_queries(addr, wires):
    """Several queries over one TCP connection: ([(sent, received)], client port)."""
    s = socket.create_connection(addr, timeout=3)
    try:
        port = s.getsockname()[1]
        out = []
        for w in wires:
            s.sendall(struct.pack('!H', len(w)) + w)
            out.append((w, g.tcp_read_msg(s)))
        return out, port
    finally:
        s.close()


def blast(addr, n, max_s, at=None):
    """n UDP queries, one after the other from one socket: (answered, slowest answer in s).
    at=(k, fn): fn() is called before query k."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answered, slowest = 0, 0.0
    try:
        for i in range(n):
            if at and i == at[0]:
                at[1]()
            q = g.make_query(NAMES[i % len(NAMES)], 'A', qid=i & 0xffff).to_wire()
            t0 = time.monotonic()
            if g.udp_raw(q, addr, max_s, sock=s) is not None:
                answered += 1
            slowest = max(slowest, time.monotonic() - t0)
    finally:
        s.close()
    return answered, slowest


# ---------------------------------------------------------------------------------------------
# The tests

def test_log(t, tmp):
    """N UDP and M TCP queries: each one logged once, both halves, exactly as sent and received."""
    sock, out = os.path.join(tmp, 'log.sock'), os.path.join(tmp, 'log.tap')
    cap = Capture(sock, out)
    d = start_gslbd(sock)
    t.ok(wait_connected(d), 'gslbd connects to fstrm_capture', d.stderr())
    sent = []   # (transport, family, client port, query wire, response wire)
    families = [4, 6] if d.v6 else [4]
    for i in range(30):
        fam = families[i % len(families)]
        q, r, port = udp_query(d.addr(fam), NAMES[i % len(NAMES)], ['A', 'AAAA', 'SOA'][i % 3])
        sent.append((UDP, fam, port, q, r))
    for c in range(4):
        fam = families[c % len(families)]
        wires = [g.make_query(NAMES[(c + k) % len(NAMES)], 'A', edns=0).to_wire()
                 for k in range(5)]
        pairs, port = tcp_queries(d.addr(fam), wires)
        for q, r in pairs:
            sent.append((TCP, fam, port, q, r))
    # One query whose query and response together are over WIRE_MAX: dropped, and counted.
    pad = dns.edns.GenericOption(65001, b'\0' * WIRE_MAX)
    big = g.make_query('www.example.test.', 'A', edns=0, options=[pad]).to_wire(max_size=65535)
    big_pairs, _ = tcp_queries(d.addr4, [big])
    t.ok(all(r is not None for *_, r in sent) and big_pairs[0][1] is not None,
         'every query answered (%d)' % (len(sent) + 1))
    drops = dropped(d)
    t.eq(drops, {'full': 0, 'too_large': 1, 'no_reader': 0},
         'gslbd_dnstap_dropped_total: only the oversized one')
    d.check_stop(t)
    t.eq(cap.stop(), 0, 'fstrm_capture stops cleanly')

    ctypes, recs = records(out)
    t.eq(ctypes, [CONTENT_TYPE], 'the stream is protobuf:dnstap.Dnstap')
    queries = [r for r in recs if r.get('type') == AUTH_QUERY]
    responses = [r for r in recs if r.get('type') == AUTH_RESPONSE]
    t.eq((len(queries), len(responses), len(recs)), (len(sent), len(sent), 2 * len(sent)),
         'one AUTH_QUERY and one AUTH_RESPONSE per query, nothing else')
    host = socket.gethostname().encode()
    t.ok(all(r['identity'] == host and r['version'] == b'gslbd ' + version().encode()
             and r['dnstap_type'] == 1 for r in recs),
         'identity is the host name, version "gslbd VERSION"',
         repr(recs[0] if recs else None))

    def key(r, wire_field):
        return (r.get('socket_protocol'), r.get('query_port'), r.get(wire_field))
    qi = {key(r, 'query_message'): r for r in queries}
    ri = {}
    for r in responses:
        ri.setdefault((r.get('socket_protocol'), r.get('query_port')), []).append(r)
    bad = []
    for proto, fam, port, q, resp in sent:
        r = qi.get((proto, port, q))
        addr = socket.inet_pton(socket.AF_INET if fam == 4 else socket.AF_INET6,
                                d.addr(fam)[0])
        want = {'socket_family': INET if fam == 4 else INET6, 'query_address': addr,
                'response_address': addr, 'response_port': d.port}
        if r is None or any(r.get(k) != v for k, v in want.items()):
            bad.append(('query', proto, port, r))
            continue
        match = [x for x in ri.get((proto, port), []) if x.get('response_message') == resp]
        if len(match) != 1 or any(match[0].get(k) != v for k, v in want.items()):
            bad.append(('response', proto, port, match))
            continue
        x = match[0]
        qt = x['query_time_sec'] + x['query_time_nsec'] / 1e9
        rt = x['response_time_sec'] + x['response_time_nsec'] / 1e9
        if not (qt <= rt < qt + 2 and abs(qt - time.time()) < 120):
            bad.append(('times', qt, rt))
    t.ok(not bad, 'each query and response: the bytes, addresses, ports and transport sent',
         '\n'.join(repr(b) for b in bad[:5]))
    t.eq(sum(1 for r in queries if r.get('socket_protocol') == TCP), 20, '20 over TCP')

    # dnstap-read's reading of the same file.
    p = subprocess.run([DNSTAP_READ, '-y', out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    y = p.stdout.decode('utf-8', 'replace')
    t.eq(p.returncode, 0, 'dnstap-read -y reads the file')
    t.eq((y.count('type: AUTH_QUERY'), y.count('type: AUTH_RESPONSE')), (len(sent), len(sent)),
         'dnstap-read: as many AUTH_QUERY and AUTH_RESPONSE')
    t.eq(y.count('socket_protocol: TCP'), 40, 'dnstap-read: 20 queries and responses over TCP')
    ports = set(int(m) for m in re.findall(r'query_port: (\d+)', y))
    t.ok(ports == set(s[2] for s in sent), 'dnstap-read: the client ports')
    t.eq(y.count('response_port: %d' % d.port), 2 * len(sent), "dnstap-read: gslbd's port")


def version():
    p = subprocess.run([g.GSLBD, '--version'], stdout=subprocess.PIPE, timeout=10)
    return p.stdout.decode().split()[-1]


def test_reconnect(t, tmp):
    """No reader at first, then one, then killed mid-stream, then back: answers never stop."""
    sock = os.path.join(tmp, 're.sock')
    d = start_gslbd(sock)
    t.ok(g.wait_for(lambda: 'cannot write to %s' % sock in d.stderr(), 5),
         'no reader yet: said in the log', d.stderr())
    answered, _ = blast(d.addr4, 20, 1.0)
    t.eq(answered, 20, 'answered without a reader')
    t.ok(g.wait_for(lambda: (dropped(d) or {}).get('no_reader', 0) >= 20, 5),
         'those 20 counted as dropped (no_reader)', repr(dropped(d)))
    time.sleep(2.5)   # several connection attempts
    t.eq(log_count(d, 'cannot write to'), 1, 'the outage is logged once')

    out1 = os.path.join(tmp, 're1.tap')
    cap = Capture(sock, out1)
    t.ok(wait_connected(d), 'a capture started after gslbd is connected to', d.stderr())
    answered, _ = blast(d.addr4, 100, 1.0)
    t.eq(answered, 100, '100 answered with the reader')
    # Kill the reader mid-stream, while queries keep coming.
    answered, slowest = blast(d.addr4, 1500, 1.0, at=(500, cap.kill))
    cap.stop()
    t.eq(answered, 1500, 'every query answered while the reader was killed')
    t.ok(slowest < 0.5, 'none of them delayed (slowest %.3f s)' % slowest)
    t.ok(g.wait_for(lambda: 'lost the reader at' in d.stderr(), 5),
         'the lost reader is logged', d.stderr())
    before = dropped(d) or {}
    answered, _ = blast(d.addr4, 50, 1.0)
    t.ok(g.wait_for(lambda: (dropped(d) or {}).get('no_reader', 0) >=
                    before.get('no_reader', 0) + 50, 5),
         'queries while the reader is gone are counted (no_reader)', repr(dropped(d)))
    # What the killed capture wrote is whatever its buffered file writer flushed: only whole.
    _, recs = records(out1)
    t.ok(all(r.get('type') in (AUTH_QUERY, AUTH_RESPONSE) for r in recs),
         'the killed capture file holds whole messages only (%d)' % len(recs))

    out2 = os.path.join(tmp, 're2.tap')
    if os.path.exists(sock):
        os.unlink(sock)
    cap2 = Capture(sock, out2)
    t.ok(wait_connected(d, 2, 10), 'connected again once a reader is back', d.stderr())
    answered, _ = blast(d.addr4, 40, 1.0)
    t.eq(answered, 40, 'answered with the new reader')
    d.check_stop(t)
    cap2.stop()
    _, recs = records(out2)
    t.eq((sum(1 for r in recs if r.get('type') == AUTH_QUERY),
          sum(1 for r in recs if r.get('type') == AUTH_RESPONSE)), (40, 40),
         'the new capture holds exactly the 40 queries sent since')


def test_silent(t, tmp, handshake):
    """A reader that never reads: 2,000 answers, none delayed; the records dropped, counted."""
    what = 'answers the handshake, then never reads' if handshake else 'never reads'
    sock = os.path.join(tmp, 'silent%d.sock' % handshake)
    reader = SilentReader(sock, handshake)
    d = start_gslbd(sock)
    try:
        if handshake:
            t.ok(wait_connected(d), 'the reader that %s takes the handshake' % what,
                 d.stderr())
        t0 = time.monotonic()
        answered, slowest = blast(d.addr4, 2000, 1.0)
        took = time.monotonic() - t0
        t.eq(answered, 2000, 'reader that %s: all 2,000 queries answered' % what)
        t.ok(slowest < 0.5, 'none delayed (slowest %.3f s, all in %.1f s)' % (slowest, took))
        drops = dropped(d) or {}
        t.ok(sum(drops.values()) > 0 and drops.get('too_large') == 0,
             'records dropped and counted: %r' % drops)
        if handshake:
            t.ok(drops.get('full', 0) > 0, 'the writer waits on the reader: the ring fills')
        t0 = time.monotonic()
        d.check_stop(t)
        t.ok(time.monotonic() - t0 < 6, 'and gslbd stops promptly (%.1f s)'
             % (time.monotonic() - t0))
    finally:
        reader.close()


def test_options(t, tmp):
    """dnstap = PATH in the -c file; a path too long for a unix socket stops start-up."""
    sock, out = os.path.join(tmp, 'conf.sock'), os.path.join(tmp, 'conf.tap')
    conf = os.path.join(tmp, 'gslbd.conf')
    with open(conf, 'w') as f:
        f.write('dnstap = %s\n' % sock)
    cap = Capture(sock, out)
    d = g.Gslbd(extra_args=['-c', conf], wait_zone=None).start()
    t.ok(wait_connected(d), 'dnstap = PATH in the configuration file', d.stderr())
    d.check_stop(t)
    cap.stop()
    long_path = '/tmp/' + 'x' * 120 + '.sock'
    p = subprocess.run([g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--zones',
                        g.ZONES, '--db', os.path.join(tmp, 'long.db'), '--dnstap', long_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    err = p.stderr.decode('utf-8', 'replace')
    t.ok(p.returncode == 1 and 'a unix socket path is at most 107 bytes' in err,
         'a --dnstap path too long for a unix socket: exit 1 and why', err)


def main(t):
    for tool in (FSTRM_CAPTURE, DNSTAP_READ):
        if not os.access(tool, os.X_OK):
            g.skip_all('%s is missing (setup.sh installs fstrm-bin and bind9-utils)' % tool)
    tmp = tempfile.mkdtemp(prefix='gslbtap-')
    try:
        test_log(t, tmp)
        test_reconnect(t, tmp)
        test_silent(t, tmp, False)
        test_silent(t, tmp, True)
        test_options(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
