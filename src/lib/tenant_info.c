/*
 * tenant_info.c - one tenant's detail and its admin password reset
 * (CONTRACT section 10).
 *
 * The detail joins what PostgreSQL knows (the database's comment, its
 * size, whether it allows connections) with what the tenant's own tables
 * say (database.create_date, the internal users) and a walk of its
 * filestore that never follows a link. A database is a tenant by the rule
 * of tenant_list(); a database the node suspended (its comment carrying
 * the mark of suspend.h) is one too, whose users and created_at are those
 * the mark recorded at suspend time (nobody can connect to count them).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "nodo/filestore.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/odoo_hash.h"
#include "nodo/suspend.h"
#include "nodo/tenant.h"
#include "nodo/tenant_steps.h"
#include "nodo/util.h"

static enum tenant_err info_fail(struct tenant_result *res, enum tenant_err e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum tenant_err
info_fail(struct tenant_result *res, enum tenant_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	return e;
}

static enum tenant_err
info_db_fail(struct tenant_result *res, PGconn *c, const char *what,
    const char *msg)
{
	if (pg_conn_lost(c))
		return info_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable (%s): %s", what, msg);
	return info_fail(res, TENANT_INTERNAL, "database: %s failed: %s", what,
	    msg);
}

static int
is_template_name(const struct settings *s, const char *name)
{
	return (s->default_template != NULL &&
	           strcmp(name, s->default_template) == 0) ||
	    (s->odoo_db_template != NULL &&
	        strcmp(name, s->odoo_db_template) == 0);
}

enum tenant_err
tenant_find(const struct tenant_ctx *t, PGconn *c, const char *name,
    struct tenant_detail *d, struct tenant_result *res)
{
	static const char sql[] =
	    "SELECT d.datistemplate, d.datallowconn,"
	    " d.datdba = (SELECT oid FROM pg_roles WHERE rolname ="
	    " current_user),"
	    " coalesce(shobj_description(d.oid, 'pg_database'), '')"
	    " FROM pg_database d WHERE d.datname = $1";
	const char *p[1] = { name };
	char users[24];
	PGresult *r;
	int allow, marked;

	memset(d, 0, sizeof(*d));
	d->users = -1;
	if (name == NULL || name_valid(name) != 0)
		return info_fail(res, TENANT_INVALID_SUBDOMAIN,
		    "subdomain: must be 2 to 63 characters of a-z, 0-9, '-' "
		    "and '_', starting and ending with a letter or digit");
	if (name_check(name, t->s->default_template) != NAME_OK ||
	    is_template_name(t->s, name))
		return info_fail(res, TENANT_NOT_FOUND,
		    "subdomain: '%s' is a reserved or template database, "
		    "not a tenant",
		    name);
	r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum tenant_err e = info_db_fail(res, c,
		    "looking up the tenant", PQresultErrorMessage(r));

		PQclear(r);
		return e;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return info_fail(res, TENANT_NOT_FOUND,
		    "subdomain: no tenant named '%s'", name);
	}
	allow = PQgetvalue(r, 0, 1)[0] == 't';
	marked = suspend_marked(PQgetvalue(r, 0, 3));
	if (PQgetvalue(r, 0, 0)[0] == 't' || PQgetvalue(r, 0, 2)[0] != 't' ||
	    strncmp(name, NAME_TMP_PREFIX, strlen(NAME_TMP_PREFIX)) == 0 ||
	    (!allow && !marked)) {
		PQclear(r);
		return info_fail(res, TENANT_NOT_FOUND,
		    "subdomain: database '%s' is not a tenant of this node "
		    "(a template, another role's, or closed to connections)",
		    name);
	}
	nodo_strlcpy(d->name, name, sizeof(d->name));
	/* The mark is the truth (suspend.h); what it recorded is kept. */
	d->suspended = marked;
	if (marked) {
		tenant_comment_value(PQgetvalue(r, 0, 3), "users", users,
		    sizeof(users));
		if (users[0] != '\0' &&
		    strspn(users, "0123456789") == strlen(users))
			d->users = strtoll(users, NULL, 10);
		tenant_comment_value(PQgetvalue(r, 0, 3), "created_at",
		    d->created_at, sizeof(d->created_at));
		if (strspn(d->created_at, "0123456789-T:Z") !=
		    strlen(d->created_at))
			d->created_at[0] = '\0';
	}
	tenant_comment_domain(PQgetvalue(r, 0, 3), d->domain,
	    sizeof(d->domain));
	if (d->domain[0] == '\0')
		nodo_strlcpy(d->domain, t->s->odoo_domain, sizeof(d->domain));
	tenant_comment_value(PQgetvalue(r, 0, 3), "template", d->template_db,
	    sizeof(d->template_db));
	if (d->template_db[0] != '\0' &&
	    template_name_valid(d->template_db) != 0)
		d->template_db[0] = '\0';
	PQclear(r);
	return TENANT_OK;
}

