/*
 * tenant_cache.h - the tenant list kept in memory, with its JSON already
 * rendered for every domain filter, so that GET /api/tenants costs what its
 * answer costs (issue 10, DESIGN.md "The tenant list cache").
 *
 * Freshness rule: the node's own creates and deletes call
 * tenant_cache_changed(), after which the next read queries PostgreSQL; a
 * background thread hashes PostgreSQL's catalog of databases (one query,
 * one row) every TENANT_CACHE_POLL_MS and reloads the list when the hash
 * moved, so a database made or dropped by hand shows within a second. When
 * that check fails (PostgreSQL unreachable) the cache is dropped and reads
 * query PostgreSQL as they did without it (503 when it is down).
 * All functions are thread-safe; no lock is held across a PostgreSQL call.
 */
#ifndef NODO_TENANT_CACHE_H
#define NODO_TENANT_CACHE_H

#include <stddef.h>

#include "nodo/tenant.h"

#define TENANT_CACHE_POLL_MS  250  /* ms between two catalog checks */
#define TENANT_CACHE_FRESH_MS 1000 /* ms a confirmed snapshot is served */

struct tenant_cache;
struct tenant_snap; /* one reference-counted list with its bodies */

/* Starts the checking thread (its own connection); NULL on failure. */
struct tenant_cache *tenant_cache_new(const struct tenant_ctx *t);

/* Stops the thread; snapshots still referenced are freed when released. */
void tenant_cache_free(struct tenant_cache *tc);

/* The node changed the list (create, delete): the next read reloads. */
void tenant_cache_changed(struct tenant_cache *tc);

/*
 * The body of GET /api/tenants for domain (NULL: all; otherwise a zone's
 * own spelling). On TENANT_OK *snap holds a reference the caller passes to
 * tenant_cache_release() once *json (not NUL-terminated, *len bytes) is
 * sent. Errors as tenant_list(), with res->detail.
 */
enum tenant_err tenant_cache_get(struct tenant_cache *tc, const char *domain,
    struct tenant_snap **snap, char **json, size_t *len,
    struct tenant_result *res);

/* Drops a reference from tenant_cache_get (void * for MHD's callback). */
void tenant_cache_release(void *snap);

/* Reloads done so far (tests and metrics): by requests and by the thread. */
unsigned long tenant_cache_reloads(struct tenant_cache *tc);

#endif
