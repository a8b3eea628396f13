/* SPDX-License-Identifier: MIT */
/* Private to src/geo: the country table behind geo_place_code_valid() and the search tree's
 * records, for their tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/**
 * Is cc (upper case) a country code a geo file can return: an assigned
 * ISO 3166-1 alpha-2 code, or XK (Kosovo, user-assigned, used by GeoIP2)?
 * Legacy GeoIP1 pseudo-codes (EU, AP, A1 ...) and reserved codes (UK) are not.
 */
bool geo_country_known(const char *cc);

/** The country table, in its sorted order, for tests: its size, and entry i (NULL past the end). */
size_t geo_country_count(void);
const char *geo_country_at(size_t i);

static inline uint32_t geo_get_be32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return __builtin_bswap32(v);
}

/*
 * The left (bit 0) or right (bit 1) record of node in a MaxMind DB search
 * tree of record_bytes per node (6, 7 or 8: two records of 24, 28 or 32
 * bits), as libmaxminddb's MMDB_read_node() reads it.  record_bytes is a
 * constant where this is inlined into a walk.  A 28-bit record's top four
 * bits are in the middle byte: the left record's in its high nibble.
 */
static inline __attribute__((always_inline)) uint32_t
geo_tree_record(const uint8_t *tree, uint32_t node, unsigned record_bytes, unsigned bit)
{
	const uint8_t *p = tree + (size_t)node * record_bytes;
	if (record_bytes == 6) {
		p += bit * 3;
		return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
	}
	if (record_bytes == 7)
		return bit ? geo_get_be32(p + 3) & 0x0fffffff
			   : geo_get_be32(p) >> 8 | ((uint32_t)p[3] & 0xf0) << 20;
	return geo_get_be32(p + bit * 4);
}
