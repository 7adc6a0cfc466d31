/*
 * test_cli.c - the network-free parts of nodo (src/lib/cli.c): option
 * parsing, the progress bar's text, byte sizes, URL encoding, the base
 * URL, and its settings from an env file and a fake environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nodo/cli.h"

/* ----------------------------------------------------------- parsing */

struct parsed {
	int yes, json, purge;
	const char *out;
	char *pos[4];
	int npos;
	int rc;
	char err[CLI_MAX_ERR];
};

static void
run_parse(struct parsed *p, int max, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;
	const struct cli_opt opts[] = { { "yes", 'y', 0, &p->yes, NULL },
		{ "json", 0, 0, &p->json, NULL },
		{ "purge", 0, 0, &p->purge, NULL },
		{ "output", 'o', 1, NULL, &p->out },
		{ NULL, 0, 0, NULL, NULL } };

	memset(p, 0, sizeof(*p));
	va_start(ap, max);
	for (;;) {
		char *a = va_arg(ap, char *);

		if (a == NULL)
			break;
		argv[argc++] = a;
	}
	va_end(ap);
	p->rc = cli_parse(argc, argv, opts, p->pos, max, &p->npos, p->err,
	    sizeof(p->err));
}

static void
test_parse_options_anywhere(void **state)
{
	struct parsed p;

	(void)state;
	/* the seed's `delete_tenant.sh NAME --yes` */
	run_parse(&p, 1, "borrame", "--yes", NULL);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.yes, 1);
	assert_int_equal(p.npos, 1);
	assert_string_equal(p.pos[0], "borrame");

	run_parse(&p, 2, "-y", "--json", "a", "--purge", "b", NULL);
	assert_int_equal(p.rc, 0);
	assert_true(p.yes && p.json && p.purge);
	assert_int_equal(p.npos, 2);
	assert_string_equal(p.pos[1], "b");
}

static void
test_parse_values(void **state)
{
	struct parsed p;

	(void)state;
	run_parse(&p, 1, "-o", "x.zip", "n", NULL);
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.out, "x.zip");
	run_parse(&p, 1, "--output=y.zip", "n", NULL);
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.out, "y.zip");
	run_parse(&p, 1, "n", "--output", "z.zip", NULL);
	assert_string_equal(p.out, "z.zip");
	/* "--output=" is an empty value, not a missing one */
	run_parse(&p, 1, "--output=", "n", NULL);
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.out, "");
}

static void
test_parse_end_of_options(void **state)
{
	struct parsed p;

	(void)state;
	/* a name or password that starts with "-" after "--" */
	run_parse(&p, 2, "--", "-guion", "--yes", NULL);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.yes, 0);
	assert_int_equal(p.npos, 2);
	assert_string_equal(p.pos[0], "-guion");
	assert_string_equal(p.pos[1], "--yes");
	/* "-" alone is an argument (standard output / input) */
	run_parse(&p, 2, "n", "-", NULL);
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.pos[1], "-");
}

static void
test_parse_errors(void **state)
{
	struct parsed p;

	(void)state;
	run_parse(&p, 1, "--bogus", "a", NULL);
	assert_int_equal(p.rc, -1);
	assert_non_null(strstr(p.err, "unknown option: --bogus"));
	run_parse(&p, 1, "-x", NULL);
	assert_int_equal(p.rc, -1);
	assert_non_null(strstr(p.err, "unknown option: -x"));
	/* short options do not bundle: -yo is unknown, not -y -o */
	run_parse(&p, 1, "-yo", "f", NULL);
	assert_int_equal(p.rc, -1);
	run_parse(&p, 1, "a", "b", NULL);
	assert_int_equal(p.rc, -1);
	assert_non_null(strstr(p.err, "too many arguments"));
	run_parse(&p, 1, "a", "--output", NULL);
	assert_int_equal(p.rc, -1);
	assert_non_null(strstr(p.err, "--output needs a value"));
	run_parse(&p, 1, "--yes=1", "a", NULL);
	assert_int_equal(p.rc, -1);
	assert_non_null(strstr(p.err, "--yes takes no value"));
	/* a prefix is not an abbreviation */
	run_parse(&p, 1, "--ye", "a", NULL);
	assert_int_equal(p.rc, -1);
}

/* ---------------------------------------------------------- progress */

static void
test_human_bytes(void **state)
{
	static const struct {
		unsigned long long n;
		const char *want;
	} cases[] = {
		{ 0, "0 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.00 KiB" },
		{ 1536, "1.50 KiB" },
		{ 10 * 1024, "10.0 KiB" },
		{ 1024ULL * 1024 * 123 + 1024 * 400, "123 MiB" },
		{ 5ULL * 1024 * 1024 * 1024, "5.00 GiB" },
		{ 3ULL << 40, "3.00 TiB" },
	};
	char buf[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_human_bytes(buf, sizeof(buf), cases[i].n);
		assert_string_equal(buf, cases[i].want);
	}
}

