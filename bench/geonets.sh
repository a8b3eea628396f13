#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Geo pools with many member networks: instructions per query (callgrind) of gslbd answering a geo
# pool whose four members list NETS member networks between them, for each NETS given, queried
# with EDNS Client Subnet from many client /24s (a dnsperf -B file, one ECS per query, as
# bench/geo.sh).  Two figures per count: the whole process net of an idle run with the same
# database (start, no query, stop), and query_answer() inclusive.  With BENCH_GDNSD=1, gdnsd too:
# its geoip plugin with the same networks as `nets` over the same MaxMind file (the whole process
# net of an idle run; gdnsd answers by the networks' datacenter lists, not by gslbd's rules).
#
#   bench/geonets.sh [BUILDDIR] [SUBNETS] [NETS...]     defaults: . 20000 0 100 10000
#
# The networks (seeded, the same for every build): nine in ten IPv4, a third of those inside the
# test database's 10.1-10.6/16 where half of the clients are (/16 to /28), the rest anywhere (/8 to
# /28); one in ten IPv6 (/32 to /64).  Members get them in turn.  BENCH_FAMILY=6 asks from IPv6
# /48s instead (half inside 2001:db8::/32), with IPv6 networks only (a third inside 2001:db8::/32,
# /36 to /60; the rest in 2000::/3, /16 to /64).  BENCH_KEEP=1 keeps the
# temporary directory (databases, the last callgrind dump).
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "${1:-.}" && pwd)
subnets=${2:-20000}
shift 2 2>/dev/null || shift $#
counts=${*:-0 100 10000}
gslbd=$builddir/gslbd
gslbctl=$builddir/gslbctl
py=/usr/bin/python3
[ -x "$gslbd" ] && [ -x "$gslbctl" ] || { echo "geonets.sh: build first (no $gslbd)" >&2; exit 1; }
for c in dnsperf valgrind callgrind_annotate; do
	command -v "$c" >/dev/null || { echo "geonets.sh: needs $c" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/gslb-geonets.XXXXXX)
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

mkdir "$tmp/zones"
cat >"$tmp/zones/glb.test.zone" <<'EOF'
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
EOF

# The queries, as bench/geo.sh makes them.
family=${BENCH_FAMILY:-4}
"$py" - "$tmp" "$subnets" "$family" <<'EOF'
import ipaddress, random, struct, sys
import dns.edns, dns.message
tmp, n, family = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(1)
with open('%s/geo.bin' % tmp, 'wb') as f:
    for i in range(n):
        if family == 6:
            top = 0x20010db8 if i % 2 == 0 else (0x2000 << 16 | rng.getrandbits(29))
            s = str(ipaddress.IPv6Address((top << 96) | rng.getrandbits(16) << 80))
        elif i % 2 == 0:
            s = '10.%d.%d.0' % (rng.randint(1, 6), rng.randint(0, 255))
        else:
            s = '%d.%d.%d.0' % (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255))
        q = dns.message.make_query('geo.glb.test', 'A', use_edns=0,
                                   options=[dns.edns.ECSOption(s, 48 if family == 6 else 24)])
        w = q.to_wire()
        f.write(struct.pack('!H', len(w)) + w)
EOF

# A database with the geo pool of bench/geo.sh and NETS member networks.
make_db() {
	local db=$1 nets=$2
	"$gslbctl" --db "$db" init >/dev/null
	"$gslbctl" --db "$db" pool add geo.glb.test --policy geo --ttl 30
	while read -r name addr cc cont loc; do
		"$gslbctl" --db "$db" member add geo.glb.test "$name" --address "$addr" --country "$cc" \
			--continent "$cont" --location "$loc"
	done <<-'EOF'
		fra 127.0.0.11 DE EU 50.11,8.68
		iad 127.0.0.12 US NA 39.04,-77.49
		sin 127.0.0.13 SG AS 1.35,103.82
		syd 127.0.0.14 AU OC -33.87,151.21
	EOF
	"$py" - "$db" "$nets" "$family" <<-'EOF'
		import ipaddress, random, sqlite3, sys
		db, n, family = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		rng = random.Random(2)
		con = sqlite3.connect(db)
		ids = [r[0] for r in con.execute('SELECT id FROM member ORDER BY name')]
		rows = set()
		i = 0
		while len(rows) < n:
		    if family == 6 and i % 3 == 0:
		        a = ipaddress.IPv6Address((0x20010db8 << 96) | rng.getrandbits(96))
		        net = ipaddress.ip_network('%s/%d' % (a, rng.randint(36, 60)), strict=False)
		    elif family == 6:
		        a = ipaddress.IPv6Address((1 << 125) | rng.getrandbits(125))
		        net = ipaddress.ip_network('%s/%d' % (a, rng.randint(16, 64)), strict=False)
		    elif i % 10 == 9:
		        a = ipaddress.IPv6Address((0x20010db8 << 96) | rng.getrandbits(96))
		        net = ipaddress.ip_network('%s/%d' % (a, rng.randint(32, 64)), strict=False)
		    elif i % 3 == 0:
		        a = ipaddress.IPv4Address((10 << 24) | (rng.randint(1, 6) << 16) | rng.getrandbits(16))
		        net = ipaddress.ip_network('%s/%d' % (a, rng.randint(16, 28)), strict=False)
		    else:
		        a = ipaddress.IPv4Address(rng.getrandbits(32))
		        net = ipaddress.ip_network('%s/%d' % (a, rng.randint(8, 28)), strict=False)
		    rows.add((ids[i % len(ids)], str(net)))
		    i += 1
		con.executemany('INSERT OR IGNORE INTO member_network (member_id, prefix) VALUES (?, ?)',
		                sorted(rows))
		con.commit()
	EOF
}

