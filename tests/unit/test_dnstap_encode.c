/* SPDX-License-Identifier: MIT */
/*
 * The query log's hand-written protobuf encoder (src/server/dnstap.c) against protobuf-c over
 * the schema compiled by protoc-c (src/server/dnstap.proto): the same bytes as protobuf-c's
 * packer, and every field read back by its unpacker, for IPv4 and IPv6, UDP and TCP, a query
 * left unanswered, an unknown local address, the largest record and varints of every length.
 */

#include <arpa/inet.h>
#include <stddef.h>
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

/*
 * While quiet, the checks of check() are not reported one by one: a failure clears quiet_good
 * (the identity sweep reports one result for each identity's every shape).
 */
static bool quiet, quiet_good;
#define CHECK(cond, ...) (quiet ? (quiet_good &= (bool)(cond)) : ok(cond, __VA_ARGS__))

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
 * Encode both halves of rec in its slot; compare with what protobuf-c packs from the record as
 * it was before (its wire bytes must be left as they were), then read them back field by
 * field.  Each frame is its length, big-endian, then its message; the frames must lie within
 * the slot's data, the query's ending before the response's begins, and no byte of the slot
 * outside them may change (the encoder stores whole words past a field's end: they must land
 * within the frame).
 */
static void check(const char *what, tap_rec_t *rec)
{
	static uint8_t ref[2 * TAP_SLOT_SIZE];
	static tap_rec_t before;
	size_t alen = rec->family == AF_INET6 ? 16 : 4;
	struct iovec iov[2];

	/* Every byte of the slot not a wire byte: a pattern, to see what the encoder wrote. */
	uint8_t *qw = rec->data + TAP_QUERY_AT, *rw = qw + rec->qlen + TAP_RESPONSE_GAP;
	for (size_t i = 0; i < TAP_DATA_MAX; i++) {
		uint8_t *b = rec->data + i;
		bool wire = (b >= qw && b < qw + rec->qlen) || (b >= rw && b < rw + rec->rlen);
		if (!wire)
			*b = (uint8_t)(0xa5 ^ i);
	}
	before = *rec;
	unsigned nframes = server_dnstap_encode(&enc, rec, iov);
	CHECK(nframes == (rec->rlen ? 2u : 1u), "%s: %s", what,
	      rec->rlen ? "two messages" : "no AUTH_RESPONSE without a response");
	const uint8_t *lo = rec->data, *hi = rec->data + TAP_DATA_MAX;
	const uint8_t *q0 = iov[0].iov_base, *r0 = iov[1].iov_base;
	bool inside = q0 >= lo && q0 + iov[0].iov_len <= hi;
	if (nframes == 2)
		inside &= q0 + iov[0].iov_len <= r0 && r0 + iov[1].iov_len <= hi;
	CHECK(inside, "%s: the frames are within the slot, apart", what);
	size_t changed = 0;
	for (size_t i = 0; i < TAP_DATA_MAX; i++) {
		const uint8_t *b = rec->data + i;
		bool framed = false;
		for (unsigned f = 0; f < nframes; f++)
			framed |= b >= (const uint8_t *)iov[f].iov_base &&
				  b < (const uint8_t *)iov[f].iov_base + iov[f].iov_len;
		changed += !framed && *b != before.data[i];
	}
	CHECK(changed == 0 && memcmp(rec, &before, offsetof(tap_rec_t, data)) == 0,
	      "%s: nothing written outside the frames (%zu bytes)", what, changed);
	for (unsigned half = 0; half < nframes; half++) {
		bool response = half == 1;
		const char *name = response ? "AUTH_RESPONSE" : "AUTH_QUERY";
		const uint8_t *mine = (const uint8_t *)iov[half].iov_base + 4;
		size_t n = iov[half].iov_len - 4;
		uint32_t flen;
		memcpy(&flen, iov[half].iov_base, 4);
		CHECK(ntohl(flen) == n, "%s, %s: the frame's length, big-endian, before it", what,
		      name);
		size_t rn = reference(&before, response, ref);
		CHECK(n == rn && memcmp(mine, ref, n) == 0,
		      "%s, %s: the bytes protobuf-c packs (%zu, %zu)", what, name, n, rn);
		Dnstap__Dnstap *d = dnstap__dnstap__unpack(NULL, n, mine);
		if (!CHECK(d && d->message, "%s, %s: protobuf-c unpacks it", what, name)) {
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
				bin_is(m->response_message, resp_wire(&before), rec->rlen) &&
				m->response_time_sec == resp_sec(rec) &&
				m->response_time_nsec == resp_nsec(rec);
		else
			good &= bin_is(m->query_message, query_wire(&before), rec->qlen) &&
				!m->has_response_message && !m->has_response_time_sec;
		CHECK(good, "%s, %s: every field read back", what, name);
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

/*
 * Every shape of message: both families and none, UDP and TCP, with and without the response;
 * ports, lengths and seconds of every varint length, the local port kept from the record before
 * or not.
 */
static void shapes(tap_rec_t *rec)
{
	static const int families[] = { AF_INET, AF_INET6, 0 };
	static const uint16_t ports[] = { 0, 127, 128, 16383, 16384, 65535 };
	static const size_t lens[] = { 12, 127, 128, 700 };
	static const uint64_t secs[] = { 0, 127, 1796650000, (uint64_t)1 << 49, UINT64_MAX };
	char name[160];
	unsigned k = 0;

	for (unsigned f = 0; f < 3; f++)
		for (unsigned tr = 0; tr < 2; tr++)
			for (unsigned resp = 0; resp < 2; resp++)
				for (unsigned l = 0; l < 4; l++, k++) {
					int fam = families[f],
					    transport = tr ? QUERY_TCP : QUERY_UDP;
					size_t qlen = lens[l], rlen = resp ? lens[3 - l] : 0;
					fill(rec, fam, transport, qlen, rlen);
					rec->peer_port = ports[k % 6];
					rec->local_port = ports[(k / 2) % 6];
					rec->query_sec = secs[k % 5];
					rec->response_ns = (uint32_t)(k * 987654321u);
					snprintf(name, sizeof(name),
						 "%s %s %s, query %zu, response %zu, ports %u %u, "
						 "seconds %llu",
						 fam == AF_INET6 ? "IPv6"
						 : fam		 ? "IPv4"
								 : "no address",
						 tr ? "TCP" : "UDP",
						 resp ? "answered" : "unanswered", qlen, rlen,
						 rec->peer_port, rec->local_port,
						 (unsigned long long)rec->query_sec);
					check(name, rec);
				}
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

	shapes(&rec);

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

	/*
	 * The identity and version are copied 16 bytes at a time, past their end: every length of
	 * the identity, with every shape of message (the shortest leave the least room after it).
	 */
	for (size_t len = 0; len <= DNSTAP_TEXT_MAX; len++) {
		memset(longname, 'h', len);
		longname[len] = '\0';
		identity = longname;
		server_dnstap_enc_init(&enc, identity, version);
		quiet = quiet_good = true;
		shapes(&rec);
		quiet = false;
		ok(quiet_good, "an identity of %zu bytes: every shape as protobuf-c packs it", len);
	}
	return done_testing();
}
