/* SPDX-License-Identifier: MIT */
/* Health storage: probe results and state changes, queued and written by a thread of their own. */

/*
 * Design note.
 *
 * Threads.  Three kinds of caller touch a db_health_t:
 *
 *  - Producers (gslbd's health loop): db_health_result_add(),
 *    db_health_change_add() and db_health_targets_set().  They hold mu only
 *    to link a record into a queue, never across anything SQLite does, so
 *    a locked database cannot delay a probe.
 *  - The writer thread (writer_main()), started by db_health_open(): the
 *    only user of the write connection wdb, its statements, the target and
 *    reason id caches, the live set and the prune cursor.  SQLite's busy
 *    waits, a slow fsync and a full disk block this thread and nothing else.
 *  - Readers of stored states (db_health_state_get(), gslbd's control thread
 *    when targets are added): the read-only connection rdb, under rmu.
 *
 * db_health_sync() and db_health_stats_get() may be called from any thread,
 * db_health_close() by the owner once no producer calls any more.  Under mu:
 * the two queues, the next live set, the sync and stop requests and the
 * dropping flag.  The counters are atomics, read without a lock.
 *
 * The life cycle of a record (a probe result or a state change):
 *
 *   add --push()--> queued --take()--> in flight --attempt() commits--> written, freed
 *                     ^                    |
 *                     +-----put_back()-----+  (the attempt failed: ahead of newer records)
 *
 *   queued --push() or put_back() past the queue's bound--> dropped (the oldest), counted
 *   queued --db_health_close() after the last attempt--> dropped, counted
 *
 * The writer wakes every FLUSH_MS (at once for a sync or the stop), takes
 * both queues whole by swapping them with its own empty ones, and writes
 * them in one transaction with a slice of pruning.  A queue holds at most
 * its bound while the batch in flight is outside that count, so memory is
 * bounded by twice the bound.  Results are dropped to stay under
 * results_max; state changes have a queue and a bound of their own, so they
 * are never dropped to make room for results.
 *
 * The file at the path: before each batch the writer compares its device
 * and inode with those of the file it has open (file_check()).  Another
 * file there (a backup restored, a new file moved in) is opened instead,
 * with the ids forgotten; while the file is deleted nothing is written and
 * the queues wait, bounded, until a file is there again.
 *
 * Failures are logged by problem() when they start, and by cleared() once
 * a batch is written cleanly again: the writer retries every second, and
 * the log should not.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/db_health.h"
#include "internal.h"

#define FLUSH_MS 1000		    /* one write transaction about once per second */
#define PRUNE_EVERY 60		    /* batches between prunes of state changes: once a minute */
#define PRUNE_ROUND_S 600	    /* each target's old results are deleted at least this often */
#define PRUNE_BATCH_MIN 32	    /* targets pruned per batch, at least */
#define CHANGES_KEEP_S (30 * 86400) /* state changes are few; keep a month of them */
#define REASON_CACHE 64		    /* probe reasons whose row ids are remembered */
/*
 * How long the writer waits for another process's write lock per attempt.
 * Only the writer waits, so this bounds the stop (one last attempt) rather
 * than anything a probe sees; a lock held longer is retried the next second.
 */
#define WRITE_BUSY_MS 1000

/* A probe result or a state change; key and reason live in the same allocation. */
typedef struct rec {
	int64_t time_ms, since_ms;
	int64_t cert_not_after; /* results: Unix seconds, 0 for none */
	double latency_ms;
	bool ok, up, from_up;
	char *reason; /* NULL, or inside this allocation after key */
	char key[];
} rec_t;

/* A queue of records, oldest first: a ring of pointers whose size is a power of two. */
typedef struct ring {
	rec_t **v;
	size_t cap, head, n;
} ring_t;

/* A target checked now, and its row id in the target table (0 until known). */
typedef struct live {
	char *key;
	int64_t id;
} live_t;

/* A probe reason and its row id in the reason table. */
typedef struct reason_slot {
	char *text;
	int64_t id;
} reason_slot_t;

struct db_health {
	char *path;
	unsigned history_hours;
	size_t results_max, changes_max;

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* for the writer: a sync or the stop was asked for */
	pthread_cond_t done; /* for db_health_sync(): an attempt ended */
	/* under mu */
	ring_t results, changes;
	live_t *live_next; /* the set given by db_health_targets_set(), not yet taken */
	size_t nlive_next;
	bool have_live_next;
	uint64_t sync_req, sync_done; /* sync requests made, and the last one served */
	int sync_ret;
	bool stop;
	bool dropping[2]; /* [0] results, [1] changes dropped since a batch was written (logged) */

