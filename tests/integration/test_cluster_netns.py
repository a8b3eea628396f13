#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The cluster on etcd (README "Two or more nameservers") across network namespaces (root only;
skipped otherwise): hosts n1..n3 on a bridge, 198.18.0.1-3/24, each running one etcd member and
one gslbd node, nothing in the root namespace and no route out.

- Three nodes that disagree on a backend: each host runs its own tests/backend.py on the same
  address (198.18.1.1 on its lo), told per host to answer 200 or 503; for each --quorum policy
  the answers of every node are checked.
- n3 cut from the cluster's ports with nft (DNS and probes still flow): it keeps answering (asked
  from inside its namespace), reports connected false, its gslbctl changes exit 1; after the
  lease the others no longer count it and it falls back to its own verdicts; healed, it catches
  up to etcd's revision within seconds.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcdcluster as ec  # noqa: E402
import gslbtest as g  # noqa: E402
from test_cluster import (B_ADDR, LEASE, NODES, PREFIX, Node, configure_standalone,  # noqa: E402
                          converge, node_entry, one_line, pool, quorum_phase, timed_change,
                          wait_answers, same_export, run_scenarios, Sampler,
                          QUORUMS)

BACKEND = os.path.join(g.SRCDIR, 'tests', 'backend.py')
BACKEND_ADDR = '198.18.1.1'
BACKEND_PORT = 8080
CLIENT_PORT, PEER_PORT = 12379, 12380   # inside the namespaces, still not etcd's defaults


class NsBackends:
    """tests/backend.py in each host's namespace, all on BACKEND_ADDR:BACKEND_PORT."""

    def __init__(self, net):
        self.net = net
        self.procs = {}
        for h in NODES:
            net.add_addr(h, BACKEND_ADDR)
            p = subprocess.Popen(net.args(h, ['/usr/bin/python3', BACKEND, '--host', BACKEND_ADDR,
                                              '--port', BACKEND_PORT]),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, preexec_fn=g._pdeathsig)
            self.procs[h] = p
            line = p.stdout.readline().decode()
            if not line.startswith('ready '):
                raise RuntimeError('backend in %s did not start: %r' % (h, line))

    def control(self, host, mode):
        st, body = ec.http_request(self.net.ns(host), BACKEND_ADDR, BACKEND_PORT, 'GET',
                                   '/_control?mode=%s' % mode, timeout=5)
        if st != 200:
            raise RuntimeError('backend control in %s: HTTP %d' % (host, st))

    def set(self, down=()):
        for h in NODES:
            self.control(h, '503' if h in down else '200')

    def stats(self, host):
        st, body = ec.http_request(self.net.ns(host), BACKEND_ADDR, BACKEND_PORT, 'GET',
                                   '/_stats', timeout=5)
        return json.loads(body)

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(5)


def scenario_quorum(t, env):
    nodes, be = env['nodes'], env['backends']
    quorum_phase(t, nodes, be.set, (), 'netns quorum, backend up everywhere')
    quorum_phase(t, nodes, be.set, ('n3',), 'netns quorum, down in n3 only')
    quorum_phase(t, nodes, be.set, ('n1', 'n2'), 'netns quorum, down in n1 and n2')
    quorum_phase(t, nodes, be.set, NODES, 'netns quorum, down everywhere')
    totals = {h: be.stats(h).get('total', 0) for h in NODES}
    t.ok(all(v > 0 for v in totals.values()), 'each host\'s own backend was probed (%r)' % totals)
    quorum_phase(t, nodes, be.set, ('n3',), 'netns quorum, back to down in n3 only')


