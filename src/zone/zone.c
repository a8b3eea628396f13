/* SPDX-License-Identifier: MIT */
/* Zone building (RRs in, lookup table and ready-to-copy wire blocks out) and zone lookups. */
#include "gslb/zone.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/dns.h"

/* ---- building ---- */

/* One RR as added, before zone_finish() groups them.  Offsets point into the arena. */
struct brr {
	uint32_t owner_off;
	uint32_t rdata_off;
	uint32_t ttl;
	uint32_t seq;
	uint32_t node; /* zone_finish(): its owner's node */
	uint16_t type;
	uint16_t rdlen;
	uint8_t owner_len;
};

struct zone_build {
	struct brr *rrs;
	size_t n, cap;
	uint8_t *arena;
	size_t alen, acap;
};

static uint32_t arena_put(struct zone_build *b, const void *p, size_t n)
{
	if (b->alen + n > b->acap) {
		size_t cap = b->acap ? b->acap : 4096;
		while (b->alen + n > cap)
			cap *= 2;
		b->arena = gslb_realloc(b->arena, cap);
		b->acap = cap;
	}
	uint32_t off = (uint32_t)b->alen;
	if (n)
		memcpy(b->arena + off, p, n);
	b->alen += n;
	return off;
}

zone_t *zone_new(const uint8_t *apex)
{
	int len = dns_name_len(apex, DNS_NAME_MAX);
	if (len < 0)
		return NULL;
	zone_t *z = gslb_calloc(1, sizeof(*z));
	z->apex_len = (uint8_t)dns_name_lower(z->apex, apex);
	z->apex_labels = (uint8_t)dns_name_labels(z->apex);
	z->refs = 1;
	static uint64_t gen;
	z->gen = __atomic_add_fetch(&gen, 1, __ATOMIC_RELAXED);
	z->build = gslb_calloc(1, sizeof(*z->build));
	return z;
}

/*
 * Does the lowercased name lname (len bytes, labels labels) lie at or below
 * the lowercased apex?  Names are compared label-aligned from the end.
 */
static bool name_under(const uint8_t *lname, size_t len, int labels, const uint8_t *apex,
		       size_t apex_len, int apex_labels)
{
	if (labels < apex_labels || len < apex_len)
		return false;
	const uint8_t *p = lname;
	for (int i = 0; i < labels - apex_labels; i++)
		p += 1 + *p;
	return (size_t)(lname + len - p) == apex_len && memcmp(p, apex, apex_len) == 0;
}

int zone_add_rr(zone_t *z, const uint8_t *owner, uint16_t type, uint16_t rclass, uint32_t ttl,
		const uint8_t *rdata, uint16_t rdlen)
{
	struct zone_build *b = z->build;
	if (!b)
		return -EINVAL;
	if (rclass != DNS_C_IN)
		return GSLB_ECLASS;
	int olen = dns_name_len(owner, DNS_NAME_MAX);
	if (olen < 0)
		return GSLB_ENAME;
	uint8_t lname[DNS_NAME_MAX];
	dns_name_lower(lname, owner);
	if (!name_under(lname, (size_t)olen, dns_name_labels(lname), z->apex, z->apex_len,
			z->apex_labels))
		return GSLB_EOUTOFZONE;
	if (ttl > 0x7fffffffU) /* RFC 2181 8: values with the top bit set mean zero */
		ttl = 0;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->rrs = gslb_realloc(b->rrs, b->cap * sizeof(*b->rrs));
	}
	struct brr *r = &b->rrs[b->n];
	r->owner_off = arena_put(b, lname, (size_t)olen);
	r->owner_len = (uint8_t)olen;
	r->rdata_off = arena_put(b, rdata, rdlen);
	r->rdlen = rdlen;
	r->type = type;
	r->ttl = ttl;
	r->seq = (uint32_t)b->n;
	b->n++;
	return 0;
}

static int name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	if (al != bl)
		return al < bl ? -1 : 1;
	return memcmp(a, b, al);
}

/*
 * A name's first slot: its hash scaled to the table's size, which is twice
 * the nodes, not a power of two (that was up to four times the nodes, 16
 * bytes a name more, for the same half-full table).
 */
static inline uint32_t table_home(const zone_t *z, uint32_t hash)
{
	return (uint32_t)(((uint64_t)hash * z->table_size) >> 32);
}

static inline uint32_t table_next(const zone_t *z, uint32_t i)
{
	return i + 1 == z->table_size ? 0 : i + 1;
}

static void table_insert(zone_t *z, uint32_t idx, uint32_t hash)
{
	uint32_t i = table_home(z, hash);
	while (z->table[i].node)
		i = table_next(z, i);
	z->table[i].hash = hash;
	z->table[i].node = idx + 1;
}

/*
 * Put nodes 0 to n - 1 (hash[i] the hash of node i) in the table in the
 * order of their home slots: a large zone's table is then written front to
 * back instead of at random, which cost a cache miss a node.
 */
