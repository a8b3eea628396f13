/* SPDX-License-Identifier: MIT */
/*
 * DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): a
 * server cookie is Version 1, three reserved zero bytes, a 32-bit Unix time
 * and SipHash-2-4 under the server secret of the client cookie, those eight
 * bytes and the client's address.  Every node holding the same secret
 * makes and accepts the same cookies, so several nameservers behind one
 * name (or one anycast address) accept each other's.
 */
#include <netinet/in.h>
#include <string.h>

#include "gslb/core.h"
#include "internal.h"

size_t cookie_client_ip(const struct sockaddr *peer, const uint8_t **ip)
{
	if (!peer)
		return 0;
	if (peer->sa_family == AF_INET) {
		*ip = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
		return 4;
	}
	if (peer->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			*ip = a + 12;
			return 4;
		}
		*ip = a;
		return 16;
	}
	return 0;
}

/* The hash of RFC 9018 4.4 into hash[8]: over client | version, reserved, time | ip. */
static void cookie_hash(const uint8_t secret[16], const uint8_t *client, const uint8_t head[8],
			const uint8_t *ip, size_t iplen, uint8_t hash[8])
{
	uint8_t in[8 + 8 + 16];
	memcpy(in, client, 8);
	memcpy(in + 8, head, 8);
	memcpy(in + 16, ip, iplen);
	gslb_siphash24(secret, in, 16 + iplen, hash);
}

bool cookie_verify(const query_cookie_secrets_t *s, const uint8_t *client, const uint8_t *server,
		   const uint8_t *ip, size_t iplen, uint32_t now, bool *reuse)
{
	*reuse = false;
	if (server[0] != 1 || server[1] || server[2] || server[3])
		return false;
	uint32_t t = (uint32_t)server[4] << 24 | (uint32_t)server[5] << 16 |
		     (uint32_t)server[6] << 8 | server[7];
	/* Serial number arithmetic (RFC 1982): the time may have wrapped. */
	int32_t age = (int32_t)(now - t);
	if (age > COOKIE_MAX_AGE || age < -COOKIE_MAX_AHEAD)
		return false;
	uint8_t h[8];
	cookie_hash(s->current, client, server, ip, iplen, h);
	if (memcmp(h, server + 8, 8) == 0) {
		/* Sent back as it is while young; a cookie of another secret is replaced. */
		*reuse = age >= 0 && age < COOKIE_REUSE_AGE;
		return true;
	}
	if (s->has_accepted) {
		cookie_hash(s->accepted, client, server, ip, iplen, h);
		if (memcmp(h, server + 8, 8) == 0)
			return true;
	}
	if (s->previous_until && (int64_t)now < s->previous_until) {
		cookie_hash(s->previous, client, server, ip, iplen, h);
		if (memcmp(h, server + 8, 8) == 0)
			return true;
	}
	return false;
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
	cookie_hash(s->current, client, out, ip, iplen, out + 8);
}
