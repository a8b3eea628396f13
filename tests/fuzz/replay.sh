#!/bin/sh
# SPDX-License-Identifier: MIT
# make check: replays the fuzz corpus (seeds and saved crashes) through the answer path, as TAP.
srcdir=${GSLB_SRCDIR:-$(dirname "$0")/../..}
builddir=${GSLB_BUILDDIR:-.}
exec timeout 300 "$builddir/tests/fuzz/replay_corpus" "$srcdir/tests/fuzz/corpus"
