/* SPDX-License-Identifier: MIT */
/* Private to src/query: DNS Cookies and response rate limiting, called by query.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gslb/query.h"

/* RFC 9018 4.3: a server cookie is valid from 5 minutes ahead to 1 hour old. */
#define COOKIE_MAX_AGE 3600
#define COOKIE_MAX_AHEAD 300
/* ... and one over half an hour old is replaced by a fresh one in the response. */
#define COOKIE_REUSE_AGE 1800

/*
 * The client address a cookie is bound to (RFC 9018 4.2: 4 or 16 bytes; an
 * IPv4-mapped IPv6 address counts as IPv4).  Returns its length, 0 when
 * there is none.
 */
size_t cookie_client_ip(const struct sockaddr *peer, const uint8_t **ip);

/*
 * Whether server (16 bytes) is a server cookie made by this server for
 * client (8 bytes) and ip: version 1, made with one of s's secrets, its
 * time within RFC 9018's bounds at now (Unix seconds).  *reuse: it is
 * recent enough to send back as it is.
 */
bool cookie_verify(const query_cookie_secrets_t *s, const uint8_t *client, const uint8_t *server,
		   const uint8_t *ip, size_t iplen, uint32_t now, bool *reuse);

/* A fresh server cookie for client and ip at now, made with s->current, into out[16]. */
void cookie_make(const query_cookie_secrets_t *s, const uint8_t *client, const uint8_t *ip,
		 size_t iplen, uint32_t now, uint8_t out[16]);

/* Response kinds counted apart (README "On the open internet"). */
enum rrl_kind {
	RRL_ANSWER,   /* positive, per name and type */
	RRL_WILDCARD, /* positive from a wildcard, per zone */
	RRL_REFERRAL, /* per zone */
	RRL_NODATA,   /* per zone */
	RRL_NXDOMAIN, /* per zone */
	RRL_ERROR,    /* any other rcode, per zone (or none: REFUSED outside every zone) */
};

enum rrl_verdict {
	RRL_PASS,
	RRL_DROP,
	RRL_SLIP,
};

/* A worker's table: allocated with query_ctx_init() when the rate is above 0. */
struct query_rrl *rrl_new(uint64_t seed);
void rrl_free(struct query_rrl *t);

/*
 * The verdict on one UDP response to peer of kind, keyed by name (len
 * bytes, lowercased wire: the query name for RRL_ANSWER, the zone's apex
 * otherwise, len 0 for none) and qtype (RRL_ANSWER only), at now_ms.
 * Never allocates.
 */
enum rrl_verdict rrl_check(struct query_rrl *t, const query_rrl_conf_t *c,
			   const struct sockaddr *peer, enum rrl_kind kind, const uint8_t *name,
			   size_t len, uint16_t qtype, uint64_t now_ms);