static void table_fill(zone_t *z, const uint32_t *hash, size_t n)
{
	unsigned shift = 0;
	while (((z->table_size - 1) >> shift) >= 4096)
		shift++;
	size_t nb = ((z->table_size - 1) >> shift) + 1;
	uint32_t *start = gslb_calloc(nb + 1, sizeof(*start));
	uint32_t *order = gslb_malloc((n ? n : 1) * sizeof(*order));
	for (size_t i = 0; i < n; i++)
		start[(table_home(z, hash[i]) >> shift) + 1]++;
	for (size_t b = 0; b < nb; b++)
		start[b + 1] += start[b];
	for (size_t i = 0; i < n; i++)
		order[start[table_home(z, hash[i]) >> shift]++] = (uint32_t)i;
	for (size_t i = 0; i < n; i++)
		table_insert(z, order[i], hash[order[i]]);
	free(order);
	free(start);
}

static const uint8_t *parent_name(const uint8_t *name)
{
	return name + 1 + *name;
}

/* Order of the RRs of one node: by type, then as added. */
static int brr_type_cmp(const void *pa, const void *pb)
{
	const struct brr *a = pa, *b = pb;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

/* After node_names() and sort_rrs(), node is the index of the owner's node in sort order. */
static bool same_set(const struct brr *x, const struct brr *y)
{
	return x->type == y->type && x->node == y->node;
}

/* A name to become a node: owner names and every ancestor down from the apex. */
struct nname {
	const uint8_t *name;
	uint8_t len;
	uint32_t id; /* its index in the order names were first seen */
};

static int nname_cmp(const void *pa, const void *pb)
{
	const struct nname *a = pa, *b = pb;
	return name_cmp(a->name, a->len, b->name, b->len);
}

/*
 * The distinct node names of a zone being built, each found again through
 * a hash table: sorting every RR by its owner name and every owner's
 * ancestors with their duplicates was most of the time a large zone took.
 */
struct names {
	struct nname *v; /* in the order first seen */
	uint32_t *hash;
	size_t n, cap;
	zone_slot_t *slot; /* the hash, and the index in v plus one (0: empty) */
	size_t mask;
};

static void names_slot(struct names *t, uint32_t k)
{
	size_t i = t->hash[k] & t->mask;
	while (t->slot[i].node)
		i = (i + 1) & t->mask;
	t->slot[i].hash = t->hash[k];
	t->slot[i].node = k + 1;
}

/* The index of a name, added when absent (*added says which). */
static uint32_t names_get(struct names *t, const uint8_t *name, uint8_t len, bool *added)
{
	uint32_t h = zone_name_hash(name, len);
	size_t i = h & t->mask;
	for (; t->slot[i].node; i = (i + 1) & t->mask) {
		uint32_t k = t->slot[i].node - 1;
		if (t->slot[i].hash == h && t->v[k].len == len &&
		    memcmp(t->v[k].name, name, len) == 0) {
			*added = false;
			return k;
		}
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->v = gslb_realloc(t->v, t->cap * sizeof(*t->v));
		t->hash = gslb_realloc(t->hash, t->cap * sizeof(*t->hash));
	}
	uint32_t k = (uint32_t)t->n++;
	t->v[k] = (struct nname){ name, len, k };
	t->hash[k] = h;
	t->slot[i].hash = h;
	t->slot[i].node = k + 1;
	if (t->n * 2 > t->mask + 1) {
		/* Keep the table at most half full. */
		free(t->slot);
		t->mask = t->mask * 2 + 1;
		t->slot = gslb_calloc(t->mask + 1, sizeof(*t->slot));
		for (uint32_t j = 0; j < t->n; j++)
			names_slot(t, j);
	}
	*added = true;
	return k;
}

static void names_free(struct names *t)
{
	free(t->v);
	free(t->hash);
	free(t->slot);
}

/*
 * Every node's name: the apex, each owner and each ancestor between an
 * owner and the apex, once.  Sets each RR's node to its name's index in
 * t->v; when sorted, sorts t->v by name (the order nodes had when they
 * were found by sorting).  Returns in rank[] each first-seen index's place
 * in t->v.
 */
static uint32_t *node_names(zone_t *z, struct zone_build *b, struct names *t, bool sorted)
{
	bool added;

	t->mask = 1023;
	t->slot = gslb_calloc(t->mask + 1, sizeof(*t->slot));
	names_get(t, z->apex, z->apex_len, &added);
	for (size_t i = 0; i < b->n; i++) {
		struct brr *r = &b->rrs[i];
		const uint8_t *nm = b->arena + r->owner_off;
		size_t len = r->owner_len;
		/* Entries of one owner are often together (inherited owners): no hashing then. */
		if (i > 0 && b->rrs[i - 1].owner_len == len &&
		    memcmp(b->arena + b->rrs[i - 1].owner_off, nm, len) == 0) {
			r->node = b->rrs[i - 1].node;
			continue;
		}
		r->node = names_get(t, nm, (uint8_t)len, &added);
		/* A name seen before has its ancestors already. */
		while (added && len > z->apex_len) {
			len -= 1 + (size_t)*nm;
			nm = parent_name(nm);
			names_get(t, nm, (uint8_t)len, &added);
		}
	}
	if (sorted)
		gslb_sort(t->v, t->n, sizeof(*t->v), nname_cmp);
	uint32_t *rank = gslb_malloc((t->n ? t->n : 1) * sizeof(*rank));
	for (size_t i = 0; i < t->n; i++)
		rank[t->v[i].id] = (uint32_t)i;
	return rank;
}

/*
 * The RRs in the order of their nodes (rank), then by type, then as added:
 * a counting sort by node, stable, and a sort by type within each node.
 * Each RR's node becomes its rank.
 */
static void sort_rrs(struct zone_build *b, const uint32_t *rank, size_t nnodes)
{
	size_t *start = gslb_calloc(nnodes + 1, sizeof(*start));
	struct brr *out = gslb_malloc((b->n ? b->n : 1) * sizeof(*out));

	for (size_t i = 0; i < b->n; i++) {
		b->rrs[i].node = rank[b->rrs[i].node];
		start[b->rrs[i].node + 1]++;
	}
	for (size_t i = 0; i < nnodes; i++)
		start[i + 1] += start[i];
	for (size_t i = 0; i < b->n; i++)
		out[start[b->rrs[i].node]++] = b->rrs[i];
	for (size_t i = 0; i < b->n;) {
		size_t j = i + 1;
		bool sorted = true;
		for (; j < b->n && out[j].node == out[i].node; j++)
			sorted = sorted && out[j - 1].type <= out[j].type;
		if (!sorted)
			gslb_sort(out + i, j - i, sizeof(*out), brr_type_cmp);
		i = j;
	}
	free(start);
	free(b->rrs);
	b->rrs = out;
	b->cap = b->n;
}

const zone_node_t *zone_node_find(const zone_t *z, const uint8_t *lname, size_t len)
{
	/* zone_node_find_hashed() compares the labels above the apex only. */
	if (len < z->apex_len || memcmp(lname + len - z->apex_len, z->apex, z->apex_len) != 0)
		return NULL;
	return zone_node_find_hashed(z, lname, len, zone_name_hash(lname, len));
}

const zone_node_t *zone_node_find_hashed(const zone_t *z, const uint8_t *lname, size_t len,
					 uint32_t h)
{
	for (uint32_t i = table_home(z, h);; i = table_next(z, i)) {
		const zone_slot_t *s = &z->table[i];
		if (!s->node)
			return NULL;
		if (s->hash != h)
			continue;
		/* A node keeps the labels above the apex, in which lname ends. */
		const zone_node_t *n = &z->nodes[s->node - 1];
		if (n->name_len == len && memcmp(n->name, lname, len - z->apex_len) == 0)
			return n;
	}
}

const zone_rrset_t *zone_node_rrset(const zone_node_t *n, uint16_t type)
{
	for (uint16_t i = 0; i < n->nrrsets; i++)
		if (n->rrsets[i].type == type)
			return &n->rrsets[i];
	return NULL;
}

/*
 * Scratch for building one RRset: its wire block, fixups and target
 * offsets.  One is reused for every RRset of a zone; the finished parts
 * are copied into the zone's data block.
 */
struct blk {
	uint8_t *buf;
	size_t len, cap;
	zone_fix_t *fix;
	size_t nfix, fcap;
	uint32_t *toff;
	size_t tcap;
};

static void blk_put(struct blk *k, const void *p, size_t n)
{
	if (k->len + n > k->cap) {
		size_t cap = k->cap ? k->cap : 256;
		while (k->len + n > cap)
			cap *= 2;
		k->buf = gslb_realloc(k->buf, cap);
		k->cap = cap;
	}
	memcpy(k->buf + k->len, p, n);
	k->len += n;
}

static void blk_free(struct blk *k)
{
	free(k->buf);
	free(k->fix);
	free(k->toff);
}

/*
 * Every RRset's wire block, fixups, ext and target offsets live in one
 * block per zone (zone_t.data): with a malloc each, an A record's 16 bytes
 * of wire cost a 272-byte chunk and a 1,000,000-name zone took 520 MB.
 * While the zone is built the parts are offsets (the block moves as it
 * grows); data_point() turns them into pointers at the end.
 */
struct data {
	uint8_t *buf;
	size_t len, cap;
};

struct set_off {
	size_t wire, fix, toff, ext, target;
};

/*
 * The fixups of a set of one RR without names in its rdata (most of a large
 * zone) are always the owner pointer at offset 0: they share this one, which
 * zone_finish() puts first in the data block.
 */
static const zone_fix_t owner_fix = { 0, ZONE_FIX_OWNER };
#define OWNER_FIX_OFF 0

/* Append n bytes at a multiple of align; returns their offset. */
static size_t data_put(struct data *d, const void *p, size_t n, size_t align)
{
	size_t off = (d->len + align - 1) / align * align;
	if (off + n > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		while (off + n > cap)
			cap *= 2;
		d->buf = gslb_realloc(d->buf, cap);
		d->cap = cap;
	}
	if (n)
		memcpy(d->buf + off, p, n);
	d->len = off + n;
	return off;
}

static void blk_fix(struct blk *k, uint8_t kind)
{
	if (k->nfix == k->fcap) {
		k->fcap = k->fcap ? k->fcap * 2 : 8;
		k->fix = gslb_realloc(k->fix, k->fcap * sizeof(*k->fix));
	}
	k->fix[k->nfix].off = (uint32_t)k->len;
	k->fix[k->nfix].kind = kind;
	k->nfix++;
	static const uint8_t ph[2] = { 0xc0, 0x00 };
	blk_put(k, ph, 2);
}

/*
 * Write an rdata name, compressed against the apex when it ends in it
 * (RFC 1035 4.1.4 allows compression for the RFC 1035 types only).
 */
static void blk_name(struct blk *k, const zone_t *z, const uint8_t *name, size_t len)
{
	uint8_t lname[DNS_NAME_MAX];
	dns_name_lower(lname, name);
	int labels = dns_name_labels(lname);
	if (!name_under(lname, len, labels, z->apex, z->apex_len, z->apex_labels)) {
		blk_put(k, name, len);
		return;
	}
	blk_put(k, name, len - z->apex_len);
	blk_fix(k, ZONE_FIX_APEX);
}

static bool type_has_name(uint16_t type, size_t *pre, size_t *names)
{
	*pre = 0;
	*names = 1;
	switch (type) {
	case DNS_T_NS:
	case DNS_T_CNAME:
	case DNS_T_PTR:
		return true;
	case DNS_T_MX:
		*pre = 2;
		return true;
	case DNS_T_SOA:
		*names = 2;
		return true;
	default:
		return false;
	}
}

/*
 * Build one RRset from its n RRs into the scratch k, then append its parts
 * to d, their offsets in *off.  The set's pointers stay NULL until
 * data_point().
 */
static int build_rrset(zone_t *z, zone_rrset_t *set, const struct brr *rrs, size_t n,
		       const uint8_t *arena, struct blk *kp, struct data *d, struct set_off *off,
		       char *err, size_t errlen)
{
	struct blk k = *kp;
	uint32_t ttl = UINT32_MAX;
	size_t pre, names;
	bool named = type_has_name(rrs[0].type, &pre, &names);
	int ret = 0;

	for (size_t i = 0; i < n; i++)
		if (rrs[i].ttl < ttl)
			ttl = rrs[i].ttl;
	set->type = rrs[0].type;
	set->ttl = ttl;
	k.len = 0;
	k.nfix = 0;
	bool targets = named && set->type != DNS_T_SOA;
	if (targets && n > k.tcap) {
		k.tcap = n;
		k.toff = gslb_realloc(k.toff, n * sizeof(*k.toff));
	}

	uint16_t count = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *rd = arena + rrs[i].rdata_off;
		/* Drop exact duplicates: an RRset is a set (RFC 2181 5). */
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = rrs[j].rdlen == rrs[i].rdlen &&
			      memcmp(arena + rrs[j].rdata_off, rd, rrs[i].rdlen) == 0;
		if (dup)
			continue;
		size_t rr_start = k.len;
		uint8_t hdr[10];
		blk_fix(&k, ZONE_FIX_OWNER);
		dns_put16(hdr, set->type);
		dns_put16(hdr + 2, DNS_C_IN);
		dns_put32(hdr + 4, ttl);
		dns_put16(hdr + 8, 0);
		blk_put(&k, hdr, 10);
		size_t rdstart = k.len;
		if (!named) {
			blk_put(&k, rd, rrs[i].rdlen);
		} else {
			size_t pos = 0;
			if (rrs[i].rdlen < pre)
				goto bad;
			blk_put(&k, rd, pre);
			pos = pre;
			for (size_t m = 0; m < names; m++) {
				int nl = dns_name_len(rd + pos, rrs[i].rdlen - pos);
				if (nl < 0)
					goto bad;
				if (targets && m == 0)
					k.toff[count] = (uint32_t)k.len;
				blk_name(&k, z, rd + pos, (size_t)nl);
				pos += (size_t)nl;
			}
			if (set->type == DNS_T_SOA && rrs[i].rdlen - pos != 20)
				goto bad;
			if (pos > rrs[i].rdlen)
				goto bad;
			blk_put(&k, rd + pos, rrs[i].rdlen - pos);
		}
		size_t rdl = k.len - rdstart;
		if (rdl > 65535 || k.len > UINT32_MAX / 2) {
			ret = GSLB_ETOOBIG;
			snprintf(err, errlen, "RRset too large");
			goto out;
		}
		dns_put16(k.buf + rr_start + 10, (uint16_t)rdl);
		count++;
	}
	set->count = count;
	set->len = (uint32_t)k.len;
	set->nfix = (uint32_t)k.nfix;
	off->wire = data_put(d, k.buf, k.len, 1);
	if (k.nfix == 1 && k.fix[0].off == owner_fix.off && k.fix[0].kind == owner_fix.kind)
		off->fix = OWNER_FIX_OFF;
	else
		off->fix = data_put(d, k.fix, k.nfix * sizeof(*k.fix), _Alignof(zone_fix_t));
	off->toff = targets ? data_put(d, k.toff, count * sizeof(*k.toff), sizeof(*k.toff))
			    : SIZE_MAX;
	off->ext = SIZE_MAX;
	if (targets || set->type == DNS_T_DNAME) {
		static const zone_rrset_ext_t none = { 0 };
		off->ext = data_put(d, &none, sizeof(none), _Alignof(zone_rrset_ext_t));
	}
	/*
	 * CNAME and DNAME: the lowercased target, for following chains at
	 * query time.  A DNAME's rdata is its target, nothing else (RFC 6672
	 * 2.5); zone_finish() says so when it is not.
	 */
	off->target = SIZE_MAX;
	if (set->type == DNS_T_CNAME || set->type == DNS_T_DNAME) {
		const uint8_t *rd = arena + rrs[0].rdata_off;
		int tl = dns_name_len(rd, rrs[0].rdlen);
		if (tl > 0 && (set->type == DNS_T_CNAME || tl == rrs[0].rdlen)) {
			uint8_t lname[DNS_NAME_MAX];
			dns_name_lower(lname, rd);
			off->target = data_put(d, lname, (size_t)tl, 1);
		}
	}
	goto out;
bad:
	ret = GSLB_EPARSE;
	snprintf(err, errlen, "malformed rdata in a type %u record", set->type);
out:
	*kp = k;
	return ret;
}

