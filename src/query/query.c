/* SPDX-License-Identifier: MIT */
/*
 * The answer path: parse a query, look it up in the snapshot, write the response (no I/O, no
 * malloc).
 */
#include "gslb/query.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/dnssec.h"
#include "gslb/geo_cache.h"
#include "internal.h"

/* ---- the parsed query ---- */

struct ecs {
	uint16_t family; /* 1 IPv4, 2 IPv6 (RFC 7871 6) */
	uint8_t source;
	uint8_t addr_len;
	uint8_t addr[16];
};

struct query {
	uint16_t id;
	uint16_t flags;
	uint16_t qtype;
	uint16_t qclass;
	const uint8_t *qname; /* as received, client case */
	size_t qname_len;
	size_t question_end; /* offset just past QCLASS */
	int nlabels;
	uint8_t label_off[DNS_LABELS_MAX];
	uint8_t lname[DNS_NAME_MAX]; /* lowercased */

	bool edns;
	bool do_bit;
	bool nsid;
	bool has_ecs;
	uint8_t cookie_len; /* RFC 7873 COOKIE option: 0 none, else 8 or 16-40 */
	uint8_t keepalive;  /* RFC 7828 edns-tcp-keepalive: 0 none, 1 empty, 2 with a value */
	uint8_t edns_version;
	uint16_t udp_size;
	struct ecs ecs;
	const uint8_t *cookie; /* its data in the query: client cookie, then server cookie */

	/* Set only when parsing returns PARSE_TSIG: the query's TSIG (RFC 8945 4.2). */
	uint8_t tsig_key[DNS_NAME_MAX]; /* its owner, the key name, uncompressed */
	uint8_t tsig_key_len;
	size_t tsig_rdata;     /* offset of its rdata in the query */
	size_t tsig_orig_id;   /* offset of its Original ID field */
	uint16_t tsig_alg_len; /* the algorithm name, first in the rdata */
};

/* ---- the response being written ---- */

struct resp {
	uint8_t *buf;
	size_t pos;
	size_t limit; /* the sections may use buf[0..limit) */
	uint16_t apex_ptr;
	uint16_t count[3]; /* answer, authority, additional */
	bool overflow;
};

enum { SEC_AN = 0, SEC_NS = 1, SEC_AR = 2 };

#define PTR(off) ((uint16_t)(0xc000u | (off)))
#define PTR_MAX 0x3fffu

/*
 * Copy an RRset's wire block and patch its placeholders.  Returns the
 * offset where it starts, or 0 (never a valid offset: the header is
 * there) when it does not fit.
 */
static size_t put_rrset(struct resp *r, const zone_rrset_t *s, uint16_t owner_ptr, int sec)
{
	if (r->overflow || r->pos + s->len > r->limit) {
		r->overflow = true;
		return 0;
	}
	size_t start = r->pos;
	uint8_t *p = r->buf + start;
	memcpy(p, s->wire, s->len);
	for (uint32_t i = 0; i < s->nfix; i++)
		dns_put16(p + s->fix[i].off,
			  s->fix[i].kind == ZONE_FIX_OWNER ? owner_ptr : PTR(r->apex_ptr));
	r->pos += s->len;
	r->count[sec] += s->count;
	return start;
}

static bool put_bytes(struct resp *r, const void *data, size_t len)
{
	if (r->overflow || r->pos + len > r->limit) {
		r->overflow = true;
		return false;
	}
	memcpy(r->buf + r->pos, data, len);
	r->pos += len;
	return true;
}

/* ---- parsing ---- */

enum parse_result {
	PARSE_OK = 0,
	PARSE_DROP,
	PARSE_FORMERR_NOQ, /* FORMERR, question not echoed */
	PARSE_FORMERR,	   /* FORMERR, question echoed */
	PARSE_NOTIMP,	   /* NOTIMP, question and OPT echoed */
	PARSE_NOTIMP_NOQ,  /* NOTIMP, header only */
	PARSE_BADVERS,
	PARSE_TSIG, /* signed: NOTAUTH with a TSIG error, question and OPT echoed */
};

/* Skip a possibly compressed name in a record; returns the new offset or 0. */
static size_t skip_name(const uint8_t *m, size_t len, size_t pos)
{
	for (unsigned n = 0; n < DNS_NAME_MAX; n++) {
		if (pos >= len)
			return 0;
		uint8_t l = m[pos];
		if (l == 0)
			return pos + 1;
		if ((l & 0xc0) == 0xc0)
			return pos + 2 <= len ? pos + 2 : 0;
		if (l & 0xc0)
			return 0;
		pos += 1 + (size_t)l;
	}
	return 0;
}

/* RFC 7871 6 and 7.1.1: every malformed ECS option is a FORMERR. */
static inline __attribute__((always_inline)) int parse_ecs(struct query *q, const uint8_t *d,
							   uint16_t len)
{
	if (q->has_ecs || len < 4)
		return -1;
	struct ecs *e = &q->ecs;
	e->family = dns_get16(d);
	e->source = d[2];
	uint8_t scope = d[3];
	size_t max_bits;
	if (e->family == 1)
		max_bits = 32;
	else if (e->family == 2)
		max_bits = 128;
	else
		return -1;
	if (scope != 0 || e->source > max_bits)
		return -1;
	size_t need = ((size_t)e->source + 7) / 8;
	if ((size_t)len - 4 != need)
		return -1;
	memcpy(e->addr, d + 4, need);
	e->addr_len = (uint8_t)need;
	/* Bits beyond the source prefix must be zero (RFC 7871 6). */
	if (e->source % 8 && (e->addr[need - 1] & (uint8_t)(0xff >> (e->source % 8))))
		return -1;
	q->has_ecs = true;
	return 0;
}

static inline __attribute__((always_inline)) int parse_opt(struct query *q, const uint8_t *m,
							   size_t pos, uint16_t rclass,
							   uint32_t ttl, uint16_t rdlen)
{
	q->edns = true;
	q->udp_size = rclass;
	q->edns_version = (uint8_t)(ttl >> 16);
	q->do_bit = (ttl & DNS_EDNS_DO) != 0;
	/* RFC 6891 6.1.3: options are defined per version, so stop here. */
	if (q->edns_version != 0)
		return PARSE_BADVERS;
	size_t end = pos + rdlen;
	while (pos < end) {
		if (end - pos < 4)
			return PARSE_FORMERR;
		uint16_t code = dns_get16(m + pos);
		uint16_t olen = dns_get16(m + pos + 2);
		pos += 4;
		if (olen > end - pos)
			return PARSE_FORMERR;
		if (code == DNS_EDNS_NSID) {
			/* RFC 5001 2.1: a request carries an empty option. */
			if (olen == 0)
				q->nsid = true;
		} else if (code == DNS_EDNS_ECS) {
			if (parse_ecs(q, m + pos, olen) < 0)
				return PARSE_FORMERR;
		} else if (code == DNS_EDNS_COOKIE) {
			/*
			 * RFC 7873 5.2.2: a client cookie alone (8 bytes) or with
			 * a server cookie of 8 to 32 bytes; any other length, or a
			 * second COOKIE option, is malformed.
			 */
			if (q->cookie_len || !(olen == 8 || (olen >= 16 && olen <= 40)))
				return PARSE_FORMERR;
			q->cookie = m + pos;
			q->cookie_len = (uint8_t)olen;
		} else if (code == DNS_EDNS_KEEPALIVE) {
			/* Judged by transport in query_answer(): UDP ignores it (RFC 7828 3.2.1). */
			q->keepalive = olen ? 2 : 1;
		}
		pos += olen;
	}
	return PARSE_OK;
}

/*
 * A TSIG RR (RFC 8945 4.2) owned by the name at name_pos, its rdata of
 * rdlen bytes at pos.  Its fields are kept for the error response;
 * PARSE_TSIG, or PARSE_FORMERR when it cannot be interpreted (RFC 8945 5.2).
 */
static __attribute__((noinline, cold)) int parse_tsig(struct query *q, const uint8_t *m, size_t len,
						      size_t name_pos, size_t pos, uint16_t rdlen)
{
	int kl = dns_name_unpack(m, len, name_pos, q->tsig_key);
	/* The algorithm name is never compressed (RFC 8945 4.2, RFC 3597 4). */
	int al = dns_name_len(m + pos, rdlen);
	/* Time Signed, Fudge, MAC Size, then MAC, Original ID, Error, Other Len, Other Data. */
	if (kl < 0 || al < 0 || rdlen - (size_t)al < 10)
		return PARSE_FORMERR;
	size_t mac_len = dns_get16(m + pos + al + 8);
	size_t rest = rdlen - (size_t)al - 10;
	if (rest < mac_len + 6 || rest - mac_len - 6 != dns_get16(m + pos + al + 10 + mac_len + 4))
		return PARSE_FORMERR;
	q->tsig_key_len = (uint8_t)kl;
	q->tsig_rdata = pos;
	q->tsig_alg_len = (uint16_t)al;
	q->tsig_orig_id = pos + (size_t)al + 10 + mac_len;
	return PARSE_TSIG;
}

static int parse_message(struct query *q, const uint8_t *m, size_t len);

static int parse_query(struct query *q, const uint8_t *m, size_t len)
{
	if (len < DNS_HEADER_LEN)
		return PARSE_DROP;
	q->id = dns_get16(m);
	q->flags = dns_get16(m + 2);
	if (q->flags & DNS_F_QR)
		return PARSE_DROP;
	/*
	 * Other opcodes get NOTIMP; their question and OPT are still echoed
	 * when they parse (README "DNS behaviour": OPT exactly when the query had one).
	 */
	bool notimp = ((q->flags >> 11) & 0xf) != DNS_OPCODE_QUERY;
	int ret = parse_message(q, m, len);
	if (notimp && ret != PARSE_TSIG)
		return ret == PARSE_OK ? PARSE_NOTIMP : PARSE_NOTIMP_NOQ;
	return ret;
}

/*
 * Copy the n bytes of a wire name, lowercasing A-Z eight bytes at a time
 * (length bytes are at most 63, never letters, so they pass unchanged).
 */
