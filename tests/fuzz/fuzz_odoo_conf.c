/*
 * fuzz_odoo_conf.c - libFuzzer target for settings_parse_odoo_conf(), the
 * reader of Odoo's odoo.conf (Python RawConfigParser rules, [options]
 * only). The input is the file, not NUL-terminated. Besides memory errors
 * and leaks it checks the promises to the callback: keys are lower case,
 * hold no separator and no surrounding blank; values are terminated, at
 * most one line long and have no trailing blank or newline; entries come
 * in line order; -1 is returned exactly when an error was collected.
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

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_odoo_conf: %s:%d: broken: %s\n", \
			    __FILE__, __LINE__, #cond);                        \
			abort();                                               \
		}                                                              \
	} while (0)

struct seen {
	int last_line;
	int nlines;
};

static int
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

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
	REQUIRE(!blank(key[0]) && !blank(key[klen - 1]));
	for (i = 0; i < klen; i++) {
		REQUIRE(!isupper((unsigned char)key[i]));
		REQUIRE(key[i] != '=' && key[i] != ':' && key[i] != '\n');
	}
	if (vlen > 0)
		REQUIRE(!blank(val[vlen - 1]) && val[vlen - 1] != '\n');
	REQUIRE(line > s->last_line && line <= s->nlines);
	s->last_line = line;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
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
	rc = settings_parse_odoo_conf((const char *)data, size, "fuzz.conf",
	    entry_cb, &s, &errs);
	REQUIRE(rc == 0 || rc == -1);
	REQUIRE((rc == -1) == (errs.n > 0));
	REQUIRE(errs.n <= SETTINGS_MAX_ERRORS);
	for (i = 0; i < errs.n; i++)
		REQUIRE(errs.e[i].msg != NULL);
	settings_errors_free(&errs);
	return 0;
}
