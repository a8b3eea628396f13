/* SPDX-License-Identifier: MIT */
/* The geo policy: rank a pool's eligible members for one client, with the ECS scope that holds. */
#include "gslb/lb.h"

#include <string.h>

#include "internal.h"

/* Leading bits that a and b share, at most bits. */
static unsigned common_prefix(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned n = 0;
	for (unsigned i = 0; n < bits; i++) {
		uint8_t x = a[i] ^ b[i];
		if (x == 0) {
			n += 8;
			continue;
		}
		while (!(x & 0x80)) {
			x <<= 1;
			n++;
		}
		break;
	}
	return n < bits ? n : bits;
}

static unsigned family_bits(int family)
{
	return family == 6 ? 128 : 32;
}

/* The longest network of m holding the client, or -1. */
static int member_net_match(const lb_member_t *m, const lb_client_t *cl)
{
	int best = -1;
	for (uint16_t i = 0; i < m->nnets; i++) {
		const lb_net_t *n = &m->nets[i];
		if (n->family != cl->family || n->len <= best)
			continue;
		if (common_prefix(n->addr, cl->addr, family_bits(cl->family)) >= n->len)
			best = n->len;
	}
	return best;
}

/* A place code as the zero-padded 8 bytes members keep them in, for one comparison each. */
static uint64_t place_key(const char *code, size_t max)
{
	uint64_t k = 0;
	memcpy(&k, code, strnlen(code, max));
	return k;
}

static bool member_lists_country(const lb_member_t *m, uint64_t key)
{
	for (uint16_t i = 0; i < m->ncountries; i++) {
		uint64_t c;
		memcpy(&c, m->countries[i], sizeof(c));
		if (c == key)
			return true;
	}
	return false;
}

/*
 * RFC 7871 7.2.1: the scope must not cover addresses that would get another
 * answer.  Member networks decide answers whatever the geo file says, so
 * the scope grows until it excludes every member network that does not
 * hold the client, and covers no more-specific network that does (that of
 * a member not eligible right now: the answer changes when it comes back).
 */
static unsigned scope_exclude_nets(const lb_pool_t *p, const lb_client_t *cl, unsigned scope)
{
	if (!p->has_nets)
		return scope;
	unsigned bits = family_bits(cl->family);
	for (uint16_t k = 0; k < p->nmembers; k++) {
		const lb_member_t *m = &p->members[k];
		for (uint16_t i = 0; i < m->nnets; i++) {
			const lb_net_t *n = &m->nets[i];
			if (n->family != cl->family)
				continue;
			unsigned l = common_prefix(n->addr, cl->addr, bits);
			if (l >= n->len) {
				if (n->len > scope)
					scope = n->len;
			} else if (l >= scope) {
				scope = l + 1;
			}
		}
	}
	return scope;
}

/*
 * Rule 4: candidates with a location, nearest first, ties by weight
 * (heavier first).  Nearness is the dot product of unit vectors, which
 * orders places exactly as the great-circle distance does.
 */
static uint16_t rank_distance(const lb_pool_t *p, const struct lb_cands *c, const geo_info_t *g,
			      uint16_t *idx)
{
	double near[LB_MEMBERS_MAX];
	uint16_t n = 0;
	for (uint16_t k = 0; k < c->n; k++) {
		const lb_member_t *m = &p->members[c->idx[k]];
		if (!m->has_location)
			continue;
		double d = g->uvec[0] * m->uvec[0] + g->uvec[1] * m->uvec[1] +
			   g->uvec[2] * m->uvec[2];
		/* Insertion sort: pools are small and this keeps the order stable. */
		uint16_t j = n++;
		while (j > 0 && (near[j - 1] < d ||
				 (near[j - 1] == d && p->members[idx[j - 1]].weight < m->weight))) {
			near[j] = near[j - 1];
			idx[j] = idx[j - 1];
			j--;
		}
		near[j] = d;
		idx[j] = c->idx[k];
	}
	return n;
}

void lb_geo_rank_cands(const lb_pool_t *p, const lb_client_t *cl, const struct lb_cands *c,
		       lb_geo_rank_t *out)
{
	bool known = cl && (cl->family == 4 || cl->family == 6);
	const geo_info_t *g = cl ? cl->geo : NULL;
	int best = -1;

	out->rule = LB_GEO_NONE;
	out->scope = 0;
	out->net_len = 0;
	out->n = 0;
	if (c->n == 0)
		return;

	/* Rule 1: the longest member network holding the client; members sharing it tie. */
	if (known && p->has_nets)
		for (uint16_t k = 0; k < c->n; k++) {
			int l = member_net_match(&p->members[c->idx[k]], cl);
			if (l > best)
				best = l;
		}
	if (best >= 0) {
		for (uint16_t k = 0; k < c->n; k++)
			if (member_net_match(&p->members[c->idx[k]], cl) == best)
				out->idx[out->n++] = c->idx[k];
		out->rule = LB_GEO_NETWORK;
		out->net_len = (uint8_t)best;
		out->scope = (uint8_t)scope_exclude_nets(p, cl, (unsigned)best);
		return;
	}

	bool found = known && g && g->found;
	/* Rule 2: the subdivision, else the country (pools without places: no work). */
	if (found && p->has_places && g->subdivision[0]) {
		uint64_t key = place_key(g->subdivision, sizeof(g->subdivision));
		for (uint16_t k = 0; k < c->n; k++)
			if (member_lists_country(&p->members[c->idx[k]], key))
				out->idx[out->n++] = c->idx[k];
	}
	if (out->n == 0 && found && p->has_places && g->country[0]) {
		uint64_t key = place_key(g->country, sizeof(g->country));
		for (uint16_t k = 0; k < c->n; k++)
			if (member_lists_country(&p->members[c->idx[k]], key))
				out->idx[out->n++] = c->idx[k];
	}
	if (out->n > 0) {
		out->rule = LB_GEO_COUNTRY;
		goto scope;
	}
	/* Rule 3: the continent. */
	int cb = found && p->has_continents ? lb_continent_bit(g->continent) : -1;
	if (cb >= 0)
		for (uint16_t k = 0; k < c->n; k++)
			if (p->members[c->idx[k]].continents & (1u << cb))
				out->idx[out->n++] = c->idx[k];
	if (out->n > 0) {
		out->rule = LB_GEO_CONTINENT;
		goto scope;
	}
	/* Rule 4: great-circle distance. */
	if (found && g->has_location)
		out->n = rank_distance(p, c, g, out->idx);
	if (out->n > 0) {
		out->rule = LB_GEO_DISTANCE;
		goto scope;
	}
	/* Rule 5: every eligible member. */
	memcpy(out->idx, c->idx, c->n * sizeof(*c->idx));
	out->n = c->n;
	out->rule = LB_GEO_REST;
scope:
	/* Interface 7: the geo file's network decided (0 without a geo file). */
	if (known)
		out->scope = (uint8_t)scope_exclude_nets(p, cl, g ? g->prefix_len : 0);
}

int lb_geo_rank(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		lb_geo_rank_t *out)
{
	struct lb_cands c;
	lb_candidates(p, family == 6, h, &c);
	if (c.nodata)
		c.n = 0;
	lb_geo_rank_cands(p, cl, &c, out);
	return 0;
}
