/* SPDX-License-Identifier: MIT */
/* gslbctl's validators: every value a user gives, on the command line or in an apply file. */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/cfg.h"
#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/geo.h"
#include "gslb/health.h"
#include "gslb/lb.h"

static int why_set(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int why_set(char *why, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, WHY_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Quote a user's value for a message, cut short and with control characters
 * hidden.  The buffer is per thread: gslbd's cluster thread reads pools with
 * these validators while other threads may too.
 */
static const char *shown(const char *s)
{
	static _Thread_local char buf[80];
	size_t n = 0;
	for (const char *p = s; *p && n < sizeof(buf) - 4; p++)
		buf[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	if (strlen(s) > n)
		memcpy(buf + n, "...", 4);
	else
		buf[n] = '\0';
	return buf;
}

int val_pool_name(const char *s, char *out, size_t outlen, char *why)
{
	size_t len = strlen(s), label = 0;

	if (len == 0)
		return why_set(why, "empty name");
	if (strcmp(s, ".") == 0)
		return why_set(why, "the root cannot be a pool");
	if (s[len - 1] == '.')
		len--;
	/* Wire length is the text length plus the length byte of the first label and the root. */
	if (len + 2 > DNS_NAME_MAX)
		return why_set(why, "%s is longer than %d bytes", shown(s), DNS_NAME_MAX);
	if (len + 2 > outlen)
		return why_set(why, "name too long");
	for (size_t i = 0; i <= len; i++) {
		char ch = i < len ? s[i] : '.';
		if (ch == '.') {
			if (label == 0)
				return why_set(why, "%s has an empty label", shown(s));
			if (label > DNS_LABEL_MAX)
				return why_set(why, "%s has a label longer than %d characters",
					       shown(s), DNS_LABEL_MAX);
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)ch) && ch != '-' && ch != '_')
			return why_set(why, "%s: '%c' is not allowed in a host name", shown(s),
				       isprint((unsigned char)ch) ? ch : '?');
		label++;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[len] = '.';
	out[len + 1] = '\0';
	return 0;
}

int val_alias(const char *s, char *out, size_t outlen, char *why)
{
	char ip[INET6_ADDRSTRLEN + 2], text[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(s);
	int fam;

	if (strcmp(s, ".") == 0)
		return why_set(why, "the root is not a host name");
	/* "192.0.2.1." too: a trailing dot makes no host name of an address. */
	if (len && len < sizeof(text)) {
		memcpy(text, s, len + 1);
		if (text[len - 1] == '.')
			text[len - 1] = '\0';
		if (val_ip(text, ip, &fam, why) == 0)
			return why_set(why, "%s is an IP address, not a host name", shown(s));
	}
	return val_pool_name(s, out, outlen, why);
}

int val_member_name(const char *s, char *why)
{
	size_t len = strlen(s);
	if (len == 0)
		return why_set(why, "empty name");
	if (len > LB_MEMBER_NAME_MAX)
		return why_set(why, "%s is longer than %d characters", shown(s),
			       LB_MEMBER_NAME_MAX);
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return why_set(why, "%s does not start with a-z or 0-9", shown(s));
	for (size_t i = 1; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		      ch == '.' || ch == '-'))
			return why_set(why, "%s: only a-z 0-9 _ . - are allowed", shown(s));
	}
	return 0;
}

int val_ip(const char *s, char *out, int *family, char *why)
{
	unsigned char buf[16];
	if (inet_pton(AF_INET, s, buf) == 1) {
		inet_ntop(AF_INET, buf, out, INET6_ADDRSTRLEN);
		*family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, buf) == 1) {
		inet_ntop(AF_INET6, buf, out, INET6_ADDRSTRLEN);
		*family = 6;
		return 0;
	}
	return why_set(why, "%s is not an IPv4 or IPv6 address", shown(s));
}

int val_member_address(const char *s, char *out, int *family, char *why)
{
	struct in6_addr a;
	char v4[INET_ADDRSTRLEN];

	if (val_ip(s, out, family, why))
		return -1;
	/*
	 * RFC 4291 2.5.5.2: ::ffff:a.b.c.d is how an IPv6 socket names an IPv4
	 * peer, not an address an IPv6 host has; served as AAAA, it would send
	 * IPv6 clients nowhere.  The IPv4 address is what was meant.
	 */
	if (*family == 6 && inet_pton(AF_INET6, out, &a) == 1 && IN6_IS_ADDR_V4MAPPED(&a)) {
		inet_ntop(AF_INET, &a.s6_addr[12], v4, sizeof(v4));
		return why_set(why, "%s is an IPv4-mapped IPv6 address (give %s)", shown(s), v4);
	}
	return 0;
}