static void name_lower_copy(uint8_t *dst, const uint8_t *src, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	if (n < 8) {
		for (size_t i = 0; i < n; i++)
			dst[i] = dns_lower(src[i]);
		return;
	}
	for (size_t i = 0;; i += 8) {
		/* The last block overlaps the one before: lowercasing twice changes nothing. */
		if (i + 8 > n)
			i = n - 8;
		uint64_t v;
		memcpy(&v, src + i, 8);
		uint64_t low7 = v & ~high;
		/* Each byte's top bit: low7 >= 'A', low7 > 'Z' (no carry leaves a byte). */
		uint64_t ge_a = low7 + ones * (0x80 - 'A');
		uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);
		v |= (ge_a & ~gt_z & ~v & high) >> 2;
		memcpy(dst + i, &v, 8);
		if (i + 8 == n)
			return;
	}
}

/*
 * The answer, authority and additional records from pos on: only an OPT in
 * the additional section is of use, and a TSIG, which is answered with an
 * error.  PARSE_OK, PARSE_FORMERR, PARSE_BADVERS or PARSE_TSIG.
 */
static inline __attribute__((always_inline)) int parse_records(struct query *q, const uint8_t *m,
							       size_t len, size_t pos)
{
	unsigned an = dns_get16(m + 6), ns = dns_get16(m + 8), ar = dns_get16(m + 10);
	unsigned total = an + ns + ar;
	bool seen_opt = false;
	for (unsigned i = 0; i < total; i++) {
		size_t name_pos = pos;
		pos = skip_name(m, len, pos);
		if (pos == 0 || len - pos < 10)
			return PARSE_FORMERR;
		uint16_t type = dns_get16(m + pos);
		uint16_t rclass = dns_get16(m + pos + 2);
		uint32_t ttl = dns_get32(m + pos + 4);
		uint16_t rdlen = dns_get16(m + pos + 8);
		pos += 10;
		if (rdlen > len - pos)
			return PARSE_FORMERR;
		if (type == DNS_T_OPT) {
			/* RFC 6891 6.1.1: one OPT, in the additional section, owned by the root. */
			if (seen_opt || i < an + ns || m[name_pos] != 0)
				return PARSE_FORMERR;
			seen_opt = true;
			int ret = parse_opt(q, m, pos, rclass, ttl, rdlen);
			if (ret != PARSE_OK)
				return ret;
		} else if (type == DNS_T_TSIG) {
			/* RFC 8945 5.1: the last record, in the additional section. */
			if (i != total - 1 || i < an + ns)
				return PARSE_FORMERR;
			return parse_tsig(q, m, len, name_pos, pos, rdlen);
		}
		pos += rdlen;
	}
	return PARSE_OK;
}

/*
 * QDCOUNT is not 1: FORMERR without a question.  The OPT record is still
 * echoed (README "DNS behaviour": OPT exactly when the query had one) when the whole
 * message parses, bare: no NSID, no ECS echo in a FORMERR.
 */
static __attribute__((noinline, cold)) int parse_no_question(struct query *q, const uint8_t *m,
							     size_t len, unsigned qd)
{
	size_t pos = DNS_HEADER_LEN;
	for (unsigned i = 0; i < qd; i++) {
		pos = skip_name(m, len, pos);
		if (pos == 0 || len - pos < 4)
			return PARSE_FORMERR_NOQ;
		pos += 4;
	}
	int ret = parse_records(q, m, len, pos);
	if (ret == PARSE_FORMERR)
		q->edns = false;
	q->nsid = q->has_ecs = false;
	q->cookie_len = q->keepalive = 0;
	return PARSE_FORMERR_NOQ;
}

static int parse_message(struct query *q, const uint8_t *m, size_t len)
{
	unsigned qd = dns_get16(m + 4);
	if (qd != 1)
		return parse_no_question(q, m, len, qd);

	/* The question name: no compression allowed. */
	size_t pos = DNS_HEADER_LEN;
	int labels = 0;
	q->qname = m + pos;
	for (;;) {
		if (pos >= len)
			return PARSE_FORMERR_NOQ;
		uint8_t l = m[pos];
		if (l == 0)
			break;
		size_t off = pos - DNS_HEADER_LEN;
		if (l > DNS_LABEL_MAX || off + 1 + l >= DNS_NAME_MAX || pos + 1 + l >= len)
			return PARSE_FORMERR_NOQ;
		q->label_off[labels++] = (uint8_t)off;
		pos += 1 + (size_t)l;
	}
	pos++;
	q->qname_len = pos - DNS_HEADER_LEN;
	name_lower_copy(q->lname, q->qname, q->qname_len);
	q->nlabels = labels;
	if (len - pos < 4)
		return PARSE_FORMERR_NOQ;
	q->qtype = dns_get16(m + pos);
	q->qclass = dns_get16(m + pos + 2);
	pos += 4;
	q->question_end = pos;

	int ret = parse_records(q, m, len, pos);
	if (ret != PARSE_OK)
		return ret;
	if (q->qtype == DNS_T_OPT)
		return PARSE_FORMERR;
	return PARSE_OK;
}

/* ---- answering ---- */

struct answer {
	query_ctx_t *ctx;
	const query_data_t *snap;
	struct query *q;
	struct resp r;
	uint16_t rcode;
	bool aa;
	const struct sockaddr *peer;
	uint8_t ecs_scope;  /* RFC 7871 7.2.1: the widest scope any pool answer needs */
	bool wildcard;	    /* an answer synthesized from a wildcard (RFC 4592) */
	const zone_t *zone; /* the zone answering, NULL outside every zone */
	uint32_t name_hash; /* zone_name_hash() of the name answered last */
	/*
	 * A COOKIE option goes in the response: the client's cookie and
	 * server_cookie, the one it sent when still young or a fresh one.
	 */
	bool put_cookie;
	bool put_keepalive; /* RFC 7828: the TCP idle timeout in the response */
	bool cookie_valid;  /* the query's server cookie verified: never rate-limited */
	uint8_t server_cookie[16];
	/* DNSSEC: the signed zone answering when the query has DO=1, else NULL (nothing signed). */
	const dnssec_zone_t *sign;
};

/* ---- DNSSEC: RRSIGs of what is written, compact denial (README "DNSSEC") ---- */

static inline uint64_t now_ms(query_ctx_t *ctx);

/* RRs an RRset may have to be signed; a larger one goes unsigned (counted). */
#define SIGN_RRS_MAX 2048
/* Bytes of an RRset in canonical form; the response's size bounds it. */
#define SIGN_WIRE_MAX (DNS_MSG_MAX + 1024)
#define SIGN_HEAD_MAX (DNSSEC_RRSIG_HEAD + DNS_NAME_MAX)
/* The signature cache's entries per worker: 2^13 (gslbd(8) DNSSEC: 960 KiB). */
#define SIGN_CACHE_BITS 13

struct query_sign {
	dnssec_cache_t *cache;
	dnssec_rdata_t rr[SIGN_RRS_MAX];
	uint8_t rdata[SIGN_WIRE_MAX]; /* each RR's RDATA in canonical form */
	/* The RRSIG head then the RRs, contiguous: what is signed (RFC 4034 3.1.8.1). */
	uint8_t data[SIGN_HEAD_MAX + SIGN_WIRE_MAX];
};

/*
 * The worker's signing state, made the first time it signs: one
 * allocation, once, on the path of a cache miss (which signs, and OpenSSL
 * allocates then anyway).  NULL when out of memory.
 */
static __attribute__((noinline, cold)) struct query_sign *sign_state_new(query_ctx_t *ctx)
{
	struct query_sign *st = malloc(sizeof(*st));
	if (!st)
		return NULL;
	st->cache = dnssec_cache_new(SIGN_CACHE_BITS);
	if (!st->cache) {
		free(st);
		return NULL;
	}
	ctx->sign = st;
	return st;
}

/*
 * Read the possibly compressed name at pos of the response into out,
 * lowercased and whole.  Returns its length, 0 when malformed (never for
 * what the answer path wrote).
 */
static size_t resp_name(const uint8_t *m, size_t end, size_t pos, uint8_t *out)
{
	size_t n = 0;
	for (unsigned hops = 0; hops < 64 && pos < end;) {
		uint8_t l = m[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 2 > end)
				return 0;
			pos = (size_t)(dns_get16(m + pos) & PTR_MAX);
			hops++;
			continue;
		}
		if (l > 63 || n + 1 + l > DNS_NAME_MAX || pos + 1 + l > end)
			return 0;
		out[n++] = l;
		if (l == 0)
			return n;
		/* Byte by byte: name_lower_copy() stays inlined in the parser, its one caller. */
		for (size_t i = 0; i < l; i++)
			out[n + i] = dns_lower(m[pos + 1 + i]);
		n += l;
		pos += 1 + (size_t)l;
	}
	return 0;
}

/*
 * The RDATA at m[rd..rd+len) in canonical form (RFC 4034 6.2): the names
 * of the types the answer path compresses, and SRV's, uncompressed and
 * lowercased; the rest as it is.  Returns its length, 0 if it does not fit.
 */
static size_t canon_rdata(const uint8_t *m, size_t end, uint16_t type, size_t rd, uint16_t len,
			  uint8_t *out, size_t cap)
{
	size_t pre = 0, names = 1, post = 0;
	switch (type) {
	case DNS_T_NS:
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_DNAME:
		break;
	case DNS_T_MX:
		pre = 2;
		break;
	case DNS_T_SRV:
		pre = 6;
		break;
	case DNS_T_SOA:
		names = 2;
		post = 20;
		break;
	default:
		if (len > cap)
			return 0;
		memcpy(out, m + rd, len);
		return len;
	}
	if (cap < pre + names * DNS_NAME_MAX + post || pre > len)
		return 0;
	memcpy(out, m + rd, pre);
	size_t n = pre, at = rd + pre;
	for (size_t i = 0; i < names; i++) {
		size_t nl = resp_name(m, end, at, out + n);
		size_t next = skip_name(m, rd + len, at);
		if (!nl || !next)
			return 0;
		n += nl;
		at = next;
	}
	if (at + post != rd + len)
		return 0;
	memcpy(out + n, m + at, post);
	return n + post;
}

/*
 * The RRset the response holds at [start, end) with owner owner in
 * canonical form (RFC 4034 3.1.8.1) at st->data + SIGN_HEAD_MAX, where
 * the RRSIG head goes before it.  Returns its length, 0 when it cannot be
 * signed.
 */
