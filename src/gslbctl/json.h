/* SPDX-License-Identifier: MIT */
/* A small JSON writer and a bounded JSON parser for gslbctl's output, export and apply. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- writer: pretty-printed, two-space indent, keys in the order written ---- */

#define JW_DEPTH_MAX 32

typedef struct jw {
	FILE *f;
	int depth;
	bool first[JW_DEPTH_MAX]; /* no element written yet at this depth */
	bool after_key;		  /* the next value follows "key": on the same line */
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

/* ---- parser ---- */

enum json_type {
	JSON_NULL = 0,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

#define JSON_DEPTH_MAX 32
#define JSON_INPUT_MAX (64u << 20) /* bytes */

/*
 * A parsed value.  text holds a string's decoded UTF-8 (no NUL inside), a
 * number's literal text (validated JSON number syntax), or "true"/"false".
 * Arrays and objects have n items; objects also have keys (no duplicates).
 */
typedef struct json {
	uint8_t type; /* enum json_type */
	char *text;
	size_t n;
	struct json *items;
	char **keys;
} json_t;

/**
 * Parse len bytes of one JSON document.  On error returns -1 with a message
 * naming the line and column in err.  Caller frees *out with json_free().
 */
int json_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen);
void json_free(json_t *v);
/** The member key of object obj, or NULL (also when obj is not an object). */
const json_t *json_get(const json_t *obj, const char *key);
/** "string", "number" ... for messages. */
const char *json_type_name(int type);
