#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A weighted pool of 256 members (README "Balanced names"): real gslbd, gslbctl, tests/backend.py.

The answers of a pool this large come from its selection cache, which the control loop brings up to
date after a health change: the shares follow the weights, and a member whose check fails leaves the
answers within interval x fall + 1 s, as in a small pool, and comes back the same way.
"""

import json
import math
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402
import test_health_daemon as hd  # noqa: E402

ZONE_NAME = hd.ZONE_NAME
NAME = 'big.' + ZONE_NAME
INTERVAL, RISE, FALL = 1, 2, 2
HEAVY = 20000          # the checked member's weight
QUERIES = 3000
STREAK = 60            # answers in a row without the checked member: it is gone (p < 1e-12)


def weight(k):
    return 50 * (1 + k % 4)


def group(addr, heavy):
    """The checked member, or the weight of another member's address."""
    if addr == heavy:
        return 'heavy'
    return weight(int(addr.split('.')[2]) * 256 + int(addr.split('.')[3]))


def shares(t, srv, heavy, with_heavy, what):
    counts, ttl_seen, members = {}, set(), set()
    for _ in range(QUERIES):
        m = hd.ask(srv, NAME)
        got = hd.addrs(m)
        if not got:
            counts['none'] = counts.get('none', 0) + 1
            continue
        ttl_seen |= hd.ttls(m)
        for a in got:
            members.add(a)
            counts[group(a, heavy)] = counts.get(group(a, heavy), 0) + 1
    total = sum(weight(k) for k in range(1, 256)) + (HEAVY if with_heavy else 0)
    want = {w: sum(weight(k) for k in range(1, 256) if weight(k) == w) / total
            for w in (50, 100, 150, 200)}
    if with_heavy:
        want['heavy'] = HEAVY / total
    bad = []
    for key, p in want.items():
        n = counts.get(key, 0)
        sigma = math.sqrt(QUERIES * p * (1 - p))
        if abs(n - QUERIES * p) > 5 * sigma + 1:
            bad.append('%s: %d, expected %.0f +- %.0f' % (key, n, QUERIES * p, 5 * sigma))
    extra = set(counts) - set(want)
    t.ok(not bad and not extra,
         '%s: the shares of %d answers follow the weights (checked member %s)'
         % (what, QUERIES, 'in' if with_heavy else 'out'), '; '.join(bad) + ' ' + repr(counts))
    t.ok(len(members) >= 200, '%s: %d distinct members answered' % (what, len(members)))
    return ttl_seen


def gone_after(srv, heavy, present, timeout):
    """Seconds until the first of STREAK answers in a row with (present) or without the member."""
    t0 = time.monotonic()
    start, streak = None, 0
    while time.monotonic() - t0 < timeout:
        now = time.monotonic()
        got = hd.addrs(hd.ask(srv, NAME, timeout=0.5)) or set()
        if (heavy in got) == present:
            if streak == 0:
                start = now
            streak += 1
            if streak >= STREAK or present:
                return start - t0
        else:
            streak = 0
    return None


def run_tests(t, tmp):
    be = hd.Backend('127.0.0.91')
    heavy = be.host
    members = [{'name': 'hc', 'addresses': [heavy], 'weight': HEAVY,
                'check': {'type': 'http', 'port': be.port, 'interval': INTERVAL, 'timeout': 0.5,
                          'rise': RISE, 'fall': FALL}}]
    members += [{'name': 'm%d' % k, 'addresses': ['10.201.%d.%d' % (k >> 8, k & 255)],
                 'weight': weight(k)} for k in range(1, 256)]
    cfg = {'version': 1, 'pools': [{'name': NAME, 'policy': 'weighted', 'ttl': 30,
                                    'degraded_ttl': 5, 'members': members}]}
    path = os.path.join(tmp, 'big.json')
    with open(path, 'w') as f:
        json.dump(cfg, f)
    zone = os.path.join(tmp, 'health.test.zone')
    with open(zone, 'w') as f:
        f.write(hd.ZONE)
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=90, v6=False)
    ctl = hd.Ctl(hd.srv_db(srv))
    ctl.ok('init')
    ctl.ok('apply', path)
    srv.start()
    t.on_fail.append(lambda: srv.dump(t))

    took, got = hd.wait_dns(srv, NAME, lambda s: heavy in s, 5)
    t.ok(took is not None, 'the checked member of 256 is answered', got)
    ttl = shares(t, srv, heavy, True, 'all up')
    t.eq(ttl, {30}, 'all up: the pool ttl')

    be.control('503')
    took = gone_after(srv, heavy, False, INTERVAL * FALL + 4)
    limit = INTERVAL * FALL + 1
    t.ok(took is not None and took <= limit,
         'a check failing: the member leaves the answers within interval x fall + 1 s (%d s)'
         % limit, 'took %r s' % took)
    ttl = shares(t, srv, heavy, False, 'checked member down')
    t.eq(ttl, {5}, 'checked member down: degraded-ttl')

    be.control('200')
    took_up = gone_after(srv, heavy, True, INTERVAL * RISE + 4)
    limit = INTERVAL * RISE + 1
    t.ok(took_up is not None and took_up <= limit,
         'and comes back within interval x rise + 1 s (%d s)' % limit, 'took %r s' % took_up)
    t.diag('gone %s s after the 503, back %s s after the 200'
           % ('%.2f' % took if took is not None else 'never',
              '%.2f' % took_up if took_up is not None else 'never'))
    shares(t, srv, heavy, True, 'back up')
    srv.check_stop(t)


def main(t):
    if not os.access(hd.GSLBCTL, os.X_OK):
        t.skip('a weighted pool of 256 members', 'gslbctl not built: %s' % hd.GSLBCTL)
        return
    tmp = tempfile.mkdtemp(prefix='gslb-wl-')
    try:
        run_tests(t, tmp)
    finally:
        hd._cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        hd._cleanup()
