/* SPDX-License-Identifier: MIT */
/*
 * The query log's hand-written protobuf encoder (src/server/dnstap.c) against protobuf-c over
 * the schema compiled by protoc-c (src/server/dnstap.proto): the same bytes as protobuf-c's
 * packer, and every field read back by its unpacker, for IPv4 and IPv6, UDP and TCP, a query
 * left unanswered, an unknown local address, the largest record and varints of every length.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/query.h"
#include "../../src/server/dnstap.h"
#include "src/server/dnstap.pb-c.h"
#include "tap.h"

static dnstap_enc_t enc;
static const char *identity, *version;

/* The response's time, from the query's and the delay. */
static uint64_t resp_sec(const tap_rec_t *rec)
{
	return rec->query_sec + ((uint64_t)rec->query_nsec + rec->response_ns) / 1000000000u;
}

static uint32_t resp_nsec(const tap_rec_t *rec)
{
	return (uint32_t)(((uint64_t)rec->query_nsec + rec->response_ns) % 1000000000u);
}

static const uint8_t *query_wire(const tap_rec_t *rec)
{
	return rec->data + TAP_QUERY_AT;
}

static const uint8_t *resp_wire(const tap_rec_t *rec)
{
	return rec->data + TAP_QUERY_AT + rec->qlen + TAP_RESPONSE_GAP;
}

/* What protobuf-c packs for the same half of rec. */
static size_t reference(const tap_rec_t *rec, bool response, uint8_t *out)
{
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;
	Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
	size_t alen = rec->family == AF_INET6 ? 16 : 4;

	m.type = response ? DNSTAP__MESSAGE__TYPE__AUTH_RESPONSE
			  : DNSTAP__MESSAGE__TYPE__AUTH_QUERY;
	m.has_socket_protocol = true;
	m.socket_protocol = rec->transport == QUERY_TCP ? DNSTAP__SOCKET_PROTOCOL__TCP
							: DNSTAP__SOCKET_PROTOCOL__UDP;
	if (rec->family) {
		m.has_socket_family = m.has_query_address = m.has_response_address = true;
		m.socket_family = rec->family == AF_INET6 ? DNSTAP__SOCKET_FAMILY__INET6
							  : DNSTAP__SOCKET_FAMILY__INET;
		m.query_address = (ProtobufCBinaryData){ alen, (uint8_t *)rec->peer };
		m.response_address = (ProtobufCBinaryData){ alen, (uint8_t *)rec->local };
		m.has_query_port = m.has_response_port = true;
		m.query_port = rec->peer_port;
		m.response_port = rec->local_port;
	}
	m.has_query_time_sec = m.has_query_time_nsec = true;
	m.query_time_sec = rec->query_sec;
	m.query_time_nsec = rec->query_nsec;
	if (response) {
		m.has_response_time_sec = m.has_response_time_nsec = m.has_response_message = true;
		m.response_time_sec = resp_sec(rec);
		m.response_time_nsec = resp_nsec(rec);
		m.response_message = (ProtobufCBinaryData){ rec->rlen, (uint8_t *)resp_wire(rec) };
	} else {
		m.has_query_message = true;
		m.query_message = (ProtobufCBinaryData){ rec->qlen, (uint8_t *)query_wire(rec) };
	}
	d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
	d.has_identity = identity[0] != '\0';
	d.identity = (ProtobufCBinaryData){ strlen(identity), (uint8_t *)identity };
	d.has_version = true;
	d.version = (ProtobufCBinaryData){ strlen(version), (uint8_t *)version };
	d.message = &m;
	return dnstap__dnstap__pack(&d, out);
}

static bool bin_is(ProtobufCBinaryData b, const void *data, size_t len)
{
	return b.len == len && (len == 0 || memcmp(b.data, data, len) == 0);
}

/*
 * Encode both halves of rec in its slot; compare with protobuf-c, then read them back field by
 * field.  The frames must lie within the slot's data, and the query's frame must end before the
 * response's begins.
 */
