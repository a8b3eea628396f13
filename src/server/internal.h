/* SPDX-License-Identifier: MIT */
/* Private to src/server: the worker structure shared by worker.c, udp.c, tcp.c and control.c. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

#include "gslb/query.h"
#include "gslb/server.h"

/* Datagrams read and answered per recvmmsg()/sendmmsg() pair. */
#define UDP_BATCH 32

struct worker;
struct tcp_conn;
struct udp_batch;
struct tap_ring;

/* The UDP socket of a UDP worker, read with blocking recvmmsg(). */
typedef struct udp_sock {
	int fd;	      /* owned; closed by server_worker_deinit() */
	bool pktinfo; /* bound to a wildcard address: reply from the query's destination */
} udp_sock_t;

/* One TCP listener of a TCP worker. */
typedef struct tcp_listener {
	uv_tcp_t tcp; /* owns the fd once opened */
	struct worker *w;
	bool opened;
} tcp_listener_t;

/*
 * What a worker thread serves.  UDP is answered by threads of their own
 * that block in recvmmsg(), as gdnsd's do: no event loop between the
 * datagrams, so a busy thread makes one receive and one send system call
 * per batch (0.29-0.32 per query under `make bench`, against 0.39-0.42
 * when the socket sat in an epoll loop).  TCP, with its connections and
 * timers, is served by threads each running a libuv loop.
 */
typedef enum worker_kind {
	/* 0: a zeroed worker, set up as neither */
	WORKER_UDP = 1, /* one socket of one --listen address */
	WORKER_TCP,	/* one listener per --listen address */
} worker_kind_t;

/*
 * A DNS worker: one thread, its query context and its sockets.  Everything
 * here is touched by that thread only once it runs, except stopping and
 * stop (set from the control thread) and the counters (read racily for
 * logs and metrics).
 */
typedef struct worker {
	unsigned id; /* among the workers of its kind */
	worker_kind_t kind;
	pthread_t thread;
	bool started;
	bool stopping; /* WORKER_UDP: CMM_LOAD_SHARED / CMM_STORE_SHARED */
	query_ctx_t ctx;
	/* --dnstap: the producer side of this worker's ring (dnstap.c), else NULL. */
	struct tap_ring *tap;

	/* WORKER_UDP */
	udp_sock_t udp;
	struct udp_batch *batch; /* preallocated UDP buffers */
	uint64_t udp_recv_errors;
	uint64_t udp_send_errors;

	/* WORKER_TCP */
	uv_loop_t loop;
	uv_async_t stop;
	bool loop_ready;
	size_t nlisten;
	tcp_listener_t *tcp; /* nlisten entries */
	uint8_t *tcp_out;    /* framed responses gathered for one write (TCP_OUT_MAX bytes) */
	TAILQ_HEAD(tcp_lru, tcp_conn) lru; /* the connections, least recently active first */
	unsigned nconns;
	unsigned max_conns;
	unsigned per_ip; /* --tcp-clients-per-ip, 0: none */
	uint64_t tcp_evicted;
	uint64_t tcp_refused; /* over --tcp-clients-per-ip */

	/*
	 * Guards ctx.member_answers and ctx.nmember_answers against the
	 * metrics handler: the worker takes it only to swap in a larger array
	 * (server_rcu_enter()), the handler to read the array.  The counts
	 * themselves are incremented without it, as the other counters are,
	 * and read racily.
	 */
	pthread_mutex_t answers_mu;
	bool answers_mu_ready;
} worker_t;

/*
 * Everything a DNS worker answers from, and what the control thread knows
 * of it.  Built by the control thread, published with rcu_xchg_pointer(),
 * never modified afterwards, freed after a grace period (control.c draws
 * its life cycle).
 */
typedef struct gslb_snapshot {
	query_data_t data;     /* owns data.zones and data.pools; borrows the rest */
	uint64_t built_ms;     /* CLOCK_REALTIME in ms when built */
	uint32_t member_slots; /* every lb_member_t.slot of data.pools is below it (metrics) */
	query_cookie_secrets_t cookies; /* data.cookies points here */
	struct dnssec_set *dnssec;	/* owned; data.dnssec points here (NULL: nothing signed) */
} gslb_snapshot_t;