int val_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *v, char *why)
{
	unsigned long x = 0;
	if (!*s)
		return why_set(why, "empty value, expected a number in %lu-%lu", lo, hi);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return why_set(why, "%s is not a whole number", shown(s));
		if (x > 100000000ul)
			return why_set(why, "%s is not in %lu-%lu", shown(s), lo, hi);
		x = x * 10 + (unsigned long)(*p - '0');
	}
	if (x < lo || x > hi)
		return why_set(why, "%s is not in %lu-%lu", shown(s), lo, hi);
	*v = x;
	return 0;
}

void fmt_seconds(char *buf, size_t len, uint32_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%u", ms / 1000);
	else if (ms % 100 == 0)
		snprintf(buf, len, "%u.%u", ms / 1000, (ms % 1000) / 100);
	else if (ms % 10 == 0)
		snprintf(buf, len, "%u.%02u", ms / 1000, (ms % 1000) / 10);
	else
		snprintf(buf, len, "%u.%03u", ms / 1000, ms % 1000);
}

int val_seconds(const char *s, uint32_t lo_ms, uint32_t hi_ms, uint32_t *ms, char *why)
{
	char lo[16], hi[16];
	uint64_t whole = 0, frac = 0;
	int fdigits = 0;
	const char *p = s;

	fmt_seconds(lo, sizeof(lo), lo_ms);
	fmt_seconds(hi, sizeof(hi), hi_ms);
	if (*p < '0' || *p > '9')
		return why_set(why, "%s is not a number of seconds", shown(s));
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 100000000)
			return why_set(why, "%s is not in %s-%s seconds", shown(s), lo, hi);
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return why_set(why, "%s is not a number of seconds", shown(s));
		for (; *p >= '0' && *p <= '9'; p++) {
			if (++fdigits > 3) {
				if (*p != '0')
					return why_set(why, "%s: at most 3 decimals (milliseconds)",
						       shown(s));
				continue;
			}
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
	}
	if (*p)
		return why_set(why, "%s is not a number of seconds", shown(s));
	while (fdigits < 3) {
		frac *= 10;
		fdigits++;
	}
	uint64_t v = whole * 1000 + frac;
	if (v < lo_ms || v > hi_ms)
		return why_set(why, "%s is not in %s-%s seconds", shown(s), lo, hi);
	*ms = (uint32_t)v;
	return 0;
}

int val_num(enum num_field f, const char *s, uint32_t *v, char *why)
{
	const num_field_def_t *d = &num_fields[f];
	unsigned long x;

	if (d->seconds)
		return val_seconds(s, d->lo, d->hi, v, why);
	if (val_uint(s, d->lo, d->hi, &x, why))
		return -1;
	*v = (uint32_t)x;
	return 0;
}

/*
 * A decimal number in degrees; strtod alone would take "nan", "inf", hex and
 * exponents.  As long as anything fmt_location() writes, so export reads back.
 */
static int degrees(const char *s, size_t len, double *v)
{
	char buf[JSON_DOUBLE_LEN];
	size_t i = 0, digits = 0;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[i] == '-' || buf[i] == '+')
		i++;
	for (; buf[i] >= '0' && buf[i] <= '9'; i++)
		digits++;
	if (buf[i] == '.')
		for (i++; buf[i] >= '0' && buf[i] <= '9'; i++)
			digits++;
	if (buf[i] || digits == 0)
		return -1;
	*v = strtod(buf, NULL);
	return 0;
}

int val_location(const char *s, double *lat, double *lon, char *why)
{
	const char *comma = strchr(s, ',');
	if (!comma || degrees(s, (size_t)(comma - s), lat) ||
	    degrees(comma + 1, strlen(comma + 1), lon))
		return why_set(why, "%s is not LAT,LON in decimal degrees", shown(s));
	if (*lat < -90 || *lat > 90)
		return why_set(why, "latitude %s is not in -90-90", shown(s));
	if (*lon < -180 || *lon > 180)
		return why_set(why, "longitude %s is not in -180-180", shown(s));
	/* -0 and 0 are one place; store one of them so export is stable. */
	*lat += 0.0;
	*lon += 0.0;
	return 0;
}

void fmt_location(char *buf, size_t len, double lat, double lon)
{
	char a[JSON_DOUBLE_LEN], b[JSON_DOUBLE_LEN];
	json_double_fmt(a, sizeof(a), lat);
	json_double_fmt(b, sizeof(b), lon);
	snprintf(buf, len, "%s,%s", a, b);
}

