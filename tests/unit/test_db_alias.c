/* SPDX-License-Identifier: MIT */
/*
 * Alias members on a real SQLite file (README "Alias members"): a member's
 * alias written, loaded (whole and pool by pool, packed), changed and
 * removed; alias_state rows stored in batches, upserted, read back and
 * checked column by column as the schema's comment defines them; and the
 * addresses a member serves (lb_member_address()) and the pools built from
 * them, with an alias resolved, resolved to nothing, never resolved, and
 * unknown.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gslb/db.h"
#include "gslb/lb.h"
#include "tap.h"

#define POOL "www.example.test."

static db_t *db;
static char path[128];

static bool str_is(const char *got, const char *want, const char *what)
{
	bool same = got && want ? strcmp(got, want) == 0 : got == want;
	ok(same, "%s", what);
	if (!same)
		diag("  got \"%s\", want \"%s\"", got ? got : "(null)", want ? want : "(null)");
	return same;
}

/* Pool POOL with three members: own addresses and an alias, an alias alone, addresses alone. */
static int pool_write(void)
{
	db_pool_t p = { .name = POOL, .ttl = 30, .degraded_ttl = -1, .answers = 1 };
	char *a1[] = { "192.0.2.1" }, *a3[] = { "198.51.100.3" };
	uint8_t f4[] = { 4 };
	db_member_t m[] = {
		{ .name = "both",
		  .weight = 100,
		  .priority = 1,
		  .alias = "lb-1.example.net.",
		  .naddresses = 1,
		  .addresses = a1,
		  .families = f4 },
		{ .name = "only", .weight = 100, .priority = 1, .alias = "lb-2.example.net." },
		{ .name = "plain",
		  .weight = 100,
		  .priority = 1,
		  .naddresses = 1,
		  .addresses = a3,
		  .families = f4 },
	};
	int ret = db_begin_write(db);
	if (!ret)
		ret = db_pool_insert(db, &p);
	for (size_t i = 0; !ret && i < 3; i++)
		ret = db_member_insert(db, POOL, &m[i]);
	if (!ret)
		return db_commit(db);
	db_rollback(db);
	return ret;
}

static const db_member_t *member(const db_config_t *cfg, const char *name)
{
	return db_pool_member(db_config_pool(cfg, POOL), name);
}

static void test_member_alias(void)
{
	db_config_t *cfg = NULL, *part = NULL;
	const char *names[] = { POOL };

	is_int(pool_write(), 0, "a pool with alias members written");
	is_int(db_config_load(db, &cfg), 0, "loaded whole");
	str_is(member(cfg, "both")->alias, "lb-1.example.net.", "an alias beside addresses");
	str_is(member(cfg, "only")->alias, "lb-2.example.net.", "an alias alone");
	str_is(member(cfg, "plain")->alias, NULL, "no alias: NULL");
	ok(db_config_pool(cfg, POOL)->packed, "the pool is packed");
	is_int(db_config_load_pools(db, names, 1, &part), 0, "loaded by name");
	str_is(member(part, "both")->alias, "lb-1.example.net.", "by name: the alias");
	str_is(member(part, "plain")->alias, NULL, "by name: no alias");
	db_config_free(part);

	/* Changed and removed through db_member_update(), as gslbctl member set writes. */
	db_member_t m = *member(cfg, "both");
	m.alias = "other.example.net.";
	int ret = db_begin_write(db);
	if (!ret)
		ret = db_member_update(db, POOL, &m);
	if (!ret)
		ret = db_commit(db);
	is_int(ret, 0, "an alias changed");
	m = *member(cfg, "only");
	m.alias = NULL;
	ret = db_begin_write(db);
	if (!ret)
		ret = db_member_update(db, POOL, &m);
	if (!ret)
		ret = db_commit(db);
	is_int(ret, 0, "an alias removed");
	db_config_free(cfg);
	is_int(db_config_load(db, &cfg), 0, "loaded again");
	str_is(member(cfg, "both")->alias, "other.example.net.", "the changed alias");
	str_is(member(cfg, "only")->alias, NULL, "the removed alias");
	str_is(member(cfg, "plain")->alias, NULL, "the member without stays without");
	db_config_free(cfg);

	/* Back as it was, for the tests of served addresses. */
	ret = db_begin_write(db);
	if (!ret)
		ret = db_pool_delete(db, POOL);
	if (!ret)
		ret = db_commit(db);
	is_int(ret ? ret : pool_write(), 0, "the pool deleted (its aliases with it) and rewritten");
}

/* One column of alias_state's row for name, read with SQLite itself: the contract on disk. */
static char *column(const char *name, const char *col)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	char sql[128], *v = NULL;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return NULL;
	snprintf(sql, sizeof(sql), "SELECT quote(%s) FROM alias_state WHERE name = ?1", col);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return v;
}

