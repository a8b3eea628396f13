/* SPDX-License-Identifier: MIT */
/* The health loop: its thread, the target set and probe scheduling; storage is src/db's. */

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/db_health.h"
#include "internal.h"

/*
 * The other nodes' votes by target key (cluster mode), whether the loop probes the key or not
 * yet: a key with no vote left has no entry.  The loop's thread only.
 */
typedef struct vote_entry {
	struct vote_entry *next;
	uint32_t hash;
	health_votes_t v;
	char key[];
} vote_entry_t;

typedef struct vote_map {
	vote_entry_t **b; /* nb buckets, a power of two (or none yet) */
	size_t nb, n;
} vote_map_t;

/* A vote, or a clearing of votes (key NULL), waiting for the loop's thread. */
typedef struct vote_op {
	char *key;
	int slot;
	enum health_vote vote;
} vote_op_t;

/*
 * The loop object.  Fields under "mu" are shared with the control thread;
 * the rest belong to the loop's thread once it runs (before that, to the
 * control thread).
 */
struct health_loop {
	lb_health_t *table;
	SSL_CTX *tls;
	/*
	 * Probe results and state changes go to the store's queue; its own
	 * thread writes them, so the database never delays a probe.  NULL
	 * without a database.  Closed by health_loop_stop().
	 */
	db_health_t *store;

	uv_loop_t loop;
	uv_async_t async;
	uv_thread_t thread;
	bool started, joined, closed;

	pthread_mutex_t mu;
	health_target_t **cur; /* under mu: the live set, sorted by key */
	size_t ncur;
	health_target_t **pending; /* under mu: the next set, sorted, not yet applied */
	size_t npending;
	bool have_pending, stop_req;
	vote_op_t *ops; /* under mu: votes in the order given, not yet applied */
	size_t nops, cap_ops;
	bool cluster; /* under mu until start, then read-only */

	health_verdict_cb verdict_cb; /* cluster: this node's own verdicts go here */
	void *verdict_arg;
	vote_map_t votes;

	size_t live; /* targets with handles not yet freed */
	uint64_t rng[2];
	health_event_cb obs;
	void *obs_arg;
	health_stats_t stats;
	_Atomic unsigned cert_warn_days; /* health_loop_set_cert_warn() */
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
	return interval_ms ? gslb_rand(hl->rng) % interval_ms : 0;
}

