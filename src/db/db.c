/* SPDX-License-Identifier: MIT */
/* The SQLite wrapper: connections, schema migration, the configuration loader and the writes. */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "internal.h"

/* Generated from src/db/schema.sql and src/db/migrate_v2.sql by Makefile.am (src/db/schema.c). */
extern const char db_schema[];
extern const char db_migrate_v2[];

/*
 * Statements prepared once per connection and reused: gslbctl writes a row
 * per statement, and compiling one (with the config_generation triggers of
 * its table) costs more than running it.
 */
#ifndef DB_STMT_CACHE /* tests/unit/test_db_nocache builds with 1 */
#define DB_STMT_CACHE 48
#endif

struct db_stmt_slot {
	char *sql; /* owned copy */
	sqlite3_stmt *st;
	bool busy; /* handed out by prepare(), not yet released */
};

/* A file's identity: two names with the same one are the same file.  Zero: unknown. */
struct db_ident {
	dev_t dev;
	ino_t ino;
};

struct db {
	sqlite3 *h;
	char *path;
	char *file; /* the file SQLite opened: path with symbolic links resolved */
	/*
	 * The file open, and the -wal and -shm that were beside it while it
	 * was at its name (see db_file_check()); guarded by file_mu.
	 */
	struct db_ident ident, wal, shm;
	bool in_txn;
	char err[512]; /* the last failure, for callers that report it themselves */
	unsigned ncache;
	struct db_stmt_slot cache[DB_STMT_CACHE];
};

/*
 * Migrations: steps[i] takes a file from user_version i to i + 1.  They run
 * in order inside one transaction that ends by setting user_version, so a
 * crash or a failed step leaves the old version intact.  A new file (version
 * 0) gets the current schema.sql in one step instead.
 */
static const char *const migrations[DB_SCHEMA_VERSION] = {
	NULL,
	db_migrate_v2,
};

/*
 * Translate a SQLite result code and keep its message, with what we were
 * doing, for db_errmsg().  A file SQLite could not open is the errno of
 * the open() that failed (ENOENT for a missing directory, EACCES ...).
 */
static int note(db_t *db, int rc, const char *what)
{
	int prim = rc & 0xff;

	snprintf(db->err, sizeof(db->err), "database %s: %s: %s", db->path, what,
		 sqlite3_errmsg(db->h));
	switch (prim) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return -EEXIST;
		return GSLB_ECONFIG;
	case SQLITE_CANTOPEN: {
		int e = sqlite3_system_errno(db->h);
		return e > 0 ? -e : -ENOENT;
	}
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_NOTADB:
		return GSLB_ENOTDB;
	case SQLITE_CORRUPT:
		return GSLB_EDBCORRUPT;
	default:
		return -EIO;
	}
}

/* note(), and log the message: for failures after the open, which callers do not repeat. */
static int fail(db_t *db, int rc, const char *what)
{
	int ret = note(db, rc, what);
	log_err("%s", db->err);
	return ret;
}

static int exec(db_t *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : fail(db, rc, what);
}

/*
 * A statement for sql, from the connection's cache when one is free (the
 * same SQL may be in use twice, by nested calls), else compiled.  Give it
 * back with release().
 */
static int prepare(db_t *db, const char *sql, sqlite3_stmt **st)
{
	for (unsigned i = 0; i < db->ncache; i++) {
		struct db_stmt_slot *c = &db->cache[i];
		if (!c->busy && strcmp(c->sql, sql) == 0) {
			c->busy = true;
			*st = c->st;
			return 0;
		}
	}
	int rc = sqlite3_prepare_v2(db->h, sql, -1, st, NULL);
	if (rc != SQLITE_OK) {
		*st = NULL;
		return fail(db, rc, sql);
	}
	if (db->ncache < DB_STMT_CACHE) {
		struct db_stmt_slot *c = &db->cache[db->ncache++];
		c->sql = gslb_strdup(sql);
		c->st = *st;
		c->busy = true;
	}
	return 0;
}

/* Done with a statement of prepare(): reset for its next use, or finalized if not cached. */
static void release(db_t *db, sqlite3_stmt *st)
{
	for (unsigned i = 0; i < db->ncache; i++) {
		struct db_stmt_slot *c = &db->cache[i];
		if (c->st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			c->busy = false;
			return;
		}
	}
	sqlite3_finalize(st);
}

/* Step a statement that returns no rows; releases it. */
static int run(db_t *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : fail(db, sqlite3_extended_errcode(db->h), what);
	release(db, st);
	return ret;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? gslb_strdup((const char *)s) : NULL;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/*
 * A database file is created by db_open() itself, not by SQLite: SQLite
 * creates it 0644 less the umask, readable by every local user, and gives
 * its -wal and -shm the file's mode.  0660 lets the group of the user gslbd
 * runs as read and write (operators in it run gslbctl); under a umask that
 * denies the group even reading (077) it is 0600.  Others never get access.
 */
#define DB_FILE_MODE 0660

static int file_create(const char *path)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, DB_FILE_MODE);
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno; /* EEXIST: another process was first */
	int ret = 0;
	/* open() applied the umask: st_mode says whether it lets the group read. */
	if (fstat(fd, &st) < 0 || fchmod(fd, (st.st_mode & S_IRGRP) ? DB_FILE_MODE : 0600) < 0)
		ret = -errno;
	close(fd);
	if (ret < 0)
		unlink(path);
	return ret;
}

