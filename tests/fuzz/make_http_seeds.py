#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Seeds for fuzz_http.c in tests/fuzz/corpus-http: each file is one byte choosing the check (bits
0-1: the match string none / "OK" / "healthy\\r\\n" / "x"; bits 2-3: expect default / 200 /
500-599,204), one byte seeding the piece sizes (0: all at once), then a backend's response.

    /usr/bin/python3 tests/fuzz/make_http_seeds.py [DIR]
"""
import os
import sys


def chunked(*parts, ext=b'', trailer=b''):
    out = b''
    for p in parts:
        out += b'%x%s\r\n%s\r\n' % (len(p), ext, p)
    return out + b'0\r\n' + trailer + b'\r\n'


H = b'HTTP/1.1 200 OK\r\n'
RESPONSES = {
    'ok-length': H + b'Content-Length: 2\r\n\r\nOK',
    'ok-length-extra': H + b'Content-Length: 2\r\n\r\nOKtrailing garbage',
    'ok-close': b'HTTP/1.0 200 OK\r\n\r\nhealthy\r\nmore',
    'ok-no-body': H + b'Content-Length: 0\r\n\r\n',
    'chunked': H + b'Transfer-Encoding: chunked\r\n\r\n' + chunked(b'heal', b'thy\r', b'\nOK x'),
    'chunked-ext-trailer': H + b'Transfer-Encoding: gzip, chunked\r\n\r\n' +
    chunked(b'healthy\r\n', ext=b';a=b', trailer=b'X-T: 1\r\n'),
    'chunked-over-length': H + b'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n' +
    chunked(b'OK', b'x'),
    'chunked-bare-lf': H + b'Transfer-Encoding: chunked\r\n\r\n2\nOK\n0\n\n',
    'chunked-not-last': H + b'Transfer-Encoding: chunked, gzip\r\n\r\n2\r\nOK\r\n0\r\n\r\n',
    'chunked-bad-size': H + b'Transfer-Encoding: chunked\r\n\r\nzz\r\nOK\r\n0\r\n\r\n',
    'chunked-huge-size': H + b'Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nOK',
    'chunked-no-crlf': H + b'Transfer-Encoding: chunked\r\n\r\n2\r\nOKX0\r\n\r\n',
    'chunked-cut': H + b'Transfer-Encoding: chunked\r\n\r\n10\r\nOK',
    'chunked-long-line': H + b'Transfer-Encoding: chunked\r\n\r\n2;' + b'e' * 5000 + b'\r\nOK',
    'status-503': b'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nOK',
    'status-204': b'HTTP/1.1 204 No Content\r\n\r\n',
    'status-301': b'HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n',
    'status-bad': b'HTTP/1.1 2000 OK\r\n\r\nOK',
    'status-http2': b'HTTP/2 200\r\n\r\nOK',
    'status-no-reason': b'HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx',
    'status-lf-only': b'HTTP/1.1 200 OK\nContent-Length: 2\n\nOK',
    'not-http': b'SSH-2.0-OpenSSH_9.2\r\n',
    'headers-huge': H + b'X-Big: ' + b'a' * 17000 + b'\r\n\r\nOK',
    'headers-cut': H + b'Content-Length: 2\r\n',
    'length-negative': H + b'Content-Length: -1\r\n\r\nOK',
    'length-huge': H + b'Content-Length: 99999999999999999999999\r\n\r\nO',
    'length-space': H + b'content-length:   2  \r\n\r\nOK',
    # RFC 9110 8.6, RFC 9112 6.3: anything but one length of 1*DIGIT is malformed framing.
    'length-minus-five': H + b'Content-Length: -5\r\n\r\nOK',
    'length-ten-pow-23': H + b'Content-Length: 100000000000000000000000\r\n\r\nOK',
    'length-plus': H + b'Content-Length: +5\r\n\r\nOK',
    'length-junk': H + b'Content-Length: 5x\r\n\r\nOK',
    'length-empty': H + b'Content-Length:\r\n\r\nOK',
    'length-conflict': H + b'Content-Length: 2\r\nContent-Length: 3\r\n\r\nOK',
    'length-same-twice': H + b'Content-Length: 2\r\nContent-Length: 2\r\n\r\nOK',
    'length-list': H + b'Content-Length: 2, 2,3\r\n\r\nOK',
    'length-bad-chunked': H + b'Transfer-Encoding: chunked\r\nContent-Length: -5\r\n\r\n' +
    chunked(b'OK'),
    'empty': b'',
}


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus-http')
    os.makedirs(d, exist_ok=True)
    n = 0
    for name, resp in sorted(RESPONSES.items()):
        for conf, split in ((1, 0), (6, 7), (2 | 8, 200), (3, 1)):
            with open(os.path.join(d, 'seed-%s-%d-%d' % (name, conf, split)), 'wb') as f:
                f.write(bytes([conf, split]) + resp)
            n += 1
    print('%d seeds in %s' % (n, d))


if __name__ == '__main__':
    main()
