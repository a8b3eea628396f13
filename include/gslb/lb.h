/* SPDX-License-Identifier: MIT */
/* Balanced names: pools as the answer path reads them, eligibility and the selection policies. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gslb/geo.h"
#include "gslb/lb_health.h"

enum lb_policy {
	LB_POLICY_WEIGHTED = 0,
	LB_POLICY_FAILOVER = 1,
	LB_POLICY_GEO = 2,
};

enum lb_admin {
	LB_ADMIN_AUTO = 0,
	LB_ADMIN_UP = 1,
	LB_ADMIN_DOWN = 2,
	LB_ADMIN_DRAIN = 3,
};

#define LB_MEMBERS_MAX 256    /* per pool; the selection works on stack arrays of this size */
#define LB_ADDRS_MAX 64	      /* per member and family */
#define LB_MEMBER_NAME_MAX 63 /* bytes of a member's name */

/*
 * The ranges of a pool's and a member's numbers (gslbctl(8)): gslbctl
 * refuses what is outside them, and so do the CHECK constraints of
 * src/db/schema.sql, which cannot name these (tests/unit/test_schema_limits.c
 * keeps the two equal).
 */
#define LB_TTL_MAX 86400    /* seconds: ttl 0 to this, degraded ttl 1 to this */
#define LB_ANSWERS_MAX 64   /* addresses in one answer, from 1 */
#define LB_WEIGHT_MAX 65535 /* from 0, which is chosen only when nothing else can be */
#define LB_PRIORITY_MAX 255 /* from 1, the most preferred */

typedef struct lb_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t addr[16];
	uint16_t row;	 /* its index among the member's served ones (lb_member_address()) */
	uint32_t target; /* health table index, LB_TARGET_NONE when unchecked */
} lb_addr_t;

/* A member's network (README "Balanced names" `network`), host bits zero. */
typedef struct lb_net {
	uint8_t family; /* 4 or 6 */
	uint8_t len;	/* prefix length */
	uint8_t addr[16];
} lb_net_t;

/**
 * Parse a CIDR prefix into n: an IPv4 or IPv6 address, then optionally "/"
 * and the prefix length in decimal digits (no length: the whole address).
 * The address is kept as written; lb_net_mask() clears its host bits.  The
 * grammar of the member_network rows gslbd reads and of gslbctl --network
 * and --ecs.  Returns 0, GSLB_EPARSE when text does not start with an
 * address and "/" or its end, or -ERANGE when what follows the "/" is not
 * a number from 0 to 32 (IPv4) or 128 (IPv6); n->family is set then.
 */
int lb_net_parse(const char *text, lb_net_t *n);

/** Clear the bits of n->addr beyond n->len; returns whether any was set. */
bool lb_net_mask(lb_net_t *n);

/* Continents as bits of lb_member_t.continents: AF AN AS EU NA OC SA. */
static inline int lb_continent_bit(const char *c)
{
	static const char codes[] = "AFANASEUNAOCSA";
	if (!c || !c[0] || !c[1] || c[2])
		return -1;
	for (int i = 0; i < 7; i++)
		if (codes[2 * i] == c[0] && codes[2 * i + 1] == c[1])
			return i;
	return -1;
}

/*
 * A member's name, addresses, countries and networks live in its pool's
 * block (lb_pool_t.block) when the pool was built from the configuration;
 * a pool built by hand (block NULL) owns each of them as its own malloc.
 */
typedef struct lb_member {
	const char *name; /* at most LB_MEMBER_NAME_MAX bytes, NUL-terminated */
	uint16_t weight;
	uint8_t priority;
	uint8_t admin;	    /* enum lb_admin */
	uint16_t naddr[2];  /* [0] IPv4, [1] IPv6 */
	lb_addr_t *addr[2]; /* owned by the pool */
	/*
	 * The location as a unit vector of 3 doubles (geo_unit_vector()), what
	 * the ranking reads, or NULL when has_location is false; the degrees
	 * are the configuration's (db_member_t).  Out of line: most members
	 * have none (24 bytes in each of 300,000 members were 7 MiB).  Owned by
	 * the pool, or by the member when built by hand.
	 */
	double *uvec;
	char (*countries)[8]; /* "DE" or "US-CA", upper case; owned by the pool */
	lb_net_t *nets;	      /* owned by the pool */
	uint32_t slot; /* answer counter index (query_ctx_t.member_answers), set by the server */
	uint16_t ncountries;
	uint16_t nnets;
	uint8_t continents; /* 1 << lb_continent_bit() per listed continent */
	bool has_location;
} lb_member_t;

