/* SPDX-License-Identifier: MIT */
/* Zone files to zones: RFC 1035 master files read (mostly without ldns) into zone_add_rr(). */
#include "gslb/zone.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/stat.h>

#include <ldns/ldns.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "internal.h"

#define DEFAULT_TTL_S 3600  /* used until a $TTL directive says otherwise */
#define INCLUDE_DEPTH_MAX 8 /* nested $INCLUDEs, which also stops include loops */

/* A growing string: one entry of a zone file.  The buffer is reused from entry to entry. */
struct text {
	char *s;
	size_t len, cap;
};

/* Room for n more bytes and the terminating NUL. */
static void text_reserve(struct text *t, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (t->len + n + 1 > cap)
			cap *= 2;
		t->s = gslb_realloc(t->s, cap);
		t->cap = cap;
	}
}

static void text_put(struct text *t, const char *p, size_t n)
{
	text_reserve(t, n);
	memcpy(t->s + t->len, p, n);
	t->len += n;
	t->s[t->len] = 0;
}

/*
 * State of one zone_load_file() call.  The origin, default TTL and previous
 * owner belong to each file being read (RFC 1035 5.1: they revert when an
 * $INCLUDE ends), so they live in read_file()'s frame, not here.
 */
struct load {
	const char *dir; /* the zone directory: base of relative $INCLUDE paths */
	zone_t *z;
	ldns_buffer *rdata; /* scratch for one RR's uncompressed rdata */
	struct text entry;  /* the entry being read: its lines joined (read_entry()) */
	struct text norm;   /* the same entry as ldns gets it (normalise()) */
	char *err;
	size_t errlen;
	bool fast;	  /* read the common entries without ldns (fast_rr()) */
	size_t nfast;	  /* entries fast_rr() took */
	uint8_t *fast_rd; /* scratch for their rdata, FAST_RDATA_MAX bytes */
	/* where the apex SOA was read: a second one, or one elsewhere, is named with its line */
	char soa_file[256];
	int soa_line;
};

/* Write "file:line: message" into the error buffer (line 0: "file: message"). */
static void __attribute__((format(printf, 4, 5)))
fail(struct load *ld, const char *file, int line, const char *fmt, ...)
{
	int n;
	if (line > 0)
		n = snprintf(ld->err, ld->errlen, "%s:%d: ", file, line);
	else
		n = snprintf(ld->err, ld->errlen, "%s: ", file);
	if (n < 0 || (size_t)n >= ld->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool line_is_blank(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '\f' || *s == '\v')
		s++;
	return *s == 0 || *s == ';';
}

/*
 * Split the next whitespace-separated word off *s, in place.  A word in
 * double quotes may hold spaces (a file name).  A ';' starts a comment.
 * Returns NULL at the end of the line.
 */
static char *next_word(char **s)
{
	char *p = *s;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (*p == 0 || *p == ';')
		return NULL;
	char *w = p;
	if (*p == '"') {
		w = ++p;
		while (*p && *p != '"')
			p++;
	} else {
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != ';')
			p++;
	}
	if (*p == ';') {
		/* A comment right after the word: end the word, end the line. */
		*p = 0;
		*s = p;
		return w;
	}
	if (*p)
		*p++ = 0;
	*s = p;
	return w;
}

/* Does a presentation name end in an unescaped dot, i.e. is it absolute? */
static bool name_is_absolute(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || s[n - 1] != '.')
		return false;
	size_t bs = 0;
	while (bs + 1 < n && s[n - 2 - bs] == '\\')
		bs++;
	return bs % 2 == 0;
}

/*
 * Parse the name of an $ORIGIN or $INCLUDE directive.  ldns would take a
 * relative name as absolute; RFC 1035 5.1 makes it relative to the current
 * origin, as BIND, NSD and Knot do.  Returns a new dname or NULL.
 */
static ldns_rdf *origin_parse(const char *s, const ldns_rdf *cur)
{
	if (strcmp(s, "@") == 0)
		return ldns_rdf_clone(cur);
	if (name_is_absolute(s))
		return ldns_dname_new_frm_str(s);
	ldns_rdf *rel = ldns_dname_new_frm_str(s);
	if (!rel)
		return NULL;
	/* ldns made the relative text absolute: cut its root label, append cur. */
	size_t rlen = ldns_rdf_size(rel);
	size_t clen = ldns_rdf_size(cur);
	ldns_rdf *out = NULL;
	if (rlen >= 1 && rlen - 1 + clen <= DNS_NAME_MAX) {
		uint8_t buf[DNS_NAME_MAX + 1];
		memcpy(buf, ldns_rdf_data(rel), rlen - 1);
		memcpy(buf + rlen - 1, ldns_rdf_data(cur), clen);
		out = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, rlen - 1 + clen, buf);
	}
	ldns_rdf_deep_free(rel);
	return out;
}

/* ldns's message for a status, without the "Syntax error, " most of them start with. */
static const char *ldns_msg(ldns_status s)
{
	const char *m = ldns_get_errorstr_by_id(s);
	if (!m)
		return "unknown error";
	if (strncmp(m, "Syntax error, ", 14) == 0)
		return m + 14;
	return m;
}

static void name_text(char *dst, size_t cap, const ldns_rdf *name)
{
	char *s = ldns_rdf2str(name);
	snprintf(dst, cap, "%s", s ? s : "?");
	free(s);
}

/*
 * A zone has one SOA, at its apex (RFC 1035 5.2).  zone_finish() checks it
 * too, but only here is the offending line known.
 */
