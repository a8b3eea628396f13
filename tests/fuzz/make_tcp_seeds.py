#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Seeds for fuzz_tcp.c in tests/fuzz/corpus-tcp: each file is one byte seeding the sizes of the
reads, one byte choosing which writes wait, then the bytes a client sends over DNS over TCP
(two-byte lengths, then messages: real queries, cut ones, a zero length, the largest frame).

    /usr/bin/python3 tests/fuzz/make_tcp_seeds.py [DIR]
"""
import os
import struct
import sys

import dns.message


def query(name, rdtype='A', qid=1):
    q = dns.message.make_query(name, rdtype)
    q.id = qid
    return q.to_wire()


def frame(msg):
    return struct.pack('!H', len(msg)) + msg


Q = query('www.example.com.')
STREAMS = {
    'one': frame(Q),
    'pipelined': b''.join(frame(query('n%d.example.com.' % i, qid=i)) for i in range(20)),
    'short-messages': frame(b'\x00' * 3) + frame(Q) + frame(b'\x01'),
    'zero-length-ends': frame(Q) + b'\x00\x00' + frame(Q),
    'cut-length': frame(Q) + b'\x00',
    'cut-message': frame(Q) + frame(Q)[:10],
    'largest': frame(Q + b'\x00' * (65535 - len(Q))) + frame(Q),
    'several-large': b''.join(frame(bytes([i]) * 40000) for i in range(2)),
    # Answers of 65535 bytes to queries with an ID of 0x8000 or more (fuzz_tcp.c): four fill
    # the output buffer.
    'large-answers': b''.join(frame(query('a.example.', qid=0x8000 + i)) for i in range(8)),
    'empty': b'',
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), 'corpus-tcp')
    os.makedirs(out, exist_ok=True)
    for i, (name, data) in enumerate(STREAMS.items()):
        with open(os.path.join(out, 'seed-%s' % name), 'wb') as f:
            f.write(bytes([5 * i + 1, 3 * i]) + data)


if __name__ == '__main__':
    main()
