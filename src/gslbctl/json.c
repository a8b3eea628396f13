/* SPDX-License-Identifier: MIT */
/* A small JSON writer and a bounded JSON parser for gslbctl's output, export and apply. */

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "json.h"

/* ---- writer ---- */

void jw_init(jw_t *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->first[0] = true;
}

static void indent(jw_t *w)
{
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

/* Separator and indentation before a value or key. */
static void pre(jw_t *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth])
			fputc(',', w->f);
		indent(w);
	}
	w->first[w->depth] = false;
}

static void jopen(jw_t *w, char c)
{
	pre(w);
	fputc(c, w->f);
	if (w->depth + 1 < JW_DEPTH_MAX)
		w->depth++;
	w->first[w->depth] = true;
}

static void jclose(jw_t *w, char c)
{
	bool empty = w->first[w->depth];
	if (w->depth > 0)
		w->depth--;
	if (!empty)
		indent(w);
	fputc(c, w->f);
}

void jw_obj_begin(jw_t *w)
{
	jopen(w, '{');
}

void jw_obj_end(jw_t *w)
{
	jclose(w, '}');
}

void jw_arr_begin(jw_t *w)
{
	jopen(w, '[');
}

void jw_arr_end(jw_t *w)
{
	jclose(w, ']');
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void jw_key(jw_t *w, const char *key)
{
	pre(w);
	put_string(w->f, key);
	fputs(": ", w->f);
	w->after_key = true;
}

void jw_str(jw_t *w, const char *s)
{
	if (!s) {
		jw_null(w);
		return;
	}
	pre(w);
	put_string(w->f, s);
}

void jw_int(jw_t *w, int64_t v)
{
	pre(w);
	fprintf(w->f, "%lld", (long long)v);
}

void json_double_fmt(char *buf, size_t len, double v)
{
	char e[40], digits[24], *p;
	size_t n = 0, o = 0;
	int exp10;

	if (!isfinite(v)) {
		snprintf(buf, len, "0");
		return;
	}
	if (len < JSON_DOUBLE_LEN) {
		/* A short buffer gets a cut copy (callers use JSON_DOUBLE_LEN). */
		char big[JSON_DOUBLE_LEN];
		json_double_fmt(big, sizeof(big), v);
		if (len) {
			size_t cut = strnlen(big, len - 1);
			memcpy(buf, big, cut);
			buf[cut] = '\0';
		}
		return;
	}
	/* The fewest significant digits that read back as v (17 always do). */
	for (int prec = 0; prec <= 16; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, v);
		if (strtod(e, NULL) == v)
			break;
	}
	/*
	 * Rewrite "[-]d[.ddd]e[+-]XX" without the exponent: gslbctl's own
	 * validators (LAT,LON in decimal degrees) and people read plain decimals,
	 * and a value must read back from what export and show print.
	 */
	p = e;
	if (*p == '-')
		buf[o++] = *p++;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && n < sizeof(digits) - 1)
			digits[n++] = *p;
	exp10 = *p == 'e' ? atoi(p + 1) : 0;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	if (exp10 < 0) {
		/* 0.000ddd */
		buf[o++] = '0';
		buf[o++] = '.';
		for (int z = -exp10 - 1; z > 0; z--)
			buf[o++] = '0';
		memcpy(buf + o, digits, n);
		o += n;
	} else if ((size_t)exp10 + 1 >= n) {
		/* ddd000 */
		memcpy(buf + o, digits, n);
		o += n;
		for (size_t z = n; z < (size_t)exp10 + 1; z++)
			buf[o++] = '0';
	} else {
		/* dd.ddd */
		memcpy(buf + o, digits, (size_t)exp10 + 1);
		o += (size_t)exp10 + 1;
		buf[o++] = '.';
		memcpy(buf + o, digits + exp10 + 1, n - (size_t)exp10 - 1);
		o += n - (size_t)exp10 - 1;
	}
	buf[o] = '\0';
}

void jw_double(jw_t *w, double v)
{
	char buf[JSON_DOUBLE_LEN];
	json_double_fmt(buf, sizeof(buf), v);
	jw_number_text(w, buf);
}

void jw_number_text(jw_t *w, const char *text)
{
	pre(w);
	fputs(text, w->f);
}

