/* SPDX-License-Identifier: MIT */
/* The control loop: binds the listeners, loads zones into snapshots, swaps them on reload, stops workers. */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <net/if.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "gslb/core.h"
#include "gslb/zone.h"
#include "internal.h"

/* An editor saves in several writes (temp file, rename, chmod): one reload after they settle. */
#define RELOAD_DEBOUNCE_MS 200

/*
 * The main thread's state while the server runs.  Only the control loop
 * touches it; cur is the snapshot it last published, the one it passes
 * to zone_load_dir() as the previous version on a reload.
 */
typedef struct control {
	uv_loop_t loop;
	uv_signal_t sig_hup;
	uv_signal_t sig_term;
	uv_signal_t sig_int;
	uv_fs_event_t watch;
	uv_timer_t debounce;
	bool watching;
	const server_conf_t *conf;
	gslb_snapshot_t *cur;
	uint64_t generation;
	worker_t *workers;
	unsigned nworkers;
	bool stopping;
} control_t;

int server_listen_parse(server_listen_t *l, const char *text, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *port = "53";
	size_t hlen;
	bool v6 = text[0] == '[';

	memset(l, 0, sizeof(*l));
	if (v6) {
		const char *end = strchr(text, ']');
		if (!end) {
			snprintf(err, errlen, "'%s': missing ']' after an IPv6 address", text);
			return -EINVAL;
		}
		hlen = (size_t)(end - text - 1);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			goto bad;
		text++;
	} else {
		const char *colon = strchr(text, ':');
		if (colon && strchr(colon + 1, ':')) {
			snprintf(err, errlen, "'%s': write an IPv6 address as [ADDR]:PORT", text);
			return -EINVAL;
		}
		hlen = colon ? (size_t)(colon - text) : strlen(text);
		if (colon)
			port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, text, hlen);
	host[hlen] = '\0';

	char *end;
	errno = 0;
	unsigned long p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p < 1 || p > 65535 || port[0] == '-' || port[0] == '+') {
		snprintf(err, errlen, "'%s': the port must be a number in 1-65535", port);
		return -EINVAL;
	}
	if (!v6) {
		/* inet_pton, not getaddrinfo: "1.2.3" must not become 1.2.0.3. */
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			snprintf(err, errlen, "'%s' is not an IPv4 address", host);
			return -EINVAL;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		l->addr_len = sizeof(*sin);
	} else {
		/* getaddrinfo for IPv6: it understands scope ids (fe80::1%eth0). */
		struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
					  .ai_family = AF_INET6,
					  .ai_socktype = SOCK_DGRAM };
		struct addrinfo *ai = NULL;
		if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
			snprintf(err, errlen, "'%s' is not an IPv6 address", host);
			return -EINVAL;
		}
		memcpy(&l->addr, ai->ai_addr, ai->ai_addrlen);
		l->addr_len = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	if (l->addr.ss_family == AF_INET6)
		snprintf(l->text, sizeof(l->text), "[%s]:%lu", host, p);
	else
		snprintf(l->text, sizeof(l->text), "%s:%lu", host, p);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not ADDR:PORT or [ADDR6]:PORT", text);
	return -EINVAL;
}

/* The same names zone_load_dir() skips: their changes never need a reload. */
static bool watch_ignored(const char *name)
{
	static const char *const suffixes[] = { "~", ".swp", ".swx", ".tmp", ".bak" };
	size_t n = strlen(name);
	if (name[0] == '.')
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t l = strlen(suffixes[i]);
		if (n >= l && strcmp(name + n - l, suffixes[i]) == 0)
			return true;
	}
	return strstr(name, ".dpkg-") != NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Make snap (zones taken over) the one workers answer from.  The old one
 * is freed once every worker has passed a quiescent state, so no query
 * still reads it.
 */
static void snapshot_publish(control_t *ctl, zone_set_t *zones)
{
	gslb_snapshot_t *snap = gslb_calloc(1, sizeof(*snap));
	snap->zones = zones;
	snap->generation = ++ctl->generation;
	snap->built_ms = now_ms();
	gslb_snapshot_t *old = rcu_xchg_pointer(&server_snap, snap);
	ctl->cur = snap;
	if (old) {
		synchronize_rcu();
		gslb_snapshot_free(old);
	}
}

