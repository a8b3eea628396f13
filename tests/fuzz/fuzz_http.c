/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: HTTP responses from a health-check backend, as the
 * probe's parser (src/health/probe.c) receives them, in pieces of any size.
 *
 * Input: byte 0 picks the check (expect list and match string), byte 1 seeds
 * the sizes of the pieces, the rest is what the backend sends before closing.
 * The probe's loop is replaced by the four functions it calls back; the
 * parser, the chunked decoder and the status/expect code are the real ones.
 *
 * Aborts when a probe ends twice or never, when it leaves its buffer behind,
 * or when it reports success for a status its expect list refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/health/internal.h"
#include "../probe_stubs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const matches[] = { NULL, "OK", "healthy\r\n", "x" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	health_target_t t;
	memset(&t, 0, sizeof(t));
	t.check.type = HEALTH_HTTP;
	t.check.match = matches[data[0] & 3];
	switch (data[0] >> 2 & 3) {
	case 1:
		health_expect_parse(&t.check, "200");
		break;
	case 2:
		health_expect_parse(&t.check, "500-599,204");
		break;
	default:
		break; /* the default 200-399 */
	}
	t.probing = true;
	t.content_length = -1;

	/* Pieces of 1-64 bytes from a small LCG, or the whole response at once. */
	uint32_t seed = data[1];
	const char *p = (const char *)data + 2;
	size_t left = size - 2;
	while (left && t.probing) {
		size_t n = left;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			n = (seed >> 16) % 64 + 1;
			if (n > left)
				n = left;
		}
		health_http_input(&t, p, n);
		p += n;
		left -= n;
	}
	if (t.probing)
		health_http_eof(&t);

	if (probe_stub_reports != 1 || !probe_stub_reason[0] || t.probing || t.buf || t.len ||
	    t.cap) {
		fprintf(stderr,
			"fuzz_http: %u reports (reason '%s'), probing %d, buffer %p (%zu/%zu)\n",
			probe_stub_reports, probe_stub_reason, t.probing, (void *)t.buf, t.len,
			t.cap);
		abort();
	}
	if (probe_stub_ok && !health_expect_match(&t.check, (unsigned)t.status)) {
		fprintf(stderr, "fuzz_http: success with status %d\n", t.status);
		abort();
	}
	probe_stub_reports = 0;
	return 0;
}
