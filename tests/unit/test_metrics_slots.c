/* SPDX-License-Identifier: MIT */
/*
 * The answer counter slots of the metrics (src/server/metrics.c): a member
 * keeps its slot while it stays in the pools, a member that left gives its
 * slot back (zeroed in every worker) once swept, and pools whose member
 * names keep changing reuse slots instead of growing without end.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/dns.h"
#include "gslb/lb.h"
#include "../../src/server/internal.h"
#include "tap.h"

#define NWORKERS 2
#define WORKER_SLOTS 4096

static worker_t workers[NWORKERS];
static worker_t *workers_p = workers;
static const unsigned nworkers = NWORKERS;

/* One pool "www.example.test" whose members are named by names[0..n-1]. */
static lb_set_t *set_new(const char *const *names, uint16_t n)
{
	lb_set_t *s = calloc(1, sizeof(*s));
	s->npools = 1;
	s->pools = calloc(1, sizeof(*s->pools));
	s->pools[0] = calloc(1, sizeof(*s->pools[0]));
	lb_pool_t *p = s->pools[0];
	p->name_len = (uint8_t)lb_pool_set_name(p, "www.example.test");
	p->nmembers = n;
	p->members = calloc(n ? n : 1, sizeof(*p->members));
	for (uint16_t i = 0; i < n; i++)
		lb_member_set_name(&p->members[i], "%s", names[i]);
	return s;
}

static void set_free(lb_set_t *s)
{
	lb_pool_clear(s->pools[0]);
	free(s->pools[0]);
	free(s->pools);
	free(s);
}

static uint32_t slot_of(const lb_set_t *s, const char *name)
{
	const lb_pool_t *p = s->pools[0];
	for (uint16_t i = 0; i < p->nmembers; i++)
		if (strcmp(p->members[i].name, name) == 0)
			return p->members[i].slot;
	return UINT32_MAX;
}

/* What a worker does on an answer naming the member. */
static void count(const lb_set_t *s, const char *name, uint64_t n)
{
	for (int w = 0; w < NWORKERS; w++)
		workers[w].ctx.member_answers[slot_of(s, name)] += n;
}

static uint64_t counted(uint32_t slot)
{
	uint64_t sum = 0;
	for (int w = 0; w < NWORKERS; w++)
		sum += workers[w].ctx.member_answers[slot];
	return sum;
}

/*
 * Many pools across reloads, as gslbd builds them: a pool that did not
 * change is shared with the set before (same pointer, its slots kept),
 * one that changed is built anew (its members found by name), and pools
 * come and go.  A model of what every member has counted checks that a
 * member that stays keeps its answers, a new one (a rename too) starts at
 * zero and one that left gives its slot back, zeroed.
 */
enum { NPOOLS = 2000, MAXMEM = 6 };

typedef struct model {
	lb_pool_t *pool[NPOOLS + 400];	     /* the pool of the current set by index, or NULL */
	uint64_t want[NPOOLS + 400][MAXMEM]; /* answers counted for pool i's member k */
} model_t;

static lb_pool_t *pool_new(int i, int variant)
{
	lb_pool_t *p = calloc(1, sizeof(*p));
	char name[64];
	snprintf(name, sizeof(name), "p%d.example.test", i);
	p->name_len = (uint8_t)lb_pool_set_name(p, name);
	/* Every pool names its members m0, m1, ...: only the pool tells them apart. */
	p->nmembers = (uint16_t)(2 + i % 3 + (variant ? 1 : 0));
	p->members = calloc(p->nmembers, sizeof(*p->members));
	for (uint16_t k = 0; k < p->nmembers; k++) {
		/* variant 1: m0 renamed r0, and one more member at the end */
		lb_member_set_name(&p->members[k], "%s%u", variant && k == 0 ? "r" : "m", k);
		p->members[k].slot = UINT32_MAX;
	}
	return p;
}

static void pool_free(lb_pool_t *p)
{
	lb_pool_clear(p);
	free(p);
}

