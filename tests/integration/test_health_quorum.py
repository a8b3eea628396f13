#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Health by quorum (README "Two or more nameservers"): the health loop of a cluster node, driven by
tests/health_probe --cluster against tests/backend.py, with the other nodes' votes scripted on its
stdin as the cluster thread would give them.  What is published and stored is the effective state;
this node's own verdicts go to the verdict callback."""

import atexit
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402
import test_health as th  # noqa: E402

# Fast probes: one result takes a target up or down.
COMMON = 'interval=0.3,timeout=0.2,rise=1,fall=1'


class Node:
    """One run of tests/health_probe --cluster: commands in on stdin, lines out with their order."""

    def __init__(self, targets, swaps, seconds, db=None):
        args = [th.PROBE, '--cluster', '--seconds', str(seconds)]
        if db:
            args += ['--db', db]
            schema = os.path.join(g.SRCDIR, 'src', 'db', 'schema.sql')
            if os.path.exists(schema):
                args += ['--schema', schema]
        args += list(targets) + ['--'] + list(swaps)
        self.args = args
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, preexec_fn=g._pdeathsig)
        th._procs.append(self.p)
        self.lines = []
        self.q = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            self.lines.append(line)
            self.q.put(line)
        self.q.put(None)

    def send(self, line):
        self.p.stdin.write((line + '\n').encode())
        self.p.stdin.flush()

    def wait(self, pred, timeout=5):
        """The first line from now on that satisfies pred, or None."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if pred(line):
                return line

    def until(self, pred, start=0, timeout=5):
        """Whether a line from lines[start:] satisfies pred within timeout (in any order)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(pred(s) for s in self.lines[start:]):
                return True
            time.sleep(0.02)
        return False

    def vote(self, slot, key, vote):
        """Send a vote; the state of key's target once it is applied (up, down or none), and the
        effective changes of key it caused, as [(state, reason)]."""
        mark = len(self.lines)
        self.send('vote %d %s %s' % (slot, key, vote))
        want = 'applied vote %s ' % key
        line = self.wait(lambda s: s.startswith(want) and ' ' not in s[len(want):])
        state = line[len(want):] if line else 'timeout'
        return state, self.changes(key, mark)

    def clear(self, slot, key):
        """Send a clear; key's effective changes it caused."""
        mark = len(self.lines)
        self.send('clear %d' % slot)
        self.wait(lambda s: s == 'applied clear')
        return self.changes(key, mark)

    def changes(self, key, start=0, end=None):
        """[(state, reason)] of the effective changes of key among lines[start:end]."""
        out = []
        for line in self.lines[start:end]:
            if line.startswith('change '):
                rest = line.split(' ', 2)[2]
                for state in ('up', 'down'):
                    if rest.startswith('%s %s ' % (key, state)):
                        out.append((state, rest[len(key) + len(state) + 2:]))
        return out

    def verdicts(self, key, start=0):
        out = []
        for line in self.lines[start:]:
            for v in ('up', 'down', 'gone'):
                if line == 'verdict %s %s' % (key, v):
                    out.append(v)
        return out

    def finish(self, timeout=15):
        try:
            self.send('quit')
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.reader.join(5)
        self.stderr = self.p.stderr.read().decode('utf-8', 'replace')
        return self.p.returncode

    def dump(self, t):
        t.diag('command: ' + ' '.join(self.args))
        for line in self.lines[-80:]:
            t.diag('  ' + line)
        t.diag('stderr: ' + getattr(self, 'stderr', ''))


def spec_key(spec):
    """The target key of spec, quorum included (after fall; these specs have no match)."""
    fields = [f for f in spec.split(',') if not f.startswith('quorum=')]
    key = th.keyof(','.join(fields))
    for f in spec.split(','):
        if f.startswith('quorum=') and f != 'quorum=majority':
            key += ' quorum ' + f.split('=', 1)[1]
    return key


