#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The cluster on etcd (README "Two or more nameservers", gslbd(8), gslbctl(8)), on loopback
without root: three etcd members, three gslbd nodes n1..n3 each on its own 127.0.1.x address with
its own database and zone files, and health-checked HTTP backends on 127.0.2.x.

A node's view of a backend is made per node without root: the backend looks up which process
owns the connecting socket (/proc/net/tcp and /proc/PID/fd) and answers 200 or 503 as told for
that node, so "the backend is down for n3 only" needs no source address or namespace.

Scenarios, in order: import of a standalone node into an empty cluster (and a second import
refused); propagation n1 -> n2, n3 and n3 -> n1, n2 within 1 s; racing writers on one pool; two
pools changed by one apply never seen half applied; health by --quorum (majority, any, all, local)
with the backend down for some nodes only; a node killed (its votes leave with its lease); etcd
without quorum and back; the first etcd member frozen (SIGSTOP); gslbctl on a stopped node's
database; a node stopped past a compaction (full resync, deleted pool gone).
"""

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

import etcdcluster as ec  # noqa: E402
import gslbtest as g  # noqa: E402

ZONE = 'glb.test.'
PREFIX = '/gslbd/'
LEASE = 3   # --cluster-lease: the smallest allowed, so that lease expiry is quick to see
NODES = ('n1', 'n2', 'n3')
QUORUMS = ('majority', 'any', 'all', 'local')
# Member b of every quorum pool has no check (always healthy): an answer is {a, b} or {b}.
B_ADDR = '192.0.2.200'
CHECK = ['--type', 'http', '--path', '/q', '--interval', '1', '--timeout', '0.5', '--rise', '1',
         '--fall', '1']


def zone_text(ns_addrs):
    lines = ['$TTL 300', '$ORIGIN %s' % ZONE,
             '@ IN SOA ns1 hostmaster 2026120701 3600 600 604800 300']
    for i, _ in enumerate(ns_addrs, 1):
        lines.append('  IN NS ns%d' % i)
    for i, a in enumerate(ns_addrs, 1):
        lines.append('ns%d IN A %s' % (i, a))
    lines.append('static IN A 192.0.2.53')
    return '\n'.join(lines) + '\n'


def free_port_on(addr):
    """A port free for UDP and TCP on addr."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((addr, 0))
            port = u.getsockname()[1]
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((addr, port))
                return port
            except OSError:
                continue
            finally:
                s.close()
        finally:
            u.close()
    raise RuntimeError('no free port on %s' % addr)


def one_line(err):
    """stderr is exactly one non-empty line."""
    lines = [x for x in err.splitlines() if x.strip()]
    return len(lines) == 1


# ---------------------------------------------------------------------------------------------
# A gslbd node