static size_t sign_canon(struct query_sign *st, const uint8_t *m, size_t start, size_t end,
			 const uint8_t *owner, size_t olen, uint16_t type, uint32_t ttl)
{
	size_t n = 0, used = 0;
	for (size_t p = start; p < end; n++) {
		size_t f = skip_name(m, end, p);
		if (!f || f + 10 > end || n == SIGN_RRS_MAX)
			return 0;
		uint16_t rdlen = dns_get16(m + f + 8);
		size_t cl = canon_rdata(m, end, type, f + 10, rdlen, st->rdata + used,
					sizeof(st->rdata) - used);
		if (!cl && rdlen)
			return 0;
		st->rr[n].data = st->rdata + used;
		st->rr[n].len = (uint16_t)cl;
		used += cl;
		p = f + 10 + rdlen;
	}
	dnssec_rdata_sort(st->rr, n);
	return dnssec_rrset_wire(st->data + SIGN_HEAD_MAX, SIGN_WIRE_MAX, owner, olen, type, ttl,
				 st->rr, n);
}

/*
 * The signature cache's key of an A or AAAA RRset the response holds at
 * [start, end), owner its owner lowercased, in h: false when malformed.
 * Its RDATAs are addresses, canonical as written, so the key needs no
 * canonical form; it combines a keyed hash of each by a sum, as their
 * canonical order would, so that a pool's answers in any order share one
 * signature (a duplicate counts twice, and is signed once all the same).
 */
static bool addr_rrset_key(const dnssec_cache_t *c, const uint8_t *m, size_t start, size_t end,
			   const uint8_t *owner, size_t olen, uint16_t type, uint32_t ttl,
			   uint64_t h[2])
{
	/* A first byte no name starts with: apart from any canonical form's key. */
	uint8_t k[1 + 2 + 4 + 2 + 16 + DNS_NAME_MAX];
	uint64_t sum[2] = { 0, 0 };
	uint16_t n = 0;
	for (size_t p = start; p < end; n++) {
		size_t f = skip_name(m, end, p);
		if (!f || f + 10 > end)
			return false;
		uint16_t rdlen = dns_get16(m + f + 8);
		if (f + 10 + rdlen > end)
			return false;
		uint64_t one[2];
		dnssec_cache_hash(c, m + f + 10, rdlen, one);
		sum[0] += one[0];
		sum[1] += one[1];
		p = f + 10 + rdlen;
	}
	k[0] = 0xff;
	dns_put16(k + 1, type);
	dns_put32(k + 3, ttl);
	dns_put16(k + 7, n);
	memcpy(k + 9, sum, 16);
	memcpy(k + 25, owner, olen);
	dnssec_cache_hash(c, k, 25 + olen, h);
	return true;
}

/* The owner of the RR at start, lowercased, in owner: its length, 0 when malformed. */
static size_t sign_owner(const struct answer *a, size_t start, bool qowner, uint8_t *owner)
{
	if (qowner) {
		memcpy(owner, a->q->lname, a->q->qname_len);
		return a->q->qname_len;
	}
	return resp_name(a->r.buf, a->r.pos, start, owner);
}

/*
 * Sign the RRset the response holds at [start, pos): one RRSIG per signing
 * key after it, in section sec, from the worker's cache or signed now (and
 * cached).  The RRSIG's owner is the RRset's owner as written; its TTL and
 * original TTL the RRset's (RFC 4034 3.1.4).  An RRSIG that does not fit
 * truncates the answer like any other record.
 *
 * set is the RRset of the signed zone's zone_t written there whole
 * (put_rrset()), or NULL for one built per answer; wild is true when its
 * owner is not its node's name (a wildcard's RRset, owned by the name
 * asked).  A zone's RRset in canonical form depends only on its owner (the
 * names in its RDATA are fixed), so its signature is found in the cache by
 * the RRset's address and the zone_t's generation (an address is not
 * reused while the zone_t lives; snapshots rebuilt for pools share it),
 * with the owner for a wildcard's, without reading the RRset back from the
 * response; what was built per answer is found by a hash of its addresses
 * (a pool's answer, addr_rrset_key()) or of its canonical form.
 */
static __attribute__((noinline)) void sign_rrset_any(struct answer *a, size_t start, int sec,
						     const zone_rrset_t *set, bool wild)
{
	struct resp *r = &a->r;
	const dnssec_zone_t *dz = a->sign;
	if (r->overflow || !start || !dz->nkeys)
		return;
	struct query_sign *st = a->ctx->sign ? a->ctx->sign : sign_state_new(a->ctx);
	const uint8_t *m = r->buf;
	size_t end = r->pos;
	/* The owner is most often a pointer: its two bytes are the whole name. */
	size_t ofield = (m[start] & 0xc0) == 0xc0 ? start + 2 : skip_name(m, end, start);
	if (!st || !ofield) {
		a->ctx->stats.rrsigs_failed++;
		return;
	}
	/* Most often the owner is the question's name, lowercased already. */
	bool qowner = ofield == start + 2 && dns_get16(m + start) == PTR(DNS_HEADER_LEN);
	/*
	 * The owner, lowercased, after the RRset's address and the zone's
	 * generation: the cache's key of a wildcard's RRset.
	 */
	uint64_t id[2 + (DNS_NAME_MAX + 7) / 8];
	uint8_t *owner = (uint8_t *)&id[2];
	size_t olen = 0;
	uint16_t type = dns_get16(m + ofield);
	uint32_t ttl = dns_get32(m + ofield + 4);
	uint8_t *rrs = st->data + SIGN_HEAD_MAX;
	size_t rl = 0;
	/* The cache's key: what is signed but the times (or where it is), and the signing key. */
	uint64_t base[2];
	if (set && !wild && qowner) {
		/* The owner is the name of set's node: set alone tells what is signed. */
		dnssec_cache_key(st->cache, (uint64_t)(uintptr_t)set, dz->zone->gen, base);
	} else {
		olen = sign_owner(a, start, qowner, owner);
		if (!olen) {
			a->ctx->stats.rrsigs_failed++;
			return;
		}
		if (set && !wild) {
			dnssec_cache_key(st->cache, (uint64_t)(uintptr_t)set, dz->zone->gen, base);
		} else if (set) {
			id[0] = (uint64_t)(uintptr_t)set;
			id[1] = dz->zone->gen;
			dnssec_cache_hash(st->cache, (const uint8_t *)id, 16 + olen, base);
		} else if (type == DNS_T_A || type == DNS_T_AAAA) {
			if (!addr_rrset_key(st->cache, m, start, end, owner, olen, type, ttl,
					    base)) {
				a->ctx->stats.rrsigs_failed++;
				return;
			}
		} else {
			rl = sign_canon(st, m, start, end, owner, olen, type, ttl);
			if (!rl) {
				a->ctx->stats.rrsigs_failed++;
				return;
			}
			dnssec_cache_hash(st->cache, rrs, rl, base);
		}
	}
	uint32_t now = (uint32_t)(now_ms(a->ctx) / 1000);
	size_t hl = dz->head_len[0];
	size_t sl = hl - DNSSEC_RRSIG_HEAD;
	size_t ownl = ofield - start;
	for (uint32_t k = 0; k < dz->nkeys; k++) {
		uint64_t h[2] = { base[0] ^ dz->key_id[k], base[1] + dz->key_id[k] };
		const uint8_t *rec = dnssec_cache_get(st->cache, h, now);
		uint8_t made[DNSSEC_CACHE_REC];
		if (rec) {
			a->ctx->stats.rrsigs_cached++;
		} else {
			/* A miss reads the RRset back (once for all keys), as one built per answer. */
			if (!olen)
				olen = sign_owner(a, start, qowner, owner);
			if (!rl && olen)
				rl = sign_canon(st, m, start, end, owner, olen, type, ttl);
			if (!rl) {
				a->ctx->stats.rrsigs_failed++;
				return;
			}
			uint8_t *head = rrs - hl;
			memcpy(head, dz->head[k], hl);
			dns_put16(head, type);
			head[3] = dnssec_labels(owner);
			dns_put32(head + 4, ttl);
			dns_put32(head + 8, now + DNSSEC_VALIDITY);
			dns_put32(head + 12, now - DNSSEC_INCEPTION_BACK);
			if (dnssec_key_sign(dz->keys[k], head, hl + rl, made + DNSSEC_CACHE_PRE) <
			    0) {
				a->ctx->stats.rrsigs_failed++;
				continue;
			}
			/* The record's fixed part before the head's: type, class, TTL, length. */
			dns_put16(made, DNS_T_RRSIG);
			dns_put16(made + 2, DNS_C_IN);
			dns_put32(made + 4, ttl);
			dns_put16(made + 8, (uint16_t)(hl + DNSSEC_SIG_LEN));
			memcpy(made + 10, head, DNSSEC_RRSIG_HEAD);
			dnssec_cache_put(st->cache, h, made);
			a->ctx->stats.rrsigs_signed++;
			rec = made;
		}
		if (r->pos + ownl + DNSSEC_CACHE_REC + sl > r->limit) {
			r->overflow = true;
			return;
		}
		/*
		 * The owner as the RRset's (most often a pointer), the record's
		 * fixed part, the zone's name as signer (never compressed, RFC
		 * 4034 3.1.7), the signature.
		 */
		uint8_t *w = r->buf + r->pos;
		if (ownl == 2)
			memcpy(w, m + start, 2);
		else
			memmove(w, m + start, ownl);
		w += ownl;
		memcpy(w, rec, DNSSEC_CACHE_PRE);
		memcpy(w + DNSSEC_CACHE_PRE, dz->head[k] + DNSSEC_RRSIG_HEAD, sl);
		memcpy(w + DNSSEC_CACHE_PRE + sl, rec + DNSSEC_CACHE_PRE, DNSSEC_SIG_LEN);
		r->pos += ownl + DNSSEC_CACHE_REC + sl;
		r->count[sec]++;
	}
}

/*
 * sign_rrset() of the most common signed answer: set, a zone's RRset
 * owned by its node's name, written with a pointer to the question as its
 * owner, in a zone signed with one key (but while a rollover overlaps), its
 * signature in the cache.  False, having written nothing, for anything else
 * (sign_rrset_any() then does the whole work).
 */
