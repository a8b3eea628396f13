/* SPDX-License-Identifier: MIT */
/* TAP test of the answer path: raw query bytes into query_answer(), each response field checked. */
/* stdbool.h before ldns: without it ldns/common.h defines _Bool as signed char. */
#include <stdbool.h>

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/lb.h"
#include "gslb/query.h"
#include "gslb/zone.h"
#include "../../src/lb/internal.h"
#include "tap.h"

/* ---- building zones in memory ---- */

static void wire(uint8_t *dst, const char *name)
{
	if (dns_name_from_str(dst, name) < 0)
		bail_out("bad name in the test: %s", name);
}

static void add(zone_t *z, const char *owner, uint16_t type, uint32_t ttl, const void *rd,
		size_t rdlen)
{
	uint8_t o[DNS_NAME_MAX];
	wire(o, owner);
	int ret = zone_add_rr(z, o, type, DNS_C_IN, ttl, rd, (uint16_t)rdlen);
	if (ret < 0)
		bail_out("zone_add_rr %s type %u: %s", owner, type, gslb_strerror(ret));
}

static void add_a(zone_t *z, const char *owner, uint32_t ttl, const char *addr)
{
	uint8_t rd[4];
	if (inet_pton(AF_INET, addr, rd) != 1)
		bail_out("bad address %s", addr);
	add(z, owner, DNS_T_A, ttl, rd, 4);
}

static void add_aaaa(zone_t *z, const char *owner, uint32_t ttl, const char *addr)
{
	uint8_t rd[16];
	if (inet_pton(AF_INET6, addr, rd) != 1)
		bail_out("bad address %s", addr);
	add(z, owner, DNS_T_AAAA, ttl, rd, 16);
}

/* NS, CNAME: rdata is one name. */
static void add_name(zone_t *z, const char *owner, uint16_t type, uint32_t ttl, const char *target)
{
	uint8_t rd[DNS_NAME_MAX];
	int n = dns_name_from_str(rd, target);
	if (n < 0)
		bail_out("bad name %s", target);
	add(z, owner, type, ttl, rd, (size_t)n);
}

/* TXT with one character-string per argument string (each <= 255). */
static void add_txt(zone_t *z, const char *owner, uint32_t ttl, const char *s1, const char *s2)
{
	uint8_t rd[600];
	size_t n = 0;
	const char *parts[2] = { s1, s2 };
	for (int i = 0; i < 2 && parts[i]; i++) {
		size_t l = strlen(parts[i]);
		rd[n++] = (uint8_t)l;
		memcpy(rd + n, parts[i], l);
		n += l;
	}
	add(z, owner, DNS_T_TXT, ttl, rd, n);
}

static void add_mx(zone_t *z, const char *owner, uint32_t ttl, uint16_t pref, const char *target)
{
	uint8_t rd[2 + DNS_NAME_MAX];
	dns_put16(rd, pref);
	int n = dns_name_from_str(rd + 2, target);
	if (n < 0)
		bail_out("bad name %s", target);
	add(z, owner, DNS_T_MX, ttl, rd, 2 + (size_t)n);
}

static void add_soa(zone_t *z, const char *owner, uint32_t ttl, uint32_t serial, uint32_t minimum)
{
	uint8_t rd[2 * DNS_NAME_MAX + 20];
	char mname[300], rname[300];
	/* "ns1." + "." would be no name: the root's SOA names ns1. and hostmaster. */
	snprintf(mname, sizeof(mname), "ns1.%s", strcmp(owner, ".") ? owner : "");
	snprintf(rname, sizeof(rname), "hostmaster.%s", strcmp(owner, ".") ? owner : "");
	int n = dns_name_from_str(rd, mname);
	int m = dns_name_from_str(rd + n, rname);
	uint8_t *p = rd + n + m;
	dns_put32(p, serial);
	dns_put32(p + 4, 7200);
	dns_put32(p + 8, 3600);
	dns_put32(p + 12, 1209600);
	dns_put32(p + 16, minimum);
	add(z, owner, DNS_T_SOA, ttl, rd, (size_t)(n + m + 20));
}

static zone_t *zone_start(const char *apex)
{
	uint8_t a[DNS_NAME_MAX];
	wire(a, apex);
	zone_t *z = zone_new(a);
	if (!z)
		bail_out("zone_new %s", apex);
	return z;
}

static void zone_done(zone_set_t *set, zone_t *z)
{
	char err[512] = "";
	int ret = zone_finish(z, err, sizeof(err));
	if (ret < 0)
		bail_out("zone_finish: %s (%s)", gslb_strerror(ret), err);
	if (zone_set_add(set, z) < 0)
		bail_out("zone_set_add");
	zone_unref(z);
}

/* A weighted pool of n members, one IPv4 address each (192.0.2.101, .102 ...), TTL 30. */
static void pool_init(lb_pool_t *p, const char *name, uint16_t n)
{
	memset(p, 0, sizeof(*p));
	int len = lb_pool_set_name(p, name);
	if (len < 0)
		bail_out("bad pool name %s", name);
	p->name_len = (uint8_t)len;
	p->policy = LB_POLICY_WEIGHTED;
	p->answers = 1;
	p->fallback_all = true;
	p->ttl = 30;
	p->degraded_ttl = 10;
	p->nmembers = n;
	p->members = gslb_calloc(n, sizeof(*p->members));
	for (uint16_t i = 0; i < n; i++) {
		lb_member_t *mb = &p->members[i];
		lb_member_set_name(mb, "m%u", i + 1);
		mb->weight = 100;
		mb->priority = 1;
		mb->naddr[0] = 1;
		mb->addr[0] = gslb_calloc(1, sizeof(lb_addr_t));
		mb->addr[0]->family = 4;
		mb->addr[0]->target = LB_TARGET_NONE;
		memcpy(mb->addr[0]->addr, (uint8_t[]){ 192, 0, 2, (uint8_t)(101 + i) }, 4);
	}
	lb_pool_derive(p);
}

/* The RR counts of the big RRsets the truncation tests use. */
#define BIG_COUNT 100
#define MID_COUNT 40
#define M30_COUNT 30
#define CHAIN_LEN 8   /* c1 .. c8, then www */
#define LONG_CHAIN 12 /* d1 .. d12, then www */

static query_data_t *snapshot_build(void)
{
	zone_set_t *set = zone_set_new();
	char owner[64], target[64], addr[64];

	/* example.com: SOA TTL 3600 with MINIMUM 300, so negative TTLs are 300. */
	zone_t *z = zone_start("example.com.");
	add_soa(z, "example.com.", 3600, 2024010101, 300);
	add_name(z, "example.com.", DNS_T_NS, 3600, "ns1.example.com.");
	add_name(z, "example.com.", DNS_T_NS, 3600, "ns2.example.com.");
	add_mx(z, "example.com.", 3600, 10, "mail.example.com.");
	add_txt(z, "example.com.", 3600, "apex", NULL);
	add_a(z, "ns1.example.com.", 3600, "192.0.2.1");
	add_a(z, "ns2.example.com.", 3600, "192.0.2.2");
	add_a(z, "mail.example.com.", 3600, "192.0.2.25");
	add_a(z, "\\@\\[\\`\\{.example.com.", 300, "192.0.2.60");
	add_a(z, "a\\193.example.com.", 300, "192.0.2.61");
	add_a(z, "long-label-with-mixed-case-0123456789.example.com.", 300, "192.0.2.62");
	add_a(z, "www.example.com.", 300, "192.0.2.10");
	add_a(z, "www.example.com.", 300, "192.0.2.11");
	add_aaaa(z, "www.example.com.", 300, "2001:db8::10");
	add_txt(z, "www.example.com.", 300, "hello", NULL);
	/* ent.example.com is an empty non-terminal. */
	add_a(z, "host.ent.example.com.", 300, "192.0.2.30");
	/* Wildcards (RFC 4592): wild.example.com is an ENT above its wildcard. */
	add_a(z, "*.wild.example.com.", 120, "192.0.2.50");
	add_txt(z, "*.wild.example.com.", 120, "wild", NULL);
	add_txt(z, "exist.wild.example.com.", 300, "exists", NULL);
	add_a(z, "host.sub2.wild.example.com.", 300, "192.0.2.51");
	add_name(z, "*.wc.example.com.", DNS_T_CNAME, 300, "www.example.com.");
	/* CNAME chains. */
	for (int i = 1; i <= CHAIN_LEN; i++) {
		snprintf(owner, sizeof(owner), "c%d.example.com.", i);
		if (i < CHAIN_LEN)
			snprintf(target, sizeof(target), "c%d.example.com.", i + 1);
		else
			snprintf(target, sizeof(target), "www.example.com.");
		add_name(z, owner, DNS_T_CNAME, 300, target);
	}
	for (int i = 1; i <= LONG_CHAIN; i++) {
		snprintf(owner, sizeof(owner), "d%d.example.com.", i);
		if (i < LONG_CHAIN)
			snprintf(target, sizeof(target), "d%d.example.com.", i + 1);
		else
			snprintf(target, sizeof(target), "www.example.com.");
		add_name(z, owner, DNS_T_CNAME, 300, target);
	}
	add_name(z, "loop1.example.com.", DNS_T_CNAME, 300, "loop2.example.com.");
	add_name(z, "loop2.example.com.", DNS_T_CNAME, 300, "loop1.example.com.");
	add_name(z, "self.example.com.", DNS_T_CNAME, 300, "self.example.com.");
	add_name(z, "ext.example.com.", DNS_T_CNAME, 300, "www.other.test.");
	add_name(z, "dangling.example.com.", DNS_T_CNAME, 300, "nothere.example.com.");
	add_name(z, "cnodata.example.com.", DNS_T_CNAME, 300, "www.example.com.");
	add_name(z, "tosub.example.com.", DNS_T_CNAME, 300, "host.sub.example.com.");
	add_name(z, "towild.example.com.", DNS_T_CNAME, 300, "Deep.Wild.example.com.");
	/* Pools: pool.example.com has TXT in the zone as well; pools.example.com exists only
	 * because of the pool below it. */
	add_txt(z, "pool.example.com.", 300, "pool-txt", NULL);
	add_name(z, "topool.example.com.", DNS_T_CNAME, 300, "pool.example.com.");
	/* A delegation with in-zone glue and a DS, and one without DS. */
	add_name(z, "sub.example.com.", DNS_T_NS, 86400, "ns.sub.example.com.");
	add_name(z, "sub.example.com.", DNS_T_NS, 86400, "ns.elsewhere.test.");
	add_a(z, "ns.sub.example.com.", 86400, "192.0.2.53");
	add_aaaa(z, "ns.sub.example.com.", 86400, "2001:db8::53");
	uint8_t ds[4 + 32];
	dns_put16(ds, 12345);
	ds[2] = 13;
	ds[3] = 2;
	for (int i = 0; i < 32; i++)
		ds[4 + i] = (uint8_t)i;
	add(z, "sub.example.com.", DNS_T_DS, 86400, ds, sizeof(ds));
	add_name(z, "nods.example.com.", DNS_T_NS, 86400, "ns.elsewhere.test.");
	/*
	 * DNAMEs (RFC 6672): in the zone, out of it, to another DNAME, to
	 * itself, into a delegation, one whose synthesized names are too long,
	 * data occluded below one, and one that is also a pool's name.
	 */
	add_name(z, "dn.example.com.", DNS_T_DNAME, 7200, "target.example.com.");
	add_a(z, "target.example.com.", 300, "192.0.2.70");
	add_a(z, "www.target.example.com.", 300, "192.0.2.71");
	add_txt(z, "www.target.example.com.", 300, "www-target", NULL);
	add_name(z, "cn.target.example.com.", DNS_T_CNAME, 300, "www.example.com.");
	add_name(z, "a.target.example.com.", DNS_T_CNAME, 300, "b.dn.example.com.");
	add_a(z, "b.target.example.com.", 300, "192.0.2.72");
	add_a(z, "occ.dn.example.com.", 300, "192.0.2.79");
	add_txt(z, "dn.example.com.", 300, "beside-dname", NULL);
	add_name(z, "xdn.example.com.", DNS_T_DNAME, 600, "example.net.");
	add_name(z, "dn2.example.com.", DNS_T_DNAME, 900, "dn.example.com.");
	add_name(z, "todn.example.com.", DNS_T_CNAME, 300, "www.dn.example.com.");
	add_name(z, "dnself.example.com.", DNS_T_DNAME, 300, "dnself.example.com.");
	add_name(z, "todeleg.example.com.", DNS_T_DNAME, 300, "sub.example.com.");
	add_name(z, "long.example.com.", DNS_T_DNAME, 300,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
		 "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
		 "ddddddddddddddddddddddddddddddddddddddddddddddddddddddd.");
	add_name(z, "dnpool.example.com.", DNS_T_DNAME, 300, "target.example.com.");
	/* A CNAME loop of three, besides loop1 <-> loop2 and self. */
	add_name(z, "la.example.com.", DNS_T_CNAME, 300, "lb.example.com.");
	add_name(z, "lb.example.com.", DNS_T_CNAME, 300, "lc.example.com.");
	add_name(z, "lc.example.com.", DNS_T_CNAME, 300, "la.example.com.");
	/* A wildcard CNAME to a name the wildcard matches too. */
	add_name(z, "*.wl.example.com.", DNS_T_CNAME, 300, "a.wl.example.com.");
	/* Delegations to zones served here too, with and without DS (RFC 4035 3.1.4.1). */
	add_name(z, "kid.example.com.", DNS_T_NS, 86400, "ns.kid.example.com.");
	add_a(z, "ns.kid.example.com.", 86400, "192.0.2.54");
	add(z, "kid.example.com.", DNS_T_DS, 86400, ds, sizeof(ds));
	add_name(z, "nodskid.example.com.", DNS_T_NS, 86400, "ns.kid.example.com.");
	/* RRsets for the truncation tests. */
	for (int i = 0; i < BIG_COUNT; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 250, i % 250 + 1);
		add_a(z, "big.example.com.", 60, addr);
	}
	for (int i = 0; i < MID_COUNT; i++) {
		snprintf(addr, sizeof(addr), "10.1.0.%d", i + 1);
		add_a(z, "mid.example.com.", 60, addr);
	}
	for (int i = 0; i < M30_COUNT; i++) {
		snprintf(addr, sizeof(addr), "10.2.0.%d", i + 1);
		add_a(z, "m30.example.com.", 60, addr);
	}
	/*
	 * edge512/edge513: a response without EDNS of exactly 512 and 513
	 * bytes: header 12 + question 25 + RR 12 + rdata (463 or 464).
	 */
	char s255[256], s206[208];
	memset(s255, 'x', 255);
	s255[255] = 0;
	memset(s206, 'y', 206);
	s206[206] = 0;
	add_txt(z, "edge512.example.com.", 60, s255, s206);
	s206[206] = 'y';
	s206[207] = 0;
	add_txt(z, "edge513.example.com.", 60, s255, s206);
	zone_done(set, z);

	/* other.test: SOA TTL 60 below its MINIMUM 600, so negative TTLs are 60. */
	z = zone_start("other.test.");
	add_soa(z, "other.test.", 60, 7, 600);
	add_name(z, "other.test.", DNS_T_NS, 3600, "ns.other.test.");
	add_a(z, "ns.other.test.", 3600, "198.51.100.53");
	add_a(z, "www.other.test.", 300, "198.51.100.1");
	zone_done(set, z);

	/* A zone nested inside example.com, not delegated: the deepest zone answers. */
	z = zone_start("child.example.com.");
	add_soa(z, "child.example.com.", 3600, 1, 3600);
	add_name(z, "child.example.com.", DNS_T_NS, 3600, "ns1.example.com.");
	add_a(z, "www.child.example.com.", 300, "203.0.113.1");
	zone_done(set, z);

	/* The children of kid and nodskid, served by the same server. */
	z = zone_start("kid.example.com.");
	add_soa(z, "kid.example.com.", 3600, 5, 900);
	add_name(z, "kid.example.com.", DNS_T_NS, 3600, "ns.kid.example.com.");
	add_a(z, "ns.kid.example.com.", 3600, "192.0.2.54");
	add_a(z, "www.kid.example.com.", 300, "192.0.2.55");
	zone_done(set, z);
	z = zone_start("nodskid.example.com.");
	add_soa(z, "nodskid.example.com.", 3600, 6, 900);
	add_name(z, "nodskid.example.com.", DNS_T_NS, 3600, "ns.kid.example.com.");
	zone_done(set, z);
	/* A zone whose parent is not served here. */
	z = zone_start("orphan.test.");
	add_soa(z, "orphan.test.", 3600, 7, 900);
	add_name(z, "orphan.test.", DNS_T_NS, 3600, "ns.orphan.test.");
	add_a(z, "ns.orphan.test.", 3600, "198.51.100.9");
	zone_done(set, z);

	zone_set_finish(set);
	lb_pool_t *pools = gslb_calloc(4, sizeof(*pools));
	pool_init(&pools[0], "pool.example.com.", 2);
	pool_init(&pools[1], "a.pools.example.com.", 1);
	/* At a DNAME's own name a pool answers; below one it is not served. */
	pool_init(&pools[2], "dnpool.example.com.", 1);
	pool_init(&pools[3], "p.dnpool.example.com.", 1);
	query_data_t *s = gslb_calloc(1, sizeof(*s));
	s->zones = set;
	s->pools = lb_set_new(pools, 4, set);
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

