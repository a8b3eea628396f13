/* SPDX-License-Identifier: MIT */
/* The answer path: one query's bytes in, the response's bytes out, over an immutable snapshot. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gslb/core.h"
#include "gslb/geo_cache.h"
#include "gslb/lb.h"
#include "gslb/zone.h"

/*
 * What the answer path reads: the zones, the pools placed in them, the
 * health table and the geo file of one snapshot (gslbd's snapshots are
 * built and published by src/server).  Never modified while a query may
 * read it; whoever builds it owns what it points to and frees it.
 */
typedef struct query_data {
	zone_set_t *zones;
	lb_set_t *pools;	   /* NULL when there are none */
	const lb_health_t *health; /* NULL: every target counts as up */
	const geo_db_t *geo;	   /* NULL: no geo file (client locations unknown) */
	/*
	 * Changes whenever the data does (gslbd: increases with every
	 * snapshot swap): a worker's geo cache is emptied when it or geo
	 * changes.
	 */
	uint64_t generation;
	/*
	 * DNS Cookies (RFC 7873): the secrets server cookies are made and
	 * checked with.  NULL: no cookie is sent (a malformed COOKIE option is
	 * still a FORMERR).
	 */
	const struct query_cookie_secrets *cookies;
	/*
	 * The signed zones (README "DNSSEC"): their keys and apex key RRsets.
	 * NULL when no zone is signed.
	 */
	const struct dnssec_set *dnssec;
} query_data_t;

/*
 * Server cookie secrets (RFC 9018 4.4): cookies are made with current and
 * accepted when made with current, accepted (when has_accepted: a secret
 * being rolled in or out on every node of one name) or previous (until
 * previous_until, Unix seconds: the secret replaced by the last rotation,
 * for as long as a cookie made with it may be valid).
 */
typedef struct query_cookie_secrets {
	uint8_t current[16];
	uint8_t accepted[16];
	uint8_t previous[16];
	bool has_accepted;
	int64_t previous_until;
	/* SipHash's state after the key, of each: query_cookie_secrets_ready() fills them. */
	gslb_sip_t sip_current, sip_accepted, sip_previous;
} query_cookie_secrets_t;

/** Make the SipHash states of s's secrets, after setting or changing them. */
void query_cookie_secrets_ready(query_cookie_secrets_t *s);

/*
 * Response rate limiting (README "On the open internet"), over UDP only:
 * rate responses a second per source network (/24, /56) and kind of
 * response, all the UDP threads of one address together, each allowing
 * rate / threads (SO_REUSEPORT spreads a source's ports over them).
 */
typedef struct query_rrl_conf {
	uint32_t rate; /* 0: off */
	uint32_t slip; /* every slip-th limited response goes out truncated; 0 none */
	uint32_t threads;
	const lb_net_t *exempt; /* never limited (host bits zero) */
	size_t nexempt;
} query_rrl_conf_t;

/* Fixed server identity, set once at start-up and shared read-only. */
typedef struct query_conf {
	const uint8_t *nsid; /* RFC 5001 payload or NULL */
	uint16_t nsid_len;
	const char *server_id;	    /* CH TXT id.server / hostname.bind, or NULL */
	const char *server_version; /* CH TXT version.bind / version.server, or NULL */
	query_rrl_conf_t rrl;
	/*
	 * RFC 7828: the idle timeout of TCP connections in units of 100 ms,
	 * given to a client that asks with edns-tcp-keepalive; 0: never sent.
	 */
	uint16_t tcp_keepalive;
} query_conf_t;

enum query_transport {
	QUERY_UDP = 0,
	QUERY_TCP = 1,
};

/*
 * The query types counted one by one (gslbd_queries_by_qtype_total); every
 * other type, and a query whose question could not be read, is
 * QUERY_QT_OTHER.  A fixed set, so the counters are a plain array.
 */
enum query_qtype_slot {
	QUERY_QT_A,
	QUERY_QT_NS,
	QUERY_QT_CNAME,
	QUERY_QT_SOA,
	QUERY_QT_PTR,
	QUERY_QT_MX,
	QUERY_QT_TXT,
	QUERY_QT_AAAA,
	QUERY_QT_SRV,
	QUERY_QT_NAPTR,
	QUERY_QT_DS,
	QUERY_QT_DNSKEY,
	QUERY_QT_SVCB,
	QUERY_QT_HTTPS,
	QUERY_QT_CAA,
	QUERY_QT_ANY,
	QUERY_QT_OTHER,
	QUERY_QT_COUNT,
};

/* query_qtype_slot(): slot + 1 by type below 256, 0 for the types not counted one by one */
static const uint8_t query_qtype_slots[256] = {
	[1] = QUERY_QT_A + 1,	   [2] = QUERY_QT_NS + 1,     [5] = QUERY_QT_CNAME + 1,
	[6] = QUERY_QT_SOA + 1,	   [12] = QUERY_QT_PTR + 1,   [15] = QUERY_QT_MX + 1,
	[16] = QUERY_QT_TXT + 1,   [28] = QUERY_QT_AAAA + 1,  [33] = QUERY_QT_SRV + 1,
	[35] = QUERY_QT_NAPTR + 1, [43] = QUERY_QT_DS + 1,    [48] = QUERY_QT_DNSKEY + 1,
	[64] = QUERY_QT_SVCB + 1,  [65] = QUERY_QT_HTTPS + 1, [255] = QUERY_QT_ANY + 1,
};