	/* the writer thread's (the opener's until it starts) */
	db_t *wdb;
	sqlite3_stmt *ins_probe, *ins_change, *up_state, *chg_state, *del_probe, *del_change;
	sqlite3_stmt *sel_target, *ins_target, *sel_reason, *ins_reason, *prune_ids;
	sqlite3_stmt *del_gone_state, *del_gone_target;
	ring_t wres, wchg; /* the batch in flight */
	live_t *live;	   /* sorted by key */
	size_t nlive;
	size_t *fresh; /* indexes in live of the ids the attempt under way inserted */
	size_t nfresh, capfresh;
	reason_slot_t reasons[REASON_CACHE]; /* by hash of the text */
	int64_t prune_cursor;		     /* the last target id whose results were pruned */
	unsigned ticks;
	char problem[512];     /* the failure last logged, "" while writes succeed */
	uint64_t dropped_mark; /* results_dropped at the last batch written cleanly */
	bool clean;	       /* no statement failed in the attempt under way */
	int abort_rc;	       /* a statement met a failure of the file, not of its row */

	/* readers, under rmu */
	pthread_mutex_t rmu;
	db_t *rdb;
	sqlite3_stmt *sel_state;

	_Atomic uint64_t results_dropped, changes_dropped, queued;
};

/* Times are stored as Unix seconds (INTEGER); gslbctl prints them as RFC 3339. */
static sqlite3_int64 db_time(int64_t ms)
{
	return ms / 1000;
}

/* ---- records and queues ---- */

static rec_t *rec_new(const char *key, const char *reason)
{
	size_t kl = strlen(key) + 1, rl = reason ? strlen(reason) + 1 : 0;
	rec_t *x = gslb_malloc(sizeof(*x) + kl + rl);

	memcpy(x->key, key, kl);
	x->reason = NULL;
	if (reason) {
		x->reason = x->key + kl;
		memcpy(x->reason, reason, rl);
	}
	return x;
}

static rec_t *ring_at(const ring_t *r, size_t i)
{
	return r->v[(r->head + i) & (r->cap - 1)];
}

static void ring_grow(ring_t *r)
{
	size_t cap = r->cap ? r->cap * 2 : 64;
	rec_t **v = gslb_malloc(cap * sizeof(*v));

	for (size_t i = 0; i < r->n; i++)
		v[i] = ring_at(r, i);
	free(r->v);
	r->v = v;
	r->cap = cap;
	r->head = 0;
}

static void ring_push_back(ring_t *r, rec_t *x)
{
	if (r->n == r->cap)
		ring_grow(r);
	r->v[(r->head + r->n++) & (r->cap - 1)] = x;
}

static void ring_push_front(ring_t *r, rec_t *x)
{
	if (r->n == r->cap)
		ring_grow(r);
	r->head = (r->head - 1) & (r->cap - 1);
	r->v[r->head] = x;
	r->n++;
}

static rec_t *ring_pop_front(ring_t *r)
{
	rec_t *x = r->v[r->head];
	r->head = (r->head + 1) & (r->cap - 1);
	r->n--;
	return x;
}

static rec_t *ring_pop_back(ring_t *r)
{
	return r->v[(r->head + --r->n) & (r->cap - 1)];
}

/* Free every record of r, keep its slots. */
static void ring_clear(ring_t *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(ring_at(r, i));
	r->n = 0;
	r->head = 0;
}

static void ring_swap(ring_t *a, ring_t *b)
{
	ring_t t = *a;
	*a = *b;
	*b = t;
}

/* Count n records of a queue (results or changes) dropped. */
static void count_dropped(db_health_t *h, bool change, uint64_t n)
{
	atomic_fetch_add_explicit(change ? &h->changes_dropped : &h->results_dropped, n,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&h->queued, n, memory_order_relaxed);
}

/*
 * Under mu: append x to q, dropping q's oldest record when q holds max.
 * Returns whether this began an episode of drops (for the caller to log,
 * outside the lock).
 */
static bool push(db_health_t *h, ring_t *q, size_t max, bool change, rec_t *x)
{
	bool first = false;

	atomic_fetch_add_explicit(&h->queued, 1, memory_order_relaxed);
	if (q->n >= max) {
		free(ring_pop_front(q));
		count_dropped(h, change, 1);
		first = !h->dropping[change];
		h->dropping[change] = true;
	}
	ring_push_back(q, x);
	return first;
}

static void log_drops(db_health_t *h, bool change, size_t max)
{
	log_warn("health: database %s: %zu %s wait to be written; the oldest are dropped from now "
		 "on (gslbd_health_%s_dropped_total)",
		 h->path, max, change ? "state changes" : "probe results",
		 change ? "changes" : "results");
}

/* Link x onto the queue of state changes or of probe results; a first drop is logged. */
static void enqueue(db_health_t *h, bool change, rec_t *x)
{
	size_t max = change ? h->changes_max : h->results_max;

	pthread_mutex_lock(&h->mu);
	bool first = push(h, change ? &h->changes : &h->results, max, change, x);
	pthread_mutex_unlock(&h->mu);
	if (first)
		log_drops(h, change, max);
}

