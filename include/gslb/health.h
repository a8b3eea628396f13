/* SPDX-License-Identifier: MIT */
/*
 * Health checks: the probe loop, the rise/fall machine, the target keys (README "Health checks").
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gslb/lb_health.h"

/* ---- the state machine (pure, no I/O) ---- */

/*
 * The rise/fall state of one target.  Owned by whoever feeds it (the health
 * loop's thread); not thread-safe.  Invariant: when up, ok_run is 0 and
 * fail_run < fall; when down, fail_run is 0 and ok_run < rise.
 */
typedef struct health_state {
	bool up;
	uint16_t rise, fall; /* >= 1 */
	uint16_t ok_run;     /* consecutive successes while down */
	uint16_t fail_run;   /* consecutive failures while up */
} health_state_t;

/** Start in state up (or down) with no history; rise and fall of 0 count as 1. */
void health_state_init(health_state_t *s, bool up, unsigned rise, unsigned fall);

/** Change rise and fall (a reload) keeping the state and the current runs. */
void health_state_set_limits(health_state_t *s, unsigned rise, unsigned fall);

/**
 * Feed one probe result.  Returns true when it changed the state (up after
 * rise consecutive successes, down after fall consecutive failures).
 */
bool health_state_feed(health_state_t *s, bool ok);

/* ---- check configuration ---- */

enum health_type {
	HEALTH_TCP = 0,
	HEALTH_HTTP = 1,
	HEALTH_HTTPS = 2,
};

typedef struct health_range {
	uint16_t lo, hi; /* inclusive status codes */
} health_range_t;

#define HEALTH_EXPECT_MAX 16	  /* codes and ranges in one expect list */
#define HEALTH_EXPECT_ITEM_MAX 15 /* characters of one code or range ("200-299" has 7) */
#define HEALTH_STATUS_MIN 100	  /* the HTTP status codes (RFC 9110 15) */
#define HEALTH_STATUS_MAX 599
#define HEALTH_PATH_MAX 512	    /* bytes of a check's request target */
#define HEALTH_HOST_MAX 255	    /* bytes of a check's Host header and SNI */
#define HEALTH_BODY_MAX (64 * 1024) /* match looks at this much of the body */
#define HEALTH_MATCH_MAX 1024	    /* bytes of a check's match text */

/*
 * The ranges of a check's numbers (gslbctl(8), check set): gslbctl refuses
 * what is outside them, and so do the CHECK constraints of src/db/schema.sql,
 * which cannot name these (tests/unit/test_schema_limits.c keeps the two
 * equal).  The timeout is from 1 ms to less than the interval.
 */
#define HEALTH_INTERVAL_MS_MIN 1000
#define HEALTH_INTERVAL_MS_MAX 3600000
#define HEALTH_RISE_MAX 100 /* results in a row, from 1 */
#define HEALTH_FALL_MAX 100

/* A check's values where its configuration gives none (gslbctl(8), check set). */
#define HEALTH_INTERVAL_MS_DEFAULT 10000
#define HEALTH_TIMEOUT_MS_DEFAULT 2000 /* or half the interval when that is shorter */
#define HEALTH_RISE_DEFAULT 2
#define HEALTH_FALL_DEFAULT 3

/*
 * One check as the caller configured it.  The strings are borrowed for the
 * duration of the call that takes the struct; the loop copies what it keeps.
 */
typedef struct health_check_conf {
	enum health_type type;
	struct sockaddr_storage addr; /* AF_INET or AF_INET6 with the port set */
	const char *path;	      /* http(s): request target, NULL means "/" */
	const char *host;	      /* http(s): Host header and TLS SNI; NULL: the address */
	unsigned nexpect;	      /* 0 means the default 200-399 */
	health_range_t expect[HEALTH_EXPECT_MAX];
	const char *match;    /* NULL or "": no body check */
	uint32_t interval_ms; /* 0: HEALTH_INTERVAL_MS_DEFAULT */
	uint32_t timeout_ms;  /* 0: HEALTH_TIMEOUT_MS_DEFAULT; cut to below interval_ms */
	unsigned rise, fall;  /* 0: HEALTH_RISE_DEFAULT, HEALTH_FALL_DEFAULT */
	bool insecure;	      /* https: skip chain and host name verification */
	uint8_t quorum;	      /* enum health_quorum: combining a cluster's verdicts */
} health_check_conf_t;

