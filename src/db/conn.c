/* SPDX-License-Identifier: MIT */
/* A connection: opened, closed, its file watched, statements cached, transactions, migration. */

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
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "internal.h"

/* ---- errors ---- */

int db__code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
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

/*
 * Translate a SQLite result code and keep its message, with what we were
 * doing, for db_errmsg().  A file SQLite could not open is the errno of
 * the open() that failed (ENOENT for a missing directory, EACCES ...).
 */
static int note(db_t *db, int rc, const char *what)
{
	snprintf(db->err, sizeof(db->err), "database %s: %s: %s", db->path, what,
		 sqlite3_errmsg(db->h));
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return -EEXIST;
		return GSLB_ECONFIG;
	case SQLITE_CANTOPEN: {
		int e = sqlite3_system_errno(db->h);
		return e > 0 ? -e : -ENOENT;
	}
	default:
		return db__code(rc);
	}
}

/* note(), and log the message. */
int db__fail(db_t *db, int rc, const char *what)
{
	int ret = note(db, rc, what);
	log_err("%s", db->err);
	return ret;
}

const char *db_errmsg(const db_t *db)
{
	return db->err;
}

static int exec(db_t *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : db__fail(db, rc, what);
}

/* ---- the statement cache ---- */

int db__prepare(db_t *db, const char *sql, sqlite3_stmt **st)
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
		return db__fail(db, rc, sql);
	}
	if (db->ncache < DB_STMT_CACHE) {
		struct db_stmt_slot *c = &db->cache[db->ncache++];
		c->sql = gslb_strdup(sql);
		c->st = *st;
		c->busy = true;
	}
	return 0;
}

void db__release(db_t *db, sqlite3_stmt *st)
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

int db__run(db_t *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : db__fail(db, sqlite3_extended_errcode(db->h), what);
	db__release(db, st);
	return ret;
}

int db__rows(db_t *db, sqlite3_stmt *st, const char *what, db__row_cb row, void *arg)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row(st, arg);
	int ret = rc == SQLITE_DONE ? 0 : db__fail(db, rc, what);
	db__release(db, st);
	return ret;
}

char *db__col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? gslb_strdup((const char *)s) : NULL;
}

void db__bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* ---- opening and closing ---- */

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
	db->claim_fd = -1;
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
	if (db->claim_fd >= 0)
		close(db->claim_fd);
	free(db->path);
	free(db->file);
	free(db);
}

/* ---- the file at the path ---- */

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
	/* The claim is the path's (its lock file stays where it was): it moves to the new file. */
	fresh->claim_fd = (*db)->claim_fd;
	(*db)->claim_fd = -1;
	/* SQLite sees the old file has left its name: closing it neither checkpoints nor deletes. */
	db_close(*db);
	*db = fresh;
	return 0;
}

/*
 * The lock is flock() on a file of its own beside the database: SQLite locks the database, its
 * -wal and -shm with POSIX record locks, which a process loses all at once when it closes any
 * descriptor of the file, so no descriptor of those may be opened and closed beside SQLite's.
 * flock() belongs to the open file description: it ends with the process, however it ends.
 */
int db_claim(db_t *db, long *holder)
{
	char lock[PATH_MAX], text[32];
	const char *base = db->file ? db->file : db->path;

	*holder = 0;
	if (db->claim_fd >= 0)
		return 0;
	if (snprintf(lock, sizeof(lock), "%s-lock", base) >= (int)sizeof(lock))
		return -ENAMETOOLONG;
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
		if (n > 0) {
			text[n] = '\0';
			*holder = strtol(text, NULL, 10);
		}
		close(fd);
		return err == EWOULDBLOCK ? -EBUSY : -err;
	}
	int len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
		log_debug("database %s: cannot write the PID into %s: %s", db->path, lock,
			  strerror(errno));
	db->claim_fd = fd;
	return 0;
}

/* ---- versions ---- */

static int query_int(db_t *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
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
		ret = db__fail(db, rc, sql);
	}
	db__release(db, st);
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

/* ---- transactions ---- */

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

/* ---- migration ---- */

/* Generated from src/db/schema.sql and src/db/migrate_v*.sql by Makefile.am (src/db/schema.c). */
extern const char db_schema[];
extern const char db_migrate_v2[];
extern const char db_migrate_v3[];
extern const char db_migrate_v4[];
extern const char db_migrate_v5[];
extern const char db_migrate_v6[];

/*
 * Migrations: steps[i] takes a file from user_version i to i + 1.  They run
 * in order inside one transaction that ends by setting user_version, so a
 * crash or a failed step leaves the old version intact.  A new file (version
 * 0) gets the current schema.sql in one step instead.
 */
static const char *const migrations[DB_SCHEMA_VERSION] = {
	NULL, db_migrate_v2, db_migrate_v3, db_migrate_v4, db_migrate_v5, db_migrate_v6,
};

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
