/* SPDX-License-Identifier: MIT */
/*
 * Selection caches (lb_pool_sel_update()): on randomized pools, the cached
 * candidates, flags and draws against the walk of every member that
 * lb_pool_select() did before the caches, kept here as the reference; and
 * that a cache is used only while the health table has not changed since.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/lb.h"
#include "../../src/lb/internal.h"
#include "alloc_count.h"
#include "tap.h"

#define TARGETS 96

/* ---- the reference: lb_candidates() and draw() as they were before the caches ---- */

static bool ref_addr_healthy(const lb_member_t *m, const lb_addr_t *a, const lb_health_t *h)
{
	return m->admin == LB_ADMIN_UP || lb_health_up(h, a->target);
}

static bool ref_member_healthy(const lb_member_t *m, int fi, const lb_health_t *h)
{
	for (uint16_t k = 0; k < m->naddr[fi]; k++)
		if (ref_addr_healthy(m, &m->addr[fi][k], h))
			return true;
	return false;
}

static void ref_candidates(const lb_pool_t *p, int fi, const lb_health_t *h, struct lb_cands *c)
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
		if (!ref_member_healthy(m, fi, h)) {
			c->degraded = true;
			continue;
		}
		if (m->admin == LB_ADMIN_DRAIN || m->weight == 0)
			sec[nsec++] = i;
		else
			c->idx[c->n++] = i;
	}
	for (uint16_t i = 0; p->has_family[!fi] && !c->degraded && i < p->nmembers; i++) {
		const lb_member_t *m = &p->members[i];
		if (m->admin != LB_ADMIN_DOWN && m->naddr[!fi] && !ref_member_healthy(m, !fi, h))
			c->degraded = true;
	}
	if (!any) {
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

static uint16_t ref_draw(const lb_pool_t *p, const struct lb_cands *c, uint16_t k, uint64_t rng[2],
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

/* lb_pool_select() as it was: the walk, then the same geo ranking, draw and address order. */
static void ref_select(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		       uint64_t rng[2], lb_result_t *res)
{
	int fi = family == 6;
	struct lb_cands c;

	ref_candidates(p, fi, h, &c);
	res->fallback = c.fallback;
	res->nodata = c.nodata;
	res->degraded = c.degraded;
	res->ttl = c.degraded ? p->degraded_ttl : p->ttl;
	res->naddrs = 0;
	res->nchosen = 0;
	res->geo_rule = LB_GEO_NONE;
	res->scope = 0;
	if (c.nodata)
		return;
	if (p->policy == LB_POLICY_GEO) {
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
			res->nchosen = ref_draw(p, &c, p->answers, rng, res->chosen);
		}
	} else {
		res->nchosen = ref_draw(p, &c, p->answers, rng, res->chosen);
	}
	for (uint16_t i = 0; i < res->nchosen; i++) {
		const lb_member_t *m = &p->members[res->chosen[i]];
		for (uint16_t k = 0; k < m->naddr[fi] && res->naddrs < LB_MEMBERS_MAX; k++)
			if (c.fallback || ref_addr_healthy(m, &m->addr[fi][k], h))
				res->addrs[res->naddrs++] = &m->addr[fi][k];
	}
	for (uint16_t i = res->naddrs; i > 1; i--) {
		uint16_t j = (uint16_t)(gslb_rand(rng) % i);
		const lb_addr_t *t = res->addrs[i - 1];
		res->addrs[i - 1] = res->addrs[j];
		res->addrs[j] = t;
	}
}

/* ---- randomized pools ---- */

static uint64_t seed[2] = { 0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL };

static uint32_t rnd(uint32_t n)
{
	return (uint32_t)(gslb_rand(seed) % n);
}

static const char *const places[] = { "DE", "US", "US-CA", "JP", "FR" };
static const char *const continents[] = { "EU", "NA", "AS" };

static lb_addr_t *addrs_new(uint16_t n, int family, uint16_t member)
{
	lb_addr_t *a = n ? calloc(n, sizeof(*a)) : NULL;
	for (uint16_t k = 0; k < n; k++) {
		a[k].family = (uint8_t)family;
		a[k].addr[0] = family == 4 ? 10 : 0xfd;
		a[k].addr[1] = (uint8_t)(member >> 8);
		a[k].addr[2] = (uint8_t)member;
		a[k].addr[3] = (uint8_t)k;
		/* Few targets: members share them, as members of one check and address do. */
		a[k].target = rnd(8) == 0 ? LB_TARGET_NONE : rnd(TARGETS);
	}
	return a;
}

/* A pool of up to max members with random weights, priorities, admin states and addresses. */
static lb_pool_t *pool_random(uint16_t max, int policy)
{
	lb_pool_t *p = calloc(1, sizeof(*p));
	p->name_len = (uint8_t)lb_pool_set_name(p, "r.example.test");
	p->policy = (uint8_t)policy;
	p->answers = (uint8_t)(rnd(4) ? 1 : 2 + rnd(6));
	p->fallback_all = rnd(2);
	p->ttl = 30;
	p->degraded_ttl = 10;
	p->served = true;
	p->nmembers = (uint16_t)rnd(max + 1u);
	p->members = calloc(p->nmembers ? p->nmembers : 1, sizeof(*p->members));
	/* Some pools with small weights (ties, weight 0 often), some with large ones. */
	bool small = rnd(2);
	int family_mode = (int)rnd(4); /* 0, 1: both; 2: IPv4 only; 3: IPv6 only */
	for (uint16_t i = 0; i < p->nmembers; i++) {
		lb_member_t *m = &p->members[i];
		lb_member_set_name(m, "m%u", i);
		m->weight = (uint16_t)(rnd(6) == 0 ? 0
				       : small	   ? 1 + rnd(4)
						   : 1 + rnd(LB_WEIGHT_MAX));
		m->priority = (uint8_t)(rnd(3) == 0 ? 255 : 1 + rnd(3));
		uint32_t a = rnd(10);
		m->admin = a < 6    ? LB_ADMIN_AUTO
			   : a == 6 ? LB_ADMIN_UP
			   : a == 7 ? LB_ADMIN_DOWN
				    : LB_ADMIN_DRAIN;
		m->naddr[0] = family_mode == 3 ? 0 : (uint16_t)rnd(4);
		m->naddr[1] = family_mode == 2 ? 0 : (uint16_t)rnd(3);
		m->addr[0] = addrs_new(m->naddr[0], 4, i);
		m->addr[1] = addrs_new(m->naddr[1], 6, i);
		if (policy == LB_POLICY_GEO) {
			if (rnd(3) == 0) {
				m->ncountries = 1;
				m->countries = calloc(1, sizeof(*m->countries));
				strcpy(m->countries[0], places[rnd(5)]);
			}
			if (rnd(3) == 0)
				m->continents = (uint8_t)(1u
							  << lb_continent_bit(continents[rnd(3)]));
			if (rnd(2)) {
				m->has_location = true;
				m->uvec = calloc(3, sizeof(*m->uvec));
				double lat = (double)rnd(180) - 90, lon = (double)rnd(360) - 180;
				geo_unit_vector(lat, lon, m->uvec);
			}
		}
	}
	lb_pool_derive(p);
	return p;
}

static void pool_free(lb_pool_t *p)
{
	lb_pool_clear(p); /* the caches, names, members and their parts */
	free(p);
}

static void health_random(lb_health_t *h)
{
	/* Mostly up, so that pools have candidates; sometimes mostly down. */
	uint32_t down = rnd(4) == 0 ? 80 : 20;
	for (uint32_t t = 0; t < TARGETS; t++)
		lb_health_set(h, t, rnd(100) >= down);
}

/* A client for geo pools: sometimes none, sometimes no location, one of a few places. */
static const lb_client_t *client_random(lb_client_t *cl, geo_info_t *g)
{
	if (rnd(5) == 0)
		return NULL;
	memset(cl, 0, sizeof(*cl));
	memset(g, 0, sizeof(*g));
	cl->family = 4;
	cl->addr[0] = 198;
	cl->addr[3] = (uint8_t)rnd(256);
	if (rnd(4) == 0)
		return cl; /* no geo file */
	cl->geo = g;
	g->found = rnd(5) != 0;
	const char *place = places[rnd(5)];
	if (strlen(place) > 2) {
		snprintf(g->subdivision, sizeof(g->subdivision), "%s", place);
		memcpy(g->country, place, 2);
	} else {
		snprintf(g->country, sizeof(g->country), "%s", place);
	}
	snprintf(g->continent, sizeof(g->continent), "%s", continents[rnd(3)]);
	g->has_location = rnd(2);
	g->lat = (double)rnd(180) - 90;
	g->lon = (double)rnd(360) - 180;
	geo_unit_vector(g->lat, g->lon, g->uvec);
	g->prefix_len = 24;
	return cl;
}

/* Does family fi's cache of p say exactly what the reference finds now? */
static bool sel_matches(const lb_pool_t *p, int fi, const lb_health_t *h, char *why, size_t len)
{
	struct lb_cands c;
	ref_candidates(p, fi, h, &c);
	const struct lb_sel *s = atomic_load(&p->sel[fi]);
	if (!p->has_family[fi]) {
		/* No cache; lb_pool_select() answers this without a walk. */
		if (s || !c.nodata || c.degraded || c.fallback || c.n) {
			snprintf(why, len,
				 "family %d: no member has it, yet a cache or a candidate", fi);
			return false;
		}
		return true;
	}
	if (!s || s->h != h || atomic_load(&s->gen) != lb_health_gen(h)) {
		snprintf(why, len, "family %d: no cache of this generation", fi);
		return false;
	}
	if (s->n != c.n || s->fallback != c.fallback || s->degraded != c.degraded ||
	    s->nodata != c.nodata || memcmp(lb_sel_idx(s), c.idx, c.n * sizeof(*c.idx)) != 0) {
		snprintf(why, len,
			 "family %d: %u candidates (f%d d%d n%d), reference %u (f%d d%d n%d)", fi,
			 s->n, s->fallback, s->degraded, s->nodata, c.n, c.fallback, c.degraded,
			 c.nodata);
		return false;
	}
	uint64_t sum = 0;
	for (uint16_t k = 0; k < c.n; k++) {
		sum += lb_draw_weight(&p->members[c.idx[k]]);
		if (s->cum[k] != sum) {
			snprintf(why, len, "family %d: cumulative weight %u is %u, not %llu", fi, k,
				 s->cum[k], (unsigned long long)sum);
			return false;
		}
	}
	if (lb_sel_total(s) != sum) {
		snprintf(why, len, "family %d: total %llu, not %llu", fi,
			 (unsigned long long)lb_sel_total(s), (unsigned long long)sum);
		return false;
	}
	return true;
}

/*
 * 3,000 random pools of every policy, each checked against the reference
 * after it is built, after random health changes (revalidated) and after
 * changes that leave its candidates alone (the cache kept, only restamped).
 */
static void test_candidates(lb_health_t *h)
{
	unsigned pools = 0, checked = 0, bad = 0, kept = 0, replaced = 0;
	char why[256] = "";
	for (int i = 0; i < 3000; i++) {
		lb_pool_t *p = pool_random(i % 3 == 0 ? 8 : LB_MEMBERS_MAX, (int)rnd(3));
		health_random(h);
		struct lb_sel *retired = NULL;
		lb_pool_sel_update(p, h, &retired);
		pools++;
		for (int round = 0; round < 4; round++) {
			for (int fi = 0; fi < 2; fi++, checked++)
				if (!sel_matches(p, fi, h, why, sizeof(why)) && bad++ == 0)
					diag("pool %d round %d: %s", i, round, why);
			/* A few targets change, or none of those the pool uses. */
			const struct lb_sel *before[2] = { atomic_load(&p->sel[0]),
							   atomic_load(&p->sel[1]) };
			for (int k = (int)rnd(4); k >= 0; k--) {
				uint32_t t = rnd(TARGETS);
				lb_health_set(h, t, !lb_health_up(h, t));
			}
			unsigned r = lb_pool_sel_update(p, h, &retired);
			replaced += r;
			for (int fi = 0; fi < 2; fi++)
				kept += before[fi] && atomic_load(&p->sel[fi]) == before[fi];
		}
		lb_sel_free(retired);
		pool_free(p);
	}
	ok(bad == 0, "%u random pools, %u caches: candidates, flags and weights as the reference",
	   pools, checked);
	ok(kept > 1000 && replaced > 1000,
	   "revalidation keeps caches whose candidates did not change (%u) and replaces the rest "
	   "(%u)",
	   kept, replaced);
}

static bool result_same(const lb_result_t *a, const lb_result_t *b)
{
	return a->ttl == b->ttl && a->fallback == b->fallback && a->nodata == b->nodata &&
	       a->degraded == b->degraded && a->geo_rule == b->geo_rule && a->scope == b->scope &&
	       a->nchosen == b->nchosen && a->naddrs == b->naddrs &&
	       memcmp(a->chosen, b->chosen, a->nchosen * sizeof(*a->chosen)) == 0 &&
	       memcmp(a->addrs, b->addrs, a->naddrs * sizeof(*a->addrs)) == 0;
}

/*
 * One answer (or all the candidates): from the same PRNG state, the cache
 * gives the very answer the walk gives, address order included, and leaves
 * the same PRNG state; so the shares are exactly weight / total.
 */
static void test_one_answer(lb_health_t *h)
{
	unsigned queries = 0, bad = 0, cached = 0, walked = 0;
	for (int i = 0; i < 1500; i++) {
		lb_pool_t *p = pool_random(LB_MEMBERS_MAX, (int)rnd(3));
		if (p->answers > 1 && rnd(2))
			p->answers = 1;
		health_random(h);
		struct lb_sel *retired = NULL;
		lb_pool_sel_update(p, h, &retired);
		for (int q = 0; q < 40; q++) {
			/* Now and then a change not yet revalidated: the walk answers. */
			if (q % 10 == 9) {
				uint32_t t = rnd(TARGETS);
				lb_health_set(h, t, !lb_health_up(h, t));
			} else if (q % 10 == 0) {
				lb_pool_sel_update(p, h, &retired);
			}
			int family = rnd(2) ? 4 : 6;
			lb_client_t clb;
			geo_info_t g;
			const lb_client_t *cl = client_random(&clb, &g);
			uint64_t r1[2] = { gslb_rand(seed) | 1, gslb_rand(seed) };
			uint64_t r2[2] = { r1[0], r1[1] };
			lb_result_t a, b;
			lb_pool_select(p, family, cl, h, r1, &a);
			ref_select(p, family, cl, h, r2, &b);
			const struct lb_sel *s = lb_sel_get(p, family == 6, h);
			cached += s != NULL;
			walked += s == NULL && p->has_family[family == 6];
			/* Several answers of fewer candidates: every one of them, no draw. */
			bool exact = p->answers == 1 || !s || a.nchosen < p->answers ||
				     (p->policy == LB_POLICY_GEO && a.geo_rule != LB_GEO_REST);
			if (!exact)
				continue;
			queries++;
			if ((!result_same(&a, &b) || r1[0] != r2[0] || r1[1] != r2[1]) &&
			    bad++ == 0)
				diag("pool %d (%u members, policy %u, answers %u), query %d "
				     "differs: "
				     "%u chosen, first %u; reference %u, first %u",
				     i, p->nmembers, p->policy, p->answers, q, a.nchosen,
				     a.chosen[0], b.nchosen, b.chosen[0]);
		}
		lb_sel_free(retired);
		pool_free(p);
	}
	ok(bad == 0 && cached > queries / 2 && walked > 1000,
	   "%u queries (%u from a cache, %u walking after a change): the same answer as the "
	   "reference from the same PRNG state",
	   queries, cached, walked);
}

/* Every member's share of inclusions over draws, from lb_pool_select() or the reference. */
static void inclusions(const lb_pool_t *p, const lb_health_t *h, bool ref, unsigned draws,
		       uint64_t s0, double *out)
{
	uint64_t rng[2] = { s0, 0x5851f42d4c957f2dULL };
	unsigned hits[LB_MEMBERS_MAX] = { 0 };
	lb_result_t res;
	for (unsigned d = 0; d < draws; d++) {
		if (ref)
			ref_select(p, 4, NULL, h, rng, &res);
		else
			lb_pool_select(p, 4, NULL, h, rng, &res);
		for (uint16_t k = 0; k < res.nchosen; k++)
			hits[res.chosen[k]]++;
	}
	for (uint16_t i = 0; i < p->nmembers; i++)
		out[i] = (double)hits[i] / draws;
}

/* Two shares of n draws each differ by at most 5 standard deviations of their difference. */
static bool share_close(double a, double b, unsigned n)
{
	double p = (a + b) / 2;
	return fabs(a - b) <= 5 * sqrt(2 * p * (1 - p) / n) + 2.0 / n;
}

/* Weighted pools of IPv4 members, all up, n members with weights w (NULL: random). */
static lb_pool_t *pool_weighted(uint16_t n, const uint16_t *w, uint8_t answers)
{
	lb_pool_t *p = calloc(1, sizeof(*p));
	p->name_len = (uint8_t)lb_pool_set_name(p, "w.example.test");
	p->answers = answers;
	p->fallback_all = true;
	p->ttl = 30;
	p->degraded_ttl = 10;
	p->served = true;
	p->nmembers = n;
	p->members = calloc(n, sizeof(*p->members));
	for (uint16_t i = 0; i < n; i++) {
		lb_member_t *m = &p->members[i];
		m->weight = w ? w[i] : (uint16_t)(1 + rnd(1000));
		m->priority = 1;
		m->naddr[0] = 1;
		m->addr[0] = calloc(1, sizeof(lb_addr_t));
		m->addr[0]->family = 4;
		m->addr[0]->addr[0] = 10;
		m->addr[0]->addr[2] = (uint8_t)(i >> 8);
		m->addr[0]->addr[3] = (uint8_t)i;
		m->addr[0]->target = i % TARGETS;
	}
	lb_pool_derive(p);
	return p;
}

/*
 * Several answers: each member's inclusion frequency from the cache within
 * tolerance of the reference's, over pools where redraws are rare and
 * where they are frequent (one member with nearly all the weight, answers
 * close to the candidates: the walk after SEL_TRIES redraws).  Never a
 * member twice in one answer.
 */
static void test_several_answers(lb_health_t *h)
{
	enum { DRAWS = 40000 };
	static double a[LB_MEMBERS_MAX], b[LB_MEMBERS_MAX];
	static const uint16_t skewed[5] = { 65535, 1, 2, 3, 65535 };
	for (uint32_t t = 0; t < TARGETS; t++)
		lb_health_set(h, t, true);
	struct {
		uint16_t n;
		const uint16_t *w;
		uint8_t answers;
	} cases[] = {
		{ 3, (const uint16_t[]){ 1, 1, 2 }, 2 },
		{ 5, skewed, 3 },
		{ 5, skewed, 4 },
		{ 32, NULL, 2 },
		{ 32, NULL, 8 },
		{ 256, NULL, 3 },
		{ 256, NULL, 64 },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		lb_pool_t *p = pool_weighted(cases[c].n, cases[c].w, cases[c].answers);
		struct lb_sel *retired = NULL;
		lb_pool_sel_update(p, h, &retired);
		inclusions(p, h, false, DRAWS, 11 + c, a);
		inclusions(p, h, true, DRAWS, 977 + c, b);
		unsigned bad = 0, worst = 0;
		double sum = 0;
		for (uint16_t i = 0; i < p->nmembers; i++) {
			sum += a[i];
			if (!share_close(a[i], b[i], DRAWS) && bad++ == 0)
				worst = i;
		}
		/* Distinct members: the inclusions of one answer sum to the answers. */
		ok(bad == 0 && lb_sel_get(p, 0, h) && fabs(sum - cases[c].answers) < 1e-6,
		   "%u members, answers %u: inclusion shares as the reference's (member %u: %.4f "
		   "vs "
		   "%.4f; %u outside)",
		   p->nmembers, p->answers, worst, a[worst], b[worst], bad);
		lb_sel_free(retired);
		pool_free(p);
	}
}

/* One answer of 256 members: each member's count within 5 sigma of weight / total. */
static void test_shares_256(lb_health_t *h)
{
	enum { DRAWS = 400000 };
	static unsigned hits[LB_MEMBERS_MAX];
	lb_pool_t *p = pool_weighted(256, NULL, 1);
	struct lb_sel *retired = NULL;
	lb_pool_sel_update(p, h, &retired);
	uint64_t rng[2] = { 42, 4242 }, total = 0;
	for (uint16_t i = 0; i < 256; i++)
		total += p->members[i].weight;
	lb_result_t res;
	for (unsigned d = 0; d < DRAWS; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &res);
		hits[res.chosen[0]]++;
	}
	unsigned bad = 0;
	for (uint16_t i = 0; i < 256; i++) {
		double e = (double)DRAWS * p->members[i].weight / total;
		if (fabs(hits[i] - e) > 5 * sqrt(e) + 1)
			bad++;
	}
	ok(bad == 0 && lb_sel_get(p, 0, h),
	   "256 members, one answer: every count within 5 sigma of "
	   "weight / total over %u draws (%u outside)",
	   DRAWS, bad);
	lb_sel_free(retired);
	pool_free(p);
}

