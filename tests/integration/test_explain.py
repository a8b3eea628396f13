#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbctl explain against a real gslbd serving the same database (README "Balanced names", gslbctl(8))."""

import collections
import json
import ipaddress
import os
import random
import shutil
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
GEOIP = os.path.join(g.SRCDIR, 'geoip', 'gslb-test-city.mmdb')

# 2,000 queries per pool; a share p observed over n draws has a standard deviation of
# sqrt(p(1-p)/n) <= 0.0112, so 0.04 is more than 3.5 of them for every member.
QUERIES = 2000
TOLERANCE = 0.04

ZONE = """\
$TTL 3600
$ORIGIN ex.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
"""


def ctl(db, *args, timeout=20):
    """Run gslbctl on db; returns (exit status, stdout, stderr)."""
    return g.gslbctl(db, *args, timeout=timeout)


class Ports:
    """Loopback TCP ports for checks: one refusing (bound, never listening), one accepting."""

    def __init__(self):
        # Bound but not listening: the kernel answers a SYN with RST (connect refused), and
        # nobody else can take the port while the test runs.
        self.closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.closed.bind(('127.0.0.1', 0))
        self.closed_port = self.closed.getsockname()[1]
        self.closed2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.closed2.bind(('127.0.0.1', 0))
        self.closed2_port = self.closed2.getsockname()[1]
        self.open = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.open.bind(('127.0.0.1', 0))
        self.open.listen(64)
        self.open.settimeout(0.5)
        self.open_port = self.open.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.open.accept()
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.thread.join(2)
        for s in (self.closed, self.closed2, self.open):
            s.close()


