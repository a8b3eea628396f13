/* SPDX-License-Identifier: MIT */
/*
 * gslbd's cluster node (README "Two or more nameservers"): a thread of its own that mirrors
 * the cluster's configuration from etcd into the node's database, publishes this node's health
 * verdicts bound to its lease and hands the other nodes' verdicts to the health loop.  DNS
 * never waits on it: answers come from snapshots of the database, as on a standalone node.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gslb/etcd.h"

struct health_loop;

typedef struct cluster_conf {
	etcd_conf_t etcd;
	const char *prefix; /* "/gslbd/" */
	const char *node;   /* [a-z0-9-]{1,63} */
	uint32_t lease_s;   /* --cluster-lease, 10 */
	const char *db_path;
	struct health_loop *health; /* receives the votes; NULL: none (tests) */
	/* Called on the cluster thread after each commit that changed the configuration. */
	void (*config_changed)(void *arg);
	/*
	 * DNS Cookies' secret shared by the cluster (README "On the open internet"):
	 * called on the cluster thread with the secret in etcd whenever it is read;
	 * when etcd holds none, this node puts a random one (the first node does).
	 * NULL: the node has a secret file of its own and etcd's is left alone.
	 */
	void (*cookie_secret)(void *arg, const uint8_t secret[16]);
	void *arg;
} cluster_conf_t;

typedef struct cluster cluster_t;

/** Check a --node name: [a-z0-9-], 1-63 characters. */
bool cluster_node_name_ok(const char *name);

/**
 * Start the thread (conf copied; the etcd settings, the password included, are kept only by
 * the etcd client).  It makes conf->health a cluster node's loop (health_loop_set_cluster()):
 * call it after health_loop_new() and before health_loop_start().  0 or a negative code
 * (logged).
 */
int cluster_start(const cluster_conf_t *conf, cluster_t **out);
/**
 * Stop the thread, revoke the lease (best effort, at most a second), free.  NULL is a no-op.
 * Stop the health loop first (health_loop_stop()): its verdicts come here until then; the
 * loop may be freed only after this returns (votes go to it until then).
 */
void cluster_stop(cluster_t *c);

/* For the metrics (any thread). */
typedef struct cluster_stats {
	bool connected;
	int64_t applied_rev;
	uint32_t nodes_live;
	uint64_t resyncs;	 /* full syncs done */
	uint64_t events_applied; /* watch events applied to the database */
	uint64_t votes_published;
	int64_t last_contact_ms; /* Unix ms of the last successful exchange with etcd */
} cluster_stats_t;

void cluster_stats_get(cluster_t *c, cluster_stats_t *st);