static int soa_seen(struct load *ld, const char *file, int line, const ldns_rdf *owner)
{
	char name[1024];

	if (!dns_name_eq(ldns_rdf_data(owner), ld->z->apex)) {
		name_text(name, sizeof(name), owner);
		fail(ld, file, line, "SOA record at %s, which is not the zone apex", name);
		return GSLB_EDUPSOA;
	}
	if (ld->soa_line) {
		fail(ld, file, line, "a second SOA record (the first is at %s:%d)", ld->soa_file,
		     ld->soa_line);
		return GSLB_EDUPSOA;
	}
	snprintf(ld->soa_file, sizeof(ld->soa_file), "%s", file);
	ld->soa_line = line;
	return 0;
}

/* RFC 2181 8: a TTL with the top bit set means zero; say so, since the file asked for more. */
static void ttl_warn(const char *file, int line, const char *what, uint64_t v)
{
	if (v > INT32_MAX)
		log_warn("%s:%d: %s %llu is above 2147483647: served as 0 (RFC 2181 8)", file, line,
			 what, (unsigned long long)v);
}

/*
 * A TTL or SOA timer: seconds, or numbers with units summed (1w2d3h4m5s,
 * any case), the forms ldns_str2period() reads.  Returns 0 and the value in
 * *v, -EINVAL when the text is not of that form, -ERANGE when the value
 * needs more than 32 bits (ldns would silently keep the low bits).
 */
static int period_parse(const char *s, size_t n, uint64_t *v)
{
	uint64_t sum = 0, num = 0;
	bool digits = false;

	for (size_t i = 0; i < n; i++) {
		uint64_t unit;
		if (s[i] >= '0' && s[i] <= '9') {
			num = num * 10 + (uint64_t)(s[i] - '0');
			digits = true;
			if (num > UINT32_MAX)
				return -ERANGE;
			continue;
		}
		switch (s[i]) {
		case 's':
		case 'S':
			unit = 1;
			break;
		case 'm':
		case 'M':
			unit = 60;
			break;
		case 'h':
		case 'H':
			unit = 3600;
			break;
		case 'd':
		case 'D':
			unit = 86400;
			break;
		case 'w':
		case 'W':
			unit = 604800;
			break;
		default:
			return -EINVAL;
		}
		if (!digits)
			return -EINVAL;
		sum += num * unit;
		if (sum > UINT32_MAX)
			return -ERANGE;
		num = 0;
		digits = false;
	}
	sum += num;
	if (n == 0 || sum > UINT32_MAX)
		return n == 0 ? -EINVAL : -ERANGE;
	*v = sum;
	return 0;
}

/* A plain decimal number of at most max: 0, -EINVAL (not digits only) or -ERANGE. */
static int uint_parse(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(s[i] - '0');
		if (x > max)
			return -ERANGE;
	}
	*v = x;
	return 0;
}

/*
 * Append one physical line of a record to the entry e, as RFC 1035 5.1
 * reads it: a comment (';' outside quotes) is dropped, parentheses become
 * spaces and let the record go on over the next line (*depth counts them).
 * Quoted strings are copied as they are, escapes included, but end on their
 * line: a quote still open at the end of the line (or of the file) is an
 * error, where ldns would quietly end the string there and load the rest.
 * s[0..n) has no newline.
 */
static int join_line(struct load *ld, const char *file, int line, const char *s, size_t n,
		     struct text *e, int *depth)
{
	bool quoted = false;
	size_t k = 0;

	text_reserve(e, n + 1); /* one more for the space that stands for a newline */
	char *out = e->s + e->len;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\\' && i + 1 < n) {
			/* An escaped character is never special (RFC 1035 5.1: \X and \DDD). */
			out[k++] = c;
			out[k++] = s[++i];
			continue;
		}
		if (quoted) {
			quoted = c != '"';
		} else if (c == '"') {
			quoted = true;
		} else if (c == ';') {
			break;
		} else if (c == '(') {
			(*depth)++;
			c = ' ';
		} else if (c == ')') {
			if (*depth == 0) {
				fail(ld, file, line, "syntax error: ')' without '('");
				return GSLB_EPARSE;
			}
			(*depth)--;
			c = ' ';
		} else if (c == '\r') {
			c = ' ';
		}
		out[k++] = c;
	}
	if (quoted) {
		fail(ld, file, line, "syntax error: a quoted string is not closed on its line");
		return GSLB_EPARSE;
	}
	if (*depth > 0)
		out[k++] = ' ';
	e->len += k;
	e->s[e->len] = 0;
	return 0;
}

/* One blank-separated word of an entry; a quoted string, blanks and escapes included, is one. */
struct tok {
	const char *p;
	size_t n;
};

static bool next_tok(const char *s, size_t *pos, struct tok *t)
{
	size_t i = *pos;
	bool quoted = false;

	while (s[i] == ' ' || s[i] == '\t')
		i++;
	if (!s[i]) {
		*pos = i;
		return false;
	}
	t->p = s + i;
	for (; s[i]; i++) {
		if (s[i] == '\\' && s[i + 1])
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && (s[i] == ' ' || s[i] == '\t'))
			break;
	}
	t->n = (size_t)(s + i - t->p);
	*pos = i;
	return true;
}

/* A short token as a C string in buf (cap bytes); false when it does not fit. */
static bool tok_str(const struct tok *t, char *buf, size_t cap)
{
	if (t->n >= cap)
		return false;
	memcpy(buf, t->p, t->n);
	buf[t->n] = 0;
	return true;
}

