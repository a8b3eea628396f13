/* SPDX-License-Identifier: MIT */
/*
 * DNS Cookies' secrets (README "On the open internet"): read from
 * --cookie-secret-file at start-up and on SIGHUP, or made at random once.
 * Every snapshot carries a copy (snapshot.c), so the workers see a new
 * secret with the next snapshot and never a half-written one.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "gslb/core.h"
#include "control.h"

#define SECRET_FILE_MAX 4096

/*
 * One or two secrets of 32 hex digits each, separated by blanks or new
 * lines; a '#' starts a comment to the end of its line.  The first makes
 * cookies, the second is accepted too (RFC 9018 4.4's roll-over: add the new
 * secret second on every node, then swap the two, then drop the old).
 */
int server_cookie_secrets_parse(const char *text, uint8_t out[2][16], unsigned *n, char *err,
				size_t errlen)
{
	*n = 0;
	const char *p = text;
	while (*p) {
		if (isspace((unsigned char)*p)) {
			p++;
			continue;
		}
		if (*p == '#') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		size_t len = 0;
		while (p[len] && !isspace((unsigned char)p[len]) && p[len] != '#')
			len++;
		if (*n == 2) {
			snprintf(err, errlen, "more than two secrets");
			return -EINVAL;
		}
		if (len != 32) {
			snprintf(err, errlen,
				 "a secret is 32 hex digits (16 bytes), not %zu characters", len);
			return -EINVAL;
		}
		for (size_t i = 0; i < 16; i++) {
			int hi = gslb_hexval((unsigned char)p[2 * i]),
			    lo = gslb_hexval((unsigned char)p[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				snprintf(err, errlen, "'%.2s' is not a hex byte", p + 2 * i);
				return -EINVAL;
			}
			out[*n][i] = (uint8_t)(hi << 4 | lo);
		}
		(*n)++;
		p += len;
	}
	if (*n == 0) {
		snprintf(err, errlen, "no secret in it");
		return -EINVAL;
	}
	return 0;
}

/* Read path's secrets into out; logs why not. */
static int secrets_read(const char *path, uint8_t out[2][16], unsigned *n)
{
	char text[SECRET_FILE_MAX + 1], err[128];
	FILE *f = fopen(path, "r");
	if (!f) {
		int ret = -errno;
		log_err("cookie secret file %s: %s", path, gslb_strerror(ret));
		return ret;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
		log_warn("cookie secret file %s can be read by every user: chmod o-r it", path);
	size_t len = fread(text, 1, SECRET_FILE_MAX + 1, f);
	bool bad = ferror(f);
	fclose(f);
	if (bad || len > SECRET_FILE_MAX) {
		log_err("cookie secret file %s: %s", path, bad ? "cannot read it" : "too long");
		return -EINVAL;
	}
	text[len] = '\0';
	if (strlen(text) != len ||
	    server_cookie_secrets_parse(text, out, n, err, sizeof(err)) < 0) {
		log_err("cookie secret file %s: %s", path,
			strlen(text) != len ? "a NUL byte" : err);
		return -EINVAL;
	}
	return 0;
}

/* The secrets' first one becomes s; the one it replaces stays good for an hour. */
static void secret_replace(query_cookie_secrets_t *c, const uint8_t s[16])
{
	memcpy(c->previous, c->current, 16);
	c->previous_until = gslb_wall_ms() / 1000 + 3600;
	memcpy(c->current, s, 16);
}

int server_cookies_load(control_t *ctl, bool startup)
{
	query_cookie_secrets_t *c = &ctl->cookies;
	const char *path = ctl->conf->cookie_secret_file;
	if (!path) {
		if (!startup)
			return 0;
		/* One secret for this process's life: only its own cookies verify. */
		if (getrandom(c->current, sizeof(c->current), 0) != (ssize_t)sizeof(c->current)) {
			log_err("cannot make a cookie secret: %s", gslb_strerror(-errno));
			return -EIO;
		}
		query_cookie_secrets_ready(c);
		return 0;
	}
	uint8_t s[2][16];
	unsigned n;
	int ret = secrets_read(path, s, &n);
	if (ret < 0) {
		if (!startup)
			log_err("cookie secret file %s: keeping the secrets in use", path);
		return ret;
	}
	if (!startup && memcmp(s[0], c->current, 16) != 0) {
		/* The replaced secret stays good for as long as a cookie made with it may be. */
		secret_replace(c, s[0]);
		log_info("cookie secret replaced: cookies of the previous one are accepted for an "
			 "hour");
	}
	memcpy(c->current, s[0], 16);
	c->has_accepted = n == 2;
	if (n == 2)
		memcpy(c->accepted, s[1], 16);
	query_cookie_secrets_ready(c);
	return 0;
}

bool server_cookies_set(control_t *ctl, const uint8_t secret[16])
{
	query_cookie_secrets_t *c = &ctl->cookies;
	if (memcmp(c->current, secret, 16) == 0)
		return false;
	secret_replace(c, secret);
	query_cookie_secrets_ready(c);
	log_info("cookie secret: the cluster's from now on; cookies of the previous one are "
		 "accepted for an hour");
	return true;
}

int server_cookies_check(const char *path)
{
	uint8_t s[2][16];
	unsigned n;
	if (!path)
		return 0;
	int ret = secrets_read(path, s, &n);
	if (ret == 0)
		log_info("check-config: cookie secret file %s: %u secret%s", path, n,
			 n == 1 ? "" : "s");
	return ret;
}
