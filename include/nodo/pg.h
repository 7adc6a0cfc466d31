/*
 * pg.h - PostgreSQL helpers: connecting as the node's role and a small pool
 * of connections to the maintenance database "postgres".
 *
 * Connection parameters come from the settings (PG* over odoo.conf db_*);
 * a NULL parameter is left to libpq. Every connection has a connect timeout
 * and the program's name as application_name (PG_APP_API, PG_APP_WATCHER). The pool is thread-safe; a PGconn itself is
 * used by one thread at a time.
 */
#ifndef NODO_PG_H
#define NODO_PG_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/settings.h"

#define PG_CONNECT_TIMEOUT 5 /* seconds (libpq's connect_timeout) */
/*
 * Idle connections are kept up to the open limit: a new connection waits
 * while a CREATE DATABASE runs, so lists and /health must not need one.
 * pg_pool_trim() closes those idle longer than PG_POOL_IDLE_S.
 */
#define PG_POOL_MAX_IDLE 32   /* idle maintenance connections kept */
#define PG_POOL_IDLE_S   60   /* seconds an idle connection is kept */
#define PG_POOL_MAX_OPEN 32   /* maintenance connections open at once */
#define PG_POOL_WAIT_MS  5000 /* wait for a free one before giving up */
#define PG_MAINT_DB      "postgres"
#define PG_APP_API       "odoo-local-api"  /* application_name of the API */
#define PG_APP_WATCHER   "odoo-db-watcher" /* and of the watcher */

/*
 * Connects to dbname. Returns the connection, or NULL with a sentence in err
 * (no password in it). The caller PQfinish()es it.
 */
PGconn *pg_connect(const struct settings *s, const char *dbname, char *err,
    size_t errlen);

struct pg_pool;

struct pg_pool *pg_pool_new(const struct settings *s);
void pg_pool_free(struct pg_pool *p);

/*
 * A maintenance connection (reused when one is idle and alive), or NULL
 * with err: PostgreSQL unreachable, or PG_POOL_MAX_OPEN in use for longer
 * than PG_POOL_WAIT_MS.
 */
PGconn *pg_pool_get(struct pg_pool *p, char *err, size_t errlen);

/* Gives it back; a connection whose status is bad is closed instead. */
void pg_pool_put(struct pg_pool *p, PGconn *c);

/* Closes connections idle for max_idle_s seconds or more. */
void pg_pool_trim(struct pg_pool *p, int max_idle_s);

/* Runs a command with no result rows; 0 or -1 with err and *sqlstate. */
int pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
    char *err, size_t errlen, char sqlstate[6]);

/* 1 when the connection failed (the server is unreachable), 0 otherwise. */
int pg_conn_lost(PGconn *c);

#endif
