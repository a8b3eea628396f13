/* SPDX-License-Identifier: MIT */
/* Alias members' host names resolved on a libuv loop (README "Alias members"): A and AAAA, TTLs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A name is resolved again when its shortest TTL runs out, bounded to these (gslbd(8)). */
#define ALIAS_TTL_MIN_S 5
#define ALIAS_TTL_MAX_S 3600
/* A failed resolution is tried again this long after it (less a jitter), until one succeeds. */
#define ALIAS_RETRY_MS 5000
/* Addresses kept per name and family; a longer RRset is cut (and said once). */
#define ALIAS_ADDRS_MAX 64
/* --resolver: at most this many. */
#define ALIAS_SERVERS_MAX 8

typedef struct alias_resolver alias_resolver_t;

typedef struct alias_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t addr[16];
} alias_addr_t;

/*
 * What is known of one host name: read-only to callers, valid until the
 * next call into the resolver or the return of the callback it is passed to.
 */
typedef struct alias_name {
	const char *name;     /* lowercase FQDN with its trailing dot */
	bool good;	      /* resolved at least once (now, or as stored before a restart) */
	alias_addr_t *addrs;  /* the last good addresses: IPv4 first, each family sorted */
	size_t naddrs;	      /* 0 when the last good resolution had none of either family */
	int64_t resolved_s;   /* Unix seconds of the last good resolution, 0 never */
	int64_t expires_s;    /* ... and when its shortest TTL (bounded) runs out */
	uint32_t failures;    /* failed resolutions since the last good one */
	bool failing;	      /* the last resolution failed */
	int64_t error_s;      /* Unix seconds of the last failure */
	char error[64];	      /* its reason: "timeout", "SERVFAIL", "NXDOMAIN", "no address" ... */
	uint64_t resolutions; /* attempts so far, good and failed */
} alias_name_t;

/*
 * Called on the loop after each resolution of n: changed says whether the
 * addresses served for it changed (the first good resolution included).
 */
typedef void (*alias_resolved_cb)(void *arg, const alias_name_t *n, bool changed);

typedef struct alias_conf {
	/* --resolver as c-ares reads it ("ADDR:PORT,[ADDR6]:PORT"); NULL: /etc/resolv.conf */
	const char *servers;
	alias_resolved_cb resolved;
	void *arg;
} alias_conf_t;

/**
 * A resolver driven by loop (its sockets by uv_poll_t, its timeouts by a
 * uv_timer_t): *out, or a negative code after logging why.  Nothing is
 * resolved until alias_resolver_want().  Free with alias_resolver_free().
 */
int alias_resolver_new(uv_loop_t *loop, const alias_conf_t *conf, alias_resolver_t **out);

/**
 * Cancel every query and close the handles; the memory goes once the loop
 * has run their close callbacks.  The callback is not called again.  NULL
 * is a no-op.
 */
void alias_resolver_free(alias_resolver_t *r);

/**
 * The names to resolve from now on (n of them, lowercase FQDNs, duplicates
 * allowed): a new one is resolved at once, one no longer listed is
 * forgotten (its queries' answers are dropped).
 */
void alias_resolver_want(alias_resolver_t *r, const char *const *names, size_t n);

/**
 * The last good addresses of a wanted name as stored before a restart:
 * served until a resolution replaces them.  The next resolution is put at
 * a random point before expires_s (at once when that is past), so names
 * stored together do not all resolve at once.  Unknown names are ignored.
 */
void alias_resolver_seed(alias_resolver_t *r, const char *name, const alias_addr_t *addrs,
			 size_t naddrs, int64_t resolved_s, int64_t expires_s);

/** What is known of a wanted name, or NULL (borrowed; see alias_name_t). */
const alias_name_t *alias_resolver_find(const alias_resolver_t *r, const char *name);

/**
 * Parse one --resolver value ("ADDR", "ADDR:PORT", "[ADDR6]" or
 * "[ADDR6]:PORT", port 53 by default) into the form c-ares reads, written
 * to out.  Returns 0, or -EINVAL with a reason in err.
 */
int alias_server_parse(const char *text, char *out, size_t outlen, char *err, size_t errlen);

/** The address text of a (inet_ntop()), into buf of INET6_ADDRSTRLEN bytes. */
const char *alias_addr_text(const alias_addr_t *a, char *buf, size_t len);