/* The types fast_rr() reads, by name (any case); 0 for the others. */
static uint16_t fast_type(const struct tok *t)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {
		{ "A", DNS_T_A },	  { "AAAA", DNS_T_AAAA }, { "NS", DNS_T_NS },
		{ "CNAME", DNS_T_CNAME }, { "PTR", DNS_T_PTR },	  { "MX", DNS_T_MX },
		{ "SRV", DNS_T_SRV },	  { "TXT", DNS_T_TXT },	  { "CAA", 257 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (strlen(types[i].name) == t->n && strncasecmp(types[i].name, t->p, t->n) == 0)
			return types[i].type;
	return 0;
}

static bool tok_is_class(const struct tok *t)
{
	char buf[24];
	if (t->n == 2 && (t->p[0] | 0x20) == 'i' && (t->p[1] | 0x20) == 'n')
		return true; /* IN, in any case, without asking ldns */
	return tok_str(t, buf, sizeof(buf)) && ldns_get_rr_class_by_name(buf) != 0;
}

static const char *field_name(const ldns_rr_descriptor *desc, size_t f, char *buf, size_t cap)
{
	static const char *const soa[] = { "serial", "refresh", "retry", "expire", "minimum" };
	if (desc->_type == LDNS_RR_TYPE_SOA && f >= 2 && f < 7)
		return soa[f - 2];
	snprintf(buf, cap, "field %zu", f + 1);
	return buf;
}

/*
 * Numbers in the rdata (the tokens from *pos on) that do not fit their
 * field: ldns keeps their low bits, so an SOA serial of 4294967296 became 0
 * and an MX preference of 65536 became 0.  Only the fields ldns reads from
 * one token each are matched to tokens; the check stops at the first field
 * that may take several (base64, hex, type bitmaps ...), which is the last
 * one of its type anyway, and at RFC 3597 generic rdata ("\#").
 */
static int check_fields(struct load *ld, const char *file, int line, const struct tok *type_t,
			const char *s, size_t pos)
{
	char tname[64], fbuf[32];
	struct tok t;

	if (!tok_str(type_t, tname, sizeof(tname)))
		return 0;
	/* The common types by their names here: ldns compares the name with every type's. */
	uint16_t type = fast_type(type_t);
	if (!type)
		type = (uint16_t)ldns_get_rr_type_by_name(tname);
	const ldns_rr_descriptor *desc = ldns_rr_descript(type);
	if (!desc || type == 0)
		return 0;
	size_t max = ldns_rr_descriptor_maximum(desc);
	for (size_t f = 0; f < max && next_tok(s, &pos, &t); f++) {
		uint64_t lim, v;
		int r;
		if (f == 0 && t.n == 2 && t.p[0] == '\\' && t.p[1] == '#')
			return 0;
		switch (ldns_rr_descriptor_field_type(desc, f)) {
		case LDNS_RDF_TYPE_INT8:
			lim = UINT8_MAX;
			break;
		case LDNS_RDF_TYPE_INT16:
			lim = UINT16_MAX;
			break;
		case LDNS_RDF_TYPE_INT32:
			lim = UINT32_MAX;
			break;
		case LDNS_RDF_TYPE_PERIOD:
			if (period_parse(t.p, t.n, &v) == -ERANGE) {
				fail(ld, file, line, "%s %s %.*s is out of range (0 to 4294967295)",
				     desc->_name, field_name(desc, f, fbuf, sizeof(fbuf)), (int)t.n,
				     t.p);
				return -ERANGE;
			}
			continue; /* other mistakes are ldns's to report */
		case LDNS_RDF_TYPE_DNAME:
		case LDNS_RDF_TYPE_A:
		case LDNS_RDF_TYPE_AAAA:
		case LDNS_RDF_TYPE_STR:
		case LDNS_RDF_TYPE_LONG_STR:
		case LDNS_RDF_TYPE_TAG:
		case LDNS_RDF_TYPE_ALG:
		case LDNS_RDF_TYPE_CERT_ALG:
		case LDNS_RDF_TYPE_TYPE:
		case LDNS_RDF_TYPE_CLASS:
		case LDNS_RDF_TYPE_TIME:
			continue;
		default:
			return 0;
		}
		/* ldns takes "-1" too, as 65535 for an INT16: a minus sign is out of range. */
		r = uint_parse(t.p[0] == '-' ? t.p + 1 : t.p, t.p[0] == '-' ? t.n - 1 : t.n, lim,
			       &v);
		if (r == -ERANGE || (r == 0 && t.p[0] == '-' && v > 0)) {
			fail(ld, file, line, "%s %s %.*s is out of range (0 to %llu)", desc->_name,
			     field_name(desc, f, fbuf, sizeof(fbuf)), (int)t.n, t.p,
			     (unsigned long long)lim);
			return -ERANGE;
		}
	}
	return 0;
}

/*
 * The entry ld->entry as ldns is to read it, in ld->norm.  It is changed
 * where ldns reads it wrongly:
 * - RFC 1035 5.1 allows the class before the TTL ("www IN 60 A ..."); ldns
 *   takes the TTL first only and fails on the other order, which named, Knot
 *   and NSD accept: the two are swapped;
 * - the TTL is always written out, the entry's or the current default, as
 *   ldns takes a default TTL of 0 for "none" and uses 3600 instead;
 * - a TTL or an rdata number too large for its field is an error.
 * Returns 0, 1 for an entry with nothing in it, or a negative code.
 */
static int normalise(struct load *ld, const char *file, int line, uint32_t ttl)
{
	const char *s = ld->entry.s;
	struct tok owner = { 0 }, ttl_t = { 0 }, cls_t = { 0 }, type_t = { 0 }, t;
	size_t pos = 0;
	uint64_t v = ttl;
	char num[16];

	bool has_owner = s[0] != ' ' && s[0] != '\t';
	if (has_owner)
		next_tok(s, &pos, &owner);
	else if (!s[strspn(s, " \t")])
		return 1;
	for (int k = 0; k < 3 && next_tok(s, &pos, &t); k++) {
		if (!ttl_t.p && isdigit((unsigned char)t.p[0])) {
			ttl_t = t;
		} else if (!cls_t.p && tok_is_class(&t)) {
			cls_t = t;
		} else {
			type_t = t;
			break;
		}
	}
	ld->norm.len = 0;
	if (!type_t.p) {
		/* No type: ldns says what is wrong. */
		text_put(&ld->norm, s, ld->entry.len);
		return 0;
	}
	if (ttl_t.p) {
		int r = period_parse(ttl_t.p, ttl_t.n, &v);
		if (r == -ERANGE) {
			fail(ld, file, line, "TTL %.*s is out of range (0 to 4294967295)",
			     (int)ttl_t.n, ttl_t.p);
			return -ERANGE;
		}
		if (r < 0) {
			fail(ld, file, line, "syntax error: invalid TTL \"%.*s\"", (int)ttl_t.n,
			     ttl_t.p);
			return GSLB_EPARSE;
		}
		ttl_warn(file, line, "TTL", v);
	}
	int ret = check_fields(ld, file, line, &type_t, s, pos);
	if (ret < 0)
		return ret;
	if (has_owner)
		text_put(&ld->norm, owner.p, owner.n);
	/* " v ", without snprintf(): this runs for every entry. */
	char *e = num + sizeof(num);
	*--e = ' ';
	do {
		*--e = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	*--e = ' ';
	text_put(&ld->norm, e, (size_t)(num + sizeof(num) - e));
	if (cls_t.p) {
		text_put(&ld->norm, cls_t.p, cls_t.n);
		text_put(&ld->norm, " ", 1);
	}
	text_put(&ld->norm, type_t.p, ld->entry.len - (size_t)(type_t.p - s));
	return 0;
}

/*
 * The fast path.  ldns_rr_new_frm_str() costs most of a load (it allocates
 * every field, and checks that a name is absolute by printing it), so the
 * entries most zones are made of are read here: owner "@", a name of plain
 * characters (letters, digits, '-', '_', '*', '/'), relative or absolute,
 * or inherited; class IN or none; type A, AAAA, NS, CNAME, PTR, MX, SRV,
 * TXT or CAA with plain fields.  Anything else (escapes, other types and
 * classes, a field missing or too many, a name too long) returns 0 and goes
 * to ldns as before, and so does an entry that zone_add_rr() refuses: the
 * accepted entries and every message stay as they were.  normalise() has
 * run first, so the TTL is a decimal number and every number fits its field.
 * tests/unit/test_zone_fast.c compares both paths on whole zones.
 */
#define FAST_RDATA_MAX 65535

static const uint8_t plain_char[256] = {
	['-'] = 1,	   ['_'] = 1,	      ['*'] = 1,	 ['/'] = 1,
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/*
 * The wire form in out (DNS_NAME_MAX bytes) of a name of plain characters,
 * "@" for the origin; without a final dot it is relative to the origin.
 * Returns its length, or 0 for anything else, which is ldns's to read.
 */
static size_t fast_name(const char *p, size_t n, const uint8_t *origin, size_t olen, uint8_t *out)
{
	size_t o = 0, i = 0;

	if (n == 1 && p[0] == '@') {
		memcpy(out, origin, olen);
		return olen;
	}
	while (i < n) {
		size_t start = i;
		while (i < n && p[i] != '.') {
			if (!plain_char[(uint8_t)p[i]])
				return 0;
			i++;
		}
		size_t l = i - start;
		if (l == 0 || l > 63 || o + 1 + l + 1 > DNS_NAME_MAX)
			return 0;
		out[o] = (uint8_t)l;
		memcpy(out + o + 1, p + start, l);
		o += 1 + l;
		if (i++ == n - 1) {
			out[o++] = 0; /* a final dot: absolute */
			return o;
		}
	}
	if (o + olen > DNS_NAME_MAX)
		return 0;
	memcpy(out + o, origin, olen);
	return o + olen;
}

/* A decimal number of at most max, as one token. */
static bool fast_uint(const struct tok *t, uint64_t max, uint64_t *v)
{
	return uint_parse(t->p, t->n, max, v) == 0;
}

/*
 * A character-string (RFC 1035 3.3) from a token: a plain word, or a quoted
 * string of printable characters without escapes, quotes, ';' or
 * parentheses.  Appends to rd at *len (length byte first when counted);
 * false when the token is anything else.
 */
static bool fast_str(const struct tok *t, uint8_t *rd, size_t *len, bool counted)
{
	const char *p = t->p;
	size_t n = t->n;

	if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
		p++;
		n -= 2;
		for (size_t i = 0; i < n; i++)
			if (p[i] < 0x20 || p[i] > 0x7e || p[i] == '"' || p[i] == '\\' ||
			    p[i] == ';' || p[i] == '(' || p[i] == ')')
				return false;
	} else {
		for (size_t i = 0; i < n; i++)
			if (!plain_char[(uint8_t)p[i]] && p[i] != '.' && p[i] != '=' &&
			    p[i] != ':' && p[i] != '+' && p[i] != ',')
				return false;
	}
	if (n == 0 || n > 255 || *len + counted + n > FAST_RDATA_MAX)
		return false;
	if (counted)
		rd[(*len)++] = (uint8_t)n;
	memcpy(rd + *len, p, n);
	*len += n;
	return true;
}

/*
 * Read the normalised entry s and add its RR to the zone.  prev (prev_len
 * bytes, 0 when unknown) is the owner an entry without one inherits; it is
 * updated.  Returns 1 when the entry was added, 0 when it is ldns's to read.
 */
static int fast_rr(struct load *ld, const char *s, const uint8_t *origin, size_t olen,
		   uint8_t *prev, size_t *prev_len)
{
	uint8_t owner[DNS_NAME_MAX], *rd = ld->fast_rd;
	size_t owner_len, pos = 0, len = 0;
	uint64_t ttl, v;
	struct tok t;
	char ip[64];

	bool has_owner = s[0] != ' ';
	if (has_owner) {
		if (!next_tok(s, &pos, &t) ||
		    !(owner_len = fast_name(t.p, t.n, origin, olen, owner)))
			return 0;
	} else {
		if (!*prev_len)
			return 0;
		owner_len = *prev_len;
		memcpy(owner, prev, owner_len);
	}
	if (!next_tok(s, &pos, &t) || !fast_uint(&t, UINT32_MAX, &ttl) || !next_tok(s, &pos, &t))
		return 0;
	if (t.n == 2 && strncasecmp(t.p, "IN", 2) == 0 && !next_tok(s, &pos, &t))
		return 0;
	uint16_t type = fast_type(&t);
	if (!type || !next_tok(s, &pos, &t))
		return 0;
	size_t nl;
	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (!tok_str(&t, ip, sizeof(ip)) ||
		    inet_pton(type == DNS_T_A ? AF_INET : AF_INET6, ip, rd) != 1)
			return 0;
		len = type == DNS_T_A ? 4 : 16;
		break;
	case DNS_T_SRV: /* priority, weight, port, then the target as for MX */
	case DNS_T_MX:
		for (size_t i = 0; i < (type == DNS_T_SRV ? 3u : 1u); i++) {
			if (!fast_uint(&t, UINT16_MAX, &v) || !next_tok(s, &pos, &t))
				return 0;
			dns_put16(rd + len, (uint16_t)v);
			len += 2;
		}
		/* fall through */
	case DNS_T_NS:
	case DNS_T_CNAME:
	case DNS_T_PTR:
		if (!(nl = fast_name(t.p, t.n, origin, olen, rd + len)))
			return 0;
		len += nl;
		break;
	case DNS_T_TXT:
		do {
			if (!fast_str(&t, rd, &len, true))
				return 0;
		} while (next_tok(s, &pos, &t));
		break;
	case 257: /* CAA, RFC 8659 4.1: flags, tag (letters and digits), value */
		if (!fast_uint(&t, UINT8_MAX, &v) || !next_tok(s, &pos, &t) || t.n == 0 ||
		    t.n > 255)
			return 0;
		rd[len++] = (uint8_t)v;
		rd[len++] = (uint8_t)t.n;
		for (size_t i = 0; i < t.n; i++) {
			if (!isalnum((unsigned char)t.p[i]))
				return 0;
			rd[len++] = (uint8_t)t.p[i];
		}
		/* ldns takes the value quoted only. */
		if (!next_tok(s, &pos, &t) || t.p[0] != '"' || !fast_str(&t, rd, &len, false))
			return 0;
		break;
	default:
		return 0;
	}
	if (next_tok(s, &pos, &t))
		return 0; /* more than the type takes: ldns says what it makes of it */
	if (zone_add_rr(ld->z, owner, type, DNS_C_IN, (uint32_t)ttl, rd, (uint16_t)len) < 0)
		return 0; /* ldns reads it again, and add_rr() names the error */
	if (has_owner) {
		memcpy(prev, owner, owner_len);
		*prev_len = owner_len;
	}
	ld->nfast++;
	return 1;
}

/* Hand one parsed RR to the zone, translating its refusals into messages. */
static int add_rr(struct load *ld, const char *file, int line, const ldns_rr *rr)
{
	const ldns_rdf *owner = ldns_rr_owner(rr);
	char name[1024];

	if (!owner || !ldns_dname_absolute(owner)) {
		fail(ld, file, line, "owner name is not absolute");
		return GSLB_ENAME;
	}
	ldns_buffer_clear(ld->rdata);
	ldns_status s = ldns_rr_rdata2buffer_wire(ld->rdata, rr);
	if (s != LDNS_STATUS_OK) {
		fail(ld, file, line, "cannot encode rdata: %s", ldns_msg(s));
		return GSLB_EPARSE;
	}
	size_t rdlen = ldns_buffer_position(ld->rdata);
	if (rdlen > 65535) {
		fail(ld, file, line, "rdata longer than 65535 bytes");
		return GSLB_ETOOBIG;
	}
	int ret = zone_add_rr(ld->z, ldns_rdf_data(owner), (uint16_t)ldns_rr_get_type(rr),
			      (uint16_t)ldns_rr_get_class(rr), ldns_rr_ttl(rr),
			      ldns_buffer_begin(ld->rdata), (uint16_t)rdlen);
	switch (ret) {
	case 0:
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA)
			return soa_seen(ld, file, line, owner);
		return 0;
	case GSLB_ECLASS: {
		char *cls = ldns_rr_class2str(ldns_rr_get_class(rr));
		fail(ld, file, line, "record class %s is not IN", cls ? cls : "?");
		free(cls);
		break;
	}
	case GSLB_EOUTOFZONE: {
		char apex[1024];
		name_text(name, sizeof(name), owner);
		dns_name_to_str(apex, sizeof(apex), ld->z->apex);
		fail(ld, file, line, "%s is outside the zone %s", name, apex);
		break;
	}
	default:
		name_text(name, sizeof(name), owner);
		fail(ld, file, line, "%s: %s", name, gslb_strerror(ret));
		break;
	}
	return ret;
}

