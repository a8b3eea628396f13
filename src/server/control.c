/* SPDX-License-Identifier: MIT */
/* The control loop: binds listeners, builds snapshots from zones and the database, swaps them. */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
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
#include "gslb/db.h"
#include "gslb/lb.h"
#include "gslb/zone.h"
#include "internal.h"
#include "gslb/targets.h"

/* A geo file is replaced in several steps (temp file, rename, chmod): one reload after them. */
#define RELOAD_DEBOUNCE_MS 200
/*
 * How often the database is asked whether another connection committed.
 * PRAGMA data_version is answered from the connection's own state (no
 * disk read in WAL mode beyond the shared-memory index), so polling is
 * cheap, and 200 ms keeps a change well inside the 1 s of interface 3.
 */
#define DB_POLL_MS 200
/* After a failed read, try again this often even without a new commit (a lock may clear). */
#define DB_RETRY_MS 5000
/* Health table slots: target indexes are stable for the life of the process. */
#define HEALTH_TARGETS_MAX 65536

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
	server_watch_t *zone_watch; /* the zone directory, owned; NULL when not watched */
	uv_timer_t db_poll;
	uv_fs_event_t geo_watch; /* --geoip's directory: a replace by rename is seen there */
	uv_timer_t geo_debounce;
	char *geo_dir; /* dirname and basename of --geoip, owned */
	char *geo_base;
	const server_conf_t *conf;
	gslb_snapshot_t *cur;
	lb_health_t *health;	 /* owned; every snapshot borrows it */
	health_loop_t *probes;	 /* the health-check thread, owned */
	target_reg_t *targets;	 /* key -> health table index, owned */
	uint64_t targets_digest; /* of the list last handed to probes */
	db_t *db;		 /* the control thread's own connection */
	geo_db_t *geo;		 /* --geoip, owned; every snapshot borrows it */
	db_config_t *cfg;	 /* the last configuration read without error, owned */
	int64_t data_version;	 /* PRAGMA data_version at the last read */
	int64_t cfg_generation;	 /* config_generation of cfg */
	bool db_failed;		 /* the last read failed */
	uint64_t db_tried_ms;	 /* when it was last read */
	char db_error[512];	 /* the error last logged, so each distinct one is logged once */
	bool db_gone;		 /* the file at --db was deleted (logged once) */
	db_file_id_t db_bad;	 /* a new file at --db that could not be opened ... */
	uint64_t db_bad_ms;	 /* ... when it was last tried */
	uint64_t generation;
	worker_t *workers;
	unsigned nworkers;
	bool stopping;
	server_metrics_t *metrics; /* --metrics: answer counter slots, owned; else NULL */
	metrics_http_t *http;	   /* --metrics: the endpoint, closed by control_close() */
	uint64_t reloads;	   /* reloads attempted after start-up, for the metrics */
	uint64_t reload_failures;  /* ... that failed wholly or in part */
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

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void gslb_snapshot_free(gslb_snapshot_t *s)
{
	if (!s)
		return;
	zone_set_free(s->data.zones);
	lb_set_free(s->data.pools);
	free(s);
}

/*
 * Make a snapshot of zones and pools (both taken over) the one workers
 * answer from.  The old one is freed once every worker has passed a
 * quiescent state, so no query still reads it.
 */
static void snapshot_publish(control_t *ctl, zone_set_t *zones, lb_set_t *pools)
{
	gslb_snapshot_t *snap = gslb_calloc(1, sizeof(*snap));
	snap->data.zones = zones;
	snap->data.pools = pools;
	snap->data.health = ctl->health;
	snap->data.geo = ctl->geo;
	snap->data.generation = ++ctl->generation;
	snap->built_ms = now_ms();
	snap->member_slots = server_metrics_assign(ctl->metrics, pools);
	gslb_snapshot_t *old = rcu_xchg_pointer(&server_snap, snap);
	ctl->cur = snap;
	if (old) {
		synchronize_rcu();
		gslb_snapshot_free(old);
		server_metrics_sweep(ctl->metrics);
	}
}

