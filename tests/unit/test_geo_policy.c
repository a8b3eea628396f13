/* SPDX-License-Identifier: MIT */
/* Geo policy tests: client address to ranked members and ECS scope, over the test City database. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/dns.h"
#include "gslb/geo.h"
#include "gslb/lb.h"
#include "gslb/query.h"
#include "gslb/zone.h"
#include "../../src/lb/internal.h"
#include "alloc_count.h"
#include "tap.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DRAWS 300

/*
 * The members, with geoip/README.md's networks in mind.  Member i has
 * 10.100.0.(i+1) (health target 2i) and fd00::(i+1) (target 2i+1).
 */
struct mdef {
	const char *name;
	const char *countries, *continents;
	const char *nets[2];
	bool has_location;
	double lat, lon;
};

static const struct mdef members[] = {
	{ "fra", "DE", "EU", { NULL }, true, 50.11, 8.68 },
	{ "iad", "US-VA", "NA", { NULL }, true, 39.04, -77.49 },
	{ "sjc", "us", "na", { NULL }, true, 37.34, -121.89 },
	{ "sin", "SG", "AS", { NULL }, true, 1.35, 103.82 },
	{ "lon", NULL, "EU", { NULL }, true, 51.51, -0.13 },
	{ "net", NULL, NULL, { "192.0.2.128/25", "2001:db8:1:8000::/49" }, false, 0, 0 },
	{ "net2", NULL, NULL, { "192.0.2.0/24", "2001:db8:1::/48" }, false, 0, 0 },
	{ "syd", NULL, NULL, { NULL }, true, -33.87, 151.21 },
	{ "nolc", NULL, NULL, { NULL }, false, 0, 0 },
};

#define ALL "fra,iad,sjc,sin,lon,net,net2,syd,nolc"

struct row {
	const char *what;
	const char *client; /* IPv4 or IPv6 text */
	const char *down;   /* members whose addresses are all down, comma-separated */
	bool nogeo;	    /* no geo file */
	int answers;
	int rule;
	const char *expect; /* every member that may be chosen, comma-separated */
	int scope;
};

