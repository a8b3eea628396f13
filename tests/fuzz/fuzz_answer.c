/* SPDX-License-Identifier: MIT */
/* libFuzzer target: any bytes into query_answer(), every response re-parsed by ldns and checked. */
/* stdbool.h before ldns: without it ldns/common.h defines _Bool as signed char. */
#include <stdbool.h>

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/geo.h"
#include "gslb/lb.h"
#include "gslb/query.h"
#include "gslb/zone.h"
#include "../../src/lb/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Report and abort, so libFuzzer saves the input as a crash. */
static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_answer: %s: %s\n", what, detail);
	abort();
}

static void add(zone_t *z, const char *owner, uint16_t type, uint32_t ttl, const void *rd,
		size_t rdlen)
{
	uint8_t o[DNS_NAME_MAX];
	if (dns_name_from_str(o, owner) < 0 ||
	    zone_add_rr(z, o, type, DNS_C_IN, ttl, rd, (uint16_t)rdlen) < 0)
		die("cannot add", owner);
}

static void add_a(zone_t *z, const char *owner, const char *addr)
{
	uint8_t rd[16];
	bool v6 = strchr(addr, ':') != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, rd) != 1)
		die("bad address", addr);
	add(z, owner, v6 ? DNS_T_AAAA : DNS_T_A, 300, rd, v6 ? 16 : 4);
}

static void add_name(zone_t *z, const char *owner, uint16_t type, const char *target)
{
	uint8_t rd[DNS_NAME_MAX + 2];
	size_t pre = type == DNS_T_MX ? 2 : 0;
	rd[0] = 0;
	rd[1] = 10;
	int n = dns_name_from_str(rd + pre, target);
	if (n < 0)
		die("bad name", target);
	add(z, owner, type, 300, rd, pre + (size_t)n);
}

static void add_soa(zone_t *z, const char *apex, uint32_t ttl, uint32_t minimum)
{
	uint8_t rd[2 * DNS_NAME_MAX + 20];
	char name[300];
	snprintf(name, sizeof(name), "ns1.%s", apex);
	int n = dns_name_from_str(rd, name);
	snprintf(name, sizeof(name), "hostmaster.%s", apex);
	int m = dns_name_from_str(rd + n, name);
	uint8_t *p = rd + n + m;
	dns_put32(p, 1);
	dns_put32(p + 4, 7200);
	dns_put32(p + 8, 3600);
	dns_put32(p + 12, 1209600);
	dns_put32(p + 16, minimum);
	add(z, apex, DNS_T_SOA, ttl, rd, (size_t)(n + m + 20));
}

static void zone_done(zone_set_t *set, zone_t *z)
{
	char err[256];
	if (zone_finish(z, err, sizeof(err)) < 0 || zone_set_add(set, z) < 0)
		die("zone", err);
	zone_unref(z);
}

static zone_t *zone_start(const char *apex)
{
	uint8_t a[DNS_NAME_MAX];
	zone_t *z = dns_name_from_str(a, apex) < 0 ? NULL : zone_new(a);
	if (!z)
		die("zone_new", apex);
	return z;
}

/* One pool of nmembers members, each with one IPv4 and one IPv6 address. */
static void pool_init(lb_pool_t *p, const char *name, uint8_t policy, uint16_t nmembers)
{
	memset(p, 0, sizeof(*p));
	int n = lb_pool_set_name(p, name);
	if (n < 0)
		die("bad pool", name);
	p->name_len = (uint8_t)n;
	p->policy = policy;
	p->answers = 2;
	p->fallback_all = true;
	p->ttl = 30;
	p->degraded_ttl = 10;
	p->nmembers = nmembers;
	p->members = calloc(nmembers, sizeof(*p->members));
	for (uint16_t i = 0; i < nmembers; i++) {
		lb_member_t *mb = &p->members[i];
		lb_member_set_name(mb, "m%u", i);
		mb->weight = (uint16_t)(100 * (i + 1));
		mb->priority = (uint8_t)(1 + i % 2);
		for (int f = 0; f < 2; f++) {
			mb->naddr[f] = 1;
			mb->addr[f] = calloc(1, sizeof(lb_addr_t));
			mb->addr[f]->family = f ? 6 : 4;
			mb->addr[f]->target = LB_TARGET_NONE;
			mb->addr[f]->addr[0] = f ? 0x20 : 10;
			mb->addr[f]->addr[15] = (uint8_t)i;
			mb->addr[f]->addr[3] = (uint8_t)(i + 1);
		}
	}
	lb_pool_derive(p);
}