static void reload(control_t *ctl, const char *why)
{
	zone_set_t *zones = NULL;
	unsigned failed = 0;

	log_debug("reloading zones (%s)", why);
	int ret = zone_load_dir(ctl->conf->zones_dir, ctl->cur ? ctl->cur->zones : NULL, &zones,
				&failed);
	if (ret < 0) {
		log_err("reload failed: cannot read zone directory %s: %s; still serving %u zones",
			ctl->conf->zones_dir, gslb_strerror(ret),
			ctl->cur ? ctl->cur->zones->count : 0);
		return;
	}
	snapshot_publish(ctl, zones);
	log_info("reloaded: %u zones (%u failed)", zones->count, failed);
}

static void debounce_cb(uv_timer_t *t)
{
	reload(t->data, "zone directory changed");
}

static void watch_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
	control_t *ctl = h->data;
	(void)events;
	if (status < 0) {
		log_warn("watching zone directory %s: %s", ctl->conf->zones_dir,
			 gslb_strerror(status));
		return;
	}
	if (filename && watch_ignored(filename))
		return;
	log_debug("zone directory: %s changed", filename ? filename : "a file");
	uv_timer_start(&ctl->debounce, debounce_cb, RELOAD_DEBOUNCE_MS, 0);
}

static void control_close(control_t *ctl)
{
	uv_close((uv_handle_t *)&ctl->sig_hup, NULL);
	uv_close((uv_handle_t *)&ctl->sig_term, NULL);
	uv_close((uv_handle_t *)&ctl->sig_int, NULL);
	uv_close((uv_handle_t *)&ctl->debounce, NULL);
	uv_close((uv_handle_t *)&ctl->watch, NULL);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	control_t *ctl = s->data;
	if (signum == SIGHUP) {
		uv_timer_stop(&ctl->debounce);
		reload(ctl, "SIGHUP");
		return;
	}
	if (ctl->stopping)
		return;
	ctl->stopping = true;
	log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	/* Workers stop accepting, finish the TCP answers under way and return from uv_run. */
	for (unsigned i = 0; i < ctl->nworkers; i++)
		server_worker_stop(&ctl->workers[i]);
	for (unsigned i = 0; i < ctl->nworkers; i++)
		server_worker_deinit(&ctl->workers[i]);
	control_close(ctl);
}

/* Drop root after binding: supplementary groups, then group, then user (the order matters). */
static int privileges_drop(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_err("--user %s: no such user", user);
		return -ENOENT;
	}
	if (geteuid() == pw->pw_uid && getegid() == pw->pw_gid)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		int ret = -errno;
		log_err("cannot switch to user %s: %s", user, gslb_strerror(ret));
		return ret;
	}
	return 0;
}

/* Each worker's sockets: fds[(t * nlisten + i) * 2] is UDP, + 1 is TCP. */
static int listeners_bind(const server_conf_t *conf, int *fds)
{
	size_t n = conf->nlisten;
	int ret;

	/*
	 * SO_REUSEPORT would let a second gslbd (same user) share the port and
	 * steal half the queries.  Binding each address once without it first
	 * makes "already in use" a start-up error, as users expect.
	 */
	for (size_t i = 0; i < n; i++) {
		const server_listen_t *l = &conf->listen[i];
		for (int k = 0; k < 2; k++) {
			int fd = server_socket_bind(l, k ? SOCK_STREAM : SOCK_DGRAM, false);
			if (fd < 0) {
				log_err("cannot listen on %s: %s", l->text, gslb_strerror(fd));
				return fd;
			}
			close(fd);
		}
	}
	for (unsigned t = 0; t < conf->threads; t++) {
		for (size_t i = 0; i < n; i++) {
			const server_listen_t *l = &conf->listen[i];
			int *slot = &fds[(t * n + i) * 2];
			ret = server_udp_open(l);
			if (ret >= 0) {
				slot[0] = ret;
				ret = server_tcp_open(l);
				if (ret >= 0)
					slot[1] = ret;
			}
			if (ret < 0) {
				log_err("cannot listen on %s: %s", l->text, gslb_strerror(ret));
				return ret;
			}
		}
	}
	return 0;
}

int server_check_config(const char *zones_dir)
{
	zone_set_t *zones = NULL;
	unsigned failed = 0;
	int ret = zone_load_dir(zones_dir, NULL, &zones, &failed);
	if (ret < 0) {
		log_err("cannot read zone directory %s: %s", zones_dir, gslb_strerror(ret));
		return 1;
	}
	if (failed)
		log_err("check-config: %u zones loaded, %u failed", zones->count, failed);
	else
		log_info("check-config: %u zones loaded, no problems", zones->count);
	zone_set_free(zones);
	return failed ? 1 : 0;
}