/* "user nobody": whom this process acts as, for messages. */
static void user_text(char *buf, size_t len)
{
	struct passwd *pw = getpwuid(geteuid());
	if (pw)
		snprintf(buf, len, "user %s", pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)geteuid());
}

/* "owner root:root, mode 0644": who may do what with a file, for messages. */
static void owner_text(const struct stat *st, char *buf, size_t len)
{
	char user[64], group[64];
	struct passwd *pw = getpwuid(st->st_uid);
	struct group *gr = getgrgid(st->st_gid);
	if (pw)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "%u", (unsigned)st->st_uid);
	if (gr)
		snprintf(group, sizeof(group), "%s", gr->gr_name);
	else
		snprintf(group, sizeof(group), "%u", (unsigned)st->st_gid);
	snprintf(buf, len, "owner %s:%s, mode %04o", user, group, (unsigned)(st->st_mode & 07777));
}

/*
 * May this process read and write the file at path (for a directory:
 * create files in it)?  0, or a negative errno value with why saying so,
 * the file called shown; purpose ends the sentence for a directory.  A
 * missing file is -ENOENT with why unset.
 */
static int writable(const char *path, const char *shown, bool dir, const char *purpose, char *why,
		    size_t len)
{
	struct stat st;
	char user[96], owner[160];

	if (stat(path, &st) < 0) {
		int ret = -errno;
		if (dir)
			snprintf(why, len, "directory %s: %s", path, strerror(-ret));
		else if (ret != -ENOENT)
			snprintf(why, len, "%s", strerror(-ret));
		return ret;
	}
	if (dir && !S_ISDIR(st.st_mode)) {
		snprintf(why, len, "directory %s: %s", path, strerror(ENOTDIR));
		return -ENOTDIR;
	}
	/* Effective ids: what open() will meet, after --user too. */
	if (faccessat(AT_FDCWD, path, dir ? W_OK | X_OK : R_OK | W_OK, AT_EACCESS) == 0)
		return 0;
	int ret = -errno;
	if (ret == -EROFS) {
		snprintf(why, len, "%s is on a read-only file system", dir ? path : shown);
		return ret;
	}
	user_text(user, sizeof(user));
	owner_text(&st, owner, sizeof(owner));
	if (dir)
		snprintf(why, len, "%s may not write in %s (%s)%s", user, path, owner, purpose);
	else
		snprintf(why, len, "%s may not %s %s (%s)", user,
			 ret == -EACCES && faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) == 0
				 ? "write"
				 : "read and write",
			 shown, owner);
	return ret;
}

int db_access_check(const char *path, char *why, size_t len)
{
	char *dir = NULL, *base = NULL, *real = NULL;
	char purpose[512];
	int ret;

	why[0] = '\0';
	ret = writable(path, "it", false, NULL, why, len);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	bool exists = ret == 0;
	/* SQLite puts the -wal and -shm beside the file a symbolic link leads to. */
	real = exists ? realpath(path, NULL) : NULL;
	const char *file = real ? real : path;
	dir = gslb_strdup(file);
	base = gslb_strdup(file);
	if (exists) {
		const char *suffix[] = { "-wal", "-shm" };
		for (size_t i = 0; i < 2; i++) {
			char side[4096];
			snprintf(side, sizeof(side), "%s%s", file, suffix[i]);
			ret = writable(side, side, false, NULL, why, len);
			if (ret < 0 && ret != -ENOENT)
				goto out;
		}
		snprintf(purpose, sizeof(purpose), ", where SQLite creates %s-wal and %s-shm",
			 basename(base), basename(base));
	} else {
		snprintf(purpose, sizeof(purpose), " to create it");
	}
	/* The directory, always: SQLite deletes the -wal at the last close, makes it anew next time. */
	ret = writable(dirname(dir), NULL, true, purpose, why, len);
out:
	free(real);
	free(dir);
	free(base);
	return ret < 0 ? ret : 0;
}

