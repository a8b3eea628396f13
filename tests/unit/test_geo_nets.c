/* SPDX-License-Identifier: MIT */
/*
 * Geo pools' member networks: the lookup lb_pool_derive() builds against the
 * loops over every network that it replaced, on randomized pools and clients.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/lb.h"
#include "../../src/lb/internal.h"
#include "alloc_count.h"
#include "tap.h"

/* ---- the reference: the per-query loops over every network (gslbd before the lookup) ---- */

static unsigned ref_common_prefix(const uint8_t *a, const uint8_t *b, unsigned bits)
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

static unsigned ref_bits(int family)
{
	return family == 6 ? 128 : 32;
}

/* The longest network of m holding the client, or -1. */
static int ref_member_net_match(const lb_member_t *m, const lb_client_t *cl)
{
	int best = -1;
	for (uint16_t i = 0; i < m->nnets; i++) {
		const lb_net_t *n = &m->nets[i];
		if (n->family != cl->family || n->len <= best)
			continue;
		if (ref_common_prefix(n->addr, cl->addr, ref_bits(cl->family)) >= n->len)
			best = n->len;
	}
	return best;
}

/* RFC 7871 7.2.1 over every member, eligible or not. */
static unsigned ref_scope_exclude_nets(const lb_pool_t *p, const lb_client_t *cl, unsigned scope)
{
	if (!p->has_nets)
		return scope;
	unsigned bits = ref_bits(cl->family);
	for (uint16_t k = 0; k < p->nmembers; k++) {
		const lb_member_t *m = &p->members[k];
		for (uint16_t i = 0; i < m->nnets; i++) {
			const lb_net_t *n = &m->nets[i];
			if (n->family != cl->family)
				continue;
			unsigned l = ref_common_prefix(n->addr, cl->addr, bits);
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
 * lb_geo_rank_cands() as it was, for clients the geo file does not know
 * (rule 1, else rule 5 with the geo file's prefix as the scope's start).
 */
static void ref_rank(const lb_pool_t *p, const lb_client_t *cl, const struct lb_cands *c,
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
	if (known && p->has_nets)
		for (uint16_t k = 0; k < c->n; k++) {
			int l = ref_member_net_match(&p->members[c->idx[k]], cl);
			if (l > best)
				best = l;
		}
	if (best >= 0) {
		for (uint16_t k = 0; k < c->n; k++)
			if (ref_member_net_match(&p->members[c->idx[k]], cl) == best)
				out->idx[out->n++] = c->idx[k];
		out->rule = LB_GEO_NETWORK;
		out->net_len = (uint8_t)best;
		out->scope = (uint8_t)ref_scope_exclude_nets(p, cl, (unsigned)best);
		return;
	}
	memcpy(out->idx, c->idx, c->n * sizeof(*c->idx));
	out->n = c->n;
	out->rule = LB_GEO_REST;
	if (known)
		out->scope = (uint8_t)ref_scope_exclude_nets(p, cl, g ? g->prefix_len : 0);
}

/* ---- randomized pools ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static void bit_set(uint8_t *a, unsigned i, int v)
{
	uint8_t m = (uint8_t)(0x80u >> (i & 7));
	a[i / 8] = (uint8_t)(v ? a[i / 8] | m : a[i / 8] & ~m);
}

static int bit_get(const uint8_t *a, unsigned i)
{
	return a[i / 8] >> (7 - (i & 7)) & 1;
}

/* A few base addresses per family, so that networks nest, collide and sit side by side. */
static uint8_t bases[2][4][16];

static unsigned rand_len(unsigned bits)
{
	switch (below(10)) {
	case 0:
		return below(4) == 0 ? 0 : bits;
	case 1:
		return bits - below(3);
	default:
		return 1 + below(bits - 1);
	}
}

static void rand_net(lb_net_t *n, const lb_pool_t *p, uint16_t upto)
{
	/* Sometimes another network again, or one nested in or around it. */
	if (upto > 0 && below(3) == 0) {
		const lb_member_t *o = &p->members[below(upto)];
		if (o->nnets > 0) {
			*n = o->nets[below(o->nnets)];
			unsigned bits = ref_bits(n->family);
			if (below(3) != 0)
				n->len = (uint8_t)(below(2) ? below(n->len + 1u)
							    : n->len + below(bits - n->len + 1u));
			for (unsigned i = n->len; i < bits && below(2); i++)
				bit_set(n->addr, i, (int)below(2));
			if (below(8) != 0)
				lb_net_mask(n);
			return;
		}
	}
	int fi = (int)below(2);
	unsigned bits = fi ? 128 : 32;
	memset(n, 0, sizeof(*n));
	n->family = fi ? 6 : 4;
	memcpy(n->addr, bases[fi][below(4)], bits / 8);
	/* Flip a few bits from a random depth on, mostly deep ones. */
	unsigned from = below(bits);
	for (unsigned f = below(4); f > 0; f--)
		bit_set(n->addr, from + below(bits - from), (int)below(2));
	n->len = (uint8_t)rand_len(bits);
	if (below(8) != 0) /* lb_net_mask() as lb_config_pools() does; sometimes host bits left */
		lb_net_mask(n);
}

static lb_pool_t *pool_new(uint16_t nmembers, unsigned max_nets)
{
	lb_pool_t *p = calloc(1, sizeof(*p));
	p->policy = LB_POLICY_GEO;
	p->nmembers = nmembers;
	p->members = calloc(nmembers, sizeof(*p->members));
	for (uint16_t k = 0; k < nmembers; k++) {
		lb_member_t *m = &p->members[k];
		lb_member_set_name(m, "m%u", k);
		m->weight = 100;
		m->priority = 1;
		/* A third of the members have no network. */
		unsigned nn = below(3) == 0 ? 0 : below(max_nets + 1);
		m->nets = calloc(nn ? nn : 1, sizeof(*m->nets));
		for (unsigned i = 0; i < nn; i++) {
			/* Sometimes the member's own network again. */
			if (i > 0 && below(16) == 0)
				m->nets[i] = m->nets[below(i)];
			else
				rand_net(&m->nets[i], p, k);
			m->nnets++;
		}
	}
	lb_pool_derive(p);
	return p;
}

/* ---- clients: anywhere, and at the edges of the pool's networks ---- */

static void add_one(uint8_t *a, unsigned bits, int delta)
{
	for (int i = (int)bits / 8 - 1; i >= 0; i--) {
		unsigned v = a[i] + (unsigned)delta;
		a[i] = (uint8_t)v;
		if ((delta > 0 && a[i] != 0) || (delta < 0 && a[i] != 0xff))
			break;
	}
}

static void rand_client(const lb_pool_t *p, lb_client_t *cl)
{
	memset(cl, 0, sizeof(*cl));
	const lb_net_t *n = NULL;
	const lb_member_t *m = &p->members[below(p->nmembers)];
	if (m->nnets > 0 && below(4) != 0)
		n = &m->nets[below(m->nnets)];
	if (!n) {
		int fi = (int)below(2);
		cl->family = fi ? 6 : 4;
		if (below(2))
			memcpy(cl->addr, bases[fi][below(4)], fi ? 16 : 4);
		for (unsigned i = 0; i < (fi ? 128u : 32u); i++)
			if (below(4) == 0)
				bit_set(cl->addr, i, (int)below(2));
		return;
	}
	unsigned bits = ref_bits(n->family);
	cl->family = n->family;
	memcpy(cl->addr, n->addr, bits / 8);
	switch (below(7)) {
	case 0: /* its first address */
		for (unsigned i = n->len; i < bits; i++)
			bit_set(cl->addr, i, 0);
		break;
	case 1: /* its last */
		for (unsigned i = n->len; i < bits; i++)
			bit_set(cl->addr, i, 1);
		break;
	case 2: /* just before it */
		for (unsigned i = n->len; i < bits; i++)
			bit_set(cl->addr, i, 0);
		add_one(cl->addr, bits, -1);
		break;
	case 3: /* just after it */
		for (unsigned i = n->len; i < bits; i++)
			bit_set(cl->addr, i, 1);
		add_one(cl->addr, bits, 1);
		break;
	case 4: /* its sibling */
		if (n->len > 0)
			bit_set(cl->addr, n->len - 1u, !bit_get(cl->addr, n->len - 1u));
		break;
	case 5: /* off it somewhere in its prefix */
		if (n->len > 0) {
			unsigned i = below(n->len);
			bit_set(cl->addr, i, !bit_get(cl->addr, i));
		}
		for (unsigned i = n->len; i < bits; i++)
			bit_set(cl->addr, i, (int)below(2));
		break;
	default: /* anywhere inside */
		for (unsigned i = n->len; i < bits; i++)
			bit_set(cl->addr, i, (int)below(2));
	}
}

/* Random eligible candidates: ascending as lb_candidates() gives them, sometimes shuffled. */
static void rand_cands(const lb_pool_t *p, struct lb_cands *c)
{
	memset(c, 0, sizeof(*c));
	unsigned q = below(4);
	for (uint16_t k = 0; k < p->nmembers; k++)
		if (q == 3 || below(4) <= q)
			c->idx[c->n++] = k;
	if (below(4) == 0)
		for (uint16_t k = c->n; k > 1; k--) {
			uint16_t j = (uint16_t)below(k), t = c->idx[k - 1];
			c->idx[k - 1] = c->idx[j];
			c->idx[j] = t;
		}
}

static char *addr_text(const lb_client_t *cl, char *buf)
{
	char *o = buf;
	for (unsigned i = 0; i < ref_bits(cl->family) / 8; i++)
		o += sprintf(o, i ? ".%u" : "%u", cl->addr[i]);
	return buf;
}

static void pool_dump(const lb_pool_t *p)
{
	for (uint16_t k = 0; k < p->nmembers; k++)
		for (uint16_t i = 0; i < p->members[k].nnets; i++) {
			lb_client_t t = { .family = p->members[k].nets[i].family };
			char buf[80];
			memcpy(t.addr, p->members[k].nets[i].addr, 16);
			diag("  m%u %s/%u", k, addr_text(&t, buf), p->members[k].nets[i].len);
		}
}

static bool same(const lb_geo_rank_t *a, const lb_geo_rank_t *b)
{
	return a->rule == b->rule && a->scope == b->scope && a->net_len == b->net_len &&
	       a->n == b->n && memcmp(a->idx, b->idx, a->n * sizeof(*a->idx)) == 0;
}

struct tally {
	unsigned long queries, mismatches, rule1, nonzero_scope;
};

/* Ask pool p for clients random clients; count what differs from the reference. */
static void check_pool(const lb_pool_t *p, unsigned clients, struct tally *t)
{
	for (unsigned i = 0; i < clients; i++) {
		lb_client_t cl;
		geo_info_t g;
		struct lb_cands c;
		lb_geo_rank_t got, want;

		rand_client(p, &cl);
		memset(&g, 0, sizeof(g));
		g.prefix_len = (uint8_t)below(ref_bits(cl.family) + 1);
		cl.geo = below(3) ? &g : NULL;
		if (below(50) == 0)
			cl.family = 0;
		rand_cands(p, &c);

		alloc_counting = true;
		lb_geo_rank_cands(p, &cl, &c, &got);
		alloc_counting = false;
		ref_rank(p, &cl, &c, &want);
		t->queries++;
		t->rule1 += want.rule == LB_GEO_NETWORK;
		t->nonzero_scope += want.scope > 0;
		if (!same(&got, &want)) {
			if (t->mismatches++ < 5) {
				char buf[80];
				diag("client %s (family %u, %u candidates, geo prefix %d): got "
				     "rule %u "
				     "net_len %u scope %u n %u, want rule %u net_len %u scope %u n "
				     "%u",
				     addr_text(&cl, buf), cl.family, c.n,
				     cl.geo ? g.prefix_len : -1, got.rule, got.net_len, got.scope,
				     got.n, want.rule, want.net_len, want.scope, want.n);
				if (t->mismatches == 1 && p->nmembers <= 16)
					pool_dump(p);
			}
		}
	}
}

int main(void)
{
	const char *seed = getenv("GSLB_TEST_SEED");
	if (seed)
		rng_state = strtoull(seed, NULL, 0);
	diag("seed 0x%llx (GSLB_TEST_SEED)", (unsigned long long)rng_state);
	for (int fi = 0; fi < 2; fi++)
		for (int b = 0; b < 4; b++)
			for (int i = 0; i < 16; i++)
				bases[fi][b][i] = (uint8_t)rnd();

	/* Small pools: few members, few networks, so that members share and nest them. */
	struct tally t = { 0 };
	for (int r = 0; r < 3000; r++) {
		lb_pool_t *p = pool_new((uint16_t)(1 + below(8)), 1 + below(6));
		check_pool(p, 60, &t);
		lb_pools_free(p, 1);
	}
	ok(t.mismatches == 0, "small pools: %lu of %lu answers as the per-network loops gave them",
	   t.queries - t.mismatches, t.queries);
	diag("  %lu by rule 1, %lu with a scope above 0", t.rule1, t.nonzero_scope);
	ok(t.rule1 > t.queries / 10 && t.rule1 < t.queries * 9 / 10,
	   "small pools: rule 1 decides some answers and not others (%lu)", t.rule1);

	/* Middle pools: up to 64 members with up to 40 networks each. */
	memset(&t, 0, sizeof(t));
	for (int r = 0; r < 100; r++) {
		lb_pool_t *p = pool_new((uint16_t)(1 + below(64)), 1 + below(40));
		check_pool(p, 500, &t);
		lb_pools_free(p, 1);
	}
	ok(t.mismatches == 0, "middle pools: %lu of %lu answers as the per-network loops gave them",
	   t.queries - t.mismatches, t.queries);

	/* Large pools: 256 members, about 10,000 networks (a third of the members have none). */
	memset(&t, 0, sizeof(t));
	for (int r = 0; r < 3; r++) {
		lb_pool_t *p = pool_new(LB_MEMBERS_MAX, 117);
		check_pool(p, 2000, &t);
		lb_pools_free(p, 1);
	}
	ok(t.mismatches == 0, "large pools: %lu of %lu answers as the per-network loops gave them",
	   t.queries - t.mismatches, t.queries);

	if (COUNT_ALLOCS)
		ok(alloc_count == 0, "geo ranking allocates nothing (%lu allocations)",
		   (unsigned long)alloc_count);

	/* A pool without networks builds nothing, and one with networks builds its lookup. */
	lb_pool_t *p = calloc(1, sizeof(*p));
	p->nmembers = 1;
	p->members = calloc(1, sizeof(*p->members));
	lb_pool_derive(p);
	ok(!p->has_nets && p->geo_nets == NULL, "no networks: no lookup");
	p->members[0].nets = calloc(1, sizeof(lb_net_t));
	p->members[0].nets[0] = (lb_net_t){ .family = 4, .len = 8, .addr = { 10 } };
	p->members[0].nnets = 1;
	lb_pool_derive(p);
	ok(p->has_nets && p->geo_nets != NULL, "a network: a lookup");
	lb_pool_derive(p); /* again: the first one is freed (valgrind, ASan) */
	ok(p->geo_nets != NULL, "derived twice: still a lookup");
	lb_pools_free(p, 1);
	return done_testing();
}
