/* SPDX-License-Identifier: MIT */
/* Error strings, stderr logging and checked allocation. */
#include "gslb/core.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int log_level = GSLB_LOG_INFO;
static const char *log_ident = "gslbd";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

const char *gslb_strerror(int err)
{
	switch (err) {
#define GSLB_ERR_CASE(name, val, msg) \
	case name:                    \
		return msg;
		GSLB_ERRNO_MAP(GSLB_ERR_CASE)
#undef GSLB_ERR_CASE
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

void gslb_log_set_level(int level)
{
	log_level = level;
}

int gslb_log_get_level(void)
{
	return log_level;
}

void gslb_log_set_ident(const char *ident)
{
	log_ident = ident;
}

int gslb_log_level_parse(const char *s)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void gslb_vlog(int level, const char *fmt, va_list ap)
{
	static const char *const tags[] = { "error", "warning", "info", "debug" };
	if (level > log_level)
		return;
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s[%s]: ", log_ident, tags[level]);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line so lines from several threads never interleave. */
	pthread_mutex_lock(&log_lock);
	fputs(line, stderr);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void gslb_log(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	gslb_vlog(level, fmt, ap);
	va_end(ap);
}

static void *oom(size_t n)
{
	fprintf(stderr, "%s: out of memory allocating %zu bytes\n", log_ident, n);
	abort();
}

void *gslb_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *gslb_calloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	return p ? p : oom(nmemb * n);
}

void *gslb_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *gslb_strdup(const char *s)
{
	char *p = strdup(s);
	return p ? p : oom(strlen(s) + 1);
}
