/* SPDX-License-Identifier: MIT */
/*
 * Start-up and --check-config: the phases that take gslbd from its options
 * to serving, each undone in reverse order by the one clean-up path.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <net/if.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "gslb/cluster.h"
#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_cluster.h"
#include "gslb/lb.h"
#include "gslb/targets.h"
#include "gslb/zone.h"
#include "control.h"
#include "dnstap.h"

/* Health table slots: target indexes are stable for the life of the process. */
#define HEALTH_TARGETS_MAX 65536

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

/* Become user: supplementary groups, then group, then user (the order matters). */
static int user_become(const char *user)
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

/*
 * --check-config for the database: opened read-only (never created or
 * migrated), its configuration read and its pools placed in zones.  A
 * file start-up could not open gets start-up's message.  Returns the
 * number of problems that would stop gslbd or lose data.
 */
static unsigned check_db(const char *path, const zone_set_t *zones)
{
	db_t *db = NULL;
	db_config_t *cfg = NULL;
	unsigned problems = 0;
	int ret;

	/* What start-up checks first, as the same user, with the same message. */
	char why[1024];
	ret = db_access_check(path, why, sizeof(why));
	if (ret < 0) {
		log_err("cannot open database %s: %s", path, why);
		return 1;
	}
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		log_warn("database %s does not exist: gslbd will create it", path);
		return 0;
	}
	char err[256];
	int version = 0;
	int64_t generation = 0;
	ret = db_open(path, DB_OPEN_READONLY, &db);
	if (ret < 0) {
		log_err("cannot open database %s: %s", path, gslb_strerror(ret));
		problems++;
		goto out;
	}
	ret = db_version(db, &version);
	if (ret < 0) {
		problems++; /* logged by the db module, with the file's name */
		goto out;
	}
	if (version < DB_SCHEMA_VERSION) {
		/* Start-up migrates it; nothing to read here before that. */
		log_warn("database %s: schema version %d, gslbd will upgrade it to %d", path,
			 version, DB_SCHEMA_VERSION);
		goto out;
	}
	ret = server_config_read(db, -1, &generation, &cfg, err, sizeof(err));
	if (ret < 0) {
		log_err("database %s: %s", path, err);
		problems++;
		goto out;
	}
	lb_pool_t *pools = NULL;
	uint32_t unserved = 0;
	uint32_t n = lb_config_pools(cfg, NULL, &pools);
	lb_set_t *set = lb_set_new(pools, n, zones);
	for (uint32_t i = 0; i < n; i++)
		unserved += !set->pools[i]->served;
	log_info("check-config: database %s: %u pools (%u not served)", path, n, unserved);
	lb_set_free(set);
out:
	db_config_free(cfg);
	db_close(db);
	return problems;
}

/*
 * The geo file at start-up and for --check-config: opened once, a failure
 * reported in one line (the same for both, so one predicts the other).
 */
static int geo_open(const char *path, geo_db_t **geo)
{
	int ret = geo_db_open(path, geo);
	if (ret < 0)
		log_err("cannot open geo file %s: %s", path, gslb_strerror(ret));
	return ret;
}

/*
 * --check-config for --cluster: etcd is not contacted (it may be down while the node is fine),
 * but the TLS files libcurl reads, as --user, at each connection must be readable.
 */
static unsigned check_cluster(const cluster_conf_t *cc)
{
	const struct {
		const char *option, *path;
	} files[] = {
		{ "--cluster-ca-file", cc->etcd.ca_file },
		{ "--cluster-cert", cc->etcd.cert_file },
		{ "--cluster-key", cc->etcd.key_file },
	};
	unsigned problems = 0;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i].path && access(files[i].path, R_OK) < 0) {
			log_err("%s %s: %s", files[i].option, files[i].path, strerror(errno));
			problems++;
		}
	log_info("check-config: cluster node %s, prefix %s, %zu etcd URLs (not contacted)",
		 cc->node, cc->prefix, cc->etcd.nurls);
	return problems;
}

