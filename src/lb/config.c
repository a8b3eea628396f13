/* SPDX-License-Identifier: MIT */
/*
 * Pools from the database's configuration, as the answer path reads them (README, Balanced names).
 */
#include "gslb/lb.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
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
	free((char *)m->name);
	m->name = NULL;
	free(m->addr[0]);
	free(m->addr[1]);
	free(m->countries);
	free(m->nets);
	free(m->uvec);
	m->addr[0] = m->addr[1] = NULL;
	m->countries = NULL;
	m->nets = NULL;
	m->uvec = NULL;
}

void lb_pool_clear(lb_pool_t *p)
{
	lb_pool_sel_clear(p);
	lb_geo_nets_free(p);
	if (p->block) {
		/* Members, their parts and the name: one allocation (pool_build()). */
		free(p->block);
	} else {
		for (uint16_t k = 0; k < p->nmembers; k++)
			lb_member_free(&p->members[k]);
		free(p->members);
		free((uint8_t *)p->name);
	}
	p->block = NULL;
	p->members = NULL;
	p->nmembers = 0;
	p->name = NULL;
	p->name_len = 0;
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
	if (p->block == (void *)p) {
		/* The pool lives at the start of its own block (lb_pool_home()). */
		lb_pool_sel_clear(p);
		lb_geo_nets_free(p);
		free(p);
		return;
	}
	lb_pool_clear(p);
	free(p);
}

int lb_pool_set_name(lb_pool_t *p, const char *text)
{
	uint8_t wire[DNS_NAME_MAX + 1];
	int len = dns_name_from_str(wire, text);
	if (len < 0)
		return GSLB_EPARSE;
	uint8_t *name = gslb_malloc((size_t)len);
	dns_name_lower(name, wire);
	free((uint8_t *)p->name);
	p->name = name;
	p->name_len = (uint8_t)len;
	return len;
}