/*
 * A health change the control thread has not looked at yet: the next query
 * follows the table, not the cache; once revalidated, the cache again.
 */
static void test_stale(lb_health_t *h)
{
	for (uint32_t t = 0; t < TARGETS; t++)
		lb_health_set(h, t, true);
	uint16_t w[256];
	for (int i = 0; i < 256; i++)
		w[i] = 100;
	w[5] = 60000; /* member 5 answers most of the time while up */
	lb_pool_t *p = pool_weighted(256, w, 1);
	p->members[5].addr[0]->target = TARGETS - 1;
	for (uint16_t i = 0; i < 256; i++)
		if (i != 5 && p->members[i].addr[0]->target == TARGETS - 1)
			p->members[i].addr[0]->target = 0;
	struct lb_sel *retired = NULL;
	lb_pool_sel_update(p, h, &retired);
	const struct lb_sel *s = lb_sel_get(p, 0, h);
	ok(s && s->n == 256, "a cache of the 256 members");

	uint64_t g = lb_health_gen(h);
	lb_health_set(h, TARGETS - 1, true);
	ok(lb_health_gen(h) == g, "a word set to what it was: no new generation");
	lb_health_set(h, TARGETS - 1, false);
	ok(lb_health_gen(h) == g + 1, "a word changed: a new generation");
	ok(lb_sel_get(p, 0, h) == NULL, "the cache does not hold for it");

	uint64_t rng[2] = { 7, 77 };
	lb_result_t res;
	unsigned hits5 = 0, degraded = 0;
	for (int d = 0; d < 2000; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &res);
		hits5 += res.chosen[0] == 5;
		degraded += res.degraded;
	}
	ok(hits5 == 0 && degraded == 2000,
	   "before revalidation the answers follow the table: the member down is never answered "
	   "(%u), degraded-ttl (%u of 2000)",
	   hits5, degraded);

	ok(lb_pool_sel_update(p, h, &retired) == 1 && lb_sel_get(p, 0, h) &&
		   lb_sel_get(p, 0, h)->n == 255,
	   "revalidated: a new cache without it");
	lb_health_set(h, TARGETS - 1, true);
	hits5 = 0;
	for (int d = 0; d < 2000; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &res);
		hits5 += res.chosen[0] == 5;
	}
	ok(hits5 > 1000, "back up, before revalidation: answered again at once (%u of 2000)",
	   hits5);

	/*
	 * The cache is what answers while it holds: a word written behind the
	 * table's back (no new generation, which lb_health_set() never does)
	 * is not seen.  This shows the walk is skipped, not a behaviour to
	 * rely on.
	 */
	lb_pool_sel_update(p, h, &retired);
	atomic_store(&h->words[TARGETS - 1], 0u);
	hits5 = 0;
	for (int d = 0; d < 2000; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &res);
		hits5 += res.chosen[0] == 5;
	}
	ok(hits5 > 1000, "a valid cache answers without reading the members' words (%u of 2000)",
	   hits5);
	atomic_store(&h->words[TARGETS - 1], LB_HEALTH_UP);

	/* Another health table (explain's): the cache is not for it. */
	lb_health_t *other = lb_health_new(TARGETS);
	atomic_store(&other->gen, lb_health_gen(h));
	ok(lb_sel_get(p, 0, other) == NULL, "a cache holds only for the table it was built from");
	lb_health_free(other);

	/* Not served: no cache to keep up to date. */
	lb_pool_sel_clear(p);
	p->served = false;
	ok(lb_pool_sel_update(p, h, &retired) == 0 && !atomic_load(&p->sel[0]),
	   "a pool not served gets no cache");
	lb_sel_free(retired);
	pool_free(p);
}

