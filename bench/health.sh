#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Health-check load: N HTTP or HTTPS targets on loopback at a given interval, run by the real health
# loop (tests/health_probe); prints the health thread's CPU share, CPU per probe, the same for the
# whole process (the database writer's thread included), probes per second, and the database size
# per stored result.
# Usage: bench/health.sh BUILDDIR [TARGETS] [INTERVAL_S] [SECONDS] [http|https]
# https: the backend gets a certificate from a throwaway CA that the probes trust (--ca-file), so
# every probe verifies the chain and host name (or resumes a session that did).
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
n=${2:-10000}
interval=${3:-10}
secs=${4:-30}
scheme=${5:-http}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gslb-hbench.XXXXXX)
bpid=""
cleanup() { [ -z "$bpid" ] || kill "$bpid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

tls=() ca=()
if [ "$scheme" = https ]; then
	ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -x509 -days 2 -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign "${ec[@]}" -keyout "$work/ca.key" \
		-out "$work/ca.pem" 2>/dev/null
	openssl req -new -subj /CN=localhost "${ec[@]}" -keyout "$work/srv.key" \
		-out "$work/srv.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$work/ext"
	openssl x509 -req -days 2 -in "$work/srv.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
		-CAcreateserial -extfile "$work/ext" -out "$work/srv.pem" 2>/dev/null
	tls=(--cert "$work/srv.pem" --key "$work/srv.key")
	ca=(--ca-file "$work/ca.pem")
elif [ "$scheme" != http ]; then
	echo "usage: $0 BUILDDIR [TARGETS] [INTERVAL_S] [SECONDS] [http|https]" >&2
	exit 2
fi

python3 "$srcdir/tests/backend.py" --port 0 "${tls[@]}" < <(tail -f /dev/null) > "$work/backend.out" &
bpid=$!
for _ in $(seq 50); do grep -q ready "$work/backend.out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/ready/ {print $2}' "$work/backend.out")

"$builddir/tests/health_probe" --db "$work/h.db" --schema "$srcdir/src/db/schema.sql" \
	--seconds "$secs" --count "$n" --quiet "${ca[@]}" \
	"$scheme,127.0.0.1:$port,path=/b,host=localhost,interval=$interval,timeout=2" > "$work/out"
[ -z "${KEEP_DB:-}" ] || cp "$work/h.db" "$KEEP_DB"
rows=$(sqlite3 "$work/h.db" 'select count(*) from probe_result')
fails=$(sqlite3 "$work/h.db" 'select count(*) from probe_result where ok = 0')
size=$(stat -c %s "$work/h.db")
wal=$(stat -c %s "$work/h.db-wal" 2>/dev/null || echo 0)
if [ "$scheme" = https ]; then
	python3 - "$port" <<'PY' || true
import json, ssl, sys, urllib.request
ctx = ssl._create_unverified_context()
s = json.load(urllib.request.urlopen('https://127.0.0.1:%s/_stats' % sys.argv[1], context=ctx))
print('backend: %d TLS handshakes, %d resumed' % (s.get('handshakes', 0), s.get('resumed', 0)))
PY
fi
# The results' own b-trees (with their indexes and free space): in a short run the whole file is
# mostly the per-target rows (key, state), which do not grow with the history.
tree=$(sqlite3 "$work/h.db" "select coalesce(sum(pgsize), 0) from dbstat where name in
	('probe_result', 'probe_result_target_time', 'probe_result_time')")
awk -v n="$n" -v iv="$interval" -v rows="$rows" -v fails="$fails" -v size="$size" -v wal="$wal" \
	-v scheme="$scheme" -v tree="$tree" \
	'/^cpu/ { r = rows ? rows : 1;
		printf "%d %s targets, interval %s s, %.0f s: health thread %.1f%% of one core, %.0f us CPU per probe, process %.1f%% (%.0f us per probe, the database writer included), %.0f probes/s (%d failed), db %.1f MB + wal %.1f MB, %.0f bytes per stored result (file), %.0f (results b-tree)\n",
		n, scheme, iv, $4, 100 * $2 / $4, 1e6 * $2 / ($5 ? $5 : 1), 100 * $3 / $4, 1e6 * $3 / ($5 ? $5 : 1), $5 / $4, fails, size / 1e6, wal / 1e6, (size + wal) / r, tree / r }' "$work/out"
