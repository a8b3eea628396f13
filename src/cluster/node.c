/* SPDX-License-Identifier: MIT */
/*
 * gslbd's cluster node (README "Two or more nameservers", gslbd(8) --cluster): mirrors the
 * cluster's configuration from etcd into the node's database, publishes this node's health
 * verdicts bound to its lease, and hands the other nodes' verdicts to the health loop.
 *
 * Threads, and what each touches:
 *
 *   cluster thread   Its own libuv loop, etcd client (etcd_t) and database connection.  Owns
 *                    everything in struct cluster but the part under mu.  All SQLite work of the
 *                    cluster happens here, so neither the DNS workers nor the control loop ever
 *                    wait on etcd or on a mirror transaction.
 *   health thread    Calls verdict_cb() with this node's own verdicts: queued under mu, then a
 *                    wake-up (uv_async_send), never a wait.
 *   control thread   cluster_start(), cluster_stop() and cluster_stats_get() (atomic loads).
 *                    Learns of a new configuration through conf.config_changed, called on the
 *                    cluster thread after each commit that touched the pools.
 *
 * The session (the node's lease in etcd):
 *
 *            grant + register             keepalive without TTL, or our nodes/ key DELETEd
 *   NONE ------------------> READY --------------------------------------------> NONE (new lease)
 *    ^                         |
 *    |   request failed        | keepalive failed: the lease may still be alive; the next try
 *    +-------------------------+ keeps it when a keepalive says so (own votes stay published)
 *
 * The mirror (applied_rev is the highest mod_revision applied, never a header's revision: a
 * watch message's header may be ahead of events still to come):
 *
 *          probe: applied_rev 0, new cluster_id,
 *          or etcd's revision below applied_rev       one db transaction, applied_rev = its rev
 *   NONE ----------------------------------> FULL SYNC ------------------------+
 *    |  otherwise                                                                v
 *    +-------------------------------------------------------------------> WATCHING from
 *    ^   watch ended (error, no leader, endpoint changed): resume           applied_rev + 1,
 *    +-------------------------------------------------------------------  one db transaction
 *        compacted, or cut off longer than a lease: full sync next          per message
 *
 * Other nodes' votes go to the health loop in slots 0..HEALTH_NODES_MAX-1, one per node name,
 * assigned as first seen and given back when the node's key is deleted (its lease ended).
 * The votes last sent to the health loop are kept here, so a full sync sends only what changed
 * (no effective state flaps while the whole set is read again).
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include "gslb/cfg.h"
#include "gslb/cluster.h"
#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_cluster.h"
#include "gslb/db_dnssec.h"
#include "gslb/etcd.h"
#include "gslb/health.h"

/* A range page (full sync); all pages are read at the revision of the first. */
#define PAGE_LIMIT 1000
/* Operations in one transaction: etcd refuses more than 128 by default (--max-txn-ops). */
#define TXN_OPS_MAX 100
/* A unary request's whole time, the keepalive's included. */
#define REQUEST_TIMEOUT_MS 2000
/* After a failed request, the next try; doubled up to RETRY_MAX_MS while etcd stays away. */
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 2000
/* The node's record is rewritten at most this often. */
#define NODE_RECORD_MS 1000
/* cluster_stop() waits this long for the lease to be revoked. */
#define REVOKE_MS 1000

typedef struct cluster_kv_list {
	etcd_kv_t *v;
	size_t n, cap;
} kv_list_t;

/* ---- a small chained hash table keyed by strings: own verdicts and others' votes ---- */

typedef struct hent {
	struct hent *next;
	uint32_t hash;
	char *key;
} hent_t;

typedef struct htab {
	hent_t **b;
	size_t mask; /* buckets - 1; b NULL when empty */
	size_t n;
} htab_t;

static hent_t *htab_find(const htab_t *t, const char *key, uint32_t h)
{
	if (!t->b)
		return NULL;
	for (hent_t *e = t->b[h & t->mask]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void htab_add(htab_t *t, hent_t *e)
{
	if (!t->b || t->n >= t->mask + 1) {
		size_t mask = t->b ? t->mask * 2 + 1 : 63;
		hent_t **b = gslb_calloc(mask + 1, sizeof(*b));
		for (size_t i = 0; t->b && i <= t->mask; i++)
			for (hent_t *x = t->b[i], *next; x; x = next) {
				next = x->next;
				x->next = b[x->hash & mask];
				b[x->hash & mask] = x;
			}
		free(t->b);
		t->b = b;
		t->mask = mask;
	}
	e->next = t->b[e->hash & t->mask];
	t->b[e->hash & t->mask] = e;
	t->n++;
}

static void htab_del(htab_t *t, hent_t *e)
{
	for (hent_t **p = &t->b[e->hash & t->mask]; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			t->n--;
			return;
		}
}

static uint32_t str_hash(const char *s)
{
	return gslb_hash(s, strlen(s));
}

/* ---- the state ---- */

/* What etcd holds of an own verdict under the current lease, besides HEALTH_VOTE_UP/DOWN. */
#define SENT_NONE (-2)

/* This node's verdict on one target (cluster thread). */
typedef struct verdict {
	hent_t h;	/* key: the target key */
	int8_t want;	/* enum health_vote: the health loop's latest (GONE: delete it) */
	int8_t sent;	/* what etcd holds: HEALTH_VOTE_UP, _DOWN or SENT_NONE */
	int8_t sending; /* the value of the transaction in flight */
	bool queued;	/* on the dirty list */
	bool inflight;	/* in the transaction in flight */
} verdict_t;

/* Another node's vote as last handed to the health loop; key "NODE/TARGET". */
typedef struct rvote {
	hent_t h;
	uint8_t slot;
	bool up;
	uint32_t mark; /* the full sync that last saw it */
} rvote_t;

/* Another node known by name (cluster thread). */
typedef struct peer {
	char name[64];
	bool used;		      /* the slot is taken */
	bool live;		      /* its nodes/ key exists */
	int64_t revision, down_votes; /* from its record */
} peer_t;

/* The health loop's verdicts, queued under mu for the cluster thread. */
typedef struct queued_verdict {
	char *key;
	int8_t vote;
} queued_verdict_t;

enum sess_state { SESS_NONE, SESS_BUSY, SESS_READY };
enum sync_state { SYNC_NONE, SYNC_BUSY, SYNC_WATCHING };

/* The parts of a full sync, read one after another at one revision. */
enum { PART_POOLS, PART_JOURNAL, PART_NODES, PART_VOTES, PART_SECRETS, PART_DNSSEC, PART_COUNT };
static const char *const part_dirs[PART_COUNT] = { "pools/", "journal/", "nodes/",
						   "votes/", "secrets/", "dnssec/" };

struct cluster {
	cluster_conf_t conf; /* the strings below are owned copies */
	char *prefix, *node, *db_path;

	/* Shared with the health thread and cluster_stop(). */
	pthread_mutex_t mu;
	queued_verdict_t *queue;
	size_t nqueue, queue_cap;
	bool stop_req;

	/* Read by cluster_stats_get() on any thread. */
	_Atomic bool st_connected;
	_Atomic int64_t st_applied_rev;
	_Atomic uint32_t st_nodes_live;
	_Atomic uint64_t st_resyncs, st_events, st_votes;
	_Atomic int64_t st_contact_ms;

	/* Everything below: the cluster thread only. */
	uv_thread_t thread;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t step_timer; /* runs step(): retries and deferred transitions */
	uv_timer_t ka_timer;   /* the keepalive, every lease / 3 */
	uv_timer_t node_timer; /* the node record, at most once a second */
	uv_timer_t lost_timer; /* one lease after losing etcd: own verdicts only */
	uv_timer_t stop_timer; /* the bound on revoking the lease at stop */
	db_t *db;
	etcd_t *etcd;
	bool stopping, stopped;
	char *path_pools, *path_nodes, *path_votes, *path_journal, *path_own_votes, *self_key;
	char *path_secrets, *cookie_key; /* "secrets/", "secrets/cookie" */
	char *path_dnssec;		 /* "dnssec/": a zone's DNSSEC keys */
	bool cookie_known;		 /* etcd's cookie secret was read */

	/* Connection to etcd, as logged and recorded. */
	bool connected, conn_known, votes_cleared;
	uint32_t retry_ms;

	/* The session. */
	enum sess_state sess;
	uint64_t sess_epoch;
	int64_t lease;
	uint64_t sess_retry_at; /* mono ms */
	bool dup_logged;
	int64_t started_s;

	/* The mirror. */
	enum sync_state sync;
	uint64_t sync_epoch;
	uint64_t sync_retry_at;
	bool need_full;
	db_cluster_state_t st;
	etcd_watch_t *watch;
	etcd_watch_t *watch_old; /* dropped, to be canceled by the next step() */
	char *watch_endpoint;
	bool watch_created;
	/* A full sync under way. */
	etcd_header_t fs_header;
	int fs_part;
	char *fs_next; /* the key the next page starts at (it is dropped from it), or NULL */
	kv_list_t fs_kv[PART_COUNT];
	uint32_t fs_mark;

	/* Own verdicts and their publication. */
	htab_t verdicts;
	verdict_t **dirty;
	size_t ndirty, dirty_cap;
	verdict_t **batch; /* the transaction in flight */
	size_t nbatch;
	bool publishing;
	int64_t ndown; /* own verdicts that say down */
	bool node_dirty, node_inflight;
	int64_t registered_rev; /* the revision of this session's nodes/ key */

	/* Other nodes. */
	peer_t peers[HEALTH_NODES_MAX];
	bool self_live;
	bool slots_full_logged;
	htab_t rvotes;
};

/* A request in flight: the state machine it belongs to and that machine's epoch then. */
typedef struct req {
	cluster_t *c;
	uint64_t epoch;
	etcd_watch_t *w; /* a watch's: its handle */
} req_t;

static void step_soon(cluster_t *c, uint64_t delay_ms);
static void lost_cb(uv_timer_t *t);
static void sync_restart(cluster_t *c, uint64_t delay_ms);
static void session_lost(cluster_t *c, const char *why);
static void watch_begin(cluster_t *c);
static void publish_next(cluster_t *c);

bool cluster_node_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') && ch != '-')
			return false;
	}
	return true;
}

