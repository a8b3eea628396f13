#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/run.sh's tables: one per workload on stdout, and the same as markdown (--markdown FILE)."""
import argparse
import datetime
import os
import re

TITLES = {
    'static': '(a) static names: 1,000 A records, UDP',
    'edns': '(a2) static names asked with EDNS (OPT record, DO=0), UDP',
    'nxdomain': '(b) NXDOMAIN mix: half the queries for names that do not exist, UDP',
    'weighted': '(c) weighted balanced name, four members 100:100:50:50, UDP',
    'checked': '(c2) weighted with TCP health checks: four members on 127.0.0.11-14, probed every 2 s',
    'geo': '(d) geo balanced name, four member locations, ECS from ~2,300 client /24s, UDP',
    'tcp': '(e) static names over TCP (one connection, up to 100 queries in flight)',
    'signed': '(f) static names with DO=1, the zone signed (ECDSA P-256), UDP: gslbd alone',
    'signedweighted': '(g) the weighted name with DO=1, the zone signed, UDP: gslbd alone',
    'signedmiss': '(h) signature cache misses: DO=1, names under the wildcard *.w never asked '
                  'before, each answer signed afresh (ECDSA P-256), UDP: gslbd alone',
}
NOTE = {
    ('pdns', 'weighted'): 'pdns (LUA pickwrandom)',
    ('pdns', 'checked'): 'pdns (LUA ifportup)',
}
COLS = ['server', 'queries/s', 'mean lat. µs', 'p99 lat. µs', 'CPU µs/query (min-max)',
        'user µs/query', 'instr./query', 'allocs/query', 'CPU ratio', 'instr. ratio']
METHOD = """\
How it was measured (`bench/run.sh`, `make bench`):

- Every server runs in the foreground from its own configuration in a temporary directory, on a
  random loopback port, with one UDP and one TCP worker, pinned with every thread to core 0
  (`taskset -c 0`); `dnsperf -c 1 -q 100` runs on core 1. Same zone for all (1,000 A names under
  `bench.test`), and for the balanced names the same four members: `fra` 192.0.2.10, `iad`
  198.51.100.10, `sin` 203.0.113.10, `gru` 10.3.0.10, weights 100:100:50:50, locations Frankfurt,
  Ashburn, Singapore, São Paulo; geo uses the same mmdb (`geoip/gslb-test-city.mmdb`) in gslbd and in
  gdnsd's geoip plugin (`auto_dc_coords` = the member locations, so both answer the nearest member).
  PowerDNS serves the weighted name as a LUA record `pickwrandom(...)` and the health-checked one
  as `ifportup(port, ...)` (no weights; `lua-health-checks-interval=2`), with
  `enable-lua-records=shared` (one Lua state per thread; with `yes` PowerDNS 4.7 builds a new Lua
  state for every query, about 15 times the cost); it has no geo equivalent
  without its GeoIP backend, and Knot and NSD have no balanced names: n/a. gdnsd checks with
  `tcp_connect`, gslbd with a pool TCP check, both every 2 s. PowerDNS runs with its default packet
  cache, which serves its static answers (LUA answers are not cached).
- Geo queries each carry an EDNS Client Subnet option from one of ~2,300 /24s (192.0.2, 198.51.100,
  203.0.113, 10.1-10.9.x: every network of the test mmdb and some it does not know), 10,000 wire
  messages in a `dnsperf -B` file, so both servers see many subnets rather than one fixed `-E` option.
- All servers run at once (idle ones cost nothing) and the runs are interleaved: each repeat of a
  workload runs every server once in turn, so a slow drift of the machine (a busy neighbour of the
  VM) falls on all of them alike.
- **queries/s**: median of the runs of BENCH_SECONDS. On this 2-core machine one dnsperf process
  saturates its core at about 100-160k queries/s, so queries/s cannot rank the fast servers.
- **CPU µs/query**: the server's utime+stime (every process and thread, from `/proc/PID/stat`) over
  the throughput run, divided by the answered queries; median (and range) of the runs. Mostly kernel
  time: receiving and sending a datagram costs every server about 5 µs here, so the CPU ratios stay
  near 1 and differences under ~10 % are within the noise of a shared machine. **user µs/query** is
  the utime part alone (10 ms clock ticks: coarse), the server's own code.
- **latency**: a separate run at a fixed BENCH_LAT_QPS queries/s with every answer timed
  (`dnsperf -Q ... -v`); mean and 99th percentile, median of the runs.
- **instr./query** and **allocs/query**: the server under `valgrind --tool=callgrind` (with
  `--trace-children`, for NSD's worker); counters zeroed (`callgrind_control -z`), BENCH_CG_SECONDS
  of queries (`dnsperf -q 10`), counters dumped; then the same for an idle window as long, whose
  count (timers, database polls, health probes), scaled to the length of the busy window, is
  subtracted; divided by the answered queries. User-space instructions only (the kernel's share is in
  the CPU column). **allocs/query** counts calls into malloc, calloc, realloc and the aligned
  variants (C++ `new` included), every thread, busy window minus the scaled idle window (gslbd's
  database poll and health threads allocate whatever the query load: ~600 calls/s here, from the
  health checks of (c2) and their stored results), divided by the answered queries: one allocation
  on the answer path would show as 1.000, none as about 0 (± a little noise either way). `perf stat -e instructions` is not supported in this VM, hence callgrind.
- **ratios**: the server's cost divided by gslbd's (CPU µs/query, instructions/query): above 1 means
  gslbd costs less. The CPU ratio is paired: each round runs every server once, seconds apart, so
  it is the median over the rounds of that round's server / gslbd CPU (a drift of the machine
  cancels out); the goals judge CPU on it, and call a miss whose run range overlaps the peer's a
  tie.
"""