/*
 * Give the geo pool's members something for every rule: a country, a
 * continent, a network and locations (the test database's DE, US-VA and SG).
 */
static void geo_pool_places(lb_pool_t *p)
{
	static const double loc[4][2] = {
		{ 50.11, 8.68 }, { 39.04, -77.49 }, { 1.35, 103.82 }, { -33.87, 151.21 }
	};
	for (uint16_t i = 0; i < p->nmembers && i < 4; i++) {
		lb_member_t *m = &p->members[i];
		m->has_location = true;
		m->uvec = calloc(3, sizeof(*m->uvec));
		geo_unit_vector(loc[i][0], loc[i][1], m->uvec);
	}
	p->members[0].countries = calloc(1, sizeof(*p->members[0].countries));
	memcpy(p->members[0].countries[0], "DE", 3);
	p->members[0].ncountries = 1;
	p->members[1].continents = (uint8_t)(1u << lb_continent_bit("NA"));
	p->members[2].nets = calloc(1, sizeof(lb_net_t));
	p->members[2].nets[0] = (lb_net_t){ .family = 4, .len = 25, .addr = { 192, 0, 2, 128 } };
	p->members[2].nnets = 1;
	lb_pool_derive(p);
}

/*
 * The fixed snapshot every input is answered from: CNAME chains and
 * loops, wildcards (plain, CNAME, below an ENT), a delegation with glue,
 * RRsets big enough to truncate, DNAMEs, a nested zone, a delegated one and
 * pools.
 */
