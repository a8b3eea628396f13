/* SPDX-License-Identifier: MIT */
/*
 * DNS worker threads, RCU readers of the snapshot: UDP workers block in
 * recvmmsg() on their own SO_REUSEPORT socket; TCP workers each run a
 * libuv loop over their own SO_REUSEPORT listeners.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>
#include <urcu/system.h>

#include "gslb/core.h"
#include "internal.h"

gslb_snapshot_t *server_snap;

/*
 * QSBR: a worker is offline while its loop waits, so an idle worker never
 * holds up a grace period; it comes online only to answer, and going
 * offline again is its quiescent state.
 */
/*
 * A new snapshot may name members never seen before: their slots are past
 * the end of the worker's counters.  Grow the array here, between queries,
 * never in the answer path: the first time to the slots the snapshot has
 * (with 100,000 pools, a power of two would waste a third), later by a
 * quarter at least, so a series of reloads costs few copies.  When memory
 * is short the old array stays: those answers go uncounted.
 */
static void answers_grow(worker_t *w, uint32_t need)
{
	query_ctx_t *ctx = &w->ctx;
	uint64_t n = ctx->nmember_answers + ctx->nmember_answers / 4;
	if (n < need)
		n = need;
	/* Whole cache lines, aligned: no line is shared with another worker. */
	n = (n + 7) & ~(uint64_t)7;
	if (n > UINT32_MAX)
		return; /* more than the metrics ever hand out (1 << 20) */
	uint64_t *a = aligned_alloc(64, (size_t)n * sizeof(*a));
	if (!a)
		return;
	memset(a, 0, (size_t)n * sizeof(*a));
	/* Under the lock: the metrics clear given-back slots under it too. */
	pthread_mutex_lock(&w->answers_mu);
	if (ctx->nmember_answers)
		memcpy(a, ctx->member_answers, ctx->nmember_answers * sizeof(*a));
	uint64_t *old = ctx->member_answers;
	ctx->member_answers = a;
	ctx->nmember_answers = (uint32_t)n;
	pthread_mutex_unlock(&w->answers_mu);
	free(old);
}

const query_data_t *server_rcu_enter(worker_t *w)
{
	rcu_thread_online();
	const gslb_snapshot_t *snap = rcu_dereference(server_snap);
	if (!snap)
		return NULL;
	if (unlikely(snap->member_slots > w->ctx.nmember_answers))
		answers_grow(w, snap->member_slots);
	return &snap->data;
}

void server_rcu_leave(void)
{
	rcu_thread_offline();
}

int server_socket_bind(const server_listen_t *l, int type, bool reuseport)
{
	int one = 1, ret;
	int fd = socket(l->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Without V6ONLY, [::]:53 would also take IPv4 and collide with 0.0.0.0:53. */
	if (l->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	/* TCP: rebind at once after a restart, past connections in TIME_WAIT. */
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) < 0)
		goto fail;
	return fd;
fail:
	ret = -errno;
	close(fd);
	return ret;
}

static void stop_cb(uv_async_t *a)
{
	worker_t *w = a->data;
	w->stopping = true;
	server_tcp_stop(w);
	uv_close((uv_handle_t *)&w->stop, NULL);
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	/* "udp/0", "tcp/1" ...: what top -H and /proc/PID/task/TID/comm show. */
	char name[16];
	snprintf(name, sizeof(name), "%s/%u", w->kind == WORKER_UDP ? "udp" : "tcp", w->id);
	pthread_setname_np(pthread_self(), name);
	rcu_register_thread();
	rcu_thread_offline();
	if (w->kind == WORKER_UDP)
		server_udp_run(w);
	else
		uv_run(&w->loop, UV_RUN_DEFAULT);
	rcu_unregister_thread();
	return NULL;
}

/* What every worker has: its query context, its answer counters' lock. */
static void worker_init_common(worker_t *w, unsigned id, worker_kind_t kind,
			       const server_conf_t *conf)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->kind = kind;
	w->udp.fd = -1;
	pthread_mutex_init(&w->answers_mu, NULL);
	w->answers_mu_ready = true;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	query_ctx_init(&w->ctx, conf->qconf,
		       ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
			       ((uint64_t)getpid() << 16) ^
			       ((uint64_t)(id * 2 + (kind == WORKER_TCP)) * 0x9e3779b97f4a7c15ull));
}

int server_worker_init_udp(worker_t *w, unsigned id, const server_conf_t *conf, int fd,
			   const server_listen_t *l)
{
	worker_init_common(w, id, WORKER_UDP, conf);
	return server_udp_init(w, fd, l);
}

int server_worker_init_tcp(worker_t *w, unsigned id, const server_conf_t *conf, const int *tcp_fds)
{
	int ret;
	size_t i = 0;

	worker_init_common(w, id, WORKER_TCP, conf);
	w->nlisten = conf->nlisten;
	unsigned clients = conf->tcp_clients ? conf->tcp_clients : SERVER_TCP_CLIENTS_DEFAULT;
	server_tcp_init(w, (clients + conf->threads - 1) / conf->threads, conf->tcp_clients_per_ip);

	ret = uv_loop_init(&w->loop);
	if (ret < 0)
		goto out;
	w->loop_ready = true;
	ret = uv_async_init(&w->loop, &w->stop, stop_cb);
	if (ret < 0)
		goto out;
	w->stop.data = w;
	for (i = 0; i < conf->nlisten; i++) {
		/* Each start takes its fd over, even when it fails. */
		ret = server_tcp_start(w, i, tcp_fds[i]);
		if (ret < 0) {
			i++;
			goto out;
		}
	}
	return 0;
out:
	/* The fds not yet handed over are still ours to close. */
	for (; i < conf->nlisten; i++)
		close(tcp_fds[i]);
	return ret;
}

int server_worker_start(worker_t *w)
{
	int ret = pthread_create(&w->thread, NULL, worker_main, w);
	if (ret)
		return -ret;
	w->started = true;
	return 0;
}

void server_worker_stop(worker_t *w)
{
	if (!w->started)
		return;
	if (w->kind == WORKER_UDP) {
		CMM_STORE_SHARED(w->stopping, true);
		server_udp_wake(w);
	} else {
		uv_async_send(&w->stop);
	}
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void server_worker_deinit(worker_t *w)
{
	if (w->started) {
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	if (w->loop_ready) {
		/* After a clean stop nothing is left; after a failed start, close what was set up. */
		uv_walk(&w->loop, close_walk_cb, NULL);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		uv_loop_close(&w->loop);
		w->loop_ready = false;
	}
	if (w->kind == WORKER_UDP)
		server_udp_deinit(w);
	else
		server_tcp_deinit(w);
	query_ctx_fini(&w->ctx);
	if (w->answers_mu_ready) {
		pthread_mutex_lock(&w->answers_mu);
		free(w->ctx.member_answers);
		w->ctx.member_answers = NULL;
		w->ctx.nmember_answers = 0;
		pthread_mutex_unlock(&w->answers_mu);
	}
}
