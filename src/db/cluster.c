/* SPDX-License-Identifier: MIT */
/* The database of a cluster node: settings, the mirror of etcd's pools and journal, nodes, votes. */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_cluster.h"
#include "gslb/db_dnssec.h"
#include "gslb/health.h"
#include "gslb/lb.h"
#include "internal.h"

/*
 * Who calls what (README "Two or more nameservers"): gslbd records the settings at start and
 * its cluster thread, on a connection of its own, mirrors etcd into the other tables; gslbctl
 * reads them all, and puts the pools it read back from etcd after a lost compare.  Every
 * statement comes from the connection's cache (db__prepare()): a full sync runs a few of them
 * 100,000 times over.
 */

/* Prepare sql with the texts a and b, those non-NULL, bound to ?1 and ?2; run it, release it. */
static int run_text(db_t *db, const char *sql, const char *a, const char *b, const char *what)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
	if (ret)
		return ret;
	if (a)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
	return db__run(db, st, what);
}

/* Does the caller hold a transaction (so a function of several statements needs none of its own)? */
static bool txn_held(db_t *db)
{
	return db->in_txn || !sqlite3_get_autocommit(db->h);
}

/* ---- settings ---- */

/* The settings held as text, by their names in cluster_setting; the lease is stored apart. */
#define SETTING(f)                                     \
	{                                              \
#f, offsetof(db_cluster_settings_t, f) \
	}
static const struct {
	const char *name;
	size_t off;
} settings[] = {
	SETTING(urls),	    SETTING(prefix),   SETTING(node), SETTING(ca_file),
	SETTING(cert_file), SETTING(key_file), SETTING(user), SETTING(password_file),
};

static char *const *setting_get(const db_cluster_settings_t *s, size_t i)
{
	return (char *const *)((const char *)s + settings[i].off);
}

static int settings_write(db_t *db, const db_cluster_settings_t *s)
{
	static const char *const insert = "INSERT INTO cluster_setting(name, value) VALUES(?1, ?2)";
	char lease[16];
	int ret = run_text(db, "DELETE FROM cluster_setting", NULL, NULL,
			   "remove cluster settings");

	if (ret || !s->urls)
		return ret;
	for (size_t i = 0; !ret && i < ARRAY_SIZE(settings); i++) {
		const char *v = *setting_get(s, i);
		if (v)
			ret = run_text(db, insert, settings[i].name, v, "record cluster setting");
	}
	snprintf(lease, sizeof(lease), "%" PRIu32, s->lease_s);
	return ret ? ret : run_text(db, insert, "lease", lease, "record cluster setting");
}

int db_cluster_settings_put(db_t *db, const db_cluster_settings_t *s)
{
	bool own = !txn_held(db);
	int ret = own ? db_begin_write(db) : 0;

	if (ret)
		return ret;
	ret = settings_write(db, s);
	if (!own)
		return ret;
	if (ret) {
		db_rollback(db);
		return ret;
	}
	return db_commit(db);
}

static void setting_row(sqlite3_stmt *st, void *arg)
{
	db_cluster_settings_t *s = arg;
	const char *name = (const char *)sqlite3_column_text(st, 0);

	if (!name)
		return;
	if (strcmp(name, "lease") == 0) {
		const char *v = (const char *)sqlite3_column_text(st, 1);
		s->lease_s = v ? (uint32_t)strtoul(v, NULL, 10) : 0;
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
		char **f = (char **)setting_get(s, i);
		if (strcmp(name, settings[i].name) == 0 && !*f)
			*f = db__col_dup(st, 1);
	}
}

int db_cluster_settings_get(db_t *db, db_cluster_settings_t *s)
{
	sqlite3_stmt *st;

	memset(s, 0, sizeof(*s));
	int ret = db__prepare(db, "SELECT name, value FROM cluster_setting", &st);
	if (!ret)
		ret = db__rows(db, st, "read cluster settings", setting_row, s);
	if (!ret && !s->urls)
		ret = -ENOENT;
	if (ret)
		db_cluster_settings_clear(s);
	return ret;
}

void db_cluster_settings_clear(db_cluster_settings_t *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		free(*setting_get(s, i));
	memset(s, 0, sizeof(*s));
}

/* ---- the mirror's position ---- */