def build(t, db, ports):
    """The pools; True when every gslbctl command worked."""
    down = ['--type', 'tcp', '--port', str(ports.closed_port), '--target', '127.0.0.1',
            '--interval', '1', '--fall', '1', '--rise', '1']
    down2 = ['--type', 'tcp', '--port', str(ports.closed2_port), '--target', '127.0.0.1',
             '--interval', '1', '--fall', '1', '--rise', '1']
    up = ['--type', 'tcp', '--port', str(ports.open_port), '--target', '127.0.0.1',
          '--interval', '1', '--fall', '1', '--rise', '1']
    cmds = [
        ['init'],
        # weighted, with every kind of member the eligibility rules name
        ['pool', 'add', 'w.ex.test', '--policy', 'weighted', '--ttl', '60'],
        ['member', 'add', 'w.ex.test', 'a', '--address', '198.51.100.1', '--address',
         '2001:db8::1', '--weight', '100'],
        ['member', 'add', 'w.ex.test', 'b', '--address', '198.51.100.2', '--weight', '300'],
        ['member', 'add', 'w.ex.test', 'c', '--address', '198.51.100.3', '--weight', '600'],
        ['member', 'add', 'w.ex.test', 'd', '--address', '198.51.100.4', '--weight', '0'],
        ['member', 'add', 'w.ex.test', 'e', '--address', '198.51.100.5'],
        ['member', 'state', 'w.ex.test', 'e', 'drain'],
        ['member', 'add', 'w.ex.test', 'f', '--address', '198.51.100.6'],
        ['member', 'state', 'w.ex.test', 'f', 'down'],
        # failover: p1 is down by its check, so priority 2 decides
        ['pool', 'add', 'f.ex.test', '--policy', 'failover', '--ttl', '40',
         '--degraded-ttl', '4'],
        ['member', 'add', 'f.ex.test', 'p1', '--address', '198.51.100.11', '--priority', '1'],
        ['check', 'set', 'f.ex.test', '--member', 'p1'] + down,
        ['member', 'add', 'f.ex.test', 'p2', '--address', '198.51.100.12', '--priority', '2'],
        ['member', 'add', 'f.ex.test', 'p3', '--address', '198.51.100.13', '--priority', '2',
         '--weight', '300'],
        ['member', 'add', 'f.ex.test', 'p4', '--address', '198.51.100.14', '--priority', '3'],
        # the edges of --weight and --priority: 1 beside 65535, every member at priority 255
        ['pool', 'add', 'wmax.ex.test'],
        ['member', 'add', 'wmax.ex.test', 'light', '--address', '198.51.100.81', '--weight', '1'],
        ['member', 'add', 'wmax.ex.test', 'heavy', '--address', '198.51.100.82', '--weight',
         '65535'],
        ['pool', 'add', 'f255.ex.test', '--policy', 'failover'],
        ['member', 'add', 'f255.ex.test', 'a', '--address', '198.51.100.83', '--priority', '255',
         '--weight', '1'],
        ['member', 'add', 'f255.ex.test', 'b', '--address', '198.51.100.84', '--priority', '255',
         '--weight', '2'],
        # answers 2
        ['pool', 'add', 'm.ex.test', '--answers', '2'],
        ['member', 'add', 'm.ex.test', 'x1', '--address', '198.51.100.21'],
        ['member', 'add', 'm.ex.test', 'x2', '--address', '198.51.100.22'],
        ['member', 'add', 'm.ex.test', 'x3', '--address', '198.51.100.23', '--weight', '200'],
        # health: one accepting, one refused (stored down), one refused (found by probing)
        ['pool', 'add', 'h.ex.test'],
        ['member', 'add', 'h.ex.test', 'up1', '--address', '198.51.100.31'],
        ['check', 'set', 'h.ex.test', '--member', 'up1'] + up,
        ['member', 'add', 'h.ex.test', 'dn1', '--address', '198.51.100.32'],
        ['check', 'set', 'h.ex.test', '--member', 'dn1'] + down,
        ['member', 'add', 'h.ex.test', 'dn2', '--address', '198.51.100.33'],
        ['check', 'set', 'h.ex.test', '--member', 'dn2'] + down2,
        # everything down: fallback all, and fallback none
        ['pool', 'add', 'all.ex.test', '--fallback', 'all', '--ttl', '50', '--degraded-ttl', '5'],
        ['member', 'add', 'all.ex.test', 'q1', '--address', '198.51.100.41'],
        ['member', 'add', 'all.ex.test', 'q2', '--address', '198.51.100.42', '--weight', '300'],
        ['check', 'set', 'all.ex.test', '--member', 'q1'] + down,
        ['check', 'set', 'all.ex.test', '--member', 'q2'] + down,
        ['pool', 'add', 'none.ex.test', '--fallback', 'none', '--degraded-ttl', '3'],
        ['member', 'add', 'none.ex.test', 'r1', '--address', '198.51.100.51'],
        ['check', 'set', 'none.ex.test', '--member', 'r1'] + down,
        # geo (README "Balanced names": geo and ECS): one member per rule, against geoip/gslb-test-city.mmdb
        ['pool', 'add', 'geo.ex.test', '--policy', 'geo'],
        ['member', 'add', 'geo.ex.test', 'eu', '--address', '198.51.100.61', '--location',
         '50.11,8.68', '--country', 'DE', '--continent', 'EU'],
        ['member', 'add', 'geo.ex.test', 'us', '--address', '198.51.100.62', '--location',
         '39.04,-77.49', '--country', 'US', '--weight', '300'],
        ['member', 'add', 'geo.ex.test', 'sg', '--address', '198.51.100.63', '--location',
         '1.35,103.82', '--continent', 'AS'],
        ['member', 'add', 'geo.ex.test', 'net', '--address', '198.51.100.64', '--network',
         '10.7.0.0/24'],
        # geo decided by distance for a client in Sao Paulo (10.3.0.0/16), answers 2: the two
        # nearest whatever the weights (rio 1, not mia 65535 or noloc 65535), and at equal
        # distance the heavier (bog2 before bog1)
        ['pool', 'add', 'near.ex.test', '--policy', 'geo', '--answers', '2'],
        ['member', 'add', 'near.ex.test', 'rio', '--address', '198.51.100.71', '--location',
         '-22.91,-43.17', '--weight', '1'],
        ['member', 'add', 'near.ex.test', 'bog1', '--address', '198.51.100.72', '--location',
         '4.71,-74.07', '--weight', '10'],
        ['member', 'add', 'near.ex.test', 'bog2', '--address', '198.51.100.73', '--location',
         '4.71,-74.07', '--weight', '500'],
        ['member', 'add', 'near.ex.test', 'mia', '--address', '198.51.100.74', '--location',
         '25.76,-80.19', '--weight', '65535'],
        ['member', 'add', 'near.ex.test', 'noloc', '--address', '198.51.100.75', '--weight',
         '65535'],
    ]
    problems = []
    for cmd in cmds:
        rc, out, err = ctl(db, *cmd)
        if rc != 0:
            problems.append('%s: %d %s%s' % (' '.join(cmd), rc, out, err))
    return t.ok(not problems, 'gslbctl builds the database (%d commands)' % len(cmds),
                '\n'.join(problems))


