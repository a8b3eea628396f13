/* SPDX-License-Identifier: MIT */
/*
 * Health-check targets of a configuration: deduplicated, given stable health-table indexes.  The
 * bridge between the configuration (src/db), the pools (src/lb) and the health loop (src/health),
 * so it lives with the control loop that uses it, not in the answer path.
 */
#include "gslb/targets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/dns.h"

/*
 * key -> index, for the life of the process.  An index is never given to
 * another key, so a snapshot being answered from while the configuration
 * changes can only read a stale state word of its own target, never
 * another target's.  Control thread only.
 */
struct target_reg {
	uint32_t cap;	 /* indexes available (the health table's size) */
	uint32_t n;	 /* indexes given */
	uint32_t mask;	 /* hash slots - 1 */
	char **slot_key; /* owned */
	uint32_t *slot_index;
	bool full_warned;
};

target_reg_t *server_targets_new(uint32_t cap)
{
	target_reg_t *r = gslb_calloc(1, sizeof(*r));
	uint32_t slots = 16;
	while (slots < cap * 2u && slots < (1u << 30))
		slots *= 2;
	r->cap = cap;
	r->mask = slots - 1;
	r->slot_key = gslb_calloc(slots, sizeof(*r->slot_key));
	r->slot_index = gslb_calloc(slots, sizeof(*r->slot_index));
	return r;
}

void server_targets_free(target_reg_t *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i <= r->mask; i++)
		free(r->slot_key[i]);
	free(r->slot_key);
	free(r->slot_index);
	free(r);
}

static uint32_t reg_index(target_reg_t *r, const char *key)
{
	size_t len = strlen(key);
	uint32_t i = gslb_hash(key, len) & r->mask;
	for (; r->slot_key[i]; i = (i + 1) & r->mask)
		if (strcmp(r->slot_key[i], key) == 0)
			return r->slot_index[i];
	if (r->n >= r->cap) {
		if (!r->full_warned)
			log_warn("health: more than %u distinct targets; the rest are not probed",
				 r->cap);
		r->full_warned = true;
		return LB_TARGET_NONE;
	}
	r->slot_key[i] = gslb_strdup(key);
	r->slot_index[i] = r->n;
	return r->n++;
}

/* The address to probe as a sockaddr with the check's port. */
static bool probe_addr(struct sockaddr_storage *ss, const char *text, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return true;
	}
	if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return true;
	}
	return false;
}

/* Pool name without the trailing dot: the default Host header and SNI (README "Health checks"). */
static void default_host(char *dst, size_t cap, const char *pool)
{
	snprintf(dst, cap, "%s", pool);
	size_t l = strlen(dst);
	if (l > 1 && dst[l - 1] == '.')
		dst[l - 1] = '\0';
}

/* The check c of pool p for one served address, into hc; quiet: no warning (gslbctl). */
static int check_conf(const db_pool_t *p, const db_check_t *c, const char *address,
		      health_check_conf_t *hc, char *host, size_t host_len, bool quiet)
{
	memset(hc, 0, sizeof(*hc));
	uint16_t port = c->port;
	if (!port)
		port = c->type == DB_CHECK_HTTPS ? 443 : c->type == DB_CHECK_HTTP ? 80 : 0;
	if (!port || !probe_addr(&hc->addr, c->target ? c->target : address, port))
		return -EINVAL;
	hc->type = c->type == DB_CHECK_HTTPS  ? HEALTH_HTTPS
		   : c->type == DB_CHECK_HTTP ? HEALTH_HTTP
					      : HEALTH_TCP;
	if (c->host)
		snprintf(host, host_len, "%s", c->host);
	else
		default_host(host, host_len, p->name);
	hc->path = c->path ? c->path : "/";
	hc->host = host;
	if (c->expect && health_expect_parse(hc, c->expect) < 0 && !quiet)
		log_warn("pool %s: check expect '%s' is invalid; using 200-399", p->name,
			 c->expect);
	hc->match = c->match;
	hc->interval_ms = c->interval_ms;
	hc->timeout_ms = c->timeout_ms;
	hc->rise = c->rise;
	hc->fall = c->fall;
	hc->insecure = c->insecure;
	hc->quorum = c->quorum;
	/* What the health loop runs (and the key names): the defaults of what is unset. */
	health_check_defaults(hc);
	return 0;
}

int server_targets_check_conf(const db_pool_t *p, const db_check_t *c, const char *address,
			      health_check_conf_t *hc, char *host, size_t host_len)
{
	return check_conf(p, c, address, hc, host, host_len, true);
}

struct tlist {
	health_target_conf_t *t;
	size_t n, cap;
	char (*hosts)[256]; /* Host of t[i]; pointers are set once the list is complete */
	uint8_t *listed;    /* by index: already in t (a scan of t was quadratic) */
};

