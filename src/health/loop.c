/* SPDX-License-Identifier: MIT */
/* The health loop: its thread, the target set, probe scheduling and batched SQLite storage. */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "internal.h"

#define FLUSH_MS 1000		    /* one write transaction about once per second */
#define PRUNE_EVERY 60		    /* flushes between prunes of state changes: once a minute */
#define PRUNE_ROUND_S 600	    /* each target's old results are deleted at least this often */
#define PRUNE_BATCH_MIN 32	    /* targets pruned per flush, at least */
#define CHANGES_KEEP_S (30 * 86400) /* state changes are few; keep a month of them */
#define QUEUE_MAX 200000	    /* events kept while the database is locked */
#define REASON_CACHE 64		    /* probe reasons whose row ids are remembered */
#define BUSY_TIMEOUT_MS 1000

/* One row to write: a probe result, or a state change. */
typedef struct event {
	char *key;
	char *reason;
	int64_t target_id; /* the key's row in the target table, 0 until looked up */
	int64_t time_ms;
	int64_t since_ms;
	double latency_ms;
	bool is_change, ok, up, from_up;
	bool target_id_new; /* looked up by the flush under way (undone if it rolls back) */
} event_t;

/* A probe reason and its row id in the reason table. */
typedef struct reason_slot {
	char *text;
	int64_t id;
} reason_slot_t;

/*
 * The loop object.  Fields under "mu" are shared with the control thread;
 * the rest belong to the loop's thread once it runs (before that, to the
 * control thread).
 */
struct health_loop {
	lb_health_t *table;
	char *db_path;
	unsigned history_hours;
	SSL_CTX *tls;

	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t flush_timer;
	uv_thread_t thread;
	bool started, joined, closed;

	pthread_mutex_t mu;
	health_target_t **cur; /* under mu: the live set, sorted by key */
	size_t ncur;
	health_target_t **pending; /* under mu: the next set, sorted, not yet applied */
	size_t npending;
	bool have_pending, stop_req;
	sqlite3 *rdb; /* under mu: reads of stored states for new targets */
	bool rdb_tried;

	sqlite3 *db; /* the loop's own connection */
	sqlite3_stmt *ins_probe, *ins_change, *up_state, *del_probe, *del_change;
	sqlite3_stmt *sel_target, *ins_target, *sel_reason, *ins_reason, *prune_ids;
	sqlite3_stmt *del_gone_state, *del_gone_target;
	int64_t prune_cursor;		     /* the last target id whose results were pruned */
	reason_slot_t reasons[REASON_CACHE]; /* by hash of the text */
	bool db_broken;
	event_t *q;
	size_t nq, capq;
	unsigned ticks;
	size_t live; /* targets with handles not yet freed */
	uint64_t rng[2];
	health_event_cb obs;
	void *obs_arg;
	health_stats_t stats;
	char rbuf[HEALTH_READ_BUF];
};

char *health_loop_rbuf(struct health_loop *hl)
{
	return hl->rbuf;
}

