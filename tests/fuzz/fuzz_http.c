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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned reports;
static bool report_ok;

void health_loop_report(health_target_t *t, bool ok, double latency_ms, const char *reason)
{
	(void)t;
	(void)latency_ms;
	if (!reason || !*reason)
		abort();
	reports++;
	report_ok = ok;
}

char *health_loop_rbuf(struct health_loop *hl)
{
	static char buf[HEALTH_READ_BUF];
	(void)hl;
	return buf;
}

SSL_CTX *health_loop_tls(struct health_loop *hl)
{
	(void)hl;
	return NULL;
}

void health_target_handle_closed(health_target_t *t)
{
	(void)t;
}

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

	if (reports != 1 || t.probing || t.buf || t.len || t.cap) {
		fprintf(stderr, "fuzz_http: %u reports, probing %d, buffer %p (%zu/%zu)\n", reports,
			t.probing, (void *)t.buf, t.len, t.cap);
		abort();
	}
	if (report_ok && !health_expect_match(&t.check, (unsigned)t.status)) {
		fprintf(stderr, "fuzz_http: success with status %d\n", t.status);
		abort();
	}
	reports = 0;
	return 0;
}