int db_cluster_state_get(db_t *db, db_cluster_state_t *out)
{
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	int ret = db__prepare(db,
			      "SELECT cluster_id, applied_rev, connected, changed FROM "
			      "cluster_state WHERE id = 1",
			      &st);
	if (ret)
		return ret;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* etcd's cluster id is a uint64: stored as the int64 of the same bits. */
		out->cluster_id = (uint64_t)sqlite3_column_int64(st, 0);
		out->applied_rev = sqlite3_column_int64(st, 1);
		out->connected = sqlite3_column_int(st, 2) != 0;
		out->changed = sqlite3_column_int64(st, 3);
	} else if (rc != SQLITE_DONE) {
		ret = db__fail(db, rc, "read cluster state");
	}
	db__release(db, st);
	return ret;
}

int db_cluster_state_put(db_t *db, const db_cluster_state_t *in)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db,
			      "INSERT OR REPLACE INTO cluster_state(id, cluster_id, applied_rev, "
			      "connected, changed) VALUES(1, ?1, ?2, ?3, ?4)",
			      &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)in->cluster_id);
	sqlite3_bind_int64(st, 2, in->applied_rev);
	sqlite3_bind_int(st, 3, in->connected);
	sqlite3_bind_int64(st, 4, in->changed);
	return db__run(db, st, "record cluster state");
}

/* ---- mirroring pools ---- */

/* The mod_revision stored for key, a deleted key's included; 0 when none. */
static int key_get(db_t *db, const char *key, int64_t *rev, bool *deleted)
{
	sqlite3_stmt *st;

	*rev = 0;
	*deleted = false;
	int ret = db__prepare(db, "SELECT mod_revision, deleted FROM cluster_key WHERE key = ?1",
			      &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*rev = sqlite3_column_int64(st, 0);
		*deleted = sqlite3_column_int(st, 1) != 0;
	} else if (rc != SQLITE_DONE) {
		ret = db__fail(db, rc, "read cluster key");
	}
	db__release(db, st);
	return ret;
}

static int key_set(db_t *db, const char *key, int64_t rev, bool deleted)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db,
			      "INSERT OR REPLACE INTO cluster_key(key, mod_revision, deleted) "
			      "VALUES(?1, ?2, ?3)",
			      &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, rev);
	sqlite3_bind_int(st, 3, deleted);
	return db__run(db, st, "record cluster key");
}

int db_cluster_key_rev(db_t *db, const char *key, int64_t *mod_rev)
{
	bool deleted;
	int ret = key_get(db, key, mod_rev, &deleted);
	/* A deleted key is absent from etcd: a write conditional on it compares create_revision 0. */
	if (!ret && deleted)
		*mod_rev = 0;
	return ret;
}

/* ---- what the schema would refuse ---- */

static bool check_valid(const db_check_t *c)
{
	return !c ||
	       (c->type <= DB_CHECK_HTTPS && c->interval_ms >= HEALTH_INTERVAL_MS_MIN &&
		c->interval_ms <= HEALTH_INTERVAL_MS_MAX && c->timeout_ms > 0 &&
		c->timeout_ms < c->interval_ms && c->rise >= 1 && c->rise <= HEALTH_RISE_MAX &&
		c->fall >= 1 && c->fall <= HEALTH_FALL_MAX && c->quorum <= DB_QUORUM_LOCAL);
}

static bool member_valid(const db_member_t *m)
{
	if (!m->name || m->priority < 1 || m->admin > DB_ADMIN_DRAIN || !check_valid(m->check) ||
	    (m->alias && !*m->alias))
		return false;
	/* Written as !(in range), so NaN is out of it. */
	if (m->has_location && (!(m->latitude >= -90 && m->latitude <= 90) ||
				!(m->longitude >= -180 && m->longitude <= 180)))
		return false;
	for (size_t i = 0; i < m->naddresses; i++)
		if (!m->addresses[i] || (m->families && m->families[i] != 4 && m->families[i] != 6))
			return false;
	for (size_t i = 0; i < m->nnetworks; i++)
		if (!m->networks[i])
			return false;
	return true;
}