static bool sign_rrset_cached(struct answer *a, size_t start, int sec, const zone_rrset_t *set)
{
	struct resp *r = &a->r;
	const dnssec_zone_t *dz = a->sign;
	const struct query_sign *st = a->ctx->sign;
	if (!st || dz->nkeys != 1 || r->overflow || !start ||
	    dns_get16(r->buf + start) != PTR(DNS_HEADER_LEN))
		return false;
	uint64_t h[2];
	dnssec_cache_key(st->cache, (uint64_t)(uintptr_t)set, dz->zone->gen, h);
	h[0] ^= dz->key_id[0];
	h[1] += dz->key_id[0];
	const uint8_t *rec = dnssec_cache_get(st->cache, h, (uint32_t)(now_ms(a->ctx) / 1000));
	if (!rec)
		return false;
	size_t sl = dz->head_len[0] - DNSSEC_RRSIG_HEAD;
	if (r->pos + 2 + DNSSEC_CACHE_REC + sl > r->limit) {
		r->overflow = true;
		return true;
	}
	uint8_t *w = r->buf + r->pos;
	dns_put16(w, PTR(DNS_HEADER_LEN));
	memcpy(w + 2, rec, DNSSEC_CACHE_PRE);
	memcpy(w + 2 + DNSSEC_CACHE_PRE, dz->head[0] + DNSSEC_RRSIG_HEAD, sl);
	memcpy(w + 2 + DNSSEC_CACHE_PRE + sl, rec + DNSSEC_CACHE_PRE, DNSSEC_SIG_LEN);
	r->pos += 2 + DNSSEC_CACHE_REC + sl;
	r->count[sec]++;
	a->ctx->stats.rrsigs_cached++;
	return true;
}

/*
 * Sign the RRset the response holds at [start, pos): sign_rrset_any(),
 * after the way of the most common answer.
 */
static inline void sign_rrset(struct answer *a, size_t start, int sec, const zone_rrset_t *set,
			      bool wild)
{
	if (set && !wild && sign_rrset_cached(a, start, sec, set))
		return;
	sign_rrset_any(a, start, sec, set, wild);
}

/*
 * RFC 9824: the NSEC of compact denial at the name whose owner is at
 * owner_ptr, next name "\000." and the name, with the types of node (NULL:
 * the name does not exist, so NXNAME), A and AAAA for a pool (less the
 * type asked, which a pool may lack), and the apex's keys; signed, in the
 * authority section, TTL ttl.
 */
/*
 * The next name of the NSEC owned by name (lowercased wire, nl octets) in
 * signed zone dz: its immediate successor in canonical order (RFC 9824
 * 3.1), into out.  "\000." before the name when that fits in 255 octets
 * (RFC 9824's form); else, the name having no room for a child, the
 * smallest name after it and its would-be subtree (RFC 4471 3.1.2): a zero
 * octet after its first label's (the label shorter than 63), or that
 * label's last octet plus one, its trailing 0xff octets dropped first; an
 * uppercase letter sorts as its lowercase one (RFC 4034 6.1), so one is
 * stepped over.  A first label of 63 0xff octets is the last of its
 * siblings: the label is dropped and the same is done for the parent,
 * without the child, so nothing lies between the name and the next one
 * and a resolver using the NSEC aggressively (RFC 8198) denies no name of
 * the zone.  Dropped up to the apex, the name is the zone's last: the
 * apex, as the last NSEC of a zone has (RFC 4034 4.1.1).  Returns the
 * length, 0 when none.
 */
static size_t nsec_next(const uint8_t *name, size_t nl, const dnssec_zone_t *dz, uint8_t *out)
{
	if (nl + 2 <= DNS_NAME_MAX) {
		out[0] = 1;
		out[1] = 0;
		memcpy(out + 2, name, nl);
		return nl + 2;
	}
	/* The name is within the zone: its apex is its last apex_len octets. */
	while (nl > dz->apex_len) {
		uint8_t l = name[0];
		if (l == 0)
			return 0;
		if (l < 63 && nl + 1 <= DNS_NAME_MAX) {
			out[0] = (uint8_t)(l + 1);
			memcpy(out + 1, name + 1, l);
			out[1 + l] = 0;
			memcpy(out + 2 + l, name + 1 + l, nl - 1 - l);
			return nl + 1;
		}
		size_t k = l;
		while (k > 0 && name[k] == 0xff)
			k--;
		if (k == 0) {
			name += 1 + l;
			nl -= 1 + (size_t)l;
			continue;
		}
		out[0] = (uint8_t)k;
		memcpy(out + 1, name + 1, k);
		uint8_t c = (uint8_t)(name[k] + 1);
		out[k] = c >= 'A' && c <= 'Z' ? 'Z' + 1 : c;
		memcpy(out + 1 + k, name + 1 + l, nl - 1 - l);
		return nl - (l - k);
	}
	memcpy(out, dz->apex, dz->apex_len);
	return dz->apex_len;
}

static void put_nsec(struct answer *a, uint16_t owner_ptr, uint32_t ttl, const zone_node_t *node,
		     bool pool, bool cut)
{
	struct resp *r = &a->r;
	if (r->overflow)
		return;
	uint8_t name[DNS_NAME_MAX];
	size_t nl = resp_name(r->buf, r->pos, owner_ptr & PTR_MAX, name);
	uint16_t types[64];
	size_t nt = 0;
	types[nt++] = DNS_T_RRSIG;
	types[nt++] = DNSSEC_T_NSEC;
	if (!node && !pool) {
		types[nt++] = DNSSEC_T_NXNAME;
	} else {
		for (uint16_t i = 0; node && i < node->nrrsets && nt < ARRAY_SIZE(types) - 5; i++)
			types[nt++] = node->rrsets[i].type;
		if (pool) {
			types[nt++] = DNS_T_A;
			types[nt++] = DNS_T_AAAA;
		}
		if (node && (node->flags & ZONE_NODE_APEX)) {
			types[nt++] = DNSSEC_T_DNSKEY;
			types[nt++] = DNSSEC_T_CDS;
			types[nt++] = DNSSEC_T_CDNSKEY;
		}
		/* What was asked is not there: NODATA (or a delegation without DS). */
		size_t k = 0;
		for (size_t i = 0; i < nt; i++)
			if (cut || types[i] != a->q->qtype)
				types[k++] = types[i];
		nt = k;
	}
	uint8_t bitmap[8704];
	size_t bl = dnssec_type_bitmap(types, nt, bitmap);
	uint8_t next[DNS_NAME_MAX];
	size_t xl = nl ? nsec_next(name, nl, a->sign, next) : 0;
	size_t rdlen = xl + bl;
	if (!xl) {
		a->ctx->stats.rrsigs_failed++;
		return;
	}
	if (r->pos + 12 + rdlen > r->limit) {
		r->overflow = true;
		return;
	}
	size_t start = r->pos;
	uint8_t *w = r->buf + start;
	dns_put16(w, owner_ptr);
	dns_put16(w + 2, DNSSEC_T_NSEC);
	dns_put16(w + 4, DNS_C_IN);
	dns_put32(w + 6, ttl);
	dns_put16(w + 10, (uint16_t)rdlen);
	/* The next name is never compressed (RFC 4034 4.1.1). */
	memcpy(w + 12, next, xl);
	memcpy(w + 12 + xl, bitmap, bl);
	r->pos += 12 + rdlen;
	r->count[SEC_NS]++;
	sign_rrset(a, start, SEC_NS, NULL, false);
}

/*
 * A signed negative answer (RFC 9824): the SOA at soa_at signed, and the
 * NSEC of the name at owner_ptr with its TTL; the name that does not
 * exist is NODATA, its NSEC saying so (NXNAME).
 */
static __attribute__((noinline)) void sign_negative(struct answer *a, size_t soa_at,
						    uint16_t owner_ptr, const zone_node_t *node,
						    bool pool, const zone_rrset_t *soa)
{
	if (!soa_at)
		return;
	a->rcode = DNS_RCODE_NOERROR;
	uint32_t ttl = dns_get32(a->r.buf + soa_at + 6);
	sign_rrset(a, soa_at, SEC_NS, soa, false);
	put_nsec(a, owner_ptr, ttl, node, pool, false);
}

/*
 * A query in zone z of a server with signed zones: signed answers when z
 * is signed and the query has DO=1 (a->sign), and the apex's DNSKEY, CDS
 * and CDNSKEY RRsets (for any DO bit, as any RRset).  True when answered.
 */
static __attribute__((noinline)) bool dnssec_begin(struct answer *a, const zone_t *z)
{
	const dnssec_zone_t *dz = dnssec_set_find(a->snap->dnssec, z);
	if (!dz)
		return false;
	if (a->q->do_bit)
		a->sign = dz;
	uint16_t t = a->q->qtype;
	if (a->q->qname_len != z->apex_len ||
	    (t != DNSSEC_T_DNSKEY && t != DNSSEC_T_CDS && t != DNSSEC_T_CDNSKEY))
		return false;
	const zone_rrset_t *set = t == DNSSEC_T_DNSKEY ? &dz->dnskey
				  : t == DNSSEC_T_CDS  ? &dz->cds
						       : &dz->cdnskey;
	if (!set->count)
		return false;
	a->aa = true;
	size_t at = put_rrset(&a->r, set, PTR(DNS_HEADER_LEN), SEC_AN);
	/* Keyed by content: the signed zone holding these RRsets is rebuilt with each snapshot. */
	if (a->sign)
		sign_rrset(a, at, SEC_AN, NULL, false);
	return true;
}

/*
 * NXDOMAIN or NODATA for the name at owner_ptr, whose node is node (NULL:
 * none) and which a pool has (pool); signed, compact denial (sign_negative()).
 */
static void put_negative(struct answer *a, const zone_t *z, uint16_t rcode, uint16_t owner_ptr,
			 const zone_node_t *node, bool pool)
{
	a->rcode = rcode;
	size_t at = put_rrset(&a->r, &z->soa_neg, PTR(a->r.apex_ptr), SEC_NS);
	if (a->sign)
		sign_negative(a, at, owner_ptr, node, pool, &z->soa_neg);
}

/*
 * RFC 4035 3.1.4 at a signed zone's cut: the DS RRset, or the NSEC (RFC
 * 9824) proving there is none (types NS, RRSIG, NSEC), signed.
 */
static __attribute__((noinline)) void sign_referral(struct answer *a, const zone_t *z,
						    const zone_node_t *cut, uint16_t owner_ptr)
{
	const zone_rrset_t *ds = zone_node_rrset(cut, DNS_T_DS);
	if (ds) {
		size_t at = put_rrset(&a->r, ds, owner_ptr, SEC_NS);
		sign_rrset(a, at, SEC_NS, ds, false);
		return;
	}
	put_nsec(a, owner_ptr, z->soa_neg.ttl, cut, false, true);
}

