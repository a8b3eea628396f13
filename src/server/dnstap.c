/* SPDX-License-Identifier: MIT */
/*
 * The query log (--dnstap, README "Query log"): every query and its response, as dnstap
 * AUTH_QUERY and AUTH_RESPONSE messages over a Frame Streams connection to a unix socket.
 *
 * Threads.  Each DNS worker is the only producer of its own ring (tap_ring.h): after answering
 * it copies the query, the response, the addresses and the times into a free slot, or drops
 * the record and counts it when there is none.  It never waits, allocates or makes a system
 * call for the log.  One writer thread (writer_main) is the consumer of every ring: it encodes
 * each record in its slot as two dnstap messages (the protobuf wire format of dnstap.proto,
 * around the wire bytes the worker left room before, each frame's length before it) and writes
 * them as data frames itself, with fstrm's writer for the handshake and the close, over I/O
 * functions of ours on a nonblocking socket so that a stop is never held up by a reader that
 * does not read; the slots go back to the worker once written.  The
 * metrics read the rings' counters racily.  doc/ARCHITECTURE.md draws the whole.
 *
 * The writer's connection:
 *
 *	  DOWN --connect and handshake (connect_try)--> UP
 *	  UP --a write fails: the reader is gone (disconnect)--> DOWN
 *	  DOWN --backoff (100 ms, doubling up to 2 s)--> connect_try again
 *
 * While DOWN the writer still empties the rings, counting each record as dropped (no reader),
 * so the workers' rings never stay full and the counts say why records were lost; an outage
 * is logged once, when it begins, and its end once.  While UP and the reader is slower than the
 * queries, the writer waits in write() and the rings fill: records are dropped by the workers
 * (ring full).
 *
 * Life cycle: server_dnstap_new() (control thread, before the workers start) allocates the rings
 * and starts the writer; server_dnstap_free() (after every worker is joined) sets stopping, and
 * the writer writes what the rings still hold (giving up after DNSTAP_STOP_MS when the reader is
 * slow), sends the STOP frame, waits for FINISH (DNSTAP_IO_MS at most) and exits.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstrm.h>

#include "gslb/core.h"
#include "gslb/query.h"
#include "dnstap.h"
#include "src/server/dnstap.pb-c.h" /* the enum values, from the schema */

#define DNSTAP_CONTENT_TYPE "protobuf:dnstap.Dnstap"
/* Records taken from one ring before writing them: two frames each, fstrm's limit is 128. */
#define DNSTAP_BATCH 64
/* A handshake or FINISH frame not read within this long: the reader is not answering. */
#define DNSTAP_IO_MS 2000
/* At a stop, what the rings hold is written for at most this long. */
#define DNSTAP_STOP_MS 2000
#define DNSTAP_BACKOFF_MIN_MS 100
#define DNSTAP_BACKOFF_MAX_MS 2000
/* The writer sleeps this long when every ring is empty. */
#define DNSTAP_IDLE_NS 1000000

struct server_dnstap {
	char *path;
	tap_ring_t *rings; /* nrings, each one worker's */
	unsigned nrings;
	pthread_t thread;
	bool started;
	atomic_bool stopping;		   /* set by server_dnstap_free() */
	_Atomic uint64_t stop_deadline_ms; /* gslb_mono_ms() after which a stop gives up writing */

	/* The writer thread's alone from here on. */
	int fd;			 /* the connection, or -1 */
	struct fstrm_writer *fw; /* over fd while UP, else NULL */
	bool broken;		 /* fd failed: fstrm's closing frames are not even tried */
	char why[160];		 /* what the last failure of ours was, for the log */
	bool down_logged;	 /* this outage has been logged */
	unsigned backoff_ms;
	uint64_t retry_ms; /* gslb_mono_ms() of the next connect_try() */
	dnstap_enc_t enc;  /* the identity and version, encoded */
	struct iovec *iov; /* 2 * DNSTAP_BATCH frames, in the slots of one ring */
};