static const struct row rows[] = {
	{ "v4 longest member network", "192.0.2.200", NULL, false, 1, LB_GEO_NETWORK, "net", 25 },
	{ "v4 shorter network, scope excludes the /25", "192.0.2.10", NULL, false, 1,
	  LB_GEO_NETWORK, "net2", 25 },
	{ "v4 network member down: country", "192.0.2.10", "net2", false, 1, LB_GEO_COUNTRY, "fra",
	  25 },
	{ "v4 subdivision US-VA", "198.51.100.7", NULL, false, 1, LB_GEO_COUNTRY, "iad", 24 },
	{ "v4 subdivision down: country US", "198.51.100.7", "iad", false, 1, LB_GEO_COUNTRY, "sjc",
	  24 },
	{ "v4 US-CA not listed: country US", "10.1.2.3", NULL, false, 1, LB_GEO_COUNTRY, "sjc",
	  16 },
	{ "v4 JP: continent AS", "10.2.0.1", NULL, false, 1, LB_GEO_CONTINENT, "sin", 16 },
	{ "v4 BR: nearest", "10.3.0.1", NULL, false, 1, LB_GEO_DISTANCE, "iad", 16 },
	{ "v4 BR nearest down: next-nearest", "10.3.0.1", "iad", false, 1, LB_GEO_DISTANCE, "lon",
	  16 },
	{ "v4 AU: nearest", "10.4.0.1", NULL, false, 1, LB_GEO_DISTANCE, "syd", 16 },
	{ "v4 AU: two nearest", "10.4.0.1", NULL, false, 2, LB_GEO_DISTANCE, "syd,sin", 16 },
	{ "v4 AU nearest down", "10.4.0.1", "syd", false, 1, LB_GEO_DISTANCE, "sin", 16 },
	{ "v4 no country, registered FR: continent EU", "10.5.0.1", NULL, false, 1,
	  LB_GEO_CONTINENT, "fra,lon", 16 },
	{ "v4 NL without location: continent EU", "10.6.0.1", NULL, false, 1, LB_GEO_CONTINENT,
	  "fra,lon", 16 },
	{ "v4 NL, EU down, no location: the rest", "10.6.0.1", "fra,lon", false, 1, LB_GEO_REST,
	  "iad,sjc,sin,net,net2,syd,nolc", 16 },
	{ "v4 IN /25: continent AS", "10.8.0.1", NULL, false, 1, LB_GEO_CONTINENT, "sin", 25 },
	/* Johannesburg: Singapore 8,660 km, Frankfurt a little further. */
	{ "v4 ZA /25: distance", "10.8.0.200", NULL, false, 1, LB_GEO_DISTANCE, "sin", 25 },
	{ "v4 ZA /25 nearest down: next-nearest", "10.8.0.200", "sin", false, 1, LB_GEO_DISTANCE,
	  "fra", 25 },
	{ "v4 unknown: the rest", "8.8.8.8", NULL, false, 1, LB_GEO_REST, ALL, 7 },
	{ "v4 no geo file: the rest, scope excludes member networks", "198.51.100.7", NULL, true, 1,
	  LB_GEO_REST, ALL, 6 },
	{ "v4 no geo file, in a member network", "192.0.2.130", NULL, true, 1, LB_GEO_NETWORK,
	  "net", 25 },
	{ "v6 member network /48, scope excludes the /49", "2001:db8:1::1", NULL, false, 1,
	  LB_GEO_NETWORK, "net2", 49 },
	{ "v6 longest member network /49", "2001:db8:1:8000::5", NULL, false, 1, LB_GEO_NETWORK,
	  "net", 49 },
	{ "v6 subdivision US-VA", "2001:db8:2::1", NULL, false, 1, LB_GEO_COUNTRY, "iad", 48 },
	{ "v6 country SG", "2001:db8:3::1", NULL, false, 1, LB_GEO_COUNTRY, "sin", 48 },
	{ "v6 BR /56: nearest", "2001:db8:4::1", NULL, false, 1, LB_GEO_DISTANCE, "iad", 56 },
	{ "v6 registered FR: continent EU", "2001:db8:5::1", NULL, false, 1, LB_GEO_CONTINENT,
	  "fra,lon", 64 },
	{ "v6 unknown: the rest", "2001:db8:6::1", NULL, false, 1, LB_GEO_REST, ALL, 47 },
	/* The /49 of a member down still bounds the scope: the answer changes when it is back. */
	{ "v6 network members down: country DE", "2001:db8:1:8000::5", "net,net2", false, 1,
	  LB_GEO_COUNTRY, "fra", 49 },
	{ "v6 via IPv4-mapped: subdivision", "::ffff:198.51.100.7", NULL, false, 1, LB_GEO_COUNTRY,
	  "iad", 120 },
};

static int member_index(const lb_pool_t *p, const char *name, size_t len)
{
	for (uint16_t i = 0; i < p->nmembers; i++)
		if (strlen(p->members[i].name) == len && memcmp(p->members[i].name, name, len) == 0)
			return i;
	return -1;
}

/* Members named in a comma-separated list, as a bit set. */
static uint64_t member_set(const lb_pool_t *p, const char *list)
{
	uint64_t set = 0;
	while (list && *list) {
		size_t n = strcspn(list, ",");
		int i = member_index(p, list, n);
		if (i < 0)
			bail_out("no member '%.*s'", (int)n, list);
		set |= 1ull << i;
		list += n + (list[n] == ',');
	}
	return set;
}

/* The configuration the daemon would read, so lb_config_pools() is tested too. */
static lb_pool_t *pool_build(uint32_t *npools)
{
	static char addrbuf[ARRAY_SIZE(members)][2][32];
	static char *addrs[ARRAY_SIZE(members)][2];
	static uint8_t fams[2] = { 4, 6 };
	db_member_t dm[ARRAY_SIZE(members)];
	memset(dm, 0, sizeof(dm));
	for (size_t i = 0; i < ARRAY_SIZE(members); i++) {
		const struct mdef *d = &members[i];
		snprintf(addrbuf[i][0], sizeof(addrbuf[i][0]), "10.100.0.%zu", i + 1);
		snprintf(addrbuf[i][1], sizeof(addrbuf[i][1]), "fd00::%zx", i + 1);
		addrs[i][0] = addrbuf[i][0];
		addrs[i][1] = addrbuf[i][1];
		dm[i].name = (char *)d->name;
		dm[i].weight = 100;
		dm[i].priority = 1;
		dm[i].has_location = d->has_location;
		dm[i].latitude = d->lat;
		dm[i].longitude = d->lon;
		dm[i].countries = (char *)d->countries;
		dm[i].continents = (char *)d->continents;
		dm[i].naddresses = 2;
		dm[i].addresses = addrs[i];
		dm[i].families = fams;
		dm[i].nnetworks = d->nets[1] ? 2 : d->nets[0] ? 1 : 0;
		dm[i].networks = (char **)d->nets;
	}
	db_pool_t dp = { .name = "geo.example.test.",
			 .policy = DB_POLICY_GEO,
			 .ttl = 30,
			 .degraded_ttl = -1,
			 .answers = 1,
			 .fallback_all = true,
			 .nmembers = ARRAY_SIZE(members),
			 .members = dm };
	db_config_t cfg = { .npools = 1, .pools = &dp };
	lb_pool_t *pools = NULL;
	*npools = lb_config_pools(&cfg, NULL, &pools);
	for (uint16_t i = 0; *npools && i < pools[0].nmembers; i++) {
		pools[0].members[i].addr[0][0].target = 2u * i;
		pools[0].members[i].addr[1][0].target = 2u * i + 1;
	}
	return pools;
}

