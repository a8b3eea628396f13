#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Curves: gslbd's cost along the axes that grow in real deployments, with gdnsd and Knot beside it
# where they do the same work (bench/README.md, "Curves").  Instructions per query are callgrind's
# over a fixed number of queries, net of an idle window as long (bench/cglib.sh); times are wall
# clock, one run each.  Every configuration's answers are checked before it is measured: a wrong
# answer stops the run with exit status 1.
#
# Usage: bench/curves.sh BUILDDIR       (bench/run.sh calls it; BENCH_CURVES=0 skips it there)
# Knobs (environment):
#   BENCH_CURVES_TABLES="1 2 3 4 5"    which tables
#   BENCH_CURVES_QUERIES=2000          queries per callgrind measurement
#   BENCH_CURVES_NETS="0 100 10000"    table 1: member networks of the geo pool
#   BENCH_CURVES_GEO_NETWORKS=500000   table 2: networks of the generated geo file
#   BENCH_CURVES_GEOGEN=FILE           table 2: its generator (default bench/make-geo-db.pl;
#                                      table 2 is skipped without it)
#   BENCH_CURVES_MEMBERS="2 32 256"    table 3: members of the weighted pool
#   BENCH_CURVES_POOLS="10 100000"     table 4: pools in the database (and table 5's pool memory)
#   BENCH_CURVES_CHANGES=5             table 4: changes timed to the changed answer (bench/scale.sh)
#   BENCH_CURVES_NAMES=1000000         table 5: static names in one zone
#   BENCH_CURVES_PEERS="gdnsd knot"    peers beside gslbd (those missing are skipped)
#   BENCH_KEEP=1                       keep the temporary directory
# Loopback only; everything in a temporary directory; every process it starts is stopped by PID;
# every wait is bounded.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
builddir=$(cd "${1:-$top}" && pwd)
tables=${BENCH_CURVES_TABLES:-1 2 3 4 5}
queries=${BENCH_CURVES_QUERIES:-2000}
netsizes=${BENCH_CURVES_NETS:-0 100 10000}
geonets=${BENCH_CURVES_GEO_NETWORKS:-500000}
geogen=${BENCH_CURVES_GEOGEN:-$here/make-geo-db.pl}
msizes=${BENCH_CURVES_MEMBERS:-2 32 256}
psizes=${BENCH_CURVES_POOLS:-10 100000}
changes=${BENCH_CURVES_CHANGES:-5}
names=${BENCH_CURVES_NAMES:-1000000}
peers=${BENCH_CURVES_PEERS-gdnsd knot}
py=/usr/bin/python3
zone=curves.test
testmmdb=$top/geoip/gslb-test-city.mmdb

log() { echo "curves: $*" >&2; }
fail() {
	echo "curves: FAILED: $*" >&2
	exit 1
}
{ [ -x "$builddir/gslbd" ] && [ -x "$builddir/gslbctl" ]; } || fail "build gslbd first ($builddir)"
for c in dnsperf dig valgrind callgrind_control; do
	command -v "$c" >/dev/null || fail "$c missing"
done
"$py" -c 'import dns.message' 2>/dev/null || fail "dnspython missing"
have() { [[ " $peers " == *" $1 "* ]] && command -v "$2" >/dev/null; }
# Knot's geoip module is a package of its own in Debian (knot-module-geoip)
knot_geoip() {
	ls /usr/lib/*/knot/modules-*/geoip.so >/dev/null 2>&1 ||
		knotd -V 2>/dev/null | grep -q 'Static modules:.*geoip'
}

work=$(mktemp -d /tmp/gslb-curves.XXXXXX)
pids=()
cleanup() {
	local p
	# only the servers still running: a PID stopped and reaped before may be another's by now
	for p in $(jobs -p); do
		[[ " ${pids[*]} " != *" $p "* ]] || stop "$p"
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
# shellcheck source=bench/cglib.sh
. "$here/cglib.sh"
res=$work/results.tsv
: >"$res"
put() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$res"; } # TABLE ROW COLUMN VALUE UNIT
notes=$work/notes
: >"$notes"
note() { echo "$*" >>"$notes"; log "$*"; }

th() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; } # 100000: 100,000
port_base=$((20000 + RANDOM % 20000))
next_port() { port_base=$((port_base + 1)); port=$port_base; }

