/*
 * metrics.h - Prometheus text exposition (format 0.0.4) and lock-free
 * counters and histograms to feed it (CONTRACT section 12).
 *
 * Counters and histograms are C11 atomics: observing one never takes a
 * lock, so the request path pays a few relaxed atomic adds. The text is
 * rendered on demand into a growable buffer. A histogram's buckets are
 * kept per bucket and summed when rendered, so the cumulative counts, the
 * +Inf bucket and _count always agree with each other even while other
 * threads observe; _sum may lag them by the observations in flight.
 * Names and label names are the caller's constants; label values are
 * escaped here (backslash, double quote, newline).
 */
#ifndef NODO_METRICS_H
#define NODO_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_BUCKETS 16         /* upper bounds of one histogram */
#define METRICS_MAX_LABELS  512        /* bytes, one formatted label set */
#define METRICS_MAX_TEXT    (4u << 20) /* bytes, one rendered exposition */

/* Bucket bounds in seconds, for request and operation durations. */
extern const double metrics_http_buckets[];
extern const size_t metrics_http_nbuckets;
extern const double metrics_op_buckets[];
extern const size_t metrics_op_nbuckets;

struct metrics_hist {
	const double *bounds; /* ascending upper bounds, seconds */
	size_t nbounds;       /* <= METRICS_MAX_BUCKETS */
	atomic_uint_fast64_t n[METRICS_MAX_BUCKETS + 1]; /* last: +Inf */
	atomic_uint_fast64_t sum_ns; /* nanoseconds observed */
};

/* bounds must outlive h (static tables). Not thread-safe: call first. */
void metrics_hist_init(struct metrics_hist *h, const double *bounds,
    size_t nbounds);

/* Thread-safe, lock-free. Negative values count as 0. */
void metrics_hist_observe(struct metrics_hist *h, double seconds);

/* Total observations (the sum of every bucket). Thread-safe. */
uint64_t metrics_hist_count(const struct metrics_hist *h);

/* A growable text buffer; once out of memory it stays failed (nomem). */
struct metrics_buf {
	char *p;
	size_t len, cap;
	int nomem;
};

void metrics_buf_init(struct metrics_buf *b);
void metrics_buf_free(struct metrics_buf *b);

/* Appends formatted text (sets nomem past METRICS_MAX_TEXT). */
void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends len bytes as they are. */
void metrics_append(struct metrics_buf *b, const char *s, size_t len);

/* "# HELP name help\n# TYPE name type\n" (type: counter, gauge, ...). */
void metrics_family(struct metrics_buf *b, const char *name, const char *type,
    const char *help);

/*
 * Formats a label set k1="v1",k2="v2" (no braces) into out from NULL-terminated
 * pairs (key, value, key, value, ..., NULL), escaping each value. Returns 0,
 * or -1 when it does not fit (out is then "").
 */
int metrics_labels(char *out, size_t outlen, ...);

/* One sample line: name{labels} value; labels "" (no braces) or above. */
void metrics_sample(struct metrics_buf *b, const char *name, const char *labels,
    double value);
void metrics_sample_u64(struct metrics_buf *b, const char *name,
    const char *labels, uint64_t value);

/*
 * A histogram's lines: name_bucket{labels,le="..."} for every bound and
 * +Inf, name_sum and name_count. labels as above ("" for none).
 */
void metrics_hist_write(struct metrics_buf *b, const char *name,
    const char *labels, const struct metrics_hist *h);

#endif
