#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""--metrics (README "Metrics"): the Prometheus endpoint of a real gslbd, scraped over real sockets.

The counters are checked against the traffic this script sends (exact deltas per transport, qtype,
rcode and pool member), the health metrics against a live and a closed loopback port, the reload
counters against gslbctl changes and a broken zone file, and the HTTP side against well-formed,
malformed, oversized, silent and trickled requests, and more idle connections than it serves.
"""

import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
ZONE_NAME = 'metrics.test.'
ZONE = """\
$TTL 3600
$ORIGIN metrics.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
	IN AAAA	2001:db8::1
"""
REQ_MAX = 8192          # METRICS_REQ_MAX in src/server/http.c
TIMEOUT_S = 5           # METRICS_TIMEOUT_MS
CONNS_MAX = 16          # METRICS_CONNS_MAX
CHECK = ['--type', 'tcp', '--interval', '1', '--timeout', '0.5', '--rise', '2', '--fall', '2']

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_exposition(text):
    """Prometheus text format 0.0.4 -> ({(name, labels): value}, {name: type}, [errors])."""
    samples, types, errors = {}, {}, []
    if not text.endswith('\n'):
        errors.append('the text does not end with a newline')
    for n, line in enumerate(text.split('\n')[:-1], 1):
        if line.startswith('# TYPE '):
            parts = line.split(' ')
            if len(parts) != 4 or parts[3] not in ('counter', 'gauge', 'histogram', 'summary',
                                                   'untyped'):
                errors.append('%d: bad TYPE line %r' % (n, line))
            elif parts[2] in types:
                errors.append('%d: second TYPE for %s' % (n, parts[2]))
            else:
                types[parts[2]] = parts[3]
            continue
        if line.startswith('#'):
            if not line.startswith('# HELP '):
                errors.append('%d: comment %r' % (n, line))
            continue
        m = SAMPLE.match(line)
        if not m:
            errors.append('%d: not a sample: %r' % (n, line))
            continue
        name, ltext, value = m.groups()
        labels = {}
        if ltext:
            pos = 0
            while pos < len(ltext):
                lm = LABEL.match(ltext, pos)
                if not lm:
                    errors.append('%d: bad labels %r' % (n, ltext))
                    break
                labels[lm.group(1)] = re.sub(r'\\(.)', lambda e: '\n' if e.group(1) == 'n'
                                             else e.group(1), lm.group(2))
                pos = lm.end()
        try:
            v = float(value)
        except ValueError:
            errors.append('%d: value %r is not a float' % (n, value))
            continue
        base = name
        if name not in types:
            for suffix in ('_bucket', '_sum', '_count'):
                if name.endswith(suffix) and types.get(name[:-len(suffix)]) == 'histogram':
                    base = name[:-len(suffix)]
        if base not in types:
            errors.append('%d: %s has no TYPE line before it' % (n, name))
        elif types[base] == 'counter' and not name.endswith('_total'):
            errors.append('%d: counter %s does not end in _total' % (n, name))
        if not name.startswith('gslbd_'):
            errors.append('%d: %s is not prefixed gslbd_' % (n, name))
        key = (name, frozenset(labels.items()))
        if key in samples:
            errors.append('%d: duplicate sample %s %r' % (n, name, labels))
        samples[key] = v
    return samples, types, errors


class Metrics:
    """One parsed scrape."""

    def __init__(self, text):
        self.text = text
        self.samples, self.types, self.errors = parse_exposition(text)

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name):
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}


def read_to_close(s):
    """Everything the server sends until it closes the connection."""
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def http(port, request, host='127.0.0.1', timeout=5.0):
    """Send raw request bytes; returns (status, headers dict, body bytes) or (None, None, raw)."""
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.sendall(request)
        data = read_to_close(s)
    finally:
        s.close()
    head, sep, body = data.partition(b'\r\n\r\n')
    if not sep:
        return None, None, data
    lines = head.decode('latin-1').split('\r\n')
    m = re.match(r'^HTTP/1\.1 (\d{3}) ', lines[0])
    if not m:
        return None, None, data
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(':')
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body


def scrape(port, host='127.0.0.1'):
    status, headers, body = http(port, b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', host)
    if status != 200:
        raise RuntimeError('scrape: status %r: %r' % (status, body[:200]))
    return Metrics(body.decode('utf-8'))


def ctl(db, *args):
    rc, out, err = g.gslbctl(db, *args, timeout=30)
    if rc != 0:
        raise RuntimeError('gslbctl %s: exit %d: %s' % (' '.join(map(str, args)), rc, err))
    return out


def closed_port(host='127.0.0.1'):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()       # bound, never listened: a connect is refused
    return port


def delta(before, after, name, **labels):
    a, b = after.get(name, **labels), before.get(name, **labels)
    return None if a is None or b is None else a - b


def test_format(t, m):
    t.eq(m.errors, [], 'the scrape parses as Prometheus text: TYPE before samples, float values')
    want = {'gslbd_queries_total': 'counter', 'gslbd_queries_by_qtype_total': 'counter',
            'gslbd_responses_total': 'counter', 'gslbd_dropped_total': 'counter',
            'gslbd_truncated_total': 'counter', 'gslbd_geo_cache_hits_total': 'counter',
            'gslbd_geo_cache_misses_total': 'counter', 'gslbd_pool_answers_total': 'counter',
            'gslbd_member_up': 'gauge', 'gslbd_target_up': 'gauge',
            'gslbd_probes_total': 'counter', 'gslbd_probe_duration_seconds': 'histogram',
            'gslbd_health_transitions_total': 'counter', 'gslbd_reloads_total': 'counter',
            'gslbd_health_results_queued': 'gauge',
            'gslbd_health_results_dropped_total': 'counter',
            'gslbd_health_changes_dropped_total': 'counter',
            'gslbd_reload_failures_total': 'counter', 'gslbd_snapshot_age_seconds': 'gauge',
            'gslbd_snapshot_generation': 'gauge', 'gslbd_rrsigs_total': 'counter'}
    t.eq({k: m.types.get(k) for k in want}, want, 'every documented metric has its TYPE')
    for name in want:
        t.ok(('# HELP %s ' % name) in m.text, '%s has a HELP line' % name)
    t.ok(m.get('gslbd_snapshot_generation') is not None and
         m.get('gslbd_snapshot_generation') >= 1, 'snapshot generation >= 1',
         m.get('gslbd_snapshot_generation'))
    age = m.get('gslbd_snapshot_age_seconds')
    t.ok(age is not None and 0 <= age < 120, 'snapshot age is a plausible number of seconds', age)


def test_queries(t, srv, port):
    before = scrape(port)
    ask = lambda name, qtype, proto='udp': g.exchange(  # noqa: E731
        g.make_query(name, qtype), srv.addr4, proto, timeout=1.0).msg
    got = []
    for _ in range(7):
        got.append(ask('ns1.' + ZONE_NAME, 'A'))
    for _ in range(3):
        got.append(ask('ns1.' + ZONE_NAME, 'AAAA'))
    for i in range(2):
        got.append(ask('nope%d.%s' % (i, ZONE_NAME), 'TXT'))
    got.append(ask('elsewhere.invalid.', 'A'))                  # REFUSED
    for _ in range(2):
        got.append(ask(ZONE_NAME, 'MX', 'tcp'))
    t.ok(all(r is not None for r in got), 'all 15 queries answered')
    # Five bytes are not a DNS header: dropped without an answer, not counted as a query.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'\x00\x01\x02\x03\x04', srv.addr4)
    s.close()
    g.exchange(g.make_query(ZONE_NAME, 'SOA'), srv.addr4, 'udp', timeout=1.0)
    time.sleep(0.1)
    after = scrape(port)
    d = lambda name, **lb: delta(before, after, name, **lb)  # noqa: E731
    t.eq(d('gslbd_queries_total', transport='udp'), 14.0, 'queries over UDP: +14')
    t.eq(d('gslbd_queries_total', transport='tcp'), 2.0, 'queries over TCP: +2')
    t.eq({q: d('gslbd_queries_by_qtype_total', qtype=q)
          for q in ('A', 'AAAA', 'TXT', 'MX', 'SOA', 'NS', 'other')},
         {'A': 8.0, 'AAAA': 3.0, 'TXT': 2.0, 'MX': 2.0, 'SOA': 1.0, 'NS': 0.0, 'other': 0.0},
         'queries by qtype: +8 A, +3 AAAA, +2 TXT, +2 MX, +1 SOA')
    t.eq({r: d('gslbd_responses_total', rcode=r)
          for r in ('NOERROR', 'NXDOMAIN', 'REFUSED', 'FORMERR', 'SERVFAIL')},
         {'NOERROR': 13.0, 'NXDOMAIN': 2.0, 'REFUSED': 1.0, 'FORMERR': 0.0, 'SERVFAIL': 0.0},
         'responses by rcode: +13 NOERROR, +2 NXDOMAIN, +1 REFUSED')
    t.eq(d('gslbd_dropped_total'), 1.0, 'a 5-byte datagram: dropped +1')
    total = sum(v for k, v in after.series('gslbd_queries_by_qtype_total').items())
    t.eq(total, after.get('gslbd_queries_total', transport='udp') +
         after.get('gslbd_queries_total', transport='tcp'),
         'queries by qtype add up to queries by transport')


def test_pool_answers(t, srv, port):
    before = scrape(port)
    n = 30
    for _ in range(n):
        m = g.exchange(g.make_query('lb.' + ZONE_NAME, 'A'), srv.addr4, 'udp', timeout=1.0).msg
        if m is None or len(m.answer) != 1:
            t.ok(False, 'lb pool answers one address', m)
            return
    after = scrape(port)
    per = {mb: delta(before, after, 'gslbd_pool_answers_total', pool='lb.' + ZONE_NAME,
                     member=mb) for mb in ('a', 'b', 'c')}
    t.ok(None not in per.values(), 'a pool_answers series per member of lb', per)
    if None not in per.values():
        t.eq(sum(per.values()), float(n), 'answers by member add up to the %d queries' % n)
        t.ok(sum(1 for v in per.values() if v > 0) >= 2,
             'weighted pool: more than one member answered', per)
    t.eq(delta(before, after, 'gslbd_queries_by_qtype_total', qtype='A'), float(n),
         'the pool queries counted as A queries')
    hc = after.series('gslbd_pool_answers_total')
    t.ok(frozenset({('pool', 'hc.' + ZONE_NAME), ('member', 'bad')}) in hc,
         'members never answered have a series too')


def test_health(t, port, bad_port):
    def state():
        m = scrape(port)
        bad = m.get('gslbd_member_up', pool='hc.' + ZONE_NAME, member='bad', address='127.0.0.2')
        return m if bad == 0.0 else None
    m = g.wait_for(state, 15, 0.25)
    t.ok(m is not None, 'the member checked on a closed port shows gslbd_member_up 0')
    if m is None:
        return
    t.eq(m.get('gslbd_member_up', pool='hc.' + ZONE_NAME, member='good', address='127.0.0.1'),
         1.0, 'the member checked on a live port shows gslbd_member_up 1')
    t.eq(m.get('gslbd_member_up', pool='lb.' + ZONE_NAME, member='a', address='192.0.2.1'),
         1.0, 'a member without a check is up')
    # The target key names the check's settings that are not the defaults (CHECK's).
    t.eq(m.get('gslbd_target_up', target='tcp 127.0.0.2:%d interval 1s timeout 0.5s fall 2'
               % bad_port), 0.0,
         'gslbd_target_up of the closed port is 0')
    t.ok(m.get('gslbd_health_transitions_total', to='down') >= 1,
         'the transitions counter moved (to down)', m.get('gslbd_health_transitions_total',
                                                          to='down'))
    t.ok(m.get('gslbd_probes_total', result='fail') >= 2, 'failed probes counted')
    t.ok(m.get('gslbd_probes_total', result='ok') >= 1, 'passing probes counted')

    # Counters written by the health thread and read racily: a scrape can fall between two of
    # them, so look for one consistent scrape among a few.
    consistent = None
    for _ in range(10):
        m = scrape(port)
        probes = (m.get('gslbd_probes_total', result='ok') +
                  m.get('gslbd_probes_total', result='fail'))
        if m.get('gslbd_probe_duration_seconds_count') == probes:
            consistent = m
            break
        time.sleep(0.05)
    t.ok(consistent is not None, 'probe histogram count equals probes total')
    if consistent is None:
        return
    m = consistent
    buckets = sorted(((float(dict(k)['le']), v) for k, v in
                      m.series('gslbd_probe_duration_seconds_bucket').items()))
    t.ok(len(buckets) >= 2 and buckets[-1][0] == float('inf'), 'histogram has a +Inf bucket')
    t.ok(all(buckets[i][1] <= buckets[i + 1][1] for i in range(len(buckets) - 1)),
         'histogram buckets are cumulative', buckets)
    t.eq(buckets[-1][1], m.get('gslbd_probe_duration_seconds_count'), '+Inf bucket == _count')
    s = m.get('gslbd_probe_duration_seconds_sum')
    t.ok(s is not None and 0 <= s < probes * 1.0, 'probe latency sum is plausible', s)


def test_reloads(t, srv, port, db):
    m0 = scrape(port)
    r0, f0 = m0.get('gslbd_reloads_total'), m0.get('gslbd_reload_failures_total')
    gen0 = m0.get('gslbd_snapshot_generation')
    ctl(db, 'member', 'add', 'lb.' + ZONE_NAME, 'd', '--address', '192.0.2.4')
    m = g.wait_for(lambda: (lambda x: x if x.get('gslbd_pool_answers_total', pool='lb.' +
                                               ZONE_NAME, member='d') is not None else None)(
        scrape(port)), 10)
    t.ok(m is not None, 'a member added with gslbctl gets its series')
    if m is None:
        return
    t.ok(m.get('gslbd_reloads_total') > r0, 'gslbctl change: gslbd_reloads_total moved',
         (r0, m.get('gslbd_reloads_total')))
    t.eq(m.get('gslbd_reload_failures_total'), f0, 'gslbctl change: no failure counted')
    t.ok(m.get('gslbd_snapshot_generation') > gen0, 'the snapshot generation moved')
    t.ok(m.get('gslbd_snapshot_age_seconds') < 5, 'the new snapshot is young',
         m.get('gslbd_snapshot_age_seconds'))

    r1 = m.get('gslbd_reloads_total')
    bad = os.path.join(srv.zones_dir, 'broken.test.zone')
    with open(bad, 'w') as f:
        f.write('$ORIGIN broken.test.\n@ IN SOA this is not a zone\n')
    m = g.wait_for(lambda: (lambda x: x if x.get('gslbd_reload_failures_total') > f0 else None)(
        scrape(port)), 10)
    t.ok(m is not None, 'a broken zone file: gslbd_reload_failures_total moved')
    if m is None:
        return
    t.eq(m.get('gslbd_reload_failures_total'), f0 + 1, 'one failure counted for one bad reload')
    t.ok(m.get('gslbd_reloads_total') > r1, 'the failed reload is a reload too')
    os.unlink(bad)
    f1 = m.get('gslbd_reload_failures_total')
    r2 = m.get('gslbd_reloads_total')
    m = g.wait_for(lambda: (lambda x: x if x.get('gslbd_reloads_total') > r2 else None)(
        scrape(port)), 10)
    t.ok(m is not None, 'removing the broken file reloads again')
    if m is not None:
        t.eq(m.get('gslbd_reload_failures_total'), f1, 'a good reload counts no failure')


def test_member_churn(t, srv, port, db):
    """A member that leaves gives its counter slot back; the next member takes it from zero."""
    pool = 'lb.' + ZONE_NAME
    for _ in range(40):
        g.exchange(g.make_query(pool, 'A'), srv.addr4, 'udp', timeout=1.0)
    m = scrape(port)
    d = m.get('gslbd_pool_answers_total', pool=pool, member='d')
    t.ok(d is not None and d > 0, 'member d answered before it leaves', d)
    ctl(db, 'member', 'rm', pool, 'd')
    m = g.wait_for(lambda: (lambda x: x if x.get('gslbd_pool_answers_total', pool=pool,
                                               member='d') is None else None)(scrape(port)), 10)
    t.ok(m is not None, 'a removed member has no series any more')
    ctl(db, 'member', 'add', pool, 'e', '--address', '192.0.2.5')
    m = g.wait_for(lambda: (lambda x: x if x.get('gslbd_pool_answers_total', pool=pool,
                                               member='e') is not None else None)(scrape(port)), 10)
    t.ok(m is not None, 'the member added next has its series')
    if m is None:
        return
    # e takes d's slot (the one given back): it must not inherit d's answers.
    t.eq(m.get('gslbd_pool_answers_total', pool=pool, member='e'), 0.0,
         "the new member starts at 0, not at the removed member's count")
    for _ in range(40):
        g.exchange(g.make_query(pool, 'A'), srv.addr4, 'udp', timeout=1.0)
    after = scrape(port)
    per = {mb: delta(m, after, 'gslbd_pool_answers_total', pool=pool, member=mb)
           for mb in ('a', 'b', 'c', 'e')}
    t.ok(None not in per.values() and sum(per.values()) == 40.0,
         'after the churn the answers by member add up to the 40 queries', per)


def test_reload_series(t, srv, port, db):
    """Answer counters across reloads that add, remove and rename members: exact lines."""
    p1, p2 = 'rn1.' + ZONE_NAME, 'rn2.' + ZONE_NAME
    # As many answers as members: every query names each member once, so the counts are exact.
    ctl(db, 'pool', 'add', p1, '--answers', '4')
    ctl(db, 'pool', 'add', p2, '--answers', '4')
    for pool, mb, addr in ((p1, 'a', '192.0.2.11'), (p1, 'b', '192.0.2.12'),
                           (p2, 'a', '192.0.2.21'), (p2, 'b', '192.0.2.22'),
                           (p2, 'c', '192.0.2.23')):
        ctl(db, 'member', 'add', pool, mb, '--address', addr)

    def block(text):
        return [ln for ln in text.split('\n')
                if ln.startswith('gslbd_pool_answers_total{pool="rn')]

    def line(pool, mb, v):
        return 'gslbd_pool_answers_total{pool="%s",member="%s"} %d' % (pool, mb, v)

    def ask(pool, n):
        for _ in range(n):
            g.exchange(g.make_query(pool, 'A'), srv.addr4, 'udp', timeout=1.0)

    want = [line(p1, 'a', 0), line(p1, 'b', 0), line(p2, 'a', 0), line(p2, 'b', 0),
            line(p2, 'c', 0)]
    m = g.wait_for(lambda: (lambda x: x if sorted(block(x.text)) == sorted(want) else None)(
        scrape(port)), 10)
    t.ok(m is not None, 'two new pools: a series per member, at 0')
    if m is None:
        return
    ask(p1, 5)
    ask(p2, 7)
    want = [line(p1, 'a', 5), line(p1, 'b', 5), line(p2, 'a', 7), line(p2, 'b', 7),
            line(p2, 'c', 7)]
    t.eq(sorted(block(scrape(port).text)), sorted(want), 'each member counted every answer')

    # rn2: b removed, c renamed c2, d added, each reload seen before the next, so the slot b
    # gives back is there for c2 or d to take; rn1 unchanged throughout.
    def settle(want):
        return g.wait_for(lambda: (lambda x: x if sorted(block(x.text)) == sorted(want)
                                   else None)(scrape(port)), 10)

    ctl(db, 'member', 'rm', p2, 'b')
    m = settle([line(p1, 'a', 5), line(p1, 'b', 5), line(p2, 'a', 7), line(p2, 'c', 7)])
    t.ok(m is not None, 'b removed: its series is gone, the others kept their answers')
    con = sqlite3.connect(db, timeout=10)
    with con:
        con.execute("UPDATE member SET name = 'c2' WHERE name = 'c' AND pool_id IN "
                    "(SELECT id FROM pool WHERE name LIKE 'rn2.%')")
    con.close()
    m = settle([line(p1, 'a', 5), line(p1, 'b', 5), line(p2, 'a', 7), line(p2, 'c2', 0)])
    t.ok(m is not None, "c renamed c2: a new series from 0, not c's or b's answers",
         m and block(m.text))
    ctl(db, 'member', 'add', p2, 'd', '--address', '192.0.2.24')
    m = settle([line(p1, 'a', 5), line(p1, 'b', 5), line(p2, 'a', 7), line(p2, 'c2', 0),
                line(p2, 'd', 0)])
    t.ok(m is not None, "d added: from 0, not a removed member's answers",
         m and block(m.text))
    if m is None:
        return
    again = scrape(port)
    t.eq(block(again.text), block(m.text), 'the same state scrapes to the same lines, in order')
    ask(p2, 3)
    want = [line(p1, 'a', 5), line(p1, 'b', 5), line(p2, 'a', 10), line(p2, 'c2', 3),
            line(p2, 'd', 3)]
    t.eq(sorted(block(scrape(port).text)), sorted(want),
         'and every member of rn2 counts on from there')


def test_escaping(t, port, db):
    # gslbctl allows only a-z 0-9 _ . - in member names; the database itself does not, and the
    # exposition format must survive whatever it holds.
    weird = 'we"ird\\na\nme'
    con = sqlite3.connect(db, timeout=10)
    with con:
        con.execute("UPDATE member SET name = ? WHERE name = 'c'", (weird,))
    con.close()
    m = g.wait_for(lambda: (lambda x: x if x.get('gslbd_pool_answers_total', pool='lb.' +
                                               ZONE_NAME, member=weird) is not None else None)(
        scrape(port)), 10)
    t.ok(m is not None, 'a member name with a quote, a backslash and a newline round-trips')
    if m is not None:
        t.eq(m.errors, [], 'the scrape with that name still parses')
        t.ok('member="we\\"ird\\\\na\\nme"' in m.text, 'escaped as \\", \\\\ and \\n')


def test_http(t, port):
    st, hd, body = http(port, b'GET /metrics HTTP/1.0\r\n\r\n')
    t.eq(st, 200, 'HTTP/1.0 GET /metrics: 200')
    if st == 200:
        t.eq(hd.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8',
             'Content-Type of the exposition format')
        t.eq(hd.get('content-length'), str(len(body)), 'Content-Length matches the body')
        t.eq(hd.get('connection'), 'close', 'Connection: close')
    st, hd, body = http(port, b'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
    t.ok(st == 200 and body == b'' and int(hd.get('content-length', '0')) > 0,
         'HEAD /metrics: 200, a length, no body', (st, hd, body[:80]))
    st, _, body = http(port, b'GET /metrics?name[]=x HTTP/1.1\r\nHost: x\r\n\r\n')
    t.ok(st == 200 and b'gslbd_queries_total' in body, 'a query string is ignored')
    st, _, _ = http(port, b'GET http://x/metrics HTTP/1.1\r\n\r\n')
    t.eq(st, 200, 'absolute-form target')
    st, _, _ = http(port, b'\r\nGET /metrics HTTP/1.1\nHost: x\n\n')
    t.eq(st, 200, 'bare LF line ends and a leading empty line are accepted')
    # A request dribbled a byte at a time (the head's end split across reads) is still served.
    s = socket.create_connection(('127.0.0.1', port))
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in b'\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n':
        s.send(bytes([b]))
        time.sleep(0.005)
    data = read_to_close(s)
    s.close()
    t.ok(data.startswith(b'HTTP/1.1 200 '), 'a request sent a byte at a time: 200', data[:80])
    for path in (b'/metricsx', b'/metrics/', b'/other'):   # / is the status page
        st, _, _ = http(port, b'GET ' + path + b' HTTP/1.1\r\nHost: x\r\n\r\n')
        t.eq(st, 404, 'GET %s: 404' % path.decode())
    for method in (b'POST', b'PUT', b'DELETE', b'OPTIONS'):
        st, hd, _ = http(port, method + b' /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
        t.ok(st == 405 and hd.get('allow') == 'GET, HEAD', '%s /metrics: 405 with Allow'
             % method.decode(), (st, hd))
    for req in (b'GARBAGE\r\n\r\n', b'GET /metrics\r\n\r\n', b'GET /metrics HTTP/2.0\r\n\r\n',
                b'GET metrics HTTP/1.1\r\n\r\n', b'GET  /metrics HTTP/1.1\r\n\r\n',
                b'GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n',
                b'GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n',
                b'GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n',
                b'G\x01T /metrics HTTP/1.1\r\n\r\n'):
        st, _, raw = http(port, req)
        t.eq(st, 400, 'malformed %r: 400' % req)
    # A head that fills the buffer with no end: 400 (exactly the limit, so nothing is left unread
    # and the answer cannot be lost to a reset).
    big = b'GET /metrics HTTP/1.1\r\nX-Pad: ' + b'a' * REQ_MAX
    st, _, _ = http(port, big[:REQ_MAX])
    t.eq(st, 400, 'a %d-byte head without its end: 400' % REQ_MAX)
    # Just under the limit with its end: still served.
    pad = REQ_MAX - len(b'GET /metrics HTTP/1.1\r\nX-Pad: \r\n\r\n')
    st, _, _ = http(port, b'GET /metrics HTTP/1.1\r\nX-Pad: ' + b'a' * pad + b'\r\n\r\n')
    t.eq(st, 200, 'a %d-byte head with its end: 200' % REQ_MAX)


def test_slow_clients(t, port):
    silent = socket.create_connection(('127.0.0.1', port))
    silent.settimeout(TIMEOUT_S + 3)
    t0 = time.monotonic()
    time.sleep(0.2)
    m = scrape(port)
    t.ok(time.monotonic() - t0 < 2, 'a silent client does not block another scrape')
    t.eq(m.errors, [], 'that scrape is complete')
    try:
        data = silent.recv(100)
    except OSError as e:
        data = e
    waited = time.monotonic() - t0
    t.ok(data == b'' and TIMEOUT_S - 0.5 <= waited <= TIMEOUT_S + 2.5,
         'a silent client is closed after about %d s' % TIMEOUT_S, (data, waited))
    silent.close()

    # The cap: more than CONNS_MAX silent connections held; the least recently active are closed
    # to make room, so idle connections cannot lock a scrape out.
    held = [socket.create_connection(('127.0.0.1', port)) for _ in range(CONNS_MAX + 4)]
    t0 = time.monotonic()
    ok = _scrape_ok(port)
    t.ok(ok and time.monotonic() - t0 < 2,
         'a scrape succeeds at once while %d idle connections are open' % len(held),
         'scrape ok %r after %.1f s' % (ok, time.monotonic() - t0))
    g.wait_for(lambda: sum(map(g.is_closed, held)) >= 5, 3)
    closed = [i for i, c in enumerate(held) if g.is_closed(c)]
    t.diag('idle connections closed to make room: %s' % closed)
    t.ok(len(closed) >= 5 and all(i < 8 for i in closed),
         'the least recently active connections were closed to make room', closed)
    t.ok(not any(g.is_closed(c) for c in held[-8:]), 'the most recent ones are still open')
    for s in held:
        s.close()
    t.ok(g.wait_for(lambda: _scrape_ok(port), 3), 'scrapes work once the held connections are gone')

    # A client trickling a request that never ends is closed all the same, TIMEOUT_S after it
    # connected: each byte is activity, but none extends the time a request has to arrive.
    s = socket.create_connection(('127.0.0.1', port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    s.sendall(b'GET /metrics HTTP/1.1\r\nX-Pad: ')
    waited = None
    for _ in range(int((TIMEOUT_S + 3) / 0.25)):
        if g.is_closed(s, 0.25):
            waited = time.monotonic() - t0
            break
        try:
            s.send(b'a')
        except OSError:
            waited = time.monotonic() - t0
            break
    s.close()
    t.ok(waited is not None and TIMEOUT_S - 0.5 <= waited <= TIMEOUT_S + 2.5,
         'a client trickling a request is closed about %d s after it connected' % TIMEOUT_S,
         'closed after %r s' % waited)


def _scrape_ok(port):
    try:
        return scrape(port) is not None
    except (OSError, RuntimeError):
        return False


def test_bad_options(t, tmp):
    zones = os.path.join(tmp, 'zones-bad')
    os.makedirs(zones, exist_ok=True)
    dns_port = g.free_port(False)
    base = [g.GSLBD, '--listen', '127.0.0.1:%d' % dns_port, '--zones', zones, '--db',
            os.path.join(tmp, 'bad.db'), '--threads', '1']
    for v in ('127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:abc', '::1:9100',
              '[::1]9100', '[::1', 'localhost:9100', '1.2.3:9100', ':9100'):
        p = subprocess.run(base + ['--metrics', v], capture_output=True, text=True, timeout=10)
        t.ok(p.returncode == 1 and '--metrics' in p.stderr and p.stderr.count('\n') <= 2,
             '--metrics %s refused at start-up with exit 1 and one message' % v,
             (p.returncode, p.stderr))
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    bport = busy.getsockname()[1]
    p = subprocess.run(base + ['--metrics', '127.0.0.1:%d' % bport], capture_output=True,
                       text=True, timeout=10)
    busy.close()
    t.ok(p.returncode == 1 and 'cannot serve metrics on 127.0.0.1:%d' % bport in p.stderr,
         'a metrics port in use: exit 1 with a clear message', (p.returncode, p.stderr[-500:]))


def test_ipv6(t, tmp, zone):
    if not g.have_ipv6():
        t.skip('--metrics [::1]:PORT', 'no IPv6 on loopback')
        return
    mport = _free_tcp('::1')
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, v6=False, lifetime=30,
                  extra_args=['--metrics', '[::1]:%d' % mport]).start()
    try:
        wait_listening(mport, '::1')
        m = scrape(mport, host='::1')
        t.eq(m.errors, [], '--metrics [::1]:PORT serves over IPv6')
    finally:
        srv.check_stop(t, 'gslbd with IPv6 metrics')


def test_listening_before_answers(t, tmp, zone):
    """Once gslbd answers a DNS query, --metrics listens: a scrape at once is not refused."""
    # Many workers: the threads started after the first that answers take a while.  Started
    # eight times, as the moment is short.
    wire = g.make_query(ZONE_NAME, 'SOA').to_wire()
    refused = []
    for i in range(8):
        mport = _free_tcp('127.0.0.1')
        srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=None, v6=False, lifetime=30,
                      extra_args=['--metrics', '127.0.0.1:%d' % mport, '--threads', '32'])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.01)
        answered = False
        srv.start()
        try:
            end = time.monotonic() + 10
            while not answered and time.monotonic() < end and srv.alive():
                s.sendto(wire, srv.addr4)
                try:
                    answered = len(s.recv(4096)) > 0
                except OSError:
                    pass
            if answered:
                try:
                    socket.create_connection(('127.0.0.1', mport), timeout=2).close()
                except OSError as e:
                    refused.append((i, str(e)))
        finally:
            s.close()
            stopped = srv.check_stop(t, 'start %d: gslbd with 32 threads' % i)
        if not t.ok(answered, 'start %d: gslbd with 32 threads answers' % i) or not stopped:
            break
    t.eq(refused, [], 'the metrics port listens as soon as a DNS query is answered')


def wait_listening(port, host, timeout=5):
    """Wait until --metrics accepts connections (gslbd listens there before it answers DNS)."""
    def listening():
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False
    return g.wait_for(listening, timeout, step=0.05)


def _free_tcp(host):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbtest-metrics-')
    zone = os.path.join(tmp, 'metrics.test.zone')
    with open(zone, 'w') as f:
        f.write(ZONE)
    test_bad_options(t, tmp)

    live = g.Listener()
    bad_port = closed_port('127.0.0.2')
    mport = _free_tcp('127.0.0.1')
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, v6=False, lifetime=120,
                  extra_args=['--metrics', '127.0.0.1:%d' % mport])
    db = os.path.join(srv.tmp, 'gslb.db')
    ctl(db, 'init')
    ctl(db, 'pool', 'add', 'lb.' + ZONE_NAME, '--answers', '1')
    for mb, addr in (('a', '192.0.2.1'), ('b', '192.0.2.2'), ('c', '192.0.2.3')):
        ctl(db, 'member', 'add', 'lb.' + ZONE_NAME, mb, '--address', addr)
    ctl(db, 'pool', 'add', 'hc.' + ZONE_NAME, '--answers', '2')
    ctl(db, 'member', 'add', 'hc.' + ZONE_NAME, 'good', '--address', '127.0.0.1')
    ctl(db, 'member', 'add', 'hc.' + ZONE_NAME, 'bad', '--address', '127.0.0.2')
    ctl(db, 'check', 'set', 'hc.' + ZONE_NAME, '--member', 'good', '--port', live.port, *CHECK)
    ctl(db, 'check', 'set', 'hc.' + ZONE_NAME, '--member', 'bad', '--port', bad_port, *CHECK)
    srv.start()
    t.on_fail.append(lambda: srv.dump(t))
    t.ok(('metrics: serving http://127.0.0.1:%d/metrics' % mport) in srv.stderr(),
         'gslbd logs where it serves metrics')

    wait_listening(mport, '127.0.0.1')
    test_format(t, scrape(mport))
    test_queries(t, srv, mport)
    test_pool_answers(t, srv, mport)
    test_health(t, mport, bad_port)
    test_reloads(t, srv, mport, db)
    test_member_churn(t, srv, mport, db)
    test_reload_series(t, srv, mport, db)
    test_escaping(t, mport, db)
    test_http(t, mport)
    test_slow_clients(t, mport)
    srv.check_stop(t)
    test_ipv6(t, tmp, zone)
    test_listening_before_answers(t, tmp, zone)


if __name__ == '__main__':
    g.run(main)