zonefile() { # EXTRA-LINE...: the zone with h1, the name every server is probed with
	echo '$TTL 300'
	echo "@ SOA ns1 hostmaster 1 3600 600 86400 60"
	echo "@ NS ns1"
	echo "ns1 A 127.0.0.1"
	echo "h1 A 127.0.0.1"
	local l
	for l in "$@"; do echo "$l"; done
}

## ---- servers under callgrind: start_NAME DIR PORT MMDB sets SPID; DIR holds curves.py's files
cg=(valgrind --tool=callgrind --trace-children=yes)
start_gslbd() {
	local d=$1 port=$2 mmdb=$3
	mkdir -p "$d/zones" "$d/out"
	zonefile >"$d/zones/$zone.zone"
	"$builddir/gslbctl" --db "$d/gslb.db" init >/dev/null
	"$builddir/gslbctl" --db "$d/gslb.db" apply "$d/pools.json" >/dev/null ||
		fail "gslbctl apply $d/pools.json"
	"${cg[@]}" --callgrind-out-file="$d/out/cg.%p" "$builddir/gslbd" --listen "127.0.0.1:$port" \
		--zones "$d/zones" --db "$d/gslb.db" --geoip "$mmdb" --threads 1 --log-level warning \
		>"$d/log" 2>&1 &
	SPID=$!
}
start_gdnsd() {
	local d=$1 port=$2
	mkdir -p "$d/zones" "$d/run" "$d/state" "$d/out"
	local extra=()
	[ ! -e "$d/gdnsd.geo" ] || extra+=("geo 30 DYNA geoip!geo")
	[ ! -e "$d/gdnsd.weighted" ] || extra+=("w 30 DYNA weighted!w")
	zonefile "${extra[@]}" >"$d/zones/$zone"
	{
		echo "options => { listen => [ 127.0.0.1 ], dns_port => $port, udp_threads => 1,"
		echo "  tcp_threads => 1, run_dir => $d/run, state_dir => $d/state, edns_client_subnet => true }"
		echo "plugins => {"
		cat "$d"/gdnsd.geo "$d"/gdnsd.weighted 2>/dev/null || true
		echo "}"
	} >"$d/config"
	"${cg[@]}" --callgrind-out-file="$d/out/cg.%p" gdnsd -c "$d" start >"$d/log" 2>&1 &
	SPID=$!
}
start_knot() { # mod-geoip as knot.mod says, on the names of knot.geo
	local d=$1 port=$2
	mkdir -p "$d/out"
	zonefile "geo A 127.0.0.2" "w A 127.0.0.2" >"$d/$zone.zone"
	cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    edns-client-subnet: on
database:
    storage: "$d"
mod-geoip:
  - id: curves
$(cat "$d/knot.mod")
zone:
  - domain: $zone
    file: "$d/$zone.zone"
    journal-content: none
    zonefile-load: whole
    module: mod-geoip/curves
log:
  - target: stderr
    any: warning
EOF
	"${cg[@]}" --callgrind-out-file="$d/out/cg.%p" knotd -c "$d/knot.conf" >"$d/log" 2>&1 &
	SPID=$!
}
wait_up() { # PORT PID
	for _ in $(seq 1200); do
		kill -0 "$2" 2>/dev/null || return 1
		dig +time=1 +tries=1 +norec -p "$1" @127.0.0.1 "h1.$zone" A 2>/dev/null |
			grep -q "status: NOERROR" && return 0
		sleep 0.25
	done
	return 1
}
# up SERVER DIR MMDB: starts it under callgrind, sets SPID and SPORT, or fails
up() {
	next_port
	SPORT=$port
	"start_$1" "$2" "$port" "$3"
	pids+=("$SPID")
	wait_up "$port" "$SPID" || {
		tail -5 "$2/log" >&2
		fail "$1 did not start ($2)"
	}
}
# queries PORT FILE [RUNS]: sends the dnsperf -B file once (or RUNS times), prints the answers
queries() {
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -B -n "${3:-1}" -l 600 -c 1 -q 10 2>&1 |
		awk '/Queries completed/ {print $3}'
}
# measure TABLE ROW SERVER DIR PORT PID FILE [RUNS]: a warm-up, then instructions per answer
measure() {
	local t=$1 row=$2 s=$3 d=$4 port=$5 pid=$6 f=$7 i n
	log "$t: $row: $s"
	dnsperf -s 127.0.0.1 -p "$port" -d "$f" -B -l 2 -c 1 -q 10 >/dev/null 2>&1 || true
	read -r i _ n < <(cg_net "$pid" "$d" "$(basename "$f")" queries "$port" "$f" "${8:-1}")
	[ "${n:-0}" -gt 0 ] || fail "$s answered no query of $f"
	put "$t" "$row" "$s" "$i" ""
}
check() { # SERVER PORT NAME EXPECT
	"$py" "$here/curves.py" check "$2" "$3" "$4" || fail "$1 answers $3 wrongly (expected: $4)"
}