/* ---- building queries ---- */

struct q {
	uint8_t b[1024];
	size_t len;
};

/* A query with one question; flags is the whole second header word. */
static void q_make(struct q *q, uint16_t id, uint16_t flags, const char *name, uint16_t qtype,
		   uint16_t qclass)
{
	memset(q, 0, sizeof(*q));
	dns_put16(q->b, id);
	dns_put16(q->b + 2, flags);
	dns_put16(q->b + 4, 1);
	int n = dns_name_from_str(q->b + 12, name);
	if (n < 0)
		bail_out("bad query name %s", name);
	q->len = 12 + (size_t)n;
	dns_put16(q->b + q->len, qtype);
	dns_put16(q->b + q->len + 2, qclass);
	q->len += 4;
}

static void q_std(struct q *q, const char *name, uint16_t qtype)
{
	q_make(q, 0x1234, DNS_F_RD, name, qtype, DNS_C_IN);
}

/* Append an OPT RR (RFC 6891 6.1.2) with raw option bytes; bumps ARCOUNT. */
static void q_opt(struct q *q, uint16_t udp, uint8_t version, bool do_bit, const void *opts,
		  size_t optlen)
{
	uint8_t *p = q->b + q->len;
	p[0] = 0;
	dns_put16(p + 1, DNS_T_OPT);
	dns_put16(p + 3, udp);
	p[5] = 0;
	p[6] = version;
	dns_put16(p + 7, do_bit ? DNS_EDNS_DO : 0);
	dns_put16(p + 9, (uint16_t)optlen);
	if (optlen)
		memcpy(p + 11, opts, optlen);
	q->len += 11 + optlen;
	dns_put16(q->b + 10, (uint16_t)(dns_get16(q->b + 10) + 1));
}

/* One EDNS option: code, length, data, into buf; returns its size. */
static size_t opt_put(uint8_t *buf, uint16_t code, const void *data, size_t len)
{
	dns_put16(buf, code);
	dns_put16(buf + 2, (uint16_t)len);
	if (len)
		memcpy(buf + 4, data, len);
	return 4 + len;
}

/* An ECS option body: family, source, scope, address bytes. */
static size_t ecs_body(uint8_t *buf, uint16_t family, uint8_t source, uint8_t scope,
		       const uint8_t *addr, size_t addrlen)
{
	dns_put16(buf, family);
	buf[2] = source;
	buf[3] = scope;
	if (addrlen)
		memcpy(buf + 4, addr, addrlen);
	return 4 + addrlen;
}

/* ---- decoding responses: bounds-checked, compression pointers followed ---- */

struct rr {
	int sec;		     /* 0 answer, 1 authority, 2 additional */
	uint8_t owner[DNS_NAME_MAX]; /* decompressed, case as in the message */
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rdoff;
};

#define MSG_RR_MAX 512

struct msg {
	const uint8_t *b;
	size_t len;
	bool valid;
	uint16_t id, flags, qd, an, ns, ar;
	uint8_t qname[DNS_NAME_MAX];
	uint16_t qtype, qclass;
	size_t qend;
	int nrr;
	struct rr rr[MSG_RR_MAX];
	/* The OPT RR, when there is exactly one (RFC 6891). */
	int nopt;
	uint16_t opt_udp;
	uint8_t opt_ext_rcode, opt_version;
	bool opt_do;
	bool opt_root_owner;
	bool opt_last;
	size_t opt_rdoff;
	uint16_t opt_rdlen;
};

/*
 * Read a possibly compressed name at pos into out (uncompressed wire,
 * case kept).  Returns the offset after the name at pos, or 0 when the
 * name is malformed: pointers must point backwards (as every compressor
 * writes them), so loops are impossible.
 */
static size_t name_read(const uint8_t *b, size_t len, size_t pos, uint8_t *out)
{
	size_t next = 0, n = 0;
	size_t limit = pos; /* a pointer must go before the name that uses it */
	for (;;) {
		if (pos >= len)
			return 0;
		uint8_t l = b[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 2 > len)
				return 0;
			size_t target = (size_t)(dns_get16(b + pos) & 0x3fff);
			if (!next)
				next = pos + 2;
			if (target >= limit)
				return 0;
			limit = target;
			pos = target;
			continue;
		}
		if (l & 0xc0)
			return 0;
		if (pos + 1 + l > len || n + 1 + l > DNS_NAME_MAX)
			return 0;
		memcpy(out + n, b + pos, 1 + (size_t)l);
		n += 1 + (size_t)l;
		pos += 1 + (size_t)l;
		if (l == 0)
			break;
	}
	return next ? next : pos;
}

/* Text form of a wire name, case kept, with a trailing dot. */
static const char *name_str(const uint8_t *n, char *buf, size_t cap)
{
	size_t o = 0;
	if (!*n) {
		snprintf(buf, cap, ".");
		return buf;
	}
	while (*n && o + *n + 2 < cap) {
		memcpy(buf + o, n + 1, *n);
		o += *n;
		buf[o++] = '.';
		n += 1 + *n;
	}
	buf[o] = 0;
	return buf;
}

static bool msg_decode(struct msg *m, const uint8_t *b, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->b = b;
	m->len = len;
	if (len < 12)
		return false;
	m->id = dns_get16(b);
	m->flags = dns_get16(b + 2);
	m->qd = dns_get16(b + 4);
	m->an = dns_get16(b + 6);
	m->ns = dns_get16(b + 8);
	m->ar = dns_get16(b + 10);
	size_t pos = 12;
	if (m->qd > 1)
		return false;
	if (m->qd == 1) {
		pos = name_read(b, len, pos, m->qname);
		if (!pos || pos + 4 > len)
			return false;
		m->qtype = dns_get16(b + pos);
		m->qclass = dns_get16(b + pos + 2);
		pos += 4;
	}
	m->qend = pos;
	int total = m->an + m->ns + m->ar;
	if (total > MSG_RR_MAX)
		return false;
	for (int i = 0; i < total; i++) {
		struct rr *r = &m->rr[i];
		r->sec = i < m->an ? 0 : i < m->an + m->ns ? 1 : 2;
		size_t start = pos;
		pos = name_read(b, len, pos, r->owner);
		if (!pos || pos + 10 > len)
			return false;
		r->type = dns_get16(b + pos);
		r->rclass = dns_get16(b + pos + 2);
		r->ttl = dns_get32(b + pos + 4);
		r->rdlen = dns_get16(b + pos + 8);
		r->rdoff = pos + 10;
		pos += 10;
		if (r->rdlen > len - pos)
			return false;
		pos += r->rdlen;
		if (r->type == DNS_T_OPT) {
			m->nopt++;
			m->opt_udp = r->rclass;
			m->opt_ext_rcode = (uint8_t)(r->ttl >> 24);
			m->opt_version = (uint8_t)(r->ttl >> 16);
			m->opt_do = (r->ttl & DNS_EDNS_DO) != 0;
			m->opt_root_owner = b[start] == 0;
			m->opt_last = i == total - 1 && r->sec == 2;
			m->opt_rdoff = r->rdoff;
			m->opt_rdlen = r->rdlen;
		}
	}
	m->nrr = total;
	/* A response has no trailing bytes. */
	return pos == len;
}

static int rcode_of(const struct msg *m)
{
	return (m->flags & 0xf) | (m->nopt ? m->opt_ext_rcode << 4 : 0);
}

/* Find EDNS option code in the response's OPT; returns its data or NULL. */
static const uint8_t *opt_find(const struct msg *m, uint16_t code, uint16_t *len)
{
	if (m->nopt != 1)
		return NULL;
	size_t p = m->opt_rdoff, end = m->opt_rdoff + m->opt_rdlen;
	while (p + 4 <= end) {
		uint16_t c = dns_get16(m->b + p), l = dns_get16(m->b + p + 2);
		if (p + 4 + l > end)
			return NULL;
		if (c == code) {
			*len = l;
			return m->b + p + 4;
		}
		p += 4 + l;
	}
	return NULL;
}

static int count_type(const struct msg *m, int sec, uint16_t type)
{
	int n = 0;
	for (int i = 0; i < m->nrr; i++)
		n += m->rr[i].sec == sec && m->rr[i].type == type;
	return n;
}

static const struct rr *first_of(const struct msg *m, int sec, uint16_t type)
{
	for (int i = 0; i < m->nrr; i++)
		if (m->rr[i].sec == sec && m->rr[i].type == type)
			return &m->rr[i];
	return NULL;
}

/* Owner (case-sensitive) of rr equals text name. */
static bool owner_is(const struct rr *r, const char *name)
{
	char buf[1024];
	return r && strcmp(name_str(r->owner, buf, sizeof(buf)), name) == 0;
}

/* Owner of rr equals text name, ignoring case (names the server wrote from zone data). */
static bool owner_ci(const struct rr *r, const char *name)
{
	char buf[1024];
	return r && strcasecmp(name_str(r->owner, buf, sizeof(buf)), name) == 0;
}

/* A name inside the rdata of rr at byte offset off, compared without case. */
static bool rdata_name_is(const struct msg *m, const struct rr *r, size_t off, const char *name)
{
	uint8_t n[DNS_NAME_MAX];
	char buf[1024];
	if (!r || !name_read(m->b, r->rdoff + r->rdlen, r->rdoff + off, n))
		return false;
	return strcasecmp(name_str(n, buf, sizeof(buf)), name) == 0;
}

static bool rdata_a_is(const struct msg *m, const struct rr *r, const char *addr)
{
	uint8_t a[16];
	int af = r && r->type == DNS_T_AAAA ? AF_INET6 : AF_INET;
	size_t l = af == AF_INET6 ? 16 : 4;
	return r && inet_pton(af, addr, a) == 1 && r->rdlen == l &&
	       memcmp(m->b + r->rdoff, a, l) == 0;
}

static bool rdata_is(const struct msg *m, const struct rr *r, const void *data, size_t len)
{
	return r && r->rdlen == len && memcmp(m->b + r->rdoff, data, len) == 0;
}

/* ---- asking ---- */

static query_data_t *snap;
static query_ctx_t ctx_full; /* server id, version and NSID configured */
static query_ctx_t ctx_bare; /* nothing configured */
static uint8_t resp[DNS_MSG_MAX];
static struct msg m;
static int responses, bad_responses;

/*
 * Ask and decode.  Every response must decode exactly with our decoder,
 * be accepted by ldns (an independent parser) and carry the query's ID
 * and QR=1; failures are reported at the end as one assertion per kind.
 */
/*
 * The answer path allocates nothing (design.md): every call to
 * query_answer() below runs with this program's own malloc family counting.
 * Under AddressSanitizer the allocator belongs to ASan, so the count is
 * skipped there.
 */
#include "alloc_count.h"
static unsigned long counted_queries;
static const struct sockaddr *peer_addr; /* the client's address for query_answer(); NULL none */

static size_t ask_with(query_ctx_t *ctx, const query_data_t *s, const struct q *q, int tr)
{
	memset(resp, 0xee, 64);
	alloc_counting = true;
	size_t n = query_answer(ctx, s, q->b, q->len, resp, tr, peer_addr);
	alloc_counting = false;
	counted_queries++;
	memset(&m, 0, sizeof(m));
	if (!n)
		return 0;
	responses++;
	bool good = msg_decode(&m, resp, n);
	ldns_pkt *pkt = NULL;
	if (ldns_wire2pkt(&pkt, resp, n) != LDNS_STATUS_OK)
		good = false;
	ldns_pkt_free(pkt);
	if (m.id != dns_get16(q->b) || !(m.flags & DNS_F_QR) || (m.flags & DNS_F_RA))
		good = false;
	if (!good) {
		bad_responses++;
		diag("response of %zu bytes failed to decode or had a bad header", n);
	}
	return n;
}

static size_t ask(const struct q *q, int tr)
{
	return ask_with(&ctx_full, snap, q, tr);
}

static bool question_echoed(const struct q *q)
{
	size_t qlen = m.qend;
	return m.qd == 1 && qlen <= q->len && m.len >= qlen &&
	       memcmp(m.b + 12, q->b + 12, qlen - 12) == 0;
}

static bool aa(void)
{
	return (m.flags & DNS_F_AA) != 0;
}

static bool tc(void)
{
	return (m.flags & DNS_F_TC) != 0;
}

static bool counts(int an, int ns, int ar)
{
	bool r = m.an == an && m.ns == ns && m.ar == ar;
	if (!r)
		diag("  counts %u/%u/%u, want %d/%d/%d", m.an, m.ns, m.ar, an, ns, ar);
	return r;
}

/* The negative-answer authority: one SOA of apex with ttl, and nothing else. */
static bool negative_soa(const char *apex, uint32_t ttl)
{
	const struct rr *soa = first_of(&m, 1, DNS_T_SOA);
	char buf[1024];
	bool r = m.ns == 1 && soa && soa->ttl == ttl &&
		 strcasecmp(name_str(soa->owner, buf, sizeof(buf)), apex) == 0 &&
		 soa->rclass == DNS_C_IN;
	if (!r && soa)
		diag("  SOA %s ttl %u", buf, soa->ttl);
	return r;
}

/* ---- the tests, grouped by README "DNS behaviour" rule ---- */

static void test_drop(void)
{
	struct q q;
	q_std(&q, "www.example.com.", DNS_T_A);
	is_int((long long)query_answer(&ctx_full, snap, q.b, 0, resp, QUERY_UDP, NULL), 0,
	       "empty packet: no response");
	is_int((long long)query_answer(&ctx_full, snap, q.b, 11, resp, QUERY_UDP, NULL), 0,
	       "11-byte packet: no response");
	q.b[2] |= 0x80;
	is_int((long long)query_answer(&ctx_full, snap, q.b, q.len, resp, QUERY_UDP, NULL), 0,
	       "QR=1: no response");
	is_int((long long)query_answer(&ctx_full, snap, q.b, q.len, resp, QUERY_TCP, NULL), 0,
	       "QR=1 over TCP: no response");
}

