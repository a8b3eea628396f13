#!/bin/sh
# SPDX-License-Identifier: MIT
# The answer path (src/core, dns, zone, geo, lb, query: libgslbanswer) must not include a header of
# the daemon's libraries (SQLite, libuv, liburcu, OpenSSL, jansson) or of the daemon's modules
# (server, health, targets, the health store), not even through another header: the compiler lists
# every header each file pulls in, and this checks the list (doc/ARCHITECTURE.md, "Source layout
# and layering").  TAP output.
set -u
src=${GSLB_SRCDIR:-.}
build=${GSLB_BUILDDIR:-.}
cc=${GSLB_CC:-cc}
forbidden='sqlite3\.h|/uv\.h|/uv/|openssl/|urcu|jansson|fstrm|protobuf-c|gslb/(server|health|targets|db_health)\.h'

files=$(cd "$src" && ls src/core/*.c src/dns/*.c src/zone/*.c src/geo/*.c src/lb/*.c src/query/*.c)
n=0
for f in $files; do
	n=$((n + 1))
done
echo "1..$n"
i=0
for f in $files; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	deps=$($cc -MM -include "$build/config.h" -I"$src/include" -I"$build" \
		${GSLB_ANSWER_CFLAGS:-} "$src/$f" 2>&1)
	if [ $? -ne 0 ]; then
		echo "not ok $i - $f: the compiler could not list its headers"
		echo "$deps" | sed 's/^/# /'
		continue
	fi
	bad=$(echo "$deps" | tr ' \\' '\n\n' | grep -E "$forbidden")
	if [ -n "$bad" ]; then
		echo "not ok $i - $f includes only answer-path headers"
		echo "$bad" | sed 's/^/# includes /'
	else
		echo "ok $i - $f includes only answer-path headers"
	fi
done
