/* SPDX-License-Identifier: MIT */
/* Pool sets: the pools of one snapshot, found by name, with the names they make exist. */
#include "gslb/lb.h"

#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/zone.h"
#include "internal.h"

/* What a set owns but its pools: lb_set_patch() gives up with it when the pools are not its own. */
static void lb_set_free_shell(lb_set_t *s)
{
	free(s->entries);
	free(s->names);
	free(s->table);
	free(s->zones);
	free(s);
}

void lb_set_free(lb_set_t *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->npools; i++)
		lb_pool_unref(s->pools[i]);
	free(s->pools);
	free(s->entries);
	free(s->names);
	free(s->table);
	free(s->zones);
	free(s);
}

const lb_entry_t *lb_set_find_hashed(const lb_set_t *s, const uint8_t *lname, size_t len,
				     uint32_t h)
{
	if (!s || !s->table)
		return NULL;
	for (uint32_t i = h & s->table_mask;; i = (i + 1) & s->table_mask) {
		if (!s->table[i])
			return NULL;
		const lb_entry_t *e = &s->entries[s->table[i] - 1];
		if (e->hash == h && e->name_len == len && memcmp(e->name, lname, len) == 0)
			return e;
	}
}

static void add_zone(lb_set_t *s, const void *z)
{
	if (lb_set_has_zone(s, z))
		return;
	s->zones = gslb_realloc(s->zones, (s->nzones + 1) * sizeof(*s->zones));
	s->zones[s->nzones++] = z;
}

/* Insert unless the name is there; a pool replaces an ancestor-only entry. */
static void table_put(lb_set_t *s, const uint8_t *name, size_t len, const lb_pool_t *pool)
{
	uint32_t h = zone_name_hash(name, len);
	uint32_t i = h & s->table_mask;
	for (;; i = (i + 1) & s->table_mask) {
		if (!s->table[i])
			break;
		lb_entry_t *e = &s->entries[s->table[i] - 1];
		if (e->hash == h && e->name_len == len && memcmp(e->name, name, len) == 0) {
			if (pool)
				e->pool = pool;
			return;
		}
	}
	lb_entry_t *e = &s->entries[s->nentries++];
	e->name = name;
	e->name_len = (uint8_t)len;
	e->hash = h;
	e->pool = pool;
	s->table[i] = s->nentries;
}

int lb_pool_serving(const zone_set_t *zones, const uint8_t *name, size_t len, const zone_t **zone)
{
	uint8_t off[DNS_LABELS_MAX];
	int labels = 0;
	for (size_t o = 0; o < len && name[o]; o += 1 + (size_t)name[o])
		off[labels++] = (uint8_t)o;
	const zone_t *z = zones ? zone_set_find(zones, name, len, off, labels) : NULL;
	if (zone)
		*zone = z;
	if (!z)
		return LB_SERVING_NO_ZONE;
	/*
	 * Below a zone cut the child zone's servers answer, not us; at the cut,
	 * the referral.  Below a DNAME the name does not exist: the DNAME
	 * redirects it (RFC 6672 2.4), while a pool at the DNAME's own name
	 * answers as at any other.  The topmost of them decides.
	 */
	int serving = LB_SERVING_YES;
	for (int k = 0; k <= labels - z->apex_labels; k++) {
		size_t o = k == labels ? len - 1 : off[k];
		const zone_node_t *n = zone_node_find(z, name + o, len - o);
		if (!n)
			continue;
		if (n->flags & ZONE_NODE_DELEG)
			serving = LB_SERVING_BELOW_CUT;
		else if ((n->flags & ZONE_NODE_DNAME) && k > 0)
			serving = LB_SERVING_BELOW_DNAME;
	}
	return serving;
}

const char *lb_serving_name(int serving)
{
	switch (serving) {
	case LB_SERVING_YES:
		return "served";
	case LB_SERVING_NO_ZONE:
		return "in no served zone";
	case LB_SERVING_BELOW_CUT:
		return "below a delegation";
	case LB_SERVING_BELOW_DNAME:
		return "below a DNAME";
	default:
		return "unknown";
	}
}

/*
 * Whether p is served in zones (z its zone), with the warnings of gslbd(8)
 * when it is not or when the zone file has records of its own there.
 */
static bool pool_place(const zone_set_t *zones, lb_pool_t *p, const zone_t **z)
{
	/* The text of the name only for a warning: it cost 10% of a 100,000-pool load. */
	char text[1024];
	int serving = lb_pool_serving(zones, p->name, p->name_len, z);
	/*
	 * A pool shared with the set being answered from has the same zones,
	 * hence the same flag: written only when it differs.
	 */
	if (p->served != (serving == LB_SERVING_YES))
		p->served = serving == LB_SERVING_YES;
	if (serving != LB_SERVING_YES) {
		dns_name_to_str(text, sizeof(text), p->name);
		log_warn("pool %s is %s: not served", text, lb_serving_name(serving));
		return false;
	}
	const zone_node_t *n = zone_node_find(*z, p->name, p->name_len);
	if (n && (zone_node_rrset(n, DNS_T_A) || zone_node_rrset(n, DNS_T_AAAA) ||
		  zone_node_rrset(n, DNS_T_CNAME))) {
		dns_name_to_str(text, sizeof(text), p->name);
		log_warn("pool %s: the zone file also has A, AAAA or CNAME there; the pool "
			 "answers A and AAAA",
			 text);
	}
	return true;
}

