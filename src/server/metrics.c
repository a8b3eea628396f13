/* SPDX-License-Identifier: MIT */
/* The metrics: answer counter slots for pool members, and the Prometheus text built from every counter. */

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/cluster.h"
#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/dns.h"
#include "gslb/health.h"
#include "internal.h"
#include "tap_ring.h"

/*
 * Each worker holds 8 bytes per slot.  A slot whose member left the pools
 * is given back once no snapshot names it (server_metrics_sweep), so pools
 * whose member names keep changing reuse slots; past the cap (that many
 * members at once) new members are simply not counted.
 */
#define SLOTS_MAX (1u << 20)

/*
 * The registry of answer counter slots and what the handler reads.
 * Control thread only.
 *
 * A slot is known by a 64-bit hash of its (pool, member) name, not by the
 * name: the names are in the pools, and the text takes them from there.
 * With 100,000 pools this keeps the registry near 20 bytes a member, and
 * no allocation per member.  Two names of one assignment that hash alike
 * are told apart (slot_get()); only their counters' survival across a
 * reload is then lost.
 */
struct server_metrics {
	metrics_src_t src;
	/* open addressing over slot_hash: slot + 1, 0 when free; mask + 1 entries */
	uint32_t *index;
	uint32_t mask;
	uint32_t nslots; /* slots handed out so far: the workers' arrays hold this many */
	uint32_t nlive;	 /* slots in use (named by the last assignment or a snapshot before it) */
	uint32_t nindex; /* entries in index */
	uint32_t epoch;	 /* counts server_metrics_assign() calls, from 1 */
	/* per slot (slot_cap of them): its name's hash, and the last assignment that named it */
	uint64_t *slot_hash;
	uint32_t *slot_epoch; /* 0: the slot is free */
	uint32_t slot_cap;
	uint32_t *free; /* slots given back, to hand out before new ones */
	uint32_t nfree;
	uint32_t free_cap; /* entries free can hold */
};

server_metrics_t *server_metrics_new(const metrics_src_t *src)
{
	server_metrics_t *m = gslb_calloc(1, sizeof(*m));
	m->src = *src;
	m->mask = 1023;
	m->index = gslb_calloc(m->mask + 1, sizeof(*m->index));
	return m;
}

void server_metrics_free(server_metrics_t *m)
{
	if (!m)
		return;
	free(m->index);
	free(m->free);
	free(m->slot_hash);
	free(m->slot_epoch);
	free(m);
}

