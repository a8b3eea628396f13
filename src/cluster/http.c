/* SPDX-License-Identifier: MIT */
/* What both etcd clients do the same way: the settings copied, one POST's libcurl options, a reply judged. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int dup_opt(const char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

void etcd__conf_deinit(etcd_conf_t *c)
{
	for (size_t i = 0; c->urls && i < c->nurls; i++)
		free(c->urls[i]);
	free(c->urls);
	free((char *)c->ca_file);
	free((char *)c->cert_file);
	free((char *)c->key_file);
	free((char *)c->user);
	etcd__secret_free((char *)c->password);
	memset(c, 0, sizeof(*c));
}

int etcd__conf_copy(etcd_conf_t *dst, const etcd_conf_t *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src->nurls == 0)
		return -EINVAL;
	dst->urls = calloc(src->nurls, sizeof(*dst->urls));
	if (!dst->urls)
		return -ENOMEM;
	dst->nurls = src->nurls;
	for (size_t i = 0; i < src->nurls; i++) {
		/* A trailing "/" would make "//v3/..." paths, which the gateway does not route. */
		size_t n = strlen(src->urls[i]);
		while (n > 0 && src->urls[i][n - 1] == '/')
			n--;
		dst->urls[i] = strndup(src->urls[i], n);
		if (!dst->urls[i])
			goto fail;
	}
	if (dup_opt(&dst->ca_file, src->ca_file) || dup_opt(&dst->cert_file, src->cert_file) ||
	    dup_opt(&dst->key_file, src->key_file) || dup_opt(&dst->user, src->user) ||
	    dup_opt(&dst->password, src->user ? (src->password ? src->password : "") : NULL))
		goto fail;
	dst->timeout_ms = src->timeout_ms ? src->timeout_ms : 3000;
	dst->connect_timeout_ms = src->connect_timeout_ms ? src->connect_timeout_ms : 1000;
	return 0;
fail:
	etcd__conf_deinit(dst);
	return -ENOMEM;
}

void etcd__secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

char *etcd__auth_body(const etcd_conf_t *c)
{
	json_t *b = json_pack("{s:s, s:s}", "name", c->user, "password", c->password);
	if (!b)
		return NULL;
	char *s = json_dumps(b, JSON_COMPACT);
	/* jansson keeps its own copy of the password in the object: wipe it before it is freed. */
	json_t *pw = json_object_get(b, "password");
	if (pw) {
		const char *v = json_string_value(pw);
		explicit_bzero((char *)v, strlen(v));
	}
	json_decref(b);
	return s;
}

struct curl_slist *etcd__headers(const char *token, bool hasleader)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *t;
	/* libcurl would otherwise send "Expect: 100-continue" and wait a second for big bodies. */
	if (h && (t = curl_slist_append(h, "Expect:")))
		h = t;
	else
		goto fail;
	if (token) {
		char line[1024];
		snprintf(line, sizeof(line), "Authorization: %s", token);
		if (!(t = curl_slist_append(h, line)))
			goto fail;
		explicit_bzero(line, sizeof(line));
	}
	/*
	 * A member that lost its leader ends a watch sent with hasleader (the gateway passes the
	 * header on as gRPC metadata); without it the stream stays open and silent for as long
	 * as the partition lasts.
	 */
	if (hasleader && !(t = curl_slist_append(h, "Grpc-Metadata-hasleader: true")))
		goto fail;
	return h;
fail:
	curl_slist_free_all(h);
	return NULL;
}

int etcd__easy_setup(CURL *h, const etcd_conf_t *c, const char *base, const char *path,
		     struct curl_slist *hdrs, const char *body, bool stream, char *errbuf)
{
	char url[2048];
	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >= sizeof(url))
		return -ENAMETOOLONG;
	errbuf[0] = '\0';
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(h, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	/* Other threads of gslbd run: no alarm() for name lookups (SIGPIPE is ignored there). */
	SET(CURLOPT_NOSIGNAL, 1L);
	/* The members are reached directly: an http_proxy of the environment is not for them. */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	/* An endpoint is http or https, never one of libcurl's other protocols. */
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	/* A watch lasts as long as it is wanted: its liveness is the caller's heartbeat. */
	SET(CURLOPT_TIMEOUT_MS, stream ? 0L : (long)c->timeout_ms);
	/* A member that vanished without a FIN (power, partition) is noticed on idle streams. */
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 10L);
	SET(CURLOPT_TCP_KEEPINTVL, 5L);
	if (c->ca_file)
		SET(CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file)
		SET(CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		SET(CURLOPT_SSLKEY, c->key_file);
#undef SET
	return rc == CURLE_OK ? 0 : -EINVAL;
}

int etcd__outcome(const char *url, CURLcode rc, long status, const char *data, size_t len,
		  const char *errbuf, json_t **reply, bool *next, char *why, size_t whylen)
{
	char msg[512];
	*reply = NULL;
	*next = true;
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "%s: %s", url,
			 errbuf && *errbuf ? errbuf : curl_easy_strerror(rc));
		/* A certificate refused is a configuration error; another member will refuse as well,
		 * but trying costs little and keeps the rule simple: any transport failure moves on. */
		return ETCD_EUNAVAIL;
	}
	json_error_t jerr;
	json_t *j = len ? json_loadb(data, len, 0, &jerr) : NULL;
	if (!json_is_object(j)) {
		/*
		 * The gateway answers some refusals in plain text, e.g. a client certificate with a
		 * CommonName while authentication is on: its first line is the only reason given.
		 */
		size_t n = 0;
		while (n < len && n < 200 && data[n] != '\n' && data[n] != '\r' &&
		       (unsigned char)data[n] >= 0x20 && (unsigned char)data[n] < 0x7f)
			n++;
		if (n)
			snprintf(why, whylen, "%s: HTTP status %ld: %.*s", url, status, (int)n,
				 data);
		else
			snprintf(why, whylen, "%s: HTTP status %ld and a reply that is not etcd's",
				 url, status);
		json_decref(j);
		return -EPROTO;
	}
	int err = etcd_parse_error(j, msg, sizeof(msg));
	if (err == 0 && status != 200) {
		snprintf(msg, sizeof(msg), "HTTP status %ld", status);
		err = -EPROTO;
	}
	if (err) {
		snprintf(why, whylen, "%s: %s", url, msg);
		json_decref(j);
		/* Only the errors of one member: another one may have a leader or answer in time. */
		*next = err == ETCD_EUNAVAIL || err == -EPROTO;
		return err;
	}
	*next = false;
	*reply = j;
	return 0;
}
