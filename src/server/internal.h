/* SPDX-License-Identifier: MIT */
/* Private to src/server: the worker structure shared by worker.c, udp.c, tcp.c and control.c. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "gslb/query.h"
#include "gslb/server.h"

/* Datagrams read and answered per recvmmsg()/sendmmsg() pair. */
#define UDP_BATCH 32

struct worker;
struct tcp_conn;
struct udp_batch;

/* One UDP socket of a worker, driven by a uv_poll_t (the worker's loop only). */
typedef struct udp_sock {
	uv_poll_t poll;
	struct worker *w;
	int fd;	      /* owned; closed by server_worker_free() */
	int family;   /* AF_INET or AF_INET6 */
	bool pktinfo; /* bound to a wildcard address: reply from the query's destination */
} udp_sock_t;

/* One TCP listener of a worker. */
typedef struct tcp_listener {
	uv_tcp_t tcp; /* owns the fd once opened */
	struct worker *w;
	bool opened;
} tcp_listener_t;

/*
 * A DNS worker: one thread, one libuv loop, one UDP socket and one TCP
 * listener per --listen address.  Everything here is touched by that
 * thread only once it runs, except stop (uv_async_send from the control
 * thread) and the counters (read racily for logs and metrics).
 */
typedef struct worker {
	unsigned id;
	uv_loop_t loop;
	uv_async_t stop;
	pthread_t thread;
	bool loop_ready;
	bool started;
	bool stopping;
	query_ctx_t ctx;

	size_t nlisten;
	udp_sock_t *udp;     /* nlisten entries */
	tcp_listener_t *tcp; /* nlisten entries */

	struct udp_batch *batch; /* preallocated UDP buffers */

	uint8_t *tcp_out;	   /* framed responses gathered for one write (TCP_OUT_MAX bytes) */
	struct tcp_conn *lru_head; /* least recently active connection */
	struct tcp_conn *lru_tail;
	unsigned nconns;
	unsigned max_conns;

	uint64_t udp_recv_errors;
	uint64_t udp_send_errors;
	uint64_t tcp_evicted;
} worker_t;

/*
 * The snapshot every worker answers from.  Written by the control thread
 * with rcu_xchg_pointer(); read by workers with rcu_dereference() while
 * online (liburcu QSBR).
 */
extern gslb_snapshot_t *server_snap;

/* The current snapshot for a worker callback: call between server_rcu_enter/leave. */
const gslb_snapshot_t *server_rcu_enter(void);
void server_rcu_leave(void);

/* ---- sockets, created and bound in the main thread (udp.c, tcp.c) ---- */

/**
 * A nonblocking socket of type (SOCK_DGRAM or SOCK_STREAM) bound to l;
 * IPv6 sockets are IPV6_V6ONLY so 0.0.0.0 and :: can both be bound.  With
 * reuseport, SO_REUSEPORT is set so every worker binds its own socket to
 * the same address.  Returns an fd or a negative errno.
 */
int server_socket_bind(const server_listen_t *l, int type, bool reuseport);
/** A UDP socket for l, with IP_PKTINFO/IPV6_RECVPKTINFO when l is a wildcard; fd or -errno. */
int server_udp_open(const server_listen_t *l);
/** A listening TCP socket for l; an fd or a negative errno. */
int server_tcp_open(const server_listen_t *l);
/** Whether l is 0.0.0.0 or :: (replies must then name their source address). */
bool server_listen_is_wildcard(const server_listen_t *l);

/* ---- per-worker I/O (worker's thread, or before it starts) ---- */

int server_udp_init(worker_t *w);
/** Attach the UDP socket fd (taken over) as the worker's listener i. */
int server_udp_start(worker_t *w, size_t i, int fd, const server_listen_t *l);
void server_udp_stop(worker_t *w);
void server_udp_deinit(worker_t *w);

int server_tcp_init(worker_t *w, unsigned max_conns);
/** Attach the listening TCP socket fd (taken over) as the worker's listener i. */
int server_tcp_start(worker_t *w, size_t i, int fd);
/** Stop accepting, let connections finish what they have read, close them. */
void server_tcp_stop(worker_t *w);
void server_tcp_deinit(worker_t *w);

/* ---- workers (worker.c) ---- */

/**
 * Prepare worker id with its loop and handles over the fds udp_fds[i] and
 * tcp_fds[i] (taken over, one per listener).  Returns 0 or a negative code.
 */
int server_worker_init(worker_t *w, unsigned id, const server_conf_t *conf, const int *udp_fds,
		       const int *tcp_fds);
int server_worker_start(worker_t *w);
/** Ask a running worker to stop (any thread). */
void server_worker_stop(worker_t *w);
/** Wait for the thread, then release the loop and buffers. */
void server_worker_deinit(worker_t *w);
