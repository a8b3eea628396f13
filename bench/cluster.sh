#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The cluster (README "Two or more nameservers"): a three-member etcd (Debian etcd-server) and three
# gslbd nodes on loopback: the delay from a change on any node to every node's answer, the time an
# empty node takes to mirror many pools, and the etcd writes of a steady state with many
# health-check targets.  Loopback only; everything lives in a temp directory; every process it
# starts is stopped by PID; every wait is bounded.
#
# Usage: bench/cluster.sh BUILDDIR [CHANGES] [POOLS] [TARGETS]
#   CHANGES  changes timed, made on each node in turn (default 30)
#   POOLS    pools an empty node mirrors (default 100000)
#   TARGETS  health-check targets of the steady-state run (default 10000)
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
changes=${2:-30}
pools=${3:-100000}
targets=${4:-10000}
work=$(mktemp -d /tmp/gslb-cluster.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

PY=/usr/bin/python3
command -v etcd >/dev/null || { echo "etcd missing: apt-get install etcd-server etcd-client" >&2; exit 1; }
"$PY" -c 'import dns.message' 2>/dev/null || { echo "dnspython missing: apt-get install python3-dnspython" >&2; exit 1; }

echo "$(uname -srm), $(nproc) cores, $(etcd --version | head -1)," \
	"$("$builddir/gslbd" --version 2>&1 | head -1)"
"$PY" "$(dirname "$0")/cluster.py" "$builddir" "$work" "$changes" "$pools" "$targets"