/*
 * A second set holding the same zones, for a snapshot in which only the
 * pools change.  Each snapshot owns its zone set (and frees it with the
 * snapshot); the zones themselves are shared by reference count, so this
 * costs one small hash table, not a zone reload.
 */
static zone_set_t *zones_share(const zone_set_t *src)
{
	zone_set_t *s = zone_set_new();
	for (uint32_t i = 0; i < src->count; i++)
		zone_set_add(s, src->zones[i]);
	zone_set_finish(s);
	return s;
}

/* A pool set of n pools (taken over) placed in zones, with the log line of interface 3. */
static lb_set_t *pools_place(lb_pool_t *pools, uint32_t n, const zone_set_t *zones)
{
	uint32_t unserved = 0;
	lb_set_t *set = lb_set_new(pools, n, zones);
	for (uint32_t i = 0; i < n; i++)
		unserved += !set->pools[i].served;
	log_info("pools: %u loaded (%u not served)", n, unserved);
	return set;
}

/*
 * Give the pools' addresses their health-check targets and hand the
 * health loop the new list when anything in it changed (interface 6:
 * one probe per distinct target, whatever the number of pools using it).
 */
static void targets_update(control_t *ctl, lb_pool_t *pools, uint32_t n)
{
	server_targets_t t;
	if (!ctl->targets || server_targets_assign(ctl->targets, ctl->cfg, pools, n, &t) < 0)
		return;
	if (ctl->probes && t.digest != ctl->targets_digest) {
		int ret = health_loop_set_targets(ctl->probes, t.t, t.n);
		if (ret < 0)
			log_err("health: cannot update the targets: %s", gslb_strerror(ret));
		else
			ctl->targets_digest = t.digest;
		log_info("health: %zu targets", t.n);
	}
	server_targets_clear(&t);
}

/* The pools of the last good configuration placed in zones. */
static lb_set_t *pools_build(control_t *ctl, const zone_set_t *zones)
{
	lb_pool_t *pools = NULL;
	uint32_t n = lb_config_pools(ctl->cfg, &pools);
	targets_update(ctl, pools, n);
	return pools_place(pools, n, zones);
}

/*
 * Interface 3: open --geoip again on a reload; a file that fails to open
 * keeps the previous one, and the failure is logged.  (At start-up a geo
 * file that does not open is fatal: server_run() opens the first one.)
 * Returns the database replaced, to be closed once no snapshot can be
 * using it.
 */
static geo_db_t *geo_refresh(control_t *ctl)
{
	geo_db_t *db = NULL, *old = ctl->geo;
	if (!ctl->conf->geoip)
		return NULL;
	int ret = geo_db_open(ctl->conf->geoip, &db);
	if (ret < 0) {
		log_err("geo file %s: %s; keeping the previous one", ctl->conf->geoip,
			gslb_strerror(ret));
		return NULL;
	}
	ctl->geo = db;
	return old;
}

/*
 * Load the zone directory again and publish it.  A reload the watch asked
 * for is thrown away when a zone file was written to while it ran: it may
 * have read that file half written, and the watch asks again once the file
 * is complete.  (SIGHUP loads what is there, whatever its state.)
 */
static void reload(control_t *ctl, const char *why, bool watched)
{
	zone_set_t *zones = NULL;
	unsigned failed = 0;

	log_debug("reloading zones (%s)", why);
	int ret = zone_load_dir(ctl->conf->zones_dir, ctl->cur ? ctl->cur->data.zones : NULL,
				&zones, &failed);
	if (watched && !server_watch_settled(ctl->zone_watch)) {
		log_debug("a zone file was written to while the directory was read: reading it "
			  "again once it is complete");
		zone_set_free(zones);
		return;
	}
	ctl->reloads++;
	if (ret < 0 || failed)
		ctl->reload_failures++;
	if (ret < 0) {
		log_err("reload failed: cannot read zone directory %s: %s; still serving %u zones",
			ctl->conf->zones_dir, gslb_strerror(ret),
			ctl->cur ? ctl->cur->data.zones->count : 0);
		return;
	}
	/* Whether a pool is served depends on the zones: place the pools again. */
	geo_db_t *old_geo = geo_refresh(ctl);
	snapshot_publish(ctl, zones, pools_build(ctl, zones));
	/* snapshot_publish() waited for a grace period: no query reads old_geo now. */
	geo_db_close(old_geo);
	log_info("reloaded: %u zones (%u failed)", zones->count, failed);
}

