/* SPDX-License-Identifier: MIT */
/* gslbctl: manage gslbd's SQLite database (pools, members, checks, journal) from the shell. */

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "gslb/conffile.h"
#include "gslb/core.h"
#include "gslb/paths.h"
#include "gslbctl.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

/*
 * An error: one line on stderr, "gslbctl: CMD: MESSAGE"; with --json one JSON object instead,
 * {"error": "CMD: MESSAGE", "status": N} with N the exit status, so a script reading JSON
 * reads its errors the same way (gslbctl(8), OUTPUT).  Status 0 is a warning, which changes
 * no exit status: "gslbctl: CMD: warning: MESSAGE", or {"warning": "CMD: MESSAGE"}.
 */
static void emit(ctl_t *c, int status, char *line)
{
	char text[1200];
	/* One line, whatever the values in it contain. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	bool json = c && c->json;
	if (c && c->cmd)
		snprintf(text, sizeof(text), "%s: %s%s", c->cmd,
			 status || json ? "" : "warning: ", line);
	else
		snprintf(text, sizeof(text), "%s%s", status || json ? "" : "warning: ", line);
	if (json) {
		json_t *o = status ? json_pack("{s:s, s:i}", "error", text, "status", status)
				   : json_pack("{s:s}", "warning", text);
		char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (j) {
			fprintf(stderr, "%s\n", j);
			free(j);
			return;
		}
	}
	fprintf(stderr, "gslbctl: %s\n", text);
}

static void __attribute__((format(printf, 3, 0)))
vmsg(ctl_t *c, int status, const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	emit(c, status, line);
}

void ctl_warn(ctl_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(c, 0, fmt, ap);
	va_end(ap);
}

int ctl_invalid(ctl_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(c, CTL_INVALID, fmt, ap);
	va_end(ap);
	return CTL_INVALID;
}

int ctl_fail(ctl_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(c, CTL_FAIL, fmt, ap);
	va_end(ap);
	return CTL_FAIL;
}

int ctl_db_fail(ctl_t *c, int err)
{
	if (c->db)
		db_rollback(c->db);
	if (err == -EBUSY)
		return ctl_fail(c, "database %s is locked (waited %d ms)", c->db_path,
				DB_BUSY_TIMEOUT_MS);
	if (c->db && *db_errmsg(c->db))
		return ctl_fail(c, "%s", db_errmsg(c->db));
	return ctl_fail(c, "database %s: %s", c->db_path, gslb_strerror(err));
}

int ctl_open(ctl_t *c)
{
	int v, ret;

	ret = db_open(c->db_path, 0, &c->db);
	if (ret == -ENOENT)
		return ctl_fail(c, "database %s does not exist (create it with gslbctl init)",
				c->db_path);
	if (ret)
		return ctl_db_fail(c, ret);
	ret = db_version(c->db, &v);
	if (ret)
		return ctl_db_fail(c, ret);
	if (v == 0)
		return ctl_fail(c, "database %s has schema version %d, not %d (run gslbctl init)",
				c->db_path, v, DB_SCHEMA_VERSION);
	if (v < DB_SCHEMA_VERSION) {
		/* A file of an older gslbd: brought up to date in one transaction, data kept. */
		ret = db_migrate(c->db, NULL);
		if (ret)
			return ctl_db_fail(c, ret);
		return CTL_OK;
	}
	if (v > DB_SCHEMA_VERSION)
		return ctl_fail(c,
				"database %s has schema version %d, newer than this gslbctl (%d)",
				c->db_path, v, DB_SCHEMA_VERSION);
	return CTL_OK;
}

/*
 * BEGIN IMMEDIATE and load the configuration inside it, or only the pool
 * named pool when it is not NULL; CTL_OK or CTL_FAIL.
 */
static int begin_change(ctl_t *c, const char *pool, db_config_t **cfg)
{
	int ret = db_begin_write(c->db);
	if (ret)
		return ctl_db_fail(c, ret);
	ret = pool ? db_config_load_pools(c->db, &pool, 1, cfg) : db_config_load(c->db, cfg);
	if (ret)
		return ctl_db_fail(c, ret);
	return CTL_OK;
}

