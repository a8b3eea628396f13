/* SPDX-License-Identifier: MIT */
/* The SQLite database: opening and migrating it, the configuration read and written, history. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Only src/db includes SQLite's header.  A db_t is one connection, used by one
 * thread at a time (gslbd's control loop, or gslbctl).  Every connection is
 * in WAL mode with foreign keys on and a busy timeout of DB_BUSY_TIMEOUT_MS,
 * so gslbctl writes while gslbd reads.
 *
 * Errors: functions return 0 or a negative code: -ENOENT (no such file or
 * row), -EEXIST (a unique name already there), -EBUSY (locked past the busy
 * timeout), -ENOMEM, -EIO (anything else SQLite reports), GSLB_ECONFIG
 * (the file is from a newer gslbd, or holds data gslbd cannot use).
 * SQLite's own message is logged with context at the point of failure.
 */

#define DB_SCHEMA_VERSION 6
#define DB_BUSY_TIMEOUT_MS 5000

typedef struct db db_t;

enum db_open_flags {
	DB_OPEN_READONLY = 1 << 0, /* never write; the file must exist */
	DB_OPEN_CREATE = 1 << 1,   /* create the file if missing */
	DB_OPEN_WRITABLE = 1 << 2, /* refuse a file SQLite could open only read-only */
};

/**
 * Open the database at path.  Without DB_OPEN_CREATE a missing file is
 * -ENOENT; with it, a missing file is created mode 0660, or 0600 when the
 * umask denies the group reading (SQLite gives the -wal and -shm the same
 * mode).  With DB_OPEN_WRITABLE, a file this process may not write is
 * -EACCES or -EROFS (SQLite would open it read-only, and every write fail:
 * gslbd's health writes).  Does not migrate.
 * Caller closes with db_close().  A failure is not logged (SQLite's message
 * only at debug level): the return says why, for the caller to report once:
 * a negative errno value from opening the file (-ENOENT, -EACCES ...),
 * GSLB_ENOTDB for a file that is not an SQLite database, GSLB_EDBCORRUPT,
 * -EBUSY, -EROFS, -ENOMEM or -EIO.
 */
int db_open(const char *path, unsigned flags, db_t **out);

/**
 * Can this process (its effective user, after --user) open the database at
 * path for writing: the file and its -wal and -shm, those present, readable
 * and writable, and its directory writable (SQLite creates the file, the
 * -wal and the -shm there)?  0, or a negative errno value with why set to a
 * sentence naming the file or directory and the user ("user nobody may not
 * write /var/lib/gslbd/gslb.db (owner root:root, mode 0644)").  A missing
 * file is fine when its directory is writable.
 */
int db_access_check(const char *path, char *why, size_t whylen);

/* ---- the file at the path: replaced or deleted while open ---- */

enum db_file_state {
	DB_FILE_SAME = 0,     /* the file at the path is the one open */
	DB_FILE_REPLACED = 1, /* another file is at the path (renamed over it, or made anew) */
	DB_FILE_DELETED = 2,  /* no file at the path */
};

/* A file's identity (device and inode). */
typedef struct db_file_id {
	uint64_t dev, ino;
} db_file_id_t;

/**
 * Is the file at db's path still the one db has open (device and inode)?
 * An enum db_file_state, or a negative errno value when the path cannot be
 * examined.  now, when non-NULL, receives the identity of the file at the
 * path (zero when there is none), so a caller can tell one new file from
 * the next.  Cheap (a few stat() calls): made on every poll.
 */
int db_file_check(db_t *db, db_file_id_t *now);

/**
 * After DB_FILE_REPLACED: open the file now at db's path (flags as for
 * db_open()) in place of *db.  The -wal and -shm the old file left at the
 * path are removed first, so the new file is not paired with them.  On
 * success *db is the new connection and the old one closed; on failure
 * *db is untouched and the reason returned as db_open() does.  Every
 * connection of the process to the replaced file must move with this
 * function, not a plain db_close() and db_open().
 */
int db_reopen(db_t **db, unsigned flags);

/**
 * After DB_FILE_DELETED: remove the -wal and -shm the deleted file left at
 * its path, so that a database created there later does not take them for
 * its own.  db stays open on the deleted file.
 */
void db_stale_remove(db_t *db);