/** Free a snapshot and what it owns.  NULL is a no-op. */
void gslb_snapshot_free(gslb_snapshot_t *s);

/*
 * The snapshot every worker answers from.  Written by the control thread
 * with rcu_xchg_pointer(); read by workers with rcu_dereference() while
 * online (liburcu QSBR).
 */
extern gslb_snapshot_t *server_snap;

/*
 * What a callback of worker w answers from: the current snapshot's data
 * (NULL before the first), valid until server_rcu_leave().  Grows w's
 * answer counters when the snapshot has more member slots than they hold,
 * so the answer path never allocates.
 */
const query_data_t *server_rcu_enter(worker_t *w);
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

/* ---- per-worker I/O (worker's thread, or before it starts) ---- */

/** Take over the UDP socket fd bound to l and allocate the batch buffers. */
int server_udp_init(worker_t *w, int fd, const server_listen_t *l);
/** A UDP worker's thread body: answer until server_udp_wake() after stopping is set. */
void server_udp_run(worker_t *w);
/** Wake the UDP worker's thread out of recvmmsg() (any thread). */
void server_udp_wake(worker_t *w);
void server_udp_deinit(worker_t *w);

int server_tcp_init(worker_t *w, unsigned max_conns, unsigned per_ip);
/** Attach the listening TCP socket fd (taken over) as the worker's listener i. */
int server_tcp_start(worker_t *w, size_t i, int fd);
/** Stop accepting, let connections finish what they have read, close them. */
void server_tcp_stop(worker_t *w);
void server_tcp_deinit(worker_t *w);

/* ---- workers (worker.c) ---- */

/** Prepare UDP worker id (0, 1, ... among UDP workers) over the UDP socket fd (taken over) bound to l.  0 or -errno. */
int server_worker_init_udp(worker_t *w, unsigned id, const server_conf_t *conf, int fd,
			   const server_listen_t *l);
/**
 * Prepare TCP worker id (0, 1, ... among TCP workers) with its loop and a listener over each of tcp_fds
 * (conf->nlisten of them, taken over).  Returns 0 or a negative code.
 */
int server_worker_init_tcp(worker_t *w, unsigned id, const server_conf_t *conf, const int *tcp_fds);
int server_worker_start(worker_t *w);
/** Ask a running worker to stop (any thread). */
void server_worker_stop(worker_t *w);
/** Wait for the thread, then release the loop and buffers. */
void server_worker_deinit(worker_t *w);

/* ---- metrics (metrics.c: the counters and the text; http.c: the listener) ---- */

struct health_loop;
struct cluster;
struct db_config;
struct server_alias;

/*
 * What the metrics handler reads: pointers into the control loop's state,
 * valid while that loop runs.  Everything is read on the control thread.
 */
typedef struct metrics_src {
	worker_t *const *workers; /* *nworkers of them */
	const unsigned *nworkers;
	gslb_snapshot_t *const *cur; /* the snapshot last published */
	struct health_loop *const *probes;
	const uint64_t *reloads;	   /* reloads attempted after start-up */
	const uint64_t *reload_failures;   /* ... of which failed, wholly or in part */
	struct cluster *const *cluster;	   /* --cluster: the cluster thread, else NULL */
	struct db_config *const *cfg;	   /* the configuration last read */
	struct server_alias *const *alias; /* alias members' resolver (alias.c), or NULL */
} metrics_src_t;

/** Failed resolutions of host name name since start-up (gslbd_alias_failures_total). */
uint64_t server_alias_failures(const struct server_alias *sa, const char *name);

typedef struct server_metrics server_metrics_t;

/** The counters' registry over src (copied).  Caller frees with server_metrics_free(). */
server_metrics_t *server_metrics_new(const metrics_src_t *src);
void server_metrics_free(server_metrics_t *m);

/**
 * Give every member of pools its answer counter slot: the same (pool,
 * member) name keeps its slot across snapshots, so counters never go back
 * while the member stays.  Control thread, before the set is published.
 * Returns the number of slots, for gslb_snapshot_t.member_slots.  m NULL:
 * 0, nothing counted.
 */
uint32_t server_metrics_assign(server_metrics_t *m, lb_set_t *pools);

