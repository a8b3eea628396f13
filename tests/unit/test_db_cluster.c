/* SPDX-License-Identifier: MIT */
/*
 * The database of a cluster node (src/db/cluster.c, schema version 3 on) on a real SQLite file:
 * the recorded settings, the mirror's state, pools put and deleted in etcd's revision order
 * (an event older than what is stored is never applied over it), the full sync's retain, the
 * journal mirrored once per key, nodes and votes; a version 2 file migrated with its data; a
 * check's quorum through db_config_load(); and the time a full sync of 100,000 pools takes
 * (printed, not asserted: the machine decides it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_cluster.h"
#include "tap.h"

#define KEY(name) "/gslbd/pools/" name
#define BENCH_POOLS 100000

static char dir[] = "/tmp/gslb-dbcluster-XXXXXX";
static char path[sizeof(dir) + 16];
static db_t *db;

/* ---- pools ---- */

/* A pool and everything it points to, in one place. */
struct pool_buf {
	db_pool_t p;
	db_member_t m[2];
	char name[64], mname[2][16], addr[2][48];
	char *addrs[2][1];
	uint8_t fam[2][1];
	char *nets[1];
	db_check_t pcheck, mcheck;
};

/*
 * Pool name in one of three shapes.  0: members a and b, a network and an alias on a, a pool
 * check with quorum any and b's own check with quorum local.  1: members b and c, no checks, another
 * TTL.  2 (the timing's): members a and b, one address each, a pool check (majority).  i
 * numbers the addresses.
 */
static void pool_make(struct pool_buf *b, const char *name, int shape, unsigned i)
{
	static const char *const names[2][2] = { { "a", "b" }, { "b", "c" } };

	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->p.name = b->name;
	b->p.policy = shape == 1 ? DB_POLICY_FAILOVER : DB_POLICY_WEIGHTED;
	b->p.ttl = shape == 1 ? 60 : 30;
	b->p.degraded_ttl = -1;
	b->p.answers = 1;
	b->p.fallback_all = true;
	b->p.nmembers = 2;
	b->p.members = b->m;
	for (int k = 0; k < 2; k++) {
		db_member_t *m = &b->m[k];
		snprintf(b->mname[k], sizeof(b->mname[k]), "%s", names[shape == 1][k]);
		snprintf(b->addr[k], sizeof(b->addr[k]), "10.%u.%u.%u", (i >> 16) & 255,
			 (i >> 8) & 255, (i & 255) ^ (unsigned)k);
		b->addrs[k][0] = b->addr[k];
		b->fam[k][0] = 4;
		m->name = b->mname[k];
		m->weight = (uint16_t)(100 + k);
		m->priority = (uint8_t)(1 + k);
		m->naddresses = 1;
		m->addresses = b->addrs[k];
		m->families = b->fam[k];
	}
	if (shape == 0) {
		b->nets[0] = "192.0.2.0/24";
		b->m[0].nnetworks = 1;
		b->m[0].networks = b->nets;
		b->m[0].countries = "DE";
		b->m[0].alias = "lb.example.net.";
		b->mcheck = (db_check_t){ .type = DB_CHECK_HTTP,
					  .path = "/health",
					  .interval_ms = 5000,
					  .timeout_ms = 1000,
					  .rise = 2,
					  .fall = 3,
					  .quorum = DB_QUORUM_LOCAL };
		b->m[1].check = &b->mcheck;
	}
	if (shape != 1) {
		b->pcheck = (db_check_t){ .type = DB_CHECK_TCP,
					  .port = 80,
					  .interval_ms = 10000,
					  .timeout_ms = 2000,
					  .rise = 2,
					  .fall = 3,
					  .quorum = shape == 0 ? DB_QUORUM_ANY
							       : DB_QUORUM_MAJORITY };
		b->p.check = &b->pcheck;
	}
}

static db_config_t *load(void)
{
	db_config_t *cfg = NULL;
	if (db_config_load(db, &cfg) < 0)
		bail_out("cannot load the configuration: %s", db_errmsg(db));
	return cfg;
}

