/* SPDX-License-Identifier: MIT */
/*
 * Pools built from the configuration keep everything in one block
 * (lb_pool_t.block): every field reads back as the configuration has it,
 * and the parts of the block neither overlap nor leave it.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/dns.h"
#include "gslb/lb.h"
#include "gslb/zone.h"
#include "tap.h"

#define POOLS 300

static uint64_t seed = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return n ? (uint32_t)(seed % n) : 0;
}

static const char *const places[] = { "DE", "US", "FR", "JP", "BR", "US-CA", "GB-ENG", "JP-13" };
static const char *const continents[] = { "AF", "AN", "AS", "EU", "NA", "OC", "SA" };

/* Text of n random lowercase letters and digits (n >= 1). */
static void rnd_label(char *out, size_t n)
{
	static const char cs[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t i = 0; i < n; i++)
		out[i] = cs[rnd(sizeof(cs) - 1)];
	out[n] = '\0';
}

/* A pool name: short, or long (near DNS_NAME_MAX in wire form). */
static char *pool_name(unsigned i)
{
	char buf[512], label[64];
	int n = snprintf(buf, sizeof(buf), "p%u.", i);
	unsigned labels = rnd(3) == 0 ? 3 : 1;
	size_t len = rnd(3) == 0 ? 60 : 1 + rnd(12);
	for (unsigned k = 0; k < labels; k++) {
		rnd_label(label, len);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s.", label);
	}
	snprintf(buf + n, sizeof(buf) - (size_t)n, "example.test.");
	return gslb_strdup(buf);
}

/* Member m of a random shape: names from 1 to 80 bytes, up to 70 addresses a family. */
static void member_random(db_member_t *m, unsigned k)
{
	char buf[128];
	size_t nl = rnd(4) == 0 ? 1 + rnd(80) : 1 + rnd(8);
	rnd_label(buf, nl);
	buf[0] = (char)('a' + k % 26); /* distinct enough; the order does not matter here */
	m->name = gslb_strdup(buf);
	m->weight = (uint16_t)rnd(LB_WEIGHT_MAX + 1);
	m->priority = (uint8_t)(1 + rnd(LB_PRIORITY_MAX));
	m->admin = (uint8_t)rnd(4);
	m->has_location = rnd(2);
	m->latitude = m->has_location ? (double)rnd(18000) / 100 - 90 : 0;
	m->longitude = m->has_location ? (double)rnd(36000) / 100 - 180 : 0;

	unsigned n4 = rnd(8) == 0 ? 60 + rnd(10) : rnd(3), n6 = rnd(8) == 0 ? 60 + rnd(10) : rnd(3);
	m->naddresses = n4 + n6;
	m->addresses = gslb_calloc(m->naddresses + 1, sizeof(*m->addresses));
	m->families = gslb_calloc(m->naddresses + 1, 1);
	/* The families interleaved, every address distinct. */
	unsigned i4 = 0, i6 = 0;
	for (unsigned i = 0; i < m->naddresses; i++) {
		bool v6 = (i4 == n4) || (i6 < n6 && rnd(2));
		if (v6) {
			i6++;
			snprintf(buf, sizeof(buf), "2001:db8:%x::%x", k, i6);
		} else {
			i4++;
			snprintf(buf, sizeof(buf), "10.%u.%u.%u", k % 256, i4 / 256, i4 % 256);
		}
		m->addresses[i] = gslb_strdup(buf);
		m->families[i] = v6 ? 6 : 4;
	}

	m->nnetworks = rnd(3) == 0 ? 1 + rnd(6) : 0;
	m->networks = gslb_calloc(m->nnetworks + 1, sizeof(*m->networks));
	for (unsigned i = 0; i < m->nnetworks; i++) {
		if (rnd(2))
			snprintf(buf, sizeof(buf), "10.%u.%u.0/24", rnd(256), i);
		else
			snprintf(buf, sizeof(buf), "2001:db8:%x:%x::/64", 1 + rnd(65535), i + 1);
		m->networks[i] = gslb_strdup(buf);
	}

	unsigned nc = rnd(3) == 0 ? 1 + rnd(ARRAY_SIZE(places)) : 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < nc; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "," : "",
			 places[(i + k) % ARRAY_SIZE(places)]);
	m->countries = nc ? gslb_strdup(buf) : NULL;
	unsigned ncont = rnd(3) == 0 ? 1 + rnd(3) : 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < ncont; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "," : "",
			 continents[rnd(ARRAY_SIZE(continents))]);
	m->continents = ncont ? gslb_strdup(buf) : NULL;
}

