#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: serve the demo zone on 127.0.0.1:5300 and [::1]:5300 until Ctrl-C.
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
port=${GSLB_DEMO_PORT:-5300}
work=$(mktemp -d /tmp/gslbd-demo.XXXXXX)
pid=""

stop() {
	trap - INT TERM EXIT
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		wait "$pid" || true
	fi
	rm -rf "$work"
	echo "demo stopped"
	exit 0
}
trap stop INT TERM EXIT

cp "$srcdir"/zones/demo.test.zone "$work/"
listen=(--listen "127.0.0.1:$port")
if python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	listen+=(--listen "[::1]:$port")
fi
"$builddir/gslbd" "${listen[@]}" --zones "$work" --db "$work/gslb.db" --threads 2 \
	--server-version "gslbd demo" --server-id demo --nsid demo &
pid=$!
for _ in $(seq 50); do
	dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 demo.test SOA >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "gslbd did not start" >&2; exit 1; }
	sleep 0.1
done

cat <<MSG

gslbd is serving demo.test on 127.0.0.1:$port (PID $pid). Try, in another terminal:

  dig @127.0.0.1 -p $port www.demo.test A          # positive answer, AA=1
  dig @127.0.0.1 -p $port www.demo.test AAAA +tcp  # over TCP
  dig @127.0.0.1 -p $port web.demo.test A          # CNAME followed inside the zone
  dig @127.0.0.1 -p $port demo.test MX             # apex data, authority section empty
  dig @127.0.0.1 -p $port nothere.demo.test A      # NXDOMAIN with the SOA
  dig @127.0.0.1 -p $port b.demo.test TXT          # empty non-terminal: NODATA
  dig @127.0.0.1 -p $port anything.wild.demo.test  # wildcard (RFC 4592)
  dig @127.0.0.1 -p $port host.sub.demo.test A     # referral with glue
  dig @127.0.0.1 -p $port demo.test ANY            # RFC 8482 HINFO
  dig @127.0.0.1 -p $port version.bind CH TXT +nsid
  dig @127.0.0.1 -p $port www.demo.test A +subnet=192.0.2.0/24   # ECS echoed, scope 0

Edit $work/demo.test.zone and it is reloaded at once.  Ctrl-C stops the demo.
This demo shows the DNS core only: balanced names (pools), health checks and geo answers
come in later releases, and the demo will then serve pools of local, health-checked backends.
MSG
wait "$pid"
