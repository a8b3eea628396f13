#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Geo against weighted answers in gslbd alone: the same four sites as a geo pool and as a weighted
# pool, queried with EDNS Client Subnet from many client /24s (a dnsperf -B file, one ECS per
# query), gslbd pinned to core 0 and dnsperf to core 1.  Prints queries/s, server CPU time per
# query (from /proc), instructions per query (callgrind, net of an idle run) and the hit rate of
# the workers' geo cache (gslbd logs it at exit).
#
#   bench/geo.sh [BUILDDIR] [SUBNETS] [SECONDS]     defaults: . 20000 5
#
# Half of the subnets are /24s inside the test database's networks (10.1-10.6/16), half are
# random /24s, mostly in the large empty networks of the test database.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "${1:-.}" && pwd)
subnets=${2:-20000}
secs=${3:-5}
gslbd=$builddir/gslbd
gslbctl=$builddir/gslbctl
py=/usr/bin/python3
[ -x "$gslbd" ] && [ -x "$gslbctl" ] || { echo "geo.sh: build first (no $gslbd)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "geo.sh: needs dnsperf (apt-get install dnsperf)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/gslb-geo.XXXXXX)
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir "$tmp/zones"
cat >"$tmp/zones/glb.test.zone" <<'EOF'
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
EOF

db=$tmp/gslb.db
"$gslbctl" --db "$db" init >/dev/null
"$gslbctl" --db "$db" pool add geo.glb.test --policy geo --ttl 30
"$gslbctl" --db "$db" pool add w.glb.test --policy weighted --ttl 30
while read -r name addr cc cont loc weight; do
	"$gslbctl" --db "$db" member add geo.glb.test "$name" --address "$addr" --country "$cc" \
		--continent "$cont" --location "$loc"
	"$gslbctl" --db "$db" member add w.glb.test "$name" --address "$addr" --weight "$weight"
done <<'EOF'
fra 127.0.0.11 DE EU 50.11,8.68 100
iad 127.0.0.12 US NA 39.04,-77.49 100
sin 127.0.0.13 SG AS 1.35,103.82 50
syd 127.0.0.14 AU OC -33.87,151.21 50
EOF

"$py" - "$tmp" "$subnets" <<'EOF'
import random, struct, sys
import dns.edns, dns.message
tmp, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
nets = []
for i in range(n):
    if i % 2 == 0:
        nets.append('10.%d.%d.0' % (rng.randint(1, 6), rng.randint(0, 255)))
    else:
        nets.append('%d.%d.%d.0' % (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255)))
for name, fn in (('geo.glb.test', 'geo.bin'), ('w.glb.test', 'w.bin')):
    with open('%s/%s' % (tmp, fn), 'wb') as f:
        for s in nets:
            q = dns.message.make_query(name, 'A', use_edns=0,
                                       options=[dns.edns.ECSOption(s, 24)])
            w = q.to_wire()
            f.write(struct.pack('!H', len(w)) + w)
EOF

port=$((20000 + RANDOM % 20000))
args=(--listen "127.0.0.1:$port" --zones "$tmp/zones" --db "$db" --threads 1
	--geoip "$srcdir/geoip/gslb-test-city.mmdb")
hz=$(getconf CLK_TCK)

up() {
	for _ in $(seq 100); do
		dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 ns1.glb.test >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# qps, CPU us/query and the geo cache line for one file
run() {
	taskset -c 0 "$gslbd" "${args[@]}" --log-level info 2>"$tmp/log" &
	pid=$!
	up
	local t0 t1 out n qps
	t0=$(cpu "$pid")
	out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -B -d "$tmp/$1" -l "$secs" -c 4 -q 200 2>&1)
	t1=$(cpu "$pid")
	kill "$pid"
	wait "$pid" || true
	pid=""
	n=$(echo "$out" | awk '/Queries completed/ {print $3}')
	qps=$(echo "$out" | awk '/Queries per second/ {printf "%.0f", $4}')
	printf '%-9s %9s qps  %5.2f us CPU/query  %s\n' "${1%.bin}" "$qps" \
		"$(echo "($t1 - $t0) * 1000000 / $hz / $n" | bc -l)" \
		"$(grep -o 'geo cache: .*' "$tmp/log" || echo 'geo cache: (no exit line)')"
}

# user-space instructions for one pass over a file, or none
instructions() {
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$gslbd" "${args[@]}" \
		--log-level warning 2>/dev/null &
	pid=$!
	up
	[ -z "${1:-}" ] || dnsperf -s 127.0.0.1 -p "$port" -B -d "$tmp/$1" -n 1 -c 1 -q 50 >/dev/null 2>&1
	kill "$pid"
	wait "$pid" || true
	pid=""
	awk '/^(summary|totals):/ {print $2; exit}' "$tmp/cg.out"
}

echo "gslbd geo vs weighted, $subnets client /24s with ECS, ${secs}s per run, three runs each"
for f in geo.bin w.bin geo.bin w.bin geo.bin w.bin; do run "$f"; done
if command -v valgrind >/dev/null; then
	base=$(instructions)
	for f in geo.bin w.bin; do
		tot=$(instructions "$f")
		printf '%-9s %6d instructions/query (callgrind, net of an idle run)\n' "${f%.bin}" \
			$(((tot - base) / subnets))
	done
fi
