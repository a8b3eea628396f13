#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/zoneload.sh's measurements: one zone file of NAMES static names in the shape of a real
one, loaded by gslbd, gdnsd and knotd in turn; time from exec to the first correct answer for the
last name, CPU time, and RSS at that moment net of the same server with an empty zone.
Usage: zoneload.py GSLBD WORKDIR NAMES [SERVER...]."""
import os, random, signal, socket, subprocess, sys, time
import dns.message, dns.query, dns.rdatatype, dns.rcode, dns.exception

ZONE = "big.test"
procs = []


def free_port():
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


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def v4(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def v6(i):
    return f"2001:db8:{i >> 16:x}::{i & 0xffff:x}"


def gen_zone(path, n):
    """The zone: 1,000 names a block under its own $ORIGIN, names written relative, one to three
    labels below the block, 1-3 RRsets a name (A, AAAA, TXT, MX, CNAME, SRV, CAA, PTR, NS with
    glue), owners inherited, TTLs and classes on some lines, comments, a few entries in
    parentheses.  Returns (owners, rrs, last name with an A record and its address)."""
    owners = rrs = 0
    last = None
    with open(path, "w") as f:
        f.write(f"$TTL 300\n$ORIGIN {ZONE}.\n"
                "@ IN SOA ns1 hostmaster ( 2026120701 ; serial\n"
                "        3600 600 86400 60 )\n"
                "  IN NS ns1\n  IN NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n")
        owners, rrs = 3, 6
        buf = []
        for i in range(n):
            blk, j = divmod(i, 1000)
            j %= 10
            if i % 1000 == 0:
                buf.append(f"\n; ---- block {blk}: hosts of site {blk} ----\n"
                           f"$ORIGIN s{blk:04d}.{ZONE}.\n")
            elif i % 100 == 0:
                buf.append(f"; rack {i // 100}\n")
            if j <= 5:
                o = f"host-{i:07d}"
                if i % 4 == 0:
                    buf.append(f"{o} 3600 IN A {v4(i)}\n")
                else:
                    buf.append(f"{o} A {v4(i)}" + ("  ; web frontend\n" if j == 2 else "\n"))
                rrs += 1
                last = (f"{o}.s{blk:04d}.{ZONE}.", v4(i))
                if i % 3 == 0:
                    buf.append(f"         AAAA {v6(i)}\n"); rrs += 1
                if i % 7 == 0:
                    buf.append(f'         TXT "v=spf1 ip4:{v4(i)} -all"\n'); rrs += 1
                if j == 5:
                    buf.append(f"         MX 10 mail.{o}\n"); rrs += 1
                if i % 1000 == 1:
                    buf.append('         CAA 0 issue "ca.example.net"\n'); rrs += 1
                if i % 1000 == 3:
                    # a delegation with glue: the child, and its server's address below it
                    buf.append(f"d{i} NS ns.d{i}\nns.d{i} A {v4(i + 1)}\n"); rrs += 2; owners += 1
            elif j == 6:
                o = f"alias-{i:07d}.east"
                buf.append(f"{o} 600 CNAME host-{i - 6:07d}\n"); rrs += 1
            elif j == 7:
                o = f"api-{i:07d}.east"
                buf.append(f"{o} IN 60 A {v4(i)}\n{o} IN 60 AAAA {v6(i)}\n"); rrs += 2
            elif j == 8:
                o = f"db-{i:07d}.pg.west"
                if i % 100 == 8:
                    buf.append(f'{o} TXT ( "owner=team-{i % 97}"\n'
                               f'                 "cost-centre={i % 1013}" )\n')
                else:
                    buf.append(f'{o} TXT "owner=team-{i % 97}" "cost-centre={i % 1013}"\n')
                rrs += 1
                if i % 50 == 8:
                    buf.append(f"{i % 256}.2.0.192.in-addr PTR host-{i:07d}.s{blk:04d}.{ZONE}.\n")
                    rrs += 1; owners += 1
            else:
                o = f"_sip._tcp.host-{i - 9:07d}"
                buf.append(f"{o} SRV 10 5 5060 host-{i - 9:07d}\n"); rrs += 1
            owners += 1
            if len(buf) >= 20000:
                f.write("".join(buf)); buf = []
        f.write("".join(buf))
    return owners, rrs, last


def gen_flat(path, n):
    """bench/scale.sh's zone: one RRset a name, names one label below the apex, 70 % A, 15 % AAAA,
    5 % each TXT, CNAME and MX; no $ORIGIN, comments or inherited owners."""
    last = None
    with open(path, "w") as f:
        f.write(f"$TTL 300\n@ SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n"
                f"@ NS ns1.{ZONE}.\nns1 A 192.0.2.1\n")
        buf = []
        for i in range(n):
            k = i % 20
            if k < 14:
                buf.append(f"h{i} A {v4(i)}\n")
                last = (f"h{i}.{ZONE}.", v4(i))
            elif k < 17:
                buf.append(f"h{i} AAAA {v6(i)}\n")
            elif k == 17:
                buf.append(f'h{i} TXT "t{i}"\n')
            elif k == 18:
                buf.append(f"h{i} CNAME h{i - 5}\n")
            else:
                buf.append(f"h{i} MX 10 h{i - 6}\n")
            if len(buf) >= 20000:
                f.write("".join(buf)); buf = []
        f.write("".join(buf))
    return n + 1, n + 3, last


def empty_zone(path):
    with open(path, "w") as f:
        f.write(f"$TTL 300\n$ORIGIN {ZONE}.\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n"
                "@ NS ns1\nns1 A 192.0.2.1\n")


def start(server, zfile, d, port):
    """Start one server on zfile in directory d; returns the Popen."""
    os.makedirs(d, exist_ok=True)
    log = open(os.path.join(d, "log"), "w")
    if server == "gslbd":
        zd = os.path.join(d, "zones"); os.makedirs(zd, exist_ok=True)
        os.symlink(zfile, os.path.join(zd, f"{ZONE}.zone"))
        cmd = [GSLBD, "--listen", f"127.0.0.1:{port}", "--zones", zd, "--db",
               os.path.join(d, "gslb.db"), "--threads", "1", "--log-level", "warning"]
    elif server == "gdnsd":
        for sub in ("zones", "run", "state"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.symlink(zfile, os.path.join(d, "zones", ZONE))
        with open(os.path.join(d, "config"), "w") as c:
            c.write(f"options => {{ listen => [ 127.0.0.1 ], dns_port => {port}, udp_threads => 1,\n"
                    f"  tcp_threads => 1, run_dir => {d}/run, state_dir => {d}/state }}\n")
        cmd = ["gdnsd", "-c", d, "start"]
    elif server == "knot":
        with open(os.path.join(d, "knot.conf"), "w") as c:
            c.write(f"server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n"
                    "    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n"
                    f"database:\n    storage: \"{d}\"\n"
                    f"zone:\n  - domain: {ZONE}\n    file: \"{zfile}\"\n"
                    "    journal-content: none\n    zonefile-load: whole\n"
                    "log:\n  - target: stderr\n    any: warning\n")
        cmd = ["knotd", "-c", os.path.join(d, "knot.conf")]
    else:
        raise SystemExit(f"unknown server {server}")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(server, zfile, tag, qname, want, limit=900):
    """Seconds to the first correct A answer for qname, CPU seconds, VmRSS KiB at that moment."""
    d = os.path.join(work, f"{server}-{tag}")
    port = free_port()
    t0 = time.monotonic()
    p = start(server, zfile, d, port)
    q = dns.message.make_query(qname, "A")
    try:
        while time.monotonic() - t0 < limit:
            if p.poll() is not None:
                with open(os.path.join(d, "log")) as f:
                    tail = f.read()[-600:]
                raise SystemExit(f"{server} exited with {p.returncode}: {tail}")
            try:
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.05)
                got = [rd.to_text() for rrs in r.answer if rrs.rdtype == dns.rdatatype.A
                       for rd in rrs]
                if r.rcode() == dns.rcode.NOERROR and got == [want]:
                    ready = time.monotonic() - t0
                    return ready, cpu_s(p.pid), status_kib(p.pid)["VmRSS"]
            except (dns.exception.Timeout, OSError):
                pass
            time.sleep(0.02)
        raise SystemExit(f"{server}: no correct answer for {qname} within {limit} s")
    finally:
        stop(p)


def main():
    zfile = os.path.join(work, f"{ZONE}.zone")
    t = time.monotonic()
    owners, rrs, (qname, want) = (gen_flat if SHAPE == "flat" else gen_zone)(zfile, NAMES)
    size = os.path.getsize(zfile)
    print(f"zone ({SHAPE}): {NAMES} names ({owners} owners with NS/glue/PTR), {rrs} RRs, "
          f"{size / 1e6:.0f} MB, written in {time.monotonic() - t:.1f} s; last name {qname}",
          flush=True)
    efile = os.path.join(work, "empty.zone")
    empty_zone(efile)
    print("| server | start to first answer | CPU | RSS | RSS per name (net of an empty zone) |")
    print("| --- | --- | --- | --- | --- |")
    for s in SERVERS:
        _, _, base = run(s, efile, "empty", f"ns1.{ZONE}.", "192.0.2.1")
        ready, cpu, rss = run(s, zfile, "big", qname, want)
        print(f"| {s} | {ready:.2f} s | {cpu:.2f} s | {rss / 1024:.0f} MiB | "
              f"{(rss - base) * 1024 / NAMES:.0f} B |", flush=True)


if __name__ == "__main__":
    GSLBD, work, NAMES = sys.argv[1], sys.argv[2], int(sys.argv[3])
    SERVERS = sys.argv[4:] or ["gslbd", "gdnsd", "knot"]
    SHAPE = os.environ.get("ZONELOAD_SHAPE", "real")
    try:
        main()
    finally:
        for p in procs:
            stop(p)
