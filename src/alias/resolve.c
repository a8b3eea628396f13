/* SPDX-License-Identifier: MIT */
/*
 * Alias members' host names resolved with c-ares on the control thread's libuv loop (README
 * "Alias members").
 *
 * Everything here runs on the one loop the resolver was made with: c-ares says which sockets
 * to watch (sock_state_cb: one uv_poll_t each, a poll_t in r->polls) and the loop hands their
 * events back (ares_process_fd()); one uv_timer_t runs c-ares' own timeouts.  Each distinct
 * name is one entry_t, however many members use it, with its own uv_timer_t for its next
 * resolution.  An entry's life:
 *
 *   alias_resolver_want()   timer          both answers in      timer
 *   --------------------> WANTED ----> RESOLVING ----------> WANTED ----> ...
 *                            |              |
 *                            | no longer wanted (alias_resolver_want())
 *                            v              v
 *                          GONE: out of the table, timer closed; freed by entry_put() once
 *                          the timer's close callback has run and no query of it is in flight
 *
 * A resolution is an A and an AAAA query.  It succeeds when either family answers with
 * addresses, or one does and the other says it has none (NOERROR, no answer); a family that
 * failed then keeps its previous addresses.  It fails on a timeout, SERVFAIL, NXDOMAIN, or no
 * address of either family: the last good addresses stay, and it is tried again after
 * ALIAS_RETRY_MS.  After a good one the name is resolved again when its shortest TTL (bounded
 * to ALIAS_TTL_MIN_S-ALIAS_TTL_MAX_S) runs out, earlier by a random 0-10 % so that names with
 * equal TTLs drift apart; the first one after a name is wanted is put at a random point of its
 * TTL, so names wanted together (at start-up, in one apply) spread over it from then on.
 */
#include "gslb/alias.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gslb/core.h"

/* c-ares' per-try timeout and tries: a dead resolver is known in about 3 s (1 s, then 2 s). */
#define QUERY_TIMEOUT_MS 1000
#define QUERY_TRIES 2

enum fam_status {
	FAM_NONE = 0, /* no answer yet */
	FAM_OK,	      /* addresses */
	FAM_NODATA,   /* the name exists, with no address of this family */
	FAM_FAILED,   /* timeout, SERVFAIL, NXDOMAIN ... */
};

typedef struct entry {
	alias_name_t pub;
	char *name; /* owned; pub.name */
	struct alias_resolver *r;
	struct entry *next; /* hash chain */
	uv_timer_t timer;   /* the next resolution */
	bool gone;	    /* out of the table: freed by entry_put() */
	bool timer_closed;
	bool first;	 /* no resolution since it was wanted: the next is spread over its TTL */
	unsigned flight; /* queries in flight (two while resolving) */
	uint64_t due;	 /* uv_now() the next resolution is meant to start at */
	/* The resolution in flight, one per family (0: IPv4, 1: IPv6). */
	enum fam_status st[2];
	int ttl[2];
	char why[2][48];
	alias_addr_t got[2][ALIAS_ADDRS_MAX];
	size_t ngot[2];
	bool cut_said; /* a longer RRset than ALIAS_ADDRS_MAX was logged */
} entry_t;

typedef struct poll {
	uv_poll_t h;
	ares_socket_t fd;
	struct alias_resolver *r;
	struct poll *next;
} poll_t;

struct alias_resolver {
	uv_loop_t *loop;
	alias_conf_t conf;
	ares_channel channel;
	bool channel_ready;
	uv_timer_t timer; /* c-ares' timeouts */
	poll_t *polls;
	entry_t **slots; /* hash of the wanted names, chained */
	uint32_t mask;
	size_t nentries;
	unsigned handles; /* handles not yet closed: r is freed when the last one is */
	bool freeing;
	uint64_t rng[2];
};

static void timer_arm(struct alias_resolver *r);

