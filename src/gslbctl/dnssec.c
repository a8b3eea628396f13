/* SPDX-License-Identifier: MIT */
/* gslbctl dnssec: a zone's signing keys made, rolled over and removed; its DS records shown. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gslb/core.h"
#include "gslb/db_dnssec.h"
#include "gslb/dnssec.h"
#include "gslb/dns.h"
#include "gslb/paths.h"
#include "gslb/zone.h"
#include "gslbctl.h"

/*
 * One combined signing key (CSK) per zone, two while a rollover overlaps them (README
 * "DNSSEC", gslbctl(8) DNSSEC).  A key's life is its four times: in the DNSKEY RRset from
 * publish, signing from active, no longer signing from retire, out of the DNSKEY RRset from
 * remove.  gslbctl only writes the times; gslbd reads them and acts on them as they come.
 */

/* The TTL of the DS records shown: what the parent is asked to serve (gslbctl(8)). */
#define DS_TTL 3600
/* The largest TTL assumed for a zone whose file cannot be read (gslbctl(8) dnssec rollover). */
#define MAX_TTL_DEFAULT 86400
/* The parent's DS TTL assumed by a rollover unless --parent-ttl says otherwise. */
#define PARENT_TTL_DEFAULT 86400
/* The largest TTL there is (RFC 2181 8). */
#define TTL_MAX 2147483647u
/* Tries at a key whose tag no other key of the zone has (RFC 4034 Appendix B: tags collide). */
#define KEYGEN_TRIES 8

static const struct alg {
	const char *name;
	uint8_t number;
	size_t publen;
} algs[] = {
	{ "ecdsap256sha256", DB_DNSSEC_ECDSAP256SHA256, 64 },
	{ "ed25519", DB_DNSSEC_ED25519, 32 },
};

static const struct alg *alg_by_name(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (strcasecmp(algs[i].name, s) == 0)
			return &algs[i];
	return NULL;
}

static const char *alg_name(uint8_t number)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (algs[i].number == number)
			return algs[i].name;
	return "unknown";
}

/* ---- keys: made with OpenSSL, and their DNSKEY, key tag and DS ---- */

/* The DNSKEY RDATA of k (RFC 4034 2.1): flags, protocol 3, algorithm, public key. */
static size_t dnskey_rdata(const db_dnssec_key_t *k, uint8_t *out, size_t cap)
{
	size_t n = 4 + k->public_key_len;
	if (n > cap)
		return 0;
	out[0] = (uint8_t)(k->flags >> 8);
	out[1] = (uint8_t)k->flags;
	out[2] = 3;
	out[3] = k->algorithm;
	memcpy(out + 4, k->public_key, k->public_key_len);
	return n;
}

/*
 * The DS record of k in presentation form, "ZONE. TTL IN DS TAG ALG 2 HEX": the SHA-256 digest
 * (RFC 4509) of the owner's canonical wire name and the DNSKEY RDATA (RFC 4034 5.1.4).  0, or
 * -EIO when OpenSSL fails.
 */