static void target_remove(health_target_t *t)
{
	t->removed = true;
	health_probe_abort(t);
	if (t->timer_live && !uv_is_closing((uv_handle_t *)&t->timer))
		uv_close((uv_handle_t *)&t->timer, timer_close_cb);
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

/* ---- the other nodes' votes ---- */

static vote_entry_t **vm_slot(vote_map_t *m, const char *key, uint32_t hash)
{
	vote_entry_t **e = &m->b[hash & (m->nb - 1)];
	while (*e && ((*e)->hash != hash || strcmp((*e)->key, key) != 0))
		e = &(*e)->next;
	return e;
}

/* The votes on key (none: zero). */
static health_votes_t vm_get(vote_map_t *m, const char *key)
{
	health_votes_t none = { 0, 0 };
	if (!m->n)
		return none;
	vote_entry_t *e = *vm_slot(m, key, gslb_hash(key, strlen(key)));
	return e ? e->v : none;
}

static void vm_grow(vote_map_t *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	vote_entry_t **b = gslb_calloc(nb, sizeof(*b));
	for (size_t i = 0; i < m->nb; i++) {
		for (vote_entry_t *e = m->b[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

/* Record slot's vote on key; returns the votes on key now. */
static health_votes_t vm_set(vote_map_t *m, const char *key, unsigned slot, enum health_vote vote)
{
	uint64_t bit = 1ull << slot;
	uint32_t hash = gslb_hash(key, strlen(key));
	health_votes_t none = { 0, 0 };

	if (vote != HEALTH_VOTE_GONE && m->n >= m->nb)
		vm_grow(m);
	vote_entry_t **p = m->nb ? vm_slot(m, key, hash) : NULL, *e = p ? *p : NULL;
	if (vote == HEALTH_VOTE_GONE) {
		if (!e)
			return none;
		e->v.voters &= ~bit;
		e->v.downs &= ~bit;
		if (e->v.voters)
			return e->v;
		*p = e->next;
		free(e);
		m->n--;
		return none;
	}
	if (!e) {
		size_t len = strlen(key);
		e = gslb_calloc(1, sizeof(*e) + len + 1);
		memcpy(e->key, key, len + 1);
		e->hash = hash;
		*p = e;
		m->n++;
	}
	e->v.voters |= bit;
	if (vote == HEALTH_VOTE_DOWN)
		e->v.downs |= bit;
	else
		e->v.downs &= ~bit;
	return e->v;
}

/* Forget slot's votes (every slot's when slot < 0). */
static void vm_clear(vote_map_t *m, int slot)
{
	uint64_t keep = slot < 0 ? 0 : ~(1ull << slot);
	for (size_t i = 0; i < m->nb; i++) {
		for (vote_entry_t **p = &m->b[i], *e; (e = *p);) {
			e->v.voters &= keep;
			e->v.downs &= keep;
			if (e->v.voters) {
				p = &e->next;
				continue;
			}
			*p = e->next;
			free(e);
			m->n--;
		}
	}
}

static void vm_free(vote_map_t *m)
{
	vm_clear(m, -1);
	free(m->b);
	m->b = NULL;
	m->nb = 0;
}

/* "majority: 2 of 3 nodes say down": why t's effective state is what it is. */
static void votes_reason(const health_target_t *t, char *buf, size_t len)
{
	uint64_t voters = t->votes.voters, downs = t->votes.downs & voters;
	unsigned n = 1 + (unsigned)__builtin_popcountll(voters);
	unsigned d = (t->st.up ? 0 : 1) + (unsigned)__builtin_popcountll(downs);

	if (t->check.quorum == HEALTH_QUORUM_LOCAL)
		snprintf(buf, len, "local: this node says %s", t->st.up ? "up" : "down");
	else
		snprintf(buf, len, "%s: %u of %u node%s say%s down",
			 health_quorum_name(t->check.quorum), d, n, n == 1 ? "" : "s",
			 d == 1 || n == 1 ? "s" : "");
}

/* Loop thread: t's published state changes to up; counted, published and logged. */
static void target_publish(health_loop_t *hl, health_target_t *t, bool up, int64_t now,
			   const char *reason)
{
	atomic_fetch_add_explicit(&hl->stats.transitions[up], 1, memory_order_relaxed);
	t->since_ms = now;
	atomic_store(&t->since_pub, now);
	atomic_store(&t->up_pub, up);
	lb_health_set(hl->table, t->index, up);
	/* A target going down changes answers: a warning, where up again is news. */
	gslb_log(up ? GSLB_LOG_INFO : GSLB_LOG_WARNING, "health: %s is now %s: %s", t->key,
		 up ? "up" : "down", reason);
}

/* Loop thread: store a change of t's published state, and show it to the observer. */
static void target_change_record(health_loop_t *hl, health_target_t *t, bool from_up, int64_t now,
				 const char *reason)
{
	bool up = atomic_load(&t->up_pub);
	if (hl->store) {
		db_health_change_t c = { .key = t->key,
					 .reason = reason,
					 .time_ms = now,
					 .from_up = from_up,
					 .up = up };
		db_health_change_add(hl->store, &c);
	}
	if (hl->obs) {
		health_event_t oe = { .key = t->key,
				      .index = t->index,
				      .is_change = true,
				      .ok = up,
				      .up = up,
				      .latency_ms = -1,
				      .reason = reason,
				      .time_ms = now };
		hl->obs(&oe, hl->obs_arg);
	}
}

/*
 * Loop thread, cluster mode: t's votes or its own verdict changed without a probe result (a vote,
 * a target new to the loop); publish and record its effective state if that changed.
 */
static void target_settle(health_loop_t *hl, health_target_t *t)
{
	bool was = atomic_load(&t->up_pub);
	bool up = health_effective_up(t->check.quorum, t->st.up, &t->votes);
	char why[96];

	if (up == was)
		return;
	int64_t now = gslb_wall_ms();
	votes_reason(t, why, sizeof(why));
	target_publish(hl, t, up, now, why);
	target_change_record(hl, t, was, now, why);
}

static void verdict(health_loop_t *hl, const health_target_t *t, enum health_vote v)
{
	if (hl->verdict_cb)
		hl->verdict_cb(t->key, v, hl->verdict_arg);
}

/*
 * Loop thread, cluster mode: a probe result of t (its own state already fed).  As the
 * standalone path below, but what is published and stored is the effective state, and a change
 * of this node's own verdict goes to the verdict callback.
 */
static void report_cluster(health_target_t *t, bool ok, double latency_ms, const char *reason,
			   int64_t now, bool own_changed)
{
	health_loop_t *hl = t->hl;
	bool was = atomic_load(&t->up_pub);
	bool up = health_effective_up(t->check.quorum, t->st.up, &t->votes);
	char why[96];

	if (own_changed) {
		atomic_store(&t->own_pub, t->st.up);
		log_info("health: %s: this node's verdict is now %s: %s", t->key,
			 t->st.up ? "up" : "down", reason);
		verdict(hl, t, t->st.up ? HEALTH_VOTE_UP : HEALTH_VOTE_DOWN);
	}
	if (up != was) {
		votes_reason(t, why, sizeof(why));
		target_publish(hl, t, up, now, why);
	}
	if (hl->store) {
		db_health_result_t r = { .key = t->key,
					 .reason = reason,
					 .time_ms = now,
					 .latency_ms = latency_ms,
					 .ok = ok,
					 .up = up,
					 .since_ms = t->since_ms,
					 .cert_not_after = t->cert_not_after };
		db_health_result_add(hl->store, &r);
	}
	if (hl->obs) {
		health_event_t oe = { .key = t->key,
				      .index = t->index,
				      .ok = ok,
				      .up = up,
				      .latency_ms = latency_ms,
				      .reason = reason,
				      .time_ms = now };
		hl->obs(&oe, hl->obs_arg);
	}
	if (up != was)
		target_change_record(hl, t, was, now, why);
}

/* Loop thread: a probe result of t (its state already fed) where the loop is standalone. */
static void report_standalone(health_target_t *t, bool ok, double latency_ms, const char *reason,
			      int64_t now, bool was, bool changed)
{
	health_loop_t *hl = t->hl;

	if (changed) {
		atomic_fetch_add_explicit(&hl->stats.transitions[t->st.up], 1,
					  memory_order_relaxed);
		t->since_ms = now;
		atomic_store(&t->since_pub, now);
		atomic_store(&t->up_pub, t->st.up);
		atomic_store(&t->own_pub, t->st.up);
		lb_health_set(hl->table, t->index, t->st.up);
		gslb_log(t->st.up ? GSLB_LOG_INFO : GSLB_LOG_WARNING, "health: %s is now %s: %s",
			 t->key, t->st.up ? "up" : "down", reason);
	}
	if (hl->store) {
		db_health_result_t r = { .key = t->key,
					 .reason = reason,
					 .time_ms = now,
					 .latency_ms = latency_ms,
					 .ok = ok,
					 .up = t->st.up,
					 .since_ms = t->since_ms,
					 .cert_not_after = t->cert_not_after };
		db_health_result_add(hl->store, &r);
		if (changed) {
			db_health_change_t c = { .key = t->key,
						 .reason = reason,
						 .time_ms = now,
						 .from_up = was,
						 .up = t->st.up };
			db_health_change_add(hl->store, &c);
		}
	}
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
}

/*
 * Loop thread, after a probe of t: publish the notAfter of its certificate
 * and log a warning when it ends within the loop's cert_warn_days (README
 * "Health checks"): once a day per target, not at every probe, and at once
 * when the certificate changed (a new one that expires soon, too).
 */
static void cert_check(health_loop_t *hl, health_target_t *t, int64_t now_ms)
{
	int64_t na = t->cert_not_after;
	unsigned days = atomic_load_explicit(&hl->cert_warn_days, memory_order_relaxed);

	if (!na)
		return;
	atomic_store(&t->cert_pub, na);
	if (!days || na - now_ms / 1000 >= (int64_t)days * 86400)
		return;
	if (t->cert_warned_for == na && now_ms - t->cert_warned_ms < (int64_t)86400 * 1000)
		return;
	t->cert_warned_for = na;
	t->cert_warned_ms = now_ms;
	char when[64], date[32];
	struct tm tm;
	time_t tt = (time_t)na;
	gmtime_r(&tt, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	health_cert_expiry_text(na, now_ms / 1000, when, sizeof(when));
	log_warn("health: %s: the TLS certificate %s (not after %s)", t->key, when, date);
}

void health_loop_report(health_target_t *t, bool ok, double latency_ms, const char *reason)
{
	health_loop_t *hl = t->hl;
	int64_t now = gslb_wall_ms();
	bool was = t->st.up;
	bool changed = health_state_feed(&t->st, ok);

	stats_probe(&hl->stats, ok, latency_ms);
	cert_check(hl, t, now);
	if (hl->cluster)
		report_cluster(t, ok, latency_ms, reason, now, changed);
	else
		report_standalone(t, ok, latency_ms, reason, now, was, changed);
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
			if (hl->cluster)
				verdict(hl, old[i], HEALTH_VOTE_GONE);
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
			if (hl->cluster) {
				/* Votes that came before the target did are its own now. */
				t->votes = vm_get(&hl->votes, t->key);
				verdict(hl, t, t->st.up ? HEALTH_VOTE_UP : HEALTH_VOTE_DOWN);
				target_settle(hl, t);
			}
		}
		/*
		 * The control thread published the state it saw; the loop may
		 * have changed it since, and only we know the current one.
		 */
		health_target_t *t = na[j - 1];
		lb_health_set(hl->table, t->index,
			      hl->cluster ? atomic_load(&t->up_pub) : t->st.up);
	}

	pthread_mutex_lock(&hl->mu);
	hl->cur = na;
	hl->ncur = nn;
	pthread_mutex_unlock(&hl->mu);
	free(old);
}

/* Loop thread: one vote, or a clearing of votes, as given. */
static void apply_vote(health_loop_t *hl, const vote_op_t *op)
{
	health_event_t oe = {
		.key = op->key, .index = UINT32_MAX, .is_vote = true, .latency_ms = -1
	};

	if (op->key) {
		health_votes_t v = vm_set(&hl->votes, op->key, (unsigned)op->slot, op->vote);
		health_target_t *t = find_key(hl->cur, hl->ncur, op->key);
		if (t) {
			t->votes = v;
			target_settle(hl, t);
			oe.index = t->index;
			oe.up = atomic_load(&t->up_pub);
		}
	} else {
		uint64_t keep = op->slot < 0 ? 0 : ~(1ull << op->slot);
		vm_clear(&hl->votes, op->slot);
		for (size_t i = 0; i < hl->ncur; i++) {
			health_target_t *t = hl->cur[i];
			t->votes.voters &= keep;
			t->votes.downs &= keep;
			target_settle(hl, t);
		}
	}
	if (hl->obs) {
		oe.time_ms = gslb_wall_ms();
		hl->obs(&oe, hl->obs_arg);
	}
}

/* Loop thread: apply the votes given since the last time, in the order given. */
static void apply_votes(health_loop_t *hl)
{
	pthread_mutex_lock(&hl->mu);
	vote_op_t *ops = hl->ops;
	size_t n = hl->nops;
	hl->ops = NULL;
	hl->nops = hl->cap_ops = 0;
	pthread_mutex_unlock(&hl->mu);
	for (size_t i = 0; i < n; i++) {
		apply_vote(hl, &ops[i]);
		free(ops[i].key);
	}
	free(ops);
}

/* ---- storage ---- */

/* Loop thread: tell the store which targets are checked now (it prunes the others). */
static void store_targets(health_loop_t *hl)
{
	if (!hl->store)
		return;
	const char **keys = gslb_calloc(hl->ncur ? hl->ncur : 1, sizeof(*keys));
	for (size_t i = 0; i < hl->ncur; i++)
		keys[i] = hl->cur[i]->key;
	db_health_targets_set(hl->store, keys, hl->ncur);
	free(keys);
}

/* Loop thread: apply_pending(), and hand the store the new set when there is one. */
static void apply_and_store(health_loop_t *hl)
{
	health_target_t **before = hl->cur;
	apply_pending(hl);
	/* apply_pending() always installs a new array; cur is only written on this thread. */
	if (hl->cur != before)
		store_targets(hl);
}

/* Write what the store holds and close it; after the loop stopped (or never started). */
static void store_close(health_loop_t *hl)
{
	db_health_close(hl->store);
	hl->store = NULL;
}

/* Control thread, under mu: the stored state of a target never seen by this process. */
static bool stored_state(health_loop_t *hl, const char *key, bool *up, int64_t *since_ms)
{
	return hl->store && db_health_state_get(hl->store, key, up, since_ms) == 0;
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

	/* Votes first: a target that arrives with them starts in its effective state. */
	apply_votes(hl);
	apply_and_store(hl);
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
	uv_close((uv_handle_t *)&hl->async, close_cb);
}

static void thread_main(void *arg)
{
	health_loop_t *hl = arg;

	pthread_setname_np(pthread_self(), "health");
	apply_votes(hl);
	apply_and_store(hl);
	uv_run(&hl->loop, UV_RUN_DEFAULT);
}

health_loop_t *health_loop_new(lb_health_t *table, const char *db_path, const char *ca_file,
			       unsigned history_hours)
{
	health_loop_t *hl = gslb_calloc(1, sizeof(*hl));

	hl->table = table;
	atomic_init(&hl->cert_warn_days, HEALTH_CERT_WARN_DAYS_DEFAULT);
	hl->rng[0] = uv_hrtime() ^ 0x9e3779b97f4a7c15ull;
	hl->rng[1] = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)hl;
	pthread_mutex_init(&hl->mu, NULL);
	hl->tls = health_tls_ctx_new(ca_file);
	if (!hl->tls)
		goto fail;
	int rc = uv_loop_init(&hl->loop);
	if (rc < 0) {
		log_err("health: cannot create the loop: %s", uv_strerror(rc));
		goto fail;
	}
	if (db_path) {
		db_health_conf_t sc = { .history_hours = history_hours };
		rc = db_health_open(db_path, &sc, &hl->store);
		if (rc < 0) {
			log_err("health: cannot open database %s: %s", db_path, gslb_strerror(rc));
			uv_loop_close(&hl->loop);
			goto fail;
		}
	}
	uv_async_init(&hl->loop, &hl->async, async_cb);
	hl->async.data = hl;
	return hl;
fail:
	if (hl->tls)
		SSL_CTX_free(hl->tls);
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

void health_loop_store_stats(const health_loop_t *hl, health_store_stats_t *st)
{
	db_health_stats_t ds = { 0 };

	if (hl->store)
		db_health_stats_get(hl->store, &ds);
	st->results_dropped = ds.results_dropped;
	st->changes_dropped = ds.changes_dropped;
	st->queued = ds.queued;
}

void health_loop_targets_each(health_loop_t *hl, health_target_cb cb, void *arg)
{
	pthread_mutex_lock(&hl->mu);
	/* Only key (immutable) and up_pub (atomic) may be read here: the loop owns the rest. */
	for (size_t i = 0; i < hl->ncur; i++)
		cb(hl->cur[i]->key, atomic_load(&hl->cur[i]->up_pub), arg);
	pthread_mutex_unlock(&hl->mu);
}

void health_loop_certs_each(health_loop_t *hl, health_cert_cb cb, void *arg)
{
	pthread_mutex_lock(&hl->mu);
	for (size_t i = 0; i < hl->ncur; i++) {
		int64_t na = atomic_load(&hl->cur[i]->cert_pub);
		if (na)
			cb(hl->cur[i]->key, na, arg);
	}
	pthread_mutex_unlock(&hl->mu);
}

void health_loop_set_cert_warn(health_loop_t *hl, unsigned days)
{
	atomic_store_explicit(&hl->cert_warn_days, days, memory_order_relaxed);
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
static void start_state(health_loop_t *hl, const health_target_t *t, bool *up, bool *own,
			int64_t *since)
{
	char pkey[HEALTH_KEY_MAX];

	/*
	 * In a cluster the stored state is the effective one, and no own verdict is stored: this
	 * node starts from it, as a standalone node does, until its probes say otherwise.
	 */
	if (stored_state(hl, t->key, up, since))
		goto out;
	health_probe_key(&t->check, pkey, sizeof(pkey));
	health_target_t *same = find_same_probe(hl->cur, hl->ncur, pkey);
	if (same) {
		*up = atomic_load(&same->up_pub);
		*since = atomic_load(&same->since_pub);
		*own = atomic_load(&same->own_pub);
		return;
	}
	if (strcmp(pkey, t->key) != 0)
		stored_state(hl, pkey, up, since);
out:
	*own = *up;
}

int health_loop_set_targets(health_loop_t *hl, const health_target_conf_t *targets, size_t n)
{
	sort_item_t *items = gslb_calloc(n ? n : 1, sizeof(*items));
	health_target_t **arr = gslb_calloc(n ? n : 1, sizeof(*arr));
	size_t m = 0;
	int64_t now = gslb_wall_ms();

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
		bool up = true, own = true;
		int64_t since = now;
		if (old) {
			up = atomic_load(&old->up_pub);
			own = atomic_load(&old->own_pub);
		} else {
			start_state(hl, t, &up, &own, &since);
		}
		/*
		 * Standalone, own is up.  In a cluster, up is the effective state as last known;
		 * the loop weighs the votes on a new target before its first probe.
		 */
		if (!hl->cluster)
			own = up;
		health_state_init(&t->st, own, t->check.rise, t->check.fall);
		t->since_ms = since;
		atomic_store(&t->since_pub, since);
		atomic_store(&t->up_pub, up);
		atomic_store(&t->own_pub, own);
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

void health_loop_set_cluster(health_loop_t *hl, health_verdict_cb cb, void *arg)
{
	pthread_mutex_lock(&hl->mu);
	hl->cluster = true;
	hl->verdict_cb = cb;
	hl->verdict_arg = arg;
	pthread_mutex_unlock(&hl->mu);
}

/* Any thread: queue a vote (key NULL: a clearing) for the loop's thread and wake it. */
static void vote_queue(health_loop_t *hl, int slot, const char *key, enum health_vote vote)
{
	pthread_mutex_lock(&hl->mu);
	/* Standalone nothing votes; once stopping, the loop's async handle may be closed. */
	if (!hl->cluster || hl->stop_req) {
		pthread_mutex_unlock(&hl->mu);
		return;
	}
	if (hl->nops == hl->cap_ops) {
		hl->cap_ops = hl->cap_ops ? hl->cap_ops * 2 : 64;
		hl->ops = gslb_realloc(hl->ops, hl->cap_ops * sizeof(*hl->ops));
	}
	hl->ops[hl->nops++] = (vote_op_t){ .key = key ? gslb_strdup(key) : NULL,
					   .slot = slot,
					   .vote = vote };
	/* Under mu, which the loop takes to see stop_req before it closes the handle. */
	uv_async_send(&hl->async);
	pthread_mutex_unlock(&hl->mu);
}

void health_loop_vote(health_loop_t *hl, unsigned slot, const char *key, enum health_vote vote)
{
	if (slot >= HEALTH_NODES_MAX || !key)
		return;
	if (vote != HEALTH_VOTE_UP && vote != HEALTH_VOTE_DOWN)
		vote = HEALTH_VOTE_GONE;
	vote_queue(hl, (int)slot, key, vote);
}

void health_loop_votes_clear(health_loop_t *hl, int slot)
{
	if (slot >= HEALTH_NODES_MAX)
		return;
	vote_queue(hl, slot < 0 ? -1 : slot, NULL, HEALTH_VOTE_GONE);
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
	/* The loop is gone: nothing adds to the store now; it writes what is left and closes. */
	store_close(hl);
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
		uv_close((uv_handle_t *)&hl->async, close_cb);
		uv_run(&hl->loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&hl->loop);
	for (size_t i = 0; i < hl->npending; i++)
		target_free(hl->pending[i]);
	free(hl->pending);
	free(hl->cur);
	for (size_t i = 0; i < hl->nops; i++)
		free(hl->ops[i].key);
	free(hl->ops);
	vm_free(&hl->votes);
	store_close(hl);
	SSL_CTX_free(hl->tls);
	pthread_mutex_destroy(&hl->mu);
	free(hl);
}
