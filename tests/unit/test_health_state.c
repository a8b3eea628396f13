/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the pure health-check code: rise/fall, target keys, expect lists, status lines,
 * and the probes' HTTP response parser (src/health/probe.c, linked without the loop).
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/health.h"
#include "../probe_stubs.h"
#include "tap.h"
#include "../../src/health/internal.h"

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
	ok(!strcmp(health_probe_key(&d, k2, sizeof(k2)), k1),
	   "timing and match do not change the probe key (%s)", k2);
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

/* Checks that share one request but not their settings are distinct targets (issue 13). */
static void test_keys_settings(void)
{
	health_check_conf_t c, d;
	char k1[HEALTH_KEY_MAX], k2[HEALTH_KEY_MAX], p[HEALTH_KEY_MAX];
	const char *base = "https 192.0.2.1:443 www.example.com/health";

	memset(&c, 0, sizeof(c));
	c.type = HEALTH_HTTPS;
	set_v4(&c, "192.0.2.1", 443);
	c.host = "www.example.com";
	c.path = "/health";
	ok(!strcmp(health_target_key(&c, k1, sizeof(k1)), base),
	   "every setting unset: the key of the request alone, as stored before (%s)", k1);
	c.interval_ms = 10000;
	c.timeout_ms = 2000;
	c.rise = 2;
	c.fall = 3;
	c.match = "";
	health_expect_parse(&c, "200-399");
	ok(!strcmp(health_target_key(&c, k1, sizeof(k1)), base),
	   "every setting at its default, given: the same key (%s)", k1);

	/* Each setting that decides the verdict or its timing makes a key of its own. */
	static const char *const what[] = { "insecure", "expect", "match", "interval",
					    "timeout",	"rise",	  "fall" };
	for (size_t i = 0; i < ARRAY_SIZE(what); i++) {
		d = c;
		switch (i) {
		case 0:
			d.insecure = true;
			break;
		case 1:
			health_expect_parse(&d, "200");
			break;
		case 2:
			d.match = "ok";
			break;
		case 3:
			d.interval_ms = 5000;
			break;
		case 4:
			d.timeout_ms = 1000;
			break;
		case 5:
			d.rise = 1;
			break;
		default:
			d.fall = 5;
			break;
		}
		health_target_key(&d, k2, sizeof(k2));
		ok(strcmp(k2, k1) != 0 && !strncmp(k2, base, strlen(base)) &&
			   !strcmp(health_probe_key(&d, p, sizeof(p)), base),
		   "%s: another target key, the same probe key (%s)", what[i], k2);
	}

	d = c;
	d.insecure = true;
	health_expect_parse(&d, "200,301-302");
	d.interval_ms = 5000;
	d.timeout_ms = 500;
	d.rise = 1;
	d.fall = 5;
	d.match = "a \"b\"\\\tc";
	ok(!strcmp(health_target_key(&d, k2, sizeof(k2)),
		   "https 192.0.2.1:443 www.example.com/health insecure expect 200,301-302 "
		   "interval 5s "
		   "timeout 0.5s rise 1 fall 5 match \"a \\\"b\\\"\\\\\\tc\""),
	   "every setting, in gslbctl's words, match last and quoted (%s)", k2);
	d.interval_ms = 1250;
	d.timeout_ms = 5000;
	health_target_key(&d, k2, sizeof(k2));
	ok(strstr(k2, " interval 1.25s timeout 1.249s ") != NULL,
	   "a timeout beyond the interval is named as it runs, cut to below it (%s)", k2);

	/* Equal verdicts, equal keys: the dedup of identical checks. */
	d = c;
	health_expect_parse(&d, "200,201-202,203");
	health_target_key(&d, k1, sizeof(k1));
	health_expect_parse(&d, "200-203");
	ok(!strcmp(health_target_key(&d, k2, sizeof(k2)), k1) &&
		   strstr(k1, " expect 200-203") != NULL,
	   "expect lists that accept the same codes give the same key (%s)", k1);
	d = c;
	d.type = HEALTH_HTTP;
	set_v4(&d, "192.0.2.1", 80);
	health_target_key(&d, k1, sizeof(k1));
	d.insecure = true;
	ok(!strcmp(health_target_key(&d, k2, sizeof(k2)), k1),
	   "insecure means nothing to http: the same key (%s)", k2);
	d.type = HEALTH_TCP;
	set_v4(&d, "192.0.2.1", 25);
	d.match = "ok";
	d.fall = 1;
	health_expect_parse(&d, "200");
	ok(!strcmp(health_target_key(&d, k2, sizeof(k2)), "tcp 192.0.2.1:25 fall 1"),
	   "tcp: only the timing counts (%s)", k2);

	/* The longest match gslbctl takes, all tabs, still fits whole. */
	char m[1025];
	memset(m, '\t', 1024);
	m[1024] = '\0';
	char path[513];
	memset(path, 'p', 512);
	path[0] = '/';
	path[512] = '\0';
	d = c;
	d.path = path;
	d.match = m;
	health_target_key(&d, k2, sizeof(k2));
	size_t n = strlen(k2);
	ok(n + 1 < sizeof(k2) && k2[n - 1] == '"' && k2[n - 2] == 't',
	   "a 512-byte path and 1024-byte match fit in HEALTH_KEY_MAX (%zu bytes)", n);
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

/* The probe's loop is replaced by tests/probe_stubs.c: the parser reports its verdict there. */

/*
 * The verdict of an http check with match (NULL: none) on response, given
 * whole (piece 0) or piece bytes at a time, then the end of the connection.
 * Returns 1 success, 0 failure (reason in probe_stub_reason), -1 when the parser
 * reported other than once.
 */
static int verdict(const char *match, const char *response, size_t piece)
{
	health_target_t t;
	size_t len = strlen(response);

	memset(&t, 0, sizeof(t));
	t.check.type = HEALTH_HTTP;
	t.check.match = match;
	t.probing = true;
	t.content_length = -1;
	probe_stub_reports = 0;
	probe_stub_reason[0] = '\0';
	for (size_t i = 0; i < len && t.probing; i += piece ? piece : len) {
		size_t n = piece && piece < len - i ? piece : len - i;
		health_http_input(&t, response + i, n);
	}
	if (t.probing)
		health_http_eof(&t);
	free(t.buf);
	return probe_stub_reports == 1 ? probe_stub_ok : -1;
}

/* The same verdict whole and byte by byte; the reason of the whole one stays in probe_stub_reason. */
static int verdict_all(const char *match, const char *response)
{
	int one = verdict(match, response, 1);
	char reason[sizeof(probe_stub_reason)];
	snprintf(reason, sizeof(reason), "%s", probe_stub_reason);
	int whole = verdict(match, response, 0);
	if (one != whole || strcmp(reason, probe_stub_reason) != 0) {
		diag("  byte by byte: %d (%s); whole: %d (%s)", one, reason, whole,
		     probe_stub_reason);
		return -2;
	}
	return whole;
}

#define OK200 "HTTP/1.1 200 OK\r\n"

static void test_content_length(void)
{
	static const struct {
		const char *headers; /* between the status line and the empty line */
		bool valid;
		const char *what;
	} cases[] = {
		{ "Content-Length: 2\r\n", true, "a plain length" },
		{ "content-length:   2  \r\n", true, "any case, spaces around the value" },
		{ "Content-Length: 002\r\n", true, "leading zeros (1*DIGIT)" },
		{ "Content-Length: 2\r\nContent-Length: 2\r\n", true, "the same length twice" },
		{ "Content-Length: 2, 2\r\n", true, "a list of one length repeated" },
		{ "Content-Length: -5\r\n", false, "-5" },
		{ "Content-Length: 100000000000000000000000\r\n", false, "10^23 (overflow)" },
		{ "Content-Length: 9223372036854775808\r\n", false, "2^63 (overflow)" },
		{ "Content-Length: +5\r\n", false, "+5 (a sign)" },
		{ "Content-Length: 5x\r\n", false, "5x" },
		{ "Content-Length: 0x2\r\n", false, "0x2 (hexadecimal)" },
		{ "Content-Length: 2 2\r\n", false, "two numbers without a comma" },
		{ "Content-Length:\r\n", false, "an empty value" },
		{ "Content-Length:   \r\n", false, "a value of spaces" },
		{ "Content-Length: 2\r\nContent-Length: 3\r\n", false,
		  "two fields that disagree (RFC 9110 8.6)" },
		{ "Content-Length: 2, 3\r\n", false, "a list that disagrees" },
		{ "Content-Length: 2,\r\n", false, "a list with an empty element" },
		{ "X-Content-Length: -5\r\nContent-Length: 2\r\n", true,
		  "another field whose name ends in Content-Length" },
	};
	char resp[512];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(resp, sizeof(resp), OK200 "%s\r\nok", cases[i].headers);
		for (int m = 0; m < 2; m++) {
			const char *match = m ? "ok" : NULL;
			int got = verdict_all(match, resp);
			if (cases[i].valid)
				ok(got == 1, "Content-Length %s: a 200 passes%s (%d: %s)",
				   cases[i].what, m ? " and match finds its text" : "", got,
				   probe_stub_reason);
			else
				ok(got == 0 && !strncmp(probe_stub_reason,
							"malformed HTTP response", 23),
				   "Content-Length %s: malformed, the probe fails%s (%d: %s)",
				   cases[i].what, m ? " (with match)" : "", got, probe_stub_reason);
		}
	}

	/* RFC 9112 6.3: Transfer-Encoding overrides Content-Length, whatever it holds. */
	ok(verdict_all("ok", OK200 "Transfer-Encoding: chunked\r\nContent-Length: -5\r\n\r\n"
				   "2\r\nok\r\n0\r\n\r\n") == 1,
	   "chunked with a bad Content-Length: the length is ignored (%s)", probe_stub_reason);
	/* A valid length still ends the body: match fails at the length, not at the close. */
	ok(verdict_all("ok", OK200 "Content-Length: 2\r\n\r\nnook") == 0 &&
		   !strcmp(probe_stub_reason, "body did not contain \"ok\""),
	   "match looks no further than Content-Length (%s)", probe_stub_reason);
	/* The status still decides first among valid responses. */
	ok(verdict_all(NULL, "HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nok") == 0 &&
		   !strcmp(probe_stub_reason, "HTTP 503"),
	   "a 503 with a valid length fails as HTTP 503 (%s)", probe_stub_reason);
}

/* health_cert_expiry_text(): whole days, as gslbd's warning and gslbctl status say them. */
static void test_cert_text(void)
{
	static const struct {
		int64_t left;
		const char *want;
	} cases[] = {
		{ 5 * 86400 + 3600, "expires in 5 days" }, { 86400, "expires in 1 day" },
		{ 86399, "expires in less than a day" },   { 0, "expires in less than a day" },
		{ -1, "expired less than a day ago" },	   { -2 * 86400 - 5, "expired 2 days ago" },
		{ -86400, "expired 1 day ago" },
	};
	char buf[64];
	int64_t now = 1700000000;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		health_cert_expiry_text(now + cases[i].left, now, buf, sizeof(buf));
		ok(strcmp(buf, cases[i].want) == 0, "certificate %+lld s: \"%s\" (%s)",
		   (long long)cases[i].left, cases[i].want, buf);
	}
}

int main(void)
{
	test_state();
	test_keys();
	test_keys_settings();
	test_expect();
	test_expect_check();
	test_status();
	test_content_length();
	test_cert_text();
	return done_testing();
}
