#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Health-check load: N HTTP targets on loopback at a given interval, run by the real health loop
# (tests/health_probe); prints the health thread's CPU share, probes per second, and the database
# size per stored result.  Usage: bench/health.sh BUILDDIR [TARGETS] [INTERVAL_S] [SECONDS]
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
n=${2:-10000}
interval=${3:-10}
secs=${4:-30}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gslb-hbench.XXXXXX)
bpid=""
cleanup() { [ -z "$bpid" ] || kill "$bpid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 "$srcdir/tests/backend.py" --port 0 < <(tail -f /dev/null) > "$work/backend.out" &
bpid=$!
for _ in $(seq 50); do grep -q ready "$work/backend.out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/ready/ {print $2}' "$work/backend.out")

"$builddir/tests/health_probe" --db "$work/h.db" --schema "$srcdir/src/db/schema.sql" \
	--seconds "$secs" --count "$n" --quiet \
	"http,127.0.0.1:$port,path=/b,interval=$interval,timeout=2" > "$work/out"
rows=$(sqlite3 "$work/h.db" 'select count(*) from probe_result')
fails=$(sqlite3 "$work/h.db" 'select count(*) from probe_result where ok = 0')
size=$(stat -c %s "$work/h.db")
wal=$(stat -c %s "$work/h.db-wal" 2>/dev/null || echo 0)
# The results' own b-trees (with their indexes and free space): in a short run the whole file is
# mostly the per-target rows (key, state), which do not grow with the history.
tree=$(sqlite3 "$work/h.db" "select coalesce(sum(pgsize), 0) from dbstat where name in
	('probe_result', 'probe_result_target_time', 'probe_result_time')")
awk -v n="$n" -v iv="$interval" -v rows="$rows" -v fails="$fails" -v size="$size" -v wal="$wal" \
	-v tree="$tree" \
	'/^cpu/ { r = rows ? rows : 1;
		printf "%d targets, interval %d s, %.0f s: health thread %.1f%% of one core, %.0f probes/s (%d failed), db %.1f MB + wal %.1f MB, %.0f bytes per stored result (file), %.0f (results b-tree)\n",
		n, iv, $4, 100 * $2 / $4, $5 / $4, fails, size / 1e6, wal / 1e6, (size + wal) / r, tree / r }' "$work/out"