static query_data_t *snapshot_build(void)
{
	zone_set_t *set = zone_set_new();
	char owner[64], target[64], addr[64];

	zone_t *z = zone_start("example.com.");
	add_soa(z, "example.com.", 3600, 300);
	add_name(z, "example.com.", DNS_T_NS, "ns1.example.com.");
	add_name(z, "example.com.", DNS_T_NS, "ns2.example.com.");
	add_name(z, "example.com.", DNS_T_MX, "mail.example.com.");
	add_a(z, "ns1.example.com.", "192.0.2.1");
	add_a(z, "ns2.example.com.", "2001:db8::2");
	add_a(z, "www.example.com.", "192.0.2.10");
	add_a(z, "www.example.com.", "2001:db8::10");
	add_a(z, "host.ent.example.com.", "192.0.2.30");
	add_a(z, "*.wild.example.com.", "192.0.2.50");
	add_a(z, "exist.wild.example.com.", "192.0.2.51");
	add_name(z, "*.wc.example.com.", DNS_T_CNAME, "www.example.com.");
	add_name(z, "*.example.com.", DNS_T_MX, "mail.example.com.");
	for (int i = 1; i <= 10; i++) {
		snprintf(owner, sizeof(owner), "c%d.example.com.", i);
		if (i < 10)
			snprintf(target, sizeof(target), "c%d.example.com.", i + 1);
		else
			snprintf(target, sizeof(target), "www.example.com.");
		add_name(z, owner, DNS_T_CNAME, target);
	}
	add_name(z, "loop1.example.com.", DNS_T_CNAME, "loop2.example.com.");
	add_name(z, "loop2.example.com.", DNS_T_CNAME, "loop1.example.com.");
	add_name(z, "ext.example.com.", DNS_T_CNAME, "www.other.test.");
	add_name(z, "short.example.com.", DNS_T_CNAME, "a.b.");
	add_name(z, "root.example.com.", DNS_T_CNAME, ".");
	add_name(z, "toapex.example.com.", DNS_T_CNAME, "example.com.");
	add_name(z, "tosub.example.com.", DNS_T_CNAME, "x.sub.example.com.");
	add_name(z, "topool.example.com.", DNS_T_CNAME, "pool.example.com.");
	add_name(z, "towild.example.com.", DNS_T_CNAME, "a.wc.example.com.");
	add_name(z, "sub.example.com.", DNS_T_NS, "ns.sub.example.com.");
	add_name(z, "sub.example.com.", DNS_T_NS, "ns.elsewhere.test.");
	add_a(z, "ns.sub.example.com.", "192.0.2.53");
	add_a(z, "ns.sub.example.com.", "2001:db8::53");
	uint8_t ds[36] = { 0x30, 0x39, 13, 2 };
	add(z, "sub.example.com.", DNS_T_DS, 3600, ds, sizeof(ds));
	for (int i = 0; i < 120; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 200, i % 200 + 1);
		add_a(z, "big.example.com.", addr);
		snprintf(addr, sizeof(addr), "2001:db8::%x", i + 1);
		add_a(z, "big.example.com.", addr);
	}
	for (int i = 0; i < 40; i++) {
		snprintf(addr, sizeof(addr), "10.1.0.%d", i + 1);
		add_a(z, "mid.example.com.", addr);
		snprintf(owner, sizeof(owner), "ns%d.big.example.com.", i);
		add_name(z, "deleg.example.com.", DNS_T_NS, owner);
		snprintf(owner, sizeof(owner), "ns%d.deleg.example.com.", i);
		add_name(z, "deleg.example.com.", DNS_T_NS, owner);
		add_a(z, owner, "192.0.2.99");
		add_a(z, owner, "2001:db8::99");
	}
	/* DNAMEs (RFC 6672): in the zone, to another, to itself, out of it, too long. */
	add_name(z, "dn.example.com.", DNS_T_DNAME, "target.example.com.");
	add_a(z, "www.target.example.com.", "192.0.2.70");
	add_name(z, "cn.target.example.com.", DNS_T_CNAME, "x.dn.example.com.");
	add_a(z, "occ.dn.example.com.", "192.0.2.79");
	add_name(z, "dn2.example.com.", DNS_T_DNAME, "dn.example.com.");
	add_name(z, "dnself.example.com.", DNS_T_DNAME, "dnself.example.com.");
	add_name(z, "xdn.example.com.", DNS_T_DNAME, "example.net.");
	add_name(z, "todn.example.com.", DNS_T_CNAME, "www.dn.example.com.");
	add_name(z, "long.example.com.", DNS_T_DNAME,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
		 "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
		 "ddddddddddddddddddddddddddddddddddddddddddddddddddddddd.");
	add_name(z, "tosubdn.example.com.", DNS_T_DNAME, "sub.example.com.");
	/* Loops of three names and through a wildcard. */
	add_name(z, "la.example.com.", DNS_T_CNAME, "lb.example.com.");
	add_name(z, "lb.example.com.", DNS_T_CNAME, "lc.example.com.");
	add_name(z, "lc.example.com.", DNS_T_CNAME, "la.example.com.");
	add_name(z, "*.wl.example.com.", DNS_T_CNAME, "a.wl.example.com.");
	/* A delegation to a zone served here too (RFC 4035 3.1.4.1). */
	add_name(z, "kid.example.com.", DNS_T_NS, "ns1.example.com.");
	add(z, "kid.example.com.", DNS_T_DS, 3600, ds, sizeof(ds));
	uint8_t txt[256];
	memset(txt, 't', sizeof(txt));
	txt[0] = 255;
	for (int i = 0; i < 300; i++) {
		txt[1] = (uint8_t)i;
		txt[2] = (uint8_t)(i >> 8);
		add(z, "huge.example.com.", DNS_T_TXT, 60, txt, sizeof(txt));
	}
	zone_done(set, z);

	z = zone_start("other.test.");
	add_soa(z, "other.test.", 60, 600);
	add_name(z, "other.test.", DNS_T_NS, "ns.other.test.");
	add_a(z, "ns.other.test.", "198.51.100.53");
	add_a(z, "www.other.test.", "198.51.100.1");
	zone_done(set, z);

	z = zone_start("kid.example.com.");
	add_soa(z, "kid.example.com.", 3600, 900);
	add_name(z, "kid.example.com.", DNS_T_NS, "ns1.example.com.");
	add_name(z, "kid.example.com.", DNS_T_DNAME, "example.com.");
	zone_done(set, z);

	z = zone_start("child.example.com.");
	add_soa(z, "child.example.com.", 3600, 3600);
	add_name(z, "child.example.com.", DNS_T_NS, "ns1.example.com.");
	add_a(z, "*.child.example.com.", "203.0.113.1");
	zone_done(set, z);
	zone_set_finish(set);

	lb_pool_t *pools = calloc(3, sizeof(*pools));
	pool_init(&pools[0], "pool.example.com.", LB_POLICY_WEIGHTED, 3);
	pool_init(&pools[1], "a.b.pools.example.com.", LB_POLICY_FAILOVER, 2);
	pool_init(&pools[2], "child.example.com.", LB_POLICY_GEO, 4);
	geo_pool_places(&pools[2]);

	query_data_t *s = calloc(1, sizeof(*s));
	s->zones = set;
	s->pools = lb_set_new(pools, 3, set);
	s->generation = 1;
	/* The test City database, so ECS and peers reach the geo cache and every geo rule. */
	const char *srcdir = getenv("GSLB_SRCDIR") ? getenv("GSLB_SRCDIR") : ".";
	char path[4096];
	geo_db_t *geo = NULL;
	snprintf(path, sizeof(path), "%s/geoip/gslb-test-city.mmdb", srcdir);
	if (geo_db_open(path, &geo) == 0)
		s->geo = geo;
	return s;
}