static int read_file(struct load *ld, FILE *fp, const char *shown, const ldns_rdf *origin0,
		     uint32_t ttl0, int depth);

/* Open a zone file or an included one for reading; only regular files qualify. */
static int open_file(const char *path, FILE **fpp, struct stat *st)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -errno;
	int ret = 0;
	if (fstat(fileno(fp), st) < 0)
		ret = -errno;
	else if (!S_ISREG(st->st_mode))
		ret = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	if (ret < 0) {
		fclose(fp);
		return ret;
	}
	*fpp = fp;
	return 0;
}

/* $INCLUDE file [origin]: the file is relative to the zone directory, not to the includer. */
static int include(struct load *ld, const char *file, int line, char *args, const ldns_rdf *origin,
		   uint32_t ttl, int depth)
{
	char *name = next_word(&args);
	char *oname = next_word(&args);
	ldns_rdf *inc_origin = NULL;
	char *path = NULL;
	FILE *fp = NULL;
	struct stat st;
	int ret;

	if (!name || !*name) {
		fail(ld, file, line, "$INCLUDE needs a file name");
		return GSLB_EPARSE;
	}
	if (next_word(&args)) {
		fail(ld, file, line, "$INCLUDE takes a file name and an optional origin");
		return GSLB_EPARSE;
	}
	if (depth + 1 > INCLUDE_DEPTH_MAX) {
		fail(ld, file, line, "$INCLUDE nested more than %d deep", INCLUDE_DEPTH_MAX);
		return GSLB_EPARSE;
	}
	if (oname) {
		inc_origin = origin_parse(oname, origin);
		if (!inc_origin) {
			fail(ld, file, line, "$INCLUDE: invalid origin \"%s\"", oname);
			return GSLB_EPARSE;
		}
	}
	if (name[0] == '/' || !ld->dir || !*ld->dir) {
		path = gslb_strdup(name);
	} else {
		size_t n = strlen(ld->dir) + strlen(name) + 2;
		path = gslb_malloc(n);
		snprintf(path, n, "%s/%s", ld->dir, name);
	}
	ret = open_file(path, &fp, &st);
	if (ret < 0) {
		/* Name the line that asked for it: the user has to fix that line or the file. */
		fail(ld, file, line, "$INCLUDE %s: %s", name,
		     ret == -EINVAL ? "not a regular file" : gslb_strerror(ret));
		goto out;
	}
	ret = read_file(ld, fp, name, inc_origin ? inc_origin : origin, ttl, depth + 1);
	fclose(fp);
out:
	free(path);
	ldns_rdf_deep_free(inc_origin);
	return ret;
}

