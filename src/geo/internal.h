/* SPDX-License-Identifier: MIT */
/* Private to src/geo: the country table behind geo_place_code_valid(), for its tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/**
 * Is cc (upper case) a country code a geo file can return: an assigned
 * ISO 3166-1 alpha-2 code, or XK (Kosovo, user-assigned, used by GeoIP2)?
 * Legacy GeoIP1 pseudo-codes (EU, AP, A1 ...) and reserved codes (UK) are not.
 */
bool geo_country_known(const char *cc);

/** The country table, in its sorted order, for tests: its size, and entry i (NULL past the end). */
size_t geo_country_count(void);
const char *geo_country_at(size_t i);
