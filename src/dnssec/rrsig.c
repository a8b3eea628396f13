/* SPDX-License-Identifier: MIT */
/* RRSIG and NSEC RDATA, and RRsets in the canonical form they are signed in (RFC 4034 3, 4, 6). */
#include <errno.h>
#include <string.h>

#include "gslb/dns.h"
#include "gslb/dnssec.h"
#include "internal.h"

/* RFC 4034 6.3: RDATA compared as left-justified unsigned octet strings, the shorter first. */
static int rdata_cmp(const dnssec_rdata_t *a, const dnssec_rdata_t *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->data, b->data, n);
	if (c)
		return c;
	return (int)a->len - (int)b->len;
}

void dnssec_rdata_sort(dnssec_rdata_t *rr, size_t n)
{
	/*
	 * Insertion sort: RRsets are a few records, and qsort() may allocate
	 * (glibc's merge sort), which the answer path must not.
	 */
	for (size_t i = 1; i < n; i++) {
		dnssec_rdata_t x = rr[i];
		size_t j = i;
		while (j > 0 && rdata_cmp(&rr[j - 1], &x) > 0) {
			rr[j] = rr[j - 1];
			j--;
		}
		rr[j] = x;
	}
}

uint8_t dnssec_labels(const uint8_t *name)
{
	unsigned n = 0;
	/* RFC 4034 3.1.3: the root is not counted, nor a leading wildcard label. */
	if (name[0] == 1 && name[1] == '*')
		name += 2;
	for (size_t i = 0; name[i] && n < 128; i += 1 + (size_t)name[i])
		n++;
	return (uint8_t)n;
}

size_t dnssec_rrsig_head(uint8_t *out, uint16_t type, uint8_t algorithm, uint8_t labels,
			 uint32_t ttl, uint32_t expiration, uint32_t inception, uint16_t tag,
			 const uint8_t *signer, size_t signer_len)
{
	dns_put16(out, type);
	out[2] = algorithm;
	out[3] = labels;
	dns_put32(out + 4, ttl);
	dns_put32(out + 8, expiration);
	dns_put32(out + 12, inception);
	dns_put16(out + 16, tag);
	memcpy(out + DNSSEC_RRSIG_HEAD, signer, signer_len);
	return DNSSEC_RRSIG_HEAD + signer_len;
}

size_t dnssec_rrset_wire(uint8_t *out, size_t cap, const uint8_t *owner, size_t owner_len,
			 uint16_t type, uint32_t ttl, const dnssec_rdata_t *rr, size_t n)
{
	size_t pos = 0;
	for (size_t i = 0; i < n; i++) {
		/* RFC 4034 6.3: an RR twice in an RRset is signed once. */
		if (i > 0 && rdata_cmp(&rr[i - 1], &rr[i]) == 0)
			continue;
		if (pos + owner_len + 10 + rr[i].len > cap)
			return 0;
		memcpy(out + pos, owner, owner_len);
		pos += owner_len;
		dns_put16(out + pos, type);
		dns_put16(out + pos + 2, DNS_C_IN);
		dns_put32(out + pos + 4, ttl);
		dns_put16(out + pos + 8, rr[i].len);
		memcpy(out + pos + 10, rr[i].data, rr[i].len);
		pos += 10 + rr[i].len;
	}
	return pos;
}

int dnssec_rrsig(const dnssec_key_t *k, const uint8_t *head, size_t head_len, const uint8_t *rrs,
		 size_t rrs_len, uint8_t *scratch, size_t scratch_len, uint8_t *out)
{
	/* RFC 4034 3.1.8.1: signature = sign(RRSIG_RDATA | RR(1) | RR(2)...). */
	if (head_len + rrs_len > scratch_len)
		return -EINVAL;
	if (scratch + head_len != rrs) {
		memmove(scratch + head_len, rrs, rrs_len);
		memcpy(scratch, head, head_len);
	}
	int rc = dnssec_key_sign(k, scratch, head_len + rrs_len, out + head_len);
	if (rc < 0)
		return rc;
	if (out != head)
		memmove(out, head, head_len);
	return (int)(head_len + DNSSEC_SIG_LEN);
}

size_t dnssec_type_bitmap(uint16_t *types, size_t n, uint8_t *out)
{
	for (size_t i = 1; i < n; i++) {
		uint16_t x = types[i];
		size_t j = i;
		while (j > 0 && types[j - 1] > x) {
			types[j] = types[j - 1];
			j--;
		}
		types[j] = x;
	}
	/* RFC 4034 4.1.2: per window of 256 types, its number, its length and the bits used. */
	size_t pos = 0;
	for (size_t i = 0; i < n;) {
		uint8_t win = (uint8_t)(types[i] >> 8);
		uint8_t *w = out + pos;
		uint8_t len = 0;
		memset(w + 2, 0, 32);
		for (; i < n && (types[i] >> 8) == win; i++) {
			uint8_t lo = (uint8_t)types[i];
			w[2 + lo / 8] |= (uint8_t)(0x80 >> (lo % 8));
			if (lo / 8 + 1 > len)
				len = (uint8_t)(lo / 8 + 1);
		}
		w[0] = win;
		w[1] = len;
		pos += 2 + (size_t)len;
	}
	return pos;
}