static void config_random(db_config_t *cfg)
{
	cfg->npools = POOLS;
	cfg->pools = gslb_calloc(POOLS, sizeof(*cfg->pools));
	for (unsigned i = 0; i < POOLS; i++) {
		db_pool_t *p = &cfg->pools[i];
		p->name = pool_name(i);
		p->policy = (uint8_t)rnd(3);
		p->ttl = rnd(LB_TTL_MAX + 1);
		p->degraded_ttl = rnd(2) ? -1 : (int32_t)(1 + rnd(LB_TTL_MAX));
		p->answers = (uint8_t)(1 + rnd(LB_ANSWERS_MAX));
		p->fallback_all = rnd(2);
		/* Pools of no member and of many. */
		p->nmembers = rnd(10) == 0   ? 0
			      : rnd(10) == 0 ? 100 + rnd(LB_MEMBERS_MAX - 99)
					     : 1 + rnd(4);
		p->members = gslb_calloc(p->nmembers + 1, sizeof(*p->members));
		for (unsigned k = 0; k < p->nmembers; k++)
			member_random(&p->members[k], k);
	}
}

/* A part of a pool: where it starts and how many bytes it takes. */
typedef struct part {
	const uint8_t *at;
	size_t len;
} part_t;

static int part_cmp(const void *a, const void *b)
{
	const part_t *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* Does every part lie inside p's block, none over another?  why says what is wrong. */
static bool layout_ok(const lb_pool_t *p, char *why, size_t size)
{
	size_t cap = 3 + (size_t)p->nmembers * 7, n = 0;
	part_t *parts = gslb_calloc(cap, sizeof(*parts));
	/* The room for the pool itself (lb_pool_home()). */
	parts[n++] = (part_t){ p->block, sizeof(lb_pool_t) };
	parts[n++] = (part_t){ p->name, p->name_len };
	if (p->nmembers) /* else members is where the next part starts */
		parts[n++] = (part_t){ (const uint8_t *)p->members,
				       p->nmembers * sizeof(lb_member_t) };
	for (uint16_t k = 0; k < p->nmembers; k++) {
		const lb_member_t *m = &p->members[k];
		parts[n++] = (part_t){ (const uint8_t *)m->name, strlen(m->name) + 1 };
		for (int f = 0; f < 2; f++)
			if (m->naddr[f])
				parts[n++] = (part_t){ (const uint8_t *)m->addr[f],
						       m->naddr[f] * sizeof(lb_addr_t) };
		if (m->ncountries)
			parts[n++] = (part_t){ (const uint8_t *)m->countries,
					       m->ncountries * sizeof(*m->countries) };
		if (m->nnets)
			parts[n++] = (part_t){ (const uint8_t *)m->nets,
					       m->nnets * sizeof(lb_net_t) };
		/* The location out of line, only for a member with one. */
		if (m->has_location != (m->uvec != NULL)) {
			snprintf(why, size, "member %s: location %d but uvec %p", m->name,
				 m->has_location, (const void *)m->uvec);
			free(parts);
			return false;
		}
		if (m->uvec)
			parts[n++] = (part_t){ (const uint8_t *)m->uvec, 3 * sizeof(*m->uvec) };
	}
	const uint8_t *lo = p->block, *hi = lo + malloc_usable_size(p->block);
	bool good = p->block != NULL;
	if (!good)
		snprintf(why, size, "no block");
	qsort(parts, n, sizeof(*parts), part_cmp);
	for (size_t i = 0; good && i < n; i++) {
		if (parts[i].at < lo || parts[i].at + parts[i].len > hi) {
			snprintf(why, size, "part %zu of %zu outside the block", i, n);
			good = false;
		} else if (i + 1 < n && parts[i].at + parts[i].len > parts[i + 1].at) {
			snprintf(why, size, "parts %zu and %zu overlap", i, i + 1);
			good = false;
		}
	}
	free(parts);
	return good;
}

/* Is u the unit vector of the place at lat, lon? */
static bool uvec_equal(const double u[3], double lat, double lon)
{
	double want[3];
	geo_unit_vector(lat, lon, want);
	return memcmp(u, want, sizeof(want)) == 0;
}

/* Does member m read back as the configuration's dm?  why says what differs. */
static bool member_ok(const lb_member_t *m, const db_member_t *dm, char *why, size_t size)
{
	size_t nl = strlen(dm->name) < LB_MEMBER_NAME_MAX ? strlen(dm->name) : LB_MEMBER_NAME_MAX;
	if (strlen(m->name) != nl || memcmp(m->name, dm->name, nl) != 0) {
		snprintf(why, size, "name '%s' for '%s'", m->name, dm->name);
		return false;
	}
	static const uint8_t admin[] = { [DB_ADMIN_AUTO] = LB_ADMIN_AUTO,
					 [DB_ADMIN_UP] = LB_ADMIN_UP,
					 [DB_ADMIN_DOWN] = LB_ADMIN_DOWN,
					 [DB_ADMIN_DRAIN] = LB_ADMIN_DRAIN };
	if (m->weight != dm->weight || m->priority != dm->priority ||
	    m->admin != admin[dm->admin] || m->has_location != dm->has_location ||
	    (dm->has_location && !uvec_equal(m->uvec, dm->latitude, dm->longitude))) {
		snprintf(why, size, "member %s: settings", dm->name);
		return false;
	}
	for (int f = 0; f < 2; f++) {
		int fam = f ? 6 : 4;
		uint16_t k = 0;
		for (size_t i = 0; i < dm->naddresses && k < LB_ADDRS_MAX; i++) {
			if (dm->families[i] != fam)
				continue;
			uint8_t want[16] = { 0 };
			inet_pton(f ? AF_INET6 : AF_INET, dm->addresses[i], want);
			const lb_addr_t *a = &m->addr[f][k];
			if (k >= m->naddr[f] || a->family != fam || a->row != i ||
			    a->target != LB_TARGET_NONE || memcmp(a->addr, want, 16) != 0) {
				snprintf(why, size, "member %s: address %s", dm->name,
					 dm->addresses[i]);
				return false;
			}
			k++;
		}
		if (k != m->naddr[f]) {
			snprintf(why, size, "member %s: %u IPv%d addresses, not %u", dm->name,
				 m->naddr[f], fam, k);
			return false;
		}
	}
	char list[128] = "";
	for (uint16_t i = 0; i < m->ncountries; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "," : "",
			 m->countries[i]);
	if (strcmp(list, dm->countries ? dm->countries : "") != 0) {
		snprintf(why, size, "member %s: countries '%s' for '%s'", dm->name, list,
			 dm->countries ? dm->countries : "");
		return false;
	}
	uint8_t cont = 0;
	for (const char *s = dm->continents; s && *s; s += s[2] ? 3 : 2) {
		char c[3] = { s[0], s[1], 0 };
		cont |= (uint8_t)(1u << lb_continent_bit(c));
	}
	if (m->continents != cont) {
		snprintf(why, size, "member %s: continents", dm->name);
		return false;
	}
	if (m->nnets != dm->nnetworks) {
		snprintf(why, size, "member %s: %u networks", dm->name, m->nnets);
		return false;
	}
	for (uint16_t i = 0; i < m->nnets; i++) {
		char text[INET6_ADDRSTRLEN + 8];
		const lb_net_t *n = &m->nets[i];
		inet_ntop(n->family == 6 ? AF_INET6 : AF_INET, n->addr, text, sizeof(text));
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "/%u", n->len);
		if (strcmp(text, dm->networks[i]) != 0) {
			snprintf(why, size, "member %s: network %s for %s", dm->name, text,
				 dm->networks[i]);
			return false;
		}
	}
	return true;
}

