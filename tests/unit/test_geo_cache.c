/* SPDX-License-Identifier: MIT */
/* TAP test of the per-worker geo cache: networks stored, addresses looked up, no database. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "gslb/core.h"
#include "gslb/geo_cache.h"
#include "tap.h"

/* An address as lb_client_t holds it: family 4 or 6, IPv4 in the first 4 bytes of 16. */
struct addr {
	int family;
	uint8_t b[16];
};

static struct addr addr_parse(const char *text)
{
	struct addr a = { 0 };
	if (inet_pton(AF_INET, text, a.b) == 1)
		a.family = 4;
	else if (inet_pton(AF_INET6, text, a.b) == 1)
		a.family = 6;
	else
		bail_out("bad address in the table: %s", text);
	return a;
}

/* A network the database would have answered with: a host in it, its length, its country. */
struct net {
	const char *addr;
	unsigned len;
	const char *cc; /* NULL: the database has no record there (found false) */
};

/* What geo_db_lookup() would have filled for n. */
static geo_info_t info_of(const struct net *n)
{
	geo_info_t g;
	memset(&g, 0, sizeof(g));
	g.prefix_len = (uint8_t)n->len;
	if (!n->cc)
		return g;
	g.found = true;
	snprintf(g.country, sizeof(g.country), "%s", n->cc);
	snprintf(g.subdivision, sizeof(g.subdivision), "%s-1", n->cc);
	snprintf(g.continent, sizeof(g.continent), "EU");
	g.has_location = true;
	g.lat = 48.0;
	g.lon = n->len;
	geo_unit_vector(g.lat, g.lon, g.uvec);
	return g;
}

static void store(geo_cache_t *c, const struct net *n)
{
	struct addr a = addr_parse(n->addr);
	geo_info_t g = info_of(n);
	geo_cache_store(c, a.family, a.b, &g);
}

/*
 * Each row: the networks stored, in order, into an emptied cache, then one
 * address looked up: a hit on the network want (its country and length),
 * "-" a hit on a network without a record, NULL a miss.
 */
struct row {
	const char *what;
	struct net stored[2];
	const char *addr;
	const char *want;
	unsigned want_len;
};

