/* SPDX-License-Identifier: MIT */
/*
 * The query log's ring (src/server/tap_ring.h): order, a full ring dropping and counting,
 * indexes wrapping past 2^32, and one producer and one consumer thread at once (bounded).
 */

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../../src/server/tap_ring.h"
#include "tap.h"

/* A record numbered seq: its header and its first and last data bytes say so. */
static bool put(tap_ring_t *r, uint32_t seq)
{
	tap_rec_t *rec = tap_ring_reserve(r);
	if (!rec)
		return false;
	rec->query_sec = seq;
	rec->qlen = (uint16_t)(seq % 512);
	rec->rlen = (uint16_t)(seq % 1000);
	memcpy(rec->data, &seq, sizeof(seq));
	memcpy(rec->data + TAP_DATA_MAX - sizeof(seq), &seq, sizeof(seq));
	tap_ring_commit(r);
	return true;
}

/* The next record's number, or -1 when the ring is empty, -2 when the record is torn. */
static int64_t take(tap_ring_t *r)
{
	const tap_rec_t *rec = tap_ring_peek(r);
	if (!rec)
		return -1;
	uint32_t a, b;
	memcpy(&a, rec->data, sizeof(a));
	memcpy(&b, rec->data + TAP_DATA_MAX - sizeof(b), sizeof(b));
	bool whole = rec->query_sec == a && a == b && rec->qlen == a % 512 && rec->rlen == a % 1000;
	tap_ring_release(r);
	return whole ? (int64_t)a : -2;
}

static void test_order_and_full(void)
{
	tap_ring_t r;
	is_int(tap_ring_init(&r, 8), 0, "a ring of 8 slots");
	ok(take(&r) == -1, "a new ring is empty");
	bool all = true;
	for (uint32_t i = 0; i < 8; i++)
		all &= put(&r, i);
	ok(all, "8 records fit 8 slots");
	ok(!put(&r, 8), "the 9th does not");
	ok(!put(&r, 9), "nor the 10th");
	is_int((long long)r.dropped_full, 2, "both dropped and counted");
	is_int(take(&r), 0, "the oldest comes out first");
	is_int(take(&r), 1, "then the next");
	ok(put(&r, 10) && put(&r, 11), "two freed slots take two records");
	ok(!put(&r, 12), "and then it is full again");
	is_int((long long)r.dropped_full, 3, "counted");
	int64_t want[] = { 2, 3, 4, 5, 6, 7, 10, 11 };
	bool order = true;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		order &= take(&r) == want[i];
	ok(order, "the rest in order, the dropped ones absent");
	ok(take(&r) == -1, "then empty");

	/* The writer's way: look at several published slots, give them back together. */
	for (uint32_t i = 20; i < 25; i++)
		put(&r, i);
	bool seen = true;
	for (uint32_t k = 0; k < 5; k++) {
		const tap_rec_t *rec = tap_ring_peek_at(&r, k);
		seen &= rec && rec->query_sec == 20 + k;
	}
	ok(seen && !tap_ring_peek_at(&r, 5),
	   "peek_at sees the 5 published slots in order, no more");
	uint32_t first, avail = tap_ring_avail(&r, &first);
	seen = avail == 5;
	for (uint32_t k = 0; k < avail; k++)
		seen &= tap_ring_slot(&r, first + k)->query_sec == 20 + k;
	ok(seen, "avail counts the same 5, and slot gives them in order");
	ok(put(&r, 25) && put(&r, 26) && put(&r, 27) && !put(&r, 28),
	   "slots looked at but not given back stay taken");
	tap_ring_release_n(&r, 3);
	avail = tap_ring_avail(&r, &first);
	ok(avail == 5 && tap_ring_slot(&r, first)->query_sec == 23,
	   "after release_n, avail counts from the oldest left (%u)", avail);
	is_int(take(&r), 23, "release_n gives back the 3 oldest at once");
	ok(put(&r, 29) && put(&r, 30) && put(&r, 31) && put(&r, 32) && !put(&r, 33),
	   "and their slots take new records");
	tap_ring_deinit(&r);
}

