/*
 * tenant_steps.h - helpers of tenant.c that other lifecycle modules
 * (suspend.c, ...) share rather than copy (LIFECYCLE conventions).
 */
#ifndef NODO_TENANT_STEPS_H
#define NODO_TENANT_STEPS_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/tenant.h"

/* Bytes of one statement fmt_sql formats. */
#define TENANT_SQL_MAX 1024

/*
 * Claims name for one operation of this process (create, delete, restore,
 * suspend, resume): 0, -1 when another holds it, -2 when the table is
 * full. busy_release() gives it back.
 */
int busy_claim(const char *name);
void busy_release(const char *name);

/*
 * Formats fmt with id1, id2 quoted as identifiers and lit as a literal
 * (each may be NULL); 0, or -1 when out of memory or too long.
 */
int fmt_sql(PGconn *c, char *out, size_t len, const char *fmt, const char *id1,
    const char *id2, const char *lit);

/*
 * Connects to the tenant d->name (which must allow connections) and fills
 * d->created_at and d->users; a database without Odoo's tables leaves
 * them unknown. TENANT_DB_UNAVAILABLE when it cannot connect.
 */
enum tenant_err tenant_inside(const struct tenant_ctx *t,
    struct tenant_detail *d, struct tenant_result *res);

#endif