static void health_reset(lb_health_t *h, const lb_pool_t *p, const char *down)
{
	for (uint32_t t = 0; t < h->cap; t++)
		lb_health_set(h, t, true);
	uint64_t set = member_set(p, down);
	for (uint16_t i = 0; i < p->nmembers; i++)
		if (set & (1ull << i)) {
			lb_health_set(h, 2u * i, false);
			lb_health_set(h, 2u * i + 1, false);
		}
}

static int client_parse(const char *text, uint8_t *addr)
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, text, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, text, addr) == 1)
		return 6;
	bail_out("bad address %s", text);
}

static void check_row(lb_pool_t *p, const geo_db_t *db, lb_health_t *h, const struct row *r)
{
	lb_client_t cl;
	geo_info_t info;
	uint64_t rng[2] = { 1, 2 };

	cl.family = (uint8_t)client_parse(r->client, cl.addr);
	cl.geo = NULL;
	if (!r->nogeo && geo_db_lookup(db, cl.family, cl.addr, &info) == 0)
		cl.geo = &info;
	health_reset(h, p, r->down);
	p->answers = (uint8_t)r->answers;

	uint64_t want = member_set(p, r->expect), seen = 0;
	bool stable = true, sized = true;
	lb_result_t res;
	for (int d = 0; d < DRAWS; d++) {
		int fam = d % 2 ? 6 : 4; /* the answer's family does not change the ranking */
		lb_pool_select(p, fam, &cl, h, rng, &res);
		stable = stable && res.geo_rule == r->rule && res.scope == r->scope;
		sized = sized && res.nchosen == r->answers && res.naddrs == r->answers;
		for (uint16_t k = 0; k < res.nchosen; k++)
			seen |= 1ull << res.chosen[k];
	}
	lb_pool_select(p, 4, &cl, h, rng, &res);
	ok(stable, "%s (%s): rule %d scope %d (got rule %d scope %d)", r->what, r->client, r->rule,
	   r->scope, res.geo_rule, res.scope);
	if (!ok(seen == want, "%s: members %s", r->what, r->expect))
		diag("seen %#llx want %#llx", (unsigned long long)seen, (unsigned long long)want);
	ok(sized, "%s: %d member(s) per answer", r->what, r->answers);

	lb_geo_rank_t g;
	lb_geo_rank(p, 4, &cl, h, &g);
	uint64_t ranked = 0;
	for (uint16_t k = 0; k < g.n; k++)
		ranked |= 1ull << g.idx[k];
	ok(g.rule == r->rule && g.scope == r->scope &&
		   (r->rule == LB_GEO_DISTANCE ? (ranked & want) == want : ranked == want),
	   "%s: lb_geo_rank agrees", r->what);

	lb_member_view_t v[ARRAY_SIZE(members)];
	bool fb;
	uint64_t prob = 0;
	lb_pool_explain(p, 4, &cl, h, v, &fb);
	for (uint16_t i = 0; i < p->nmembers; i++)
		if (v[i].probability > 0)
			prob |= 1ull << i;
	ok(prob == want && !fb, "%s: explain gives a probability to these members only", r->what);
}