static char *cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = gslb_malloc(la + lb + 1);
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

static req_t *req_new(cluster_t *c, uint64_t epoch)
{
	req_t *r = gslb_calloc(1, sizeof(*r));
	r->c = c;
	r->epoch = epoch;
	return r;
}

/*
 * The start of a request's callback: frees the request and returns its cluster, or NULL when
 * the reply is stale (stopping, or the mirror's sync (session false) or the session (true) it
 * belonged to has ended since).
 */
static cluster_t *req_done(void *arg, bool session)
{
	req_t *r = arg;
	cluster_t *c = r->c;
	bool stale = c->stopping || r->epoch != (session ? c->sess_epoch : c->sync_epoch);
	free(r);
	return stale ? NULL : c;
}

/*
 * Errors that say this node cannot work with etcd: unreachable, no leader, refused credentials,
 * or replies that are not etcd's (a proxy, or the gateway refusing in plain text), as opposed
 * to one request etcd refused.
 */
static bool unreachable(int err)
{
	return err != ETCD_ECOMPACTED && err != ETCD_EREQUEST && err != ETCD_ETOOBIG &&
	       err != -ECANCELED;
}

/* Why an etcd request failed, as the client says ("http://...: etcdserver: no leader"). */
static const char *etcd_why(const cluster_t *c, int err)
{
	const char *why = c->etcd ? etcd_error(c->etcd) : NULL;
	return why && *why ? why : etcd_strerror(err);
}

/* A 64-bit integer of a gateway reply: a string ("16"), or a number. */
static int64_t jint(const json_t *o, const char *name)
{
	const json_t *v = json_object_get(o, name);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

/* A stream reply's object ({"result": {...}}), or the reply itself. */
static const json_t *unwrap(const json_t *reply)
{
	const json_t *r = json_object_get(reply, "result");
	return json_is_object(r) ? r : reply;
}

static void kv_list_clear(kv_list_t *l)
{
	etcd_kvs_free(l->v, l->n);
	*l = (kv_list_t){ 0 };
}

static void kv_list_take(kv_list_t *l, etcd_kv_t *kvs, size_t n, const char *skip)
{
	for (size_t i = 0; i < n; i++) {
		if (skip && strcmp(kvs[i].key, skip) == 0) {
			etcd_kv_clear(&kvs[i]);
			continue;
		}
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 64;
			l->v = gslb_realloc(l->v, l->cap * sizeof(*l->v));
		}
		l->v[l->n++] = kvs[i];
	}
	free(kvs);
}

/* ---- the connection state ---- */

static void stats_nodes(cluster_t *c)
{
	uint32_t n = c->self_live;
	for (size_t i = 0; i < HEALTH_NODES_MAX; i++)
		n += c->peers[i].used && c->peers[i].live;
	atomic_store_explicit(&c->st_nodes_live, n, memory_order_relaxed);
}

static void state_record(cluster_t *c)
{
	c->st.connected = c->connected;
	c->st.changed = gslb_wall_ms() / 1000;
	int ret = db_begin_write(c->db);
	if (ret == 0)
		ret = db_cluster_state_put(c->db, &c->st);
	if (ret == 0)
		ret = db_commit(c->db);
	if (ret < 0) {
		db_rollback(c->db);
		log_warn("cluster: cannot record the connection state in %s: %s", c->db_path,
			 gslb_strerror(ret));
	}
}

/*
 * A reply came from etcd (connected) or no endpoint answered (not): each change logged once,
 * recorded in the database (gslbctl cluster status) and in the metrics.
 */
static void connected_set(cluster_t *c, bool up, int err)
{
	if (up) {
		atomic_store_explicit(&c->st_contact_ms, gslb_wall_ms(), memory_order_relaxed);
		c->retry_ms = 0;
	}
	if (c->conn_known && c->connected == up)
		return;
	bool first = !c->conn_known;
	c->conn_known = true;
	c->connected = up;
	atomic_store_explicit(&c->st_connected, up, memory_order_relaxed);
	if (up) {
		uv_timer_stop(&c->lost_timer);
		log_info("cluster: connected to etcd at %s", etcd_endpoint(c->etcd));
		if (c->votes_cleared)
			log_info("cluster: the other nodes' votes count again once read");
		c->votes_cleared = false;
	} else {
		log_warn("cluster: %s etcd (%s): answering from the configuration mirrored in %s",
			 first ? "cannot reach" : "lost", etcd_why(c, err), c->db_path);
		/* The other nodes' votes count for one lease more (lost_cb()). */
		if (!first)
			uv_timer_start(&c->lost_timer, lost_cb, (uint64_t)c->conf.lease_s * 1000,
				       0);
	}
	state_record(c);
}

/* The wait before the next try after a failure, growing while etcd stays away. */
static uint64_t retry_delay(cluster_t *c)
{
	c->retry_ms = c->retry_ms ? c->retry_ms * 2 : RETRY_MIN_MS;
	if (c->retry_ms > RETRY_MAX_MS)
		c->retry_ms = RETRY_MAX_MS;
	return c->retry_ms;
}

/* ---- other nodes: slots and votes ---- */

static peer_t *peer_find(cluster_t *c, const char *name)
{
	for (size_t i = 0; i < HEALTH_NODES_MAX; i++)
		if (c->peers[i].used && strcmp(c->peers[i].name, name) == 0)
			return &c->peers[i];
	return NULL;
}

/* The node's slot, taking a free one for a name not seen yet; NULL when all are taken. */
static peer_t *peer_get(cluster_t *c, const char *name)
{
	peer_t *p = peer_find(c, name);
	if (p)
		return p;
	if (!cluster_node_name_ok(name))
		return NULL;
	for (size_t i = 0; i < HEALTH_NODES_MAX; i++)
		if (!c->peers[i].used) {
			p = &c->peers[i];
			*p = (peer_t){ .used = true };
			snprintf(p->name, sizeof(p->name), "%s", name);
			return p;
		}
	if (!c->slots_full_logged)
		log_warn("cluster: more than %d other nodes: the votes of %s and later ones are "
			 "not counted",
			 HEALTH_NODES_MAX, name);
	c->slots_full_logged = true;
	return NULL;
}

static unsigned slot_of(const cluster_t *c, const peer_t *p)
{
	return (unsigned)(p - c->peers);
}

/* Hand one vote of another node to the health loop, unless it is the one handed last. */
static void rvote_set(cluster_t *c, peer_t *p, const char *rkey, const char *target, int vote)
{
	uint32_t h = str_hash(rkey);
	rvote_t *v = (rvote_t *)htab_find(&c->rvotes, rkey, h);

	if (vote == HEALTH_VOTE_GONE) {
		if (!v)
			return;
		htab_del(&c->rvotes, &v->h);
		free(v->h.key);
		free(v);
	} else if (v && v->up == (vote == HEALTH_VOTE_UP)) {
		v->mark = c->fs_mark;
		return;
	} else {
		if (!v) {
			v = gslb_calloc(1, sizeof(*v));
			v->h.key = gslb_strdup(rkey);
			v->h.hash = h;
			v->slot = (uint8_t)slot_of(c, p);
			htab_add(&c->rvotes, &v->h);
		}
		v->up = vote == HEALTH_VOTE_UP;
		v->mark = c->fs_mark;
	}
	if (c->conf.health)
		health_loop_vote(c->conf.health, slot_of(c, p), target, vote);
}

/* Forget every vote handed for slot (slot < 0: all of them). */
static void rvotes_drop(cluster_t *c, int slot)
{
	for (size_t i = 0; c->rvotes.b && i <= c->rvotes.mask; i++)
		for (hent_t **pp = &c->rvotes.b[i]; *pp;) {
			rvote_t *v = (rvote_t *)*pp;
			if (slot >= 0 && v->slot != slot) {
				pp = &(*pp)->next;
				continue;
			}
			*pp = v->h.next;
			c->rvotes.n--;
			free(v->h.key);
			free(v);
		}
	if (c->conf.health)
		health_loop_votes_clear(c->conf.health, slot);
}

