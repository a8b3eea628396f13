#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Geo pools with EDNS Client Subnet; the geo file replaced under a running gslbd (3, 7)."""

import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.rdatatype  # noqa: E402

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
OURS = os.path.join(g.SRCDIR, 'geoip', 'gslb-test-city.mmdb')
MAXMIND = os.path.join(g.SRCDIR, 'geoip', 'maxmind', 'GeoIP2-City-Test.mmdb')

ZONE = """\
$TTL 3600
$ORIGIN geo.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
"""

# Each member is reached by one geo rule (README "Balanced names"): network, country, continent, distance.
POOLS = [
    ('www.geo.test', ['--policy', 'geo'], [
        ('net', ['--address', '192.0.2.10', '--address', '2001:db8::10',
                 '--network', '10.9.0.0/16']),
        ('de', ['--address', '192.0.2.20', '--address', '2001:db8::20', '--country', 'DE']),
        ('asia', ['--address', '192.0.2.30', '--address', '2001:db8::30',
                  '--continent', 'AS']),
        ('sanjose', ['--address', '192.0.2.40', '--address', '2001:db8::40',
                     '--location', '37.34,-121.89']),
    ]),
    ('w.geo.test', ['--policy', 'weighted'], [
        ('a', ['--address', '192.0.2.50']),
    ]),
]


def ctl(db, *args):
    return g.run_tool([GSLBCTL, '--db', db] + list(args), timeout=15)


def replace(src_path, dst):
    """Replace dst by rename, as an update tool does (a new inode under the old name)."""
    tmp = dst + '.new'
    if isinstance(src_path, bytes):
        with open(tmp, 'wb') as f:
            f.write(src_path)
    else:
        shutil.copy(src_path, tmp)
    os.rename(tmp, dst)


