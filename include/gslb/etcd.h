/* SPDX-License-Identifier: MIT */
/*
 * An etcd v3 client over etcd's JSON gateway (HTTP/1.1 POSTs to /v3/..., libcurl), for the
 * cluster of README "Two or more nameservers": an asynchronous client on a libuv loop (gslbd's
 * cluster thread) and a blocking one (gslbctl), sharing the request and response forms below.
 *
 * The gateway's JSON: keys and values are base64, 64-bit integers are strings ("revision":"16"),
 * fields at their zero value are left out (no "type" on a PUT event, no "kvs" when empty, no
 * "TTL" when 0).  The helpers here hide all of that: callers see text keys, byte values and
 * int64_t revisions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gslb/db_dnssec.h"

/* Errors beyond negative errno values (-ENOMEM, -EPROTO for a reply that is not etcd's). */
#define ETCD_EUNAVAIL (-10001)	 /* no endpoint answered in time, or etcd has no leader/quorum */
#define ETCD_ECOMPACTED (-10002) /* the revision asked for was compacted */
#define ETCD_EAUTH (-10003)	 /* authentication failed or permission denied */
#define ETCD_ETOOBIG (-10004)	 /* request too large or too many operations in one transaction */
#define ETCD_EREQUEST (-10005)	 /* etcd refused the request otherwise (message says why) */

/** A short text for an ETCD_* code or a negative errno value (static). */
const char *etcd_strerror(int err);

/* The connection settings (gslbd(8) --cluster*). */
typedef struct etcd_conf {
	char **urls; /* "http://127.0.0.1:2379", "https://..."; tried in order, rotating on failure */
	size_t nurls;
	const char *ca_file;   /* NULL: the system's CAs */
	const char *cert_file; /* client certificate and key, or NULL */
	const char *key_file;
	const char *user;     /* etcd user, or NULL: no authentication */
	const char *password; /* read by the caller from --cluster-password-file; never logged */
	uint32_t timeout_ms;  /* a unary request's whole time; 0: 3000 */
	uint32_t connect_timeout_ms; /* 0: 1000 */
} etcd_conf_t;

/* ---- the forms (src/cluster/codec.c): pure functions, no I/O ---- */

/* The response header every reply carries. */
typedef struct etcd_header {
	uint64_t cluster_id;
	int64_t revision;
} etcd_header_t;

/* One key-value, decoded.  key and value are NUL-terminated copies (value may hold NULs). */
typedef struct etcd_kv {
	char *key;
	char *value;
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
} etcd_kv_t;

typedef struct etcd_event {
	bool is_delete;
	etcd_kv_t kv; /* a DELETE carries only the key and mod_revision */
} etcd_event_t;

void etcd_kv_clear(etcd_kv_t *kv);
void etcd_kvs_free(etcd_kv_t *kvs, size_t n);
void etcd_events_free(etcd_event_t *ev, size_t n);

/** The end of the range of every key starting with prefix (its last byte plus one), malloc'd. */
char *etcd_prefix_end(const char *prefix);

/**
 * Body of /v3/kv/range: key, range_end (NULL: the one key), at revision rev (0: current),
 * at most limit keys (0: all), keys_only, count_only.
 */
json_t *etcd_range_body(const char *key, const char *range_end, int64_t rev, int64_t limit,
			bool keys_only, bool count_only);

/* A transaction's compare: key's mod/create revision or version equal to value. */
enum etcd_target { ETCD_MOD = 0, ETCD_CREATE = 1, ETCD_VERSION = 2 };
typedef struct etcd_cmp {
	const char *key;
	enum etcd_target target;
	int64_t value; /* create 0: the key does not exist */
} etcd_cmp_t;

/* A put (value, with lease 0 or a lease id) or a delete of one key (range_end NULL) or a range. */
typedef struct etcd_op {
	bool is_delete;
	const char *key;
	const char *range_end; /* delete only */
	const char *value;
	size_t value_len;
	int64_t lease;
} etcd_op_t;

/** Body of /v3/kv/txn: if every compare holds, the ops (success), else nothing (failure). */
json_t *etcd_txn_body(const etcd_cmp_t *cmp, size_t ncmp, const etcd_op_t *ops, size_t nops);

/** Body of /v3/watch's create request (prefix watch from start_rev; hasleader is a header). */
json_t *etcd_watch_body(const char *key, const char *range_end, int64_t start_rev,
			bool progress_notify);

/** The "header" of a reply (result of a unary call, or the watch message's "result"). */
int etcd_parse_header(const json_t *result, etcd_header_t *h);
/** A range reply's kvs (caller frees with etcd_kvs_free()) and whether more keys remain. */
int etcd_parse_range(const json_t *result, etcd_header_t *h, etcd_kv_t **kvs, size_t *n,
		     bool *more);
/** A txn reply: whether the compares held. */
int etcd_parse_txn(const json_t *result, etcd_header_t *h, bool *succeeded);

/* One watch message, decoded. */
typedef struct etcd_watch_msg {
	etcd_header_t header;
	bool created;  /* the watch's first message */
	bool canceled; /* etcd ended the watch; compact_revision says why when > 0 */
	int64_t compact_revision;
	etcd_event_t *events; /* in revision order; one message never splits a revision */
	size_t nevents;
} etcd_watch_msg_t;

/**
 * One line of the watch stream: {"result": {...}} or {"error": {...}} (an error is returned as
 * an ETCD_* code, e.g. ETCD_EUNAVAIL for "etcdserver: no leader", with its text in why).
 */
int etcd_parse_watch(const json_t *line, etcd_watch_msg_t *msg, char *why, size_t whylen);
void etcd_watch_msg_clear(etcd_watch_msg_t *msg);

