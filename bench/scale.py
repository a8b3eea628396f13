#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/scale.sh's measurements: start-up time and memory with many names and many pools, apply time,
change-to-answer delay.  Usage: scale.py BUILDDIR WORKDIR NAMES POOLS CHANGES CHECKED_POOLS."""
import ipaddress, json, os, random, signal, socket, statistics, subprocess, sys, threading, time
import dns.message, dns.rdatatype, dns.query, dns.rcode

builddir, work = sys.argv[1], sys.argv[2]
NAMES, POOLS, CHANGES, CHECKED = (int(x) for x in sys.argv[3:7])
GSLBD = os.path.join(builddir, "gslbd")
GSLBCTL = os.path.join(builddir, "gslbctl")
rows = []          # (what, figure) for the summary
procs = []         # every gslbd started, stopped by PID at the end

def row(what, fig):
    rows.append((what, fig))
    print(f"  {what}: {fig}", flush=True)

def free_port():
    # A UDP and a TCP port both free: gslbd binds both.
    for _ in range(50):
        p = random.randint(20000, 60000)
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", p))
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("127.0.0.1", p))
            u.close(); t.close()
            return p
        except OSError:
            continue
    raise SystemExit("no free port")

def status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out

def mib(kib):
    return f"{kib / 1024:.0f} MiB"

def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

def ask(port, name, rtype, timeout=0.5):
    q = dns.message.make_query(name, rtype)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)

def answer_set(r, rtype):
    return sorted(rd.to_text() for rrs in r.answer if rrs.rdtype == dns.rdatatype.from_text(rtype)
                  for rd in rrs)

class Daemon:
    """gslbd with its stderr read by a thread that stamps every line with its arrival time."""
    def __init__(self, zones, db, tag):
        self.port = free_port()
        self.lines = []
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([GSLBD, "--listen", f"127.0.0.1:{self.port}", "--zones", zones,
                                   "--db", db, "--threads", "2", "--log-level", "info",
                                   # metrics on: their per-member counters are set up at every
                                   # snapshot, so a change's delay includes them
                                   "--metrics", f"127.0.0.1:{free_port()}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(self.p)
        self.log = open(os.path.join(work, tag + ".log"), "w")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stderr:
            self.lines.append((time.monotonic() - self.t0, line.rstrip()))
            self.log.write(f"{time.monotonic() - self.t0:9.3f} {line}")
            self.log.flush()

    def tail(self):
        return " | ".join(l for _, l in self.lines[-4:])

    def line_at(self, text):
        for t, l in self.lines:
            if text in l:
                return t, l
        return None, None

    def wait_answer(self, name, rtype, ok, limit=600):
        """Seconds from the start until name answers as ok(response) says."""
        deadline = self.t0 + limit
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise SystemExit(f"gslbd exited with {self.p.returncode}: {self.tail()}")
            if any("[error]" in l for _, l in self.lines):
                raise SystemExit(f"gslbd logged an error: {self.tail()}")
            try:
                r = ask(self.port, name, rtype, 0.05)
                if ok(r):
                    return time.monotonic() - self.t0
            except (dns.exception.Timeout, OSError):
                pass
            time.sleep(0.01)
        raise SystemExit(f"no correct answer for {name} {rtype} within {limit} s: {self.tail()}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        time.sleep(0.1)
        self.log.close()

# ---- 1. static names ----

def static_name(i):
    """Owner, type and expected rdata of static name i (70% A, 15% AAAA, 5% each TXT, CNAME, MX)."""
    k = i % 20
    if k < 14:
        return f"h{i}", "A", f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    if k < 17:
        return f"h{i}", "AAAA", str(ipaddress.IPv6Address(f"2001:db8::{i >> 16:x}:{i & 0xffff:x}"))
    if k == 17:
        return f"h{i}", "TXT", f'"t{i}"'
    if k == 18:
        return f"h{i}", "CNAME", f"h{i - 5}.bench.test."
    return f"h{i}", "MX", f"10 h{i - 6}.bench.test."

def gen_zone(path, n):
    with open(path, "w") as f:
        f.write("$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n")
        buf = []
        for i in range(n):
            o, t, d = static_name(i)
            buf.append(f"{o} {t} {d}\n")
            if len(buf) == 10000:
                f.write("".join(buf)); buf = []
        f.write("".join(buf))

def check_static(d, n):
    """Answers for a sample of names across the zone, each type; returns (checked, wrong)."""
    rnd = random.Random(1)
    sample = [0, 14, 17, 18, 19, n - 1] + [rnd.randrange(n) for _ in range(200)]
    wrong = 0
    for i in sample:
        o, t, want = static_name(i)
        r = ask(d.port, f"{o}.bench.test.", t, 2)
        got = answer_set(r, t)
        if r.rcode() != dns.rcode.NOERROR or got != [want]:
            print(f"    WRONG {o} {t}: {dns.rcode.to_text(r.rcode())} {got}, want {want}")
            wrong += 1
    r = ask(d.port, f"h{n + 5}.bench.test.", "A", 2)
    if r.rcode() != dns.rcode.NXDOMAIN:
        print(f"    WRONG h{n + 5}: {dns.rcode.to_text(r.rcode())}, want NXDOMAIN")
        wrong += 1
    return len(sample) + 1, wrong

def run_static():
    print(f"== {NAMES} static names", flush=True)
    zones = os.path.join(work, "zones-static"); os.mkdir(zones)
    t = time.monotonic()
    gen_zone(os.path.join(zones, "bench.test.zone"), NAMES)
    size = os.path.getsize(os.path.join(zones, "bench.test.zone"))
    print(f"  zone file: {size / 1e6:.0f} MB, written in {time.monotonic() - t:.1f} s", flush=True)
    d = Daemon(zones, os.path.join(work, "static.db"), "static")
    o, t, v = static_name(NAMES - 1)
    ready = d.wait_answer(f"{o}.bench.test.", t, lambda r: answer_set(r, t) == [v])
    st = status_kib(d.p.pid)
    cpu = cpu_s(d.p.pid)
    checked, wrong = check_static(d, NAMES)
    row(f"{NAMES} names: start to first answer", f"{ready:.2f} s (CPU {cpu:.2f} s)")
    row(f"{NAMES} names: RSS at first answer", f"VmRSS {mib(st['VmRSS'])}, VmHWM {mib(st['VmHWM'])}")
    row(f"{NAMES} names: sample answers", f"{checked - wrong}/{checked} correct")
    # A reload of the same file (SIGHUP) builds the zone aside: the peak while two copies live.
    os.kill(d.p.pid, signal.SIGHUP)
    t = time.monotonic()
    while time.monotonic() - t < 300 and not any("reloaded" in l for _, l in d.lines):
        time.sleep(0.05)
    st = status_kib(d.p.pid)
    row(f"{NAMES} names: SIGHUP reload", f"{time.monotonic() - t:.2f} s, then VmRSS {mib(st['VmRSS'])}, VmHWM {mib(st['VmHWM'])}")
    d.stop()
    return wrong

# ---- 2. pools ----

def member_addr(i, k):
    n = i * 4 + k
    return f"10.{64 + ((n >> 16) & 63)}.{(n >> 8) & 255}.{n & 255}"

def checked_addr(i, k):
    # 20,000 distinct loopback addresses shared by every checked pool: one probe per address.
    n = (i * 4 + k) % 20000
    return f"127.{100 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"

def gen_pools(path, n, check_port=None):
    pools = []
    for i in range(n):
        nm = 2 + i % 3
        members = []
        for k in range(nm):
            addr = checked_addr(i, k) if check_port else member_addr(i, k)
            m = {"name": f"m{k}", "addresses": [addr], "weight": 100}
            if k == 0 and i % 4 == 0:
                m["addresses"].append(f"2001:db8:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::1")
            members.append(m)
        p = {"name": f"p{i}.glb.test.", "policy": "failover" if i % 5 == 0 else "weighted",
             "ttl": 30, "members": members}
        if i % 5 == 0:
            for k, m in enumerate(members):
                m["priority"] = k + 1
        if check_port:
            p["check"] = {"type": "tcp", "port": check_port, "interval": 60}
        pools.append(p)
    # The pool the change-to-answer step toggles: failover, a before b.
    pools.append({"name": "chg.glb.test.", "policy": "failover", "ttl": 5, "members": [
        {"name": "a", "addresses": ["10.255.0.1"], "priority": 1},
        {"name": "b", "addresses": ["10.255.0.2"], "priority": 2}]})
    with open(path, "w") as f:
        json.dump({"version": 1, "pools": pools}, f, separators=(",", ":"))

def gslbctl(db, *args, limit=900):
    t = time.monotonic()
    r = subprocess.run([GSLBCTL, "--db", db] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=limit)
    if r.returncode != 0:
        raise SystemExit(f"gslbctl {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return time.monotonic() - t, r.stdout

def pool_zone(zones):
    os.mkdir(zones)
    with open(os.path.join(zones, "glb.test.zone"), "w") as f:
        f.write("$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n")

def run_pools(n, tag, check_port=None):
    label = f"{n} pools" + (" with checks" if check_port else "")
    print(f"== {label}", flush=True)
    zones = os.path.join(work, f"zones-{tag}")
    pool_zone(zones)
    cfg = os.path.join(work, f"{tag}.json")
    db = os.path.join(work, f"{tag}.db")
    gen_pools(cfg, n, check_port)
    print(f"  config file: {os.path.getsize(cfg) / 1e6:.0f} MB", flush=True)
    secs, _ = gslbctl(db, "init")
    secs, out = gslbctl(db, "apply", cfg)
    row(f"{label}: gslbctl apply (empty database)", f"{secs:.2f} s")
    secs, out = gslbctl(db, "apply", cfg)
    row(f"{label}: gslbctl apply again (no changes)", f"{secs:.2f} s ({out.strip()[:40]})")
    print(f"  database: {os.path.getsize(db) / 1e6:.0f} MB", flush=True)

    d = Daemon(zones, db, tag)
    last = n - 1
    want = {member_addr(last, k) if not check_port else checked_addr(last, k)
            for k in range(2 + last % 3)}
    ready = d.wait_answer(f"p{last}.glb.test.", "A",
                          lambda r: r.rcode() == dns.rcode.NOERROR and
                          len(answer_set(r, "A")) == 1 and answer_set(r, "A")[0] in want)
    st = status_kib(d.p.pid)
    cpu = cpu_s(d.p.pid)
    lt, line = d.line_at("pools: ")
    row(f"{label}: start to first pool answer", f"{ready:.2f} s (CPU {cpu:.2f} s; '{line.split(': ', 1)[-1] if line else '?'}' logged at {lt if lt is not None else float('nan'):.2f} s)")
    row(f"{label}: RSS at first answer", f"VmRSS {mib(st['VmRSS'])}, VmHWM {mib(st['VmHWM'])}")
    # Every pool's answer comes from its members: a sample across the set.
    rnd = random.Random(2)
    bad = 0
    sample = [0, 1, 2, last] + [rnd.randrange(n) for _ in range(100)]
    for i in sample:
        w = {member_addr(i, k) if not check_port else checked_addr(i, k) for k in range(2 + i % 3)}
        r = ask(d.port, f"p{i}.glb.test.", "A", 2)
        got = answer_set(r, "A")
        if i % 5 == 0:
            w = {member_addr(i, 0) if not check_port else checked_addr(i, 0)}
        if len(got) != 1 or got[0] not in w:
            bad += 1
            if bad < 5:
                print(f"    WRONG p{i}: {got} not one of {sorted(w)}")
    row(f"{label}: sample pool answers", f"{len(sample) - bad}/{len(sample)} correct")
    if check_port:
        # Give the health loop time to write: every write is a commit gslbd may react to.
        c0, t0 = cpu_s(d.p.pid), time.monotonic()
        time.sleep(10)
        c1, t1 = cpu_s(d.p.pid), time.monotonic()
        st = status_kib(d.p.pid)
        reloads = sum(1 for _, l in d.lines if "pools: " in l)
        row(f"{label}: 10 s after start", f"CPU {100 * (c1 - c0) / (t1 - t0):.0f}% of one core, VmRSS {mib(st['VmRSS'])}, VmHWM {mib(st['VmHWM'])}, 'pools:' lines so far {reloads}")
    bad += change_delays(d, db, label)
    d.stop()
    return bad

# ---- 3. change to answer ----

def change_delays(d, db, label):
    """gslbctl changes to chg.glb.test with every pool loaded: command time and commit-to-answer."""
    if CHANGES <= 0:
        return 0
    a, b = ["10.255.0.1"], ["10.255.0.2"]
    d.wait_answer("chg.glb.test.", "A", lambda r: answer_set(r, "A") == a)
    steps = []
    for i in range(CHANGES):
        if i % 2 == 0:
            args, want = (["member", "state", "chg.glb.test", "a", "down"] if i % 4 == 0 else
                          ["member", "set", "chg.glb.test", "a", "--priority", "3"]), b
        else:
            args, want = (["member", "state", "chg.glb.test", "a", "auto"] if i % 4 == 1 else
                          ["member", "set", "chg.glb.test", "a", "--priority", "1"]), a
        t0 = time.monotonic()
        cmd, _ = gslbctl(db, *args)
        t1 = time.monotonic()
        deadline = t1 + 60
        while time.monotonic() < deadline:
            try:
                if answer_set(ask(d.port, "chg.glb.test.", "A", 0.2), "A") == want:
                    break
            except dns.exception.Timeout:
                pass
            time.sleep(0.002)
        else:
            raise SystemExit(f"{' '.join(args)}: answer did not change within 60 s")
        t2 = time.monotonic()
        steps.append((cmd, t2 - t1, t2 - t0))
        time.sleep(0.3)
    med = lambda k: statistics.median(s[k] for s in steps)
    mx = lambda k: max(s[k] for s in steps)
    row(f"{label}: gslbctl member state/set", f"median {med(0):.2f} s, max {mx(0):.2f} s")
    row(f"{label}: commit to changed answer", f"median {med(1):.2f} s, max {mx(1):.2f} s ({len(steps)} changes)")
    row(f"{label}: command start to changed answer", f"median {med(2):.2f} s, max {mx(2):.2f} s")
    return 0

failures = 0
try:
    if NAMES > 0:
        failures += run_static()
    if POOLS > 0:
        failures += run_pools(POOLS, "pools")
    if CHECKED > 0:
        failures += run_pools(CHECKED, "checked", check_port=free_port())
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
print()
print("| measurement | figure |")
print("| --- | --- |")
for w, f in rows:
    print(f"| {w} | {f} |")
sys.exit(1 if failures else 0)
