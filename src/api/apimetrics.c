/*
 * apimetrics.c - the request-path counters of odoo-local-api
 * (apimetrics.h).
 *
 * Requests are counted in a fixed table [route][status - 100]: a
 * finished request costs a strcmp over the few route paths and two or
 * three relaxed atomic adds. Only non-zero (route, code) pairs are
 * rendered; the histograms and the operation and DNS counters are always
 * rendered, so every series exists from the first scrape on.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apimetrics.h"
#include "pollprio.h"

#define CODE_MIN 100
#define CODE_MAX 599
#define NCODES   (CODE_MAX - CODE_MIN + 2) /* the last slot: out of range */

enum outcome { OUT_OK, OUT_REJECTED, OUT_FAILED, OUT_COUNT };

static const char *const op_names[APIMETRICS_NOPS] = {
	[APIMETRICS_CREATE] = "create",
	[APIMETRICS_DELETE] = "delete",
	[APIMETRICS_RESTORE] = "restore",
	[APIMETRICS_BACKUP] = "backup",
};

static const char *const outcome_names[OUT_COUNT] = {
	[OUT_OK] = "ok",
	[OUT_REJECTED] = "rejected",
	[OUT_FAILED] = "failed",
};

#define NDNS (CF_DISABLED + 1)

struct apimetrics {
	size_t nroutes;
	const char *route[APIMETRICS_MAX_ROUTES + 1]; /* last used: other */
	atomic_uint_fast64_t req[APIMETRICS_MAX_ROUTES + 1][NCODES];
	struct metrics_hist dur[APIMETRICS_MAX_ROUTES + 1];
	struct metrics_hist op[APIMETRICS_NOPS];
	atomic_uint_fast64_t op_out[APIMETRICS_NOPS][OUT_COUNT];
	atomic_uint_fast64_t dns[NDNS];
	atomic_uint_fast64_t auth_refused;
};

struct apimetrics *
apimetrics_new(void)
{
	struct apimetrics *m;
	size_t i;

	/* calloc: all-zero bytes are zero atomics on every Linux target. */
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	for (i = 0; i <= APIMETRICS_MAX_ROUTES; i++)
		metrics_hist_init(&m->dur[i], metrics_http_buckets,
		    metrics_http_nbuckets);
	for (i = 0; i < APIMETRICS_NOPS; i++)
		metrics_hist_init(&m->op[i], metrics_op_buckets,
		    metrics_op_nbuckets);
	m->route[0] = APIMETRICS_OTHER;
	return m;
}

void
apimetrics_free(struct apimetrics *m)
{
	free(m);
}

int
apimetrics_route(struct apimetrics *m, const char *path)
{
	size_t i;

	for (i = 0; i < m->nroutes; i++)
		if (strcmp(m->route[i], path) == 0)
			return 0;
	if (m->nroutes >= APIMETRICS_MAX_ROUTES)
		return -1;
	m->route[m->nroutes++] = path;
	m->route[m->nroutes] = APIMETRICS_OTHER;
	return 0;
}

/* The slot of a path: a declared route, else the "other" slot. */
static size_t
route_slot(const struct apimetrics *m, const char *path)
{
	size_t i;

	for (i = 0; path != NULL && i < m->nroutes; i++)
		if (strcmp(m->route[i], path) == 0)
			return i;
	return m->nroutes;
}

void
apimetrics_request(struct apimetrics *m, const char *path, int status,
    double seconds)
{
	size_t r = route_slot(m, path);
	size_t c = status >= CODE_MIN && status <= CODE_MAX
	    ? (size_t)(status - CODE_MIN)
	    : NCODES - 1;

	atomic_fetch_add_explicit(&m->req[r][c], 1, memory_order_relaxed);
	metrics_hist_observe(&m->dur[r], seconds);
}

static enum outcome
outcome_of(enum tenant_err e)
{
	switch (e) {
	case TENANT_OK:
		return OUT_OK;
	case TENANT_INVALID_SUBDOMAIN:
	case TENANT_RESERVED:
	case TENANT_UNKNOWN_DOMAIN:
	case TENANT_INVALID_PASSWORD:
	case TENANT_TEMPLATE_NOT_FOUND:
	case TENANT_TEMPLATE_NOT_ALLOWED:
	case TENANT_EXISTS:
	case TENANT_NOT_FOUND:
	case TENANT_TRASH_NOT_FOUND:
		return OUT_REJECTED;
	case TENANT_DB_UNAVAILABLE:
	case TENANT_INTERNAL:
	case TENANT_FILESTORE_MISSING:
		break;
	}
	return OUT_FAILED; /* and any error added later until sorted here */
}

