#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Mutation testing: put one small bug at a time into the source tree and see whether the tests
catch it.

    tests/mutate/mutate.py [--set issue13|new|all] [--only ID,...] [--tests 'T1 T2']
                           [--jobs 2] [--timeout S] [--out FILE] [--list] [--dry-run]

For each mutant of tests/mutate/mutants.py: check the file is unmodified, apply the mutant,
`make`, `make check` (or `make check TESTS='...'` with --tests), record whether any test failed
(caught), which ones, and restore the file with `git checkout -- FILE`, whatever happened (an
exception, Ctrl-C, SIGTERM).  Run it only in a git worktree of your own with a configured,
built tree (./configure && make), nothing uncommitted under src/ or include/: it refuses
otherwise.  The results are printed as a Markdown table and, with --out, written there (one
tab-separated line per mutant as it finishes, so a run cut short keeps what it found).
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mutants import MUTANTS  # noqa: E402

TOP = os.path.abspath(os.path.join(HERE, '..', '..'))
GUARDED = ('src', 'include')

_applied = []   # files currently mutated, restored by restore()


def git(*args, check=True):
    p = subprocess.run(['git', '-C', TOP] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit('mutate: git %s: %s' % (' '.join(args), p.stderr.strip()))
    return p.stdout


def restore():
    while _applied:
        path = _applied.pop()
        git('checkout', '--', path)


def on_signal(signum, frame):
    restore()
    raise SystemExit('mutate: stopped by signal %d, source restored' % signum)


def refuse_unless_safe():
    """A linked worktree (not the main checkout), with nothing uncommitted in the sources."""
    gd = os.path.realpath(os.path.join(TOP, git('rev-parse', '--git-dir').strip()))
    cd = os.path.realpath(os.path.join(TOP, git('rev-parse', '--git-common-dir').strip()))
    if gd == cd and not os.environ.get('MUTATE_ANY_CHECKOUT'):
        raise SystemExit('mutate: %s is the main checkout, not a worktree; run this in a '
                         '`git worktree` of your own (or set MUTATE_ANY_CHECKOUT=1 in a '
                         'throw-away clone)' % TOP)
    dirty = git('status', '--porcelain', '--', *GUARDED).strip()
    if dirty:
        raise SystemExit('mutate: uncommitted changes under %s:\n%s'
                         % (' and '.join(GUARDED), dirty))
    if not os.path.exists(os.path.join(TOP, 'Makefile')):
        raise SystemExit('mutate: no Makefile in %s: ./autogen.sh && ./configure first' % TOP)


def apply(m):
    """Write the mutant into its file; returns the original text."""
    path = os.path.join(TOP, m['file'])
    with open(path) as f:
        text = f.read()
    n = text.count(m['old'])
    want = m.get('count', 1)
    if 'nth' in m:
        if n < m['nth']:
            raise SystemExit('mutate: %s: %r occurs %d times in %s, nth=%d'
                             % (m['id'], m['old'], n, m['file'], m['nth']))
        at = -1
        for _ in range(m['nth']):
            at = text.index(m['old'], at + 1)
        new = text[:at] + m['new'] + text[at + len(m['old']):]
    else:
        if n != want:
            raise SystemExit('mutate: %s: %r occurs %d times in %s, not %d'
                             % (m['id'], m['old'], n, m['file'], want))
        new = text.replace(m['old'], m['new'])
    _applied.append(m['file'])
    with open(path, 'w') as f:
        f.write(new)
    return text


def run(cmd, log, timeout):
    """Run cmd in its own process group; on timeout kill that group.  Returns exit status or
    None on timeout."""
    with open(log, 'w') as f:
        p = subprocess.Popen(cmd, cwd=TOP, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return None


def failed_tests():
    """The tests whose .trs says FAIL or ERROR (automake's parallel harness)."""
    out = []
    for d, _, files in os.walk(os.path.join(TOP, 'tests')):
        for fn in files:
            if not fn.endswith('.trs'):
                continue
            with open(os.path.join(d, fn), errors='replace') as f:
                res = re.findall(r'^:global-test-result: (\S+)', f.read(), re.M)
            if res and res[0] in ('FAIL', 'ERROR'):
                out.append(os.path.relpath(os.path.join(d, fn[:-4]), TOP))
    return sorted(out)


def failed_checks(tests, path):
    """Save the failing TAP lines of each failed test (its .log) to path."""
    with open(path, 'w') as f:
        for t in tests:
            try:
                with open(os.path.join(TOP, t + '.log'), errors='replace') as lf:
                    lines = [ln for ln in lf if ln.startswith('not ok')]
            except OSError:
                lines = []
            f.write('%s\n%s' % (t, ''.join('  ' + ln for ln in lines[:20])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--set', default='new', choices=('issue13', 'new', 'all'))
    ap.add_argument('--only', default='', help='comma-separated mutant ids')
    ap.add_argument('--tests', default='', help="TESTS for make check (default: all)")
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=900, help='seconds per make check')
    ap.add_argument('--out', default='', help='append tab-separated results here')
    ap.add_argument('--list', action='store_true', help='list the mutants and exit')
    ap.add_argument('--dry-run', action='store_true',
                    help='apply and restore each mutant without building (checks the table)')
    a = ap.parse_args()

    chosen = [m for m in MUTANTS if a.set == 'all' or m['set'] == a.set]
    if a.only:
        ids = a.only.split(',')
        chosen = [m for m in MUTANTS if m['id'] in ids]
        missing = set(ids) - {m['id'] for m in chosen}
        if missing:
            raise SystemExit('mutate: no mutant %s' % ', '.join(sorted(missing)))
    if a.list:
        for m in chosen:
            print('%-28s %-8s %-26s %s' % (m['id'], m['set'], m['file'], m['what']))
        return 0

    refuse_unless_safe()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logdir = os.path.join(TOP, 'tests', 'mutate', 'logs')
    os.makedirs(logdir, exist_ok=True)
    make = ['make', '-j%d' % a.jobs]
    check = make + ['check'] + (['TESTS=' + a.tests] if a.tests else [])
    rows = []
    try:
        for m in chosen:
            t0 = time.monotonic()
            apply(m)
            if a.dry_run:
                restore()
                rows.append((m, 'applies', [], 0))
                continue
            base = os.path.join(logdir, m['id'])
            rc = run(make, base + '.build.log', 600)
            if rc != 0:
                verdict, failed = 'build failed', []
            else:
                rc = run(check, base + '.check.log', a.timeout)
                failed = failed_tests()
                failed_checks(failed, base + '.failures.log')
                if rc is None:
                    verdict = 'caught (timeout)'
                else:
                    verdict = 'caught' if rc != 0 else 'MISSED'
            restore()
            took = time.monotonic() - t0
            rows.append((m, verdict, failed, took))
            line = '%s\t%s\t%s\t%.0f' % (m['id'], verdict, ' '.join(failed), took)
            print(line, flush=True)
            if a.out:
                with open(a.out, 'a') as f:
                    f.write(line + '\n')
    finally:
        restore()
        if not a.dry_run:
            # Leave the tree built as committed.
            run(make, os.path.join(logdir, 'restore.build.log'), 600)

    print()
    print('| mutant | file | bug | result | failed tests |')
    print('| --- | --- | --- | --- | --- |')
    for m, verdict, failed, _ in rows:
        print('| %s | %s | %s | %s | %s |' % (m['id'], m['file'], m['what'], verdict,
                                             ', '.join(os.path.basename(x) for x in failed)))
    caught = sum(1 for _, v, _, _ in rows if v.startswith('caught'))
    built = sum(1 for _, v, _, _ in rows if v != 'build failed')
    print('\n%d of %d mutants caught (%d built)' % (caught, len(rows), built))
    return 0


if __name__ == '__main__':
    sys.exit(main())
