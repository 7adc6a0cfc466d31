/*
 * test_settings.c - unit tests of settings.c: the env-file, odoo.conf and
 * domains.json parsers as tables of inputs and expected entries or error
 * lines, then settings_load() against files in a mkdtemp(3) directory:
 * defaults, the environment over the file, PG* over odoo.conf, data_dir
 * precedence, --config semantics, env-file secrecy, DNS on and off, and
 * that every error is collected and none quotes a secret.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nodo/log.h"
#include "nodo/settings.h"

#define MAX_KV        16
#define MAX_ERR_LINES 8

/* Cloudflare zone ids: 32 lower-case hex digits. */
#define ZA "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
#define ZS "5a1e7c0de5a1e7c0de5a1e7c0de5a1e7"

static char tmpdir[] = "/tmp/test_settings.XXXXXX";

/* Every key settings_load() reads from the environment. */
static const char *const env_keys[] = {
	"ODOO_DOMAIN",
	"PROVISIONING_API_KEY",
	"CLOUDFLARE_API_TOKEN",
	"CF_TUNNEL_ID",
	"CLOUDFLARE_API_URL",
	"DOMAINS_FILE",
	"DB_WATCHER_INTERVAL",
	"API_HOST",
	"API_PORT",
	"DEFAULT_TEMPLATE_DB",
	"ODOO_CONF",
	"PGHOST",
	"PGPORT",
	"PGUSER",
	"PGPASSWORD",
	"ODOO_DATA_DIR",
	"LOG_LEVEL",
	"WATCHER_DELETE_ORPHANS",
	"WATCHER_ORPHAN_GRACE_SECONDS",
	"TEMPLATE_DBS",
	"TRASH_RETENTION_DAYS",
	"SPARE_TENANTS",
	"RESTORE_MAX_BYTES",
	"WATCHER_METRICS_FILE",
};

/* ------------------------------------------------------------- helpers */

struct kv {
	char key[64];
	char val[256];
	int line;
};

struct kvs {
	struct kv kv[MAX_KV];
	size_t n;
};

static void
collect(void *arg, const char *key, const char *val, int line)
{
	struct kvs *c = arg;

	assert_true(c->n < MAX_KV);
	snprintf(c->kv[c->n].key, sizeof(c->kv[c->n].key), "%s", key);
	snprintf(c->kv[c->n].val, sizeof(c->kv[c->n].val), "%s", val);
	c->kv[c->n].line = line;
	c->n++;
}

static char *
path_in(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) != -1);
	return p;
}

/* Writes a file in tmpdir with the given mode; returns its path. */
static char *
write_file(const char *name, const char *content, mode_t mode)
{
	char *p = path_in(name);
	size_t len = strlen(content);
	int fd;

	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return p;
}

static void
clear_env(void)
{
	size_t i;

	for (i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++)
		unsetenv(env_keys[i]);
}

/*
 * Hermetic environment for settings_load(): nothing set except paths to
 * files in tmpdir that do not exist, so no host file is read.
 */
static void
base_env(void)
{
	char *p;

	clear_env();
	p = path_in("no-odoo.conf");
	setenv("ODOO_CONF", p, 1);
	free(p);
	p = path_in("no-domains.json");
	setenv("DOMAINS_FILE", p, 1);
	free(p);
}

static int
has_error(const struct settings_errors *errs, const char *key,
    const char *needle)
{
	size_t i;

	for (i = 0; i < errs->n; i++) {
		if (key != NULL &&
		    (errs->e[i].key == NULL ||
		        strcmp(errs->e[i].key, key) != 0))
			continue;
		if (needle == NULL || strstr(errs->e[i].msg, needle) != NULL)
			return 1;
	}
	return 0;
}

static void
dump_errors(const struct settings_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		print_message("  error: %s:%d: %s: %s\n",
		    errs->e[i].file ? errs->e[i].file : "-", errs->e[i].line,
		    errs->e[i].key ? errs->e[i].key : "-", errs->e[i].msg);
}

/* Runs f with stderr sent to a file; returns what was written (free it). */
static char *
capture_stderr(void (*f)(void *), void *arg)
{
	char *p = path_in("stderr.out"), *buf;
	int fd, saved;
	ssize_t n;

	fflush(stderr);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	saved = dup(STDERR_FILENO);
	assert_true(saved != -1);
	assert_true(dup2(fd, STDERR_FILENO) != -1);
	f(arg);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) != -1);
	close(saved);
	buf = calloc(1, 65536);
	assert_non_null(buf);
	n = pread(fd, buf, 65535, 0);
	assert_true(n >= 0);
	close(fd);
	unlink(p);
	free(p);
	return buf;
}

/* --------------------------------------------------------- env parser */

struct env_case {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	struct kv want[4];
	size_t nwant;
	int err_lines[MAX_ERR_LINES]; /* lines with an error, in order */
	size_t nerr;
};

static const struct env_case env_cases[] = {
	{ "plain", "A=1\nB=two\n", 0, { { "A", "1", 1 }, { "B", "two", 2 } }, 2,
	    { 0 }, 0 },
	{ "no final newline", "A=1", 0, { { "A", "1", 1 } }, 1, { 0 }, 0 },
	{ "CRLF", "A=1\r\nB = x y \r\n", 0,
	    { { "A", "1", 1 }, { "B", "x y", 2 } }, 2, { 0 }, 0 },
	{ "export prefix", "export A=1\n  export\tB = 2\n", 0,
	    { { "A", "1", 1 }, { "B", "2", 2 } }, 2, { 0 }, 0 },
	{ "key named export", "export=1\n", 0, { { "export", "1", 1 } }, 1,
	    { 0 }, 0 },
	{ "spaces around key and value", "  KEY  =   v a l  \n", 0,
	    { { "KEY", "v a l", 1 } }, 1, { 0 }, 0 },
	{ "comments and blank lines", "# c\n; c\n\n   \n  # indented\nA=1\n", 0,
	    { { "A", "1", 6 } }, 1, { 0 }, 0 },
	{ "hash inside value kept", "A=x#y\n", 0, { { "A", "x#y", 1 } }, 1,
	    { 0 }, 0 },
	{ "equals inside value", "A=b=c\n", 0, { { "A", "b=c", 1 } }, 1, { 0 },
	    0 },
	{ "empty value", "A=\nB=''\nC=\"\"\n", 0,
	    { { "A", "", 1 }, { "B", "", 2 }, { "C", "", 3 } }, 3, { 0 }, 0 },
	{ "single quotes are literal", "A='x\\n \"y\" $z # w'\n", 0,
	    { { "A", "x\\n \"y\" $z # w", 1 } }, 1, { 0 }, 0 },
	{ "double quotes escapes", "A=\"a\\\"b\\\\c\\nd\\qe 'f'\"\n", 0,
	    { { "A", "a\"b\\c\nd\\qe 'f'", 1 } }, 1, { 0 }, 0 },
	{ "quoted keeps spaces", "A=\"  x  \"  \n", 0, { { "A", "  x  ", 1 } },
	    1, { 0 }, 0 },
	{ "BOM",
	    "\xef\xbb\xbf"
	    "A=1\n",
	    0, { { "A", "1", 1 } }, 1, { 0 }, 0 },
	{ "duplicate passed twice", "A=1\nA=2\n", 0,
	    { { "A", "1", 1 }, { "A", "2", 2 } }, 2, { 0 }, 0 },
	{ "line without =", "A=1\nJUSTTEXT\nB=2\n", 0,
	    { { "A", "1", 1 }, { "B", "2", 3 } }, 2, { 2 }, 1 },
	{ "invalid key names", "1A=1\nA-B=2\nA B=3\n=4\nOK_9=5\n", 0,
	    { { "OK_9", "5", 5 } }, 1, { 1, 2, 3, 4 }, 4 },
	{ "unterminated quotes", "A='x\nB=\"y\nC=\"z\\\"\n", 0,
	    { { "", "", 0 } }, 0, { 1, 2, 3 }, 3 },
	{ "text after quote", "A='x'y\nB=\"x\" # c\n", 0, { { "", "", 0 } }, 0,
	    { 1, 2 }, 2 },
	{ "NUL byte in a line", "A=1\nB=x\0y\nC=3\n", 14,
	    { { "A", "1", 1 }, { "C", "3", 3 } }, 2, { 2 }, 1 },
	{ "three bad lines, three errors", "bad one\nA=1\n2X=3\nQ='open\n", 0,
	    { { "A", "1", 2 } }, 1, { 1, 3, 4 }, 3 },
	{ "empty buffer", "", 0, { { "", "", 0 } }, 0, { 0 }, 0 },
};

static void
test_env_table(void **state)
{
	size_t c, i;

	for (c = 0; c < sizeof(env_cases) / sizeof(env_cases[0]); c++) {
		const struct env_case *t = &env_cases[c];
		struct settings_errors errs = { 0 };
		struct kvs got = { 0 };
		size_t len = t->len ? t->len : strlen(t->in);
		int r;

		print_message("env case: %s\n", t->name);
		r = settings_parse_env(t->in, len, "f.env", collect, &got,
		    &errs);
		dump_errors(&errs);
		assert_int_equal(r, t->nerr ? -1 : 0);
		assert_int_equal(got.n, t->nwant);
		for (i = 0; i < t->nwant; i++) {
			assert_string_equal(got.kv[i].key, t->want[i].key);
			assert_string_equal(got.kv[i].val, t->want[i].val);
			assert_int_equal(got.kv[i].line, t->want[i].line);
		}
		assert_int_equal(errs.n, t->nerr);
		for (i = 0; i < t->nerr; i++) {
			assert_string_equal(errs.e[i].file, "f.env");
			assert_int_equal(errs.e[i].line, t->err_lines[i]);
		}
		settings_errors_free(&errs);
	}
}