def main(t):
    if not os.access(th.PROBE, os.X_OK):
        t.skip('health_probe driver', 'not built: %s' % th.PROBE)
        return
    tmp = tempfile.mkdtemp(prefix='gslb-quorum-')
    atexit.register(shutil.rmtree, tmp, True)
    db = os.path.join(tmp, 'health.db')

    steady = th.Backend(tmp)          # always 200
    flaky = th.Backend(tmp)           # switched between 200 and 503
    closed = g.free_port(v6=False)
    spec = {
        'maj': 'http,127.0.0.1:%d,path=/maj,host=localhost,%s' % (steady.port, COMMON),
        'any': 'http,127.0.0.1:%d,path=/any,host=localhost,%s,quorum=any' % (steady.port, COMMON),
        'all': 'http,127.0.0.1:%d,path=/all,host=localhost,%s,quorum=all' % (flaky.port, COMMON),
        'loc': 'http,127.0.0.1:%d,path=/loc,host=localhost,%s,quorum=local'
               % (steady.port, COMMON),
        'new': 'http,127.0.0.1:%d,path=/new,host=localhost,%s' % (steady.port, COMMON),
        'old': 'http,127.0.0.1:%d,path=/old,host=localhost,%s' % (steady.port, COMMON),
        # Nothing listens: this node says down.  Its fall changes at the swap (a new key).
        'dead': 'tcp,127.0.0.1:%d,%s' % (closed, COMMON),
        'dead2': 'tcp,127.0.0.1:%d,%s' % (closed, COMMON.replace('fall=1', 'fall=2')),
    }
    key = {k: spec_key(v) for k, v in spec.items()}
    t.ok(key['any'].endswith(' fall 1 quorum any') and key['maj'].endswith(' fall 1'),
         'the keys name the quorum unless majority', key)

    first = [spec[k] for k in ('maj', 'any', 'all', 'loc', 'dead')]
    swapped = [spec[k] for k in ('maj', 'any', 'all', 'new', 'old', 'dead2')]
    n = Node(first, swapped, 40, db=db)
    t.on_fail.append(lambda: n.dump(t))

    # Every target's starting verdict goes to the callback.
    for k in ('maj', 'any', 'all', 'loc'):
        t.ok(n.until(lambda s, k=k: s == 'verdict %s up' % key[k]),
             'the starting verdict of %s goes to the callback' % k)
    # Probes run: a result of each before the votes.
    for k in ('maj', 'all'):
        n.until(lambda s, k=k: s.startswith('result ') and (' %s ok ' % key[k]) in s)

    # Down here, up on the two others: up.
    t.ok(n.until(lambda s: s == 'verdict %s down' % key['dead']),
         'the callback reports this node\'s verdict on a dead target going down')
    n.vote(0, key['dead'], 'up')
    t.eq(n.vote(1, key['dead'], 'up')[0], 'up', 'majority: down here, up on 2 others: up')

    # majority, 3 nodes: this one up.
    k = key['maj']
    t.eq(n.vote(0, k, 'down'), ('up', []), 'majority: up here, 1 of 2 others down: up, no change')
    t.eq(n.vote(1, k, 'down'), ('down', [('down', 'majority: 2 of 3 nodes say down')]),
         'majority: up here, 2 of 2 others down: down, the reason names the votes')
    t.eq(n.vote(1, k, 'up'), ('up', [('up', 'majority: 1 of 3 nodes says down')]),
         'majority: one of them back up: up again')
    t.eq(n.vote(1, k, 'down'), ('down', [('down', 'majority: 2 of 3 nodes say down')]),
         'majority: down again')
    t.eq(n.clear(1, k), [('up', 'majority: 1 of 2 nodes says down')],
         'clearing one node\'s votes (its lease ended): 1 of 2 is a tie, up')
    t.eq(n.vote(1, k, 'down'), ('down', [('down', 'majority: 2 of 3 nodes say down')]),
         'majority: down again after the node is back')
    t.eq(n.clear(-1, k), [('up', 'majority: 0 of 1 node says down')],
         'clearing every slot falls back on this node\'s own verdict (up)')
    t.eq(n.vote(2, k, 'gone'), ('up', []), 'a vote "gone" of a slot without votes changes nothing')

    # any
    k = key['any']
    t.eq(n.vote(7, k, 'down'), ('down', [('down', 'any: 1 of 2 nodes says down')]),
         'any: one other node down: down')
    t.eq(n.vote(8, k, 'up'), ('down', []), 'any: another one up: still down')
    t.eq(n.vote(7, k, 'gone'), ('up', [('up', 'any: 0 of 2 nodes say down')]),
         'any: the down vote gone: up')

    # local: the others do not count.
    k = key['loc']
    t.eq([n.vote(s, k, 'down') for s in (0, 1, 63)], [('up', [])] * 3,
         'local: 3 other nodes down, up here: up, no change')

    # all, with this node's own verdict flipping on a real backend.
    k = key['all']
    t.eq([n.vote(s, k, 'down') for s in (0, 1)], [('up', [])] * 2,
         'all: 2 others down, up here: up')
    mark = len(n.lines)
    flaky.control('503')
    t.ok(n.until(lambda s: s == 'verdict %s down' % k, mark),
         'the callback reports this node\'s own verdict going down (HTTP 503)')
    n.until(lambda s: s.startswith('change ') and (' %s down ' % k) in s, mark)
    t.eq(n.changes(k, mark), [('down', 'all: 3 of 3 nodes say down')],
         'all: every node down now: the effective state goes down')
    mark = len(n.lines)
    flaky.control('200')
    t.ok(n.until(lambda s: s == 'verdict %s up' % k, mark),
         'the callback reports this node\'s own verdict coming back up')
    n.until(lambda s: s.startswith('change ') and (' %s up ' % k) in s, mark)
    t.eq(n.changes(k, mark), [('up', 'all: 2 of 3 nodes say down')],
         'all: this node up again: up')
    t.eq(n.verdicts(k, mark), ['up'], 'one verdict per own flip')

    # Votes on keys the loop does not probe yet are kept, and applied when the target appears.
    t.eq(n.vote(0, key['new'], 'down'), ('none', []), 'a vote on a key not probed: kept')
    t.eq(n.vote(1, key['new'], 'down'), ('none', []), 'a second one')
    t.eq(n.vote(5, key['old'], 'down'), ('none', []), 'a vote on another key not probed')
    t.eq(n.vote(5, key['old'], 'gone'), ('none', []), 'and its removal (the key\'s last vote)')
    # The clearings above took the dead target's votes: up again before its check changes.
    n.vote(0, key['dead'], 'up')
    t.eq(n.vote(1, key['dead'], 'up')[0], 'up', 'the dead target is up by the votes again')
    mark = len(n.lines)
    n.send('swap')
    n.until(lambda s: s.startswith('change ') and (' %s down ' % key['new']) in s, mark)
    n.until(lambda s: s.startswith('result ') and (' %s ' % key['old']) in s, mark)
    t.eq(n.changes(key['new'], mark), [('down', 'majority: 2 of 3 nodes say down')],
         'a target that appears with 2 other nodes voting down is down at once')
    t.eq(n.verdicts(key['new'], mark), ['up'],
         'its own starting verdict (up) goes to the callback')
    t.eq(n.changes(key['old'], mark), [], 'a key whose last vote went is up: no votes kept')
    t.eq(n.verdicts(key['old'], mark), ['up'], 'its starting verdict goes to the callback')
    t.eq(n.verdicts(key['loc'], mark), ['gone'], 'a removed target is reported gone')
    t.eq(n.changes(key['maj'], mark) + n.verdicts(key['maj'], mark), [],
         'a kept target reports nothing')
    # A changed setting is a new key: the target starts from the one it replaces, this node's
    # verdict (down) from its verdict, and without votes on the new key it is down at once.
    t.eq(n.verdicts(key['dead2'], mark), ['down'],
         'a check changed under a new key keeps this node\'s verdict (down, not the effective up)')
    t.eq(n.changes(key['dead2'], mark), [('down', 'majority: 1 of 1 node says down')],
         'and with no votes on the new key yet, its own verdict is the effective state')
    t.eq(n.verdicts(key['dead'], mark), ['gone'], 'the old key is reported gone')
    t.eq(n.vote(1, key['new'], 'up'), ('up', [('up', 'majority: 1 of 3 nodes says down')]),
         'the kept votes are the target\'s: one goes up, the target is up')
    t.eq(n.vote(1, key['new'], 'down'), ('down', [('down', 'majority: 2 of 3 nodes say down')]),
         'and down again')
    # One probe of the new target after it went down, so its state row is written with it.
    mark = len(n.lines)
    n.until(lambda s: s.startswith('result ') and (' %s ok ' % key['new']) in s, mark)

    rc = n.finish()
    t.ok(rc == 0, 'health_probe --cluster exited cleanly', rc)
    t.ok('bad command' not in n.stderr, 'every command was understood', n.stderr)

    # The database holds the effective state and its changes with the votes as the reason.
    con = sqlite3.connect(db)
    rows = con.execute('SELECT t.key, c.from_state, c.to_state, c.reason FROM state_change c '
                       'JOIN target t ON t.id = c.target_id ORDER BY c.id').fetchall()
    maj = [(f, to, r) for k2, f, to, r in rows if k2 == key['maj']]
    t.eq(maj[:2], [('up', 'down', 'majority: 2 of 3 nodes say down'),
                   ('down', 'up', 'majority: 1 of 3 nodes says down')],
         'the effective changes are stored with the votes as the reason')
    state = dict(con.execute('SELECT t.key, s.state FROM target_state s '
                             'JOIN target t ON t.id = s.target_id').fetchall())
    t.eq(state.get(key['new']), 'down',
         'the stored state is the effective one (down), though every probe here succeeds')
    t.eq(state.get(key['maj']), 'up', 'and up where the votes say up')
    con.close()


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        th._cleanup()
