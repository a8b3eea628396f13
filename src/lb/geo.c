/* SPDX-License-Identifier: MIT */
/* The geo policy: rank a pool's eligible members for one client, with the ECS scope that holds. */
#include "gslb/lb.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "internal.h"

static unsigned family_bits(int family)
{
	return family == 6 ? 128 : 32;
}

/*
 * A pool's member networks, folded per family into a path-compressed
 * binary trie when the pool is built, so that the answer path finds every
 * member network holding the client and the ECS scope with one lookup,
 * however many networks the pool has.  Every node but the root is a member
 * network or a branch with two children, so every subtree holds a network.
 *
 * For IPv4 the trie is flattened further into the blocks the networks cut
 * the address space into: the largest prefixes that every member network
 * either holds or misses.  Within a block the networks holding the client
 * are the same, and the scope of RFC 7871 7.2.1 (below) is the block's own
 * prefix length, so one binary search over the blocks' first addresses
 * answers both.  There are at most 32 blocks per network.
 *
 * IPv6 networks could cut up to 128 blocks each, so IPv6 keeps the spans
 * of the trie's nodes instead (at most two per node): the address ranges
 * in which one node is the deepest whose prefix holds the client.  The
 * binary search over them finds that node, which knows the scope and the
 * networks holding the client so far, and one step below it finishes.
 */
struct geo_node {
	uint64_t key[2];   /* the prefix, most significant bit first, bits past len zero */
	uint32_t child[2]; /* by the bit after the prefix; 0: none (node 0 is unused, 1 the root) */
	uint32_t up;	   /* the nearest member network holding this one (a node), 0: none */
	uint32_t first;	   /* the members listing this network: lb_geo_nets.members[first..] */
	uint16_t count;	   /* how many (ascending member indexes); 0: a branch */
	uint8_t len;
	uint8_t scope; /* IPv6: the scope so far for a client it holds (spans_under()) */
};

struct lb_geo_nets {
	struct geo_node *nodes[2]; /* [0] IPv4, [1] IPv6; NULL: no network of the family */
	uint16_t *members;
	/* IPv4 blocks, ascending: first address, longest network holding it (a node), scope */
	uint32_t nblocks;
	uint32_t *block_start;
	uint32_t *block_net;
	uint8_t *block_scope;
	/* IPv6 spans, ascending: first address (high, low 64 bits), deepest node holding it */
	uint32_t nspans;
	uint64_t *span_hi, *span_lo;
	uint32_t *span_node;
};

/* Leading bits that a and b share (128 when equal). */
static unsigned key_common(const uint64_t a[2], const uint64_t b[2])
{
	uint64_t x = a[0] ^ b[0];
	if (x)
		return (unsigned)__builtin_clzll(x);
	x = a[1] ^ b[1];
	return x ? 64 + (unsigned)__builtin_clzll(x) : 128;
}

/* Bit i of key k, from the most significant (i < 128). */
static unsigned key_bit(const uint64_t k[2], unsigned i)
{
	return i < 64 ? (unsigned)(k[0] >> (63 - i)) & 1 : (unsigned)(k[1] >> (127 - i)) & 1;
}

/* An address of family 4 or 6 as a key: IPv4 in the top 32 bits. */
static void addr_key(int family, const uint8_t *addr, uint64_t k[2])
{
	if (family == 6) {
		memcpy(&k[0], addr, 8);
		memcpy(&k[1], addr + 8, 8);
		k[0] = be64toh(k[0]);
		k[1] = be64toh(k[1]);
	} else {
		uint32_t v;
		memcpy(&v, addr, 4);
		k[0] = (uint64_t)be32toh(v) << 32;
		k[1] = 0;
	}
}

/* Clear the bits of k from len on. */
static void key_mask(uint64_t k[2], unsigned len)
{
	if (len < 64) {
		k[0] = len ? k[0] & ~0ull << (64 - len) : 0;
		k[1] = 0;
	} else if (len < 128) {
		k[1] = len > 64 ? k[1] & ~0ull << (128 - len) : 0;
	}
}

