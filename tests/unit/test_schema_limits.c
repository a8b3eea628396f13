/* SPDX-License-Identifier: MIT */
/*
 * The database's CHECK constraints (src/db/schema.sql) held against the
 * ranges gslbctl reads (src/cfg/fields.c, built on include/gslb/lb.h and
 * include/gslb/health.h): each end of each range is stored, one beyond it is
 * refused.  SQL cannot name the C constants, so this is what keeps the two
 * from drifting apart.  It writes the rows with SQLite itself, as a file of
 * another writer would hold them, around the checks of gslbctl and src/db.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/cfg.h"
#include "tap.h"

/* The column each number of gslbctl is stored in, by enum num_field. */
static const struct column {
	const char *table, *name;
} columns[NUM_FIELDS] = {
	[NUM_TTL] = { "pool", "ttl" },
	[NUM_DEGRADED_TTL] = { "pool", "degraded_ttl" },
	[NUM_ANSWERS] = { "pool", "answers" },
	[NUM_WEIGHT] = { "member", "weight" },
	[NUM_PRIORITY] = { "member", "priority" },
	[NUM_PORT] = { "health_check", "port" },
	[NUM_INTERVAL] = { "health_check", "interval_ms" },
	[NUM_TIMEOUT] = { "health_check", "timeout_ms" },
	[NUM_RISE] = { "health_check", "rise" },
	[NUM_FALL] = { "health_check", "fall" },
};

static sqlite3 *sq;

/* Set the column in its table's one row: true when SQLite stores v, false when it refuses it. */
static bool stored(const struct column *col, int64_t v)
{
	char sql[128];
	sqlite3_stmt *st = NULL;
	int rc;

	snprintf(sql, sizeof(sql), "UPDATE %s SET %s = ?1", col->table, col->name);
	if (sqlite3_prepare_v2(sq, sql, -1, &st, NULL) != SQLITE_OK) {
		diag("%s: %s", sql, sqlite3_errmsg(sq));
		return false;
	}
	sqlite3_bind_int64(st, 1, v);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CONSTRAINT)
		diag("%s = %lld: %s", sql, (long long)v, sqlite3_errmsg(sq));
	return rc == SQLITE_DONE;
}

static void range(enum num_field f, int64_t lo, int64_t hi, const char *what)
{
	const struct column *col = &columns[f];
	const char *n = num_fields[f].opt;
	ok(stored(col, lo), "%s %lld (%s.%s) is stored", n, (long long)lo, col->table, col->name);
	ok(!stored(col, lo - 1), "%s %lld is refused", n, (long long)(lo - 1));
	ok(stored(col, hi), "%s %lld (%s) is stored", n, (long long)hi, what);
	ok(!stored(col, hi + 1), "%s %lld is refused", n, (long long)(hi + 1));
}

int main(void)
{
	char dir[] = "/tmp/gslb-test-schema.XXXXXX", path[128];
	db_t *db = NULL;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/gslb.db", dir);
	ok(db_open(path, DB_OPEN_CREATE, &db) == 0 && db_migrate(db, NULL) == 0,
	   "a new file with the schema");
	db_close(db);

	ok(sqlite3_open(path, &sq) == SQLITE_OK &&
		   sqlite3_exec(sq,
				"INSERT INTO pool(name) VALUES ('p.test.');"
				"INSERT INTO member(pool_id, name) VALUES (1, 'a');"
				"INSERT INTO health_check(pool_id, type, port, timeout_ms) "
				"VALUES (1, 'tcp', 80, 1);",
				NULL, NULL, NULL) == SQLITE_OK,
	   "a pool, a member and a check, written with SQLite");

	for (enum num_field f = 0; f < NUM_FIELDS; f++) {
		const num_field_def_t *d = &num_fields[f];
		if (!ok(columns[f].table != NULL, "%s has a column here", d->opt))
			continue;
		if (f != NUM_TIMEOUT) {
			range(f, d->lo, d->hi, "the maximum");
			continue;
		}
		/*
		 * The timeout's upper end is the interval's, exclusive: gslbctl
		 * checks it against the interval given.
		 */
		is_int(d->hi, num_fields[NUM_INTERVAL].hi, "--timeout ends where --interval does");
		ok(stored(&columns[NUM_INTERVAL], d->hi), "interval_ms %lu is stored",
		   (unsigned long)d->hi);
		range(f, d->lo, d->hi - 1, "less than the interval");
	}

	sqlite3_close(sq);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