static int conn_open(const char *path, unsigned flags, db_t **out)
{
	struct stat sb;
	int oflags, rc, ret;
	db_t *db;

	*out = NULL;
	if (stat(path, &sb) != 0) {
		if (!(flags & DB_OPEN_CREATE) || errno != ENOENT)
			return -errno;
		ret = file_create(path);
		if (ret < 0)
			return ret;
	}

	db = gslb_calloc(1, sizeof(*db));
	db->path = gslb_strdup(path);
	oflags = SQLITE_OPEN_NOMUTEX;
	if (flags & DB_OPEN_READONLY)
		oflags |= SQLITE_OPEN_READONLY;
	else
		oflags |= SQLITE_OPEN_READWRITE |
			  ((flags & DB_OPEN_CREATE) ? SQLITE_OPEN_CREATE : 0);
	/*
	 * Failures to open are not logged here: the code says why (the errno
	 * of open(), GSLB_ENOTDB ...) and the caller reports it once, as a
	 * start-up error or to the user; SQLite's message goes to debug.
	 */
	rc = sqlite3_open_v2(path, &db->h, oflags, NULL);
	if (rc != SQLITE_OK) {
		ret = db->h ? note(db, rc, "open") : -ENOMEM;
		goto out;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	rc = sqlite3_exec(db->h, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = note(db, rc, "enable foreign keys");
		goto out;
	}
	/*
	 * SQLite reads the file lazily: read its header now, so a file that
	 * is not a database fails here, read-only or not.
	 */
	rc = sqlite3_exec(db->h, "PRAGMA schema_version", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = note(db, rc, "read the header");
		goto out;
	}
	/*
	 * A file SQLite may not write is opened read-only without a word, and
	 * every write then fails: refuse it here, when it can be said once.
	 * (gslbctl's read commands are happy with a read-only file.)
	 */
	if ((flags & DB_OPEN_WRITABLE) && sqlite3_db_readonly(db->h, "main") == 1) {
		ret = faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) < 0 ? -errno : -EACCES;
		snprintf(db->err, sizeof(db->err), "database %s: read-only: %s", path,
			 strerror(-ret));
		goto out;
	}
	/*
	 * WAL lets readers (gslbd) and one writer (gslbctl) work at once.  It
	 * is a property of the file, so a read-only connection leaves it be.
	 */
	if (!(flags & DB_OPEN_READONLY)) {
		rc = sqlite3_exec(db->h, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			ret = note(db, rc, "enable WAL");
			goto out;
		}
	}
	const char *file = sqlite3_db_filename(db->h, "main");
	db->file = gslb_strdup(file && *file ? file : path);
	ret = 0;
out:
	if (ret) {
		log_debug("%s", db->err[0] ? db->err : "database: out of memory");
		db_close(db);
		return ret;
	}
	*out = db;
	return 0;
}

void db_close(db_t *db)
{
	if (!db)
		return;
	for (unsigned i = 0; i < db->ncache; i++) {
		sqlite3_finalize(db->cache[i].st);
		free(db->cache[i].sql);
	}
	if (db->h)
		sqlite3_close_v2(db->h);
	free(db->path);
	free(db->file);
	free(db);
}

/*
 * A database replaced under a process that has it open (renamed over, or
 * deleted and created again) leaves the old file's -wal and -shm at the
 * path, and SQLite pairs them with whatever file is there: a connection to
 * the new file would read the old file's pages from the old -wal, and a
 * checkpoint would write them into the new file.  So before a new file is
 * opened, the -wal and -shm known to be the old file's are removed (the
 * connections still on the old file keep them open, unlinked).  Every
 * connection notes and removes them under file_mu, so that one thread never
 * removes a -wal another has just opened with the new file.
 */
static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER;

static struct db_ident ident_of(const char *path)
{
	struct stat st;
	struct db_ident id = { 0, 0 };
	if (stat(path, &st) == 0) {
		id.dev = st.st_dev;
		id.ino = st.st_ino;
	}
	return id;
}

static bool ident_eq(struct db_ident a, struct db_ident b)
{
	return a.ino != 0 && a.dev == b.dev && a.ino == b.ino;
}

/* Under file_mu: note the file open, and the -wal and -shm beside it while it is at its name. */
static void idents_note(db_t *db)
{
	char side[4096];
	struct db_ident id = ident_of(db->file);

	if (db->ident.ino == 0)
		db->ident = id;
	if (!ident_eq(id, db->ident))
		return;
	snprintf(side, sizeof(side), "%s-wal", db->file);
	id = ident_of(side);
	if (id.ino)
		db->wal = id;
	snprintf(side, sizeof(side), "%s-shm", db->file);
	id = ident_of(side);
	if (id.ino)
		db->shm = id;
}

/* Under file_mu: remove the -wal and -shm of the file db has open, if it has left its name. */
static void stale_remove(db_t *db)
{
	char side[4096];
	struct {
		const char *suffix;
		struct db_ident *id;
	} sides[] = { { "-wal", &db->wal }, { "-shm", &db->shm } };

	/* Still at its own name (a symbolic link leads elsewhere now): they are still its own. */
	if (ident_eq(ident_of(db->file), db->ident))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(sides); i++) {
		snprintf(side, sizeof(side), "%s%s", db->file, sides[i].suffix);
		if (ident_eq(ident_of(side), *sides[i].id) && unlink(side) == 0)
			log_debug("database %s: removed %s, left by the file that was there",
				  db->path, side);
		sides[i].id->ino = 0;
	}
}

int db_open(const char *path, unsigned flags, db_t **out)
{
	int ret = conn_open(path, flags, out);
	if (ret == 0) {
		pthread_mutex_lock(&file_mu);
		idents_note(*out);
		pthread_mutex_unlock(&file_mu);
	}
	return ret;
}

int db_file_check(db_t *db, db_file_id_t *now)
{
	struct stat st;
	int ret;

	pthread_mutex_lock(&file_mu);
	if (stat(db->path, &st) < 0) {
		ret = errno == ENOENT ? DB_FILE_DELETED : -errno;
		if (now)
			*now = (db_file_id_t){ 0, 0 };
	} else {
		struct db_ident id = { st.st_dev, st.st_ino };
		ret = ident_eq(id, db->ident) ? DB_FILE_SAME : DB_FILE_REPLACED;
		if (ret == DB_FILE_SAME)
			idents_note(db); /* the -wal and -shm come and go with connections */
		if (now)
			*now = (db_file_id_t){ (uint64_t)st.st_dev, (uint64_t)st.st_ino };
	}
	pthread_mutex_unlock(&file_mu);
	return ret;
}

