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

/* Choose k of the n members idx, weighted, without replacement; result in chosen. */
static uint16_t draw(const lb_pool_t *p, uint16_t n, const uint16_t *cands, uint16_t k,
		     uint64_t rng[2], uint16_t *chosen)
{
	uint16_t got = 0;
	uint16_t idx[LB_MEMBERS_MAX];
	memcpy(idx, cands, n * sizeof(*idx));
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

/* ---- selection caches ---- */

/* The position of the first cumulative weight above r (r < lb_sel_total(s)). */
static uint16_t sel_find(const struct lb_sel *s, uint64_t r)
{
	uint16_t lo = 0, hi = (uint16_t)(s->n - 1);
	while (lo < hi) {
		uint16_t mid = (uint16_t)((lo + hi) / 2);
		if (s->cum[mid] > r)
			hi = mid;
		else
			lo = (uint16_t)(mid + 1);
	}
	return lo;
}

static uint32_t sel_weight(const struct lb_sel *s, uint16_t i)
{
	return s->cum[i] - (i ? s->cum[i - 1] : 0);
}

/*
 * Tries of a draw from the whole cache before a draw of k > 1 falls back
 * to a walk of the members not yet chosen.  A try hits a chosen member with
 * the chosen share of the weight, so this is rare unless k is most of n.
 */
#define SEL_TRIES 8

/*
 * draw() from a cache: the same distribution in O(k log n).  One answer
 * takes the member the linear scan would take for the same random number,
 * so the same PRNG state gives the same answer.  Several answers are drawn
 * one by one, each from the whole cache, again while it hits a member
 * already chosen: that is a draw weighted among the members not yet chosen,
 * as draw() makes it.  After SEL_TRIES hits, the members not yet chosen are
 * walked, which is the same draw again.
 */
static uint16_t draw_sel(const struct lb_sel *s, uint16_t k, uint64_t rng[2], uint16_t *chosen)
{
	uint16_t n = s->n;
	const uint16_t *idx = lb_sel_idx(s);
	if (k >= n) {
		memcpy(chosen, idx, n * sizeof(*chosen));
		return n;
	}
	/* n > k > 0 here: the total is the last cumulative weight. */
	uint64_t total = s->cum[n - 1];
	if (k == 1) {
		chosen[0] = idx[sel_find(s, gslb_rand(rng) % total)];
		return 1;
	}
	uint64_t seen[LB_MEMBERS_MAX / 64] = { 0 };
	uint64_t left = total;
	for (uint16_t got = 0; got < k; got++) {
		uint16_t i = 0;
		int t;
		for (t = 0; t < SEL_TRIES; t++) {
			i = sel_find(s, gslb_rand(rng) % total);
			if (!(seen[i / 64] >> (i % 64) & 1))
				break;
		}
		if (t == SEL_TRIES) {
			uint64_t r = gslb_rand(rng) % left;
			for (i = 0;; i++) {
				if (seen[i / 64] >> (i % 64) & 1)
					continue;
				if (r < sel_weight(s, i))
					break;
				r -= sel_weight(s, i);
			}
		}
		seen[i / 64] |= 1ull << (i % 64);
		left -= sel_weight(s, i);
		chosen[got] = idx[i];
	}
	return k;
}

static struct lb_sel *sel_new(const lb_pool_t *p, const struct lb_cands *c, const lb_health_t *h,
			      uint64_t gen)
{
	size_t n = c->n;
	struct lb_sel *s = gslb_malloc(sizeof(*s) + n * sizeof(*s->cum) +
				       (n ? n : 1) * sizeof(uint16_t));
	atomic_init(&s->gen, gen);
	s->h = h;
	s->next = NULL;
	s->n = c->n;
	s->fallback = c->fallback;
	s->degraded = c->degraded;
	s->nodata = c->nodata;
	uint16_t *idx = (uint16_t *)&s->cum[n];
	uint64_t total = 0;
	for (uint16_t i = 0; i < c->n; i++) {
		idx[i] = c->idx[i];
		total += lb_draw_weight(&p->members[c->idx[i]]);
		s->cum[i] = (uint32_t)total;
	}
	return s;
}

/* Does cache s say what c says?  (The weights are the pool's, which never change.) */
static bool sel_same(const struct lb_sel *s, const struct lb_cands *c)
{
	return s->n == c->n && s->fallback == c->fallback && s->degraded == c->degraded &&
	       s->nodata == c->nodata && memcmp(lb_sel_idx(s), c->idx, c->n * sizeof(*c->idx)) == 0;
}

unsigned lb_pool_sel_update(lb_pool_t *p, const lb_health_t *h, struct lb_sel **retired)
{
	unsigned replaced = 0;
	if (!h || !p->served)
		return 0;
	/* First the generation, then the words: the cache holds for it or a later one. */
	uint64_t gen = lb_health_gen(h);
	for (int fi = 0; fi < 2; fi++) {
		struct lb_sel *old = atomic_load_explicit(&p->sel[fi], memory_order_relaxed);
		/* A family no member has: lb_pool_select() answers NODATA without a walk. */
		if (!p->has_family[fi])
			continue;
		/* A pool shared with the previous snapshot, checked since the last change. */
		if (old && old->h == h &&
		    atomic_load_explicit(&old->gen, memory_order_relaxed) == gen)
			continue;
		struct lb_cands c;
		lb_candidates(p, fi, h, &c);
		if (old && old->h == h && sel_same(old, &c)) {
			atomic_store_explicit(&old->gen, gen, memory_order_relaxed);
			continue;
		}
		/* Release: a worker that loads the pointer sees the cache's contents. */
		atomic_store_explicit(&p->sel[fi], sel_new(p, &c, h, gen), memory_order_release);
		if (old) {
			old->next = *retired;
			*retired = old;
			replaced++;
		}
	}
	return replaced;
}

void lb_sel_free(struct lb_sel *s)
{
	while (s) {
		struct lb_sel *next = s->next;
		free(s);
		s = next;
	}
}

void lb_pool_sel_clear(lb_pool_t *p)
{
	for (int fi = 0; fi < 2; fi++) {
		free(atomic_load_explicit(&p->sel[fi], memory_order_relaxed));
		atomic_store_explicit(&p->sel[fi], NULL, memory_order_relaxed);
	}
}

int lb_pool_select(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		   uint64_t rng[2], lb_result_t *res)
{
	int fi = family == 6;
	struct lb_cands c;
	/*
	 * The cache when it holds for the health table as it is now; else (a
	 * change the control thread has not looked at yet, a small pool) the
	 * walk of every member, which says the same.
	 */
	const struct lb_sel *s = lb_sel_get(p, fi, h);
	if (s) {
		c.n = s->n;
		c.fallback = s->fallback;
		c.degraded = s->degraded;
		c.nodata = s->nodata;
	} else if (!p->has_family[fi]) {
		/* What lb_candidates() finds without a member of the family, without the walk. */
		c.n = 0;
		c.fallback = c.degraded = false;
		c.nodata = true;
	} else {
		lb_candidates(p, fi, h, &c);
	}
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
		if (s)
			memcpy(c.idx, lb_sel_idx(s), s->n * sizeof(*c.idx));
		lb_geo_rank_cands(p, cl, &c, &g);
		res->geo_rule = g.rule;
		res->scope = g.scope;
		if (g.rule == LB_GEO_DISTANCE) {
			res->nchosen = g.n < p->answers ? g.n : p->answers;
			memcpy(res->chosen, g.idx, res->nchosen * sizeof(*g.idx));
		} else if (s && g.rule == LB_GEO_REST) {
			/* Every candidate, in the cache's order: its weights hold. */
			res->nchosen = draw_sel(s, p->answers, rng, res->chosen);
		} else {
			res->nchosen = draw(p, g.n, g.idx, p->answers, rng, res->chosen);
		}
	} else if (s) {
		res->nchosen = draw_sel(s, p->answers, rng, res->chosen);
	} else {
		res->nchosen = draw(p, c.n, c.idx, p->answers, rng, res->chosen);
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
		uint16_t n = draw(p, c.n, c.idx, p->answers, rng, chosen);
		for (uint16_t k = 0; k < n; k++)
			hits[chosen[k]]++;
	}
	for (uint16_t k = 0; k < c.n; k++)
		views[c.idx[k]].probability = (double)hits[c.idx[k]] / DRAWS;
}