/* ---- the answer path (workers) ---- */

/* The answer path's side, server_dnstap_log(), is inline in dnstap.h. */

/* ---- Frame Streams I/O over our own nonblocking socket (fstrm_rdwr callbacks) ---- */

static bool stop_due(server_dnstap_t *t)
{
	return atomic_load(&t->stopping) && gslb_mono_ms() >= atomic_load(&t->stop_deadline_ms);
}

/* Wait up to 100 ms for fd to be ready for events; false when the wait must end (a stop). */
static bool io_wait(server_dnstap_t *t, short events)
{
	struct pollfd p = { .fd = t->fd, .events = events };
	if (poll(&p, 1, 100) < 0 && errno != EINTR) {
		snprintf(t->why, sizeof(t->why), "poll: %s", strerror(errno));
		return false;
	}
	if (stop_due(t)) {
		snprintf(t->why, sizeof(t->why), "stopping");
		return false;
	}
	return true;
}

/*
 * fstrm reads only control frames: ACCEPT after READY, FINISH after STOP.  A reader that does
 * not send them within DNSTAP_IO_MS is not one to write to.
 */
static fstrm_res io_read(void *obj, void *data, size_t count)
{
	server_dnstap_t *t = obj;
	uint8_t *p = data;
	uint64_t deadline = gslb_mono_ms() + DNSTAP_IO_MS;

	if (t->broken)
		return fstrm_res_failure;
	while (count) {
		ssize_t n = read(t->fd, p, count);
		if (n > 0) {
			p += n;
			count -= (size_t)n;
			continue;
		}
		if (n == 0) {
			snprintf(t->why, sizeof(t->why), "the reader closed the connection");
			goto fail;
		}
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(t->why, sizeof(t->why), "read: %s", strerror(errno));
			goto fail;
		}
		if (gslb_mono_ms() >= deadline) {
			snprintf(t->why, sizeof(t->why), "the reader did not answer within %d ms",
				 DNSTAP_IO_MS);
			goto fail;
		}
		if (!io_wait(t, POLLIN))
			goto fail;
	}
	return fstrm_res_success;
fail:
	t->broken = true;
	return fstrm_res_failure;
}

/*
 * Frames and control frames, all of them: a slow reader is waited for (the rings take the
 * backlog, then drop), except at a stop, which waits DNSTAP_STOP_MS at most.
 */
static fstrm_res io_write(void *obj, const struct iovec *iov_in, int iovcnt)
{
	server_dnstap_t *t = obj;
	struct iovec iov[IOV_MAX];
	size_t total = 0;

	if (t->broken || iovcnt > IOV_MAX)
		return fstrm_res_failure;
	for (int i = 0; i < iovcnt; i++)
		total += iov_in[i].iov_len;
	/* Mostly the socket takes it all at once. */
	ssize_t n = writev(t->fd, iov_in, iovcnt);
	if (n >= 0 && (size_t)n == total)
		return fstrm_res_success;
	memcpy(iov, iov_in, (size_t)iovcnt * sizeof(*iov));
	struct iovec *v = iov;
	for (;;) {
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				snprintf(t->why, sizeof(t->why), "write: %s", strerror(errno));
				goto fail;
			}
			if (!io_wait(t, POLLOUT))
				goto fail;
		} else {
			/* Skip what was written: whole buffers, then part of the next. */
			size_t done = (size_t)n;
			while (iovcnt > 0 && done >= v->iov_len) {
				done -= v->iov_len;
				v++;
				iovcnt--;
			}
			if (iovcnt == 0)
				return fstrm_res_success;
			v->iov_base = (uint8_t *)v->iov_base + done;
			v->iov_len -= done;
		}
		n = writev(t->fd, v, iovcnt);
	}
fail:
	t->broken = true;
	return fstrm_res_failure;
}

