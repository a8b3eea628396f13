/* SPDX-License-Identifier: MIT */
/* The health loop's callbacks, replaced for programs that drive the probe's parser alone. */
#include <stdio.h>

#include "../src/health/internal.h"
#include "probe_stubs.h"

unsigned probe_stub_reports;
bool probe_stub_ok;
char probe_stub_reason[512];

void health_loop_report(health_target_t *t, bool ok, double latency_ms, const char *reason)
{
	(void)t;
	(void)latency_ms;
	probe_stub_reports++;
	probe_stub_ok = ok;
	snprintf(probe_stub_reason, sizeof(probe_stub_reason), "%s", reason ? reason : "");
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
