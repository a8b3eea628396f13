/* SPDX-License-Identifier: MIT */
/* A DNS worker's cache of client locations, keyed by the geo database's networks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gslb/geo.h"

/*
 * Clients come in networks: resolvers send ECS /24 and /56 prefixes, and a
 * database record covers a whole network.  Each worker keeps the locations
 * it found in a direct-mapped table of database networks, so that geo
 * answers to returning clients skip the database's tree walk (geo_db_open()
 * decodes the records, so that a miss is cheap too).  An entry holds
 * the database's network (info.prefix_len bits of addr), so a hit is exactly
 * what the database would say; only the location is cached, not the
 * choice, which depends on health and weights.
 *
 * A network is filed under the first GEO_CACHE_LEVELS bits of its address
 * at the coarsest level it covers whole (a /20 under its /24, a /16 under
 * its /16, a /5 under its /8), so one entry serves every client of a large
 * network, and a lookup tries the levels from the finest.
 *
 * One cache belongs to one thread: nothing in it is shared or locked.  The
 * structure is in this header only so that geo_cache_lookup(), called on
 * every geo answer, is inlined into the answer path; only src/geo/cache.c
 * and the inline functions below touch its fields.
 */
#define GEO_CACHE_SLOTS 8192 /* a power of two; one 64-byte cache line each */
#define GEO_CACHE_LEVELS 3
#define GEO_CACHE_NET_BITS 64 /* longer (IPv6) networks are looked up every time */

/*
 * A lookup in the geo database costs about as much as a cache probe and
 * store together (the database's records are decoded when it is opened), so
 * the cache pays only when most clients are found in it: from about two in
 * three (bench/README.md, "Geo with a cold cache").  When clients come from more networks than it holds, it would only
 * add its cost to every answer; so the cache judges itself over windows of
 * GEO_CACHE_WINDOW probes, and after a window with fewer than
 * GEO_CACHE_WINDOW_HITS hits, the next GEO_CACHE_SKIP lookups go straight to
 * the database (they miss without probing, and are not stored).  The next
 * window finds the entries kept, so clients that return make it pay again.
 */
#define GEO_CACHE_WINDOW 256
#define GEO_CACHE_WINDOW_HITS 176
#define GEO_CACHE_SKIP (15 * GEO_CACHE_WINDOW)

static const uint8_t geo_cache_level_bits[2][GEO_CACHE_LEVELS] = {
	{ 24, 16, 8 },	/* IPv4 */
	{ 48, 32, 16 }, /* IPv6 */
};

/*
 * What the answer path needs of a geo_info_t (not lat / lon: the unit
 * vector ranks distances), with the network it holds for: one cache line.
 * The network is kept as a number (geo_cache_net()) and a mask, so that a
 * probe compares with two instructions, not memcmp().
 */
struct geo_cache_entry {
	double uvec[3];
	uint64_t net;  /* the network's first 64 bits, host bits clear */
	uint64_t mask; /* prefix_len ones from the top */
	uint8_t family;
	uint8_t prefix_len;
	bool found;
	bool has_location;
	char country[3];
	char subdivision[8];
	char continent[3];
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct geo_cache_entry) == 64, "a geo cache entry is one cache line");

typedef struct geo_cache {
	const geo_db_t *db;  /* the entries were looked up in db ... */
	uint64_t generation; /* ... as published in this snapshot generation */
	uint32_t probes;     /* in the current window */
	uint32_t hits;	     /* of those probes */
	uint32_t skip;	     /* lookups left to send to the database unprobed */
	/*
	 * Which slots hold an entry: a probe of an empty level reads 1 KiB
	 * that stays in L1, not a cold line of the 512 KiB table (most
	 * clients are found at one level only), and emptying the cache on a
	 * snapshot swap clears the bits, not the table.
	 */
	uint64_t used[GEO_CACHE_SLOTS / 64];
	struct geo_cache_entry slot[GEO_CACHE_SLOTS];
} geo_cache_t;

/**
 * An empty cache for one worker (about 513 KiB, cache-line aligned).
 * Returns NULL when out of memory.  Caller frees with geo_cache_free().
 */
geo_cache_t *geo_cache_new(void);

/** Free a cache; NULL is a no-op. */
void geo_cache_free(geo_cache_t *c);

/** Forget every entry (clears the used bits: 1 KiB, not the table) and start a new window. */
void geo_cache_clear(geo_cache_t *c);

/* The end of a window of probes: whether the next lookups skip the cache (GEO_CACHE_WINDOW). */
void geo_cache_window_end(geo_cache_t *c);

