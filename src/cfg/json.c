/* SPDX-License-Identifier: MIT */
/* The JSON of gslbctl and of a cluster's pools: a streaming writer, and jansson as the reader. */

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/json.h"

/*
 * ---- writer ----
 *
 * Kept rather than jansson's json_dumps(), measured on the export of 100,000
 * pools with checks (bench/scale.py's pools with a 0.1 s timeout and some
 * locations: 90 MB of JSON; best of 5 runs on 2 cores, the configuration
 * already loaded): this writer streams each value as it comes, 0.57 s and no
 * memory beyond the configuration (97 MiB in all); building a jansson tree
 * and dumping it with JSON_INDENT(2) took 1.34 s (0.48 s to build, 0.86 s to
 * dump) and 607 MiB.  jansson also writes a double with 17 digits ("timeout":
 * 0.10000000000000001 in all 100,000 pools, 1.6 MB more) or, with
 * JSON_REAL_PRECISION(15), digits that may not read back (0.1 + 0.2 as 0.3),
 * and writes exponents (1e-6) and "50.0" where json_double_fmt() writes the
 * shortest plain decimal that reads back ("0.000001", "50").
 */

void jw_init(jw_t *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->first[0] = true;
}

static void indent(jw_t *w)
{
	if (w->compact)
		return;
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
	fputs(w->compact ? ":" : ": ", w->f);
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

/* ---- reader ---- */

/*
 * jansson reports a parse error as a byte offset, a line, a column and a text
 * that quotes at most 20 bytes of the token.  In a file of 100,000 pools on
 * one line (as json.dump() writes it) the line says nothing; the JSON path
 * ("pools[7].check") says where.  locate() finds it by scanning again the
 * bytes before the error offset, which jansson has read as valid JSON text:
 * all it follows is the open objects and arrays, the last key of each object
 * and the index in each array.  It runs only for a message.
 */
typedef struct frame {
	bool object;
	bool in_value;	 /* object: past its key's ':'; array: an element has begun */
	size_t index;	 /* array: the element's index */
	const char *key; /* object: its last key as written, escapes kept; keylen bytes */
	size_t keylen;
} frame_t;

typedef struct place {
	frame_t *frames; /* the open containers, outermost first; owned */
	size_t depth, cap;
	size_t token; /* offset of the last token begun before the end */
	bool any;     /* there is such a token */
} place_t;

/* A value begins: in an array, it is the element at the current index. */
static void value_begins(place_t *pl)
{
	if (pl->depth && !pl->frames[pl->depth - 1].object)
		pl->frames[pl->depth - 1].in_value = true;
}

static void locate(const char *buf, size_t end, place_t *pl)
{
	static const char delims[] = " \t\n\r,:[]{}\"";
	size_t i = 0, j;

	while (i < end) {
		frame_t *top = pl->depth ? &pl->frames[pl->depth - 1] : NULL;
		char c = buf[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			i++;
			continue;
		}
		pl->token = i;
		pl->any = true;
		switch (c) {
		case '{':
		case '[':
			value_begins(pl);
			if (pl->depth == pl->cap) {
				pl->cap = pl->cap ? pl->cap * 2 : 16;
				pl->frames = gslb_realloc(pl->frames,
							  pl->cap * sizeof(*pl->frames));
			}
			pl->frames[pl->depth++] = (frame_t){ .object = c == '{' };
			i++;
			break;
		case '}':
		case ']':
			if (pl->depth)
				pl->depth--;
			i++;
			break;
		case ',':
			if (top) {
				top->in_value = false;
				top->index++;
			}
			i++;
			break;
		case ':':
			if (top)
				top->in_value = true;
			i++;
			break;
		case '"':
			for (j = i + 1; j < end && buf[j] != '"'; j++)
				if (buf[j] == '\\')
					j++;
			if (top && top->object && !top->in_value) {
				top->key = buf + i + 1;
				top->keylen = (j < end ? j : end) - i - 1;
			} else {
				value_begins(pl);
			}
			i = j + 1;
			break;
		default:
			/* A number, true, false, null, or the bytes jansson stopped at. */
			value_begins(pl);
			while (i < end && !memchr(delims, buf[i], sizeof(delims) - 1))
				i++;
		}
	}
}

/* "pools[3].members[0].weight": the keys and indexes of the open containers. */
static void path_fmt(const place_t *pl, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t d = 0; d < pl->depth && n < len; d++) {
		const frame_t *f = &pl->frames[d];
		int w;
		if (!f->in_value)
			break;
		if (f->object)
			w = snprintf(buf + n, len - n, "%s%.*s", n ? "." : "",
				     (int)(f->keylen < 64 ? f->keylen : 64), f->key ? f->key : "");
		else
			w = snprintf(buf + n, len - n, "[%zu]", f->index);
		n += w > 0 ? (size_t)w : 0;
	}
}