def store_down(db, keys):
    """Insert target_state rows as the health loop writes them."""
    con = sqlite3.connect(db, timeout=5)
    for k in keys:
        con.execute('INSERT OR IGNORE INTO target(key) VALUES (?)', (k,))
        con.execute("INSERT OR REPLACE INTO target_state(target_id, state, since, reason) "
                    "VALUES ((SELECT id FROM target WHERE key = ?), 'down', ?, 'connect refused')",
                    (k, int(time.time())))
    con.commit()
    con.close()


def explain(t, db, *args):
    """explain --json; the parsed document, or None (with a failed check)."""
    rc, out, err = ctl(db, '--json', 'explain', *args)
    try:
        doc = json.loads(out) if rc == 0 else None
    except ValueError:
        doc = None
    t.ok(doc is not None, 'explain %s --json: exit 0, valid JSON' % ' '.join(args),
         '%d\n%s\n%s' % (rc, out, err))
    return doc


def by_name(doc):
    return {m['name']: m for m in doc['members']} if doc else {}


def dig_answers(srv, name, subnet, n):
    """The A records of n real dig queries with +subnet, one sorted list per answer."""
    seen = []
    for _ in range(n):
        rc, out = g.run_tool(['dig', '@127.0.0.1', '-p', str(srv.port), name, 'A',
                              '+subnet=' + subnet, '+short', '+tries=1', '+time=2'])
        seen.append(sorted(out.split()) if rc == 0 else ['dig failed: %s' % out])
    return seen


def nearest(t, srv, db):
    """Rule 4 takes the `answers` nearest (no draw; ties by weight), and explain says so."""
    doc = explain(t, db, 'near.ex.test', '--ecs', '10.3.0.0/16', '--geoip', GEOIP)
    if not doc:
        return
    ms = by_name(doc)
    want = ['198.51.100.71', '198.51.100.73']
    t.eq((doc['geo_rule'], doc['policy_applied'], sorted(doc['answer']), sorted(doc['possible'])),
         (4, 'nearest', want, want),
         'near: rule 4 applies the nearest 2 (rio, and bog2 over bog1 by weight), not a draw')
    t.eq({k: (m['rank'], m['probability']) for k, m in ms.items()},
         {'rio': (1, 1.0), 'bog2': (2, 1.0), 'bog1': (3, 0), 'mia': (4, 0),
          'noloc': (None, 0)}, 'near: distance ranks, ties by weight; chance 1 for the nearest 2')
    if shutil.which('dig'):
        seen = dig_answers(srv, 'near.ex.test', '10.3.0.0/16', 20)
        t.ok(all(s == want for s in seen),
             'near: 20 dig +subnet=10.3.0.0/16 answers are all explain\'s answer %s' % want,
             repr(seen))
    else:
        t.skip('near: dig agrees with explain', 'no dig')
    rc, out, err = ctl(db, 'explain', 'near.ex.test', '--ecs', '10.3.0.0/16', '--geoip', GEOIP)
    t.ok(rc == 0 and 'geo rule 4 (distance) decided; the answer holds the 2 nearest of the 4 '
         'eligible members with a location' in out and 'heavier weight first' in out
         and 'drawn by weight' not in out,
         'near: explain (text) says rule 4 takes the nearest, not a weighted draw', out + err)