static const struct row rows[] = {
	/* IPv4: a network is filed under the coarsest of /24, /16, /8 it covers whole. */
	{ "/24: a host in it", { { "198.51.100.77", 24, "AA" } }, "198.51.100.1", "AA", 24 },
	{ "/24: the next /24", { { "198.51.100.77", 24, "AA" } }, "198.51.101.1", NULL, 0 },
	{ "/25: a host in it", { { "198.51.100.1", 25, "AA" } }, "198.51.100.100", "AA", 25 },
	{ "/25: the other half of its /24",
	  { { "198.51.100.1", 25, "AA" } },
	  "198.51.100.200",
	  NULL,
	  0 },
	{ "/32: the host itself", { { "192.0.2.1", 32, "AB" } }, "192.0.2.1", "AB", 32 },
	{ "/32: another host of its /24", { { "192.0.2.1", 32, "AB" } }, "192.0.2.2", NULL, 0 },
	{ "/20 under its /24: a host of that /24",
	  { { "10.16.3.9", 20, "BB" } },
	  "10.16.3.200",
	  "BB",
	  20 },
	{ "/20 under its /24: another /24 of the /20 (looked up, then filed too)",
	  { { "10.16.3.9", 20, "BB" } },
	  "10.16.4.1",
	  NULL,
	  0 },
	{ "/16 under its /16: any host in it",
	  { { "172.16.5.5", 16, "CC" } },
	  "172.16.200.1",
	  "CC",
	  16 },
	{ "/16: the next /16", { { "172.16.5.5", 16, "CC" } }, "172.17.0.1", NULL, 0 },
	{ "/12 under its /16: a host of that /16",
	  { { "172.16.0.1", 12, "CD" } },
	  "172.16.9.9",
	  "CD",
	  12 },
	{ "/12 under its /16: another /16 of the /12",
	  { { "172.16.0.1", 12, "CD" } },
	  "172.20.0.1",
	  NULL,
	  0 },
	{ "/8 under its /8: any host in it", { { "10.1.2.3", 8, "DD" } }, "10.200.1.1", "DD", 8 },
	{ "/8: the next /8", { { "10.1.2.3", 8, "DD" } }, "11.0.0.1", NULL, 0 },
	{ "/5 under its /8: a host of that /8", { { "8.1.1.1", 5, "DE" } }, "8.200.0.1", "DE", 5 },
	{ "/5 under its /8: another /8 of the /5", { { "8.1.1.1", 5, "DE" } }, "9.1.1.1", NULL, 0 },
	{ "/0: a host of the /8 it was filed under",
	  { { "203.0.113.1", 0, "EE" } },
	  "203.9.9.9",
	  "EE",
	  0 },
	{ "an empty network (no record) is kept too",
	  { { "100.64.1.1", 10, NULL } },
	  "100.64.1.2",
	  "-",
	  10 },
	{ "levels from the finest: the /24 inside a /16",
	  { { "10.2.0.1", 16, "PP" }, { "10.2.3.1", 24, "QQ" } },
	  "10.2.3.99",
	  "QQ",
	  24 },
	{ "levels from the finest: the /16 outside that /24",
	  { { "10.2.0.1", 16, "PP" }, { "10.2.3.1", 24, "QQ" } },
	  "10.2.4.1",
	  "PP",
	  16 },
	/* IPv6: under the coarsest of /48, /32, /16; networks longer than /64 are not kept. */
	{ "/48 under its /48: any host in it",
	  { { "2001:db8:1::1", 48, "FA" } },
	  "2001:db8:1:ffff::1",
	  "FA",
	  48 },
	{ "/48: the next /48", { { "2001:db8:1::1", 48, "FA" } }, "2001:db8:2::1", NULL, 0 },
	{ "/56 (an ECS prefix) under its /48: a host in it",
	  { { "2001:db8:1:100::1", 56, "FB" } },
	  "2001:db8:1:1ff::1",
	  "FB",
	  56 },
	{ "/56: another /56 of its /48",
	  { { "2001:db8:1:100::1", 56, "FB" } },
	  "2001:db8:1:200::1",
	  NULL,
	  0 },
	{ "/64 is kept: a host in it",
	  { { "2001:db8:5:6::1", 64, "FC" } },
	  "2001:db8:5:6::ffff",
	  "FC",
	  64 },
	{ "/64: the next /64", { { "2001:db8:5:6::1", 64, "FC" } }, "2001:db8:5:7::1", NULL, 0 },
	{ "/65 is not kept: looked up every time",
	  { { "2001:db8:5:6::1", 65, "FD" } },
	  "2001:db8:5:6::1",
	  NULL,
	  0 },
	{ "/40 under its /48: a host of that /48",
	  { { "2001:db8:100::1", 40, "FE" } },
	  "2001:db8:100:5::1",
	  "FE",
	  40 },
	{ "/40 under its /48: another /48 of the /40",
	  { { "2001:db8:100::1", 40, "FE" } },
	  "2001:db8:1ff::1",
	  NULL,
	  0 },
	{ "/32 under its /32: any host in it",
	  { { "2001:db8::1", 32, "FF" } },
	  "2001:db8:ffff::1",
	  "FF",
	  32 },
	{ "/32: the next /32", { { "2001:db8::1", 32, "FF" } }, "2001:db9::1", NULL, 0 },
	{ "/20 under its /32: another /32 of the /20",
	  { { "2001:db8::1", 20, "FG" } },
	  "2001:db9::1",
	  NULL,
	  0 },
	{ "/16 under its /16: any host in it",
	  { { "2001:db8::1", 16, "FH" } },
	  "2001:ffff::1",
	  "FH",
	  16 },
	{ "/16: the next /16", { { "2001:db8::1", 16, "FH" } }, "2002::1", NULL, 0 },
	/* 96 bits more than the IPv4 network (geo.h): longer than /64, never kept. */
	{ "IPv4-mapped: looked up every time",
	  { { "::ffff:192.0.2.1", 120, "GA" } },
	  "::ffff:192.0.2.1",
	  NULL,
	  0 },
	{ "an IPv4 network does not answer IPv6 with the same first bytes",
	  { { "32.1.13.184", 24, "HA" } },
	  "2001:db8::1",
	  NULL,
	  0 },
};

static bool hit_is(const geo_info_t *got, const struct row *r)
{
	if (!got || !r->want)
		return !got && !r->want;
	if (got->prefix_len != r->want_len)
		return false;
	if (strcmp(r->want, "-") == 0)
		return !got->found && !got->has_location && got->country[0] == '\0';
	return got->found && strcmp(got->country, r->want) == 0;
}

static void test_rows(geo_cache_t *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const struct row *r = &rows[i];
		geo_cache_clear(c);
		for (size_t k = 0; k < ARRAY_SIZE(r->stored) && r->stored[k].addr; k++)
			store(c, &r->stored[k]);
		struct addr a = addr_parse(r->addr);
		geo_info_t out;
		memset(&out, 0xa5, sizeof(out));
		const geo_info_t *got = geo_cache_lookup(c, a.family, a.b, &out);
		if (!ok(hit_is(got, r), "%s: %s %s", r->what, r->addr, r->want ? "hits" : "misses"))
			diag("  got %s (%s/%u)", got ? "a hit" : "a miss", got ? got->country : "",
			     got ? got->prefix_len : 0);
	}
}

