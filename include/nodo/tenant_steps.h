/*
 * tenant_steps.h - helpers of tenant.c that the lifecycle modules (spares,
 * trash, restore) share rather than copy (notes/LIFECYCLE.md). Each keeps
 * its name from tenant.c. All are thread-safe; a PGconn is used by one
 * thread at a time.
 */
#ifndef NODO_TENANT_STEPS_H
#define NODO_TENANT_STEPS_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/settings.h"

/* ndigits (even, at most 64) random hex digits into out: 0 or -1. */
int random_hex(char *out, size_t ndigits);

/* "<data_dir>/filestore/<db>" into out: 0, or -1 when it does not fit. */
int fs_path(const struct settings *s, const char *db, char *out, size_t len);

/*
 * fmt with up to two identifiers (quoted) and one literal (quoted), in
 * that order: 0, or -1 (out of memory, or it does not fit in len).
 */
int fmt_sql(PGconn *c, char *out, size_t len, const char *fmt, const char *id1,
    const char *id2, const char *lit);

/* DROP DATABASE IF EXISTS db WITH (FORCE): 0 or -1 with err. */
int drop_database(PGconn *c, const char *db, char *err, size_t errlen);

/*
 * The create lock, held shared by every creation (and by a spare being
 * made) and exclusively by tenant_cleanup(), which skips its turn rather
 * than wait: internal names in use are never taken for leftovers.
 */
void tenant_create_lock_shared(void);
void tenant_create_unlock(void);

#endif