def main(t):
    if not os.access(GSLBCTL, os.X_OK):
        t.skip('geo pools', 'no gslbctl at %s' % GSLBCTL)
        return
    zdir = g.tempfile.mkdtemp(prefix='gslbtest-geo-')
    zfile = os.path.join(zdir, 'geo.test.zone')
    with open(zfile, 'w') as f:
        f.write(ZONE)
    geodir = g.tempfile.mkdtemp(prefix='gslbtest-geofile-')
    geo = os.path.join(geodir, 'city.mmdb')
    shutil.copy(OURS, geo)
    srv = g.Gslbd(zones=(zfile,), identity=False, wait_zone=None, lifetime=100,
                  extra_args=['--geoip', geo])
    t.on_fail.append(lambda: srv.dump(t))
    db = os.path.join(srv.tmp, 'gslb.db')
    rc, out = ctl(db, 'init')
    t.eq(rc, 0, 'gslbctl init')
    problems = []
    for name, popts, members in POOLS:
        rc, out = ctl(db, 'pool', 'add', name, *popts)
        if rc:
            problems.append('pool add %s: %s' % (name, out))
        for m, mopts in members:
            rc, out = ctl(db, 'member', 'add', name, m, *mopts)
            if rc:
                problems.append('member add %s %s: %s' % (name, m, out))
    if not t.ok(not problems, 'gslbctl builds the geo pools', '\n'.join(problems)):
        return
    srv.start()
    srv.wait_ready('geo.test.')
    shutil.rmtree(zdir, ignore_errors=True)

    def ask(name, ecs, qtype='A'):
        """(sorted addresses, ECS scope or None) for a query with ECS 'addr/len'."""
        addr, plen = ecs.split('/')
        opt = dns.edns.ECSOption(addr, int(plen))
        q = g.make_query(name, qtype, edns=0, options=[opt])
        m = g.exchange(q, srv.addr4, 'udp', timeout=1.0).msg
        if m is None:
            return None, None
        got = sorted(rd.to_text() for rr in m.answer for rd in rr
                     if rr.rdtype == dns.rdatatype.from_text(qtype))
        scope = [o.scopelen for o in m.options if isinstance(o, dns.edns.ECSOption)]
        return got, (scope[0] if scope else None)

    def check(name, ecs, want, scope, desc, qtype='A', n=5):
        res = [ask(name, ecs, qtype) for _ in range(n)]
        t.ok(all(r == (want, scope) for r in res), '%s: %s -> %s scope %s'
             % (desc, ecs, want, scope), 'got %r' % res)

    W = 'www.geo.test'
    check(W, '10.9.1.0/24', ['192.0.2.10'], 16, 'member --network: its length')
    check(W, '192.0.2.0/24', ['192.0.2.20'], 24, 'country: the mmdb network length')
    check(W, '10.2.3.0/24', ['192.0.2.30'], 16, 'continent: the mmdb network length')
    check(W, '10.8.0.100/32', ['192.0.2.30'], 25, 'continent, /25 network')
    check(W, '10.1.2.0/24', ['192.0.2.40'], 16, 'distance: the mmdb network length')
    check('w.geo.test', '192.0.2.0/24', ['192.0.2.50'], 0, 'weighted pool: scope 0')
    got, scope = ask(W, '0.0.0.0/0')
    t.eq(scope, 0, 'ECS source 0: scope 0')
    check(W, '2001:db8:1::/56', ['2001:db8::20'], 48, 'IPv6 ECS, country', qtype='AAAA')
    check(W, '2001:db8:1::/56', ['192.0.2.20'], 48, 'IPv6 ECS, A answer')

    # MaxMind's file: 175.16.199.0/24 is CN (AS); 192.0.2.0/24 is not in it.
    replace(MAXMIND, geo)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        if ask(W, '175.16.199.0/24') == (['192.0.2.30'], 24):
            break
        time.sleep(0.1)
    check(W, '175.16.199.0/24', ['192.0.2.30'], 24, 'replaced by rename: new file answers')
    # Not in MaxMind's file: rule 5, any member, no longer always the DE one.
    res = [ask(W, '192.0.2.0/24')[0] for _ in range(30)]
    t.ok(any(r != ['192.0.2.20'] for r in res), 'replaced: 192.0.2.0/24 is no longer DE',
         'got %r' % res)

    # Rewritten in place, as cp does: truncated, then written.  gslbd maps a private copy, so
    # lookups in between (fresh client networks, past the geo cache) never read a vanished page.
    with open(geo, 'r+b') as f:
        f.truncate(0)
    answered = 0
    for i in range(300):
        got, _ = ask(W, '11.%d.%d.0/24' % (i // 256, i % 256))
        answered += got is not None
    t.eq(answered, 300, 'geo file truncated in place: 300 queries from new networks answered')
    t.ok(srv.alive(), 'geo file truncated in place: gslbd still running')
    check(W, '175.16.199.0/24', ['192.0.2.30'], 24, 'truncated: the previous database answers')
    with open(MAXMIND, 'rb') as src, open(geo, 'r+b') as f:
        data = src.read()
        for k in range(0, len(data), 4096):   # written in pieces, lookups in between
            f.write(data[k:k + 4096])
            f.flush()
            if k % (64 * 4096) == 0:
                ask(W, '12.%d.0.0/16' % (k // 4096 % 256))
    t.ok(srv.alive(), 'geo file written back in place piece by piece: gslbd still running')
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        if ask(W, '175.16.199.0/24') == (['192.0.2.30'], 24):
            break
        time.sleep(0.1)
    check(W, '175.16.199.0/24', ['192.0.2.30'], 24, 'rewritten in place: the file answers')

    refused = srv.stderr().count('keeping the previous one')
    replace(b'this is not a MaxMind DB\n' * 40, geo)
    # Wait for gslbd to have read (and refused) the file, not a fixed time.
    deadline = time.monotonic() + 5
    while srv.stderr().count('keeping the previous one') == refused and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    err = srv.stderr()
    t.ok(err.count('keeping the previous one') > refused,
         'stderr says the broken file was refused', err[-2000:])
    check(W, '175.16.199.0/24', ['192.0.2.30'], 24, 'garbage file: the previous one answers')
    t.ok(srv.alive(), 'gslbd still running')
    srv.stop()
    # Each check asks the same client 5 times: the workers' geo caches must have served most.
    err = srv.stderr()
    m = re.search(r'geo cache: (\d+) hits, (\d+) misses', err)
    hits, misses = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    t.ok(m and hits > misses > 0, 'the exit log counts geo cache hits and misses',
         'got %r' % (m.group(0) if m else err[-1000:]))
    srv.check_stop(t)
    shutil.rmtree(geodir, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
