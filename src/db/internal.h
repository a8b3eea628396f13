/* SPDX-License-Identifier: MIT */
/* Private to src/db: the connection and the helpers its files share beyond include/gslb/db.h. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "gslb/db.h"
#include "gslb/db_health.h"

/*
 * The files of the module, by concern:
 *
 *   conn.c          opening and closing, the file at the path, errors, the
 *                   statement cache, transactions, versions and migration
 *   config_load.c   the configuration read into a db_config_t, and freed
 *   config_write.c  the configuration's writes, and the journal
 *   history.c       the stored health read back (gslbctl status, history, explain)
 *   health_store.c  the stored health written, by a thread of its own
 *   cluster.c       a cluster node's settings, and its mirror of etcd's pools, journal,
 *                   nodes and votes
 *   alias_store.c   what gslbd resolved for alias members, stored and loaded, and the
 *                   addresses a member serves with it
 *   dnssec_store.c  the DNSSEC signing keys
 */

/*
 * Statements prepared once per connection and reused: gslbctl writes a row
 * per statement, and compiling one (with the config_generation triggers of
 * its table) costs more than running it.  The size is part of struct db, so
 * every file of the module is built with the same one.  It has room for the
 * fixed statements of all of the module's files, cluster.c's included.
 */
#ifndef DB_STMT_CACHE /* tests/unit/test_db_nocache builds the module with 1 */
#define DB_STMT_CACHE 64
#endif

struct db_stmt_slot {
	char *sql; /* owned copy */
	sqlite3_stmt *st;
	bool busy; /* handed out by db__prepare(), not yet released */
};

/* A file's identity: two names with the same one are the same file.  Zero: unknown. */
struct db_ident {
	dev_t dev;
	ino_t ino;
};

/*
 * One connection (db_t), used by one thread at a time as include/gslb/db.h
 * says.  Its file identities are read and written under conn.c's file_mu,
 * which orders the checks and removals of all the process's connections.
 */
struct db {
	/* health_store.c prepares statements of its own on h, and finalizes them before db_close(). */
	sqlite3 *h;
	char *path;
	char *file; /* the file SQLite opened: path with symbolic links resolved */
	/*
	 * The file open, and the -wal and -shm that were beside it while it
	 * was at its name (see db_file_check()); guarded by file_mu.
	 */
	struct db_ident ident, wal, shm;
	bool in_txn;
	int claim_fd;  /* db_claim()'s lock file, or -1 */
	char err[512]; /* the last failure, for callers that report it themselves */
	unsigned ncache;
	struct db_stmt_slot cache[DB_STMT_CACHE];
};

/*
 * A SQLite result code (primary or extended) as ours: -EBUSY, -ENOMEM,
 * -EROFS, GSLB_ENOTDB, GSLB_EDBCORRUPT, else -EIO.  These are the codes
 * every caller reads alike; db__fail() adds a constraint (-EEXIST or
 * GSLB_ECONFIG) and a file that cannot be opened (its errno), and
 * health_store.c a full disk (-ENOSPC).
 */
int db__code(int rc);

/*
 * Translate a SQLite result code into ours (include/gslb/db.h lists them),
 * keep SQLite's message with what we were doing for db_errmsg(), and log
 * it: for failures after the open, which callers do not repeat.
 */
int db__fail(db_t *db, int rc, const char *what);

/*
 * A statement for sql, from the connection's cache when one is free (the
 * same SQL may be in use twice, by nested calls), else compiled.  Give it
 * back with db__release(), db__run() or db__rows().
 */
int db__prepare(db_t *db, const char *sql, sqlite3_stmt **st);

/* Done with a statement of db__prepare(): reset for its next use, or finalized if not cached. */
void db__release(db_t *db, sqlite3_stmt *st);

/* Step a statement that returns no rows; releases it. */
int db__run(db_t *db, sqlite3_stmt *st, const char *what);

/* Called with each row of db__rows(), arg passed through. */
typedef void (*db__row_cb)(sqlite3_stmt *st, void *arg);

/*
 * Step a statement to its end, handing each row to row(); releases it.
 * Column pointers die at the next step: row() copies what it keeps.
 */
int db__rows(db_t *db, sqlite3_stmt *st, const char *what, db__row_cb row, void *arg);

/* A copy of column i's text (caller frees), or NULL for SQL NULL. */
char *db__col_dup(sqlite3_stmt *st, int i);

/* Pools a whole db_config_load() reads and packs at a time (config_load.c); tests lower it. */
extern size_t db__load_batch;

/* Bind s, or SQL NULL when s is NULL. */
void db__bind_text_or_null(sqlite3_stmt *st, int i, const char *s);

/**
 * Have the health writer try a batch now, with every record queued before
 * the call, and wait for it: 0 when it was written, else why not (-EBUSY for
 * a lock held past the busy timeout, -ENOENT for a deleted file ...).  For
 * tests (tests/unit/test_db_health.c): the writer needs no prompting, and
 * db_health_close() makes a last attempt of its own.
 */
int db_health_sync(db_health_t *h);