/* The data block becomes the zone's, and the n sets built point into it. */
static void data_point(zone_t *z, struct data *d, const struct set_off *off, size_t n)
{
	z->data = d->len ? gslb_realloc(d->buf, d->len) : d->buf;
	d->buf = NULL;
	for (size_t i = 0; i < n; i++) {
		zone_rrset_t *set = &z->rrsets[i];
		set->wire = z->data + off[i].wire;
		set->fix = (zone_fix_t *)(void *)(z->data + off[i].fix);
		if (off[i].ext == SIZE_MAX)
			continue;
		set->ext = (zone_rrset_ext_t *)(void *)(z->data + off[i].ext);
		if (off[i].toff != SIZE_MAX)
			set->ext->target_off = (uint32_t *)(void *)(z->data + off[i].toff);
		if (off[i].target != SIZE_MAX)
			set->ext->cname_target = z->data + off[i].target;
	}
}

static void name_str(char *dst, size_t cap, const uint8_t *name)
{
	dns_name_to_str(dst, cap, name);
}

/* Glue for a delegation: A and AAAA of every NS target inside the zone. */
static void build_glue(zone_t *z, zone_rrset_t *ns)
{
	size_t cap = (size_t)ns->count * 2;
	zone_rrset_ext_t *x = ns->ext;
	x->glue = gslb_calloc(cap, sizeof(*x->glue));
	x->glue_ns = gslb_calloc(cap, sizeof(*x->glue_ns));
	/* Recover each target's full name from its block, expanding the apex placeholder. */
	for (uint16_t i = 0; i < ns->count; i++) {
		uint8_t name[DNS_NAME_MAX * 2];
		size_t len = 0;
		const uint8_t *p = ns->wire + x->target_off[i];
		while (*p && *p < 0xc0) {
			memcpy(name + len, p, 1 + (size_t)*p);
			len += 1 + (size_t)*p;
			p += 1 + *p;
		}
		if (*p == 0) {
			continue; /* not below the apex: out of zone, no glue */
		}
		memcpy(name + len, z->apex, z->apex_len);
		len += z->apex_len;
		if (len > DNS_NAME_MAX)
			continue;
		uint8_t lname[DNS_NAME_MAX];
		dns_name_lower(lname, name);
		const zone_node_t *t = zone_node_find(z, lname, len);
		if (!t)
			continue;
		static const uint16_t types[2] = { DNS_T_A, DNS_T_AAAA };
		for (int k = 0; k < 2; k++) {
			const zone_rrset_t *g = zone_node_rrset(t, types[k]);
			if (!g)
				continue;
			x->glue[x->nglue] = g;
			x->glue_ns[x->nglue] = i;
			x->nglue++;
		}
	}
}

