/* SPDX-License-Identifier: MIT */
/* A zone's DNSSEC keys as the cluster stores them in etcd: one JSON value per zone, and back. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gslb/core.h"
#include "gslb/etcd.h"
#include "internal.h"

/*
 * The value of P "dnssec/" ZONE (README "DNSSEC"; every node signs with these keys):
 *
 *   {"zone": "example.com.", "keys": [{"algorithm": 13, "key_tag": 12345, "flags": 257,
 *     "public_key": BASE64, "private_key": BASE64, "created": T, "publish": T,
 *     "active": T|null, "retire": T|null, "remove": T|null}, ...]}
 *
 * Times are Unix seconds, null for one not planned (DB_DNSSEC_NEVER).  The keys are in order of
 * publish time, then public key, and the object's members in the order above, so the same keys
 * are always the same bytes: gslbctl compares values to find the zones a change touched.
 */

/* Order of the keys in a value: publish time, then public key. */
static int key_cmp(const void *a, const void *b)
{
	const db_dnssec_key_t *x = *(const db_dnssec_key_t *const *)a;
	const db_dnssec_key_t *y = *(const db_dnssec_key_t *const *)b;
	if (x->publish != y->publish)
		return x->publish < y->publish ? -1 : 1;
	size_t n = x->public_key_len < y->public_key_len ? x->public_key_len : y->public_key_len;
	int c = n ? memcmp(x->public_key, y->public_key, n) : 0;
	if (c)
		return c;
	return (x->public_key_len > y->public_key_len) - (x->public_key_len < y->public_key_len);
}

/* As gslb_malloc() does: jansson and base64 fail only when memory runs out. */
static void __attribute__((noreturn)) oom(void)
{
	fprintf(stderr, "out of memory writing DNSSEC keys\n");
	abort();
}

static json_t *time_json(int64_t t)
{
	return t == DB_DNSSEC_NEVER ? json_null() : json_integer((json_int_t)t);
}

/* A base64 string of n bytes. */
static json_t *b64_json(const uint8_t *p, size_t n)
{
	char *s = etcd__base64_encode(p ? (const void *)p : "", n);
	if (!s)
		oom();
	json_t *j = json_string(s);
	explicit_bzero(s, strlen(s));
	free(s);
	return j;
}

char *etcd_dnssec_value(const char *zone, const db_dnssec_key_t *keys, size_t n)
{
	const db_dnssec_key_t **order = gslb_calloc(n ? n : 1, sizeof(*order));
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		order[i] = &keys[i];
	gslb_sort(order, n, sizeof(*order), key_cmp);
	for (size_t i = 0; i < n; i++) {
		const db_dnssec_key_t *k = order[i];
		json_t *o = json_object();
		json_object_set_new(o, "algorithm", json_integer(k->algorithm));
		json_object_set_new(o, "key_tag", json_integer(k->key_tag));
		json_object_set_new(o, "flags", json_integer(k->flags));
		json_object_set_new(o, "public_key", b64_json(k->public_key, k->public_key_len));
		json_object_set_new(o, "private_key", b64_json(k->private_key, k->private_key_len));
		json_object_set_new(o, "created", json_integer((json_int_t)k->created));
		json_object_set_new(o, "publish", json_integer((json_int_t)k->publish));
		json_object_set_new(o, "active", time_json(k->active));
		json_object_set_new(o, "retire", time_json(k->retire));
		json_object_set_new(o, "remove", time_json(k->remove));
		json_array_append_new(arr, o);
	}
	free(order);
	json_t *top = json_object();
	json_object_set_new(top, "zone", json_string(zone));
	json_object_set_new(top, "keys", arr);
	char *text = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(top);
	if (!text)
		oom();
	return text;
}

