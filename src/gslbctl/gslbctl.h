/* SPDX-License-Identifier: MIT */
/* gslbctl's private interface: the command context, argument parsing, validators and commands. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gslb/db.h"
#include "gslb/lb.h"
#include "json.h"

/* Exit statuses of gslbctl(8). */
enum ctl_exit {
	CTL_OK = 0,
	CTL_FAIL = 1,	 /* could not be done: no such pool, database missing or locked */
	CTL_INVALID = 2, /* the command or a value is invalid */
};

typedef struct ctl {
	const char *cmd; /* "member add", for messages */
	const char *db_path;
	bool json;
	bool dry_run;  /* apply --dry-run: ctl_change_run() rolls back instead of committing */
	char *cmdline; /* the command line as the journal records it, owned */
	db_t *db;
	/* A cluster node's (README "Two or more nameservers"): global options before the command. */
	const char *cluster_urls;   /* --cluster: etcd URLs replacing the recorded ones, or NULL */
	const char *cluster_prefix; /* --cluster-prefix, or NULL: the recorded one, else /gslbd/ */
	bool no_wait;		    /* --no-wait: do not wait for the local mirror after a change */
} ctl_t;

/*
 * A text written as a stream (open_memstream()): summaries, lists, the
 * command line.  Running out of memory aborts with a message, as
 * gslb_malloc() does.  ctl_mem_close() closes f; *text (caller frees) then
 * holds everything written and *len its length.
 */
FILE *ctl_mem_open(char **text, size_t *len);
void ctl_mem_close(FILE *f);

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

/* ---- validators: 0, or -1 with the reason in why ("70000 is not in 0-65535") ---- */

#define WHY_MAX 256

int val_pool_name(const char *s, char *out, size_t outlen, char *why);
int val_member_name(const char *s, char *why);
/** Canonical inet_ntop() text in out (>= 46 bytes), family 4 or 6. */
int val_ip(const char *s, char *out, int *family, char *why);
/** As val_ip(), for a served member address: IPv4-mapped IPv6 addresses are refused. */
int val_member_address(const char *s, char *out, int *family, char *why);
int val_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *v, char *why);
/** Decimal seconds ("0.5", at most 3 decimals) in lo_ms..hi_ms. */
int val_seconds(const char *s, uint32_t lo_ms, uint32_t hi_ms, uint32_t *ms, char *why);

/* The numbers of a configuration, each read from an option and from apply's JSON. */
enum num_field {
	NUM_TTL,
	NUM_DEGRADED_TTL,
	NUM_ANSWERS,
	NUM_WEIGHT,
	NUM_PRIORITY,
	NUM_PORT,
	NUM_INTERVAL,
	NUM_TIMEOUT,
	NUM_RISE,
	NUM_FALL,
	NUM_FIELDS
};

typedef struct num_field_def {
	const char *opt; /* "--degraded-ttl" */
	const char *key; /* "degraded_ttl", in apply's and export's JSON */
	bool seconds;	 /* decimal seconds read into milliseconds, else a whole number */
	uint32_t lo, hi; /* the range, in milliseconds for seconds */
} num_field_def_t;

/*
 * Indexed by enum num_field (src/gslbctl/fields.c): the ranges of
 * include/gslb/lb.h and include/gslb/health.h, in one place for the options
 * and the JSON keys.
 */
extern const num_field_def_t num_fields[NUM_FIELDS];

/** s as field f (val_uint() or val_seconds() in its range) into *v. */
int val_num(enum num_field f, const char *s, uint32_t *v, char *why);

int val_location(const char *s, double *lat, double *lon, char *why);
#define LOCATION_LEN (2 * JSON_DOUBLE_LEN)
/** "LAT,LON" as val_location() reads it back: plain decimals that round-trip, never "5e+01". */
void fmt_location(char *buf, size_t len, double lat, double lon);
/**
 * Comma list of ISO 3166-1 alpha-2 or CC-SUB codes, uppercased, duplicates dropped; out malloc'd.
 */
int val_countries(const char *s, char **out, char *why);
int val_continents(const char *s, char **out, char *why);
/** Canonical CIDR in out (CIDR_LEN bytes); host bits must be zero. */
int val_cidr(const char *s, char *out, char *why);
#define CIDR_LEN (INET6_ADDRSTRLEN + 4)
/** A prefix as val_cidr() writes it ("2001:db8::/32"). */
void fmt_net(char *buf, size_t len, const lb_net_t *n);
int val_expect(const char *s, char *why);
int val_path(const char *s, char *why);
int val_host(const char *s, char *why);
int val_match(const char *s, char *why);
/** Format milliseconds as decimal seconds ("10", "0.5"). */
void fmt_seconds(char *buf, size_t len, uint32_t ms);

/* ---- configuration helpers shared by the commands ---- */

/**
 * Deep copies of the db structs (gslb_* allocation); db_check_free() and db_member_clear() free
 * them.
 */
db_check_t *cfg_check_dup(const db_check_t *c);
void cfg_member_copy(db_member_t *dst, const db_member_t *src);
/** Write a pool (all of it) as a JSON object: export, pool show, apply's input format. */
void cfg_pool_json(jw_t *w, const db_pool_t *p);
void cfg_check_json(jw_t *w, const db_check_t *c);
/** Text of a member's address list, comma separated, sorted (malloc'd). */
char *cfg_join(char *const *v, size_t n, const char *sep);

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

/** Print the --help text of a command ("member add") to stdout. */
void ctl_help(const char *cmd);

/* ---- differences (src/gslbctl/diff.c): "~ pool P ttl 30 -> 60" lines, and their count ---- */

int diff_pool(FILE *b, const db_pool_t *a, const db_pool_t *n);
int diff_member(FILE *b, const char *pool, const db_member_t *a, const db_member_t *n);
/** what is "P" or "P/M"; a NULL side is an added ("+ check") or removed ("- check") check. */
int diff_check(FILE *b, const char *what, const db_check_t *a, const db_check_t *n);

/* ---- building configuration from options (src/gslbctl/edit.c), shared with apply ---- */

/** Defaults of README "Balanced names" for a new pool or member (name copied). */
void cfg_pool_defaults(db_pool_t *p, const char *name);
void cfg_member_defaults(db_member_t *m, const char *name);
/** Add a canonical address (no duplicates); false when it was there. */
bool cfg_member_add_address(db_member_t *m, const char *addr, int family);
bool cfg_member_add_network(db_member_t *m, const char *prefix);

/*
 * What gslbctl stores: no more than gslbd serves, so it drops nothing (it
 * keeps LB_ADDRS_MAX addresses of each family; gslbctl allows that many in all).
 */
#define CFG_MEMBERS_MAX LB_MEMBERS_MAX /* per pool */
#define CFG_ADDRESSES_MAX LB_ADDRS_MAX /* per member */
#define CFG_NETWORKS_MAX 1024	       /* per member */
