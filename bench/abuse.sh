#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The cost of abuse protection (README "On the open internet"), gslbd beside Knot in one run.
#
# Usage: bench/abuse.sh [BUILDDIR]
# Knobs: BENCH_CG_SECONDS=3 (busy and idle windows under callgrind), BENCH_FLOOD_QPS=100000,
#        BENCH_FLOOD_SECONDS=5, BENCH_FLOOD_RATE=100, BENCH_KEEP=1 (keep the temporary directory).
#
# Instructions per answered query under callgrind (the busy window minus an idle one of the same
# length, as bench/run.sh measures), static names over UDP, each server on one thread:
#   plain     no rate limit, no cookies in the queries
#   rrl       a rate limit far above the load (every response counted, none limited):
#             gslbd --rrl 1000000, Knot mod-rrl rate-limit 1000000
#   cookie    every query carries a client cookie and a valid server cookie (made here for the
#             server's secret, RFC 9018), so each is verified: gslbd --cookie-secret-file, Knot
#             mod-cookies with the same secret
# Then BENCH_IDLE_TCP (10,000) idle TCP connections: gslbd's RSS growth, and whether UDP and a new
# TCP client are still answered.  Then the flood: BENCH_FLOOD_QPS queries a second of one name from 127.0.0.1 for
# BENCH_FLOOD_SECONDS against gslbd --rrl BENCH_FLOOD_RATE --rrl-slip 2; the full answers and
# truncated ones a second, from gslbd's counters.  Stopped by PID; loopback only.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
builddir=$(cd "${1:-$top}" && pwd)
cgs=${BENCH_CG_SECONDS:-3}
flood_qps=${BENCH_FLOOD_QPS:-100000}
flood_secs=${BENCH_FLOOD_SECONDS:-5}
flood_rate=${BENCH_FLOOD_RATE:-100}
py=/usr/bin/python3
zone=bench.test
secret=000102030405060708090a0b0c0d0e0f

work=$(mktemp -d /tmp/gslb-abuse.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
log() { echo "abuse: $*" >&2; }

for c in dnsperf valgrind knotd; do
	command -v "$c" >/dev/null || { log "$c is missing (apt-get install dnsperf valgrind knot)"; exit 1; }
done
[ -x "$builddir/gslbd" ] || { log "build gslbd first ($builddir)"; exit 1; }

{
	echo "\$TTL 300"
	echo "@ IN SOA ns1.$zone. hostmaster.$zone. 1 3600 600 604800 60"
	echo "@ IN NS ns1.$zone."
	echo "ns1 IN A 192.0.2.1"
	for i in $(seq 1 1000); do echo "h$i IN A 192.0.2.$((i % 250 + 1))"; done
} >"$work/$zone.zone"
for i in $(seq 1 1000); do echo "h$i.$zone A"; done >"$work/q.static"
echo "$secret" >"$work/cookie.secret"
# A client cookie and the server cookie RFC 9018 makes of it for 127.0.0.1 now, with the secret.
cookie=$(cd "$top/tests/integration" && "$py" -c "
import time, test_abuse
client = bytes.fromhex('0123456789abcdef')
print((client + test_abuse.server_cookie(bytes.fromhex('$secret'), client, int(time.time()),
                                          '127.0.0.1')).hex())")

port=0
next_port() { port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); }
wait_up() { # PORT PID
	local i
	for i in $(seq 1 300); do
		kill -0 "$2" 2>/dev/null || return 1
		dig +short +time=1 +tries=1 -p "$1" @127.0.0.1 "$zone" SOA 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}
tree() { # PID and its descendants
	echo "$1"
	local c
	for c in $(pgrep -P "$1" 2>/dev/null || true); do tree "$c"; done
}

start() { # NAME VARIANT DIR PORT [WRAPPER...]
	local s=$1 v=$2 d=$3 p=$4
	shift 4
	mkdir -p "$d"
	case $s in
	gslbd)
		mkdir -p "$d/zones"
		cp "$work/$zone.zone" "$d/zones/$zone.zone"
		local extra=()
		[ "$v" != rrl ] || extra=(--rrl 1000000)
		[ "$v" != cookie ] || extra=(--cookie-secret-file "$work/cookie.secret")
		taskset -c 0 "$@" "$builddir/gslbd" --listen "127.0.0.1:$p" --zones "$d/zones" \
			--db "$d/gslb.db" --threads 1 --log-level warning "${extra[@]}" >"$d/log" 2>&1 &
		;;
	knot)
		local mod=""
		[ "$v" != rrl ] || mod="    global-module: mod-rrl/bench"
		[ "$v" != cookie ] || mod="    global-module: mod-cookies/bench"
		cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: 127.0.0.1@$p
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$d"
mod-rrl:
  - id: bench
    rate-limit: 1000000
    slip: 2