void db_stale_remove(db_t *db)
{
	pthread_mutex_lock(&file_mu);
	stale_remove(db);
	pthread_mutex_unlock(&file_mu);
}

int db_reopen(db_t **db, unsigned flags)
{
	db_t *fresh = NULL;

	pthread_mutex_lock(&file_mu);
	stale_remove(*db);
	int ret = conn_open((*db)->path, flags, &fresh);
	if (ret == 0)
		idents_note(fresh);
	pthread_mutex_unlock(&file_mu);
	if (ret < 0)
		return ret;
	/* SQLite sees the old file has left its name: closing it neither checkpoints nor deletes. */
	db_close(*db);
	*db = fresh;
	return 0;
}

const char *db_errmsg(const db_t *db)
{
	return db->err;
}

const char *db_path(const db_t *db)
{
	return db->path;
}

sqlite3 *db_sqlite(db_t *db)
{
	return db->h;
}

static int query_int(db_t *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int ret = prepare(db, sql, &st);
	if (ret)
		return ret;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		snprintf(db->err, sizeof(db->err), "database %s: %s: no row", db->path, sql);
		log_err("%s", db->err);
		ret = -ENOENT;
	} else {
		ret = fail(db, rc, sql);
	}
	release(db, st);
	return ret;
}

int db_version(db_t *db, int *version)
{
	int64_t v = 0;
	int ret = query_int(db, "PRAGMA user_version", &v);
	*version = (int)v;
	return ret;
}

int db_data_version(db_t *db, int64_t *version)
{
	return query_int(db, "PRAGMA data_version", version);
}

int db_config_generation(db_t *db, int64_t *generation)
{
	return query_int(db, "SELECT generation FROM config_generation WHERE id = 1", generation);
}

int db_begin_read(db_t *db)
{
	int ret = exec(db, "BEGIN", "begin");
	db->in_txn = ret == 0;
	return ret;
}

int db_begin_write(db_t *db)
{
	int ret = exec(db, "BEGIN IMMEDIATE", "begin write transaction");
	db->in_txn = ret == 0;
	return ret;
}

int db_commit(db_t *db)
{
	int ret = exec(db, "COMMIT", "commit");
	if (ret)
		db_rollback(db);
	db->in_txn = false;
	return ret;
}

void db_rollback(db_t *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	db->in_txn = false;
}

int db_migrate(db_t *db, int *from)
{
	char sql[64];
	int v, ret;

	/* Read the version under the write lock, so two migrators cannot both apply a step. */
	ret = db_begin_write(db);
	if (ret)
		return ret;
	ret = db_version(db, &v);
	if (ret)
		goto out;
	if (from)
		*from = v;
	if (v > DB_SCHEMA_VERSION) {
		log_err("database %s: schema version %d is newer than this build knows (%d)",
			db->path, v, DB_SCHEMA_VERSION);
		ret = GSLB_ECONFIG;
		goto out;
	}
	if (v == 0) {
		ret = exec(db, db_schema, "create schema");
	} else {
		for (int i = v; !ret && i < DB_SCHEMA_VERSION; i++) {
			snprintf(sql, sizeof(sql), "migrate schema from version %d to %d", i,
				 i + 1);
			ret = exec(db, migrations[i], sql);
		}
	}
	if (ret)
		goto out;
	if (v != DB_SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", DB_SCHEMA_VERSION);
		ret = exec(db, sql, "set schema version");
		if (ret)
			goto out;
	}
	return db_commit(db);
out:
	db_rollback(db);
	return ret;
}

/* ---- names ---- */

static const char *const policy_names[] = { "weighted", "failover", "geo" };
static const char *const admin_names[] = { "auto", "up", "down", "drain" };
static const char *const type_names[] = { "tcp", "http", "https" };

static int name_find(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

const char *db_policy_name(int v)
{
	return v >= 0 && v < 3 ? policy_names[v] : "?";
}

const char *db_admin_name(int v)
{
	return v >= 0 && v < 4 ? admin_names[v] : "?";
}

const char *db_check_type_name(int v)
{
	return v >= 0 && v < 3 ? type_names[v] : "?";
}

int db_policy_parse(const char *s)
{
	return name_find(policy_names, 3, s);
}

int db_admin_parse(const char *s)
{
	return name_find(admin_names, 4, s);
}

int db_check_type_parse(const char *s)
{
	return name_find(type_names, 3, s);
}

/* ---- loading ---- */

void db_check_free(db_check_t *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->host);
	free(c->expect);
	free(c->match);
	free(c->target);
	free(c);
}

void db_member_clear(db_member_t *m)
{
	free(m->name);
	free(m->countries);
	free(m->continents);
	for (size_t i = 0; i < m->naddresses; i++)
		free(m->addresses[i]);
	free(m->addresses);
	free(m->families);
	for (size_t i = 0; i < m->nnetworks; i++)
		free(m->networks[i]);
	free(m->networks);
	db_check_free(m->check);
	memset(m, 0, sizeof(*m));
}

