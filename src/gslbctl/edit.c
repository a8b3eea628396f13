/* SPDX-License-Identifier: MIT */
/* gslbctl's commands that change the configuration: init, pool, member and check. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/health.h"
#include "gslbctl.h"

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

/* ---- what the change commands share ---- */

/* "P" or "P/M", as messages and the journal name what a command changes. */
#define WHAT_LEN (DNS_NAME_MAX + 1 + LB_MEMBER_NAME_MAX + 1)

/* What a change command's edit finds in the configuration before it runs. */
enum find {
	FIND_NOTHING = 0, /* pool add */
	FIND_POOL,	  /* the pool, or exit 1 */
	FIND_MEMBER,	  /* the pool and its member r->member, or exit 1 */
	FIND_CHECK,	  /* the pool, and r->member when given: the check there, or NULL */
};

struct change_cmd;

/*
 * A change command's arguments once checked (before the database is
 * opened), and then what its edit works on (inside the transaction).
 */
struct request {
	const struct change_cmd *cmd;
	const ctl_args_t *a;
	char pool[DNS_NAME_MAX + 1];
	const char *member; /* POOL MEMBER commands, and --member of a check's */
	db_pool_t p;	    /* pool add and set: the options on a new pool's defaults */
	db_member_t m;	    /* member add and set: the options on a new member's defaults */
	int admin;	    /* member state */
	db_check_t ck;	    /* check set: the new check, its strings borrowed */
	char target[INET6_ADDRSTRLEN]; /* ck.target */

	/* What change_edit() found, borrowed from the configuration. */
	const db_config_t *cfg;
	const db_pool_t *cur_pool;
	const db_member_t *cur_member;
	const db_check_t *cur_check;
	char what[WHAT_LEN];
};

/*
 * What one change command is: its options, its positional arguments (POOL,
 * POOL MEMBER or POOL MEMBER STATE), the check of the rest of its arguments
 * into the request, which runs before the database is opened so that an
 * invalid value is exit 2 whatever the database holds, what its edit needs
 * found, and the edit, which adds the journal's lines to sum as a
 * ctl_edit_cb does.
 */
struct change_cmd {
	const ctl_optdef_t *opts;
	size_t npos;
	const char *usage;
	int (*check)(ctl_t *c, struct request *r); /* NULL: nothing more to check */
	enum find find;
	int (*edit)(ctl_t *c, struct request *r, FILE *sum);
	bool warn_unserved; /* pool add: warn when gslbd's zones do not hold the pool */
};

/* The ctl_edit_cb of every change command: find what it works on, then edit. */
static int change_edit(ctl_t *c, const db_config_t *cfg, void *arg, FILE *sum)
{
	struct request *r = arg;
	enum find find = r->cmd->find;

	r->cfg = cfg;
	if (find != FIND_NOTHING && !(r->cur_pool = db_config_pool(cfg, r->pool)))
		return ctl_fail(c, "no pool %s", r->pool);
	if (find >= FIND_MEMBER && r->member &&
	    !(r->cur_member = db_pool_member(r->cur_pool, r->member)))
		return ctl_fail(c, "no member %s in pool %s", r->member, r->pool);
	if (find == FIND_CHECK)
		r->cur_check = r->cur_member ? r->cur_member->check : r->cur_pool->check;
	if (r->member)
		snprintf(r->what, sizeof(r->what), "%s/%s", r->pool, r->member);
	else
		snprintf(r->what, sizeof(r->what), "%s", r->pool);
	return r->cmd->edit(c, r, sum);
}

