/* SPDX-License-Identifier: MIT */
/*
 * gslbctl explain: what gslbd would answer for a pool and why, from the daemon's own selection
 * code.
 */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/geo.h"
#include "gslb/health.h"
#include "gslb/lb.h"
#include "gslb/status.h"
#include "gslb/targets.h"
#include "gslbctl.h"

static const ctl_optdef_t explain_opts[] = {
	{ "--client", true, false }, { "--ecs", true, false }, { "--type", true, false },
	{ "--geoip", true, false },  { NULL, false, false },
};

/*
 * Who the answer is for (README "Balanced names", geo and ECS): the ECS address when its prefix is
 * above 0, else the resolver.
 */
struct client {
	bool has_addr;
	int family; /* 4 or 6 */
	uint8_t addr[16];
	char text[INET6_ADDRSTRLEN];
	bool ecs;			 /* source "ecs" */
	char ecs_text[CIDR_LEN];	 /* the validated ECS prefix, "" when none */
	char resolver[INET6_ADDRSTRLEN]; /* --client, "" when none */
	geo_info_t geo;			 /* valid when has_geo, or looked (maybe not found) */
	bool has_geo;
	bool looked;		/* --geoip was given and the address looked up, as gslbd would */
	char network[CIDR_LEN]; /* the geo file's network that held the client, "" when none */
};

/* The stored health of one target index (the order of server_targets_assign()'s list). */
struct tstate {
	uint32_t index;
	char key[HEALTH_KEY_MAX];
	bool down;
	bool stored;  /* target_state has a row: it was probed */
	char *reason; /* owned, NULL when none stored */
};

struct tstates {
	size_t n;
	struct tstate *v; /* owned */
};

static const struct tstate *tstate_find(const struct tstates *ts, uint32_t index)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->v[i].index == index)
			return &ts->v[i];
	return NULL;
}

static void tstates_clear(struct tstates *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		free(ts->v[i].reason);
	free(ts->v);
	memset(ts, 0, sizeof(*ts));
}

/*
 * Fill the health table the way gslbd starts it: every target from its
 * state stored in target_state, up when it never had one (README "Health checks").
 */
static int health_load(ctl_t *c, const server_targets_t *t, lb_health_t *h, struct tstates *ts)
{
	ts->v = gslb_calloc(t->n ? t->n : 1, sizeof(*ts->v));
	for (size_t i = 0; i < t->n; i++) {
		struct tstate *s = &ts->v[ts->n++];
		db_target_state_t st = { 0 };
		s->index = t->t[i].index;
		health_target_key(&t->t[i].check, s->key, sizeof(s->key));
		int ret = db_target_state_get(c->db, s->key, &st);
		if (ret == 0 && !st.state) {
			/*
			 * Never probed under its key: gslbd starts it from the
			 * state stored under the key of its probe alone.
			 */
			char pkey[HEALTH_KEY_MAX];
			health_probe_key(&t->t[i].check, pkey, sizeof(pkey));
			if (strcmp(pkey, s->key) != 0)
				ret = db_target_state_get(c->db, pkey, &st);
		}
		if (ret)
			return ctl_db_fail(c, ret);
		s->stored = st.state != NULL;
		s->down = st.state && strcmp(st.state, "down") == 0;
		if (st.reason)
			s->reason = gslb_strdup(st.reason);
		db_target_state_clear(&st);
		lb_health_set(h, s->index, !s->down);
	}
	return CTL_OK;
}

/* The prefix of plen bits of addr as "ADDR/PLEN" into out (CIDR_LEN bytes). */
static void prefix_text(char *out, size_t len, int family, const uint8_t *addr, unsigned plen)
{
	lb_net_t n = { .family = (uint8_t)family, .len = (uint8_t)plen };
	memcpy(n.addr, addr, family == 6 ? 16 : 4);
	lb_net_mask(&n);
	fmt_net(out, len, &n);
}

