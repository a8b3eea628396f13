/* SPDX-License-Identifier: MIT */
/* TAP test of the geo module: address tables against test databases, errors, threads, distances. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/geo.h"
#include "../../src/geo/internal.h"
#include "tap.h"

/*
 * geo_db_lookup() runs on the query path, which allocates nothing
 * (style.md): every lookup below runs with this program's own malloc family
 * counting.  Under AddressSanitizer or ThreadSanitizer the allocator belongs
 * to the sanitizer, so the count is skipped there.
 */
#include "alloc_count.h"
static _Atomic unsigned long counted_lookups;

static const char *srcdir;

static char *data_path(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/geoip/%s", srcdir, name) < 0)
		bail_out("out of memory");
	return p;
}

static geo_db_t *open_or_bail(const char *name)
{
	char *path = data_path(name);
	geo_db_t *db = NULL;
	int r = geo_db_open(path, &db);
	if (r < 0 || !db)
		bail_out("cannot open %s: %s (is GSLB_SRCDIR set?)", path, gslb_strerror(r));
	free(path);
	return db;
}

/* Parse text as IPv4 or IPv6; returns the family or 0. */
static int parse_addr(const char *text, uint8_t addr[16])
{
	if (inet_pton(AF_INET, text, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, text, addr) == 1)
		return AF_INET6;
	return 0;
}

static int lookup(const geo_db_t *db, const char *text, geo_info_t *out)
{
	uint8_t addr[16];
	int family = parse_addr(text, addr);
	if (!family)
		bail_out("bad address in table: %s", text);
	alloc_counting = true;
	int r = geo_db_lookup(db, family, addr, out);
	alloc_counting = false;
	counted_lookups++;
	return r;
}

/*
 * One row: an address and what the database must say about it.  NULL
 * country/subdivision/continent mean "empty"; lat = NAN means no location.
 */
struct row {
	const char *addr;
	bool found;
	const char *country, *subdivision, *continent;
	double lat, lon;
	int prefix_len;
};

#define NOLOC NAN, NAN

static bool str_is(const char *got, const char *want)
{
	return !strcmp(got, want ? want : "");
}

static void check_rows(const char *dbname, const geo_db_t *db, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct row *w = &rows[i];
		geo_info_t g;
		int r = lookup(db, w->addr, &g);
		bool want_loc = !isnan(w->lat);
		bool good = r == 0 && g.found == w->found && str_is(g.country, w->country) &&
			    str_is(g.subdivision, w->subdivision) &&
			    str_is(g.continent, w->continent) && g.has_location == want_loc &&
			    g.prefix_len == w->prefix_len;
		if (good && want_loc)
			good = fabs(g.lat - w->lat) < 1e-9 && fabs(g.lon - w->lon) < 1e-9;
		if (!ok(good, "%s: %s -> %s %s %s %s /%d", dbname, w->addr,
			w->found ? "found" : "not found", w->country ? w->country : "-",
			w->subdivision ? w->subdivision : "-", w->continent ? w->continent : "-",
			w->prefix_len))
			diag("  got ret %d found %d country '%s' sub '%s' continent '%s' "
			     "loc %d (%g,%g) /%u",
			     r, g.found, g.country, g.subdivision, g.continent, g.has_location,
			     g.lat, g.lon, g.prefix_len);
	}
}

