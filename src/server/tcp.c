/* SPDX-License-Identifier: MIT */
/*
 * DNS over TCP (RFC 7766): framed queries answered in order, backpressure, idle timeout, message
 * deadline, LRU limit.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "dnstap.h"
#include "internal.h"
#include "tcp_frame.h"

/*
 * Answers to pipelined queries are gathered and written together, up to
 * this many bytes: one write per read instead of one per answer.
 */
#define TCP_OUT_MAX (4 * TCP_FRAME_MAX)
#define TCP_BACKLOG 256
/*
 * A connection's read buffer, inside its struct: queries are short, and an
 * idle connection costs this and libuv's handles, about 1.5 KiB in all.  A
 * longer message is read into a TCP_FRAME_MAX buffer allocated for it and
 * freed once it is answered (tcp_frame_cap()).
 */
#define TCP_RBUF_SMALL 512
/*
 * Connections of one source address, counted across the TCP threads in
 * this many slots (the address hashed; two addresses sharing a slot share
 * its count, so a limit may come a little early for one of them).
 */
#define TCP_IP_SLOTS 65536
/*
 * A message must arrive whole within this many milliseconds of its first
 * byte, however its bytes are spread: otherwise a client sending a byte now
 * and then would count as active for ever and hold its connection and read
 * buffer (RFC 7766 6.2.3: servers may close connections to protect their
 * resources).
 */
#define TCP_MESSAGE_MS 10000

/*
 * One client connection, owned by its worker's loop.  Handles are freed
 * in their close callbacks: the struct goes when both are closed.
 * Invariant: while writing, reads are stopped and no further frame is
 * answered, so answers leave in query order and a slow reader cannot make
 * the server buffer more than one batch of answers, TCP_OUT_MAX bytes
 * (RFC 7766 6.2.1.1 backpressure).
 *
 * One timer serves two limits: between messages, the idle timeout
 * (SERVER_TCP_IDLE_MS since the last read or write); while part of a
 * message is in rbuf, that message's deadline (TCP_MESSAGE_MS after its
 * first byte), which further bytes do not move.
 */
typedef struct tcp_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	worker_t *w;
	TAILQ_ENTRY(tcp_conn) lru; /* in the worker's list while in_lru */
	struct sockaddr_storage peer;
	tap_end_t local; /* --dnstap only: the address the client connected to */
	uint8_t *rbuf;	 /* small, or a TCP_FRAME_MAX buffer while a longer message arrives */
	size_t rlen, rcap;
	uint32_t ip_slot; /* in tcp_ip_count, when ip_counted */
	bool ip_counted;
	uint64_t msg_start_ms; /* loop time of the first byte of the message in rbuf */
	uint8_t *wbuf; /* the unsent rest of the answers (TCP_OUT_MAX), allocated on first need */
	unsigned open; /* handles not yet closed */
	bool in_lru;
	bool writing;  /* a uv_write is pending */
	bool draining; /* read no more: close once the frames already read are answered */
	bool closing;
	uint8_t small[TCP_RBUF_SMALL];
} tcp_conn_t;

/* Connections per source address slot, for --tcp-clients-per-ip (every TCP thread's). */
static uint16_t tcp_ip_count[TCP_IP_SLOTS];

/* The slot of peer's address: an IPv4-mapped IPv6 address counts as its IPv4 address. */
static uint32_t ip_slot(const struct sockaddr_storage *peer)
{
	const uint8_t *ip = NULL;
	size_t len = query_peer_ip((const struct sockaddr *)peer, &ip);
	return gslb_hash(ip, len) % TCP_IP_SLOTS;
}

/* The read buffer back inside the struct once what it holds fits there. */
static void rbuf_shrink(tcp_conn_t *c)
{
	if (c->rbuf == c->small || tcp_frame_cap(c->rbuf, c->rlen, TCP_RBUF_SMALL) > TCP_RBUF_SMALL)
		return;
	memcpy(c->small, c->rbuf, c->rlen);
	free(c->rbuf);
	c->rbuf = c->small;
	c->rcap = TCP_RBUF_SMALL;
}

static void lru_remove(worker_t *w, tcp_conn_t *c)
{
	if (!c->in_lru)
		return;
	TAILQ_REMOVE(&w->lru, c, lru);
	c->in_lru = false;
}

static void lru_append(worker_t *w, tcp_conn_t *c)
{
	TAILQ_INSERT_TAIL(&w->lru, c, lru);
	c->in_lru = true;
}

static void conn_close_cb(uv_handle_t *h)
{
	tcp_conn_t *c = h->data;
	if (--c->open)
		return;
	if (c->rbuf != c->small)
		free(c->rbuf);
	free(c->wbuf);
	free(c);
}

static void conn_close(tcp_conn_t *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->in_lru) {
		lru_remove(c->w, c);
		c->w->nconns--;
	}
	if (c->ip_counted)
		__atomic_sub_fetch(&tcp_ip_count[c->ip_slot], 1, __ATOMIC_RELAXED);
	c->ip_counted = false;
	uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
	if (c->open > 1)
		uv_close((uv_handle_t *)&c->timer, conn_close_cb);
}

