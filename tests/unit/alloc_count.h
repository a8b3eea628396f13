/* SPDX-License-Identifier: MIT */
/* A counting malloc family, for tests that show a path allocates nothing (design.md). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The program's own malloc, calloc, realloc and posix_memalign count the
 * calls made while alloc_counting is set in the calling thread, and hand
 * the work to glibc.  Under AddressSanitizer or ThreadSanitizer the
 * allocator belongs to the sanitizer: COUNT_ALLOCS is 0 and tests skip the
 * check.  One translation unit per program includes this header.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COUNT_ALLOCS 0
#endif
#endif
#ifndef COUNT_ALLOCS
#define COUNT_ALLOCS 1
#endif

static _Thread_local bool alloc_counting;
static _Atomic unsigned long alloc_count;

#if COUNT_ALLOCS
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t nmemb, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
void *malloc(size_t n);
void *calloc(size_t nmemb, size_t n);
void *realloc(void *p, size_t n);
int posix_memalign(void **p, size_t align, size_t n);

void *malloc(size_t n)
{
	alloc_count += alloc_counting;
	return __libc_malloc(n);
}

void *calloc(size_t nmemb, size_t n)
{
	alloc_count += alloc_counting;
	return __libc_calloc(nmemb, n);
}

void *realloc(void *p, size_t n)
{
	alloc_count += alloc_counting;
	return __libc_realloc(p, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
	alloc_count += alloc_counting;
	*p = __libc_memalign(align, n);
	return *p ? 0 : ENOMEM;
}
#endif