SSL_CTX *health_loop_tls(struct health_loop *hl)
{
	return hl->tls;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Times are stored as Unix seconds (INTEGER); gslbctl prints them as RFC 3339. */
static sqlite3_int64 db_time(int64_t ms)
{
	return ms / 1000;
}

/* ---- targets ---- */

static void conf_free_strings(health_check_conf_t *c)
{
	free((char *)c->path);
	free((char *)c->host);
	free((char *)c->match);
	c->path = c->host = c->match = NULL;
}

static char *build_request(const health_check_conf_t *c, size_t *len)
{
	char host[INET6_ADDRSTRLEN + 16];
	const char *h = c->host;

	if (!h || !*h) {
		/* RFC 9110 7.2: no configured host, so name the address (and a non-default port). */
		char a[INET6_ADDRSTRLEN] = "";
		unsigned port;
		bool v6 = c->addr.ss_family == AF_INET6;
		if (v6) {
			const struct sockaddr_in6 *s6 = (const void *)&c->addr;
			inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
			port = ntohs(s6->sin6_port);
		} else {
			const struct sockaddr_in *s4 = (const void *)&c->addr;
			inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
			port = ntohs(s4->sin_port);
		}
		unsigned dflt = c->type == HEALTH_HTTPS ? 443 : 80;
		if (port == dflt)
			snprintf(host, sizeof(host), v6 ? "[%s]" : "%s", a);
		else
			snprintf(host, sizeof(host), v6 ? "[%s]:%u" : "%s:%u", a, port);
		h = host;
	}
	const char *path = c->path && *c->path ? c->path : "/";
	size_t n = strlen(path) + strlen(h) + 128;
	char *r = gslb_malloc(n);
	int k = snprintf(r, n,
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gslbd/%s\r\nAccept: */*\r\n"
			 "Connection: close\r\n\r\n",
			 path, h, PACKAGE_VERSION);
	*len = (size_t)k;
	return r;
}

static health_target_t *target_new(health_loop_t *hl, const health_target_conf_t *tc)
{
	health_target_t *t = gslb_calloc(1, sizeof(*t));
	char key[HEALTH_KEY_MAX];

	t->hl = hl;
	t->key = gslb_strdup(tc->key ? tc->key : health_target_key(&tc->check, key, sizeof(key)));
	t->index = tc->index;
	/* The settings the key names, so equal keys run alike. */
	t->check = tc->check;
	health_check_defaults(&t->check);
	t->check.path = t->check.path ? gslb_strdup(t->check.path) : NULL;
	t->check.host = t->check.host ? gslb_strdup(t->check.host) : NULL;
	t->check.match = t->check.match ? gslb_strdup(t->check.match) : NULL;
	if (t->check.type != HEALTH_TCP)
		t->request = build_request(&t->check, &t->request_len);
	t->content_length = -1;
	return t;
}

/* Free a target that has no live handles (never started, or all closed). */
static void target_free(health_target_t *t)
{
	if (!t)
		return;
	target_free(t->next_conf);
	conf_free_strings(&t->check);
	free(t->request);
	free(t->buf);
	if (t->ssl)
		SSL_free(t->ssl);
	health_probe_forget(t);
	free(t->key);
	free(t);
}

/* Whether a and b verify and name the server alike, so a TLS session of one serves the other. */
static bool tls_conf_same(const health_check_conf_t *a, const health_check_conf_t *b)
{
	return a->type == b->type && a->insecure == b->insecure &&
	       strcmp(a->host ? a->host : "", b->host ? b->host : "") == 0;
}

/*
 * Take the configuration of n (a newer copy of the same key); n is consumed.
 * A key names every setting (health_target_key()), so n runs as t did unless
 * the caller named its targets itself (health_target_conf_t.key); the copy
 * is taken all the same, so that whatever runs is what was given.
 */
static void target_take_conf(health_target_t *t, health_target_t *n)
{
	/* No session is resumed across a change of what TLS verifies (insecure, host name). */
	if (!tls_conf_same(&t->check, &n->check))
		health_probe_forget(t);
	conf_free_strings(&t->check);
	free(t->request);
	t->check = n->check;
	t->request = n->request;
	t->request_len = n->request_len;
	n->check.path = n->check.host = n->check.match = NULL;
	n->request = NULL;
	health_state_set_limits(&t->st, t->check.rise, t->check.fall);
	target_free(n);
}

void health_target_handle_closed(health_target_t *t)
{
	if (--t->nhandles == 0 && t->removed) {
		t->hl->live--;
		target_free(t);
	}
}

static void timer_close_cb(uv_handle_t *h)
{
	health_target_t *t = h->data;
	t->timer_live = false;
	health_target_handle_closed(t);
}

static void timer_cb(uv_timer_t *h)
{
	health_target_t *t = h->data;

	if (t->probing) {
		health_probe_timeout(t);
		return;
	}
	if (t->tcp_open) {
		/* The last connection is still closing; its handle is reused. */
		uv_timer_start(h, timer_cb, 5, 0);
		return;
	}
	if (t->next_conf) {
		health_target_t *n = t->next_conf;
		t->next_conf = NULL;
		target_take_conf(t, n);
	}
	health_probe_start(t);
	if (t->probing)
		uv_timer_start(h, timer_cb, t->check.timeout_ms, 0);
}

static uint64_t random_phase(health_loop_t *hl, uint32_t interval_ms)
{
	return interval_ms ? lb_rand(hl->rng) % interval_ms : 0;
}

static void target_remove(health_target_t *t)
{
	t->removed = true;
	health_probe_abort(t);
	if (t->timer_live && !uv_is_closing((uv_handle_t *)&t->timer))
		uv_close((uv_handle_t *)&t->timer, timer_close_cb);
}

static void queue_push(health_loop_t *hl, const event_t *ev)
{
	if (hl->nq == QUEUE_MAX) {
		/* The database has been locked for minutes: drop the oldest probe result. */
		for (size_t i = 0; i < hl->nq; i++) {
			if (!hl->q[i].is_change) {
				free(hl->q[i].key);
				free(hl->q[i].reason);
				memmove(&hl->q[i], &hl->q[i + 1],
					(hl->nq - i - 1) * sizeof(event_t));
				hl->nq--;
				break;
			}
		}
		if (hl->nq == QUEUE_MAX)
			return;
	}
	if (hl->nq == hl->capq) {
		hl->capq = hl->capq ? hl->capq * 2 : 256;
		hl->q = gslb_realloc(hl->q, hl->capq * sizeof(event_t));
	}
	event_t *e = &hl->q[hl->nq++];
	*e = *ev;
	e->key = gslb_strdup(ev->key);
	e->reason = gslb_strdup(ev->reason);
}

const double health_latency_bounds_s[HEALTH_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
};

/* Count a probe and its latency (negative: none measured, counted as 0) for the metrics. */
static void stats_probe(health_stats_t *st, bool ok, double latency_ms)
{
	const double *bounds = health_latency_bounds_s;
	double s = latency_ms > 0 ? latency_ms / 1000.0 : 0.0;
	size_t b = 0;
	while (b < HEALTH_LATENCY_BUCKETS && s > bounds[b])
		b++;
	atomic_fetch_add_explicit(&st->latency[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->latency_sum_us, (uint64_t)(s * 1e6 + 0.5),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&st->probes[ok], 1, memory_order_relaxed);
}

void health_loop_report(health_target_t *t, bool ok, double latency_ms, const char *reason)
{
	health_loop_t *hl = t->hl;
	int64_t now = wall_ms();
	bool was = t->st.up;
	bool changed = health_state_feed(&t->st, ok);

	stats_probe(&hl->stats, ok, latency_ms);
	if (changed) {
		atomic_fetch_add_explicit(&hl->stats.transitions[t->st.up], 1,
					  memory_order_relaxed);
		t->since_ms = now;
		atomic_store(&t->since_pub, now);
		atomic_store(&t->up_pub, t->st.up);
		lb_health_set(hl->table, t->index, t->st.up);
		log_info("health: %s is now %s: %s", t->key, t->st.up ? "up" : "down", reason);
	}
	event_t ev = {
		.key = t->key,
		.reason = (char *)reason,
		.target_id = t->store_id,
		.time_ms = now,
		.since_ms = t->since_ms,
		.latency_ms = latency_ms,
		.ok = ok,
		.up = t->st.up,
		.from_up = was,
	};
	queue_push(hl, &ev);
	if (hl->obs) {
		health_event_t oe = { .key = t->key,
				      .index = t->index,
				      .ok = ok,
				      .up = t->st.up,
				      .latency_ms = latency_ms,
				      .reason = reason,
				      .time_ms = now };
		hl->obs(&oe, hl->obs_arg);
		if (changed) {
			oe.is_change = true;
			hl->obs(&oe, hl->obs_arg);
		}
	}
	if (changed) {
		ev.is_change = true;
		queue_push(hl, &ev);
	}
	/* The next probe is one interval after this one started. */
	uint64_t spent = (uint64_t)latency_ms;
	uint64_t next = t->check.interval_ms > spent ? t->check.interval_ms - spent : 0;
	if (!t->removed && t->timer_live)
		uv_timer_start(&t->timer, timer_cb, next, 0);
}

static health_target_t *find_key(health_target_t **arr, size_t n, const char *key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, arr[mid]->key);
		if (c == 0)
			return arr[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Loop thread: make the pending set the live one. */
static void apply_pending(health_loop_t *hl)
{
	health_target_t **na, **old;
	size_t nn, no;

	pthread_mutex_lock(&hl->mu);
	if (!hl->have_pending) {
		pthread_mutex_unlock(&hl->mu);
		return;
	}
	na = hl->pending;
	nn = hl->npending;
	hl->pending = NULL;
	hl->npending = 0;
	hl->have_pending = false;
	old = hl->cur;
	no = hl->ncur;
	pthread_mutex_unlock(&hl->mu);

	/* Both sets are sorted by key: one merge walk pairs kept targets. */
	size_t i = 0, j = 0;
	while (i < no || j < nn) {
		int c = i == no ? 1 : j == nn ? -1 : strcmp(old[i]->key, na[j]->key);
		if (c < 0) {
			target_remove(old[i++]);
			continue;
		}
		if (c == 0) {
			health_target_t *t = old[i++], *n = na[j];
			uint32_t old_interval = t->check.interval_ms;
			t->index = n->index;
			target_free(t->next_conf);
			t->next_conf = NULL;
			if (t->probing || t->tcp_open) {
				t->next_conf = n;
				health_state_set_limits(&t->st, n->check.rise, n->check.fall);
			} else {
				target_take_conf(t, n);
				if (t->check.interval_ms != old_interval)
					uv_timer_start(&t->timer, timer_cb,
						       random_phase(hl, t->check.interval_ms), 0);
			}
			na[j++] = t;
		} else {
			health_target_t *t = na[j++];
			uv_timer_init(&hl->loop, &t->timer);
			t->timer.data = t;
			t->timer_live = true;
			t->nhandles = 1;
			hl->live++;
			uv_timer_start(&t->timer, timer_cb, random_phase(hl, t->check.interval_ms),
				       0);
		}
		/*
		 * The control thread published the state it saw; the loop may
		 * have changed it since, and only we know the current one.
		 */
		health_target_t *t = na[j - 1];
		lb_health_set(hl->table, t->index, t->st.up);
	}

	pthread_mutex_lock(&hl->mu);
	hl->cur = na;
	hl->ncur = nn;
	pthread_mutex_unlock(&hl->mu);
	free(old);
}

/* ---- storage ---- */

static void db_log(health_loop_t *hl, const char *what)
{
	log_err("health: database %s: %s: %s", hl->db_path, what, sqlite3_errmsg(hl->db));
}

/* The statements, by where their pointer lives in health_loop_t. */
static const struct {
	size_t off;
	const char *sql;
} statements[] = {
	{ offsetof(health_loop_t, ins_probe),
	  /* REPLACE: two results of one target in one millisecond keep the later. */
	  "INSERT OR REPLACE INTO probe_result(target_id, time_ms, ok, latency_us, reason_id) "
	  "VALUES(?1, ?2, ?3, ?4, ?5)" },
	{ offsetof(health_loop_t, ins_change),
	  "INSERT INTO state_change(time, target_id, from_state, to_state, reason) "
	  "VALUES(?1, ?2, ?3, ?4, ?5)" },
	{ offsetof(health_loop_t, up_state),
	  "INSERT INTO target_state(target_id, state, since, reason, last_probe, latency_ms) "
	  "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(target_id) DO UPDATE SET "
	  "state = excluded.state, since = excluded.since, reason = excluded.reason, "
	  "last_probe = excluded.last_probe, latency_ms = excluded.latency_ms" },
	{ offsetof(health_loop_t, del_probe),
	  "DELETE FROM probe_result WHERE target_id = ?1 AND time_ms < ?2" },
	{ offsetof(health_loop_t, del_change), "DELETE FROM state_change WHERE time < ?1" },
	{ offsetof(health_loop_t, sel_target), "SELECT id FROM target WHERE key = ?1" },
	{ offsetof(health_loop_t, ins_target), "INSERT INTO target(key) VALUES(?1)" },
	{ offsetof(health_loop_t, sel_reason), "SELECT id FROM reason WHERE text = ?1" },
	{ offsetof(health_loop_t, ins_reason), "INSERT INTO reason(text) VALUES(?1)" },
	{ offsetof(health_loop_t, prune_ids),
	  "SELECT id, key FROM target WHERE id > ?1 ORDER BY id LIMIT ?2" },
	/* A target no longer checked, once nothing of its history is left (see prune_results). */
	{ offsetof(health_loop_t, del_gone_state),
	  "DELETE FROM target_state WHERE target_id = ?1"
	  " AND NOT EXISTS (SELECT 1 FROM probe_result WHERE target_id = ?1)"
	  " AND NOT EXISTS (SELECT 1 FROM state_change WHERE target_id = ?1)" },
	{ offsetof(health_loop_t, del_gone_target),
	  "DELETE FROM target WHERE id = ?1"
	  " AND NOT EXISTS (SELECT 1 FROM probe_result WHERE target_id = ?1)"
	  " AND NOT EXISTS (SELECT 1 FROM state_change WHERE target_id = ?1)"
	  " AND NOT EXISTS (SELECT 1 FROM target_state WHERE target_id = ?1)" },
};

static sqlite3_stmt **statement(health_loop_t *hl, size_t i)
{
	return (sqlite3_stmt **)((char *)hl + statements[i].off);
}

static void db_finalize(health_loop_t *hl)
{
	for (size_t i = 0; i < ARRAY_SIZE(statements); i++) {
		sqlite3_finalize(*statement(hl, i));
		*statement(hl, i) = NULL;
	}
}

static int db_prepare(health_loop_t *hl)
{
	if (hl->ins_probe)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(statements); i++) {
		if (sqlite3_prepare_v2(hl->db, statements[i].sql, -1, statement(hl, i), NULL) !=
		    SQLITE_OK) {
			db_log(hl, "cannot prepare the health statements");
			db_finalize(hl);
			return -EINVAL;
		}
	}
	return 0;
}

static void queue_clear(health_loop_t *hl, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(hl->q[i].key);
		free(hl->q[i].reason);
	}
	if (n < hl->nq)
		memmove(hl->q, hl->q + n, (hl->nq - n) * sizeof(event_t));
	hl->nq -= n;
}

static int step(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

static const char *state_name(bool up)
{
	return up ? "up" : "down";
}

/* The row id of text in the target or reason table, made when missing; 0 on failure (logged). */
static int64_t row_id(health_loop_t *hl, sqlite3_stmt *sel, sqlite3_stmt *ins, const char *text)
{
	int64_t id = 0;

	sqlite3_bind_text(sel, 1, text, -1, SQLITE_STATIC);
	if (sqlite3_step(sel) == SQLITE_ROW)
		id = sqlite3_column_int64(sel, 0);
	sqlite3_reset(sel);
	if (id)
		return id;
	sqlite3_bind_text(ins, 1, text, -1, SQLITE_STATIC);
	if (step(ins)) {
		db_log(hl, ins == hl->ins_target ? "insert target" : "insert reason");
		return 0;
	}
	return sqlite3_last_insert_rowid(hl->db);
}

/*
 * The target id of e.  A live target keeps the id once known, so its later
 * results carry it and skip the lookup; only a target's first results (and
 * those of a target already removed) look the key up.
 */
static int64_t event_target(health_loop_t *hl, event_t *e)
{
	if (e->target_id)
		return e->target_id;
	e->target_id = row_id(hl, hl->sel_target, hl->ins_target, e->key);
	if (!e->target_id)
		return 0;
	e->target_id_new = true;
	health_target_t *t = find_key(hl->cur, hl->ncur, e->key);
	if (t)
		t->store_id = e->target_id;
	return e->target_id;
}

/* The reason id of text: nearly every result repeats one of a few, so a small cache answers. */
static int64_t reason_id(health_loop_t *hl, const char *text)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		h = (h ^ *p) * 16777619u;
	reason_slot_t *r = &hl->reasons[h % REASON_CACHE];
	if (r->text && strcmp(r->text, text) == 0)
		return r->id;
	int64_t id = row_id(hl, hl->sel_reason, hl->ins_reason, text);
	if (!id)
		return 0;
	free(r->text);
	r->text = gslb_strdup(text);
	r->id = id;
	return id;
}

/* The flush rolled back: the target and reason rows it made are gone, so are their ids. */
static void forget_new_ids(health_loop_t *hl)
{
	for (size_t i = 0; i < hl->nq; i++) {
		event_t *e = &hl->q[i];
		if (!e->target_id_new)
			continue;
		health_target_t *t = find_key(hl->cur, hl->ncur, e->key);
		if (t)
			t->store_id = 0;
		e->target_id = 0;
		e->target_id_new = false;
	}
	for (size_t i = 0; i < REASON_CACHE; i++) {
		free(hl->reasons[i].text);
		hl->reasons[i].text = NULL;
	}
}

static void write_event(health_loop_t *hl, event_t *e)
{
	sqlite3_stmt *s;
	int64_t tid = event_target(hl, e);

	if (!tid)
		return;
	if (e->is_change) {
		s = hl->ins_change;
		sqlite3_bind_int64(s, 1, db_time(e->time_ms));
		sqlite3_bind_int64(s, 2, tid);
		sqlite3_bind_text(s, 3, state_name(e->from_up), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, state_name(e->up), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, e->reason, -1, SQLITE_STATIC);
		if (step(s))
			db_log(hl, "insert state_change");
		return;
	}
	int64_t rid = e->reason ? reason_id(hl, e->reason) : 0;
	s = hl->ins_probe;
	sqlite3_bind_int64(s, 1, tid);
	sqlite3_bind_int64(s, 2, e->time_ms);
	sqlite3_bind_int(s, 3, e->ok);
	if (e->latency_ms >= 0)
		sqlite3_bind_int64(s, 4, (sqlite3_int64)(e->latency_ms * 1000.0 + 0.5));
	else
		sqlite3_bind_null(s, 4);
	if (rid)
		sqlite3_bind_int64(s, 5, rid);
	else
		sqlite3_bind_null(s, 5);
	if (step(s))
		db_log(hl, "insert probe_result");
	s = hl->up_state;
	sqlite3_bind_int64(s, 1, tid);
	sqlite3_bind_text(s, 2, state_name(e->up), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, db_time(e->since_ms));
	sqlite3_bind_text(s, 4, e->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, db_time(e->time_ms));
	sqlite3_bind_double(s, 6, e->latency_ms);
	if (step(s))
		db_log(hl, "update target_state");
}

/*
 * Delete the results older than --history of the next few targets.  Each
 * target's results are one range of the primary key, its oldest at the
 * start, so this is one short range delete per target.  A slice of the
 * targets per flush goes round all of them within PRUNE_ROUND_S (sooner
 * when they are few), in small steps rather than one long transaction.
 *
 * A target no longer checked (its member, address or check removed) goes
 * too, with its last state, once its last result and state change have aged
 * out: then `gslbctl history` has nothing left to show of it, and addresses
 * that come and go do not grow the file for ever.  This runs after the
 * flush wrote the queue, so a result of a target removed since is already
 * in probe_result and keeps the row; a target added again later looks its
 * key up anew.
 */
static void prune_results(health_loop_t *hl)
{
	int64_t cut = wall_ms() - (int64_t)hl->history_hours * 3600 * 1000;
	int64_t batch = (int64_t)(hl->ncur / (PRUNE_ROUND_S * 1000 / FLUSH_MS)) + PRUNE_BATCH_MIN;
	int64_t id = 0, n = 0;
	sqlite3_stmt *ids = hl->prune_ids;

	sqlite3_bind_int64(ids, 1, hl->prune_cursor);
	sqlite3_bind_int64(ids, 2, batch);
	while (sqlite3_step(ids) == SQLITE_ROW) {
		id = sqlite3_column_int64(ids, 0);
		n++;
		sqlite3_bind_int64(hl->del_probe, 1, id);
		sqlite3_bind_int64(hl->del_probe, 2, cut);
		if (step(hl->del_probe))
			db_log(hl, "prune probe_result");
		const char *key = (const char *)sqlite3_column_text(ids, 1);
		if (key && find_key(hl->cur, hl->ncur, key))
			continue;
		sqlite3_bind_int64(hl->del_gone_state, 1, id);
		if (step(hl->del_gone_state))
			db_log(hl, "prune target_state");
		sqlite3_bind_int64(hl->del_gone_target, 1, id);
		if (step(hl->del_gone_target))
			db_log(hl, "prune target");
	}
	sqlite3_reset(ids);
	hl->prune_cursor = n < batch ? 0 : id;
}

static void prune_changes(health_loop_t *hl)
{
	sqlite3_bind_int64(hl->del_change, 1, db_time(wall_ms()) - CHANGES_KEEP_S);
	if (step(hl->del_change))
		db_log(hl, "prune state_change");
}

static void flush(health_loop_t *hl, bool prune_now)
{
	int rc;

	if (!hl->db) {
		queue_clear(hl, hl->nq);
		return;
	}
	if (!hl->nq && !prune_now)
		return;
	if (db_prepare(hl) < 0) {
		/* Missing tables: not worth retrying every second, nor keeping the results. */
		queue_clear(hl, hl->nq);
		return;
	}
	rc = sqlite3_exec(hl->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		/* Locked past the busy timeout: keep the queue for the next second. */
		db_log(hl, "begin");
		return;
	}
	for (size_t i = 0; i < hl->nq; i++)
		write_event(hl, &hl->q[i]);
	prune_results(hl);
	if (prune_now)
		prune_changes(hl);
	rc = sqlite3_exec(hl->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		db_log(hl, "commit");
		sqlite3_exec(hl->db, "ROLLBACK", NULL, NULL, NULL);
		forget_new_ids(hl);
		return;
	}
	queue_clear(hl, hl->nq);
}

static void flush_cb(uv_timer_t *h)
{
	health_loop_t *hl = h->data;
	bool p = ++hl->ticks % PRUNE_EVERY == 1;
	flush(hl, p);
}

/* Control thread, under mu: the stored state of a target never seen by this process. */
static bool stored_state(health_loop_t *hl, const char *key, bool *up, int64_t *since_ms)
{
	sqlite3_stmt *s = NULL;
	bool found = false;

	if (!hl->db_path)
		return false;
	if (!hl->rdb && !hl->rdb_tried) {
		hl->rdb_tried = true;
		if (sqlite3_open_v2(hl->db_path, &hl->rdb, SQLITE_OPEN_READONLY, NULL) !=
		    SQLITE_OK) {
			sqlite3_close(hl->rdb);
			hl->rdb = NULL;
			return false;
		}
		sqlite3_busy_timeout(hl->rdb, BUSY_TIMEOUT_MS);
	}
	if (!hl->rdb)
		return false;
	if (sqlite3_prepare_v2(hl->rdb,
			       "SELECT s.state, s.since FROM target_state s "
			       "JOIN target t ON t.id = s.target_id WHERE t.key = ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *st = sqlite3_column_text(s, 0);
		*up = !st || strcmp((const char *)st, "down") != 0;
		*since_ms = sqlite3_column_int64(s, 1) * 1000;
		found = true;
	}
	sqlite3_finalize(s);
	return found;
}

/* ---- the loop ---- */

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

static void async_cb(uv_async_t *a)
{
	health_loop_t *hl = a->data;
	bool stop;

	apply_pending(hl);
	pthread_mutex_lock(&hl->mu);
	stop = hl->stop_req;
	pthread_mutex_unlock(&hl->mu);
	if (!stop || hl->closed)
		return;
	hl->closed = true;
	pthread_mutex_lock(&hl->mu);
	health_target_t **cur = hl->cur;
	size_t n = hl->ncur;
	hl->cur = NULL;
	hl->ncur = 0;
	pthread_mutex_unlock(&hl->mu);
	for (size_t i = 0; i < n; i++)
		target_remove(cur[i]);
	free(cur);
	flush(hl, false);
	uv_close((uv_handle_t *)&hl->flush_timer, close_cb);
	uv_close((uv_handle_t *)&hl->async, close_cb);
}

static void thread_main(void *arg)
{
	health_loop_t *hl = arg;

	pthread_setname_np(pthread_self(), "health");
	apply_pending(hl);
	uv_run(&hl->loop, UV_RUN_DEFAULT);
}

health_loop_t *health_loop_new(lb_health_t *table, const char *db_path, const char *ca_file,
			       unsigned history_hours)
{
	health_loop_t *hl = gslb_calloc(1, sizeof(*hl));

	hl->table = table;
	hl->history_hours = history_hours ? history_hours : 24;
	hl->rng[0] = uv_hrtime() ^ 0x9e3779b97f4a7c15ull;
	hl->rng[1] = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)hl;
	pthread_mutex_init(&hl->mu, NULL);
	hl->tls = health_tls_ctx_new(ca_file);
	if (!hl->tls)
		goto fail;
	if (db_path) {
		hl->db_path = gslb_strdup(db_path);
		if (sqlite3_open_v2(db_path, &hl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				    NULL) != SQLITE_OK) {
			log_err("health: cannot open database %s: %s", db_path,
				hl->db ? sqlite3_errmsg(hl->db) : "out of memory");
			goto fail;
		}
		sqlite3_busy_timeout(hl->db, BUSY_TIMEOUT_MS);
		sqlite3_exec(hl->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
		sqlite3_exec(hl->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	}
	int rc = uv_loop_init(&hl->loop);
	if (rc < 0) {
		log_err("health: cannot create the loop: %s", uv_strerror(rc));
		goto fail;
	}
	uv_async_init(&hl->loop, &hl->async, async_cb);
	hl->async.data = hl;
	uv_timer_init(&hl->loop, &hl->flush_timer);
	hl->flush_timer.data = hl;
	uv_timer_start(&hl->flush_timer, flush_cb, FLUSH_MS, FLUSH_MS);
	return hl;
fail:
	sqlite3_close(hl->db);
	if (hl->tls)
		SSL_CTX_free(hl->tls);
	free(hl->db_path);
	pthread_mutex_destroy(&hl->mu);
	free(hl);
	return NULL;
}

int health_loop_start(health_loop_t *hl)
{
	if (hl->started)
		return -EALREADY;
	int rc = uv_thread_create(&hl->thread, thread_main, hl);
	if (rc < 0)
		return rc;
	hl->started = true;
	return 0;
}

void health_loop_set_observer(health_loop_t *hl, health_event_cb cb, void *arg)
{
	hl->obs = cb;
	hl->obs_arg = arg;
}

const health_stats_t *health_loop_stats(const health_loop_t *hl)
{
	return &hl->stats;
}

void health_loop_targets_each(health_loop_t *hl, health_target_cb cb, void *arg)
{
	pthread_mutex_lock(&hl->mu);
	/* Only key (immutable) and up_pub (atomic) may be read here: the loop owns the rest. */
	for (size_t i = 0; i < hl->ncur; i++)
		cb(hl->cur[i]->key, atomic_load(&hl->cur[i]->up_pub), arg);
	pthread_mutex_unlock(&hl->mu);
}

typedef struct sort_item {
	health_target_t *t;
	size_t pos;
} sort_item_t;

static int item_cmp(const void *a, const void *b)
{
	const sort_item_t *x = a, *y = b;
	int c = strcmp(x->t->key, y->t->key);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Control thread, under mu: a current target whose key is pkey, or pkey
 * followed by settings (health_target_key()): a check of the same request.
 * The keys that start with pkey are adjacent in the sorted set, those
 * followed by nothing or a space first (no request holds a byte below a
 * space), so the walk stops at the first other one.
 */
static health_target_t *find_same_probe(health_target_t **arr, size_t n, const char *pkey)
{
	size_t plen = strlen(pkey), lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(arr[mid]->key, pkey) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && strncmp(arr[lo]->key, pkey, plen) == 0; lo++) {
		unsigned char c = (unsigned char)arr[lo]->key[plen];
		if (c == '\0' || c == ' ')
			return arr[lo];
		if (c > ' ')
			break;
	}
	return NULL;
}

/*
 * Control thread, under mu: the state a target new to this process starts
 * in (health_loop_set_targets() gives the order).  Only its settings may
 * have changed (a new key, as the settings are part of it), or gslbd was
 * upgraded from keys without settings: a dead site must stay down either way.
 */
static void start_state(health_loop_t *hl, const health_target_t *t, bool *up, int64_t *since)
{
	char pkey[HEALTH_KEY_MAX];

	if (stored_state(hl, t->key, up, since))
		return;
	health_probe_key(&t->check, pkey, sizeof(pkey));
	health_target_t *same = find_same_probe(hl->cur, hl->ncur, pkey);
	if (same) {
		*up = atomic_load(&same->up_pub);
		*since = atomic_load(&same->since_pub);
		return;
	}
	if (strcmp(pkey, t->key) != 0)
		stored_state(hl, pkey, up, since);
}

int health_loop_set_targets(health_loop_t *hl, const health_target_conf_t *targets, size_t n)
{
	sort_item_t *items = gslb_calloc(n ? n : 1, sizeof(*items));
	health_target_t **arr = gslb_calloc(n ? n : 1, sizeof(*arr));
	size_t m = 0;
	int64_t now = wall_ms();

	for (size_t i = 0; i < n; i++) {
		items[i].t = target_new(hl, &targets[i]);
		items[i].pos = i;
	}
	gslb_sort(items, n, sizeof(*items), item_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m && strcmp(arr[m - 1]->key, items[i].t->key) == 0)
			target_free(items[i].t); /* a duplicate key: the first one wins */
		else
			arr[m++] = items[i].t;
	}
	free(items);

	pthread_mutex_lock(&hl->mu);
	for (size_t i = 0; i < m; i++) {
		health_target_t *t = arr[i], *old = find_key(hl->cur, hl->ncur, t->key);
		bool up = true;
		int64_t since = now;
		if (old)
			up = atomic_load(&old->up_pub);
		else
			start_state(hl, t, &up, &since);
		health_state_init(&t->st, up, t->check.rise, t->check.fall);
		t->since_ms = since;
		atomic_store(&t->since_pub, since);
		atomic_store(&t->up_pub, up);
		lb_health_set(hl->table, t->index, up);
	}
	for (size_t i = 0; i < hl->npending; i++)
		target_free(hl->pending[i]);
	free(hl->pending);
	hl->pending = arr;
	hl->npending = m;
	hl->have_pending = true;
	pthread_mutex_unlock(&hl->mu);
	if (hl->started && !hl->joined)
		uv_async_send(&hl->async);
	return 0;
}

void health_loop_stop(health_loop_t *hl)
{
	if (!hl || !hl->started || hl->joined)
		return;
	pthread_mutex_lock(&hl->mu);
	hl->stop_req = true;
	pthread_mutex_unlock(&hl->mu);
	uv_async_send(&hl->async);
	uv_thread_join(&hl->thread);
	hl->joined = true;
}

void health_loop_free(health_loop_t *hl)
{
	if (!hl)
		return;
	if (hl->started) {
		health_loop_stop(hl);
	} else {
		/* Never ran: close the handles made by _new() on this thread. */
		hl->closed = true;
		uv_close((uv_handle_t *)&hl->flush_timer, close_cb);
		uv_close((uv_handle_t *)&hl->async, close_cb);
		uv_run(&hl->loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&hl->loop);
	for (size_t i = 0; i < hl->npending; i++)
		target_free(hl->pending[i]);
	free(hl->pending);
	free(hl->cur);
	queue_clear(hl, hl->nq);
	free(hl->q);
	db_finalize(hl);
	for (size_t i = 0; i < REASON_CACHE; i++)
		free(hl->reasons[i].text);
	sqlite3_close(hl->db);
	sqlite3_close(hl->rdb);
	SSL_CTX_free(hl->tls);
	free(hl->db_path);
	pthread_mutex_destroy(&hl->mu);
	free(hl);
}
