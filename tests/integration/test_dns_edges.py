#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DNAME, DS at a cut between two served zones, CNAME loops, TSIG-signed queries and
class-before-TTL zone files: gslbd's answers against knotd's and nsd's on the same zones."""

import collections
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.opcode  # noqa: E402
import dns.rcode  # noqa: E402
import dns.tsig  # noqa: E402
import dns.tsigkeyring  # noqa: E402

import gslbtest as g  # noqa: E402
import refserver  # noqa: E402

LONG = ('a' * 63 + '.' + 'b' * 63 + '.' + 'c' * 63 + '.' + 'd' * 49 + '.')

# Every zone is valid for all three servers: knotd and nsd refuse data below a DNAME (gslbd
# loads it occluded, RFC 6672 2.4; tests/unit/test_zone_load.c checks that).
ZONES = {
    'edge.test': '''; DNAME, loops, a delegation to a served zone, class before TTL (RFC 1035 5.1)
$TTL 3600
$ORIGIN edge.test.
@	IN 3600 SOA ns1 hostmaster (
		2024010101 3600 600 604800 300 )
	IN NS	ns1
ns1	IN 60 A	192.0.2.1
www	IN A	192.0.2.10
cbt	IN 120 A	192.0.2.60
	IN 1h TXT	"class before TTL"
cbt2	in 30 AAAA	2001:db8::60
ttlcls	90 IN A	192.0.2.61

dn	7200 IN DNAME	target
target	IN A	192.0.2.20
www.target	IN A	192.0.2.21
	IN TXT	"www target"
a.b.target	IN A	192.0.2.22
cn.target	IN CNAME	www
ext	300 IN DNAME	example.org.
dn2	IN DNAME	dn
todn	IN CNAME	www.dn
dnself	IN DNAME	dnself
long	IN DNAME	%s

loop1	IN CNAME	loop2
loop2	IN CNAME	loop1
self	IN CNAME	self
la	IN CNAME	lb
lb	IN CNAME	lc
lc	IN CNAME	la

child	86400 IN NS	ns.child
	86400 IN DS	12345 13 2 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
ns.child	IN A	192.0.2.53
nods	IN NS	ns.nods
ns.nods	IN A	192.0.2.54
''' % LONG,
    'child.edge.test': '''$TTL 3600
$ORIGIN child.edge.test.
@	IN SOA	ns hostmaster 7 3600 600 604800 900
	IN NS	ns
ns	IN A	192.0.2.53
www	IN A	192.0.2.55
''',
    'nods.edge.test': '''$ORIGIN nods.edge.test.
@	IN 3600 SOA	ns hostmaster 4294967295 2w 600 604800 900
	IN 3600 NS	ns
ns	IN 3600 A	192.0.2.54
''',
    # Served, but not delegated from edge.test.
    'nested.edge.test': '''$TTL 3600
$ORIGIN nested.edge.test.
@	IN SOA	ns.edge.test. hostmaster 1 3600 600 604800 900
	IN NS	ns.edge.test.
''',
    # Its parent is not served at all.
    'orphan.other': '''$TTL 3600
$ORIGIN orphan.other.
@	IN SOA	ns hostmaster 1 3600 600 604800 900
	IN NS	ns
ns	IN A	192.0.2.99
''',
    # A DNAME at the apex (RFC 6672 2.3 allows it beside SOA and NS).
    'apexdn.test': '''$TTL 3600
$ORIGIN apexdn.test.
@	IN SOA	ns.edge.test. hostmaster 1 3600 600 604800 900
	IN NS	ns.edge.test.
	IN DNAME	edge.test.
	IN TXT	"apex"
''',
}