/* A node's key was deleted (its lease ended): its votes go, its slot is free again. */
static void peer_gone(cluster_t *c, peer_t *p)
{
	rvotes_drop(c, (int)slot_of(c, p));
	p->used = false;
	p->live = false;
}

/* One lease without etcd: the other nodes' votes are too old to count (gslbd(8)). */
static void lost_cb(uv_timer_t *t)
{
	cluster_t *c = t->data;
	if (c->connected || c->votes_cleared)
		return;
	log_warn("cluster: cut off from etcd for longer than the lease (%" PRIu32
		 " s): answering by this node's own health verdicts",
		 c->conf.lease_s);
	rvotes_drop(c, -1);
	c->votes_cleared = true;
	/* The votes are read again whole once back: the watch would give only their changes. */
	c->need_full = true;
	sync_restart(c, retry_delay(c));
}

/* ---- applying what etcd holds to the database ---- */

static char *json_text(const etcd_kv_t *kv)
{
	return kv->value ? kv->value : "";
}

static int64_t now_s(void)
{
	return gslb_wall_ms() / 1000;
}

/*
 * A pool's value: the JSON of gslbctl export for one pool, validated as gslbctl apply
 * validates it.  A bad one is logged with its key and skipped: what was mirrored before stays
 * and the rest of the change is applied.  0, or -1 after logging.
 */
static int pool_parse(const etcd_kv_t *kv, const char *name, db_pool_t *p)
{
	char why[CFG_ERR_MAX];
	int ret = cfg_pool_from_json(json_text(kv), kv->value_len, p, why, sizeof(why));
	if (ret < 0) {
		log_err("cluster: %s: %s: keeping what was mirrored before", kv->key, why);
		return -1;
	}
	if (strcmp(p->name, name) != 0) {
		log_err("cluster: %s: holds pool %s, not %s: keeping what was mirrored before",
			kv->key, p->name, name);
		cfg_pool_clear(p);
		return -1;
	}
	return 0;
}

/* Returns 1 when the pool changed, 0 when not (already applied, or a bad value), or < 0. */
static int pool_put(cluster_t *c, const etcd_kv_t *kv)
{
	const char *name = kv->key + strlen(c->path_pools);
	db_pool_t p = { 0 };
	if (pool_parse(kv, name, &p) < 0)
		return 0;
	int ret = db_cluster_pool_put(c->db, kv->key, kv->mod_revision, &p);
	cfg_pool_clear(&p);
	if (ret == GSLB_ECONFIG) {
		/* Refused with nothing written: skipped like a value that does not parse. */
		log_err("cluster: %s: the database refuses it: keeping what was mirrored before",
			kv->key);
		return 0;
	}
	if (ret < 0)
		log_err("cluster: %s: cannot store it: %s", kv->key, gslb_strerror(ret));
	return ret < 0 ? ret : ret == 0;
}

/*
 * A zone's DNSSEC keys (src/cluster/keys.c): a bad value is logged and skipped like a pool's,
 * the keys mirrored before kept.  1 when the keys changed, 0 when not, or < 0.
 */
static int dnssec_put(cluster_t *c, const etcd_kv_t *kv)
{
	const char *zone = kv->key + strlen(c->path_dnssec);
	db_dnssec_key_t *keys = NULL;
	size_t n = 0;
	char why[256];

	if (etcd_dnssec_parse(json_text(kv), kv->value_len, zone, &keys, &n, why, sizeof(why))) {
		log_err("cluster: %s: %s: keeping the keys mirrored before", kv->key, why);
		return 0;
	}
	int ret = db_cluster_dnssec_put(c->db, kv->key, kv->mod_revision, zone, keys, n);
	db_dnssec_keys_free(keys, n);
	if (ret == GSLB_ECONFIG) {
		log_err("cluster: %s: the database refuses them: keeping the keys mirrored before",
			kv->key);
		return 0;
	}
	if (ret < 0)
		log_err("cluster: %s: cannot store them: %s", kv->key, gslb_strerror(ret));
	return ret < 0 ? ret : ret == 0;
}

static int journal_put(cluster_t *c, const etcd_kv_t *kv)
{
	json_error_t jerr;
	json_t *j = json_loadb(json_text(kv), kv->value_len, 0, &jerr);
	if (!json_is_object(j)) {
		log_err("cluster: %s: not a journal entry: skipped", kv->key);
		json_decref(j);
		return 0;
	}
	db_journal_entry_t e = {
		.time = (char *)json_string_value(json_object_get(j, "time")),
		.actor = (char *)json_string_value(json_object_get(j, "actor")),
		.node = (char *)json_string_value(json_object_get(j, "node")),
		.command = (char *)json_string_value(json_object_get(j, "command")),
		.summary = (char *)json_string_value(json_object_get(j, "summary")),
	};
	int ret = 0;
	if (!e.time || !e.command) {
		log_err("cluster: %s: a journal entry without time or command: skipped", kv->key);
	} else {
		if (!e.actor)
			e.actor = "";
		if (!e.summary)
			e.summary = "";
		ret = db_cluster_journal_put(c->db, kv->key, &e);
		if (ret < 0)
			log_err("cluster: %s: cannot store it: %s", kv->key, gslb_strerror(ret));
	}
	json_decref(j);
	return ret;
}

static int node_row(cluster_t *c, const char *name, bool live, int64_t revision, int64_t down,
		    int64_t last_seen)
{
	db_cluster_node_t n = { .name = (char *)name,
				.live = live,
				.last_seen = last_seen,
				.revision = revision,
				.down_votes = down };
	int ret = db_cluster_node_put(c->db, &n);
	if (ret < 0)
		log_err("cluster: node %s: cannot store it: %s", name, gslb_strerror(ret));
	return ret;
}

/* A nodes/ key put: the node is live, with what its record says. */
static int node_put(cluster_t *c, const etcd_kv_t *kv)
{
	const char *name = kv->key + strlen(c->path_nodes);
	json_t *j = json_loadb(json_text(kv), kv->value_len, 0, NULL);
	int64_t rev = jint(j, "revision"), down = jint(j, "down_votes");
	json_decref(j);
	if (strcmp(name, c->node) == 0) {
		c->self_live = true;
	} else {
		peer_t *p = peer_get(c, name);
		if (p) {
			p->live = true;
			p->revision = rev;
			p->down_votes = down;
		}
	}
	stats_nodes(c);
	return node_row(c, name, true, rev, down, now_s());
}

/*
 * A nodes/ key deleted: the node's lease ended (or it stopped).  Returns 1 when it is this
 * node's own key while the session thinks it alive: the lease is lost.
 */
static int node_delete(cluster_t *c, const char *key, int64_t mod_rev)
{
	const char *name = key + strlen(c->path_nodes);
	int ret;
	if (strcmp(name, c->node) == 0) {
		/* The key of an earlier lease, deleted before this session's was made: old news. */
		if (mod_rev < c->registered_rev)
			return 0;
		c->self_live = false;
		stats_nodes(c);
		ret = node_row(c, name, false, c->st.applied_rev, c->ndown, now_s());
		return ret < 0 ? ret : c->sess == SESS_READY;
	}
	/* Live until now: its lease ended (or it left) at this revision. */
	peer_t *p = peer_find(c, name);
	int64_t rev = 0, down = 0, seen = now_s();
	if (p) {
		rev = p->revision;
		down = p->down_votes;
		peer_gone(c, p);
	}
	stats_nodes(c);
	ret = db_cluster_vote_delete(c->db, name, NULL);
	if (ret == 0)
		ret = node_row(c, name, false, rev, down, seen);
	return ret;
}

/*
 * A votes/NODE/KEY key put (vote UP or DOWN: its value) or deleted (GONE): into the database
 * for gslbctl status, and, another node's, to the health loop.
 */
static int vote_apply(cluster_t *c, const char *key, const etcd_kv_t *kv)
{
	const char *rkey = key + strlen(c->path_votes);
	const char *slash = strchr(rkey, '/');
	char name[64];
	int vote = HEALTH_VOTE_GONE;

	if (!slash || slash == rkey || (size_t)(slash - rkey) >= sizeof(name))
		return 0;
	memcpy(name, rkey, (size_t)(slash - rkey));
	name[slash - rkey] = '\0';
	const char *target = slash + 1;
	if (kv) {
		const char *v = json_text(kv);
		if (strcmp(v, "up") == 0) {
			vote = HEALTH_VOTE_UP;
		} else if (strcmp(v, "down") == 0) {
			vote = HEALTH_VOTE_DOWN;
		} else {
			log_err("cluster: %s: a vote is up or down: skipped", key);
			return 0;
		}
	}
	int ret = vote == HEALTH_VOTE_GONE
			  ? db_cluster_vote_delete(c->db, name, target)
			  : db_cluster_vote_put(c->db, name, target, vote == HEALTH_VOTE_UP);
	if (ret < 0 && ret != -ENOENT) {
		log_err("cluster: %s: cannot store it: %s", key, gslb_strerror(ret));
		return ret;
	}
	if (strcmp(name, c->node) == 0)
		return 0; /* this node's own verdicts come from its own health loop */
	peer_t *p = vote == HEALTH_VOTE_GONE ? peer_find(c, name) : peer_get(c, name);
	if (p)
		rvote_set(c, p, rkey, target, vote);
	return 0;
}