/*
 * Would the schema's constraints (src/db/schema.sql) take p?  Checked before anything is
 * written, so that a pool from etcd they refuse fails whole, and its caller may skip it and go
 * on with the rest of its transaction (a watch message, a full sync).  A savepoint around each
 * put would do the same for any failure, but costs a third of a full sync's time: SQLite copies
 * every page the put changes to a temporary file first.
 */
static bool pool_valid(const db_pool_t *p)
{
	if (!p->name || p->policy > DB_POLICY_GEO || p->ttl > LB_TTL_MAX ||
	    (p->degraded_ttl >= 0 && (p->degraded_ttl < 1 || p->degraded_ttl > LB_TTL_MAX)) ||
	    p->answers < 1 || p->answers > LB_ANSWERS_MAX || !check_valid(p->check))
		return false;
	for (size_t i = 0; i < p->nmembers; i++) {
		if (!member_valid(&p->members[i]))
			return false;
		for (size_t k = 0; k < i; k++)
			if (strcmp(p->members[k].name, p->members[i].name) == 0)
				return false;
	}
	return true;
}

/* ---- is the stored pool p already? ---- */

/* What pool_same() compares as SQLite hands it the rows of one pool. */
struct same {
	const db_pool_t *p;
	int64_t *ids;	   /* of p's members, by their index in p (0: no row seen) */
	size_t *naddr;	   /* rows seen of each member's addresses */
	size_t *nnet;	   /* ... networks */
	size_t nmembers;   /* member rows seen */
	size_t nchecks;	   /* check rows seen */
	size_t naliases;   /* alias rows seen (one a member at most) */
	bool pool_checked; /* the pool's own check row seen */
	bool differ;
};

static bool col_text_is(sqlite3_stmt *st, int i, const char *s)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	return v && s ? strcmp(v, s) == 0 : !v && !s;
}

static bool col_int_is(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_column_type(st, i) == SQLITE_INTEGER && sqlite3_column_int64(st, i) == v;
}

static bool col_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL;
}

/* The index in s->p of the member with id, or -1. */
static int member_index(const struct same *s, int64_t id)
{
	for (size_t k = 0; k < s->p->nmembers; k++)
		if (s->ids[k] == id)
			return (int)k;
	return -1;
}

/* Is the health_check row (columns from c0: type ... quorum) check c, as db_check_put() stores it? */
static bool check_is(sqlite3_stmt *st, int c0, const db_check_t *c)
{
	return c && col_text_is(st, c0, db_check_type_name(c->type)) &&
	       (c->port ? col_int_is(st, c0 + 1, c->port) : col_null(st, c0 + 1)) &&
	       col_text_is(st, c0 + 2, c->path) && col_text_is(st, c0 + 3, c->host) &&
	       col_text_is(st, c0 + 4, c->expect) && col_text_is(st, c0 + 5, c->match) &&
	       col_int_is(st, c0 + 6, c->interval_ms) && col_int_is(st, c0 + 7, c->timeout_ms) &&
	       col_int_is(st, c0 + 8, c->rise) && col_int_is(st, c0 + 9, c->fall) &&
	       col_text_is(st, c0 + 10, c->target) && col_int_is(st, c0 + 11, c->insecure) &&
	       col_text_is(st, c0 + 12,
			   c->quorum == DB_QUORUM_MAJORITY ? NULL : db_quorum_name(c->quorum));
}

static void same_member_row(sqlite3_stmt *st, void *arg)
{
	struct same *s = arg;
	const char *name = (const char *)sqlite3_column_text(st, 1);
	const db_member_t *m = NULL;
	size_t k;

	for (k = 0; name && k < s->p->nmembers; k++)
		if (s->p->members[k].name && strcmp(s->p->members[k].name, name) == 0) {
			m = &s->p->members[k];
			break;
		}
	s->nmembers++;
	if (!m || s->ids[k]) {
		s->differ = true;
		return;
	}
	s->ids[k] = sqlite3_column_int64(st, 0);
	bool located = !col_null(st, 4) && !col_null(st, 5);
	if (!col_int_is(st, 2, m->weight) || !col_int_is(st, 3, m->priority) ||
	    located != m->has_location ||
	    (located && (sqlite3_column_double(st, 4) != m->latitude ||
			 sqlite3_column_double(st, 5) != m->longitude)) ||
	    !col_text_is(st, 6, m->countries) || !col_text_is(st, 7, m->continents) ||
	    !col_text_is(st, 8, db_admin_name(m->admin)))
		s->differ = true;
}

