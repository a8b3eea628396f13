/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of health checking: rise/fall, check defaults, target keys, expect lists,
 * certificate expiry as text.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/health.h"

static uint16_t clamp_limit(unsigned v)
{
	if (v == 0)
		return 1;
	return v > UINT16_MAX ? UINT16_MAX : (uint16_t)v;
}

void health_state_init(health_state_t *s, bool up, unsigned rise, unsigned fall)
{
	memset(s, 0, sizeof(*s));
	s->up = up;
	s->rise = clamp_limit(rise);
	s->fall = clamp_limit(fall);
}

void health_state_set_limits(health_state_t *s, unsigned rise, unsigned fall)
{
	s->rise = clamp_limit(rise);
	s->fall = clamp_limit(fall);
	/* A shorter limit that the current run already reaches takes effect at the next result. */
}

bool health_state_feed(health_state_t *s, bool ok)
{
	if (s->up) {
		if (ok) {
			s->fail_run = 0;
			return false;
		}
		if (++s->fail_run < s->fall)
			return false;
		s->up = false;
		s->fail_run = 0;
		s->ok_run = 0;
		return true;
	}
	if (!ok) {
		s->ok_run = 0;
		return false;
	}
	if (++s->ok_run < s->rise)
		return false;
	s->up = true;
	s->ok_run = 0;
	s->fail_run = 0;
	return true;
}

bool health_effective_up(enum health_quorum quorum, bool local_up, const health_votes_t *v)
{
	uint64_t voters = v ? v->voters : 0, downs = v ? v->downs & v->voters : 0;
	/* This node is one reporter besides the voters; it has no slot. */
	unsigned reporters = 1 + (unsigned)__builtin_popcountll(voters);
	unsigned down = (local_up ? 0 : 1) + (unsigned)__builtin_popcountll(downs);

	switch (quorum) {
	case HEALTH_QUORUM_LOCAL:
		return local_up;
	case HEALTH_QUORUM_ANY:
		return down == 0;
	case HEALTH_QUORUM_ALL:
		return down < reporters;
	default:
		/* Majority, and any value it does not know: a tie stays up. */
		return 2 * down <= reporters;
	}
}

const char *health_quorum_name(unsigned quorum)
{
	switch (quorum) {
	case HEALTH_QUORUM_ANY:
		return "any";
	case HEALTH_QUORUM_ALL:
		return "all";
	case HEALTH_QUORUM_LOCAL:
		return "local";
	default:
		return "majority";
	}
}

static const char *type_name(enum health_type t)
{
	switch (t) {
	case HEALTH_HTTP:
		return "http";
	case HEALTH_HTTPS:
		return "https";
	default:
		return "tcp";
	}
}

void health_check_defaults(health_check_conf_t *c)
{
	if (c->interval_ms == 0)
		c->interval_ms = HEALTH_INTERVAL_MS_DEFAULT;
	if (c->timeout_ms == 0)
		c->timeout_ms = HEALTH_TIMEOUT_MS_DEFAULT;
	if (c->timeout_ms >= c->interval_ms)
		c->timeout_ms = c->interval_ms > 1 ? c->interval_ms - 1 : 1;
	if (c->rise == 0)
		c->rise = HEALTH_RISE_DEFAULT;
	if (c->fall == 0)
		c->fall = HEALTH_FALL_DEFAULT;
	if (c->nexpect > HEALTH_EXPECT_MAX)
		c->nexpect = HEALTH_EXPECT_MAX;
	if (c->match && !*c->match)
		c->match = NULL;
	if (c->quorum > HEALTH_QUORUM_LOCAL)
		c->quorum = HEALTH_QUORUM_MAJORITY;
}

const char *health_probe_key(const health_check_conf_t *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	bool v6 = false;

	if (!len)
		return buf;
	if (c->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->addr;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	} else if (c->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->addr;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
		v6 = true;
	}
	/*
	 * Host and path are cut at HEALTH_PATH_MAX bytes each, which bounds the
	 * key whatever the caller passes (HEALTH_KEY_MAX allows for both);
	 * neither is longer in a configuration gslbctl wrote.
	 */
	if (c->type == HEALTH_TCP)
		snprintf(buf, len, "tcp %s%s%s:%u", v6 ? "[" : "", a, v6 ? "]" : "", port);
	else
		snprintf(buf, len, "%s %s%s%s:%u %.*s%.*s", type_name(c->type), v6 ? "[" : "", a,
			 v6 ? "]" : "", port, HEALTH_PATH_MAX, c->host && *c->host ? c->host : a,
			 HEALTH_PATH_MAX, c->path && *c->path ? c->path : "/");
	return buf;
}

