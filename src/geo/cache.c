/* SPDX-License-Identifier: MIT */
/* A DNS worker's cache of client locations: allocation and filling (lookups are inline). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/geo_cache.h"

geo_cache_t *geo_cache_new(void)
{
	geo_cache_t *c = aligned_alloc(64, sizeof(*c));
	/* Only the header must start zeroed: a slot is read once its used bit is set. */
	if (c)
		memset(c, 0, offsetof(geo_cache_t, slot));
	return c;
}

void geo_cache_free(geo_cache_t *c)
{
	free(c);
}

void geo_cache_clear(geo_cache_t *c)
{
	memset(c->used, 0, sizeof(c->used));
	c->probes = c->hits = c->skip = 0;
}

void geo_cache_window_end(geo_cache_t *c)
{
	if (c->hits < GEO_CACHE_WINDOW_HITS)
		c->skip = GEO_CACHE_SKIP;
	c->probes = c->hits = 0;
}

void geo_cache_fill(geo_cache_t *c, int family, const uint8_t *addr, const geo_info_t *g)
{
	unsigned bits = g->prefix_len;
	if (bits > GEO_CACHE_NET_BITS)
		return;
	/* Filed under the coarsest level the network covers whole. */
	const uint8_t *levels = geo_cache_level_bits[family == 6];
	unsigned l = 0;
	while (l + 1 < GEO_CACHE_LEVELS && bits <= levels[l + 1])
		l++;
	uint64_t net = geo_cache_net(addr);
	uint32_t s = geo_cache_slot(family, net >> 16, levels[l]);
	struct geo_cache_entry *e = &c->slot[s];
	/* Keep the network only, so stale host bits never take part in a match. */
	e->mask = geo_cache_mask(bits);
	e->net = net & e->mask;
	e->family = (uint8_t)family;
	e->prefix_len = (uint8_t)bits;
	e->found = g->found;
	e->has_location = g->has_location;
	memcpy(e->uvec, g->uvec, sizeof(e->uvec));
	memcpy(e->country, g->country, sizeof(e->country));
	memcpy(e->subdivision, g->subdivision, sizeof(e->subdivision));
	memcpy(e->continent, g->continent, sizeof(e->continent));
	c->used[s / 64] |= 1ull << (s % 64);
}
