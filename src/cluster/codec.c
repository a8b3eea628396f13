/* SPDX-License-Identifier: MIT */
/* The JSON forms of etcd's gateway (README "Two or more nameservers"): request bodies, replies, the watch stream. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/etcd.h"
#include "internal.h"

const char *etcd_strerror(int err)
{
	switch (err) {
	case ETCD_EUNAVAIL:
		return "etcd unavailable";
	case ETCD_ECOMPACTED:
		return "revision compacted";
	case ETCD_EAUTH:
		return "etcd authentication failed or permission denied";
	case ETCD_ETOOBIG:
		return "etcd request too large";
	case ETCD_EREQUEST:
		return "etcd refused the request";
	default:
		return err < 0 ? strerror(-err) : "success";
	}
}

/* ---- base64 (RFC 4648 4): the gateway's form of every key and value ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd__base64_encode(const void *data, size_t n)
{
	const unsigned char *in = data;
	char *out = malloc((n + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	char *o = out;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int etcd__base64_decode(const char *s, char **out, size_t *outlen)
{
	size_t len = strlen(s);
	/* Padding is optional on input; only at the end, at most two. */
	size_t pad = 0;
	while (len > 0 && s[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if (len % 4 == 1 || (pad && (len + pad) % 4))
		return -EPROTO;
	char *buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(s[i]);
		if (v < 0) {
			free(buf);
			return -EPROTO;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (char)(acc >> bits & 0xff);
		}
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

/* ---- request bodies ---- */

char *etcd_prefix_end(const char *prefix)
{
	char *end = strdup(prefix);
	if (!end)
		return NULL;
	/*
	 * The smallest key above every key with this prefix: the last byte that can be raised,
	 * raised, and what follows it cut.  A prefix of 0xff bytes only (or none) has no such
	 * key: "" stands for etcd's "\0", "every key from key on", in the bodies below.
	 */
	for (size_t i = strlen(end); i-- > 0;) {
		if ((unsigned char)end[i] < 0xff) {
			end[i]++;
			end[i + 1] = '\0';
			return end;
		}
	}
	end[0] = '\0';
	return end;
}

/* Sets obj[name] to the base64 of n bytes; a NULL obj (an earlier failure) stays NULL. */
static int set_b64(json_t *obj, const char *name, const void *data, size_t n)
{
	char *b = etcd__base64_encode(data, n);
	if (!b)
		return -ENOMEM;
	int ret = json_object_set_new(obj, name, json_string(b)) ? -ENOMEM : 0;
	free(b);
	return ret;
}

/* The key range of a request: range_end "" is the one byte 0, every key from key on. */
static int set_range(json_t *obj, const char *key, const char *range_end)
{
	int ret = set_b64(obj, "key", key, strlen(key));
	if (ret == 0 && range_end)
		ret = set_b64(obj, "range_end", *range_end ? range_end : "",
			      *range_end ? strlen(range_end) : 1);
	return ret;
}

/* int64 fields travel as strings, as the gateway writes them (JSON numbers lose precision). */
static int set_i64(json_t *obj, const char *name, int64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_object_set_new(obj, name, json_string(buf)) ? -ENOMEM : 0;
}

json_t *etcd_range_body(const char *key, const char *range_end, int64_t rev, int64_t limit,
			bool keys_only, bool count_only)
{
	json_t *b = json_object();
	if (!b)
		return NULL;
	int ret = set_range(b, key, range_end);
	if (ret == 0 && rev > 0)
		ret = set_i64(b, "revision", rev);
	if (ret == 0 && limit > 0)
		ret = set_i64(b, "limit", limit);
	if (ret == 0 && keys_only)
		ret = json_object_set_new(b, "keys_only", json_true());
	if (ret == 0 && count_only)
		ret = json_object_set_new(b, "count_only", json_true());
	if (ret) {
		json_decref(b);
		return NULL;
	}
	return b;
}

static json_t *cmp_json(const etcd_cmp_t *c)
{
	static const char *const targets[] = { "MOD", "CREATE", "VERSION" };
	static const char *const fields[] = { "mod_revision", "create_revision", "version" };
	json_t *o = json_object();
	if (!o || (unsigned)c->target > ETCD_VERSION || set_b64(o, "key", c->key, strlen(c->key)) ||
	    json_object_set_new(o, "target", json_string(targets[c->target])) ||
	    json_object_set_new(o, "result", json_string("EQUAL")) ||
	    set_i64(o, fields[c->target], c->value)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *op_json(const etcd_op_t *op)
{
	json_t *inner = json_object();
	json_t *o = json_object();
	if (!inner || !o)
		goto fail;
	if (op->is_delete) {
		if (set_range(inner, op->key, op->range_end) ||
		    json_object_set_new(o, "request_delete_range", inner))
			goto fail_o;
		return o;
	}
	if (set_b64(inner, "key", op->key, strlen(op->key)) ||
	    set_b64(inner, "value", op->value ? op->value : "", op->value ? op->value_len : 0) ||
	    (op->lease && set_i64(inner, "lease", op->lease)) ||
	    json_object_set_new(o, "request_put", inner))
		goto fail_o;
	return o;
fail:
	json_decref(inner);
fail_o:
	json_decref(o);
	return NULL;
}

json_t *etcd_txn_body(const etcd_cmp_t *cmp, size_t ncmp, const etcd_op_t *ops, size_t nops)
{
	json_t *b = json_object();
	json_t *compare = json_array();
	json_t *success = json_array();
	if (!b || json_object_set_new(b, "compare", compare) ||
	    json_object_set_new(b, "success", success))
		goto fail;
	for (size_t i = 0; i < ncmp; i++)
		if (json_array_append_new(compare, cmp_json(&cmp[i])))
			goto fail;
	for (size_t i = 0; i < nops; i++)
		if (json_array_append_new(success, op_json(&ops[i])))
			goto fail;
	return b;
fail:
	json_decref(b);
	return NULL;
}

json_t *etcd_watch_body(const char *key, const char *range_end, int64_t start_rev,
			bool progress_notify)
{
	json_t *b = json_object();
	json_t *c = json_object();
	if (!b || !c || json_object_set_new(b, "create_request", c)) {
		json_decref(c);
		goto fail;
	}
	if (set_range(c, key, range_end) ||
	    (start_rev > 0 && set_i64(c, "start_revision", start_rev)) ||
	    (progress_notify && json_object_set_new(c, "progress_notify", json_true())))
		goto fail;
	return b;
fail:
	json_decref(b);
	return NULL;
}

/* ---- replies ---- */

/* An int64 field: a string of digits as the gateway writes it, a JSON integer, or absent (0). */
static int get_i64(const json_t *obj, const char *name, int64_t *v)
{
	const json_t *f = json_object_get(obj, name);
	*v = 0;
	if (!f)
		return 0;
	if (json_is_integer(f)) {
		*v = json_integer_value(f);
		return 0;
	}
	if (!json_is_string(f))
		return -EPROTO;
	const char *s = json_string_value(f);
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (!*s || *end || errno)
		return -EPROTO;
	*v = x;
	return 0;
}

/* cluster_id is a uint64 that passes int64's range: read it unsigned. */
static int get_u64(const json_t *obj, const char *name, uint64_t *v)
{
	const json_t *f = json_object_get(obj, name);
	*v = 0;
	if (!f)
		return 0;
	if (json_is_integer(f)) {
		*v = (uint64_t)json_integer_value(f);
		return 0;
	}
	if (!json_is_string(f))
		return -EPROTO;
	const char *s = json_string_value(f);
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-')
		return -EPROTO;
	*v = x;
	return 0;
}

static int get_bool(const json_t *obj, const char *name, bool *v)
{
	const json_t *f = json_object_get(obj, name);
	*v = false;
	if (!f)
		return 0;
	if (!json_is_boolean(f))
		return -EPROTO;
	*v = json_is_true(f);
	return 0;
}

int etcd_parse_header(const json_t *result, etcd_header_t *h)
{
	memset(h, 0, sizeof(*h));
	const json_t *hd = json_object_get(result, "header");
	if (!json_is_object(hd))
		return -EPROTO;
	if (get_u64(hd, "cluster_id", &h->cluster_id) || get_i64(hd, "revision", &h->revision))
		return -EPROTO;
	return 0;
}

void etcd_kv_clear(etcd_kv_t *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void etcd_kvs_free(etcd_kv_t *kvs, size_t n)
{
	for (size_t i = 0; kvs && i < n; i++)
		etcd_kv_clear(&kvs[i]);
	free(kvs);
}

void etcd_events_free(etcd_event_t *ev, size_t n)
{
	for (size_t i = 0; ev && i < n; i++)
		etcd_kv_clear(&ev[i].kv);
	free(ev);
}

/* One "kv": the key is required; an empty value is left out by the gateway. */
static int parse_kv(const json_t *o, etcd_kv_t *kv)
{
	memset(kv, 0, sizeof(*kv));
	const json_t *k = json_object_get(o, "key");
	const json_t *v = json_object_get(o, "value");
	size_t klen;
	if (!json_is_object(o) || !json_is_string(k) || (v && !json_is_string(v)))
		return -EPROTO;
	int ret = etcd__base64_decode(json_string_value(k), &kv->key, &klen);
	if (ret == 0)
		ret = etcd__base64_decode(v ? json_string_value(v) : "", &kv->value,
					  &kv->value_len);
	if (ret == 0 && (get_i64(o, "create_revision", &kv->create_revision) ||
			 get_i64(o, "mod_revision", &kv->mod_revision) ||
			 get_i64(o, "version", &kv->version) || get_i64(o, "lease", &kv->lease)))
		ret = -EPROTO;
	/* Our keys are text: a NUL inside would be cut short by every caller. */
	if (ret == 0 && strlen(kv->key) != klen)
		ret = -EPROTO;
	if (ret)
		etcd_kv_clear(kv);
	return ret;
}

int etcd_parse_range(const json_t *result, etcd_header_t *h, etcd_kv_t **kvs, size_t *n, bool *more)
{
	*kvs = NULL;
	*n = 0;
	int ret = etcd_parse_header(result, h);
	if (ret == 0)
		ret = get_bool(result, "more", more);
	const json_t *arr = json_object_get(result, "kvs");
	if (ret || !arr)
		return ret;
	if (!json_is_array(arr))
		return -EPROTO;
	size_t cnt = json_array_size(arr);
	etcd_kv_t *out = calloc(cnt ? cnt : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		ret = parse_kv(json_array_get(arr, i), &out[i]);
		if (ret) {
			etcd_kvs_free(out, i);
			return ret;
		}
	}
	*kvs = out;
	*n = cnt;
	return 0;
}

int etcd_parse_txn(const json_t *result, etcd_header_t *h, bool *succeeded)
{
	int ret = etcd_parse_header(result, h);
	if (ret == 0)
		ret = get_bool(result, "succeeded", succeeded);
	return ret;
}

/*
 * An error's text as an ETCD_* code.  The gateway's messages are the server's error strings
 * ("etcdserver: no leader"); the gRPC code alone is too coarse (InvalidArgument covers both
 * "user name is empty" and "too many operations"), so the text decides and the code only
 * settles what the text does not.
 */
static int error_code(const char *msg, int64_t grpc_code)
{
	static const struct {
		const char *text;
		int code;
	} map[] = {
		{ "no leader", ETCD_EUNAVAIL },
		{ "request timed out", ETCD_EUNAVAIL },
		{ "leader changed", ETCD_EUNAVAIL },
		{ "too many requests", ETCD_EUNAVAIL },
		{ "not capable", ETCD_EUNAVAIL },
		{ "required revision has been compacted", ETCD_ECOMPACTED },
		{ "user name is empty", ETCD_EAUTH },
		{ "invalid auth token", ETCD_EAUTH },
		{ "permission denied", ETCD_EAUTH },
		{ "authentication failed", ETCD_EAUTH },
		{ "revision of auth store is old", ETCD_EAUTH },
		{ "too many operations in txn request", ETCD_ETOOBIG },
		{ "request is too large", ETCD_ETOOBIG },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strstr(msg, map[i].text))
			return map[i].code;
	switch (grpc_code) {
	case 4:	 /* DeadlineExceeded */
	case 14: /* Unavailable */
		return ETCD_EUNAVAIL;
	case 7:	 /* PermissionDenied */
	case 16: /* Unauthenticated */
		return ETCD_EAUTH;
	default:
		return ETCD_EREQUEST;
	}
}

bool etcd__why_token_stale(const char *why)
{
	/* A simple token expires (--auth-token-ttl) or dies with the member's restart; the auth
	 * store's revision moves when users or roles change: a new token fixes both. */
	return strstr(why, "invalid auth token") || strstr(why, "revision of auth store is old");
}

int etcd_parse_error(const json_t *reply, char *why, size_t whylen)
{
	const json_t *err = json_object_get(reply, "error");
	if (!err)
		return 0;
	const char *msg = NULL;
	int64_t code = 0;
	if (json_is_string(err)) {
		/* Unary: {"error": "...", "message": "...", "code": N}. */
		msg = json_string_value(err);
		get_i64(reply, "code", &code);
	} else if (json_is_object(err)) {
		/* A stream's: {"error": {"grpc_code": N, "http_code": N, "message": "..."}}. */
		const json_t *m = json_object_get(err, "message");
		msg = json_is_string(m) ? json_string_value(m) : NULL;
		get_i64(err, "grpc_code", &code);
	}
	if (!msg)
		msg = "error without a message";
	snprintf(why, whylen, "%s", msg);
	return error_code(msg, code);
}

void etcd_watch_msg_clear(etcd_watch_msg_t *msg)
{
	etcd_events_free(msg->events, msg->nevents);
	memset(msg, 0, sizeof(*msg));
}

static int parse_events(const json_t *arr, etcd_watch_msg_t *msg)
{
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return -EPROTO;
	size_t cnt = json_array_size(arr);
	msg->events = calloc(cnt ? cnt : 1, sizeof(*msg->events));
	if (!msg->events)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		const json_t *ev = json_array_get(arr, i);
		/* proto3 leaves the zero value out: no "type" is a PUT. */
		const json_t *type = json_object_get(ev, "type");
		if (type && !json_is_string(type))
			return -EPROTO;
		const char *t = type ? json_string_value(type) : "PUT";
		if (strcmp(t, "PUT") != 0 && strcmp(t, "DELETE") != 0)
			return -EPROTO;
		int ret = parse_kv(json_object_get(ev, "kv"), &msg->events[i].kv);
		if (ret)
			return ret;
		msg->events[i].is_delete = t[0] == 'D';
		msg->nevents = i + 1;
	}
	return 0;
}

int etcd_parse_watch(const json_t *line, etcd_watch_msg_t *msg, char *why, size_t whylen)
{
	memset(msg, 0, sizeof(*msg));
	if (why && whylen)
		why[0] = '\0';
	char dummy[8];
	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	if (!json_is_object(line))
		return -EPROTO;
	int ret = etcd_parse_error(line, why, whylen);
	if (ret)
		return ret;
	const json_t *r = json_object_get(line, "result");
	if (!json_is_object(r))
		return -EPROTO;
	ret = etcd_parse_header(r, &msg->header);
	if (ret == 0 &&
	    (get_bool(r, "created", &msg->created) || get_bool(r, "canceled", &msg->canceled) ||
	     get_i64(r, "compact_revision", &msg->compact_revision)))
		ret = -EPROTO;
	if (ret == 0)
		ret = parse_events(json_object_get(r, "events"), msg);
	if (ret == 0 && msg->canceled && msg->compact_revision <= 0) {
		/*
		 * A watch refused at creation (no token, a prefix outside the user's grant) comes
		 * as "created" and "canceled" at once with the reason as text.
		 */
		const json_t *cr = json_object_get(r, "cancel_reason");
		const char *reason = json_is_string(cr) ? json_string_value(cr) : "watch canceled";
		snprintf(why, whylen, "%s", reason);
		ret = error_code(reason, 0);
	}
	if (ret)
		etcd_watch_msg_clear(msg);
	return ret;
}

/* ---- the stream splitter ---- */

struct etcd_lines {
	size_t max_line;
	etcd_line_cb cb;
	void *arg;
	char *buf;
	size_t len, cap;
	int err; /* sticky: a stream out of step stays so */
};

etcd_lines_t *etcd_lines_new(size_t max_line, etcd_line_cb cb, void *arg)
{
	etcd_lines_t *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->max_line = max_line;
	l->cb = cb;
	l->arg = arg;
	return l;
}

void etcd_lines_free(etcd_lines_t *l)
{
	if (!l)
		return;
	free(l->buf);
	free(l);
}

static int line_done(etcd_lines_t *l, const char *p, size_t n)
{
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0;
	json_error_t jerr;
	json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return -EPROTO;
	int ret = l->cb(j, l->arg);
	json_decref(j);
	return ret;
}

static int append(etcd_lines_t *l, const char *data, size_t n)
{
	if (l->len + n > l->max_line)
		return -EMSGSIZE;
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		while (cap < l->len + n)
			cap *= 2;
		char *b = realloc(l->buf, cap);
		if (!b)
			return -ENOMEM;
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, data, n);
	l->len += n;
	return 0;
}

int etcd_lines_feed(etcd_lines_t *l, const char *data, size_t n)
{
	while (l->err == 0 && n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		if (!nl) {
			l->err = append(l, data, take);
			break;
		}
		/* A whole line in this piece is parsed where it lies, without a copy. */
		if (l->len == 0) {
			if (take > l->max_line)
				l->err = -EMSGSIZE;
			else
				l->err = line_done(l, data, take);
		} else {
			l->err = append(l, data, take);
			if (l->err == 0)
				l->err = line_done(l, l->buf, l->len);
			l->len = 0;
		}
		data += take + 1;
		n -= take + 1;
	}
	return l->err;
}