static void
test_env_limits(void **state)
{
	struct settings_errors errs = { 0 };
	struct kvs got = { 0 };
	char *buf;
	size_t len;

	/* A line one byte over the limit, then a good line. */
	len = 2 + SETTINGS_MAX_LINE + 1 + 4;
	buf = malloc(len + 1);
	assert_non_null(buf);
	memcpy(buf, "A=", 2);
	memset(buf + 2, 'x', SETTINGS_MAX_LINE - 1);
	memcpy(buf + 2 + SETTINGS_MAX_LINE - 1, "\nB=1\n", 6);
	assert_int_equal(settings_parse_env(buf, strlen(buf), "f", collect,
	                     &got, &errs),
	    -1);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.e[0].line, 1);
	assert_non_null(strstr(errs.e[0].msg, "longer"));
	assert_int_equal(got.n, 1);
	assert_string_equal(got.kv[0].key, "B");
	settings_errors_free(&errs);
	free(buf);

	/* Exactly at the limit is fine. */
	got.n = 0;
	buf = malloc(SETTINGS_MAX_LINE + 1);
	assert_non_null(buf);
	memcpy(buf, "A=", 2);
	memset(buf + 2, 'y', SETTINGS_MAX_LINE - 2);
	assert_int_equal(settings_parse_env(buf, SETTINGS_MAX_LINE, "f",
	                     collect, &got, &errs),
	    0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(got.n, 1);
	free(buf);

	/* Files over the limit are refused without being parsed. */
	got.n = 0;
	len = (size_t)SETTINGS_MAX_FILE + 1;
	buf = malloc(len);
	assert_non_null(buf);
	memset(buf, '\n', len);
	memcpy(buf, "A=1\n", 4);
	assert_int_equal(settings_parse_env(buf, len, "f", collect, &got,
	                     &errs),
	    -1);
	assert_int_equal(got.n, 0);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.e[0].msg, "larger"));
	settings_errors_free(&errs);
	free(buf);

	/* NULL buffer of length 0: nothing, no error. */
	assert_int_equal(settings_parse_env(NULL, 0, "f", collect, &got, &errs),
	    0);
	assert_int_equal(errs.n, 0);
}

/* ---------------------------------------------------- odoo.conf parser */

struct conf_case {
	const char *name;
	const char *in;
	struct kv want[6];
	size_t nwant;
	int err_lines[MAX_ERR_LINES];
	size_t nerr;
};

static const struct conf_case conf_cases[] = {
	{ "options", "[options]\ndb_host = db\ndb_port=5433\n",
	    { { "db_host", "db", 2 }, { "db_port", "5433", 3 } }, 2, { 0 }, 0 },
	{ "colon separator", "[options]\ndb_user: odoo\ndata_dir :/srv/x\n",
	    { { "db_user", "odoo", 2 }, { "data_dir", "/srv/x", 3 } }, 2, { 0 },
	    0 },
	{ "first separator wins", "[options]\na = b:c\nd: e=f\n",
	    { { "a", "b:c", 2 }, { "d", "e=f", 3 } }, 2, { 0 }, 0 },
	{ "keys lower-cased", "[options]\nDB_Host = X\n",
	    { { "db_host", "X", 2 } }, 1, { 0 }, 0 },
	{ "comments and inline semicolon",
	    "; top\n[options]\n# c\n  ; c\ndb_password = a;b # c\n",
	    { { "db_password", "a;b # c", 5 } }, 1, { 0 }, 0 },
	{ "other sections ignored",
	    "[queue_job]\ndb_host = no\n[options]\ndb_host = yes\n[x]\n"
	    "db_port = 1\n",
	    { { "db_host", "yes", 4 } }, 1, { 0 }, 0 },
	{ "section name is case-sensitive", "[Options]\ndb_host = no\n",
	    { { "", "", 0 } }, 0, { 0 }, 0 },
	{ "False passed through", "[options]\ndb_host = False\n",
	    { { "db_host", "False", 2 } }, 1, { 0 }, 0 },
	{ "empty value", "[options]\ndb_host =\n", { { "db_host", "", 2 } }, 1,
	    { 0 }, 0 },
	{ "CRLF and no final newline", "[options]\r\ndb_user = u\r\nx = y",
	    { { "db_user", "u", 2 }, { "x", "y", 3 } }, 2, { 0 }, 0 },
	{ "continuation lines",
	    "[options]\nkey = a\n  b\n\n  c\n# c\n  d\n\nnext = 1\n",
	    { { "key", "a\nb\n\nc\nd", 2 }, { "next", "1", 9 } }, 2, { 0 }, 0 },
	{ "option before any section", "db_host = x\n[options]\nb = 1\n",
	    { { "b", "1", 3 } }, 1, { 1 }, 1 },
	{ "line without separator", "[options]\njunk\ndb_host = h\n",
	    { { "db_host", "h", 3 } }, 1, { 2 }, 1 },
	{ "missing option name", "[options]\n = v\n", { { "", "", 0 } }, 0,
	    { 2 }, 1 },
	{ "malformed header", "[]\n[options\n", { { "", "", 0 } }, 0, { 1, 2 },
	    2 },
};

static void
test_conf_table(void **state)
{
	size_t c, i;

	for (c = 0; c < sizeof(conf_cases) / sizeof(conf_cases[0]); c++) {
		const struct conf_case *t = &conf_cases[c];
		struct settings_errors errs = { 0 };
		struct kvs got = { 0 };
		int r;

		print_message("odoo.conf case: %s\n", t->name);
		r = settings_parse_odoo_conf(t->in, strlen(t->in), "o.conf",
		    collect, &got, &errs);
		dump_errors(&errs);
		assert_int_equal(r, t->nerr ? -1 : 0);
		assert_int_equal(got.n, t->nwant);
		for (i = 0; i < t->nwant; i++) {
			assert_string_equal(got.kv[i].key, t->want[i].key);
			assert_string_equal(got.kv[i].val, t->want[i].val);
			assert_int_equal(got.kv[i].line, t->want[i].line);
		}
		assert_int_equal(errs.n, t->nerr);
		for (i = 0; i < t->nerr; i++) {
			assert_string_equal(errs.e[i].file, "o.conf");
			assert_int_equal(errs.e[i].line, t->err_lines[i]);
		}
		settings_errors_free(&errs);
	}
}

/* -------------------------------------------------- domains.json parser */

struct dom_case {
	const char *name;
	const char *in;
	size_t len;           /* 0: strlen(in) */
	const char *want_err; /* NULL: must parse; else part of message */
	size_t nzones;
	const char *zone0;
	const char *id0;
	const char *tunnel;
};

static const struct dom_case dom_cases[] = {
	{ "seed format",
	    "{ \"zones\": { \"sajet.us\": \"zone_id_1\", \"otro.dominio\": "
	    "\"zone_id_2\" }, \"tunnel_id\": \"tu_tunnel_id\" }\n",
	    0, NULL, 2, "sajet.us", "zone_id_1", "tu_tunnel_id" },
	{ "no tunnel", "{\"zones\":{\"a.b\":\"Z-1_x\"}}", 0, NULL, 1, "a.b",
	    "Z-1_x", NULL },
	{ "empty tunnel is none",
	    "{\"zones\":{\"a.b\":\"z\"},\"tunnel_id\":"
	    "\"\"}",
	    0, NULL, 1, "a.b", "z", NULL },
	{ "unknown field tolerated", "{\"zones\":{\"a.b\":\"z\"},\"x\":1}", 0,
	    NULL, 1, "a.b", "z", NULL },
	{ "CRLF whitespace", "{\r\n\"zones\": {\"a.b\": \"z\"}\r\n}\r\n", 0,
	    NULL, 1, "a.b", "z", NULL },
	{ "not an object (array)", "[1,2]", 0,
	    "top level must be a JSON "
	    "object",
	    0, NULL, NULL, NULL },
	{ "not an object (string)", "\"x\"", 0, "top level", 0, NULL, NULL,
	    NULL },
	{ "zones not an object", "{\"zones\":[\"a.b\"]}", 0,
	    "zones: must be an object", 0, NULL, NULL, NULL },
	{ "zones missing", "{\"tunnel_id\":\"t\"}", 0, "zones: missing", 0,
	    NULL, NULL, NULL },
	{ "id not string", "{\"zones\":{\"sajet.us\":1}}", 0,
	    "zones.sajet.us: zone id must be a string", 0, NULL, NULL, NULL },
	{ "id empty", "{\"zones\":{\"sajet.us\":\"\"}}", 0,
	    "zones.sajet.us: zone id must be 1 to 64", 0, NULL, NULL, NULL },
	{ "id bad chars", "{\"zones\":{\"sajet.us\":\"a b\"}}", 0,
	    "zones.sajet.us: zone id", 0, NULL, NULL, NULL },
	{ "id too long",
	    "{\"zones\":{\"a.b\":\"0123456789012345678901234567890"
	    "12345678901234567890123456789012345\"}}",
	    0, "zone id must be", 0, NULL, NULL, NULL },
	{ "upper-case zone", "{\"zones\":{\"Sajet.us\":\"z\"}}", 0,
	    "zones.Sajet.us: zone name must be written in lower case", 0, NULL,
	    NULL, NULL },
	{ "bad zone name", "{\"zones\":{\"a..b\":\"z\"}}", 0,
	    "zones.a..b: zone name has an empty label", 0, NULL, NULL, NULL },
	{ "zone listed twice", "{\"zones\":{\"a.b\":\"z\",\"a.b\":\"y\"}}", 0,
	    "zones.a.b: zone listed twice", 0, NULL, NULL, NULL },
	{ "empty zones", "{\"zones\":{}}", 0, "zones: no zone", 0, NULL, NULL,
	    NULL },
	{ "trailing garbage", "{\"zones\":{\"a.b\":\"z\"}} x", 0,
	    "unexpected text after", 0, NULL, NULL, NULL },
	{ "two objects", "{\"zones\":{\"a.b\":\"z\"}}{}", 0,
	    "unexpected text after", 0, NULL, NULL, NULL },
	{ "invalid JSON", "{\"zones\": {\"a.b\": }", 0, "invalid JSON", 0, NULL,
	    NULL, NULL },
	{ "truncated", "{\"zones\": {\"a.b\": \"z", 0, "invalid JSON", 0, NULL,
	    NULL, NULL },
	{ "NUL byte", "{\"zones\":{\"a.b\":\"z\"}}\0", 22, "NUL", 0, NULL, NULL,
	    NULL },
	{ "empty file", "", 0, "empty", 0, NULL, NULL, NULL },
	{ "tunnel not a string", "{\"zones\":{\"a.b\":\"z\"},\"tunnel_id\":5}",
	    0, "tunnel_id: must be a string", 0, NULL, NULL, NULL },
	{ "tunnel bad chars",
	    "{\"zones\":{\"a.b\":\"z\"},\"tunnel_id\":"
	    "\"x.y\"}",
	    0, "tunnel_id: must be 1 to", 0, NULL, NULL, NULL },
};