void db_health_result_add(db_health_t *h, const db_health_result_t *r)
{
	rec_t *x = rec_new(r->key, r->reason);

	x->time_ms = r->time_ms;
	x->since_ms = r->since_ms;
	x->latency_ms = r->latency_ms;
	x->ok = r->ok;
	x->up = r->up;
	x->from_up = r->up;
	x->cert_not_after = r->cert_not_after;
	enqueue(h, false, x);
}

void db_health_change_add(db_health_t *h, const db_health_change_t *c)
{
	rec_t *x = rec_new(c->key, c->reason);

	x->time_ms = c->time_ms;
	x->since_ms = c->time_ms;
	x->latency_ms = -1;
	x->ok = c->up;
	x->up = c->up;
	x->from_up = c->from_up;
	x->cert_not_after = 0;
	enqueue(h, true, x);
}

/*
 * Under mu: the batch b of an attempt that failed goes back in front of q
 * (its records are older than any in q), as far as q's bound allows; the
 * oldest of them are dropped past it.  Returns whether this began an
 * episode of drops, as push() does.
 */
static bool put_back(db_health_t *h, ring_t *q, ring_t *b, size_t max, bool change)
{
	uint64_t dropped = 0;
	bool first = false;

	while (b->n) {
		rec_t *x = ring_pop_back(b);
		if (q->n >= max) {
			free(x);
			dropped++;
		} else {
			ring_push_front(q, x);
		}
	}
	b->head = 0;
	if (dropped) {
		count_dropped(h, change, dropped);
		first = !h->dropping[change];
		h->dropping[change] = true;
	}
	return first;
}

/* ---- the live set ---- */

static int live_cmp(const void *a, const void *b)
{
	return strcmp(((const live_t *)a)->key, ((const live_t *)b)->key);
}

static void live_free(live_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
}

void db_health_targets_set(db_health_t *h, const char *const *keys, size_t n)
{
	live_t *v = gslb_calloc(n ? n : 1, sizeof(*v)), *old;
	size_t m = 0, nold;
	bool had;

	for (size_t i = 0; i < n; i++)
		v[i].key = gslb_strdup(keys[i]);
	gslb_sort(v, n, sizeof(*v), live_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m && strcmp(v[m - 1].key, v[i].key) == 0)
			free(v[i].key);
		else
			v[m++] = v[i];
	}
	pthread_mutex_lock(&h->mu);
	old = h->live_next;
	nold = h->nlive_next;
	had = h->have_live_next;
	h->live_next = v;
	h->nlive_next = m;
	h->have_live_next = true;
	pthread_mutex_unlock(&h->mu);
	if (had)
		live_free(old, nold);
}

static live_t *live_find(live_t *v, size_t n, const char *key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, v[mid].key);
		if (c == 0)
			return &v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Writer: make the set v the live one, keeping the ids known of the keys in both. */
static void live_replace(db_health_t *h, live_t *v, size_t n)
{
	size_t i = 0, j = 0;

	while (i < h->nlive && j < n) {
		int c = strcmp(h->live[i].key, v[j].key);
		if (c == 0)
			v[j++].id = h->live[i++].id;
		else if (c < 0)
			i++;
		else
			j++;
	}
	live_free(h->live, h->nlive);
	h->live = v;
	h->nlive = n;
}

/* ---- the writer's connection ---- */

/* The statements, by where their pointer lives in db_health_t. */
static const struct {
	size_t off;
	const char *sql;
} statements[] = {
	{ offsetof(db_health_t, ins_probe),
	  /* REPLACE: two results of one target in one millisecond keep the later. */
	  "INSERT OR REPLACE INTO probe_result(target_id, time_ms, ok, latency_us, reason_id) "
	  "VALUES(?1, ?2, ?3, ?4, ?5)" },
	{ offsetof(db_health_t, ins_change),
	  "INSERT INTO state_change(time, target_id, from_state, to_state, reason) "
	  "VALUES(?1, ?2, ?3, ?4, ?5)" },
	/* A probe that saw no certificate (a failed handshake) keeps the one stored. */
	{ offsetof(db_health_t, up_state),
	  "INSERT INTO target_state(target_id, state, since, reason, last_probe, latency_ms, "
	  "cert_not_after) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(target_id) DO UPDATE SET "
	  "state = excluded.state, since = excluded.since, reason = excluded.reason, "
	  "last_probe = excluded.last_probe, latency_ms = excluded.latency_ms, "
	  "cert_not_after = coalesce(excluded.cert_not_after, target_state.cert_not_after)" },
	/*
	 * A change made by the other nodes' votes alone (a cluster node, README "Two or more
	 * nameservers") comes with no probe result: the state and its start are set here too.
	 */
	{ offsetof(db_health_t, chg_state),
	  "INSERT INTO target_state(target_id, state, since) VALUES(?1, ?2, ?3) "
	  "ON CONFLICT(target_id) DO UPDATE SET state = excluded.state, since = excluded.since" },
	{ offsetof(db_health_t, del_probe),
	  "DELETE FROM probe_result WHERE target_id = ?1 AND time_ms < ?2" },
	{ offsetof(db_health_t, del_change), "DELETE FROM state_change WHERE time < ?1" },
	{ offsetof(db_health_t, sel_target), "SELECT id FROM target WHERE key = ?1" },
	{ offsetof(db_health_t, ins_target), "INSERT INTO target(key) VALUES(?1)" },
	{ offsetof(db_health_t, sel_reason), "SELECT id FROM reason WHERE text = ?1" },
	{ offsetof(db_health_t, ins_reason), "INSERT INTO reason(text) VALUES(?1)" },
	{ offsetof(db_health_t, prune_ids),
	  "SELECT id, key FROM target WHERE id > ?1 ORDER BY id LIMIT ?2" },
	/* A target no longer checked, once nothing of its history is left (see prune_results). */
	{ offsetof(db_health_t, del_gone_state),
	  "DELETE FROM target_state WHERE target_id = ?1"
	  " AND NOT EXISTS (SELECT 1 FROM probe_result WHERE target_id = ?1)"
	  " AND NOT EXISTS (SELECT 1 FROM state_change WHERE target_id = ?1)" },
	{ offsetof(db_health_t, del_gone_target),
	  "DELETE FROM target WHERE id = ?1"
	  " AND NOT EXISTS (SELECT 1 FROM probe_result WHERE target_id = ?1)"
	  " AND NOT EXISTS (SELECT 1 FROM state_change WHERE target_id = ?1)"
	  " AND NOT EXISTS (SELECT 1 FROM target_state WHERE target_id = ?1)" },
};

