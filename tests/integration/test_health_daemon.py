#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Health checks run by gslbd itself (README "Balanced names" and "Health checks", gslbctl(8)): real gslbd, gslbctl, tests/backend.py.

Every backend listens on its own 127.0.0.x address, so each member's address shows which backend it
is; the answers seen over DNS and the states gslbctl reports are checked against what the backends
were told to do.
"""

import json
import os
import random
import resource
import shutil
import socket
import sqlite3
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

import gslbtest as g  # noqa: E402
from test_health import make_certs  # noqa: E402  (module level has no side effects)

GSLBCTL = g.GSLBCTL
BACKEND = os.path.join(g.SRCDIR, 'tests', 'backend.py')
PY = '/usr/bin/python3'
ZONE_NAME = 'health.test.'
ZONE = """\
$TTL 3600
$ORIGIN health.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
"""
INTERVAL, RISE, FALL = 1, 2, 2
COMMON = ['--interval', str(INTERVAL), '--timeout', '0.5', '--rise', str(RISE),
          '--fall', str(FALL)]
HANG_TARGETS = 1000

# Checks on one target (type, address, port, Host, path) that differ in what decides the verdict:
# (backend, the check judged down, the check judged up, the down one's reason); test_same_target.
TLS = ['--type', 'https', '--host', 'localhost'] + COMMON
HTTP = ['--type', 'http', '--host', 'same.example'] + COMMON
# The backend sends "o", then "k\n" 600 ms later: only the longer timeout sees "ok".
SLOW = ['--type', 'http', '--host', 'same.example', '--match', 'ok', '--interval', '2', '--rise',
        '2', '--fall', '2']
SAME_TARGET = [
    ('ss', TLS, TLS + ['--insecure']),
    ('rd', HTTP + ['--expect', '200'], HTTP),
    ('nb', HTTP + ['--match', 'ok'], HTTP),
    ('tm', SLOW + ['--timeout', '0.25'], SLOW + ['--timeout', '1.5']),
    ('fl', HTTP[:4] + ['--interval', '1', '--timeout', '0.5', '--rise', '1', '--fall', '1'],
     HTTP[:4] + ['--interval', '1', '--timeout', '0.5', '--rise', '4', '--fall', '4']),
]
SAME_QUERY = {'tm': '?chunked=1&gap=600'}
SAME_REASON = {'ss': 'TLS: self-signed certificate', 'rd': 'HTTP 301',
               'nb': 'body did not contain "ok"', 'tm': 'timeout after 250 ms'}

_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


class Backend:
    """tests/backend.py on one loopback address; HTTPS when given a certificate and key."""

    def __init__(self, host, cert=None, key=None, mode='200', body='ok\n'):
        args = [PY, BACKEND, '--host', host, '--port', '0', '--mode', mode, '--body', body]
        if cert:
            args += ['--cert', cert, '--key', key]
        self.host = host
        self.tls = bool(cert)
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, preexec_fn=g._pdeathsig)
        _procs.append(self.p)
        line = self.p.stdout.readline().decode()
        if not line.startswith('ready '):
            raise RuntimeError('backend on %s did not start: %r' % (host, line))
        self.port = int(line.split()[1])

    def get(self, path):
        scheme = 'https' if self.tls else 'http'
        ctx = ssl._create_unverified_context() if self.tls else None
        url = '%s://%s:%d%s' % (scheme, self.host, self.port, path)
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            return r.read().decode()

    def control(self, mode):
        self.get('/_control?mode=' + urllib.request.quote(mode))

    def stats(self):
        return json.loads(self.get('/_stats'))


def closed_port(host):
    """A port nothing listens on at host: a connect is refused."""
    for _ in range(50):
        port = random.randint(20000, 60000)
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return port
        except OSError:
            pass
        finally:
            s.close()
    raise RuntimeError('no closed port found on %s' % host)


class Ctl:
    def __init__(self, db):
        self.db = db

    def run(self, *args, timeout=30):
        e = dict(os.environ)
        e.pop('GSLB_DB', None)
        p = subprocess.run([GSLBCTL, '--db', self.db] + [str(a) for a in args],
                           capture_output=True, text=True, env=e, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            raise RuntimeError('gslbctl %s: exit %d: %s' % (' '.join(map(str, args)), rc, err))
        return out

    def json(self, *args):
        return json.loads(self.ok('--json', *args))


# ---------------------------------------------------------------------------------------------
# DNS

def ask(srv, name, qtype='A', timeout=1.0):
    q = g.make_query(name, qtype)
    return g.exchange(q, srv.addr4, 'udp', timeout=timeout).msg


def addrs(m):
    """The A/AAAA addresses of an answer, as a set; None when there was no answer."""
    if m is None:
        return None
    return {rd.to_text() for rrset in m.answer
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) for rd in rrset}


def ttls(m):
    return {rrset.ttl for rrset in m.answer} if m is not None else None


def wait_dns(srv, name, pred, timeout, step=0.05):
    """Poll name until pred(address set) holds; returns (seconds waited or None, last set)."""
    t0 = time.monotonic()
    last = None
    while True:
        last = addrs(ask(srv, name, timeout=0.5))
        if last is not None and pred(last):
            return time.monotonic() - t0, last
        if time.monotonic() - t0 > timeout:
            return None, last
        time.sleep(step)


def status_addr(ctl, pool, member):
    """The first address entry of member in gslbctl status --json, or None."""
    try:
        st = ctl.json('status', pool)
    except (RuntimeError, ValueError):
        return None
    for p in st.get('pools', []):
        if p.get('name', '').rstrip('.') != pool.rstrip('.'):
            continue
        for m in p.get('members', []):
            if m.get('name') == member and m.get('addresses'):
                return m['addresses'][0]
    return None


def wait_status(ctl, pool, member, pred, timeout):
    end = time.monotonic() + timeout
    while True:
        a = status_addr(ctl, pool, member)
        if a is not None and pred(a):
            return a
        if time.monotonic() > end:
            return a
        time.sleep(0.2)


def percentile(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def query_stream(srv, names, count=2000, seconds=3.0):
    """count queries paced over seconds, one at a time; returns (latencies in ms, lost)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(srv.addr4)
    wires = []
    for i, n in enumerate(names):
        w = bytearray(g.make_query(n, 'A', qid=0).to_wire())
        wires.append(w)
    lat = []
    lost = 0
    gap = seconds / count
    t_start = time.perf_counter()
    for i in range(count):
        w = wires[i % len(wires)]
        qid = i & 0xffff
        struct.pack_into('!H', w, 0, qid)
        next_at = t_start + i * gap
        now = time.perf_counter()
        if next_at > now:
            time.sleep(next_at - now)
        t0 = time.perf_counter()
        s.send(w)
        deadline = t0 + 1.0
        got = False
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except socket.timeout:
                break
            if len(data) >= 12 and struct.unpack('!H', data[:2])[0] == qid:
                got = True
                break
        if got:
            lat.append((time.perf_counter() - t0) * 1000.0)
        else:
            lost += 1
            lat.append(1000.0)
    s.close()
    return lat, lost