/* A hit says what the database said, except lat / lon (the unit vector is kept instead). */
static void test_fields(geo_cache_t *c)
{
	const struct net n = { "198.51.100.9", 24, "NL" };
	geo_info_t want = info_of(&n), out;
	geo_cache_clear(c);
	store(c, &n);
	struct addr a = addr_parse("198.51.100.200");
	memset(&out, 0xa5, sizeof(out));
	const geo_info_t *got = geo_cache_lookup(c, a.family, a.b, &out);
	ok(got == &out, "a hit fills and returns the caller's geo_info_t");
	if (!got)
		return;
	ok(got->found && got->has_location && strcmp(got->country, "NL") == 0 &&
		   strcmp(got->subdivision, "NL-1") == 0 && strcmp(got->continent, "EU") == 0,
	   "a hit has the country, subdivision and continent stored");
	ok(memcmp(got->uvec, want.uvec, sizeof(want.uvec)) == 0,
	   "a hit has the unit vector stored");
	ok(got->lat == 0.0 && got->lon == 0.0, "lat and lon are 0 on a hit");
}

/* Emptied by geo_cache_clear(), and by geo_cache_use() when the snapshot or database changes. */
static void test_clear(geo_cache_t *c)
{
	const struct net n = { "198.51.100.9", 24, "NL" };
	struct addr a = addr_parse("198.51.100.9");
	geo_info_t out;
	/* Any two distinct pointers stand for two open databases: the cache never reads them. */
	static const char db1_, db2_;
	const geo_db_t *db1 = (const geo_db_t *)&db1_, *db2 = (const geo_db_t *)&db2_;

	geo_cache_clear(c);
	store(c, &n);
	geo_cache_clear(c);
	ok(!geo_cache_lookup(c, a.family, a.b, &out), "geo_cache_clear() forgets every entry");

	struct step {
		const char *what;
		const geo_db_t *db;
		uint64_t generation;
		bool kept;
	} steps[] = {
		{ "the same database and snapshot: kept", db1, 1, true },
		{ "a new snapshot with the same database (a zone reload): emptied", db1, 2, false },
		{ "a new geo file mapped where the closed one was (a new snapshot): emptied", db1,
		  3, false },
		{ "a new geo file in the same snapshot generation: emptied", db2, 3, false },
		{ "the same again: kept", db2, 3, true },
	};
	geo_cache_use(c, db1, 1);
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		store(c, &n);
		geo_cache_use(c, steps[i].db, steps[i].generation);
		bool kept = geo_cache_lookup(c, a.family, a.b, &out) != NULL;
		ok(kept == steps[i].kept, "geo_cache_use(): %s", steps[i].what);
	}
}

/* Slots are shared: a later network takes the slot, and no entry answers for another address. */
static void test_collisions(geo_cache_t *c)
{
	geo_info_t out;

	/* Two /24s in one slot. */
	struct addr a = addr_parse("10.0.0.0"), b = addr_parse("10.0.0.0");
	uint32_t sa = geo_cache_slot(4, geo_cache_key(a.b), 24);
	for (unsigned i = 1; i < 65536; i++) {
		b.b[1] = (uint8_t)(i >> 8);
		b.b[2] = (uint8_t)i;
		if (geo_cache_slot(4, geo_cache_key(b.b), 24) == sa)
			break;
	}
	char text[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET, b.b, text, sizeof(text));
	if (!ok(geo_cache_slot(4, geo_cache_key(b.b), 24) == sa && memcmp(a.b, b.b, 4) != 0,
		"10.0.0.0/24 and %s/24 share a slot", text))
		return;
	geo_info_t ga = info_of(&(struct net){ "10.0.0.0", 24, "AA" });
	geo_info_t gb = info_of(&(struct net){ text, 24, "BB" });
	geo_cache_clear(c);
	geo_cache_store(c, 4, a.b, &ga);
	geo_cache_store(c, 4, b.b, &gb);
	ok(!geo_cache_lookup(c, 4, a.b, &out),
	   "the first /24 is replaced: a miss, not the other's");
	const geo_info_t *got = geo_cache_lookup(c, 4, b.b, &out);
	ok(got && strcmp(got->country, "BB") == 0, "the second /24 hits");

	/*
	 * An IPv4 /24 and an IPv6 address with the same first 24 bits whose
	 * /48 falls in the same slot: only the family tells them apart.
	 */
	struct addr v4 = addr_parse("32.1.13.0"), v6 = addr_parse("2001:d00::1");
	uint32_t s4 = geo_cache_slot(4, geo_cache_key(v4.b), 24);
	bool found = false;
	for (uint32_t i = 0; i < (1u << 24) && !found; i++) {
		v6.b[3] = (uint8_t)(i >> 16);
		v6.b[4] = (uint8_t)(i >> 8);
		v6.b[5] = (uint8_t)i;
		found = geo_cache_slot(6, geo_cache_key(v6.b), 48) == s4;
	}
	inet_ntop(AF_INET6, v6.b, text, sizeof(text));
	if (!ok(found, "32.1.13.0/24 and the /48 of %s share a slot", text))
		return;
	geo_info_t g4 = info_of(&(struct net){ "32.1.13.0", 24, "CA" });
	geo_cache_clear(c);
	geo_cache_store(c, 4, v4.b, &g4);
	ok(geo_cache_lookup(c, 4, v4.b, &out) != NULL, "the IPv4 /24 hits");
	ok(!geo_cache_lookup(c, 6, v6.b, &out), "%s misses: an IPv4 entry never answers IPv6",
	   text);
}

