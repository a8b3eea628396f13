/* SPDX-License-Identifier: MIT */
/*
 * The answer path signing (README "DNSSEC"): queries with DO=1 into
 * query_answer() over a zone file and pools with keys, every RRSIG of the
 * response verified by ldns against the zone's DNSKEY RRset; compact
 * denial; DO=0 answers byte for byte those of the same zone unsigned; no
 * allocation on a signature cache hit.
 */
#include <stdbool.h>
#include <ldns/ldns.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/dnssec.h"
#include "gslb/lb.h"
#include "gslb/query.h"
#include "gslb/zone.h"
#include "../../src/lb/internal.h"
#include "alloc_count.h"
#include "tap.h"

static const char zone_text[] =
	"$ORIGIN example.com.\n"
	"@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
	"@ 3600 IN NS ns1\n"
	"@ 3600 IN NS ns2\n"
	"@ 3600 IN MX 10 Mail\n"
	"ns1 3600 IN A 192.0.2.1\n"
	"ns2 3600 IN A 192.0.2.2\n"
	"mail 3600 IN A 192.0.2.25\n"
	"www 300 IN A 192.0.2.11\n"
	"www 300 IN A 192.0.2.10\n"
	"www 300 IN AAAA 2001:db8::10\n"
	"www 300 IN TXT \"hello\"\n"
	"alias 300 IN CNAME www\n"
	"chain 300 IN CNAME alias\n"
	"toghost 300 IN CNAME ghost\n"
	"*.wild 120 IN A 192.0.2.50\n"
	"host.ent 300 IN A 192.0.2.30\n"
	"sub 3600 IN NS ns.sub\n"
	"ns.sub 3600 IN A 192.0.2.53\n"
	"secure 3600 IN NS ns.secure\n"
	"secure 3600 IN DS 12345 13 2 "
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	"ns.secure 3600 IN A 192.0.2.54\n"
	"kid 3600 IN NS ns.kid\n"
	"ns.kid 3600 IN A 192.0.2.55\n"
	"big 300 IN TXT \"" /* 40 TXT RRs of 100 bytes: too big for 512 bytes */
	"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
	"567890123456\"\n";

static const char zone2_text[] = "$ORIGIN example.net.\n"
				 "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 600\n"
				 "@ 3600 IN NS ns1\n"
				 "ns1 3600 IN A 192.0.2.1\n"
				 "www 60 IN A 192.0.2.99\n";

/* A weighted pool of n members, one IPv4 address each (192.0.2.101, .102 ...), TTL 30. */
/* The pools' TTL in the snapshots snap_make() builds next. */
static uint32_t pool_ttl = 30;

static void pool_init(lb_pool_t *p, const char *name, uint16_t n)
{
	memset(p, 0, sizeof(*p));
	int len = lb_pool_set_name(p, name);
	if (len < 0)
		bail_out("bad pool name %s", name);
	p->name_len = (uint8_t)len;
	p->policy = LB_POLICY_WEIGHTED;
	p->answers = 1;
	p->fallback_all = true;
	p->ttl = pool_ttl;
	p->degraded_ttl = 10;
	p->nmembers = n;
	p->members = gslb_calloc(n, sizeof(*p->members));
	for (uint16_t i = 0; i < n; i++) {
		lb_member_t *mb = &p->members[i];
		lb_member_set_name(mb, "m%u", i + 1);
		mb->weight = 100;
		mb->priority = 1;
		mb->naddr[0] = 1;
		mb->addr[0] = gslb_calloc(1, sizeof(lb_addr_t));
		mb->addr[0]->family = 4;
		mb->addr[0]->target = LB_TARGET_NONE;
		memcpy(mb->addr[0]->addr, (uint8_t[]){ 192, 0, 2, (uint8_t)(101 + i) }, 4);
	}
	lb_pool_derive(p);
}

struct key {
	uint8_t der[200], pub[64];
	size_t derlen, publen;
};

static void make_key(int alg, struct key *k)
{
	EVP_PKEY *pk = alg == DNSSEC_ALG_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
						 : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
	unsigned char *p = k->der;
	k->derlen = (size_t)i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (alg == DNSSEC_ALG_ED25519) {
		k->publen = 32;
		EVP_PKEY_get_raw_public_key(pk, k->pub, &k->publen);
	} else {
		uint8_t pt[65];
		size_t l = 0;
		EVP_PKEY_get_octet_string_param(pk, "encoded-pub-key", pt, sizeof(pt), &l);
		memcpy(k->pub, pt + 1, 64);
		k->publen = 64;
	}
	EVP_PKEY_free(pk);
}

