/* SPDX-License-Identifier: MIT */
/* gslbctl's read-only commands: pool list and show, status, history, log, export. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/db_cluster.h"
#include "gslb/dns.h"
#include "gslb/health.h"
#include "gslb/lb.h"
#include "gslb/targets.h"
#include "gslb/paths.h"
#include "gslb/status.h"
#include "gslb/zone.h"
#include "gslbctl.h"

static const ctl_optdef_t limit_opts[] = {
	{ "--limit", true, false },
	{ NULL, false, false },
};

static void jw_time(jw_t *w, int64_t t)
{
	char buf[32];
	if (t <= 0)
		jw_null(w);
	else
		jw_str(w, cfg_status_time(t, buf, sizeof(buf)));
}

static int load_config(ctl_t *c, db_config_t **cfg)
{
	int ret = ctl_open(c);
	if (ret)
		return ret;
	ret = db_config_load(c->db, cfg);
	return ret ? ctl_db_fail(c, ret) : CTL_OK;
}

/*
 * The configuration, for a command that takes no argument; CTL_OK with *cfg
 * still NULL when --help was given (and printed).
 */
static int load_config_noargs(ctl_t *c, int argc, char **argv, db_config_t **cfg)
{
	ctl_args_t a;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if (a.npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[0]);
	return load_config(c, cfg);
}

static int limit_arg(ctl_t *c, const ctl_args_t *a, unsigned *limit)
{
	char why[WHY_MAX];
	unsigned long v;
	const char *s = ctl_arg(a, "--limit");
	if (!s)
		return CTL_OK;
	if (val_uint(s, 1, 1000000, &v, why))
		return ctl_invalid(c, "--limit: %s", why);
	*limit = (unsigned)v;
	return CTL_OK;
}

/* ---- pool list, pool show ---- */

