#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/cluster.sh's measurements (README "Two or more nameservers"): a three-member etcd and three
gslbd nodes on loopback.

1. propagation: a change made with gslbctl on one node (each in turn), until every node answers it;
2. mirror: POOLS pools imported into etcd, then a node started with an empty database, until it has
   mirrored them all and answers the last one;
3. steady state: TARGETS health-check targets on three nodes, the etcd revisions written while no
   verdict changes (nothing but lease keepalives should reach etcd), then while every verdict flips.

Usage: cluster.py BUILDDIR WORKDIR CHANGES POOLS TARGETS"""
import json, os, signal, socket, statistics, subprocess, sys, threading, time
import dns.exception, dns.message, dns.query, dns.rdatatype

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
import etcdcluster  # noqa: E402  (the tests' etcd harness: members on free loopback ports)

builddir, work = sys.argv[1], sys.argv[2]
CHANGES, POOLS, TARGETS = (int(x) for x in sys.argv[3:6])
GSLBD = os.path.join(builddir, "gslbd")
GSLBCTL = os.path.join(builddir, "gslbctl")
ZONE = "glb.test"
rows = []
procs = []


def row(what, fig):
    rows.append((what, fig))
    print(f"  {what}: {fig}", flush=True)


def free_port():
    return etcdcluster.free_tcp_ports(1)[0]


def ask(addr, port, name, timeout=0.2):
    q = dns.message.make_query(name, "A")
    r = dns.query.udp(q, addr, port=port, timeout=timeout)
    return sorted(rd.to_text() for rrs in r.answer if rrs.rdtype == dns.rdatatype.A for rd in rrs)


def ctl(db, *args, check=True, extra=()):
    t = time.monotonic()
    p = subprocess.run([GSLBCTL, "--db", db, *extra, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"gslbctl {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return time.monotonic() - t, p.stdout


def write_zone(d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, ZONE + ".zone"), "w") as f:
        f.write(f"$ORIGIN {ZONE}.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n"
                "@ NS ns1\nns1 A 127.0.0.1\n")


class Node:
    def __init__(self, tag, addr, urls, db=None, lease=10):
        self.tag, self.addr, self.port = tag, addr, free_port()
        self.db = db or os.path.join(work, tag + ".db")
        self.zones = os.path.join(work, "zones")
        self.metrics = free_port()
        self.t0 = time.monotonic()
        self.log = open(os.path.join(work, tag + ".log"), "w")
        self.p = subprocess.Popen([GSLBD, "--listen", f"{addr}:{self.port}", "--zones", self.zones,
                                   "--db", self.db, "--threads", "1", "--cluster", urls,
                                   "--node", tag, "--cluster-lease", str(lease),
                                   "--metrics", f"127.0.0.1:{self.metrics}"],
                                  stdout=subprocess.DEVNULL, stderr=self.log)
        procs.append(self.p)

    def metric(self, name):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return None

    def wait(self, ok, limit, what):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise SystemExit(f"{self.tag}: gslbd exited {self.p.returncode}; see {self.log.name}")
            try:
                if ok():
                    return time.monotonic()
            except (dns.exception.Timeout, OSError, ValueError):
                pass
            time.sleep(0.002)
        raise SystemExit(f"{self.tag}: {what} not within {limit} s; see {self.log.name}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def pool_json(i, check=None):
    p = {"name": f"p{i}.{ZONE}.", "policy": "weighted", "ttl": 30,
         "members": [{"name": "a", "addresses": [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"]},
                     {"name": "b", "addresses": [f"10.200.{(i >> 8) & 255}.{i & 255}"], "weight": 0}]}
    if check:
        p["check"] = check
    return p


def apply_pools(db, pools):
    path = os.path.join(work, "pools.json")
    with open(path, "w") as f:
        json.dump({"version": 1, "pools": pools}, f, separators=(",", ":"))
    return ctl(db, "apply", path)[0]


def start_nodes(etcd, urls):
    """Import pool p0 and TARGETS checked pools into etcd, start three nodes on it."""
    seed = os.path.join(work, "seed.db")
    ctl(seed, "init")
    apply_pools(seed, [pool_json(0)] + checked_pools())
    secs, _ = ctl(seed, "cluster", "import", extra=("--cluster", urls))
    row(f"gslbctl cluster import of {TARGETS + 1} pools", f"{secs:.2f} s")
    nodes = [Node(f"n{i}", f"127.0.0.{40 + i}", urls) for i in (1, 2, 3)]
    name = f"p0.{ZONE}."
    for n in nodes:
        n.wait(lambda n=n: ask(n.addr, n.port, name) == ["10.0.0.0"], 60, "the first pool")
    return nodes


def propagation(etcd, urls, nodes):
    name = f"p0.{ZONE}."
    delays = {n.tag: [] for n in nodes}
    writes = []
    for k in range(CHANGES):
        src = nodes[k % 3]
        addr = f"10.99.{k >> 8}.{k & 255}"
        t0 = time.monotonic()
        secs, _ = ctl(src.db, "member", "set", name, "a", "--address", addr, extra=("--no-wait",))
        writes.append(secs)
        # Every node asked in turn, each until it answers the change: each node's own delay.
        pending = list(nodes)
        while pending:
            if time.monotonic() - t0 > 5:
                raise SystemExit(f"change {k}: {[n.tag for n in pending]} not within 5 s")
            for n in list(pending):
                try:
                    seen = ask(n.addr, n.port, name, 0.05) == [addr]
                except (dns.exception.Timeout, OSError):
                    seen = False
                if seen:
                    delays[n.tag].append(time.monotonic() - t0)
                    pending.remove(n)
            time.sleep(0.001)
    for n in nodes:
        d = sorted(delays[n.tag])
        row(f"change on any node to the answer on {n.tag} ({CHANGES} changes)",
            f"median {statistics.median(d) * 1000:.0f} ms, max {d[-1] * 1000:.0f} ms")
    allv = sorted(x for v in delays.values() for x in v)
    row("change to the answer, all nodes", f"median {statistics.median(allv) * 1000:.0f} ms, "
        f"90th {allv[int(len(allv) * 0.9)] * 1000:.0f} ms, max {allv[-1] * 1000:.0f} ms")
    row("gslbctl change with --no-wait (etcd commit included)",
        f"median {statistics.median(writes) * 1000:.0f} ms")


def mirror(etcd, urls):
    seed = os.path.join(work, "big.db")
    ctl(seed, "init")
    secs = apply_pools(seed, [pool_json(i) for i in range(POOLS)])
    row(f"gslbctl apply {POOLS} pools (standalone, for the import)", f"{secs:.1f} s")
    etcd.delete("/gslbd/", prefix=True)
    secs, _ = ctl(seed, "cluster", "import", extra=("--cluster", urls))
    row(f"gslbctl cluster import of {POOLS} pools", f"{secs:.2f} s")
    rev = etcd.revision()
    t0 = time.monotonic()
    n = Node("empty", "127.0.0.44", urls)
    last = f"p{POOLS - 1}.{ZONE}."
    want = pool_json(POOLS - 1)["members"][0]["addresses"]
    t_rev = n.wait(lambda: (n.metric("gslbd_cluster_revision") or 0) >= rev, 120,
                   "the mirror")
    t_ans = n.wait(lambda: ask(n.addr, n.port, last) == want, 120, "the last pool")
    row(f"empty node to {POOLS} pools mirrored (applied revision = etcd's)", f"{t_rev - t0:.1f} s")
    row(f"empty node to the last of {POOLS} pools answered", f"{t_ans - t0:.1f} s")
    n.stop()


def checked_pools():
    """TARGETS pools, each with a TCP check of a port on a closed loopback address: every verdict
    settles to down, then nothing changes."""
    check = {"type": "tcp", "port": 9, "interval": 10, "timeout": 1, "rise": 1, "fall": 1}
    pools = []
    for i in range(TARGETS):
        p = pool_json(100000 + i, dict(check, port=1 + i % 60000))
        p["members"] = p["members"][:1]
        p["members"][0]["addresses"] = [f"127.1.{(i >> 8) & 255}.{i & 255}"]
        pools.append(p)
    return pools


def steady(etcd):
    # Settle: every node votes on every target (3 x TARGETS votes), then one probe round more.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        votes = len(etcd.get_prefix("/gslbd/votes/")[0])
        if votes >= 3 * TARGETS:
            break
        time.sleep(1)
    row(f"votes in etcd for {TARGETS} targets on 3 nodes", f"{votes}")
    time.sleep(12)
    r0 = etcd.revision()
    time.sleep(30)
    r1 = etcd.revision()
    row(f"etcd revisions written in 30 s of steady state ({TARGETS} targets, 3 nodes)", f"{r1 - r0}")


def main():
    os.makedirs(work, exist_ok=True)
    write_zone(os.path.join(work, "zones"))
    etcd = etcdcluster.EtcdCluster(3)
    etcd.start()
    urls = etcd.urls()
    nodes = []
    try:
        nodes = start_nodes(etcd, urls)
        steady(etcd)
        propagation(etcd, urls, nodes)
        for n in nodes:
            n.stop()
        nodes = []
        mirror(etcd, urls)
    finally:
        for n in nodes:
            n.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        etcd.close()
    print()
    print("| measurement | figure |")
    print("| --- | --- |")
    for what, fig in rows:
        print(f"| {what} | {fig} |")


main()
