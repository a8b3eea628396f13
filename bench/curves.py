#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/curves.sh's data, answer checks and tables.

  curves.py geo-nets DIR NETWORKS QUERIES      geo pool of 16 members holding NETWORKS /24s
  curves.py geo-big DIR QUERIES                clients for the large geo file: cold and warm
  curves.py weighted DIR MEMBERS QUERIES       weighted pool of MEMBERS members
  curves.py pools FILE POOLS                   gslbctl apply file of POOLS weighted pools
  curves.py zone FILE NAMES                    a zone of NAMES static A records
  curves.py check PORT NAME EXPECT             every line "ECS ADDRESS[,ADDRESS...]" of EXPECT
                                               answered as it says (ECS "-": none), else exit 1
  curves.py agree PORT1 PORT2 NAME CLIENTS MIN the two servers give the same answer for at least
                                               MIN of the clients (one ECS a line), else exit 1
  curves.py load SERVER BUILDDIR DIR NAMES     start SERVER on the zone in DIR, time to the last
                                               name's answer, RSS and CPU time then: prints
                                               "SECONDS KIB CPU_SECONDS"
  curves.py report RESULTS                     the tables, from curves.sh's results file

Every file is written from a fixed seed, so the same sizes give the same data."""
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

import dns.edns
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

ZONE = 'curves.test'

# The four sites of bench/run.sh (the test database's cities are near them) and twelve more around
# Point Nemo in the South Pacific, each at least 600 km further from every located client of the
# test database than that client's nearest site: 16 members so that 10,000 networks fit in the
# 1,024 networks a member may hold.
SITES = [('fra', '192.0.2.10', 50.11, 8.68), ('iad', '198.51.100.10', 39.04, -77.49),
         ('sin', '203.0.113.10', 1.35, 103.82), ('gru', '10.3.0.10', -23.55, -46.63)]
SITES += [('nemo%d' % k, '10.200.0.%d' % (k + 1), -48.9 + 2 * (k % 3), -123.4 + 3 * (k // 3))
          for k in range(12)]
# Clients outside every member network, with the site the test database puts nearest (as
# bench/run.sh checks them).
OUTSIDE = {'192.0.2.0/24': '192.0.2.10', '10.2.0.0/24': '203.0.113.10',
           '10.1.0.0/24': '198.51.100.10', '10.4.0.0/24': '203.0.113.10',
           '10.7.0.0/24': '192.0.2.10'}
OUTSIDE_PREFIXES = ['192.0.2', '198.51.100', '203.0.113'] + \
    ['10.%d.%d' % (a, b) for a in range(1, 10) for b in range(256)]


def query_wire(name, ecs):
    opts = [dns.edns.ECSOption(ecs, 24)] if ecs else []
    m = dns.message.make_query(name, 'A', use_edns=0, options=opts)
    m.id = 0
    w = m.to_wire()
    return struct.pack('!H', len(w)) + w


def write_queries(path, name, clients):
    """A dnsperf -B file: one length-prefixed query a client (an address, or None: no ECS)."""
    with open(path, 'wb') as f:
        for c in clients:
            f.write(query_wire(name, c))


def member_networks(n):
    """n distinct /24s in 100.64.0.0/10 (16,384 of them), spread over the members in turn."""
    rnd = random.Random(18)
    nets = rnd.sample(range(16384), n)
    return ['100.%d.%d.0/24' % (64 + (k >> 8), k & 255) for k in nets]


def knot_mod(d, mode, entries, extra=''):
    """Knot's mod-geoip: its settings (knot.mod, for knot.conf) and its file of answers."""
    name = 'w' if mode == 'weighted' else 'geo'
    with open(os.path.join(d, 'knot.geo'), 'w') as f:
        f.write('%s.%s:\n%s' % (name, ZONE, entries))
    with open(os.path.join(d, 'knot.mod'), 'w') as f:
        f.write('    config-file: %s/knot.geo\n    ttl: 30\n    mode: %s\n%s' % (d, mode, extra))