/*
 * A secret of the cluster: the cookie secret, 32 hex digits, handed to gslbd (when it uses
 * the cluster's).  A value that is not one is logged and ignored.
 */
static void secret_put(cluster_t *c, const etcd_kv_t *kv)
{
	if (strcmp(kv->key, c->cookie_key) != 0 || !c->conf.cookie_secret)
		return;
	uint8_t secret[16];
	bool ok = kv->value_len == 32;
	for (size_t i = 0; ok && i < 16; i++) {
		int hi = gslb_hexval(kv->value[2 * i]), lo = gslb_hexval(kv->value[2 * i + 1]);
		ok = hi >= 0 && lo >= 0;
		secret[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!ok) {
		log_err("cluster: %s is not 32 hex digits: ignored", kv->key);
		return;
	}
	c->cookie_known = true;
	c->conf.cookie_secret(c->conf.arg, secret);
}

static void cookie_create_cb(int err, const json_t *result, void *arg)
{
	cluster_t *c = req_done(arg, false);
	(void)result;
	/* Made here or by another node meanwhile: either way the watch brings it. */
	if (c && err)
		log_warn("cluster: cannot put a cookie secret: %s", etcd_why(c, err));
}

/* etcd holds no cookie secret: put a random one, unless another node does first. */
static void cookie_create(cluster_t *c)
{
	uint8_t r[16];
	char hex[33];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return;
	for (size_t i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	etcd_cmp_t cmp = { .key = c->cookie_key, .target = ETCD_CREATE, .value = 0 };
	etcd_op_t op = { .key = c->cookie_key, .value = hex, .value_len = 32 };
	json_t *body = etcd_txn_body(&cmp, 1, &op, 1);
	req_t *r2 = req_new(c, c->sync_epoch);
	if (etcd_call(c->etcd, "/v3/kv/txn", body, cookie_create_cb, r2) < 0)
		free(r2);
	else
		log_info("cluster: no cookie secret in etcd: putting one");
	explicit_bzero(hex, sizeof(hex));
	explicit_bzero(r, sizeof(r));
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * One event of the watch, inside the message's transaction.  *config is set when the
 * configuration (pools or journal) changed, *lost when this node's own key was deleted.
 */
static int event_apply(cluster_t *c, const etcd_event_t *ev, bool *pools, bool *config, bool *lost)
{
	const char *key = ev->kv.key;
	int ret = 0;

	if (has_prefix(key, c->path_pools)) {
		const char *name = key + strlen(c->path_pools);
		*config = true;
		if (!ev->is_delete) {
			ret = pool_put(c, &ev->kv);
		} else {
			ret = db_cluster_pool_delete(c->db, key, name, ev->kv.mod_revision);
			if (ret < 0)
				log_err("cluster: %s: cannot delete it: %s", key,
					gslb_strerror(ret));
			else
				ret = ret == 0;
		}
		if (ret > 0)
			*pools = true;
		return ret < 0 ? ret : 0;
	}
	if (has_prefix(key, c->path_dnssec)) {
		const char *zone = key + strlen(c->path_dnssec);
		if (!ev->is_delete) {
			ret = dnssec_put(c, &ev->kv);
		} else {
			ret = db_cluster_dnssec_delete(c->db, key, zone, ev->kv.mod_revision);
			if (ret < 0)
				log_err("cluster: %s: cannot delete them: %s", key,
					gslb_strerror(ret));
			else
				ret = ret == 0;
		}
		/* The keys are configuration: gslbd loads them with the pools. */
		if (ret > 0)
			*pools = *config = true;
		return ret < 0 ? ret : 0;
	}
	if (has_prefix(key, c->path_journal)) {
		*config = true;
		return ev->is_delete ? 0 : journal_put(c, &ev->kv);
	}
	if (has_prefix(key, c->path_nodes)) {
		if (!ev->is_delete)
			return node_put(c, &ev->kv);
		ret = node_delete(c, key, ev->kv.mod_revision);
		if (ret > 0)
			*lost = true;
		return ret < 0 ? ret : 0;
	}
	if (has_prefix(key, c->path_votes))
		return vote_apply(c, key, ev->is_delete ? NULL : &ev->kv);
	if (has_prefix(key, c->path_secrets) && !ev->is_delete)
		secret_put(c, &ev->kv);
	return 0;
}

/* applied_rev moved: into the state row (inside the caller's transaction) and the metrics. */
static int applied_set(cluster_t *c, int64_t rev, uint64_t cluster_id)
{
	db_cluster_state_t st = c->st;
	st.applied_rev = rev;
	st.cluster_id = cluster_id;
	st.connected = c->connected;
	int ret = db_cluster_state_put(c->db, &st);
	if (ret < 0)
		log_err("cluster: cannot record the applied revision: %s", gslb_strerror(ret));
	return ret;
}

static void applied_done(cluster_t *c, int64_t rev, uint64_t cluster_id)
{
	c->st.applied_rev = rev;
	c->st.cluster_id = cluster_id;
	atomic_store_explicit(&c->st_applied_rev, rev, memory_order_relaxed);
}

static void config_changed(cluster_t *c)
{
	if (c->conf.config_changed)
		c->conf.config_changed(c->conf.arg);
}

/* ---- the full sync ---- */

static void fs_clear(cluster_t *c)
{
	for (int i = 0; i < PART_COUNT; i++)
		kv_list_clear(&c->fs_kv[i]);
	free(c->fs_next);
	c->fs_next = NULL;
	c->fs_part = 0;
}

static int kv_key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Nodes the database knows that etcd no longer lists: not live any more. */
static int nodes_retire(cluster_t *c, const kv_list_t *nodes)
{
	db_cluster_node_t *rows = NULL;
	size_t n = 0;
	int ret = db_cluster_nodes_list(c->db, &rows, &n);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (!rows[i].live)
			continue;
		bool found = false;
		for (size_t k = 0; k < nodes->n && !found; k++)
			found = strcmp(nodes->v[k].key + strlen(c->path_nodes), rows[i].name) == 0;
		if (!found)
			ret = node_row(c, rows[i].name, false, rows[i].revision, rows[i].down_votes,
				       rows[i].last_seen);
	}
	db_cluster_nodes_free(rows, n);
	return ret;
}

/*
 * Everything read at one revision, applied in one transaction: the pools and the DNSSEC keys
 * (those etcd no longer holds deleted), the journal, the nodes and the votes.  Then the health loop gets
 * the votes that differ from what it had.
 */
static int fs_apply(cluster_t *c)
{
	kv_list_t *pools = &c->fs_kv[PART_POOLS];
	bool anew = c->st.cluster_id != c->fs_header.cluster_id ||
		    c->fs_header.revision < c->st.applied_rev;
	const char **keys = gslb_calloc(pools->n ? pools->n : 1, sizeof(*keys));
	const char **zones = NULL;
	int ret = db_begin_write(c->db);
	if (ret < 0)
		goto out;
	/*
	 * Another etcd (a new cluster, or one restored from a backup): its revisions say
	 * nothing about the mirrored ones, so every pool is put again (and those etcd does not
	 * hold go below).
	 */
	if (anew && c->st.applied_rev > 0) {
		log_info("cluster: etcd's history differs from the one mirrored (cluster %" PRIx64
			 " revision %" PRId64 ", mirrored %" PRIx64 " revision %" PRId64
			 "): mirroring it anew",
			 c->fs_header.cluster_id, c->fs_header.revision, c->st.cluster_id,
			 c->st.applied_rev);
		ret = db_cluster_keys_forget(c->db);
		if (ret < 0)
			goto out;
	}
	for (size_t i = 0; i < pools->n; i++) {
		keys[i] = pools->v[i].key;
		ret = pool_put(c, &pools->v[i]);
		if (ret < 0)
			goto out;
	}
	gslb_sort(keys, pools->n, sizeof(*keys), kv_key_cmp);
	ret = db_cluster_pools_retain(c->db, keys, pools->n);
	if (ret < 0) {
		log_err("cluster: cannot remove the pools etcd no longer holds: %s",
			gslb_strerror(ret));
		goto out;
	}
	/* After db_cluster_pools_retain(), which forgets every other key's revision. */
	kv_list_t *dnssec = &c->fs_kv[PART_DNSSEC];
	zones = gslb_calloc(dnssec->n ? dnssec->n : 1, sizeof(*zones));
	for (size_t i = 0; i < dnssec->n; i++) {
		zones[i] = dnssec->v[i].key + strlen(c->path_dnssec);
		if ((ret = dnssec_put(c, &dnssec->v[i])) < 0)
			goto out;
	}
	ret = db_cluster_dnssec_retain(c->db, zones, dnssec->n);
	if (ret < 0) {
		log_err("cluster: cannot remove the DNSSEC keys etcd no longer holds: %s",
			gslb_strerror(ret));
		goto out;
	}
	for (size_t i = 0; i < c->fs_kv[PART_JOURNAL].n; i++)
		if ((ret = journal_put(c, &c->fs_kv[PART_JOURNAL].v[i])) < 0)
			goto out;
	/* Nodes: the peers not listed lose their slot and votes, the listed ones are live. */
	kv_list_t *nodes = &c->fs_kv[PART_NODES];
	for (size_t i = 0; i < HEALTH_NODES_MAX; i++) {
		peer_t *p = &c->peers[i];
		bool found = false;
		for (size_t k = 0; p->used && k < nodes->n && !found; k++)
			found = strcmp(nodes->v[k].key + strlen(c->path_nodes), p->name) == 0;
		if (p->used && !found)
			peer_gone(c, p);
	}
	c->self_live = false;
	if ((ret = nodes_retire(c, nodes)) < 0)
		goto out;
	for (size_t i = 0; i < nodes->n; i++)
		if ((ret = node_put(c, &nodes->v[i])) < 0)
			goto out;
	if ((ret = db_cluster_votes_clear(c->db)) < 0)
		goto out;
	c->fs_mark++;
	for (size_t i = 0; i < c->fs_kv[PART_VOTES].n; i++) {
		const etcd_kv_t *kv = &c->fs_kv[PART_VOTES].v[i];
		if ((ret = vote_apply(c, kv->key, kv)) < 0)
			goto out;
	}
	/* The votes handed to the health loop that etcd no longer holds. */
	for (size_t i = 0; c->rvotes.b && i <= c->rvotes.mask; i++)
		for (hent_t *e = c->rvotes.b[i], *next; e; e = next) {
			rvote_t *v = (rvote_t *)e;
			next = e->next;
			if (v->mark == c->fs_mark)
				continue;
			const char *target = strchr(v->h.key, '/') + 1;
			if (c->conf.health)
				health_loop_vote(c->conf.health, v->slot, target, HEALTH_VOTE_GONE);
			htab_del(&c->rvotes, e);
			free(v->h.key);
			free(v);
		}
	ret = applied_set(c, c->fs_header.revision, c->fs_header.cluster_id);
	if (ret == 0)
		ret = db_commit(c->db);
out:
	free(keys);
	free(zones);
	if (ret < 0) {
		db_rollback(c->db);
		log_err("cluster: the full sync at revision %" PRId64 " was not stored: %s",
			c->fs_header.revision, gslb_strerror(ret));
		return ret;
	}
	applied_done(c, c->fs_header.revision, c->fs_header.cluster_id);
	atomic_fetch_add_explicit(&c->st_resyncs, 1, memory_order_relaxed);
	log_info("cluster: full sync at revision %" PRId64 ": %zu pools, %zu nodes, %zu votes",
		 c->fs_header.revision, pools->n, nodes->n, c->fs_kv[PART_VOTES].n);
	c->need_full = false;
	c->node_dirty = true;
	config_changed(c);
	for (size_t i = 0; i < c->fs_kv[PART_SECRETS].n; i++)
		secret_put(c, &c->fs_kv[PART_SECRETS].v[i]);
	if (c->conf.cookie_secret && !c->cookie_known)
		cookie_create(c);
	return 0;
}

/*
 * Start the mirror again (a probe, then the watch or a full sync) after delay_ms.  A watch
 * under way is only dropped here: step() cancels it, never the client's own callback.
 */
static void sync_restart(cluster_t *c, uint64_t delay_ms)
{
	if (c->watch) {
		c->watch_old = c->watch;
		c->watch = NULL;
	}
	c->sync = SYNC_NONE;
	c->sync_epoch++;
	fs_clear(c);
	c->sync_retry_at = gslb_mono_ms() + delay_ms;
	step_soon(c, 0);
}

/* A request of the mirror failed: etcd away (try again later), or it needs a full sync. */
static void sync_fail(cluster_t *c, int err, const char *what)
{
	log_debug("cluster: %s: %s", what, etcd_why(c, err));
	if (unreachable(err))
		connected_set(c, false, err);
	sync_restart(c, err == ETCD_ECOMPACTED ? 0 : retry_delay(c));
}

static void fs_request(cluster_t *c);

static void fs_page_cb(int err, const json_t *result, void *arg)
{
	cluster_t *c = req_done(arg, false);
	if (!c)
		return;
	if (err) {
		if (err == ETCD_ECOMPACTED)
			c->need_full = true; /* the revision went away mid sync: start again */
		sync_fail(c, err, "full sync");
		return;
	}
	connected_set(c, true, 0);
	etcd_header_t h;
	etcd_kv_t *kvs = NULL;
	size_t n = 0;
	bool more = false;
	int ret = etcd_parse_range(result, &h, &kvs, &n, &more);
	if (ret < 0) {
		sync_fail(c, ret, "full sync: a range reply");
		return;
	}
	if (c->fs_part == PART_POOLS && !c->fs_next)
		c->fs_header = h; /* the first page: every other one is read at its revision */
	char *last = n ? gslb_strdup(kvs[n - 1].key) : NULL;
	kv_list_take(&c->fs_kv[c->fs_part], kvs, n, c->fs_next);
	free(c->fs_next);
	c->fs_next = NULL;
	if (more && last) {
		c->fs_next = last;
	} else {
		free(last);
		c->fs_part++;
	}
	if (c->fs_part < PART_COUNT) {
		fs_request(c);
		return;
	}
	ret = fs_apply(c);
	fs_clear(c);
	if (ret < 0) {
		/* The database refused it (logged): the whole sync again, a little later. */
		sync_restart(c, retry_delay(c));
		return;
	}
	watch_begin(c);
}

static void fs_request(cluster_t *c)
{
	char *dir = cat(c->prefix, part_dirs[c->fs_part]);
	char *end = etcd_prefix_end(dir);
	int64_t rev = c->fs_part == PART_POOLS && !c->fs_next ? 0 : c->fs_header.revision;
	json_t *body = etcd_range_body(c->fs_next ? c->fs_next : dir, end, rev,
				       PAGE_LIMIT + (c->fs_next ? 1 : 0), false, false);
	free(dir);
	free(end);
	req_t *r = req_new(c, c->sync_epoch);
	int ret = etcd_call(c->etcd, "/v3/kv/range", body, fs_page_cb, r);
	if (ret < 0) {
		free(r);
		sync_fail(c, ret, "full sync");
	}
}

static void fs_begin(cluster_t *c)
{
	fs_clear(c);
	c->sync = SYNC_BUSY;
	fs_request(c);
}

/* ---- the watch ---- */

static void watch_cb(int err, const etcd_watch_msg_t *msg, void *arg)
{
	req_t *r = arg;
	cluster_t *c = r->c;

	if (err) {
		/* The end of the watch: the client forgets its handle. */
		bool stale = c->stopping || r->epoch != c->sync_epoch;
		if (c->watch_old == r->w)
			c->watch_old = NULL;
		if (c->watch == r->w)
			c->watch = NULL;
		bool created = c->watch_created;
		free(r);
		if (stale || err == -ECANCELED)
			return;
		if (err == ETCD_ECOMPACTED) {
			log_info("cluster: etcd compacted the revisions after %" PRId64
				 ": reading the whole configuration again",
				 c->st.applied_rev);
			c->need_full = true;
			sync_restart(c, 0);
			return;
		}
		log_debug("cluster: the watch ended: %s", etcd_why(c, err));
		/* A member without a leader or a broken stream: the client moved to the next. */
		if (!created && unreachable(err))
			connected_set(c, false, err);
		sync_restart(c, created ? RETRY_MIN_MS : retry_delay(c));
		return;
	}
	if (c->stopping || r->epoch != c->sync_epoch)
		return; /* dropped: its last messages are not applied */
	connected_set(c, true, 0);
	if (msg->created) {
		c->watch_created = true;
		if (msg->header.cluster_id != c->st.cluster_id ||
		    msg->header.revision < c->st.applied_rev) {
			c->need_full = true;
			sync_restart(c, 0);
			return;
		}
	}
	if (msg->canceled) {
		if (msg->compact_revision > 0) {
			log_info("cluster: etcd compacted the revisions up to %" PRId64
				 " (mirrored: %" PRId64 "): reading the whole configuration again",
				 msg->compact_revision, c->st.applied_rev);
			c->need_full = true;
		}
		sync_restart(c, c->need_full ? 0 : RETRY_MIN_MS);
		return;
	}
	if (!msg->nevents)
		return;

	bool pools = false, config = false, lost = false;
	int64_t max_rev = c->st.applied_rev;
	int ret = db_begin_write(c->db);
	for (size_t i = 0; i < msg->nevents && ret == 0; i++) {
		const etcd_event_t *ev = &msg->events[i];
		ret = event_apply(c, ev, &pools, &config, &lost);
		if (ev->kv.mod_revision > max_rev)
			max_rev = ev->kv.mod_revision;
	}
	if (ret == 0)
		ret = applied_set(c, max_rev, c->st.cluster_id);
	if (ret == 0)
		ret = db_commit(c->db);
	if (ret < 0) {
		db_rollback(c->db);
		log_err("cluster: revision %" PRId64 " was not stored (%s): reading it again",
			max_rev, gslb_strerror(ret));
		/* From applied_rev + 1 again; what was handed to the health loop is idempotent. */
		sync_restart(c, retry_delay(c));
		return;
	}
	applied_done(c, max_rev, c->st.cluster_id);
	atomic_fetch_add_explicit(&c->st_events, msg->nevents, memory_order_relaxed);
	if (config)
		c->node_dirty = true;
	if (pools)
		config_changed(c);
	if (lost && !c->stopping)
		session_lost(c, "its key was deleted");
}

static void watch_begin(cluster_t *c)
{
	char *end = etcd_prefix_end(c->prefix);
	json_t *body = etcd_watch_body(c->prefix, end, c->st.applied_rev + 1, false);
	free(end);
	req_t *r = req_new(c, c->sync_epoch);
	c->watch_created = false;
	int ret = etcd_watch(c->etcd, body, watch_cb, r, &c->watch);
	if (ret < 0) {
		free(r);
		c->watch = NULL;
		sync_fail(c, ret, "watch");
		return;
	}
	r->w = c->watch;
	c->sync = SYNC_WATCHING;
	free(c->watch_endpoint);
	c->watch_endpoint = gslb_strdup(etcd_endpoint(c->etcd));
	log_debug("cluster: watching %s from revision %" PRId64 " on %s", c->prefix,
		  c->st.applied_rev + 1, c->watch_endpoint);
}

/*
 * Where to start: a full sync when nothing was mirrored yet, when etcd is another cluster or
 * its revision is below what was mirrored (restored from a backup), or when asked (compacted,
 * votes dropped); else the watch from applied_rev + 1.  A small range gives the header.
 */
static void probe_cb(int err, const json_t *result, void *arg)
{
	cluster_t *c = req_done(arg, false);
	if (!c)
		return;
	if (err) {
		sync_fail(c, err, "reading etcd's revision");
		return;
	}
	connected_set(c, true, 0);
	etcd_header_t h;
	int ret = etcd_parse_header(unwrap(result), &h);
	if (ret < 0) {
		sync_fail(c, ret, "reading etcd's revision");
		return;
	}
	if (c->need_full || c->st.applied_rev == 0 || h.cluster_id != c->st.cluster_id ||
	    h.revision < c->st.applied_rev)
		fs_begin(c);
	else
		watch_begin(c);
}

static void sync_begin(cluster_t *c)
{
	char *meta = cat(c->prefix, "meta");
	json_t *body = etcd_range_body(meta, NULL, 0, 0, false, true);
	free(meta);
	c->sync = SYNC_BUSY;
	c->sync_epoch++;
	req_t *r = req_new(c, c->sync_epoch);
	int ret = etcd_call(c->etcd, "/v3/kv/range", body, probe_cb, r);
	if (ret < 0) {
		free(r);
		sync_fail(c, ret, "reading etcd's revision");
	}
}

/* ---- own verdicts ---- */

static bool verdict_pending(const verdict_t *v)
{
	return v->want == HEALTH_VOTE_GONE ? v->sent != SENT_NONE : v->sent != v->want;
}

/* Queue v for publication, or free it when it is gone and etcd holds nothing of it. */
static void verdict_settle(cluster_t *c, verdict_t *v)
{
	if (v->inflight || v->queued)
		return;
	if (verdict_pending(v)) {
		if (c->ndirty == c->dirty_cap) {
			c->dirty_cap = c->dirty_cap ? c->dirty_cap * 2 : 64;
			c->dirty = gslb_realloc(c->dirty, c->dirty_cap * sizeof(*c->dirty));
		}
		c->dirty[c->ndirty++] = v;
		v->queued = true;
	} else if (v->want == HEALTH_VOTE_GONE) {
		htab_del(&c->verdicts, &v->h);
		free(v->h.key);
		free(v);
	}
}

static void verdict_take(cluster_t *c, const char *key, int vote)
{
	uint32_t h = str_hash(key);
	verdict_t *v = (verdict_t *)htab_find(&c->verdicts, key, h);
	if (!v) {
		if (vote == HEALTH_VOTE_GONE)
			return;
		v = gslb_calloc(1, sizeof(*v));
		v->h.key = gslb_strdup(key);
		v->h.hash = h;
		v->want = HEALTH_VOTE_GONE;
		v->sent = SENT_NONE;
		htab_add(&c->verdicts, &v->h);
	}
	int64_t down = c->ndown;
	down -= v->want == HEALTH_VOTE_DOWN;
	down += vote == HEALTH_VOTE_DOWN;
	if (down != c->ndown)
		c->node_dirty = true;
	c->ndown = down;
	v->want = (int8_t)vote;
	verdict_settle(c, v);
}

/* A new lease holds nothing: every own verdict is published again. */
static void verdicts_unsent(cluster_t *c)
{
	for (size_t i = 0; c->verdicts.b && i <= c->verdicts.mask; i++)
		for (hent_t *e = c->verdicts.b[i], *next; e; e = next) {
			next = e->next;
			verdict_t *v = (verdict_t *)e;
			v->sent = SENT_NONE;
			verdict_settle(c, v);
		}
}

static void batch_end(cluster_t *c, bool ok)
{
	for (size_t i = 0; i < c->nbatch; i++) {
		verdict_t *v = c->batch[i];
		v->inflight = false;
		if (ok)
			v->sent = v->sending == HEALTH_VOTE_GONE ? SENT_NONE : v->sending;
		verdict_settle(c, v);
	}
	c->nbatch = 0;
	c->publishing = false;
}

static void session_fail(cluster_t *c, int err, const char *what);

static void publish_cb(int err, const json_t *result, void *arg)
{
	req_t *r = arg;
	cluster_t *c = r->c;
	bool stale = c->stopping || r->epoch != c->sess_epoch;
	size_t n = c->nbatch;
	free(r);
	if (c->stopping)
		return;
	batch_end(c, !err && !stale);
	if (stale) {
		/* From a session before this one: its verdicts go under the new lease. */
		publish_next(c);
		return;
	}
	if (err == ETCD_EREQUEST) {
		/* "requested lease not found": the lease ended before the keepalive said so. */
		session_lost(c, "a vote was refused");
		return;
	}
	if (err) {
		session_fail(c, err, "publishing votes");
		return;
	}
	(void)result;
	connected_set(c, true, 0);
	atomic_fetch_add_explicit(&c->st_votes, n, memory_order_relaxed);
	publish_next(c);
}

/* The next transaction of at most TXN_OPS_MAX own verdicts, bound to the lease. */
static void publish_next(cluster_t *c)
{
	if (c->stopping || c->sess != SESS_READY || c->publishing || !c->ndirty)
		return;
	size_t n = c->ndirty < TXN_OPS_MAX ? c->ndirty : TXN_OPS_MAX;
	etcd_op_t ops[TXN_OPS_MAX];
	char *keys[TXN_OPS_MAX];

	c->batch = gslb_realloc(c->batch, TXN_OPS_MAX * sizeof(*c->batch));
	c->nbatch = 0;
	for (size_t i = 0; i < n; i++) {
		verdict_t *v = c->dirty[c->ndirty - n + i];
		v->queued = false;
		v->inflight = true;
		v->sending = v->want;
		c->batch[c->nbatch++] = v;
		keys[i] = cat(c->path_own_votes, v->h.key);
		const char *val = v->want == HEALTH_VOTE_UP ? "up" : "down";
		ops[i] = (etcd_op_t){ .is_delete = v->want == HEALTH_VOTE_GONE,
				      .key = keys[i],
				      .value = val,
				      .value_len = strlen(val),
				      .lease = c->lease };
	}
	c->ndirty -= n;
	json_t *body = etcd_txn_body(NULL, 0, ops, n);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	c->publishing = true;
	req_t *r = req_new(c, c->sess_epoch);
	int ret = etcd_call(c->etcd, "/v3/kv/txn", body, publish_cb, r);
	if (ret < 0) {
		free(r);
		batch_end(c, false);
		session_fail(c, ret, "publishing votes");
	}
}

/* ---- the session ---- */

static char *node_record(cluster_t *c)
{
	json_t *j = json_pack("{sIsIsIss}", "revision", (json_int_t)c->st.applied_rev, "down_votes",
			      (json_int_t)c->ndown, "started", (json_int_t)c->started_s, "version",
			      PACKAGE_VERSION);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* A request of the session failed: etcd away.  The lease is tried again first. */
static void session_fail(cluster_t *c, int err, const char *what)
{
	log_debug("cluster: %s: %s", what, etcd_why(c, err));
	c->sess = SESS_NONE;
	c->sess_epoch++;
	uv_timer_stop(&c->ka_timer);
	if (unreachable(err))
		connected_set(c, false, err);
	else if (err == ETCD_EREQUEST)
		c->lease = 0; /* "requested lease not found": the next try grants a new one */
	uint64_t delay = retry_delay(c);
	c->sess_retry_at = gslb_mono_ms() + delay;
	step_soon(c, delay);
}

/* The lease ended: a new one, the node registered and every own verdict published again. */
static void session_lost(cluster_t *c, const char *why)
{
	log_warn("cluster: the lease of node %s ended (%s): joining again", c->node, why);
	c->sess = SESS_NONE;
	c->sess_epoch++;
	c->lease = 0;
	uv_timer_stop(&c->ka_timer);
	c->sess_retry_at = 0;
	step_soon(c, 0);
}

static void keepalive_send(cluster_t *c);

static void ka_timer_cb(uv_timer_t *t)
{
	keepalive_send(t->data);
}

static void ready(cluster_t *c)
{
	c->sess = SESS_READY;
	c->dup_logged = false;
	uint64_t every = (uint64_t)c->conf.lease_s * 1000 / 3;
	uv_timer_start(&c->ka_timer, ka_timer_cb, every, every);
	publish_next(c);
}

static void ignore_cb(int err, const json_t *result, void *arg)
{
	(void)err;
	(void)result;
	(void)arg;
}

static void register_cb(int err, const json_t *result, void *arg)
{
	cluster_t *c = req_done(arg, true);
	if (!c)
		return;
	if (err) {
		session_fail(c, err, "registering the node");
		return;
	}
	connected_set(c, true, 0);
	etcd_header_t h;
	bool ok = false;
	int ret = etcd_parse_txn(result, &h, &ok);
	if (ret < 0) {
		session_fail(c, ret, "registering the node");
		return;
	}
	if (!ok) {
		/*
		 * Never two nodes with one name: their votes would be one.  The key may
		 * also be this node's own from a run that did not stop cleanly: it goes
		 * with that lease.
		 */
		if (!c->dup_logged)
			log_err("cluster: another live node is named %s (or this node's previous "
				"run, until its lease ends): not publishing votes; trying again "
				"every %" PRIu32 " s",
				c->node, c->conf.lease_s);
		c->dup_logged = true;
		json_t *body = json_pack("{sI}", "ID", (json_int_t)c->lease);
		etcd_call(c->etcd, "/v3/lease/revoke", body, ignore_cb, NULL);
		c->lease = 0;
		c->sess = SESS_NONE;
		c->sess_epoch++;
		c->sess_retry_at = gslb_mono_ms() + (uint64_t)c->conf.lease_s * 1000;
		step_soon(c, (uint64_t)c->conf.lease_s * 1000);
		return;
	}
	log_info("cluster: node %s joined with lease %" PRIx64 " (%" PRIu32 " s)", c->node,
		 (uint64_t)c->lease, c->conf.lease_s);
	c->registered_rev = h.revision;
	verdicts_unsent(c);
	ready(c);
}

static void grant_cb(int err, const json_t *result, void *arg)
{
	cluster_t *c = req_done(arg, true);
	if (!c)
		return;
	if (err) {
		session_fail(c, err, "granting a lease");
		return;
	}
	connected_set(c, true, 0);
	c->lease = jint(unwrap(result), "ID");
	if (c->lease == 0) {
		session_fail(c, -EPROTO, "granting a lease");
		return;
	}
	char *value = node_record(c);
	etcd_cmp_t cmp = { .key = c->self_key, .target = ETCD_CREATE, .value = 0 };
	etcd_op_t op = {
		.key = c->self_key, .value = value, .value_len = strlen(value), .lease = c->lease
	};
	json_t *body = etcd_txn_body(&cmp, 1, &op, 1);
	free(value);
	req_t *r = req_new(c, c->sess_epoch);
	int ret = etcd_call(c->etcd, "/v3/kv/txn", body, register_cb, r);
	if (ret < 0) {
		free(r);
		session_fail(c, ret, "registering the node");
	}
}

static void grant(cluster_t *c)
{
	json_t *body = json_pack("{sI}", "TTL", (json_int_t)c->conf.lease_s);
	req_t *r = req_new(c, c->sess_epoch);
	int ret = etcd_call(c->etcd, "/v3/lease/grant", body, grant_cb, r);
	if (ret < 0) {
		free(r);
		session_fail(c, ret, "granting a lease");
	}
}

/* A keepalive's reply: the lease lives on (TTL > 0), or it ended (no TTL: proto3 omits 0). */
static void keepalive_cb(int err, const json_t *result, void *arg)
{
	cluster_t *c = req_done(arg, true);
	if (!c)
		return;
	if (err) {
		session_fail(c, err, "keepalive");
		return;
	}
	connected_set(c, true, 0);
	if (jint(unwrap(result), "TTL") <= 0) {
		if (c->sess == SESS_READY) {
			session_lost(c, "keepalive without TTL");
		} else {
			/* The lease of before the failure is gone: a new one. */
			c->lease = 0;
			grant(c);
		}
		return;
	}
	if (c->sess != SESS_READY) {
		log_debug("cluster: lease %" PRIx64 " still alive", (uint64_t)c->lease);
		ready(c);
	}
	/* The watch must follow the endpoint the keepalive found alive (a frozen member). */
	if (c->sync == SYNC_WATCHING && c->watch_endpoint &&
	    strcmp(c->watch_endpoint, etcd_endpoint(c->etcd)) != 0) {
		log_debug("cluster: endpoint now %s: moving the watch", etcd_endpoint(c->etcd));
		sync_restart(c, 0);
	}
}

static void keepalive_send(cluster_t *c)
{
	json_t *body = json_pack("{sI}", "ID", (json_int_t)c->lease);
	req_t *r = req_new(c, c->sess_epoch);
	int ret = etcd_call(c->etcd, "/v3/lease/keepalive", body, keepalive_cb, r);
	if (ret < 0) {
		free(r);
		session_fail(c, ret, "keepalive");
	}
}

static void session_begin(cluster_t *c)
{
	c->sess = SESS_BUSY;
	c->sess_epoch++;
	if (c->lease)
		keepalive_send(c); /* after a failure: the lease may have outlived it */
	else
		grant(c);
}

/* ---- the node record ---- */

static void node_put_cb(int err, const json_t *result, void *arg)
{
	req_t *r = arg;
	cluster_t *c = r->c;
	bool stale = c->stopping || r->epoch != c->sess_epoch;
	free(r);
	(void)result;
	if (c->stopping)
		return;
	c->node_inflight = false;
	if (stale)
		return;
	if (err)
		c->node_dirty = true; /* the session's own failure handling does the rest */
}

static void node_timer_cb(uv_timer_t *t)
{
	cluster_t *c = t->data;
	if (c->sess != SESS_READY || !c->node_dirty || c->node_inflight)
		return;
	char *value = node_record(c);
	etcd_op_t op = {
		.key = c->self_key, .value = value, .value_len = strlen(value), .lease = c->lease
	};
	json_t *body = etcd_txn_body(NULL, 0, &op, 1);
	free(value);
	req_t *r = req_new(c, c->sess_epoch);
	c->node_dirty = false;
	c->node_inflight = true;
	if (etcd_call(c->etcd, "/v3/kv/txn", body, node_put_cb, r) < 0) {
		free(r);
		c->node_inflight = false;
		c->node_dirty = true;
	}
}

/* ---- the loop ---- */

/* What is due: a session, the mirror, a publication. */
static void step(cluster_t *c)
{
	if (c->stopping)
		return;
	if (c->watch_old) {
		etcd_watch_t *w = c->watch_old;
		c->watch_old = NULL;
		etcd_watch_cancel(w);
	}
	uint64_t now = gslb_mono_ms(), next = UINT64_MAX;
	if (c->sess == SESS_NONE) {
		if (now >= c->sess_retry_at)
			session_begin(c);
		else
			next = c->sess_retry_at;
	}
	if (c->sync == SYNC_NONE) {
		if (now >= c->sync_retry_at)
			sync_begin(c);
		else if (c->sync_retry_at < next)
			next = c->sync_retry_at;
	}
	publish_next(c);
	if (next != UINT64_MAX)
		step_soon(c, next - now);
}

static void step_timer_cb(uv_timer_t *t)
{
	step(t->data);
}

static void step_soon(cluster_t *c, uint64_t delay_ms)
{
	if (c->stopping)
		return;
	/* An earlier step already due stays due. */
	uint64_t due = uv_timer_get_due_in(&c->step_timer);
	if (uv_is_active((uv_handle_t *)&c->step_timer) && due <= delay_ms)
		return;
	uv_timer_start(&c->step_timer, step_timer_cb, delay_ms, 0);
}

static void close_handles(cluster_t *c)
{
	uv_handle_t *hs[] = {
		(uv_handle_t *)&c->wake,       (uv_handle_t *)&c->step_timer,
		(uv_handle_t *)&c->ka_timer,   (uv_handle_t *)&c->node_timer,
		(uv_handle_t *)&c->lost_timer, (uv_handle_t *)&c->stop_timer,
	};
	for (size_t i = 0; i < ARRAY_SIZE(hs); i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], NULL);
}

/* The lease revoked (or the time for it up): the client goes, then the handles. */
static void stop_timer_cb(uv_timer_t *t)
{
	cluster_t *c = t->data;
	if (c->stopped)
		return;
	c->stopped = true;
	etcd_free(c->etcd);
	c->etcd = NULL;
	c->connected = false;
	atomic_store_explicit(&c->st_connected, false, memory_order_relaxed);
	state_record(c);
	close_handles(c);
}

static void revoke_cb(int err, const json_t *result, void *arg)
{
	cluster_t *c = arg;
	(void)result;
	if (c->stopped)
		return;
	if (err && err != -ECANCELED)
		log_debug("cluster: revoking the lease: %s", etcd_why(c, err));
	else if (!err)
		log_info("cluster: lease revoked: node %s left", c->node);
	/* Not from inside the client's own callback: etcd_free() comes from the timer. */
	uv_timer_start(&c->stop_timer, stop_timer_cb, 0, 0);
}

static void stop_begin(cluster_t *c)
{
	c->stopping = true;
	uv_timer_stop(&c->step_timer);
	uv_timer_stop(&c->ka_timer);
	uv_timer_stop(&c->node_timer);
	uv_timer_stop(&c->lost_timer);
	etcd_watch_t *w[] = { c->watch, c->watch_old };
	c->watch = c->watch_old = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(w); i++)
		if (w[i])
			etcd_watch_cancel(w[i]);
	uv_timer_start(&c->stop_timer, stop_timer_cb, REVOKE_MS, 0);
	if (c->lease) {
		/* The node's votes vanish at once rather than at the end of the lease. */
		json_t *body = json_pack("{sI}", "ID", (json_int_t)c->lease);
		if (etcd_call(c->etcd, "/v3/lease/revoke", body, revoke_cb, c) == 0)
			return;
	}
	uv_timer_start(&c->stop_timer, stop_timer_cb, 0, 0);
}

/* The health loop's verdicts, and the stop request. */
static void wake_cb(uv_async_t *a)
{
	cluster_t *c = a->data;
	queued_verdict_t *q;
	size_t n;
	bool stop;

	pthread_mutex_lock(&c->mu);
	q = c->queue;
	n = c->nqueue;
	c->queue = NULL;
	c->nqueue = c->queue_cap = 0;
	stop = c->stop_req;
	pthread_mutex_unlock(&c->mu);
	for (size_t i = 0; i < n; i++) {
		if (!c->stopping)
			verdict_take(c, q[i].key, q[i].vote);
		free(q[i].key);
	}
	free(q);
	if (stop && !c->stopping)
		stop_begin(c);
	else
		publish_next(c);
}

/* Health thread: queue and wake, never wait. */
static void verdict_cb(const char *key, enum health_vote vote, void *arg)
{
	cluster_t *c = arg;
	pthread_mutex_lock(&c->mu);
	if (c->nqueue == c->queue_cap) {
		c->queue_cap = c->queue_cap ? c->queue_cap * 2 : 64;
		c->queue = gslb_realloc(c->queue, c->queue_cap * sizeof(*c->queue));
	}
	c->queue[c->nqueue++] = (queued_verdict_t){ gslb_strdup(key), (int8_t)vote };
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->wake);
}