/* One member network, for sorting them all before the trie is built. */
struct net_ent {
	uint64_t key[2];
	uint8_t len;
	uint16_t member;
};

static int net_ent_cmp(const void *pa, const void *pb)
{
	const struct net_ent *a = pa, *b = pb;
	if (a->key[0] != b->key[0])
		return a->key[0] < b->key[0] ? -1 : 1;
	if (a->key[1] != b->key[1])
		return a->key[1] < b->key[1] ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return (int)a->member - (int)b->member;
}

static uint32_t node_new(struct geo_node *t, uint32_t *n, const uint64_t key[2], unsigned len)
{
	struct geo_node *x = &t[*n];
	memset(x, 0, sizeof(*x));
	x->key[0] = key[0];
	x->key[1] = key[1];
	key_mask(x->key, len);
	x->len = (uint8_t)len;
	return (*n)++;
}

/* The node of network key/len in trie t of *n nodes (room for two more), made if needed. */
static uint32_t trie_insert(struct geo_node *t, uint32_t *n, const uint64_t key[2], unsigned len)
{
	uint32_t parent = 0, cur = 1;
	unsigned side = 0;
	for (;;) {
		unsigned xlen = t[cur].len;
		unsigned cp = key_common(key, t[cur].key);
		if (cp > len)
			cp = len;
		if (cp >= xlen) {
			/* cur's prefix holds the network: it is cur, or below it. */
			if (len == xlen)
				return cur;
			unsigned b = key_bit(key, xlen);
			if (!t[cur].child[b]) {
				uint32_t m = node_new(t, n, key, len);
				t[cur].child[b] = m;
				return m;
			}
			parent = cur;
			side = b;
			cur = t[cur].child[b];
			continue;
		}
		/* They part at bit cp, inside cur's prefix (cur is not the root, whose len is 0). */
		uint32_t up, m;
		if (cp == len) {
			/* The network holds cur: it goes between cur and its parent. */
			up = m = node_new(t, n, key, len);
		} else {
			/* A branch at cp, with cur on one side and the network on the other. */
			up = node_new(t, n, key, cp);
			m = node_new(t, n, key, len);
			t[up].child[key_bit(key, cp)] = m;
		}
		t[up].child[key_bit(t[cur].key, cp)] = cur;
		t[parent].child[side] = up;
		return m;
	}
}

/* Set the up links below node i, whose nearest member network is net (i itself if one). */
static void trie_link(struct geo_node *t, uint32_t i, uint32_t net)
{
	for (int b = 0; b < 2; b++) {
		uint32_t c = t[i].child[b];
		if (c) {
			t[c].up = net;
			trie_link(t, c, t[c].count ? c : net);
		}
	}
}

struct blocks {
	uint32_t n, cap;
	uint64_t *b; /* first address << 32 | index into net and scope, for sorting */
	uint32_t *net;
	uint8_t *scope;
};

static void block_add(struct blocks *bl, uint32_t start, uint32_t net, unsigned scope)
{
	if (bl->n == bl->cap) {
		bl->cap = bl->cap ? 2 * bl->cap : 64;
		bl->b = gslb_realloc(bl->b, bl->cap * sizeof(*bl->b));
		bl->net = gslb_realloc(bl->net, bl->cap * sizeof(*bl->net));
		bl->scope = gslb_realloc(bl->scope, bl->cap);
	}
	bl->b[bl->n] = (uint64_t)start << 32 | bl->n;
	bl->net[bl->n] = net;
	bl->scope[bl->n] = (uint8_t)scope;
	bl->n++;
}

/*
 * The IPv4 blocks under node i of trie t, whose prefix the client matches:
 * net is the longest member network holding it so far and scope the scope
 * so far (as nets_walk() would have them on reaching i).
 */