char *ctl_actor(void)
{
	char host[256] = "localhost", buf[512];
	const char *user = getenv("SUDO_USER");
	struct passwd *pw = getpwuid(getuid());

	/* Under sudo the journal names who ran it, not root. */
	if (user && !*user)
		user = NULL;
	if (!user && pw && pw->pw_name)
		user = pw->pw_name;
	if (!user)
		user = getenv("USER");
	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	if (!user)
		return gslb_strdup("gslbctl");
	snprintf(buf, sizeof(buf), "%s@%s", user, host);
	return gslb_strdup(buf);
}

/* Journal the change with summary and commit; rolls back on failure. */
static int commit_change(ctl_t *c, const char *summary)
{
	char *who = ctl_actor();
	int ret = db_journal_add(c->db, who, c->cmdline, summary);
	free(who);
	if (!ret)
		ret = db_commit(c->db);
	if (ret)
		return ctl_db_fail(c, ret);
	return CTL_OK;
}

void ctl_change_print(const ctl_t *c, const char *summary)
{
	if (!c->quiet && !c->own_output && summary && *summary)
		printf("%s\n", summary);
}

static int change_run(ctl_t *c, const char *pool, ctl_edit_cb edit, void *arg)
{
	db_config_t *cfg = NULL;
	char *sum = NULL;
	size_t len;
	FILE *f;
	bool cluster = false;
	int ret;

	if ((ret = ctl_open(c)) || (ret = ctl_cluster_node(c, true, &cluster)))
		goto out;
	/* A dry run writes nothing anywhere: the local run below shows it as well. */
	if (cluster && !c->dry_run) {
		ret = ctl_cluster_change(c, edit, arg);
		goto out;
	}
	if ((ret = begin_change(c, pool, &cfg)))
		goto out;
	f = cfg_mem_open(&sum, &len);
	ret = edit(c, cfg, arg, f);
	cfg_mem_close(f);
	if (ret < 0)
		ret = ctl_db_fail(c, ret);
	if (ret)
		goto out;
	if (!len) {
		printf("no changes\n");
		goto out;
	}
	if (c->dry_run)
		goto out;
	sum[--len] = '\0';
	ret = commit_change(c, sum);
	if (ret == CTL_OK)
		ctl_change_print(c, sum);
out:
	/* Nothing of a change that failed, found nothing to do or was a dry run is kept. */
	if (c->db)
		db_rollback(c->db);
	db_config_free(cfg);
	free(sum);
	return ret;
}

int ctl_change_run(ctl_t *c, ctl_edit_cb edit, void *arg)
{
	return change_run(c, NULL, edit, arg);
}

int ctl_change_run_pool(ctl_t *c, const char *pool, ctl_edit_cb edit, void *arg)
{
	return change_run(c, pool, edit, arg);
}

/* ---- arguments ---- */

static const ctl_optdef_t global_opts[] = {
	{ "--db", true, false },
	{ "--json", false, false },
	{ "--help", false, false },
	{ "--cluster", true, false },
	{ "--cluster-prefix", true, false },
	{ "--no-wait", false, false },
	{ "--quiet", false, false },
	{ "--control", true, false },
	{ NULL, false, false },
};

/* --cluster URL[,URL...]: each an http:// or https:// URL with a host. */
static int cluster_urls_check(ctl_t *c, const char *v)
{
	if (!*v)
		return ctl_invalid(c, "--cluster: needs a URL");
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");
		size_t skip = strncmp(p, "http://", 7) == 0    ? 7
			      : strncmp(p, "https://", 8) == 0 ? 8
							       : 0;
		if (!skip || n <= skip)
			return ctl_invalid(c, "--cluster: %.*s is not an http:// or https:// URL",
					   (int)n, p);
		p += n;
		if (*p == ',' && !*++p)
			return ctl_invalid(c, "--cluster: %s ends with a comma", v);
	}
	c->cluster_urls = v;
	return CTL_OK;
}

/* --cluster-prefix PREFIX: starts and ends with "/" (gslbd(8)). */
static int cluster_prefix_check(ctl_t *c, const char *v)
{
	size_t n = strlen(v);
	if (n < 1 || v[0] != '/' || v[n - 1] != '/')
		return ctl_invalid(c, "--cluster-prefix: %s does not start and end with /", v);
	c->cluster_prefix = v;
	return CTL_OK;
}

/* --control PATH: an absolute path, or none. */
static int control_set(ctl_t *c, const char *v)
{
	if (strcmp(v, "none") != 0 && v[0] != '/')
		return ctl_invalid(c, "--control: '%s' is not an absolute path or none", v);
	c->control = strcmp(v, "none") == 0 ? NULL : v;
	c->control_given = true;
	return CTL_OK;
}