mod-cookies:
  - id: bench
    secret: 0x$secret
template:
  - id: default
$mod
zone:
  - domain: $zone
    file: "$work/$zone.zone"
    journal-content: none
    zonefile-load: whole
log:
  - target: stderr
    any: warning
EOF
		taskset -c 0 "$@" knotd -c "$d/knot.conf" >"$d/log" 2>&1 &
		;;
	esac
	SPID=$!
}

dnsperf_args() { # VARIANT PORT
	local a="-s 127.0.0.1 -p $2 -d $work/q.static"
	[ "$1" != cookie ] || a="$a -E 10:$cookie"
	echo "$a"
}

# Instructions per answered query of NAME VARIANT: prints the figure.
measure() {
	local s=$1 v=$2 d pid n t0 t1 t2 bi ii p
	d=$work/$s-$v
	mkdir -p "$d/out"
	next_port
	start "$s" "$v" "$d" "$port" valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$d/out/cg.%p"
	pid=$SPID
	pids+=("$pid")
	wait_up "$port" "$pid" || { log "$s ($v) did not start:"; tail -5 "$d/log" >&2; echo 0; return; }
	# shellcheck disable=SC2046
	taskset -c 1 dnsperf $(dnsperf_args "$v" "$port") -l 1 -c 1 -q 10 >/dev/null 2>&1 || true
	for p in $(tree "$pid"); do callgrind_control -z "$p" >/dev/null 2>&1 || true; done
	t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	n=$(taskset -c 1 dnsperf $(dnsperf_args "$v" "$port") -l "$cgs" -c 1 -q 10 2>&1 |
		awk '/Queries completed/ {print $3}')
	for p in $(tree "$pid"); do callgrind_control -d "$p" >/dev/null 2>&1 || true; done
	sleep 0.5
	t1=$(date +%s.%N)
	mkdir -p "$d/busy" "$d/idle"
	find "$d/out" -maxdepth 1 -type f -name 'cg.*.*' -exec mv {} "$d/busy" \;
	for p in $(tree "$pid"); do callgrind_control -z "$p" >/dev/null 2>&1 || true; done
	sleep "$cgs"
	for p in $(tree "$pid"); do callgrind_control -d "$p" >/dev/null 2>&1 || true; done
	sleep 0.5
	t2=$(date +%s.%N)
	find "$d/out" -maxdepth 1 -type f -name 'cg.*.*' -exec mv {} "$d/idle" \;
	read -r bi _ < <("$py" "$here/cgsum.py" "$d/busy")
	read -r ii _ < <("$py" "$here/cgsum.py" "$d/idle")
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	awk -v n="${n:-0}" -v bi="$bi" -v ii="$ii" -v tb="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" \
		-v ti="$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b - a}')" \
		'BEGIN { if (n > 0) printf "%.0f\n", (bi - ii * tb / ti) / n; else print 0 }'
}

