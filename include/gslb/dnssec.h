/* SPDX-License-Identifier: MIT */
/*
 * DNSSEC online signing (README "DNSSEC"): a zone's keys, the RRSIGs of
 * RRsets built as the answer path writes them, compact denial of existence
 * (RFC 9824) and the signature cache.  No OpenSSL type shows here, so the
 * answer path includes this header without depending on OpenSSL's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gslb/zone.h"

enum {
	DNSSEC_ALG_ECDSAP256SHA256 = 13, /* RFC 6605 */
	DNSSEC_ALG_ED25519 = 15,	 /* RFC 8080 */
	DNSSEC_SIG_LEN = 64,		 /* both algorithms' signatures */
	DNSSEC_T_DNSKEY = 48,
	DNSSEC_T_NSEC = 47,
	DNSSEC_T_CDS = 59,
	DNSSEC_T_CDNSKEY = 60,
	DNSSEC_T_NXNAME = 128, /* RFC 9824 */
	/* Signatures are valid from an hour ago to seven days ahead (README "DNSSEC"). */
	DNSSEC_INCEPTION_BACK = 3600,
	DNSSEC_VALIDITY = 7 * 86400,
	/* Keys a zone signs with at once: one, two while a rollover overlaps. */
	DNSSEC_KEYS_MAX = 4,
	/* The RRSIG rdata before the signer's name and the signature (RFC 4034 3.1). */
	DNSSEC_RRSIG_HEAD = 18,
};

/* One signing key, its private part ready for OpenSSL (opaque here). */
typedef struct dnssec_key dnssec_key_t;

/*
 * A key as the database stores it (src/db/schema.sql, table dnssec_key):
 * public_key is the DNSKEY public key field, private_key PKCS#8 DER, the
 * times Unix seconds; a time not set (NULL in the table) is 0 or INT64_MAX.
 */
typedef struct dnssec_key_row {
	uint8_t algorithm;
	uint16_t flags;
	const uint8_t *public_key;
	size_t public_len;
	const uint8_t *private_key;
	size_t private_len;
	int64_t publish, active, retire, remove;
} dnssec_key_row_t;

/**
 * A key from its parts.  Fails (GSLB_EINVAL) for an algorithm other than
 * 13 or 15, a private key OpenSSL cannot read or of another algorithm, or a
 * public key that is not the private key's.
 */
int dnssec_key_new(dnssec_key_t **out, uint8_t algorithm, uint16_t flags, const uint8_t *pub,
		   size_t publen, const uint8_t *der, size_t derlen);
void dnssec_key_free(dnssec_key_t *k);
/** Another reference to k's key (the same OpenSSL key): freed on its own. */
dnssec_key_t *dnssec_key_dup(const dnssec_key_t *k);

uint8_t dnssec_key_algorithm(const dnssec_key_t *k);
uint16_t dnssec_key_tag(const dnssec_key_t *k);

/** The key's DNSKEY RDATA (RFC 4034 2.1) in out; returns its length, 0 if cap is too small. */
size_t dnssec_key_dnskey(const dnssec_key_t *k, uint8_t *out, size_t cap);

/** RFC 4034 Appendix B: the key tag of a DNSKEY RDATA. */
uint16_t dnssec_keytag(const uint8_t *rdata, size_t len);

/**
 * The DS RDATA with a SHA-256 digest (RFC 4509) of the key for the zone
 * whose apex is the lowercased wire name owner: 36 bytes in out.
 */
int dnssec_key_ds(const dnssec_key_t *k, const uint8_t *owner, size_t owner_len, uint8_t out[36]);

/**
 * Sign len bytes of data with k: the 64-byte signature of RFC 6605 4 (r
 * and s, 32 bytes each) or RFC 8032 in sig.  Allocates (OpenSSL does).
 */
int dnssec_key_sign(const dnssec_key_t *k, const uint8_t *data, size_t len,
		    uint8_t sig[DNSSEC_SIG_LEN]);

/* ---- RRsets in canonical form (RFC 4034 6) ---- */

typedef struct dnssec_rdata {
	const uint8_t *data;
	uint16_t len;
} dnssec_rdata_t;

