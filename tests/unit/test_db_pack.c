/* SPDX-License-Identifier: MIT */
/*
 * The loaded configuration packed one pool to an allocation: pools with
 * every kind of field (short and long names, up to a dozen members, IPv4
 * and IPv6 addresses, countries, continents, aliases, networks, locations,
 * pool and member checks with every option) written, loaded, changed,
 * merged one by one and removed, every field compared with what was
 * written.  Run under valgrind (or ASan) it also shows that nothing leaks
 * and nothing is read outside a pool's allocation.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/db/internal.h"
#include "gslb/db.h"
#include "tap.h"

#define POOLS 40
#define MEMBERS_MAX 12
#define ADDRS_MAX 6
#define NETS_MAX 5

static db_t *db;
static uint32_t seed = 12345;

static uint32_t rnd(uint32_t n)
{
	seed = seed * 1103515245u + 12345u;
	return (seed >> 8) % n;
}

/* What was written of one member and one pool: the fields in plain arrays, in load order. */
typedef struct want_member {
	char name[80];
	db_member_t m;
	char addr[ADDRS_MAX][48];
	char *addrv[ADDRS_MAX];
	uint8_t fam[ADDRS_MAX];
	char net[NETS_MAX][48];
	char *netv[NETS_MAX];
	char countries[32], continents[16], alias[80];
	db_check_t check;
	char path[300], host[80], expect[16], match[64], target[48];
} want_member_t;

typedef struct want_pool {
	bool live;
	char name[260];
	db_pool_t p;
	size_t nmembers;
	want_member_t members[MEMBERS_MAX];
	bool has_check;
	db_check_t check;
	char path[300], host[80], expect[16], match[64];
} want_pool_t;

static want_pool_t want[POOLS];

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A check with every option set, or most left to their defaults (NULL, 0), by chance. */
static void check_make(db_check_t *c, char *path, char *host, char *expect, char *match,
		       char *target, int i)
{
	bool full = rnd(2);
	memset(c, 0, sizeof(*c));
	c->type = (uint8_t)rnd(3);
	c->port = c->type == DB_CHECK_TCP || full ? (uint16_t)(1 + rnd(65535)) : 0;
	c->interval_ms = 1000 + rnd(100000);
	c->timeout_ms = 1 + rnd(c->interval_ms - 1);
	c->rise = (uint8_t)(1 + rnd(100));
	c->fall = (uint8_t)(1 + rnd(100));
	c->quorum = (uint8_t)rnd(4);
	if (!full || c->type == DB_CHECK_TCP)
		return;
	/* Long and short strings: a path of up to 290 bytes. */
	size_t n = 1 + rnd(290);
	path[0] = '/';
	for (size_t k = 1; k < n; k++)
		path[k] = (char)('a' + (k + (size_t)i) % 26);
	path[n] = '\0';
	c->path = path;
	snprintf(host, 80, "h%d.%s.example.test", i, rnd(2) ? "x" : "a-much-longer-label");
	c->host = host;
	snprintf(expect, 16, "%u-%u", 200 + rnd(50), 300 + rnd(99));
	c->expect = expect;
	snprintf(match, 64, "body %u", rnd(1000000));
	c->match = match;
	if (target) {
		snprintf(target, 48, "192.0.2.%u", 1 + rnd(254));
		c->target = target;
	}
	c->insecure = c->type == DB_CHECK_HTTPS;
}

