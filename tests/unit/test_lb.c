/* SPDX-License-Identifier: MIT */
/* Policy unit tests: weighted shares, failover order, admin states, weight 0, drain, answers, fallback, TTLs. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/dns.h"
#include "gslb/lb.h"
#include "../../src/lb/internal.h"
#include "tap.h"

#define DRAWS 100000

/* A pool of n members "m0".."mN"; member i has IPv4 10.0.0.(i+1) with target i. */
static lb_pool_t *pool_new(uint16_t n, int policy)
{
	lb_pool_t *p = calloc(1, sizeof(*p));
	p->name_len = (uint8_t)lb_pool_set_name(p, "www.example.test");
	p->policy = (uint8_t)policy;
	p->answers = 1;
	p->fallback_all = true;
	p->ttl = 30;
	p->degraded_ttl = 10;
	p->nmembers = n;
	p->members = calloc(n, sizeof(*p->members));
	for (uint16_t i = 0; i < n; i++) {
		lb_member_t *m = &p->members[i];
		lb_member_set_name(m, "m%u", i);
		m->weight = 100;
		m->priority = 1;
		m->naddr[0] = 1;
		m->addr[0] = calloc(1, sizeof(lb_addr_t));
		m->addr[0]->family = 4;
		m->addr[0]->addr[0] = 10;
		m->addr[0]->addr[3] = (uint8_t)(i + 1);
		m->addr[0]->target = i;
	}
	lb_pool_derive(p);
	return p;
}

static void pool_free(lb_pool_t *p)
{
	lb_pool_clear(p); /* names, members and their addresses, what lb_pool_derive() built */
	free(p);
}

/* Member index an address belongs to (its last byte - 1 in this test's numbering). */
static int member_of(const lb_addr_t *a)
{
	return a->addr[3] - 1;
}

/* Draw DRAWS answers; count how often each member appears. */
static void shares(const lb_pool_t *p, const lb_health_t *h, double *out, lb_result_t *last)
{
	uint64_t rng[2] = { 0x1234567, 0x89abcdef };
	unsigned hits[LB_MEMBERS_MAX] = { 0 };
	for (int d = 0; d < DRAWS; d++) {
		lb_pool_select(p, 4, NULL, h, rng, last);
		for (uint16_t k = 0; k < last->naddrs; k++)
			hits[member_of(last->addrs[k])]++;
	}
	for (uint16_t i = 0; i < p->nmembers; i++)
		out[i] = (double)hits[i] / DRAWS;
}

static void test_weighted(lb_health_t *h)
{
	lb_pool_t *p = pool_new(4, LB_POLICY_WEIGHTED);
	static const uint16_t w[4] = { 100, 200, 300, 400 };
	for (int i = 0; i < 4; i++)
		p->members[i].weight = w[i];
	double s[4];
	lb_result_t r;
	shares(p, h, s, &r);
	double worst = 0;
	for (int i = 0; i < 4; i++) {
		double want = w[i] / 1000.0;
		double err = fabs(s[i] - want);
		if (err > worst)
			worst = err;
	}
	diag("weighted 1:2:3:4 over %d draws: shares %.4f %.4f %.4f %.4f, worst error %.4f", DRAWS,
	     s[0], s[1], s[2], s[3], worst);
	ok(worst < 0.01, "weighted: every share within 0.01 of weight/total");
	is_int(r.ttl, 30, "weighted: all healthy -> ttl");
	ok(!r.fallback && !r.nodata && r.naddrs == 1, "weighted: one answer, no fallback");

	/* answers 2 without replacement: never the same member twice. */
	p->answers = 2;
	uint64_t rng[2] = { 7, 11 };
	bool distinct = true;
	for (int d = 0; d < 10000; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &r);
		if (r.naddrs != 2 || member_of(r.addrs[0]) == member_of(r.addrs[1]))
			distinct = false;
	}
	ok(distinct, "answers 2: two distinct members every time");
	p->answers = 10;
	lb_pool_select(p, 4, NULL, h, rng, &r);
	is_int(r.naddrs, 4, "answers above the member count: every member");
	pool_free(p);
}

