/* SPDX-License-Identifier: MIT */
/* A signed zone in a snapshot: its signing keys and its apex's DNSKEY, CDS and CDNSKEY RRsets. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gslb/dns.h"
#include "gslb/dnssec.h"
#include "internal.h"

/* A key's state at now (README "DNSSEC"): in the DNSKEY RRset, signing. */
static bool key_published(const dnssec_key_row_t *r, int64_t now)
{
	return r->publish <= now && (!r->remove || now < r->remove);
}

static bool key_signing(const dnssec_key_row_t *r, int64_t now)
{
	return key_published(r, now) && r->active && r->active <= now &&
	       (!r->retire || now < r->retire);
}

static void next_time(int64_t t, int64_t now, int64_t *next)
{
	if (t > now && t != INT64_MAX && (!*next || t < *next))
		*next = t;
}

/*
 * An RRset of n RDATAs of one type at the apex, as src/zone stores them:
 * each RR's owner a placeholder the writer points at the apex in the question.
 */
static uint8_t *rrset_fill(zone_rrset_t *s, uint8_t *p, zone_fix_t *fix, uint16_t type,
			   uint32_t ttl, uint8_t (*rd)[4 + 64], const size_t *rl, size_t n)
{
	s->type = type;
	s->count = (uint16_t)n;
	s->ttl = ttl;
	s->wire = p;
	s->fix = fix;
	s->nfix = (uint32_t)n;
	s->ext = NULL;
	for (size_t i = 0; i < n; i++) {
		fix[i].off = (uint32_t)(p - s->wire);
		fix[i].kind = ZONE_FIX_OWNER;
		dns_put16(p, 0);
		dns_put16(p + 2, type);
		dns_put16(p + 4, DNS_C_IN);
		dns_put32(p + 6, ttl);
		dns_put16(p + 10, (uint16_t)rl[i]);
		memcpy(p + 12, rd[i], rl[i]);
		p += 12 + rl[i];
	}
	s->len = (uint32_t)(p - s->wire);
	return p;
}

/* A row that reads as a key (dnssec_key_new() takes it). */
static bool key_usable(const dnssec_key_row_t *r)
{
	dnssec_key_t *k = NULL;
	if (dnssec_key_new(&k, r->algorithm, r->flags, r->public_key, r->public_len, r->private_key,
			   r->private_len) < 0)
		return false;
	dnssec_key_free(k);
	return true;
}

/*
 * The usable keys that signed last, when bad rows leave none to sign with
 * at now (a rollover whose new key's row is bad, its old key past retire):
 * rows a copy of those whose retire time is the latest of the usable keys
 * that were active and have retired, made to publish and sign on; false
 * when there are none.  The parent's DS names them most likely, so the
 * zone stays valid to resolvers holding it, after a restart as before it
 * (README "DNSSEC").
 */
static bool keys_retired_last(dnssec_key_row_t *rows, size_t n, int64_t now, size_t *which)
{
	int64_t last = 0;
	for (size_t i = 0; i < n; i++) {
		const dnssec_key_row_t *r = &rows[i];
		int64_t ret = r->retire ? r->retire : r->remove;
		if (r->active && r->active < ret && ret <= now && ret > last && key_usable(r))
			last = ret;
	}
	if (!last)
		return false;
	for (size_t i = 0; i < n; i++) {
		dnssec_key_row_t *r = &rows[i];
		int64_t ret = r->retire ? r->retire : r->remove;
		if (r->active && r->active < ret && ret == last) {
			r->retire = r->remove = 0;
			*which = i;
		}
	}
	return true;
}

