#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A first side-by-side measurement: gslbd and knotd serving the same static zone, each on one core,
# dnsperf on the other; prints queries/s and server CPU per answered query, and the ratios.
# Usage: bench/first.sh BUILDDIR [SECONDS]   (the full benchmark is bench/run.sh, a later issue)
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
secs=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/gslb-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

command -v dnsperf >/dev/null || { echo "dnsperf missing: apt-get install dnsperf" >&2; exit 1; }
command -v knotd >/dev/null || { echo "knotd missing: apt-get install knot" >&2; exit 1; }

mkdir -p "$work/zones" "$work/knot"
zone="$work/zones/bench.test.zone"
{
	echo '$TTL 300'
	echo '@ SOA ns1 hostmaster 1 3600 600 86400 60'
	echo '@ NS ns1'
	echo 'ns1 A 127.0.0.1'
	for i in $(seq 1 1000); do echo "h$i A 192.0.2.$((i % 250 + 1))"; done
} > "$zone"
for i in $(seq 1 1000); do echo "h$i.bench.test A"; done > "$work/queries"

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PID PORT: dnsperf against PORT; prints "NAME qps cpu_us_per_query"
run() {
	local name=$1 pid=$2 port=$3 t0 t1 out qps n
	for _ in $(seq 50); do dig +time=1 +tries=1 -p "$port" @127.0.0.1 h1.bench.test A >/dev/null 2>&1 && break; sleep 0.1; done
	t0=$(cpu_ticks "$pid")
	out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$secs" -c 1 -q 100 2>&1)
	t1=$(cpu_ticks "$pid")
	qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
	n=$(awk '/Queries completed/ {print $3}' <<<"$out")
	awk -v name="$name" -v q="$qps" -v n="$n" -v d=$((t1 - t0)) -v clk="$clk" \
		'BEGIN { printf "%-8s %10.0f qps  %6.2f us CPU/query\n", name, q, d * 1e6 / clk / n }'
}

port=$((20000 + RANDOM % 20000))
taskset -c 0 "$builddir/gslbd" --listen "127.0.0.1:$port" --zones "$work/zones" --threads 1 \
	--log-level warning & pids+=($!)
g=$(run gslbd "${pids[-1]}" "$port")

kport=$((port + 1))
cat > "$work/knot/knot.conf" <<KNOT
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$kport
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work/knot"
zone:
  - domain: bench.test
    file: "$zone"
    journal-content: none
    zonefile-load: whole
log:
  - target: stderr
    any: warning
KNOT
taskset -c 0 knotd -c "$work/knot/knot.conf" & pids+=($!)
k=$(run knotd "${pids[-1]}" "$kport")

echo "$g"
echo "$k"
awk -v g="$g" -v k="$k" 'BEGIN { split(g, a); split(k, b);
	printf "ratio knotd/gslbd: qps %.2f, CPU per query %.2f (above 1 = gslbd costs less)\n", b[2] / a[2], b[4] / a[4] }'
