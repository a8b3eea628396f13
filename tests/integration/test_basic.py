#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The DNS rules of README "DNS behaviour" against a running gslbd, over UDP/TCP and IPv4/IPv6."""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns      # noqa: E402
import dns.flags     # noqa: E402
import dns.opcode    # noqa: E402
import dns.rcode     # noqa: E402
import dns.rdatatype  # noqa: E402

import gslbtest as g  # noqa: E402
from gslbtest import E  # noqa: E402

NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED
FORMERR, NOTIMP, BADVERS = dns.rcode.FORMERR, dns.rcode.NOTIMP, dns.rcode.BADVERS

SOA = E('@ 300 SOA ns1 hostmaster 2024010101 3600 600 604800 300')
SOA_OTHER = E('@ 120 SOA ns hostmaster 1 3600 600 604800 900', origin='other.test.')
WWW_A = E('www 3600 A 192.0.2.10', 'www 3600 A 192.0.2.11')
EMPTY = set()
REFERRAL_NS = E('sub 3600 NS ns.sub', 'sub 3600 NS ns.other.test.')
REFERRAL_GLUE = E('ns.sub 3600 A 192.0.2.53', 'ns.sub 3600 AAAA 2001:db8::53')


def wild(owner, *lines):
    return {(owner, ttl, typ, rd) for (_, ttl, typ, rd) in E(*lines)}