static int client_parse(ctl_t *c, const ctl_args_t *a, struct client *cl)
{
	char why[WHY_MAX];
	const char *s;

	memset(cl, 0, sizeof(*cl));
	if ((s = ctl_arg(a, "--client"))) {
		if (val_ip(s, cl->resolver, &cl->family, why))
			return ctl_invalid(c, "--client: %s", why);
		inet_pton(cl->family == 6 ? AF_INET6 : AF_INET, cl->resolver, cl->addr);
		snprintf(cl->text, sizeof(cl->text), "%s", cl->resolver);
		cl->has_addr = true;
	}
	if ((s = ctl_arg(a, "--ecs"))) {
		lb_net_t n;
		/*
		 * RFC 7871 6: the address must not be longer than the source
		 * prefix needs, with the bits beyond it zero; val_cidr() checks
		 * both and the family's maximum length.
		 */
		if (val_cidr(s, cl->ecs_text, why))
			return ctl_invalid(c, "--ecs: %s", why);
		lb_net_parse(cl->ecs_text, &n);
		/* Interface 7: an ECS source prefix of 0 says nothing; the resolver's address counts. */
		if (n.len > 0) {
			cl->family = n.family;
			memcpy(cl->addr, n.addr, sizeof(cl->addr));
			inet_ntop(cl->family == 6 ? AF_INET6 : AF_INET, cl->addr, cl->text,
				  sizeof(cl->text));
			cl->has_addr = true;
			cl->ecs = true;
		}
	}
	return CTL_OK;
}

/* Look the client up in the geo file, as gslbd will for geo pools (issue 5). */
static int client_locate(ctl_t *c, const char *path, struct client *cl)
{
	geo_db_t *g = NULL;
	int ret = geo_db_open(path, &g);
	if (ret)
		return ctl_fail(c, "%s: %s: %s", path == c->conf.geoip ? "geoip" : "--geoip", path,
				gslb_strerror(ret));
	if (cl->has_addr && geo_db_lookup(g, cl->family, cl->addr, &cl->geo) == 0)
		cl->looked = true;
	if (cl->looked && cl->geo.found) {
		cl->has_geo = true;
		prefix_text(cl->network, sizeof(cl->network), cl->family, cl->addr,
			    cl->geo.prefix_len);
	}
	geo_db_close(g);
	return CTL_OK;
}

/* The wire-name pool of pools whose name is name (lowercase, trailing dot), or NULL. */
static lb_pool_t *pool_find(lb_pool_t *pools, uint32_t n, const char *name)
{
	uint8_t wire[DNS_NAME_MAX + 1], lower[DNS_NAME_MAX + 1];
	if (dns_name_from_str(wire, name) < 0)
		return NULL;
	size_t len = dns_name_lower(lower, wire);
	for (uint32_t i = 0; i < n; i++)
		if (pools[i].name_len == len && memcmp(pools[i].name, lower, len) == 0)
			return &pools[i];
	return NULL;
}

static void addr_text(const lb_addr_t *a, char *out)
{
	inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->addr, out, INET6_ADDRSTRLEN);
}

/*
 * Is this address in answers using member m (healthy, or the fallback fired)?  README "Balanced
 * names"
 */
static bool addr_usable(const lb_member_t *m, const lb_addr_t *a, const lb_health_t *h,
			bool fallback)
{
	return fallback || m->admin == LB_ADMIN_UP || lb_health_up(h, a->target);
}

/* Everything explain prints, gathered once for both output forms. */
struct explain {
	const db_pool_t *dp;
	const lb_pool_t *lp;
	int family;
	const struct client *cl;
	const lb_health_t *h;
	const struct tstates *ts;
	const db_aliases_t *aliases; /* what gslbd resolved for alias members */
	int64_t now;
	lb_member_view_t views[LB_MEMBERS_MAX];
	bool fallback;
	lb_result_t res;
	lb_geo_rank_t rank;		/* geo pools: the deciding rule and its members */
	int mrank[LB_MEMBERS_MAX];	/* 0 when the member has no rank */
	double dist_km[LB_MEMBERS_MAX]; /* < 0 when unknown */
};

/*
 * The alias state address ad of member i came from, or NULL for one of the
 * member's own (README "Alias members"): the pool was built through
 * lb_member_address(), and each address keeps its index among the served.
 */
static const db_alias_state_t *addr_alias(const struct explain *e, uint16_t i, const lb_addr_t *ad)
{
	lb_member_addr_t sa;

	if (!lb_member_address(&e->dp->members[i], e->aliases, ad->row, &sa))
		return NULL;
	return sa.alias;
}

