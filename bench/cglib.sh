# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2154
# Shell functions shared by bench/run.sh and bench/curves.sh (sourced, not run): the processes a
# server started, stopping one, and callgrind's counters of a server running under
# `valgrind --tool=callgrind --callgrind-out-file=DIR/cg.%p`.  The caller sets $py (python3) and
# $here (the bench directory).

# tree PID: PID and its descendants
tree() {
	local p c
	for p in "$@"; do
		echo "$p"
		# shellcheck disable=SC2013 # the files hold PIDs separated by blanks
		for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
	done
}

stop() { # PID: SIGTERM, then wait for it (SIGKILL after 10 s)
	kill "$1" 2>/dev/null || return 0
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# callgrind: instruction counts zeroed before and dumped after a busy window, then the same for an
# idle window (it holds the timers, database polls and health probes)
cg_window() { # PID: dump the counters of every callgrind process in the tree into files
	local p
	for p in $(tree "$1"); do callgrind_control -d "$p" >/dev/null 2>&1 || true; done
	sleep 0.5
}
cg_zero() {
	local p
	for p in $(tree "$1"); do callgrind_control -z "$p" >/dev/null 2>&1 || true; done
}
cg_collect() { # OUTDIR DEST: moves the dumps written so far into DEST
	mkdir -p "$2"
	find "$1" -maxdepth 1 -type f -name 'cg.*.*' -exec mv {} "$2" \;
}

# cg_net PID DIR TAG COMMAND...: the instructions per answer of the server PID (dumping into
# DIR/out) while COMMAND runs, net of an idle window as long: COMMAND prints the number of answers.
# Prints "instructions allocations answers" per answer; the dumps stay in DIR/TAG.busy and .idle.
cg_net() {
	local pid=$1 d=$2 tag=$3 n t0 t1 t2 bi ba ii ia
	shift 3
	cg_collect "$d/out" "$d/junk"
	cg_zero "$pid"
	t0=$(date +%s.%N)
	n=$("$@")
	cg_window "$pid"
	t1=$(date +%s.%N)
	cg_collect "$d/out" "$d/$tag.busy"
	cg_zero "$pid"
	sleep "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a - 0.5 }')"
	cg_window "$pid"
	t2=$(date +%s.%N)
	cg_collect "$d/out" "$d/$tag.idle"
	read -r bi ba < <("$py" "$here/cgsum.py" "$d/$tag.busy")
	read -r ii ia < <("$py" "$here/cgsum.py" "$d/$tag.idle")
	awk -v n="${n:-0}" -v bi="$bi" -v ba="$ba" -v ii="$ii" -v ia="$ia" -v t0="$t0" -v t1="$t1" \
		-v t2="$t2" 'BEGIN { k = (t1 - t0) / (t2 - t1)
			if (n > 0) printf "%.0f %.4f %d\n", (bi - ii * k) / n, (ba - ia * k) / n, n
			else print "0 0 0" }'
}
