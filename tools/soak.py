#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make soak: a long mixed-load run of the real gslbd, with everything that changes in production
happening at once, then a report of what it cost and what was lost.

    tools/soak.py BUILDDIR [--seconds 600] [--qps 3000] [--port 0]

For SECONDS (default 600; SOAK_SECONDS in the environment) it runs, all on loopback:
  - dnsperf sending QPS UDP queries a second (static names, NXDOMAIN, weighted, failover and geo
    pools, with and without EDNS Client Subnet), and two checkers of its own, one over UDP and one
    over TCP, that send a known query every few milliseconds and check each answer's content;
  - four HTTP backends health-checked every second, two of them flapping (503 / 200) every few
    seconds;
  - the zone file rewritten (serial + 1, renamed into place) every 10 s and the geo file replaced
    every 30 s; SIGHUP every 15 s;
  - gslbctl writers: a weight changed every second, a member drained and put back every 5 s;
  - the database held under an exclusive lock for 5 s every 60 s.
Then it stops gslbd with SIGTERM and prints: RSS after the first minute and at the end (growth),
queries sent and lost, wrong answers, checker timeouts, gslbctl failures, gslbd's error lines and
its exit status.  Exit status 0 when nothing was lost or wrong and gslbd exited 0, else 1.
Not part of `make check`: it is bounded (SECONDS plus about 30 s) but long.
"""

import argparse
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import dns.edns
import dns.message
import dns.query
import dns.rcode

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITES = [("fra", "127.0.0.31"), ("iad", "127.0.0.32"), ("sin", "127.0.0.33"), ("gru", "127.0.0.34")]
FLAPPING = {"sin": 7.0, "gru": 11.0}  # site -> seconds between flips


def udp_rcvbuf_errors():
    """The kernel's count of UDP datagrams dropped because a socket's receive buffer was full
    (/proc/net/snmp, this network namespace): queries lost before gslbd could read them."""
    with open('/proc/net/snmp') as f:
        rows = [line.split() for line in f if line.startswith('Udp:')]
    return int(rows[1][rows[0].index('RcvbufErrors')])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Soak:
    def __init__(self, builddir, seconds, qps, port):
        self.builddir = builddir
        self.seconds = seconds
        self.qps = qps
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.work = tempfile.mkdtemp(prefix="gslbd-soak.")
        self.db = os.path.join(self.work, "gslb.db")
        self.zones = os.path.join(self.work, "zones")
        self.geo = os.path.join(self.work, "geo.mmdb")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.notes = []
        self.procs = []
        self.gslbd = None
        self.serial = 2026010100

    # -- bookkeeping ------------------------------------------------------------------------
    def count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def note(self, text):
        with self.lock:
            if len(self.notes) < 50:
                self.notes.append(text)
        self.count("notes")

    def gslbctl(self, *args, quiet=True):
        cmd = [os.path.join(self.builddir, "gslbctl"), "--db", self.db]
        if quiet:
            cmd.append("--quiet")
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)

    def must(self, *args):
        r = self.gslbctl(*args)
        if r.returncode != 0:
            raise SystemExit("soak: gslbctl %s: %s" % (" ".join(args), r.stderr.strip()))

    # -- set-up -----------------------------------------------------------------------------
    def write_zone(self):
        self.serial += 1
        text = open(os.path.join(SRC, "zones", "demo.test.zone")).read()
        text = re.sub(r"\b2024010101\b", str(self.serial), text, count=1)
        text += "\nsoak\tIN TXT\t\"serial %d\"\n" % self.serial
        tmp = os.path.join(self.work, "zone.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.zones, "demo.test.zone"))

    def replace_geo(self):
        tmp = self.geo + ".tmp"
        shutil.copyfile(os.path.join(SRC, "geoip", "gslb-test-city.mmdb"), tmp)
        os.rename(tmp, self.geo)

    def setup(self):
        os.mkdir(self.zones)
        self.write_zone()
        self.replace_geo()
        for name, addr in SITES:
            p = subprocess.Popen([sys.executable, os.path.join(SRC, "tests", "backend.py"),
                                  "--host", addr, "--port", "0"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline().split()
            if len(line) != 2 or line[0] != "ready":
                raise SystemExit("soak: backend %s did not start" % name)
            self.procs.append(p)
            setattr(self, "port_" + name, int(line[1]))
        self.must("init")
        for pool, policy in (("app", "weighted"), ("fail", "failover"), ("geo", "geo")):
            self.must("pool", "add", pool + ".demo.test", "--policy", policy, "--ttl", "30",
                      "--degraded-ttl", "5")
        geo_args = {"fra": ["--country", "DE", "--continent", "EU", "--location", "50.11,8.68"],
                    "iad": ["--country", "US", "--continent", "NA", "--location", "39.04,-77.49"],
                    "sin": ["--country", "SG", "--continent", "AS", "--location", "1.35,103.82"],
                    "gru": ["--country", "BR", "--continent", "SA", "--location", "-23.4,-46.5"]}
        for i, (name, addr) in enumerate(SITES):
            self.must("member", "add", "app.demo.test", name, "--address", addr, "--weight", "100")
            self.must("member", "add", "fail.demo.test", name, "--address", addr, "--priority",
                      str(i + 1))
            self.must("member", "add", "geo.demo.test", name, "--address", addr, *geo_args[name])
            for pool in ("app", "fail", "geo"):
                self.must("check", "set", pool + ".demo.test", "--member", name, "--type", "http",
                          "--port", str(getattr(self, "port_" + name)), "--path", "/health",
                          "--interval", "1", "--timeout", "0.5", "--fall", "2", "--rise", "2")
        self.log = open(os.path.join(self.work, "gslbd.log"), "w+")
        self.gslbd = subprocess.Popen(
            [os.path.join(self.builddir, "gslbd"), "--listen", "127.0.0.1:%d" % self.port,
             "--zones", self.zones, "--db", self.db, "--geoip", self.geo, "--threads", "2",
             "--metrics", "127.0.0.1:%d" % self.metrics_port], stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                q = dns.message.make_query("www.demo.test", "A")
                dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.5)
                return
            except Exception:
                if self.gslbd.poll() is not None:
                    raise SystemExit("soak: gslbd exited at start-up (log %s)" % self.log.name)
                time.sleep(0.2)
        raise SystemExit("soak: gslbd did not answer within 20 s")

    # -- load and checks --------------------------------------------------------------------
    def dnsperf(self):
        qfile = os.path.join(self.work, "queries")
        with open(qfile, "w") as f:
            for line in ("www.demo.test A", "www.demo.test AAAA", "web.demo.test A",
                         "nothere.demo.test A", "demo.test SOA", "demo.test NS",
                         "app.demo.test A", "app.demo.test A", "fail.demo.test A",
                         "geo.demo.test A", "soak.demo.test TXT"):
                f.write(line + "\n")
        cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(self.port), "-d", qfile, "-l",
               str(self.seconds), "-Q", str(self.qps), "-c", "4", "-t", "2", "-q", "500"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=self.seconds + 60)
        for key, pattern in (("dnsperf sent", r"Queries sent:\s+(\d+)"),
                             ("dnsperf completed", r"Queries completed:\s+(\d+)"),
                             ("dnsperf lost", r"Queries lost:\s+(\d+)")):
            m = re.search(pattern, r.stdout)
            if m:
                self.count(key, int(m.group(1)))
            else:
                self.note("dnsperf printed no '%s': %s" % (key, r.stdout[-300:] + r.stderr[-300:]))
        m = re.search(r"Response codes:\s+(.*)", r.stdout)
        self.dnsperf_rcodes = m.group(1).strip() if m else "?"

    def check_answer(self, qname, resp):
        """Whether a response carries what qname must get whatever the health and changes."""
        addrs = {a for _, a in SITES}
        if qname == "www.demo.test.":
            got = [rr.address for rrset in resp.answer for rr in rrset]
            return resp.rcode() == dns.rcode.NOERROR and got == ["192.0.2.10"]
        if qname == "nothere.demo.test.":
            return resp.rcode() == dns.rcode.NXDOMAIN and len(resp.authority) == 1
        # A pool: fra and iad never fail their checks, so an answer always has an address.
        got = [rr.address for rrset in resp.answer for rr in rrset]
        return resp.rcode() == dns.rcode.NOERROR and got and set(got) <= addrs

    def checker(self, transport):
        names = ["www.demo.test.", "nothere.demo.test.", "app.demo.test.", "fail.demo.test.",
                 "geo.demo.test."]
        i = 0
        while not self.stop.is_set():
            qname = names[i % len(names)]
            i += 1
            ecs = [dns.edns.ECSOption("198.51.100.0", 24)] if qname == "geo.demo.test." else None
            q = dns.message.make_query(qname, "A", use_edns=0 if ecs else None, options=ecs)
            try:
                if transport == "udp":
                    r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=2)
                else:
                    r = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=2)
            except Exception as e:
                self.count(transport + " timeouts")
                self.note("%s %s: %s" % (transport, qname, e))
                continue
            self.count(transport + " checked")
            if not self.check_answer(qname, r):
                self.count(transport + " wrong")
                self.note("%s %s: wrong answer %s" % (transport, qname, r.to_text()[:300]))
            time.sleep(0.005 if transport == "udp" else 0.02)

    # -- the things that change -------------------------------------------------------------
    def every(self, period, fn, first=None):
        t = time.time() + (period if first is None else first)
        while not self.stop.wait(max(0.0, t - time.time())):
            try:
                fn()
            except Exception as e:
                self.note("%s: %s" % (fn.__name__, e))
            t += period

    def flap(self, name):
        port = getattr(self, "port_" + name)
        addr = dict(SITES)[name]
        state = {"mode": "200"}

        def flip():
            state["mode"] = "503" if state["mode"] == "200" else "200"
            import urllib.request
            urllib.request.urlopen("http://%s:%d/_control?mode=%s" % (addr, port, state["mode"]),
                                   timeout=5).read()
            self.count("backend flips")
        flip.__name__ = "flap " + name
        return flip

    def reload_zone(self):
        self.write_zone()
        self.count("zone rewrites")

    def reload_geo(self):
        self.replace_geo()
        self.count("geo replacements")

    def sighup(self):
        self.gslbd.send_signal(signal.SIGHUP)
        self.count("SIGHUPs")

    def writer_weight(self):
        name = random.choice(SITES)[0]
        r = self.gslbctl("member", "set", "app.demo.test", name, "--weight",
                         str(random.randint(1, 1000)))
        self.gslbctl_result("weight", r)

    def writer_drain(self):
        for state in ("drain", "auto"):
            r = self.gslbctl("member", "state", "fail.demo.test", "fra", state)
            self.gslbctl_result("drain", r)

    def gslbctl_result(self, what, r):
        self.count("gslbctl runs")
        if r.returncode != 0:
            # Under the held lock gslbctl may give up after its busy timeout: counted apart.
            kind = "locked" if "locked" in r.stderr or "busy" in r.stderr else "failed"
            self.count("gslbctl " + kind)
            if kind == "failed":
                self.note("gslbctl %s: %s" % (what, r.stderr.strip()))

    def hold_lock(self):
        con = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        self.stop.wait(5)
        con.execute("ROLLBACK")
        con.close()
        self.count("database locks held 5 s")

    def rss_kib(self):
        with open("/proc/%d/status" % self.gslbd.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # -- the run ----------------------------------------------------------------------------
    def run(self):
        self.setup()
        rcvbuf0 = udp_rcvbuf_errors()
        start = time.time()
        threads = [threading.Thread(target=self.dnsperf),
                   threading.Thread(target=self.checker, args=("udp",)),
                   threading.Thread(target=self.checker, args=("tcp",))]
        for name, period in FLAPPING.items():
            threads.append(threading.Thread(target=self.every, args=(period, self.flap(name))))
        for period, fn, first in ((10, self.reload_zone, None), (30, self.reload_geo, None),
                                  (15, self.sighup, None), (1, self.writer_weight, None),
                                  (5, self.writer_drain, None), (60, self.hold_lock, 20)):
            threads.append(threading.Thread(target=self.every, args=(period, fn, first)))
        for t in threads:
            t.start()
        rss = []
        while time.time() - start < self.seconds:
            time.sleep(5)
            if self.gslbd.poll() is not None:
                self.note("gslbd exited during the run with status %d" % self.gslbd.returncode)
                break
            rss.append((time.time() - start, self.rss_kib()))
        self.stop.set()
        threads[0].join(timeout=self.seconds + 90)
        for t in threads[1:]:
            t.join(timeout=30)
        status = None
        if self.gslbd.poll() is None:
            self.gslbd.send_signal(signal.SIGTERM)
            try:
                status = self.gslbd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.gslbd.kill()
                status = "killed after 30 s"
        else:
            status = self.gslbd.returncode
        self.rcvbuf = udp_rcvbuf_errors() - rcvbuf0
        self.report(time.time() - start, rss, status)
        return status

    def report(self, elapsed, rss, status):
        self.log.flush()
        self.log.seek(0)
        lines = self.log.read().splitlines()
        # The health writer says once that the held lock stops it: expected, counted apart.
        locked = [l for l in lines if "[error]" in l and "is locked" in l]
        errors = [l for l in lines if "[error]" in l and l not in locked]
        warm = next((k for t, k in rss if t >= 60), rss[0][1] if rss else 0)
        end = rss[-1][1] if rss else 0
        peak = max((k for _, k in rss), default=0)
        c = self.counts
        print("\nsoak: %.0f s of mixed load on gslbd (%s)" % (elapsed, self.work))
        print("| measure | value |\n| --- | --- |")
        rows = [
            ("RSS after 60 s / at the end / peak (KiB)", "%d / %d / %d" % (warm, end, peak)),
            ("RSS growth after the first minute", "%+d KiB (%+.1f %%)" % (
                end - warm, 100.0 * (end - warm) / warm if warm else 0)),
            ("dnsperf queries sent / completed / lost", "%d / %d / %d" % (
                c.get("dnsperf sent", 0), c.get("dnsperf completed", 0),
                c.get("dnsperf lost", 0))),
            ("dnsperf response codes", getattr(self, "dnsperf_rcodes", "?")),
            ("UDP datagrams the kernel dropped on full receive buffers (all sockets)",
             getattr(self, "rcvbuf", "?")),
            ("checked answers UDP / TCP", "%d / %d" % (c.get("udp checked", 0),
                                                     c.get("tcp checked", 0))),
            ("wrong answers UDP / TCP", "%d / %d" % (c.get("udp wrong", 0), c.get("tcp wrong", 0))),
            ("checker timeouts UDP / TCP", "%d / %d" % (c.get("udp timeouts", 0),
                                                      c.get("tcp timeouts", 0))),
            ("backend flips", c.get("backend flips", 0)),
            ("zone rewrites / geo replacements / SIGHUPs", "%d / %d / %d" % (
                c.get("zone rewrites", 0), c.get("geo replacements", 0), c.get("SIGHUPs", 0))),
            ("gslbctl changes / refused while locked / failed", "%d / %d / %d" % (
                c.get("gslbctl runs", 0), c.get("gslbctl locked", 0), c.get("gslbctl failed", 0))),
            ("database locks held 5 s", c.get("database locks held 5 s", 0)),
            ("gslbd log lines / errors (database locked / other)", "%d / %d / %d" % (
                len(lines), len(locked), len(errors))),
            ("gslbd exit status", status),
        ]
        for k, v in rows:
            print("| %s | %s |" % (k, v))
        for e in errors[:10]:
            print("error line:", e)
        for n in self.notes[:20]:
            print("note:", n)
        self.failed = (c.get("dnsperf lost", 0) or c.get("udp wrong", 0) or c.get("tcp wrong", 0)
                       or c.get("udp timeouts", 0) or c.get("tcp timeouts", 0)
                       or c.get("gslbctl failed", 0) or errors or status != 0)

    def cleanup(self):
        if self.gslbd and self.gslbd.poll() is None:
            self.gslbd.kill()
            self.gslbd.wait()
        for p in self.procs:
            p.stdin.close()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("SOAK_KEEP") != "1":
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builddir")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--qps", type=int, default=int(os.environ.get("SOAK_QPS", "3000")))
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    if not shutil.which("dnsperf"):
        raise SystemExit("soak: dnsperf is missing (apt-get install dnsperf)")
    if not 10 <= a.seconds <= 86400:
        raise SystemExit("soak: --seconds must be 10 to 86400")
    s = Soak(os.path.abspath(a.builddir), a.seconds, a.qps, a.port)
    try:
        s.run()
    finally:
        s.cleanup()
    sys.exit(1 if s.failed else 0)


if __name__ == "__main__":
    main()
