/* SPDX-License-Identifier: MIT */
/* The status of every pool, member and address: read once, written as JSON, text or a timeline. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/db_cluster.h"
#include "gslb/health.h"
#include "gslb/lb.h"
#include "gslb/status.h"
#include "gslb/targets.h"

const char *cfg_status_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (t <= 0) {
		buf[0] = '\0';
		return buf;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static void jw_time(jw_t *w, int64_t t)
{
	char buf[32];
	if (t <= 0)
		jw_null(w);
	else
		jw_str(w, cfg_status_time(t, buf, sizeof(buf)));
}

/*
 * The key is the one server_targets_check_conf() and health_target_key()
 * give gslbd: the probe (type, address and port, for http(s) the Host
 * header and path) and the settings that differ from the defaults.  gslbd
 * versions whose keys held no settings stored the address's history under
 * the probe's key, and gslbd starts a target never probed under its own
 * key from the state stored there.  A member without a check is healthy by
 * definition (README "Health checks").
 */
char *cfg_status_target_key(const db_pool_t *p, const db_member_t *m, const char *addr,
			    char **probe)
{
	const db_check_t *k = m->check ? m->check : p->check;
	char key[HEALTH_KEY_MAX], pkey[HEALTH_KEY_MAX], host[HEALTH_HOST_MAX + 1];
	health_check_conf_t hc;

	if (probe)
		*probe = NULL;
	if (!k || server_targets_check_conf(p, k, addr, &hc, host, sizeof(host)) < 0)
		return NULL;
	health_target_key(&hc, key, sizeof(key));
	health_probe_key(&hc, pkey, sizeof(pkey));
	if (probe && strcmp(key, pkey) != 0)
		*probe = gslb_strdup(pkey);
	return gslb_strdup(key);
}

const char *cfg_status_serving_name(int serving)
{
	if (serving >= 0)
		return lb_serving_name(serving);
	return serving == CFG_STATUS_NOT_A_NAME ? "not a domain name" : "unknown";
}

static void timeline_free(cfg_status_timeline_t *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nsegs; i++) {
		free(t->segs[i].state);
		free(t->segs[i].reason);
	}
	free(t->segs);
	free(t);
}

static void addr_clear(cfg_status_addr_t *a)
{
	free(a->key);
	free(a->pkey);
	db_target_state_clear(&a->st);
	db_cluster_votes_free(a->votes, a->nvotes);
	timeline_free(a->timeline);
}

void cfg_status_free(cfg_status_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->npools; i++) {
		cfg_status_pool_t *sp = &s->pools[i];
		for (size_t k = 0; sp->members && k < sp->p->nmembers; k++) {
			cfg_status_member_t *sm = &sp->members[k];
			for (size_t j = 0; sm->addrs && j < sm->naddrs; j++)
				addr_clear(&sm->addrs[j]);
			free(sm->addrs);
		}
		free(sp->members);
	}
	free(s->pools);
	db_aliases_clear(&s->aliases);
	free(s);
}

/* The stored state of one address into a (zeroed but for address). */
static int addr_load(db_t *db, bool cluster, const db_pool_t *p, const db_member_t *m,
		     cfg_status_addr_t *a)
{
	int ret = 0;

	a->key = cfg_status_target_key(p, m, a->address, &a->pkey);
	a->shown = a->key;
	a->st.latency_ms = -1;
	if (a->key && (ret = db_target_state_get(db, a->key, &a->st)) == 0 && !a->st.state &&
	    a->pkey) {
		/* Not probed under its key yet: gslbd starts it from this. */
		ret = db_target_state_get(db, a->pkey, &a->st);
		if (a->st.state)
			a->shown = a->pkey;
	}
	if (a->key && !ret && cluster)
		ret = db_cluster_votes_get(db, a->key, &a->votes, &a->nvotes);
	/* Never probed: a target starts up (README "Health checks"). */
	a->state = a->st.state ? a->st.state : "up";
	a->reason = a->st.reason ? a->st.reason : a->key ? "not probed yet" : "no health check";
	return ret;
}