static void check(const char *what, tap_rec_t *rec)
{
	static uint8_t ref[2 * TAP_SLOT_SIZE];
	size_t alen = rec->family == AF_INET6 ? 16 : 4;
	struct iovec iov[2];

	unsigned nframes = server_dnstap_encode(&enc, rec, iov);
	is_int(nframes, rec->rlen ? 2 : 1, "%s: %s", what,
	       rec->rlen ? "two messages" : "no AUTH_RESPONSE without a response");
	const uint8_t *lo = rec->data, *hi = rec->data + TAP_DATA_MAX;
	const uint8_t *q0 = iov[0].iov_base, *r0 = iov[1].iov_base;
	bool inside = q0 >= lo && q0 + iov[0].iov_len <= hi;
	if (nframes == 2)
		inside &= q0 + iov[0].iov_len <= r0 && r0 + iov[1].iov_len <= hi;
	ok(inside, "%s: the frames are within the slot, apart", what);
	for (unsigned half = 0; half < nframes; half++) {
		bool response = half == 1;
		const char *name = response ? "AUTH_RESPONSE" : "AUTH_QUERY";
		const uint8_t *mine = iov[half].iov_base;
		size_t n = iov[half].iov_len;
		size_t rn = reference(rec, response, ref);
		ok(n == rn && memcmp(mine, ref, n) == 0,
		   "%s, %s: the bytes protobuf-c packs (%zu, %zu)", what, name, n, rn);
		Dnstap__Dnstap *d = dnstap__dnstap__unpack(NULL, n, mine);
		if (!ok(d && d->message, "%s, %s: protobuf-c unpacks it", what, name)) {
			dnstap__dnstap__free_unpacked(d, NULL);
			continue;
		}
		const Dnstap__Message *m = d->message;
		bool good = d->type == DNSTAP__DNSTAP__TYPE__MESSAGE &&
			    d->has_identity == (identity[0] != '\0') &&
			    (!d->has_identity || bin_is(d->identity, identity, strlen(identity))) &&
			    bin_is(d->version, version, strlen(version));
		good &= m->type == (response ? DNSTAP__MESSAGE__TYPE__AUTH_RESPONSE
					     : DNSTAP__MESSAGE__TYPE__AUTH_QUERY);
		good &= m->has_socket_protocol &&
			m->socket_protocol == (rec->transport == QUERY_TCP
						       ? DNSTAP__SOCKET_PROTOCOL__TCP
						       : DNSTAP__SOCKET_PROTOCOL__UDP);
		if (rec->family)
			good &= m->has_socket_family &&
				m->socket_family == (rec->family == AF_INET6
							     ? DNSTAP__SOCKET_FAMILY__INET6
							     : DNSTAP__SOCKET_FAMILY__INET) &&
				bin_is(m->query_address, rec->peer, alen) &&
				bin_is(m->response_address, rec->local, alen) &&
				m->query_port == rec->peer_port &&
				m->response_port == rec->local_port;
		else
			good &= !m->has_socket_family && !m->has_query_address &&
				!m->has_query_port;
		good &= m->has_query_time_sec && m->query_time_sec == rec->query_sec &&
			m->query_time_nsec == rec->query_nsec;
		if (response)
			good &= !m->has_query_message &&
				bin_is(m->response_message, resp_wire(rec), rec->rlen) &&
				m->response_time_sec == resp_sec(rec) &&
				m->response_time_nsec == resp_nsec(rec);
		else
			good &= bin_is(m->query_message, query_wire(rec), rec->qlen) &&
				!m->has_response_message && !m->has_response_time_sec;
		ok(good, "%s, %s: every field read back", what, name);
		dnstap__dnstap__free_unpacked(d, NULL);
	}
}

static void fill(tap_rec_t *rec, int family, int transport, size_t qlen, size_t rlen)
{
	memset(rec, 0, sizeof(*rec));
	rec->family = (uint8_t)family;
	rec->transport = (uint8_t)transport;
	rec->query_sec = 1796650000;
	rec->query_nsec = 123456789;
	rec->response_ns = 48213;
	if (family == AF_INET) {
		inet_pton(AF_INET, "192.0.2.77", rec->peer);
		inet_pton(AF_INET, "198.51.100.53", rec->local);
	} else if (family == AF_INET6) {
		inet_pton(AF_INET6, "2001:db8::77", rec->peer);
		inet_pton(AF_INET6, "2001:db8:53::1", rec->local);
	}
	rec->peer_port = 54321;
	rec->local_port = 53;
	rec->qlen = (uint16_t)qlen;
	rec->rlen = (uint16_t)rlen;
	uint8_t *q = rec->data + TAP_QUERY_AT, *r = q + qlen + TAP_RESPONSE_GAP;
	for (size_t i = 0; i < qlen; i++)
		q[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < rlen; i++)
		r[i] = (uint8_t)(i * 5 + 1);
}

int main(void)
{
	static tap_rec_t rec;
	char longname[DNSTAP_TEXT_MAX + 1];

	identity = "ns1.example";
	version = "gslbd " PACKAGE_VERSION;
	server_dnstap_enc_init(&enc, identity, version);

	fill(&rec, AF_INET, QUERY_UDP, 40, 120);
	check("IPv4 UDP", &rec);
	fill(&rec, AF_INET6, QUERY_TCP, 33, 300);
	check("IPv6 TCP", &rec);
	fill(&rec, AF_INET, QUERY_UDP, 29, 0);
	check("a query dropped unanswered", &rec);
	fill(&rec, 0, QUERY_TCP, 50, 60);
	check("no addresses (getpeername failed)", &rec);
	fill(&rec, AF_INET, QUERY_UDP, 12, 0);
	check("the shortest query", &rec);
	fill(&rec, AF_INET6, QUERY_UDP, 100, TAP_WIRE_MAX - 100);
	check("the largest record", &rec);
	/* Ports of one, two and three varint bytes; a response of 127 and 128 bytes. */
	fill(&rec, AF_INET, QUERY_UDP, 127, 128);
	rec.peer_port = 1;
	rec.local_port = 300;
	rec.response_ns = 0;
	check("varint edges", &rec);
	rec.peer_port = 20000;
	rec.response_ns = 2000000000u;
	check("a response two seconds after its query", &rec);
	rec.peer_port = 65535;
	rec.query_sec = 0;
	rec.query_nsec = 999999999;
	rec.response_ns = 1;
	check("times at a second's edge", &rec);
	rec.query_nsec = 999999999;
	rec.response_ns = UINT32_MAX; /* the longest delay: over 4 s */
	check("the longest delay, over a second's edge", &rec);

	/* No identity (gethostname failed), and the longest one. */
	identity = "";
	server_dnstap_enc_init(&enc, identity, version);
	fill(&rec, AF_INET, QUERY_TCP, 40, 80);
	check("no identity", &rec);
	memset(longname, 'h', DNSTAP_TEXT_MAX);
	longname[DNSTAP_TEXT_MAX] = '\0';
	identity = longname;
	server_dnstap_enc_init(&enc, identity, version);
	fill(&rec, AF_INET6, QUERY_UDP, 100, TAP_WIRE_MAX - 100);
	check("the longest identity and the largest record", &rec);
	return done_testing();
}