/**
 * Free what a member of a pool built by hand owns (name, addresses,
 * countries, networks); not the member itself.  Not for a pool with a block.
 */
void lb_member_free(lb_member_t *m);

typedef struct lb_pool {
	const uint8_t *name; /* lowercased wire name; in block, or owned when built by hand */
	uint8_t name_len;
	uint8_t policy; /* enum lb_policy */
	uint8_t answers;
	bool fallback_all;
	uint32_t ttl;
	uint32_t degraded_ttl;
	uint16_t nmembers;
	/* Two flags here, where they fill the padding: 80 bytes a pool, not 88. */
	bool served;	      /* inside a served zone and not below a cut */
	bool has_nets;	      /* derived (as those below): some member has a --network */
	lb_member_t *members; /* owned; in block after room for the pool */
	/*
	 * lb_config_pools() and lb_pool_new() build a pool's members, their
	 * addresses, networks, countries and names and the pool's name as this
	 * one allocation, at their exact sizes, not one allocation per part in
	 * fixed-size buffers: 100,000 pools are kept small (bench/README.md).
	 * It starts with room for the pool itself (lb_pool_home()).  NULL for
	 * a pool built by hand, which owns each part on its own.
	 */
	void *block;
	/* derived from the members by lb_config_pools() */
	bool has_places;     /* some member has a --country (country or subdivision) */
	bool has_continents; /* some member has a --continent */
	bool has_family[2];  /* some member has an IPv4 [0] / IPv6 [1] address */
	uint32_t cfg_index;  /* lb_config_pools(): the db_config_t pool it was built from */
	/* The selection caches, [0] IPv4 and [1] IPv6 (lb_pool_sel_update()); owned, may be NULL. */
	struct lb_sel *_Atomic sel[2];
	/* derived by lb_pool_derive(): the members' networks as one lookup (src/lb/geo.c) */
	struct lb_geo_nets *geo_nets; /* owned; NULL when no member has a network */
	/*
	 * Pool sets share a pool that did not change (lb_set_make()): the
	 * references held, by sets and builders, on the control thread only.
	 */
	uint32_t refs;
	/* the server's metrics: the assignment that last gave the members slots (control thread) */
	uint32_t metrics_epoch;
} lb_pool_t;

/* What lb_pool_select() decided, for the answer writer and for explain. */
typedef struct lb_result {
	uint32_t ttl;
	bool fallback; /* no member was eligible; fallback all fired */
	bool nodata;   /* answer NODATA */
	bool degraded; /* a member is down or the fallback is in use */
	uint16_t naddrs;
	const lb_addr_t *addrs[LB_MEMBERS_MAX]; /* in answer order */
	uint16_t nchosen;
	uint16_t chosen[LB_MEMBERS_MAX]; /* member indexes */
	uint8_t geo_rule;		 /* geo pools: the lb_geo_rule that decided, else 0 */
	uint8_t scope; /* ECS scope prefix length (README "Balanced names": geo and ECS); 0 when not geo */
} lb_result_t;

/*
 * Who is asking, for geo pools: the ECS address when the query had one with
 * a source prefix above 0, else the peer (IPv4-mapped IPv6 peers as IPv4).
 */
typedef struct lb_client {
	uint8_t family; /* 4 or 6; 0 when unknown */
	uint8_t addr[16];
	const geo_info_t *geo; /* NULL when there is no geo file */
} lb_client_t;

/* The geo ranking rules of README "Balanced names", in order. */
enum lb_geo_rule {
	LB_GEO_NONE = 0,
	LB_GEO_NETWORK = 1,
	LB_GEO_COUNTRY = 2,
	LB_GEO_CONTINENT = 3,
	LB_GEO_DISTANCE = 4,
	LB_GEO_REST = 5,
};

