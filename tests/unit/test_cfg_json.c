/* SPDX-License-Identifier: MIT */
/*
 * A pool as JSON and back (src/cfg, include/gslb/cfg.h): what a cluster keeps
 * in etcd and every node reads.  Random pools (every field, the quorum of
 * checks too) read back as themselves; the same pool is always the same bytes
 * (nodes compare pools by their text); invalid pools are refused with the
 * reason gslbctl apply gives, by the value's path inside the pool.
 * GSLB_TEST_SEED=N repeats one run.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/cfg.h"
#include "gslb/core.h"
#include "gslb/health.h"
#include "gslb/lb.h"
#include "tap.h"

#define ROUNDS 300

static uint64_t rng_state;

/* xorshift64*: the same pools for the same seed on every machine. */
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return n ? (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32) % n : 0;
}

/* lo..hi, both included. */
static uint32_t between(uint32_t lo, uint32_t hi)
{
	return lo + rnd(hi - lo + 1);
}

static char *fmt_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *fmt_dup(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return gslb_strdup(buf);
}

/* A random canonical address: IPv4, or IPv6 in 2001:db8::/32 (never IPv4-mapped). */
static void random_ip(char *out, int *family)
{
	uint8_t b[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	if (rnd(2)) {
		for (int i = 0; i < 4; i++)
			b[i] = (uint8_t)rnd(256);
		inet_ntop(AF_INET, b, out, INET6_ADDRSTRLEN);
		*family = 4;
	} else {
		/* Runs of zeros now and then, so "::" is written in every place. */
		for (int i = 4; i < 16; i++)
			b[i] = rnd(3) ? 0 : (uint8_t)rnd(256);
		inet_ntop(AF_INET6, b, out, INET6_ADDRSTRLEN);
		*family = 6;
	}
}

/* A random decimal in lo..hi with up to 12 digits after the point. */
static double random_degrees(double lo, double hi)
{
	double v = lo + (hi - lo) * ((double)rnd(1000000000) / 1e9);
	if (rnd(4) == 0)
		v = (double)(int)v; /* whole degrees, written without a point */
	return v == 0 ? 0.0 : v;    /* never -0 */
}

static db_check_t *random_check(bool member)
{
	static const char *const expects[] = { "200-299", "200-399,404", "301", "200,204-206" };
	db_check_t *c = gslb_calloc(1, sizeof(*c));

	c->type = (uint8_t)rnd(3);
	if (c->type == DB_CHECK_TCP || rnd(2))
		c->port = (uint16_t)between(1, UINT16_MAX);
	if (c->type != DB_CHECK_TCP) {
		if (rnd(2))
			c->path = fmt_dup("/health/%u", rnd(1000));
		if (rnd(2))
			c->host = fmt_dup("h%u.example.net", rnd(1000));
		if (rnd(2))
			c->expect = gslb_strdup(expects[rnd(ARRAY_SIZE(expects))]);
		if (rnd(2))
			c->match = fmt_dup("ok \"%u\"\t\\ done", rnd(1000));
	}
	c->interval_ms = between(HEALTH_INTERVAL_MS_MIN, HEALTH_INTERVAL_MS_MAX);
	if (rnd(2))
		c->interval_ms -= c->interval_ms % 1000;
	c->timeout_ms = between(1, c->interval_ms - 1);
	c->rise = (uint8_t)between(1, HEALTH_RISE_MAX);
	c->fall = (uint8_t)between(1, HEALTH_FALL_MAX);
	if (member && rnd(3) == 0) {
		char ip[INET6_ADDRSTRLEN];
		int fam;
		random_ip(ip, &fam);
		c->target = gslb_strdup(ip);
	}
	c->insecure = c->type == DB_CHECK_HTTPS && rnd(2);
	c->quorum = (uint8_t)rnd(4);
	return c;
}

static void random_member(db_member_t *m, unsigned i)
{
	static const char *const countries[] = { "DE", "FR-IDF", "US", "JP", "XK", "GB-ENG" };
	static const char *const continents[] = { "EU", "NA", "AS", "OC" };
	char name[32], ip[INET6_ADDRSTRLEN], list[64] = "";
	int fam;

	/* Names sorted as strcmp() sorts them, as db_config_load() gives members. */
	snprintf(name, sizeof(name), "m%03u%s", i, rnd(2) ? "-a.b_c" : "");
	cfg_member_defaults(m, name);
	/* README "Alias members": an alias beside addresses, or instead of them. */
	if (rnd(3) == 0)
		m->alias = fmt_dup("lb-%u.%s.example.net.", rnd(1000),
				   rnd(2) ? "eu-west-1" : "x_y");
	for (uint32_t n = between(m->alias ? 0 : 1, 4); m->naddresses < n;) {
		random_ip(ip, &fam);
		cfg_member_add_address(m, ip, fam);
	}
	m->weight = (uint16_t)between(0, LB_WEIGHT_MAX);
	m->priority = (uint8_t)between(1, LB_PRIORITY_MAX);
	m->admin = (uint8_t)rnd(4);
	if (rnd(2)) {
		m->has_location = true;
		m->latitude = random_degrees(-90, 90);
		m->longitude = random_degrees(-180, 180);
	}
	if (rnd(2)) {
		for (size_t k = 0; k < ARRAY_SIZE(countries); k++)
			if (rnd(2) || k == 0)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 *list ? "," : "", countries[k]);
		m->countries = gslb_strdup(list);
	}
	if (rnd(2)) {
		*list = '\0';
		for (size_t k = 0; k < ARRAY_SIZE(continents); k++)
			if (rnd(2) || k == 0)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 *list ? "," : "", continents[k]);
		m->continents = gslb_strdup(list);
	}
	for (uint32_t n = rnd(4); m->nnetworks < n;) {
		char net[CIDR_LEN];
		if (rnd(2))
			snprintf(net, sizeof(net), "10.%u.%u.0/24", rnd(256), rnd(256));
		else
			snprintf(net, sizeof(net), "2001:db8:%x::/48", rnd(65536));
		cfg_member_add_network(m, net);
	}
	if (rnd(3) == 0)
		m->check = random_check(true);
}