int dnssec_zone_new(dnssec_zone_t **out, const zone_t *z, const dnssec_key_row_t *rows, size_t n,
		    int64_t now, int64_t *next_change, char *err, size_t errlen)
{
	*out = NULL;
	dnssec_key_t *pub[DNSSEC_KEYS_MAX];
	bool sign[DNSSEC_KEYS_MAX], cds[DNSSEC_KEYS_MAX];
	size_t npub = 0, signing = 0;
	bool bad = false;
	int rc = 0;
	if (errlen)
		err[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const dnssec_key_row_t *r = &rows[i];
		next_time(r->publish, now, next_change);
		next_time(r->active, now, next_change);
		next_time(r->retire, now, next_change);
		next_time(r->remove, now, next_change);
		if (!key_published(r, now))
			continue;
		if (npub == DNSSEC_KEYS_MAX) {
			snprintf(err, errlen, "more than %d keys published at once",
				 DNSSEC_KEYS_MAX);
			rc = -EINVAL;
			break;
		}
		/*
		 * A row that is not a usable key is left out (err says which),
		 * so that the zone stays signed by its other keys.
		 */
		if (dnssec_key_new(&pub[npub], r->algorithm, r->flags, r->public_key, r->public_len,
				   r->private_key, r->private_len) < 0) {
			snprintf(err, errlen, "key %zu (algorithm %u) is not a usable key", i + 1,
				 r->algorithm);
			bad = true;
			continue;
		}
		sign[npub] = key_signing(r, now);
		signing += sign[npub];
		cds[npub] = !r->retire || now < r->retire;
		npub++;
	}
	/*
	 * Bad rows and no good key to sign with: the keys that signed last
	 * sign on, else nothing here is what a resolver holding the DS can use.
	 */
	if (bad && !signing && rc == 0) {
		dnssec_key_row_t *kept = gslb_malloc(n * sizeof(*kept));
		memcpy(kept, rows, n * sizeof(*kept));
		size_t which = 0;
		if (keys_retired_last(kept, n, now, &which)) {
			for (size_t i = 0; i < npub; i++)
				dnssec_key_free(pub[i]);
			char why[200];
			snprintf(why, sizeof(why), "%s", err);
			int64_t unused = 0;
			rc = dnssec_zone_new(out, z, kept, n, now, &unused, err, errlen);
			if (rc == 0)
				snprintf(err, errlen,
					 "%s; no other key is active: key %zu signs on past its "
					 "retire time",
					 why, which + 1);
			free(kept);
			return rc;
		}
		free(kept);
	}
	if (bad && !signing)
		rc = -EINVAL;
	else if (bad)
		snprintf(err + strlen(err), errlen - strlen(err), "; signed with the others");
	if (rc < 0 || npub == 0) {
		for (size_t i = 0; i < npub; i++)
			dnssec_key_free(pub[i]);
		return rc;
	}

	dnssec_zone_t *dz = gslb_calloc(1, sizeof(*dz));
	dz->zone = z;
	memcpy(dz->apex, z->apex, z->apex_len);
	dz->apex_len = z->apex_len;
	dz->apex_labels = z->apex_labels;
	const zone_rrset_t *soa = zone_node_rrset(z->apex_node, DNS_T_SOA);
	uint32_t ttl = soa ? soa->ttl : 3600;

	uint8_t key_rd[DNSSEC_KEYS_MAX][4 + 64], ds_rd[DNSSEC_KEYS_MAX][4 + 64];
	uint8_t cdnskey_rd[DNSSEC_KEYS_MAX][4 + 64];
	size_t key_rl[DNSSEC_KEYS_MAX], ds_rl[DNSSEC_KEYS_MAX], cdnskey_rl[DNSSEC_KEYS_MAX];
	size_t ncds = 0;
	for (size_t i = 0; i < npub; i++) {
		key_rl[i] = dnssec_key_dnskey(pub[i], key_rd[i], sizeof(key_rd[i]));
		if (cds[i]) {
			dnssec_key_ds(pub[i], dz->apex, dz->apex_len, ds_rd[ncds]);
			ds_rl[ncds] = 36;
			memcpy(cdnskey_rd[ncds], key_rd[i], key_rl[i]);
			cdnskey_rl[ncds++] = key_rl[i];
		}
	}
	size_t bytes = 3 * npub * (12 + 4 + 64) + 3 * npub * sizeof(zone_fix_t);
	dz->data = gslb_malloc(bytes);
	dz->data_len = bytes;
	zone_fix_t *fix = (zone_fix_t *)dz->data;
	uint8_t *p = dz->data + 3 * npub * sizeof(zone_fix_t);
	p = rrset_fill(&dz->dnskey, p, fix, DNSSEC_T_DNSKEY, ttl, key_rd, key_rl, npub);
	p = rrset_fill(&dz->cds, p, fix + npub, DNSSEC_T_CDS, ttl, ds_rd, ds_rl, ncds);
	rrset_fill(&dz->cdnskey, p, fix + 2 * npub, DNSSEC_T_CDNSKEY, ttl, cdnskey_rd, cdnskey_rl,
		   ncds);

	for (size_t i = 0; i < npub; i++) {
		if (!sign[i]) {
			dnssec_key_free(pub[i]);
			continue;
		}
		dnssec_key_t *k = pub[i];
		uint32_t j = dz->nkeys++;
		dz->keys[j] = k;
		/* What the cache tells this key's signatures by: its algorithm and public key. */
		static const uint8_t id_key[16] = "gslbd dnssec id";
		uint8_t h[8];
		gslb_siphash24(id_key, key_rd[i], key_rl[i], h);
		memcpy(&dz->key_id[j], h, 8);
		dz->head_len[j] = (uint16_t)dnssec_rrsig_head(
			dz->head[j], 0, dnssec_key_algorithm(k), 0, 0, 0, 0, dnssec_key_tag(k),
			dz->apex, dz->apex_len);
	}
	*out = dz;
	return 0;
}

