/* SPDX-License-Identifier: MIT */
/*
 * How a health probe judges an HTTP response (README "Health checks"):
 * the status against the expect list at its edges, --match searched in the
 * body only (never the status line or the headers) and only in its first
 * 64 KiB, a body complete at Content-Length without waiting for the close,
 * and Transfer-Encoding: chunked over Content-Length (RFC 9112 6.3).
 *
 * The probe's parser (src/health/probe.c) is compiled in with the four
 * functions of the loop it calls replaced, as tests/fuzz/fuzz_http.c does,
 * and every response is fed whole and then one byte at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "../../src/health/internal.h"
#include "../probe_stubs.h"
#include "tap.h"

/* ---- the loop is replaced by tests/probe_stubs.c ---- */

/* ---- driving one probe ---- */

struct verdict {
	unsigned reports; /* how many times the probe ended: 1, or 0 when still waiting */
	bool ok;
	char reason[512];
};

/*
 * Feed response (len bytes) to a fresh HTTP probe with expect (NULL: the
 * default) and match (NULL: none), in pieces of piece bytes (0: at once);
 * then the close when eof and the probe still waits.
 */
static struct verdict judge(const char *expect, const char *match, const char *resp, size_t len,
			    size_t piece, bool eof)
{
	health_target_t t;
	struct verdict v = { 0 };

	memset(&t, 0, sizeof(t));
	t.check.type = HEALTH_HTTP;
	t.check.match = match;
	if (expect && health_expect_parse(&t.check, expect) != 0)
		bail_out("expect list %s does not parse", expect);
	t.probing = true;
	t.content_length = -1;
	probe_stub_reports = 0;
	for (size_t off = 0; off < len && t.probing;) {
		size_t n = piece && len - off > piece ? piece : len - off;
		health_http_input(&t, resp + off, n);
		off += n;
	}
	if (eof && t.probing)
		health_http_eof(&t);
	v.reports = probe_stub_reports;
	v.ok = probe_stub_ok;
	snprintf(v.reason, sizeof(v.reason), "%s", probe_stub_reports ? probe_stub_reason : "");
	if (t.probing) {
		/* Still waiting: end it as the timeout would, to free its buffer. */
		free(t.buf);
	}
	return v;
}

/* One check point: the same verdict whole and byte by byte. */
static void expect_verdict(const char *desc, const char *expect, const char *match,
			   const char *resp, size_t len, bool eof, unsigned want_reports,
			   bool want_ok, const char *want_reason)
{
	static const size_t pieces[] = { 0, 1 };
	for (size_t i = 0; i < ARRAY_SIZE(pieces); i++) {
		struct verdict v = judge(expect, match, resp, len, pieces[i], eof);
		bool good = v.reports == want_reports &&
			    (want_reports == 0 ||
			     (v.ok == want_ok && !strcmp(v.reason, want_reason)));
		if (!ok(good, "%s (%s)", desc, pieces[i] ? "byte by byte" : "at once"))
			diag("  got %u report(s), %s \"%s\"; want %u, %s \"%s\"", v.reports,
			     v.ok ? "ok" : "fail", v.reason, want_reports, want_ok ? "ok" : "fail",
			     want_reason);
	}
}

static void expect_str(const char *desc, const char *expect, const char *match, const char *resp,
		       bool eof, unsigned want_reports, bool want_ok, const char *want_reason)
{
	expect_verdict(desc, expect, match, resp, strlen(resp), eof, want_reports, want_ok,
		       want_reason);
}

/* What Python's http.server (tests/backend.py) sends for a 200 with body "ok\n". */
#define BACKEND_OK                                                            \
	"HTTP/1.1 200 OK\r\nServer: gslb-test-backend Python/3.11\r\n"        \
	"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/plain\r\n" \
	"Content-Length: 3\r\nConnection: close\r\n\r\nok\n"

