/* SPDX-License-Identifier: MIT */
/*
 * The control socket (--control): a unix stream socket on which gslbctl
 * daemon asks the running gslbd for its status or a reload.
 *
 * The protocol (doc/ARCHITECTURE.md, "The control socket"): the client
 * sends one command, "status" or "reload", ended by a newline (or by
 * shutting down its side); gslbd answers with one JSON object on one line
 * and closes.  A request longer than REQUEST_MAX bytes, or one not
 * complete within REQUEST_TIMEOUT_MS, is answered with {"error": ...} or
 * closed; at most CLIENTS_MAX clients are served at once, the others are
 * closed at once.
 *
 * Everything here runs on the control loop (the main thread), so a status
 * reads control_t as its other callbacks do, with no lock.  A status is
 * built from memory (no database query); a reload is the one SIGHUP does,
 * on this loop, for as long as loading the zone directory takes.
 *
 * A client's life:
 *
 *   accept_cb()  READING --read_cb(): a line, or EOF--> ANSWERING --write_cb()--> CLOSING --> freed
 *                   |   (answer(): uv_write() of the reply)                         ^
 *                   +---timeout_cb(), a read error, too long a request--------------+
 *
 * client_close() closes both of its handles; the second close callback
 * frees it.
 */

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gslb/cfg.h"
#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/json.h"
#include "gslb/lb.h"
#include "gslb/zone.h"
#include "control.h"

/* The longest command line accepted, newline included. */
#define REQUEST_MAX 256
/* A client has this long to send its command, and then again to read the answer. */
#define REQUEST_TIMEOUT_MS 2000
/* Clients served at once; gslbctl opens one connection per command. */
#define CLIENTS_MAX 32
/* How often the health loop's probe counter is sampled for the probe lag. */
#define LAG_SAMPLE_MS 1000
/* How long start-up waits for an answer on a socket found at the path. */
#define PROBE_TIMEOUT_MS 1000

/*
 * The socket and its clients.  Allocated by server_ctlsock_bind() at
 * start-up, freed by server_ctlsock_unbind() once the loop has run the
 * closes server_ctlsock_stop() asked for.  Control thread only.
 */
typedef struct ctlsock {
	control_t *ctl;
	char *path;	   /* bound by this process: removed at exit */
	uv_pipe_t pipe;	   /* the listener, once server_ctlsock_start() took the fd */
	bool pipe_open;	   /* pipe initialised: closed by server_ctlsock_stop() */
	uv_timer_t sample; /* the probe lag sampler */
	bool sample_open;
	unsigned nclients;
	int64_t started_ms;	/* wall clock at start-up, for the uptime */
	uint64_t probes_seen;	/* the health loop's probe count at the last sample ... */
	uint64_t probe_seen_ms; /* ... and when it last moved (monotonic; 0: never) */
	struct client *clients; /* every client not yet freed, to close them at exit */
} ctlsock_t;

typedef struct client {
	uv_pipe_t pipe;
	uv_timer_t timer;
	uv_write_t write;
	ctlsock_t *cs;
	struct client *next, **prevp; /* in cs->clients */
	unsigned open_handles;	      /* 2 until client_close(); freed at 0 */
	bool closing;
	bool answered;
	bool draining; /* answered before the request ended: read the rest away, then close */
	uv_shutdown_t shutdown;
	size_t len;
	char buf[REQUEST_MAX + 1]; /* one byte more than allowed, to see a request too long */
	char *reply;		   /* owned, until the write completes */
} client_t;

/* ---- start-up ---- */

/*
 * Whether a process answers on the socket at path: connect and ask for its
 * status, to name its PID (*pid, 0 when it did not say).  1 when one
 * answers, 0 when the socket is stale (nobody listens), or a negative errno
 * value.
 */
static int socket_live(const char *path, long *pid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[4096];
	size_t n = 0;

	*pid = 0;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = errno;
		close(fd);
		return err == ECONNREFUSED ? 0 : -err;
	}
	/* It listens: its PID makes the message clearer, if it says within a second. */
	if (write(fd, "status\n", 7) == 7) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		while (n < sizeof(buf) - 1 && poll(&p, 1, PROBE_TIMEOUT_MS) > 0) {
			ssize_t got = read(fd, buf + n, sizeof(buf) - 1 - n);
			if (got <= 0)
				break;
			n += (size_t)got;
		}
	}
	buf[n] = '\0';
	const char *k = strstr(buf, "\"pid\":");
	if (k)
		*pid = strtol(k + 6, NULL, 10);
	close(fd);
	return 1;
}

