#!/bin/sh
# SPDX-License-Identifier: MIT
# make check: replays the HTTP fuzz corpus through the health probes' response parser, as TAP.
srcdir=${GSLB_SRCDIR:-$(dirname "$0")/../..}
builddir=${GSLB_BUILDDIR:-.}
exec timeout 300 "$builddir/tests/fuzz/replay_http" "$srcdir/tests/fuzz/corpus-http"
