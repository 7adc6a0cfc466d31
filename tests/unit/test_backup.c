/*
 * test_backup.c - unit tests of the pieces of backups that need no
 * database: fs_walk_files() (path order, files only, links and fifos never
 * followed, a missing root), fs_usage(), the tenant comment's keys, and
 * the manifest parser a restore will use.
 */
#include <sys/stat.h>

#include <errno.h>
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

#include "nodo/backup.h"
#include "nodo/filestore.h"
#include "nodo/tenant.h"

static char root[64];

static void
put(const char *rel, const char *text)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
dir(const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static int
setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/nodo-test-backup-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int
teardown(void **state)
{
	assert_int_equal(fs_remove_tree(root), 0);
	return 0;
}

struct seen {
	char paths[32][128];
	int n;
};

static int
record(void *arg, int dirfd, const char *name, const char *rel,
    const struct stat *st)
{
	struct seen *s = arg;

	assert_true(S_ISREG(st->st_mode));
	assert_true(s->n < 32);
	snprintf(s->paths[s->n++], sizeof(s->paths[0]), "%s", rel);
	return 0;
}

static void
test_walk_order_and_links(void **state)
{
	static const char *const want[] = { "0a/f1", "0a/f2", "b", "d7/x/y",
		"zz" };
	struct seen s = { .n = 0 };
	unsigned long long bytes, files;
	char p[256], err[256];
	size_t i;

	dir("d7");
	dir("d7/x");
	dir("0a");
	put("zz", "12345");
	put("0a/f2", "ab");
	put("0a/f1", "a");
	put("b", "");
	put("d7/x/y", "xyz");
	snprintf(p, sizeof(p), "%s/link", root);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/dirlink", root);
	assert_int_equal(symlink("/etc", p), 0);
	snprintf(p, sizeof(p), "%s/fifo", root);
	assert_int_equal(mkfifo(p, 0600), 0);

	assert_int_equal(fs_walk_files(root, record, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(s.paths[i], want[i]);
	assert_int_equal(fs_usage(root, &bytes, &files, err, sizeof(err)), 0);
	assert_int_equal(files, 5);
	assert_int_equal(bytes, 11);
}

static int
stop_at_second(void *arg, int dirfd, const char *name, const char *rel,
    const struct stat *st)
{
	int *n = arg;

	if (++*n == 2) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static void
test_walk_missing_and_stop(void **state)
{
	unsigned long long bytes = 9, files = 9;
	char p[256], err[256];
	int n = 0;

	snprintf(p, sizeof(p), "%s/none", root);
	assert_int_equal(fs_walk_files(p, record, NULL, err, sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(fs_usage(p, &bytes, &files, err, sizeof(err)), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(files, 0);
	put("a", "1");
	put("b", "2");
	put("c", "3");
	assert_int_equal(fs_walk_files(root, stop_at_second, &n, err,
	                     sizeof(err)),
	    -1);
	assert_int_equal(n, 2);
	assert_non_null(strstr(err, "b"));
}

static void
test_comment_values(void **state)
{
	char out[64];

	tenant_comment_value("nodo:domain=sajet.us;template=tcs", "template",
	    out, sizeof(out));
	assert_string_equal(out, "tcs");
	tenant_comment_value("nodo:domain=sajet.us;template=tcs", "domain", out,
	    sizeof(out));
	assert_string_equal(out, "sajet.us");
	tenant_comment_value("nodo:domain=sajet.us", "template", out,
	    sizeof(out));
	assert_string_equal(out, "");
	tenant_comment_value("nodo:templatex=a;template=b", "template", out,
	    sizeof(out));
	assert_string_equal(out, "b");
	tenant_comment_value("other:template=b", "template", out, sizeof(out));
	assert_string_equal(out, "");
	tenant_comment_value(NULL, "template", out, sizeof(out));
	assert_string_equal(out, "");
	tenant_comment_value("nodo:template=0123456789", "template", out, 5);
	assert_string_equal(out, ""); /* does not fit: unknown, not cut */
	tenant_comment_domain("nodo:template=t;domain=Bad..d", out,
	    sizeof(out));
	assert_string_equal(out, "");
}

static void
test_manifest_parse(void **state)
{
	static const char good[] =
	    "{\"odoo_dump\": \"1\", \"db_name\": \"acme\", \"version\": "
	    "\"18.0\", \"major_version\": \"18.0\", \"modules\": {}}";
	struct backup_manifest m;
	char err[128];

	assert_int_equal(backup_manifest_parse(good, strlen(good), &m, err,
	                     sizeof(err)),
	    0);
	assert_string_equal(m.db_name, "acme");
	assert_string_equal(m.major_version, "18.0");
	assert_int_equal(backup_manifest_parse("[1]", 3, &m, err, sizeof(err)),
	    -1);
	assert_int_equal(backup_manifest_parse("{", 1, &m, err, sizeof(err)),
	    -1);
	assert_int_equal(backup_manifest_parse("{\"version\": 18}", 15, &m, err,
	                     sizeof(err)),
	    0);
	assert_string_equal(m.version, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk_order_and_links,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_missing_and_stop,
		    setup, teardown),
		cmocka_unit_test(test_comment_values),
		cmocka_unit_test(test_manifest_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