int server_check_config(const server_conf_t *conf)
{
	const char *zones_dir = conf->zones_dir, *db_path = conf->db_path, *geoip = conf->geoip;
	zone_set_t *zones = NULL;
	unsigned failed = 0;
	/* Start-up opens all of these as --user: so does the check. */
	if (conf->user && user_become(conf->user) < 0)
		return 1;
	int ret = zone_load_dir(zones_dir, NULL, &zones, &failed);
	if (ret < 0) {
		log_err("cannot read zone directory %s: %s", zones_dir, gslb_strerror(ret));
		return 1;
	}
	if (failed)
		log_err("check-config: %u zones loaded, %u failed", zones->count, failed);
	else
		log_info("check-config: %u zones loaded, no problems", zones->count);
	unsigned problems = db_path ? check_db(db_path, zones) : 0;
	zone_set_free(zones);
	if (geoip) {
		geo_db_t *geo = NULL;
		if (geo_open(geoip, &geo) < 0) {
			problems++;
		} else {
			geo_db_meta_t meta;
			geo_db_metadata(geo, &meta);
			log_info("check-config: geo file %s: %s, IPv%u", geoip, meta.database_type,
				 meta.ip_version);
			geo_db_close(geo);
		}
	}
	if (health_ca_check(conf->ca_file) < 0)
		problems++;
	if (server_cookies_check(conf->cookie_secret_file) < 0)
		problems++;
	if (conf->cluster)
		problems += check_cluster(conf->cluster);
	return failed || problems ? 1 : 0;
}

/* ---- start-up phases: each a start and, when it leaves something behind, a stop ---- */

/*
 * --tcp-clients connections need as many descriptors, and a few hundred
 * more for the rest: the soft limit is raised as far as the hard one
 * allows (systemd's unit sets both; a shell's soft limit is often 1024).
 */
