#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Geo answers with a large geo file and clients from many networks, where the workers' geo cache
# cannot hold them all: instructions per query by callgrind (a fixed set of queries, net of an
# idle window as long), for gslbd, optionally a second gslbd build, and gdnsd's geoip plugin on
# the same mmdb and queries.
#
#   bench/geo-cold.sh [BUILDDIR] [NETWORKS] [SUBNETS]      defaults: . 500000 100000
#
# The mmdb comes from bench/make-geo-db.pl NETWORKS (GEO_MMDB=file: that file instead).  Two
# query files of SUBNETS queries for a geo name of four members, each with EDNS Client Subnet:
# "cold", one query from each of SUBNETS random /24s, and "warm", the same number of queries from
# 2,000 of those /24s (which the cache holds).  Each file is sent once to fill the cache, then
# once measured.  GEO_BEFORE=DIR also measures the gslbd built in DIR (an A/B of a change);
# GEO_PEERS="" leaves gdnsd out; GEO_KEEP=1 keeps the files and callgrind dumps.  Prints one line per server and file; takes a few minutes.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "${1:-.}" && pwd)
networks=${2:-500000}
subnets=${3:-100000}
peers=${GEO_PEERS-gdnsd}
py=/usr/bin/python3
for t in valgrind callgrind_control dnsperf dig; do
	command -v "$t" >/dev/null || { echo "geo-cold.sh: needs $t" >&2; exit 1; }
done
[ -x "$builddir/gslbd" ] || { echo "geo-cold.sh: build first (no $builddir/gslbd)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/gslb-geocold.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${GEO_KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

mmdb=${GEO_MMDB:-}
if [ -z "$mmdb" ]; then
	mmdb=$tmp/geo.mmdb
	perl "$srcdir/bench/make-geo-db.pl" "$networks" "$mmdb" >&2
fi

zone=glb.test
members="fra 127.0.0.11 50.11 8.68
iad 127.0.0.12 39.04 -77.49
sin 127.0.0.13 1.35 103.82
syd 127.0.0.14 -33.87 151.21"

"$py" - "$tmp" "$subnets" "$zone" <<'EOF'
import random, struct, sys
import dns.edns, dns.message
tmp, n, zone = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(1)
nets = set()
while len(nets) < n:
    nets.add((rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255)))
nets = sorted(nets)
rng.shuffle(nets)
warm = nets[:2000]
for fn, seq in (('cold', nets), ('warm', [warm[i % len(warm)] for i in range(n)])):
    with open('%s/%s.bin' % (tmp, fn), 'wb') as f:
        for a, b, c in seq:
            q = dns.message.make_query('geo.' + zone, 'A', use_edns=0,
                                       options=[dns.edns.ECSOption('%d.%d.%d.0' % (a, b, c), 24)])
            w = q.to_wire()
            f.write(struct.pack('!H', len(w)) + w)
EOF

here=$srcdir/bench
# shellcheck source=bench/cglib.sh
. "$here/cglib.sh" # tree PID: PID and its descendants
cg() { # -z or -d: zero or dump the counters of every callgrind process under PID $2
	local p
	for p in $(tree "$2"); do callgrind_control "$1" "$p" >/dev/null 2>&1 || true; done
	[ "$1" = -z ] || sleep 0.5
}
collect() { # DIR: the dumps so far, moved there
	mkdir -p "$1"
	find "$tmp/out" -maxdepth 1 -type f -name 'cg.*.*' -exec mv {} "$1" \;
}
up() { # PORT PID
	for _ in $(seq 1500); do
		kill -0 "$2" 2>/dev/null || return 1
		dig +time=1 +tries=1 +norec -p "$1" @127.0.0.1 "ns1.$zone" A 2>/dev/null |
			grep -q "status: NOERROR" && return 0
		sleep 0.2
	done
	return 1
}