/* Directives ldns leaves to us, or that we take over to get them right. */
static int directive(struct load *ld, const char *file, int line, char *text, ldns_rdf **origin,
		     uint32_t *ttl, int depth)
{
	char *args = text;
	char *kw = next_word(&args);
	char *arg;

	if (strcasecmp(kw, "$TTL") == 0) {
		arg = next_word(&args);
		if (!arg || next_word(&args)) {
			fail(ld, file, line, "$TTL takes one value");
			return GSLB_EPARSE;
		}
		uint64_t v;
		int r = period_parse(arg, strlen(arg), &v);
		if (r == -ERANGE) {
			fail(ld, file, line, "$TTL %s is out of range (0 to 4294967295)", arg);
			return -ERANGE;
		}
		if (r < 0) {
			fail(ld, file, line, "$TTL: invalid value \"%s\"", arg);
			return GSLB_EPARSE;
		}
		ttl_warn(file, line, "$TTL", v);
		*ttl = (uint32_t)v;
		return 0;
	}
	if (strcasecmp(kw, "$ORIGIN") == 0) {
		arg = next_word(&args);
		if (!arg || next_word(&args)) {
			fail(ld, file, line, "$ORIGIN takes one name");
			return GSLB_EPARSE;
		}
		ldns_rdf *o = origin_parse(arg, *origin);
		if (!o) {
			fail(ld, file, line, "$ORIGIN: invalid name \"%s\"", arg);
			return GSLB_EPARSE;
		}
		ldns_rdf_deep_free(*origin);
		*origin = o;
		return 0;
	}
	if (strcasecmp(kw, "$INCLUDE") == 0) {
		/*
		 * RFC 1035 5.1: the origin and current owner revert afterwards;
		 * the included file gets copies, so ours are untouched.
		 */
		return include(ld, file, line, args, *origin, *ttl, depth);
	}
	fail(ld, file, line, "unsupported directive %s", kw);
	return GSLB_EPARSE;
}