/* geoip/gslb-test-city.mmdb, from geoip/gslb-test-city.json. */
static const struct row gslb_rows[] = {
	{ "192.0.2.1", true, "DE", "DE-HE", "EU", 50.11, 8.68, 24 },
	{ "192.0.2.255", true, "DE", "DE-HE", "EU", 50.11, 8.68, 24 },
	{ "198.51.100.7", true, "US", "US-VA", "NA", 39.04, -77.49, 24 },
	{ "203.0.113.200", true, "SG", NULL, "AS", 1.35, 103.82, 24 },
	{ "10.1.2.3", true, "US", "US-CA", "NA", 37.34, -121.89, 16 },
	{ "10.2.0.1", true, "JP", "JP-13", "AS", 35.68, 139.69, 16 },
	{ "10.3.255.255", true, "BR", "BR-SP", "SA", -23.55, -46.63, 16 },
	{ "10.4.1.1", true, "AU", "AU-NSW", "OC", -33.87, 151.21, 16 },
	/* No country: registered_country is used. */
	{ "10.5.1.1", true, "FR", NULL, "EU", 46.23, 2.21, 16 },
	/* Country only, no location. */
	{ "10.6.7.8", true, "NL", NULL, "EU", NOLOC, 16 },
	{ "10.7.15.255", true, "GB", "GB-ENG", "EU", 51.51, -0.13, 20 },
	{ "10.8.0.1", true, "IN", "IN-MH", "AS", 19.08, 72.88, 25 },
	{ "10.8.0.200", true, "ZA", "ZA-GP", "AF", -26.2, 28.05, 25 },
	/* Unknown addresses: the prefix is the empty network around them. */
	{ "10.7.16.0", false, NULL, NULL, NULL, NOLOC, 20 },
	{ "10.9.0.1", false, NULL, NULL, NULL, NOLOC, 16 },
	{ "8.8.8.8", false, NULL, NULL, NULL, NOLOC, 7 },
	{ "127.0.0.1", false, NULL, NULL, NULL, NOLOC, 2 },
	{ "2001:db8:1::1", true, "DE", "DE-HE", "EU", 50.11, 8.68, 48 },
	{ "2001:db8:2:ffff::1", true, "US", "US-VA", "NA", 39.04, -77.49, 48 },
	{ "2001:db8:3::53", true, "SG", NULL, "AS", 1.35, 103.82, 48 },
	{ "2001:db8:4:ff::1", true, "BR", "BR-SP", "SA", -23.55, -46.63, 56 },
	{ "2001:db8:4:100::1", false, NULL, NULL, NULL, NOLOC, 56 },
	{ "2001:db8:5::1", true, "FR", NULL, "EU", 46.23, 2.21, 64 },
	{ "2001:db8:6::1", false, NULL, NULL, NULL, NOLOC, 47 },
	{ "2001:4860:4860::8888", false, NULL, NULL, NULL, NOLOC, 18 },
	/* IPv4 inside the IPv6 database: mapped, 6to4 and the ::/96 it is stored in. */
	{ "::ffff:192.0.2.1", true, "DE", "DE-HE", "EU", 50.11, 8.68, 120 },
	{ "::ffff:10.8.0.129", true, "ZA", "ZA-GP", "AF", -26.2, 28.05, 121 },
	{ "::ffff:8.8.8.8", false, NULL, NULL, NULL, NOLOC, 103 },
	{ "2002:c000:201::1", true, "DE", "DE-HE", "EU", 50.11, 8.68, 40 },
	{ "::192.0.2.1", true, "DE", "DE-HE", "EU", 50.11, 8.68, 120 },
};

/* MaxMind's GeoIP2-City-Test.mmdb; values from its source-data/GeoIP2-City-Test.json. */
static const struct row city_rows[] = {
	/* country GB wins over registered_country US */
	{ "81.2.69.142", true, "GB", "GB-ENG", "EU", 51.5142, -0.0931, 31 },
	{ "81.2.69.160", true, "GB", "GB-ENG", "EU", 51.5142, -0.0931, 27 },
	{ "216.160.83.56", true, "US", "US-WA", "NA", 47.2513, -122.3149, 29 },
	{ "2.125.160.217", true, "GB", "GB-ENG", "EU", 51.75, -1.25, 29 },
	{ "175.16.199.1", true, "CN", "CN-22", "AS", 43.88, 125.3228, 24 },
	{ "202.196.224.1", true, "PH", NULL, "AS", 13, 122, 20 },
	{ "67.43.156.1", true, "BT", NULL, "AS", 27.5, 90.5, 24 },
	{ "2001:480:10::1", true, "US", "US-CA", "NA", 32.7203, -117.1552, 48 },
	{ "2001:218::1", true, "JP", NULL, "AS", 35.68536, 139.75309, 32 },
	/* Neither country nor registered_country. */
	{ "2a02:d500::1", true, NULL, NULL, "EU", 48.69096, 9.14062, 29 },
	/* A record with only traits.is_anycast. */
	{ "214.1.1.1", true, NULL, NULL, NULL, NOLOC, 24 },
	{ "::ffff:81.2.69.142", true, "GB", "GB-ENG", "EU", 51.5142, -0.0931, 127 },
	{ "2002:5102:458e::1", true, "GB", "GB-ENG", "EU", 51.5142, -0.0931, 47 },
	{ "1.1.1.1", false, NULL, NULL, NULL, NOLOC, -1 },
};

/* MaxMind's GeoLite2-Country-Test.mmdb: the Country schema has no location or subdivisions. */
static const struct row country_rows[] = {
	{ "81.2.69.142", true, "GB", NULL, "EU", NOLOC, 31 },
	{ "67.43.156.1", true, "BT", NULL, "AS", NOLOC, 24 },
	{ "2001:480:10::1", true, "US", NULL, "NA", NOLOC, -1 },
	{ "2a02:d500::1", true, NULL, NULL, "EU", NOLOC, 29 },
	{ "175.16.199.1", false, NULL, NULL, NULL, NOLOC, -1 },
};

