/* SPDX-License-Identifier: MIT */
/* The files gslbd and gslbctl use when told of none (gslbd(8), gslbctl(8)). */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The build sets them from ./configure's --sysconfdir, --localstatedir and --runstatedir. */
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

/* gslbd --zones, and what gslbctl status checks served pools against. */
#define GSLB_DEFAULT_ZONES SYSCONFDIR "/gslbd/zones"
/* gslbd --db, and gslbctl --db without $GSLB_DB. */
#define GSLB_DEFAULT_DB LOCALSTATEDIR "/lib/gslbd/gslb.db"
/* gslbd --control, and where gslbctl looks for it (gslbd(8) "CONTROL SOCKET"). */
#define GSLB_DEFAULT_CONTROL RUNSTATEDIR "/gslbd/control.sock"
/* Under systemd: the socket in the unit's RuntimeDirectory (systemd.exec(5)), see below. */
#define GSLB_CONTROL_NAME "control.sock"

/*
 * The default control socket of gslbd and gslbctl: in the unit's
 * RuntimeDirectory when systemd says where that is ($RUNTIME_DIRECTORY, its
 * first entry), which is /run/gslbd whatever --runstatedir the build had,
 * so ExecReload's gslbctl finds the socket of ExecStart's gslbd; else
 * GSLB_DEFAULT_CONTROL.  Into buf (len bytes); returns buf.
 */
static inline const char *gslb_default_control(char *buf, size_t len)
{
	const char *rt = getenv("RUNTIME_DIRECTORY");
	size_t n = rt ? strcspn(rt, ":") : 0;
	if (n && rt[0] == '/')
		snprintf(buf, len, "%.*s/" GSLB_CONTROL_NAME, (int)n, rt);
	else
		snprintf(buf, len, "%s", GSLB_DEFAULT_CONTROL);
	return buf;
}
/* gslbd's configuration file, which gslbctl reads when it exists and no -c is given. */
#define GSLB_DEFAULT_CONF SYSCONFDIR "/gslbd/gslbd.conf"
