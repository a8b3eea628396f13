/* SPDX-License-Identifier: MIT */
/* Private to src/server: the main thread's state, shared by control.c, snapshot.c and start.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "gslb/cluster.h"
#include "gslb/db.h"
#include "gslb/geo.h"
#include "gslb/health.h"
#include "gslb/lb.h"
#include "gslb/targets.h"
#include "gslb/zone.h"
#include "internal.h"

/*
 * The main thread's state while the server runs.  Only the main thread
 * touches it (start-up, the control loop, the cleanup after it); cur is
 * the snapshot it last published, the one it passes to zone_load_dir() as
 * the previous version on a reload.  control.c says who else reads what.
 */
typedef struct control {
	const server_conf_t *conf;

	/* Start-up: what is bound before privileges are dropped, until handed over. */
	int *fds; /* each worker's sockets, see listeners_bind() in start.c; -1 once taken */
	size_t nfds;
	int metrics_fd; /* --metrics, until the endpoint takes it; else -1 */

	/* The control loop (control.c). */
	uv_loop_t loop;
	bool loop_ready; /* loop initialised: closed by server_control_stop() */
	uv_signal_t sig_hup;
	uv_signal_t sig_term;
	uv_signal_t sig_int;
	server_watch_t *zone_watch; /* the zone directory, owned; NULL when not watched */
	uv_timer_t db_poll;
	uv_fs_event_t geo_watch; /* --geoip's directory: a replace by rename is seen there */
	uv_timer_t geo_debounce;
	char *geo_dir; /* dirname and basename of --geoip, owned */
	char *geo_base;
	bool stopping; /* SIGTERM or SIGINT came: the loop was stopped */
	/*
	 * The cluster thread's nudge after it changed the configuration: the
	 * database is read at once rather than at the next poll.  wake_open says,
	 * under wake_mu, whether the handle may be sent to (the cluster thread
	 * outlives this loop by a few phases).
	 */
	uv_async_t db_wake;
	pthread_mutex_t wake_mu;
	bool wake_open;
	/* The cluster's cookie secret, handed over under wake_mu (server_cluster_cookie()). */
	uint8_t cluster_cookie[16];
	bool cluster_cookie_new;

	/* What snapshots are built from (snapshot.c). */
	gslb_snapshot_t *cur;
	uint64_t generation;		/* of cur */
	lb_health_t *health;		/* owned; every snapshot borrows it */
	health_loop_t *probes;		/* the health-check thread, owned */
	target_reg_t *targets;		/* key -> health table index, owned */
	uint64_t targets_digest;	/* of the list last handed to probes */
	uv_timer_t sel_check;		/* looks for health changes the pools' caches miss */
	uint64_t sel_gen;		/* the health generation the caches were last checked at */
	uint64_t sel_next_ms;		/* no check before (gslb_mono_ms()) */
	geo_db_t *geo;			/* --geoip, owned; every snapshot borrows it */
	cluster_t *cluster;		/* --cluster: the cluster thread, owned; else NULL */
	query_cookie_secrets_t cookies; /* copied into every snapshot (cookies.c) */
	int64_t dnssec_next;		/* Unix seconds of cur's next DNSSEC key timing (0: none) */

	/* The database (control.c). */
	db_t *db;		/* the control thread's own connection */
	db_config_t *cfg;	/* the last configuration read without error, owned */
	int64_t data_version;	/* PRAGMA data_version at the last read */
	int64_t cfg_generation; /* config_generation of cfg */
	bool db_failed;		/* the last read failed */
	uint64_t db_tried_ms;	/* when it was last read */
	char db_error[512];	/* the error last logged, so each distinct one is logged once */
	bool db_gone;		/* the file at --db was deleted (logged once) */
	db_file_id_t db_bad;	/* a new file at --db that could not be opened ... */
	uint64_t db_bad_ms;	/* ... when it was last tried */
	/*
	 * What changed in cfg since the pools of cur were built from it
	 * (snapshot.c builds those again, shares the others): cfg_from[i] the
	 * index pool i had then, SIZE_MAX when it changed or is new
	 * (db_config_merge()); NULL with cfg_whole false: nothing changed;
	 * cfg_whole: read whole, every pool is built again.  cfg_checks: a
	 * pool with a check, before or after, is among the changed.
	 */
	size_t *cfg_from;
	bool cfg_whole;
	bool cfg_checks;

	/*
	 * Alias members (alias.c): the resolver and what it feeds, owned (NULL
	 * outside the loop's life); aliases, what pools are built with: every
	 * alias_state row, each replaced as its name resolves again.
	 */
	struct server_alias *alias;
	db_aliases_t aliases;

	/* The DNS workers (start.c). */
	worker_t *workers;
	unsigned nworkers;
	struct server_dnstap *dnstap; /* --dnstap: the query log, owned; else NULL */

	/* --metrics */
	server_metrics_t *metrics; /* answer counter slots, owned; else NULL */
	metrics_http_t *http;	   /* the endpoint, closed by server_control_stop() */
	uint64_t reloads;	   /* reloads attempted after start-up, for the metrics */
	uint64_t reload_failures;  /* ... that failed wholly or in part */

	/* --control (ctlsock.c) */
	int control_fd;		 /* bound and listening, until the loop takes it; else -1 */
	struct ctlsock *ctlsock; /* the socket served on the loop, owned; NULL when none */
	int geo_status;		 /* 0, or the code of the last geo file that failed to open */
	int control_skipped;	 /* why the default socket was not bound (said once serving) */
} control_t;

