/* SPDX-License-Identifier: MIT */
/*
 * DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): a
 * server cookie is Version 1, three reserved zero bytes, a 32-bit Unix time
 * and SipHash-2-4 under the server secret of the client cookie, those eight
 * bytes and the client's address.  Every node holding the same secret
 * makes and accepts the same cookies, so several nameservers behind one
 * name (or one anycast address) accept each other's.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <netinet/in.h>
#include <string.h>

#include "gslb/core.h"
#include "internal.h"

size_t query_peer_ip(const struct sockaddr *peer, const uint8_t **ip)
{
	if (!peer)
		return 0;
	if (peer->sa_family == AF_INET) {
		*ip = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
		return 4;
	}
	if (peer->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
		*ip = a->s6_addr + (IN6_IS_ADDR_V4MAPPED(a) ? 12 : 0);
		return IN6_IS_ADDR_V4MAPPED(a) ? 4 : 16;
	}
	return 0;
}

static inline uint64_t le64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

void query_cookie_secrets_ready(query_cookie_secrets_t *s)
{
	gslb_sip_init(&s->sip_current, le64_at(s->current), le64_at(s->current + 8));
	gslb_sip_init(&s->sip_accepted, le64_at(s->accepted), le64_at(s->accepted + 8));
	gslb_sip_init(&s->sip_previous, le64_at(s->previous), le64_at(s->previous + 8));
}

/*
 * The hash of RFC 9018 4.4 over client | version, reserved, time | ip, in
 * SipHash's little-endian words: 20 bytes (two words and a last block of
 * the IPv4 address) or 32 (four words and a last block of the length).
 */
static inline __attribute__((always_inline)) uint64_t cookie_hash(const gslb_sip_t *key,
								  const uint8_t *client,
								  const uint8_t head[8],
								  const uint8_t *ip, size_t iplen)
{
	gslb_sip_t s = *key;
	gslb_sip_word(&s, le64_at(client));
	gslb_sip_word(&s, le64_at(head));
	if (iplen == 16) {
		gslb_sip_word(&s, le64_at(ip));
		gslb_sip_word(&s, le64_at(ip + 8));
		return gslb_sip_final(&s, (uint64_t)32 << 56);
	}
	uint64_t last = (uint64_t)(16 + iplen) << 56;
	if (iplen == 4) {
		uint32_t v4;
		memcpy(&v4, ip, sizeof(v4));
		last |= le32toh(v4);
	}
	return gslb_sip_final(&s, last);
}

int cookie_verify(const query_cookie_secrets_t *s, const uint8_t *client, const uint8_t *server,
		  const uint8_t *ip, size_t iplen, uint32_t now)
{
	uint32_t version, t;
	/* Version 1 and the reserved zero bytes, then the time: two loads. */
	memcpy(&version, server, 4);
	memcpy(&t, server + 4, 4);
	if (version != htonl(0x01000000u))
		return COOKIE_INVALID;
	/* Serial number arithmetic (RFC 1982): the time may have wrapped. */
	int32_t age = (int32_t)(now - ntohl(t));
	if (age > COOKIE_MAX_AGE || age < -COOKIE_MAX_AHEAD)
		return COOKIE_INVALID;
	uint64_t want = le64_at(server + 8);
	if (cookie_hash(&s->sip_current, client, server, ip, iplen) == want)
		/* Sent back as it is while young; a cookie of another secret is replaced. */
		return age >= 0 && age < COOKIE_REUSE_AGE ? COOKIE_REUSE : COOKIE_VALID;
	if (s->has_accepted && cookie_hash(&s->sip_accepted, client, server, ip, iplen) == want)
		return COOKIE_VALID;
	if (s->previous_until && (int64_t)now < s->previous_until &&
	    cookie_hash(&s->sip_previous, client, server, ip, iplen) == want)
		return COOKIE_VALID;
	return COOKIE_INVALID;
}

void cookie_make(const query_cookie_secrets_t *s, const uint8_t *client, const uint8_t *ip,
		 size_t iplen, uint32_t now, uint8_t out[16])
{
	out[0] = 1;
	out[1] = out[2] = out[3] = 0;
	out[4] = (uint8_t)(now >> 24);
	out[5] = (uint8_t)(now >> 16);
	out[6] = (uint8_t)(now >> 8);
	out[7] = (uint8_t)now;
	uint64_t h = cookie_hash(&s->sip_current, client, out, ip, iplen);
	for (unsigned i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(h >> (8 * i));
}