/* zone_finish() found something to say, but only in name order can it say the same as before. */
#define FINISH_AGAIN 1

/*
 * zone_finish() with the nodes in name order (sorted) or in the order
 * their names were first seen.  Nothing but the order of z->nodes differs;
 * but the first error, and the first name a warning gives, depend on it.
 * So unsorted, the first error or warning returns FINISH_AGAIN instead,
 * with nothing logged, for zone_finish() to start again sorted.
 */
static int finish(zone_t *z, bool sorted, char *err, size_t errlen)
{
	struct zone_build *b = z->build;
	struct names names = { 0 };
	uint32_t *rank = NULL;
	struct blk scratch = { 0 };
	struct data d = { 0 };
	struct set_off *offs = NULL;
	bool *occluded = NULL;
	int ret = 0;
	char nbuf[1024], zname[1024];

	if (!b)
		return -EINVAL;
	err[0] = 0;

	/* Node names: every owner, and every ancestor between it and the apex. */
	rank = node_names(z, b, &names, sorted);
	const struct nname *nn = names.v;
	/* A node's full name while the zone is built: in the build's arena, or the apex. */
#define FULL(n) (nn[(n)-z->nodes].name)
	size_t uniq = names.n, names_len = 0;
	for (size_t i = 0; i < uniq; i++)
		names_len += nn[i].len - z->apex_len;
	sort_rrs(b, rank, uniq);

	/*
	 * Nodes, their names in one block, and the hash table half full; a
	 * quarter full while that takes under 1 MiB: fewer probes for nothing.
	 */
	z->nodes = gslb_calloc(uniq, sizeof(*z->nodes));
	z->nnodes = (uint32_t)uniq;
	z->names = gslb_malloc(names_len ? names_len : 1);
	uint32_t slots = uniq < 4 ? 16 : uniq < 32768 ? (uint32_t)uniq * 4 : (uint32_t)uniq * 2;
	z->table_size = slots;
	z->table = gslb_calloc(slots, sizeof(*z->table));
	size_t noff = 0;
	uint32_t *nhash = gslb_malloc((uniq ? uniq : 1) * sizeof(*nhash));
	for (size_t i = 0; i < uniq; i++) {
		zone_node_t *n = &z->nodes[i];
		/*
		 * Only the labels above the apex are kept: every name of the zone
		 * ends in it.  Until the build ends, nn[i].name is the full name.
		 */
		size_t rel = nn[i].len - z->apex_len;
		memcpy(z->names + noff, nn[i].name, rel);
		n->name = z->names + noff;
		noff += rel;
		n->name_len = nn[i].len;
		n->labels = (uint8_t)dns_name_labels(nn[i].name);
		if (nn[i].name[0] == 1 && nn[i].name[1] == '*')
			n->flags |= ZONE_NODE_WILDCARD;
		nhash[i] = names.hash[nn[i].id];
	}
	table_fill(z, nhash, uniq);
	free(nhash);
	z->apex_node = zone_node_find(z, z->apex, z->apex_len);
	((zone_node_t *)z->apex_node)->flags |= ZONE_NODE_APEX;

	/* RRsets: count the distinct (owner, type) groups, then build each. */
	size_t nsets = 0;
	for (size_t i = 0; i < b->n; i++)
		if (i == 0 || !same_set(&b->rrs[i - 1], &b->rrs[i]))
			nsets++;
	z->rrsets = gslb_calloc(nsets ? nsets : 1, sizeof(*z->rrsets));
	offs = gslb_calloc(nsets ? nsets : 1, sizeof(*offs));
	data_put(&d, &owner_fix, sizeof(owner_fix), _Alignof(zone_fix_t)); /* at OWNER_FIX_OFF */
	size_t si = 0;
	for (size_t i = 0; i < b->n;) {
		size_t j = i + 1;
		while (j < b->n && same_set(&b->rrs[i], &b->rrs[j]))
			j++;
		zone_node_t *n = &z->nodes[b->rrs[i].node];
		zone_rrset_t *set = &z->rrsets[si];
		ret = build_rrset(z, set, &b->rrs[i], j - i, b->arena, &scratch, &d, &offs[si], err,
				  errlen);
		if (ret < 0) {
			name_str(nbuf, sizeof(nbuf), FULL(n));
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, " at %s", nbuf);
			data_point(z, &d, offs, si);
			z->nrrsets = (uint32_t)si;
			goto out;
		}
		si++;
		z->nrecords += set->count;
		if (n->nrrsets == 0)
			n->rrsets = set; /* sets of one owner are adjacent and sorted by type */
		n->nrrsets++;
		i = j;
	}
	z->nrrsets = (uint32_t)si;
	data_point(z, &d, offs, si);

	/* Checks and per-node flags. */
	const zone_rrset_t *soa = zone_node_rrset(z->apex_node, DNS_T_SOA);
	name_str(zname, sizeof(zname), z->apex);
	name_str(nbuf, sizeof(nbuf), z->apex);
	if (!soa) {
		ret = GSLB_ENOSOA;
		snprintf(err, errlen, "zone %s has no SOA record at its apex", nbuf);
		goto out;
	}
	if (soa->count != 1) {
		ret = GSLB_EDUPSOA;
		snprintf(err, errlen, "zone %s has %u SOA records", nbuf, soa->count);
		goto out;
	}
	if (!zone_node_rrset(z->apex_node, DNS_T_NS)) {
		ret = GSLB_ENONS;
		snprintf(err, errlen, "zone %s has no NS record at its apex", nbuf);
		goto out;
	}
	for (size_t i = 0; i < uniq; i++) {
		zone_node_t *n = &z->nodes[i];
		if (n->nrrsets == 0)
			n->flags |= ZONE_NODE_ENT;
		if (n != z->apex_node && zone_node_rrset(n, DNS_T_NS))
			n->flags |= ZONE_NODE_DELEG;
		if (n != z->apex_node && zone_node_rrset(n, DNS_T_SOA)) {
			name_str(nbuf, sizeof(nbuf), FULL(n));
			ret = GSLB_EDUPSOA;
			snprintf(err, errlen, "SOA record at %s, which is not the zone apex", nbuf);
			goto out;
		}
		const zone_rrset_t *dn = zone_node_rrset(n, DNS_T_DNAME);
		if (dn) {
			/* RFC 6672 2.4: one redirection per name, so no CNAME and one DNAME. */
			n->flags |= ZONE_NODE_DNAME;
			name_str(nbuf, sizeof(nbuf), FULL(n));
			if (zone_node_rrset(n, DNS_T_CNAME)) {
				/* Named here: the CNAME check below would say "other data". */
				ret = GSLB_ECNAME;
				snprintf(err, errlen, "%s has a DNAME and a CNAME (RFC 6672 2.4)",
					 nbuf);
				goto out;
			}
			if (dn->count != 1) {
				ret = -EINVAL;
				snprintf(err, errlen, "%s has more than one DNAME (RFC 6672 2.4)",
					 nbuf);
				goto out;
			}
		}
		const zone_rrset_t *cn = zone_node_rrset(n, DNS_T_CNAME);
		if (cn) {
			n->flags |= ZONE_NODE_CNAME;
			/* RFC 2181 10.1: a CNAME stands alone (RRSIG/NSEC would be allowed). */
			for (uint16_t k = 0; k < n->nrrsets; k++) {
				uint16_t t = n->rrsets[k].type;
				if (t == DNS_T_CNAME || t == DNS_T_RRSIG || t == 47 /* NSEC */)
					continue;
				name_str(nbuf, sizeof(nbuf), FULL(n));
				ret = GSLB_ECNAME;
				snprintf(err, errlen, "%s has a CNAME and other data", nbuf);
				goto out;
			}
			if (cn->count != 1) {
				name_str(nbuf, sizeof(nbuf), FULL(n));
				ret = GSLB_ECNAME;
				snprintf(err, errlen, "%s has more than one CNAME", nbuf);
				goto out;
			}
		}
	}
	occluded = gslb_calloc(uniq, sizeof(*occluded));
	size_t nocc = 0, nocc_all = 0;
	const zone_node_t *first_occ = NULL, *first_dname = NULL;
	for (size_t i = 0; i < uniq; i++) {
		zone_node_t *n = &z->nodes[i];
		/*
		 * The topmost cut at or above a name, or DNAME above it (RFC
		 * 6672 2.4), occludes it: a cut makes it answered with a
		 * referral, a DNAME makes it not exist.
		 */
		const zone_node_t *top = NULL;
		const uint8_t *p = FULL(n);
		size_t len = n->name_len;
		for (;;) {
			const zone_node_t *a = p == FULL(n)	    ? n
					       : len == z->apex_len ? z->apex_node
								    : zone_node_find(z, p, len);
			if (a && ((a->flags & ZONE_NODE_DELEG) ||
				  (a != n && (a->flags & ZONE_NODE_DNAME))))
				top = a;
			if (len <= z->apex_len)
				break;
			len -= 1 + (size_t)*p;
			p = parent_name(p);
		}
		if (top && (top->flags & ZONE_NODE_DELEG)) {
			n->cut = (uint32_t)(top - z->nodes) + 1;
		} else if (top) {
			occluded[i] = true;
			nocc_all++;
			if (n->nrrsets && nocc++ == 0) {
				first_occ = n;
				first_dname = top;
			}
		}
	}
	if (nocc && !sorted) {
		ret = FINISH_AGAIN;
		goto out;
	}
	if (nocc) {
		/* The names below a DNAME are left out of the lookup table: they do not exist. */
		char dbuf[1024];
		name_str(nbuf, sizeof(nbuf), FULL(first_occ));
		name_str(dbuf, sizeof(dbuf), FULL(first_dname));
		log_warn("zone %s: %zu names below DNAME records are not served (RFC 6672 2.4: "
			 "occluded); the first is %s, below the DNAME at %s",
			 zname, nocc, nbuf, dbuf);
	}
	if (nocc_all) {
		for (size_t i = 0; i < z->table_size; i++)
			if (z->table[i].node && occluded[z->table[i].node - 1])
				z->table[i].node = 0;
		/* Close the gaps: each slot's node again where a probe looks for it. */
		zone_slot_t *old = z->table;
		z->table = gslb_calloc(z->table_size, sizeof(*z->table));
		for (size_t i = 0; i < z->table_size; i++)
			if (old[i].node)
				table_insert(z, old[i].node - 1, old[i].hash);
		free(old);
	}
	for (size_t i = 0; i < uniq; i++) {
		zone_node_t *n = &z->nodes[i];
		if (occluded[i])
			continue;
		if (n->flags & ZONE_NODE_WILDCARD) {
			zone_node_t *parent = (zone_node_t *)zone_node_find(z, parent_name(FULL(n)),
									    n->name_len - 2u);
			if (parent)
				parent->wild = (uint32_t)(n - z->nodes) + 1;
		}
		for (uint16_t k = 0; k < n->nrrsets; k++) {
			zone_rrset_t *s = &n->rrsets[k];
			if (s->type == DNS_T_NS && (n->flags & ZONE_NODE_DELEG))
				build_glue(z, s);
			if (s->type == DNS_T_DNAME) {
				/* The rdata is the target, never compressed (RFC 6672 2.5). */
				const uint8_t *rd = s->wire + 12;
				int tl = dns_name_len(rd, dns_get16(s->wire + 10));
				if (tl != (int)dns_get16(s->wire + 10)) {
					name_str(nbuf, sizeof(nbuf), FULL(n));
					ret = GSLB_EPARSE;
					snprintf(err, errlen, "malformed rdata in the DNAME at %s",
						 nbuf);
					goto out;
				}
			}
		}
	}

	/* RFC 2308 5: negative answers carry the SOA with TTL min(SOA TTL, MINIMUM). */
	const uint8_t *rd_end = soa->wire + soa->len;
	uint32_t minimum = dns_get32(rd_end - 4);
	z->serial = dns_get32(rd_end - 20);
	z->soa_neg = *soa;
	z->soa_neg.ext = NULL;
	z->soa_neg.wire = gslb_malloc(soa->len);
	memcpy(z->soa_neg.wire, soa->wire, soa->len);
	z->soa_neg.fix = gslb_malloc(soa->nfix * sizeof(*soa->fix));
	memcpy(z->soa_neg.fix, soa->fix, soa->nfix * sizeof(*soa->fix));
	z->soa_neg.ttl = soa->ttl < minimum ? soa->ttl : minimum;
	dns_put32(z->soa_neg.wire + 6, z->soa_neg.ttl);