/*
 * Read one file.  Entries are put together here (join_line(): comments,
 * parentheses over several lines, quoting), so that the line an entry
 * starts on is known and what ldns gets wrong is mended first
 * (normalise()); directives are handled here too.  fast_rr() reads the
 * common entries, ldns the others, each from its text (owner inheritance
 * through prev, relative names against origin).
 */
static int read_file(struct load *ld, FILE *fp, const char *shown, const ldns_rdf *origin0,
		     uint32_t ttl0, int depth)
{
	ldns_rdf *origin = ldns_rdf_clone(origin0);
	ldns_rdf *prev = NULL;
	/* The previous owner as the fast path keeps it; prev_stale: ldns's prev is older. */
	uint8_t fprev[DNS_NAME_MAX];
	size_t fprev_len = 0;
	bool prev_stale = false;
	uint32_t ttl = ttl0;
	char *buf = NULL;
	size_t cap = 0;
	int line = 0, start = 0, parens = 0;
	int ret = 0;

	for (;;) {
		errno = 0;
		ssize_t n = getline(&buf, &cap, fp);
		if (n < 0) {
			if (ferror(fp)) {
				ret = errno ? -errno : -EIO;
				fail(ld, shown, line, "read error: %s", gslb_strerror(ret));
				goto out;
			}
			break;
		}
		line++;
		if (memchr(buf, 0, (size_t)n)) {
			ret = GSLB_EPARSE;
			fail(ld, shown, line, "syntax error: NUL byte in the file");
			goto out;
		}
		if (parens == 0) {
			if (line_is_blank(buf))
				continue;
			if (buf[0] == '$') {
				ret = directive(ld, shown, line, buf, &origin, &ttl, depth);
				if (ret < 0)
					goto out;
				continue;
			}
			start = line;
			ld->entry.len = 0;
		}
		size_t len = (size_t)n;
		if (len && buf[len - 1] == '\n')
			len--;
		ret = join_line(ld, shown, line, buf, len, &ld->entry, &parens);
		if (ret < 0)
			goto out;
		if (parens > 0)
			continue;
		ret = normalise(ld, shown, start, ttl);
		if (ret == 1)
			continue;
		if (ret < 0)
			goto out;
		if (ld->fast && fast_rr(ld, ld->norm.s, ldns_rdf_data(origin),
					ldns_rdf_size(origin), fprev, &fprev_len)) {
			prev_stale = true;
			continue;
		}
		if (prev_stale && fprev_len) {
			/* ldns's previous owner is behind: the fast path read the last ones. */
			ldns_rdf_deep_free(prev);
			prev = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, fprev_len, fprev);
		}
		prev_stale = false;
		ldns_rr *rr = NULL;
		ldns_status s = ldns_rr_new_frm_str(&rr, ld->norm.s, ttl, origin, &prev);
		if (prev && ldns_rdf_size(prev) <= DNS_NAME_MAX) {
			fprev_len = ldns_rdf_size(prev);
			memcpy(fprev, ldns_rdf_data(prev), fprev_len);
		}
		if (s != LDNS_STATUS_OK) {
			ldns_rr_free(rr);
			ret = GSLB_EPARSE;
			fail(ld, shown, start, "syntax error: %s", ldns_msg(s));
			goto out;
		}
		ret = add_rr(ld, shown, start, rr);
		ldns_rr_free(rr);
		if (ret < 0)
			goto out;
	}
	if (parens > 0) {
		ret = GSLB_EPARSE;
		fail(ld, shown, start, "syntax error: a parenthesis opened here is never closed");
	}
