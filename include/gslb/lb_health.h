/* SPDX-License-Identifier: MIT */
/*
 * The health table, apart from the rest of src/lb so that the health
 * module can write it without including the answer path's pools: lb.h and
 * health.h both include this header, neither includes the other.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * The health table: one word per health-check target, written by the
 * health loop with atomic stores and read by DNS workers with relaxed
 * atomic loads, so a state change is seen by the next query without a
 * snapshot rebuild.  Indexes are stable for the life of the process.
 * Bit 0 is "up"; the rest is free for the health module.
 *
 * gen counts the changes: lb_health_set() bumps it (release) after a word
 * that actually changed, so whoever reads gen (acquire) and then the words
 * sees every change up to that generation.  The pools' selection caches
 * (lb_pool_sel_update()) are stamped with it, and a query uses a cache only
 * while gen still equals its stamp.
 */
#define LB_TARGET_NONE UINT32_MAX
#define LB_HEALTH_UP 1u

typedef struct lb_health {
	uint32_t cap;
	_Atomic uint32_t *words; /* cap entries, owned */
	_Atomic uint64_t gen;	 /* bumped after every change of a word */
} lb_health_t;

/** A table of cap targets, all up.  Caller frees with lb_health_free(). */
lb_health_t *lb_health_new(uint32_t cap);
void lb_health_free(lb_health_t *h);

static inline bool lb_health_up(const lb_health_t *h, uint32_t target)
{
	if (target == LB_TARGET_NONE || !h || target >= h->cap)
		return true;
	return atomic_load_explicit(&h->words[target], memory_order_relaxed) & LB_HEALTH_UP;
}

/* The generation of h's words, read before the words it covers (0 without a table). */
static inline uint64_t lb_health_gen(const lb_health_t *h)
{
	return h ? atomic_load_explicit(&h->gen, memory_order_acquire) : 0;
}

static inline void lb_health_set(lb_health_t *h, uint32_t target, bool up)
{
	uint32_t v = up ? LB_HEALTH_UP : 0u;
	if (h && target < h->cap &&
	    atomic_exchange_explicit(&h->words[target], v, memory_order_relaxed) != v)
		atomic_fetch_add_explicit(&h->gen, 1, memory_order_release);
}