static int ds_text(const db_dnssec_key_t *k, char *out, size_t cap)
{
	uint8_t buf[DNS_NAME_MAX + 4 + 64], md[32];
	unsigned mdlen = 0;
	int n = dns_name_from_str(buf, k->zone);
	size_t rl;

	if (n < 0)
		return -EINVAL;
	/* The zone is stored lowercase: its wire form is canonical (RFC 4034 6.2). */
	rl = dnskey_rdata(k, buf + n, sizeof(buf) - (size_t)n);
	if (!rl || EVP_Digest(buf, (size_t)n + rl, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return -EIO;
	int w = snprintf(out, cap, "%s %d IN DS %u %u 2 ", k->zone, DS_TTL, k->key_tag,
			 k->algorithm);
	for (size_t i = 0; w > 0 && i < sizeof(md) && (size_t)w + 2 < cap; i++)
		w += snprintf(out + w, cap - (size_t)w, "%02X", md[i]);
	return 0;
}

/*
 * A new key of algorithm a for zone: the key pair made by OpenSSL, its public key field
 * (RFC 6605 4: X and Y of the P-256 point; RFC 8080 3: the Ed25519 key), the private key in
 * PKCS#8 DER, the DNSKEY flags of a CSK and its tag.  The times are the caller's.  0, or -EIO
 * (OpenSSL's message on stderr).
 */
static int key_make(const struct alg *a, char *zone, db_dnssec_key_t *k)
{
	EVP_PKEY *pkey = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *der = NULL;
	uint8_t point[65], rdata[4 + 64];
	size_t len = 0;
	int ret = -EIO, dlen = 0;

	memset(k, 0, sizeof(*k));
	pkey = a->number == DB_DNSSEC_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
					      : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!pkey)
		goto out;
	if (a->number == DB_DNSSEC_ED25519) {
		len = 32;
		if (EVP_PKEY_get_raw_public_key(pkey, point, &len) != 1 || len != 32)
			goto out;
		k->public_key = gslb_malloc(32);
		memcpy(k->public_key, point, 32);
	} else {
		/* The uncompressed point is 0x04, X, Y (SEC 1 2.3.3); DNSSEC keeps X and Y. */
		if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
						    sizeof(point), &len) != 1 ||
		    len != 65 || point[0] != 4)
			goto out;
		k->public_key = gslb_malloc(64);
		memcpy(k->public_key, point + 1, 64);
	}
	k->public_key_len = a->publen;
	if (!(p8 = EVP_PKEY2PKCS8(pkey)) || (dlen = i2d_PKCS8_PRIV_KEY_INFO(p8, &der)) <= 0)
		goto out;
	k->private_key = gslb_malloc((size_t)dlen);
	memcpy(k->private_key, der, (size_t)dlen);
	k->private_key_len = (size_t)dlen;
	k->zone = zone;
	k->algorithm = a->number;
	k->flags = DB_DNSSEC_FLAGS_CSK;
	k->key_tag = dnssec_keytag(rdata, dnskey_rdata(k, rdata, sizeof(rdata)));
	ret = 0;
out:
	if (der) {
		OPENSSL_cleanse(der, (size_t)dlen);
		OPENSSL_free(der);
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(pkey);
	if (ret) {
		free(k->public_key);
		free(k->private_key);
		memset(k, 0, sizeof(*k));
	}
	return ret;
}

static void key_clear(db_dnssec_key_t *k)
{
	free(k->public_key);
	if (k->private_key)
		OPENSSL_cleanse(k->private_key, k->private_key_len);
	free(k->private_key);
	memset(k, 0, sizeof(*k));
}

/*
 * A new key of algorithm a for zone whose tag none of the zone's n keys has, so that the tag
 * names one key in messages and DS records.  CTL_OK or CTL_FAIL (printed).
 */
static int key_new(ctl_t *c, const struct alg *a, char *zone, const db_dnssec_key_t *have, size_t n,
		   db_dnssec_key_t *k)
{
	for (int t = 0; t < KEYGEN_TRIES; t++) {
		if (key_make(a, zone, k))
			return ctl_fail(c, "OpenSSL could not make a %s key", a->name);
		bool taken = false;
		for (size_t i = 0; i < n && !taken; i++)
			taken = have[i].key_tag == k->key_tag;
		if (!taken)
			return CTL_OK;
		key_clear(k);
	}
	return ctl_fail(c, "no %s key with a tag of its own in %d tries", a->name, KEYGEN_TRIES);
}

/* ---- what the commands share ---- */