/* The workers' arrays grown to n slots, as answers_grow() does before a worker answers. */
static void workers_fit(uint32_t n)
{
	for (int w = 0; w < NWORKERS; w++) {
		query_ctx_t *c = &workers[w].ctx;
		if (n <= c->nmember_answers)
			continue;
		c->member_answers = realloc(c->member_answers, n * sizeof(uint64_t));
		memset(c->member_answers + c->nmember_answers, 0,
		       (n - c->nmember_answers) * sizeof(uint64_t));
		c->nmember_answers = n;
	}
}

/* Answers for every member of the set: member k of pool i gets i % 7 + k + 1 in each worker. */
static void count_all(model_t *md)
{
	for (int i = 0; i < NPOOLS + 400; i++) {
		lb_pool_t *p = md->pool[i];
		for (uint16_t k = 0; p && k < p->nmembers; k++) {
			for (int w = 0; w < NWORKERS; w++)
				workers[w].ctx.member_answers[p->members[k].slot] +=
					(uint64_t)(i % 7 + k + 1);
			md->want[i][k] += NWORKERS * (uint64_t)(i % 7 + k + 1);
		}
	}
}

/* Every member of the set counted what the model says, each with a slot of its own. */
static bool check_all(const model_t *md, uint32_t nslots, const char *what)
{
	bool *seen = calloc(nslots ? nslots : 1, sizeof(*seen));
	int bad = 0;
	for (int i = 0; i < NPOOLS + 400; i++) {
		const lb_pool_t *p = md->pool[i];
		for (uint16_t k = 0; p && k < p->nmembers; k++) {
			uint32_t sl = p->members[k].slot;
			if (sl >= nslots || seen[sl] || counted(sl) != md->want[i][k]) {
				if (bad++ < 3)
					diag("%s: p%d member %s: slot %u, counted %llu, want %llu",
					     what, i, p->members[k].name, sl,
					     sl < nslots ? (unsigned long long)counted(sl) : 0ull,
					     (unsigned long long)md->want[i][k]);
				continue;
			}
			seen[sl] = true;
		}
	}
	free(seen);
	return bad == 0;
}

static lb_set_t *set_of(const model_t *md)
{
	lb_set_t *s = calloc(1, sizeof(*s));
	s->pools = calloc(NPOOLS + 400, sizeof(*s->pools));
	for (int i = 0; i < NPOOLS + 400; i++)
		if (md->pool[i])
			s->pools[s->npools++] = md->pool[i];
	return s;
}

