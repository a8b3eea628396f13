/* SPDX-License-Identifier: MIT */
/*
 * Pools from the database's configuration, as the answer path reads them (README, Balanced names).
 */
#include "gslb/lb.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/dns.h"
#include "internal.h"

/* Interface 5: degraded-ttl defaults to min(ttl, 10). */
#define DEGRADED_TTL_DEFAULT 10

void lb_member_free(lb_member_t *m)
{
	free(m->addr[0]);
	free(m->addr[1]);
	free(m->countries);
	free(m->nets);
	m->addr[0] = m->addr[1] = NULL;
	m->countries = NULL;
	m->nets = NULL;
}

void lb_pool_clear(lb_pool_t *p)
{
	lb_pool_sel_clear(p);
	lb_geo_nets_free(p);
	for (uint16_t k = 0; k < p->nmembers; k++)
		lb_member_free(&p->members[k]);
	free(p->members);
	p->members = NULL;
	p->nmembers = 0;
}

void lb_pools_free(lb_pool_t *pools, uint32_t n)
{
	if (!pools)
		return;
	for (uint32_t i = 0; i < n; i++)
		lb_pool_clear(&pools[i]);
	free(pools);
}

void lb_pool_unref(lb_pool_t *p)
{
	if (!p || --p->refs > 0)
		return;
	lb_pool_clear(p);
	free(p);
}

static bool member_equal(const lb_member_t *a, const lb_member_t *b)
{
	if (strcmp(a->name, b->name) != 0 || a->weight != b->weight || a->priority != b->priority ||
	    a->admin != b->admin || a->has_location != b->has_location ||
	    (a->has_location && (a->lat != b->lat || a->lon != b->lon)))
		return false;
	if (a->continents != b->continents || a->ncountries != b->ncountries ||
	    a->nnets != b->nnets)
		return false;
	for (uint16_t k = 0; k < a->ncountries; k++)
		if (strcmp(a->countries[k], b->countries[k]) != 0)
			return false;
	for (uint16_t k = 0; k < a->nnets; k++)
		if (a->nets[k].family != b->nets[k].family || a->nets[k].len != b->nets[k].len ||
		    memcmp(a->nets[k].addr, b->nets[k].addr, sizeof(a->nets[k].addr)) != 0)
			return false;
	for (int f = 0; f < 2; f++) {
		if (a->naddr[f] != b->naddr[f])
			return false;
		for (uint16_t k = 0; k < a->naddr[f]; k++) {
			const lb_addr_t *x = &a->addr[f][k], *y = &b->addr[f][k];
			if (x->family != y->family || x->target != y->target ||
			    memcmp(x->addr, y->addr, sizeof(x->addr)) != 0)
				return false;
		}
	}
	return true;
}

bool lb_pool_equal(const lb_pool_t *p, const lb_pool_t *q)
{
	if (p == q)
		return true;
	if (p->name_len != q->name_len || memcmp(p->name, q->name, p->name_len) != 0 ||
	    p->policy != q->policy || p->answers != q->answers ||
	    p->fallback_all != q->fallback_all || p->ttl != q->ttl ||
	    p->degraded_ttl != q->degraded_ttl || p->nmembers != q->nmembers)
		return false;
	for (uint16_t k = 0; k < p->nmembers; k++)
		if (!member_equal(&p->members[k], &q->members[k]))
			return false;
	return true;
}

bool lb_pools_equal(const lb_pool_t *a, uint32_t na, const lb_pool_t *b, uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++)
		if (!lb_pool_equal(&a[i], &b[i]))
			return false;
	return true;
}

/* ::ffff:0:0/96 (RFC 4291 2.5.5.2). */
static bool v4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/*
 * The addresses of family fam (4 or 6) of m, at most LB_ADDRS_MAX, into a
 * malloc'd array, each with the row it came from.  Bad rows (written by
 * another tool than gslbctl) are skipped with a warning.
 */