void db_config_free(db_config_t *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->npools; i++) {
		db_pool_t *p = &cfg->pools[i];
		for (size_t k = 0; k < p->nmembers; k++)
			db_member_clear(&p->members[k]);
		free(p->members);
		free(p->name);
		db_check_free(p->check);
	}
	free(cfg->pools);
	free(cfg);
}

/* Binary search of rows sorted by id; the loader asks SQLite for that order. */
static db_pool_t *pool_by_id(db_config_t *cfg, int64_t id)
{
	size_t lo = 0, hi = cfg->npools;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cfg->pools[mid].id == id)
			return &cfg->pools[mid];
		if (cfg->pools[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

typedef struct member_ref {
	int64_t id;
	db_member_t *m;
} member_ref_t;

static int ref_cmp(const void *a, const void *b)
{
	const member_ref_t *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static db_member_t *member_by_id(member_ref_t *refs, size_t n, int64_t id)
{
	member_ref_t key = { .id = id };
	member_ref_t *r = bsearch(&key, refs, n, sizeof(*refs), ref_cmp);
	return r ? r->m : NULL;
}

static int pool_name_cmp(const void *a, const void *b)
{
	return strcmp(((const db_pool_t *)a)->name, ((const db_pool_t *)b)->name);
}

static int member_name_cmp(const void *a, const void *b)
{
	return strcmp(((const db_member_t *)a)->name, ((const db_member_t *)b)->name);
}

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = gslb_realloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
}

void db_member_sort(db_member_t *m)
{
	for (size_t i = 1; i < m->naddresses; i++)
		for (size_t j = i; j > 0 && strcmp(m->addresses[j - 1], m->addresses[j]) > 0; j--) {
			char *a = m->addresses[j];
			uint8_t f = m->families[j];
			m->addresses[j] = m->addresses[j - 1];
			m->families[j] = m->families[j - 1];
			m->addresses[j - 1] = a;
			m->families[j - 1] = f;
		}
	for (size_t i = 1; i < m->nnetworks; i++)
		for (size_t j = i; j > 0 && strcmp(m->networks[j - 1], m->networks[j]) > 0; j--) {
			char *n = m->networks[j];
			m->networks[j] = m->networks[j - 1];
			m->networks[j - 1] = n;
		}
}

static db_check_t *check_row(sqlite3_stmt *st, int c0)
{
	db_check_t *c = gslb_calloc(1, sizeof(*c));
	int t = db_check_type_parse((const char *)sqlite3_column_text(st, c0));
	c->type = t < 0 ? DB_CHECK_TCP : (uint8_t)t;
	c->port = (uint16_t)sqlite3_column_int(st, c0 + 1);
	c->path = col_dup(st, c0 + 2);
	c->host = col_dup(st, c0 + 3);
	c->expect = col_dup(st, c0 + 4);
	c->match = col_dup(st, c0 + 5);
	c->interval_ms = (uint32_t)sqlite3_column_int64(st, c0 + 6);
	c->timeout_ms = (uint32_t)sqlite3_column_int64(st, c0 + 7);
	c->rise = (uint8_t)sqlite3_column_int(st, c0 + 8);
	c->fall = (uint8_t)sqlite3_column_int(st, c0 + 9);
	c->target = col_dup(st, c0 + 10);
	c->insecure = sqlite3_column_int(st, c0 + 11) != 0;
	return c;
}

static int load(db_t *db, db_config_t *cfg)
{
	sqlite3_stmt *st = NULL;
	member_ref_t *refs = NULL;
	size_t nrefs = 0, cap = 0;
	int rc, ret;

	ret = prepare(db,
		      "SELECT id, name, policy, ttl, degraded_ttl, answers, fallback FROM pool "
		      "ORDER BY id",
		      &st);
	if (ret)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cfg->npools == cap) {
			cap = cap ? cap * 2 : 16;
			cfg->pools = gslb_realloc(cfg->pools, cap * sizeof(*cfg->pools));
		}
		db_pool_t *p = &cfg->pools[cfg->npools++];
		memset(p, 0, sizeof(*p));
		p->id = sqlite3_column_int64(st, 0);
		p->name = col_dup(st, 1);
		p->policy = (uint8_t)db_policy_parse((const char *)sqlite3_column_text(st, 2));
		p->ttl = (uint32_t)sqlite3_column_int64(st, 3);
		p->degraded_ttl = sqlite3_column_type(st, 4) == SQLITE_NULL
					  ? -1
					  : (int32_t)sqlite3_column_int64(st, 4);
		p->answers = (uint8_t)sqlite3_column_int(st, 5);
		p->fallback_all = strcmp((const char *)sqlite3_column_text(st, 6), "all") == 0;
	}
	if (rc != SQLITE_DONE) {
		ret = fail(db, rc, "load pools");
		goto out;
	}
	release(db, st);

	/*
	 * Members are appended to their pool's array as they come; pointers into
	 * those arrays are taken only after every member is in, since realloc
	 * moves them.
	 */
	ret = prepare(db,
		      "SELECT pool_id, id, name, weight, priority, latitude, longitude, countries, "
		      "continents, admin FROM member",
		      &st);
	if (ret)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		db_pool_t *p = pool_by_id(cfg, sqlite3_column_int64(st, 0));
		if (!p)
			continue;
		p->members = gslb_realloc(p->members, (p->nmembers + 1) * sizeof(*p->members));
		db_member_t *m = &p->members[p->nmembers++];
		memset(m, 0, sizeof(*m));
		m->id = sqlite3_column_int64(st, 1);
		m->name = col_dup(st, 2);
		m->weight = (uint16_t)sqlite3_column_int(st, 3);
		m->priority = (uint8_t)sqlite3_column_int(st, 4);
		if (sqlite3_column_type(st, 5) != SQLITE_NULL &&
		    sqlite3_column_type(st, 6) != SQLITE_NULL) {
			m->has_location = true;
			m->latitude = sqlite3_column_double(st, 5);
			m->longitude = sqlite3_column_double(st, 6);
		}
		m->countries = col_dup(st, 7);
		m->continents = col_dup(st, 8);
		int a = db_admin_parse((const char *)sqlite3_column_text(st, 9));
		m->admin = a < 0 ? DB_ADMIN_AUTO : (uint8_t)a;
	}
	if (rc != SQLITE_DONE) {
		ret = fail(db, rc, "load members");
		goto out;
	}
	release(db, st);
	st = NULL;

	for (size_t i = 0; i < cfg->npools; i++)
		nrefs += cfg->pools[i].nmembers;
	refs = gslb_calloc(nrefs ? nrefs : 1, sizeof(*refs));
	nrefs = 0;
	for (size_t i = 0; i < cfg->npools; i++)
		for (size_t k = 0; k < cfg->pools[i].nmembers; k++) {
			refs[nrefs].id = cfg->pools[i].members[k].id;
			refs[nrefs++].m = &cfg->pools[i].members[k];
		}
	gslb_sort(refs, nrefs, sizeof(*refs), ref_cmp);

	/*
	 * No ORDER BY here or below: SQLite's sort of every row cost more than
	 * sorting each member's few values (db_member_sort()).
	 */
	ret = prepare(db, "SELECT member_id, address, family FROM member_address", &st);
	if (ret)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		db_member_t *m = member_by_id(refs, nrefs, sqlite3_column_int64(st, 0));
		if (!m)
			continue;
		m->families = gslb_realloc(m->families, m->naddresses + 1);
		m->families[m->naddresses] = (uint8_t)sqlite3_column_int(st, 2);
		strv_push(&m->addresses, &m->naddresses, col_dup(st, 1));
	}
	if (rc != SQLITE_DONE) {
		ret = fail(db, rc, "load addresses");
		goto out;
	}
	release(db, st);

	ret = prepare(db, "SELECT member_id, prefix FROM member_network", &st);
	if (ret)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		db_member_t *m = member_by_id(refs, nrefs, sqlite3_column_int64(st, 0));
		if (m)
			strv_push(&m->networks, &m->nnetworks, col_dup(st, 1));
	}
	if (rc != SQLITE_DONE) {
		ret = fail(db, rc, "load networks");
		goto out;
	}
	release(db, st);

	ret = prepare(db,
		      "SELECT pool_id, member_id, type, port, path, host, expect, match, "
		      "interval_ms, timeout_ms, rise, fall, target, insecure FROM health_check",
		      &st);
	if (ret)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		db_check_t **slot;
		if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
			db_pool_t *p = pool_by_id(cfg, sqlite3_column_int64(st, 0));
			slot = p ? &p->check : NULL;
		} else {
			db_member_t *m = member_by_id(refs, nrefs, sqlite3_column_int64(st, 1));
			slot = m ? &m->check : NULL;
		}
		if (slot && !*slot)
			*slot = check_row(st, 2);
	}
	if (rc != SQLITE_DONE) {
		ret = fail(db, rc, "load checks");
		goto out;
	}

	/* Hand out everything sorted by name: deterministic for export and the daemon. */
	for (size_t i = 0; i < nrefs; i++)
		db_member_sort(refs[i].m);
	for (size_t i = 0; i < cfg->npools; i++)
		gslb_sort(cfg->pools[i].members, cfg->pools[i].nmembers, sizeof(db_member_t),
			  member_name_cmp);
	gslb_sort(cfg->pools, cfg->npools, sizeof(db_pool_t), pool_name_cmp);
	ret = 0;
