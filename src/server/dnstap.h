/* SPDX-License-Identifier: MIT */
/*
 * Private to src/server: the query log (--dnstap, README "Query log"): each worker's ring of
 * records and the writer thread that sends them as dnstap over Frame Streams.
 */
#pragma once

#include <stdalign.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "gslb/core.h"
#include "tap_ring.h"

/* Slots in each worker's ring: 512 x 2 KiB, 1 MiB a worker, allocated only with --dnstap. */
#define DNSTAP_RING_SLOTS 512
/*
 * The identity and version strings are cut to this many bytes (a Linux host name has at most
 * 64), so that a message's fields fit TAP_HEAD_ROOM.
 */
#define DNSTAP_TEXT_MAX 64

typedef struct server_dnstap server_dnstap_t;

/**
 * The query log to the Frame Streams reader listening on the unix socket path: nrings rings
 * (one per worker) and the writer thread, started, which connects (and connects again after
 * the reader went away) by itself.  Never fails for want of a reader.  Returns 0 and *out, or
 * a negative errno value after logging why.  Stop with server_dnstap_free().
 */
int server_dnstap_new(const char *path, unsigned nrings, server_dnstap_t **out);

/** Ring i of t (i below nrings): the producer side belongs to one worker. */
tap_ring_t *server_dnstap_ring(server_dnstap_t *t, unsigned i);

/**
 * Stop the writer thread once what the rings hold is written (at most about two seconds more
 * when the reader is slow), close the stream and free t.  Every producer must have stopped.
 * NULL is a no-op.
 */
void server_dnstap_free(server_dnstap_t *t);

/* The time for a record: CLOCK_REALTIME (the vDSO: no system call). */
static inline void server_dnstap_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* The delay from t0 to t1 in nanoseconds, for a record: at most 4.29 s; a clock set back, 0. */
static inline uint32_t server_dnstap_delay_ns(const struct timespec *t0, const struct timespec *t1)
{
	int64_t d = ((int64_t)t1->tv_sec - (int64_t)t0->tv_sec) * 1000000000 +
		    (t1->tv_nsec - t0->tv_nsec);
	return d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* A sockaddr's address into out (4 or 16 bytes) and its port; the family, or 0 if neither. */
static inline uint8_t server_dnstap_addr(const struct sockaddr *sa, uint8_t out[16], uint16_t *port)
{
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		memcpy(out, &sin->sin_addr, 4);
		*port = ntohs(sin->sin_port);
		return AF_INET;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(out, &sin6->sin6_addr, 16);
		*port = ntohs(sin6->sin6_port);
		return AF_INET6;
	}
	*port = 0;
	return 0;
}

/*
 * The server's end of queries as a record holds it, worked out once for a socket or a
 * connection rather than from its sockaddr for each query: the family (0: unknown), the
 * address (4 or 16 bytes, the rest zero) and the port.
 */
typedef struct tap_end {
	uint8_t family;
	uint16_t port;
	uint8_t addr[16];
} tap_end_t;

/* The end sa names (NULL or neither family: unknown). */
static inline void server_dnstap_end(const struct sockaddr *sa, tap_end_t *end)
{
	memset(end, 0, sizeof(*end));
	end->family = server_dnstap_addr(sa, end->addr, &end->port);
}

/*
 * Answer path: copy one query and its response (wire bytes, the client's address as an
 * AF_INET/AF_INET6 sockaddr and the server's as a tap_end_t, the query's time from
 * server_dnstap_now() and the response's delay after it from server_dnstap_delay_ns(),
 * transport QUERY_UDP or QUERY_TCP) into a free slot of r.  Never blocks or allocates: when r
 * is full, or the two messages together exceed TAP_WIRE_MAX, the record is dropped and
 * counted.  The server's end is logged only when it is of the client's family (it always is;
 * else unknown: the unspecified address and port 0); a query dropped unanswered has rlen 0.
 * Inline: the copy is most of it.
 */
static inline void server_dnstap_log(tap_ring_t *r, int transport, const struct sockaddr *peer,
				     const tap_end_t *local, const struct timespec *query_t,
				     uint32_t response_ns, const uint8_t *q, size_t qlen,
				     const uint8_t *resp, size_t rlen)
{
	if (unlikely(qlen + rlen > TAP_WIRE_MAX)) {
		r->dropped_large++;
		return;
	}
	tap_rec_t *rec = tap_ring_reserve(r);
	if (!rec)
		return;
	rec->query_sec = (uint64_t)query_t->tv_sec;
	rec->query_nsec = (uint32_t)query_t->tv_nsec;
	rec->response_ns = response_ns;
	rec->transport = (uint8_t)transport;
	rec->family = server_dnstap_addr(peer, rec->peer, &rec->peer_port);
	if (likely(local->family == rec->family)) {
		memcpy(rec->local, local->addr, sizeof(rec->local));
		rec->local_port = local->port;
	} else {
		memset(rec->local, 0, sizeof(rec->local));
		rec->local_port = 0;
	}
	rec->qlen = (uint16_t)qlen;
	rec->rlen = (uint16_t)rlen;
	memcpy(rec->data + TAP_QUERY_AT, q, qlen);
	if (rlen)
		memcpy(rec->data + TAP_QUERY_AT + qlen + TAP_RESPONSE_GAP, resp, rlen);
	tap_ring_commit(r);
}

/* The identity and version fields together, at most. */
#define DNSTAP_PREFIX_MAX (2 * (DNSTAP_TEXT_MAX + 2))

/* A time's seconds as a protobuf varint: its bytes as a little-endian word when they fit one. */
typedef struct dnstap_secs {
	uint64_t secs;
	uint64_t word; /* the varint's bytes when len <= 7 */
	uint8_t len;
	uint8_t big[10]; /* the varint's bytes */
} dnstap_secs_t;

/*
 * The protobuf encoder of a stream: the Dnstap fields every message shares (identity, version),
 * encoded once, with room to be read 16 bytes at a time; the encodings of the last query time's
 * seconds and of the last local port (the same for every query to one listener), kept.  The
 * writer thread's.
 */
typedef struct dnstap_enc {
	alignas(16) uint8_t prefix[(DNSTAP_PREFIX_MAX + 15) / 16 * 16];
	size_t prefix_len;
	dnstap_secs_t secs;
	uint32_t lport;	   /* the last local port, as the varint in lport_pb */
	uint64_t lport_pb; /* little-endian */
	uint8_t lport_len;
} dnstap_enc_t;

/** Set up e for messages with identity (left out when empty) and version. */
void server_dnstap_enc_init(dnstap_enc_t *e, const char *identity, const char *version);

/*
 * A frame's length, big-endian, before its message (Frame Streams): the encoder writes it in
 * the slot before each message.
 */
#define DNSTAP_FRAME_LEN_SIZE 4

/**
 * Encode rec in place (around its wire bytes, in its slot) as Frame Streams data frames of
 * Dnstap messages of type MESSAGE, each its length then its message: its AUTH_QUERY, with the
 * query's bytes, in iov[0], and unless it has no response its AUTH_RESPONSE, with the
 * response's, in iov[1].  Both carry the addresses, ports, transport and the query's time.
 * Returns the number of frames, 1 or 2.
 */
unsigned server_dnstap_encode(dnstap_enc_t *e, tap_rec_t *rec, struct iovec iov[2]);