/* MaxMind's MaxMind-DB-test-ipv4-24.mmdb: an IPv4-only database of { "ip": ... } records. */
static const struct row ipv4_rows[] = {
	{ "1.1.1.1", true, NULL, NULL, NULL, NOLOC, 32 },
	{ "1.1.1.3", true, NULL, NULL, NULL, NOLOC, 31 },
	{ "::ffff:1.1.1.3", true, NULL, NULL, NULL, NOLOC, 127 },
	/* IPv6 in an IPv4 database: nothing is known anywhere in IPv6. */
	{ "2001:db8::1", false, NULL, NULL, NULL, NOLOC, 0 },
};

/*
 * Rows whose prefix is -1 were not worked out by hand: fill them in from
 * the first lookup so the remaining fields are still checked.
 */
static void check_table(const char *dbname, const char *file, const struct row *rows, size_t n)
{
	geo_db_t *db = open_or_bail(file);
	struct row copy[32];
	if (n > ARRAY_SIZE(copy))
		bail_out("table too long");
	memcpy(copy, rows, n * sizeof(*rows));
	for (size_t i = 0; i < n; i++) {
		if (copy[i].prefix_len < 0) {
			geo_info_t g;
			lookup(db, copy[i].addr, &g);
			copy[i].prefix_len = g.prefix_len;
		}
	}
	check_rows(dbname, db, copy, n);
	geo_db_close(db);
}

static void test_metadata(void)
{
	geo_db_t *db = open_or_bail("gslb-test-city.mmdb");
	geo_db_meta_t m;
	geo_db_metadata(db, &m);
	ok(!strcmp(m.database_type, "GeoIP2-City"), "metadata: database_type %s", m.database_type);
	is_int(m.ip_version, 6, "metadata: ip_version 6");
	is_int((long long)m.build_epoch, 1767225600, "metadata: fixed build epoch (reproducible)");
	ok(m.node_count > 0, "metadata: %u nodes", m.node_count);
	ok(strstr(m.path, "gslb-test-city.mmdb") != NULL, "metadata: path %s", m.path);
	geo_db_close(db);
	geo_db_close(NULL);
	ok(true, "geo_db_close(NULL) is a no-op");
}

static void test_bad_arguments(void)
{
	geo_db_t *db = open_or_bail("gslb-test-city.mmdb");
	uint8_t addr[16] = { 192, 0, 2, 1 };
	geo_info_t g;
	memset(&g, 0xa5, sizeof(g));
	is_int(geo_db_lookup(db, AF_UNIX, addr, &g), -EINVAL, "lookup: unknown family -> -EINVAL");
	ok(!g.found && !g.country[0] && g.prefix_len == 0, "lookup: error leaves *out zeroed");
	is_int(geo_db_lookup(db, AF_INET, NULL, &g), -EINVAL, "lookup: NULL address -> -EINVAL");
	is_int(geo_db_lookup(NULL, AF_INET, addr, &g), -EINVAL, "lookup: NULL db -> -EINVAL");
	is_int(geo_db_lookup(db, 4, addr, &g), 0, "lookup: family 4 as lb_addr_t spells it");
	ok(g.found && !strcmp(g.country, "DE"), "lookup: family 4 finds 192.0.2.1 in DE");
	geo_db_close(db);
}

static void expect_open_error(const char *what, const char *path, int want)
{
	geo_db_t *db = (geo_db_t *)&db; /* must be reset to NULL */
	int r = geo_db_open(path, &db);
	if (!ok(r == want && db == NULL, "open %s: %s", what, gslb_strerror(want)))
		diag("  got %d (%s), db %p", r, gslb_strerror(r), (void *)db);
}