static void thread_main(void *arg)
{
	cluster_t *c = arg;
	pthread_setname_np(pthread_self(), "cluster");
	step(c);
	uv_timer_start(&c->node_timer, node_timer_cb, NODE_RECORD_MS, NODE_RECORD_MS);
	uv_run(&c->loop, UV_RUN_DEFAULT);
}

static void conf_copy(cluster_t *c, const cluster_conf_t *conf)
{
	c->conf = *conf;
	c->prefix = gslb_strdup(conf->prefix ? conf->prefix : "/gslbd/");
	c->node = gslb_strdup(conf->node);
	c->db_path = gslb_strdup(conf->db_path);
	c->conf.prefix = c->prefix;
	c->conf.node = c->node;
	c->conf.db_path = c->db_path;
	/* The client keeps its own copy of the connection settings (the password too). */
	c->conf.etcd = (etcd_conf_t){ .nurls = conf->etcd.nurls };
	if (!c->conf.lease_s)
		c->conf.lease_s = 10;
	c->path_pools = cat(c->prefix, "pools/");
	c->path_nodes = cat(c->prefix, "nodes/");
	c->path_votes = cat(c->prefix, "votes/");
	c->path_journal = cat(c->prefix, "journal/");
	c->path_secrets = cat(c->prefix, "secrets/");
	c->path_dnssec = cat(c->prefix, "dnssec/");
	c->cookie_key = cat(c->prefix, "secrets/cookie");
	c->self_key = cat(c->path_nodes, c->node);
	char *mine = cat(c->path_votes, c->node);
	c->path_own_votes = cat(mine, "/");
	free(mine);
}

