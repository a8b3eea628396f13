/* SPDX-License-Identifier: MIT */
/*
 * TAP test of geo_db_lookup() against geo_db_lookup_reference() (libmaxminddb's walk and decoding),
 * field by field, on every network's edges and random addresses of test and generated databases.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <maxminddb.h>

#include "gslb/core.h"
#include "gslb/geo.h"
#include "../../src/geo/internal.h"
#include "tap.h"

static const char *srcdir;

/* A small xorshift: the same addresses on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct tally {
	const char *name;
	unsigned long checked, differ, found, errors;
};

static const char *fmt_addr(int family, const uint8_t *addr, char *buf, size_t len)
{
	int f = family == 4 || family == AF_INET ? AF_INET : AF_INET6;
	return inet_ntop(f, addr, buf, (socklen_t)len) ? buf : "?";
}

/*
 * Fill the stack below the caller with '#', so that a lookup reading a
 * variable it never set (a code copied in part) shows it, rather than
 * finding zeros by chance.
 */
static void __attribute__((noinline)) scribble_stack(void)
{
	volatile char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = '#';
}

/* Upper-case letters and digits, min to max of them. */
static bool code_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return n >= min && n <= max;
}

/* A result as geo.h promises it: empty or well-formed codes, a subdivision of its country. */
static bool info_ok(const geo_info_t *g)
{
	if (!code_ok(g->country, 0, 2) || strlen(g->country) == 1 || !code_ok(g->continent, 0, 2) ||
	    strlen(g->continent) == 1)
		return false;
	if (!g->subdivision[0])
		return true;
	return g->country[0] && !strncmp(g->subdivision, g->country, 2) &&
	       g->subdivision[2] == '-' && code_ok(g->subdivision + 3, 1, 3);
}