static int change_cmd_run(ctl_t *c, int argc, char **argv, const struct change_cmd *cmd)
{
	struct request r = { .cmd = cmd };
	char why[WHY_MAX];
	ctl_args_t a;
	int ret;

	PARSE_ARGS(c, argc, argv, cmd->opts, &a);
	r.a = &a;
	if (a.npos < cmd->npos)
		return ctl_invalid(c, "missing arguments (usage: %s)", cmd->usage);
	if (a.npos > cmd->npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[cmd->npos]);
	if (val_pool_name(a.pos[0], r.pool, sizeof(r.pool), why))
		return ctl_invalid(c, "POOL: %s", why);
	if (cmd->npos > 1 && val_member_name(a.pos[1], why))
		return ctl_invalid(c, "MEMBER: %s", why);
	r.member = cmd->npos > 1 ? a.pos[1] : NULL;
	if (!(ret = cmd->check ? cmd->check(c, &r) : CTL_OK))
		ret = ctl_change_run_pool(c, r.pool, change_edit, &r);
	if (ret == CTL_OK && cmd->warn_unserved) {
		const char *name = r.pool;
		ctl_warn_unserved(c, &name, 1);
	}
	free(r.p.name);
	db_member_clear(&r.m);
	return ret;
}

/*
 * The value of number f's option into *v: 1 when it is given, 0 when it is
 * not (*v as it was), -1 after saying why it is refused.
 */
static int opt_num(ctl_t *c, const ctl_args_t *a, enum num_field f, uint32_t *v)
{
	char why[WHY_MAX];
	const char *s = ctl_arg(a, num_fields[f].opt);

	if (!s)
		return 0;
	if (val_num(f, s, v, why)) {
		ctl_invalid(c, "%s: %s", num_fields[f].opt, why);
		return -1;
	}
	return 1;
}

/* ---- pools ---- */

static const ctl_optdef_t pool_opts[] = {
	{ "--policy", true, false },	   { "--ttl", true, false },
	{ "--degraded-ttl", true, false }, { "--answers", true, false },
	{ "--fallback", true, false },	   { NULL, false, false },
};

static int pool_opts_apply(ctl_t *c, const ctl_args_t *a, db_pool_t *p)
{
	const char *s;
	uint32_t v;
	int got;

	if ((s = ctl_arg(a, "--policy"))) {
		int pol = db_policy_parse(s);
		if (pol < 0)
			return ctl_invalid(c, "--policy: %s is not weighted, failover or geo", s);
		p->policy = (uint8_t)pol;
	}
	if (opt_num(c, a, NUM_TTL, &p->ttl) < 0)
		return CTL_INVALID;
	if ((s = ctl_arg(a, "--degraded-ttl")) && strcmp(s, "default") == 0)
		p->degraded_ttl = -1;
	else if ((got = opt_num(c, a, NUM_DEGRADED_TTL, &v)) < 0)
		return CTL_INVALID;
	else if (got)
		p->degraded_ttl = (int32_t)v;
	if ((got = opt_num(c, a, NUM_ANSWERS, &v)) < 0)
		return CTL_INVALID;
	if (got)
		p->answers = (uint8_t)v;
	if ((s = ctl_arg(a, "--fallback"))) {
		if (strcmp(s, "all") != 0 && strcmp(s, "none") != 0)
			return ctl_invalid(c, "--fallback: %s is not all or none", s);
		p->fallback_all = strcmp(s, "all") == 0;
	}
	return CTL_OK;
}

/* The options on a new pool's defaults: the pool that add creates, or set's values checked. */
static int pool_check(ctl_t *c, struct request *r)
{
	cfg_pool_defaults(&r->p, r->pool);
	return pool_opts_apply(c, r->a, &r->p);
}

static int pool_add_edit(ctl_t *c, struct request *r, FILE *sum)
{
	if (db_config_pool(r->cfg, r->pool))
		return ctl_fail(c, "pool %s already exists", r->pool);
	fprintf(sum, "+ pool %s\n", r->what);
	return db_pool_insert(c->db, &r->p);
}

