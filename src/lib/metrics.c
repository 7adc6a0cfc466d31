/*
 * metrics.c - Prometheus text format 0.0.4 and lock-free histograms
 * (metrics.h).
 *
 * An observation is two relaxed atomic adds (its bucket and the sum in
 * nanoseconds, an integer so that no compare-and-swap loop is needed).
 * Rendering reads the per-bucket counts once and accumulates them, which
 * keeps each rendered histogram self-consistent. Floating-point values are
 * printed with %.17g (round-trip exact); bucket bounds with %g, which
 * gives "0.005", "2.5", "10" for our tables.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodo/metrics.h"

#define METRICS_BUF_START 4096 /* bytes, first allocation of a buffer */

/* Requests: /health answers in well under a millisecond, a create ~1 s. */
const double metrics_http_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
const size_t metrics_http_nbuckets =
    sizeof(metrics_http_buckets) / sizeof(metrics_http_buckets[0]);

/* Tenant operations: a create is 0.3 s to minutes (large filestores). */
const double metrics_op_buckets[] = { 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120,
	300, 600, 1800 };
const size_t metrics_op_nbuckets =
    sizeof(metrics_op_buckets) / sizeof(metrics_op_buckets[0]);

void
metrics_hist_init(struct metrics_hist *h, const double *bounds, size_t nbounds)
{
	size_t i;

	if (nbounds > METRICS_MAX_BUCKETS)
		nbounds = METRICS_MAX_BUCKETS;
	h->bounds = bounds;
	h->nbounds = nbounds;
	for (i = 0; i <= METRICS_MAX_BUCKETS; i++)
		atomic_init(&h->n[i], 0);
	atomic_init(&h->sum_ns, 0);
}

void
metrics_hist_observe(struct metrics_hist *h, double seconds)
{
	size_t i;
	uint64_t ns;

	if (!(seconds > 0)) /* negative or NaN */
		seconds = 0;
	for (i = 0; i < h->nbounds; i++)
		if (seconds <= h->bounds[i])
			break;
	/* Past ~584 years of nanoseconds: saturate instead of wrapping. */
	ns = seconds < 1.8e10 ? (uint64_t)(seconds * 1e9) : UINT64_MAX / 2;
	atomic_fetch_add_explicit(&h->n[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

uint64_t
metrics_hist_count(const struct metrics_hist *h)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i <= h->nbounds; i++)
		n += atomic_load_explicit(&h->n[i], memory_order_relaxed);
	return n;
}

void
metrics_buf_init(struct metrics_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
metrics_buf_free(struct metrics_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Room for need more bytes and a NUL; 0 or -1 (nomem set). */
static int
metrics_reserve(struct metrics_buf *b, size_t need)
{
	size_t cap;
	char *np;

	if (b->nomem)
		return -1;
	if (b->len + need + 1 <= b->cap)
		return 0;
	if (b->len + need + 1 > METRICS_MAX_TEXT) {
		b->nomem = 1;
		return -1;
	}
	cap = b->cap ? b->cap : METRICS_BUF_START;
	while (cap < b->len + need + 1)
		cap *= 2;
	if (cap > METRICS_MAX_TEXT)
		cap = METRICS_MAX_TEXT;
	if ((np = realloc(b->p, cap)) == NULL) {
		b->nomem = 1;
		return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

void
metrics_append(struct metrics_buf *b, const char *s, size_t len)
{
	if (metrics_reserve(b, len) != 0)
		return;
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || metrics_reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
metrics_family(struct metrics_buf *b, const char *name, const char *type,
    const char *help)
{
	metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

int
metrics_labels(char *out, size_t outlen, ...)
{
	va_list ap;
	const char *k, *v;
	size_t o = 0;
	int first = 1;

	if (outlen == 0)
		return -1;
	va_start(ap, outlen);
	while ((k = va_arg(ap, const char *)) != NULL) {
		int n;

		v = va_arg(ap, const char *);
		if (v == NULL)
			v = "";
		n = snprintf(out + o, outlen - o, "%s%s=\"", first ? "" : ",",
		    k);
		if (n < 0 || (size_t)n >= outlen - o)
			goto full;
		o += (size_t)n;
		first = 0;
		for (; *v != '\0'; v++) {
			const char *esc = *v == '\\' ? "\\\\"
			    : *v == '"'              ? "\\\""
			    : *v == '\n'             ? "\\n"
			                             : NULL;
			size_t el = esc != NULL ? 2 : 1;

			if (o + el >= outlen)
				goto full;
			if (esc != NULL)
				memcpy(out + o, esc, 2);
			else
				out[o] = *v;
			o += el;
		}
		if (o + 1 >= outlen)
			goto full;
		out[o++] = '"';
	}
	va_end(ap);
	out[o] = '\0';
	return 0;
full:
	va_end(ap);
	out[0] = '\0';
	return -1;
}

/* Prometheus spells the special values +Inf, -Inf and NaN. */
static void
metrics_value(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "NaN");
	else if (isinf(v))
		snprintf(buf, len, "%sInf", v > 0 ? "+" : "-");
	else
		snprintf(buf, len, "%.17g", v);
}

void
metrics_sample(struct metrics_buf *b, const char *name, const char *labels,
    double value)
{
	char v[40];

	metrics_value(v, sizeof(v), value);
	if (labels != NULL && labels[0] != '\0')
		metrics_printf(b, "%s{%s} %s\n", name, labels, v);
	else
		metrics_printf(b, "%s %s\n", name, v);
}

void
metrics_sample_u64(struct metrics_buf *b, const char *name, const char *labels,
    uint64_t value)
{
	if (labels != NULL && labels[0] != '\0')
		metrics_printf(b, "%s{%s} %llu\n", name, labels,
		    (unsigned long long)value);
	else
		metrics_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

void
metrics_hist_write(struct metrics_buf *b, const char *name, const char *labels,
    const struct metrics_hist *h)
{
	const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;
	size_t i;

	if (labels == NULL)
		labels = "";
	for (i = 0; i <= h->nbounds; i++) {
		char le[40];

		cum += atomic_load_explicit(&h->n[i], memory_order_relaxed);
		if (i < h->nbounds)
			snprintf(le, sizeof(le), "%g", h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		metrics_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name,
		    labels, sep, le, (unsigned long long)cum);
	}
	metrics_printf(b, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "",
	    labels, labels[0] ? "}" : "",
	    (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) /
	        1e9);
	metrics_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "",
	    labels, labels[0] ? "}" : "", (unsigned long long)cum);
}
