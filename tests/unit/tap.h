/* SPDX-License-Identifier: MIT */
/* A header-only Test Anything Protocol (TAP 13) writer shared by the C unit tests. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Usage: optionally plan(n) first (else the plan is printed at the end),
 * then ok()/is_int()/diag(), and return done_testing() from main().  The
 * state is per translation unit: every test is one program.
 */
static int tap_planned = -1;
static int tap_count;
static int tap_failures;

static inline void __attribute__((unused)) plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void __attribute__((unused, format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline void tap_vresult(bool cond, const char *fmt, va_list ap)
{
	tap_count++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failures++;
}

/** One test point; returns cond so a caller can add diagnostics on failure. */
static inline bool __attribute__((unused, format(printf, 2, 3))) ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vresult(cond, fmt, ap);
	va_end(ap);
	return cond;
}

/** Integer equality test point; prints both values when they differ. */
static inline bool __attribute__((unused, format(printf, 3, 4)))
is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vresult(got == want, fmt, ap);
	va_end(ap);
	if (got != want)
		diag("  got %lld, want %lld", got, want);
	return got == want;
}

/** Stop the whole test: TAP's "Bail out!" then exit 1. */
static inline void __attribute__((unused, noreturn, format(printf, 1, 2)))
bail_out(const char *fmt, ...)
{
	va_list ap;
	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

/** Print the plan if none was given; the exit status for main(). */
static inline int __attribute__((unused)) done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_count);
	else if (tap_planned != tap_count)
		diag("planned %d tests but ran %d", tap_planned, tap_count);
	fflush(stdout);
	if (tap_failures)
		diag("%d of %d tests failed", tap_failures, tap_count);
	return tap_failures || (tap_planned >= 0 && tap_planned != tap_count) ? 1 : 0;
}