/**
 * Claim the database for this process: gslbd's, so that a second gslbd given the same file
 * (whose probes and results would mix with the first's) stops at start-up instead.  An
 * exclusive lock on the file's "-lock" companion (created mode 0660), held until db_close() and
 * carried over by db_reopen(); the lock file holds the PID.  0, -EBUSY when another process
 * holds it (its PID in *holder when known, else 0), or a negative errno value.  gslbctl never
 * claims.
 */
int db_claim(db_t *db, long *holder);

/** Close a connection (rolls back an open transaction).  NULL is a no-op. */
void db_close(db_t *db);

/** The last failure on this connection with SQLite's message, "" if none (borrowed). */
const char *db_errmsg(const db_t *db);

/**
 * The schema version of the file (PRAGMA user_version): 0 for a new file.
 */
int db_version(db_t *db, int *version);

/**
 * Bring the schema up to DB_SCHEMA_VERSION in one write transaction
 * (idempotent): a new file gets the whole schema, an older one every
 * migration step from its version on, its configuration and history kept.
 * *from, when non-NULL, receives the version found.  A file with a newer
 * version than this build knows is GSLB_ECONFIG (logged).  On any failure
 * the file is left as it was.
 */
int db_migrate(db_t *db, int *from);

/**
 * PRAGMA data_version: changes whenever another connection commits to the
 * file.  Cheap; gslbd polls it to notice gslbctl's changes.
 */
int db_data_version(db_t *db, int64_t *version);

/**
 * The configuration generation: a counter that triggers in the schema bump
 * on every change to a configuration table (pool, member, member_address,
 * member_network, health_check).  Health writes change data_version but not
 * this, so gslbd reads it after data_version moved and re-reads the
 * configuration only when it moved too.  Read it in the same transaction as
 * the configuration it stands for.
 */
int db_config_generation(db_t *db, int64_t *generation);

/* ---- transactions ---- */

/** BEGIN (read, a consistent view for several loads). */
int db_begin_read(db_t *db);
/** BEGIN IMMEDIATE: take the write lock now, waiting up to the busy timeout. */
int db_begin_write(db_t *db);
int db_commit(db_t *db);
/** Roll back; harmless without a transaction. */
void db_rollback(db_t *db);

/* ---- the configuration as plain C data ---- */

enum db_check_type {
	DB_CHECK_TCP = 0,
	DB_CHECK_HTTP = 1,
	DB_CHECK_HTTPS = 2,
};

/* A health check.  Strings are owned by the enclosing db_config_t; NULL means the default. */
typedef struct db_check {
	uint8_t type;	      /* enum db_check_type */
	uint16_t port;	      /* 0: default by type (80 http, 443 https; tcp requires one) */
	char *path;	      /* NULL: "/" */
	char *host;	      /* NULL: the pool name without the trailing dot */
	char *expect;	      /* NULL: "200-399" */
	char *match;	      /* NULL: no body check */
	uint32_t interval_ms; /* 1000-3600000 */
	uint32_t timeout_ms;  /* > 0, < interval_ms */
	uint8_t rise, fall;   /* 1-100 */
	char *target;	      /* member checks only: canonical IP probed instead, or NULL */
	bool insecure;	      /* https only */
	uint8_t quorum;	      /* enum db_quorum: how a cluster's nodes' verdicts combine */
} db_check_t;

/*
 * How the verdicts of a cluster's nodes on one target make the state answered
 * from (README "Two or more nameservers"); a standalone node has only its own.
 */
enum db_quorum {
	DB_QUORUM_MAJORITY = 0, /* down when more than half of the reporting live nodes say so */
	DB_QUORUM_ANY = 1,	/* down when any reporting live node says so */
	DB_QUORUM_ALL = 2,	/* down only when every reporting live node says so */
	DB_QUORUM_LOCAL = 3,	/* this node's own verdict */
};

enum db_admin {
	DB_ADMIN_AUTO = 0,
	DB_ADMIN_UP = 1,
	DB_ADMIN_DOWN = 2,
	DB_ADMIN_DRAIN = 3,
};

/*
 * The counts are 32 bits, beside the small fields: 104 bytes a member, not 112.  A member's
 * served addresses are its own (addresses) and, with an alias, those gslbd resolved for it:
 * lb_member_address() gives both, in that order.
 */