/* The group of --user, given to the socket so operators in it can use gslbctl daemon. */
static int socket_group(const char *path, const char *user)
{
	if (!user)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_err("--user %s: no such user", user);
		return -ENOENT;
	}
	if (chown(path, (uid_t)-1, pw->pw_gid) < 0) {
		int ret = -errno;
		log_err("control socket %s: cannot give it group %u: %s", path,
			(unsigned)pw->pw_gid, gslb_strerror(ret));
		return ret;
	}
	return 0;
}

int server_ctlsock_bind(control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;
	const char *path = conf->control;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	long pid = 0;
	int ret;

	if (!path)
		return 0;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("control socket %s: the path is longer than %zu bytes", path,
			sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("control socket %s: a file that is not a socket is in the way",
				path);
			return -EEXIST;
		}
		ret = socket_live(path, &pid);
		if (ret > 0) {
			char who[32] = "";
			if (pid > 0)
				snprintf(who, sizeof(who), " (PID %ld)", pid);
			log_err("control socket %s: another gslbd%s answers on it: give each gslbd "
				"its own --control",
				path, who);
			return -EADDRINUSE;
		}
		if (ret < 0) {
			log_err("control socket %s: %s", path, gslb_strerror(ret));
			return ret;
		}
		/* Left by a gslbd that did not stop cleanly: nobody listens. */
		log_info("control socket %s: replacing a stale socket", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			ret = -errno;
			log_err("control socket %s: cannot remove the stale socket: %s", path,
				gslb_strerror(ret));
			return ret;
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		log_err("control socket %s: %s", path, gslb_strerror(ret));
		return ret;
	}
	/* Mode 0660 from the start: never a moment in which others may connect. */
	mode_t old = umask(0117);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old);
	if (ret < 0) {
		close(fd);
		if (conf->control_default && (ret == -ENOENT || ret == -EACCES)) {
			/*
			 * gslbd run by hand, without the unit's RuntimeDirectory: it
			 * serves all the same, and says so once it does (a start-up
			 * that fails has its one message).
			 */
			ctl->control_skipped = ret;
			return 0;
		}
		log_err("control socket %s: cannot bind: %s", path, gslb_strerror(ret));
		return ret;
	}
	ctlsock_t *cs = gslb_calloc(1, sizeof(*cs));
	cs->ctl = ctl;
	cs->path = gslb_strdup(path);
	cs->started_ms = gslb_wall_ms();
	ctl->ctlsock = cs;
	ctl->control_fd = fd;
	/*
	 * Listening from now on, so a second gslbd started meanwhile finds this
	 * one live rather than a stale socket to remove.
	 */
	if (listen(fd, CLIENTS_MAX) < 0) {
		ret = -errno;
		log_err("control socket %s: cannot listen: %s", path, gslb_strerror(ret));
		return ret;
	}
	if (chmod(path, 0660) < 0) {
		ret = -errno;
		log_err("control socket %s: cannot make it mode 0660: %s", path,
			gslb_strerror(ret));
		return ret;
	}
	return socket_group(path, conf->user);
}

void server_ctlsock_unbind(control_t *ctl)
{
	ctlsock_t *cs = ctl->ctlsock;
	if (ctl->control_fd >= 0)
		close(ctl->control_fd);
	ctl->control_fd = -1;
	if (!cs)
		return;
	/* As --user by now: its directory must let that user remove it (RuntimeDirectory does). */
	if (unlink(cs->path) < 0 && errno != ENOENT)
		log_warn("control socket %s: cannot remove it: %s", cs->path, strerror(errno));
	free(cs->path);
	free(cs);
	ctl->ctlsock = NULL;
}

/* ---- the answers ---- */

