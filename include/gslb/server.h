/* SPDX-License-Identifier: MIT */
/* The DNS server: listeners, worker threads, the control loop that loads and swaps snapshots. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "gslb/query.h"

/* --tcp-clients: TCP connections for the whole server, shared out among the TCP threads. */
#define SERVER_TCP_CLIENTS_DEFAULT 16384
#define SERVER_TCP_CLIENTS_MAX 1000000
/* --tcp-clients-per-ip: TCP connections of one source address; 0 none. */
#define SERVER_TCP_PER_IP_DEFAULT 64
#define SERVER_TCP_PER_IP_MAX 65535
/* RFC 7766 6.2.3: idle TCP connections are closed after this long. */
#define SERVER_TCP_IDLE_MS 10000
/* Upper bound of --threads. */
#define SERVER_THREADS_MAX 256

struct cluster_conf;
struct db_cluster_settings;

/* One --listen address: UDP and TCP on it. */
typedef struct server_listen {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char text[80]; /* "127.0.0.1:53" or "[::1]:53", for messages */
} server_listen_t;

/*
 * What server_run() needs.  Filled in by main() from the options; read only
 * (by every thread) while the server runs.
 */
typedef struct server_conf {
	const char *zones_dir;
	const char *db_path; /* the SQLite file, created and migrated when missing */
	const char *ca_file; /* CAs for HTTPS checks, or NULL for the system store */
	const char *geoip;   /* MaxMind DB for geo pools, or NULL */
	unsigned history_h;  /* hours of probe results kept */
	const server_listen_t *listen;
	size_t nlisten;
	unsigned threads;		/* DNS worker threads, >= 1 */
	const char *user;		/* drop privileges to this user after binding, or NULL */
	const server_listen_t *metrics; /* --metrics: HTTP at this address, or NULL */
	const query_conf_t *qconf;
	unsigned tcp_clients;	     /* --tcp-clients */
	unsigned tcp_clients_per_ip; /* --tcp-clients-per-ip, 0: no limit */
	/* --cert-warn: log https certificates that end within this many days (0: never). */
	unsigned cert_warn_days;
	/*
	 * --cookie-secret-file: DNS Cookies' secret, read at start-up and on
	 * SIGHUP; NULL: a random one (README "On the open internet").
	 */
	const char *cookie_secret_file;
	/*
	 * --cluster: the cluster thread's settings (its database, health loop and
	 * callback are filled in at start-up), or NULL for a standalone node.
	 */
	const struct cluster_conf *cluster;
	/* Recorded in the database for gslbctl; urls NULL removes them (standalone). */
	const struct db_cluster_settings *cluster_settings;
	/* --control: the control socket's path, or NULL for none (gslbd(8) "CONTROL SOCKET"). */
	const char *control;
	bool control_default; /* control is the default path: a missing directory is no error */
	/* --dnstap: the unix socket of a Frame Streams reader for the query log, or NULL. */
	const char *dnstap;
	/*
	 * --resolver: where alias members' host names are resolved, as c-ares
	 * reads it ("ADDR:PORT,[ADDR6]:PORT"), or NULL for /etc/resolv.conf.
	 */
	const char *resolvers;
} server_conf_t;

/**
 * Parse "ADDR:PORT", "[ADDR6]:PORT" (or a bare address, port 53) into l.
 * Returns 0, or -EINVAL with a reason in err.
 */
int server_listen_parse(server_listen_t *l, const char *text, char *err, size_t errlen);

/**
 * Run the server until SIGTERM or SIGINT: bind every listener, drop
 * privileges, load the zones, start the workers and run the control loop
 * (reloads on SIGHUP and on zone directory changes) in the calling thread.
 * Returns the process exit status: 0 after a clean stop, 1 when start-up
 * failed (a message has been logged).
 */
int server_run(const server_conf_t *conf);

/**
 * --check-config: as conf->user when set (privileges dropped as start-up
 * drops them, so the check sees what gslbd would), load and validate every
 * zone in conf->zones_dir, the database conf->db_path (read-only, never
 * created; NULL skips it), the geo file conf->geoip (NULL: none) and the
 * CA file conf->ca_file (NULL: the system store), logging each problem with
 * the message start-up would give.  Binds nothing.  Returns the exit
 * status: 0 when all of them loaded (a database start-up would create is
 * fine), 1 otherwise.
 */
int server_check_config(const server_conf_t *conf);
