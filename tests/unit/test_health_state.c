/* SPDX-License-Identifier: MIT */
/* Unit tests of the pure health-check code: rise/fall, target keys, expect lists, status lines. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/health.h"
#include "tap.h"

/* Feed a string of results ('+' success, '-' failure); returns the positions that changed state. */
static unsigned feed(health_state_t *s, const char *seq, char *changes, size_t len)
{
	unsigned n = 0;
	size_t k = 0;
	for (size_t i = 0; seq[i]; i++) {
		if (health_state_feed(s, seq[i] == '+')) {
			n++;
			if (k + 1 < len)
				changes[k++] = s->up ? 'U' : 'D';
		} else if (k + 1 < len) {
			changes[k++] = '.';
		}
	}
	changes[k] = '\0';
	return n;
}

static void test_state(void)
{
	health_state_t s;
	char ch[64];

	health_state_init(&s, true, 2, 3);
	ok(s.up, "a new target starts up when told so");
	feed(&s, "--+--", ch, sizeof(ch));
	ok(s.up && !strcmp(ch, "....."), "a success resets the failure run (%s)", ch);
	feed(&s, "-", ch, sizeof(ch));
	ok(!s.up && !strcmp(ch, "D"), "fall=3 consecutive failures go down on the third");

	feed(&s, "+-+", ch, sizeof(ch));
	ok(!s.up && !strcmp(ch, "..."), "a failure resets the success run while down");
	feed(&s, "+", ch, sizeof(ch));
	ok(s.up && !strcmp(ch, "U"), "rise=2 consecutive successes go up on the second");
	feed(&s, "++++", ch, sizeof(ch));
	ok(s.up && !strcmp(ch, "...."), "successes while up change nothing");

	health_state_init(&s, false, 2, 3);
	ok(!s.up, "a target can start down (stored state)");
	is_int(feed(&s, "---+", ch, sizeof(ch)), 0, "failures while down change nothing");
	is_int(feed(&s, "+", ch, sizeof(ch)), 1, "then rise completes");

	health_state_init(&s, true, 1, 1);
	is_int(feed(&s, "-+-+", ch, sizeof(ch)), 4, "rise=1 fall=1 flips on every result");
	ok(!strcmp(ch, "DUDU"), "in order (%s)", ch);

	health_state_init(&s, true, 0, 0);
	ok(s.rise == 1 && s.fall == 1, "rise and fall of 0 count as 1");

	health_state_init(&s, true, 2, 5);
	feed(&s, "--", ch, sizeof(ch));
	health_state_set_limits(&s, 2, 3);
	ok(s.up && s.fail_run == 2, "a reload keeps the state and the current run");
	feed(&s, "-", ch, sizeof(ch));
	ok(!s.up, "and the new fall applies to the run in progress");

	/* Exactly fall results, whatever the history: the timing the issue measures. */
	for (unsigned fall = 1; fall <= 5; fall++) {
		health_state_init(&s, true, 2, fall);
		unsigned at = 0;
		for (unsigned i = 1; i <= 10 && !at; i++)
			if (health_state_feed(&s, false))
				at = i;
		is_int(at, fall, "fall=%u: down after exactly %u failures", fall, fall);
	}
}

static void set_v4(health_check_conf_t *c, const char *a, unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addr;
	memset(&c->addr, 0, sizeof(c->addr));
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, a, &s4->sin_addr);
}

static void test_keys(void)
{
	health_check_conf_t c, d;
	char k1[HEALTH_KEY_MAX], k2[HEALTH_KEY_MAX];

	memset(&c, 0, sizeof(c));
	c.type = HEALTH_TCP;
	set_v4(&c, "192.0.2.1", 25);
	ok(!strcmp(health_target_key(&c, k1, sizeof(k1)), "tcp 192.0.2.1:25"), "tcp key (%s)", k1);

	c.type = HEALTH_HTTP;
	set_v4(&c, "192.0.2.1", 80);
	c.host = "www.example.com";
	c.path = "/health";
	ok(!strcmp(health_target_key(&c, k1, sizeof(k1)),
		   "http 192.0.2.1:80 www.example.com/health"),
	   "http key (%s)", k1);

	d = c;
	d.interval_ms = 5000;
	d.fall = 7;
	d.match = "ok";
	ok(!strcmp(health_target_key(&d, k2, sizeof(k2)), k1),
	   "timing and match do not change the probe, so not the key");
	d.host = "other.example.com";
	ok(strcmp(health_target_key(&d, k2, sizeof(k2)), k1) != 0, "the Host header does");
	d = c;
	d.type = HEALTH_HTTPS;
	ok(strcmp(health_target_key(&d, k2, sizeof(k2)), k1) != 0, "the type does");
	d = c;
	set_v4(&d, "192.0.2.1", 8080);
	ok(strcmp(health_target_key(&d, k2, sizeof(k2)), k1) != 0, "the port does");

	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c.addr;
	memset(&c.addr, 0, sizeof(c.addr));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
	c.type = HEALTH_HTTPS;
	c.path = NULL;
	ok(!strcmp(health_target_key(&c, k1, sizeof(k1)),
		   "https [2001:db8::1]:443 www.example.com/"),
	   "IPv6 key with the default path (%s)", k1);
	c.host = NULL;
	ok(!strcmp(health_target_key(&c, k1, sizeof(k1)), "https [2001:db8::1]:443 2001:db8::1/"),
	   "no host: the address names the request (%s)", k1);
	health_target_key(&c, k1, 8);
	is_int((long long)strlen(k1), 7, "a short buffer truncates");
}

