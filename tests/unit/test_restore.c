/*
 * test_restore.c - the dump scanner of restores (restore_scan.c), data
 * driven: each case is fed whole and then one byte at a time (a block
 * boundary anywhere), and must give the same verdict; what it passes on
 * is checked for pg_dump's \restrict lines (dropped, newline kept).
 */
#include <sys/mman.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nodo/restore.h"

struct scase {
	const char *sql;
	const char *refused; /* a word of the error, NULL: accepted */
};

static const struct scase cases[] = {
	{ "SET standard_conforming_strings = on;\nSELECT 1;\n", NULL },
	{ "CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\n\\N\n\\.\n",
	    NULL },
	{ "COPY t FROM stdin;\n\\! id\tCREATE ROLE x\n\\.\nSELECT 1;\n", NULL },
	{ "SELECT 'a;b\\! c', E'it\\'s \\\\', $$ \\! $$, $f$ ; $f$;\n", NULL },
	{ "/* a /* nested */ CREATE ROLE x; */ SELECT 1; -- \\!\n", NULL },
	{ "CREATE TABLE t (\"tablespace\" int, \"role\" int);\n", NULL },
	{ "GRANT SELECT ON TABLE t TO PUBLIC;\n", NULL },
	{ "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;\n",
	    NULL },
	{ "CREATE EXTENSION \"uuid-ossp\";\n", NULL },
	{ "SET default_tablespace = '';\n", NULL },
	{ "SELECT $1, a$b FROM t;\n", NULL },
	{ "\\restrict Abc123\nSELECT 1;\n\\unrestrict Abc123\n", NULL },
	{ "SELECT 1", NULL },
	{ "CREATE ROLE x;", "CREATE ROLE" },
	{ "create or replace role x;", "CREATE ROLE" },
	{ "DROP DATABASE IF EXISTS tcs;", "DROP DATABASE" },
	{ "ALTER SYSTEM SET x = 1;", "ALTER SYSTEM" },
	{ "GRANT a TO b;", "role membership" },
	{ "GRANT CONNECT ON DATABASE d TO b;", "ON DATABASE" },
	{ "COMMENT ON DATABASE d IS 'x';", "COMMENT ON DATABASE" },
	{ "CREATE TABLE t (a int) TABLESPACE x;", "TABLESPACE" },
	{ "COPY t TO '/tmp/x';", "COPY" },
	{ "COPY t FROM PROGRAM 'id';", "COPY" },
	{ "COPY t FROM '/etc/passwd';", "COPY" },
	{ "SET ROLE postgres;", "SET ROLE" },
	{ "RESET ROLE;", "SET ROLE" },
	{ "SET SESSION AUTHORIZATION x;", "SESSION AUTHORIZATION" },
	{ "SET standard_conforming_strings = off;", "standard_conforming" },
	{ "DO $$ BEGIN END $$;", "DO" },
	{ "CREATE EXTENSION adminpack;", "CREATE EXTENSION" },
	{ "SELECT pg_read_file('/etc/passwd');", "pg_read_file" },
	{ "SELECT \"lo_import\"('/etc/passwd');", "lo_import" },
	{ "CREATE FUNCTION f() RETURNS int AS 'select pg_ls_dir(''/'')' "
	  "LANGUAGE sql;",
	    "pg_ls_dir" },
	{ "\\! id\n", "meta-command" },
	{ "SELECT 1 \\gexec\n", "meta-command" },
	{ "  \\connect postgres\n", "meta-command" },
	{ "\\restrict abc def\n", "meta-command" },
	{ "\\restrict\n", "meta-command" },
	{ "COPY t FROM stdin;\n1\n\\.\n\\! id\n", "meta-command" },
	{ "SELECT 1;\n\n\nCREATE USER x;\n", "line 4" },
};

static void
run_case(const struct scase *c, int bytewise, char *out, size_t outlen)
{
	int fd = memfd_create("scan", 0);
	struct restore_scan *sc;
	size_t i, n = strlen(c->sql);
	int rc = 0;
	ssize_t got;

	assert_true(fd >= 0);
	sc = restore_scan_new(fd);
	assert_non_null(sc);
	if (bytewise) {
		for (i = 0; i < n && rc == 0; i++)
			rc = restore_scan_feed(sc, c->sql + i, 1);
	} else
		rc = restore_scan_feed(sc, c->sql, n);
	if (rc == 0)
		rc = restore_scan_end(sc);
	if (c->refused == NULL) {
		if (rc != 0)
			fail_msg("refused: %s (%s)", c->sql,
			    restore_scan_error(sc));
	} else {
		if (rc == 0)
			fail_msg("accepted: %s", c->sql);
		if (strstr(restore_scan_error(sc), c->refused) == NULL)
			fail_msg("%s: error '%s' lacks '%s'", c->sql,
			    restore_scan_error(sc), c->refused);
	}
	got = pread(fd, out, outlen - 1, 0);
	out[got > 0 ? got : 0] = '\0';
	restore_scan_free(sc);
	close(fd);
}

static void
test_cases(void **state)
{
	char out[4096];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i], 0, out, sizeof(out));
		run_case(&cases[i], 1, out, sizeof(out));
	}
}

static void
test_restrict_lines_dropped(void **state)
{
	static const struct scase c = {
		"\\restrict K1\nSELECT 1;\n\\unrestrict K1\n", NULL
	};
	char out[256];

	(void)state;
	run_case(&c, 1, out, sizeof(out));
	assert_string_equal(out, "\nSELECT 1;\n\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_restrict_lines_dropped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