/* FNV-1a over the bytes (name_hash() ends with a finalizer: every bit then depends on each byte). */
static uint64_t hash_add(uint64_t h, const void *data, size_t n)
{
	const uint8_t *b = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t name_hash(const lb_pool_t *p, const lb_member_t *mb)
{
	const char *name = mb->name;
	uint64_t h = hash_add(0xcbf29ce484222325ull, p->name, p->name_len);
	h = hash_add(h, "", 1); /* the NUL between them: no name runs into the other */
	h = hash_add(h, name, strlen(name));
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* The index entry of hash h: the one holding its slot, or the free one where it would go. */
static uint32_t *index_find(const server_metrics_t *m, uint32_t *index, uint32_t mask, uint64_t h)
{
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		uint32_t *e = &index[i];
		if (!*e || m->slot_hash[*e - 1] == h)
			return e;
	}
}

/*
 * Build the index anew, of mask + 1 entries, over the slots in use.  Of
 * two slots whose names hash alike, the first stays in the index.
 */
static void index_rebuild(server_metrics_t *m, uint32_t mask)
{
	uint32_t *t = gslb_calloc((size_t)mask + 1, sizeof(*t));
	uint32_t n = 0;
	for (uint32_t s = 0; s < m->nslots; s++) {
		if (!m->slot_epoch[s])
			continue;
		uint32_t *e = index_find(m, t, mask, m->slot_hash[s]);
		if (!*e) {
			*e = s + 1;
			n++;
		}
	}
	free(m->index);
	m->index = t;
	m->mask = mask;
	m->nindex = n;
}

/* A slot for a name hashing to h, not in the index; UINT32_MAX past the cap. */
static uint32_t slot_new(server_metrics_t *m, uint64_t h)
{
	if (!m->nfree && m->nslots == SLOTS_MAX)
		return UINT32_MAX;
	uint32_t s = m->nfree ? m->free[--m->nfree] : m->nslots++;
	if (m->nslots > m->slot_cap) {
		m->slot_cap = m->slot_cap ? m->slot_cap * 2 : 1024;
		m->slot_hash = gslb_realloc(m->slot_hash, m->slot_cap * sizeof(*m->slot_hash));
		m->slot_epoch = gslb_realloc(m->slot_epoch, m->slot_cap * sizeof(*m->slot_epoch));
	}
	m->slot_hash[s] = h;
	m->slot_epoch[s] = m->epoch;
	m->nlive++;
	return s;
}

static uint32_t slot_get(server_metrics_t *m, const lb_pool_t *p, const lb_member_t *mb)
{
	uint64_t h = name_hash(p, mb);
	uint32_t *e = index_find(m, m->index, m->mask, h);
	if (*e) {
		uint32_t s = *e - 1;
		/*
		 * A (pool, member) name comes once in a set: a slot this
		 * assignment already named belongs to another name with the
		 * same hash.  That one gets a slot of its own, outside the
		 * index, so no two members share a counter.
		 */
		if (m->slot_epoch[s] == m->epoch)
			return slot_new(m, h);
		m->slot_epoch[s] = m->epoch;
		return s;
	}
	/* Keep the index at most three quarters full so probes stay short. */
	if ((uint64_t)(m->nindex + 1) * 4 > (uint64_t)(m->mask + 1) * 3) {
		index_rebuild(m, m->mask * 2 + 1);
		e = index_find(m, m->index, m->mask, h);
	}
	uint32_t s = slot_new(m, h);
	if (s != UINT32_MAX) {
		*e = s + 1;
		m->nindex++;
	}
	return s;
}

uint32_t server_metrics_assign(server_metrics_t *m, lb_set_t *pools)
{
	/* 0 marks a free slot: an epoch never is, even once the count wraps. */
	if (m && ++m->epoch == 0)
		m->epoch = 1;
	if (!pools)
		return m ? m->nslots : 0;
	for (uint32_t i = 0; i < pools->npools; i++) {
		lb_pool_t *p = pools->pools[i];
		/*
		 * A pool the last call named is shared with the snapshot answered
		 * from: its members hold their live slots, which it marks named
		 * again without looking up 100,000 pools' names, and writes nothing
		 * a worker reads.
		 */
		if (m && p->metrics_epoch && p->metrics_epoch == m->epoch - 1) {
			bool all = true;
			for (uint16_t k = 0; k < p->nmembers; k++) {
				if (p->members[k].slot < m->nslots)
					m->slot_epoch[p->members[k].slot] = m->epoch;
				else
					all = false;
			}
			if (all) {
				p->metrics_epoch = m->epoch;
				continue;
			}
		}
		for (uint16_t k = 0; k < p->nmembers; k++) {
			uint32_t slot = m ? slot_get(m, p, &p->members[k]) : UINT32_MAX;
			if (p->members[k].slot != slot)
				p->members[k].slot = slot;
		}
		p->metrics_epoch = m ? m->epoch : 0;
	}
	return m ? m->nslots : 0;
}

/* ---- the text ---- */

/* A label value as the exposition format wants it: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"') {
			putc('\\', f);
			putc(*v, f);
		} else if (*v == '\n') {
			fputs("\\n", f);
		} else {
			putc(*v, f);
		}
	}
}

static void put_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric with one unlabelled sample: its HELP and TYPE lines, then the value. */
static void put_single(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	put_head(f, name, type, help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

/* RFC 6895 2.3 rcode mnemonics; NULL for the unassigned ones (shown only when seen, by number). */
static const char *const rcode_names[24] = {
	"NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",   "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE",  "DSOTYPENI",
	NULL,	    NULL,      NULL,	   NULL,       "BADVERS",  "BADKEY",
	"BADTIME",  "BADMODE", "BADNAME",  "BADALG",   "BADTRUNC", "BADCOOKIE",
};

static const char *const qtype_names[QUERY_QT_COUNT] = {
	[QUERY_QT_A] = "A",	    [QUERY_QT_NS] = "NS",	[QUERY_QT_CNAME] = "CNAME",
	[QUERY_QT_SOA] = "SOA",	    [QUERY_QT_PTR] = "PTR",	[QUERY_QT_MX] = "MX",
	[QUERY_QT_TXT] = "TXT",	    [QUERY_QT_AAAA] = "AAAA",	[QUERY_QT_SRV] = "SRV",
	[QUERY_QT_NAPTR] = "NAPTR", [QUERY_QT_DS] = "DS",	[QUERY_QT_DNSKEY] = "DNSKEY",
	[QUERY_QT_SVCB] = "SVCB",   [QUERY_QT_HTTPS] = "HTTPS", [QUERY_QT_CAA] = "CAA",
	[QUERY_QT_ANY] = "ANY",	    [QUERY_QT_OTHER] = "other",
};

/* The workers' query counters, summed (each read racily: a scrape is a moment, not a snapshot). */
static void queries_render(FILE *f, const server_metrics_t *m)
{
	query_stats_t sum = { 0 };
	uint64_t recv_err = 0, send_err = 0, evicted = 0, refused = 0;
	worker_t *workers = *m->src.workers;
	unsigned n = workers ? *m->src.nworkers : 0;

	for (unsigned i = 0; i < n; i++) {
		const worker_t *w = &workers[i];
		const query_stats_t *st = &w->ctx.stats;
		for (int t = 0; t < 2; t++)
			sum.queries[t] += st->queries[t];
		for (size_t k = 0; k < ARRAY_SIZE(sum.qtype); k++)
			sum.qtype[k] += st->qtype[k];
		for (size_t k = 0; k < ARRAY_SIZE(sum.rcode); k++)
			sum.rcode[k] += st->rcode[k];
		sum.dropped += st->dropped;
		sum.truncated += st->truncated;
		sum.geo_cache_hits += st->geo_cache_hits;
		sum.geo_cache_misses += st->geo_cache_misses;
		sum.rrl_dropped += st->rrl_dropped;
		sum.rrl_slipped += st->rrl_slipped;
		sum.cookies_valid += st->cookies_valid;
		sum.rrsigs_cached += st->rrsigs_cached;
		sum.rrsigs_signed += st->rrsigs_signed;
		sum.rrsigs_failed += st->rrsigs_failed;
		recv_err += w->udp_recv_errors;
		send_err += w->udp_send_errors;
		evicted += w->tcp_evicted;
		refused += w->tcp_refused;
	}
	put_head(f, "gslbd_queries_total", "counter", "DNS queries answered, by transport.");
	fprintf(f, "gslbd_queries_total{transport=\"udp\"} %" PRIu64 "\n", sum.queries[QUERY_UDP]);
	fprintf(f, "gslbd_queries_total{transport=\"tcp\"} %" PRIu64 "\n", sum.queries[QUERY_TCP]);
	put_head(f, "gslbd_queries_by_qtype_total", "counter",
		 "DNS queries answered, by query type (other: any other type, or no question).");
	for (size_t k = 0; k < QUERY_QT_COUNT; k++)
		fprintf(f, "gslbd_queries_by_qtype_total{qtype=\"%s\"} %" PRIu64 "\n",
			qtype_names[k], sum.qtype[k]);
	put_head(f, "gslbd_responses_total", "counter", "DNS responses, by response code.");
	for (size_t k = 0; k < ARRAY_SIZE(sum.rcode); k++) {
		if (rcode_names[k])
			fprintf(f, "gslbd_responses_total{rcode=\"%s\"} %" PRIu64 "\n",
				rcode_names[k], sum.rcode[k]);
		else if (sum.rcode[k])
			fprintf(f, "gslbd_responses_total{rcode=\"RCODE%zu\"} %" PRIu64 "\n", k,
				sum.rcode[k]);
	}
	put_single(f, "gslbd_dropped_total", "counter",
		   "DNS messages dropped without a response (shorter than a header, or QR set).",
		   sum.dropped);
	put_single(f, "gslbd_truncated_total", "counter",
		   "DNS responses sent truncated (TC=1) because the answer did not fit.",
		   sum.truncated);
	put_single(f, "gslbd_geo_cache_hits_total", "counter",
		   "Client locations found in a worker's geo cache.", sum.geo_cache_hits);
	put_single(f, "gslbd_geo_cache_misses_total", "counter",
		   "Client locations looked up in the geo database.", sum.geo_cache_misses);
	put_single(f, "gslbd_rrl_dropped_total", "counter",
		   "UDP responses not sent: over the rate limit (--rrl).", sum.rrl_dropped);
	put_single(f, "gslbd_rrl_slipped_total", "counter",
		   "UDP responses over the rate limit sent truncated instead (--rrl-slip).",
		   sum.rrl_slipped);
	put_single(f, "gslbd_cookies_valid_total", "counter",
		   "Queries with a server cookie that verified (never rate-limited).",
		   sum.cookies_valid);
	put_head(f, "gslbd_rrsigs_total", "counter",
		 "RRSIGs of DNSSEC answers: from a worker's signature cache, signed for the answer "
		 "(a cache miss), or not made (the RRset went unsigned).");
	fprintf(f, "gslbd_rrsigs_total{source=\"cache\"} %" PRIu64 "\n", sum.rrsigs_cached);
	fprintf(f, "gslbd_rrsigs_total{source=\"signed\"} %" PRIu64 "\n", sum.rrsigs_signed);
	fprintf(f, "gslbd_rrsigs_total{source=\"failed\"} %" PRIu64 "\n", sum.rrsigs_failed);
	put_head(f, "gslbd_udp_errors_total", "counter", "UDP socket errors, by operation.");
	fprintf(f, "gslbd_udp_errors_total{op=\"recv\"} %" PRIu64 "\n", recv_err);
	fprintf(f, "gslbd_udp_errors_total{op=\"send\"} %" PRIu64 "\n", send_err);
	put_single(f, "gslbd_tcp_evicted_total", "counter",
		   "Idle DNS TCP connections closed to make room for new ones.", evicted);
	put_single(f, "gslbd_tcp_refused_total", "counter",
		   "DNS TCP connections refused: their address had --tcp-clients-per-ip open.",
		   refused);
}

/* The pool and member labels, the brace left open for the caller to close or add to. */
static void pool_label(FILE *f, const lb_pool_t *p, const lb_member_t *mb)
{
	char name[1024];
	dns_name_to_str(name, sizeof(name), p->name);
	fprintf(f, "{pool=\"");
	put_label(f, name);
	fprintf(f, "\",member=\"");
	put_label(f, mb->name);
	fprintf(f, "\"");
}

uint32_t server_metrics_sweep(server_metrics_t *m)
{
	if (!m || m->nlive == 0)
		return 0;
	uint32_t ndead = 0;
	for (uint32_t s = 0; s < m->nslots; s++)
		ndead += m->slot_epoch[s] && m->slot_epoch[s] != m->epoch;
	if (!ndead)
		return 0;
	if (m->free_cap < m->nfree + ndead) {
		m->free_cap = m->nfree + ndead;
		m->free = gslb_realloc(m->free, (size_t)m->free_cap * sizeof(*m->free));
	}
	uint32_t *dead = m->free + m->nfree;
	for (uint32_t s = 0, i = 0; s < m->nslots; s++) {
		if (m->slot_epoch[s] && m->slot_epoch[s] != m->epoch) {
			dead[i++] = s;
			m->slot_epoch[s] = 0;
		}
	}
	/*
	 * No snapshot names these slots any more, so no worker counts into
	 * them: clear them for their next member, under each worker's lock
	 * (answers_grow() copies the array under it).
	 */
	worker_t *workers = *m->src.workers;
	unsigned nw = workers ? *m->src.nworkers : 0;
	for (unsigned w = 0; w < nw; w++) {
		worker_t *wk = &workers[w];
		pthread_mutex_lock(&wk->answers_mu);
		for (uint32_t i = 0; i < ndead; i++)
			if (dead[i] < wk->ctx.nmember_answers)
				wk->ctx.member_answers[dead[i]] = 0;
		pthread_mutex_unlock(&wk->answers_mu);
	}
	m->nfree += ndead;
	m->nlive -= ndead;
	/*
	 * Emptied entries would break the probe chains of open addressing:
	 * rebuild, smaller once under a fifth full (growing leaves it 3/8).
	 */
	uint32_t mask = m->mask;
	while (mask > 1023 && (uint64_t)m->nlive * 16 < ((uint64_t)mask + 1) * 3)
		mask >>= 1;
	index_rebuild(m, mask);
	return ndead;
}

/*
 * Answers by pool and member, and each member address's health, over the
 * current snapshot.  Each worker's counters are summed under its lock once,
 * so the workers are held up for one pass over an array, not once per member.
 */
static void pools_render(FILE *f, const server_metrics_t *m)
{
	const gslb_snapshot_t *snap = *m->src.cur;
	const lb_set_t *set = snap ? snap->data.pools : NULL;
	const lb_health_t *health = snap ? snap->data.health : NULL;
	worker_t *workers = *m->src.workers;
	unsigned nw = workers ? *m->src.nworkers : 0;
	uint64_t *sum = gslb_calloc(m->nslots ? m->nslots : 1, sizeof(*sum));

	for (unsigned w = 0; w < nw; w++) {
		worker_t *wk = &workers[w];
		pthread_mutex_lock(&wk->answers_mu);
		uint32_t n = wk->ctx.nmember_answers < m->nslots ? wk->ctx.nmember_answers
								 : m->nslots;
		for (uint32_t i = 0; i < n; i++)
			sum[i] += wk->ctx.member_answers[i];
		pthread_mutex_unlock(&wk->answers_mu);
	}
	put_head(f, "gslbd_pool_answers_total", "counter",
		 "A and AAAA answers of a pool that named the member.");
	for (uint32_t i = 0; set && i < set->npools; i++) {
		const lb_pool_t *p = set->pools[i];
		for (uint16_t k = 0; k < p->nmembers; k++) {
			const lb_member_t *mb = &p->members[k];
			fprintf(f, "gslbd_pool_answers_total");
			pool_label(f, p, mb);
			fprintf(f, "} %" PRIu64 "\n", mb->slot < m->nslots ? sum[mb->slot] : 0);
		}
	}
	free(sum);
	put_head(f, "gslbd_member_up", "gauge",
		 "1 when the health check of a member's address passes (or it has none), else 0.");
	for (uint32_t i = 0; set && i < set->npools; i++) {
		const lb_pool_t *p = set->pools[i];
		for (uint16_t k = 0; k < p->nmembers; k++) {
			const lb_member_t *mb = &p->members[k];
			for (int fam = 0; fam < 2; fam++) {
				for (uint16_t j = 0; j < mb->naddr[fam]; j++) {
					const lb_addr_t *a = &mb->addr[fam][j];
					char text[INET6_ADDRSTRLEN];
					inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->addr,
						  text, sizeof(text));
					fprintf(f, "gslbd_member_up");
					pool_label(f, p, mb);
					fprintf(f, ",address=\"%s\"} %d\n", text,
						lb_health_up(health, a->target) ? 1 : 0);
				}
			}
		}
	}
}

/* The pool label alone, the brace left open. */
static void pool_only_label(FILE *f, const lb_pool_t *p)
{
	char name[1024];
	dns_name_to_str(name, sizeof(name), p->name);
	fprintf(f, "{pool=\"");
	put_label(f, name);
	fprintf(f, "\"");
}

/*
 * Each pool's members in service and eligible per family, and whether it
 * answers from its fallback, as the answer path would judge them now
 * (lb_pool_counts()).  Computed here, on the control thread at each scrape,
 * from the snapshot and the health table the workers read: nothing is added
 * to the answer path.  A family no member of the pool has is left out.
 */
static void eligibility_render(FILE *f, const server_metrics_t *m)
{
	const gslb_snapshot_t *snap = *m->src.cur;
	const lb_set_t *set = snap ? snap->data.pools : NULL;
	const lb_health_t *health = snap ? snap->data.health : NULL;
	uint32_t np = set ? set->npools : 0;
	lb_pool_counts_t *c = gslb_calloc(np ? 2 * (size_t)np : 1, sizeof(*c));
	static const char *const fam[2] = { "ipv4", "ipv6" };

	for (uint32_t i = 0; i < np; i++)
		for (int fi = 0; fi < 2; fi++)
			lb_pool_counts(set->pools[i], fi ? 6 : 4, health, &c[2 * i + fi]);
	put_head(f, "gslbd_pool_members", "gauge",
		 "Members of a pool in service (admin auto or up) with an address of the family.");
	for (uint32_t i = 0; i < np; i++) {
		for (int fi = 0; fi < 2; fi++) {
			if (!set->pools[i]->has_family[fi])
				continue;
			fprintf(f, "gslbd_pool_members");
			pool_only_label(f, set->pools[i]);
			fprintf(f, ",family=\"%s\"} %u\n", fam[fi], c[2 * i + fi].members);
		}
	}
	put_head(f, "gslbd_pool_eligible_members", "gauge",
		 "Members of a pool in service with a healthy address of the family: those "
		 "answers are chosen from.");
	for (uint32_t i = 0; i < np; i++) {
		for (int fi = 0; fi < 2; fi++) {
			if (!set->pools[i]->has_family[fi])
				continue;
			fprintf(f, "gslbd_pool_eligible_members");
			pool_only_label(f, set->pools[i]);
			fprintf(f, ",family=\"%s\"} %u\n", fam[fi], c[2 * i + fi].eligible);
		}
	}
	put_head(f, "gslbd_pool_fallback_active", "gauge",
		 "1 while a pool answers from its fallback (fallback all, no member eligible) in "
		 "either family, else 0.");
	for (uint32_t i = 0; i < np; i++) {
		fprintf(f, "gslbd_pool_fallback_active");
		pool_only_label(f, set->pools[i]);
		fprintf(f, "} %d\n", c[2 * i].fallback || c[2 * i + 1].fallback);
	}
	free(c);
}

static void target_cb(const char *key, bool up, void *arg)
{
	FILE *f = arg;
	fprintf(f, "gslbd_target_up{target=\"");
	put_label(f, key);
	fprintf(f, "\"} %d\n", up ? 1 : 0);
}

static void cert_cb(const char *key, int64_t not_after, void *arg)
{
	FILE *f = arg;
	fprintf(f, "gslbd_target_cert_expiry_timestamp_seconds{target=\"");
	put_label(f, key);
	fprintf(f, "\"} %" PRId64 "\n", not_after);
}

/* The health loop's counters: written by its thread, read here with relaxed loads. */
static void health_render(FILE *f, const server_metrics_t *m)
{
	const double *bounds = health_latency_bounds_s;
	health_loop_t *hl = *m->src.probes;
	health_stats_t zero = { 0 };
	const health_stats_t *st = hl ? health_loop_stats(hl) : &zero;
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

	put_head(f, "gslbd_target_up", "gauge",
		 "1 when a health-check target (one distinct check: its request and the "
		 "settings that judge it) is up, else 0.");
	if (hl)
		health_loop_targets_each(hl, target_cb, f);
	put_head(f, "gslbd_target_cert_expiry_timestamp_seconds", "gauge",
		 "https targets: the notAfter (Unix seconds) of the certificate the last completed "
		 "TLS handshake saw.");
	if (hl)
		health_loop_certs_each(hl, cert_cb, f);
	put_head(f, "gslbd_probes_total", "counter", "Health-check probes, by result.");
	fprintf(f, "gslbd_probes_total{result=\"ok\"} %" PRIu64 "\n", LOAD(st->probes[1]));
	fprintf(f, "gslbd_probes_total{result=\"fail\"} %" PRIu64 "\n", LOAD(st->probes[0]));
	put_head(f, "gslbd_probe_duration_seconds", "histogram",
		 "Time a health-check probe took, failed ones included.");
	uint64_t cum = 0;
	for (size_t i = 0; i <= HEALTH_LATENCY_BUCKETS; i++) {
		cum += LOAD(st->latency[i]);
		if (i < HEALTH_LATENCY_BUCKETS)
			fprintf(f, "gslbd_probe_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
				bounds[i], cum);
		else
			fprintf(f, "gslbd_probe_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
				cum);
	}
	fprintf(f, "gslbd_probe_duration_seconds_sum %.6f\n",
		(double)LOAD(st->latency_sum_us) / 1e6);
	fprintf(f, "gslbd_probe_duration_seconds_count %" PRIu64 "\n", cum);
	put_head(f, "gslbd_health_transitions_total", "counter",
		 "Health state changes of targets, by the new state.");
	fprintf(f, "gslbd_health_transitions_total{to=\"up\"} %" PRIu64 "\n",
		LOAD(st->transitions[1]));
	fprintf(f, "gslbd_health_transitions_total{to=\"down\"} %" PRIu64 "\n",
		LOAD(st->transitions[0]));
	health_store_stats_t ss = { 0 };
	if (hl)
		health_loop_store_stats(hl, &ss);
	put_head(f, "gslbd_health_results_queued", "gauge",
		 "Probe results and state changes waiting to be written to the database.");
	fprintf(f, "gslbd_health_results_queued %" PRIu64 "\n", ss.queued);
	put_head(f, "gslbd_health_results_dropped_total", "counter",
		 "Probe results never written: the oldest, dropped while the database could not be "
		 "written.");
	fprintf(f, "gslbd_health_results_dropped_total %" PRIu64 "\n", ss.results_dropped);
	put_head(f, "gslbd_health_changes_dropped_total", "counter",
		 "State changes never written: the oldest, dropped while too many waited (never to "
		 "make room for results).");
	fprintf(f, "gslbd_health_changes_dropped_total %" PRIu64 "\n", ss.changes_dropped);
#undef LOAD
}

/* A cluster node's mirror and votes (README "Two or more nameservers"); nothing when standalone. */
static void cluster_render(FILE *f, const server_metrics_t *m)
{
	cluster_t *c = m->src.cluster ? *m->src.cluster : NULL;
	if (!c)
		return;
	cluster_stats_t st;
	cluster_stats_get(c, &st);
	put_single(f, "gslbd_cluster_connected", "gauge",
		   "1 while this node reaches etcd, 0 while it answers from its last mirror.",
		   st.connected);
	put_single(f, "gslbd_cluster_revision", "gauge",
		   "The etcd revision this node's database has mirrored.",
		   (uint64_t)(st.applied_rev > 0 ? st.applied_rev : 0));
	put_single(f, "gslbd_cluster_nodes_live", "gauge",
		   "Nodes of the cluster with a live lease, this one included.", st.nodes_live);
	put_single(f, "gslbd_cluster_resyncs_total", "counter",
		   "Full reads of the cluster's configuration (first start, compaction, another "
		   "etcd, a long cut).",
		   st.resyncs);
	put_single(f, "gslbd_cluster_events_applied_total", "counter",
		   "etcd changes applied to the database from the watch.", st.events_applied);
	put_single(f, "gslbd_cluster_votes_published_total", "counter",
		   "This node's health verdicts written to etcd.", st.votes_published);
}

/*
 * Alias members (README "Alias members"): the failed resolutions of each
 * member's host name.  One resolution serves every member using the name,
 * so each of them counts its failures.
 */
static void alias_render(FILE *f, const server_metrics_t *m)
{
	const db_config_t *cfg = m->src.cfg ? *m->src.cfg : NULL;
	const struct server_alias *sa = m->src.alias ? *m->src.alias : NULL;
	bool head = false;

	for (size_t j = 0; cfg && j < cfg->npools; j++) {
		const db_pool_t *p = &cfg->pools[j];
		for (size_t k = 0; k < p->nmembers; k++) {
			const db_member_t *mb = &p->members[k];
			if (!mb->alias)
				continue;
			if (!head)
				put_head(f, "gslbd_alias_failures_total", "counter",
					 "Failed resolutions of an alias member's host name "
					 "(its last good addresses were kept).");
			head = true;
			fprintf(f, "gslbd_alias_failures_total{pool=\"");
			put_label(f, p->name);
			fprintf(f, "\",member=\"");
			put_label(f, mb->name);
			fprintf(f, "\"} %" PRIu64 "\n", server_alias_failures(sa, mb->alias));
		}
	}
}

/* --dnstap (dnstap.c): query log records dropped, by reason, summed over the workers' rings. */
static void dnstap_render(FILE *f, const server_metrics_t *m)
{
	uint64_t full = 0, large = 0, no_reader = 0;
	worker_t *workers = *m->src.workers;
	unsigned n = workers ? *m->src.nworkers : 0;

	for (unsigned i = 0; i < n; i++) {
		const tap_ring_t *r = workers[i].tap;
		if (r) {
			full += r->dropped_full;
			large += r->dropped_large;
			no_reader += r->dropped_no_reader;
		}
	}
	put_head(
		f, "gslbd_dnstap_dropped_total", "counter",
		"Queries not in the dnstap query log: the writer behind (full), query and response "
		"over 1,532 bytes (too_large), no reader connected (no_reader).");
	fprintf(f, "gslbd_dnstap_dropped_total{reason=\"full\"} %" PRIu64 "\n", full);
	fprintf(f, "gslbd_dnstap_dropped_total{reason=\"too_large\"} %" PRIu64 "\n", large);
	fprintf(f, "gslbd_dnstap_dropped_total{reason=\"no_reader\"} %" PRIu64 "\n", no_reader);
}

char *server_metrics_render(server_metrics_t *m, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	if (!f)
		return NULL;
	const gslb_snapshot_t *snap = *m->src.cur;
	int64_t now_ms = gslb_wall_ms();

	put_head(f, "gslbd_build_info", "gauge", "Always 1; the version is a label.");
	fprintf(f, "gslbd_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	queries_render(f, m);
	pools_render(f, m);
	eligibility_render(f, m);
	health_render(f, m);
	cluster_render(f, m);
	dnstap_render(f, m);
	alias_render(f, m);
	put_head(f, "gslbd_reloads_total", "counter",
		 "Reloads after start-up: zone directory, database configuration, geo file.");
	fprintf(f, "gslbd_reloads_total %" PRIu64 "\n", *m->src.reloads);
	put_head(f, "gslbd_reload_failures_total", "counter",
		 "Reloads that failed wholly or in part (the previous data was kept).");
	fprintf(f, "gslbd_reload_failures_total %" PRIu64 "\n", *m->src.reload_failures);
	put_head(f, "gslbd_snapshot_generation", "gauge",
		 "Generation of the snapshot being answered from (1 at start-up).");
	fprintf(f, "gslbd_snapshot_generation %" PRIu64 "\n", snap ? snap->data.generation : 0);
	put_head(f, "gslbd_snapshot_age_seconds", "gauge",
		 "Seconds since the snapshot being answered from was built.");
	double age = snap ? (double)(now_ms - (int64_t)snap->built_ms) / 1000.0 : 0.0;
	fprintf(f, "gslbd_snapshot_age_seconds %.3f\n", age > 0 ? age : 0.0);
	/* A write that ran out of memory shows only here. */
	bool failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed) {
		free(text);
		return NULL;
	}
	return text;
}