def num(x):
    try:
        return float(x)
    except ValueError:
        return None  # n/a


def load(path, ncols):
    rows = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= ncols:
                rows[(p[0], p[1])] = [num(x) for x in p[2:ncols]] + [None] * (12 - ncols)
    return rows


def fmt(v, digits=0):
    if v is None:
        return 'n/a'
    if abs(v) < 0.5 * 10 ** -digits:
        v = 0.0  # a net count a hair below zero prints as 0, not -0.000
    if digits == 0:
        return '{:,.0f}'.format(v)
    return '{:,.{}f}'.format(v, digits)


def table(wl, servers, tput, cg):
    out = []
    g_t = tput.get(('gslbd', wl))
    g_c = cg.get(('gslbd', wl))
    for s in servers:
        t = tput.get((s, wl))
        c = cg.get((s, wl))
        if t is None and c is None:
            out.append([NOTE.get((s, wl), s)] + ['n/a'] * (len(COLS) - 1))
            continue
        qps, cpu, mean, p99, user, lo, hi, paired = t[:8] if t else (None,) * 8
        instr, allocs = c[:2] if c else (None, None)
        rc = paired if paired is not None else (
            cpu / g_t[1] if t and g_t and g_t[1] > 0 else None)
        ri = instr / g_c[0] if c and g_c and g_c[0] > 0 else None
        cpus = '%s (%s-%s)' % (fmt(cpu, 2), fmt(lo, 2), fmt(hi, 2)) if t else 'n/a'
        out.append([NOTE.get((s, wl), s), fmt(qps), fmt(mean), fmt(p99), cpus, fmt(user, 2),
                    fmt(instr), fmt(allocs, 3), fmt(rc, 2), fmt(ri, 2)])
    return out


def text_table(rows):
    w = [max(len(str(r[i])) for r in [COLS] + rows) for i in range(len(COLS))]
    lines = ['  '.join(str(c).rjust(w[i]) if i else str(c).ljust(w[i]) for i, c in enumerate(r))
             for r in [COLS] + rows]
    return '\n'.join(lines)


def md_table(rows):
    lines = ['| ' + ' | '.join(COLS) + ' |', '|' + ' --- |' * len(COLS)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines)


SPLIT_COLS = ['server', 'workload', 'kernel %', 'user %', 'in send calls %', 'in recv calls %',
              'in epoll/poll %', 'syscalls/query', 'queries/receive call']
SPLIT_TEXT = ('Where each server\'s CPU time goes during one more throughput run, sampled with '
              '`perf record -F 1999 -g -p PID` (software clock): kernel and user space, and the '
              'share spent under the send\\*, recv\\* and epoll/poll system calls, kernel work '
              'they trigger included (on loopback, sending a datagram also runs its delivery to '
              'dnsperf\'s socket and dnsperf\'s wake-up). Over UDP the kernel\'s part is the same '
              'for every server and is most of the cost: CPU time per query can differ by little '
              'more than the user-space share. The last two columns count the server\'s system '
              'calls over the same run (`perf stat -e raw_syscalls:sys_enter`, and the recv\* and '
              'read calls): fewer calls per query, and more queries per receiving call, mean less '
              'kernel entry and wake-up cost.')