static void resolver_unref(struct alias_resolver *r)
{
	if (--r->handles == 0 && r->freeing) {
		free(r->slots);
		free(r);
	}
}

/* ---- c-ares on the loop ---- */

static void poll_closed_cb(uv_handle_t *h)
{
	poll_t *p = h->data;
	struct alias_resolver *r = p->r;
	free(p);
	resolver_unref(r);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	poll_t *p = h->data;
	struct alias_resolver *r = p->r;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
	/* An error on the socket is c-ares' to see: it reads and gets it. */
	if (status < 0 || (events & UV_READABLE))
		rfd = p->fd;
	if (events & UV_WRITABLE)
		wfd = p->fd;
	ares_process_fd(r->channel, rfd, wfd);
	timer_arm(r);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct alias_resolver *r = data;
	poll_t **pp = &r->polls, *p;
	for (; (p = *pp); pp = &p->next)
		if (p->fd == fd)
			break;
	if (!readable && !writable) {
		if (!p)
			return;
		/* c-ares closes the socket after this: the handle must not watch it any more. */
		*pp = p->next;
		uv_poll_stop(&p->h);
		uv_close((uv_handle_t *)&p->h, poll_closed_cb);
		return;
	}
	if (!p) {
		p = gslb_calloc(1, sizeof(*p));
		p->fd = fd;
		p->r = r;
		if (uv_poll_init_socket(r->loop, &p->h, fd) < 0) {
			log_err("alias: cannot watch a resolver socket");
			free(p);
			return;
		}
		p->h.data = p;
		r->handles++;
		p->next = r->polls;
		r->polls = p;
	}
	uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), poll_cb);
}

static void timeout_cb(uv_timer_t *t)
{
	struct alias_resolver *r = t->data;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_arm(r);
}

/* c-ares' next timeout on the loop's timer; none while no query is in flight. */
static void timer_arm(struct alias_resolver *r)
{
	struct timeval tv, *next = ares_timeout(r->channel, NULL, &tv);
	if (!next) {
		uv_timer_stop(&r->timer);
		return;
	}
	uint64_t ms = (uint64_t)next->tv_sec * 1000 + (uint64_t)(next->tv_usec + 999) / 1000;
	uv_timer_start(&r->timer, timeout_cb, ms, 0);
}

/* ---- entries ---- */

static entry_t **slot_of(const struct alias_resolver *r, const char *name)
{
	return &r->slots[gslb_hash(name, strlen(name)) & r->mask];
}