static void test_failover(lb_health_t *h)
{
	lb_pool_t *p = pool_new(3, LB_POLICY_FAILOVER);
	p->members[0].priority = 2;
	p->members[1].priority = 1;
	p->members[2].priority = 3;
	uint64_t rng[2] = { 3, 5 };
	lb_result_t r;
	bool only1 = true;
	for (int d = 0; d < 1000; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &r);
		only1 = only1 && r.naddrs == 1 && member_of(r.addrs[0]) == 1;
	}
	ok(only1, "failover: the lowest priority value only");
	lb_health_set(h, 1, false);
	lb_pool_select(p, 4, NULL, h, rng, &r);
	ok(r.naddrs == 1 && member_of(r.addrs[0]) == 0, "failover: next priority when it is down");
	is_int(r.ttl, 10, "failover: a member down -> degraded-ttl");
	lb_health_set(h, 0, false);
	lb_pool_select(p, 4, NULL, h, rng, &r);
	ok(r.naddrs == 1 && member_of(r.addrs[0]) == 2, "failover: third when two are down");
	lb_health_set(h, 0, true);
	lb_health_set(h, 1, true);
	/* Two members sharing the best priority share the traffic by weight. */
	p->members[0].priority = 1;
	double s[3];
	shares(p, h, s, &r);
	ok(fabs(s[0] - 0.5) < 0.01 && fabs(s[1] - 0.5) < 0.01 && s[2] == 0,
	   "failover: equal priorities split as weighted (%.3f/%.3f/%.3f)", s[0], s[1], s[2]);
	pool_free(p);
}

static void test_admin(lb_health_t *h)
{
	lb_pool_t *p = pool_new(3, LB_POLICY_WEIGHTED);
	double s[3];
	lb_result_t r;

	p->members[0].admin = LB_ADMIN_DOWN;
	shares(p, h, s, &r);
	ok(s[0] == 0 && s[1] > 0.45 && s[2] > 0.45, "admin down: never answered");

	p->members[0].admin = LB_ADMIN_DRAIN;
	shares(p, h, s, &r);
	ok(s[0] == 0, "drain: not used while others are eligible");
	p->members[0].admin = LB_ADMIN_AUTO;

	p->members[2].weight = 0;
	shares(p, h, s, &r);
	ok(s[2] == 0, "weight 0: not used while others are eligible");

	lb_health_set(h, 0, false);
	lb_health_set(h, 1, false);
	shares(p, h, s, &r);
	ok(s[2] == 1.0, "weight 0: used when nothing else is eligible");
	p->members[2].weight = 100;
	p->members[2].admin = LB_ADMIN_DRAIN;
	shares(p, h, s, &r);
	ok(s[2] == 1.0 && !r.fallback, "drain: used when nothing else is eligible, no fallback");
	p->members[2].admin = LB_ADMIN_AUTO;

	p->members[0].admin = LB_ADMIN_UP;
	shares(p, h, s, &r);
	ok(s[0] > 0.45 && s[1] == 0, "admin up: healthy whatever the probes say");
	p->members[0].admin = LB_ADMIN_AUTO;
	lb_health_set(h, 0, true);
	lb_health_set(h, 1, true);
	pool_free(p);
}

