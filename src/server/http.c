/* SPDX-License-Identifier: MIT */
/*
 * The --metrics endpoint: a minimal HTTP/1.x server on the control loop for GET /metrics, and
 * for the status page (GET / and GET /status.json, status_page.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "gslb/core.h"
#include "internal.h"

/*
 * The endpoint runs on the control loop.  Rendering is a few loads per
 * counter and the loop is otherwise idle between reloads; a reload that
 * takes long only delays a scrape.  The limits below keep a slow or
 * hostile client from holding more than METRICS_CONNS_MAX small buffers
 * for METRICS_TIMEOUT_MS, and from locking scrapes out: when all the
 * connections are taken, a new one closes the least recently active, so
 * idle connections cannot keep a scraper waiting, and the timeout counts
 * from accept, so a client trickling its request a byte at a time cannot
 * keep its slot beyond it either.
 */
#define METRICS_REQ_MAX 8192	/* request line and headers, bytes */
#define METRICS_TIMEOUT_MS 5000 /* from accept to the last byte of the response, whatever comes */
#define METRICS_CONNS_MAX 16	/* connections served at once; a new one closes the LRU one */
#define METRICS_BACKLOG 16
/*
 * A status request not answered this long before its connection's time is
 * up gets a 503 instead (the database is slow: held by a long checkpoint,
 * or a disk that stalls), so a client sees why rather than a closed
 * connection.
 */
#define STATUS_ANSWER_MARGIN_MS 1000

/* What a request asks for. */
enum route {
	ROUTE_METRICS,
	ROUTE_PAGE,   /* GET / */
	ROUTE_STATUS, /* GET /status.json */
};

struct metrics_http;

/*
 * One client connection.  Owns its two handles; freed when both close
 * callbacks have run (nhandles reaches 0), and stays in its server's list
 * until then.
 */
typedef struct mconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	struct metrics_http *h;
	TAILQ_ENTRY(mconn) link; /* in the server's list */
	char *resp;		 /* the response being written, owned */
	int nhandles;
	bool closing;
	size_t len;
	size_t scanned;	      /* head_end() resumes here */
	bool started;	      /* a byte other than CR or LF has come */
	bool head;	      /* the request is HEAD: headers only */
	bool waiting;	      /* sreq is with the status page */
	int route;	      /* enum route */
	uint64_t accepted_ms; /* uv_now() at accept */
	server_status_req_t sreq;
	char req[METRICS_REQ_MAX];
} mconn_t;

/* The listener and its connections; control loop only. */
struct metrics_http {
	uv_tcp_t listener;
	server_metrics_t *m;
	server_status_t *status;	     /* the status page, owned */
	TAILQ_HEAD(mconn_list, mconn) conns; /* most recently active first; closing ones too */
	unsigned nconns;		     /* connections in conns that are not closing */
	bool closing;
	bool listener_closed;
};

static void http_maybe_free(metrics_http_t *h)
{
	if (h->closing && h->listener_closed && TAILQ_EMPTY(&h->conns))
		free(h);
}

static void conn_handle_closed_cb(uv_handle_t *hd)
{
	mconn_t *c = hd->data;
	if (--c->nhandles > 0)
		return;
	metrics_http_t *h = c->h;
	TAILQ_REMOVE(&h->conns, c, link);
	free(c->resp);
	free(c);
	http_maybe_free(h);
}

static void conn_close(mconn_t *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->h->nconns--;
	if (c->waiting) {
		server_status_cancel(c->h->status, &c->sreq);
		c->waiting = false;
	}
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
}

