/*
 * fuzz_env.c - libFuzzer target for settings_parse_env(), the env file
 * parser (systemd EnvironmentFile= syntax). The input is the file itself,
 * handed over without a terminating NUL so that ASan sees any read past
 * its end. Besides memory errors and leaks it checks what the parser
 * promises: keys are [A-Za-z_][A-Za-z0-9_]*, values are terminated strings
 * no longer than one line, entries come in line order, and -1 is returned
 * exactly when an error was collected.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodo/log.h"
#include "nodo/settings.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise is a finding: say which one, then crash. */
#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_env: %s:%d: broken: %s\n",       \
			    __FILE__, __LINE__, #cond);                        \
			abort();                                               \
		}                                                              \
	} while (0)

struct seen {
	int last_line; /* line of the previous entry */
	int nlines;    /* lines in the input, an upper bound */
};

static void
entry_cb(void *arg, const char *key, const char *val, int line)
{
	struct seen *s = arg;
	size_t i, klen, vlen;

	REQUIRE(key != NULL && val != NULL);
	klen = strlen(key);
	vlen = strlen(val);
	REQUIRE(klen > 0 && klen <= SETTINGS_MAX_LINE);
	REQUIRE(vlen <= SETTINGS_MAX_LINE);
	REQUIRE(isalpha((unsigned char)key[0]) || key[0] == '_');
	for (i = 1; i < klen; i++)
		REQUIRE(isalnum((unsigned char)key[i]) || key[i] == '_');
	REQUIRE(line > s->last_line && line <= s->nlines);
	s->last_line = line;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Unknown keys and the like are logged as warnings: keep quiet. */
	log_set_level(LOG_ERR);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings_errors errs;
	struct seen s = { 0, 1 };
	size_t i;
	int rc;

	for (i = 0; i < size; i++)
		if (data[i] == '\n')
			s.nlines++;
	memset(&errs, 0, sizeof(errs));
	rc = settings_parse_env((const char *)data, size, "fuzz.env", entry_cb,
	    &s, &errs);
	REQUIRE(rc == 0 || rc == -1);
	REQUIRE((rc == -1) == (errs.n > 0));
	REQUIRE(errs.n <= SETTINGS_MAX_ERRORS);
	for (i = 0; i < errs.n; i++)
		REQUIRE(errs.e[i].msg != NULL);
	settings_errors_free(&errs);
	return 0;
}
