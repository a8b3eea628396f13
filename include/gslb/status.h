/* SPDX-License-Identifier: MIT */
/* Every pool, member and address with its stored health: `gslbctl status` and gslbd's status page. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gslb/db.h"
#include "gslb/db_cluster.h"
#include "gslb/json.h"

/*
 * One builder for both readers, so that `gslbctl status --json` and gslbd's
 * GET /status.json cannot drift apart (README "Status page"): a field added
 * to what an address shows is added to cfg_status_load() and written by
 * cfg_status_json() and cfg_status_text() here, in one file.
 */

/* Whether a pool is served: an enum lb_serving, or one of these. */
#define CFG_STATUS_NOT_A_NAME (-1) /* the pool's name is no domain name: gslbd skips it */
#define CFG_STATUS_UNKNOWN (-2)	   /* the zones could not be read */

/**
 * Whether the pool named pool is served, as gslbd decides it: an enum
 * lb_serving, CFG_STATUS_NOT_A_NAME or CFG_STATUS_UNKNOWN.
 */
typedef int (*cfg_status_serving_cb)(void *arg, const char *pool);

/*
 * One stretch of a target's timeline: [from, to) in Unix seconds.  state is
 * "up", "down", or "unknown" for a time nothing was stored for.  reason is
 * the reason of the change that began it, or NULL.
 */
typedef struct cfg_status_segment {
	int64_t from, to;
	char *state;  /* owned */
	char *reason; /* owned, or NULL */
} cfg_status_segment_t;

/* A target's state over [from, to), from its stored state changes, oldest first. */
typedef struct cfg_status_timeline {
	int64_t from, to;
	bool cut; /* more changes than were read: the start is "unknown" up to the oldest read */
	size_t nchanges;
	size_t nsegs;
	cfg_status_segment_t *segs; /* owned; together they cover [from, to) */
} cfg_status_timeline_t;

/* One address of a member and its health as stored. */
typedef struct cfg_status_addr {
	const char *address; /* borrowed from the configuration, or from the alias state */
	/* README "Alias members": the state of the alias it was resolved from, or NULL (its own) */
	const db_alias_state_t *alias; /* borrowed from cfg_status_t.aliases */
	char *key;	   /* the target key gslbd probes it under, owned; NULL without a check */
	char *pkey;	   /* the key of the probe alone when it differs from key, owned, or NULL */
	const char *shown; /* the key whose state is shown (key or pkey), or NULL */
	db_target_state_t st;
	const char *state;  /* "up", "down" ...: borrowed from st, or "up" when never probed */
	const char *reason; /* borrowed from st, or a constant text */
	db_cluster_vote_t *votes; /* each node's vote on a cluster node, owned */
	size_t nvotes;
	cfg_status_timeline_t *timeline; /* owned; NULL until cfg_status_timeline_load() */
} cfg_status_addr_t;

/*
 * A member and the addresses it serves (lb_member_address()): its own, then
 * those of its alias as gslbd last resolved them.
 */
typedef struct cfg_status_member {
	const db_member_t *m;	       /* borrowed from the configuration */
	const db_alias_state_t *alias; /* m->alias's state, NULL when none (or none stored) */
	size_t naddrs;		       /* m->naddresses, and the alias's addresses */
	cfg_status_addr_t *addrs;      /* naddrs of them, owned */
} cfg_status_member_t;

typedef struct cfg_status_pool {
	const db_pool_t *p;	      /* borrowed from the configuration */
	int serving;		      /* as cfg_status_serving_cb returns it */
	cfg_status_member_t *members; /* p->nmembers of them, owned */
} cfg_status_pool_t;

/* The status of a configuration's pools.  Touched by one thread at a time. */
typedef struct cfg_status {
	const char *zones;    /* the zone directory, borrowed */
	bool zones_readable;  /* false: whether pools are served is unknown */
	bool cluster;	      /* a cluster node: each address has the nodes' votes */
	db_aliases_t aliases; /* what gslbd resolved for alias members (alias_state), owned */
	size_t npools;
	cfg_status_pool_t *pools; /* owned: the pools asked for, in the configuration's order */
} cfg_status_t;

/**
 * Read the stored health of every address of cfg's pools (only the pool
 * named pool when it is not NULL), the resolved addresses of alias members
 * among them, from db: the state of its target key
 * (the probe's own key when the target was never probed under its key,
 * as gslbd starts it from there), and on a cluster node every node's vote.
 * serving(arg, name) says whether each pool is served; zones and
 * zones_readable are copied into the result.  cfg and zones must outlive
 * *out.  Returns 0 and *out (free with cfg_status_free()), or the negative
 * code of the database.
 */
int cfg_status_load(db_t *db, const db_config_t *cfg, const char *pool,
		    cfg_status_serving_cb serving, void *arg, const char *zones,
		    bool zones_readable, cfg_status_t **out);

/** Free a status and its timelines.  NULL is a no-op. */
void cfg_status_free(cfg_status_t *s);

/**
 * Read into a->timeline (replacing one there) the state of a's target over
 * [from, to) Unix seconds from its newest max_changes state changes; an
 * address without a check gets none.  Before the oldest change read the
 * state is the one it changed from (from the start, or "unknown" when
 * there may be more changes than were read); with no change in the window,
 * the stored state since its "since", and "unknown" before.  0 or the
 * negative code of the database.
 */
int cfg_status_timeline_load(db_t *db, cfg_status_addr_t *a, int64_t from, int64_t to,
			     unsigned max_changes);

/**
 * The `gslbctl status --json` document of s (README "gslbctl status"): an
 * address with a timeline loaded also has "timeline": {"from", "to",
 * "cut", "segments": [{"from", "to", "state", "reason"}]}.
 */
void cfg_status_json(jw_t *w, const cfg_status_t *s);

/**
 * "expires in 5 days" (or "expired 2 days ago") into buf for an https
 * address whose certificate ends within gslbd's default --cert-warn window
 * of now, or has ended; NULL otherwise (none seen, or further away).
 */
const char *cfg_status_cert_flag(const cfg_status_addr_t *a, int64_t now, char *buf, size_t len);

/** The text `gslbctl status` prints, to f. */
void cfg_status_text(FILE *f, const cfg_status_t *s);

/**
 * The state name ("serving" of the JSON) of a pool's serving value:
 * lb_serving_name(), "not a domain name" or "unknown".
 */
const char *cfg_status_serving_name(int serving);

/**
 * The health target key of one served address, as gslbd stores it (owned
 * by the caller), or NULL when the member has no check or gslbd does not
 * probe the address; *probe (when probe is not NULL) the key of the probe
 * alone when it differs, else NULL (README "Health checks": older keys).
 */
char *cfg_status_target_key(const db_pool_t *p, const db_member_t *m, const char *addr,
			    char **probe);

/**
 * When alias addresses expire, relative to now: "expires in 23 s", or
 * "expired 5 s ago", into buf (README "Alias members").
 */
const char *cfg_status_expiry(int64_t expires, int64_t now, char *buf, size_t len);

/** RFC 3339 UTC text of Unix seconds into buf; "" for 0 or less (never). */
const char *cfg_status_time(int64_t t, char *buf, size_t len);
