# SPDX-License-Identifier: MIT
"""Test harness for the cluster (README "Two or more nameservers"): an etcd cluster of 1 or 3
members from the distribution's /usr/bin/etcd, and network namespaces for the root-only tier.

EtcdCluster starts its members on free 127.0.0.1 ports (client and peer), or on the 198.18.0.N
addresses of namespaces made by Netns, in a temporary directory, with --pre-vote=true and short
raft timers; every wait is bounded; members are stopped, killed, frozen (SIGSTOP), thawed and
restarted by the PID recorded when they were started, and everything this module started is
stopped and removed at exit, whatever happens (only those PIDs, only those namespaces).

Netns builds the layout of a small LAN that exists only inside namespaces: a switch namespace
holding a bridge, and host namespaces each with one veth "eth0" (198.18.0.N/24, the RFC 2544
benchmarking range) created directly inside the namespaces, so nothing at all is added to the
root namespace and there is no default route: no packet can leave.  The 198.18 addresses exist
only inside those namespaces; the root namespace reaches them only through Netns.socket() (a
socket created inside a namespace) or Netns.run() (a command run inside one).
"""

import atexit
import base64
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

ETCD = os.environ.get('GSLB_ETCD') or '/usr/bin/etcd'
ETCDCTL = os.environ.get('GSLB_ETCDCTL') or '/usr/bin/etcdctl'
IP = shutil.which('ip') or '/usr/sbin/ip'
NFT = shutil.which('nft') or '/usr/sbin/nft'

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL('libc.so.6', use_errno=True)
_cleanups = []   # callables run once at exit, newest first
_cleanup_lock = threading.Lock()


def _run_cleanups():
    with _cleanup_lock:
        fns = list(reversed(_cleanups))
        _cleanups.clear()
    for fn in fns:
        try:
            fn()
        except Exception:   # cleanup goes on whatever one step says
            pass


atexit.register(_run_cleanups)


def _on_term(signum, frame):
    # automake's harness (or a user) ends a hung test with SIGTERM: run the cleanups first.
    raise SystemExit(128 + signum)


