/* SPDX-License-Identifier: MIT */
/*
 * The control loop: reloads on SIGHUP and when the zone directory, the
 * database or the geo file changes, and stops the server on SIGTERM.
 *
 * Threads, and what each touches:
 *
 *   main thread      Start-up (start.c: one phase after another, undone in
 *                    reverse order), then this loop, then the clean-up.  Owns
 *                    control_t, the only connection to the database that reads
 *                    the configuration (ctl->db), and every snapshot: builds,
 *                    publishes and frees them (snapshot.c).  Hands the health
 *                    thread its targets (health_loop_set_targets()), and
 *                    brings the pools' selection caches up to date after
 *                    the health table changed (server_sel_check()).  Serves
 *                    the control socket (ctlsock.c) and --metrics, reading
 *                    the workers' counters racily (one aligned 64-bit load
 *                    each; the member counters under worker_t.answers_mu,
 *                    which a worker takes to grow them).
 *   DNS workers      udp/N threads blocking in recvmmsg(), tcp/N threads each
 *                    with a libuv loop (worker.c, udp.c, tcp.c).  Each touches
 *                    its own worker_t and query_ctx_t (counters, geo cache),
 *                    and reads, never writes, the snapshot it entered with
 *                    server_rcu_enter() (liburcu QSBR: online while answering,
 *                    offline while waiting) and the health table (atomic
 *                    loads).  A worker never touches SQLite or allocates per
 *                    query.
 *   health thread    Its own libuv loop and database connection (src/health,
 *                    src/db): probes the targets and writes the health table
 *                    with atomic stores.  It never sees a snapshot: a health
 *                    change reaches the next query with no rebuild.
 *   cluster thread   With --cluster (src/cluster/node.c): its own libuv loop
 *                    and database connection; mirrors etcd into the database
 *                    and wakes this loop (server_cluster_changed()) to read it.
 *
 * A snapshot's life (server_snap is the one pointer workers read):
 *
 *        snapshot_build()          snapshot_publish()
 *   ------------------> BUILT ------------------> PUBLISHED   workers answer from it
 *                                                     |
 *                                                     | the next snapshot_publish()
 *                                                     v
 *                                                 REPLACED    a worker may still read it
 *                                                     |
 *                                                     | synchronize_rcu() in snapshot_retire()
 *                                                     v
 *                                               GRACE PERIOD  over: no worker can read it
 *                                                     |
 *                                                     | gslb_snapshot_free(), and geo_db_close()
 *                                                     v of the geo file only it used
 *                                                   FREED
 *                                                     |
 *                                                     | server_metrics_sweep()
 *                                                     v
 *                                                   SWEPT     the answer counter slots of the
 *                                                             members it alone named are free
 *
 * server_snapshot_rebuild() takes a new snapshot from BUILT to PUBLISHED
 * and the one it replaces to SWEPT, so the grace period is waited for on
 * this thread (a few milliseconds: workers come online only to answer).
 * Its callers here only decide what changed: reload() the zones (and, as a
 * reload, the pools and the geo file), db_poll_cb() the pools,
 * geo_debounce_cb() the geo file.  The last snapshot is freed without a
 * grace period at exit, once every worker has been joined (start.c).
 */

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/lb.h"
#include "gslb/zone.h"
#include "control.h"

/* A geo file is replaced in several steps (temp file, rename, chmod): one reload after them. */
#define RELOAD_DEBOUNCE_MS 200
/*
 * How often the database is asked whether another connection committed.
 * PRAGMA data_version is answered from the connection's own state (no
 * disk read in WAL mode beyond the shared-memory index), so polling is
 * cheap, and 200 ms keeps a change well inside the 1 s of gslbd(8).
 */
#define DB_POLL_MS 200
/* After a failed read, try again this often even without a new commit (a lock may clear). */
#define DB_RETRY_MS 5000
/*
 * How often the health table's generation is compared with the pools'
 * selection caches (server_sel_check()).  Until a change is seen, queries
 * of the pools it touches walk their members, as without caches: this only
 * bounds how long a change costs that, not whether answers follow it.
 */
