/* SPDX-License-Identifier: MIT */
/* Error strings, stderr logging, checked allocation, the hash of the in-memory tables, the clocks. */
#include "gslb/core.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <endian.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_level = GSLB_LOG_INFO;
static const char *log_ident = "gslbd";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_journal_once = PTHREAD_ONCE_INIT;
static bool log_journal; /* stderr is the journal's stream: lines carry their priority */

const char *gslb_strerror(int err)
{
	switch (err) {
#define GSLB_ERR_CASE(name, val, msg) \
	case name:                    \
		return msg;
		GSLB_ERRNO_MAP(GSLB_ERR_CASE)
#undef GSLB_ERR_CASE
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

void gslb_log_set_level(int level)
{
	log_level = level;
}

void gslb_log_set_ident(const char *ident)
{
	log_ident = ident;
}

int gslb_log_level_parse(const char *s)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

/*
 * systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * connects stderr to (systemd.exec(5)).  Compared with stderr itself, so
 * that a stderr redirected since (gslbd run by hand from a unit's shell)
 * does not get the prefixes.
 */
static bool journal_stream(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!env || sscanf(env, "%llu:%llu%n", &dev, &ino, &end) != 2 || env[end] != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void journal_check(void)
{
	log_journal = journal_stream();
}

bool gslb_log_journal(void)
{
	pthread_once(&log_journal_once, journal_check);
	return log_journal;
}

static void __attribute__((format(printf, 2, 0))) vlog(int level, const char *fmt, va_list ap)
{
	static const char *const tags[] = { "error", "warning", "info", "debug" };
	/* The syslog priorities of the levels, as sd-daemon(3)'s SD_ERR to SD_DEBUG prefixes. */
	static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" };
	if (level > log_level)
		return;
	pthread_once(&log_journal_once, journal_check);
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s%s[%s]: ", log_journal ? prio[level] : "",
			 log_ident, tags[level]);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line so lines from several threads never interleave. */
	pthread_mutex_lock(&log_lock);
	fputs(line, stderr);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void gslb_log(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static void *oom(size_t n)
{
	pthread_once(&log_journal_once, journal_check);
	fprintf(stderr, "%s%s: out of memory allocating %zu bytes\n", log_journal ? "<2>" : "",
		log_ident, n);
	abort();
}

void *gslb_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *gslb_calloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	return p ? p : oom(nmemb * n);
}

void *gslb_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *gslb_strdup(const char *s)
{
	char *p = strdup(s);
	return p ? p : oom(strlen(s) + 1);
}

/* Free memory glibc keeps at the top of the heap instead of returning it. */
#define TRIM_THRESHOLD (64u << 20)

void gslb_malloc_tune(void)
{
	/*
	 * ldns allocates and frees 64 KiB buffers for every RR it parses (the
	 * zone loader, src/zone/load.c).  With glibc's default (dynamic) trim
	 * threshold, each free at the top of the heap can hand the memory back
	 * with brk() and the next RR takes it again: a 1,000,000-name zone took
	 * 24 s, 13 s of it in the kernel, instead of 8.  Keeping up to
	 * TRIM_THRESHOLD of free heap top ends that.  Large blocks (zones) are
	 * still mmap()ed and go back to the system when freed.
	 */
	mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
}

/* ---- hashing ---- */

static uint64_t hash_seed;

/*
 * A per-process seed keeps crafted names from all landing in one chain.  It
 * is drawn before main() so that every table, whichever is built first,
 * hashes with the same seed, and gslb_hash() itself never has to check.
 */
__attribute__((constructor)) static void hash_seed_init(void)
{
	if (getrandom(&hash_seed, sizeof(hash_seed), 0) != sizeof(hash_seed))
		hash_seed = 0x6a09e667f3bcc909ULL ^ (uint64_t)(uintptr_t)&hash_seed;
}

uint32_t gslb_hash(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = hash_seed ^ (len * 0x9e3779b97f4a7c15ULL);
	bool whole_word = len >= 8;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	/* The last 1-7 bytes: one load ending at the end of the key when it is long enough. */
	uint64_t v = 0;
	if (len && whole_word) {
		memcpy(&v, p + len - 8, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		v >>= 8 * (8 - len);
#else
		v <<= 8 * (8 - len);
#endif
	} else {
		for (size_t i = 0; i < len; i++)
			v = v << 8 | p[i];
	}
	h = (h ^ v) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	h *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(h >> 32);
}

/* ---- SipHash-2-4 (the steps are in core.h) ---- */

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

void gslb_siphash24(const uint8_t key[16], const void *data, size_t len, uint8_t out[8])
{
	const uint8_t *p = data;
	gslb_sip_t s;
	gslb_sip_init(&s, load_le64(key), load_le64(key + 8));
	for (; p + 8 <= (const uint8_t *)data + len; p += 8)
		gslb_sip_word(&s, load_le64(p));
	/* The last block: the 0-7 bytes left, and the length's low byte on top. */
	uint64_t m = (uint64_t)(len & 0xff) << 56;
	for (size_t i = 0; i < (len & 7); i++)
		m |= (uint64_t)p[i] << (8 * i);
	uint64_t h = gslb_sip_final(&s, m);
	for (unsigned i = 0; i < 8; i++)
		out[i] = (uint8_t)(h >> (8 * i));
}

/* ---- clocks ---- */

int64_t gslb_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t gslb_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