void
apimetrics_op(struct apimetrics *m, enum apimetrics_op op, double seconds,
    enum tenant_err e)
{
	if ((unsigned)op >= APIMETRICS_NOPS)
		return;
	metrics_hist_observe(&m->op[op], seconds);
	atomic_fetch_add_explicit(&m->op_out[op][outcome_of(e)], 1,
	    memory_order_relaxed);
}

void
apimetrics_dns(struct apimetrics *m, enum cf_status st)
{
	if ((unsigned)st >= NDNS)
		st = CF_PENDING;
	atomic_fetch_add_explicit(&m->dns[st], 1, memory_order_relaxed);
}

void
apimetrics_auth_refused(struct apimetrics *m)
{
	atomic_fetch_add_explicit(&m->auth_refused, 1, memory_order_relaxed);
}

void
apimetrics_render(const struct apimetrics *m, struct metrics_buf *b)
{
	char lab[METRICS_MAX_LABELS], code[8];
	size_t r, c, i;

	metrics_family(b, "nodo_http_requests_total", "counter",
	    "HTTP requests answered, by route template and status code.");
	for (r = 0; r <= m->nroutes; r++)
		for (c = 0; c < NCODES; c++) {
			uint64_t n = atomic_load_explicit(&m->req[r][c],
			    memory_order_relaxed);

			if (n == 0)
				continue;
			if (c == NCODES - 1)
				snprintf(code, sizeof(code), "0");
			else
				snprintf(code, sizeof(code), "%zu",
				    c + CODE_MIN);
			metrics_labels(lab, sizeof(lab), "route", m->route[r],
			    "code", code, (char *)NULL);
			metrics_sample_u64(b, "nodo_http_requests_total", lab,
			    n);
		}

	metrics_family(b, "nodo_http_request_duration_seconds", "histogram",
	    "Time from the first byte of a request to the end of its reply.");
	for (r = 0; r <= m->nroutes; r++) {
		metrics_labels(lab, sizeof(lab), "route", m->route[r],
		    (char *)NULL);
		metrics_hist_write(b, "nodo_http_request_duration_seconds", lab,
		    &m->dur[r]);
	}

	metrics_family(b, "nodo_tenant_operation_duration_seconds", "histogram",
	    "Duration of tenant operations that ran (past request parsing).");
	for (i = 0; i < APIMETRICS_NOPS; i++) {
		metrics_labels(lab, sizeof(lab), "op", op_names[i],
		    (char *)NULL);
		metrics_hist_write(b, "nodo_tenant_operation_duration_seconds",
		    lab, &m->op[i]);
	}

	metrics_family(b, "nodo_tenant_operations_total", "counter",
	    "Tenant operations by outcome: ok, rejected (the request was "
	    "wrong: 4xx), failed (the node could not: 5xx).");
	for (i = 0; i < APIMETRICS_NOPS; i++)
		for (c = 0; c < OUT_COUNT; c++) {
			metrics_labels(lab, sizeof(lab), "op", op_names[i],
			    "outcome", outcome_names[c], (char *)NULL);
			metrics_sample_u64(b, "nodo_tenant_operations_total",
			    lab,
			    atomic_load_explicit(&m->op_out[i][c],
			        memory_order_relaxed));
		}

	metrics_family(b, "nodo_dns_results_total", "counter",
	    "DNS outcomes of creates and deletes (pending: Cloudflare failed, "
	    "the watcher retries).");
	for (i = 0; i < NDNS; i++) {
		metrics_labels(lab, sizeof(lab), "status",
		    cf_status_str((enum cf_status)i), (char *)NULL);
		metrics_sample_u64(b, "nodo_dns_results_total", lab,
		    atomic_load_explicit(&m->dns[i], memory_order_relaxed));
	}

	metrics_family(b, "nodo_http_auth_refused_total", "counter",
	    "Requests refused for a missing or wrong API key.");
	metrics_sample_u64(b, "nodo_http_auth_refused_total", "",
	    atomic_load_explicit(&m->auth_refused, memory_order_relaxed));

	metrics_family(b, "nodo_http_poll_rt_limited_total", "counter",
	    "Times an HTTP poll thread used up its real-time CPU budget and "
	    "ran at a normal priority for the rest of the window.");
	metrics_sample_u64(b, "nodo_http_poll_rt_limited_total", "",
	    pollprio_limited_total());
}
