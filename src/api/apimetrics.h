/*
 * apimetrics.h - the request-path counters of odoo-local-api for GET
 * /metrics (CONTRACT section 12): requests by route and status code,
 * request durations by route, tenant operations, DNS outcomes and refused
 * keys. Every observation is a few relaxed atomic adds, no lock; the text
 * is rendered when /metrics is asked for.
 *
 * Route labels are the route table's paths (templates, never a tenant
 * name: query strings are not part of a path) or "other" for any path
 * the table does not know, so label values are bounded.
 */
#ifndef NODO_API_APIMETRICS_H
#define NODO_API_APIMETRICS_H

#include <stddef.h>

#include "nodo/cloudflare.h"
#include "nodo/metrics.h"
#include "nodo/tenant.h"

#define APIMETRICS_MAX_ROUTES 16      /* distinct route paths */
#define APIMETRICS_OTHER      "other" /* route label of unknown paths */

/* Tenant operations; restore and backup are declared before they exist. */
enum apimetrics_op {
	APIMETRICS_CREATE,
	APIMETRICS_DELETE,
	APIMETRICS_RESTORE,
	APIMETRICS_BACKUP,
	APIMETRICS_NOPS
};

struct apimetrics;

/* NULL when out of memory. Free with apimetrics_free(). */
struct apimetrics *apimetrics_new(void);
void apimetrics_free(struct apimetrics *m);

/*
 * Declares a route path (a static string); the same path twice is one
 * label. Not thread-safe: call before serving. Returns 0 or -1 (full).
 */
int apimetrics_route(struct apimetrics *m, const char *path);

/*
 * One finished request: path is a declared route path or anything else
 * (counted as "other"); status 100..599 (others are counted as 0).
 * Thread-safe, lock-free.
 */
void apimetrics_request(struct apimetrics *m, const char *path, int status,
    double seconds);

/* One tenant operation that ran, its duration and how it ended. */
void apimetrics_op(struct apimetrics *m, enum apimetrics_op op, double seconds,
    enum tenant_err e);

/* The DNS outcome of a create or delete. */
void apimetrics_dns(struct apimetrics *m, enum cf_status st);

/* A request refused for a missing or wrong key. */
void apimetrics_auth_refused(struct apimetrics *m);

/* Appends every counter and histogram above (thread-safe). */
void apimetrics_render(const struct apimetrics *m, struct metrics_buf *b);

#endif