def main(t):
    if not os.access(GSLBCTL, os.X_OK):
        t.skip('gslbctl explain', 'no gslbctl at %s' % GSLBCTL)
        return
    tmp_zone_dir = g.tempfile.mkdtemp(prefix='gslbtest-explain-')
    zfile = os.path.join(tmp_zone_dir, 'ex.test.zone')
    with open(zfile, 'w') as f:
        f.write(ZONE)
    srv = g.Gslbd(zones=(zfile,), identity=False, wait_zone=None, lifetime=170,
                  extra_args=('--geoip', GEOIP))
    t.on_fail.append(lambda: srv.dump(t))
    db = os.path.join(srv.tmp, 'gslb.db')
    ports = Ports()
    try:
        if not build(t, db, ports):
            return
        # The refused target starts down (README "Health checks": its last stored state); the daemon's
        # probes agree, so it stays down.  closed2 has no row: the probes must find it.
        store_down(db, ['tcp 127.0.0.1:%d' % ports.closed_port])
        srv.start()
        srv.wait_ready('ex.test.')
        run_checks(t, srv, db, ports)
    finally:
        srv.stop()
        ports.close()
        shutil.rmtree(tmp_zone_dir, ignore_errors=True)


def run_checks(t, srv, db, ports):
    def ask(name, qtype='A'):
        return g.exchange(g.make_query(name, qtype), srv.addr4, 'udp', timeout=1.0).msg

    def addrs(m, qtype='A'):
        return [rd.to_text() for rrset in m.answer for rd in rrset
                if rrset.rdtype == dns.rdatatype.from_text(qtype)]

    def observe(name, qtype='A', n=QUERIES):
        """Share of answers holding each address, failed queries, answer TTLs seen."""
        hits, failed, ttls = collections.Counter(), 0, set()
        for _ in range(n):
            m = ask(name, qtype)
            if m is None or m.rcode() != dns.rcode.NOERROR:
                failed += 1
                continue
            for a in set(addrs(m, qtype)):
                hits[a] += 1
            for rrset in m.answer:
                ttls.add(rrset.ttl)
        return {a: c / n for a, c in hits.items()}, failed, ttls

    def member_addr(doc):
        return {m['name']: [a['address'] for a in m.get('addresses', [])] for m in doc['members']}

    def compare(doc, name, qtype='A'):
        """explain's probabilities against the daemon's shares over QUERIES answers."""
        shares, failed, ttls = observe(name, qtype)
        maddr = member_addr(doc)
        errs = {}
        for m in doc['members']:
            a = maddr[m['name']]
            got = shares.get(a[0], 0.0) if a else 0.0
            errs[m['name']] = (m['probability'], got)
        worst = max(abs(p - s) for p, s in errs.values())
        t.diag('%s %s over %d queries: %s; largest error %.4f' % (
            name, qtype, QUERIES, ', '.join('%s explain %.3f gslbd %.3f' % (k, p, s)
                                            for k, (p, s) in sorted(errs.items())), worst))
        t.ok(failed == 0 and worst <= TOLERANCE,
             '%s: explain probabilities match gslbd shares within %.2f over %d queries'
             % (name, TOLERANCE, QUERIES), 'failed %d, %r' % (failed, errs))
        t.ok(ttls == {doc['ttl']}, '%s: explain ttl %d is the answers\' TTL' % (name, doc['ttl']),
             repr(ttls))

    def keys_ok(doc, name):
        want = {'name', 'type', 'client', 'members', 'answer', 'ttl', 'scope', 'fallback'}
        cwant = {'address', 'source', 'country', 'continent', 'location', 'network'}
        mwant = {'name', 'rank', 'distance_km', 'healthy', 'admin', 'weight', 'probability'}
        ok = (want <= set(doc) and cwant <= set(doc['client'])
              and all(mwant <= set(m) for m in doc['members']))
        t.ok(ok, '%s: explain --json has every key gslbctl(8) documents' % name, json.dumps(doc))

    def prob_sum(doc, name, want):
        s = sum(m['probability'] for m in doc['members'])
        t.ok(abs(s - want) < 0.01, '%s: probabilities sum to %d (%.4f)' % (name, want, s))

    # ---- weighted: weights, weight 0, drain, admin down
    w = explain(t, db, 'w.ex.test')
    if w:
        keys_ok(w, 'w')
        ms = by_name(w)
        t.eq((w['name'], w['type'], w['scope'], w['fallback'], w['ttl']),
             ('w.ex.test.', 'A', 0, False, 60), 'w: name, type, scope 0, no fallback, ttl 60')
        t.eq(w['client'], dict(w['client'], address=None, source='resolver', country=None,
                               continent=None, location=None, network=None),
             'w: no --client: resolver, address null, geo fields null')
        t.eq({k: round(m['probability'], 6) for k, m in ms.items()},
             {'a': 0.1, 'b': 0.3, 'c': 0.6, 'd': 0, 'e': 0, 'f': 0},
             'w: probabilities 1:3:6, weight 0, drain and down get 0')
        t.eq({k: m['rank'] for k, m in ms.items()},
             {'a': 1, 'b': 1, 'c': 1, 'd': None, 'e': None, 'f': None}, 'w: ranks')
        t.eq({k: (m['admin'], m['weight'], m['healthy']) for k, m in ms.items()},
             {'a': ('auto', 100, True), 'b': ('auto', 300, True), 'c': ('auto', 600, True),
              'd': ('auto', 0, True), 'e': ('drain', 100, True), 'f': ('down', 100, True)},
             'w: admin, weight, healthy')
        t.ok(len(w['answer']) == 1 and w['answer'][0] in ('198.51.100.1', '198.51.100.2',
                                                          '198.51.100.3'),
             'w: the sample answer is one candidate', repr(w['answer']))
        prob_sum(w, 'w', 1)
        compare(w, 'w.ex.test')
    w6 = explain(t, db, 'w.ex.test', '--type', 'AAAA')
    if w6:
        t.eq({k: m['probability'] for k, m in by_name(w6).items() if m['probability']},
             {'a': 1.0}, 'w AAAA: only the member with an IPv6 address')
        t.eq(w6['answer'], ['2001:db8::1'], 'w AAAA: answer')
        m = ask('w.ex.test', 'AAAA')
        t.eq(m and addrs(m, 'AAAA'), ['2001:db8::1'], 'w AAAA: gslbd agrees')

    # ---- failover with the priority-1 member down by its check
    f = explain(t, db, 'f.ex.test')
    if f:
        ms = by_name(f)
        t.eq({k: (m['healthy'], m['rank'], m.get('priority')) for k, m in ms.items()},
             {'p1': (False, None, 1), 'p2': (True, 1, 2), 'p3': (True, 1, 2),
              'p4': (True, None, 3)}, 'f: p1 unhealthy; p2 and p3 are the candidates')
        t.eq({k: round(m['probability'], 6) for k, m in ms.items()},
             {'p1': 0, 'p2': 0.25, 'p3': 0.75, 'p4': 0}, 'f: 1:3 among priority 2')
        t.eq((f['ttl'], f['fallback']), (4, False), 'f: degraded-ttl 4 (a member is down)')
        prob_sum(f, 'f', 1)
        compare(f, 'f.ex.test')

    # ---- weights 1 and 65535; failover with every member at priority 255
    wm = explain(t, db, 'wmax.ex.test')
    if wm:
        ms = by_name(wm)
        t.ok(abs(ms['light']['probability'] - 1 / 65536) < 1e-12
             and abs(ms['heavy']['probability'] - 65535 / 65536) < 1e-12,
             'wmax: probabilities exactly 1/65536 and 65535/65536',
             repr({k: m['probability'] for k, m in ms.items()}))
        t.eq({k: (m['weight'], m['rank']) for k, m in ms.items()},
             {'light': (1, 1), 'heavy': (65535, 1)}, 'wmax: weights 1 and 65535, both rank 1')
    f255 = explain(t, db, 'f255.ex.test')
    if f255:
        ms = by_name(f255)
        t.eq({k: (m['rank'], round(m['probability'], 6)) for k, m in ms.items()},
             {'a': (1, round(1 / 3, 6)), 'b': (1, round(2 / 3, 6))},
             'f255: every member at priority 255 is a candidate, 1:2 by weight')
        t.eq(len(f255['answer']), 1, 'f255: the sample answer has one address')
        compare(f255, 'f255.ex.test')

    # ---- answers 2: inclusion probabilities (exact: 7/12, 7/12, 5/6)
    mdoc = explain(t, db, 'm.ex.test')
    if mdoc:
        ms = by_name(mdoc)
        exact = {'x1': 7 / 12, 'x2': 7 / 12, 'x3': 5 / 6}
        err = max(abs(ms[k]['probability'] - v) for k, v in exact.items())
        t.ok(err < 0.01, 'm: answers 2: probabilities within 0.01 of 7/12, 7/12, 5/6',
             repr({k: m['probability'] for k, m in ms.items()}))
        prob_sum(mdoc, 'm', 2)
        t.eq(len(mdoc['answer']), 2, 'm: the sample answer has two addresses')
        compare(mdoc, 'm.ex.test')

    # ---- health: stored down, found down by probing, up
    deadline = time.monotonic() + 15
    h = None
    while time.monotonic() < deadline:
        rc, out, err = ctl(db, '--json', 'explain', 'h.ex.test')
        h = json.loads(out) if rc == 0 else None
        if h and not by_name(h)['dn2']['healthy']:
            break
        time.sleep(0.3)
    if t.ok(h is not None, 'h: explain --json works'):
        ms = by_name(h)
        t.eq({k: (m['healthy'], m['probability']) for k, m in ms.items()},
             {'up1': (True, 1.0), 'dn1': (False, 0), 'dn2': (False, 0)},
             'h: members down in target_state are unhealthy with probability 0 '
             '(dn2 after the real probes failed)')
        t.eq((h['answer'], h['fallback']), (['198.51.100.31'], False), 'h: answer up1 only')
        compare(h, 'h.ex.test')

    # ---- every member down: fallback all fires, fallback none is NODATA
    a = explain(t, db, 'all.ex.test')
    if a:
        ms = by_name(a)
        t.eq((a['fallback'], a['ttl']), (True, 5), 'all down, fallback all: fallback fires, '
             'degraded-ttl 5')
        t.eq({k: (m['healthy'], round(m['probability'], 6)) for k, m in ms.items()},
             {'q1': (False, 0.25), 'q2': (False, 0.75)},
             'all down: the fallback draws from every member not admin down')
        compare(a, 'all.ex.test')
    n = explain(t, db, 'none.ex.test')
    if n:
        t.eq((n['fallback'], n['answer'], n['ttl'], n.get('nodata')), (False, [], 3, True),
             'all down, fallback none: no fallback, no answer (NODATA)')
        prob_sum(n, 'none', 0)
        m = ask('none.ex.test')
        t.ok(m is not None and m.rcode() == dns.rcode.NOERROR and not m.answer,
             'none: gslbd answers NODATA too', m and m.to_text())

    # ---- geo pools: explain ranks with the daemon's geo code and the same geo file
    geo = explain(t, db, 'geo.ex.test', '--client', '198.51.100.7', '--geoip', GEOIP)
    if geo:
        c = geo['client']
        t.eq((c['address'], c['source'], c['country']), ('198.51.100.7', 'resolver', 'US'),
             'geo: client from --client, country from --geoip')
        t.ok(c['network'] == '198.51.100.0/24', 'geo: --geoip gives the client network',
             json.dumps(c))
        ms = by_name(geo)
        t.eq(({k: m['rank'] for k, m in ms.items()}, geo['geo_rule'], geo['scope']),
             ({'eu': None, 'us': 2, 'sg': None, 'net': None}, 2, 24),
             'geo: a US client: rule 2 (country) picks us, scope 24')
        t.eq({k: round(m['probability'], 6) for k, m in ms.items()},
             {'eu': 0, 'us': 1, 'sg': 0, 'net': 0}, 'geo: only the deciding rank has a chance')
        t.ok(all((m['distance_km'] is not None) == (m['name'] != 'net')
                 for m in geo['members']),
             'geo: distances for the members with a location', json.dumps(geo['members']))
    far = explain(t, db, 'geo.ex.test', '--ecs', '10.3.0.0/16', '--geoip', GEOIP)
    if far:
        ms = by_name(far)
        t.ok(far['geo_rule'] == 4 and ms['us']['rank'] == 1 and ms['eu']['rank'] == 2
             and ms['sg']['rank'] == 3 and ms['net']['rank'] is None
             and ms['us']['distance_km'] < ms['eu']['distance_km'],
             'geo: a client in Brazil: rule 4, members ranked by distance',
             json.dumps(far['members']))
    nearest(t, srv, db)
    # No ECS, gslbd sees 127.0.0.1 (not in the geo file): rule 5, weighted over everyone.
    rest = explain(t, db, 'geo.ex.test', '--client', '127.0.0.1', '--geoip', GEOIP)
    if rest:
        t.eq(rest['geo_rule'], 5, 'geo: a client the geo file does not know: rule 5')
        compare(rest, 'geo.ex.test')

    # ~20 random ECS clients: explain --ecs P --geoip FILE against gslbd's answer to +subnet=P
    rnd = random.Random(int(time.time()))
    nets = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '10.2.0.0/16', '10.3.0.0/16',
            '10.7.0.0/24', '10.7.1.0/24', '10.9.0.0/16', '2001:db8:1::/48', '2001:db8:3::/48']
    cases = []
    for i in range(20):
        net = ipaddress.ip_network(nets[i % len(nets)])
        host = net[rnd.randrange(net.num_addresses)]
        maxlen = net.max_prefixlen
        plen = rnd.choice([maxlen, maxlen, net.prefixlen, rnd.randint(net.prefixlen, maxlen),
                           rnd.randint(8, net.prefixlen)])
        cases.append(ipaddress.ip_network('%s/%d' % (host, plen), strict=False))
    bad = []
    for p in cases:
        doc = explain(t, db, 'geo.ex.test', '--ecs', str(p), '--geoip', GEOIP)
        if not doc:
            continue
        opt = dns.edns.ECSOption(str(p.network_address), p.prefixlen)
        seen, scopes = set(), set()
        for _ in range(10 if len(doc['possible']) > 1 else 1):
            m = g.exchange(g.make_query('geo.ex.test', 'A', edns=0, options=[opt]),
                           srv.addr4, 'udp', timeout=1.0).msg
            if m is None or m.rcode() != dns.rcode.NOERROR:
                bad.append('%s: no answer' % p)
                break
            seen |= set(addrs(m))
            scopes |= {o.scopelen for o in m.options if isinstance(o, dns.edns.ECSOption)}
        possible = set(doc['possible'])
        if not seen or not seen <= possible or scopes != {doc['scope']} or (
                len(possible) == 1 and seen != possible):
            bad.append('%s: explain rule %s possible %s scope %s; gslbd %s scope %s' % (
                p, doc['geo_rule'], sorted(possible), doc['scope'], sorted(seen),
                sorted(scopes)))
    t.ok(not bad, 'geo: explain --ecs agrees with gslbd +subnet for %d random clients '
         '(answers and scope)' % len(cases), '\n'.join(bad))
    ecs = explain(t, db, 'w.ex.test', '--client', '192.0.2.9', '--ecs', '203.0.113.0/24')
    if ecs:
        t.eq((ecs['client']['address'], ecs['client']['source'], ecs['scope']),
             ('203.0.113.0', 'ecs', 0), '--ecs 203.0.113.0/24: client from ECS, scope 0')
    ecs0 = explain(t, db, 'w.ex.test', '--client', '192.0.2.9', '--ecs', '0.0.0.0/0')
    if ecs0:
        t.eq((ecs0['client']['address'], ecs0['client']['source']), ('192.0.2.9', 'resolver'),
             '--ecs with prefix 0: the resolver address counts')

    # ---- the text form walks through the same steps
    rc, out, err = ctl(db, 'explain', 'f.ex.test', '--client', '192.0.2.9')
    t.ok(rc == 0 and all(s in out for s in ('failover', '192.0.2.9', 'p3', '75.00%',
                                              'fallback', 'ttl 4', 'scope 0',
                                              'sample answer')),
         'explain (text): policy, client, members, chances, fallback, ttl, scope, sample',
         out + err)
    rc, out, err = ctl(db, 'explain', 'geo.ex.test', '--ecs', '192.0.2.0/24', '--geoip', GEOIP)
    t.ok(rc == 0 and 'geo rule 2 (country)' in out and 'ECS scope 24' in out
         and 'issue 5' not in out,
         'explain (text) of a geo pool: the deciding rule and the scope', out + err)

    # ---- errors: exit 2 with one stderr line naming the option; unknown pool exit 1
    bad = [
        (['w.ex.test', '--type', 'MX'], '--type'),
        (['w.ex.test', '--client', '300.1.1.1'], '--client'),
        (['w.ex.test', '--ecs', '192.0.2.1/24'], '--ecs'),   # host bits set (RFC 7871 6)
        (['w.ex.test', '--ecs', '192.0.2.0/33'], '--ecs'),
        (['w.ex.test', '--ecs', '2001:db8::/129'], '--ecs'),
        (['w.ex.test', '--ecs', 'nonsense'], '--ecs'),
        (['w.ex.test', '--bogus'], '--bogus'),
        (['w.ex.test', 'extra'], 'extra'),
        ([], 'NAME'),
        (['bad..name'], 'NAME'),
    ]
    for args, word in bad:
        rc, out, err = ctl(db, 'explain', *args)
        lines = err.strip().splitlines()
        t.ok(rc == 2 and len(lines) == 1 and word in lines[0] and not out,
             'explain %s: exit 2, one stderr line naming %s' % (' '.join(args), word),
             '%d %r %r' % (rc, out, err))
    rc, out, err = ctl(db, 'explain', 'nope.ex.test')
    t.ok(rc == 1 and err.strip() == 'gslbctl: explain: no pool nope.ex.test.',
         'explain of an unknown pool: exit 1', '%d %r' % (rc, err))
    rc, out, err = ctl(db, 'explain', 'w.ex.test', '--geoip', '/nonexistent/geo.mmdb')
    t.ok(rc == 1 and len(err.strip().splitlines()) == 1 and '--geoip' in err,
         'explain --geoip with a missing file: exit 1, one line', '%d %r' % (rc, err))
    t.ok(srv.alive(), 'gslbd still running')


if __name__ == '__main__':
    g.run(main)