def scenario_partition(t, env):
    etcd, nodes, net = env['etcd'], env['nodes'], env['net']
    n1, n2, n3 = nodes
    # Before: n3 votes down on every quorum pool (down in n3 only), so --quorum any is down
    # everywhere and majority up everywhere.
    majority = {'endpoints': etcd.urls(etcd.members[:2])}   # etcdctl from n1: not through e3
    net.partition('n3', [CLIENT_PORT, PEER_PORT])
    t0 = time.monotonic()
    # All along: n3's DNS answers (asked inside its namespace), and whether etcd has n3's key.
    dns_n3 = Sampler(lambda: n3.ask(pool('www')), 0.1)
    key_n3 = Sampler(lambda: PREFIX + 'nodes/n3' in etcd.get_prefix(PREFIX + 'nodes/',
                                                                       **majority)[0], 0.3)

    def sample():
        return n3.ask(pool('www'))

    def disconnected():
        st = n3.cluster_status()
        return st if st and st.get('connected') is False else None
    took, st = converge(disconnected, 20, step=0.3)
    t.ok(took is not None, 'partition: n3 reports "connected": false (%s s after the cut)'
         % ('%.1f' % took if took else '-'), json.dumps(n3.cluster_status()))
    m = n3.metrics()
    t.ok(m.get('gslbd_cluster_connected') == 0, 'partition: gslbd_cluster_connected 0 on n3',
         {k: v for k, v in m.items() if 'cluster' in k})
    rc, out, err, secs = n3.ctl('member', 'add', pool('www'), 'cut', '--address', '192.0.2.66')
    t.ok(rc == 1 and one_line(err), 'partition: a gslbctl change on n3 exits 1 with one line '
         '(%.1f s)' % secs, 'exit %d\nstdout: %s\nstderr: %s' % (rc, out, err))
    # A change on the majority side: n1 and n2 answer it, n3 does not.
    timed_change(t, 'partition', n1, [n1, n2],
                 ['member', 'add', pool('www'), 'w9', '--address', '192.0.2.9'],
                 lambda a: a is not None and '192.0.2.9' in a, pool('www'))
    rev_w9 = etcd.revision(**majority)
    time.sleep(1.0)
    a = sample()
    t.ok(a is not None and '192.0.2.9' not in a, 'partition: cut-off n3 does not have it',
         repr(a))

    # After the lease, n1 and n2 no longer count n3: nodes/n3 and its votes leave etcd, and
    # --quorum any is up again for them.
    def n3_gone():
        kv, _ = etcd.get_prefix(PREFIX, **majority)
        st = n1.cluster_status()
        e = node_entry(st, 'n3')
        ok = (PREFIX + 'nodes/n3' not in kv and
              not any(k.startswith(PREFIX + 'votes/n3/') for k in kv) and
              st is not None and (e is None or e.get('live') is False))
        return ok
    took, _ = converge(n3_gone, LEASE + 10, step=0.3)
    t.ok(took is not None, 'partition: after the lease, n3 is not live for n1 and its votes are '
         'gone from etcd (%.1f s after the cut)' % (time.monotonic() - t0),
         json.dumps(n1.cluster_status()))
    want = tuple(sorted([n1.a_addr, B_ADDR]))
    took, got = wait_answers((n1, n2), pool('q-any'), want, 8)
    t.ok(took is not None, 'partition: n1 and n2 stop counting n3\'s down vote (any is up)',
         repr(got))
    # n3, cut off for longer than the lease, answers from its own verdicts: down for every
    # policy (its backend says 503).
    own = {}

    def own_verdicts():
        own.update({q: n3.ask(pool('q-' + q)) for q in QUORUMS})
        return all(a == (B_ADDR,) for a in own.values())
    took, _ = converge(own_verdicts, 10)
    got = own
    t.ok(took is not None, 'partition: after the lease n3 answers by its own verdicts (majority '
         'and all down on n3)', repr(got))
    gone_at = key_n3.first(lambda v: v is False)
    t.ok(gone_at is not None and gone_at <= LEASE + 2.5,
         'partition: nodes/n3 left etcd within the lease (%d s) of the cut (%s s)'
         % (LEASE, '%.1f' % gone_at if gone_at is not None else 'never'),
         repr(key_n3.samples[-5:]))

    # Heal: n3 catches up to etcd's revision within a few seconds, with no restart.
    pid = n3.pid
    net.heal('n3')
    t1 = time.monotonic()

    def caught_up():
        st = n3.cluster_status()
        e = node_entry(st, 'n3')
        a = n3.ask(pool('www'))
        return (st and st.get('connected') is True and e and e.get('revision', 0) >= rev_w9 and
                e.get('live') is True and a and '192.0.2.9' in a)
    took, _ = converge(caught_up, 15, step=0.2)
    samples = dns_n3.stop()
    key_n3.stop()
    bad = [(round(at, 1), a) for at, a in samples if not a or '192.0.2.1' not in a]
    t.ok(len(samples) > 50 and not bad, 'partition: n3 answered DNS from inside its namespace '
         'all along, cut and healed (%d queries over %.0f s)'
         % (len(samples), samples[-1][0] if samples else 0), repr(bad[:10]))
    t.ok(took is not None and took <= 8, 'heal: within 8 s n3 is connected, live, at least at '
         'the revision of the change made meanwhile (%d) and answers it (%s s)'
         % (rev_w9, '%.1f' % took if took else '-'),
         'etcd %d, n3: %s' % (etcd.revision(**majority), json.dumps(n3.cluster_status())))
    t.eq(n3.pid, pid, 'heal: n3 is the same process')

    def same_applied():
        r = [n.metrics().get('gslbd_cluster_revision') for n in nodes]
        return r if r[0] is not None and len(set(r)) == 1 else None
    took, _ = converge(same_applied, 5, step=0.2)
    t.ok(took is not None, 'heal: the three nodes have applied the same revision '
         '(gslbd_cluster_revision)',
         repr([n.metrics().get('gslbd_cluster_revision') for n in nodes]))
    took, _ = converge(lambda: same_export(n1, n3), 5, step=0.2)
    t.ok(took is not None, 'heal: n3\'s export equals n1\'s')
    # Its votes are back: any is down everywhere again, majority up everywhere.
    quorum_phase(t, nodes, env['backends'].set, ('n3',), 'heal: votes republished', timeout=12)
    t.diag('partition scenario: %.1f s after the cut, healed for %.1f s'
           % (time.monotonic() - t0, time.monotonic() - t1))