void lb_member_set_name(lb_member_t *m, const char *fmt, ...)
{
	char buf[LB_MEMBER_NAME_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free((char *)m->name);
	m->name = gslb_strdup(buf);
}

static bool member_equal(const lb_member_t *a, const lb_member_t *b)
{
	if (strcmp(a->name, b->name) != 0 || a->weight != b->weight || a->priority != b->priority ||
	    a->admin != b->admin || a->has_location != b->has_location ||
	    (a->has_location && memcmp(a->uvec, b->uvec, 3 * sizeof(*a->uvec)) != 0))
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

const db_alias_state_t *lb_alias_find(const db_aliases_t *aliases, const char *name)
{
	size_t lo = 0, hi = aliases && name ? aliases->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(aliases->v[mid].name, name);
		if (c == 0)
			return &aliases->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool lb_member_address(const db_member_t *m, const db_aliases_t *aliases, size_t i,
		       lb_member_addr_t *out)
{
	if (i < m->naddresses) {
		out->address = m->addresses[i];
		out->family = m->families[i];
		out->alias = NULL;
		return true;
	}
	i -= m->naddresses;
	/* A name that never resolved has no addresses: the member serves its own alone. */
	const db_alias_state_t *s = m->alias ? lb_alias_find(aliases, m->alias) : NULL;
	if (!s || s->never_resolved || i >= s->naddresses)
		return false;
	out->address = s->addresses[i];
	out->family = s->families[i];
	out->alias = s;
	return true;
}

/* The served addresses (lb_member_address()) of family fam (4 or 6) of m, all of them. */
static size_t addrs_served(const db_member_t *m, int fam, const db_aliases_t *aliases)
{
	lb_member_addr_t sa;
	size_t n = 0;
	for (size_t i = 0; lb_member_address(m, aliases, i, &sa); i++)
		n += sa.family == fam;
	return n;
}

/* The addresses of family fam (4 or 6) of m, as many as addrs_build() may keep. */
static size_t addrs_count(const db_member_t *m, int fam, const db_aliases_t *aliases)
{
	size_t n = addrs_served(m, fam, aliases);
	return n < LB_ADDRS_MAX ? n : LB_ADDRS_MAX;
}

/*
 * The addresses of family fam (4 or 6) m serves, its own and its alias's
 * (lb_member_address()), at most LB_ADDRS_MAX, into the zeroed array a of
 * addrs_count() entries, each with its index among the served ones.  Bad
 * rows (written by another tool than gslbctl) are skipped with a warning.
 */
static uint16_t addrs_build(const db_member_t *m, int fam, lb_addr_t *a, const char *pool,
			    const db_aliases_t *aliases)
{
	lb_member_addr_t sa;
	size_t n = addrs_served(m, fam, aliases);
	if (n == 0)
		return 0;
	if (n > LB_ADDRS_MAX) {
		log_warn("pool %s member %s: %zu IPv%d addresses, only the first %d are used", pool,
			 m->name, n, fam, LB_ADDRS_MAX);
		n = LB_ADDRS_MAX;
	}
	uint16_t k = 0;
	for (size_t i = 0; i <= UINT16_MAX && k < n && lb_member_address(m, aliases, i, &sa); i++) {
		if (sa.family != fam)
			continue;
		if (inet_pton(fam == 4 ? AF_INET : AF_INET6, sa.address, a[k].addr) != 1) {
			log_warn("pool %s member %s: '%s' is not an IPv%d address, skipped", pool,
				 m->name, sa.address, fam);
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
				 pool, m->name, sa.address);
			continue;
		}
		/* The same address spelt twice: one record, not two (RFC 2181 5). */
		const lb_addr_t *dup = NULL;
		for (uint16_t d = 0; d < k && !dup; d++)
			if (memcmp(a[d].addr, a[k].addr, sizeof(a[k].addr)) == 0)
				dup = &a[d];
		if (dup) {
			/* An alias may well resolve to an address the member lists: no news. */
			if (!sa.alias)
				log_warn("pool %s member %s: '%s' is the same address as '%s', "
					 "skipped",
					 pool, m->name, sa.address, m->addresses[dup->row]);
			continue;
		}
		a[k].family = (uint8_t)fam;
		a[k].row = (uint16_t)i;
		/* Health checks assign target indexes (issue 4); until then every address is up. */
		a[k].target = LB_TARGET_NONE;
		k++;
	}
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

/* The items of m's country list: the places member_places_build() may keep. */
static size_t countries_count(const db_member_t *m)
{
	char item[16];
	size_t n = 0;
	for (const char *s = m->countries ? m->countries : ""; list_next(&s, item, sizeof(item));)
		n++;
	return n < UINT16_MAX ? n : UINT16_MAX;
}

/*
 * Interface 5 `country` (CC or CC-SUB) and `continent` lists; the countries
 * into places (zeroed, countries_count() entries).
 */
static void member_places_build(lb_member_t *lm, const db_member_t *m, char (*places)[8],
				const char *pool)
{
	char item[16];
	const char *s;
	size_t n = countries_count(m);

	if (n) {
		lm->countries = places;
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

static size_t nets_count(const db_member_t *m)
{
	return m->nnetworks < UINT16_MAX ? m->nnetworks : UINT16_MAX;
}

/* m's networks into nets (zeroed, nets_count() entries). */
static void member_nets_build(lb_member_t *lm, const db_member_t *m, lb_net_t *nets,
			      const char *pool)
{
	size_t n = nets_count(m);
	if (n == 0)
		return;
	lm->nets = nets;
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

/* A member's name as kept: at most LB_MEMBER_NAME_MAX bytes. */
static size_t member_name_len(const db_member_t *m)
{
	return strnlen(m->name, LB_MEMBER_NAME_MAX);
}

/*
 * Where pool_build() puts the parts of the next member in its pool's block:
 * each advanced past what the member reserved (the *_count() functions).
 */
typedef struct block_cursor {
	double *locs;
	lb_addr_t *addrs;
	lb_net_t *nets;
	char (*places)[8];
	char *names;
} block_cursor_t;

static void member_build(lb_member_t *lm, const db_member_t *m, block_cursor_t *c, const char *pool,
			 const db_aliases_t *aliases)
{
	size_t nl = member_name_len(m);
	memcpy(c->names, m->name, nl);
	c->names[nl] = '\0';
	lm->name = c->names;
	c->names += nl + 1;
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
	if (lm->has_location) {
		lm->uvec = c->locs;
		c->locs += 3;
		geo_unit_vector(m->latitude, m->longitude, lm->uvec);
	}
	for (int f = 0; f < 2; f++) {
		int fam = f ? 6 : 4;
		size_t n = addrs_count(m, fam, aliases);
		lm->addr[f] = n ? c->addrs : NULL;
		lm->naddr[f] = addrs_build(m, fam, c->addrs, pool, aliases);
		c->addrs += n;
	}
	member_places_build(lm, m, c->places, pool);
	c->places += countries_count(m);
	member_nets_build(lm, m, c->nets, pool);
	c->nets += nets_count(m);
}

/* One pool; false (with a warning) when its name is not a valid domain name. */
static bool pool_build(lb_pool_t *lp, const db_pool_t *p, const db_aliases_t *aliases)
{
	uint8_t wire[DNS_NAME_MAX + 1];
	int len = dns_name_from_str(wire, p->name);
	if (len < 0) {
		log_warn("pool '%s': not a valid domain name, skipped", p->name);
		return false;
	}
	size_t name_len = (size_t)dns_name_lower(wire, wire);
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

	/*
	 * One block, laid out by decreasing alignment: room for the pool
	 * itself (lb_pool_home()), members, locations, addresses, networks, countries,
	 * then the pool's wire name and the members' names.  Each part gets
	 * what its *_count() reserves, its exact size unless rows are skipped
	 * as bad.
	 */
	_Static_assert(_Alignof(lb_member_t) <= _Alignof(lb_pool_t) &&
			       sizeof(lb_pool_t) % _Alignof(lb_member_t) == 0 &&
			       _Alignof(double) <= _Alignof(lb_member_t) &&
			       sizeof(lb_member_t) % _Alignof(double) == 0 &&
			       _Alignof(lb_addr_t) <= _Alignof(double) &&
			       3 * sizeof(double) % _Alignof(lb_addr_t) == 0 &&
			       sizeof(lb_addr_t) % _Alignof(lb_net_t) == 0 &&
			       _Alignof(lb_net_t) == 1,
		       "the block's parts stay aligned");
	size_t nlocs = 0, naddrs = 0, nnets = 0, nplaces = 0, names = name_len;
	for (size_t k = 0; k < n; k++) {
		const db_member_t *m = &p->members[k];
		nlocs += m->has_location;
		naddrs += addrs_count(m, 4, aliases) + addrs_count(m, 6, aliases);
		nnets += nets_count(m);
		nplaces += countries_count(m);
		names += member_name_len(m) + 1;
	}
	size_t size = sizeof(lb_pool_t) + n * sizeof(lb_member_t) + nlocs * 3 * sizeof(double) +
		      naddrs * sizeof(lb_addr_t) + nnets * sizeof(lb_net_t) +
		      nplaces * sizeof(*lp->members->countries) + names;
	uint8_t *block = gslb_calloc(1, size);
	lb_member_t *members = (lb_member_t *)(block + sizeof(lb_pool_t));
	block_cursor_t c;
	c.locs = (double *)(members + n);
	c.addrs = (lb_addr_t *)(c.locs + 3 * nlocs);
	c.nets = (lb_net_t *)(c.addrs + naddrs);
	c.places = (char(*)[8])(c.nets + nnets);
	uint8_t *pname = (uint8_t *)(c.places + nplaces);
	memcpy(pname, wire, name_len);
	c.names = (char *)(pname + name_len);

	lp->block = block;
	lp->name = pname;
	lp->name_len = (uint8_t)name_len;
	lp->nmembers = (uint16_t)n;
	lp->members = members;
	for (size_t k = 0; k < n; k++)
		member_build(&lp->members[k], &p->members[k], &c, p->name, aliases);
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

lb_pool_t *lb_pool_home(lb_pool_t *p)
{
	lb_pool_t *home;
	if (p->block) {
		home = p->block;
		memcpy(home, p, sizeof(*home));
	} else {
		home = gslb_malloc(sizeof(*home));
		memcpy(home, p, sizeof(*home));
	}
	home->refs = 1;
	return home;
}

lb_pool_t *lb_pool_new(const db_pool_t *p, const db_aliases_t *aliases)
{
	lb_pool_t lp = { 0 };
	if (!pool_build(&lp, p, aliases))
		return NULL;
	return lb_pool_home(&lp);
}

uint32_t lb_config_pools(const db_config_t *cfg, const db_aliases_t *aliases, lb_pool_t **out)
{
	*out = NULL;
	if (!cfg || cfg->npools == 0)
		return 0;
	lb_pool_t *pools = gslb_calloc(cfg->npools, sizeof(*pools));
	uint32_t n = 0;
	for (size_t i = 0; i < cfg->npools && n < UINT32_MAX; i++)
		if (pool_build(&pools[n], &cfg->pools[i], aliases)) {
			pools[n].cfg_index = (uint32_t)i;
			n++;
		}
	*out = pools;
	return n;
}
