/*
 * tenant.h - tenant operations: list, create, delete, and the clean-up of
 * creations a crash interrupted (CONTRACT section 3, ODOO.md).
 *
 * A creation clones the template under an internal name (NAME_TMP_PREFIX),
 * configures it, copies the filestore to an internal folder, renames the
 * folder and then, in one transaction, renames the database into place and
 * records its domain (as the database's comment). Until that commit nothing
 * is visible; tenant_cleanup() removes what an interrupted one left.
 * All functions are thread-safe.
 */
#ifndef NODO_TENANT_H
#define NODO_TENANT_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/cloudflare.h"
#include "nodo/filestore.h"
#include "nodo/pg.h"
#include "nodo/settings.h"

#define TENANT_PASSWORD_MAX   1024 /* bytes, admin_password */
#define TENANT_BUSY_RETRIES   5    /* CREATE DATABASE tries on SQLSTATE 55006 */
#define TENANT_COMMENT_PREFIX "nodo:"

enum tenant_err {
	TENANT_OK,
	TENANT_INVALID_SUBDOMAIN,
	TENANT_RESERVED,
	TENANT_UNKNOWN_DOMAIN,
	TENANT_INVALID_PASSWORD,
	TENANT_TEMPLATE_NOT_FOUND,
	TENANT_EXISTS,
	TENANT_NOT_FOUND,
	TENANT_DB_UNAVAILABLE,
	TENANT_INTERNAL,
	TENANT_TEMPLATE_NOT_ALLOWED, /* a database, but not on TEMPLATE_DBS */
	TENANT_FILESTORE_MISSING,    /* files in the template, no folder */
	TENANT_TRASH_NOT_FOUND,      /* no trash entry of that id */
};

/* A stable machine code: "invalid_subdomain", "tenant_exists", ... */
const char *tenant_strerror(enum tenant_err e);

struct tenant_ctx {
	const struct settings *s;
	struct pg_pool *pool;
	/* The settings a reload swaps (API); NULL: s is all there is. */
	struct settings_live *live;
};

struct tenant {
	char name[64];
	char domain[256];
	int suspended; /* the comment carries the suspend mark (suspend.h) */
};

/* DNS outcome of a create or delete, for the reply. */
struct tenant_dns {
	enum cf_status status;
	char record_id[64];
	char name[320]; /* <sub>.<domain> */
	char detail[512];
};

struct tenant_result {
	char detail[512];  /* error sentence naming the field or the problem */
	char warning[512]; /* e.g. the template had no filestore */
	struct fs_report fs; /* the filestore copy: what it skipped */
	struct tenant_dns dns;
};

/*
 * Lists the tenants (one query) sorted by name; domain may be NULL (all).
 * *out is malloc'ed (caller frees). Returns TENANT_OK or
 * TENANT_DB_UNAVAILABLE / TENANT_INTERNAL with res->detail.
 */
enum tenant_err tenant_list(const struct tenant_ctx *t, PGconn *c,
    const char *domain, struct tenant **out, size_t *n,
    struct tenant_result *res);

/* The same rule as a query, for the watcher: the SQL of tenant_list. */
extern const char *const tenant_list_sql;

/*
 * The database comment records what the node knows of a tenant:
 * "nodo:domain=D;template=T[;key=value...]" (template since the detail
 * route; older tenants have domain only).
 */
/* Parses "nodo:domain=sajet.us[;...]"; copies the domain or "" into out. */
void tenant_comment_domain(const char *comment, char *out, size_t outlen);

/* The value of key in such a comment, or "" (also when it does not fit). */
void tenant_comment_value(const char *comment, const char *key, char *out,
    size_t outlen);

/* Sets the admin's (xmlid base.user_admin) hash: $1 is the hash. */
extern const char tenant_admin_password_sql[];

struct tenant_request {
	const char *subdomain;
	const char *password;
	size_t password_len;
	const char *domain;   /* NULL: ODOO_DOMAIN */
	const char *template; /* NULL: DEFAULT_TEMPLATE_DB */
};

/*
 * Validates and creates a tenant, then its DNS record (cf may be NULL when
 * DNS is disabled). Nothing is left behind on any error.
 */
enum tenant_err tenant_create(const struct tenant_ctx *t, struct cf_client *cf,
    const struct tenant_request *req, struct tenant_result *res,
    struct tenant *out);

/*
 * Removes what interrupted creations left (databases and folders), and
 * finishes or rolls back interrupted trash operations and purges expired
 * entries (trash.h); leaves spares alone. -1 (skipped) while an operation
 * runs or PostgreSQL is away. In op.c.
 */
int tenant_cleanup(const struct tenant_ctx *t);

/*
 * 1 when the database c is connected to has file-backed attachments
 * (ir_attachment.store_fname set: Odoo keeps their bytes in the
 * filestore), 0 when it has none or no ir_attachment table, -1 on error
 * (with err). One short query; thread-safe.
 */
int tenant_db_has_files(PGconn *c, char *err, size_t errlen);

/*
 * 0 when path is a directory this process can read and enter, else -1
 * with errno (ENOTDIR for anything else). Follows a symbolic link.
 */
int tenant_folder_readable(const char *path);
/* The admin_password rules of a create: 1 to 1024 bytes, no NUL. */
enum tenant_err tenant_validate_password(const char *pw, size_t len,
    struct tenant_result *res);

/* What GET /api/tenants/{subdomain} reports (CONTRACT section 10). */
struct tenant_detail {
	char name[64];
	char domain[256];
	int suspended;            /* suspended by the node (suspend.h) */
	char created_at[32];      /* RFC 3339 UTC, "" when unknown */
	char template_db[64];     /* "" when unknown */
	long long database_bytes; /* pg_database_size */
	unsigned long long filestore_bytes; /* regular files, no links */
	unsigned long long filestore_files;
	long long users; /* active, share = false; -1 when unknown */
};

/*
 * Finds the tenant name on c (a maintenance connection): 0 with d->name,
 * domain, template_db and suspended filled; TENANT_INVALID_SUBDOMAIN for a
 * bad name, TENANT_NOT_FOUND when it is no tenant (absent, a template, a
 * system or internal database, another role's, closed to connections and
 * not suspended by the node), TENANT_DB_UNAVAILABLE / TENANT_INTERNAL.
 */
enum tenant_err tenant_find(const struct tenant_ctx *t, PGconn *c,
    const char *name, struct tenant_detail *d, struct tenant_result *res);

/* tenant_find, then the sizes, the file count, the users, created_at. */
enum tenant_err tenant_get_detail(const struct tenant_ctx *t, const char *name,
    struct tenant_detail *d, struct tenant_result *res);

/*
 * Replaces the admin's password as a create sets it (odoo_hash.h, the same
 * validation); the hash is wiped after use. The caller wipes pw.
 */
enum tenant_err tenant_set_password(const struct tenant_ctx *t,
    const char *name, const char *pw, size_t len, struct tenant_result *res);

/*
 * The rules a tenant's name and domain follow (name, reserved names,
 * templates, a domain of the node): a create's and a restore's.
 */
enum tenant_err tenant_validate_target(const struct tenant_ctx *t,
    const char *subdomain, const char *domain, struct tenant_result *res);

/* Validation alone (also used before any database work). */
enum tenant_err tenant_validate(const struct tenant_ctx *t,
    const struct tenant_request *req, struct tenant_result *res);

#endif
