/* SPDX-License-Identifier: MIT */
/*
 * Telling systemd where gslbd is (sd_notify(3), Type=notify in the unit):
 * ready once it answers, reloading, stopping, and a one-line status.
 * Without NOTIFY_SOCKET in the environment sd_notify() does nothing.  Only
 * the control thread calls this, never the answer path.
 */
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/lb.h"
#include "gslb/zone.h"
#include "control.h"

void server_notify(const control_t *ctl, enum server_notify_state state)
{
	char msg[256];
	unsigned zones = 0, pools = 0;
	struct timespec ts;

	if (ctl->cur) {
		zones = ctl->cur->data.zones ? ctl->cur->data.zones->count : 0;
		pools = ctl->cur->data.pools ? ctl->cur->data.pools->npools : 0;
	}
	switch (state) {
	case SERVER_NOTIFY_READY:
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving %u zones, %u pools", zones,
			 pools);
		break;
	case SERVER_NOTIFY_RELOADING:
		/* systemd 253 and later want the time the reload began with RELOADING=1. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
			 (unsigned long long)ts.tv_sec * 1000000ULL +
				 (unsigned long long)ts.tv_nsec / 1000ULL);
		break;
	case SERVER_NOTIFY_STOPPING:
		snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=stopping");
		break;
	default:
		return;
	}
	int ret = sd_notify(0, msg);
	if (ret < 0)
		log_debug("cannot notify systemd: %s", gslb_strerror(ret));
}