/*
 * How a cluster's verdicts on a target combine into the state answered from (README "Two or
 * more nameservers"; the values are those of enum db_quorum).  Part of the target key when not
 * majority (" quorum any").
 */
enum health_quorum {
	HEALTH_QUORUM_MAJORITY = 0,
	HEALTH_QUORUM_ANY = 1,
	HEALTH_QUORUM_ALL = 2,
	HEALTH_QUORUM_LOCAL = 3,
};

/* The other nodes of a cluster, each in a slot 0..HEALTH_NODES_MAX-1 (this node has none). */
#define HEALTH_NODES_MAX 64

/* The other nodes' votes on one target: bit i is slot i. */
typedef struct health_votes {
	uint64_t voters; /* slots that report a verdict on the target */
	uint64_t downs;	 /* of those, the ones that say down */
} health_votes_t;

/**
 * The effective state of a target: this node's own verdict local_up together with the other
 * live nodes' votes v, combined by quorum.  majority: down when more than half of all reporting
 * nodes (this one included) say down; any: down when one does; all: down when every one does;
 * local: local_up.  v NULL: no other node votes.  Pure.
 */
bool health_effective_up(enum health_quorum quorum, bool local_up, const health_votes_t *v);

/** The word of a quorum, as in target keys and gslbctl: "majority", "any", "all", "local". */
const char *health_quorum_name(unsigned quorum);

/**
 * Make c's settings explicit, as the loop runs them: each 0 becomes its
 * default, the timeout is cut to below the interval, an empty match is no
 * match, a quorum it does not know is majority.  The strings stay borrowed.
 */
void health_check_defaults(health_check_conf_t *c);

/* A target to probe: its dedup key, its health table index and its check. */
typedef struct health_target_conf {
	const char *key; /* NULL: health_target_key() of check */
	uint32_t index;	 /* health table index chosen by the caller */
	health_check_conf_t check;
} health_target_conf_t;

/* Enough for the longest key of a check gslbctl accepts (path and host 512 bytes, match 1024). */
#define HEALTH_KEY_MAX 4096

/**
 * Write the key of the request a check sends into buf (len bytes): type,
 * address, port and, for http(s), Host and path, e.g. "tcp 192.0.2.1:25",
 * "http 192.0.2.1:80 www.example.com/health", "https [2001:db8::1]:443
 * www.example.com/".  It is the target key of a check with every other
 * setting at its default, and the whole key gslbd stored for any check before
 * the settings were part of it, so a target's state stored then is found
 * under it.  Returns buf (truncated if short).
 */
const char *health_probe_key(const health_check_conf_t *c, char *buf, size_t len);

/**
 * Write the dedup key of a check into buf (len bytes; HEALTH_KEY_MAX is
 * enough): its probe key (health_probe_key()) followed by every setting that
 * decides its verdict or when it is reached, where it differs from the
 * default, in this order and these words: "insecure" (https), "expect
 * 200,301-302" (the accepted codes as ranges), "interval 5s", "timeout 0.5s",
 * "rise 1", "fall 5", "quorum any" (or all, local: how a cluster's verdicts
 * combine), and last "match \"TEXT\"" (quotes and backslashes
 * escaped with a backslash, a tab as \t, other control bytes as \xHH),
 * e.g. "https 192.0.2.1:443 www.example.com/ insecure fall 5".  Two checks
 * with equal keys send the same probe and judge it alike, so they are one
 * target; checks that differ in anything else are targets of their own, each
 * with its own state.  Returns buf (truncated if short).
 */
const char *health_target_key(const health_check_conf_t *c, char *buf, size_t len);

/**
 * Parse an expect list such as "200", "200-299,301" into c->expect and
 * c->nexpect: at most HEALTH_EXPECT_MAX items separated by single commas,
 * each a status code or a range LO-HI of them, in decimal, from
 * HEALTH_STATUS_MIN to HEALTH_STATUS_MAX and at most HEALTH_EXPECT_ITEM_MAX
 * characters long.  The grammar of gslbctl --expect, which checks it with
 * health_expect_check().  Returns 0, or GSLB_EPARSE (nothing changed).
 */
int health_expect_parse(health_check_conf_t *c, const char *s);