# (description, qname, qtype, expectations) for the static data, run over every transport.
CASES = [
    ('positive A', 'www.example.test', 'A',
     dict(rcode=NOERROR, aa=True, answer=WWW_A, authority=EMPTY, additional=EMPTY)),
    ('positive AAAA', 'www.example.test', 'AAAA',
     dict(rcode=NOERROR, aa=True, answer=E('www 3600 AAAA 2001:db8::10'), authority=EMPTY,
          additional=EMPTY)),
    ('apex SOA', 'example.test', 'SOA',
     dict(rcode=NOERROR, aa=True, answer=E('@ 3600 SOA ns1 hostmaster 2024010101 3600 600 '
                                           '604800 300'), authority=EMPTY, additional=EMPTY)),
    ('apex NS: no additional (only OPT and referral glue allowed)', 'example.test', 'NS',
     dict(rcode=NOERROR, aa=True, answer=E('@ 3600 NS ns1', '@ 3600 NS ns2'), authority=EMPTY,
          additional=EMPTY)),
    ('apex MX: no additional', 'example.test', 'MX',
     dict(rcode=NOERROR, aa=True, answer=E('@ 3600 MX 10 mail'), authority=EMPTY,
          additional=EMPTY)),
    ('NODATA: one SOA, TTL min(SOA TTL 3600, MINIMUM 300)', 'www.example.test', 'MX',
     dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('NXDOMAIN: one SOA, TTL 300', 'nothere.example.test', 'A',
     dict(rcode=NXDOMAIN, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('NXDOMAIN other.test: TTL min(SOA TTL 120, MINIMUM 900)', 'nothere.other.test', 'A',
     dict(rcode=NXDOMAIN, aa=True, answer=EMPTY, authority=SOA_OTHER, additional=EMPTY)),
    ('NODATA other.test: SOA TTL 120', 'host.other.test', 'AAAA',
     dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA_OTHER, additional=EMPTY)),
    ('empty non-terminal b.ent is NODATA', 'b.ent.example.test', 'A',
     dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('empty non-terminal ent is NODATA', 'ent.example.test', 'TXT',
     dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('below an ENT: NXDOMAIN', 'x.b.ent.example.test', 'A',
     dict(rcode=NXDOMAIN, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('CNAME in zone: CNAME + final RRset', 'alias.example.test', 'A',
     dict(rcode=NOERROR, aa=True, answer=E('alias 3600 CNAME www') | WWW_A, authority=EMPTY,
          additional=EMPTY)),
    ('CNAME chain of three', 'c1.example.test', 'A',
     dict(rcode=NOERROR, aa=True,
          answer=E('c1 3600 CNAME c2', 'c2 3600 CNAME c3', 'c3 3600 CNAME www') | WWW_A,
          authority=EMPTY, additional=EMPTY)),
    ('CNAME chain to NODATA type: CNAMEs + SOA', 'c1.example.test', 'MX',
     dict(rcode=NOERROR, aa=True,
          answer=E('c1 3600 CNAME c2', 'c2 3600 CNAME c3', 'c3 3600 CNAME www'),
          authority=SOA, additional=EMPTY)),
    ('qtype CNAME is not chased', 'c1.example.test', 'CNAME',
     dict(rcode=NOERROR, aa=True, answer=E('c1 3600 CNAME c2'), authority=EMPTY,
          additional=EMPTY)),
    ('CNAME to a missing name: NXDOMAIN, CNAME + SOA', 'dangling.example.test', 'A',
     dict(rcode=NXDOMAIN, aa=True, answer=E('dangling 3600 CNAME nothere'), authority=SOA,
          additional=EMPTY)),
    ('CNAME out of the zone stops at the CNAME', 'outside.example.test', 'A',
     dict(rcode=NOERROR, aa=True, answer=E('outside 3600 CNAME www.example.org.'),
          authority=EMPTY, additional=EMPTY)),
    ('wildcard: synthesized owner = qname', 'foo.wild.example.test', 'A',
     dict(rcode=NOERROR, aa=True, answer=wild('foo.wild.example.test.', '* 3600 A 192.0.2.80'),
          authority=EMPTY, additional=EMPTY)),
    ('wildcard two labels down', 'a.b.wild.example.test', 'TXT',
     dict(rcode=NOERROR, aa=True, answer=wild('a.b.wild.example.test.', '* 3600 TXT "wild text"'),
          authority=EMPTY, additional=EMPTY)),
    ('wildcard: missing type is NODATA', 'foo.wild.example.test', 'MX',
     dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('existing name under the wildcard parent blocks it (NODATA)', 'exists.wild.example.test',
     'A', dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('existing name answers its own data', 'exists.wild.example.test', 'TXT',
     dict(rcode=NOERROR, aa=True, answer=E('exists.wild 3600 TXT "exists"'), authority=EMPTY,
          additional=EMPTY)),
    ('below an existing name: no wildcard, NXDOMAIN', 'x.exists.wild.example.test', 'A',
     dict(rcode=NXDOMAIN, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('ENT under the wildcard parent is NODATA', 'y.wild.example.test', 'A',
     dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('wildcard does not match across an ENT', 'z.y.wild.example.test', 'A',
     dict(rcode=NXDOMAIN, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('wildcard CNAME is followed', 'foo.wcname.example.test', 'A',
     dict(rcode=NOERROR, aa=True,
          answer=wild('foo.wcname.example.test.', '* 3600 CNAME www') | WWW_A,
          authority=EMPTY, additional=EMPTY)),
    ('referral at the cut', 'sub.example.test', 'A',
     dict(rcode=NOERROR, aa=False, answer=EMPTY, authority=REFERRAL_NS,
          additional=REFERRAL_GLUE)),
    ('referral below the cut', 'host.sub.example.test', 'AAAA',
     dict(rcode=NOERROR, aa=False, answer=EMPTY, authority=REFERRAL_NS,
          additional=REFERRAL_GLUE)),
    ('referral for the glue name itself', 'ns.sub.example.test', 'A',
     dict(rcode=NOERROR, aa=False, answer=EMPTY, authority=REFERRAL_NS,
          additional=REFERRAL_GLUE)),
    ('referral for NS at the cut', 'sub.example.test', 'NS',
     dict(rcode=NOERROR, aa=False, answer=EMPTY, authority=REFERRAL_NS,
          additional=REFERRAL_GLUE)),
    # deep.sub has NS records of its own below the sub cut: the topmost cut wins.
    ('a cut below the cut: the topmost cut\'s referral', 'deep.sub.example.test', 'A',
     dict(rcode=NOERROR, aa=False, answer=EMPTY, authority=REFERRAL_NS,
          additional=REFERRAL_GLUE)),
    ('below a cut below the cut: the topmost cut\'s referral', 'x.deep.sub.example.test', 'A',
     dict(rcode=NOERROR, aa=False, answer=EMPTY, authority=REFERRAL_NS,
          additional=REFERRAL_GLUE)),
    ('occluded glue of the lower cut: the topmost cut\'s referral', 'ns.deep.sub.example.test',
     'A', dict(rcode=NOERROR, aa=False, answer=EMPTY, authority=REFERRAL_NS,
               additional=REFERRAL_GLUE)),
    ('CNAME into a delegation: CNAME + referral (RFC 1034 4.3.2 step 3b)',
     'tosub.example.test', 'A',
     dict(rcode=NOERROR, aa=True, answer=E('tosub 3600 CNAME host.sub'),
          authority=REFERRAL_NS, additional=REFERRAL_GLUE)),
    ('DS at the cut: parent NODATA, AA=1', 'sub.example.test', 'DS',
     dict(rcode=NOERROR, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('outside every zone: REFUSED, no records', 'www.example.org', 'A',
     dict(rcode=REFUSED, aa=False, answer=EMPTY, authority=EMPTY, additional=EMPTY)),
    ('parent of the zones: REFUSED', 'test', 'SOA',
     dict(rcode=REFUSED, aa=False, answer=EMPTY, authority=EMPTY, additional=EMPTY)),
    ('root: REFUSED', '.', 'NS',
     dict(rcode=REFUSED, aa=False, answer=EMPTY, authority=EMPTY, additional=EMPTY)),
    ('ANY at a missing name: NXDOMAIN', 'nothere.example.test', 'ANY',
     dict(rcode=NXDOMAIN, aa=True, answer=EMPTY, authority=SOA, additional=EMPTY)),
    ('AXFR: NOTIMP', 'example.test', 'AXFR', dict(rcode=NOTIMP, aa=False)),
    ('IXFR: NOTIMP', 'example.test', 'IXFR', dict(rcode=NOTIMP, aa=False)),
    ('MAILB: NOTIMP', 'www.example.test', 'MAILB', dict(rcode=NOTIMP, aa=False)),
    ('MAILA: NOTIMP', 'www.example.test', 'MAILA', dict(rcode=NOTIMP, aa=False)),
    ('meta type 128: NOTIMP', 'www.example.test', 'TYPE128', dict(rcode=NOTIMP, aa=False)),
]


def hinfo_rfc8482(owner):
    def check(m):
        got = g.rrs(m.answer, keep_case=True, ttl=False)
        want = {(owner, None, 'HINFO', '"RFC8482" ""')}
        return [] if got == want else ['ANY answer %r, want %r' % (sorted(got), sorted(want))]
    return check


def opt_option(m, code):
    return [o for o in m.options if o.otype == code]


def chain_order(m, first, last):
    """The answer is the chain lFIRST -> ... -> lLAST in order (then any records of lLAST)."""
    names = [r.name.to_text().lower() for r in m.answer]
    want = ['l%d.example.test.' % i for i in range(first, last)]
    got = names[:len(want)]
    rest = set(names[len(want):]) - {'l%d.example.test.' % last}
    return [] if got == want and not rest else ['answer order %r, want %r first' % (names, want)]


def main(t):
    srv = g.Gslbd().start()
    t.on_fail.append(lambda: srv.dump(t))
    transports = [('udp', 4), ('tcp', 4)]
    if srv.v6:
        transports += [('udp', 6), ('tcp', 6)]
    else:
        t.skip('the cases over udp6 and tcp6', 'IPv6 loopback unavailable')

    def ask(q, proto='udp', fam=4, timeout=1.0):
        return g.exchange(q, srv.addr(fam), proto, timeout)

    # ---- every static case over every transport, without EDNS
    for proto, fam in transports:
        tag = '%s%d' % (proto, fam)
        for desc, name, qtype, exp in CASES:
            q = g.make_query(name, qtype)
            g.check_reply(t, '%s: %s (%s %s)' % (tag, desc, name, qtype), q,
                          ask(q, proto, fam), **exp)
        # Case is preserved in the question and the owner names.
        q = g.make_query('WwW.DeMo.TeSt', 'A')
        g.check_reply(t, '%s: mixed-case name outside the zones: REFUSED, question echoed '
                      'as sent' % tag, q, ask(q, proto, fam), rcode=REFUSED, aa=False,
                      answer=EMPTY)
        q = g.make_query('WwW.ExAmPlE.TeSt', 'A')
        g.check_reply(t, '%s: case preserved in question and owner names' % tag, q,
                      ask(q, proto, fam), rcode=NOERROR, aa=True, answer=WWW_A,
                      extra=lambda m: [] if all(r.name.to_text() == 'WwW.ExAmPlE.TeSt.'
                                                for r in m.answer)
                      else ['owner names %r' % [r.name.to_text() for r in m.answer]])
        q = g.make_query('FoO.WiLd.ExAmPlE.TeSt', 'A')
        g.check_reply(t, '%s: wildcard owner in the client case' % tag, q, ask(q, proto, fam),
                      rcode=NOERROR, aa=True,
                      extra=lambda m: [] if [r.name.to_text() for r in m.answer]
                      == ['FoO.WiLd.ExAmPlE.TeSt.'] else
                      ['owner names %r' % [r.name.to_text() for r in m.answer]])
        # RD copied either way.
        q = g.make_query('www.example.test', 'A', rd=False)
        g.check_reply(t, '%s: RD=0 copied' % tag, q, ask(q, proto, fam), rcode=NOERROR, aa=True)
        # ANY (RFC 8482).
        q = g.make_query('Www.Example.Test', 'ANY')
        g.check_reply(t, '%s: ANY: one HINFO "RFC8482" "" (owner in client case)' % tag, q,
                      ask(q, proto, fam), rcode=NOERROR, aa=True, authority=EMPTY,
                      extra=hinfo_rfc8482('Www.Example.Test.'))
        q = g.make_query('foo.wild.example.test', 'ANY')
        g.check_reply(t, '%s: ANY at a wildcard-synthesized name' % tag, q, ask(q, proto, fam),
                      rcode=NOERROR, aa=True, extra=hinfo_rfc8482('foo.wild.example.test.'))

    # ---- the same cases with EDNS over UDP/IPv4: OPT comes back, nothing else changes
    for desc, name, qtype, exp in CASES:
        q = g.make_query(name, qtype, edns=0)
        g.check_reply(t, 'udp4 EDNS: %s (%s %s)' % (desc, name, qtype), q, ask(q), opt=True,
                      **exp)

    # ---- classes
    q = g.make_query('www.example.test', 'A', qclass='ANY')
    g.check_reply(t, 'class ANY answered as IN', q, ask(q), rcode=NOERROR, aa=True,
                  extra=lambda m: [] if {(n, ty, rd) for n, _, ty, rd in g.rrs(m.answer)}
                  == {(n, ty, rd) for n, _, ty, rd in WWW_A} else ['answer %r' % m.answer])
    for cls in ('HS', 'NONE', 'CLASS42'):
        q = g.make_query('www.example.test', 'A', qclass=cls)
        g.check_reply(t, 'class %s: REFUSED' % cls, q, ask(q), rcode=REFUSED, aa=False,
                      answer=EMPTY, authority=EMPTY, additional=EMPTY)
    q = g.make_query('www.example.test', 'A', qclass='CH')
    g.check_reply(t, 'class CH for a zone name: REFUSED', q, ask(q), rcode=REFUSED, aa=False,
                  answer=EMPTY)

    def ch_txt(name, value):
        def check(m):
            got = [(r.name.to_text().lower(), r.rdclass, r.rdtype, [x.to_text() for x in r])
                   for r in m.answer]
            want = [(name + '.', dns.rdataclass.CH, dns.rdatatype.TXT, ['"%s"' % value])]
            return [] if got == want else ['answer %r, want %r' % (got, want)]
        return check

    for name, value in (('version.bind', g.SERVER_VERSION), ('version.server', g.SERVER_VERSION),
                        ('hostname.bind', g.SERVER_ID), ('id.server', g.SERVER_ID)):
        for proto, fam in transports[:2]:
            q = g.make_query(name, 'TXT', qclass='CH')
            g.check_reply(t, '%s%d: CH TXT %s' % (proto, fam, name), q, ask(q, proto, fam),
                          rcode=NOERROR, extra=ch_txt(name, value))

    # ---- opcodes
    for op in (dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.NOTIFY, dns.opcode.UPDATE):
        q = g.make_query('example.test', 'SOA', opcode=op)
        g.check_reply(t, 'opcode %s: NOTIMP, AA=0' % dns.opcode.to_text(op), q, ask(q),
                      rcode=NOTIMP, aa=False, answer=EMPTY)
    q = g.make_query('example.test', 'SOA', opcode=dns.opcode.NOTIFY, edns=0)
    g.check_reply(t, 'opcode NOTIFY with EDNS: NOTIMP with OPT', q, ask(q), rcode=NOTIMP,
                  aa=False, opt=True)

    # ---- EDNS
    q = g.make_query('www.example.test', 'A', edns=0, payload=4096)
    g.check_reply(t, 'EDNS: OPT present, UDP size 1232 advertised, DO clear', q, ask(q),
                  rcode=NOERROR, aa=True, answer=WWW_A, additional=EMPTY, opt=True,
                  extra=lambda m: (['payload %d' % m.payload] if m.payload != 1232 else [])
                  + (['DO set'] if m.ednsflags & dns.flags.DO else [])
                  + (['EDNS version %d' % m.edns] if m.edns != 0 else []))
    q = g.make_query('www.example.test', 'A', edns=0, do=True)
    g.check_reply(t, 'EDNS: DO echoed', q, ask(q), rcode=NOERROR, aa=True, opt=True,
                  extra=lambda m: [] if m.ednsflags & dns.flags.DO else ['DO not echoed'])
    q = g.make_query('nothere.example.test', 'A', edns=0, do=True)
    g.check_reply(t, 'EDNS: DO echoed on NXDOMAIN', q, ask(q), rcode=NXDOMAIN, aa=True,
                  opt=True, authority=SOA,
                  extra=lambda m: [] if m.ednsflags & dns.flags.DO else ['DO not echoed'])
    q = g.make_query('www.example.test', 'A', edns=1)
    g.check_reply(t, 'EDNS version 1: BADVERS with OPT, AA=0, no answer', q, ask(q),
                  rcode=BADVERS, aa=False, answer=EMPTY, opt=True,
                  extra=lambda m: ['response EDNS version %d' % m.edns] if m.edns != 0 else [])
    q = g.make_query('www.example.test', 'A', edns=1)
    g.check_reply(t, 'tcp4: EDNS version 1: BADVERS', q, ask(q, 'tcp'), rcode=BADVERS,
                  aa=False, opt=True)
    q = g.make_query('www.example.test', 'A', edns=0, options=[
        dns.edns.GenericOption(dns.edns.OptionType.NSID, b'')])
    g.check_reply(t, 'NSID returned when asked', q, ask(q), rcode=NOERROR, aa=True, opt=True,
                  extra=lambda m: [] if [o.data if hasattr(o, 'data') else o.to_wire()
                                         for o in opt_option(m, 3)] == [g.NSID.encode()]
                  else ['NSID options %r' % opt_option(m, 3)])
    q = g.make_query('nothere.example.test', 'A', edns=0, options=[
        dns.edns.GenericOption(dns.edns.OptionType.NSID, b'')])
    g.check_reply(t, 'NSID returned on NXDOMAIN too', q, ask(q), rcode=NXDOMAIN, opt=True,
                  extra=lambda m: [] if len(opt_option(m, 3)) == 1 else ['no NSID'])
    q = g.make_query('www.example.test', 'A', edns=0)
    g.check_reply(t, 'no NSID when not asked', q, ask(q), rcode=NOERROR, opt=True,
                  extra=lambda m: ['NSID present: %r' % m.options] if opt_option(m, 3) else [])
    q = g.make_query('www.example.test', 'A', edns=0, options=[
        dns.edns.GenericOption(65001, b'hello'), dns.edns.GenericOption(11, b'\x00\x10')])
    g.check_reply(t, 'unknown EDNS options ignored, not echoed', q, ask(q), rcode=NOERROR,
                  aa=True, answer=WWW_A, opt=True,
                  extra=lambda m: ['options echoed: %r' % m.options]
                  if opt_option(m, 65001) else [])

    # ECS echoed with scope 0.
    def ecs_echo(fam, src, addr):
        def check(m):
            e = opt_option(m, 8)
            if len(e) != 1:
                return ['%d ECS options in the response' % len(e)]
            w = e[0].to_wire()
            want = struct.pack('!HBB', fam, src, 0) + addr
            return [] if w == want else ['ECS %s, want %s' % (w.hex(), want.hex())]
        return check

    ecs_ok = [
        (1, 24, bytes([192, 0, 2])), (1, 32, bytes([198, 51, 100, 7])), (1, 0, b''),
        (2, 56, bytes.fromhex('20010db8000102')), (2, 0, b''), (1, 22, bytes([192, 0, 4])),
    ]
    for fam, src, addr in ecs_ok:
        opt = dns.edns.GenericOption(8, struct.pack('!HBB', fam, src, 0) + addr)
        q = g.make_query('www.example.test', 'A', edns=0, options=[opt])
        g.check_reply(t, 'ECS family %d /%d echoed with scope 0' % (fam, src), q, ask(q),
                      rcode=NOERROR, aa=True, answer=WWW_A, opt=True,
                      extra=ecs_echo(fam, src, addr))
    q = g.make_query('www.example.test', 'A', edns=0)
    g.check_reply(t, 'no ECS in the response when the query had none', q, ask(q), opt=True,
                  extra=lambda m: ['ECS present'] if opt_option(m, 8) else [])

    ecs_bad = [
        ('nonzero scope', struct.pack('!HBB', 1, 24, 8) + bytes([192, 0, 2])),
        ('family 3', struct.pack('!HBB', 3, 24, 0) + bytes([192, 0, 2])),
        ('family 0', struct.pack('!HBB', 0, 0, 0)),
        ('prefix 33 for IPv4', struct.pack('!HBB', 1, 33, 0) + bytes([192, 0, 2, 1, 0])),
        ('prefix 129 for IPv6', struct.pack('!HBB', 2, 129, 0) + bytes(17)),
        ('address too long', struct.pack('!HBB', 1, 24, 0) + bytes([192, 0, 2, 0])),
        ('address too short', struct.pack('!HBB', 1, 24, 0) + bytes([192, 0])),
        ('nonzero bits beyond the prefix', struct.pack('!HBB', 1, 22, 0) + bytes([192, 0, 3])),
        ('nonzero bits beyond /0', struct.pack('!HBB', 1, 0, 0) + bytes([192])),
        ('option shorter than 4', b'\x00\x01\x18'),
        ('empty option', b''),
    ]
    for desc, data in ecs_bad:
        q = g.make_query('www.example.test', 'A', edns=0,
                         options=[dns.edns.GenericOption(8, data)])
        g.check_reply(t, 'malformed ECS (%s): FORMERR' % desc, q, ask(q), rcode=FORMERR,
                      aa=False, answer=EMPTY, echo_question=False)

    # ---- truncation
    big = E(*['bigtxt 3600 TXT "%s"' % (chr(ord('a') + i) * 180) for i in range(4)])
    huge = E(*['hugetxt 3600 TXT "%s"' % (chr(ord('a') + i) * 200) for i in range(8)])
    q = g.make_query('bigtxt.example.test', 'TXT')
    g.check_reply(t, 'udp4: >512 bytes without EDNS: TC=1, question only', q, ask(q),
                  rcode=NOERROR, tc=True, answer=EMPTY, authority=EMPTY, additional=EMPTY)
    q = g.make_query('bigtxt.example.test', 'TXT', edns=0, payload=1232)
    g.check_reply(t, 'udp4: >512 bytes with EDNS 1232: full answer', q, ask(q),
                  rcode=NOERROR, aa=True, tc=False, answer=big, opt=True)
    q = g.make_query('bigtxt.example.test', 'TXT', edns=0, payload=100)
    g.check_reply(t, 'udp4: EDNS size 100 counts as 512: TC=1 with OPT, question only', q,
                  ask(q), tc=True, answer=EMPTY, authority=EMPTY, additional=EMPTY, opt=True)
    q = g.make_query('bigtxt.example.test', 'TXT')
    g.check_reply(t, 'tcp4: >512 bytes without EDNS: full answer', q, ask(q, 'tcp'),
                  rcode=NOERROR, aa=True, tc=False, answer=big)
    q = g.make_query('hugetxt.example.test', 'TXT', edns=0, payload=4096)
    g.check_reply(t, 'udp4: >1232 bytes with EDNS 4096: TC=1, question and OPT only', q,
                  ask(q), tc=True, answer=EMPTY, authority=EMPTY, additional=EMPTY, opt=True)
    q = g.make_query('hugetxt.example.test', 'TXT', edns=0, payload=4096)
    g.check_reply(t, 'tcp4: >1232 bytes: full answer', q, ask(q, 'tcp'), rcode=NOERROR,
                  aa=True, tc=False, answer=huge, opt=True)
    if srv.v6:
        q = g.make_query('hugetxt.example.test', 'TXT', edns=0, payload=4096)
        g.check_reply(t, 'udp6: >1232 bytes: TC=1', q, ask(q, 'udp', 6), tc=True, answer=EMPTY)
        q = g.make_query('hugetxt.example.test', 'TXT')
        g.check_reply(t, 'tcp6: >1232 bytes: full answer', q, ask(q, 'tcp', 6), tc=False,
                      answer=huge)
    else:
        t.skip('truncation over IPv6', 'IPv6 loopback unavailable')

    # ---- CNAME chains at the limit (README "DNS behaviour": followed up to 8 links).  l2 is 8
    # links from the A record, l1 is 9: exactly 8 CNAMEs either way, the A only after l2's.
    links = ['l%d %d CNAME l%d' % (i, 3600, i + 1) for i in range(1, 10)]
    for edns in (None, 0):
        tag = ' +edns' if edns is not None else ''
        q = g.make_query('l2.example.test', 'A', edns=edns)
        g.check_reply(t, 'CNAME chain of exactly 8 links: 8 CNAMEs then the A%s' % tag, q, ask(q),
                      rcode=NOERROR, aa=True, tc=False,
                      answer=E(*links[1:9], 'l10 3600 A 192.0.2.110'), authority=EMPTY,
                      additional=EMPTY, extra=lambda m: chain_order(m, 2, 10))
        q = g.make_query('l1.example.test', 'A', edns=edns)
        g.check_reply(t, 'CNAME chain of 9 links: the first 8 CNAMEs, no A, NOERROR%s' % tag, q,
                      ask(q), rcode=NOERROR, aa=True, tc=False, answer=E(*links[0:8]),
                      authority=EMPTY, additional=EMPTY, extra=lambda m: chain_order(m, 1, 9))

    # ---- real clients
    rc, out = g.run_tool(['dig', '@127.0.0.1', '-p', str(srv.port), '+norec', '+nsid',
                          '+subnet=192.0.2.0/24', 'www.example.test', 'A'])
    t.ok(rc == 0 and 'status: NOERROR' in out and ' aa' in out.split('flags:')[1].split(';')[0]
         and '192.0.2.10' in out and g.NSID in out and 'CLIENT-SUBNET: 192.0.2.0/24/0' in out,
         'dig +nsid +subnet: NOERROR, aa, NSID and ECS scope 0', out)
    rc, out = g.run_tool(['kdig', '@127.0.0.1', '-p', str(srv.port), '+tcp', 'www.example.test',
                          'AAAA'])
    t.ok(rc == 0 and 'NOERROR' in out and '2001:db8::10' in out, 'kdig +tcp AAAA', out)
    rc, out = g.run_tool(['kdig', '@127.0.0.1', '-p', str(srv.port), '-c', 'CH', '-t', 'TXT',
                          'version.bind'])
    t.ok(rc == 0 and g.SERVER_VERSION in out, 'kdig CH TXT version.bind', out)
    rc, out = g.run_tool(['dig', '@127.0.0.1', '-p', str(srv.port), 'example.test', 'AXFR'])
    t.ok('Transfer failed' in out or 'NOTIMP' in out, 'dig AXFR is refused (NOTIMP)', out)

    t.ok(srv.alive(), 'gslbd still running after the queries')
    srv.check_stop(t)

    # ---- a second instance without identity options: CH REFUSED, no NSID
    srv2 = g.Gslbd(identity=False).start()
    t.on_fail.append(lambda: srv2.dump(t, 'second gslbd'))
    for name in ('version.bind', 'version.server', 'hostname.bind', 'id.server'):
        q = g.make_query(name, 'TXT', qclass='CH')
        g.check_reply(t, 'no identity: CH TXT %s REFUSED' % name, q,
                      g.exchange(q, srv2.addr4), rcode=REFUSED, aa=False, answer=EMPTY)
    q = g.make_query('www.example.test', 'A', edns=0, options=[
        dns.edns.GenericOption(dns.edns.OptionType.NSID, b'')])
    g.check_reply(t, 'no --nsid: no NSID in the response', q, g.exchange(q, srv2.addr4),
                  rcode=NOERROR, opt=True,
                  extra=lambda m: ['NSID present: %r' % m.options] if opt_option(m, 3) else [])
    srv2.check_stop(t, 'second gslbd')


if __name__ == '__main__':
    g.run(main)
