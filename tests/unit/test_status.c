/* SPDX-License-Identifier: MIT */
/* The status page's timelines (src/cfg/status.c) from history written by the real health store. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_health.h"
#include "gslb/status.h"
#include "tap.h"

#define DAY 86400

static int64_t T; /* the window's end, Unix seconds */

static void is_str(const char *got, const char *want, const char *desc)
{
	if (!ok(strcmp(got, want) == 0, "%s", desc))
		diag("  got:  %s\n#   want: %s", got, want);
}

static void change(db_health_t *h, const char *key, int64_t ago, bool from_up, bool up,
		   const char *reason)
{
	db_health_change_t c = { .key = key,
				 .reason = reason,
				 .time_ms = (T - ago) * 1000,
				 .from_up = from_up,
				 .up = up };
	db_health_change_add(h, &c);
}

static void result(db_health_t *h, const char *key, int64_t ago, bool up, int64_t since_ago)
{
	db_health_result_t r = { .key = key,
				 .reason = up ? "connected" : "connect refused",
				 .time_ms = (T - ago) * 1000,
				 .latency_ms = 1.5,
				 .ok = up,
				 .up = up,
				 .since_ms = (T - since_ago) * 1000 };
	db_health_result_add(h, &r);
}

/*
 * The timeline of key as "STATE AGO-AGO, ..." (seconds before T, the window's end; "!" after a
 * stretch whose change had a reason), with " cut" when it was cut.
 */
static char *timeline(db_t *db, const char *key, unsigned max)
{
	static char buf[1024];
	cfg_status_addr_t a;
	memset(&a, 0, sizeof(a));
	a.shown = key;
	if (db_target_state_get(db, key, &a.st) != 0)
		return "db error";
	if (cfg_status_timeline_load(db, &a, T - DAY, T, max) != 0 || !a.timeline)
		return "load error";
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < a.timeline->nsegs; i++) {
		const cfg_status_segment_t *g = &a.timeline->segs[i];
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s %lld-%lld%s", i ? ", " : "",
				      g->state, (long long)(T - g->from), (long long)(T - g->to),
				      g->reason ? "!" : "");
	}
	if (a.timeline->cut)
		snprintf(buf + n, sizeof(buf) - n, " cut");
	db_target_state_clear(&a.st);
	for (size_t i = 0; i < a.timeline->nsegs; i++) {
		free(a.timeline->segs[i].state);
		free(a.timeline->segs[i].reason);
	}
	free(a.timeline->segs);
	free(a.timeline);
	return buf;
}

int main(void)
{
	char dir[] = "/tmp/gslb-status-XXXXXX", path[256];
	db_health_t *h = NULL;
	db_t *db = NULL;

	plan(11);
	T = (int64_t)time(NULL);
	if (!mkdtemp(dir))
		bail_out("mkdtemp");
	snprintf(path, sizeof(path), "%s/gslb.db", dir);
	if (db_open(path, DB_OPEN_CREATE, &db) || db_migrate(db, NULL))
		bail_out("create the database");
	db_close(db);
	db_health_conf_t conf = { .history_hours = 48 };
	if (db_health_open(path, &conf, &h))
		bail_out("open the health store");
	const char *keys[] = { "new", "old", "flap", "probed", "before", "many", "last", "never" };
	db_health_targets_set(h, keys, 8);
	/* First probed 1000 s ago, up since: unknown before. */
	result(h, "new", 1000, true, 1000);
	/* Up since long before the window: up all along. */
	result(h, "old", 100, true, 3 * DAY);
	/* Down and up in the window, nothing stored before: the state before the first change. */
	change(h, "flap", 5000, true, false, "connect refused");
	change(h, "flap", 3000, false, true, "connected");
	/* Probed from 8000 s ago, down 5000 s ago: unknown until that first probe. */
	result(h, "probed", 8000, true, 8000);
	change(h, "probed", 5000, true, false, "connect refused");
	/* A change before the window says what the window starts in. */
	change(h, "before", DAY + 5000, true, false, "HTTP 503");
	change(h, "before", 1000, false, true, "HTTP 200");
	/* Five changes, three drawn. */
	for (int i = 0; i < 5; i++)
		change(h, "many", 5000 - i * 1000, i % 2 == 0, i % 2 != 0, "flap");
	/* A change in the window's last second is drawn; one at its end is not yet. */
	change(h, "last", 1, true, false, "connect refused");
	change(h, "last", 0, false, true, "connected");
	db_health_close(h);

	if (db_open(path, DB_OPEN_READONLY, &db))
		bail_out("open the database read-only");
	is_str(timeline(db, "new", 100), "unknown 86400-1000, up 1000-0!",
	       "first probed in the window: unknown before, up since");
	is_str(timeline(db, "old", 100), "up 86400-0!", "up since before the window: up all along");
	is_str(timeline(db, "flap", 100), "up 86400-5000, down 5000-3000!, up 3000-0!",
	       "no probe stored: the state before the first change, from the window's start");
	is_str(timeline(db, "probed", 100), "unknown 86400-8000, up 8000-5000, down 5000-0!",
	       "unknown until the first probe result stored");
	is_str(timeline(db, "before", 100), "down 86400-1000!, up 1000-0!",
	       "a change before the window: its state, with its reason");
	is_str(timeline(db, "many", 3),
	       "unknown 86400-3000, down 3000-2000!, up 2000-1000!, down 1000-0! cut",
	       "more changes than drawn: unknown before the oldest drawn, and cut");
	is_str(timeline(db, "many", 4),
	       "unknown 86400-4000, up 4000-3000!, down 3000-2000!, up 2000-1000!, down 1000-0! "
	       "cut",
	       "one more drawn when asked for one more");
	is_str(timeline(db, "many", 5),
	       "up 86400-5000, down 5000-4000!, up 4000-3000!, down 3000-2000!, up 2000-1000!, "
	       "down 1000-0!",
	       "every change drawn when they are not more than asked for");
	is_str(timeline(db, "last", 100), "up 86400-1, down 1-0!",
	       "a change in the last second is drawn; one at the window's end not yet");
	is_str(timeline(db, "never", 100), "unknown 86400-0", "never probed: unknown");
	cfg_status_addr_t none;
	memset(&none, 0, sizeof(none));
	ok(cfg_status_timeline_load(db, &none, T - DAY, T, 10) == 0 && !none.timeline,
	   "an address without a check has no timeline");
	db_close(db);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