/* What health_expect_check() found wrong with a list. */
enum health_expect_fault {
	HEALTH_EXPECT_EMPTY = 1,    /* the list is empty */
	HEALTH_EXPECT_ITEM = 2,	    /* an item is empty or longer than HEALTH_EXPECT_ITEM_MAX */
	HEALTH_EXPECT_CODE = 3,	    /* a code is not a number in the range: at, len */
	HEALTH_EXPECT_REVERSED = 4, /* a range ends below its start: lo, hi */
	HEALTH_EXPECT_TOO_MANY = 5, /* more than HEALTH_EXPECT_MAX items */
	HEALTH_EXPECT_TRAILING = 6, /* the list ends with a comma */
};

typedef struct health_expect_error {
	int fault;	/* enum health_expect_fault */
	const char *at; /* HEALTH_EXPECT_CODE: the code's text, len bytes inside the list */
	size_t len;
	unsigned lo, hi; /* HEALTH_EXPECT_REVERSED */
} health_expect_error_t;

/**
 * Check an expect list as health_expect_parse() reads it, item by item from
 * the left, so that a message can name the first fault.  Returns 0, or
 * GSLB_EPARSE with the fault in *err.
 */
int health_expect_check(const char *s, health_expect_error_t *err);

/** Is status accepted by c's expect list (or the default 200-399)? */
bool health_expect_match(const health_check_conf_t *c, unsigned status);

/**
 * Parse an HTTP/1.x status line (without its CRLF, len bytes).  Returns the
 * status code 100-599, or -1 when the line is not an HTTP/1.x status line.
 */
int health_http_status_parse(const char *line, size_t len);

/* ---- TLS certificates (https checks) ---- */

/* gslbd --cert-warn: a certificate that expires within this many days is logged (0: never). */
#define HEALTH_CERT_WARN_DAYS_DEFAULT 14
#define HEALTH_CERT_WARN_DAYS_MAX 3650 /* gslbd --help spells both out */

/**
 * How a certificate whose notAfter is not_after stands at now (both Unix
 * seconds), in whole days, into buf (len bytes): "expires in 5 days",
 * "expires in 1 day", "expires in less than a day", "expired 3 days ago",
 * "expired less than a day ago".  For gslbd's warning and gslbctl status.
 * Returns buf.
 */
const char *health_cert_expiry_text(int64_t not_after, int64_t now, char *buf, size_t len);

/* ---- the health loop ---- */

/*
 * The loop runs on its own thread with its own libuv loop; probe results
 * and state changes are queued for the database's health store (src/db),
 * whose own thread writes them, so a database that is locked or slow never
 * delays a probe.  Its API may be called from one control thread; DNS
 * workers only read the health table.
 */
typedef struct health_loop health_loop_t;

/**
 * A loop publishing into table (borrowed; it must outlive the loop), storing
 * results in the database db_path with db_health_open() (NULL: no storage,
 * every new target starts up), trusting ca_file (NULL: the system CA store) for https, and
 * pruning probe results older than history_hours.  Does not start it.
 * Returns NULL on failure (logged).  Caller frees with health_loop_free().
 */
health_loop_t *health_loop_new(lb_health_t *table, const char *db_path, const char *ca_file,
			       unsigned history_hours);

/**
 * Whether the CA certificates for https checks load from ca_file (NULL: the
 * system store), as health_loop_new() loads them: 0, or -1 after logging
 * the same message start-up would.  For --check-config.
 */
int health_ca_check(const char *ca_file);

/** Start the loop's thread.  Returns 0 or a negative errno value. */
int health_loop_start(health_loop_t *hl);

/**
 * Replace the set of targets (n of them, copied).  Callable before or after
 * start, from one control thread.  Targets whose key is already known keep
 * their state and counters.  A new one starts from the first of: its state
 * stored in the database; the state of a current target with the same probe
 * key (health_probe_key(): the check it replaces when only its settings
 * changed, or another check of the same request); the state stored under that
 * probe key (by a version of gslbd whose keys held no settings); up.  So
 * neither a restart nor a changed setting resurrects a dead target.  The
 * state of every target is published at its (new) index before this returns,
 * so the next query already sees it.  Duplicate keys (identical checks): the
 * first one wins.  Returns 0 or a negative errno value.
 */
int health_loop_set_targets(health_loop_t *hl, const health_target_conf_t *targets, size_t n);