/* Compare the two lookups of one address field by field; diag the first few differences. */
static void compare(const geo_db_t *db, struct tally *t, int family, const uint8_t *addr)
{
	geo_info_t a, b;
	memset(&a, 0x5a, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	scribble_stack();
	int ra = geo_db_lookup(db, family, addr, &a);
	scribble_stack();
	int rb = geo_db_lookup_reference(db, family, addr, &b);
	t->checked++;
	t->found += rb == 0 && b.found;
	t->errors += rb != 0;
	const char *what = NULL;
	if (ra != rb)
		what = "return code";
	else if (a.found != b.found)
		what = "found";
	else if (a.prefix_len != b.prefix_len)
		what = "prefix_len";
	else if (strcmp(a.country, b.country) != 0)
		what = "country";
	else if (strcmp(a.subdivision, b.subdivision) != 0)
		what = "subdivision";
	else if (strcmp(a.continent, b.continent) != 0)
		what = "continent";
	else if (a.has_location != b.has_location)
		what = "has_location";
	else if (memcmp(&a.lat, &b.lat, sizeof(a.lat)) != 0 ||
		 memcmp(&a.lon, &b.lon, sizeof(a.lon)) != 0)
		what = "lat/lon";
	else if (memcmp(a.uvec, b.uvec, sizeof(a.uvec)) != 0)
		what = "uvec";
	else if (!info_ok(&a) || !info_ok(&b))
		what = "a code's form";
	if (!what)
		return;
	if (t->differ++ < 5) {
		char buf[INET6_ADDRSTRLEN];
		diag("%s: %s (family %d): %s differs: got %d %d /%u %s %s %s, want %d %d /%u %s %s "
		     "%s",
		     t->name, fmt_addr(family, addr, buf, sizeof(buf)), family, what, ra, a.found,
		     a.prefix_len, a.country, a.subdivision, a.continent, rb, b.found, b.prefix_len,
		     b.country, b.subdivision, b.continent);
	}
}

/* Every form an address can take: IPv4 as AF_INET, as 4, IPv4-mapped; IPv6 as AF_INET6 and 6. */
static void compare_v4(const geo_db_t *db, struct tally *t, const uint8_t v4[4])
{
	uint8_t mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	memcpy(mapped + 12, v4, 4);
	compare(db, t, AF_INET, v4);
	compare(db, t, 4, v4);
	compare(db, t, AF_INET6, mapped);
}

static void compare_v6(const geo_db_t *db, struct tally *t, const uint8_t v6[16])
{
	compare(db, t, AF_INET6, v6);
	compare(db, t, 6, v6);
}

/* Set the bits of addr from bit on (host bits) to ones or zeros. */
static void fill_host(uint8_t *addr, unsigned bits, unsigned from, bool ones)
{
	for (unsigned i = from; i < bits; i++) {
		uint8_t m = (uint8_t)(0x80u >> (i % 8));
		addr[i / 8] = ones ? addr[i / 8] | m : addr[i / 8] & (uint8_t)~m;
	}
}

/*
 * Walk the search tree with libmaxminddb's MMDB_read_node() (not with the
 * code under test) and check the first and last address of every network
 * it ends in: the edges where a wrong prefix length or walk shows.  Each
 * end costs a few addresses, both sides of every boundary are some
 * network's edge.  The IPv4 subtree is reached through its aliases too
 * (::ffff:0:0/96, 2002::/16): those are IPv6 addresses like any other.
 */
static void walk_networks(const MMDB_s *mmdb, const geo_db_t *db, struct tally *t, uint32_t node,
			  uint8_t *addr, unsigned depth, unsigned bits)
{
	MMDB_search_node_s n;
	if (MMDB_read_node(mmdb, node, &n) != MMDB_SUCCESS) {
		t->differ++;
		diag("%s: MMDB_read_node(%u) failed", t->name, node);
		return;
	}
	for (unsigned side = 0; side < 2; side++) {
		uint8_t a[16];
		memcpy(a, addr, sizeof(a));
		uint8_t m = (uint8_t)(0x80u >> (depth % 8));
		a[depth / 8] = side ? a[depth / 8] | m : a[depth / 8] & (uint8_t)~m;
		uint64_t rec = side ? n.right_record : n.left_record;
		uint8_t type = side ? n.right_record_type : n.left_record_type;
		if (type == MMDB_RECORD_TYPE_SEARCH_NODE && depth + 1 < bits) {
			walk_networks(mmdb, db, t, (uint32_t)rec, a, depth + 1, bits);
			continue;
		}
		for (unsigned ones = 0; ones < 2; ones++) {
			uint8_t e[16];
			memcpy(e, a, sizeof(e));
			fill_host(e, bits, depth + 1, ones);
			if (bits == 32) {
				compare_v4(db, t, e);
				continue;
			}
			compare_v6(db, t, e);
			/* In ::/96, IPv4 as the IPv6 database holds it: ask as IPv4 too. */
			static const uint8_t zero[12];
			if (!memcmp(e, zero, sizeof(zero)))
				compare_v4(db, t, e + 12);
		}
	}
}

static void random_addresses(const geo_db_t *db, struct tally *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t a[16];
		uint64_t r1 = rnd(), r2 = rnd();
		memcpy(a, &r1, 8);
		memcpy(a + 8, &r2, 8);
		compare_v4(db, t, a);
		/* Most IPv6 data is in 2000::/3: put a third of them there. */
		if (i % 3 == 0)
			a[0] = (uint8_t)(0x20 | (a[0] & 0x1f));
		compare_v6(db, t, a);
	}
}

/* Compare everywhere in the database at path; name for the messages. */
static void check_db(const char *name, const char *path, unsigned random_count)
{
	geo_db_t *db = NULL;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = geo_db_open(path, &db);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0) {
		ok(false, "%s: open %s: %s", name, path, gslb_strerror(r));
		return;
	}
	/* An MMDB_s of our own, for the walk over the networks; and what opening costs alone. */
	struct timespec t2, t3;
	MMDB_s mmdb;
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (MMDB_open(path, MMDB_MODE_MMAP, &mmdb) != MMDB_SUCCESS)
		bail_out("MMDB_open %s", path);
	clock_gettime(CLOCK_MONOTONIC, &t3);
	geo_db_meta_t meta;
	geo_db_metadata(db, &meta);
	diag("%s: %u nodes, %u distinct records, %zu bytes of tables, opened in %.1f ms "
	     "(MMDB_open() alone: %.1f ms)",
	     name, meta.node_count, meta.records, meta.flat_bytes,
	     (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	     (double)(t3.tv_sec - t2.tv_sec) * 1e3 + (double)(t3.tv_nsec - t2.tv_nsec) / 1e6);
	struct tally t = { .name = name };
	uint8_t addr[16] = { 0 };
	walk_networks(&mmdb, db, &t, 0, addr, 0, mmdb.metadata.ip_version == 4 ? 32 : 128);
	MMDB_close(&mmdb);
	ok(t.differ == 0 && t.found > 0,
	   "%s: every network's first and last address: %lu lookups agree (%lu differ, %lu found, "
	   "%lu errors)",
	   name, t.checked, t.differ, t.found, t.errors);

	struct tally u = { .name = name };
	random_addresses(db, &u, random_count);
	ok(u.differ == 0, "%s: %lu lookups of random addresses agree (%lu differ, %lu found)", name,
	   u.checked, u.differ, u.found);
	geo_db_close(db);
}

