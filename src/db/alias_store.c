/* SPDX-License-Identifier: MIT */
/* Alias members: what gslbd resolved for each alias host name, stored, loaded and served. */

/*
 * The alias_state table (src/db/schema.sql) is node-local, like the stored
 * health: gslbd's resolver writes it through db_alias_state_store(), and
 * gslbd and gslbctl read it whole through db_alias_state_load(), a few rows
 * (one per alias host name).  Its addresses column is text, the canonical
 * inet_ntop() forms comma-separated, so a person reading the file with
 * sqlite3 sees what gslbd serves; loaded, they become an array with the
 * families alongside, as a member's own addresses are, so that
 * lb_member_address() hands out both alike.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "internal.h"

static void state_clear(db_alias_state_t *s)
{
	free(s->name);
	for (size_t i = 0; i < s->naddresses; i++)
		free(s->addresses[i]);
	free(s->addresses);
	free(s->families);
	free(s->error);
	memset(s, 0, sizeof(*s));
}

void db_aliases_clear(db_aliases_t *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		state_clear(&a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The comma-separated list text into s's addresses, sorted, each with its family. */
static void addresses_split(db_alias_state_t *s, const char *text)
{
	size_t n = 0;

	for (const char *p = text; *p;) {
		size_t len = strcspn(p, ",");
		if (len) {
			s->addresses = gslb_realloc(s->addresses, (n + 1) * sizeof(char *));
			s->addresses[n] = gslb_malloc(len + 1);
			memcpy(s->addresses[n], p, len);
			s->addresses[n][len] = '\0';
			n++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	/* Text order, the order a member's own addresses load in: deterministic output. */
	gslb_sort(s->addresses, n, sizeof(char *), str_cmp);
	s->families = n ? gslb_malloc(n) : NULL;
	for (size_t i = 0; i < n; i++)
		s->families[i] = strchr(s->addresses[i], ':') ? 6 : 4;
	s->naddresses = (uint32_t)n;
}

/* A time column: Unix seconds, 0 for NULL. */
static int64_t col_time(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

/* The states read so far, and room for more. */
struct rows {
	db_aliases_t *a;
	size_t cap;
};

static void state_row(sqlite3_stmt *st, void *arg)
{
	struct rows *r = arg;
	db_aliases_t *a = r->a;

	if (a->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		a->v = gslb_realloc(a->v, r->cap * sizeof(*a->v));
	}
	db_alias_state_t *s = &a->v[a->n++];
	memset(s, 0, sizeof(*s));
	s->name = db__col_dup(st, 0);
	const char *addrs = (const char *)sqlite3_column_text(st, 1);
	s->never_resolved = addrs == NULL;
	if (addrs)
		addresses_split(s, addrs);
	s->resolved = col_time(st, 2);
	s->expires = col_time(st, 3);
	s->failures = (uint32_t)sqlite3_column_int64(st, 4);
	s->error = db__col_dup(st, 5);
	s->error_time = col_time(st, 6);
}

int db_alias_state_load(db_t *db, db_aliases_t *out)
{
	struct rows r = { .a = out };
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	/* ORDER BY name: the primary key of a WITHOUT ROWID table, so no sort. */
	int ret = db__prepare(db,
			      "SELECT name, addresses, resolved, expires, failures, error, "
			      "error_time FROM alias_state ORDER BY name",
			      &st);
	if (!ret)
		ret = db__rows(db, st, "load alias states", state_row, &r);
	if (ret)
		db_aliases_clear(out);
	return ret;
}

/* s's addresses as the addresses column holds them: comma-separated (caller frees). */
static char *addresses_join(const db_alias_state_t *s)
{
	size_t len = 1;

	for (size_t i = 0; i < s->naddresses; i++)
		len += strlen(s->addresses[i]) + 1;
	char *text = gslb_malloc(len), *p = text;
	*p = '\0';
	for (size_t i = 0; i < s->naddresses; i++) {
		size_t n = strlen(s->addresses[i]);
		if (i)
			*p++ = ',';
		memcpy(p, s->addresses[i], n + 1);
		p += n;
	}
	return text;
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t)
		sqlite3_bind_int64(st, i, t);
	else
		sqlite3_bind_null(st, i);
}

static int state_put(db_t *db, const db_alias_state_t *s)
{
	sqlite3_stmt *st;
	int ret = db__prepare(
		db,
		"INSERT INTO alias_state(name, addresses, resolved, expires, failures, error, "
		"error_time) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(name) DO UPDATE SET "
		"addresses = excluded.addresses, resolved = excluded.resolved, "
		"expires = excluded.expires, failures = excluded.failures, "
		"error = excluded.error, error_time = excluded.error_time",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, s->name, -1, SQLITE_TRANSIENT);
	if (s->never_resolved)
		sqlite3_bind_null(st, 2);
	else
		sqlite3_bind_text(st, 2, addresses_join(s), -1, free);
	bind_time(st, 3, s->resolved);
	bind_time(st, 4, s->expires);
	sqlite3_bind_int64(st, 5, s->failures);
	db__bind_text_or_null(st, 6, s->error);
	bind_time(st, 7, s->error_time);
	return db__run(db, st, "store alias state");
}

int db_alias_state_store(db_t *db, const db_alias_state_t *v, size_t n)
{
	bool own = !db->in_txn && sqlite3_get_autocommit(db->h);
	int ret = 0;

	if (own && (ret = db_begin_write(db)))
		return ret;
	for (size_t i = 0; !ret && i < n; i++) {
		if (!v[i].name || !*v[i].name)
			ret = -EINVAL;
		else
			ret = state_put(db, &v[i]);
	}
	if (!own)
		return ret;
	if (ret) {
		db_rollback(db);
		return ret;
	}
	return db_commit(db);
}
