#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Writes the seed corpus of tests/fuzz/fuzz_answer.c: raw DNS queries, well-formed and broken.
# Needs dnspython (Debian: python3-dnspython); run as /usr/bin/python3 tests/fuzz/make_seeds.py.
import os
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rdataclass
import dns.rdatatype

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
os.makedirs(out, exist_ok=True)
seeds = {}


def q(tag, name, rdtype='A', rdclass='IN', **kw):
    m = dns.message.make_query(name, rdtype, rdclass, **kw)
    m.id = 0x1234
    seeds[tag] = m.to_wire()


def ecs(addr, prefix):
    return dns.edns.ECSOption(addr, prefix, 0)


for t in ('A', 'AAAA', 'TXT', 'MX', 'NS', 'SOA', 'DS', 'CNAME', 'ANY', 'SRV', 'CAA'):
    q('www-' + t.lower(), 'www.example.com.', t)
q('case', 'WwW.ExAmPlE.CoM.', 'A')
q('nx', 'nope.example.com.', 'A')
q('nx-deep', 'a.b.c.nope.example.com.', 'AAAA')
q('ent', 'ent.example.com.', 'A')
q('wild', 'foo.wild.example.com.', 'A')
q('wild-multi', 'a.b.wild.example.com.', 'A')
q('wild-blocked', 'exist.wild.example.com.', 'A')
q('wild-cname', 'x.wc.example.com.', 'A')
q('apex-wild', 'zz.example.com.', 'MX')
q('chain', 'c1.example.com.', 'A')
q('loop', 'loop1.example.com.', 'A')
q('ext', 'ext.example.com.', 'A')
q('short', 'short.example.com.', 'A')
q('root-cname', 'root.example.com.', 'A')
q('toapex', 'toapex.example.com.', 'SOA')
q('tosub', 'tosub.example.com.', 'A')
q('topool', 'topool.example.com.', 'AAAA')
q('pool', 'pool.example.com.', 'A', use_edns=0)
q('pool-any', 'pool.example.com.', 'ANY')
q('pool-ancestor', 'b.pools.example.com.', 'A')
q('referral', 'host.sub.example.com.', 'A')
q('ds-at-cut', 'sub.example.com.', 'DS')
q('deleg-big', 'x.deleg.example.com.', 'A')
q('big-udp', 'big.example.com.', 'A')
q('big-edns', 'big.example.com.', 'AAAA', use_edns=0, payload=4096)
q('mid-edns600', 'mid.example.com.', 'A', use_edns=0, payload=600)
q('huge', 'huge.example.com.', 'TXT', use_edns=0, payload=1232)
q('refused', 'www.example.org.', 'A')
q('root', '.', 'NS')
q('child', 'www.child.example.com.', 'A')
q('other-nx', 'nope.other.test.', 'A')
q('edns-do', 'www.example.com.', 'A', use_edns=0, want_dnssec=True)
q('edns-v1', 'www.example.com.', 'A', use_edns=1)
q('nsid', 'www.example.com.', 'A', use_edns=0, options=[dns.edns.GenericOption(3, b'')])
q('ecs4', 'www.example.com.', 'A', use_edns=0, options=[ecs('192.0.2.0', 24)])
q('ecs6', 'www.example.com.', 'AAAA', use_edns=0, options=[ecs('2001:db8:1234::', 48)])
q('ecs-nsid-cookie', 'pool.example.com.', 'A', use_edns=0, options=[
    ecs('198.51.100.0', 24), dns.edns.GenericOption(3, b''),
    dns.edns.GenericOption(10, b'\x01\x02\x03\x04\x05\x06\x07\x08')])
