/* SPDX-License-Identifier: MIT */
/*
 * gslbctl daemon status and daemon reload: the running gslbd, asked over its
 * control socket (gslbd(8), "CONTROL SOCKET"; the protocol is in
 * doc/ARCHITECTURE.md).
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gslb/core.h"
#include "gslbctl.h"

/* The longest answer read: a status lists every zone and pool. */
#define REPLY_MAX (64u << 20)
/* How long a status may take; a reload loads every zone file, which may take a while. */
#define STATUS_TIMEOUT_MS 5000
#define RELOAD_TIMEOUT_MS 120000
/* What gslbctl status waits for before it says that no gslbd answers. */
#define PROBE_TIMEOUT_MS 1000

int ctl_daemon_request(const char *path, const char *cmd, int timeout_ms, char **reply)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	*reply = NULL;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = -errno;
		goto out;
	}
	size_t len = strlen(cmd);
	char line[64];
	snprintf(line, sizeof(line), "%s\n", cmd);
	if (write(fd, line, len + 1) != (ssize_t)(len + 1)) {
		ret = -errno;
		goto out;
	}
	/* The answer is one line, then gslbd closes: read to the end, within the time given. */
	uint64_t deadline = gslb_mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = gslb_mono_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) == 0) {
			ret = -ETIMEDOUT;
			goto out;
		}
		if (n + 65536 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = gslb_realloc(buf, cap + 1);
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > REPLY_MAX) {
			ret = -EMSGSIZE;
			goto out;
		}
	}
	if (n == 0) {
		ret = -ECONNRESET; /* closed without an answer */
		goto out;
	}
	buf[n] = '\0';
	*reply = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

/* Whether two paths name the same file (either may not exist: then the same text). */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	return strcmp(a, b) == 0;
}

bool ctl_daemon_check(const ctl_t *c, char *why, size_t len)
{
	char *reply = NULL;
	bool ok = true;

	if (!c->control)
		return true; /* none configured: nothing to ask, nothing to warn about */
	int ret = ctl_daemon_request(c->control, "status", PROBE_TIMEOUT_MS, &reply);
	if (ret < 0) {
		snprintf(why, len, "no gslbd answers on the control socket %s", c->control);
		return false;
	}
	/* A gslbd that answers from another database says nothing of this one's states. */
	json_t *o = json_loads(reply, 0, NULL);
	const char *db = json_string_value(json_object_get(json_object_get(o, "database"), "path"));
	if (db && !same_file(db, c->db_path)) {
		snprintf(why, len,
			 "the gslbd on the control socket %s answers from another database, %s",
			 c->control, db);
		ok = false;
	}
	json_decref(o);
	free(reply);
	return ok;
}

/* Ask the daemon; CTL_OK and the parsed object in *out, or CTL_FAIL after saying why. */
static int ask(ctl_t *c, const char *cmd, int timeout_ms, char **text, json_t **out)
{
	json_error_t jerr;

	*out = NULL;
	*text = NULL;
	if (!c->control)
		return ctl_fail(c, "the control socket is off (control = none): no gslbd to ask");
	int ret = ctl_daemon_request(c->control, cmd, timeout_ms, text);
	if (ret == -ENOENT || ret == -ECONNREFUSED)
		return ctl_fail(c,
				"no gslbd answers on the control socket %s: %s (is gslbd "
				"running, with this --control?)",
				c->control, gslb_strerror(ret));
	if (ret == -ETIMEDOUT)
		return ctl_fail(c, "control socket %s: no answer within %d s", c->control,
				timeout_ms / 1000);
	if (ret < 0)
		return ctl_fail(c, "control socket %s: %s", c->control, gslb_strerror(ret));
	*out = json_loads(*text, 0, &jerr);
	if (!*out || !json_is_object(*out))
		return ctl_fail(c, "control socket %s: the answer is not a JSON object",
				c->control);
	const char *error = json_string_value(json_object_get(*out, "error"));
	if (error)
		return ctl_fail(c, "gslbd: %s", error);
	return CTL_OK;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
	return (long long)json_number_value(json_object_get(o, key));
}

/* "3d 2h", "2h 5m", "5m 3s", "3s". */
static const char *span(long long s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm %llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
	return buf;
}

static void zones_print(const json_t *zones)
{
	size_t i;
	json_t *z;
	json_array_foreach(zones, i, z) printf("  %s serial %lld loaded %s (%s)\n", str(z, "name"),
					       num(z, "serial"), str(z, "loaded"), str(z, "file"));
}

static void database_print(const json_t *db)
{
	printf("database: %s, configuration generation %lld", str(db, "path"),
	       num(db, "generation"));
	if (!json_is_true(json_object_get(db, "ok")))
		printf(", FAILED: %s (serving the last good configuration)", str(db, "error"));
	printf("\n");
}

/* Alias members: what each host name resolved to, until when, and whether it fails now. */
static void aliases_print(const json_t *al)
{
	size_t i, j;
	json_t *v, *a;

	if (!json_array_size(al))
		return;
	printf("aliases: %zu members\n", json_array_size(al));
	json_array_foreach(al, i, v)
	{
		const json_t *addrs = json_object_get(v, "addresses");
		printf("  %s %s: %s ->", str(v, "pool"), str(v, "member"), str(v, "alias"));
		json_array_foreach(addrs, j, a) printf("%s %s", j ? "," : "", str(a, "address"));
		if (json_is_string(json_object_get(v, "expires")))
			printf("%s (expires %s)", json_array_size(addrs) ? "" : " none",
			       str(v, "expires"));
		else
			printf(" never resolved");
		if (num(v, "failures"))
			printf(", %lld failures (%s)", num(v, "failures"), str(v, "error"));
		printf("\n");
	}
}