static void files_limit_raise(const server_conf_t *conf)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)(conf->tcp_clients ? conf->tcp_clients : SERVER_TCP_CLIENTS_DEFAULT) +
		      512;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rlim_t old = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = old;
	if (rl.rlim_cur < want)
		log_warn("open files are limited to %llu: fewer than the %llu --tcp-clients needs "
			 "(raise LimitNOFILE= or ulimit -n)",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

/* Each worker's sockets: fds[(t * nlisten + i) * 2] is UDP, + 1 is TCP. */
static int listeners_bind(control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;
	size_t n = conf->nlisten;
	int ret;

	files_limit_raise(conf);
	ctl->nfds = (size_t)conf->threads * n * 2;
	ctl->fds = gslb_malloc((ctl->nfds ? ctl->nfds : 1) * sizeof(*ctl->fds));
	for (size_t i = 0; i < ctl->nfds; i++)
		ctl->fds[i] = -1;
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
			int *slot = &ctl->fds[(t * n + i) * 2];
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

/* The sockets the workers did not take over. */
static void listeners_close(control_t *ctl)
{
	for (size_t i = 0; i < ctl->nfds; i++)
		if (ctl->fds[i] >= 0)
			close(ctl->fds[i]);
	free(ctl->fds);
	ctl->fds = NULL;
	ctl->nfds = 0;
}

/* --metrics: bound with the DNS listeners, before dropping privileges: a clear start-up error. */
static int metrics_bind(control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;
	if (!conf->metrics)
		return 0;
	int fd = server_socket_bind(conf->metrics, SOCK_STREAM, false);
	if (fd < 0) {
		log_err("cannot serve metrics on %s: %s", conf->metrics->text, gslb_strerror(fd));
		return fd;
	}
	ctl->metrics_fd = fd;
	metrics_src_t src = { .workers = &ctl->workers,
			      .nworkers = &ctl->nworkers,
			      .cur = &ctl->cur,
			      .probes = &ctl->probes,
			      .reloads = &ctl->reloads,
			      .reload_failures = &ctl->reload_failures,
			      .cluster = &ctl->cluster,
			      .cfg = &ctl->cfg,
			      .alias = &ctl->alias };
	ctl->metrics = server_metrics_new(&src);
	return 0;
}

static void metrics_close(control_t *ctl)
{
	server_metrics_free(ctl->metrics);
	ctl->metrics = NULL;
	if (ctl->metrics_fd >= 0)
		close(ctl->metrics_fd);
	ctl->metrics_fd = -1;
}

/* Drop root after binding, to --user. */
static int privileges_drop(control_t *ctl)
{
	return ctl->conf->user ? user_become(ctl->conf->user) : 0;
}

/*
 * gslbctl on this database sends its changes to etcd when the settings of
 * --cluster are recorded there (never a password: the file's path); a node
 * started without --cluster removes them and is standalone again.
 */
static int cluster_settings_record(control_t *ctl)
{
	const db_cluster_settings_t *s = ctl->conf->cluster_settings;
	db_cluster_settings_t none = { 0 };
	if (!s || !ctl->conf->cluster)
		s = &none;
	int ret = db_begin_write(ctl->db);
	if (ret == 0)
		ret = db_cluster_settings_put(ctl->db, s);
	if (ret == 0)
		ret = db_commit(ctl->db);
	if (ret < 0) {
		db_rollback(ctl->db);
		log_err("database %s: cannot record the cluster settings: %s", ctl->conf->db_path,
			gslb_strerror(ret));
	}
	return ret;
}

/*
 * The database and the zones are opened as the user gslbd runs as, so
 * a reload can read what start-up could and a new database file
 * belongs to that user.  SQLite opens a file that user may not write
 * read-only without a word, and must create the -wal and -shm beside
 * it: what is in the way (file, -wal, -shm or directory) is said now,
 * with the user, rather than every health write failing later.
 */
static int database_open(control_t *ctl)
{
	const char *path = ctl->conf->db_path;
	char why[1024];

	int ret = db_access_check(path, why, sizeof(why));
	if (ret < 0) {
		log_err("cannot open database %s: %s", path, why);
		return ret;
	}
	ret = db_open(path, DB_OPEN_CREATE | DB_OPEN_WRITABLE, &ctl->db);
	if (ret < 0) {
		log_err("cannot open database %s: %s", path, gslb_strerror(ret));
		return ret;
	}
	/* On failure db_migrate() has logged why, with the file's name. */
	ret = server_schema_update(ctl->db, path, true);
	if (ret < 0)
		return ret;
	/*
	 * Two daemons on one file would both probe every target and store every result twice,
	 * with nothing to tell whose it was: the second one stops here, before it records anything.
	 */
	long holder;
	ret = db_claim(ctl->db, &holder);
	if (ret == -EBUSY) {
		char pid[32] = "";
		if (holder > 0)
			snprintf(pid, sizeof(pid), " (PID %ld)", holder);
		log_err("database %s is in use by another gslbd%s: give each gslbd its own --db; "
			"nameservers share one configuration through etcd (--cluster)",
			path, pid);
		return ret;
	}
	if (ret < 0) {
		log_err("cannot lock database %s: %s", path, gslb_strerror(ret));
		return ret;
	}
	return cluster_settings_record(ctl);
}

static void database_close(control_t *ctl)
{
	db_close(ctl->db);
	ctl->db = NULL;
}

/* Interface 3: a geo file that does not open stops start-up (a reload keeps the old). */
static int geo_file_open(control_t *ctl)
{
	return ctl->conf->geoip ? geo_open(ctl->conf->geoip, &ctl->geo) : 0;
}

static void geo_file_close(control_t *ctl)
{
	geo_db_close(ctl->geo);
	ctl->geo = NULL;
}

/* The health table, the target registry and the health-check thread. */
static int health_start(control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;

	ctl->health = lb_health_new(HEALTH_TARGETS_MAX);
	ctl->targets = server_targets_new(HEALTH_TARGETS_MAX);
	ctl->probes = health_loop_new(ctl->health, conf->db_path, conf->ca_file, conf->history_h);
	if (!ctl->probes)
		return -EIO; /* health_loop_new() has logged why */
	health_loop_set_cert_warn(ctl->probes, conf->cert_warn_days);
	if (conf->cluster) {
		/*
		 * The cluster thread makes the health loop a cluster node's before
		 * the loop starts; it serves nothing itself: answers come from the
		 * database at once, whether etcd answers or not.
		 */
		cluster_conf_t cc = *conf->cluster;
		cc.db_path = conf->db_path;
		cc.health = ctl->probes;
		cc.config_changed = server_cluster_changed;
		/* Without a secret file of its own, a node uses the cluster's (README). */
		cc.cookie_secret = conf->cookie_secret_file ? NULL : server_cluster_cookie;
		cc.arg = ctl;
		int ret = cluster_start(&cc, &ctl->cluster);
		if (ret < 0)
			return ret; /* cluster_start() has logged why */
	}
	int ret = health_loop_start(ctl->probes);
	if (ret < 0)
		log_err("cannot start the health checks: %s", gslb_strerror(ret));
	return ret;
}

static void health_stop(control_t *ctl)
{
	/*
	 * The health loop stops first, so no verdict goes to a cluster thread
	 * that is gone; then the cluster thread, which revokes the node's lease
	 * (its votes vanish from the other nodes at once) and may still hand votes
	 * to the stopped loop; then the loop is freed.
	 */
	if (ctl->probes)
		health_loop_stop(ctl->probes); /* flushes the probe results still queued */
	cluster_stop(ctl->cluster);
	ctl->cluster = NULL;
	if (ctl->probes) {
		health_loop_free(ctl->probes);
		ctl->probes = NULL;
	}
	server_targets_free(ctl->targets);
	ctl->targets = NULL;
	lb_health_free(ctl->health);
	ctl->health = NULL;
}

/* DNS Cookies' secrets, in every snapshot from the first on (as --user, as a SIGHUP reads them). */
static int cookies_start(control_t *ctl)
{
	return server_cookies_load(ctl, true);
}

/* The configuration and the zones, published as the first snapshot. */
static int snapshot_first(control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;
	zone_set_t *zones = NULL;
	unsigned failed = 0;

	int ret = server_config_first(ctl);
	if (ret < 0)
		return ret;
	ret = zone_load_dir(conf->zones_dir, NULL, &zones, &failed);
	if (ret < 0) {
		log_err("cannot read zone directory %s: %s", conf->zones_dir, gslb_strerror(ret));
		return ret;
	}
	if (zones->count == 0)
		log_warn("no zones in %s: every query will be refused", conf->zones_dir);
	/* Alias members serve their last good addresses from the first answer on. */
	server_alias_load(ctl);
	return server_snapshot_rebuild(ctl, SNAPSHOT_ZONES | SNAPSHOT_POOLS, zones);
}

/* Every worker has been joined: nobody reads the snapshot any more, no grace period to wait. */
static void snapshot_last(control_t *ctl)
{
	gslb_snapshot_free(rcu_xchg_pointer(&server_snap, NULL));
	ctl->cur = NULL;
	db_config_free(ctl->cfg);
	ctl->cfg = NULL;
	free(ctl->cfg_from);
	ctl->cfg_from = NULL;
	db_aliases_clear(&ctl->aliases);
}

/*
 * --threads UDP workers per address, each over its own socket, then
 * --threads TCP workers over a listener per address.
 */
static int workers_start(control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;
	unsigned nudp = conf->threads * (unsigned)conf->nlisten, nall = nudp + conf->threads;
	int ret;

	ctl->workers = gslb_calloc(nall, sizeof(*ctl->workers));
	for (unsigned t = 0; t < conf->threads; t++) {
		for (size_t i = 0; i < conf->nlisten; i++) {
			int *slot = &ctl->fds[(t * conf->nlisten + i) * 2];
			unsigned id = t * (unsigned)conf->nlisten + (unsigned)i;
			ctl->nworkers = id + 1;
			ret = server_worker_init_udp(&ctl->workers[id], id, conf, slot[0],
						     &conf->listen[i]);
			slot[0] = -1; /* handed over */
			if (ret < 0) {
				log_err("cannot start UDP worker %u: %s", id, gslb_strerror(ret));
				return ret;
			}
		}
	}
	for (unsigned t = 0; t < conf->threads; t++) {
		int tcp[conf->nlisten];
		for (size_t i = 0; i < conf->nlisten; i++) {
			int *slot = &ctl->fds[(t * conf->nlisten + i) * 2];
			tcp[i] = slot[1];
			slot[1] = -1; /* handed over */
		}
		ctl->nworkers = nudp + t + 1;
		ret = server_worker_init_tcp(&ctl->workers[nudp + t], t, conf, tcp);
		if (ret < 0) {
			log_err("cannot start TCP worker %u: %s", t, gslb_strerror(ret));
			return ret;
		}
	}
	/* --dnstap: worker i produces into ring i (started before the workers, stopped after). */
	if (conf->dnstap) {
		ret = server_dnstap_new(conf->dnstap, nall, &ctl->dnstap);
		if (ret < 0)
			return ret;
		for (unsigned t = 0; t < nall; t++)
			ctl->workers[t].tap = server_dnstap_ring(ctl->dnstap, t);
	}
	for (unsigned t = 0; t < nall; t++) {
		ret = server_worker_start(&ctl->workers[t]);
		if (ret < 0) {
			log_err("cannot start worker thread %u: %s", t, gslb_strerror(ret));
			return ret;
		}
	}
	return 0;
}

/* What the workers did, summed, for the log at exit. */
static void stats_log(const control_t *ctl)
{
	query_stats_t sum = { 0 };
	for (unsigned i = 0; i < ctl->nworkers; i++) {
		const query_stats_t *st = &ctl->workers[i].ctx.stats;
		sum.queries[QUERY_UDP] += st->queries[QUERY_UDP];
		sum.queries[QUERY_TCP] += st->queries[QUERY_TCP];
		sum.geo_cache_hits += st->geo_cache_hits;
		sum.geo_cache_misses += st->geo_cache_misses;
	}
	uint64_t located = sum.geo_cache_hits + sum.geo_cache_misses;
	log_info("answered %" PRIu64 " queries over UDP and %" PRIu64 " over TCP; "
		 "geo cache: %" PRIu64 " hits, %" PRIu64 " misses (%.1f%% hits)",
		 sum.queries[QUERY_UDP], sum.queries[QUERY_TCP], sum.geo_cache_hits,
		 sum.geo_cache_misses,
		 located ? 100.0 * (double)sum.geo_cache_hits / (double)located : 0.0);
}

/* The workers set up so far, stopped and joined; after SIGTERM or SIGINT, what they did, logged. */
static void workers_stop(control_t *ctl)
{
	/* Workers stop accepting, finish the TCP answers under way and return. */
	for (unsigned i = 0; i < ctl->nworkers; i++)
		server_worker_stop(&ctl->workers[i]);
	for (unsigned i = 0; i < ctl->nworkers; i++)
		server_worker_deinit(&ctl->workers[i]);
	if (ctl->stopping)
		stats_log(ctl);
	free(ctl->workers);
	ctl->workers = NULL;
	ctl->nworkers = 0;
	/* Every producer is joined: the writer writes what is left and stops. */
	server_dnstap_free(ctl->dnstap);
	ctl->dnstap = NULL;
}

/*
 * The phases of start-up, in order.  Each stop undoes its start, and is
 * called in reverse order for every phase started, the one that failed
 * included: a stop copes with a start that stopped halfway.
 */
static const struct phase {
	int (*start)(control_t *ctl);
	void (*stop)(control_t *ctl); /* NULL: nothing to undo */
} phases[] = {
	/* As the user gslbd was started as (root for port 53). */
	{ listeners_bind, listeners_close },
	{ metrics_bind, metrics_close },
	{ server_ctlsock_bind, server_ctlsock_unbind },
	{ privileges_drop, NULL },
	/* As --user from here on. */
	{ database_open, database_close },
	{ geo_file_open, geo_file_close },
	{ health_start, health_stop },
	{ cookies_start, NULL },
	{ snapshot_first, snapshot_last },
	/*
	 * The control loop, its signal handlers and --metrics come before
	 * the workers: once a worker answers, gslbd looks ready, so a SIGHUP
	 * must then reload, not kill it with the default action, and a
	 * scrape must find the metrics endpoint listening.
	 */
	{ server_control_start, server_control_stop },
	{ workers_start, workers_stop },
};

/* The line that says gslbd serves, once every phase has started. */
static void serving_log(const control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;
	char where[1024];
	size_t off = 0;

	where[0] = '\0';
	for (size_t i = 0; i < conf->nlisten && off < sizeof(where); i++)
		off += (size_t)snprintf(where + off, sizeof(where) - off, "%s%s", i ? ", " : "",
					conf->listen[i].text);
	log_info("gslbd %s: serving %u zones on %s; %u UDP threads per address, %u TCP threads",
		 PACKAGE_VERSION, ctl->cur->data.zones->count, where, conf->threads, conf->threads);
}

int server_run(const server_conf_t *conf)
{
	control_t ctl = { .conf = conf,
			  .metrics_fd = -1,
			  .control_fd = -1,
			  .wake_mu = PTHREAD_MUTEX_INITIALIZER };
	size_t started = 0;
	int ret = 0, status = 1;

	while (ret >= 0 && started < ARRAY_SIZE(phases))
		ret = phases[started++].start(&ctl);
	if (ret >= 0) {
		serving_log(&ctl);
		/* Every listener answers from here on: systemd may start what needs DNS. */
		server_notify(&ctl, SERVER_NOTIFY_READY);
		/* Until SIGTERM or SIGINT: signal_cb() stops the loop. */
		uv_run(&ctl.loop, UV_RUN_DEFAULT);
		status = 0;
	}
	while (started > 0) {
		const struct phase *p = &phases[--started];
		if (p->stop)
			p->stop(&ctl);
	}
	return status;
}
