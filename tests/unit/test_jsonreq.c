/*
 * test_jsonreq.c - request bodies as a table: what is a JSON object we
 * accept, and which field each refusal names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nodo/jsonreq.h"

static void
test_parse_table(void **state)
{
	static const struct {
		const char *body;
		size_t len; /* 0: strlen(body) */
		int allow_empty;
		const char *want; /* NULL: accepted; else in the detail */
	} cases[] = {
		{ "{}", 0, 0, NULL },
		{ " {\"a\":1} \n", 0, 0, NULL },
		{ "", 0, 1, NULL },
		{ "", 0, 0, "required" },
		{ "[1]", 0, 0, "object" },
		{ "\"x\"", 0, 0, "object" },
		{ "null", 0, 0, "object" },
		{ "{", 0, 0, "not valid JSON" },
		{ "{} {}", 0, 0, "after" },
		{ "{\"a\":\"\xff\"}", 0, 0, "UTF-8" },
		{ "{\"a\":\"\xc0\xaf\"}", 0, 0, "UTF-8" },     /* overlong */
		{ "{\"a\":\"\xed\xa0\x80\"}", 0, 0, "UTF-8" }, /* surrogate */
		{ "{\"a\":\"caf\xc3\xa9\"}", 0, 0, NULL },
		/* A top-level field's NUL is that field's error (below). */
		{ "{\"a\":\"\\u0000\"}", 0, 0, NULL },
		{ "{\"a\\u0000\":\"x\"}", 0, 0, "NUL" },        /* in a key */
		{ "{\"a\":{\"b\":\"\\u0000\"}}", 0, 0, "NUL" }, /* nested */
		{ "{\"a\":[\"\\u0000\"]}", 0, 0, "NUL" },       /* in a list */
		{ "{\"\\u0061\":\"\\u0000\"}", 0, 0, "NUL" }, /* escaped key */
		{ "{\"a\":\"\\\\u0000\"}", 0, 0, NULL },      /* escaped \ */
		{ "{\"a\":\"x\0\"}", 9, 0, "NUL" },
		{ "{\"a\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}", 0, 0,
		    "nested" },
		{ "{\"a\":[[[[[[[[[[[[[[1]]]]]]]]]]]]]]}", 0, 0, NULL },
		{ "{\"a\":\"[[[[[[[[[[[[[[[[[[[[\"}", 0, 0,
		    NULL }, /* in string */
		{ "{\"n\":1e999999}", 0, 0, NULL },
	};
	char detail[160];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len =
		    cases[i].len ? cases[i].len : strlen(cases[i].body);
		cJSON *root;

		detail[0] = '\0';
		root = jsonreq_parse_object(cases[i].body, len,
		    cases[i].allow_empty, detail, sizeof(detail));
		if (cases[i].want == NULL) {
			if (root == NULL)
				fail_msg("case %zu refused: %s", i, detail);
			cJSON_Delete(root);
			continue;
		}
		if (root != NULL)
			fail_msg("case %zu accepted", i);
		if (strstr(detail, cases[i].want) == NULL)
			fail_msg("case %zu: detail '%s' lacks '%s'", i, detail,
			    cases[i].want);
		if (strncmp(detail, "body: ", 6) != 0)
			fail_msg("case %zu: detail '%s' names no field", i,
			    detail);
	}
}

static void
test_nul_fields(void **state)
{
	/* "a\u0000b" in subdomain; the escaped backslash in pw is no NUL. */
	const char body[] =
	    "{\"subdomain\":\"a\\u0000b\",\"pw\":\"x\\\\u0000\","
	    "\"n\":\"\\\\\\u0000\",\"k\":\"subdomain\"}";
	char detail[160];
	cJSON *root;

	(void)state;
	root =
	    jsonreq_parse_object(body, strlen(body), 0, detail, sizeof(detail));
	assert_non_null(root);
	assert_int_equal(jsonreq_has_nul(body, strlen(body), "subdomain"), 1);
	assert_int_equal(jsonreq_has_nul(body, strlen(body), "pw"), 0);
	assert_int_equal(jsonreq_has_nul(body, strlen(body), "n"), 1);
	assert_int_equal(jsonreq_has_nul(body, strlen(body), "k"), 0);
	assert_int_equal(jsonreq_has_nul(body, strlen(body), "absent"), 0);
	assert_int_equal(jsonreq_has_nul(body, strlen(body), "subdomai"), 0);
	cJSON_Delete(root);
}

static void
test_string_fields(void **state)
{
	const char body[] = "{\"subdomain\":\"acme\",\"n\":5,\"z\":null,"
	                    "\"d\":\"x\",\"d\":\"y\"}";
	char detail[160];
	const char *v;
	cJSON *root;

	root =
	    jsonreq_parse_object(body, strlen(body), 0, detail, sizeof(detail));
	assert_non_null(root);
	assert_int_equal(jsonreq_string(root, "subdomain", 1, &v, detail,
	                     sizeof(detail)),
	    0);
	assert_string_equal(v, "acme");
	assert_int_equal(jsonreq_string(root, "missing", 0, &v, detail,
	                     sizeof(detail)),
	    0);
	assert_null(v);
	assert_int_equal(jsonreq_string(root, "z", 0, &v, detail,
	                     sizeof(detail)),
	    0);
	assert_null(v);
	assert_int_equal(jsonreq_string(root, "missing", 1, &v, detail,
	                     sizeof(detail)),
	    -1);
	assert_string_equal(detail, "missing: required field missing");
	assert_int_equal(jsonreq_string(root, "z", 1, &v, detail,
	                     sizeof(detail)),
	    -1);
	assert_int_equal(jsonreq_string(root, "n", 0, &v, detail,
	                     sizeof(detail)),
	    -1);
	assert_string_equal(detail, "n: must be a string");
	assert_int_equal(jsonreq_string(root, "d", 0, &v, detail,
	                     sizeof(detail)),
	    -1);
	assert_string_equal(detail, "d: given more than once");
	cJSON_Delete(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_string_fields),
		cmocka_unit_test(test_nul_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