static void test_open_errors(void)
{
	char *missing = data_path("no-such-file.mmdb");
	expect_open_error("a missing file", missing, -ENOENT);
	free(missing);

	char *bad = data_path("maxmind/GeoIP2-City-Test-Invalid-Node-Count.mmdb");
	expect_open_error("MaxMind's invalid node count file", bad, GSLB_EGEODB);
	free(bad);

	/* Truncated copies of a good database, made here. */
	char *good = data_path("gslb-test-city.mmdb");
	FILE *in = fopen(good, "rb");
	if (!in)
		bail_out("cannot read %s", good);
	static uint8_t buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf), in);
	fclose(in);
	free(good);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const size_t cuts[] = { 0, 100, n / 2, n - 10 };
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/test_geo.%ld.mmdb", tmp, (long)getpid());
		FILE *out = fopen(path, "wb");
		if (!out || fwrite(buf, 1, cuts[i], out) != cuts[i] || fclose(out))
			bail_out("cannot write %s", path);
		char what[64];
		snprintf(what, sizeof(what), "a copy truncated to %zu of %zu bytes", cuts[i], n);
		expect_open_error(what, path, GSLB_EGEODB);
		unlink(path);
	}

	geo_db_t *db = NULL;
	char *dir = data_path("");
	int r = geo_db_open(dir, &db);
	if (!ok(r == -EISDIR && !db, "open a directory: %s", gslb_strerror(-EISDIR)))
		diag("  got %d (%s)", r, gslb_strerror(r));
	free(dir);
}

static void test_broken_data(void)
{
	/* Opens fine; the damage is in the doubles of the records. */
	geo_db_t *db = open_or_bail("maxmind/GeoIP2-City-Test-Broken-Double-Format.mmdb");
	geo_info_t g;
	int r = lookup(db, "81.2.69.142", &g);
	is_int(r, GSLB_EGEODB, "broken doubles: lookup says GSLB_EGEODB, no crash");
	ok(!g.found && !g.country[0] && !g.has_location && g.prefix_len == 0,
	   "broken doubles: *out zeroed");
	is_int(lookup(db, "1.1.1.1", &g), 0,
	       "broken doubles: an address without a record still works");
	geo_db_close(db);
}

/*
 * Lookups from several threads at once must agree with a single-threaded
 * run; under ThreadSanitizer or helgrind this is the race check too.
 */
struct thread_arg {
	const geo_db_t *db;
	const geo_info_t *want;
	int mismatches;
};

static void *lookup_thread(void *p)
{
	struct thread_arg *a = p;
	for (int round = 0; round < 500; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(gslb_rows); i++) {
			geo_info_t g;
			lookup(a->db, gslb_rows[i].addr, &g);
			if (memcmp(&g, &a->want[i], sizeof(g)))
				a->mismatches++;
		}
	}
	return NULL;
}

static void test_threads(void)
{
	geo_db_t *db = open_or_bail("gslb-test-city.mmdb");
	geo_info_t want[ARRAY_SIZE(gslb_rows)];
	for (size_t i = 0; i < ARRAY_SIZE(gslb_rows); i++) {
		memset(&want[i], 0, sizeof(want[i])); /* padding too, for memcmp */
		lookup(db, gslb_rows[i].addr, &want[i]);
	}
	pthread_t t[4];
	struct thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ db, want, 0 };
		if (pthread_create(&t[i], NULL, lookup_thread, &args[i]))
			bail_out("pthread_create failed");
	}
	int mismatches = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		mismatches += args[i].mismatches;
	}
	is_int(mismatches, 0, "4 threads x %zu lookups agree with one thread",
	       500 * ARRAY_SIZE(gslb_rows));
	geo_db_close(db);
}

static void near(double got, double want, double tolerance, const char *what)
{
	if (!ok(fabs(got - want) <= tolerance, "distance %s: %.1f km (want %.1f +- %.1f)", what,
		got, want, tolerance))
		diag("  off by %.3f km", got - want);
}

static void test_distance(void)
{
	const double frankfurt[2] = { 50.11, 8.68 }, singapore[2] = { 1.35, 103.82 };
	double d = geo_distance_km(frankfurt[0], frankfurt[1], singapore[0], singapore[1]);
	near(d, 10260, 102.6, "Frankfurt-Singapore (1 %)");
	near(geo_distance_km(singapore[0], singapore[1], frankfurt[0], frankfurt[1]), d, 1e-9,
	     "is symmetric");
	near(geo_distance_km(39.04, -77.49, 50.11, 8.68), 6540, 65, "Ashburn-Frankfurt (1 %)");
	near(geo_distance_km(51.5074, -0.1278, 48.8566, 2.3522), 343.5, 3.5, "London-Paris (1 %)");
	near(geo_distance_km(50.11, 8.68, 50.11, 8.68), 0, 1e-9, "same point");
	/* Half the circumference of the mean sphere: pi * 6371.0088. */
	near(geo_distance_km(0, 0, 0, 180), M_PI * 6371.0088, 1e-6, "antipodes on the equator");
	near(geo_distance_km(90, 0, -90, 0), M_PI * 6371.0088, 1e-6, "pole to pole");
	near(geo_distance_km(0, 179.5, 0, -179.5), 111.195, 0.01, "across the antimeridian");
	near(geo_distance_km(-33.87, 151.21, 0, 0) + geo_distance_km(0, 0, 33.87, -28.79),
	     M_PI * 6371.0088, 1e-6, "through a point to the antipode");
}