/* Append to the string in buf (len bytes in all), truncating. */
static void __attribute__((format(printf, 3, 4))) cat(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strnlen(buf, len);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* " NAME 1.5s": milliseconds as the decimal seconds gslbctl takes. */
static void cat_seconds(char *buf, size_t len, const char *name, uint32_t ms)
{
	if (ms % 1000 == 0) {
		cat(buf, len, " %s %us", name, ms / 1000);
		return;
	}
	char frac[4];
	snprintf(frac, sizeof(frac), "%03u", ms % 1000);
	for (int i = 2; i > 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	cat(buf, len, " %s %u.%ss", name, ms / 1000, frac);
}

/*
 * " expect 200-299,301": the codes c accepts as maximal ranges, so two lists
 * that accept the same codes read the same; nothing for the default 200-399.
 */
static void cat_expect(char *buf, size_t len, const health_check_conf_t *c)
{
	bool in[600] = { false };
	bool dflt = true;

	if (c->nexpect == 0)
		return;
	for (unsigned code = 100; code < 600; code++) {
		in[code] = health_expect_match(c, code);
		dflt &= in[code] == (code >= 200 && code <= 399);
	}
	if (dflt)
		return;
	cat(buf, len, " expect ");
	const char *sep = "";
	for (unsigned code = 100; code < 600; code++) {
		if (!in[code])
			continue;
		unsigned hi = code;
		while (hi + 1 < 600 && in[hi + 1])
			hi++;
		if (hi == code)
			cat(buf, len, "%s%u", sep, code);
		else
			cat(buf, len, "%s%u-%u", sep, code, hi);
		sep = ",";
		code = hi;
	}
	if (!*sep)
		cat(buf, len, "none");
}

/* " match \"TEXT\"", quoted so that the key stays one line and ends unambiguously. */
static void cat_match(char *buf, size_t len, const char *match)
{
	cat(buf, len, " match \"");
	for (const unsigned char *p = (const unsigned char *)match; *p; p++) {
		if (*p == '"' || *p == '\\')
			cat(buf, len, "\\%c", *p);
		else if (*p == '\t')
			cat(buf, len, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			cat(buf, len, "\\x%02x", *p);
		else
			cat(buf, len, "%c", *p);
	}
	cat(buf, len, "\"");
}

const char *health_target_key(const health_check_conf_t *check, char *buf, size_t len)
{
	health_check_conf_t c = *check;

	health_probe_key(&c, buf, len);
	if (!len)
		return buf;
	/*
	 * What decides the verdict or its timing, in gslbctl's words, each only
	 * when it is not the default: a check with every default keeps the key
	 * of its probe alone, as stored before the settings were part of it.
	 */
	health_check_defaults(&c);
	if (c.type == HEALTH_HTTPS && c.insecure)
		cat(buf, len, " insecure");
	if (c.type != HEALTH_TCP)
		cat_expect(buf, len, &c);
	if (c.interval_ms != HEALTH_INTERVAL_MS_DEFAULT)
		cat_seconds(buf, len, "interval", c.interval_ms);
	if (c.timeout_ms != HEALTH_TIMEOUT_MS_DEFAULT)
		cat_seconds(buf, len, "timeout", c.timeout_ms);
	if (c.rise != HEALTH_RISE_DEFAULT)
		cat(buf, len, " rise %u", c.rise);
	if (c.fall != HEALTH_FALL_DEFAULT)
		cat(buf, len, " fall %u", c.fall);
	/*
	 * How a cluster's verdicts combine decides the state answered from, so checks that differ
	 * in it are targets of their own (and vote on keys of their own).
	 */
	if (c.quorum != HEALTH_QUORUM_MAJORITY)
		cat(buf, len, " quorum %s", health_quorum_name(c.quorum));
	if (c.type != HEALTH_TCP && c.match)
		cat_match(buf, len, c.match);
	return buf;
}

/* A status code of len characters at p: decimal digits only, in the status code range. */
static bool status_code(const char *p, size_t len, unsigned *v)
{
	unsigned x = 0;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return false;
		if (x <= HEALTH_STATUS_MAX)
			x = x * 10 + (unsigned)(p[i] - '0');
	}
	*v = x;
	return x >= HEALTH_STATUS_MIN && x <= HEALTH_STATUS_MAX;
}

static int expect_fault(health_expect_error_t *err, int fault)
{
	if (err)
		err->fault = fault;
	return GSLB_EPARSE;
}

/*
 * The one reading of an expect list, for the probes and for gslbctl: the
 * ranges into r (HEALTH_EXPECT_MAX of them) and their count into *n, or the
 * first fault from the left into err (may be NULL).
 */
static int expect_scan(const char *s, health_range_t *r, unsigned *n, health_expect_error_t *err)
{
	const char *p = s;

	*n = 0;
	if (!s || !*s)
		return expect_fault(err, HEALTH_EXPECT_EMPTY);
	for (;;) {
		size_t len = strcspn(p, ","), lo_len = strcspn(p, "-,");
		unsigned lo, hi;

		if (len == 0 || len > HEALTH_EXPECT_ITEM_MAX)
			return expect_fault(err, HEALTH_EXPECT_ITEM);
		/* A range's end runs to the comma: "200-300-400" has the end "300-400". */
		const char *code = p;
		size_t code_len = lo_len;
		bool ok = status_code(p, lo_len, &lo);
		hi = lo;
		if (ok && lo_len < len) {
			code = p + lo_len + 1;
			code_len = len - lo_len - 1;
			ok = status_code(code, code_len, &hi);
		}
		if (!ok) {
			if (err) {
				err->at = code;
				err->len = code_len;
			}
			return expect_fault(err, HEALTH_EXPECT_CODE);
		}
		if (hi < lo) {
			if (err) {
				err->lo = lo;
				err->hi = hi;
			}
			return expect_fault(err, HEALTH_EXPECT_REVERSED);
		}
		if (*n == HEALTH_EXPECT_MAX)
			return expect_fault(err, HEALTH_EXPECT_TOO_MANY);
		r[*n].lo = (uint16_t)lo;
		r[*n].hi = (uint16_t)hi;
		(*n)++;
		p += len;
		if (*p == '\0')
			return 0;
		if (*++p == '\0')
			return expect_fault(err, HEALTH_EXPECT_TRAILING);
	}
}

int health_expect_parse(health_check_conf_t *c, const char *s)
{
	health_range_t r[HEALTH_EXPECT_MAX];
	unsigned n;

	if (expect_scan(s, r, &n, NULL))
		return GSLB_EPARSE;
	memcpy(c->expect, r, n * sizeof(r[0]));
	c->nexpect = n;
	return 0;
}

int health_expect_check(const char *s, health_expect_error_t *err)
{
	health_range_t r[HEALTH_EXPECT_MAX];
	unsigned n;

	return expect_scan(s, r, &n, err);
}

bool health_expect_match(const health_check_conf_t *c, unsigned status)
{
	if (c->nexpect == 0)
		return status >= 200 && status <= 399;
	for (unsigned i = 0; i < c->nexpect && i < HEALTH_EXPECT_MAX; i++)
		if (status >= c->expect[i].lo && status <= c->expect[i].hi)
			return true;
	return false;
}

int health_http_status_parse(const char *line, size_t len)
{
	/* RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ] */
	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) ||
	    line[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (!isdigit((unsigned char)line[i]))
			return -1;
	if (len > 12 && line[12] != ' ')
		return -1;
	int code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	return code >= HEALTH_STATUS_MIN && code <= HEALTH_STATUS_MAX ? code : -1;
}

const char *health_cert_expiry_text(int64_t not_after, int64_t now, char *buf, size_t len)
{
	int64_t left = not_after - now;
	int64_t days = (left < 0 ? -left : left) / 86400;

	if (days == 0)
		snprintf(buf, len, "%s less than a day%s", left >= 0 ? "expires in" : "expired",
			 left >= 0 ? "" : " ago");
	else
		snprintf(buf, len, "%s %" PRId64 " day%s%s", left >= 0 ? "expires in" : "expired",
			 days, days == 1 ? "" : "s", left >= 0 ? "" : " ago");
	return buf;
}