static entry_t *entry_find(const struct alias_resolver *r, const char *name)
{
	for (entry_t *e = *slot_of(r, name); e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* Free a gone entry once nothing refers to it: its timer closed, no query in flight. */
static void entry_put(entry_t *e)
{
	if (!e->gone || !e->timer_closed || e->flight)
		return;
	struct alias_resolver *r = e->r;
	free(e->pub.addrs);
	free(e->name);
	free(e);
	resolver_unref(r);
}

static void entry_timer_closed_cb(uv_handle_t *h)
{
	entry_t *e = h->data;
	e->timer_closed = true;
	entry_put(e);
}

/* A random delay in [ms - ms * pct / 100, ms]. */
static uint64_t jitter(struct alias_resolver *r, uint64_t ms, unsigned pct)
{
	uint64_t span = ms * pct / 100;
	return ms - (span ? gslb_rand(r->rng) % (span + 1) : 0);
}

static void entry_timer_cb(uv_timer_t *t);

/*
 * The next resolution at due (uv_now() milliseconds), at once when that is
 * past.  Kept in e->due: the one after it is counted from there, not from
 * when the timer fired, so that names whose timers fire together because the
 * loop was busy (a slow database write) do not stay together.
 */
static void entry_schedule(entry_t *e, uint64_t due)
{
	uint64_t now = uv_now(e->r->loop);
	e->due = due;
	uv_timer_start(&e->timer, entry_timer_cb, due > now ? due - now : 0, 0);
}

/* ---- a resolution ---- */

static int addr_cmp(const void *a, const void *b)
{
	const alias_addr_t *x = a, *y = b;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

static void reason(char *dst, size_t len, int status)
{
	const char *s;
	switch (status) {
	case ARES_ETIMEOUT:
		s = "timeout";
		break;
	case ARES_ESERVFAIL:
		s = "SERVFAIL";
		break;
	case ARES_ENOTFOUND:
		s = "NXDOMAIN";
		break;
	case ARES_EREFUSED:
		s = "REFUSED";
		break;
	case ARES_ECONNREFUSED:
		s = "connection refused";
		break;
	case ARES_ENODATA:
		s = "no address";
		break;
	default:
		s = ares_strerror(status);
		break;
	}
	snprintf(dst, len, "%s", s);
}

/*
 * Both answers are in: the addresses served from now on, the state, the
 * next resolution, the callback.
 */
static void resolution_end(entry_t *e)
{
	struct alias_resolver *r = e->r;
	alias_name_t *n = &e->pub;
	int64_t now = gslb_wall_ms() / 1000;
	bool any = e->st[0] == FAM_OK || e->st[1] == FAM_OK;
	bool answered = (e->st[0] == FAM_OK || e->st[0] == FAM_NODATA) &&
			(e->st[1] == FAM_OK || e->st[1] == FAM_NODATA);

	n->resolutions++;
	if (!any) {
		/* Timeout, SERVFAIL, NXDOMAIN, or no address of either family. */
		const char *why = e->st[0] == FAM_FAILED   ? e->why[0]
				  : e->st[1] == FAM_FAILED ? e->why[1]
							   : "no address";
		snprintf(n->error, sizeof(n->error), "%s", why);
		n->error_s = now;
		n->failures++;
		if (!n->failing) {
			/* Once per change of state: every retry of one outage would flood the log. */
			if (n->good)
				log_warn("alias %s: cannot resolve (%s); keeping its last %zu "
					 "addresses, trying again every %d s",
					 n->name, why, n->naddrs, ALIAS_RETRY_MS / 1000);
			else
				log_warn("alias %s: cannot resolve (%s); its members have no "
					 "address from it until it resolves",
					 n->name, why);
		}
		n->failing = true;
		entry_schedule(e, uv_now(r->loop) + jitter(r, ALIAS_RETRY_MS, 10));
		r->conf.resolved(r->conf.arg, n, false);
		return;
	}
	/* A family that failed while the other answered keeps what it had. */
	alias_addr_t next[2 * ALIAS_ADDRS_MAX];
	size_t k = 0;
	int ttl = ALIAS_TTL_MAX_S;
	for (int f = 0; f < 2; f++) {
		uint8_t fam = f ? 6 : 4;
		if (e->st[f] == FAM_OK) {
			memcpy(next + k, e->got[f], e->ngot[f] * sizeof(next[0]));
			k += e->ngot[f];
			if (e->ttl[f] < ttl)
				ttl = e->ttl[f];
		} else if (e->st[f] == FAM_FAILED) {
			for (size_t i = 0; i < n->naddrs; i++)
				if (n->addrs[i].family == fam)
					next[k++] = n->addrs[i];
		}
	}
	gslb_sort(next, k, sizeof(next[0]), addr_cmp);
	bool changed = !n->good || k != n->naddrs ||
		       (k && memcmp(next, n->addrs, k * sizeof(next[0])) != 0);
	if (changed) {
		free(n->addrs);
		n->addrs = k ? gslb_malloc(k * sizeof(next[0])) : NULL;
		if (k)
			memcpy(n->addrs, next, k * sizeof(next[0]));
		n->naddrs = k;
	}
	if (ttl < ALIAS_TTL_MIN_S)
		ttl = ALIAS_TTL_MIN_S;
	if (n->failing)
		log_info("alias %s: resolves again (%zu addresses, after %u failures)", n->name, k,
			 n->failures);
	else if (!answered)
		log_debug("alias %s: one family failed (%s), its previous addresses kept", n->name,
			  e->st[0] == FAM_FAILED ? e->why[0] : e->why[1]);
	n->good = true;
	n->failing = false;
	n->failures = 0;
	n->resolved_s = now;
	n->expires_s = now + ttl;
	uint64_t ms = (uint64_t)ttl * 1000;
	if (e->first) {
		/*
		 * Anywhere in the mean period of the resolutions that follow
		 * (95 % of the TTL, below): names wanted together (at start-up, in
		 * one apply) are spread evenly over it from then on.
		 */
		ms = gslb_rand(r->rng) % (ms * 95 / 100 + 1);
		e->first = false;
	} else {
		/*
		 * Earlier by 0-10 %: the answers of the next resolution come before
		 * these addresses expire, and equal TTLs do not stay in step.
		 */
		ms = jitter(r, ms, 10);
	}
	/*
	 * From the time this resolution was meant to start: never later than
	 * its answers came, so the next starts before they expire.
	 */
	entry_schedule(e, e->due + ms);
	r->conf.resolved(r->conf.arg, n, changed);
}

static void answer_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen, int f)
{
	entry_t *e = arg;
	(void)timeouts;
	e->flight--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || e->gone) {
		entry_put(e);
		return;
	}
	e->st[f] = FAM_FAILED;
	e->ngot[f] = 0;
	if (status == ARES_SUCCESS) {
		struct ares_addrttl a4[ALIAS_ADDRS_MAX + 1];
		struct ares_addr6ttl a6[ALIAS_ADDRS_MAX + 1];
		int n = ALIAS_ADDRS_MAX + 1;
		status = f ? ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n)
			   : ares_parse_a_reply(abuf, alen, NULL, a4, &n);
		if (status == ARES_SUCCESS && n > 0) {
			if (n > ALIAS_ADDRS_MAX) {
				if (!e->cut_said)
					log_warn("alias %s: more than %d IPv%d addresses, the "
						 "first %d are used",
						 e->name, ALIAS_ADDRS_MAX, f ? 6 : 4,
						 ALIAS_ADDRS_MAX);
				e->cut_said = true;
				n = ALIAS_ADDRS_MAX;
			}
			int ttl = INT32_MAX;
			for (int i = 0; i < n; i++) {
				alias_addr_t *a = &e->got[f][i];
				memset(a, 0, sizeof(*a));
				a->family = f ? 6 : 4;
				if (f)
					memcpy(a->addr, &a6[i].ip6addr, 16);
				else
					memcpy(a->addr, &a4[i].ipaddr, 4);
				int t = f ? a6[i].ttl : a4[i].ttl;
				if (t < ttl)
					ttl = t;
			}
			e->ngot[f] = (size_t)n;
			e->ttl[f] = ttl;
			e->st[f] = FAM_OK;
		} else if (status == ARES_SUCCESS || status == ARES_ENODATA) {
			e->st[f] = FAM_NODATA;
		}
	} else if (status == ARES_ENODATA) {
		e->st[f] = FAM_NODATA;
	}
	if (e->st[f] == FAM_FAILED)
		reason(e->why[f], sizeof(e->why[f]), status);
	if (e->flight == 0)
		resolution_end(e);
}