/* A referral to the cut at node cut (RFC 1034 4.3.2 step 3b). */
static void put_referral(struct answer *a, const zone_t *z, const zone_node_t *cut,
			 uint16_t owner_ptr)
{
	const zone_rrset_t *ns = zone_node_rrset(cut, DNS_T_NS);
	a->aa = false;
	size_t at = put_rrset(&a->r, ns, owner_ptr, SEC_NS);
	if (!at)
		return;
	if (a->sign)
		sign_referral(a, z, cut, owner_ptr);
	const zone_rrset_ext_t *x = ns->ext;
	for (uint32_t i = 0; i < x->nglue; i++) {
		size_t target = at + x->target_off[x->glue_ns[i]];
		if (target > PTR_MAX)
			break;
		put_rrset(&a->r, x->glue[i], PTR(target), SEC_AR);
	}
}

/* RFC 8482 4.2: answer ANY with one synthesized HINFO. */
static void put_hinfo(struct answer *a, uint16_t owner_ptr, uint32_t ttl)
{
	uint8_t rr[2 + 10 + 9];
	dns_put16(rr, owner_ptr);
	dns_put16(rr + 2, DNS_T_HINFO);
	dns_put16(rr + 4, DNS_C_IN);
	dns_put32(rr + 6, ttl);
	dns_put16(rr + 10, 9);
	memcpy(rr + 12, "\7RFC8482\0", 9);
	size_t at = a->r.pos;
	if (put_bytes(&a->r, rr, sizeof(rr))) {
		a->r.count[SEC_AN]++;
		if (a->sign)
			sign_rrset(a, at, SEC_AN, NULL, false);
	}
}

/*
 * Interface 7: the client is the ECS address when the source prefix is
 * above 0, else the peer (an IPv4-mapped IPv6 peer counts as IPv4).
 */
static void client_get(const struct answer *a, lb_client_t *cl)
{
	const struct query *q = a->q;
	memset(cl->addr, 0, sizeof(cl->addr));
	cl->family = 0;
	if (q->has_ecs && q->ecs.source > 0) {
		cl->family = q->ecs.family == 2 ? 6 : 4;
		memcpy(cl->addr, q->ecs.addr, q->ecs.addr_len);
	} else if (a->peer && a->peer->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)a->peer;
		cl->family = 4;
		memcpy(cl->addr, &sin->sin_addr, 4);
	} else if (a->peer && a->peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)a->peer;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			cl->family = 4;
			memcpy(cl->addr, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			cl->family = 6;
			memcpy(cl->addr, sin6->sin6_addr.s6_addr, 16);
		}
	}
}

/*
 * Where the client is, from the worker's cache or the snapshot's database
 * (then remembered).  Returns tmp, filled, or NULL when the database
 * cannot say.
 */
static const geo_info_t *client_locate(struct answer *a, const lb_client_t *cl, geo_info_t *tmp)
{
	const geo_db_t *db = a->snap->geo;
	geo_cache_t *c = a->ctx->geo_cache;
	if (!db || !cl->family)
		return NULL;
	if (!c) {
		a->ctx->stats.geo_cache_misses++;
		return geo_db_lookup(db, cl->family, cl->addr, tmp) == 0 ? tmp : NULL;
	}
	geo_cache_use(c, db, a->snap->generation);
	const geo_info_t *hit = geo_cache_lookup(c, cl->family, cl->addr, tmp);
	if (hit) {
		a->ctx->stats.geo_cache_hits++;
		return hit;
	}
	a->ctx->stats.geo_cache_misses++;
	if (geo_db_lookup(db, cl->family, cl->addr, tmp) != 0)
		return NULL;
	geo_cache_store(c, cl->family, cl->addr, tmp);
	return tmp;
}

/*
 * The A or AAAA answer of a pool (README "Balanced names"), owner at
 * owner_ptr.  Returns where it starts, or where the SOA of a NODATA does; 0
 * when nothing was written.
 */
static size_t put_pool(struct answer *a, const zone_t *z, const lb_pool_t *p, uint16_t owner_ptr)
{
	int family = a->q->qtype == DNS_T_AAAA ? 6 : 4;
	lb_result_t res;
	lb_client_t cl = { .family = 0, .geo = NULL };
	geo_info_t info;
	if (p->policy == LB_POLICY_GEO) {
		client_get(a, &cl);
		cl.geo = client_locate(a, &cl, &info);
	}
	lb_pool_select(p, family, &cl, a->snap->health, a->ctx->rng, &res);
	/* The scope only means something for the ECS address (RFC 7871 7.2.1). */
	if (a->q->has_ecs && a->q->ecs.source > 0 && res.scope > a->ecs_scope)
		a->ecs_scope = res.scope;
	if (res.nodata) {
		size_t at = put_rrset(&a->r, &z->soa_neg, PTR(a->r.apex_ptr), SEC_NS);
		/* fallback none: the negative answer is cached no longer than degraded-ttl */
		if (at && res.degraded && res.ttl < z->soa_neg.ttl)
			dns_put32(a->r.buf + at + 6, res.ttl);
		return at;
	}
	uint16_t rdlen = family == 6 ? 16 : 4;
	size_t rrlen = 12 + (size_t)rdlen;
	if (a->r.overflow || a->r.pos + rrlen * res.naddrs > a->r.limit) {
		a->r.overflow = true;
		return 0;
	}
	uint8_t *w = a->r.buf + a->r.pos;
	for (uint16_t i = 0; i < res.naddrs; i++, w += rrlen) {
		dns_put16(w, owner_ptr);
		dns_put16(w + 2, family == 6 ? DNS_T_AAAA : DNS_T_A);
		dns_put16(w + 4, DNS_C_IN);
		dns_put32(w + 6, res.ttl);
		dns_put16(w + 10, rdlen);
		memcpy(w + 12, res.addrs[i]->addr, rdlen);
	}
	size_t start = res.naddrs ? a->r.pos : 0;
	a->r.pos += rrlen * res.naddrs;
	a->r.count[SEC_AN] += res.naddrs;
	for (uint16_t i = 0; i < res.nchosen; i++) {
		uint32_t slot = p->members[res.chosen[i]].slot;
		if (slot < a->ctx->nmember_answers)
			a->ctx->member_answers[slot]++;
	}
	return start;
}

/*
 * Sign what put_pool() wrote at at for the name at owner_ptr (node: its
 * node in the zone, if any): the answer, or the negative answer's SOA and
 * NSEC.
 */
static __attribute__((noinline)) void sign_pool(struct answer *a, size_t at, uint16_t owner_ptr,
						const zone_node_t *node)
{
	if (dns_get16(a->r.buf + at + 2) == DNS_T_SOA)
		sign_negative(a, at, owner_ptr, node, true, NULL);
	else
		sign_rrset(a, at, SEC_AN, NULL, false);
}

/*
 * The name being answered: the query name, then each CNAME target (real or
 * synthesized from a DNAME) in turn.  Its labels below the zone apex are
 * written out in full at owner_ptr in the response; the apex itself is at
 * apex_ptr (the question's), as every in-zone target is written (blk_name()
 * in src/zone, and put_dname()).
 */
struct cur {
	const uint8_t *lname; /* lowercased */
	size_t len;
	int nlabels;
	const uint8_t *label_off; /* offset of each label in lname */
	uint16_t owner_ptr;	  /* compression pointer to the name in the response */
};

/* The query name, the first one answered. */
#define QUERY_CUR(q)                                                                 \
	{                                                                            \
		.lname = (q)->lname, .len = (q)->qname_len, .nlabels = (q)->nlabels, \
		.label_off = (q)->label_off, .owner_ptr = PTR(DNS_HEADER_LEN),       \
	}

/* What answer_step() leaves to do for the name. */
enum step {
	STEP_DONE,	/* answered */
	STEP_CNAME,	/* follow the CNAME at the node (not written yet) */
	STEP_DNAME,	/* below the DNAME at the node: substitute (RFC 6672 3.1) */
	STEP_PARENT_DS, /* DS at the zone apex: the parent zone's, if served (RFC 4035 3.1.4.1) */
};

/*
 * In-zone CNAME chains are followed up to 8 links (README, DNS behaviour); a DNAME counts as one.
 */
#define CHAIN_LINKS_MAX 8

/*
 * Answer the name c inside zone z (RFC 1034 4.3.2 with RFC 4592
 * wildcards), or say what is left to do: a CNAME or DNAME to follow, a DS
 * the parent zone answers.  in_chain: c is a CNAME target.
 */
