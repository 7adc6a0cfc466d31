/*
 * fuzz_request.c - libFuzzer target for request bodies: the input is an
 * HTTP body as the API receives it (not NUL-terminated), taken through
 * jsonreq_parse_object() and jsonreq_string() the way src/api/http.c does
 * for POST /api/tenant (non-empty object; subdomain and admin_password
 * required, domain and template_db optional) and for DELETE (empty body
 * allowed, subdomain optional), then the subdomain through name_check()
 * and the domain through domain_valid(). Query strings are parsed by
 * libmicrohttpd, not by us, and are not fuzzed here.
 *
 * The create pass reads libFuzzer's buffer (ASan redzones around it), the
 * delete pass a copy against a guard page (see guard_init()).
 *
 * Besides memory errors and leaks it checks: utf8_valid() agrees with an
 * independent decoder written from Unicode's table of well-formed byte
 * sequences (3-7); a parsed root is an object; every string handed out is
 * valid UTF-8; details are non-empty sentences that fit their buffer; a
 * name that passes name_check() obeys the subdomain rule.
 */
#include <sys/mman.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nodo/jsonreq.h"
#include "nodo/log.h"
#include "nodo/names.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_request: %s:%d: broken: %s\n",   \
			    __FILE__, __LINE__, #cond);                        \
			abort();                                               \
		}                                                              \
	} while (0)

#define DETAIL_LEN 160   /* the size src/api/http.c gives */
#define TEMPLATE   "tcs" /* SETTINGS_DEFAULT_TEMPLATE */

#include "guard.h"

/* Unicode 15, table 3-7: 0 when s is well-formed UTF-8. */
static int
ref_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	unsigned char c, lo, hi;

	while (i < n) {
		c = s[i];
		lo = 0x80;
		hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c == 0xe0) {
			need = 2;
			lo = 0xa0;
		} else if (c == 0xed) {
			need = 2;
			hi = 0x9f;
		} else if (c >= 0xe1 && c <= 0xef)
			need = 2;
		else if (c == 0xf0) {
			need = 3;
			lo = 0x90;
		} else if (c >= 0xf1 && c <= 0xf3)
			need = 3;
		else if (c == 0xf4) {
			need = 3;
			hi = 0x8f;
		} else
			return -1;
		if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
			return -1;
		for (k = 2; k <= need; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
		i += need + 1;
	}
	return 0;
}

static void
check_detail(const char *detail)
{
	size_t len = strnlen(detail, DETAIL_LEN);

	REQUIRE(len > 0 && len < DETAIL_LEN);
}

/* The string field of root, checked; NULL when absent or refused. */
static const char *
field(const cJSON *root, const char *name, int required, char *detail)
{
	const char *out = (const char *)1;
	int rc;

	detail[0] = '\0';
	rc = jsonreq_string(root, name, required, &out, detail, DETAIL_LEN);
	REQUIRE(rc == 0 || rc == -1);
	if (rc == -1) {
		REQUIRE(out == NULL);
		check_detail(detail);
		return NULL;
	}
	if (required)
		REQUIRE(out != NULL);
	if (out != NULL)
		REQUIRE(ref_utf8((const unsigned char *)out, strlen(out)) == 0);
	return out;
}

static void
check_subdomain(const char *sub)
{
	enum name_check nc;
	size_t i, len;

	if (sub == NULL)
		return;
	nc = name_check(sub, TEMPLATE);
	REQUIRE(nc == NAME_OK || nc == NAME_INVALID || nc == NAME_RESERVED);
	if (nc == NAME_INVALID)
		return;
	len = strlen(sub);
	REQUIRE(len >= NAME_MIN && len <= NAME_MAX_LEN);
	for (i = 0; i < len; i++)
		REQUIRE((sub[i] >= 'a' && sub[i] <= 'z') ||
		    (sub[i] >= '0' && sub[i] <= '9') ||
		    (i > 0 && i + 1 < len && (sub[i] == '-' || sub[i] == '_')));
	if (nc == NAME_OK)
		REQUIRE(strcmp(sub, TEMPLATE) != 0 &&
		    strcmp(sub, "postgres") != 0 &&
		    strncmp(sub, NAME_TMP_PREFIX, strlen(NAME_TMP_PREFIX)) !=
		        0);
}

/* One pass as do_create() (allow_empty 0) or do_delete() (1) does it. */
static void
one_pass(const char *body, size_t len, int allow_empty, char *detail)
{
	const char *dom;
	cJSON *root;

	detail[0] = '\0';
	root = jsonreq_parse_object(body, len, allow_empty, detail, DETAIL_LEN);
	if (root == NULL) {
		check_detail(detail);
		return;
	}
	REQUIRE(cJSON_IsObject(root));
	/* The NUL scan of an accepted body, as get_string() runs it. */
	REQUIRE((unsigned)jsonreq_has_nul(body, len, "subdomain") <= 1);
	REQUIRE((unsigned)jsonreq_has_nul(body, len, "admin_password") <= 1);
	if (allow_empty) {
		check_subdomain(field(root, "subdomain", 0, detail));
	} else {
		check_subdomain(field(root, "subdomain", 1, detail));
		(void)field(root, "admin_password", 1, detail);
		if ((dom = field(root, "domain", 0, detail)) != NULL)
			(void)domain_valid(dom);
		(void)field(root, "template_db", 0, detail);
	}
	cJSON_Delete(root);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERR);
	guard_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *detail;

	REQUIRE((utf8_valid(data, size) == 0) == (ref_utf8(data, size) == 0));
	/* Exactly the size the API gives, so ASan sees an overflow. */
	if ((detail = malloc(DETAIL_LEN)) == NULL)
		return 0;
	one_pass((const char *)data, size, 0, detail);
	one_pass(guard_copy(data, size), size, 1, detail);
	free(detail);
	return 0;
}