/*
 * The zones of dir with pools; signed_: example.com signed with k13 (and
 * k13b beside it when given, a rollover's two signing keys), example.net
 * with k15.
 */
static query_data_t *snap_make(const char *dir, bool signed_, struct key *k13, struct key *k15,
			       struct key *k13b)
{
	zone_set_t *zs = NULL;
	unsigned failed = 0;
	if (zone_load_dir(dir, NULL, &zs, &failed) < 0 || failed)
		bail_out("zones did not load");
	lb_pool_t *pools = gslb_calloc(3, sizeof(lb_pool_t));
	pool_init(&pools[0], "pool.example.com.", 4);
	pool_init(&pools[1], "pool.example.net.", 2);
	/* Two answers of four, drawn by weight: six sets, each in two orders. */
	pool_init(&pools[2], "multi.example.com.", 4);
	pools[2].answers = 2;
	lb_pool_derive(&pools[2]);
	query_data_t *s = gslb_calloc(1, sizeof(*s));
	s->zones = zs;
	s->pools = lb_set_new(pools, 3, zs);
	s->generation = 1;
	if (!signed_)
		return s;
	dnssec_set_t *ds = dnssec_set_new();
	int64_t now = time(NULL), next = 0;
	for (uint32_t i = 0; i < zs->count; i++) {
		const zone_t *z = zs->zones[i];
		if (z->apex[1] == 'k')
			continue; /* kid.example.com: served here, not signed */
		struct key *k = z->apex[1] == 'e' && z->apex[9] == 'c' ? k13 : k15;
		dnssec_key_row_t row[2];
		size_t nrow = k == k13 && k13b ? 2 : 1;
		for (size_t j = 0; j < nrow; j++) {
			struct key *kj = j ? k13b : k;
			row[j] = (dnssec_key_row_t){
				.algorithm = k == k13 ? 13 : 15,
				.flags = 257,
				.public_key = kj->pub,
				.public_len = kj->publen,
				.private_key = kj->der,
				.private_len = kj->derlen,
				.publish = now - 86400,
				.active = now - 86400,
			};
		}
		dnssec_zone_t *dz = NULL;
		char err[200];
		if (dnssec_zone_new(&dz, z, row, nrow, now, &next, err, sizeof(err)) < 0 || !dz)
			bail_out("dnssec_zone_new: %s", err);
		dnssec_set_add(ds, dz);
	}
	s->dnssec = ds;
	return s;
}

static uint8_t resp[DNS_MSG_MAX];

static size_t ask(query_ctx_t *ctx, const query_data_t *s, const char *name, uint16_t qtype,
		  bool edns, bool do_bit, uint16_t udp, int transport)
{
	uint8_t q[600];
	memset(q, 0, 12);
	dns_put16(q, 0x4242);
	dns_put16(q + 4, 1);
	int n = dns_name_from_str(q + 12, name);
	size_t len = 12 + (size_t)n;
	dns_put16(q + len, qtype);
	dns_put16(q + len + 2, DNS_C_IN);
	len += 4;
	if (edns) {
		dns_put16(q + 10, 1);
		q[len] = 0;
		dns_put16(q + len + 1, DNS_T_OPT);
		dns_put16(q + len + 3, udp);
		q[len + 5] = q[len + 6] = 0;
		dns_put16(q + len + 7, do_bit ? DNS_EDNS_DO : 0);
		dns_put16(q + len + 9, 0);
		len += 11;
	}
	return query_answer(ctx, s, q, len, resp, transport, NULL);
}

static ldns_rr_list *dnskeys; /* of the zone being checked */

/*
 * Every RRset of sections an and ns with a verified RRSIG (but the NS of a
 * referral and the additional section): returns the number of RRsets
 * verified, -1 when one is unsigned or bogus.
 */