QUERIES = [
    # DNAME (RFC 6672)
    ('www.dn.edge.test', 'A'), ('WwW.Dn.EdGe.TeSt', 'A'), ('www.dn.edge.test', 'TXT'),
    ('www.dn.edge.test', 'MX'), ('nx.dn.edge.test', 'A'), ('a.b.dn.edge.test', 'A'),
    ('cn.dn.edge.test', 'A'), ('dn.edge.test', 'DNAME'), ('dn.edge.test', 'A'),
    ('x.dn.edge.test', 'DNAME'), ('www.dn.edge.test', 'CNAME'), ('dn.edge.test', 'DS'),
    ('x.ext.edge.test', 'A'), ('www.dn2.edge.test', 'A'), ('ToDn.edge.test', 'A'),
    ('x.dnself.edge.test', 'A'), ('e' * 63 + '.' + 'e' * 40 + '.long.edge.test', 'A'),
    ('e.long.edge.test', 'A'), ('www.dn.edge.test', 'ANY'),
    ('apexdn.test', 'DNAME'), ('apexdn.test', 'TXT'), ('www.apexdn.test', 'A'),
    ('x.y.apexdn.test', 'AAAA'),
    # DS where the parent and the child are both served (RFC 4035 3.1.4.1)
    ('child.edge.test', 'DS'), ('Child.Edge.Test', 'DS'), ('nods.edge.test', 'DS'),
    ('www.child.edge.test', 'DS'), ('orphan.other', 'DS'), ('nested.edge.test', 'DS'),
    ('child.edge.test', 'SOA'), ('www.child.edge.test', 'A'), ('host.nods.edge.test', 'A'),
    # CNAME loops: each CNAME once
    ('loop1.edge.test', 'A'), ('loop2.edge.test', 'AAAA'), ('self.edge.test', 'A'),
    ('la.edge.test', 'TXT'), ('lb.edge.test', 'A'),
    # class before TTL, and the largest serial and refresh
    ('edge.test', 'SOA'), ('ns1.edge.test', 'A'), ('cbt.edge.test', 'A'),
    ('cbt.edge.test', 'TXT'), ('cbt2.edge.test', 'AAAA'), ('ttlcls.edge.test', 'A'),
    ('nods.edge.test', 'SOA'),
]

# Where gslbd deliberately answers otherwise, with why.  Key (qname lowercased, qtype, server),
# server '*' for both.
def _as(other):
    """gslbd answers as the other reference server does: its summary, when it runs."""
    return lambda ref, answers, edns: answers.get(other)


def _dname_and_cname(ref, answers, edns):
    """ANY below a DNAME: the DNAME and the CNAME the reference answers, nothing it adds past
    the CNAME (RFC 8482: the CNAME is the RRset at that name); the OPT counted with EDNS."""
    answer = [rr for rr in ref['answer'] if rr[2] in (5, 39)]
    return {'rcode': 'NOERROR', 'aa': True, 'tc': False,
            'counts': (len(answer), 0, 0 if edns is None else 1),
            'answer': answer, 'authority': [], 'additional': []}


LONG_TARGET = '.'.join(c * n for c, n in (('a', 63), ('b', 63), ('c', 63), ('d', 49))) + '.'


def _question_tc(ref, answers, edns):
    """542 bytes: too long for 512, so without EDNS the question alone with TC=1 (never a
    partial answer); with EDNS (1232 bytes) the DNAME and its CNAME, whole."""
    if edns is None:
        return {'rcode': 'NOERROR', 'aa': True, 'tc': True, 'counts': (0, 0, 0),
                'answer': [], 'authority': [], 'additional': []}
    return {'rcode': 'NOERROR', 'aa': True, 'tc': False, 'counts': (2, 0, 1),
            'answer': sorted([('long.edge.test.', 3600, 39, LONG_TARGET),
                              ('e.long.edge.test.', 3600, 5, 'e.' + LONG_TARGET)]),
            'authority': [], 'additional': []}


# Where gslbd deliberately answers otherwise than knotd or nsd: (qname lowercased, qtype, server)
# or (qname, qtype, '*') -> (why, what gslbd must answer: a function of the reference's summary
# and of every reference's summary by name, or None when that cannot be known here).  These are
# checked, never skipped: gslbd must give exactly its documented answer.
DIFFERENCES = {
    ('www.dn.edge.test', 'ANY', '*'):
        ('RFC 8482: gslbd answers ANY below a DNAME with the DNAME and the CNAME (the CNAME is the '
         'RRset at that name); knotd and nsd follow it and add the target\'s RRsets',
         _dname_and_cname),
    ('x.dnself.edge.test', 'A', 'knotd'):
        ('knotd repeats the synthesized CNAME of a DNAME to itself five times; gslbd writes it '
         'once, as nsd (RFC 2181 5: no RRset twice in a section)', _as('nsd')),
    ('www.apexdn.test', 'A', 'nsd'):
        ('nsd follows a DNAME into another zone it serves; gslbd follows chains inside the zone '
         'only, as knotd', _as('knotd')),
    ('x.y.apexdn.test', 'AAAA', 'nsd'):
        ('nsd follows a DNAME into another zone it serves; gslbd follows chains inside the zone '
         'only, as knotd', _as('knotd')),
    ('nested.edge.test', 'DS', 'knotd'):
        ('DS at the apex of a zone its parent does not delegate: knotd answers NXDOMAIN from the '
         'parent, which denies the whole zone to a resolver (RFC 8020); gslbd answers the '
         'parent\'s NODATA, as nsd', _as('nsd')),
    ('e.long.edge.test', 'A', '*'):
        ('the answer (542 bytes) does not fit in 512: gslbd sends the question alone with TC=1 '
         '(README: never a partial answer); knotd and nsd keep the DNAME', _question_tc),
}