/** The counter slot of query type t: one table load (it is counted on every query). */
static inline enum query_qtype_slot query_qtype_slot(uint16_t t)
{
	if (t < 256) {
		unsigned s = query_qtype_slots[t];
		return s ? (enum query_qtype_slot)(s - 1) : QUERY_QT_OTHER;
	}
	return t == 257 ? QUERY_QT_CAA : QUERY_QT_OTHER;
}

/*
 * Per-worker counters; written only by the owning worker, read racily (one
 * aligned 64-bit load each) by the exit log and the metrics endpoint.
 */
typedef struct query_stats {
	uint64_t queries[2];		/* by transport; dropped messages not included */
	uint64_t qtype[QUERY_QT_COUNT]; /* the same queries by query type */
	uint64_t rcode[24];		/* by response rcode (extended ones included) */
	uint64_t dropped;		/* no response sent */
	uint64_t truncated;
	uint64_t geo_cache_hits;   /* client locations found in the worker's geo cache */
	uint64_t geo_cache_misses; /* ... and looked up in the geo database */
	uint64_t rrl_dropped;	   /* responses not sent: over the rate limit */
	uint64_t rrl_slipped;	   /* ... sent truncated instead (--rrl-slip) */
	uint64_t cookies_valid;	   /* queries with a server cookie that verified */
	uint64_t rrsigs_cached;	   /* RRSIGs written from the signature cache ... */
	uint64_t rrsigs_signed;	   /* ... and signed for the answer (a cache miss) */
	uint64_t rrsigs_failed;	   /* RRsets left unsigned: no memory, too large, a key failed */
} query_stats_t;

struct query_rrl;
struct query_sign;

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
	geo_cache_t *geo_cache;
	/*
	 * Answers by member: member_answers[m->slot]++ for each member in an
	 * answer whose slot is below nmember_answers.  Owned by the worker
	 * (src/server), which grows it between queries when a snapshot has
	 * more slots; NULL and 0 when nothing is counted.
	 */
	uint64_t *member_answers;
	uint32_t nmember_answers;
	/* Response rate limiting's table (conf->rrl.rate > 0), allocated by query_ctx_init(). */
	struct query_rrl *rrl;
	/*
	 * The time in Unix milliseconds for cookies and rate limits: 0 until a
	 * query needs it, then the clock's, kept for the rest of the batch.  A
	 * worker sets it to 0 before each batch of queries (one clock read for
	 * all of them at most); tests set it to the time they want.
	 */
	uint64_t now_ms;
	/*
	 * DNSSEC: the worker's signature cache (a fixed table, README
	 * "DNSSEC") and the room an RRset is put in canonical form in.
	 * Allocated the first time the worker signs, so a server with no
	 * signed zone does not carry it; NULL until then.
	 */
	struct query_sign *sign;
} query_ctx_t;

/**
 * Prepare a worker's context; seed mixes into its PRNG.  Allocates the
 * geo cache (the only allocation the answer path owns); release it with
 * query_ctx_fini().
 */
void query_ctx_init(query_ctx_t *ctx, const query_conf_t *conf, uint64_t seed);

/**
 * The address bytes of peer in *ip: 4 for IPv4 (an IPv4-mapped IPv6 address
 * counts as IPv4, as for geo), else 16.  Returns the length, 0 when peer is
 * NULL or neither.  What a cookie is bound to (RFC 9018 4.2), and what rate
 * limits and TCP limits count by.
 */
size_t query_peer_ip(const struct sockaddr *peer, const uint8_t **ip);

/**
 * The coarse clock (CLOCK_REALTIME_COARSE, a few ms of resolution) in Unix
 * milliseconds: what query_ctx_t.now_ms takes when first needed.
 */
uint64_t query_clock_ms(void);

/** Release what query_ctx_init() allocated.  The context can be initialised again. */
void query_ctx_fini(query_ctx_t *ctx);

/**
 * Answer one DNS message.  req/req_len is the query as received; the
 * response is written to resp, which must hold DNS_MSG_MAX bytes.  Over UDP
 * the response respects the size the client allows (512, or its EDNS size
 * capped at 1232) by truncating to the question with TC=1.  peer is the
 * client's address (for geo, cookies and the rate limit; may be NULL, except
 * over UDP with conf->rrl.rate set).  Returns the response length, or
 * 0 when no response must be sent (packets shorter than a header, QR=1).
 * Never allocates; snap may be NULL (every query is then REFUSED).
 */
size_t query_answer(query_ctx_t *ctx, const query_data_t *snap, const uint8_t *req, size_t req_len,
		    uint8_t *resp, int transport, const struct sockaddr *peer);
