/* SPDX-License-Identifier: MIT */
/*
 * Response rate limiting's table and what is done off the common path
 * (src/query/internal.h has the check itself, inlined into the answer path).
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "internal.h"

struct query_rrl *rrl_new(const query_rrl_conf_t *c, uint64_t seed)
{
	struct query_rrl *t = gslb_calloc(1, sizeof(*t));
	t->seed = seed | 1;
	t->conf = c;
	t->rate = c->rate;
	uint32_t threads = c->threads ? c->threads : 1;
	t->cost = (int32_t)(threads * 1000u);
	/* At least one response: a rate below the number of threads is one per thread now and then. */
	t->cap = c->rate * 1000u > (uint32_t)t->cost ? (int32_t)(c->rate * 1000u) : t->cost;
	return t;
}

void rrl_free(struct query_rrl *t)
{
	free(t);
}

bool rrl_exempt(const query_rrl_conf_t *c, const struct sockaddr *peer)
{
	const uint8_t *addr = NULL;
	size_t len = query_peer_ip(peer, &addr);
	uint8_t family = len == 4 ? 4 : 6;
	if (!len)
		return false;
	for (size_t i = 0; i < c->nexempt; i++) {
		const lb_net_t *n = &c->exempt[i];
		if (n->family != family)
			continue;
		unsigned whole = n->len / 8, bits = n->len % 8;
		if (memcmp(addr, n->addr, whole) != 0)
			continue;
		if (bits && ((addr[whole] ^ n->addr[whole]) & (uint8_t)(0xff00u >> bits)))
			continue;
		return true;
	}
	return false;
}

enum rrl_verdict rrl_limited(struct rrl_entry *e, const query_rrl_conf_t *c,
			     const struct sockaddr *peer, uint64_t tag)
{
	/* Exemptions are looked up only for a response about to be limited: free otherwise. */
	if (c->nexempt && rrl_exempt(c, peer))
		return RRL_PASS;
	if (!c->slip)
		return RRL_DROP;
	/* Every slip-th limited response of this entry goes out truncated. */
	uint64_t n = (e->tag & 0xff) + 1;
	if (n >= c->slip) {
		e->tag = tag;
		return RRL_SLIP;
	}
	e->tag = tag | n;
	return RRL_DROP;
}