static void time_write(jw_t *w, int64_t unix_s)
{
	char buf[32];
	struct tm tm;
	time_t t = (time_t)unix_s;
	if (unix_s <= 0 || !gmtime_r(&t, &tm)) {
		jw_null(w);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	jw_str(w, buf);
}

/* Each zone served: its name, serial, file and when this version was read. */
static void zones_write(jw_t *w, const zone_set_t *zones)
{
	jw_arr_begin(w);
	for (uint32_t i = 0; zones && i < zones->count; i++) {
		const zone_t *z = zones->zones[i];
		char name[DNS_NAME_MAX * 4 + 1];
		dns_name_to_str(name, sizeof(name), z->apex);
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_str(w, name);
		jw_key(w, "serial");
		jw_int(w, z->serial);
		jw_key(w, "file");
		jw_str(w, z->file);
		jw_key(w, "loaded");
		time_write(w, z->loaded);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

/* The pools of the snapshot, served or not (with the reason, as gslbctl status gives it). */
static void pools_write(jw_t *w, const gslb_snapshot_t *snap)
{
	const lb_set_t *set = snap ? snap->data.pools : NULL;
	for (int served = 1; served >= 0; served--) {
		jw_key(w, served ? "served" : "not_served");
		jw_arr_begin(w);
		for (uint32_t i = 0; set && i < set->npools; i++) {
			const lb_pool_t *p = set->pools[i];
			if (p->served != served)
				continue;
			char name[DNS_NAME_MAX * 4 + 1];
			dns_name_to_str(name, sizeof(name), p->name);
			if (served) {
				jw_str(w, name);
				continue;
			}
			int why = lb_pool_serving(snap->data.zones, p->name, p->name_len, NULL);
			jw_obj_begin(w);
			jw_key(w, "name");
			jw_str(w, name);
			jw_key(w, "reason");
			jw_str(w, lb_serving_name(why));
			jw_obj_end(w);
		}
		jw_arr_end(w);
	}
}

static void count_cb(const char *key, bool up, void *arg)
{
	(void)key;
	(void)up;
	(*(size_t *)arg)++;
}

/* The probe counter, sampled: the lag is the time since it last moved. */
static void sample_cb(uv_timer_t *t)
{
	ctlsock_t *cs = t->data;
	if (!cs->ctl->probes)
		return;
	const health_stats_t *st = health_loop_stats(cs->ctl->probes);
	uint64_t n = atomic_load_explicit(&st->probes[0], memory_order_relaxed) +
		     atomic_load_explicit(&st->probes[1], memory_order_relaxed);
	if (n != cs->probes_seen || !cs->probe_seen_ms) {
		cs->probes_seen = n;
		cs->probe_seen_ms = gslb_mono_ms();
	}
}

static void health_write(jw_t *w, ctlsock_t *cs)
{
	control_t *ctl = cs->ctl;
	size_t ntargets = 0;
	health_store_stats_t store = { 0 };

	if (ctl->probes) {
		health_loop_targets_each(ctl->probes, count_cb, &ntargets);
		health_loop_store_stats(ctl->probes, &store);
	}
	sample_cb(&cs->sample);
	jw_obj_begin(w);
	jw_key(w, "targets");
	jw_int(w, (int64_t)ntargets);
	/* Seconds since a probe last finished: grows past the longest interval when probes stall. */
	jw_key(w, "probe_lag_s");
	if (ntargets && cs->probe_seen_ms)
		jw_double(w, (double)(gslb_mono_ms() - cs->probe_seen_ms) / 1000.0);
	else
		jw_null(w);
	jw_key(w, "probes");
	jw_int(w, (int64_t)cs->probes_seen);
	jw_key(w, "results_queued");
	jw_int(w, (int64_t)store.queued);
	jw_obj_end(w);
}

static void database_write(jw_t *w, const control_t *ctl)
{
	jw_obj_begin(w);
	jw_key(w, "path");
	jw_str(w, ctl->conf->db_path);
	jw_key(w, "generation");
	jw_int(w, ctl->cfg_generation);
	jw_key(w, "ok");
	jw_bool(w, !ctl->db_failed);
	jw_key(w, "error");
	jw_str(w, ctl->db_failed ? ctl->db_error : NULL);
	jw_obj_end(w);
}

static void cluster_write(jw_t *w, const control_t *ctl)
{
	cluster_stats_t st = { 0 };
	cluster_stats_get(ctl->cluster, &st);
	jw_obj_begin(w);
	jw_key(w, "node");
	jw_str(w, ctl->conf->cluster->node);
	jw_key(w, "connected");
	jw_bool(w, st.connected);
	jw_key(w, "revision");
	jw_int(w, st.applied_rev);
	jw_key(w, "nodes_live");
	jw_int(w, st.nodes_live);
	jw_key(w, "last_contact");
	time_write(w, st.last_contact_ms / 1000);
	jw_obj_end(w);
}

/*
 * Each alias member (README "Alias members"): its host name, the addresses
 * it resolved to with when they expire, and the failures since the last
 * good resolution.  An alias that never resolved has no addresses.
 */
static void aliases_write(jw_t *w, const control_t *ctl)
{
	const db_config_t *cfg = ctl->cfg;
	jw_arr_begin(w);
	for (size_t j = 0; cfg && j < cfg->npools; j++) {
		const db_pool_t *p = &cfg->pools[j];
		for (size_t k = 0; k < p->nmembers; k++) {
			const db_member_t *m = &p->members[k];
			if (!m->alias)
				continue;
			const db_alias_state_t *s = server_alias_state(ctl, m->alias);
			bool good = s && !s->never_resolved;
			jw_obj_begin(w);
			jw_key(w, "pool");
			jw_str(w, p->name);
			jw_key(w, "member");
			jw_str(w, m->name);
			jw_key(w, "alias");
			jw_str(w, m->alias);
			jw_key(w, "resolved");
			time_write(w, good ? s->resolved : 0);
			jw_key(w, "expires");
			time_write(w, good ? s->expires : 0);
			jw_key(w, "addresses");
			jw_arr_begin(w);
			for (uint32_t i = 0; good && i < s->naddresses; i++) {
				jw_obj_begin(w);
				jw_key(w, "address");
				jw_str(w, s->addresses[i]);
				jw_key(w, "expires");
				time_write(w, s->expires);
				jw_obj_end(w);
			}
			jw_arr_end(w);
			jw_key(w, "failures");
			jw_int(w, s ? s->failures : 0);
			jw_key(w, "error");
			jw_str(w, s && s->failures ? s->error : NULL);
			jw_obj_end(w);
		}
	}
	jw_arr_end(w);
}

static void status_write(jw_t *w, ctlsock_t *cs)
{
	control_t *ctl = cs->ctl;
	const server_conf_t *conf = ctl->conf;
	const gslb_snapshot_t *snap = ctl->cur;
	int64_t now_ms = gslb_wall_ms();

	jw_key(w, "pid");
	jw_int(w, (int64_t)getpid());
	jw_key(w, "version");
	jw_str(w, PACKAGE_VERSION);
	jw_key(w, "started");
	time_write(w, cs->started_ms / 1000);
	jw_key(w, "uptime_s");
	jw_int(w, (now_ms - cs->started_ms) / 1000);
	jw_key(w, "listeners");
	jw_arr_begin(w);
	for (size_t i = 0; i < conf->nlisten; i++)
		jw_str(w, conf->listen[i].text);
	jw_arr_end(w);
	jw_key(w, "threads");
	jw_int(w, conf->threads);
	jw_key(w, "metrics");
	jw_str(w, conf->metrics ? conf->metrics->text : NULL);
	jw_key(w, "control");
	jw_str(w, cs->path);
	jw_key(w, "zones_dir");
	jw_str(w, conf->zones_dir);
	jw_key(w, "zones");
	zones_write(w, snap ? snap->data.zones : NULL);
	jw_key(w, "pools");
	jw_obj_begin(w);
	pools_write(w, snap);
	jw_obj_end(w);
	jw_key(w, "snapshot");
	jw_obj_begin(w);
	jw_key(w, "generation");
	jw_int(w, snap ? (int64_t)snap->data.generation : 0);
	jw_key(w, "built");
	time_write(w, snap ? (int64_t)snap->built_ms / 1000 : 0);
	jw_key(w, "age_s");
	if (snap)
		jw_double(w, (double)(now_ms - (int64_t)snap->built_ms) / 1000.0);
	else
		jw_null(w);
	jw_obj_end(w);
	jw_key(w, "database");
	database_write(w, ctl);
	jw_key(w, "geoip");
	jw_str(w, conf->geoip);
	jw_key(w, "health");
	health_write(w, cs);
	jw_key(w, "reloads");
	jw_int(w, (int64_t)ctl->reloads);
	jw_key(w, "reload_failures");
	jw_int(w, (int64_t)ctl->reload_failures);
	jw_key(w, "cluster");
	if (conf->cluster && ctl->cluster)
		cluster_write(w, ctl);
	else
		jw_null(w);
	jw_key(w, "aliases");
	aliases_write(w, ctl);
}

/* A reload, as SIGHUP does it, and what it loaded and what failed. */
static void reload_write(jw_t *w, ctlsock_t *cs)
{
	control_t *ctl = cs->ctl;
	const server_conf_t *conf = ctl->conf;
	server_reload_report_t r = { 0 };

	server_control_reload(ctl, &r);
	bool ok = !r.dir_error && !r.nfailures && !r.geo && !r.cookies && !ctl->db_failed;
	jw_key(w, "ok");
	jw_bool(w, ok);
	jw_key(w, "zones_dir");
	jw_str(w, conf->zones_dir);
	jw_key(w, "zones_dir_error");
	jw_str(w, r.dir_error ? gslb_strerror(r.dir_error) : NULL);
	jw_key(w, "zones_served");
	jw_int(w, r.zones);
	jw_key(w, "zones");
	zones_write(w, ctl->cur ? ctl->cur->data.zones : NULL);
	jw_key(w, "zones_failed");
	jw_arr_begin(w);
	for (unsigned i = 0; i < r.nfailures; i++) {
		jw_obj_begin(w);
		jw_key(w, "file");
		jw_str(w, r.failures[i].file);
		jw_key(w, "error");
		jw_str(w, r.failures[i].error);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "database");
	database_write(w, ctl);
	jw_key(w, "geoip");
	jw_obj_begin(w);
	jw_key(w, "path");
	jw_str(w, conf->geoip);
	jw_key(w, "ok");
	jw_bool(w, !r.geo);
	jw_key(w, "error");
	jw_str(w, r.geo ? gslb_strerror(r.geo) : NULL);
	jw_obj_end(w);
	jw_key(w, "cookie_secret_file");
	jw_obj_begin(w);
	jw_key(w, "path");
	jw_str(w, conf->cookie_secret_file);
	jw_key(w, "ok");
	jw_bool(w, !r.cookies);
	jw_key(w, "error");
	jw_str(w, r.cookies ? gslb_strerror(r.cookies) : NULL);
	jw_obj_end(w);
	jw_key(w, "generation");
	jw_int(w, ctl->cur ? (int64_t)ctl->cur->data.generation : 0);
	server_reload_report_clear(&r);
}

/* The reply to one command line (without its newline), as one line of JSON; caller frees. */
static char *reply_make(ctlsock_t *cs, const char *cmd)
{
	char *text = NULL;
	size_t len = 0;
	jw_t w;

	FILE *f = cfg_mem_open(&text, &len);
	jw_init(&w, f);
	w.compact = true;
	jw_obj_begin(&w);
	if (strcmp(cmd, "status") == 0) {
		status_write(&w, cs);
	} else if (strcmp(cmd, "reload") == 0) {
		reload_write(&w, cs);
	} else {
		jw_key(&w, "error");
		char msg[REQUEST_MAX + 64];
		snprintf(msg, sizeof(msg), "unknown command '%s' (status, reload)", cmd);
		jw_str(&w, msg);
	}
	jw_obj_end(&w);
	jw_end(&w);
	cfg_mem_close(f);
	return text;
}

/* ---- the clients ---- */

static void client_closed_cb(uv_handle_t *h)
{
	client_t *c = h->data;
	if (--c->open_handles)
		return;
	*c->prevp = c->next;
	if (c->next)
		c->next->prevp = c->prevp;
	c->cs->nclients--;
	free(c->reply);
	free(c);
}

static void client_close(client_t *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->pipe, client_closed_cb);
	uv_close((uv_handle_t *)&c->timer, client_closed_cb);
}

static void timeout_cb(uv_timer_t *t)
{
	client_t *c = t->data;
	log_debug("control socket: a client %s in %d ms: closed",
		  c->answered ? "did not read its answer" : "sent no command", REQUEST_TIMEOUT_MS);
	client_close(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	if (status < 0)
		client_close(req->data);
	/* Else the client's end of the stream, or the timeout, closes it (read_cb()). */
}

static void write_cb(uv_write_t *req, int status)
{
	client_t *c = req->data;
	/*
	 * A client still sending would see its connection reset, perhaps before
	 * it read the answer, were the socket closed with its bytes unread: the
	 * end of the answer is signalled and the rest is read away first.
	 */
	if (status == 0 && c->draining && !c->closing) {
		c->shutdown.data = c;
		if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->pipe, shutdown_cb) == 0)
			return;
	}
	/* A client gone before reading its answer is closed all the same. */
	client_close(c);
}

static void answer(client_t *c, const char *reply_text, bool drain)
{
	if (!drain)
		uv_read_stop((uv_stream_t *)&c->pipe);
	c->draining = drain;
	c->answered = true;
	c->reply = gslb_strdup(reply_text);
	uv_buf_t b = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
	c->write.data = c;
	/* The answer gets its own time to be read: a reload may have taken most of the first. */
	uv_timer_start(&c->timer, timeout_cb, REQUEST_TIMEOUT_MS, 0);
	if (uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, write_cb) < 0)
		client_close(c);
}

