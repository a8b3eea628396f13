/* SPDX-License-Identifier: MIT */
/* Health storage: probe results and state changes written to the database by a thread of its own. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The health loop hands every probe result and state change to a
 * db_health_t and never waits for the database: a writer thread of the
 * store writes them about once a second, one transaction per batch, and
 * prunes the history as it goes (probe results older than history_hours,
 * state changes older than 30 days, targets no longer checked once nothing
 * of theirs is left).  While the database cannot be written (locked by
 * another process, disk full, file deleted) the records wait in memory and
 * are written when it can be again; past results_max waiting results the
 * oldest results are dropped and counted.  State changes wait in a queue of
 * their own, bounded at changes_max alike, so they are never dropped to make
 * room for results.  A failure is logged when it starts and when it ends,
 * not at every retry.
 */
typedef struct db_health db_health_t;

#define DB_HEALTH_RESULTS_MAX 200000 /* probe results kept while the database is not writable */
#define DB_HEALTH_CHANGES_MAX 100000 /* state changes kept while the database is not writable */

typedef struct db_health_conf {
	unsigned history_hours; /* probe results are kept this long; 0: 24 */
	size_t results_max;	/* 0: DB_HEALTH_RESULTS_MAX */
	size_t changes_max;	/* 0: DB_HEALTH_CHANGES_MAX */
} db_health_conf_t;

/* One probe result.  Strings are borrowed for the call. */
typedef struct db_health_result {
	const char *key;    /* the target key (health_target_key()) */
	const char *reason; /* "HTTP 200", "connect refused" ..., or NULL */
	int64_t time_ms;    /* Unix milliseconds */
	double latency_ms;  /* < 0: none measured */
	bool ok;
	bool up;	  /* the target's state after this result */
	int64_t since_ms; /* Unix milliseconds since when it is in that state */
	/*
	 * https: the notAfter (Unix seconds) of the certificate the target's last
	 * completed TLS handshake saw; 0 keeps the one stored (none seen yet).
	 */
	int64_t cert_not_after;
} db_health_result_t;

/* One state change.  Strings are borrowed for the call. */
typedef struct db_health_change {
	const char *key;
	const char *reason;
	int64_t time_ms; /* Unix milliseconds (stored in seconds) */
	bool from_up, up;
} db_health_change_t;

/**
 * Open the database at path (created when missing, as db_open() does;
 * it is not migrated: the health tables must be there by the first write)
 * and start the writer thread.  Returns 0 or the code of db_open(); *out
 * is closed with db_health_close().
 */
int db_health_open(const char *path, const db_health_conf_t *conf, db_health_t **out);

/**
 * Write what is waiting (one attempt, bounded by the busy timeout), stop the
 * writer thread and close.  Records still waiting after that are dropped,
 * counted and logged.  No other call may run on h during or after this.
 * NULL is a no-op.
 */
void db_health_close(db_health_t *h);

/**
 * Queue a probe result, or a state change, for the writer (copied).  Never
 * waits for the database: the queue's lock is held only to link a record.
 * Any thread.
 */
void db_health_result_add(db_health_t *h, const db_health_result_t *r);
void db_health_change_add(db_health_t *h, const db_health_change_t *c);

/**
 * The keys of the targets checked now (n of them, copied; any order).  The
 * writer remembers the row ids of these targets, and prunes a target row
 * only when its key is not among them.  Call it whenever the set changes.
 */
void db_health_targets_set(db_health_t *h, const char *const *keys, size_t n);

/**
 * The stored state of the target key: *up and *since_ms (Unix ms).  Read
 * on a read-only connection of its own (reopened when the file at the path
 * was replaced), so it never waits for the writer.  Returns 0, -ENOENT
 * when none is stored, or another negative code (the database could not
 * be read).  Any thread.
 */
int db_health_state_get(db_health_t *h, const char *key, bool *up, int64_t *since_ms);

/* What the store has done since it was opened, for the metrics. */
typedef struct db_health_stats {
	uint64_t results_dropped; /* probe results never written */
	uint64_t changes_dropped; /* state changes never written */
	uint64_t queued;	  /* results and changes waiting to be written */
} db_health_stats_t;

/** Read the counters (any thread; each field is read atomically on its own). */
void db_health_stats_get(const db_health_t *h, db_health_stats_t *st);
