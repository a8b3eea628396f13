/* SPDX-License-Identifier: MIT */
/*
 * DNSSEC keys in the database (src/db/dnssec_store.c) on a real SQLite file: a key written and
 * read back whole (blobs, flags, a time not planned as DB_DNSSEC_NEVER), one zone's keys and
 * every zone's in their order, the timers updated, a duplicate and a bad algorithm refused, a
 * key and a zone's keys deleted, and every write moving the configuration generation (gslbd
 * reloads its keys with the configuration).  Then a cluster node's mirror of them
 * (src/db/cluster.c): puts and deletes in etcd's revision order, unchanged keys not rewritten,
 * a bad value refused before anything is written, the full sync's retain; and their etcd value
 * (src/cluster/keys.c): the same bytes in any order, read back whole, a bad one refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_cluster.h"
#include "gslb/db_dnssec.h"
#include "gslb/etcd.h"
#include "tap.h"

static char dir[] = "/tmp/gslb-dbdnssec-XXXXXX";
static char path[sizeof(dir) + 16];
static db_t *db;

/* A key of zone with public key bytes all pub and private key bytes all priv. */
struct key_buf {
	db_dnssec_key_t k;
	uint8_t pub[64], priv[138];
};

static void key_make(struct key_buf *b, const char *zone, uint8_t alg, uint8_t pub, int64_t publish)
{
	memset(b, 0, sizeof(*b));
	memset(b->pub, pub, sizeof(b->pub));
	memset(b->priv, pub ^ 0x5a, sizeof(b->priv));
	b->k.zone = (char *)zone;
	b->k.algorithm = alg;
	b->k.key_tag = (uint16_t)(1000 + pub);
	b->k.flags = DB_DNSSEC_FLAGS_CSK;
	b->k.public_key = b->pub;
	b->k.public_key_len = alg == DB_DNSSEC_ED25519 ? 32 : 64;
	b->k.private_key = b->priv;
	b->k.private_key_len = sizeof(b->priv);
	b->k.created = publish - 5;
	b->k.publish = publish;
	b->k.active = publish;
	b->k.retire = DB_DNSSEC_NEVER;
	b->k.remove = DB_DNSSEC_NEVER;
}

static int64_t generation(void)
{
	int64_t g = -1;
	db_config_generation(db, &g);
	return g;
}

/* Write in one transaction, as gslbctl does. */
static int insert(const db_dnssec_key_t *k, int64_t *id)
{
	int ret = db_begin_write(db);
	if (!ret)
		ret = db_dnssec_key_insert(db, k, id);
	if (!ret)
		ret = db_commit(db);
	if (ret)
		db_rollback(db);
	return ret;
}

static bool same(const db_dnssec_key_t *a, const db_dnssec_key_t *b)
{
	return strcmp(a->zone, b->zone) == 0 && a->algorithm == b->algorithm &&
	       a->key_tag == b->key_tag && a->flags == b->flags &&
	       a->public_key_len == b->public_key_len &&
	       memcmp(a->public_key, b->public_key, a->public_key_len) == 0 &&
	       a->private_key_len == b->private_key_len &&
	       memcmp(a->private_key, b->private_key, a->private_key_len) == 0 &&
	       a->created == b->created && a->publish == b->publish && a->active == b->active &&
	       a->retire == b->retire && a->remove == b->remove;
}