/* Log a database problem unless it is the one logged last time (the poll repeats it). */
static void db_problem(control_t *ctl, const char *what)
{
	if (strcmp(ctl->db_error, what) == 0)
		return;
	snprintf(ctl->db_error, sizeof(ctl->db_error), "%s", what);
	log_err("database %s: %s; keeping the last good configuration", ctl->conf->db_path, what);
}

/*
 * The configuration of db, if the file's schema is the one this build
 * reads and its generation is not known (in one read transaction, so the
 * generation is the configuration's).  Returns 1 with *cfg and *generation
 * set, 0 when the generation is known (*cfg NULL), or a negative code
 * with the reason in err (the caller decides how to log it).
 */
static int config_read(db_t *db, int64_t known, int64_t *generation, db_config_t **cfg, char *err,
		       size_t errlen)
{
	int version = 0;
	int ret;

	*cfg = NULL;
	ret = db_begin_read(db);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read: %s", gslb_strerror(ret));
		return ret;
	}
	ret = db_version(db, &version);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read the schema version: %s", gslb_strerror(ret));
		goto out;
	}
	if (version != DB_SCHEMA_VERSION) {
		/* Newer: written by a newer gslbctl; older: the file was replaced under us. */
		snprintf(err, errlen, "schema version %d, this gslbd reads version %d%s", version,
			 DB_SCHEMA_VERSION,
			 version < DB_SCHEMA_VERSION ? " (run gslbctl init)" : "");
		ret = GSLB_ECONFIG;
		goto out;
	}
	ret = db_config_generation(db, generation);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read the configuration generation: %s",
			 gslb_strerror(ret));
		goto out;
	}
	if (*generation == known)
		goto out;
	ret = db_config_load(db, cfg);
	if (ret < 0)
		snprintf(err, errlen, "cannot read the configuration: %s", gslb_strerror(ret));
	else
		ret = 1;
out:
	/* A read transaction has nothing to commit; ending it releases the snapshot. */
	db_rollback(db);
	return ret;
}

/*
 * Bring a database's schema up to this build's version, as start-up does
 * (a new file gets the whole schema).  Logged with the file's name.
 * Returns 0 or the code of db_migrate(), which has logged why.
 */
static int schema_update(db_t *db, const char *path, bool always)
{
	int from = 0, version = 0;

	/* A file already up to date needs no write lock (a reopen while gslbctl writes). */
	if (!always && db_version(db, &version) == 0 && version == DB_SCHEMA_VERSION)
		return 0;
	int ret = db_migrate(db, &from);
	if (ret < 0)
		return ret;
	if (from == 0)
		log_info("database %s: created (schema version %d)", path, DB_SCHEMA_VERSION);
	else if (from != DB_SCHEMA_VERSION)
		log_info("database %s: schema upgraded from version %d to %d", path, from,
			 DB_SCHEMA_VERSION);
	return 0;
}

/*
 * The database gslbd reads is the file at --db, not the one it opened: a
 * new file there (renamed over the old one, or deleted and made again) is
 * opened in place of the old one and its schema brought up to date, as at
 * start-up; the deletion of the file is logged, and the configuration last
 * read keeps being served.  A new file that cannot be used is logged once
 * and tried again every DB_RETRY_MS.  Returns true when ctl->db is a new
 * file's connection, whose configuration must be read whatever its
 * versions say.
 */