#define SEL_CHECK_MS 20

/* zone_fail_cb: a zone file that failed, into the report of who asked for the reload. */
static void reload_failed_cb(void *arg, const char *file, const char *error)
{
	server_reload_report_t *r = arg;
	r->failures = gslb_realloc(r->failures, (r->nfailures + 1) * sizeof(*r->failures));
	r->failures[r->nfailures].file = gslb_strdup(file);
	r->failures[r->nfailures++].error = gslb_strdup(error);
}

void server_reload_report_clear(server_reload_report_t *r)
{
	for (unsigned i = 0; i < r->nfailures; i++) {
		free(r->failures[i].file);
		free(r->failures[i].error);
	}
	free(r->failures);
	memset(r, 0, sizeof(*r));
}

/*
 * Load the zone directory again and publish it.  A reload the watch asked
 * for is thrown away when a zone file was written to while it ran: it may
 * have read that file half written, and the watch asks again once the file
 * is complete.  (SIGHUP loads what is there, whatever its state.)
 */
static void reload(control_t *ctl, const char *why, bool watched, server_reload_report_t *report)
{
	zone_set_t *zones = NULL;
	unsigned failed = 0;

	log_debug("reloading zones (%s)", why);
	int ret = zone_load_dir_report(ctl->conf->zones_dir, ctl->cur ? ctl->cur->data.zones : NULL,
				       &zones, &failed, report ? reload_failed_cb : NULL, report);
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
		if (report) {
			report->dir_error = ret;
			report->zones = ctl->cur ? ctl->cur->data.zones->count : 0;
		}
		return;
	}
	/* A reload opens the geo file again (gslbd(8), SIGHUP); one that fails keeps the old. */
	ctl->geo_status = 0;
	server_snapshot_rebuild(ctl, SNAPSHOT_ZONES | SNAPSHOT_POOLS | SNAPSHOT_GEO, zones);
	log_info("reloaded: %u zones (%u failed)", zones->count, failed);
	if (report) {
		report->zones = zones->count;
		report->geo = ctl->geo_status;
	}
}

void server_control_reload(control_t *ctl, server_reload_report_t *report)
{
	server_notify(ctl, SERVER_NOTIFY_RELOADING);
	/* Read before the reload, whose snapshot carries the secrets. */
	int cookies = server_cookies_load(ctl, false);
	if (report)
		report->cookies = cookies;
	reload(ctl, report ? "control socket" : "SIGHUP", false, report);
	server_watch_reloaded(ctl->zone_watch);
	server_notify(ctl, SERVER_NOTIFY_READY);
}

/* Log a database problem unless it is the one logged last time (the poll repeats it). */
static void db_problem(control_t *ctl, const char *what)
{
	if (strcmp(ctl->db_error, what) == 0)
		return;
	snprintf(ctl->db_error, sizeof(ctl->db_error), "%s", what);
	log_err("database %s: %s; keeping the last good configuration", ctl->conf->db_path, what);
}

/* Changed pools loaded alone while they are at most this many, or an eighth of all. */
#define DELTA_POOLS_MIN 64

/*
 * server_config_read(), or with delta (known a generation read before, of
 * a configuration of npools pools) only the pools changed since known when
 * they are few: then it returns 2, *names (*nnames) are the names changed
 * and *cfg their pools now, for db_config_merge().  Otherwise 1 when it read
 * all.  *names may be NULL with 2: the generation moved with no pool written
 * (a DNSSEC key), which is no pool to merge, not an empty configuration.
 */
