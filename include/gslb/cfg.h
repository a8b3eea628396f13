/* SPDX-License-Identifier: MIT */
/*
 * The configuration's text forms, shared by gslbctl and gslbd (libgslbcfg, src/cfg): the
 * validators of every value a user gives, a pool as the JSON object gslbctl export writes
 * (and a cluster keeps in etcd), and a whole configuration file as gslbctl apply reads it.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gslb/db.h"
#include "gslb/json.h"
#include "gslb/lb.h"

/* ---- a pool as JSON ---- */

/*
 * Room for any message of the JSON readers: a path into the document of up
 * to 255 characters ("pools[3].members[1].weight"), ": " and a validator's
 * reason with its value.
 */
#define CFG_ERR_MAX 640

/**
 * Read one pool object (as gslbctl export writes each element of "pools")
 * from len bytes of JSON text into *out, with every value validated as
 * gslbctl apply validates it: defaults filled in, members sorted by name,
 * addresses and networks canonical and sorted.  0, or GSLB_EPARSE (no JSON
 * text: why says where, "line 1 column 9: ...") or GSLB_ECONFIG (a value
 * refused: why names it by its path, "members[1].weight: 70000 is not in
 * 0-65535"), with nothing left in *out.  why gets at most whylen bytes
 * (CFG_ERR_MAX holds any message).  The name is made canonical (lowercase,
 * trailing dot); a caller reading it from a key compares the two.  Any thread
 * may call it: it keeps no state between calls.  Caller frees *out with
 * cfg_pool_clear().
 */
int cfg_pool_from_json(const char *text, size_t len, db_pool_t *out, char *why, size_t whylen);

/**
 * A pool as compact JSON text (no spaces or newlines), the object gslbctl
 * export writes for it: the same pool always gives the same bytes, and
 * cfg_pool_from_json() reads them back as that pool (its ids aside).
 * *len, when not NULL, receives the length.  Caller frees the text with free().
 */
char *cfg_pool_to_json(const db_pool_t *p, size_t *len);

/** Free what a pool owns (its name, members and checks, not the struct itself) and zero it. */
void cfg_pool_clear(db_pool_t *p);

/**
 * Read a configuration file (gslbctl apply's: {"version": 1, "pools": [...]}),
 * every value validated, pools and members sorted.  0, or GSLB_EPARSE or
 * GSLB_ECONFIG with why as for cfg_pool_from_json() ("pools[0].ttl: ...").
 * Caller frees *out with db_config_free() (NULL on failure).
 */
int cfg_config_from_json(const char *text, size_t len, db_config_t **out, char *why, size_t whylen);

/** Write a pool (all of it) as a JSON object: export, pool show, apply's input format. */
void cfg_pool_json(jw_t *w, const db_pool_t *p);
void cfg_check_json(jw_t *w, const db_check_t *c);

/*
 * A text written as a stream (open_memstream()): summaries, lists, the
 * command line, a pool's JSON.  Running out of memory aborts with a message, as
 * gslb_malloc() does.  cfg_mem_close() closes f; *text (caller frees) then
 * holds everything written and *len its length.
 */
FILE *cfg_mem_open(char **text, size_t *len);
void cfg_mem_close(FILE *f);

/* ---- validators: 0, or -1 with the reason in why ("70000 is not in 0-65535") ---- */

#define WHY_MAX 256

int val_pool_name(const char *s, char *out, size_t outlen, char *why);
int val_member_name(const char *s, char *why);
/**
 * An alias member's host name (README "Alias members"): a domain name of
 * letters, digits, hyphens and underscores, labels of 1-63, at most 255
 * bytes in wire form, not the root nor an IP address; lowercase with the
 * trailing dot in out (DNS_NAME_MAX + 1 bytes).
 */
int val_alias(const char *s, char *out, size_t outlen, char *why);
/** Canonical inet_ntop() text in out (>= 46 bytes), family 4 or 6. */
int val_ip(const char *s, char *out, int *family, char *why);
/** As val_ip(), for a served member address: IPv4-mapped IPv6 addresses are refused. */
int val_member_address(const char *s, char *out, int *family, char *why);
int val_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *v, char *why);
/** Decimal seconds ("0.5", at most 3 decimals) in lo_ms..hi_ms. */
int val_seconds(const char *s, uint32_t lo_ms, uint32_t hi_ms, uint32_t *ms, char *why);

/* The numbers of a configuration, each read from a gslbctl option and from the JSON. */
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
	const char *key; /* "degraded_ttl", in the JSON of export, apply and etcd */
	bool seconds;	 /* decimal seconds read into milliseconds, else a whole number */
	uint32_t lo, hi; /* the range, in milliseconds for seconds */
} num_field_def_t;

/*
 * Indexed by enum num_field (src/cfg/fields.c): the ranges of
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

/* ---- configuration helpers ---- */

/**
 * Deep copies of the db structs (gslb_* allocation); db_check_free() and db_member_clear() free
 * them.
 */
db_check_t *cfg_check_dup(const db_check_t *c);
void cfg_member_copy(db_member_t *dst, const db_member_t *src);
/** Text of a member's address list, comma separated, sorted (malloc'd). */
char *cfg_join(char *const *v, size_t n, const char *sep);

/* ---- building a configuration, from gslbctl's options or from the JSON ---- */

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