def geo_nets(d, n, queries):
    nets = member_networks(n)
    owner = {net: SITES[i % len(SITES)] for i, net in enumerate(nets)}
    members = []
    for name, addr, lat, lon in SITES:
        m = {'name': name, 'addresses': [addr], 'location': '%g,%g' % (lat, lon)}
        mine = [net for net in nets if owner[net][0] == name]
        if mine:
            m['networks'] = mine
        members.append(m)
    pool = {'name': 'geo.%s.' % ZONE, 'policy': 'geo', 'ttl': 30, 'members': members}
    with open(os.path.join(d, 'pools.json'), 'w') as f:
        json.dump({'version': 1, 'pools': [pool]}, f)
    # gdnsd: the same networks in the map's nets (the members are its datacenters)
    with open(os.path.join(d, 'gdnsd.nets'), 'w') as f:
        for net in nets:
            f.write('%s => [ %s ]\n' % (net, owner[net][0]))
    with open(os.path.join(d, 'gdnsd.geo'), 'w') as f:
        names = ', '.join(s[0] for s in SITES)
        f.write('geoip => {\n  maps => { geo => { geoip2_db => %s, datacenters => [ %s ],\n'
                % (os.environ['CURVES_MMDB'], names))
        f.write('    nets => %s\n' % ('%s/gdnsd.nets' % d if nets else '{}'))
        f.write('    auto_dc_coords => {\n')
        for name, addr, lat, lon in SITES:
            f.write('      %s => [ %g, %g ]\n' % (name, lat, lon))
        f.write('  } } }\n  resources => { geo => { map => geo, dcmap => {\n')
        for name, addr, lat, lon in SITES:
            f.write('    %s => %s\n' % (name, addr))
        f.write('  } } }\n}\n')
    # Knot: the same networks in mod-geoip's subnet mode (it has no distance ranking: clients
    # outside them get the zone's own record)
    if nets:
        knot_mod(d, 'subnet', ''.join('  - net: %s\n    A: %s\n' % (net, owner[net][1])
                                      for net in nets))
    rnd = random.Random(24)
    inside = ['%s %s\n' % (net.replace('.0/24', '.%d' % rnd.randrange(1, 255)), owner[net][1])
              for net in nets[:3] + (rnd.sample(nets, 5) if len(nets) > 5 else [])]
    with open(os.path.join(d, 'expect'), 'w') as f:
        f.write(''.join(inside))
        for ecs, addr in OUTSIDE.items():
            f.write('%s %s\n' % (ecs.split('/')[0], addr))
    with open(os.path.join(d, 'expect.knot'), 'w') as f:
        f.write(''.join(inside))
    if nets:
        write_queries(os.path.join(d, 'inside.q'), 'geo.%s' % ZONE,
                      [rnd.choice(nets).replace('.0/24', '.0') for _ in range(queries)])
    write_queries(os.path.join(d, 'outside.q'), 'geo.%s' % ZONE,
                  [rnd.choice(OUTSIDE_PREFIXES) + '.0' for _ in range(queries)])


def rand24(rnd, k):
    """k distinct random /24s of public-looking IPv4 space (1.0.0.0 to 223.255.255.0)."""
    got = set()
    while len(got) < k:
        got.add(rnd.randrange(1 << 16, 224 << 16))
    return ['%d.%d.%d.0' % (x >> 16, (x >> 8) & 255, x & 255) for x in got]


def geo_big(d, queries):
    """Clients for the large geo file: 100,000 /24s (a query from each of QUERIES of them, so
    nearly every query a database network not seen before), 100 /24s (the cache holds them),
    a warm-up from other /24s, and a sample for the answer check."""
    rnd = random.Random(500)
    many = rand24(rnd, 100000 + 400)
    cold, warmup, sample = many[:100000], many[100000:100200], many[100200:]
    few = rnd.sample(cold, 100)
    name = 'geo.%s' % ZONE
    write_queries(os.path.join(d, 'cold.q'), name, rnd.sample(cold, min(queries, len(cold))))
    write_queries(os.path.join(d, 'warm.q'), name, [few[i % 100] for i in range(queries)])
    write_queries(os.path.join(d, 'warmup.q'), name, warmup)
    with open(os.path.join(d, 'clients'), 'w') as f:
        f.write(''.join(c + '\n' for c in sample))
    pool = {'name': 'geo.%s.' % ZONE, 'policy': 'geo', 'ttl': 30, 'members': [
        {'name': n, 'addresses': [a], 'location': '%g,%g' % (la, lo)} for n, a, la, lo in SITES[:4]]}
    with open(os.path.join(d, 'pools.json'), 'w') as f:
        json.dump({'version': 1, 'pools': [pool]}, f)
    with open(os.path.join(d, 'gdnsd.geo'), 'w') as f:
        f.write('geoip => {\n  maps => { geo => { geoip2_db => %s, datacenters => [ %s ],\n'
                % (os.environ['CURVES_MMDB'], ', '.join(s[0] for s in SITES[:4])))
        f.write('    auto_dc_coords => {\n')
        for n, a, la, lo in SITES[:4]:
            f.write('      %s => [ %g, %g ]\n' % (n, la, lo))
        f.write('  } } }\n  resources => { geo => { map => geo, dcmap => {\n')
        for n, a, la, lo in SITES[:4]:
            f.write('    %s => %s\n' % (n, a))
        f.write('  } } }\n}\n')
    with open(os.path.join(d, 'expect'), 'w') as f:
        f.write('%s %s\n' % (sample[0], ','.join(s[1] for s in SITES[:4])))
    # Knot: mod-geoip's geodb mode, the continent to a site (it has no distance ranking)
    site = {'EU': 'fra', 'AF': 'fra', 'NA': 'iad', 'AS': 'sin', 'OC': 'sin', 'SA': 'gru',
            'AN': 'gru'}
    addr = {s[0]: s[1] for s in SITES}
    knot_mod(d, 'geodb', ''.join('  - geo: "%s"\n    A: %s\n' % (c, addr[site[c]]) for c in site),
             '    geodb-file: %s\n    geodb-key: continent/code\n' % os.environ['CURVES_MMDB'])
    with open(os.path.join(d, 'expect.knot'), 'w') as f:
        f.write('%s %s,127.0.0.2\n' % (sample[0], ','.join(s[1] for s in SITES[:4])))


