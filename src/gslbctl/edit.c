/* SPDX-License-Identifier: MIT */
/* gslbctl's commands that change the configuration: init, pool, member and check. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslbctl.h"

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

/* ---- init ---- */

int cmd_init(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	int from, ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if (a.npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[0]);
	ret = db_open(c->db_path, DB_OPEN_CREATE, &c->db);
	if (ret == -ENOENT)
		return ctl_fail(c, "cannot create %s: its directory does not exist", c->db_path);
	if (ret)
		return ctl_db_fail(c, ret);
	ret = db_migrate(c->db, &from);
	if (ret == GSLB_ECONFIG && !*db_errmsg(c->db))
		return ctl_fail(c, "database %s has a schema newer than this gslbctl (%d)",
				c->db_path, DB_SCHEMA_VERSION);
	if (ret)
		return ctl_db_fail(c, ret);
	if (from == DB_SCHEMA_VERSION)
		printf("database %s is up to date (schema version %d)\n", c->db_path, from);
	else if (from == 0)
		printf("database %s created (schema version %d)\n", c->db_path, DB_SCHEMA_VERSION);
	else
		printf("database %s upgraded from schema version %d to %d\n", c->db_path, from,
		       DB_SCHEMA_VERSION);
	return CTL_OK;
}

/* ---- pools ---- */

static const ctl_optdef_t pool_opts[] = {
	{ "--policy", true, false },	   { "--ttl", true, false },
	{ "--degraded-ttl", true, false }, { "--answers", true, false },
	{ "--fallback", true, false },	   { NULL, false, false },
};

/* Validate the first positional argument as a pool name into name (>= 256 bytes). */
static int pool_arg(ctl_t *c, const ctl_args_t *a, size_t want, const char *usage, char *name)
{
	char why[WHY_MAX];
	if (a->npos < want)
		return ctl_invalid(c, "missing arguments (usage: %s)", usage);
	if (a->npos > want)
		return ctl_invalid(c, "%s: unexpected argument", a->pos[want]);
	if (val_pool_name(a->pos[0], name, 256, why))
		return ctl_invalid(c, "%s: %s", "POOL", why);
	return CTL_OK;
}

static int pool_opts_apply(ctl_t *c, const ctl_args_t *a, db_pool_t *p)
{
	char why[WHY_MAX];
	unsigned long v;
	const char *s;

	if ((s = ctl_arg(a, "--policy"))) {
		int pol = db_policy_parse(s);
		if (pol < 0)
			return ctl_invalid(c, "--policy: %s is not weighted, failover or geo", s);
		p->policy = (uint8_t)pol;
	}
	if ((s = ctl_arg(a, "--ttl"))) {
		if (val_uint(s, 0, 86400, &v, why))
			return ctl_invalid(c, "--ttl: %s", why);
		p->ttl = (uint32_t)v;
	}
	if ((s = ctl_arg(a, "--degraded-ttl"))) {
		if (strcmp(s, "default") == 0) {
			p->degraded_ttl = -1;
		} else {
			if (val_uint(s, 1, 86400, &v, why))
				return ctl_invalid(c, "--degraded-ttl: %s", why);
			p->degraded_ttl = (int32_t)v;
		}
	}
	if ((s = ctl_arg(a, "--answers"))) {
		if (val_uint(s, 1, 64, &v, why))
			return ctl_invalid(c, "--answers: %s", why);
		p->answers = (uint8_t)v;
	}
	if ((s = ctl_arg(a, "--fallback"))) {
		if (strcmp(s, "all") != 0 && strcmp(s, "none") != 0)
			return ctl_invalid(c, "--fallback: %s is not all or none", s);
		p->fallback_all = strcmp(s, "all") == 0;
	}
	return CTL_OK;
}