static bool db_follow(control_t *ctl)
{
	const char *path = ctl->conf->db_path;
	db_file_id_t id;
	char why[1024];

	int state = db_file_check(ctl->db, &id);
	if (state < 0) {
		log_debug("database %s: %s", path, gslb_strerror(state));
		return false;
	}
	if (state == DB_FILE_SAME) {
		if (ctl->db_gone)
			log_info("database %s: back at its path", path);
		ctl->db_gone = false;
		return false;
	}
	if (state == DB_FILE_DELETED) {
		if (!ctl->db_gone) {
			log_warn("database %s: deleted; answering from the configuration last read "
				 "until a database is at the path again",
				 path);
			/* Its -wal and -shm must not pair with a file made there later. */
			db_stale_remove(ctl->db);
		}
		ctl->db_gone = true;
		return false;
	}
	bool again = id.dev == ctl->db_bad.dev && id.ino == ctl->db_bad.ino;
	if (again && now_ms() - ctl->db_bad_ms < DB_RETRY_MS)
		return false;
	if (!again)
		log_info("database %s: %s (inode %" PRIu64 "); reading it", path,
			 ctl->db_gone ? "a new file is at the path" : "replaced by another file",
			 id.ino);
	int ret = db_access_check(path, why, sizeof(why));
	if (ret == 0) {
		ret = db_reopen(&ctl->db, DB_OPEN_WRITABLE);
		if (ret < 0)
			snprintf(why, sizeof(why), "%s", gslb_strerror(ret));
	}
	if (ret < 0) {
		if (!again)
			log_err("database %s: cannot open the new file: %s; keeping the last good "
				"configuration",
				path, why);
		ctl->db_bad = id;
		ctl->db_bad_ms = now_ms();
		return false;
	}
	ctl->db_gone = false;
	ctl->db_bad = (db_file_id_t){ 0, 0 };
	/* A failure is the read's to log: it keeps the last good configuration. */
	schema_update(ctl->db, path, false);
	return true;
}

/*
 * Read the configuration if another connection committed a change to it
 * since the last read.  Any commit moves data_version, the cheap test made
 * every poll; the health loop commits every second, so the configuration
 * generation then tells whether the configuration itself changed.  After a
 * failure it is read again on the next commit, or every DB_RETRY_MS (the db
 * module logs SQLite's message on each failed attempt, so not every poll).
 * Returns 1 when ctl->cfg was replaced, 0 when nothing changed, a negative
 * code when the database could not be read (ctl->cfg is then untouched and
 * the problem logged once).
 */
static int config_refresh(control_t *ctl)
{
	int64_t version = 0, generation = 0;
	db_config_t *cfg = NULL;
	uint64_t now = now_ms();
	/* Another file's versions and generations say nothing about this one's. */
	bool fresh = db_follow(ctl);

	int ret = db_data_version(ctl->db, &version);
	if (!fresh && ret == 0 && version == ctl->data_version && ctl->cfg &&
	    (!ctl->db_failed || now - ctl->db_tried_ms < DB_RETRY_MS))
		return 0;
	ctl->db_tried_ms = now;
	/*
	 * The version is read before the configuration: a commit in between
	 * makes the next poll read it again, never miss it.
	 */
	ctl->data_version = version;
	char err[256];
	if (ret == 0) {
		int64_t known = ctl->cfg && !ctl->db_failed && !fresh ? ctl->cfg_generation : -1;
		ret = config_read(ctl->db, known, &generation, &cfg, err, sizeof(err));
	} else {
		snprintf(err, sizeof(err), "cannot read: %s", gslb_strerror(ret));
	}
	if (ret < 0) {
		db_problem(ctl, err);
		if (!ctl->db_failed) {
			/* The retries of one failure are not counted again. */
			ctl->reloads++;
			ctl->reload_failures++;
		}
		ctl->db_failed = true;
		return ret;
	}
	if (ctl->db_failed)
		log_info("database %s: readable again", ctl->conf->db_path);
	ctl->db_failed = false;
	ctl->db_error[0] = '\0';
	if (ret == 0)
		return 0; /* only health data changed */
	log_debug("database %s: configuration generation %lld, reading it again",
		  ctl->conf->db_path, (long long)generation);
	ctl->reloads++;
	db_config_free(ctl->cfg);
	ctl->cfg = cfg;
	ctl->cfg_generation = generation;
	return 1;
}