/* The eligible members of the deciding geo rule (src/lb/geo.c). */
typedef struct lb_geo_rank {
	uint8_t rule;	 /* enum lb_geo_rule; LB_GEO_NONE when nothing is eligible */
	uint8_t scope;	 /* ECS scope for the client's family */
	uint8_t net_len; /* rule 1: the winning prefix length */
	uint16_t n;
	uint16_t idx[LB_MEMBERS_MAX]; /* member indexes; nearest first under rule 4 */
} lb_geo_rank_t;

/**
 * Rank the eligible members of pool p (family 4 or 6 of the answer) for
 * client cl (NULL: no client information) by the first README "Balanced names" geo rule
 * that matches any of them, with the ECS scope (README "Balanced names": geo and ECS).  Never
 * allocates.  Returns 0.
 */
int lb_geo_rank(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		lb_geo_rank_t *out);

/* How a pool stands for one family, for the metrics (lb_pool_counts()). */
typedef struct lb_pool_counts {
	uint16_t members;  /* with an address of the family and admin auto or up (in service) */
	uint16_t eligible; /* of those, the ones with a healthy address (admin up: all) */
	bool fallback;	   /* answers come from fallback all: nothing is eligible, drain included */
} lb_pool_counts_t;

/**
 * Count the members of pool p for family (4 or 6) with the health table h
 * as lb_pool_select() judges them (README "Balanced names"): members in
 * service, those of them eligible, and whether the answers of that family
 * come from the fallback.  Not for the query path (it walks every member).
 */
void lb_pool_counts(const lb_pool_t *p, int family, const lb_health_t *h, lb_pool_counts_t *out);

/* Per-member facts for explain, filled by lb_pool_explain(). */
typedef struct lb_member_view {
	bool healthy; /* has a healthy address of the family */
	bool eligible;
	bool secondary; /* drain or weight 0: used only when nothing else is */
	double probability;
} lb_member_view_t;

/**
 * Choose the answer of pool p for family (4 or 6) with the health table h
 * and the PRNG state rng; cl is the client for geo pools (may be NULL).
 * Never allocates.  Returns 0.
 */
int lb_pool_select(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		   uint64_t rng[2], lb_result_t *res);

/**
 * The probability of each member being in the answer (exact for one answer,
 * by enumeration when answers > 1 and the set is small, else by sampling),
 * plus health and eligibility; for geo pools only the deciding rank of client
 * cl (may be NULL) has a probability.  views has p->nmembers entries.  Not
 * for the query path.
 */
void lb_pool_explain(const lb_pool_t *p, int family, const lb_client_t *cl, const lb_health_t *h,
		     lb_member_view_t *views, bool *fallback);

/* ---- selection caches: a pool's candidates and cumulative weights, kept off the query path ---- */

struct lb_sel;

/**
 * Bring the selection caches of pool p up to date with the health table h:
 * the candidates lb_pool_select() would find now, with the cumulative
 * weights it draws from, stamped with h's generation.  A cache that is
 * still right only takes the new stamp; one that is not is replaced, and
 * the old one is chained on *retired for lb_sel_free() once no query can
 * read it (after an RCU grace period).  A cache already stamped with the
 * current generation is left alone; else every member and address of p is
 * walked (not for the query path).  Pools not served, and families no
 * member has, get none.  Only one thread may call it for a pool at a time.
 * Returns the number of caches replaced.
 */
unsigned lb_pool_sel_update(lb_pool_t *p, const lb_health_t *h, struct lb_sel **retired);

/** Free a chain of caches from lb_pool_sel_update().  NULL is a no-op. */
void lb_sel_free(struct lb_sel *s);

/** Free the caches of pool p, which no query can read any more. */
void lb_pool_sel_clear(lb_pool_t *p);

/* ---- pool sets: every pool a snapshot serves, found by name ---- */

typedef struct lb_entry {
	const uint8_t *name; /* lowercased wire, points into pool or into names */
	uint8_t name_len;
	uint32_t hash;
	const lb_pool_t *pool; /* NULL for an ancestor that only exists because of pools */
} lb_entry_t;