static void htab_free(htab_t *t)
{
	for (size_t i = 0; t->b && i <= t->mask; i++)
		for (hent_t *e = t->b[i], *next; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	free(t->b);
	*t = (htab_t){ 0 };
}

static void cluster_free(cluster_t *c)
{
	if (!c)
		return;
	db_close(c->db);
	htab_free(&c->verdicts);
	htab_free(&c->rvotes);
	for (size_t i = 0; i < c->nqueue; i++)
		free(c->queue[i].key);
	free(c->queue);
	free(c->dirty);
	free(c->batch);
	fs_clear(c);
	free(c->watch_endpoint);
	free(c->prefix);
	free(c->node);
	free(c->db_path);
	free(c->path_pools);
	free(c->path_nodes);
	free(c->path_votes);
	free(c->path_secrets);
	free(c->path_dnssec);
	free(c->cookie_key);
	free(c->path_journal);
	free(c->path_own_votes);
	free(c->self_key);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int cluster_start(const cluster_conf_t *conf, cluster_t **out)
{
	cluster_t *c = gslb_calloc(1, sizeof(*c));
	int ret;

	*out = NULL;
	pthread_mutex_init(&c->mu, NULL);
	conf_copy(c, conf);
	c->started_s = now_s();
	ret = db_open(c->db_path, DB_OPEN_WRITABLE, &c->db);
	if (ret < 0) {
		log_err("cluster: cannot open database %s: %s", c->db_path, gslb_strerror(ret));
		goto fail;
	}
	ret = db_cluster_state_get(c->db, &c->st);
	if (ret < 0 && ret != -ENOENT) {
		log_err("cluster: cannot read the mirror's state in %s: %s", c->db_path,
			gslb_strerror(ret));
		goto fail;
	}
	if (ret == -ENOENT)
		c->st = (db_cluster_state_t){ 0 };
	atomic_store(&c->st_applied_rev, c->st.applied_rev);
	/* A run that ended without a word may have left "connected" behind. */
	c->connected = false;
	state_record(c);
	ret = uv_loop_init(&c->loop);
	if (ret < 0) {
		log_err("cluster: cannot create the loop: %s", gslb_strerror(ret));
		goto fail;
	}
	etcd_conf_t ec = conf->etcd;
	if (!ec.timeout_ms)
		ec.timeout_ms = REQUEST_TIMEOUT_MS;
	ret = etcd_new(&c->loop, &ec, &c->etcd);
	if (ret < 0) {
		log_err("cluster: cannot create the etcd client: %s", gslb_strerror(ret));
		uv_loop_close(&c->loop);
		goto fail;
	}
	uv_async_init(&c->loop, &c->wake, wake_cb);
	c->wake.data = c;
	uv_timer_t *timers[] = { &c->step_timer, &c->ka_timer, &c->node_timer, &c->lost_timer,
				 &c->stop_timer };
	for (size_t i = 0; i < ARRAY_SIZE(timers); i++) {
		uv_timer_init(&c->loop, timers[i]);
		timers[i]->data = c;
	}
	ret = uv_thread_create(&c->thread, thread_main, c);
	if (ret < 0) {
		log_err("cluster: cannot start the thread: %s", gslb_strerror(ret));
		c->stopped = true;
		etcd_free(c->etcd);
		c->etcd = NULL;
		close_handles(c);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		uv_loop_close(&c->loop);
		goto fail;
	}
	/* The loop has not started (cluster.h): its first verdicts come once it does. */
	if (c->conf.health)
		health_loop_set_cluster(c->conf.health, verdict_cb, c);
	log_info("cluster: node %s, prefix %s, %zu etcd endpoints, lease %" PRIu32 " s", c->node,
		 c->prefix, c->conf.etcd.nurls, c->conf.lease_s);
	*out = c;
	return 0;
fail:
	cluster_free(c);
	return ret;
}

void cluster_stop(cluster_t *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop_req = true;
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->wake);
	uv_thread_join(&c->thread);
	uv_loop_close(&c->loop);
	cluster_free(c);
}

void cluster_stats_get(cluster_t *c, cluster_stats_t *st)
{
	st->connected = atomic_load_explicit(&c->st_connected, memory_order_relaxed);
	st->applied_rev = atomic_load_explicit(&c->st_applied_rev, memory_order_relaxed);
	st->nodes_live = atomic_load_explicit(&c->st_nodes_live, memory_order_relaxed);
	st->resyncs = atomic_load_explicit(&c->st_resyncs, memory_order_relaxed);
	st->events_applied = atomic_load_explicit(&c->st_events, memory_order_relaxed);
	st->votes_published = atomic_load_explicit(&c->st_votes, memory_order_relaxed);
	st->last_contact_ms = atomic_load_explicit(&c->st_contact_ms, memory_order_relaxed);
}
