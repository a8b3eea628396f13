/* SPDX-License-Identifier: MIT */
/*
 * The database of a cluster node (README "Two or more nameservers"): the settings gslbd
 * records for gslbctl, and the mirror of etcd's configuration, journal, nodes and votes.
 * Implemented in src/db/cluster.c on the tables of schema version 3 (src/db/schema.sql).
 *
 * etcd keys under the cluster prefix P (default "/gslbd/"):
 *   P "pools/" NAME          a pool in the JSON of gslbctl export (one object, with members)
 *   P "journal/" ID          a change: {"time","actor","node","command","summary"}
 *   P "nodes/" NODE          a live node (its lease): {"revision","down_votes","started","version"}
 *   P "votes/" NODE "/" KEY  NODE's verdict on target KEY: "up" or "down" (its lease)
 *   P "dnssec/" ZONE         the zone's DNSSEC keys (etcd_dnssec_value()), so every node signs
 *                            with the same ones
 * The mirror keeps each pool key's mod_revision, so a write conditional on what gslbctl read
 * compares against it, and so an event older than what is stored is never applied over it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gslb/db.h"
#include "gslb/db_dnssec.h"

/* ---- settings: written by gslbd --cluster, read by gslbctl ---- */

typedef struct db_cluster_settings {
	char *urls;   /* comma-separated etcd client URLs */
	char *prefix; /* "/gslbd/" */
	char *node;
	uint32_t lease_s;
	char *ca_file, *cert_file, *key_file; /* NULL when not given */
	char *user, *password_file;	      /* NULL when not given; never a password */
} db_cluster_settings_t;

/** Record the settings (replacing any); urls NULL removes them (the node is standalone). */
int db_cluster_settings_put(db_t *db, const db_cluster_settings_t *s);
/** The recorded settings; -ENOENT when the node is standalone.  Clear with ..._clear(). */
int db_cluster_settings_get(db_t *db, db_cluster_settings_t *s);
void db_cluster_settings_clear(db_cluster_settings_t *s);

/* ---- the mirror's position ---- */

typedef struct db_cluster_state {
	uint64_t cluster_id; /* etcd's, from the reply headers; 0 before the first sync */
	int64_t applied_rev; /* the highest mod_revision applied (not a header's revision) */
	bool connected;	     /* gslbd's connection to etcd, as last recorded */
	int64_t changed;     /* Unix seconds of the last change of connected */
} db_cluster_state_t;

int db_cluster_state_get(db_t *db, db_cluster_state_t *st);
int db_cluster_state_put(db_t *db, const db_cluster_state_t *st);

/* ---- mirroring pools (inside db_begin_write() ... db_commit()) ---- */

/** The mod_revision stored for key, 0 when none (never mirrored, or deleted and forgotten). */
int db_cluster_key_rev(db_t *db, const char *key, int64_t *mod_rev);

/**
 * Put pool p (members, checks and all, replacing any pool of that name) as etcd's key at
 * mod_rev.  Returns 1 and changes nothing when the stored mod_revision of key is mod_rev or
 * newer (the event was applied already), else 0 or a negative code.  A pool the schema would
 * refuse (a value out of range, two members of one name), or not named as key's last component,
 * is GSLB_ECONFIG with nothing written, so the caller may skip it and go on; after any other
 * failure, roll the transaction back.  A pool stored exactly as p only has its revision
 * recorded (the configuration is unchanged).
 */
int db_cluster_pool_put(db_t *db, const char *key, int64_t mod_rev, const db_pool_t *p);

/**
 * Delete the pool named pool (if present) as key's delete at mod_rev, remembering mod_rev so
 * an older put is not applied after it.  1 when skipped as above.
 */
int db_cluster_pool_delete(db_t *db, const char *key, const char *pool, int64_t mod_rev);

/**
 * After a full sync: delete every pool, and forget every key, not among the n keys given
 * (those etcd holds).  Also forgets deleted keys' revisions (a full sync starts anew).  A
 * pool is kept by its key's last component (P "pools/" NAME); standalone pools go too.
 */
int db_cluster_pools_retain(db_t *db, const char *const *keys, size_t n);

/**
 * Forget every key's revision, deleted keys' too; the pools stay.  For a full sync that may
 * not trust them (another cluster_id, or etcd's revision below applied_rev): the puts that
 * follow are then all applied, a pool stored as it is in etcd at the cost of a few reads.
 */
int db_cluster_keys_forget(db_t *db);

/* ---- mirroring DNSSEC keys (inside db_begin_write() ... db_commit()) ---- */

/**
 * Make zone's keys in the database the n keys of v (their zones and ids not used) as etcd's
 * key at mod_rev.  1 when skipped as db_cluster_pool_put() skips; keys stored exactly as v
 * only have the revision recorded.  GSLB_ECONFIG, nothing written, when zone is not key's last
 * component or a key is one the table refuses.  A full sync calls it after
 * db_cluster_pools_retain(), which forgets the revisions of every key but the pools'.
 */
int db_cluster_dnssec_put(db_t *db, const char *key, int64_t mod_rev, const char *zone,
			  const db_dnssec_key_t *v, size_t n);

/** Delete zone's keys as key's delete at mod_rev (db_cluster_pool_delete()'s rules). */
int db_cluster_dnssec_delete(db_t *db, const char *key, const char *zone, int64_t mod_rev);

/** After a full sync: delete the keys of every zone not among the n zones given. */
int db_cluster_dnssec_retain(db_t *db, const char *const *zones, size_t n);

/* ---- mirroring the journal ---- */

/** Add a journal entry from etcd (time, actor, node, command, summary) once per key. */
int db_cluster_journal_put(db_t *db, const char *key, const db_journal_entry_t *e);

/* ---- nodes and votes (gslbctl cluster status, status) ---- */

typedef struct db_cluster_node {
	char *name;
	bool live;
	int64_t last_seen;  /* Unix seconds: when it was last seen live */
	int64_t revision;   /* the revision it reported mirrored */
	int64_t down_votes; /* how many targets it votes down */
} db_cluster_node_t;

/** Insert or replace a node's row. */
int db_cluster_node_put(db_t *db, const db_cluster_node_t *n);
/** Every node, by name.  Free with db_cluster_nodes_free(). */
int db_cluster_nodes_list(db_t *db, db_cluster_node_t **out, size_t *n);
void db_cluster_nodes_free(db_cluster_node_t *v, size_t n);

/** Set (up true/false) a node's vote on a target key. */
int db_cluster_vote_put(db_t *db, const char *node, const char *target_key, bool up);
/** Remove one vote (target_key non-NULL) or all of a node's votes (NULL). */
int db_cluster_vote_delete(db_t *db, const char *node, const char *target_key);
/** Remove every vote (a full resync of the votes follows). */
int db_cluster_votes_clear(db_t *db);

typedef struct db_cluster_vote {
	char *node;
	bool up;
} db_cluster_vote_t;

/** The votes on target_key, by node name.  Free with db_cluster_votes_free(). */
int db_cluster_votes_get(db_t *db, const char *target_key, db_cluster_vote_t **out, size_t *n);
void db_cluster_votes_free(db_cluster_vote_t *v, size_t n);