static sqlite3_stmt **statement(db_health_t *h, size_t i)
{
	return (sqlite3_stmt **)((char *)h + statements[i].off);
}

/* SQLite's result code as ours (the message goes to the log). */
static int code(int rc)
{
	return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : db__code(rc);
}

/*
 * Writer: log a failure unless it is the one logged last; a failure that
 * keeps the batch (keep) says the results wait.  The writer retries every
 * second: the same failure is logged when it starts and by cleared() when
 * it ends, not at every retry.
 */
static void problem(db_health_t *h, bool keep, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(db_health_t *h, bool keep, const char *fmt, ...)
{
	char what[sizeof(h->problem)];
	va_list ap;

	h->clean = false;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (strcmp(what, h->problem) == 0)
		return;
	memcpy(h->problem, what, sizeof(what));
	if (keep)
		log_err("health: database %s: %s; the health results wait in memory (at most %zu) "
			"and are written when this clears",
			h->path, what, h->results_max);
	else
		log_err("health: database %s: %s", h->path, what);
}

/* Writer: a batch was written with no failure; say so if a failure was logged. */
static void cleared(db_health_t *h)
{
	uint64_t dropped = atomic_load_explicit(&h->results_dropped, memory_order_relaxed);
	uint64_t lost = dropped - h->dropped_mark;

	h->dropped_mark = dropped;
	if (!h->problem[0])
		return;
	h->problem[0] = '\0';
	log_info("health: database %s: health results written again (%" PRIu64
		 " probe results dropped meanwhile)",
		 h->path, lost);
}

/* problem() with SQLite's message; returns our code for rc. */
static int fail(db_health_t *h, bool keep, int rc, const char *what)
{
	problem(h, keep, "%s: %s", what, sqlite3_errmsg(h->wdb->h));
	return code(rc);
}

/* Writer: forget every id learned from the file (it was replaced, or a write rolled back). */
static void forget_ids(db_health_t *h)
{
	for (size_t i = 0; i < h->nlive; i++)
		h->live[i].id = 0;
	for (size_t i = 0; i < REASON_CACHE; i++) {
		free(h->reasons[i].text);
		h->reasons[i].text = NULL;
	}
	h->nfresh = 0;
	h->prune_cursor = 0;
}

static void finalize_all(db_health_t *h)
{
	for (size_t i = 0; i < ARRAY_SIZE(statements); i++) {
		sqlite3_finalize(*statement(h, i));
		*statement(h, i) = NULL;
	}
}

static int prepare_all(db_health_t *h)
{
	if (h->ins_probe)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(statements); i++) {
		int rc = sqlite3_prepare_v2(h->wdb->h, statements[i].sql, -1, statement(h, i),
					    NULL);
		if (rc != SQLITE_OK) {
			int ret = fail(h, true, rc, "cannot prepare the health statements");
			finalize_all(h);
			return ret;
		}
	}
	return 0;
}