/*
 * A global option other than --db, --json and --help (name as defined, value NULL for a
 * flag): 1 when it was one and is taken, 0 when it is not one, else the exit status.
 */
static int global_opt(ctl_t *c, const char *name, const char *val)
{
	int ret;
	if (strcmp(name, "--cluster") == 0)
		ret = cluster_urls_check(c, val);
	else if (strcmp(name, "--cluster-prefix") == 0)
		ret = cluster_prefix_check(c, val);
	else if (strcmp(name, "--no-wait") == 0)
		ret = (c->no_wait = true, CTL_OK);
	else if (strcmp(name, "--quiet") == 0)
		ret = (c->quiet = true, CTL_OK);
	else if (strcmp(name, "--control") == 0)
		ret = control_set(c, val);
	else
		return 0;
	return ret ? ret : 1;
}

static const ctl_optdef_t *optdef_find(const ctl_optdef_t *defs, const char *name, size_t len)
{
	for (; defs && defs->name; defs++)
		if (strlen(defs->name) == len && memcmp(defs->name, name, len) == 0)
			return defs;
	return NULL;
}

int ctl_args_parse(ctl_t *c, int argc, char **argv, const ctl_optdef_t *defs, ctl_args_t *a)
{
	bool only_pos = false;

	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			if (a->npos == CTL_ARGS_MAX)
				return ctl_invalid(c, "too many arguments");
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = true;
			continue;
		}
		const char *eq = strchr(arg, '=');
		size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		const ctl_optdef_t *d = optdef_find(global_opts, arg, nlen);
		if (!d)
			d = optdef_find(defs, arg, nlen);
		if (!d) {
			if (eq)
				return ctl_invalid(c, "%.*s: unknown option", (int)nlen, arg);
			return ctl_invalid(c, "%s: unknown option", arg);
		}
		const char *val = NULL;
		if (d->has_arg) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return ctl_invalid(c, "%s: needs a value", d->name);
		} else if (eq) {
			return ctl_invalid(c, "%s: takes no value", d->name);
		}
		if (strcmp(d->name, "--help") == 0) {
			a->help = true;
			continue;
		}
		if (strcmp(d->name, "--db") == 0) {
			if (!*val)
				return ctl_invalid(c, "--db: empty file name");
			c->db_path = val;
			continue;
		}
		if (strcmp(d->name, "--json") == 0) {
			c->json = true;
			continue;
		}
		int g = global_opt(c, d->name, val);
		if (g == 1)
			continue;
		if (g)
			return g;
		if (!d->repeat && ctl_arg(a, d->name))
			return ctl_invalid(c, "%s: given more than once", d->name);
		if (a->nopt == CTL_ARGS_MAX)
			return ctl_invalid(c, "too many options");
		a->opt[a->nopt].name = d->name;
		a->opt[a->nopt++].value = val ? val : "";
	}
	return CTL_OK;
}

const char *ctl_arg(const ctl_args_t *a, const char *name)
{
	const char *v = NULL;
	for (size_t i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0)
			v = a->opt[i].value;
	return v;
}

bool ctl_flag(const ctl_args_t *a, const char *name)
{
	return ctl_arg(a, name) != NULL;
}

/* ---- help ---- */

