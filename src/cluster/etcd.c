/* SPDX-License-Identifier: MIT */
/* The asynchronous etcd client of gslbd's cluster thread: libcurl's multi_socket interface on a libuv loop. */

/*
 * Design.  Everything here runs on the loop's thread.  libcurl owns the connections; it tells us
 * which sockets to watch (on_socket: one uv_poll_t per socket, a poll_t kept in e->polls) and
 * when to call it back (on_timer: one uv_timer_t).  The poll and timer callbacks hand the event
 * to curl_multi_socket_action() and then run process(), which reads the finished transfers
 * (curl_multi_info_read) and calls the callbacks of the caller.
 *
 * No callback of the caller ever runs inside one of libcurl's callbacks: a watch's write
 * callback only splits and decodes the stream into w->pending, and process() delivers those
 * messages afterwards.  libcurl forbids adding or removing transfers from its own callbacks,
 * and the caller's callbacks do exactly that (a new watch, a cancel, etcd_free).
 *
 * A request (req_t) is a unary call, a watch or an authentication.  Its life:
 *   created --start()--> running --(done, process())--> finish(): callback, freed
 *      |                    | failed on this endpoint: start() on the next one (each tried once)
 *      |                    | token refused: waiting for a new token (once per request)
 *      +--(needs a token)--> waiting in e->authq --(auth_done())--> start() or finish()
 * etcd_free() finishes every request with -ECANCELED and closes the handles; the last close
 * callback frees the client, so the loop must run until its handles are gone.
 */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "gslb/etcd.h"
#include "internal.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

enum req_kind { REQ_CALL, REQ_WATCH, REQ_AUTH };

typedef struct req req_t;

struct etcd {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	etcd_conf_t conf;
	size_t cur;	      /* the endpoint requests go to first */
	char *token;	      /* NULL: none yet, or the last one was refused */
	req_t *auth;	      /* the authentication under way, or NULL */
	req_t *reqs;	      /* every request started or waiting, linked by next/prev */
	struct poll *polls;   /* every socket libcurl asked us to watch */
	unsigned handles;     /* uv handles not closed yet (the timer and the polls) */
	unsigned depth;	      /* > 0: inside process() (the caller's callbacks may run) */
	bool freeing;	      /* etcd_free() was called: nothing new starts */
	char auth_why[512];   /* why the last authentication failed */
	char last_error[512]; /* etcd_error(): the reason given with the last callback's err */
	bool free_deferred;   /* etcd_free() was called from a callback of process() */
};

typedef struct poll {
	uv_poll_t h;
	etcd_t *e;
	curl_socket_t fd;
	struct poll *next, *prev;
} poll_t;

struct req {
	etcd_t *e;
	enum req_kind kind;
	req_t *next, *prev;
	char *path;
	char *body; /* serialized; an authentication's holds the password */
	CURL *h;    /* NULL while not running */
	struct curl_slist *hdrs;
	size_t ep;     /* the endpoint of this try */
	size_t tries;  /* endpoints tried */
	bool reauthed; /* a new token was fetched for this request already */
	bool waiting;  /* in the auth queue */
	bool canceled; /* etcd_watch_cancel() during process(): finished there */
	char errbuf[CURL_ERROR_SIZE];
	char why[512];
	/* unary */
	char *data;
	size_t len, cap;
	etcd_cb cb;
	/* watch */
	etcd_watch_cb wcb;
	void *arg;
	etcd_lines_t *lines;
	etcd_watch_msg_t *pending; /* decoded, not delivered yet */
	size_t npending, cappending;
	int end_err;	/* the stream said how it ended (an error line, a cancel) */
	bool delivered; /* a message reached the caller: no more failover */
};

struct etcd_watch {
	req_t r;
};

static void process(etcd_t *e);
static int start(req_t *r);
static void finish(req_t *r, int err);

/* ---- the libuv side of multi_socket ---- */

static void handle_closed(uv_handle_t *h)
{
	etcd_t *e = h->data;
	if (h->type == UV_POLL)
		free(container_of((uv_poll_t *)h, poll_t, h));
	if (--e->handles == 0 && e->freeing) {
		etcd__conf_deinit(&e->conf);
		free(e);
	}
}