/* Open the write connection; the caller has checked the file is at the path. */
/* Writer: the settings of the write connection, set again on each connection it opens. */
static void writer_tune(db_health_t *h)
{
	sqlite3 *s = h->wdb->h;
	sqlite3_busy_timeout(s, WRITE_BUSY_MS);
	/* WAL with NORMAL: a commit is durable at the next checkpoint, enough for history. */
	sqlite3_exec(s, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
}

static int writer_open(db_health_t *h, unsigned flags)
{
	int ret = db_open(h->path, flags, &h->wdb);
	if (ret == 0)
		writer_tune(h);
	return ret;
}

static void writer_close(db_health_t *h)
{
	finalize_all(h);
	db_close(h->wdb);
	h->wdb = NULL;
}

/*
 * Writer: make sure the connection is to the file now at the path.  A file
 * deleted (or moved away) keeps the batch waiting; another file there is
 * opened in place of the old one with db_reopen(), which first removes the
 * -wal and -shm the old file left at the path (a plain close and open
 * would pair the new file with them), and the old file's ids mean nothing
 * in it.
 */
static int file_check(db_health_t *h)
{
	int ret;

	if (!h->wdb) {
		ret = writer_open(h, 0);
		if (ret < 0) {
			problem(h, true, "cannot open: %s", gslb_strerror(ret));
			return ret;
		}
	}
	ret = db_file_check(h->wdb, NULL);
	if (ret == DB_FILE_SAME)
		return 0;
	if (ret == DB_FILE_DELETED) {
		db_stale_remove(h->wdb);
		problem(h, true, "the file was deleted");
		return -ENOENT;
	}
	if (ret < 0) {
		problem(h, true, "cannot examine the file: %s", gslb_strerror(ret));
		return ret;
	}
	log_warn("health: database %s: another file is at the path now; writing to it", h->path);
	finalize_all(h);
	forget_ids(h);
	ret = db_reopen(&h->wdb, 0);
	if (ret < 0) {
		problem(h, true, "cannot open: %s", gslb_strerror(ret));
		return ret;
	}
	writer_tune(h);
	return 0;
}

/* ---- writing a batch ---- */

/*
 * Whether rc is a failure of the file or the system (disk full, I/O error,
 * a lock) rather than of the row written: the whole batch is then kept for
 * the next attempt, where a row that breaks a constraint is only skipped.
 */
static bool file_failure(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_NOMEM:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_READONLY:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_CANTOPEN:
		return true;
	default:
		return false;
	}
}

/* Step a statement that returns no row (or whose row is not wanted); false on failure (logged). */
static bool run(db_health_t *h, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	bool ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
	if (!ok) {
		bool file = file_failure(rc);
		fail(h, file, rc, what);
		if (file && !h->abort_rc)
			h->abort_rc = rc;
	}
	sqlite3_reset(s);
	return ok;
}

static const char *state_name(bool up)
{
	return up ? "up" : "down";
}

/*
 * The row id of text in the target or reason table, made when missing
 * (*made set); 0 on failure (logged).
 */
static int64_t row_id(db_health_t *h, sqlite3_stmt *sel, sqlite3_stmt *ins, const char *text,
		      bool *made)
{
	int64_t id = 0;

	*made = false;
	sqlite3_bind_text(sel, 1, text, -1, SQLITE_STATIC);
	if (sqlite3_step(sel) == SQLITE_ROW)
		id = sqlite3_column_int64(sel, 0);
	sqlite3_reset(sel);
	if (id)
		return id;
	sqlite3_bind_text(ins, 1, text, -1, SQLITE_STATIC);
	if (!run(h, ins, ins == h->ins_target ? "insert target" : "insert reason"))
		return 0;
	*made = true;
	return sqlite3_last_insert_rowid(h->wdb->h);
}

/*
 * The target id of key.  A live target keeps its id once known, so its later
 * results skip the lookup; only a target's first results (and those of a
 * target removed since) look the key up.  An id the attempt under way made
 * is undone if it rolls back (forget_fresh()).
 */
static int64_t target_id(db_health_t *h, const char *key)
{
	live_t *l = live_find(h->live, h->nlive, key);
	bool made;

	if (l && l->id)
		return l->id;
	int64_t id = row_id(h, h->sel_target, h->ins_target, key, &made);
	if (!id || !l)
		return id;
	l->id = id;
	if (made) {
		if (h->nfresh == h->capfresh) {
			h->capfresh = h->capfresh ? h->capfresh * 2 : 64;
			h->fresh = gslb_realloc(h->fresh, h->capfresh * sizeof(*h->fresh));
		}
		h->fresh[h->nfresh++] = (size_t)(l - h->live);
	}
	return id;
}

/* A write of key failed: its id may be stale (the row deleted by another process), look again. */
static void target_forget(db_health_t *h, const char *key)
{
	live_t *l = live_find(h->live, h->nlive, key);
	if (l)
		l->id = 0;
}

/* The reason id of text: nearly every result repeats one of a few, so a small cache answers. */
static int64_t reason_id(db_health_t *h, const char *text)
{
	reason_slot_t *r = &h->reasons[gslb_hash(text, strlen(text)) % REASON_CACHE];
	bool made;

	if (r->text && strcmp(r->text, text) == 0)
		return r->id;
	int64_t id = row_id(h, h->sel_reason, h->ins_reason, text, &made);
	if (!id)
		return 0;
	free(r->text);
	r->text = gslb_strdup(text);
	r->id = id;
	return id;
}