static void test_fallback(lb_health_t *h)
{
	lb_pool_t *p = pool_new(3, LB_POLICY_WEIGHTED);
	lb_result_t r;
	uint64_t rng[2] = { 1, 2 };
	for (uint32_t i = 0; i < 3; i++)
		lb_health_set(h, i, false);
	p->members[1].admin = LB_ADMIN_DOWN;
	p->answers = 3;
	lb_pool_select(p, 4, NULL, h, rng, &r);
	ok(r.fallback && r.naddrs == 2, "fallback all: every member not admin-down (%u addresses)",
	   r.naddrs);
	bool no_down = true;
	for (uint16_t k = 0; k < r.naddrs; k++)
		no_down = no_down && member_of(r.addrs[k]) != 1;
	ok(no_down, "fallback all: the admin-down member stays out");
	is_int(r.ttl, 10, "fallback: degraded-ttl");
	p->fallback_all = false;
	lb_pool_select(p, 4, NULL, h, rng, &r);
	ok(r.nodata && r.naddrs == 0 && r.degraded, "fallback none: NODATA");
	is_int(r.ttl, 10, "fallback none: degraded-ttl");
	for (uint32_t i = 0; i < 3; i++)
		lb_health_set(h, i, true);
	lb_pool_select(p, 6, NULL, h, rng, &r);
	ok(r.nodata && !r.degraded, "no address of the family: NODATA, not degraded");

	/* degraded-ttl while any member is down, in either family (README, Balanced names). */
	lb_member_t *m2 = &p->members[2];
	m2->naddr[1] = 1;
	m2->addr[1] = calloc(1, sizeof(lb_addr_t));
	m2->addr[1]->family = 6;
	m2->addr[1]->target = 7;
	lb_pool_derive(p);
	lb_health_set(h, 0, false);
	lb_pool_select(p, 6, NULL, h, rng, &r);
	ok(!r.nodata && r.naddrs == 1 && r.degraded && r.ttl == 10,
	   "AAAA while an IPv4-only member is down: degraded-ttl (ttl %u)", r.ttl);
	lb_health_set(h, 0, true);
	lb_pool_select(p, 6, NULL, h, rng, &r);
	ok(!r.degraded && r.ttl == 30, "AAAA with every member up: ttl (ttl %u)", r.ttl);
	lb_health_set(h, 2, false);
	lb_pool_select(p, 6, NULL, h, rng, &r);
	ok(r.naddrs == 1 && r.degraded && r.ttl == 10,
	   "AAAA while a dual-stack member's IPv4 address is down: degraded-ttl");
	lb_pool_select(p, 4, NULL, h, rng, &r);
	ok(r.degraded && r.ttl == 10, "A likewise");
	lb_health_set(h, 2, true);
	lb_health_set(h, 7, false);
	lb_pool_select(p, 4, NULL, h, rng, &r);
	ok(r.degraded && r.ttl == 10, "A while its IPv6 address is down: degraded-ttl");
	lb_health_set(h, 7, true);
	lb_health_set(h, 1, false);
	lb_pool_select(p, 6, NULL, h, rng, &r);
	ok(!r.degraded && r.ttl == 30, "an admin-down member's health does not degrade the TTL");
	lb_health_set(h, 1, true);
	m2->naddr[1] = 0;
	lb_pool_derive(p);

	lb_member_view_t views[3];
	bool fb;
	lb_pool_explain(p, 4, NULL, h, views, &fb);
	ok(!fb && views[0].probability == 1.0 && views[1].probability == 0,
	   "explain: answers 3 of 2 eligible -> probability 1, admin down 0");
	pool_free(p);
}

static void test_explain(lb_health_t *h)
{
	lb_pool_t *p = pool_new(3, LB_POLICY_WEIGHTED);
	p->members[0].weight = 100;
	p->members[1].weight = 300;
	p->members[2].weight = 0;
	lb_member_view_t v[3];
	bool fb;
	lb_pool_explain(p, 4, NULL, h, v, &fb);
	ok(fabs(v[0].probability - 0.25) < 1e-9 && fabs(v[1].probability - 0.75) < 1e-9 &&
		   v[2].probability == 0 && v[2].secondary,
	   "explain: exact probabilities for one answer (%.3f %.3f %.3f)", v[0].probability,
	   v[1].probability, v[2].probability);
	p->answers = 2;
	p->members[2].weight = 100;
	lb_pool_explain(p, 4, NULL, h, v, &fb);
	double sum = v[0].probability + v[1].probability + v[2].probability;
	ok(fabs(sum - 2.0) < 0.01, "explain: probabilities of 2 answers sum to 2 (%.4f)", sum);
	double s[3];
	lb_result_t r;
	shares(p, h, s, &r);
	bool agree = true;
	for (int i = 0; i < 3; i++)
		agree = agree && fabs(s[i] - v[i].probability) < 0.01;
	ok(agree, "explain agrees with lb_pool_select() shares (%.3f/%.3f/%.3f vs %.3f/%.3f/%.3f)",
	   v[0].probability, v[1].probability, v[2].probability, s[0], s[1], s[2]);
	pool_free(p);
}