int server_run(const server_conf_t *conf)
{
	control_t ctl = { .conf = conf };
	size_t nfds = (size_t)conf->threads * conf->nlisten * 2;
	int *fds = gslb_malloc((nfds ? nfds : 1) * sizeof(*fds));
	int status = 1;
	unsigned failed = 0;
	zone_set_t *zones = NULL;
	bool loop_ready = false;

	for (size_t i = 0; i < nfds; i++)
		fds[i] = -1;
	if (listeners_bind(conf, fds) < 0)
		goto out;
	if (conf->user && privileges_drop(conf->user) < 0)
		goto out;

	/* Zones are read as the user gslbd runs as, so a reload can read what start-up could. */
	int ret = zone_load_dir(conf->zones_dir, NULL, &zones, &failed);
	if (ret < 0) {
		log_err("cannot read zone directory %s: %s", conf->zones_dir, gslb_strerror(ret));
		goto out;
	}
	if (zones->count == 0)
		log_warn("no zones in %s: every query will be refused", conf->zones_dir);
	snapshot_publish(&ctl, zones);

	ctl.workers = gslb_calloc(conf->threads, sizeof(*ctl.workers));
	for (unsigned t = 0; t < conf->threads; t++) {
		int udp[conf->nlisten], tcp[conf->nlisten];
		for (size_t i = 0; i < conf->nlisten; i++) {
			int *slot = &fds[(t * conf->nlisten + i) * 2];
			udp[i] = slot[0];
			tcp[i] = slot[1];
			slot[0] = slot[1] = -1; /* handed over */
		}
		ctl.nworkers = t + 1;
		ret = server_worker_init(&ctl.workers[t], t, conf, udp, tcp);
		if (ret < 0) {
			log_err("cannot start worker %u: %s", t, gslb_strerror(ret));
			goto out;
		}
	}
	for (unsigned t = 0; t < conf->threads; t++) {
		ret = server_worker_start(&ctl.workers[t]);
		if (ret < 0) {
			log_err("cannot start worker thread %u: %s", t, gslb_strerror(ret));
			goto out;
		}
	}

	ret = uv_loop_init(&ctl.loop);
	if (ret < 0) {
		log_err("cannot create the control loop: %s", gslb_strerror(ret));
		goto out;
	}
	loop_ready = true;
	uv_signal_t *sigs[] = { &ctl.sig_hup, &ctl.sig_term, &ctl.sig_int };
	const int signums[] = { SIGHUP, SIGTERM, SIGINT };
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		uv_signal_init(&ctl.loop, sigs[i]);
		sigs[i]->data = &ctl;
		uv_signal_start(sigs[i], signal_cb, signums[i]);
	}
	uv_timer_init(&ctl.loop, &ctl.debounce);
	ctl.debounce.data = &ctl;
	uv_fs_event_init(&ctl.loop, &ctl.watch);
	ctl.watch.data = &ctl;
	ret = uv_fs_event_start(&ctl.watch, watch_cb, conf->zones_dir, 0);
	if (ret < 0)
		log_warn("cannot watch zone directory %s (%s): reload with SIGHUP",
			 conf->zones_dir, gslb_strerror(ret));

	char where[1024];
	size_t off = 0;
	where[0] = '\0';
	for (size_t i = 0; i < conf->nlisten && off < sizeof(where); i++)
		off += (size_t)snprintf(where + off, sizeof(where) - off, "%s%s", i ? ", " : "",
					conf->listen[i].text);
	log_info("gslbd %s: serving %u zones on %s with %u threads", PACKAGE_VERSION,
		 ctl.cur->zones->count, where, conf->threads);

	uv_run(&ctl.loop, UV_RUN_DEFAULT);
	status = 0;
out:
	if (!ctl.stopping) {
		/* A start-up failure after some workers were set up. */
		for (unsigned i = 0; i < ctl.nworkers; i++)
			server_worker_stop(&ctl.workers[i]);
		for (unsigned i = 0; i < ctl.nworkers; i++)
			server_worker_deinit(&ctl.workers[i]);
	}
	free(ctl.workers);
	if (loop_ready) {
		if (!ctl.stopping)
			control_close(&ctl);
		uv_run(&ctl.loop, UV_RUN_DEFAULT);
		uv_loop_close(&ctl.loop);
	}
	/* Every worker has been joined: nobody reads the snapshot any more. */
	gslb_snapshot_free(rcu_xchg_pointer(&server_snap, NULL));
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return status;
}