/* The write rolled back: the target and reason rows it made are gone, so are their ids. */
static void forget_fresh(db_health_t *h)
{
	for (size_t i = 0; i < h->nfresh; i++)
		h->live[h->fresh[i]].id = 0;
	h->nfresh = 0;
	for (size_t i = 0; i < REASON_CACHE; i++) {
		free(h->reasons[i].text);
		h->reasons[i].text = NULL;
	}
}

static void write_result(db_health_t *h, const rec_t *x)
{
	sqlite3_stmt *s;
	int64_t tid = target_id(h, x->key);

	if (!tid)
		return;
	int64_t rid = x->reason ? reason_id(h, x->reason) : 0;
	s = h->ins_probe;
	sqlite3_bind_int64(s, 1, tid);
	sqlite3_bind_int64(s, 2, x->time_ms);
	sqlite3_bind_int(s, 3, x->ok);
	if (x->latency_ms >= 0)
		sqlite3_bind_int64(s, 4, (sqlite3_int64)(x->latency_ms * 1000.0 + 0.5));
	else
		sqlite3_bind_null(s, 4);
	if (rid)
		sqlite3_bind_int64(s, 5, rid);
	else
		sqlite3_bind_null(s, 5);
	if (!run(h, s, "insert probe_result")) {
		target_forget(h, x->key);
		return;
	}
	s = h->up_state;
	sqlite3_bind_int64(s, 1, tid);
	sqlite3_bind_text(s, 2, state_name(x->up), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, db_time(x->since_ms));
	sqlite3_bind_text(s, 4, x->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, db_time(x->time_ms));
	sqlite3_bind_double(s, 6, x->latency_ms);
	if (x->cert_not_after)
		sqlite3_bind_int64(s, 7, x->cert_not_after);
	else
		sqlite3_bind_null(s, 7);
	run(h, s, "update target_state");
}

static void write_change(db_health_t *h, const rec_t *x)
{
	sqlite3_stmt *s = h->ins_change;
	int64_t tid = target_id(h, x->key);

	if (!tid)
		return;
	sqlite3_bind_int64(s, 1, db_time(x->time_ms));
	sqlite3_bind_int64(s, 2, tid);
	sqlite3_bind_text(s, 3, state_name(x->from_up), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, state_name(x->up), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, x->reason, -1, SQLITE_STATIC);
	if (!run(h, s, "insert state_change")) {
		target_forget(h, x->key);
		return;
	}
	s = h->chg_state;
	sqlite3_bind_int64(s, 1, tid);
	sqlite3_bind_text(s, 2, state_name(x->up), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, db_time(x->time_ms));
	run(h, s, "update target_state");
}

/*
 * Delete the results older than history_hours of the next few targets.
 * Each target's results are one range of the primary key, its oldest at the
 * start, so this is one short range delete per target.  A slice of the
 * targets per batch goes round all of them within PRUNE_ROUND_S (sooner
 * when they are few), in small steps rather than one long transaction.
 *
 * A target no longer checked (its member, address or check removed) goes
 * too, with its last state, once its last result and state change have aged
 * out: then `gslbctl history` has nothing left to show of it, and addresses
 * that come and go do not grow the file for ever.  This runs after the
 * batch was written, so a result of a target removed since is already in
 * probe_result and keeps the row; a target added again later looks its key
 * up anew.
 */
static void prune_results(db_health_t *h)
{
	int64_t cut = gslb_wall_ms() - (int64_t)h->history_hours * 3600 * 1000;
	int64_t batch = (int64_t)(h->nlive / (PRUNE_ROUND_S * 1000 / FLUSH_MS)) + PRUNE_BATCH_MIN;
	int64_t id = 0, n = 0;
	sqlite3_stmt *ids = h->prune_ids;

	sqlite3_bind_int64(ids, 1, h->prune_cursor);
	sqlite3_bind_int64(ids, 2, batch);
	while (!h->abort_rc && sqlite3_step(ids) == SQLITE_ROW) {
		id = sqlite3_column_int64(ids, 0);
		n++;
		sqlite3_bind_int64(h->del_probe, 1, id);
		sqlite3_bind_int64(h->del_probe, 2, cut);
		run(h, h->del_probe, "prune probe_result");
		const char *key = (const char *)sqlite3_column_text(ids, 1);
		if (key && live_find(h->live, h->nlive, key))
			continue;
		sqlite3_bind_int64(h->del_gone_state, 1, id);
		run(h, h->del_gone_state, "prune target_state");
		sqlite3_bind_int64(h->del_gone_target, 1, id);
		run(h, h->del_gone_target, "prune target");
	}
	sqlite3_reset(ids);
	h->prune_cursor = n < batch ? 0 : id;
}

static void prune_changes(db_health_t *h)
{
	sqlite3_bind_int64(h->del_change, 1, db_time(gslb_wall_ms()) - CHANGES_KEEP_S);
	run(h, h->del_change, "prune state_change");
}