static const struct help {
	const char *cmd, *usage, *text;
} helps[] = {
	{ "init", "init", "Create the database, or upgrade its schema (idempotent)." },
	{ "pool add",
	  "pool add NAME [--policy weighted|failover|geo] [--ttl S] [--degraded-ttl S]\n"
	  "              [--answers N] [--fallback all|none]",
	  "Create a pool.  NAME is a domain name (case-insensitive, stored lowercase with a\n"
	  "trailing dot).  --ttl 0-86400 (default 30), --degraded-ttl 1-86400 (default\n"
	  "min(ttl, 10); 'default' resets it), --answers 1-64 (default 1), --fallback all\n"
	  "(default) answers with every member not down when none is eligible, none answers\n"
	  "NODATA." },
	{ "pool set", "pool set NAME [same options as pool add]",
	  "Change the options given; the others keep their values." },
	{ "pool rm", "pool rm NAME", "Delete a pool with its members and checks." },
	{ "pool list", "pool list", "List the pools (--json for machine-readable output)." },
	{ "pool show", "pool show NAME",
	  "Show a pool with its members and checks (--json: the pool as export writes it)." },
	{ "member add",
	  "member add POOL MEMBER (--address IP|--alias HOST)... [--weight W]\n"
	  "              [--priority P] [--location LAT,LON] [--country LIST]\n"
	  "              [--continent LIST] [--network CIDR]...",
	  "Add a member.  MEMBER is [a-z0-9][a-z0-9_.-]*, at most 63 characters.  --alias: a\n"
	  "host name whose A and AAAA records gslbd resolves and serves as the member's\n"
	  "addresses, beside or instead of --address (one of them is required; --address\n"
	  "repeats, --alias does not).  --weight 0-65535 (default 100), --priority 1-255\n"
	  "(default 1, lower is preferred), --location in decimal degrees (50.11,8.68),\n"
	  "--country a comma list of assigned ISO 3166-1 alpha-2 codes (and XK, Kosovo, as\n"
	  "GeoIP2 returns it; not EU, AP or UK) or CC-SUB subdivisions (US-CA), --continent a\n"
	  "comma list of AF AN AS EU NA OC SA, --network a CIDR prefix with no host bits\n"
	  "(repeatable)." },
	{ "member set", "member set POOL MEMBER [same options as member add]",
	  "Change the options given.  --address replaces the address list, --network the\n"
	  "network list; an empty value (--country '', --location '', --network '') clears,\n"
	  "--alias '' removes the alias, and --address '' the addresses of a member with an\n"
	  "alias." },
	{ "member rm", "member rm POOL MEMBER", "Delete a member." },
	{ "member state", "member state POOL MEMBER auto|up|down|drain",
	  "Set the admin state: auto follows the health checks, up forces healthy, down\n"
	  "removes the member, drain uses it only when no other member is eligible." },
	{ "check set",
	  "check set POOL [--member MEMBER] --type tcp|http|https [--port N] [--path P]\n"
	  "              [--host H] [--expect CODES] [--match TEXT] [--interval S] [--timeout S]\n"
	  "              [--rise N] [--fall N] [--target IP] [--insecure]\n"
	  "              [--quorum majority|any|all|local]",
	  "Set (replace) the health check of a pool, or of one member with --member.\n"
	  "--port 1-65535 (required for tcp; default 80 http, 443 https), --expect like\n"
	  "200-299,301 (default 200-399), --interval 1-3600 s (default 10), --timeout in\n"
	  "seconds, less than the interval (default 2, or half the interval when that is\n"
	  "shorter), --rise/--fall 1-100 (default 2/3), --target only with --member,\n"
	  "--insecure only for https.  --quorum: on a cluster node, how the nodes' verdicts\n"
	  "make the state answered from: down when a majority (default), any or all of the\n"
	  "live nodes say so, or local: this node's own; a standalone node always uses its\n"
	  "own.  Options not given take their defaults." },
	{ "check rm", "check rm POOL [--member MEMBER]", "Remove a pool's or a member's check." },
	{ "status", "status [POOL] [--zones DIR]",
	  "Every member and address: admin state, health, since when, last probe; and whether\n"
	  "gslbd serves the pool with the zones of --zones DIR (default gslbd's, from -c):\n"
	  "inside a zone and not at or below a delegation.  A --zones DIR that cannot be\n"
	  "read is an error (exit 1); gslbd's directory unreadable shows served as unknown.\n"
	  "A warning on stderr when no gslbd answers on the control socket: the states\n"
	  "shown are then as last stored." },
	{ "history", "history POOL [MEMBER] [--limit N]",
	  "State changes and recent probes of a pool's targets, newest first (default 20)." },
	{ "explain", "explain NAME [--client IP] [--ecs PREFIX] [--type A|AAAA] [--geoip FILE]",
	  "What gslbd would answer for pool NAME and why, step by step, from the same\n"
	  "selection code and the health stored in the database: each member's health,\n"
	  "admin state, weight, rank and chance of being in the answer, the TTL, the ECS\n"
	  "scope, whether the fallback fired, and one sample answer.  --type A (default)\n"
	  "or AAAA; --client IP the resolver; --ecs PREFIX an ECS source prefix\n"
	  "(192.0.2.0/24, host bits zero) that replaces it when longer than 0; --geoip FILE\n"
	  "a MaxMind DB for the client's location (default: gslbd's geoip, from -c)." },
	{ "export", "export", "The whole configuration as JSON on stdout, sorted by name." },
	{ "apply", "apply FILE [--dry-run] [--prune] [--admin]",
	  "Make the configuration match FILE (JSON as export writes it; - is stdin): create\n"
	  "and update pools, members and checks; with --prune also delete what FILE lacks.\n"
	  "Existing members keep their admin state (member state) unless --admin.\n"
	  "Prints each change; --dry-run writes nothing." },
	{ "log", "log [--limit N]",
	  "The change journal, newest first (default 20 entries); on a cluster node, with the\n"
	  "node each change was made on." },
	{ "cluster import", "cluster import [--replace]",
	  "Upload this database's configuration (every pool and zone's DNSSEC keys) and its\n"
	  "journal into the etcd cluster prefix, which must hold no configuration yet;\n"
	  "--replace replaces the one there.  Needs --cluster URL, or the settings gslbd\n"
	  "--cluster recorded." },
	{ "cluster status", "cluster status",
	  "Every node seen in the cluster: live or not, when it was last seen, the etcd\n"
	  "revision it has mirrored and how many targets it votes down; etcd's revision and\n"
	  "whether this node is connected.  Exit 0 also when etcd cannot be reached (then\n"
	  "from what this node mirrored)." },
	{ "daemon status", "daemon status",
	  "Ask the running gslbd over its control socket: PID, version, uptime, listeners,\n"
	  "each zone with its serial and when it was loaded, the pools served and not, the\n"
	  "snapshot's generation and age, the database, the health targets and the time\n"
	  "since the last probe, the cluster.  --json: gslbd's own JSON object.  Exit 1\n"
	  "when no gslbd answers." },
	{ "daemon reload", "daemon reload",
	  "Reload gslbd as SIGHUP does (the zone files and the geo file) and print what it\n"
	  "loaded and what failed; what failed keeps its previous version.  Exit 1 when\n"
	  "something failed or no gslbd answers." },
	{ "dnssec enable", "dnssec enable ZONE [--algorithm ecdsap256sha256|ed25519]",
	  "Sign ZONE: make its signing key (a CSK; default algorithm ecdsap256sha256), in\n"
	  "use at once.  gslbd then signs the zone's answers to queries with the DO bit.\n"
	  "Exit 1 when the zone is signed already.  Then give the parent zone the DS record\n"
	  "(dnssec ds)." },
	{ "dnssec disable", "dnssec disable ZONE",
	  "Stop signing ZONE: delete its keys.  Remove the DS record at the parent first and\n"
	  "wait for its TTL to pass: validating resolvers fail a zone whose DS the parent\n"
	  "still has but that is not signed." },
	{ "dnssec ds", "dnssec ds ZONE",
	  "The DS records (SHA-256, digest type 2) of every published key of ZONE, in zone\n"
	  "file form, for the parent zone: two during a rollover." },
	{ "dnssec status", "dnssec status [ZONE]",
	  "Every key of ZONE (default: every signed zone): key tag, algorithm, when it was\n"
	  "made, its state now (planned, published, active, retired, removed) and since\n"
	  "when, its next state and when, and its DS record." },
	{ "dnssec rollover", "dnssec rollover ZONE [--max-ttl S] [--parent-ttl S]",
	  "Replace ZONE's key: a new key is published now and signs after the zone's largest\n"
	  "TTL T (its zone file's records and its pools; --max-ttl sets T, 86400 when the\n"
	  "file cannot be read); the old key signs beside it until it is removed, 2T plus\n"
	  "the parent's DS TTL (--parent-ttl, default 86400) from now.  Add the new DS at\n"
	  "the parent now; remove the old one after T and before 2T (gslbctl(8))." },
};