static void test_order(lb_health_t *h)
{
	/* One member with 4 addresses: every order shows up (random order: README, Balanced names). */
	lb_pool_t *p = pool_new(1, LB_POLICY_WEIGHTED);
	free(p->members[0].addr[0]);
	p->members[0].naddr[0] = 4;
	p->members[0].addr[0] = calloc(4, sizeof(lb_addr_t));
	for (int k = 0; k < 4; k++) {
		p->members[0].addr[0][k].family = 4;
		p->members[0].addr[0][k].addr[3] = (uint8_t)(k + 1);
		p->members[0].addr[0][k].target = LB_TARGET_NONE;
	}
	uint64_t rng[2] = { 9, 10 };
	lb_result_t r;
	unsigned first[4] = { 0 };
	for (int d = 0; d < 4000; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &r);
		first[r.addrs[0]->addr[3] - 1]++;
	}
	ok(r.naddrs == 4 && first[0] > 800 && first[1] > 800 && first[2] > 800 && first[3] > 800,
	   "all addresses of a member, in random order (%u %u %u %u first)", first[0], first[1],
	   first[2], first[3]);
	pool_free(p);
}

/* lb_net_parse(): as written, then lb_net_mask(). */
static const struct {
	const char *text;
	int ret;
	int family, len;
	const char *addr; /* after lb_net_mask() */
	bool host_bits;
} nets[] = {
	{ "10.0.0.0/8", 0, 4, 8, "10.0.0.0", false },
	{ "10.0.0.0/08", 0, 4, 8, "10.0.0.0", false },
	{ "10.1.2.3/8", 0, 4, 8, "10.0.0.0", true },
	{ "192.0.2.7", 0, 4, 32, "192.0.2.7", false },
	{ "0.0.0.0/0", 0, 4, 0, "0.0.0.0", false },
	{ "2001:db8::/32", 0, 6, 32, "2001:db8::", false },
	{ "2001:db8:0:1::/63", 0, 6, 63, "2001:db8::", true },
	{ "2001:db8::1", 0, 6, 128, "2001:db8::1", false },
	{ "::/0", 0, 6, 0, "::", false },
	{ "10.0.0.0/33", -ERANGE, 4, 0, NULL, false },
	{ "10.0.0.0/", -ERANGE, 4, 0, NULL, false },
	{ "10.0.0.0/+8", -ERANGE, 4, 0, NULL, false },
	{ "10.0.0.0/ 8", -ERANGE, 4, 0, NULL, false },
	{ "10.0.0.0/8/8", -ERANGE, 4, 0, NULL, false },
	{ "10.0.0.0/99999999999999999999999", -ERANGE, 4, 0, NULL, false },
	{ "2001:db8::/129", -ERANGE, 6, 0, NULL, false },
	{ "", GSLB_EPARSE, 0, 0, NULL, false },
	{ "/8", GSLB_EPARSE, 0, 0, NULL, false },
	{ "abc/8", GSLB_EPARSE, 0, 0, NULL, false },
	{ "1.2.3.4.5/8", GSLB_EPARSE, 0, 0, NULL, false },
	{ " 10.0.0.0/8", GSLB_EPARSE, 0, 0, NULL, false },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/8", GSLB_EPARSE, 0,
	  0, NULL, false },
};

static void test_net_parse(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(nets); i++) {
		lb_net_t n;
		char text[INET6_ADDRSTRLEN] = "";
		int ret = lb_net_parse(nets[i].text, &n);
		bool host_bits = ret == 0 && lb_net_mask(&n);
		if (ret == 0)
			inet_ntop(n.family == 6 ? AF_INET6 : AF_INET, n.addr, text, sizeof(text));
		ok(ret == nets[i].ret && (ret == GSLB_EPARSE || n.family == nets[i].family) &&
			   (ret || (n.len == nets[i].len && strcmp(text, nets[i].addr) == 0 &&
				    host_bits == nets[i].host_bits)),
		   "\"%s\": %d, IPv%d /%d %s%s", nets[i].text, ret, n.family, n.len, text,
		   host_bits ? " (host bits)" : "");
	}
}