static void answer4_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	answer_cb(arg, status, timeouts, abuf, alen, 0);
}

static void answer6_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	answer_cb(arg, status, timeouts, abuf, alen, 1);
}

static void entry_timer_cb(uv_timer_t *t)
{
	entry_t *e = t->data;
	struct alias_resolver *r = e->r;
	if (e->flight)
		return; /* still resolving: its end schedules the next */
	e->st[0] = e->st[1] = FAM_NONE;
	/*
	 * Both in flight before either is sent: c-ares may call back at once
	 * (a refused socket), and the resolution ends with the second answer.
	 */
	e->flight = 2;
	ares_query(r->channel, e->name, 1 /* IN */, 1 /* A */, answer4_cb, e);
	ares_query(r->channel, e->name, 1 /* IN */, 28 /* AAAA */, answer6_cb, e);
	timer_arm(r);
}

/* ---- the interface ---- */

int alias_resolver_new(uv_loop_t *loop, const alias_conf_t *conf, alias_resolver_t **out)
{
	static bool lib_ready;
	*out = NULL;
	if (!lib_ready) {
		int st = ares_library_init(ARES_LIB_INIT_ALL);
		if (st != ARES_SUCCESS) {
			log_err("alias: cannot initialise c-ares: %s", ares_strerror(st));
			return -ENOMEM;
		}
		lib_ready = true;
	}
	struct alias_resolver *r = gslb_calloc(1, sizeof(*r));
	r->loop = loop;
	r->conf = *conf;
	r->mask = 1023;
	r->slots = gslb_calloc(r->mask + 1, sizeof(*r->slots));
	uint64_t seed = (uint64_t)gslb_wall_ms() ^ ((uint64_t)(uintptr_t)r << 16);
	r->rng[0] = seed | 1;
	r->rng[1] = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;

	struct ares_options opts = {
		.timeout = QUERY_TIMEOUT_MS,
		.tries = QUERY_TRIES,
		.sock_state_cb = sock_state_cb,
		.sock_state_cb_data = r,
	};
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
	int st = ares_init_options(&r->channel, &opts, mask);
	if (st != ARES_SUCCESS) {
		log_err("alias: cannot set up the resolver: %s", ares_strerror(st));
		free(r->slots);
		free(r);
		return -EIO;
	}
	r->channel_ready = true;
	if (conf->servers) {
		st = ares_set_servers_ports_csv(r->channel, conf->servers);
		if (st != ARES_SUCCESS) {
			log_err("alias: resolvers %s: %s", conf->servers, ares_strerror(st));
			ares_destroy(r->channel);
			free(r->slots);
			free(r);
			return -EINVAL;
		}
	}
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	r->handles = 1;
	*out = r;
	return 0;
}