def section(sec):
    """A section as a sorted list of RR tuples, owners in the case the server wrote."""
    out = []
    for rrset in sec:
        for rd in rrset:
            out.append((rrset.name.to_text(), rrset.ttl, rrset.rdtype, rd.to_text()))
    return sorted(out)


def summary(reply):
    """What is compared: rcode, AA, TC, the section counts of the header (dnspython merges an
    RR written twice into one, the count shows it) and the sections."""
    m = reply.msg
    return {
        'rcode': dns.rcode.to_text(m.rcode()),
        'aa': bool(m.flags & dns.flags.AA),
        'tc': bool(m.flags & dns.flags.TC),
        'counts': struct.unpack('!HHH', reply.wire[6:12]),
        'answer': section(m.answer),
        'authority': section(m.authority),
        'additional': section(m.additional),
    }


def diff(a, b):
    out = []
    for k in a:
        if a[k] != b[k]:
            if isinstance(a[k], list):
                ca, cb = collections.Counter(a[k]), collections.Counter(b[k])
                out.append('%s: gslbd only: %s; reference only: %s'
                           % (k, sorted((ca - cb).elements()), sorted((cb - ca).elements())))
            else:
                out.append('%s: gslbd %r, reference %r' % (k, a[k], b[k]))
    return out


# ---- raw messages, for TSIG: dnspython refuses to parse a BADKEY answer without the key

def read_name(w, pos):
    """(lowercased text, offset after the name at pos), pointers followed."""
    labels, end, hops = [], None, 0
    while True:
        n = w[pos]
        if n & 0xc0 == 0xc0:
            if end is None:
                end = pos + 2
            pos = struct.unpack('!H', w[pos:pos + 2])[0] & 0x3fff
            hops += 1
            if hops > 64:
                raise ValueError('pointer loop')
            continue
        if n == 0:
            return '.'.join(labels).lower() + '.', end if end is not None else pos + 1
        labels.append(w[pos + 1:pos + 1 + n].decode('latin-1'))
        pos += 1 + n


def parse_raw(w):
    """{'flags', 'counts', 'rrs': [(section, owner, type, class, ttl, rdata)]}."""
    flags = struct.unpack('!H', w[2:4])[0]
    counts = struct.unpack('!HHHH', w[4:12])
    pos = 12
    for _ in range(counts[0]):
        pos = read_name(w, pos)[1] + 4
    rrs = []
    for i in range(sum(counts[1:])):
        sec = 0 if i < counts[1] else 1 if i < counts[1] + counts[2] else 2
        owner, pos = read_name(w, pos)
        typ, cls, ttl, rdlen = struct.unpack('!HHIH', w[pos:pos + 10])
        pos += 10
        rrs.append((sec, owner, typ, cls, ttl, bytes(w[pos:pos + rdlen])))
        pos += rdlen
    return {'flags': flags, 'counts': counts, 'rrs': rrs, 'rest': len(w) - pos}