typedef struct lb_set {
	uint32_t npools;
	lb_pool_t **pools; /* a reference to each (lb_pool_ref()), shared with other sets */
	uint32_t nentries;
	lb_entry_t *entries; /* owned */
	uint8_t *names;	     /* owned, ancestor names */
	uint32_t table_mask;
	uint32_t *table; /* open addressing: 1 + the index of an entry, 0 for none */
	uint32_t nzones;
	const void **zones; /* zones with at least one served pool (zone_t *) */
	uint32_t nunserved; /* pools not served */
} lb_set_t;

struct zone_set;
struct zone;

/* Whether gslbd serves a pool's name (README "Zone files"), as lb_pool_serving() finds it. */
enum lb_serving {
	LB_SERVING_YES = 0,	    /* inside a served zone and not at or below a zone cut */
	LB_SERVING_NO_ZONE = 1,	    /* in no served zone */
	LB_SERVING_BELOW_CUT = 2,   /* at or below a delegation (NS below its zone's apex) */
	LB_SERVING_BELOW_DNAME = 3, /* below a DNAME: the name is redirected (RFC 6672 2.4) */
};

/**
 * The rule lb_set_new() applies to every pool, for gslbd and for `gslbctl
 * status`: a pool of lowercased wire name (len bytes) is served when a zone
 * of zones (NULL: none) holds it, no name from the pool's name up to (not
 * including) that zone's apex has NS records and no name above the pool's
 * (the apex included) has a DNAME; the topmost of these decides.  *zone,
 * when zone is not NULL, receives the deepest zone holding the name
 * (borrowed from zones), or NULL.  Returns an enum lb_serving.
 */
int lb_pool_serving(const struct zone_set *zones, const uint8_t *name, size_t len,
		    const struct zone **zone);

/** "served", "in no served zone", "below a delegation", "below a DNAME" for messages. */
const char *lb_serving_name(int serving);

/**
 * Make a pool set of npools pools (takes ownership of the array and the
 * members' address arrays, which must come from malloc).  Pools outside
 * every zone of zones, or below a zone cut, are kept but marked not served
 * (with a warning).  Caller frees with lb_set_free().
 */
lb_set_t *lb_set_new(lb_pool_t *pools, uint32_t npools, const struct zone_set *zones);

/**
 * A pool set of the npools pools at pools: takes over the array and the
 * reference to each pool it holds.  Pools are placed in zones as
 * lb_set_new() places them; a pool shared with another set of the same
 * zones keeps its served flag as it is.
 */
lb_set_t *lb_set_make(lb_pool_t **pools, uint32_t npools, const struct zone_set *zones);

/**
 * lb_set_make() for a set that differs from old (placed in the same zones)
 * only by pools replaced with pools of the same name at the same index:
 * old's name table is copied and the replaced pools' entries re-pointed,
 * instead of every name hashed again.  NULL (nothing taken over) when the
 * names differ: then lb_set_make().
 */
lb_set_t *lb_set_patch(const lb_set_t *old, lb_pool_t **pools, uint32_t npools,
		       const struct zone_set *zones);

/** Free a pool set and its references to its pools.  NULL is a no-op. */
void lb_set_free(lb_set_t *s);

/** Does any served pool lie in zone z (a zone_t pointer)? */
static inline bool lb_set_has_zone(const lb_set_t *s, const void *z)
{
	if (!s)
		return false;
	for (uint32_t i = 0; i < s->nzones; i++)
		if (s->zones[i] == z)
			return true;
	return false;
}

/**
 * The entry for a lowercased wire name (a pool or a pool's ancestor), or
 * NULL, given h = zone_name_hash(lname, len): the answer path hashes a name
 * once for the zone and the pool set.
 */
const lb_entry_t *lb_set_find_hashed(const lb_set_t *s, const uint8_t *lname, size_t len,
				     uint32_t h);

/* ---- pools from the database's configuration (src/lb/config.c) ---- */

struct db_config;
struct db_aliases;

