/* SPDX-License-Identifier: MIT */
/*
 * The database layer on a real SQLite file: pools, members, checks, admin
 * states and the journal written, read back and deleted, many rounds over
 * one connection.  Built twice: test_db with the statement cache as
 * shipped, test_db_nocache with a one-statement cache, so that nearly every
 * statement is compiled, run and finalized (the path a connection takes once
 * its cache is full).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gslb/db.h"
#include "tap.h"

#define ROUNDS 40

static db_t *db;

static void pool_fill(db_pool_t *p, char *name, uint8_t policy)
{
	memset(p, 0, sizeof(*p));
	p->name = name;
	p->policy = policy;
	p->ttl = 30;
	p->degraded_ttl = -1;
	p->answers = 1;
	p->fallback_all = true;
}

/* Write one pool with two members and checks, in one transaction. */
static int write_round(int r)
{
	char pname[64], a1[32], a2[64];
	snprintf(pname, sizeof(pname), "p%d.example.test.", r);
	snprintf(a1, sizeof(a1), "192.0.2.%d", r % 250 + 1);
	snprintf(a2, sizeof(a2), "2001:db8::%x", r + 1);

	db_pool_t p;
	pool_fill(&p, pname, r % 3 == 2 ? DB_POLICY_GEO : DB_POLICY_WEIGHTED);
	char *addrs1[] = { a1 }, *addrs2[] = { a2 };
	uint8_t fam4[] = { 4 }, fam6[] = { 6 };
	char *nets[] = { "10.0.0.0/8" };
	db_check_t check = { .type = DB_CHECK_TCP,
			     .port = 443,
			     .interval_ms = 5000,
			     .timeout_ms = 2000,
			     .rise = 2,
			     .fall = 3 };
	db_check_t http = { .type = DB_CHECK_HTTP,
			    .path = "/health",
			    .match = "OK",
			    .interval_ms = 10000,
			    .timeout_ms = 1000,
			    .rise = 1,
			    .fall = 1 };
	db_member_t m1 = { .name = "fra",
			   .weight = 100,
			   .priority = 1,
			   .naddresses = 1,
			   .addresses = addrs1,
			   .families = fam4,
			   .countries = "DE",
			   .continents = "EU",
			   .has_location = true,
			   .latitude = 50.11,
			   .longitude = 8.68,
			   .nnetworks = 1,
			   .networks = nets };
	db_member_t m2 = { .name = "iad",
			   .weight = 50,
			   .priority = 2,
			   .naddresses = 1,
			   .addresses = addrs2,
			   .families = fam6 };

	int ret = db_begin_write(db);
	if (ret == 0)
		ret = db_pool_insert(db, &p);
	if (ret == 0)
		ret = db_member_insert(db, pname, &m1);
	if (ret == 0)
		ret = db_member_insert(db, pname, &m2);
	if (ret == 0)
		ret = db_check_put(db, pname, NULL, &check);
	if (ret == 0)
		ret = db_check_put(db, pname, "iad", &http);
	if (ret == 0)
		ret = db_member_set_admin(db, pname, "iad", DB_ADMIN_DRAIN);
	if (ret == 0) {
		m1.weight = 10;
		ret = db_member_update(db, pname, &m1);
	}
	if (ret == 0) {
		p.ttl = 60;
		ret = db_pool_update(db, &p);
	}
	if (ret == 0)
		ret = db_journal_add(db, "test@host", "pool add", pname);
	if (ret == 0)
		ret = db_commit(db);
	else
		db_rollback(db);
	return ret;
}

