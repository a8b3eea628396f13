/* SPDX-License-Identifier: MIT */
/* The blocking etcd client of gslbctl (gslbctl(8) "cluster"): one POST at a time, endpoint after endpoint. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/etcd.h"
#include "internal.h"

/* Only the thread that made it uses a client; gslbctl has one thread. */
struct etcd_sync {
	etcd_conf_t conf;
	CURL *h;     /* one handle for every request: its connections are kept alive */
	size_t cur;  /* the endpoint that answered last: tried first */
	char *token; /* the auth token, or NULL before the first authentication */
	char error[1024];
};

/* A reply being read (bounded: a member that sends without end is not etcd). */
typedef struct buf {
	char *data;
	size_t len, cap;
} buf_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	buf_t *b = arg;
	size_t add = size * n;
	if (b->len + add + 1 > ETCD_MAX_REPLY)
		return 0;
	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + add + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, add);
	b->len += add;
	return add;
}

int etcd_sync_new(const etcd_conf_t *conf, etcd_sync_t **out)
{
	*out = NULL;
	etcd_sync_t *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int ret = etcd__conf_copy(&s->conf, conf);
	if (ret) {
		free(s);
		return ret;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	s->h = curl_easy_init();
	if (!s->h) {
		etcd_sync_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void etcd_sync_free(etcd_sync_t *s)
{
	if (!s)
		return;
	if (s->h)
		curl_easy_cleanup(s->h);
	etcd__secret_free(s->token);
	etcd__conf_deinit(&s->conf);
	free(s);
}

const char *etcd_sync_error(const etcd_sync_t *s)
{
	return s->error;
}

/* One POST to one endpoint; see etcd__outcome(). */
static int post(etcd_sync_t *s, const char *url, const char *path, const char *body,
		bool with_token, json_t **reply, bool *next, char *why, size_t whylen)
{
	char errbuf[CURL_ERROR_SIZE];
	buf_t b = { 0 };
	long status = 0;
	struct curl_slist *hdrs = etcd__headers(with_token ? s->token : NULL, false);
	if (!hdrs) {
		*next = false;
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	curl_easy_reset(s->h);
	int ret = etcd__easy_setup(s->h, &s->conf, url, path, hdrs, body, false, errbuf);
	if (ret == 0) {
		curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(s->h, CURLOPT_WRITEDATA, &b);
		/* gslbctl leaves SIGPIPE alone: libcurl ignores it during the transfer itself (a member
		 * that closes while we write would otherwise kill the command). */
		curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 0L);
		CURLcode rc = curl_easy_perform(s->h);
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		ret = etcd__outcome(url, rc, status, b.data, b.len, errbuf, reply, next, why,
				    whylen);
	} else {
		*next = false;
		snprintf(why, whylen, "%s: cannot set up the request (%s)", url, strerror(-ret));
	}
	curl_slist_free_all(hdrs);
	free(b.data);
	return ret;
}

/* A new token from url: 0, or the reason in why (the password is never in it). */
static int authenticate(etcd_sync_t *s, const char *url, bool *next, char *why, size_t whylen)
{
	char *body = etcd__auth_body(&s->conf);
	if (!body) {
		*next = false;
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	json_t *reply = NULL;
	int ret = post(s, url, "/v3/auth/authenticate", body, false, &reply, next, why, whylen);
	etcd__secret_free(body);
	if (ret)
		return ret;
	const json_t *tok = json_object_get(reply, "token");
	etcd__secret_free(s->token);
	s->token = json_is_string(tok) ? strdup(json_string_value(tok)) : NULL;
	json_decref(reply);
	if (!s->token) {
		*next = true;
		snprintf(why, whylen, "%s: authentication answered without a token", url);
		return -EPROTO;
	}
	return 0;
}

int etcd_sync_call(etcd_sync_t *s, const char *path, json_t *body, json_t **result)
{
	*result = NULL;
	s->error[0] = '\0';
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text) {
		snprintf(s->error, sizeof(s->error), "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	int ret = ETCD_EUNAVAIL;
	size_t used = 0; /* bytes of s->error: every endpoint's reason, "; " between */
	for (size_t i = 0; i < s->conf.nurls; i++) {
		size_t ep = (s->cur + i) % s->conf.nurls;
		const char *url = s->conf.urls[ep];
		char why[512];
		bool next = true;
		bool reauthed = false;
		ret = 0;
		if (s->conf.user && !s->token) {
			ret = authenticate(s, url, &next, why, sizeof(why));
			reauthed = true;
		}
		if (ret == 0)
			ret = post(s, url, path, text, true, result, &next, why, sizeof(why));
		/* The token expired or the member forgot it: one new token, one more try. */
		if (ret == ETCD_EAUTH && s->conf.user && !reauthed && etcd__why_token_stale(why)) {
			ret = authenticate(s, url, &next, why, sizeof(why));
			if (ret == 0)
				ret = post(s, url, path, text, true, result, &next, why,
					   sizeof(why));
		}
		if (ret == 0) {
			s->cur = ep;
			break;
		}
		if (used < sizeof(s->error))
			used += (size_t)snprintf(s->error + used, sizeof(s->error) - used, "%s%s",
						 used ? "; " : "", why);
		if (!next)
			break;
	}
	free(text);
	return ret;
}