static void resolver_timer_closed_cb(uv_handle_t *h)
{
	resolver_unref(h->data);
}

/* Out of the table: its timer closed, freed once its queries are answered or cancelled. */
static void entry_drop(entry_t *e)
{
	e->gone = true;
	e->r->nentries--;
	uv_close((uv_handle_t *)&e->timer, entry_timer_closed_cb);
}

void alias_resolver_free(alias_resolver_t *r)
{
	if (!r)
		return;
	r->freeing = true;
	for (uint32_t i = 0; i <= r->mask; i++) {
		entry_t *e = r->slots[i];
		r->slots[i] = NULL;
		while (e) {
			entry_t *next = e->next;
			entry_drop(e);
			e = next;
		}
	}
	/* Every query still in flight is called back with ARES_EDESTRUCTION. */
	if (r->channel_ready)
		ares_destroy(r->channel);
	r->channel_ready = false;
	for (poll_t *p = r->polls, *next; p; p = next) {
		next = p->next;
		uv_poll_stop(&p->h);
		uv_close((uv_handle_t *)&p->h, poll_closed_cb);
	}
	r->polls = NULL;
	uv_close((uv_handle_t *)&r->timer, resolver_timer_closed_cb);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void alias_resolver_want(alias_resolver_t *r, const char *const *names, size_t n)
{
	const char **sorted = gslb_calloc(n ? n : 1, sizeof(*sorted));
	if (n)
		memcpy(sorted, names, n * sizeof(*sorted));
	gslb_sort(sorted, n, sizeof(*sorted), name_cmp);
	/* Those no longer wanted go first: their answers would change nothing served. */
	for (uint32_t i = 0; i <= r->mask; i++)
		for (entry_t **pe = &r->slots[i], *e; (e = *pe);) {
			if (bsearch(&e->name, sorted, n, sizeof(*sorted), name_cmp)) {
				pe = &e->next;
				continue;
			}
			log_debug("alias %s: no member uses it any more", e->name);
			*pe = e->next;
			entry_drop(e);
		}
	for (size_t i = 0; i < n; i++) {
		if ((i && strcmp(sorted[i], sorted[i - 1]) == 0) || entry_find(r, sorted[i]))
			continue;
		entry_t *e = gslb_calloc(1, sizeof(*e));
		e->name = gslb_strdup(sorted[i]);
		e->pub.name = e->name;
		e->r = r;
		e->first = true;
		uv_timer_init(r->loop, &e->timer);
		e->timer.data = e;
		r->handles++;
		entry_t **slot = slot_of(r, e->name);
		e->next = *slot;
		*slot = e;
		r->nentries++;
		entry_schedule(e, uv_now(r->loop));
	}
	free(sorted);
}

void alias_resolver_seed(alias_resolver_t *r, const char *name, const alias_addr_t *addrs,
			 size_t naddrs, int64_t resolved_s, int64_t expires_s)
{
	entry_t *e = entry_find(r, name);
	if (!e || e->pub.good)
		return;
	alias_name_t *n = &e->pub;
	if (naddrs > 2 * ALIAS_ADDRS_MAX)
		naddrs = 2 * ALIAS_ADDRS_MAX;
	n->addrs = naddrs ? gslb_malloc(naddrs * sizeof(*addrs)) : NULL;
	if (naddrs)
		memcpy(n->addrs, addrs, naddrs * sizeof(*addrs));
	gslb_sort(n->addrs, naddrs, sizeof(*addrs), addr_cmp);
	n->naddrs = naddrs;
	n->good = true;
	n->resolved_s = resolved_s;
	n->expires_s = expires_s;
	int64_t left_ms = (expires_s - gslb_wall_ms() / 1000) * 1000;
	if (left_ms > 0 && !e->flight)
		entry_schedule(e, uv_now(r->loop) + gslb_rand(r->rng) % (uint64_t)left_ms);
}

const alias_name_t *alias_resolver_find(const alias_resolver_t *r, const char *name)
{
	const entry_t *e = r ? entry_find(r, name) : NULL;
	return e ? &e->pub : NULL;
}

const char *alias_addr_text(const alias_addr_t *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

int alias_server_parse(const char *text, char *out, size_t outlen, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL;
	uint8_t bin[16];
	int fam;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || (end[1] && end[1] != ':') || (size_t)(end - text - 1) >= sizeof(host))
			goto bad;
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		port = end[1] ? end + 2 : NULL;
		fam = AF_INET6;
	} else {
		const char *colon = strchr(text, ':');
		if (colon && strchr(colon + 1, ':')) {
			snprintf(err, errlen, "'%s': an IPv6 resolver is written [ADDR]:PORT",
				 text);
			return -EINVAL;
		}
		size_t n = colon ? (size_t)(colon - text) : strlen(text);
		if (n >= sizeof(host))
			goto bad;
		memcpy(host, text, n);
		host[n] = '\0';
		port = colon ? colon + 1 : NULL;
		fam = AF_INET;
	}
	if (inet_pton(fam, host, bin) != 1)
		goto bad;
	unsigned long p = 53;
	if (port) {
		char *end;
		if (!*port || *port < '0' || *port > '9')
			goto bad;
		p = strtoul(port, &end, 10);
		if (*end || p < 1 || p > 65535)
			goto bad;
	}
	if (fam == AF_INET6)
		snprintf(out, outlen, "[%s]:%lu", host, p);
	else
		snprintf(out, outlen, "%s:%lu", host, p);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not ADDR[:PORT] or [ADDR6][:PORT]", text);
	return -EINVAL;
}