static void test_keys(void)
{
	struct key_buf a, b, c, bad;
	db_dnssec_key_t *v = NULL;
	size_t n = 99;
	int64_t ida = 0, idb = 0, idc = 0, g;

	ok(db_dnssec_keys_load(db, "example.com.", &v, &n) == 0 && n == 0 && !v,
	   "a zone without keys: none, no error");

	key_make(&a, "example.com.", DB_DNSSEC_ECDSAP256SHA256, 1, 1000);
	key_make(&b, "example.com.", DB_DNSSEC_ED25519, 2, 2000);
	b.k.active = DB_DNSSEC_NEVER;
	key_make(&c, "a.example.", DB_DNSSEC_ECDSAP256SHA256, 3, 3000);
	g = generation();
	ok(insert(&b.k, &idb) == 0 && insert(&a.k, &ida) == 0 && insert(&c.k, &idc) == 0,
	   "three keys inserted");
	ok(ida > 0 && idb > 0 && idc > 0 && ida != idb, "each gets its row id");
	is_int(generation(), g + 3, "each insert moves the configuration generation");

	ok(db_dnssec_keys_load(db, "example.com.", &v, &n) == 0, "one zone's keys load");
	if (is_int((long long)n, 2, "example.com. has two keys")) {
		ok(v[0].id == ida && same(&v[0], &a.k), "the first published first, read whole");
		ok(v[1].id == idb && same(&v[1], &b.k), "the second, its ed25519 key whole");
		is_int((long long)v[1].public_key_len, 32, "an ed25519 public key is 32 bytes");
		ok(v[1].active == DB_DNSSEC_NEVER && v[1].retire == DB_DNSSEC_NEVER &&
			   v[1].remove == DB_DNSSEC_NEVER,
		   "times not planned read as DB_DNSSEC_NEVER");
	}
	db_dnssec_keys_free(v, n);

	ok(db_dnssec_keys_load(db, NULL, &v, &n) == 0 && n == 3, "every zone's keys load");
	if (n == 3)
		ok(v[0].id == idc && v[1].id == ida && v[2].id == idb,
		   "in order of zone, then publish time");
	db_dnssec_keys_free(v, n);

	/* The table's own rules come back as the module's codes. */
	is_int(insert(&a.k, NULL), -EEXIST, "the same public key twice in a zone: -EEXIST");
	key_make(&bad, "example.com.", 8, 9, 1000);
	is_int(insert(&bad.k, NULL), GSLB_ECONFIG, "algorithm 8: GSLB_ECONFIG");

	/* A rollover: the old key's retire and remove planned, the new one's active set. */
	a.k.id = ida;
	a.k.retire = 5000;
	a.k.remove = 6000;
	b.k.id = idb;
	b.k.active = 5000;
	g = generation();
	ok(db_begin_write(db) == 0 && db_dnssec_key_update(db, &a.k) == 0 &&
		   db_dnssec_key_update(db, &b.k) == 0 && db_commit(db) == 0,
	   "the timers of two keys updated");
	is_int(generation(), g + 2, "each update moves the configuration generation");
	ok(db_dnssec_keys_load(db, "example.com.", &v, &n) == 0 && n == 2, "read back");
	if (n == 2)
		ok(same(&v[0], &a.k) && same(&v[1], &b.k),
		   "with the new times, nothing else changed");
	db_dnssec_keys_free(v, n);
	a.k.retire = DB_DNSSEC_NEVER;
	ok(db_begin_write(db) == 0 && db_dnssec_key_update(db, &a.k) == 0 && db_commit(db) == 0 &&
		   db_dnssec_keys_load(db, "example.com.", &v, &n) == 0 && n == 2 &&
		   v[0].retire == DB_DNSSEC_NEVER && v[0].remove == 6000,
	   "DB_DNSSEC_NEVER writes a time back to not planned");
	db_dnssec_keys_free(v, n);
	a.k.id = 999999;
	ok(db_begin_write(db) == 0 && db_dnssec_key_update(db, &a.k) == -ENOENT,
	   "updating no key: -ENOENT");
	db_rollback(db);

	ok(db_begin_write(db) == 0 && db_dnssec_key_delete(db, ida) == 0 &&
		   db_dnssec_key_delete(db, ida) == -ENOENT && db_commit(db) == 0,
	   "a key deleted by id, then -ENOENT");
	ok(db_dnssec_keys_load(db, "example.com.", &v, &n) == 0 && n == 1 && v[0].id == idb,
	   "the zone's other key stays");
	db_dnssec_keys_free(v, n);
	ok(db_begin_write(db) == 0 && db_dnssec_keys_delete(db, "example.com.") == 0 &&
		   db_dnssec_keys_delete(db, "example.com.") == -ENOENT && db_commit(db) == 0,
	   "a zone's keys deleted, then -ENOENT");
	ok(db_dnssec_keys_load(db, NULL, &v, &n) == 0 && n == 1 && v[0].id == idc,
	   "the other zone's key stays");
	db_dnssec_keys_free(v, n);
	db_dnssec_keys_free(NULL, 0);
}