static void test_match_body_only(void)
{
	/* A match found in the status line or a header would pass a broken backend. */
	expect_str("match OK: only in the status line, so the body does not contain it", NULL, "OK",
		   BACKEND_OK, true, 1, false, "body did not contain \"OK\"");
	expect_str("match 200: only the status code", NULL, "200", BACKEND_OK, true, 1, false,
		   "body did not contain \"200\"");
	expect_str("match HTTP/1.1: only the status line", NULL, "HTTP/1.1", BACKEND_OK, true, 1,
		   false, "body did not contain \"HTTP/1.1\"");
	expect_str("match gslb-test-backend: only a header value", NULL, "gslb-test-backend",
		   BACKEND_OK, true, 1, false, "body did not contain \"gslb-test-backend\"");
	expect_str("match Content-Type: only a header name", NULL, "Content-Type", BACKEND_OK, true,
		   1, false, "body did not contain \"Content-Type\"");
	expect_str("match close: a header value at the end of the headers", NULL, "close",
		   BACKEND_OK, true, 1, false, "body did not contain \"close\"");
	expect_str("match ok: in the body", NULL, "ok", BACKEND_OK, true, 1, true, "HTTP 200");
	expect_str("match ok\\n: the whole body", NULL, "ok\n", BACKEND_OK, true, 1, true,
		   "HTTP 200");
	/* A header line that repeats the match text does not help a body that lacks it. */
	expect_str("match all good: in a header, the body says otherwise", NULL, "all good",
		   "HTTP/1.1 200 OK\r\nX-Status: all good\r\nContent-Length: 8\r\n\r\nbad news",
		   false, 1, false, "body did not contain \"all good\"");
	/* Chunked: the chunk framing is not body either. */
	expect_str("match in a chunk extension: not body", NULL, "token",
		   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		   "2;token\r\nok\r\n0\r\n\r\n",
		   true, 1, false, "body did not contain \"token\"");
	expect_str("no match: decided at the headers, body unread", NULL, NULL,
		   "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, 1, true, "HTTP 200");
}

static void test_body_end(void)
{
	/* Complete at Content-Length: a keep-alive server would never close. */
	expect_str("body of exactly Content-Length bytes: judged without waiting for the close",
		   NULL, "ok", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nnothing here", false,
		   1, false, "body did not contain \"ok\"");
	expect_str("Content-Length 0: judged at once", NULL, "ok",
		   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 1, false,
		   "body did not contain \"ok\"");
	expect_str("body shorter than Content-Length: still waiting", NULL, "ok",
		   "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nnothing here", false, 0, false,
		   "");
	expect_str("then the close: judged", NULL, "ok",
		   "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nnothing here", true, 1, false,
		   "body did not contain \"ok\"");
	/* RFC 9112 6.3: chunked wins; the match spans the two chunks, framing between. */
	expect_str("chunked and Content-Length: chunked decoding wins (RFC 9112 6.3)", NULL,
		   "all good",
		   "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
		   "4\r\nall \r\n4\r\ngood\r\n0\r\n\r\n",
		   true, 1, true, "HTTP 200");
	expect_str("Content-Length before chunked in the other order too", NULL, "all good",
		   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
		   "4\r\nall \r\n4\r\ngood\r\n0\r\n\r\n",
		   true, 1, true, "HTTP 200");
}

/* A 200 response whose body is size bytes of 'x' with needle at offset at. */
static char *big_response(size_t size, const char *needle, size_t at, size_t *len)
{
	char head[128];
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
			  size);
	char *r = malloc((size_t)hl + size);
	if (!r)
		bail_out("out of memory");
	memcpy(r, head, (size_t)hl);
	memset(r + hl, 'x', size);
	memcpy(r + hl + at, needle, strlen(needle));
	*len = (size_t)hl + size;
	return r;
}

static void test_first_64k(void)
{
	const char *needle = "NEEDLE";
	size_t n = strlen(needle), len;
	char *r;

	r = big_response(HEALTH_BODY_MAX + 100, needle, 0, &len);
	expect_verdict("match at the start of a body over 64 KiB", NULL, needle, r, len, true, 1,
		       true, "HTTP 200");
	free(r);
	r = big_response(HEALTH_BODY_MAX + 100, needle, HEALTH_BODY_MAX - n, &len);
	expect_verdict("match ending at byte 65536 of the body: found", NULL, needle, r, len, true,
		       1, true, "HTTP 200");
	free(r);
	r = big_response(HEALTH_BODY_MAX + 100, needle, HEALTH_BODY_MAX - n + 1, &len);
	expect_verdict("match ending at byte 65537: beyond the first 64 KiB, not found", NULL,
		       needle, r, len, true, 1, false, "body did not contain \"NEEDLE\"");
	free(r);
	r = big_response(HEALTH_BODY_MAX + 100, needle, HEALTH_BODY_MAX + 10, &len);
	expect_verdict("match after the first 64 KiB: not found", NULL, needle, r, len, true, 1,
		       false, "body did not contain \"NEEDLE\"");
	free(r);
}

