#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Malformed packets over raw UDP and TCP: dropped or answered per README "DNS behaviour"."""

import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

FORMERR, NOERROR = dns.rcode.FORMERR, dns.rcode.NOERROR


def name_wire(name):
    out = b''
    for label in name.split('.'):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b'\x00'


def header(qid=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack('!HHHHHH', qid, flags, qd, an, ns, ar)


def question(name='www.example.test', qtype=1, qclass=1):
    return name_wire(name) + struct.pack('!HH', qtype, qclass)


def opt_rr(options=b'', payload=1232, rdlen=None):
    return b'\x00' + struct.pack('!HHIH', 41, payload, 0,
                                 len(options) if rdlen is None else rdlen) + options


def hdr_of(wire):
    qid, flags, qd, an, ns, ar = struct.unpack('!HHHHHH', wire[:12])
    return qid, flags, qd, an, ns, ar


def main(t):
    srv = g.Gslbd().start()
    t.on_fail.append(lambda: srv.dump(t))
    addr = srv.addr4

    def no_reply(desc, wire):
        data = g.udp_raw(wire, addr, timeout=0.3)
        t.ok(data is None, desc, None if data is None else 'got a reply: %s' % data.hex())

    def formerr(desc, wire, proto='udp', echo=None):
        data = g.udp_raw(wire, addr, 1.0) if proto == 'udp' else g.tcp_raw(wire, addr, 2.0)
        if data is None or len(data) < 12:
            return t.ok(False, desc, 'no reply' if data is None else 'short reply %s' % data.hex())
        qid, flags, qd, an, ns, ar = hdr_of(data)
        problems = []
        if qid != struct.unpack('!H', wire[:2])[0]:
            problems.append('ID %04x' % qid)
        if not flags & 0x8000:
            problems.append('QR=0')
        if flags & 0x0400:
            problems.append('AA=1')
        if flags & 0x0080:
            problems.append('RA=1')
        if (flags & 0x0100) != (struct.unpack('!H', wire[2:4])[0] & 0x0100):
            problems.append('RD not copied')
        if flags & 0x000f != FORMERR:
            problems.append('rcode %d, want FORMERR' % (flags & 0xf))
        if an or ns:
            problems.append('records in answer/authority: an=%d ns=%d' % (an, ns))
        if echo is not None and data[12:12 + len(echo)] != echo:
            problems.append('question not echoed')
        return t.ok(not problems, desc, '\n'.join(problems + ['reply %s' % data.hex()]))

    def answered(desc, wire, rcode=NOERROR, ancount=None):
        data = g.udp_raw(wire, addr, 1.0)
        if data is None:
            return t.ok(False, desc, 'no reply')
        msg, err = g.parse(data)
        problems = []
        if msg is None:
            problems.append('unparsable reply: %s' % err)
        else:
            if msg.rcode() != rcode:
                problems.append('rcode %s' % dns.rcode.to_text(msg.rcode()))
            if ancount is not None and sum(len(r) for r in msg.answer) != ancount:
                problems.append('answer %s' % msg.answer)
        return t.ok(not problems, desc, '\n'.join(problems + ['reply %s' % data.hex()]))

    good = header() + question()

    # ---- dropped
    for n in (0, 1, 11):
        no_reply('%d-byte packet: no response' % n, good[:n])
    no_reply('QR=1: no response', header(flags=0x8100) + question())
    no_reply('QR=1 with garbage: no response', header(flags=0x8000, qd=7) + b'\xff' * 30)

    # ---- FORMERR
    formerr('QDCOUNT 0: FORMERR', header(qd=0))
    formerr('QDCOUNT 2: FORMERR', header(qd=2) + question() + question('mail.example.test'))
    formerr('QDCOUNT 2 with one question present: FORMERR', header(qd=2) + question())
    formerr('compression pointer in the question name: FORMERR',
            header() + b'\x03www\xc0\x0c' + struct.pack('!HH', 1, 1))
    formerr('question name is only a pointer: FORMERR',
            header() + b'\xc0\x0c' + struct.pack('!HH', 1, 1))
    formerr('truncated question (no type/class): FORMERR', header() + name_wire('www.example.test'))
    formerr('truncated question (half the type): FORMERR',
            header() + name_wire('www.example.test') + b'\x00')
    formerr('truncated question name: FORMERR', header() + b'\x03www\x07exam')
    formerr('label length 64: FORMERR', header() + b'\x40' + b'a' * 64 + b'\x00' +
            struct.pack('!HH', 1, 1))
    formerr('extended label type 0x80: FORMERR', header() + b'\x80' + b'a' * 10 + b'\x00' +
            struct.pack('!HH', 1, 1))
    long_name = (b'\x3f' + b'a' * 63) * 4 + b'\x00'
    formerr('name of 257 bytes: FORMERR', header() + long_name + struct.pack('!HH', 1, 1))
    formerr('two OPT records: FORMERR', header(ar=2) + question() + opt_rr() + opt_rr())
    formerr('OPT option length beyond RDLENGTH: FORMERR',
            header(ar=1) + question() + opt_rr(struct.pack('!HH', 10, 20) + b'x' * 4))
    formerr('OPT RDLENGTH beyond the packet: FORMERR',
            header(ar=1) + question() + opt_rr(b'', rdlen=40))
    formerr('OPT option header cut short: FORMERR',
            header(ar=1) + question() + opt_rr(b'\x00\x0a\x00'))
    formerr('ARCOUNT 1 without a record: FORMERR', header(ar=1) + question())
    formerr('ANCOUNT 1 without a record: FORMERR', header(an=1) + question())
    formerr('FORMERR keeps RD=0', header(flags=0, qd=0))

    # ---- accepted
    answered('trailing garbage after the question: normal answer', good + b'\xde\xad\xbe\xef' * 5,
             ancount=2)
    answered('trailing garbage after OPT: normal answer',
             header(ar=1) + question() + opt_rr() + b'garbage', ancount=2)
    answered('exactly 255-byte name outside the zones: REFUSED',
             header() + (b'\x3f' + b'a' * 63) * 3 + b'\x3d' + b'b' * 61 + b'\x00' +
             struct.pack('!HH', 1, 1), rcode=dns.rcode.REFUSED)

    # ---- fuzz: random and mutated packets; every reply must be a response to one of them
    rng = random.Random(1)
    seeds = [
        good, header(ar=1) + question() + opt_rr(),
        header(ar=1) + question('foo.wild.example.test', 16) + opt_rr(
            struct.pack('!HH', 8, 7) + struct.pack('!HBB', 1, 24, 0) + b'\xc0\x00\x02'),
        header(ar=1) + question('c1.example.test', 255) + opt_rr(struct.pack('!HH', 3, 0)),
        header() + question('version.bind', 16, 3),
        header() + question('host.sub.example.test', 28),
        header(flags=0x2800) + question('example.test', 6),
    ]
    sent = 0
    bad_replies = []
    replies = 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    t0 = time.monotonic()
    # Every ID sent so far: a reply to a batch may arrive while the next one is drained.
    ids = set()
    for batch in range(100):
        for _ in range(50):
            kind = rng.random()
            if kind < 0.2:
                pkt = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
            else:
                pkt = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(1, 6)):
                    op = rng.random()
                    if op < 0.5 and pkt:
                        pkt[rng.randrange(len(pkt))] = rng.getrandbits(8)
                    elif op < 0.65:
                        pkt = pkt[:rng.randint(0, len(pkt))]
                    elif op < 0.8:
                        pos = rng.randint(0, len(pkt))
                        pkt[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
                    elif len(pkt) >= 12:
                        # Counts are where parsers go wrong.
                        pos = rng.choice((4, 6, 8, 10))
                        pkt[pos:pos + 2] = struct.pack('!H', rng.choice((0, 1, 2, 255, 65535)))
                pkt = bytes(pkt)
            if len(pkt) >= 2:
                ids.add(pkt[:2])
            sock.sendto(pkt, addr)
            sent += 1
        # Drain what came back for this batch.
        sock.settimeout(0.05)
        while True:
            try:
                data = sock.recv(65535)
            except socket.timeout:
                break
            replies += 1
            if len(data) < 12 or not data[2] & 0x80 or (data[:2] not in ids):
                bad_replies.append(data[:40].hex())
    sock.close()
    t.diag('fuzz: %d packets sent, %d replies, %.1f s' % (sent, replies, time.monotonic() - t0))
    t.ok(srv.alive(), 'alive after %d random/mutated packets' % sent)
    t.ok(not bad_replies, 'every fuzz reply has QR=1 and a sent ID',
         '%d bad replies, first: %s' % (len(bad_replies), bad_replies[:3]))
    answered('normal query answered after the fuzzing', good, ancount=2)

    # ---- TCP
    def tcp_conn():
        return socket.create_connection(addr, timeout=3)

    s = tcp_conn()
    s.sendall(struct.pack('!H', 20) + bytes(rng.getrandbits(8) for _ in range(20)))
    try:
        data = g.tcp_read_msg(s)
    except OSError:
        data = None
    s.close()
    t.ok(data is None or (len(data) >= 12 and data[2] & 0x80), 'tcp: garbage frame is '
         'answered or the connection closed', None if data is None else data.hex())
    formerr('tcp: QDCOUNT 0: FORMERR', header(qd=0), proto='tcp')
    formerr('tcp: compression pointer in the question: FORMERR',
            header() + b'\x03www\xc0\x0c' + struct.pack('!HH', 1, 1), proto='tcp')

    s = tcp_conn()
    s.sendall(b'\x00\x00')
    try:
        s.settimeout(3)
        rest = s.recv(100)
        closed = rest == b''
    except socket.timeout:
        closed = False
    except OSError:
        closed = True
    s.close()
    t.ok(closed, 'tcp: a frame of length 0 closes the connection')

    s = tcp_conn()
    frame = struct.pack('!H', len(good)) + good
    s.sendall(frame[:7])
    time.sleep(0.2)
    s.sendall(frame[7:])
    data = g.tcp_read_msg(s)
    s.close()
    msg, err = g.parse(data) if data else (None, 'no reply')
    t.ok(msg is not None and msg.rcode() == NOERROR and len(msg.answer) == 1,
         'tcp: a frame split over two sends is answered', err or (msg and msg.to_text()))

    s = tcp_conn()
    s.sendall(struct.pack('!H', 1) + b'\x01')
    s.sendall(struct.pack('!H', 500) + good)
    s.close()
    s = tcp_conn()
    s.sendall(struct.pack('!H', 500) + good)
    s.shutdown(socket.SHUT_WR)
    try:
        s.settimeout(3)
        s.recv(100)
    except OSError:
        pass
    s.close()
    time.sleep(0.1)
    t.ok(srv.alive(), 'tcp: a frame longer than its data followed by close does not crash')
    rep = g.exchange(g.make_query('www.example.test', 'A'), addr, 'tcp')
    t.ok(rep.msg is not None and rep.msg.rcode() == NOERROR, 'tcp: normal query after that',
         rep.error)

    s = tcp_conn()
    s.sendall(struct.pack('!H', len(good)) + bytes([good[0], good[1], good[2] | 0x80]) + good[3:])
    try:
        s.settimeout(1)
        data = g.tcp_read_msg(s)
    except OSError:
        data = None
    s.close()
    t.ok(data is None, 'tcp: QR=1 gets no response', data and data.hex())

    t.ok(srv.alive(), 'gslbd still running')
    srv.check_stop(t)


if __name__ == '__main__':
    g.run(main)