static void poll_drop(poll_t *p)
{
	etcd_t *e = p->e;
	if (p->prev)
		p->prev->next = p->next;
	else
		e->polls = p->next;
	if (p->next)
		p->next->prev = p->prev;
	uv_poll_stop(&p->h);
	uv_close((uv_handle_t *)&p->h, handle_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	poll_t *p = container_of(h, poll_t, h);
	etcd_t *e = p->e;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	int running;
	curl_multi_socket_action(e->multi, p->fd, flags, &running);
	process(e);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	etcd_t *e = userp;
	poll_t *p = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (p) {
			curl_multi_assign(e->multi, fd, NULL);
			poll_drop(p);
		}
		return 0;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -1;
		if (uv_poll_init_socket(e->loop, &p->h, fd) < 0) {
			free(p);
			return -1;
		}
		p->e = e;
		p->fd = fd;
		p->h.data = e;
		e->handles++;
		p->next = e->polls;
		if (p->next)
			p->next->prev = p;
		e->polls = p;
		curl_multi_assign(e->multi, fd, p);
	}
	int ev = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&p->h, ev, on_poll);
	return 0;
}

static void on_timeout(uv_timer_t *t)
{
	etcd_t *e = t->data;
	int running;
	curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	process(e);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	etcd_t *e = userp;
	if (timeout_ms < 0)
		uv_timer_stop(&e->timer);
	else
		uv_timer_start(&e->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- requests ---- */

static void req_link(req_t *r)
{
	etcd_t *e = r->e;
	r->prev = NULL;
	r->next = e->reqs;
	if (r->next)
		r->next->prev = r;
	e->reqs = r;
}

static void req_unlink(req_t *r)
{
	etcd_t *e = r->e;
	if (r->prev)
		r->prev->next = r->next;
	else if (e->reqs == r)
		e->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

/* Ends the transfer of this try (the connection stays in libcurl's cache for the next). */
static void stop(req_t *r)
{
	if (r->h) {
		curl_multi_remove_handle(r->e->multi, r->h);
		curl_easy_cleanup(r->h);
		r->h = NULL;
	}
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	r->len = 0;
}

static void req_free(req_t *r)
{
	stop(r);
	free(r->path);
	if (r->kind == REQ_AUTH)
		etcd__secret_free(r->body);
	else
		free(r->body);
	free(r->data);
	etcd_lines_free(r->lines);
	for (size_t i = 0; i < r->npending; i++)
		etcd_watch_msg_clear(&r->pending[i]);
	free(r->pending);
	if (r->kind == REQ_WATCH)
		free(container_of(r, etcd_watch_t, r));
	else
		free(r);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	req_t *r = arg;
	size_t add = size * n;
	if (r->kind == REQ_WATCH) {
		/* A non-zero from the splitter (an error line, a cancel, garbage) ends the
		 * transfer; end_err says why. */
		int ret = etcd_lines_feed(r->lines, p, add);
		if (ret && !r->end_err) {
			r->end_err = ret;
			if (ret == -EPROTO || ret == -EMSGSIZE)
				snprintf(r->why, sizeof(r->why),
					 "%s: the watch stream is not etcd's (%s)",
					 r->e->conf.urls[r->ep], strerror(-ret));
		}
		return r->end_err ? 0 : add;
	}
	if (r->len + add + 1 > ETCD_MAX_REPLY)
		return 0;
	if (r->len + add + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + add + 1)
			cap *= 2;
		char *d = realloc(r->data, cap);
		if (!d)
			return 0;
		r->data = d;
		r->cap = cap;
	}
	memcpy(r->data + r->len, p, add);
	r->len += add;
	return add;
}

/* A line of the watch stream, inside libcurl's write callback: decoded and queued only. */
static int on_line(const json_t *line, void *arg)
{
	req_t *r = arg;
	etcd_watch_msg_t msg;
	char why[400];
	int ret = etcd_parse_watch(line, &msg, why, sizeof(why));
	if (ret) {
		snprintf(r->why, sizeof(r->why), "%s: %s", r->e->conf.urls[r->ep], why);
		return ret;
	}
	if (r->npending == r->cappending) {
		size_t cap = r->cappending ? 2 * r->cappending : 4;
		etcd_watch_msg_t *p = realloc(r->pending, cap * sizeof(*p));
		if (!p) {
			etcd_watch_msg_clear(&msg);
			return -ENOMEM;
		}
		r->pending = p;
		r->cappending = cap;
	}
	r->pending[r->npending++] = msg;
	if (msg.canceled) {
		/* Canceled with a compact_revision: the caller must sync afresh (a cancel for
		 * any other reason was returned as an error by etcd_parse_watch()). */
		snprintf(r->why, sizeof(r->why), "%s: revision compacted at %lld",
			 r->e->conf.urls[r->ep], (long long)msg.compact_revision);
		return ETCD_ECOMPACTED;
	}
	return 0;
}

/*
 * r needs a token and there is none: it waits for the authentication under way, or starts
 * one on r's endpoint.  Requests that need a token are few (a session's start, a token that
 * expired), so one authentication at a time serves them all.
 */
static int wait_token(req_t *r)
{
	etcd_t *e = r->e;
	if (!e->auth) {
		req_t *a = calloc(1, sizeof(*a));
		if (!a)
			return -ENOMEM;
		a->e = e;
		a->kind = REQ_AUTH;
		a->ep = r->ep;
		a->body = etcd__auth_body(&e->conf);
		a->path = strdup("/v3/auth/authenticate");
		req_link(a);
		int ret = a->body && a->path ? start(a) : -ENOMEM;
		if (ret) {
			req_unlink(a);
			req_free(a);
			return ret;
		}
		e->auth = a;
	}
	r->waiting = true;
	return 0;
}

static int start(req_t *r)
{
	etcd_t *e = r->e;
	if (r->kind != REQ_AUTH && e->conf.user && !e->token)
		return wait_token(r);
	r->hdrs = etcd__headers(r->kind == REQ_AUTH ? NULL : e->token, r->kind == REQ_WATCH);
	r->h = curl_easy_init();
	if (!r->hdrs || !r->h)
		return -ENOMEM;
	int ret = etcd__easy_setup(r->h, &e->conf, e->conf.urls[r->ep], r->path, r->hdrs, r->body,
				   r->kind == REQ_WATCH, r->errbuf);
	if (ret)
		return ret;
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
	if (r->kind == REQ_WATCH) {
		/* Each try is a new stream. */
		etcd_lines_free(r->lines);
		r->lines = etcd_lines_new(ETCD_MAX_LINE, on_line, r);
		r->end_err = 0;
		if (!r->lines)
			return -ENOMEM;
	}
	r->why[0] = '\0';
	if (curl_multi_add_handle(e->multi, r->h) != CURLM_OK)
		return -ENOMEM;
	return 0;
}

/* The endpoint of r's try failed: the client moves on from it (unless it has moved already). */
static void endpoint_failed(req_t *r)
{
	etcd_t *e = r->e;
	if (e->cur == r->ep)
		e->cur = (e->cur + 1) % e->conf.nurls;
}

/* Try r on the next endpoint, each endpoint once.  0 if under way. */
static int retry_next(req_t *r)
{
	stop(r);
	endpoint_failed(r);
	if (++r->tries >= r->e->conf.nurls)
		return -1;
	r->ep = (r->ep + 1) % r->e->conf.nurls;
	return start(r);
}

/* The token was refused: forget it and try r once more with a new one.  0 if under way. */
static int retry_token(req_t *r)
{
	etcd_t *e = r->e;
	stop(r);
	r->reauthed = true;
	etcd__secret_free(e->token);
	e->token = NULL;
	return start(r);
}

static void deliver_pending(req_t *r)
{
	/* The caller may cancel the watch or free the client from its callback. */
	for (size_t i = 0; i < r->npending && !r->canceled && !r->e->free_deferred; i++) {
		r->delivered = true;
		r->wcb(0, &r->pending[i], r->arg);
	}
	for (size_t j = 0; j < r->npending; j++)
		etcd_watch_msg_clear(&r->pending[j]);
	r->npending = 0;
}

/* r ends: its callback once with err, then r is freed. */
static void finish(req_t *r, int err)
{
	req_unlink(r);
	stop(r);
	snprintf(r->e->last_error, sizeof(r->e->last_error), "%s",
		 err == -ECANCELED ? "canceled"
		 : r->why[0]	   ? r->why
				   : etcd_strerror(err));
	if (r->kind == REQ_WATCH) {
		if (err != -ECANCELED)
			deliver_pending(r);
		r->wcb(err, NULL, r->arg);
	} else if (r->kind == REQ_CALL) {
		r->cb(err, NULL, r->arg);
	}
	req_free(r);
}

/* The authentication ended: the requests waiting for it go on with the new token, or end. */
static void auth_done(etcd_t *e, int err)
{
	e->auth = NULL;
	/* Callbacks may end or add requests: walk from the head after each. */
	for (;;) {
		req_t *r = e->reqs;
		while (r && !r->waiting)
			r = r->next;
		if (!r || e->free_deferred)
			break;
		r->waiting = false;
		int ret = err;
		if (ret == 0) {
			/* Start where the authentication succeeded: the others failed it. */
			if (r->tries == 0)
				r->ep = e->cur;
			ret = start(r);
		}
		if (ret) {
			snprintf(r->why, sizeof(r->why), "%s", e->auth_why);
			finish(r, ret);
		}
	}
}

static void auth_end(req_t *a, CURLcode rc, long status)
{
	etcd_t *e = a->e;
	json_t *reply;
	bool next;
	int err = etcd__outcome(e->conf.urls[a->ep], rc, status, a->data, a->len, a->errbuf, &reply,
				&next, e->auth_why, sizeof(e->auth_why));
	if (err == 0) {
		const json_t *tok = json_object_get(reply, "token");
		etcd__secret_free(e->token);
		e->token = json_is_string(tok) ? strdup(json_string_value(tok)) : NULL;
		json_decref(reply);
		if (!e->token) {
			snprintf(e->auth_why, sizeof(e->auth_why),
				 "%s: authentication answered without a token",
				 e->conf.urls[a->ep]);
			err = -EPROTO;
		}
	}
	if (err && next && retry_next(a) == 0)
		return;
	if (err == 0)
		e->cur = a->ep;
	req_unlink(a);
	req_free(a);
	auth_done(e, err);
}

static void call_end(req_t *r, CURLcode rc, long status)
{
	etcd_t *e = r->e;
	json_t *reply;
	bool next;
	int err = etcd__outcome(e->conf.urls[r->ep], rc, status, r->data, r->len, r->errbuf, &reply,
				&next, r->why, sizeof(r->why));
	if (err == 0) {
		req_unlink(r);
		stop(r);
		r->cb(0, reply, r->arg);
		json_decref(reply);
		req_free(r);
		return;
	}
	if (err == ETCD_EAUTH && e->conf.user && !r->reauthed && etcd__why_token_stale(r->why) &&
	    retry_token(r) == 0)
		return;
	if (next && retry_next(r) == 0)
		return;
	finish(r, err);
}

static void watch_end(req_t *r, CURLcode rc, long status)
{
	etcd_t *e = r->e;
	int err = r->end_err;
	if (err == 0 && rc == CURLE_OK && status == 200) {
		err = ETCD_EUNAVAIL;
		snprintf(r->why, sizeof(r->why), "%s: the watch stream ended", e->conf.urls[r->ep]);
	} else if (err == 0 && rc == CURLE_OK) {
		err = -EPROTO;
		snprintf(r->why, sizeof(r->why), "%s: HTTP status %ld", e->conf.urls[r->ep],
			 status);
	} else if (err == 0) {
		err = ETCD_EUNAVAIL;
		snprintf(r->why, sizeof(r->why), "%s: %s", e->conf.urls[r->ep],
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
	}
	bool next = err == ETCD_EUNAVAIL || err == -EPROTO || err == -EMSGSIZE;
	/* Before the first message nothing was seen: the watch may start again elsewhere.  After
	 * it, the caller resumes from the revision it applied, on the endpoint moved to here. */
	bool fresh = !r->delivered && r->npending == 0;
	if (fresh && err == ETCD_EAUTH && e->conf.user && !r->reauthed &&
	    etcd__why_token_stale(r->why) && retry_token(r) == 0)
		return;
	if (next && fresh && retry_next(r) == 0)
		return;
	if (next)
		endpoint_failed(r);
	finish(r, err);
}

/* Reads the finished transfers, then hands the watches' decoded messages to the caller. */
static void process(etcd_t *e)
{
	CURLMsg *m;
	int left;
	e->depth++;
	while (!e->free_deferred && (m = curl_multi_info_read(e->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		/* m dies with the transfer's removal: take what is needed first. */
		CURLcode rc = m->data.result;
		req_t *r = NULL;
		long status = 0;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (r->canceled)
			finish(r, -ECANCELED);
		else if (r->kind == REQ_AUTH)
			auth_end(r, rc, status);
		else if (r->kind == REQ_CALL)
			call_end(r, rc, status);
		else
			watch_end(r, rc, status);
	}
again:
	for (req_t *r = e->reqs; r && !e->free_deferred; r = r->next) {
		if (r->canceled) {
			finish(r, -ECANCELED);
			goto again;
		}
		if (r->npending) {
			deliver_pending(r);
			goto again;
		}
	}
	e->depth--;
	if (e->depth == 0 && e->free_deferred)
		etcd_free(e);
}

/* ---- the interface ---- */

int etcd_new(uv_loop_t *loop, const etcd_conf_t *conf, etcd_t **out)
{
	*out = NULL;
	etcd_t *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	int ret = etcd__conf_copy(&e->conf, conf);
	if (ret) {
		free(e);
		return ret;
	}
	/* Not thread-safe before libcurl 7.84: gslbd starts the cluster thread from main(). */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	e->loop = loop;
	e->multi = curl_multi_init();
	if (!e->multi) {
		etcd__conf_deinit(&e->conf);
		free(e);
		return -ENOMEM;
	}
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
	uv_timer_init(loop, &e->timer);
	e->timer.data = e;
	e->handles = 1;
	*out = e;
	return 0;
}

void etcd_free(etcd_t *e)
{
	if (!e || e->freeing)
		return;
	/* From a callback of process(): process() frees the client when it is done. */
	if (e->depth > 0) {
		e->free_deferred = true;
		return;
	}
	e->freeing = true;
	e->depth++;
	while (e->reqs) {
		req_t *r = e->reqs;
		if (r->kind == REQ_AUTH) {
			req_unlink(r);
			req_free(r);
			e->auth = NULL;
			continue;
		}
		finish(r, -ECANCELED);
	}
	e->depth--;
	/* The polls are closed here rather than from libcurl's callbacks while it cleans up. */
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, NULL);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, NULL);
	while (e->polls)
		poll_drop(e->polls);
	curl_multi_cleanup(e->multi);
	e->multi = NULL;
	etcd__secret_free(e->token);
	e->token = NULL;
	uv_timer_stop(&e->timer);
	uv_close((uv_handle_t *)&e->timer, handle_closed);
}

static req_t *req_new(etcd_t *e, enum req_kind kind, const char *path, json_t *body)
{
	req_t *r;
	if (kind == REQ_WATCH) {
		etcd_watch_t *w = calloc(1, sizeof(*w));
		r = w ? &w->r : NULL;
	} else {
		r = calloc(1, sizeof(*r));
	}
	if (!r)
		goto fail;
	r->e = e;
	r->kind = kind;
	r->ep = e->cur;
	r->path = strdup(path);
	r->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!r->path || !r->body) {
		free(r->path);
		free(r->body);
		free(kind == REQ_WATCH ? (void *)container_of(r, etcd_watch_t, r) : (void *)r);
		r = NULL;
	}
fail:
	json_decref(body);
	return r;
}

/* Starts r; a failure to start (memory) is returned, without the callback. */
static int req_go(req_t *r)
{
	req_link(r);
	int ret = start(r);
	if (ret) {
		req_unlink(r);
		req_free(r);
	}
	return ret;
}

int etcd_call(etcd_t *e, const char *path, json_t *body, etcd_cb cb, void *arg)
{
	if (e->freeing || e->free_deferred) {
		json_decref(body);
		return -ECANCELED;
	}
	req_t *r = req_new(e, REQ_CALL, path, body);
	if (!r)
		return -ENOMEM;
	r->cb = cb;
	r->arg = arg;
	return req_go(r);
}

int etcd_watch(etcd_t *e, json_t *body, etcd_watch_cb cb, void *arg, etcd_watch_t **out)
{
	*out = NULL;
	if (e->freeing || e->free_deferred) {
		json_decref(body);
		return -ECANCELED;
	}
	req_t *r = req_new(e, REQ_WATCH, "/v3/watch", body);
	if (!r)
		return -ENOMEM;
	r->wcb = cb;
	r->arg = arg;
	int ret = req_go(r);
	if (ret == 0)
		*out = container_of(r, etcd_watch_t, r);
	return ret;
}

void etcd_watch_cancel(etcd_watch_t *w)
{
	req_t *r = &w->r;
	etcd_t *e = r->e;
	/* Inside process() the loop there finishes it once the current callback returns. */
	if (e->depth > 0) {
		r->canceled = true;
		return;
	}
	e->depth++;
	finish(r, -ECANCELED);
	e->depth--;
	if (e->depth == 0 && e->free_deferred)
		etcd_free(e);
}

const char *etcd_error(const etcd_t *e)
{
	return e->last_error;
}

const char *etcd_endpoint(const etcd_t *e)
{
	return e->conf.urls[e->cur];
}

void etcd_endpoint_next(etcd_t *e)
{
	e->cur = (e->cur + 1) % e->conf.nurls;
}
