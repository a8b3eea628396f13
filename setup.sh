#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing on Debian 12, then configure and build gslbd.  Idempotent and quick on
# a second run.  Extra configure flags: GSLB_CONFIGURE_FLAGS="--enable-sanitizers" ./setup.sh
set -e
cd "$(dirname "$0")"

PKGS="build-essential autoconf automake libtool pkg-config
libuv1-dev libldns-dev libmaxminddb-dev libsqlite3-dev liburcu-dev libssl-dev libjansson-dev
libcurl4-openssl-dev libc-ares-dev libsystemd-dev etcd-server etcd-client
sqlite3 openssl dnsutils knot-dnsutils python3 python3-dnspython python3-cryptography knot nsd
dnsperf clang libclang-rt-14-dev procps iproute2 nftables ca-certificates unbound
prometheus chromium-headless-shell
libfstrm-dev libprotobuf-c-dev protobuf-c-compiler fstrm-bin bind9-utils
libmaxmind-db-writer-perl dnsviz zonemaster-cli bind9 faketime"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "setup: missing packages:$missing"
	echo "setup: apt-get update"
	$SUDO apt-get update -qq
	# knot, nsd, unbound and bind9 are only used as reference servers by the tests, etcd only by the
	# cluster's tests: keep their packages from starting them (on port 53, on 2379).  A policy-rc.d that is already there (containers have one)
	# stays.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
		$SUDO chmod +x "$policy"
	fi
	echo "setup: apt-get install$missing"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing ||
		{ [ -z "$policy" ] || $SUDO rm -f "$policy"; exit 1; }
	[ -z "$policy" ] || $SUDO rm -f "$policy"
	# Their packages also enable the services for the next boot (unbound.service would answer
	# on port 53 and take over resolv.conf through unbound-resolvconf); the tests start their
	# own instances on free ports, so none of them is wanted at boot.
	# etcd-server's etcd.service would take etcd's default ports, which the tests never use.
	# prometheus is there for promtool (the alerting rules' tests); its server is not wanted.
	# bind9 is there for named, which dnsviz probe starts to serve a test delegation.
	for s in knot nsd unbound etcd-server prometheus bind9; do
		case " $missing " in *" $s "*) ;; *) continue ;; esac
		unit=${s%-server}
		[ "$s" != bind9 ] || unit=named
		if command -v systemctl >/dev/null; then
			$SUDO systemctl disable "$unit.service" >/dev/null 2>&1 || true
		fi
	done
else
	echo "setup: every package is installed"
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	echo "setup: ./autogen.sh"
	./autogen.sh
fi
# Configure again when GSLB_CONFIGURE_FLAGS is set and differs from the flags of the last run.
reconf=""
if [ -n "${GSLB_CONFIGURE_FLAGS:-}" ] && [ -x config.status ]; then
	# shellcheck disable=SC2086,SC2116
	[ "$(./config.status --config | tr -d "'")" = "$(echo $GSLB_CONFIGURE_FLAGS)" ] ||
		reconf=yes
fi
if [ ! -f Makefile ] || [ ! -f config.status ] || [ configure -nt config.status ] || [ -n "$reconf" ]
then
	echo "setup: ./configure ${GSLB_CONFIGURE_FLAGS:-}"
	# shellcheck disable=SC2086
	./configure ${GSLB_CONFIGURE_FLAGS:-}
fi
echo "setup: make"
make -j"$(nproc)"