/**
 * Give back the slots of the members the last server_metrics_assign() did
 * not name, zeroed in every worker, for members to come.  Call once the
 * snapshots before that assignment are freed (after synchronize_rcu()): no
 * worker counts into those slots any more.  Returns how many were freed.
 */
uint32_t server_metrics_sweep(server_metrics_t *m);

/**
 * The Prometheus text exposition (version 0.0.4) into a malloc'd buffer of
 * *len bytes; caller frees.  NULL when memory ran out.
 */
char *server_metrics_render(server_metrics_t *m, size_t *len);

/* ---- the status page (status_page.c; served by http.c) ---- */

struct db_config;

/*
 * What the status page reads on the control thread: pointers into the
 * control loop's state, valid while that loop runs.
 */
typedef struct status_src {
	const server_conf_t *conf;
	gslb_snapshot_t *const *cur;  /* the snapshot last published */
	struct db_config *const *cfg; /* the configuration last read */
} status_src_t;

typedef struct server_status server_status_t;
struct status_job;

enum server_status_form {
	SERVER_STATUS_HTML, /* GET /: the page */
	SERVER_STATUS_JSON, /* GET /status.json: gslbctl status --json */
};

/*
 * One request for the status, embedded in its connection.  The caller fills
 * in the parameters and cb; cb(r, status, body, len) comes once on the
 * control loop with a malloc'd body the callee takes over, unless the
 * request is cancelled first.
 */
typedef struct server_status_req {
	int form;	/* enum server_status_form */
	bool timeline;	/* JSON: with each address's timeline */
	char pool[256]; /* only this pool; "" for all */
	void (*cb)(struct server_status_req *r, int status, char *body, size_t len);
	/* The queue's. */
	TAILQ_ENTRY(server_status_req) link;
	bool queued;
	struct status_job *job;
} server_status_req_t;

/** The status page over src (copied); control thread.  Close with server_status_close(). */
server_status_t *server_status_new(uv_loop_t *loop, const status_src_t *src);
/** Queue r; its cb comes later on the loop (never from within this call). */
void server_status_request(server_status_t *s, server_status_req_t *r);
/** Forget r (its connection closes, or its time is up): its cb will not come. */
void server_status_cancel(server_status_t *s, server_status_req_t *r);
/**
 * Cancel every request and free s, at once or, when a job is running, once
 * it has ended (the loop must run until then).  NULL is a no-op.
 */
void server_status_close(server_status_t *s);

typedef struct metrics_http metrics_http_t;

/**
 * Serve m over HTTP on the bound TCP socket fd (taken over, even on
 * failure) from loop, with the status page over status (README "Status
 * page").  where names the address for messages.  Returns NULL
 * after logging on failure.  Stop with server_http_close().
 */
metrics_http_t *server_http_start(uv_loop_t *loop, int fd, const char *where, server_metrics_t *m,
				  const status_src_t *status);

/** Close the listener and every connection; the memory goes when the loop has run the closes. */
void server_http_close(metrics_http_t *h);

/* ---- the zone directory watch (watch.c) ---- */

typedef struct server_watch server_watch_t;
typedef void (*server_watch_cb)(void *arg);

/**
 * Watch the zone directory dir from loop: cb(arg) is called, on the loop,
 * when files in it changed and every change is complete (the file closed
 * after writing, renamed into place or removed; or, for a writer that
 * never closes it, unchanged for 10 s), 200 ms after the last one.  0 and
 * *out, or a negative errno value (no watch: reloads only on SIGHUP).
 * Stop with server_watch_close().
 */
int server_watch_start(uv_loop_t *loop, const char *dir, server_watch_cb cb, void *arg,
		       server_watch_t **out);

/**
 * After cb's reload has read the files: false when a file was written to
 * meanwhile (the reload may have read it half written: throw it away, cb
 * comes again once the file is complete), else true.  NULL: true.
 */
bool server_watch_settled(server_watch_t *w);

/** A reload of everything (SIGHUP) has been done: changes seen so far need no other. */
void server_watch_reloaded(server_watch_t *w);

/** Stop watching; the memory goes when the loop has run the closes.  NULL is a no-op. */
void server_watch_close(server_watch_t *w);