int cmd_pool_add(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.opts = pool_opts,
		.npos = 1,
		.usage = "pool add NAME [options]",
		.check = pool_check,
		.find = FIND_NOTHING,
		.edit = pool_add_edit,
		.warn_unserved = true,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

static int pool_set_edit(ctl_t *c, struct request *r, FILE *sum)
{
	db_pool_t p = *r->cur_pool;
	pool_opts_apply(c, r->a, &p);
	return diff_pool(sum, r->cur_pool, &p) ? db_pool_update(c->db, &p) : CTL_OK;
}

int cmd_pool_set(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.opts = pool_opts,
		.npos = 1,
		.usage = "pool set NAME [options]",
		.check = pool_check,
		.find = FIND_POOL,
		.edit = pool_set_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

static int pool_rm_edit(ctl_t *c, struct request *r, FILE *sum)
{
	fprintf(sum, "- pool %s\n", r->what);
	return db_pool_delete(c->db, r->pool);
}

int cmd_pool_rm(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.npos = 1,
		.usage = "pool rm NAME",
		.find = FIND_POOL,
		.edit = pool_rm_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

/* ---- members ---- */

static const ctl_optdef_t member_opts[] = {
	{ "--address", true, true },   { "--weight", true, false },  { "--priority", true, false },
	{ "--location", true, false }, { "--country", true, false }, { "--continent", true, false },
	{ "--network", true, true },   { "--alias", true, false },   { NULL, false, false },
};

/*
 * Apply member options to m.  For set, only the options given change;
 * --address and --network replace their lists, an empty value clears (and
 * --alias '' removes the alias).
 */
static int member_opts_apply(ctl_t *c, const ctl_args_t *a, db_member_t *m, bool add)
{
	char why[WHY_MAX], buf[64];
	const char *s;
	uint32_t v;
	int got;
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
			/* A member with an alias may do without addresses of its own. */
			if (!*o->value && !add)
				continue;
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
	if ((s = ctl_arg(a, "--alias"))) {
		char alias[DNS_NAME_MAX + 1];
		free(m->alias);
		m->alias = NULL;
		if (*s || add) {
			if (val_alias(s, alias, sizeof(alias), why))
				return ctl_invalid(c, "--alias: %s", why);
			m->alias = gslb_strdup(alias);
		}
	}
	/* README "Alias members": addresses, an alias, or both; a member add with neither is 2. */
	if (add && !m->naddresses && !m->alias)
		return ctl_invalid(c,
				   "--address: at least one address (or an --alias) is required");
	if ((got = opt_num(c, a, NUM_WEIGHT, &v)) < 0)
		return CTL_INVALID;
	if (got)
		m->weight = (uint16_t)v;
	if ((got = opt_num(c, a, NUM_PRIORITY, &v)) < 0)
		return CTL_INVALID;
	if (got)
		m->priority = (uint8_t)v;
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

/* The options on a new member's defaults: the member that add creates, or set's values checked. */
static int member_add_check(ctl_t *c, struct request *r)
{
	cfg_member_defaults(&r->m, r->member);
	return member_opts_apply(c, r->a, &r->m, true);
}

static int member_set_check(ctl_t *c, struct request *r)
{
	cfg_member_defaults(&r->m, r->member);
	return member_opts_apply(c, r->a, &r->m, false);
}

static int member_add_edit(ctl_t *c, struct request *r, FILE *sum)
{
	if (db_pool_member(r->cur_pool, r->member))
		return ctl_fail(c, "member %s already exists in pool %s", r->member, r->pool);
	if (r->cur_pool->nmembers >= CFG_MEMBERS_MAX)
		return ctl_fail(c, "pool %s already has %d members", r->pool, CFG_MEMBERS_MAX);
	diff_member_added(sum, r->pool, &r->m);
	return db_member_insert(c->db, r->pool, &r->m);
}

int cmd_member_add(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.opts = member_opts,
		.npos = 2,
		.usage = "member add POOL MEMBER (--address IP|--alias HOST)... [options]",
		.check = member_add_check,
		.find = FIND_POOL,
		.edit = member_add_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

static int member_set_edit(ctl_t *c, struct request *r, FILE *sum)
{
	db_member_t m;
	int ret = CTL_OK;

	cfg_member_copy(&m, r->cur_member);
	member_opts_apply(c, r->a, &m, false);
	/* Nothing left to serve: refused as member add refuses it, whatever else was given. */
	if (!m.naddresses && !m.alias)
		ret = ctl_invalid(c, "%s: %s would have no address and no alias",
				  ctl_arg(r->a, "--alias") ? "--alias" : "--address", r->what);
	else if (diff_member(sum, r->pool, r->cur_member, &m))
		ret = db_member_update(c->db, r->pool, &m);
	db_member_clear(&m);
	return ret;
}

int cmd_member_set(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.opts = member_opts,
		.npos = 2,
		.usage = "member set POOL MEMBER [options]",
		.check = member_set_check,
		.find = FIND_MEMBER,
		.edit = member_set_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

static int member_rm_edit(ctl_t *c, struct request *r, FILE *sum)
{
	fprintf(sum, "- member %s\n", r->what);
	return db_member_delete(c->db, r->pool, r->member);
}

int cmd_member_rm(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.npos = 2,
		.usage = "member rm POOL MEMBER",
		.find = FIND_MEMBER,
		.edit = member_rm_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

static int member_state_check(ctl_t *c, struct request *r)
{
	const char *s = r->a->pos[2];
	r->admin = db_admin_parse(s);
	return r->admin < 0 ? ctl_invalid(c, "STATE: %s is not auto, up, down or drain", s)
			    : CTL_OK;
}

static int member_state_edit(ctl_t *c, struct request *r, FILE *sum)
{
	if (r->cur_member->admin == r->admin)
		return CTL_OK;
	fprintf(sum, "~ member %s admin %s -> %s\n", r->what, db_admin_name(r->cur_member->admin),
		db_admin_name(r->admin));
	return db_member_set_admin(c->db, r->pool, r->member, r->admin);
}

int cmd_member_state(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.npos = 3,
		.usage = "member state POOL MEMBER auto|up|down|drain",
		.check = member_state_check,
		.find = FIND_MEMBER,
		.edit = member_state_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

/* ---- checks ---- */

static const ctl_optdef_t check_opts[] = {
	{ "--member", true, false },	{ "--type", true, false },     { "--port", true, false },
	{ "--path", true, false },	{ "--host", true, false },     { "--expect", true, false },
	{ "--match", true, false },	{ "--interval", true, false }, { "--timeout", true, false },
	{ "--rise", true, false },	{ "--fall", true, false },     { "--target", true, false },
	{ "--insecure", false, false }, { "--quorum", true, false },   { NULL, false, false },
};

/* --member of a check command into r->member. */
static int check_member_arg(ctl_t *c, struct request *r)
{
	char why[WHY_MAX];
	r->member = ctl_arg(r->a, "--member");
	if (r->member && val_member_name(r->member, why))
		return ctl_invalid(c, "--member: %s", why);
	return CTL_OK;
}

/*
 * The check the options describe into ck; options not given take their
 * defaults.  ck's strings are borrowed from a, target's buffer from the caller.
 */
static int check_opts_apply(ctl_t *c, const ctl_args_t *a, bool member, db_check_t *ck,
			    char target[INET6_ADDRSTRLEN])
{
	char why[WHY_MAX];
	const char *s;
	uint32_t v;
	int t, got;

	if (!(s = ctl_arg(a, "--type")))
		return ctl_invalid(c, "--type: required (tcp, http or https)");
	if ((t = db_check_type_parse(s)) < 0)
		return ctl_invalid(c, "--type: %s is not tcp, http or https", s);
	ck->type = (uint8_t)t;
	if ((got = opt_num(c, a, NUM_PORT, &v)) < 0)
		return CTL_INVALID;
	if (got)
		ck->port = (uint16_t)v;
	else if (ck->type == DB_CHECK_TCP)
		return ctl_invalid(c, "--port: required for --type tcp");
	static const char *const http_only[] = { "--path", "--host", "--expect", "--match" };
	for (size_t i = 0; i < ARRAY_SIZE(http_only); i++)
		if (ck->type == DB_CHECK_TCP && ctl_arg(a, http_only[i]))
			return ctl_invalid(c, "%s: only for http and https checks", http_only[i]);
	if ((s = ctl_arg(a, "--path")) && val_path(s, why))
		return ctl_invalid(c, "--path: %s", why);
	if ((s = ctl_arg(a, "--host")) && val_host(s, why))
		return ctl_invalid(c, "--host: %s", why);
	if ((s = ctl_arg(a, "--expect")) && val_expect(s, why))
		return ctl_invalid(c, "--expect: %s", why);
	if ((s = ctl_arg(a, "--match")) && val_match(s, why))
		return ctl_invalid(c, "--match: %s", why);
	ck->interval_ms = HEALTH_INTERVAL_MS_DEFAULT;
	if (opt_num(c, a, NUM_INTERVAL, &ck->interval_ms) < 0)
		return CTL_INVALID;
	ck->timeout_ms = ck->interval_ms / 2 < HEALTH_TIMEOUT_MS_DEFAULT
				 ? ck->interval_ms / 2
				 : HEALTH_TIMEOUT_MS_DEFAULT;
	if ((got = opt_num(c, a, NUM_TIMEOUT, &ck->timeout_ms)) < 0)
		return CTL_INVALID;
	if (got && ck->timeout_ms >= ck->interval_ms) {
		char iv[16];
		fmt_seconds(iv, sizeof(iv), ck->interval_ms);
		return ctl_invalid(c, "--timeout: %s is not less than the interval (%s s)",
				   ctl_arg(a, "--timeout"), iv);
	}
	ck->rise = HEALTH_RISE_DEFAULT;
	ck->fall = HEALTH_FALL_DEFAULT;
	if ((got = opt_num(c, a, NUM_RISE, &v)) < 0)
		return CTL_INVALID;
	if (got)
		ck->rise = (uint8_t)v;
	if ((got = opt_num(c, a, NUM_FALL, &v)) < 0)
		return CTL_INVALID;
	if (got)
		ck->fall = (uint8_t)v;
	if ((s = ctl_arg(a, "--target"))) {
		int fam;
		if (!member)
			return ctl_invalid(c, "--target: only for a member's check (--member)");
		if (val_ip(s, target, &fam, why))
			return ctl_invalid(c, "--target: %s", why);
		ck->target = target;
	}
	ck->insecure = ctl_flag(a, "--insecure");
	if (ck->insecure && ck->type != DB_CHECK_HTTPS)
		return ctl_invalid(c, "--insecure: only for https checks");
	/*
	 * How a cluster's nodes' verdicts combine (README "Two or more
	 * nameservers"); stored on a standalone node too, which has only its own.
	 */
	if ((s = ctl_arg(a, "--quorum"))) {
		int q = db_quorum_parse(s);
		if (q < 0)
			return ctl_invalid(c, "--quorum: %s is not majority, any, all or local", s);
		ck->quorum = (uint8_t)q;
	}
	ck->path = (char *)ctl_arg(a, "--path");
	ck->host = (char *)ctl_arg(a, "--host");
	ck->expect = (char *)ctl_arg(a, "--expect");
	ck->match = (char *)ctl_arg(a, "--match");
	return CTL_OK;
}

static int check_set_check(ctl_t *c, struct request *r)
{
	int ret = check_member_arg(c, r);
	return ret ? ret : check_opts_apply(c, r->a, r->member != NULL, &r->ck, r->target);
}

static int check_set_edit(ctl_t *c, struct request *r, FILE *sum)
{
	if (!diff_check(sum, r->what, r->cur_check, &r->ck))
		return CTL_OK;
	return db_check_put(c->db, r->pool, r->member, &r->ck);
}

int cmd_check_set(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.opts = check_opts,
		.npos = 1,
		.usage = "check set POOL [--member MEMBER] --type TYPE [options]",
		.check = check_set_check,
		.find = FIND_CHECK,
		.edit = check_set_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}

static const ctl_optdef_t check_rm_opts[] = {
	{ "--member", true, false },
	{ NULL, false, false },
};

static int check_rm_edit(ctl_t *c, struct request *r, FILE *sum)
{
	if (!r->cur_check)
		return ctl_fail(c, "no check on %s", r->what);
	diff_check(sum, r->what, r->cur_check, NULL);
	return db_check_delete(c->db, r->pool, r->member);
}

int cmd_check_rm(ctl_t *c, int argc, char **argv)
{
	static const struct change_cmd cmd = {
		.opts = check_rm_opts,
		.npos = 1,
		.usage = "check rm POOL [--member MEMBER]",
		.check = check_member_arg,
		.find = FIND_CHECK,
		.edit = check_rm_edit,
	};
	return change_cmd_run(c, argc, argv, &cmd);
}