static void blocks_under(const struct geo_node *t, uint32_t i, uint32_t net, unsigned scope,
			 struct blocks *bl)
{
	const struct geo_node *x = &t[i];
	uint32_t key = (uint32_t)(x->key[0] >> 32);
	if (x->count) {
		net = i;
		scope = x->len;
	}
	if (!x->child[0] && !x->child[1]) {
		block_add(bl, key, net, scope);
		return;
	}
	for (unsigned b = 0; b < 2; b++) {
		/* Leaving x by bit b excludes what lies on the other side. */
		unsigned s = x->child[!b] ? x->len + 1u : scope;
		uint32_t start = key | (uint32_t)b << (31 - x->len);
		uint32_t c = x->child[b];
		if (!c) {
			block_add(bl, start, net, s);
			continue;
		}
		/* Parting from the path to c at bit d excludes every network below c. */
		uint32_t ckey = (uint32_t)(t[c].key[0] >> 32);
		for (unsigned d = x->len + 1u; d < t[c].len; d++)
			block_add(bl, ((ckey >> (31 - d)) ^ 1) << (31 - d), net, d + 1);
		blocks_under(t, c, net, s, bl);
	}
}

static int u64_cmp(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return a < b ? -1 : a > b;
}

static void blocks_build(struct lb_geo_nets *g)
{
	struct blocks bl = { 0 };
	blocks_under(g->nodes[0], 1, 0, 0, &bl);
	qsort(bl.b, bl.n, sizeof(*bl.b), u64_cmp);
	g->nblocks = bl.n;
	g->block_start = gslb_malloc(bl.n * sizeof(*g->block_start));
	g->block_net = gslb_malloc(bl.n * sizeof(*g->block_net));
	g->block_scope = gslb_malloc(bl.n);
	for (uint32_t k = 0; k < bl.n; k++) {
		uint32_t j = (uint32_t)bl.b[k];
		g->block_start[k] = (uint32_t)(bl.b[k] >> 32);
		g->block_net[k] = bl.net[j];
		g->block_scope[k] = bl.scope[j];
	}
	free(bl.b);
	free(bl.net);
	free(bl.scope);
}

struct spans {
	uint32_t n, cap;
	uint64_t *hi, *lo;
	uint32_t *node;
};

static void span_add(struct spans *sp, uint64_t hi, uint64_t lo, uint32_t node)
{
	/* A span that ends before it starts (a child at the start of its parent) is replaced. */
	if (sp->n > 0 && sp->hi[sp->n - 1] == hi && sp->lo[sp->n - 1] == lo) {
		sp->node[sp->n - 1] = node;
		return;
	}
	if (sp->n == sp->cap) {
		sp->cap = sp->cap ? 2 * sp->cap : 64;
		sp->hi = gslb_realloc(sp->hi, sp->cap * sizeof(*sp->hi));
		sp->lo = gslb_realloc(sp->lo, sp->cap * sizeof(*sp->lo));
		sp->node = gslb_realloc(sp->node, sp->cap * sizeof(*sp->node));
	}
	sp->hi[sp->n] = hi;
	sp->lo[sp->n] = lo;
	sp->node[sp->n] = node;
	sp->n++;
}

/* The last address of node x's prefix. */
static void node_end(const struct geo_node *x, uint64_t end[2])
{
	end[0] = x->key[0] | (x->len >= 64 ? 0 : x->len ? ~0ull >> x->len : ~0ull);
	end[1] = x->key[1] | (x->len >= 128 ? 0 : x->len > 64 ? ~0ull >> (x->len - 64) : ~0ull);
}

/*
 * The IPv6 spans under node i of trie t, in address order, with each
 * node's scope: scope is the scope of a client that reaches i (as
 * blocks_under() has it for IPv4).
 */
static void spans_under(struct geo_node *t, uint32_t i, unsigned scope, struct spans *sp)
{
	struct geo_node *x = &t[i];
	if (x->count)
		scope = x->len;
	x->scope = (uint8_t)scope;
	span_add(sp, x->key[0], x->key[1], i);
	uint64_t xend[2], cend[2];
	node_end(x, xend);
	for (unsigned b = 0; b < 2; b++) {
		uint32_t c = x->child[b];
		if (!c)
			continue;
		spans_under(t, c, x->child[!b] ? x->len + 1u : scope, sp);
		/* After the child's range, x is the deepest again, up to its own end. */
		node_end(&t[c], cend);
		if (cend[0] != xend[0] || cend[1] != xend[1])
			span_add(sp, cend[0] + (cend[1] == ~0ull), cend[1] + 1, i);
	}
}