/* Line and column of offset off, from 1; a column counts characters, not bytes. */
static void line_col(const char *buf, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

/*
 * The message for an error at offset at < len (jansson's, or code -1: a NUL
 * byte): where it is and what, in words that name no jansson flag.  Most
 * errors are put at the token they were found in (the key repeated, the
 * number too large, the '[' never closed); a byte that is not UTF-8 at itself.
 */
static void explain(const char *buf, size_t len, size_t at, int code, const char *text, char *err,
		    size_t errlen)
{
	static const char bom[] = "\xef\xbb\xbf";
	place_t pl = { 0 };
	char path[256], what[200];
	size_t where;
	unsigned line, col;

	locate(buf, at, &pl);
	where = pl.any ? pl.token : at;
	snprintf(what, sizeof(what), "%s", text);
	switch (code) {
	case -1:
		snprintf(what, sizeof(what), "NUL byte");
		where = at;
		break;
	case json_error_invalid_utf8:
		snprintf(what, sizeof(what), "invalid UTF-8 (byte 0x%02x)",
			 at < len ? (unsigned char)buf[at] : 0);
		where = at;
		break;
	case json_error_duplicate_key:
		/* The key just read is the top object's last key, not part of the path. */
		if (pl.depth && pl.frames[pl.depth - 1].key) {
			const frame_t *f = &pl.frames[pl.depth - 1];
			snprintf(what, sizeof(what), "duplicate key \"%.*s\"",
				 (int)(f->keylen < 64 ? f->keylen : 64), f->key);
		}
		break;
	case json_error_numeric_overflow:
		snprintf(what, sizeof(what), "%.*s is out of range",
			 (int)(at - where < 64 ? at - where : 64), buf + where);
		break;
	case json_error_null_character:
		snprintf(what, sizeof(what), "\\u0000 is not allowed in a string");
		break;
	case json_error_stack_overflow:
		/* A path of 2048 "[0]" says nothing more than the column. */
		pl.depth = 0;
		break;
	default:
		if (pl.any && at - where >= 3 && memcmp(buf + where, bom, 3) == 0)
			snprintf(what, sizeof(what),
				 "a byte order mark (U+FEFF) not at the start of the file");
	}
	path_fmt(&pl, path, sizeof(path));
	line_col(buf, where, &line, &col);
	snprintf(err, errlen, "line %u column %u: %s%s%s", line, col, path, *path ? ": " : "",
		 what);
	free(pl.frames);
}

int cfg_json_load(const char *buf, size_t len, json_t **out, char *err, size_t errlen)
{
	const unsigned char *u = (const unsigned char *)buf;
	const char *nul;
	json_error_t e;
	size_t i, at;

	*out = NULL;
	if (len > JSON_INPUT_MAX) {
		snprintf(err, errlen, "larger than %u bytes", JSON_INPUT_MAX);
		return -1;
	}
	/*
	 * RFC 8259 8.1: JSON text is UTF-8, and a parser may ignore a byte order
	 * mark, which editors on Windows write.  A file saved as UTF-16 or UTF-32
	 * starts with theirs (PowerShell's '>' writes UTF-16): say so rather than
	 * "invalid UTF-8".
	 */
	if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
		buf += 3;
		len -= 3;
	} else if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff) ||
				(len >= 4 && !u[0] && !u[1] && u[2] == 0xfe && u[3] == 0xff))) {
		snprintf(err, errlen, "UTF-16 or UTF-32 text; JSON text is UTF-8 (RFC 8259 8.1)");
		return -1;
	}
	for (i = 0;
	     i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'); i++)
		;
	if (i == len) {
		snprintf(err, errlen, "empty, expected a JSON object");
		return -1;
	}
	/* json_loads() would end the text at a NUL byte and take anything after it. */
	*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (*out)
		return 0;
	at = e.position < 0 ? 0 : (size_t)e.position > len ? len : (size_t)e.position;
	/*
	 * JSON text never holds a NUL byte, and jansson stops just after the first
	 * one, but names it poorly ("end of file expected near end of file").
	 */
	if ((nul = memchr(buf, '\0', at < len ? at + 1 : len)))
		explain(buf, len, (size_t)(nul - buf), -1, "", err, errlen);
	else
		explain(buf, len, at, json_error_code(&e), e.text, err, errlen);
	return -1;
}