static int verify_all(ldns_pkt *p, bool referral, time_t when)
{
	int verified = 0;
	ldns_rr_list *secs[2] = { ldns_pkt_answer(p), ldns_pkt_authority(p) };
	for (int s = 0; s < 2; s++) {
		ldns_rr_list *l = secs[s];
		for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
			ldns_rr *rr = ldns_rr_list_rr(l, i);
			ldns_rr_type t = ldns_rr_get_type(rr);
			if (t == LDNS_RR_TYPE_RRSIG)
				continue;
			bool first = true;
			for (size_t j = 0; j < i; j++)
				if (ldns_rr_get_type(ldns_rr_list_rr(l, j)) == t &&
				    ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(l, j)),
						       ldns_rr_owner(rr)) == 0)
					first = false;
			if (!first)
				continue;
			if (referral && t == LDNS_RR_TYPE_NS && s == 1)
				continue;
			ldns_rr_list *set = ldns_rr_list_new();
			ldns_rr_list *sigs = ldns_rr_list_new();
			for (size_t j = 0; j < ldns_rr_list_rr_count(l); j++) {
				ldns_rr *o = ldns_rr_list_rr(l, j);
				if (ldns_dname_compare(ldns_rr_owner(o), ldns_rr_owner(rr)) != 0)
					continue;
				if (ldns_rr_get_type(o) == t)
					ldns_rr_list_push_rr(set, o);
				else if (ldns_rr_get_type(o) == LDNS_RR_TYPE_RRSIG &&
					 ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(o)) == t)
					ldns_rr_list_push_rr(sigs, o);
			}
			bool good = ldns_rr_list_rr_count(sigs) > 0;
			for (size_t j = 0; j < ldns_rr_list_rr_count(sigs); j++) {
				ldns_rr_list *gk = ldns_rr_list_new();
				ldns_status st = ldns_verify_rrsig_keylist_time(
					set, ldns_rr_list_rr(sigs, j), dnskeys, when, gk);
				if (st != LDNS_STATUS_OK) {
					diag("type %d: %s", t, ldns_get_errorstr_by_id(st));
					good = false;
				}
				ldns_rr_list_free(gk);
			}
			if (!good && ldns_rr_list_rr_count(sigs) == 0)
				diag("type %d has no RRSIG", t);
			ldns_rr_list_free(set);
			ldns_rr_list_free(sigs);
			if (!good)
				return -1;
			verified++;
		}
	}
	return verified;
}

static ldns_pkt *pkt_of(size_t len)
{
	ldns_pkt *p = NULL;
	if (!len || ldns_wire2pkt(&p, resp, len) != LDNS_STATUS_OK)
		return NULL;
	return p;
}

/* Ask with DO=1 over TCP; the packet, every RRset verified (count in *nv). */
static ldns_pkt *ask_signed(query_ctx_t *ctx, const query_data_t *s, const char *name,
			    uint16_t qtype, int *nv, bool referral)
{
	ldns_pkt *p = pkt_of(ask(ctx, s, name, qtype, true, true, 1232, QUERY_TCP));
	*nv = p ? verify_all(p, referral, time(NULL)) : -1;
	return p;
}

/* The NSEC of the authority section: next name and types as text, for the checks. */
static bool nsec_is(ldns_pkt *p, const char *owner, const char *types)
{
	ldns_rr_list *l = ldns_pkt_authority(p);
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_NSEC)
			continue;
		char *o = ldns_rdf2str(ldns_rr_owner(rr));
		char *next = ldns_rdf2str(ldns_rr_rdf(rr, 0));
		char *bm = ldns_rdf2str(ldns_rr_rdf(rr, 1));
		size_t bl = strlen(bm);
		if (bl && bm[bl - 1] == ' ')
			bm[bl - 1] = 0; /* ldns ends the list with a space */
		char want_next[300];
		snprintf(want_next, sizeof(want_next), "\\000.%s", owner);
		bool ok_ = strcasecmp(o, owner) == 0 && strcasecmp(next, want_next) == 0 &&
			   strcmp(bm, types) == 0;
		if (!ok_)
			diag("NSEC %s next %s types '%s'", o, next, bm);
		free(o);
		free(next);
		free(bm);
		return ok_;
	}
	diag("no NSEC");
	return false;
}

static uint32_t nsec_ttl(ldns_pkt *p)
{
	ldns_rr_list *l = ldns_pkt_authority(p);
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(l, i)) == LDNS_RR_TYPE_NSEC)
			return ldns_rr_ttl(ldns_rr_list_rr(l, i));
	return 0;
}

static void load_keys(query_ctx_t *ctx, const query_data_t *s, const char *apex)
{
	ldns_pkt *p = pkt_of(ask(ctx, s, apex, DNSSEC_T_DNSKEY, true, true, 1232, QUERY_TCP));
	ldns_rr_list_deep_free(dnskeys);
	dnskeys = p ? ldns_rr_list_clone(ldns_pkt_answer(p)) : ldns_rr_list_new();
	ldns_rr_list *only = ldns_rr_list_new();
	for (size_t i = 0; i < ldns_rr_list_rr_count(dnskeys); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(dnskeys, i)) == LDNS_RR_TYPE_DNSKEY)
			ldns_rr_list_push_rr(only, ldns_rr_clone(ldns_rr_list_rr(dnskeys, i)));
	ldns_rr_list_deep_free(dnskeys);
	dnskeys = only;
	ldns_pkt_free(p);
}

