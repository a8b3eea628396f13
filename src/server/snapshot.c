/* SPDX-License-Identifier: MIT */
/* Snapshots: built from zones, the configuration's pools and the geo file, published, retired. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/db_dnssec.h"
#include "gslb/dns.h"
#include "gslb/dnssec.h"
#include "gslb/lb.h"
#include "gslb/targets.h"
#include "gslb/zone.h"
#include "control.h"

void gslb_snapshot_free(gslb_snapshot_t *s)
{
	if (!s)
		return;
	zone_set_free(s->data.zones);
	lb_set_free(s->data.pools);
	dnssec_set_free(s->dnssec);
	free(s);
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

/*
 * A pool set of n pools (taken over) placed in zones, with the log line of
 * gslbd(8).  With old, a set in the same zones, whose names the pools have
 * when only pools were replaced: its name table is patched, not built again.
 */
static lb_set_t *pools_place(lb_pool_t **pools, uint32_t n, const zone_set_t *zones,
			     const lb_set_t *old)
{
	lb_set_t *set = old ? lb_set_patch(old, pools, n, zones) : NULL;
	if (!set)
		set = lb_set_make(pools, n, zones);
	log_info("pools: %u loaded (%u not served)", n, set->nunserved);
	return set;
}

static void pools_unref(lb_pool_t **pools, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		lb_pool_unref(pools[i]);
	free(pools);
}

/*
 * Give the pools' addresses their health-check targets and hand the
 * health loop the new list when anything in it changed (README "Health checks":
 * one probe per distinct check, whatever the number of pools using it).
 */
static void targets_update(control_t *ctl, lb_pool_t **pools, uint32_t n)
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

/*
 * Whether pool p of the configuration is kept whole once built: the health
 * targets read a pool's checks and its members' addresses, every time any
 * checked pool changes.  A pool read again for any other reason than a
 * change of its rows must be kept whole too: a pool with an alias member is
 * built again whenever its alias resolves to other addresses.
 */
static bool pool_keep_whole(const db_pool_t *p)
{
	if (db_pool_checked(p))
		return true;
	for (size_t i = 0; i < p->nmembers; i++)
		if (p->members[i].alias)
			return true;
	return false;
}

/*
 * The pools of ctl->cfg, each with a reference, in its order.  With share,
 * a pool that did not change since the current snapshot's pools were built
 * (ctl->cfg_from) is that snapshot's own, not a copy: only the changed are
 * built, so one change among 100,000 pools builds one.  *built counts them.
 *
 * A pool without a check is built once from its rows, then only its name
 * and settings are kept (db_pool_strip()): the built pool is shared by every
 * later snapshot until the pool changes, and a change reads its rows again.
 * So every pool is shared unless the whole configuration was read again.
 */
static lb_pool_t **pools_build(control_t *ctl, bool share, uint32_t *n, uint32_t *built)
{
	db_config_t *cfg = ctl->cfg;
	size_t np = cfg ? cfg->npools : 0;
	lb_pool_t **out = gslb_calloc(np ? np : 1, sizeof(*out));
	lb_pool_t **old = NULL;
	size_t nold = 0;
	uint32_t k = 0;

	*built = 0;
	if (share) {
		/* The current pools by the index of the configuration they were built from. */
		const lb_set_t *cur = ctl->cur->data.pools;
		for (uint32_t i = 0; i < cur->npools; i++)
			if ((size_t)cur->pools[i]->cfg_index + 1 > nold)
				nold = (size_t)cur->pools[i]->cfg_index + 1;
		old = gslb_calloc(nold ? nold : 1, sizeof(*old));
		for (uint32_t i = 0; i < cur->npools; i++)
			old[cur->pools[i]->cfg_index] = cur->pools[i];
	}
	for (size_t j = 0; j < np && k < UINT32_MAX; j++) {
		size_t from = !share ? SIZE_MAX : ctl->cfg_from ? ctl->cfg_from[j] : j;
		lb_pool_t *p;
		if (from != SIZE_MAX) {
			/* Unchanged; none when its name is not a domain name (warned then). */
			if (from >= nold || !old[from])
				continue;
			p = lb_pool_ref(old[from]);
		} else {
			p = lb_pool_new(&cfg->pools[j], &ctl->aliases);
			if (!pool_keep_whole(&cfg->pools[j]))
				db_pool_strip(&cfg->pools[j]);
			if (!p)
				continue;
			(*built)++;
		}
		/* Read on this thread only (the targets): no worker sees the write. */
		p->cfg_index = (uint32_t)j;
		out[k++] = p;
	}
	free(old);
	*n = k;
	return out;
}