void ctl_help(const char *cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(helps); i++)
		if (strcmp(helps[i].cmd, cmd) == 0) {
			printf("usage: gslbctl [--db FILE] [--json] %s\n\n%s\n", helps[i].usage,
			       helps[i].text);
			return;
		}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gslbctl [-c FILE] [--db FILE] [--json] [--quiet] [--control PATH]\n"
		"               [--cluster URL[,URL...]] [--cluster-prefix PREFIX] [--no-wait]\n"
		"               COMMAND ...\n\n"
		"Manage the gslbd database.\n"
		"-c FILE: gslbd's configuration file, read for db, zones, geoip, control and\n"
		"the cluster settings (default: %s, when it\n"
		"exists); the command line and $GSLB_DB win over it.\n"
		"--db: default $GSLB_DB, else the file's db, else\n"
		"%s.\n"
		"--control: gslbd's control socket (default: the file's control, else\n"
		"%s); none: off.\n"
		"--json: machine-readable output for pool list, pool show, status, history,\n"
		"explain, log, cluster status, dnssec ds and dnssec status, and errors as one\n"
		"JSON object on stderr.\n"
		"A change prints one line per thing it changed; --quiet: nothing.\n"
		"On a cluster node (gslbd --cluster recorded its settings in the database), a\n"
		"change goes to etcd as one transaction, and gslbctl waits up to 5 s for the\n"
		"local gslbd to mirror it.  --cluster: etcd URLs instead of the recorded ones;\n"
		"--cluster-prefix: the key prefix instead of the recorded one (default /gslbd/);\n"
		"--no-wait: do not wait.\n\n"
		"commands:\n",
		GSLB_DEFAULT_CONF, GSLB_DEFAULT_DB, GSLB_DEFAULT_CONTROL);
	for (size_t i = 0; i < ARRAY_SIZE(helps); i++)
		fprintf(f, "  %s\n", helps[i].usage);
	fprintf(f,
		"\n'gslbctl COMMAND --help' describes a command.  Exit status: 0 done, 1 it could\n"
		"not be done, 2 the command or a value is invalid.\n");
}

