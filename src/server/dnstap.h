/* SPDX-License-Identifier: MIT */
/*
 * Private to src/server: the query log (--dnstap, README "Query log"): each worker's ring of
 * records and the writer thread that sends them as dnstap over Frame Streams.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

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

/*
 * Answer path: copy one query and its response (wire bytes, both ends' addresses as
 * AF_INET/AF_INET6 sockaddrs, the times of server_dnstap_now(), transport QUERY_UDP or
 * QUERY_TCP) into a free slot of r.  Never blocks or allocates: when r is full, or the two
 * messages together exceed TAP_WIRE_MAX, the record is dropped and counted.  local may be NULL
 * (unknown: the unspecified address and port 0).
 */
void server_dnstap_log(tap_ring_t *r, int transport, const struct sockaddr *peer,
		       const struct sockaddr *local, const struct timespec *query_t,
		       const struct timespec *response_t, const uint8_t *q, size_t qlen,
		       const uint8_t *resp, size_t rlen);

/*
 * The protobuf encoder of a stream: the Dnstap fields every message shares (identity, version),
 * encoded once, and the encoding of the last time's seconds.  The writer thread's.
 */
typedef struct dnstap_enc {
	uint8_t prefix[2 * (DNSTAP_TEXT_MAX + 2)];
	size_t prefix_len;
	uint64_t secs; /* the seconds last encoded, as the varint in secs_pb */
	uint8_t secs_pb[10];
	uint8_t secs_len;
} dnstap_enc_t;

/** Set up e for messages with identity (left out when empty) and version. */
void server_dnstap_enc_init(dnstap_enc_t *e, const char *identity, const char *version);

/**
 * Encode rec in place (around its wire bytes, in its slot) as Dnstap messages of type MESSAGE:
 * its AUTH_QUERY, with the query's bytes, in iov[0], and unless it has no response its
 * AUTH_RESPONSE, with the response's, in iov[1].  Both carry the addresses, ports, transport
 * and the query's time.  Returns the number of messages, 1 or 2.
 */
unsigned server_dnstap_encode(dnstap_enc_t *e, tap_rec_t *rec, struct iovec iov[2]);
