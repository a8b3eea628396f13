/* SPDX-License-Identifier: MIT */
/* The JSON of gslbctl and of a cluster's pools (src/cfg/json.c): a streaming writer, and jansson as
 * the reader. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * ---- writer: pretty-printed with a two-space indent, or compact (no spaces
 * or newlines), keys in the order written ----
 */

#define JW_DEPTH_MAX 32

typedef struct jw {
	FILE *f;
	int depth;
	bool first[JW_DEPTH_MAX]; /* no element written yet at this depth */
	bool after_key;		  /* the next value follows "key": on the same line */
	bool compact;		  /* set after jw_init(): no spaces or newlines */
} jw_t;

void jw_init(jw_t *w, FILE *f);
void jw_obj_begin(jw_t *w);
void jw_obj_end(jw_t *w);
void jw_arr_begin(jw_t *w);
void jw_arr_end(jw_t *w);
void jw_key(jw_t *w, const char *key);
void jw_str(jw_t *w, const char *s); /* NULL writes null */
void jw_int(jw_t *w, int64_t v);
/** The shortest plain decimal that reads back as the same double (json_double_fmt()). */
void jw_double(jw_t *w, double v);
/** A number already in JSON syntax (e.g. "0.5"). */
void jw_number_text(jw_t *w, const char *text);
void jw_bool(jw_t *w, bool v);
void jw_null(jw_t *w);
/** Finish the document with a newline. */
void jw_end(jw_t *w);

/*
 * Room for any finite double as a plain decimal: 309 integer digits, or "0."
 * with 323 zeros and 17 digits, a sign and the NUL.
 */
#define JSON_DOUBLE_LEN 352

/**
 * Write v into buf (len >= JSON_DOUBLE_LEN, else the text is cut) as the
 * shortest plain decimal that reads back as the same double: never an
 * exponent ("50", not "5e+01"; "0.000001", not "1e-06"), as JSON numbers,
 * LAT,LON locations and human output all want.  Non-finite values write "0".
 */
void json_double_fmt(char *buf, size_t len, double v);

/* ---- reader: jansson, with messages that say where ---- */

struct json_t; /* jansson's, from <jansson.h> */

#define JSON_INPUT_MAX (1u << 30) /* bytes */

/**
 * Parse len bytes of one JSON document with jansson: a key repeated in an
 * object is refused (jansson would keep the last one), a UTF-8 byte order mark
 * at the start is skipped (RFC 8259 8.1), any value may be at the top.  On
 * error returns -1 with one line in err: "line L column C: PATH: what" (PATH,
 * "pools[3].check", left out at the top; lines and columns count characters
 * from 1), or for a file that is no JSON at all a message without a place.
 * Caller releases *out with json_decref().
 */
int cfg_json_load(const char *buf, size_t len, struct json_t **out, char *err, size_t errlen);