static void test_positive(void)
{
	struct q q;
	q_make(&q, 0xbeef, DNS_F_RD, "WwW.ExAmPlE.CoM.", DNS_T_A, DNS_C_IN);
	ask(&q, QUERY_UDP);
	is_int(m.id, 0xbeef, "ID copied");
	ok(m.flags & DNS_F_QR, "QR=1");
	is_int((m.flags >> 11) & 0xf, 0, "opcode QUERY");
	ok(m.flags & DNS_F_RD, "RD copied (1)");
	ok(!(m.flags & DNS_F_RA), "RA=0");
	ok(aa(), "AA=1 on a positive answer");
	ok(!tc(), "TC=0");
	is_int(rcode_of(&m), DNS_RCODE_NOERROR, "NOERROR");
	ok(counts(2, 0, 0), "two A in the answer, empty authority and additional");
	ok(question_echoed(&q), "question echoed byte for byte (client case)");
	ok(owner_is(&m.rr[0], "WwW.ExAmPlE.CoM.") && owner_is(&m.rr[1], "WwW.ExAmPlE.CoM."),
	   "answer owners in the client's case");
	ok(m.rr[0].type == DNS_T_A && m.rr[0].rclass == DNS_C_IN && m.rr[0].ttl == 300 &&
		   m.rr[1].ttl == 300,
	   "type A, class IN, TTL 300");
	ok((rdata_a_is(&m, &m.rr[0], "192.0.2.10") && rdata_a_is(&m, &m.rr[1], "192.0.2.11")) ||
		   (rdata_a_is(&m, &m.rr[0], "192.0.2.11") &&
		    rdata_a_is(&m, &m.rr[1], "192.0.2.10")),
	   "the two addresses of www");

	/* Case folding touches A-Z only: not @ [ ` { nor bytes above 127 (RFC 4343). */
	static const struct {
		const char *name;
		const char *addr; /* NULL: NXDOMAIN */
	} fold[] = {
		{ "\\@\\[\\`\\{.Example.Com.", "192.0.2.60" },
		{ "\\`\\{\\`\\{.example.com.", NULL },
		{ "\\@\\[\\@\\[.example.com.", NULL },
		{ "A\\193.example.com.", "192.0.2.61" },
		{ "a\\225.example.com.", NULL },
		{ "Long-Label-With-MiXeD-Case-0123456789.EXAMPLE.com.", "192.0.2.62" },
		{ "LONG-LABEL-WITH-MIXED-CASE-0123456789.EXAMPLE.COM.", "192.0.2.62" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fold); i++) {
		q_make(&q, 7, 0, fold[i].name, DNS_T_A, DNS_C_IN);
		ask(&q, QUERY_UDP);
		if (fold[i].addr)
			ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 1 &&
				   rdata_a_is(&m, &m.rr[0], fold[i].addr),
			   "case folding: %s answers %s", fold[i].name, fold[i].addr);
		else
			ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN, "case folding: %s is NXDOMAIN",
			   fold[i].name);
	}

	q_make(&q, 0x0001, 0, "www.example.com.", DNS_T_A, DNS_C_IN);
	ask(&q, QUERY_UDP);
	ok(!(m.flags & DNS_F_RD) && aa() && m.an == 2, "RD copied (0)");
	is_int(m.id, 1, "ID 1 copied");

	q_std(&q, "www.example.com.", DNS_T_AAAA);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && rdata_a_is(&m, &m.rr[0], "2001:db8::10") && aa(), "AAAA answer");

	q_std(&q, "www.example.com.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && rdata_is(&m, &m.rr[0], "\5hello", 6), "TXT answer");

	q_std(&q, "Example.COM.", DNS_T_MX);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && m.rr[0].type == DNS_T_MX && dns_get16(m.b + m.rr[0].rdoff) == 10 &&
		   rdata_name_is(&m, &m.rr[0], 2, "mail.example.com."),
	   "MX at the apex, target decompresses to mail.example.com");
	ok(owner_is(&m.rr[0], "Example.COM."), "apex owner in the client's case");

	q_std(&q, "example.com.", DNS_T_NS);
	ask(&q, QUERY_UDP);
	ok(counts(2, 0, 0) && aa(), "NS at the apex: answer only, no additional (no glue)");
	ok(count_type(&m, 0, DNS_T_NS) == 2 &&
		   ((rdata_name_is(&m, &m.rr[0], 0, "ns1.example.com.") &&
		     rdata_name_is(&m, &m.rr[1], 0, "ns2.example.com.")) ||
		    (rdata_name_is(&m, &m.rr[0], 0, "ns2.example.com.") &&
		     rdata_name_is(&m, &m.rr[1], 0, "ns1.example.com."))),
	   "NS targets ns1 and ns2");

	q_std(&q, "example.com.", DNS_T_SOA);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && m.rr[0].type == DNS_T_SOA && m.rr[0].ttl == 3600 &&
		   rdata_name_is(&m, &m.rr[0], 0, "ns1.example.com."),
	   "SOA query: the SOA with its own TTL");

	q_std(&q, "www.child.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && counts(1, 0, 0) && rdata_a_is(&m, &m.rr[0], "203.0.113.1"),
	   "the deepest zone answers (child.example.com)");
	q_std(&q, "nope.child.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && negative_soa("child.example.com.", 3600),
	   "NXDOMAIN in the nested zone has the nested zone's SOA");

	q_std(&q, "www.other.test.", DNS_T_A);
	ask(&q, QUERY_TCP);
	ok(aa() && counts(1, 0, 0) && rdata_a_is(&m, &m.rr[0], "198.51.100.1"),
	   "second zone, over TCP");
}

static void test_negative(void)
{
	struct q q;
	q_std(&q, "www.example.com.", DNS_T_MX);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && m.an == 0 && m.ar == 0,
	   "NODATA: NOERROR, AA, empty answer");
	ok(negative_soa("example.com.", 300), "NODATA: one SOA, TTL min(3600, 300) = 300");
	const struct rr *soa = first_of(&m, 1, DNS_T_SOA);
	ok(soa && rdata_name_is(&m, soa, 0, "ns1.example.com."), "SOA MNAME decompresses");

	q_make(&q, 0x4242, DNS_F_RD, "NoPe.Example.Com.", DNS_T_A, DNS_C_IN);
	ask(&q, QUERY_UDP);
	is_int(rcode_of(&m), DNS_RCODE_NXDOMAIN, "NXDOMAIN");
	ok(aa() && m.an == 0 && m.ar == 0 && question_echoed(&q), "NXDOMAIN: AA, question echoed");
	ok(negative_soa("example.com.", 300), "NXDOMAIN: one SOA, TTL 300");
	soa = first_of(&m, 1, DNS_T_SOA);
	ok(soa != NULL, "SOA present");
	ok(owner_is(soa, "Example.Com."), "SOA owner is the apex in the client's case");
	/* serial is after the two names */
	if (soa) {
		uint8_t n1[DNS_NAME_MAX];
		size_t p = name_read(m.b, m.len, soa->rdoff, n1);
		p = p ? name_read(m.b, m.len, p, n1) : 0;
		ok(p && p + 20 == soa->rdoff + soa->rdlen && dns_get32(m.b + p) == 2024010101 &&
			   dns_get32(m.b + p + 16) == 300,
		   "SOA rdata: serial and MINIMUM intact");
	} else {
		ok(false, "SOA rdata: serial and MINIMUM intact");
	}

	q_std(&q, "a.b.c.nope.example.com.", DNS_T_AAAA);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && negative_soa("example.com.", 300),
	   "NXDOMAIN deep below the apex");

	q_std(&q, "nope.other.test.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && negative_soa("other.test.", 60),
	   "NXDOMAIN: TTL min(SOA TTL 60, MINIMUM 600) = 60");
	q_std(&q, "www.other.test.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 && negative_soa("other.test.", 60),
	   "NODATA in other.test: TTL 60");

	q_std(&q, "ent.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && m.an == 0 &&
		   negative_soa("example.com.", 300),
	   "empty non-terminal: NODATA, not NXDOMAIN");
	q_std(&q, "ent.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 && negative_soa("example.com.", 300),
	   "ANY at an empty non-terminal: NODATA");
	q_std(&q, "x.ent.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN, "below an ENT with no such name: NXDOMAIN");
}

static void test_wildcard(void)
{
	struct q q;
	q_std(&q, "Foo.Wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && counts(1, 0, 0),
	   "wildcard match: one A, AA");
	ok(owner_is(&m.rr[0], "Foo.Wild.example.com.") && m.rr[0].ttl == 120 &&
		   rdata_a_is(&m, &m.rr[0], "192.0.2.50"),
	   "synthesized owner is the query name (RFC 4592 4.3), data of the wildcard");

	q_std(&q, "a.b.c.wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && owner_is(&m.rr[0], "a.b.c.wild.example.com.") &&
		   rdata_a_is(&m, &m.rr[0], "192.0.2.50"),
	   "wildcard matches several labels");

	q_std(&q, "foo.wild.example.com.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && rdata_is(&m, &m.rr[0], "\4wild", 5), "wildcard TXT");

	q_std(&q, "foo.wild.example.com.", DNS_T_MX);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && m.an == 0 &&
		   negative_soa("example.com.", 300),
	   "wildcard NODATA: NOERROR with SOA");

	q_std(&q, "exist.wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 && negative_soa("example.com.", 300),
	   "an existing name blocks the wildcard (NODATA, not the wildcard A)");
	q_std(&q, "exist.wild.example.com.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && rdata_is(&m, &m.rr[0], "\6exists", 7),
	   "the existing name answers its own data");

	q_std(&q, "sub2.wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 && negative_soa("example.com.", 300),
	   "an empty non-terminal blocks the wildcard (RFC 4592 2.2.2)");
	q_std(&q, "x.sub2.wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && negative_soa("example.com.", 300),
	   "below an ENT closest encloser without a wildcard: NXDOMAIN");
	q_std(&q, "x.exist.wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN,
	   "below an existing name without a wildcard: NXDOMAIN");

	q_std(&q, "wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0,
	   "the wildcard's parent (an ENT) is NODATA");
	q_std(&q, "*.wild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && owner_is(&m.rr[0], "*.wild.example.com."),
	   "the literal wildcard name answers");
	q_std(&q, "foo.wild.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && m.rr[0].type == DNS_T_HINFO &&
		   owner_is(&m.rr[0], "foo.wild.example.com."),
	   "ANY at a wildcard-synthesized name: HINFO");

	q_std(&q, "Q.wc.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(counts(3, 0, 0) && m.rr[0].type == DNS_T_CNAME &&
		   owner_is(&m.rr[0], "Q.wc.example.com.") &&
		   rdata_name_is(&m, &m.rr[0], 0, "www.example.com."),
	   "wildcard CNAME synthesized with the query name as owner");
	ok(count_type(&m, 0, DNS_T_A) == 2 && m.rr[1].type == DNS_T_A &&
		   owner_ci(&m.rr[1], "www.example.com."),
	   "wildcard CNAME followed to the target's A");

	q_std(&q, "towild.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(counts(2, 0, 0) && m.rr[0].type == DNS_T_CNAME && m.rr[1].type == DNS_T_A &&
		   rdata_a_is(&m, &m.rr[1], "192.0.2.50") &&
		   owner_ci(&m.rr[1], "deep.wild.example.com."),
	   "CNAME into a wildcard: synthesized owner is the CNAME target");
}

static void test_cname(void)
{
	struct q q;
	char want[64], buf[1024];
	q_std(&q, "C1.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa(), "chain of %d CNAMEs: NOERROR, AA", CHAIN_LEN);
	if (!is_int(count_type(&m, 0, DNS_T_CNAME), CHAIN_LEN,
		    "all %d CNAMEs of the chain are in the answer", CHAIN_LEN))
		diag("  (README, DNS behaviour: in-zone chains are followed up to 8 links)");
	is_int(count_type(&m, 0, DNS_T_A), 2, "the final RRset (www A) ends the %d-link chain",
	       CHAIN_LEN);
	bool linked = owner_is(&m.rr[0], "C1.example.com.");
	for (int i = 1; i < m.an && i < m.nrr; i++) {
		uint8_t prev[DNS_NAME_MAX];
		/* RRs of the final RRset share the owner of the first of them. */
		if (m.rr[i - 1].type == DNS_T_A && m.rr[i].type == DNS_T_A)
			continue;
		if (m.rr[i - 1].type != DNS_T_CNAME ||
		    !name_read(m.b, m.len, m.rr[i - 1].rdoff, prev) ||
		    strcasecmp(name_str(prev, buf, sizeof(buf)),
			       name_str(m.rr[i].owner, want, sizeof(want))) != 0)
			linked = false;
	}
	ok(linked && m.an >= 2, "each owner is the previous CNAME's target, first in client case");
	ok(m.ns == 0 && m.ar == 0, "chain answer: empty authority and additional");

	q_std(&q, "c2.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(count_type(&m, 0, DNS_T_CNAME) == CHAIN_LEN - 1 && count_type(&m, 0, DNS_T_A) == 2,
	   "a %d-link chain: %d CNAMEs and the A RRset", CHAIN_LEN - 1, CHAIN_LEN - 1);
	snprintf(want, sizeof(want), "c%d.example.com.", CHAIN_LEN - 2);
	q_std(&q, want, DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(count_type(&m, 0, DNS_T_CNAME) == 3 && count_type(&m, 0, DNS_T_A) == 2,
	   "a 3-link chain: 3 CNAMEs and the A RRset");

	q_std(&q, "d1.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an >= 8 && m.an <= 9 &&
		   count_type(&m, 0, DNS_T_A) == 0,
	   "a %d-link chain stops after 8 links (got %u records)", LONG_CHAIN, m.an);

	q_std(&q, "loop1.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an >= 2 && m.an <= 9 &&
		   count_type(&m, 0, DNS_T_CNAME) == m.an,
	   "a CNAME loop stops (got %u CNAMEs)", m.an);
	q_std(&q, "self.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an >= 1 && m.an <= 9 &&
		   count_type(&m, 0, DNS_T_CNAME) == m.an,
	   "a CNAME to itself stops (got %u)", m.an);

	q_std(&q, "c1.example.com.", DNS_T_CNAME);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && m.rr[0].type == DNS_T_CNAME &&
		   rdata_name_is(&m, &m.rr[0], 0, "c2.example.com."),
	   "qtype CNAME: the CNAME only, not followed");

	q_std(&q, "ext.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && counts(1, 0, 0) &&
		   rdata_name_is(&m, &m.rr[0], 0, "www.other.test."),
	   "CNAME out of the zone: not followed, even into another served zone");

	q_std(&q, "dangling.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(m.an == 1 && m.rr[0].type == DNS_T_CNAME && rcode_of(&m) == DNS_RCODE_NXDOMAIN &&
		   negative_soa("example.com.", 300),
	   "CNAME to a missing in-zone name: CNAME, NXDOMAIN, SOA (RFC 6604 2.1)");

	q_std(&q, "cnodata.example.com.", DNS_T_MX);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 1 && m.rr[0].type == DNS_T_CNAME &&
		   negative_soa("example.com.", 300),
	   "CNAME to a name without the type: CNAME and SOA, NOERROR");

	q_std(&q, "tosub.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an >= 1 && m.rr[0].type == DNS_T_CNAME &&
		   count_type(&m, 0, DNS_T_A) == 0,
	   "CNAME below a zone cut: the CNAME, no data from below the cut");
}