/*
 * What a reload did, for whoever asked for it (gslbctl daemon reload).  Filled
 * by server_control_reload(); freed with server_reload_report_clear().
 */
typedef struct server_reload_report {
	int dir_error;	/* the zone directory could not be read: nothing was reloaded */
	unsigned zones; /* zones served after it */
	unsigned nfailures;
	struct server_reload_failure {
		char *file;  /* the zone file's name in the directory, owned */
		char *error; /* the message logged, owned */
	} * failures;
	int geo;     /* 0 reopened or none configured, else the code of the failure */
	int cookies; /* --cookie-secret-file: 0 read again or none, else the code of the failure */
} server_reload_report_t;

void server_reload_report_clear(server_reload_report_t *r);

/* ---- the control loop (control.c) ---- */

/**
 * Set up the control loop: signal handlers (SIGHUP reloads, SIGTERM and
 * SIGINT stop), the database poll, the zone directory and geo file
 * watches, and the --metrics endpoint over ctl->metrics_fd (taken over).
 * Returns 0, or a negative code after logging why.  What was set up is
 * undone by server_control_stop(), whatever the outcome.
 */
int server_control_start(control_t *ctl);

/** Close every handle of the loop and the loop itself.  Safe after a partial start. */
void server_control_stop(control_t *ctl);

/**
 * What SIGHUP does (gslbd(8), SIGNALS): tell systemd RELOADING=1, load the
 * zone directory and the geo file again, publish, READY=1.  On the control
 * loop.  report, when not NULL, receives what was loaded and what failed.
 */
void server_control_reload(control_t *ctl, server_reload_report_t *report);

/* ---- the control socket (ctlsock.c) ---- */

/**
 * Start-up, before privileges are dropped: bind conf->control (mode 0660,
 * the group of --user) and listen, into ctl->control_fd.  A stale socket
 * (no process answers on it) is replaced; one another gslbd answers on is
 * refused.  The default path in a directory that does not exist is logged
 * and skipped.  Returns 0, or a negative code after logging why.
 */
int server_ctlsock_bind(control_t *ctl);

/** Close ctl->control_fd if the loop did not take it, and remove the socket file bound. */
void server_ctlsock_unbind(control_t *ctl);

/** Serve ctl->control_fd (taken over) on ctl->loop.  0, or a negative code after logging. */
int server_ctlsock_start(control_t *ctl);

/** Close the socket's handles and its clients' (the memory goes as the loop runs the closes). */
void server_ctlsock_stop(control_t *ctl);

/**
 * cluster_conf_t.config_changed: the cluster thread committed a new
 * configuration (any thread; never blocks on the control loop).
 */
void server_cluster_changed(void *arg);

/**
 * The first read of the configuration, at start-up: PRAGMA data_version,
 * then the configuration into ctl->cfg.  Returns 0, or a negative code
 * after logging "cannot read database".
 */
int server_config_first(control_t *ctl);

/**
 * The configuration of db, if the file's schema is the one this build
 * reads and its generation is not known (in one read transaction, so the
 * generation is the configuration's).  Returns 1 with *cfg and *generation
 * set, 0 when the generation is known (*cfg NULL), or a negative code
 * with the reason in err (the caller decides how to log it).
 */
int server_config_read(db_t *db, int64_t known, int64_t *generation, db_config_t **cfg, char *err,
		       size_t errlen);

/**
 * Bring a database's schema up to this build's version, as start-up does
 * (a new file gets the whole schema); always: migrate even when the
 * version says it is up to date.  Logged with the file's name.  Returns 0
 * or the code of db_migrate(), which has logged why.
 */
int server_schema_update(db_t *db, const char *path, bool always);

/* ---- snapshots (snapshot.c) ---- */

