/*
 * trash.h - deleting a tenant to the trash, restoring it, purging it
 * (CONTRACT section 9), and the clean-up of those operations when a crash
 * interrupted them.
 *
 * A trashed tenant is its own database renamed to TRASH_PREFIX + id,
 * closed to connections, with the record
 *   "nodo:op=trash;name=N;domain=D;template=T;deleted_at=E;expires_at=E;fs=1"
 * as its comment (fs=1: it had a filestore folder, now filestore/<its
 * internal name>; purge=1: being purged; restore=M: being restored as M).
 * The id is 16 lower-case hex digits. All functions are thread-safe.
 */
#ifndef NODO_TRASH_H
#define NODO_TRASH_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/cloudflare.h"
#include "nodo/names.h"
#include "nodo/tenant.h"

#define TRASH_PREFIX NAME_TMP_PREFIX "t"
#define TRASH_ID_HEX 16

struct trash_entry {
	char id[TRASH_ID_HEX + 1];
	char name[NAME_MAX_LEN + 1]; /* the subdomain it had */
	char domain[256];
	char template_db[NAME_MAX_LEN + 1]; /* "" when unknown */
	long long deleted_at, expires_at;   /* seconds since the epoch */
	long long database_bytes;           /* -1 when unknown */
	unsigned long long filestore_bytes;
};

/*
 * DELETE /api/tenant: with TRASH_RETENTION_DAYS > 0 and !purge the tenant
 * goes to the trash (*te filled); otherwise it is deleted for good
 * (te->id ""). Then our DNS record is deleted (res->dns).
 */
enum tenant_err tenant_delete(const struct tenant_ctx *t, struct cf_client *cf,
    const char *subdomain, int purge, struct tenant_result *res,
    struct trash_entry *te);

/* The entries, newest first; *out malloc'ed (caller frees). */
enum tenant_err trash_list(const struct tenant_ctx *t, struct trash_entry **out,
    size_t *n, struct tenant_result *res);

/*
 * Brings entry id back as subdomain/domain (NULL: its own) and creates its
 * DNS record; out is the tenant. TENANT_TRASH_NOT_FOUND, TENANT_EXISTS and
 * the create's validation errors otherwise, with nothing changed.
 */
enum tenant_err trash_restore(const struct tenant_ctx *t, struct cf_client *cf,
    const char *id, const char *subdomain, const char *domain,
    struct tenant_result *res, struct tenant *out, struct trash_entry *te);

/* Deletes entry id for good. */
enum tenant_err trash_purge(const struct tenant_ctx *t, const char *id,
    struct tenant_result *res);

/* The number of entries (not being purged), or -1 on error. */
long trash_count(PGconn *c);

/*
 * For tenant_cleanup() (which holds every operation off): finishes or
 * rolls back what a crash left of the trash operation on the internal
 * database db (comment com, datallowconn allowconn), and purges it when
 * it has expired. c is a maintenance connection.
 */
void trash_cleanup_one(const struct tenant_ctx *t, PGconn *c, const char *db,
    const char *com, int allowconn);

/* 1 when an internal database with comment com is kept by clean-up. */
int trash_kept(const char *com);

#endif