start_gslbd() { # DIR PORT BUILDDIR
	local d=$1 name addr lat lon
	mkdir -p "$d/zones"
	printf '$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n' \
		>"$d/zones/$zone.zone"
	"$3/gslbctl" --db "$d/gslb.db" init >/dev/null
	"$3/gslbctl" --db "$d/gslb.db" pool add "geo.$zone" --policy geo --ttl 30 >/dev/null
	while read -r name addr lat lon; do
		"$3/gslbctl" --db "$d/gslb.db" member add "geo.$zone" "$name" --address "$addr" \
			--location "$lat,$lon" >/dev/null
	done <<<"$members"
	taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$tmp/out/cg.%p" \
		"$3/gslbd" --listen "127.0.0.1:$2" --zones "$d/zones" --db "$d/gslb.db" \
		--geoip "$mmdb" --threads 1 --log-level info >"$d/log" 2>&1 &
	SPID=$!
}
start_gdnsd() { # DIR PORT
	local d=$1 name addr lat lon
	mkdir -p "$d/zones" "$d/run" "$d/state"
	printf '$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\ngeo 30 DYNA geoip!geo\n' \
		>"$d/zones/$zone"
	{
		echo "options => { listen => [ 127.0.0.1 ], dns_port => $2, udp_threads => 1,"
		echo "  tcp_threads => 1, run_dir => $d/run, state_dir => $d/state, edns_client_subnet => true }"
		echo "plugins => { geoip => {"
		echo "  maps => { geo => { geoip2_db => $mmdb, datacenters => [ fra, iad, sin, syd ],"
		echo "    auto_dc_coords => {"
		while read -r name addr lat lon; do echo "      $name => [ $lat, $lon ]"; done <<<"$members"
		echo "  } } }"
		echo "  resources => { geo => { map => geo, dcmap => {"
		while read -r name addr lat lon; do echo "    $name => $addr"; done <<<"$members"
		echo "  } } }"
		echo "} }"
	} >"$d/config"
	taskset -c 0 valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$tmp/out/cg.%p" gdnsd -c "$d" start >"$d/log" 2>&1 &
	SPID=$!
}

measure() { # LABEL START-ARGS...
	local label=$1 port=$((20000 + RANDOM % 20000)) d pid f n t0 t1 b i
	shift
	d=$tmp/$label
	mkdir -p "$d" "$tmp/out"
	SPID=""
	"$1" "$d" "$port" "${@:2}"
	pid=$SPID
	pids+=("$pid")
	up "$port" "$pid" || { echo "$label did not start:" >&2; tail -5 "$d/log" >&2; return 0; }
	for f in cold warm; do
		taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -B -d "$tmp/$f.bin" -n 1 -c 1 -q 20 \
			>/dev/null 2>&1 || true
		collect "$d/junk"
		cg -z "$pid"
		t0=$(date +%s.%N)
		n=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -B -d "$tmp/$f.bin" -n 1 -c 1 -q 20 \
			2>&1 | awk '/Queries completed/ {print $3}')
		cg -d "$pid"
		t1=$(date +%s.%N)
		collect "$d/$f.busy"
		cg -z "$pid"
		sleep "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
		cg -d "$pid"
		collect "$d/$f.idle"
		read -r b _ < <("$py" "$srcdir/bench/cgsum.py" "$d/$f.busy")
		read -r i _ < <("$py" "$srcdir/bench/cgsum.py" "$d/$f.idle")
		printf '%-8s %-5s %7d instructions/query (%s queries)\n' "$label" "$f" \
			$(((b - i) / ${n:-1})) "${n:-0}"
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	grep -o 'geo cache: .*' "$d/log" | sed "s/^/$label        /" || true
}

what="$networks networks"
[ -z "${GEO_MMDB:-}" ] || what="given"
echo "geo with a cold cache: $(basename "$mmdb") ($what), $subnets client /24s"
measure gslbd start_gslbd "$builddir"
[ -z "${GEO_BEFORE:-}" ] || measure before start_gslbd "$(cd "$GEO_BEFORE" && pwd)"
for p in $peers; do
	command -v "$p" >/dev/null && measure "$p" "start_$p"
done
