/* SPDX-License-Identifier: MIT */
/* The configuration read: pools, members and checks loaded into plain C data, looked up, freed. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "internal.h"

/* ---- names ---- */

static const char *const policy_names[] = { "weighted", "failover", "geo" };
static const char *const admin_names[] = { "auto", "up", "down", "drain" };
static const char *const type_names[] = { "tcp", "http", "https" };

static int name_find(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

const char *db_policy_name(int v)
{
	return v >= 0 && v < 3 ? policy_names[v] : "?";
}

const char *db_admin_name(int v)
{
	return v >= 0 && v < 4 ? admin_names[v] : "?";
}

const char *db_check_type_name(int v)
{
	return v >= 0 && v < 3 ? type_names[v] : "?";
}

static const char *const quorum_names[] = { "majority", "any", "all", "local" };

const char *db_quorum_name(int v)
{
	return v >= 0 && v < 4 ? quorum_names[v] : "?";
}

int db_quorum_parse(const char *s)
{
	return name_find(quorum_names, 4, s);
}

int db_policy_parse(const char *s)
{
	return name_find(policy_names, 3, s);
}

int db_admin_parse(const char *s)
{
	return name_find(admin_names, 4, s);
}

int db_check_type_parse(const char *s)
{
	return name_find(type_names, 3, s);
}

/* ---- loading ---- */

void db_check_free(db_check_t *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->host);
	free(c->expect);
	free(c->match);
	free(c->target);
	free(c);
}

void db_member_clear(db_member_t *m)
{
	free(m->name);
	free(m->countries);
	free(m->continents);
	free(m->alias);
	for (size_t i = 0; i < m->naddresses; i++)
		free(m->addresses[i]);
	free(m->addresses);
	free(m->families);
	for (size_t i = 0; i < m->nnetworks; i++)
		free(m->networks[i]);
	free(m->networks);
	db_check_free(m->check);
	memset(m, 0, sizeof(*m));
}

void db_pool_clear(db_pool_t *p)
{
	if (p->packed) {
		free(p->name);
	} else {
		for (size_t k = 0; k < p->nmembers; k++)
			db_member_clear(&p->members[k]);
		free(p->members);
		free(p->name);
		db_check_free(p->check);
	}
	memset(p, 0, sizeof(*p));
}

bool db_pool_checked(const db_pool_t *p)
{
	if (!p)
		return false;
	if (p->check)
		return true;
	for (size_t k = 0; k < p->nmembers; k++)
		if (p->members[k].check)
			return true;
	return false;
}

void db_pool_strip(db_pool_t *p)
{
	db_pool_t keep = *p;
	char *name = gslb_strdup(p->name);
	db_pool_clear(p);
	*p = keep;
	/* A name alone is a packed pool: the allocation is the name (db_pool_clear()). */
	p->name = name;
	p->packed = true;
	p->nmembers = 0;
	p->members = NULL;
	p->check = NULL;
}

void db_config_free(db_config_t *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->npools; i++)
		db_pool_clear(&cfg->pools[i]);
	free(cfg->pools);
	free(cfg);
}