/**
 * A unary error reply ({"error": "...", "code": N, "message": ...}) as an ETCD_* code, its
 * message in why.  0 when reply is not an error.
 */
int etcd_parse_error(const json_t *reply, char *why, size_t whylen);

/*
 * Splits a byte stream (the watch's HTTP body, in pieces of any size) into lines, each
 * handed to cb as parsed JSON.  A line longer than max_line is an error (-EMSGSIZE).
 */
typedef struct etcd_lines etcd_lines_t;
typedef int (*etcd_line_cb)(const json_t *line, void *arg);
etcd_lines_t *etcd_lines_new(size_t max_line, etcd_line_cb cb, void *arg);
/** Feed bytes; returns 0, the first non-zero of cb, -EPROTO (not JSON) or -EMSGSIZE. */
int etcd_lines_feed(etcd_lines_t *l, const char *data, size_t n);
void etcd_lines_free(etcd_lines_t *l);

/* ---- a zone's DNSSEC keys as etcd holds them (src/cluster/keys.c) ---- */

/**
 * The value of P "dnssec/" ZONE: zone's n keys (their ids and zones not used) as one JSON
 * object, the same bytes for the same keys in any order; private keys in base64.  malloc'd;
 * the caller wipes and frees it.
 */
char *etcd_dnssec_value(const char *zone, const db_dnssec_key_t *keys, size_t n);

/**
 * The keys of such a value (len bytes of text) into *keys (n of them, each with zone set;
 * caller frees with db_dnssec_keys_free()).  0, or -EPROTO with why set: not the value of
 * zone, an algorithm not 13 or 15, a public key of the wrong length, a time not Unix seconds.
 */
int etcd_dnssec_parse(const char *text, size_t len, const char *zone, db_dnssec_key_t **keys,
		      size_t *n, char *why, size_t whylen);

/* ---- the blocking client (src/cluster/etcd_sync.c): gslbctl ---- */

typedef struct etcd_sync etcd_sync_t;

/** A client for conf (copied).  Does not connect yet.  Free with etcd_sync_free(). */
int etcd_sync_new(const etcd_conf_t *conf, etcd_sync_t **out);
void etcd_sync_free(etcd_sync_t *s);

/**
 * POST body (taken, even on failure) to path ("/v3/kv/range") on the first endpoint that
 * answers, authenticating first when a user is set (and again when the token expired).
 * *result is the reply (caller json_decref()s).  0, or an ETCD_* / negative errno code with
 * the reason in etcd_sync_error() ("http://127.0.0.1:2379: connection refused").
 */
int etcd_sync_call(etcd_sync_t *s, const char *path, json_t *body, json_t **result);
/** The last failure's text (borrowed). */
const char *etcd_sync_error(const etcd_sync_t *s);

/* ---- the asynchronous client (src/cluster/etcd.c): gslbd's cluster thread ---- */

struct uv_loop_s;
typedef struct etcd etcd_t;
typedef struct etcd_watch etcd_watch_t;

/**
 * A client on loop (conf copied).  Free with etcd_free() on the loop's thread, then let the
 * loop run: the client's handles close and the last close frees it.  The process must ignore
 * SIGPIPE (gslbd does): libcurl does not, with several threads.
 */
int etcd_new(struct uv_loop_s *loop, const etcd_conf_t *conf, etcd_t **out);
/** Cancel every request and watch (their callbacks are called with -ECANCELED), close handles. */
void etcd_free(etcd_t *e);

/**
 * A unary call: cb(err, result, arg) exactly once, on the loop's thread; result is borrowed
 * for the call.  body is taken.  Endpoint failover and authentication as etcd_sync_call().
 * result is the reply as etcd sent it: a streaming method's (/v3/lease/keepalive) is wrapped
 * in {"result": {...}}.  The reason of a failure is etcd_error() during cb.  A non-zero return
 * (-ENOMEM, -ECANCELED after etcd_free()) means cb will not be called.
 */
typedef void (*etcd_cb)(int err, const json_t *result, void *arg);
int etcd_call(etcd_t *e, const char *path, json_t *body, etcd_cb cb, void *arg);

/**
 * A watch (body from etcd_watch_body()), sent with "Grpc-Metadata-hasleader: true" so that a
 * member that lost its leader ends it.  cb gets each message (err 0), then once the end:
 * err != 0 (ETCD_EUNAVAIL, ETCD_ECOMPACTED, -ECANCELED...) with msg NULL.  The caller resumes
 * with a new watch from the revision it applied.  A watch that fails before its first message
 * tries the next endpoints itself; one that ends with ETCD_EUNAVAIL after it has already moved
 * the client to the next endpoint (no etcd_endpoint_next() needed).  ETCD_ECOMPACTED comes
 * after the message that says so (canceled, compact_revision > 0).
 */
typedef void (*etcd_watch_cb)(int err, const etcd_watch_msg_t *msg, void *arg);
int etcd_watch(etcd_t *e, json_t *body, etcd_watch_cb cb, void *arg, etcd_watch_t **out);
/** End a watch; its cb is called with -ECANCELED. */
void etcd_watch_cancel(etcd_watch_t *w);

/**
 * Why the last callback got a non-zero err ("http://127.0.0.1:2379: etcdserver: no leader"),
 * borrowed, valid until the next callback.
 */
const char *etcd_error(const etcd_t *e);

/** The endpoint in use (the URL requests go to first), borrowed. */
const char *etcd_endpoint(const etcd_t *e);
/** Move on to the next endpoint (the current one failed the caller's own liveness check). */
void etcd_endpoint_next(etcd_t *e);