static void member_make(want_member_t *w, int pool, int k)
{
	db_member_t *m = &w->m;
	memset(w, 0, sizeof(*w));
	/* Names in load order (by name): a two-digit prefix, then a short or long tail. */
	snprintf(w->name, sizeof(w->name), "%02d%s", k,
		 rnd(2) ? "" : "-a-member-name-long-enough-to-need-more-than-one-malloc-bin");
	m->name = w->name;
	m->weight = (uint16_t)rnd(65536);
	m->priority = (uint8_t)(1 + rnd(255));
	m->admin = (uint8_t)rnd(4);
	if (rnd(2)) {
		m->has_location = true;
		m->latitude = (double)rnd(180000) / 1000.0 - 90.0;
		m->longitude = (double)rnd(360000) / 1000.0 - 180.0;
	}
	if (rnd(2)) {
		snprintf(w->countries, sizeof(w->countries), rnd(2) ? "DE" : "DE,FR-IDF,US-CA");
		m->countries = w->countries;
	}
	if (rnd(2)) {
		snprintf(w->continents, sizeof(w->continents), rnd(2) ? "EU" : "EU,NA,AS");
		m->continents = w->continents;
	}
	if (rnd(2)) {
		snprintf(w->alias, sizeof(w->alias), "lb-%d-%d.%s.example.net.", pool, k,
			 rnd(2) ? "eu" : "a-region-name-long-enough-to-need-more-room");
		m->alias = w->alias;
	}
	m->naddresses = rnd(ADDRS_MAX + 1);
	for (size_t a = 0; a < m->naddresses; a++) {
		if (rnd(2))
			snprintf(w->addr[a], sizeof(w->addr[a]), "10.%d.%d.%zu", pool, k, a + 1);
		else
			snprintf(w->addr[a], sizeof(w->addr[a]), "2001:db8:%x:%x::%zx", pool, k,
				 a + 1);
		w->addrv[a] = w->addr[a];
	}
	qsort(w->addrv, m->naddresses, sizeof(char *), str_cmp);
	for (size_t a = 0; a < m->naddresses; a++)
		w->fam[a] = strchr(w->addrv[a], ':') ? 6 : 4;
	m->addresses = w->addrv;
	m->families = w->fam;
	m->nnetworks = rnd(NETS_MAX + 1);
	for (size_t a = 0; a < m->nnetworks; a++) {
		snprintf(w->net[a], sizeof(w->net[a]), "10.%zu.%d.0/24", a, pool);
		w->netv[a] = w->net[a];
	}
	qsort(w->netv, m->nnetworks, sizeof(char *), str_cmp);
	m->networks = w->netv;
	/* Every fourth pool has no check at all: gslbd keeps only its name (db_pool_strip()). */
	if (pool % 4 != 1 && rnd(2)) {
		check_make(&w->check, w->path, w->host, w->expect, w->match, w->target, k);
		m->check = &w->check;
	}
}

/* Pool i, made anew (its members too), or, on a change, its fields rolled again. */
static void pool_make(int i)
{
	want_pool_t *w = &want[i];
	memset(w, 0, sizeof(*w));
	w->live = true;
	if (i % 3 == 0) {
		/* A name near the longest allowed: labels of 60 bytes. */
		snprintf(w->name, sizeof(w->name), "p%03d.%060d.%060d.%060d.test.", i, 0, 1, 2);
	} else {
		snprintf(w->name, sizeof(w->name), "p%03d.t.", i);
	}
	db_pool_t *p = &w->p;
	p->name = w->name;
	p->policy = (uint8_t)rnd(3);
	p->ttl = rnd(86401);
	p->degraded_ttl = rnd(2) ? -1 : (int32_t)(1 + rnd(86400));
	p->answers = (uint8_t)(1 + rnd(64));
	p->fallback_all = rnd(2);
	w->nmembers = i % 7 == 0 ? 0 : i % 5 == 0 ? MEMBERS_MAX : 1 + rnd(4);
	for (size_t k = 0; k < w->nmembers; k++)
		member_make(&w->members[k], i, (int)k);
	w->has_check = i % 4 != 1 && rnd(2);
	if (w->has_check)
		check_make(&w->check, w->path, w->host, w->expect, w->match, NULL, i);
}

/* Write pool i as want[] has it, replacing what the file had. */
static int pool_write(int i)
{
	want_pool_t *w = &want[i];
	int ret = db_begin_write(db);
	if (!ret) {
		ret = db_pool_delete(db, w->name);
		ret = ret == -ENOENT ? 0 : ret;
	}
	if (!ret)
		ret = db_pool_insert(db, &w->p);
	for (size_t k = 0; !ret && k < w->nmembers; k++) {
		ret = db_member_insert(db, w->name, &w->members[k].m);
		if (!ret && w->members[k].m.admin != DB_ADMIN_AUTO)
			ret = db_member_set_admin(db, w->name, w->members[k].name,
						  w->members[k].m.admin);
		if (!ret && w->members[k].m.check)
			ret = db_check_put(db, w->name, w->members[k].name, &w->members[k].check);
	}
	if (!ret && w->has_check)
		ret = db_check_put(db, w->name, NULL, &w->check);
	if (!ret)
		return db_commit(db);
	db_rollback(db);
	return ret;
}

