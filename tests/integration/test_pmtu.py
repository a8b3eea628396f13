#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Forged ICMP "fragmentation needed" must not make gslbd fragment its UDP answers (RFC 9715).

Off-path cache poisoning by spoofed fragments starts by sending the server an ICMP message that
claims a small path MTU towards the victim resolver; a socket that believes it fragments every
larger answer, and the attacker replaces the second fragment.  gslbd's UDP sockets ignore such
messages (IP_PMTUDISC_OMIT).

The test re-executes itself in a network namespace of its own (lo only) and, as a control, shows
that the kernel there does act on a forged message: a plain UDP socket's 1,200-byte datagram goes
out in fragments, and `ip route get` shows the learnt MTU.  Then gslbd answers a ~1,100-byte TXT
query to the same client address in one unfragmented datagram.  Packets are seen with a packet
socket on lo.
"""

import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.message  # noqa: E402
import dns.rdatatype  # noqa: E402

import gslbtest as g  # noqa: E402

INNER = 'GSLB_PMTU_NETNS'
SERVER = '127.0.0.1'
CLIENT = '127.0.0.2'
FORGED_MTU = 600
ETH_P_IP = 0x0800


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip4_header(src, dst, proto, payload_len):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + payload_len, 0x1234, 0x4000, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:]


def forge_frag_needed(sport, dport, mtu):
    """ICMP type 3 code 4 from CLIENT to SERVER about a SERVER:sport -> CLIENT:dport datagram."""
    inner = ip4_header(SERVER, CLIENT, socket.IPPROTO_UDP, 8 + 1200)
    inner += struct.pack('!HHHH', sport, dport, 8 + 1200, 0)
    icmp = struct.pack('!BBHHH', 3, 4, 0, 0, mtu) + inner
    icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        raw.bind((CLIENT, 0))
        raw.sendto(icmp, (SERVER, 0))
    finally:
        raw.close()
    time.sleep(0.1)


class Capture:
    """IPv4 UDP packets from SERVER to CLIENT on lo: (length, flags+offset, source port|None)."""

    def __init__(self):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        self.s.bind(('lo', 0))
        self.s.settimeout(0.3)

    def drain(self):
        self.collect()

    def collect(self):
        got = []
        while True:
            try:
                frame, addr = self.s.recvfrom(70000)
            except socket.timeout:
                return got
            if addr[2] == socket.PACKET_OUTGOING:
                continue   # lo shows each packet twice: as sent and as received
            ip = frame[14:]
            if len(ip) < 20 or ip[9] != socket.IPPROTO_UDP:
                continue
            if ip[12:16] != socket.inet_aton(SERVER) or ip[16:20] != socket.inet_aton(CLIENT):
                continue
            frag = struct.unpack('!H', ip[6:8])[0]
            sport = struct.unpack('!H', ip[20:22])[0] if frag & 0x1fff == 0 else None
            got.append((len(ip), frag, sport))

    def close(self):
        self.s.close()


def fragmented(pkts):
    return any(f & 0x3fff for _, f, _ in pkts)   # MF set or a non-zero offset


def big_zone(tmp):
    # Nine 120-byte strings: the TXT answer is ~1,150 bytes, under the 1,232-byte EDNS limit
    # and over the forged MTU.
    strings = ' '.join('"%s"' % (chr(ord('a') + i) * 120) for i in range(9))
    path = os.path.join(tmp, 'big.test.zone')
    with open(path, 'w') as f:
        f.write('$TTL 300\n'
                '@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n'
                '@ IN NS ns1\n'
                'ns1 IN A 127.0.0.1\n'
                'txt IN TXT %s\n' % strings)
    return path


def main(t):
    p = subprocess.run(['ip', 'link', 'set', 'lo', 'up'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if p.returncode != 0:
        g.skip_all('cannot bring lo up in the namespace: %s' % p.stdout.decode().strip())
    try:
        cap = Capture()
    except OSError as e:
        g.skip_all('no packet socket here: %s' % e)

    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((CLIENT, 0))
    client.settimeout(2)
    cport = client.getsockname()[1]

    # Control: a socket with the kernel's defaults believes the forged message.
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    plain.bind((SERVER, 0))
    forge_frag_needed(plain.getsockname()[1], cport, FORGED_MTU)
    route = subprocess.run(['ip', 'route', 'get', CLIENT, 'from', SERVER],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    t.ok('mtu %d' % FORGED_MTU in route, 'control: the kernel learnt MTU %d for %s from the '
         'forged ICMP message' % (FORGED_MTU, CLIENT), route)
    cap.drain()
    plain.sendto(b'x' * 1200, (CLIENT, cport))
    pkts = cap.collect()
    t.ok(fragmented(pkts), 'control: a default UDP socket now sends 1,200 bytes in fragments',
         repr(pkts))
    client.recv(2000)
    plain.close()

    tmp = tempfile.mkdtemp(prefix='gslb-pmtu-')
    srv = g.Gslbd(zones=(big_zone(tmp),), identity=False, v6=False, wait_zone='big.test.').start()
    gport = srv.port
    forge_frag_needed(gport, cport, FORGED_MTU)
    route = subprocess.run(['ip', 'route', 'get', CLIENT, 'from', SERVER],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    t.ok('mtu %d' % FORGED_MTU in route, 'the route to the client still carries MTU %d' %
         FORGED_MTU, route)

    for i in range(3):
        q = dns.message.make_query('txt.big.test.', 'TXT', use_edns=0, payload=1232)
        cap.drain()
        client.sendto(q.to_wire(), (SERVER, gport))
        try:
            wire = client.recv(4096)
        except socket.timeout:
            wire = b''
        pkts = cap.collect()
        t.ok(len(wire) > FORGED_MTU, 'answer %d arrives whole (%d bytes, over the forged MTU)' %
             (i + 1, len(wire)))
        r = dns.message.from_wire(wire) if wire else None
        t.ok(r is not None and not (r.flags & dns.flags.TC) and r.answer and
             r.answer[0].rdtype == dns.rdatatype.TXT, 'answer %d: the TXT record, not truncated'
             % (i + 1))
        t.ok(pkts and not fragmented(pkts), 'answer %d: one unfragmented datagram on lo' % (i + 1),
             repr(pkts))
        t.ok(pkts and all(s in (gport, None) for _, _, s in pkts) and
             all(f & 0x4000 == 0 for _, f, _ in pkts),
             'answer %d: sent from gslbd\'s port with DF clear (IP_PMTUDISC_OMIT)' % (i + 1),
             repr(pkts))

    cap.close()
    client.close()
    srv.check_stop(t)


if __name__ == '__main__':
    g.enter_netns(__file__, INNER, [(g.GSLBD, 'no gslbd at %s' % g.GSLBD)])
    import dns.flags  # noqa: E402,F401
    g.run(main)