KEYRING = dns.tsigkeyring.from_text({'edge-key.': 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0'})


def signed(qname, qtype, qclass='IN', edns=None, opcode=None, version=0):
    q = g.make_query(qname, qtype, qclass=qclass, edns=edns, opcode=opcode)
    if edns is not None:
        q.use_edns(version, 0, 1232)
    q.use_tsig(KEYRING, keyname='edge-key.', algorithm=dns.tsig.HMAC_SHA256)
    return q.to_wire()


def send(addr, wire, proto='udp'):
    return g.udp_raw(wire, addr, 1.0) if proto == 'udp' else g.tcp_raw(wire, addr, 2.0)


def tsig_checks(t, srv, refs):
    """Signed queries: NOTAUTH / BADKEY from gslbd, compared byte for byte with the references."""
    cases = [
        # (description, wire, proto, want rcode from gslbd)
        ('signed A query', signed('www.edge.test', 'A'), 'udp', 9),
        ('signed A query with EDNS', signed('www.edge.test', 'A', edns=0), 'udp', 9),
        ('signed A query over TCP', signed('www.dn.edge.test', 'A'), 'tcp', 9),
        ('signed NOTIFY', signed('edge.test', 'SOA', opcode=dns.opcode.NOTIFY), 'udp', 9),
        ('signed query for a name not served', signed('www.example.org', 'A'), 'udp', 9),
        ('signed CH TXT version.bind', signed('version.bind', 'TXT', qclass='CH'), 'udp', 9),
        ('signed query with EDNS version 1', signed('www.edge.test', 'A', edns=0, version=1),
         'udp', 16),
    ]
    # Where the references differ from each other, gslbd sides with the one named.
    alike = {
        'signed query for a name not served': 'nsd',    # knotd: REFUSED, unsigned
        'signed CH TXT version.bind': 'nsd',            # knotd: answers the CH query
        'signed query with EDNS version 1': 'knotd',    # nsd: NOTAUTH with BADVERS's high bits
    }
    for desc, wire, proto, want in cases:
        got = send(srv.addr4, wire, proto)
        if got is None:
            t.ok(False, 'TSIG: %s: answered' % desc, 'no reply from gslbd')
            continue
        a = parse_raw(got)
        rcode = (a['flags'] & 0xf) | ((a['rrs'][-1][4] >> 20 & 0xff0) if any(
            r[2] == 41 for r in a['rrs']) else 0)
        opt = [r for r in a['rrs'] if r[2] == 41]
        if opt:
            rcode = (a['flags'] & 0xf) | ((opt[0][4] >> 24) << 4)
        tsig = [r for r in a['rrs'] if r[2] == 250]
        t.ok(rcode == want and not a['flags'] & 0x0400 and a['counts'][0] == 1 and
             a['rest'] == 0 and (want != 9 or (len(tsig) == 1 and a['rrs'][-1] == tsig[0])),
             'TSIG: %s: rcode %d, AA=0, question echoed%s'
             % (desc, want, ', the TSIG last' if want == 9 else ''),
             'flags %04x counts %r rrs %r' % (a['flags'], a['counts'], a['rrs']))
        if want == 9 and tsig:
            _, owner, typ, cls, ttl, rd = tsig[0]
            # RFC 8945 5.2.2: the request's algorithm, time and fudge; no MAC; BADKEY.
            qt = parse_raw(wire)['rrs'][-1]
            alg_end = qt[5].index(b'\x00') + 1
            want_rd = (qt[5][:alg_end + 8] + b'\x00\x00' + wire[0:2] + b'\x00\x11\x00\x00')
            t.ok(owner == 'edge-key.' and cls == 255 and ttl == 0 and rd == want_rd,
                 'TSIG: %s: key, algorithm, time and fudge of the query, no MAC, BADKEY' % desc,
                 'got %r, want rdata %r' % (tsig[0], want_rd))
        for ref in refs:
            r = send(('127.0.0.1', ref.port), wire, proto)
            if r is None:
                t.ok(False, 'TSIG: %s: %s answers' % (desc, ref.name), 'no reply')
                continue
            b = parse_raw(r)
            other = alike.get(desc)
            if other and other != ref.name:
                # gslbd's own answer was asserted above; it is compared with the other server.
                t.diag('TSIG: %s: knotd and nsd differ here; gslbd answers as %s, not as %s'
                       % (desc, other, ref.name))
                continue
            # nsd leaves the question out of a TSIG error; compare the records only.
            same = (b['flags'] & 0x7fff) == (a['flags'] & 0x7fff) and b['rrs'] == a['rrs']
            t.ok(same, 'TSIG: %s: same header and records as %s' % (desc, ref.name),
                 'gslbd %r\n%s %r' % (a, ref.name, b))

    # RFC 8945 5.1: a TSIG that is not the last record is FORMERR (both references agree).
    wire = bytearray(signed('www.edge.test', 'A'))
    wire += b'\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00'
    wire[10:12] = struct.pack('!H', 2)
    for who, addr in [('gslbd', srv.addr4)] + [(r.name, ('127.0.0.1', r.port)) for r in refs]:
        r = send(addr, bytes(wire))
        t.ok(r is not None and parse_raw(r)['flags'] & 0xf == 1 and
             not any(x[2] == 250 for x in parse_raw(r)['rrs']),
             'TSIG before the OPT: %s answers FORMERR without a TSIG' % who,
             'reply %r' % (r and parse_raw(r)))


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbedge-')
    zdir = os.path.join(tmp, 'zones')
    os.mkdir(zdir)
    for z, text in ZONES.items():
        with open(os.path.join(zdir, z + '.zone'), 'w') as f:
            f.write(text)
    refs = []
    try:
        for name in refserver.NAMES:
            ref = refserver.RefServer(name, zdir, ZONES)
            if ref.start():
                refs.append(ref)
                t.diag('reference: %s on port %d' % (name, ref.port))
            else:
                t.diag('no %s: %s' % (name, ref.why))
                ref.cleanup()
        srv = g.Gslbd(zones=[os.path.join(zdir, z + '.zone') for z in ZONES],
                      wait_zone='edge.test.').start()
        t.on_fail.append(lambda: srv.dump(t))
        for z in ZONES:
            r = g.exchange(g.make_query(z, 'SOA'), srv.addr4)
            t.ok(r.msg is not None and r.msg.rcode() == dns.rcode.NOERROR and r.msg.answer,
                 'gslbd serves %s' % z, r.error or (r.msg and r.msg.to_text()))
        if not refs:
            t.skip('answers compared with knotd and nsd', 'no reference server')

        for edns in (None, 0):
            for qname, qtype in QUERIES:
                desc = '%s %s%s' % (qname, qtype, ' +edns' if edns is not None else '')
                q = g.make_query(qname, qtype, edns=edns, payload=1232)
                a = g.exchange(q, srv.addr4)
                if a.msg is None:
                    t.ok(False, desc, 'gslbd: %s' % a.error)
                    continue
                replies, texts = {}, {}
                for ref in refs:
                    b = ref.ask(q)
                    if b.msg is None:
                        t.ok(False, '%s: %s answers' % (desc, ref.name), b.error)
                        continue
                    replies[ref.name] = summary(b)
                    texts[ref.name] = b.msg.to_text()
                for ref in refs:
                    if ref.name not in replies:
                        continue
                    sa, sb = summary(a), replies[ref.name]
                    problems = diff(sa, sb)
                    key = (qname.lower(), qtype)
                    listed = DIFFERENCES.get(key + (ref.name,)) or DIFFERENCES.get(key + ('*',))
                    if listed:
                        reason, documented = listed
                        want = documented(sb, replies, edns)
                        if want is None:
                            t.diag('%s: %s differs (%s); the server gslbd answers as is not '
                                   'running' % (desc, ref.name, reason))
                            continue
                        t.ok(sa == want, '%s: gslbd\'s documented answer, not %s\'s (%s)'
                             % (desc, ref.name, reason),
                             '\n'.join(diff(sa, want)) + '\n---- gslbd:\n%s' % a.msg.to_text())
                        continue
                    t.ok(not problems, '%s: same as %s' % (desc, ref.name),
                         '\n'.join(problems) + '\n---- gslbd:\n%s\n---- %s:\n%s'
                         % (a.msg.to_text(), ref.name, texts[ref.name]))

        # What does not depend on a reference: the rules themselves.
        r = g.exchange(g.make_query('loop1.edge.test', 'A'), srv.addr4)
        t.ok(r.msg is not None and r.msg.rcode() == dns.rcode.NOERROR and
             [rr.rdtype for rr in r.msg.answer] == [5, 5] and
             all(len(rr) == 1 for rr in r.msg.answer),
             'CNAME loop: NOERROR, each CNAME once', r.msg and r.msg.to_text())
        r = g.exchange(g.make_query('www.dn.edge.test', 'A'), srv.addr4)
        t.ok(r.msg is not None and [rr.rdtype for rr in r.msg.answer] == [39, 5, 1] and
             r.msg.answer[1].ttl == 7200,
             'DNAME: DNAME, CNAME with the DNAME\'s TTL, A', r.msg and r.msg.to_text())
        r = g.exchange(g.make_query('child.edge.test', 'DS'), srv.addr4)
        t.ok(r.msg is not None and r.msg.answer and r.msg.answer[0].rdtype == 43,
             'DS at a child apex: the parent\'s DS', r.msg and r.msg.to_text())

        tsig_checks(t, srv, refs)
        srv.check_stop(t)
    finally:
        for ref in refs:
            ref.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