static void
test_progress_known_total(void **state)
{
	char buf[256];
	size_t n;

	(void)state;
	n = cli_progress_line(buf, sizeof(buf), 512 * 1024, 1024 * 1024, 2.0,
	    80);
	assert_int_equal(n, strlen(buf));
	assert_true(n <= 80);
	assert_non_null(strstr(buf, " 50%  512 KiB / 1.00 MiB  256 KiB/s"));
	assert_int_equal(buf[0], '[');
	/* half the bar filled, then the head */
	{
		const char *end = strchr(buf, ']');
		size_t bar = (size_t)(end - buf - 1), fill = 0;

		while (buf[1 + fill] == '=')
			fill++;
		assert_int_equal(fill, bar / 2);
		assert_int_equal(buf[1 + fill], '>');
	}
	/* done: full bar, 100 % */
	cli_progress_line(buf, sizeof(buf), 1000, 1000, 1.0, 60);
	assert_non_null(strstr(buf, "100%"));
	assert_null(strchr(buf, '>'));
	assert_int_equal(buf[1], '=');
}

static void
test_progress_widths(void **state)
{
	char buf[256];
	int w;

	(void)state;
	for (w = 0; w <= 200; w += 7) {
		size_t n = cli_progress_line(buf, sizeof(buf), 123456789,
		    987654321, 3.5, w);

		assert_true(n <= (size_t)(w < 20 ? 20 : w));
		assert_non_null(strstr(buf, "%"));
	}
	/* the bar is at most 50 wide however wide the terminal */
	cli_progress_line(buf, sizeof(buf), 1, 2, 1, 500);
	assert_true(strchr(buf, ']') - buf - 1 == 50);
	/* a tiny buffer is still terminated */
	cli_progress_line(buf, 8, 1, 2, 1, 80);
	assert_true(strlen(buf) < 8);
}

static void
test_progress_unknown_total(void **state)
{
	char buf[128];

	(void)state;
	cli_progress_line(buf, sizeof(buf), 3 * 1024 * 1024, -1, 1.5, 80);
	assert_string_equal(buf, "3.00 MiB  2.00 MiB/s");
	/* no time yet: no rate */
	cli_progress_line(buf, sizeof(buf), 100, -1, 0, 80);
	assert_string_equal(buf, "100 B");
	/* more done than announced counts as done */
	cli_progress_line(buf, sizeof(buf), 200, 100, 0, 80);
	assert_non_null(strstr(buf, "100%  200 B / 200 B"));
	/* an empty transfer is complete */
	cli_progress_line(buf, sizeof(buf), 0, 0, 0, 80);
	assert_non_null(strstr(buf, "100%"));
}

/* ------------------------------------------------------ url and env */

static void
test_urlencode(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(cli_urlencode(buf, sizeof(buf), "a-b_c.d~e"), 0);
	assert_string_equal(buf, "a-b_c.d~e");
	assert_int_equal(cli_urlencode(buf, sizeof(buf), "a/b?c&d e%"), 0);
	assert_string_equal(buf, "a%2Fb%3Fc%26d%20e%25");
	assert_int_equal(cli_urlencode(buf, sizeof(buf), "\xc3\xb1"), 0);
	assert_string_equal(buf, "%C3%B1");
	assert_int_equal(cli_urlencode(buf, 4, "abcd"), -1);
	assert_int_equal(cli_urlencode(buf, 4, "a/"), -1);
}

static void
test_base_url(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(cli_base_url(buf, sizeof(buf), NULL, 8070), 0);
	assert_string_equal(buf, "http://127.0.0.1:8070");
	cli_base_url(buf, sizeof(buf), "0.0.0.0", 1);
	assert_string_equal(buf, "http://127.0.0.1:1");
	cli_base_url(buf, sizeof(buf), "::", 80);
	assert_string_equal(buf, "http://[::1]:80");
	cli_base_url(buf, sizeof(buf), "fe80::1", 80);
	assert_string_equal(buf, "http://[fe80::1]:80");
	cli_base_url(buf, sizeof(buf), "10.1.2.3", 9);
	assert_string_equal(buf, "http://10.1.2.3:9");
	assert_int_equal(cli_base_url(buf, 10, "127.0.0.1", 8070), -1);
}

static void
test_unknown_env(void **state)
{
	(void)state;
	assert_int_equal(cli_unknown_env("NODO_API_ULR"), 1);
	assert_int_equal(cli_unknown_env("NODO_API_URL"), 0);
	assert_int_equal(cli_unknown_env("NODO_ENV_FILE"), 0);
	assert_int_equal(cli_unknown_env("NODO_BUILD"), 0);
	assert_int_equal(cli_unknown_env("HOME"), 0);
}

/* A fake environment for cli_config_load(). */
static const char *fake_env[16];