static void timeout_cb(uv_timer_t *t)
{
	tcp_conn_t *c = t->data;
	if (c->rlen && !c->writing)
		log_debug("tcp: closing a connection whose message did not arrive within %d ms",
			  TCP_MESSAGE_MS);
	conn_close(c);
}

/*
 * Activity: the connection becomes the most recent, and its timer restarts:
 * for the message in rbuf, its deadline; while an answer is being written
 * or between messages, the idle timeout.
 */
static void conn_touch(tcp_conn_t *c)
{
	uint64_t ms = SERVER_TCP_IDLE_MS;

	if (c->closing)
		return;
	lru_remove(c->w, c);
	lru_append(c->w, c);
	if (c->rlen && !c->writing) {
		uint64_t now = uv_now(&c->w->loop), due = c->msg_start_ms + TCP_MESSAGE_MS;
		ms = due > now ? due - now : 0;
	}
	uv_timer_start(&c->timer, timeout_cb, ms, 0);
}

static void conn_process(tcp_conn_t *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void write_cb(uv_write_t *req, int status)
{
	tcp_conn_t *c = req->data;
	c->writing = false;
	/* A slow reader's answers are gone: its buffer goes too (an idle connection keeps none). */
	free(c->wbuf);
	c->wbuf = NULL;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	/*
	 * Frames that arrived with the ones already answered; closes when
	 * draining.  What is left is a message begun in the read that started
	 * this write, whose start that read recorded.
	 */
	conn_process(c);
	conn_touch(c);
	if (c->closing || c->writing)
		return;
	/* Reads were paused while the answer waited; take the next queries. */
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) < 0)
		conn_close(c);
}

/*
 * Send framed answers: straight to the socket when it takes them all, else
 * the rest is copied and written asynchronously, and reading pauses.
 */
static int conn_send(tcp_conn_t *c, const uint8_t *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (r >= 0 && (size_t)r == len)
		return 0;
	if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS)
		return r;
	if (r < 0)
		r = 0;
	if (!c->wbuf)
		c->wbuf = gslb_malloc(TCP_OUT_MAX);
	memcpy(c->wbuf, data + r, len - (size_t)r);
	b = uv_buf_init((char *)c->wbuf, (unsigned)(len - (size_t)r));
	c->wreq.data = c;
	int ret = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
	if (ret < 0)
		return ret;
	c->writing = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	return 0;
}

/*
 * Answer every complete frame in the read buffer, in order, gathering the
 * answers in the worker's output buffer, until one batch must wait for a
 * write.
 */
static void conn_process(tcp_conn_t *c)
{
	worker_t *w = c->w;
	size_t off = 0, out = 0;
	bool fail = false;
	/* --dnstap: the queries of this read arrived now. */
	struct timespec query_t, response_t;
	if (unlikely(w->tap != NULL))
		server_dnstap_now(&query_t);

	const query_data_t *snap = server_rcu_enter(w);
	while (!c->writing) {
		size_t qlen;
		tcp_frame_t f = tcp_frame_next(c->rbuf + off, c->rlen - off, &qlen);
		if (f == TCP_FRAME_END) {
			/* A zero length cannot carry a message: the client is done. */
			c->draining = true;
			off = c->rlen;
			break;
		}
		if (f == TCP_FRAME_MORE)
			break;
		if (out + TCP_FRAME_MAX > TCP_OUT_MAX) {
			/* Full: send what there is; a write left pending stops the loop. */
			if (conn_send(c, w->tcp_out, out) < 0) {
				fail = true;
				break;
			}
			out = 0;
			continue;
		}
		w->ctx.now_ms = 0; /* read again by the query that needs it */
		size_t alen = query_answer(&w->ctx, snap, c->rbuf + off + 2, qlen,
					   w->tcp_out + out + 2, QUERY_TCP,
					   (const struct sockaddr *)&c->peer);
		if (unlikely(w->tap != NULL)) {
			server_dnstap_now(&response_t);
			server_dnstap_log(w->tap, QUERY_TCP, (const struct sockaddr *)&c->peer,
					  &c->local, &query_t,
					  server_dnstap_delay_ns(&query_t, &response_t),
					  c->rbuf + off + 2, qlen, w->tcp_out + out + 2, alen);
		}
		off += 2 + qlen;
		if (!alen)
			continue;
		dns_put16(w->tcp_out + out, (uint16_t)alen);
		out += 2 + alen;
	}
	server_rcu_leave();
	if (out && !fail && conn_send(c, w->tcp_out, out) < 0)
		fail = true;

	c->rlen = tcp_frame_shift(c->rbuf, c->rlen, off);
	rbuf_shrink(c);
	if (fail || (c->draining && !c->writing))
		conn_close(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	tcp_conn_t *c = h->data;
	(void)suggested;
	size_t cap = tcp_frame_cap(c->rbuf, c->rlen, TCP_RBUF_SMALL);
	if (cap > c->rcap) {
		/* A message longer than the small buffer has begun: room for the longest. */
		uint8_t *big = gslb_malloc(TCP_FRAME_MAX);
		memcpy(big, c->rbuf, c->rlen);
		c->rbuf = big;
		c->rcap = TCP_FRAME_MAX;
	}
	buf->base = (char *)c->rbuf + c->rlen;
	buf->len = tcp_frame_room(c->rlen, c->rcap);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	tcp_conn_t *c = s->data;
	(void)buf;
	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		uv_read_stop(s);
		/* EOF: answer what was read, then close; an error: close now. */
		c->draining = true;
		if (nread != UV_EOF || !c->writing)
			conn_close(c);
		return;
	}
	size_t before = c->rlen;
	c->rlen += (size_t)nread;
	conn_process(c);
	if (c->closing)
		return;
	/*
	 * What is left unanswered began in this read when the buffer was empty
	 * before it or a frame ended in it; otherwise the message began earlier
	 * and keeps its start, so a byte at a time cannot postpone its deadline.
	 */
	if (tcp_frame_began(before, (size_t)nread, c->rlen))
		c->msg_start_ms = uv_now(&c->w->loop);
	conn_touch(c);
}

