/*
 * test_metrics.c - unit tests of metrics.c: the exact text of counters,
 * gauges and histograms (cumulative buckets, +Inf equal to _count, _sum
 * in seconds), label escaping and what does not fit, special values,
 * observations from many threads at once adding up, and the cap on the
 * size of one exposition. The integration test parses the daemon's text
 * back with prometheus_client's parser.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nodo/metrics.h"

#define NTHREADS 8
#define NOBS     20000

static void
test_family_and_samples(void **state)
{
	struct metrics_buf b;

	(void)state;
	metrics_buf_init(&b);
	metrics_family(&b, "nodo_x_total", "counter", "Things.");
	metrics_sample_u64(&b, "nodo_x_total", "", 18446744073709551615ull);
	metrics_sample_u64(&b, "nodo_x_total", "a=\"b\"", 0);
	metrics_sample(&b, "nodo_g", "", 0.25);
	metrics_sample(&b, "nodo_g", NULL, 1e21);
	metrics_sample(&b, "nodo_g", "", INFINITY);
	metrics_sample(&b, "nodo_g", "", -INFINITY);
	metrics_sample(&b, "nodo_g", "", NAN);
	assert_false(b.nomem);
	assert_string_equal(b.p,
	    "# HELP nodo_x_total Things.\n"
	    "# TYPE nodo_x_total counter\n"
	    "nodo_x_total 18446744073709551615\n"
	    "nodo_x_total{a=\"b\"} 0\n"
	    "nodo_g 0.25\n"
	    "nodo_g 1e+21\n"
	    "nodo_g +Inf\n"
	    "nodo_g -Inf\n"
	    "nodo_g NaN\n");
	assert_int_equal(b.len, strlen(b.p));
	metrics_buf_free(&b);
	assert_null(b.p);
}

static void
test_labels_escaped(void **state)
{
	char out[METRICS_MAX_LABELS], small[16];

	(void)state;
	assert_int_equal(metrics_labels(out, sizeof(out), "route", "/a", "code",
	                     "200", (char *)NULL),
	    0);
	assert_string_equal(out, "route=\"/a\",code=\"200\"");
	assert_int_equal(metrics_labels(out, sizeof(out), "v", "q\"b\\s\nn",
	                     (char *)NULL),
	    0);
	assert_string_equal(out, "v=\"q\\\"b\\\\s\\nn\"");
	assert_int_equal(metrics_labels(out, sizeof(out), "v", (char *)NULL,
	                     (char *)NULL),
	    0);
	assert_string_equal(out, "v=\"\"");
	assert_int_equal(metrics_labels(out, sizeof(out), (char *)NULL), 0);
	assert_string_equal(out, "");
	/* What does not fit is refused whole, never cut in half. */
	assert_int_equal(metrics_labels(small, sizeof(small), "route",
	                     "/api/tenants", (char *)NULL),
	    -1);
	assert_string_equal(small, "");
	assert_int_equal(metrics_labels(small, sizeof(small), "k",
	                     "\"\"\"\"\"\"", (char *)NULL),
	    -1);
	assert_string_equal(small, "");
	/* Exactly full: 15 characters and the NUL. */
	assert_int_equal(metrics_labels(small, sizeof(small), "k",
	                     "0123456789a", (char *)NULL),
	    0);
	assert_string_equal(small, "k=\"0123456789a\"");
}

static void
test_histogram_text(void **state)
{
	static const double bounds[] = { 0.1, 0.5, 2.5 };
	struct metrics_hist h;
	struct metrics_buf b;

	(void)state;
	metrics_hist_init(&h, bounds, 3);
	metrics_hist_observe(&h, 0.05);
	metrics_hist_observe(&h, 0.1); /* le is inclusive */
	metrics_hist_observe(&h, 0.3);
	metrics_hist_observe(&h, 7);
	metrics_hist_observe(&h, -1);  /* counts as 0 */
	metrics_hist_observe(&h, NAN); /* counts as 0 */
	assert_int_equal(metrics_hist_count(&h), 6);
	metrics_buf_init(&b);
	metrics_hist_write(&b, "nodo_d_seconds", "route=\"/x\"", &h);
	metrics_hist_write(&b, "nodo_e_seconds", "", &h);
	assert_false(b.nomem);
	assert_string_equal(b.p,
	    "nodo_d_seconds_bucket{route=\"/x\",le=\"0.1\"} 4\n"
	    "nodo_d_seconds_bucket{route=\"/x\",le=\"0.5\"} 5\n"
	    "nodo_d_seconds_bucket{route=\"/x\",le=\"2.5\"} 5\n"
	    "nodo_d_seconds_bucket{route=\"/x\",le=\"+Inf\"} 6\n"
	    "nodo_d_seconds_sum{route=\"/x\"} 7.450000000\n"
	    "nodo_d_seconds_count{route=\"/x\"} 6\n"
	    "nodo_e_seconds_bucket{le=\"0.1\"} 4\n"
	    "nodo_e_seconds_bucket{le=\"0.5\"} 5\n"
	    "nodo_e_seconds_bucket{le=\"2.5\"} 5\n"
	    "nodo_e_seconds_bucket{le=\"+Inf\"} 6\n"
	    "nodo_e_seconds_sum 7.450000000\n"
	    "nodo_e_seconds_count 6\n");
	metrics_buf_free(&b);
}