/* "2024-01-01 00:00:00" (Odoo's UTC text) -> "2024-01-01T00:00:00Z". */
static void
rfc3339(const char *v, char *out, size_t len)
{
	static const char shape[] = "dddd-dd-dd dd:dd:dd";
	size_t i;

	out[0] = '\0';
	if (v == NULL || strlen(v) < sizeof(shape) - 1 || len < 21)
		return;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd' ? (v[i] < '0' || v[i] > '9')
		                    : v[i] != shape[i])
			return;
	}
	/* Odoo may keep fractions of a second: they are dropped. */
	if (v[i] != '\0' && v[i] != '.')
		return;
	snprintf(out, len, "%.10sT%.8sZ", v, v + 11);
}

/* What the tenant's own database says: created_at and users. */
enum tenant_err
tenant_inside(const struct tenant_ctx *t, struct tenant_detail *d,
    struct tenant_result *res)
{
	static const char sql[] =
	    "SELECT (SELECT value FROM ir_config_parameter"
	    " WHERE key = 'database.create_date'),"
	    " (SELECT count(*) FROM res_users"
	    " WHERE active AND NOT coalesce(share, false))";
	char err[512];
	PGconn *c;
	PGresult *r;

	if ((c = pg_connect(t->s, d->name, err, sizeof(err))) == NULL)
		return info_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: cannot connect to '%s': %s", d->name, err);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		/* Not an Odoo database (a table is missing): say unknown. */
		log_msg(LOG_WARNING, d->name, "tenant detail: %s",
		    PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		return TENANT_OK;
	}
	if (!PQgetisnull(r, 0, 0))
		rfc3339(PQgetvalue(r, 0, 0), d->created_at,
		    sizeof(d->created_at));
	d->users = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return TENANT_OK;
}

enum tenant_err
tenant_get_detail(const struct tenant_ctx *t, const char *name,
    struct tenant_detail *d, struct tenant_result *res)
{
	const char *p[1] = { name };
	char err[256], dir[4096];
	enum tenant_err e;
	PGresult *r;
	PGconn *c;

	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL)
		return info_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
	if ((e = tenant_find(t, c, name, d, res)) != TENANT_OK) {
		pg_pool_put(t->pool, c);
		return e;
	}
	r = PQexecParams(c, "SELECT pg_database_size($1::text)", 1, NULL, p,
	    NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = info_db_fail(res, c, "pg_database_size",
		    PQresultErrorMessage(r));
		PQclear(r);
		pg_pool_put(t->pool, c);
		return e;
	}
	d->database_bytes = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	pg_pool_put(t->pool, c);

	if ((size_t)snprintf(dir, sizeof(dir), "%s/filestore/%s",
	        t->s->data_dir, name) >= sizeof(dir))
		return info_fail(res, TENANT_INTERNAL,
		    "filestore: path too long");
	if (fs_usage(dir, &d->filestore_bytes, &d->filestore_files, err,
	        sizeof(err)) != 0)
		return info_fail(res, TENANT_INTERNAL, "filestore: %s", err);
	/* A suspended tenant refuses connections: its inside is unknown. */
	if (d->suspended)
		return TENANT_OK;
	return tenant_inside(t, d, res);
}

enum tenant_err
tenant_set_password(const struct tenant_ctx *t, const char *name,
    const char *pw, size_t len, struct tenant_result *res)
{
	struct tenant_detail d;
	char err[512], hash[ODOO_HASH_MAX];
	const char *p[1] = { hash };
	enum tenant_err e;
	PGresult *r;
	PGconn *c;

	if ((e = tenant_validate_password(pw, len, res)) != TENANT_OK)
		return e;
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL)
		return info_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
	e = tenant_find(t, c, name, &d, res);
	pg_pool_put(t->pool, c);
	if (e != TENANT_OK)
		return e;
	if (d.suspended)
		return info_fail(res, TENANT_NOT_FOUND,
		    "subdomain: '%s' is suspended; resume it first", name);
	if (odoo_hash_password(pw, len, ODOO_HASH_ROUNDS, NULL, hash,
	        sizeof(hash)) != 0)
		return info_fail(res, TENANT_INTERNAL,
		    "admin_password: hashing failed");
	if ((c = pg_connect(t->s, name, err, sizeof(err))) == NULL) {
		OPENSSL_cleanse(hash, sizeof(hash));
		return info_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: cannot connect to '%s': %s", name, err);
	}
	r = PQexecParams(c, tenant_admin_password_sql, 1, NULL, p, NULL, NULL,
	    0);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		e = info_db_fail(res, c, "setting the admin password",
		    PQresultErrorMessage(r));
	else if (strcmp(PQcmdTuples(r), "1") != 0)
		e = info_fail(res, TENANT_INTERNAL,
		    "subdomain: '%s' has no admin user (xmlid "
		    "base.user_admin in res_users)",
		    name);
	PQclear(r);
	PQfinish(c);
	if (e == TENANT_OK)
		log_msg(LOG_NOTICE, name, "admin password of %s replaced",
		    name);
	return e;
}