/* Skip a possibly compressed name; returns the offset after it or 0. */
static size_t skip_name(const uint8_t *m, size_t len, size_t pos)
{
	for (int i = 0; i < 128; i++) {
		if (pos >= len)
			return 0;
		uint8_t l = m[pos];
		if (l == 0)
			return pos + 1;
		if ((l & 0xc0) == 0xc0)
			return pos + 2 <= len ? pos + 2 : 0;
		if (l & 0xc0)
			return 0;
		pos += 1 + (size_t)l;
	}
	return 0;
}

/* The UDP payload size of the query's first OPT, or -1 when none is found. */
static int query_udp_size(const uint8_t *m, size_t len)
{
	if (len < DNS_HEADER_LEN)
		return -1;
	unsigned qd = dns_get16(m + 4);
	unsigned rrs = (unsigned)dns_get16(m + 6) + dns_get16(m + 8) + dns_get16(m + 10);
	size_t pos = DNS_HEADER_LEN;
	for (unsigned i = 0; i < qd; i++) {
		pos = skip_name(m, len, pos);
		if (!pos || len - pos < 4)
			return -1;
		pos += 4;
	}
	for (unsigned i = 0; i < rrs; i++) {
		pos = skip_name(m, len, pos);
		if (!pos || len - pos < 10)
			return -1;
		if (dns_get16(m + pos) == DNS_T_OPT)
			return dns_get16(m + pos + 2);
		uint16_t rdlen = dns_get16(m + pos + 8);
		pos += 10;
		if (rdlen > len - pos)
			return -1;
		pos += rdlen;
	}
	return -1;
}

