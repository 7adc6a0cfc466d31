/*
 * backup.h - a tenant's backup in Odoo's own zip format (CONTRACT section
 * 10, ODOO.md "Backups and restores"), made while it is read.
 *
 * backup_start() checks the tenant, opens a REPEATABLE READ transaction in
 * its database, exports its snapshot and reads the manifest in it; then a
 * producer thread writes the zip (libarchive: deflate, ZIP64 when needed)
 * into a bounded ring: manifest.json, filestore/... (files only, in path
 * order, never following a link), dump.sql last (pg_dump --no-owner,
 * plain, on that same snapshot). The reader takes the bytes out with
 * backup_read(). Memory is the ring plus libarchive's and zlib's buffers,
 * whatever the tenant's size: a slow reader stops pg_dump through the
 * ring and the pipe.
 *
 * The pieces a restore reuses: backup_manifest_json() (and its parser
 * backup_manifest_parse()), pgtool.h (children), fs_walk_files().
 */
#ifndef NODO_BACKUP_H
#define NODO_BACKUP_H

#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "nodo/tenant.h"

#define BACKUP_MAX_RUNNING  2             /* backups at once (503 beyond) */
#define BACKUP_RING_BYTES   (1024 * 1024) /* bytes between producer and reader */
#define BACKUP_IO_BYTES     65536         /* one read of a file or the pipe */
#define BACKUP_APPNAME      "nodo-backup" /* pg_dump's application_name */
#define BACKUP_MANIFEST_MAX (1024 * 1024) /* bytes of a manifest we read */

#define BACKUP_EOF    ((ssize_t)-1) /* the zip is complete */
#define BACKUP_FAILED ((ssize_t)-2) /* it failed: the reader must abort */

struct backup;

/*
 * Optional: instead of sleeping in backup_read() the reader parks itself
 * (suspend, called with the ring's lock held, from backup_read) and the
 * producer wakes it (resume, with the lock held) when bytes or the end
 * arrive. For event-loop servers (libmicrohttpd's suspend/resume).
 */
struct backup_waker {
	void (*suspend)(void *arg);
	void (*resume)(void *arg);
	void *arg;
};

/*
 * Starts a backup of tenant name. TENANT_OK with *out (give it back with
 * backup_release), or an error with res->detail; *busy is set when
 * BACKUP_MAX_RUNNING are running already (then TENANT_INTERNAL).
 * Thread-safe.
 */
enum tenant_err backup_start(const struct tenant_ctx *t, const char *name,
    const struct backup_waker *waker, struct backup **out, int *busy,
    struct tenant_result *res);

/*
 * Copies up to max bytes of the zip into buf: returns how many, 0 when
 * none is ready after wait_ms (or, with a waker, at once after suspend),
 * BACKUP_EOF at the end, BACKUP_FAILED when the backup failed (logged).
 */
ssize_t backup_read(struct backup *b, char *buf, size_t max, int wait_ms);

/*
 * The reader is done (finished or gone): a backup still running is
 * cancelled (pg_dump is ended). b is freed once the producer exits.
 */
void backup_release(struct backup *b);

/*
 * Stopping: every backup a reader holds fails now, and a parked reader is
 * woken (its waker's resume) so that nothing stays suspended.
 */
void backup_halt_all(void);

/* Backups running now. */
int backup_running(void);

/*
 * The manifest of database db, read on c (inside the backup's snapshot):
 * Odoo's keys, modules installed. Returns malloc'ed JSON text or NULL
 * with err.
 */
char *backup_manifest_json(PGconn *c, const char *db, char *err, size_t errlen);

/* What a restore needs from a manifest. */
struct backup_manifest {
	char db_name[64];
	char version[32];
	char major_version[32];
};

/* Parses manifest text (len bytes): 0, or -1 with err. */
int backup_manifest_parse(const char *text, size_t len,
    struct backup_manifest *m, char *err, size_t errlen);

#endif