/* Does pool p read back as the configuration's dp? */
static bool pool_ok(const lb_pool_t *p, const db_pool_t *dp, char *why, size_t size)
{
	uint8_t wire[DNS_NAME_MAX + 1];
	int len = dns_name_from_str(wire, dp->name);
	dns_name_lower(wire, wire);
	if (len < 0 || p->name_len != len || memcmp(p->name, wire, (size_t)len) != 0) {
		snprintf(why, size, "pool %s: name", dp->name);
		return false;
	}
	if (p->policy != dp->policy || p->ttl != dp->ttl ||
	    p->degraded_ttl != db_pool_degraded_ttl(dp) || p->answers != dp->answers ||
	    p->fallback_all != dp->fallback_all || p->nmembers != dp->nmembers) {
		snprintf(why, size, "pool %s: settings", dp->name);
		return false;
	}
	for (uint16_t k = 0; k < p->nmembers; k++)
		if (!member_ok(&p->members[k], &dp->members[k], why, size))
			return false;
	return layout_ok(p, why, size);
}

/* A zone example.test. with its SOA and NS, alone in a zone set. */
static zone_set_t *zones_new(void)
{
	uint8_t apex[DNS_NAME_MAX + 1], rd[2 * DNS_NAME_MAX + 20] = { 0 };
	char err[256] = "";
	dns_name_from_str(apex, "example.test.");
	zone_t *z = zone_new(apex);
	int n = dns_name_from_str(rd, "ns.example.test.");
	int m = dns_name_from_str(rd + n, "hostmaster.example.test.");
	if (!z || zone_add_rr(z, apex, DNS_T_SOA, DNS_C_IN, 300, rd, (uint16_t)(n + m + 20)) < 0 ||
	    zone_add_rr(z, apex, DNS_T_NS, DNS_C_IN, 300, rd, (uint16_t)n) < 0 ||
	    zone_finish(z, err, sizeof(err)) < 0)
		bail_out("zone: %s", err);
	zone_set_t *set = zone_set_new();
	if (zone_set_add(set, z) < 0)
		bail_out("zone_set_add");
	zone_unref(z);
	zone_set_finish(set);
	return set;
}

