/* SPDX-License-Identifier: MIT */
/* The files gslbd and gslbctl use when told of none (gslbd(8), gslbctl(8)). */
#pragma once

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
/* gslbd's configuration file, which gslbctl reads when it exists and no -c is given. */
#define GSLB_DEFAULT_CONF SYSCONFDIR "/gslbd/gslbd.conf"