/* The pools written so far, as read back: ok unless something differs. */
static bool config_matches(int rounds, int deleted_every)
{
	db_config_t *cfg = NULL;
	if (db_begin_read(db) < 0)
		return false;
	int ret = db_config_load(db, &cfg);
	db_rollback(db);
	if (ret < 0)
		return false;
	bool ok = true;
	size_t want = 0;
	for (int r = 0; r < rounds; r++) {
		char pname[64];
		snprintf(pname, sizeof(pname), "p%d.example.test.", r);
		const db_pool_t *p = db_config_pool(cfg, pname);
		bool gone = deleted_every && r % deleted_every == 0;
		if (gone) {
			ok = ok && !p;
			continue;
		}
		want++;
		const db_member_t *fra = p ? db_pool_member(p, "fra") : NULL;
		const db_member_t *iad = p ? db_pool_member(p, "iad") : NULL;
		ok = ok && p && p->ttl == 60 && p->nmembers == 2 && p->check &&
		     p->check->port == 443 && fra && fra->weight == 10 && fra->naddresses == 1 &&
		     fra->nnetworks == 1 && fra->countries && strcmp(fra->countries, "DE") == 0 &&
		     iad && iad->admin == DB_ADMIN_DRAIN && iad->check && iad->check->match &&
		     strcmp(iad->check->match, "OK") == 0;
		if (!ok) {
			diag("pool %s differs", pname);
			break;
		}
	}
	ok = ok && cfg->npools == want;
	db_config_free(cfg);
	return ok;
}

/* Two configurations alike, pool by pool (what the daemon builds from). */
static bool config_same(const db_config_t *a, const db_config_t *b)
{
	if (a->npools != b->npools)
		return false;
	for (size_t i = 0; i < a->npools; i++) {
		const db_pool_t *p = &a->pools[i], *q = &b->pools[i];
		if (strcmp(p->name, q->name) || p->ttl != q->ttl || p->nmembers != q->nmembers ||
		    !p->check != !q->check)
			return false;
		for (size_t k = 0; k < p->nmembers; k++) {
			const db_member_t *m = &p->members[k], *n = &q->members[k];
			if (strcmp(m->name, n->name) || m->admin != n->admin ||
			    m->weight != n->weight || m->naddresses != n->naddresses ||
			    m->nnetworks != n->nnetworks || !m->check != !n->check ||
			    (m->naddresses && strcmp(m->addresses[0], n->addresses[0])))
				return false;
		}
	}
	return true;
}

/*
 * Reading only what changed: the pools written since a generation, loaded
 * alone and merged into the configuration read then, make the configuration
 * a whole read makes now.
 */
static void test_changed(void)
{
	db_config_t *before = NULL, *part = NULL, *now = NULL;
	int64_t gen = 0;
	char **names = NULL;
	size_t n = 0, *from = NULL;

	ok(db_begin_read(db) == 0 && db_config_generation(db, &gen) == 0 &&
		   db_config_load(db, &before) == 0,
	   "the configuration and its generation, in one read");
	db_rollback(db);
	int ret = db_begin_write(db);
	if (!ret)
		ret = db_member_set_admin(db, "p1.example.test.", "fra", DB_ADMIN_DOWN);
	if (!ret)
		ret = db_pool_delete(db, "p5.example.test.");
	if (!ret)
		ret = db_commit(db);
	else
		db_rollback(db);
	ok(ret == 0 && write_round(ROUNDS) == 0, "a member state, a pool deleted, a pool added");
	ok(db_config_changed(db, gen, &names, &n) == 0 && n == 3 &&
		   strcmp(names[0], "p1.example.test.") == 0 &&
		   strcmp(names[1], "p40.example.test.") == 0 &&
		   strcmp(names[2], "p5.example.test.") == 0,
	   "the three pools written are named changed, in name order (%zu)", n);
	ok(db_config_load_pools(db, (const char *const *)names, n, &part) == 0 &&
		   part->npools == 2 && strcmp(part->pools[0].name, "p1.example.test.") == 0 &&
		   part->pools[0].nmembers == 2 && part->pools[0].check,
	   "loaded alone: the two that exist, whole");
	db_config_merge(before, (const char *const *)names, n, part, &from);
	ok(part->npools == 0, "merged: the pools moved out of part");
	ok(db_config_load(db, &now) == 0 && config_same(before, now),
	   "merged, the configuration read then is the one read whole now");
	bool idx = true;
	for (size_t i = 0; i < before->npools; i++) {
		bool changed = db_config_pool(part, before->pools[i].name) ||
			       strcmp(before->pools[i].name, "p1.example.test.") == 0 ||
			       strcmp(before->pools[i].name, "p40.example.test.") == 0;
		idx = idx && (from[i] == SIZE_MAX) == changed;
	}
	ok(idx, "each pool's old index, none for those changed");
	free(from);
	db_names_free(names, n);
	db_config_free(part);
	db_config_free(before);
	db_config_free(now);
}