static void db_poll_cb(uv_timer_t *t)
{
	control_t *ctl = t->data;
	if (config_refresh(ctl) <= 0)
		return;
	/*
	 * The configuration changed, yet the pools may not have (a member's
	 * check, a name not served): publish only when they really differ.
	 */
	lb_pool_t *pools = NULL;
	uint32_t n = lb_config_pools(ctl->cfg, &pools);
	targets_update(ctl, pools, n);
	const lb_set_t *cur = ctl->cur->data.pools;
	bool same = lb_pools_equal(pools, n, cur ? cur->pools : NULL, cur ? cur->npools : 0);
	if (same) {
		lb_pools_free(pools, n);
		log_debug("database changed, pools did not");
		return;
	}
	snapshot_publish(ctl, zones_share(ctl->cur->data.zones),
			 pools_place(pools, n, ctl->cur->data.zones));
}

static void zone_watch_cb(void *arg)
{
	reload(arg, "zone directory changed", true);
}

static void geo_debounce_cb(uv_timer_t *t)
{
	control_t *ctl = t->data;
	geo_db_t *old = geo_refresh(ctl);
	ctl->reloads++;
	if (ctl->cur->data.geo == ctl->geo) {
		ctl->reload_failures++;
		return; /* the new file failed to open: geo_refresh() said why */
	}
	/* Same zones and pools; only the snapshot's geo database changes. */
	snapshot_publish(ctl, zones_share(ctl->cur->data.zones),
			 pools_build(ctl, ctl->cur->data.zones));
	/* snapshot_publish() waited for a grace period: no query reads old now. */
	geo_db_close(old);
	log_info("geo file %s: reloaded", ctl->conf->geoip);
}

/*
 * Interface 3: the geo file is reloaded when it is replaced.  The
 * directory is watched, not the file: a rename puts a new inode under
 * the name, which a watch on the old inode would never report.
 */
static void geo_watch_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
	control_t *ctl = h->data;
	(void)events;
	if (status < 0) {
		log_warn("watching geo file directory %s: %s", ctl->geo_dir, gslb_strerror(status));
		return;
	}
	if (filename && strcmp(filename, ctl->geo_base) != 0)
		return;
	log_debug("geo file %s changed", ctl->conf->geoip);
	uv_timer_start(&ctl->geo_debounce, geo_debounce_cb, RELOAD_DEBOUNCE_MS, 0);
}