def install_term_handler():
    """Turn SIGTERM and SIGHUP into SystemExit, so that atexit and finally clauses run."""
    for s in (signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(s, _on_term)
        except (ValueError, OSError):
            pass


def _pdeathsig():
    # The member dies with the test process, even one killed with SIGKILL.  PR_SET_PDEATHSIG
    # survives the execve of ip netns exec and of etcd (neither is set-user-ID).
    try:
        _libc.prctl(1, signal.SIGKILL)
    except Exception:
        pass


def have_etcd():
    """None when etcd and etcdctl are there, else the reason to skip."""
    for path in (ETCD, ETCDCTL):
        if not os.access(path, os.X_OK):
            return 'no %s (apt-get install etcd-server etcd-client)' % path
    return None


def free_tcp_ports(n, host='127.0.0.1'):
    """n distinct TCP ports free on host (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_pid_gone(proc, timeout):
    """Wait for a Popen to exit: True if it did within timeout seconds."""
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _tempdir(prefix):
    # etcd preallocates a 64 MB WAL per member and syncs it often: a tmpfs keeps that cheap.
    base = '/dev/shm' if os.access('/dev/shm', os.W_OK) else None
    return tempfile.mkdtemp(prefix=prefix, dir=base)


# ---------------------------------------------------------------------------------------------
# Network namespaces

class NetnsUnavailable(Exception):
    pass


def _setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, 'setns %s: %s' % (path, os.strerror(e)))
    finally:
        os.close(fd)


_ns_lock = threading.Lock()


def socket_in(ns, family=socket.AF_INET, type=socket.SOCK_STREAM):
    """A socket created inside network namespace ns (None: here).  setns() moves only the calling
    thread, and a socket stays in the namespace it was created in, so the thread moves there,
    creates the socket and moves back."""
    if ns is None:
        return socket.socket(family, type)
    with _ns_lock:
        home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
        try:
            _setns('/run/netns/' + ns)
            try:
                return socket.socket(family, type)
            finally:
                if _libc.setns(home, _CLONE_NEWNET) != 0:
                    # A thread stuck in another namespace would poison every later step.
                    os._exit(99)
        finally:
            os.close(home)


class Netns:
    """A switch namespace with a bridge, and host namespaces with one veth each.

    hosts: the host names (short, e.g. 'n1'); host i (1-based, in that order) gets 198.18.0.i/24
    on its eth0 unless addrs gives its address.  Namespace names carry the test's PID, so runs
    in parallel do not clash."""

    def __init__(self, hosts, addrs=None, tag=None):
        self.tag = tag or 'gt%d' % os.getpid()
        self.hosts = list(hosts)
        self.addrs = dict(addrs or {})
        for i, h in enumerate(self.hosts, 1):
            self.addrs.setdefault(h, '198.18.0.%d' % i)
        self.switch = self.tag + '-sw'
        self.created = []
        self.tables = set()   # (ns, table) made by partition()

    @staticmethod
    def unavailable():
        """None when namespaces can be made here, else the reason to skip."""
        if os.geteuid() != 0:
            return 'not root: the namespace tier needs root (ip netns add, nft)'
        for path, pkg in ((IP, 'iproute2'), (NFT, 'nftables')):
            if not os.access(path, os.X_OK):
                return 'no %s (apt-get install %s)' % (path, pkg)
        probe = 'gt%d-probe' % os.getpid()
        p = subprocess.run([IP, 'netns', 'add', probe], capture_output=True, text=True)
        if p.returncode != 0:
            return 'ip netns add refused: %s' % (p.stderr.strip() or p.returncode)
        try:
            q = subprocess.run([IP, 'netns', 'exec', probe, NFT, 'list', 'ruleset'],
                               capture_output=True, text=True)
            if q.returncode != 0:
                return 'nft refused inside a namespace: %s' % q.stderr.strip()
        finally:
            subprocess.run([IP, 'netns', 'del', probe], capture_output=True)
        return None

    def ns(self, host):
        return '%s-%s' % (self.tag, host)

    def addr(self, host):
        return self.addrs[host]

    def _ip(self, *args):
        p = subprocess.run([IP] + list(args), capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise NetnsUnavailable('ip %s: %s' % (' '.join(args), p.stderr.strip()))

    def _add_ns(self, name):
        self._ip('netns', 'add', name)
        self.created.append(name)
        self._ip('-n', name, 'link', 'set', 'lo', 'up')

    def up(self):
        with _cleanup_lock:
            _cleanups.append(self.down)
        try:
            self._add_ns(self.switch)
            self._ip('-n', self.switch, 'link', 'add', 'br0', 'type', 'bridge')
            self._ip('-n', self.switch, 'link', 'set', 'br0', 'up')
            for i, h in enumerate(self.hosts, 1):
                ns = self.ns(h)
                self._add_ns(ns)
                # Both ends are created directly in their namespaces: nothing in ours.
                self._ip('link', 'add', 'gv%d' % i, 'netns', self.switch, 'type', 'veth', 'peer',
                         'name', 'eth0', 'netns', ns)
                self._ip('-n', self.switch, 'link', 'set', 'gv%d' % i, 'master', 'br0')
                self._ip('-n', self.switch, 'link', 'set', 'gv%d' % i, 'up')
                self._ip('-n', ns, 'addr', 'add', self.addrs[h] + '/24', 'dev', 'eth0')
                self._ip('-n', ns, 'link', 'set', 'eth0', 'up')
        except Exception:
            self.down()
            raise
        return self

    def add_addr(self, host, addr, dev='lo'):
        """Another address inside host's namespace (e.g. a backend's, on lo as a /32)."""
        self._ip('-n', self.ns(host), 'addr', 'add', addr + '/32', 'dev', dev)

    def args(self, host, argv):
        """argv run inside host's namespace (ip netns exec execs it: the PID is the program's)."""
        return [IP, 'netns', 'exec', self.ns(host)] + [str(a) for a in argv]

    def run(self, host, argv, timeout=20, input=None):
        """Run argv inside host's namespace: (exit status, stdout, stderr)."""
        try:
            p = subprocess.run(self.args(host, argv), capture_output=True, text=True,
                               errors='replace', timeout=timeout, input=input)
        except subprocess.TimeoutExpired:
            return -1, '', 'timed out after %s s' % timeout
        return p.returncode, p.stdout, p.stderr

    def socket(self, host, family=socket.AF_INET, type=socket.SOCK_STREAM):
        return socket_in(self.ns(host), family, type)

    def partition(self, host, ports, lo=False, direction='both'):
        """Drop TCP to and from ports (e.g. etcd's client and peer ports) on host's eth0 (and on
        its lo too when lo), in the inet table "part" of host's namespace.  direction: 'both',
        'in' or 'out'.  DNS and health probes still flow."""
        ns = self.ns(host)
        plist = '{ %s }' % ', '.join(str(p) for p in ports)
        rules = []
        ifs = ['eth0'] + (['lo'] if lo else [])
        ifset = '{ %s }' % ', '.join('"%s"' % i for i in ifs)
        if direction in ('both', 'in'):
            rules.append('chain in { type filter hook input priority 0; '
                         'iifname %s tcp dport %s drop; iifname %s tcp sport %s drop; }'
                         % (ifset, plist, ifset, plist))
        if direction in ('both', 'out'):
            rules.append('chain out { type filter hook output priority 0; '
                         'oifname %s tcp dport %s drop; oifname %s tcp sport %s drop; }'
                         % (ifset, plist, ifset, plist))
        text = 'table inet part {\n%s\n}\n' % '\n'.join(rules)
        p = subprocess.run(self.args(host, [NFT, '-f', '-']), input=text, capture_output=True,
                           text=True, timeout=10)
        if p.returncode != 0:
            raise RuntimeError('nft in %s: %s\n%s' % (ns, p.stderr.strip(), text))
        self.tables.add(ns)

    def isolate(self, host):
        """Drop everything on host's eth0 (its lo still works)."""
        ns = self.ns(host)
        text = ('table inet part {\n'
                'chain in { type filter hook input priority 0; iifname "eth0" drop; }\n'
                'chain out { type filter hook output priority 0; oifname "eth0" drop; }\n}\n')
        p = subprocess.run(self.args(host, [NFT, '-f', '-']), input=text, capture_output=True,
                           text=True, timeout=10)
        if p.returncode != 0:
            raise RuntimeError('nft in %s: %s' % (ns, p.stderr.strip()))
        self.tables.add(ns)

    def heal(self, host):
        ns = self.ns(host)
        if ns in self.tables:
            subprocess.run(self.args(host, [NFT, 'delete', 'table', 'inet', 'part']),
                           capture_output=True, timeout=10)
            self.tables.discard(ns)

    def down(self):
        """Delete every namespace this object made (their veths go with them)."""
        for name in reversed(self.created):
            subprocess.run([IP, 'netns', 'del', name], capture_output=True, timeout=10)
        self.created = []
        self.tables.clear()


