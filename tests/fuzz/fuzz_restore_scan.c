/*
 * fuzz_restore_scan.c - libFuzzer target for the dump scanner of restores
 * (restore_scan.c). Besides memory errors it checks its promises: the
 * verdict does not depend on where the input is split into blocks; an
 * accepted dump passes on at most its own bytes, with exactly as many
 * newlines (so psql's line numbers are the dump's); a refusal names a
 * line of the dump.
 */
#include <sys/mman.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nodo/restore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			    "fuzz_restore_scan: %s:%d: broken: %s\n",          \
			    __FILE__, __LINE__, #cond);                        \
			abort();                                               \
		}                                                              \
	} while (0)

static int out_fd = -1;

/* Scans data in two blocks split at cut; the output's size and newlines. */
static int
scan(const uint8_t *data, size_t size, size_t cut, size_t *outlen,
    size_t *newlines, char *err, size_t errlen)
{
	struct restore_scan *sc;
	static char buf[1 << 16];
	ssize_t n;
	off_t off = 0;
	int rc;

	REQUIRE(ftruncate(out_fd, 0) == 0 && lseek(out_fd, 0, SEEK_SET) == 0);
	sc = restore_scan_new(out_fd);
	REQUIRE(sc != NULL);
	rc = restore_scan_feed(sc, (const char *)data, cut);
	if (rc == 0)
		rc =
		    restore_scan_feed(sc, (const char *)data + cut, size - cut);
	if (rc == 0)
		rc = restore_scan_end(sc);
	snprintf(err, errlen, "%s", restore_scan_error(sc));
	restore_scan_free(sc);
	*outlen = 0;
	*newlines = 0;
	while ((n = pread(out_fd, buf, sizeof(buf), off)) > 0) {
		ssize_t i;

		for (i = 0; i < n; i++)
			*newlines += buf[i] == '\n';
		*outlen += (size_t)n;
		off += n;
	}
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len1, len2, nl1, nl2, nl = 0, i;
	char e1[512], e2[512];
	int r1, r2;

	if (out_fd < 0)
		REQUIRE((out_fd = memfd_create("fuzz-scan", 0)) >= 0);
	r1 = scan(data, size, size, &len1, &nl1, e1, sizeof(e1));
	r2 = scan(data, size, size > 0 ? data[0] % (size + 1) : 0, &len2, &nl2,
	    e2, sizeof(e2));
	REQUIRE(r1 == r2);
	for (i = 0; i < size; i++)
		nl += data[i] == '\n';
	if (r1 == 0) {
		REQUIRE(len1 == len2 && nl1 == nl2);
		REQUIRE(len1 <= size);
		REQUIRE(nl1 == nl);
	} else {
		REQUIRE(strcmp(e1, e2) == 0);
		REQUIRE(strncmp(e1, "dump.sql line ", 14) == 0);
	}
	return 0;
}