# ---------------------------------------------------------------------------------------------

def configure(ctl, be, ports):
    """The pools of checks 1 to 7 (one pool per check, so each is read on its own)."""
    pool = lambda name, *o: ctl.ok('pool', 'add', name + '.' + ZONE_NAME, *o)  # noqa: E731

    def member(p, m, address, *o):
        ctl.ok('member', 'add', p + '.' + ZONE_NAME, m, '--address', address, *o)

    def check(p, m, *o):
        args = ['check', 'set', p + '.' + ZONE_NAME] + (['--member', m] if m else []) + list(o)
        ctl.ok(*args)

    # 1: rise and fall over DNS
    pool('rf', '--answers', '2', '--ttl', '30', '--degraded-ttl', '5')
    member('rf', 'a', be['a'].host)
    member('rf', 'b', be['b'].host)
    check('rf', 'a', '--type', 'http', '--port', be['a'].port, '--path', '/rf', *COMMON)
    check('rf', 'b', '--type', 'http', '--port', be['b'].port, *COMMON)
    # 2: tcp on a closed port
    pool('tcp', '--answers', '2', '--ttl', '30', '--degraded-ttl', '5')
    member('tcp', 'c', '127.0.0.21')
    member('tcp', 'd', be['d'].host)
    check('tcp', 'c', '--type', 'tcp', '--port', ports['c'], *COMMON)
    check('tcp', 'd', '--type', 'tcp', '--port', be['d'].port, *COMMON)
    # 3: a hung backend
    pool('hang', '--answers', '2')
    member('hang', 'h', be['h'].host)
    member('hang', 'k', be['k'].host)
    check('hang', 'h', '--type', 'http', '--port', be['h'].port, *COMMON)
    check('hang', 'k', '--type', 'http', '--port', be['k'].port, *COMMON)
    # 4: match
    pool('match', '--answers', '2')
    member('match', 'm', be['m'].host)
    member('match', 'n', be['n'].host)
    check('match', 'm', '--type', 'http', '--port', be['m'].port, '--match', 'ok', *COMMON)
    check('match', 'n', '--type', 'http', '--port', be['n'].port, '--match', 'all good', *COMMON)
    # 5: https, verified (u) and not (i)
    pool('tls', '--answers', '2')
    member('tls', 'u', be['u'].host)
    member('tls', 'i', be['i'].host)
    check('tls', 'u', '--type', 'https', '--port', be['u'].port, '--host', 'localhost', *COMMON)
    check('tls', 'i', '--type', 'https', '--port', be['i'].port, '--host', 'localhost',
          '--insecure', *COMMON)
    # 6: two pools, one backend, the same request
    for p in ('s1', 's2'):
        pool(p)
        member(p, 'x', be['s'].host)
        check(p, None, '--type', 'http', '--port', be['s'].port, '--path', '/shared', '--host',
              'shared.example', *COMMON)
    # 6b: a third pool whose check differs from theirs only in spelling the default expect list
    pool('s3')
    member('s3', 'x', be['s'].host)
    check('s3', None, '--type', 'http', '--port', be['s'].port, '--path', '/shared', '--host',
          'shared.example', '--expect', '200-399', *COMMON)
    # 11: checks that share a target but not their settings, each pair in both orders (by
    # creation and by name, the pair's first pool holds the first setting)
    for name, first, second in SAME_TARGET:
        for order, (pa, pb) in enumerate(((first, second), (second, first)), 1):
            for suffix, opts in (('a', pa), ('b', pb)):
                p = '%s%d%s' % (name, order, suffix)
                pool(p, '--fallback', 'none', '--ttl', '5')
                member(p, 'x', be[name].host)
                check(p, None, '--port', be[name].port, '--path',
                      '/%s%d%s' % (name, order, SAME_QUERY.get(name, '')), *opts)
    # 7: every member down, fallback all / none
    pool('fa', '--answers', '3', '--ttl', '30', '--degraded-ttl', '5', '--fallback', 'all')
    member('fa', 'x', '127.0.0.71')
    member('fa', 'y', '127.0.0.72')
    member('fa', 'z', '127.0.0.73')
    ctl.ok('member', 'state', 'fa.' + ZONE_NAME, 'z', 'down')
    check('fa', None, '--type', 'tcp', '--port', ports['fa'], *COMMON)
    pool('fn', '--ttl', '30', '--degraded-ttl', '5', '--fallback', 'none')
    member('fn', 'x', '127.0.0.74')
    check('fn', None, '--type', 'tcp', '--port', ports['fn'], *COMMON)


