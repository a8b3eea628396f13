/* SPDX-License-Identifier: MIT */
/*
 * src/dnssec: keys, DNSKEY and key tags, DS, RRSIGs over RRsets, type
 * bitmaps and the signature cache, bytes in and bytes out, every signature
 * checked by ldns (an implementation other than ours), a corrupted one too.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gslb/dns.h"
#include "gslb/dnssec.h"
#include "gslb/zone.h"
#include "tap.h"

/* A fresh private key of algorithm alg: PKCS#8 DER in der, the DNSKEY public key field in pub. */
static EVP_PKEY *make_key(int alg, uint8_t *der, size_t *derlen, uint8_t *pub, size_t *publen)
{
	EVP_PKEY *pk = alg == DNSSEC_ALG_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
						 : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
	unsigned char *p = der;
	*derlen = (size_t)i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (alg == DNSSEC_ALG_ED25519) {
		*publen = 32;
		EVP_PKEY_get_raw_public_key(pk, pub, publen);
	} else {
		uint8_t pt[65];
		size_t l = 0;
		EVP_PKEY_get_octet_string_param(pk, "encoded-pub-key", pt, sizeof(pt), &l);
		memcpy(pub, pt + 1, 64);
		*publen = 64;
	}
	return pk;
}

/* An RR from its parts, read by ldns from wire. */
static ldns_rr *rr_of(const uint8_t *owner, size_t olen, uint16_t type, uint32_t ttl,
		      const uint8_t *rd, size_t rl)
{
	uint8_t w[1024];
	memcpy(w, owner, olen);
	dns_put16(w + olen, type);
	dns_put16(w + olen + 2, DNS_C_IN);
	dns_put32(w + olen + 4, ttl);
	dns_put16(w + olen + 8, (uint16_t)rl);
	memcpy(w + olen + 10, rd, rl);
	ldns_rr *rr = NULL;
	size_t pos = 0;
	if (ldns_wire2rr(&rr, w, olen + 10 + rl, &pos, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
		return NULL;
	return rr;
}

static const uint8_t apex[] = "\7example\3com";		    /* 13 bytes with the root */
static const uint8_t owner_mixed[] = "\3WwW\7Example\3cOM"; /* as a client may write it */
static const uint8_t owner_lower[] = "\3www\7example\3com";

/* Sign the A RRset {192.0.2.2, 192.0.2.1} at owner (lowercased wire) with k; verify with ldns. */
static ldns_status sign_and_verify(const dnssec_key_t *k, const uint8_t *owner, size_t olen,
				   const uint8_t *ldns_owner, size_t lolen, bool sort, int corrupt,
				   uint8_t *labels_out)
{
	uint8_t a1[4] = { 192, 0, 2, 2 }, a2[4] = { 192, 0, 2, 1 };
	dnssec_rdata_t rr[2] = { { a1, 4 }, { a2, 4 } };
	if (sort)
		dnssec_rdata_sort(rr, 2);
	uint32_t now = (uint32_t)time(NULL);
	uint8_t head[300], rrs[600], scratch[1000], rdata[400];
	uint8_t labels = dnssec_labels(owner);
	*labels_out = labels;
	size_t hl = dnssec_rrsig_head(head, DNS_T_A, dnssec_key_algorithm(k), labels, 300,
				      now + DNSSEC_VALIDITY, now - DNSSEC_INCEPTION_BACK,
				      dnssec_key_tag(k), apex, sizeof(apex));
	size_t rl = dnssec_rrset_wire(rrs, sizeof(rrs), owner, olen, DNS_T_A, 300, rr, 2);
	int n = dnssec_rrsig(k, head, hl, rrs, rl, scratch, sizeof(scratch), rdata);
	if (n < 0)
		return LDNS_STATUS_ERR;
	if (corrupt >= 0)
		rdata[corrupt] ^= 0x01;
	ldns_rr_list *set = ldns_rr_list_new();
	ldns_rr_list_push_rr(set, rr_of(ldns_owner, lolen, DNS_T_A, 300, a1, 4));
	ldns_rr_list_push_rr(set, rr_of(ldns_owner, lolen, DNS_T_A, 300, a2, 4));
	ldns_rr *sig = rr_of(ldns_owner, lolen, DNS_T_RRSIG, 300, rdata, (size_t)n);
	uint8_t kr[100];
	size_t kl = dnssec_key_dnskey(k, kr, sizeof(kr));
	ldns_rr_list *keys = ldns_rr_list_new();
	ldns_rr_list_push_rr(keys, rr_of(apex, sizeof(apex), DNSSEC_T_DNSKEY, 300, kr, kl));
	ldns_rr_list *good = ldns_rr_list_new();
	ldns_status st = ldns_verify_rrsig_keylist_time(set, sig, keys, (time_t)now, good);
	ldns_rr_list_deep_free(set);
	ldns_rr_list_deep_free(keys);
	ldns_rr_list_free(good);
	ldns_rr_free(sig);
	return st;
}

static void test_alg(int alg, const char *name)
{
	uint8_t der[200], pub[64];
	size_t derlen, publen;
	EVP_PKEY *pk = make_key(alg, der, &derlen, pub, &publen);
	dnssec_key_t *k = NULL;
	ok(dnssec_key_new(&k, (uint8_t)alg, 257, pub, publen, der, derlen) == 0,
	   "%s: the key reads from PKCS#8 DER", name);
	dnssec_key_t *bad = NULL;
	pub[5] ^= 1;
	ok(dnssec_key_new(&bad, (uint8_t)alg, 257, pub, publen, der, derlen) < 0 && !bad,
	   "%s: a public key that is not the private key's is refused", name);
	pub[5] ^= 1;
	ok(dnssec_key_new(&bad, alg == 13 ? 15 : 13, 257, pub, publen, der, derlen) < 0,
	   "%s: a key of the other algorithm is refused", name);

	/* DNSKEY RDATA and key tag, against ldns. */
	uint8_t kr[100];
	size_t kl = dnssec_key_dnskey(k, kr, sizeof(kr));
	is_int((long long)kl, 4 + (long long)publen, "%s: DNSKEY RDATA length", name);
	ok(kr[0] == 1 && kr[1] == 1 && kr[2] == 3 && kr[3] == alg &&
		   memcmp(kr + 4, pub, publen) == 0,
	   "%s: DNSKEY RDATA is flags 257, protocol 3, algorithm, the public key", name);
	ldns_rr *dnskey = rr_of(apex, sizeof(apex), DNSSEC_T_DNSKEY, 3600, kr, kl);
	is_int(dnssec_key_tag(k), ldns_calc_keytag(dnskey), "%s: key tag as ldns computes it",
	       name);

	/* DS with SHA-256, against ldns. */
	uint8_t ds[36];
	ok(dnssec_key_ds(k, apex, sizeof(apex), ds) == 0, "%s: DS made", name);
	ldns_rr *lds = ldns_key_rr2ds(dnskey, LDNS_SHA256);
	ldns_buffer *b = ldns_buffer_new(200);
	ldns_rr_rdata2buffer_wire(b, lds);
	ok(ldns_buffer_position(b) == 36 && memcmp(ldns_buffer_begin(b), ds, 36) == 0,
	   "%s: DS RDATA as ldns makes it", name);
	ldns_buffer_free(b);
	ldns_rr_free(lds);
	ldns_rr_free(dnskey);

	/* RRSIGs. */
	uint8_t labels;
	ldns_status st = sign_and_verify(k, owner_lower, sizeof(owner_lower), owner_mixed,
					 sizeof(owner_mixed), true, -1, &labels);
	ok(st == LDNS_STATUS_OK, "%s: RRSIG over an A RRset verifies (%s)", name,
	   ldns_get_errorstr_by_id(st));
	is_int(labels, 3, "%s: labels field of www.example.com", name);
	st = sign_and_verify(k, owner_lower, sizeof(owner_lower), owner_mixed, sizeof(owner_mixed),
			     true, 18 + (int)sizeof(apex) + 10, &labels);
	ok(st != LDNS_STATUS_OK, "%s: a corrupted signature does not verify", name);
	st = sign_and_verify(k, owner_lower, sizeof(owner_lower), owner_mixed, sizeof(owner_mixed),
			     true, 5, &labels);
	ok(st != LDNS_STATUS_OK, "%s: a corrupted original TTL does not verify", name);
	st = sign_and_verify(k, owner_lower, sizeof(owner_lower), owner_mixed, sizeof(owner_mixed),
			     false, -1, &labels);
	ok(st != LDNS_STATUS_OK, "%s: RRs signed out of canonical order do not verify", name);
	st = sign_and_verify(k, owner_mixed, sizeof(owner_mixed), owner_mixed, sizeof(owner_mixed),
			     true, -1, &labels);
	ok(st != LDNS_STATUS_OK, "%s: an owner signed in mixed case does not verify", name);
	static const uint8_t wild[] = "\1*\7example\3com";
	static const uint8_t expanded[] = "\3foo\7example\3com";
	st = sign_and_verify(k, wild, sizeof(wild), expanded, sizeof(expanded), true, -1, &labels);
	ok(st == LDNS_STATUS_OK && labels == 2,
	   "%s: a wildcard's RRSIG (labels %u, not counting *) verifies for a name it expands to",
	   name, labels);

	/* A signature from OpenSSL's own check too (RFC 6605 4: r | s, not DER). */
	uint8_t sig[64];
	ok(dnssec_key_sign(k, (const uint8_t *)"abc", 3, sig) == 0, "%s: raw signature", name);
	/* What a cache miss costs the worker (README "DNSSEC"): shown, not checked. */
	struct timespec t0, t1;
	uint8_t msg[120] = { 0 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 200; i++)
		dnssec_key_sign(k, msg, sizeof(msg), sig);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	diag("%s: %.1f us a signature (200 of a 120-byte RRset)", name,
	     ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 200 /
		     1e3);
	dnssec_key_free(k);
	EVP_PKEY_free(pk);
}

static void test_bitmap(void)
{
	/* RFC 9824 for a name that does not exist: NSEC RRSIG NXNAME. */
	uint16_t t[] = { DNSSEC_T_NXNAME, DNS_T_RRSIG, DNSSEC_T_NSEC };
	uint8_t out[8704];
	size_t n = dnssec_type_bitmap(t, 3, out);
	static const uint8_t want[] = {
		0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80
	};
	uint8_t w2[19];
	memcpy(w2, want, sizeof(w2));
	w2[2 + 46 / 8] |= 0x80 >> (46 % 8);
	w2[2 + 47 / 8] |= 0x80 >> (47 % 8);
	ok(n == 19 && memcmp(out, w2, 19) == 0, "bitmap NSEC RRSIG NXNAME");
	/* Against ldns's text parser, with a second window (CAA, 257). */
	uint16_t t2[] = { 257, DNS_T_A, DNS_T_NS, DNS_T_SOA, DNS_T_RRSIG, DNSSEC_T_NSEC, DNS_T_A };
	n = dnssec_type_bitmap(t2, 7, out);
	ldns_rr *rr = NULL;
	ldns_rr_new_frm_str(&rr, "a.example. 300 IN NSEC \\000.a.example. A NS SOA RRSIG NSEC CAA",
			    0, NULL, NULL);
	ldns_rdf *bm = ldns_rr_rdf(rr, 1);
	ok(rr && ldns_rdf_size(bm) == n && memcmp(ldns_rdf_data(bm), out, n) == 0,
	   "bitmap with two windows and a repeated type, as ldns writes it (%zu bytes)", n);
	ldns_rr_free(rr);
}

/* A cache record (DNSSEC_CACHE_REC bytes) with its times and a signature of byte fill. */
static void cache_rec(uint8_t *rec, uint32_t inception, uint32_t expiration, uint8_t fill)
{
	memset(rec, 0, DNSSEC_CACHE_REC);
	dns_put16(rec, DNS_T_RRSIG);
	dns_put32(rec + 10 + 8, expiration);
	dns_put32(rec + 10 + 12, inception);
	memset(rec + DNSSEC_CACHE_PRE, fill, DNSSEC_SIG_LEN);
}

static void test_cache(void)
{
	dnssec_cache_t *c = dnssec_cache_new(4);
	uint64_t h[2] = { 5, 7 }, h2[2] = { 5, 8 };
	uint8_t rec[DNSSEC_CACHE_REC];
	ok(!dnssec_cache_get(c, h, 1000), "cache: empty is a miss");
	cache_rec(rec, 1000 - 3600, 1000 + 7 * 86400, 0xab);
	dnssec_cache_put(c, h, rec);
	const uint8_t *s = dnssec_cache_get(c, h, 1000);
	ok(s && memcmp(s, rec, DNSSEC_CACHE_REC) == 0, "cache: a hit gives the record back");
	ok(!dnssec_cache_get(c, h2, 1000), "cache: another hash is a miss");
	uint32_t half = (7 * 86400 + 3600) / 2;
	ok(dnssec_cache_get(c, h, 1000 - 3600 + half - 1) != NULL,
	   "cache: still a hit just before half its validity");
	ok(!dnssec_cache_get(c, h, 1000 - 3600 + half),
	   "cache: a miss once half its validity has passed (signed again)");
	ok(!dnssec_cache_get(c, h, 1000 - 3600 - 1), "cache: a miss before its inception");
	cache_rec(rec, 1000, 1000 + 7 * 86400, 0xcd);
	dnssec_cache_put(c, h, rec);
	s = dnssec_cache_get(c, h, 1000 + 1000);
	ok(s && s[DNSSEC_CACHE_PRE] == 0xcd && dnssec_cache_stats(c)->evictions == 0,
	   "cache: made again, the record replaces its entry");
	/*
	 * Nine keys of one first bucket (2) and one second (0, from the high
	 * bits): eight kept, then the oldest goes.  In a cache of four
	 * buckets, with the key {5, 7} in bucket 1.
	 */
	uint64_t k[9][2];
	for (int i = 0; i < 9; i++) {
		k[i][0] = 2;
		k[i][1] = (uint64_t)i + 1;
	}
	for (int i = 0; i < 8; i++) {
		/* Key 1 made first, key 0 second: the oldest is not the first put. */
		int j = i == 0 ? 1 : i == 1 ? 0 : i;
		cache_rec(rec, j == 1 ? 100 : j == 0 ? 50 : 300, 200000, (uint8_t)j);
		dnssec_cache_put(c, k[j], rec);
	}
	bool kept = true;
	for (int i = 0; i < 8; i++) {
		const uint8_t *e = dnssec_cache_get(c, k[i], 300);
		kept = kept && e && e[DNSSEC_CACHE_PRE] == i;
	}
	ok(kept && dnssec_cache_stats(c)->evictions == 0,
	   "cache: eight keys of one first bucket all kept (four in their second)");
	ok(dnssec_cache_get(c, h, 1000 + 1000) != NULL, "... the other bucket's key untouched");
	cache_rec(rec, 300, 200000, 8);
	dnssec_cache_put(c, k[8], rec);
	kept = true;
	for (int i = 1; i < 9; i++) {
		const uint8_t *e = dnssec_cache_get(c, k[i], 300);
		kept = kept && e && e[DNSSEC_CACHE_PRE] == i;
	}
	ok(!dnssec_cache_get(c, k[0], 300) && kept,
	   "cache: both buckets full, the oldest of the eight entries goes");
	ok(dnssec_cache_stats(c)->evictions == 1, "cache: the eviction is counted");
	/*
	 * A walk over 1,000 RRsets' keys in 8,192 entries, as the benchmark's
	 * static names: each kept, whatever their buckets (before the second
	 * choice, five in one bucket of four missed at every pass).
	 */
	{
		dnssec_cache_t *big = dnssec_cache_new(13);
		int lost = 0;
		for (int round = 0; round < 20; round++) {
			for (uint64_t i = 0; i < 1000; i++) {
				uint64_t kk[2];
				dnssec_cache_key(big,
						 0x7f3a5c000000 + i * 48 + (uint64_t)round * 65536,
						 9, kk);
				cache_rec(rec, 300, 200000, 1);
				dnssec_cache_put(big, kk, rec);
			}
			/* Second walk: every key found. */
			for (uint64_t i = 0; i < 1000; i++) {
				uint64_t kk[2];
				dnssec_cache_key(big,
						 0x7f3a5c000000 + i * 48 + (uint64_t)round * 65536,
						 9, kk);
				lost += !dnssec_cache_get(big, kk, 300);
			}
			dnssec_cache_free(big);
			big = dnssec_cache_new(13);
		}
		dnssec_cache_free(big);
		is_int(lost, 0, "cache: 1,000 keys in 8,192 entries, 20 random seeds: none lost");
	}
	/* Words as keys: every pair its own key, the buckets of RRsets' addresses spread. */
	uint64_t w1[2], w2[2];
	dnssec_cache_key(c, 0x7f0012345678, 3, w1);
	dnssec_cache_key(c, 0x7f0012345678, 4, w2);
	ok(w1[0] == w2[0] && w1[1] != w2[1], "cache key of words: y tells two keys apart");
	dnssec_cache_key(c, 0x7f0012345680, 3, w2);
	ok(w1[0] != w2[0] && w1[1] == w2[1], "cache key of words: x tells two keys apart");
	static uint16_t wload[4096];
	int wover = 0;
	for (uint64_t i = 0; i < 1000; i++) {
		dnssec_cache_key(c, 0x7f3a5c000000 + i * 48, 9, w1);
		if (++wload[w1[0] & 4095] == 5)
			wover++;
	}
	/*
	 * 1,000 keys in 4,096 buckets: one with five or more is 1 in 40 with
	 * good bits; the addresses' own low bits would fill 256 buckets.
	 */
	ok(wover <= 1,
	   "cache key of words: 1,000 addresses 48 bytes apart spread (%d buckets of five)", wover);
	/* The key: the same bytes alike, any byte or length changed apart, another cache apart. */
	uint8_t d[40];
	for (size_t i = 0; i < sizeof(d); i++)
		d[i] = (uint8_t)i;
	uint64_t a[2], b[2];
	dnssec_cache_hash(c, d, sizeof(d), a);
	dnssec_cache_hash(c, d, sizeof(d), b);
	ok(a[0] == b[0] && a[1] == b[1], "cache key: the same bytes, the same key");
	int apart = 0, tries = 0;
	for (size_t i = 0; i < sizeof(d); i++, tries++) {
		d[i] ^= 0x20;
		dnssec_cache_hash(c, d, sizeof(d), b);
		apart += a[0] != b[0] && a[1] != b[1];
		d[i] ^= 0x20;
	}
	for (size_t l = 0; l < sizeof(d); l++, tries++) {
		dnssec_cache_hash(c, d, l, b);
		apart += a[0] != b[0] && a[1] != b[1];
	}
	is_int(apart, tries,
	       "cache key: each byte changed, each length, another key (both halves)");
	/*
	 * The bucket is the key's low bits: 1,000 RRsets alike but for a name's
	 * digits (the benchmark's) over 2,048 buckets of four leave at most three with
	 * five or more (expected 0.3; four or more is 1 in 3,700 with good bits).
	 */
	static uint16_t load[2048];
	int over = 0;
	for (int i = 1; i <= 1000; i++) {
		uint8_t rr[64];
		int n = snprintf((char *)rr + 1, sizeof(rr) - 1, "h%d", i);
		rr[0] = (uint8_t)n;
		memcpy(rr + 1 + n, "\5bench\4test\0\0\1\0\1\0\0\16\20\0\4\300\0\2\1", 26);
		dnssec_cache_hash(c, rr, 1 + (size_t)n + 26, a);
		if (++load[a[0] & 2047] == 5)
			over++;
	}
	ok(over <= 3, "cache key: 1,000 similar RRsets spread over the buckets (%d overfull)",
	   over);
	dnssec_cache_t *c2 = dnssec_cache_new(4);
	dnssec_cache_hash(c2, d, sizeof(d), b);
	ok(a[0] != b[0] && a[1] != b[1], "cache key: another cache, another key (random seed)");
	dnssec_cache_free(c2);
	dnssec_cache_free(c);
}

/* Key timings (README "DNSSEC"): which keys are published, which sign, when that changes. */
static void test_timings(void)
{
	static const char text[] = "example.com. 3600 IN SOA ns1.example.com. h.example.com. "
				   "1 2 3 4 300\nexample.com. 3600 IN NS ns1.example.com.\n";
	char dir[] = "/tmp/test_dnssec_sign.XXXXXX", path[300];
	if (!mkdtemp(dir))
		bail_out("mkdtemp");
	snprintf(path, sizeof(path), "%s/example.com.zone", dir);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	zone_set_t *zs = NULL;
	unsigned failed = 0;
	if (zone_load_dir(dir, NULL, &zs, &failed) < 0 || failed || zs->count != 1)
		bail_out("zone did not load");
	unlink(path);
	rmdir(dir);
	const zone_t *z = zs->zones[0];
	uint8_t der[2][200], pub[2][64];
	size_t derlen[2], publen[2];
	for (int i = 0; i < 2; i++)
		EVP_PKEY_free(make_key(13, der[i], &derlen[i], pub[i], &publen[i]));
	/* An old key retiring at 2000 and removed at 3000; a new one published at 1000, active at 2000. */
	dnssec_key_row_t rows[2] = {
		{ 13, 257, pub[0], publen[0], der[0], derlen[0], 100, 100, 2000, 3000 },
		{ 13, 257, pub[1], publen[1], der[1], derlen[1], 1000, 2000, INT64_MAX, INT64_MAX },
	};
	static const struct {
		int64_t now, next;
		unsigned published, signing, cds;
	} at[] = {
		{ 500, 1000, 1, 1, 1 },
		{ 1500, 2000, 2, 1, 2 },
		{ 2500, 3000, 2, 1, 1 },
		{ 3500, 0, 1, 1, 1 },
	};
	char err[200];
	dnssec_key_t *k0 = NULL, *k1 = NULL;
	dnssec_key_new(&k0, 13, 257, pub[0], publen[0], der[0], derlen[0]);
	dnssec_key_new(&k1, 13, 257, pub[1], publen[1], der[1], derlen[1]);
	uint16_t tag0 = dnssec_key_tag(k0), tag1 = dnssec_key_tag(k1);
	dnssec_key_free(k0);
	dnssec_key_free(k1);
	for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
		dnssec_zone_t *dz = NULL;
		int64_t next = 0;
		int rc = dnssec_zone_new(&dz, z, rows, 2, at[i].now, &next, err, sizeof(err));
		ok(rc == 0 && dz && dz->dnskey.count == at[i].published &&
			   dz->nkeys == at[i].signing && dz->cds.count == at[i].cds &&
			   next == at[i].next,
		   "at %lld: %u published, %u signing, %u CDS, next change %lld",
		   (long long)at[i].now, at[i].published, at[i].signing, at[i].cds,
		   (long long)at[i].next);
		if (dz && dz->nkeys == 1)
			ok(dnssec_key_tag(dz->keys[0]) == (at[i].now > 2000 ? tag1 : tag0) &&
				   dns_get16(dz->head[0] + 16) == dnssec_key_tag(dz->keys[0]),
			   "at %lld: the %s key signs", (long long)at[i].now,
			   at[i].now > 2000 ? "new" : "old");
		dnssec_zone_free(dz);
	}
	rows[1].public_key = pub[0];
	dnssec_zone_t *dz = NULL;
	int64_t next = 0;
	ok(dnssec_zone_new(&dz, z, rows, 2, 1500, &next, err, sizeof(err)) == 0 && dz &&
		   dz->nkeys == 1 && dz->dnskey.count == 1 && err[0],
	   "a row whose public key is not its private key's: left out, an error (%s)", err);
	dnssec_zone_t *cp = dz ? dnssec_zone_copy(dz, z) : NULL;
	ok(cp && cp->nkeys == 1 && cp->dnskey.len == dz->dnskey.len &&
		   memcmp(cp->dnskey.wire, dz->dnskey.wire, dz->dnskey.len) == 0 &&
		   cp->dnskey.wire != dz->dnskey.wire,
	   "a signed zone's copy: its keys and DNSKEY RRset, in its own memory");
	dnssec_zone_free(dz);
	dnssec_zone_free(cp);
	dz = NULL;
	rows[0].public_key = pub[1];
	ok(dnssec_zone_new(&dz, z, rows, 2, 1500, &next, err, sizeof(err)) < 0 && !dz && err[0],
	   "no usable key to sign with: an error (%s)", err);
	/*
	 * The new key's row bad once the old key has retired: the old key,
	 * which signed last, publishes and signs on (the parent's DS names it),
	 * whatever the zone was signed with before.
	 */
	rows[0].public_key = pub[0];
	rows[1].public_key = pub[0];
	for (int64_t t = 2500; t <= 3500; t += 1000) {
		dz = NULL;
		next = 0;
		int rc = dnssec_zone_new(&dz, z, rows, 2, t, &next, err, sizeof(err));
		ok(rc == 0 && dz && dz->nkeys == 1 && dz->dnskey.count == 1 &&
			   dnssec_key_tag(dz->keys[0]) == tag0 && strstr(err, "key 2") &&
			   strstr(err, "key 1 signs on past its retire time") &&
			   next == (t < 3000 ? 3000 : 0),
		   "at %lld, the new key's row bad: the old key signs on, an error (%s)",
		   (long long)t, err);
		dnssec_zone_free(dz);
	}
	/* A key that never signed is not kept: retired before it was active. */
	rows[0].active = 2500;
	dz = NULL;
	ok(dnssec_zone_new(&dz, z, rows, 2, 3500, &next, err, sizeof(err)) < 0 && !dz,
	   "a key retired before it signed is not kept: an error (%s)", err);
	zone_set_free(zs);
}

int main(void)
{
	test_alg(DNSSEC_ALG_ECDSAP256SHA256, "ECDSAP256SHA256");
	test_alg(DNSSEC_ALG_ED25519, "ED25519");
	test_bitmap();
	test_cache();
	test_timings();
	return done_testing();
}