# Whether Knot's server cookie for our client cookie is RFC 9018's (then its "cookie" run verifies).
next_port
start knot cookie "$work/knot-probe" "$port"
kpid=$SPID
pids+=("$kpid")
knot_rfc9018=unknown
if wait_up "$port" "$kpid"; then
	got=$(dig +cookie=0123456789abcdef -p "$port" @127.0.0.1 "h1.$zone" A | awk '/COOKIE:/ {print $3}')
	ts=${got:24:8}
	want=$(cd "$top/tests/integration" && "$py" -c "
import test_abuse
c = bytes.fromhex('0123456789abcdef')
print((c + test_abuse.server_cookie(bytes.fromhex('$secret'), c, int('${ts:-0}', 16), '127.0.0.1')).hex())")
	[ "$got" = "$want" ] && knot_rfc9018=yes || knot_rfc9018="no (Knot sent $got)"
fi
kill "$kpid" 2>/dev/null || true
wait "$kpid" 2>/dev/null || true

declare -A ipq
for s in gslbd knot; do
	for v in plain rrl cookie; do
		log "$s $v (callgrind, ${cgs}s busy, ${cgs}s idle)"
		ipq[$s.$v]=$(measure "$s" "$v")
	done
done

# The flood: gslbd alone, not under valgrind.
next_port
mport=$port
next_port
d=$work/flood
mkdir -p "$d/zones"
cp "$work/$zone.zone" "$d/zones/"
echo "h1.$zone A" >"$work/q.one"
taskset -c 0 "$builddir/gslbd" --listen "127.0.0.1:$port" --zones "$d/zones" --db "$d/gslb.db" \
	--threads 1 --log-level warning --rrl "$flood_rate" --rrl-slip 2 --metrics "127.0.0.1:$mport" \
	>"$d/log" 2>&1 &
fpid=$!
pids+=("$fpid")
wait_up "$port" "$fpid" || { log "gslbd did not start for the flood"; exit 1; }
metric() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
q0=$(curl -s "http://127.0.0.1:$mport/metrics" | awk '$1 == "gslbd_queries_total{transport=\"udp\"}" {print $2}')
d0=$(metric gslbd_rrl_dropped_total)
s0=$(metric gslbd_rrl_slipped_total)
log "flood: $flood_qps q/s for ${flood_secs}s, --rrl $flood_rate"
sent=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/q.one" -Q "$flood_qps" -l "$flood_secs" \
	-c 4 -q 20000 -t 1 2>&1 | awk '/Queries sent/ {print $3}')
sleep 0.5
q1=$(curl -s "http://127.0.0.1:$mport/metrics" | awk '$1 == "gslbd_queries_total{transport=\"udp\"}" {print $2}')
d1=$(metric gslbd_rrl_dropped_total)
s1=$(metric gslbd_rrl_slipped_total)
kill "$fpid" 2>/dev/null || true
wait "$fpid" 2>/dev/null || true

# Idle TCP: BENCH_IDLE_TCP connections held open (bench/idle_tcp.py): gslbd's RSS before and
# after, then a UDP query and a new TCP connection must still be answered.
idle_n=${BENCH_IDLE_TCP:-10000}
next_port
d=$work/idle
mkdir -p "$d/zones"
cp "$work/$zone.zone" "$d/zones/"
"$builddir/gslbd" --listen "127.0.0.1:$port" --zones "$d/zones" --db "$d/gslb.db" --threads 1 \
	--log-level warning --tcp-clients "$((idle_n + 1000))" --tcp-clients-per-ip 0 >"$d/log" 2>&1 &
ipid=$!
pids+=("$ipid")
wait_up "$port" "$ipid" || { log "gslbd did not start for the idle connections"; exit 1; }
log "idle TCP: $idle_n connections"
idle=$("$py" "$here/idle_tcp.py" "$port" "$ipid" "$idle_n" "h1.$zone")
kill "$ipid" 2>/dev/null || true
wait "$ipid" 2>/dev/null || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "## Abuse protection: instructions per query (callgrind, static names over UDP, one thread)"
echo
echo "| server | plain | RRL on, not limiting | ratio | valid server cookie | ratio | cookie cost |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for s in gslbd knot; do
	p=${ipq[$s.plain]} r=${ipq[$s.rrl]} c=${ipq[$s.cookie]}
	printf '| %s | %s | %s | %sx | %s | %sx | %+d |\n' "$s" "$p" "$r" "$(ratio "$r" "$p")" "$c" \
		"$(ratio "$c" "$p")" "$((c - p))"
done
echo
echo "Knot's server cookies are RFC 9018's: $knot_rfc9018."
echo
full=$(( (q1 - q0) - (d1 - d0) - (s1 - s0) ))
read -r ib ia iu it <<<"$idle"
echo "## Idle TCP: $idle_n connections held open"
echo
echo "| gslbd RSS before | after | growth | per connection | UDP answered | new TCP answered |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '| %d KiB | %d KiB | %s MiB | %d bytes | %s | %s |\n' "$ib" "$ia" \
	"$(awk -v a="$ia" -v b="$ib" 'BEGIN { printf "%.1f", (a - b) / 1024 }')" \
	"$(((ia - ib) * 1024 / idle_n))" "$iu" "$it"
echo
echo "## Flood: $sent queries of one name from 127.0.0.1 in ${flood_secs} s, --rrl $flood_rate --rrl-slip 2"
echo
echo "| received by gslbd | full answers | a second | truncated (slip) | dropped |"
echo "| --- | --- | --- | --- | --- |"
printf '| %d | %d | %s | %d | %d |\n' "$((q1 - q0))" "$full" \
	"$(awk -v f="$full" -v s="$flood_secs" 'BEGIN { printf "%.1f", f / s }')" "$((s1 - s0))" "$((d1 - d0))"
