/* SPDX-License-Identifier: MIT */
/* Error codes, logging and small helpers shared by every gslbd module. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Fallible functions return 0 or a negative code: a negative errno value, or
 * one of the project's own codes below (from -1000 down).  gslb_strerror()
 * names either kind.
 */
#define GSLB_ERRNO_MAP(X)                                             \
	X(GSLB_EPARSE, -1000, "syntax error")                         \
	X(GSLB_ENOSOA, -1001, "zone has no SOA record at its apex")   \
	X(GSLB_ENONS, -1002, "zone has no NS record at its apex")     \
	X(GSLB_EOUTOFZONE, -1003, "record owner is outside the zone") \
	X(GSLB_EDUPSOA, -1004, "zone has more than one SOA record")   \
	X(GSLB_ECNAME, -1005, "CNAME cannot coexist with other data") \
	X(GSLB_ETOOBIG, -1006, "data too large")                      \
	X(GSLB_ECONFIG, -1007, "invalid configuration")               \
	X(GSLB_ENAME, -1008, "invalid domain name")                   \
	X(GSLB_ECLASS, -1009, "record class is not IN")               \
	X(GSLB_EGEODB, -1010, "invalid MaxMind DB file")              \
	X(GSLB_ENOTDB, -1011, "file is not a database")               \
	X(GSLB_EDBCORRUPT, -1012, "database file is corrupt")

enum gslb_err {
#define GSLB_ERR_ENUM(name, val, msg) name = (val),
	GSLB_ERRNO_MAP(GSLB_ERR_ENUM)
#undef GSLB_ERR_ENUM
};

/** Human-readable text for a negative error code (static storage). */
const char *gslb_strerror(int err);

enum gslb_log_level {
	GSLB_LOG_ERROR = 0,
	GSLB_LOG_WARNING,
	GSLB_LOG_INFO,
	GSLB_LOG_DEBUG,
};

/** Set the most verbose level printed (default GSLB_LOG_INFO). */
void gslb_log_set_level(int level);
/** Parse "error", "warning", "info" or "debug"; returns -EINVAL otherwise. */
int gslb_log_level_parse(const char *s);

/** One line to stderr: "gslbd[level]: message".  Thread-safe. */
void gslb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The program name printed before each line (default "gslbd"). */
void gslb_log_set_ident(const char *ident);
/**
 * Whether stderr is the journal (systemd's JOURNAL_STREAM names it): each
 * line then starts with its syslog priority, "<3>" for an error.
 */
bool gslb_log_journal(void);

#define log_err(...) gslb_log(GSLB_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) gslb_log(GSLB_LOG_WARNING, __VA_ARGS__)
#define log_info(...) gslb_log(GSLB_LOG_INFO, __VA_ARGS__)
#define log_debug(...) gslb_log(GSLB_LOG_DEBUG, __VA_ARGS__)

/** malloc/calloc/realloc/strdup that abort with a message on failure. */
void *gslb_malloc(size_t n);
void *gslb_calloc(size_t nmemb, size_t n);
void *gslb_realloc(void *p, size_t n);
char *gslb_strdup(const char *s);

/**
 * Tune malloc for a program that loads zones (zone_load_dir()): keep up to
 * 64 MiB of free memory at the top of the heap instead of handing it back to
 * the system at each free.  Called once by main(), before any thread starts.
 */
void gslb_malloc_tune(void);

/**
 * Hash of len bytes of data, for in-memory hash tables: seeded per process
 * (so crafted keys cannot all land in one chain, and no value may be stored
 * or compared across processes), fast on short keys.  The answer path hashes
 * each name once with it (zone_name_hash()).
 */
uint32_t gslb_hash(const void *data, size_t len) __attribute__((pure));

/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012): a keyed function, for values a client must not be able to forge
 * (RFC 9018 server cookies).  In steps, for a caller whose message is
 * 64-bit words anyway (inlined: a 20-byte message costs about 170
 * instructions): gslb_sip_init() with the key as two little-endian words,
 * gslb_sip_word() for each whole 8-byte word of the message (little-
 * endian), gslb_sip_final() with the last block (the 0-7 bytes left, the
 * message length's low byte in the top byte).
 */
typedef struct gslb_sip {
	uint64_t v0, v1, v2, v3;
} gslb_sip_t;

static inline uint64_t gslb_rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

/* One SipRound over the four state words (the paper's figure 2.1). */
static inline __attribute__((always_inline)) void gslb_sip_round(gslb_sip_t *s)
{
	s->v0 += s->v1;
	s->v1 = gslb_rotl64(s->v1, 13) ^ s->v0;
	s->v0 = gslb_rotl64(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = gslb_rotl64(s->v3, 16) ^ s->v2;
	s->v0 += s->v3;
	s->v3 = gslb_rotl64(s->v3, 21) ^ s->v0;
	s->v2 += s->v1;
	s->v1 = gslb_rotl64(s->v1, 17) ^ s->v2;
	s->v2 = gslb_rotl64(s->v2, 32);
}

static inline __attribute__((always_inline)) void gslb_sip_init(gslb_sip_t *s, uint64_t k0,
								uint64_t k1)
{
	/* "somepseudorandomlygeneratedbytes" */
	s->v0 = k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k1 ^ 0x7465646279746573ULL;
}

static inline __attribute__((always_inline)) void gslb_sip_word(gslb_sip_t *s, uint64_t m)
{
	s->v3 ^= m;
	gslb_sip_round(s);
	gslb_sip_round(s);
	s->v0 ^= m;
}

static inline __attribute__((always_inline)) uint64_t gslb_sip_final(gslb_sip_t *s, uint64_t last)
{
	gslb_sip_word(s, last);
	s->v2 ^= 0xff;
	gslb_sip_round(s);
	gslb_sip_round(s);
	gslb_sip_round(s);
	gslb_sip_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/**
 * SipHash-2-4 of len bytes of data under a 16-byte key: the 64-bit result as
 * the reference writes it, little-endian, into out[8].
 */
void gslb_siphash24(const uint8_t key[16], const void *data, size_t len, uint8_t out[8]);

/**
 * Unix time in milliseconds (CLOCK_REALTIME): for what is stored or shown as
 * a date.  It jumps when the system clock is set.
 */
int64_t gslb_wall_ms(void);
/**
 * Milliseconds since an arbitrary start that never jumps (CLOCK_MONOTONIC):
 * for deadlines and durations within the process.
 */
uint64_t gslb_mono_ms(void);

/** The value of hex digit c (either case), or -1 when c is none. */
static inline int gslb_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * qsort() for arrays that may be empty: qsort wants a valid pointer even for
 * zero elements (an empty array here is often NULL), and fewer than two
 * elements are sorted already.
 */
static inline void gslb_sort(void *base, size_t n, size_t size,
			     int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/** A fast PRNG (xoroshiro128+) over the caller's state s (one per thread); s not all zero. */
static inline uint64_t gslb_rand(uint64_t s[2])
{
	uint64_t s0 = s[0], s1 = s[1];
	uint64_t r = s0 + s1;
	s1 ^= s0;
	s[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
	s[1] = (s1 << 37) | (s1 >> 27);
	return r;
}
