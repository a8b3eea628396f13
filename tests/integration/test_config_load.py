#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Loading many pools: the order the loader gives, lookups by name, duplicate names far apart in
an apply file, shared health targets counted once, and gslbd answering every pool (bench/scale.sh
measures the same paths at 100,000 pools)."""

import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
N = 3000
ZONE = """\
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 127.0.0.1
"""


def ctl(db, *args, stdin=None):
    return g.gslbctl(db, *args, stdin=stdin, timeout=120)


def addr(i, k):
    n = i * 4 + k
    return '10.%d.%d.%d' % (64 + (n >> 16), (n >> 8) & 255, n & 255)


def config(n, check_port=None):
    pools = []
    for i in range(n):
        p = {'name': 'p%d.load.test.' % i, 'members': [
            {'name': 'm%d' % k, 'addresses': [addr(i, k)]} for k in range(2 + i % 3)]}
        if check_port:
            # Every pool probes the same three loopback targets: three probes, not 3,000.
            for k, m in enumerate(p['members']):
                m['addresses'] = ['127.0.0.%d' % (1 + k % 3)]
            p['check'] = {'type': 'tcp', 'port': check_port, 'interval': 60}
        pools.append(p)
    return {'version': 1, 'pools': pools}


def main(t):
    d = g.Gslbd(zones=(), identity=False, wait_zone='load.test.')
    try:
        run_tests(t, d)
    finally:
        if d.alive():
            d.stop()
        d.cleanup()


def run_tests(t, d):
    db = os.path.join(d.tmp, 'gslb.db')
    with open(os.path.join(d.zones_dir, 'load.test.zone'), 'w') as f:
        f.write(ZONE)
    cfgfile = os.path.join(d.tmp, 'pools.json')
    rc, out, err = ctl(db, 'init')
    t.eq(rc, 0, 'gslbctl init')

    # ---- a duplicate name far from its first use is found, and named where it repeats
    c = config(N)
    c['pools'].append(dict(c['pools'][7]))
    with open(cfgfile, 'w') as f:
        json.dump(c, f)
    rc, out, err = ctl(db, 'apply', cfgfile)
    t.eq(rc, 2, 'apply: a pool named twice, 3,000 pools apart: exit 2')
    t.eq(err.strip(), 'gslbctl: apply: pools[%d].name: pool p7.load.test. appears twice' % N,
         'apply: the message names the second occurrence')

    # ---- apply, then apply again: no changes (every pool found by name in the database)
    with open(cfgfile, 'w') as f:
        json.dump(config(N), f)
    t0 = time.monotonic()
    rc, out, err = ctl(db, 'apply', cfgfile)
    t.eq(rc, 0, 'apply of %d pools: exit 0 (%.1f s)' % (N, time.monotonic() - t0))
    rc, out, err = ctl(db, 'apply', cfgfile)
    t.eq((rc, out.strip()), (0, 'no changes'), 'apply again: no changes')
    for i in (0, 1, N // 2, N - 1):
        rc, out, err = ctl(db, 'pool', 'show', 'p%d.load.test' % i)
        t.ok(rc == 0 and addr(i, 0) in out, 'pool show p%d finds it' % i, err or out)
    rc, out, err = ctl(db, 'pool', 'show', 'p%d.load.test' % N)
    t.eq(rc, 1, 'pool show of a name past the last: exit 1')
    rc, out, err = ctl(db, 'pool', 'show', 'a.load.test')
    t.eq(rc, 1, 'pool show of a name before the first: exit 1')

    # ---- the loader sorts each member's addresses and networks itself (no SQL ORDER BY)
    con = sqlite3.connect(db)
    mid = con.execute("SELECT member.id FROM member JOIN pool ON pool.id = member.pool_id "
                      "WHERE pool.name = 'p5.load.test.' AND member.name = 'm0'").fetchone()[0]
    # Inserted in descending text order, after the address apply wrote.
    for a, fam in (('2001:db8::9', 6), ('2001:db8::10', 6), ('10.9.9.9', 4), ('10.10.10.10', 4)):
        con.execute('INSERT INTO member_address (member_id, address, family) VALUES (?, ?, ?)',
                    (mid, a, fam))
    for n in ('198.51.100.0/24', '192.0.2.0/24', '10.0.0.0/8'):
        con.execute('INSERT INTO member_network (member_id, prefix) VALUES (?, ?)', (mid, n))
    con.commit()
    con.close()
    rc, out, err = ctl(db, 'export')
    m0 = [p for p in json.loads(out)['pools'] if p['name'] == 'p5.load.test.'][0]['members'][0]
    want = sorted([addr(5, 0), '2001:db8::9', '2001:db8::10', '10.9.9.9', '10.10.10.10'])
    t.eq(m0['addresses'], want, 'export: addresses in text order whatever the row order')
    t.eq(m0.get('networks'), ['10.0.0.0/8', '192.0.2.0/24', '198.51.100.0/24'],
         'export: networks in text order whatever the row order')
    rc, out, err = ctl(db, 'member', 'set', 'p5.load.test', 'm0', '--address', addr(5, 0))
    t.eq(rc, 0, 'member set: back to one address')

    # ---- gslbd answers every pool from its members
    d.start()
    bad = []
    for i in list(range(0, N, 97)) + [N - 1]:
        r = g.exchange(dns.message.make_query('p%d.load.test.' % i, 'A'), d.addr4)
        got = [rd.address for rrs in r.msg.answer for rd in rrs] if r.msg else None
        if not got or len(got) != 1 or got[0] not in [addr(i, k) for k in range(2 + i % 3)]:
            bad.append((i, got))
    t.eq(bad, [], 'gslbd: a sample of pools across all %d answer from their members' % N)
    t.ok('pools: %d loaded (0 not served)' % N in d.stderr(), 'gslbd logs every pool loaded')

    # ---- 3,000 pools sharing three checked addresses: three targets
    port = g.free_port(False)
    with open(cfgfile, 'w') as f:
        json.dump(config(N, check_port=port), f)
    rc, out, err = ctl(db, 'apply', cfgfile)
    t.eq(rc, 0, 'apply: every pool now checks three shared loopback targets')
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and 'health: 3 targets' not in d.stderr():
        time.sleep(0.1)
    t.ok('health: 3 targets' in d.stderr(), 'gslbd: 3,000 pools, one probe per distinct target',
         d.stderr()[-2000:])
    d.check_stop(t)


if __name__ == '__main__':
    g.run(main)