def weighted(d, n, queries):
    members = [('m%d' % i, '10.100.%d.%d' % (i >> 8, i & 255), 50 + 50 * (i % 4)) for i in range(n)]
    pool = {'name': 'w.%s.' % ZONE, 'policy': 'weighted', 'ttl': 30, 'members': [
        {'name': m, 'addresses': [a], 'weight': w} for m, a, w in members]}
    with open(os.path.join(d, 'pools.json'), 'w') as f:
        json.dump({'version': 1, 'pools': [pool]}, f)
    with open(os.path.join(d, 'gdnsd.weighted'), 'w') as f:
        f.write('weighted => { w => {\n')
        for m, a, w in members:
            f.write('    %s => [ %s, %d ]\n' % (m, a, w))
        f.write('} }\n')
    knot_mod(d, 'weighted', ''.join('  - weight: %d\n    A: %s\n' % (w, a) for _, a, w in members))
    with open(os.path.join(d, 'expect'), 'w') as f:
        f.write('- %s\n' % ','.join(a for _, a, _ in members))
    write_queries(os.path.join(d, 'w.q'), 'w.%s' % ZONE, [None] * queries)


def pools(path, n):
    ps = [{'name': 'p%d.%s.' % (i, ZONE), 'policy': 'weighted', 'ttl': 30, 'members': [
        {'name': 'm%d' % k, 'addresses': ['10.%d.%d.%d' % (64 + ((4 * i + k) >> 16 & 63),
                                                          (4 * i + k) >> 8 & 255, (4 * i + k) & 255)]}
        for k in range(2 + i % 3)]} for i in range(n)]
    with open(path, 'w') as f:
        json.dump({'version': 1, 'pools': ps}, f, separators=(',', ':'))


def zone(path, n):
    with open(path, 'w') as f:
        f.write('$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n')
        f.write('h1 A 127.0.0.1\n')
        for start in range(0, n, 10000):
            f.write(''.join('n%d A 10.%d.%d.%d\n' % (i, i >> 16 & 255, i >> 8 & 255, i & 255)
                            for i in range(start, min(n, start + 10000))))


def ask(port, name, ecs, timeout=2.0):
    opts = [dns.edns.ECSOption(ecs, 24)] if ecs else []
    q = dns.message.make_query(name, 'A', use_edns=0, options=opts)
    for _ in range(3):
        try:
            r = dns.query.udp(q, '127.0.0.1', port=port, timeout=timeout)
            return dns.rcode.to_text(r.rcode()), sorted(
                rd.to_text() for rr in r.answer if rr.rdtype == dns.rdatatype.A for rd in rr)
        except dns.exception.Timeout:
            continue
    return 'TIMEOUT', []


def check(port, name, expect):
    bad = 0
    n = 0
    with open(expect) as f:
        for line in f:
            ecs, want = line.split()
            want = set(want.split(','))
            rcode, got = ask(int(port), name, None if ecs == '-' else ecs)
            n += 1
            if rcode != 'NOERROR' or not got or not set(got) <= want:
                bad += 1
                print('curves: WRONG answer for %s (ECS %s): %s %s, want %s' % (
                    name, ecs, rcode, got, ' or '.join(sorted(want))[:80]), file=sys.stderr)
    if bad or not n:
        sys.exit(1)


