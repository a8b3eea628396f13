/* SPDX-License-Identifier: MIT */
/* The helpers of src/core every module shares: the hash of the in-memory tables, the clocks. */

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/zone.h"
#include "tap.h"

/*
 * The seed is drawn before main(): a table built before the first zone (a
 * pool set, the health targets, the metrics slots) must hash with the seed
 * every later lookup uses.  With a seed of 0 the empty key hashes to 0.
 */
static void test_hash_seed(void)
{
	uint32_t empty = gslb_hash("", 0);
	ok(empty != 0, "the hash is seeded before main() (empty key: %u)", empty);
	zone_t *z = zone_new((const uint8_t *)"\4test");
	ok(gslb_hash("", 0) == empty, "building a zone does not change the hash");
	zone_unref(z);
}

static void test_hash_keys(void)
{
	const uint8_t name[] = "\3www\7example\4test";
	ok(zone_name_hash(name, sizeof(name)) == gslb_hash(name, sizeof(name)),
	   "names hash as any other key");
	/* Every length from 1 to 24 (the whole-word loads and the tail), one byte changed. */
	char a[24], b[24];
	int differ = 0;
	memset(a, 'x', sizeof(a));
	for (size_t len = 1; len <= sizeof(a); len++) {
		memcpy(b, a, len);
		b[len - 1] = 'y';
		differ += gslb_hash(a, len) != gslb_hash(b, len);
		differ += gslb_hash(a, len) != gslb_hash(a, len - 1);
	}
	is_int(differ, 48, "keys differing in their last byte or length hash apart");
	ok(gslb_hash(a, 8) == gslb_hash(a, 8), "the hash is a function of the key");
}

static void test_clocks(void)
{
	int64_t wall = gslb_wall_ms();
	int64_t unix_ms = (int64_t)time(NULL) * 1000;
	ok(wall >= unix_ms - 1000 && wall <= unix_ms + 1000, "wall clock: Unix time in ms (%lld)",
	   (long long)wall);
	uint64_t a = gslb_mono_ms();
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	nanosleep(&pause, NULL);
	uint64_t b = gslb_mono_ms();
	ok(b >= a + 19 && b < a + 5000, "monotonic clock: 20 ms later, %llu ms passed",
	   (unsigned long long)(b - a));
}

int main(void)
{
	test_hash_seed();
	test_hash_keys();
	test_clocks();
	return done_testing();
}