# ---------------------------------------------------------------------------------------------
# HTTP to etcd's JSON gateway (used for quick health polls; works inside namespaces)

class _NsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, ns, timeout):
        super().__init__(host, port, timeout=timeout)
        self._ns = ns

    def connect(self):
        s = socket_in(self._ns, socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect((self.host, self.port))
        except OSError:
            s.close()
            raise
        self.sock = s


def http_request(ns, host, port, method, path, body=None, timeout=2.0, headers=None):
    """(status, body bytes); raises OSError on a connection failure or timeout."""
    c = _NsHTTPConnection(host, port, ns, timeout)
    try:
        data = None if body is None else (body if isinstance(body, bytes) else
                                          json.dumps(body).encode())
        c.request(method, path, body=data, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    except http.client.HTTPException as e:
        raise OSError(str(e))
    finally:
        c.close()


def unb64(s):
    return base64.b64decode(s or '').decode('utf-8', 'replace')


# ---------------------------------------------------------------------------------------------
# etcd

class Member:
    """One etcd member: started, stopped, killed, frozen and restarted by its recorded PID."""

    def __init__(self, cluster, idx, name, host, client_port, peer_port, ns_host=None):
        self.cluster = cluster
        self.idx = idx
        self.name = name
        self.host = host
        self.client_port = client_port
        self.peer_port = peer_port
        self.ns_host = ns_host   # Netns host name, or None
        self.data_dir = os.path.join(cluster.dir, name)
        self.log_path = os.path.join(cluster.dir, name + '.log')
        self.proc = None
        self.paused = False
        self.starts = 0

    @property
    def client_url(self):
        return 'http://%s:%d' % (self.host, self.client_port)

    @property
    def peer_url(self):
        return 'http://%s:%d' % (self.host, self.peer_port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def argv(self):
        c = self.cluster
        args = [ETCD, '--name', self.name, '--data-dir', self.data_dir,
                '--listen-client-urls', self.client_url,
                '--advertise-client-urls', self.client_url,
                '--listen-peer-urls', self.peer_url,
                '--initial-advertise-peer-urls', self.peer_url,
                '--initial-cluster', c.initial_cluster(),
                '--initial-cluster-state', 'new',
                '--initial-cluster-token', c.token,
                '--pre-vote=true',
                '--heartbeat-interval', str(c.heartbeat_ms),
                '--election-timeout', str(c.election_ms),
                '--snapshot-count', '10000',
                '--log-level', 'warn', '--logger', 'zap', '--log-outputs', 'stderr']
        if c.progress_notify:
            args += ['--experimental-watch-progress-notify-interval', c.progress_notify]
        if self.ns_host:
            return c.netns.args(self.ns_host, args)
        return args

    def start(self):
        """Start (or restart) the member; the previous process must have exited (its ports)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError('etcd %s still running (PID %d)' % (self.name, self.proc.pid))
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, preexec_fn=_pdeathsig)
        finally:
            log.close()
        self.paused = False
        self.starts += 1
        return self

    def _signal(self, signum):
        if self.running():
            os.kill(self.proc.pid, signum)

    def stop(self, timeout=5.0):
        """SIGTERM, SIGKILL after timeout; waits for the PID to be gone.  Returns its status."""
        if self.proc is None:
            return None
        if self.paused:
            self.resume()
        self._signal(signal.SIGTERM)
        if not wait_pid_gone(self.proc, timeout):
            self._signal(signal.SIGKILL)
            self.proc.wait(5)
        return self.proc.returncode

    def kill(self):
        """SIGKILL, then wait for the PID to be gone."""
        if self.proc is None:
            return None
        self._signal(signal.SIGKILL)
        self.proc.wait(5)
        self.paused = False
        return self.proc.returncode

    def pause(self):
        """SIGSTOP: the member is frozen (connections stay open, nothing answers)."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self._signal(signal.SIGCONT)
        self.paused = False

    def restart(self, timeout=5.0):
        self.stop(timeout)
        return self.start()

    def http(self, method, path, body=None, timeout=2.0):
        ns = self.cluster.netns.ns(self.ns_host) if self.ns_host else None
        return http_request(ns, self.host, self.client_port, method, path, body, timeout)

    def healthy(self, timeout=1.0):
        """etcd's /health: the member is up and has a leader."""
        try:
            st, body = self.http('GET', '/health', timeout=timeout)
            return st == 200 and json.loads(body).get('health') in ('true', True)
        except (OSError, ValueError):
            return False

    def status(self, timeout=1.0):
        """POST /v3/maintenance/status: {"leader", "header": {"member_id", ...}, ...} or None."""
        try:
            st, body = self.http('POST', '/v3/maintenance/status', {}, timeout=timeout)
            return json.loads(body) if st == 200 else None
        except (OSError, ValueError):
            return None

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''


class EtcdCluster:
    """n etcd members (1 or 3).  Without netns: on 127.0.0.1 with free client and peer ports.
    With netns (a Netns that is up) and ns_hosts: member i runs inside ns_hosts[i]'s namespace on
    its 198.18 address, on ports client_port/peer_port (not etcd's defaults)."""

    def __init__(self, n=3, heartbeat_ms=50, election_ms=500, progress_notify=None, netns=None,
                 ns_hosts=None, client_port=12379, peer_port=12380, prefix='gslbtest-etcd-'):
        if n < 1:
            raise ValueError('n must be at least 1')
        self.n = n
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.progress_notify = progress_notify
        self.netns = netns
        self.dir = _tempdir(prefix)
        self.token = 'gslbtest-%d-%d' % (os.getpid(), int(time.time() * 1000))
        self.members = []
        self.ctl_ns_host = None   # where etcdctl runs (namespace tier)
        if netns is not None:
            hosts = list(ns_hosts or netns.hosts[:n])
            for i, h in enumerate(hosts):
                self.members.append(Member(self, i, 'e%d' % (i + 1), netns.addr(h),
                                           client_port, peer_port, ns_host=h))
            self.ctl_ns_host = hosts[0]
        else:
            ports = free_tcp_ports(2 * n)
            for i in range(n):
                self.members.append(Member(self, i, 'e%d' % (i + 1), '127.0.0.1',
                                           ports[2 * i], ports[2 * i + 1]))
        with _cleanup_lock:
            _cleanups.append(self.close)

    def __getitem__(self, i):
        return self.members[i]

    def initial_cluster(self):
        return ','.join('%s=%s' % (m.name, m.peer_url) for m in self.members)

    def urls(self, members=None):
        """Client URLs (comma-separated, for --cluster / --endpoints)."""
        ms = self.members if members is None else members
        return ','.join(m.client_url for m in ms)

    @property
    def endpoints(self):
        return self.urls()

    def start(self, timeout=20.0):
        for m in self.members:
            m.start()
        if not self.wait_healthy(timeout=timeout):
            raise RuntimeError('etcd did not become healthy within %.0f s:\n%s'
                               % (timeout, self.logs()))
        return self

    def running(self):
        return [m for m in self.members if m.running() and not m.paused]

    def wait_healthy(self, members=None, timeout=15.0):
        """Every given member (default: every running one) healthy: True, else False after
        timeout seconds."""
        end = time.monotonic() + timeout
        while True:
            ms = self.running() if members is None else members
            if ms and all(m.healthy(0.5) for m in ms):
                return True
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None and (members is None or
                                                                          m in members):
                    if m.proc.returncode not in (-signal.SIGTERM, -signal.SIGKILL, 0):
                        raise RuntimeError('etcd %s exited with %s:\n%s'
                                           % (m.name, m.proc.returncode, m.log()[-3000:]))
            if time.monotonic() > end:
                return False
            time.sleep(0.05)

    def leader(self):
        """The Member that is the raft leader now, or None."""
        for m in self.running():
            st = m.status()
            if st and st.get('leader') and st['leader'] == st.get('header', {}).get('member_id'):
                return m
        return None

    # etcdctl -------------------------------------------------------------------------------
    def ctl(self, *args, endpoints=None, timeout=10, command_timeout='3s', ns_host=None):
        """etcdctl ARGS against the given endpoints (default: all members): (rc, out, err)."""
        eps = endpoints or self.endpoints
        argv = [ETCDCTL, '--endpoints', eps, '--command-timeout', command_timeout,
                '--dial-timeout', '1s'] + [str(a) for a in args]
        env = dict(os.environ, ETCDCTL_API='3')
        host = ns_host or self.ctl_ns_host
        if self.netns is not None and host:
            argv = self.netns.args(host, argv)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, errors='replace',
                               timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return -1, '', 'etcdctl timed out after %s s' % timeout
        return p.returncode, p.stdout, p.stderr

    def ctl_ok(self, *args, **kw):
        rc, out, err = self.ctl(*args, **kw)
        if rc != 0:
            raise RuntimeError('etcdctl %s: exit %d: %s' % (' '.join(map(str, args)), rc,
                                                          err.strip()))
        return out

    def get_prefix(self, prefix, serializable=False, **kw):
        """{key: {"value", "mod_revision", "create_revision", "lease"}} and the revision, from
        etcdctl get --prefix -w json."""
        args = ['get', '--prefix', prefix, '-w', 'json']
        if serializable:
            args += ['--consistency', 's']
        doc = json.loads(self.ctl_ok(*args, **kw))
        out = {}
        for kv in doc.get('kvs', []):
            out[unb64(kv['key'])] = {'value': unb64(kv.get('value')),
                                     'mod_revision': int(kv.get('mod_revision', 0)),
                                     'create_revision': int(kv.get('create_revision', 0)),
                                     'lease': int(kv.get('lease', 0))}
        return out, int(doc['header']['revision'])

    def revision(self, **kw):
        """etcd's current revision."""
        _, rev = self.get_prefix('/gslbtest-revision-probe/', **kw)
        return rev

    def put(self, key, value, **kw):
        return self.ctl_ok('put', key, value, **kw)

    def delete(self, key, prefix=False, **kw):
        return self.ctl_ok('del', key, *(['--prefix'] if prefix else []), **kw)

    def compact(self, revision=None, **kw):
        """etcdctl compact (physical) at revision (default: the current one); returns it."""
        rev = revision if revision is not None else self.revision(**kw)
        self.ctl_ok('compact', str(rev), '--physical', **kw)
        return rev

    def endpoint_status(self, **kw):
        """etcdctl endpoint status -w json, one dict per member that answered."""
        rc, out, err = self.ctl('endpoint', 'status', '-w', 'json', **kw)
        try:
            return json.loads(out) if out.strip() else []
        except ValueError:
            return []

    # the end --------------------------------------------------------------------------------
    def logs(self, tail=2000):
        return '\n'.join('---- etcd %s (PID %s, %s) ----\n%s'
                         % (m.name, m.pid, m.client_url, m.log()[-tail:])
                         for m in self.members)

    def close(self):
        """Stop every member this cluster started (by PID) and remove the data."""
        for m in self.members:
            try:
                if m.proc is not None and m.proc.poll() is None:
                    m.resume()
                    m.kill()
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