typedef struct db_member {
	int64_t id;
	char *name;
	uint16_t weight;
	uint8_t priority;
	uint8_t admin; /* enum db_admin */
	uint32_t naddresses;
	uint32_t nnetworks;
	bool has_location;
	double latitude, longitude;
	char *countries;  /* "DE,FR-IDF" or NULL */
	char *continents; /* "EU,NA" or NULL */
	char *alias; /* host name whose A/AAAA gslbd serves: lowercase, trailing dot; or NULL */
	char **addresses;  /* canonical inet_ntop() text, sorted */
	uint8_t *families; /* 4 or 6, parallel to addresses */
	char **networks;   /* canonical CIDR, sorted */
	db_check_t *check; /* the member's own check, or NULL */
} db_member_t;

enum db_policy {
	DB_POLICY_WEIGHTED = 0,
	DB_POLICY_FAILOVER = 1,
	DB_POLICY_GEO = 2,
};

typedef struct db_pool {
	int64_t id;
	char *name;	      /* lowercase, trailing dot */
	uint8_t policy;	      /* enum db_policy */
	uint32_t ttl;	      /* seconds */
	int32_t degraded_ttl; /* seconds, -1: min(ttl, 10) */
	uint8_t answers;
	bool fallback_all;
	/*
	 * A loaded pool (db_config_load(), db_config_load_pools()) is packed:
	 * its name starts the one allocation that holds its members, checks
	 * and every string and array of them, freed whole by db_config_free()
	 * and db_config_merge().  A pool built piece by piece (gslbctl's parsed
	 * files) is not.  Nothing inside a packed pool may be freed or
	 * reallocated on its own: copy a member (cfg_member_copy()) to change it.
	 */
	bool packed;
	size_t nmembers;
	db_member_t *members; /* sorted by name */
	db_check_t *check;    /* the pool's check, or NULL */
} db_pool_t;

typedef struct db_config {
	size_t npools;
	db_pool_t *pools; /* sorted by name */
} db_config_t;

/**
 * Load the whole configuration in one read transaction (its own, unless
 * the caller already opened one).  Caller frees *out with db_config_free().
 */
int db_config_load(db_t *db, db_config_t **out);

/** Free a configuration and everything in it.  NULL is a no-op. */
void db_config_free(db_config_t *cfg);

/*
 * ---- reading only what changed ----
 *
 * Every write to a pool or to anything of it stamps the pool's revision
 * (the pool_rev table of src/db/schema.sql) with the configuration
 * generation, whoever writes.  A reader that loaded the configuration at
 * generation g finds what changed since with db_config_changed(g), loads
 * those pools alone with db_config_load_pools(), and puts them in place
 * with db_config_merge(): one pool changed among 100,000 costs one pool.
 */

/**
 * The names of the pools written since generation since (revision >=
 * since, so a pool of the last change before it may be among them), added
 * and deleted ones included, in name order: *names (n of them), an array
 * of strings, caller frees with db_names_free().
 */
int db_config_changed(db_t *db, int64_t since, char ***names, size_t *n);
void db_names_free(char **names, size_t n);

/**
 * Load the pools named in names (n, lowercase with the trailing dot) that
 * exist, whole, as db_config_load() loads every pool; names of no pool are
 * left out.  In one read transaction (its own, unless the caller opened
 * one).  Caller frees *out with db_config_free().
 */
int db_config_load_pools(db_t *db, const char *const *names, size_t n, db_config_t **out);

/**
 * Put the pools named in names (n, in name order, as db_config_changed()
 * gives them) of cfg in the state of part (db_config_load_pools() of the
 * same names): each is replaced by part's pool of that name, or removed
 * when part has none, or added.  part's pools move into cfg (part is left
 * empty, still the caller's to free).  *from, when not NULL, receives for
 * each pool of the new cfg its index in the old one, or SIZE_MAX for a pool
 * named in names (caller frees).
 */
void db_config_merge(db_config_t *cfg, const char *const *names, size_t n, db_config_t *part,
		     size_t **from);

/** Free what a pool owns (not the struct itself), loaded or built, and zero it. */
void db_pool_clear(db_pool_t *p);

/*
 * Whether pool p (NULL: none) has a health check, its own or a member's.  A
 * pool without one is needed whole only to build its answers: see
 * db_pool_strip().
 */
bool db_pool_checked(const db_pool_t *p);