/* What changed since the snapshot last published: flags of server_snapshot_rebuild(). */
enum snapshot_change {
	SNAPSHOT_ZONES = 1u << 0, /* the zone directory was loaded again: the set passed */
	SNAPSHOT_POOLS = 1u << 1, /* ctl->cfg was read again: the pools may differ */
	SNAPSHOT_GEO = 1u << 2,
	SNAPSHOT_COOKIES = 1u << 3,
	/* the cookie secrets changed: a snapshot even if nothing else did */ /* the geo file may have been replaced: open it again */
};

/**
 * Build a snapshot from what changed (SNAPSHOT_* flags in what; zones, the
 * new zone set taken over, with SNAPSHOT_ZONES, else NULL) and what did
 * not (taken from the current snapshot), with the pools of ctl->cfg placed
 * in its zones; publish it; once no worker can read the old one (a grace
 * period), free it and the geo file only it used, and give back the answer
 * counter slots of the members gone.  The first call (at start-up) needs
 * SNAPSHOT_ZONES.  Returns 0 when a snapshot was published; 1 when only
 * SNAPSHOT_POOLS was given and the pools are those of the current snapshot
 * (nothing published); or, when only SNAPSHOT_GEO was given, the code of a
 * geo file that failed to open (logged; the old one stays, nothing
 * published).  With other changes, a geo file that fails to open is kept
 * and the rest published.
 */
int server_snapshot_rebuild(control_t *ctl, unsigned what, zone_set_t *zones);

/**
 * When the health table changed since the pools' selection caches were
 * last checked, check them all again (a walk of every member of every pool
 * with a cache) and free those replaced after a grace period.  Until then
 * queries walk the pools' members instead, with the same answers.  The
 * control loop calls it every SEL_CHECK_MS.
 */
void server_sel_check(control_t *ctl);

/**
 * At the next key timing of a signed zone (a key published, active,
 * retired or removed), a snapshot with the keys as they are then.  The
 * control loop calls it every DB_POLL_MS.
 */
void server_dnssec_check(control_t *ctl);

/* ---- alias members (alias.c) ---- */

/**
 * Start-up, before the first snapshot: read alias_state into ctl->aliases,
 * so that the last good addresses are served until fresh resolutions
 * replace them.  A failure is logged; aliases then start with none.
 */
void server_alias_load(control_t *ctl);

/**
 * Start the resolver on ctl->loop (--resolver, else /etc/resolv.conf) for
 * the host names of ctl->cfg.  0, or a negative code after logging why.
 */
int server_alias_start(control_t *ctl);

/** Write what was resolved and not yet stored, stop the resolver (closes run in the loop). */
void server_alias_stop(control_t *ctl);

/** ctl->cfg changed: resolve the host names it has from now on, and only those. */
void server_alias_config(control_t *ctl);

/** The state pools are built with for host name name, or NULL (borrowed until the loop runs). */
const db_alias_state_t *server_alias_state(const control_t *ctl, const char *name);

/** What the resolver knows of host name name now, or NULL (borrowed until the loop runs). */
const struct alias_name *server_alias_find(const control_t *ctl, const char *name);

/* ---- systemd (notify.c) ---- */

enum server_notify_state {
	SERVER_NOTIFY_READY,	 /* serving: READY=1 and the status line */
	SERVER_NOTIFY_RELOADING, /* a SIGHUP reload begins */
	SERVER_NOTIFY_STOPPING,	 /* SIGTERM or SIGINT */
};

/** Tell systemd the state (sd_notify(3)); nothing without NOTIFY_SOCKET.  Control thread. */
void server_notify(const control_t *ctl, enum server_notify_state state);

/* ---- DNS Cookies' secrets (cookies.c) ---- */

/**
 * Parse the text of a --cookie-secret-file: one or two secrets of 32 hex
 * digits, blanks between, '#' comments.  Returns 0 with *n secrets in out,
 * or -EINVAL with a reason in err.
 */
int server_cookie_secrets_parse(const char *text, uint8_t out[2][16], unsigned *n, char *err,
				size_t errlen);

/**
 * Fill ctl->cookies: from --cookie-secret-file (at start-up and on SIGHUP,
 * when the first secret changed the old one stays accepted for an hour),
 * or at start-up a random secret.  Returns 0, or a negative code after
 * logging why (on SIGHUP the secrets in use are kept).
 */
int server_cookies_load(control_t *ctl, bool startup);

/**
 * The cluster's secret (a node without --cookie-secret-file): current
 * from now on, the one it replaces accepted for an hour.  Returns whether
 * it changed anything (then a snapshot must carry it).
 */
bool server_cookies_set(control_t *ctl, const uint8_t secret[16]);

/** cluster_conf_t.cookie_secret: from the cluster thread, through the control loop's wake-up. */
void server_cluster_cookie(void *arg, const uint8_t secret[16]);

/** --check-config: whether the secret file (NULL: none) reads; logs the outcome. */
int server_cookies_check(const char *path);