static void test_referral(void)
{
	struct q q;
	q_std(&q, "Host.Sub.Example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(!aa(), "referral: AA=0");
	is_int(rcode_of(&m), DNS_RCODE_NOERROR, "referral: NOERROR");
	ok(m.an == 0 && m.ns == 2 && count_type(&m, 1, DNS_T_NS) == 2,
	   "referral: two NS in authority, empty answer");
	const struct rr *ns = first_of(&m, 1, DNS_T_NS);
	ok(owner_is(ns, "Sub.Example.com.") && ns->ttl == 86400,
	   "NS owner is the cut, in the client's case");
	ok(count_type(&m, 1, DNS_T_SOA) == 0, "referral: no SOA");
	ok(m.ar == 2 && count_type(&m, 2, DNS_T_A) == 1 && count_type(&m, 2, DNS_T_AAAA) == 1,
	   "referral: in-zone glue A and AAAA in additional");
	const struct rr *ga = first_of(&m, 2, DNS_T_A), *g6 = first_of(&m, 2, DNS_T_AAAA);
	char buf[1024];
	ok(ga && rdata_a_is(&m, ga, "192.0.2.53") &&
		   strcasecmp(name_str(ga->owner, buf, sizeof(buf)), "ns.sub.example.com.") == 0,
	   "glue A of ns.sub.example.com");
	ok(g6 && rdata_a_is(&m, g6, "2001:db8::53"), "glue AAAA of ns.sub.example.com");
	bool targets = false;
	for (int i = 0; i < m.nrr; i++)
		if (m.rr[i].sec == 1 && rdata_name_is(&m, &m.rr[i], 0, "ns.elsewhere.test."))
			targets = true;
	ok(targets, "out-of-zone NS target kept, without glue");

	q_std(&q, "sub.example.com.", DNS_T_NS);
	ask(&q, QUERY_UDP);
	ok(!aa() && m.an == 0 && count_type(&m, 1, DNS_T_NS) == 2,
	   "NS query at the cut: a referral, not an authoritative answer");
	q_std(&q, "sub.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(!aa() && m.an == 0 && count_type(&m, 1, DNS_T_NS) == 2, "A at the cut: referral");
	q_std(&q, "ns.sub.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(!aa() && m.an == 0 && count_type(&m, 1, DNS_T_NS) == 2,
	   "glue name itself: referral, not an answer");

	q_std(&q, "Sub.example.com.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(aa() && counts(1, 0, 0) && m.rr[0].type == DNS_T_DS && m.rr[0].rdlen == 36 &&
		   owner_is(&m.rr[0], "Sub.example.com."),
	   "DS at the cut: answered by the parent, AA=1");
	q_std(&q, "x.sub.example.com.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(!aa() && m.an == 0 && count_type(&m, 1, DNS_T_NS) == 2, "DS below the cut: referral");
	q_std(&q, "nods.example.com.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 &&
		   negative_soa("example.com.", 300),
	   "DS at a cut without DS: parent-side NODATA with SOA");
	q_std(&q, "nods.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(!aa() && count_type(&m, 1, DNS_T_NS) == 1, "second cut: referral");
}

static void test_refused(void)
{
	struct q q;
	q_make(&q, 0x7777, DNS_F_RD, "WWW.Example.ORG.", DNS_T_A, DNS_C_IN);
	ask(&q, QUERY_UDP);
	is_int(rcode_of(&m), DNS_RCODE_REFUSED, "name in no zone: REFUSED");
	ok(!aa() && counts(0, 0, 0) && question_echoed(&q),
	   "REFUSED: AA=0, no records, question echoed");
	ok(m.flags & DNS_F_RD, "REFUSED: RD copied");
	q_std(&q, "com.", DNS_T_NS);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_REFUSED && !aa(), "parent of a zone: REFUSED");
	q_std(&q, ".", DNS_T_NS);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_REFUSED && counts(0, 0, 0), "root: REFUSED");
	q_std(&q, "xexample.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_REFUSED, "a name that only ends like the apex: REFUSED");

	q_std(&q, "www.example.com.", DNS_T_A);
	ask_with(&ctx_full, NULL, &q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_REFUSED && !aa() && counts(0, 0, 0) && question_echoed(&q),
	   "no snapshot: REFUSED, question echoed");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 4096, 0, false, NULL, 0);
	ask_with(&ctx_full, NULL, &q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_REFUSED && m.nopt == 1,
	   "no snapshot with EDNS: REFUSED and an OPT");
}

static void chaos(query_ctx_t *ctx, const char *name, uint16_t qtype, const char *want,
		  const char *what)
{
	struct q q;
	q_make(&q, 0x0c0c, 0, name, qtype, DNS_C_CH);
	ask_with(ctx, snap, &q, QUERY_UDP);
	if (!want) {
		ok(rcode_of(&m) == DNS_RCODE_REFUSED && m.an == 0 && !aa() && question_echoed(&q),
		   "CH %s: REFUSED", what);
		return;
	}
	size_t wl = strlen(want);
	uint8_t rd[300];
	rd[0] = (uint8_t)wl;
	memcpy(rd + 1, want, wl);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 1 && m.rr[0].type == DNS_T_TXT &&
		   m.rr[0].rclass == DNS_C_CH && rdata_is(&m, &m.rr[0], rd, wl + 1) &&
		   owner_is(&m.rr[0], name) && question_echoed(&q),
	   "CH %s: TXT \"%s\"", what, want);
}

static void test_classes(void)
{
	struct q q;
	chaos(&ctx_full, "version.bind.", DNS_T_TXT, "gslbd-test 1.0", "version.bind");
	chaos(&ctx_full, "VERSION.Bind.", DNS_T_TXT, "gslbd-test 1.0", "VERSION.Bind (any case)");
	chaos(&ctx_full, "version.server.", DNS_T_TXT, "gslbd-test 1.0", "version.server");
	chaos(&ctx_full, "id.server.", DNS_T_TXT, "dns-1.example", "id.server");
	chaos(&ctx_full, "hostname.bind.", DNS_T_TXT, "dns-1.example", "hostname.bind");
	chaos(&ctx_full, "version.bind.", DNS_T_ANY, "gslbd-test 1.0", "ANY version.bind");
	chaos(&ctx_bare, "version.bind.", DNS_T_TXT, NULL, "version.bind unset");
	chaos(&ctx_bare, "version.server.", DNS_T_TXT, NULL, "version.server unset");
	chaos(&ctx_bare, "id.server.", DNS_T_TXT, NULL, "id.server unset");
	chaos(&ctx_bare, "hostname.bind.", DNS_T_TXT, NULL, "hostname.bind unset");
	chaos(&ctx_full, "authors.bind.", DNS_T_TXT, NULL, "authors.bind (not served)");
	chaos(&ctx_full, "www.example.com.", DNS_T_TXT, NULL, "a zone name in class CH");

	/* A long version string is split into 255-byte character-strings. */
	static char longver[301];
	query_conf_t conf = { .server_version = longver };
	query_ctx_t c;
	memset(longver, 'v', 300);
	query_ctx_init(&c, &conf, 7);
	q_make(&q, 1, 0, "version.bind.", DNS_T_TXT, DNS_C_CH);
	ask_with(&c, snap, &q, QUERY_TCP);
	ok(m.an == 1 && m.rr[0].rdlen == 302 && m.b[m.rr[0].rdoff] == 255 &&
		   m.b[m.rr[0].rdoff + 256] == 45,
	   "a 300-character version: two character-strings (255 + 45)");
	query_ctx_fini(&c);

	q_make(&q, 2, 0, "WWW.example.com.", DNS_T_A, DNS_C_ANY);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && counts(2, 0, 0) &&
		   m.rr[0].rclass == DNS_C_IN && m.qclass == DNS_C_ANY,
	   "class ANY answered as IN (records of class IN, question class ANY echoed)");
	q_make(&q, 2, 0, "nope.example.com.", DNS_T_A, DNS_C_ANY);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && negative_soa("example.com.", 300),
	   "class ANY NXDOMAIN as IN");
	const uint16_t others[] = { 2, 4, 42, DNS_C_NONE, 65280 };
	for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
		q_make(&q, 3, 0, "www.example.com.", DNS_T_A, others[i]);
		ask(&q, QUERY_UDP);
		ok(rcode_of(&m) == DNS_RCODE_REFUSED && !aa() && counts(0, 0, 0) &&
			   question_echoed(&q),
		   "class %u: REFUSED", others[i]);
	}
}

static void test_any(void)
{
	struct q q;
	q_std(&q, "wWw.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && counts(1, 0, 0),
	   "ANY: exactly one record (RFC 8482)");
	ok(m.rr[0].type == DNS_T_HINFO && m.rr[0].rclass == DNS_C_IN &&
		   rdata_is(&m, &m.rr[0], "\7RFC8482\0", 9),
	   "ANY: HINFO \"RFC8482\" \"\"");
	ok(owner_is(&m.rr[0], "wWw.example.com."), "ANY: owner is the query name");
	q_std(&q, "example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && m.rr[0].type == DNS_T_HINFO, "ANY at the apex: HINFO");
	q_std(&q, "nope.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && m.an == 0 && negative_soa("example.com.", 300),
	   "ANY for a missing name: NXDOMAIN as usual");
	q_std(&q, "host.sub.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(!aa() && count_type(&m, 1, DNS_T_NS) == 2, "ANY below a cut: referral");
}

static void test_notimp(void)
{
	struct q q;
	const int opcodes[] = { 1, 2, 4, 5, 15 };
	for (size_t i = 0; i < ARRAY_SIZE(opcodes); i++) {
		q_make(&q, 0x0500, (uint16_t)(opcodes[i] << 11 | DNS_F_RD), "www.example.com.",
		       DNS_T_A, DNS_C_IN);
		ask(&q, QUERY_UDP);
		ok(rcode_of(&m) == DNS_RCODE_NOTIMP && !aa() && m.an == 0 && m.ns == 0 &&
			   ((m.flags >> 11) & 0xf) == opcodes[i] && (m.flags & DNS_F_RD),
		   "opcode %d: NOTIMP, opcode and RD copied, AA=0", opcodes[i]);
	}
	/* README "DNS behaviour": "OPT in the response exactly when the query had one". */
	q_make(&q, 0x0501, 4 << 11, "example.com.", DNS_T_SOA, DNS_C_IN);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOTIMP && m.nopt == 1,
	   "opcode NOTIFY with EDNS: NOTIMP with an OPT");
	q_std(&q, "example.com.", DNS_T_AXFR);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_NOTIMP && m.nopt == 1, "AXFR with EDNS: NOTIMP with an OPT");
	const uint16_t types[] = { DNS_T_AXFR, DNS_T_IXFR, DNS_T_MAILA, DNS_T_MAILB,
				   128,	       200,	   DNS_T_TKEY,	DNS_T_TSIG };
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		q_std(&q, "example.com.", types[i]);
		ask(&q, i % 2 ? QUERY_TCP : QUERY_UDP);
		ok(rcode_of(&m) == DNS_RCODE_NOTIMP && !aa() && counts(0, 0, 0) &&
			   question_echoed(&q),
		   "qtype %u: NOTIMP, AA=0, question echoed", types[i]);
	}
	q_std(&q, "www.example.com.", DNS_T_AXFR);
	ask(&q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_NOTIMP, "AXFR of a non-apex name: NOTIMP");
	q_std(&q, "www.example.com.", 127);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && m.an == 0, "qtype 127 (data type): NODATA");
	q_std(&q, "www.example.com.", 256);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && m.an == 0, "qtype 256: NODATA");
}

/* A FORMERR response: rcode 1, AA=0, QR, ID; no answer records. */
static void expect_formerr(const struct q *q, const char *what)
{
	size_t n = ask(q, QUERY_UDP);
	ok(n > 0 && rcode_of(&m) == DNS_RCODE_FORMERR && !aa() && m.an == 0 && m.ns == 0 &&
		   m.id == dns_get16(q->b),
	   "%s: FORMERR, AA=0", what);
}

static void test_formerr(void)
{
	struct q q;
	q_std(&q, "www.example.com.", DNS_T_A);
	dns_put16(q.b + 4, 0);
	q.len = 12;
	expect_formerr(&q, "QDCOUNT 0");
	q_std(&q, "www.example.com.", DNS_T_A);
	memcpy(q.b + q.len, q.b + 12, q.len - 12);
	q.len += q.len - 12;
	dns_put16(q.b + 4, 2);
	expect_formerr(&q, "QDCOUNT 2");
	q_std(&q, "www.example.com.", DNS_T_A);
	dns_put16(q.b + 4, 2);
	expect_formerr(&q, "QDCOUNT 2 with one question");

	/* Interface 8: OPT in the response exactly when the query had one, FORMERRs included. */
	uint8_t ecs[8], eopts[16];
	memcpy(ecs, "\x00\x01\x18\x00\xc0\x00\x02", 7);
	size_t ol = opt_put(eopts, DNS_EDNS_ECS, ecs, 7);
	q.len = 12;
	dns_put16(q.b + 4, 0);
	dns_put16(q.b + 10, 0);
	q_opt(&q, 4096, 0, true, eopts, ol);
	expect_formerr(&q, "QDCOUNT 0 with an OPT");
	ok(m.qd == 0 && m.nopt == 1 && m.ar == 1 && m.opt_last && !opt_find(&m, DNS_EDNS_ECS, NULL),
	   "QDCOUNT 0: the OPT echoed, bare (qd %u, ar %u, opt %u)", m.qd, m.ar, m.nopt);
	ok(m.len == 12 + 11 && (dns_get16(m.b + 12 + 7) & DNS_EDNS_DO), "... 23 bytes, DO echoed");
	q_std(&q, "www.example.com.", DNS_T_A);
	memcpy(q.b + q.len, q.b + 12, q.len - 12);
	q.len += q.len - 12;
	dns_put16(q.b + 4, 2);
	q_opt(&q, 1232, 0, false, NULL, 0);
	expect_formerr(&q, "QDCOUNT 2 with an OPT");
	ok(m.qd == 0 && m.nopt == 1 && m.ar == 1, "QDCOUNT 2: the OPT echoed, no question");
	q_std(&q, "www.example.com.", DNS_T_A);
	q.len = 12;
	dns_put16(q.b + 4, 0);
	q_opt(&q, 1232, 0, false, NULL, 0);
	q.len -= 2; /* the OPT cut short */
	expect_formerr(&q, "QDCOUNT 0, OPT cut short");
	ok(m.nopt == 0 && m.ar == 0, "... no OPT in the response");
	q_std(&q, "www.example.com.", DNS_T_A);
	q.len = 12;
	dns_put16(q.b + 4, 3);
	q_opt(&q, 1232, 0, false, NULL, 0);
	expect_formerr(&q, "QDCOUNT 3 but records only: no OPT trusted");
	ok(m.nopt == 0 && m.ar == 0, "... no OPT in the response");

	/* www + pointer to offset 16 ("example.com" in a first copy is not there: any pointer) */
	q_std(&q, "www.example.com.", DNS_T_A);
	q.b[16] = 0xc0;
	q.b[17] = 12;
	q.len = 18;
	dns_put16(q.b + q.len, DNS_T_A);
	dns_put16(q.b + q.len + 2, DNS_C_IN);
	q.len += 4;
	expect_formerr(&q, "compression pointer in the question name");
	q_std(&q, "www.example.com.", DNS_T_A);
	q.b[12] = 0xc0;
	q.b[13] = 0x0c;
	expect_formerr(&q, "question name that is only a pointer");

	q_std(&q, "www.example.com.", DNS_T_A);
	q.len = 20;
	expect_formerr(&q, "question name cut short");
	q_std(&q, "www.example.com.", DNS_T_A);
	q.len -= 2;
	expect_formerr(&q, "QCLASS missing");
	q_std(&q, "www.example.com.", DNS_T_A);
	q.len -= 4;
	expect_formerr(&q, "QTYPE and QCLASS missing");
	q_std(&q, "www.example.com.", DNS_T_A);
	q.len = 12;
	expect_formerr(&q, "header only, QDCOUNT 1");

	q_std(&q, "www.example.com.", DNS_T_A);
	q.b[12] = 0x43;
	expect_formerr(&q, "label type 01 (extended, RFC 6891 5)");
	q_std(&q, "www.example.com.", DNS_T_A);
	q.b[12] = 0x83;
	expect_formerr(&q, "label type 10 (reserved)");

	/* A 256-byte name: 4 labels of 63 + one of 3 = 4*64 + 4 + 1. */
	memset(&q, 0, sizeof(q));
	dns_put16(q.b, 9);
	dns_put16(q.b + 4, 1);
	size_t p = 12;
	for (int i = 0; i < 4; i++) {
		q.b[p++] = 63;
		memset(q.b + p, 'a', 63);
		p += 63;
	}
	q.b[p++] = 3;
	memcpy(q.b + p, "com", 3);
	p += 3;
	q.b[p++] = 0;
	dns_put16(q.b + p, DNS_T_A);
	dns_put16(q.b + p + 2, DNS_C_IN);
	q.len = p + 4;
	expect_formerr(&q, "question name longer than 255 bytes");

	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, NULL, 0);
	q_opt(&q, 1232, 0, false, NULL, 0);
	expect_formerr(&q, "two OPT records");
	ok(m.nopt == 1 && question_echoed(&q), "two OPT records: response has one OPT, question");

	uint8_t opts[64];
	q_std(&q, "www.example.com.", DNS_T_A);
	dns_put16(opts, 65001);
	dns_put16(opts + 2, 10); /* claims 10 bytes, has 2 */
	opts[4] = opts[5] = 0;
	q_opt(&q, 1232, 0, false, opts, 6);
	expect_formerr(&q, "option longer than the OPT rdata");
	ok(m.nopt == 1, "malformed option: response still has an OPT");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, "\0\3", 2);
	expect_formerr(&q, "option header cut short (2 bytes)");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, NULL, 0);
	dns_put16(q.b + q.len - 2, 40); /* rdlength past the end of the message */
	expect_formerr(&q, "OPT rdlength past the end");
	q_std(&q, "www.example.com.", DNS_T_A);
	dns_put16(q.b + 10, 1); /* ARCOUNT 1 but no record */
	expect_formerr(&q, "ARCOUNT 1 with no record");
}