/* Non-geo pools and a geo pool without member networks or geo file: scope 0. */
static void test_scope_zero(lb_pool_t *p, const geo_db_t *db, lb_health_t *h)
{
	lb_client_t cl = { .geo = NULL };
	geo_info_t info;
	lb_result_t res;
	uint64_t rng[2] = { 3, 4 };

	health_reset(h, p, NULL);
	p->answers = 1;
	cl.family = (uint8_t)client_parse("198.51.100.7", cl.addr);
	geo_db_lookup(db, 4, cl.addr, &info);
	cl.geo = &info;
	p->policy = LB_POLICY_WEIGHTED;
	lb_pool_select(p, 4, &cl, h, rng, &res);
	ok(res.scope == 0 && res.geo_rule == LB_GEO_NONE, "weighted pool: scope 0");
	p->policy = LB_POLICY_FAILOVER;
	lb_pool_select(p, 4, &cl, h, rng, &res);
	ok(res.scope == 0 && res.geo_rule == LB_GEO_NONE, "failover pool: scope 0");
	p->policy = LB_POLICY_GEO;

	/* Hide the member networks (derived again): no geo file and no networks gives scope 0. */
	uint16_t n5 = p->members[5].nnets, n6 = p->members[6].nnets;
	p->members[5].nnets = p->members[6].nnets = 0;
	lb_pool_derive(p);
	cl.geo = NULL;
	lb_pool_select(p, 4, &cl, h, rng, &res);
	ok(res.scope == 0 && res.geo_rule == LB_GEO_REST,
	   "geo pool, no geo file, no networks: scope 0");
	lb_pool_select(p, 4, NULL, h, rng, &res);
	ok(res.scope == 0 && res.geo_rule == LB_GEO_REST && res.nchosen == 1,
	   "geo pool, no client: the rest, scope 0");
	p->members[5].nnets = n5;
	p->members[6].nnets = n6;
	lb_pool_derive(p);
}

/* Everything down: fallback all ranks every member not admin-down, nodata with fallback none. */
static void test_fallback(lb_pool_t *p, const geo_db_t *db, lb_health_t *h)
{
	lb_client_t cl;
	geo_info_t info;
	lb_result_t res;
	uint64_t rng[2] = { 5, 6 };

	cl.family = (uint8_t)client_parse("198.51.100.7", cl.addr);
	geo_db_lookup(db, 4, cl.addr, &info);
	cl.geo = &info;
	health_reset(h, p, ALL);
	lb_pool_select(p, 4, &cl, h, rng, &res);
	ok(res.fallback && res.degraded && res.geo_rule == LB_GEO_COUNTRY && res.nchosen == 1 &&
		   res.chosen[0] == member_index(p, "iad", 3),
	   "all down, fallback all: still ranked (iad)");
	p->fallback_all = false;
	lb_pool_select(p, 4, &cl, h, rng, &res);
	ok(res.nodata && res.nchosen == 0 && res.scope == 0, "all down, fallback none: NODATA");
	p->fallback_all = true;
	health_reset(h, p, NULL);
}

/* Member networks, countries and continents take part in lb_pools_equal(). */
static void test_equal(void)
{
	uint32_t na, nb;
	lb_pool_t *a = pool_build(&na), *b = pool_build(&nb);
	ok(na == 1 && lb_pools_equal(a, na, b, nb), "same configuration: equal");
	ok(a[0].members[5].nnets == 2 && a[0].members[5].nets[0].len == 25 &&
		   a[0].members[5].nets[1].family == 6 && a[0].members[5].nets[1].len == 49,
	   "networks parsed");
	ok(a[0].members[2].ncountries == 1 && strcmp(a[0].members[2].countries[0], "US") == 0 &&
		   a[0].members[2].continents == 1u << lb_continent_bit("NA"),
	   "countries and continents upper-cased");
	b[0].members[5].nets[0].len = 26;
	ok(!lb_pools_equal(a, na, b, nb), "a network differs: not equal");
	b[0].members[5].nets[0].len = 25;
	b[0].members[0].continents = 0;
	ok(!lb_pools_equal(a, na, b, nb), "a continent differs: not equal");
	b[0].members[0].continents = a[0].members[0].continents;
	b[0].members[1].countries[0][3] = 'X';
	ok(!lb_pools_equal(a, na, b, nb), "a country differs: not equal");
	lb_pools_free(a, na);
	lb_pools_free(b, nb);
}