static inline __attribute__((always_inline)) int answer_step(struct answer *a, const zone_t *z,
							     const struct cur *c, bool in_chain,
							     bool zone_pools,
							     const zone_node_t **via)
{
	struct query *q = a->q;
	const lb_set_t *pools = a->snap->pools;
	uint32_t h = zone_name_hash(c->lname, c->len);
	a->name_hash = h; /* the rate limit's key of a positive answer: the last name of a chain */
	const zone_node_t *node = zone_node_find_hashed(z, c->lname, c->len, h);
	const lb_entry_t *pe = zone_pools ? lb_set_find_hashed(pools, c->lname, c->len, h) : NULL;
	const zone_node_t *cut = NULL;
	if (node) {
		cut = zone_node_cut(z, node);
		/* RFC 4035 3.1.4.1: DS at a cut belongs to the parent side. */
		if (cut == node && q->qtype == DNS_T_DS)
			cut = NULL;
	} else if (!pe) {
		/* Closest encloser (RFC 4592 3.3.1); names pools add exist too. */
		const zone_node_t *ce = NULL;
		bool pool_ce = false;
		for (int i = 1; i <= c->nlabels - z->apex_labels && !ce && !pool_ce; i++) {
			const uint8_t *sn = c->lname + c->label_off[i];
			size_t sl = c->len - c->label_off[i];
			uint32_t sh = zone_name_hash(sn, sl);
			ce = zone_node_find_hashed(z, sn, sl, sh);
			pool_ce = !ce && zone_pools && lb_set_find_hashed(pools, sn, sl, sh);
		}
		if (!ce && !pool_ce)
			ce = z->apex_node;
		if (ce)
			cut = zone_node_cut(z, ce);
		if (!cut) {
			if (!ce || !ce->wild) {
				/*
				 * Names below a DNAME are not in the zone's table
				 * (src/zone: occluded), so they all end up here
				 * with the DNAME's node as closest encloser.
				 */
				if (ce && (ce->flags & ZONE_NODE_DNAME)) {
					*via = ce;
					return STEP_DNAME;
				}
				put_negative(a, z, DNS_RCODE_NXDOMAIN, c->owner_ptr, NULL, false);
				return STEP_DONE;
			}
			node = zone_node_wild(z,
					      ce); /* RFC 4592 4.3: the query name is the owner */
			a->wildcard = true;
		}
	}
	if (cut) {
		/*
		 * The cut's name is a suffix of the name being answered, whose
		 * labels below the apex are written out in full at owner_ptr.
		 * After a CNAME the answer stays authoritative (RFC 1034 4.3.2
		 * step 3b with the chain of step 3a).
		 */
		int idx = c->nlabels - cut->labels;
		size_t at = (c->owner_ptr & PTR_MAX) + (size_t)c->label_off[idx];
		bool aa = a->aa && in_chain;
		if (at <= PTR_MAX)
			put_referral(a, z, cut, PTR(at));
		a->aa = aa;
		return STEP_DONE;
	}
	if (pe && pe->pool) {
		if (q->qtype == DNS_T_A || q->qtype == DNS_T_AAAA) {
			size_t at = put_pool(a, z, pe->pool, c->owner_ptr);
			if (a->sign && at)
				sign_pool(a, at, c->owner_ptr, node);
			return STEP_DONE;
		}
		if (q->qtype == DNS_T_ANY) {
			put_hinfo(a, c->owner_ptr, pe->pool->ttl);
			return STEP_DONE;
		}
	}
	if (!node || (node->flags & ZONE_NODE_ENT)) {
		put_negative(a, z, DNS_RCODE_NOERROR, c->owner_ptr, node, pe && pe->pool);
		return STEP_DONE;
	}
	if (q->qtype == DNS_T_ANY) {
		put_hinfo(a, c->owner_ptr, node->rrsets[0].ttl);
		return STEP_DONE;
	}
	const zone_rrset_t *set = zone_node_rrset(node, q->qtype);
	if (set) {
		size_t at = put_rrset(&a->r, set, c->owner_ptr, SEC_AN);
		if (a->sign)
			sign_rrset(a, at, SEC_AN, set, node->flags & ZONE_NODE_WILDCARD);
		return STEP_DONE;
	}
	if (!(node->flags & ZONE_NODE_CNAME)) {
		if (q->qtype == DNS_T_DS && node == z->apex_node && !in_chain)
			return STEP_PARENT_DS;
		put_negative(a, z, DNS_RCODE_NOERROR, c->owner_ptr, node, pe && pe->pool);
		return STEP_DONE;
	}
	*via = node;
	return STEP_CNAME;
}

/*
 * Where the chain has been: to stop at the first name answered twice (a
 * loop; RFC 2181 5 keeps an RRset from repeating in a section) and to write
 * each DNAME once.  A name with a CNAME is a node of the zone, found by its
 * name, so those are told apart by node, cheaply; the others (below a DNAME,
 * or matched by a wildcard) by name.
 */
struct chain {
	const zone_node_t *cname[CHAIN_LINKS_MAX]; /* the CNAMEs followed */
	int ncname;
	const uint8_t *name[CHAIN_LINKS_MAX]; /* the other names, lowercased */
	uint8_t name_len[CHAIN_LINKS_MAX];
	int nname;
	const zone_rrset_t *dname[CHAIN_LINKS_MAX]; /* the DNAMEs written ... */
	size_t dname_at[CHAIN_LINKS_MAX];	    /* ... and where */
	int ndname;
	uint8_t off[2][DNS_LABELS_MAX];		      /* label offsets: the name and the next */
	uint8_t synth[CHAIN_LINKS_MAX][DNS_NAME_MAX]; /* names DNAMEs substituted */
};

/*
 * Make the lowercased name t the one being answered, written at the
 * response offset at, if it lies in zone z.  Returns false when the chain
 * ends here.
 */
static inline __attribute__((always_inline)) bool
chain_next(const zone_t *z, struct cur *c, struct chain *ch, const uint8_t *t, size_t at, int link)
{
	uint8_t *off = ch->off[link & 1];
	int labels = 0;
	size_t tl = 0;
	while (t[tl]) {
		off[labels++] = (uint8_t)tl;
		tl += 1 + (size_t)t[tl];
	}
	tl++;
	if (labels < z->apex_labels || at > PTR_MAX)
		return false;
	int idx = labels - z->apex_labels;
	size_t sfx = idx == labels ? tl - 1 : off[idx];
	if (tl - sfx != z->apex_len || memcmp(t + sfx, z->apex, z->apex_len) != 0)
		return false;
	c->lname = t;
	c->len = tl;
	c->nlabels = labels;
	c->label_off = off;
	c->owner_ptr = PTR(at);
	return true;
}

/* Has the chain been at this name already?  If not, it is now.  via: its node, if any. */
static inline __attribute__((always_inline)) bool chain_seen(struct chain *ch, const struct cur *c,
							     const zone_node_t *via, int step)
{
	if (step == STEP_CNAME && !(via->flags & ZONE_NODE_WILDCARD)) {
		for (int i = 0; i < ch->ncname; i++)
			if (ch->cname[i] == via)
				return true;
		ch->cname[ch->ncname++] = via;
		return false;
	}
	for (int i = 0; i < ch->nname; i++)
		if (ch->name_len[i] == c->len && memcmp(ch->name[i], c->lname, c->len) == 0)
			return true;
	ch->name[ch->nname] = c->lname;
	ch->name_len[ch->nname++] = (uint8_t)c->len;
	return false;
}

/*
 * RFC 6672 3.1: the name c lies below the DNAME at node d.  Write the DNAME
 * (once per answer) and the CNAME it synthesizes: owner c, TTL the
 * DNAME's, target c's labels above d's name replaced by the DNAME's target.
 * The target is written as the labels below the zone apex and a pointer to
 * the apex when it is in the zone (the shape chain_next() expects), else in
 * full.  A substitution too long is YXDOMAIN (RFC 6672 2.2).  Returns true
 * when the chain goes on with the target, now c.
 */
static inline __attribute__((always_inline)) bool put_dname(struct answer *a, const zone_t *z,
							    struct cur *c, const zone_node_t *d,
							    struct chain *ch, int link)
{
	const zone_rrset_t *dn = zone_node_rrset(d, DNS_T_DNAME);
	int idx = c->nlabels - d->labels; /* the labels substituted start here */
	size_t plen = idx == c->nlabels ? c->len - 1 : c->label_off[idx];
	const uint8_t *t = dn->ext->cname_target;
	size_t tlen = 0, sfx = 0;
	int tlabels = 0;
	while (t[tlen]) {
		tlen += 1 + (size_t)t[tlen];
		tlabels++;
	}
	tlen++;
	/* In the zone: the target's last labels are the apex. */
	bool inzone = tlabels >= z->apex_labels;
	for (int i = 0; inzone && i < tlabels - z->apex_labels; i++)
		sfx += 1 + (size_t)t[sfx];
	inzone = inzone && tlen - sfx == z->apex_len && memcmp(t + sfx, z->apex, z->apex_len) == 0;

	size_t dat = 0;
	for (int i = 0; i < ch->ndname && !dat; i++)
		if (ch->dname[i] == dn)
			dat = ch->dname_at[i];
	if (!dat) {
		/* The DNAME's owner: a suffix of c, or the apex in the question. */
		size_t own = idx >= c->nlabels - z->apex_labels
				     ? a->r.apex_ptr
				     : (c->owner_ptr & PTR_MAX) + (size_t)c->label_off[idx];
		if (own > PTR_MAX)
			return false;
		dat = put_rrset(&a->r, dn, PTR(own), SEC_AN);
		if (!dat)
			return false;
		if (a->sign)
			sign_rrset(a, dat, SEC_AN, dn, true);
		ch->dname[ch->ndname] = dn;
		ch->dname_at[ch->ndname++] = dat;
	}
	/* RFC 6672 2.2: a substitution longer than a name may be is YXDOMAIN. */
	if (plen + tlen > DNS_NAME_MAX) {
		a->rcode = DNS_RCODE_YXDOMAIN;
		return false;
	}
	/*
	 * The target's labels below the apex are copied from the DNAME's rdata
	 * (never compressed, RFC 6672 2.5), the apex is a pointer; a target out
	 * of the zone is written in full, as knotd and nsd do, not as a pointer
	 * into that rdata.
	 */
	size_t below = inzone ? sfx : tlen;
	size_t rdlen = plen + below + (inzone ? 2 : 0);
	struct resp *r = &a->r;
	if (r->overflow || r->pos + 12 + rdlen > r->limit) {
		r->overflow = true;
		return false;
	}
	uint8_t *w = r->buf + r->pos;
	dns_put16(w, c->owner_ptr);
	dns_put16(w + 2, DNS_T_CNAME);
	dns_put16(w + 4, DNS_C_IN);
	dns_put32(w + 6, dn->ttl);
	dns_put16(w + 10, (uint16_t)rdlen);
	memcpy(w + 12, c->lname, plen);
	memcpy(w + 12 + plen, r->buf + dat + 12, below);
	if (inzone)
		dns_put16(w + 12 + plen + below, PTR(r->apex_ptr));
	size_t rdat = r->pos + 12;
	r->pos += 12 + rdlen;
	r->count[SEC_AN]++;
	if (a->sign)
		sign_rrset(a, rdat - 12, SEC_AN, NULL, false);
	/* A CNAME query has its answer; so has ANY (RFC 8482: one RRset of the name). */
	if (!inzone || a->q->qtype == DNS_T_CNAME || a->q->qtype == DNS_T_ANY)
		return false;
	uint8_t *nl = ch->synth[link];
	memcpy(nl, c->lname, plen);
	memcpy(nl + plen, t, tlen);
	return chain_next(z, c, ch, nl, rdat, link);
}

static void answer_zone_again(struct answer *a, const zone_t *z);