/* Make a: the IPv4 /24 number i (10.x.y.0/24), as a stream of new clients has them. */
static struct addr nth24(unsigned i)
{
	struct addr a = { .family = 4 };
	a.b[0] = 10;
	a.b[1] = (uint8_t)(i >> 8);
	a.b[2] = (uint8_t)i;
	a.b[3] = 1;
	return a;
}

/* A window of GEO_CACHE_WINDOW probes, hits of them on a stored /24, the rest on new ones. */
static void window(geo_cache_t *c, unsigned hits, unsigned *next)
{
	struct addr home = nth24(0);
	geo_info_t g, out;
	memset(&g, 0, sizeof(g));
	g.found = true;
	g.prefix_len = 24;
	geo_cache_store(c, 4, home.b, &g);
	for (unsigned i = 0; i < GEO_CACHE_WINDOW; i++) {
		if (i < hits) {
			geo_cache_lookup(c, 4, home.b, &out);
			continue;
		}
		struct addr a = nth24((*next)++);
		if (!geo_cache_lookup(c, 4, a.b, &out))
			geo_cache_store(c, 4, a.b, &g);
	}
}

/* GEO_CACHE_WINDOW: a cache that most lookups miss is skipped for a while. */
static void test_window(geo_cache_t *c)
{
	geo_info_t g, out;
	memset(&g, 0, sizeof(g));
	g.found = true;
	g.prefix_len = 24;
	struct addr home = nth24(0), other = nth24(5000);
	unsigned next = 1;
	int db;

	geo_cache_use(c, (const geo_db_t *)&db, 100);
	geo_cache_clear(c);
	window(c, GEO_CACHE_WINDOW_HITS, &next);
	ok(c->skip == 0 && geo_cache_lookup(c, 4, home.b, &out),
	   "a window with %u hits of %u: the cache is kept on", GEO_CACHE_WINDOW_HITS,
	   GEO_CACHE_WINDOW);

	geo_cache_clear(c);
	window(c, GEO_CACHE_WINDOW_HITS - 1, &next);
	ok(c->skip == GEO_CACHE_SKIP, "a window with %u hits of %u: the next %u lookups skip it",
	   GEO_CACHE_WINDOW_HITS - 1, GEO_CACHE_WINDOW, GEO_CACHE_SKIP);
	ok(!geo_cache_lookup(c, 4, home.b, &out), "skipped: a stored network misses");
	geo_cache_store(c, 4, other.b, &g);
	unsigned n = 1;
	while (c->skip && n < 2 * GEO_CACHE_SKIP) {
		geo_cache_lookup(c, 4, home.b, &out);
		n++;
	}
	is_int(n, GEO_CACHE_SKIP, "the cache is skipped for %u lookups", GEO_CACHE_SKIP);
	ok(geo_cache_lookup(c, 4, home.b, &out) != NULL,
	   "then probed again: the entries stored before are found");
	ok(!geo_cache_lookup(c, 4, other.b, &out), "nothing was stored while it was skipped");

	window(c, 0, &next);
	ok(c->skip > 0, "a window of new networks only: skipped");
	geo_cache_use(c, (const geo_db_t *)&db, 101);
	ok(c->skip == 0 && c->probes == 0, "a new snapshot: a new window, not skipped");
	geo_cache_store(c, 4, home.b, &g);
	ok(geo_cache_lookup(c, 4, home.b, &out) != NULL, "and the cache works at once");
	geo_cache_clear(c);
}

int main(void)
{
	geo_cache_t *c = geo_cache_new();
	if (!c)
		bail_out("geo_cache_new: out of memory");
	ok(((uintptr_t)c & 63) == 0, "the cache is cache-line aligned");
	geo_info_t out;
	struct addr a = addr_parse("192.0.2.1");
	ok(!geo_cache_lookup(c, 4, a.b, &out), "a new cache is empty");

	test_rows(c);
	test_fields(c);
	test_clear(c);
	test_collisions(c);
	test_window(c);
	geo_cache_free(c);
	geo_cache_free(NULL);
	return done_testing();
}