/* fstrm opens the stream: connect to the socket (once the rdwr is fstrm's, the fd is too). */
static fstrm_res io_open(void *obj)
{
	server_dnstap_t *t = obj;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->path);
	t->broken = false;
	t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		snprintf(t->why, sizeof(t->why), "socket: %s", strerror(errno));
		return fstrm_res_failure;
	}
	/* A unix socket connects at once or not at all (EAGAIN: its backlog is full). */
	if (connect(t->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(t->why, sizeof(t->why), "%s", strerror(errno));
		close(t->fd);
		t->fd = -1;
		return fstrm_res_failure;
	}
	return fstrm_res_success;
}

static fstrm_res io_close(void *obj)
{
	server_dnstap_t *t = obj;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	return fstrm_res_success;
}

/* ---- the writer thread ---- */

/* Log the start of an outage once (not a stop's); try again after the backoff. */
static void down(server_dnstap_t *t, const char *what)
{
	if (!t->down_logged && !atomic_load(&t->stopping))
		log_warn("dnstap: %s %s: %s; queries are not logged (and are counted in "
			 "gslbd_dnstap_dropped_total) until a reader accepts",
			 what, t->path, t->why);
	t->down_logged = true;
	t->retry_ms = gslb_mono_ms() + t->backoff_ms;
	t->backoff_ms = t->backoff_ms * 2 > DNSTAP_BACKOFF_MAX_MS ? DNSTAP_BACKOFF_MAX_MS
								  : t->backoff_ms * 2;
}

/* UP -> DOWN: the connection is dropped without the closing handshake. */
static void disconnect(server_dnstap_t *t)
{
	t->broken = true;
	fstrm_writer_destroy(&t->fw); /* closes fd through io_close */
	t->fw = NULL;
	down(t, "lost the reader at");
}

/* DOWN -> UP: connect to the socket and run the Frame Streams handshake. */
static void connect_try(server_dnstap_t *t)
{
	struct fstrm_writer_options *wopt = NULL;
	struct fstrm_rdwr *rdwr = NULL;

	t->broken = false;
	rdwr = fstrm_rdwr_init(t);
	fstrm_rdwr_set_open(rdwr, io_open);
	fstrm_rdwr_set_read(rdwr, io_read);
	fstrm_rdwr_set_write(rdwr, io_write);
	fstrm_rdwr_set_close(rdwr, io_close);
	wopt = fstrm_writer_options_init();
	fstrm_writer_options_add_content_type(wopt, DNSTAP_CONTENT_TYPE,
					      strlen(DNSTAP_CONTENT_TYPE));
	t->fw = fstrm_writer_init(wopt, &rdwr); /* owns rdwr, and so the fd, from here on */
	fstrm_writer_options_destroy(&wopt);
	if (!t->fw) {
		fstrm_rdwr_destroy(&rdwr);
		snprintf(t->why, sizeof(t->why), "cannot set up a Frame Streams writer");
		goto fail;
	}
	t->why[0] = '\0';
	if (fstrm_writer_open(t->fw) != fstrm_res_success) {
		/* Our I/O said why it failed; otherwise fstrm refused the reader's answer. */
		if (!t->why[0])
			snprintf(t->why, sizeof(t->why), "the reader does not take %s",
				 DNSTAP_CONTENT_TYPE);
		goto fail;
	}
	log_info("dnstap: writing the query log to %s", t->path);
	t->down_logged = false;
	t->backoff_ms = DNSTAP_BACKOFF_MIN_MS;
	return;
fail:
	t->broken = true;
	if (t->fw) {
		fstrm_writer_destroy(&t->fw);
		t->fw = NULL;
	}
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	down(t, "cannot write to");
}