/* Binary search of rows sorted by id; the loader asks SQLite for that order. */
static db_pool_t *pool_by_id(db_config_t *cfg, int64_t id)
{
	size_t lo = 0, hi = cfg->npools;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cfg->pools[mid].id == id)
			return &cfg->pools[mid];
		if (cfg->pools[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

typedef struct member_ref {
	int64_t id;
	db_member_t *m;
} member_ref_t;

static int ref_cmp(const void *a, const void *b)
{
	const member_ref_t *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static db_member_t *member_by_id(member_ref_t *refs, size_t n, int64_t id)
{
	member_ref_t key = { .id = id };
	member_ref_t *r = bsearch(&key, refs, n, sizeof(*refs), ref_cmp);
	return r ? r->m : NULL;
}

static int pool_name_cmp(const void *a, const void *b)
{
	return strcmp(((const db_pool_t *)a)->name, ((const db_pool_t *)b)->name);
}

static int member_name_cmp(const void *a, const void *b)
{
	return strcmp(((const db_member_t *)a)->name, ((const db_member_t *)b)->name);
}

void db_config_sort(db_config_t *cfg)
{
	for (size_t i = 0; i < cfg->npools; i++)
		gslb_sort(cfg->pools[i].members, cfg->pools[i].nmembers, sizeof(db_member_t),
			  member_name_cmp);
	gslb_sort(cfg->pools, cfg->npools, sizeof(db_pool_t), pool_name_cmp);
}

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = gslb_realloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
}

/* strv_push() for a member's 32-bit counts. */
static void strv_push32(char ***v, uint32_t *n, char *s)
{
	*v = gslb_realloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
}

void db_member_sort(db_member_t *m)
{
	for (size_t i = 1; i < m->naddresses; i++)
		for (size_t j = i; j > 0 && strcmp(m->addresses[j - 1], m->addresses[j]) > 0; j--) {
			char *a = m->addresses[j];
			uint8_t f = m->families[j];
			m->addresses[j] = m->addresses[j - 1];
			m->families[j] = m->families[j - 1];
			m->addresses[j - 1] = a;
			m->families[j - 1] = f;
		}
	for (size_t i = 1; i < m->nnetworks; i++)
		for (size_t j = i; j > 0 && strcmp(m->networks[j - 1], m->networks[j]) > 0; j--) {
			char *n = m->networks[j];
			m->networks[j] = m->networks[j - 1];
			m->networks[j - 1] = n;
		}
}

/* What load() builds: the configuration, and its members by id once every one is in. */
struct loader {
	db_config_t *cfg;
	size_t cap;	    /* of cfg->pools */
	member_ref_t *refs; /* sorted by id */
	size_t nrefs;
};

/* Run one query of the loader, each row handed to row() with l. */
static int query(db_t *db, const char *sql, const char *what, db__row_cb row, struct loader *l)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
	return ret ? ret : db__rows(db, st, what, row, l);
}

static void pool_row(sqlite3_stmt *st, void *arg)
{
	struct loader *l = arg;
	db_config_t *cfg = l->cfg;

	if (cfg->npools == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		cfg->pools = gslb_realloc(cfg->pools, l->cap * sizeof(*cfg->pools));
	}
	db_pool_t *p = &cfg->pools[cfg->npools++];
	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(st, 0);
	p->name = db__col_dup(st, 1);
	p->policy = (uint8_t)db_policy_parse((const char *)sqlite3_column_text(st, 2));
	p->ttl = (uint32_t)sqlite3_column_int64(st, 3);
	p->degraded_ttl = sqlite3_column_type(st, 4) == SQLITE_NULL
				  ? -1
				  : (int32_t)sqlite3_column_int64(st, 4);
	p->answers = (uint8_t)sqlite3_column_int(st, 5);
	p->fallback_all = strcmp((const char *)sqlite3_column_text(st, 6), "all") == 0;
}

static void member_row(sqlite3_stmt *st, void *arg)
{
	struct loader *l = arg;
	db_pool_t *p = pool_by_id(l->cfg, sqlite3_column_int64(st, 0));

	if (!p)
		return;
	p->members = gslb_realloc(p->members, (p->nmembers + 1) * sizeof(*p->members));
	db_member_t *m = &p->members[p->nmembers++];
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 1);
	m->name = db__col_dup(st, 2);
	m->weight = (uint16_t)sqlite3_column_int(st, 3);
	m->priority = (uint8_t)sqlite3_column_int(st, 4);
	if (sqlite3_column_type(st, 5) != SQLITE_NULL &&
	    sqlite3_column_type(st, 6) != SQLITE_NULL) {
		m->has_location = true;
		m->latitude = sqlite3_column_double(st, 5);
		m->longitude = sqlite3_column_double(st, 6);
	}
	m->countries = db__col_dup(st, 7);
	m->continents = db__col_dup(st, 8);
	int a = db_admin_parse((const char *)sqlite3_column_text(st, 9));
	m->admin = a < 0 ? DB_ADMIN_AUTO : (uint8_t)a;
}