static void many_pools(server_metrics_t *m)
{
	static model_t md;
	static lb_pool_t *retired[NPOOLS + 400];
	int nretired = 0;

	/* A registry of its own: the slots start again from 0, so the workers' counts do too. */
	for (int w = 0; w < NWORKERS; w++)
		memset(workers[w].ctx.member_answers, 0,
		       workers[w].ctx.nmember_answers * sizeof(uint64_t));
	for (int i = 0; i < NPOOLS; i++)
		md.pool[i] = pool_new(i, 0);
	lb_set_t *s = set_of(&md);
	uint32_t n = server_metrics_assign(m, s);
	server_metrics_sweep(m);
	workers_fit(n);
	count_all(&md);
	ok(check_all(&md, n, "first set"), "%d pools: every member counts into a slot of its own",
	   NPOOLS);

	/*
	 * The reload: pools 0-499 shared, 500-999 built anew unchanged,
	 * 1000-1199 removed, 1200-1999 built anew with m0 renamed r0 and a
	 * member added, 2000-2299 new.
	 */
	int gone = 0, renamed = 0;
	for (int i = 500; i < NPOOLS; i++) {
		retired[nretired++] = md.pool[i];
		if (i >= 1000 && i < 1200) {
			gone += md.pool[i]->nmembers;
			md.pool[i] = NULL;
		} else if (i < 1000) {
			md.pool[i] = pool_new(i, 0);
		} else {
			md.pool[i] = pool_new(i, 1);
			md.want[i][0] = 0;
			md.want[i][md.pool[i]->nmembers - 1] = 0;
			renamed++;
		}
	}
	for (int i = NPOOLS; i < NPOOLS + 300; i++)
		md.pool[i] = pool_new(i, 0);
	lb_set_t *s2 = set_of(&md);
	n = server_metrics_assign(m, s2);
	workers_fit(n);
	/* The old set's snapshot is freed: its pools that left go, then the sweep. */
	free(s->pools);
	free(s);
	is_int(server_metrics_sweep(m), gone + renamed,
	       "the sweep gives back the slots of the removed pools' members and the renamed ones");
	for (int i = 0; i < nretired; i++)
		pool_free(retired[i]);
	nretired = 0;
	ok(check_all(&md, n, "reload"),
	   "after the reload: members that stay kept their answers, new and renamed ones start "
	   "at zero, and no two share a slot");
	count_all(&md);
	ok(check_all(&md, n, "reload, counted"), "and they count on from there");

	/* 100 reloads of the same configuration, every changed pool built anew each time. */
	uint32_t first = 0, most = 0;
	uint32_t freed = 0;
	lb_set_t *cur = s2;
	for (int c = 0; c < 100; c++) {
		for (int i = 500; i < NPOOLS + 300; i++) {
			if (!md.pool[i])
				continue;
			retired[nretired++] = md.pool[i];
			md.pool[i] = pool_new(i, i >= 1200 && i < NPOOLS);
		}
		lb_set_t *nx = set_of(&md);
		uint32_t k = server_metrics_assign(m, nx);
		free(cur->pools);
		free(cur);
		cur = nx;
		freed += server_metrics_sweep(m);
		for (int i = 0; i < nretired; i++)
			pool_free(retired[i]);
		nretired = 0;
		first = c ? first : k;
		most = k > most ? k : most;
		count_all(&md);
	}
	is_int(most, first, "100 reloads of the same configuration: the slots do not grow");
	is_int(freed, 0, "and no slot is given back: every member stays");
	ok(check_all(&md, most, "100 reloads"), "every member kept its answers through them");

	/* Every pool removed: every slot comes back, zeroed. */
	lb_set_t empty = { 0 };
	server_metrics_assign(m, &empty);
	uint32_t live = 0;
	for (int i = 0; i < NPOOLS + 400; i++)
		live += md.pool[i] ? md.pool[i]->nmembers : 0;
	is_int(server_metrics_sweep(m), live, "an empty set: every member's slot is given back");
	bool zero = true;
	for (uint32_t sl = 0; sl < most; sl++)
		zero &= counted(sl) == 0;
	ok(zero, "and every slot given back is zero in every worker");
	free(cur->pools);
	free(cur);
	for (int i = 0; i < NPOOLS + 400; i++)
		if (md.pool[i])
			pool_free(md.pool[i]);
}