/* Is pool name in cfg, in shape 0 or 1 as pool_make() made it (nothing more, nothing less)? */
static bool pool_is(const db_config_t *cfg, const char *name, int shape)
{
	const db_pool_t *p = db_config_pool(cfg, name);
	if (!p || p->nmembers != 2)
		return false;
	const db_member_t *a = &p->members[0], *b = &p->members[1];
	if (shape == 1)
		return p->ttl == 60 && p->policy == DB_POLICY_FAILOVER && !p->check &&
		       strcmp(a->name, "b") == 0 && strcmp(b->name, "c") == 0 && !a->check &&
		       !b->check && a->nnetworks == 0 && !a->countries;
	return p->ttl == 30 && p->policy == DB_POLICY_WEIGHTED && p->check &&
	       p->check->quorum == DB_QUORUM_ANY && p->check->port == 80 &&
	       strcmp(a->name, "a") == 0 && strcmp(b->name, "b") == 0 && a->nnetworks == 1 &&
	       a->alias && strcmp(a->alias, "lb.example.net.") == 0 && !b->alias &&
	       strcmp(a->networks[0], "192.0.2.0/24") == 0 && a->countries &&
	       strcmp(a->countries, "DE") == 0 && a->naddresses == 1 && !a->check && b->check &&
	       b->check->quorum == DB_QUORUM_LOCAL && b->check->path &&
	       strcmp(b->check->path, "/health") == 0 && b->weight == 101;
}

/* In one write transaction: put (pool non-NULL) or delete pool name as key at rev. */
static int mirror(const char *key, const char *name, int64_t rev, const db_pool_t *p)
{
	int ret = db_begin_write(db);
	if (ret)
		return ret;
	ret = p ? db_cluster_pool_put(db, key, rev, p) : db_cluster_pool_delete(db, key, name, rev);
	if (ret < 0) {
		db_rollback(db);
		return ret;
	}
	int c = db_commit(db);
	return c < 0 ? c : ret;
}

static int64_t key_rev(const char *key)
{
	int64_t rev = -1;
	if (db_cluster_key_rev(db, key, &rev) < 0)
		return -1;
	return rev;
}

/* ---- raw SQL on the file, beside the connection under test ---- */

static sqlite3 *raw_open(const char *file)
{
	sqlite3 *h = NULL;
	if (sqlite3_open(file, &h) != SQLITE_OK)
		bail_out("sqlite3_open %s", file);
	sqlite3_busy_timeout(h, 5000);
	return h;
}

