/*
 * test_odoo_hash.c - the Odoo password hash against passlib's test vectors
 * (ODOO.md section 2), byte for byte, and the ab64 alphabet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nodo/odoo_hash.h"

static const unsigned char salt16[16] = {
	0,
	1,
	2,
	3,
	4,
	5,
	6,
	7,
	8,
	9,
	10,
	11,
	12,
	13,
	14,
	15,
};

static void
test_vector_600000(void **state)
{
	char out[ODOO_HASH_MAX];

	assert_int_equal(odoo_hash_password("admin", 5, 600000, salt16, out,
	                     sizeof(out)),
	    0);
	assert_string_equal(out,
	    "$pbkdf2-sha512$600000$AAECAwQFBgcICQoLDA0ODw"
	    "$wo5nr68L9hr/tAa6cCxILDTkJnebiD5OLdaEMIMoJV3g0cb6aLXhfhEbJ2apsxUu"
	    "zgBmaR.PNHIlwsYDONlQtw");
	assert_int_equal(strlen(out), 131);
}

static void
test_vector_350000(void **state)
{
	char out[ODOO_HASH_MAX];

	assert_int_equal(odoo_hash_password("admin", 5, 350000, salt16, out,
	                     sizeof(out)),
	    0);
	assert_string_equal(out,
	    "$pbkdf2-sha512$350000$AAECAwQFBgcICQoLDA0ODw"
	    "$I8gW.GG6O1wMXICcPHa0w8RJPKJk56ygqDuLgsNeD5XbDiM.H5BrniA/dWzB8M4N"
	    "ak4/l2TrC9DznkYN227nsQ");
}

static void
test_random_salt_differs(void **state)
{
	char a[ODOO_HASH_MAX], b[ODOO_HASH_MAX];

	assert_int_equal(odoo_hash_password("pw", 2, 1000, NULL, a, sizeof(a)),
	    0);
	assert_int_equal(odoo_hash_password("pw", 2, 1000, NULL, b, sizeof(b)),
	    0);
	assert_string_not_equal(a, b);
	assert_int_equal(strncmp(a, "$pbkdf2-sha512$1000$", 20), 0);
	/* 22 salt characters, then '$', then 86 checksum characters. */
	assert_int_equal(strlen(a), 20 + 22 + 1 + 86);
	assert_int_equal(a[20 + 22], '$');
}

static void
test_small_buffer_fails(void **state)
{
	char out[64];

	assert_int_equal(odoo_hash_password("pw", 2, 1000, salt16, out,
	                     sizeof(out)),
	    -1);
	assert_int_equal(odoo_hash_password("pw", 2, 0, salt16, out,
	                     sizeof(out)),
	    -1);
}

static void
test_ab64(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "", 0, "" },
		{ "f", 1, "Zg" },
		{ "fo", 2, "Zm8" },
		{ "foo", 3, "Zm9v" },
		{ "\xfb\xff", 2, "./8" }, /* "+/8" in base64 */
		{ "\xff\xff\xff", 3, "////" },
	};
	char out[16];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = ab64_encode((const unsigned char *)cases[i].in,
		    cases[i].len, out, sizeof(out));

		assert_string_equal(out, cases[i].out);
		assert_int_equal(n, strlen(cases[i].out));
	}
	/* Truncation keeps the string terminated. */
	assert_int_equal(ab64_encode((const unsigned char *)"foobar", 6, out,
	                     3),
	    2);
	assert_string_equal(out, "Zm");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_600000),
		cmocka_unit_test(test_vector_350000),
		cmocka_unit_test(test_random_salt_differs),
		cmocka_unit_test(test_small_buffer_fails),
		cmocka_unit_test(test_ab64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