static void
test_domains_table(void **state)
{
	size_t c;

	for (c = 0; c < sizeof(dom_cases) / sizeof(dom_cases[0]); c++) {
		const struct dom_case *t = &dom_cases[c];
		struct settings_errors errs = { 0 };
		struct zone *zones = (struct zone *)1;
		size_t nzones = 99;
		char *tunnel = (char *)1;
		size_t len = t->len ? t->len : strlen(t->in);
		int r;

		print_message("domains case: %s\n", t->name);
		r = settings_parse_domains(t->in, len, "d.json", &zones,
		    &nzones, &tunnel, &errs);
		dump_errors(&errs);
		if (t->want_err != NULL) {
			assert_int_equal(r, -1);
			assert_true(errs.n >= 1);
			assert_string_equal(errs.e[0].file, "d.json");
			assert_non_null(strstr(errs.e[0].msg, t->want_err));
			assert_null(zones);
			assert_int_equal(nzones, 0);
			assert_null(tunnel);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(errs.n, 0);
			assert_int_equal(nzones, t->nzones);
			assert_string_equal(zones[0].domain, t->zone0);
			assert_string_equal(zones[0].zone_id, t->id0);
			if (t->tunnel == NULL)
				assert_null(tunnel);
			else
				assert_string_equal(tunnel, t->tunnel);
			for (size_t i = 0; i < nzones; i++) {
				free(zones[i].domain);
				free(zones[i].zone_id);
			}
			free(zones);
			free(tunnel);
		}
		settings_errors_free(&errs);
	}
}

static void
test_domains_invalid_json_line(void **state)
{
	struct settings_errors errs = { 0 };
	struct zone *zones;
	size_t nzones;
	char *tunnel;
	const char *in = "{\n  \"zones\": {\n    \"a.b\": ,\n  }\n}\n";

	assert_int_equal(settings_parse_domains(in, strlen(in), "d.json",
	                     &zones, &nzones, &tunnel, &errs),
	    -1);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.e[0].line, 3);
	settings_errors_free(&errs);
}

static void
test_domains_too_many_zones(void **state)
{
	struct settings_errors errs = { 0 };
	struct zone *zones;
	size_t nzones, i, len = 0, cap = (SETTINGS_MAX_ZONES + 2) * 32;
	char *tunnel, *buf = malloc(cap);

	assert_non_null(buf);
	len += (size_t)snprintf(buf + len, cap - len, "{\"zones\":{");
	for (i = 0; i <= SETTINGS_MAX_ZONES; i++)
		len += (size_t)snprintf(buf + len, cap - len,
		    "%s\"z%zu.com\":"
		    "\"id\"",
		    i ? "," : "", i);
	len += (size_t)snprintf(buf + len, cap - len, "}}");
	assert_int_equal(settings_parse_domains(buf, len, "d.json", &zones,
	                     &nzones, &tunnel, &errs),
	    -1);
	assert_true(has_error(&errs, NULL, "more than 1000 zones"));
	settings_errors_free(&errs);
	free(buf);
}

/* --------------------------------------------------- settings_load() */

static int
load(struct settings *s, enum settings_program prog, const char *config,
    int explicit, struct settings_errors *errs)
{
	int r;

	memset(errs, 0, sizeof(*errs));
	r = settings_load(s, prog, config, explicit, errs);
	dump_errors(errs);
	return r;
}

static void
test_load_defaults(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *f = write_file("def.env",
	    "ODOO_DOMAIN=sajet.us\n"
	    "PROVISIONING_API_KEY=0123456789abcdef0123\n",
	    0600);

	base_env();
	assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(s.env_file, f);
	assert_string_equal(s.odoo_domain, "sajet.us");
	assert_string_equal(s.api_key, "0123456789abcdef0123");
	assert_int_equal(s.api_key_len, 20);
	assert_null(s.cf_token);
	assert_false(s.dns_enabled);
	assert_null(s.cf_tunnel_id);
	assert_string_equal(s.cf_api_url, SETTINGS_DEFAULT_CF_URL);
	assert_int_equal(s.watcher_interval, 10);
	assert_int_equal(s.watcher_delete_orphans, 0);
	assert_int_equal(s.watcher_orphan_grace, 600);
	assert_string_equal(s.api_host, "0.0.0.0");
	assert_int_equal(s.api_port, 8070);
	assert_string_equal(s.default_template, "tcs");
	assert_string_equal(s.data_dir, "/var/lib/odoo");
	assert_int_equal(s.log_level, LOG_INFO);
	assert_null(s.pg_host);
	assert_null(s.pg_port);
	assert_null(s.pg_user);
	assert_null(s.pg_password);
	assert_null(s.odoo_db_template);
	assert_int_equal(s.ntemplate_dbs, 0); /* resolved at run time */
	assert_int_equal(s.program, SETTINGS_API);
	/* DNS off and no domains.json: the default domain alone. */
	assert_int_equal(s.nzones, 1);
	assert_string_equal(s.zones[0].domain, "sajet.us");
	assert_string_equal(s.zones[0].zone_id, "");
	assert_ptr_equal(settings_zone(&s, "SAJET.us"), &s.zones[0]);
	assert_null(settings_zone(&s, "other.com"));
	assert_null(settings_zone(&s, NULL));
	settings_free(&s);
	settings_errors_free(&errs);
	/*
	 * Default paths when nothing names them. Those files may exist on
	 * this host, so only the paths are checked, not the outcome.
	 */
	clear_env();
	setenv("ODOO_DOMAIN", "sajet.us", 1);
	(void)load(&s, SETTINGS_WATCHER, f, 1, &errs);
	assert_string_equal(s.domains_file, SETTINGS_DEFAULT_DOMAINS_FILE);
	assert_string_equal(s.odoo_conf, SETTINGS_DEFAULT_ODOO_CONF);
	settings_free(&s);
	settings_errors_free(&errs);
	/* settings_free() leaves a zeroed struct and may run twice. */
	settings_free(&s);
	assert_null(s.odoo_domain);
	free(f);
}

/* TEMPLATE_DBS: the list as parsed, and the watcher's program field. */
static void
test_load_template_dbs(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *missing = path_in("none.env");

	base_env();
	setenv("ODOO_DOMAIN", "sajet.us", 1);
	setenv("DEFAULT_TEMPLATE_DB", "base_tpl", 1);
	setenv("TEMPLATE_DBS", "\tbase_tpl, other-tpl ,base_tpl,x_1", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_int_equal(s.program, SETTINGS_WATCHER);
	assert_int_equal(s.ntemplate_dbs, 3);
	assert_string_equal(s.template_dbs[0], "base_tpl");
	assert_string_equal(s.template_dbs[1], "other-tpl");
	assert_string_equal(s.template_dbs[2], "x_1");
	settings_free(&s);
	settings_errors_free(&errs);

	/* The error names the key, the default template, not a secret. */
	setenv("TEMPLATE_DBS", "other-tpl", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_true(has_error(&errs, "TEMPLATE_DBS", "DEFAULT_TEMPLATE_DB"));
	assert_true(has_error(&errs, "TEMPLATE_DBS", "base_tpl"));
	settings_free(&s);
	settings_errors_free(&errs);
	free(missing);
}

static void
test_load_all_keys(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *f, *dom, *content;

	base_env();
	dom = write_file("all.json",
	    "{\"zones\":{\"a.com\":\"" ZA "\","
	    "\"sajet.us\":\"" ZS "\"},\"tunnel_id\":\"tfile\"}",
	    0644);
	assert_true(asprintf(&content,
	                "ODOO_DOMAIN=sajet.us\n"
	                "PROVISIONING_API_KEY='k-0123456789abcdef'\n"
	                "CLOUDFLARE_API_TOKEN=\"tok_abc\"\n"
	                "CLOUDFLARE_API_URL=http://127.0.0.1:9999/client/v4//\n"
	                "DOMAINS_FILE=%s\n"
	                "DB_WATCHER_INTERVAL=3600\n"
	                "API_HOST=127.0.0.1\n"
	                "API_PORT=65535\n"
	                "DEFAULT_TEMPLATE_DB=tmpl_1-a\n"
	                "LOG_LEVEL=debug\n"
	                "WATCHER_DELETE_ORPHANS=yes\n"
	                "NODO_API_URL=http://x\n",
	                dom) != -1);
	f = write_file("all.env", content, 0600);
	unsetenv("DOMAINS_FILE");
	assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs), 0);
	assert_string_equal(s.cf_token, "tok_abc");
	assert_true(s.dns_enabled);
	assert_string_equal(s.cf_tunnel_id, "tfile");
	assert_string_equal(s.cf_api_url, "http://127.0.0.1:9999/client/v4");
	assert_string_equal(s.domains_file, dom);
	assert_int_equal(s.watcher_interval, 3600);
	assert_string_equal(s.api_host, "127.0.0.1");
	assert_int_equal(s.api_port, 65535);
	assert_string_equal(s.default_template, "tmpl_1-a");
	assert_int_equal(s.log_level, LOG_DEBUG);
	assert_int_equal(s.watcher_delete_orphans, 1);
	/* DNS on: the zones exactly as in the file. */
	assert_int_equal(s.nzones, 2);
	assert_string_equal(s.zones[1].domain, "sajet.us");
	assert_string_equal(s.zones[1].zone_id, ZS);
	settings_free(&s);
	settings_errors_free(&errs);

	/* CF_TUNNEL_ID wins over tunnel_id of domains.json. */
	setenv("CF_TUNNEL_ID", "tenv", 1);
	assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs), 0);
	assert_string_equal(s.cf_tunnel_id, "tenv");
	settings_free(&s);
	settings_errors_free(&errs);
	unsetenv("CF_TUNNEL_ID");
	free(content);
	free(dom);
	free(f);
}