## ---- 1. geo pool: member networks
table1() {
	local n d s sd
	for n in $netsizes; do
		d=$work/t1-$n
		mkdir -p "$d"
		CURVES_MMDB=$testmmdb "$py" "$here/curves.py" geo-nets "$d" "$n" "$queries"
		for s in gslbd gdnsd knot; do
			case $s in
			gdnsd) have gdnsd gdnsd || continue ;;
			# Knot only maps networks to answers (mod-geoip's subnet mode): no distance
			# ranking for the clients outside them
			knot) have knot knotd && [ -e "$d/knot.mod" ] && knot_geoip || continue ;;
			esac
			sd=$d/$s
			mkdir -p "$sd"
			cp "$d"/pools.json "$d"/gdnsd.* "$d/knot.mod" "$sd"/ 2>/dev/null || true
			up "$s" "$sd" "$testmmdb"
			if [ "$s" = knot ]; then
				check "$s" "$SPORT" "geo.$zone" "$d/expect.knot"
			else
				check "$s" "$SPORT" "geo.$zone" "$d/expect"
			fi
			[ ! -e "$d/inside.q" ] ||
				measure 1 "$(th "$n") networks, clients inside" "$s" "$sd" "$SPORT" "$SPID" "$d/inside.q"
			[ "$s" = knot ] ||
				measure 1 "$(th "$n") networks, clients outside" "$s" "$sd" "$SPORT" "$SPID" "$d/outside.q"
			stop "$SPID"
		done
	done
}

## ---- 2. geo with a large geo file: cache misses and hits
table2() {
	local d=$work/t2 mmdb=$work/t2/big.mmdb gport gpid dport dpid kport kpid s i n row
	if [ ! -e "$geogen" ]; then
		note "table 2 skipped: no geo file generator ($geogen)"
		return 0
	fi
	mkdir -p "$d/gslbd" "$d/gdnsd"
	log "2: generating a geo file of $geonets networks"
	timeout 900 perl "$geogen" "$geonets" "$mmdb" >&2 || fail "$geogen $geonets failed"
	CURVES_MMDB=$mmdb "$py" "$here/curves.py" geo-big "$d" "$queries"
	cp "$d"/pools.json "$d/gdnsd.geo" "$d/gslbd/"
	cp "$d/gdnsd.geo" "$d/gdnsd/"
	up gslbd "$d/gslbd" "$mmdb"
	gport=$SPORT gpid=$SPID
	check gslbd "$gport" "geo.$zone" "$d/expect"
	if have gdnsd gdnsd; then
		up gdnsd "$d/gdnsd" "$mmdb"
		dport=$SPORT dpid=$SPID
		check gdnsd "$dport" "geo.$zone" "$d/expect"
		# both rank the four sites by distance from the location in the same file
		"$py" "$here/curves.py" agree "$gport" "$dport" "geo.$zone" "$d/clients" 0.95 ||
			fail "gslbd and gdnsd do not answer alike from $mmdb"
	fi
	if have knot knotd && knot_geoip; then
		mkdir -p "$d/knot"
		cp "$d/knot.mod" "$d/knot/"
		up knot "$d/knot" "$mmdb"
		kport=$SPORT kpid=$SPID
		check knot "$kport" "geo.$zone" "$d/expect.knot"
	fi
	# the cold run first, warmed up with other /24s: its clients are new to the cache
	for s in gslbd gdnsd knot; do
		case $s in
		gslbd) set -- "$gport" "$gpid" ;;
		gdnsd) [ -n "${dpid:-}" ] || continue; set -- "$dport" "$dpid" ;;
		knot) [ -n "${kpid:-}" ] || continue; set -- "$kport" "$kpid" ;;
		esac
		row="$(th "$geonets") networks, 100,000 client /24s (cold)"
		log "2: $row: $s"
		dnsperf -s 127.0.0.1 -p "$1" -d "$d/warmup.q" -B -n 1 -l 60 -c 1 -q 10 >/dev/null 2>&1 || true
		read -r i _ n < <(cg_net "$2" "$d/$s" cold queries "$1" "$d/cold.q")
		[ "${n:-0}" -gt 0 ] || fail "$s answered no query of $d/cold.q"
		put 2 "$row" "$s" "$i" ""
		measure 2 "$(th "$geonets") networks, 100 client /24s (warm)" "$s" "$d/$s" "$1" "$2" "$d/warm.q"
		stop "$2"
	done
}