static void command_run(client_t *c, char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	while (*line == ' ' || *line == '\t')
		line++;
	log_debug("control socket: %s", line);
	char *text = reply_make(c->cs, line);
	answer(c, text, false);
	free(text);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	client_t *c = h->data;
	(void)suggested;
	if (c->draining)
		c->len = 0; /* what comes after an answer is read into the same buffer, unused */
	*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	client_t *c = s->data;
	(void)buf;
	if (c->closing)
		return;
	if (c->answered) {
		if (nread < 0) /* the client's end of the stream, after its answer */
			client_close(c);
		return;
	}
	if (nread < 0) {
		/* A command ended by the end of the stream rather than a newline is one too. */
		if (nread == UV_EOF && c->len) {
			c->buf[c->len] = '\0';
			command_run(c, c->buf);
		} else {
			client_close(c);
		}
		return;
	}
	c->len += (size_t)nread;
	c->buf[c->len] = '\0';
	char *nl = memchr(c->buf, '\n', c->len);
	if (nl) {
		*nl = '\0';
		command_run(c, c->buf);
	} else if (c->len > REQUEST_MAX - 1) {
		char text[128];
		snprintf(text, sizeof(text),
			 "{\"error\":\"request longer than %d bytes (status, reload)\"}\n",
			 REQUEST_MAX - 1);
		answer(c, text, true);
	}
}