def agree(p1, p2, name, clients, minimum):
    """The clients whose answer from the first server does not vary over eight queries (those the
    file gives a location: the others get a weighted draw among four, the same eight times in one
    client of 16,384) must get the same answer from the second server."""
    same = n = fixed = 0
    with open(clients) as f:
        for line in f:
            c = line.strip()
            a = [ask(int(p1), name, c) for _ in range(8)]
            b = ask(int(p2), name, c)
            n += 1
            if any(x[0] != 'NOERROR' or len(x[1]) != 1 for x in a + [b]):
                print('curves: WRONG answers for %s (ECS %s): %s and %s' % (name, c, a, b),
                      file=sys.stderr)
                sys.exit(1)
            if all(x == a[0] for x in a):
                fixed += 1
                same += a[0] == b
                if a[0] != b:
                    print('curves: %s (ECS %s): %s and %s' % (name, c, a[0][1], b[1]),
                          file=sys.stderr)
    print('curves: %s: of %d clients %d always get the same answer from the first server, and '
          '%d of those the same from the second' % (name, n, fixed, same), file=sys.stderr)
    if fixed < n / 4 or same < float(minimum) * fixed:
        print('curves: too few agree (want %s of them, and a quarter of the clients located): '
              'a geo file is not read alike' % minimum, file=sys.stderr)
        sys.exit(1)


def rss_cpu(pid):
    """VmRSS (KiB) and CPU time (s, user and system) of pid and its descendants."""
    total = 0
    cpu = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open('/proc/%d/status' % p) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
            with open('/proc/%d/stat' % p) as f:
                v = f.read().rsplit(')', 1)[1].split()
            cpu += (int(v[11]) + int(v[12])) / os.sysconf('SC_CLK_TCK')
            for t in os.listdir('/proc/%d/task' % p):
                with open('/proc/%d/task/%s/children' % (p, t)) as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total, cpu


def free_port():
    import socket
    for _ in range(50):
        p = random.randint(20000, 60000)
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(('127.0.0.1', p))
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(('127.0.0.1', p))
            u.close()
            t.close()
            return p
        except OSError:
            continue
    raise SystemExit('curves: no free port')


