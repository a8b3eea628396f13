#!/bin/sh
# SPDX-License-Identifier: MIT
# The alerting rules of etc/prometheus (README "Alerting"): promtool accepts them, and their unit
# tests (gslbd.rules.test.yml: each alert fires where it should, not before its "for", and not for
# the series that must not fire it) pass.  promtool is in Debian's prometheus package (setup.sh
# installs it).  tests/integration/test_rules_metrics.py checks the metric names against a real
# gslbd.  TAP output.
set -u
src=${GSLB_SRCDIR:-.}
dir="$src/etc/prometheus"
promtool=${PROMTOOL:-promtool}

echo "1..2"
if ! command -v "$promtool" >/dev/null 2>&1; then
	echo "not ok 1 - promtool check rules # promtool not found (apt-get install prometheus)"
	echo "not ok 2 - promtool test rules # promtool not found (apt-get install prometheus)"
	exit 0
fi
if out=$("$promtool" check rules "$dir/gslbd.rules.yml" 2>&1); then
	echo "ok 1 - promtool check rules gslbd.rules.yml"
else
	echo "not ok 1 - promtool check rules gslbd.rules.yml"
	echo "$out" | sed 's/^/# /'
fi
# promtool resolves rule_files against the test file's directory.
if out=$(cd "$dir" && "$promtool" test rules gslbd.rules.test.yml 2>&1); then
	echo "ok 2 - promtool test rules gslbd.rules.test.yml"
else
	echo "not ok 2 - promtool test rules gslbd.rules.test.yml"
	echo "$out" | sed 's/^/# /'
fi
