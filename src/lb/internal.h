/* SPDX-License-Identifier: MIT */
/*
 * Shared inside src/lb: the eligible candidates every policy chooses from, a pool's derived flags.
 */
#pragma once

#include "gslb/lb.h"

/* The candidates a policy chooses from, with the facts that decided them. */
struct lb_cands {
	uint16_t n;
	uint16_t idx[LB_MEMBERS_MAX];
	bool fallback;
	bool degraded;
	bool nodata;
};

/*
 * The eligible members of p for family index fi (0 IPv4, 1 IPv6) under
 * README "Balanced names", narrowed to the best priority for failover pools.
 */
void lb_candidates(const lb_pool_t *p, int fi, const lb_health_t *h, struct lb_cands *c);

/*
 * A pool's selection cache for one family (lb_pool_sel_update()): what
 * lb_candidates() found, with the cumulative draw weights of the
 * candidates in the same order, so that a draw is a binary search.  It
 * holds for health table h while h's generation equals gen; the rest never
 * changes once published.
 */
struct lb_sel {
	_Atomic uint64_t gen;
	const lb_health_t *h;
	struct lb_sel *next; /* the chain of retired caches */
	uint16_t n;
	bool fallback;
	bool degraded;
	bool nodata;
	/*
	 * n cumulative draw weights (at most 256 * 65535), then n member
	 * indexes in lb_candidates() order (lb_sel_idx()); the sum of the
	 * weights is the last (lb_sel_total()).  With 32 bytes before them, a
	 * cache of up to four members is a 64-byte malloc chunk, not 80: a
	 * cache a family of every pool, 2 MiB of 100,000 pools.
	 */
	uint32_t cum[];
};

/* The member indexes of cache s, after its weights. */
static inline const uint16_t *lb_sel_idx(const struct lb_sel *s)
{
	return (const uint16_t *)&s->cum[s->n];
}

/* The sum of the draw weights of cache s. */
static inline uint64_t lb_sel_total(const struct lb_sel *s)
{
	return s->n ? s->cum[s->n - 1] : 0;
}

/*
 * The cache of pool p for family index fi that holds for h right now, or
 * NULL.  The generation is read first: a cache stamped with it was built
 * (or checked) from words at least that recent.
 */
static inline const struct lb_sel *lb_sel_get(const lb_pool_t *p, int fi, const lb_health_t *h)
{
	if (!h)
		return NULL;
	uint64_t g = atomic_load_explicit(&h->gen, memory_order_acquire);
	const struct lb_sel *s = atomic_load_explicit(&p->sel[fi], memory_order_acquire);
	if (s && s->h == h && atomic_load_explicit(&s->gen, memory_order_relaxed) == g)
		return s;
	return NULL;
}

/* Weight used for drawing: weight-0 members only get here when all are 0. */
static inline uint32_t lb_draw_weight(const lb_member_t *m)
{
	return m->weight ? m->weight : 1;
}

/* Rank the candidates c for client cl (src/lb/geo.c). */
void lb_geo_rank_cands(const lb_pool_t *p, const lb_client_t *cl, const struct lb_cands *c,
		       lb_geo_rank_t *out);

/*
 * Set a pool's flags derived from its members (has_nets, has_places,
 * has_continents, has_family) and its networks' lookup (lb_geo_nets_build()).
 * lb_config_pools() calls it for the pools it builds; the tests, which build
 * pools by hand, call it too (again after changing a pool's members).
 */
void lb_pool_derive(lb_pool_t *p);

/*
 * Fold the members' networks of p into p->geo_nets for the geo ranking
 * (src/lb/geo.c), replacing what was there; NULL when no member has one.
 * lb_pool_derive() calls it.  Not for the query path: it allocates.
 */
void lb_geo_nets_build(lb_pool_t *p);

/* Free p->geo_nets (NULL is a no-op); the pools' free paths call it. */
void lb_geo_nets_free(lb_pool_t *p);