static void
test_empty_histogram_and_tables(void **state)
{
	struct metrics_hist h;
	struct metrics_buf b;
	size_t i;

	(void)state;
	/* The shipped bounds are ascending and fit. */
	assert_true(metrics_http_nbuckets <= METRICS_MAX_BUCKETS);
	assert_true(metrics_op_nbuckets <= METRICS_MAX_BUCKETS);
	for (i = 1; i < metrics_http_nbuckets; i++)
		assert_true(
		    metrics_http_buckets[i - 1] < metrics_http_buckets[i]);
	for (i = 1; i < metrics_op_nbuckets; i++)
		assert_true(metrics_op_buckets[i - 1] < metrics_op_buckets[i]);
	metrics_hist_init(&h, metrics_op_buckets, metrics_op_nbuckets);
	metrics_buf_init(&b);
	metrics_hist_write(&b, "nodo_op_seconds", "op=\"restore\"", &h);
	assert_non_null(strstr(b.p,
	    "nodo_op_seconds_bucket{op=\"restore\",le=\"+Inf\"} 0\n"));
	assert_non_null(
	    strstr(b.p, "nodo_op_seconds_count{op=\"restore\"} 0\n"));
	assert_non_null(
	    strstr(b.p, "nodo_op_seconds_sum{op=\"restore\"} 0.000000000\n"));
	assert_non_null(strstr(b.p, "le=\"0.1\"} 0\n"));
	assert_non_null(strstr(b.p, "le=\"1800\"} 0\n"));
	metrics_buf_free(&b);
}

struct worker {
	struct metrics_hist *h;
	int id;
};

static void *
observe_many(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < NOBS; i++)
		metrics_hist_observe(w->h, (i % 4) == 0 ? 0.001 : 0.75);
	return NULL;
}

static void
test_threads_add_up(void **state)
{
	struct metrics_hist h;
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct metrics_buf b;
	char want[128];
	int i;

	(void)state;
	metrics_hist_init(&h, metrics_http_buckets, metrics_http_nbuckets);
	for (i = 0; i < NTHREADS; i++) {
		w[i].h = &h;
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, observe_many,
		                     &w[i]),
		    0);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(metrics_hist_count(&h), NTHREADS * NOBS);
	metrics_buf_init(&b);
	metrics_hist_write(&b, "x", "", &h);
	snprintf(want, sizeof(want), "x_bucket{le=\"0.001\"} %d\n",
	    NTHREADS * NOBS / 4);
	assert_non_null(strstr(b.p, want));
	snprintf(want, sizeof(want), "x_count %d\n", NTHREADS * NOBS);
	assert_non_null(strstr(b.p, want));
	/* 0.001 * 40000 + 0.75 * 120000 = 90040 s, exact in nanoseconds. */
	assert_non_null(strstr(b.p, "x_sum 90040.000000000\n"));
	metrics_buf_free(&b);
}

static void
test_buffer_cap(void **state)
{
	struct metrics_buf b;
	char chunk[4096];
	size_t i;

	(void)state;
	memset(chunk, 'a', sizeof(chunk));
	metrics_buf_init(&b);
	for (i = 0; i < METRICS_MAX_TEXT / sizeof(chunk) + 2; i++)
		metrics_append(&b, chunk, sizeof(chunk));
	assert_true(b.nomem);
	assert_true(b.len < METRICS_MAX_TEXT);
	/* Once failed, it stays failed and keeps its text terminated. */
	metrics_printf(&b, "%s", "x");
	assert_true(b.nomem);
	assert_int_equal(strlen(b.p), b.len);
	metrics_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_labels_escaped),
		cmocka_unit_test(test_histogram_text),
		cmocka_unit_test(test_empty_histogram_and_tables),
		cmocka_unit_test(test_threads_add_up),
		cmocka_unit_test(test_buffer_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