static void write_cb(uv_write_t *wr, int status)
{
	(void)status;
	/* Connection: close.  Whatever the client sent after its headers is not read. */
	conn_close(wr->data);
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

static const char *content_type(const mconn_t *c, int status)
{
	if (status != 200)
		return "text/plain; charset=utf-8";
	switch (c->route) {
	case ROUTE_PAGE:
		return "text/html; charset=utf-8";
	case ROUTE_STATUS:
		return "application/json; charset=utf-8";
	default:
		return "text/plain; version=0.0.4; charset=utf-8";
	}
}

/* Send status with body (len bytes, taken over; NULL for a short text of the status). */
static void respond(mconn_t *c, int status, char *body, size_t len, bool head)
{
	char hdr[512];
	char text[64];

	uv_read_stop((uv_stream_t *)&c->tcp);
	if (!body) {
		len = (size_t)snprintf(text, sizeof(text), "%s\n", reason(status));
		body = gslb_strdup(text);
	}
	int hl = snprintf(hdr, sizeof(hdr),
			  "HTTP/1.1 %d %s\r\n"
			  "Content-Type: %s\r\n"
			  "Content-Length: %zu\r\n"
			  "%s%s"
			  "Connection: close\r\n"
			  "\r\n",
			  status, reason(status), content_type(c, status), len,
			  status == 405 ? "Allow: GET, HEAD\r\n" : "",
			  c->route != ROUTE_METRICS ? "Cache-Control: no-store\r\n" : "");
	size_t blen = head ? 0 : len;
	c->resp = gslb_malloc((size_t)hl + blen);
	memcpy(c->resp, hdr, (size_t)hl);
	memcpy(c->resp + hl, body, blen);
	free(body);
	uv_buf_t buf = uv_buf_init(c->resp, (unsigned)((size_t)hl + blen));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, write_cb) < 0)
		conn_close(c);
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/*
 * The status page's parameters from the query string q (qlen bytes, after
 * the "?"): pool=NAME (percent-encoded; lowercased, with the trailing dot
 * added as gslbctl does) and timeline=1.  Others are ignored.  400 for a
 * pool name that is too long or badly encoded, else 200.
 */
static int query_parse(mconn_t *c, const char *q, size_t qlen)
{
	const char *end = q + qlen;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(pe - q));
		const char *v = eq ? eq + 1 : pe;
		size_t klen = (size_t)((eq ? eq : pe) - q);
		if (klen == 8 && memcmp(q, "timeline", 8) == 0) {
			c->sreq.timeline = !(pe - v == 1 && *v == '0');
		} else if (klen == 4 && memcmp(q, "pool", 4) == 0) {
			char *o = c->sreq.pool;
			size_t n = 0;
			for (const char *x = v; x < pe; x++) {
				int ch = (unsigned char)*x;
				if (ch == '%') {
					if (pe - x < 3 || gslb_hexval(x[1]) < 0 ||
					    gslb_hexval(x[2]) < 0)
						return 400;
					ch = gslb_hexval(x[1]) * 16 + gslb_hexval(x[2]);
					x += 2;
				} else if (ch == '+') {
					ch = ' ';
				}
				if (ch == 0 || n + 2 >= sizeof(c->sreq.pool))
					return 400;
				o[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
			}
			if (n && o[n - 1] != '.')
				o[n++] = '.';
			o[n] = '\0';
		}
		q = amp ? amp + 1 : end;
	}
	return 200;
}

/*
 * The status for a complete request head req (n bytes, ending with an
 * empty line), with what it asks for in c (head, route, the status page's
 * parameters): the request line (RFC 9112 3) must be "METHOD SP target SP
 * HTTP/1.x", each header line "name: value" (RFC 9112 5) with no space
 * before the colon and no folding.
 */
