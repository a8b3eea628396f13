/* SPDX-License-Identifier: MIT */
/*
 * Private to src/server: the single-producer, single-consumer ring that carries a worker's
 * query log records (--dnstap) to the dnstap writer thread without a lock, an allocation or a
 * system call on the answer path.
 */
#pragma once

#include <stdalign.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of one slot, header included; a power of two, so slots never share a cache line. */
#define TAP_SLOT_SIZE 2048
/* The data of a slot: the query and the response, with room before each for its frame's head. */
#define TAP_DATA_MAX (TAP_SLOT_SIZE - 64)
/*
 * The writer encodes each half of a record in place, around its wire bytes (dnstap.c): the
 * protobuf fields before them (at most TAP_HEAD_ROOM bytes), two after.  The query's bytes start
 * at data[TAP_QUERY_AT], the response's TAP_HEAD_ROOM + 2 bytes after the query's end; what is
 * left is for both messages' bytes together.
 */
#define TAP_HEAD_ROOM 224
#define TAP_QUERY_AT TAP_HEAD_ROOM
#define TAP_RESPONSE_GAP (TAP_HEAD_ROOM + 2)
#define TAP_WIRE_MAX (TAP_DATA_MAX - TAP_QUERY_AT - TAP_RESPONSE_GAP - 2)

/*
 * One query and its response as the worker saw them: the wire bytes (the query's qlen at
 * data[TAP_QUERY_AT], the response's rlen TAP_RESPONSE_GAP bytes after), both addresses and ports, when the query came in and when the
 * response went out, over which transport.  The header fits the first
 * 64 bytes of the slot.
 */
typedef struct tap_rec {
	uint64_t query_sec; /* CLOCK_REALTIME */
	uint32_t query_nsec;
	uint32_t response_ns; /* the response's time: nanoseconds after the query's */
	uint8_t family;	      /* AF_INET or AF_INET6 */
	uint8_t transport;    /* QUERY_UDP or QUERY_TCP */
	uint16_t peer_port;   /* the client's, host order */
	uint16_t local_port;
	uint16_t qlen;
	uint16_t rlen;
	uint8_t peer[16];  /* the client's address, network order: 4 or 16 bytes */
	uint8_t local[16]; /* the address the query was sent to */
	alignas(64) uint8_t data[TAP_DATA_MAX];
} tap_rec_t;

_Static_assert(sizeof(tap_rec_t) == TAP_SLOT_SIZE, "a record is one slot");

/*
 * The ring.  head is written by the producer only (a DNS worker), tail by the consumer only
 * (the writer thread), each on its own cache line with what only that side touches, so the
 * two sides share a line only when one reads the other's index, and then only when its cached
 * copy says the ring is full (producer) or empty (consumer).  A slot belongs to the producer
 * from head to tail + size, to the consumer from tail to head: the release store of an index
 * publishes the slot contents written before it.
 *
 * The counters are each written by one side and read racily by the metrics (as the workers'
 * other counters are).
 */
typedef struct tap_ring {
	alignas(64) _Atomic uint32_t head; /* the next slot to fill */
	uint32_t tail_seen;		   /* the producer's last view of tail */
	uint64_t dropped_full;		   /* no free slot: the writer is behind */
	uint64_t dropped_large;		   /* query and response larger than TAP_WIRE_MAX */

	alignas(64) _Atomic uint32_t tail; /* the next slot to read */
	uint32_t head_seen;		   /* the consumer's last view of head */
	uint64_t dropped_no_reader;	   /* taken by the writer while no reader was connected */
	uint64_t written;		   /* written to the reader, by the writer */

	alignas(64) uint32_t mask; /* slots - 1 */
	tap_rec_t *slots;
} tap_ring_t;

/** Allocate the slots of r: nslots, a power of two.  0 or -ENOMEM. */
static inline int tap_ring_init(tap_ring_t *r, uint32_t nslots)
{
	memset(r, 0, sizeof(*r));
	r->slots = aligned_alloc(TAP_SLOT_SIZE, (size_t)nslots * sizeof(tap_rec_t));
	if (!r->slots)
		return -ENOMEM;
	r->mask = nslots - 1;
	return 0;
}

static inline void tap_ring_deinit(tap_ring_t *r)
{
	free(r->slots);
	r->slots = NULL;
}

/*
 * Producer: the next free slot to fill, or NULL when the ring is full (counted as dropped).
 * Nothing is visible to the consumer until tap_ring_commit().
 */
static inline tap_rec_t *tap_ring_reserve(tap_ring_t *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	if (head - r->tail_seen > r->mask) {
		r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head - r->tail_seen > r->mask) {
			r->dropped_full++;
			return NULL;
		}
	}
	return &r->slots[head & r->mask];
}

/* Producer: publish the slot tap_ring_reserve() returned. */
static inline void tap_ring_commit(tap_ring_t *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

/* Consumer: the oldest published slot, or NULL when there is none.  Read it, then release it. */
static inline const tap_rec_t *tap_ring_peek(tap_ring_t *r)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (tail == r->head_seen) {
		r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail == r->head_seen)
			return NULL;
	}
	return &r->slots[tail & r->mask];
}

/* Consumer: give the slot tap_ring_peek() returned back to the producer. */
static inline void tap_ring_release(tap_ring_t *r)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

/*
 * Consumer: the k-th oldest published slot (k = 0 is tap_ring_peek()'s), or NULL when fewer are
 * published.  The consumer may write into the slots it holds (the writer encodes in place).
 */
static inline tap_rec_t *tap_ring_peek_at(tap_ring_t *r, uint32_t k)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (r->head_seen - tail <= k) {
		r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
		if (r->head_seen - tail <= k)
			return NULL;
	}
	return &r->slots[(tail + k) & r->mask];
}

/*
 * Consumer: how many slots are published, the oldest one's index in *first (for
 * tap_ring_slot(r, *first + k), k below the count).
 */
static inline uint32_t tap_ring_avail(tap_ring_t *r, uint32_t *first)
{
	*first = atomic_load_explicit(&r->tail, memory_order_relaxed);
	r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
	return r->head_seen - *first;
}

/* Consumer: the slot of index i, one tap_ring_avail() counted. */
static inline tap_rec_t *tap_ring_slot(tap_ring_t *r, uint32_t i)
{
	return &r->slots[i & r->mask];
}

/* Consumer: give the n oldest slots back to the producer at once. */
static inline void tap_ring_release_n(tap_ring_t *r, uint32_t n)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
}