def test_rise_fall(t, srv, be):
    """1: a 503 leaves the answers within interval x fall + 1 s and returns after rise successes."""
    name = 'rf.' + ZONE_NAME
    a, b = be['a'].host, be['b'].host
    took, got = wait_dns(srv, name, lambda s: s == {a, b}, 3)
    t.ok(took is not None, 'rise/fall: both healthy members are answered at first', got)
    m = ask(srv, name)
    t.eq(ttls(m), {30}, 'rise/fall: the pool ttl while every member is healthy')
    be['a'].control('503')
    took_down, got = wait_dns(srv, name, lambda s: a not in s, INTERVAL * FALL + 3, step=0.02)
    limit = INTERVAL * FALL + 1
    t.ok(took_down is not None and took_down <= limit,
         'a backend switched to 503 leaves the answers within interval x fall + 1 s (%d s)'
         % limit, 'took %r s, last answer %r' % (took_down, got))
    t.ok(took_down is not None and took_down >= INTERVAL * (FALL - 1) - 0.3,
         'and not before fall failures (at least (fall - 1) x interval)', 'took %r' % took_down)
    t.eq(got, {b}, 'rise/fall: the other member is still answered')
    m = ask(srv, name)
    t.eq(ttls(m), {5}, 'rise/fall: degraded-ttl while a member is down')
    be['a'].control('200')
    took_up, got = wait_dns(srv, name, lambda s: a in s, INTERVAL * RISE + 3, step=0.02)
    limit = INTERVAL * RISE + 1
    t.ok(took_up is not None and took_up <= limit,
         'it comes back within interval x rise + 1 s (%d s)' % limit,
         'took %r s, last answer %r' % (took_up, got))
    t.ok(took_up is not None and took_up >= INTERVAL * (RISE - 1) - 0.3,
         'and not before rise successes (at least (rise - 1) x interval)', 'took %r' % took_up)
    t.diag('measured over DNS: gone %s s after the 503, back %s s after the 200 '
           '(interval %d s, fall %d, rise %d)'
           % ('%.2f' % took_down if took_down is not None else 'never',
              '%.2f' % took_up if took_up is not None else 'never', INTERVAL, FALL, RISE))


def test_down_reason(t, srv, ctl, pool, down, down_addr, up_addr, want, what, prefix=False):
    """The member down leaves the answers; gslbctl status shows it down with reason want."""
    name = pool + '.' + ZONE_NAME
    took, got = wait_dns(srv, name, lambda s: s == {up_addr}, INTERVAL * FALL + 3)
    t.ok(took is not None, '%s: the failing member leaves the answers, the other stays' % what,
         'last answer %r (want only %s)' % (got, up_addr))
    a = wait_status(ctl, name, down, lambda a: a.get('state') == 'down', 2)
    cond = a is not None and a.get('state') == 'down' and a.get('address') == down_addr and (
        str(a.get('reason', '')).startswith(want) if prefix else a.get('reason') == want)
    t.ok(cond, '%s: gslbctl status --json shows it down, reason %s"%s"'
         % (what, 'starting with ' if prefix else '', want), a)
    return a


def test_shared(t, be):
    """6: three pools on one backend with the same check: one probe per interval."""
    be['s'].get('/_reset')
    seconds = 5.0
    time.sleep(seconds)
    st = be['s'].stats()
    n = st['requests'].get('shared.example /shared', 0)
    t.ok(seconds / INTERVAL - 1.5 <= n <= seconds / INTERVAL + 1.5,
         'three pools sharing a backend with one check (one spells the default expect list) send '
         'it one probe per interval (%d requests in %.0f s, not %d)'
         % (n, seconds, 3 * seconds / INTERVAL), st)


