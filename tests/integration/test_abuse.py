#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Abuse protection over the wire (README "On the open internet"): response rate limiting and DNS
Cookies of a real gslbd, counted with raw UDP sockets.

RRL: a burst of identical queries from one /24 gets at most RATE full answers a second plus the
burst, every --rrl-slip-th limited one truncated, the rest dropped; exempt networks and queries
with a valid server cookie never limited; TCP never limited.  Cookies: the server cookie is the
one RFC 9018 says, computed here with this script's own SipHash-2-4 from the secret file; two
gslbd with one secret accept each other's cookies; SIGHUP rotates the secret and keeps the old
one good; malformed COOKIE options get FORMERR; a bad secret file stops start-up and
--check-config.
"""

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

M64 = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def siphash24(key, msg):
    """SipHash-2-4 (Aumasson and Bernstein), written here from the paper, not from gslbd."""
    k0, k1 = struct.unpack('<QQ', key)
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d,
         k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & M64
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M64
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M64
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M64
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    end = len(msg) - len(msg) % 8
    for i in range(0, end, 8):
        m, = struct.unpack('<Q', msg[i:i + 8])
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    last = (len(msg) & 0xff) << 56
    for i, c in enumerate(msg[end:]):
        last |= c << (8 * i)
    v[3] ^= last
    rnd()
    rnd()
    v[0] ^= last
    v[2] ^= 0xff
    for _ in range(4):
        rnd()
    return struct.pack('<Q', v[0] ^ v[1] ^ v[2] ^ v[3])


def server_cookie(secret, client, t, ip):
    """RFC 9018 4.4: version 1, reserved, time, then the hash of all that with the client's."""
    head = bytes([1, 0, 0, 0]) + struct.pack('>I', t & 0xffffffff)
    return head + siphash24(secret, client + head + socket.inet_pton(
        socket.AF_INET6 if ':' in ip else socket.AF_INET, ip))


def query_wire(qname='www.example.test.', qtype=1, qid=0x4242, cookie=None, edns=True,
               cookie_opts=None):
    """A query built by hand, so malformed options can be sent too."""
    w = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    for label in qname.rstrip('.').split('.'):
        w += bytes([len(label)]) + label.encode()
    w += b'\0' + struct.pack('>HH', qtype, 1)
    if edns:
        opts = b''
        for c in (cookie_opts if cookie_opts is not None else ([cookie] if cookie else [])):
            opts += struct.pack('>HH', 10, len(c)) + c
        w += b'\0' + struct.pack('>HHIH', 41, 1232, 0, len(opts)) + opts
    return w


def reply_cookie(wire):
    """The COOKIE option's bytes in a response (None without one)."""
    msg, _ = g.parse(wire)
    if msg is None:
        return None
    for o in msg.options:
        if o.otype == 10:
            return o.to_wire() if hasattr(o, 'to_wire') else o.data
    return None


def blast(addr, wire, n, sock=None, spread=1.0, paced=False):
    """Send n copies of wire as fast as the socket takes them (paced: 32 at a time, each group
    answered before the next, so none is lost in gslbd's socket buffer), then collect replies
    for spread s.  Returns (full answers, truncated, seconds the sending took)."""
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    full = tc = 0
    t0 = time.monotonic()

    def drain(timeout):
        nonlocal full, tc
        while True:
            r, _, _ = select.select([s], [], [], timeout)
            if not r:
                return
            data = s.recv(65535)
            if len(data) >= 12 and (data[2] & 0x02):
                tc += 1
            elif len(data) >= 12:
                full += 1
            timeout = 0
    for i in range(n):
        s.sendto(wire, addr)
        if paced and i % 32 == 31:
            wait_until = time.monotonic() + 0.5
            while full + tc < i + 1 and time.monotonic() < wait_until:
                drain(0.01)
        elif i % 64 == 63:
            drain(0)
    took = time.monotonic() - t0
    deadline = time.monotonic() + spread
    while time.monotonic() < deadline:
        drain(0.05)
    if sock is None:
        s.close()
    return full, tc, took