/* RFC 3339 UTC text of Unix seconds; "never" for DB_DNSSEC_NEVER. */
static const char *fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (t == DB_DNSSEC_NEVER) {
		snprintf(buf, len, "never");
		return buf;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* A key's state at now (gslbctl(8)): the last of its times that has come. */
static const char *key_state(const db_dnssec_key_t *k, int64_t now, int64_t *since)
{
	const struct {
		int64_t t;
		const char *name;
	} steps[] = {
		{ k->remove, "removed" },
		{ k->retire, "retired" },
		{ k->active, "active" },
		{ k->publish, "published" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
		if (steps[i].t != DB_DNSSEC_NEVER && steps[i].t <= now) {
			*since = steps[i].t;
			return steps[i].name;
		}
	*since = DB_DNSSEC_NEVER;
	return "planned";
}

/* The key's next state after now and when; NULL when none is planned. */
static const char *key_next(const db_dnssec_key_t *k, int64_t now, int64_t *when)
{
	const struct {
		int64_t t;
		const char *name;
	} steps[] = {
		{ k->publish, "published" },
		{ k->active, "active" },
		{ k->retire, "retired" },
		{ k->remove, "removed" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
		if (steps[i].t != DB_DNSSEC_NEVER && steps[i].t > now) {
			/* A key that signs until it leaves the DNSKEY RRset (a rollover's old one). */
			if (steps[i].t == k->remove)
				i = ARRAY_SIZE(steps) - 1;
			*when = steps[i].t;
			return steps[i].name;
		}
	*when = DB_DNSSEC_NEVER;
	return NULL;
}

/* Is k in the DNSKEY RRset at now? */
static bool key_published(const db_dnssec_key_t *k, int64_t now)
{
	return k->publish <= now && now < k->remove;
}

/*
 * Can gslbd sign with k?  A row whose private key does not read, or is not
 * its public key's, is left out (gslbd(8) DNSSEC).
 */
static bool key_usable(const db_dnssec_key_t *k)
{
	dnssec_key_t *key = NULL;
	if (dnssec_key_new(&key, k->algorithm, k->flags, k->public_key, k->public_key_len,
			   k->private_key, k->private_key_len) < 0)
		return false;
	dnssec_key_free(key);
	return true;
}

/* The command's ZONE argument: a domain name, lowercased with its trailing dot, into zone. */
static int zone_arg(ctl_t *c, const ctl_args_t *a, size_t npos, char *zone, size_t len)
{
	char why[WHY_MAX];
	if (a->npos < npos)
		return ctl_invalid(c, "missing ZONE (usage: gslbctl %s ZONE)", c->cmd);
	if (a->npos > npos)
		return ctl_invalid(c, "%s: unexpected argument", a->pos[npos]);
	if (val_pool_name(a->pos[0], zone, len, why))
		return ctl_invalid(c, "ZONE: %s", why);
	return CTL_OK;
}

/* A seconds option into *v (1 to TTL_MAX); 0 when absent, 1 when given, -1 after saying why. */
static int opt_seconds(ctl_t *c, const ctl_args_t *a, const char *name, uint32_t min, uint32_t *v)
{
	const char *s = ctl_arg(a, name);
	char *end;

	if (!s)
		return 0;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || x < min || x > TTL_MAX) {
		ctl_invalid(c, "%s: %s is not a number of seconds in %u-%u", name, s, min, TTL_MAX);
		return -1;
	}
	*v = (uint32_t)x;
	return 1;
}

/* The zone's keys inside the change's transaction. */
static int keys_load(ctl_t *c, const char *zone, db_dnssec_key_t **keys, size_t *n)
{
	int ret = db_dnssec_keys_load(c->db, zone, keys, n);
	return ret ? ret : CTL_OK;
}

/* ---- dnssec enable ---- */

struct enable {
	char zone[DNS_NAME_MAX + 1];
	const struct alg *alg;
	int64_t now;
};

static int enable_edit(ctl_t *c, const db_config_t *cfg, void *arg, FILE *sum)
{
	struct enable *e = arg;
	db_dnssec_key_t *have = NULL, k;
	size_t n = 0;
	char t[32];
	int ret;

	(void)cfg;
	if ((ret = keys_load(c, e->zone, &have, &n)))
		return ret;
	if (n) {
		ret = ctl_fail(c, "zone %s is signed already (gslbctl dnssec status %s)", e->zone,
			       e->zone);
		goto out;
	}
	if ((ret = key_new(c, e->alg, e->zone, have, n, &k)))
		goto out;
	/* Published and signing at once: the zone has no DS yet, so nothing validates it. */
	k.created = k.publish = k.active = e->now;
	k.retire = k.remove = DB_DNSSEC_NEVER;
	ret = db_dnssec_key_insert(c->db, &k, NULL);
	if (!ret)
		fprintf(sum, "+ dnssec %s key %u %s active %s\n", e->zone, k.key_tag, e->alg->name,
			fmt_time(k.active, t, sizeof(t)));
	key_clear(&k);
out:
	db_dnssec_keys_free(have, n);
	return ret;
}

static const ctl_optdef_t enable_opts[] = {
	{ "--algorithm", true, false },
	{ NULL, false, false },
};

/*
 * After enable: warn when gslbd's zones (the configuration file's directory, else the default
 * one) have no zone of that apex, a likely typo.  Says nothing when they cannot be read.
 */
static void warn_unserved(ctl_t *c, const char *zone)
{
	const char *dir = c->conf.zones ? c->conf.zones : GSLB_DEFAULT_ZONES;
	uint8_t wire[DNS_NAME_MAX];
	zone_set_t *set = NULL;
	int len = dns_name_from_str(wire, zone);

	if (len <= 0 || zone_load_dir(dir, NULL, &set, NULL) < 0)
		return;
	if (!zone_set_get(set, wire, (size_t)len))
		ctl_warn(c,
			 "gslbd serves no zone %s (zones in %s): its key waits until the zone's "
			 "file is there",
			 zone, dir);
	zone_set_free(set);
}

int cmd_dnssec_enable(ctl_t *c, int argc, char **argv)
{
	struct enable e = { .alg = &algs[0], .now = time(NULL) };
	const char *s;
	ctl_args_t a;
	int ret;

	PARSE_ARGS(c, argc, argv, enable_opts, &a);
	if ((ret = zone_arg(c, &a, 1, e.zone, sizeof(e.zone))))
		return ret;
	if ((s = ctl_arg(&a, "--algorithm")) && !(e.alg = alg_by_name(s)))
		return ctl_invalid(c, "--algorithm: %s is not ecdsap256sha256 or ed25519", s);
	ret = ctl_change_run(c, enable_edit, &e);
	if (ret == CTL_OK && !c->quiet)
		printf("give the parent zone the DS record: gslbctl dnssec ds %s\n", e.zone);
	if (ret == CTL_OK)
		warn_unserved(c, e.zone);
	return ret;
}

/* ---- dnssec disable ---- */

struct disable {
	char zone[DNS_NAME_MAX + 1];
};

static int disable_edit(ctl_t *c, const db_config_t *cfg, void *arg, FILE *sum)
{
	struct disable *d = arg;
	db_dnssec_key_t *have = NULL;
	size_t n = 0;
	int ret;

	(void)cfg;
	if ((ret = keys_load(c, d->zone, &have, &n)))
		return ret;
	if (!n) {
		ret = ctl_fail(c, "zone %s is not signed", d->zone);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(sum, "- dnssec %s key %u %s\n", d->zone, have[i].key_tag,
			alg_name(have[i].algorithm));
	ret = db_dnssec_keys_delete(c->db, d->zone);
out:
	db_dnssec_keys_free(have, n);
	return ret;
}

int cmd_dnssec_disable(ctl_t *c, int argc, char **argv)
{
	struct disable d;
	ctl_args_t a;
	int ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if ((ret = zone_arg(c, &a, 1, d.zone, sizeof(d.zone))))
		return ret;
	ret = ctl_change_run(c, disable_edit, &d);
	if (ret == CTL_OK)
		/*
		 * Said after the fact too: an operator who skipped README's order learns what
		 * resolvers do now, and what to do about it.
		 */
		ctl_warn(c,
			 "%s is no longer signed: if the parent zone still has its DS record, "
			 "validating resolvers fail its answers until the DS is removed and its "
			 "TTL has passed (remove the DS first, then disable)",
			 d.zone);
	return ret;
}

/* ---- dnssec rollover ---- */

/* Does name (lowercase, trailing dot) lie in zone (the same, or below it)? */
static bool name_in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);
	if (n == z)
		return strcmp(name, zone) == 0;
	return strcmp(zone, ".") == 0 ||
	       (n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0);
}

/*
 * The largest TTL gslbd serves in zone: its file's records (the DNSKEY RRset takes the SOA's
 * TTL) and every pool in it, degraded TTLs included.  false when the zone file cannot be read
 * (*ttl then has the pools' only).
 */
static bool zone_max_ttl(ctl_t *c, const db_config_t *cfg, const char *zone, uint32_t *ttl)
{
	const char *dir = c->conf.zones ? c->conf.zones : GSLB_DEFAULT_ZONES;
	uint8_t wire[DNS_NAME_MAX];
	zone_set_t *set = NULL;
	bool found = false;

	*ttl = 0;
	for (size_t i = 0; i < cfg->npools; i++) {
		const db_pool_t *p = &cfg->pools[i];
		if (!name_in_zone(p->name, zone))
			continue;
		uint32_t d = db_pool_degraded_ttl(p);
		if (p->ttl > *ttl)
			*ttl = p->ttl;
		if (d > *ttl)
			*ttl = d;
	}
	int len = dns_name_from_str(wire, zone);
	if (len > 0 && zone_load_dir(dir, NULL, &set, NULL) == 0) {
		const zone_t *z = zone_set_get(set, wire, (size_t)len);
		for (uint32_t i = 0; z && i < z->nrrsets; i++)
			if (z->rrsets[i].ttl > *ttl)
				*ttl = z->rrsets[i].ttl;
		found = z != NULL;
	}
	zone_set_free(set);
	return found;
}

struct rollover {
	char zone[DNS_NAME_MAX + 1];
	int64_t now;
	uint32_t max_ttl;    /* T: 0 until known */
	uint32_t parent_ttl; /* the parent's DS TTL */
};

static int rollover_edit(ctl_t *c, const db_config_t *cfg, void *arg, FILE *sum)
{
	struct rollover *r = arg;
	db_dnssec_key_t *have = NULL, *old = NULL, k = { 0 };
	size_t n = 0;
	char t1[32], t2[32];
	int ret;

	if ((ret = keys_load(c, r->zone, &have, &n)))
		return ret;
	if (!n) {
		ret = ctl_fail(c, "zone %s is not signed (gslbctl dnssec enable %s)", r->zone,
			       r->zone);
		goto out;
	}
	/*
	 * A key row gslbd cannot use (gslbd(8) DNSSEC): no rollover from it, nor
	 * rows dropped while gslbd may sign with those that signed last.
	 */
	for (size_t i = 0; i < n; i++) {
		if (!key_usable(&have[i])) {
			ret = ctl_fail(
				c,
				"zone %s: key %u is not a usable key (its private key does not "
				"read or is not its public key's): restore its row from a "
				"backup, or take the zone's DS out of the parent, wait for its "
				"TTL, then gslbctl dnssec disable and enable %s",
				r->zone, have[i].key_tag, r->zone);
			goto out;
		}
	}
	/* Keys a finished rollover left, out of the DNSKEY RRset for good: dropped now. */
	for (size_t i = 0; i < n; i++) {
		if (have[i].remove <= r->now) {
			fprintf(sum, "- dnssec %s key %u %s removed %s\n", r->zone, have[i].key_tag,
				alg_name(have[i].algorithm),
				fmt_time(have[i].remove, t1, sizeof(t1)));
			if ((ret = db_dnssec_key_delete(c->db, have[i].id)))
				goto out;
			continue;
		}
		if (old || have[i].retire != DB_DNSSEC_NEVER || have[i].remove != DB_DNSSEC_NEVER) {
			ret = ctl_fail(
				c,
				"a rollover of %s is under way (gslbctl dnssec status %s shows "
				"when it ends)",
				r->zone, r->zone);
			goto out;
		}
		old = &have[i];
	}
	if (!old) {
		ret = ctl_fail(c, "zone %s has no key in use (gslbctl dnssec status %s)", r->zone,
			       r->zone);
		goto out;
	}
	if (!r->max_ttl) {
		uint32_t ttl;
		if (zone_max_ttl(c, cfg, r->zone, &ttl)) {
			r->max_ttl = ttl ? ttl : 1;
		} else {
			r->max_ttl = ttl > MAX_TTL_DEFAULT ? ttl : MAX_TTL_DEFAULT;
			ctl_warn(
				c,
				"zone %s: its file is not among gslbd's zones (%s): taking %u s as "
				"its largest TTL (--max-ttl sets it)",
				r->zone, c->conf.zones ? c->conf.zones : GSLB_DEFAULT_ZONES,
				r->max_ttl);
		}
	}
	const struct alg *a = &algs[0];
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (algs[i].number == old->algorithm)
			a = &algs[i];
	if ((ret = key_new(c, a, r->zone, have, n, &k)))
		goto out;
	int64_t T = r->max_ttl;
	/*
	 * gslbctl(8) DNSSEC ROLLOVER has the reasoning: the new key signs once every cached
	 * DNSKEY RRset holds it (T).  The old one signs, and stays published, until no
	 * resolver can hold the parent's old DS set: the parent changes it by 2T, and its
	 * TTL runs out after that.  While both sign, a resolver with either DS finds a
	 * signature by its key on every RRset, the DNSKEY RRset included, whichever keys
	 * gslbd signs that RRset with.
	 */
	k.created = k.publish = r->now;
	k.active = r->now + T;
	k.retire = k.remove = DB_DNSSEC_NEVER;
	old->retire = old->remove = r->now + 2 * T + r->parent_ttl;
	if ((ret = db_dnssec_key_insert(c->db, &k, NULL)) ||
	    (ret = db_dnssec_key_update(c->db, old)))
		goto out;
	fprintf(sum, "+ dnssec %s key %u %s published %s active %s\n", r->zone, k.key_tag, a->name,
		fmt_time(k.publish, t1, sizeof(t1)), fmt_time(k.active, t2, sizeof(t2)));
	fprintf(sum, "~ dnssec %s key %u %s retire %s remove %s\n", r->zone, old->key_tag, a->name,
		fmt_time(old->retire, t1, sizeof(t1)), fmt_time(old->remove, t2, sizeof(t2)));
out:
	key_clear(&k);
	db_dnssec_keys_free(have, n);
	return ret;
}

static const ctl_optdef_t rollover_opts[] = {
	{ "--max-ttl", true, false },
	{ "--parent-ttl", true, false },
	{ NULL, false, false },
};

int cmd_dnssec_rollover(ctl_t *c, int argc, char **argv)
{
	struct rollover r = { .now = time(NULL), .parent_ttl = PARENT_TTL_DEFAULT };
	ctl_args_t a;
	int ret;

	PARSE_ARGS(c, argc, argv, rollover_opts, &a);
	if ((ret = zone_arg(c, &a, 1, r.zone, sizeof(r.zone))))
		return ret;
	if (opt_seconds(c, &a, "--max-ttl", 1, &r.max_ttl) < 0 ||
	    opt_seconds(c, &a, "--parent-ttl", 0, &r.parent_ttl) < 0)
		return CTL_INVALID;
	return ctl_change_run(c, rollover_edit, &r);
}

/* ---- dnssec ds and status: read only ---- */

/* Open the database and read the keys of zone (NULL: every zone); CTL_OK or the exit status. */
static int keys_read(ctl_t *c, const char *zone, db_dnssec_key_t **keys, size_t *n)
{
	int ret = ctl_open(c);
	if (ret)
		return ret;
	if ((ret = db_dnssec_keys_load(c->db, zone, keys, n)))
		return ctl_db_fail(c, ret);
	if (zone && !*n)
		return ctl_fail(c, "zone %s is not signed", zone);
	return CTL_OK;
}

/* A DS record in presentation form (ds_text()). */
typedef char ds_line_t[DNS_NAME_MAX + 128];

int cmd_dnssec_ds(ctl_t *c, int argc, char **argv)
{
	char zone[DNS_NAME_MAX + 1];
	db_dnssec_key_t *keys = NULL;
	ds_line_t *lines = NULL;
	size_t n = 0, shown = 0;
	int64_t now = time(NULL);
	ctl_args_t a;
	jw_t w;
	int ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if ((ret = zone_arg(c, &a, 1, zone, sizeof(zone))) || (ret = keys_read(c, zone, &keys, &n)))
		goto out;
	/* Every line made before any is printed: a failure prints only its reason. */
	lines = gslb_calloc(n ? n : 1, sizeof(*lines));
	for (size_t i = 0; i < n; i++) {
		if (!key_published(&keys[i], now))
			continue;
		if (ds_text(&keys[i], lines[shown], sizeof(lines[shown]))) {
			ret = ctl_fail(c, "OpenSSL could not compute the DS of key %u",
				       keys[i].key_tag);
			goto out;
		}
		shown++;
	}
	/* Keys that all left the DNSKEY RRset: nothing for the parent to point at. */
	if (!shown) {
		ret = ctl_fail(c, "zone %s has no published key", zone);
		goto out;
	}
	if (c->json) {
		jw_init(&w, stdout);
		jw_obj_begin(&w);
		jw_key(&w, "zone");
		jw_str(&w, zone);
		jw_key(&w, "ds");
		jw_arr_begin(&w);
		for (size_t i = 0; i < shown; i++)
			jw_str(&w, lines[i]);
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_end(&w);
	} else {
		for (size_t i = 0; i < shown; i++)
			printf("%s\n", lines[i]);
	}
out:
	free(lines);
	db_dnssec_keys_free(keys, n);
	return ret;
}

static void status_json_time(jw_t *w, const char *key, int64_t t)
{
	char buf[32];
	jw_key(w, key);
	if (t == DB_DNSSEC_NEVER)
		jw_null(w);
	else
		jw_str(w, fmt_time(t, buf, sizeof(buf)));
}

int cmd_dnssec_status(ctl_t *c, int argc, char **argv)
{
	char zone[DNS_NAME_MAX + 1], ds[DNS_NAME_MAX + 128], t1[32], t2[32];
	db_dnssec_key_t *keys = NULL;
	size_t n = 0;
	int64_t now = time(NULL), since, when;
	const char *last = "";
	ctl_args_t a;
	jw_t w;
	int ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if (a.npos && (ret = zone_arg(c, &a, 1, zone, sizeof(zone))))
		return ret;
	if (a.npos > 1)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[1]);
	if ((ret = keys_read(c, a.npos ? zone : NULL, &keys, &n)))
		goto out;
	if (c->json) {
		jw_init(&w, stdout);
		jw_obj_begin(&w);
		jw_key(&w, "zones");
		jw_arr_begin(&w);
	} else if (!n) {
		printf("no zone is signed\n");
	}
	for (size_t i = 0; i < n; i++) {
		const db_dnssec_key_t *k = &keys[i];
		const char *state = key_state(k, now, &since);
		const char *next = key_next(k, now, &when);
		bool zone_new = strcmp(last, k->zone) != 0;
		bool has_ds = ds_text(k, ds, sizeof(ds)) == 0;
		bool usable = key_usable(k);
		if (c->json) {
			if (zone_new && i) {
				jw_arr_end(&w);
				jw_obj_end(&w);
			}
			if (zone_new) {
				jw_obj_begin(&w);
				jw_key(&w, "zone");
				jw_str(&w, k->zone);
				jw_key(&w, "keys");
				jw_arr_begin(&w);
			}
			jw_obj_begin(&w);
			jw_key(&w, "key_tag");
			jw_int(&w, k->key_tag);
			jw_key(&w, "algorithm");
			jw_str(&w, alg_name(k->algorithm));
			jw_key(&w, "algorithm_number");
			jw_int(&w, k->algorithm);
			jw_key(&w, "flags");
			jw_int(&w, k->flags);
			status_json_time(&w, "created", k->created);
			status_json_time(&w, "publish", k->publish);
			status_json_time(&w, "active", k->active);
			status_json_time(&w, "retire", k->retire);
			status_json_time(&w, "remove", k->remove);
			jw_key(&w, "state");
			jw_str(&w, state);
			status_json_time(&w, "since", since);
			jw_key(&w, "next");
			if (next) {
				jw_obj_begin(&w);
				jw_key(&w, "state");
				jw_str(&w, next);
				status_json_time(&w, "time", when);
				jw_obj_end(&w);
			} else {
				jw_null(&w);
			}
			jw_key(&w, "published");
			jw_bool(&w, key_published(k, now));
			jw_key(&w, "usable");
			jw_bool(&w, usable);
			jw_key(&w, "ds");
			jw_str(&w, has_ds ? ds : NULL);
			jw_obj_end(&w);
		} else {
			if (zone_new)
				printf("%s%s\n", i ? "\n" : "", k->zone);
			printf("  key %u %s flags %u created %s\n", k->key_tag,
			       alg_name(k->algorithm), k->flags,
			       fmt_time(k->created, t1, sizeof(t1)));
			if (since == DB_DNSSEC_NEVER)
				printf("    %s", state);
			else
				printf("    %s since %s", state, fmt_time(since, t1, sizeof(t1)));
			if (next)
				printf(", %s at %s\n", next, fmt_time(when, t2, sizeof(t2)));
			else
				printf(", nothing planned\n");
			if (has_ds)
				printf("    %s\n", ds);
			if (!usable)
				printf("    NOT USABLE: its private key does not read or is not "
				       "its "
				       "public key's; gslbd leaves it out\n");
		}
		last = k->zone;
	}
	if (c->json) {
		if (n) {
			jw_arr_end(&w);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_end(&w);
	}
out:
	db_dnssec_keys_free(keys, n);
	return ret;
}
