/* SPDX-License-Identifier: MIT */
/* A zone's data as the answer path reads it: nodes in a hash table, RRsets stored ready to copy. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gslb/core.h"

/*
 * Wire blocks.  Every RRset is stored as the exact bytes it takes in a
 * response, one RR after another:
 *
 *   [owner: 2-byte compression pointer][type][class][ttl][rdlength][rdata]
 *
 * The owner pointer and any rdata name that ends in the zone apex (NS, CNAME,
 * PTR, MX and SOA targets) are left as placeholders listed in fix[]; the
 * writer patches them with pointers into the question, whose name always
 * ends in the apex of the zone that answers.  So writing an RRset is one
 * memcpy and a few 2-byte stores, and the result is still valid DNS when
 * the pointers are patched.
 */
enum zone_fix_kind {
	ZONE_FIX_OWNER = 0, /* pointer to this RR's owner name */
	ZONE_FIX_APEX = 1,  /* pointer to the zone apex */
};

typedef struct zone_fix {
	uint32_t off; /* byte offset of the 2-byte placeholder within wire */
	uint8_t kind; /* enum zone_fix_kind */
} zone_fix_t;

struct zone_node;
struct zone_rrset;

/*
 * The parts of an RRset that few types have, apart so that the many A and
 * AAAA sets of a large zone do not carry them (zone_rrset_t.ext).
 */
typedef struct zone_rrset_ext {
	/*
	 * For NS, CNAME, MX and PTR: the offset within wire of each RR's
	 * target name (count entries), so an RR written later can point at it
	 * (glue owners, CNAME chain owners).  NULL for DNAME.
	 */
	const uint32_t *target_off;
	const uint8_t *cname_target; /* CNAME and DNAME only: lowercased wire target, in data */
	/*
	 * For NS RRsets at delegation points: the glue RRsets (A and AAAA of
	 * the NS targets that lie inside this zone), with the index of the
	 * NS RR whose target owns each.  Built by zone_finish().
	 */
	uint32_t nglue;
	const struct zone_rrset **glue;
	uint16_t *glue_ns;
} zone_rrset_ext_t;

typedef struct zone_rrset {
	uint16_t type;	/* host order */
	uint16_t count; /* number of RRs */
	uint32_t ttl;	/* of the set (RFC 2181 5.2: all RRs share it) */
	uint32_t len;	/* bytes in wire */
	uint32_t nfix;
	uint8_t *wire;	 /* in the zone's data block */
	zone_fix_t *fix; /* in the zone's data block, sorted by off */
	/* NS, CNAME, MX, PTR and DNAME sets: never NULL; NULL for the other types */
	zone_rrset_ext_t *ext;
} zone_rrset_t;

enum zone_node_flags {
	ZONE_NODE_APEX = 1 << 0,
	ZONE_NODE_DELEG = 1 << 1,    /* NS here and not the apex: a zone cut */
	ZONE_NODE_ENT = 1 << 2,	     /* empty non-terminal, no RRsets */
	ZONE_NODE_CNAME = 1 << 3,    /* has a CNAME RRset */
	ZONE_NODE_WILDCARD = 1 << 4, /* the name's first label is "*" */
	ZONE_NODE_DNAME = 1 << 5,    /* has a DNAME RRset (RFC 6672): names below are occluded */
};

typedef struct zone_node {
	const uint8_t *name;  /* lowercased wire name without the zone's apex */
	zone_rrset_t *rrsets; /* sorted by type */
	/*
	 * Other nodes by their index in zone_t.nodes plus one (0: none), which
	 * keeps a node at 32 bytes: zone_node_cut() and zone_node_wild().
	 */
	uint32_t cut;	  /* nearest zone cut at or above */
	uint32_t wild;	  /* the node "*.<name>" */
	uint8_t name_len; /* of the whole name, apex included */
	uint8_t labels;	  /* root excluded */
	uint16_t flags;	  /* enum zone_node_flags */
	uint16_t nrrsets;
} zone_node_t;

/*
 * A slot of a zone's lookup table: the node's name hash beside its index,
 * so a probe that misses does not read the node.
 */
typedef struct zone_slot {
	uint32_t hash; /* zone_name_hash() of the node's name */
	uint32_t node; /* index in zone_t.nodes plus one; 0: empty */
} zone_slot_t;

typedef struct zone {
	uint8_t apex[256]; /* lowercased wire name */
	uint8_t apex_len;
	uint8_t apex_labels;
	const zone_node_t *apex_node;
	zone_rrset_t soa_neg; /* the SOA with TTL min(SOA TTL, MINIMUM), RFC 2308 5 */
	uint32_t serial;
	/*
	 * Unique to this zone_t in the process: with the address of one of
	 * its RRsets (not reused while it lives), the key of that RRset's
	 * signatures in a worker's cache, whichever snapshots share it.
	 */
	uint64_t gen;

	zone_node_t *nodes; /* owned */
	uint32_t nnodes;
	uint32_t table_size; /* slots in table: 2 or 4 times the nodes (at least 16) */
	zone_slot_t *table;
	uint32_t nrrsets;
	zone_rrset_t *rrsets; /* every node's RRsets, owned; nodes point into it */
	uint8_t *names;	      /* every node's name, owned */
	uint8_t *data;	      /* every RRset's wire, fix, ext and target_off, owned */
	uint32_t nrecords;    /* RRs loaded */

	/* Bookkeeping for the loader; never read on the query path. */
	char *file; /* path it came from, owned */
	time_t mtime;
	time_t loaded;		  /* when this version was read (wall clock) */
	unsigned refs;		  /* touched by the control thread only */
	struct zone_build *build; /* non-NULL until zone_finish() */
} zone_t;