static void control_close(control_t *ctl)
{
	uv_close((uv_handle_t *)&ctl->sig_hup, NULL);
	uv_close((uv_handle_t *)&ctl->sig_term, NULL);
	uv_close((uv_handle_t *)&ctl->sig_int, NULL);
	uv_close((uv_handle_t *)&ctl->db_poll, NULL);
	server_watch_close(ctl->zone_watch);
	ctl->zone_watch = NULL;
	uv_close((uv_handle_t *)&ctl->geo_debounce, NULL);
	uv_close((uv_handle_t *)&ctl->geo_watch, NULL);
	server_http_close(ctl->http);
	ctl->http = NULL;
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

static void signal_cb(uv_signal_t *s, int signum)
{
	control_t *ctl = s->data;
	if (signum == SIGHUP) {
		reload(ctl, "SIGHUP", false);
		server_watch_reloaded(ctl->zone_watch);
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
	stats_log(ctl);
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
	ret = config_read(db, -1, &generation, &cfg, err, sizeof(err));
	if (ret < 0) {
		log_err("database %s: %s", path, err);
		problems++;
		goto out;
	}
	lb_pool_t *pools = NULL;
	uint32_t unserved = 0;
	uint32_t n = lb_config_pools(cfg, &pools);
	lb_set_t *set = lb_set_new(pools, n, zones);
	for (uint32_t i = 0; i < n; i++)
		unserved += !set->pools[i].served;
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

int server_check_config(const server_conf_t *conf)
{
	const char *zones_dir = conf->zones_dir, *db_path = conf->db_path, *geoip = conf->geoip;
	zone_set_t *zones = NULL;
	unsigned failed = 0;
	/* Start-up opens all of these as --user: so does the check. */
	if (conf->user && privileges_drop(conf->user) < 0)
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
	return failed || problems ? 1 : 0;
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
	int metrics_fd = -1;

	for (size_t i = 0; i < nfds; i++)
		fds[i] = -1;
	if (listeners_bind(conf, fds) < 0)
		goto out;
	if (conf->metrics) {
		/* Bound with the DNS listeners: before dropping privileges, a clear start-up error. */
		metrics_fd = server_socket_bind(conf->metrics, SOCK_STREAM, false);
		if (metrics_fd < 0) {
			log_err("cannot serve metrics on %s: %s", conf->metrics->text,
				gslb_strerror(metrics_fd));
			goto out;
		}
		metrics_src_t src = { .workers = &ctl.workers,
				      .nworkers = &ctl.nworkers,
				      .cur = &ctl.cur,
				      .probes = &ctl.probes,
				      .reloads = &ctl.reloads,
				      .reload_failures = &ctl.reload_failures };
		ctl.metrics = server_metrics_new(&src);
	}
	if (conf->user && privileges_drop(conf->user) < 0)
		goto out;

	/*
	 * The database and the zones are opened as the user gslbd runs as, so
	 * a reload can read what start-up could and a new database file
	 * belongs to that user.  SQLite opens a file that user may not write
	 * read-only without a word, and must create the -wal and -shm beside
	 * it: what is in the way (file, -wal, -shm or directory) is said now,
	 * with the user, rather than every health write failing later.
	 */
	char why[1024];
	int ret = db_access_check(conf->db_path, why, sizeof(why));
	if (ret < 0) {
		log_err("cannot open database %s: %s", conf->db_path, why);
		goto out;
	}
	ret = db_open(conf->db_path, DB_OPEN_CREATE | DB_OPEN_WRITABLE, &ctl.db);
	if (ret < 0) {
		log_err("cannot open database %s: %s", conf->db_path, gslb_strerror(ret));
		goto out;
	}
	ret = schema_update(ctl.db, conf->db_path, true);
	if (ret < 0)
		goto out; /* db_migrate() has logged why, with the file's name */
	/* Interface 3: a geo file that does not open stops start-up (a reload keeps the old). */
	if (conf->geoip) {
		ret = geo_open(conf->geoip, &ctl.geo);
		if (ret < 0)
			goto out;
	}
	ctl.health = lb_health_new(HEALTH_TARGETS_MAX);
	ctl.targets = server_targets_new(HEALTH_TARGETS_MAX);
	ctl.probes = health_loop_new(ctl.health, conf->db_path, conf->ca_file, conf->history_h);
	if (!ctl.probes)
		goto out; /* health_loop_new() has logged why */
	ret = health_loop_start(ctl.probes);
	if (ret < 0) {
		log_err("cannot start the health checks: %s", gslb_strerror(ret));
		goto out;
	}
	char err[256];
	ret = db_data_version(ctl.db, &ctl.data_version);
	if (ret == 0)
		ret = config_read(ctl.db, -1, &ctl.cfg_generation, &ctl.cfg, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", gslb_strerror(ret));
	if (ret < 0) {
		log_err("cannot read database %s: %s", conf->db_path, err);
		goto out;
	}
	ctl.db_tried_ms = now_ms();
	ret = zone_load_dir(conf->zones_dir, NULL, &zones, &failed);
	if (ret < 0) {
		log_err("cannot read zone directory %s: %s", conf->zones_dir, gslb_strerror(ret));
		goto out;
	}
	if (zones->count == 0)
		log_warn("no zones in %s: every query will be refused", conf->zones_dir);
	snapshot_publish(&ctl, zones, pools_build(&ctl, zones));

	/*
	 * The control loop and its signal handlers come before the workers:
	 * once a worker answers, gslbd looks ready, and a SIGHUP must then
	 * reload, not kill it with the default action.
	 */
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
	uv_timer_init(&ctl.loop, &ctl.db_poll);
	ctl.db_poll.data = &ctl;
	uv_timer_start(&ctl.db_poll, db_poll_cb, DB_POLL_MS, DB_POLL_MS);
	ret = server_watch_start(&ctl.loop, conf->zones_dir, zone_watch_cb, &ctl, &ctl.zone_watch);
	if (ret < 0)
		log_warn("cannot watch zone directory %s (%s): reload with SIGHUP", conf->zones_dir,
			 gslb_strerror(ret));
	uv_timer_init(&ctl.loop, &ctl.geo_debounce);
	ctl.geo_debounce.data = &ctl;
	uv_fs_event_init(&ctl.loop, &ctl.geo_watch);
	ctl.geo_watch.data = &ctl;
	if (conf->geoip) {
		/* dirname() and basename() may modify their argument: each gets its own copy. */
		char *d = gslb_strdup(conf->geoip), *b = gslb_strdup(conf->geoip);
		ctl.geo_dir = gslb_strdup(dirname(d));
		ctl.geo_base = gslb_strdup(basename(b));
		free(d);
		free(b);
		ret = uv_fs_event_start(&ctl.geo_watch, geo_watch_cb, ctl.geo_dir, 0);
		if (ret < 0)
			log_warn("cannot watch geo file directory %s (%s): reload with SIGHUP",
				 ctl.geo_dir, gslb_strerror(ret));
	}

	/*
	 * --threads UDP workers per address, each over its own socket, then
	 * --threads TCP workers over a listener per address.
	 */
	unsigned nudp = conf->threads * (unsigned)conf->nlisten, nall = nudp + conf->threads;
	ctl.workers = gslb_calloc(nall, sizeof(*ctl.workers));
	for (unsigned t = 0; t < conf->threads; t++) {
		for (size_t i = 0; i < conf->nlisten; i++) {
			int *slot = &fds[(t * conf->nlisten + i) * 2];
			unsigned id = t * (unsigned)conf->nlisten + (unsigned)i;
			ctl.nworkers = id + 1;
			ret = server_worker_init_udp(&ctl.workers[id], id, conf, slot[0],
						     &conf->listen[i]);
			slot[0] = -1; /* handed over */
			if (ret < 0) {
				log_err("cannot start UDP worker %u: %s", id, gslb_strerror(ret));
				goto out;
			}
		}
	}
	for (unsigned t = 0; t < conf->threads; t++) {
		int tcp[conf->nlisten];
		for (size_t i = 0; i < conf->nlisten; i++) {
			int *slot = &fds[(t * conf->nlisten + i) * 2];
			tcp[i] = slot[1];
			slot[1] = -1; /* handed over */
		}
		ctl.nworkers = nudp + t + 1;
		ret = server_worker_init_tcp(&ctl.workers[nudp + t], t, conf, tcp);
		if (ret < 0) {
			log_err("cannot start TCP worker %u: %s", t, gslb_strerror(ret));
			goto out;
		}
	}
	for (unsigned t = 0; t < nall; t++) {
		ret = server_worker_start(&ctl.workers[t]);
		if (ret < 0) {
			log_err("cannot start worker thread %u: %s", t, gslb_strerror(ret));
			goto out;
		}
	}

	if (metrics_fd >= 0) {
		ctl.http = server_http_start(&ctl.loop, metrics_fd, conf->metrics->text,
					     ctl.metrics);
		metrics_fd = -1; /* taken over */
		if (!ctl.http)
			goto out;
	}

	char where[1024];
	size_t off = 0;
	where[0] = '\0';
	for (size_t i = 0; i < conf->nlisten && off < sizeof(where); i++)
		off += (size_t)snprintf(where + off, sizeof(where) - off, "%s%s", i ? ", " : "",
					conf->listen[i].text);
	log_info("gslbd %s: serving %u zones on %s; %u UDP threads per address, %u TCP threads",
		 PACKAGE_VERSION, ctl.cur->data.zones->count, where, conf->threads, conf->threads);

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
	geo_db_close(ctl.geo);
	free(ctl.geo_dir);
	free(ctl.geo_base);
	if (ctl.probes) {
		health_loop_stop(ctl.probes); /* flushes the probe results still queued */
		health_loop_free(ctl.probes);
	}
	server_targets_free(ctl.targets);
	lb_health_free(ctl.health);
	db_config_free(ctl.cfg);
	db_close(ctl.db);
	server_metrics_free(ctl.metrics);
	if (metrics_fd >= 0)
		close(metrics_fd);
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return status;
}