/* The query path with a cache allocates nothing. */
static void test_no_alloc(lb_health_t *h)
{
	for (uint32_t t = 0; t < TARGETS; t++)
		lb_health_set(h, t, true);
	lb_pool_t *p = pool_weighted(256, NULL, 3);
	struct lb_sel *retired = NULL;
	lb_pool_sel_update(p, h, &retired);
	uint64_t rng[2] = { 1, 2 };
	lb_result_t res;
	alloc_count = 0;
	alloc_counting = true;
	for (int d = 0; d < 1000; d++)
		lb_pool_select(p, 4, NULL, h, rng, &res);
	alloc_counting = false;
	ok(alloc_count == 0 && lb_sel_get(p, 0, h),
	   "no allocation in 1,000 cached selections of 3 answers (%lu)",
	   (unsigned long)alloc_count);
	lb_sel_free(retired);
	pool_free(p);
}

int main(void)
{
	/* A cache of up to four members in a 64-byte malloc chunk (8 bytes of it malloc's). */
	ok(sizeof(struct lb_sel) + 4 * sizeof(uint32_t) + 4 * sizeof(uint16_t) <= 56,
	   "a selection cache of four members takes %zu bytes",
	   sizeof(struct lb_sel) + 4 * sizeof(uint32_t) + 4 * sizeof(uint16_t));
	lb_health_t *h = lb_health_new(TARGETS);
	test_candidates(h);
	test_one_answer(h);
	test_several_answers(h);
	test_shares_256(h);
	test_stale(h);
	test_no_alloc(h);
	lb_health_free(h);
	return done_testing();
}
