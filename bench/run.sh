#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: gslbd side by side with gdnsd, Knot, NSD and PowerDNS on the same data.
#
# Usage: bench/run.sh [BUILDDIR]          (make bench passes the build directory)
# Knobs (environment):
#   BENCH_SECONDS=6        length of each throughput run
#   BENCH_REPEAT=3         runs per measurement; the tables show the median
#   BENCH_PEERS="gdnsd knot nsd pdns"   peers to compare (gslbd always runs)
#   BENCH_WORKLOADS="static edns nxdomain weighted checked geo tcp signed signedweighted signedmiss"
#                          edns: the static names asked with an EDNS OPT record (DO=0), the
#                          query signed asks without its DO bit, so its ratio is computed in one run
#                          signed, signedweighted: static and weighted with DO=1 on the zone signed
#                          (gslbd alone; README "DNSSEC"); the zone gets its key only when one of
#                          them is run, so the others measure the zone unsigned
#                          signedmiss: DO=1 queries for names under the zone's wildcard *.w, none
#                          asked twice, so every answer is signed afresh (a signature cache miss);
#                          gslbd's gslbd_rrsigs_total is read around the signed* runs (--metrics)
#   BENCH_CG_SECONDS=3     busy and idle windows under callgrind (0: no instructions/query)
#   BENCH_LAT_QPS=20000    rate of the latency runs (dnsperf -Q, every answer timed with -v)
#   BENCH_LAT_SECONDS=2    length of each latency run
#   BENCH_RESULTS=FILE     markdown output (default bench/RESULTS.md; empty: none)
#   BENCH_INSTALL=1        apt-get install missing peers (0: skip the missing ones)
#   BENCH_KEEP=1           keep the temporary directory (configs, logs, callgrind dumps)
#   BENCH_NOTE=TEXT        a remark for RESULTS.md (e.g. what else ran on the machine)
#   BENCH_GSLBD2=DIR       another gslbd build (a checkout's build directory): add gslbd2 to
#                          BENCH_PEERS to measure it interleaved with this one (an A/B of a change)
#   BENCH_PERF=1           one more run per workload under `perf record` (software clock), to split
#                          each server's CPU time into kernel and user space (0: skip)
#   BENCH_DNSTAP=1         also measure gslbdtap: gslbd with its query log on (--dnstap to an
#                          fstrm_capture writing to /dev/null), static and tcp workloads (0: skip)
#   BENCH_CURVES=1         run bench/curves.sh last, its tables appended to the output and RESULTS.md
#                          (0: skip; sizes by its BENCH_CURVES_* knobs, see there); a wrong answer there
#                          makes the run exit 1
#
# Each server runs in the foreground from its own config in a temporary directory, on a random
# loopback port, pinned to core 0 with every thread; dnsperf runs on core 1. Stopped by PID.
# (shellcheck: the start_NAME functions and the trap's cleanup are called by name, not unreachable)
# shellcheck disable=SC2317
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
builddir=$(cd "${1:-$top}" && pwd)
secs=${BENCH_SECONDS:-6}
repeat=${BENCH_REPEAT:-3}
peers=${BENCH_PEERS-gdnsd knot nsd pdns}
workloads=${BENCH_WORKLOADS:-static edns nxdomain weighted checked geo tcp signed signedweighted signedmiss}
cgs=${BENCH_CG_SECONDS:-3}
latqps=${BENCH_LAT_QPS:-20000}
latsecs=${BENCH_LAT_SECONDS:-2}
results=${BENCH_RESULTS-$here/RESULTS.md}
py=/usr/bin/python3
mmdb=$top/geoip/gslb-test-city.mmdb

work=$(mktemp -d /tmp/gslb-bench.XXXXXX)
pids=()
cleanup() {
	local p
	# only the servers still running: a PID stopped and reaped before may be another's by now
	for p in $(jobs -p); do
		[[ " ${pids[*]} " != *" $p "* ]] || kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }

## ---- dependencies: the peers from Debian when missing
declare -A pkg_of=([gdnsd]=gdnsd [knot]=knot [nsd]=nsd [pdns]="pdns-server pdns-backend-bind")
declare -A bin_of=([gdnsd]=gdnsd [knot]=knotd [nsd]=nsd [pdns]=pdns_server
	[gslbd2]="${BENCH_GSLBD2:-/nonexistent}/gslbd" [gslbdtap]=fstrm_capture)
need=""
command -v dnsperf >/dev/null || need="dnsperf"
command -v valgrind >/dev/null || [ "$cgs" = 0 ] || need="$need valgrind"
for p in $peers; do
	command -v "${bin_of[$p]}" >/dev/null || need="$need ${pkg_of[$p]}"