port=$((20000 + RANDOM % 20000))

up() {
	for _ in $(seq 200); do
		dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 ns1.glb.test >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# Total instructions and query_answer()'s inclusive ones for one pass over the queries, or none.
instructions() {
	local db=$1 out=$tmp/cg.out
	rm -f "$out"
	valgrind --tool=callgrind --callgrind-out-file="$out" "$gslbd" --listen "127.0.0.1:$port" \
		--zones "$tmp/zones" --db "$db" --threads 1 \
		--geoip "$srcdir/geoip/gslb-test-city.mmdb" --log-level warning 2>/dev/null &
	pid=$!
	up
	[ -z "${2:-}" ] || dnsperf -s 127.0.0.1 -p "$port" -B -d "$tmp/geo.bin" -n 1 -c 1 -q 50 \
		>"$tmp/dnsperf.out" 2>&1
	kill "$pid"
	wait "$pid" || true
	pid=""
	echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$out")" \
		"$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
			awk '/query\.c:query_answer \[/ {gsub(",", "", $1); print $1; exit}')"
}

# gdnsd: the four sites as a geoip map over the same database, with the pool's networks as nets.
gdnsd_conf() {
	local d=$1 db=$2
	rm -rf "$d"
	mkdir -p "$d/zones" "$d/run" "$d/state"
	{ cat "$tmp/zones/glb.test.zone"; echo "geo 30 DYNA geoip!geo"; } >"$d/zones/glb.test"
	"$py" - "$db" "$d/nets" <<-'EOF'
		import sqlite3, sys
		con = sqlite3.connect(sys.argv[1])
		dcs = {}
		for prefix, name in con.execute('SELECT n.prefix, m.name FROM member_network n '
		                                'JOIN member m ON m.id = n.member_id ORDER BY 1, 2'):
		    dcs.setdefault(prefix, []).append(name)
		with open(sys.argv[2], 'w') as f:
		    for prefix, names in dcs.items():
		        f.write('%s => [ %s ]\n' % (prefix, ', '.join(names)))
	EOF
	local nets=""
	[ -s "$d/nets" ] && nets="nets => $d/nets,"
	cat >"$d/config" <<-EOF
		options => { listen => [ 127.0.0.1 ], dns_port => $port, udp_threads => 1,
		  tcp_threads => 1, run_dir => $d/run, state_dir => $d/state, edns_client_subnet => true }
		plugins => { geoip => {
		  maps => { geo => { geoip2_db => $srcdir/geoip/gslb-test-city.mmdb,
		    datacenters => [ fra, iad, sin, syd ], $nets
		    auto_dc_coords => { fra => [ 50.11, 8.68 ], iad => [ 39.04, -77.49 ],
		      sin => [ 1.35, 103.82 ], syd => [ -33.87, 151.21 ] } } }
		  resources => { geo => { map => geo, dcmap => { fra => 127.0.0.11, iad => 127.0.0.12,
		    sin => 127.0.0.13, syd => 127.0.0.14 } } }
		} }
	EOF
}

# gdnsd's total instructions for one pass over the queries, or none.
gdnsd_instructions() {
	local d=$1 out=$tmp/cg-gdnsd
	rm -rf "$out"
	mkdir "$out"
	valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
		gdnsd -c "$d" start >"$d/log" 2>&1 &
	pid=$!
	up || { echo "geonets.sh: gdnsd did not start:" >&2; tail -5 "$d/log" >&2; exit 1; }
	[ -z "${2:-}" ] || dnsperf -s 127.0.0.1 -p "$port" -B -d "$tmp/geo.bin" -n 1 -c 1 -q 50 \
		>"$tmp/dnsperf.out" 2>&1
	kill "$pid"
	wait "$pid" || true
	pid=""
	cat "$out"/cg.* | awk '/^(summary|totals):/ {s += $2} END {print s}'
}

echo "gslbd ($builddir): geo pool, $subnets IPv$family clients with ECS, instructions per query (callgrind)"
printf '%8s %12s %14s\n' networks "net of idle" "query_answer"
for nets in $counts; do
	db=$tmp/gslb-$nets.db
	rm -f "$db"
	make_db "$db" "$nets" >/dev/null
	read -r idle _ < <(instructions "$db")
	read -r busy qa < <(instructions "$db" busy)
	n=$(awk '/Queries completed/ {print $3}' "$tmp/dnsperf.out")
	[ "${n:-0}" -gt 0 ] || { echo "geonets.sh: no query answered" >&2; exit 1; }
	printf '%8d %12d %14d\n' "$nets" $(((busy - idle) / n)) $((${qa:-0} / n))
done

[ "${BENCH_GDNSD:-0}" = 1 ] || exit 0
echo "gdnsd $(gdnsd 2>&1 | awk '{print $3; exit}'): geoip with the networks as nets, same queries"
printf '%8s %12s\n' networks "net of idle"
for nets in $counts; do
	db=$tmp/gslb-$nets.db
	gdnsd_conf "$tmp/gdnsd" "$db"
	idle=$(gdnsd_instructions "$tmp/gdnsd")
	busy=$(gdnsd_instructions "$tmp/gdnsd" busy)
	n=$(awk '/Queries completed/ {print $3}' "$tmp/dnsperf.out")
	[ "${n:-0}" -gt 0 ] || { echo "geonets.sh: no query answered" >&2; exit 1; }
	printf '%8d %12d\n' "$nets" $(((busy - idle) / n))
done