static bool has_opt(const ldns_pkt *p)
{
	return ldns_pkt_edns(p) || ldns_pkt_edns_udp_size(p) != 0;
}

static void check(const uint8_t *q, size_t qlen, const uint8_t *r, size_t rlen, int tr)
{
	const char *t = tr == QUERY_TCP ? "TCP" : "UDP";
	if (rlen == 0) {
		/* Only short packets and responses (QR=1) are dropped. */
		if (qlen >= DNS_HEADER_LEN && !(q[2] & 0x80))
			die(t, "a query was dropped");
		return;
	}
	if (qlen < DNS_HEADER_LEN || (q[2] & 0x80))
		die(t, "answered a packet that must be dropped");
	if (rlen < DNS_HEADER_LEN || rlen > DNS_MSG_MAX)
		die(t, "response length out of range");
	if (memcmp(r, q, 2) != 0)
		die(t, "ID differs");
	if (!(r[2] & 0x80) || (r[3] & 0x80))
		die(t, "QR=0 or RA=1");
	if ((r[2] & 0x02) && (dns_get16(r + 6) || dns_get16(r + 8)))
		die(t, "TC=1 with records in answer or authority");

	ldns_pkt *pkt = NULL;
	if (ldns_wire2pkt(&pkt, r, rlen) != LDNS_STATUS_OK)
		die(t, "ldns rejects the response");
	bool opt = has_opt(pkt);
	ldns_pkt_free(pkt);

	if (tr == QUERY_UDP) {
		int req = query_udp_size(q, qlen);
		size_t limit = DNS_UDP_MIN;
		if (req > DNS_UDP_MIN)
			limit = req < DNS_EDNS_UDP_MAX ? (size_t)req : DNS_EDNS_UDP_MAX;
		/* An OPT we did not find in the query: hold it to the hard cap. */
		if (req < 0 && opt)
			limit = DNS_EDNS_UDP_MAX;
		if (rlen > limit)
			die(t, "response larger than the client allows");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static query_data_t *snap;
	static query_ctx_t ctx, ctx_bare;
	static const query_conf_t conf = {
		.nsid = (const uint8_t *)"fuzz-nsid",
		.nsid_len = 9,
		.server_id = "fuzz.example",
		.server_version = "gslbd fuzz",
	};
	static uint8_t resp[DNS_MSG_MAX];
	if (!snap) {
		gslb_log_set_level(GSLB_LOG_ERROR);
		snap = snapshot_build();
		query_ctx_init(&ctx, &conf, 1);
		query_ctx_init(&ctx_bare, NULL, 2);
	}
	/* Copy the input so reads past its end are caught by ASan at the exact size. */
	uint8_t *q = malloc(size ? size : 1);
	if (size)
		memcpy(q, data, size);
	/* No peer, an IPv4 one and an IPv4-mapped IPv6 one, for clients without ECS. */
	static struct sockaddr_in v4 = { .sin_family = AF_INET };
	static struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	const struct sockaddr *peers[3] = { NULL, (struct sockaddr *)&v4, (struct sockaddr *)&v6 };
	if (!v4.sin_addr.s_addr) {
		inet_pton(AF_INET, "198.51.100.7", &v4.sin_addr);
		inet_pton(AF_INET6, "::ffff:10.2.0.1", &v6.sin6_addr);
	}
	for (int tr = QUERY_UDP; tr <= QUERY_TCP; tr++) {
		size_t n = query_answer(&ctx, snap, q, size, resp, tr, peers[(size + tr) % 3]);
		check(q, size, resp, n, tr);
	}
	/* No configuration and no snapshot: the paths for NULL. */
	size_t n = query_answer(&ctx_bare, size & 1 ? snap : NULL, q, size, resp, QUERY_UDP, NULL);
	check(q, size, resp, n, QUERY_UDP);
	free(q);
	return 0;
}