int main(void)
{
	char dir[] = "/tmp/test_dnssec_answer.XXXXXX";
	if (!mkdtemp(dir))
		bail_out("mkdtemp");
	char path[300];
	snprintf(path, sizeof(path), "%s/example.com.zone", dir);
	FILE *f = fopen(path, "w");
	fputs(zone_text, f);
	for (int i = 1; i < 40; i++)
		fprintf(f,
			"big 300 IN TXT \"%02d34567890123456789012345678901234567890123456789"
			"0123456789012345678901234567890123456789\"\n",
			i);
	fclose(f);
	snprintf(path, sizeof(path), "%s/kid.example.com.zone", dir);
	f = fopen(path, "w");
	fputs("$ORIGIN kid.example.com.\n@ 3600 IN SOA ns hostmaster 1 2 3 4 60\n"
	      "@ 3600 IN NS ns\nns 3600 IN A 192.0.2.55\n",
	      f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/example.net.zone", dir);
	f = fopen(path, "w");
	fputs(zone2_text, f);
	fclose(f);

	struct key k13, k15;
	make_key(13, &k13);
	make_key(15, &k15);
	query_data_t *sig = snap_make(dir, true, &k13, &k15, NULL);
	query_data_t *plain = snap_make(dir, false, NULL, NULL, NULL);
	query_ctx_t ctx, ctx2;
	query_ctx_init(&ctx, NULL, 1);
	query_ctx_init(&ctx2, NULL, 1);
	int nv;
	ldns_pkt *p;

	load_keys(&ctx, sig, "example.com.");
	is_int((long long)ldns_rr_list_rr_count(dnskeys), 1, "DNSKEY RRset at the apex: one key");
	p = ask_signed(&ctx, sig, "example.com.", DNSSEC_T_DNSKEY, &nv, false);
	ok(nv == 1, "DNSKEY RRset signed by its key");
	ok(ldns_pkt_aa(p) && ldns_pkt_edns_do(p), "DNSKEY: AA=1 and DO echoed");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "example.com.", DNSSEC_T_CDS, &nv, false);
	ok(nv == 1 && ldns_rr_list_rr_count(ldns_pkt_answer(p)) == 2, "CDS RRset, signed");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "example.com.", DNSSEC_T_CDNSKEY, &nv, false);
	ok(nv == 1 && ldns_rr_list_rr_count(ldns_pkt_answer(p)) == 2, "CDNSKEY RRset, signed");
	ldns_pkt_free(p);

	/* Static RRsets. */
	p = ask_signed(&ctx, sig, "WWW.example.com.", DNS_T_A, &nv, false);
	ok(nv == 1 && ldns_rr_list_rr_count(ldns_pkt_answer(p)) == 3,
	   "www A (2 RRs, asked in upper case): signed, the RRSIG verifies");
	{
		ldns_rr *rs = ldns_rr_list_rr(ldns_pkt_answer(p), 2);
		time_t now = time(NULL);
		uint32_t inc = ldns_rdf2native_time_t(ldns_rr_rrsig_inception(rs));
		uint32_t exp = ldns_rdf2native_time_t(ldns_rr_rrsig_expiration(rs));
		ok(ldns_rr_get_type(rs) == LDNS_RR_TYPE_RRSIG && ldns_rr_ttl(rs) == 300 &&
			   ldns_rdf2native_int32(ldns_rr_rrsig_origttl(rs)) == 300,
		   "RRSIG TTL and original TTL are the RRset's");
		ok(inc <= now - 3600 + 5 && inc >= now - 3600 - 5 && exp >= now + 7 * 86400 - 5 &&
			   exp <= now + 7 * 86400 + 5,
		   "RRSIG valid from an hour ago to 7 days ahead");
		ok(verify_all(p, false, now + 7 * 86400 + 60) < 0,
		   "... and no longer after its expiration (ldns says so)");
	}
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "example.com.", DNS_T_MX, &nv, false);
	ok(nv == 1, "MX at the apex (a name in its RDATA, compressed): signed");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "example.com.", DNS_T_SOA, &nv, false);
	ok(nv == 1, "SOA: signed");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "example.com.", DNS_T_NS, &nv, false);
	ok(nv == 1, "NS at the apex: signed");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "chain.example.com.", DNS_T_A, &nv, false);
	ok(nv == 3, "CNAME chain chain -> alias -> www: each RRset signed (%d)", nv);
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "x.Wild.example.com.", DNS_T_A, &nv, false);
	ok(nv == 1, "wildcard answer: signed as the name asked");
	ldns_pkt_free(p);
	/* The wildcard's RRset again, another owner: not x's signature from the cache. */
	p = ask_signed(&ctx, sig, "y.wild.example.com.", DNS_T_A, &nv, false);
	ok(nv == 1, "wildcard answer for another name: signed as that name");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "www.example.com.", DNS_T_ANY, &nv, false);
	ok(nv == 1, "ANY (RFC 8482 HINFO): signed");
	ldns_pkt_free(p);

	/* Compact denial. */
	p = ask_signed(&ctx, sig, "nothere.example.com.", DNS_T_A, &nv, false);
	ok(p && ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR && ldns_pkt_aa(p) &&
		   ldns_rr_list_rr_count(ldns_pkt_answer(p)) == 0 && nv == 2,
	   "a name that does not exist: NOERROR, SOA and NSEC signed");
	ok(nsec_is(p, "nothere.example.com.", "RRSIG NSEC TYPE128"),
	   "... NSEC owned by the name, next \\000.name, types NSEC RRSIG NXNAME");
	is_int(nsec_ttl(p), 300, "... NSEC TTL min(SOA TTL, MINIMUM)");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "www.example.com.", DNS_T_MX, &nv, false);
	ok(p && ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR && nv == 2 &&
		   nsec_is(p, "www.example.com.", "A TXT AAAA RRSIG NSEC"),
	   "NODATA: the types at the name, NSEC and RRSIG");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "ent.example.com.", DNS_T_A, &nv, false);
	ok(nv == 2 && nsec_is(p, "ent.example.com.", "RRSIG NSEC"),
	   "empty non-terminal: NODATA, NSEC with NSEC and RRSIG");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "example.com.", DNS_T_TXT, &nv, false);
	ok(nv == 2 && nsec_is(p, "example.com.", "NS SOA MX RRSIG NSEC DNSKEY CDS CDNSKEY"),
	   "NODATA at the apex: the key types listed");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "toghost.example.com.", DNS_T_A, &nv, false);
	ok(nv == 3 && nsec_is(p, "ghost.example.com.", "RRSIG NSEC TYPE128"),
	   "CNAME to a name that does not exist: CNAME signed, NXNAME NSEC of the target");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "pool.example.com.", DNS_T_MX, &nv, false);
	ok(nv == 2 && nsec_is(p, "pool.example.com.", "A AAAA RRSIG NSEC"),
	   "NODATA at a pool's name: A and AAAA listed");
	ldns_pkt_free(p);

	/* Delegations. */
	p = ask_signed(&ctx, sig, "www.sub.example.com.", DNS_T_A, &nv, true);
	ok(p && !ldns_pkt_aa(p) && nv == 1 && nsec_is(p, "sub.example.com.", "NS RRSIG NSEC"),
	   "referral: NS unsigned, NSEC proving no DS signed");
	ok(ldns_rr_list_rr_count(ldns_pkt_additional(p)) == 1,
	   "... glue unsigned in the additional section");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "www.secure.example.com.", DNS_T_A, &nv, true);
	ldns_rr_list *ds = p ? ldns_pkt_rr_list_by_type(p, LDNS_RR_TYPE_DS, LDNS_SECTION_AUTHORITY)
			     : NULL;
	ok(p && nv == 1 && ds, "referral to a signed child: its DS, signed");
	ldns_rr_list_deep_free(ds);
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "sub.example.com.", DNS_T_DS, &nv, false);
	ok(p && ldns_pkt_aa(p) && nv == 2 && nsec_is(p, "sub.example.com.", "NS RRSIG NSEC"),
	   "DS at the cut: the parent's NODATA with the NSEC of the cut");
	ldns_pkt_free(p);

	p = ask_signed(&ctx, sig, "kid.example.com.", DNS_T_DS, &nv, false);
	ok(p && ldns_pkt_aa(p) && nv == 2 && nsec_is(p, "kid.example.com.", "NS RRSIG NSEC"),
	   "DS of an unsigned zone served here too: the signed parent's answer, signed");
	ldns_pkt_free(p);

	/* Pools: each distinct answer signed once, then from the cache. */
	int bad = 0;
	uint64_t signed0 = ctx.stats.rrsigs_signed;
	for (int i = 0; i < 200; i++) {
		p = ask_signed(&ctx, sig, "pool.example.com.", DNS_T_A, &nv, false);
		if (nv != 1)
			bad++;
		ldns_pkt_free(p);
	}
	ok(bad == 0, "200 pool answers, each signed and verified (%d bad)", bad);
	ok(ctx.stats.rrsigs_signed - signed0 == 4,
	   "... 4 members, 4 signatures made, the rest from the cache (%llu)",
	   (unsigned long long)(ctx.stats.rrsigs_signed - signed0));

	/*
	 * Two answers in either order: one signature a set (the key of an
	 * address RRset does not depend on the order its records come in).
	 */
	{
		query_ctx_t fresh;
		query_ctx_init(&fresh, NULL, 5);
		bool seen_set[256] = { false }, seen_order[256] = { false };
		int sets = 0, orders = 0, badm = 0;
		for (int i = 0; i < 300; i++) {
			p = ask_signed(&fresh, sig, "multi.example.com.", DNS_T_A, &nv, false);
			ldns_rr_list *an = p ? ldns_pkt_answer(p) : NULL;
			uint8_t o[2] = { 0, 0 };
			int na = 0;
			for (size_t j = 0; an && j < ldns_rr_list_rr_count(an); j++) {
				ldns_rr *rr = ldns_rr_list_rr(an, j);
				if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A && na < 2)
					o[na++] = ldns_rdf_data(ldns_rr_rdf(rr, 0))[3] & 0xf;
			}
			if (nv != 1 || na != 2)
				badm++;
			int lo = o[0] < o[1] ? o[0] : o[1], hi = o[0] < o[1] ? o[1] : o[0];
			sets += !seen_set[lo * 16 + hi];
			orders += !seen_order[o[0] * 16 + o[1]];
			seen_set[lo * 16 + hi] = seen_order[o[0] * 16 + o[1]] = true;
			ldns_pkt_free(p);
		}
		ok(badm == 0 && sets >= 5 && orders > sets,
		   "a pool of two answers: %d sets in %d orders over 300 answers, each verified "
		   "(%d "
		   "bad)",
		   sets, orders, badm);
		is_int((long long)fresh.stats.rrsigs_signed, sets,
		       "... one signature a set, whatever the order");
		query_ctx_fini(&fresh);
	}

	/*
	 * The same addresses at another TTL (a snapshot whose pool changed it):
	 * signed again, the RRSIG's TTL and original TTL the new one's.
	 */
	{
		pool_ttl = 60;
		query_data_t *sig60 = snap_make(dir, true, &k13, &k15, NULL);
		pool_ttl = 30;
		query_ctx_t fresh;
		query_ctx_init(&fresh, NULL, 5);
		int nv30 = 0, nv60 = 0;
		ldns_pkt *p30 = ask_signed(&fresh, sig, "pool.example.com.", DNS_T_A, &nv30, false);
		uint64_t made = fresh.stats.rrsigs_signed;
		ldns_pkt *p60 = NULL;
		/* Until the draw gives the same address as the first answer. */
		for (int i = 0; i < 50; i++) {
			ldns_pkt_free(p60);
			p60 = ask_signed(&fresh, sig60, "pool.example.com.", DNS_T_A, &nv60, false);
			if (p30 && p60 &&
			    ldns_rdf_compare(
				    ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p30), 0), 0),
				    ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p60), 0), 0)) == 0)
				break;
		}
		ldns_rr *sig_rr = p60 ? ldns_rr_list_rr(ldns_pkt_answer(p60), 1) : NULL;
		ok(nv30 == 1 && nv60 == 1 && sig_rr && ldns_rr_ttl(sig_rr) == 60 &&
			   ldns_rdf2native_int32(ldns_rr_rrsig_origttl(sig_rr)) == 60 &&
			   fresh.stats.rrsigs_signed > made,
		   "a pool's addresses at another TTL: signed again, the RRSIG's TTLs the new one");
		ldns_pkt_free(p30);
		ldns_pkt_free(p60);
		query_ctx_fini(&fresh);
		dnssec_set_free((dnssec_set_t *)sig60->dnssec);
		zone_set_free(sig60->zones);
		lb_set_free(sig60->pools);
		free(sig60);
	}