/**
 * Turn a configuration read from the database into a pool array for
 * lb_set_new(): wire names, enums, the default degraded TTL, addresses split
 * by family with no health target yet.  A member's addresses are those it
 * serves (lb_member_address()): its own, then those aliases (what gslbd
 * resolved, NULL: nothing) holds for its alias.  Members beyond
 * LB_MEMBERS_MAX and addresses beyond LB_ADDRS_MAX are dropped with a
 * warning.  Returns the number of pools in *out (NULL when 0); free with
 * lb_pools_free() unless handed to lb_set_new().
 */
uint32_t lb_config_pools(const struct db_config *cfg, const struct db_aliases *aliases,
			 lb_pool_t **out);

struct db_member;
struct db_alias_state;

/** The state of host name name (lowercase, trailing dot) in aliases (NULL: none), or NULL. */
const struct db_alias_state *lb_alias_find(const struct db_aliases *aliases, const char *name);

/* One address a member serves (lb_member_address()). */
typedef struct lb_member_addr {
	const char *address; /* canonical text; borrowed from the member or the alias state */
	uint8_t family;	     /* 4 or 6 */
	const struct db_alias_state *alias; /* the alias state it came from, NULL for its own */
} lb_member_addr_t;

/**
 * The i-th address member m serves (README "Alias members"), into *out:
 * its own addresses first (i < m->naddresses, in their order), then those
 * the state of its alias in aliases (NULL: none known) holds, in theirs.
 * A member whose alias never resolved serves only its own, so with none it
 * is never eligible.  false when i is past the last.  gslbd and gslbctl
 * (explain, status) all read a member's addresses through it, so they
 * agree.  Allocates nothing; pointers in *out are borrowed from m and
 * aliases.
 */
bool lb_member_address(const struct db_member *m, const struct db_aliases *aliases, size_t i,
		       lb_member_addr_t *out);

/** Free a pool array from lb_config_pools().  NULL is a no-op. */
void lb_pools_free(lb_pool_t *pools, uint32_t n);

struct db_pool;

/**
 * One pool built from the database's pool p (and aliases, NULL: none) as
 * lb_config_pools() builds each, on the heap with one reference; NULL (with
 * a warning) when its name is not a domain name.  Drop it with
 * lb_pool_unref().
 */
lb_pool_t *lb_pool_new(const struct db_pool *p, const struct db_aliases *aliases);

/** Another reference to p (control thread only, as every reference). */
static inline lb_pool_t *lb_pool_ref(lb_pool_t *p)
{
	p->refs++;
	return p;
}

/**
 * Pool p (from lb_config_pools() or built by hand) on its own with one
 * reference, as lb_set_new() and lb_pool_new() keep each pool: moved to the
 * room its block keeps for it at its start, or for a pool built by hand
 * (block NULL) copied to the heap.  p is left to be dropped without
 * lb_pool_clear().
 */
lb_pool_t *lb_pool_home(lb_pool_t *p);

/** Drop a reference to p; the last frees it (lb_pool_clear()).  NULL is a no-op. */
void lb_pool_unref(lb_pool_t *p);

/**
 * Free what a pool owns (its block, or for a pool built by hand its name,
 * members, their names, addresses, places and networks, and what
 * lb_pool_derive() built), not the struct: the one place pool data is
 * freed, for arrays and shared pools alike.  Not for a pool that
 * lb_pool_home() moved into its block: lb_pool_unref() drops those.
 */
void lb_pool_clear(lb_pool_t *p);

/*
 * For pools built by hand (the tests): the name of pool p, a copy of text
 * lowercased in wire form, owned by p (block NULL); returns its length or
 * GSLB_EPARSE (p unchanged) when text is not a domain name.
 */
int lb_pool_set_name(lb_pool_t *p, const char *text);

/* The same for member m: a copy of the formatted text, at most LB_MEMBER_NAME_MAX bytes. */
void lb_member_set_name(lb_member_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Same configuration (as lb_pools_equal() for one pool)? */
bool lb_pool_equal(const lb_pool_t *a, const lb_pool_t *b);

/** Same configuration (names, settings, members, addresses; served is ignored)? */
bool lb_pools_equal(const lb_pool_t *a, uint32_t na, const lb_pool_t *b, uint32_t nb);