/* Network rows another tool wrote: host bits cleared, no length the whole address, junk dropped. */
static void test_net_rows(void)
{
	char *rows[] = { "10.1.0.1/16", "192.0.2.7", "junk", "10.2.0.0/33", "2001:db8::/48" };
	char *addrs[] = { "192.0.2.1" };
	uint8_t fams[] = { 4 };
	db_member_t m = { .name = "a",
			  .weight = 1,
			  .priority = 1,
			  .naddresses = 1,
			  .addresses = addrs,
			  .families = fams,
			  .nnetworks = ARRAY_SIZE(rows),
			  .networks = rows };
	db_pool_t dp = { .name = "net.example.test.", .answers = 1, .nmembers = 1, .members = &m };
	db_config_t cfg = { .npools = 1, .pools = &dp };
	lb_pool_t *pools = NULL;
	uint32_t n = lb_config_pools(&cfg, NULL, &pools);
	const lb_member_t *lm = n ? &pools[0].members[0] : NULL;
	char a[3][INET6_ADDRSTRLEN] = { "", "", "" };
	for (uint16_t i = 0; lm && i < lm->nnets && i < 3; i++)
		inet_ntop(lm->nets[i].family == 6 ? AF_INET6 : AF_INET, lm->nets[i].addr, a[i],
			  sizeof(a[i]));
	ok(lm && lm->nnets == 3 && strcmp(a[0], "10.1.0.0") == 0 && lm->nets[0].len == 16 &&
		   strcmp(a[1], "192.0.2.7") == 0 && lm->nets[1].len == 32 &&
		   strcmp(a[2], "2001:db8::") == 0 && lm->nets[2].len == 48,
	   "network rows: %s/%u %s/%u %s/%u of %u", a[0], lm ? lm->nets[0].len : 0, a[1],
	   lm ? lm->nets[1].len : 0, a[2], lm ? lm->nets[2].len : 0, lm ? lm->nnets : 0);
	lb_pools_free(pools, n);
}

/* Count, over draws answers of p from the PRNG state {s0, s1}, how often each member is chosen. */
static void count_draws(const lb_pool_t *p, const lb_health_t *h, unsigned draws, uint64_t s0,
			uint64_t s1, unsigned *hits)
{
	uint64_t rng[2] = { s0, s1 };
	lb_result_t r;
	memset(hits, 0, p->nmembers * sizeof(*hits));
	for (unsigned d = 0; d < draws; d++) {
		lb_pool_select(p, 4, NULL, h, rng, &r);
		for (uint16_t k = 0; k < r.naddrs; k++)
			hits[member_of(r.addrs[k])]++;
	}
}

/* The member answered for one draw whose random number is exactly x (see below). */
static int draw_with(const lb_pool_t *p, const lb_health_t *h, uint64_t x)
{
	/*
	 * xoroshiro128+ returns s0 + s1 before it steps: the state {x, 0}
	 * makes the first number x, and a weighted draw of one answer from
	 * several members takes only that one (x modulo the total weight).
	 */
	uint64_t rng[2] = { x, 0 };
	lb_result_t r;
	lb_pool_select(p, 4, NULL, h, rng, &r);
	return r.naddrs == 1 ? member_of(r.addrs[0]) : -1;
}

/*
 * Small weights, where an off-by-one in the draw is not lost in the noise
 * (README "Policies": each member with probability proportional to its
 * weight).  The shares are checked with bounds of about 6 standard
 * deviations (a false failure about once in 10^9 runs), though the seed is
 * fixed so the result never changes between runs.
 */