done
ls /usr/lib/*/pdns/libbindbackend.so >/dev/null 2>&1 || [[ " $peers " != *" pdns "* ]] ||
	need="$need pdns-backend-bind"
if [ -n "$need" ] && [ "${BENCH_INSTALL:-1}" = 1 ]; then
	log "installing:$need"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	# keep the packages from starting their services on port 53
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
		$SUDO chmod +x "$policy"
	fi
	# shellcheck disable=SC2086
	{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
		--no-install-recommends $need >/dev/null; } || log "apt-get failed"
	[ -z "$policy" ] || $SUDO rm -f "$policy"
fi
command -v dnsperf >/dev/null || { log "dnsperf missing"; exit 1; }
avail=""
for p in $peers; do
	if command -v "${bin_of[$p]}" >/dev/null; then avail="$avail $p"; else log "skipping $p: ${bin_of[$p]} missing"; fi
done
peers=$avail
[ "$cgs" = 0 ] || command -v valgrind >/dev/null || { log "valgrind missing: no instructions/query"; cgs=0; }
if [ ! -x "$builddir/gslbd" ] || [ ! -x "$builddir/gslbctl" ]; then log "build gslbd first ($builddir)"; exit 1; fi

## ---- the data: one zone, ~1,000 static names, a weighted and a geo name of four members
# member  address        weight  location (the test mmdb's cities)
members="fra 192.0.2.10 100 50.11 8.68
iad 198.51.100.10 100 39.04 -77.49
sin 203.0.113.10 50 1.35 103.82
gru 10.3.0.10 50 -23.55 -46.63"
# the health-checked variant of the weighted name: members on loopback addresses whose TCP port
# hport is open (a listener of ours), probed by each server's own checks
checked="hc1 127.0.0.11 100
hc2 127.0.0.12 100
hc3 127.0.0.13 50
hc4 127.0.0.14 50"
zone=bench.test
mkdir -p "$work/data"
static_zone() {
	# shellcheck disable=SC2016
	echo '$TTL 300'
	echo "@ SOA ns1 hostmaster 1 3600 600 86400 60"
	echo "@ NS ns1"
	echo "ns1 A 127.0.0.1"
	for i in $(seq 1 1000); do echo "h$i A 192.0.2.$((i % 250 + 1))"; done
	# signedmiss asks names under this wildcard; no other workload's name is under w
	echo "*.w A 192.0.2.254"
}
static_zone > "$work/data/static.zone"
for i in $(seq 1 1000); do echo "h$i.$zone A"; done > "$work/data/q.static"
# half the queries NXDOMAIN, half answers
for i in $(seq 1 1000); do echo "h$i.$zone A"; echo "nx$i.$zone A"; done > "$work/data/q.nxdomain"
echo "www.$zone A" > "$work/data/q.weighted"
echo "hc.$zone A" > "$work/data/q.checked"
cp "$work/data/q.static" "$work/data/q.tcp"
cp "$work/data/q.static" "$work/data/q.signed"
cp "$work/data/q.static" "$work/data/q.edns"
cp "$work/data/q.weighted" "$work/data/q.signedweighted"
# geo: 10,000 queries with EDNS Client Subnet, each from a random /24 of the test mmdb's networks
# (and some it does not know), as dnsperf -B length-prefixed wire messages
"$py" - "$work/data" "$zone" <<'EOF'
import random, struct, sys
import dns.edns, dns.message
random.seed(6)
pre = ['192.0.2', '198.51.100', '203.0.113'] + ['10.%d.%d' % (a, b) for a in range(1, 10) for b in range(256)]
for name, count in (('q.geo', 10000),):
	with open(sys.argv[1] + '/' + name, 'wb') as f:
		for i in range(count):
			o = dns.edns.ECSOption(random.choice(pre) + '.0', 24)
			m = dns.message.make_query('geo.' + sys.argv[2], 'A', use_edns=0, options=[o])
			m.id = 0
			w = m.to_wire()
			f.write(struct.pack('!H', len(w)) + w)
EOF


## ---- helpers
# Ports below the kernel's ephemeral range: there a client socket of another process, or one of its
# connections in TIME_WAIT, can hold the port a server is about to bind (with thousands of them in
# TIME_WAIT on a busy machine, a gslbd --metrics listener failed to start one run in a few).
eph=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port_base=$((20000 + RANDOM % (eph > 22000 ? eph - 21000 : 1000)))
# next_port: the next free-looking port in $port (not in a subshell: the servers run at once)
next_port() { port_base=$((port_base + 1)); port=$port_base; }
clk=$(getconf CLK_TCK)
# tree, stop and the callgrind helpers
# shellcheck source=bench/cglib.sh
. "$here/cglib.sh"

cpu_ticks() { # PID: prints "utime stime" of the tree, in clock ticks
	local u=0 t=0 p s
	for p in $(tree "$1"); do
		# utime and stime, counted after the command name, which may hold blanks ("nsd: main")
		s=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}') || continue
		[ -n "$s" ] || continue
		u=$((u + ${s% *}))
		t=$((t + ${s#* }))
	done
	echo "$u $t"
}
wait_up() { # PORT PID
	for _ in $(seq 300); do
		kill -0 "$2" 2>/dev/null || return 1
		dig +time=1 +tries=1 +norec -p "$1" @127.0.0.1 "h1.$zone" A 2>/dev/null | grep -q "status: NOERROR" && return 0
		sleep 0.2
	done
	return 1
}
# signedmiss: each dnsperf run gets a query file of names of its own (m<i>-<run>.w under the
# wildcard), so no run, warm-up or repeat asks a name an earlier one made a signature for, and
# dnsperf -n 1 stops at the file's end rather than asking its names again: every answer is a miss.
# At least 50,000 names a second of the longest run (a miss costs tens of µs), 200,000 at least.
missn=200000
for t in "$secs" "$cgs" "$latsecs"; do [ $((t * 50000)) -le "$missn" ] || missn=$((t * 50000)); done
miss_names() {
	local k
	k=$(($(cat "$work/data/miss.n" 2>/dev/null || echo 0) + 1))
	echo "$k" >"$work/data/miss.n"
	awk -v k="$k" -v n="$missn" -v z="$zone" \
		'BEGIN { for (i = 1; i <= n; i++) printf "m%d-%d.w.%s A\n", i, k, z }' >"$work/data/q.signedmiss"
}
dnsperf_args() { # WORKLOAD PORT
	case $1 in
	geo) echo "-s 127.0.0.1 -p $2 -d $work/data/q.geo -B" ;;
	tcp) echo "-s 127.0.0.1 -p $2 -d $work/data/q.tcp -m tcp" ;;
	signedmiss)
		miss_names
		echo "-s 127.0.0.1 -p $2 -d $work/data/q.$1 -D -n 1"
		;;
	signed*) echo "-s 127.0.0.1 -p $2 -d $work/data/q.$1 -D" ;;
	edns) echo "-s 127.0.0.1 -p $2 -d $work/data/q.$1 -e" ;;
	*) echo "-s 127.0.0.1 -p $2 -d $work/data/q.$1" ;;
	esac
}
supports() { # SERVER WORKLOAD
	case $1:$2 in
	gslbdtap:static | gslbdtap:tcp) return 0 ;;
	*:signed*) [ "${1%2}" = gslbd ] && return 0; return 1 ;;
	gslbd:* | gslbd2:* | gdnsd:* | pdns:static | pdns:nxdomain | pdns:tcp | pdns:weighted | pdns:checked) return 0 ;;
	pdns:edns | knot:edns | nsd:edns) return 0 ;;
	knot:static | knot:nxdomain | knot:tcp | nsd:static | nsd:nxdomain | nsd:tcp) return 0 ;;
	esac
	return 1
}

## ---- servers: start_NAME DIR PORT [PREFIX...] starts in the foreground, sets SPID
start_gslbd2() { # the build in BENCH_GSLBD2, with the same data
	[ -x "${BENCH_GSLBD2:-}/gslbd" ] || { log "gslbd2: BENCH_GSLBD2 names no build"; return 0; }
	local builddir
	builddir=$(cd "$BENCH_GSLBD2" && pwd)
	start_gslbd "$@"
}
# gslbd with the query log on: an fstrm_capture (never under valgrind: only gslbd is measured)
# reads every record and writes it to /dev/null (a file would grow by gigabytes in a full run)
start_gslbdtap() {
	local d=$1 cpid
	mkdir -p "$d"
	rm -f "$d/tap.sock"
	fstrm_capture -t protobuf:dnstap.Dnstap -u "$d/tap.sock" -w /dev/null >"$d/capture.log" 2>&1 &
	cpid=$!
	pids+=("$cpid")
	for _ in $(seq 50); do [ -S "$d/tap.sock" ] && break; sleep 0.1; done
	GSLBD_EXTRA="--dnstap $d/tap.sock" start_gslbd "$@"
}
start_gslbd() {
	local d=$1 port=$2 name addr w lat lon
	shift 2
	if [ ! -e "$d/gslb.db" ]; then
		mkdir -p "$d/zones"
		cp "$work/data/static.zone" "$d/zones/$zone.zone"
		export GSLB_DB=$d/gslb.db
		"$builddir/gslbctl" init >/dev/null
		"$builddir/gslbctl" pool add "www.$zone" --policy weighted --ttl 30 >/dev/null
		"$builddir/gslbctl" pool add "geo.$zone" --policy geo --ttl 30 >/dev/null
		"$builddir/gslbctl" pool add "hc.$zone" --policy weighted --ttl 30 >/dev/null
		while read -r name addr w lat lon; do
			"$builddir/gslbctl" member add "www.$zone" "$name" --address "$addr" --weight "$w" >/dev/null
			"$builddir/gslbctl" member add "geo.$zone" "$name" --address "$addr" --location "$lat,$lon" >/dev/null
		done <<<"$members"
		while read -r name addr w; do
			"$builddir/gslbctl" member add "hc.$zone" "$name" --address "$addr" --weight "$w" >/dev/null
		done <<<"$checked"
		"$builddir/gslbctl" check set "hc.$zone" --type tcp --port "$hport" --interval 2 --rise 1 >/dev/null
		unset GSLB_DB
		if [[ " $workloads " == *" signed"* ]]; then
			"$py" "$here/dnssec_key.py" "$d/gslb.db" "$zone"
		fi
	fi
	# its metrics listener, on a port of its own: gslbd_rrsigs_total is read around the signed runs
	# (rrsigs below), never within a measured window
	port_base=$((port_base + 1))
	echo "127.0.0.1:$port_base" >"$d/metrics.addr"
	# shellcheck disable=SC2086 # GSLBD_EXTRA is words
	taskset -c 0 "$@" "$builddir/gslbd" --listen "127.0.0.1:$port" --zones "$d/zones" --db "$d/gslb.db" \
		--geoip "$mmdb" --threads 1 --log-level warning --metrics "127.0.0.1:$port_base" \
		${GSLBD_EXTRA:-} >"$d/log" 2>&1 &
	SPID=$!
}
start_knot() {
	local d=$1 port=$2
	shift 2
	mkdir -p "$d"
	cp "$work/data/static.zone" "$d/$zone.zone"
	cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$d"
zone:
  - domain: $zone
    file: "$d/$zone.zone"
    journal-content: none
    zonefile-load: whole
log:
  - target: stderr
    any: warning
EOF
	taskset -c 0 "$@" knotd -c "$d/knot.conf" >"$d/log" 2>&1 &
	SPID=$!
}
start_nsd() {
	local d=$1 port=$2
	shift 2
	mkdir -p "$d"
	cp "$work/data/static.zone" "$d/$zone.zone"
	cat >"$d/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$port
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$d"
  pidfile: "$d/nsd.pid"
  database: ""
  xfrdfile: "$d/xfrd.state"
  zonelistfile: "$d/zone.list"
  logfile: "$d/nsd.log"
  verbosity: 0
  # Debian builds NSD with response rate limiting on (200/s a source): off, as in the others
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $zone
  zonefile: $d/$zone.zone
EOF
	taskset -c 0 "$@" nsd -d -c "$d/nsd.conf" >"$d/log" 2>&1 &
	SPID=$!
}
start_gdnsd() {
	local d=$1 port=$2 name addr w lat lon
	shift 2
	mkdir -p "$d/zones" "$d/run" "$d/state"
	{ static_zone; echo "www 30 DYNA weighted!www"; echo "hc 30 DYNA weighted!hc"; echo "geo 30 DYNA geoip!geo"; } >"$d/zones/$zone"
	{
		echo "options => { listen => [ 127.0.0.1 ], dns_port => $port, udp_threads => 1,"
		echo "  tcp_threads => 1, run_dir => $d/run, state_dir => $d/state, edns_client_subnet => true }"
		echo "service_types => { hc => { plugin => tcp_connect, port => $hport, interval => 2,"
		echo "  up_thresh => 1, ok_thresh => 1, down_thresh => 2 } }"
		echo "plugins => {"
		echo "  weighted => { www => {"
		while read -r name addr w lat lon; do echo "    $name => [ $addr, $w ]"; done <<<"$members"
		echo "  }, hc => { service_types => hc"
		while read -r name addr w; do echo "    $name => [ $addr, $w ]"; done <<<"$checked"
		echo "  } }"
		echo "  geoip => {"
		echo "    maps => { geo => { geoip2_db => $mmdb, datacenters => [ fra, iad, sin, gru ],"
		echo "      auto_dc_coords => {"
		while read -r name addr w lat lon; do echo "        $name => [ $lat, $lon ]"; done <<<"$members"
		echo "    } } }"
		echo "    resources => { geo => { map => geo, dcmap => {"
		while read -r name addr w lat lon; do echo "      $name => $addr"; done <<<"$members"
		echo "    } } }"
		echo "  }"
		echo "}"
	} >"$d/config"
	taskset -c 0 "$@" gdnsd -c "$d" start >"$d/log" 2>&1 &
	SPID=$!
}
start_pdns() {
	local d=$1 port=$2 name addr w lat lon wr="" hc=""
	shift 2
	mkdir -p "$d"
	while read -r name addr w lat lon; do wr="$wr${wr:+,}{$w,'$addr'}"; done <<<"$members"
	# ifportup has no weights: one random address among those whose port answers
	while read -r name addr w; do hc="$hc${hc:+,}'$addr'"; done <<<"$checked"
	{
		static_zone
		echo "www 30 LUA A \"pickwrandom({$wr})\""
		echo "hc 30 LUA A \"ifportup($hport, {$hc})\""
	} >"$d/$zone.zone"
	echo "zone \"$zone\" { type master; file \"$d/$zone.zone\"; };" >"$d/named.conf"
	# shared: one Lua state per thread (with yes, PowerDNS 4.7 makes a new one for every query)
	cat >"$d/pdns.conf" <<EOF
launch=bind
bind-config=$d/named.conf
enable-lua-records=shared
local-address=127.0.0.1
local-port=$port
socket-dir=$d
guardian=no
daemon=no
disable-syslog=yes
write-pid=no
receiver-threads=1
distributor-threads=1
reuseport=no
loglevel=3
lua-health-checks-interval=2
EOF
	taskset -c 0 "$@" pdns_server --config-dir="$d" >"$d/log" 2>&1 &
	SPID=$!
}

# check_answers NAME PORT: the balanced names answer what they should, before they are measured
check_answers() {
	local s=$1 port=$2 a want ecs
	if supports "$s" weighted && [[ " $workloads " == *" weighted "* ]]; then
		a=$(dig +short +norec -p "$port" @127.0.0.1 "www.$zone" A 2>/dev/null | head -1)
		grep -q "^[a-z]* ${a:-none} " <<<"$members" || echo "$s: weighted answer '$a' is no member's"
	fi
	if supports "$s" checked && [[ " $workloads " == *" checked "* ]]; then
		# wait for the first probes (pdns answers nothing until its first check round)
		for _ in $(seq 50); do
			a=$(dig +short +norec -p "$port" @127.0.0.1 "hc.$zone" A 2>/dev/null | head -1)
			grep -q "^[a-z0-9]* ${a:-none} " <<<"$checked" && break
			sleep 0.2
		done
		grep -q "^[a-z0-9]* ${a:-none} " <<<"$checked" || echo "$s: checked answer '$a' is no member's"
	fi
	if supports "$s" geo && [[ " $workloads " == *" geo "* ]]; then
		for want in 192.0.2.0/24=192.0.2.10 10.2.0.0/24=203.0.113.10 10.1.0.0/24=198.51.100.10 \
			10.4.0.0/24=203.0.113.10 10.7.0.0/24=192.0.2.10; do
			ecs=${want%=*}
			a=$(dig +short +norec +subnet="$ecs" -p "$port" @127.0.0.1 "geo.$zone" A 2>/dev/null | head -1)
			[ "$a" = "${want#*=}" ] || echo "$s: geo answer for ECS $ecs is '$a', not ${want#*=}"
		done
	fi
}

## ---- measurements
# one throughput run: prints "qps cpu_us_per_answer user_us_per_answer"
run_tput() { # WORKLOAD PORT PID
	local t0 t1 out n qps
	t0=$(cpu_ticks "$3")
	# shellcheck disable=SC2046
	out=$(taskset -c 1 dnsperf $(dnsperf_args "$1" "$2") -l "$secs" -c 1 -q 100 2>&1)
	t1=$(cpu_ticks "$3")
	qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
	n=$(awk '/Queries completed/ {print $3}' <<<"$out")
	awk -v q="$qps" -v n="$n" -v a="$t0" -v b="$t1" -v clk="$clk" \
		'BEGIN { split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; d = u + y[2] - x[2]
			if (n > 0) printf "%.0f %.3f %.3f\n", q, d * 1e6 / clk / n, u * 1e6 / clk / n
			else print "0 0 0" }'
}
# one latency run at a fixed rate, every answer timed: prints "mean_us p99_us"
run_lat() { # WORKLOAD PORT
	# shellcheck disable=SC2046
	taskset -c 1 dnsperf $(dnsperf_args "$1" "$2") -l "$latsecs" -c 1 -q 100 -Q "$latqps" -v 2>/dev/null |
		awk '/^> / { print $NF * 1e6 }' | sort -n |
		awk '{ v[NR] = $1; s += $1 } END { k = int(NR * 0.99); if (k < 1) k = 1; if (NR) printf "%.0f %.0f\n", s / NR, v[k]; else print "0 0" }'
}
# where a server's CPU time goes during one more throughput run, sampled by perf's software clock:
# prints "kernel% user% send% recv% poll%" (send / recv / poll: time under the send*, recv* and
# epoll/poll/select system calls, kernel work they trigger included)
run_split() { # WORKLOAD PORT PID OUTFILE
	local pp sp n
	perf record -F 1999 -g -o "$4" -p "$(tree "$3" | paste -sd,)" -- sleep "$secs" >/dev/null 2>&1 &
	pp=$!
	# system calls of the server's threads over the same run: all of them, and the receiving ones
	perf stat -x, -o "$4.stat" -e raw_syscalls:sys_enter \
		-e syscalls:sys_enter_recvmmsg -e syscalls:sys_enter_recvmsg -e syscalls:sys_enter_recvfrom \
		-e syscalls:sys_enter_read -p "$(tree "$3" | paste -sd,)" -- sleep "$secs" >/dev/null 2>&1 &
	sp=$!
	# shellcheck disable=SC2046
	n=$(taskset -c 1 dnsperf $(dnsperf_args "$1" "$2") -l "$secs" -c 1 -q 100 2>&1 |
		awk '/Queries completed/ {print $3}') || true
	wait "$pp" || true
	wait "$sp" || true
	[ -s "$4" ] || { echo "n/a n/a n/a n/a n/a n/a n/a"; return; }
	{
		perf report -i "$4" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' |
			awk '$1 ~ /%$/ { p = $1 + 0; if ($2 == "[kernel.kallsyms]") k += p; else u += p }
				END { printf "K %.1f %.1f\n", k, u }'
		perf report -i "$4" --children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' |
			awk '$1 ~ /%$/ && $3 == "[k]" {
					p = $1 + 0; s = $4
					if (s ~ /^__(x64|ia32)_sys_send/) snd += p
					else if (s ~ /^__(x64|ia32)_sys_recv/) rcv += p
					else if (s ~ /^__(x64|ia32)_sys_(epoll_wait|epoll_pwait|poll|ppoll|select|pselect6)$/) pl += p
				}
				END { printf "S %.1f %.1f %.1f\n", snd, rcv, pl }'
		# "N,,event,..." lines: system calls per answer, answers per receiving call
		awk -F, -v n="${n:-0}" '$3 == "raw_syscalls:sys_enter" { a = $1 } $3 ~ /sys_enter_(recv|read)/ { r += $1 }
			END { if (n > 0 && a > 0) printf "C %.2f %.1f\n", a / n, (r > 0 ? n / r : 0); else print "C n/a n/a" }' \
			"$4.stat" 2>/dev/null
	} | awk '$1 == "K" { k = $2; u = $3 } $1 == "S" { s = $2; r = $3; p = $4 } $1 == "C" { c = $2; b = $3 }
		END { printf "%s %s %s %s %s %s %s\n", k, u, s, r, p, c, b }'
	rm -f "$4.stat"
}
# rrsigs DIR: the queries answered and the RRSIGs written so far by the gslbd started in DIR, read
# from its metrics listener: prints "queries cache signed failed" (gslbd_queries_total, both
# transports, and gslbd_rrsigs_total by source); nothing for another server or a failed read
rrsigs() {
	[ -e "$1/metrics.addr" ] || return 0
	curl -fs --max-time 30 "http://$(cat "$1/metrics.addr")/metrics" | awk '
		$1 ~ /^gslbd_queries_total\{/ { q += $2; n++ }
		$1 == "gslbd_rrsigs_total{source=\"cache\"}" { c = $2; n++ }
		$1 == "gslbd_rrsigs_total{source=\"signed\"}" { s = $2; n++ }
		$1 == "gslbd_rrsigs_total{source=\"failed\"}" { f = $2; n++ }
		END { if (n == 5) printf "%.0f %.0f %.0f %.0f\n", q, c, s, f }' || true
}
# sigs_note SERVER WORKLOAD PHASE BEFORE AFTER: a line of sigs.tsv, what the counters of rrsigs grew
# by over the phase's window (tput: a throughput run, cg: the callgrind busy window, all: every
# query of the workload but its perf run, warm-up and latency runs included)
sigs_note() {
	if [ -z "$4" ] || [ -z "$5" ]; then
		log "$1 $2 ($3): gslbd_rrsigs_total not read from its metrics listener"
		return 0
	fi
	echo "$1 $2 $3 $4 $5" | awk -v OFS='\t' '{ print $1, $2, $3, $8 - $4, $9 - $5, $10 - $6, $11 - $7 }' \
		>>"$work/sigs.tsv"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

raw=$work/raw.tsv # server workload qps cpu_us mean_us p99_us instr allocs
: >"$raw"

# Every server runs at once, each on its own port (idle ones cost nothing), and the throughput runs
# are interleaved: each repeat of a workload runs every server once in turn, so a slow drift of the
# machine (a busy neighbour of this VM) falls on all servers alike instead of on whichever ran then.
declare -A sport spid
up_servers=""
start_server() { # NAME: start it and check its answers; not listed in up_servers if it fails
	local s=$1 d=$work/$1 port
	next_port
	SPID=""
	"start_$s" "$d" "$port"
	pids+=("$SPID")
	if ! wait_up "$port" "$SPID"; then
		log "$s did not start:"; tail -5 "$d/log" >&2; stop "$SPID"; return 0
	fi
	check_answers "$s" "$port" | tee -a "$work/checks" >&2
	sport[$s]=$port
	spid[$s]=$SPID
	up_servers="$up_servers $s"
}

rotate() { # N WORD...: the words, starting with word N (mod their count)
	local n=$1
	shift
	local -a w=("$@")
	local i k=${#w[@]}
	for ((i = 0; i < k; i++)); do echo "${w[$(((n + i) % k))]}"; done
}
measure_all() {
	local s wl r m0 t
	local -A mall
	for wl in $workloads; do
		for s in $up_servers; do
			supports "$s" "$wl" || continue
			# the signature counters over all of the workload's queries, from its first (the
			# signatures its warm-up makes count there, not in the throughput runs')
			[[ $wl != signed* ]] || mall[$s]=$(rrsigs "$work/$s")
			# warm up (pdns compiles its LUA record once, caches fill)
			# shellcheck disable=SC2046
			taskset -c 1 dnsperf $(dnsperf_args "$wl" "${sport[$s]}") -l 1 -c 1 -q 100 >/dev/null 2>&1 || true
		done
		for r in $(seq "$repeat"); do
			# each round starts with another server, so no server always runs first (or always
			# right after the heaviest one)
			# shellcheck disable=SC2086 # a word a server
			for s in $(rotate "$((r - 1))" $up_servers); do
				supports "$s" "$wl" || continue
				log "$wl: $s, run $r of $repeat"
				# the signature counters of gslbd (and gslbd2) just before and after the throughput
				# run, outside its CPU window: its hits and misses
				m0=""
				[[ $wl != signed* ]] || m0=$(rrsigs "$work/$s")
				t=$(run_tput "$wl" "${sport[$s]}" "${spid[$s]}")
				[[ $wl != signed* ]] || sigs_note "$s" "$wl" tput "$m0" "$(rrsigs "$work/$s")"
				echo "$t $(run_lat "$wl" "${sport[$s]}")" >>"$work/$s/$wl.runs"
			done
		done
		for s in $up_servers; do
			[[ $wl != signed* ]] || ! supports "$s" "$wl" ||
				sigs_note "$s" "$wl" all "${mall[$s]:-}" "$(rrsigs "$work/$s")"
		done
		[ "$perf_ok" = 1 ] || continue
		for s in $up_servers; do
			supports "$s" "$wl" || continue
			printf '%s\t%s\t%s\n' "$s" "$wl" \
				"$(run_split "$wl" "${sport[$s]}" "${spid[$s]}" "$work/$s/$wl.perf" | tr ' ' '\t')" \
				>>"$work/split.tsv"
			rm -f "$work/$s/$wl.perf"
		done
	done
	for s in $up_servers; do stop "${spid[$s]}"; done
}

# callgrind: the server under valgrind, a busy window of BENCH_CG_SECONDS of queries and an idle
# window as long; (busy - idle * t_busy / t_idle) / answers
measure_cg() { # NAME: prints "workload instr_per_query allocs_per_query" lines
	local s=$1 d port pid wl t0 t1 t2 n bi ba ii ia m0
	d=$work/cg-$s
	mkdir -p "$d/out"
	next_port
	SPID=""
	"start_$s" "$d" "$port" valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$d/out/cg.%p"
	pid=$SPID
	pids+=("$pid")
	if ! wait_up "$port" "$pid"; then
		log "$s did not start under callgrind:"; tail -5 "$d/log" >&2; stop "$pid"; return 0
	fi
	for wl in $workloads; do
		supports "$s" "$wl" || continue
		log "$s $wl (callgrind, ${cgs}s busy, ${cgs}s idle)"
		# shellcheck disable=SC2046
		taskset -c 1 dnsperf $(dnsperf_args "$wl" "$port") -l 1 -c 1 -q 10 >/dev/null 2>&1 || true
		# signed: every name once before the window, one at a time (no backlog of misses left for
		# the window), so that it measures the signature cache's hits; not signedmiss, whose window
		# measures misses (its names are new to every run anyway)
		if [[ $wl == signed* && $wl != signedmiss ]]; then
			# shellcheck disable=SC2046
			taskset -c 1 dnsperf $(dnsperf_args "$wl" "$port") -n 1 -c 1 -q 1 -t 30 >/dev/null 2>&1 || true
		fi
		# the signature counters around the busy window, read outside it (before the counters are
		# zeroed, after they are dumped): its hits and misses
		m0=""
		[[ $wl != signed* ]] || m0=$(rrsigs "$d")
		cg_collect "$d/out" "$d/junk"
		cg_zero "$pid"
		t0=$(date +%s.%N)
		# shellcheck disable=SC2046
		n=$(taskset -c 1 dnsperf $(dnsperf_args "$wl" "$port") -l "$cgs" -c 1 -q 10 2>&1 |
			awk '/Queries completed/ {print $3}')
		cg_window "$pid"
		t1=$(date +%s.%N)
		[[ $wl != signed* ]] || sigs_note "$s" "$wl" cg "$m0" "$(rrsigs "$d")"
		cg_collect "$d/out" "$d/$wl.busy"
		cg_zero "$pid"
		sleep "$cgs"
		cg_window "$pid"
		t2=$(date +%s.%N)
		cg_collect "$d/out" "$d/$wl.idle"
		read -r bi ba < <("$py" "$here/cgsum.py" "$d/$wl.busy")
		read -r ii ia < <("$py" "$here/cgsum.py" "$d/$wl.idle")
		awk -v wl="$wl" -v n="${n:-0}" -v bi="$bi" -v ba="$ba" -v ii="$ii" -v ia="$ia" \
			-v tb="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" \
			-v ti="$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b - a}')" \
			'BEGIN { k = tb / ti; if (n > 0) printf "%s %.0f %.4f %d %d %d %d %d %.2f\n", wl,
				(bi - ii * k) / n, (ba - ia * k) / n, n, bi, ii, ba, ia, k; else print wl, 0, 0 }' |
			tee -a "$d/summary" >&2
	done
	stop "$pid"
	[ "$s" != gslbd ] || cp -r "$d" "$work/gslbd-callgrind"
}

## ---- the run
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
ver_gslbd=$("$builddir/gslbd" --version 2>&1 | head -1)
versions="gslbd: $ver_gslbd"
for p in $peers; do
	case $p in
	gdnsd) v=$(gdnsd 2>&1 | head -1 || true) ;;
	knot) v=$(knotd -V 2>&1 | head -1 || true) ;;
	nsd) v=$(nsd -v 2>&1 | head -1 || true) ;;
	pdns) v=$(pdns_server --version 2>&1 | grep -o 'PowerDNS Authoritative Server [0-9.]*' | head -1 || true) ;;
	gslbd2) v="the build in $BENCH_GSLBD2 ($(git -C "$BENCH_GSLBD2" log -1 --format=%h 2>/dev/null || echo ?))" ;;
	esac
	versions="$versions
$p: $v"
done
versions="$versions
dnsperf: $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')
valgrind: $(valgrind --version 2>/dev/null || echo none)"
# shellcheck source=/dev/null
machine="CPU: $cpu; $(nproc) cores; $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo); kernel $(uname -sr); $(. /etc/os-release && echo "$PRETTY_NAME")"
settings="BENCH_SECONDS=$secs BENCH_REPEAT=$repeat BENCH_CG_SECONDS=$cgs BENCH_LAT_QPS=$latqps BENCH_LAT_SECONDS=$latsecs"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before the run: $load0"
servers="gslbd $peers"
if [ "${BENCH_DNSTAP:-1}" = 1 ]; then
	if command -v fstrm_capture >/dev/null; then servers="gslbd gslbdtap $peers"; else log "skipping gslbdtap: fstrm_capture missing"; fi
fi
next_port
hport=$port
if [[ " $workloads " == *" checked "* ]]; then
	# the members' health-check port: accepts and closes, on the four loopback addresses only
	# shellcheck disable=SC2046 # an address a word
	"$py" - "$hport" $(awk '{print $2}' <<<"$checked") <<'EOF' &
import selectors, socket, sys
sel = selectors.DefaultSelector()
for a in sys.argv[2:]:
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((a, int(sys.argv[1])))
	s.listen(64)
	sel.register(s, selectors.EVENT_READ)
while True:
	for k, _ in sel.select():
		c, _ = k.fileobj.accept()
		c.close()
EOF
	pids+=($!)
fi
: >"$work/tput.tsv"
: >"$work/split.tsv"
perf_ok=0
if [ "${BENCH_PERF:-1}" = 1 ]; then
	if command -v perf >/dev/null && perf record -o "$work/probe.perf" -- true >/dev/null 2>&1; then
		perf_ok=1
	else
		log "perf record does not work here: no kernel / user split"
	fi
fi
: >"$work/cg.tsv"
: >"$work/sigs.tsv"
: >"$work/checks"
for s in $servers; do start_server "$s"; done
measure_all
for s in $servers; do
	for wl in $workloads; do
		[ -s "$work/$s/$wl.runs" ] || continue
		q=$(awk '{print $1}' "$work/$s/$wl.runs" | median)
		c=$(awk '{print $2}' "$work/$s/$wl.runs" | median)
		u=$(awk '{print $3}' "$work/$s/$wl.runs" | median)
		m=$(awk '{print $4}' "$work/$s/$wl.runs" | median)
		l=$(awk '{print $5}' "$work/$s/$wl.runs" | median)
		lo=$(awk '{print $2}' "$work/$s/$wl.runs" | sort -g | head -1)
		hi=$(awk '{print $2}' "$work/$s/$wl.runs" | sort -g | tail -1)
		# paired: round r of this server against round r of gslbd (run within seconds of each
		# other), the median of those CPU ratios; a drift of the machine cancels out
		pr=n/a
		[ ! -s "$work/gslbd/$wl.runs" ] ||
			pr=$(paste -d' ' "$work/$s/$wl.runs" "$work/gslbd/$wl.runs" |
				awk '{ n = NF / 2; if ($(n + 2) > 0) print $2 / $(n + 2) }' | median)
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$wl" "$q" "$c" "$m" "$l" "$u" "$lo" "$hi" \
			"${pr:-n/a}" >>"$work/tput.tsv"
	done
	if [ "$cgs" != 0 ]; then
		measure_cg "$s"
		[ ! -s "$work/cg-$s/summary" ] ||
			awk -v s="$s" '{ printf "%s\t%s\t%s\t%s\n", s, $1, $2, $3 }' "$work/cg-$s/summary" >>"$work/cg.tsv"
	fi
done
profile=$work/profile.txt
: >"$profile"
if [ -d "$work/gslbd-callgrind" ]; then
	for wl in $workloads; do
		f=$(find "$work/gslbd-callgrind/$wl.busy" -name 'cg.*' 2>/dev/null | sort | head -1) || true
		[ -n "$f" ] || continue
		{
			echo "gslbd, $wl: top functions by exclusive instructions (callgrind, ${cgs}s busy window, idle work included)"
			# in a dump taken mid-run the frames still on the threads' stacks (clone, start_thread,
			# worker_main, main ...) carry their thread's whole window: left out
			callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null |
				awk '/^-+$/ { d++; next } d >= 3 && NF && !/^ *Ir/' |
				grep -Ev 'clone|start_thread|worker_main|below main|__libc_start|main\.c:main|ld-linux|server_run|uv_run' |
				sed 's|/work/[^ ]*/src/|src/|; s|\[/usr/lib/x86_64-linux-gnu/|[|' | head -16 || true
			echo
		} >>"$profile"
	done
fi
# Scale last, every server stopped by now: start-up and memory with many names and pools, and the
# delay from a change to the answer (bench/scale.sh; BENCH_SCALE=0 skips it).
: >"$work/scale.txt"
if [ "${BENCH_SCALE:-1}" = 1 ]; then
	log "scale: bench/scale.sh $builddir ${BENCH_SCALE_ARGS:-}"
	# shellcheck disable=SC2086
	"$here/scale.sh" "$builddir" ${BENCH_SCALE_ARGS:-} >"$work/scale.txt" 2>&1 ||
		log "scale: bench/scale.sh failed (its output is in the results)"
fi
# Curves last of all: gslbd's cost along the axes that grow in deployments, beside gdnsd and Knot
# (bench/curves.sh, its own BENCH_CURVES_* knobs; BENCH_CURVES=0 skips it). A wrong answer there
# makes the whole run fail, after the report.
: >"$work/curves.txt"
curves_rc=0
if [ "${BENCH_CURVES:-1}" = 1 ]; then
	log "curves: bench/curves.sh $builddir"
	BENCH_CURVES_PEERS=${BENCH_CURVES_PEERS-$peers} "$here/curves.sh" "$builddir" \
		>"$work/curves.txt" || curves_rc=$?
	[ "$curves_rc" = 0 ] || log "curves: bench/curves.sh failed (exit $curves_rc)"
fi
"$py" "$here/report.py" --tput "$work/tput.tsv" --cg "$work/cg.tsv" --versions "$versions" \
	--machine "$machine" --settings "$settings" --load "$load0 / $(cut -d' ' -f1-3 /proc/loadavg)" \
	--profile "$profile" --split "$work/split.tsv" --workloads "$workloads" --checks "$work/checks" --note "${BENCH_NOTE:-}" \
	--scale "$work/scale.txt" --sigs "$work/sigs.tsv" \
	${results:+--markdown "$results"}
if [ "$curves_rc" != 0 ]; then
	echo "curves: FAILED (bench/curves.sh exit $curves_rc: a wrong answer or a server that did not start; its messages are above)" |
		tee -a "${results:-/dev/null}"
elif [ -s "$work/curves.txt" ]; then
	cat "$work/curves.txt"
	[ -z "$results" ] || { echo; cat "$work/curves.txt"; } >>"$results"
fi
exit "$curves_rc"
