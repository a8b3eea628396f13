/* SPDX-License-Identifier: MIT */
/*
 * Alias members on the control loop (README "Alias members"): the resolver (src/alias) fed the
 * host names of the configuration, and what it resolves fed to the pools, the health checks
 * and the alias_state table.
 *
 * Everything here runs on the control thread.  ctl->aliases is what pools are built with
 * (lb_pool_new(), lb_member_address()): every alias_state row read at start-up, each replaced
 * as the resolver reports.  A resolution that changes a name's addresses marks the name;
 * after RESOLVED_DEBOUNCE_MS (so names resolved together make one snapshot) the pools with a
 * member using a marked name are built again, as after a configuration change to them alone,
 * and their targets assigned again.  Every resolution is queued for alias_state and written
 * every STORE_MS in one transaction, on this connection (the DNS workers never wait for it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/alias.h"
#include "gslb/core.h"
#include "gslb/db.h"
#include "control.h"

#define RESOLVED_DEBOUNCE_MS 100
#define STORE_MS 1000

/* Failed resolutions of one name, for gslbd_alias_failures_total. */
struct failcount {
	char *name;
	uint64_t n;
};

struct server_alias {
	control_t *ctl;
	alias_resolver_t *res;
	uv_timer_t rebuild; /* the pools of the names in changed are built again */
	uv_timer_t store;   /* the names in dirty are written to alias_state */
	char **changed;
	size_t nchanged, changed_cap;
	char **dirty;
	size_t ndirty, dirty_cap;
	struct failcount *fails; /* sorted by name */
	size_t nfails;
	bool store_failing; /* a write failed: said once until one succeeds */
	unsigned closed;    /* timers closed, at server_alias_stop() */
};

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void push(char ***v, size_t *n, size_t *cap, const char *s)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = gslb_realloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = gslb_strdup(s);
}

static void strs_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

/* Sort and drop duplicates: n is the number left. */
static size_t strs_uniq(char **v, size_t n)
{
	gslb_sort(v, n, sizeof(*v), str_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && strcmp(v[k - 1], v[i]) == 0) {
			free(v[i]);
			continue;
		}
		v[k++] = v[i];
	}
	return k;
}

/* ---- ctl->aliases ---- */