out:
	if (ret < 0 && !sorted)
		ret = FINISH_AGAIN;
	names_free(&names);
	free(rank);
	free(offs);
	free(occluded);
	free(d.buf);
	blk_free(&scratch);
	return ret;
#undef FULL
}

/* wire, fix, ext and target_off are in the zone's data block. */
static void rrset_free(zone_rrset_t *s)
{
	if (!s->ext)
		return;
	free(s->ext->glue);
	free(s->ext->glue_ns);
}

/* Free what finish() built, back to a zone still being built. */
static void zone_clear(zone_t *z)
{
	for (uint32_t i = 0; i < z->nrrsets; i++)
		rrset_free(&z->rrsets[i]);
	free(z->rrsets);
	free(z->data);
	free(z->soa_neg.wire);
	free(z->soa_neg.fix);
	free(z->nodes);
	free(z->names);
	free(z->table);
	z->rrsets = NULL;
	z->nrrsets = 0;
	z->data = NULL;
	memset(&z->soa_neg, 0, sizeof(z->soa_neg));
	z->nodes = NULL;
	z->nnodes = 0;
	z->names = NULL;
	z->table = NULL;
	z->table_size = 0;
	z->apex_node = NULL;
	z->nrecords = 0;
	z->serial = 0;
}

int zone_finish(zone_t *z, char *err, size_t errlen)
{
	struct zone_build *b = z->build;
	if (!b)
		return -EINVAL;
	/*
	 * Sorting a large zone's names took a sixth of its load; a zone with
	 * nothing to report does not need it.
	 */
	int ret = finish(z, false, err, errlen);
	if (ret == FINISH_AGAIN) {
		zone_clear(z);
		ret = finish(z, true, err, errlen);
	}
	free(b->rrs);
	free(b->arena);
	free(b);
	z->build = NULL;
	return ret;
}