/* ---- dispatch ---- */

static const struct command {
	const char *group, *name;
	int (*run)(ctl_t *c, int argc, char **argv);
} commands[] = {
	{ "init", NULL, cmd_init },
	{ "pool", "add", cmd_pool_add },
	{ "pool", "set", cmd_pool_set },
	{ "pool", "rm", cmd_pool_rm },
	{ "pool", "list", cmd_pool_list },
	{ "pool", "show", cmd_pool_show },
	{ "member", "add", cmd_member_add },
	{ "member", "set", cmd_member_set },
	{ "member", "rm", cmd_member_rm },
	{ "member", "state", cmd_member_state },
	{ "check", "set", cmd_check_set },
	{ "check", "rm", cmd_check_rm },
	{ "status", NULL, cmd_status },
	{ "history", NULL, cmd_history },
	{ "explain", NULL, cmd_explain },
	{ "export", NULL, cmd_export },
	{ "apply", NULL, cmd_apply },
	{ "log", NULL, cmd_log },
	{ "cluster", "import", cmd_cluster_import },
	{ "cluster", "status", cmd_cluster_status },
	{ "daemon", "status", cmd_daemon_status },
	{ "daemon", "reload", cmd_daemon_reload },
	{ "dnssec", "enable", cmd_dnssec_enable },
	{ "dnssec", "disable", cmd_dnssec_disable },
	{ "dnssec", "ds", cmd_dnssec_ds },
	{ "dnssec", "status", cmd_dnssec_status },
	{ "dnssec", "rollover", cmd_dnssec_rollover },
};

/* ---- gslbd's configuration file ---- */

/* An http:// or https:// URL with a host, as gslbd's --cluster takes it. */
static bool url_ok(const char *u, size_t n)
{
	size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
	return skip && n > skip && !memchr(u, ' ', n) && !memchr(u, '\t', n);
}

/*
 * One entry of gslbd's configuration file: the ones gslbctl uses are kept
 * (the last of each; every "cluster", as gslbd adds them), the others are
 * skipped.  A value gslbctl cannot use is invalid (exit 2), with its place.
 */