static void random_pool(db_pool_t *p, unsigned round)
{
	char name[64];
	snprintf(name, sizeof(name), "p%u.%s.example.com.", round, rnd(2) ? "www" : "a-b_c");
	cfg_pool_defaults(p, name);
	p->policy = (uint8_t)rnd(3);
	p->ttl = between(0, LB_TTL_MAX);
	p->degraded_ttl = rnd(2) ? -1 : (int32_t)between(1, LB_TTL_MAX);
	p->answers = (uint8_t)between(1, LB_ANSWERS_MAX);
	p->fallback_all = rnd(2);
	if (rnd(2))
		p->check = random_check(false);
	p->nmembers = rnd(6);
	p->members = gslb_calloc(p->nmembers ? p->nmembers : 1, sizeof(db_member_t));
	for (size_t i = 0; i < p->nmembers; i++)
		random_member(&p->members[i], (unsigned)i);
}

/* ---- equality, field by field, saying what differs ---- */

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const char *check_diff(const db_check_t *a, const db_check_t *b)
{
	if (!a || !b)
		return a == b ? NULL : "check present on one side only";
	if (a->type != b->type)
		return "check type";
	if (a->port != b->port)
		return "check port";
	if (!str_eq(a->path, b->path) || !str_eq(a->host, b->host))
		return "check path or host";
	if (!str_eq(a->expect, b->expect) || !str_eq(a->match, b->match))
		return "check expect or match";
	if (a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms)
		return "check interval or timeout";
	if (a->rise != b->rise || a->fall != b->fall)
		return "check rise or fall";
	if (!str_eq(a->target, b->target) || a->insecure != b->insecure)
		return "check target or insecure";
	if (a->quorum != b->quorum)
		return "check quorum";
	return NULL;
}

