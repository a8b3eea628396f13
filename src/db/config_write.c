/* SPDX-License-Identifier: MIT */
/* The configuration written: pools, members and checks added, changed and deleted; the journal. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "internal.h"

/* ---- writes ---- */

/* ret, or -ENOENT when the statement that ran cleanly changed no row. */
static int changed(db_t *db, int ret)
{
	return ret == 0 && sqlite3_changes(db->h) == 0 ? -ENOENT : ret;
}

/* Run sql (an INSERT or UPDATE of pool) with p's settings bound to ?1 ... ?6. */
static int pool_put(db_t *db, const char *sql, const db_pool_t *p, const char *what)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, db_policy_name(p->policy), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, p->ttl);
	if (p->degraded_ttl >= 0)
		sqlite3_bind_int64(st, 4, p->degraded_ttl);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int(st, 5, p->answers);
	sqlite3_bind_text(st, 6, p->fallback_all ? "all" : "none", -1, SQLITE_STATIC);
	return db__run(db, st, what);
}

int db_pool_insert(db_t *db, const db_pool_t *p)
{
	return pool_put(db,
			"INSERT INTO pool(name, policy, ttl, degraded_ttl, answers, fallback) "
			"VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
			p, "insert pool");
}

int db_pool_update(db_t *db, const db_pool_t *p)
{
	int ret = pool_put(
		db,
		"UPDATE pool SET policy = ?2, ttl = ?3, degraded_ttl = ?4, answers = ?5, "
		"fallback = ?6, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
		"WHERE name = ?1",
		p, "update pool");
	return changed(db, ret);
}

int db_pool_delete(db_t *db, const char *pool)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, "DELETE FROM pool WHERE name = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, pool, -1, SQLITE_TRANSIENT);
	return changed(db, db__run(db, st, "delete pool"));
}

static int lookup_id(db_t *db, const char *sql, const char *a, const char *b, int64_t *id)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = db__fail(db, rc, "look up id");
	}
	db__release(db, st);
	return ret;
}

static int pool_id(db_t *db, const char *pool, int64_t *id)
{
	return lookup_id(db, "SELECT id FROM pool WHERE name = ?1", pool, NULL, id);
}

static int member_id(db_t *db, const char *pool, const char *member, int64_t *id)
{
	return lookup_id(db,
			 "SELECT m.id FROM member m JOIN pool p ON p.id = m.pool_id "
			 "WHERE p.name = ?1 AND m.name = ?2",
			 pool, member, id);
}

/*
 * Run sql (an INSERT or UPDATE of member) with m's name and settings bound
 * to ?1 ... ?8, and id (its pool's, or its own) to ?9.
 */
static int member_put(db_t *db, const char *sql, int64_t id, const db_member_t *m, const char *what)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, m->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, m->weight);
	sqlite3_bind_int(st, 3, m->priority);
	if (m->has_location) {
		sqlite3_bind_double(st, 4, m->latitude);
		sqlite3_bind_double(st, 5, m->longitude);
	} else {
		sqlite3_bind_null(st, 4);
		sqlite3_bind_null(st, 5);
	}
	db__bind_text_or_null(st, 6, m->countries);
	db__bind_text_or_null(st, 7, m->continents);
	sqlite3_bind_text(st, 8, db_admin_name(m->admin), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, id);
	return db__run(db, st, what);
}

