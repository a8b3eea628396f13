#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale: start-up time and memory of gslbd with many static names and with many pools, the time
# gslbctl apply takes to write the pools, and the delay from a gslbctl change to the changed answer
# with every pool loaded.  Loopback only; everything lives in a temp directory; every process it
# starts is stopped by PID; every wait is bounded.
#
# Usage: bench/scale.sh BUILDDIR [NAMES] [POOLS] [CHANGES] [CHECKED_POOLS]
#   NAMES          static names in one zone (default 1000000)
#   POOLS          pools of 2-4 members, no health checks (default 100000)
#   CHANGES        gslbctl changes timed with POOLS loaded (default 9)
#   CHECKED_POOLS  pools of the same shape, each with a TCP check to a closed loopback port
#                  (default POOLS; 0 skips that run)
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
names=${2:-1000000}
pools=${3:-100000}
changes=${4:-9}
checked=${5:-$pools}
work=$(mktemp -d /tmp/gslb-scale.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

PY=/usr/bin/python3
"$PY" -c 'import dns.message' 2>/dev/null || { echo "dnspython missing: apt-get install python3-dnspython" >&2; exit 1; }

echo "$(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)," \
	"$("$builddir/gslbd" --version 2>&1 | head -1)"
"$PY" "$(dirname "$0")/scale.py" "$builddir" "$work" "$names" "$pools" "$changes" "$checked"