static void same_address_row(sqlite3_stmt *st, void *arg)
{
	struct same *s = arg;
	int k = member_index(s, sqlite3_column_int64(st, 0));
	const db_member_t *m = k < 0 ? NULL : &s->p->members[k];
	size_t i;

	for (i = 0; m && i < m->naddresses; i++)
		if (col_text_is(st, 1, m->addresses[i]))
			break;
	if (!m || i == m->naddresses) {
		s->differ = true;
		return;
	}
	/* The family as member_lists_put() stores it: given, or read from the address. */
	int family = m->families ? m->families[i] : (strchr(m->addresses[i], ':') ? 6 : 4);
	s->differ |= !col_int_is(st, 2, family);
	s->naddr[k]++;
}

static void same_network_row(sqlite3_stmt *st, void *arg)
{
	struct same *s = arg;
	int k = member_index(s, sqlite3_column_int64(st, 0));
	const db_member_t *m = k < 0 ? NULL : &s->p->members[k];
	size_t i;

	for (i = 0; m && i < m->nnetworks; i++)
		if (col_text_is(st, 1, m->networks[i]))
			break;
	if (!m || i == m->nnetworks) {
		s->differ = true;
		return;
	}
	s->nnet[k]++;
}

static void same_alias_row(sqlite3_stmt *st, void *arg)
{
	struct same *s = arg;
	int k = member_index(s, sqlite3_column_int64(st, 0));

	s->naliases++;
	s->differ |= k < 0 || !s->p->members[k].alias ||
		     !col_text_is(st, 1, s->p->members[k].alias);
}

static void same_check_row(sqlite3_stmt *st, void *arg)
{
	struct same *s = arg;
	const db_check_t *c;

	s->nchecks++;
	if (col_null(st, 0)) {
		c = s->pool_checked ? NULL : s->p->check;
		s->pool_checked = true;
	} else {
		int k = member_index(s, sqlite3_column_int64(st, 0));
		c = k < 0 ? NULL : s->p->members[k].check;
	}
	s->differ |= !check_is(st, 1, c);
}