/**
 * Keep of pool p only its name and settings: free its members (nmembers 0)
 * and its check.  gslbd keeps the configuration for the incremental merge,
 * the health targets and the status page; once a pool without a check is
 * built for answers, none of them reads more than its name, and 100,000
 * pools kept whole took 46 MiB (bench/README.md, "Memory at 100,000 pools").
 */
void db_pool_strip(db_pool_t *p);

/** Free a check and its strings.  NULL is a no-op. */
void db_check_free(db_check_t *c);
/** Free what a member of a built pool owns (not the struct itself) and zero it. */
void db_member_clear(db_member_t *m);

/**
 * Put a member's addresses (their families alongside) and networks in text
 * order, the order db_config_load() gives them in.  An insertion sort: the
 * lists are short and usually sorted already.
 */
void db_member_sort(db_member_t *m);

/**
 * Put a configuration's pools, and each pool's members, in name order, the
 * order db_config_load() gives them in.
 */
void db_config_sort(db_config_t *cfg);

/*
 * ---- alias members (README "Alias members") ----
 *
 * A member with an alias serves the A and AAAA records gslbd resolved for
 * the alias's host name besides its own addresses.  What was resolved is
 * node-local (the alias_state table, written by gslbd alone, never sent to
 * etcd); gslbd builds its pools from it, and gslbctl status and explain
 * read it back, both through lb_member_address() (include/gslb/lb.h), so
 * they agree.
 */

/*
 * What gslbd last resolved for one alias host name: a row of alias_state.
 * Addresses are text in the canonical inet_ntop() form with their family
 * alongside, as a member's own are, so that one function hands out both.
 * A loaded state owns its strings (db_aliases_clear() frees them); one the
 * resolver fills in for db_alias_state_store() may point anywhere.
 */
typedef struct db_alias_state {
	char *name;	     /* lowercase, trailing dot */
	bool never_resolved; /* no answer yet (addresses NULL in the row): no addresses */
	uint32_t naddresses; /* 0 also when the name has no A or AAAA */
	char **addresses;    /* canonical inet_ntop() text, sorted */
	uint8_t *families;   /* 4 or 6, parallel to addresses */
	int64_t resolved;    /* Unix seconds of the last success, 0 when never */
	int64_t expires;     /* Unix seconds when the addresses' TTL runs out, 0 when never */
	uint32_t failures;   /* failed resolutions since the last success */
	char *error;	     /* why the last one failed, or NULL */
	int64_t error_time;  /* Unix seconds of that failure, 0 when none */
} db_alias_state_t;

/* Every alias_state row, sorted by name: the lookup pools are built with. */
typedef struct db_aliases {
	db_alias_state_t *v;
	size_t n;
} db_aliases_t;

/**
 * Load every row of alias_state into *out (sorted by name).  0 or a
 * negative code; on failure *out is empty.  Caller frees with
 * db_aliases_clear().
 */
int db_alias_state_load(db_t *db, db_aliases_t *out);

/** Free what db_alias_state_load() loaded and zero *a.  NULL is a no-op. */
void db_aliases_clear(db_aliases_t *a);

/**
 * Insert or replace the rows of alias_state for the n states of v, all in
 * one write transaction (its own, unless the caller opened one).  A state
 * never_resolved is stored with addresses NULL whatever its naddresses;
 * times of 0 and a NULL error are stored as NULL.  0 or a negative code
 * (-EBUSY for a lock held past the busy timeout, so it may wait up to
 * DB_BUSY_TIMEOUT_MS; -EINVAL for a state without a name); on failure
 * nothing of the batch is written unless the caller's transaction goes on.
 */
int db_alias_state_store(db_t *db, const db_alias_state_t *v, size_t n);

/** The pool named name (lowercase, trailing dot) in cfg (pools sorted by name), or NULL. */
db_pool_t *db_config_pool(const db_config_t *cfg, const char *name);
/** The member named name in p, or NULL. */
db_member_t *db_pool_member(const db_pool_t *p, const char *name);

/** The effective degraded TTL of a pool. */
static inline uint32_t db_pool_degraded_ttl(const db_pool_t *p)
{
	if (p->degraded_ttl >= 0)
		return (uint32_t)p->degraded_ttl;
	return p->ttl < 10 ? p->ttl : 10;
}