/** The nearest zone cut at or above node n of zone z, or NULL. */
static inline const zone_node_t *zone_node_cut(const zone_t *z, const zone_node_t *n)
{
	return n->cut ? &z->nodes[n->cut - 1] : NULL;
}

/** The node "*.<name of n>" of zone z, or NULL. */
static inline const zone_node_t *zone_node_wild(const zone_t *z, const zone_node_t *n)
{
	return n->wild ? &z->nodes[n->wild - 1] : NULL;
}

/**
 * Hash of a lowercased wire name of len bytes.  Zones, pool sets and the
 * answer path all hash names with it, so one hash per query name serves
 * every table the answer path looks in.
 */
static inline uint32_t zone_name_hash(const uint8_t *lname, size_t len)
{
	return gslb_hash(lname, len);
}

/**
 * Start a zone whose apex is the wire name apex (any case).  Returns NULL
 * only for an invalid name.  Caller frees with zone_unref().
 */
zone_t *zone_new(const uint8_t *apex);

/**
 * Add one RR.  owner is an absolute wire name (any case, stored
 * lowercased); rdata is uncompressed wire rdata.  Returns 0,
 * GSLB_EOUTOFZONE, GSLB_ECLASS, GSLB_EDUPSOA or GSLB_ETOOBIG.  RRs with the
 * same owner and type are merged into one RRset (identical RRs are dropped,
 * the TTL of the set is the lowest).  Only before zone_finish().
 */
int zone_add_rr(zone_t *z, const uint8_t *owner, uint16_t type, uint16_t rclass, uint32_t ttl,
		const uint8_t *rdata, uint16_t rdlen);

/**
 * Check the zone (one SOA at the apex, at least one NS there, no CNAME
 * beside other data) and build the lookup table, empty non-terminals, cuts,
 * wildcards, glue and wire blocks.  On failure returns a negative code and
 * writes a message to err.
 */
int zone_finish(zone_t *z, char *err, size_t errlen);

/** Take a reference (control thread only). */
zone_t *zone_ref(zone_t *z);
/** Drop a reference; frees the zone at zero.  NULL is a no-op. */
void zone_unref(zone_t *z);

/** Exact lookup of a lowercased wire name; NULL if absent. */
const zone_node_t *zone_node_find(const zone_t *z, const uint8_t *lname, size_t len);
/**
 * The same, given h = zone_name_hash(lname, len) (the answer path hashes a
 * name once), for a name known to be at or below the apex: only the labels
 * above it are compared.
 */
const zone_node_t *zone_node_find_hashed(const zone_t *z, const uint8_t *lname, size_t len,
					 uint32_t h);

/** The RRset of a type at a node, or NULL. */
const zone_rrset_t *zone_node_rrset(const zone_node_t *n, uint16_t type);

/* ---- zone sets: every zone a snapshot serves ---- */

typedef struct zone_set {
	uint32_t count;
	zone_t **zones; /* references held */
	uint32_t table_mask;
	zone_t **table;	    /* hashed by apex */
	uint8_t max_labels; /* most labels of any apex */
	uint8_t min_labels;
} zone_set_t;

zone_set_t *zone_set_new(void);
/** Add a zone (takes a new reference).  -EEXIST if its apex is there already. */
int zone_set_add(zone_set_t *s, zone_t *z);
/** Build the lookup table; call once after the last zone_set_add(). */
void zone_set_finish(zone_set_t *s);
/** The zone with exactly this lowercased apex, or NULL. */
zone_t *zone_set_get(const zone_set_t *s, const uint8_t *lname, size_t len);
/**
 * The deepest zone containing a lowercased wire name.  label_off[i] is the
 * offset of label i within lname (label 0 is the first), nlabels excludes
 * the root.  NULL when no zone contains it.
 */
const zone_t *zone_set_find(const zone_set_t *s, const uint8_t *lname, size_t len,
			    const uint8_t *label_off, int nlabels);
void zone_set_free(zone_set_t *s);

/* ---- loading (src/zone/load.c, uses ldns) ---- */

/**
 * Is a directory entry of this name never a zone file?  Hidden files,
 * editor backups and swap files (~, .swp, .swx, .tmp, .bak) and dpkg
 * leftovers (.dpkg-*): zone_load_dir() skips them and the reload watcher
 * ignores their changes.
 */
bool zone_file_ignored(const char *name);

/**
 * Load every zone file in dir.  A file that fails to parse is logged and,
 * when prev has a zone of the same name, that old version is kept (with a
 * warning saying so).  Returns 0 and
 * a new set in *out, or a negative code if dir cannot be read.  failed,
 * when non-NULL, receives the number of files that failed.
 */
int zone_load_dir(const char *dir, const zone_set_t *prev, zone_set_t **out, unsigned *failed);

/* A zone file that failed to load: its name in the directory and the message logged. */
typedef void (*zone_fail_cb)(void *arg, const char *file, const char *error);

/**
 * zone_load_dir(), also calling fail_cb(arg, ...) for each file that
 * failed (fail_cb NULL: none), so a reload can tell who asked for it what failed.
 */
int zone_load_dir_report(const char *dir, const zone_set_t *prev, zone_set_t **out,
			 unsigned *failed, zone_fail_cb fail_cb, void *arg);