/* s of old, its wire and fixes in old's data, moved to the same place in dz's. */
static void rrset_move(zone_rrset_t *s, const dnssec_zone_t *old, const dnssec_zone_t *dz)
{
	s->wire = dz->data + (s->wire - old->data);
	s->fix = (zone_fix_t *)(dz->data + ((const uint8_t *)s->fix - old->data));
}

dnssec_zone_t *dnssec_zone_copy(const dnssec_zone_t *old, const zone_t *z)
{
	dnssec_zone_t *dz = gslb_malloc(sizeof(*dz));
	*dz = *old;
	dz->zone = z;
	dz->data = gslb_malloc(old->data_len);
	memcpy(dz->data, old->data, old->data_len);
	rrset_move(&dz->dnskey, old, dz);
	rrset_move(&dz->cds, old, dz);
	rrset_move(&dz->cdnskey, old, dz);
	for (uint32_t i = 0; i < dz->nkeys; i++)
		dz->keys[i] = dnssec_key_dup(old->keys[i]);
	return dz;
}

void dnssec_zone_free(dnssec_zone_t *dz)
{
	if (!dz)
		return;
	for (uint32_t i = 0; i < dz->nkeys; i++)
		dnssec_key_free(dz->keys[i]);
	free(dz->data);
	free(dz);
}

dnssec_set_t *dnssec_set_new(void)
{
	return gslb_calloc(1, sizeof(dnssec_set_t));
}

/* dz into the first free slot of its probe sequence (dnssec_set_find()). */
static void dnssec_set_place(dnssec_set_t *s, const dnssec_zone_t *dz)
{
	uint32_t i = (uint32_t)(((uint64_t)(uintptr_t)dz->zone * 0x9e3779b97f4a7c15ULL) >>
				s->shift);
	while (s->table[i])
		i = (i + 1) & s->mask;
	s->table[i] = dz;
}

int dnssec_set_add(dnssec_set_t *s, dnssec_zone_t *dz)
{
	s->zones = gslb_realloc(s->zones, (s->count + 1) * sizeof(*s->zones));
	s->zones[s->count++] = dz;
	if (2 * s->count > s->mask + 1 || !s->table) {
		/* Grown to four slots a zone, every zone placed again. */
		uint32_t bits = 2;
		while ((1u << bits) < 4 * s->count)
			bits++;
		free(s->table);
		s->table = gslb_calloc((size_t)1 << bits, sizeof(*s->table));
		s->mask = (1u << bits) - 1;
		s->shift = 64 - bits;
		for (uint32_t i = 0; i + 1 < s->count; i++)
			dnssec_set_place(s, s->zones[i]);
	}
	dnssec_set_place(s, dz);
	/* The zone, the keys it publishes (with CDS and CDNSKEY) and those it signs with. */
	static const uint8_t k[16] = "gslbd dnssec set";
	uint8_t h[8];
	uint64_t v[4 + DNSSEC_KEYS_MAX];
	gslb_siphash24(k, dz->apex, dz->apex_len, h);
	memcpy(&v[0], h, 8);
	gslb_siphash24(k, dz->dnskey.wire, dz->dnskey.len, h);
	memcpy(&v[1], h, 8);
	gslb_siphash24(k, dz->cds.wire, dz->cds.len, h);
	memcpy(&v[2], h, 8);
	v[3] = (uint64_t)(uintptr_t)dz->zone;
	for (uint32_t i = 0; i < dz->nkeys; i++)
		v[4 + i] = dz->key_id[i];
	gslb_siphash24(k, v, (4 + dz->nkeys) * sizeof(v[0]), h);
	uint64_t d;
	memcpy(&d, h, 8);
	s->digest = s->digest * 0x9e3779b97f4a7c15ULL + d;
	return 0;
}

void dnssec_set_free(dnssec_set_t *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->count; i++)
		dnssec_zone_free(s->zones[i]);
	free(s->zones);
	free(s->table);
	free(s);
}