static void
test_load_env_overrides_file(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *f = write_file("ovr.env",
	    "ODOO_DOMAIN=file.com\nAPI_PORT=8080\n"
	    "LOG_LEVEL=error\nCLOUDFLARE_API_TOKEN=tok\n",
	    0600);

	base_env();
	setenv("API_PORT", "9000", 1);
	setenv("ODOO_DOMAIN", "env.com", 1);
	/* An empty value in the environment still wins: DNS off. */
	setenv("CLOUDFLARE_API_TOKEN", "", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, f, 1, &errs), 0);
	assert_int_equal(s.api_port, 9000);
	assert_string_equal(s.odoo_domain, "env.com");
	assert_int_equal(s.log_level, LOG_ERR);
	assert_false(s.dns_enabled);
	assert_null(s.cf_token);
	settings_free(&s);
	settings_errors_free(&errs);
	free(f);
}

static void
test_load_config_semantics(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *missing = path_in("does-not-exist.env");

	base_env();
	setenv("ODOO_DOMAIN", "sajet.us", 1);
	setenv("PROVISIONING_API_KEY", "0123456789abcdef", 1);

	/* A missing default file: environment only. */
	assert_int_equal(load(&s, SETTINGS_API, missing, 0, &errs), 0);
	assert_null(s.env_file);
	assert_string_equal(s.odoo_domain, "sajet.us");
	settings_free(&s);
	settings_errors_free(&errs);

	/* An explicit --config that cannot be read is an error. */
	assert_int_equal(load(&s, SETTINGS_API, missing, 1, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.e[0].file, missing);
	assert_string_equal(errs.e[0].key, "--config");
	assert_non_null(strstr(errs.e[0].msg, "No such file"));
	settings_free(&s);
	settings_errors_free(&errs);

	/* A directory is not a settings file. */
	assert_int_equal(load(&s, SETTINGS_API, tmpdir, 1, &errs), -1);
	assert_true(has_error(&errs, NULL, "not a regular file"));
	settings_free(&s);
	settings_errors_free(&errs);
	free(missing);
}

static void
test_load_secrecy(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *api = write_file("loose.env",
	    "ODOO_DOMAIN=sajet.us\n"
	    "PROVISIONING_API_KEY=0123456789abcdef\n",
	    0644);
	char *plain = write_file("plain.env", "ODOO_DOMAIN=sajet.us\n", 0640);
	char *tok = write_file("tok.env",
	    "ODOO_DOMAIN=sajet.us\n"
	    "CLOUDFLARE_API_TOKEN=tok\nCF_TUNNEL_ID=t\n",
	    0604);
	char *w = write_file("w.env", "ODOO_DOMAIN=sajet.us\n", 0620);

	base_env();
	/* The API refuses a file others can read. */
	assert_int_equal(load(&s, SETTINGS_API, api, 1, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.e[0].file, api);
	assert_non_null(strstr(errs.e[0].msg,
	    "readable by others "
	    "(mode 0644); run chmod 600"));
	assert_null(strstr(errs.e[0].msg, "0123456789abcdef"));
	settings_free(&s);
	settings_errors_free(&errs);

	/*
	 * Even without the key in it (the key may come from elsewhere). A
	 * group-readable file is refused unless root owns it: give it to
	 * nobody when the test runs as root.
	 */
	if (geteuid() == 0)
		assert_int_equal(chown(plain, 65534, 65534), 0);
	setenv("PROVISIONING_API_KEY", "0123456789abcdef", 1);
	assert_int_equal(load(&s, SETTINGS_API, plain, 1, &errs), -1);
	assert_true(has_error(&errs, NULL,
	    "readable by its group but not owned by root (mode 0640)"));
	settings_free(&s);
	settings_errors_free(&errs);
	unsetenv("PROVISIONING_API_KEY");

	/* The watcher only warns when the file holds no secret... */
	assert_int_equal(load(&s, SETTINGS_WATCHER, plain, 1, &errs), 0);
	assert_int_equal(errs.n, 0);
	settings_free(&s);
	settings_errors_free(&errs);
	assert_int_equal(load(&s, SETTINGS_WATCHER, w, 1, &errs), 0);
	settings_free(&s);
	settings_errors_free(&errs);

	/* ...but refuses one with the Cloudflare token or the API key. */
	assert_int_equal(load(&s, SETTINGS_WATCHER, tok, 1, &errs), -1);
	assert_true(has_error(&errs, NULL, "mode 0604"));
	settings_free(&s);
	settings_errors_free(&errs);
	assert_int_equal(load(&s, SETTINGS_WATCHER, api, 1, &errs), -1);
	assert_true(has_error(&errs, NULL, "readable by others"));
	settings_free(&s);
	settings_errors_free(&errs);

	/* Mode 0600 is fine. */
	assert_int_equal(chmod(api, 0600), 0);
	assert_int_equal(load(&s, SETTINGS_API, api, 1, &errs), 0);
	settings_free(&s);
	settings_errors_free(&errs);
	free(api);
	free(plain);
	free(tok);
	free(w);
}

/*
 * install.sh's layout: root:nodo 0640 (or 0440) is accepted; a group that
 * may write or execute, or any bit for others, is still refused.
 */
static void
test_load_secrecy_root_group(void **state)
{
	static const struct {
		mode_t mode;
		const char *how; /* NULL: accepted */
	} cases[] = {
		{ 0640, NULL },
		{ 0440, NULL },
		{ 0600, NULL },
		{ 0660, "writable by its group (mode 0660)" },
		{ 0650, "accessible to its group (mode 0650)" },
		{ 0620, "writable by its group (mode 0620)" },
		{ 0644, "readable by others (mode 0644)" },
		{ 0642, "writable by others (mode 0642)" },
		{ 0641, "accessible to others (mode 0641)" },
	};
	struct settings s;
	struct settings_errors errs;
	char *f;
	size_t i;

	if (geteuid() != 0) {
		print_message("needs root to own a file as root: skipped\n");
		skip();
	}
	f = write_file("rootgroup.env",
	    "ODOO_DOMAIN=sajet.us\n"
	    "PROVISIONING_API_KEY=0123456789abcdef\n",
	    0640);
	base_env();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(chown(f, 0, 65534), 0);
		assert_int_equal(chmod(f, cases[i].mode), 0);
		if (cases[i].how == NULL) {
			assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs),
			    0);
			assert_int_equal(errs.n, 0);
		} else {
			assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs),
			    -1);
			assert_true(has_error(&errs, NULL, cases[i].how));
			assert_true(has_error(&errs, NULL, "run chmod 600"));
		}
		settings_free(&s);
		settings_errors_free(&errs);
		/* The watcher: the same rule (the file holds the key). */
		assert_int_equal(load(&s, SETTINGS_WATCHER, f, 1, &errs),
		    cases[i].how == NULL ? 0 : -1);
		settings_free(&s);
		settings_errors_free(&errs);
	}
	free(f);
}

static void
test_load_collects_every_error(void **state)
{
	struct settings s;
	struct settings_errors errs;
	size_t i;
	char *f = write_file("bad3.env",
	    "ODOO_DOMAIN=sajet.us\nnot a line\n"
	    "9X=1\nY='open\nPROVISIONING_API_KEY=0123456789abcdef\n",
	    0600);

	base_env();
	assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs), -1);
	assert_int_equal(errs.n, 3);
	for (i = 0; i < 3; i++) {
		assert_string_equal(errs.e[i].file, f);
		assert_int_equal(errs.e[i].line, (int)i + 2);
	}
	/* The good lines were still read. */
	assert_string_equal(s.odoo_domain, "sajet.us");
	assert_non_null(s.api_key);
	settings_free(&s);
	settings_errors_free(&errs);
	free(f);

	/* Bad values everywhere: one error per key, all of them. */
	f = write_file("badvals.env",
	    "ODOO_DOMAIN=Sajet.US\n"
	    "API_PORT=0\nDB_WATCHER_INTERVAL=3601\nLOG_LEVEL=loud\n"
	    "DEFAULT_TEMPLATE_DB=Bad Name\nCLOUDFLARE_API_URL=ftp://x\n"
	    "WATCHER_DELETE_ORPHANS=maybe\n",
	    0600);
	assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs), -1);
	assert_true(has_error(&errs, "ODOO_DOMAIN", "lower case"));
	assert_true(has_error(&errs, "PROVISIONING_API_KEY", "required"));
	assert_true(has_error(&errs, "API_PORT", "1 to 65535"));
	assert_true(has_error(&errs, "DB_WATCHER_INTERVAL", "1 to 3600"));
	assert_true(has_error(&errs, "LOG_LEVEL", "debug, info"));
	assert_true(has_error(&errs, "DEFAULT_TEMPLATE_DB", NULL));
	assert_true(has_error(&errs, "CLOUDFLARE_API_URL", "http"));
	assert_true(has_error(&errs, "WATCHER_DELETE_ORPHANS", NULL));
	assert_int_equal(errs.n, 8);
	/* Each names the file and line its value came from. */
	for (i = 0; i < errs.n; i++) {
		if (strcmp(errs.e[i].key, "API_PORT") == 0) {
			assert_string_equal(errs.e[i].file, f);
			assert_int_equal(errs.e[i].line, 2);
		}
		if (strcmp(errs.e[i].key, "WATCHER_DELETE_ORPHANS") == 0)
			assert_int_equal(errs.e[i].line, 7);
	}
	settings_free(&s);
	settings_errors_free(&errs);
	free(f);
}

struct value_case {
	const char *key;
	const char *val;
	int ok;
};