static int config_read(db_t *db, int64_t known, size_t npools, int64_t *generation,
		       db_config_t **cfg, char ***names, size_t *nnames, char *err, size_t errlen)
{
	int version = 0;
	int ret;

	*cfg = NULL;
	if (names) {
		*names = NULL;
		*nnames = 0;
	}
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
	if (names && known >= 0) {
		/* Revisions are generations: what was written since known read. */
		ret = db_config_changed(db, known, names, nnames);
		if (ret < 0) {
			snprintf(err, errlen, "cannot read the pools changed: %s",
				 gslb_strerror(ret));
			goto out;
		}
		if (*nnames <= DELTA_POOLS_MIN || *nnames <= npools / 8) {
			ret = db_config_load_pools(db, (const char *const *)*names, *nnames, cfg);
			if (ret < 0) {
				db_names_free(*names, *nnames);
				*names = NULL;
				*nnames = 0;
				snprintf(err, errlen, "cannot read the configuration: %s",
					 gslb_strerror(ret));
			} else {
				ret = 2;
			}
			goto out;
		}
		db_names_free(*names, *nnames);
		*names = NULL;
		*nnames = 0;
	}
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

int server_config_read(db_t *db, int64_t known, int64_t *generation, db_config_t **cfg, char *err,
		       size_t errlen)
{
	return config_read(db, known, 0, generation, cfg, NULL, NULL, err, errlen);
}

/*
 * Put the pools changed (names, part their state now) into ctl->cfg, and
 * record for the next snapshot which they are (ctl->cfg_from, cfg_checks).
 */
static void config_merge(control_t *ctl, char **names, size_t n, db_config_t *part)
{
	size_t *from = NULL;
	size_t nold = ctl->cfg->npools;

	for (size_t i = 0; i < n && !ctl->cfg_checks; i++)
		ctl->cfg_checks = db_pool_checked(db_config_pool(ctl->cfg, names[i]));
	for (size_t i = 0; i < part->npools && !ctl->cfg_checks; i++)
		ctl->cfg_checks = db_pool_checked(&part->pools[i]);
	db_config_merge(ctl->cfg, (const char *const *)names, n, part, &from);
	/* A change not yet built into a snapshot: from the pools built, through it. */
	if (ctl->cfg_from) {
		for (size_t j = 0; j < ctl->cfg->npools; j++)
			if (from[j] != SIZE_MAX)
				from[j] = from[j] < nold ? ctl->cfg_from[from[j]] : SIZE_MAX;
		free(ctl->cfg_from);
	}
	ctl->cfg_from = from;
}

int server_schema_update(db_t *db, const char *path, bool always)
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
	if (again && gslb_mono_ms() - ctl->db_bad_ms < DB_RETRY_MS)
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
		ctl->db_bad_ms = gslb_mono_ms();
		return false;
	}
	ctl->db_gone = false;
	ctl->db_bad = (db_file_id_t){ 0, 0 };
	/* A failure is the read's to log: it keeps the last good configuration. */
	server_schema_update(ctl->db, path, false);
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
	char **names = NULL;
	size_t nnames = 0;
	uint64_t now = gslb_mono_ms();
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
		ret = config_read(ctl->db, known, ctl->cfg ? ctl->cfg->npools : 0, &generation,
				  &cfg, &names, &nnames, err, sizeof(err));
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
	if (ret == 2) {
		config_merge(ctl, names, nnames, cfg);
		db_names_free(names, nnames);
		db_config_free(cfg);
	} else {
		db_config_free(ctl->cfg);
		ctl->cfg = cfg;
		free(ctl->cfg_from);
		ctl->cfg_from = NULL;
		ctl->cfg_whole = true;
	}
	ctl->cfg_generation = generation;
	/* A member's alias may be new, changed or gone: the names resolved follow. */
	server_alias_config(ctl);
	return 1;
}

