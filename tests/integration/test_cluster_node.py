#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
gslbd --cluster against one real etcd (README "Two or more nameservers", gslbd(8)): two nodes
mirror a pool put into etcd, and its deletion, within a second; a node started while etcd is
down answers from its database and catches up once etcd is back; a node whose revision was
compacted away reads everything again (and drops the pool deleted meanwhile); its own verdicts
are published bound to its lease and revoked when it stops; the options are checked and
recorded for gslbctl; the metrics.  etcd runs on free loopback ports in a temporary directory
and is stopped by its PID.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gslbtest as g  # noqa: E402

ETCD = shutil.which('etcd') or '/usr/bin/etcd'
ETCDCTL = shutil.which('etcdctl') or '/usr/bin/etcdctl'
PREFIX = '/gslbtest/'
POOL = 'gslb.example.test.'
POOL2 = 'other-pool.example.test.'


class Etcd:
    """One etcd member on free loopback ports (never 2379/2380), its data in a temp dir."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix='gslbtest-etcd-')
        self.client = g.free_port(False)
        self.peer = g.free_port(False)
        while self.peer == self.client:
            self.peer = g.free_port(False)
        self.url = 'http://127.0.0.1:%d' % self.client
        self.proc = None

    def start(self):
        peer = 'http://127.0.0.1:%d' % self.peer
        args = [ETCD, '--name', 't1', '--data-dir', os.path.join(self.tmp, 'data'),
                '--listen-client-urls', self.url, '--advertise-client-urls', self.url,
                '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
                '--initial-cluster', 't1=' + peer, '--initial-cluster-state', 'new']
        self.log = open(os.path.join(self.tmp, 'etcd.log'), 'ab')
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, preexec_fn=g._pdeathsig)
        if not g.wait_for(lambda: self.ctl('endpoint', 'health')[0] == 0, 10, 0.1):
            raise RuntimeError('etcd did not become healthy')
        return self

    def stop(self):
        if self.proc:
            g.terminate(self.proc)
            self.proc = None
            self.log.close()

    def ctl(self, *args, stdin=None):
        env = dict(os.environ, ETCDCTL_API='3')
        try:
            p = subprocess.run([ETCDCTL, '--endpoints', self.url, '--dial-timeout', '1s'] +
                               list(args), capture_output=True, text=True, env=env,
                               input=stdin, timeout=10)
        except subprocess.TimeoutExpired:
            return -1, ''
        return p.returncode, p.stdout + p.stderr

    def put(self, key, value):
        # The value on stdin: a JSON text may start with '-'.
        rc, out = self.ctl('put', key, stdin=value)
        if rc != 0:
            raise RuntimeError('etcdctl put %s: %s' % (key, out))

    def revision(self):
        rc, out = self.ctl('get', PREFIX + 'none', '-w', 'json')
        return int(json.loads(out)['header']['revision']) if rc == 0 else None

    def lease(self, key):
        """The lease key is bound to (decimal), or None."""
        rc, out = self.ctl('get', key, '-w', 'json')
        kvs = json.loads(out).get('kvs') if rc == 0 else None
        return int(kvs[0].get('lease', 0)) if kvs else None

    def keys(self, prefix):
        rc, out = self.ctl('get', '--prefix', prefix)
        lines = out.splitlines() if rc == 0 else []
        return dict(zip(lines[0::2], lines[1::2]))

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def pool_json(address, check_port=None):
    """The object gslbctl export writes for POOL with one member at address."""
    tmp = tempfile.mkdtemp(prefix='gslbtest-pool-')
    db = os.path.join(tmp, 'x.db')
    try:
        steps = [('init',), ('pool', 'add', POOL, '--ttl', '30'),
                 ('member', 'add', POOL, 'm1', '--address', address)]
        if check_port:
            steps.append(('check', 'set', POOL, '--type', 'tcp', '--port', str(check_port),
                          '--interval', '1', '--rise', '1', '--fall', '1'))
        steps.append(('export',))
        for s in steps:
            rc, out, err = g.gslbctl(db, *s)
            if rc != 0:
                raise RuntimeError('gslbctl %s: %s' % (' '.join(s), err))
        return json.dumps(json.loads(out)['pools'][0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def node(etcd_url, name, lease=3):
    port = g.free_port(False)
    n = g.Gslbd(identity=False, extra_args=['--cluster', etcd_url, '--node', name,
                                            '--cluster-prefix', PREFIX, '--cluster-lease',
                                            str(lease), '--metrics', '127.0.0.1:%d' % port])
    n.metrics_port = port
    n.name = name
    return n


def metrics_text(n):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % n.metrics_port,
                                    timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ''


def metrics(n):
    out = {}
    for line in metrics_text(n).splitlines():
        m = re.match(r'^(gslbd_cluster_[a-z_]+) (\S+)$', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def answer(n, name=POOL):
    """The A addresses n answers for name, or None when it does not answer."""
    try:
        r = g.exchange(g.make_query(name, 'A'), n.addr4, 'udp', timeout=0.5)
    except OSError:
        return None
    if r.msg is None:
        return None
    return sorted(rr.address for rrset in r.msg.answer for rr in rrset if rrset.rdtype == 1)


def mirrored(nodes, want, name=POOL, timeout=1.0):
    """Seconds until every node answers want for name, or None."""
    return g.time_until(lambda: all(answer(n, name) == want for n in nodes), timeout, 0.02)


def check_options(t, etcd):
    tmp = tempfile.mkdtemp(prefix='gslbtest-opts-')
    try:
        base = [g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--zones', g.ZONES,
                '--db', os.path.join(tmp, 'x.db'), '--check-config']

        def run(*extra):
            p = subprocess.run(base + list(extra), capture_output=True, text=True, timeout=10)
            return p.returncode, p.stderr

        rc, err = run('--cluster', etcd.url, '--node', 'Bad_Name')
        t.ok(rc == 1 and '--node' in err, 'an invalid --node stops start-up naming --node',
             'rc %d: %s' % (rc, err))
        rc, err = run('--node', 'n1')
        t.ok(rc == 1 and '--cluster' in err, '--node without --cluster is refused',
             'rc %d: %s' % (rc, err))
        rc, err = run('--cluster', 'ftp://x', '--node', 'n1')
        t.ok(rc == 1 and '--cluster' in err, 'a URL that is not http(s) is refused',
             'rc %d: %s' % (rc, err))
        rc, err = run('--cluster', etcd.url, '--node', 'n1', '--cluster-prefix', 'x/')
        t.ok(rc == 1 and '--cluster-prefix' in err, 'a prefix not starting with / is refused',
             'rc %d: %s' % (rc, err))
        rc, err = run('--cluster', etcd.url, '--node', 'n1', '--cluster-user', 'u',
                      '--cluster-password-file', os.path.join(tmp, 'missing'))
        t.ok(rc == 1 and '--cluster-password-file' in err,
             'an unreadable password file stops start-up', 'rc %d: %s' % (rc, err))
        rc, err = run('--cluster', etcd.url, '--node', 'n1', '--cluster-ca-file',
                      os.path.join(tmp, 'no-ca.pem'))
        t.ok(rc == 1 and '--cluster-ca-file' in err,
             '--check-config finds an unreadable --cluster-ca-file', 'rc %d: %s' % (rc, err))
        pw = os.path.join(tmp, 'pw')
        with open(pw, 'w') as f:
            f.write('s3cret-word\n')
        rc, err = run('--cluster', etcd.url + ',' + etcd.url, '--node', 'n1', '--cluster-user',
                      'u', '--cluster-password-file', pw)
        t.ok(rc == 0 and 's3cret' not in err, 'valid cluster options pass --check-config, '
             'the password not shown', 'rc %d: %s' % (rc, err))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def query(n, sql):
    c = sqlite3.connect(os.path.join(n.tmp, 'gslb.db'))
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


def settings(db):
    c = sqlite3.connect(db)
    try:
        return dict(c.execute('SELECT name, value FROM cluster_setting').fetchall())
    finally:
        c.close()


def main(t):
    if not os.path.exists(ETCD) or not os.path.exists(ETCDCTL):
        g.skip_all('etcd is not installed (apt-get install etcd-server etcd-client)')
    etcd = Etcd().start()
    nodes = []
    try:
        run_all(t, etcd, nodes)
    finally:
        for n in nodes:
            n.stop()
            if t.failed:
                n.dump(t, 'gslbd %s stderr' % n.name)
            n.cleanup()
        if t.failed:
            with open(os.path.join(etcd.tmp, 'etcd.log'), 'rb') as f:
                t.diag('etcd log (last lines):\n' +
                       '\n'.join(f.read().decode('utf-8', 'replace').splitlines()[-30:]))
        etcd.cleanup()


def run_all(t, etcd, nodes):
    check_options(t, etcd)

    n1 = node(etcd.url, 'n1')
    n2 = node(etcd.url, 'n2')
    nodes += [n1, n2]
    n1.start()
    n2.start()
    live = g.wait_for(lambda: all(metrics(n).get('gslbd_cluster_nodes_live') == 2
                                  for n in (n1, n2)), 5)
    t.ok(live, 'both nodes join and see each other live',
         '%r %r' % (metrics(n1), metrics(n2)))
    t.ok(set(etcd.keys(PREFIX + 'nodes/')) == {PREFIX + 'nodes/n1', PREFIX + 'nodes/n2'},
         'each node has its key under nodes/', repr(etcd.keys(PREFIX + 'nodes/')))
    s = settings(os.path.join(n1.tmp, 'gslb.db'))
    t.ok(s.get('urls') == etcd.url and s.get('node') == 'n1' and s.get('prefix') == PREFIX and
         s.get('lease') == '3', 'the cluster settings are recorded in the database', repr(s))

    # A pool put into etcd is answered by both nodes within a second.
    etcd.put(PREFIX + 'pools/' + POOL, pool_json('192.0.2.77'))
    took = mirrored((n1, n2), ['192.0.2.77'])
    t.ok(took is not None, 'a pool put into etcd is answered by both nodes within 1 s',
         'answers %r %r' % (answer(n1), answer(n2)))
    if took is not None:
        t.diag('put to answer on both nodes: %.0f ms' % (took * 1000))
    # A changed pool likewise.
    etcd.put(PREFIX + 'pools/' + POOL, pool_json('192.0.2.78'))
    t.ok(mirrored((n1, n2), ['192.0.2.78']) is not None,
         'a changed pool is answered by both nodes within 1 s',
         'answers %r %r' % (answer(n1), answer(n2)))

    # A bad value is logged with its key and skipped; the pools after it still arrive.
    etcd.put(PREFIX + 'pools/bad.example.test.', '{"name": "bad.example.test.", "ttl": -1}')
    etcd.put(PREFIX + 'pools/' + POOL2, pool_json('192.0.2.90').replace(POOL, POOL2))
    t.ok(mirrored((n1, n2), ['192.0.2.90'], POOL2) is not None,
         'a pool after a bad value is still mirrored', 'answers %r' % answer(n1, POOL2))
    t.ok('pools/bad.example.test.' in n1.stderr() and n1.alive(),
         'the bad value is logged with its key, the node lives on')
    etcd.ctl('del', PREFIX + 'pools/bad.example.test.')

    # The journal is mirrored too, once per key, with the node the change was made on.
    entry = json.dumps({'time': '2026-01-02T03:04:05Z', 'actor': 'alice@ops', 'node': 'n9',
                        'command': 'gslbctl pool add x', 'summary': 'added pool x'})
    etcd.put(PREFIX + 'journal/0000000000000001-n9-00000001', entry)
    etcd.put(PREFIX + 'journal/0000000000000001-n9-00000001', entry)
    t.ok(g.wait_for(lambda: all(query(n, "SELECT actor, node, command FROM journal "
                                         "WHERE node = 'n9'") ==
                                [('alice@ops', 'n9', 'gslbctl pool add x')] for n in (n1, n2)),
                    2), 'a journal entry in etcd is mirrored once by both nodes',
         repr(query(n1, 'SELECT * FROM journal')))

    # A deletion likewise.
    etcd.ctl('del', PREFIX + 'pools/' + POOL2)
    t.ok(mirrored((n1, n2), [], POOL2) is not None,
         'a pool deleted in etcd is gone from both nodes within 1 s',
         'answers %r %r' % (answer(n1, POOL2), answer(n2, POOL2)))

    rev = etcd.revision()
    m = g.wait_for(lambda: (lambda x: x if x.get('gslbd_cluster_revision', 0) >=
                            rev - 2 else None)(metrics(n1)), 3)
    m = m or metrics(n1)
    t.ok(m.get('gslbd_cluster_connected') == 1, 'metric: connected', repr(m))
    t.ok(rev - 2 <= m.get('gslbd_cluster_revision', -1) <= rev,
         'metric: the applied revision follows etcd (%s)' % rev, repr(m))
    t.ok(m.get('gslbd_cluster_events_applied_total', 0) >= 4, 'metric: events applied',
         repr(m))
    t.ok(m.get('gslbd_cluster_resyncs_total') == 1, 'metric: one full sync (the first start)',
         repr(m))

    # Own verdicts: published under votes/NODE/ with the node's lease, only on flips.  The
    # member is the listener on 127.0.0.1, up for every node.
    listener = g.Listener()
    etcd.put(PREFIX + 'pools/' + POOL, pool_json('127.0.0.1', listener.port))
    t.ok(mirrored((n1, n2), ['127.0.0.1']) is not None, 'the pool with a check is mirrored')
    votes = g.wait_for(lambda: (lambda k: k if len(k) == 2 else None)(
        etcd.keys(PREFIX + 'votes/')), 5)
    t.ok(votes and sorted(v for v in votes.values()) == ['up', 'up'] and
         any(k.startswith(PREFIX + 'votes/n1/') for k in votes) and
         any(k.startswith(PREFIX + 'votes/n2/') for k in votes),
         'each node publishes its verdict on the check', repr(votes))
    votes_db = g.wait_for(lambda: query(n1, 'SELECT node, up FROM cluster_vote ORDER BY node') ==
                          [('n1', 1), ('n2', 1)], 2)
    t.ok(votes_db, "n1's database holds both nodes' votes (gslbctl status)",
         repr(query(n1, 'SELECT * FROM cluster_vote')))
    published = metrics(n1).get('gslbd_cluster_votes_published_total', 0)
    t.ok(published >= 1, 'metric: votes published', repr(metrics(n1)))
    time.sleep(2.5)
    t.ok(metrics(n1).get('gslbd_cluster_votes_published_total') == published,
         'a steady verdict is not written again', repr(metrics(n1)))

    # The lease ended behind the node's back (revoked here): a new lease, the node registered
    # and its votes published again.
    lease = etcd.lease(PREFIX + 'nodes/n1')
    rc, out = etcd.ctl('lease', 'revoke', '%x' % lease)
    t.ok(rc == 0, 'n1\'s lease revoked with etcdctl', out)
    back = g.wait_for(lambda: etcd.lease(PREFIX + 'nodes/n1') not in (None, lease) and
                      any(k.startswith(PREFIX + 'votes/n1/') for k in etcd.keys(PREFIX)), 3)
    t.ok(back, 'a node whose lease ended joins again with a new one and republishes its votes',
         repr(etcd.keys(PREFIX)))
    t.ok(g.wait_for(lambda: metrics(n1).get('gslbd_cluster_votes_published_total', 0) >
                    published, 2), 'metric: the votes were published again', repr(metrics(n1)))

    # A second node named n1 is refused while n1 lives, mirrors all the same, and leaves n1's
    # lease alone when it stops.
    dup = node(etcd.url, 'n1')
    nodes.append(dup)
    dup.start()
    t.ok(g.wait_for(lambda: 'another live node is named n1' in dup.stderr(), 3),
         'a node started with the name of a live node is refused with an error',
         dup.stderr()[-1500:])
    t.ok(g.wait_for(lambda: answer(dup) == ['127.0.0.1'], 3),
         'it still mirrors the configuration', 'answers %r' % answer(dup))
    dup.stop()
    nodes.remove(dup)
    dup.cleanup()
    time.sleep(0.3)
    keys = etcd.keys(PREFIX)
    t.ok(PREFIX + 'nodes/n1' in keys and any(k.startswith(PREFIX + 'votes/n1/') for k in keys),
         "stopping it left n1's key and votes alone", repr(keys))

    # Stopping a node revokes its lease: its key and votes vanish at once, not a lease later.
    n2.stop()
    gone = g.time_until(lambda: not any('/n2' in k for k in etcd.keys(PREFIX)), 1.0)
    t.ok(gone is not None, "a stopped node's key and votes vanish at once",
         repr(etcd.keys(PREFIX)))
    t.ok(n2.rc == 0, 'the node exits 0', 'rc %r' % n2.rc)
    t.ok(g.wait_for(lambda: query(n1, "SELECT node FROM cluster_vote") == [('n1',)] and
                    query(n1, "SELECT live FROM cluster_node WHERE name = 'n2'") == [(0,)] and
                    metrics(n1).get('gslbd_cluster_nodes_live') == 1, 2),
         "n1 drops the stopped node's votes and records it not live",
         repr((query(n1, 'SELECT * FROM cluster_vote'), query(n1, 'SELECT * FROM cluster_node'))))

    # n2 is stopped: a pool it has not seen, then etcd goes down.
    etcd.put(PREFIX + 'pools/' + POOL2, pool_json('192.0.2.91').replace(POOL, POOL2))
    t.ok(mirrored((n1,), ['192.0.2.91'], POOL2) is not None, 'n1 mirrors the new pool')
    etcd.stop()
    n2.start()
    t.ok(answer(n2) == ['127.0.0.1'] and answer(n2, POOL2) == [],
         'a node started while etcd is down answers from its database at once',
         'answers %r %r' % (answer(n2), answer(n2, POOL2)))
    down = g.wait_for(lambda: metrics(n2).get('gslbd_cluster_connected') == 0, 3)
    t.ok(down, 'metric: not connected', repr(metrics(n2)))
    t.ok(g.wait_for(lambda: 'cannot reach etcd' in n2.stderr(), 3),
         'the lost connection is logged')
    t.ok(g.wait_for(lambda: 'lost etcd' in n1.stderr(), 6), 'n1 logs it too')
    t.ok(g.wait_for(lambda: 'longer than the lease' in n1.stderr(), 5),
         'a lease later n1 says it answers by its own verdicts', n1.stderr()[-1500:])
    etcd.start()
    took = g.time_until(lambda: answer(n2, POOL2) == ['192.0.2.91'], 8)
    t.ok(took is not None, 'once etcd is back the node catches up without a restart',
         'answers %r' % answer(n2, POOL2))
    t.ok(g.wait_for(lambda: all(metrics(n).get('gslbd_cluster_connected') == 1
                                for n in (n1, n2)), 5), 'both nodes connected again',
         '%r %r' % (metrics(n1), metrics(n2)))
    t.ok(n1.stderr().count('lost etcd') == 1,
         'n1 logged the lost connection once', n1.stderr()[-2000:])
    t.ok(n1.stderr().count('longer than the lease') == 1,
         'n1 logged the fall-back on its own verdicts once', n1.stderr()[-2000:])
    t.ok(g.wait_for(lambda: metrics(n1).get('gslbd_cluster_resyncs_total') == 2 and
                    query(n1, 'SELECT node FROM cluster_vote ORDER BY node') ==
                    [('n1',), ('n2',)], 5),
         'back, n1 reads everything again, the other node\'s votes included',
         repr((metrics(n1), query(n1, 'SELECT * FROM cluster_vote'))))

    # Compaction past a stopped node's revision: a full sync on restart, the deleted pool gone.
    t.ok(g.wait_for(lambda: answer(n2) == ['127.0.0.1'], 3), 'n2 answers the first pool')
    n2.stop()
    etcd.ctl('del', PREFIX + 'pools/' + POOL)
    etcd.put(PREFIX + 'pools/' + POOL2, pool_json('192.0.2.92').replace(POOL, POOL2))
    rc, out = etcd.ctl('compact', str(etcd.revision()))
    t.ok(rc == 0, 'etcd compacted', out)
    n2.start()
    t.ok(mirrored((n2,), [], timeout=5) is not None and
         answer(n2, POOL2) == ['192.0.2.92'],
         'after compaction a restarted node reads everything again: the deleted pool is gone',
         'answers %r %r' % (answer(n2), answer(n2, POOL2)))
    m2 = g.wait_for(lambda: (lambda x: x if x.get('gslbd_cluster_resyncs_total') else None)(
        metrics(n2)), 3) or {}
    t.ok(m2.get('gslbd_cluster_resyncs_total') == 1 and 'compacted' in n2.stderr(),
         'it was a full sync for the compaction', repr(m2))

    # Back to standalone: the recorded settings go.
    n2.stop()
    n2.extra_args = n2.extra_args[-2:]  # --metrics only
    n2.start()
    text = metrics_text(n2)
    t.ok(settings(os.path.join(n2.tmp, 'gslb.db')) == {} and 'gslbd_reloads_total' in text and
         'gslbd_cluster' not in text,
         'without --cluster the settings are removed and no cluster metrics are shown',
         repr(settings(os.path.join(n2.tmp, 'gslb.db'))))
    t.ok(answer(n2, POOL2) == ['192.0.2.92'], 'a node back to standalone answers its mirror')

    # Another etcd at the same URL (rebuilt, its revisions starting again): n1 reads it whole,
    # even pools whose new revisions are below the ones it had mirrored.
    # (n1 is stopped meanwhile, so that the new etcd holds the pool when n1 reads it.)
    t.ok(g.wait_for(lambda: answer(n1, POOL2) == ['192.0.2.92'], 3), 'n1 answers the pool')
    n1.stop()
    etcd.stop()
    shutil.rmtree(os.path.join(etcd.tmp, 'data'))
    etcd.start()
    etcd.put(PREFIX + 'pools/' + POOL, pool_json('192.0.2.99'))
    n1.start()
    t.ok(g.wait_for(lambda: answer(n1) == ['192.0.2.99'] and answer(n1, POOL2) == [], 5),
         'a rebuilt etcd is mirrored anew: its pool, and not the pools it lacks',
         'answers %r %r' % (answer(n1), answer(n1, POOL2)))
    t.ok(metrics(n1).get('gslbd_cluster_resyncs_total') == 1 and
         "history differs" in n1.stderr(), 'it was a full sync of another history',
         repr(metrics(n1)))

    # Stopping while etcd is frozen: the lease's revocation waits at most a second.
    t.ok(g.wait_for(lambda: metrics(n1).get('gslbd_cluster_connected') == 1, 3), 'n1 connected')
    os.kill(etcd.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        n1.check_stop(t, 'gslbd n1 (etcd frozen)')
        took = time.monotonic() - t0
        t.ok(took < 1.8, 'it stops within the revocation bound (%.1f s)' % took)
    finally:
        os.kill(etcd.proc.pid, signal.SIGCONT)
    nodes.remove(n1)


g.run(main)