static void accept_cb(uv_stream_t *server, int status)
{
	ctlsock_t *cs = server->data;
	if (status < 0) {
		log_warn("control socket %s: %s", cs->path, gslb_strerror(status));
		return;
	}
	client_t *c = gslb_calloc(1, sizeof(*c));
	c->cs = cs;
	uv_pipe_init(server->loop, &c->pipe, 0);
	uv_timer_init(server->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->open_handles = 2;
	c->next = cs->clients;
	if (c->next)
		c->next->prevp = &c->next;
	c->prevp = &cs->clients;
	cs->clients = c;
	cs->nclients++;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		client_close(c);
		return;
	}
	if (cs->nclients > CLIENTS_MAX) {
		log_warn("control socket %s: more than %d clients at once: one refused", cs->path,
			 CLIENTS_MAX);
		client_close(c);
		return;
	}
	uv_timer_start(&c->timer, timeout_cb, REQUEST_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) < 0)
		client_close(c);
}

int server_ctlsock_start(control_t *ctl)
{
	ctlsock_t *cs = ctl->ctlsock;
	if (ctl->control_skipped)
		log_info("control socket %s: %s: serving without one (--control PATH sets another, "
			 "--control none turns it off)",
			 ctl->conf->control, gslb_strerror(ctl->control_skipped));
	if (!cs || ctl->control_fd < 0)
		return 0;
	uv_timer_init(&ctl->loop, &cs->sample);
	cs->sample.data = cs;
	cs->sample_open = true;
	uv_timer_start(&cs->sample, sample_cb, LAG_SAMPLE_MS, LAG_SAMPLE_MS);
	uv_pipe_init(&ctl->loop, &cs->pipe, 0);
	cs->pipe.data = cs;
	cs->pipe_open = true;
	int ret = uv_pipe_open(&cs->pipe, ctl->control_fd);
	if (ret == 0) {
		ctl->control_fd = -1; /* taken over */
		ret = uv_listen((uv_stream_t *)&cs->pipe, CLIENTS_MAX, accept_cb);
	}
	if (ret < 0)
		log_err("control socket %s: %s", cs->path, gslb_strerror(ret));
	return ret;
}

void server_ctlsock_stop(control_t *ctl)
{
	ctlsock_t *cs = ctl->ctlsock;
	if (!cs)
		return;
	for (client_t *c = cs->clients; c; c = c->next)
		client_close(c);
	if (cs->pipe_open)
		uv_close((uv_handle_t *)&cs->pipe, NULL);
	if (cs->sample_open)
		uv_close((uv_handle_t *)&cs->sample, NULL);
	cs->pipe_open = cs->sample_open = false;
}