zone_t *zone_ref(zone_t *z)
{
	z->refs++;
	return z;
}

void zone_unref(zone_t *z)
{
	if (!z || --z->refs > 0)
		return;
	zone_clear(z);
	free(z->file);
	if (z->build) {
		free(z->build->rrs);
		free(z->build->arena);
		free(z->build);
	}
	free(z);
}

/* ---- zone sets ---- */

zone_set_t *zone_set_new(void)
{
	zone_set_t *s = gslb_calloc(1, sizeof(*s));
	s->min_labels = 255;
	return s;
}

int zone_set_add(zone_set_t *s, zone_t *z)
{
	for (uint32_t i = 0; i < s->count; i++)
		if (s->zones[i]->apex_len == z->apex_len &&
		    memcmp(s->zones[i]->apex, z->apex, z->apex_len) == 0)
			return -EEXIST;
	s->zones = gslb_realloc(s->zones, (s->count + 1) * sizeof(*s->zones));
	s->zones[s->count++] = zone_ref(z);
	if (z->apex_labels > s->max_labels)
		s->max_labels = z->apex_labels;
	if (z->apex_labels < s->min_labels)
		s->min_labels = z->apex_labels;
	return 0;
}

void zone_set_finish(zone_set_t *s)
{
	uint32_t slots = 8;
	while (slots < s->count * 2)
		slots *= 2;
	free(s->table);
	s->table = gslb_calloc(slots, sizeof(*s->table));
	s->table_mask = slots - 1;
	for (uint32_t i = 0; i < s->count; i++) {
		zone_t *z = s->zones[i];
		uint32_t k = zone_name_hash(z->apex, z->apex_len) & s->table_mask;
		while (s->table[k])
			k = (k + 1) & s->table_mask;
		s->table[k] = z;
	}
}