static uint16_t addrs_build(const db_member_t *m, int fam, lb_addr_t **out, const char *pool)
{
	size_t n = 0;
	for (size_t i = 0; i < m->naddresses; i++)
		n += m->families[i] == fam;
	*out = NULL;
	if (n == 0)
		return 0;
	if (n > LB_ADDRS_MAX) {
		log_warn("pool %s member %s: %zu IPv%d addresses, only the first %d are used", pool,
			 m->name, n, fam, LB_ADDRS_MAX);
		n = LB_ADDRS_MAX;
	}
	lb_addr_t *a = gslb_calloc(n, sizeof(*a));
	uint16_t k = 0;
	for (size_t i = 0; i < m->naddresses && i <= UINT16_MAX && k < n; i++) {
		if (m->families[i] != fam)
			continue;
		if (inet_pton(fam == 4 ? AF_INET : AF_INET6, m->addresses[i], a[k].addr) != 1) {
			log_warn("pool %s member %s: '%s' is not an IPv%d address, skipped", pool,
				 m->name, m->addresses[i], fam);
			continue;
		}
		/*
		 * gslbctl refuses these; a row written by another tool is
		 * skipped like any bad row.  RFC 4291 2.5.5.2: ::ffff:a.b.c.d
		 * is an IPv4 peer as an IPv6 socket names it, no address of
		 * an IPv6 host, so as AAAA it would send clients nowhere.
		 */
		if (fam == 6 && v4_mapped(a[k].addr)) {
			log_warn("pool %s member %s: '%s' is an IPv4-mapped IPv6 address, skipped",
				 pool, m->name, m->addresses[i]);
			continue;
		}
		/* The same address spelt twice: one record, not two (RFC 2181 5). */
		const lb_addr_t *dup = NULL;
		for (uint16_t d = 0; d < k && !dup; d++)
			if (memcmp(a[d].addr, a[k].addr, sizeof(a[k].addr)) == 0)
				dup = &a[d];
		if (dup) {
			log_warn("pool %s member %s: '%s' is the same address as '%s', skipped",
				 pool, m->name, m->addresses[i], m->addresses[dup->row]);
			continue;
		}
		a[k].family = (uint8_t)fam;
		a[k].row = (uint16_t)i;
		/* Health checks assign target indexes (issue 4); until then every address is up. */
		a[k].target = LB_TARGET_NONE;
		k++;
	}
	*out = a;
	return k;
}

/* The next item of the comma-separated list at *s into buf: upper case, spaces dropped. */
static bool list_next(const char **s, char *buf, size_t size)
{
	const char *p = *s;
	while (*p == ',' || *p == ' ')
		p++;
	if (!*p)
		return false;
	size_t n = 0;
	for (; *p && *p != ','; p++)
		if (*p != ' ' && n + 1 < size)
			buf[n++] = (char)toupper((unsigned char)*p);
	buf[n] = '\0';
	*s = p;
	return true;
}

/* Interface 5 `country` (CC or CC-SUB) and `continent` lists. */
static void member_places_build(lb_member_t *lm, const db_member_t *m, const char *pool)
{
	char item[16];
	const char *s;
	size_t n = 0;

	for (s = m->countries ? m->countries : ""; list_next(&s, item, sizeof(item));)
		n++;
	if (n > UINT16_MAX)
		n = UINT16_MAX;
	if (n) {
		lm->countries = gslb_calloc(n, sizeof(*lm->countries));
		for (s = m->countries; lm->ncountries < n && list_next(&s, item, sizeof(item));) {
			/*
			 * Written by another tool: a code no geo file returns would
			 * never match, so say so, as for a bad continent or network.
			 */
			if (strlen(item) >= sizeof(*lm->countries) || !geo_place_code_valid(item)) {
				log_warn("pool %s member %s: country '%s' ignored (not an ISO "
					 "3166-1 "
					 "alpha-2 code or CC-SUB)",
					 pool, m->name, item);
				continue;
			}
			memcpy(lm->countries[lm->ncountries++], item, strlen(item) + 1);
		}
	}
	for (s = m->continents ? m->continents : ""; list_next(&s, item, sizeof(item));) {
		int b = lb_continent_bit(item);
		if (b < 0)
			log_warn("pool %s member %s: continent '%s' ignored", pool, m->name, item);
		else
			lm->continents |= (uint8_t)(1u << b);
	}
}

int lb_net_parse(const char *text, lb_net_t *n)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long len = 0;

	memset(n, 0, sizeof(*n));
	if (alen >= sizeof(buf))
		return GSLB_EPARSE;
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, n->addr) == 1)
		n->family = 4;
	else if (inet_pton(AF_INET6, buf, n->addr) == 1)
		n->family = 6;
	else
		return GSLB_EPARSE;
	unsigned max = n->family == 4 ? 32 : 128;
	if (!slash) {
		n->len = (uint8_t)max;
		return 0;
	}
	/* Digits only: strtoul() would take a sign and spaces as well. */
	const char *p = slash + 1;
	if (!*p)
		return -ERANGE;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -ERANGE;
		len = len * 10 + (unsigned long)(*p - '0');
		if (len > max)
			return -ERANGE;
	}
	n->len = (uint8_t)len;
	return 0;
}

bool lb_net_mask(lb_net_t *n)
{
	unsigned max = n->family == 4 ? 32 : 128;
	bool set = false;
	for (unsigned bit = n->len; bit < max; bit++) {
		uint8_t b = (uint8_t)(0x80u >> (bit % 8));
		set |= (n->addr[bit / 8] & b) != 0;
		n->addr[bit / 8] &= (uint8_t)~b;
	}
	return set;
}