/* Replace the address, network and alias rows of member id with m's. */
static int member_lists_put(db_t *db, int64_t id, const db_member_t *m)
{
	static const struct {
		const char *sql, *what;
	} clear[] = {
		{ "DELETE FROM member_address WHERE member_id = ?1", "delete addresses" },
		{ "DELETE FROM member_network WHERE member_id = ?1", "delete networks" },
		{ "DELETE FROM member_alias WHERE member_id = ?1", "delete alias" },
	};
	sqlite3_stmt *st;
	int ret;

	for (size_t i = 0; i < ARRAY_SIZE(clear); i++) {
		ret = db__prepare(db, clear[i].sql, &st);
		if (ret)
			return ret;
		sqlite3_bind_int64(st, 1, id);
		if ((ret = db__run(db, st, clear[i].what)))
			return ret;
	}
	for (size_t i = 0; i < m->naddresses; i++) {
		ret = db__prepare(
			db,
			"INSERT OR IGNORE INTO member_address(member_id, address, family) "
			"VALUES(?1, ?2, ?3)",
			&st);
		if (ret)
			return ret;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, m->addresses[i], -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 3,
				 m->families ? m->families[i]
					     : (strchr(m->addresses[i], ':') ? 6 : 4));
		if ((ret = db__run(db, st, "insert address")))
			return ret;
	}
	for (size_t i = 0; i < m->nnetworks; i++) {
		ret = db__prepare(
			db,
			"INSERT OR IGNORE INTO member_network(member_id, prefix) VALUES(?1, ?2)",
			&st);
		if (ret)
			return ret;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, m->networks[i], -1, SQLITE_TRANSIENT);
		if ((ret = db__run(db, st, "insert network")))
			return ret;
	}
	if (!m->alias)
		return 0;
	ret = db__prepare(db, "INSERT INTO member_alias(member_id, name) VALUES(?1, ?2)", &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, m->alias, -1, SQLITE_TRANSIENT);
	return db__run(db, st, "insert alias");
}

