/*
 * test_names.c - the subdomain and domain rules, as a table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nodo/names.h"

static void
test_name_table(void **state)
{
	static const struct {
		const char *name;
		enum name_check want;
	} cases[] = {
		{ "acme", NAME_OK },
		{ "nuevo_cliente", NAME_OK },
		{ "a1", NAME_OK },
		{ "0-9", NAME_OK },
		{ "a-b_c", NAME_OK },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaa",
		    NAME_OK }, /* 63 */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaa",
		    NAME_INVALID }, /* 64 */
		{ "", NAME_INVALID },
		{ "a", NAME_INVALID },
		{ "Acme", NAME_INVALID },
		{ "-x", NAME_INVALID },
		{ "x-", NAME_INVALID },
		{ "_x", NAME_INVALID },
		{ "x_", NAME_INVALID },
		{ "../x", NAME_INVALID },
		{ "a b", NAME_INVALID },
		{ "a.b", NAME_INVALID },
		{ "x;drop database tcs", NAME_INVALID },
		{ "caf\xc3\xa9", NAME_INVALID },
		{ "_nodo_0123", NAME_INVALID },
		{ "postgres", NAME_RESERVED },
		{ "template0", NAME_RESERVED },
		{ "template1", NAME_RESERVED },
		{ "www", NAME_RESERVED },
		{ "tcs", NAME_RESERVED },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum name_check got = name_check(cases[i].name, "tcs");

		if (got != cases[i].want)
			fail_msg("name '%s': got %d, want %d", cases[i].name,
			    (int)got, (int)cases[i].want);
	}
	assert_int_equal(name_check(NULL, "tcs"), NAME_INVALID);
	assert_int_equal(name_check("tcs", NULL), NAME_OK);
}

static void
test_domain_table(void **state)
{
	static const struct {
		const char *d;
		int ok;
	} cases[] = {
		{ "sajet.us", 1 },
		{ "otro.dominio", 1 },
		{ "a.b.c", 1 },
		{ "localhost", 1 },
		{ "x-y.example", 1 },
		{ "", 0 },
		{ ".", 0 },
		{ "a..b", 0 },
		{ ".a", 0 },
		{ "a.", 0 },
		{ "-a.b", 0 },
		{ "a-.b", 0 },
		{ "Sajet.us", 0 },
		{ "sa jet.us", 0 },
		{ "sajet.us/x", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if ((domain_valid(cases[i].d) == 0) != cases[i].ok)
			fail_msg("domain '%s': want %s", cases[i].d,
			    cases[i].ok ? "valid" : "invalid");
	assert_int_not_equal(domain_valid(NULL), 0);
}

static void
test_template_names(void **state)
{
	static const char *const ok[] = { "tcs", "t", "tpl_2024", "tcs_", "a-b",
		"_tpl", "0" };
	static const char *const bad[] = { "", "-x", "Tcs", "a b", "a.b",
		"_nodo_x", "t;drop",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aa" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (template_name_valid(ok[i]) != 0)
			fail_msg("template '%s' refused", ok[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (template_name_valid(bad[i]) == 0)
			fail_msg("template '%s' accepted", bad[i]);
	assert_int_not_equal(template_name_valid(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_table),
		cmocka_unit_test(test_domain_table),
		cmocka_unit_test(test_template_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