static const char *member_diff(const db_member_t *a, const db_member_t *b)
{
	if (!str_eq(a->name, b->name))
		return "member name";
	if (a->weight != b->weight || a->priority != b->priority || a->admin != b->admin)
		return "member weight, priority or admin";
	if (a->has_location != b->has_location || a->latitude != b->latitude ||
	    a->longitude != b->longitude)
		return "member location";
	if (!str_eq(a->countries, b->countries) || !str_eq(a->continents, b->continents))
		return "member countries or continents";
	if (!str_eq(a->alias, b->alias))
		return "member alias";
	if (a->naddresses != b->naddresses)
		return "member address count";
	for (size_t i = 0; i < a->naddresses; i++)
		if (!str_eq(a->addresses[i], b->addresses[i]) || a->families[i] != b->families[i])
			return "member address";
	if (a->nnetworks != b->nnetworks)
		return "member network count";
	for (size_t i = 0; i < a->nnetworks; i++)
		if (!str_eq(a->networks[i], b->networks[i]))
			return "member network";
	return check_diff(a->check, b->check);
}

static const char *pool_diff(const db_pool_t *a, const db_pool_t *b)
{
	const char *d;
	if (!str_eq(a->name, b->name))
		return "pool name";
	if (a->policy != b->policy || a->ttl != b->ttl || a->degraded_ttl != b->degraded_ttl)
		return "pool policy, ttl or degraded ttl";
	if (a->answers != b->answers || a->fallback_all != b->fallback_all)
		return "pool answers or fallback";
	if ((d = check_diff(a->check, b->check)))
		return d;
	if (a->nmembers != b->nmembers)
		return "member count";
	for (size_t i = 0; i < a->nmembers; i++)
		if ((d = member_diff(&a->members[i], &b->members[i])))
			return d;
	return NULL;
}

static void test_round_trip(uint64_t seed)
{
	int bad_trip = 0, bad_bytes = 0, bad_form = 0;
	unsigned quorums = 0;

	for (unsigned round = 0; round < ROUNDS; round++) {
		db_pool_t p, q, again;
		char why[CFG_ERR_MAX] = "";
		size_t len, len2;
		const char *d;

		rng_state = seed + round * 0x9e3779b97f4a7c15ULL;
		random_pool(&p, round);
		/* The same pool built a second time, apart from the first. */
		rng_state = seed + round * 0x9e3779b97f4a7c15ULL;
		random_pool(&again, round);
		if (p.check && p.check->quorum)
			quorums++;

		char *text = cfg_pool_to_json(&p, &len);
		char *text2 = cfg_pool_to_json(&again, &len2);
		if (len != strlen(text) || strchr(text, '\n') || strstr(text, "\": ") ||
		    strstr(text, ", \"")) {
			if (!bad_form++)
				diag("round %u: not compact text: %s", round, text);
		}
		if (len != len2 || memcmp(text, text2, len) != 0) {
			if (!bad_bytes++)
				diag("round %u: one pool, two texts:\n%s\n%s", round, text, text2);
		}
		int ret = cfg_pool_from_json(text, len, &q, why, sizeof(why));
		if (ret) {
			if (!bad_trip++)
				diag("round %u: %s refused (%d): %s", round, text, ret, why);
		} else if ((d = pool_diff(&p, &q))) {
			if (!bad_trip++)
				diag("round %u: %s read back with another %s", round, text, d);
		} else {
			/* What was read back writes the same bytes. */
			char *text3 = cfg_pool_to_json(&q, &len2);
			if (len != len2 || memcmp(text, text3, len) != 0) {
				if (!bad_bytes++)
					diag("round %u: read back, written again:\n%s\n%s", round,
					     text, text3);
			}
			free(text3);
		}
		free(text);
		free(text2);
		cfg_pool_clear(&p);
		cfg_pool_clear(&again);
		cfg_pool_clear(&q);
	}
	is_int(bad_trip, 0, "%d random pools read back from their JSON as themselves", ROUNDS);
	is_int(bad_bytes, 0, "the same pool is always the same bytes");
	is_int(bad_form, 0, "the text is compact: no newline, no space after ':' or ','");
	ok(quorums > 0, "the random pools had checks with quorums other than majority (%u)",
	   quorums);
}

