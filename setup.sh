#!/bin/sh
# SPDX-License-Identifier: MIT
# Install what is missing on Debian 12, then configure and build gslbd.  Idempotent and quick on
# a second run.  Extra configure flags: GSLB_CONFIGURE_FLAGS="--enable-sanitizers" ./setup.sh
set -e
cd "$(dirname "$0")"

PKGS="build-essential autoconf automake libtool pkg-config
libuv1-dev libldns-dev libmaxminddb-dev libsqlite3-dev liburcu-dev libssl-dev
sqlite3 openssl dnsutils knot-dnsutils python3 python3-dnspython knot nsd dnsperf
clang libclang-rt-14-dev procps iproute2 ca-certificates"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "setup: installing:$missing"
	$SUDO apt-get update -qq
	# knot and nsd are only used as reference servers by the tests: keep them from starting.
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
	$SUDO rm -f /usr/sbin/policy-rc.d
else
	echo "setup: every package is installed"
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	echo "setup: ./autogen.sh"
	./autogen.sh
fi
if [ ! -f Makefile ] || [ configure -nt config.status ]; then
	echo "setup: ./configure $GSLB_CONFIGURE_FLAGS"
	# shellcheck disable=SC2086
	./configure $GSLB_CONFIGURE_FLAGS
fi
echo "setup: make"
make -j"$(nproc)"