/*
 * Whether pools are those of snapshot s; then the current pools take the
 * indexes of ctl->cfg the new ones have, which is now what they stand for.
 */
static bool pools_same(const gslb_snapshot_t *s, lb_pool_t **pools, uint32_t n)
{
	const lb_set_t *cur = s->data.pools;
	if (!cur || cur->npools != n)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!lb_pool_equal(pools[i], cur->pools[i]))
			return false;
	/* A shared pool has its index already (pools_build()). */
	for (uint32_t i = 0; i < n; i++)
		if (pools[i] != cur->pools[i])
			cur->pools[i]->cfg_index = pools[i]->cfg_index;
	return true;
}

/*
 * Interface 3: open --geoip again on a reload; a file that fails to open
 * keeps the previous one, and the failure is logged.  (At start-up a geo
 * file that does not open is fatal: start.c opens the first one.)  On
 * success *old is the database replaced, to be closed once no snapshot
 * can be using it.
 */
static int geo_reopen(control_t *ctl, geo_db_t **old)
{
	geo_db_t *db = NULL;
	*old = NULL;
	if (!ctl->conf->geoip)
		return 0;
	int ret = geo_db_open(ctl->conf->geoip, &db);
	if (ret < 0) {
		log_err("geo file %s: %s; keeping the previous one", ctl->conf->geoip,
			gslb_strerror(ret));
		ctl->geo_status = ret; /* for the control socket's reload */
		return ret;
	}
	*old = ctl->geo;
	ctl->geo = db;
	return 0;
}

/* The signed zone of z's name in the snapshot served now, or NULL. */
static const dnssec_zone_t *dnssec_previous(const control_t *ctl, const zone_t *z)
{
	const dnssec_set_t *s = ctl->cur ? ctl->cur->dnssec : NULL;
	for (uint32_t i = 0; s && i < s->count; i++)
		if (s->zones[i]->apex_len == z->apex_len &&
		    memcmp(s->zones[i]->apex, z->apex, z->apex_len) == 0)
			return s->zones[i];
	return NULL;
}

/*
 * The signed zones among zones (README "DNSSEC"): each one's keys from the
 * database as they stand now, and in ctl->dnssec_next when that changes
 * next.  NULL when no zone has a key, or when the keys cannot be read.  A
 * zone whose rows are not usable keys keeps the signed zone of the
 * snapshot served now, or is served unsigned (logged at every build).
 */