/*
 * Country and continent codes written by another tool: the loader keeps the
 * valid ones and ignores (with a warning) those no geo file returns.
 */
static void test_bad_places(void)
{
	static char *addrs[] = { "10.100.0.1" };
	static uint8_t fams[] = { 4 };
	db_member_t dm = { .name = "m",
			   .weight = 100,
			   .priority = 1,
			   .countries = "XX,de, EU ,US-CA,QQ-CA,UK,XK,DEUTSCHLAND-LONG,US-",
			   .continents = "EU,XX",
			   .naddresses = 1,
			   .addresses = addrs,
			   .families = fams };
	db_pool_t dp = { .name = "bad.example.test.",
			 .policy = DB_POLICY_GEO,
			 .ttl = 30,
			 .degraded_ttl = -1,
			 .answers = 1,
			 .fallback_all = true,
			 .nmembers = 1,
			 .members = &dm };
	db_config_t cfg = { .npools = 1, .pools = &dp };
	lb_pool_t *pools = NULL;
	uint32_t n = lb_config_pools(&cfg, NULL, &pools);
	const lb_member_t *m = n == 1 ? &pools[0].members[0] : NULL;
	ok(m && m->ncountries == 3 && strcmp(m->countries[0], "DE") == 0 &&
		   strcmp(m->countries[1], "US-CA") == 0 && strcmp(m->countries[2], "XK") == 0,
	   "loader: unknown country codes ignored (XX EU QQ-CA UK ...), DE US-CA XK kept");
	ok(m && m->continents == 1u << lb_continent_bit("EU"), "loader: unknown continent ignored");
	lb_pools_free(pools, n);
}

/* ---- the answer path: client from ECS or the peer, scope in the response ---- */

static void zone_rr(zone_t *z, const char *owner, uint16_t type, const void *rd, size_t n)
{
	uint8_t o[DNS_NAME_MAX];
	if (dns_name_from_str(o, owner) < 0 ||
	    zone_add_rr(z, o, type, DNS_C_IN, 300, rd, (uint16_t)n) < 0)
		bail_out("zone_add_rr %s", owner);
}

static query_data_t *snapshot_build(const geo_db_t *db, const lb_health_t *h)
{
	uint8_t apex[DNS_NAME_MAX], rd[2 * DNS_NAME_MAX + 20];
	char err[256] = "";
	zone_set_t *set = zone_set_new();
	dns_name_from_str(apex, "example.test.");
	zone_t *z = zone_new(apex);
	int n = dns_name_from_str(rd, "ns1.example.test.");
	int m = dns_name_from_str(rd + n, "hostmaster.example.test.");
	memset(rd + n + m, 0, 20);
	dns_put32(rd + n + m + 16, 300);
	zone_rr(z, "example.test.", DNS_T_SOA, rd, (size_t)(n + m + 20));
	n = dns_name_from_str(rd, "ns1.example.test.");
	zone_rr(z, "example.test.", DNS_T_NS, rd, (size_t)n);
	zone_rr(z, "ns1.example.test.", DNS_T_A, "\xc6\x33\x64\x35", 4);
	if (zone_finish(z, err, sizeof(err)) < 0 || zone_set_add(set, z) < 0)
		bail_out("zone: %s", err);
	zone_unref(z);
	zone_set_finish(set);

	uint32_t np;
	lb_pool_t *pools = pool_build(&np);
	query_data_t *s = gslb_calloc(1, sizeof(*s));
	s->zones = set;
	s->pools = lb_set_new(pools, np, set);
	s->health = h;
	s->geo = db;
	s->generation = 1;
	return s;
}

/* Free what snapshot_build() made (the answer path owns none of it). */
static void snapshot_free(query_data_t *s)
{
	zone_set_free(s->zones);
	lb_set_free(s->pools);
	free(s);
}

