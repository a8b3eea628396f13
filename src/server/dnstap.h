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
#include <time.h>

#include "tap_ring.h"

/* Slots in each worker's ring: 512 x 2 KiB, 1 MiB a worker, allocated only with --dnstap. */
#define DNSTAP_RING_SLOTS 512
/* The identity and version strings are cut to this many bytes. */
#define DNSTAP_TEXT_MAX 255
/* One encoded message at most: the wire bytes of a slot, identity, version and the fields. */
#define DNSTAP_FRAME_MAX (TAP_DATA_MAX + 2 * (DNSTAP_TEXT_MAX + 3) + 128)

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

/* The time for a record: CLOCK_REALTIME in nanoseconds (the vDSO: no system call). */
static inline uint64_t server_dnstap_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Answer path: copy one query and its response (wire bytes, both ends' addresses as
 * AF_INET/AF_INET6 sockaddrs, the times of server_dnstap_now_ns(), transport QUERY_UDP or
 * QUERY_TCP) into a free slot of r.  Never blocks or allocates: when r is full, or the two
 * messages together exceed TAP_DATA_MAX, the record is dropped and counted.  local may be NULL
 * (unknown: the unspecified address and port 0).
 */
void server_dnstap_log(tap_ring_t *r, int transport, const struct sockaddr *peer,
		       const struct sockaddr *local, uint64_t query_ns, uint64_t response_ns,
		       const uint8_t *q, size_t qlen, const uint8_t *resp, size_t rlen);

/**
 * The Dnstap fields every message of a stream shares, identity (left out when empty) and
 * version, encoded into out (2 * (DNSTAP_TEXT_MAX + 3) bytes at most).  Returns the length.
 */
size_t server_dnstap_prefix(uint8_t *out, const char *identity, const char *version);

/**
 * Encode one half of rec (response false: the AUTH_QUERY, with the query's bytes; true: the
 * AUTH_RESPONSE, with the response's) as a Dnstap message of type MESSAGE into out
 * (DNSTAP_FRAME_MAX bytes), after the fields of prefix (server_dnstap_prefix()).  Both halves
 * carry the addresses, ports, transport and the query's time.  Returns the length.
 */
size_t server_dnstap_encode(const uint8_t *prefix, size_t prefix_len, const tap_rec_t *rec,
			    bool response, uint8_t *out);