static int conf_entry_cb(void *arg, const char *name, const char *value, const char *where)
{
	ctl_t *c = arg;
	ctl_conf_t *f = &c->conf;
	const struct {
		const char *name;
		char **field;
	} keys[] = {
		{ "db", &f->db },
		{ "zones", &f->zones },
		{ "geoip", &f->geoip },
		{ "control", &f->control },
		{ "cluster-prefix", &f->cluster_prefix },
		{ "node", &f->node },
		{ "cluster-ca-file", &f->cluster_ca_file },
		{ "cluster-cert", &f->cluster_cert },
		{ "cluster-key", &f->cluster_key },
		{ "cluster-user", &f->cluster_user },
		{ "cluster-password-file", &f->cluster_password_file },
	};
	if (strcmp(name, "control") == 0 && strcmp(value, "none") != 0 && value[0] != '/')
		return ctl_invalid(c, "%s: '%s' is not an absolute path or none", where, value)
			       ? -EINVAL
			       : 0;
	if (strcmp(name, "cluster-prefix") == 0 &&
	    (value[0] != '/' || value[strlen(value) - 1] != '/'))
		return ctl_invalid(c, "%s: '%s' must start and end with '/'", where, value)
			       ? -EINVAL
			       : 0;
	if (strcmp(name, "cluster") == 0) {
		for (const char *u = value; *u;) {
			size_t n = strcspn(u, ",");
			if (!url_ok(u, n))
				return ctl_invalid(c,
						   "%s: '%.*s' is not an http:// or https:// URL",
						   where, (int)n, u)
					       ? -EINVAL
					       : 0;
			u += n + (u[n] == ',');
		}
		size_t old = f->cluster_urls ? strlen(f->cluster_urls) : 0;
		f->cluster_urls = gslb_realloc(f->cluster_urls, old + strlen(value) + 2);
		snprintf(f->cluster_urls + old, strlen(value) + 2, "%s%s", old ? "," : "", value);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].name, name) == 0) {
			free(*keys[i].field);
			*keys[i].field = gslb_strdup(value);
		}
	return 0;
}

/*
 * Read gslbd's configuration file: path from -c (given true), else the
 * default one, skipped when it does not exist.  CTL_OK, or the exit status
 * after saying why: 2 for a syntax error or a bad value, 1 when a file given
 * cannot be read.
 */
static int conf_read(ctl_t *c, const char *path, bool given)
{
	char err[CFG_CONFFILE_ERR_MAX];
	int ret = cfg_conffile_read(path, conf_entry_cb, c, err, sizeof(err));
	if (ret == 0 || (ret == -ENOENT && !given))
		return CTL_OK;
	if (!err[0])
		return CTL_INVALID; /* conf_entry_cb() said why */
	if (ret == -EINVAL)
		return ctl_invalid(c, "%s", err);
	if (given)
		return ctl_fail(c, "-c: %s", err);
	/* The default file, there but not readable by this user: the defaults serve. */
	ctl_warn(c, "%s; going on without it", err);
	return CTL_OK;
}

static void conf_free(ctl_conf_t *f)
{
	char **all[] = { &f->db,	  &f->zones,	       &f->geoip,
			 &f->control,	  &f->cluster_urls,    &f->cluster_prefix,
			 &f->node,	  &f->cluster_ca_file, &f->cluster_cert,
			 &f->cluster_key, &f->cluster_user,    &f->cluster_password_file };
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		free(*all[i]);
		*all[i] = NULL;
	}
}

/* The command line as the journal records it: words joined, quoted when needed. */
static char *join_cmdline(int argc, char **argv)
{
	char *text;
	size_t len;
	FILE *f = cfg_mem_open(&text, &len);
	fputs("gslbctl", f);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (*a && strcspn(a, " \t\n'\"\\$`*?") == strlen(a)) {
			fprintf(f, " %s", a);
			continue;
		}
		fputs(" '", f);
		for (const char *p = a; *p; p++) {
			if (*p == '\'')
				fputs("'\\''", f);
			else
				fputc(*p, f);
		}
		fputc('\'', f);
	}
	cfg_mem_close(f);
	return text;
}