/* Split a comma list, check each item with ok(), uppercase, drop duplicates. */
static int code_list(const char *s, char **out, char *why, const char *what,
		     bool (*ok)(const char *item))
{
	char *copy, *save = NULL, *list = NULL;
	size_t len = 0;
	FILE *f;
	int ret = 0;

	if (!*s)
		return why_set(why, "empty list");
	copy = gslb_strdup(s);
	f = cfg_mem_open(&list, &len);
	for (size_t i = 0; copy[i]; i++)
		copy[i] = (char)toupper((unsigned char)copy[i]);
	if (copy[0] == ',' || copy[strlen(copy) - 1] == ',' || strstr(copy, ",,")) {
		ret = why_set(why, "%s has an empty item", shown(s));
		goto out;
	}
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (!ok(item)) {
			ret = why_set(why, "%s is not %s", shown(item), what);
			goto out;
		}
		/* Skip an item already in the list (list and len are current once flushed). */
		bool dup = false;
		fflush(f);
		for (size_t off = 0; off < len;) {
			size_t n = strcspn(list + off, ",");
			if (n == strlen(item) && memcmp(list + off, item, n) == 0)
				dup = true;
			off += n + 1;
		}
		if (!dup)
			fprintf(f, "%s%s", len ? "," : "", item);
	}
out:
	cfg_mem_close(f);
	if (ret)
		free(list);
	else
		*out = list;
	free(copy);
	return ret;
}

static bool is_continent(const char *s)
{
	return lb_continent_bit(s) >= 0;
}

int val_countries(const char *s, char **out, char *why)
{
	/* An assigned ISO 3166-1 alpha-2 code (or XK), optionally "-" and an ISO 3166-2 subdivision. */
	return code_list(s, out, why, "an ISO 3166-1 alpha-2 code or CC-SUB", geo_place_code_valid);
}

int val_continents(const char *s, char **out, char *why)
{
	return code_list(s, out, why, "one of AF AN AS EU NA OC SA", is_continent);
}

void fmt_net(char *buf, size_t len, const lb_net_t *n)
{
	char addr[INET6_ADDRSTRLEN];
	inet_ntop(n->family == 6 ? AF_INET6 : AF_INET, n->addr, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, n->len);
}

int val_cidr(const char *s, char *out, char *why)
{
	lb_net_t n;
	/* gslbd reads a bare address as a prefix of its whole length; gslbctl wants it written. */
	int ret = strchr(s, '/') ? lb_net_parse(s, &n) : GSLB_EPARSE;

	if (ret == -ERANGE)
		return why_set(why, "%s: prefix length is not in 0-%d", shown(s),
			       n.family == 6 ? 128 : 32);
	if (ret)
		return why_set(why, "%s is not a CIDR prefix (ADDRESS/LENGTH)", shown(s));
	if (lb_net_mask(&n))
		return why_set(why, "%s has host bits set", shown(s));
	fmt_net(out, CIDR_LEN, &n);
	return 0;
}

int val_expect(const char *s, char *why)
{
	health_expect_error_t e;
	char code[HEALTH_EXPECT_ITEM_MAX + 1], w[WHY_MAX] = "";
	unsigned long v;

	if (health_expect_check(s, &e) == 0)
		return 0;
	switch (e.fault) {
	case HEALTH_EXPECT_EMPTY:
		return why_set(why, "empty list");
	case HEALTH_EXPECT_CODE:
		/* val_uint() says why the code is not one, as for any other number. */
		snprintf(code, sizeof(code), "%.*s", (int)e.len, e.at);
		val_uint(code, HEALTH_STATUS_MIN, HEALTH_STATUS_MAX, &v, w);
		return why_set(why, "%s: %s", shown(s), w);
	case HEALTH_EXPECT_REVERSED:
		return why_set(why, "%s: range %u-%u is reversed", shown(s), e.lo, e.hi);
	case HEALTH_EXPECT_TOO_MANY:
		return why_set(why, "%s: more than %d codes or ranges", shown(s),
			       HEALTH_EXPECT_MAX);
	case HEALTH_EXPECT_TRAILING:
		return why_set(why, "%s ends with a comma", shown(s));
	default:
		return why_set(why, "%s is not a list of status codes like 200-299,301", shown(s));
	}
}

/* Text that goes into an HTTP request line or header: printable ASCII only. */
static int http_text(const char *s, size_t max, bool spaces, char *why)
{
	if (strlen(s) > max)
		return why_set(why, "longer than %zu bytes", max);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			if (!(spaces && *p == ' '))
				return why_set(why, "%s contains a space or control character",
					       shown(s));
	return 0;
}

int val_path(const char *s, char *why)
{
	if (s[0] != '/')
		return why_set(why, "%s does not start with /", shown(s));
	return http_text(s, HEALTH_PATH_MAX, false, why);
}

int val_host(const char *s, char *why)
{
	if (!*s)
		return why_set(why, "empty host");
	if (http_text(s, HEALTH_HOST_MAX, false, why))
		return -1;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_:[]", *p))
			return why_set(why, "%s is not a host name or address", shown(s));
	return 0;
}

int val_match(const char *s, char *why)
{
	if (!*s)
		return why_set(why, "empty string");
	if (strlen(s) > HEALTH_MATCH_MAX)
		return why_set(why, "longer than %d bytes", HEALTH_MATCH_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return why_set(why, "contains a control character");
	return 0;
}
