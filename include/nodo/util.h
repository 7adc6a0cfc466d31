/*
 * util.h - small string helpers the C library lacks (glibc 2.36 has no
 * strlcpy). Thread-safe.
 */
#ifndef NODO_UTIL_H
#define NODO_UTIL_H

#include <stddef.h>
#include <string.h>

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

#endif