static void test_small_weights(lb_health_t *h)
{
	lb_pool_t *p = pool_new(2, LB_POLICY_WEIGHTED);
	unsigned hits[2];
	enum { N = 100000 };

	/* Each draw's random number against the weights: r < w picks, r == w goes on. */
	p->members[0].weight = 1;
	p->members[1].weight = 1;
	ok(draw_with(p, h, 0) == 0 && draw_with(p, h, 1) == 1 && draw_with(p, h, 2) == 0 &&
		   draw_with(p, h, 3) == 1,
	   "weights 1:1: random 0 -> first, 1 -> second (r == w is not the first's)");
	p->members[1].weight = 2;
	ok(draw_with(p, h, 0) == 0 && draw_with(p, h, 1) == 1 && draw_with(p, h, 2) == 1 &&
		   draw_with(p, h, 3) == 0,
	   "weights 1:2: random 0 -> first, 1 and 2 -> second, 3 wraps to first");
	p->members[1].weight = 65535;
	ok(draw_with(p, h, 0) == 0 && draw_with(p, h, 1) == 1 && draw_with(p, h, 65535) == 1 &&
		   draw_with(p, h, 65536) == 0,
	   "weights 1:65535: only random 0 (mod 65536) picks the light member");

	/* Binomial(N, 1/2): sd 158, bound 6.3 sd. */
	p->members[1].weight = 1;
	count_draws(p, h, N, 0x1234567, 0x89abcdef, hits);
	ok(hits[0] + hits[1] == N && hits[0] >= N / 2 - 1000 && hits[0] <= N / 2 + 1000,
	   "weights 1:1: %u / %u over %d draws (each 50000 +- 1000)", hits[0], hits[1], N);
	/* Binomial(N, 1/3): sd 149, bound 6.7 sd. */
	p->members[1].weight = 2;
	count_draws(p, h, N, 0xfeed, 0xbeef, hits);
	ok(hits[0] + hits[1] == N && hits[0] >= 33333 - 1000 && hits[0] <= 33333 + 1000,
	   "weights 1:2: %u / %u over %d draws (first 33333 +- 1000)", hits[0], hits[1], N);
	/*
	 * 1:65535: the light member's count is Poisson with mean 2e6 / 65536 =
	 * 30.5; P(0) = 6e-14, P(> 70) < 1e-9.  It must appear, and not twice
	 * as often (r <= w would make it 2 in 65536).
	 */
	p->members[1].weight = 65535;
	count_draws(p, h, 2000000, 0xc0ffee, 0x5eed, hits);
	ok(hits[0] >= 1 && hits[0] <= 70 && hits[0] + hits[1] == 2000000,
	   "weights 1:65535: the light member answers %u times in 2,000,000 draws (mean 30.5)",
	   hits[0]);
	/* Weight 0 beside weight 1: never, while the weight-1 member is eligible. */
	p->members[0].weight = 0;
	p->members[1].weight = 1;
	count_draws(p, h, 10000, 1, 2, hits);
	ok(hits[0] == 0 && hits[1] == 10000, "weights 0:1: the weight-0 member never answers");
	/* Weights 0:0: both are secondary and drawn as equals. */
	p->members[1].weight = 0;
	count_draws(p, h, N, 3, 4, hits);
	ok(hits[0] >= N / 2 - 1000 && hits[0] <= N / 2 + 1000,
	   "weights 0:0: drawn as equals (%u / %u)", hits[0], hits[1]);

	/* explain: exact probabilities at the small and large edges. */
	lb_member_view_t v[2];
	bool fb;
	p->members[0].weight = 1;
	p->members[1].weight = 65535;
	lb_pool_explain(p, 4, NULL, h, v, &fb);
	ok(fabs(v[0].probability - 1.0 / 65536) < 1e-12 &&
		   fabs(v[1].probability - 65535.0 / 65536) < 1e-12,
	   "explain 1:65535: probabilities 1/65536 and 65535/65536 (%.9f %.9f)", v[0].probability,
	   v[1].probability);

	/* Two answers of three with weights 1:1:2 (pick without replacement): both edges. */
	pool_free(p);
	p = pool_new(3, LB_POLICY_WEIGHTED);
	p->members[0].weight = 1;
	p->members[1].weight = 1;
	p->members[2].weight = 2;
	p->answers = 2;
	unsigned h3[3];
	count_draws(p, h, N, 77, 88, h3);
	/* Exact inclusion probabilities: 7/12, 7/12, 5/6; sd at most 156, bound 6.4 sd. */
	ok(h3[0] + h3[1] + h3[2] == 2 * N && abs((int)h3[0] - 58333) <= 1000 &&
		   abs((int)h3[1] - 58333) <= 1000 && abs((int)h3[2] - 83333) <= 1000,
	   "answers 2 of weights 1:1:2: inclusion %u %u %u (7/12, 7/12, 5/6 of %d)", h3[0], h3[1],
	   h3[2], N);
	pool_free(p);
}

