#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per query of weighted pools by their number of members: gslbd alone, one pool per
# size (SIZES, default "2 32 256"), every member health-checked (one TCP check on gslbd's own port,
# so every health word reads up), weights 1..1000, answers 1 and 2.  Counts only inside
# query_answer() (callgrind --toggle-collect), divided by the number of queries answered.
#
#   bench/weighted.sh [BUILDDIR] [QUERIES]     defaults: . 20000
#
# POLICY=failover or geo measures pools of that policy instead (every member at priority 1; geo
# without a geo file, so every query is ranked by the last rule: every eligible member).
set -euo pipefail

builddir=$(cd "${1:-.}" && pwd)
queries=${2:-20000}
sizes=${SIZES:-2 32 256}
policy=${POLICY:-weighted}
gslbd=$builddir/gslbd
gslbctl=$builddir/gslbctl
[ -x "$gslbd" ] && [ -x "$gslbctl" ] || { echo "weighted.sh: build first (no $gslbd)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "weighted.sh: needs dnsperf" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "weighted.sh: needs valgrind" >&2; exit 1; }

tmp=$(mktemp -d /tmp/gslb-weighted.XXXXXX)
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir "$tmp/zones"
cat >"$tmp/zones/glb.test.zone" <<'ZONE'
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
ZONE

port=$((20000 + RANDOM % 20000))
python3 - "$tmp/pools.json" "$port" "$policy" $sizes <<'PY'
import json, sys
path, port, policy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sizes = [int(s) for s in sys.argv[4:]]
pools = []
for n in sizes:
    for answers in (1, 2):
        members = [{"name": f"m{k}", "addresses": [f"10.{n & 255}.{k >> 8}.{k & 255}"],
                    "weight": 1 + (k * 389) % 1000,
                    "check": {"type": "tcp", "port": port, "target": "127.0.0.1", "interval": 60}}
                   for k in range(n)]
        pools.append({"name": f"w{n}a{answers}.glb.test.", "policy": policy, "ttl": 30,
                      "answers": answers, "members": members})
json.dump({"version": 1, "pools": pools}, open(path, "w"))
PY
"$gslbctl" --db "$tmp/gslb.db" init >/dev/null
"$gslbctl" --db "$tmp/gslb.db" apply "$tmp/pools.json" >/dev/null

valgrind --tool=callgrind --toggle-collect=query_answer --callgrind-out-file="$tmp/cg.%p" \
	"$gslbd" --listen "127.0.0.1:$port" --zones "$tmp/zones" --db "$tmp/gslb.db" --threads 1 \
	--log-level warning 2>"$tmp/log" &
pid=$!
for _ in $(seq 150); do
	dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 ns1.glb.test >/dev/null 2>&1 && break
	sleep 0.2
done
# The checks' first results (rise 2 from up: every member stays up); then each pool in turn.
sleep 3
printf '%-8s %-8s %s\n' members answers instructions/query
for n in $sizes; do
	for answers in 1 2; do
		name=w${n}a$answers.glb.test
		echo "$name A" >"$tmp/q"
		dig +short -p "$port" @127.0.0.1 "$name" | grep -q . || { echo "no answer for $name" >&2; exit 1; }
		callgrind_control -z "$pid" >/dev/null 2>&1
		dnsperf -s 127.0.0.1 -p "$port" -d "$tmp/q" -n "$queries" -c 1 -q 20 >"$tmp/perf" 2>&1
		callgrind_control -d "$pid" >/dev/null 2>&1
		f=$(ls -t "$tmp"/cg.* | head -1)
		got=$(awk '/Queries completed/ {print $3}' "$tmp/perf")
		tot=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
		rm -f "$tmp"/cg.*.[0-9]*
		printf '%-8s %-8s %d\n' "$n" "$answers" $((tot / got))
	done
done
kill "$pid"
wait "$pid" || true
pid=""