SCALE_TEXT = ('`bench/scale.sh BUILDDIR` run after the throughput runs, every other server '
              'stopped (`BENCH_SCALE_ARGS` passes it other sizes; bench/README.md describes each '
              'step): gslbd with --threads 2 and --metrics on, 1,000,000 static names of five '
              'types in one zone, then 100,000 pools of 2-4 members written with `gslbctl apply`, '
              'then the same pools each with a TCP check. Start-up is from `exec` to the first '
              'correct answer of the last name or pool; RSS from `/proc/PID/status` (VmHWM is the '
              'peak); "commit to changed answer" times a `gslbctl` change from its exit until '
              'gslbd answers the new way, polled every 2 ms.')


def load_split(path):
    rows = []
    if not path:
        return rows
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == len(SPLIT_COLS):
                rows.append(p)
    return rows


def goal(name, wl, peers, factor, tput, cg):
    """gslbd's cost against factor * the cheapest of peers, on CPU and on instructions."""
    res = []
    for idx, what, src in ((1, 'CPU/query', tput), (0, 'instructions/query', cg)):
        g = src.get(('gslbd', wl))
        best = [(src[(p, wl)][idx], p) for p in peers
                if (p, wl) in src and (src[(p, wl)][idx] or 0) > 0]
        if idx == 1 and best and all(src[(p, wl)][7] is not None for _, p in best):
            # the cheapest peer is the one with the lowest paired ratio to gslbd
            best = [(src[(p, wl)][idx], p) for _, p in sorted(
                best, key=lambda b: src[(b[1], wl)][7])[:1]]
        if not g or not best:
            res.append('%s: not measured' % what)
            continue
        v, p = min(best)
        limit = v * factor
        verdict = 'MET' if g[idx] <= limit else 'MISSED'
        pr = src[(p, wl)][7] if idx == 1 else None
        if pr is not None:
            # CPU: judged on the paired ratio (the median of round-by-round peer / gslbd)
            verdict = ('MET' if pr * factor >= 1 else 'MISSED') + \
                ' (paired ratio %s / gslbd %.2f)' % (p, pr)
        # CPU time is measured, not counted: a miss whose run range overlaps the peer's
        # (scaled) range is a tie within this run's noise, and says so.
        if idx == 1 and verdict.startswith('MISSED') and g[5] is not None and \
                src[(p, wl)][6] is not None:
            g_lo, p_hi = g[5], src[(p, wl)][6] * factor
            if g_lo <= p_hi:
                verdict = 'TIED within the run ranges (gslbd min %s, %s max%s %s; paired ' \
                    'ratio %s), median' % (fmt(g_lo, 2), p, '' if factor == 1 else
                                            ' × %.3f' % factor, fmt(p_hi, 2), fmt(pr, 2))
        res.append('%s %s (gslbd %s, %s%s %s)' % (
            what, verdict, fmt(g[idx], 2 if idx else 0),
            p, '' if factor == 1 else ' × %.3f' % factor, fmt(limit, 2 if idx else 0)))
        # The servers' own code, without the kernel's share (which is most of a UDP query):
        # shown beside the CPU verdict, not judged (utime is sampled at the clock tick).
        pu = src[(p, wl)][4] if idx == 1 else None
        if pu and g[4]:
            res.append('user-space CPU/query %s / gslbd %.2f (gslbd %s, %s %s)' % (
                p, pu / g[4], fmt(g[4], 2), p, fmt(pu, 2)))
    return '- %s: %s' % (name, '; '.join(res))


def load_sigs(path):
    """run.sh's sigs.tsv: gslbd_rrsigs_total's growth over the signed workloads' windows, summed
    by (server, workload, phase): [queries, from the cache, signed, failed]."""
    rows = {}
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 7:
                r = rows.setdefault(tuple(p[:3]), [0, 0, 0, 0])
                for i in range(4):
                    r[i] += int(p[3 + i])
    return rows


def pct(a, b):
    return '%.4f %%' % (100.0 * a / b) if b else 'n/a'


