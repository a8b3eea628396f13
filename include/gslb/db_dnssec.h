/* SPDX-License-Identifier: MIT */
/* DNSSEC signing keys in the database (table dnssec_key): read, added, retimed and removed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gslb/db.h"

/*
 * A zone is signed while it has a key (README "DNSSEC").  gslbctl dnssec writes the keys (on a
 * cluster node, gslbd mirrors them from etcd instead); gslbd reads them into its snapshot.  The
 * functions follow include/gslb/db.h: 0 or a negative code, the writes inside db_begin_write()
 * ... db_commit().
 */

/*
 * A time not planned (SQL NULL in the table).  The largest time there is, so that a key's
 * state at time now needs no special case: published while publish <= now < remove, signing
 * while active <= now < retire, whether or not those are planned.
 */
#define DB_DNSSEC_NEVER INT64_MAX

/* The DNSSEC algorithms gslbd signs with (RFC 8624 numbers). */
enum db_dnssec_alg {
	DB_DNSSEC_ECDSAP256SHA256 = 13, /* RFC 6605 */
	DB_DNSSEC_ED25519 = 15,		/* RFC 8080 */
};

/* A CSK: the DNSKEY flags of a zone key with the SEP bit (RFC 4034 2.1.1). */
#define DB_DNSSEC_FLAGS_CSK 257

/*
 * One key, a row of dnssec_key.  Loaded ones own their arrays (db_dnssec_keys_free()); one
 * passed to a write is only read.
 */
typedef struct db_dnssec_key {
	int64_t id;	     /* the row id; set by db_dnssec_key_insert() */
	char *zone;	     /* lowercase FQDN with its trailing dot */
	uint8_t algorithm;   /* enum db_dnssec_alg */
	uint16_t key_tag;    /* RFC 4034 Appendix B, over the DNSKEY RDATA */
	uint16_t flags;	     /* DNSKEY flags: DB_DNSSEC_FLAGS_CSK */
	uint8_t *public_key; /* the DNSKEY RDATA's public key field: 64 bytes X||Y for algorithm
				13 (RFC 6605 4), 32 for 15 (RFC 8080 3) */
	size_t public_key_len;
	uint8_t *private_key; /* PKCS#8 DER (OpenSSL d2i_AutoPrivateKey() reads it) */
	size_t private_key_len;
	/* Unix seconds; every one but created may be DB_DNSSEC_NEVER (publish is always set). */
	int64_t created; /* when the key was made */
	int64_t publish; /* in the DNSKEY RRset from */
	int64_t active;	 /* signing from */
	int64_t retire;	 /* no longer signing from */
	int64_t remove;	 /* out of the DNSKEY RRset from */
} db_dnssec_key_t;

/**
 * The keys of zone (lowercase with its trailing dot), or of every zone when zone is NULL, in
 * order of zone, then publish time, then id (the oldest key of a zone first): *out (n of them,
 * NULL when none), caller frees with db_dnssec_keys_free().  A zone without keys is 0 with
 * n 0, not an error.
 */
int db_dnssec_keys_load(db_t *db, const char *zone, db_dnssec_key_t **out, size_t *n);

/** Free n keys of db_dnssec_keys_load(), their private keys wiped first.  NULL is a no-op. */
void db_dnssec_keys_free(db_dnssec_key_t *keys, size_t n);

/**
 * Insert a key (its id ignored); *id, when not NULL, receives the new row's.  -EEXIST when the
 * zone already has this public key; GSLB_ECONFIG when a value breaks the table's checks (an
 * algorithm not 13 or 15 ...).
 */
int db_dnssec_key_insert(db_t *db, const db_dnssec_key_t *k, int64_t *id);

/** Set the times publish, active, retire and remove of the key of row k->id; -ENOENT if none. */
int db_dnssec_key_update(db_t *db, const db_dnssec_key_t *k);

/** Delete the key of row id; -ENOENT if none. */
int db_dnssec_key_delete(db_t *db, int64_t id);

/** Delete every key of zone; -ENOENT when it had none. */
int db_dnssec_keys_delete(db_t *db, const char *zone);