int main(int argc, char **argv)
{
	ctl_t c = { 0 };
	char cmdname[64];
	const char *env = getenv("GSLB_DB");
	int i = 1, ret;

	/* gslbctl reports failures itself, one line each; the library stays quiet. */
	gslb_log_set_ident("gslbctl");
	gslb_log_set_level(-1);
	/* As in gslbd: "gslbctl show" loads the zones (zone_load_dir()). */
	gslb_malloc_tune();
	const char *conf_path = NULL;
	bool db_given = false;
	char ctlpath[4096];

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return CTL_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("gslbctl %s\n", PACKAGE_VERSION);
			return CTL_OK;
		} else if (strcmp(a, "--json") == 0) {
			c.json = true;
		} else if (strcmp(a, "--db") == 0 && i + 1 < argc && argv[i + 1][0]) {
			c.db_path = argv[++i];
			db_given = true;
		} else if (strncmp(a, "--db=", 5) == 0 && a[5]) {
			c.db_path = a + 5;
			db_given = true;
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc &&
			   argv[i + 1][0]) {
			conf_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0 && a[9]) {
			conf_path = a + 9;
		} else if (strcmp(a, "-c") == 0 || strncmp(a, "--config", 8) == 0) {
			return ctl_invalid(NULL, "%s: needs a file name", a);
		} else if (strcmp(a, "--control") == 0 && i + 1 < argc) {
			if ((ret = control_set(&c, argv[++i])))
				return ret;
		} else if (strncmp(a, "--control=", 10) == 0) {
			if ((ret = control_set(&c, a + 10)))
				return ret;
		} else if (strcmp(a, "--db") == 0 || strncmp(a, "--db=", 5) == 0) {
			return ctl_invalid(NULL, "--db: needs a file name");
		} else if (strcmp(a, "--no-wait") == 0) {
			c.no_wait = true;
		} else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
			c.quiet = true;
		} else if (strcmp(a, "--cluster") == 0 || strcmp(a, "--cluster-prefix") == 0) {
			if (i + 1 >= argc)
				return ctl_invalid(NULL, "%s: needs a value", a);
			if ((ret = global_opt(&c, a, argv[++i])) != 1)
				return ret;
		} else if (strncmp(a, "--cluster=", 10) == 0) {
			if ((ret = global_opt(&c, "--cluster", a + 10)) != 1)
				return ret;
		} else if (strncmp(a, "--cluster-prefix=", 17) == 0) {
			if ((ret = global_opt(&c, "--cluster-prefix", a + 17)) != 1)
				return ret;
		} else {
			return ctl_invalid(NULL, "%s: unknown option", a);
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CTL_INVALID;
	}
	/* Command line, then $GSLB_DB, then gslbd's configuration file, then the defaults. */
	if ((ret = conf_read(&c, conf_path ? conf_path : GSLB_DEFAULT_CONF, conf_path != NULL))) {
		conf_free(&c.conf);
		return ret;
	}
	if (!db_given)
		c.db_path = env && *env ? env : c.conf.db ? c.conf.db : GSLB_DEFAULT_DB;
	if (!c.control_given)
		c.control = !c.conf.control ? gslb_default_control(ctlpath, sizeof(ctlpath))
			    : strcmp(c.conf.control, "none") == 0 ? NULL
								  : c.conf.control;

	const char *group = argv[i];
	const struct command *cmd = NULL;
	bool group_known = false;
	for (size_t k = 0; k < ARRAY_SIZE(commands); k++) {
		if (strcmp(commands[k].group, group) != 0)
			continue;
		group_known = true;
		if (!commands[k].name) {
			cmd = &commands[k];
			break;
		}
		if (i + 1 < argc && strcmp(commands[k].name, argv[i + 1]) == 0) {
			cmd = &commands[k];
			break;
		}
	}
	if (!cmd) {
		/* Every way out from here frees what the configuration file gave. */
		c.cmd = group;
		if (!group_known)
			ret = ctl_invalid(NULL, "%s: unknown command (gslbctl --help lists them)",
					  group);
		else if (i + 1 < argc && strcmp(argv[i + 1], "--help") == 0) {
			for (size_t k = 0; k < ARRAY_SIZE(commands); k++)
				if (strcmp(commands[k].group, group) == 0) {
					snprintf(cmdname, sizeof(cmdname), "%s %s", group,
						 commands[k].name);
					ctl_help(cmdname);
					printf("\n");
				}
			ret = CTL_OK;
		} else if (i + 1 < argc)
			ret = ctl_invalid(&c, "%s: unknown subcommand", argv[i + 1]);
		else
			ret = ctl_invalid(&c, "missing subcommand");
		conf_free(&c.conf);
		return ret;
	}
	if (cmd->name) {
		snprintf(cmdname, sizeof(cmdname), "%s %s", cmd->group, cmd->name);
		i += 2;
	} else {
		snprintf(cmdname, sizeof(cmdname), "%s", cmd->group);
		i += 1;
	}
	c.cmd = cmdname;
	c.cmdline = join_cmdline(argc, argv);
	ret = cmd->run(&c, argc - i, argv + i);
	if (c.db) {
		db_rollback(c.db);
		db_close(c.db);
	}
	free(c.cmdline);
	conf_free(&c.conf);
	return ret;
}