/*
 * The protobuf encoding (the wire format of dnstap.proto), written by hand: protobuf-c's
 * generic packer walks every field descriptor of both messages and sizes the inner one twice,
 * about 1,500 instructions a message, more than answering the query.  The fields are written in
 * field-number order with minimal varints, as protobuf-c writes them, so the bytes are the same:
 * tests/unit/test_dnstap_encode.c checks them against protobuf-c's packer and unpacker over the
 * schema compiled by protoc-c.
 *
 * Every length is worked out first, so a message's first byte is known; then it is written
 * forward, up to the wire bytes already in place.  Most fields go in as whole words of 8 bytes
 * (or 16, the identity and version and the addresses) holding the field and whatever follows
 * it: the bytes past the field land on the message's next fields, which are written after it,
 * and every such word ends at least 7 bytes before the wire bytes (each put_word() says how
 * many bytes follow it at the least).  The last fields before the wire bytes are written byte
 * by byte.  No copy of a varying length, and few branches: about half the instructions of
 * writing each field to its length.
 */
enum {
	PB_VARINT = 0,
	PB_LEN = 2,
	PB_FIXED32 = 5,
};
#define PB_TAG(field, type) ((uint8_t)((field) << 3 | (type)))

static uint8_t *pb_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* A varint below 2^21 (ports, lengths: every one of a frame) as a little-endian word; *n bytes. */
static inline uint64_t pb_small_word(uint32_t v, size_t *n)
{
	if (v < 0x80) {
		*n = 1;
		return v;
	}
	if (v < 0x4000) {
		*n = 2;
		return (v & 0x7f) | 0x80 | (uint64_t)(v >> 7) << 8;
	}
	*n = 3;
	return (v & 0x7f) | 0x80 | (uint64_t)(((v >> 7) & 0x7f) | 0x80) << 8 |
	       (uint64_t)(v >> 14) << 16;
}

/*
 * The n (at most 8) low bytes of the little-endian word w at p, stored as a word of 8: at least
 * 8 - n bytes of the message must follow them, written later.  Returns p + n.
 */
static inline uint8_t *put_word(uint8_t *p, uint64_t w, size_t n)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	memcpy(p, &w, 8);
	return p + n;
}

static inline uint8_t *pb_fixed32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, &v, 4); /* protobuf's fixed32 is little-endian: one store */
#else
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
#endif
	return p + 4;
}

/* A length of a frame (below 2^14) exactly: the wire bytes follow it. */
static inline uint8_t *pb_len_exact(uint8_t *p, uint32_t v)
{
	if (v < 0x80) {
		*p = (uint8_t)v;
		return p + 1;
	}
	p[0] = (uint8_t)(v | 0x80);
	p[1] = (uint8_t)(v >> 7);
	return p + 2;
}

_Static_assert(TAP_DATA_MAX < 0x4000, "every length of a frame is a varint of 1-2 bytes");
/* The fields before the wire bytes, at most: prefix, Dnstap.message's tag and length, then
 * Message's type, fields 2-9 (2 + 2 + 2 x 18 + 2 x 4 + 11 + 5), 12-13 (16), tag and length. */
_Static_assert(DNSTAP_PREFIX_MAX + 3 + 2 + 64 + 16 + 3 + DNSTAP_FRAME_LEN_SIZE <= TAP_HEAD_ROOM,
	       "the head of a message and its frame's length fit before its wire bytes");

static void secs_encode(dnstap_secs_t *s, uint64_t secs)
{
	s->secs = secs;
	s->len = (uint8_t)(pb_varint(s->big, secs) - s->big);
	s->word = 0;
	for (unsigned i = 0; i < s->len && i < 7; i++)
		s->word |= (uint64_t)s->big[i] << (8 * i);
}

/*
 * Field tag: the seconds s.  At least 7 bytes follow (fields 9, 10 or 13, 14), so the word is
 * safe whenever the varint has 7 bytes at most: until the year 17,800,000.
 */
static inline uint8_t *put_secs(uint8_t *p, uint8_t tag, const dnstap_secs_t *s)
{
	if (likely(s->len <= 7))
		return put_word(p, tag | s->word << 8, 1 + (size_t)s->len);
	*p++ = tag;
	memcpy(p, s->big, s->len);
	return p + s->len;
}