static int pool_remove(int i)
{
	int ret = db_begin_write(db);
	if (!ret)
		ret = db_pool_delete(db, want[i].name);
	if (!ret)
		return db_commit(db);
	db_rollback(db);
	return ret;
}

static bool str_eq(const char *what, const char *a, const char *b)
{
	if ((!a && !b) || (a && b && strcmp(a, b) == 0))
		return true;
	diag("%s: wrote \"%s\", read \"%s\"", what, a ? a : "(null)", b ? b : "(null)");
	return false;
}

#define FIELD_EQ(what, a, b)                              \
	do {                                              \
		if ((a) != (b)) {                         \
			diag("%s: " #a " differs", what); \
			return false;                     \
		}                                         \
	} while (0)

static bool check_eq(const char *what, const db_check_t *a, const db_check_t *b)
{
	if (!a || !b) {
		if (a != b)
			diag("%s: a check %s", what, a ? "lost" : "appeared");
		return a == b;
	}
	FIELD_EQ(what, a->type, b->type);
	FIELD_EQ(what, a->port, b->port);
	FIELD_EQ(what, a->interval_ms, b->interval_ms);
	FIELD_EQ(what, a->timeout_ms, b->timeout_ms);
	FIELD_EQ(what, a->rise, b->rise);
	FIELD_EQ(what, a->fall, b->fall);
	FIELD_EQ(what, a->insecure, b->insecure);
	FIELD_EQ(what, a->quorum, b->quorum);
	return str_eq(what, a->path, b->path) && str_eq(what, a->host, b->host) &&
	       str_eq(what, a->expect, b->expect) && str_eq(what, a->match, b->match) &&
	       str_eq(what, a->target, b->target);
}

static bool member_eq(const want_member_t *w, const db_member_t *b)
{
	const db_member_t *a = &w->m;
	const char *what = w->name;
	if (!str_eq("member name", a->name, b->name))
		return false;
	FIELD_EQ(what, a->weight, b->weight);
	FIELD_EQ(what, a->priority, b->priority);
	FIELD_EQ(what, a->admin, b->admin);
	FIELD_EQ(what, a->has_location, b->has_location);
	if (a->has_location) {
		FIELD_EQ(what, a->latitude, b->latitude);
		FIELD_EQ(what, a->longitude, b->longitude);
	}
	FIELD_EQ(what, a->naddresses, b->naddresses);
	FIELD_EQ(what, a->nnetworks, b->nnetworks);
	if (!str_eq("countries", a->countries, b->countries) ||
	    !str_eq("continents", a->continents, b->continents) ||
	    !str_eq("alias", a->alias, b->alias))
		return false;
	for (size_t k = 0; k < a->naddresses; k++) {
		if (!str_eq("address", a->addresses[k], b->addresses[k]))
			return false;
		FIELD_EQ(what, a->families[k], b->families[k]);
	}
	for (size_t k = 0; k < a->nnetworks; k++)
		if (!str_eq("network", a->networks[k], b->networks[k]))
			return false;
	return check_eq(what, a->check, b->check);
}

static bool pool_eq(const want_pool_t *w, const db_pool_t *b)
{
	const db_pool_t *a = &w->p;
	const char *what = w->name;
	if (!b) {
		diag("pool %s missing", what);
		return false;
	}
	if (!str_eq("pool name", a->name, b->name))
		return false;
	FIELD_EQ(what, a->policy, b->policy);
	FIELD_EQ(what, a->ttl, b->ttl);
	FIELD_EQ(what, a->degraded_ttl, b->degraded_ttl);
	FIELD_EQ(what, a->answers, b->answers);
	FIELD_EQ(what, a->fallback_all, b->fallback_all);
	FIELD_EQ(what, w->nmembers, b->nmembers);
	FIELD_EQ(what, true, b->packed);
	for (size_t k = 0; k < w->nmembers; k++)
		if (!member_eq(&w->members[k], &b->members[k]))
			return false;
	return check_eq(what, w->has_check ? &w->check : NULL, b->check);
}

/* Has want[i] a check, its own or a member's? */
static bool want_checked(const want_pool_t *w)
{
	if (w->has_check)
		return true;
	for (size_t k = 0; k < w->nmembers; k++)
		if (w->members[k].m.check)
			return true;
	return false;
}

/* A pool stripped by db_pool_strip(): its name and settings as written, nothing else. */
static bool stripped_eq(const want_pool_t *w, const db_pool_t *b)
{
	const db_pool_t *a = &w->p;
	const char *what = w->name;
	if (!b) {
		diag("pool %s missing", what);
		return false;
	}
	if (!str_eq("pool name", a->name, b->name))
		return false;
	FIELD_EQ(what, a->policy, b->policy);
	FIELD_EQ(what, a->ttl, b->ttl);
	FIELD_EQ(what, a->degraded_ttl, b->degraded_ttl);
	FIELD_EQ(what, a->answers, b->answers);
	FIELD_EQ(what, a->fallback_all, b->fallback_all);
	FIELD_EQ(what, (size_t)0, b->nmembers);
	FIELD_EQ(what, true, b->packed);
	FIELD_EQ(what, true, b->members == NULL && b->check == NULL);
	return true;
}

/* Pools stripped as gslbd strips them once built: those without a check. */
static bool stripped[POOLS];

/*
 * Does cfg hold exactly the live pools of want[], field for field (those
 * stripped since their last change by name and settings only)?
 */
static bool config_eq(const db_config_t *cfg)
{
	size_t live = 0;
	for (int i = 0; i < POOLS; i++) {
		if (!want[i].live)
			continue;
		live++;
		const db_pool_t *p = db_config_pool(cfg, want[i].name);
		if (!(stripped[i] ? stripped_eq(&want[i], p) : pool_eq(&want[i], p)))
			return false;
	}
	if (cfg->npools != live)
		diag("%zu pools, %zu written", cfg->npools, live);

	return cfg->npools == live;
}

/* Read what changed since *gen into cfg as gslbd does, one pool at a time. */
static bool merge_changes(db_config_t *cfg, int64_t *gen)
{
	char **names = NULL;
	size_t n = 0, *from = NULL;
	db_config_t *part = NULL;
	int64_t now;
	bool good = db_begin_read(db) == 0 && db_config_generation(db, &now) == 0 &&
		    db_config_changed(db, *gen, &names, &n) == 0 &&
		    db_config_load_pools(db, (const char *const *)names, n, &part) == 0;
	db_rollback(db);
	if (good) {
		db_config_merge(cfg, (const char *const *)names, n, part, &from);
		/*
		 * Since now, as gslbd reads (src/server/control.c): a pool's revision
		 * may be the generation before its change's own, as when a pool with
		 * no member and no check is deleted.
		 */
		*gen = now;
	}
	free(from);
	db_config_free(part);
	db_names_free(names, n);
	return good;
}

int main(void)
{
	char dir[] = "/tmp/gslb-test-pack.XXXXXX", path[128];
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/gslb.db", dir);
	ok(db_open(path, DB_OPEN_CREATE, &db) == 0 && db_migrate(db, NULL) == 0, "open a new file");

	int failed = 0;
	for (int i = 0; i < POOLS; i++) {
		pool_make(i);
		failed += pool_write(i) != 0;
	}
	is_int(failed, 0, "%d pools written", POOLS);

	db_config_t *cfg = NULL;
	int64_t gen = 0;
	ok(db_begin_read(db) == 0 && db_config_generation(db, &gen) == 0 &&
		   db_config_load(db, &cfg) == 0,
	   "load");
	db_rollback(db);
	ok(cfg && config_eq(cfg), "every field of every pool reads back as written");

	/* Change a third of the pools, one merge at a time, and remove a few. */
	bool good = true;
	for (int i = 1; good && i < POOLS; i += 3) {
		pool_make(i);
		good = pool_write(i) == 0 && merge_changes(cfg, &gen) && config_eq(cfg);
	}
	ok(good, "pools changed one at a time and merged read back as written");
	good = true;
	for (int i = 0; good && i < POOLS; i += 4) {
		want[i].live = false;
		good = pool_remove(i) == 0 && merge_changes(cfg, &gen) && config_eq(cfg);
	}
	ok(good, "pools removed one at a time and merged are gone, the others intact");

	/* Several at once: two changed, one removed, one back again. */
	pool_make(2);
	pool_make(4);
	want[5].live = false;
	good = pool_write(2) == 0 && pool_write(4) == 0 && pool_remove(5) == 0 &&
	       merge_changes(cfg, &gen);
	ok(good && config_eq(cfg), "several changes merged at once");

	db_config_t *fresh = NULL;
	ok(db_config_load(db, &fresh) == 0 && config_eq(fresh), "a fresh load is the merged one");
	db_config_free(fresh);
	/* A whole load reads pools a batch at a time: batches of 1, 3 and 7 pools read the same. */
	good = true;
	size_t batch = db__load_batch;
	for (size_t b = 1; good && b <= 7; b += 2) {
		db__load_batch = b;
		fresh = NULL;
		good = db_config_load(db, &fresh) == 0 && config_eq(fresh);
		db_config_free(fresh);
	}
	db__load_batch = batch;
	ok(good, "loaded in batches of 1, 3, 5 and 7 pools: the same");

	/* A whole load leaves the connection's page cache empty: gslbd keeps running. */
	int used = 0, high = 0, used_part = 0;
	const char *first = want[1].name;
	fresh = NULL;
	good = db_config_load_pools(db, &first, 1, &fresh) == 0;
	db_config_free(fresh);
	sqlite3_db_status(db->h, SQLITE_DBSTATUS_CACHE_USED, &used_part, &high, 0);
	fresh = NULL;
	good = good && db_config_load(db, &fresh) == 0;
	db_config_free(fresh);
	sqlite3_db_status(db->h, SQLITE_DBSTATUS_CACHE_USED, &used, &high, 0);
	ok(good && used < used_part, "page cache after a whole load %d bytes, after one pool %d",
	   used, used_part);

	/*
	 * gslbd keeps of a pool without a check only its name and settings
	 * (db_pool_strip()); merges then replace stripped pools like the others,
	 * and a pool changed comes back whole.
	 */
	int checked = 0, nstripped = 0;
	good = true;
	for (int i = 0; i < POOLS; i++) {
		if (!want[i].live)
			continue;
		db_pool_t *p = db_config_pool(cfg, want[i].name);
		good &= db_pool_checked(p) == want_checked(&want[i]);
		checked += want_checked(&want[i]);
		if (!db_pool_checked(p)) {
			db_pool_strip(p);
			stripped[i] = true;
			nstripped++;
		}
	}
	ok(good && checked > 0 && nstripped > 0, "db_pool_checked(): %d pools checked, %d not",
	   checked, nstripped);
	ok(config_eq(cfg), "db_pool_strip() keeps a pool's name and settings only");
	ok(!db_pool_checked(NULL), "db_pool_checked(NULL) is false");
	good = true;
	/* Every other stripped pool, and every fifth pool. */
	for (int i = 0, nth = 0; good && i < POOLS; i++) {
		if (!want[i].live || (stripped[i] ? nth++ % 2 : i % 5))
			continue;
		pool_make(i);
		stripped[i] = false;
		good = pool_write(i) == 0 && merge_changes(cfg, &gen) && config_eq(cfg);
	}
	ok(good, "stripped pools changed and merged come back whole, the others stay stripped");
	good = true;
	int removed = 0;
	for (int i = 0; good && i < POOLS; i++) {
		if (!want[i].live || !stripped[i])
			continue;
		want[i].live = false;
		removed++;
		good = pool_remove(i) == 0 && merge_changes(cfg, &gen) && config_eq(cfg);
	}
	ok(good && removed > 0, "stripped pools removed and merged are gone (%d)", removed);

	/* db_pool_clear() on a loaded pool frees its one block and leaves it zeroed. */
	db_config_t *one = NULL;
	const char *name = want[1].name;
	ok(db_config_load_pools(db, &name, 1, &one) == 0 && one->npools == 1, "load one pool");
	db_pool_clear(&one->pools[0]);
	ok(!one->pools[0].name && !one->pools[0].members && !one->pools[0].packed,
	   "db_pool_clear() leaves a loaded pool zeroed");
	db_config_free(one);

	db_config_free(cfg);
	db_close(db);
	unlink(path);
	char side[160];
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	rmdir(dir);
	return done_testing();
}