/* The object export writes, pretty-printed, reads as the compact one does. */
static void test_export_form(void)
{
	static const char text[] =
		"{\n  \"name\": \"WWW.Example.COM\",\n  \"policy\": \"failover\",\n"
		"  \"members\": [\n    {\"name\": \"b\", \"addresses\": "
		"[\"2001:DB8:0::1\", \"192.0.2.1\"]},\n    {\"name\": \"a\", "
		"\"addresses\": [\"192.0.2.9\"], \"countries\": [\"de\", \"DE\", "
		"\"fr\"]}\n  ]\n}\n";
	char why[CFG_ERR_MAX] = "";
	db_pool_t p;
	size_t len;

	int ret = cfg_pool_from_json(text, sizeof(text) - 1, &p, why, sizeof(why));
	if (!is_int(ret, 0, "a pool as export writes it is read")) {
		diag("  %s", why);
		return;
	}
	char *out = cfg_pool_to_json(&p, &len);
	ok(strcmp(out, "{\"name\":\"www.example.com.\",\"policy\":\"failover\",\"ttl\":30,"
		       "\"answers\":1,\"fallback\":\"all\",\"members\":[{\"name\":\"a\","
		       "\"addresses\":[\"192.0.2.9\"],\"weight\":100,\"priority\":1,\"admin\":"
		       "\"auto\",\"countries\":[\"DE\",\"FR\"]},{\"name\":\"b\",\"addresses\":"
		       "[\"192.0.2.1\",\"2001:db8::1\"],\"weight\":100,\"priority\":1,\"admin\":"
		       "\"auto\"}]}") == 0,
	   "defaults filled in, names and addresses canonical, members and addresses sorted");
	free(out);
	cfg_pool_clear(&p);
	ok(!p.name && !p.members && !p.nmembers, "cfg_pool_clear() leaves the pool zeroed");

	/* Alias members: the host name canonical, with addresses or without (then "[]"). */
	static const char alias[] =
		"{\"name\": \"apex.example.com.\", \"members\": [{\"name\": \"eu\", \"alias\": "
		"\"My-LB.eu-west-1.ELB.amazonaws.com\"}, {\"name\": \"us\", \"addresses\": "
		"[\"192.0.2.1\"], \"alias\": \"us.example.net.\"}]}";
	ret = cfg_pool_from_json(alias, sizeof(alias) - 1, &p, why, sizeof(why));
	if (!is_int(ret, 0, "a pool with alias members is read")) {
		diag("  %s", why);
		return;
	}
	out = cfg_pool_to_json(&p, &len);
	ok(strcmp(out, "{\"name\":\"apex.example.com.\",\"policy\":\"weighted\",\"ttl\":30,"
		       "\"answers\":1,\"fallback\":\"all\",\"members\":[{\"name\":\"eu\","
		       "\"addresses\":[],\"alias\":\"my-lb.eu-west-1.elb.amazonaws.com.\","
		       "\"weight\":100,\"priority\":1,\"admin\":\"auto\"},{\"name\":\"us\","
		       "\"addresses\":[\"192.0.2.1\"],\"alias\":\"us.example.net.\",\"weight\":100,"
		       "\"priority\":1,\"admin\":\"auto\"}]}") == 0,
	   "the alias lowercased with its trailing dot, after the addresses (none: [])");
	if (!ok(p.nmembers == 2 && p.members[0].naddresses == 0, "an alias alone: no address"))
		diag("  %s", out);
	free(out);
	cfg_pool_clear(&p);
}