static void member_nets_build(lb_member_t *lm, const db_member_t *m, const char *pool)
{
	size_t n = m->nnetworks < UINT16_MAX ? m->nnetworks : UINT16_MAX;
	if (n == 0)
		return;
	lm->nets = gslb_calloc(n, sizeof(*lm->nets));
	for (size_t i = 0; i < n; i++) {
		/* Host bits in a row another tool wrote are no reason to drop it. */
		if (lb_net_parse(m->networks[i], &lm->nets[lm->nnets]) == 0) {
			lb_net_mask(&lm->nets[lm->nnets]);
			lm->nnets++;
		} else
			log_warn("pool %s member %s: network '%s' ignored", pool, m->name,
				 m->networks[i]);
	}
}

static void member_build(lb_member_t *lm, const db_member_t *m, const char *pool)
{
	snprintf(lm->name, sizeof(lm->name), "%s", m->name);
	lm->weight = m->weight;
	lm->priority = m->priority;
	switch (m->admin) {
	case DB_ADMIN_UP:
		lm->admin = LB_ADMIN_UP;
		break;
	case DB_ADMIN_DOWN:
		lm->admin = LB_ADMIN_DOWN;
		break;
	case DB_ADMIN_DRAIN:
		lm->admin = LB_ADMIN_DRAIN;
		break;
	default:
		lm->admin = LB_ADMIN_AUTO;
		break;
	}
	lm->has_location = m->has_location;
	lm->lat = m->latitude;
	lm->lon = m->longitude;
	if (lm->has_location)
		geo_unit_vector(lm->lat, lm->lon, lm->uvec);
	lm->naddr[0] = addrs_build(m, 4, &lm->addr[0], pool);
	lm->naddr[1] = addrs_build(m, 6, &lm->addr[1], pool);
	member_places_build(lm, m, pool);
	member_nets_build(lm, m, pool);
}

/* One pool; false (with a warning) when its name is not a valid domain name. */
static bool pool_build(lb_pool_t *lp, const db_pool_t *p)
{
	uint8_t wire[DNS_NAME_MAX + 1];
	int len = dns_name_from_str(wire, p->name);
	if (len < 0) {
		log_warn("pool '%s': not a valid domain name, skipped", p->name);
		return false;
	}
	lp->name_len = (uint8_t)dns_name_lower(lp->name, wire);
	switch (p->policy) {
	case DB_POLICY_FAILOVER:
		lp->policy = LB_POLICY_FAILOVER;
		break;
	case DB_POLICY_GEO:
		lp->policy = LB_POLICY_GEO;
		break;
	default:
		lp->policy = LB_POLICY_WEIGHTED;
		break;
	}
	lp->answers = p->answers ? p->answers : 1;
	lp->fallback_all = p->fallback_all;
	lp->ttl = p->ttl;
	lp->degraded_ttl = db_pool_degraded_ttl(p);
	size_t n = p->nmembers;
	if (n > LB_MEMBERS_MAX) {
		log_warn("pool %s: %zu members, only the first %d (by name) are used", p->name, n,
			 LB_MEMBERS_MAX);
		n = LB_MEMBERS_MAX;
	}
	lp->nmembers = (uint16_t)n;
	lp->members = gslb_calloc(n ? n : 1, sizeof(*lp->members));
	for (size_t k = 0; k < n; k++)
		member_build(&lp->members[k], &p->members[k], p->name);
	lb_pool_derive(lp);
	return true;
}

void lb_pool_derive(lb_pool_t *p)
{
	p->has_nets = p->has_places = p->has_continents = false;
	p->has_family[0] = p->has_family[1] = false;
	for (uint16_t k = 0; k < p->nmembers; k++) {
		const lb_member_t *m = &p->members[k];
		p->has_nets |= m->nnets > 0;
		p->has_places |= m->ncountries > 0;
		p->has_continents |= m->continents != 0;
		p->has_family[0] |= m->naddr[0] > 0;
		p->has_family[1] |= m->naddr[1] > 0;
	}
	lb_geo_nets_build(p);
}

lb_pool_t *lb_pool_new(const db_pool_t *p)
{
	lb_pool_t *lp = gslb_calloc(1, sizeof(*lp));
	if (!pool_build(lp, p)) {
		free(lp);
		return NULL;
	}
	lp->refs = 1;
	return lp;
}

uint32_t lb_config_pools(const db_config_t *cfg, lb_pool_t **out)
{
	*out = NULL;
	if (!cfg || cfg->npools == 0)
		return 0;
	lb_pool_t *pools = gslb_calloc(cfg->npools, sizeof(*pools));
	uint32_t n = 0;
	for (size_t i = 0; i < cfg->npools && n < UINT32_MAX; i++)
		if (pool_build(&pools[n], &cfg->pools[i])) {
			pools[n].cfg_index = (uint32_t)i;
			n++;
		}
	*out = pools;
	return n;
}
