#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Both edges of every numeric bound: the last value accepted and the first refused, for gslbctl
(command line and apply files), gslbd's options, and the DNS limits of EDNS Client Subnet and the
UDP size (README "Pools, members, policies", "Health checks", "DNS behaviour"; gslbctl(8)).

gslbctl refuses with exit 2 and one stderr line naming the option, and writes nothing (the export
and the journal are unchanged); it stores an accepted value as given.  gslbd refuses an option with
exit 1 and one line naming it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

P = 'www.example.com.'
NOERROR, FORMERR = dns.rcode.NOERROR, dns.rcode.FORMERR


class Ctl:
    def __init__(self, db):
        self.db = db

    def run(self, *args, stdin=None):
        return g.gslbctl(self.db, *args, stdin=stdin)

    def ok(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            raise AssertionError('gslbctl %r: exit %d: %s' % (args, rc, err))
        return out

    def state(self):
        """Everything a change could touch: the export and the whole journal."""
        return self.ok('export'), self.ok('log', '--limit', '1000000')

    def pool(self):
        return [p for p in json.loads(self.ok('export'))['pools'] if p['name'] == P][0]

    def member(self, name='m'):
        return [m for m in self.pool()['members'] if m['name'] == name][0]


def refused(t, c, args, option, desc=None):
    """args must exit 2 with one stderr line 'gslbctl: CMD: OPTION: ...' and change nothing."""
    before = c.state()
    rc, out, err = c.run(*args)
    cmd = ' '.join(a for a in args[:2] if not a.startswith('-') and a != P)
    head = 'gslbctl: %s: %s: ' % (cmd, option)
    t.ok(rc == 2 and err.startswith(head) and err.count('\n') == 1 and c.state() == before,
         desc or 'refused, exit 2, nothing written: gslbctl %s' % ' '.join(args),
         'exit %d, stderr %r (want one line starting %r), state %s'
         % (rc, err, head, 'unchanged' if c.state() == before else 'CHANGED'))


def accepted(t, c, args, get, want, desc=None):
    """args must exit 0 and get() (reading the export) must then give want."""
    rc, out, err = c.run(*args)
    got = get() if rc == 0 else None
    t.ok(rc == 0 and got == want, desc or 'accepted and stored: gslbctl %s' % ' '.join(args),
         'exit %d, stderr %r, stored %r, want %r' % (rc, err, got, want))


def location(c):
    loc = c.member().get('location')
    return tuple(float(x) for x in loc.split(',')) if loc else None


def cli_bounds(t, c):
    m = ['member', 'set', P, 'm']

    # ---- weight 0-65535, priority 1-255 (README "Pools, members, policies")
    for v in (0, 1, 65535):
        accepted(t, c, m + ['--weight', str(v)], lambda: c.member()['weight'], v)
    for v in ('65536', '70000', '-1', '1e3', ''):
        refused(t, c, m + ['--weight', v], '--weight')
    for v in (1, 255):
        accepted(t, c, m + ['--priority', str(v)], lambda: c.member()['priority'], v)
    for v in ('0', '256'):
        refused(t, c, m + ['--priority', v], '--priority')
    # ... on member add too, where the defaults are filled in
    rc, out, err = c.run('member', 'add', P, 'edge', '--address', '192.0.2.9', '--weight',
                         '65535', '--priority', '255')
    t.ok(rc == 0 and (c.member('edge')['weight'], c.member('edge')['priority']) == (65535, 255),
         'member add --weight 65535 --priority 255 accepted', err)
    refused(t, c, ['member', 'add', P, 'edge2', '--address', '192.0.2.9', '--weight', '65536'],
            '--weight')
    refused(t, c, ['member', 'add', P, 'edge2', '--address', '192.0.2.9', '--priority', '0'],
            '--priority')

    # ---- location: latitude -90..90, longitude -180..180, both edges of both
    for loc in ('90,0', '-90,0', '0,180', '0,-180', '90,180', '-90,-180', '90.0,-180.0',
                '89.9999,179.9999'):
        want = tuple(float(x) for x in loc.split(','))
        accepted(t, c, m + ['--location=' + loc], lambda: location(c), want)
    for loc in ('90.0001,0', '-90.0001,0', '91,0', '-91,0', '0,180.0001', '0,-180.0001',
                '0,181', '0,-181'):
        refused(t, c, m + ['--location=' + loc], '--location')

    # ---- names: a member name of 63 characters, a label of 63, a pool name of 253
    accepted(t, c, ['member', 'add', P, 'n' * 63, '--address', '192.0.2.8'],
             lambda: c.member('n' * 63)['name'], 'n' * 63, 'member name of 63 characters')
    refused(t, c, ['member', 'add', P, 'n' * 64, '--address', '192.0.2.8'], 'MEMBER',
            'member name of 64 characters refused')
    long_ok = '.'.join(['a' * 63, 'b' * 63, 'c' * 63, 'd' * 61])   # 253 characters
    long_bad = long_ok + 'd'
    rc, out, err = c.run('pool', 'add', long_ok)
    t.ok(rc == 0 and long_ok + '.' in c.ok('export'), 'pool name of 253 characters accepted',
         err)
    refused(t, c, ['pool', 'add', long_bad], 'POOL', 'pool name of 254 characters refused')
    refused(t, c, ['pool', 'add', 'x' * 64 + '.example.com'], 'POOL',
            'pool name with a label of 64 refused')
    c.ok('pool', 'rm', long_ok)

    # ---- networks: prefix lengths 0..32 and 0..128, the first and last host bit
    for net in ('0.0.0.0/0', '10.0.0.1/32', '10.0.0.0/16', '::/0', '2001:db8::1/128'):
        accepted(t, c, m + ['--network', net], lambda: c.member().get('networks'), [net])
    for net in ('10.0.0.0/33', '2001:db8::/129', '10.0.128.0/16', '10.0.0.1/31',
                '2001:db8:0:8000::/48', '10.0.0.0/-1'):
        refused(t, c, m + ['--network', net], '--network')
    c.ok(*m, '--network', '')

    # ---- pool: ttl 0-86400, degraded-ttl 1-86400, answers 1-64
    pool = ['pool', 'set', P]
    for opt, key, good, bad in (('--ttl', 'ttl', (0, 86400), ('86401', '-1')),
                                ('--degraded-ttl', 'degraded_ttl', (1, 86400), ('0', '86401')),
                                ('--answers', 'answers', (1, 64), ('0', '65'))):
        for v in good:
            accepted(t, c, pool + [opt, str(v)], lambda: c.pool().get(key), v)
        for v in bad:
            refused(t, c, pool + [opt, v], opt)
    c.ok(*pool, '--ttl', '30', '--degraded-ttl', 'default', '--answers', '1')

    # ---- checks: port 1-65535, interval 1-3600 s, timeout below it, rise/fall 1-100,
    # expect codes 100-599
    chk = ['check', 'set', P, '--type', 'http']

    def check(key):
        return lambda: c.pool().get('check', {}).get(key)

    for v in (1, 65535):
        accepted(t, c, chk + ['--port', str(v)], check('port'), v)
    for v in ('0', '65536'):
        refused(t, c, chk + ['--port', v], '--port')
    for v, want in (('1', 1), ('3600', 3600), ('1.5', 1.5), ('1.001', 1.001), ('1.0010', 1.001)):
        accepted(t, c, chk + ['--interval', v], check('interval'), want)
    for v in ('0.999', '3600.001', '3601', '0', '1.0001', '-1', '.5', '1.'):
        refused(t, c, chk + ['--interval', v], '--interval')
    for v, want in (('0.001', 0.001), ('9.999', 9.999)):
        accepted(t, c, chk + ['--interval', '10', '--timeout', v], check('timeout'), want)
    for v in ('10', '10.001', '0', '0.0001'):
        refused(t, c, chk + ['--interval', '10', '--timeout', v], '--timeout')
    for opt in ('--rise', '--fall'):
        for v in (1, 100):
            accepted(t, c, chk + [opt, str(v)], check(opt[2:]), v)
        for v in ('0', '101'):
            refused(t, c, chk + [opt, v], opt)
    for v in ('100', '599', '100-599', '100-100', '599-599', '200-299,301'):
        accepted(t, c, chk + ['--expect', v], check('expect'), v)
    for v in ('99', '600', '200-600', '99-200', '599-600', '1000', '200-299,600', '300-200'):
        refused(t, c, chk + ['--expect', v], '--expect')
    c.ok('check', 'rm', P)

    # ---- read commands: --limit 1-1000000
    for cmd in (['log'], ['history', P]):
        for v in ('1', '1000000'):
            rc, out, err = c.run(*cmd, '--limit', v)
            t.ok(rc == 0, '%s --limit %s accepted' % (cmd[0], v), err)
        for v in ('0', '1000001'):
            rc, out, err = c.run(*cmd, '--limit', v)
            t.ok(rc == 2 and err.startswith('gslbctl: %s: --limit: ' % cmd[0])
                 and err.count('\n') == 1, '%s --limit %s refused, exit 2' % (cmd[0], v),
                 'exit %d, %r' % (rc, err))

    # ---- explain --ecs: the prefix lengths of each family, host bits
    for ecs in ('192.0.2.1/32', '0.0.0.0/0', '192.0.2.0/24', '2001:db8::1/128', '::/0'):
        rc, out, err = c.run('--json', 'explain', P, '--ecs', ecs)
        t.ok(rc == 0 and json.loads(out)['client']['source'] in ('ecs', 'resolver'),
             'explain --ecs %s accepted' % ecs, err)
    for ecs in ('192.0.2.0/33', '2001:db8::/129', '192.0.2.128/24', '192.0.2.1/31'):
        rc, out, err = c.run('explain', P, '--ecs', ecs)
        t.ok(rc == 2 and err.startswith('gslbctl: explain: --ecs: ') and err.count('\n') == 1,
             'explain --ecs %s refused, exit 2' % ecs, 'exit %d, %r' % (rc, err))


def apply_bounds(t, c, tmp):
    """The same bounds in an apply file: exit 2 naming the JSON path, nothing written."""
    base = json.loads(c.ok('export'))
    base['pools'] = [p for p in base['pools'] if p['name'] == P]
    base['pools'][0]['check'] = {'type': 'http', 'port': 80}
    path = os.path.join(tmp, 'apply.json')

    def doc_with(where, key, value):
        d = json.loads(json.dumps(base))
        pool = d['pools'][0]
        obj = {'pool': pool, 'member': pool['members'][0], 'check': pool['check']}[where]
        obj[key] = value
        with open(path, 'w') as f:
            json.dump(d, f)
        return obj['name'] if where != 'check' else None

    def stored(where, key):
        pool = c.pool()
        obj = {'pool': pool, 'member': pool['members'][0], 'check': pool.get('check', {})}[where]
        return obj.get(key)

    cases = [
        ('member', 'weight', (0, 65535), (65536, -1)),
        ('member', 'priority', (1, 255), (0, 256)),
        ('member', 'location', ('-90,-180', '90,180'),
         ('-90.0001,0', '90,180.0001')),
        ('pool', 'ttl', (0, 86400), (86401,)),
        ('pool', 'degraded_ttl', (1, 86400), (0, 86401)),
        ('pool', 'answers', (1, 64), (0, 65)),
        ('check', 'port', (1, 65535), (0, 65536)),
        ('check', 'interval', (1, 3600), (0.999, 3600.001)),
        ('check', 'rise', (1, 100), (0, 101)),
        ('check', 'fall', (1, 100), (0, 101)),
        ('check', 'expect', ('599', '100-599'), ('600', '99')),
    ]
    idx = {'pool': 'pools[0]', 'member': 'pools[0].members[0]', 'check': 'pools[0].check'}
    for where, key, good, bad in cases:
        for v in good:
            doc_with(where, key, v)
            rc, out, err = c.run('apply', path)
            got = stored(where, key) if rc == 0 else None
            t.ok(rc == 0 and got == v, 'apply %s.%s %r accepted and stored' % (where, key, v),
                 'exit %d, %r, stored %r' % (rc, err, got))
        for v in bad:
            doc_with(where, key, v)
            before = c.state()
            rc, out, err = c.run('apply', path)
            head = 'gslbctl: apply: %s.%s: ' % (idx[where], key)
            t.ok(rc == 2 and err.startswith(head) and err.count('\n') == 1
                 and c.state() == before,
                 'apply %s.%s %r refused, exit 2, nothing written' % (where, key, v),
                 'exit %d, stderr %r (want %r...)' % (rc, err, head))
    c.ok('check', 'rm', P)


def gslbd_bounds(t, db, tmp):
    """gslbd's numeric options at both edges, with --check-config (nothing is bound)."""
    zones = os.path.join(tmp, 'zones')
    os.makedirs(zones, exist_ok=True)
    shutil.copy(os.path.join(g.ZONES, 'example.test.zone'), zones)
    base = [g.GSLBD, '--check-config', '--zones', zones, '--db', db]

    def run(args):
        try:
            p = subprocess.run(base + args, capture_output=True, text=True, timeout=20)
            return p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            return None, 'timed out'

    hexmax = '0x' + 'ab' * 255
    cases = [
        ('--threads', ('1', '256'), ('0', '257', '-1', '')),
        ('--history', ('1', '87600'), ('0', '87601')),
        ('--listen', ('127.0.0.1:1', '127.0.0.1:65535', '[::1]:65535'),
         ('127.0.0.1:0', '127.0.0.1:65536', '[::1]:0')),
        ('--metrics', ('127.0.0.1:1', '127.0.0.1:65535'), ('127.0.0.1:0', '127.0.0.1:65536')),
        ('--nsid', ('x', 'x' * 255, hexmax), ('x' * 256, '', hexmax + 'ab', '0xabc')),
        ('--server-id', ('x' * 255,), ('x' * 256,)),
        ('--server-version', ('x' * 255,), ('x' * 256,)),
    ]
    for opt, good, bad in cases:
        for v in good:
            rc, err = run([opt, v])
            t.ok(rc == 0, 'gslbd %s %s accepted (--check-config exit 0)'
                 % (opt, v if len(v) < 20 else '(%d characters)' % len(v)), err[-1000:])
        for v in bad:
            rc, err = run([opt, v])
            t.ok(rc == 1 and err.startswith('gslbd: %s: ' % opt) and err.count('\n') == 1,
                 'gslbd %s %s refused: exit 1, one line naming it'
                 % (opt, repr(v) if len(v) < 20 else '(%d characters)' % len(v)),
                 'exit %r, stderr %r' % (rc, err[-1000:]))


def ecs_option(family, source, addr, scope=0):
    return dns.edns.GenericOption(dns.edns.OptionType.ECS,
                                  family.to_bytes(2, 'big') + bytes([source, scope]) + addr)


def ecs_bounds(t, srv):
    """RFC 7871 6: the source prefix up to 32 (IPv4) and 128 (IPv6), the address exactly as long
    as the prefix needs, no bits beyond it, scope 0 in queries (README "DNS behaviour")."""
    cases = [
        ('IPv4 /32', ecs_option(1, 32, bytes([192, 0, 2, 1])), NOERROR),
        ('IPv4 /33', ecs_option(1, 33, bytes([192, 0, 2, 1, 0])), FORMERR),
        ('IPv4 /33 with 4 address bytes', ecs_option(1, 33, bytes([192, 0, 2, 1])), FORMERR),
        ('IPv4 /0', ecs_option(1, 0, b''), NOERROR),
        ('IPv6 /128', ecs_option(2, 128, bytes(range(16))), NOERROR),
        ('IPv6 /129', ecs_option(2, 129, bytes(range(16)) + b'\0'), FORMERR),
        ('IPv6 /0', ecs_option(2, 0, b''), NOERROR),
        ('IPv4 /24 with 3 bytes', ecs_option(1, 24, bytes([192, 0, 2])), NOERROR),
        ('IPv4 /24 with 4 bytes', ecs_option(1, 24, bytes([192, 0, 2, 0])), FORMERR),
        ('IPv4 /24 with 2 bytes', ecs_option(1, 24, bytes([192, 0])), FORMERR),
        ('IPv4 /23, last prefix bit set', ecs_option(1, 23, bytes([192, 0, 2])), NOERROR),
        ('IPv4 /23, the first bit beyond set', ecs_option(1, 23, bytes([192, 0, 3])), FORMERR),
        ('IPv4 /17, the last bit beyond set', ecs_option(1, 17, bytes([192, 0, 1])), FORMERR),
        ('IPv4 /17, the first bit beyond set', ecs_option(1, 17, bytes([192, 0, 64])), FORMERR),
        ('IPv4 /24, scope 1', ecs_option(1, 24, bytes([192, 0, 2]), scope=1), FORMERR),
        ('family 3', ecs_option(3, 0, b''), FORMERR),
        ('family 0', ecs_option(0, 0, b''), FORMERR),
    ]
    for desc, opt, rcode in cases:
        q = g.make_query('www.example.test', 'A', edns=0, options=[opt])
        rep = g.exchange(q, srv.addr4)

        def echoed(m, opt=opt, rcode=rcode):
            if rcode != NOERROR:
                return []
            got = [o for o in m.options if o.otype == dns.edns.OptionType.ECS]
            if not got:
                return ['no ECS in the response']
            w = got[0].to_wire() if hasattr(got[0], 'to_wire') else b''
            return [] if w == opt.data else ['ECS echoed as %r, sent %r' % (w, opt.data)]
        g.check_reply(t, 'ECS %s: %s' % (desc, dns.rcode.to_text(rcode)), q, rep, rcode=rcode,
                      opt=True, extra=echoed)


def txt_zone(path):
    """edge.test: TXT answers of exactly 512 and 513 bytes, without EDNS (u) and with it (e), and
    of 1232 and 1233 bytes with EDNS."""
    def strings(total):
        out, left = [], total
        while left > 0:
            n = min(255, left - 1)
            out.append('"%s"' % ('x' * n))
            left -= n + 1
        return ' '.join(out)
    # Response = header 12 + question (16-byte name + 4) + one RR (2 + 10 + rdata) [+ OPT 11].
    lines = ['$ORIGIN edge.test.', '$TTL 300', '@ SOA ns hostmaster 1 3600 600 86400 300',
             '@ NS ns', 'ns A 192.0.2.1']
    for name, size, opt in (('u512', 512, 0), ('u513', 513, 0), ('e512', 512, 11),
                            ('e513', 513, 11), ('e232', 1232, 11), ('e233', 1233, 11)):
        lines.append('%s TXT %s' % (name, strings(size - 12 - 20 - 12 - opt)))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def udp_bounds(t, tmp):
    """The UDP limit: 512 without EDNS, else min(max(512, requested), 1232) (README "DNS
    behaviour"), at the byte: an answer that fits is whole, one byte more is TC=1."""
    zfile = os.path.join(tmp, 'edge.test.zone')
    txt_zone(zfile)
    srv = g.Gslbd(zones=(zfile,), identity=False, wait_zone='edge.test.').start()
    try:
        for name, size in (('u512', 512), ('u513', 513), ('e512', 512), ('e513', 513),
                           ('e232', 1232), ('e233', 1233)):
            q = g.make_query('%s.edge.test' % name, 'TXT', edns=0 if name[0] == 'e' else None)
            rep = g.exchange(q, srv.addr4, 'tcp')
            t.eq(len(rep.wire or b''), size, '%s: the whole answer is %d bytes (over TCP)'
                 % (name, size))
        cases = [
            ('u512', None, False), ('u513', None, True),
            ('e512', 0, False), ('e512', 511, False), ('e513', 511, True), ('e513', 512, True),
            ('e513', 513, False),
            ('e232', 1232, False), ('e233', 1232, True), ('e233', 1233, True),
            ('e233', 4096, True), ('e233', 65535, True), ('e232', 65535, False),
            ('e232', 1231, True),
        ]
        for name, payload, tc in cases:
            q = g.make_query('%s.edge.test' % name, 'TXT', edns=None if payload is None else 0,
                             payload=1232 if payload is None else payload)
            rep = g.exchange(q, srv.addr4, 'udp')
            g.check_reply(t, 'UDP %s %s: %s' % (name, 'no EDNS' if payload is None else
                                                'payload %d' % payload,
                                                'TC=1, no answer' if tc else 'whole'),
                          q, rep, rcode=NOERROR, tc=tc,
                          extra=lambda m, tc=tc: [] if bool(m.answer) != tc else
                          ['%d answer RRsets' % len(m.answer)])
        srv.check_stop(t)
    finally:
        srv.stop()


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbtest-bounds-')
    try:
        db = os.path.join(tmp, 'b.db')
        c = Ctl(db)
        c.ok('init')
        c.ok('pool', 'add', P)
        c.ok('member', 'add', P, 'm', '--address', '192.0.2.1')
        cli_bounds(t, c)
        apply_bounds(t, c, tmp)
        gslbd_bounds(t, db, tmp)
        udp_bounds(t, tmp)
        srv = g.Gslbd(identity=False).start()
        t.on_fail.append(lambda: srv.dump(t))
        ecs_bounds(t, srv)
        srv.check_stop(t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
