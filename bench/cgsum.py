#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sum callgrind dumps: prints "INSTRUCTIONS ALLOCATIONS" over every file in the directories given.

INSTRUCTIONS is the dump's summary (Ir); ALLOCATIONS counts the calls into the C allocator
(malloc, calloc, realloc and the aligned variants, whatever called them: C++ new ends in malloc),
read from the call records, whose function names are compressed as "(id) name" on first use."""
import os
import re
import sys

ALLOC = {'malloc', 'calloc', 'realloc', 'reallocarray', 'posix_memalign', 'aligned_alloc',
         'memalign', '__libc_malloc', '__libc_calloc', '__libc_realloc', '__libc_memalign'}
NAME = re.compile(r'^c?fn=\((\d+)\)(?: (.*))?$')


def one(path):
    ir = allocs = 0
    names = {}
    callee = None
    with open(path, errors='replace') as f:
        for line in f:
            if line.startswith('summary:') or line.startswith('totals:'):
                if line.startswith('summary:') or not ir:
                    ir = int(line.split()[1])
                continue
            m = NAME.match(line.rstrip('\n'))
            if m:
                if m.group(2) is not None:
                    names[m.group(1)] = m.group(2)
                callee = names.get(m.group(1)) if line.startswith('cfn=') else None
                continue
            if line.startswith('calls=') and callee is not None:
                if callee.split("'")[0] in ALLOC:
                    allocs += int(line[6:].split()[0])
                callee = None
    return ir, allocs


def main():
    ir = allocs = 0
    for d in sys.argv[1:]:
        for name in sorted(os.listdir(d)):
            a, b = one(os.path.join(d, name))
            ir += a
            allocs += b
    print(ir, allocs)


if __name__ == '__main__':
    main()