/* Upper bounds (seconds) of the probe latency histogram's buckets; +Inf follows. */
#define HEALTH_LATENCY_BUCKETS 12
extern const double health_latency_bounds_s[HEALTH_LATENCY_BUCKETS];

/*
 * What the loop has done since it started, for the metrics endpoint.
 * Written only by the loop's thread, read by anyone with relaxed loads (so
 * two fields read one after the other may be one probe apart).
 */
typedef struct health_stats {
	_Atomic uint64_t probes[2];	 /* [0] failed, [1] succeeded */
	_Atomic uint64_t transitions[2]; /* state changes to [0] down, [1] up */
	/* Probes by latency: bucket i counts those <= bound i and above bound i - 1. */
	_Atomic uint64_t latency[HEALTH_LATENCY_BUCKETS + 1];
	_Atomic uint64_t latency_sum_us;
} health_stats_t;

/** The loop's counters (borrowed: valid until health_loop_free()). */
const health_stats_t *health_loop_stats(const health_loop_t *hl);

/* The storage of results and state changes in the database, for the metrics. */
typedef struct health_store_stats {
	uint64_t results_dropped; /* probe results never written (the database not writable) */
	uint64_t changes_dropped; /* state changes never written */
	uint64_t queued;	  /* results and changes waiting to be written */
} health_store_stats_t;

/** Read the storage counters (zero without a database, or once stopped).  Control thread. */
void health_loop_store_stats(const health_loop_t *hl, health_store_stats_t *st);

typedef void (*health_target_cb)(const char *key, bool up, void *arg);

/**
 * Call cb for every current target, in key order, with its published state.
 * From the control thread; cb runs under the loop's mutex and must not call
 * back into the loop.
 */
void health_loop_targets_each(health_loop_t *hl, health_target_cb cb, void *arg);

typedef void (*health_cert_cb)(const char *key, int64_t not_after, void *arg);

/**
 * Call cb for every current https target whose TLS handshake completed at
 * least once, in key order, with the notAfter (Unix seconds) of the leaf
 * certificate the last completed handshake saw (--insecure ones too).  From
 * the control thread; cb runs under the loop's mutex and must not call back
 * into the loop.
 */
void health_loop_certs_each(health_loop_t *hl, health_cert_cb cb, void *arg);

/**
 * Log a warning (once a day per target, and again when its certificate
 * changes) for an https target whose certificate expires within days, or
 * has expired; 0 logs none.  HEALTH_CERT_WARN_DAYS_DEFAULT until called.
 * Any thread, any time.
 */
void health_loop_set_cert_warn(health_loop_t *hl, unsigned days);

/* ---- in a cluster (src/cluster): votes in, own verdicts out ---- */

/*
 * This node's verdict on a target: up, down, or gone (the target left the configuration).
 * Called on the loop's thread for every local verdict change and, after set_targets, for each
 * new target's starting verdict and each removed target; must not block (queue and wake).
 */
enum health_vote { HEALTH_VOTE_GONE = -1, HEALTH_VOTE_DOWN = 0, HEALTH_VOTE_UP = 1 };
typedef void (*health_verdict_cb)(const char *key, enum health_vote vote, void *arg);

/**
 * Make the loop a cluster node's (before start): the state published to the health table,
 * stored as the target's state and recorded as a state change is the effective state
 * (health_effective_up()), not this node's own verdict, which goes to cb instead.  A new
 * target's own verdict starts where health_loop_set_targets() starts it (its stored state,
 * which is the effective one, or this node's verdict on the check it replaces).
 */
void health_loop_set_cluster(health_loop_t *hl, health_verdict_cb cb, void *arg);

/**
 * Node slot's vote on the target named key (any thread; applied on the loop's thread in call
 * order).  A vote on a key the loop does not probe (yet) is kept for when it does.
 */
void health_loop_vote(health_loop_t *hl, unsigned slot, const char *key, enum health_vote vote);

/**
 * Forget the votes of slot, or of every slot when slot < 0: the node's lease ended, or this
 * node lost etcd for longer than its lease and falls back on its own verdicts.
 */
void health_loop_votes_clear(health_loop_t *hl, int slot);

/** Stop probing, write the pending results and join the thread.  Idempotent. */
void health_loop_stop(health_loop_t *hl);

/** Stop if needed and free.  NULL is a no-op. */
void health_loop_free(health_loop_t *hl);