class Node:
    """One gslbd cluster node with its own zone directory and database.  With netns, it runs
    inside the namespace of netns host ns_host (and so does its gslbctl)."""

    def __init__(self, name, addr, urls, ns_addrs, netns=None, ns_host=None, port=None,
                 lease=LEASE, prefix=PREFIX, extra_args=()):
        self.name = name
        self.addr = addr
        self.urls = urls
        self.netns = netns
        self.ns_host = ns_host
        self.lease = lease
        self.prefix = prefix
        self.extra_args = list(extra_args)
        # The node's name is kept out of the path: gslbctl log shows the command (with --db).
        self.tmp = tempfile.mkdtemp(prefix='gslbtest-cluster-')
        os.chmod(self.tmp, 0o755)
        self.zones = os.path.join(self.tmp, 'zones')
        os.mkdir(self.zones)
        with open(os.path.join(self.zones, 'glb.test.zone'), 'w') as f:
            f.write(zone_text(ns_addrs))
        self.db = os.path.join(self.tmp, 'gslb.db')
        if netns is None:
            self.port = port or free_port_on(addr)
            self.metrics_port = ec.free_tcp_ports(1, addr)[0]
        else:
            self.port = port or 53
            self.metrics_port = 9153
        self.proc = None
        self.log_path = os.path.join(self.tmp, 'gslbd.log')
        self.starts = 0

    @property
    def ns(self):
        return self.netns.ns(self.ns_host) if self.netns else None

    def argv(self):
        args = [g.GSLBD, '--listen', '%s:%d' % (self.addr, self.port), '--zones', self.zones,
                '--db', self.db, '--threads', '1', '--log-level', 'debug',
                '--metrics', '%s:%d' % (self.addr, self.metrics_port),
                '--cluster', self.urls, '--node', self.name,
                '--cluster-lease', str(self.lease), '--cluster-prefix', self.prefix]
        args += self.extra_args
        return self.netns.args(self.ns_host, args) if self.netns else args

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout=5.0):
        if self.alive():
            raise RuntimeError('gslbd %s is running' % self.name)
        log = open(self.log_path, 'ab')
        log.write(b'==== start %d\n' % (self.starts + 1))
        log.flush()
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, preexec_fn=g._pdeathsig)
        finally:
            log.close()
        self.starts += 1
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=5.0):
        """The zone's SOA is answered: seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if not self.alive():
                raise RuntimeError('gslbd %s exited with %s during start-up:\n%s'
                                   % (self.name, self.proc.returncode, self.log()[-3000:]))
            r = self.query(ZONE, 'SOA', timeout=0.2)
            if r is not None and r.rcode() == dns.rcode.NOERROR and r.answer:
                return time.monotonic() - t0
            time.sleep(0.02)
        raise RuntimeError('gslbd %s did not answer %s SOA within %.0f s:\n%s'
                           % (self.name, ZONE, timeout, self.log()[-3000:]))

    def stop(self, timeout=5.0):
        """SIGTERM; SIGKILL after timeout.  (exit status, seconds it took)."""
        if self.proc is None:
            return None, 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode, time.monotonic() - t0

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    # DNS --------------------------------------------------------------------------------------
    def query(self, name, qtype='A', timeout=0.5):
        q = g.make_query(name, qtype)
        s = ec.socket_in(self.ns, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            data = g.udp_raw(q.to_wire(), (self.addr, self.port), timeout, sock=s)
        finally:
            s.close()
        if data is None:
            return None
        msg, _ = g.parse(data)
        return msg

    def ask(self, name, qtype='A'):
        """The addresses answered for name, as a sorted tuple; None without an answer."""
        r = self.look(name, qtype)
        return None if r is None else r[1]

    def look(self, name, qtype='A'):
        """(rcode text, sorted tuple of the addresses answered), or None without an answer."""
        m = self.query(name, qtype)
        if m is None:
            return None
        want = dns.rdatatype.from_text(qtype)
        return (dns.rcode.to_text(m.rcode()),
                tuple(sorted(rd.to_text() for rr in m.answer if rr.rdtype == want for rd in rr)))

    # gslbctl ----------------------------------------------------------------------------------
    def ctl(self, *args, timeout=40, pre=()):
        """gslbctl --db DB [pre...] ARGS on this node: (exit status, stdout, stderr, seconds)."""
        argv = [g.GSLBCTL, '--db', self.db] + [str(a) for a in pre] + [str(a) for a in args]
        env = dict(os.environ)
        env.pop('GSLB_DB', None)
        if self.netns:
            argv = self.netns.args(self.ns_host, argv)
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, capture_output=True, text=True, errors='replace', env=env,
                               timeout=timeout)
            return p.returncode, p.stdout, p.stderr, time.monotonic() - t0
        except subprocess.TimeoutExpired:
            return -1, '', 'gslbctl timed out after %s s' % timeout, time.monotonic() - t0

    def ctl_ok(self, *args, **kw):
        rc, out, err, _ = self.ctl(*args, **kw)
        if rc != 0:
            raise RuntimeError('%s: gslbctl %s: exit %d: %s' % (self.name, ' '.join(map(str, args)),
                                                               rc, err.strip()))
        return out

    def ctl_json(self, *args, **kw):
        return json.loads(self.ctl_ok('--json', *args, **kw))

    def cluster_status(self):
        """gslbctl --json cluster status, parsed; None when it failed."""
        rc, out, err, secs = self.ctl('--json', 'cluster', 'status', timeout=15)
        self.status_secs = max(getattr(self, 'status_secs', 0.0), secs)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def export(self):
        """The pools of gslbctl export (the configuration as JSON), or None."""
        rc, out, err, _ = self.ctl('export')
        if rc != 0:
            return None
        try:
            return json.loads(out).get('pools')
        except ValueError:
            return None

    def metrics(self):
        """{metric line's name with labels: value} from --metrics, {} when unreachable."""
        try:
            st, body = ec.http_request(self.ns, self.addr, self.metrics_port, 'GET', '/metrics',
                                       timeout=2)
        except OSError:
            return {}
        out = {}
        for line in body.decode('utf-8', 'replace').splitlines():
            if line.startswith('#') or not line.strip():
                continue
            k, _, v = line.rpartition(' ')
            try:
                out[k] = float(v)
            except ValueError:
                pass
        return out

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def dump(self, t, lines=150):
        text = self.log().splitlines()
        t.diag('---- gslbd %s (PID %s) log, last %d of %d lines ----'
               % (self.name, self.pid, min(lines, len(text)), len(text)))
        t.diag('\n'.join(text[-lines:]))

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A backend that answers each node as told, knowing the node by the process owning the socket

def _proc_net_tcp():
    """{(local ip, local port, remote ip, remote port): inode} of every TCP socket here."""
    out = {}
    for path in ('/proc/net/tcp',):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    la, ra, inode = p[1], p[2], p[9]
                    lh, lp = la.split(':')
                    rh, rp = ra.split(':')
                    li = socket.inet_ntoa(struct.pack('<I', int(lh, 16)))
                    ri = socket.inet_ntoa(struct.pack('<I', int(rh, 16)))
                    out[(li, int(lp, 16), ri, int(rp, 16))] = inode
        except OSError:
            pass
    return out


def _pid_has_socket(pid, inode):
    want = 'socket:[%s]' % inode
    try:
        for fd in os.listdir('/proc/%d/fd' % pid):
            try:
                if os.readlink('/proc/%d/fd/%s' % (pid, fd)) == want:
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


class ViewBackend:
    """HTTP on host: answers a node's probe with modes[node] (default 200), the node found as the
    owner of the client's socket among the PIDs of nodes; counts probes per node."""

    def __init__(self, host, nodes):
        self.host = host
        self.nodes = nodes   # {name: Node}, read at each request (PIDs change on restarts)
        self.modes = {}
        self.hits = {}
        self.lock = threading.Lock()
        backend = self

        class H(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def do_GET(self):
                who = backend.who(self.client_address, self.server.server_address)
                with backend.lock:
                    backend.hits[who] = backend.hits.get(who, 0) + 1
                    code = backend.modes.get(who, 200)
                body = b'ok\n' if code == 200 else b'no\n'
                self.send_response(code)
                self.send_header('Content-Length', str(len(body)))
                self.send_header('Connection', 'close')
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        class S(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = S((host, 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def who(self, client, server):
        key = (client[0], client[1], server[0], server[1])
        inode = None
        for _ in range(3):
            inode = _proc_net_tcp().get(key)
            if inode:
                break
            time.sleep(0.005)
        if not inode:
            return None
        for name, n in self.nodes.items():
            if n.alive() and _pid_has_socket(n.pid, inode):
                return name
        return None

    def set(self, down=()):
        """The nodes in down get 503, the others 200."""
        with self.lock:
            self.modes = {n: (503 if n in down else 200) for n in self.nodes}

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---------------------------------------------------------------------------------------------
# Helpers for the scenarios

def pool(name):
    return '%s.%s' % (name, ZONE)


def converge(pred, timeout, step=0.05):
    """(seconds until pred() was true or None, pred's last value)."""
    t0 = time.monotonic()
    while True:
        v = pred()
        if v:
            return time.monotonic() - t0, v
        if time.monotonic() - t0 > timeout:
            return None, v
        time.sleep(step)


class Sampler:
    """Calls fn every interval seconds in a thread of its own, keeping (seconds since the start,
    fn's value or the exception's text)."""

    def __init__(self, fn, interval):
        self.fn = fn
        self.interval = interval
        self.t0 = time.monotonic()
        self.samples = []
        self.done = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.done.is_set():
            try:
                v = self.fn()
            except Exception as e:   # recorded, judged by the caller
                v = 'exception: %s' % e
            self.samples.append((time.monotonic() - self.t0, v))
            self.done.wait(self.interval)

    def stop(self):
        self.done.set()
        self.th.join(30)
        return self.samples

    def first(self, pred):
        """The time of the first sample for which pred holds, or None."""
        for at, v in list(self.samples):
            if pred(v):
                return at
        return None


def answers_of(nodes, name):
    return {n.name: n.ask(name) for n in nodes}


def same_export(*nodes):
    """gslbctl export's pools are the same on every node given (and not empty)."""
    ex = [n.export() for n in nodes]
    return bool(ex[0]) and all(e == ex[0] for e in ex[1:])


def wait_answers(nodes, name, want, timeout, step=0.05):
    """Poll name on nodes until every answer is want (a sorted tuple of addresses) or want(the
    answer) holds: (seconds it took or None, the last answers by node)."""
    last = {}

    def ok():
        last.clear()
        last.update(answers_of(nodes, name))
        return all((want(a) if callable(want) else a == want) for a in last.values())
    took, _ = converge(ok, timeout, step)
    return took, dict(last)


def status_address(node, pool_name, member):
    """The first address entry of member in node's gslbctl status --json, or None."""
    try:
        st = node.ctl_json('status', pool_name)
    except (RuntimeError, ValueError):
        return None
    for p in st.get('pools', []):
        if p.get('name', '').rstrip('.') != pool_name.rstrip('.'):
            continue
        for m in p.get('members', []):
            if m.get('name') == member and m.get('addresses'):
                return m['addresses'][0]
    return None


def states_over(node, pool_name, member, n=7, gap=0.3):
    """(state, since, reason) of member's first address in gslbctl status, read n times."""
    out = []
    for i in range(n):
        x = status_address(node, pool_name, member) or {}
        out.append((x.get('state'), x.get('since'), x.get('reason')))
        if i + 1 < n:
            time.sleep(gap)
    return out


def node_entry(st, name):
    for e in (st or {}).get('nodes', []):
        if e.get('name') == name:
            return e
    return None


def etcd_keys(etcd, sub, **kw):
    kv, rev = etcd.get_prefix(PREFIX + sub, **kw)
    return kv


def configure_standalone(node, backend_host, backend_port):
    """The configuration made on a standalone node before the cluster exists."""
    rc, out, err, _ = node.ctl('init')
    if rc != 0:
        raise RuntimeError('gslbctl init: %s' % err)
    node.ctl_ok('pool', 'add', pool('www'), '--answers', '8', '--ttl', '30')
    node.ctl_ok('member', 'add', pool('www'), 'w1', '--address', '192.0.2.1')
    node.ctl_ok('pool', 'add', pool('del'), '--ttl', '30')
    node.ctl_ok('member', 'add', pool('del'), 'd1', '--address', '192.0.2.99')
    for p in ('ta', 'tb'):
        node.ctl_ok('pool', 'add', pool(p), '--ttl', '30')
        node.ctl_ok('member', 'add', pool(p), 'x', '--address', '192.0.2.150')
    node.ctl_ok('pool', 'add', pool('race'), '--answers', '32')
    node.ctl_ok('member', 'add', pool('race'), 'r0', '--address', '192.0.2.100')
    for q in QUORUMS:
        p = pool('q-' + q)
        node.ctl_ok('pool', 'add', p, '--answers', '2', '--ttl', '5')
        node.ctl_ok('member', 'add', p, 'a', '--address', backend_host)
        node.ctl_ok('member', 'add', p, 'b', '--address', B_ADDR)
        node.ctl_ok('check', 'set', p, '--member', 'a', '--port', backend_port, '--quorum', q,
                    *CHECK)
    # A signed zone: its key goes up with the import, and down to n2 and n3 by their full sync.
    node.ctl_ok('dnssec', 'enable', ZONE)


def expected_quorum(q, node, down):
    """Whether member a is answered by node under --quorum q when the nodes in down (all three
    live and reporting) see the backend down."""
    n_down = len(down)
    if q == 'majority':
        up = not (n_down * 2 > len(NODES))
    elif q == 'any':
        up = n_down == 0
    elif q == 'all':
        up = n_down < len(NODES)
    else:
        up = node not in down
    return up


def quorum_phase(t, nodes, backend_set, down, label, timeout=12.0,
                 expect=expected_quorum):
    """Set the backend's views (down: the nodes that see it down), then wait until every node's
    answers for the four quorum pools are as expected; check they stay so for a second."""
    backend_set(down)
    names = [pool('q-' + q) for q in QUORUMS]
    a = nodes[0].a_addr   # member a's address (the backend's)

    def snapshot():
        got, want = {}, {}
        for n in nodes:
            for q, name in zip(QUORUMS, names):
                got[(n.name, q)] = n.ask(name)
                want[(n.name, q)] = tuple(sorted(([a] if expect(q, n.name, down) else []) +
                                                 [B_ADDR]))
        return got, want

    took, _ = converge(lambda: (lambda gw: gw[0] == gw[1])(snapshot()), timeout, step=0.1)
    if took is None:
        got, want = snapshot()
        diff = ['%s %-8s got %s want %s' % (k[0], k[1], got[k], want[k])
                for k in sorted(want) if got[k] != want[k]]
        t.ok(False, '%s: every node answers by its --quorum within %.0f s' % (label, timeout),
             '\n'.join(diff))
        return False
    t.ok(True, '%s: every node answers by its --quorum (%.1f s)' % (label, took))
    # Once converged, no node flips back: sample for a second.
    bad = []
    end = time.monotonic() + 1.0
    while time.monotonic() < end and not bad:
        got, want = snapshot()
        bad = ['%s %s got %s want %s' % (k[0], k[1], got[k], want[k])
               for k in sorted(want) if got[k] != want[k]]
        time.sleep(0.2)
    t.ok(not bad, '%s: the answers stay as expected for 1 s' % label, '\n'.join(bad))
    return True


# ---------------------------------------------------------------------------------------------
# The scenarios

def scenario_import(t, env):
    etcd, nodes = env['etcd'], env['nodes']
    n1 = nodes[0]
    # Import from the standalone database (no cluster settings recorded: --cluster given).
    rc, out, err, secs = n1.ctl('cluster', 'import', pre=['--cluster', etcd.endpoints])
    t.ok(rc == 0, 'import: gslbctl --cluster URL cluster import exits 0 on an empty prefix',
         'exit %d, %.1f s\nstdout: %s\nstderr: %s' % (rc, secs, out, err))
    kv = etcd_keys(etcd, '')
    pools = sorted(k[len(PREFIX + 'pools/'):] for k in kv if k.startswith(PREFIX + 'pools/'))
    want = sorted([pool('www'), pool('del'), pool('race'), pool('ta'), pool('tb')] +
                  [pool('q-' + q) for q in QUORUMS])
    t.eq(pools, want, 'import: etcd holds one key per pool, named by the pool')
    t.ok(PREFIX + 'meta' in kv, 'import: %smeta written' % PREFIX, 'keys: %s' % sorted(kv))
    journal = [k for k in kv if k.startswith(PREFIX + 'journal/')]
    t.ok(len(journal) >= 24, 'import: the standalone journal is uploaded (%d entries)'
         % len(journal), 'keys: %s' % sorted(kv))
    www = kv.get(PREFIX + 'pools/' + pool('www'), {}).get('value', '')
    try:
        wj = json.loads(www)
    except ValueError:
        wj = {}
    t.ok(wj.get('name') == pool('www') and [m.get('name') for m in wj.get('members', [])] ==
         ['w1'], 'import: a pool key holds the pool as gslbctl export writes it', www)
    try:
        qany = json.loads(kv.get(PREFIX + 'pools/' + pool('q-any'), {}).get('value', '{}'))
        chk = [m.get('check', {}) for m in qany.get('members', []) if m.get('name') == 'a']
    except ValueError:
        chk = []
    t.ok(chk and chk[0].get('quorum') == 'any', 'import: a check\'s --quorum is in its pool key',
         repr(chk))
    rev_before = etcd.revision()
    rc, out, err, _ = n1.ctl('cluster', 'import', pre=['--cluster', etcd.endpoints])
    t.ok(rc == 1 and one_line(err), 'import: a second import into the non-empty prefix exits 1'
         ' with one line', 'exit %d\nstderr: %s' % (rc, err))
    t.eq(etcd.revision(), rev_before, 'import: the refused import wrote nothing to etcd')

    # The nodes: n1 on its imported database, n2 and n3 with no database at all.
    for n in nodes:
        n.start()
    t.ok(all(n.alive() for n in nodes), 'start: three nodes answer the zone\'s SOA')
    want_www = ('192.0.2.1',)
    took, got = wait_answers(nodes, pool('www'), want_www, 10)
    t.ok(took is not None, 'mirror: n2 and n3 (empty databases) answer the imported pools',
         'answers: %r' % (got,))
    ref = n1.export()
    took, got = converge(lambda: same_export(*nodes), 10, step=0.2)
    t.ok(ref and took is not None, 'mirror: gslbctl export is the same on the three nodes',
         '\n'.join('%s: %s' % (n.name, json.dumps(n.export())[:800]) for n in nodes))
    rc, out, err, _ = nodes[2].ctl('--json', 'log', '--limit', '1000')
    try:
        cmds = [e.get('command', '') for e in json.loads(out).get('entries', [])]
    except ValueError:
        cmds = []
    t.ok(any('pool add %s' % pool('www') in c for c in cmds),
         'mirror: n3\'s gslbctl log holds the journal made on the standalone n1',
         'exit %d, %d entries: %s' % (rc, len(cmds), cmds[:5]))

    def all_live():
        rev = etcd.revision()
        sts = [n.cluster_status() for n in nodes]
        for st in sts:
            if not st or st.get('connected') is not True:
                return None
            for name in NODES:
                e = node_entry(st, name)
                if not e or e.get('live') is not True:
                    return None
        return sts, rev
    took, got = converge(all_live, 10, step=0.2)
    t.ok(took is not None, 'cluster status: on every node, connected true and n1..n3 live',
         '\n'.join('%s: %s' % (n.name, n.cluster_status()) for n in nodes))
    if took is not None:
        st = got[0][0]
        types_ok = (isinstance(st.get('revision'), int) and isinstance(st.get('connected'), bool)
                    and all(isinstance(e.get('live'), bool) and isinstance(e.get('revision'), int)
                            and isinstance(e.get('down_votes'), int) and 'last_seen' in e
                            for e in st['nodes']))
        t.ok(types_ok, 'cluster status --json: revision and down_votes integers, connected and '
             'live booleans, last_seen present', json.dumps(st))
    # A quiet cluster (no change, no verdict moving) writes nothing: no endless rewriting of the
    # nodes' records as their own writes move the revision they report.
    time.sleep(1.5)
    r0 = etcd.revision()
    time.sleep(3)
    r1 = etcd.revision()
    t.ok(r1 - r0 <= 1, 'quiet: etcd\'s revision stays put while nothing changes (%d -> %d in 3 s)'
         % (r0, r1), 'keys written since: %s' % sorted(
             k for k, v in etcd_keys(etcd, '').items() if v['mod_revision'] > r0))
    m = n1.metrics()
    t.ok(m.get('gslbd_cluster_connected') == 1 and m.get('gslbd_cluster_nodes_live') == 3,
         'metrics: gslbd_cluster_connected 1, gslbd_cluster_nodes_live 3',
         {k: v for k, v in m.items() if 'cluster' in k})
    m2 = nodes[1].metrics()
    t.ok(m2.get('gslbd_cluster_resyncs_total', 0) >= 1 and
         m2.get('gslbd_cluster_events_applied_total', 0) > 0 and
         m2.get('gslbd_cluster_votes_published_total', 0) > 0 and
         0 < m2.get('gslbd_cluster_revision', 0) <= etcd.revision(),
         'metrics on n2: a full sync, events applied, votes published, an applied revision',
         {k: v for k, v in m2.items() if 'cluster' in k})


def timed_change(t, label, writer, readers, args, want_pred, name, limit=1.0, timeout=5.0,
                 rcode=False):
    """Make a change with gslbctl on writer; check it exits 0, then how long until every node
    answers it (limit: the contract's 1 s from the command's return).  want_pred gets the
    addresses answered (a sorted tuple, None without an answer); with rcode=True, (rcode text,
    addresses)."""
    rc, out, err, secs = writer.ctl(*args)
    t0 = time.monotonic()
    if not t.ok(rc == 0, '%s: gslbctl %s on %s exits 0 (%.2f s)' % (label, args[0] + ' ' + args[1],
                                                                     writer.name, secs),
                'exit %d\nstdout: %s\nstderr: %s' % (rc, out, err)):
        return
    seen = {}
    pending = list(readers)
    while pending and time.monotonic() - t0 < timeout:
        for n in list(pending):
            r = n.look(name)
            if want_pred(r if rcode else (r[1] if r else None)):
                seen[n.name] = time.monotonic() - t0
                pending.remove(n)
        time.sleep(0.01)
    for n in readers:
        s = seen.get(n.name)
        t.ok(s is not None and s <= limit,
             '%s: %s answers the change made on %s within %.0f s' % (label, n.name, writer.name,
                                                                      limit),
             'seen after %s s (waited up to %.0f s); last answer %r'
             % ('%.3f' % s if s is not None else 'never', timeout, n.look(name)))


def scenario_propagation(t, env):
    etcd, nodes = env['etcd'], env['nodes']
    n1, n2, n3 = nodes
    timed_change(t, 'n1 -> all', n1, nodes,
                 ['member', 'add', pool('www'), 'w2', '--address', '192.0.2.2'],
                 lambda a: a is not None and '192.0.2.2' in a, pool('www'))
    timed_change(t, 'n3 -> all', n3, nodes,
                 ['member', 'add', pool('www'), 'w3', '--address', '192.0.2.3'],
                 lambda a: a is not None and '192.0.2.3' in a, pool('www'))
    timed_change(t, 'n2 -> all (a new pool)', n2, nodes,
                 ['pool', 'add', pool('new'), '--ttl', '30'],
                 lambda r: r is not None and r[0] == 'NOERROR', pool('new'), rcode=True)
    timed_change(t, 'n1 -> all (member state down)', n1, nodes,
                 ['member', 'state', pool('www'), 'w1', 'down'],
                 lambda a: a is not None and '192.0.2.1' not in a and '192.0.2.2' in a,
                 pool('www'))
    kv = etcd_keys(etcd, 'journal/')
    vals = []
    for v in kv.values():
        try:
            vals.append(json.loads(v['value']))
        except ValueError:
            vals.append({'bad': v['value']})
    # A word of its own: the temporary directories' random names in the commands may hold "w3".
    mine = [v for v in vals if re.search(r'\bw3\b', v.get('command', ''))]
    t.ok(len(mine) == 1 and mine[0].get('node') == 'n3' and mine[0].get('actor') and
         mine[0].get('time') and mine[0].get('summary') is not None,
         'journal: the change made on n3 is one journal key with its node, actor, time, summary',
         json.dumps(mine))
    rc, out, err, _ = n1.ctl('log', '--limit', '10')
    line = [x for x in out.splitlines() if re.search(r'\bw3\b', x)]
    t.ok(rc == 0 and line and re.search(r'\bn3\b', out), 'log: n1\'s gslbctl log shows the '
         'change made on n3 and names the node n3', out)


def dnssec_rows(node):
    """The node's dnssec_key rows, as every node must hold them (row ids are each node's own)."""
    try:
        con = sqlite3.connect('file:%s?mode=ro' % node.db, uri=True, timeout=5)
        try:
            return sorted(con.execute(
                'SELECT zone, algorithm, key_tag, flags, hex(public_key), hex(private_key), '
                'created, publish, active, retire, remove FROM dnssec_key').fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return None


def scenario_dnssec(t, env):
    """DNSSEC keys go through etcd (README "DNSSEC"): the key n1 made standalone reaches n2 and
    n3 by the import and their full sync; the keys rolled over on n2, removed on n3 and made on
    n1 are, each time, the same rows in every node's database."""
    etcd, nodes = env['etcd'], env['nodes']
    n1, n2, n3 = nodes

    def same_keys(n):
        def pred():
            rows = [dnssec_rows(x) for x in nodes]
            return len(rows[0] or []) == n and all(r == rows[0] for r in rows) and rows[0]
        return pred

    def in_etcd():
        kv = etcd_keys(etcd, 'dnssec/')
        try:
            return json.loads(kv.get(PREFIX + 'dnssec/' + ZONE, {'value': '{}'})['value'])
        except ValueError:
            return {}

    secs, rows = converge(same_keys(1), 5)
    v = in_etcd()
    t.ok(secs is not None and v.get('zone') == ZONE and len(v.get('keys', [])) == 1 and
         v['keys'][0]['key_tag'] == rows[0][2],
         'the key made on n1 standalone: imported into etcd, the same row on n1, n2 and n3',
         '%r\n%r' % ([dnssec_rows(x) for x in nodes], v))

    n2.ctl_ok('dnssec', 'rollover', ZONE, '--max-ttl', '60')
    secs, rows = converge(same_keys(2), 5)
    t.ok(secs is not None and rows and sum(r[9] is not None for r in rows) == 1,
         'dnssec rollover on n2: both keys, the old one retiring, alike on every node',
         [dnssec_rows(x) for x in nodes])

    n3.ctl_ok('dnssec', 'disable', ZONE)
    secs, rows = converge(lambda: all(dnssec_rows(x) == [] for x in nodes), 5)
    t.ok(secs is not None, 'dnssec disable on n3: no key left on any node',
         [dnssec_rows(x) for x in nodes])
    t.eq(etcd_keys(etcd, 'dnssec/'), {}, '... nor in etcd')

    n1.ctl_ok('dnssec', 'enable', ZONE)
    secs, rows = converge(same_keys(1), 5)
    t.ok(secs is not None, 'dnssec enable on n1: the same key row on n1, n2 and n3 (%s s)'
         % (secs if secs is None else '%.2f' % secs), [dnssec_rows(x) for x in nodes])
    rc, out, err, _ = n3.ctl('dnssec', 'ds', ZONE)
    t.ok(rc == 0 and out == n1.ctl_ok('dnssec', 'ds', ZONE) and ' IN DS ' in out,
         'dnssec ds on n3 prints what it prints on n1', out + err)


def scenario_race(t, env):
    etcd, nodes = env['etcd'], env['nodes']
    n1, n2, n3 = nodes
    per = 6
    results = {}
    barrier = threading.Barrier(2)

    def writer(node, tag):
        barrier.wait(5)
        out = []
        for i in range(per):
            m = 'r%s-%d' % (tag, i)
            addr = '192.0.2.%d' % (110 + (0 if tag == 'a' else 50) + i)
            out.append((m, node.ctl('member', 'add', pool('race'), m, '--address', addr,
                                    pre=['--no-wait'])))
        results[tag] = out

    ths = [threading.Thread(target=writer, args=(n1, 'a')),
           threading.Thread(target=writer, args=(n2, 'b'))]
    for th in ths:
        th.start()
    for th in ths:
        th.join(120)
    done = [(m, r) for tag in ('a', 'b') for m, r in results.get(tag, [])]
    ok_members = {m for m, r in done if r[0] == 0}
    failed = [(m, r[0], r[2].strip()) for m, r in done if r[0] != 0]
    t.ok(len(done) == 2 * per and not failed,
         'race: %d member adds from n1 and n2 at once on one pool all exit 0' % (2 * per),
         'failed: %r' % failed)
    t.ok(all(one_line(e) for _, _, e in failed), 'race: a writer that gave up said so in one '
         'line', repr(failed))
    want = sorted({'r0'} | ok_members)

    def members_of(n):
        try:
            return sorted(m['name'] for m in n.ctl_json('pool', 'show', pool('race'))['members'])
        except (RuntimeError, ValueError, KeyError):
            return None
    took, _ = converge(lambda: all(members_of(n) == want for n in nodes), 10, step=0.2)
    t.ok(took is not None, 'race: every node has every member added (no change lost)',
         'want %s\n%s' % (want, '\n'.join('%s: %s' % (n.name, members_of(n)) for n in nodes)))
    try:
        v = json.loads(etcd_keys(etcd, 'pools/')[PREFIX + 'pools/' + pool('race')]['value'])
        in_etcd = sorted(m['name'] for m in v['members'])
    except (KeyError, ValueError) as e:
        in_etcd = repr(e)
    t.eq(in_etcd, want, 'race: etcd\'s pool key holds every member added')
    got = answers_of(nodes, pool('race'))
    t.ok(all(a is not None and len(a) == len(want) for a in got.values()),
         'race: every node answers all %d members' % len(want), repr(got))


def scenario_atomic(t, env):
    """One gslbctl apply changes two pools: one etcd transaction, so no node ever answers the
    new ta with the old tb.  Asked in the order ta then tb, a node whose answers move forward
    one whole revision at a time can show (old, old), (new, new) or (old, new), never (new,
    old)."""
    nodes = env['nodes']
    n1 = nodes[0]
    tmp = tempfile.mkdtemp(prefix='gslbtest-cluster-apply-')
    stop = threading.Event()
    seen = {n.name: [] for n in nodes[1:]}

    def poll():
        while not stop.is_set():
            for n in nodes[1:]:
                a, b = n.ask(pool('ta')), n.ask(pool('tb'))
                seen[n.name].append((a, b))
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    try:
        rcs = []
        for i in range(151, 157):
            addr = '192.0.2.%d' % i
            doc = {'version': 1, 'pools': [
                {'name': pool(p), 'ttl': 30, 'members': [{'name': 'x', 'addresses': [addr]}]}
                for p in ('ta', 'tb')]}
            path = os.path.join(tmp, 'two.json')
            with open(path, 'w') as f:
                json.dump(doc, f)
            rcs.append(n1.ctl('apply', path)[0])
            time.sleep(0.15)
        want = ('192.0.2.156',)
        took, _ = converge(lambda: all(n.ask(pool('ta')) == want and n.ask(pool('tb')) == want
                                       for n in nodes), 5)
    finally:
        stop.set()
        th.join(5)
        shutil.rmtree(tmp, ignore_errors=True)
    t.ok(rcs == [0] * 6, 'atomic: six gslbctl apply of two pools exit 0', repr(rcs))
    t.ok(took is not None, 'atomic: every node ends with the last apply')

    def num(a):
        return int(a[0].rsplit('.', 1)[1]) if a and len(a) == 1 else None
    torn, odd = {}, []
    for name, obs in seen.items():
        for a, b in obs:
            if num(a) is None or num(b) is None:
                odd.append((name, a, b))   # no answer, or not one address: reported below
            elif num(a) > num(b):
                torn.setdefault(name, []).append((a, b))
    t.ok(not torn, 'atomic: n2 and n3 never answered a newer ta than tb (%s observations)'
         % sum(len(v) for v in seen.values()), repr({k: v[:5] for k, v in torn.items()}))
    t.ok(len(odd) <= 2, 'atomic: ta and tb always answered with one address (%d exceptions)'
         % len(odd), repr(odd[:10]))


def scenario_frozen(t, env):
    """SIGSTOP the etcd member every node lists first: nodes move to the next URL (a frozen
    member answers nothing, so only the keepalive's timeout can tell) and changes flow again."""
    etcd, nodes = env['etcd'], env['nodes']
    n1, n2, n3 = nodes
    etcd[0].pause()
    t0 = time.monotonic()
    try:
        t.ok(etcd.wait_healthy(etcd.members[1:], timeout=10), 'frozen: e2 and e3 healthy with '
             'e1 stopped (SIGSTOP)')
        rc, out, err, secs = n2.ctl('member', 'add', pool('www'), 'w5', '--address', '192.0.2.5',
                                    timeout=30)
        t.ok(rc == 0 and secs < 15, 'frozen: a gslbctl change on n2 exits 0 through the next '
             'URL (%.1f s)' % secs, 'exit %d\nstdout: %s\nstderr: %s' % (rc, out, err))
        took, got = wait_answers(nodes, pool('www'), lambda a: a and '192.0.2.5' in a, 10)
        t.ok(took is not None, 'frozen: every node answers it (%.1f s after the freeze)'
             % (time.monotonic() - t0), repr(got))
        took, _ = converge(lambda: all(n.metrics().get('gslbd_cluster_connected') == 1
                                       for n in nodes), 10, step=0.2)
        t.ok(took is not None, 'frozen: every node connected to another member '
             '(gslbd_cluster_connected 1, %.1f s after the freeze)' % (time.monotonic() - t0),
             '\n'.join('%s: %s' % (n.name, {k: v for k, v in n.metrics().items()
                                             if 'cluster' in k}) for n in nodes))
    finally:
        etcd[0].resume()
    t.ok(etcd.wait_healthy(timeout=10), 'frozen: e1 resumed (SIGCONT), etcd healthy')


def scenario_quorum(t, env):
    nodes, be = env['nodes'], env['backend']
    t0 = time.monotonic()
    quorum_phase(t, nodes, lambda d: be.set(d), (), 'quorum, backend up for all')
    quorum_phase(t, nodes, lambda d: be.set(d), ('n3',), 'quorum, backend down for n3 only')
    # gslbctl status: the effective state and every node's vote.
    want_votes = {'n1': 'up', 'n2': 'up', 'n3': 'down'}
    took, a = converge(lambda: (lambda x: x if x and x.get('votes') == want_votes else None)(
        status_address(nodes[0], pool('q-any'), 'a')), 5, step=0.2)
    t.ok(took is not None, 'status --json on n1: "votes" from n1, n2 and n3 (n3 down)',
         json.dumps(status_address(nodes[0], pool('q-any'), 'a')))
    # The state shown is the effective one (down by --quorum any), though n1's own probes say
    # up: once stored (the DNS answers say it is down already), it stays so.
    took, _ = converge(lambda: (status_address(nodes[0], pool('q-any'), 'a') or {}).get(
        'state') == 'down', 5, step=0.2)
    states = states_over(nodes[0], pool('q-any'), 'a')
    t.ok(took is not None and all(st[0] == 'down' for st in states), 'status --json on n1: the '
         'state is the effective one, down by --quorum any, every time it is read over 2 s',
         'down after %s s; then %r' % (took, states))
    a = status_address(nodes[2], pool('q-majority'), 'a')
    t.ok(a and a.get('votes') == want_votes, 'status --json on n3: the votes of n1, n2 and n3',
         json.dumps(a))
    states = states_over(nodes[2], pool('q-majority'), 'a')
    t.ok(all(st[0] == 'up' for st in states), 'status --json on n3: majority is up although n3 '
         'votes down, every time it is read over 2 s', repr(states))
    # n3 votes down on the q-any, q-majority, q-all and q-local targets.
    took, _ = converge(lambda: (node_entry(nodes[0].cluster_status(), 'n3') or {}).get(
        'down_votes') == 4, 5, step=0.3)
    t.ok(took is not None, 'cluster status on n1: n3 has 4 down votes (one per quorum pool)',
         json.dumps(nodes[0].cluster_status()))
    quorum_phase(t, nodes, lambda d: be.set(d), ('n2', 'n3'), 'quorum, backend down for n2, n3')
    quorum_phase(t, nodes, lambda d: be.set(d), ('n1', 'n2', 'n3'), 'quorum, backend down for all')
    hits = dict(be.hits)
    t.ok(all(hits.get(n, 0) > 0 for n in NODES), 'the backend told the nodes apart by their '
         'sockets (probes per node: %r)' % hits, repr(hits))
    # Leave the view of "down for n3 only" for the next scenario.
    quorum_phase(t, nodes, lambda d: be.set(d), ('n3',), 'quorum, back to down for n3 only')
    t.diag('quorum scenarios took %.1f s' % (time.monotonic() - t0))


def scenario_kill(t, env):
    etcd, nodes, be = env['etcd'], env['nodes'], env['backend']
    n1, n2, n3 = nodes
    kv = etcd_keys(etcd, '')
    t.ok(PREFIX + 'nodes/n3' in kv and any(k.startswith(PREFIX + 'votes/n3/') for k in kv),
         'kill: before, etcd holds nodes/n3 and n3\'s votes', 'keys: %s' % sorted(kv))
    lease_ok = all(kv[k]['lease'] != 0 for k in kv
                   if k.startswith(PREFIX + 'nodes/') or k.startswith(PREFIX + 'votes/'))
    t.ok(lease_ok, 'kill: every nodes/ and votes/ key is bound to a lease')
    n3.kill()
    t0 = time.monotonic()

    def gone():
        kv = etcd_keys(etcd, '')
        return not any(k == PREFIX + 'nodes/n3' or k.startswith(PREFIX + 'votes/n3/')
                       for k in kv)
    took, _ = converge(gone, LEASE + 6, step=0.1)
    t.ok(took is not None and took <= LEASE + 2.5,
         'kill: n3\'s node key and votes leave etcd within the lease (%d s) after SIGKILL' % LEASE,
         'took %s' % took)

    def not_live():
        st = n1.cluster_status()
        e = node_entry(st, 'n3')
        return st if st and (e is None or e.get('live') is False) else None
    took, st = converge(not_live, 5, step=0.2)
    t.ok(took is not None, 'kill: n1\'s cluster status shows n3 not live',
         json.dumps(n1.cluster_status()))
    took, _ = converge(lambda: n1.metrics().get('gslbd_cluster_nodes_live') == 2, 3, step=0.2)
    t.ok(took is not None, 'kill: gslbd_cluster_nodes_live 2 on n1',
         {k: v for k, v in n1.metrics().items() if 'cluster' in k})
    got = answers_of([n1, n2], pool('www'))
    t.ok(all(a for a in got.values()), 'kill: n1 and n2 keep answering', repr(got))

    # n3's down votes no longer count: --quorum any is up again on n1 and n2.
    want = tuple(sorted([n1.a_addr, B_ADDR]))
    took, got = wait_answers((n1, n2), pool('q-any'), want, 5)
    t.ok(took is not None, 'kill: without n3\'s votes, --quorum any is up on n1 and n2',
         repr(got))

    # Restarted, n3 publishes its votes again: any is down everywhere again.
    n3.start()
    took, got = converge(lambda: (lambda kv: PREFIX + 'nodes/n3' in kv)(etcd_keys(etcd, '')), 10,
                         step=0.2)
    t.ok(took is not None, 'kill: restarted, n3 is in etcd again', '')
    want = (B_ADDR,)
    took, got = wait_answers(nodes, pool('q-any'), want, 10)
    t.ok(took is not None, 'kill: restarted n3 votes again: --quorum any down on all nodes',
         repr(got))


def scenario_no_quorum(t, env):
    etcd, nodes = env['etcd'], env['nodes']
    n1, n2, n3 = nodes
    pids = [n.pid for n in nodes]
    before_n1 = n1.export()
    before_etcd = etcd_keys(etcd, 'pools/')
    before_log = n1.ctl_json('log', '--limit', '1000').get('entries', [])
    etcd[1].stop()
    etcd[2].stop()
    t.ok(not etcd[1].running() and not etcd[2].running(), 'no quorum: etcd members e2 and e3 '
         'stopped (by PID)')

    def disconnected():
        sts = {}
        for n in nodes:
            rc, out, err, _ = n.ctl('--json', 'cluster', 'status', timeout=15)
            try:
                st = json.loads(out) if rc == 0 else None
            except ValueError:
                st = None
            if not st or st.get('connected') is not False:
                return None
            sts[n.name] = st
        return sts
    took, sts = converge(disconnected, 20, step=0.3)
    t.ok(took is not None, 'no quorum: gslbctl cluster status exits 0 with "connected": false on '
         'every node (%s s)' % ('%.1f' % took if took else '-'),
         '\n'.join('%s: %r' % (n.name, n.ctl('--json', 'cluster', 'status', timeout=10)[:3])
                   for n in nodes))
    m = n2.metrics()
    t.ok(m.get('gslbd_cluster_connected') == 0, 'no quorum: gslbd_cluster_connected 0 on n2',
         {k: v for k, v in m.items() if 'cluster' in k})
    bad = []
    for _ in range(5):
        for n in nodes:
            a = n.ask(pool('www'))
            if not a or '192.0.2.2' not in a:
                bad.append((n.name, a))
        time.sleep(0.1)
    t.ok(not bad, 'no quorum: every node keeps answering from its mirror', repr(bad))
    rc, out, err, secs = n1.ctl('member', 'add', pool('www'), 'lost', '--address', '192.0.2.77')
    t.ok(rc == 1 and one_line(err), 'no quorum: a gslbctl change exits 1 with one line '
         '(%.1f s)' % secs, 'exit %d\nstdout: %s\nstderr: %s' % (rc, out, err))
    t.eq(n1.export(), before_n1, 'no quorum: the refused change is not in n1\'s database')
    log_now = n1.ctl_json('log', '--limit', '1000').get('entries', [])
    t.eq(len(log_now), len(before_log), 'no quorum: no journal entry for the refused change')

    # A node restarted while etcd has no quorum answers from its database at once.
    rc, secs = n3.stop()
    t.ok(rc == 0 and secs < 4, 'no quorum: n3 stops on SIGTERM, exit 0, within 4 s although it '
         'cannot revoke its lease', 'exit %s after %.1f s' % (rc, secs))
    n3.start(wait=False)
    secs = n3.wait_ready(5)
    a = n3.ask(pool('www'))
    t.ok(a and '192.0.2.2' in a and '192.0.2.3' in a, 'no quorum: n3 restarted answers its '
         'mirrored pools at once (%.2f s)' % secs, repr(a))

    etcd[1].start()
    etcd[2].start()
    t.ok(etcd.wait_healthy(timeout=15), 'no quorum: e2 and e3 restarted, etcd healthy')
    t.eq(etcd_keys(etcd, 'pools/'), before_etcd, 'no quorum: the refused change never reached '
         'etcd')

    def connected():
        for n in nodes:
            st = n.cluster_status()
            if not st or st.get('connected') is not True:
                return None
        return True
    took, _ = converge(connected, 15, step=0.3)
    t.ok(took is not None, 'back: every node connected again (%s s), no gslbd restart'
         % ('%.1f' % took if took else '-'),
         '\n'.join('%s: %s' % (n.name, n.cluster_status()) for n in nodes))
    t.eq([n.pid for n in nodes[:2]], pids[:2], 'back: n1 and n2 are the same processes')
    timed_change(t, 'back', n2, nodes,
                 ['member', 'add', pool('www'), 'w4', '--address', '192.0.2.4'],
                 lambda a: a is not None and '192.0.2.4' in a, pool('www'), limit=2.0)


def scenario_compaction(t, env):
    etcd, nodes = env['etcd'], env['nodes']
    n1, n2, n3 = nodes
    rc, secs = n2.stop()
    t.ok(rc == 0, 'compaction: n2 stopped with SIGTERM, exit 0', 'exit %s' % rc)
    took, _ = converge(lambda: PREFIX + 'nodes/n2' not in etcd_keys(etcd, 'nodes/'), 5, step=0.1)
    t.ok(took is not None and took <= 1.5, 'stop: n2 revoked its lease: nodes/n2 gone at once',
         'took %s' % took)
    kv = etcd_keys(etcd, '')
    t.ok(not any(k.startswith(PREFIX + 'votes/n2/') for k in kv), 'stop: n2\'s votes gone too',
         repr(sorted(kv)))
    # gslbctl on the stopped node's database: committed, but never mirrored locally.
    rc, out, err, secs = n2.ctl('member', 'add', pool('www'), 'w6', '--address', '192.0.2.6')
    t.ok(rc == 0 and 4 <= secs < 10 and re.search(r'revision \d+', out + err) and
         re.search(r'mirror|caught up', out + err),
         'wait: gslbctl on the stopped n2 commits, waits about 5 s, exits 0 saying the local '
         'node had not mirrored it (%.1f s)' % secs,
         'exit %d\nstdout: %s\nstderr: %s' % (rc, out, err))
    rc, out, err, secs = n2.ctl('pool', 'add', pool('nw'), pre=['--no-wait'])
    t.ok(rc == 0 and secs < 2, '--no-wait: gslbctl on the stopped n2 exits 0 at once (%.1f s)'
         % secs, 'exit %d\nstdout: %s\nstderr: %s' % (rc, out, err))
    took, got = wait_answers([n1, n3], pool('www'), lambda a: a and '192.0.2.6' in a, 2)
    t.ok(took is not None, 'wait: n1 and n3 answer the change made with n2 stopped', repr(got))
    changes = 0
    # Without --no-wait: each change reads the local mirror, which must hold the one before.
    for i in range(8):
        n1.ctl_ok('pool', 'add', pool('c%d' % i), '--ttl', '30')
        n1.ctl_ok('member', 'add', pool('c%d' % i), 'x', '--address', '192.0.2.%d' % (10 + i))
        changes += 2
    for i in range(0, 8, 2):
        n1.ctl_ok('pool', 'rm', pool('c%d' % i))
        changes += 1
    n1.ctl_ok('pool', 'rm', pool('del'))
    n1.ctl_ok('member', 'set', pool('www'), 'w2', '--address', '192.0.2.22')
    changes += 2
    rev = etcd.compact()
    t.diag('compaction: %d changes, compacted at revision %d' % (changes, rev))
    n2.start()
    took, _ = converge(lambda: same_export(n1, n2), 10, step=0.2)
    t.ok(took is not None, 'compaction: restarted n2 mirrors the configuration again (export '
         'equal to n1\'s)', 'n1: %s\nn2: %s' % (json.dumps(n1.export())[:1500],
                                                  json.dumps(n2.export())[:1500]))
    m = n2.ask(pool('del'))
    r = n2.query(pool('del'))
    t.ok(r is not None and r.rcode() == dns.rcode.NXDOMAIN and not m,
         'compaction: the pool deleted while n2 was down is gone from n2 (NXDOMAIN)',
         r.to_text() if r else 'no answer')
    a = n2.ask(pool('www'))
    t.ok(a and '192.0.2.22' in a, 'compaction: n2 answers the changes made meanwhile', repr(a))
    t.ok(n2.ask(pool('c1')) == ('192.0.2.11',) and not n2.ask(pool('c2')),
         'compaction: added pools there, added-then-deleted pools not', '')
    r = n2.look(pool('nw'))
    a = n2.ask(pool('www'))
    t.ok(r and r[0] == 'NOERROR' and a and '192.0.2.6' in a, 'compaction: n2 has the changes '
         'its own gslbctl made while it was stopped', repr((r, a)))
    mt = n2.metrics()
    t.ok(mt.get('gslbd_cluster_resyncs_total', 0) >= 1, 'compaction: n2 did a full resync '
         '(gslbd_cluster_resyncs_total %s)' % mt.get('gslbd_cluster_resyncs_total'),
         {k: v for k, v in mt.items() if 'cluster' in k})

    # The nodes' own keys (nodes/, votes/) move etcd's revision too: n2 must have reached at
    # least the revision of the last change.
    def caught_up():
        st = n2.cluster_status()
        e = node_entry(st, 'n2')
        return st if (e and e.get('live') is True and e.get('revision', 0) >= rev and
                      st.get('revision', 0) >= rev) else None
    took, _ = converge(caught_up, 8, step=0.3)
    t.ok(took is not None, 'compaction: n2 is live and reports a revision at least the last '
         'change\'s (%d)' % rev,
         'etcd %d, n2: %s' % (etcd.revision(), json.dumps(n2.cluster_status())))
    t.ok(n2.metrics().get('gslbd_cluster_revision', -1) <= etcd.revision(),
         'compaction: gslbd_cluster_revision is not past etcd\'s revision')


def keep_up(t, nodes):
    """After a scenario: a node that died is a failure, restarted for the next scenarios; one
    that cannot be restarted ends the test (False)."""
    for n in nodes:
        if n.alive():
            continue
        t.ok(False, 'gslbd %s is running after the scenario' % n.name,
             'it exited with %s' % (n.proc.returncode if n.proc else 'never started'))
        try:
            n.start()
        except RuntimeError as e:
            t.ok(False, 'gslbd %s restarts: the remaining scenarios cannot run' % n.name, str(e))
            return False
    return True


def run_scenarios(t, nodes, env, scenarios):
    """Each scenario in turn, timed; one that raises is a failure and the next ones still run,
    unless a node cannot be restarted.  Then every node still up must stop cleanly."""
    for fn in scenarios:
        s0 = time.monotonic()
        before = t.failed
        try:
            fn(t, env)
        except Exception:
            t.ok(False, '%s raised an exception' % fn.__name__, traceback.format_exc())
        t.diag('%s: %.1f s%s' % (fn.__name__, time.monotonic() - s0,
                                 '' if t.failed == before else ', FAILED'))
        if not keep_up(t, nodes):
            break
    t.diag('the slowest gslbctl cluster status took %.1f s'
           % max(getattr(n, 'status_secs', 0.0) for n in nodes))
    for n in [n for n in nodes if n.alive()]:
        rc, secs = n.stop()
        t.ok(rc == 0, 'gslbd %s exits 0 on SIGTERM (%.1f s)' % (n.name, secs), 'exit %s' % rc)


def main(t):
    reason = ec.have_etcd()
    if reason:
        g.skip_all(reason)
    ec.install_term_handler()
    t0 = time.monotonic()
    etcd = ec.EtcdCluster(3, progress_notify='1s')
    nodes = []
    backend = None
    try:
        etcd.start(timeout=20)
        t.ok(True, 'etcd: 3 members healthy on %s (%.1f s)' % (etcd.endpoints,
                                                                time.monotonic() - t0))
        ns_addrs = ['127.0.1.%d' % i for i in range(1, 4)]
        for name, addr in zip(NODES, ns_addrs):
            nodes.append(Node(name, addr, etcd.endpoints, ns_addrs))
        backend = ViewBackend('127.0.2.1', {n.name: n for n in nodes})
        for n in nodes:
            n.a_addr = backend.host
        t.on_fail.append(lambda: [n.dump(t) for n in nodes])
        t.on_fail.append(lambda: t.diag(etcd.logs(1500)))
        env = {'etcd': etcd, 'nodes': nodes, 'backend': backend}
        configure_standalone(nodes[0], backend.host, backend.port)
        run_scenarios(t, nodes, env,
                      (scenario_import, scenario_propagation, scenario_dnssec, scenario_race,
                       scenario_atomic,
                       scenario_quorum, scenario_kill, scenario_no_quorum, scenario_frozen,
                       scenario_compaction))
    finally:
        if t.failed:
            for f in t.on_fail:
                try:
                    f()
                except Exception:
                    pass
            t.on_fail.clear()
        if backend:
            backend.close()
        for n in nodes:
            n.cleanup()
        etcd.close()
        t.diag('total %.1f s' % (time.monotonic() - t0))


if __name__ == '__main__':
    g.run(main)
