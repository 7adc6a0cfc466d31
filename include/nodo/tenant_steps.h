/*
 * tenant_steps.h - the steps tenant.c is made of, for the other lifecycle
 * modules (trash.c ...): names, quoting, drops, the busy-name table, the
 * DNS steps and the lock that keeps the clean-up away from live
 * operations. Internal to libnodo; all functions are thread-safe.
 */
#ifndef NODO_TENANT_STEPS_H
#define NODO_TENANT_STEPS_H

#include <stddef.h>
#include <time.h>
#include <libpq-fe.h>

#include "nodo/cloudflare.h"
#include "nodo/settings.h"
#include "nodo/tenant.h"

#define TENANT_SQL_MAX 1024 /* bytes of one statement we format */

/* res->detail = the sentence; returns e. */
enum tenant_err tenant_fail(struct tenant_result *res, enum tenant_err e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A database error: 503 when unreachable or timed out, else 500. */
enum tenant_err tenant_db_fail(struct tenant_result *res, PGconn *c,
    const char *what, const char *msg);

/*
 * The busy-name table: 0 when name is now ours, -1 when another operation
 * holds it, -2 when the table is full. busy_fail() turns a failure into
 * the reply (409 tenant_exists or 500).
 */
int busy_claim(const char *name);
void busy_release(const char *name);
enum tenant_err busy_fail(struct tenant_result *res, int rc, const char *name);

/*
 * Every operation that makes or moves internal names holds this shared;
 * tenant_cleanup() holds it exclusively, so it only ever sees what a
 * crashed process left.
 */
void tenant_op_begin(void);
void tenant_op_end(void);

/* DEFAULT_TEMPLATE_DB or a TEMPLATE_DBS entry: 1, else 0. */
int template_listed(const struct settings *s, const char *name);

/* "<data_dir>/filestore/<db>"; 0, or -1 when it does not fit. */
int fs_path(const struct settings *s, const char *db, char *out, size_t len);

/* fmt with id1, id2 quoted as identifiers and lit as a literal. */
int fmt_sql(PGconn *c, char *out, size_t len, const char *fmt, const char *id1,
    const char *id2, const char *lit);

/* Ends every other session on db (errors ignored). */
void terminate_sessions(PGconn *c, const char *db);

/* DROP DATABASE IF EXISTS db WITH (FORCE): 0 or -1 with err. */
int drop_database(PGconn *c, const char *db, char *err, size_t errlen);

/* 1 when a database of that name exists, 0 when not, -1 on error. */
int db_exists(PGconn *c, const char *db, int *is_template);

/* ndigits (even, up to 64) random lower-case hex digits; 0 or -1. */
int random_hex(char *out, size_t ndigits);

/* The DNS steps of a create and a delete: no connection, no lock held. */
void dns_create(const struct settings *s, struct cf_client *cf,
    const char *name, const char *domain, struct tenant_dns *dns);
void dns_delete(const struct settings *s, struct cf_client *cf,
    const char *name, const char *domain, struct tenant_dns *dns);

/* "lookup 3, rename 12 ..." from step start times (see tenant.c). */
void steps_text(char *buf, size_t len, const char *const names[],
    const struct timespec ts[], size_t nsteps);

/* The one line an operation ends with. */
void log_outcome(const char *name, const char *op, enum tenant_err e,
    const struct tenant_result *res, const struct timespec *start,
    const char *steps, const char *extra);

/*
 * The rename, the comment "nodo:domain=D;template=T" and CONNECT granted
 * to PUBLIC again (the internal database had it revoked) in one
 * transaction.
 */
enum tenant_err publish(PGconn *c, const char *tmp, const char *name,
    const char *domain, const char *templ, struct tenant_result *res);

/* After a lost connection during publish: 0 not done, 1 done, -1 unknown. */
int publish_outcome(const struct tenant_ctx *t, const char *tmp,
    const char *name);

/*
 * Connects to the tenant d->name (which must allow connections) and fills
 * d->created_at and d->users; a database without Odoo's tables leaves
 * them unknown. TENANT_DB_UNAVAILABLE when it cannot connect.
 */
enum tenant_err tenant_inside(const struct tenant_ctx *t,
    struct tenant_detail *d, struct tenant_result *res);

#endif