static void test_status_edges(void)
{
	char resp[128];
	/* The default list is 200-399 (README "Health checks"). */
	static const struct {
		unsigned status;
		bool ok;
	} dflt[] = { { 100, false }, { 199, false }, { 200, true },  { 204, true },
		     { 399, true },  { 400, false }, { 404, false }, { 599, false } };
	for (size_t i = 0; i < ARRAY_SIZE(dflt); i++) {
		char want[32];
		snprintf(resp, sizeof(resp), "HTTP/1.1 %u X\r\nContent-Length: 0\r\n\r\n",
			 dflt[i].status);
		snprintf(want, sizeof(want), "HTTP %u", dflt[i].status);
		char desc[80];
		snprintf(desc, sizeof(desc), "default expect: %u %s", dflt[i].status,
			 dflt[i].ok ? "passes" : "fails");
		expect_str(desc, NULL, NULL, resp, true, 1, dflt[i].ok, want);
	}
	expect_str("expect 100-599: 599 passes", "100-599", NULL,
		   "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", true, 1, true, "HTTP 599");
	expect_str("expect 100-599: 100 passes", "100-599", NULL,
		   "HTTP/1.1 100 X\r\nContent-Length: 0\r\n\r\n", true, 1, true, "HTTP 100");
	expect_str("status 600: not an HTTP status", "100-599", NULL,
		   "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", true, 1, false,
		   "malformed HTTP response");
	expect_str("status 099: not an HTTP status", "100-599", NULL,
		   "HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n", true, 1, false,
		   "malformed HTTP response");
	expect_str("four-digit status 2000: malformed, not 200", NULL, NULL,
		   "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", true, 1, false,
		   "malformed HTTP response");
	expect_str("expect 503: 503 passes", "503", NULL,
		   "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", true, 1, true,
		   "HTTP 503");
	expect_str("expect 503: 200 fails", "503", NULL,
		   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, 1, false, "HTTP 200");

	is_int(health_http_status_parse("HTTP/1.1 100", 12), 100, "status line of 12 bytes: 100");
	is_int(health_http_status_parse("HTTP/1.0 599 Z", 14), 599, "status 599 parses");
	is_int(health_http_status_parse("HTTP/1.1 600 Z", 14), -1, "status 600 does not");
	is_int(health_http_status_parse("HTTP/1.1 099 Z", 14), -1, "status 099 does not");
	is_int(health_http_status_parse("HTTP/1.1 2000", 13), -1, "four digits do not");
	is_int(health_http_status_parse("HTTP/1.1 20", 11), -1, "two digits do not");
}

static void test_expect_lists(void)
{
	health_check_conf_t c;
	static const struct {
		const char *list;
		bool ok;
	} lists[] = {
		{ "100", true },	  { "599", true },	{ "100-599", true },
		{ "99", false },	  { "600", false },	{ "99-200", false },
		{ "200-600", false },	  { "599-600", false }, { "100-100", true },
		{ "599-599", true },	  { "1000", false },	{ "0", false },
		{ "200-299,600", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		memset(&c, 0, sizeof(c));
		int r = health_expect_parse(&c, lists[i].list);
		is_int(r, lists[i].ok ? 0 : GSLB_EPARSE, "gslbd's expect parser: %s is %s",
		       lists[i].list, lists[i].ok ? "accepted" : "refused");
	}
	memset(&c, 0, sizeof(c));
	health_expect_parse(&c, "100-599");
	ok(health_expect_match(&c, 100) && health_expect_match(&c, 599) &&
		   !health_expect_match(&c, 99) && !health_expect_match(&c, 600),
	   "100-599 holds both edges and nothing beyond");

	/* At most HEALTH_EXPECT_MAX (16) items. */
	char list[256] = "";
	for (int i = 0; i < HEALTH_EXPECT_MAX; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d", i ? "," : "",
			 200 + i);
	memset(&c, 0, sizeof(c));
	is_int(health_expect_parse(&c, list), 0, "16 items are accepted");
	is_int(c.nexpect, HEALTH_EXPECT_MAX, "and all 16 kept");
	snprintf(list + strlen(list), sizeof(list) - strlen(list), ",300");
	is_int(health_expect_parse(&c, list), GSLB_EPARSE, "17 items are refused");
}

int main(void)
{
	test_match_body_only();
	test_body_end();
	test_first_64k();
	test_status_edges();
	test_expect_lists();
	return done_testing();
}