def same_target_pools(name):
    """The pools of SAME_TARGET's name: [(pool of the first setting, of the second)] by order."""
    out = []
    for order in (1, 2):
        a, b = ('%s%d%s.%s' % (name, order, x, ZONE_NAME) for x in 'ab')
        out.append((a, b) if order == 1 else (b, a))
    return out


def test_same_target(t, srv, ctl, be):
    """11: checks sharing a target are each judged by their own settings, whichever is first."""
    what = {'ss': ('a verifying https check', 'an --insecure one', 'on a self-signed certificate'),
            'rd': ('--expect 200', 'the default expect', 'on a 301'),
            'nb': ('--match ok', 'no match', 'on a body without "ok"'),
            'tm': ('--timeout 0.25', '--timeout 1.5', 'with match on a body sent over 0.6 s')}
    for name, (down_what, up_what, on) in what.items():
        host = be[name].host
        for order, (down, up) in enumerate(same_target_pools(name), 1):
            first = down_what if order == 1 else up_what
            wait = (2 if name == 'tm' else INTERVAL) * FALL + 4
            took, got = wait_dns(srv, down, lambda s: s == set(), wait)
            t.ok(took is not None and addrs(ask(srv, up)) == {host},
                 '%s and %s %s on one target (%s first): the first is down, the second up'
                 % (down_what, up_what, on, first),
                 'answers: %r and %r' % (got, addrs(ask(srv, up))))
            a = wait_status(ctl, down, 'x', lambda a: a.get('state') == 'down', 3)
            b = status_addr(ctl, up, 'x')
            t.ok(a is not None and a.get('state') == 'down' and
                 str(a.get('reason', '')).startswith(SAME_REASON[name]) and
                 b is not None and b.get('state') == 'up' and a.get('target') != b.get('target'),
                 '%s (%s first): gslbctl status shows each with its own state, reason and target'
                 % (on, first), (a, b))
            if name == 'ss' and b is not None:
                t.ok(' insecure' in str(b.get('target', '')) and
                     a is not None and 'insecure' not in str(a.get('target')),
                     'the target key of the --insecure check says so; the verifying one\'s does '
                     'not', (a.get('target') if a else None, b.get('target')))
            # history: each member's probes are those of its own check.
            try:
                ha = ctl.json('history', down, '--limit', '50')['probes']
                hb = ctl.json('history', up, '--limit', '50')['probes']
            except (RuntimeError, ValueError, KeyError) as e:
                t.ok(False, 'gslbctl history of %s and %s' % (down, up), str(e))
                continue
            t.ok(ha and hb and not any(p.get('ok') for p in ha) and all(p.get('ok') for p in hb)
                 and all(p.get('member') == 'x' and p.get('address') == host for p in ha + hb),
                 '%s (%s first): gslbctl history shows each check\'s own probes' % (on, first),
                 (ha[:4], hb[:4]))


def test_same_target_timing(t, srv, be):
    """11: rise 1 / fall 1 and rise 4 / fall 4 on one target: each goes by its own counts."""
    host = be['fl'].host
    pairs = same_target_pools('fl')     # [(fast, slow)] with fast first, then slow first
    fast = [f for f, _ in pairs]
    slow = [s for _, s in pairs]
    everyone = fast + slow
    took, _ = wait_dns(srv, everyone[0], lambda s: s == {host}, 3)
    t.ok(took is not None and all(addrs(ask(srv, p)) == {host} for p in everyone),
         'rise/fall per check: all four pools answered while the backend is healthy')
    be['fl'].control('503')
    t0 = time.monotonic()
    end = t0 + INTERVAL * 1 + 3
    while time.monotonic() < end and any(addrs(ask(srv, p)) for p in fast):
        time.sleep(0.02)
    took = time.monotonic() - t0
    gone = [p for p in fast if not addrs(ask(srv, p))]
    still = [p for p in slow if addrs(ask(srv, p)) == {host}]
    t.ok(gone == fast and still == slow,
         'fall 1 and fall 4 on one target: after the 503, the fall 1 checks are down (%.2f s) '
         'while the fall 4 ones are still up, in both orders' % took,
         'down %r, up %r' % (gone, still))
    took, _ = wait_dns(srv, slow[0], lambda s: s == set(), INTERVAL * 4 + 3)
    took2, _ = wait_dns(srv, slow[1], lambda s: s == set(), 2)
    t.ok(took is not None and took2 is not None,
         'the fall 4 checks go down after their fourth failure', (took, took2))
    be['fl'].control('200')
    t0 = time.monotonic()
    end = t0 + INTERVAL * 1 + 3
    while time.monotonic() < end and not all(addrs(ask(srv, p)) for p in fast):
        time.sleep(0.02)
    took = time.monotonic() - t0
    back = [p for p in fast if addrs(ask(srv, p)) == {host}]
    still = [p for p in slow if not addrs(ask(srv, p))]
    t.ok(back == fast and still == slow,
         'rise 1 and rise 4 on one target: after the 200, the rise 1 checks are up (%.2f s) '
         'while the rise 4 ones are still down, in both orders' % took,
         'up %r, down %r' % (back, still))
    took, _ = wait_dns(srv, slow[0], lambda s: s == {host}, INTERVAL * 4 + 3)
    took2, _ = wait_dns(srv, slow[1], lambda s: s == {host}, 2)
    t.ok(took is not None and took2 is not None,
         'the rise 4 checks come back after their fourth success', (took, took2))