/* --country codes (src/geo/country.c): ISO 3166-1 assigned plus XK, nothing GeoIP1-only. */
static void test_place_codes(void)
{
	size_t n = geo_country_count();
	bool sorted = true;
	for (size_t i = 1; i < n; i++)
		if (strcmp(geo_country_at(i - 1), geo_country_at(i)) >= 0)
			sorted = false;
	ok(sorted && geo_country_at(n) == NULL, "country table strictly sorted (bsearch needs it)");
	is_int((long long)n, 250, "249 assigned ISO 3166-1 alpha-2 codes and XK");
	static const char *const known[] = { "AD", "DE", "GB", "US", "SG", "JP",
					     "XK", "AX", "SS", "CW", "BQ", "ZW" };
	static const char *const unknown[] = { "XX", "EU", "AP", "UK", "A1", "A2",  "O1",
					       "ZZ", "AA", "de", "D",  "",   "DEU", "D1" };
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		ok(geo_country_known(known[i]), "country %s known", known[i]);
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
		ok(!geo_country_known(unknown[i]), "country '%s' refused", unknown[i]);
	ok(!geo_country_known(NULL), "country NULL refused");
	static const char *const places[] = {
		"US-CA", "GB-ENG", "JP-13", "ES-M", "FR-IDF", "XK-1"
	};
	static const char *const bad[] = { "XX-CA", "EU-1",  "US-",  "US-CALI", "US_CA",
					   "us-ca", "US-C.", "USCA", "U",	"-CA" };
	for (size_t i = 0; i < ARRAY_SIZE(places); i++)
		ok(geo_place_code_valid(places[i]), "place %s valid", places[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ok(!geo_place_code_valid(bad[i]), "place '%s' refused", bad[i]);
	/* Every country and subdivision our test file and MaxMind's return can be listed. */
	static const char *const returned[] = { "DE-HE",  "US-VA",  "SG",     "US-CA",
						"JP-13",  "BR-SP",  "AU-NSW", "FR",
						"NL",	  "GB-ENG", "IN-MH",  "ZA-GP",
						"GB-WBK", "SE-E",   "PH-22",  "BT" };
	bool all = true;
	for (size_t i = 0; i < ARRAY_SIZE(returned); i++)
		if (!geo_place_code_valid(returned[i])) {
			diag("refused: %s", returned[i]);
			all = false;
		}
	ok(all, "the codes the test geo files return are all valid");
}

int main(void)
{
	srcdir = getenv("GSLB_SRCDIR") ? getenv("GSLB_SRCDIR") : ".";
	gslb_log_set_ident("test_geo");

	test_metadata();
	check_table("gslb-test-city", "gslb-test-city.mmdb", gslb_rows, ARRAY_SIZE(gslb_rows));
	check_table("GeoIP2-City-Test", "maxmind/GeoIP2-City-Test.mmdb", city_rows,
		    ARRAY_SIZE(city_rows));
	check_table("GeoLite2-Country-Test", "maxmind/GeoLite2-Country-Test.mmdb", country_rows,
		    ARRAY_SIZE(country_rows));
	check_table("ipv4-24", "maxmind/MaxMind-DB-test-ipv4-24.mmdb", ipv4_rows,
		    ARRAY_SIZE(ipv4_rows));
	test_bad_arguments();
	test_open_errors();
	test_broken_data();
	test_threads();
	test_distance();
	test_place_codes();

#if COUNT_ALLOCS
	/*
	 * First make sure the counter sees libmaxminddb's allocations (it
	 * does not when valgrind has replaced malloc), else a zero below
	 * would prove nothing.
	 */
	unsigned long before = alloc_count;
	alloc_counting = true;
	geo_db_t *db = open_or_bail("gslb-test-city.mmdb");
	alloc_counting = false;
	unsigned long seen = alloc_count - before;
	geo_db_close(db);
	if (seen > 2) {
		is_int((long long)before, 0, "%lu lookups made no allocation",
		       (unsigned long)counted_lookups);
	} else {
		ok(true, "lookups made no allocation # SKIP malloc is not ours here (valgrind?)");
	}
#else
	(void)alloc_count;
	diag("allocation count skipped under a sanitizer");
#endif
	return done_testing();
}
