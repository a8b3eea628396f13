/* SPDX-License-Identifier: MIT */
/*
 * Response rate limiting: a token bucket per (source network, kind of
 * response, name) in a fixed table per worker, as BIND and Knot limit
 * responses (README "On the open internet").  The table is 4-way set
 * associative with the least recently used way of a set replaced, so its
 * memory is fixed whatever the number of sources: a flood of spoofed
 * sources only evicts each other, and an entry evicted comes back with a
 * full bucket (at worst one extra second's worth of answers to it).
 *
 * Buckets count in units where one response costs 1000 x threads and a
 * millisecond brings rate units: each of the threads of one address
 * allows rate / threads responses a second, the whole address rate, with
 * a burst of one second's worth.  No lock: each worker owns its table.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "internal.h"

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
	struct rrl_entry e[RRL_SETS * RRL_WAYS];
};

struct query_rrl *rrl_new(uint64_t seed)
{
	struct query_rrl *t = gslb_calloc(1, sizeof(*t));
	t->seed = seed | 1;
	return t;
}

void rrl_free(struct query_rrl *t)
{
	free(t);
}

/*
 * The source network of peer as one word: the /24 of an IPv4 address (an
 * IPv4-mapped IPv6 one too), the /56 of an IPv6 address, with the family
 * in the low byte so the two never meet.
 */
static inline uint64_t source_net(const struct sockaddr *peer)
{
	if (peer->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
		if (memcmp(a, mapped, sizeof(mapped)) != 0) {
			uint64_t v = 0;
			for (unsigned i = 0; i < 7; i++)
				v = v << 8 | a[i];
			return v << 8 | 6;
		}
		return ((uint64_t)a[12] << 24 | (uint64_t)a[13] << 16 | (uint64_t)a[14] << 8) | 4;
	}
	const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
	return ((uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 | (uint64_t)a[2] << 8) | 4;
}

/* Whether peer is in one of the exempt networks (only asked of a response about to be limited). */
static bool exempt(const query_rrl_conf_t *c, const struct sockaddr *peer)
{
	uint8_t addr[16];
	uint8_t family;
	if (peer->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		family = 4;
	} else {
		memcpy(addr, ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr, 16);
		family = 6;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
		if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
			memmove(addr, addr + 12, 4);
			family = 4;
		}
	}
	for (size_t i = 0; i < c->nexempt; i++) {
		const lb_net_t *n = &c->exempt[i];
		if (n->family != family)
			continue;
		unsigned whole = n->len / 8, bits = n->len % 8;
		if (memcmp(addr, n->addr, whole) != 0)
			continue;
		if (bits && ((addr[whole] ^ n->addr[whole]) & (uint8_t)(0xff00u >> bits)))
			continue;
		return true;
	}
	return false;
}

enum rrl_verdict rrl_check(struct query_rrl *t, const query_rrl_conf_t *c,
			   const struct sockaddr *peer, enum rrl_kind kind, const uint8_t *name,
			   size_t len, uint16_t qtype, uint64_t now_ms)
{
	uint64_t k = source_net(peer) ^ ((uint64_t)kind << 56) ^ ((uint64_t)qtype << 40);
	k = (k ^ t->seed) * 0x9e3779b97f4a7c15ULL;
	k ^= (uint64_t)gslb_hash(name, len) << 16;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 31;
	uint64_t tag = k & ~(uint64_t)0xff;
	struct rrl_entry *set = &t->e[(k >> 8 & (RRL_SETS - 1)) * RRL_WAYS];
	uint32_t now = (uint32_t)now_ms;
	int32_t cost = (int32_t)(c->threads * 1000u);
	/* At least one response: a rate below the number of threads is one per thread now and then. */
	int32_t cap = c->rate * 1000u > (uint32_t)cost ? (int32_t)(c->rate * 1000u) : cost;

	struct rrl_entry *e = NULL, *victim = set;
	for (unsigned w = 0; w < RRL_WAYS; w++) {
		if ((set[w].tag & ~(uint64_t)0xff) == tag) {
			e = &set[w];
			break;
		}
		/* The least recently seen way: the largest age, by wrapping subtraction. */
		if (now - set[w].stamp > now - victim->stamp)
			victim = &set[w];
	}
	if (!e) {
		e = victim;
		e->tag = tag;
		e->credit = cap;
	} else {
		/* A clock that went back brings nothing; a long pause, at most a full bucket. */
		uint32_t elapsed = now - e->stamp;
		int64_t credit = (int64_t)e->credit;
		if (elapsed < 0x80000000u)
			credit += (int64_t)elapsed * c->rate;
		e->credit = credit > cap ? cap : (int32_t)credit;
	}
	e->stamp = now;
	if (e->credit >= cost) {
		e->credit -= cost;
		return RRL_PASS;
	}
	if (c->nexempt && exempt(c, peer))
		return RRL_PASS;
	if (!c->slip)
		return RRL_DROP;
	/* Every slip-th limited response of this entry goes out truncated. */
	uint64_t n = (e->tag & 0xff) + 1;
	if (n >= c->slip) {
		e->tag = tag;
		return RRL_SLIP;
	}
	e->tag = tag | n;
	return RRL_DROP;
}