def scrape(port, name):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'^%s (\d+)$' % name, text, re.M)
    return int(m.group(1)) if m else None


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbabuse-')
    secret = bytes(range(0x10, 0x20))
    secret_file = os.path.join(tmp, 'cookie.secret')
    with open(secret_file, 'w') as f:
        f.write('# gslbd cookie secret\n%s\n' % secret.hex())
    os.chmod(secret_file, 0o640)

    # -- RRL: one UDP thread, so the limit is the whole rate -------------------------------
    mport = g.free_port()
    d = g.Gslbd(v6=False, extra_args=['--threads', '1', '--rrl', '20', '--rrl-slip', '2',
                                      '--cookie-secret-file', secret_file,
                                      '--metrics', '127.0.0.1:%d' % mport]).start()
    wire = query_wire()
    full, tc, took = blast(d.addr4, wire, 2000)
    allowed = 20 + 20 * (took + 1.0)
    t.diag('2000 queries in %.2f s: %d full answers, %d truncated' % (took, full, tc))
    t.ok(20 <= full <= allowed, 'rate 20: a burst of 2000 gets at least 20, at most %.0f full '
         'answers (%d)' % (allowed, full))
    # The kernel may drop part of a burst before gslbd reads it: the limited ones are counted.
    dropped = scrape(mport, 'gslbd_rrl_dropped_total')
    slipped = scrape(mport, 'gslbd_rrl_slipped_total')
    limited = (dropped or 0) + (slipped or 0)
    t.ok(limited >= 100 and abs(slipped - limited / 2) <= 1,
         'slip 2: half of the %d limited responses truncated (%s), half dropped (%s)'
         % (limited, slipped, dropped))
    t.ok(slipped == tc, 'gslbd_rrl_slipped_total %s counts the truncated answers received (%d)'
         % (slipped, tc))
    # A truncated answer really is the question with TC=1: a client retries over TCP and gets it.
    q = g.make_query('www.example.test.', 'A')
    r = g.exchange(q, d.addr4, 'tcp')
    t.ok(r.msg is not None and r.msg.answer, 'over TCP the same name is answered at once')
    full_tcp = 0
    for _ in range(60):
        r = g.exchange(q, d.addr4, 'tcp')
        full_tcp += bool(r.msg is not None and r.msg.answer)
    t.ok(full_tcp == 60, 'TCP is never limited: 60 of 60 answered')
    # Another kind: NXDOMAIN for random names counts per zone, not per name.
    time.sleep(1.2)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nxfull = 0
    for i in range(300):
        s.sendto(query_wire('nx%d.example.test.' % i, qid=i), d.addr4)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.05)
        if r:
            data = s.recv(65535)
            nxfull += not (data[2] & 0x02)
    s.close()
    t.ok(nxfull <= 20 + 20 * 2.5, '300 different nonexistent names: NXDOMAIN limited per zone '
         '(%d full answers)' % nxfull)

    # -- Cookies ----------------------------------------------------------------------------
    client = bytes.fromhex('2464c4abcf10c957')
    # Each check asks a name of its own: positive answers are limited per name and type.
    r = g.exchange(query_wire('mail.example.test.', cookie=client), d.addr4)
    got = reply_cookie(r.wire) if r.wire else None
    ok = got is not None and len(got) == 24 and got[:8] == client
    if ok:
        ts, = struct.unpack('>I', got[12:16])
        want = server_cookie(secret, client, ts, '127.0.0.1')
        ok = got[8:] == want and abs(ts - time.time()) < 5
    t.ok(ok, 'a client cookie: the server cookie of RFC 9018 for this secret, address and time',
         diag='got %s' % (got.hex() if got else None))
    valid0 = scrape(mport, 'gslbd_cookies_valid_total')
    full, tc, took = blast(d.addr4, query_wire(cookie=got), 500, paced=True)
    t.ok(full == 500, 'with that valid server cookie: 500 of 500 answered, never limited '
         '(%d full, %d truncated)' % (full, tc))
    t.eq(scrape(mport, 'gslbd_cookies_valid_total') - valid0, 500,
         'gslbd_cookies_valid_total counts them')
    bad = bytearray(got)
    bad[-1] ^= 1
    full, tc, took = blast(d.addr4, query_wire(cookie=bytes(bad)), 500)
    t.ok(full < 100, 'with a forged server cookie: limited like any query (%d full)' % full)
    r = g.exchange(query_wire('ns1.example.test.', cookie=bytes(bad)), d.addr4)
    fresh = reply_cookie(r.wire) if r.wire else None
    t.ok(r.msg is not None and fresh is not None and fresh[8:] != bytes(bad[8:]),
         'a server cookie that does not verify: answered with a fresh one, no error')
    for n in (0, 7, 9, 41):
        r = g.exchange(query_wire('other%d.example.test.' % n, cookie_opts=[b'\x01' * n]),
                      d.addr4)
        t.ok(r.msg is not None and r.msg.rcode() == 1 and reply_cookie(r.wire) is None,
             'a COOKIE option of %d bytes: FORMERR, no cookie' % n)
    r = g.exchange(query_wire('two.example.test.', cookie_opts=[client, client]), d.addr4)
    t.ok(r.msg is not None and r.msg.rcode() == 1, 'two COOKIE options: FORMERR')

    # A second gslbd with the same secret accepts the first one's cookie and sends it back.
    mport2 = g.free_port()
    d2 = g.Gslbd(v6=False, extra_args=['--cookie-secret-file', secret_file,
                                       '--metrics', '127.0.0.1:%d' % mport2]).start()
    r = g.exchange(query_wire(cookie=got), d2.addr4)
    t.ok(reply_cookie(r.wire) == got and scrape(mport2, 'gslbd_cookies_valid_total') == 1,
         'another gslbd with the same secret: the cookie verifies and is sent back as it is')
    d2.stop()

    # SIGHUP with a new secret: new cookies from it, the old cookie still verifies.
    secret2 = bytes(range(0x30, 0x40))
    with open(secret_file, 'w') as f:
        f.write(secret2.hex() + '\n')
    d.signal(signal.SIGHUP)
    ok = g.wait_for(lambda: 'cookie secret replaced' in d.stderr(), 5)
    t.ok(ok, 'SIGHUP: the new secret is read and logged')
    r = g.exchange(query_wire('ns2.example.test.', cookie=client), d.addr4)
    new = reply_cookie(r.wire) if r.wire else None
    ts = struct.unpack('>I', new[12:16])[0] if new else 0
    t.ok(new is not None and new[8:] == server_cookie(secret2, client, ts, '127.0.0.1'),
         'after the rotation: cookies are made with the new secret')
    v = scrape(mport, 'gslbd_cookies_valid_total')
    r = g.exchange(query_wire(cookie=got), d.addr4)
    back = reply_cookie(r.wire) if r.wire else None
    t.ok(scrape(mport, 'gslbd_cookies_valid_total') == v + 1 and back is not None and
         back[8:] != got[8:],
         'the old secret\'s cookie: still valid for a while, replaced by a new-secret cookie')
    # A broken file on SIGHUP keeps the secrets in use.
    with open(secret_file, 'w') as f:
        f.write('not hex\n')
    d.signal(signal.SIGHUP)
    ok = g.wait_for(lambda: 'keeping the secrets in use' in d.stderr(), 5)
    r = g.exchange(query_wire(cookie=new), d.addr4)
    t.ok(ok and reply_cookie(r.wire) == new, 'a broken secret file on SIGHUP: logged, the '
         'secrets in use kept')
    d.check_stop(t)

    # -- exempt networks, and a bad secret file at start-up --------------------------------
    d = g.Gslbd(v6=False, extra_args=['--threads', '1', '--rrl', '5',
                                      '--rrl-exempt', '127.0.0.0/8']).start()
    full, tc, took = blast(d.addr4, query_wire(), 500, paced=True)
    t.ok(full == 500, '--rrl-exempt 127.0.0.0/8: 500 of 500 answered (%d)' % full)
    d.check_stop(t)
    for text, why in (('00' * 15, '32 hex digits'), ('zz' * 16, 'not a hex byte'),
                      ('%s %s %s' % (secret.hex(), secret.hex(), secret.hex()), 'more than two'),
                      ('', 'no secret')):
        with open(secret_file, 'w') as f:
            f.write(text)
        for check in (True, False):
            args = [g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--zones',
                    os.path.join(g.SRCDIR, 'tests', 'zones'), '--db',
                    os.path.join(tmp, 'x.db'), '--cookie-secret-file', secret_file]
            if check:
                args.append('--check-config')
            p = subprocess.run(args, capture_output=True, text=True, timeout=20)
            t.ok(p.returncode == 1 and why in p.stderr,
                 '%s: a secret file with %r: exit 1, "%s"' % (
                     '--check-config' if check else 'start-up', text[:20], why),
                 diag=p.stderr[-400:])
    for bad_arg in (['--rrl', '-1'], ['--rrl', '1000001'], ['--rrl-slip', '101'],
                    ['--rrl-exempt', '10.0.0.0/33'], ['--rrl-exempt', 'x']):
        p = subprocess.run([g.GSLBD] + bad_arg + ['--check-config'], capture_output=True,
                           text=True, timeout=20)
        t.ok(p.returncode == 1 and bad_arg[0] in p.stderr, '%s %s: refused' % tuple(bad_arg),
             diag=p.stderr[-300:])


if __name__ == '__main__':
    g.run(main)