def test_history_old_keys(t, tmp):
    """11: gslbctl status and history of checks whose settings are now part of their key: the
    state and history gslbd stored under the key of the request alone stay readable, unless that
    key is another check's own now."""
    ctl = Ctl(os.path.join(tmp, 'old-keys.db'))
    ctl.ok('init')
    opts = ['--type', 'http', '--port', '8080', '--host', 'h.example']
    ctl.ok('pool', 'add', 'q1.' + ZONE_NAME)
    ctl.ok('member', 'add', 'q1.' + ZONE_NAME, 'a', '--address', '192.0.2.10')
    ctl.ok('check', 'set', 'q1.' + ZONE_NAME, *opts)
    ctl.ok('pool', 'add', 'q2.' + ZONE_NAME)
    ctl.ok('member', 'add', 'q2.' + ZONE_NAME, 'b', '--address', '192.0.2.10')
    ctl.ok('member', 'add', 'q2.' + ZONE_NAME, 'c', '--address', '192.0.2.11')
    ctl.ok('check', 'set', 'q2.' + ZONE_NAME, *(opts + ['--fall', '5']))
    shared, alone = 'http 192.0.2.10:8080 h.example/', 'http 192.0.2.11:8080 h.example/'
    now = int(time.time())
    con = sqlite3.connect(ctl.db)
    with con:
        for key, state in ((shared, 'up'), (alone, 'down')):
            tid = con.execute('INSERT INTO target(key) VALUES (?)', (key,)).lastrowid
            con.execute('INSERT INTO probe_result(target_id, time_ms, ok) VALUES (?, ?, ?)',
                        (tid, (now - 60) * 1000, int(state == 'up')))
            con.execute('INSERT INTO target_state(target_id, state, since, reason) '
                        'VALUES (?, ?, ?, ?)', (tid, state, now - 60, 'stored before'))
    con.close()
    h1 = ctl.json('history', 'q1.' + ZONE_NAME)['probes']
    h2 = ctl.json('history', 'q2.' + ZONE_NAME)['probes']
    t.eq([(p['member'], p['target']) for p in h1], [('a', shared)],
         'history: a check with default settings keeps its key and its history')
    t.eq([(p['member'], p['target']) for p in h2], [('c', alone)],
         'history: a check with settings shows what was stored under its request alone, unless '
         'that is another check\'s key now (b\'s request is a\'s check)')
    st = {m['name']: m['addresses'][0] for p in ctl.json('status')['pools']
          for m in p['members']}
    t.eq((st['c']['state'], st['c']['reason'], st['c']['target']), ('down', 'stored before', alone),
         'status: a check with settings never probed shows the state stored under its request '
         'alone, where gslbd starts it from')


def test_fallback(t, srv):
    """7: every member down: fallback all answers every member not admin-down; none: NODATA."""
    name = 'fa.' + ZONE_NAME
    ctl = Ctl(srv_db(srv))
    for m in ('x', 'y'):
        a = wait_status(ctl, name, m, lambda a: a.get('state') == 'down', INTERVAL * FALL + 3)
        t.ok(a is not None and a.get('state') == 'down', 'fallback: member %s is down' % m, a)
    took, got = wait_dns(srv, 'fn.' + ZONE_NAME, lambda s: s == set(), INTERVAL * FALL + 3)
    t.ok(took is not None, 'fallback none: the pool becomes empty once its member is down',
         got)
    m = ask(srv, name)
    t.eq(addrs(m), {'127.0.0.71', '127.0.0.72'},
         'fallback all: every member not admin-down is answered')
    t.eq(ttls(m), {5}, 'fallback all: with the degraded ttl')
    m = ask(srv, 'fn.' + ZONE_NAME)
    ok = (m is not None and m.rcode() == dns.rcode.NOERROR and not m.answer
          and len(m.authority) == 1 and m.authority[0].rdtype == dns.rdatatype.SOA
          and m.authority[0].ttl == 5 and bool(m.flags & dns.flags.AA))
    t.ok(ok, 'fallback none: NODATA (NOERROR, AA, SOA in authority with the degraded ttl 5)',
         m and m.to_text())