static const struct value_case value_cases[] = {
	{ "ODOO_DOMAIN", "a.b", 1 },
	{ "ODOO_DOMAIN", "x-1.example.co", 1 },
	{ "ODOO_DOMAIN", "localhost", 1 },
	{ "ODOO_DOMAIN", "a.b.", 0 },
	{ "ODOO_DOMAIN", ".a.b", 0 },
	{ "ODOO_DOMAIN", "-a.b", 0 },
	{ "ODOO_DOMAIN", "a-.b", 0 },
	{ "ODOO_DOMAIN", "a_b.c", 0 },
	{ "ODOO_DOMAIN", "A.b", 0 },
	{ "ODOO_DOMAIN", "a b.c", 0 },
	{ "ODOO_DOMAIN",
	    "abcdefghij0123456789abcdefghij0123456789abcdefghij"
	    "0123456789abc.com",
	    1 },
	{ "ODOO_DOMAIN",
	    "abcdefghij0123456789abcdefghij0123456789abcdefghij"
	    "0123456789abcd.com",
	    0 },
	{ "API_PORT", "1", 1 },
	{ "API_PORT", "65535", 1 },
	{ "API_PORT", "0", 0 },
	{ "API_PORT", "65536", 0 },
	{ "API_PORT", "-1", 0 },
	{ "API_PORT", "80x", 0 },
	{ "API_PORT", " 80", 0 },
	{ "API_PORT", "+80", 0 },
	{ "API_PORT", "", 0 },
	{ "API_PORT", "99999999999999999999999", 0 },
	{ "DB_WATCHER_INTERVAL", "1", 1 },
	{ "DB_WATCHER_INTERVAL", "0", 0 },
	{ "DB_WATCHER_INTERVAL", "3601", 0 },
	{ "LOG_LEVEL", "warn", 1 },
	{ "LOG_LEVEL", "WARNING", 1 },
	{ "LOG_LEVEL", "trace", 0 },
	{ "DEFAULT_TEMPLATE_DB", "_t", 1 },
	{ "DEFAULT_TEMPLATE_DB", "t-1", 1 },
	{ "DEFAULT_TEMPLATE_DB", "-t", 0 },
	{ "DEFAULT_TEMPLATE_DB", "T", 0 },
	{ "DEFAULT_TEMPLATE_DB", "a;drop", 0 },
	{ "DEFAULT_TEMPLATE_DB",
	    "abcdefghij0123456789abcdefghij0123456789"
	    "abcdefghij0123456789abc",
	    1 },
	{ "DEFAULT_TEMPLATE_DB",
	    "abcdefghij0123456789abcdefghij0123456789"
	    "abcdefghij0123456789abcd",
	    0 },
	{ "CLOUDFLARE_API_URL", "https://x", 1 },
	{ "CLOUDFLARE_API_URL", "http://x/", 1 },
	{ "CLOUDFLARE_API_URL", "https://", 0 },
	{ "CLOUDFLARE_API_URL", "x://y", 0 },
	{ "CLOUDFLARE_API_URL", "https://a b", 0 },
	{ "WATCHER_DELETE_ORPHANS", "TRUE", 1 },
	{ "WATCHER_DELETE_ORPHANS", "0", 1 },
	{ "WATCHER_DELETE_ORPHANS", "no", 1 },
	{ "WATCHER_DELETE_ORPHANS", "2", 0 },
	{ "WATCHER_ORPHAN_GRACE_SECONDS", "1", 1 },
	{ "WATCHER_ORPHAN_GRACE_SECONDS", "604800", 1 },
	{ "WATCHER_ORPHAN_GRACE_SECONDS", "0", 0 },
	{ "WATCHER_ORPHAN_GRACE_SECONDS", "604801", 0 },
	{ "WATCHER_ORPHAN_GRACE_SECONDS", "10m", 0 },
	{ "PGPORT", "5432", 1 },
	{ "PGPORT", "5432,5433", 1 },
	{ "PGPORT", "5432,", 0 },
	{ "PGPORT", "x", 0 },
	{ "ODOO_DATA_DIR", "/srv/odoo", 1 },
	{ "ODOO_DATA_DIR", "relative/dir", 0 },
	{ "CF_TUNNEL_ID", "abc-123", 1 },
	{ "CF_TUNNEL_ID", "abc.123", 0 },
	{ "API_HOST", "::1", 1 },
	{ "API_HOST", "a b", 0 },
	/* TEMPLATE_DBS must name DEFAULT_TEMPLATE_DB (tcs), at most 32. */
	{ "TEMPLATE_DBS", "", 1 },
	{ "TEMPLATE_DBS", "tcs", 1 },
	{ "TEMPLATE_DBS", " tcs , tcs2,tcs ", 1 },
	{ "TEMPLATE_DBS", "tcs2", 0 },
	{ "TEMPLATE_DBS", "tcs,", 0 },
	{ "TEMPLATE_DBS", "tcs,,b", 0 },
	{ "TEMPLATE_DBS", "tcs,postgres", 0 },
	{ "TEMPLATE_DBS", "tcs,template1", 0 },
	{ "TEMPLATE_DBS", "tcs,_nodo_ab", 0 },
	{ "TEMPLATE_DBS", "tcs,Acme", 0 },
	{ "TEMPLATE_DBS", "tcs;drop", 0 },
	{ "TEMPLATE_DBS",
	    "tcs,abcdefghij0123456789abcdefghij0123456789"
	    "abcdefghij0123456789abcd",
	    0 },
	{ "TEMPLATE_DBS",
	    "tcs,a1,a2,a3,a4,a5,a6,a7,a8,a9,b0,b1,b2,b3,b4,b5,b6,b7,b8,b9,"
	    "c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,d0,d1",
	    1 },
	{ "TEMPLATE_DBS",
	    "tcs,a1,a2,a3,a4,a5,a6,a7,a8,a9,b0,b1,b2,b3,b4,b5,b6,b7,b8,b9,"
	    "c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,d0,d1,d2",
	    0 },
};

static void
test_load_value_table(void **state)
{
	struct settings s;
	struct settings_errors errs;
	size_t c;

	for (c = 0; c < sizeof(value_cases) / sizeof(value_cases[0]); c++) {
		const struct value_case *t = &value_cases[c];
		char *missing = path_in("none.env");

		print_message("value case: %s=%s\n", t->key, t->val);
		base_env();
		setenv("ODOO_DOMAIN", "sajet.us", 1);
		setenv(t->key, t->val, 1);
		assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs),
		    t->ok ? 0 : -1);
		if (!t->ok) {
			assert_int_equal(errs.n, 1);
			assert_string_equal(errs.e[0].key, t->key);
			/* From the environment: no file, no line. */
			assert_null(errs.e[0].file);
			assert_int_equal(errs.e[0].line, 0);
			assert_non_null(strstr(errs.e[0].msg, "environment"));
		}
		settings_free(&s);
		settings_errors_free(&errs);
		free(missing);
	}
}

static void
test_load_api_key(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *missing = path_in("none.env");
	size_t i;

	base_env();
	setenv("ODOO_DOMAIN", "sajet.us", 1);
	/* Required by the API, not by the watcher. */
	assert_int_equal(load(&s, SETTINGS_API, missing, 0, &errs), -1);
	assert_true(has_error(&errs, "PROVISIONING_API_KEY", "required"));
	settings_free(&s);
	settings_errors_free(&errs);
	setenv("PROVISIONING_API_KEY", "", 1);
	assert_int_equal(load(&s, SETTINGS_API, missing, 0, &errs), -1);
	assert_true(has_error(&errs, "PROVISIONING_API_KEY", "empty"));
	settings_free(&s);
	settings_errors_free(&errs);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_null(s.api_key);
	settings_free(&s);
	settings_errors_free(&errs);

	/*
	 * CONTRACT section 8: the API refuses a key under 16 bytes and the
	 * seed's published example, naming the key and the file, quoting
	 * neither; the watcher does not use the key and does not care.
	 */
	{
		static const char *const bad[] = { "SECRET-15-bytes",
			"prov-key-2026-secure", "QQQ" };
		char *f;
		size_t j;

		unsetenv("PROVISIONING_API_KEY");
		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			char content[128];

			snprintf(content, sizeof(content),
			    "ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY=%s\n",
			    bad[j]);
			f = write_file("shortkey.env", content, 0600);
			assert_int_equal(load(&s, SETTINGS_API, f, 1, &errs),
			    -1);
			assert_int_equal(errs.n, 1);
			assert_string_equal(errs.e[0].file, f);
			assert_int_equal(errs.e[0].line, 2);
			assert_string_equal(errs.e[0].key,
			    "PROVISIONING_API_KEY");
			assert_non_null(strstr(errs.e[0].msg,
			    j == 1 ? "published example key"
			           : "shorter than 16 bytes"));
			assert_null(strstr(errs.e[0].msg, bad[j]));
			assert_null(strstr(errs.e[0].msg, "SECRET"));
			settings_free(&s);
			settings_errors_free(&errs);
			assert_int_equal(load(&s, SETTINGS_WATCHER, f, 1,
			                     &errs),
			    0);
			settings_free(&s);
			settings_errors_free(&errs);
			free(f);
		}
		/* From the environment: named as such. */
		setenv("PROVISIONING_API_KEY", "prov-key-2026-secure", 1);
		assert_int_equal(load(&s, SETTINGS_API, missing, 0, &errs), -1);
		assert_true(has_error(&errs, "PROVISIONING_API_KEY",
		    "APP server (set in the environment)"));
		settings_free(&s);
		settings_errors_free(&errs);
		/* Exactly 16 bytes, or the example with one more byte: fine. */
		setenv("PROVISIONING_API_KEY", "0123456789abcdef", 1);
		assert_int_equal(load(&s, SETTINGS_API, missing, 0, &errs), 0);
		assert_int_equal(s.api_key_len, 16);
		settings_free(&s);
		settings_errors_free(&errs);
		setenv("PROVISIONING_API_KEY", "prov-key-2026-secure2", 1);
		assert_int_equal(load(&s, SETTINGS_API, missing, 0, &errs), 0);
		settings_free(&s);
		settings_errors_free(&errs);
	}

	/* A bad secret is refused without being quoted back. */
	setenv("PROVISIONING_API_KEY", "has space SECRETXYZ", 1);
	setenv("CLOUDFLARE_API_TOKEN", "tok\tSECRETTOK", 1);
	assert_int_equal(load(&s, SETTINGS_API, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 2);
	for (i = 0; i < errs.n; i++) {
		assert_null(strstr(errs.e[i].msg, "SECRET"));
		assert_null(errs.e[i].file);
	}
	settings_free(&s);
	settings_errors_free(&errs);
	free(missing);
}

