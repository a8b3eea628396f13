/* SPDX-License-Identifier: MIT */
/*
 * The health store (src/db/health_store.c) on a real SQLite file: results
 * and state changes written by its thread; while another connection holds
 * the write lock they wait in a bounded queue, the oldest results dropped
 * and counted past the bound, the state changes kept; written once the lock
 * is released; the file deleted and created again; writes that fail.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_health.h"
#include "../../src/db/internal.h"
#include "tap.h"

#define K1 "tcp 192.0.2.1:80"
#define K2 "http 192.0.2.2:80 www.example.test/"
#define RESULTS_MAX 8
#define CHANGES_MAX 4

static char dir[] = "/tmp/gslb-dbhealth-XXXXXX";
static char path[sizeof(dir) + 16];
static int64_t t0_ms; /* a minute ago: inside the history kept */

static db_t *open_migrated(void)
{
	db_t *db = NULL;
	if (db_open(path, DB_OPEN_CREATE, &db) < 0 || db_migrate(db, NULL) < 0)
		bail_out("cannot make the database %s", path);
	return db;
}

static void add_result(db_health_t *h, const char *key, int i, bool ok)
{
	db_health_result_t r = { .key = key,
				 .reason = ok ? "HTTP 200" : "connect refused",
				 .time_ms = t0_ms + i * 1000,
				 .latency_ms = ok ? 1.5 : -1,
				 .ok = ok,
				 .up = true,
				 .since_ms = t0_ms };
	db_health_result_add(h, &r);
}

static void add_change(db_health_t *h, const char *key, int i, bool up, const char *reason)
{
	db_health_change_t c = {
		.key = key, .reason = reason, .time_ms = t0_ms + i * 1000, .from_up = !up, .up = up
	};
	db_health_change_add(h, &c);
}

/* The stored rows of key: probe results (probes) or state changes, newest first. */
static size_t stored(bool probes, const char *key, db_event_t **ev)
{
	db_t *db = NULL;
	size_t n = 0;
	*ev = NULL;
	if (db_open(path, 0, &db) < 0)
		return 0;
	const char *keys[] = { key };
	if (db_events_list(db, probes, keys, 1, 0, ev, &n) < 0)
		n = 0;
	db_close(db);
	return n;
}

static db_health_stats_t stats(db_health_t *h)
{
	db_health_stats_t st;
	db_health_stats_get(h, &st);
	return st;
}