void server_dnstap_enc_init(dnstap_enc_t *e, const char *identity, const char *version)
{
	uint8_t *p = e->prefix;
	size_t ilen = strnlen(identity, DNSTAP_TEXT_MAX), vlen = strnlen(version, DNSTAP_TEXT_MAX);

	memset(e, 0, sizeof(*e));
	if (ilen) {
		*p++ = PB_TAG(1, PB_LEN);
		p = pb_len_exact(p, (uint32_t)ilen);
		memcpy(p, identity, ilen);
		p += ilen;
	}
	*p++ = PB_TAG(2, PB_LEN);
	p = pb_len_exact(p, (uint32_t)vlen);
	memcpy(p, version, vlen);
	p += vlen;
	e->prefix_len = (size_t)(p - e->prefix);
	secs_encode(&e->secs, 0);
	e->lport_pb = 0;
	e->lport_len = 1;
}

/*
 * What both messages of a record carry, worked out once: Message fields 2-9 (hdr: fields 2 and
 * 3, then field 4's tag and length; the peer's port's varint) and their length.
 */
typedef struct common {
	uint64_t hdr, pport;
	size_t alen, pport_len, len;
} common_t;

/*
 * Message fields 2-9 of rec at p.  At least 7 bytes follow them (fields 10 or 12-14); within
 * them, 19 bytes follow the peer's address at the least, 13 the local one's.
 */
static inline uint8_t *put_common(const dnstap_enc_t *e, uint8_t *p, const tap_rec_t *rec,
				  const common_t *c)
{
	if (rec->family) {
		p = put_word(p, c->hdr, 6);
		memcpy(p, rec->peer, 16); /* 16 bytes stored, alen kept: 4 for IPv4 */
		p += c->alen;
		p = put_word(p, PB_TAG(5, PB_LEN) | c->alen << 8, 2);
		memcpy(p, rec->local, 16);
		p += c->alen;
		p = put_word(p, PB_TAG(6, PB_VARINT) | c->pport << 8, 1 + c->pport_len);
		p = put_word(p, PB_TAG(7, PB_VARINT) | e->lport_pb << 8, 1 + (size_t)e->lport_len);
	} else {
		p = put_word(p, c->hdr, 2);
	}
	/* Both halves carry the query's time, so a reader can pair them and time the answer. */
	p = put_secs(p, PB_TAG(8, PB_VARINT), &e->secs);
	*p = PB_TAG(9, PB_FIXED32);
	return pb_fixed32(p + 1, rec->query_nsec);
}

/*
 * n bytes (16 to COMMON_MAX) from src to dst, in chunks of 16, the last one ending at the n-th
 * byte: nothing is stored past it.
 */
#define COMMON_MAX 64
static inline void copy_16_64(uint8_t *dst, const uint8_t *src, size_t n)
{
	memcpy(dst, src, 16);
	if (n > 32) {
		memcpy(dst + 16, src + 16, 16);
		if (n > 48)
			memcpy(dst + 32, src + 32, 16);
	}
	memcpy(dst + n - 16, src + n - 16, 16);
}

_Static_assert(2 + 2 + 2 * 18 + 2 * 4 + 11 + 5 <= COMMON_MAX, "Message fields 2-9 fit 64 bytes");

/*
 * The start of one message, whose wire bytes (wlen of them) are in place at wire and whose
 * fields after the head's start (Message's type to the wire bytes' length) take rest bytes:
 * its frame's length, the stream's prefix, Dnstap.message's tag and length and Message.type,
 * and the two bytes of Dnstap.type after the wire bytes.  Sets *iov to the frame, its length
 * included; returns where Message's field 2 goes.
 */
