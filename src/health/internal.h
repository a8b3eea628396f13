/* SPDX-License-Identifier: MIT */
/* Private to src/health: the target object shared by the loop (loop.c) and the probes (probe.c). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "gslb/health.h"

struct health_loop;

/*
 * One deduplicated target.  Created by health_loop_set_targets() on the
 * control thread, then owned by the loop's thread: every field is touched
 * only there, except key (immutable), up_pub, own_pub, since_pub and
 * cert_pub (atomic), which the control thread reads under the loop's mutex
 * while the target is in the current set.
 * Freed when removed and its handles are closed (nhandles reaches 0).
 */
typedef struct health_target {
	struct health_loop *hl;
	char *key;
	uint32_t index;
	health_check_conf_t check; /* path, host and match owned (strdup) */
	char *request;		   /* the HTTP request, built once */
	size_t request_len;
	struct health_target *next_conf; /* newer configuration, applied at the next probe */

	/*
	 * st is this node's own verdict; what is published (up_pub, the health table, the store)
	 * is the effective state, the same as st.up unless the loop is a cluster node's, where it
	 * also weighs the other nodes' votes on the key (health_effective_up()).
	 */
	health_state_t st;
	_Atomic bool up_pub;
	_Atomic bool own_pub;	   /* st.up, for the control thread */
	health_votes_t votes;	   /* cluster: the other nodes' votes on key */
	int64_t since_ms;	   /* Unix time of the last state change (or first sight) */
	_Atomic int64_t since_pub; /* since_ms, for the control thread */

	/*
	 * https: the notAfter (Unix seconds) of the leaf certificate the last
	 * completed handshake saw, 0 before one; cert_pub is it for the control
	 * thread.  cert_warned_* say when the expiry was last logged, and for
	 * which notAfter (health_loop_set_cert_warn()).
	 */
	int64_t cert_not_after;
	_Atomic int64_t cert_pub;
	int64_t cert_warned_ms, cert_warned_for;

	uv_timer_t timer; /* next probe, or the timeout of the running one */
	uv_tcp_t tcp;
	uv_connect_t conn;
	int nhandles; /* handles initialised and not yet closed */
	bool timer_live, tcp_open, probing, removed;
	uint64_t start_ns;

	SSL *ssl; /* https, during a probe */
	bool hs_done, req_sent;
	/*
	 * https: the session the next probe resumes (NULL: full handshake), the
	 * newest one the running probe received, and when the chain behind sess
	 * was last verified by a full handshake (uv_hrtime ns).
	 */
	SSL_SESSION *sess, *sess_new;
	uint64_t verified_ns;
	bool sess_insecure; /* sess comes from an unverified handshake */
	char *buf;	    /* response bytes, headers then body (decoded when chunked) */
	size_t len, cap;
	size_t hdr_end; /* 0 until the header block is complete */
	int status;
	int64_t content_length; /* -1 when unknown (none, or a Transfer-Encoding) */
	/* Transfer-Encoding: chunked, decoded as it streams in (probe.c) */
	bool chunked;
	uint8_t ck_state;
	uint16_t ck_line; /* bytes of the current chunk-size or trailer line */
	uint64_t ck_left; /* the chunk size being read, then what is left of the chunk */
	const char *ck_err;
} health_target_t;

/* probe.c */
void health_probe_start(health_target_t *t);
/** Stop a running probe without reporting it (the target is being removed). */
void health_probe_abort(health_target_t *t);
/** The timeout fired while probing. */
void health_probe_timeout(health_target_t *t);
SSL_CTX *health_tls_ctx_new(const char *ca_file);
/*
 * The HTTP response parser (probe.c): the next bytes of the response (after
 * TLS), or its end.  Either may end the probe (health_loop_report).  Also
 * driven by tests/fuzz/fuzz_http.c.
 */
void health_http_input(health_target_t *t, const char *data, size_t n);
void health_http_eof(health_target_t *t);
/** Forget t's TLS sessions: the target goes away or its check changed. */
void health_probe_forget(health_target_t *t);
/*
 * A resumed TLS session skips chain verification: a target does a full
 * handshake (a fresh verification) when its last one is this old.  5 min;
 * tests/health_probe lowers it.
 */
extern uint32_t health_tls_reverify_ms;

/* loop.c: a probe ended; t's connection is closing. */
void health_loop_report(health_target_t *t, bool ok, double latency_ms, const char *reason);
/** The loop-wide read buffer (HEALTH_READ_BUF bytes) and TLS context. */
char *health_loop_rbuf(struct health_loop *hl);
SSL_CTX *health_loop_tls(struct health_loop *hl);
void health_target_handle_closed(health_target_t *t);

/* One probe result or state change, for an observer; called on the loop's thread. */
typedef struct health_event {
	const char *key;
	uint32_t index;
	bool is_change; /* false: a probe result; true: a state change */
	/*
	 * A vote or a clearing of votes was applied (health_loop_vote(), _votes_clear()): key is
	 * the vote's (NULL for a clearing), index LB_TARGET_NONE-like UINT32_MAX when no target
	 * has it, else up is that target's state after it.
	 */
	bool is_vote;
	bool ok; /* probe result */
	bool up; /* state after the event */
	double latency_ms;
	const char *reason;
	int64_t time_ms; /* Unix time */
} health_event_t;

typedef void (*health_event_cb)(const health_event_t *ev, void *arg);

/**
 * Observe every probe result and state change (set before start; NULL to
 * stop).  For tests/health_probe, which prints each event.
 */
void health_loop_set_observer(struct health_loop *hl, health_event_cb cb, void *arg);

#define HEALTH_READ_BUF 65536
#define HEALTH_HEADERS_MAX 16384