int db_member_insert(db_t *db, const char *pool, const db_member_t *m)
{
	int64_t pid;
	int ret = pool_id(db, pool, &pid);
	if (ret)
		return ret;
	ret = member_put(
		db,
		"INSERT INTO member(name, weight, priority, latitude, longitude, countries, "
		"continents, admin, pool_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		pid, m, "insert member");
	if (ret)
		return ret;
	return member_lists_put(db, sqlite3_last_insert_rowid(db->h), m);
}

int db_member_update(db_t *db, const char *pool, const db_member_t *m)
{
	int64_t mid;
	int ret = member_id(db, pool, m->name, &mid);
	if (ret)
		return ret;
	ret = member_put(
		db,
		"UPDATE member SET weight = ?2, priority = ?3, latitude = ?4, longitude = ?5, "
		"countries = ?6, continents = ?7, admin = ?8 WHERE id = ?9 AND name = ?1",
		mid, m, "update member");
	if (ret)
		return ret;
	return member_lists_put(db, mid, m);
}

/* Prepare sql with the id of the pool's member bound to ?1; -ENOENT when there is none. */
static int member_stmt(db_t *db, const char *pool, const char *member, const char *sql,
		       sqlite3_stmt **st)
{
	int64_t mid;
	int ret = member_id(db, pool, member, &mid);
	if (ret)
		return ret;
	ret = db__prepare(db, sql, st);
	if (ret)
		return ret;
	sqlite3_bind_int64(*st, 1, mid);
	return 0;
}

int db_member_delete(db_t *db, const char *pool, const char *member)
{
	sqlite3_stmt *st;
	int ret = member_stmt(db, pool, member, "DELETE FROM member WHERE id = ?1", &st);
	if (ret)
		return ret;
	return db__run(db, st, "delete member");
}

int db_member_set_admin(db_t *db, const char *pool, const char *member, int admin)
{
	sqlite3_stmt *st;
	int ret = member_stmt(db, pool, member, "UPDATE member SET admin = ?2 WHERE id = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 2, db_admin_name(admin), -1, SQLITE_STATIC);
	return db__run(db, st, "set admin state");
}

/* Find the pool and optional member ids a check is attached to. */
static int check_owner(db_t *db, const char *pool, const char *member, int64_t *pid, int64_t *mid)
{
	int ret = pool_id(db, pool, pid);
	if (ret)
		return ret;
	*mid = -1;
	return member ? member_id(db, pool, member, mid) : 0;
}

int db_check_delete(db_t *db, const char *pool, const char *member)
{
	sqlite3_stmt *st;
	int64_t pid, mid;
	int ret = check_owner(db, pool, member, &pid, &mid);
	if (ret)
		return ret;
	ret = db__prepare(
		db,
		member ? "DELETE FROM health_check WHERE pool_id = ?1 AND member_id = ?2"
		       : "DELETE FROM health_check WHERE pool_id = ?1 AND member_id IS NULL",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, pid);
	if (member)
		sqlite3_bind_int64(st, 2, mid);
	return changed(db, db__run(db, st, "delete check"));
}

int db_check_put(db_t *db, const char *pool, const char *member, const db_check_t *c)
{
	sqlite3_stmt *st;
	int64_t pid, mid;
	int ret = check_owner(db, pool, member, &pid, &mid);
	if (ret)
		return ret;
	ret = db_check_delete(db, pool, member);
	if (ret && ret != -ENOENT)
		return ret;
	ret = db__prepare(
		db,
		"INSERT INTO health_check(pool_id, member_id, type, port, path, host, expect, "
		"match, interval_ms, timeout_ms, rise, fall, target, insecure, quorum) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, pid);
	if (member)
		sqlite3_bind_int64(st, 2, mid);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_text(st, 3, db_check_type_name(c->type), -1, SQLITE_STATIC);
	if (c->port)
		sqlite3_bind_int(st, 4, c->port);
	else
		sqlite3_bind_null(st, 4);
	db__bind_text_or_null(st, 5, c->path);
	db__bind_text_or_null(st, 6, c->host);
	db__bind_text_or_null(st, 7, c->expect);
	db__bind_text_or_null(st, 8, c->match);
	sqlite3_bind_int64(st, 9, c->interval_ms);
	sqlite3_bind_int64(st, 10, c->timeout_ms);
	sqlite3_bind_int(st, 11, c->rise);
	sqlite3_bind_int(st, 12, c->fall);
	db__bind_text_or_null(st, 13, c->target);
	sqlite3_bind_int(st, 14, c->insecure);
	/* Majority, the default, is stored as NULL: a check's row is what version 2 stored. */
	if (c->quorum != DB_QUORUM_MAJORITY)
		sqlite3_bind_text(st, 15, db_quorum_name(c->quorum), -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 15);
	return db__run(db, st, "insert check");
}

/* ---- the journal ---- */

int db_journal_add(db_t *db, const char *actor, const char *command, const char *summary)
{
	char now[32];
	struct tm tm;
	time_t t = time(NULL);
	sqlite3_stmt *st;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int ret = db__prepare(
		db, "INSERT INTO journal(time, actor, command, summary) VALUES(?1, ?2, ?3, ?4)",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, actor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, command, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, summary, -1, SQLITE_TRANSIENT);
	return db__run(db, st, "insert journal row");
}

/* The journal rows read so far. */
struct journal_rows {
	db_journal_entry_t *v;
	size_t n;
};

static void journal_row(sqlite3_stmt *st, void *arg)
{
	struct journal_rows *j = arg;

	j->v = gslb_realloc(j->v, (j->n + 1) * sizeof(*j->v));
	db_journal_entry_t *e = &j->v[j->n++];
	e->id = sqlite3_column_int64(st, 0);
	e->time = db__col_dup(st, 1);
	e->actor = db__col_dup(st, 2);
	e->command = db__col_dup(st, 3);
	e->summary = db__col_dup(st, 4);
	e->node = db__col_dup(st, 5);
}

int db_journal_list(db_t *db, unsigned limit, db_journal_entry_t **out, size_t *n)
{
	struct journal_rows j = { NULL, 0 };
	sqlite3_stmt *st;
	int ret;

	*out = NULL;
	*n = 0;
	ret = db__prepare(db,
			  "SELECT id, time, actor, command, summary, node FROM journal "
			  "ORDER BY id DESC LIMIT ?1",
			  &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	ret = db__rows(db, st, "read journal", journal_row, &j);
	if (ret) {
		db_journal_free(j.v, j.n);
		return ret;
	}
	*out = j.v;
	*n = j.n;
	return 0;
}

void db_journal_free(db_journal_entry_t *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].time);
		free(e[i].actor);
		free(e[i].command);
		free(e[i].summary);
		free(e[i].node);
	}
	free(e);
}