static int __attribute__((format(printf, 3, 4))) bad(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* A time member: a non-negative integer, or null when may_null (DB_DNSSEC_NEVER). */
static bool time_get(const json_t *o, const char *name, bool may_null, int64_t *t)
{
	const json_t *v = json_object_get(o, name);
	if (may_null && (!v || json_is_null(v))) {
		*t = DB_DNSSEC_NEVER;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*t = (int64_t)json_integer_value(v);
	return true;
}

/* A base64 member into *p and *len (malloc'd). */
static bool b64_get(const json_t *o, const char *name, uint8_t **p, size_t *len)
{
	const json_t *v = json_object_get(o, name);
	char *out = NULL;
	if (!json_is_string(v) || etcd__base64_decode(json_string_value(v), &out, len) < 0)
		return false;
	*p = (uint8_t *)out;
	return true;
}

/* One key of the array into k (zone not set); false with why. */
static bool key_get(const json_t *o, db_dnssec_key_t *k, size_t i, char *why, size_t len)
{
	const json_t *alg = json_object_get(o, "algorithm"), *tag = json_object_get(o, "key_tag"),
		     *flags = json_object_get(o, "flags");

	if (!json_is_object(o))
		return bad(why, len, "keys[%zu] is not an object", i), false;
	if (!json_is_integer(alg) || (json_integer_value(alg) != DB_DNSSEC_ECDSAP256SHA256 &&
				      json_integer_value(alg) != DB_DNSSEC_ED25519))
		return bad(why, len, "keys[%zu]: algorithm is not 13 or 15", i), false;
	k->algorithm = (uint8_t)json_integer_value(alg);
	if (!json_is_integer(tag) || json_integer_value(tag) < 0 || json_integer_value(tag) > 65535)
		return bad(why, len, "keys[%zu]: key_tag is not in 0-65535", i), false;
	k->key_tag = (uint16_t)json_integer_value(tag);
	if (!json_is_integer(flags) || json_integer_value(flags) < 0 ||
	    json_integer_value(flags) > 65535)
		return bad(why, len, "keys[%zu]: flags is not in 0-65535", i), false;
	k->flags = (uint16_t)json_integer_value(flags);
	if (!b64_get(o, "public_key", &k->public_key, &k->public_key_len) ||
	    k->public_key_len != (k->algorithm == DB_DNSSEC_ED25519 ? 32u : 64u))
		return bad(why, len, "keys[%zu]: public_key is not a key of algorithm %u", i,
			   k->algorithm),
		       false;
	if (!b64_get(o, "private_key", &k->private_key, &k->private_key_len) || !k->private_key_len)
		return bad(why, len, "keys[%zu]: private_key is not base64", i), false;
	if (!time_get(o, "created", false, &k->created) ||
	    !time_get(o, "publish", false, &k->publish) ||
	    !time_get(o, "active", true, &k->active) || !time_get(o, "retire", true, &k->retire) ||
	    !time_get(o, "remove", true, &k->remove))
		return bad(why, len, "keys[%zu]: a time is not Unix seconds or null", i), false;
	return true;
}

/* Free n keys and their arrays, the private keys wiped (db_dnssec_keys_free() without libdb). */
static void keys_free(db_dnssec_key_t *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].zone);
		free(v[i].public_key);
		if (v[i].private_key)
			explicit_bzero(v[i].private_key, v[i].private_key_len);
		free(v[i].private_key);
	}
	free(v);
}

int etcd_dnssec_parse(const char *text, size_t len, const char *zone, db_dnssec_key_t **keys,
		      size_t *n, char *why, size_t whylen)
{
	json_error_t err;
	json_t *top = json_loadb(text, len, 0, &err);
	db_dnssec_key_t *v = NULL;
	size_t nv = 0;
	int ret = 0;

	*keys = NULL;
	*n = 0;
	if (!json_is_object(top)) {
		ret = bad(why, whylen, "not a JSON object");
		goto out;
	}
	const json_t *z = json_object_get(top, "zone"), *arr = json_object_get(top, "keys");
	if (!json_is_string(z) || strcmp(json_string_value(z), zone) != 0) {
		ret = bad(why, whylen, "holds the keys of %s, not of %s",
			  json_is_string(z) ? json_string_value(z) : "no zone", zone);
		goto out;
	}
	if (!json_is_array(arr)) {
		ret = bad(why, whylen, "keys is not an array");
		goto out;
	}
	v = gslb_calloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof(*v));
	for (size_t i = 0; i < json_array_size(arr); i++) {
		db_dnssec_key_t *k = &v[nv++];
		if (!key_get(json_array_get(arr, i), k, i, why, whylen)) {
			ret = -EPROTO;
			goto out;
		}
		k->zone = gslb_strdup(zone);
	}
out:
	json_decref(top);
	if (ret) {
		keys_free(v, nv);
		return ret;
	}
	*keys = v;
	*n = nv;
	return 0;
}