/* The index of name's state in ctl->aliases (sorted by name), or where it would go: *found. */
static size_t state_index(const control_t *ctl, const char *name, bool *found)
{
	const db_aliases_t *a = &ctl->aliases;
	size_t lo = 0, hi = a->n;
	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a->v[mid].name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const db_alias_state_t *server_alias_state(const control_t *ctl, const char *name)
{
	bool found;
	size_t i = state_index(ctl, name, &found);
	return found ? &ctl->aliases.v[i] : NULL;
}

/* The state of name in ctl->aliases, added (never resolved) when it has none. */
static db_alias_state_t *state_get(control_t *ctl, const char *name)
{
	db_aliases_t *a = &ctl->aliases;
	bool found;
	size_t lo = state_index(ctl, name, &found);
	if (found)
		return &a->v[lo];
	a->v = gslb_realloc(a->v, (a->n + 1) * sizeof(*a->v));
	memmove(&a->v[lo + 1], &a->v[lo], (a->n - lo) * sizeof(*a->v));
	a->n++;
	db_alias_state_t *s = &a->v[lo];
	memset(s, 0, sizeof(*s));
	s->name = gslb_strdup(name);
	s->never_resolved = true;
	return s;
}

/* What the resolver knows of n, into its state; the addresses only when they changed. */
static void state_set(db_alias_state_t *s, const alias_name_t *n, bool changed)
{
	if (changed || (n->good && s->never_resolved)) {
		for (uint32_t i = 0; i < s->naddresses; i++)
			free(s->addresses[i]);
		free(s->addresses);
		free(s->families);
		s->naddresses = (uint32_t)n->naddrs;
		s->addresses = gslb_calloc(n->naddrs ? n->naddrs : 1, sizeof(*s->addresses));
		s->families = gslb_calloc(n->naddrs ? n->naddrs : 1, sizeof(*s->families));
		for (size_t i = 0; i < n->naddrs; i++) {
			char buf[64];
			s->addresses[i] = gslb_strdup(
				alias_addr_text(&n->addrs[i], buf, sizeof(buf)));
			s->families[i] = n->addrs[i].family;
		}
	}
	s->never_resolved = !n->good;
	s->resolved = n->resolved_s;
	s->expires = n->expires_s;
	s->failures = n->failures;
	free(s->error);
	s->error = n->failing ? gslb_strdup(n->error) : NULL;
	s->error_time = n->failing ? n->error_s : 0;
}

/* ---- failures, for the metrics ---- */

static void failure_count(struct server_alias *sa, const char *name)
{
	size_t lo = 0, hi = sa->nfails;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(sa->fails[mid].name, name);
		if (c == 0) {
			sa->fails[mid].n++;
			return;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	sa->fails = gslb_realloc(sa->fails, (sa->nfails + 1) * sizeof(*sa->fails));
	memmove(&sa->fails[lo + 1], &sa->fails[lo], (sa->nfails - lo) * sizeof(*sa->fails));
	sa->nfails++;
	sa->fails[lo].name = gslb_strdup(name);
	sa->fails[lo].n = 1;
}

uint64_t server_alias_failures(const struct server_alias *sa, const char *name)
{
	size_t lo = 0, hi = sa ? sa->nfails : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(sa->fails[mid].name, name);
		if (c == 0)
			return sa->fails[mid].n;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* ---- the pools, the store ---- */

/*
 * The pools with a member using a changed name are built again in the next
 * snapshot, the others shared, as after a change to those pools alone
 * (ctl->cfg_from); their targets are assigned again, since their addresses
 * moved.
 */
static void rebuild_cb(uv_timer_t *t)
{
	struct server_alias *sa = t->data;
	control_t *ctl = sa->ctl;
	const db_config_t *cfg = ctl->cfg;
	size_t n = strs_uniq(sa->changed, sa->nchanged);
	sa->nchanged = 0;
	if (!cfg || !ctl->cur || !n) {
		strs_free(sa->changed, n);
		return;
	}
	size_t touched = 0;
	if (!ctl->cfg_whole && !ctl->cfg_from) {
		ctl->cfg_from = gslb_calloc(cfg->npools ? cfg->npools : 1, sizeof(*ctl->cfg_from));
		for (size_t j = 0; j < cfg->npools; j++)
			ctl->cfg_from[j] = j;
	}
	for (size_t j = 0; j < cfg->npools; j++) {
		const db_pool_t *p = &cfg->pools[j];
		bool uses = false;
		for (size_t k = 0; k < p->nmembers && !uses; k++) {
			const char *a = p->members[k].alias;
			uses = a && bsearch(&a, sa->changed, n, sizeof(*sa->changed), str_cmp);
		}
		if (!uses)
			continue;
		touched++;
		if (ctl->cfg_from)
			ctl->cfg_from[j] = SIZE_MAX;
		/* Only a pool with a check has targets to assign to the new addresses. */
		bool checked = p->check != NULL;
		for (size_t k = 0; k < p->nmembers && !checked; k++)
			checked = p->members[k].check != NULL;
		ctl->cfg_checks |= checked;
	}
	strs_free(sa->changed, n);
	if (!touched)
		return;
	log_debug("alias: %zu names resolved to new addresses, %zu pools to build again", n,
		  touched);
	server_snapshot_rebuild(ctl, SNAPSHOT_POOLS, NULL);
}

/* The resolutions queued, written to alias_state in one transaction. */
static void store_flush(struct server_alias *sa)
{
	control_t *ctl = sa->ctl;
	size_t n = strs_uniq(sa->dirty, sa->ndirty);
	sa->ndirty = n;
	if (!n || !ctl->db)
		return;
	db_alias_state_t *v = gslb_calloc(n, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const db_alias_state_t *s = server_alias_state(ctl, sa->dirty[i]);
		if (s)
			v[k++] = *s; /* borrowed: written before anything changes it */
	}
	int ret = db_alias_state_store(ctl->db, v, k);
	free(v);
	if (ret < 0) {
		/* Kept for the next try; the addresses served do not wait for the write. */
		if (!sa->store_failing)
			log_warn("alias: cannot store %zu resolutions in the database: %s; trying "
				 "again",
				 k, gslb_strerror(ret));
		sa->store_failing = true;
		return;
	}
	if (sa->store_failing)
		log_info("alias: resolutions stored again");
	sa->store_failing = false;
	strs_free(sa->dirty, n);
	sa->ndirty = 0;
}

static void store_cb(uv_timer_t *t)
{
	struct server_alias *sa = t->data;
	store_flush(sa);
	if (sa->ndirty)
		uv_timer_start(&sa->store, store_cb, STORE_MS, 0);
}

static void resolved_cb(void *arg, const alias_name_t *n, bool changed)
{
	struct server_alias *sa = arg;
	control_t *ctl = sa->ctl;
	db_alias_state_t *s = state_get(ctl, n->name);
	bool was_good = !s->never_resolved;
	state_set(s, n, changed);
	if (n->failing)
		failure_count(sa, n->name);
	if (changed || (n->good && !was_good)) {
		push(&sa->changed, &sa->nchanged, &sa->changed_cap, n->name);
		if (!uv_is_active((uv_handle_t *)&sa->rebuild))
			uv_timer_start(&sa->rebuild, rebuild_cb, RESOLVED_DEBOUNCE_MS, 0);
	}
	push(&sa->dirty, &sa->ndirty, &sa->dirty_cap, n->name);
	if (!uv_is_active((uv_handle_t *)&sa->store))
		uv_timer_start(&sa->store, store_cb, STORE_MS, 0);
}

/* ---- the control loop's calls ---- */

void server_alias_load(control_t *ctl)
{
	db_aliases_t a = { 0 };
	int ret = db_alias_state_load(ctl->db, &a);
	if (ret < 0) {
		log_warn("alias: cannot read the last resolutions from the database: %s; aliases "
			 "have no address until they resolve",
			 gslb_strerror(ret));
		return;
	}
	db_aliases_clear(&ctl->aliases);
	ctl->aliases = a;
}

void server_alias_config(control_t *ctl)
{
	struct server_alias *sa = ctl->alias;
	const db_config_t *cfg = ctl->cfg;
	if (!sa || !cfg)
		return;
	const char **names = NULL;
	size_t n = 0, cap = 0;
	for (size_t j = 0; j < cfg->npools; j++)
		for (size_t k = 0; k < cfg->pools[j].nmembers; k++) {
			const char *a = cfg->pools[j].members[k].alias;
			if (!a)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				names = gslb_realloc(names, cap * sizeof(*names));
			}
			names[n++] = a;
		}
	alias_resolver_want(sa->res, names, n);
	free(names);
}

int server_alias_start(control_t *ctl)
{
	struct server_alias *sa = gslb_calloc(1, sizeof(*sa));
	sa->ctl = ctl;
	alias_conf_t conf = { .servers = ctl->conf->resolvers, .resolved = resolved_cb, .arg = sa };
	int ret = alias_resolver_new(&ctl->loop, &conf, &sa->res);
	if (ret < 0) {
		free(sa);
		return ret;
	}
	uv_timer_init(&ctl->loop, &sa->rebuild);
	sa->rebuild.data = sa;
	uv_timer_init(&ctl->loop, &sa->store);
	sa->store.data = sa;
	ctl->alias = sa;
	server_alias_config(ctl);
	/* The last good addresses stored: served already, resolved again before they expire. */
	alias_addr_t *addrs = gslb_calloc(2 * ALIAS_ADDRS_MAX, sizeof(*addrs));
	for (size_t i = 0; i < ctl->aliases.n; i++) {
		const db_alias_state_t *s = &ctl->aliases.v[i];
		if (s->never_resolved)
			continue;
		size_t k = 0;
		for (uint32_t j = 0; j < s->naddresses && k < 2 * ALIAS_ADDRS_MAX; j++) {
			alias_addr_t *a = &addrs[k];
			memset(a, 0, sizeof(*a));
			a->family = s->families[j];
			if (inet_pton(a->family == 6 ? AF_INET6 : AF_INET, s->addresses[j],
				      a->addr) == 1)
				k++;
		}
		alias_resolver_seed(sa->res, s->name, addrs, k, s->resolved, s->expires);
	}
	free(addrs);
	return 0;
}

static void alias_closed_cb(uv_handle_t *h)
{
	struct server_alias *sa = h->data;
	/* Two timers: the second close to run (libuv's order is its own) frees. */
	if (++sa->closed < 2)
		return;
	strs_free(sa->changed, sa->nchanged);
	free(sa->changed);
	strs_free(sa->dirty, sa->ndirty);
	free(sa->dirty);
	for (size_t i = 0; i < sa->nfails; i++)
		free(sa->fails[i].name);
	free(sa->fails);
	free(sa);
}

void server_alias_stop(control_t *ctl)
{
	struct server_alias *sa = ctl->alias;
	if (!sa)
		return;
	ctl->alias = NULL;
	/* What was resolved since the last write is not lost with the process. */
	store_flush(sa);
	alias_resolver_free(sa->res);
	uv_close((uv_handle_t *)&sa->rebuild, alias_closed_cb);
	uv_close((uv_handle_t *)&sa->store, alias_closed_cb);
}

const alias_name_t *server_alias_find(const control_t *ctl, const char *name)
{
	return ctl->alias ? alias_resolver_find(ctl->alias->res, name) : NULL;
}