/* One probe for one served address; returns its index or LB_TARGET_NONE. */
static uint32_t target_for(target_reg_t *reg, struct tlist *tl, const db_pool_t *p,
			   const db_check_t *c, const char *address)
{
	health_check_conf_t hc;

	if (tl->n == tl->cap) {
		tl->cap = tl->cap ? tl->cap * 2 : 64;
		tl->t = gslb_realloc(tl->t, tl->cap * sizeof(*tl->t));
		tl->hosts = gslb_realloc(tl->hosts, tl->cap * sizeof(*tl->hosts));
	}
	/* The host goes where the list keeps it; it is re-pointed when the list is complete. */
	if (check_conf(p, c, address, &hc, tl->hosts[tl->n], sizeof(tl->hosts[0]), false) < 0)
		return LB_TARGET_NONE;

	/* Checks with equal keys send the same probe and judge it alike: one target. */
	char key[HEALTH_KEY_MAX];
	health_target_key(&hc, key, sizeof(key));
	uint32_t idx = reg_index(reg, key);
	if (idx == LB_TARGET_NONE)
		return idx;
	if (tl->listed[idx])
		return idx; /* already probed for another pool: one probe per target */
	tl->listed[idx] = 1;
	tl->t[tl->n].key = NULL;
	tl->t[tl->n].index = idx;
	tl->t[tl->n].check = hc;
	tl->n++;
	return idx;
}

/* The pool lp was built from; no name lookup (converting 100,000 names took 60 ms). */
static const db_pool_t *db_pool_of(const db_config_t *cfg, const lb_pool_t *lp)
{
	return lp->cfg_index < cfg->npools ? &cfg->pools[lp->cfg_index] : NULL;
}

/*
 * The text of address a of member m: the row it came from, as written; an
 * address of m's alias (README "Alias members"), past m's own rows, is
 * stored in the canonical form inet_ntop() gives, so it is made again.
 */
static const char *addr_text(const db_member_t *m, const lb_addr_t *a, char *buf)
{
	if (a->row < m->naddresses)
		return m->addresses[a->row];
	return inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, buf, INET6_ADDRSTRLEN);
}

int server_targets_assign(target_reg_t *reg, const db_config_t *cfg, lb_pool_t *const *pools,
			  uint32_t npools, server_targets_t *out)
{
	struct tlist tl = { .listed = gslb_calloc(reg->cap ? reg->cap : 1, 1) };
	char text[INET6_ADDRSTRLEN];
	for (uint32_t i = 0; i < npools; i++) {
		lb_pool_t *lp = pools[i];
		const db_pool_t *p = db_pool_of(cfg, lp);
		if (!p)
			continue;
		for (uint16_t k = 0; k < lp->nmembers && k < p->nmembers; k++) {
			lb_member_t *lm = &lp->members[k];
			const db_member_t *m = &p->members[k];
			const db_check_t *c = m->check ? m->check : p->check;
			if (!c)
				continue;
			/*
			 * By the row each address came from: the loader skips bad
			 * rows.  A pool shared with the snapshot being answered
			 * from keeps its key, hence its index: written only when
			 * it differs.
			 */
			for (int f = 0; f < 2; f++)
				for (uint16_t j = 0; j < lm->naddr[f]; j++) {
					lb_addr_t *a = &lm->addr[f][j];
					uint32_t t = target_for(reg, &tl, p, c,
								addr_text(m, a, text));
					if (a->target != t)
						a->target = t;
				}
		}
	}
	/*
	 * A digest of everything the health loop is told, so the caller hands
	 * over a new list only when it changed (every probe result it writes
	 * also changes the database's data_version).
	 */
	uint64_t h = 0xcbf29ce484222325ULL;
#define MIX(p, n)                                            \
	do {                                                 \
		const uint8_t *b_ = (const uint8_t *)(p);    \
		for (size_t i_ = 0; i_ < (n); i_++)          \
			h = (h ^ b_[i_]) * 0x100000001b3ULL; \
	} while (0)
	for (size_t i = 0; i < tl.n; i++) {
		health_check_conf_t *c = &tl.t[i].check;
		c->host = tl.hosts[i]; /* hosts moved while the list grew */
		MIX(c->host, strlen(c->host) + 1);
		MIX(&tl.t[i].index, sizeof(tl.t[i].index));
		MIX(&c->interval_ms, sizeof(c->interval_ms));
		MIX(&c->timeout_ms, sizeof(c->timeout_ms));
		MIX(&c->rise, sizeof(c->rise));
		MIX(&c->fall, sizeof(c->fall));
		MIX(&c->insecure, sizeof(c->insecure));
		MIX(&c->quorum, sizeof(c->quorum));
		MIX(&c->nexpect, sizeof(c->nexpect));
		MIX(c->expect, c->nexpect * sizeof(c->expect[0]));
		if (c->match)
			MIX(c->match, strlen(c->match) + 1);
	}
#undef MIX
	free(tl.listed);
	out->digest = h;
	out->t = tl.t;
	out->n = tl.n;
	out->hosts = tl.hosts;
	return 0;
}

void server_targets_clear(server_targets_t *t)
{
	free(t->t);
	free(t->hosts);
	memset(t, 0, sizeof(*t));
}
