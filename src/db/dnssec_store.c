/* SPDX-License-Identifier: MIT */
/* DNSSEC signing keys in the database: the rows of dnssec_key read, added, retimed, deleted. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db_dnssec.h"
#include "internal.h"

#define KEY_COLUMNS                                                                        \
	"id, zone, algorithm, key_tag, flags, public_key, private_key, created, publish, " \
	"active, retire, remove"

/* A time column: DB_DNSSEC_NEVER for SQL NULL. */
static int64_t col_time(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return DB_DNSSEC_NEVER;
	return sqlite3_column_int64(st, i);
}

/* Bind a time: SQL NULL for DB_DNSSEC_NEVER. */
static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t == DB_DNSSEC_NEVER)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, t);
}

/* A copy of blob column i into *p and *len (NULL and 0 for an empty one). */
static void col_blob(sqlite3_stmt *st, int i, uint8_t **p, size_t *len)
{
	const void *b = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	*p = NULL;
	*len = 0;
	if (!b || n <= 0)
		return;
	*p = gslb_malloc((size_t)n);
	memcpy(*p, b, (size_t)n);
	*len = (size_t)n;
}

struct keys {
	db_dnssec_key_t *v;
	size_t n;
};

static void key_row(sqlite3_stmt *st, void *arg)
{
	struct keys *ks = arg;

	ks->v = gslb_realloc(ks->v, (ks->n + 1) * sizeof(*ks->v));
	db_dnssec_key_t *k = &ks->v[ks->n++];
	k->id = sqlite3_column_int64(st, 0);
	k->zone = db__col_dup(st, 1);
	k->algorithm = (uint8_t)sqlite3_column_int(st, 2);
	k->key_tag = (uint16_t)sqlite3_column_int(st, 3);
	k->flags = (uint16_t)sqlite3_column_int(st, 4);
	col_blob(st, 5, &k->public_key, &k->public_key_len);
	col_blob(st, 6, &k->private_key, &k->private_key_len);
	k->created = sqlite3_column_int64(st, 7);
	k->publish = sqlite3_column_int64(st, 8);
	k->active = col_time(st, 9);
	k->retire = col_time(st, 10);
	k->remove = col_time(st, 11);
}

int db_dnssec_keys_load(db_t *db, const char *zone, db_dnssec_key_t **out, size_t *n)
{
	struct keys ks = { 0 };
	sqlite3_stmt *st;
	int ret;

	*out = NULL;
	*n = 0;
	if (zone)
		ret = db__prepare(db,
				  "SELECT " KEY_COLUMNS " FROM dnssec_key WHERE zone = ?1 "
				  "ORDER BY publish, id",
				  &st);
	else
		ret = db__prepare(db,
				  "SELECT " KEY_COLUMNS " FROM dnssec_key "
				  "ORDER BY zone, publish, id",
				  &st);
	if (ret)
		return ret;
	if (zone)
		sqlite3_bind_text(st, 1, zone, -1, SQLITE_TRANSIENT);
	ret = db__rows(db, st, "read the DNSSEC keys", key_row, &ks);
	if (ret) {
		db_dnssec_keys_free(ks.v, ks.n);
		return ret;
	}
	*out = ks.v;
	*n = ks.n;
	return 0;
}

void db_dnssec_keys_free(db_dnssec_key_t *keys, size_t n)
{
	if (!keys)
		return;
	for (size_t i = 0; i < n; i++) {
		free(keys[i].zone);
		free(keys[i].public_key);
		/* A signing key lingers in freed memory no longer than it must. */
		if (keys[i].private_key)
			explicit_bzero(keys[i].private_key, keys[i].private_key_len);
		free(keys[i].private_key);
	}
	free(keys);
}

int db_dnssec_key_insert(db_t *db, const db_dnssec_key_t *k, int64_t *id)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db,
			      "INSERT INTO dnssec_key(zone, algorithm, key_tag, flags, public_key, "
			      "private_key, created, publish, active, retire, remove) "
			      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
			      &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, k->zone, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, k->algorithm);
	sqlite3_bind_int(st, 3, k->key_tag);
	sqlite3_bind_int(st, 4, k->flags);
	/* A zero-length blob binds as one, not as NULL: the NOT NULL check is the table's. */
	sqlite3_bind_blob(st, 5, k->public_key ? (const void *)k->public_key : "",
			  (int)k->public_key_len, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 6, k->private_key ? (const void *)k->private_key : "",
			  (int)k->private_key_len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 7, k->created);
	sqlite3_bind_int64(st, 8, k->publish);
	bind_time(st, 9, k->active);
	bind_time(st, 10, k->retire);
	bind_time(st, 11, k->remove);
	ret = db__run(db, st, "insert a DNSSEC key");
	if (!ret && id)
		*id = sqlite3_last_insert_rowid(db->h);
	return ret;
}

/* ret, or -ENOENT when the statement that ran cleanly changed no row. */
static int changed(db_t *db, int ret)
{
	return ret == 0 && sqlite3_changes(db->h) == 0 ? -ENOENT : ret;
}

int db_dnssec_key_update(db_t *db, const db_dnssec_key_t *k)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db,
			      "UPDATE dnssec_key SET publish = ?2, active = ?3, retire = ?4, "
			      "remove = ?5 WHERE id = ?1",
			      &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, k->id);
	sqlite3_bind_int64(st, 2, k->publish);
	bind_time(st, 3, k->active);
	bind_time(st, 4, k->retire);
	bind_time(st, 5, k->remove);
	return changed(db, db__run(db, st, "update a DNSSEC key"));
}

int db_dnssec_key_delete(db_t *db, int64_t id)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, "DELETE FROM dnssec_key WHERE id = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	return changed(db, db__run(db, st, "delete a DNSSEC key"));
}

int db_dnssec_keys_delete(db_t *db, const char *zone)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, "DELETE FROM dnssec_key WHERE zone = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, zone, -1, SQLITE_TRANSIENT);
	return changed(db, db__run(db, st, "delete a zone's DNSSEC keys"));
}