static void spans_build(struct lb_geo_nets *g)
{
	struct spans sp = { 0 };
	spans_under(g->nodes[1], 1, 0, &sp);
	g->nspans = sp.n;
	g->span_hi = gslb_realloc(sp.hi, sp.n * sizeof(*sp.hi));
	g->span_lo = gslb_realloc(sp.lo, sp.n * sizeof(*sp.lo));
	g->span_node = gslb_realloc(sp.node, sp.n * sizeof(*sp.node));
}

void lb_geo_nets_free(lb_pool_t *p)
{
	struct lb_geo_nets *g = p->geo_nets;
	if (!g)
		return;
	free(g->nodes[0]);
	free(g->nodes[1]);
	free(g->members);
	free(g->block_start);
	free(g->block_net);
	free(g->block_scope);
	free(g->span_hi);
	free(g->span_lo);
	free(g->span_node);
	free(g);
	p->geo_nets = NULL;
}

void lb_geo_nets_build(lb_pool_t *p)
{
	lb_geo_nets_free(p);
	size_t total = 0;
	for (uint16_t k = 0; k < p->nmembers; k++)
		total += p->members[k].nnets;
	if (total == 0)
		return;

	struct net_ent *e = gslb_calloc(total, sizeof(*e));
	size_t ne[2] = { 0, 0 };
	/* IPv4 first, then IPv6: two passes keep the families apart without a field. */
	for (int fi = 0; fi < 2; fi++)
		for (uint16_t k = 0; k < p->nmembers; k++)
			for (uint16_t i = 0; i < p->members[k].nnets; i++) {
				const lb_net_t *n = &p->members[k].nets[i];
				/* lb_net_parse() allows nothing else. */
				if (n->family != (fi ? 6 : 4) || n->len > family_bits(n->family))
					continue;
				struct net_ent *x = &e[ne[0] + ne[1]];
				addr_key(n->family, n->addr, x->key);
				key_mask(x->key, n->len);
				x->len = n->len;
				x->member = k;
				ne[fi]++;
			}
	qsort(e, ne[0], sizeof(*e), net_ent_cmp);
	qsort(e + ne[0], ne[1], sizeof(*e), net_ent_cmp);

	struct lb_geo_nets *g = gslb_calloc(1, sizeof(*g));
	g->members = gslb_calloc(ne[0] + ne[1], sizeof(*g->members));
	uint32_t nm = 0;
	const struct net_ent *x = e;
	for (int fi = 0; fi < 2; x += ne[fi], fi++) {
		if (ne[fi] == 0)
			continue;
		/* Node 0 unused, the root (/0), then at most two nodes per network. */
		struct geo_node *t = gslb_calloc(2 + 2 * ne[fi], sizeof(*t));
		uint32_t nn = 2;
		for (size_t i = 0; i < ne[fi];) {
			uint32_t id = trie_insert(t, &nn, x[i].key, x[i].len);
			t[id].first = nm;
			size_t j = i;
			for (; j < ne[fi] && x[j].len == x[i].len && x[j].key[0] == x[i].key[0] &&
			       x[j].key[1] == x[i].key[1];
			     j++)
				if (j == i || x[j].member != x[j - 1].member)
					g->members[nm++] = x[j].member;
			t[id].count = (uint16_t)(nm - t[id].first);
			i = j;
		}
		trie_link(t, 1, t[1].count ? 1 : 0);
		g->nodes[fi] = gslb_realloc(t, nn * sizeof(*t));
	}
	free(e);
	if (g->nodes[0])
		blocks_build(g);
	if (g->nodes[1])
		spans_build(g);
	p->geo_nets = g;
}

/*
 * The member networks holding the client and the ECS scope they impose
 * (RFC 7871 7.2.1), which every member network counts for, eligible or
 * not: at least the length of the longest network holding the client (the
 * answer may change inside a more specific one when its member comes back),
 * and one past the deepest bit where the client parts from a network not
 * holding it (so that the scope excludes it).  *net receives the longest
 * network holding the client (a node; its up links lead to the shorter
 * ones), 0 when none.  Returns the scope.
 */