int main(void)
{
	char dir[] = "/tmp/gslb-test-db.XXXXXX", path[128];
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/gslb.db", dir);

	ok(db_open(path, DB_OPEN_CREATE, &db) == 0, "open a new file");
	int from = -1;
	ok(db_migrate(db, &from) == 0, "create the schema (from version %d)", from);

	int failed = 0;
	for (int r = 0; r < ROUNDS; r++)
		failed += write_round(r) != 0;
	is_int(failed, 0, "%d rounds of pool, member, check, admin, update and journal writes",
	       ROUNDS);
	ok(config_matches(ROUNDS, 0), "every pool reads back as written");

	db_journal_entry_t *j = NULL;
	size_t nj = 0;
	ok(db_journal_list(db, 1000, &j, &nj) == 0 && nj == ROUNDS, "journal: %zu entries", nj);
	db_journal_free(j, nj);

	failed = 0;
	for (int r = 0; r < ROUNDS; r += 4) {
		char pname[64];
		snprintf(pname, sizeof(pname), "p%d.example.test.", r);
		if (db_begin_write(db) < 0 || db_member_delete(db, pname, "iad") < 0 ||
		    db_check_delete(db, pname, NULL) < 0 || db_pool_delete(db, pname) < 0 ||
		    db_commit(db) < 0)
			failed++;
	}
	is_int(failed, 0, "deletes");
	ok(config_matches(ROUNDS, 4), "the deleted pools are gone, the others intact");

	/* The same statements again, many times: reused or compiled afresh, never leaked. */
	bool all = true;
	for (int i = 0; i < 200 && all; i++)
		all = config_matches(ROUNDS, 4);
	ok(all, "200 more reads of the whole configuration");
	int64_t gen = 0;
	ok(db_config_generation(db, &gen) == 0 && gen > 0, "config generation moved (%lld)",
	   (long long)gen);

	/* What is not there, or already there: the codes gslbctl turns into its messages. */
	db_pool_t p;
	db_member_t m = { .name = "fra", .weight = 1 };
	pool_fill(&p, "p1.example.test.", DB_POLICY_WEIGHTED);
	ok(db_begin_write(db) == 0, "begin a write to roll back");
	is_int(db_pool_insert(db, &p), -EEXIST, "a pool inserted twice");
	is_int(db_check_delete(db, "p1.example.test.", NULL), 0, "a pool's check deleted");
	is_int(db_check_delete(db, "p1.example.test.", NULL), -ENOENT, "and deleted again");
	pool_fill(&p, "p0.example.test.", DB_POLICY_WEIGHTED);
	is_int(db_pool_update(db, &p), -ENOENT, "a deleted pool updated");
	is_int(db_pool_delete(db, "p0.example.test."), -ENOENT, "a deleted pool deleted");
	is_int(db_member_insert(db, "p0.example.test.", &m), -ENOENT,
	       "a member inserted in a deleted pool");
	is_int(db_member_set_admin(db, "p1.example.test.", "none", DB_ADMIN_UP), -ENOENT,
	       "a missing member's admin state set");
	db_rollback(db);
	ok(config_matches(ROUNDS, 4), "rolled back, the configuration is intact");
	test_changed();

	db_close(db);
	unlink(path);
	char wal[160];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	return done_testing();
}