static void accept_cb(uv_stream_t *server, int status)
{
	tcp_listener_t *ls = server->data;
	worker_t *w = ls->w;

	if (status < 0 || w->stopping)
		return;
	tcp_conn_t *c = gslb_calloc(1, sizeof(*c));
	c->w = w;
	if (uv_tcp_init(&w->loop, &c->tcp) < 0) {
		free(c);
		return;
	}
	c->tcp.data = c;
	c->open = 1;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	uv_timer_init(&w->loop, &c->timer);
	c->timer.data = c;
	c->open = 2;
	int plen = sizeof(c->peer);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen) < 0)
		c->peer.ss_family = AF_UNSPEC;
	/*
	 * One address over its share is refused before any answer, never an
	 * older connection of it closed (README "On the open internet").
	 */
	if (w->per_ip && c->peer.ss_family != AF_UNSPEC) {
		c->ip_slot = ip_slot(&c->peer);
		c->ip_counted = true;
		if (__atomic_add_fetch(&tcp_ip_count[c->ip_slot], 1, __ATOMIC_RELAXED) >
		    w->per_ip) {
			w->tcp_refused++;
			conn_close(c);
			return;
		}
	}
	/* Full: make room by closing the connection idle the longest (RFC 7766 6.2.3). */
	if (w->nconns >= w->max_conns && !TAILQ_EMPTY(&w->lru)) {
		w->tcp_evicted++;
		conn_close(TAILQ_FIRST(&w->lru));
	}
	if (w->tap) {
		struct sockaddr_storage local;
		plen = sizeof(local);
		if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&local, &plen) < 0)
			local.ss_family = AF_UNSPEC;
		server_dnstap_end((const struct sockaddr *)&local, &c->local);
	}
	/* Answers go out whole and at once; Nagle would hold pipelined ones back. */
	uv_tcp_nodelay(&c->tcp, 1);
	c->rbuf = c->small;
	c->rcap = TCP_RBUF_SMALL;
	w->nconns++;
	conn_touch(c);
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) < 0)
		conn_close(c);
}

int server_tcp_open(const server_listen_t *l)
{
	int fd = server_socket_bind(l, SOCK_STREAM, true);
	if (fd < 0)
		return fd;
	/* Listen now, in the main thread: connections queue from the start. */
	if (listen(fd, TCP_BACKLOG) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int server_tcp_init(worker_t *w, unsigned max_conns, unsigned per_ip)
{
	w->max_conns = max_conns ? max_conns : 1;
	w->per_ip = per_ip;
	TAILQ_INIT(&w->lru);
	w->tcp_out = gslb_malloc(TCP_OUT_MAX);
	w->tcp = gslb_calloc(w->nlisten, sizeof(*w->tcp));
	return 0;
}

int server_tcp_start(worker_t *w, size_t i, int fd)
{
	tcp_listener_t *ls = &w->tcp[i];
	ls->w = w;
	int ret = uv_tcp_init(&w->loop, &ls->tcp);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ls->tcp.data = ls;
	ls->opened = true;
	ret = uv_tcp_open(&ls->tcp, fd);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return uv_listen((uv_stream_t *)&ls->tcp, TCP_BACKLOG, accept_cb);
}

void server_tcp_stop(worker_t *w)
{
	for (size_t i = 0; i < w->nlisten; i++) {
		uv_handle_t *h = (uv_handle_t *)&w->tcp[i].tcp;
		if (w->tcp[i].opened && !uv_is_closing(h))
			uv_close(h, NULL);
	}
	/* RFC 7766 6.2.3: connections close; a pending answer is finished first. */
	tcp_conn_t *next;
	for (tcp_conn_t *c = TAILQ_FIRST(&w->lru); c; c = next) {
		next = TAILQ_NEXT(c, lru);
		c->draining = true;
		if (c->writing)
			uv_read_stop((uv_stream_t *)&c->tcp);
		else
			conn_close(c);
	}
}

void server_tcp_deinit(worker_t *w)
{
	free(w->tcp_out);
	w->tcp_out = NULL;
	free(w->tcp);
	w->tcp = NULL;
}