/* Names for the enums ("weighted", "drain", "https" ...), and back (-1 if unknown). */
const char *db_policy_name(int policy);
const char *db_admin_name(int admin);
const char *db_check_type_name(int type);
const char *db_quorum_name(int quorum);
int db_policy_parse(const char *s);
int db_quorum_parse(const char *s);
int db_admin_parse(const char *s);
int db_check_type_parse(const char *s);

/*
 * ---- writes ----
 *
 * Each takes plain C data already validated by the caller and must run
 * inside db_begin_write() ... db_commit().  The database's CHECK constraints
 * catch what slipped through (GSLB_ECONFIG).  Pools and members are named,
 * not numbered: pool is the lowercase FQDN, member the member name.
 */

/** Insert a pool (members and check ignored); -EEXIST if the name is taken. */
int db_pool_insert(db_t *db, const db_pool_t *p);
/** Update a pool's settings (members and check ignored); -ENOENT if absent. */
int db_pool_update(db_t *db, const db_pool_t *p);
/** Delete a pool with its members and checks; -ENOENT if absent. */
int db_pool_delete(db_t *db, const char *pool);

/** Insert a member with its addresses, networks and alias (its check ignored). */
int db_member_insert(db_t *db, const char *pool, const db_member_t *m);
/** Update a member's settings and replace its addresses, networks and alias. */
int db_member_update(db_t *db, const char *pool, const db_member_t *m);
int db_member_delete(db_t *db, const char *pool, const char *member);
/** Set only the admin state. */
int db_member_set_admin(db_t *db, const char *pool, const char *member, int admin);

/** Create or replace the check of a pool (member NULL) or of one member. */
int db_check_put(db_t *db, const char *pool, const char *member, const db_check_t *c);
/** Remove it; -ENOENT if there was none. */
int db_check_delete(db_t *db, const char *pool, const char *member);

/**
 * Append a journal row: now (RFC 3339 UTC), actor ("user@host"), the
 * command line and a summary of what changed.
 */
int db_journal_add(db_t *db, const char *actor, const char *command, const char *summary);

/* ---- reading the journal and the stored health (gslbctl log, status, history, explain) ---- */

typedef struct db_journal_entry {
	int64_t id;
	char *time, *actor, *command, *summary;
	char *node; /* the cluster node the change was made on; NULL standalone */
} db_journal_entry_t;

/** The newest limit (0: all) journal rows, newest first.  Free with db_journal_free(). */
int db_journal_list(db_t *db, unsigned limit, db_journal_entry_t **out, size_t *n);
void db_journal_free(db_journal_entry_t *e, size_t n);

/* A target's stored state (target_state), times in Unix seconds, 0 when unknown. */
typedef struct db_target_state {
	char *state; /* "up", "down" ... or NULL when never stored */
	int64_t since;
	char *reason;
	int64_t last_probe;
	double latency_ms; /* < 0 when unknown */
	/* https: the notAfter of the certificate last seen, 0 when none was */
	int64_t cert_not_after;
} db_target_state_t;

/** Load the state of target_key into st (fields NULL/0 when absent).  Free with db_target_state_clear(). */
int db_target_state_get(db_t *db, const char *target_key, db_target_state_t *st);
void db_target_state_clear(db_target_state_t *st);
/**
 * The time (Unix ms) of target_key's oldest stored probe result at or after
 * from_ms into *t_ms, 0 when there is none (the status page: when its state
 * became known).
 */
int db_target_first_probe(db_t *db, const char *target_key, int64_t from_ms, int64_t *t_ms);

/* One row of state_change (to_state set) or probe_result (ok set). */
typedef struct db_event {
	int64_t time;	 /* Unix seconds */
	int64_t time_ms; /* Unix milliseconds: probes are stored to the millisecond */
	int64_t id;	 /* state changes: the row id (orders changes of one second); probes: 0 */
	char *target_key;
	char *from_state, *to_state; /* state changes */
	int ok;			     /* probes: 1 or 0; state changes: -1 */
	double latency_ms;	     /* < 0 when unknown */
	char *reason;
} db_event_t;

/**
 * The newest limit rows (0: all) of state_change (probes false) or
 * probe_result (probes true) for any of the nkeys target keys (repeats
 * allowed), newest first.  Free with db_events_free().
 */
int db_events_list(db_t *db, bool probes, const char *const *keys, size_t nkeys, unsigned limit,
		   db_event_t **out, size_t *n);
void db_events_free(db_event_t *e, size_t n);
