/*
 * pg.h - PostgreSQL helpers: connecting as the node's role and a small pool
 * of connections to the maintenance database "postgres".
 *
 * Connection parameters come from the settings (PG* over odoo.conf db_*);
 * a NULL parameter is left to libpq. Every connection has a connect timeout
 * and the program's name as application_name (PG_APP_API, PG_APP_WATCHER). The pool is thread-safe; a PGconn itself is
 * used by one thread at a time.
 *
 * A PostgreSQL that hangs must not hang the node. Every session runs with
 * statement_timeout and lock_timeout, and TCP keepalives plus
 * tcp_user_timeout notice a peer that vanished. A server that does not even
 * honour its own statement_timeout (a stopped or frozen process, whose
 * kernel still acknowledges every byte) is caught on our side: pg_exec()
 * and pg_query() wait at most PG_REPLY_TIMEOUT_MS for a reply, then close
 * the connection (it is then "lost", see pg_conn_lost()) and retire every
 * idle pool connection, which most likely talk to the same hung server.
 * Only statements that may rightly run for minutes (CREATE DATABASE, DROP
 * DATABASE) go through pg_exec_long(): no statement_timeout, no deadline.
 */
#ifndef NODO_PG_H
#define NODO_PG_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/settings.h"

#define PG_CONNECT_TIMEOUT 5 /* seconds, for the whole of pg_connect() */
/*
 * Every statement of ours takes milliseconds; under saturation a list was
 * seen to take seconds. Past these the server cancels it.
 */
#define PG_STATEMENT_TIMEOUT_MS 10000 /* statement_timeout of a session */
#define PG_LOCK_TIMEOUT_MS      5000  /* lock_timeout of a session */
/* Client side: a server silent this long ignored its own timeout. */
#define PG_REPLY_TIMEOUT_MS (PG_STATEMENT_TIMEOUT_MS + 5000) /* ms */
#define PG_PING_TIMEOUT_MS  2000 /* ms, pg_ping() (the /health probe) */
#define PG_PING_FRESH_MS    1000 /* ms, a reply this recent is a ping */
/* TCP (ignored on a Unix socket): a dead peer is noticed in 25 s. */
#define PG_KEEPALIVES_IDLE     10    /* s idle before the first probe */
#define PG_KEEPALIVES_INTERVAL 5     /* s between probes */
#define PG_KEEPALIVES_COUNT    3     /* probes lost before giving up */
#define PG_TCP_USER_TIMEOUT_MS 20000 /* ms sent data may stay unacked */
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

/*
 * Runs a command with no result rows; 0 or -1 with err and *sqlstate. At
 * most PG_REPLY_TIMEOUT_MS: then err says so and the connection is lost.
 */
int pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
    char *err, size_t errlen, char sqlstate[6]);

/*
 * pg_exec() for a statement that may rightly run for minutes (CREATE
 * DATABASE, DROP DATABASE, a restore): SET statement_timeout = 0 before,
 * RESET after, and no client-side deadline while it runs.
 */
int pg_exec_long(PGconn *c, const char *sql, char *err, size_t errlen,
    char sqlstate[6]);

/*
 * PQexecParams() (text in, text out) with PQexec()'s result, waiting at
 * most PG_REPLY_TIMEOUT_MS; nparams 0 and params NULL for a plain query.
 * Never NULL unless out of memory; the caller PQclear()s it. Error text:
 * pg_result_error().
 */
PGresult *pg_query(PGconn *c, const char *sql, int nparams,
    const char *const *params);

/*
 * The error of r, or, when pg_query()/pg_exec() on c gave up waiting in
 * this thread, a sentence saying so (libpq would blame the server for
 * closing the connection).
 */
const char *pg_result_error(PGconn *c, const PGresult *r);

/*
 * 1 when the last pg_query()/pg_exec()/pg_ping() of this thread ended by a
 * timeout: statement_timeout or lock_timeout on the server (SQLSTATE 57014,
 * 55P03) or no reply in time. A sign of a server too slow or blocked, not
 * of a bad request: worth a 503.
 */
int pg_timed_out(void);

/*
 * One round trip (an empty query), at most PG_PING_TIMEOUT_MS: 0, or -1
 * with err, and then the connection is lost. A reply on any connection in
 * the last PG_PING_FRESH_MS counts as one (0 at once), so that /health in a
 * tight loop costs PostgreSQL about one round trip a second.
 */
int pg_ping(PGconn *c, char *err, size_t errlen);

/* 1 when the connection failed (the server is unreachable), 0 otherwise. */
int pg_conn_lost(PGconn *c);

#endif