static int request_check(mconn_t *c, const char *req, size_t n)
{
	const char *p = req, *end = req + n;
	bool *head = &c->head;

	*head = false;
	/* RFC 9112 2.2: empty lines before the request line are ignored. */
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		return 400;
	const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;

	const char *m = p;
	while (p < le && is_tchar((unsigned char)*p))
		p++;
	size_t mlen = (size_t)(p - m);
	if (mlen == 0 || p == le || *p++ != ' ')
		return 400;
	const char *target = p;
	while (p < le && (unsigned char)*p > ' ' && (unsigned char)*p < 127)
		p++;
	size_t tlen = (size_t)(p - target);
	if (tlen == 0 || p == le || *p++ != ' ')
		return 400;
	if (le - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9')
		return 400;

	/* Header lines up to the empty one. */
	for (const char *l = eol + 1; l < end;) {
		const char *e = memchr(l, '\n', (size_t)(end - l));
		if (!e)
			return 400;
		const char *x = e > l && e[-1] == '\r' ? e - 1 : e;
		if (x == l)
			break;
		const char *colon = memchr(l, ':', (size_t)(x - l));
		if (!colon || colon == l)
			return 400;
		for (const char *q = l; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return 400;
		l = e + 1;
	}

	/* Origin form "/metrics", "/metrics?...", or absolute form "http://host/metrics" (and /, /status.json). */
	const char *path = target, *tend = target + tlen;
	if (tlen > 7 && strncasecmp(target, "http://", 7) == 0) {
		path = memchr(target + 7, '/', tlen - 7);
		if (!path)
			path = tend;
	} else if (*target != '/') {
		return 400;
	}
	const char *qm = memchr(path, '?', (size_t)(tend - path));
	size_t plen = (size_t)((qm ? qm : tend) - path);

	bool get = mlen == 3 && memcmp(m, "GET", 3) == 0;
	*head = mlen == 4 && memcmp(m, "HEAD", 4) == 0;
	if (!get && !*head)
		return 405;
	if (plen == 8 && memcmp(path, "/metrics", 8) == 0) {
		c->route = ROUTE_METRICS;
		return 200;
	}
	if (plen == 1 && *path == '/')
		c->route = ROUTE_PAGE;
	else if (plen == 12 && memcmp(path, "/status.json", 12) == 0)
		c->route = ROUTE_STATUS;
	else
		return 404;
	c->sreq.form = c->route == ROUTE_PAGE ? SERVER_STATUS_HTML : SERVER_STATUS_JSON;
	return qm ? query_parse(c, qm + 1, (size_t)(tend - qm - 1)) : 200;
}

/*
 * Where the request head in c->req ends (after its empty line), or 0 while
 * it is incomplete.  The scan resumes where the last one stopped, so a
 * client sending a byte at a time costs one pass over the buffer.
 */
static size_t head_end(mconn_t *c)
{
	const char *buf = c->req;
	size_t n = c->len, i = c->scanned;

	/* RFC 9112 2.2: empty lines before the request line are skipped. */
	while (!c->started && i < n && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (i < n)
		c->started = true;
	for (; i < n; i++) {
		if (buf[i] != '\n')
			continue;
		size_t j = i + 1;
		if (j < n && buf[j] == '\r')
			j++;
		if (j < n && buf[j] == '\n')
			return j + 1;
		if (j >= n)
			break; /* the rest of the empty line may still come: look here again */
	}
	c->scanned = i;
	return 0;
}

static void alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	mconn_t *c = hd->data;
	(void)suggested;
	*buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static void status_start(mconn_t *c);

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	mconn_t *c = s->data;
	(void)buf;
	if (nread < 0) {
		/* EOF or an error before a whole request: nothing to answer. */
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	/* Activity: the last to be closed for room.  The timeout does not move. */
	TAILQ_REMOVE(&c->h->conns, c, link);
	TAILQ_INSERT_HEAD(&c->h->conns, c, link);
	c->len += (size_t)nread;
	size_t end = head_end(c);
	if (!end) {
		if (c->len == sizeof(c->req))
			respond(c, 400, NULL, 0, false);
		return;
	}
	int status = request_check(c, c->req, end);
	if (status != 200) {
		c->route = ROUTE_METRICS; /* the error's headers */
		respond(c, status, NULL, 0, c->head);
		return;
	}
	if (c->route == ROUTE_METRICS) {
		size_t len = 0;
		char *body = server_metrics_render(c->h->m, &len);
		respond(c, body ? 200 : 500, body, len, c->head);
		return;
	}
	status_start(c);
}

static void timeout_cb(uv_timer_t *t)
{
	mconn_t *c = t->data;
	log_debug("metrics: closing a connection after %d ms", METRICS_TIMEOUT_MS);
	conn_close(c);
}

static void status_done_cb(server_status_req_t *r, int status, char *body, size_t len)
{
	mconn_t *c = (mconn_t *)((char *)r - offsetof(mconn_t, sreq));
	uint64_t now = uv_now(c->tcp.loop), end = c->accepted_ms + METRICS_TIMEOUT_MS;
	c->waiting = false;
	/* The write has what is left of the connection's time, as any other. */
	uv_timer_start(&c->timer, timeout_cb, end > now ? end - now : 0, 0);
	respond(c, status, body, len, c->head);
}

/* The status page did not answer in time: say so while the connection may still be written. */
static void status_late_cb(uv_timer_t *t)
{
	mconn_t *c = t->data;
	if (!c->waiting)
		return; /* answered meanwhile: status_done_cb() has moved the timer on */
	server_status_cancel(c->h->status, &c->sreq);
	c->waiting = false;
	log_warn("metrics: the status page was not read from the database within %d ms",
		 METRICS_TIMEOUT_MS - STATUS_ANSWER_MARGIN_MS);
	uv_timer_start(&c->timer, timeout_cb, STATUS_ANSWER_MARGIN_MS, 0);
	char msg[128];
	int n = snprintf(msg, sizeof(msg),
			 "status: the database was not read within %d ms; try again\n",
			 METRICS_TIMEOUT_MS - STATUS_ANSWER_MARGIN_MS);
	respond(c, 503, gslb_strdup(msg), (size_t)n, c->head);
}

/*
 * Hand the request to the status page, which reads the database off the
 * loop, and answer it 503 if that takes until STATUS_ANSWER_MARGIN_MS
 * before the connection's time is up.
 */
static void status_start(mconn_t *c)
{
	uint64_t now = uv_now(c->tcp.loop);
	uint64_t due = c->accepted_ms + METRICS_TIMEOUT_MS - STATUS_ANSWER_MARGIN_MS;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_start(&c->timer, status_late_cb, due > now ? due - now : 0, 0);
	c->sreq.cb = status_done_cb;
	c->waiting = true;
	server_status_request(c->h->status, &c->sreq);
}

static void accept_cb(uv_stream_t *ls, int status)
{
	metrics_http_t *h = ls->data;
	if (status < 0 || h->closing)
		return;
	if (h->nconns >= METRICS_CONNS_MAX) {
		/*
		 * Full: make room by closing the least recently active
		 * connection, as DNS over TCP does, so the newcomer (a scraper,
		 * most likely) is served; closing connections no longer count.
		 */
		mconn_t *old = TAILQ_LAST(&h->conns, mconn_list);
		while (old && old->closing)
			old = TAILQ_PREV(old, mconn_list, link);
		if (old) {
			log_debug("metrics: %u connections open, closing the least recently active",
				  h->nconns);
			conn_close(old);
		}
	}
	mconn_t *c = gslb_calloc(1, sizeof(*c));
	c->h = h;
	uv_tcp_init(ls->loop, &c->tcp);
	uv_timer_init(ls->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->nhandles = 2;
	TAILQ_INSERT_HEAD(&h->conns, c, link);
	h->nconns++;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) < 0) {
		conn_close(c);
		return;
	}
	c->accepted_ms = uv_now(ls->loop);
	uv_timer_start(&c->timer, timeout_cb, METRICS_TIMEOUT_MS, 0);
}

static void listener_closed_cb(uv_handle_t *hd)
{
	metrics_http_t *h = hd->data;
	h->listener_closed = true;
	http_maybe_free(h);
}

metrics_http_t *server_http_start(uv_loop_t *loop, int fd, const char *where, server_metrics_t *m,
				  const status_src_t *status)
{
	metrics_http_t *h = gslb_calloc(1, sizeof(*h));
	h->m = m;
	h->status = server_status_new(loop, status);
	TAILQ_INIT(&h->conns);
	uv_tcp_init(loop, &h->listener);
	h->listener.data = h;
	int ret = uv_tcp_open(&h->listener, fd);
	if (ret < 0) {
		close(fd);
	} else {
		ret = uv_listen((uv_stream_t *)&h->listener, METRICS_BACKLOG, accept_cb);
	}
	if (ret < 0) {
		log_err("cannot serve metrics on %s: %s", where, gslb_strerror(ret));
		server_status_close(h->status);
		h->status = NULL;
		h->closing = true;
		uv_close((uv_handle_t *)&h->listener, listener_closed_cb);
		return NULL;
	}
	log_info("metrics: serving http://%s/metrics, the status page at http://%s/", where, where);
	return h;
}

void server_http_close(metrics_http_t *h)
{
	if (!h || h->closing)
		return;
	h->closing = true;
	for (mconn_t *c = TAILQ_FIRST(&h->conns); c; c = TAILQ_NEXT(c, link))
		conn_close(c);
	server_status_close(h->status);
	h->status = NULL;
	uv_close((uv_handle_t *)&h->listener, listener_closed_cb);
}