static void column_is(const char *name, const char *col, const char *want)
{
	char *v = column(name, col);
	char what[128];
	snprintf(what, sizeof(what), "%s: %s is %s", name, col, want);
	str_is(v, want, what);
	free(v);
}

static void test_state_store(void)
{
	db_aliases_t a;
	char *addrs[] = { "2001:db8::7", "203.0.113.9", "192.0.2.8" };
	uint8_t fams[] = { 6, 4, 4 };
	db_alias_state_t v[] = {
		/* Resolved: addresses in no order, as a resolver hands them out. */
		{ .name = "lb-1.example.net.",
		  .naddresses = 3,
		  .addresses = addrs,
		  .families = fams,
		  .resolved = 1700000000,
		  .expires = 1700000060 },
		/* Never resolved, failing. */
		{ .name = "lb-2.example.net.",
		  .never_resolved = true,
		  .failures = 3,
		  .error = "SERVFAIL",
		  .error_time = 1700000005 },
		/* Resolved to no address at all. */
		{ .name = "empty.example.net.", .resolved = 1700000001, .expires = 1700000301 },
	};

	is_int(db_alias_state_load(db, &a), 0, "no alias state yet: loads");
	is_int((long long)a.n, 0, "and is empty");
	db_aliases_clear(&a);
	is_int(db_alias_state_store(db, v, 3), 0, "a batch of three stored");
	column_is("lb-1.example.net.", "addresses", "'2001:db8::7,203.0.113.9,192.0.2.8'");
	column_is("lb-1.example.net.", "expires", "1700000060");
	column_is("lb-1.example.net.", "error", "NULL");
	column_is("lb-2.example.net.", "addresses", "NULL");
	column_is("lb-2.example.net.", "resolved", "NULL");
	column_is("lb-2.example.net.", "failures", "3");
	column_is("lb-2.example.net.", "error", "'SERVFAIL'");
	column_is("empty.example.net.", "addresses", "''");

	is_int(db_alias_state_load(db, &a), 0, "loaded");
	is_int((long long)a.n, 3, "three rows");
	str_is(a.v[0].name, "empty.example.net.", "sorted by name: first");
	str_is(a.v[2].name, "lb-2.example.net.", "sorted by name: last");
	const db_alias_state_t *s = lb_alias_find(&a, "lb-1.example.net.");
	ok(s && !s->never_resolved && s->naddresses == 3, "resolved: three addresses");
	if (s && s->naddresses == 3) {
		str_is(s->addresses[0], "192.0.2.8", "in text order: first");
		str_is(s->addresses[1], "2001:db8::7", "in text order: second");
		ok(s->families[0] == 4 && s->families[1] == 6 && s->families[2] == 4,
		   "each with its family");
		is_int(s->resolved, 1700000000, "resolved");
		is_int(s->expires, 1700000060, "expires");
		ok(s->failures == 0 && !s->error && !s->error_time, "no failure");
	}
	s = lb_alias_find(&a, "lb-2.example.net.");
	ok(s && s->never_resolved && s->naddresses == 0 && s->resolved == 0,
	   "never resolved: said so, no address");
	ok(s && s->failures == 3 && s->error && strcmp(s->error, "SERVFAIL") == 0 &&
		   s->error_time == 1700000005,
	   "with its failures and last error");
	s = lb_alias_find(&a, "empty.example.net.");
	ok(s && !s->never_resolved && s->naddresses == 0, "resolved to nothing: no address");
	ok(!lb_alias_find(&a, "unknown.example.net.") && !lb_alias_find(NULL, "x."),
	   "an unknown name, and no states: none");
	db_aliases_clear(&a);
	db_aliases_clear(NULL);

	/* The resolver's next batch: a failure after success keeps the addresses it gives. */
	v[0].failures = 1;
	v[0].error = "timeout";
	v[0].error_time = 1700000070;
	v[1].never_resolved = false;
	v[1].naddresses = 1;
	v[1].addresses = &addrs[1];
	v[1].families = &fams[1];
	v[1].resolved = 1700000080;
	v[1].expires = 1700000085;
	v[1].failures = 0;
	v[1].error = NULL;
	v[1].error_time = 0;
	is_int(db_alias_state_store(db, v, 2), 0, "two rows upserted");
	column_is("lb-1.example.net.", "failures", "1");
	column_is("lb-1.example.net.", "error", "'timeout'");
	column_is("lb-2.example.net.", "addresses", "'203.0.113.9'");
	column_is("lb-2.example.net.", "error", "NULL");
	column_is("lb-2.example.net.", "failures", "0");
	is_int(db_alias_state_load(db, &a), 0, "loaded again");
	is_int((long long)a.n, 3, "still three rows");
	db_aliases_clear(&a);

	/* A batch is one transaction: a bad state in it leaves nothing of it written. */
	db_alias_state_t bad[] = {
		{ .name = "new.example.net.", .resolved = 1 },
		{ .name = NULL },
	};
	ok(db_alias_state_store(db, bad, 2) < 0, "a batch with a nameless state fails");
	char *gone = column("new.example.net.", "name");
	ok(gone == NULL, "and nothing of it was written");
	free(gone);
}

