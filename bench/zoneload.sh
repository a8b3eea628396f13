#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Zone loading: one zone file of NAMES static names shaped like a real one ($ORIGIN blocks,
# relative names one to three labels deep, 1-3 RRsets a name of A, AAAA, TXT, MX, CNAME, SRV, CAA,
# PTR and delegations with glue, inherited owners, comments, parentheses), loaded in turn by
# gslbd, gdnsd and knotd.  For each: exec to the first correct answer for the last name, CPU time,
# and RSS then, net of the same server on an empty zone.  Loopback only; a temp directory; every
# process it starts is stopped by PID; every wait is bounded.
#
# Usage: bench/zoneload.sh BUILDDIR [NAMES] [SERVER...]
#   NAMES    static names (default 1000000)
#   SERVER   gslbd, gdnsd, knot (default: all three)
# ZONELOAD_SHAPE=flat: bench/scale.sh's zone instead (one RRset a name, one label below the apex,
# no $ORIGIN, comments or inherited owners).
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
names=${2:-1000000}
shift $(($# < 2 ? $# : 2))
work=$(mktemp -d /tmp/gslb-zoneload.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

PY=/usr/bin/python3
"$PY" -c 'import dns.message' 2>/dev/null || { echo "dnspython missing: apt-get install python3-dnspython" >&2; exit 1; }

echo "$(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)," \
	"$("$builddir/gslbd" --version 2>&1 | head -1), $(gdnsd 2>&1 | head -1 || true), $(knotd -V 2>&1 | head -1 || true)"
"$PY" "$(dirname "$0")/zoneload.py" "$builddir/gslbd" "$work" "$names" "$@"