static unsigned nets_find(const struct lb_geo_nets *g, const lb_client_t *cl, uint32_t *net)
{
	*net = 0;
	if (cl->family == 4) {
		if (!g->nblocks)
			return 0;
		/* The last block starting at or before the client: block_start[0] is 0. */
		uint32_t a;
		memcpy(&a, cl->addr, 4);
		a = be32toh(a);
		const uint32_t *s = g->block_start;
		uint32_t lo = 0, n = g->nblocks;
		while (n > 1) {
			uint32_t half = n / 2;
			lo = s[lo + half] <= a ? lo + half : lo;
			n -= half;
		}
		*net = g->block_net[lo];
		return g->block_scope[lo];
	}

	/* IPv6: the deepest node holding the client, by its span; span_hi[0], span_lo[0] are 0. */
	if (!g->nspans)
		return 0;
	uint64_t k[2];
	addr_key(6, cl->addr, k);
	const uint64_t *hi = g->span_hi, *lo = g->span_lo;
	uint32_t at = 0, n = g->nspans;
	while (n > 1) {
		uint32_t half = n / 2, m = at + half;
		at = hi[m] < k[0] || (hi[m] == k[0] && lo[m] <= k[1]) ? m : at;
		n -= half;
	}
	const struct geo_node *t = g->nodes[1];
	uint32_t i = g->span_node[at];
	const struct geo_node *x = &t[i];
	*net = x->count ? i : x->up;
	if (x->len >= 128)
		return x->scope;
	/*
	 * No child of x holds the client: it parts from the one on its side
	 * inside that one's prefix, or leaves x where only the other side has
	 * networks, or where neither has.
	 */
	unsigned b = key_bit(k, x->len);
	if (x->child[b])
		return key_common(k, t[x->child[b]].key) + 1;
	return x->child[!b] ? x->len + 1u : x->scope;
}

/* A place code as the zero-padded 8 bytes members keep them in, for one comparison each. */
static uint64_t place_key(const char *code, size_t max)
{
	uint64_t k = 0;
	memcpy(&k, code, strnlen(code, max));
	return k;
}

static bool member_lists_country(const lb_member_t *m, uint64_t key)
{
	for (uint16_t i = 0; i < m->ncountries; i++) {
		uint64_t c;
		memcpy(&c, m->countries[i], sizeof(c));
		if (c == key)
			return true;
	}
	return false;
}

/*
 * Rule 4: candidates with a location, nearest first, ties by weight
 * (heavier first).  Nearness is the dot product of unit vectors, which
 * orders places exactly as the great-circle distance does.
 */
static uint16_t rank_distance(const lb_pool_t *p, const struct lb_cands *c, const geo_info_t *g,
			      uint16_t *idx)
{
	double near[LB_MEMBERS_MAX];
	uint16_t n = 0;
	for (uint16_t k = 0; k < c->n; k++) {
		const lb_member_t *m = &p->members[c->idx[k]];
		if (!m->has_location)
			continue;
		double d = g->uvec[0] * m->uvec[0] + g->uvec[1] * m->uvec[1] +
			   g->uvec[2] * m->uvec[2];
		/* Insertion sort: pools are small and this keeps the order stable. */
		uint16_t j = n++;
		while (j > 0 && (near[j - 1] < d ||
				 (near[j - 1] == d && p->members[idx[j - 1]].weight < m->weight))) {
			near[j] = near[j - 1];
			idx[j] = idx[j - 1];
			j--;
		}
		near[j] = d;
		idx[j] = c->idx[k];
	}
	return n;
}