/* The addresses member name serves, as "a,b" text, through lb_member_address(). */
static void served(const db_config_t *cfg, const char *name, const db_aliases_t *a, char *buf,
		   size_t size)
{
	const db_member_t *m = member(cfg, name);
	lb_member_addr_t sa;
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; m && lb_member_address(m, a, i, &sa); i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s%s", i ? "," : "", sa.address,
					sa.alias ? "*" : "");
}

static const lb_member_t *lb_member(const lb_pool_t *p, const char *name)
{
	for (uint16_t k = 0; k < p->nmembers; k++)
		if (strcmp(p->members[k].name, name) == 0)
			return &p->members[k];
	return NULL;
}

static void test_served(void)
{
	db_config_t *cfg = NULL;
	db_aliases_t a;
	char buf[256];

	is_int(db_config_load(db, &cfg), 0, "configuration loaded");
	is_int(db_alias_state_load(db, &a), 0, "alias states loaded");
	/* '*': from the alias. */
	served(cfg, "both", &a, buf, sizeof(buf));
	str_is(buf, "192.0.2.1,192.0.2.8*,2001:db8::7*,203.0.113.9*",
	       "its own addresses, then its alias's");
	served(cfg, "both", NULL, buf, sizeof(buf));
	str_is(buf, "192.0.2.1", "no alias states: its own alone");
	served(cfg, "only", &a, buf, sizeof(buf));
	str_is(buf, "203.0.113.9*", "an alias alone: what it resolved to");
	served(cfg, "plain", &a, buf, sizeof(buf));
	str_is(buf, "198.51.100.3", "no alias: its own");

	/* The same pool built as gslbd builds it: the addresses land in the answer path's pool. */
	lb_pool_t *pools = NULL;
	uint32_t n = lb_config_pools(cfg, &a, &pools);
	const lb_member_t *both = n == 1 ? lb_member(&pools[0], "both") : NULL;
	const lb_member_t *only = n == 1 ? lb_member(&pools[0], "only") : NULL;
	ok(both && both->naddr[0] == 3 && both->naddr[1] == 1, "built: 3 IPv4 and 1 IPv6");
	ok(both && both->addr[0][2].row == 3 && both->addr[1][0].row == 2,
	   "each address with its index among those served");
	ok(only && only->naddr[0] == 1 && only->naddr[1] == 0, "built: the alias alone, 1 IPv4");
	lb_pools_free(pools, n);

	/* Never resolved, and an alias with no state at all: no address of either family. */
	db_alias_state_t never = { .name = "lb-2.example.net.",
				   .never_resolved = true,
				   .failures = 9,
				   .error = "NXDOMAIN",
				   .error_time = 1 };
	is_int(db_alias_state_store(db, &never, 1), 0, "lb-2 stored as never resolved");
	db_aliases_clear(&a);
	is_int(db_alias_state_load(db, &a), 0, "loaded");
	served(cfg, "only", &a, buf, sizeof(buf));
	str_is(buf, "", "never resolved: no address");
	n = lb_config_pools(cfg, &a, &pools);
	only = n == 1 ? lb_member(&pools[0], "only") : NULL;
	ok(only && only->naddr[0] == 0 && only->naddr[1] == 0,
	   "built: no address of either family");
	lb_pools_free(pools, n);
	n = lb_config_pools(cfg, NULL, &pools);
	only = n == 1 ? lb_member(&pools[0], "only") : NULL;
	ok(only && only->naddr[0] == 0 && only->naddr[1] == 0, "no states: no address either");
	lb_pools_free(pools, n);
	db_aliases_clear(&a);
	db_config_free(cfg);
}

int main(void)
{
	char dir[] = "/tmp/gslb-test-db-alias.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/gslb.db", dir);

	ok(db_open(path, DB_OPEN_CREATE, &db) == 0, "open a new file");
	ok(db_migrate(db, NULL) == 0, "create the schema");
	test_member_alias();
	test_state_store();
	test_served();
	db_close(db);

	char f[160];
	unlink(path);
	snprintf(f, sizeof(f), "%s-wal", path);
	unlink(f);
	snprintf(f, sizeof(f), "%s-shm", path);
	unlink(f);
	rmdir(dir);
	return done_testing();
}