out:
	release(db, st);
	free(refs);
	return ret;
}

int db_config_load(db_t *db, db_config_t **out)
{
	bool own = !db->in_txn && sqlite3_get_autocommit(db->h);
	db_config_t *cfg = gslb_calloc(1, sizeof(*cfg));
	int ret;

	*out = NULL;
	if (own) {
		ret = db_begin_read(db);
		if (ret)
			goto out;
	}
	ret = load(db, cfg);
	if (own) {
		/* A read transaction has nothing to commit; ending it releases the snapshot. */
		db_rollback(db);
	}
out:
	if (ret) {
		db_config_free(cfg);
		return ret;
	}
	*out = cfg;
	return 0;
}

/* Binary search: pools are sorted by name, and gslbd looks up each of 100,000 at a load. */
db_pool_t *db_config_pool(const db_config_t *cfg, const char *name)
{
	size_t lo = 0, hi = cfg ? cfg->npools : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cfg->pools[mid].name, name);
		if (c == 0)
			return &cfg->pools[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

db_member_t *db_pool_member(const db_pool_t *p, const char *name)
{
	for (size_t i = 0; p && i < p->nmembers; i++)
		if (strcmp(p->members[i].name, name) == 0)
			return &p->members[i];
	return NULL;
}

/* ---- writes ---- */

static void bind_pool(sqlite3_stmt *st, const db_pool_t *p)
{
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, db_policy_name(p->policy), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, p->ttl);
	if (p->degraded_ttl >= 0)
		sqlite3_bind_int64(st, 4, p->degraded_ttl);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int(st, 5, p->answers);
	sqlite3_bind_text(st, 6, p->fallback_all ? "all" : "none", -1, SQLITE_STATIC);
}

