/*
 * restore.h - a tenant made from a backup zip (CONTRACT section 10,
 * ODOO.md "Backups and restores"): ours, Odoo's database manager's, an
 * odoo.sh download. The zip is hostile input: it is checked whole before
 * anything is made, its dump is scanned statement by statement and run by
 * psql under \restrict, and a failure at any step leaves nothing.
 *
 * The steps (each undone by the ones after it failing; a crash leaves
 * internal names only, which tenant_cleanup() removes):
 *   1. read the archive's directory: members, types, sizes, manifest;
 *      compare the Odoo version; check the free space;
 *   2. CREATE DATABASE _nodo_<hex> (template0, C collation), comment
 *      "nodo:op=create;target=S;domain=D";
 *   3. extract dump.sql (scanned, filtered) to an unlinked file and
 *      filestore/ to filestore/_nodo_<hex> (fsynced);
 *   4. psql --single-transaction -v ON_ERROR_STOP=1 under \restrict;
 *   5. configure: web.base.url (frozen), a new identity for a copy,
 *      neutralization when asked;
 *   6. rename the folder, then publish as a create does;
 *   7. DNS (dns=takeover: our record of another node is taken over).
 */
#ifndef NODO_RESTORE_H
#define NODO_RESTORE_H

#include <stddef.h>

#include "nodo/backup.h"
#include "nodo/cloudflare.h"
#include "nodo/tenant.h"

#define RESTORE_RATIO_MAX 200 /* uncompressed : compressed, per member */
#define RESTORE_EXPAND_MAX                                                     \
	10 /* x RESTORE_MAX_BYTES: all members, uncompressed */
#define RESTORE_MEMBERS_MAX  1000000 /* members of one archive */
#define RESTORE_DEPTH_MAX    16      /* folders of a filestore path */
#define RESTORE_DISK_MARGIN  (64LL * 1024 * 1024) /* bytes left free, at least */
#define RESTORE_APPNAME      "nodo-restore"       /* psql's application_name */
#define RESTORE_SQL_FILE_MAX (4 * 1024 * 1024) /* bytes of a neutralize.sql */

enum restore_err {
	RESTORE_OK,
	RESTORE_TENANT,       /* see restore_result.e (validation, 409, 503) */
	RESTORE_INVALID,      /* 400 invalid_backup */
	RESTORE_INCOMPATIBLE, /* 422 incompatible_backup */
	RESTORE_NO_SPACE,     /* 507 insufficient_storage */
	RESTORE_NO_ADDONS,    /* 422 neutralize_unavailable: no addons_path */
};

/* "invalid_backup", ...; for RESTORE_TENANT the tenant's code. */
const char *restore_strerror(enum restore_err e, enum tenant_err te);

struct restore_request {
	const char *subdomain;
	const char *domain; /* NULL: ODOO_DOMAIN */
	int copy;           /* mode=copy: new uuid and secret */
	int neutralize;
	int takeover; /* dns=takeover */
	int fd;       /* the zip, spooled to an unlinked file */
};

struct restore_result {
	struct tenant_result r;   /* detail, dns */
	enum tenant_err e;        /* for RESTORE_TENANT */
	struct backup_manifest m; /* db_name, version: "" when unknown */
	char domain[256];         /* the tenant's domain, as stored */
};

/*
 * Restores req->fd under req->subdomain. RESTORE_OK with out->dns filled,
 * or an error with out->r.detail naming what was found and where; nothing
 * is left behind on any error. Thread-safe; takes minutes for big ones.
 */
enum restore_err restore_run(const struct tenant_ctx *t, struct cf_client *cf,
    const struct restore_request *req, struct restore_result *out);

/*
 * An unlinked read-write file in dir (O_TMPFILE, else a name removed at
 * once): the fd, or -1 with errno. For spooled bodies and the dump.
 */
int restore_tmpfile(const char *dir);

/*
 * The dump scanner, exposed for unit tests and the fuzzer: feeds len
 * bytes of dump.sql; bytes to run are written to out (fd, -1: none).
 * restore_scan_new() returns NULL on ENOMEM; restore_scan_feed() and
 * restore_scan_end() return 0, or -1 with restore_scan_error() naming the
 * refused statement and its line.
 */
struct restore_scan;
struct restore_scan *restore_scan_new(int out);
int restore_scan_feed(struct restore_scan *sc, const char *buf, size_t len);
int restore_scan_end(struct restore_scan *sc);
const char *restore_scan_error(const struct restore_scan *sc);
void restore_scan_free(struct restore_scan *sc);

#endif
