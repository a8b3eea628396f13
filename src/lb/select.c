/* SPDX-License-Identifier: MIT */
/* Eligibility and the weighted and failover policies: which members a pool answer holds. */
#include "gslb/lb.h"

#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "internal.h"

lb_health_t *lb_health_new(uint32_t cap)
{
	lb_health_t *h = gslb_calloc(1, sizeof(*h));
	h->cap = cap;
	h->words = gslb_calloc(cap ? cap : 1, sizeof(*h->words));
	for (uint32_t i = 0; i < cap; i++)
		atomic_init(&h->words[i], LB_HEALTH_UP);
	return h;
}

void lb_health_free(lb_health_t *h)
{
	if (!h)
		return;
	free((void *)h->words);
	free(h);
}

static bool addr_healthy(const lb_member_t *m, const lb_addr_t *a, const lb_health_t *h)
{
	return m->admin == LB_ADMIN_UP || lb_health_up(h, a->target);
}

static bool member_healthy(const lb_member_t *m, int fi, const lb_health_t *h)
{
	for (uint16_t k = 0; k < m->naddr[fi]; k++)
		if (addr_healthy(m, &m->addr[fi][k], h))
			return true;
	return false;
}

/*
 * Interface 5: eligible = an address of the family that is healthy and not
 * admin down; drain and weight 0 only when nothing else is eligible; with
 * nothing eligible, fallback all pretends every member not down is healthy.
 * degraded-ttl applies while any member of the pool is down, whatever the
 * family asked: a member down in either family (no healthy address of a
 * family it has) counts, an admin-down member does not.
 */
void lb_candidates(const lb_pool_t *p, int fi, const lb_health_t *h, struct lb_cands *c)
{
	uint16_t sec[LB_MEMBERS_MAX], nsec = 0;
	bool any = false;

	c->n = 0;
	c->fallback = c->degraded = c->nodata = false;
	for (uint16_t i = 0; i < p->nmembers; i++) {
		const lb_member_t *m = &p->members[i];
		if (m->naddr[fi] == 0)
			continue;
		any = true;
		if (m->admin == LB_ADMIN_DOWN)
			continue;
		if (!member_healthy(m, fi, h)) {
			c->degraded = true;
			continue;
		}
		if (m->admin == LB_ADMIN_DRAIN || m->weight == 0)
			sec[nsec++] = i;
		else
			c->idx[c->n++] = i;
	}
	/* A member down in the other family degrades this one's TTL too (members of one family: no work). */
	for (uint16_t i = 0; p->has_family[!fi] && !c->degraded && i < p->nmembers; i++) {
		const lb_member_t *m = &p->members[i];
		if (m->admin != LB_ADMIN_DOWN && m->naddr[!fi] && !member_healthy(m, !fi, h))
			c->degraded = true;
	}
	if (!any) {
		/* no address of this family at all: NODATA, no fallback, the SOA's negative TTL */
		c->nodata = true;
		c->degraded = false;
		return;
	}
	if (c->n == 0 && nsec > 0) {
		memcpy(c->idx, sec, nsec * sizeof(*sec));
		c->n = nsec;
	}
	if (c->n > 0)
		goto policy;
	c->degraded = true;
	if (!p->fallback_all) {
		c->nodata = true;
		return;
	}
	c->fallback = true;
	nsec = 0;
	for (uint16_t i = 0; i < p->nmembers; i++) {
		const lb_member_t *m = &p->members[i];
		if (m->naddr[fi] == 0 || m->admin == LB_ADMIN_DOWN)
			continue;
		if (m->admin == LB_ADMIN_DRAIN || m->weight == 0)
			sec[nsec++] = i;
		else
			c->idx[c->n++] = i;
	}
	if (c->n == 0) {
		memcpy(c->idx, sec, nsec * sizeof(*sec));
		c->n = nsec;
	}
	if (c->n == 0) {
		c->nodata = true;
		return;
	}
policy:
	if (p->policy == LB_POLICY_FAILOVER) {
		uint8_t best = 255;
		for (uint16_t k = 0; k < c->n; k++)
			if (p->members[c->idx[k]].priority < best)
				best = p->members[c->idx[k]].priority;
		uint16_t n = 0;
		for (uint16_t k = 0; k < c->n; k++)
			if (p->members[c->idx[k]].priority == best)
				c->idx[n++] = c->idx[k];
		c->n = n;
	}
}

void lb_pool_counts(const lb_pool_t *p, int family, const lb_health_t *h, lb_pool_counts_t *out)
{
	int fi = family == 6;
	bool any = false, candidate = false;

	out->members = out->eligible = 0;
	for (uint16_t i = 0; i < p->nmembers; i++) {
		const lb_member_t *m = &p->members[i];
		if (m->naddr[fi] == 0 || m->admin == LB_ADMIN_DOWN)
			continue;
		bool healthy = member_healthy(m, fi, h);
		any = true;
		candidate |= healthy;
		if (m->admin == LB_ADMIN_DRAIN)
			continue;
		out->members++;
		out->eligible += healthy;
	}
	/* As lb_candidates(): with no candidate at all, fallback all answers with the rest. */
	out->fallback = any && !candidate && p->fallback_all;
}