int cmd_pool_add(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char name[256];
	db_pool_t p;
	db_config_t *cfg = NULL;
	sbuf_t sum = { 0 };
	int ret;

	PARSE_ARGS(c, argc, argv, pool_opts, &a);
	if ((ret = pool_arg(c, &a, 1, "pool add NAME [options]", name)))
		return ret;
	cfg_pool_defaults(&p, name);
	if ((ret = pool_opts_apply(c, &a, &p)) || (ret = ctl_open(c)) ||
	    (ret = ctl_begin_change(c, &cfg)))
		goto out;
	if (db_config_pool(cfg, name)) {
		ret = ctl_fail(c, "pool %s already exists", name);
		goto out;
	}
	if ((ret = db_pool_insert(c->db, &p))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	sbuf_printf(&sum, "+ pool %s", name);
	ret = ctl_commit_change(c, sum.s);
out:
	free(p.name);
	db_config_free(cfg);
	sbuf_free(&sum);
	return ret;
}

int cmd_pool_set(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char name[256];
	db_pool_t p;
	db_config_t *cfg = NULL;
	sbuf_t sum = { 0 };
	int ret;

	PARSE_ARGS(c, argc, argv, pool_opts, &a);
	if ((ret = pool_arg(c, &a, 1, "pool set NAME [options]", name)))
		return ret;
	/* Validate against defaults first so a bad value is exit 2 even without a database. */
	cfg_pool_defaults(&p, name);
	ret = pool_opts_apply(c, &a, &p);
	free(p.name);
	if (ret || (ret = ctl_open(c)) || (ret = ctl_begin_change(c, &cfg)))
		goto out;
	const db_pool_t *old = db_config_pool(cfg, name);
	if (!old) {
		ret = ctl_fail(c, "no pool %s", name);
		goto out;
	}
	p = *old;
	pool_opts_apply(c, &a, &p);
	if (!diff_pool(&sum, old, &p)) {
		printf("no changes\n");
		ret = CTL_OK;
		goto out;
	}
	if ((ret = db_pool_update(c->db, &p))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	sum.s[--sum.len] = '\0';
	ret = ctl_commit_change(c, sum.s);
out:
	db_config_free(cfg);
	sbuf_free(&sum);
	return ret;
}

int cmd_pool_rm(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char name[256], sum[300];
	db_config_t *cfg = NULL;
	int ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if ((ret = pool_arg(c, &a, 1, "pool rm NAME", name)) || (ret = ctl_open(c)) ||
	    (ret = ctl_begin_change(c, &cfg)))
		goto out;
	if (!db_config_pool(cfg, name)) {
		ret = ctl_fail(c, "no pool %s", name);
		goto out;
	}
	if ((ret = db_pool_delete(c->db, name))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	snprintf(sum, sizeof(sum), "- pool %s", name);
	ret = ctl_commit_change(c, sum);
out:
	db_config_free(cfg);
	return ret;
}

/* ---- members ---- */

static const ctl_optdef_t member_opts[] = {
	{ "--address", true, true },   { "--weight", true, false },  { "--priority", true, false },
	{ "--location", true, false }, { "--country", true, false }, { "--continent", true, false },
	{ "--network", true, true },   { NULL, false, false },
};

/* POOL MEMBER [extra]: validate both names. */
static int member_args(ctl_t *c, const ctl_args_t *a, size_t want, const char *usage, char *pool)
{
	char why[WHY_MAX];
	int ret = pool_arg(c, a, want, usage, pool);
	if (ret && a->npos >= 1 && a->npos < want)
		return ret;
	if (ret)
		return ret;
	if (val_member_name(a->pos[1], why))
		return ctl_invalid(c, "MEMBER: %s", why);
	return CTL_OK;
}

/*
 * Apply member options to m.  For set, only the options given change;
 * --address and --network replace their lists, an empty value clears.
 */
static int member_opts_apply(ctl_t *c, const ctl_args_t *a, db_member_t *m, bool add)
{
	char why[WHY_MAX], buf[64];
	unsigned long v;
	const char *s;
	bool addr_seen = false, net_seen = false;

	for (size_t i = 0; i < a->nopt; i++) {
		const ctl_opt_t *o = &a->opt[i];
		int fam;
		if (strcmp(o->name, "--address") == 0) {
			if (!addr_seen) {
				for (size_t k = 0; k < m->naddresses; k++)
					free(m->addresses[k]);
				m->naddresses = 0;
				addr_seen = true;
			}
			if (val_member_address(o->value, buf, &fam, why))
				return ctl_invalid(c, "--address: %s", why);
			/* A repeated address is likely a typo for another: say so, do not drop it. */
			if (!cfg_member_add_address(m, buf, fam)) {
				char as[sizeof(buf) + 8] = "";
				if (strcmp(o->value, buf) != 0)
					snprintf(as, sizeof(as), " (as %s)", buf);
				return ctl_invalid(c, "--address: %s appears twice%s", o->value,
						   as);
			}
			if (m->naddresses > CFG_ADDRESSES_MAX)
				return ctl_invalid(c, "--address: more than %d addresses",
						   CFG_ADDRESSES_MAX);
		} else if (strcmp(o->name, "--network") == 0) {
			if (!net_seen) {
				for (size_t k = 0; k < m->nnetworks; k++)
					free(m->networks[k]);
				m->nnetworks = 0;
				net_seen = true;
			}
			if (!*o->value && !add)
				continue;
			if (val_cidr(o->value, buf, why))
				return ctl_invalid(c, "--network: %s", why);
			cfg_member_add_network(m, buf);
			if (m->nnetworks > CFG_NETWORKS_MAX)
				return ctl_invalid(c, "--network: more than %d networks",
						   CFG_NETWORKS_MAX);
		}
	}
	if (add && !addr_seen)
		return ctl_invalid(c, "--address: at least one address is required");
	if ((s = ctl_arg(a, "--weight"))) {
		if (val_uint(s, 0, 65535, &v, why))
			return ctl_invalid(c, "--weight: %s", why);
		m->weight = (uint16_t)v;
	}
	if ((s = ctl_arg(a, "--priority"))) {
		if (val_uint(s, 1, 255, &v, why))
			return ctl_invalid(c, "--priority: %s", why);
		m->priority = (uint8_t)v;
	}
	if ((s = ctl_arg(a, "--location"))) {
		if (!*s && !add) {
			m->has_location = false;
			m->latitude = m->longitude = 0;
		} else {
			if (val_location(s, &m->latitude, &m->longitude, why))
				return ctl_invalid(c, "--location: %s", why);
			m->has_location = true;
		}
	}
	if ((s = ctl_arg(a, "--country"))) {
		char *list = NULL;
		if (*s || add) {
			if (val_countries(s, &list, why))
				return ctl_invalid(c, "--country: %s", why);
		}
		free(m->countries);
		m->countries = list;
	}
	if ((s = ctl_arg(a, "--continent"))) {
		char *list = NULL;
		if (*s || add) {
			if (val_continents(s, &list, why))
				return ctl_invalid(c, "--continent: %s", why);
		}
		free(m->continents);
		m->continents = list;
	}
	return CTL_OK;
}

int cmd_member_add(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char pool[256];
	db_member_t m = { 0 };
	db_config_t *cfg = NULL;
	sbuf_t sum = { 0 };
	int ret;

	PARSE_ARGS(c, argc, argv, member_opts, &a);
	if ((ret = member_args(c, &a, 2, "member add POOL MEMBER --address IP [options]", pool)))
		return ret;
	cfg_member_defaults(&m, a.pos[1]);
	if ((ret = member_opts_apply(c, &a, &m, true)) || (ret = ctl_open(c)) ||
	    (ret = ctl_begin_change(c, &cfg)))
		goto out;
	const db_pool_t *p = db_config_pool(cfg, pool);
	if (!p) {
		ret = ctl_fail(c, "no pool %s", pool);
		goto out;
	}
	if (db_pool_member(p, m.name)) {
		ret = ctl_fail(c, "member %s already exists in pool %s", m.name, pool);
		goto out;
	}
	if (p->nmembers >= CFG_MEMBERS_MAX) {
		ret = ctl_fail(c, "pool %s already has %d members", pool, CFG_MEMBERS_MAX);
		goto out;
	}
	if ((ret = db_member_insert(c->db, pool, &m))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	sbuf_printf(&sum, "+ member %s/%s", pool, m.name);
	ret = ctl_commit_change(c, sum.s);
out:
	db_member_clear(&m);
	db_config_free(cfg);
	sbuf_free(&sum);
	return ret;
}

int cmd_member_set(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char pool[256];
	db_member_t m = { 0 };
	db_config_t *cfg = NULL;
	sbuf_t sum = { 0 };
	int ret;

	PARSE_ARGS(c, argc, argv, member_opts, &a);
	if ((ret = member_args(c, &a, 2, "member set POOL MEMBER [options]", pool)))
		return ret;
	/* Validate on a scratch member first: exit 2 must not depend on the database. */
	cfg_member_defaults(&m, a.pos[1]);
	ret = member_opts_apply(c, &a, &m, false);
	db_member_clear(&m);
	if (ret || (ret = ctl_open(c)) || (ret = ctl_begin_change(c, &cfg)))
		goto out;
	const db_pool_t *p = db_config_pool(cfg, pool);
	if (!p) {
		ret = ctl_fail(c, "no pool %s", pool);
		goto out;
	}
	const db_member_t *old = db_pool_member(p, a.pos[1]);
	if (!old) {
		ret = ctl_fail(c, "no member %s in pool %s", a.pos[1], pool);
		goto out;
	}
	cfg_member_copy(&m, old);
	member_opts_apply(c, &a, &m, false);
	if (!diff_member(&sum, pool, old, &m)) {
		printf("no changes\n");
		ret = CTL_OK;
		goto out;
	}
	if ((ret = db_member_update(c->db, pool, &m))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	sum.s[--sum.len] = '\0';
	ret = ctl_commit_change(c, sum.s);
out:
	db_member_clear(&m);
	db_config_free(cfg);
	sbuf_free(&sum);
	return ret;
}

/* Find pool and member in cfg, or print why not. */
static int find_member(ctl_t *c, const db_config_t *cfg, const char *pool, const char *member,
		       const db_member_t **out)
{
	const db_pool_t *p = db_config_pool(cfg, pool);
	if (!p)
		return ctl_fail(c, "no pool %s", pool);
	*out = db_pool_member(p, member);
	if (!*out)
		return ctl_fail(c, "no member %s in pool %s", member, pool);
	return CTL_OK;
}

int cmd_member_rm(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char pool[256], sum[400];
	const db_member_t *m;
	db_config_t *cfg = NULL;
	int ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if ((ret = member_args(c, &a, 2, "member rm POOL MEMBER", pool)) || (ret = ctl_open(c)) ||
	    (ret = ctl_begin_change(c, &cfg)) || (ret = find_member(c, cfg, pool, a.pos[1], &m)))
		goto out;
	if ((ret = db_member_delete(c->db, pool, a.pos[1]))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	snprintf(sum, sizeof(sum), "- member %s/%s", pool, a.pos[1]);
	ret = ctl_commit_change(c, sum);
out:
	db_config_free(cfg);
	return ret;
}

int cmd_member_state(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char pool[256], sum[400];
	const db_member_t *m;
	db_config_t *cfg = NULL;
	int ret, admin;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if ((ret = member_args(c, &a, 3, "member state POOL MEMBER auto|up|down|drain", pool)))
		return ret;
	admin = db_admin_parse(a.pos[2]);
	if (admin < 0)
		return ctl_invalid(c, "STATE: %s is not auto, up, down or drain", a.pos[2]);
	if ((ret = ctl_open(c)) || (ret = ctl_begin_change(c, &cfg)) ||
	    (ret = find_member(c, cfg, pool, a.pos[1], &m)))
		goto out;
	if (m->admin == admin) {
		printf("no changes\n");
		goto out;
	}
	if ((ret = db_member_set_admin(c->db, pool, a.pos[1], admin))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	snprintf(sum, sizeof(sum), "~ member %s/%s admin %s -> %s", pool, a.pos[1],
		 db_admin_name(m->admin), db_admin_name(admin));
	ret = ctl_commit_change(c, sum);
out:
	db_config_free(cfg);
	return ret;
}

/* ---- checks ---- */

static const ctl_optdef_t check_opts[] = {
	{ "--member", true, false },	{ "--type", true, false },     { "--port", true, false },
	{ "--path", true, false },	{ "--host", true, false },     { "--expect", true, false },
	{ "--match", true, false },	{ "--interval", true, false }, { "--timeout", true, false },
	{ "--rise", true, false },	{ "--fall", true, false },     { "--target", true, false },
	{ "--insecure", false, false }, { NULL, false, false },
};

int cmd_check_set(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char pool[256], why[WHY_MAX], what[400], target[64];
	const char *member, *s;
	db_check_t ck = { 0 };
	db_config_t *cfg = NULL;
	sbuf_t sum = { 0 };
	unsigned long v;
	int ret, t;

	PARSE_ARGS(c, argc, argv, check_opts, &a);
	if ((ret = pool_arg(c, &a, 1, "check set POOL [--member MEMBER] --type TYPE [options]",
			    pool)))
		return ret;
	member = ctl_arg(&a, "--member");
	if (member && val_member_name(member, why))
		return ctl_invalid(c, "--member: %s", why);
	if (!(s = ctl_arg(&a, "--type")))
		return ctl_invalid(c, "--type: required (tcp, http or https)");
	if ((t = db_check_type_parse(s)) < 0)
		return ctl_invalid(c, "--type: %s is not tcp, http or https", s);
	ck.type = (uint8_t)t;
	if ((s = ctl_arg(&a, "--port"))) {
		if (val_uint(s, 1, 65535, &v, why))
			return ctl_invalid(c, "--port: %s", why);
		ck.port = (uint16_t)v;
	} else if (ck.type == DB_CHECK_TCP) {
		return ctl_invalid(c, "--port: required for --type tcp");
	}
	static const char *const http_only[] = { "--path", "--host", "--expect", "--match" };
	for (size_t i = 0; i < ARRAY_SIZE(http_only); i++)
		if (ck.type == DB_CHECK_TCP && ctl_arg(&a, http_only[i]))
			return ctl_invalid(c, "%s: only for http and https checks", http_only[i]);
	if ((s = ctl_arg(&a, "--path")) && val_path(s, why))
		return ctl_invalid(c, "--path: %s", why);
	if ((s = ctl_arg(&a, "--host")) && val_host(s, why))
		return ctl_invalid(c, "--host: %s", why);
	if ((s = ctl_arg(&a, "--expect")) && val_expect(s, why))
		return ctl_invalid(c, "--expect: %s", why);
	if ((s = ctl_arg(&a, "--match")) && val_match(s, why))
		return ctl_invalid(c, "--match: %s", why);
	ck.interval_ms = 10000;
	if ((s = ctl_arg(&a, "--interval")) && val_seconds(s, 1000, 3600000, &ck.interval_ms, why))
		return ctl_invalid(c, "--interval: %s", why);
	ck.timeout_ms = ck.interval_ms / 2 < 2000 ? ck.interval_ms / 2 : 2000;
	if ((s = ctl_arg(&a, "--timeout"))) {
		if (val_seconds(s, 1, 3600000, &ck.timeout_ms, why))
			return ctl_invalid(c, "--timeout: %s", why);
		if (ck.timeout_ms >= ck.interval_ms) {
			char iv[16];
			fmt_seconds(iv, sizeof(iv), ck.interval_ms);
			return ctl_invalid(c, "--timeout: %s is not less than the interval (%s s)",
					   s, iv);
		}
	}
	ck.rise = 2;
	ck.fall = 3;
	if ((s = ctl_arg(&a, "--rise"))) {
		if (val_uint(s, 1, 100, &v, why))
			return ctl_invalid(c, "--rise: %s", why);
		ck.rise = (uint8_t)v;
	}
	if ((s = ctl_arg(&a, "--fall"))) {
		if (val_uint(s, 1, 100, &v, why))
			return ctl_invalid(c, "--fall: %s", why);
		ck.fall = (uint8_t)v;
	}
	if ((s = ctl_arg(&a, "--target"))) {
		int fam;
		if (!member)
			return ctl_invalid(c, "--target: only for a member's check (--member)");
		if (val_ip(s, target, &fam, why))
			return ctl_invalid(c, "--target: %s", why);
		ck.target = target;
	}
	ck.insecure = ctl_flag(&a, "--insecure");
	if (ck.insecure && ck.type != DB_CHECK_HTTPS)
		return ctl_invalid(c, "--insecure: only for https checks");
	/* Borrowed strings: ck is never freed, its pointers are argv's. */
	ck.path = (char *)ctl_arg(&a, "--path");
	ck.host = (char *)ctl_arg(&a, "--host");
	ck.expect = (char *)ctl_arg(&a, "--expect");
	ck.match = (char *)ctl_arg(&a, "--match");

	if ((ret = ctl_open(c)) || (ret = ctl_begin_change(c, &cfg)))
		goto out;
	const db_pool_t *p = db_config_pool(cfg, pool);
	const db_check_t *old;
	if (!p) {
		ret = ctl_fail(c, "no pool %s", pool);
		goto out;
	}
	if (member) {
		const db_member_t *m;
		if ((ret = find_member(c, cfg, pool, member, &m)))
			goto out;
		old = m->check;
		snprintf(what, sizeof(what), "%s/%s", pool, member);
	} else {
		old = p->check;
		snprintf(what, sizeof(what), "%s", pool);
	}
	if (!diff_check(&sum, what, old, &ck)) {
		printf("no changes\n");
		ret = CTL_OK;
		goto out;
	}
	if ((ret = db_check_put(c->db, pool, member, &ck))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	sum.s[--sum.len] = '\0';
	ret = ctl_commit_change(c, sum.s);
out:
	db_config_free(cfg);
	sbuf_free(&sum);
	return ret;
}

static const ctl_optdef_t check_rm_opts[] = {
	{ "--member", true, false },
	{ NULL, false, false },
};

int cmd_check_rm(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char pool[256], why[WHY_MAX], sum[400];
	const char *member;
	db_config_t *cfg = NULL;
	const db_check_t *old;
	int ret;

	PARSE_ARGS(c, argc, argv, check_rm_opts, &a);
	if ((ret = pool_arg(c, &a, 1, "check rm POOL [--member MEMBER]", pool)))
		return ret;
	member = ctl_arg(&a, "--member");
	if (member && val_member_name(member, why))
		return ctl_invalid(c, "--member: %s", why);
	if ((ret = ctl_open(c)) || (ret = ctl_begin_change(c, &cfg)))
		goto out;
	const db_pool_t *p = db_config_pool(cfg, pool);
	if (!p) {
		ret = ctl_fail(c, "no pool %s", pool);
		goto out;
	}
	if (member) {
		const db_member_t *m;
		if ((ret = find_member(c, cfg, pool, member, &m)))
			goto out;
		old = m->check;
		snprintf(sum, sizeof(sum), "- check %s/%s", pool, member);
	} else {
		old = p->check;
		snprintf(sum, sizeof(sum), "- check %s", pool);
	}
	if (!old) {
		ret = ctl_fail(c, "no check on %s", sum + 8);
		goto out;
	}
	if ((ret = db_check_delete(c->db, pool, member))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	ret = ctl_commit_change(c, sum);
out:
	db_config_free(cfg);
	return ret;
}
