/*
 * test_suspend.c - the suspend mark in a database comment: read and
 * removed (suspend.h), as a table, hostile comments included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nodo/suspend.h"

static void
test_marked(void **state)
{
	static const struct {
		const char *comment;
		int want;
	} cases[] = {
		{ "nodo:domain=sajet.us;template=tcs;suspended=1", 1 },
		{ "nodo:suspended=1", 1 },
		{ "nodo:domain=a.b;suspended=1;users=3;created_at=x", 1 },
		{ "nodo:domain=sajet.us;template=tcs", 0 },
		{ "nodo:suspended=0", 0 },
		{ "nodo:suspended=11", 0 },
		{ "nodo:suspended=", 0 },
		{ "nodo:xsuspended=1", 0 },
		{ "nodo:domain=suspended=1", 0 },
		{ "suspended=1", 0 },
		{ "hand-made; suspended=1", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(suspend_marked(cases[i].comment),
		    cases[i].want);
}

static void
test_strip(void **state)
{
	static const struct {
		const char *comment;
		const char *want;
	} cases[] = {
		{ "nodo:domain=sajet.us;template=tcs;suspended=1;users=2;"
		  "created_at=2024-01-01T00:00:00Z",
		    "nodo:domain=sajet.us;template=tcs" },
		{ "nodo:suspended=1;domain=x.y", "nodo:domain=x.y" },
		{ "nodo:suspended=1", "nodo:" },
		{ "nodo:domain=x.y;;suspended=1;", "nodo:domain=x.y" },
		{ "nodo:domain=x.y;usersx=1", "nodo:domain=x.y;usersx=1" },
		{ "nodo:domain=x.y;op=z", "nodo:domain=x.y;op=z" },
		{ "a comment made by hand", "nodo:" },
		{ "", "nodo:" },
	};
	char out[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(suspend_strip_mark(cases[i].comment, out,
		                     sizeof(out)),
		    0);
		assert_string_equal(out, cases[i].want);
	}
	/* Too small: -1, never a cut comment. */
	assert_int_equal(suspend_strip_mark("nodo:domain=sajet.us", out, 10),
	    -1);
	assert_int_equal(suspend_strip_mark("nodo:", out, 5), -1);
	assert_int_equal(suspend_strip_mark("nodo:", out, 6), 0);
	assert_string_equal(out, "nodo:");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_marked),
		cmocka_unit_test(test_strip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