/*
 * A set of many pools under one parent name: every pool and the parent are
 * found, and the name table is sized for the names there are, not for
 * every label of every pool.
 */
static void test_set_table(void)
{
	enum { N = 2000 };
	zone_set_t *zones = zones_new();
	db_pool_t *dp = gslb_calloc(N, sizeof(*dp));
	for (unsigned i = 0; i < N; i++) {
		char name[64];
		snprintf(name, sizeof(name), "p%u.glb.example.test.", i);
		dp[i].name = gslb_strdup(name);
		dp[i].answers = 1;
	}
	db_config_t cfg = { .npools = N, .pools = dp };
	lb_pool_t *pools = NULL;
	uint32_t n = lb_config_pools(&cfg, NULL, &pools);
	lb_set_t *s = lb_set_new(pools, n, zones);
	uint32_t found = 0;
	for (uint32_t i = 0; i < s->npools; i++) {
		const lb_pool_t *p = s->pools[i];
		const lb_entry_t *e = lb_set_find_hashed(s, p->name, p->name_len,
							 zone_name_hash(p->name, p->name_len));
		found += e && e->pool == p;
	}
	uint8_t glb[DNS_NAME_MAX + 1];
	int len = dns_name_from_str(glb, "glb.example.test.");
	const lb_entry_t *e = lb_set_find_hashed(s, glb, (size_t)len,
						 zone_name_hash(glb, (size_t)len));
	ok(found == N && e && !e->pool && s->nentries == N + 1,
	   "a set of %u pools finds each and their parent (%u entries)", found, s->nentries);
	/* At most a quarter full after the power of two: under 8 slots of 4 bytes a name. */
	ok(s->table_mask + 1 < 8 * (size_t)s->nentries && sizeof(*s->table) == 4 &&
		   malloc_usable_size(s->entries) < (s->nentries + 2) * sizeof(*s->entries),
	   "the name table is sized for its %u names: %u slots of %zu bytes, %zu bytes of entries",
	   s->nentries, s->table_mask + 1, sizeof(*s->table), malloc_usable_size(s->entries));
	lb_set_free(s);
	zone_set_free(zones);
	for (unsigned i = 0; i < N; i++)
		free(dp[i].name);
	free(dp);
}