/* Run sql with id bound to ?1, handing each row to row(s) while nothing differs yet. */
static int same_rows(db_t *db, const char *sql, int64_t id, db__row_cb row, struct same *s)
{
	sqlite3_stmt *st;

	if (s->differ)
		return 0;
	int ret = db__prepare(db, sql, &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	return db__rows(db, st, sql, row, s);
}

/* The pool's row: its id, and whether its settings are p's. */
static int same_pool_row(db_t *db, const db_pool_t *p, int64_t *id, bool *same)
{
	sqlite3_stmt *st;

	*id = 0;
	*same = false;
	int ret = db__prepare(db,
			      "SELECT id, policy, ttl, degraded_ttl, answers, fallback FROM pool "
			      "WHERE name = ?1",
			      &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*same = col_text_is(st, 1, db_policy_name(p->policy)) &&
			col_int_is(st, 2, p->ttl) &&
			(p->degraded_ttl >= 0 ? col_int_is(st, 3, p->degraded_ttl)
					      : col_null(st, 3)) &&
			col_int_is(st, 4, p->answers) &&
			col_text_is(st, 5, p->fallback_all ? "all" : "none");
	} else if (rc != SQLITE_DONE) {
		ret = db__fail(db, rc, "read pool");
	}
	db__release(db, st);
	return ret;
}

/*
 * Is the pool stored under p's name p already, row for row as pool_write() would write it?
 * A full sync puts every pool again (the first after gslbctl cluster import, or after etcd's
 * cluster changed), and most are as stored: those cost a few reads instead of a delete and a
 * write of every row, and leave the configuration generation alone (gslbd rebuilds nothing).
 */
static int pool_same(db_t *db, const db_pool_t *p, bool *same)
{
	size_t n = p->nmembers;
	struct same s = { .p = p };
	int64_t id;

	int ret = same_pool_row(db, p, &id, same);
	if (ret || !*same)
		return ret;
	s.ids = gslb_calloc(n + 1, sizeof(*s.ids));
	s.naddr = gslb_calloc(n + 1, sizeof(*s.naddr));
	s.nnet = gslb_calloc(n + 1, sizeof(*s.nnet));
	ret = same_rows(db,
			"SELECT id, name, weight, priority, latitude, longitude, countries, "
			"continents, admin FROM member WHERE pool_id = ?1",
			id, same_member_row, &s);
	s.differ |= s.nmembers != n;
	if (!ret)
		ret = same_rows(db,
				"SELECT a.member_id, a.address, a.family FROM member_address a "
				"JOIN member m ON m.id = a.member_id WHERE m.pool_id = ?1",
				id, same_address_row, &s);
	if (!ret)
		ret = same_rows(db,
				"SELECT n.member_id, n.prefix FROM member_network n "
				"JOIN member m ON m.id = n.member_id WHERE m.pool_id = ?1",
				id, same_network_row, &s);
	if (!ret)
		ret = same_rows(db,
				"SELECT a.member_id, a.name FROM member_alias a "
				"JOIN member m ON m.id = a.member_id WHERE m.pool_id = ?1",
				id, same_alias_row, &s);
	if (!ret)
		ret = same_rows(
			db,
			"SELECT member_id, type, port, path, host, expect, match, interval_ms, "
			"timeout_ms, rise, fall, target, insecure, quorum FROM health_check "
			"WHERE pool_id = ?1",
			id, same_check_row, &s);
	size_t nchecks = p->check ? 1 : 0, naliases = 0;
	for (size_t k = 0; k < n; k++) {
		const db_member_t *m = &p->members[k];
		nchecks += m->check != NULL;
		naliases += m->alias != NULL;
		s.differ |= s.naddr[k] != m->naddresses || s.nnet[k] != m->nnetworks;
	}
	/* Each alias row matched its member's: as many rows as aliases is the same aliases. */
	s.differ |= s.nchecks != nchecks || s.naliases != naliases;
	*same = !s.differ;
	free(s.ids);
	free(s.naddr);
	free(s.nnet);
	return ret;
}

/* ---- writing pools ---- */

/* Write pool p anew (what was of that name is gone): settings, members with their lists, checks. */
static int pool_write(db_t *db, const db_pool_t *p)
{
	int ret = db_pool_insert(db, p);

	for (size_t i = 0; !ret && i < p->nmembers; i++) {
		const db_member_t *m = &p->members[i];
		ret = db_member_insert(db, p->name, m);
		if (!ret && m->check)
			ret = db_check_put(db, p->name, m->name, m->check);
	}
	if (!ret && p->check)
		ret = db_check_put(db, p->name, NULL, p->check);
	return ret;
}

int db_cluster_pool_put(db_t *db, const char *key, int64_t mod_rev, const db_pool_t *p)
{
	int64_t rev;
	bool deleted;
	int ret = key_get(db, key, &rev, &deleted);

	if (ret)
		return ret;
	if (rev >= mod_rev)
		return 1;
	/* Named by its key: db_cluster_pools_retain() keeps pools by their keys' names. */
	const char *slash = strrchr(key, '/');
	if (!pool_valid(p) || !slash || strcmp(slash + 1, p->name) != 0) {
		snprintf(db->err, sizeof(db->err), "database %s: %s: not a valid pool", db->path,
			 key);
		log_err("%s", db->err);
		return GSLB_ECONFIG;
	}
	bool same;
	ret = pool_same(db, p, &same);
	if (ret)
		return ret;
	if (same)
		return key_set(db, key, mod_rev, false);
	/* Replaced whole: what the new pool leaves out (a member, a check) must not stay behind. */
	ret = db_pool_delete(db, p->name);
	if (!ret || ret == -ENOENT)
		ret = pool_write(db, p);
	return ret ? ret : key_set(db, key, mod_rev, false);
}

int db_cluster_pool_delete(db_t *db, const char *key, const char *pool, int64_t mod_rev)
{
	int64_t rev;
	bool deleted;
	int ret = key_get(db, key, &rev, &deleted);

	if (ret)
		return ret;
	if (rev >= mod_rev)
		return 1;
	ret = db_pool_delete(db, pool);
	/* The delete is remembered even when the pool never was here: an older put must not come. */
	return ret && ret != -ENOENT ? ret : key_set(db, key, mod_rev, true);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is s in the sorted v? */
static bool sorted_has(const char *const *v, size_t n, const char *s)
{
	return n && bsearch(&s, v, n, sizeof(*v), str_cmp);
}

/* The strings of a query's first column, or the keys of cluster_key that retain() drops. */
struct names {
	char **v;
	size_t n, cap;
	const char *const *keep; /* sorted: rows naming one of these are not collected */
	size_t nkeep;
};

static void names_push(struct names *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = gslb_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Collect column 0 unless it is kept and column 1 (when there is one) is 0. */
static void drop_row(sqlite3_stmt *st, void *arg)
{
	struct names *l = arg;
	const char *s = (const char *)sqlite3_column_text(st, 0);
	bool gone = sqlite3_column_count(st) > 1 && sqlite3_column_int(st, 1) != 0;

	if (s && (gone || !sorted_has(l->keep, l->nkeep, s)))
		names_push(l, gslb_strdup(s));
}

/* Collect the rows of sql that drop_row() picks, against keep (sorted). */
static int collect(db_t *db, const char *sql, const char *const *keep, size_t nkeep,
		   struct names *out)
{
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	out->keep = keep;
	out->nkeep = nkeep;
	int ret = db__prepare(db, sql, &st);
	return ret ? ret : db__rows(db, st, sql, drop_row, out);
}

/*
 * The pools are named by their keys (P "pools/" NAME: a pool name has no "/"), so the pools
 * to keep are the keys' last components; any other pool goes, a standalone node's own
 * included.  The rows to delete are collected first and deleted after, not while SQLite
 * steps through the same table.
 */
int db_cluster_pools_retain(db_t *db, const char *const *keys, size_t n)
{
	const char **kv = gslb_calloc(n ? n : 1, sizeof(*kv));
	const char **names = gslb_calloc(n ? n : 1, sizeof(*names));
	struct names pools = { 0 }, gone = { 0 };
	int ret;

	for (size_t i = 0; i < n; i++) {
		const char *slash = strrchr(keys[i], '/');
		kv[i] = keys[i];
		names[i] = slash ? slash + 1 : keys[i];
	}
	gslb_sort(kv, n, sizeof(*kv), str_cmp);
	gslb_sort(names, n, sizeof(*names), str_cmp);

	ret = collect(db, "SELECT name FROM pool", names, n, &pools);
	for (size_t i = 0; !ret && i < pools.n; i++) {
		ret = db_pool_delete(db, pools.v[i]);
		if (ret == -ENOENT)
			ret = 0;
	}
	if (!ret)
		ret = collect(db, "SELECT key, deleted FROM cluster_key", kv, n, &gone);
	for (size_t i = 0; !ret && i < gone.n; i++)
		ret = run_text(db, "DELETE FROM cluster_key WHERE key = ?1", gone.v[i], NULL,
			       "forget cluster key");
	names_free(&pools);
	names_free(&gone);
	free(kv);
	free(names);
	return ret;
}

int db_cluster_keys_forget(db_t *db)
{
	return run_text(db, "DELETE FROM cluster_key", NULL, NULL, "forget cluster keys");
}

/* ---- mirroring DNSSEC keys ---- */

/* Are two keys the same but for their row ids? */
static bool dnssec_same(const db_dnssec_key_t *a, const db_dnssec_key_t *b)
{
	return a->algorithm == b->algorithm && a->key_tag == b->key_tag && a->flags == b->flags &&
	       a->public_key_len == b->public_key_len &&
	       memcmp(a->public_key, b->public_key, a->public_key_len) == 0 &&
	       a->private_key_len == b->private_key_len &&
	       memcmp(a->private_key, b->private_key, a->private_key_len) == 0 &&
	       a->created == b->created && a->publish == b->publish && a->active == b->active &&
	       a->retire == b->retire && a->remove == b->remove;
}

/*
 * Would the table take the n keys of v: each of algorithm 13 or 15, no public key twice?  So
 * that a refused value is refused before anything of it is written.
 */
static bool dnssec_valid(const db_dnssec_key_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((v[i].algorithm != DB_DNSSEC_ECDSAP256SHA256 &&
		     v[i].algorithm != DB_DNSSEC_ED25519) ||
		    !v[i].public_key_len || !v[i].private_key_len)
			return false;
		for (size_t j = 0; j < i; j++)
			if (v[j].public_key_len == v[i].public_key_len &&
			    memcmp(v[j].public_key, v[i].public_key, v[i].public_key_len) == 0)
				return false;
	}
	return true;
}

/* Does zone hold exactly the n keys of v (any order)? */
static int dnssec_zone_same(db_t *db, const char *zone, const db_dnssec_key_t *v, size_t n,
			    bool *same)
{
	db_dnssec_key_t *cur;
	size_t ncur;
	int ret = db_dnssec_keys_load(db, zone, &cur, &ncur);

	if (ret)
		return ret;
	*same = ncur == n;
	for (size_t i = 0; *same && i < n; i++) {
		bool found = false;
		for (size_t j = 0; !found && j < ncur; j++)
			found = dnssec_same(&v[i], &cur[j]);
		*same = found;
	}
	db_dnssec_keys_free(cur, ncur);
	return 0;
}

int db_cluster_dnssec_put(db_t *db, const char *key, int64_t mod_rev, const char *zone,
			  const db_dnssec_key_t *v, size_t n)
{
	int64_t rev;
	bool deleted, same;
	int ret = key_get(db, key, &rev, &deleted);

	if (ret)
		return ret;
	if (rev >= mod_rev)
		return 1;
	const char *slash = strrchr(key, '/');
	if (!slash || strcmp(slash + 1, zone) != 0 || !dnssec_valid(v, n)) {
		snprintf(db->err, sizeof(db->err), "database %s: %s: not valid keys of %s",
			 db->path, key, zone);
		log_err("%s", db->err);
		return GSLB_ECONFIG;
	}
	if ((ret = dnssec_zone_same(db, zone, v, n, &same)))
		return ret;
	/* Unchanged keys are not written: every write moves the generation, and gslbd reloads. */
	if (same)
		return key_set(db, key, mod_rev, false);
	ret = db_dnssec_keys_delete(db, zone);
	if (ret == -ENOENT)
		ret = 0;
	for (size_t i = 0; !ret && i < n; i++) {
		db_dnssec_key_t k = v[i];
		k.zone = (char *)zone;
		ret = db_dnssec_key_insert(db, &k, NULL);
	}
	return ret ? ret : key_set(db, key, mod_rev, false);
}

int db_cluster_dnssec_delete(db_t *db, const char *key, const char *zone, int64_t mod_rev)
{
	int64_t rev;
	bool deleted;
	int ret = key_get(db, key, &rev, &deleted);

	if (ret)
		return ret;
	if (rev >= mod_rev)
		return 1;
	ret = db_dnssec_keys_delete(db, zone);
	return ret && ret != -ENOENT ? ret : key_set(db, key, mod_rev, true);
}

int db_cluster_dnssec_retain(db_t *db, const char *const *zones, size_t n)
{
	const char **kv = gslb_calloc(n ? n : 1, sizeof(*kv));
	struct names gone = { 0 };
	int ret;

	memcpy(kv, zones, n * sizeof(*kv));
	gslb_sort(kv, n, sizeof(*kv), str_cmp);
	ret = collect(db, "SELECT DISTINCT zone FROM dnssec_key", kv, n, &gone);
	for (size_t i = 0; !ret && i < gone.n; i++) {
		ret = db_dnssec_keys_delete(db, gone.v[i]);
		if (ret == -ENOENT)
			ret = 0;
	}
	names_free(&gone);
	free(kv);
	return ret;
}

/* ---- mirroring the journal ---- */

int db_cluster_journal_put(db_t *db, const char *key, const db_journal_entry_t *e)
{
	sqlite3_stmt *st;

	if (!e)
		return -EINVAL;
	int ret = db__prepare(
		db,
		"INSERT INTO journal(time, actor, command, summary, node, cluster_key) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(cluster_key) DO NOTHING",
		&st);
	if (ret)
		return ret;
	db__bind_text_or_null(st, 1, e->time);
	db__bind_text_or_null(st, 2, e->actor);
	db__bind_text_or_null(st, 3, e->command);
	db__bind_text_or_null(st, 4, e->summary);
	db__bind_text_or_null(st, 5, e->node);
	sqlite3_bind_text(st, 6, key, -1, SQLITE_TRANSIENT);
	return db__run(db, st, "mirror journal entry");
}

/* ---- nodes and votes ---- */

int db_cluster_node_put(db_t *db, const db_cluster_node_t *n)
{
	sqlite3_stmt *st;
	int ret = db__prepare(
		db,
		"INSERT OR REPLACE INTO cluster_node(name, live, last_seen, revision, "
		"down_votes) VALUES(?1, ?2, ?3, ?4, ?5)",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, n->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, n->live);
	sqlite3_bind_int64(st, 3, n->last_seen);
	sqlite3_bind_int64(st, 4, n->revision);
	sqlite3_bind_int64(st, 5, n->down_votes);
	return db__run(db, st, "record cluster node");
}

struct node_rows {
	db_cluster_node_t *v;
	size_t n;
};

static void node_row(sqlite3_stmt *st, void *arg)
{
	struct node_rows *r = arg;

	r->v = gslb_realloc(r->v, (r->n + 1) * sizeof(*r->v));
	db_cluster_node_t *n = &r->v[r->n++];
	n->name = db__col_dup(st, 0);
	n->live = sqlite3_column_int(st, 1) != 0;
	n->last_seen = sqlite3_column_int64(st, 2);
	n->revision = sqlite3_column_int64(st, 3);
	n->down_votes = sqlite3_column_int64(st, 4);
}

int db_cluster_nodes_list(db_t *db, db_cluster_node_t **out, size_t *n)
{
	struct node_rows r = { NULL, 0 };
	sqlite3_stmt *st;

	*out = NULL;
	*n = 0;
	int ret = db__prepare(
		db,
		"SELECT name, live, last_seen, revision, down_votes FROM cluster_node "
		"ORDER BY name",
		&st);
	if (!ret)
		ret = db__rows(db, st, "read cluster nodes", node_row, &r);
	if (ret) {
		db_cluster_nodes_free(r.v, r.n);
		return ret;
	}
	*out = r.v;
	*n = r.n;
	return 0;
}

void db_cluster_nodes_free(db_cluster_node_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int db_cluster_vote_put(db_t *db, const char *node, const char *target_key, bool up)
{
	sqlite3_stmt *st;
	int ret = db__prepare(
		db, "INSERT OR REPLACE INTO cluster_vote(node, target_key, up) VALUES(?1, ?2, ?3)",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, target_key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, up);
	return db__run(db, st, "record cluster vote");
}

int db_cluster_vote_delete(db_t *db, const char *node, const char *target_key)
{
	if (target_key)
		return run_text(db, "DELETE FROM cluster_vote WHERE node = ?1 AND target_key = ?2",
				node, target_key, "remove cluster vote");
	return run_text(db, "DELETE FROM cluster_vote WHERE node = ?1", node, NULL,
			"remove cluster votes");
}

int db_cluster_votes_clear(db_t *db)
{
	return run_text(db, "DELETE FROM cluster_vote", NULL, NULL, "remove cluster votes");
}

struct vote_rows {
	db_cluster_vote_t *v;
	size_t n;
};

static void vote_row(sqlite3_stmt *st, void *arg)
{
	struct vote_rows *r = arg;

	r->v = gslb_realloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->v[r->n].node = db__col_dup(st, 0);
	r->v[r->n++].up = sqlite3_column_int(st, 1) != 0;
}

int db_cluster_votes_get(db_t *db, const char *target_key, db_cluster_vote_t **out, size_t *n)
{
	struct vote_rows r = { NULL, 0 };
	sqlite3_stmt *st;

	*out = NULL;
	*n = 0;
	int ret = db__prepare(
		db, "SELECT node, up FROM cluster_vote WHERE target_key = ?1 ORDER BY node", &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, target_key, -1, SQLITE_TRANSIENT);
	ret = db__rows(db, st, "read cluster votes", vote_row, &r);
	if (ret) {
		db_cluster_votes_free(r.v, r.n);
		return ret;
	}
	*out = r.v;
	*n = r.n;
	return 0;
}

void db_cluster_votes_free(db_cluster_vote_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].node);
	free(v);
}