/* Failover at the edges of --priority (1-255): the worst priority present still answers. */
static void test_failover_edges(lb_health_t *h)
{
	lb_pool_t *p = pool_new(2, LB_POLICY_FAILOVER);
	unsigned hits[2];

	p->members[0].priority = 255;
	p->members[1].priority = 255;
	count_draws(p, h, 10000, 5, 6, hits);
	ok(hits[0] + hits[1] == 10000 && hits[0] > 4000 && hits[1] > 4000,
	   "failover, every member at priority 255: both answer (%u / %u)", hits[0], hits[1]);
	p->members[0].weight = 1;
	p->members[1].weight = 1;
	ok(draw_with(p, h, 0) == 0 && draw_with(p, h, 1) == 1,
	   "failover at priority 255 with weights 1:1: drawn as weighted");
	p->members[0].priority = 254;
	count_draws(p, h, 1000, 5, 6, hits);
	ok(hits[0] == 1000 && hits[1] == 0, "priorities 254 and 255: only 254");
	p->members[0].priority = 1;
	count_draws(p, h, 1000, 5, 6, hits);
	ok(hits[0] == 1000 && hits[1] == 0, "priorities 1 and 255: only 1");
	lb_health_set(h, 0, false);
	count_draws(p, h, 1000, 5, 6, hits);
	ok(hits[0] == 0 && hits[1] == 1000, "priority 1 down: the 255 member answers alone");
	lb_result_t r;
	uint64_t rng[2] = { 1, 2 };
	lb_pool_select(p, 4, NULL, h, rng, &r);
	ok(!r.fallback && r.degraded && r.ttl == 10, "and that is degraded, not the fallback");
	lb_health_set(h, 0, true);
	pool_free(p);
}

/* lb_pool_counts(): the metrics' members in service, eligible, and fallback (README "Metrics"). */
static void test_counts(lb_health_t *h)
{
	lb_pool_t *p = pool_new(4, LB_POLICY_WEIGHTED);
	lb_pool_counts_t c;

	for (uint32_t i = 0; i < 4; i++)
		lb_health_set(h, i, true);
	lb_pool_counts(p, 4, h, &c);
	ok(c.members == 4 && c.eligible == 4 && !c.fallback, "counts: 4 of 4, no fallback");
	lb_pool_counts(p, 6, h, &c);
	ok(c.members == 0 && c.eligible == 0 && !c.fallback, "counts: no IPv6 member, no fallback");
	lb_health_set(h, 0, false);
	p->members[1].admin = LB_ADMIN_DRAIN;
	p->members[2].admin = LB_ADMIN_DOWN;
	p->members[3].weight = 0;
	lb_pool_counts(p, 4, h, &c);
	ok(c.members == 2 && c.eligible == 1 && !c.fallback,
	   "counts: drain and down out of service, one down, weight 0 counted (%u of %u)",
	   c.eligible, c.members);
	lb_health_set(h, 3, false);
	lb_pool_counts(p, 4, h, &c);
	ok(c.eligible == 0 && !c.fallback, "counts: a healthy drained member answers: no fallback");
	lb_health_set(h, 1, false);
	lb_pool_counts(p, 4, h, &c);
	ok(c.members == 2 && c.eligible == 0 && c.fallback, "counts: nothing healthy: fallback");
	p->members[0].admin = LB_ADMIN_UP;
	lb_pool_counts(p, 4, h, &c);
	ok(c.eligible == 1 && !c.fallback, "counts: admin up is eligible whatever its health");
	p->members[0].admin = LB_ADMIN_AUTO;
	p->fallback_all = false;
	lb_pool_counts(p, 4, h, &c);
	ok(c.eligible == 0 && !c.fallback, "counts: fallback none is never in fallback");
	p->fallback_all = true;
	for (uint16_t i = 0; i < 4; i++)
		p->members[i].admin = LB_ADMIN_DOWN;
	lb_pool_counts(p, 4, h, &c);
	ok(c.members == 0 && !c.fallback, "counts: every member down: NODATA, no fallback");
	for (uint32_t i = 0; i < 4; i++)
		lb_health_set(h, i, true);
	pool_free(p);
}

int main(void)
{
	lb_health_t *h = lb_health_new(64);
	test_weighted(h);
	test_failover(h);
	test_admin(h);
	test_fallback(h);
	test_explain(h);
	test_order(h);
	test_net_parse();
	test_net_rows();
	test_small_weights(h);
	test_failover_edges(h);
	test_counts(h);
	lb_health_free(h);
	return done_testing();
}