/** Sort RDATAs into canonical order (RFC 4034 6.3): as unsigned octet strings. */
void dnssec_rdata_sort(dnssec_rdata_t *rr, size_t n);

/** The RRSIG labels field of a wire name (RFC 4034 3.1.3): a leading "*" is not counted. */
uint8_t dnssec_labels(const uint8_t *name);

/**
 * The RRSIG RDATA up to the signature (RFC 4034 3.1): DNSSEC_RRSIG_HEAD
 * bytes, then the signer's name (lowercased wire, never compressed).
 * Returns the length written to out (at most 18 + 255).
 */
size_t dnssec_rrsig_head(uint8_t *out, uint16_t type, uint8_t algorithm, uint8_t labels,
			 uint32_t ttl, uint32_t expiration, uint32_t inception, uint16_t tag,
			 const uint8_t *signer, size_t signer_len);

/**
 * The RRs of an RRset as RFC 4034 3.1.8.1 signs them, each
 * owner | type | class | TTL | RDLENGTH | RDATA with owner the lowercased
 * wire name and rr in canonical order (dnssec_rdata_sort()).  Returns the
 * length written to out, or 0 when it does not fit in cap.
 */
size_t dnssec_rrset_wire(uint8_t *out, size_t cap, const uint8_t *owner, size_t owner_len,
			 uint16_t type, uint32_t ttl, const dnssec_rdata_t *rr, size_t n);

/**
 * The RRSIG RDATA of an RRset: head (dnssec_rrsig_head()) followed by the
 * signature of head + rrs (dnssec_rrset_wire()) in out, which must hold
 * head_len + DNSSEC_SIG_LEN bytes.  scratch holds head_len + rrs_len bytes.
 * Returns the RDATA length or a negative code.
 */
int dnssec_rrsig(const dnssec_key_t *k, const uint8_t *head, size_t head_len, const uint8_t *rrs,
		 size_t rrs_len, uint8_t *scratch, size_t scratch_len, uint8_t *out);

/**
 * A type bitmap (RFC 4034 4.1.2) of n types (any order, repeats allowed;
 * types is sorted in place).  out must hold 34 bytes per window used (8704
 * at most).  Returns the length.
 */
size_t dnssec_type_bitmap(uint16_t *types, size_t n, uint8_t *out);

/* ---- a signed zone, as a snapshot holds it ---- */

typedef struct dnssec_zone {
	const zone_t *zone;
	uint8_t apex[256]; /* lowercased wire name */
	uint8_t apex_len;
	uint8_t apex_labels;
	uint32_t nkeys;				 /* signing keys (active now) */
	dnssec_key_t *keys[DNSSEC_KEYS_MAX];	 /* owned */
	uint64_t key_id[DNSSEC_KEYS_MAX];	 /* what the cache tells their signatures by */
	uint8_t head[DNSSEC_KEYS_MAX][18 + 255]; /* each key's RRSIG head, type and times zero */
	uint16_t head_len[DNSSEC_KEYS_MAX];
	/* The apex's DNSKEY, CDS and CDNSKEY RRsets of the published keys, ready to copy. */
	zone_rrset_t dnskey, cds, cdnskey;
	uint8_t *data;
	size_t data_len;
} dnssec_zone_t;

/*
 * Every signed zone of a snapshot, found by its zone_t (a snapshot's zones
 * are fixed), and when the key timings next change what is signed.
 */
typedef struct dnssec_set {
	uint32_t count;
	dnssec_zone_t **zones; /* owned */
	int64_t next_change;   /* Unix seconds of the next key timing after now; 0: none */
	/*
	 * What the set signs and publishes (dnssec_set_add() keeps it): two
	 * sets alike sign alike, so a snapshot need not be built again.
	 */
	uint64_t digest;
	/*
	 * The zones by their zone_t's address, open addressing with linear
	 * probes, at most half full: a DO=1 query finds its zone in one or two
	 * probes however many zones are signed.  A zone_t is shared by the
	 * snapshots that serve it, so it cannot point to a snapshot's signing
	 * state itself.
	 */
	uint32_t mask;	/* slots - 1 */
	uint32_t shift; /* 64 - log2(slots) */
	const dnssec_zone_t **table;
} dnssec_set_t;

