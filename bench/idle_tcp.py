#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/abuse.sh's idle TCP part: hold N connections open to a gslbd (from many loopback
addresses, so no per-address limit applies), print its RSS before and after (KiB) and whether a
UDP query and a new TCP connection are still answered:  "BEFORE AFTER yes|no yes|no".

    idle_tcp.py PORT PID N NAME
"""
import re
import resource
import socket
import subprocess
import sys
import time


def rss(pid):
    with open('/proc/%d/status' % pid) as f:
        return int(re.search(r'^VmRSS:\s+(\d+)', f.read(), re.M).group(1))


def answered(port, name, tcp):
    args = ['dig', '+short', '+time=2', '+tries=1', '-p', str(port), '@127.0.0.1', name, 'A']
    if tcp:
        args.insert(1, '+tcp')
    return bool(subprocess.run(args, capture_output=True, text=True).stdout.strip())


def main():
    port, pid, n, name = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = n + 1000 if hard == resource.RLIM_INFINITY else min(n + 1000, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    time.sleep(0.5)
    before = rss(pid)
    conns = []
    for i in range(n):
        s = socket.socket()
        s.bind(('127.%d.%d.%d' % (1 + i // 62500, i // 250 % 250 + 1, i % 250 + 1), 0))
        s.connect(('127.0.0.1', port))
        conns.append(s)
    time.sleep(1.0)
    after = rss(pid)
    print(before, after, 'yes' if answered(port, name, False) else 'no',
          'yes' if answered(port, name, True) else 'no')
    for s in conns:
        s.close()


if __name__ == '__main__':
    main()
