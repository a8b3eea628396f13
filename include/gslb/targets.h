/* SPDX-License-Identifier: MIT */
/* Health-check targets of a configuration and their stable indexes, for gslbd and gslbctl explain. */
#pragma once

#include <stdint.h>

#include "gslb/db.h"
#include "gslb/health.h"
#include "gslb/lb.h"

typedef struct target_reg target_reg_t;

/* The probes one configuration needs; strings borrowed from the db_config_t or owned here. */
typedef struct server_targets {
	health_target_conf_t *t;
	size_t n;
	char (*hosts)[HEALTH_HOST_MAX + 1];
	uint64_t digest; /* changes whenever anything handed to the health loop changes */
} server_targets_t;

/** A registry of at most cap target indexes.  Free with server_targets_free(). */
target_reg_t *server_targets_new(uint32_t cap);
void server_targets_free(target_reg_t *r);

/**
 * Give every address of pools (built by lb_config_pools() from cfg) its
 * target index, from the member's check or else the pool's, and list the
 * distinct targets in out (free with server_targets_clear()).  Addresses
 * without a check keep LB_TARGET_NONE.  Checks with equal keys
 * (health_target_key(): the same request judged alike) are one target.
 */
int server_targets_assign(target_reg_t *reg, const db_config_t *cfg, lb_pool_t *const *pools,
			  uint32_t npools, server_targets_t *out);
void server_targets_clear(server_targets_t *t);

/**
 * The probe gslbd runs for address (a member address of pool p) under check
 * c, into hc: c's settings with the defaults of those unset, its --target
 * or else address with its port, its Host header written into host
 * (host_len bytes, HEALTH_HOST_MAX + 1 are enough), which hc->host points to; the other
 * strings are borrowed from c.  health_target_key() of hc is the key gslbd
 * stores the address's health under.  Returns 0, or -EINVAL when the check
 * has no port or the address is not an IP address (gslbd does not probe it).
 */
int server_targets_check_conf(const db_pool_t *p, const db_check_t *c, const char *address,
			      health_check_conf_t *hc, char *host, size_t host_len);
