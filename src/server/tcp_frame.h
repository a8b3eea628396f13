/* SPDX-License-Identifier: MIT */
/*
 * DNS over TCP's framing (RFC 1035 4.2.2, RFC 7766 8): each message follows its length in two
 * bytes.  Pure functions on a connection's read buffer, so that tests/fuzz/fuzz_tcp.c feeds the
 * very code tcp.c runs with streams split at any points.  A connection reads into a small
 * buffer that grows to TCP_FRAME_MAX bytes only while a longer message arrives
 * (tcp_frame_need()); after every frame in it is answered, at most a part of one frame is left,
 * so the next read always has room.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gslb/dns.h"

#define TCP_FRAME_MAX (2 + DNS_MSG_MAX)

typedef enum tcp_frame {
	TCP_FRAME_MORE, /* the next message is not all there yet */
	TCP_FRAME_MSG,	/* a whole message */
	TCP_FRAME_END,	/* a zero length: it cannot carry a message, the client is done */
} tcp_frame_t;

/*
 * The frame at the start of the len bytes at buf, which begin at a frame boundary.  For
 * TCP_FRAME_MSG, *qlen is set and the message is buf[2 .. 2 + *qlen), all within len.
 */
static inline tcp_frame_t tcp_frame_next(const uint8_t *buf, size_t len, size_t *qlen)
{
	if (len < 2)
		return TCP_FRAME_MORE;
	*qlen = dns_get16(buf);
	if (*qlen == 0)
		return TCP_FRAME_END;
	return len - 2 < *qlen ? TCP_FRAME_MORE : TCP_FRAME_MSG;
}

/*
 * Drop the first off bytes of the len at buf, the frames answered: what is left (part of a
 * frame, or frames that wait for a write to finish) moves to the front.  Returns its length.
 */
static inline size_t tcp_frame_shift(uint8_t *buf, size_t len, size_t off)
{
	if (off)
		memmove(buf, buf + off, len - off);
	return len - off;
}

/* How many bytes the next read may add to a buffer of cap bytes holding len. */
static inline size_t tcp_frame_room(size_t len, size_t cap)
{
	return cap - len;
}

/*
 * The bytes the frame at the start of the len at buf takes whole (2 when its length is not
 * there yet): a buffer smaller than that must grow before the next read (at most
 * TCP_FRAME_MAX).
 */
static inline size_t tcp_frame_need(const uint8_t *buf, size_t len)
{
	return len < 2 ? 2 : 2 + (size_t)dns_get16(buf);
}

/*
 * The capacity a connection's read buffer needs for its next read: small bytes while the
 * frame begun (and what is held) fits, else TCP_FRAME_MAX.  At least len, and more than len
 * unless a whole frame is held (then it is answered before anything is read).
 */
static inline size_t tcp_frame_cap(const uint8_t *buf, size_t len, size_t small)
{
	return tcp_frame_need(buf, len) <= small && len <= small ? small : TCP_FRAME_MAX;
}

/*
 * Whether the left bytes in the buffer after a read of nread bytes (and the answers it allowed)
 * begin a message that this read began: the buffer held nothing before it (before bytes), or a
 * frame ended in it.  Otherwise the message began in an earlier read, whose time its deadline
 * keeps.
 */
static inline bool tcp_frame_began(size_t before, size_t nread, size_t left)
{
	return left && (before == 0 || left < before + nread);
}