static void status_print(const json_t *o)
{
	char b[64];
	size_t i;
	json_t *v;

	printf("gslbd %s, PID %lld, up %s (since %s)\n", str(o, "version"), num(o, "pid"),
	       span(num(o, "uptime_s"), b, sizeof(b)), str(o, "started"));
	printf("listeners:");
	json_array_foreach(json_object_get(o, "listeners"), i, v)
		printf("%s %s", i ? "," : "", json_string_value(v));
	printf("; %lld threads\n", num(o, "threads"));
	if (json_is_string(json_object_get(o, "metrics")))
		printf("metrics: http://%s/metrics\n", str(o, "metrics"));
	const json_t *zones = json_object_get(o, "zones");
	printf("zones: %zu from %s\n", json_array_size(zones), str(o, "zones_dir"));
	zones_print(zones);
	const json_t *pools = json_object_get(o, "pools");
	const json_t *served = json_object_get(pools, "served"),
		     *unserved = json_object_get(pools, "not_served");
	printf("pools: %zu served, %zu not served\n", json_array_size(served),
	       json_array_size(unserved));
	json_array_foreach(unserved, i, v)
		printf("  %s NOT SERVED (%s)\n", str(v, "name"), str(v, "reason"));
	const json_t *snap = json_object_get(o, "snapshot");
	printf("snapshot: generation %lld, built %s (%.1f s ago)\n", num(snap, "generation"),
	       str(snap, "built"), json_number_value(json_object_get(snap, "age_s")));
	database_print(json_object_get(o, "database"));
	printf("geo file: %s\n",
	       json_is_string(json_object_get(o, "geoip")) ? str(o, "geoip") : "none");
	const json_t *h = json_object_get(o, "health");
	printf("health: %lld targets", num(h, "targets"));
	if (json_is_number(json_object_get(h, "probe_lag_s")))
		printf(", last probe %.1f s ago",
		       json_number_value(json_object_get(h, "probe_lag_s")));
	printf(", %lld results waiting to be stored\n", num(h, "results_queued"));
	printf("reloads: %lld (%lld failed)\n", num(o, "reloads"), num(o, "reload_failures"));
	const json_t *cl = json_object_get(o, "cluster");
	if (json_is_object(cl))
		printf("cluster: node %s, %s, revision %lld, %lld nodes live\n", str(cl, "node"),
		       json_is_true(json_object_get(cl, "connected")) ? "connected"
								      : "NOT CONNECTED",
		       num(cl, "revision"), num(cl, "nodes_live"));
	else
		printf("cluster: none (standalone)\n");
	aliases_print(json_object_get(o, "aliases"));
}

static const ctl_optdef_t no_opts[] = {
	{ NULL, false, false },
};

int cmd_daemon_status(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char *text;
	json_t *o;

	PARSE_ARGS(c, argc, argv, no_opts, &a);
	if (a.npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[0]);
	int ret = ask(c, "status", STATUS_TIMEOUT_MS, &text, &o);
	if (ret == CTL_OK) {
		if (c->json)
			fputs(text, stdout); /* the daemon's object, as it sent it */
		else
			status_print(o);
	}
	json_decref(o);
	free(text);
	return ret;
}

int cmd_daemon_reload(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	char *text;
	json_t *o;
	size_t i;
	json_t *v;

	PARSE_ARGS(c, argc, argv, no_opts, &a);
	if (a.npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[0]);
	int ret = ask(c, "reload", RELOAD_TIMEOUT_MS, &text, &o);
	if (ret != CTL_OK)
		goto out;
	bool ok = json_is_true(json_object_get(o, "ok"));
	if (c->json) {
		fputs(text, stdout);
	} else {
		if (json_is_string(json_object_get(o, "zones_dir_error")))
			printf("zone directory %s: FAILED: %s (nothing reloaded)\n",
			       str(o, "zones_dir"), str(o, "zones_dir_error"));
		printf("zones: %lld served from %s\n", num(o, "zones_served"), str(o, "zones_dir"));
		zones_print(json_object_get(o, "zones"));
		json_array_foreach(json_object_get(o, "zones_failed"), i, v)
			printf("zone file %s: FAILED: %s\n", str(v, "file"), str(v, "error"));
		const json_t *geo = json_object_get(o, "geoip");
		if (!json_is_string(json_object_get(geo, "path")))
			printf("geo file: none\n");
		else if (json_is_true(json_object_get(geo, "ok")))
			printf("geo file: %s reloaded\n", str(geo, "path"));
		else
			printf("geo file: %s FAILED: %s (the previous one stays)\n",
			       str(geo, "path"), str(geo, "error"));
		const json_t *ck = json_object_get(o, "cookie_secret_file");
		if (json_is_string(json_object_get(ck, "path")) &&
		    !json_is_true(json_object_get(ck, "ok")))
			printf("cookie secret file: %s FAILED: %s (the secrets in use stay)\n",
			       str(ck, "path"), str(ck, "error"));
		else if (json_is_string(json_object_get(ck, "path")))
			printf("cookie secret file: %s read\n", str(ck, "path"));
		database_print(json_object_get(o, "database"));
		printf("snapshot: generation %lld\n", num(o, "generation"));
	}
	if (!ok) {
		/* The details are on stdout; stderr gets the one line every failure gets. */
		ret = ctl_fail(c, "gslbd reloaded with failures: what failed keeps its previous "
				  "version");
	}
out:
	json_decref(o);
	free(text);
	return ret;
}