lb_set_t *lb_set_patch(const lb_set_t *old, lb_pool_t **pools, uint32_t npools,
		       const zone_set_t *zones)
{
	if (!old || old->npools != npools)
		return NULL;
	/* The same names in the same places: pools only replaced by pools of their name. */
	for (uint32_t i = 0; i < npools; i++) {
		const lb_pool_t *p = pools[i], *q = old->pools[i];
		if (p != q && (p->name_len != q->name_len || memcmp(p->name, q->name, p->name_len)))
			return NULL;
	}
	lb_set_t *s = gslb_calloc(1, sizeof(*s));
	s->pools = pools;
	s->npools = npools;
	s->nunserved = old->nunserved;
	s->nentries = old->nentries;
	s->entries = gslb_malloc((old->nentries ? old->nentries : 1) * sizeof(*s->entries));
	if (old->nentries)
		memcpy(s->entries, old->entries, old->nentries * sizeof(*s->entries));
	s->table_mask = old->table_mask;
	s->table = gslb_malloc(((size_t)old->table_mask + 1) * sizeof(*s->table));
	memcpy(s->table, old->table, ((size_t)old->table_mask + 1) * sizeof(*s->table));
	s->nzones = old->nzones;
	s->zones = gslb_malloc((old->nzones ? old->nzones : 1) * sizeof(*s->zones));
	if (old->nzones) /* none: old->zones may be NULL, which memcpy() must not be given */
		memcpy(s->zones, old->zones, old->nzones * sizeof(*s->zones));

	for (uint32_t i = 0; i < npools; i++) {
		lb_pool_t *p = pools[i];
		const lb_pool_t *q = old->pools[i];
		const zone_t *z;
		if (p == q)
			continue;
		/* Same name, same zones: served as q was (warned again, as a build would). */
		if (pool_place(zones, p, &z) != q->served) {
			lb_set_free_shell(s);
			return NULL;
		}
		if (!p->served)
			continue;
		/* Its entry and those of its ancestors that name it, or point into its name. */
		for (size_t o = 0; o < p->name_len && p->name[o]; o += 1 + (size_t)p->name[o]) {
			size_t len = p->name_len - o;
			lb_entry_t *e = (lb_entry_t *)lb_set_find_hashed(
				s, p->name + o, len, zone_name_hash(p->name + o, len));
			if (!e)
				continue;
			if (e->pool == q)
				e->pool = p;
			if (e->name >= q->name && e->name < q->name + q->name_len)
				e->name = p->name + (e->name - q->name);
		}
	}
	return s;
}

/*
 * The name table again at the size of the names it holds: lb_set_make()
 * reserves an entry for every label of every pool, while pools mostly share
 * their ancestors (100,000 pools under one parent: 100,001 names, 400,000
 * reserved).  Four slots a name of 4 bytes (an entry's index) keep the
 * table at most a quarter full, so a lookup mostly reads one slot and one
 * entry: 2 MiB for 100,000 pools, where eight pointers a name took 8 MiB.
 */
static void table_fit(lb_set_t *s)
{
	uint32_t slots = 16;
	while (slots < (size_t)s->nentries * 4 && slots <= s->table_mask)
		slots *= 2;
	lb_entry_t *entries = gslb_malloc((s->nentries ? s->nentries : 1) * sizeof(*entries));
	memcpy(entries, s->entries, s->nentries * sizeof(*entries));
	uint32_t *table = gslb_calloc(slots, sizeof(*table));
	for (uint32_t k = 0; k < s->nentries; k++) {
		uint32_t i = entries[k].hash & (slots - 1);
		while (table[i])
			i = (i + 1) & (slots - 1);
		table[i] = k + 1;
	}
	free(s->entries);
	free(s->table);
	s->entries = entries;
	s->table = table;
	s->table_mask = slots - 1;
}

lb_set_t *lb_set_new(lb_pool_t *pools, uint32_t npools, const zone_set_t *zones)
{
	/* Each pool on its own, so that sets made later can share it. */
	lb_pool_t **refs = gslb_calloc(npools ? npools : 1, sizeof(*refs));
	for (uint32_t i = 0; i < npools; i++)
		refs[i] = lb_pool_home(&pools[i]);
	free(pools);
	return lb_set_make(refs, npools, zones);
}

lb_set_t *lb_set_make(lb_pool_t **pools, uint32_t npools, const zone_set_t *zones)
{
	lb_set_t *s = gslb_calloc(1, sizeof(*s));
	s->pools = pools;
	s->npools = npools;

	/* Each pool adds its own name and every ancestor down to its zone's apex. */
	size_t max_entries = 0;
	for (uint32_t i = 0; i < npools; i++)
		max_entries += (size_t)dns_name_labels(pools[i]->name) + 1;
	uint32_t slots = 16;
	while (slots < max_entries * 2)
		slots *= 2;
	s->table_mask = slots - 1;
	s->table = gslb_calloc(slots, sizeof(*s->table));
	s->entries = gslb_calloc(max_entries ? max_entries : 1, sizeof(*s->entries));

	for (uint32_t i = 0; i < npools; i++) {
		lb_pool_t *p = pools[i];
		uint8_t off[DNS_LABELS_MAX];
		int labels = 0;
		for (size_t o = 0; p->name[o]; o += 1 + (size_t)p->name[o])
			off[labels++] = (uint8_t)o;
		const zone_t *z;
		if (!pool_place(zones, p, &z)) {
			s->nunserved++;
			continue;
		}
		add_zone(s, z);
		table_put(s, p->name, p->name_len, p);
		for (int k = 1; k < labels - z->apex_labels; k++)
			table_put(s, p->name + off[k], p->name_len - off[k], NULL);
	}
	table_fit(s);
	return s;
}
