/*
 * fuzz_domains.c - libFuzzer target for settings_parse_domains(), the
 * reader of domains.json ({"zones": {"sajet.us": "<zone id>"},
 * "tunnel_id": "<id>"}). The input is the file, not NUL-terminated.
 * Besides memory errors and leaks (the zones are freed after each run) it
 * checks the result: on success 1..SETTINGS_MAX_ZONES zones, each a
 * distinct domain that names.h's domain_valid() also accepts and an id of
 * 1..64 [A-Za-z0-9_-]; on failure nothing is handed out and an error was
 * collected.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/settings.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_domains: %s:%d: broken: %s\n",   \
			    __FILE__, __LINE__, #cond);                        \
			abort();                                               \
		}                                                              \
	} while (0)

#define ID_MAX 64 /* chars of a zone or tunnel id (settings.c) */

static int
id_ok(const char *id)
{
	size_t i, len = strlen(id);

	if (len == 0 || len > ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!(isalnum((unsigned char)id[i]) || id[i] == '_' ||
		        id[i] == '-'))
			return 0;
	return 1;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Unknown fields are logged as warnings: keep quiet. */
	log_set_level(LOG_ERR);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings_errors errs;
	struct zone *zones = (struct zone *)1; /* must be reset */
	size_t nzones = 12345, i, j;
	char *tunnel = (char *)1;
	int rc;

	memset(&errs, 0, sizeof(errs));
	rc = settings_parse_domains((const char *)data, size, "fuzz.json",
	    &zones, &nzones, &tunnel, &errs);
	REQUIRE(rc == 0 || rc == -1);
	REQUIRE((rc == -1) == (errs.n > 0));
	REQUIRE(errs.n <= SETTINGS_MAX_ERRORS);
	for (i = 0; i < errs.n; i++)
		REQUIRE(errs.e[i].msg != NULL);
	if (rc == -1) {
		REQUIRE(zones == NULL && nzones == 0 && tunnel == NULL);
	} else {
		REQUIRE(zones != NULL);
		REQUIRE(nzones >= 1 && nzones <= SETTINGS_MAX_ZONES);
		REQUIRE(tunnel == NULL || id_ok(tunnel));
		for (i = 0; i < nzones; i++) {
			REQUIRE(zones[i].domain != NULL);
			REQUIRE(zones[i].zone_id != NULL);
			REQUIRE(domain_valid(zones[i].domain) == 0);
			REQUIRE(id_ok(zones[i].zone_id));
			for (j = 0; j < i; j++)
				REQUIRE(strcmp(zones[i].domain,
				            zones[j].domain) != 0);
		}
	}
	/* On failure zones is NULL and nzones 0 (checked above). */
	for (i = 0; i < nzones; i++) {
		free(zones[i].domain);
		free(zones[i].zone_id);
	}
	free(zones);
	free(tunnel);
	settings_errors_free(&errs);
	return 0;
}