out:
	free(buf);
	ldns_rdf_deep_free(origin);
	ldns_rdf_deep_free(prev);
	return ret;
}

/*
 * The zone a file holds: its name without a trailing ".zone", made absolute.
 * Returns a new dname, or NULL if the name is not a valid domain name.
 */
static ldns_rdf *zone_name_of(const char *fname)
{
	const char *base = strrchr(fname, '/');
	base = base ? base + 1 : fname;
	size_t n = strlen(base);
	if (n > 5 && strcmp(base + n - 5, ".zone") == 0)
		n -= 5;
	if (n == 0 || n > 1024)
		return NULL;
	char name[1030];
	memcpy(name, base, n);
	name[n] = 0;
	if (!name_is_absolute(name)) {
		name[n] = '.';
		name[n + 1] = 0;
	}
	return ldns_dname_new_frm_str(name);
}

int zone_load_file(const char *dir, const char *fname, zone_t **out, char *err, size_t errlen)
{
	return zone_load_file_ex(dir, fname, true, NULL, out, err, errlen);
}

int zone_load_file_ex(const char *dir, const char *fname, bool fast, size_t *nfast, zone_t **out,
		      char *err, size_t errlen)
{
	struct load ld = { .dir = dir, .err = err, .errlen = errlen, .fast = fast };
	ldns_rdf *apex = NULL;
	char *path = NULL;
	struct stat st;
	int ret;

	*out = NULL;
	err[0] = 0;
	if (fname[0] == '/' || !dir || !*dir) {
		path = gslb_strdup(fname);
	} else {
		size_t n = strlen(dir) + strlen(fname) + 2;
		path = gslb_malloc(n);
		snprintf(path, n, "%s/%s", dir, fname);
	}
	apex = zone_name_of(fname);
	if (!apex) {
		ret = GSLB_ENAME;
		fail(&ld, fname, 0, "the file name is not a valid zone name");
		goto out;
	}
	ld.z = zone_new(ldns_rdf_data(apex));
	if (!ld.z) {
		ret = GSLB_ENAME;
		fail(&ld, fname, 0, "the file name is not a valid zone name");
		goto out;
	}
	ld.rdata = ldns_buffer_new(LDNS_MAX_PACKETLEN);
	if (!ld.rdata) {
		ret = -ENOMEM;
		fail(&ld, fname, 0, "%s", strerror(ENOMEM));
		goto out;
	}
	if (fast)
		ld.fast_rd = gslb_malloc(FAST_RDATA_MAX);
	FILE *fp = NULL;
	ret = open_file(path, &fp, &st);
	if (ret < 0) {
		fail(&ld, fname, 0, "cannot open: %s",
		     ret == -EINVAL ? "not a regular file" : gslb_strerror(ret));
		goto out;
	}
	ret = read_file(&ld, fp, fname, apex, DEFAULT_TTL_S, 0);
	fclose(fp);
	if (ret < 0)
		goto out;

	char msg[512];
	msg[0] = 0;
	ret = zone_finish(ld.z, msg, sizeof(msg));
	if (ret < 0) {
		fail(&ld, fname, 0, "%s", msg[0] ? msg : gslb_strerror(ret));
		goto out;
	}
	ld.z->file = gslb_strdup(path);
	ld.z->mtime = st.st_mtime;
	ld.z->loaded = time(NULL);

	char zname[1024];
	dns_name_to_str(zname, sizeof(zname), ld.z->apex);
	log_info("zone %s: loaded %u records, serial %u from %s", zname, ld.z->nrecords,
		 ld.z->serial, path);
	*out = ld.z;
	ld.z = NULL;
out:
	zone_unref(ld.z);
	if (ld.rdata)
		ldns_buffer_free(ld.rdata);
	if (nfast)
		*nfast = ld.nfast;
	free(ld.fast_rd);
	free(ld.entry.s);
	free(ld.norm.s);
	ldns_rdf_deep_free(apex);
	free(path);
	return ret;
}