void jw_bool(jw_t *w, bool v)
{
	pre(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(jw_t *w)
{
	pre(w);
	fputs("null", w->f);
}

void jw_end(jw_t *w)
{
	fputc('\n', w->f);
	fflush(w->f);
}

/* ---- parser ---- */

typedef struct parser {
	const char *p, *start, *end;
	char *err;
	size_t errlen;
	bool failed;
} parser_t;

static void perr(parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void perr(parser_t *ps, const char *fmt, ...)
{
	if (ps->failed)
		return;
	ps->failed = true;
	unsigned line = 1, col = 1;
	for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "line %u column %u: %s", line, col, msg);
}

static void skip_ws(parser_t *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int hex4(parser_t *ps, unsigned *out)
{
	unsigned v = 0;
	if (ps->end - ps->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(char *dst, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		dst[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		dst[(*n)++] = (char)(0xc0 | (cp >> 6));
		dst[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		dst[(*n)++] = (char)(0xe0 | (cp >> 12));
		dst[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		dst[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		dst[(*n)++] = (char)(0xf0 | (cp >> 18));
		dst[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		dst[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		dst[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* Parse a string at ps->p (the opening quote); returns a malloc'd UTF-8 copy or NULL. */
static char *parse_string(parser_t *ps)
{
	/* The decoded text is never longer than the encoded one. */
	const char *q = ps->p + 1;
	while (q < ps->end && *q != '"') {
		if (*q == '\\' && q + 1 < ps->end)
			q++;
		q++;
	}
	char *out = gslb_malloc((size_t)(q - ps->p) + 1);
	size_t n = 0;

	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20) {
			perr(ps, "control character in a string");
			goto fail;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			ps->p++;
			continue;
		}
		ps->p++;
		if (ps->p >= ps->end)
			break;
		char e = *ps->p++;
		unsigned cp, lo;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			out[n++] = e;
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u':
			if (hex4(ps, &cp)) {
				perr(ps, "bad \\u escape");
				goto fail;
			}
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
					perr(ps, "unpaired surrogate");
					goto fail;
				}
				ps->p += 2;
				if (hex4(ps, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					perr(ps, "unpaired surrogate");
					goto fail;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				perr(ps, "unpaired surrogate");
				goto fail;
			}
			if (cp == 0) {
				perr(ps, "\\u0000 is not allowed");
				goto fail;
			}
			put_utf8(out, &n, cp);
			break;
		default:
			ps->p--;
			perr(ps, "bad escape \\%c", e);
			goto fail;
		}
	}
	if (ps->p >= ps->end) {
		perr(ps, "unterminated string");
		goto fail;
	}
	ps->p++;
	out[n] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

static int parse_number(parser_t *ps, json_t *v)
{
	const char *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0') {
		ps->p++;
	} else if (ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9') {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		perr(ps, "bad number");
		return -1;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			perr(ps, "bad number");
			return -1;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			perr(ps, "bad number");
			return -1;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	v->type = JSON_NUMBER;
	v->text = strndup(s, (size_t)(ps->p - s));
	if (!v->text)
		abort();
	return 0;
}

static int parse_value(parser_t *ps, json_t *v, int depth);

static int literal(parser_t *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
		ps->p += n;
		return 0;
	}
	perr(ps, "unexpected character");
	return -1;
}

static int parse_container(parser_t *ps, json_t *v, int depth, bool object)
{
	size_t cap = 0;
	char close_c = object ? '}' : ']';

	v->type = object ? JSON_OBJECT : JSON_ARRAY;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close_c) {
		ps->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(ps);
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"') {
				perr(ps, "expected a key string");
				return -1;
			}
			key = parse_string(ps);
			if (!key)
				return -1;
			if (json_get(v, key)) {
				perr(ps, "duplicate key \"%s\"", key);
				free(key);
				return -1;
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				perr(ps, "expected ':'");
				free(key);
				return -1;
			}
			ps->p++;
		}
		if (v->n == cap) {
			cap = cap ? cap * 2 : 8;
			v->items = gslb_realloc(v->items, cap * sizeof(*v->items));
			if (object)
				v->keys = gslb_realloc(v->keys, cap * sizeof(*v->keys));
		}
		json_t *item = &v->items[v->n];
		memset(item, 0, sizeof(*item));
		if (object)
			v->keys[v->n] = key;
		v->n++;
		if (parse_value(ps, item, depth + 1))
			return -1;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close_c) {
			ps->p++;
			return 0;
		}
		perr(ps, "expected ',' or '%c'", close_c);
		return -1;
	}
}

static int parse_value(parser_t *ps, json_t *v, int depth)
{
	if (depth > JSON_DEPTH_MAX) {
		perr(ps, "nested deeper than %d", JSON_DEPTH_MAX);
		return -1;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		perr(ps, "unexpected end of input");
		return -1;
	}
	switch (*ps->p) {
	case '{':
		return parse_container(ps, v, depth, true);
	case '[':
		return parse_container(ps, v, depth, false);
	case '"':
		v->type = JSON_STRING;
		v->text = parse_string(ps);
		return v->text ? 0 : -1;
	case 't':
		v->type = JSON_BOOL;
		v->text = gslb_strdup("true");
		return literal(ps, "true");
	case 'f':
		v->type = JSON_BOOL;
		v->text = gslb_strdup("false");
		return literal(ps, "false");
	case 'n':
		v->type = JSON_NULL;
		return literal(ps, "null");
	default:
		return parse_number(ps, v);
	}
}

static void value_clear(json_t *v)
{
	for (size_t i = 0; i < v->n; i++) {
		value_clear(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
}

void json_free(json_t *v)
{
	if (!v)
		return;
	value_clear(v);
	free(v);
}

int json_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen)
{
	parser_t ps = { .p = buf, .start = buf, .end = buf + len, .err = err, .errlen = errlen };
	json_t *v = gslb_calloc(1, sizeof(*v));

	*out = NULL;
	if (len > JSON_INPUT_MAX) {
		snprintf(err, errlen, "larger than %u bytes", JSON_INPUT_MAX);
		json_free(v);
		return -1;
	}
	if (parse_value(&ps, v, 0) == 0) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			perr(&ps, "trailing data after the document");
	}
	if (ps.failed) {
		json_free(v);
		return -1;
	}
	*out = v;
	return 0;
}

const json_t *json_get(const json_t *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (obj->keys[i] && strcmp(obj->keys[i], key) == 0)
			return &obj->items[i];
	return NULL;
}

const char *json_type_name(int type)
{
	static const char *const names[] = { "null",   "boolean", "number",
					     "string", "array",	  "object" };
	return type >= 0 && type <= JSON_OBJECT ? names[type] : "?";
}
