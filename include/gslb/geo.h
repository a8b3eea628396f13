/* SPDX-License-Identifier: MIT */
/* Client location from a MaxMind DB file (GeoIP2/GeoLite2 City or Country schema) and distances. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * An open MaxMind DB, memory-mapped and read-only.  Once geo_db_open() has
 * returned, any number of threads may call geo_db_lookup() and
 * geo_db_metadata() on it at the same time; geo_db_close() must wait until
 * none of them can still be using it (in gslbd: after a QSBR grace period,
 * as the database belongs to a snapshot).
 */
typedef struct geo_db geo_db_t;

/*
 * What the database says about one address.  A fixed-size value: filling it
 * allocates nothing.  Strings are NUL-terminated, upper case, and empty when
 * the database has no (valid) value.
 */
typedef struct geo_info {
	bool found;	     /* the database has a record for the address */
	char country[3];     /* ISO 3166-1 alpha-2: country, else registered_country */
	char subdivision[8]; /* "CC-SUB" (ISO 3166-2) from subdivisions[0], e.g. "US-CA" */
	char continent[3];   /* AF AN AS EU NA OC SA */
	bool has_location;
	double lat, lon; /* degrees, valid when has_location */
	double uvec[3];	 /* the location as a unit vector (geo_unit_vector()) */
	/*
	 * Length of the database network that held the address (or of the
	 * empty network around it when !found), in the terms of the family
	 * asked: 0-32 for IPv4, 0-128 for IPv6 (an IPv4-mapped ::ffff:a.b.c.d
	 * gets 96 plus the IPv4 length).  The answer cannot change within this
	 * prefix, so it is what an ECS scope may claim (RFC 7871 7.2.1).
	 */
	uint8_t prefix_len;
} geo_info_t;

/* Facts about an open database for logs and `gslbctl status`. */
typedef struct geo_db_meta {
	const char *path;	   /* borrowed, valid until geo_db_close() */
	const char *database_type; /* e.g. "GeoIP2-City"; borrowed, as path */
	uint64_t build_epoch;	   /* seconds since 1970 */
	unsigned ip_version;	   /* 4 or 6 */
	uint32_t node_count;
	uint32_t records;  /* distinct records, decoded when the file was opened */
	size_t flat_bytes; /* memory those and the lookup tables take beside the file */
} geo_db_meta_t;

/**
 * Open the MaxMind DB file at path (memory-mapped), and decode each of its
 * distinct records once for geo_db_lookup(): about 10,000 instructions and
 * 100 bytes per distinct record, 65 instructions per search tree node, and
 * 1 MiB of tables.  On success *db is set
 * and the caller closes it with geo_db_close().  On failure *db is left
 * NULL and the return is a negative errno value from opening the file
 * (-ENOENT, -EACCES, -EISDIR ...), -EIO, -ENOMEM, or GSLB_EGEODB for a file
 * that is not a usable MaxMind DB (empty, bad metadata).  Failures are
 * logged at debug level only, with libmaxminddb's message: the caller
 * reports the code once (gslbd: a start-up or a reload error).
 */
int geo_db_open(const char *path, geo_db_t **db);

/** Unmap and free; NULL is a no-op. */
void geo_db_close(geo_db_t *db);

/**
 * Look up one address.  family is AF_INET (addr holds 4 bytes) or AF_INET6
 * (16 bytes); 4 and 6, as lb_addr_t spells them, are accepted too.
 * IPv4-mapped IPv6 addresses are looked up as IPv4.  Thread-safe, never
 * allocates, never logs.  Returns 0 with *out filled (out->found false when
 * the database has no record), -EINVAL for a bad family or NULL argument,
 * or GSLB_EGEODB when the database turns out to be corrupt there; on any
 * error *out is all zero (not found, prefix_len 0).
 */
int geo_db_lookup(const geo_db_t *db, int family, const uint8_t *addr, geo_info_t *out);

/**
 * geo_db_lookup() as libmaxminddb answers it: its tree walk, then the record
 * decoded for this address.  The same results at fifty times the cost
 * (about 11,000 instructions against 170): geo_db_lookup() reads records
 * decoded when the file was opened.  Kept as the reference geo_db_lookup()
 * is tested against.
 */
int geo_db_lookup_reference(const geo_db_t *db, int family, const uint8_t *addr, geo_info_t *out);

/** Fill *meta for an open database (borrowed strings, see geo_db_meta_t). */
void geo_db_metadata(const geo_db_t *db, geo_db_meta_t *meta);

/**
 * The point at lat, lon (degrees) as a unit vector from the Earth's centre.
 * The dot product of two such vectors is the cosine of the angle between
 * the points: the larger it is, the nearer they are, so places can be
 * ranked by distance with three multiplications and no trigonometry.
 */
void geo_unit_vector(double lat, double lon, double v[3]);

/**
 * Great-circle distance in kilometres between two points given in degrees
 * (haversine on a sphere of the mean Earth radius, 6371.0088 km).
 */
double geo_distance_km(double lat1, double lon1, double lat2, double lon2);

/* ---- place codes (src/geo/country.c) ---- */

/**
 * Is code (upper case) a place a member may list: a country code a geo file
 * can return (an assigned ISO 3166-1 alpha-2 code, or XK: Kosovo,
 * user-assigned, used by GeoIP2; not the legacy GeoIP1 pseudo-codes EU, AP,
 * A1 ... nor reserved codes such as UK), or one followed by "-" and 1-3
 * letters or digits (an ISO 3166-2 subdivision as GeoIP2 spells it: "US-CA",
 * "GB-ENG", "JP-13")?
 */
bool geo_place_code_valid(const char *code);