bool zone_file_ignored(const char *name)
{
	static const char *const suffixes[] = { "~", ".swp", ".swx", ".tmp", ".bak" };
	size_t n = strlen(name);
	if (name[0] == '.')
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t l = strlen(suffixes[i]);
		if (n >= l && strcmp(name + n - l, suffixes[i]) == 0)
			return true;
	}
	/* dpkg's .dpkg-old, .dpkg-dist, .dpkg-new, .dpkg-tmp ... */
	return strstr(name, ".dpkg-") != NULL;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The zone of this name in prev, or NULL. */
static zone_t *prev_zone(const zone_set_t *prev, const char *fname)
{
	if (!prev)
		return NULL;
	ldns_rdf *apex = zone_name_of(fname);
	if (!apex)
		return NULL;
	zone_t *z = NULL;
	if (dns_name_len(ldns_rdf_data(apex), ldns_rdf_size(apex)) > 0) {
		uint8_t lname[DNS_NAME_MAX];
		size_t len = dns_name_lower(lname, ldns_rdf_data(apex));
		z = zone_set_get(prev, lname, len);
	}
	ldns_rdf_deep_free(apex);
	return z;
}

int zone_load_dir(const char *dir, const zone_set_t *prev, zone_set_t **out, unsigned *failed)
{
	return zone_load_dir_report(dir, prev, out, failed, NULL, NULL);
}

int zone_load_dir_report(const char *dir, const zone_set_t *prev, zone_set_t **out,
			 unsigned *failed, zone_fail_cb fail_cb, void *arg)
{
	char **names = NULL;
	size_t count = 0, cap = 0;
	unsigned nfail = 0;
	int ret = 0;

	*out = NULL;
	if (failed)
		*failed = 0;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	/* Read every name first and load in sorted order: stable logs and duplicate handling. */
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno) {
				ret = -errno;
				goto out;
			}
			break;
		}
		if (zone_file_ignored(de->d_name))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			names = gslb_realloc(names, cap * sizeof(*names));
		}
		names[count++] = gslb_strdup(de->d_name);
	}
	if (count)
		gslb_sort(names, count, sizeof(*names), str_cmp);

	zone_set_t *set = zone_set_new();
	for (size_t i = 0; i < count; i++) {
		char err[1024];
		zone_t *z = NULL;
		int r = zone_load_file(dir, names[i], &z, err, sizeof(err));
		if (r < 0) {
			nfail++;
			log_err("%s", err);
			if (fail_cb)
				fail_cb(arg, names[i], err);
			zone_t *old = prev_zone(prev, names[i]);
			if (old) {
				char zname[1024];
				dns_name_to_str(zname, sizeof(zname), old->apex);
				log_warn("zone %s: the previous version (serial %u) keeps serving",
					 zname, old->serial);
				z = zone_ref(old);
			}
		}
		if (!z)
			continue;
		if (zone_set_add(set, z) == -EEXIST) {
			char zname[1024];
			dns_name_to_str(zname, sizeof(zname), z->apex);
			char msg[1400];
			snprintf(msg, sizeof(msg),
				 "%s: zone %s is already loaded from another file, ignored",
				 names[i], zname);
			log_err("%s", msg);
			if (fail_cb)
				fail_cb(arg, names[i], msg);
			nfail++;
		}
		zone_unref(z);
	}
	zone_set_finish(set);
	*out = set;
	if (failed)
		*failed = nfail;
out:
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return ret;
}