/* DS at a zone's apex: the parent zone's answer when it is served here too. */
static void answer_parent_ds(struct answer *a, const zone_t *z)
{
	struct query *q = a->q;
	const zone_t *p = NULL;
	if (q->nlabels > 0) {
		uint8_t off[DNS_LABELS_MAX];
		size_t o1 = q->nlabels > 1 ? q->label_off[1] : q->qname_len - 1;
		for (int i = 1; i < q->nlabels; i++)
			off[i - 1] = (uint8_t)(q->label_off[i] - o1);
		p = zone_set_find(a->snap->zones, q->lname + o1, q->qname_len - o1, off,
				  q->nlabels - 1);
	}
	if (!p) {
		put_negative(a, z, DNS_RCODE_NOERROR, PTR(DNS_HEADER_LEN), z->apex_node, false);
		return;
	}
	if (a->q->do_bit)
		a->sign = dnssec_set_find(a->snap->dnssec, p);
	a->r.apex_ptr = (uint16_t)(DNS_HEADER_LEN + q->qname_len - p->apex_len);
	answer_zone_again(a, p);
	/*
	 * A zone served here but not delegated by its parent: the parent has
	 * no such name, yet it exists.  NXDOMAIN would deny everything below
	 * it (RFC 8020), so the answer is the parent's NODATA, as nsd gives.
	 */
	if (a->rcode == DNS_RCODE_NXDOMAIN && a->r.count[SEC_AN] == 0)
		a->rcode = DNS_RCODE_NOERROR;
}

/*
 * What answer_step() left: follow CNAMEs and DNAMEs inside the zone, each
 * name at most once, up to CHAIN_LINKS_MAX links; or the parent's DS.
 * Apart from the answer path proper, so a plain answer pays for none of it.
 */
static __attribute__((noinline)) void answer_more(struct answer *a, const zone_t *z, int step,
						  const zone_node_t *via, bool zone_pools)
{
	struct query *q = a->q;
	struct cur cur = QUERY_CUR(q), *c = &cur;
	struct chain ch;

	if (step == STEP_PARENT_DS) {
		answer_parent_ds(a, z);
		return;
	}
	ch.ncname = ch.nname = ch.ndname = 0;
	for (int link = 0; link < CHAIN_LINKS_MAX; link++) {
		if (chain_seen(&ch, c, via, step))
			return;
		if (step == STEP_DNAME) {
			if (!put_dname(a, z, c, via, &ch, link))
				return;
		} else {
			const zone_rrset_t *cn = zone_node_rrset(via, DNS_T_CNAME);
			size_t at = put_rrset(&a->r, cn, c->owner_ptr, SEC_AN);
			if (at && a->sign)
				sign_rrset(a, at, SEC_AN, cn, via->flags & ZONE_NODE_WILDCARD);
			if (!at || !chain_next(z, c, &ch, cn->ext->cname_target,
					       at + cn->ext->target_off[0], link))
				return;
		}
		step = answer_step(a, z, c, true, zone_pools, &via);
		if (step == STEP_DONE)
			return;
	}
}

/* Answer the query inside zone z. */
static inline __attribute__((always_inline)) void answer_zone(struct answer *a, const zone_t *z)
{
	struct query *q = a->q;
	const struct cur c = QUERY_CUR(q);
	bool zone_pools = lb_set_has_zone(a->snap->pools, z);
	const zone_node_t *via = NULL;

	a->aa = true;
	int step = answer_step(a, z, &c, false, zone_pools, &via);
	if (step != STEP_DONE)
		answer_more(a, z, step, via, zone_pools);
}

/* answer_zone() for another zone (answer_parent_ds()), out of the answer path proper. */
static __attribute__((noinline)) void answer_zone_again(struct answer *a, const zone_t *z)
{
	answer_zone(a, z);
}

static bool lname_is(const struct query *q, const char *wire, size_t wl)
{
	return q->qname_len == wl && memcmp(q->lname, wire, wl) == 0;
}

/* CH class: the server's identity (RFC 4892). */
static void answer_chaos(struct answer *a)
{
	a->name_hash = 0; /* what the rate limit counts CH answers by: one key for them all */
	struct query *q = a->q;
	const char *text = NULL;
	const query_conf_t *conf = a->ctx->conf;
	if (lname_is(q, "\7version\4bind", 14) || lname_is(q, "\7version\6server", 16))
		text = conf ? conf->server_version : NULL;
	else if (lname_is(q, "\10hostname\4bind", 15) || lname_is(q, "\2id\6server", 11))
		text = conf ? conf->server_id : NULL;
	if (!text) {
		a->rcode = DNS_RCODE_REFUSED;
		return;
	}
	a->aa = true;
	if (q->qtype != DNS_T_TXT && q->qtype != DNS_T_ANY)
		return;
	size_t tlen = strlen(text);
	size_t chunks = tlen ? (tlen + 254) / 255 : 1;
	size_t rdlen = tlen + chunks;
	if (rdlen > 4096)
		return;
	uint8_t hdr[12];
	dns_put16(hdr, PTR(DNS_HEADER_LEN));
	dns_put16(hdr + 2, DNS_T_TXT);
	dns_put16(hdr + 4, DNS_C_CH);
	dns_put32(hdr + 6, 0);
	dns_put16(hdr + 10, (uint16_t)rdlen);
	if (!put_bytes(&a->r, hdr, sizeof(hdr)))
		return;
	for (size_t off = 0; off < tlen || off == 0; off += 255) {
		uint8_t l = (uint8_t)(tlen - off > 255 ? 255 : tlen - off);
		put_bytes(&a->r, &l, 1);
		put_bytes(&a->r, text + off, l);
		if (tlen == 0)
			break;
	}
	a->r.count[SEC_AN]++;
}

static size_t opt_len(const struct answer *a)
{
	const struct query *q = a->q;
	size_t n = 11;
	if (q->nsid && a->ctx->conf && a->ctx->conf->nsid)
		n += 4 + a->ctx->conf->nsid_len;
	if (q->has_ecs)
		n += 8 + q->ecs.addr_len;
	if (a->put_cookie)
		n += 4 + 8 + 16;
	if (a->put_keepalive)
		n += 4 + 2;
	return n;
}

static inline __attribute__((always_inline)) void put_opt(struct answer *a)
{
	const struct query *q = a->q;
	uint8_t *p = a->r.buf + a->r.pos;
	size_t rdlen = opt_len(a) - 11;
	p[0] = 0;
	dns_put16(p + 1, DNS_T_OPT);
	dns_put16(p + 3, DNS_EDNS_UDP_MAX);
	p[5] = (uint8_t)(a->rcode >> 4); /* RFC 6891 6.1.3: upper 8 bits of the rcode */
	p[6] = 0;
	dns_put16(p + 7, q->do_bit ? DNS_EDNS_DO : 0);
	dns_put16(p + 9, (uint16_t)rdlen);
	p += 11;
	if (q->nsid && a->ctx->conf && a->ctx->conf->nsid) {
		dns_put16(p, DNS_EDNS_NSID);
		dns_put16(p + 2, a->ctx->conf->nsid_len);
		memcpy(p + 4, a->ctx->conf->nsid, a->ctx->conf->nsid_len);
		p += 4 + a->ctx->conf->nsid_len;
	}
	if (q->has_ecs) {
		/* RFC 7871 7.2.1: echo family, source and address, with our scope. */
		dns_put16(p, DNS_EDNS_ECS);
		dns_put16(p + 2, (uint16_t)(4 + q->ecs.addr_len));
		dns_put16(p + 4, q->ecs.family);
		p[6] = q->ecs.source;
		p[7] = a->ecs_scope;
		memcpy(p + 8, q->ecs.addr, q->ecs.addr_len);
		p += 8 + q->ecs.addr_len;
	}
	if (a->put_cookie) {
		/* RFC 7873 5.2.3-5.2.5: the client cookie, then the server cookie. */
		dns_put16(p, DNS_EDNS_COOKIE);
		dns_put16(p + 2, 8 + 16);
		memcpy(p + 4, q->cookie, 8);
		memcpy(p + 12, a->server_cookie, 16);
		p += 4 + 8 + 16;
	}
	if (a->put_keepalive) {
		dns_put16(p, DNS_EDNS_KEEPALIVE);
		dns_put16(p + 2, 2);
		dns_put16(p + 4, a->ctx->conf->tcp_keepalive);
	}
	a->r.pos += 11 + rdlen;
	a->r.count[SEC_AR]++;
}

/*
 * RFC 8945 5.2.2: no key is known (none can be configured), so a signed
 * query gets NOTAUTH and a TSIG RR with error BADKEY: the query's key name
 * and algorithm, its Time Signed, Fudge and Original ID, no MAC (the
 * response is unsigned, RFC 8945 5.3.2), no other data.  It is the last
 * record, after the OPT (bare, as for FORMERR), both written here; when they
 * do not fit in limit, the question alone goes with TC=1.
 */
static __attribute__((noinline, cold)) void put_tsig_error(struct answer *a, const uint8_t *req,
							   size_t limit)
{
	struct query *q = a->q;
	size_t optl = q->edns ? opt_len(a) : 0;
	size_t rdlen = (size_t)q->tsig_alg_len + 16;
	size_t need = q->tsig_key_len + 10 + rdlen;
	a->rcode = DNS_RCODE_NOTAUTH;
	if (a->r.pos + optl + need > limit) {
		a->r.overflow = true;
		return;
	}
	if (q->edns)
		put_opt(a);
	q->edns = false; /* written */
	uint8_t *w = a->r.buf + a->r.pos;
	memcpy(w, q->tsig_key, q->tsig_key_len);
	w += q->tsig_key_len;
	dns_put16(w, DNS_T_TSIG);
	dns_put16(w + 2, DNS_C_ANY);
	dns_put32(w + 4, 0);
	dns_put16(w + 8, (uint16_t)rdlen);
	w += 10;
	/* Algorithm Name, Time Signed and Fudge, as in the query. */
	memcpy(w, req + q->tsig_rdata, (size_t)q->tsig_alg_len + 8);
	w += q->tsig_alg_len + 8;
	dns_put16(w, 0);
	memcpy(w + 2, req + q->tsig_orig_id, 2);
	dns_put16(w + 4, 17); /* BADKEY */
	dns_put16(w + 6, 0);
	a->r.pos += need;
	a->r.count[SEC_AR]++;
}

static bool qtype_is_meta(uint16_t t)
{
	/* RFC 6895 3.1: 128-255 are meta and query types; ANY has its own rule. */
	return (t >= 128 && t <= 254) || t == DNS_T_OPT;
}

void query_ctx_init(query_ctx_t *ctx, const query_conf_t *conf, uint64_t seed)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->conf = conf;
	ctx->rng[0] = seed ^ 0x9e3779b97f4a7c15ULL;
	ctx->rng[1] = (seed * 0xbf58476d1ce4e5b9ULL) | 1;
	ctx->geo_cache = geo_cache_new();
	if (conf && conf->rrl.rate)
		ctx->rrl = rrl_new(&conf->rrl, seed * 0xd6e8feb86659fd93ULL);
}

