/*
 * spares.h - ready clones of DEFAULT_TEMPLATE_DB for instant creates
 * (CONTRACT 11, SPARE_TENANTS).
 *
 * A spare is an internal database "_nodo_s<hex>" (datallowconn false, never
 * listed, never given DNS) with its filestore copied to
 * filestore/<spare name>, whose comment "nodo:op=spare;template=T;stamp=S"
 * is written only once both are complete (the clean-up leaves such a
 * database alone; anything else under the internal prefix is debris). S is
 * the template's identity when the copy began: its oid, its row counters
 * in pg_stat_database and a hash of its filestore tree. A spare whose
 * stamp is not the template's identity now is stale: never used, dropped
 * and rebuilt.
 *
 * One background thread (nice 19, I/O class idle) makes them one at a
 * time, only when no create runs; a create that starts cancels a spare's
 * clone in flight (it is retried later) and never waits for it.
 */
#ifndef NODO_SPARES_H
#define NODO_SPARES_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/tenant.h"

#define SPARES_PREFIX NAME_TMP_PREFIX "s" /* "_nodo_s<16 hex>" */

struct spares;

/*
 * Starts the thread that keeps t->s->spare_tenants spares (0: it removes
 * those left by an earlier run, then idles). t must outlive it. NULL when
 * the thread cannot start (logged). Only one at a time per process.
 */
struct spares *spares_start(const struct tenant_ctx *t);

/* Stops the thread (cancelling a clone in flight) and frees sp; NULL ok. */
void spares_stop(struct spares *sp);

/* Fresh spares ready now (as last checked); 0 without a running thread. */
int spares_ready(void);

/* Spares claimed by creates since the start. */
unsigned long spares_claimed(void);

/*
 * Creates call these around their work: begin cancels a spare's clone in
 * flight (PQcancel: no wait) and holds the thread off; end lets it go on
 * once creates have stopped for a moment.
 */
void spares_create_begin(void);
void spares_create_end(void);

/*
 * In a create's clone step, on c (a maintenance connection), for a create
 * from templ: when templ is DEFAULT_TEMPLATE_DB, a fresh spare is ready
 * and the template's identity still matches it, renames it to tmp, allows
 * connections and sets comment, in one transaction, then renames its
 * folder to fs_tmp. Returns 1 when tmp is now that clone (folder at fs_tmp
 * when the template has one), 0 when no spare was used (clone as usual;
 * nothing changed). Never waits for the background thread.
 */
int spares_claim(PGconn *c, const struct settings *s, const char *templ,
    const char *tmp, const char *comment, const char *fs_tmp);

#endif