static inline uint8_t *msg_start(const dnstap_enc_t *e, uint8_t *wire, size_t wlen, size_t rest,
				 uint8_t type, struct iovec *iov)
{
	size_t mlen = rest + wlen, mlen_len;
	uint64_t mw = pb_small_word((uint32_t)mlen, &mlen_len);
	size_t head = e->prefix_len + 1 + mlen_len + rest;
	uint8_t *p = wire - head;
	uint32_t flen = htonl((uint32_t)(head + wlen + 2));

	memcpy(p - DNSTAP_FRAME_LEN_SIZE, &flen, DNSTAP_FRAME_LEN_SIZE);
	*iov = (struct iovec){ p - DNSTAP_FRAME_LEN_SIZE, DNSTAP_FRAME_LEN_SIZE + head + wlen + 2 };
	/*
	 * Dnstap fields 1 and 2: 15 bytes follow them at the least (as many as a chunk's excess).
	 * Mostly two chunks (a host name of up to 17 bytes): those without a loop.
	 */
	size_t plen = e->prefix_len;
	memcpy(p, e->prefix, 16);
	if (plen > 16) {
		memcpy(p + 16, e->prefix + 16, 16);
		for (size_t i = 32; i < plen; i += 16)
			memcpy(p + i, e->prefix + i, 16);
	}
	p += plen;
	/* Dnstap.message's tag and length, Message.type: 11 bytes follow them at the least. */
	p = put_word(p,
		     PB_TAG(14, PB_LEN) | mw << 8 |
			     (uint64_t)(PB_TAG(1, PB_VARINT) | type << 8) << (8 * (1 + mlen_len)),
		     3 + mlen_len);
	wire[wlen] = PB_TAG(15, PB_VARINT); /* Dnstap.type, after Dnstap.message */
	wire[wlen + 1] = DNSTAP__DNSTAP__TYPE__MESSAGE;
	return p;
}

/* server_dnstap_encode(), inline in the writer's loop. */
static inline __attribute__((always_inline)) unsigned encode_rec(dnstap_enc_t *e, tap_rec_t *rec,
								 struct iovec iov[2])
{
	common_t c;

	if (unlikely(rec->query_sec != e->secs.secs))
		secs_encode(&e->secs, rec->query_sec);
	if (unlikely(rec->local_port != e->lport)) {
		size_t n;
		e->lport = rec->local_port;
		e->lport_pb = pb_small_word(rec->local_port, &n);
		e->lport_len = (uint8_t)n;
	}
	/* Message fields 2-9: family, protocol, both addresses and ports; the query's time. */
	uint8_t proto = rec->transport == QUERY_TCP ? DNSTAP__SOCKET_PROTOCOL__TCP
						    : DNSTAP__SOCKET_PROTOCOL__UDP;
	c.len = 2 + 1 + e->secs.len + 5;
	if (rec->family) {
		bool v6 = rec->family == AF_INET6;
		c.alen = v6 ? 16 : 4;
		c.pport = pb_small_word(rec->peer_port, &c.pport_len);
		c.hdr = PB_TAG(2, PB_VARINT) |
			(uint64_t)(v6 ? DNSTAP__SOCKET_FAMILY__INET6 : DNSTAP__SOCKET_FAMILY__INET)
				<< 8 |
			(uint64_t)PB_TAG(3, PB_VARINT) << 16 | (uint64_t)proto << 24 |
			(uint64_t)PB_TAG(4, PB_LEN) << 32 | (uint64_t)c.alen << 40;
		c.len += 2 + 2 * (2 + c.alen) + 1 + c.pport_len + 1 + e->lport_len;
	} else {
		c.hdr = PB_TAG(3, PB_VARINT) | (uint64_t)proto << 8;
		c.alen = c.pport = c.pport_len = 0;
	}