void query_ctx_fini(query_ctx_t *ctx)
{
	geo_cache_free(ctx->geo_cache);
	ctx->geo_cache = NULL;
	rrl_free(ctx->rrl);
	ctx->rrl = NULL;
	if (ctx->sign) {
		dnssec_cache_free(ctx->sign->cache);
		free(ctx->sign);
		ctx->sign = NULL;
	}
}

/* Unix time in milliseconds, for cookies and rate limits: read once a batch (query_ctx_t). */
static inline uint64_t now_ms(query_ctx_t *ctx)
{
	if (!ctx->now_ms)
		ctx->now_ms = query_clock_ms();
	return ctx->now_ms;
}

uint64_t query_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * RFC 7873 5.2 with RFC 9018: a query with a client cookie gets one back
 * with a server cookie, the one it sent while that verifies and is young,
 * else a fresh one; one that does not verify is no error, only not valid.
 */
static __attribute__((noinline)) void cookie_answer(struct answer *a, uint32_t now)
{
	const struct query *q = a->q;
	const query_cookie_secrets_t *s = a->snap->cookies;
	const uint8_t *ip = NULL;
	size_t iplen = query_peer_ip(a->peer, &ip);
	int v = q->cookie_len == 8 + 16 ? cookie_verify(s, q->cookie, q->cookie + 8, ip, iplen, now)
					: COOKIE_INVALID;
	if (v != COOKIE_INVALID) {
		a->cookie_valid = true;
		a->ctx->stats.cookies_valid++;
	}
	if (v == COOKIE_REUSE)
		memcpy(a->server_cookie, q->cookie + 8, 16);
	else
		cookie_make(s, q->cookie, ip, iplen, now, a->server_cookie);
	a->put_cookie = true;
}

/*
 * What the rate limit says of the response written: its kind and what it
 * is counted by (README "On the open internet": positive answers per name
 * and type, the rest per zone, told apart by the zone's address).
 */
static inline __attribute__((always_inline)) enum rrl_verdict rrl_decide(struct answer *a,
									 uint64_t now)
{
	const struct query *q = a->q;
	uint64_t what = (uint64_t)(uintptr_t)a->zone;
	unsigned kind;
	if (a->rcode == DNS_RCODE_NOERROR) {
		if (a->r.count[SEC_AN] || a->r.overflow) {
			kind = RRL_WILDCARD;
			if (!a->wildcard) {
				kind = RRL_ANSWER;
				what = (uint64_t)a->name_hash << 16 | q->qtype;
			}
		} else {
			kind = a->aa ? RRL_NODATA : RRL_REFERRAL;
		}
	} else {
		kind = a->rcode == DNS_RCODE_NXDOMAIN ? RRL_NXDOMAIN : RRL_ERROR;
	}
	return rrl_check(a->ctx->rrl, a->peer, kind, what, now);
}

size_t query_answer(query_ctx_t *ctx, const query_data_t *snap, const uint8_t *req, size_t req_len,
		    uint8_t *resp, int transport, const struct sockaddr *peer)
{
	struct query q;
	struct answer a;

	q.edns = q.nsid = q.has_ecs = q.do_bit = false;
	q.cookie_len = q.keepalive = 0;
	q.question_end = 0;
	a.ctx = ctx;
	a.snap = snap;
	a.q = &q;
	a.aa = false;
	a.peer = peer;
	a.ecs_scope = 0;
	a.wildcard = a.put_cookie = a.put_keepalive = a.cookie_valid = false;
	a.zone = NULL;
	a.sign = NULL;
	a.rcode = DNS_RCODE_NOERROR;
	a.r.buf = resp;
	a.r.count[0] = a.r.count[1] = a.r.count[2] = 0;
	a.r.overflow = false;
	a.r.apex_ptr = 0;

	int pr = parse_query(&q, req, req_len);
	if (pr == PARSE_DROP) {
		ctx->stats.dropped++;
		return 0;
	}
	ctx->stats.queries[transport == QUERY_TCP]++;
	/*
	 * RFC 7828 3.2.1: over TCP an empty edns-tcp-keepalive asks for the
	 * idle timeout and one with a value is malformed; over UDP it is ignored.
	 */
	if (q.keepalive && transport == QUERY_TCP && pr == PARSE_OK) {
		if (q.keepalive == 2)
			pr = PARSE_FORMERR;
		else
			a.put_keepalive = ctx->conf && ctx->conf->tcp_keepalive;
	}

	/* The limit for this transport, RFC 1035 4.2.1 and RFC 6891 6.2.5. */
	size_t limit = DNS_MSG_MAX;
	if (transport == QUERY_UDP) {
		limit = DNS_UDP_MIN;
		if (q.edns && q.udp_size > DNS_UDP_MIN)
			limit = q.udp_size < DNS_EDNS_UDP_MAX ? q.udp_size : DNS_EDNS_UDP_MAX;
	}

	/* Header and question echoed as received (letter case included). */
	memcpy(resp, req, 4);
	bool echo_q = pr == PARSE_OK || pr == PARSE_FORMERR || pr == PARSE_BADVERS ||
		      pr == PARSE_NOTIMP || pr == PARSE_TSIG;
	/*
	 * Nothing after a bad question is trusted; a message with no question
	 * or several kept its OPT only if everything parsed (parse_no_question).
	 */
	if (!echo_q && pr != PARSE_FORMERR_NOQ)
		q.edns = false;
	a.r.pos = DNS_HEADER_LEN;
	if (echo_q) {
		memcpy(resp + DNS_HEADER_LEN, req + DNS_HEADER_LEN,
		       q.question_end - DNS_HEADER_LEN);
		a.r.pos = q.question_end;
	}
	size_t question_end = a.r.pos;
	if (q.cookie_len && q.edns && snap && snap->cookies &&
	    (pr == PARSE_OK || pr == PARSE_NOTIMP))
		cookie_answer(&a, (uint32_t)(now_ms(ctx) / 1000));
	/* Keep room for the OPT record, so truncation never drops it. */
	size_t optl = q.edns ? opt_len(&a) : 0;
	a.r.limit = limit - optl;

	switch (pr) {
	case PARSE_NOTIMP:
	case PARSE_NOTIMP_NOQ:
		a.rcode = DNS_RCODE_NOTIMP;
		break;
	case PARSE_FORMERR_NOQ:
	case PARSE_FORMERR:
		a.rcode = DNS_RCODE_FORMERR;
		break;
	case PARSE_BADVERS:
		a.rcode = DNS_RCODE_BADVERS;
		q.has_ecs = false;
		q.nsid = false;
		a.put_cookie = a.put_keepalive = false;
		optl = opt_len(&a);
		break;
	case PARSE_TSIG:
		q.has_ecs = false;
		q.nsid = false;
		a.put_cookie = a.put_keepalive = false;
		put_tsig_error(&a, req, limit);
		break;
	default:
		if (q.qclass == DNS_C_CH) {
			if (qtype_is_meta(q.qtype))
				a.rcode = DNS_RCODE_NOTIMP;
			else
				answer_chaos(&a);
			break;
		}
		if (q.qclass != DNS_C_IN && q.qclass != DNS_C_ANY) {
			a.rcode = DNS_RCODE_REFUSED;
			break;
		}
		const zone_t *z = snap ? zone_set_find(snap->zones, q.lname, q.qname_len,
						       q.label_off, q.nlabels)
				       : NULL;
		if (!z) {
			a.rcode = DNS_RCODE_REFUSED;
			break;
		}
		if (qtype_is_meta(q.qtype)) {
			a.rcode = q.qtype == DNS_T_OPT ? DNS_RCODE_FORMERR : DNS_RCODE_NOTIMP;
			break;
		}
		a.r.apex_ptr = (uint16_t)(DNS_HEADER_LEN + q.qname_len - z->apex_len);
		a.zone = z;
		/*
		 * One test for a server that signs nothing, two for a query
		 * without DO for another name than the apex's keys: the rest
		 * is apart.
		 */
		if (__builtin_expect(snap->dnssec != NULL, 0) &&
		    (q.do_bit || q.qtype == DNSSEC_T_DNSKEY || q.qtype == DNSSEC_T_CDS ||
		     q.qtype == DNSSEC_T_CDNSKEY) &&
		    dnssec_begin(&a, z))
			break;
		answer_zone(&a, z);
		break;
	}

	/* RFC 2181 9 and README "DNS behaviour": all or nothing; the question alone with TC=1. */
	uint16_t flags = (uint16_t)(DNS_F_QR | (q.flags & (0x7800 | DNS_F_RD | DNS_F_CD)));
	if (a.r.overflow) {
		a.r.pos = question_end;
		a.r.count[0] = a.r.count[1] = a.r.count[2] = 0;
		flags |= DNS_F_TC;
		ctx->stats.truncated++;
	}
	/* README "On the open internet": UDP only, never a query with a valid server cookie. */
	if (ctx->rrl && transport == QUERY_UDP && !a.cookie_valid) {
		enum rrl_verdict v = rrl_decide(&a, now_ms(ctx));
		if (v == RRL_DROP) {
			ctx->stats.rrl_dropped++;
			return 0;
		}
		if (v == RRL_SLIP) {
			/* The question (and OPT) alone with TC=1: a real client asks again over TCP. */
			a.r.pos = question_end;
			a.r.count[0] = a.r.count[1] = a.r.count[2] = 0;
			flags |= DNS_F_TC;
			ctx->stats.rrl_slipped++;
		}
	}
	if (a.aa)
		flags |= DNS_F_AA;
	flags |= a.rcode & 0xf;
	if (q.edns)
		put_opt(&a);
	dns_put16(resp + 2, flags);
	dns_put16(resp + 4, echo_q ? 1 : 0);
	dns_put16(resp + 6, a.r.count[SEC_AN]);
	dns_put16(resp + 8, a.r.count[SEC_NS]);
	dns_put16(resp + 10, a.r.count[SEC_AR]);
	ctx->stats.rcode[a.rcode < ARRAY_SIZE(ctx->stats.rcode) ? a.rcode : 0]++;
	ctx->stats.qtype[echo_q ? query_qtype_slot(q.qtype) : QUERY_QT_OTHER]++;
	return a.r.pos;
}
