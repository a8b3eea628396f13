#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""One change among many pools: after each single change of every kind the running gslbd, which
reads and builds only the pools that changed and shares the others between snapshots (gslbd(8),
"The database"), answers exactly as a gslbd started afresh on a copy of the database.

Changes by gslbctl (member state, set, add, rm; pool set, add, rm; addresses, networks; checks),
by apply (a few pools, and many: the whole reload), and by direct SQL writes as another writer (a
cluster node's sync) would make them.  Every pool is asked A and AAAA, the geo pools with ECS too,
from both daemons; answers (rcode, records, TTLs) must be equal.
"""

import json
import os
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

NPOOLS = 240
ZONE = """\
$TTL 3600
$ORIGIN chg.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
deleg	IN NS	ns.elsewhere.example.
"""
# Health checks probe a closed loopback port: refused at once, down after one probe.
CHECK = {'type': 'tcp', 'port': 9, 'interval': 1, 'timeout': 0.5, 'rise': 1, 'fall': 1}


def pool_name(i):
    # Every 60th pool lies below the delegation: kept, not served.
    return 'p%d.deleg.chg.test.' % i if i % 60 == 59 else 'p%d.chg.test.' % i


def gen_pool(i):
    kind = i % 4
    members = []
    for k in range(2 + i % 3):
        # Loopback addresses: the checks probe them (refused at once, nothing leaves the host).
        m = {'name': 'm%d' % k, 'addresses': ['127.%d.%d.%d' % (1 + i // 250, i % 250, k + 1)],
             'weight': 100}
        if k == 0:
            m['addresses'].append('2001:db8:%x::%x' % (i, k + 1))
        if kind == 0:
            m['priority'] = k + 1
        if kind == 2:
            m['networks'] = ['172.%d.%d.0/24' % (16 + k, i % 250)]
        members.append(m)
    p = {'name': pool_name(i), 'policy': ('failover', 'weighted', 'geo', 'weighted')[kind],
         'ttl': 30 + i % 7, 'answers': 1 if kind == 0 else 64, 'members': members}
    if i % 40 == 3:
        p['check'] = dict(CHECK)
    return p


def questions(names, geo):
    """(name, type, ECS or None) for every pool name."""
    qs = []
    for n in sorted(names):
        qs += [(n, 'A', None), (n, 'AAAA', None)]
        if n in geo:
            i = int(n.split('.')[0][1:])
            qs += [(n, 'A', '172.%d.%d.0/24' % (16 + k, i % 250)) for k in range(3)]
    return qs


def answers(srv, qs):
    out = []
    for name, qtype, ecs in qs:
        opts = []
        if ecs:
            a, plen = ecs.split('/')
            opts = [dns.edns.ECSOption(a, int(plen))]
        q = g.make_query(name, qtype, edns=0, options=opts)
        m = None
        for _ in range(3):
            m = g.exchange(q, srv.addr4, 'udp', timeout=1.0).msg
            if m is not None:
                break
        if m is None:
            out.append((name, qtype, ecs, 'timeout'))
            continue
        # Records in any order: a weighted answer of every member is shuffled.
        recs = sorted(line for rr in m.answer for line in rr.to_text().split('\n'))
        auth = sorted(line for rr in m.authority for line in rr.to_text().split('\n'))
        out.append((name, qtype, ecs, dns.rcode.to_text(m.rcode()), recs, auth))
    return out


def copy_db(src, dst):
    s = sqlite3.connect(src)
    d = sqlite3.connect(dst)
    s.backup(d)
    d.close()
    s.close()


def main(t):
    srv = g.Gslbd(zones=(), identity=False, wait_zone=None, lifetime=600)
    with open(os.path.join(srv.zones_dir, 'chg.test.zone'), 'w') as f:
        f.write(ZONE)
    db = os.path.join(srv.tmp, 'gslb.db')
    cfg = os.path.join(srv.tmp, 'pools.json')
    pools = [gen_pool(i) for i in range(NPOOLS)]
    # Two pools below an empty non-terminal, whose entry points into the first's name.
    for n in ('x.deep.chg.test.', 'y.deep.chg.test.'):
        pools.append({'name': n, 'policy': 'failover', 'members': [
            {'name': 'a', 'addresses': ['127.9.0.1'], 'priority': 1},
            {'name': 'b', 'addresses': ['127.9.0.2'], 'priority': 2}]})
    with open(cfg, 'w') as f:
        json.dump({'version': 1, 'pools': pools}, f)
    rc, out, err = g.gslbctl(db, 'init')
    rc2, out, err2 = g.gslbctl(db, 'apply', cfg, timeout=120)
    if not t.ok(rc == 0 and rc2 == 0, '%d pools written by apply' % NPOOLS, err + err2):
        return
    srv.start()
    srv.wait_ready('chg.test.')
    names = {p['name'] for p in pools} | {'deep.chg.test.'}
    geo = {p['name'] for p in pools if p['policy'] == 'geo'}
    n = [0]

    def compare(desc, extra=()):
        """The running gslbd answers as a fresh one on a copy, once both have probed (a check
        is down after its first probe, one a second), within 8 s."""
        n[0] += 1
        fresh = g.Gslbd(zones=(os.path.join(srv.zones_dir, 'chg.test.zone'),), identity=False,
                        wait_zone=None, lifetime=120)
        copy_db(db, os.path.join(fresh.tmp, 'gslb.db'))
        fresh.start()
        fresh.wait_ready('chg.test.')
        qs = questions(names | set(extra), geo)
        time.sleep(2.5)
        deadline = time.monotonic() + 8
        while True:
            a, b = answers(srv, qs), answers(fresh, qs)
            if a == b or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        diff = [(x, y) for x, y in zip(a, b) if x != y][:5]
        t.ok(a == b, '%s: every answer as after a restart (%d questions)' % (desc, len(qs)),
             '\n'.join('running %r\nfresh   %r' % d for d in diff))
        fresh.stop()
        fresh.cleanup()

    def ctl(*args):
        rc, out, err = g.gslbctl(db, *args)
        t.ok(rc == 0, 'gslbctl %s' % ' '.join(args), err)

    compare('start')
    ctl('member', 'state', pool_name(0), 'm0', 'down')
    compare('member state down (failover)')
    ctl('member', 'set', pool_name(1), 'm1', '--weight', '0')
    compare('member set --weight')
    ctl('member', 'state', 'x.deep.chg.test', 'a', 'down')
    ctl('member', 'state', 'y.deep.chg.test', 'a', 'down')
    compare('member state of the pools below an empty non-terminal')
    ctl('member', 'set', pool_name(5), 'm0', '--address', '127.250.0.5',
        '--address', '2001:db8:ff::5')
    compare('member set --address (both families)')
    ctl('member', 'set', pool_name(6), 'm1', '--network', '172.31.6.0/24')
    compare('member set --network (geo)')
    ctl('member', 'add', pool_name(9), 'new', '--address', '127.251.0.9', '--weight', '500')
    compare('member add')
    ctl('member', 'rm', pool_name(13), 'm1')
    compare('member rm')
    ctl('pool', 'set', pool_name(4), '--ttl', '77', '--answers', '2')
    compare('pool set')
    ctl('pool', 'add', 'new.chg.test', '--policy', 'failover')
    ctl('member', 'add', 'new.chg.test', 'a', '--address', '127.252.0.1')
    names.add('new.chg.test.')
    compare('pool add, member add')
    ctl('pool', 'rm', pool_name(8))
    compare('pool rm')
    ctl('pool', 'add', pool_name(8), '--policy', 'weighted')
    ctl('member', 'add', pool_name(8), 'x', '--address', '127.253.0.8')
    compare('pool added again under the same name')
    ctl('pool', 'add', 'q.deleg.chg.test')
    ctl('member', 'add', 'q.deleg.chg.test', 'a', '--address', '127.252.0.2')
    names.add('q.deleg.chg.test.')
    compare('pool add below a delegation')
    ctl('check', 'set', pool_name(12), '--type', 'tcp', '--port', '9', '--interval', '1',
        '--timeout', '0.5', '--rise', '1', '--fall', '1')
    compare('check set on a pool (members go down)')
    ctl('check', 'rm', pool_name(43))
    compare('check rm (members come back)')

    # apply: checks on several pools at once, and a weight, from an export.
    rc, out, err = g.gslbctl(db, 'export')
    exp = json.loads(out)
    for p in exp['pools']:
        i = p['name'].split('.')[0][1:]
        if i.isdigit() and int(i) in (20, 21, 22, 23):
            p['check'] = dict(CHECK)
        if i.isdigit() and int(i) == 30:
            p['members'][0]['weight'] = 7
    with open(cfg, 'w') as f:
        json.dump(exp, f)
    ctl('apply', cfg)
    compare('apply: checks added to four pools, a weight')

    # Another writer (a cluster node's sync writes through SQL): the triggers stamp the pools.
    con = sqlite3.connect(db, timeout=10)
    con.execute('PRAGMA foreign_keys = ON')
    with con:
        con.execute("UPDATE member SET weight = 3 WHERE name = 'm1' AND pool_id = "
                    "(SELECT id FROM pool WHERE name = ?)", (pool_name(17),))
        con.execute("INSERT INTO member_address(member_id, address, family) SELECT id, "
                    "'127.254.0.18', 4 FROM member WHERE name = 'm0' AND pool_id = "
                    "(SELECT id FROM pool WHERE name = ?)", (pool_name(18),))
        con.execute("DELETE FROM member_network WHERE member_id IN (SELECT m.id FROM member m "
                    "JOIN pool p ON p.id = m.pool_id WHERE p.name = ?)", (pool_name(10),))
        con.execute("UPDATE health_check SET port = 10 WHERE pool_id = "
                    "(SELECT id FROM pool WHERE name = ?)", (pool_name(83),))
    con.close()
    compare('direct SQL writes to members, addresses, networks, a check')

    # Many pools at once: gslbd reads everything again.
    rc, out, err = g.gslbctl(db, 'export')
    exp = json.loads(out)
    for p in exp['pools'][:150]:
        p['ttl'] = 99
    with open(cfg, 'w') as f:
        json.dump(exp, f)
    ctl('apply', cfg)
    compare('apply: 150 pools changed')
    ctl('member', 'state', pool_name(2), 'm0', 'drain')
    compare('member state drain after the whole reload')

    # New zones: every pool is shared with the snapshot before (gslbd keeps only the names of
    # pools without a check once built), placed again in the zones, served or not by them.
    zfile = os.path.join(srv.zones_dir, 'chg.test.zone')
    with open(zfile, 'w') as f:
        f.write(ZONE.replace('2024010101', '2024010102').replace(
            'deleg\tIN NS\tns.elsewhere.example.\n', ''))
    srv.signal(signal.SIGHUP)
    compare('zone without the delegation: the pools below it served')
    ctl('member', 'state', pool_name(59), 'm0', 'down')
    ctl('member', 'set', pool_name(119), 'm1', '--weight', '0')
    compare('members changed of pools served since the zone changed')
    with open(zfile, 'w') as f:
        f.write(ZONE.replace('2024010101', '2024010103'))
    srv.signal(signal.SIGHUP)
    compare('the delegation back: those pools not served again')
    ctl('member', 'state', pool_name(59), 'm0', 'auto')
    compare('a member changed of a pool not served')
    srv.check_stop(t)


if __name__ == '__main__':
    g.run(main)
