/* SPDX-License-Identifier: MIT */
/* The answer path: one query's bytes in, the response's bytes out, over an immutable snapshot. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gslb/geo.h"
#include "gslb/lb.h"
#include "gslb/zone.h"

/*
 * Everything a DNS worker answers from.  Built by the control loop,
 * published with rcu_assign_pointer(), never modified afterwards, freed
 * after a grace period.  Pools and geo data join it in later issues.
 */
typedef struct gslb_snapshot {
	zone_set_t *zones;	   /* owned */
	lb_set_t *pools;	   /* owned; NULL when there are none */
	const lb_health_t *health; /* borrowed: lives as long as the process */
	const geo_db_t *geo;	   /* borrowed: the control loop closes it after a grace period */
	uint64_t generation;	   /* increases with every swap */
	uint64_t built_ms;	   /* CLOCK_REALTIME in ms when built */
} gslb_snapshot_t;

/** Free a snapshot and what it owns.  NULL is a no-op. */
void gslb_snapshot_free(gslb_snapshot_t *s);

/* Fixed server identity, set once at start-up and shared read-only. */
typedef struct query_conf {
	const uint8_t *nsid; /* RFC 5001 payload or NULL */
	uint16_t nsid_len;
	const char *server_id;	    /* CH TXT id.server / hostname.bind, or NULL */
	const char *server_version; /* CH TXT version.bind / version.server, or NULL */
} query_conf_t;

enum query_transport {
	QUERY_UDP = 0,
	QUERY_TCP = 1,
};

/* Per-worker counters; written only by the owning worker. */
typedef struct query_stats {
	uint64_t queries[2]; /* by transport */
	uint64_t rcode[24];  /* by response rcode (extended ones included) */
	uint64_t dropped;    /* no response sent */
	uint64_t truncated;
	uint64_t geo_cache_hits;   /* client locations found in the worker's geo cache */
	uint64_t geo_cache_misses; /* ... and looked up in the geo database */
} query_stats_t;

struct query_geo_cache;

/* Per-worker state for the answer path.  One per thread, never shared. */
typedef struct query_ctx {
	const query_conf_t *conf;
	uint64_t rng[2];
	query_stats_t stats;
	/*
	 * Client locations recently looked up (client network -> geo_info_t),
	 * valid for one snapshot generation.  NULL when it could not be
	 * allocated: every lookup then goes to the database.
	 */
	struct query_geo_cache *geo_cache;
} query_ctx_t;

/**
 * Prepare a worker's context; seed mixes into its PRNG.  Allocates the
 * geo cache (the only allocation the answer path owns); release it with
 * query_ctx_fini().
 */
void query_ctx_init(query_ctx_t *ctx, const query_conf_t *conf, uint64_t seed);

/** Release what query_ctx_init() allocated.  The context can be initialised again. */
void query_ctx_fini(query_ctx_t *ctx);

/**
 * Answer one DNS message.  req/req_len is the query as received; the
 * response is written to resp, which must hold DNS_MSG_MAX bytes.  Over UDP
 * the response respects the size the client allows (512, or its EDNS size
 * capped at 1232) by truncating to the question with TC=1.  peer is the
 * client's address (for geo; may be NULL).  Returns the response length, or
 * 0 when no response must be sent (packets shorter than a header, QR=1).
 * Never allocates; snap may be NULL (every query is then REFUSED).
 */
size_t query_answer(query_ctx_t *ctx, const gslb_snapshot_t *snap, const uint8_t *req,
		    size_t req_len, uint8_t *resp, int transport, const struct sockaddr *peer);