static void test_trailing(void)
{
	struct q q;
	q_std(&q, "www.example.com.", DNS_T_A);
	memcpy(q.b + q.len, "\1\2\3\4\5\6\7garbage", 14);
	q.len += 14;
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && counts(2, 0, 0),
	   "bytes after the question ignored");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, true, NULL, 0);
	memset(q.b + q.len, 0xff, 5);
	q.len += 5;
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && counts(2, 0, 1) && m.nopt == 1 && m.opt_do,
	   "bytes after the OPT ignored");
}

static void test_edns(void)
{
	struct q q;
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 4096, 0, true, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && counts(2, 0, 1), "EDNS query answered");
	is_int(m.nopt, 1, "one OPT in the response");
	ok(m.opt_last && m.opt_root_owner, "OPT last in additional, owned by the root");
	is_int(m.opt_udp, 1232, "advertised UDP payload 1232");
	is_int(m.opt_version, 0, "EDNS version 0");
	is_int(m.opt_ext_rcode, 0, "extended rcode 0");
	ok(m.opt_do, "DO echoed (1)");
	is_int(m.opt_rdlen, 0, "no options when none were asked");

	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 512, 0, false, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(m.nopt == 1 && !m.opt_do && m.opt_udp == 1232, "DO echoed (0)");

	q_std(&q, "nope.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && m.nopt == 1 && m.ar == 1 &&
		   negative_soa("example.com.", 300),
	   "NXDOMAIN with EDNS: SOA and OPT");
	q_std(&q, "host.sub.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(!aa() && m.nopt == 1 && m.opt_last && m.ar == 3, "referral with EDNS: glue then OPT");
	q_std(&q, "www.example.org.", DNS_T_A);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_REFUSED && m.nopt == 1, "REFUSED with EDNS: OPT");

	q_make(&q, 0x0bad, DNS_F_RD, "www.example.com.", DNS_T_A, DNS_C_IN);
	q_opt(&q, 1232, 1, true, NULL, 0);
	ask(&q, QUERY_UDP);
	is_int(rcode_of(&m), DNS_RCODE_BADVERS, "EDNS version 1: BADVERS (16)");
	ok((m.flags & 0xf) == 0 && m.nopt == 1 && m.opt_ext_rcode == 1,
	   "BADVERS: header rcode 0, OPT extended rcode 1");
	ok(!aa() && m.an == 0 && m.ns == 0 && question_echoed(&q), "BADVERS: AA=0, no records");
	ok(m.opt_version == 0 && m.opt_udp == 1232, "BADVERS: OPT version 0, payload 1232");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 255, false, NULL, 0);
	ask(&q, QUERY_TCP);
	is_int(rcode_of(&m), DNS_RCODE_BADVERS, "EDNS version 255: BADVERS");

	uint8_t opts[64];
	size_t ol = opt_put(opts, 65001, "abc", 3);
	ol += opt_put(opts + ol, DNS_EDNS_COOKIE, "01234567", 8);
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, ol);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && counts(2, 0, 1), "unknown options ignored");
	uint16_t l;
	ok(!opt_find(&m, 65001, &l), "unknown option not echoed");

	/* NSID (RFC 5001) */
	ol = opt_put(opts, DNS_EDNS_NSID, NULL, 0);
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, ol);
	ask(&q, QUERY_UDP);
	const uint8_t *d = opt_find(&m, DNS_EDNS_NSID, &l);
	ok(d && l == 9 && memcmp(d, "ns-test-1", 9) == 0 && m.an == 2,
	   "NSID configured and requested: returned");
	q_std(&q, "nope.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, ol);
	ask(&q, QUERY_UDP);
	ok(opt_find(&m, DNS_EDNS_NSID, &l) != NULL, "NSID on NXDOMAIN too");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(m.nopt == 1 && !opt_find(&m, DNS_EDNS_NSID, &l),
	   "NSID configured, not requested: absent");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, ol);
	ask_with(&ctx_bare, snap, &q, QUERY_UDP);
	ok(m.nopt == 1 && !opt_find(&m, DNS_EDNS_NSID, &l) && m.an == 2,
	   "NSID requested, not configured: absent");
	ol = opt_put(opts, DNS_EDNS_NSID, "xy", 2);
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, ol);
	ask(&q, QUERY_UDP);
	ok(m.nopt == 1 && !opt_find(&m, DNS_EDNS_NSID, &l),
	   "non-empty NSID option is not a request");
}

/* Send an ECS option body; returns the response's rcode. */
static int ecs_ask(const uint8_t *body, size_t blen)
{
	struct q q;
	uint8_t opts[64];
	size_t ol = opt_put(opts, DNS_EDNS_ECS, body, blen);
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, ol);
	ask(&q, QUERY_UDP);
	return rcode_of(&m);
}

static void test_ecs(void)
{
	uint8_t b[64];
	uint16_t l;
	const uint8_t v4[4] = { 192, 0, 2, 0 };
	const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x00 };
	size_t n = ecs_body(b, 1, 24, 0, v4, 3);
	is_int(ecs_ask(b, n), DNS_RCODE_NOERROR, "ECS IPv4/24: NOERROR");
	const uint8_t *d = opt_find(&m, DNS_EDNS_ECS, &l);
	ok(d && l == 7 && dns_get16(d) == 1 && d[2] == 24 && d[3] == 0 && memcmp(d + 4, v4, 3) == 0,
	   "ECS echoed: family 1, source 24, scope 0, address");
	ok(m.an == 2 && aa(), "ECS query still answered");

	n = ecs_body(b, 2, 56, 0, v6, 7);
	is_int(ecs_ask(b, n), DNS_RCODE_NOERROR, "ECS IPv6/56: NOERROR");
	d = opt_find(&m, DNS_EDNS_ECS, &l);
	ok(d && l == 11 && dns_get16(d) == 2 && d[2] == 56 && d[3] == 0 &&
		   memcmp(d + 4, v6, 7) == 0,
	   "ECS echoed: family 2, source 56, scope 0, 7 address bytes");

	n = ecs_body(b, 1, 0, 0, NULL, 0);
	is_int(ecs_ask(b, n), DNS_RCODE_NOERROR, "ECS /0 with no address: NOERROR");
	d = opt_find(&m, DNS_EDNS_ECS, &l);
	ok(d && l == 4 && d[2] == 0 && d[3] == 0, "ECS /0 echoed");
	const uint8_t full[4] = { 198, 51, 100, 7 };
	n = ecs_body(b, 1, 32, 0, full, 4);
	is_int(ecs_ask(b, n), DNS_RCODE_NOERROR, "ECS IPv4/32: NOERROR");
	const uint8_t v4_23[3] = { 192, 0, 2 }; /* 0x02: last bit is bit 24, beyond /23 is 0 */
	n = ecs_body(b, 1, 23, 0, v4_23, 3);
	is_int(ecs_ask(b, n), DNS_RCODE_NOERROR, "ECS IPv4/23 with a clean last byte: NOERROR");
	const uint8_t v6full[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	n = ecs_body(b, 2, 128, 0, v6full, 16);
	is_int(ecs_ask(b, n), DNS_RCODE_NOERROR, "ECS IPv6/128: NOERROR");

	/* RFC 7871 6 and 7.1.1: FORMERR */
	n = ecs_body(b, 1, 24, 8, v4, 3);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS with nonzero scope: FORMERR");
	ok(m.nopt == 1 && !aa() && m.an == 0, "ECS FORMERR: OPT present, AA=0, no answer");
	n = ecs_body(b, 3, 24, 0, v4, 3);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS family 3: FORMERR");
	n = ecs_body(b, 0, 0, 0, NULL, 0);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS family 0: FORMERR");
	uint8_t five[5] = { 192, 0, 2, 1, 0 };
	n = ecs_body(b, 1, 33, 0, five, 5);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS IPv4/33: FORMERR");
	uint8_t seventeen[17] = { 0x20, 0x01 };
	n = ecs_body(b, 2, 129, 0, seventeen, 17);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS IPv6/129: FORMERR");
	n = ecs_body(b, 1, 24, 0, full, 4);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS /24 with 4 address bytes: FORMERR");
	n = ecs_body(b, 1, 24, 0, v4, 2);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS /24 with 2 address bytes: FORMERR");
	n = ecs_body(b, 1, 0, 0, v4, 1);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS /0 with an address byte: FORMERR");
	const uint8_t dirty[3] = { 192, 0, 3 };
	n = ecs_body(b, 1, 23, 0, dirty, 3);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS /23 with bit 24 set: FORMERR");
	const uint8_t dirty6[7] = { 0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x57 };
	n = ecs_body(b, 2, 55, 0, dirty6, 7);
	is_int(ecs_ask(b, n), DNS_RCODE_FORMERR, "ECS IPv6/55 with bit 56 set: FORMERR");
	is_int(ecs_ask(b, 3), DNS_RCODE_FORMERR, "ECS option of 3 bytes: FORMERR");
	is_int(ecs_ask(b, 0), DNS_RCODE_FORMERR, "empty ECS option: FORMERR");
}

/* Send name/type over transport with an optional OPT of payload udp (0 = no EDNS). */
static size_t ask_size(const char *name, uint16_t udp, int tr)
{
	struct q q;
	q_std(&q, name, DNS_T_A);
	if (udp)
		q_opt(&q, udp, 0, false, NULL, 0);
	return ask(&q, tr);
}

static bool truncated_ok(bool edns)
{
	int opt = edns ? 1 : 0;
	return tc() && m.an == 0 && m.ns == 0 && m.ar == opt && m.nopt == opt && m.qd == 1;
}

static void test_truncation(void)
{
	size_t n;
	n = ask_size("mid.example.com.", 0, QUERY_UDP);
	ok(n <= 512 && truncated_ok(false), "40 A without EDNS over UDP: TC, question only (%zu)",
	   n);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR, "truncated: NOERROR");
	n = ask_size("mid.example.com.", 0, QUERY_TCP);
	ok(!tc() && m.an == MID_COUNT && n > 512, "40 A over TCP: all of them (%zu bytes)", n);
	n = ask_size("mid.example.com.", 4096, QUERY_UDP);
	ok(!tc() && m.an == MID_COUNT && m.nopt == 1 && n <= 1232,
	   "40 A with EDNS 4096 over UDP: fits in 1232 (%zu)", n);
	n = ask_size("mid.example.com.", 600, QUERY_UDP);
	ok(n <= 600 && truncated_ok(true), "40 A with EDNS 600: TC with OPT (%zu)", n);

	size_t full = ask_size("m30.example.com.", 1232, QUERY_TCP);
	ok(full > 512 && full < 600 && m.an == M30_COUNT, "30 A need %zu bytes with OPT", full);
	n = ask_size("m30.example.com.", (uint16_t)full, QUERY_UDP);
	ok(n == full && !tc() && m.an == M30_COUNT, "EDNS size exactly the response size: fits");
	n = ask_size("m30.example.com.", (uint16_t)(full - 1), QUERY_UDP);
	ok(n <= full - 1 && truncated_ok(true), "EDNS size one byte short: TC");
	n = ask_size("m30.example.com.", 100, QUERY_UDP);
	ok(n <= 512 && truncated_ok(true), "EDNS size 100 means 512: TC");
	n = ask_size("m30.example.com.", 0, QUERY_UDP);
	ok(n <= 512 && truncated_ok(false), "30 A without EDNS: TC");

	n = ask_size("big.example.com.", 4096, QUERY_UDP);
	ok(n <= 1232 && truncated_ok(true), "100 A with EDNS 4096: TC (cap 1232)");
	n = ask_size("big.example.com.", 65535, QUERY_UDP);
	ok(n <= 1232 && truncated_ok(true), "100 A with EDNS 65535: TC (cap 1232)");
	n = ask_size("big.example.com.", 4096, QUERY_TCP);
	ok(!tc() && m.an == BIG_COUNT && n > 1232 && m.nopt == 1,
	   "100 A over TCP: all (%zu bytes), OPT kept", n);
	n = ask_size("big.example.com.", 0, QUERY_TCP);
	ok(!tc() && m.an == BIG_COUNT && m.nopt == 0, "100 A over TCP without EDNS: all, no OPT");

	struct q q;
	q_std(&q, "edge512.example.com.", DNS_T_TXT);
	n = ask(&q, QUERY_UDP);
	ok(n == 512 && !tc() && m.an == 1, "a 512-byte response without EDNS fits (%zu)", n);
	q_std(&q, "edge513.example.com.", DNS_T_TXT);
	n = ask(&q, QUERY_UDP);
	ok(n < 512 && truncated_ok(false), "a 513-byte response without EDNS: TC (%zu)", n);
	ok(question_echoed(&q), "TC response echoes the question");
	n = ask(&q, QUERY_TCP);
	ok(n == 513 && !tc() && m.an == 1, "the 513-byte response over TCP (%zu)", n);

	/* A truncated answer still carries NSID and ECS in its OPT. */
	uint8_t opts[64], body[16];
	size_t ol = opt_put(opts, DNS_EDNS_NSID, NULL, 0);
	const uint8_t net10[3] = { 10, 0, 0 };
	ol += opt_put(opts + ol, DNS_EDNS_ECS, body, ecs_body(body, 1, 24, 0, net10, 3));
	q_std(&q, "big.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, true, opts, ol);
	n = ask(&q, QUERY_UDP);
	uint16_t l;
	ok(n <= 1232 && truncated_ok(true) && opt_find(&m, DNS_EDNS_NSID, &l) &&
		   opt_find(&m, DNS_EDNS_ECS, &l) && m.opt_do,
	   "truncated response keeps NSID, ECS and DO in its OPT");
}