int cfg_status_load(db_t *db, const db_config_t *cfg, const char *pool,
		    cfg_status_serving_cb serving, void *arg, const char *zones,
		    bool zones_readable, cfg_status_t **out)
{
	cfg_status_t *s = gslb_calloc(1, sizeof(*s));
	db_cluster_settings_t set;
	int ret;

	*out = NULL;
	s->zones = zones;
	s->zones_readable = zones_readable;
	/* On a cluster node every address shows each node's vote, as mirrored from etcd. */
	ret = db_cluster_settings_get(db, &set);
	if (ret == 0) {
		s->cluster = true;
		db_cluster_settings_clear(&set);
	} else if (ret != -ENOENT) {
		goto out;
	}
	if ((ret = db_alias_state_load(db, &s->aliases)))
		goto out;
	s->pools = gslb_calloc(cfg->npools ? cfg->npools : 1, sizeof(*s->pools));
	for (size_t i = 0; i < cfg->npools; i++) {
		const db_pool_t *p = &cfg->pools[i];
		if (pool && strcmp(p->name, pool) != 0)
			continue;
		cfg_status_pool_t *sp = &s->pools[s->npools++];
		sp->p = p;
		sp->serving = serving(arg, p->name);
		sp->members = gslb_calloc(p->nmembers ? p->nmembers : 1, sizeof(*sp->members));
		for (size_t k = 0; k < p->nmembers; k++) {
			const db_member_t *m = &p->members[k];
			cfg_status_member_t *sm = &sp->members[k];
			lb_member_addr_t sa;
			sm->m = m;
			sm->alias = m->alias ? lb_alias_find(&s->aliases, m->alias) : NULL;
			/* What gslbd serves (README "Alias members"): counted, then each loaded. */
			while (lb_member_address(m, &s->aliases, sm->naddrs, &sa))
				sm->naddrs++;
			sm->addrs = gslb_calloc(sm->naddrs ? sm->naddrs : 1, sizeof(*sm->addrs));
			for (size_t j = 0; j < sm->naddrs; j++) {
				lb_member_address(m, &s->aliases, j, &sa);
				sm->addrs[j].address = sa.address;
				sm->addrs[j].alias = sa.alias;
				ret = addr_load(db, s->cluster, p, m, &sm->addrs[j]);
				if (ret)
					goto out;
			}
		}
	}
	ret = 0;
out:
	if (ret) {
		cfg_status_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

static void seg_add(cfg_status_timeline_t *t, int64_t from, int64_t to, const char *state,
		    const char *reason)
{
	if (to <= from)
		return;
	cfg_status_segment_t *last = t->nsegs ? &t->segs[t->nsegs - 1] : NULL;
	if (last && last->to == from && strcmp(last->state, state) == 0) {
		/* Two changes in one second, or a change to the same state: one stretch. */
		last->to = to;
		return;
	}
	t->segs = gslb_realloc(t->segs, (t->nsegs + 1) * sizeof(*t->segs));
	cfg_status_segment_t *g = &t->segs[t->nsegs++];
	g->from = from;
	g->to = to;
	g->state = gslb_strdup(state);
	g->reason = reason ? gslb_strdup(reason) : NULL;
}

int cfg_status_timeline_load(db_t *db, cfg_status_addr_t *a, int64_t from, int64_t to,
			     unsigned max_changes)
{
	db_event_t *ev = NULL;
	size_t n = 0, k = 0;

	timeline_free(a->timeline);
	a->timeline = NULL;
	if (!a->shown || to <= from)
		return 0;
	/* One more than kept: whether the window holds more changes than shown. */
	const char *key = a->shown;
	int ret = db_events_list(db, false, &key, 1, max_changes + 1, &ev, &n);
	if (ret)
		return ret;
	cfg_status_timeline_t *t = gslb_calloc(1, sizeof(*t));
	t->from = from;
	t->to = to;
	/* ev is newest first: the first k are the changes in the window (a change "at" to is not). */
	while (k < n && ev[k].time >= to)
		k++;
	size_t first = k; /* the newest change before to */
	while (k < n && ev[k].time >= from)
		k++;
	size_t in = k - first;
	const db_event_t *before = k < n ? &ev[k] : NULL; /* the newest change before the window */
	if (in > max_changes) {
		t->cut = true;
		in = max_changes;
		before = NULL;
	}
	t->nchanges = in;
	if (in == 0) {
		const char *state = before && before->to_state ? before->to_state : a->st.state;
		int64_t since = before ? from : a->st.since;
		if (!state) {
			seg_add(t, from, to, "unknown", NULL);
		} else {
			if (since > from)
				seg_add(t, from, since < to ? since : to, "unknown", NULL);
			seg_add(t, since > from ? since : from, to, state,
				before ? before->reason : a->st.reason);
		}
	} else {
		const db_event_t *oldest = &ev[first + in - 1];
		int64_t known = from, first_ms = 0;
		if (!before && !t->cut) {
			/*
			 * No change before the window: the state the oldest one
			 * changed from is known since the first probe (a target new
			 * in the window), if its results go back that far.
			 */
			ret = db_target_first_probe(db, key, from * 1000, &first_ms);
			if (ret) {
				db_events_free(ev, n);
				timeline_free(t);
				return ret;
			}
			if (first_ms && first_ms / 1000 > from)
				known = first_ms / 1000 < oldest->time ? first_ms / 1000
								       : oldest->time;
			seg_add(t, from, known, "unknown", NULL);
		}
		if (t->cut)
			seg_add(t, from, oldest->time, "unknown", NULL);
		else
			seg_add(t, known, oldest->time,
				oldest->from_state ? oldest->from_state : "unknown",
				before ? before->reason : NULL);
		for (size_t i = first + in; i-- > first;) {
			const db_event_t *e = &ev[i];
			int64_t end = i > first ? ev[i - 1].time : to;
			seg_add(t, e->time, end, e->to_state ? e->to_state : "unknown", e->reason);
		}
	}
	db_events_free(ev, n);
	a->timeline = t;
	return 0;
}

static void timeline_json(jw_t *w, const cfg_status_timeline_t *t)
{
	jw_obj_begin(w);
	jw_key(w, "from");
	jw_time(w, t->from);
	jw_key(w, "to");
	jw_time(w, t->to);
	jw_key(w, "cut");
	jw_bool(w, t->cut);
	jw_key(w, "changes");
	jw_int(w, (int64_t)t->nchanges);
	jw_key(w, "segments");
	jw_arr_begin(w);
	for (size_t i = 0; i < t->nsegs; i++) {
		const cfg_status_segment_t *g = &t->segs[i];
		jw_obj_begin(w);
		jw_key(w, "from");
		jw_time(w, g->from);
		jw_key(w, "to");
		jw_time(w, g->to);
		jw_key(w, "state");
		jw_str(w, g->state);
		jw_key(w, "reason");
		jw_str(w, g->reason);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

static void addr_json(jw_t *w, const cfg_status_t *s, const cfg_status_addr_t *a)
{
	jw_obj_begin(w);
	jw_key(w, "address");
	jw_str(w, a->address);
	jw_key(w, "state");
	jw_str(w, a->state);
	jw_key(w, "since");
	jw_time(w, a->st.since);
	jw_key(w, "reason");
	jw_str(w, a->reason);
	jw_key(w, "last_probe");
	jw_time(w, a->st.last_probe);
	jw_key(w, "latency_ms");
	if (a->st.latency_ms >= 0)
		jw_double(w, a->st.latency_ms);
	else
		jw_null(w);
	jw_key(w, "cert_expires");
	jw_time(w, a->st.cert_not_after);
	jw_key(w, "target");
	jw_str(w, a->shown);
	/*
	 * An alias's address: the alias it came from, and when gslbd resolves
	 * it again.  Left out of the member's own, whose keys stay as they were.
	 */
	if (a->alias) {
		jw_key(w, "alias");
		jw_str(w, a->alias->name);
		jw_key(w, "expires");
		jw_time(w, a->alias->expires);
	}
	if (s->cluster) {
		jw_key(w, "votes");
		jw_obj_begin(w);
		for (size_t v = 0; v < a->nvotes; v++) {
			jw_key(w, a->votes[v].node);
			jw_str(w, a->votes[v].up ? "up" : "down");
		}
		jw_obj_end(w);
	}
	if (a->timeline) {
		jw_key(w, "timeline");
		timeline_json(w, a->timeline);
	}
	jw_obj_end(w);
}

/*
 * A member's alias and what gslbd last made of it: {"name", "resolved"
 * (when it last succeeded, null: never), "expires", "addresses" (how
 * many), "failures" (since the last success), "error", "error_time"}.
 */
static void alias_json(jw_t *w, const cfg_status_member_t *sm)
{
	const db_alias_state_t *as = sm->alias;
	bool resolved = as && !as->never_resolved;

	jw_obj_begin(w);
	jw_key(w, "name");
	jw_str(w, sm->m->alias);
	jw_key(w, "resolved");
	jw_time(w, resolved ? as->resolved : 0);
	jw_key(w, "expires");
	jw_time(w, resolved ? as->expires : 0);
	jw_key(w, "addresses");
	jw_int(w, resolved ? as->naddresses : 0);
	jw_key(w, "failures");
	jw_int(w, as ? as->failures : 0);
	jw_key(w, "error");
	jw_str(w, as ? as->error : NULL);
	jw_key(w, "error_time");
	jw_time(w, as ? as->error_time : 0);
	jw_obj_end(w);
}

void cfg_status_json(jw_t *w, const cfg_status_t *s)
{
	jw_obj_begin(w);
	jw_key(w, "zones");
	jw_str(w, s->zones);
	jw_key(w, "zones_readable");
	jw_bool(w, s->zones_readable);
	jw_key(w, "pools");
	jw_arr_begin(w);
	for (size_t i = 0; i < s->npools; i++) {
		const cfg_status_pool_t *sp = &s->pools[i];
		const db_pool_t *p = sp->p;
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_str(w, p->name);
		/* false also when unknown: zones_readable and serving say which. */
		jw_key(w, "served");
		jw_bool(w, sp->serving == LB_SERVING_YES);
		jw_key(w, "serving");
		jw_str(w, cfg_status_serving_name(sp->serving));
		jw_key(w, "policy");
		jw_str(w, db_policy_name(p->policy));
		jw_key(w, "members");
		jw_arr_begin(w);
		for (size_t k = 0; k < p->nmembers; k++) {
			const cfg_status_member_t *sm = &sp->members[k];
			const db_member_t *m = sm->m;
			jw_obj_begin(w);
			jw_key(w, "name");
			jw_str(w, m->name);
			jw_key(w, "admin");
			jw_str(w, db_admin_name(m->admin));
			jw_key(w, "weight");
			jw_int(w, m->weight);
			jw_key(w, "priority");
			jw_int(w, m->priority);
			if (m->alias) {
				jw_key(w, "alias");
				alias_json(w, sm);
			}
			jw_key(w, "addresses");
			jw_arr_begin(w);
			for (size_t j = 0; j < sm->naddrs; j++)
				addr_json(w, s, &sm->addrs[j]);
			jw_arr_end(w);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

const char *cfg_status_cert_flag(const cfg_status_addr_t *a, int64_t now, char *buf, size_t len)
{
	int64_t na = a->st.cert_not_after;
	if (na <= 0 || na - now >= (int64_t)HEALTH_CERT_WARN_DAYS_DEFAULT * 86400)
		return NULL;
	return health_cert_expiry_text(na, now, buf, len);
}

const char *cfg_status_expiry(int64_t expires, int64_t now, char *buf, size_t len)
{
	if (expires >= now)
		snprintf(buf, len, "expires in %lld s", (long long)(expires - now));
	else
		snprintf(buf, len, "expired %lld s ago", (long long)(now - expires));
	return buf;
}

/* The line of a member's alias: what it resolved to and until when, and its failures. */
static void alias_text(FILE *f, const cfg_status_member_t *sm, int64_t now)
{
	const db_alias_state_t *as = sm->alias;
	char t[32], e[48];

	fprintf(f, "    alias %s: ", sm->m->alias);
	if (!as || as->never_resolved)
		fprintf(f, "never resolved%s",
			sm->m->naddresses ? "" : " (the member has no address)");
	else
		fprintf(f, "%u address%s, resolved %s, %s", as->naddresses,
			as->naddresses == 1 ? "" : "es",
			cfg_status_time(as->resolved, t, sizeof(t)),
			cfg_status_expiry(as->expires, now, e, sizeof(e)));
	if (as && as->failures)
		fprintf(f, "; %u failure%s since the last success, the last %s%s%s", as->failures,
			as->failures == 1 ? "" : "s", as->error ? as->error : "unknown",
			as->error_time ? " at " : "",
			cfg_status_time(as->error_time, t, sizeof(t)));
	fprintf(f, "\n");
}

void cfg_status_text(FILE *f, const cfg_status_t *s)
{
	char t1[32], t2[32], e[48];
	int64_t now = time(NULL);

	if (!s->zones_readable)
		fprintf(f, "note: zone directory %s cannot be read; served is unknown\n", s->zones);
	for (size_t i = 0; i < s->npools; i++) {
		const cfg_status_pool_t *sp = &s->pools[i];
		const db_pool_t *p = sp->p;
		if (sp->serving == LB_SERVING_YES || sp->serving == CFG_STATUS_UNKNOWN)
			fprintf(f, "pool %s %s %s\n", p->name, db_policy_name(p->policy),
				sp->serving ? "served unknown" : "served");
		else
			fprintf(f, "pool %s %s NOT SERVED (%s)\n", p->name,
				db_policy_name(p->policy), cfg_status_serving_name(sp->serving));
		for (size_t k = 0; k < p->nmembers; k++) {
			const cfg_status_member_t *sm = &sp->members[k];
			const db_member_t *m = sm->m;
			fprintf(f, "  member %s admin %s weight %u priority %u\n", m->name,
				db_admin_name(m->admin), m->weight, m->priority);
			if (m->alias)
				alias_text(f, sm, now);
			for (size_t j = 0; j < sm->naddrs; j++) {
				const cfg_status_addr_t *a = &sm->addrs[j];
				fprintf(f, "    %s %s", a->address, a->state);
				if (a->st.since > 0)
					fprintf(f, " since %s",
						cfg_status_time(a->st.since, t1, sizeof(t1)));
				fprintf(f, " (%s)", a->reason);
				if (a->st.last_probe > 0)
					fprintf(f, " last probe %s",
						cfg_status_time(a->st.last_probe, t2, sizeof(t2)));
				if (a->st.latency_ms >= 0)
					fprintf(f, " %.1f ms", a->st.latency_ms);
				for (size_t v = 0; v < a->nvotes; v++)
					fprintf(f, "%s %s %s", v ? "," : " votes", a->votes[v].node,
						a->votes[v].up ? "up" : "down");
				if (cfg_status_cert_flag(a, now, t1, sizeof(t1)))
					fprintf(f, " certificate %s", t1);
				if (a->alias)
					fprintf(f, " alias %s, %s", a->alias->name,
						cfg_status_expiry(a->alias->expires, now, e,
								  sizeof(e)));
				fprintf(f, "\n");
			}
		}
	}
}
