/* SPDX-License-Identifier: MIT */
/* Private to src/query: DNS Cookies and response rate limiting, called by query.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <endian.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "gslb/query.h"

/* RFC 9018 4.3: a server cookie is valid from 5 minutes ahead to 1 hour old. */
#define COOKIE_MAX_AGE 3600
#define COOKIE_MAX_AHEAD 300
/* ... and one over half an hour old is replaced by a fresh one in the response. */
#define COOKIE_REUSE_AGE 1800

enum cookie_verdict {
	COOKIE_INVALID,
	COOKIE_VALID,
	COOKIE_REUSE, /* valid, and young enough to send back as it is */
};

/*
 * Whether server (16 bytes) is a server cookie made by this server for
 * client (8 bytes) and ip: version 1, made with one of s's secrets, its
 * time within RFC 9018's bounds at now (Unix seconds).
 */
int cookie_verify(const query_cookie_secrets_t *s, const uint8_t *client, const uint8_t *server,
		  const uint8_t *ip, size_t iplen, uint32_t now);

/* A fresh server cookie for client and ip at now, made with s->current, into out[16]. */
void cookie_make(const query_cookie_secrets_t *s, const uint8_t *client, const uint8_t *ip,
		 size_t iplen, uint32_t now, uint8_t out[16]);

/* Response kinds counted apart (README "On the open internet"). */
enum rrl_kind {
	RRL_ANSWER,   /* positive, per name and type */
	RRL_WILDCARD, /* positive from a wildcard, per zone */
	RRL_REFERRAL, /* per zone */
	RRL_NODATA,   /* per zone */
	RRL_NXDOMAIN, /* per zone */
	RRL_ERROR,    /* any other rcode, per zone (or none: outside every zone) */
};

enum rrl_verdict {
	RRL_PASS,
	RRL_DROP,
	RRL_SLIP,
};

/*
 * Response rate limiting: a token bucket per (source network, kind of
 * response, name or zone) in a fixed table per worker, as BIND and Knot
 * limit responses.  The table is 4-way set associative with the least
 * recently used way of a set replaced, so its memory is fixed whatever the
 * number of sources: a flood of spoofed sources only evicts each other,
 * and an entry evicted comes back with a full bucket (at worst one more
 * second's worth of answers to it).
 *
 * Buckets count in units where one response costs 1000 x threads and a
 * millisecond brings rate units: each of the threads of one address
 * allows rate / threads responses a second, the whole address rate, with
 * a burst of one second's worth (at least one response).  No lock: each
 * worker owns its table.
 */
#define RRL_SETS_LOG2 14
#define RRL_SETS (1u << RRL_SETS_LOG2)
#define RRL_WAYS 4

/* 16 bytes: the key's upper 56 bits and a slip counter, when it was last seen, its credit. */
struct rrl_entry {
	uint64_t tag; /* key & ~0xff | limited responses since the last slip (low byte) */
	uint32_t stamp;
	int32_t credit;
};

struct query_rrl {
	uint64_t seed;
	const query_rrl_conf_t *conf;
	uint32_t rate;
	int32_t cost; /* of one response */
	int32_t cap;  /* a full bucket */
	struct rrl_entry e[RRL_SETS * RRL_WAYS];
};

/* A worker's table for c (c->rate > 0): allocated with query_ctx_init(). */
struct query_rrl *rrl_new(const query_rrl_conf_t *c, uint64_t seed);
void rrl_free(struct query_rrl *t);

/* Whether peer is in one of c's exempt networks. */
bool rrl_exempt(const query_rrl_conf_t *c, const struct sockaddr *peer);

/* What a response over the limit becomes: every slip-th of entry e is truncated. */
enum rrl_verdict rrl_limited(struct rrl_entry *e, const query_rrl_conf_t *c,
			     const struct sockaddr *peer, uint64_t tag);

/*
 * The source network of peer as one word: the /24 of an IPv4 address (an
 * IPv4-mapped IPv6 one too), the /56 of an IPv6 address, with the family
 * in the low bits so the two never meet.
 */
static inline uint64_t rrl_source(const struct sockaddr *peer)
{
	if (peer->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
		uint64_t hi;
		memcpy(&hi, a, 8);
		/* ::ffff:0:0/96: the IPv4 address in the last 4 bytes. */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			uint32_t v4;
			memcpy(&v4, a + 12, 4);
			return (uint64_t)(v4 & htonl(0xffffff00u)) << 8 | 4;
		}
		/* The /56, and a byte that IPv4 keys (40 bits) never have. */
		return (hi & htobe64(0xffffffffffffff00ull)) ^ htobe64(6);
	}
	uint32_t v4 = ((const struct sockaddr_in *)peer)->sin_addr.s_addr;
	return (uint64_t)(v4 & htonl(0xffffff00u)) << 8 | 4;
}

/*
 * The verdict on one UDP response to peer of kind, counted by what (a name
 * hash and type, or a zone's address) at now_ms.  Never allocates.
 */
static inline enum rrl_verdict rrl_check(struct query_rrl *t, const struct sockaddr *peer,
					 unsigned kind, uint64_t what, uint64_t now_ms)
{
	uint64_t k = (rrl_source(peer) ^ t->seed) * 0x9e3779b97f4a7c15ULL;
	k = (k ^ what ^ (uint64_t)kind << 59) * 0xbf58476d1ce4e5b9ULL;
	/* A product's high bits depend on every bit of its input: they pick the set. */
	uint64_t tag = k & ~(uint64_t)0xff;
	struct rrl_entry *set = &t->e[(k >> (64 - RRL_SETS_LOG2)) * RRL_WAYS];
	uint32_t now = (uint32_t)now_ms;
	int32_t cost = t->cost, cap = t->cap;

	struct rrl_entry *e = NULL;
	for (unsigned w = 0; w < RRL_WAYS; w++)
		if ((set[w].tag & ~(uint64_t)0xff) == tag) {
			e = &set[w];
			break;
		}
	if (__builtin_expect(e != NULL, 1)) {
		/* A clock that went back brings nothing; a long pause, at most a full bucket. */
		uint32_t elapsed = now - e->stamp;
		if (elapsed) {
			int64_t credit = (int64_t)e->credit +
					 (int64_t)(elapsed & 0x7fffffffu) * t->rate;
			if (elapsed >= 0x80000000u)
				credit = e->credit;
			e->credit = credit > cap ? cap : (int32_t)credit;
		}
	} else {
		/* The least recently seen way, by wrapping subtraction. */
		e = set;
		for (unsigned w = 1; w < RRL_WAYS; w++)
			if (now - set[w].stamp > now - e->stamp)
				e = &set[w];
		e->tag = tag;
		e->credit = cap;
	}
	e->stamp = now;
	if (__builtin_expect(e->credit >= cost, 1)) {
		e->credit -= cost;
		return RRL_PASS;
	}
	return rrl_limited(e, t->conf, peer, tag);
}
