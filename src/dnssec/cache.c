/* SPDX-License-Identifier: MIT */
/*
 * The signature cache: one per worker, a fixed table of four-way buckets
 * allocated once, keyed by 128 bits that tell what was signed (the key, the
 * RRset's owner, type, TTL and RDATA in canonical order), so a hit finds
 * the RRSIG record but its owner and signer's name ready to copy, and
 * allocates nothing.
 */
#include <string.h>
#include <sys/random.h>

#include "gslb/dns.h"
#include "gslb/dnssec.h"
#include "internal.h"

/*
 * Entries a bucket holds, and each key has two buckets: its first (the
 * key's low bits), then, when that one is full, its second (bits of the
 * key's high half).  With one bucket of four, 1,000 RRsets in 8,192
 * entries put five keys in one bucket in about one start in four, and a
 * walk over them then missed those five at every pass (each evicting the
 * next): 0.5 % of the answers, a signature each.  With a second choice a
 * key is lost only when eight entries are taken.
 */
#define WAYS 4

struct entry {
	uint64_t h[2];
	uint32_t inception; /* 0: empty */
	uint32_t refresh;   /* half through its validity: a miss from then on */
	uint8_t rec[DNSSEC_CACHE_REC];
};

struct dnssec_cache {
	uint32_t mask;	  /* buckets - 1 */
	uint64_t seed[2]; /* of dnssec_cache_hash() and dnssec_cache_key(), random */
	dnssec_cache_stats_t stats;
	struct entry (*b)[WAYS];
};

dnssec_cache_t *dnssec_cache_new(unsigned bits)
{
	if (bits < 2 || bits > 24)
		return NULL;
	dnssec_cache_t *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	size_t nb = (size_t)1 << (bits - 2);
	c->b = calloc(nb, sizeof(*c->b));
	if (!c->b) {
		free(c);
		return NULL;
	}
	c->mask = (uint32_t)(nb - 1);
	if (getrandom(c->seed, sizeof(c->seed), 0) != sizeof(c->seed)) {
		c->seed[0] = (uint64_t)(uintptr_t)c ^ 0x243f6a8885a308d3ULL;
		c->seed[1] = (uint64_t)(uintptr_t)c->b ^ 0x13198a2e03707344ULL;
	}
	return c;
}

void dnssec_cache_free(dnssec_cache_t *c)
{
	if (!c)
		return;
	free(c->b);
	free(c);
}

/* The key's second bucket: never its first, so that it has eight entries to go to. */
static inline uint32_t second(const dnssec_cache_t *c, const uint64_t h[2])
{
	uint32_t b = (uint32_t)(h[0] >> 40) & c->mask;
	return b != (h[0] & c->mask) ? b : (b ^ 1) & c->mask;
}

static inline struct entry *find(struct entry *b, const uint64_t h[2])
{
	for (int i = 0; i < WAYS; i++)
		if (b[i].h[0] == h[0] && b[i].h[1] == h[1] && b[i].inception)
			return &b[i];
	return NULL;
}

const uint8_t *dnssec_cache_get(dnssec_cache_t *c, const uint64_t h[2], uint32_t now)
{
	struct entry *e = find(c->b[h[0] & c->mask], h);
	if (!e && !(e = find(c->b[second(c, h)], h)))
		return NULL;
	/*
	 * README "DNSSEC": a signature is used until it is half through its
	 * validity, then made again, so what a resolver caches always has days
	 * left.
	 */
	if ((int32_t)(now - e->inception) < 0 || (int32_t)(now - e->refresh) >= 0)
		return NULL;
	return e->rec;
}

void dnssec_cache_put(dnssec_cache_t *c, const uint64_t h[2], const uint8_t *rec)
{
	uint32_t expiration = dns_get32(rec + 10 + 8);
	uint32_t inception = dns_get32(rec + 10 + 12);
	/* 0 marks an empty entry: a signature made in 1970 is kept as made a second later. */
	if (!inception)
		inception = 1;
	struct entry *b[2] = { c->b[h[0] & c->mask], c->b[second(c, h)] };
	/*
	 * The same key's entry, else an empty one, the first bucket's first,
	 * else the oldest of both (the first of those).
	 */
	struct entry *e = find(b[0], h);
	if (!e)
		e = find(b[1], h);
	for (int j = 0; j < 2 && !e; j++)
		for (int i = 0; i < WAYS && !e; i++)
			if (!b[j][i].inception)
				e = &b[j][i];
	if (!e) {
		e = &b[0][0];
		for (int j = 0; j < 2; j++)
			for (int i = 0; i < WAYS; i++)
				if ((int32_t)(b[j][i].inception - e->inception) < 0)
					e = &b[j][i];
		c->stats.evictions++;
	}
	e->h[0] = h[0];
	e->h[1] = h[1];
	e->inception = inception;
	e->refresh = inception + (expiration - inception) / 2;
	memcpy(e->rec, rec, DNSSEC_CACHE_REC);
}

const dnssec_cache_stats_t *dnssec_cache_stats(const dnssec_cache_t *c)
{
	return &c->stats;
}

/* A multiply and xor-shifts: the mixing step of both lanes, and their finish. */
static inline uint64_t mix(uint64_t h, uint64_t k)
{
	h = (h ^ k) * 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 31);
}

/* Every bit of x into every bit of the result: the bucket is the low bits. */
static inline uint64_t finish(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

void dnssec_cache_hash(const dnssec_cache_t *c, const uint8_t *data, size_t len, uint64_t h[2])
{
	/*
	 * Not SipHash: two 64-bit lanes of a multiply-xorshift over 8-byte
	 * words, about a tenth of its cost on an RRset, keyed with the cache's
	 * random seed so that the names a client asks for cannot be chosen to
	 * collide.
	 */
	uint64_t a = c->seed[0] ^ len, b = c->seed[1] + len * 0x9e3779b97f4a7c15ULL;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, data + i, 8);
		a = mix(a, w);
		b = mix(b + 0x94d049bb133111ebULL, w ^ a);
	}
	uint64_t w = 0;
	memcpy(&w, data + i, len - i);
	a = mix(a, w);
	b = mix(b + 0x94d049bb133111ebULL, w ^ a);
	h[0] = finish(a);
	h[1] = finish(b ^ h[0]);
}

void dnssec_cache_key(const dnssec_cache_t *c, uint64_t x, uint64_t y, uint64_t h[2])
{
	/*
	 * finish() is a bijection (xor-shifts and odd multiplies), so is the
	 * xor with the seed: h[0] tells x, h[1] tells y.
	 */
	h[0] = finish(x ^ c->seed[0]);
	h[1] = y ^ c->seed[1];
}