/*
 * Index the members of pools lo to hi by id, once all are in (pointers
 * into the members arrays stay put now); the index before is dropped.
 */
static void refs_build(struct loader *l, size_t lo, size_t hi)
{
	db_config_t *cfg = l->cfg;
	size_t n = 0;

	free(l->refs);
	l->nrefs = 0;
	for (size_t i = lo; i < hi; i++)
		n += cfg->pools[i].nmembers;
	l->refs = gslb_calloc(n ? n : 1, sizeof(*l->refs));
	for (size_t i = lo; i < hi; i++)
		for (size_t k = 0; k < cfg->pools[i].nmembers; k++) {
			l->refs[l->nrefs].id = cfg->pools[i].members[k].id;
			l->refs[l->nrefs++].m = &cfg->pools[i].members[k];
		}
	gslb_sort(l->refs, l->nrefs, sizeof(*l->refs), ref_cmp);
}

static void address_row(sqlite3_stmt *st, void *arg)
{
	struct loader *l = arg;
	db_member_t *m = member_by_id(l->refs, l->nrefs, sqlite3_column_int64(st, 0));

	if (!m)
		return;
	m->families = gslb_realloc(m->families, m->naddresses + 1);
	m->families[m->naddresses] = (uint8_t)sqlite3_column_int(st, 2);
	strv_push32(&m->addresses, &m->naddresses, db__col_dup(st, 1));
}

static void alias_row(sqlite3_stmt *st, void *arg)
{
	struct loader *l = arg;
	db_member_t *m = member_by_id(l->refs, l->nrefs, sqlite3_column_int64(st, 0));

	if (m && !m->alias)
		m->alias = db__col_dup(st, 1);
}

static void network_row(sqlite3_stmt *st, void *arg)
{
	struct loader *l = arg;
	db_member_t *m = member_by_id(l->refs, l->nrefs, sqlite3_column_int64(st, 0));

	if (m)
		strv_push32(&m->networks, &m->nnetworks, db__col_dup(st, 1));
}

/* A check from the columns c0 on of a health_check row. */
static db_check_t *check_new(sqlite3_stmt *st, int c0)
{
	db_check_t *c = gslb_calloc(1, sizeof(*c));
	int t = db_check_type_parse((const char *)sqlite3_column_text(st, c0));
	c->type = t < 0 ? DB_CHECK_TCP : (uint8_t)t;
	c->port = (uint16_t)sqlite3_column_int(st, c0 + 1);
	c->path = db__col_dup(st, c0 + 2);
	c->host = db__col_dup(st, c0 + 3);
	c->expect = db__col_dup(st, c0 + 4);
	c->match = db__col_dup(st, c0 + 5);
	c->interval_ms = (uint32_t)sqlite3_column_int64(st, c0 + 6);
	c->timeout_ms = (uint32_t)sqlite3_column_int64(st, c0 + 7);
	c->rise = (uint8_t)sqlite3_column_int(st, c0 + 8);
	c->fall = (uint8_t)sqlite3_column_int(st, c0 + 9);
	c->target = db__col_dup(st, c0 + 10);
	c->insecure = sqlite3_column_int(st, c0 + 11) != 0;
	/* NULL is majority, the default, so that checks stored before quorums existed mean it. */
	int q = db_quorum_parse((const char *)sqlite3_column_text(st, c0 + 12));
	c->quorum = q < 0 ? DB_QUORUM_MAJORITY : (uint8_t)q;
	return c;
}

static void check_row(sqlite3_stmt *st, void *arg)
{
	struct loader *l = arg;
	db_check_t **slot;

	if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
		db_pool_t *p = pool_by_id(l->cfg, sqlite3_column_int64(st, 0));
		slot = p ? &p->check : NULL;
	} else {
		db_member_t *m = member_by_id(l->refs, l->nrefs, sqlite3_column_int64(st, 1));
		slot = m ? &m->check : NULL;
	}
	if (slot && !*slot)
		*slot = check_new(st, 2);
}