static void
test_load_odoo_conf(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *missing = path_in("none.env");
	char *conf = write_file("odoo.conf",
	    "[options]\n"
	    "db_host = dbhost\ndb_port: 5433\ndb_user = odoo\n"
	    "db_password = False\ndata_dir = /srv/odoo-data\n"
	    "db_template = template0\nadmin_passwd = x\n",
	    0644);
	char *conf2 = write_file("odoo2.conf",
	    "[options]\n"
	    "db_host = False\ndb_password = pw\ndb_port = 70000\n",
	    0644);

	base_env();
	setenv("ODOO_DOMAIN", "sajet.us", 1);
	setenv("ODOO_CONF", conf, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_string_equal(s.odoo_conf, conf);
	assert_string_equal(s.pg_host, "dbhost");
	assert_string_equal(s.pg_port, "5433");
	assert_string_equal(s.pg_user, "odoo");
	assert_null(s.pg_password); /* False means unset */
	assert_string_equal(s.data_dir, "/srv/odoo-data");
	assert_string_equal(s.odoo_db_template, "template0");
	settings_free(&s);
	settings_errors_free(&errs);

	/* PG* win over odoo.conf; an empty PG* does not. */
	setenv("PGHOST", "/run/postgresql", 1);
	setenv("PGPORT", "6000", 1);
	setenv("PGUSER", "", 1);
	setenv("PGPASSWORD", "envpw", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_string_equal(s.pg_host, "/run/postgresql");
	assert_string_equal(s.pg_port, "6000");
	assert_string_equal(s.pg_user, "odoo");
	assert_string_equal(s.pg_password, "envpw");
	settings_free(&s);
	settings_errors_free(&errs);

	/* ODOO_DATA_DIR wins over data_dir. */
	setenv("ODOO_DATA_DIR", "/data", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_string_equal(s.data_dir, "/data");
	settings_free(&s);
	settings_errors_free(&errs);
	unsetenv("ODOO_DATA_DIR");
	unsetenv("PGHOST");
	unsetenv("PGPORT");
	unsetenv("PGUSER");
	unsetenv("PGPASSWORD");

	/* A bad db_port is reported at its odoo.conf line. */
	setenv("ODOO_CONF", conf2, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.e[0].file, conf2);
	assert_int_equal(errs.e[0].line, 4);
	assert_string_equal(errs.e[0].key, "db_port");
	assert_null(s.pg_host);
	assert_string_equal(s.pg_password, "pw");
	settings_free(&s);
	settings_errors_free(&errs);

	/* A missing odoo.conf is fine; an unreadable one is not. */
	assert_int_equal(chmod(conf, 0), 0);
	setenv("ODOO_CONF", conf, 1);
	if (geteuid() != 0) {
		assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs),
		    -1);
		assert_true(has_error(&errs, "ODOO_CONF", "cannot open"));
		settings_free(&s);
		settings_errors_free(&errs);
	}
	setenv("ODOO_CONF", tmpdir, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_true(has_error(&errs, "ODOO_CONF", "not a regular file"));
	settings_free(&s);
	settings_errors_free(&errs);
	free(missing);
	free(conf);
	free(conf2);
}

/*
 * The Cloudflare token of the systemd credential cloudflare-token
 * ($CREDENTIALS_DIRECTORY) wins over CLOUDFLARE_API_TOKEN of the
 * environment and the env file; an empty or missing credential leaves
 * them in charge; a bad one is an error that names the credential and
 * does not quote it.
 */
static void
test_load_credential(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *creds = path_in("creds");
	char *cred = path_in("creds/cloudflare-token");
	char *domains = write_file("cred-domains.json",
	    "{\"zones\":{\"sajet.us\":\"" ZS "\"},\"tunnel_id\":\"t1\"}", 0644);
	char *env = write_file("cred.env",
	    "ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY=0123456789abcdef\n"
	    "CLOUDFLARE_API_TOKEN=from-the-file\n",
	    0600);
	int fd;

	base_env();
	setenv("DOMAINS_FILE", domains, 1);
	assert_int_equal(mkdir(creds, 0700), 0);
	setenv("CREDENTIALS_DIRECTORY", creds, 1);

	/* No credential file: the env file's token. */
	assert_int_equal(load(&s, SETTINGS_WATCHER, env, 1, &errs), 0);
	assert_string_equal(s.cf_token, "from-the-file");
	settings_free(&s);
	settings_errors_free(&errs);

	/* An empty one (install.sh's default), or only white space: same. */
	free(write_file("creds/cloudflare-token", "", 0400));
	assert_int_equal(load(&s, SETTINGS_WATCHER, env, 1, &errs), 0);
	assert_string_equal(s.cf_token, "from-the-file");
	settings_free(&s);
	settings_errors_free(&errs);
	free(write_file("creds/cloudflare-token", " \n\r\n", 0400));
	assert_int_equal(load(&s, SETTINGS_WATCHER, env, 1, &errs), 0);
	assert_string_equal(s.cf_token, "from-the-file");
	settings_free(&s);
	settings_errors_free(&errs);

	/* A token there wins over the file and the environment. */
	free(write_file("creds/cloudflare-token", "cred-token-123\n", 0400));
	assert_int_equal(load(&s, SETTINGS_API, env, 1, &errs), 0);
	assert_string_equal(s.cf_token, "cred-token-123");
	assert_true(s.dns_enabled);
	settings_free(&s);
	settings_errors_free(&errs);
	setenv("CLOUDFLARE_API_TOKEN", "from-the-env", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, env, 1, &errs), 0);
	assert_string_equal(s.cf_token, "cred-token-123");
	settings_free(&s);
	settings_errors_free(&errs);
	unsetenv("CLOUDFLARE_API_TOKEN");

	/* It alone turns DNS on. */
	free(write_file("cred2.env",
	    "ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY=0123456789abcdef\n",
	    0600));
	{
		char *env2 = path_in("cred2.env");

		assert_int_equal(load(&s, SETTINGS_API, env2, 1, &errs), 0);
		assert_true(s.dns_enabled);
		assert_string_equal(s.cf_token, "cred-token-123");
		settings_free(&s);
		settings_errors_free(&errs);
		free(env2);
	}

	/* A bad token: named by where it is, never quoted. */
	free(write_file("creds/cloudflare-token", "SECRET with space\n", 0400));
	assert_int_equal(load(&s, SETTINGS_WATCHER, env, 1, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.e[0].file,
	    "$CREDENTIALS_DIRECTORY/cloudflare-token");
	assert_string_equal(errs.e[0].key, "CLOUDFLARE_API_TOKEN");
	assert_null(strstr(errs.e[0].msg, "SECRET"));
	settings_free(&s);
	settings_errors_free(&errs);
	unlink(cred);
	fd = open(cred, O_WRONLY | O_CREAT | O_TRUNC, 0400);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "SECRET\0x", 8), 8);
	close(fd);
	assert_int_equal(load(&s, SETTINGS_WATCHER, env, 1, &errs), -1);
	assert_true(has_error(&errs, "CLOUDFLARE_API_TOKEN", "NUL"));
	settings_free(&s);
	settings_errors_free(&errs);

	/* A directory where the credential should be: an error, too. */
	unlink(cred);
	assert_int_equal(mkdir(cred, 0700), 0);
	assert_int_equal(load(&s, SETTINGS_WATCHER, env, 1, &errs), -1);
	assert_true(
	    has_error(&errs, "CLOUDFLARE_API_TOKEN", "not a regular file"));
	settings_free(&s);
	settings_errors_free(&errs);
	rmdir(cred);

	unsetenv("CREDENTIALS_DIRECTORY");
	rmdir(creds);
	free(creds);
	free(cred);
	free(domains);
	free(env);
}