/**
 * The signed zone of z from its key rows, evaluated at now: keys in the
 * DNSKEY RRset from publish until remove, signing from active until
 * retire.  *next_change becomes the earliest key time after now if earlier
 * than it (or it is 0).  Returns 0 with *out NULL when no key is published
 * or active.  A row that is not a usable key is left out, err saying which
 * (else err is empty); when such rows leave no key to sign with, the
 * usable keys that retired last publish and sign on (err says so too),
 * else a negative code.
 */
int dnssec_zone_new(dnssec_zone_t **out, const zone_t *z, const dnssec_key_row_t *rows, size_t n,
		    int64_t now, int64_t *next_change, char *err, size_t errlen);
/**
 * A signed zone for z signing and publishing as old does (for old's zone
 * of the same name): what a snapshot keeps when the zone's key rows are
 * not usable any more.
 */
dnssec_zone_t *dnssec_zone_copy(const dnssec_zone_t *old, const zone_t *z);
void dnssec_zone_free(dnssec_zone_t *dz);

/** An empty set; dnssec_set_add() takes dz over (and returns 0). */
dnssec_set_t *dnssec_set_new(void);
int dnssec_set_add(dnssec_set_t *s, dnssec_zone_t *dz);
void dnssec_set_free(dnssec_set_t *s);

/** The signed zone of z, or NULL. */
static inline const dnssec_zone_t *dnssec_set_find(const dnssec_set_t *s, const zone_t *z)
{
	if (!s || !s->table)
		return NULL;
	uint32_t i = (uint32_t)(((uint64_t)(uintptr_t)z * 0x9e3779b97f4a7c15ULL) >> s->shift);
	for (;; i = (i + 1) & s->mask) {
		const dnssec_zone_t *dz = s->table[i];
		if (!dz || dz->zone == z)
			return dz;
	}
}

/* ---- the signature cache: per worker, fixed size, allocation-free on a hit ---- */

typedef struct dnssec_cache dnssec_cache_t;

typedef struct dnssec_cache_stats {
	uint64_t evictions; /* entries replaced while fresh, their bucket full */
} dnssec_cache_stats_t;

/*
 * What an entry keeps of an RRSIG record: its fixed part from the type
 * field on (TYPE, CLASS, TTL, RDLENGTH, then the RDATA up to the signer's
 * name), and the signature, which follows the signer's name in the record.
 * A key tells the RRset, its TTL and the signing key apart, so the whole
 * record but the owner and the signer's name is the entry's.
 */
enum {
	DNSSEC_CACHE_PRE = 10 + DNSSEC_RRSIG_HEAD,
	DNSSEC_CACHE_REC = DNSSEC_CACHE_PRE + DNSSEC_SIG_LEN,
};

/** A cache of 2^bits entries (120 bytes each).  NULL when out of memory. */
dnssec_cache_t *dnssec_cache_new(unsigned bits);
void dnssec_cache_free(dnssec_cache_t *c);

/*
 * The record stored under the 128-bit key h (DNSSEC_CACHE_REC bytes, as
 * above), if one is and it is less than half through its validity at now.
 * NULL otherwise (a miss: the caller counts what it signs).
 */
const uint8_t *dnssec_cache_get(dnssec_cache_t *c, const uint64_t h[2], uint32_t now);
/* Store rec (DNSSEC_CACHE_REC bytes; its inception and expiration are read from it) under h. */
void dnssec_cache_put(dnssec_cache_t *c, const uint64_t h[2], const uint8_t *rec);
const dnssec_cache_stats_t *dnssec_cache_stats(const dnssec_cache_t *c);

/**
 * The 128-bit key in h of len bytes of data for cache c: fast and keyed
 * with c's random seed (no two caches agree).
 */
void dnssec_cache_hash(const dnssec_cache_t *c, const uint8_t *data, size_t len, uint64_t h[2]);

/*
 * The 128-bit key in h of the two words x and y for cache c: a bijection of
 * x mixed with c's seed (its low bits the bucket) and y, so that no two
 * pairs share a key.  Cheaper than dnssec_cache_hash(); for words a client
 * cannot choose.
 */
void dnssec_cache_key(const dnssec_cache_t *c, uint64_t x, uint64_t y, uint64_t h[2]);
