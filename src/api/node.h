/*
 * node.h - what the node is and holds, for GET /api/node (the report the
 * APP server places tenants with) and for the gauges of GET /metrics
 * (CONTRACT section 12).
 *
 * A report costs one cheap SQL query (the node's databases by kind), a
 * statvfs(2), reads of /proc and cached figures: database sizes
 * (pg_database_size() stats every file of every database, seconds for
 * hundreds of tenants, so a thread of its own measures them when a report
 * finds them older than 30 s or a database unmeasured), each template's
 * filestore size (NODE_FS_TTL_S) and Odoo version (NODE_VERSION_TTL_S):
 * reading the version means connecting to the template, and a connection
 * to a template makes CREATE DATABASE ... TEMPLATE fail while it lasts, so
 * it is done rarely and briefly. Thread-safe; node_new() starts the
 * measuring thread, node_free() stops it.
 */
#ifndef NODO_API_NODE_H
#define NODO_API_NODE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "nodo/metrics.h"
#include "nodo/tenant.h"

#define NODE_MAX_TEMPLATES   32   /* templates reported */
#define NODE_FS_TTL_S        60   /* s a template's filestore size is kept */
#define NODE_VERSION_TTL_S   3600 /* s a template's Odoo version is kept */
#define NODE_VERSION_RETRY_S 60   /* s before asking again after a failure */
#define NODE_WATCHER_MAX     (64 * 1024) /* bytes of the watcher's file */
#define NODE_WATCHER_FRESH_S 180 /* s; at least 3 polls: older is stale */

struct node;

/* NULL when out of memory. t must outlive it. */
struct node *node_new(const struct tenant_ctx *t);
void node_free(struct node *n);

/*
 * The report of GET /api/node. Returns 200 with *out set (caller deletes),
 * or 503 with detail filled when PostgreSQL is unreachable, 500 when out
 * of memory or the query failed.
 */
int node_report(struct node *n, cJSON **out, char *detail, size_t len);

/*
 * Appends the scrape-time gauges to b: nodo_postgres_up, nodo_tenants,
 * trash and spares, the data directory's disk, process basics and what
 * the watcher wrote (WATCHER_METRICS_FILE), with nodo_watcher_up.
 */
void node_metrics(struct node *n, struct metrics_buf *b);

#endif
