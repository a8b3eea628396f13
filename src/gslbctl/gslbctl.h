/* SPDX-License-Identifier: MIT */
/* gslbctl's private interface: the command context, argument parsing, validators and commands. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gslb/cfg.h"
#include "gslb/db.h"
#include "gslb/json.h"
#include "gslb/lb.h"

/* Exit statuses of gslbctl(8). */
enum ctl_exit {
	CTL_OK = 0,
	CTL_FAIL = 1,	 /* could not be done: no such pool, database missing or locked */
	CTL_INVALID = 2, /* the command or a value is invalid */
};

/*
 * What gslbctl reads from gslbd's configuration file (-c FILE, else the
 * default one when it exists): the entries it uses, each owned, NULL when
 * the file has none.  The others are skipped.
 */
typedef struct ctl_conf {
	char *db;
	char *zones;
	char *geoip;
	char *control;
	char *cluster_urls; /* every "cluster" entry, joined with commas */
	char *cluster_prefix;
	char *node;
	char *cluster_ca_file;
	char *cluster_cert;
	char *cluster_key;
	char *cluster_user;
	char *cluster_password_file;
} ctl_conf_t;

typedef struct ctl {
	const char *cmd; /* "member add", for messages */
	const char *db_path;
	bool json;
	bool quiet;	 /* --quiet: a change prints nothing when it succeeds */
	bool own_output; /* the command prints its change lines itself (apply) */
	bool dry_run;	 /* apply --dry-run: ctl_change_run() rolls back instead of committing */
	char *cmdline;	 /* the command line as the journal records it, owned */
	db_t *db;
	/* A cluster node's (README "Two or more nameservers"): global options before the command. */
	const char *cluster_urls;   /* --cluster: etcd URLs replacing the recorded ones, or NULL */
	const char *cluster_prefix; /* --cluster-prefix, or NULL: the recorded one, else /gslbd/ */
	bool no_wait;		    /* --no-wait: do not wait for the local mirror after a change */
	ctl_conf_t conf;	    /* gslbd's configuration file, as read */
	const char *control; /* gslbd's control socket (--control, file, default); NULL: none */
	bool control_given;  /* by --control */
} ctl_t;

/*
 * A warning: "gslbctl: CMD: warning: MESSAGE" on stderr ({"warning": "CMD:
 * MESSAGE"} with --json); the exit status is not changed.
 */
