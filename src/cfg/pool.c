/* SPDX-License-Identifier: MIT */
/* A pool as JSON text, and the helpers that build, copy and free the configuration's structs. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/cfg.h"
#include "gslb/core.h"

static char *dup_or_null(const char *s)
{
	return s ? gslb_strdup(s) : NULL;
}

db_check_t *cfg_check_dup(const db_check_t *c)
{
	if (!c)
		return NULL;
	db_check_t *d = gslb_malloc(sizeof(*d));
	*d = *c;
	d->path = dup_or_null(c->path);
	d->host = dup_or_null(c->host);
	d->expect = dup_or_null(c->expect);
	d->match = dup_or_null(c->match);
	d->target = dup_or_null(c->target);
	return d;
}

static char **strv_dup(char *const *v, size_t n)
{
	char **d = gslb_calloc(n ? n : 1, sizeof(*d));
	for (size_t i = 0; i < n; i++)
		d[i] = gslb_strdup(v[i]);
	return d;
}

void cfg_member_copy(db_member_t *dst, const db_member_t *src)
{
	*dst = *src;
	dst->name = dup_or_null(src->name);
	dst->countries = dup_or_null(src->countries);
	dst->continents = dup_or_null(src->continents);
	dst->alias = dup_or_null(src->alias);
	dst->addresses = strv_dup(src->addresses, src->naddresses);
	dst->families = gslb_malloc(src->naddresses ? src->naddresses : 1);
	if (src->naddresses)
		memcpy(dst->families, src->families, src->naddresses);
	dst->networks = strv_dup(src->networks, src->nnetworks);
	dst->check = cfg_check_dup(src->check);
}

void cfg_pool_defaults(db_pool_t *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->name = gslb_strdup(name);
	p->policy = DB_POLICY_WEIGHTED;
	p->ttl = 30;
	p->degraded_ttl = -1;
	p->answers = 1;
	p->fallback_all = true;
}

void cfg_member_defaults(db_member_t *m, const char *name)
{
	memset(m, 0, sizeof(*m));
	m->name = gslb_strdup(name);
	m->weight = 100;
	m->priority = 1;
	m->admin = DB_ADMIN_AUTO;
}

bool cfg_member_add_address(db_member_t *m, const char *addr, int family)
{
	for (size_t i = 0; i < m->naddresses; i++)
		if (strcmp(m->addresses[i], addr) == 0)
			return false;
	m->addresses = gslb_realloc(m->addresses, (m->naddresses + 1) * sizeof(char *));
	m->families = gslb_realloc(m->families, m->naddresses + 1);
	m->addresses[m->naddresses] = gslb_strdup(addr);
	m->families[m->naddresses++] = (uint8_t)family;
	db_member_sort(m);
	return true;
}

bool cfg_member_add_network(db_member_t *m, const char *prefix)
{
	for (size_t i = 0; i < m->nnetworks; i++)
		if (strcmp(m->networks[i], prefix) == 0)
			return false;
	m->networks = gslb_realloc(m->networks, (m->nnetworks + 1) * sizeof(char *));
	m->networks[m->nnetworks++] = gslb_strdup(prefix);
	db_member_sort(m);
	return true;
}

char *cfg_join(char *const *v, size_t n, const char *sep)
{
	char *text;
	size_t len;
	FILE *f = cfg_mem_open(&text, &len);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? sep : "", v[i]);
	cfg_mem_close(f);
	return text;
}

/* A comma list as a JSON array of strings. */
static void list_json(jw_t *w, const char *list)
{
	jw_arr_begin(w);
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		char item[64];
		snprintf(item, sizeof(item), "%.*s", (int)n, p);
		jw_str(w, item);
		p += n;
		if (*p == ',')
			p++;
	}
	jw_arr_end(w);
}

/*
 * Checks are written with every effective value (defaults filled in) only
 * where the value is stored: a NULL column stays absent, so apply puts back
 * exactly what export saw.
 */