q('ch-version', 'version.bind.', 'TXT', 'CH')
q('ch-id', 'id.server.', 'TXT', 'CH')
q('ch-hostname', 'hostname.bind.', 'TXT', 'CH')
q('ch-other', 'authors.bind.', 'TXT', 'CH')
q('class-any', 'www.example.com.', 'A', 'ANY')
q('class-hs', 'www.example.com.', 'A', 'HS')
q('axfr', 'example.com.', 'AXFR')
q('ixfr', 'example.com.', 'IXFR')
q('type-200', 'www.example.com.', 200)
q('dname', 'WwW.Dn.example.com.', 'A')
q('dname-chain', 'www.dn2.example.com.', 'A', use_edns=0)
q('dname-occluded', 'occ.dn.example.com.', 'A')
q('dname-loop', 'x.dnself.example.com.', 'A')
q('dname-out', 'a.b.xdn.example.com.', 'AAAA')
q('dname-back', 'cn.dn.example.com.', 'A')
q('dname-yxdomain', 'e' * 63 + '.' + 'e' * 40 + '.long.example.com.', 'A')
q('dname-deleg', 'host.tosubdn.example.com.', 'A')
q('dname-type', 'x.dn.example.com.', 'DNAME')
q('dname-apex', 'www.kid.example.com.', 'A')
q('cname-loop3', 'lb.example.com.', 'TXT')
q('cname-loop-wild', 'b.wl.example.com.', 'A')
q('ds-parent', 'kid.example.com.', 'DS')
q('ds-nested', 'child.example.com.', 'DS')

# Hand-made and broken messages.
base = seeds['www-a']
seeds['notify'] = base[:2] + bytes([0x20, 0x00]) + base[4:]
seeds['update'] = base[:2] + bytes([0x28, 0x00]) + base[4:]
seeds['qr-set'] = base[:2] + bytes([0x81, 0x00]) + base[4:]
seeds['short-header'] = base[:11]
seeds['qdcount0'] = base[:4] + b'\x00\x00' + base[6:12]
seeds['qdcount2'] = base[:4] + b'\x00\x02' + base[6:] + base[12:]
seeds['pointer-qname'] = base[:12] + b'\x03www\xc0\x0c' + b'\x00\x01\x00\x01'
seeds['truncated-qname'] = base[:20]
seeds['no-qclass'] = base[:-2]
seeds['trailing'] = base + b'\xde\xad\xbe\xef' * 4
opt = b'\x00' + struct.pack('!HHIH', 41, 1232, 0, 0)
two_opt = bytearray(base + opt + opt)
two_opt[10:12] = struct.pack('!H', 2)
seeds['two-opt'] = bytes(two_opt)
bad_opt = bytearray(base + b'\x00' + struct.pack('!HHIH', 41, 1232, 0, 6) + b'\x00\x08\x00\x09\x00\x01')
bad_opt[10:12] = struct.pack('!H', 1)
seeds['ecs-bad-length'] = bytes(bad_opt)
bad_scope = bytearray(base + b'\x00' + struct.pack('!HHIH', 41, 1232, 0, 11) +
                      b'\x00\x08\x00\x07\x00\x01\x18\x08\xc0\x00\x02')
bad_scope[10:12] = struct.pack('!H', 1)
seeds['ecs-scope'] = bytes(bad_scope)



def tsig(key=b'\x03key\x07example\x00', mac=32, other=b''):
    """A TSIG RR (RFC 8945 4.2) with a fixed time, so the seeds do not change."""
    rd = (b'\x0bhmac-sha256\x00' + b'\x00\x00\x6b\x16\x34\xf8' +
          struct.pack('!HH', 300, mac) + b'\xab' * mac + b'\x12\x34' +
          struct.pack('!HH', 0, len(other)) + other)
    return key + struct.pack('!HHIH', 250, 255, 0, len(rd)) + rd


def with_ar(wire, extra, n=1):
    w = bytearray(wire + extra)
    w[10:12] = struct.pack('!H', struct.unpack('!H', w[10:12])[0] + n)
    return bytes(w)


seeds['tsig'] = with_ar(base, tsig())
seeds['tsig-edns'] = with_ar(seeds['edns-do'], tsig())
seeds['tsig-nomac'] = with_ar(base, tsig(mac=0, other=b'\x00\x00\x00\x00\x00\x01'))
seeds['tsig-compressed-key'] = with_ar(base, tsig(key=b'\xc0\x10'))
seeds['tsig-notify'] = with_ar(seeds['notify'], tsig())
seeds['tsig-not-last'] = with_ar(base, tsig() + opt, 2)
seeds['tsig-short'] = with_ar(base, tsig()[:-5])

for tag, wire in sorted(seeds.items()):
    with open(os.path.join(out, 'seed-' + tag), 'wb') as f:
        f.write(wire)
print(f'{len(seeds)} seeds written to {out}')
