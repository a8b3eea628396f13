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