/*
 * Writer: write the batch in flight (wres, wchg) and a slice of pruning in
 * one transaction.  Returns 0 when it committed (a statement that failed on
 * its row, a constraint, is logged and the row skipped, as a retry would
 * fail alike), or the failure that kept the batch from being written.
 */
static int attempt(db_health_t *h, bool prune_changes_now, bool prune)
{
	int ret, rc;

	h->clean = true;
	h->abort_rc = 0;
	ret = file_check(h);
	if (ret < 0)
		return ret;
	ret = prepare_all(h);
	if (ret < 0)
		return ret;
	sqlite3 *s = h->wdb->h;
	rc = sqlite3_exec(s, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return fail(h, true, rc, "cannot begin a write");
	h->nfresh = 0;
	for (size_t i = 0; i < h->wres.n && !h->abort_rc; i++)
		write_result(h, ring_at(&h->wres, i));
	for (size_t i = 0; i < h->wchg.n && !h->abort_rc; i++)
		write_change(h, ring_at(&h->wchg, i));
	if (prune && !h->abort_rc)
		prune_results(h);
	if (prune_changes_now && !h->abort_rc)
		prune_changes(h);
	rc = h->abort_rc ? h->abort_rc : sqlite3_exec(s, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = h->abort_rc ? code(rc) : fail(h, true, rc, "cannot commit");
		/* Harmless when SQLite rolled back already (it may, on a full disk). */
		sqlite3_exec(s, "ROLLBACK", NULL, NULL, NULL);
		forget_fresh(h);
		return ret;
	}
	h->nfresh = 0;
	if (h->clean)
		cleared(h);
	return 0;
}

/*
 * Writer, under mu: take both queues whole, swapped with the writer's empty
 * ones, and the live set given since the last batch (returns whether there
 * is one, in *live).
 */
static bool take(db_health_t *h, live_t **live, size_t *nlive)
{
	bool have = h->have_live_next;

	*live = h->live_next;
	*nlive = h->nlive_next;
	h->live_next = NULL;
	h->nlive_next = 0;
	h->have_live_next = false;
	ring_swap(&h->results, &h->wres);
	ring_swap(&h->changes, &h->wchg);
	return have;
}

static void *writer_main(void *arg)
{
	db_health_t *h = arg;
	uint64_t next = gslb_mono_ms() + FLUSH_MS;
	bool last = false;

	pthread_setname_np(pthread_self(), "health-db");
	while (!last) {
		live_t *live;
		size_t nlive;

		pthread_mutex_lock(&h->mu);
		while (!h->stop && h->sync_req == h->sync_done && gslb_mono_ms() < next) {
			struct timespec ts = { .tv_sec = (time_t)(next / 1000),
					       .tv_nsec = (long)(next % 1000) * 1000000 };
			pthread_cond_timedwait(&h->wake, &h->mu, &ts);
		}
		last = h->stop;
		uint64_t seq = h->sync_req;
		bool have_live = take(h, &live, &nlive);
		pthread_mutex_unlock(&h->mu);

		if (have_live)
			live_replace(h, live, nlive);
		/* The last attempt, at the stop, only writes what waits. */
		bool prune_changes_now = ++h->ticks % PRUNE_EVERY == 1 && !last;
		uint64_t start = gslb_mono_ms();
		size_t n = h->wres.n + h->wchg.n;
		int ret = n || prune_changes_now ? attempt(h, prune_changes_now, !last) : 0;
		/*
		 * A failed attempt pauses a whole FLUSH_MS before the next, so
		 * a lock held for long is not retried back to back, and the
		 * records wait under their queue's bound rather than in flight.
		 */
		next = (ret < 0 ? gslb_mono_ms() : start) + FLUSH_MS;
		if (ret == 0) {
			ring_clear(&h->wres);
			ring_clear(&h->wchg);
			atomic_fetch_sub_explicit(&h->queued, n, memory_order_relaxed);
		}

		bool res_first = false, chg_first = false;
		pthread_mutex_lock(&h->mu);
		if (ret < 0) {
			res_first = put_back(h, &h->results, &h->wres, h->results_max, false);
			chg_first = put_back(h, &h->changes, &h->wchg, h->changes_max, true);
		} else if (n) {
			h->dropping[0] = h->dropping[1] = false;
		}
		h->sync_done = seq;
		h->sync_ret = ret;
		pthread_cond_broadcast(&h->done);
		pthread_mutex_unlock(&h->mu);
		if (res_first)
			log_drops(h, false, h->results_max);
		if (chg_first)
			log_drops(h, true, h->changes_max);
	}
	return NULL;
}

/* ---- the API ---- */

/*
 * Free h and everything it holds, once no writer thread runs (joined, or
 * never started: what db_health_open() had not made yet is still zero).
 */
static void health_free(db_health_t *h)
{
	writer_close(h);
	if (h->have_live_next)
		live_free(h->live_next, h->nlive_next);
	live_free(h->live, h->nlive);
	free(h->fresh);
	for (size_t i = 0; i < REASON_CACHE; i++)
		free(h->reasons[i].text);
	sqlite3_finalize(h->sel_state);
	db_close(h->rdb);
	pthread_cond_destroy(&h->wake);
	pthread_cond_destroy(&h->done);
	pthread_mutex_destroy(&h->mu);
	pthread_mutex_destroy(&h->rmu);
	free(h->path);
	free(h);
}

int db_health_open(const char *path, const db_health_conf_t *conf, db_health_t **out)
{
	db_health_t *h = gslb_calloc(1, sizeof(*h));
	pthread_condattr_t ca;
	int ret;

	*out = NULL;
	h->path = gslb_strdup(path);
	h->history_hours = conf && conf->history_hours ? conf->history_hours : 24;
	h->results_max = conf && conf->results_max ? conf->results_max : DB_HEALTH_RESULTS_MAX;
	h->changes_max = conf && conf->changes_max ? conf->changes_max : DB_HEALTH_CHANGES_MAX;
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->rmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->wake, &ca);
	pthread_cond_init(&h->done, &ca);
	pthread_condattr_destroy(&ca);

	ret = writer_open(h, DB_OPEN_CREATE);
	if (ret < 0)
		goto fail;
	ret = -pthread_create(&h->thread, NULL, writer_main, h);
	if (ret < 0)
		goto fail;
	*out = h;
	return 0;
fail:
	health_free(h);
	return ret;
}