static char *data_path(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/geoip/%s", srcdir, name) < 0)
		bail_out("out of memory");
	return p;
}

/* A database from bench/make-geo-db.pl, or NULL when its Perl module is missing. */
static char *generate(const char *dir, unsigned networks, unsigned seed, unsigned record_size)
{
	char *out = NULL, *cmd = NULL;
	if (asprintf(&out, "%s/gen-%u-%u-%u.mmdb", dir, networks, seed, record_size) < 0 ||
	    asprintf(&cmd, "perl '%s/bench/make-geo-db.pl' %u '%s' %u %u >/dev/null", srcdir,
		     networks, out, seed, record_size) < 0)
		bail_out("out of memory");
	int r = system(cmd);
	free(cmd);
	if (r != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * The records of random nodes of every record size, read by geo_tree_record()
 * and by MMDB_read_node() on a search tree of random bytes: the test
 * databases are too small for 28-bit records with their top bits set
 * (values from 2^24, found in GeoLite2 City), so this covers them.
 */
static void test_tree_records(void)
{
	enum { NODES = 4096 };
	static uint8_t tree[NODES * 8 + 16];
	for (size_t i = 0; i < sizeof(tree); i++)
		tree[i] = (uint8_t)rnd();
	for (unsigned rb = 6; rb <= 8; rb++) {
		MMDB_s m;
		memset(&m, 0, sizeof(m));
		m.file_content = tree;
		m.full_record_byte_size = (uint16_t)rb;
		m.metadata.record_size = (uint16_t)(rb * 4);
		m.metadata.node_count = NODES;
		m.data_section = tree + NODES * rb + 16;
		m.data_section_size = UINT32_MAX - NODES;
		unsigned differ = 0, high = 0;
		for (uint32_t n = 0; n < NODES; n++) {
			MMDB_search_node_s node;
			if (MMDB_read_node(&m, n, &node) != MMDB_SUCCESS) {
				differ++;
				continue;
			}
			uint32_t l = geo_tree_record(tree, n, rb, 0),
				 r = geo_tree_record(tree, n, rb, 1);
			differ += l != node.left_record || r != node.right_record;
			high += node.left_record >> 24 != 0 && node.right_record >> 24 != 0;
		}
		ok(differ == 0 && (rb == 6 || high > NODES / 2),
		   "%u-bit records: geo_tree_record() reads %u nodes as MMDB_read_node() does (%u "
		   "differ, %u with both top bytes set)",
		   rb * 4, NODES, differ, high);
	}
}

int main(void)
{
	srcdir = getenv("GSLB_SRCDIR") ? getenv("GSLB_SRCDIR") : ".";
	gslb_log_set_ident("test_geo_flat");
	test_tree_records();

	static const char *const files[] = {
		"gslb-test-city.mmdb",
		"maxmind/GeoIP2-City-Test.mmdb",
		"maxmind/GeoLite2-Country-Test.mmdb",
		"maxmind/MaxMind-DB-test-ipv4-24.mmdb", /* IPv4 only, 24-bit records */
		"maxmind/GeoIP2-City-Test-Broken-Double-Format.mmdb", /* undecodable records */
	};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *p = data_path(files[i]);
		check_db(files[i], p, 20000);
		free(p);
	}

	/*
	 * Generated databases: thousands of networks of every length, records
	 * shared, odd values, each record size.  Needs Debian's
	 * libmaxmind-db-writer-perl (setup.sh installs it).
	 */
	char dir[] = "/tmp/test_geo_flat.XXXXXX";
	if (!mkdtemp(dir))
		bail_out("mkdtemp: %s", strerror(errno));
	static const unsigned sizes[] = { 28, 24, 32 };
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		char *p = generate(dir, i == 0 ? 2500 : 1500, (unsigned)i + 1, sizes[i]);
		if (!p) {
			ok(true, "generated database # SKIP perl or MaxMind::DB::Writer missing");
			continue;
		}
		char name[64];
		snprintf(name, sizeof(name), "generated (%u-bit records)", sizes[i]);
		check_db(name, p, 20000);
		unlink(p);
		free(p);
	}
	rmdir(dir);

	/* Any other file, e.g. a GeoLite2 City download: GSLB_TEST_MMDB=path. */
	const char *extra = getenv("GSLB_TEST_MMDB");
	if (extra && *extra)
		check_db(extra, extra, 200000);
	return done_testing();
}
