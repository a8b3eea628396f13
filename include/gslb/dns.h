/* SPDX-License-Identifier: MIT */
/* DNS wire-format constants and bounds-checked name helpers (no I/O, no allocation). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_NAME_MAX 255 /* RFC 1035 2.3.4, wire length */
#define DNS_LABEL_MAX 63 /* RFC 1035 2.3.4, bytes of a label */
#define DNS_LABELS_MAX 128
#define DNS_UDP_MIN 512	      /* RFC 1035 4.2.1 */
#define DNS_EDNS_UDP_MAX 1232 /* what we advertise and never exceed over UDP */
#define DNS_MSG_MAX 65535

enum dns_type {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_PTR = 12,
	DNS_T_HINFO = 13,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_SRV = 33,
	DNS_T_DNAME = 39,
	DNS_T_OPT = 41,
	DNS_T_DS = 43,
	DNS_T_RRSIG = 46,
	DNS_T_TKEY = 249,
	DNS_T_TSIG = 250,
	DNS_T_IXFR = 251,
	DNS_T_AXFR = 252,
	DNS_T_MAILB = 253,
	DNS_T_MAILA = 254,
	DNS_T_ANY = 255,
};

enum dns_class {
	DNS_C_IN = 1,
	DNS_C_CH = 3,
	DNS_C_NONE = 254,
	DNS_C_ANY = 255,
};

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
	DNS_RCODE_YXDOMAIN = 6, /* RFC 6672 2.2: a DNAME substitution too long */
	DNS_RCODE_NOTAUTH = 9,	/* RFC 8945 5.2: with a TSIG error */
	DNS_RCODE_BADVERS = 16, /* extended, RFC 6891 6.1.3 */
};

enum dns_opcode {
	DNS_OPCODE_QUERY = 0,
};

enum dns_edns_opt {
	DNS_EDNS_NSID = 3,	/* RFC 5001 */
	DNS_EDNS_ECS = 8,	/* RFC 7871 */
	DNS_EDNS_COOKIE = 10,	/* RFC 7873 */
	DNS_EDNS_KEEPALIVE = 11 /* RFC 7828 edns-tcp-keepalive */
};

/* Header flag bits within the 16-bit flags word (host order). */
#define DNS_F_QR 0x8000
#define DNS_F_AA 0x0400
#define DNS_F_TC 0x0200
#define DNS_F_RD 0x0100
#define DNS_F_RA 0x0080
#define DNS_F_AD 0x0020
#define DNS_F_CD 0x0010
#define DNS_EDNS_DO 0x8000

static inline uint16_t dns_get16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t dns_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void dns_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void dns_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint8_t dns_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/**
 * Validate an uncompressed wire name in buf[0..len) and return its length
 * including the root label, or -1 if it is malformed, compressed or longer
 * than 255 bytes.
 */
int dns_name_len(const uint8_t *buf, size_t len);

/**
 * Copy the possibly compressed name at pos of the message m[0..len) into out
 * (DNS_NAME_MAX bytes), uncompressed.  Pointers must point backwards, so a
 * pointer loop cannot occur.  Returns the name's length, or -1 when it is
 * malformed or longer than 255 bytes.
 */
int dns_name_unpack(const uint8_t *m, size_t len, size_t pos, uint8_t *out);

/** Lowercase copy of a valid uncompressed wire name; returns its length. */
size_t dns_name_lower(uint8_t *dst, const uint8_t *name);

/** Number of labels in a valid wire name, root excluded ("\3www\0" is 1). */
int dns_name_labels(const uint8_t *name);

/** Case-insensitive equality of two valid wire names. */
bool dns_name_eq(const uint8_t *a, const uint8_t *b);

/**
 * Parse a presentation-format name ("www.example.com." or relative is not
 * accepted: the trailing dot is optional, the name is taken as absolute) into
 * wire format.  Returns the wire length or -1.  "\." and "\DDD" escapes work.
 */
int dns_name_from_str(uint8_t *dst, const char *s);

/** Write a wire name as text with a trailing dot into dst (>= 1024 bytes). */
void dns_name_to_str(char *dst, size_t cap, const uint8_t *name);
