#!/bin/sh
# SPDX-License-Identifier: MIT
# make check: replays the JSON fuzz corpus through the readers of pools, configuration files and
# etcd's replies, as TAP.
srcdir=${GSLB_SRCDIR:-$(dirname "$0")/../..}
builddir=${GSLB_BUILDDIR:-.}
exec timeout 300 "$builddir/tests/fuzz/replay_json" "$srcdir/tests/fuzz/corpus-json"
