/*
 * util.h - small helpers the C library lacks (glibc 2.36 has no strlcpy)
 * and the monotonic clock in milliseconds. Thread-safe.
 */
#ifndef NODO_UTIL_H
#define NODO_UTIL_H

#include <stddef.h>
#include <string.h>
#include <time.h>

/* Copies src into dst (size n > 0), always terminated; returns strlen(src). */
static inline size_t
nodo_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	if (n > 0) {
		size_t k = len < n - 1 ? len : n - 1;

		memcpy(dst, src, k);
		dst[k] = '\0';
	}
	return len;
}

/* CLOCK_MONOTONIC in milliseconds: for deadlines and ages, never dates. */
static inline long long
nodo_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

#endif