static dnssec_set_t *dnssec_build(control_t *ctl, const zone_set_t *zones)
{
	db_dnssec_key_t *keys = NULL;
	size_t n = 0;
	ctl->dnssec_next = 0;
	if (!ctl->db || !zones)
		return NULL;
	int ret = db_dnssec_keys_load(ctl->db, NULL, &keys, &n);
	if (ret < 0) {
		log_err("cannot read DNSSEC keys: %s", gslb_strerror(ret));
		return NULL;
	}
	if (!n)
		return NULL;
	int64_t now = gslb_wall_ms() / 1000;
	dnssec_set_t *set = NULL;
	dnssec_key_row_t *rows = gslb_calloc(n, sizeof(*rows));
	for (uint32_t i = 0; i < zones->count; i++) {
		const zone_t *z = zones->zones[i];
		char name[DNS_NAME_MAX * 4 + 2];
		dns_name_to_str(name, sizeof(name), z->apex);
		size_t nr = 0;
		for (size_t k = 0; k < n; k++) {
			if (strcmp(keys[k].zone, name) != 0)
				continue;
			rows[nr++] = (dnssec_key_row_t){
				.algorithm = keys[k].algorithm,
				.flags = keys[k].flags,
				.public_key = keys[k].public_key,
				.public_len = keys[k].public_key_len,
				.private_key = keys[k].private_key,
				.private_len = keys[k].private_key_len,
				.publish = keys[k].publish,
				.active = keys[k].active,
				.retire = keys[k].retire,
				.remove = keys[k].remove,
			};
		}
		if (!nr)
			continue;
		dnssec_zone_t *dz = NULL;
		char err[256] = "";
		ret = dnssec_zone_new(&dz, z, rows, nr, now, &ctl->dnssec_next, err, sizeof(err));
		if (ret < 0) {
			/*
			 * Unsigned, the zone would fail at every resolver holding
			 * its DS: with no usable key that ever signed in its rows
			 * (dnssec_zone_new() signs on with those), it keeps the keys
			 * it had, if any, as the parent's DS may still name them.
			 */
			const dnssec_zone_t *old = dnssec_previous(ctl, z);
			if (!old) {
				log_err("zone %s: DNSSEC keys: %s; served unsigned", name, err);
				continue;
			}
			log_err("zone %s: DNSSEC keys: %s; signed with the keys it had", name, err);
			dz = dnssec_zone_copy(old, z);
		} else if (err[0]) {
			log_err("zone %s: DNSSEC keys: %s", name, err);
		}
		if (!dz)
			continue;
		if (!set)
			set = dnssec_set_new();
		dnssec_set_add(set, dz);
	}
	free(rows);
	db_dnssec_keys_free(keys, n);
	return set;
}

/* Do sets a and b (either NULL) sign and publish alike? */
static bool dnssec_same(const dnssec_set_t *a, const dnssec_set_t *b)
{
	if (!a || !b)
		return a == b;
	return a->count == b->count && a->digest == b->digest;
}

void server_dnssec_check(control_t *ctl)
{
	if (ctl->dnssec_next && gslb_wall_ms() / 1000 >= ctl->dnssec_next)
		server_snapshot_rebuild(ctl, SNAPSHOT_POOLS, NULL);
}

/*
 * Built: a snapshot of zones, pools and signed zones (all taken over), not
 * yet seen by any worker.
 */
static gslb_snapshot_t *snapshot_build(control_t *ctl, zone_set_t *zones, lb_set_t *pools,
				       dnssec_set_t *dnssec)
{
	gslb_snapshot_t *snap = gslb_calloc(1, sizeof(*snap));
	snap->data.zones = zones;
	snap->data.pools = pools;
	snap->dnssec = dnssec;
	snap->data.dnssec = dnssec;
	snap->data.health = ctl->health;
	snap->data.geo = ctl->geo;
	snap->data.generation = ++ctl->generation;
	snap->cookies = ctl->cookies;
	snap->data.cookies = &snap->cookies;
	snap->built_ms = (uint64_t)gslb_wall_ms();
	snap->member_slots = server_metrics_assign(ctl->metrics, pools);
	return snap;
}

/*
 * Bring the selection caches of the pools of set up to date with the
 * health table (lb_pool_sel_update()).  One walk of every member of every
 * pool with a cache, on this thread: the query path then draws from them
 * in O(log members) and walks no member.  Caches replaced are chained on
 * *retired.
 */
static void pools_sel_update(control_t *ctl, lb_set_t *set, struct lb_sel **retired)
{
	uint64_t gen = lb_health_gen(ctl->health);
	for (uint32_t i = 0; set && i < set->npools; i++)
		lb_pool_sel_update(set->pools[i], ctl->health, retired);
	ctl->sel_gen = gen;
}

/* Free caches no query can read once every worker has passed a quiescent state. */
static void sel_retire(struct lb_sel *retired)
{
	if (!retired)
		return;
	synchronize_rcu();
	lb_sel_free(retired);
}