void ctl_warn(ctl_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- gslbd's zones (src/gslbctl/show.c) ---- */

struct zone_set;

/**
 * Whether gslbd serves a pool of this name with the zones of set (an enum
 * lb_serving), or -1 for a name gslbd skips.
 */
int ctl_pool_serving(const struct zone_set *set, const char *name);

/**
 * After a change that adds pools: warn about each of the n pools (names)
 * that gslbd would not serve with its zones (the file's zones, else the
 * default directory).  Says nothing when the zones cannot be read.
 */
void ctl_warn_unserved(ctl_t *c, const char *const *names, size_t n);

/* ---- the control socket (src/gslbctl/daemon.c) ---- */

/**
 * Send cmd to the gslbd listening on the unix socket path and read its
 * answer (one line of JSON) into *reply (caller frees), within timeout_ms.
 * 0, or a negative errno value: -ENOENT or -ECONNREFUSED when no gslbd
 * listens there, -ETIMEDOUT.
 */
int ctl_daemon_request(const char *path, const char *cmd, int timeout_ms, char **reply);

/**
 * Whether a gslbd answers on c->control from the database c->db_path (true
 * when there is no socket to ask); false with the reason in why.
 */
bool ctl_daemon_check(const ctl_t *c, char *why, size_t len);

/* Print "gslbctl: <cmd>: <message>" to stderr; return CTL_INVALID or CTL_FAIL. */
int ctl_invalid(ctl_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctl_fail(ctl_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Open the database for a command (not init): it must exist and carry the
 * current schema.  Returns CTL_OK or CTL_FAIL (message printed).
 */
int ctl_open(ctl_t *c);
/** Report a failed database call, rolling back what it was part of; returns CTL_FAIL. */
int ctl_db_fail(ctl_t *c, int err);

/*
 * What a change command does to the configuration, inside ctl_change_run()'s
 * write transaction: cfg is the configuration as it is (borrowed), arg the
 * command's own.  It writes through c->db and adds a line ending in "\n" to
 * sum for each thing it changes ("+ pool www.example.com."); they are the
 * journal entry (apply prints them too).  Under c->dry_run nothing it writes
 * is kept.  Returns CTL_OK (sum empty: there was nothing to change), CTL_FAIL
 * or CTL_INVALID after printing why, or a negative code from a db_* call for
 * ctl_change_run() to report.
 */
typedef int (*ctl_edit_cb)(ctl_t *c, const db_config_t *cfg, void *arg, FILE *sum);

/**
 * Make one change: open the database, begin the write transaction, load
 * the configuration, run edit, then journal and commit what it wrote, or
 * roll back: on failure, and after a c->dry_run edit.  Prints "no changes"
 * when edit wrote nothing.  Returns the exit status (enum ctl_exit), its
 * reason printed.
 */
int ctl_change_run(ctl_t *c, ctl_edit_cb edit, void *arg);

/**
 * ctl_change_run() for a change to one pool: cfg holds only the pool named
 * pool (lowercase, trailing dot), or no pool when there is none of that
 * name, so a change to one pool of 100,000 reads one pool.
 */
int ctl_change_run_pool(ctl_t *c, const char *pool, ctl_edit_cb edit, void *arg);

/**
 * After a change was made: its lines ("+ pool P", the journal's summary) on stdout, one per
 * thing changed, unless --quiet or the command prints them itself (apply).
 */
void ctl_change_print(const ctl_t *c, const char *summary);

/*
 * ---- a cluster node (src/gslbctl/cluster.c) ----
 *
 * On a database where gslbd recorded cluster settings, ctl_change_run() hands the change to
 * ctl_cluster_change(): the edit runs in a local write transaction that is rolled back, and
 * what it changed goes to etcd as one transaction.
 */

/**
 * Whether the database c->db (open) is a cluster node's (gslbd recorded its settings there)
 * into *cluster.  CTL_OK, or CTL_FAIL after printing why: the database cannot be read, or
 * --cluster was given for a change (change true) on a standalone node's.
 */
int ctl_cluster_node(ctl_t *c, bool change, bool *cluster);
/** Make one change on a cluster node (ctl_change_run()'s contract). */
int ctl_cluster_change(ctl_t *c, ctl_edit_cb edit, void *arg);
/** The actor of a change as the journal records it, "user@host" (malloc'd). */
char *ctl_actor(void);

/* ---- option parsing ---- */

#define CTL_ARGS_MAX 64

typedef struct ctl_optdef {
	const char *name; /* "--weight" */
	bool has_arg;
	bool repeat;
} ctl_optdef_t;

typedef struct ctl_opt {
	const char *name;
	const char *value; /* NULL for flags */
} ctl_opt_t;

typedef struct ctl_args {
	size_t npos;
	const char *pos[CTL_ARGS_MAX];
	size_t nopt;
	ctl_opt_t opt[CTL_ARGS_MAX];
	bool help;
} ctl_args_t;

/**
 * Split argv into positional arguments and options of defs (NULL-name
 * terminated); --db, --json and --help are accepted everywhere.  Returns
 * CTL_OK or CTL_INVALID (message printed).
 */
int ctl_args_parse(ctl_t *c, int argc, char **argv, const ctl_optdef_t *defs, ctl_args_t *a);
/** The last value of an option, or NULL. */
const char *ctl_arg(const ctl_args_t *a, const char *name);
bool ctl_flag(const ctl_args_t *a, const char *name);

/*
 * The start of every command: split its arguments into a (a ctl_args_t *),
 * and return from the command with the parse's status when that fails, or
 * with CTL_OK after printing the command's help when --help was given.
 */
#define PARSE_ARGS(c, argc, argv, defs, a)                                    \
	do {                                                                  \
		int pret_ = ctl_args_parse((c), (argc), (argv), (defs), (a)); \
		if (pret_)                                                    \
			return pret_;                                         \
		if ((a)->help) {                                              \
			ctl_help((c)->cmd);                                   \
			return CTL_OK;                                        \
		}                                                             \
	} while (0)

/* ---- commands: argc/argv start after the command words ---- */

int cmd_init(ctl_t *c, int argc, char **argv);
int cmd_pool_add(ctl_t *c, int argc, char **argv);
int cmd_pool_set(ctl_t *c, int argc, char **argv);
int cmd_pool_rm(ctl_t *c, int argc, char **argv);
int cmd_pool_list(ctl_t *c, int argc, char **argv);
int cmd_pool_show(ctl_t *c, int argc, char **argv);
int cmd_member_add(ctl_t *c, int argc, char **argv);
int cmd_member_set(ctl_t *c, int argc, char **argv);
int cmd_member_rm(ctl_t *c, int argc, char **argv);
int cmd_member_state(ctl_t *c, int argc, char **argv);
int cmd_check_set(ctl_t *c, int argc, char **argv);
int cmd_check_rm(ctl_t *c, int argc, char **argv);
int cmd_status(ctl_t *c, int argc, char **argv);
int cmd_history(ctl_t *c, int argc, char **argv);
int cmd_explain(ctl_t *c, int argc, char **argv);
int cmd_export(ctl_t *c, int argc, char **argv);
int cmd_apply(ctl_t *c, int argc, char **argv);
int cmd_log(ctl_t *c, int argc, char **argv);
int cmd_cluster_import(ctl_t *c, int argc, char **argv);
int cmd_cluster_status(ctl_t *c, int argc, char **argv);
int cmd_daemon_status(ctl_t *c, int argc, char **argv);
int cmd_daemon_reload(ctl_t *c, int argc, char **argv);
int cmd_dnssec_enable(ctl_t *c, int argc, char **argv);
int cmd_dnssec_disable(ctl_t *c, int argc, char **argv);
int cmd_dnssec_ds(ctl_t *c, int argc, char **argv);
int cmd_dnssec_status(ctl_t *c, int argc, char **argv);
int cmd_dnssec_rollover(ctl_t *c, int argc, char **argv);

/** Print the --help text of a command ("member add") to stdout. */
void ctl_help(const char *cmd);

/* ---- differences (src/gslbctl/diff.c): "~ pool P ttl 30 -> 60" lines, and their count ---- */

int diff_pool(FILE *b, const db_pool_t *a, const db_pool_t *n);
int diff_member(FILE *b, const char *pool, const db_member_t *a, const db_member_t *n);
/** The line of an added member: "+ member P/M", and " alias H" when it has one. */
void diff_member_added(FILE *b, const char *pool, const db_member_t *m);
/** what is "P" or "P/M"; a NULL side is an added ("+ check") or removed ("- check") check. */
int diff_check(FILE *b, const char *what, const db_check_t *a, const db_check_t *n);