/* The SELECTs of the loader: the whole table, or (a name, id given) one pool's rows. */
#define POOL_COLS "SELECT id, name, policy, ttl, degraded_ttl, answers, fallback FROM pool"
#define MEMBER_COLS                                                                    \
	"SELECT pool_id, id, name, weight, priority, latitude, longitude, countries, " \
	"continents, admin FROM member"
#define ADDRESS_COLS "SELECT member_id, address, family FROM member_address"
#define NETWORK_COLS "SELECT member_id, prefix FROM member_network"
#define ALIAS_COLS "SELECT member_id, name FROM member_alias"
#define CHECK_COLS                                                                        \
	"SELECT pool_id, member_id, type, port, path, host, expect, match, interval_ms, " \
	"timeout_ms, rise, fall, target, insecure, quorum FROM health_check"

/* Run one query of the loader with ?1 bound to name (text) or else id. */
static int query_one(db_t *db, const char *sql, const char *what, const char *name, int64_t id,
		     db__row_cb row, struct loader *l)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
	if (ret)
		return ret;
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	return db__rows(db, st, what, row, l);
}

static int pool_id_cmp(const void *a, const void *b)
{
	const db_pool_t *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * The pools named in names (n of them), row by row through the indexes of
 * each table: what gslbctl's one-pool changes and gslbd's reload of the
 * pools that changed read, instead of every row of every table.
 */
static int load_named(db_t *db, struct loader *l, const char *const *names, size_t n)
{
	db_config_t *cfg = l->cfg;
	int ret = 0;

	for (size_t i = 0; !ret && i < n; i++)
		ret = query_one(db, POOL_COLS " WHERE name = ?1", "load a pool", names[i], 0,
				pool_row, l);
	if (ret)
		return ret;
	/* pool_by_id() searches by id. */
	gslb_sort(cfg->pools, cfg->npools, sizeof(*cfg->pools), pool_id_cmp);
	for (size_t i = 0; !ret && i < cfg->npools; i++)
		ret = query_one(db, MEMBER_COLS " WHERE pool_id = ?1", "load members", NULL,
				cfg->pools[i].id, member_row, l);
	if (ret)
		return ret;
	refs_build(l, 0, cfg->npools);
	for (size_t i = 0; !ret && i < l->nrefs; i++)
		ret = query_one(db, ADDRESS_COLS " WHERE member_id = ?1", "load addresses", NULL,
				l->refs[i].id, address_row, l);
	for (size_t i = 0; !ret && i < l->nrefs; i++)
		ret = query_one(db, NETWORK_COLS " WHERE member_id = ?1", "load networks", NULL,
				l->refs[i].id, network_row, l);
	for (size_t i = 0; !ret && i < l->nrefs; i++)
		ret = query_one(db, ALIAS_COLS " WHERE member_id = ?1", "load aliases", NULL,
				l->refs[i].id, alias_row, l);
	for (size_t i = 0; !ret && i < cfg->npools; i++)
		ret = query_one(db, CHECK_COLS " WHERE pool_id = ?1", "load checks", NULL,
				cfg->pools[i].id, check_row, l);
	return ret;
}

/*
 * ---- packing ----
 *
 * As loaded, a pool of three members is some thirty allocations (each
 * string, each array, each member's growth), each with malloc's header and
 * rounding: about 800 bytes a pool, 80 MiB for 100,000.  Packed, it is one:
 * its text (the pool's name first, so the name is the allocation) then,
 * pointer-aligned, its members, checks and arrays.  One pool is still freed
 * or replaced alone (db_config_merge()).
 */

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

struct pack {
	char *text; /* strings and families */
	char *ptr;  /* members, checks, arrays of pointers */
};

static size_t text_len(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static size_t check_text_len(const db_check_t *c)
{
	if (!c)
		return 0;
	return text_len(c->path) + text_len(c->host) + text_len(c->expect) + text_len(c->match) +
	       text_len(c->target);
}

static char *text_put(struct pack *k, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = memcpy(k->text, s, n);
	k->text += n;
	return d;
}

/* n bytes of the pointer-aligned part, NULL for none (as loading leaves an empty array). */
static void *ptr_take(struct pack *k, size_t n)
{
	if (!n)
		return NULL;
	void *d = k->ptr;
	k->ptr += ALIGN8(n);
	return d;
}

static db_check_t *check_pack(struct pack *k, const db_check_t *c)
{
	if (!c)
		return NULL;
	db_check_t *d = ptr_take(k, sizeof(*d));
	*d = *c;
	d->path = text_put(k, c->path);
	d->host = text_put(k, c->host);
	d->expect = text_put(k, c->expect);
	d->match = text_put(k, c->match);
	d->target = text_put(k, c->target);
	return d;
}

/* Replace a loaded pool's pieces with one allocation holding copies of them all. */
static void pool_pack(db_pool_t *p)
{
	size_t text = text_len(p->name) + check_text_len(p->check);
	size_t ptr = ALIGN8(p->nmembers * sizeof(db_member_t)) +
		     (p->check ? ALIGN8(sizeof(db_check_t)) : 0);

	for (size_t i = 0; i < p->nmembers; i++) {
		const db_member_t *m = &p->members[i];
		text += text_len(m->name) + text_len(m->countries) + text_len(m->continents) +
			text_len(m->alias) + m->naddresses + check_text_len(m->check);
		for (size_t a = 0; a < m->naddresses; a++)
			text += text_len(m->addresses[a]);
		for (size_t a = 0; a < m->nnetworks; a++)
			text += text_len(m->networks[a]);
		ptr += ALIGN8(m->naddresses * sizeof(char *)) +
		       ALIGN8(m->nnetworks * sizeof(char *)) +
		       (m->check ? ALIGN8(sizeof(db_check_t)) : 0);
	}

	char *block = gslb_malloc(ALIGN8(text) + ptr);
	struct pack k = { .text = block, .ptr = block + ALIGN8(text) };
	db_pool_t loose = *p;

	p->name = text_put(&k, loose.name);
	p->members = ptr_take(&k, loose.nmembers * sizeof(db_member_t));
	p->check = check_pack(&k, loose.check);
	for (size_t i = 0; i < loose.nmembers; i++) {
		const db_member_t *s = &loose.members[i];
		db_member_t *m = &p->members[i];
		*m = *s;
		m->name = text_put(&k, s->name);
		m->countries = text_put(&k, s->countries);
		m->continents = text_put(&k, s->continents);
		m->alias = text_put(&k, s->alias);
		m->addresses = ptr_take(&k, s->naddresses * sizeof(char *));
		m->families = s->naddresses ? memcpy(k.text, s->families, s->naddresses) : NULL;
		k.text += s->naddresses;
		for (size_t a = 0; a < s->naddresses; a++)
			m->addresses[a] = text_put(&k, s->addresses[a]);
		m->networks = ptr_take(&k, s->nnetworks * sizeof(char *));
		for (size_t a = 0; a < s->nnetworks; a++)
			m->networks[a] = text_put(&k, s->networks[a]);
		m->check = check_pack(&k, s->check);
	}
	p->packed = true;
	db_pool_clear(&loose);
}

/*
 * A whole load reads the rows of db__load_batch pools at a time (by id) and
 * packs them before the next: the pieces of 100,000 pools as loaded took
 * 80 MiB at once, and the heap gslbd grew for them stayed that size.  Each
 * batch costs its rows' index lookups (0.2 s of CPU at 100,000 pools in
 * four batches, 0.6 s in a hundred), so batches are large.
 */
size_t db__load_batch = 32768;

/* Run one query of the loader with ?1 and ?2 bound to a and b. */
static int query_range(db_t *db, const char *sql, const char *what, int64_t a, int64_t b,
		       db__row_cb row, struct loader *l)
{
	sqlite3_stmt *st;
	int ret = db__prepare(db, sql, &st);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	return db__rows(db, st, what, row, l);
}

/*
 * The members, addresses, networks, aliases and checks of pools lo to hi (loaded,
 * in id order), then each of those pools packed.  No ORDER BY: SQLite's
 * sort of every row cost more than sorting each member's few values
 * (db_member_sort()); members are put in name order with the pools.
 */
static int load_batch(db_t *db, struct loader *l, size_t lo, size_t hi)
{
	db_config_t *cfg = l->cfg;
	int64_t a = cfg->pools[lo].id, b = cfg->pools[hi - 1].id;
	/*
	 * Members are appended to their pool's array as they come; pointers into
	 * those arrays are taken only after every member is in, since realloc
	 * moves them.
	 */
	int ret = query_range(db, MEMBER_COLS " WHERE pool_id BETWEEN ?1 AND ?2", "load members", a,
			      b, member_row, l);
	if (ret)
		return ret;
	refs_build(l, lo, hi);
	ret = query_range(db,
			  ADDRESS_COLS " WHERE member_id IN (SELECT id FROM member WHERE pool_id "
				       "BETWEEN ?1 AND ?2)",
			  "load addresses", a, b, address_row, l);
	if (!ret)
		ret = query_range(db,
				  NETWORK_COLS " WHERE member_id IN (SELECT id FROM member WHERE "
					       "pool_id BETWEEN ?1 AND ?2)",
				  "load networks", a, b, network_row, l);
	if (!ret)
		ret = query_range(db,
				  ALIAS_COLS " WHERE member_id IN (SELECT id FROM member WHERE "
					     "pool_id BETWEEN ?1 AND ?2)",
				  "load aliases", a, b, alias_row, l);
	if (!ret)
		ret = query_range(db, CHECK_COLS " WHERE pool_id BETWEEN ?1 AND ?2", "load checks",
				  a, b, check_row, l);
	if (ret)
		return ret;
	for (size_t i = 0; i < l->nrefs; i++)
		db_member_sort(l->refs[i].m);
	for (size_t i = lo; i < hi; i++)
		pool_pack(&cfg->pools[i]);
	return 0;
}

/* Every pool (all), or those named in names. */
static int load(db_t *db, db_config_t *cfg, bool all, const char *const *names, size_t n)
{
	struct loader l = { .cfg = cfg };
	int ret;

	if (!all) {
		ret = load_named(db, &l, names, n);
		if (ret)
			goto out;
		goto sort;
	}
	ret = query(db, POOL_COLS " ORDER BY id", "load pools", pool_row, &l);
	size_t batch = db__load_batch ? db__load_batch : 1;
	for (size_t lo = 0; !ret && lo < cfg->npools; lo += batch)
		ret = load_batch(db, &l, lo, cfg->npools - lo < batch ? cfg->npools : lo + batch);
	if (ret)
		goto out;
	/* Hand out everything sorted by name (packed pools' members sort in their block). */
	db_config_sort(cfg);
	goto fit;
sort:
	/* Hand out everything sorted by name: deterministic for export and the daemon. */
	for (size_t i = 0; i < l.nrefs; i++)
		db_member_sort(l.refs[i].m);
	db_config_sort(cfg);
	for (size_t i = 0; i < cfg->npools; i++)
		pool_pack(&cfg->pools[i]);
fit:
	/* The array grew by doubling: give back what the pools do not use. */
	cfg->pools = gslb_realloc(cfg->pools,
				  (cfg->npools ? cfg->npools : 1) * sizeof(*cfg->pools));
out:
	free(l.refs);
	return ret;
}

static int config_load(db_t *db, bool all, const char *const *names, size_t n, db_config_t **out)
{
	bool own = !db->in_txn && sqlite3_get_autocommit(db->h);
	db_config_t *cfg = gslb_calloc(1, sizeof(*cfg));
	int ret;

	*out = NULL;
	if (own) {
		ret = db_begin_read(db);
		if (ret)
			goto out;
	}
	ret = load(db, cfg, all, names, n);
	if (own) {
		/* A read transaction has nothing to commit; ending it releases the snapshot. */
		db_rollback(db);
	}
	/*
	 * A whole load read every page of the configuration: the connection's
	 * page cache (2 MiB) holds pages no later read needs, in a process
	 * that keeps running (gslbd).  Pages in use stay.
	 */
	if (all)
		sqlite3_db_release_memory(db->h);
out:
	if (ret) {
		db_config_free(cfg);
		return ret;
	}
	*out = cfg;
	return 0;
}

int db_config_load(db_t *db, db_config_t **out)
{
	return config_load(db, true, NULL, 0, out);
}

int db_config_load_pools(db_t *db, const char *const *names, size_t n, db_config_t **out)
{
	return config_load(db, false, names, n, out);
}

struct names {
	char **v;
	size_t n;
};

static void name_row(sqlite3_stmt *st, void *arg)
{
	struct names *nm = arg;
	strv_push(&nm->v, &nm->n, db__col_dup(st, 0));
}

int db_config_changed(db_t *db, int64_t since, char ***names, size_t *n)
{
	struct names nm = { 0 };
	sqlite3_stmt *st;
	int ret = db__prepare(db, "SELECT name FROM pool_rev WHERE rev >= ?1 ORDER BY name", &st);
	if (!ret) {
		sqlite3_bind_int64(st, 1, since);
		ret = db__rows(db, st, "read the pools changed", name_row, &nm);
	}
	if (ret) {
		db_names_free(nm.v, nm.n);
		nm.v = NULL;
		nm.n = 0;
	}
	*names = nm.v;
	*n = nm.n;
	return ret;
}

void db_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void db_config_merge(db_config_t *cfg, const char *const *names, size_t n, db_config_t *part,
		     size_t **from)
{
	size_t cap = cfg->npools + part->npools;
	db_pool_t *pools = gslb_calloc(cap ? cap : 1, sizeof(*pools));
	size_t *idx = from ? gslb_calloc(cap ? cap : 1, sizeof(*idx)) : NULL;
	size_t i = 0, k = 0, j = 0, out = 0;

	/*
	 * Three lists in name order: the old pools, the names changed, the
	 * pools of those that exist now.  An old pool whose name is among the
	 * changed is dropped; part has the new state of each.
	 */
	while (i < cfg->npools || j < part->npools) {
		const char *a = i < cfg->npools ? cfg->pools[i].name : NULL;
		const char *b = j < part->npools ? part->pools[j].name : NULL;
		if (a && (!b || strcmp(a, b) < 0)) {
			while (k < n && strcmp(names[k], a) < 0)
				k++;
			if (k < n && strcmp(names[k], a) == 0) {
				db_pool_clear(&cfg->pools[i++]);
				continue;
			}
			if (idx)
				idx[out] = i;
			pools[out++] = cfg->pools[i++];
			continue;
		}
		/* Replaced: a name in part is always among the changed. */
		if (a && strcmp(a, b) == 0)
			db_pool_clear(&cfg->pools[i++]);
		if (idx)
			idx[out] = SIZE_MAX;
		pools[out++] = part->pools[j++];
	}
	free(cfg->pools);
	cfg->pools = pools;
	cfg->npools = out;
	free(part->pools);
	part->pools = NULL;
	part->npools = 0;
	if (from)
		*from = idx;
}

/* Binary search: pools are sorted by name, and gslbd looks up each of 100,000 at a load. */
db_pool_t *db_config_pool(const db_config_t *cfg, const char *name)
{
	size_t lo = 0, hi = cfg ? cfg->npools : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cfg->pools[mid].name, name);
		if (c == 0)
			return &cfg->pools[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

db_member_t *db_pool_member(const db_pool_t *p, const char *name)
{
	for (size_t i = 0; p && i < p->nmembers; i++)
		if (strcmp(p->members[i].name, name) == 0)
			return &p->members[i];
	return NULL;
}