## ---- 3. weighted pool: members
table3() {
	local m d s sd
	for m in $msizes; do
		d=$work/t3-$m
		mkdir -p "$d"
		"$py" "$here/curves.py" weighted "$d" "$m" "$queries"
		for s in gslbd gdnsd knot; do
			case $s in
			gdnsd) have gdnsd gdnsd || continue ;;
			knot) have knot knotd && knot_geoip || continue ;;
			esac
			if [ "$s" = gdnsd ] && [ "$m" -gt 64 ]; then
				put 3 "$m members" gdnsd "n/a (at most 64)" ""
				continue
			fi
			sd=$d/$s
			mkdir -p "$sd"
			cp "$d"/pools.json "$d"/gdnsd.* "$d/knot.mod" "$sd"/
			up "$s" "$sd" "$testmmdb"
			check "$s" "$SPORT" "w.$zone" "$d/expect"
			measure 3 "$m members" "$s" "$sd" "$SPORT" "$SPID" "$d/w.q"
			stop "$SPID"
		done
	done
}

## ---- 4. one member change with many pools
table4() {
	local p d db i t tm out
	for p in $psizes; do
		d=$work/t4-$p
		db=$d/gslb.db
		mkdir -p "$d/out"
		"$py" "$here/curves.py" pools "$d/pools.json" "$p"
		"$builddir/gslbctl" --db "$db" init >/dev/null
		log "4: $p pools: gslbctl apply"
		timeout 900 "$builddir/gslbctl" --db "$db" apply "$d/pools.json" >/dev/null ||
			fail "gslbctl apply of $p pools"
		# instructions: one command, whole, under callgrind
		log "4: $p pools: gslbctl member state under callgrind"
		timeout 900 valgrind --tool=callgrind --callgrind-out-file="$d/out/cg.gslbctl" \
			"$builddir/gslbctl" --db "$db" member state "p0.$zone" m0 down >"$d/cg.log" 2>&1 ||
			fail "gslbctl member state under callgrind (log: $d/cg.log)"
		"$builddir/gslbctl" --db "$db" export | "$py" -c '
import json, sys
p = [p for p in json.load(sys.stdin)["pools"] if p["name"] == "p0.'$zone'."][0]
sys.exit(0 if p["members"][0].get("admin") == "down" else 1)' ||
			fail "gslbctl member state p0.$zone m0 down did not set it down"
		put 4 "gslbctl member state: instructions" "$(th "$p") pools" \
			"$("$py" "$here/cgsum.py" "$d/out" | cut -d' ' -f1)" ""
		# wall time: the median of 5 (up and down in turn)
		tm=$(for i in 1 2 3 4 5; do
			t=$(date +%s.%N)
			"$builddir/gslbctl" --db "$db" member state "p1.$zone" m0 "$([ $((i % 2)) = 1 ] && echo down || echo auto)" \
				>/dev/null || exit 1
			awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'
		done | sort -g | sed -n 3p) || fail "gslbctl member state failed"
		put 4 "gslbctl member state: wall time (median of 5)" "$(th "$p") pools" "$tm" s
		# commit to changed answer: bench/scale.py's, with only the pools
		log "4: $p pools: bench/scale.sh $builddir 0 $p $changes 0"
		out=$(timeout 1200 "$here/scale.sh" "$builddir" 0 "$p" "$changes" 0 2>&1) || {
			echo "$out" >&2
			fail "bench/scale.sh with $p pools"
		}
		echo "$out" >"$d/scale.txt"
		awk -v p="$(th "$p")" -F'|' '/commit to changed answer/ {
				split($3, v, /[ ,]+/)
				for (i = 1; i <= length(v); i++) { if (v[i] == "median") m = v[i + 1]; if (v[i] == "max") x = v[i + 1] }
				printf "4\tcommit to changed answer: median\t%s pools\t%s\ts\n", p, m
				printf "4\tcommit to changed answer: max\t%s pools\t%s\ts\n", p, x
			}' <<<"$out" >>"$res"
		# the RSS at the first answer, for table 5
		awk -F'|' '/RSS at first answer/ { if (match($3, /VmRSS [0-9]+/)) print substr($3, RSTART + 6, RLENGTH - 6) }' \
			<<<"$out" | head -1 >"$d/rss_mib"
	done
}