/* A query for geo.example.test (A, or AAAA); ECS when source >= 0. */
static size_t query_make(uint8_t *b, uint16_t qtype, int family, int source, const char *addr)
{
	memset(b, 0, 512);
	dns_put16(b, 0x1234);
	dns_put16(b + 4, 1);
	size_t pos = 12 + (size_t)dns_name_from_str(b + 12, "geo.example.test.");
	dns_put16(b + pos, qtype);
	dns_put16(b + pos + 2, DNS_C_IN);
	pos += 4;
	if (source < 0)
		return pos;
	dns_put16(b + 10, 1);
	uint8_t a[16] = { 0 };
	inet_pton(family == 1 ? AF_INET : AF_INET6, addr, a);
	size_t alen = ((size_t)source + 7) / 8;
	if (source % 8)
		a[alen - 1] &= (uint8_t)(0xff << (8 - source % 8));
	b[pos] = 0;
	dns_put16(b + pos + 1, DNS_T_OPT);
	dns_put16(b + pos + 3, 1232);
	dns_put16(b + pos + 9, (uint16_t)(8 + alen));
	pos += 11;
	dns_put16(b + pos, DNS_EDNS_ECS);
	dns_put16(b + pos + 2, (uint16_t)(4 + alen));
	dns_put16(b + pos + 4, (uint16_t)family);
	b[pos + 6] = (uint8_t)source;
	memcpy(b + pos + 8, a, alen);
	return pos + 8 + alen;
}

struct qrow {
	const char *what;
	uint16_t qtype;
	int ecs_family; /* 1 or 2 */
	int source;	/* -1: no ECS */
	const char *ecs_addr;
	const char *peer;
	const char *answer; /* the only address expected */
	int scope;	    /* -1: no ECS in the response */
};

static const struct qrow qrows[] = {
	{ "ECS /24 US-VA", DNS_T_A, 1, 24, "198.51.100.0", "127.0.0.1", "10.100.0.2", 24 },
	{ "ECS /16 JP beats the peer", DNS_T_AAAA, 1, 16, "10.2.0.0", "198.51.100.7", "fd00::4",
	  16 },
	{ "ECS /25 member network", DNS_T_A, 1, 25, "192.0.2.128", "127.0.0.1", "10.100.0.6", 25 },
	{ "ECS IPv6 /56 BR: nearest", DNS_T_A, 2, 56, "2001:db8:4::", "::1", "10.100.0.2", 56 },
	{ "ECS IPv6 /49 member network", DNS_T_A, 2, 49, "2001:db8:1:8000::", "::1", "10.100.0.6",
	  49 },
	{ "ECS /0: the peer decides, scope 0", DNS_T_A, 1, 0, "0.0.0.0", "203.0.113.9",
	  "10.100.0.4", 0 },
	{ "no ECS: the IPv4 peer", DNS_T_A, 1, -1, NULL, "198.51.100.7", "10.100.0.2", -1 },
	{ "no ECS: IPv4-mapped peer", DNS_T_A, 1, -1, NULL, "::ffff:10.2.0.1", "10.100.0.4", -1 },
	{ "no ECS: IPv6 peer", DNS_T_A, 1, -1, NULL, "2001:db8:3::1", "10.100.0.4", -1 },
};

static void answer_rows(query_ctx_t *ctx, const query_data_t *snap, const char *pass)
{
	static uint8_t req[512], resp[DNS_MSG_MAX];
	for (size_t i = 0; i < ARRAY_SIZE(qrows); i++) {
		const struct qrow *r = &qrows[i];
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, r->peer, &sin->sin_addr) == 1)
			sin->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, r->peer, &sin6->sin6_addr) == 1)
			sin6->sin6_family = AF_INET6;
		size_t qlen = query_make(req, r->qtype, r->ecs_family, r->source, r->ecs_addr);
		size_t qend = r->source < 0 ? qlen : qlen - 11 - 8 - ((size_t)r->source + 7) / 8;
		alloc_counting = true;
		size_t n = query_answer(ctx, snap, req, qlen, resp, QUERY_UDP,
					(const struct sockaddr *)&ss);
		alloc_counting = false;
		uint8_t want[16];
		int wfam = inet_pton(AF_INET, r->answer, want) == 1 ? 4 : 6;
		if (wfam == 6)
			inet_pton(AF_INET6, r->answer, want);
		size_t rdlen = wfam == 4 ? 4 : 16;
		bool got = n >= qend + 12 + rdlen && dns_get16(resp + 6) == 1 &&
			   (resp[3] & 0xf) == 0 && dns_get16(resp + qend + 10) == rdlen &&
			   memcmp(resp + qend + 12, want, rdlen) == 0;
		if (!ok(got, "%s, %s: answer %s", pass, r->what, r->answer))
			diag("n %zu qend %zu an %u rcode %u first %u.%u.%u.%u", n, qend,
			     dns_get16(resp + 6), resp[3] & 0xfu, resp[qend + 12], resp[qend + 13],
			     resp[qend + 14], resp[qend + 15]);
		if (r->scope >= 0) {
			size_t alen = ((size_t)r->source + 7) / 8;
			ok(n > alen + 8 && dns_get16(resp + n - alen - 8) == DNS_EDNS_ECS &&
				   resp[n - alen - 2] == r->source &&
				   resp[n - alen - 1] == r->scope,
			   "%s, %s: ECS scope %d (got %d)", pass, r->what, r->scope,
			   n > alen ? resp[n - alen - 1] : -1);
		}
	}
}