zone_t *zone_set_get(const zone_set_t *s, const uint8_t *lname, size_t len)
{
	if (!s->table)
		return NULL;
	uint32_t k = zone_name_hash(lname, len) & s->table_mask;
	for (;; k = (k + 1) & s->table_mask) {
		zone_t *z = s->table[k];
		if (!z)
			return NULL;
		if (z->apex_len == len && memcmp(z->apex, lname, len) == 0)
			return z;
	}
}

/* Up to this many zones, zone_set_find() compares apexes instead of hashing suffixes. */
#define ZONE_SET_SCAN_MAX 4

const zone_t *zone_set_find(const zone_set_t *s, const uint8_t *lname, size_t len,
			    const uint8_t *label_off, int nlabels)
{
	if (!s || s->count == 0)
		return NULL;
	/* A few zones: compare each apex with the suffix of its length, no hashing. */
	if (s->count <= ZONE_SET_SCAN_MAX) {
		const zone_t *best = NULL;
		for (uint32_t k = 0; k < s->count; k++) {
			const zone_t *z = s->zones[k];
			int i = nlabels - z->apex_labels;
			if (i < 0 || (best && z->apex_len <= best->apex_len))
				continue;
			size_t off = i == nlabels ? len - 1 : label_off[i];
			if (len - off == z->apex_len &&
			    memcmp(lname + off, z->apex, z->apex_len) == 0)
				best = z;
		}
		return best;
	}
	int first = nlabels - s->max_labels;
	if (first < 0)
		first = 0;
	for (int i = first; i <= nlabels - s->min_labels; i++) {
		size_t off = i == nlabels ? len - 1 : label_off[i];
		const zone_t *z = zone_set_get(s, lname + off, len - off);
		if (z)
			return z;
	}
	return NULL;
}

void zone_set_free(zone_set_t *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->count; i++)
		zone_unref(s->zones[i]);
	free(s->zones);
	free(s->table);
	free(s);
}
