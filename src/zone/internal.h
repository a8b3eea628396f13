/* SPDX-License-Identifier: MIT */
/* Private to src/zone: the loader of one zone file, which zone_load_dir() calls for each. */
#pragma once

#include <stddef.h>

#include "gslb/zone.h"

/**
 * Parse one zone file with ldns.  The zone name is the file name with a
 * trailing ".zone" removed; relative names and $INCLUDE resolve against
 * the zone directory dir.  On failure returns a negative code and a message
 * naming the file and line in err.  Caller frees with zone_unref().  Also
 * called by tests/unit/test_zone_load.c.
 */
int zone_load_file(const char *dir, const char *fname, zone_t **out, char *err, size_t errlen);
