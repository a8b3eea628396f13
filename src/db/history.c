/* SPDX-License-Identifier: MIT */
/* The stored health read back: a target's state, its state changes and probe results. */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "internal.h"

int db_target_state_get(db_t *db, const char *target_key, db_target_state_t *s)
{
	sqlite3_stmt *st;
	int rc, ret;

	memset(s, 0, sizeof(*s));
	s->latency_ms = -1;
	ret = db__prepare(
		db,
		"SELECT s.state, s.since, s.reason, s.last_probe, s.latency_ms, s.cert_not_after "
		"FROM target_state s JOIN target t ON t.id = s.target_id WHERE t.key = ?1",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, target_key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->state = db__col_dup(st, 0);
		s->since = sqlite3_column_int64(st, 1);
		s->reason = db__col_dup(st, 2);
		s->last_probe = sqlite3_column_int64(st, 3);
		if (sqlite3_column_type(st, 4) != SQLITE_NULL)
			s->latency_ms = sqlite3_column_double(st, 4);
		s->cert_not_after = sqlite3_column_int64(st, 5);
	} else if (rc != SQLITE_DONE) {
		ret = db__fail(db, rc, "read target state");
	}
	db__release(db, st);
	return ret;
}

int db_target_first_probe(db_t *db, const char *target_key, int64_t from_ms, int64_t *t_ms)
{
	sqlite3_stmt *st;
	int rc, ret;

	*t_ms = 0;
	/* One seek into the target's (target_id, time_ms) range of the primary key. */
	ret = db__prepare(db,
			  "SELECT min(time_ms) FROM probe_result WHERE target_id = "
			  "(SELECT id FROM target WHERE key = ?1) AND time_ms >= ?2",
			  &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, target_key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, from_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*t_ms = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		ret = db__fail(db, rc, "read the first probe");
	db__release(db, st);
	return ret;
}

void db_target_state_clear(db_target_state_t *s)
{
	free(s->state);
	free(s->reason);
	memset(s, 0, sizeof(*s));
}

/* Free what n events own, not the array. */
static void events_clear(db_event_t *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].target_key);
		free(e[i].from_state);
		free(e[i].to_state);
		free(e[i].reason);
	}
}

/*
 * Newest first; rows of the same millisecond by id, newest first (probes
 * have none), then by key, so the order does not depend on qsort's.
 */
static int event_cmp(const void *a, const void *b)
{
	const db_event_t *x = a, *y = b;
	if (x->time_ms != y->time_ms)
		return x->time_ms < y->time_ms ? 1 : -1;
	if (x->id != y->id)
		return x->id < y->id ? 1 : -1;
	return strcmp(x->target_key, y->target_key);
}

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Append the newest limit rows (-1: all) of one target key to *v. */
static int events_of_key(db_t *db, sqlite3_stmt *st, bool probes, const char *key,
			 sqlite3_int64 limit, db_event_t **v, size_t *cnt)
{
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*v = gslb_realloc(*v, (*cnt + 1) * sizeof(**v));
		db_event_t *e = &(*v)[(*cnt)++];
		memset(e, 0, sizeof(*e));
		e->target_key = gslb_strdup(key);
		e->latency_ms = -1;
		if (probes) {
			e->time_ms = sqlite3_column_int64(st, 0);
			e->time = e->time_ms / 1000;
			e->ok = sqlite3_column_int(st, 1);
			if (sqlite3_column_type(st, 2) != SQLITE_NULL)
				e->latency_ms = (double)sqlite3_column_int64(st, 2) / 1000.0;
			e->reason = db__col_dup(st, 3);
		} else {
			e->time = sqlite3_column_int64(st, 0);
			e->time_ms = e->time * 1000;
			e->id = sqlite3_column_int64(st, 1);
			e->from_state = db__col_dup(st, 2);
			e->to_state = db__col_dup(st, 3);
			e->reason = db__col_dup(st, 4);
			e->ok = -1;
		}
	}
	return rc == SQLITE_DONE ? 0 : db__fail(db, rc, "read history");
}

int db_events_list(db_t *db, bool probes, const char *const *keys, size_t nkeys, unsigned limit,
		   db_event_t **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	db_event_t *v = NULL;
	const char **sorted = NULL;
	size_t cnt = 0;
	int ret;

	*out = NULL;
	*n = 0;
	if (nkeys == 0)
		return 0;
	/*
	 * One query per target reads only its newest rows off the end of its
	 * (target_id, time) range; a single query over all of them would sort
	 * every stored row of the pool to find the newest few.
	 */
	ret = db__prepare(
		db,
		probes ? "SELECT p.time_ms, p.ok, p.latency_us, r.text FROM probe_result p "
			 "LEFT JOIN reason r ON r.id = p.reason_id "
			 "WHERE p.target_id = (SELECT id FROM target WHERE key = ?1) "
			 "ORDER BY p.time_ms DESC LIMIT ?2"
		       : "SELECT time, id, from_state, to_state, reason FROM state_change "
			 "WHERE target_id = (SELECT id FROM target WHERE key = ?1) "
			 "ORDER BY time DESC, id DESC LIMIT ?2",
		&st);
	if (ret)
		return ret;
	/* A key shared by several addresses is read once. */
	sorted = gslb_calloc(nkeys, sizeof(*sorted));
	memcpy(sorted, keys, nkeys * sizeof(*sorted));
	gslb_sort(sorted, nkeys, sizeof(*sorted), str_ptr_cmp);
	for (size_t i = 0; i < nkeys; i++) {
		if (i && strcmp(sorted[i], sorted[i - 1]) == 0)
			continue;
		ret = events_of_key(db, st, probes, sorted[i], limit ? (sqlite3_int64)limit : -1,
				    &v, &cnt);
		if (ret)
			goto out;
	}
	gslb_sort(v, cnt, sizeof(*v), event_cmp);
	if (limit && cnt > limit) {
		events_clear(v + limit, cnt - limit);
		cnt = limit;
	}
out:
	db__release(db, st);
	free(sorted);
	if (ret) {
		db_events_free(v, cnt);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

void db_events_free(db_event_t *e, size_t n)
{
	events_clear(e, n);
	free(e);
}