static int64_t raw_int(const char *file, const char *sql)
{
	sqlite3 *h = raw_open(file);
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		diag("%s: %s", sql, sqlite3_errmsg(h));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static bool streq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The process's CPU time (user and system), which other load on the machine does not inflate. */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- the tests ---- */

static void test_settings(void)
{
	db_cluster_settings_t s = { 0 }, got = { 0 };

	is_int(db_cluster_settings_get(db, &got), -ENOENT, "settings: none on a new file");
	s.urls = "http://127.0.0.1:23790,http://127.0.0.1:23791";
	s.prefix = "/gslbd/";
	s.node = "n1";
	s.lease_s = 10;
	s.ca_file = "/etc/gslbd/ca.pem";
	s.cert_file = "/etc/gslbd/n1.pem";
	s.key_file = "/etc/gslbd/n1.key";
	s.user = "gslbd";
	s.password_file = "/etc/gslbd/etcd.password";
	is_int(db_cluster_settings_put(db, &s), 0, "settings: recorded");
	is_int(db_cluster_settings_get(db, &got), 0, "settings: read back");
	ok(streq(got.urls, s.urls) && streq(got.prefix, s.prefix) && streq(got.node, s.node) &&
		   got.lease_s == 10 && streq(got.ca_file, s.ca_file) &&
		   streq(got.cert_file, s.cert_file) && streq(got.key_file, s.key_file) &&
		   streq(got.user, s.user) && streq(got.password_file, s.password_file),
	   "settings: every field as recorded");
	db_cluster_settings_clear(&got);

	/* Recorded again without the optional ones: those are gone, not left from before. */
	db_cluster_settings_t s2 = {
		.urls = "https://127.0.0.1:23795", .prefix = "/other/", .node = "n2", .lease_s = 30
	};
	is_int(db_cluster_settings_put(db, &s2), 0, "settings: replaced");
	is_int(db_cluster_settings_get(db, &got), 0, "settings: read back again");
	ok(streq(got.urls, s2.urls) && streq(got.prefix, "/other/") && streq(got.node, "n2") &&
		   got.lease_s == 30 && !got.ca_file && !got.cert_file && !got.key_file &&
		   !got.user && !got.password_file,
	   "settings: replaced whole, the options not given are NULL");
	db_cluster_settings_clear(&got);
	ok(!got.urls && !got.node, "settings: cleared");

	db_cluster_settings_t none = { 0 };
	is_int(db_cluster_settings_put(db, &none), 0, "settings: urls NULL removes them");
	is_int(db_cluster_settings_get(db, &got), -ENOENT, "settings: none after removal");
	is_int(raw_int(path, "SELECT count(*) FROM cluster_setting"), 0,
	       "settings: no row left in cluster_setting");
}

static void test_state(void)
{
	db_cluster_state_t st = { .cluster_id = 1 }, want = {
		.cluster_id = 0xfedcba9876543210ULL,
		.applied_rev = 4242,
		.connected = true,
		.changed = 1765000000,
	};

	is_int(db_cluster_state_get(db, &st), 0, "state: read on a new file");
	ok(st.cluster_id == 0 && st.applied_rev == 0 && !st.connected && st.changed == 0,
	   "state: all zero before the first sync");
	is_int(db_cluster_state_put(db, &want), 0, "state: stored");
	is_int(db_cluster_state_get(db, &st), 0, "state: read back");
	ok(st.cluster_id == want.cluster_id && st.applied_rev == 4242 && st.connected &&
		   st.changed == 1765000000,
	   "state: as stored (a cluster id above 2^63 too)");
	want.connected = false;
	want.applied_rev = 4300;
	is_int(db_cluster_state_put(db, &want), 0, "state: stored again");
	is_int(db_cluster_state_get(db, &st), 0, "state: read back again");
	ok(st.applied_rev == 4300 && !st.connected, "state: the second write replaced the first");
}

static void test_pools(void)
{
	struct pool_buf v0, v1;
	db_config_t *cfg;
	const char *w = "w.example.test.";

	pool_make(&v0, w, 0, 1);
	pool_make(&v1, w, 1, 2);

	is_int(key_rev(KEY("w.example.test.")), 0, "pools: a key never mirrored has revision 0");
	is_int(mirror(KEY("w.example.test."), w, 10, &v0.p), 0, "pools: put at revision 10");
	is_int(key_rev(KEY("w.example.test.")), 10, "pools: its key's revision is 10");
	cfg = load();
	ok(pool_is(cfg, w, 0), "pools: the pool reads back whole (members, networks, checks)");
	db_config_free(cfg);

	is_int(mirror(KEY("w.example.test."), w, 10, &v1.p), 1,
	       "pools: the same revision again: skipped");
	is_int(mirror(KEY("w.example.test."), w, 9, &v1.p), 1, "pools: an older put: skipped");
	cfg = load();
	ok(pool_is(cfg, w, 0), "pools: unchanged by the skipped puts");
	db_config_free(cfg);

	is_int(mirror(KEY("w.example.test."), w, 11, &v1.p), 0, "pools: a newer put applied");
	cfg = load();
	ok(pool_is(cfg, w, 1),
	   "pools: replaced entirely (member a, the networks, the checks gone)");
	db_config_free(cfg);
	is_int(raw_int(path, "SELECT count(*) FROM member WHERE name = 'a'"), 0,
	       "pools: no member row of the old pool left");

	is_int(mirror(KEY("w.example.test."), w, 12, NULL), 0, "pools: deleted at revision 12");
	cfg = load();
	ok(!db_config_pool(cfg, w), "pools: gone");
	db_config_free(cfg);
	is_int(key_rev(KEY("w.example.test.")), 0,
	       "pools: a deleted key's revision reads 0 (gslbctl compares create_revision 0)");
	is_int(mirror(KEY("w.example.test."), w, 11, &v0.p), 1,
	       "pools: a put older than the delete: skipped");
	is_int(mirror(KEY("w.example.test."), w, 12, NULL), 1, "pools: the delete again: skipped");
	cfg = load();
	ok(!db_config_pool(cfg, w), "pools: still gone");
	db_config_free(cfg);
	is_int(mirror(KEY("w.example.test."), w, 13, &v0.p), 0,
	       "pools: a put newer than the delete applied");
	cfg = load();
	ok(pool_is(cfg, w, 0), "pools: back");
	db_config_free(cfg);

	/* The same pool at a newer revision: only the revision moves, not the configuration. */
	int64_t g0 = -1, g1 = -2;
	db_config_generation(db, &g0);
	is_int(mirror(KEY("w.example.test."), w, 20, &v0.p), 0, "pools: the same pool, newer");
	db_config_generation(db, &g1);
	ok(g1 == g0 && key_rev(KEY("w.example.test.")) == 20,
	   "pools: its revision recorded, the configuration generation unmoved (%lld, %lld)",
	   (long long)g0, (long long)g1);
	/* Any one difference is a different pool: each of these is written. */
	static const char *const diffs[] = {
		"a member check's quorum", "an address",	  "a network",
		"a member's weight",	   "a member removed",	  "the pool check",
		"the degraded TTL",	   "a member's location", "an alias",
		"an alias removed",	   "an alias added",
	};
	int64_t rev = 21;
	for (size_t i = 0; i < sizeof(diffs) / sizeof(diffs[0]); i++, rev += 2) {
		struct pool_buf d;
		pool_make(&d, w, 0, 1);
		switch (i) {
		case 0:
			d.mcheck.quorum = DB_QUORUM_ALL;
			break;
		case 1:
			d.addr[0][0] = '9';
			break;
		case 2:
			d.m[0].nnetworks = 0;
			break;
		case 3:
			d.m[1].weight = 7;
			break;
		case 4:
			d.p.nmembers = 1;
			break;
		case 5:
			d.p.check = NULL;
			break;
		case 6:
			d.p.degraded_ttl = 5;
			break;
		case 7:
			d.m[1].has_location = true;
			break;
		case 8:
			d.m[0].alias = "lb-2.example.net.";
			break;
		case 9:
			d.m[0].alias = NULL;
			break;
		default:
			d.m[1].alias = "lb.example.net.";
			break;
		}
		db_config_generation(db, &g0);
		int r = mirror(KEY("w.example.test."), w, rev, &d.p);
		db_config_generation(db, &g1);
		is_int(r, 0, "pools: put with %s changed", diffs[i]);
		ok(g1 > g0, "pools: %s changed: written (generation %lld to %lld)", diffs[i],
		   (long long)g0, (long long)g1);
		is_int(mirror(KEY("w.example.test."), w, rev + 1, &v0.p), 0,
		       "pools: and back as it was");
	}
	cfg = load();
	ok(pool_is(cfg, w, 0) && key_rev(KEY("w.example.test.")) == rev - 1,
	   "pools: as it was, at the last revision");
	db_config_free(cfg);
	is_int(mirror(KEY("gone.example.test."), "gone.example.test.", 5, NULL), 0,
	       "pools: the delete of a pool never seen is remembered");
	is_int(mirror(KEY("gone.example.test."), "gone.example.test.", 4, NULL), 1,
	       "pools: an older delete of it: skipped");

	/*
	 * Pools the schema would refuse fail before anything is written, so the transaction
	 * goes on with the next key: here a put of another pool, then a commit.
	 */
	struct pool_buf bad, good;
	pool_make(&good, "good.example.test.", 1, 4);
	bool fine = db_begin_write(db) == 0;
	for (int i = 0; i < 4; i++) {
		static const char *const what[] = { "a check's timeout not below its interval",
						    "two members of one name", "answers 0",
						    "a member without a name" };
		pool_make(&bad, w, 0, 3);
		if (i == 0)
			bad.pcheck.timeout_ms = bad.pcheck.interval_ms;
		else if (i == 1)
			bad.mname[1][0] = 'a';
		else if (i == 2)
			bad.p.answers = 0;
		else
			bad.m[0].name = NULL;
		is_int(db_cluster_pool_put(db, KEY("w.example.test."), 1000 + i, &bad.p),
		       GSLB_ECONFIG, "pools: refused: %s", what[i]);
	}
	is_int(db_cluster_pool_put(db, KEY("other.example.test."), 1000, &good.p), GSLB_ECONFIG,
	       "pools: refused: a pool under another pool's key");
	fine = fine && db_cluster_pool_put(db, KEY("good.example.test."), 5, &good.p) == 0;
	fine = fine && db_commit(db) == 0;
	ok(fine, "pools: the same transaction went on with another pool, and committed");
	cfg = load();
	ok(pool_is(cfg, w, 0) && key_rev(KEY("w.example.test.")) == rev - 1 &&
		   pool_is(cfg, "good.example.test.", 1),
	   "pools: the refused pool's key kept its pool and revision, the other pool is in");
	db_config_free(cfg);
	is_int(mirror(KEY("good.example.test."), "good.example.test.", 6, NULL), 0,
	       "pools: (that one deleted again)");
}

static void test_retain(void)
{
	struct pool_buf b;
	const char *names[] = { "r1.example.test.", "r2.example.test.", "r3.example.test." };
	const char *keys[] = { KEY("r1.example.test."), KEY("r2.example.test."),
			       KEY("r3.example.test.") };
	db_config_t *cfg;

	/* A pool of the standalone days, never mirrored, goes too: etcd does not hold it. */
	pool_make(&b, "standalone.example.test.", 1, 9);
	bool fine = db_begin_write(db) == 0 && db_pool_insert(db, &b.p) == 0;
	fine = fine && db_commit(db) == 0;
	ok(fine, "retain: a standalone pool written");
	int bad = 0;
	for (int i = 0; i < 3; i++) {
		pool_make(&b, names[i], 1, (unsigned)(20 + i));
		bad += mirror(keys[i], names[i], 100 + i, &b.p) != 0;
	}
	is_int(bad, 0, "retain: three pools mirrored");

	/* The full sync found r1, r3 and w at etcd, not r2. */
	const char *kept[] = { keys[2], KEY("w.example.test."), keys[0] };
	fine = db_begin_write(db) == 0 && db_cluster_pools_retain(db, kept, 3) == 0;
	fine = fine && db_commit(db) == 0;
	ok(fine, "retain: applied");
	cfg = load();
	ok(db_config_pool(cfg, names[0]) && db_config_pool(cfg, names[2]) &&
		   db_config_pool(cfg, "w.example.test.") && !db_config_pool(cfg, names[1]) &&
		   !db_config_pool(cfg, "standalone.example.test.") && cfg->npools == 3,
	   "retain: the pools etcd holds are kept, r2 and the standalone pool are gone");
	db_config_free(cfg);
	ok(key_rev(keys[0]) == 100 && key_rev(keys[2]) == 102 && key_rev(keys[1]) == 0,
	   "retain: kept keys keep their revisions, r2's is forgotten");
	is_int(raw_int(path, "SELECT count(*) FROM cluster_key"), 3,
	       "retain: the tombstone of gone.example.test. is forgotten too");
	is_int(mirror(KEY("gone.example.test."), "gone.example.test.", 2, NULL), 0,
	       "retain: after it, a delete older than the forgotten one applies");
	pool_make(&b, names[1], 1, 21);
	is_int(mirror(keys[1], names[1], 50, &b.p), 0,
	       "retain: and a put of r2 older than its forgotten revision");

	/* Revisions forgotten (another cluster): an older put applies, to pools as they are. */
	int64_t g0 = -1, g1 = -2;
	db_config_generation(db, &g0);
	fine = db_begin_write(db) == 0 && db_cluster_keys_forget(db) == 0;
	fine = fine && db_commit(db) == 0;
	db_config_generation(db, &g1);
	cfg = load();
	ok(fine && key_rev(keys[0]) == 0 &&
		   raw_int(path, "SELECT count(*) FROM cluster_key") == 0 && cfg->npools == 4 &&
		   g0 == g1,
	   "forget: every key's revision forgotten, the pools kept");
	db_config_free(cfg);
	pool_make(&b, names[0], 1, 20);
	is_int(mirror(keys[0], names[0], 3, &b.p), 0, "forget: a put older than before applies");
	is_int(key_rev(keys[0]), 3, "forget: its revision recorded");

	/* No keys at all: an empty cluster, every pool goes. */
	fine = db_begin_write(db) == 0 && db_cluster_pools_retain(db, NULL, 0) == 0;
	fine = fine && db_commit(db) == 0;
	cfg = load();
	ok(fine && cfg->npools == 0 && raw_int(path, "SELECT count(*) FROM cluster_key") == 0,
	   "retain: nothing at etcd, nothing kept");
	db_config_free(cfg);
}

static void test_journal(void)
{
	db_journal_entry_t e = { .time = "2026-12-07T07:00:00Z",
				 .actor = "ops@host",
				 .command = "gslbctl pool add x.example.test.",
				 .summary = "pool x.example.test. added",
				 .node = "n1" };
	db_journal_entry_t e2 = { .time = "2026-12-07T07:00:01Z",
				  .actor = "ops@host",
				  .command = "gslbctl cluster import",
				  .summary = "imported",
				  .node = NULL };
	db_journal_entry_t *j = NULL;
	size_t n = 0;

	is_int(db_cluster_journal_put(db, "/gslbd/journal/0001-n1-00000001", &e), 0,
	       "journal: an entry mirrored");
	is_int(db_cluster_journal_put(db, "/gslbd/journal/0001-n1-00000001", &e), 0,
	       "journal: the same key again is no error");
	is_int(db_cluster_journal_put(db, "/gslbd/journal/0002-gslbctl-00000002", &e2), 0,
	       "journal: another without a node");
	is_int(db_journal_add(db, "local@host", "gslbctl pool list", "standalone entry"), 0,
	       "journal: a standalone entry beside them");
	ok(db_journal_list(db, 0, &j, &n) == 0 && n == 3, "journal: three entries, not four (%zu)",
	   n);
	ok(n == 3 && streq(j[2].node, "n1") && streq(j[2].command, e.command) &&
		   streq(j[2].time, e.time) && streq(j[2].actor, e.actor) &&
		   streq(j[2].summary, e.summary) && !j[1].node &&
		   streq(j[1].summary, "imported") && !j[0].node,
	   "journal: each entry with its node (NULL when none), time, actor, command, summary");
	db_journal_free(j, n);
}

static void test_nodes_votes(void)
{
	db_cluster_node_t n1 = { .name = "n1", .live = true, .last_seen = 100, .revision = 7 };
	db_cluster_node_t n2 = {
		.name = "n2", .live = true, .last_seen = 101, .revision = 8, .down_votes = 2
	};
	db_cluster_node_t *v = NULL;
	size_t n = 0;

	is_int(db_cluster_node_put(db, &n2), 0, "nodes: n2 put");
	is_int(db_cluster_node_put(db, &n1), 0, "nodes: n1 put");
	n1.live = false;
	n1.last_seen = 150;
	n1.revision = 9;
	n1.down_votes = 1;
	is_int(db_cluster_node_put(db, &n1), 0, "nodes: n1 put again");
	ok(db_cluster_nodes_list(db, &v, &n) == 0 && n == 2, "nodes: two (%zu)", n);
	ok(n == 2 && streq(v[0].name, "n1") && !v[0].live && v[0].last_seen == 150 &&
		   v[0].revision == 9 && v[0].down_votes == 1 && streq(v[1].name, "n2") &&
		   v[1].live && v[1].last_seen == 101 && v[1].revision == 8 && v[1].down_votes == 2,
	   "nodes: by name, n1's row replaced");
	db_cluster_nodes_free(v, n);

	const char *k1 = "tcp 192.0.2.1:80", *k2 = "http 192.0.2.2:80 www.example.test/";
	db_cluster_vote_t *vv = NULL;
	int bad = db_cluster_vote_put(db, "n2", k1, false) != 0;
	bad += db_cluster_vote_put(db, "n1", k1, false) != 0;
	bad += db_cluster_vote_put(db, "n1", k1, true) != 0;
	bad += db_cluster_vote_put(db, "n1", k2, false) != 0;
	bad += db_cluster_vote_put(db, "n3", k2, true) != 0;
	is_int(bad, 0, "votes: five put");
	ok(db_cluster_votes_get(db, k1, &vv, &n) == 0 && n == 2 && streq(vv[0].node, "n1") &&
		   vv[0].up && streq(vv[1].node, "n2") && !vv[1].up,
	   "votes: on k1 by node, n1's vote replaced (up)");
	db_cluster_votes_free(vv, n);
	is_int(db_cluster_vote_delete(db, "n1", k1), 0, "votes: n1's vote on k1 removed");
	ok(db_cluster_votes_get(db, k1, &vv, &n) == 0 && n == 1 && streq(vv[0].node, "n2"),
	   "votes: on k1 only n2's left");
	db_cluster_votes_free(vv, n);
	ok(db_cluster_votes_get(db, k2, &vv, &n) == 0 && n == 2, "votes: k2 untouched (%zu)", n);
	db_cluster_votes_free(vv, n);
	is_int(db_cluster_vote_delete(db, "n1", NULL), 0, "votes: all of n1's removed");
	ok(db_cluster_votes_get(db, k2, &vv, &n) == 0 && n == 1 && streq(vv[0].node, "n3") &&
		   vv[0].up,
	   "votes: on k2 only n3's left");
	db_cluster_votes_free(vv, n);
	is_int(db_cluster_votes_clear(db), 0, "votes: cleared");
	ok(db_cluster_votes_get(db, k1, &vv, &n) == 0 && n == 0 && !vv, "votes: none on k1");
	db_cluster_votes_free(vv, n);
	ok(db_cluster_votes_get(db, k2, &vv, &n) == 0 && n == 0, "votes: none on k2");
	db_cluster_votes_free(vv, n);
}

/* A check's quorum through db_check_put() and db_config_load(); majority stored as NULL. */
static void test_quorum(void)
{
	struct pool_buf b;
	db_config_t *cfg;
	const char *q = "q.example.test.";

	pool_make(&b, q, 0, 40);
	b.pcheck.quorum = DB_QUORUM_ALL;
	bool fine = db_begin_write(db) == 0 && db_pool_insert(db, &b.p) == 0 &&
		    db_member_insert(db, q, &b.m[0]) == 0 &&
		    db_member_insert(db, q, &b.m[1]) == 0 &&
		    db_check_put(db, q, NULL, &b.pcheck) == 0 &&
		    db_check_put(db, q, "b", &b.mcheck) == 0;
	b.pcheck.quorum = DB_QUORUM_MAJORITY;
	fine = fine && db_check_put(db, q, "a", &b.pcheck) == 0 && db_commit(db) == 0;
	ok(fine, "quorum: checks with quorum all, local and majority written");
	cfg = load();
	const db_pool_t *p = db_config_pool(cfg, q);
	const db_member_t *a = p ? db_pool_member(p, "a") : NULL,
			  *mb = p ? db_pool_member(p, "b") : NULL;
	ok(p && p->check && p->check->quorum == DB_QUORUM_ALL && a && a->check &&
		   a->check->quorum == DB_QUORUM_MAJORITY && mb && mb->check &&
		   mb->check->quorum == DB_QUORUM_LOCAL,
	   "quorum: each read back as written");
	db_config_free(cfg);
	is_int(raw_int(path, "SELECT count(*) FROM health_check h JOIN pool p ON p.id = h.pool_id "
			     "WHERE p.name = 'q.example.test.' AND h.quorum IS NULL"),
	       1, "quorum: majority is stored as NULL (exports of old checks unchanged)");
	is_int(raw_int(path, "SELECT count(*) FROM health_check WHERE quorum = 'all'"), 1,
	       "quorum: all is stored by name");
}

/* The version 2 schema as shipped (tests/db/schema_v2.sql), filled, then migrated. */
static void test_migrate_v2(void)
{
	char sqlfile[4096], v2[sizeof(dir) + 16];
	const char *src = getenv("GSLB_SRCDIR");
	snprintf(sqlfile, sizeof(sqlfile), "%s/tests/db/schema_v2.sql", src ? src : ".");
	snprintf(v2, sizeof(v2), "%s/v2.db", dir);

	FILE *f = fopen(sqlfile, "r");
	if (!f)
		bail_out("cannot read %s", sqlfile);
	char *schema = calloc(1, 1 << 16);
	size_t len = fread(schema, 1, (1 << 16) - 1, f);
	fclose(f);
	ok(len > 0, "migrate: the version 2 schema read (%zu bytes)", len);

	sqlite3 *h = raw_open(v2);
	char *err = NULL;
	int rc = sqlite3_exec(h, schema, NULL, NULL, &err);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(
			h,
			"PRAGMA user_version = 2;"
			"INSERT INTO pool(id, name, ttl) VALUES (1, 'old.example.test.', 45);"
			"INSERT INTO member(id, pool_id, name, weight) VALUES (1, 1, 'm', 7);"
			"INSERT INTO member_address(member_id, address, family) "
			"VALUES (1, '192.0.2.9', 4);"
			"INSERT INTO health_check(pool_id, type, port, interval_ms, timeout_ms) "
			"VALUES (1, 'tcp', 443, 5000, 1000);"
			"INSERT INTO health_check(pool_id, member_id, type, path) "
			"VALUES (1, 1, 'http', '/up');"
			"INSERT INTO journal(time, actor, command, summary) "
			"VALUES ('2026-01-01T00:00:00Z', 'a@h', 'pool add', 'added');"
			"INSERT INTO target(key) VALUES ('tcp 192.0.2.9:443');"
			"INSERT INTO target_state(target_id, state, since) VALUES (1, 'down', 5);",
			NULL, NULL, &err);
	ok(rc == SQLITE_OK, "migrate: a version 2 file with a pool, checks, journal, state (%s)",
	   err ? err : "ok");
	sqlite3_free(err);
	sqlite3_close(h);
	free(schema);

	db_t *d = NULL;
	int from = -1, version = -1;
	ok(db_open(v2, 0, &d) == 0 && db_migrate(d, &from) == 0 && from == 2 &&
		   db_version(d, &version) == 0 && version == DB_SCHEMA_VERSION,
	   "migrate: version 2 to %d", version);
	db_config_t *cfg = NULL;
	ok(d && db_config_load(d, &cfg) == 0, "migrate: the configuration loads");
	const db_pool_t *p = cfg ? db_config_pool(cfg, "old.example.test.") : NULL;
	ok(p && p->ttl == 45 && p->nmembers == 1 && p->members[0].weight == 7 &&
		   p->members[0].naddresses == 1 &&
		   strcmp(p->members[0].addresses[0], "192.0.2.9") == 0 && p->check &&
		   p->check->port == 443 && p->check->quorum == DB_QUORUM_MAJORITY &&
		   p->members[0].check && streq(p->members[0].check->path, "/up") &&
		   p->members[0].check->quorum == DB_QUORUM_MAJORITY,
	   "migrate: the pool, member, address and checks kept, quorum majority");
	db_config_free(cfg);
	db_journal_entry_t *j = NULL;
	size_t n = 0;
	ok(d && db_journal_list(d, 0, &j, &n) == 0 && n == 1 && streq(j[0].command, "pool add") &&
		   !j[0].node && j[0].id == 1,
	   "migrate: the journal kept, its entries without a node");
	db_journal_free(j, n);
	db_target_state_t ts = { 0 };
	ok(d && db_target_state_get(d, "tcp 192.0.2.9:443", &ts) == 0 && streq(ts.state, "down") &&
		   ts.since == 5,
	   "migrate: the health state kept");
	db_target_state_clear(&ts);
	db_cluster_state_t st = { .applied_rev = -1 };
	ok(d && db_cluster_state_get(d, &st) == 0 && st.applied_rev == 0,
	   "migrate: the cluster tables exist, empty");
	db_close(d);
	is_int(raw_int(v2, "SELECT count(*) FROM pragma_foreign_key_check"), 0,
	       "migrate: no foreign key violation");
	is_int(raw_int(v2, "SELECT count(*) FROM health_check"), 2, "migrate: both checks kept");
	int64_t gen_trigs = raw_int(v2,
				    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
				    "AND tbl_name = 'health_check' AND name LIKE '%generation'");
	is_int(gen_trigs, 3, "migrate: health_check's generation triggers are there");
}

/*
 * A full sync of BENCH_POOLS pools (two members with an address each, a pool check), in one
 * transaction with the retain that ends it, into an empty file; then the same again (every put
 * skipped); then every pool at a newer revision, as stored (the first sync after gslbctl cluster
 * import); then every pool at a newer revision, each different (every pool replaced).  Times
 * are printed, not asserted.
 */
static void test_bench(void)
{
	size_t n = BENCH_POOLS;
	const char *env = getenv("GSLB_BENCH_POOLS");
	if (env && atol(env) > 0)
		n = (size_t)atol(env);
	char **keys = calloc(n, sizeof(*keys));
	struct pool_buf b;
	double t[4], cpu[4];
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		keys[i] = malloc(64);
		snprintf(keys[i], 64, "/gslbd/pools/p%06zu.bench.test.", i);
	}
	for (int round = 0; round < 4; round++) {
		double t0 = now_s(), c0 = cpu_s();
		int64_t base = round < 2 ? 1 : round * 1000000;
		bad += db_begin_write(db) != 0;
		for (size_t i = 0; i < n && !bad; i++) {
			pool_make(&b, keys[i] + strlen("/gslbd/pools/"), 2, (unsigned)i);
			if (round == 3)
				b.p.ttl = 31;
			int r = db_cluster_pool_put(db, keys[i], base + (int64_t)i, &b.p);
			bad += r != (round == 1 ? 1 : 0);
		}
		bad += db_cluster_pools_retain(db, (const char *const *)keys, n) != 0;
		bad += db_commit(db) != 0;
		t[round] = now_s() - t0;
		cpu[round] = cpu_s() - c0;
	}
	is_int(bad, 0, "bench: %zu pools mirrored four times", n);
	double t0 = now_s();
	db_config_t *cfg = load();
	double tl = now_s() - t0;
	const db_pool_t *p = db_config_pool(cfg, "p000007.bench.test.");
	ok(cfg->npools == n && p && p->nmembers == 2 && p->check && p->ttl == 31,
	   "bench: %zu pools read back, each whole", cfg->npools);
	db_config_free(cfg);
	diag("full sync of %zu pools (2 members, 1 address each, a pool check) in one "
	     "transaction, wall (CPU) seconds: %.2f (%.2f) into an empty file, %.2f (%.2f) "
	     "again (every put skipped), %.2f (%.2f) newer revisions as stored, %.2f (%.2f) "
	     "newer revisions all different (every pool replaced); db_config_load %.2f",
	     n, t[0], cpu[0], t[1], cpu[1], t[2], cpu[2], t[3], cpu[3], tl);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

int main(void)
{
	if (!mkdtemp(dir))
		bail_out("mkdtemp");
	snprintf(path, sizeof(path), "%s/gslb.db", dir);
	int from = -1, version = -1;
	ok(db_open(path, DB_OPEN_CREATE, &db) == 0 && db_migrate(db, &from) == 0 &&
		   db_version(db, &version) == 0,
	   "a new file gets the schema");
	is_int(version, DB_SCHEMA_VERSION, "the current schema version");

	test_settings();
	test_state();
	test_pools();
	test_retain();
	test_journal();
	test_nodes_votes();
	test_quorum();
	test_migrate_v2();
	test_bench();

	db_close(db);
	const char *files[] = { "gslb.db", "gslb.db-wal", "gslb.db-shm",
				"v2.db",   "v2.db-wal",	  "v2.db-shm" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char f[sizeof(dir) + 32];
		snprintf(f, sizeof(f), "%s/%s", dir, files[i]);
		unlink(f);
	}
	rmdir(dir);
	return done_testing();
}