static void test_answer_path(const geo_db_t *db, lb_health_t *h)
{
	static query_ctx_t ctx;
	query_data_t *snap = snapshot_build(db, h);
	size_t nrows = ARRAY_SIZE(qrows);

	query_ctx_init(&ctx, NULL, 7);
	ok(ctx.geo_cache != NULL, "the worker context has a geo cache");
	health_reset(h, snap->pools->pools[0], NULL);
	answer_rows(&ctx, snap, "cold cache");
	const query_stats_t *st = &ctx.stats;
	/*
	 * Two clients fall in networks looked up before: the IPv4 peer
	 * 198.51.100.7 (row 1's /24) and the mapped peer 10.2.0.1 (row 2's /16).
	 */
	ok(st->geo_cache_misses == nrows - 2 && st->geo_cache_hits == 2,
	   "cold cache: %zu lookups, 2 hits (got %lu misses, %lu hits)", nrows - 2,
	   (unsigned long)st->geo_cache_misses, (unsigned long)st->geo_cache_hits);

	answer_rows(&ctx, snap, "warm cache");
	ok(st->geo_cache_misses == nrows - 2 && st->geo_cache_hits == nrows + 2,
	   "warm cache: every client found in the cache (got %lu misses, %lu hits)",
	   (unsigned long)st->geo_cache_misses, (unsigned long)st->geo_cache_hits);

	/* A new snapshot (a reload, another geo file) empties the cache. */
	snap->generation++;
	answer_rows(&ctx, snap, "after a snapshot swap");
	ok(st->geo_cache_misses == 2 * (nrows - 2) && st->geo_cache_hits == nrows + 4,
	   "a snapshot swap resets the cache (got %lu misses, %lu hits)",
	   (unsigned long)st->geo_cache_misses, (unsigned long)st->geo_cache_hits);

	/* Without a cache the answers are the same. */
	query_ctx_fini(&ctx);
	ok(ctx.geo_cache == NULL, "query_ctx_fini releases the cache");
	answer_rows(&ctx, snap, "no cache");
	if (COUNT_ALLOCS)
		ok(alloc_count == 0, "geo answers allocate nothing (%lu allocations)",
		   (unsigned long)alloc_count);
	snapshot_free(snap);
}

/*
 * The cache keeps database networks: 10.2.0.0/16 (JP) looked up from
 * 10.2.0.1 serves every client in it, while the two /25 halves of
 * 10.8.0.0/24 (IN, ZA) share a slot and must never answer for each other.
 */