def sig_goals(servers, wls, tput, cg, sigs):
    """The signature cache (issue 20): what a miss costs, and how often the cache answers, from
    the signedmiss workload and gslbd's own counters around the signed workloads' windows."""
    out = []
    for s in servers:
        if not s.startswith('gslbd') or s == 'gslbdtap':
            continue
        who = '' if s == 'gslbd' else ' (%s)' % s
        miss = None  # a signature's own instructions, from signedmiss
        if 'signedmiss' in wls and ((s, 'signedmiss') in cg or (s, 'signedmiss') in tput):
            # A miss's own cost: the signedmiss answer's less a cache hit's (signed), per signature
            # made (gslbd_rrsigs_total{source="signed"} over the callgrind windows: 1 an answer
            # when every answer missed, 0 when every signed answer hit). With per and r the
            # windows' signatures a query, signedmiss = base + per * own, signed = base + r * own.
            m, h = cg.get((s, 'signedmiss')), cg.get((s, 'signed'))
            mt, ht = tput.get((s, 'signedmiss')), tput.get((s, 'signed'))
            w, wh = sigs.get((s, 'signedmiss', 'cg')), sigs.get((s, 'signed', 'cg'))
            per = w[2] / w[0] if w and w[0] else None
            r = wh[2] / wh[0] if wh and wh[0] else 0
            parts = []
            if m and m[0]:
                own = m[0] - h[0] if h and h[0] else None
                miss = own / (per - r) if own is not None and per and per > r else None
                parts.append('%s instructions/query (signed, a cache hit: %s; a signature\'s own: '
                             '%s, at %s signatures made a query)' % (
                                 fmt(m[0]), fmt(h[0] if h else None),
                                 fmt(miss),
                                 fmt(per, 3)))
            if mt and mt[1]:
                parts.append('CPU %s µs/query (signed: %s; the difference %s), %s queries/s' % (
                    fmt(mt[1], 2), fmt(ht[1] if ht else None, 2),
                    fmt(mt[1] - ht[1] if ht and ht[1] else None, 2), fmt(mt[0])))
            out.append('- DNSSEC cost of a miss%s (signedmiss, one ECDSA P-256 signature an '
                       'answer): %s' % (who, '; '.join(parts) if parts else 'not measured'))
        # the cache's hits and misses over all of a workload's queries (the signatures its
        # warm-up made included), then over its measured windows alone
        for wl in ('signed', 'signedweighted', 'signedmiss'):
            if wl not in wls or ((s, wl) not in tput and (s, wl) not in cg):
                continue
            parts = []
            for phase, where in (('all', 'all its queries'), ('tput', 'throughput runs'),
                                 ('cg', 'callgrind window')):
                if phase == 'cg' and (s, wl) not in cg or phase != 'cg' and (s, wl) not in tput:
                    continue
                v = sigs.get((s, wl, phase))
                if not v:
                    parts.append('%s: not measured (gslbd_rrsigs_total not read)' % where)
                    continue
                q, hit, made, failed = v
                rate = ('miss rate ' + pct(made, made + hit) if wl == 'signedmiss'
                        else 'hit rate ' + pct(hit, made + hit))
                parts.append('%s: %s queries, %s signatures made, %s served from the cache, %s%s'
                             % (where, fmt(q), fmt(made), fmt(hit), rate,
                                ', %s FAILED' % fmt(failed) if failed else ''))
                if wl == 'signedmiss' and hit:
                    parts[-1] += ' (NOT all misses: the cost of a miss above is too low)'
                elif wl != 'signedmiss' and phase == 'cg' and made:
                    # the window is meant to hold cache hits alone: what its misses add
                    parts[-1] += (' (NOT all hits: its misses add about %s instructions/query to '
                                  'the %s figure)' % (fmt(made / q * miss if miss and q else None),
                                                      wl))
            out.append('- signature cache%s under %s: %s' % (who, wl, '; '.join(parts)))
    return out


def load_scale(path):
    """bench/scale.sh's output: its header line and its rows (measurement, figure)."""
    if not path or not os.path.exists(path):
        return '', []
    lines = open(path).read().splitlines()
    head = lines[0] if lines else ''
    rows = []
    for ln in lines:
        m = re.match(r'^\| (.+?) \| (.+) \|$', ln)
        if m and m.group(1) not in ('measurement', '---'):
            rows.append((m.group(1), m.group(2)))
    return head, rows