/* Fill and empty by varying amounts, far more times than there are slots. */
static void test_wraparound(void)
{
	tap_ring_t r;
	tap_ring_init(&r, 16);
	uint32_t next_put = 0, next_take = 0;
	bool good = true;
	for (unsigned round = 0; round < 5000 && good; round++) {
		unsigned k = round % 17;
		for (unsigned i = 0; i < k; i++)
			if (put(&r, next_put))
				next_put++;
		unsigned m = (round * 7) % 17;
		for (unsigned i = 0; i < m; i++) {
			int64_t v = take(&r);
			if (v == -1)
				break;
			good = v == next_take;
			next_take++;
		}
	}
	ok(good, "5,000 rounds of varied fills and takes come out in order (%u records)", next_put);
	ok(next_put > 16 * 100, "the indexes went round the ring many times");
	tap_ring_deinit(&r);

	/* The indexes are 32-bit counters: they wrap past 2^32 between producer and consumer. */
	tap_ring_init(&r, 8);
	uint32_t start = UINT32_MAX - 5;
	atomic_store(&r.head, start);
	atomic_store(&r.tail, start);
	r.head_seen = r.tail_seen = start;
	good = true;
	for (uint32_t i = 0; i < 8; i++)
		good &= put(&r, i);
	ok(good && !put(&r, 99), "8 records across 2^32, then full");
	for (uint32_t i = 0; i < 8; i++)
		good &= take(&r) == i;
	ok(good && take(&r) == -1, "all 8 back in order across 2^32, then empty");
	tap_ring_deinit(&r);
}

#define STRESS_N 500000u

struct stress {
	tap_ring_t r;
	_Atomic bool done;
	bool retry;	   /* put each record again until it fits, else drop it */
	uint32_t produced; /* records put (the rest dropped) */
};

static void *producer(void *arg)
{
	struct stress *s = arg;
	for (uint32_t i = 0; i < STRESS_N; i++) {
		bool in = put(&s->r, i);
		while (!in && s->retry) {
			sched_yield(); /* the consumer may share this core */
			in = put(&s->r, i);
		}
		s->produced += in;
	}
	atomic_store(&s->done, true);
	return NULL;
}

/*
 * A producer thread and this thread consuming, at full speed: nothing torn, lost or reordered.
 * With retry the two sides meet on every slot; without, most records find the ring full.
 */
static void test_threads(bool retry)
{
	static struct stress s;
	memset(&s, 0, sizeof(s));
	tap_ring_init(&s.r, 64);
	atomic_init(&s.done, false);
	s.retry = retry;
	diag("%s", retry ? "the producer waits for room" : "the producer drops when full");
	pthread_t th;
	pthread_create(&th, NULL, producer, &s);

	uint64_t got = 0, torn = 0, backwards = 0;
	int64_t last = -1;
	time_t deadline = time(NULL) + 30;
	for (;;) {
		int64_t v = take(&s.r);
		if (v == -1) {
			if (atomic_load(&s.done) && tap_ring_peek(&s.r) == NULL)
				break;
			if (time(NULL) > deadline)
				break;
			continue;
		}
		if (v == -2) {
			torn++;
			continue;
		}
		if (v <= last)
			backwards++;
		last = v;
		got++;
	}
	pthread_join(th, NULL);
	is_int((long long)torn, 0, "no record torn");
	is_int((long long)backwards, 0, "none out of order or repeated");
	is_int((long long)got, (long long)s.produced, "every record put was taken (%llu)",
	       (unsigned long long)got);
	if (retry)
		is_int((long long)got, STRESS_N, "all of them");
	if (!retry)
		is_int((long long)(s.produced + s.r.dropped_full), STRESS_N,
		       "put + dropped = %u (%llu dropped)", STRESS_N,
		       (unsigned long long)s.r.dropped_full);
	tap_ring_deinit(&s.r);
}

int main(void)
{
	test_order_and_full();
	test_wraparound();
	test_threads(true);
	test_threads(false);
	return done_testing();
}