static void test_pool(void)
{
	struct q q;
	q_std(&q, "PooL.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && counts(1, 0, 0),
	   "pool A: one member's address, AA=1");
	ok(owner_is(&m.rr[0], "PooL.example.com.") && m.rr[0].ttl == 30 &&
		   m.rr[0].rclass == DNS_C_IN &&
		   (rdata_a_is(&m, &m.rr[0], "192.0.2.101") ||
		    rdata_a_is(&m, &m.rr[0], "192.0.2.102")),
	   "pool A: client-case owner, pool TTL 30, a member address");
	q_std(&q, "pool.example.com.", DNS_T_AAAA);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 && m.ns == 1 &&
		   first_of(&m, 1, DNS_T_SOA),
	   "pool without IPv6 members: AAAA is NODATA with SOA");
	q_std(&q, "pool.example.com.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && rdata_is(&m, &m.rr[0], "\10pool-txt", 9),
	   "other types at a pool's name come from the zone");
	q_std(&q, "pool.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && m.rr[0].type == DNS_T_HINFO, "ANY at a pool: HINFO");
	q_std(&q, "Topool.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && counts(2, 0, 0) && m.rr[0].type == DNS_T_CNAME && m.rr[1].type == DNS_T_A &&
		   owner_is(&m.rr[0], "Topool.example.com.") &&
		   owner_ci(&m.rr[1], "pool.example.com."),
	   "CNAME into a pool: the CNAME and the pool's A");
	q_std(&q, "a.pools.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && counts(1, 0, 0) && rdata_a_is(&m, &m.rr[0], "192.0.2.101"),
	   "a pool with no zone data at or above it but the apex");
	q_std(&q, "pools.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 && negative_soa("example.com.", 300),
	   "the parent of a pool exists: NODATA, not NXDOMAIN");
	q_std(&q, "x.a.pools.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && negative_soa("example.com.", 300),
	   "below a pool: NXDOMAIN");
}

/* The owner of rr i, lowercased text, for comparing names the server wrote from zone data. */
static bool rr_is(int i, int sec, uint16_t type, const char *owner)
{
	return i < m.nrr && m.rr[i].sec == sec && m.rr[i].type == type && owner_ci(&m.rr[i], owner);
}

/* RFC 6672: DNAME substitution, the synthesized CNAME, and following it inside the zone. */
static void test_dname(void)
{
	struct q q;
	q_std(&q, "WwW.Dn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && counts(3, 0, 0),
	   "below a DNAME: NOERROR, AA, DNAME + CNAME + A");
	ok(rr_is(0, 0, DNS_T_DNAME, "dn.example.com.") && owner_is(&m.rr[0], "Dn.example.com.") &&
		   m.rr[0].ttl == 7200 && rdata_name_is(&m, &m.rr[0], 0, "target.example.com."),
	   "the DNAME first, owner in the client's case, its own TTL");
	ok(rr_is(1, 0, DNS_T_CNAME, "www.dn.example.com.") &&
		   owner_is(&m.rr[1], "WwW.Dn.example.com.") && m.rr[1].ttl == 7200 &&
		   rdata_name_is(&m, &m.rr[1], 0, "www.target.example.com."),
	   "the synthesized CNAME: owner the query name, TTL of the DNAME (RFC 6672 3.1)");
	ok(rr_is(2, 0, DNS_T_A, "www.target.example.com.") && m.rr[2].ttl == 300 &&
		   rdata_a_is(&m, &m.rr[2], "192.0.2.71"),
	   "the CNAME is followed inside the zone");

	q_std(&q, "www.dn.example.com.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(counts(3, 0, 0) && m.rr[2].type == DNS_T_TXT &&
		   rdata_is(&m, &m.rr[2], "\12www-target", 11),
	   "another type at the target");
	q_std(&q, "a.b.c.dn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && aa() && m.an == 2 &&
		   rr_is(0, 0, DNS_T_DNAME, "dn.example.com.") &&
		   rdata_name_is(&m, &m.rr[1], 0, "a.b.c.target.example.com.") &&
		   negative_soa("example.com.", 300),
	   "a target that does not exist: DNAME, CNAME, NXDOMAIN with SOA");
	q_std(&q, "www.dn.example.com.", DNS_T_MX);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2 && negative_soa("example.com.", 300),
	   "a type the target lacks: DNAME, CNAME, NODATA with SOA");
	q_std(&q, "cn.dn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(counts(5, 0, 0) && m.rr[2].type == DNS_T_CNAME &&
		   rr_is(3, 0, DNS_T_A, "www.example.com.") &&
		   rr_is(4, 0, DNS_T_A, "www.example.com."),
	   "a DNAME to a CNAME: DNAME, CNAME, CNAME, the two A of www");
	q_std(&q, "occ.dn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NXDOMAIN && m.an == 2 &&
		   rr_is(0, 0, DNS_T_DNAME, "dn.example.com.") &&
		   rdata_name_is(&m, &m.rr[1], 0, "occ.target.example.com."),
	   "data below a DNAME is occluded (RFC 6672 2.4): the DNAME answers for it");

	/* At the DNAME's own name nothing is substituted. */
	q_std(&q, "Dn.example.com.", DNS_T_DNAME);
	ask(&q, QUERY_UDP);
	ok(aa() && counts(1, 0, 0) && m.rr[0].type == DNS_T_DNAME &&
		   owner_is(&m.rr[0], "Dn.example.com."),
	   "qtype DNAME at the owner: the DNAME, an ordinary answer");
	q_std(&q, "dn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 &&
		   negative_soa("example.com.", 300),
	   "qtype A at the owner: NODATA");
	q_std(&q, "dn.example.com.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && rdata_is(&m, &m.rr[0], "\14beside-dname", 13),
	   "other data at the owner is answered");
	q_std(&q, "x.dn.example.com.", DNS_T_DNAME);
	ask(&q, QUERY_UDP);
	ok(m.an == 2 && m.rr[0].type == DNS_T_DNAME && m.rr[1].type == DNS_T_CNAME &&
		   rcode_of(&m) == DNS_RCODE_NXDOMAIN,
	   "qtype DNAME below the owner: substituted like any other type");
	q_std(&q, "www.dn.example.com.", DNS_T_CNAME);
	ask(&q, QUERY_UDP);
	ok(counts(2, 0, 0) && m.rr[0].type == DNS_T_DNAME && m.rr[1].type == DNS_T_CNAME,
	   "qtype CNAME below the owner: the DNAME and the CNAME, not followed");

	q_std(&q, "x.y.xdn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && counts(2, 0, 0) && m.rr[1].ttl == 600 &&
		   rdata_name_is(&m, &m.rr[1], 0, "x.y.example.net."),
	   "a DNAME out of the zone: DNAME and CNAME, not followed");
	q_std(&q, "www.dn2.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(counts(5, 0, 0) && rr_is(0, 0, DNS_T_DNAME, "dn2.example.com.") &&
		   rdata_name_is(&m, &m.rr[1], 0, "www.dn.example.com.") && m.rr[1].ttl == 900 &&
		   rr_is(2, 0, DNS_T_DNAME, "dn.example.com.") &&
		   rdata_name_is(&m, &m.rr[3], 0, "www.target.example.com.") &&
		   m.rr[4].type == DNS_T_A,
	   "a DNAME to a DNAME: both substitutions, then the A");
	q_std(&q, "ToDn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(counts(4, 0, 0) && m.rr[0].type == DNS_T_CNAME &&
		   rr_is(1, 0, DNS_T_DNAME, "dn.example.com.") &&
		   rr_is(2, 0, DNS_T_CNAME, "www.dn.example.com.") && m.rr[3].type == DNS_T_A,
	   "a CNAME to a name below a DNAME");
	q_std(&q, "a.dn.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(count_type(&m, 0, DNS_T_DNAME) == 1 && count_type(&m, 0, DNS_T_CNAME) == 3 &&
		   rr_is(m.an - 1, 0, DNS_T_A, "b.target.example.com."),
	   "the same DNAME twice in a chain: written once (RFC 2181 5: no RRset repeated)");
	q_std(&q, "x.dnself.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && counts(2, 0, 0) && m.rr[0].type == DNS_T_DNAME &&
		   rdata_name_is(&m, &m.rr[1], 0, "x.dnself.example.com."),
	   "a DNAME to itself: the synthesized CNAME once, the chain stops");
	q_std(&q, "host.todeleg.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(m.an == 2 && m.rr[0].type == DNS_T_DNAME && count_type(&m, 1, DNS_T_NS) == 2 && aa(),
	   "a DNAME into a delegation: DNAME, CNAME and the referral");

	/* RFC 6672 2.2: the substituted name would be longer than 255 octets. */
	q_std(&q, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.long.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_YXDOMAIN && aa() && counts(1, 0, 0) &&
		   m.rr[0].type == DNS_T_DNAME,
	   "substituted name over 255 octets: YXDOMAIN with the DNAME alone");
	q_std(&q, "e.long.example.com.", DNS_T_A);
	ask(&q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2 &&
		   rdata_name_is(
			   &m, &m.rr[1], 0,
			   "e.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
			   "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
			   "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
			   "ddddddddddddddddddddddddddddddddddddddddddddddddddddddd."),
	   "a substituted name of 253 octets is fine");

	/* Pools: at a DNAME's name the pool answers A; below it the DNAME does. */
	q_std(&q, "dnpool.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && counts(1, 0, 0) && rdata_a_is(&m, &m.rr[0], "192.0.2.101"),
	   "a pool at a DNAME's own name answers A");
	q_std(&q, "p.dnpool.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NXDOMAIN && m.an == 2 && m.rr[0].type == DNS_T_DNAME &&
		   rr_is(1, 0, DNS_T_CNAME, "p.dnpool.example.com.") &&
		   rdata_name_is(&m, &m.rr[1], 0, "p.target.example.com."),
	   "a pool below a DNAME is not served: the DNAME answers");
	q_std(&q, "dn.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(counts(1, 0, 0) && m.rr[0].type == DNS_T_HINFO, "ANY at the owner: HINFO");
	q_std(&q, "www.dn.example.com.", DNS_T_ANY);
	ask(&q, QUERY_UDP);
	ok(counts(2, 0, 0) && m.rr[0].type == DNS_T_DNAME && m.rr[1].type == DNS_T_CNAME,
	   "ANY below the owner: the DNAME and the CNAME, not followed");

	/* Compression: an answer over 512 bytes without it would be truncated. */
	q_std(&q, "www.dn2.example.com.", DNS_T_A);
	size_t n = ask(&q, QUERY_UDP);
	ok(n < 220 && !tc(), "names in a DNAME answer are compressed (%zu bytes)", n);
}

/* A CNAME loop is answered with each CNAME once (RFC 2181 5: no RRset twice in a section). */
static void test_cname_loop(void)
{
	struct q q;
	q_std(&q, "loop1.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && aa() && counts(2, 0, 0) &&
		   rr_is(0, 0, DNS_T_CNAME, "loop1.example.com.") &&
		   rr_is(1, 0, DNS_T_CNAME, "loop2.example.com."),
	   "loop1 -> loop2 -> loop1: two CNAMEs, each once");
	q_std(&q, "self.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && counts(1, 0, 0), "a CNAME to itself: once");
	q_std(&q, "lb.example.com.", DNS_T_TXT);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && counts(3, 0, 0) &&
		   rr_is(0, 0, DNS_T_CNAME, "lb.example.com.") &&
		   rr_is(1, 0, DNS_T_CNAME, "lc.example.com.") &&
		   rr_is(2, 0, DNS_T_CNAME, "la.example.com."),
	   "a loop of three entered in the middle: three CNAMEs, each once");
	q_std(&q, "b.wl.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && counts(2, 0, 0) &&
		   rr_is(0, 0, DNS_T_CNAME, "b.wl.example.com.") &&
		   rr_is(1, 0, DNS_T_CNAME, "a.wl.example.com."),
	   "a loop through a wildcard: b.wl -> a.wl -> a.wl, each name once");
}

/* RFC 4035 3.1.4.1: DS belongs to the parent side of a cut, also when both zones are here. */
static void test_ds_parent(void)
{
	struct q q;
	q_std(&q, "Kid.example.com.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && counts(1, 0, 0) &&
		   m.rr[0].type == DNS_T_DS && owner_is(&m.rr[0], "Kid.example.com.") &&
		   m.rr[0].ttl == 86400,
	   "DS at a child apex served here: the parent's DS");
	q_std(&q, "nodskid.example.com.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 &&
		   negative_soa("example.com.", 300),
	   "no DS at the cut: NODATA with the parent's SOA");
	q_std(&q, "kid.example.com.", DNS_T_SOA);
	ask(&q, QUERY_UDP);
	ok(aa() && counts(1, 0, 0) && m.rr[0].type == DNS_T_SOA, "other types: the child zone");
	q_std(&q, "www.kid.example.com.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(aa() && m.an == 0 && negative_soa("kid.example.com.", 900),
	   "DS below the child apex: the child's NODATA");
	q_std(&q, "orphan.test.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 &&
		   negative_soa("orphan.test.", 900),
	   "DS at an apex whose parent is not served: the child's NODATA");
	q_std(&q, "child.example.com.", DNS_T_DS);
	ask(&q, QUERY_UDP);
	ok(aa() && rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 0 &&
		   negative_soa("example.com.", 300),
	   "DS at a nested zone the parent does not delegate: the parent's NODATA (as nsd)");
}

/*
 * Append a TSIG RR (RFC 8945 4.2) with a MAC of maclen bytes; bumps
 * ARCOUNT.  Returns the offset of its rdata.
 */
static size_t q_tsig(struct q *q, const char *key, size_t maclen)
{
	uint8_t *p = q->b + q->len;
	int n = dns_name_from_str(p, key);
	if (n < 0)
		bail_out("bad key name %s", key);
	p += n;
	dns_put16(p, DNS_T_TSIG);
	dns_put16(p + 2, DNS_C_ANY);
	dns_put32(p + 4, 0);
	uint8_t *rd = p + 10;
	int al = dns_name_from_str(rd, "hmac-sha256.");
	uint8_t *f = rd + al;
	static const uint8_t when[6] = { 0, 0, 0x6b, 0x16, 0x34, 0xf8 };
	memcpy(f, when, 6);
	dns_put16(f + 6, 300);
	dns_put16(f + 8, (uint16_t)maclen);
	memset(f + 10, 0xab, maclen);
	f += 10 + maclen;
	dns_put16(f, dns_get16(q->b)); /* original ID */
	dns_put16(f + 2, 0);
	dns_put16(f + 4, 0);
	f += 6;
	dns_put16(p + 8, (uint16_t)(f - rd));
	q->len = (size_t)(f - q->b);
	dns_put16(q->b + 10, (uint16_t)(dns_get16(q->b + 10) + 1));
	return (size_t)(rd - q->b);
}