#if COUNT_ALLOCS
	ask(&ctx, sig, "www.example.com.", DNS_T_A, true, true, 1232, QUERY_UDP);
	alloc_count = 0;
	alloc_counting = true;
	for (int i = 0; i < 50; i++) {
		ask(&ctx, sig, "www.example.com.", DNS_T_A, true, true, 1232, QUERY_UDP);
		ask(&ctx, sig, "pool.example.com.", DNS_T_A, true, true, 1232, QUERY_UDP);
		ask(&ctx, sig, "nothere.example.com.", DNS_T_A, true, true, 1232, QUERY_UDP);
	}
	alloc_counting = false;
	is_int((long long)alloc_count, 0, "signed answers from the cache allocate nothing");
#else
	ok(1, "# SKIP allocations are not counted under a sanitizer");
#endif

	/* Truncation: 40 TXT RRs and their RRSIG over 512 bytes: the question alone, TC=1. */
	size_t n = ask(&ctx, sig, "big.example.com.", DNS_T_TXT, true, true, 512, QUERY_UDP);
	p = pkt_of(n);
	ok(p && ldns_pkt_tc(p) && ldns_pkt_ancount(p) == 0, "signed answer over the limit: TC=1");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "big.example.com.", DNS_T_TXT, &nv, false);
	ok(nv == 1 && !ldns_pkt_tc(p), "... whole over TCP, signed");
	ldns_pkt_free(p);

	/* Ed25519 in the other zone. */
	load_keys(&ctx, sig, "example.net.");
	p = ask_signed(&ctx, sig, "www.example.net.", DNS_T_A, &nv, false);
	ok(nv == 1, "ED25519 zone: www A signed and verified");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "pool.example.net.", DNS_T_A, &nv, false);
	ok(nv == 1, "ED25519 zone: pool answer signed");
	ldns_pkt_free(p);
	p = ask_signed(&ctx, sig, "no.example.net.", DNS_T_A, &nv, false);
	ok(nv == 2 && nsec_is(p, "no.example.net.", "RRSIG NSEC TYPE128") && nsec_ttl(p) == 600,
	   "ED25519 zone: compact denial signed");
	ldns_pkt_free(p);

	/*
	 * From the cache, byte for byte the answer that made the signatures: a
	 * fresh worker signs, then answers again from its cache (a zone's
	 * RRset owned by the name asked, the common answer's own way; the
	 * others by the general one).
	 */
	static const struct {
		const char *name, *apex;
		uint16_t type;
	} cq[] = {
		{ "www.example.com.", "example.com.", DNS_T_A },
		{ "WWW.Example.com.", "example.com.", DNS_T_A },
		{ "example.com.", "example.com.", DNS_T_MX },
		{ "example.com.", "example.com.", DNS_T_SOA },
		{ "example.com.", "example.com.", DNSSEC_T_DNSKEY },
		{ "chain.example.com.", "example.com.", DNS_T_A },
		{ "x.wild.example.com.", "example.com.", DNS_T_A },
		{ "nothere.example.com.", "example.com.", DNS_T_A },
		{ "www.example.com.", "example.com.", DNS_T_MX },
		{ "sub.example.com.", "example.com.", DNS_T_DS },
		{ "www.sub.example.com.", "example.com.", DNS_T_A },
		{ "www.example.net.", "example.net.", DNS_T_A },
	};
	int alike = 0, from_cache = 0, good = 0;
	for (size_t i = 0; i < ARRAY_SIZE(cq); i++) {
		load_keys(&ctx, sig, cq[i].apex);
		query_ctx_t fresh;
		query_ctx_init(&fresh, NULL, 3);
		uint8_t first[DNS_MSG_MAX];
		size_t l1 = ask(&fresh, sig, cq[i].name, cq[i].type, true, true, 1232, QUERY_UDP);
		memcpy(first, resp, l1);
		uint64_t made = fresh.stats.rrsigs_signed, cached = fresh.stats.rrsigs_cached;
		size_t l2 = ask(&fresh, sig, cq[i].name, cq[i].type, true, true, 1232, QUERY_UDP);
		if (l1 == l2 && memcmp(first, resp, l1) == 0)
			alike++;
		else
			diag("%s type %u: the answer from the cache differs", cq[i].name,
			     cq[i].type);
		if (made > 0 && fresh.stats.rrsigs_signed == made &&
		    fresh.stats.rrsigs_cached - cached == made)
			from_cache++;
		else
			diag("%s type %u: %llu signed, then %llu signed and %llu from the cache",
			     cq[i].name, cq[i].type, (unsigned long long)made,
			     (unsigned long long)(fresh.stats.rrsigs_signed - made),
			     (unsigned long long)(fresh.stats.rrsigs_cached - cached));
		p = pkt_of(l2);
		if (p &&
		    verify_all(p, cq[i].type != DNS_T_DS && strncmp(cq[i].name, "www.sub", 7) == 0,
			       time(NULL)) > 0)
			good++;
		else
			diag("%s type %u: the answer from the cache does not verify", cq[i].name,
			     cq[i].type);
		ldns_pkt_free(p);
		query_ctx_fini(&fresh);
	}
	is_int(alike, (int)ARRAY_SIZE(cq),
	       "from the cache: each answer byte for byte the signed one");
	is_int(from_cache, (int)ARRAY_SIZE(cq), "... every RRSIG of the second from the cache");
	is_int(good, (int)ARRAY_SIZE(cq), "... and it verifies");

	/* Two signing keys (a rollover's overlap): both signatures, from the cache too. */
	{
		struct key k13b;
		make_key(13, &k13b);
		query_data_t *two = snap_make(dir, true, &k13, &k15, &k13b);
		query_ctx_t fresh;
		query_ctx_init(&fresh, NULL, 3);
		load_keys(&ctx, two, "example.com.");
		size_t l1 = ask(&fresh, two, "www.example.com.", DNS_T_A, true, true, 1232,
				QUERY_UDP);
		uint8_t first[DNS_MSG_MAX];
		memcpy(first, resp, l1);
		uint64_t made = fresh.stats.rrsigs_signed;
		size_t l2 = ask(&fresh, two, "www.example.com.", DNS_T_A, true, true, 1232,
				QUERY_UDP);
		p = pkt_of(l2);
		int nsig = 0;
		for (size_t i = 0; p && i < ldns_rr_list_rr_count(ldns_pkt_answer(p)); i++)
			nsig += ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), i)) ==
				LDNS_RR_TYPE_RRSIG;
		ok(ldns_rr_list_rr_count(dnskeys) == 2 && nsig == 2 && p &&
			   verify_all(p, false, time(NULL)) == 1,
		   "two signing keys: www A has two RRSIGs, each verifies");
		ok(l1 == l2 && memcmp(first, resp, l1) == 0 && fresh.stats.rrsigs_signed == made &&
			   made == 2,
		   "... the second answer from the cache, byte for byte the first");
		ldns_pkt_free(p);
		query_ctx_fini(&fresh);
		dnssec_set_free((dnssec_set_t *)two->dnssec);
		zone_set_free(two->zones);
		lb_set_free(two->pools);
		free(two);
	}

	/* DO=0 (and no EDNS): the same bytes as the zone unsigned, DNSKEY aside. */
	static const struct {
		const char *name;
		uint16_t type;
	} qs[] = {
		{ "www.example.com.", DNS_T_A },     { "www.example.com.", DNS_T_MX },
		{ "nothere.example.com.", DNS_T_A }, { "chain.example.com.", DNS_T_A },
		{ "x.wild.example.com.", DNS_T_A },  { "www.sub.example.com.", DNS_T_A },
		{ "sub.example.com.", DNS_T_DS },    { "pool.example.com.", DNS_T_A },
		{ "pool.example.com.", DNS_T_MX },   { "example.com.", DNS_T_SOA },
		{ "big.example.com.", DNS_T_TXT },   { "toghost.example.com.", DNS_T_A },
		{ "www.example.net.", DNS_T_A },     { "no.example.net.", DNS_T_A },
		{ "example.com.", DNS_T_DS },	     { "www.secure.example.com.", DNS_T_A },
	};
	int same = 0, total = 0;
	uint8_t r2[DNS_MSG_MAX];
	/* Two workers alike, so their pools choose alike. */
	query_ctx_fini(&ctx2);
	query_ctx_t ctx3;
	query_ctx_init(&ctx2, NULL, 7);
	query_ctx_init(&ctx3, NULL, 7);
	for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
		for (int e = 0; e < 2; e++) {
			size_t l1 = ask(&ctx3, sig, qs[i].name, qs[i].type, e, false, 1232,
					QUERY_UDP);
			memcpy(r2, resp, l1);
			size_t l2 = ask(&ctx2, plain, qs[i].name, qs[i].type, e, false, 1232,
					QUERY_UDP);
			total++;
			if (l1 == l2 && memcmp(r2, resp, l1) == 0)
				same++;
			else
				diag("%s type %u EDNS %d differs", qs[i].name, qs[i].type, e);
		}
	}
	is_int(same, total, "DO=0: every answer byte for byte the unsigned zone's");

	ldns_rr_list_deep_free(dnskeys);
	query_ctx_fini(&ctx);
	query_ctx_fini(&ctx2);
	query_ctx_fini(&ctx3);
	dnssec_set_free((dnssec_set_t *)sig->dnssec);
	zone_set_free(sig->zones);
	lb_set_free(sig->pools);
	free(sig);
	zone_set_free(plain->zones);
	lb_set_free(plain->pools);
	free(plain);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