def scale_goals(rows):
    """The issue's two scale goals, judged on scale.sh's rows."""
    out = []
    fig_of = dict(rows)
    for what, fig in rows:
        m = re.match(r'^(\d+) names: RSS at first answer$', what)
        if m and int(m.group(1)) >= 1000000:
            mm = re.search(r'VmRSS (\d+) MiB, VmHWM (\d+) MiB', fig)
            # the peak during a SIGHUP reload (two copies of the names live) counts too
            mr = re.search(r'VmHWM (\d+) MiB', fig_of.get(m.group(1) + ' names: SIGHUP reload', ''))
            if mm:
                rss, hwm = int(mm.group(1)), int(mm.group(2))
                peak = max(hwm, int(mr.group(1))) if mr else hwm
                out.append('- %s static names under 1 GiB RSS: %s (VmRSS %d MiB at the first '
                           'answer; peak %d MiB%s)' % (
                               f'{int(m.group(1)):,}', 'MET' if peak < 1024 else 'MISSED', rss,
                               peak, ', during a reload' if mr else ''))
        m = re.match(r'^(\d+) pools: start to first pool answer$', what)
        if m and int(m.group(1)) >= 100000:
            mm = re.match(r'^([\d.]+) s', fig)
            if mm:
                t = float(mm.group(1))
                out.append('- %s pools load in under 5 s: %s (%.2f s to the first answer of the '
                           'last pool)' % (f'{int(m.group(1)):,}', 'MET' if t < 5 else 'MISSED', t))
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ('tput', 'cg', 'versions', 'machine', 'settings', 'load', 'profile', 'workloads',
              'markdown', 'checks', 'note', 'split', 'scale', 'sigs'):
        ap.add_argument('--' + a, default='')
    a = ap.parse_args()
    tput = load(a.tput, 10)
    cg = load(a.cg, 4)
    servers = []
    for s, _ in list(tput) + list(cg):
        if s not in servers:
            servers.append(s)
    servers.sort(key=lambda s: (s != 'gslbd', ['gdnsd', 'knot', 'nsd', 'pdns'].index(s)
                                if s in ('gdnsd', 'knot', 'nsd', 'pdns') else 9))
    wls = a.workloads.split()
    goals = []
    if 'static' in wls:
        goals.append(goal('static answers ≤ the best of Knot, NSD, gdnsd', 'static',
                          ['knot', 'nsd', 'gdnsd'], 1, tput, cg))
    if 'weighted' in wls:
        goals.append(goal('weighted ≤ 1/1.2 of gdnsd', 'weighted', ['gdnsd'], 1 / 1.2, tput, cg))
    if 'geo' in wls:
        goals.append(goal('geo with ECS ≤ gdnsd geoip', 'geo', ['gdnsd'], 1, tput, cg))
    if 'tcp' in wls:
        goals.append(goal('TCP ≤ Knot', 'tcp', ['knot'], 1, tput, cg))
    # DNSSEC: a signed answer from the signature cache against the same answer unsigned, read
    # both ways: the same query without its DO bit (edns: EDNS read and written in both), and the
    # plain answer without EDNS at all (static, weighted), the stricter one.
    for wl, bases, limit in (('signed', ('edns', 'static'), 1.5),
                             ('signedweighted', ('weighted',), 2.0)):
        for base in bases:
            sc, bc = cg.get(('gslbd', wl)), cg.get(('gslbd', base))
            if sc and bc and sc[0] and bc[0]:
                r = sc[0] / bc[0]
                goals.append('- signed %s (DO=1, cache hits) ≤ %.1f × unsigned (%s): %s against %s '
                             'instructions/query, %s: %s' % (
                                 'static' if wl == 'signed' else 'weighted', limit,
                                 'with EDNS, DO=0' if base == 'edns' else 'without EDNS',
                                 fmt(sc[0]), fmt(bc[0]), fmt(r, 2),
                                 'MET' if r <= limit else 'MISSED'))
    goals += sig_goals(servers, wls, tput, cg, load_sigs(a.sigs))
    for wl, lua, what in (('weighted', 'pickwrandom', 'gslbd weighted'),
                          ('checked', 'ifportup', 'gslbd weighted with TCP checks')):
        if wl not in wls:
            continue
        p, g = tput.get(('pdns', wl)), tput.get(('gslbd', wl))
        pc, gc = cg.get(('pdns', wl)), cg.get(('gslbd', wl))
        if p or pc:
            goals.append('- PowerDNS LUA `%s` / %s: CPU/query %s, instructions/query %s' % (
                lua, what, fmt(p[1] / g[1], 2) if p and g else 'n/a',
                fmt(pc[0] / gc[0], 1) if pc and gc else 'n/a'))
    # --dnstap: the query log's whole cost, its writer thread included, against gslbd without it.
    for wl in ('static', 'tcp'):
        tc, gc = cg.get(('gslbdtap', wl)), cg.get(('gslbd', wl))
        if tc and gc and tc[0] and gc[0]:
            r = tc[0] / gc[0]
            goals.append('- query log on (gslbdtap, --dnstap) ≤ 1.5 × gslbd, %s: %s against %s '
                         'instructions/query, %s: %s' % (wl, fmt(tc[0]), fmt(gc[0]), fmt(r, 2),
                                                         'MET' if r <= 1.5 else 'MISSED'))
    scale_head, scale_rows = load_scale(a.scale)
    goals += scale_goals(scale_rows)
    allocs = [(wl, cg[('gslbd', wl)][1]) for wl in wls if ('gslbd', wl) in cg]
    alloc_line = ('gslbd allocation calls per query (callgrind, every thread, net of the idle '
                  'window): ' +
                  ', '.join('%s %s' % (wl, fmt(v, 3)) for wl, v in allocs)) if allocs else ''

    checks = open(a.checks).read().strip() if a.checks else ''
    check_line = ('Answer checks FAILED (figures of these servers are suspect):\n' + checks if checks
                  else 'Answer checks: every balanced name answered a member, and the geo name the '
                  'nearest member for five ECS subnets, on every server, before measuring.')
    # stdout
    print('== versions\n' + a.versions)
    print('== machine\n' + a.machine)
    print('== settings: ' + a.settings + '; load average before / after: ' + a.load)
    for wl in wls:
        print('\n== ' + TITLES.get(wl, wl))
        print(text_table(table(wl, servers, tput, cg)))
    print('\n== checks\n' + check_line)
    print('\n== goals')
    print('\n'.join(goals))
    if alloc_line:
        print(alloc_line)
    prof = open(a.profile).read() if a.profile else ''
    split = load_split(a.split)
    if split:
        print('\n== where the CPU time goes (perf)')
        w = [max(len(r[i]) for r in [SPLIT_COLS] + split) for i in range(len(SPLIT_COLS))]
        for r in [SPLIT_COLS] + split:
            print('  '.join(c.rjust(w[i]) if i > 1 else c.ljust(w[i]) for i, c in enumerate(r)))
    if scale_rows:
        print('\n== scale (bench/scale.sh): ' + scale_head)
        for what, fig in scale_rows:
            print('%s: %s' % (what, fig))
    elif a.scale and os.path.exists(a.scale) and os.path.getsize(a.scale):
        print('\n== scale: bench/scale.sh failed\n' + open(a.scale).read()[-2000:])
    if prof:
        print('\n== profile\n' + prof)

    if not a.markdown:
        return
    md = ['# Benchmark results', '',
          'Written by `make bench` (`bench/run.sh`) on %s. **Caveat:** %s' % (
              datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC'),
              'unless this run was on an otherwise idle machine (load average before / after: '
              '%s), queries/s, CPU and latency figures are noisy; instructions/query and '
              'allocations/query do not depend on load.' % a.load + (' ' + a.note if a.note else '')),
          '', '## Versions and machine', '', '```', a.versions, a.machine,
          'settings: ' + a.settings, '```', '', '## Goals', '', '\n'.join(goals), '', check_line, '']
    if alloc_line:
        md += ['Zero allocations per query: ' + alloc_line + '.', '']
    for wl in wls:
        md += ['## ' + TITLES.get(wl, wl), '', md_table(table(wl, servers, tput, cg)), '']
    if split:
        md += ['## Where the CPU time goes', '', SPLIT_TEXT, '',
               '| ' + ' | '.join(SPLIT_COLS) + ' |', '|' + ' --- |' * len(SPLIT_COLS)]
        md += ['| ' + ' | '.join(r) + ' |' for r in split] + ['']
    if scale_rows:
        md += ['## Scale', '', SCALE_TEXT, '', '`' + scale_head + '`', '',
               '| measurement | figure |', '| --- | --- |']
        md += ['| %s | %s |' % r for r in scale_rows] + ['']
    md += ['## Method', '', METHOD]
    if prof:
        md += ['## Profile of gslbd', '', '```', prof.rstrip(), '```', '']
    with open(a.markdown, 'w') as f:
        f.write('\n'.join(md))


if __name__ == '__main__':
    main()