/* The rows of zone, 0 when none; -1 when they cannot be read. */
static long long nkeys(const char *zone)
{
	db_dnssec_key_t *v;
	size_t n;
	if (db_dnssec_keys_load(db, zone, &v, &n))
		return -1;
	db_dnssec_keys_free(v, n);
	return (long long)n;
}

/* Run one mirror write in its own transaction, as the cluster thread does. */
#define MIRROR(expr)                          \
	({                                    \
		int r_ = db_begin_write(db);  \
		if (!r_)                      \
			r_ = (expr);          \
		if (r_ >= 0 && db_commit(db)) \
			r_ = -EIO;            \
		if (r_ < 0)                   \
			db_rollback(db);      \
		r_;                           \
	})

#define ZK(z) "/gslbd/dnssec/" z

static void test_mirror(void)
{
	struct key_buf a, b, c;
	db_dnssec_key_t two[2];
	int64_t g, rev;

	key_make(&a, "m.example.", DB_DNSSEC_ECDSAP256SHA256, 11, 1000);
	key_make(&b, "m.example.", DB_DNSSEC_ECDSAP256SHA256, 12, 2000);
	b.k.active = DB_DNSSEC_NEVER;
	two[0] = b.k;
	two[1] = a.k;
	g = generation();
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("m.example."), 10, "m.example.", &a.k, 1)), 0,
	       "mirror: a zone's key put at revision 10");
	ok(nkeys("m.example.") == 1 && generation() > g, "... stored, the generation moved");
	g = generation();
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("m.example."), 11, "m.example.", &a.k, 1)), 0,
	       "the same key again at revision 11");
	ok(generation() == g && db_cluster_key_rev(db, ZK("m.example."), &rev) == 0 && rev == 11,
	   "... not rewritten (the generation stays), its revision recorded");
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("m.example."), 9, "m.example.", two, 2)), 1,
	       "an older put (revision 9): skipped");
	is_int(nkeys("m.example."), 1, "... the key as it was");
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("m.example."), 12, "m.example.", two, 2)), 0,
	       "a rollover's two keys at revision 12");
	is_int(nkeys("m.example."), 2, "... both stored");

	key_make(&c, "m.example.", 8, 13, 3000);
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("m.example."), 13, "m.example.", &c.k, 1)),
	       GSLB_ECONFIG, "a key of algorithm 8: GSLB_ECONFIG");
	two[1] = two[0];
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("m.example."), 13, "m.example.", two, 2)),
	       GSLB_ECONFIG, "one public key twice: GSLB_ECONFIG");
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("other.example."), 13, "m.example.", &a.k, 1)),
	       GSLB_ECONFIG, "keys not of the key's zone: GSLB_ECONFIG");
	is_int(nkeys("m.example."), 2, "... nothing of them written");

	is_int(MIRROR(db_cluster_dnssec_delete(db, ZK("m.example."), "m.example.", 14)), 0,
	       "the zone's key deleted at revision 14");
	is_int(nkeys("m.example."), 0, "... no key left");
	is_int(MIRROR(db_cluster_dnssec_put(db, ZK("m.example."), 13, "m.example.", &a.k, 1)), 1,
	       "a put older than the delete: skipped");
	is_int(nkeys("m.example."), 0, "... still no key");

	struct key_buf x, y;
	key_make(&x, "x.example.", DB_DNSSEC_ED25519, 21, 1000);
	key_make(&y, "y.example.", DB_DNSSEC_ED25519, 22, 1000);
	MIRROR(db_cluster_dnssec_put(db, ZK("x.example."), 20, "x.example.", &x.k, 1));
	MIRROR(db_cluster_dnssec_put(db, ZK("y.example."), 21, "y.example.", &y.k, 1));
	const char *keep[] = { "y.example." };
	is_int(MIRROR(db_cluster_dnssec_retain(db, keep, 1)), 0, "retain y.example.");
	ok(nkeys("x.example.") == 0 && nkeys("y.example.") == 1,
	   "... the keys of the zone etcd no longer holds are gone, the other's stay");
}