static void test_cache_networks(const geo_db_t *db, lb_health_t *h)
{
	static query_ctx_t ctx;
	static uint8_t req[512], resp[DNS_MSG_MAX];
	query_data_t *snap = snapshot_build(db, h);
	static const struct {
		const char *client;
		const char *answer;
		unsigned hits;
	} crows[] = {
		{ "10.2.0.1", "fd00::4", 0 },	/* JP /16, looked up */
		{ "10.2.255.1", "fd00::4", 1 }, /* JP, found under the /16 */
		{ "10.2.0.77", "fd00::4", 2 },	/* JP, found */
		{ "10.3.0.1", "fd00::2", 2 },	/* BR: nearest is US-VA, looked up */
		{ "10.3.0.200", "fd00::2", 3 },
		{ "10.8.0.1", "fd00::4", 3 },	/* IN /25, looked up */
		{ "10.8.0.200", "fd00::4", 3 }, /* ZA /25: same slot, looked up */
		{ "10.8.0.2", "fd00::4", 3 },	/* IN again: the slot holds ZA now */
		{ "10.8.0.3", "fd00::4", 4 },
	};

	query_ctx_init(&ctx, NULL, 9);
	health_reset(h, snap->pools->pools[0], NULL);
	for (size_t i = 0; i < ARRAY_SIZE(crows); i++) {
		size_t qlen = query_make(req, DNS_T_AAAA, 1, 32, crows[i].client);
		size_t qend = qlen - 11 - 8 - 4;
		size_t n = query_answer(&ctx, snap, req, qlen, resp, QUERY_UDP, NULL);
		uint8_t want[16];
		inet_pton(AF_INET6, crows[i].answer, want);
		ok(n >= qend + 28 && dns_get16(resp + 6) == 1 &&
			   memcmp(resp + qend + 12, want, 16) == 0,
		   "cached locations: %s gets %s", crows[i].client, crows[i].answer);
		ok(ctx.stats.geo_cache_hits == crows[i].hits,
		   "cached locations: %u hits after %s (got %lu)", crows[i].hits, crows[i].client,
		   (unsigned long)ctx.stats.geo_cache_hits);
	}
	/*
	 * IPv6: a /64 network is cached; a longer one (here the IPv4-mapped
	 * ::ffff:10.2.0.0/112) is looked up every time, and still answered.
	 */
	static const struct {
		const char *client;
		const char *answer, * or ; /* FR: continent EU, fra or lon */
		unsigned hits, misses;
	} v6rows[] = {
		{ "2001:db8:5::1", "fd00::1", "fd00::5", 0, 1 },	/* FR /64, looked up */
		{ "2001:db8:5:0:8000::1", "fd00::1", "fd00::5", 1, 1 }, /* same /64: found */
		{ "::ffff:10.2.0.1", "fd00::4", "fd00::4", 1, 2 },	/* JP /112: looked up */
		{ "::ffff:10.2.0.2", "fd00::4", "fd00::4", 1, 3 }, /* ... and looked up again */
	};
	uint64_t hits0 = ctx.stats.geo_cache_hits, misses0 = ctx.stats.geo_cache_misses;
	for (size_t i = 0; i < ARRAY_SIZE(v6rows); i++) {
		size_t qlen = query_make(req, DNS_T_AAAA, 2, 128, v6rows[i].client);
		size_t qend = qlen - 11 - 8 - 16;
		size_t n = query_answer(&ctx, snap, req, qlen, resp, QUERY_UDP, NULL);
		uint8_t want[16], or [16];
		inet_pton(AF_INET6, v6rows[i].answer, want);
		inet_pton(AF_INET6, v6rows[i].or, or);
		ok(n >= qend + 28 && dns_get16(resp + 6) == 1 &&
			   (memcmp(resp + qend + 12, want, 16) == 0 ||
			    memcmp(resp + qend + 12, or, 16) == 0),
		   "cached locations: %s/128 gets %s or %s", v6rows[i].client, v6rows[i].answer,
		   v6rows[i].or);
		uint64_t hits = ctx.stats.geo_cache_hits - hits0;
		uint64_t misses = ctx.stats.geo_cache_misses - misses0;
		ok(hits == v6rows[i].hits && misses == v6rows[i].misses,
		   "cached locations: %u hits, %u misses after %s (got %lu, %lu)", v6rows[i].hits,
		   v6rows[i].misses, v6rows[i].client, (unsigned long)hits, (unsigned long)misses);
	}
	query_ctx_fini(&ctx);
	snapshot_free(snap);
}

int main(void)
{
	const char *srcdir = getenv("GSLB_SRCDIR") ? getenv("GSLB_SRCDIR") : ".";
	char path[4096];
	geo_db_t *db = NULL;

	gslb_log_set_ident("test_geo_policy");
	snprintf(path, sizeof(path), "%s/geoip/gslb-test-city.mmdb", srcdir);
	if (geo_db_open(path, &db) < 0)
		bail_out("cannot open %s (is GSLB_SRCDIR set?)", path);
	uint32_t np;
	lb_pool_t *pools = pool_build(&np);
	if (np != 1)
		bail_out("lb_config_pools made %u pools", np);
	lb_health_t *h = lb_health_new(2 * ARRAY_SIZE(members));

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		check_row(&pools[0], db, h, &rows[i]);
	test_scope_zero(&pools[0], db, h);
	test_fallback(&pools[0], db, h);
	test_equal();
	test_bad_places();
	test_answer_path(db, h);
	test_cache_networks(db, h);

	lb_health_free(h);
	lb_pools_free(pools, np);
	geo_db_close(db);
	return done_testing();
}