int main(void)
{
	for (int w = 0; w < NWORKERS; w++) {
		pthread_mutex_init(&workers[w].answers_mu, NULL);
		workers[w].ctx.member_answers = calloc(WORKER_SLOTS, sizeof(uint64_t));
		workers[w].ctx.nmember_answers = WORKER_SLOTS;
	}
	metrics_src_t src = { .workers = &workers_p, .nworkers = &nworkers };
	server_metrics_t *m = server_metrics_new(&src);

	const char *ab[] = { "a", "b" };
	lb_set_t *s1 = set_new(ab, 2);
	is_int(server_metrics_assign(m, s1), 2, "two members: two slots");
	ok(slot_of(s1, "a") != slot_of(s1, "b"), "each member has its own slot");
	count(s1, "a", 5);
	count(s1, "b", 7);
	is_int(server_metrics_sweep(m), 0, "nothing to give back while both stay");

	const char *bc[] = { "b", "c" };
	lb_set_t *s2 = set_new(bc, 2);
	is_int(server_metrics_assign(m, s2), 3, "a new member before the sweep takes a new slot");
	is_int(slot_of(s2, "b"), slot_of(s1, "b"), "b keeps its slot");
	uint32_t a_slot = slot_of(s1, "a");
	is_int((long long)counted(a_slot), 10, "a's answers are still there before the sweep");
	is_int(server_metrics_sweep(m), 1, "the sweep gives back a's slot");
	is_int((long long)counted(a_slot), 0, "a's slot is zeroed in every worker");
	is_int((long long)counted(slot_of(s2, "b")), 14, "b's answers are kept");

	const char *bd[] = { "b", "d" };
	lb_set_t *s3 = set_new(bd, 2);
	is_int(server_metrics_assign(m, s3), 3, "d reuses a slot: still three");
	is_int(slot_of(s3, "d"), a_slot, "d has a's old slot");
	is_int((long long)counted(slot_of(s3, "d")), 0, "d starts at zero");
	is_int(server_metrics_sweep(m), 1, "c's slot is given back");

	/* A thousand renames of one member: the slots stay few. */
	uint32_t most = 0;
	for (int i = 0; i < 1000; i++) {
		char name[16];
		snprintf(name, sizeof(name), "gen%d", i);
		const char *bx[] = { "b", name };
		lb_set_t *sx = set_new(bx, 2);
		uint32_t n = server_metrics_assign(m, sx);
		most = n > most ? n : most;
		count(sx, name, 1);
		server_metrics_sweep(m);
		set_free(sx);
	}
	is_int(most, 3, "1,000 renamed members never need more than 3 slots");
	is_int((long long)counted(slot_of(s3, "b")), 14, "b's answers survive the churn");

	/* Many members, then few, then many again: the table shrinks and grows. */
	enum { MANY = 3000 };
	static char names[MANY][16];
	const char *np[MANY];
	for (int i = 0; i < MANY; i++) {
		snprintf(names[i], sizeof(names[i]), "n%d", i);
		np[i] = names[i];
	}
	lb_set_t *big = set_new(np, MANY);
	uint32_t nbig = server_metrics_assign(m, big);
	ok(nbig >= MANY && nbig <= MANY + 3, "3,000 members: %u slots", nbig);
	bool distinct = true;
	static bool seen[WORKER_SLOTS];
	for (int i = 0; i < MANY; i++) {
		uint32_t sl = big->pools[0]->members[i].slot;
		if (sl >= WORKER_SLOTS || seen[sl])
			distinct = false;
		else
			seen[sl] = true;
	}
	ok(distinct, "every member has a slot of its own");
	is_int(server_metrics_sweep(m), 2, "b and the last renamed member are given back");
	lb_set_t *few = set_new(np, 10);
	server_metrics_assign(m, few);
	is_int(server_metrics_sweep(m), MANY - 10,
	       "2,990 members leave: their slots are given back");
	bool kept = true;
	for (int i = 0; i < 10; i++)
		kept &= few->pools[0]->members[i].slot == big->pools[0]->members[i].slot;
	ok(kept, "the ten that stay keep their slots after the table shrank");
	lb_set_t *again = set_new(np, MANY);
	is_int(server_metrics_assign(m, again), nbig, "3,000 members again: no new slots");
	kept = true;
	for (int i = 0; i < 10; i++)
		kept &= again->pools[0]->members[i].slot == big->pools[0]->members[i].slot;
	ok(kept, "the ten keep their slots after the table grew again");
	is_int(server_metrics_sweep(m), 0, "nothing to give back");

	/*
	 * A pool shared by consecutive snapshots (gslbd builds only the pools
	 * that changed) is marked named without a lookup: its slots stay live
	 * through the sweep, and go once a set without it is assigned.
	 */
	static const char *const two[] = { "x", "y" };
	lb_set_t *sh = set_new(two, 2);
	server_metrics_assign(m, sh);
	server_metrics_sweep(m);
	uint32_t sx = slot_of(sh, "x"), sy = slot_of(sh, "y");
	for (int i = 0; i < 3; i++) {
		server_metrics_assign(m, sh);
		is_int(server_metrics_sweep(m), 0, "a shared pool: its slots stay live");
	}
	ok(slot_of(sh, "x") == sx && slot_of(sh, "y") == sy && sx != sy,
	   "a shared pool keeps its slots");
	server_metrics_assign(m, again);
	is_int(server_metrics_sweep(m), 2, "the shared pool left: its two slots are given back");
	set_free(sh);

	set_free(s1);
	set_free(s2);
	set_free(s3);
	set_free(big);
	set_free(few);
	set_free(again);
	server_metrics_free(m);

	m = server_metrics_new(&src);
	many_pools(m);
	server_metrics_free(m);
	for (int w = 0; w < NWORKERS; w++)
		free(workers[w].ctx.member_answers);
	return done_testing();
}
