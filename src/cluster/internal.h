/* SPDX-License-Identifier: MIT */
/* What the etcd clients of src/cluster share beyond include/gslb/etcd.h: base64, conf copies, libcurl set-up. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "gslb/etcd.h"

/* The watch stream's longest line: a message holds every event of one revision (a txn of at most
 * etcd's 128 operations on values of a few KiB), so 64 MiB is far beyond anything we write. */
#define ETCD_MAX_LINE (64u << 20)
/* A unary reply's largest size (a page of 1000 pools). */
#define ETCD_MAX_REPLY (256u << 20)

/** Standard base64 (RFC 4648 4) of n bytes, NUL-terminated, malloc'd; NULL on ENOMEM. */
char *etcd__base64_encode(const void *data, size_t n);
/**
 * Decodes s (standard alphabet, padding optional) into a malloc'd buffer with a NUL after the
 * *outlen bytes.  0, -EPROTO (not base64) or -ENOMEM.
 */
int etcd__base64_decode(const char *s, char **out, size_t *outlen);

/** Whether an error's text says the auth token was refused (a new one may work). */
bool etcd__why_token_stale(const char *why);

/** A deep copy of src into dst (password included); dst cleared first.  0 or -ENOMEM. */
int etcd__conf_copy(etcd_conf_t *dst, const etcd_conf_t *src);
/** Frees what etcd__conf_copy() allocated, the password's bytes wiped first. */
void etcd__conf_deinit(etcd_conf_t *c);

/* One POST's libcurl settings shared by both clients; the URL is base (an endpoint) + path. */
int etcd__easy_setup(CURL *h, const etcd_conf_t *c, const char *base, const char *path,
		     struct curl_slist *hdrs, const char *body, bool stream, char *errbuf);
/** The headers of a request: JSON, plus the token, plus hasleader for a watch.  NULL on ENOMEM. */
struct curl_slist *etcd__headers(const char *token, bool hasleader);
/** The body of /v3/auth/authenticate, serialized; free with etcd__secret_free(). */
char *etcd__auth_body(const etcd_conf_t *c);
/** Wipe then free a string that held a password. */
void etcd__secret_free(char *s);

/*
 * How one finished POST went: 0 with *reply set, or an ETCD_* / negative code with the reason
 * in why (the URL first).  *next says whether another endpoint may do better (it could not be
 * reached, timed out, has no leader, or did not answer as etcd does).
 */
int etcd__outcome(const char *url, CURLcode rc, long status, const char *data, size_t len,
		  const char *errbuf, json_t **reply, bool *next, char *why, size_t whylen);