static const char *
fake_get(const char *name)
{
	size_t n = strlen(name), i;

	for (i = 0; fake_env[i] != NULL; i++)
		if (strncmp(fake_env[i], name, n) == 0 && fake_env[i][n] == '=')
			return fake_env[i] + n + 1;
	return NULL;
}

static char env_path[64];
static char env_var[96];

static void
write_env(const char *text)
{
	FILE *f;
	int fd;

	snprintf(env_path, sizeof(env_path), "/tmp/nodo-test-cli-XXXXXX");
	fd = mkstemp(env_path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	snprintf(env_var, sizeof(env_var), "NODO_ENV_FILE=%s", env_path);
}

static int
load(struct cli_config *c, char *err, size_t len)
{
	memset(c, 0, sizeof(*c));
	return cli_config_load(c, fake_get, err, len);
}

static void
test_config_from_file(void **state)
{
	struct cli_config c;
	char err[CLI_MAX_ERR];

	(void)state;
	write_env("# comment\nODOO_DOMAIN=sajet.us\n"
	          "PROVISIONING_API_KEY=\"k3y with spaces\"\n"
	          "export API_PORT = 8123\nAPI_HOST='0.0.0.0'\n");
	fake_env[0] = env_var;
	fake_env[1] = NULL;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_OK);
	assert_string_equal(c.key, "k3y with spaces");
	assert_string_equal(c.url, "http://127.0.0.1:8123");
	assert_int_equal(c.timeout, -1);
	cli_config_free(&c);

	/* the environment wins; a trailing slash is dropped */
	fake_env[1] = "NODO_API_KEY=other";
	fake_env[2] = "NODO_API_URL=http://127.0.0.1:9/";
	fake_env[3] = "NODO_API_TIMEOUT=30";
	fake_env[4] = NULL;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_OK);
	assert_string_equal(c.key, "other");
	assert_string_equal(c.url, "http://127.0.0.1:9");
	assert_int_equal(c.timeout, 30);
	cli_config_free(&c);
	unlink(env_path);

	/* with key and URL in the environment no file is needed */
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_OK);
	cli_config_free(&c);
	fake_env[0] = NULL;
}

static void
test_config_errors(void **state)
{
	struct cli_config c;
	char err[CLI_MAX_ERR];

	(void)state;
	fake_env[0] = "NODO_ENV_FILE=/nonexistent/dir/.env";
	fake_env[1] = NULL;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_CONFIG);
	assert_non_null(
	    strstr(err, "env file /nonexistent/dir/.env not found"));
	cli_config_free(&c);

	fake_env[0] = "NODO_ENV_FILE=/tmp";
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_CONFIG);
	assert_non_null(strstr(err, "cannot read the env file /tmp"));
	assert_non_null(strstr(err, "sudo"));
	cli_config_free(&c);

	write_env("API_PORT=8070\n");
	fake_env[0] = env_var;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_CONFIG);
	assert_non_null(strstr(err, "PROVISIONING_API_KEY is not set in"));
	cli_config_free(&c);
	unlink(env_path);

	write_env("PROVISIONING_API_KEY=secret-value-1\nAPI_PORT=80x\n");
	fake_env[0] = env_var;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_CONFIG);
	assert_non_null(strstr(err, "API_PORT in"));
	assert_null(strstr(err, "secret-value-1"));
	cli_config_free(&c);
	unlink(env_path);

	/* the daemons' parser: a broken line names file and line */
	write_env("PROVISIONING_API_KEY=secret-value-2\nthis is no setting\n");
	fake_env[0] = env_var;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_CONFIG);
	assert_non_null(strstr(err, ":2: "));
	assert_null(strstr(err, "secret-value-2"));
	cli_config_free(&c);
	unlink(env_path);

	fake_env[0] = "NODO_API_KEY=k";
	fake_env[1] = "NODO_API_URL=ftp://127.0.0.1/";
	fake_env[2] = NULL;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_CONFIG);
	assert_non_null(strstr(err, "NODO_API_URL is not an http"));
	cli_config_free(&c);
	fake_env[1] = "NODO_API_URL=http://";
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_CONFIG);
	cli_config_free(&c);

	fake_env[1] = "NODO_API_URL=http://127.0.0.1:1";
	fake_env[2] = "NODO_API_TIMEOUT=ten";
	fake_env[3] = NULL;
	assert_int_equal(load(&c, err, sizeof(err)), CLI_EX_USAGE);
	assert_non_null(strstr(err, "NODO_API_TIMEOUT"));
	cli_config_free(&c);
	fake_env[0] = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_options_anywhere),
		cmocka_unit_test(test_parse_values),
		cmocka_unit_test(test_parse_end_of_options),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_human_bytes),
		cmocka_unit_test(test_progress_known_total),
		cmocka_unit_test(test_progress_widths),
		cmocka_unit_test(test_progress_unknown_total),
		cmocka_unit_test(test_urlencode),
		cmocka_unit_test(test_base_url),
		cmocka_unit_test(test_unknown_env),
		cmocka_unit_test(test_config_from_file),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