/* geo_cache_store() without the test whether the cache is being skipped. */
void geo_cache_fill(geo_cache_t *c, int family, const uint8_t *addr, const geo_info_t *g);

/**
 * Remember what db said of addr: family 4 or 6 and 16 bytes, an IPv4
 * address in the first 4 and zeros after them, as lb_client_t holds it; g
 * as geo_db_lookup() filled it, g->prefix_len the network holding addr.  Networks longer than
 * GEO_CACHE_NET_BITS (IPv6 beyond /64, IPv4-mapped addresses, which count
 * 96 bits more) are not kept, nor anything while lookups skip the cache
 * (GEO_CACHE_WINDOW).  Replaces whatever held the slot.
 */
static inline void geo_cache_store(geo_cache_t *c, int family, const uint8_t *addr,
				   const geo_info_t *g)
{
	if (!c->skip)
		geo_cache_fill(c, family, addr, g);
}

/* The first 64 bits of an address (IPv4 addresses are zero-padded), as a number. */
static inline uint64_t geo_cache_net(const uint8_t *addr)
{
	uint64_t v;
	memcpy(&v, addr, sizeof(v));
	return __builtin_bswap64(v);
}

/* The first 48 bits of an address (IPv4 addresses are zero-padded), as a number. */
static inline uint64_t geo_cache_key(const uint8_t *addr)
{
	return geo_cache_net(addr) >> 16;
}

/* A mask of the first bits (0 to 64) bits of a geo_cache_net() number. */
static inline uint64_t geo_cache_mask(unsigned bits)
{
	return bits ? ~0ull << (64 - bits) : 0;
}

/* The slot of the first bits bits (8 to 48) of the address whose key is k. */
static inline uint32_t geo_cache_slot(int family, uint64_t k, unsigned bits)
{
	k &= ~0ull << (48 - bits);
	k |= (uint64_t)family << 56 | (uint64_t)bits << 48;
	return (uint32_t)((k * 0x9e3779b97f4a7c15ull) >> 40) & (GEO_CACHE_SLOTS - 1);
}

static inline bool geo_cache_used(const geo_cache_t *c, uint32_t s)
{
	return (c->used[s / 64] >> (s % 64)) & 1;
}

/**
 * Make c a cache of db as published in snapshot generation: emptied when
 * either differs from the last call's.  The generation is checked as well
 * as the pointer because a geo file opened again after a reload may be
 * mapped where a closed one was.  Call before each lookup.
 */
static inline void geo_cache_use(geo_cache_t *c, const geo_db_t *db, uint64_t generation)
{
	if (c->db != db || c->generation != generation) {
		geo_cache_clear(c);
		c->db = db;
		c->generation = generation;
	}
}

/**
 * What the cache knows of addr (family and 16 bytes as for geo_cache_store()):
 * on a hit, out is filled as geo_db_lookup() would fill it, except lat and
 * lon (0: the unit vector is kept instead), and returned; NULL on a miss,
 * and while lookups skip the cache (GEO_CACHE_WINDOW).  Never allocates.
 */
static inline const geo_info_t *geo_cache_probe(const geo_cache_t *c, int family,
						const uint8_t *addr, geo_info_t *out)
{
	const uint8_t *levels = geo_cache_level_bits[family == 6];
	uint64_t net = geo_cache_net(addr), key = net >> 16;
	for (unsigned l = 0; l < GEO_CACHE_LEVELS; l++) {
		uint32_t s = geo_cache_slot(family, key, levels[l]);
		if (!geo_cache_used(c, s))
			continue;
		const struct geo_cache_entry *e = &c->slot[s];
		if (e->family != family || ((net ^ e->net) & e->mask) != 0)
			continue;
		out->found = e->found;
		out->has_location = e->has_location;
		out->prefix_len = e->prefix_len;
		memcpy(out->uvec, e->uvec, sizeof(out->uvec));
		memcpy(out->country, e->country, sizeof(out->country));
		memcpy(out->subdivision, e->subdivision, sizeof(out->subdivision));
		memcpy(out->continent, e->continent, sizeof(out->continent));
		out->lat = out->lon = 0.0;
		return out;
	}
	return NULL;
}

static inline const geo_info_t *geo_cache_lookup(geo_cache_t *c, int family, const uint8_t *addr,
						 geo_info_t *out)
{
	if (c->skip) {
		c->skip--;
		return NULL;
	}
	const geo_info_t *hit = geo_cache_probe(c, family, addr, out);
	c->hits += hit != NULL;
	if (++c->probes == GEO_CACHE_WINDOW)
		geo_cache_window_end(c);
	return hit;
}
