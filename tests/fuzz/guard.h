/*
 * guard.h - a page that faults right after a copy of the input, for the
 * fuzz targets whose parser (the system's cJSON) is not instrumented.
 */
#ifndef NODO_FUZZ_GUARD_H
#define NODO_FUZZ_GUARD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * cJSON is the system's, built without ASan, so a read past the end of the
 * body inside it would go unseen. One pass therefore parses a copy that
 * ends right where a PROT_NONE page starts: such a read is a SEGV.
 */
#define GUARD_ROOM (1024 * 1024) /* bytes, largest input copied */

static char *guard_end; /* first byte of the PROT_NONE page */

static inline void
guard_init(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m;

	if (pg <= 0 || GUARD_ROOM % pg != 0)
		abort();
	m = mmap(NULL, GUARD_ROOM + (size_t)pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED ||
	    mprotect(m + GUARD_ROOM, (size_t)pg, PROT_NONE) == -1)
		abort();
	guard_end = m + GUARD_ROOM;
}

/* data copied to end at the guard page, or data itself when too large. */
static inline const char *
guard_copy(const uint8_t *data, size_t size)
{
	if (size > GUARD_ROOM)
		return (const char *)data;
	memcpy(guard_end - size, data, size);
	return guard_end - size;
}

#endif