void lb_geo_rank_cands(const lb_pool_t *p, const lb_client_t *cl, const struct lb_cands *c,
		       lb_geo_rank_t *out)
{
	bool known = cl && (cl->family == 4 || cl->family == 6);
	const geo_info_t *g = cl ? cl->geo : NULL;
	int best = -1;

	out->rule = LB_GEO_NONE;
	out->scope = 0;
	out->net_len = 0;
	out->n = 0;
	if (c->n == 0)
		return;

	/*
	 * Rule 1: the longest member network holding the client that an
	 * eligible member lists; the members listing it tie, in the order of c.
	 */
	uint32_t net = 0;
	unsigned nets_scope = 0;
	if (known && p->geo_nets)
		nets_scope = nets_find(p->geo_nets, cl, &net);
	if (net) {
		const struct geo_node *t = p->geo_nets->nodes[cl->family == 6];
		uint64_t cand[LB_MEMBERS_MAX / 64] = { 0 }, win[LB_MEMBERS_MAX / 64] = { 0 };
		for (uint16_t k = 0; k < c->n; k++)
			cand[c->idx[k] / 64] |= 1ull << (c->idx[k] % 64);
		/* From the longest network holding the client to the shorter ones. */
		for (; net && best < 0; net = t[net].up) {
			const uint16_t *m = p->geo_nets->members + t[net].first;
			for (uint16_t i = 0; i < t[net].count; i++)
				if (cand[m[i] / 64] >> (m[i] % 64) & 1) {
					win[m[i] / 64] |= 1ull << (m[i] % 64);
					best = t[net].len;
				}
		}
		if (best >= 0) {
			for (uint16_t k = 0; k < c->n; k++)
				if (win[c->idx[k] / 64] >> (c->idx[k] % 64) & 1)
					out->idx[out->n++] = c->idx[k];
			out->rule = LB_GEO_NETWORK;
			out->net_len = (uint8_t)best;
			/* The walk's scope is at least the longest network holding the client. */
			out->scope = (uint8_t)nets_scope;
			return;
		}
	}

	bool found = known && g && g->found;
	/* Rule 2: the subdivision, else the country (pools without places: no work). */
	if (found && p->has_places && g->subdivision[0]) {
		uint64_t key = place_key(g->subdivision, sizeof(g->subdivision));
		for (uint16_t k = 0; k < c->n; k++)
			if (member_lists_country(&p->members[c->idx[k]], key))
				out->idx[out->n++] = c->idx[k];
	}
	if (out->n == 0 && found && p->has_places && g->country[0]) {
		uint64_t key = place_key(g->country, sizeof(g->country));
		for (uint16_t k = 0; k < c->n; k++)
			if (member_lists_country(&p->members[c->idx[k]], key))
				out->idx[out->n++] = c->idx[k];
	}
	if (out->n > 0) {
		out->rule = LB_GEO_COUNTRY;
		goto scope;
	}
	/* Rule 3: the continent. */
	int cb = found && p->has_continents ? lb_continent_bit(g->continent) : -1;
	if (cb >= 0)
		for (uint16_t k = 0; k < c->n; k++)
			if (p->members[c->idx[k]].continents & (1u << cb))
				out->idx[out->n++] = c->idx[k];
	if (out->n > 0) {
		out->rule = LB_GEO_CONTINENT;
		goto scope;
	}
	/* Rule 4: great-circle distance. */
	if (found && g->has_location)
		out->n = rank_distance(p, c, g, out->idx);
	if (out->n > 0) {
		out->rule = LB_GEO_DISTANCE;
		goto scope;
	}
	/* Rule 5: every eligible member. */
	memcpy(out->idx, c->idx, c->n * sizeof(*c->idx));
	out->n = c->n;
	out->rule = LB_GEO_REST;
scope:
	/*
	 * The geo file's network decided (0 without a geo file), widened to
	 * exclude the member networks (nets_walk()).
	 */
	if (known) {
		unsigned scope = g ? g->prefix_len : 0;
		out->scope = (uint8_t)(nets_scope > scope ? nets_scope : scope);
	}
}

int lb_geo_rank(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		lb_geo_rank_t *out)
{
	struct lb_cands c;
	lb_candidates(p, family == 6, h, &c);
	if (c.nodata)
		c.n = 0;
	lb_geo_rank_cands(p, cl, &c, out);
	return 0;
}
