/*
 * test_log.c - unit tests of log.c: level names, the "<N>message" line
 * format on stderr (captured through a file in a mkdtemp(3) directory),
 * level filtering, truncation of long messages, one line per call, that
 * a $JOURNAL_STREAM naming another file keeps lines on stderr, and (as
 * root on a host without journald) the journal fields, received on a
 * stand-in socket at journald's fixed path.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

#define LOG_MAX_MSG 2048 /* what log.c promises to keep of a message */
#define NTHREADS    8
#define NLINES      200

static char tmpdir[] = "/tmp/test_log.XXXXXX";
static char outpath[64];
static int saved_stderr = -1;
static int outfd = -1;

/* Sends stderr (fd 2) to a fresh file until end_capture(). */
static void
begin_capture(void)
{
	fflush(stderr);
	outfd = open(outpath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
	assert_true(outfd != -1);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr != -1);
	assert_true(dup2(outfd, STDERR_FILENO) != -1);
}

/* Restores stderr and returns what was written to it (free it). */
static char *
end_capture(size_t *lenp)
{
	struct stat st;
	char *buf;
	ssize_t n;

	assert_true(dup2(saved_stderr, STDERR_FILENO) != -1);
	close(saved_stderr);
	assert_int_equal(fstat(outfd, &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(buf);
	n = pread(outfd, buf, (size_t)st.st_size, 0);
	assert_int_equal(n, st.st_size);
	close(outfd);
	if (lenp != NULL)
		*lenp = (size_t)n;
	return buf;
}

static void
test_level_parse(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "debug", LOG_DEBUG },
		{ "info", LOG_INFO },
		{ "warning", LOG_WARNING },
		{ "warn", LOG_WARNING },
		{ "error", LOG_ERR },
		{ "DEBUG", LOG_DEBUG },
		{ "Warning", LOG_WARNING },
		{ "", -1 },
		{ "err", -1 },
		{ "notice", -1 },
		{ "info ", -1 },
		{ "7", -1 },
		{ NULL, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(log_level_parse(cases[i].in), cases[i].want);
}

static void
test_line_format(void **state)
{
	char *out;

	log_init("test_log");
	log_set_level(LOG_DEBUG);
	begin_capture();
	log_err("disk %s is %d%% full", "sda", 99);
	log_warn("w");
	log_notice("n");
	log_info("i");
	log_debug("d");
	log_msg(LOG_INFO, "acme", "tenant created");
	out = end_capture(NULL);
	assert_string_equal(out,
	    "<3>disk sda is 99% full\n<4>w\n<5>n\n"
	    "<6>i\n<7>d\n<6>tenant created\n");
	free(out);
}

static void
test_level_filter(void **state)
{
	char *out;

	log_init("test_log");
	log_set_level(LOG_WARNING);
	assert_int_equal(log_get_level(), LOG_WARNING);
	begin_capture();
	log_debug("hidden debug");
	log_info("hidden info");
	log_warn("shown warning");
	log_err("shown error");
	out = end_capture(NULL);
	assert_string_equal(out, "<4>shown warning\n<3>shown error\n");
	free(out);

	/* Out-of-range levels are clamped, not trusted. */
	log_set_level(99);
	assert_int_equal(log_get_level(), LOG_DEBUG);
	log_set_level(-5);
	assert_int_equal(log_get_level(), LOG_EMERG);
	log_set_level(LOG_INFO);
}

static void
test_truncation_and_one_line(void **state)
{
	char *big, *out;
	size_t len;

	log_init("test_log");
	log_set_level(LOG_INFO);
	big = malloc(3 * LOG_MAX_MSG);
	assert_non_null(big);
	memset(big, 'x', 3 * LOG_MAX_MSG - 1);
	big[3 * LOG_MAX_MSG - 1] = '\0';

	begin_capture();
	log_info("%s", big);
	log_info("two\nlines\r\tand\x1b[31mcolour");
	out = end_capture(&len);
	/* "<6>" + 2048 bytes + "\n", then the second line. */
	assert_true(len > 3 + LOG_MAX_MSG + 1);
	assert_memory_equal(out, "<6>", 3);
	assert_int_equal(strspn(out + 3, "x"), LOG_MAX_MSG);
	assert_int_equal(out[3 + LOG_MAX_MSG], '\n');
	assert_string_equal(out + 3 + LOG_MAX_MSG + 1,
	    "<6>two lines  and [31mcolour\n");
	free(out);
	free(big);
}

static void
test_journal_stream_elsewhere(void **state)
{
	char *out;

	/* $JOURNAL_STREAM naming another file: stderr is not the journal. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	begin_capture();
	log_init("test_log");
	log_info("still on stderr");
	out = end_capture(NULL);
	assert_string_equal(out, "<6>still on stderr\n");
	free(out);

	/* Garbage in it is ignored too. */
	setenv("JOURNAL_STREAM", "not-a-stream", 1);
	begin_capture();
	log_init(NULL);
	log_info("again");
	out = end_capture(NULL);
	assert_string_equal(out, "<6>again\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
	log_init("test_log");
}

#define JOURNAL_DIR    "/run/systemd/journal"
#define JOURNAL_SOCKET JOURNAL_DIR "/socket"

static void
test_journal_fields(void **state)
{
	static const char *const dirs[] = { "/run/systemd", JOURNAL_DIR };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	struct stat st;
	char js[64], got[2][4096], *out = NULL;
	int made[2] = { 0, 0 }, fd, bound, ngot = 0;
	size_t i;
	ssize_t n;

	/* Only where no journald listens: we stand in for it. */
	if (geteuid() != 0 || access(JOURNAL_SOCKET, F_OK) == 0) {
		skip();
		return;
	}
	for (i = 0; i < 2; i++)
		if (mkdir(dirs[i], 0755) == 0)
			made[i] = 1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", JOURNAL_SOCKET);
	bound = fd != -1 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (bound) {
		begin_capture();
		assert_int_equal(fstat(STDERR_FILENO, &st), 0);
		snprintf(js, sizeof(js), "%ju:%ju", (uintmax_t)st.st_dev,
		    (uintmax_t)st.st_ino);
		setenv("JOURNAL_STREAM", js, 1);
		log_init("test_log");
		log_set_level(LOG_INFO);
		log_msg(LOG_WARNING, "acme", "journal %s", "hello");
		log_info("no tenant");
		out = end_capture(NULL);
		unsetenv("JOURNAL_STREAM");
		log_init("test_log");
		pfd.fd = fd;
		pfd.events = POLLIN;
		while (ngot < 2 && poll(&pfd, 1, 2000) == 1) {
			n = recv(fd, got[ngot], sizeof(got[0]) - 1, 0);
			if (n <= 0)
				break;
			got[ngot++][n] = '\0';
		}
	}
	/* Clean up before asserting: a stale socket would skip later runs. */
	if (fd != -1)
		close(fd);
	if (bound)
		unlink(JOURNAL_SOCKET);
	for (i = 2; i-- > 0;)
		if (made[i])
			rmdir(dirs[i]);

	assert_true(bound);
	/* Nothing on stderr: both lines went to the journal. */
	assert_non_null(out);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(ngot, 2);
	assert_non_null(strstr(got[0], "MESSAGE=journal hello\n"));
	assert_non_null(strstr(got[0], "PRIORITY=4\n"));
	assert_non_null(strstr(got[0], "SYSLOG_IDENTIFIER=test_log\n"));
	assert_non_null(strstr(got[0], "TENANT=acme\n"));
	assert_non_null(strstr(got[1], "MESSAGE=no tenant\n"));
	assert_non_null(strstr(got[1], "PRIORITY=6\n"));
	assert_non_null(strstr(got[1], "SYSLOG_IDENTIFIER=test_log\n"));
	assert_null(strstr(got[1], "TENANT="));
}

static void *
writer(void *arg)
{
	int i, id = (int)(intptr_t)arg;

	for (i = 0; i < NLINES; i++)
		log_info("thread %d line %d %s", id, i,
		    "padding-padding-padding-padding-padding-padding");
	return NULL;
}

static void
test_threads_do_not_interleave(void **state)
{
	pthread_t t[NTHREADS];
	int seen[NTHREADS] = { 0 };
	char *out, *line, *nl, want[256];
	int i, n = 0, id, ln;

	log_init("test_log");
	log_set_level(LOG_INFO);
	begin_capture();
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer,
		                     (void *)(intptr_t)i),
		    0);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	out = end_capture(NULL);
	for (line = out; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		assert_int_equal(sscanf(line, "<6>thread %d line %d ", &id,
		                     &ln),
		    2);
		assert_true(id >= 0 && id < NTHREADS);
		/* Whole, and in order within its thread. */
		assert_int_equal(ln, seen[id]++);
		snprintf(want, sizeof(want), "<6>thread %d line %d %s", id, ln,
		    "padding-padding-padding-padding-padding-padding");
		assert_string_equal(line, want);
		n++;
	}
	assert_int_equal(n, NTHREADS * NLINES);
	free(out);
}

static int
group_setup(void **state)
{
	unsetenv("JOURNAL_STREAM");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(outpath, sizeof(outpath), "%s/stderr.out", tmpdir);
	return 0;
}

static int
group_teardown(void **state)
{
	unlink(outpath);
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_level_filter),
		cmocka_unit_test(test_truncation_and_one_line),
		cmocka_unit_test(test_journal_stream_elsewhere),
		cmocka_unit_test(test_journal_fields),
		cmocka_unit_test(test_threads_do_not_interleave),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