static const char *admin_name(uint8_t admin)
{
	switch (admin) {
	case LB_ADMIN_UP:
		return "up";
	case LB_ADMIN_DOWN:
		return "down";
	case LB_ADMIN_DRAIN:
		return "drain";
	default:
		return "auto";
	}
}

static const char *geo_rule_name(uint8_t rule)
{
	switch (rule) {
	case LB_GEO_NETWORK:
		return "1 (client network)";
	case LB_GEO_COUNTRY:
		return "2 (country)";
	case LB_GEO_CONTINENT:
		return "3 (continent)";
	case LB_GEO_DISTANCE:
		return "4 (distance)";
	case LB_GEO_REST:
		return "5 (no geo match: every eligible member)";
	default:
		return "none (no member is eligible)";
	}
}

static const char *ttl_reason(const struct explain *e)
{
	if (e->res.nodata && !e->res.degraded)
		return "NODATA: no member has an address of this family";
	if (e->res.fallback)
		return "degraded-ttl: no member is eligible, fallback all is in use";
	if (e->res.nodata)
		return "degraded-ttl: no member is eligible and fallback is none: NODATA";
	if (e->res.degraded)
		return "degraded-ttl: a member is down";
	return "ttl: every member is healthy";
}

static void explain_json(const struct explain *e)
{
	const lb_pool_t *lp = e->lp;
	const struct client *cl = e->cl;
	int fi = e->family == 6;
	char text[INET6_ADDRSTRLEN];
	jw_t w;

	jw_init(&w, stdout);
	jw_obj_begin(&w);
	jw_key(&w, "name");
	jw_str(&w, e->dp->name);
	jw_key(&w, "type");
	jw_str(&w, e->family == 6 ? "AAAA" : "A");
	jw_key(&w, "policy");
	jw_str(&w, db_policy_name(e->dp->policy));
	/* What lb_pool_select() did: rule 4 takes the nearest, every other case draws by weight. */
	jw_key(&w, "policy_applied");
	jw_str(&w, lp->policy == LB_POLICY_FAILOVER				    ? "failover"
		   : lp->policy == LB_POLICY_GEO && e->rank.rule == LB_GEO_DISTANCE ? "nearest"
										    : "weighted");
	jw_key(&w, "answers_wanted");
	jw_int(&w, lp->answers);

	jw_key(&w, "client");
	jw_obj_begin(&w);
	jw_key(&w, "address");
	jw_str(&w, cl->has_addr ? cl->text : NULL);
	jw_key(&w, "source");
	jw_str(&w, cl->ecs ? "ecs" : "resolver");
	jw_key(&w, "country");
	jw_str(&w, cl->has_geo && cl->geo.country[0] ? cl->geo.country : NULL);
	jw_key(&w, "subdivision");
	jw_str(&w, cl->has_geo && cl->geo.subdivision[0] ? cl->geo.subdivision : NULL);
	jw_key(&w, "continent");
	jw_str(&w, cl->has_geo && cl->geo.continent[0] ? cl->geo.continent : NULL);
	jw_key(&w, "location");
	if (cl->has_geo && cl->geo.has_location) {
		char loc[LOCATION_LEN];
		fmt_location(loc, sizeof(loc), cl->geo.lat, cl->geo.lon);
		jw_str(&w, loc);
	} else {
		jw_null(&w);
	}
	jw_key(&w, "network");
	jw_str(&w, cl->network[0] ? cl->network : NULL);
	jw_key(&w, "ecs");
	jw_str(&w, cl->ecs_text[0] ? cl->ecs_text : NULL);
	jw_key(&w, "resolver");
	jw_str(&w, cl->resolver[0] ? cl->resolver : NULL);
	jw_obj_end(&w);

	jw_key(&w, "members");
	jw_arr_begin(&w);
	for (uint16_t i = 0; i < lp->nmembers; i++) {
		const lb_member_t *m = &lp->members[i];
		const lb_member_view_t *v = &e->views[i];
		jw_obj_begin(&w);
		jw_key(&w, "name");
		jw_str(&w, m->name);
		jw_key(&w, "rank");
		if (e->mrank[i])
			jw_int(&w, e->mrank[i]);
		else
			jw_null(&w);
		jw_key(&w, "distance_km");
		if (e->dist_km[i] >= 0)
			jw_double(&w, e->dist_km[i]);
		else
			jw_null(&w);
		jw_key(&w, "healthy");
		jw_bool(&w, v->healthy);
		jw_key(&w, "admin");
		jw_str(&w, admin_name(m->admin));
		jw_key(&w, "weight");
		jw_int(&w, m->weight);
		jw_key(&w, "priority");
		jw_int(&w, m->priority);
		jw_key(&w, "eligible");
		jw_bool(&w, v->eligible);
		jw_key(&w, "secondary");
		jw_bool(&w, v->secondary);
		jw_key(&w, "probability");
		jw_double(&w, v->probability);
		if (e->dp->members[i].alias) {
			jw_key(&w, "alias");
			jw_str(&w, e->dp->members[i].alias);
		}
		jw_key(&w, "addresses");
		jw_arr_begin(&w);
		for (uint16_t k = 0; k < m->naddr[fi]; k++) {
			const lb_addr_t *ad = &m->addr[fi][k];
			const struct tstate *s = tstate_find(e->ts, ad->target);
			const db_alias_state_t *as = addr_alias(e, i, ad);
			addr_text(ad, text);
			jw_obj_begin(&w);
			jw_key(&w, "address");
			jw_str(&w, text);
			jw_key(&w, "healthy");
			jw_bool(&w, addr_usable(m, ad, e->h, false));
			jw_key(&w, "target");
			jw_str(&w, s ? s->key : NULL);
			jw_key(&w, "reason");
			jw_str(&w, s ? s->reason : NULL);
			/* As in status --json: only an alias's addresses have these. */
			if (as) {
				char t[32];
				jw_key(&w, "alias");
				jw_str(&w, as->name);
				jw_key(&w, "expires");
				if (as->expires > 0)
					jw_str(&w, cfg_status_time(as->expires, t, sizeof(t)));
				else
					jw_null(&w);
			}
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);

	jw_key(&w, "answer");
	jw_arr_begin(&w);
	for (uint16_t k = 0; k < e->res.naddrs; k++) {
		addr_text(e->res.addrs[k], text);
		jw_str(&w, text);
	}
	jw_arr_end(&w);
	jw_key(&w, "possible");
	jw_arr_begin(&w);
	for (uint16_t i = 0; i < lp->nmembers; i++) {
		const lb_member_t *m = &lp->members[i];
		if (!e->views[i].eligible || e->views[i].probability <= 0)
			continue;
		for (uint16_t k = 0; k < m->naddr[fi]; k++)
			if (addr_usable(m, &m->addr[fi][k], e->h, e->fallback)) {
				addr_text(&m->addr[fi][k], text);
				jw_str(&w, text);
			}
	}
	jw_arr_end(&w);
	jw_key(&w, "ttl");
	jw_int(&w, e->res.ttl);
	jw_key(&w, "degraded");
	jw_bool(&w, e->res.degraded);
	jw_key(&w, "nodata");
	jw_bool(&w, e->res.nodata);
	jw_key(&w, "geo_rule");
	if (lp->policy == LB_POLICY_GEO)
		jw_int(&w, e->rank.rule);
	else
		jw_null(&w);
	jw_key(&w, "scope");
	jw_int(&w, e->res.scope);
	jw_key(&w, "fallback");
	jw_bool(&w, e->res.fallback);
	jw_obj_end(&w);
	jw_end(&w);
}

/* The line under an alias member: what its alias resolved to, or that it never did. */
static void alias_text(const struct explain *e, uint16_t i)
{
	const db_member_t *dm = &e->dp->members[i];
	const db_alias_state_t *as = dm->alias ? lb_alias_find(e->aliases, dm->alias) : NULL;
	char t[48];

	if (!dm->alias)
		return;
	if (!as || as->never_resolved)
		printf("      alias %s: never resolved, no address from it%s\n", dm->alias,
		       dm->naddresses ? "" : " (not eligible: the member has none of its own)");
	else
		printf("      alias %s: %u address%s, %s%s\n", dm->alias, as->naddresses,
		       as->naddresses == 1 ? "" : "es",
		       cfg_status_expiry(as->expires, e->now, t, sizeof(t)),
		       as->failures ? " (resolution failing: the last good addresses are kept)"
				    : "");
}

static void explain_text(const struct explain *e)
{
	const lb_pool_t *lp = e->lp;
	const struct client *cl = e->cl;
	int fi = e->family == 6;
	char text[INET6_ADDRSTRLEN], rank[12];

	printf("1. pool %s  policy %s  answers %u  fallback %s  ttl %u  degraded-ttl %u\n",
	       e->dp->name, db_policy_name(e->dp->policy), lp->answers,
	       lp->fallback_all ? "all" : "none", lp->ttl, lp->degraded_ttl);
	printf("2. query %s %s\n", e->dp->name, e->family == 6 ? "AAAA" : "A");
	if (cl->ecs)
		printf("3. client %s (source ecs %s%s%s)\n", cl->text, cl->ecs_text,
		       cl->resolver[0] ? ", resolver " : "", cl->resolver);
	else if (cl->has_addr)
		printf("3. client %s (source resolver%s%s)\n", cl->text,
		       cl->ecs_text[0] ? "; ECS " : "", cl->ecs_text);
	else
		printf("3. client unknown (source resolver; no --client or --ecs given)%s%s\n",
		       cl->ecs_text[0] ? "; ECS " : "", cl->ecs_text);
	if (cl->has_geo) {
		printf("   geo: country %s", cl->geo.country[0] ? cl->geo.country : "-");
		if (cl->geo.subdivision[0])
			printf(" subdivision %s", cl->geo.subdivision);
		printf(" continent %s", cl->geo.continent[0] ? cl->geo.continent : "-");
		if (cl->geo.has_location) {
			char loc[LOCATION_LEN];
			fmt_location(loc, sizeof(loc), cl->geo.lat, cl->geo.lon);
			printf(" location %s", loc);
		}
		printf(" network %s\n", cl->network);
	}
	if (lp->policy == LB_POLICY_GEO) {
		if (cl->has_addr && !cl->looked)
			printf("   no --geoip: only member networks (rule 1) can match\n");
		if (e->rank.rule == LB_GEO_DISTANCE)
			/* lb_pool_select(): the first `answers` of rank_distance()'s order, no draw. */
			printf("   geo rule %s decided; the answer holds the %u nearest of the %u "
			       "eligible members with a location\n"
			       "   (no random draw: at equal distance the heavier weight first, "
			       "then the member name)\n",
			       geo_rule_name(e->rank.rule),
			       (unsigned)(e->rank.n < lp->answers ? e->rank.n : lp->answers),
			       (unsigned)e->rank.n);
		else
			printf("   geo rule %s decided; the answer is drawn by weight among its "
			       "members\n",
			       geo_rule_name(e->rank.rule));
		printf("4. members (rank: the geo rule that selected the member, or its distance "
		       "order under rule 4)\n");
	} else {
		printf("   the answer of a %s pool does not depend on the client\n",
		       lp->policy == LB_POLICY_FAILOVER ? "failover" : "weighted");
		printf("4. members (rank 1: the candidates the policy draws from)\n");
	}
	printf("   %-20s %4s %-7s %-5s %6s %4s %-8s %7s  %s\n", "member", "rank", "health", "admin",
	       "weight", "prio", "eligible", "chance", "addresses");
	for (uint16_t i = 0; i < lp->nmembers; i++) {
		const lb_member_t *m = &lp->members[i];
		const lb_member_view_t *v = &e->views[i];
		const char *health = m->naddr[fi] == 0 ? "no-addr" : v->healthy ? "up" : "down";
		const char *elig = v->eligible ? (v->secondary ? "last" : "yes") : "no";
		snprintf(rank, sizeof(rank), "%d", e->mrank[i]);
		printf("   %-20s %4s %-7s %-5s %6u %4u %-8s %6.2f%% ", m->name,
		       e->mrank[i] ? rank : "-", health, admin_name(m->admin), m->weight,
		       m->priority, elig, v->probability * 100.0);
		if (e->dist_km[i] >= 0)
			printf(" %.0f km", e->dist_km[i]);
		for (uint16_t k = 0; k < m->naddr[fi]; k++) {
			const lb_addr_t *ad = &m->addr[fi][k];
			const struct tstate *s = tstate_find(e->ts, ad->target);
			addr_text(ad, text);
			printf(" %s", text);
			if (m->admin == LB_ADMIN_UP && s && s->down)
				printf("(probe down, admin up)");
			else if (s && !s->stored)
				printf("(up: not probed yet)");
			else if (s)
				printf("(%s%s%s)", s->down ? "down" : "up", s->reason ? ": " : "",
				       s->reason ? s->reason : "");
			else
				printf("(no check)");
			const db_alias_state_t *as = addr_alias(e, i, ad);
			if (as)
				printf("[alias %s]", as->name);
		}
		printf("\n");
		alias_text(e, i);
		if (m->admin == LB_ADMIN_DOWN)
			printf("      admin down: never answered\n");
		else if (v->secondary && m->naddr[fi])
			printf("      %s: used only when no other member is eligible\n",
			       m->admin == LB_ADMIN_DRAIN ? "drain" : "weight 0");
		if (lp->policy == LB_POLICY_FAILOVER && !v->eligible && v->healthy &&
		    m->admin != LB_ADMIN_DOWN && !e->res.nodata)
			printf("      failover: a member with a lower priority value is "
			       "eligible\n");
	}

	printf("5. fallback: %s\n",
	       e->res.fallback ? "FIRED (no member eligible; answering as if all not-down "
				 "members were healthy)"
	       : e->res.nodata && e->res.degraded ? "none: no member eligible, the answer is NODATA"
						  : "not needed");
	printf("6. possible addresses:");
	bool any = false;
	for (uint16_t i = 0; i < lp->nmembers; i++) {
		const lb_member_t *m = &lp->members[i];
		if (!e->views[i].eligible || e->views[i].probability <= 0)
			continue;
		for (uint16_t k = 0; k < m->naddr[fi]; k++)
			if (addr_usable(m, &m->addr[fi][k], e->h, e->fallback)) {
				addr_text(&m->addr[fi][k], text);
				printf(" %s", text);
				any = true;
			}
	}
	printf("%s\n", any ? "" : " none (NODATA)");
	printf("7. ttl %u (%s)\n", e->res.ttl, ttl_reason(e));
	if (lp->policy == LB_POLICY_GEO)
		printf("8. ECS scope %u (answers with an ECS option claim it for the client's "
		       "prefix, RFC 7871 7.2.1)\n",
		       e->res.scope);
	else
		printf("8. ECS scope %u (the answer does not depend on the client)\n",
		       e->res.scope);
	printf("9. sample answer:");
	for (uint16_t k = 0; k < e->res.naddrs; k++) {
		addr_text(e->res.addrs[k], text);
		printf(" %s", text);
	}
	printf("%s\n", e->res.naddrs ? "" : " NODATA");
}

static void rng_seed(uint64_t rng[2])
{
	if (getrandom(rng, 2 * sizeof(*rng), 0) != (ssize_t)(2 * sizeof(*rng))) {
		rng[0] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
		rng[1] = (uint64_t)getpid() | 1;
	}
	if (!rng[0] && !rng[1])
		rng[1] = 1; /* xoroshiro's one bad state */
}

int cmd_explain(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char name[DNS_NAME_MAX + 1], why[WHY_MAX];
	const char *type, *geoip;
	const db_pool_t *dp;
	struct client cl;
	db_config_t *cfg = NULL;
	lb_pool_t *pools = NULL;
	uint32_t npools = 0;
	target_reg_t *reg = NULL;
	server_targets_t t = { 0 };
	lb_health_t *h = NULL;
	struct tstates ts = { 0 };
	db_aliases_t aliases = { 0 };
	struct explain *e = NULL;
	lb_pool_t *lp;
	uint32_t naddrs = 1;
	uint64_t rng[2];
	int family = 4;
	int ret;

	PARSE_ARGS(c, argc, argv, explain_opts, &a);
	if (a.npos == 0)
		return ctl_invalid(c, "NAME: missing");
	if (a.npos > 1)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[1]);
	if (val_pool_name(a.pos[0], name, sizeof(name), why))
		return ctl_invalid(c, "NAME: %s", why);
	type = ctl_arg(&a, "--type");
	if (type) {
		if (strcasecmp(type, "A") == 0)
			family = 4;
		else if (strcasecmp(type, "AAAA") == 0)
			family = 6;
		else
			return ctl_invalid(c, "--type: %s is not A or AAAA", type);
	}
	if ((ret = client_parse(c, &a, &cl)))
		return ret;
	geoip = ctl_arg(&a, "--geoip");
	if (geoip && !*geoip)
		return ctl_invalid(c, "--geoip: empty file name");
	if (!geoip)
		geoip = c->conf.geoip; /* gslbd's geo file, from its configuration file */

	if ((ret = ctl_open(c)))
		return ret;
	if ((ret = db_config_load(c->db, &cfg)))
		return ctl_db_fail(c, ret);
	dp = db_config_pool(cfg, name);
	if (!dp) {
		ret = ctl_fail(c, "no pool %s", name);
		goto out;
	}
	if (geoip && (ret = client_locate(c, geoip, &cl)))
		goto out;

	/*
	 * The daemon's own path: pools from the configuration and what it
	 * resolved for alias members, then targets, then health.
	 */
	if ((ret = db_alias_state_load(c->db, &aliases))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	npools = lb_config_pools(cfg, &aliases, &pools);
	lp = pool_find(pools, npools, name);
	if (!lp) {
		ret = ctl_fail(c, "pool %s cannot be served (its name is not a domain name)", name);
		goto out;
	}
	for (uint16_t i = 0; i < lp->nmembers; i++)
		naddrs += lp->members[i].naddr[0] + lp->members[i].naddr[1];
	reg = server_targets_new(naddrs);
	if ((ret = server_targets_assign(reg, cfg, &lp, 1, &t)) < 0) {
		ret = ctl_fail(c, "cannot assign health targets: %s", gslb_strerror(ret));
		goto out;
	}
	h = lb_health_new(naddrs);
	if ((ret = health_load(c, &t, h, &ts)))
		goto out;

	e = gslb_calloc(1, sizeof(*e));
	e->dp = dp;
	e->lp = lp;
	e->family = family;
	e->cl = &cl;
	e->h = h;
	e->ts = &ts;
	e->aliases = &aliases;
	e->now = time(NULL);
	/*
	 * The client as gslbd builds it (README "Balanced names": geo and ECS): the ECS address when its
	 * prefix is above 0, else the resolver; the geo facts only when there is
	 * a geo file, even when it has no record (the scope then comes from the
	 * empty network around the address).
	 */
	lb_client_t lc = { .family = (uint8_t)cl.family, .geo = cl.looked ? &cl.geo : NULL };
	memcpy(lc.addr, cl.addr, sizeof(lc.addr));
	const lb_client_t *lcp = cl.has_addr ? &lc : NULL;
	lb_pool_explain(lp, family, lcp, h, e->views, &e->fallback);
	rng_seed(rng);
	lb_pool_select(lp, family, lcp, h, rng, &e->res);
	if (lp->policy == LB_POLICY_GEO) {
		lb_geo_rank(lp, family, lcp, h, &e->rank);
		for (uint16_t k = 0; k < e->rank.n; k++)
			e->mrank[e->rank.idx[k]] = e->rank.rule == LB_GEO_DISTANCE ? k + 1
										   : e->rank.rule;
	}
	for (uint16_t i = 0; i < lp->nmembers; i++) {
		/* lb_config_pools() keeps the configuration's order: dm is m's row. */
		const lb_member_t *m = &lp->members[i];
		const db_member_t *dm = &dp->members[i];
		if (lp->policy != LB_POLICY_GEO && e->views[i].eligible)
			e->mrank[i] = 1;
		e->dist_km[i] = -1;
		if (cl.has_geo && cl.geo.has_location && m->has_location)
			e->dist_km[i] = geo_distance_km(cl.geo.lat, cl.geo.lon, dm->latitude,
							dm->longitude);
	}
	if (c->json)
		explain_json(e);
	else
		explain_text(e);
	ret = CTL_OK;
out:
	free(e);
	tstates_clear(&ts);
	lb_health_free(h);
	server_targets_clear(&t);
	server_targets_free(reg);
	lb_pools_free(pools, npools);
	db_aliases_clear(&aliases);
	db_config_free(cfg);
	return ret;
}
