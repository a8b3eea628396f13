/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: DNS over TCP's framing, as src/server/tcp.c runs it (src/server/tcp_frame.h),
 * on a stream of bytes a client sends, read in pieces of any size.
 *
 * Input: byte 0 seeds the sizes of the reads, byte 1 which writes of the answers have to wait,
 * the rest is the stream.  A connection is played as tcp.c plays it: each read takes at most the
 * room its buffer has left, the buffer 512 bytes until a longer frame begins (tcp_frame_cap(),
 * alloc_cb), every whole frame is answered in order and
 * the answers gathered in a TCP_OUT_MAX buffer (conn_process), a write that has to wait stops the
 * answering and the reading until it is done (write_cb), the end of the stream answers what was
 * read and closes.  The answer to a message is made of its bytes, repeated: as long as the
 * message, or when the message's first bit is set (an ID of 0x8000 or more) 65535 bytes less its
 * second byte, as an answer with many records can be; none when the message is shorter than a
 * DNS header (as query_answer() drops those).  Both buffers are allocated at their exact sizes,
 * so that AddressSanitizer sees a byte read or written past them.
 *
 * The stream is played twice, in reads of 1-512 bytes from byte 0 and in reads as large as the
 * buffer allows, and each time it aborts when:
 * - a message handed over is not the next one of the stream (each whole message before a zero
 *   length, exactly once, in order, with its bytes) or a frame lies beyond the bytes read;
 * - at the end, a whole message was never handed over;
 * - the answers, read back as a client reads them, are not the answers to those messages;
 * - tcp_frame_began() disagrees with where the message left in the buffer began (the message's
 *   deadline counts from its first byte's read: RFC 7766 6.2.3 in tcp.c).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/tcp_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* As in tcp.c. */
#define TCP_OUT_MAX (4 * TCP_FRAME_MAX)
#define DNS_HEADER 12

/* A stream's messages, as a client means them: each whole frame before a zero length. */
typedef struct ref {
	size_t n;
	size_t *off; /* where each message's bytes start in the stream */
	size_t *len;
} ref_t;

typedef struct conn {
	const uint8_t *stream;
	size_t slen;
	const ref_t *ref;
	uint8_t *rbuf; /* TCP_FRAME_MAX bytes */
	size_t rlen;
	size_t rbase;	/* where rbuf[0] lies in the stream */
	uint8_t *out;	/* TCP_OUT_MAX bytes */
	uint8_t *sent;	/* every byte written, in order */
	size_t nsent;	/* bytes in sent */
	size_t sentmax; /* room in sent: the answers to every message of the stream */
	size_t handed;	/* messages answered so far */
	uint32_t stall; /* LCG state: which writes must wait */
	bool writing;
	bool draining;
	bool closed;
} conn_t;

static void fail(const conn_t *c, const char *what)
{
	fprintf(stderr, "fuzz_tcp: %s (stream of %zu bytes, %zu of %zu messages answered)\n", what,
		c->slen, c->handed, c->ref->n);
	abort();
}

static void ref_build(ref_t *r, const uint8_t *s, size_t len)
{
	size_t cap = len / 3 + 1;
	r->n = 0;
	r->off = malloc(cap * sizeof(*r->off));
	r->len = malloc(cap * sizeof(*r->len));
	if (!r->off || !r->len)
		abort();
	for (size_t p = 0; len - p >= 2;) {
		size_t q = (size_t)s[p] << 8 | s[p + 1];
		if (q == 0 || len - p - 2 < q)
			break;
		r->off[r->n] = p + 2;
		r->len[r->n++] = q;
		p += 2 + q;
	}
}

/* The length of the answer to a message of len bytes at m. */
static size_t answer_len(const uint8_t *m, size_t len)
{
	if (len < DNS_HEADER)
		return 0;
	return m[0] & 0x80 ? (size_t)(DNS_MSG_MAX - m[1]) : len;
}

/* conn_send(): the bytes go out in order; whether the write has to wait is the input's. */
static void conn_send(conn_t *c, const uint8_t *p, size_t n)
{
	if (n > c->sentmax - c->nsent)
		fail(c, "more answers than messages");
	memcpy(c->sent + c->nsent, p, n);
	c->nsent += n;
	c->stall = c->stall * 1103515245u + 12345u;
	if (c->stall >> 16 & 1)
		c->writing = true;
}

/* conn_process(), with the message as its own answer. */
static void conn_process(conn_t *c)
{
	size_t off = 0, out = 0;
	while (!c->writing) {
		size_t qlen;
		tcp_frame_t f = tcp_frame_next(c->rbuf + off, c->rlen - off, &qlen);
		if (f == TCP_FRAME_END) {
			c->draining = true;
			off = c->rlen;
			break;
		}
		if (f == TCP_FRAME_MORE)
			break;
		if (off + 2 + qlen > c->rlen)
			fail(c, "a frame beyond the bytes read");
		if (out + TCP_FRAME_MAX > TCP_OUT_MAX) {
			conn_send(c, c->out, out);
			out = 0;
			continue;
		}
		const ref_t *r = c->ref;
		if (c->handed >= r->n || r->off[c->handed] != c->rbase + off + 2 ||
		    r->len[c->handed] != qlen ||
		    memcmp(c->rbuf + off + 2, c->stream + r->off[c->handed], qlen) != 0)
			fail(c, "a message handed over that is not the stream's next");
		c->handed++;
		const uint8_t *m = c->rbuf + off + 2;
		size_t alen = answer_len(m, qlen);
		off += 2 + qlen;
		if (!alen)
			continue;
		dns_put16(c->out + out, (uint16_t)alen);
		for (size_t i = 0; i < alen; i += qlen)
			memcpy(c->out + out + 2 + i, m, alen - i < qlen ? alen - i : qlen);
		out += 2 + alen;
	}
	if (out)
		conn_send(c, c->out, out);
	c->rlen = tcp_frame_shift(c->rbuf, c->rlen, off);
	c->rbase += off;
	if (c->draining && !c->writing)
		c->closed = true;
}

/* The whole connection, reads of at most max bytes (0: as many as fit) from seed. */
static void play(conn_t *c, uint32_t seed, uint32_t stall)
{
	size_t pos = 0;
	c->rlen = c->rbase = c->nsent = c->handed = 0;
	c->writing = c->draining = c->closed = false;
	c->stall = stall;
	while (!c->closed) {
		if (c->writing) {
			/* write_cb(): reads resume once the frames already read are answered. */
			c->writing = false;
			conn_process(c);
			continue;
		}
		if (pos == c->slen) {
			/* read_cb() with UV_EOF: answer what was read (above, while writing), close. */
			c->draining = true;
			c->closed = true;
			break;
		}
		/* The buffer's size as tcp.c would have it: small until a longer frame begins. */
		size_t cap = tcp_frame_cap(c->rbuf, c->rlen, 512);
		if (c->rlen > cap)
			fail(c, "tcp_frame_cap() is smaller than what the buffer holds");
		size_t n = tcp_frame_room(c->rlen, cap);
		if (n == 0)
			fail(c, "a read buffer full of frames not answered");
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 16) % 512 + 1 < n)
				n = (seed >> 16) % 512 + 1;
		}
		if (n > c->slen - pos)
			n = c->slen - pos;
		size_t before = c->rlen;
		memcpy(c->rbuf + c->rlen, c->stream + pos, n);
		c->rlen += n;
		pos += n;
		conn_process(c);
		if (c->closed)
			break;
		/* The message left began in this read when its first byte came with it. */
		bool began = c->rlen && c->rbase >= pos - n;
		if (tcp_frame_began(before, n, c->rlen) != began)
			fail(c, "tcp_frame_began() is wrong about where the message left began");
	}
	if (c->handed != c->ref->n)
		fail(c, "a whole message never handed over");

	/* The client reads the answers: one for each message of a header's size or more. */
	size_t p = 0;
	for (size_t i = 0; i < c->ref->n; i++) {
		const uint8_t *m = c->stream + c->ref->off[i];
		size_t len = c->ref->len[i], alen = answer_len(m, len);
		if (!alen)
			continue;
		if (c->nsent - p < 2 + alen || ((size_t)c->sent[p] << 8 | c->sent[p + 1]) != alen)
			fail(c, "the answers are not those of the messages");
		for (size_t j = 0; j < alen; j += len)
			if (memcmp(c->sent + p + 2 + j, m, alen - j < len ? alen - j : len) != 0)
				fail(c, "an answer's bytes are not its message's");
		p += 2 + alen;
	}
	if (p != c->nsent)
		fail(c, "more answers than messages");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	ref_t ref;
	conn_t c = { .stream = data + 2, .slen = size - 2, .ref = &ref };
	ref_build(&ref, c.stream, c.slen);
	size_t total = 0;
	for (size_t i = 0; i < ref.n; i++) {
		size_t alen = answer_len(c.stream + ref.off[i], ref.len[i]);
		total += alen ? 2 + alen : 0;
	}
	c.rbuf = malloc(TCP_FRAME_MAX);
	c.out = malloc(TCP_OUT_MAX);
	c.sent = malloc(total ? total : 1);
	c.sentmax = total;
	if (!c.rbuf || !c.out || !c.sent)
		abort();
	play(&c, data[0] ? data[0] : 1, data[1]);
	play(&c, 0, data[1]);
	free(c.rbuf);
	free(c.out);
	free(c.sent);
	free(ref.off);
	free(ref.len);
	return 0;
}
