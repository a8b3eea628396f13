/* SPDX-License-Identifier: MIT */
/* The numbers gslbctl reads: each one's option, its key in apply's JSON and its range. */

#include <stdint.h>

#include "gslb/cfg.h"
#include "gslb/health.h"
#include "gslb/lb.h"

/*
 * Kept apart from the code that reads them, so that tests/unit/test_schema_limits.c
 * can hold these ranges against the database's CHECK constraints.
 */
const num_field_def_t num_fields[NUM_FIELDS] = {
	[NUM_TTL] = { "--ttl", "ttl", false, 0, LB_TTL_MAX },
	[NUM_DEGRADED_TTL] = { "--degraded-ttl", "degraded_ttl", false, 1, LB_TTL_MAX },
	[NUM_ANSWERS] = { "--answers", "answers", false, 1, LB_ANSWERS_MAX },
	[NUM_WEIGHT] = { "--weight", "weight", false, 0, LB_WEIGHT_MAX },
	[NUM_PRIORITY] = { "--priority", "priority", false, 1, LB_PRIORITY_MAX },
	[NUM_PORT] = { "--port", "port", false, 1, UINT16_MAX },
	[NUM_INTERVAL] = { "--interval", "interval", true, HEALTH_INTERVAL_MS_MIN,
			   HEALTH_INTERVAL_MS_MAX },
	/* The timeout must also be less than the interval; the caller checks that. */
	[NUM_TIMEOUT] = { "--timeout", "timeout", true, 1, HEALTH_INTERVAL_MS_MAX },
	[NUM_RISE] = { "--rise", "rise", false, 1, HEALTH_RISE_MAX },
	[NUM_FALL] = { "--fall", "fall", false, 1, HEALTH_FALL_MAX },
};