	/* The query: Message.type, fields 2-9, then field 10 (the query's bytes) in place. */
	uint8_t *qw = rec->data + TAP_QUERY_AT;
	size_t qlen = rec->qlen;
	uint8_t *p = msg_start(e, qw, qlen, 2 + c.len + 1 + (qlen < 0x80 ? 1 : 2),
			       DNSTAP__MESSAGE__TYPE__AUTH_QUERY, &iov[0]);
	uint8_t *common = p;
	p = put_common(e, p, rec, &c);
	*p = PB_TAG(10, PB_LEN);
	pb_len_exact(p + 1, (uint32_t)qlen);
	if (!rec->rlen)
		return 1;

	/* The response: the same fields 2-9, its time (12, 13), field 14 (its bytes) in place. */
	uint8_t *rw = qw + qlen + TAP_RESPONSE_GAP;
	size_t rlen = rec->rlen;
	uint64_t rsecs = rec->query_sec;
	uint32_t rnsec = rec->query_nsec, delay = rec->response_ns;
	if (unlikely(delay >= 1000000000u)) {
		rsecs += delay / 1000000000u;
		delay %= 1000000000u;
	}
	rnsec += delay; /* both below 10^9: no overflow */
	if (rnsec >= 1000000000u) {
		rnsec -= 1000000000u;
		rsecs++;
	}
	/* Mostly the query's second; the one kept is the query's (field 8 of the next record). */
	dnstap_secs_t other;
	const dnstap_secs_t *rs = &e->secs;
	if (unlikely(rsecs != e->secs.secs)) {
		secs_encode(&other, rsecs);
		rs = &other;
	}
	p = msg_start(e, rw, rlen, 2 + c.len + 1 + rs->len + 5 + 1 + (rlen < 0x80 ? 1 : 2),
		      DNSTAP__MESSAGE__TYPE__AUTH_RESPONSE, &iov[1]);
	if (likely(c.len >= 16)) {
		copy_16_64(p, common, c.len); /* the query's */
		p += c.len;
	} else {
		p = put_common(e, p, rec, &c);
	}
	p = put_secs(p, PB_TAG(12, PB_VARINT), rs);
	*p = PB_TAG(13, PB_FIXED32);
	p = pb_fixed32(p + 1, rnsec);
	*p = PB_TAG(14, PB_LEN);
	pb_len_exact(p + 1, (uint32_t)rlen);
	return 2;
}

unsigned server_dnstap_encode(dnstap_enc_t *e, tap_rec_t *rec, struct iovec iov[2])
{
	return encode_rec(e, rec, iov);
}

/*
 * Take up to DNSTAP_BATCH records of ring r and write them (UP) or count them as dropped
 * (DOWN).  Each record is encoded in its slot (the frames point into the slots), so the slots
 * are given back once the frames are written.  Returns the records taken.
 */
static unsigned drain_one(server_dnstap_t *t, tap_ring_t *r)
{
	unsigned n = 0, nframes = 0;

	if (!t->fw) {
		while (tap_ring_peek(r)) {
			tap_ring_release(r);
			n++;
		}
		r->dropped_no_reader += n;
		return n;
	}
	uint32_t first;
	n = tap_ring_avail(r, &first);
	if (!n)
		return 0;
	if (n > DNSTAP_BATCH)
		n = DNSTAP_BATCH;
	for (uint32_t k = 0; k < n; k++)
		nframes += encode_rec(&t->enc, tap_ring_slot(r, first + k), t->iov + nframes);
	/*
	 * The data frames, each its length then its message, are written by us, one buffer a
	 * frame in the slots (fstrm_writer_writev() would add a buffer of its own for each
	 * length): the same bytes, with fstrm's writer for the handshake and the closing frames
	 * only.
	 */
	if (io_write(t, t->iov, (int)nframes) != fstrm_res_success) {
		/* Some may have reached the reader: counted as dropped all the same. */
		r->dropped_no_reader += n;
		disconnect(t);
	} else {
		r->written += n;
	}
	tap_ring_release_n(r, n);
	return n;
}