static void test_value(void)
{
	struct key_buf a, b;
	db_dnssec_key_t ab[2], ba[2], *v = NULL;
	size_t n = 0;
	char why[256];

	key_make(&a, "v.example.", DB_DNSSEC_ECDSAP256SHA256, 31, 1000);
	key_make(&b, "v.example.", DB_DNSSEC_ED25519, 32, 2000);
	a.k.retire = 5000;
	b.k.active = 5000;
	ab[0] = ba[1] = a.k;
	ab[1] = ba[0] = b.k;
	char *t1 = etcd_dnssec_value("v.example.", ab, 2),
	     *t2 = etcd_dnssec_value("v.example.", ba, 2);
	ok(strcmp(t1, t2) == 0, "value: the same bytes for the same keys in any order");
	ok(etcd_dnssec_parse(t1, strlen(t1), "v.example.", &v, &n, why, sizeof(why)) == 0 && n == 2,
	   "value: read back");
	if (n == 2)
		ok(same(&v[0], &a.k) && same(&v[1], &b.k),
		   "... whole: blobs, times, a time not planned");
	db_dnssec_keys_free(v, n);
	ok(etcd_dnssec_parse(t1, strlen(t1), "w.example.", &v, &n, why, sizeof(why)) == -EPROTO &&
		   !v && strstr(why, "not of w.example."),
	   "value: another zone's keys refused (%s)", why);

	static const char *const bad[] = {
		"[]",
		"{\"zone\":\"v.example.\"}",
		"{\"zone\":\"v.example.\",\"keys\":[{\"algorithm\":8}]}",
		"{\"zone\":\"v.example.\",\"keys\":[{\"algorithm\":15,\"key_tag\":1,\"flags\":257,"
		"\"public_key\":\"AAAA\",\"private_key\":\"AAAA\",\"created\":1,\"publish\":1}]}",
		"{\"zone\":\"v.example.\",\"keys\":[{\"algorithm\":15,\"key_tag\":1,\"flags\":257,"
		"\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"private_key\":"
		"\"AAAA\","
		"\"created\":1,\"publish\":\"soon\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(etcd_dnssec_parse(bad[i], strlen(bad[i]), "v.example.", &v, &n, why,
				     sizeof(why)) == -EPROTO &&
			   !v && n == 0,
		   "value %zu refused: %s", i, why);
	free(t1);
	free(t2);
}

int main(void)
{
	if (!mkdtemp(dir))
		bail_out("mkdtemp");
	snprintf(path, sizeof(path), "%s/gslb.db", dir);
	ok(db_open(path, DB_OPEN_CREATE, &db) == 0 && db_migrate(db, NULL) == 0,
	   "a new file gets the schema");

	test_keys();
	test_mirror();
	test_value();

	db_close(db);
	const char *files[] = { "gslb.db", "gslb.db-wal", "gslb.db-shm" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char f[sizeof(dir) + 32];
		snprintf(f, sizeof(f), "%s/%s", dir, files[i]);
		unlink(f);
	}
	rmdir(dir);
	return done_testing();
}