int db_health_sync(db_health_t *h)
{
	int ret;

	pthread_mutex_lock(&h->mu);
	uint64_t seq = ++h->sync_req;
	pthread_cond_signal(&h->wake);
	while (h->sync_done < seq)
		pthread_cond_wait(&h->done, &h->mu);
	ret = h->sync_ret;
	pthread_mutex_unlock(&h->mu);
	return ret;
}

void db_health_close(db_health_t *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);

	size_t nr = h->results.n, nc = h->changes.n;
	if (nr || nc) {
		log_err("health: database %s: %zu probe results and %zu state changes could not be "
			"written before the stop",
			h->path, nr, nc);
		count_dropped(h, false, nr);
		count_dropped(h, true, nc);
	}
	ring_t *rings[] = { &h->results, &h->changes, &h->wres, &h->wchg };
	for (size_t i = 0; i < ARRAY_SIZE(rings); i++) {
		ring_clear(rings[i]);
		free(rings[i]->v);
	}
	health_free(h);
}

void db_health_stats_get(const db_health_t *h, db_health_stats_t *st)
{
	db_health_t *m = (db_health_t *)h; /* atomic loads of a const object */

	st->results_dropped = atomic_load_explicit(&m->results_dropped, memory_order_relaxed);
	st->changes_dropped = atomic_load_explicit(&m->changes_dropped, memory_order_relaxed);
	st->queued = atomic_load_explicit(&m->queued, memory_order_relaxed);
}

/* ---- reading stored states ---- */

/* Under rmu: a read-only connection to the file now at the path (see file_check()). */
static int reader_check(db_health_t *h)
{
	int ret;

	if (!h->rdb)
		return db_open(h->path, DB_OPEN_READONLY, &h->rdb);
	ret = db_file_check(h->rdb, NULL);
	if (ret == DB_FILE_SAME)
		return 0;
	if (ret == DB_FILE_DELETED)
		return -ENOENT;
	if (ret < 0)
		return ret;
	sqlite3_finalize(h->sel_state);
	h->sel_state = NULL;
	return db_reopen(&h->rdb, DB_OPEN_READONLY);
}

int db_health_state_get(db_health_t *h, const char *key, bool *up, int64_t *since_ms)
{
	int ret, rc;

	pthread_mutex_lock(&h->rmu);
	ret = reader_check(h);
	if (ret < 0)
		goto out;
	sqlite3 *s = h->rdb->h;
	if (!h->sel_state) {
		rc = sqlite3_prepare_v2(s,
					"SELECT s.state, s.since FROM target_state s "
					"JOIN target t ON t.id = s.target_id WHERE t.key = ?1",
					-1, &h->sel_state, NULL);
		if (rc != SQLITE_OK) {
			/* No health tables yet (a file not migrated): every target starts up. */
			log_debug("health: database %s: cannot read stored states: %s", h->path,
				  sqlite3_errmsg(s));
			ret = code(rc);
			goto out;
		}
	}
	sqlite3_bind_text(h->sel_state, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(h->sel_state);
	if (rc == SQLITE_ROW) {
		const unsigned char *st = sqlite3_column_text(h->sel_state, 0);
		*up = !st || strcmp((const char *)st, "down") != 0;
		*since_ms = sqlite3_column_int64(h->sel_state, 1) * 1000;
		ret = 0;
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT : code(rc);
	}
	sqlite3_reset(h->sel_state);
out:
	pthread_mutex_unlock(&h->rmu);
	return ret;
}