int db_pool_insert(db_t *db, const db_pool_t *p)
{
	sqlite3_stmt *st;
	int ret = prepare(db,
			  "INSERT INTO pool(name, policy, ttl, degraded_ttl, answers, fallback) "
			  "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
			  &st);
	if (ret)
		return ret;
	bind_pool(st, p);
	return run(db, st, "insert pool");
}

int db_pool_update(db_t *db, const db_pool_t *p)
{
	sqlite3_stmt *st;
	int ret = prepare(db,
			  "UPDATE pool SET policy = ?2, ttl = ?3, degraded_ttl = ?4, answers = ?5, "
			  "fallback = ?6, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
			  "WHERE name = ?1",
			  &st);
	if (ret)
		return ret;
	bind_pool(st, p);
	ret = run(db, st, "update pool");
	if (!ret && sqlite3_changes(db->h) == 0)
		ret = -ENOENT;
	return ret;
}

int db_pool_delete(db_t *db, const char *pool)
{
	sqlite3_stmt *st;
	int ret = prepare(db, "DELETE FROM pool WHERE name = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, pool, -1, SQLITE_TRANSIENT);
	ret = run(db, st, "delete pool");
	if (!ret && sqlite3_changes(db->h) == 0)
		ret = -ENOENT;
	return ret;
}

static int lookup_id(db_t *db, const char *sql, const char *a, const char *b, int64_t *id)
{
	sqlite3_stmt *st;
	int ret = prepare(db, sql, &st);
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
		ret = fail(db, rc, "look up id");
	}
	release(db, st);
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

static void bind_member(sqlite3_stmt *st, const db_member_t *m)
{
	sqlite3_bind_int(st, 2, m->weight);
	sqlite3_bind_int(st, 3, m->priority);
	if (m->has_location) {
		sqlite3_bind_double(st, 4, m->latitude);
		sqlite3_bind_double(st, 5, m->longitude);
	} else {
		sqlite3_bind_null(st, 4);
		sqlite3_bind_null(st, 5);
	}
	bind_text_or_null(st, 6, m->countries);
	bind_text_or_null(st, 7, m->continents);
	sqlite3_bind_text(st, 8, db_admin_name(m->admin), -1, SQLITE_STATIC);
}

/* Replace the address and network rows of member id with m's. */
static int member_lists_put(db_t *db, int64_t id, const db_member_t *m)
{
	sqlite3_stmt *st;
	int ret;

	ret = prepare(db, "DELETE FROM member_address WHERE member_id = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	if ((ret = run(db, st, "delete addresses")))
		return ret;
	ret = prepare(db, "DELETE FROM member_network WHERE member_id = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	if ((ret = run(db, st, "delete networks")))
		return ret;
	for (size_t i = 0; i < m->naddresses; i++) {
		ret = prepare(db,
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
		if ((ret = run(db, st, "insert address")))
			return ret;
	}
	for (size_t i = 0; i < m->nnetworks; i++) {
		ret = prepare(
			db,
			"INSERT OR IGNORE INTO member_network(member_id, prefix) VALUES(?1, ?2)",
			&st);
		if (ret)
			return ret;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, m->networks[i], -1, SQLITE_TRANSIENT);
		if ((ret = run(db, st, "insert network")))
			return ret;
	}
	return 0;
}

int db_member_insert(db_t *db, const char *pool, const db_member_t *m)
{
	sqlite3_stmt *st;
	int64_t pid;
	int ret = pool_id(db, pool, &pid);
	if (ret)
		return ret;
	ret = prepare(db,
		      "INSERT INTO member(name, weight, priority, latitude, longitude, countries, "
		      "continents, admin, pool_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		      &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, m->name, -1, SQLITE_TRANSIENT);
	bind_member(st, m);
	sqlite3_bind_int64(st, 9, pid);
	if ((ret = run(db, st, "insert member")))
		return ret;
	return member_lists_put(db, sqlite3_last_insert_rowid(db->h), m);
}

int db_member_update(db_t *db, const char *pool, const db_member_t *m)
{
	sqlite3_stmt *st;
	int64_t mid;
	int ret = member_id(db, pool, m->name, &mid);
	if (ret)
		return ret;
	ret = prepare(
		db,
		"UPDATE member SET weight = ?2, priority = ?3, latitude = ?4, longitude = ?5, "
		"countries = ?6, continents = ?7, admin = ?8 WHERE id = ?9 AND name = ?1",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, m->name, -1, SQLITE_TRANSIENT);
	bind_member(st, m);
	sqlite3_bind_int64(st, 9, mid);
	if ((ret = run(db, st, "update member")))
		return ret;
	return member_lists_put(db, mid, m);
}

int db_member_delete(db_t *db, const char *pool, const char *member)
{
	sqlite3_stmt *st;
	int64_t mid;
	int ret = member_id(db, pool, member, &mid);
	if (ret)
		return ret;
	ret = prepare(db, "DELETE FROM member WHERE id = ?1", &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, mid);
	return run(db, st, "delete member");
}

int db_member_set_admin(db_t *db, const char *pool, const char *member, int admin)
{
	sqlite3_stmt *st;
	int64_t mid;
	int ret = member_id(db, pool, member, &mid);
	if (ret)
		return ret;
	ret = prepare(db, "UPDATE member SET admin = ?1 WHERE id = ?2", &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, db_admin_name(admin), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, mid);
	return run(db, st, "set admin state");
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
	ret = prepare(db,
		      member ? "DELETE FROM health_check WHERE pool_id = ?1 AND member_id = ?2"
			     : "DELETE FROM health_check WHERE pool_id = ?1 AND member_id IS NULL",
		      &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, pid);
	if (member)
		sqlite3_bind_int64(st, 2, mid);
	ret = run(db, st, "delete check");
	if (!ret && sqlite3_changes(db->h) == 0)
		ret = -ENOENT;
	return ret;
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
	ret = prepare(
		db,
		"INSERT INTO health_check(pool_id, member_id, type, port, path, host, expect, "
		"match, interval_ms, timeout_ms, rise, fall, target, insecure) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
	bind_text_or_null(st, 5, c->path);
	bind_text_or_null(st, 6, c->host);
	bind_text_or_null(st, 7, c->expect);
	bind_text_or_null(st, 8, c->match);
	sqlite3_bind_int64(st, 9, c->interval_ms);
	sqlite3_bind_int64(st, 10, c->timeout_ms);
	sqlite3_bind_int(st, 11, c->rise);
	sqlite3_bind_int(st, 12, c->fall);
	bind_text_or_null(st, 13, c->target);
	sqlite3_bind_int(st, 14, c->insecure);
	return run(db, st, "insert check");
}

int db_journal_add(db_t *db, const char *actor, const char *command, const char *summary)
{
	char now[32];
	struct tm tm;
	time_t t = time(NULL);
	sqlite3_stmt *st;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int ret = prepare(
		db, "INSERT INTO journal(time, actor, command, summary) VALUES(?1, ?2, ?3, ?4)",
		&st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, actor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, command, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, summary, -1, SQLITE_TRANSIENT);
	return run(db, st, "insert journal row");
}

int db_journal_list(db_t *db, unsigned limit, db_journal_entry_t **out, size_t *n)
{
	sqlite3_stmt *st;
	db_journal_entry_t *v = NULL;
	size_t cnt = 0;
	int rc, ret;

	*out = NULL;
	*n = 0;
	ret = prepare(db,
		      "SELECT id, time, actor, command, summary FROM journal ORDER BY id DESC "
		      "LIMIT ?1",
		      &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = gslb_realloc(v, (cnt + 1) * sizeof(*v));
		v[cnt].id = sqlite3_column_int64(st, 0);
		v[cnt].time = col_dup(st, 1);
		v[cnt].actor = col_dup(st, 2);
		v[cnt].command = col_dup(st, 3);
		v[cnt].summary = col_dup(st, 4);
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		ret = fail(db, rc, "read journal");
		release(db, st);
		db_journal_free(v, cnt);
		return ret;
	}
	release(db, st);
	*out = v;
	*n = cnt;
	return 0;
}

void db_journal_free(db_journal_entry_t *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].time);
		free(e[i].actor);
		free(e[i].command);
		free(e[i].summary);
	}
	free(e);
}

int db_target_state_get(db_t *db, const char *target_key, db_target_state_t *s)
{
	sqlite3_stmt *st;
	int rc, ret;

	memset(s, 0, sizeof(*s));
	s->latency_ms = -1;
	ret = prepare(db,
		      "SELECT s.state, s.since, s.reason, s.last_probe, s.latency_ms "
		      "FROM target_state s JOIN target t ON t.id = s.target_id WHERE t.key = ?1",
		      &st);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, target_key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->state = col_dup(st, 0);
		s->since = sqlite3_column_int64(st, 1);
		s->reason = col_dup(st, 2);
		s->last_probe = sqlite3_column_int64(st, 3);
		if (sqlite3_column_type(st, 4) != SQLITE_NULL)
			s->latency_ms = sqlite3_column_double(st, 4);
	} else if (rc != SQLITE_DONE) {
		ret = fail(db, rc, "read target state");
	}
	release(db, st);
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
			e->reason = col_dup(st, 3);
		} else {
			e->time = sqlite3_column_int64(st, 0);
			e->time_ms = e->time * 1000;
			e->id = sqlite3_column_int64(st, 1);
			e->from_state = col_dup(st, 2);
			e->to_state = col_dup(st, 3);
			e->reason = col_dup(st, 4);
			e->ok = -1;
		}
	}
	return rc == SQLITE_DONE ? 0 : fail(db, rc, "read history");
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
	ret = prepare(db,
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
	release(db, st);
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
