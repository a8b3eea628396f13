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
 */
#define LB_TARGET_NONE UINT32_MAX
#define LB_HEALTH_UP 1u

typedef struct lb_health {
	uint32_t cap;
	_Atomic uint32_t *words; /* cap entries, owned */
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

static inline void lb_health_set(lb_health_t *h, uint32_t target, bool up)
{
	if (h && target < h->cap)
		atomic_store_explicit(&h->words[target], up ? LB_HEALTH_UP : 0u,
				      memory_order_relaxed);
}