def test_history(t, ctl, be):
    """9: gslbctl history --json has the changes (from, to, reason) and the probes, newest first."""
    try:
        h = ctl.json('history', 'rf.' + ZONE_NAME, 'a', '--limit', '1000')
    except (RuntimeError, ValueError) as e:
        t.ok(False, 'gslbctl history --json', str(e))
        return
    ch = h.get('changes', [])
    pr = h.get('probes', [])
    a = be['a'].host
    want = [('down', 'up'), ('up', 'down')]
    got = [(c.get('from'), c.get('to')) for c in ch[:2]]
    t.eq(got, want, 'history: the two state changes of member a, newest first')
    t.ok(len(ch) >= 2 and ch[1].get('reason') == 'HTTP 503' and ch[1].get('address') == a
         and ch[1].get('member') == 'a', 'history: the down change has reason "HTTP 503", '
         'member and address', ch[:2])
    t.ok(len(ch) >= 2 and ch[0].get('reason') not in (None, ''),
         'history: the up change has a reason', ch[:1])
    times = [c.get('time', '') for c in ch]
    t.ok(times == sorted(times, reverse=True) and all(x.endswith('Z') for x in times),
         'history: changes are newest first, RFC 3339 UTC', times)
    ptimes = [p.get('time', '') for p in pr]
    # Every probe the backend saw is stored (the last one or two may still be queued).
    n_be = be['a'].stats()['requests'].get('rf.health.test /rf', 0)
    t.ok(n_be - 2 <= len(pr) <= n_be, 'history: every probe is stored (%d in history, %d seen '
         'by the backend)' % (len(pr), n_be))
    t.ok(len(pr) >= 5 and ptimes == sorted(ptimes, reverse=True),
         'history: probes are newest first (%d)' % len(pr), ptimes[:10])
    fails = [p for p in pr if not p.get('ok')]
    oks = [p for p in pr if p.get('ok')]
    t.ok(len(fails) >= FALL and all(p.get('reason') == 'HTTP 503' for p in fails)
         and len(oks) >= RISE and all(isinstance(p.get('latency_ms'), (int, float))
                                      for p in oks),
         'history: probes hold the failures ("HTTP 503") and successes with latency',
         pr[:8])
    # Between the two changes: FALL failures before the down, RISE successes before the up.
    if len(ch) >= 2:
        t_down, t_up = ch[1].get('time', ''), ch[0].get('time', '')
        between = [p for p in reversed(pr) if t_down < p.get('time', '') <= t_up]
        t.ok(sum(1 for p in between if p.get('ok')) >= RISE - 1,
             'history: the up change follows rise successes', between)