int cmd_pool_list(ctl_t *c, int argc, char **argv)
{
	db_config_t *cfg = NULL;
	jw_t w;
	int ret;

	if ((ret = load_config_noargs(c, argc, argv, &cfg)) || !cfg)
		return ret;
	if (c->json) {
		jw_init(&w, stdout);
		jw_obj_begin(&w);
		jw_key(&w, "pools");
		jw_arr_begin(&w);
		for (size_t i = 0; i < cfg->npools; i++) {
			const db_pool_t *p = &cfg->pools[i];
			jw_obj_begin(&w);
			jw_key(&w, "name");
			jw_str(&w, p->name);
			jw_key(&w, "policy");
			jw_str(&w, db_policy_name(p->policy));
			jw_key(&w, "ttl");
			jw_int(&w, p->ttl);
			jw_key(&w, "degraded_ttl");
			jw_int(&w, db_pool_degraded_ttl(p));
			jw_key(&w, "answers");
			jw_int(&w, p->answers);
			jw_key(&w, "fallback");
			jw_str(&w, p->fallback_all ? "all" : "none");
			jw_key(&w, "members");
			jw_int(&w, (int64_t)p->nmembers);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_end(&w);
	} else {
		for (size_t i = 0; i < cfg->npools; i++) {
			const db_pool_t *p = &cfg->pools[i];
			printf("%s %s ttl %u members %zu\n", p->name, db_policy_name(p->policy),
			       p->ttl, p->nmembers);
		}
	}
	db_config_free(cfg);
	return CTL_OK;
}

static void check_text(const char *indent, const db_check_t *k)
{
	char iv[16], to[16];
	fmt_seconds(iv, sizeof(iv), k->interval_ms);
	fmt_seconds(to, sizeof(to), k->timeout_ms);
	printf("%scheck %s", indent, db_check_type_name(k->type));
	if (k->port)
		printf(" port %u", k->port);
	if (k->path)
		printf(" path %s", k->path);
	if (k->host)
		printf(" host %s", k->host);
	if (k->expect)
		printf(" expect %s", k->expect);
	if (k->match)
		printf(" match \"%s\"", k->match);
	printf(" interval %s timeout %s rise %u fall %u", iv, to, k->rise, k->fall);
	if (k->target)
		printf(" target %s", k->target);
	if (k->insecure)
		printf(" insecure");
	if (k->quorum != DB_QUORUM_MAJORITY)
		printf(" quorum %s", db_quorum_name(k->quorum));
	printf("\n");
}

int cmd_pool_show(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char name[DNS_NAME_MAX + 1], why[WHY_MAX];
	db_config_t *cfg = NULL;
	jw_t w;
	int ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if (a.npos != 1)
		return ctl_invalid(c, a.npos ? "%s: unexpected argument" : "missing NAME",
				   a.npos ? a.pos[1] : "");
	if (val_pool_name(a.pos[0], name, sizeof(name), why))
		return ctl_invalid(c, "POOL: %s", why);
	if ((ret = load_config(c, &cfg)))
		return ret;
	const db_pool_t *p = db_config_pool(cfg, name);
	if (!p) {
		db_config_free(cfg);
		return ctl_fail(c, "no pool %s", name);
	}
	if (c->json) {
		jw_init(&w, stdout);
		cfg_pool_json(&w, p);
		jw_end(&w);
		db_config_free(cfg);
		return CTL_OK;
	}
	printf("pool %s\n  policy %s\n  ttl %u\n  degraded-ttl %u%s\n  answers %u\n  fallback %s\n",
	       p->name, db_policy_name(p->policy), p->ttl, db_pool_degraded_ttl(p),
	       p->degraded_ttl < 0 ? " (default)" : "", p->answers,
	       p->fallback_all ? "all" : "none");
	if (p->check)
		check_text("  ", p->check);
	for (size_t i = 0; i < p->nmembers; i++) {
		const db_member_t *m = &p->members[i];
		char *addrs = cfg_join(m->addresses, m->naddresses, " ");
		printf("  member %s\n    addresses %s\n", m->name, *addrs ? addrs : "none");
		free(addrs);
		if (m->alias)
			printf("    alias %s\n", m->alias);
		printf("    weight %u priority %u admin %s\n", m->weight, m->priority,
		       db_admin_name(m->admin));
		if (m->has_location) {
			char loc[LOCATION_LEN];
			fmt_location(loc, sizeof(loc), m->latitude, m->longitude);
			printf("    location %s\n", loc);
		}
		if (m->countries)
			printf("    countries %s\n", m->countries);
		if (m->continents)
			printf("    continents %s\n", m->continents);
		if (m->nnetworks) {
			char *nets = cfg_join(m->networks, m->nnetworks, " ");
			printf("    networks %s\n", nets);
			free(nets);
		}
		if (m->check)
			check_text("    ", m->check);
	}
	db_config_free(cfg);
	return CTL_OK;
}

/* ---- export ---- */

int cmd_export(ctl_t *c, int argc, char **argv)
{
	db_config_t *cfg = NULL;
	jw_t w;
	int ret;

	if ((ret = load_config_noargs(c, argc, argv, &cfg)) || !cfg)
		return ret;
	jw_init(&w, stdout);
	jw_obj_begin(&w);
	jw_key(&w, "version");
	jw_int(&w, 1);
	jw_key(&w, "pools");
	jw_arr_begin(&w);
	for (size_t i = 0; i < cfg->npools; i++)
		cfg_pool_json(&w, &cfg->pools[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_end(&w);
	db_config_free(cfg);
	return CTL_OK;
}

/* ---- status and history ---- */

void ctl_warn_unserved(ctl_t *c, const char *const *names, size_t n)
{
	const char *dir = c->conf.zones ? c->conf.zones : GSLB_DEFAULT_ZONES;
	zone_set_t *set = NULL;
	if (!n || zone_load_dir(dir, NULL, &set, NULL) < 0)
		return; /* unknown: no warning rather than a wrong one */
	for (size_t i = 0; i < n; i++) {
		int serving = ctl_pool_serving(set, names[i]);
		if (serving == LB_SERVING_NO_ZONE)
			ctl_warn(c,
				 "pool %s is in no zone gslbd serves (zones in %s): it is not "
				 "answered",
				 names[i], dir);
		else if (serving > 0)
			ctl_warn(c, "pool %s is not served: %s (zones in %s)", names[i],
				 lb_serving_name(serving), dir);
	}
	zone_set_free(set);
}

/*
 * Whether gslbd serves a pool with these zones: the library's own rule
 * (lb_pool_serving(), what lb_set_new() logs), on the name as
 * lb_config_pools() turns it into wire form.  CFG_STATUS_NOT_A_NAME for a
 * name gslbd skips.
 */
int ctl_pool_serving(const zone_set_t *set, const char *name)
{
	uint8_t wire[DNS_NAME_MAX + 1], lname[DNS_NAME_MAX + 1];
	if (dns_name_from_str(wire, name) < 0)
		return CFG_STATUS_NOT_A_NAME;
	size_t len = dns_name_lower(lname, wire);
	return lb_pool_serving(set, lname, len, NULL);
}

/* cfg_status_serving_cb: ctl_pool_serving() over the zones read, if they could be. */
static int pool_serving(void *arg, const char *name)
{
	const zone_set_t *set = arg;
	return set ? ctl_pool_serving(set, name) : CFG_STATUS_UNKNOWN;
}

static const ctl_optdef_t status_opts[] = {
	{ "--zones", true, false },
	{ NULL, false, false },
};

int cmd_status(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char name[DNS_NAME_MAX + 1], why[WHY_MAX];
	const char *zones;
	zone_set_t *set = NULL;
	db_config_t *cfg = NULL;
	cfg_status_t *st = NULL;
	jw_t w;
	int ret;

	PARSE_ARGS(c, argc, argv, status_opts, &a);
	if (a.npos > 1)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[1]);
	if (a.npos && val_pool_name(a.pos[0], name, sizeof(name), why))
		return ctl_invalid(c, "POOL: %s", why);
	zones = ctl_arg(&a, "--zones");
	if ((ret = load_config(c, &cfg)))
		return ret;
	if (a.npos && !db_config_pool(cfg, name)) {
		db_config_free(cfg);
		return ctl_fail(c, "no pool %s", name);
	}
	/* gslbd's configured directory, like its default one, may be unreadable to this user. */
	const char *dir = zones ? zones : c->conf.zones ? c->conf.zones : GSLB_DEFAULT_ZONES;
	ret = zone_load_dir(dir, NULL, &set, NULL);
	if (ret && zones) {
		/* Asked about these zones: an answer without them would be a guess. */
		db_config_free(cfg);
		return ctl_fail(c, "--zones: %s: cannot read the zone directory: %s", zones,
				gslb_strerror(ret));
	}
	/* The same builder as gslbd's GET /status.json (README "Status page"). */
	ret = cfg_status_load(c->db, cfg, a.npos ? name : NULL, pool_serving, ret ? NULL : set, dir,
			      ret == 0, &st);
	if (ret) {
		zone_set_free(set);
		db_config_free(cfg);
		return ctl_db_fail(c, ret);
	}
	/* The states are those gslbd stored: without a gslbd running, they may be old. */
	char daemon_why[1024];
	if (!ctl_daemon_check(c, daemon_why, sizeof(daemon_why)))
		ctl_warn(c, "%s: the states shown are as last stored", daemon_why);
	if (c->json) {
		jw_init(&w, stdout);
		cfg_status_json(&w, st);
		jw_end(&w);
	} else {
		cfg_status_text(stdout, st);
	}
	cfg_status_free(st);
	zone_set_free(set);
	db_config_free(cfg);
	return CTL_OK;
}

/* Which member and address of a pool a target key belongs to (first match). */
typedef struct keymap {
	size_t n;
	char **keys; /* owned */
	const char **member, **address;
} keymap_t;

static void keymap_add(keymap_t *km, char *key, const char *member, const char *address)
{
	km->keys = gslb_realloc(km->keys, (km->n + 1) * sizeof(char *));
	km->member = gslb_realloc(km->member, (km->n + 1) * sizeof(char *));
	km->address = gslb_realloc(km->address, (km->n + 1) * sizeof(char *));
	km->keys[km->n] = key;
	km->member[km->n] = member;
	km->address[km->n++] = address;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Add to km the probe keys of its members' addresses (cfg_status_target_key()) that no
 * check of cfg is probed under now.  gslbd versions whose keys held no
 * settings stored the history of such an address under it, so the history
 * stays readable; a probe key that is some check's own key now holds that
 * check's history, which is not this address's.
 */
static void keymap_add_old(keymap_t *km, const db_config_t *cfg, char **pkeys, size_t n)
{
	char **cur = NULL;
	size_t ncur = 0, cap = 0;

	for (size_t i = 0; i < cfg->npools; i++) {
		const db_pool_t *p = &cfg->pools[i];
		for (size_t k = 0; k < p->nmembers; k++) {
			const db_member_t *m = &p->members[k];
			for (size_t j = 0; j < m->naddresses; j++) {
				char *key = cfg_status_target_key(p, m, m->addresses[j], NULL);
				if (!key)
					continue;
				if (ncur == cap) {
					cap = cap ? cap * 2 : 64;
					cur = gslb_realloc(cur, cap * sizeof(*cur));
				}
				cur[ncur++] = key;
			}
		}
	}
	gslb_sort(cur, ncur, sizeof(*cur), str_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!pkeys[i])
			continue;
		if (ncur && bsearch(&pkeys[i], cur, ncur, sizeof(*cur), str_cmp)) {
			free(pkeys[i]);
			continue;
		}
		keymap_add(km, pkeys[i], km->member[i], km->address[i]);
	}
	for (size_t i = 0; i < ncur; i++)
		free(cur[i]);
	free(cur);
}

static const char *keymap_find(const keymap_t *km, const char *key, const char **address)
{
	for (size_t i = 0; i < km->n; i++)
		if (strcmp(km->keys[i], key) == 0) {
			*address = km->address[i];
			return km->member[i];
		}
	*address = NULL;
	return NULL;
}

int cmd_history(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char name[DNS_NAME_MAX + 1], why[WHY_MAX], t[32];
	db_config_t *cfg = NULL;
	db_aliases_t aliases = { 0 };
	keymap_t km = { 0 };
	db_event_t *ev[2] = { NULL, NULL };
	size_t nev[2] = { 0, 0 };
	unsigned limit = 20;
	jw_t w;
	int ret;

	PARSE_ARGS(c, argc, argv, limit_opts, &a);
	if (a.npos < 1 || a.npos > 2)
		return ctl_invalid(c, a.npos ? "%s: unexpected argument" : "missing POOL",
				   a.npos ? a.pos[2] : "");
	if (val_pool_name(a.pos[0], name, sizeof(name), why))
		return ctl_invalid(c, "POOL: %s", why);
	if (a.npos == 2 && val_member_name(a.pos[1], why))
		return ctl_invalid(c, "MEMBER: %s", why);
	if ((ret = limit_arg(c, &a, &limit)) || (ret = load_config(c, &cfg)))
		return ret;
	const db_pool_t *p = db_config_pool(cfg, name);
	if (!p) {
		ret = ctl_fail(c, "no pool %s", name);
		goto out;
	}
	if (a.npos == 2 && !db_pool_member(p, a.pos[1])) {
		ret = ctl_fail(c, "no member %s in pool %s", a.pos[1], name);
		goto out;
	}
	/* The addresses an alias member serves now are those gslbd last resolved. */
	if ((ret = db_alias_state_load(c->db, &aliases))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	char **pkeys = NULL; /* by km entry: its probe key when that differs */
	size_t nold = 0;
	for (size_t k = 0; k < p->nmembers; k++) {
		const db_member_t *m = &p->members[k];
		lb_member_addr_t sa;
		if (a.npos == 2 && strcmp(m->name, a.pos[1]) != 0)
			continue;
		for (size_t j = 0; lb_member_address(m, &aliases, j, &sa); j++) {
			char *pkey, *key = cfg_status_target_key(p, m, sa.address, &pkey);
			if (!key)
				continue;
			pkeys = gslb_realloc(pkeys, (km.n + 1) * sizeof(*pkeys));
			pkeys[km.n] = pkey;
			nold += pkey != NULL;
			keymap_add(&km, key, m->name, sa.address);
		}
	}
	if (nold)
		keymap_add_old(&km, cfg, pkeys, km.n);
	else
		for (size_t i = 0; i < km.n; i++)
			free(pkeys[i]);
	free(pkeys);
	for (int i = 0; i < 2; i++) {
		ret = db_events_list(c->db, i == 1, (const char *const *)km.keys, km.n, limit,
				     &ev[i], &nev[i]);
		if (ret) {
			ret = ctl_db_fail(c, ret);
			goto out;
		}
	}
	if (c->json) {
		jw_init(&w, stdout);
		jw_obj_begin(&w);
		for (int i = 0; i < 2; i++) {
			jw_key(&w, i ? "probes" : "changes");
			jw_arr_begin(&w);
			for (size_t k = 0; k < nev[i]; k++) {
				const db_event_t *e = &ev[i][k];
				const char *addr, *mem = keymap_find(&km, e->target_key, &addr);
				jw_obj_begin(&w);
				jw_key(&w, "time");
				jw_time(&w, e->time);
				jw_key(&w, "member");
				jw_str(&w, mem);
				jw_key(&w, "address");
				jw_str(&w, addr);
				if (i == 0) {
					jw_key(&w, "from");
					jw_str(&w, e->from_state);
					jw_key(&w, "to");
					jw_str(&w, e->to_state);
				} else {
					jw_key(&w, "ok");
					jw_bool(&w, e->ok != 0);
					jw_key(&w, "latency_ms");
					if (e->latency_ms >= 0)
						jw_double(&w, e->latency_ms);
					else
						jw_null(&w);
				}
				jw_key(&w, "reason");
				jw_str(&w, e->reason);
				jw_key(&w, "target");
				jw_str(&w, e->target_key);
				jw_obj_end(&w);
			}
			jw_arr_end(&w);
		}
		jw_obj_end(&w);
		jw_end(&w);
	} else {
		for (int i = 0; i < 2; i++) {
			printf("%s:%s\n", i ? "probes" : "state changes", nev[i] ? "" : " none");
			for (size_t k = 0; k < nev[i]; k++) {
				const db_event_t *e = &ev[i][k];
				const char *addr, *mem = keymap_find(&km, e->target_key, &addr);
				printf("  %s %s %s ", cfg_status_time(e->time, t, sizeof(t)),
				       mem ? mem : "?", addr ? addr : e->target_key);
				if (i == 0)
					printf("%s -> %s", e->from_state ? e->from_state : "?",
					       e->to_state ? e->to_state : "?");
				else
					printf("%s", e->ok ? "ok" : "failed");
				if (i == 1 && e->latency_ms >= 0)
					printf(" %.1f ms", e->latency_ms);
				if (e->reason && *e->reason)
					printf(" (%s)", e->reason);
				printf("\n");
			}
		}
	}
	ret = CTL_OK;
out:
	for (size_t i = 0; i < km.n; i++)
		free(km.keys[i]);
	free(km.keys);
	free(km.member);
	free(km.address);
	db_events_free(ev[0], nev[0]);
	db_events_free(ev[1], nev[1]);
	db_aliases_clear(&aliases);
	db_config_free(cfg);
	return ret;
}

/* ---- log ---- */

int cmd_log(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	db_journal_entry_t *e = NULL;
	size_t n = 0;
	unsigned limit = 20;
	jw_t w;
	int ret;

	PARSE_ARGS(c, argc, argv, limit_opts, &a);
	if (a.npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[0]);
	if ((ret = limit_arg(c, &a, &limit)) || (ret = ctl_open(c)))
		return ret;
	if ((ret = db_journal_list(c->db, limit, &e, &n)))
		return ctl_db_fail(c, ret);
	if (c->json) {
		jw_init(&w, stdout);
		jw_obj_begin(&w);
		jw_key(&w, "entries");
		jw_arr_begin(&w);
		for (size_t i = 0; i < n; i++) {
			jw_obj_begin(&w);
			jw_key(&w, "id");
			jw_int(&w, e[i].id);
			jw_key(&w, "time");
			jw_str(&w, e[i].time);
			jw_key(&w, "actor");
			jw_str(&w, e[i].actor);
			jw_key(&w, "command");
			jw_str(&w, e[i].command);
			jw_key(&w, "summary");
			jw_str(&w, e[i].summary);
			if (e[i].node) {
				jw_key(&w, "node");
				jw_str(&w, e[i].node);
			}
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_end(&w);
	} else {
		for (size_t i = 0; i < n; i++) {
			/* A cluster's changes say which node they were made on. */
			if (e[i].node)
				printf("%s %s on %s %s\n", e[i].time, e[i].actor, e[i].node,
				       e[i].command);
			else
				printf("%s %s %s\n", e[i].time, e[i].actor, e[i].command);
			for (const char *p = e[i].summary; p && *p;) {
				size_t len = strcspn(p, "\n");
				printf("    %.*s\n", (int)len, p);
				p += len;
				if (*p)
					p++;
			}
		}
	}
	db_journal_free(e, n);
	return CTL_OK;
}
