/* SPDX-License-Identifier: MIT */
/* Private to src/zone: the loader of one zone file, which zone_load_dir() calls for each. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gslb/zone.h"

/**
 * Parse one zone file (common entries by fast_rr(), the rest with ldns).
 * The zone name is the file name with a trailing ".zone" removed; relative
 * names and $INCLUDE resolve against the zone directory dir.  On failure
 * returns a negative code and a message naming the file and line in err.
 * Caller frees with zone_unref().  Also called by tests/unit/test_zone_load.c.
 */
int zone_load_file(const char *dir, const char *fname, zone_t **out, char *err, size_t errlen);

/**
 * zone_load_file() with the fast path for common entries on or off (off:
 * every entry is read by ldns, as before it existed); *nfast, when not NULL,
 * receives the number of entries the fast path read.  For the tests that
 * compare the two.
 */
int zone_load_file_ex(const char *dir, const char *fname, bool fast, size_t *nfast, zone_t **out,
		      char *err, size_t errlen);