int main(void)
{
	db_config_t cfg;
	char why[256] = "";
	config_random(&cfg);

	/* 100,000 pools of three members take these times 100,000 (bench/README.md). */
	ok(sizeof(lb_pool_t) <= 80 && sizeof(lb_member_t) <= 72,
	   "a pool is %zu bytes, a member %zu (the location out of line)", sizeof(lb_pool_t),
	   sizeof(lb_member_t));

	lb_pool_t *pools = NULL;
	uint32_t n = lb_config_pools(&cfg, NULL, &pools);
	uint32_t good = 0;
	bool long_name = false, many = false, nets = false, places_seen = false, addrs = false;
	for (uint32_t i = 0; i < n; i++) {
		const lb_pool_t *p = &pools[i];
		if (pool_ok(p, &cfg.pools[p->cfg_index], why, sizeof(why)))
			good++;
		else if (good == i)
			diag("%s", why);
		long_name |= p->name_len > 70;
		many |= p->nmembers > 100;
		for (uint16_t k = 0; k < p->nmembers; k++) {
			long_name |= strlen(p->members[k].name) == LB_MEMBER_NAME_MAX;
			nets |= p->members[k].nnets > 1;
			places_seen |= p->members[k].ncountries > 1;
			addrs |= p->members[k].naddr[0] == LB_ADDRS_MAX &&
				 p->members[k].naddr[1] == LB_ADDRS_MAX;
		}
	}
	ok(n == POOLS && good == n, "lb_config_pools(): %u of %u pools read back as configured",
	   good, n);
	ok(long_name && many && nets && places_seen && addrs,
	   "the pools have long names, many members, networks, countries, %d addresses",
	   LB_ADDRS_MAX);

	good = 0;
	for (uint32_t i = 0; i < n; i++) {
		lb_pool_t *p = lb_pool_new(&cfg.pools[i], NULL);
		good += p && p == p->block && pool_ok(p, &cfg.pools[i], why, sizeof(why)) &&
			lb_pool_equal(p, &pools[i]);
		lb_pool_unref(p);
	}
	ok(good == n, "lb_pool_new(): %u of %u pools read back as configured", good, n);

	/* The set moves each pool into the room at the start of its block. */
	lb_set_t *s = lb_set_new(pools, n, NULL);
	good = 0;
	for (uint32_t i = 0; s && i < s->npools; i++)
		good += s->pools[i] == s->pools[i]->block &&
			pool_ok(s->pools[i], &cfg.pools[s->pools[i]->cfg_index], why, sizeof(why));
	ok(s && good == n, "lb_set_new(): %u of %u pools read back as configured", good, n);
	lb_set_free(s);

	for (size_t i = 0; i < cfg.npools; i++) {
		db_pool_t *p = &cfg.pools[i];
		for (size_t k = 0; k < p->nmembers; k++) {
			db_member_t *m = &p->members[k];
			for (size_t j = 0; j < m->naddresses; j++)
				free(m->addresses[j]);
			for (size_t j = 0; j < m->nnetworks; j++)
				free(m->networks[j]);
			free(m->addresses);
			free(m->families);
			free(m->networks);
			free(m->countries);
			free(m->continents);
			free(m->name);
		}
		free(p->members);
		free(p->name);
	}
	free(cfg.pools);
	test_set_table();
	return done_testing();
}