void cfg_check_json(jw_t *w, const db_check_t *c)
{
	char s[16];
	jw_obj_begin(w);
	jw_key(w, "type");
	jw_str(w, db_check_type_name(c->type));
	if (c->port) {
		jw_key(w, "port");
		jw_int(w, c->port);
	}
	if (c->path) {
		jw_key(w, "path");
		jw_str(w, c->path);
	}
	if (c->host) {
		jw_key(w, "host");
		jw_str(w, c->host);
	}
	if (c->expect) {
		jw_key(w, "expect");
		jw_str(w, c->expect);
	}
	if (c->match) {
		jw_key(w, "match");
		jw_str(w, c->match);
	}
	jw_key(w, "interval");
	fmt_seconds(s, sizeof(s), c->interval_ms);
	jw_number_text(w, s);
	jw_key(w, "timeout");
	fmt_seconds(s, sizeof(s), c->timeout_ms);
	jw_number_text(w, s);
	jw_key(w, "rise");
	jw_int(w, c->rise);
	jw_key(w, "fall");
	jw_int(w, c->fall);
	if (c->target) {
		jw_key(w, "target");
		jw_str(w, c->target);
	}
	if (c->insecure) {
		jw_key(w, "insecure");
		jw_bool(w, true);
	}
	/* Left out when it is the default, so exports made before quorums existed stay the same. */
	if (c->quorum != DB_QUORUM_MAJORITY) {
		jw_key(w, "quorum");
		jw_str(w, db_quorum_name(c->quorum));
	}
	jw_obj_end(w);
}

void cfg_pool_json(jw_t *w, const db_pool_t *p)
{
	jw_obj_begin(w);
	jw_key(w, "name");
	jw_str(w, p->name);
	jw_key(w, "policy");
	jw_str(w, db_policy_name(p->policy));
	jw_key(w, "ttl");
	jw_int(w, p->ttl);
	if (p->degraded_ttl >= 0) {
		jw_key(w, "degraded_ttl");
		jw_int(w, p->degraded_ttl);
	}
	jw_key(w, "answers");
	jw_int(w, p->answers);
	jw_key(w, "fallback");
	jw_str(w, p->fallback_all ? "all" : "none");
	if (p->check) {
		jw_key(w, "check");
		cfg_check_json(w, p->check);
	}
	jw_key(w, "members");
	jw_arr_begin(w);
	for (size_t i = 0; i < p->nmembers; i++) {
		const db_member_t *m = &p->members[i];
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_str(w, m->name);
		jw_key(w, "addresses");
		jw_arr_begin(w);
		for (size_t k = 0; k < m->naddresses; k++)
			jw_str(w, m->addresses[k]);
		jw_arr_end(w);
		if (m->alias) {
			jw_key(w, "alias");
			jw_str(w, m->alias);
		}
		jw_key(w, "weight");
		jw_int(w, m->weight);
		jw_key(w, "priority");
		jw_int(w, m->priority);
		jw_key(w, "admin");
		jw_str(w, db_admin_name(m->admin));
		if (m->has_location) {
			char loc[LOCATION_LEN];
			fmt_location(loc, sizeof(loc), m->latitude, m->longitude);
			jw_key(w, "location");
			jw_str(w, loc);
		}
		if (m->countries) {
			jw_key(w, "countries");
			list_json(w, m->countries);
		}
		if (m->continents) {
			jw_key(w, "continents");
			list_json(w, m->continents);
		}
		if (m->nnetworks) {
			jw_key(w, "networks");
			jw_arr_begin(w);
			for (size_t k = 0; k < m->nnetworks; k++)
				jw_str(w, m->networks[k]);
			jw_arr_end(w);
		}
		if (m->check) {
			jw_key(w, "check");
			cfg_check_json(w, m->check);
		}
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

char *cfg_pool_to_json(const db_pool_t *p, size_t *len)
{
	char *text;
	size_t n;
	jw_t w;
	FILE *f = cfg_mem_open(&text, &n);

	jw_init(&w, f);
	w.compact = true;
	cfg_pool_json(&w, p);
	cfg_mem_close(f);
	if (len)
		*len = n;
	return text;
}

void cfg_pool_clear(db_pool_t *p)
{
	db_pool_clear(p);
}

FILE *cfg_mem_open(char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);
	if (!f) {
		fprintf(stderr, "%s: out of memory opening a text stream\n",
			program_invocation_short_name);
		abort();
	}
	return f;
}

void cfg_mem_close(FILE *f)
{
	/* A write that ran out of memory leaves the error flag: the text is cut short. */
	int err = ferror(f);
	if (fclose(f) || err) {
		fprintf(stderr, "%s: out of memory writing a text\n",
			program_invocation_short_name);
		abort();
	}
}