static void test_expect(void)
{
	health_check_conf_t c;

	memset(&c, 0, sizeof(c));
	ok(health_expect_match(&c, 200) && health_expect_match(&c, 301) &&
		   health_expect_match(&c, 399),
	   "default expect accepts 200-399");
	ok(!health_expect_match(&c, 404) && !health_expect_match(&c, 503) &&
		   !health_expect_match(&c, 199),
	   "default expect rejects 4xx, 5xx and 1xx");
	is_int(health_expect_parse(&c, "200-299,301"), 0, "parse 200-299,301");
	is_int(c.nexpect, 2, "two ranges");
	ok(health_expect_match(&c, 204) && health_expect_match(&c, 301) &&
		   !health_expect_match(&c, 302),
	   "ranges and single codes");
	is_int(health_expect_parse(&c, "503"), 0, "parse 503");
	ok(health_expect_match(&c, 503) && !health_expect_match(&c, 200), "only 503");
	is_int(health_expect_parse(&c, "200-"), GSLB_EPARSE, "open range is an error");
	is_int(health_expect_parse(&c, "99"), GSLB_EPARSE, "below 100 is an error");
	is_int(health_expect_parse(&c, "300-200"), GSLB_EPARSE, "reversed range is an error");
	is_int(health_expect_parse(&c, "200,,201"), GSLB_EPARSE, "empty item is an error");
	is_int(health_expect_parse(&c, ""), GSLB_EPARSE, "empty list is an error");
	is_int(c.nexpect, 1, "a failed parse changes nothing");
	is_int(health_expect_parse(&c, "000000000000200"), 0, "an item of 15 characters");
	is_int(health_expect_parse(&c, "0000000000000200"), GSLB_EPARSE,
	       "an item of 16 characters is an error");
}

/* health_expect_check(): the first fault from the left, as gslbctl names it. */
static const struct {
	const char *list;
	int fault;
	int at, len;	 /* HEALTH_EXPECT_CODE: where the code is */
	unsigned lo, hi; /* HEALTH_EXPECT_REVERSED */
} expect_faults[] = {
	{ "200", 0, 0, 0, 0, 0 },
	{ "200-299,301", 0, 0, 0, 0, 0 },
	{ "200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215", 0, 0, 0, 0, 0 },
	{ "", HEALTH_EXPECT_EMPTY, 0, 0, 0, 0 },
	{ "200,,301", HEALTH_EXPECT_ITEM, 0, 0, 0, 0 },
	{ ",200", HEALTH_EXPECT_ITEM, 0, 0, 0, 0 },
	{ "0000000000000200", HEALTH_EXPECT_ITEM, 0, 0, 0, 0 },
	{ "2a0", HEALTH_EXPECT_CODE, 0, 3, 0, 0 },
	{ "99", HEALTH_EXPECT_CODE, 0, 2, 0, 0 },
	{ "200-600", HEALTH_EXPECT_CODE, 4, 3, 0, 0 },
	{ "200-", HEALTH_EXPECT_CODE, 4, 0, 0, 0 },
	{ "-200", HEALTH_EXPECT_CODE, 0, 0, 0, 0 },
	{ "200-300-400", HEALTH_EXPECT_CODE, 4, 7, 0, 0 },
	{ "201,2 0", HEALTH_EXPECT_CODE, 4, 3, 0, 0 },
	{ "200,99999999999", HEALTH_EXPECT_CODE, 4, 11, 0, 0 },
	{ "300-200", HEALTH_EXPECT_REVERSED, 0, 0, 300, 200 },
	{ "200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215,216",
	  HEALTH_EXPECT_TOO_MANY, 0, 0, 0, 0 },
	{ "200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215,99", HEALTH_EXPECT_CODE,
	  64, 2, 0, 0 },
	{ "200,", HEALTH_EXPECT_TRAILING, 0, 0, 0, 0 },
};

static void test_expect_check(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(expect_faults); i++) {
		health_expect_error_t e = { 0 };
		health_check_conf_t c = { 0 };
		const char *s = expect_faults[i].list;
		int ret = health_expect_check(s, &e);
		bool same = expect_faults[i].fault
				    ? ret == GSLB_EPARSE && e.fault == expect_faults[i].fault
				    : ret == 0;
		if (same && e.fault == HEALTH_EXPECT_CODE)
			same = e.at == s + expect_faults[i].at &&
			       e.len == (size_t)expect_faults[i].len;
		if (same && e.fault == HEALTH_EXPECT_REVERSED)
			same = e.lo == expect_faults[i].lo && e.hi == expect_faults[i].hi;
		ok(same, "check \"%s\": fault %d (got %d, at %d, len %zu)", s,
		   expect_faults[i].fault, ret ? e.fault : 0, e.at ? (int)(e.at - s) : -1, e.len);
		is_int(health_expect_parse(&c, s), ret, "parse \"%s\" agrees", s);
	}
}

static int status(const char *s)
{
	return health_http_status_parse(s, strlen(s));
}

static void test_status(void)
{
	is_int(status("HTTP/1.1 200 OK"), 200, "HTTP/1.1 200 OK");
	is_int(status("HTTP/1.0 503 Service Unavailable"), 503, "HTTP/1.0 503");
	is_int(status("HTTP/1.1 204"), 204, "no reason phrase");
	is_int(status("HTTP/1.1 404 "), 404, "empty reason phrase");
	is_int(status("HTTP/2 200 OK"), -1, "not HTTP/1.x");
	is_int(status("HTTP/1.1 20 OK"), -1, "two digits");
	is_int(status("HTTP/1.1 2000 OK"), -1, "four digits");
	is_int(status("HTTP/1.1 099 x"), -1, "below 100");
	is_int(status("SSH-2.0-OpenSSH"), -1, "not HTTP at all");
	is_int(status(""), -1, "empty");
}

int main(void)
{
	test_state();
	test_keys();
	test_expect();
	test_expect_check();
	test_status();
	return done_testing();
}
