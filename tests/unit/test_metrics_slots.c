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
	for (int w = 0; w < NWORKERS; w++)
		free(workers[w].ctx.member_answers);
	return done_testing();
}
