/* SPDX-License-Identifier: MIT */
/* The files gslbd and gslbctl use when told of none (gslbd(8), gslbctl(8)). */
#pragma once

/* The build sets both from ./configure's --sysconfdir and --localstatedir. */
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

/* gslbd --zones, and what gslbctl status checks served pools against. */
#define GSLB_DEFAULT_ZONES SYSCONFDIR "/gslbd/zones"
/* gslbd --db, and gslbctl --db without $GSLB_DB. */
#define GSLB_DEFAULT_DB LOCALSTATEDIR "/lib/gslbd/gslb.db"
