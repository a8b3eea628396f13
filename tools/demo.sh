#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: serve the demo zone on 127.0.0.1:5300 and [::1]:5300 until Ctrl-C.
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
port=${GSLB_DEMO_PORT:-5300}
mport=${GSLB_DEMO_METRICS_PORT:-$((port + 80))}
work=$(mktemp -d /tmp/gslbd-demo.XXXXXX)
pid=""
backends=()

stop() {
	trap - INT TERM EXIT
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		wait "$pid" || true
	fi
	for b in "${backends[@]}"; do kill "$b" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	echo "demo stopped"
	exit 0
}
trap stop INT TERM EXIT

mkdir -p "$work/zones"
cp "$srcdir"/zones/demo.test.zone "$work/zones/"
gslbctl="$builddir/gslbctl --db $work/gslb.db --control $work/control.sock"

# Three sites, each a real HTTP backend on its own loopback address that gslbd health-checks.
backends=()
sites=("fra 127.0.0.11 100" "iad 127.0.0.12 100" "sin 127.0.0.13 50")
for site in "${sites[@]}"; do
	set -- $site
	python3 "$srcdir/tests/backend.py" --host "$2" --port 8080 < <(tail -f /dev/null) \
		> "$work/backend-$1.out" &
	backends+=($!)
done
$gslbctl init >/dev/null
$gslbctl pool add app.demo.test --policy weighted --ttl 30 --degraded-ttl 5
for site in "${sites[@]}"; do
	set -- $site
	$gslbctl member add app.demo.test "$1" --address "$2" --weight "$3"
done
$gslbctl check set app.demo.test --type http --port 8080 --path /health --interval 1 --fall 2 --rise 2
# The same sites as a geo pool: clients are placed with geoip/gslb-test-city.mmdb.
$gslbctl pool add geo.demo.test --policy geo --ttl 30
$gslbctl member add geo.demo.test fra --address 127.0.0.11 --country DE --continent EU --location 50.11,8.68
$gslbctl member add geo.demo.test iad --address 127.0.0.12 --country US --continent NA --location 39.04,-77.49
$gslbctl member add geo.demo.test sin --address 127.0.0.13 --country SG --continent AS --location 1.35,103.82
$gslbctl check set geo.demo.test --type http --port 8080 --path /health --interval 1 --fall 2 --rise 2

listen=(--listen "127.0.0.1:$port")
if python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	listen+=(--listen "[::1]:$port")
fi
"$builddir/gslbd" "${listen[@]}" --zones "$work/zones" --db "$work/gslb.db" --threads 2 \
	--geoip "$srcdir/geoip/gslb-test-city.mmdb" --server-version "gslbd demo" --server-id demo --nsid demo \
	--metrics "127.0.0.1:$mport" --control "$work/control.sock" --rrl 100 &
pid=$!
for _ in $(seq 50); do
	dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 demo.test SOA >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "gslbd did not start" >&2; exit 1; }
	sleep 0.1
done

cat <<MSG

gslbd is serving demo.test on 127.0.0.1:$port (PID $pid). Try, in another terminal:

  dig @127.0.0.1 -p $port app.demo.test A          # the pool: one of fra, iad, sin by weight
  for i in \$(seq 20); do dig +short @127.0.0.1 -p $port app.demo.test; done | sort | uniq -c
  curl 'http://127.0.0.13:8080/_control?mode=503'   # make sin fail its health check ...
  $gslbctl status --zones $work/zones   # ... and see it go down within 2 s
  $gslbctl member state app.demo.test fra drain     # drain a site by hand
  curl 'http://127.0.0.13:8080/_control?mode=200'   # sin recovers after 2 good probes

  dig @127.0.0.1 -p $port www.demo.test A          # static data from the zone file, AA=1
  dig @127.0.0.1 -p $port www.demo.test AAAA +tcp  # over TCP
  dig @127.0.0.1 -p $port web.demo.test A          # CNAME followed inside the zone
  dig @127.0.0.1 -p $port nothere.demo.test A      # NXDOMAIN with the SOA
  dig @127.0.0.1 -p $port b.demo.test TXT          # empty non-terminal: NODATA
  dig @127.0.0.1 -p $port anything.wild.demo.test  # wildcard (RFC 4592)
  dig @127.0.0.1 -p $port host.sub.demo.test A     # referral with glue
  dig @127.0.0.1 -p $port demo.test MX             # mail exchanger
  dig @127.0.0.1 -p $port demo.test ANY            # RFC 8482 HINFO
  dig @127.0.0.1 -p $port version.bind CH TXT +nsid
  dig @127.0.0.1 -p $port app.demo.test A +subnet=192.0.2.0/24   # ECS echoed (scope 0: weighted)
  dig @127.0.0.1 -p $port geo.demo.test A +subnet=192.0.2.0/24   # Germany: fra, with its ECS scope
  dig @127.0.0.1 -p $port geo.demo.test A +subnet=198.51.100.0/24 # Virginia: iad
  dig @127.0.0.1 -p $port geo.demo.test A +subnet=203.0.113.0/24  # Singapore: sin
  dig @127.0.0.1 -p $port geo.demo.test A +subnet=10.3.0.0/16     # Brazil: nearest site (iad)

Operations (README "Running in production"):

  xdg-open http://127.0.0.1:$mport/          # the status page: pools, members, 24-hour timelines
  curl -s http://127.0.0.1:$mport/status.json | python3 -m json.tool | head -30
  curl -s http://127.0.0.1:$mport/metrics | grep -E 'gslbd_(pool|target_up|rrl)'
  $gslbctl daemon status                     # the running gslbd: zones, snapshot, targets
  $gslbctl daemon reload                     # what SIGHUP does, with what loaded and what failed
  $gslbctl log                               # the change journal
  dig +cookie @127.0.0.1 -p $port www.demo.test A  # DNS Cookies (RFC 7873, RFC 9018)

Edit $work/zones/demo.test.zone and it is reloaded at once; gslbctl changes are answered within 1 s.
Ctrl-C stops the demo.
MSG
wait "$pid"