def test_prune(t, srv, ctl):
    """Old results go; a target no longer checked goes once nothing of its history is left."""
    db = srv_db(srv)
    con = sqlite3.connect(db, timeout=10)
    live = con.execute("SELECT key FROM target WHERE key LIKE '%127.0.0.22%' LIMIT 1").fetchone()
    if not t.ok(live is not None, 'prune: the live target of member d is stored'):
        con.close()
        return
    live = live[0]
    now_ms = int(time.time() * 1000)
    old_ms = now_ms - 48 * 3600 * 1000          # older than the default --history of 24 h
    with con:
        def target(key, results=(), change_s=None, state=True):
            con.execute('INSERT OR IGNORE INTO target(key) VALUES (?)', (key,))
            tid = con.execute('SELECT id FROM target WHERE key = ?', (key,)).fetchone()[0]
            for ms in results:
                con.execute('INSERT INTO probe_result(target_id, time_ms, ok) VALUES (?, ?, 1)',
                            (tid, ms))
            if change_s is not None:
                con.execute("INSERT INTO state_change(time, target_id, from_state, to_state) "
                            "VALUES (?, ?, 'up', 'down')", (change_s, tid))
            if state:
                con.execute("INSERT OR IGNORE INTO target_state(target_id, state, last_probe) "
                            "VALUES (?, 'up', ?)", (tid, (results[-1] if results else old_ms)
                                                    // 1000))
            return tid
        gone = target('tcp 192.0.2.201:80', [old_ms - 1000, old_ms])
        bare = target('tcp 192.0.2.202:80', state=False)
        changed = target('tcp 192.0.2.203:80', [old_ms], change_s=now_ms // 1000 - 2 * 86400)
        recent = target('tcp 192.0.2.204:80', [old_ms, now_ms - 60000])
        kept = target(live, [old_ms])
    con.close()

    def pruned():
        c = sqlite3.connect(db, timeout=10)
        try:
            ids = {r[0] for r in c.execute('SELECT id FROM target')}
            res = {r[0]: r[1] for r in c.execute(
                'SELECT target_id, count(*) FROM probe_result WHERE target_id IN (?, ?, ?, ?, ?) '
                'AND time_ms <= ? GROUP BY target_id', (gone, bare, changed, recent, kept, old_ms))}
            states = {r[0] for r in c.execute('SELECT target_id FROM target_state')}
            return ids, res, states
        finally:
            c.close()
    deadline = time.monotonic() + 10
    while True:
        ids, res, states = pruned()
        if (gone not in ids and not res) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    t.ok(not res, 'prune: results older than --history are deleted, of live and removed targets',
         res)
    t.ok(gone not in ids and gone not in states,
         'prune: a removed target whose results aged out goes, with its last state')
    t.ok(bare not in ids, 'prune: a target row with no history at all goes')
    t.ok(changed in ids and changed in states,
         'prune: a removed target with a state change of the last 30 days stays')
    t.ok(recent in ids, 'prune: a removed target with a result inside --history stays')
    t.ok(kept in ids and kept in states, 'prune: a live target stays, whatever its history')
    m = ask(srv, 'tcp.' + ZONE_NAME)
    t.eq(addrs(m), {'127.0.0.22'}, 'prune: the live member is still answered')
    a = status_addr(ctl, 'tcp.' + ZONE_NAME, 'd')
    t.ok(a is not None and a.get('state') == 'up' and a.get('last_probe'),
         'prune: status still shows the live target up with its last probe', a)


def test_restart(t, srv, ctl, ca):
    """8: a restart keeps a down member down from the first query (and 5: --ca-file)."""
    a = status_addr(ctl, 'tcp.' + ZONE_NAME, 'c')
    t.ok(a is not None and a.get('state') == 'down', 'restart: member c is down before the stop',
         a)
    u = status_addr(ctl, 'tls.' + ZONE_NAME, 'u')
    old = srv.stderr()
    rc = srv.stop()
    t.eq(rc, 0, 'gslbd exits 0 after SIGTERM (with probes running)')
    srv.extra_args += ['--ca-file', ca]
    srv.start()
    m = ask(srv, 'tcp.' + ZONE_NAME)
    t.eq(addrs(m), {'127.0.0.22'}, 'restart: the first query after the start does not answer '
         'the member that was down')
    m2 = ask(srv, 'tls.' + ZONE_NAME)
    t.ok(u is not None and u.get('state') == 'down' and m2 is not None
         and '127.0.0.51' not in addrs(m2),
         'restart: the TLS member down before the restart is not answered at first', addrs(m2))
    # Each check of a shared target starts from its own stored state.
    verify, insecure = same_target_pools('ss')[0]
    t.ok(addrs(ask(srv, verify)) == set() and addrs(ask(srv, insecure)) == {'127.0.0.81'},
         'restart: of two checks on one self-signed target, the verifying one starts down and '
         'the --insecure one up', (addrs(ask(srv, verify)), addrs(ask(srv, insecure))))
    took, got = wait_dns(srv, 'tls.' + ZONE_NAME, lambda s: s == {'127.0.0.51', '127.0.0.52'},
                         INTERVAL * RISE + 3)
    t.ok(took is not None, 'https: with gslbd --ca-file the test CA, the verified check passes',
         got)
    a = wait_status(ctl, 'tls.' + ZONE_NAME, 'u', lambda a: a.get('state') == 'up', 2)
    t.ok(a is not None and a.get('state') == 'up', 'https: status shows it up with --ca-file', a)
    return old


def hang_listeners(n):
    """n sockets that listen on one port at 127.0.1.1 onwards and never accept or answer."""
    for _ in range(20):
        port = random.randint(20000, 60000)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind(('127.0.%d.%d' % (1 + i // 250, 1 + i % 250), port))
                s.listen(128)
            return port, socks
        except OSError:
            for s in socks:
                s.close()
    raise RuntimeError('cannot listen on %d loopback addresses' % n)


def test_no_wait(t, srv, ctl, tmp):
    """10: 1,000 hanging targets do not slow the answers."""
    names = ['rf.' + ZONE_NAME, 'h0.' + ZONE_NAME]
    base, base_lost = query_stream(srv, names)
    port, socks = hang_listeners(HANG_TARGETS)
    try:
        pools = []
        per = 100
        for p in range(HANG_TARGETS // per):
            members = []
            for j in range(per):
                i = p * per + j
                members.append({'name': 'm%d' % j,
                                'addresses': ['127.0.%d.%d' % (1 + i // 250, 1 + i % 250)]})
            pools.append({'name': 'h%d.%s' % (p, ZONE_NAME), 'policy': 'weighted', 'ttl': 30,
                          'answers': 1, 'fallback': 'all', 'members': members,
                          'check': {'type': 'http', 'port': port, 'interval': 3,
                                    'timeout': 2, 'rise': 2, 'fall': 2}})
        path = os.path.join(tmp, 'hang.json')
        with open(path, 'w') as f:
            json.dump({'version': 1, 'pools': pools}, f)
        rc, out, err = ctl.run('apply', path)
        t.eq(rc, 0, 'apply 10 pools of 100 members whose backends hang')
        if rc != 0:
            t.diag(err)
            return
        # The health loop has them once gslbd logs the new number of targets.
        end = time.monotonic() + 5
        n = 0
        while time.monotonic() < end and n < HANG_TARGETS:
            for line in srv.stderr().splitlines():
                if 'health: ' in line and ' targets' in line:
                    try:
                        n = int(line.split('health: ', 1)[1].split()[0])
                    except ValueError:
                        pass
            time.sleep(0.1)
        t.ok(n >= HANG_TARGETS, 'gslbd probes the %d new targets (logged %d)'
             % (HANG_TARGETS, n))
        time.sleep(2.0)   # probes spread over the 3 s interval: most now hang
        load, load_lost = query_stream(srv, names)
        bm, bp = statistics.median(base), percentile(base, 99)
        lm, lp = statistics.median(load), percentile(load, 99)
        t.diag('latency of 2000 queries over 3 s: baseline median %.3f ms p99 %.3f ms max %.3f '
               'ms (%d lost); with %d hanging targets median %.3f ms p99 %.3f ms max %.3f ms '
               '(%d lost)' % (bm, bp, max(base), base_lost, HANG_TARGETS, lm, lp, max(load),
                              load_lost))
        t.ok(load_lost == 0, 'no query is lost while %d targets hang' % HANG_TARGETS,
             '%d lost' % load_lost)
        t.ok(lp < 20.0, 'p99 latency stays under 20 ms while %d targets hang (%.3f ms)'
             % (HANG_TARGETS, lp))
        t.ok(lm < bm + 5.0, 'median latency stays within 5 ms of the baseline (%.3f vs %.3f ms)'
             % (lm, bm))
        # They really hung: the timeouts are in the database.
        db = srv_db(srv)
        end = time.monotonic() + 6
        timed_out = 0
        while time.monotonic() < end:
            con = sqlite3.connect(db, timeout=5)
            try:
                timed_out = con.execute(
                    "SELECT count(DISTINCT p.target_id) FROM probe_result p "
                    "JOIN reason r ON r.id = p.reason_id "
                    "WHERE r.text = 'timeout after 2000 ms'").fetchone()[0]
            except sqlite3.Error:
                pass
            finally:
                con.close()
            if timed_out >= HANG_TARGETS * 0.95:
                break
            time.sleep(0.5)
        t.ok(timed_out >= HANG_TARGETS * 0.95, 'the hanging targets were probed and timed out '
             '(%d distinct targets with "timeout after 2000 ms")' % timed_out)
    finally:
        for s in socks:
            s.close()


def srv_db(srv):
    return os.path.join(srv.tmp, 'gslb.db')


def main(t):
    t0 = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))   # 1,000 listeners + probes
    if not os.access(GSLBCTL, os.X_OK):
        t.skip('daemon health checks', 'gslbctl not built: %s' % GSLBCTL)
        return
    tmp = tempfile.mkdtemp(prefix='gslb-hd-')
    try:
        run_tests(t, tmp)
    finally:
        _cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        t.diag('total %.1f s' % (time.monotonic() - t0))


def run_tests(t, tmp):
    try:
        certs = make_certs(tmp)
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as e:
        t.ok(False, 'make test certificates with the openssl CLI', str(e))
        return
    ca = os.path.join(tmp, 'ca.pem')
    test_history_old_keys(t, tmp)
    be = {
        'a': Backend('127.0.0.11'),
        'b': Backend('127.0.0.12'),
        'd': Backend('127.0.0.22'),
        'h': Backend('127.0.0.31', mode='hang'),
        'k': Backend('127.0.0.32'),
        'm': Backend('127.0.0.41', mode='body', body='status: all good\n'),
        'n': Backend('127.0.0.42', mode='body', body='status: all good\n'),
        'u': Backend('127.0.0.51', *certs['good']),
        'i': Backend('127.0.0.52', *certs['good']),
        's': Backend('127.0.0.61'),
        'ss': Backend('127.0.0.81', *certs['self']),
        'rd': Backend('127.0.0.82', mode='301'),
        'nb': Backend('127.0.0.83', mode='body', body='status: all good\n'),
        'tm': Backend('127.0.0.84'),
        'fl': Backend('127.0.0.85'),
    }
    ports = {'c': closed_port('127.0.0.21'), 'fa': closed_port('127.0.0.71'),
             'fn': closed_port('127.0.0.74')}
    zone = os.path.join(tmp, 'health.test.zone')
    with open(zone, 'w') as f:
        f.write(ZONE)
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=90, v6=False)
    ctl = Ctl(srv_db(srv))
    ctl.ok('init')
    configure(ctl, be, ports)
    srv.start()
    t.on_fail.append(lambda: srv.dump(t))

    test_rise_fall(t, srv, be)
    test_down_reason(t, srv, ctl, 'tcp', 'c', '127.0.0.21', '127.0.0.22', 'connect refused',
                     'tcp on a closed port')
    test_down_reason(t, srv, ctl, 'hang', 'h', '127.0.0.31', '127.0.0.32',
                     'timeout after 500 ms', 'http to a hung backend')
    test_down_reason(t, srv, ctl, 'match', 'm', '127.0.0.41', '127.0.0.42',
                     'body did not contain "ok"', 'http with match')
    test_down_reason(t, srv, ctl, 'tls', 'u', '127.0.0.51', '127.0.0.52', 'TLS: ',
                     'https with an untrusted certificate', prefix=True)
    a = status_addr(ctl, 'tls.' + ZONE_NAME, 'i')
    t.ok(a is not None and a.get('state') == 'up', 'https: --insecure passes the same certificate',
         a)
    test_fallback(t, srv)
    test_shared(t, be)
    test_same_target(t, srv, ctl, be)
    test_same_target_timing(t, srv, be)
    test_history(t, ctl, be)
    test_prune(t, srv, ctl)
    old = test_restart(t, srv, ctl, ca)
    t.on_fail.insert(0, lambda: t.diag('---- gslbd stderr before the restart ----\n'
                                       + '\n'.join(old.splitlines()[-200:])))
    test_no_wait(t, srv, ctl, tmp)
    srv.check_stop(t)


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        _cleanup()