static void test_invalid(void)
{
	static const struct {
		const char *json;
		int ret;
		const char *why;
	} cases[] = {
		{ "{\"name\":\"a.example.\",\"members\":[{\"name\":\"a\",\"addresses\":[\"192.0.2."
		  "1\"]},"
		  "{\"name\":\"b\",\"addresses\":[\"192.0.2.2\"],\"weight\":70000}]}",
		  GSLB_ECONFIG, "members[1].weight: 70000 is not in 0-65535" },
		{ "[1]", GSLB_ECONFIG, "is an array, not an object" },
		{ "{}", GSLB_ECONFIG, "name: missing" },
		{ "{\"name\":\"x.\",\"ttl\":\"30\"}", GSLB_ECONFIG,
		  "ttl: is a string, not a number" },
		{ "{\"name\":\"x.\",\"ttl\":30.0}", GSLB_ECONFIG,
		  "ttl: 30.0 is not a whole number" },
		{ "{\"name\":\"x.\",\"bogus\":1}", GSLB_ECONFIG, "bogus: unknown key" },
		{ "{\"name\":\"x..y\"}", GSLB_ECONFIG, "name: x..y has an empty label" },
		{ "{\"name\":\"x.\",\"check\":{\"type\":\"tcp\"}}", GSLB_ECONFIG,
		  "check.port: required for type tcp" },
		{ "{\"name\":\"x.\",\"check\":{\"type\":\"http\",\"target\":\"192.0.2.1\"}}",
		  GSLB_ECONFIG, "check.target: only for a member's check" },
		{ "{\"name\":\"x.\",\"check\":{\"type\":\"http\",\"interval\":2,\"timeout\":2}}",
		  GSLB_ECONFIG, "check.timeout: is not less than the interval" },
		{ "{\"name\":\"x.\",\"check\":{\"type\":\"http\",\"quorum\":\"most\"}}",
		  GSLB_ECONFIG, "check.quorum: most is not majority, any, all or local" },
		{ "{\"name\":\"x.\",\"check\":{\"type\":\"http\",\"quorum\":1}}", GSLB_ECONFIG,
		  "check.quorum: is a number, not a string" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"addresses\":[\"192.0.2.1\"],"
		  "\"check\":{\"type\":\"https\",\"quorum\":\"every\"}}]}",
		  GSLB_ECONFIG,
		  "members[0].check.quorum: every is not majority, any, all or local" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"addresses\":[\"192.0.2.1\"]},"
		  "{\"name\":\"a\",\"addresses\":[\"192.0.2.2\"]}]}",
		  GSLB_ECONFIG, "members[1].name: member a appears twice" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"addresses\":[\"::ffff:192.0.2."
		  "1\"]}]}",
		  GSLB_ECONFIG,
		  "members[0].addresses[0]: ::ffff:192.0.2.1 is an IPv4-mapped IPv6 address (give "
		  "192.0.2.1)" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"alias\":\"192.0.2.1\"}]}",
		  GSLB_ECONFIG, "members[0].alias: 192.0.2.1 is an IP address, not a host name" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"alias\":\"2001:db8::1\"}]}",
		  GSLB_ECONFIG, "members[0].alias: 2001:db8::1 is an IP address, not a host name" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"alias\":\"lb!.example.\"}]}",
		  GSLB_ECONFIG,
		  "members[0].alias: lb!.example.: '!' is not allowed in a host name" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"alias\":\".\"}]}", GSLB_ECONFIG,
		  "members[0].alias: the root is not a host name" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"alias\":7}]}", GSLB_ECONFIG,
		  "members[0].alias: is a number, not a string" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\"}]}", GSLB_ECONFIG,
		  "members[0].addresses: missing" },
		{ "{\"name\":\"x.\",\"members\":[{\"name\":\"a\",\"addresses\":[]}]}", GSLB_ECONFIG,
		  "members[0].addresses: at least one address is required (or an alias)" },
		{ "{\"name\":\"x.\",\"name\":\"y.\"}", GSLB_EPARSE,
		  "line 1 column 14: duplicate key \"name\"" },
		{ "{\"name\":", GSLB_EPARSE,
		  "line 1 column 8: name: unexpected token near end of file" },
		{ "", GSLB_EPARSE, "empty, expected a JSON object" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char why[CFG_ERR_MAX] = "";
		db_pool_t p;
		memset(&p, 0xa5, sizeof(p)); /* whatever it held is not freed, and is gone */
		int ret = cfg_pool_from_json(cases[i].json, strlen(cases[i].json), &p, why,
					     sizeof(why));
		is_int(ret, cases[i].ret, "%s refused", cases[i].json);
		if (!ok(strcmp(why, cases[i].why) == 0, "  why: %s", cases[i].why))
			diag("  got: %s", why);
		ok(!p.name && !p.members && !p.check, "  nothing left in the pool");
	}

	/* A short buffer gets a cut message, never an overrun. */
	char why[8];
	db_pool_t p;
	cfg_pool_from_json("{}", 2, &p, why, sizeof(why));
	ok(strcmp(why, "name: m") == 0, "why is cut to whylen bytes (%s)", why);
}

int main(void)
{
	const char *env = getenv("GSLB_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 10) : 20261207;

	diag("seed %llu (GSLB_TEST_SEED repeats it)", (unsigned long long)seed);
	test_round_trip(seed);
	test_export_form();
	test_invalid();
	return done_testing();
}
