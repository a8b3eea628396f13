#!/bin/sh
# SPDX-License-Identifier: MIT
# make check: replays the TCP fuzz corpus through DNS over TCP's framing (src/server/tcp_frame.h), as TAP.
srcdir=${GSLB_SRCDIR:-$(dirname "$0")/../..}
builddir=${GSLB_BUILDDIR:-.}
exec timeout 300 "$builddir/tests/fuzz/replay_tcp" "$srcdir/tests/fuzz/corpus-tcp"