def main(t):
    reason = ec.have_etcd() or ec.Netns.unavailable()
    if reason:
        g.skip_all(reason)
    for path in (g.GSLBD, g.GSLBCTL):
        if not os.access(path, os.X_OK):
            g.skip_all('no %s' % path)
    ec.install_term_handler()
    t0 = time.monotonic()
    net = ec.Netns(NODES)
    etcd = None
    nodes = []
    backends = None
    try:
        net.up()
        t.ok(True, 'namespaces: %s' % ', '.join([net.switch] + [net.ns(h) for h in NODES]))
        etcd = ec.EtcdCluster(3, netns=net, ns_hosts=NODES, client_port=CLIENT_PORT,
                              peer_port=PEER_PORT, progress_notify='1s')
        etcd.start(timeout=20)
        t.ok(True, 'etcd: 3 members healthy in the namespaces (%.1f s)' % (time.monotonic() - t0))
        backends = NsBackends(net)
        ns_addrs = [net.addr(h) for h in NODES]
        for i, h in enumerate(NODES):
            # Its own member first, as a node beside an etcd member would be configured.
            ms = [etcd[i]] + [m for j, m in enumerate(etcd.members) if j != i]
            n = Node(h, net.addr(h), etcd.urls(ms), ns_addrs, netns=net, ns_host=h)
            n.a_addr = BACKEND_ADDR
            nodes.append(n)
        t.on_fail.append(lambda: [n.dump(t) for n in nodes])
        t.on_fail.append(lambda: t.diag(etcd.logs(1500)))
        configure_standalone(nodes[0], BACKEND_ADDR, BACKEND_PORT)
        rc, out, err, _ = nodes[0].ctl('cluster', 'import', pre=['--cluster', etcd[0].client_url])
        if not t.ok(rc == 0, 'import from n1 (inside its namespace) exits 0', err):
            return
        for n in nodes:
            n.start()
        took, _ = converge(lambda: same_export(*nodes), 10, step=0.2)
        t.ok(took is not None, 'the three nodes mirror the imported configuration')
        env = {'etcd': etcd, 'nodes': nodes, 'net': net, 'backends': backends}
        run_scenarios(t, nodes, env, (scenario_quorum, scenario_partition))
    finally:
        if t.failed:
            for f in t.on_fail:
                try:
                    f()
                except Exception:
                    pass
            t.on_fail.clear()
        for n in nodes:
            n.cleanup()
        if backends:
            backends.close()
        if etcd:
            etcd.close()
        net.down()
        t.diag('total %.1f s' % (time.monotonic() - t0))


if __name__ == '__main__':
    g.run(main)
