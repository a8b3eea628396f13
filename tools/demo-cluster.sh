#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo-cluster`: a three-member etcd and three gslbd nodes on loopback, sharing the demo
# zone's pools and health verdicts (README "Two or more nameservers"), until Ctrl-C.
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
port=${GSLB_DEMO_PORT:-5300}
etcd_base=${GSLB_DEMO_ETCD_PORT:-23790}
work=$(mktemp -d /tmp/gslbd-demo-cluster.XXXXXX)
pids=()

command -v etcd >/dev/null || { echo "etcd is missing: apt-get install etcd-server etcd-client" >&2; exit 1; }

stop() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
	echo "demo stopped"
	exit 0
}
trap stop INT TERM EXIT

# etcd: members e1-e3, client ports etcd_base+1..3, peer ports etcd_base+11..13.
initial=""
urls=""
for i in 1 2 3; do
	initial+="${initial:+,}e$i=http://127.0.0.1:$((etcd_base + 10 + i))"
	urls+="${urls:+,}http://127.0.0.1:$((etcd_base + i))"
done
for i in 1 2 3; do
	etcd --name "e$i" --data-dir "$work/etcd$i" \
		--listen-client-urls "http://127.0.0.1:$((etcd_base + i))" \
		--advertise-client-urls "http://127.0.0.1:$((etcd_base + i))" \
		--listen-peer-urls "http://127.0.0.1:$((etcd_base + 10 + i))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((etcd_base + 10 + i))" \
		--initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token gslb-demo \
		--pre-vote=true --auto-compaction-mode=periodic --auto-compaction-retention=1h \
		>"$work/etcd$i.log" 2>&1 &
	pids+=($!)
done
for _ in $(seq 100); do
	etcdctl --endpoints "$urls" endpoint health >/dev/null 2>&1 && break
	sleep 0.1
done
etcdctl --endpoints "$urls" endpoint health >/dev/null || { echo "etcd did not start" >&2; exit 1; }

# Three sites, each a real HTTP backend on its own loopback address that every node checks.
sites=("fra 127.0.0.11 100" "iad 127.0.0.12 100" "sin 127.0.0.13 50")
for site in "${sites[@]}"; do
	set -- $site
	python3 "$srcdir/tests/backend.py" --host "$2" --port 8080 < <(tail -f /dev/null) \
		>"$work/backend-$1.out" &
	pids+=($!)
done

# The first node's configuration, made standalone and imported into the empty cluster.
mkdir -p "$work/zones"
cp "$srcdir"/zones/demo.test.zone "$work/zones/"
ctl1="$builddir/gslbctl --db $work/ns1.db"
$ctl1 init >/dev/null
$ctl1 pool add app.demo.test --policy weighted --ttl 30 --degraded-ttl 5
for site in "${sites[@]}"; do
	set -- $site
	$ctl1 member add app.demo.test "$1" --address "$2" --weight "$3"
done
$ctl1 check set app.demo.test --type http --port 8080 --path /health --interval 1 --fall 2 --rise 2
$builddir/gslbctl --db "$work/ns1.db" --cluster "$urls" cluster import

# Nodes ns1-ns3 answer on 127.0.0.53, .54, .55 (port $port); ns2 and ns3 start empty.
for i in 1 2 3; do
	"$builddir/gslbd" --listen "127.0.0.$((52 + i)):$port" --zones "$work/zones" \
		--db "$work/ns$i.db" --threads 1 --cluster "$urls" --node "ns$i" --cluster-lease 5 \
		--metrics "127.0.0.$((52 + i)):$((port + 1))" >"$work/ns$i.log" 2>&1 &
	pids+=($!)
done
for i in 1 2 3; do
	for _ in $(seq 100); do
		[ -n "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.$((52 + i)) app.demo.test A 2>/dev/null)" ] && break
		sleep 0.1
	done
done

cat <<MSG

Three gslbd nodes share demo.test's pools through etcd ($urls):
ns1 127.0.0.53, ns2 127.0.0.54, ns3 127.0.0.55, all on port $port. Try, in another terminal:

  for n in 53 54 55; do dig +short @127.0.0.\$n -p $port app.demo.test; done
  $builddir/gslbctl --db $work/ns2.db member set app.demo.test sin --weight 0   # on ns2 ...
  for n in 53 54 55; do dig +short @127.0.0.\$n -p $port app.demo.test; done   # ... every node
  $builddir/gslbctl --db $work/ns3.db cluster status
  $builddir/gslbctl --db $work/ns1.db status --zones $work/zones               # each node's vote
  $builddir/gslbctl --db $work/ns1.db log                                      # who changed what, where
  curl 'http://127.0.0.13:8080/_control?mode=503'   # sin fails for every node: down everywhere

Logs are in $work. Ctrl-C stops everything.
MSG
while :; do
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || { echo "process $p ended; see $work" >&2; stop; }
	done
	sleep 1
done