## ---- 5. static names and pools: load and memory
table5() {
	local s d e out secs kib cpu kib0 lo hi
	if [ -e "$here/zoneload.sh" ]; then
		local servers=gslbd
		! have gdnsd gdnsd || servers="$servers gdnsd"
		! have knot knotd || servers="$servers knot"
		log "5: bench/zoneload.sh $builddir $names $servers"
		# shellcheck disable=SC2086
		bash "$here/zoneload.sh" "$builddir" "$names" $servers >"$work/zoneload.txt" 2>&1 ||
			fail "bench/zoneload.sh failed: $(tail -3 "$work/zoneload.txt")"
	else
		d=$work/t5
		mkdir -p "$d/zone"
		"$py" "$here/curves.py" zone "$d/zone/$zone.zone" "$names"
		"$py" "$here/curves.py" zone "$d/empty.zone" 0
		for s in gslbd gdnsd knot; do
			case $s in
			gdnsd) have gdnsd gdnsd || continue ;;
			knot) have knot knotd || continue ;;
			esac
			for e in empty full; do
				rm -rf "$d/$s-$e"
				mkdir -p "$d/$s-$e/zones"
				if [ "$e" = full ]; then
					cp "$d/zone/$zone.zone" "$d/$s-$e/zones/"
				else
					cp "$d/empty.zone" "$d/$s-$e/zones/$zone.zone"
				fi
			done
			log "5: $names names: $s"
			read -r _ kib0 < <("$py" "$here/curves.py" load "$s" "$builddir" "$d/$s-empty" 0) ||
				fail "$s with an empty zone"
			read -r secs kib cpu < <("$py" "$here/curves.py" load "$s" "$builddir" "$d/$s-full" "$names") ||
				fail "$s with $names names"
			put 5 "$(th "$names") names: start to first answer" "$s" "$secs" s
			put 5 "$(th "$names") names: CPU time to first answer" "$s" "$cpu" s
			put 5 "$(th "$names") names: RSS growth per name (net of an empty zone)" "$s" \
				"$(awk -v a="$kib" -v b="$kib0" -v n="$names" 'BEGIN { print (a - b) * 1024 / n }')" B
		done
	fi
	lo=${psizes%% *}
	hi=${psizes##* }
	if [ "$lo" != "$hi" ] && [ -s "$work/t4-$lo/rss_mib" ] && [ -s "$work/t4-$hi/rss_mib" ]; then
		put 5 "RSS growth per pool ($(th "$hi") pools net of $(th "$lo"), bench/scale.sh)" gslbd \
			"$(awk -v a="$(cat "$work/t4-$hi/rss_mib")" -v b="$(cat "$work/t4-$lo/rss_mib")" \
				-v n="$((hi - lo))" 'BEGIN { print (a - b) * 1048576 / n }')" B
	fi
}

## ---- the run
t0=$(date +%s)
echo "## Curves"
echo
echo "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores," \
	"$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr);" \
	"$("$builddir/gslbd" --version 2>&1 | head -1) (built in $builddir, $(git -C "$builddir" log -1 --format=%h 2>/dev/null || echo '?'));" \
	"gdnsd $(gdnsd 2>&1 | awk '/version/ { print $3; exit }' || true); $(knotd -V 2>/dev/null | head -1 || true)."
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)." \
	"BENCH_CURVES_QUERIES=$queries BENCH_CURVES_NETS=\"$netsizes\" BENCH_CURVES_GEO_NETWORKS=$geonets" \
	"BENCH_CURVES_MEMBERS=\"$msizes\" BENCH_CURVES_POOLS=\"$psizes\" BENCH_CURVES_CHANGES=$changes" \
	"BENCH_CURVES_NAMES=$names"
echo
for t in $tables; do
	case $t in
	1 | 2 | 3 | 4 | 5) "table$t" ;;
	*) fail "no table $t" ;;
	esac
done
"$py" "$here/curves.py" report "$res"
if [ -s "$work/zoneload.txt" ]; then
	echo "Static names for table 5, by bench/zoneload.sh $builddir $names:"
	echo
	cat "$work/zoneload.txt"
	echo
fi
[ ! -s "$notes" ] || { sed 's/^/Note: /' "$notes"; echo; }
echo "Every configuration's answers were checked before it was measured; $(($(date +%s) - t0)) s in all."
