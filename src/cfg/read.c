/* SPDX-License-Identifier: MIT */
/*
 * The JSON reader of the configuration: a file as gslbctl apply reads it, or
 * one pool as a cluster keeps it in etcd, every value validated, with
 * messages that name the value by its path ("pools[0].members[2].weight").
 */

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/cfg.h"
#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/health.h"

/* Where in the file a value is, for messages: "pools[0].members[2].weight". */
typedef struct jpath {
	char s[256];
} jpath_t;

typedef struct reader {
	char why[WHY_MAX]; /* a validator's reason */
	char *err;	   /* the first error's message, "PATH: why" */
	size_t errlen;
	int ret; /* 0 until the first error, then GSLB_ECONFIG */
} reader_t;

static int bad(reader_t *r, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(reader_t *r, const char *path, const char *fmt, ...)
{
	char msg[WHY_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A pool read on its own is the top of its document: its own problems have no path. */
	snprintf(r->err, r->errlen, "%s%s%s", path, *path ? ": " : "", msg);
	r->ret = GSLB_ECONFIG;
	return -1;
}

/* Paths longer than a jpath_t are cut short: they only name a place in a message. */
static void sub(char *dst, const char *base, const char *key)
{
	char tmp[2 * sizeof(jpath_t) + 64];
	snprintf(tmp, sizeof(tmp), "%.255s%s%.64s", base, *base ? "." : "", key);
	snprintf(dst, sizeof(jpath_t), "%.255s", tmp);
}

static void idx(char *dst, const char *base, size_t i)
{
	char tmp[sizeof(jpath_t) + 32];
	snprintf(tmp, sizeof(tmp), "%.255s[%zu]", base, i);
	snprintf(dst, sizeof(jpath_t), "%.255s", tmp);
}

/* What a value must be.  JSON has one kind of number; jansson has integers and reals. */
enum kind { K_OBJECT, K_ARRAY, K_STRING, K_NUMBER, K_BOOL };

static bool is_kind(const json_t *v, enum kind k)
{
	switch (k) {
	case K_OBJECT:
		return json_is_object(v);
	case K_ARRAY:
		return json_is_array(v);
	case K_STRING:
		return json_is_string(v);
	case K_NUMBER:
		return json_is_number(v);
	default:
		return json_is_boolean(v);
	}
}

static const char *kind_name(enum kind k)
{
	static const char *const names[] = { "an object", "an array", "a string", "a number",
					     "a boolean" };
	return names[k];
}

/* What a value is, for "is a string, not a number". */
static const char *value_name(const json_t *v)
{
	if (json_is_null(v))
		return "null";
	for (enum kind k = K_OBJECT; k < K_BOOL; k++)
		if (is_kind(v, k))
			return kind_name(k);
	return kind_name(K_BOOL);
}

/* "is an array, not an object" when o is no object. */
static int need_object(reader_t *r, const json_t *o, const char *path)
{
	if (json_is_object(o))
		return 0;
	return bad(r, path, "is %s, not an object", value_name(o));
}

/*
 * A number as the validators read it: an integer in decimal, a real as the
 * shortest plain decimal that reads back the same, with ".0" when that has no
 * point, so that a real is never taken for a whole number (10.0 and 1e1 are
 * "10.0 is not a whole number") and seconds keep their decimals (0.5).
 */
#define NUMBER_LEN (JSON_DOUBLE_LEN + 2)

static void number_text(const json_t *j, char *buf)
{
	if (json_is_integer(j)) {
		snprintf(buf, NUMBER_LEN, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return;
	}
	json_double_fmt(buf, JSON_DOUBLE_LEN, json_real_value(j));
	if (!strchr(buf, '.'))
		strcat(buf, ".0");
}

/* Reject keys an object must not have: a misspelt key would otherwise be silently ignored. */
static int only_keys(reader_t *r, const json_t *o, const char *path, const char *const *keys)
{
	for (void *it = json_object_iter((json_t *)o); it;
	     it = json_object_iter_next((json_t *)o, it)) {
		const char *key = json_object_iter_key(it);
		bool known = false;
		for (const char *const *k = keys; *k; k++)
			if (strcmp(*k, key) == 0)
				known = true;
		if (!known) {
			jpath_t p;
			sub(p.s, path, key);
			return bad(r, p.s, "unknown key");
		}
	}
	return 0;
}

/* An object with none but the given keys: 0, or -1. */
static int need_keys(reader_t *r, const json_t *o, const char *path, const char *const *keys)
{
	return need_object(r, o, path) || only_keys(r, o, path, keys) ? -1 : 0;
}

/* A typed member of an object; NULL (and no error) when absent and optional. */
static const json_t *get(reader_t *r, const json_t *o, const char *path, const char *key,
			 enum kind kind, bool required, char *kpath)
{
	const json_t *v = json_object_get(o, key);
	sub(kpath, path, key);
	if (!v) {
		if (required)
			bad(r, kpath, "missing");
		return NULL;
	}
	if (!is_kind(v, kind)) {
		bad(r, kpath, "is %s, not %s", value_name(v), kind_name(kind));
		return NULL;
	}
	return v;
}

/* Number f of an object into *v: 1 when it is there, 0 when it is not (*v as it was), or -1. */
static int get_num(reader_t *r, const json_t *o, const char *path, enum num_field f, uint32_t *v)
{
	jpath_t p;
	char num[NUMBER_LEN];
	const json_t *j = get(r, o, path, num_fields[f].key, K_NUMBER, false, p.s);
	if (!j)
		return r->ret ? -1 : 0;
	number_text(j, num);
	if (val_num(f, num, v, r->why))
		return bad(r, p.s, "%s", r->why);
	return 1;
}

/*
 * A string member that parse() turns into a value >= 0, into *v: 1 when it
 * is there, 0 when it is not (*v as it was), or -1; choices lists the names
 * parse() takes, for the message.
 */
static int get_enum(reader_t *r, const json_t *o, const char *path, const char *key,
		    int (*parse)(const char *), const char *choices, uint8_t *v)
{
	jpath_t p;
	const json_t *j = get(r, o, path, key, K_STRING, false, p.s);
	if (!j)
		return r->ret ? -1 : 0;
	int e = parse(json_string_value(j));
	if (e < 0)
		return bad(r, p.s, "%s is not %s", json_string_value(j), choices);
	*v = (uint8_t)e;
	return 1;
}

/* A string member checked by val(); *out is a malloc'd copy, NULL when absent. */
static int get_text(reader_t *r, const json_t *o, const char *path, const char *key,
		    int (*val)(const char *, char *), char **out)
{
	jpath_t p;
	const json_t *j = get(r, o, path, key, K_STRING, false, p.s);
	*out = NULL;
	if (!j)
		return r->ret ? -1 : 0;
	if (val && val(json_string_value(j), r->why))
		return bad(r, p.s, "%s", r->why);
	*out = gslb_strdup(json_string_value(j));
	return 1;
}

/* An array of strings joined with commas, for the country and continent lists. */
static int get_list(reader_t *r, const json_t *o, const char *path, const char *key,
		    int (*val)(const char *, char **, char *), char **out)
{
	jpath_t p, q;
	char *list;
	size_t len;
	const json_t *j = get(r, o, path, key, K_ARRAY, false, p.s);
	*out = NULL;
	if (!j)
		return r->ret ? -1 : 0;
	for (size_t i = 0; i < json_array_size(j); i++) {
		const char *code = json_string_value(json_array_get(j, i));
		idx(q.s, p.s, i);
		if (!code || strchr(code, ','))
			return bad(r, q.s, "is not a code");
	}
	if (!json_array_size(j))
		return 0;
	FILE *f = cfg_mem_open(&list, &len);
	for (size_t i = 0; i < json_array_size(j); i++)
		fprintf(f, "%s%s", i ? "," : "", json_string_value(json_array_get(j, i)));
	cfg_mem_close(f);
	int ret = val(list, out, r->why) ? bad(r, p.s, "%s", r->why) : 1;
	free(list);
	return ret;
}

static db_check_t *read_check(reader_t *r, const json_t *o, const char *path, bool member)
{
	static const char *const keys[] = { "type",   "port",	  "path",    "host", "expect",
					    "match",  "interval", "timeout", "rise", "fall",
					    "target", "insecure", "quorum",  NULL };
	jpath_t p;
	uint32_t v;
	db_check_t *ck = gslb_calloc(1, sizeof(*ck));
	const json_t *j;
	int t, got;

	if (need_keys(r, o, path, keys))
		goto fail;
	if (!(j = get(r, o, path, "type", K_STRING, true, p.s)))
		goto fail;
	if ((t = db_check_type_parse(json_string_value(j))) < 0) {
		bad(r, p.s, "%s is not tcp, http or https", json_string_value(j));
		goto fail;
	}
	ck->type = (uint8_t)t;
	if ((got = get_num(r, o, path, NUM_PORT, &v)) < 0)
		goto fail;
	ck->port = got ? (uint16_t)v : 0;
	if (!got && ck->type == DB_CHECK_TCP) {
		sub(p.s, path, num_fields[NUM_PORT].key);
		bad(r, p.s, "required for type tcp");
		goto fail;
	}
	if (get_text(r, o, path, "path", val_path, &ck->path) < 0 ||
	    get_text(r, o, path, "host", val_host, &ck->host) < 0 ||
	    get_text(r, o, path, "expect", val_expect, &ck->expect) < 0 ||
	    get_text(r, o, path, "match", val_match, &ck->match) < 0)
		goto fail;
	if (ck->type == DB_CHECK_TCP && (ck->path || ck->host || ck->expect || ck->match)) {
		sub(p.s, path,
		    ck->path	 ? "path"
		    : ck->host	 ? "host"
		    : ck->expect ? "expect"
				 : "match");
		bad(r, p.s, "only for http and https checks");
		goto fail;
	}
	ck->interval_ms = HEALTH_INTERVAL_MS_DEFAULT;
	if (get_num(r, o, path, NUM_INTERVAL, &ck->interval_ms) < 0)
		goto fail;
	ck->timeout_ms = ck->interval_ms / 2 < HEALTH_TIMEOUT_MS_DEFAULT
				 ? ck->interval_ms / 2
				 : HEALTH_TIMEOUT_MS_DEFAULT;
	if ((got = get_num(r, o, path, NUM_TIMEOUT, &ck->timeout_ms)) < 0)
		goto fail;
	if (got && ck->timeout_ms >= ck->interval_ms) {
		sub(p.s, path, num_fields[NUM_TIMEOUT].key);
		bad(r, p.s, "is not less than the interval");
		goto fail;
	}
	ck->rise = HEALTH_RISE_DEFAULT;
	ck->fall = HEALTH_FALL_DEFAULT;
	if ((got = get_num(r, o, path, NUM_RISE, &v)) < 0)
		goto fail;
	if (got)
		ck->rise = (uint8_t)v;
	if ((got = get_num(r, o, path, NUM_FALL, &v)) < 0)
		goto fail;
	if (got)
		ck->fall = (uint8_t)v;
	if ((j = get(r, o, path, "target", K_STRING, false, p.s))) {
		char ip[64];
		int fam;
		if (!member) {
			bad(r, p.s, "only for a member's check");
			goto fail;
		}
		if (val_ip(json_string_value(j), ip, &fam, r->why)) {
			bad(r, p.s, "%s", r->why);
			goto fail;
		}
		ck->target = gslb_strdup(ip);
	} else if (r->ret) {
		goto fail;
	}
	if ((j = get(r, o, path, "insecure", K_BOOL, false, p.s))) {
		ck->insecure = json_is_true(j);
		if (ck->insecure && ck->type != DB_CHECK_HTTPS) {
			bad(r, p.s, "only for https checks");
			goto fail;
		}
	} else if (r->ret) {
		goto fail;
	}
	/* Absent is majority, which export leaves out (calloc's zero). */
	if (get_enum(r, o, path, "quorum", db_quorum_parse, "majority, any, all or local",
		     &ck->quorum) < 0)
		goto fail;
	return ck;
fail:
	db_check_free(ck);
	return NULL;
}

static int read_member(reader_t *r, const json_t *o, const char *path, db_member_t *m)
{
	static const char *const keys[] = { "name",	  "addresses", "alias",	   "weight",
					    "priority",	  "admin",     "location", "countries",
					    "continents", "networks",  "check",	   NULL };
	jpath_t p, q;
	const json_t *j;
	uint32_t v;
	int got;

	if (need_keys(r, o, path, keys))
		return -1;
	if (!(j = get(r, o, path, "name", K_STRING, true, p.s)))
		return -1;
	if (val_member_name(json_string_value(j), r->why))
		return bad(r, p.s, "%s", r->why);
	cfg_member_defaults(m, json_string_value(j));
	/* README "Alias members": addresses, an alias, or both; one of them at least. */
	if ((j = get(r, o, path, "alias", K_STRING, false, p.s))) {
		char alias[DNS_NAME_MAX + 1];
		if (val_alias(json_string_value(j), alias, sizeof(alias), r->why))
			return bad(r, p.s, "%s", r->why);
		m->alias = gslb_strdup(alias);
	} else if (r->ret) {
		return -1;
	}
	j = get(r, o, path, "addresses", K_ARRAY, !m->alias, p.s);
	if (!j && r->ret)
		return -1;
	if (j && json_array_size(j) == 0 && !m->alias)
		return bad(r, p.s, "at least one address is required (or an alias)");
	for (size_t i = 0; j && i < json_array_size(j); i++) {
		const char *given = json_string_value(json_array_get(j, i));
		char ip[64];
		int fam;
		idx(q.s, p.s, i);
		if (!given)
			return bad(r, q.s, "is not a string");
		if (val_member_address(given, ip, &fam, r->why))
			return bad(r, q.s, "%s", r->why);
		if (!cfg_member_add_address(m, ip, fam)) {
			/* A repeated address is likely a typo for another: say so, do not drop it. */
			char as[sizeof(ip) + 8] = "";
			if (strcmp(given, ip) != 0)
				snprintf(as, sizeof(as), " (as %s)", ip);
			return bad(r, q.s, "%s appears twice%s", given, as);
		}
		if (m->naddresses > CFG_ADDRESSES_MAX)
			return bad(r, p.s, "more than %d addresses", CFG_ADDRESSES_MAX);
	}
	if ((got = get_num(r, o, path, NUM_WEIGHT, &v)) < 0)
		return -1;
	if (got)
		m->weight = (uint16_t)v;
	if ((got = get_num(r, o, path, NUM_PRIORITY, &v)) < 0)
		return -1;
	if (got)
		m->priority = (uint8_t)v;
	if (get_enum(r, o, path, "admin", db_admin_parse, "auto, up, down or drain", &m->admin) < 0)
		return -1;
	if ((j = get(r, o, path, "location", K_STRING, false, p.s))) {
		if (val_location(json_string_value(j), &m->latitude, &m->longitude, r->why))
			return bad(r, p.s, "%s", r->why);
		m->has_location = true;
	} else if (r->ret) {
		return -1;
	}
	if (get_list(r, o, path, "countries", val_countries, &m->countries) < 0 ||
	    get_list(r, o, path, "continents", val_continents, &m->continents) < 0)
		return -1;
	if ((j = get(r, o, path, "networks", K_ARRAY, false, p.s))) {
		for (size_t i = 0; i < json_array_size(j); i++) {
			const char *given = json_string_value(json_array_get(j, i));
			char net[64];
			idx(q.s, p.s, i);
			if (!given)
				return bad(r, q.s, "is not a string");
			if (val_cidr(given, net, r->why))
				return bad(r, q.s, "%s", r->why);
			cfg_member_add_network(m, net);
			if (m->nnetworks > CFG_NETWORKS_MAX)
				return bad(r, p.s, "more than %d networks", CFG_NETWORKS_MAX);
		}
	} else if (r->ret) {
		return -1;
	}
	if ((j = json_object_get(o, "check"))) {
		sub(p.s, path, "check");
		if (!(m->check = read_check(r, j, p.s, true)))
			return -1;
	}
	return 0;
}

static int read_pool(reader_t *r, const json_t *o, const char *path, db_pool_t *pl)
{
	static const char *const keys[] = { "name",	    "policy",  "ttl",
					    "degraded_ttl", "answers", "fallback",
					    "check",	    "members", NULL };
	jpath_t p, q;
	char name[DNS_NAME_MAX + 1];
	const json_t *j;
	uint32_t v;
	int got;

	if (need_keys(r, o, path, keys))
		return -1;
	if (!(j = get(r, o, path, "name", K_STRING, true, p.s)))
		return -1;
	if (val_pool_name(json_string_value(j), name, sizeof(name), r->why))
		return bad(r, p.s, "%s", r->why);
	cfg_pool_defaults(pl, name);
	if (get_enum(r, o, path, "policy", db_policy_parse, "weighted, failover or geo",
		     &pl->policy) < 0)
		return -1;
	if (get_num(r, o, path, NUM_TTL, &pl->ttl) < 0)
		return -1;
	if ((j = json_object_get(o, num_fields[NUM_DEGRADED_TTL].key)) && !json_is_null(j)) {
		if (get_num(r, o, path, NUM_DEGRADED_TTL, &v) < 0)
			return -1;
		pl->degraded_ttl = (int32_t)v;
	}
	if ((got = get_num(r, o, path, NUM_ANSWERS, &v)) < 0)
		return -1;
	if (got)
		pl->answers = (uint8_t)v;
	if ((j = get(r, o, path, "fallback", K_STRING, false, p.s))) {
		const char *fb = json_string_value(j);
		if (strcmp(fb, "all") != 0 && strcmp(fb, "none") != 0)
			return bad(r, p.s, "%s is not all or none", fb);
		pl->fallback_all = strcmp(fb, "all") == 0;
	} else if (r->ret) {
		return -1;
	}
	if ((j = json_object_get(o, "check"))) {
		sub(p.s, path, "check");
		if (!(pl->check = read_check(r, j, p.s, false)))
			return -1;
	}
	if ((j = get(r, o, path, "members", K_ARRAY, false, p.s))) {
		size_t n = json_array_size(j);
		if (n > CFG_MEMBERS_MAX)
			return bad(r, p.s, "more than %d members", CFG_MEMBERS_MAX);
		pl->members = gslb_calloc(n ? n : 1, sizeof(db_member_t));
		for (size_t i = 0; i < n; i++) {
			idx(q.s, p.s, i);
			if (read_member(r, json_array_get(j, i), q.s, &pl->members[pl->nmembers++]))
				return -1;
			for (size_t k = 0; k + 1 < pl->nmembers; k++)
				if (strcmp(pl->members[k].name, pl->members[i].name) == 0) {
					jpath_t d;
					sub(d.s, q.s, "name");
					return bad(r, d.s, "member %s appears twice",
						   pl->members[i].name);
				}
		}
	} else if (r->ret) {
		return -1;
	}
	return 0;
}

/*
 * The pool names read so far, to find one that appears twice: a hash set,
 * since comparing each pool with every earlier one took minutes for a file
 * of 100,000 pools.
 */
typedef struct name_set {
	const char **slot;
	size_t mask;
} name_set_t;

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

/* Add name (borrowed); false when it is there already.  Sized for n names up front. */
static bool name_set_add(name_set_t *ns, const char *name)
{
	size_t i = (size_t)name_hash(name) & ns->mask;
	for (; ns->slot[i]; i = (i + 1) & ns->mask)
		if (strcmp(ns->slot[i], name) == 0)
			return false;
	ns->slot[i] = name;
	return true;
}

/* The file as a configuration, every value validated; 0 or GSLB_ECONFIG. */
static int read_config(reader_t *r, const json_t *root, db_config_t **out)
{
	static const char *const keys[] = { "version", "pools", NULL };
	db_config_t *cfg = gslb_calloc(1, sizeof(*cfg));
	name_set_t names = { 0 };
	jpath_t p, q;
	char num[NUMBER_LEN];
	const json_t *j;
	size_t n;
	int ret = 0;

	*out = cfg;
	if (need_object(r, root, "(top)") || only_keys(r, root, "", keys))
		return r->ret;
	if ((j = get(r, root, "", "version", K_NUMBER, false, p.s))) {
		number_text(j, num);
		if (strcmp(num, "1") != 0)
			return bad(r, p.s, "%s is not a version this gslbctl reads (1)", num),
			       r->ret;
	} else if (r->ret) {
		return r->ret;
	}
	if (!(j = get(r, root, "", "pools", K_ARRAY, true, p.s)))
		return r->ret;
	n = json_array_size(j);
	cfg->pools = gslb_calloc(n ? n : 1, sizeof(db_pool_t));
	size_t slots = 16;
	while (slots < n * 2)
		slots *= 2;
	names.slot = gslb_calloc(slots, sizeof(*names.slot));
	names.mask = slots - 1;
	for (size_t i = 0; i < n; i++) {
		idx(q.s, p.s, i);
		if (read_pool(r, json_array_get(j, i), q.s, &cfg->pools[cfg->npools++])) {
			ret = r->ret;
			goto out;
		}
		if (!name_set_add(&names, cfg->pools[i].name)) {
			jpath_t d;
			sub(d.s, q.s, "name");
			bad(r, d.s, "pool %s appears twice", cfg->pools[i].name);
			ret = r->ret;
			goto out;
		}
	}
	db_config_sort(cfg);
out:
	free(names.slot);
	return ret;
}

/* JSON text into root; 0 or GSLB_EPARSE with the message in err. */
static int load(const char *text, size_t len, json_t **root, char *err, size_t errlen)
{
	char msg[CFG_ERR_MAX];
	if (!cfg_json_load(text, len, root, msg, sizeof(msg)))
		return 0;
	snprintf(err, errlen, "%s", msg);
	return GSLB_EPARSE;
}

int cfg_config_from_json(const char *text, size_t len, db_config_t **out, char *why, size_t whylen)
{
	reader_t r = { .err = why, .errlen = whylen };
	json_t *root;
	int ret;

	*out = NULL;
	if ((ret = load(text, len, &root, why, whylen)))
		return ret;
	if ((ret = read_config(&r, root, out))) {
		db_config_free(*out);
		*out = NULL;
	}
	json_decref(root);
	return ret;
}

int cfg_pool_from_json(const char *text, size_t len, db_pool_t *out, char *why, size_t whylen)
{
	reader_t r = { .err = why, .errlen = whylen };
	db_config_t one = { .npools = 1, .pools = out };
	json_t *root;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = load(text, len, &root, why, whylen)))
		return ret;
	if (read_pool(&r, root, "", out)) {
		cfg_pool_clear(out);
		ret = r.ret;
	} else {
		db_config_sort(&one);
	}
	json_decref(root);
	return ret;
}