/* Choose k of the candidates, weighted, without replacement; result in chosen. */
static uint16_t draw(const lb_pool_t *p, const struct lb_cands *c, uint16_t k, uint64_t rng[2],
		     uint16_t *chosen)
{
	uint16_t n = c->n, got = 0;
	uint16_t idx[LB_MEMBERS_MAX];
	memcpy(idx, c->idx, n * sizeof(*idx));
	if (k >= n) {
		memcpy(chosen, idx, n * sizeof(*idx));
		return n;
	}
	uint64_t total = 0;
	for (uint16_t i = 0; i < n; i++)
		total += lb_draw_weight(&p->members[idx[i]]);
	while (got < k) {
		uint64_t r = gslb_rand(rng) % total;
		uint16_t i = 0;
		for (;; i++) {
			uint32_t w = lb_draw_weight(&p->members[idx[i]]);
			if (r < w)
				break;
			r -= w;
		}
		chosen[got++] = idx[i];
		total -= lb_draw_weight(&p->members[idx[i]]);
		idx[i] = idx[--n];
	}
	return got;
}

int lb_pool_select(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		   uint64_t rng[2], lb_result_t *res)
{
	int fi = family == 6;
	struct lb_cands c;

	lb_candidates(p, fi, h, &c);
	res->fallback = c.fallback;
	res->nodata = c.nodata;
	res->degraded = c.degraded;
	res->ttl = c.degraded ? p->degraded_ttl : p->ttl;
	res->naddrs = 0;
	res->nchosen = 0;
	res->geo_rule = LB_GEO_NONE;
	res->scope = 0;
	if (c.nodata)
		return 0;
	if (p->policy == LB_POLICY_GEO) {
		/* Interface 5: rank, then nearest first under distance, weighted otherwise. */
		lb_geo_rank_t g;
		lb_geo_rank_cands(p, cl, &c, &g);
		res->geo_rule = g.rule;
		res->scope = g.scope;
		if (g.rule == LB_GEO_DISTANCE) {
			res->nchosen = g.n < p->answers ? g.n : p->answers;
			memcpy(res->chosen, g.idx, res->nchosen * sizeof(*g.idx));
		} else {
			memcpy(c.idx, g.idx, g.n * sizeof(*g.idx));
			c.n = g.n;
			res->nchosen = draw(p, &c, p->answers, rng, res->chosen);
		}
	} else {
		res->nchosen = draw(p, &c, p->answers, rng, res->chosen);
	}
	for (uint16_t i = 0; i < res->nchosen; i++) {
		const lb_member_t *m = &p->members[res->chosen[i]];
		for (uint16_t k = 0; k < m->naddr[fi] && res->naddrs < LB_MEMBERS_MAX; k++)
			if (c.fallback || addr_healthy(m, &m->addr[fi][k], h))
				res->addrs[res->naddrs++] = &m->addr[fi][k];
	}
	/* Interface 5: the addresses in random order (Fisher-Yates). */
	for (uint16_t i = res->naddrs; i > 1; i--) {
		uint16_t j = (uint16_t)(gslb_rand(rng) % i);
		const lb_addr_t *t = res->addrs[i - 1];
		res->addrs[i - 1] = res->addrs[j];
		res->addrs[j] = t;
	}
	return 0;
}

void lb_pool_explain(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		     lb_member_view_t *views, bool *fallback)
{
	int fi = family == 6;
	struct lb_cands c;

	lb_candidates(p, fi, h, &c);
	*fallback = c.fallback;
	for (uint16_t i = 0; i < p->nmembers; i++) {
		const lb_member_t *m = &p->members[i];
		views[i].healthy = m->naddr[fi] > 0 && member_healthy(m, fi, h);
		views[i].eligible = false;
		views[i].secondary = m->admin == LB_ADMIN_DRAIN || m->weight == 0;
		views[i].probability = 0;
	}
	if (c.nodata)
		return;
	for (uint16_t k = 0; k < c.n; k++)
		views[c.idx[k]].eligible = true;
	if (p->policy == LB_POLICY_GEO) {
		/* Only the deciding rank can be chosen, as in lb_pool_select(). */
		lb_geo_rank_t g;
		lb_geo_rank_cands(p, cl, &c, &g);
		if (g.rule == LB_GEO_DISTANCE) {
			for (uint16_t k = 0; k < g.n && k < p->answers; k++)
				views[g.idx[k]].probability = 1.0;
			return;
		}
		memcpy(c.idx, g.idx, g.n * sizeof(*g.idx));
		c.n = g.n;
	}
	if (p->answers >= c.n) {
		for (uint16_t k = 0; k < c.n; k++)
			views[c.idx[k]].probability = 1.0;
		return;
	}
	if (p->answers == 1) {
		double total = 0;
		for (uint16_t k = 0; k < c.n; k++)
			total += lb_draw_weight(&p->members[c.idx[k]]);
		for (uint16_t k = 0; k < c.n; k++)
			views[c.idx[k]].probability = lb_draw_weight(&p->members[c.idx[k]]) / total;
		return;
	}
	/* Several answers: estimate inclusion probabilities by drawing, seeded for stable output. */
	enum { DRAWS = 200000 };
	uint64_t rng[2] = { 0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL };
	uint32_t hits[LB_MEMBERS_MAX] = { 0 };
	uint16_t chosen[LB_MEMBERS_MAX];
	for (int d = 0; d < DRAWS; d++) {
		uint16_t n = draw(p, &c, p->answers, rng, chosen);
		for (uint16_t k = 0; k < n; k++)
			hits[chosen[k]]++;
	}
	for (uint16_t k = 0; k < c.n; k++)
		views[c.idx[k]].probability = (double)hits[c.idx[k]] / DRAWS;
}