/* The response's TSIG RR is RFC 8945 5.2.2's unsigned BADKEY error for the query's key. */
static bool tsig_badkey(const char *key)
{
	const struct rr *t = first_of(&m, 2, DNS_T_TSIG);
	static const uint8_t want[] = "\13hmac-sha256\0"
				      "\0\0\x6b\x16\x34\xf8" /* time signed, copied */
				      "\x01\x2c"	     /* fudge, copied */
				      "\0\0"		     /* no MAC */
				      "\x12\x34"	     /* original ID */
				      "\0\x11"		     /* BADKEY */
				      "\0\0";		     /* no other data */
	bool r = t && t == &m.rr[m.nrr - 1] && owner_ci(t, key) && t->rclass == DNS_C_ANY &&
		 t->ttl == 0 && rdata_is(&m, t, want, sizeof(want) - 1);
	if (!r && t)
		diag("  TSIG class %u ttl %u rdlen %u", t->rclass, t->ttl, t->rdlen);
	return r;
}

/* RFC 8945 5.2: no key is configured, so every signed query is answered NOTAUTH / BADKEY. */
static void test_tsig(void)
{
	struct q q;
	q_std(&q, "www.example.com.", DNS_T_A);
	q_tsig(&q, "Key.Example.", 32);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOTAUTH && !aa() && question_echoed(&q) && counts(0, 0, 1),
	   "signed query: NOTAUTH, AA=0, question echoed, no records but the TSIG");
	ok(tsig_badkey("key.example."),
	   "TSIG: key name and algorithm of the query, time and fudge copied, no MAC, BADKEY");

	uint8_t nsid[4];
	size_t nl = opt_put(nsid, DNS_EDNS_NSID, NULL, 0);
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, true, nsid, nl);
	q_tsig(&q, "key.example.", 32);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOTAUTH && counts(0, 0, 2) && m.nopt == 1 &&
		   m.rr[0].type == DNS_T_OPT && m.opt_rdlen == 0 && tsig_badkey("key.example."),
	   "with EDNS: OPT (no NSID) then the TSIG, last");

	q_make(&q, 0x1234, 0x2000 /* NOTIFY */, "example.com.", DNS_T_SOA, DNS_C_IN);
	q_tsig(&q, "key.example.", 32);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOTAUTH && tsig_badkey("key.example."),
	   "signed NOTIFY: NOTAUTH, not NOTIMP");
	q_make(&q, 0x1234, 0, "version.bind.", DNS_T_TXT, DNS_C_CH);
	q_tsig(&q, "key.example.", 32);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOTAUTH && m.an == 0, "signed CH query: NOTAUTH");
	q_std(&q, "www.example.org.", DNS_T_A);
	q_tsig(&q, "key.example.", 0);
	ask(&q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_NOTAUTH && tsig_badkey("key.example."),
	   "signed query for a name not served, empty MAC, TCP: NOTAUTH");

	/* The key name compressed: a pointer to example.com in the question. */
	q_std(&q, "www.example.com.", DNS_T_A);
	size_t kpos = q.len;
	q_tsig(&q, "example.com.", 32);
	q.b[kpos] = 0xc0;
	q.b[kpos + 1] = 12 + 4;
	memmove(q.b + kpos + 2, q.b + kpos + 13, q.len - kpos - 13);
	q.len -= 11;
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOTAUTH && tsig_badkey("example.com."),
	   "a compressed key name is written out in full");

	/* RFC 8945 5.1: the TSIG must be the last record; a broken one is FORMERR. */
	q_std(&q, "www.example.com.", DNS_T_A);
	q_tsig(&q, "key.example.", 32);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_FORMERR && m.an == 0 && first_of(&m, 2, DNS_T_TSIG) == NULL,
	   "TSIG before the OPT: FORMERR");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_tsig(&q, "key.example.", 32);
	dns_put16(q.b + 6, 1);
	dns_put16(q.b + 10, 0);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_FORMERR, "TSIG in the answer section: FORMERR");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_tsig(&q, "key.example.", 32);
	q_tsig(&q, "key.example.", 32);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_FORMERR, "two TSIGs: FORMERR");
	q_std(&q, "www.example.com.", DNS_T_A);
	size_t rd = q_tsig(&q, "key.example.", 32);
	dns_put16(q.b + rd - 2, 20); /* rdlength: the MAC goes past it */
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_FORMERR, "TSIG rdata shorter than its fields: FORMERR");
	q_std(&q, "www.example.com.", DNS_T_A);
	rd = q_tsig(&q, "key.example.", 32);
	q.b[rd] = 0xc0; /* the algorithm name a pointer */
	q.b[rd + 1] = 12;
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_FORMERR, "a compressed algorithm name: FORMERR");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 1, false, NULL, 0);
	q_tsig(&q, "key.example.", 32);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_BADVERS, "EDNS version 1 and TSIG: BADVERS first");

	/* Unsigned queries with other additional records are answered as before. */
	q_std(&q, "www.example.com.", DNS_T_A);
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2, "unsigned: answered");
}

/*
 * zone_set_find() compares apexes for small sets and hashes suffixes for
 * larger ones: both must find the deepest zone, at label boundaries only.
 */
/* ---- DNS Cookies (RFC 7873, RFC 9018) ---- */

static struct sockaddr_storage peer_ss;

static const struct sockaddr *peer_set(const char *addr)
{
	memset(&peer_ss, 0, sizeof(peer_ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&peer_ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&peer_ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a->sin_addr);
	}
	return (const struct sockaddr *)&peer_ss;
}

static void hex_to(uint8_t *out, const char *hex)
{
	for (size_t i = 0; hex[2 * i]; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* A query for name A with EDNS and one COOKIE option of the given bytes. */
static void q_cookie(struct q *q, const char *name, const uint8_t *cookie, size_t len)
{
	uint8_t opts[64];
	q_std(q, name, DNS_T_A);
	q_opt(q, 1232, 0, false, opts, opt_put(opts, DNS_EDNS_COOKIE, cookie, len));
}

/* The response's COOKIE option, when it is 24 bytes long: into out. */
static bool resp_cookie(uint8_t out[24])
{
	uint16_t len = 0;
	const uint8_t *c = opt_find(&m, DNS_EDNS_COOKIE, &len);
	if (!c || len != 24)
		return false;
	memcpy(out, c, 24);
	return true;
}

/* What RFC 9018 4.4 says the server cookie is, computed here from its parts. */
static void cookie_expect(uint8_t out[16], const uint8_t secret[16], const uint8_t cc[8],
			  uint32_t t, const uint8_t *ip, size_t iplen)
{
	uint8_t in[40];
	out[0] = 1;
	out[1] = out[2] = out[3] = 0;
	dns_put32(out + 4, t);
	memcpy(in, cc, 8);
	memcpy(in + 8, out, 8);
	memcpy(in + 16, ip, iplen);
	gslb_siphash24(secret, in, 16 + iplen, out + 8);
}

static void test_siphash(void)
{
	/* The SipHash paper's appendix A: key 00..0f, messages 00..(n-1). */
	uint8_t key[16], msg[64], out[8], want[8];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	gslb_siphash24(key, msg, 0, out);
	hex_to(want, "310e0edd47db6f72");
	ok(memcmp(out, want, 8) == 0, "SipHash-2-4 of the empty message (reference vector 0)");
	gslb_siphash24(key, msg, 15, out);
	hex_to(want, "e545be4961ca29a1");
	ok(memcmp(out, want, 8) == 0, "SipHash-2-4 of 15 bytes (the paper's example)");
	gslb_siphash24(key, msg, 1, out);
	hex_to(want, "fd67dc93c539f874");
	ok(memcmp(out, want, 8) == 0, "SipHash-2-4 of 1 byte (reference vector 1)");
	gslb_siphash24(key, msg, 8, out);
	hex_to(want, "6224939a79f5f593");
	ok(memcmp(out, want, 8) == 0, "SipHash-2-4 of 8 bytes (a whole block, reference vector 8)");
}

static void test_cookies(void)
{
	static query_cookie_secrets_t secrets;
	query_data_t with = *snap;
	with.cookies = &secrets;
	uint8_t cc[8], sc[16], want[16], got[24], ip4[4] = { 198, 51, 100, 100 };
	struct q q;
	/* RFC 9018 appendix A.1: the secret, client, address and time of its first example. */
	hex_to(secrets.current, "e5e973e5a6b2a43f48e7dc849e37bfcf");
	query_cookie_secrets_ready(&secrets);
	hex_to(cc, "2464c4abcf10c957");
	const uint32_t t0 = 1559731985;
	peer_addr = peer_set("198.51.100.100");
	ctx_full.now_ms = (uint64_t)t0 * 1000 + 123;

	q_cookie(&q, "www.example.com.", cc, 8);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	hex_to(want, "010000005cf79f111f8130c3eee29480");
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2 && resp_cookie(got) &&
		   memcmp(got, cc, 8) == 0 && memcmp(got + 8, want, 16) == 0,
	   "a client cookie alone: answered, with RFC 9018 A.1's server cookie to the byte");

	/* The cookie sent back within half an hour verifies and is sent back as it is. */
	uint64_t valid0 = ctx_full.stats.cookies_valid;
	uint8_t both[40];
	memcpy(both, cc, 8);
	memcpy(both + 8, want, 16);
	ctx_full.now_ms = (uint64_t)(t0 + 1000) * 1000;
	q_cookie(&q, "www.example.com.", both, 24);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(m.an == 2 && resp_cookie(got) && memcmp(got + 8, want, 16) == 0 &&
		   ctx_full.stats.cookies_valid == valid0 + 1,
	   "its server cookie 1,000 s later: valid, sent back unchanged");

	/* Past half an hour: still valid, replaced by a fresh one (RFC 9018 4.3). */
	ctx_full.now_ms = (uint64_t)(t0 + 1900) * 1000;
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	cookie_expect(sc, secrets.current, cc, t0 + 1900, ip4, 4);
	ok(resp_cookie(got) && memcmp(got + 8, sc, 16) == 0 &&
		   ctx_full.stats.cookies_valid == valid0 + 2,
	   "1,900 s later: valid, and a fresh cookie with the new time");

	/* Past an hour, or five minutes ahead: not valid, a fresh one, no error. */
	ctx_full.now_ms = (uint64_t)(t0 + 3601) * 1000;
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	cookie_expect(sc, secrets.current, cc, t0 + 3601, ip4, 4);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2 && resp_cookie(got) &&
		   memcmp(got + 8, sc, 16) == 0 && ctx_full.stats.cookies_valid == valid0 + 2,
	   "3,601 s later: not valid, answered normally with a fresh cookie");
	ctx_full.now_ms = (uint64_t)(t0 - 301) * 1000;
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(ctx_full.stats.cookies_valid == valid0 + 2, "a cookie 301 s in the future: not valid");
	ctx_full.now_ms = (uint64_t)(t0 - 299) * 1000;
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(ctx_full.stats.cookies_valid == valid0 + 3, "299 s in the future: valid");

	/* Another address, another client cookie, another secret: not valid. */
	ctx_full.now_ms = (uint64_t)(t0 + 10) * 1000;
	peer_addr = peer_set("198.51.100.101");
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(ctx_full.stats.cookies_valid == valid0 + 3,
	   "the cookie from another address: not valid");
	peer_addr = peer_set("198.51.100.100");
	both[0] ^= 1;
	q_cookie(&q, "www.example.com.", both, 24);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(ctx_full.stats.cookies_valid == valid0 + 3 && resp_cookie(got) &&
		   memcmp(got, both, 8) == 0,
	   "with another client cookie: not valid; that client cookie echoed");
	both[0] ^= 1;
	both[23] ^= 0x80;
	q_cookie(&q, "www.example.com.", both, 24);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(ctx_full.stats.cookies_valid == valid0 + 3, "one bit of the hash changed: not valid");
	both[23] ^= 0x80;
	both[8] = 2;
	q_cookie(&q, "www.example.com.", both, 24);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(ctx_full.stats.cookies_valid == valid0 + 3, "version 2: not valid");
	both[8] = 1;
	q_cookie(&q, "www.example.com.", both, 24);

	/* Secrets rolled over: the previous one for a while, a second accepted one. */
	query_cookie_secrets_t saved = secrets;
	memcpy(secrets.previous, secrets.current, 16);
	memset(secrets.current, 0x42, 16);
	secrets.previous_until = t0 + 20;
	query_cookie_secrets_ready(&secrets);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	cookie_expect(sc, secrets.current, cc, t0 + 10, ip4, 4);
	ok(ctx_full.stats.cookies_valid == valid0 + 4 && resp_cookie(got) &&
		   memcmp(got + 8, sc, 16) == 0,
	   "made with the previous secret, before it expires: valid, replaced by the new secret's");
	ctx_full.now_ms = (uint64_t)(t0 + 20) * 1000;
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(ctx_full.stats.cookies_valid == valid0 + 4, "... and not once the previous one expired");
	memcpy(secrets.accepted, saved.current, 16);
	secrets.has_accepted = true;
	query_cookie_secrets_ready(&secrets);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	cookie_expect(sc, secrets.current, cc, t0 + 20, ip4, 4);
	ok(ctx_full.stats.cookies_valid == valid0 + 5 && resp_cookie(got) &&
		   memcmp(got + 8, sc, 16) == 0,
	   "made with the accepted second secret: valid, replaced by the current one's");
	secrets = saved;

	/* IPv6: the 16-byte address goes into the hash. */
	uint8_t ip6[16];
	inet_pton(AF_INET6, "2001:db8:220:1:59de:d0f4:8769:82b8", ip6);
	peer_addr = peer_set("2001:db8:220:1:59de:d0f4:8769:82b8");
	q_cookie(&q, "www.example.com.", cc, 8);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	cookie_expect(sc, secrets.current, cc, t0 + 20, ip6, 16);
	ok(resp_cookie(got) && memcmp(got + 8, sc, 16) == 0, "an IPv6 client: its address hashed");
	peer_addr = peer_set("::ffff:198.51.100.100");
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	cookie_expect(sc, secrets.current, cc, t0 + 20, ip4, 4);
	ok(resp_cookie(got) && memcmp(got + 8, sc, 16) == 0,
	   "an IPv4-mapped IPv6 client: hashed as its IPv4 address");
	peer_addr = peer_set("198.51.100.100");

	/* RFC 7873 5.2.2: malformed lengths and two options are FORMERR, with no cookie. */
	static const size_t bad[] = { 0, 1, 7, 9, 15, 41 };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t junk[48] = { 0 };
		q_cookie(&q, "www.example.com.", junk, bad[i]);
		ask_with(&ctx_full, &with, &q, QUERY_UDP);
		ok(rcode_of(&m) == DNS_RCODE_FORMERR && m.an == 0 &&
			   !opt_find(&m, DNS_EDNS_COOKIE, &(uint16_t){ 0 }),
		   "a COOKIE option of %zu bytes: FORMERR, no cookie", bad[i]);
	}
	uint8_t opts[80];
	size_t ol = opt_put(opts, DNS_EDNS_COOKIE, cc, 8);
	ol += opt_put(opts + ol, DNS_EDNS_COOKIE, cc, 8);
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, ol);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_FORMERR, "two COOKIE options: FORMERR");
	/* Server cookies of 8 to 32 bytes are well formed; not ours: a fresh one. */
	uint8_t other[40] = { 0 };
	memcpy(other, cc, 8);
	q_cookie(&q, "www.example.com.", other, 16);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2 && resp_cookie(got),
	   "an 8-byte server cookie: answered with a fresh cookie");
	q_cookie(&q, "www.example.com.", other, 40);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && resp_cookie(got),
	   "a 32-byte server cookie: answered with a fresh cookie");

	/* No cookie in BADVERS (no options there) nor without the secrets (a library user). */
	q_std(&q, "www.example.com.", DNS_T_A);
	ol = opt_put(opts, DNS_EDNS_COOKIE, cc, 8);
	q_opt(&q, 1232, 1, false, opts, ol);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_BADVERS && !resp_cookie(got), "BADVERS: no cookie");
	q_cookie(&q, "www.example.com.", cc, 8);
	ask_with(&ctx_full, snap, &q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && !opt_find(&m, DNS_EDNS_COOKIE, &(uint16_t){ 0 }),
	   "no secrets in the data: the option is ignored");
	/* Room for the cookie is kept: a 512-byte answer truncates before it is dropped. */
	q_cookie(&q, "www.example.com.", cc, 8);
	dns_put16(q.b + q.len - 11 - 12 + 3, 512);
	ask_with(&ctx_full, &with, &q, QUERY_UDP);
	ok(resp_cookie(got) && m.len <= 512, "UDP size 512: the cookie is in the response");

	ctx_full.now_ms = 0;
	peer_addr = NULL;
}