static void *writer_main(void *arg)
{
	server_dnstap_t *t = arg;
	const struct timespec idle = { .tv_nsec = DNSTAP_IDLE_NS };

	pthread_setname_np(pthread_self(), "dnstap");
	for (;;) {
		bool stopping = atomic_load(&t->stopping);
		if (!t->fw && !stopping && gslb_mono_ms() >= t->retry_ms)
			connect_try(t);
		unsigned n = 0;
		for (unsigned i = 0; i < t->nrings; i++)
			n += drain_one(t, &t->rings[i]);
		if (stopping && (n == 0 || stop_due(t)))
			break;
		if (n == 0)
			nanosleep(&idle, NULL);
	}
	/* What is left after a stop that gave up is dropped, and counted. */
	for (unsigned i = 0; i < t->nrings; i++) {
		tap_ring_t *r = &t->rings[i];
		while (tap_ring_peek(r)) {
			tap_ring_release(r);
			r->dropped_no_reader++;
		}
	}
	if (t->fw) {
		/* STOP, then FINISH from the reader: it knows the stream ended cleanly. */
		fstrm_writer_destroy(&t->fw);
		t->fw = NULL;
	}
	return NULL;
}

/* ---- set-up and tear-down (control thread) ---- */

int server_dnstap_new(const char *path, unsigned nrings, server_dnstap_t **out)
{
	struct sockaddr_un sun;
	int ret;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("--dnstap %s: a unix socket path is at most %zu bytes", path,
			sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	server_dnstap_t *t = gslb_calloc(1, sizeof(*t));
	t->fd = -1;
	t->path = gslb_strdup(path);
	t->backoff_ms = DNSTAP_BACKOFF_MIN_MS;
	atomic_init(&t->stopping, false);
	atomic_init(&t->stop_deadline_ms, UINT64_MAX);
	char host[DNSTAP_TEXT_MAX + 1] = "";
	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	server_dnstap_enc_init(&t->enc, host, "gslbd " PACKAGE_VERSION);
	t->iov = gslb_calloc(2 * DNSTAP_BATCH, sizeof(*t->iov));
	t->rings = gslb_calloc(nrings ? nrings : 1, sizeof(*t->rings));
	for (unsigned i = 0; i < nrings; i++) {
		ret = tap_ring_init(&t->rings[i], DNSTAP_RING_SLOTS);
		if (ret < 0) {
			log_err("--dnstap: cannot allocate the rings: %s", gslb_strerror(ret));
			goto fail;
		}
		t->nrings = i + 1;
	}
	ret = -pthread_create(&t->thread, NULL, writer_main, t);
	if (ret < 0) {
		log_err("--dnstap: cannot start the writer thread: %s", gslb_strerror(ret));
		goto fail;
	}
	t->started = true;
	*out = t;
	return 0;
fail:
	server_dnstap_free(t);
	return ret;
}

tap_ring_t *server_dnstap_ring(server_dnstap_t *t, unsigned i)
{
	return i < t->nrings ? &t->rings[i] : NULL;
}

void server_dnstap_free(server_dnstap_t *t)
{
	if (!t)
		return;
	if (t->started) {
		atomic_store(&t->stop_deadline_ms, gslb_mono_ms() + DNSTAP_STOP_MS);
		atomic_store(&t->stopping, true);
		pthread_join(t->thread, NULL);
	}
	uint64_t written = 0, full = 0, large = 0, no_reader = 0;
	for (unsigned i = 0; i < t->nrings; i++) {
		written += t->rings[i].written;
		full += t->rings[i].dropped_full;
		large += t->rings[i].dropped_large;
		no_reader += t->rings[i].dropped_no_reader;
		tap_ring_deinit(&t->rings[i]);
	}
	if (t->started)
		log_info("dnstap: %" PRIu64 " queries logged; dropped: %" PRIu64
			 " with the writer behind, %" PRIu64 " too large, %" PRIu64
			 " with no reader",
			 written, full, large, no_reader);
	free(t->rings);
	free(t->iov);
	free(t->path);
	free(t);
}