def load(server, builddir, d, n):
    """Starts server on d/curves.test.zone (written by zone), returns when the last name answers
    (or exits 1 after 600 s): prints the seconds from exec, the RSS (KiB) of its processes and
    their CPU time (s) then."""
    port = free_port()
    zf = os.path.join(d, 'zones', ZONE + '.zone')
    if server == 'gslbd':
        subprocess.run([os.path.join(builddir, 'gslbctl'), '--db', d + '/gslb.db', 'init'],
                       check=True, stdout=subprocess.DEVNULL)
        cmd = [os.path.join(builddir, 'gslbd'), '--listen', '127.0.0.1:%d' % port, '--zones',
               d + '/zones', '--db', d + '/gslb.db', '--threads', '1', '--log-level', 'warning']
    elif server == 'knot':
        with open(d + '/knot.conf', 'w') as f:
            f.write('server:\n    rundir: "%s"\n    listen: 127.0.0.1@%d\n    udp-workers: 1\n'
                    '    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: "%s"\n'
                    'zone:\n  - domain: %s\n    file: "%s"\n    journal-content: none\n'
                    '    zonefile-load: whole\nlog:\n  - target: stderr\n    any: warning\n'
                    % (d, port, d, ZONE, zf))
        cmd = ['knotd', '-c', d + '/knot.conf']
    elif server == 'gdnsd':
        os.makedirs(d + '/run', exist_ok=True)
        os.makedirs(d + '/state', exist_ok=True)
        os.rename(zf, os.path.join(d, 'zones', ZONE))
        with open(d + '/config', 'w') as f:
            f.write('options => { listen => [ 127.0.0.1 ], dns_port => %d, udp_threads => 1,\n'
                    '  tcp_threads => 1, run_dir => %s/run, state_dir => %s/state }\n'
                    % (port, d, d))
        cmd = ['gdnsd', '-c', d, 'start']
    else:
        raise SystemExit('curves: no server %s' % server)
    last = 'n%d.%s' % (n - 1, ZONE) if n else 'h1.%s' % ZONE
    want = ['10.%d.%d.%d' % ((n - 1) >> 16 & 255, (n - 1) >> 8 & 255, (n - 1) & 255)] if n \
        else ['127.0.0.1']
    log = open(d + '/log', 'w')
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        while time.monotonic() - t0 < 600:
            if p.poll() is not None:
                raise SystemExit('curves: %s exited with %d (log in %s/log)' % (server, p.returncode, d))
            try:
                q = dns.message.make_query(last, 'A')
                r = dns.query.udp(q, '127.0.0.1', port=port, timeout=0.05)
                got = sorted(rd.to_text() for rr in r.answer for rd in rr)
                if got == want:
                    break
                if r.rcode() not in (dns.rcode.NOERROR, dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                    raise SystemExit('curves: %s answers %s for %s, want %s' % (
                        server, dns.rcode.to_text(r.rcode()), last, want))
            except (dns.exception.Timeout, OSError):
                pass
            time.sleep(0.01)
        else:
            raise SystemExit('curves: %s: no answer for %s within 600 s' % (server, last))
        secs = time.monotonic() - t0
        time.sleep(0.2)
        kib, cpu = rss_cpu(p.pid)
        # a sample of the other names
        rnd = random.Random(5)
        for i in [0] + [rnd.randrange(n) for _ in range(20)] if n else []:
            r = dns.query.udp(dns.message.make_query('n%d.%s' % (i, ZONE), 'A'), '127.0.0.1',
                              port=port, timeout=2)
            got = sorted(rd.to_text() for rr in r.answer for rd in rr)
            if got != ['10.%d.%d.%d' % (i >> 16 & 255, i >> 8 & 255, i & 255)]:
                raise SystemExit('curves: %s: WRONG answer for n%d: %s' % (server, i, got))
        print('%.2f %d %.2f' % (secs, kib, cpu))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---- the tables

def num(v):
    try:
        return float(v)
    except ValueError:
        return None


def fmt(v, unit):
    x = num(v)
    if x is None:
        return v
    if unit == 's':
        return '%.2f s' % x
    if unit == 'ms':
        return '%.0f ms' % (x * 1000)
    if unit == 'B':
        return '{:,.0f} B'.format(x)
    return '{:,.0f}'.format(x)


TITLES = {
    '1': 'Geo pool: member networks (instructions per query)',
    '2': 'Geo with a large geo file (instructions per query)',
    '3': 'Weighted pool: members (instructions per query)',
    '4': 'One member change with many pools',
    '5': 'Static names and pools: load and memory',
}


def report(path):
    """Rows "TABLE<TAB>ROW<TAB>COLUMN<TAB>VALUE<TAB>UNIT": one markdown table per TABLE, the columns
    in order of appearance (gslbd first, or the smallest size), then each other column's value
    over the first column's."""
    tables = {}
    with open(path) as f:
        for line in f:
            t, row, col, value, unit = line.rstrip('\n').split('\t')
            tb = tables.setdefault(t, {'rows': [], 'cols': [], 'v': {}})
            if row not in tb['rows']:
                tb['rows'].append(row)
            if col not in tb['cols']:
                tb['cols'].append(col)
            tb['v'][row, col] = (value, unit)
    for t in sorted(tables):
        tb = tables[t]
        first, others = tb['cols'][0], tb['cols'][1:]
        print('%s. %s\n' % (t, TITLES.get(t, '')))
        head = [''] + tb['cols'] + ['%s / %s' % (c, first) for c in others]
        print('| ' + ' | '.join(head) + ' |')
        print('|' + ' --- |' * len(head))
        for row in tb['rows']:
            cells = [row]
            for c in tb['cols']:
                v, u = tb['v'].get((row, c), ('', ''))
                cells.append(fmt(v, u) if v else '—')
            g = num(tb['v'].get((row, first), ('', ''))[0] or '-')
            for c in others:
                x = num(tb['v'].get((row, c), ('', ''))[0] or '-')
                cells.append(('%.2f' if x >= g / 10 else '%.2g') % (x / g)
                             if x is not None and g else '—')
            print('| ' + ' | '.join(cells) + ' |')
        print()


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == 'geo-nets':
        geo_nets(a[1], int(a[2]), int(a[3]))
    elif cmd == 'geo-big':
        geo_big(a[1], int(a[2]))
    elif cmd == 'weighted':
        weighted(a[1], int(a[2]), int(a[3]))
    elif cmd == 'pools':
        pools(a[1], int(a[2]))
    elif cmd == 'zone':
        zone(a[1], int(a[2]))
    elif cmd == 'check':
        check(a[1], a[2], a[3])
    elif cmd == 'agree':
        agree(a[1], a[2], a[3], a[4], a[5])
    elif cmd == 'load':
        load(a[1], a[2], a[3], int(a[4]))
    elif cmd == 'report':
        report(a[1])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