static void remove_files(void)
{
	char p[sizeof(path) + 8];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

int main(void)
{
	db_health_t *h = NULL;
	db_event_t *ev;
	size_t n;
	bool up = false;
	int64_t since = 0;

	if (!mkdtemp(dir))
		bail_out("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/gslb.db", dir);
	t0_ms = ((int64_t)time(NULL) - 60) * 1000;
	db_close(open_migrated());

	db_health_conf_t conf = { .results_max = RESULTS_MAX, .changes_max = CHANGES_MAX };
	is_int(db_health_open(path, &conf, &h), 0, "db_health_open");
	if (!h)
		bail_out("no store");
	const char *keys[] = { K2, K1 };
	db_health_targets_set(h, keys, 2);

	/* Written by the writer thread. */
	add_result(h, K1, 0, true);
	add_result(h, K1, 1, true);
	add_result(h, K1, 2, false);
	add_change(h, K1, 2, false, "connect refused");
	is_int(db_health_sync(h), 0, "a batch is written");
	n = stored(true, K1, &ev);
	ok(n == 3 && ev[0].ok == 0 && ev[0].time_ms == t0_ms + 2000 && ev[1].ok == 1 &&
		   ev[1].latency_ms == 1.5 && strcmp(ev[1].reason, "HTTP 200") == 0,
	   "the three results are stored, newest first, with latency and reason");
	db_events_free(ev, n);
	n = stored(false, K1, &ev);
	ok(n == 1 && strcmp(ev[0].from_state, "up") == 0 && strcmp(ev[0].to_state, "down") == 0 &&
		   strcmp(ev[0].reason, "connect refused") == 0,
	   "the state change is stored");
	db_events_free(ev, n);
	is_int(db_health_state_get(h, K1, &up, &since), 0, "the stored state is read back");
	ok(!up && since == t0_ms + 2000, "as the last change left it (down since t0 + 2 s)");
	/* A cluster node's change made by the other nodes' votes alone, with no probe result. */
	add_change(h, "tcp 192.0.2.7:25", 3, false, "majority: 2 of 3 nodes say down");
	is_int(db_health_sync(h), 0, "a change alone is written");
	is_int(db_health_state_get(h, "tcp 192.0.2.7:25", &up, &since), 0,
	       "a target with only a change has a state");
	ok(!up && since == t0_ms + 3000, "the change's (down since t0 + 3 s)");
	is_int(db_health_state_get(h, "tcp 192.0.2.9:1", &up, &since), -ENOENT,
	       "a target never stored: -ENOENT");
	is_int((long long)stats(h).queued, 0, "nothing waits");

	/* Another connection holds the write lock: the records wait, bounded. */
	db_t *locker = NULL;
	if (db_open(path, 0, &locker) < 0 || db_begin_write(locker) < 0)
		bail_out("cannot take the write lock");
	for (int i = 0; i < 20; i++)
		add_result(h, K2, 10 + i, true);
	add_change(h, K2, 11, false, "HTTP 503");
	add_change(h, K2, 13, true, "HTTP 200");
	add_change(h, K2, 15, false, "HTTP 503");
	db_health_stats_t st = stats(h);
	is_int((long long)st.results_dropped, 20 - RESULTS_MAX,
	       "past %d waiting results the oldest are dropped and counted", RESULTS_MAX);
	is_int((long long)st.changes_dropped, 0, "no state change is dropped for them");
	is_int((long long)st.queued, RESULTS_MAX + 3, "%d results and 3 changes wait", RESULTS_MAX);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	is_int(db_health_sync(h), -EBUSY, "the writer cannot write while the lock is held");
	clock_gettime(CLOCK_MONOTONIC, &b);
	double waited = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	ok(waited > 0.5 && waited < 3, "it waited for the lock, bounded (%.2f s)", waited);
	st = stats(h);
	ok(st.results_dropped == 20 - RESULTS_MAX && st.queued == RESULTS_MAX + 3,
	   "the failed batch is queued again: nothing more dropped, %d still wait",
	   RESULTS_MAX + 3);
	/* Two more: the two oldest waiting go. */
	add_result(h, K2, 30, false);
	add_result(h, K2, 31, true);
	is_int((long long)stats(h).results_dropped, 22 - RESULTS_MAX,
	       "two more results, two more "
	       "dropped");
	/* State changes have a bound of their own. */
	add_change(h, K2, 30, true, "HTTP 200");
	add_change(h, K2, 31, false, "HTTP 503");
	st = stats(h);
	is_int((long long)st.changes_dropped, 5 - CHANGES_MAX,
	       "past %d waiting changes the oldest change is dropped and counted", CHANGES_MAX);
	is_int((long long)st.queued, RESULTS_MAX + CHANGES_MAX, "%d results and %d changes wait",
	       RESULTS_MAX, CHANGES_MAX);

	/* The lock goes: what waited is written. */
	db_rollback(locker);
	db_close(locker);
	is_int(db_health_sync(h), 0, "written once the lock is released");
	is_int((long long)stats(h).queued, 0, "nothing waits");
	n = stored(true, K2, &ev);
	bool newest = n == RESULTS_MAX;
	for (size_t i = 0; newest && i < n; i++)
		newest = ev[i].time_ms == t0_ms + (31 - (int64_t)i) * 1000;
	ok(newest, "the %d newest results of the 22 are stored (%zu)", RESULTS_MAX, n);
	db_events_free(ev, n);
	n = stored(false, K2, &ev);
	ok(n == CHANGES_MAX && strcmp(ev[0].to_state, "down") == 0 &&
		   ev[0].time == (t0_ms + 31000) / 1000 &&
		   ev[CHANGES_MAX - 1].time == (t0_ms + 13000) / 1000,
	   "the %d newest state changes are stored, in order (%zu)", CHANGES_MAX, n);
	db_events_free(ev, n);

	/* The file is deleted: nothing is written until there is one again. */
	remove_files();
	add_result(h, K1, 40, true);
	is_int(db_health_sync(h), -ENOENT, "the file deleted: the batch waits");
	is_int(db_health_sync(h), -ENOENT, "and waits");
	is_int((long long)stats(h).queued, 1, "the result still waits");
	ok(db_health_state_get(h, K1, &up, &since) < 0, "no stored state without a file");
	db_close(open_migrated());
	is_int(db_health_sync(h), 0, "a new file at the path: the writer opens it and writes");
	n = stored(true, K1, &ev);
	ok(n == 1 && ev[0].time_ms == t0_ms + 40000,
	   "the result waiting is in the new file, under a new target row (%zu)", n);
	db_events_free(ev, n);
	is_int(db_health_state_get(h, K1, &up, &since), 0, "the reader reads the new file too");

	/*
	 * Writes fail (as on a full disk): with RLIMIT_FSIZE at 0 no write to
	 * a file succeeds, so the commit meets an I/O error.  The batch waits.
	 */
	struct rlimit rl, none;
	getrlimit(RLIMIT_FSIZE, &rl);
	none = rl;
	none.rlim_cur = 0;
	signal(SIGXFSZ, SIG_IGN);
	add_result(h, K1, 45, false);
	setrlimit(RLIMIT_FSIZE, &none);
	int ret = db_health_sync(h);
	setrlimit(RLIMIT_FSIZE, &rl);
	ok(ret == -EIO || ret == -ENOSPC, "a write that fails (no file can grow): -EIO (%d)", ret);
	is_int((long long)stats(h).queued, 1, "the result still waits");
	is_int(db_health_sync(h), 0, "written once writes succeed again");
	n = stored(true, K1, &ev);
	ok(n == 2 && ev[0].time_ms == t0_ms + 45000 && ev[0].ok == 0, "it is stored (%zu)", n);
	db_events_free(ev, n);

	/* Closing with a record it cannot write: counted as dropped. */
	if (db_open(path, 0, &locker) < 0 || db_begin_write(locker) < 0)
		bail_out("cannot take the write lock");
	add_change(h, K1, 50, false, "timeout after 200 ms");
	db_health_close(h);
	db_rollback(locker);
	db_close(locker);
	n = stored(false, K1, &ev);
	is_int((long long)n, 0, "closed while locked: the change was not written");
	db_events_free(ev, n);

	remove_files();
	rmdir(dir);
	return done_testing();
}