/* ---- response rate limiting ---- */

struct rrl_tally {
	int answered, slipped, dropped;
};

/* Ask n times at the same moment from peer over UDP; count the outcomes. */
static struct rrl_tally rrl_ask(query_ctx_t *c, const query_data_t *s, const struct q *q, int n,
				int tr)
{
	struct rrl_tally t = { 0 };
	for (int i = 0; i < n; i++) {
		size_t len = ask_with(c, s, q, tr);
		if (!len)
			t.dropped++;
		else if ((m.flags & DNS_F_TC) && m.an == 0 && m.ns == 0 && question_echoed(q))
			t.slipped++;
		else
			t.answered++;
	}
	return t;
}

static void test_rrl(void)
{
	lb_net_t exempt[1];
	lb_net_parse("203.0.113.0/24", &exempt[0]);
	query_conf_t conf = {
		.rrl = { .rate = 10, .slip = 2, .threads = 1, .exempt = exempt, .nexempt = 1 }
	};
	query_ctx_t c;
	struct q q, nx;
	struct rrl_tally t;
	const uint64_t t0 = 1700000000000ULL;

	query_ctx_init(&c, &conf, 11);
	c.now_ms = t0;
	peer_addr = peer_set("192.0.2.1");
	q_std(&q, "www.example.com.", DNS_T_A);
	t = rrl_ask(&c, snap, &q, 30, QUERY_UDP);
	ok(t.answered == 10 && t.slipped == 10 && t.dropped == 10,
	   "rate 10, slip 2: of 30 at once, 10 answered, 10 truncated, 10 dropped (%d %d %d)",
	   t.answered, t.slipped, t.dropped);
	ok(c.stats.rrl_dropped == 10 && c.stats.rrl_slipped == 10, "both counted");
	c.now_ms = t0 + 500;
	t = rrl_ask(&c, snap, &q, 10, QUERY_UDP);
	ok(t.answered == 5, "half a second later: 5 more answered (%d)", t.answered);
	c.now_ms = t0 + 60000;
	t = rrl_ask(&c, snap, &q, 20, QUERY_UDP);
	ok(t.answered == 10, "a minute later: the burst is one second's worth, 10 (%d)",
	   t.answered);

	/* Per source network: the /24 shares, the next /24 does not. */
	peer_addr = peer_set("192.0.2.200");
	t = rrl_ask(&c, snap, &q, 5, QUERY_UDP);
	ok(t.answered == 0, "another address of the same /24: limited with it (%d)", t.answered);
	peer_addr = peer_set("192.0.3.1");
	t = rrl_ask(&c, snap, &q, 12, QUERY_UDP);
	ok(t.answered == 10, "the next /24: a bucket of its own (%d)", t.answered);
	/* Positive answers per name and type. */
	q_std(&q, "www.example.com.", DNS_T_AAAA);
	t = rrl_ask(&c, snap, &q, 12, QUERY_UDP);
	ok(t.answered == 10, "another type of the same name: a bucket of its own (%d)", t.answered);
	/* NXDOMAIN per zone: random names share one bucket. */
	peer_addr = peer_set("192.0.4.1");
	t.answered = 0;
	for (int i = 0; i < 30; i++) {
		char name[64];
		snprintf(name, sizeof(name), "nx%d.example.com.", i);
		q_std(&nx, name, DNS_T_A);
		struct rrl_tally one = rrl_ask(&c, snap, &nx, 1, QUERY_UDP);
		t.answered += one.answered;
	}
	ok(t.answered == 10, "30 different names that do not exist: 10 NXDOMAIN answered (%d)",
	   t.answered);
	/* TCP is never limited; exempt networks are not. */
	t = rrl_ask(&c, snap, &nx, 20, QUERY_TCP);
	ok(t.answered == 20, "over TCP: never limited (%d)", t.answered);
	peer_addr = peer_set("203.0.113.9");
	t = rrl_ask(&c, snap, &q, 50, QUERY_UDP);
	ok(t.answered == 50, "an exempt network: never limited (%d)", t.answered);
	/* IPv6 by /56. */
	peer_addr = peer_set("2001:db8:0:1::1");
	t = rrl_ask(&c, snap, &q, 12, QUERY_UDP);
	peer_addr = peer_set("2001:db8:0:2::1");
	struct rrl_tally t2 = rrl_ask(&c, snap, &q, 2, QUERY_UDP);
	peer_addr = peer_set("2001:db8:0:100::1");
	struct rrl_tally t3 = rrl_ask(&c, snap, &q, 2, QUERY_UDP);
	ok(t.answered == 10 && t2.answered == 0 && t3.answered == 2,
	   "IPv6: one /56 shares a bucket, the next /56 has its own (%d %d %d)", t.answered,
	   t2.answered, t3.answered);
	/* A valid server cookie is never limited. */
	static query_cookie_secrets_t secrets;
	memset(secrets.current, 7, 16);
	query_cookie_secrets_ready(&secrets);
	query_data_t with = *snap;
	with.cookies = &secrets;
	uint8_t cookie[24] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	const uint8_t ip[4] = { 192, 0, 5, 1 };
	cookie_expect(cookie + 8, secrets.current, cookie, (uint32_t)(t0 / 1000) + 60, ip, 4);
	peer_addr = peer_set("192.0.5.1");
	q_cookie(&q, "www.example.com.", cookie, 24);
	t = rrl_ask(&c, &with, &q, 40, QUERY_UDP);
	ok(t.answered == 40, "a valid server cookie: never limited (%d)", t.answered);
	cookie[23] ^= 1;
	q_cookie(&q, "www.example.com.", cookie, 24);
	t = rrl_ask(&c, &with, &q, 40, QUERY_UDP);
	ok(t.answered == 10 && t.slipped == 15 && resp_cookie(cookie),
	   "an invalid one: limited; the truncated answers carry a fresh cookie (%d %d)",
	   t.answered, t.slipped);
	/* Memory bounded: a million sources, no allocation (counted for every query here). */
	q_std(&q, "www.example.com.", DNS_T_A);
	for (uint32_t i = 0; i < 200000; i++) {
		struct sockaddr_in *a = (struct sockaddr_in *)&peer_ss;
		a->sin_addr.s_addr = htonl(0x0a000000u + (i << 8));
		alloc_counting = true;
		query_answer(&c, snap, q.b, q.len, resp, QUERY_UDP, (struct sockaddr *)a);
		alloc_counting = false;
	}
	peer_addr = peer_set("192.0.3.1");
	c.now_ms = t0 + 60000 + 500;
	t = rrl_ask(&c, snap, &q, 12, QUERY_UDP);
	ok(t.answered >= 5 && t.answered <= 10,
	   "after 200,000 other sources: the table still limits (%d answered)", t.answered);
	query_ctx_fini(&c);

	/* Slip 0 drops all, slip 1 truncates all; two threads halve each one's share. */
	conf.rrl.slip = 0;
	query_ctx_init(&c, &conf, 12);
	c.now_ms = t0;
	peer_addr = peer_set("192.0.2.1");
	t = rrl_ask(&c, snap, &q, 20, QUERY_UDP);
	ok(t.answered == 10 && t.dropped == 10, "slip 0: every limited response dropped");
	query_ctx_fini(&c);
	conf.rrl.slip = 1;
	conf.rrl.threads = 2;
	query_ctx_init(&c, &conf, 13);
	c.now_ms = t0;
	t = rrl_ask(&c, snap, &q, 20, QUERY_UDP);
	ok(t.answered == 5 && t.slipped == 15,
	   "slip 1, two threads: 5 answered by this thread, every limited one truncated (%d %d)",
	   t.answered, t.slipped);
	query_ctx_fini(&c);
	conf.rrl.rate = 1;
	conf.rrl.threads = 4;
	query_ctx_init(&c, &conf, 14);
	c.now_ms = t0;
	t = rrl_ask(&c, snap, &q, 3, QUERY_UDP);
	c.now_ms = t0 + 4000;
	t2 = rrl_ask(&c, snap, &q, 3, QUERY_UDP);
	ok(t.answered == 1 && t2.answered == 1,
	   "rate 1 over 4 threads: one answer, then one per 4 s (%d %d)", t.answered, t2.answered);
	query_ctx_fini(&c);
	peer_addr = NULL;
}

/* ---- RFC 7828 edns-tcp-keepalive ---- */

static void test_keepalive(void)
{
	struct q q;
	uint8_t opts[16], two[2] = { 0, 50 };
	uint16_t len = 0;
	const uint8_t *k;

	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, opt_put(opts, DNS_EDNS_KEEPALIVE, NULL, 0));
	ask(&q, QUERY_TCP);
	k = opt_find(&m, DNS_EDNS_KEEPALIVE, &len);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2 && k && len == 2 && dns_get16(k) == 100,
	   "TCP, an empty edns-tcp-keepalive: the answer with TIMEOUT 100 (10 s)");
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2 &&
		   !opt_find(&m, DNS_EDNS_KEEPALIVE, &len),
	   "UDP: the option is ignored, none in the answer");
	ask_with(&ctx_bare, snap, &q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && !opt_find(&m, DNS_EDNS_KEEPALIVE, &len),
	   "no timeout configured: none sent");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, opts, opt_put(opts, DNS_EDNS_KEEPALIVE, two, 2));
	ask(&q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_FORMERR && m.an == 0 && question_echoed(&q),
	   "TCP, a query with a TIMEOUT value: FORMERR (RFC 7828 3.2.1)");
	ask(&q, QUERY_UDP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && m.an == 2, "... over UDP ignored: answered");
	q_std(&q, "www.example.com.", DNS_T_A);
	q_opt(&q, 1232, 0, false, NULL, 0);
	ask(&q, QUERY_TCP);
	ok(rcode_of(&m) == DNS_RCODE_NOERROR && !opt_find(&m, DNS_EDNS_KEEPALIVE, &len),
	   "TCP without the option: none in the answer");
}

static void test_zone_set_find(void)
{
	static const char *const apexes[] = { "example.com.",
					      "sub.example.com.",
					      "a.sub.example.com.",
					      "b.example.com.",
					      "xample.com.",
					      "net.",
					      "." };
	static const struct {
		const char *name;
		const char *zone; /* NULL: none */
	} rows[] = {
		{ "www.example.com.", "example.com." },
		{ "www.a.sub.example.com.", "a.sub.example.com." },
		{ "a.sub.example.com.", "a.sub.example.com." },
		{ "x.sub.example.com.", "sub.example.com." },
		{ "xsub.example.com.", "example.com." },
		{ "b.example.com.", "b.example.com." },
		{ "ab.example.com.", "example.com." },
		/* \001b: from its second byte on, the name spells b.example.com. */
		{ "\\001b.example.com.", "example.com." },
		{ "www.xample.com.", "xample.com." },
		{ "com.", NULL },
		{ "example.net.", "net." },
		{ "org.", NULL },
	};
	for (size_t nz = 3; nz <= ARRAY_SIZE(apexes); nz++) {
		zone_set_t *set = zone_set_new();
		for (size_t k = 0; k < nz; k++) {
			zone_t *z = zone_start(apexes[k]);
			add_soa(z, apexes[k], 3600, 1, 300);
			add_name(z, apexes[k], DNS_T_NS, 3600, "ns.invalid.");
			zone_done(set, z);
		}
		zone_set_finish(set);
		bool good = true;
		for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
			uint8_t w[DNS_NAME_MAX], off[DNS_LABELS_MAX];
			wire(w, rows[i].name);
			size_t len = dns_name_len(w, DNS_NAME_MAX);
			int n = 0;
			for (size_t p = 0; w[p]; p += 1 + w[p])
				off[n++] = (uint8_t)p;
			const zone_t *z = zone_set_find(set, w, len, off, n);
			/* The deepest of the first nz apexes that is a suffix of the name. */
			const char *want = NULL;
			for (const char *sfx = rows[i].name; sfx && !want;) {
				for (size_t k = 0; k < nz && !want; k++)
					if (strcmp(apexes[k], sfx) == 0)
						want = apexes[k];
				if (strcmp(sfx, ".") == 0)
					break;
				sfx = strchr(sfx, '.') + 1;
				if (!*sfx)
					sfx = ".";
			}
			if (nz == ARRAY_SIZE(apexes) && rows[i].zone)
				want = rows[i].zone; /* the table says it for the full set */
			uint8_t wa[DNS_NAME_MAX];
			if (want)
				wire(wa, want);
			bool got = want ? z && z->apex_len == dns_name_len(wa, DNS_NAME_MAX) &&
						   memcmp(z->apex, wa, z->apex_len) == 0
					: z == NULL;
			if (!got) {
				good = false;
				diag("%zu zones: %s -> want %s", nz, rows[i].name,
				     want ? want : "none");
			}
		}
		ok(good, "zone_set_find with %zu zones: the deepest zone at a label boundary", nz);
		zone_set_free(set);
	}
}

int main(void)
{
	static const query_conf_t conf_full = {
		.nsid = (const uint8_t *)"ns-test-1",
		.nsid_len = 9,
		.server_id = "dns-1.example",
		.server_version = "gslbd-test 1.0",
		.tcp_keepalive = 100,
	};
	static const query_conf_t conf_bare = { 0 };
	gslb_log_set_level(GSLB_LOG_ERROR);
	test_zone_set_find();
	snap = snapshot_build();
	query_ctx_init(&ctx_full, &conf_full, 1);
	query_ctx_init(&ctx_bare, &conf_bare, 2);

	test_drop();
	test_positive();
	test_negative();
	test_wildcard();
	test_cname();
	test_referral();
	test_refused();
	test_classes();
	test_any();
	test_notimp();
	test_formerr();
	test_trailing();
	test_edns();
	test_ecs();
	test_truncation();
	test_pool();
	test_dname();
	test_cname_loop();
	test_ds_parent();
	test_tsig();
	test_siphash();
	test_cookies();
	test_rrl();
	test_keepalive();

	ok(responses > 150, "%d responses checked", responses);
	is_int(bad_responses, 0,
	       "every response decodes exactly, passes ldns_wire2pkt, has the ID, QR=1, RA=0");
	ok(ctx_full.stats.dropped >= 3, "dropped packets counted");
	if (COUNT_ALLOCS)
		is_int((long long)alloc_count, 0, "no allocation in %lu calls of query_answer()",
		       counted_queries);
	else
		printf("ok %d # SKIP allocation count under AddressSanitizer\n", ++tap_count);
	snapshot_free(snap);
	return done_testing();
}