int server_config_first(control_t *ctl)
{
	char err[256];
	int ret = db_data_version(ctl->db, &ctl->data_version);
	if (ret == 0)
		ret = server_config_read(ctl->db, -1, &ctl->cfg_generation, &ctl->cfg, err,
					 sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", gslb_strerror(ret));
	if (ret < 0) {
		log_err("cannot read database %s: %s", ctl->conf->db_path, err);
		return ret;
	}
	ctl->db_tried_ms = gslb_mono_ms();
	ctl->cfg_whole = true;
	return 0;
}

/* A new configuration was read: its pools may differ from the snapshot's. */
static void db_poll_cb(uv_timer_t *t)
{
	control_t *ctl = t->data;
	if (config_refresh(ctl) > 0)
		server_snapshot_rebuild(ctl, SNAPSHOT_POOLS, NULL);
	else
		server_dnssec_check(ctl);
}

/* A health change: the pools' selection caches are brought up to date. */
static void sel_check_cb(uv_timer_t *t)
{
	server_sel_check(t->data);
}

/*
 * The cluster thread committed a configuration, or read the cluster's cookie secret: read
 * the configuration now, as the poll would, and publish the secret.
 */
static void db_wake_cb(uv_async_t *a)
{
	control_t *ctl = a->data;
	uint8_t secret[16];
	pthread_mutex_lock(&ctl->wake_mu);
	bool cookie = ctl->cluster_cookie_new;
	memcpy(secret, ctl->cluster_cookie, sizeof(secret));
	ctl->cluster_cookie_new = false;
	pthread_mutex_unlock(&ctl->wake_mu);
	unsigned what = config_refresh(ctl) > 0 ? SNAPSHOT_POOLS : 0;
	if (cookie && server_cookies_set(ctl, secret))
		what |= SNAPSHOT_COOKIES;
	explicit_bzero(secret, sizeof(secret));
	if (what)
		server_snapshot_rebuild(ctl, what, NULL);
}

void server_cluster_cookie(void *arg, const uint8_t secret[16])
{
	control_t *ctl = arg;
	pthread_mutex_lock(&ctl->wake_mu);
	memcpy(ctl->cluster_cookie, secret, sizeof(ctl->cluster_cookie));
	ctl->cluster_cookie_new = true;
	if (ctl->wake_open)
		uv_async_send(&ctl->db_wake);
	pthread_mutex_unlock(&ctl->wake_mu);
}

void server_cluster_changed(void *arg)
{
	control_t *ctl = arg;
	pthread_mutex_lock(&ctl->wake_mu);
	if (ctl->wake_open)
		uv_async_send(&ctl->db_wake);
	pthread_mutex_unlock(&ctl->wake_mu);
}

static void zone_watch_cb(void *arg)
{
	reload(arg, "zone directory changed", true, NULL);
}

static void geo_debounce_cb(uv_timer_t *t)
{
	control_t *ctl = t->data;
	ctl->reloads++;
	/* Same zones and pools; only the snapshot's geo database changes. */
	if (server_snapshot_rebuild(ctl, SNAPSHOT_GEO, NULL) < 0) {
		ctl->reload_failures++;
		return; /* the new file failed to open: logged */
	}
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

static void signal_cb(uv_signal_t *s, int signum)
{
	control_t *ctl = s->data;
	if (signum == SIGHUP) {
		server_control_reload(ctl, NULL);
		return;
	}
	if (ctl->stopping)
		return;
	ctl->stopping = true;
	server_notify(ctl, SERVER_NOTIFY_STOPPING);
	log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	/* server_run() goes on with the clean-up: the workers first, then this loop. */
	uv_stop(&ctl->loop);
}

int server_control_start(control_t *ctl)
{
	const server_conf_t *conf = ctl->conf;

	int ret = uv_loop_init(&ctl->loop);
	if (ret < 0) {
		log_err("cannot create the control loop: %s", gslb_strerror(ret));
		return ret;
	}
	ctl->loop_ready = true;
	uv_signal_t *sigs[] = { &ctl->sig_hup, &ctl->sig_term, &ctl->sig_int };
	const int signums[] = { SIGHUP, SIGTERM, SIGINT };
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		uv_signal_init(&ctl->loop, sigs[i]);
		sigs[i]->data = ctl;
		uv_signal_start(sigs[i], signal_cb, signums[i]);
	}
	uv_timer_init(&ctl->loop, &ctl->db_poll);
	ctl->db_poll.data = ctl;
	uv_timer_start(&ctl->db_poll, db_poll_cb, DB_POLL_MS, DB_POLL_MS);
	uv_timer_init(&ctl->loop, &ctl->sel_check);
	ctl->sel_check.data = ctl;
	uv_timer_start(&ctl->sel_check, sel_check_cb, SEL_CHECK_MS, SEL_CHECK_MS);
	uv_async_init(&ctl->loop, &ctl->db_wake, db_wake_cb);
	ctl->db_wake.data = ctl;
	pthread_mutex_lock(&ctl->wake_mu);
	ctl->wake_open = true;
	pthread_mutex_unlock(&ctl->wake_mu);
	ret = server_watch_start(&ctl->loop, conf->zones_dir, zone_watch_cb, ctl, &ctl->zone_watch);
	if (ret < 0)
		log_warn("cannot watch zone directory %s (%s): reload with SIGHUP", conf->zones_dir,
			 gslb_strerror(ret));
	uv_timer_init(&ctl->loop, &ctl->geo_debounce);
	ctl->geo_debounce.data = ctl;
	uv_fs_event_init(&ctl->loop, &ctl->geo_watch);
	ctl->geo_watch.data = ctl;
	if (conf->geoip) {
		/* dirname() and basename() may modify their argument: each gets its own copy. */
		char *d = gslb_strdup(conf->geoip), *b = gslb_strdup(conf->geoip);
		ctl->geo_dir = gslb_strdup(dirname(d));
		ctl->geo_base = gslb_strdup(basename(b));
		free(d);
		free(b);
		ret = uv_fs_event_start(&ctl->geo_watch, geo_watch_cb, ctl->geo_dir, 0);
		if (ret < 0)
			log_warn("cannot watch geo file directory %s (%s): reload with SIGHUP",
				 ctl->geo_dir, gslb_strerror(ret));
	}
	/*
	 * The metrics endpoint listens from now on, before any worker answers:
	 * a scrape right after the first answer is queued until this loop
	 * runs, never refused.
	 */
	if (ctl->metrics_fd >= 0) {
		status_src_t st = { .conf = conf, .cur = &ctl->cur, .cfg = &ctl->cfg };
		ctl->http = server_http_start(&ctl->loop, ctl->metrics_fd, conf->metrics->text,
					      ctl->metrics, &st);
		ctl->metrics_fd = -1; /* taken over */
		if (!ctl->http)
			return -EIO; /* server_http_start() has logged why */
	}
	ret = server_alias_start(ctl);
	if (ret < 0)
		return ret;
	return server_ctlsock_start(ctl);
}

void server_control_stop(control_t *ctl)
{
	if (!ctl->loop_ready)
		return;
	uv_close((uv_handle_t *)&ctl->sig_hup, NULL);
	uv_close((uv_handle_t *)&ctl->sig_term, NULL);
	uv_close((uv_handle_t *)&ctl->sig_int, NULL);
	/*
	 * Closing the handles gave SIGTERM and SIGINT their default action back:
	 * a second one (systemd's and an operator's) would end the process in the
	 * middle of the clean-up that flushes the probe results.
	 */
	if (ctl->stopping) {
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
	}
	uv_close((uv_handle_t *)&ctl->db_poll, NULL);
	uv_close((uv_handle_t *)&ctl->sel_check, NULL);
	pthread_mutex_lock(&ctl->wake_mu);
	if (ctl->wake_open)
		uv_close((uv_handle_t *)&ctl->db_wake, NULL);
	ctl->wake_open = false;
	pthread_mutex_unlock(&ctl->wake_mu);
	server_watch_close(ctl->zone_watch);
	ctl->zone_watch = NULL;
	uv_close((uv_handle_t *)&ctl->geo_debounce, NULL);
	uv_close((uv_handle_t *)&ctl->geo_watch, NULL);
	server_http_close(ctl->http);
	ctl->http = NULL;
	server_ctlsock_stop(ctl);
	server_alias_stop(ctl);
	/* The closes complete in the loop. */
	uv_run(&ctl->loop, UV_RUN_DEFAULT);
	uv_loop_close(&ctl->loop);
	ctl->loop_ready = false;
	free(ctl->geo_dir);
	free(ctl->geo_base);
	ctl->geo_dir = ctl->geo_base = NULL;
}
