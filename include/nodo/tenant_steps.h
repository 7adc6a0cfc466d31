/*
 * tenant_steps.h - the steps of tenant.c that other operations (restores
 * from a backup, later trash and spares) share, exported under their own
 * names (LIFECYCLE.md). Thread-safe unless said otherwise.
 */
#ifndef NODO_TENANT_STEPS_H
#define NODO_TENANT_STEPS_H

#include <stddef.h>

#include <libpq-fe.h>

#include "nodo/settings.h"
#include "nodo/tenant.h"

/* Bytes of one statement fmt_sql formats. */
#define TENANT_SQL_MAX 1024

/* The busy-name table: 0 claimed, -1 busy (409), -2 the table is full. */
int busy_claim(const char *name);
void busy_release(const char *name);

/*
 * Held shared by every operation working on internal names, so that
 * tenant_cleanup() never takes a live one's names for leftovers.
 */
void tenant_create_lock_shared(void);
void tenant_create_unlock(void);

/* ndigits random hex digits (ndigits even, <= 64) into out: 0 or -1. */
int random_hex(char *out, size_t ndigits);

/* A uuid (version 1 or 4) as Odoo writes it: 0 or -1. */
int make_uuid(char out[37], int version);

/* <data_dir>/filestore/<db>: 0, or -1 when it does not fit. */
int fs_path(const struct settings *s, const char *db, char *out, size_t len);

/* fmt with its %s filled by quoted identifiers id1, id2, literal lit. */
int fmt_sql(PGconn *c, char *out, size_t len, const char *fmt, const char *id1,
    const char *id2, const char *lit);

void terminate_sessions(PGconn *c, const char *db);
int drop_database(PGconn *c, const char *db, char *err, size_t errlen);

/* 1 when db exists, 0 when not, -1 on error. */
int db_exists(PGconn *c, const char *db, int *is_template);

/* A failed statement as TENANT_DB_UNAVAILABLE or TENANT_INTERNAL. */
enum tenant_err db_fail(struct tenant_result *res, PGconn *c, const char *what,
    const char *msg);

/*
 * ir_config_parameter upsert: $1 the keys, $2 the values, as text[]
 * literals (Odoo's init(force=True) and the URL).
 */
extern const char tenant_icp_sql[];

/* The rename and comment "nodo:domain=D;template=T" in one transaction. */
enum tenant_err publish(PGconn *c, const char *tmp, const char *name,
    const char *domain, const char *templ, struct tenant_result *res);

/* After a lost connection during publish: 0 not done, 1 done, -1 unknown. */
int publish_outcome(const struct tenant_ctx *t, const char *tmp,
    const char *name);

/* A create's DNS step: our record for name.domain (cf NULL: disabled). */
void dns_create(const struct settings *s, struct cf_client *cf,
    const char *name, const char *domain, struct tenant_dns *dns);

/*
 * Connects to the tenant d->name (which must allow connections) and fills
 * d->created_at and d->users; a database without Odoo's tables leaves
 * them unknown. TENANT_DB_UNAVAILABLE when it cannot connect.
 */
enum tenant_err tenant_inside(const struct tenant_ctx *t,
    struct tenant_detail *d, struct tenant_result *res);

#endif
