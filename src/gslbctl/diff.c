/* SPDX-License-Identifier: MIT */
/* Field-by-field differences of pools, members and checks: the lines apply and the journal show. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslbctl.h"

#define FIELDS_MAX 16
#define VALUE_MAX 1200

typedef struct fields {
	int n;
	const char *name[FIELDS_MAX];
	char value[FIELDS_MAX][VALUE_MAX];
} fields_t;

static void field(fields_t *f, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void field(fields_t *f, const char *name, const char *fmt, ...)
{
	va_list ap;
	f->name[f->n] = name;
	va_start(ap, fmt);
	vsnprintf(f->value[f->n], VALUE_MAX, fmt, ap);
	va_end(ap);
	f->n++;
}

/* Emit "~ <what> <field> <old> -> <new>" for each field that differs; the count. */
static int emit(FILE *b, const char *what, const fields_t *a, const fields_t *n)
{
	int changes = 0;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->value[i], n->value[i]) != 0) {
			fprintf(b, "~ %s %s %s -> %s\n", what, a->name[i], a->value[i],
				n->value[i]);
			changes++;
		}
	return changes;
}

static void pool_fields(fields_t *f, const db_pool_t *p)
{
	memset(f, 0, sizeof(*f));
	field(f, "policy", "%s", db_policy_name(p->policy));
	field(f, "ttl", "%u", p->ttl);
	if (p->degraded_ttl >= 0)
		field(f, "degraded_ttl", "%d", p->degraded_ttl);
	else
		field(f, "degraded_ttl", "default");
	field(f, "answers", "%u", p->answers);
	field(f, "fallback", "%s", p->fallback_all ? "all" : "none");
}

int diff_pool(FILE *b, const db_pool_t *a, const db_pool_t *n)
{
	fields_t fa, fn;
	char what[300];
	pool_fields(&fa, a);
	pool_fields(&fn, n);
	snprintf(what, sizeof(what), "pool %s", n->name);
	return emit(b, what, &fa, &fn);
}

static void member_fields(fields_t *f, const db_member_t *m)
{
	char *s;
	memset(f, 0, sizeof(*f));
	s = cfg_join(m->addresses, m->naddresses, ",");
	field(f, "addresses", "%s", *s ? s : "none");
	free(s);
	field(f, "alias", "%s", m->alias ? m->alias : "none");
	field(f, "weight", "%u", m->weight);
	field(f, "priority", "%u", m->priority);
	field(f, "admin", "%s", db_admin_name(m->admin));
	if (m->has_location) {
		char loc[LOCATION_LEN];
		fmt_location(loc, sizeof(loc), m->latitude, m->longitude);
		field(f, "location", "%s", loc);
	} else {
		field(f, "location", "none");
	}
	field(f, "countries", "%s", m->countries ? m->countries : "none");
	field(f, "continents", "%s", m->continents ? m->continents : "none");
	s = cfg_join(m->networks, m->nnetworks, ",");
	field(f, "networks", "%s", *s ? s : "none");
	free(s);
}

int diff_member(FILE *b, const char *pool, const db_member_t *a, const db_member_t *n)
{
	fields_t fa, fn;
	char what[400];
	member_fields(&fa, a);
	member_fields(&fn, n);
	snprintf(what, sizeof(what), "member %s/%s", pool, n->name);
	return emit(b, what, &fa, &fn);
}

void diff_member_added(FILE *b, const char *pool, const db_member_t *m)
{
	/* The alias too: what the member serves is not in its address list alone. */
	if (m->alias)
		fprintf(b, "+ member %s/%s alias %s\n", pool, m->name, m->alias);
	else
		fprintf(b, "+ member %s/%s\n", pool, m->name);
}

static void check_fields(fields_t *f, const db_check_t *c)
{
	char s[16];
	memset(f, 0, sizeof(*f));
	field(f, "type", "%s", db_check_type_name(c->type));
	if (c->port)
		field(f, "port", "%u", c->port);
	else
		field(f, "port", "default");
	field(f, "path", "%s", c->path ? c->path : "default");
	field(f, "host", "%s", c->host ? c->host : "default");
	field(f, "expect", "%s", c->expect ? c->expect : "default");
	if (c->match)
		field(f, "match", "\"%s\"", c->match);
	else
		field(f, "match", "none");
	fmt_seconds(s, sizeof(s), c->interval_ms);
	field(f, "interval", "%s", s);
	fmt_seconds(s, sizeof(s), c->timeout_ms);
	field(f, "timeout", "%s", s);
	field(f, "rise", "%u", c->rise);
	field(f, "fall", "%u", c->fall);
	field(f, "target", "%s", c->target ? c->target : "none");
	field(f, "insecure", "%s", c->insecure ? "yes" : "no");
	field(f, "quorum", "%s", db_quorum_name(c->quorum));
}

/* what is "P" or "P/M"; a NULL side means the check is added or removed. */
int diff_check(FILE *b, const char *what, const db_check_t *a, const db_check_t *n)
{
	fields_t fa, fn;
	char w[400];
	if (!a && !n)
		return 0;
	if (!a) {
		fprintf(b, "+ check %s\n", what);
		return 1;
	}
	if (!n) {
		fprintf(b, "- check %s\n", what);
		return 1;
	}
	check_fields(&fa, a);
	check_fields(&fn, n);
	snprintf(w, sizeof(w), "check %s", what);
	return emit(b, w, &fa, &fn);
}