static void
test_load_dns(void **state)
{
	struct settings s;
	struct settings_errors errs;
	char *missing = path_in("none.env");
	char *good = write_file("good.json",
	    "{\"zones\":{\"a.com\":\"" ZA "\"},"
	    "\"tunnel_id\":\"t1\"}",
	    0644);
	char *notun = write_file("notun.json",
	    "{\"zones\":{\"sajet.us\":"
	    "\"" ZS "\"}}",
	    0644);
	char *broken = write_file("broken.json", "{\"zones\":", 0644);
	char *nodom = path_in("absent.json");

	base_env();
	setenv("ODOO_DOMAIN", "sajet.us", 1);

	/* DNS off, domains.json without ODOO_DOMAIN: it is added. */
	setenv("DOMAINS_FILE", good, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_false(s.dns_enabled);
	assert_int_equal(s.nzones, 2);
	assert_string_equal(s.zones[0].domain, "a.com");
	assert_string_equal(s.zones[1].domain, "sajet.us");
	assert_string_equal(s.zones[1].zone_id, "");
	assert_string_equal(s.cf_tunnel_id, "t1");
	settings_free(&s);
	settings_errors_free(&errs);

	/* DNS off, present but broken: still an error. */
	setenv("DOMAINS_FILE", broken, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.e[0].file, broken);
	settings_free(&s);
	settings_errors_free(&errs);

	/* DNS on: ODOO_DOMAIN must be a zone. */
	setenv("CLOUDFLARE_API_TOKEN", "tok", 1);
	setenv("DOMAINS_FILE", good, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_true(has_error(&errs, "ODOO_DOMAIN", "not a zone"));
	settings_free(&s);
	settings_errors_free(&errs);

	/* DNS on: a tunnel id is required. */
	setenv("DOMAINS_FILE", notun, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_true(has_error(&errs, "CF_TUNNEL_ID", "tunnel id is required"));
	settings_free(&s);
	settings_errors_free(&errs);
	setenv("CF_TUNNEL_ID", "t2", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_true(s.dns_enabled);
	assert_int_equal(s.nzones, 1);
	assert_string_equal(s.zones[0].zone_id, ZS);
	settings_free(&s);
	settings_errors_free(&errs);

	/* DNS on: the file must exist. */
	setenv("DOMAINS_FILE", nodom, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_true(has_error(&errs, "DOMAINS_FILE", "does not exist"));
	settings_free(&s);
	settings_errors_free(&errs);

	/* DNS on, broken file: one error, not a cascade. */
	unsetenv("CF_TUNNEL_ID");
	setenv("DOMAINS_FILE", broken, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 1);
	settings_free(&s);
	settings_errors_free(&errs);
	unsetenv("CLOUDFLARE_API_TOKEN");
	free(missing);
	free(good);
	free(notun);
	free(broken);
	free(nodom);
}

static void
print_errs(void *arg)
{
	settings_errors_print(arg);
}

static void
test_errors_print(void **state)
{
	struct settings_errors errs = { 0 };
	char *out;

	settings_error_add(&errs, "/etc/x.env", 3, "API_PORT", "must be %d", 5);
	settings_error_add(&errs, "/etc/x.env", 0, NULL, "is readable");
	settings_error_add(&errs, NULL, 0, "ODOO_DOMAIN", "is required");
	settings_error_add(&errs, NULL, 0, NULL, "plain");
	assert_int_equal(errs.n, 4);
	out = capture_stderr(print_errs, &errs);
	/* Fatal reasons: at err priority ("<3>"), not the stream's info. */
	assert_string_equal(out,
	    "<3>/etc/x.env:3: API_PORT: must be 5\n"
	    "<3>/etc/x.env: is readable\n"
	    "<3>ODOO_DOMAIN: is required\n"
	    "<3>plain\n");
	free(out);
	settings_errors_free(&errs);
	assert_int_equal(errs.n, 0);

	/* The list is bounded; its last slot says so. */
	for (int i = 0; i < SETTINGS_MAX_ERRORS + 10; i++)
		settings_error_add(&errs, "f", i + 1, NULL, "e%d", i);
	assert_int_equal(errs.n, SETTINGS_MAX_ERRORS);
	assert_non_null(
	    strstr(errs.e[SETTINGS_MAX_ERRORS - 1].msg, "too many errors"));
	settings_errors_free(&errs);
}

static void
load_unknown(void *arg)
{
	struct settings s;
	struct settings_errors errs;

	assert_int_equal(load(&s, SETTINGS_WATCHER, arg, 1, &errs), 0);
	assert_int_equal(errs.n, 0);
	settings_free(&s);
	settings_errors_free(&errs);
}

static void
load_watcher_quiet(void *arg)
{
	struct settings s;
	struct settings_errors errs;

	assert_int_equal(load(&s, SETTINGS_WATCHER, arg, 0, &errs), 0);
	settings_free(&s);
	settings_errors_free(&errs);
}

static void
test_load_unknown_key_warns(void **state)
{
	char *f = write_file("unk.env",
	    "ODOO_DOMAIN=sajet.us\nFOO_BAR=1\n"
	    "NODO_ENV_FILE=/x\nNODO_API_ULR=http://x\nNODO_API_URL=http://y\n"
	    "NODO_API_KEY=k\nNODO_API_TIMEOUT=5\nNODO_FOO=1\n",
	    0600);
	char *out;

	base_env();
	log_init("test");
	log_set_level(LOG_INFO);
	out = capture_stderr(load_unknown, f);
	assert_non_null(strstr(out, ":2: unknown key FOO_BAR ignored"));
	assert_non_null(strstr(out, "<4>"));
	assert_null(strstr(out, "NODO_ENV_FILE"));
	/* The CLI's keys are known by name; a typo of one is not. */
	assert_non_null(strstr(out, ":4: unknown key NODO_API_ULR ignored"));
	assert_non_null(strstr(out, ":8: unknown key NODO_FOO ignored"));
	assert_null(strstr(out, "NODO_API_URL"));
	assert_null(strstr(out, "NODO_API_KEY"));
	assert_null(strstr(out, "NODO_API_TIMEOUT"));
	log_set_level(LOG_ERR);
	free(out);
	free(f);
}

/*
 * The seed's example domains.json ("zone_id_1"): the node starts with DNS
 * off (a warning), is refused with DNS on, and the rule is the client's.
 */
static void
test_seed_zone_ids(void **state)
{
	char *ex = write_file("seed.json",
	    "{ \"zones\": { \"sajet.us\": \"zone_id_1\", \"otro.dominio\": "
	    "\"zone_id_2\" }, \"tunnel_id\": \"tu_tunnel_id\" }\n",
	    0644);
	char *missing = path_in("none2.env");
	struct settings s;
	struct settings_errors errs;
	char why[512];
	char *out;

	(void)state;
	base_env();
	setenv("ODOO_DOMAIN", "sajet.us", 1);
	setenv("DOMAINS_FILE", ex, 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), 0);
	assert_int_equal(settings_zone_id_problem(&s.zones[0], why,
	                     sizeof(why)),
	    1);
	assert_non_null(strstr(why,
	    "zones.sajet.us: zone id 'zone_id_1' is not a Cloudflare zone id"));
	assert_non_null(strstr(why, "32 characters of 0-9 and a-f"));
	settings_free(&s);
	settings_errors_free(&errs);

	setenv("CLOUDFLARE_API_TOKEN", "tok", 1);
	assert_int_equal(load(&s, SETTINGS_WATCHER, missing, 0, &errs), -1);
	assert_int_equal(errs.n, 2);
	assert_true(has_error(&errs, NULL, "zone id 'zone_id_1' is not"));
	assert_true(has_error(&errs, NULL, "zone id 'zone_id_2' is not"));
	assert_string_equal(errs.e[0].file, ex);
	settings_free(&s);
	settings_errors_free(&errs);
	unsetenv("CLOUDFLARE_API_TOKEN");

	/* DNS off: said once per zone as a warning. */
	log_init("test");
	log_set_level(LOG_INFO);
	out = capture_stderr(load_watcher_quiet, missing);
	assert_non_null(strstr(out, "<4>"));
	assert_non_null(strstr(out, "zone id 'zone_id_1' is not"));
	assert_non_null(strstr(out, "DNS is disabled"));
	log_set_level(LOG_ERR);
	free(out);
	unsetenv("DOMAINS_FILE");
	free(ex);
	free(missing);
}

/* ------------------------------------------------------------- main */

static int
group_setup(void **state)
{
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	clear_env();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------ the table of keys */

/* Every row: a unique name, a doc line, a default within its bounds. */
static void
test_table_rows(void **state)
{
	const struct setting_def *t, *d;
	size_t n, i, j;

	(void)state;
	t = settings_table(&n);
	assert_true(n >= 28);
	for (i = 0; i < n; i++) {
		d = &t[i];
		assert_non_null(d->name);
		assert_non_null(d->doc);
		assert_ptr_equal(settings_def(d->name), d);
		for (j = i + 1; j < n; j++)
			assert_string_not_equal(d->name, t[j].name);
		assert_true(d->flags &
		    (SETTING_F_API | SETTING_F_WATCHER | SETTING_F_CLI));
		if ((d->type == SETTING_INT || d->type == SETTING_BYTES) &&
		    !(d->flags & SETTING_F_CLI)) {
			long long v;

			assert_non_null(d->def);
			v = strtoll(d->def, NULL, 10);
			assert_true(d->min <= v && v <= d->max);
		}
		if (d->type == SETTING_SECRET)
			assert_true(d->flags & SETTING_F_SECRET);
		/* Programs' keys are parsed; the CLI's only known. */
		assert_true((d->parse != NULL) == !(d->flags & SETTING_F_CLI));
	}
	assert_null(settings_def("NODO_API_ULR"));
}

struct want_row {
	const char *name;
	const char *def;
	long long min, max;
	unsigned flags; /* that must be set */
	unsigned not ;  /* that must not */
};

/* The contract's keys, their defaults, bounds, secrecy and reload. */
static void
test_table_defaults(void **state)
{
	static const struct want_row w[] = {
		{ "TRASH_RETENTION_DAYS", "7", 0, 3650, SETTING_F_RELOAD, 0 },
		{ "SPARE_TENANTS", "1", 0, 16, SETTING_F_RELOAD, 0 },
		{ "RESTORE_MAX_BYTES", "17179869184", 1,
		    SETTINGS_MAX_RESTORE_MAX, SETTING_F_RELOAD, 0 },
		{ "DB_WATCHER_INTERVAL", "10", 1, 3600, SETTING_F_RELOAD, 0 },
		{ "API_PORT", "8070", 1, 65535, 0, SETTING_F_RELOAD },
		{ "WATCHER_ORPHAN_GRACE_SECONDS", "600", 1, 604800,
		    SETTING_F_RELOAD, 0 },
		{ "WATCHER_DELETE_ORPHANS", "0", 0, 0, SETTING_F_RELOAD, 0 },
		{ "LOG_LEVEL", "info", 0, 0, SETTING_F_RELOAD, 0 },
		{ "API_HOST", "0.0.0.0", 0, 0, 0, SETTING_F_RELOAD },
		{ "DEFAULT_TEMPLATE_DB", "tcs", 0, 0, 0, SETTING_F_RELOAD },
		{ "CLOUDFLARE_API_URL", "https://api.cloudflare.com/client/v4",
		    0, 0, SETTING_F_RELOAD, 0 },
		{ "DOMAINS_FILE", "/opt/nodo/cloudflare/domains.json", 0, 0,
		    SETTING_F_RELOAD, 0 },
		{ "ODOO_CONF", "/etc/odoo/odoo.conf", 0, 0, 0,
		    SETTING_F_RELOAD },
		{ "WATCHER_METRICS_FILE", "/run/nodo/watcher.prom", 0, 0, 0,
		    SETTING_F_RELOAD },
		{ "CLOUDFLARE_API_TOKEN", "", 0, 0,
		    SETTING_F_SECRET | SETTING_F_RELOAD, 0 },
		{ "PROVISIONING_API_KEY", NULL, 0, 0,
		    SETTING_F_SECRET | SETTING_F_RELOAD | SETTING_F_REQUIRED,
		    0 },
		{ "PGPASSWORD", NULL, 0, 0, SETTING_F_SECRET,
		    SETTING_F_RELOAD },
		{ "PGHOST", NULL, 0, 0, 0,
		    SETTING_F_RELOAD | SETTING_F_SECRET },
		{ "ODOO_DOMAIN", NULL, 0, 0, SETTING_F_REQUIRED, 0 },
		{ "NODO_API_KEY", NULL, 0, 0, SETTING_F_SECRET | SETTING_F_CLI,
		    SETTING_F_API | SETTING_F_WATCHER },
	};
	const struct setting_def *d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		d = settings_def(w[i].name);
		print_message("  %s\n", w[i].name);
		assert_non_null(d);
		if (w[i].def == NULL)
			assert_null(d->def);
		else
			assert_string_equal(d->def, w[i].def);
		if (w[i].max != 0) {
			assert_int_equal(d->min, w[i].min);
			assert_int_equal(d->max, w[i].max);
		}
		assert_int_equal(d->flags & w[i].flags, w[i].flags);
		assert_int_equal(d->flags & w[i].not, 0);
	}
}

/* Each int key refuses its bounds' neighbours, naming the key. */
static void
test_table_bounds_enforced(void **state)
{
	const struct setting_def *t;
	struct settings s;
	struct settings_errors errs;
	char below[32], above[32], *none = path_in("none.env");
	size_t n, i;

	(void)state;
	t = settings_table(&n);
	for (i = 0; i < n; i++) {
		if (t[i].type != SETTING_INT && t[i].type != SETTING_BYTES)
			continue;
		if (t[i].flags & SETTING_F_CLI)
			continue;
		snprintf(below, sizeof(below), "%lld", t[i].min - 1);
		snprintf(above, sizeof(above), "%lld", t[i].max + 1);
		for (int k = 0; k < 2; k++) {
			base_env();
			setenv("ODOO_DOMAIN", "sajet.us", 1);
			setenv(t[i].name, k == 0 ? below : above, 1);
			memset(&errs, 0, sizeof(errs));
			assert_int_equal(settings_load(&s, SETTINGS_WATCHER,
			                     none, 0, &errs),
			    -1);
			assert_true(has_error(&errs, t[i].name,
			    "must be a whole number from"));
			settings_errors_free(&errs);
			settings_free(&s);
			unsetenv(t[i].name);
		}
	}
	free(none);
}

/* The generated example is the committed one's source: it parses back to
 * the table's defaults. */
static void
test_example_parses_to_defaults(void **state)
{
	struct settings s;
	struct settings_errors errs = { 0 };
	char *buf = NULL, *f;
	size_t len = 0;
	FILE *m;

	(void)state;
	m = open_memstream(&buf, &len);
	assert_non_null(m);
	assert_int_equal(settings_print_example(m), 0);
	fclose(m);
	f = write_file("example.env", buf, 0600);
	base_env();
	setenv("PROVISIONING_API_KEY", "0123456789abcdef0123", 1);
	if (settings_load(&s, SETTINGS_API, f, 1, &errs) != 0)
		dump_errors(&errs);
	assert_int_equal(errs.n, 0);
	assert_string_equal(s.odoo_domain, "sajet.us");
	assert_null(s.cf_token);
	assert_int_equal(s.dns_enabled, 0);
	assert_null(s.cf_tunnel_id);
	assert_string_equal(s.cf_api_url, SETTINGS_DEFAULT_CF_URL);
	assert_int_equal(s.watcher_interval, 10);
	assert_int_equal(s.watcher_delete_orphans, 0);
	assert_int_equal(s.watcher_orphan_grace, 600);
	assert_string_equal(s.watcher_metrics_file, SETTINGS_DEFAULT_METRICS);
	assert_string_equal(s.api_host, "0.0.0.0");
	assert_int_equal(s.api_port, 8070);
	assert_string_equal(s.default_template, "tcs");
	assert_int_equal(s.ntemplate_dbs, 0);
	assert_null(s.pg_host);
	assert_null(s.pg_port);
	assert_string_equal(s.data_dir, SETTINGS_DEFAULT_DATA_DIR);
	assert_int_equal(s.log_level, LOG_INFO);
	assert_int_equal(s.trash_retention_days, 7);
	assert_int_equal(s.spare_tenants, 1);
	assert_true(s.restore_max_bytes == 17179869184LL);
	settings_free(&s);
	settings_errors_free(&errs);
	unsetenv("PROVISIONING_API_KEY");
	free(buf);
	free(f);
}

static void
load_ok(struct settings *s, const char *env)
{
	struct settings_errors errs = { 0 };
	char *f = write_file("reload.env", env, 0600);

	base_env();
	if (settings_load(s, SETTINGS_API, f, 1, &errs) != 0)
		dump_errors(&errs);
	assert_int_equal(errs.n, 0);
	settings_errors_free(&errs);
	free(f);
}

static void
merge_run(void *arg)
{
	struct settings **p = arg;

	assert_int_equal(settings_reload_merge(p[0], p[1], "odoo-local-api"),
	    3);
}

/* A reload keeps what needs a restart, naming it, and no secret. */
static void
test_reload_merge(void **state)
{
	struct settings old, nw, *p[2] = { &old, &nw };
	char *out;

	(void)state;
	load_ok(&old,
	    "ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY=aaaaaaaaaaaaaaaa1\n"
	    "API_PORT=8070\nLOG_LEVEL=info\n");
	load_ok(&nw,
	    "ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY=bbbbbbbbbbbbbbbb2\n"
	    "API_PORT=9090\nLOG_LEVEL=debug\nSPARE_TENANTS=3\n"
	    "PGPASSWORD=hunter2hunter2\nAPI_HOST=127.0.0.1\n");
	log_init("test");
	log_set_level(LOG_INFO);
	out = capture_stderr(merge_run, p);
	log_set_level(LOG_ERR);
	assert_non_null(
	    strstr(out, "API_PORT changed: restart odoo-local-api to apply"));
	assert_non_null(
	    strstr(out, "API_HOST changed: restart odoo-local-api to apply"));
	assert_non_null(
	    strstr(out, "PGPASSWORD changed: restart odoo-local-api to apply"));
	assert_non_null(strstr(out, "LOG_LEVEL changed"));
	assert_non_null(strstr(out, "SPARE_TENANTS changed"));
	assert_non_null(strstr(out, "PROVISIONING_API_KEY changed"));
	assert_null(strstr(out, "hunter2"));
	assert_null(strstr(out, "bbbbbbbb"));
	/* Restart-only keys keep the values in effect; the rest are new. */
	assert_int_equal(nw.api_port, 8070);
	assert_string_equal(nw.api_host, "0.0.0.0");
	assert_null(nw.pg_password);
	assert_int_equal(nw.log_level, LOG_DEBUG);
	assert_int_equal(nw.spare_tenants, 3);
	assert_string_equal(nw.api_key, "bbbbbbbbbbbbbbbb2");
	free(out);
	settings_free(&old);
	settings_free(&nw);
}

/* The shared settings: a reader keeps its struct across a swap. */
static void
test_live_swap(void **state)
{
	struct settings a, b;
	struct settings_live *l;
	const struct settings *r1, *r2;

	(void)state;
	load_ok(&a,
	    "ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY="
	    "aaaaaaaaaaaaaaaa1\nSPARE_TENANTS=2\n");
	load_ok(&b,
	    "ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY="
	    "aaaaaaaaaaaaaaaa1\nSPARE_TENANTS=5\n");
	l = settings_live_new(&a);
	assert_non_null(l);
	assert_null(a.odoo_domain); /* taken */
	r1 = settings_live_get(l);
	assert_int_equal(r1->spare_tenants, 2);
	assert_int_equal(settings_live_set(l, &b), 0);
	r2 = settings_live_get(l);
	assert_int_equal(r2->spare_tenants, 5);
	/* The old one is still whole for its reader (ASan would see). */
	assert_int_equal(r1->spare_tenants, 2);
	assert_string_equal(r1->odoo_domain, "sajet.us");
	settings_live_put(l, r1);
	settings_live_put(l, r2);
	settings_live_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_table),
		cmocka_unit_test(test_env_limits),
		cmocka_unit_test(test_conf_table),
		cmocka_unit_test(test_domains_table),
		cmocka_unit_test(test_domains_invalid_json_line),
		cmocka_unit_test(test_domains_too_many_zones),
		cmocka_unit_test(test_load_defaults),
		cmocka_unit_test(test_load_all_keys),
		cmocka_unit_test(test_load_template_dbs),
		cmocka_unit_test(test_load_env_overrides_file),
		cmocka_unit_test(test_load_config_semantics),
		cmocka_unit_test(test_load_secrecy),
		cmocka_unit_test(test_load_collects_every_error),
		cmocka_unit_test(test_load_value_table),
		cmocka_unit_test(test_load_api_key),
		cmocka_unit_test(test_load_odoo_conf),
		cmocka_unit_test(test_load_dns),
		cmocka_unit_test(test_load_credential),
		cmocka_unit_test(test_load_secrecy_root_group),
		cmocka_unit_test(test_errors_print),
		cmocka_unit_test(test_load_unknown_key_warns),
		cmocka_unit_test(test_seed_zone_ids),
		cmocka_unit_test(test_table_rows),
		cmocka_unit_test(test_table_defaults),
		cmocka_unit_test(test_table_bounds_enforced),
		cmocka_unit_test(test_example_parses_to_defaults),
		cmocka_unit_test(test_reload_merge),
		cmocka_unit_test(test_live_swap),
	};

	/* Warnings of the code under test would only clutter the output. */
	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