void server_sel_check(control_t *ctl)
{
	if (!ctl->cur || !ctl->health || lb_health_gen(ctl->health) == ctl->sel_gen)
		return;
	/*
	 * With very many pools and health flapping without a pause, the walks
	 * would take this thread whole: each is followed by a pause four times
	 * its length, so they take at most a fifth of it.
	 */
	uint64_t t0 = gslb_mono_ms();
	if (t0 < ctl->sel_next_ms)
		return;
	struct lb_sel *retired = NULL;
	pools_sel_update(ctl, ctl->cur->data.pools, &retired);
	uint64_t t1 = gslb_mono_ms();
	ctl->sel_next_ms = t1 + 4 * (t1 - t0);
	sel_retire(retired);
}

/* Published: the snapshot workers answer from.  Returns the one it replaces (NULL at first). */
static gslb_snapshot_t *snapshot_publish(control_t *ctl, gslb_snapshot_t *snap)
{
	gslb_snapshot_t *old = rcu_xchg_pointer(&server_snap, snap);
	ctl->cur = snap;
	return old;
}

/*
 * Retired: wait until every worker has passed a quiescent state, so no
 * query still reads old; then free it, give back the answer counter slots
 * of the members it alone named, and close old_geo, the geo file only it
 * used (before the first snapshot, none did).
 */
static void snapshot_retire(control_t *ctl, gslb_snapshot_t *old, geo_db_t *old_geo)
{
	if (old) {
		synchronize_rcu();
		gslb_snapshot_free(old);
		server_metrics_sweep(ctl->metrics);
	}
	geo_db_close(old_geo);
}

int server_snapshot_rebuild(control_t *ctl, unsigned what, zone_set_t *zones)
{
	geo_db_t *old_geo = NULL;

	if (what & SNAPSHOT_GEO) {
		int ret = geo_reopen(ctl, &old_geo);
		if (ret < 0 && what == SNAPSHOT_GEO)
			return ret;
	}
	if (!(what & SNAPSHOT_ZONES))
		zones = NULL;
	bool new_zones = zones != NULL;
	/*
	 * Every snapshot places the pools of the last good configuration in
	 * its zones, since whether a pool is served depends on them.  Pools
	 * that did not change are shared with the current snapshot, new zones
	 * or not: a pool is built from its rows alone, and its served flag,
	 * which placing it in new zones may change, is read by this thread only
	 * (workers find only served pools, through the set's name table).  The
	 * targets are updated first, even when the pools turn out unchanged: a
	 * check may have changed without them.  Only a change to a pool with a
	 * check (before or after) or new zones can change the list of targets:
	 * otherwise the changed pools have none and the list stays.
	 */
	bool share = ctl->cur && ctl->cur->data.pools && !ctl->cfg_whole;
	uint32_t n, built;
	lb_pool_t **pools = pools_build(ctl, share, &n, &built);
	if (!share || ctl->cfg_checks || new_zones)
		targets_update(ctl, pools, n);
	free(ctl->cfg_from);
	ctl->cfg_from = NULL;
	ctl->cfg_whole = ctl->cfg_checks = false;
	log_debug("pools: %u built, %u shared", built, n - built);
	dnssec_set_t *dnssec = dnssec_build(ctl, zones ? zones : ctl->cur->data.zones);
	if (what == SNAPSHOT_POOLS && pools_same(ctl->cur, pools, n) &&
	    dnssec_same(ctl->cur->dnssec, dnssec)) {
		/* The configuration changed, the pools did not (a check, a name not served). */
		pools_unref(pools, n);
		dnssec_set_free(dnssec);
		log_debug("database changed, pools did not");
		return 1;
	}
	if (!zones)
		zones = zones_share(ctl->cur->data.zones);
	gslb_snapshot_t *snap = snapshot_build(
		ctl, zones,
		pools_place(pools, n, zones, share && !new_zones ? ctl->cur->data.pools : NULL),
		dnssec);
	struct lb_sel *retired = NULL;
	pools_sel_update(ctl, snap->data.pools, &retired);
	snapshot_retire(ctl, snapshot_publish(ctl, snap), old_geo);
	sel_retire(retired);
	return 0;
}
