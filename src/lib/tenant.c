/*
 * tenant.c - list and create tenants the way Odoo duplicates databases
 * (ODOO.md), but never half-done. Deletes are trash.c's, the clean-up and
 * the busy-name table op.c's, Odoo's parameters odoo.c's.
 *
 * A creation works on an internal name (NAME_TMP_PREFIX + random hex),
 * which is never listed and never reachable through Odoo's dbfilter:
 *
 *   1. end other sessions on the template, CREATE DATABASE tmp TEMPLATE t
 *      (the admin password hash is computed meanwhile on another thread);
 *   2. COMMENT ON DATABASE tmp 'nodo:domain=D;creating=NAME' (for clean-up);
 *      then, asked of the clone: file-backed attachments need the
 *      template's folder (else filestore_missing, and nothing is left);
 *   3. in tmp, in one transaction: Odoo's ir_config_parameter init(force)
 *      keys, web.base.url (frozen) and the admin password;
 *   4. copy filestore/t to filestore/tmp (files and folders fsynced),
 *      rename it to filestore/NAME, fsync filestore/;
 *   5. in one transaction: ALTER DATABASE tmp RENAME TO NAME and
 *      COMMENT ON DATABASE NAME 'nodo:domain=D'. The tenant now exists.
 *   6. the DNS record (a failure there never undoes the tenant).
 *
 * A crash before 5 leaves only internal names, which tenant_cleanup() (op.c)
 * removes at start; a crash after 5 leaves a complete tenant. A crash also
 * leaves backends working on internal names (a CREATE DATABASE commits
 * after its client died): the clean-up ends them before it looks. When the
 * connection is lost during 5 the outcome is unknown: the folder stays
 * where it is unless a new connection shows the rename did not happen.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "nodo/filestore.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/odoo.h"
#include "nodo/odoo_hash.h"
#include "nodo/spares.h"
#include "nodo/suspend.h"
#include "nodo/tenant.h"
#include "nodo/tenant_steps.h"
#include "nodo/trash.h"
#include "nodo/util.h"

#define TENANT_RENAME_TRIES 250 /* x 20 ms: our own backend leaving tmp */
#define TENANT_TMP_HEX      16  /* random hex digits of an internal name */
#define TENANT_HASH_NICE    10  /* nice of the password-hash thread */
/* Bytes of the text[] of names never listed: every one quoted, escaped. */
#define TENANT_EXCL_MAX                                                        \
	((SETTINGS_MAX_TEMPLATES + 2) * (2 * NAME_MAX_LEN + 3) + 3)

const char *const tenant_list_sql =
    "SELECT d.datname, coalesce(shobj_description(d.oid, 'pg_database'), '')"
    " FROM pg_database d"
    " WHERE d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    " AND NOT d.datistemplate AND (d.datallowconn OR"
    " coalesce(shobj_description(d.oid, 'pg_database'), '') ~ " SUSPEND_MARK_RE
    ")"
    " AND d.datname NOT IN ('postgres', 'template0', 'template1')"
    " AND d.datname <> ALL ($1::text[])"
    " AND left(d.datname, 6) <> '" NAME_TMP_PREFIX "'"
    " ORDER BY d.datname COLLATE \"C\"";

static const char *const err_codes[] = {
	[TENANT_OK] = "ok",
	[TENANT_INVALID_SUBDOMAIN] = "invalid_subdomain",
	[TENANT_RESERVED] = "reserved_name",
	[TENANT_UNKNOWN_DOMAIN] = "unknown_domain",
	[TENANT_INVALID_PASSWORD] = "invalid_password",
	[TENANT_TEMPLATE_NOT_FOUND] = "template_not_found",
	[TENANT_EXISTS] = "tenant_exists",
	[TENANT_NOT_FOUND] = "tenant_not_found",
	[TENANT_DB_UNAVAILABLE] = "database_unavailable",
	[TENANT_INTERNAL] = "internal_error",
	[TENANT_TEMPLATE_NOT_ALLOWED] = "template_not_allowed",
	[TENANT_FILESTORE_MISSING] = "filestore_missing",
	[TENANT_TRASH_NOT_FOUND] = "trash_not_found",
};

const char *
tenant_strerror(enum tenant_err e)
{
	if ((size_t)e >= sizeof(err_codes) / sizeof(err_codes[0]))
		return "internal_error";
	return err_codes[e];
}

enum tenant_err
tenant_fail(struct tenant_result *res, enum tenant_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	return e;
}

/* A database error: unreachable server or something else. */
enum tenant_err
tenant_db_fail(struct tenant_result *res, PGconn *c, const char *what,
    const char *msg)
{
	if (pg_conn_lost(c))
		return tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable (%s): %s", what, msg);
	if (pg_timed_out()) /* statement_timeout, lock_timeout: try later */
		return tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL did not finish in time (%s): %s",
		    what, msg);
	return tenant_fail(res, TENANT_INTERNAL, "database: %s failed: %s",
	    what, msg);
}

void
tenant_comment_value(const char *comment, const char *key, char *out,
    size_t outlen)
{
	size_t klen = strlen(key);
	const char *p, *e;
	size_t n;

	out[0] = '\0';
	if (comment == NULL ||
	    strncmp(comment, TENANT_COMMENT_PREFIX,
	        strlen(TENANT_COMMENT_PREFIX)) != 0)
		return;
	p = comment + strlen(TENANT_COMMENT_PREFIX);
	while (*p != '\0') {
		e = strchr(p, ';');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			if (n - klen - 1 < outlen) {
				memcpy(out, p + klen + 1, n - klen - 1);
				out[n - klen - 1] = '\0';
			}
			return;
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
}

/* DEFAULT_TEMPLATE_DB or a TEMPLATE_DBS entry: 1, else 0. */
int
template_listed(const struct settings *s, const char *name)
{
	size_t i;

	if (s->default_template != NULL &&
	    strcmp(name, s->default_template) == 0)
		return 1;
	for (i = 0; i < s->ntemplate_dbs; i++)
		if (strcmp(name, s->template_dbs[i]) == 0)
			return 1;
	return 0;
}

/* Appends one quoted element to a text[] literal being built in buf. */
static void
array_add(char *buf, size_t len, size_t *o, const char *p)
{
	if (p == NULL || *p == '\0')
		return;
	if (*o > 1 && *o + 1 < len)
		buf[(*o)++] = ',';
	if (*o + 1 < len)
		buf[(*o)++] = '"';
	for (; *p != '\0' && *o + 4 < len; p++) {
		if (*p == '"' || *p == '\\')
			buf[(*o)++] = '\\';
		buf[(*o)++] = *p;
	}
	if (*o + 1 < len)
		buf[(*o)++] = '"';
}

void
tenant_comment_domain(const char *comment, char *out, size_t outlen)
{
	tenant_comment_value(comment, "domain", out, outlen);
	if (out[0] != '\0' && domain_valid(out) != 0)
		out[0] = '\0';
}

/*
 * A text[] literal {"a","b"} of the names that are never tenants: the
 * templates (DEFAULT_TEMPLATE_DB, TEMPLATE_DBS) and Odoo's db_template.
 */
static void
excluded_names(const struct settings *s, char *buf, size_t len)
{
	size_t o = 0, i;

	buf[o++] = '{';
	array_add(buf, len, &o, s->default_template);
	array_add(buf, len, &o, s->odoo_db_template);
	for (i = 0; i < s->ntemplate_dbs; i++)
		array_add(buf, len, &o, s->template_dbs[i]);
	if (o + 1 < len)
		buf[o++] = '}';
	buf[o] = '\0';
}

enum tenant_err
tenant_list(const struct tenant_ctx *t, PGconn *c, const char *domain,
    struct tenant **out, size_t *n, struct tenant_result *res)
{
	char excl[TENANT_EXCL_MAX];
	const char *params[1] = { excl };
	PGresult *r;
	struct tenant *v;
	int i, rows;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	excluded_names(t->s, excl, sizeof(excl));
	r = pg_query(c, tenant_list_sql, 1, params);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum tenant_err e = tenant_db_fail(res, c, "listing databases",
		    pg_result_error(c, r));

		PQclear(r);
		return e;
	}
	rows = PQntuples(r);
	if ((v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v))) == NULL) {
		PQclear(r);
		return tenant_fail(res, TENANT_INTERNAL, "out of memory");
	}
	for (i = 0; i < rows; i++) {
		const char *name = PQgetvalue(r, i, 0);
		struct tenant *tn = &v[k];

		/* A database made by hand under a name no host can reach. */
		if (name_valid(name) != 0)
			continue;
		snprintf(tn->name, sizeof(tn->name), "%s", name);
		tenant_comment_domain(PQgetvalue(r, i, 1), tn->domain,
		    sizeof(tn->domain));
		if (tn->domain[0] == '\0')
			snprintf(tn->domain, sizeof(tn->domain), "%s",
			    t->s->odoo_domain);
		if (domain != NULL && strcmp(domain, tn->domain) != 0)
			continue;
		tn->suspended = suspend_marked(PQgetvalue(r, i, 1));
		k++;
	}
	PQclear(r);
	*out = v;
	*n = k;
	return TENANT_OK;
}

enum tenant_err
tenant_validate_password(const char *pw, size_t len, struct tenant_result *res)
{
	if (pw == NULL || len == 0 || len > TENANT_PASSWORD_MAX)
		return tenant_fail(res, TENANT_INVALID_PASSWORD,
		    "admin_password: must be 1 to %d bytes",
		    TENANT_PASSWORD_MAX);
	if (memchr(pw, '\0', len) != NULL)
		return tenant_fail(res, TENANT_INVALID_PASSWORD,
		    "admin_password: must not contain NUL characters");
	return TENANT_OK;
}

enum tenant_err
tenant_validate_target(const struct tenant_ctx *t, const char *subdomain,
    const char *domain, struct tenant_result *res)
{
	switch (name_check(subdomain, t->s->default_template)) {
	case NAME_OK:
		break;
	case NAME_INVALID:
		return tenant_fail(res, TENANT_INVALID_SUBDOMAIN,
		    "subdomain: must be 2 to 63 characters of a-z, 0-9, '-' "
		    "and '_', starting and ending with a letter or digit");
	case NAME_RESERVED:
		return tenant_fail(res, TENANT_RESERVED,
		    "subdomain: '%s' is reserved", subdomain);
	}
	if (template_listed(t->s, subdomain) ||
	    (t->s->odoo_db_template &&
	        strcmp(subdomain, t->s->odoo_db_template) == 0))
		return tenant_fail(res, TENANT_RESERVED,
		    "subdomain: '%s' is a template database", subdomain);
	if (settings_zone(t->s, domain) == NULL)
		return tenant_fail(res, TENANT_UNKNOWN_DOMAIN,
		    "domain: '%.253s' is not a domain of this node "
		    "(see GET /api/domains)",
		    domain);
	return TENANT_OK;
}

enum tenant_err
tenant_validate(const struct tenant_ctx *t, const struct tenant_request *req,
    struct tenant_result *res)
{
	const char *templ =
	    req->template != NULL ? req->template : t->s->default_template;
	const char *domain =
	    req->domain != NULL ? req->domain : t->s->odoo_domain;
	enum tenant_err e;

	/* The order of the checks is the order of the replies (tests). */
	switch (name_check(req->subdomain, t->s->default_template)) {
	case NAME_OK:
		break;
	default:
		return tenant_validate_target(t, req->subdomain, domain, res);
	}
	if (strcmp(req->subdomain, templ) == 0)
		return tenant_fail(res, TENANT_RESERVED,
		    "subdomain: '%s' is a template database", req->subdomain);
	if (template_listed(t->s, req->subdomain) ||
	    (t->s->odoo_db_template &&
	        strcmp(req->subdomain, t->s->odoo_db_template) == 0))
		return tenant_validate_target(t, req->subdomain, domain, res);
	if (tenant_validate_password(req->password, req->password_len, res) !=
	    TENANT_OK)
		return TENANT_INVALID_PASSWORD;
	if ((e = tenant_validate_target(t, req->subdomain, domain, res)) !=
	    TENANT_OK)
		return e;
	if (template_name_valid(templ) != 0)
		return tenant_fail(res, TENANT_TEMPLATE_NOT_FOUND,
		    "template_db: '%.63s' is not a valid database name", templ);
	return TENANT_OK;
}

/* The admin password hash, computed while PostgreSQL clones. */
struct hash_job {
	const char *pw;
	size_t len;
	char out[ODOO_HASH_MAX];
	int rc;
};

static void *
hash_thread(void *arg)
{
	struct hash_job *j = arg;

	/*
	 * A third of a second of pure CPU: let /health, lists and
	 * PostgreSQL go first (Linux nice values are per thread). Failure
	 * (a seccomp filter without setpriority) only loses that courtesy.
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), TENANT_HASH_NICE);
	j->rc = odoo_hash_password(j->pw, j->len, ODOO_HASH_ROUNDS, NULL,
	    j->out, sizeof(j->out));
	return NULL;
}

int
random_hex(char *out, size_t ndigits)
{
	unsigned char b[32];
	size_t i;

	if (ndigits / 2 > sizeof(b) || RAND_bytes(b, (int)(ndigits / 2)) != 1)
		return -1;
	for (i = 0; i < ndigits / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

int
fs_path(const struct settings *s, const char *db, char *out, size_t len)
{
	return (size_t)snprintf(out, len, "%s/filestore/%s", s->data_dir, db) <
	        len
	    ? 0
	    : -1;
}

/* "ALTER ..." with quoted identifiers/literals; 0 or -1 (ENOMEM). */
int
fmt_sql(PGconn *c, char *out, size_t len, const char *fmt, const char *id1,
    const char *id2, const char *lit)
{
	char *q1 = NULL, *q2 = NULL, *ql = NULL;
	int n = -1;

	if ((id1 && (q1 = PQescapeIdentifier(c, id1, strlen(id1))) == NULL) ||
	    (id2 && (q2 = PQescapeIdentifier(c, id2, strlen(id2))) == NULL) ||
	    (lit && (ql = PQescapeLiteral(c, lit, strlen(lit))) == NULL))
		goto out;
		/* Only our own constant formats reach here; args are pre-quoted. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (q2 == NULL && ql == NULL)
		n = snprintf(out, len, fmt, q1);
	else if (ql == NULL)
		n = snprintf(out, len, fmt, q1, q2);
	else if (q2 == NULL)
		n = snprintf(out, len, fmt, q1, ql);
	else
		n = snprintf(out, len, fmt, q1, q2, ql);
#pragma GCC diagnostic pop
out:
	PQfreemem(q1);
	PQfreemem(q2);
	PQfreemem(ql);
	return n >= 0 && (size_t)n < len ? 0 : -1;
}

void
terminate_sessions(PGconn *c, const char *db)
{
	const char *p[1] = { db };

	/* Errors are ignored, as Odoo's _drop_conn() does. */
	pg_exec(c,
	    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = $1 AND pid <> pg_backend_pid()",
	    1, p, NULL, 0, NULL);
}

int
drop_database(PGconn *c, const char *db, char *err, size_t errlen)
{
	char sql[TENANT_SQL_MAX];

	if (fmt_sql(c, sql, sizeof(sql),
	        "DROP DATABASE IF EXISTS %s WITH (FORCE)", db, NULL, NULL) != 0)
		return -1;
	return pg_exec_long(c, sql, err, errlen, NULL);
}

/* 1 when a database of that name exists, 0 when not, -1 on error. */
int
db_exists(PGconn *c, const char *db, int *is_template)
{
	const char *p[1] = { db };
	PGresult *r;
	int rc = -1;

	r = pg_query(c,
	    "SELECT datistemplate FROM pg_database"
	    " WHERE datname = $1",
	    1, p);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		rc = PQntuples(r) > 0;
		if (is_template != NULL)
			*is_template = rc == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	}
	PQclear(r);
	return rc;
}

/*
 * The allow-list (CONTRACT 8): templ must be DEFAULT_TEMPLATE_DB, a
 * TEMPLATE_DBS entry, or, with TEMPLATE_DBS unset, a database marked
 * IS_TEMPLATE that the node's role owns (resolved here, at run time). It
 * reads pg_database alone: nothing of templ (no session, no connection, no
 * row) is touched before it says yes.
 */
static enum tenant_err
template_allowed(PGconn *c, const struct settings *s, const char *templ,
    struct tenant_result *res)
{
	const char *p[1] = { templ };
	PGresult *r;
	enum tenant_err e;

	r = pg_query(c,
	    "SELECT datistemplate AND datdba = (SELECT oid FROM pg_roles"
	    " WHERE rolname = current_user) FROM pg_database WHERE datname = "
	    "$1",
	    1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		e = tenant_db_fail(res, c, "looking up the template",
		    pg_result_error(c, r));
	else if (PQntuples(r) == 0)
		e = tenant_fail(res, TENANT_TEMPLATE_NOT_FOUND,
		    "template_db: database '%s' does not exist", templ);
	else if (template_listed(s, templ) ||
	    (s->ntemplate_dbs == 0 && PQgetvalue(r, 0, 0)[0] == 't'))
		e = TENANT_OK;
	else
		e = tenant_fail(res, TENANT_TEMPLATE_NOT_ALLOWED,
		    "template_db: database '%s' is not one of this node's "
		    "templates (TEMPLATE_DBS%s)",
		    templ,
		    s->ntemplate_dbs == 0
		        ? ": DEFAULT_TEMPLATE_DB and the IS_TEMPLATE databases "
		          "of the node's role"
		        : "");
	PQclear(r);
	return e;
}

int
tenant_folder_readable(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return access(path, R_OK | X_OK);
}

/*
 * Step 1b: does the copy need the template's files? Asked of the clone
 * right after CREATE DATABASE, not of the template: a connection to the
 * template would block other creations cloning it (55006), be ended by
 * their terminate_sessions(), and is impossible when the template is
 * ALLOW_CONNECTIONS false. The clone holds exactly the rows copied.
 * A file-backed attachment with no readable folder is filestore_missing.
 */
static enum tenant_err
check_files(const struct tenant_ctx *t, const char *tmp, const char *templ,
    const char *fs_src, int *has_files, struct tenant_result *res)
{
	char err[512];
	PGconn *c;

	if ((c = pg_connect(t->s, tmp, err, sizeof(err))) == NULL)
		return tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: cannot connect to the new database: %s", err);
	*has_files = tenant_db_has_files(c, err, sizeof(err));
	if (*has_files == -1) {
		enum tenant_err e = tenant_db_fail(res, c,
		    "looking for file-backed attachments", err);

		PQfinish(c);
		return e;
	}
	PQfinish(c);
	if (*has_files && tenant_folder_readable(fs_src) != 0)
		return tenant_fail(res, TENANT_FILESTORE_MISSING,
		    "filestore: template '%s' has file-backed attachments "
		    "(ir_attachment.store_fname) but its folder %s is missing "
		    "or unreadable (%s); restore it or set ODOO_DATA_DIR",
		    templ, fs_src, strerror(errno));
	return TENANT_OK;
}

/* Step 3: what Odoo's ir.config_parameter init(force=True) does, and more. */
static enum tenant_err
configure_clone(const struct tenant_ctx *t, const char *tmp, const char *name,
    const char *domain, struct hash_job *job, pthread_t th, int *joined,
    struct tenant_result *res)
{
	char err[512], keys[256], vals[512], secret[37], uuid[37], date[32];
	const char *p[2];
	struct tm tm;
	time_t now = time(NULL);
	PGconn *c;
	PGresult *r;
	enum tenant_err e = TENANT_OK;

	if (odoo_uuid(secret, 4) != 0 || odoo_uuid(uuid, 1) != 0)
		return tenant_fail(res, TENANT_INTERNAL,
		    "no randomness available");
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(keys, sizeof(keys),
	    "{database.secret,database.uuid,"
	    "database.create_date,web.base.url,web.base.url.freeze,"
	    "base.login_cooldown_after,base.login_cooldown_duration}");
	/* All values are made of [0-9a-z:/._ -]: no quoting needed. */
	snprintf(vals, sizeof(vals), "{%s,%s,\"%s\",https://%s.%s,True,10,60}",
	    secret, uuid, date, name, domain);

	if ((c = pg_connect(t->s, tmp, err, sizeof(err))) == NULL)
		return tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: cannot connect to the new database: %s", err);
	if (pg_exec(c, "BEGIN", 0, NULL, err, sizeof(err), NULL) != 0) {
		e = tenant_db_fail(res, c, "BEGIN", err);
		goto out;
	}
	if (odoo_set_params(c, keys, vals, err, sizeof(err)) != 0) {
		e = tenant_db_fail(res, c, "setting ir_config_parameter", err);
		goto out;
	}
	pthread_join(th, NULL);
	*joined = 1;
	if (job->rc != 0) {
		e = tenant_fail(res, TENANT_INTERNAL,
		    "admin_password: hashing failed");
		goto out;
	}
	p[0] = job->out;
	r = pg_query(c, tenant_admin_password_sql, 1, p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		e = tenant_db_fail(res, c, "setting the admin password",
		    pg_result_error(c, r));
		PQclear(r);
		goto out;
	}
	if (strcmp(PQcmdTuples(r), "1") != 0) {
		PQclear(r);
		e = tenant_fail(res, TENANT_INTERNAL,
		    "template_db: the template has "
		    "no admin user (xmlid base.user_admin in res_users)");
		goto out;
	}
	PQclear(r);
	if (pg_exec(c, "COMMIT", 0, NULL, err, sizeof(err), NULL) != 0)
		e = tenant_db_fail(res, c, "COMMIT", err);
out:
	PQfinish(c);
	return e;
}

/* Step 1: terminate sessions on the template and clone it. */
static enum tenant_err
clone_template(PGconn *c, const char *templ, const char *tmp,
    struct tenant_result *res)
{
	char sql[TENANT_SQL_MAX], err[512], state[6];
	int tries;

	if (fmt_sql(c, sql, sizeof(sql),
	        "CREATE DATABASE %s ENCODING 'unicode' TEMPLATE %s", tmp, templ,
	        NULL) != 0)
		return tenant_fail(res, TENANT_INTERNAL, "out of memory");
	for (tries = 0;; tries++) {
		terminate_sessions(c, templ);
		/* A clone may rightly take minutes: no statement_timeout. */
		if (pg_exec_long(c, sql, err, sizeof(err), state) == 0)
			return TENANT_OK;
		/* 55006: a session (Odoo's cron, a login) came back. */
		if (strcmp(state, "55006") != 0 ||
		    tries + 1 >= TENANT_BUSY_RETRIES)
			break;
		log_msg(LOG_WARNING, tmp, "template %s busy, retrying", templ);
		usleep(200 * 1000);
	}
	if (strcmp(state, "3D000") == 0)
		return tenant_fail(res, TENANT_TEMPLATE_NOT_FOUND,
		    "template_db: database '%s' does not exist", templ);
	if (strcmp(state, "55006") == 0)
		return tenant_fail(res, TENANT_INTERNAL,
		    "template_db: '%s' is being "
		    "accessed by other users; close them and retry",
		    templ);
	return tenant_db_fail(res, c, "CREATE DATABASE", err);
}

/* Step 5: one transaction makes the tenant visible. */
enum tenant_err
publish(PGconn *c, const char *tmp, const char *name, const char *domain,
    const char *templ, struct tenant_result *res)
{
	char ren[TENANT_SQL_MAX], com[TENANT_SQL_MAX], text[400];
	char err[512], state[6];
	int tries;

	snprintf(text, sizeof(text),
	    TENANT_COMMENT_PREFIX "domain=%s;template=%s", domain, templ);
	if (fmt_sql(c, ren, sizeof(ren), "ALTER DATABASE %s RENAME TO %s", tmp,
	        name, NULL) != 0 ||
	    fmt_sql(c, com, sizeof(com), "COMMENT ON DATABASE %s IS %s", name,
	        NULL, text) != 0)
		return tenant_fail(res, TENANT_INTERNAL, "out of memory");
	for (tries = 0;; tries++) {
		if (pg_exec(c, "BEGIN", 0, NULL, err, sizeof(err), state) ==
		        0 &&
		    pg_exec(c, ren, 0, NULL, err, sizeof(err), state) == 0 &&
		    pg_exec(c, com, 0, NULL, err, sizeof(err), state) == 0 &&
		    pg_exec(c, "COMMIT", 0, NULL, err, sizeof(err), state) == 0)
			return TENANT_OK;
		pg_exec(c, "ROLLBACK", 0, NULL, NULL, 0, NULL);
		if (strcmp(state, "42P04") == 0)
			return tenant_fail(res, TENANT_EXISTS,
			    "subdomain: database "
			    "'%s' already exists",
			    name);
		/* 55006: our own backend on tmp has not quite left yet. */
		if (strcmp(state, "55006") != 0 ||
		    tries + 1 >= TENANT_RENAME_TRIES)
			break;
		terminate_sessions(c, tmp);
		usleep(20 * 1000);
	}
	return tenant_db_fail(res, c, "renaming the new database", err);
}

/*
 * The connection died during step 5: did the rename commit? Asks on a new
 * connection. Returns 0 when it did not (tmp is still there: undo as
 * usual), 1 when it did (name is there, tmp is not: the tenant is
 * complete), -1 when nobody can tell: then the folder must stay, and the
 * clean-up at the next start removes it with tmp unless name exists.
 */
int
publish_outcome(const struct tenant_ctx *t, const char *tmp, const char *name)
{
	char err[256];
	PGconn *c;
	int tmp_there = -1, name_there = -1;

	if ((c = pg_pool_get(t->pool, err, sizeof(err))) != NULL) {
		tmp_there = db_exists(c, tmp, NULL);
		name_there = db_exists(c, name, NULL);
		pg_pool_put(t->pool, c);
	}
	if (tmp_there == 1)
		return 0;
	if (tmp_there == 0 && name_there == 1) {
		log_msg(LOG_WARNING, name,
		    "connection lost at COMMIT, but %s "
		    "was renamed into place",
		    tmp);
		return 1;
	}
	log_msg(LOG_WARNING, name,
	    "connection lost while renaming %s into "
	    "place and PostgreSQL cannot say whether it was: the filestore "
	    "folder stays; the next start removes it and %s unless the "
	    "tenant exists",
	    tmp, tmp);
	return -1;
}

static double
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static double
ms_since(const struct timespec *a)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return ms_between(a, &now);
}

/*
 * "clone 310, configure 402, ..." for the steps an operation got through:
 * step i ran from ts[i] to ts[i + 1], and a zero time is a step not
 * reached; a step that began and never ended is where it stopped:
 * "configure 12 (stopped here)". Always terminated.
 */
void
steps_text(char *buf, size_t len, const char *const names[],
    const struct timespec ts[], size_t nsteps)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < nsteps; i++) {
		int n, ended = ts[i + 1].tv_sec != 0 || ts[i + 1].tv_nsec != 0;

		if (ts[i].tv_sec == 0 && ts[i].tv_nsec == 0)
			break;
		n = snprintf(buf + o, len - o, "%s%s %.0f%s", o ? ", " : "",
		    names[i],
		    ended ? ms_between(&ts[i], &ts[i + 1]) : ms_since(&ts[i]),
		    ended ? "" : " (stopped here)");
		if (n < 0 || (size_t)n >= len - o || !ended)
			break;
		o += (size_t)n;
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "no step ran");
}

/* The one line an operation ends with: outcome, steps, TENANT=. */
void
log_outcome(const char *name, const char *op, enum tenant_err e,
    const struct tenant_result *res, const struct timespec *start,
    const char *steps, const char *extra)
{
	if (e == TENANT_OK)
		log_msg(LOG_INFO, name, "tenant %s %s%s in %.0f ms: %s", name,
		    op, extra, ms_since(start), steps);
	else
		/* The node's failures (5xx) at err, refusals at warning. */
		log_msg(e == TENANT_INTERNAL || e == TENANT_DB_UNAVAILABLE ||
		            e == TENANT_FILESTORE_MISSING
		        ? LOG_ERR
		        : LOG_WARNING,
		    name, "tenant %s not %s%s (%s: %s) after %.0f ms: %s", name,
		    op, extra, tenant_strerror(e), res->detail, ms_since(start),
		    steps);
}

/*
 * Steps 1 to 5: the database and its folder, published. Holds a pool
 * connection and the create lock (shared) while it runs and releases both
 * before it returns, so that the DNS step after it holds neither. ts[i]
 * is when step i began (clone, configure, filestore, publish) and ts[4]
 * when publishing ended; a step not reached keeps its zero.
 */
static enum tenant_err
create_database(const struct tenant_ctx *t, const struct tenant_request *req,
    const char *templ, const char *domain, struct tenant_result *res,
    struct timespec ts[5])
{
	const struct settings *s = t->s;
	char tmp[sizeof(NAME_TMP_PREFIX) + TENANT_TMP_HEX], err[512];
	char sql[TENANT_SQL_MAX], text[512];
	char fs_src[PATH_MAX], fs_tmp[PATH_MAX], fs_dst[PATH_MAX];
	struct hash_job job;
	pthread_t th;
	int joined = 1, created = 0, fs_moved = 0, is_templ = 0, rc;
	int has_files = 0, claimed = 0;
	PGconn *c = NULL;
	enum tenant_err e;

	tenant_op_begin();
	spares_create_begin(); /* a spare's clone in flight gives way */
	snprintf(tmp, sizeof(tmp), "%s", NAME_TMP_PREFIX);
	if (random_hex(tmp + strlen(NAME_TMP_PREFIX), TENANT_TMP_HEX) != 0 ||
	    fs_path(s, templ, fs_src, sizeof(fs_src)) != 0 ||
	    fs_path(s, tmp, fs_tmp, sizeof(fs_tmp)) != 0 ||
	    fs_path(s, req->subdomain, fs_dst, sizeof(fs_dst)) != 0) {
		e = tenant_fail(res, TENANT_INTERNAL,
		    "internal: cannot make names");
		goto out;
	}
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
		e = tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
		goto out;
	}
	switch (db_exists(c, req->subdomain, &is_templ)) {
	case 0:
		break;
	case 1:
		e = is_templ
		    ? tenant_fail(res, TENANT_RESERVED,
		          "subdomain: '%s' is "
		          "a template database",
		          req->subdomain)
		    : tenant_fail(res, TENANT_EXISTS,
		          "subdomain: '%s' already exists", req->subdomain);
		goto out;
	default:
		e = tenant_db_fail(res, c, "looking up the subdomain",
		    PQerrorMessage(c));
		goto out;
	}
	if ((e = template_allowed(c, s, templ, res)) != TENANT_OK)
		goto out;
	if ((rc = fs_exists(fs_dst)) != 0) {
		e = rc == 1 ? tenant_fail(res, TENANT_EXISTS,
		                  "subdomain: filestore folder %s already "
		                  "exists (left by a database dropped outside "
		                  "the node?); move it away",
		                  fs_dst)
		            : tenant_fail(res, TENANT_INTERNAL,
		                  "filestore: cannot check folder %s: %s",
		                  fs_dst, strerror(errno));
		goto out;
	}

	/* The 0.35 s hash runs while PostgreSQL clones. */
	memset(&job, 0, sizeof(job));
	job.pw = req->password;
	job.len = req->password_len;
	if (pthread_create(&th, NULL, hash_thread, &job) != 0) {
		e = tenant_fail(res, TENANT_INTERNAL,
		    "internal: cannot start thread");
		goto out;
	}
	joined = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts[0]);
	snprintf(text, sizeof(text),
	    TENANT_COMMENT_PREFIX "domain=%s;creating=%s", domain,
	    req->subdomain);
	/* A fresh spare (spares.h) is the clone, renamed to tmp, if any. */
	if ((claimed = spares_claim(c, s, templ, tmp, text, fs_tmp)) == 1)
		log_msg(LOG_INFO, req->subdomain, "claimed a spare of %s",
		    templ);
	else if ((e = clone_template(c, templ, tmp, res)) != TENANT_OK)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &ts[1]);
	created = 1;
	if (!claimed &&
	    (fmt_sql(c, sql, sizeof(sql), "COMMENT ON DATABASE %s IS %s", tmp,
	         NULL, text) != 0 ||
	        pg_exec(c, sql, 0, NULL, err, sizeof(err), NULL) != 0)) {
		e = tenant_db_fail(res, c, "COMMENT ON DATABASE", err);
		goto out;
	}
	if ((e = check_files(t, tmp, templ, fs_src, &has_files, res)) !=
	        TENANT_OK ||
	    (e = configure_clone(t, tmp, req->subdomain, domain, &job, th,
	         &joined, res)) != TENANT_OK)
		goto out;

	clock_gettime(CLOCK_MONOTONIC, &ts[2]);
	switch (fs_exists(fs_src)) {
	case 1:
		/* A claimed spare's folder is at fs_tmp already. */
		if ((!claimed || fs_exists(fs_tmp) != 1) &&
		    fs_copy_tree(fs_src, fs_tmp, &res->fs, err, sizeof(err)) !=
		        0) {
			e = tenant_fail(res, TENANT_INTERNAL, "filestore: %s",
			    err);
			goto out;
		}
		if (res->fs.skipped > 0)
			log_msg(LOG_WARNING, req->subdomain, "filestore %s: %s",
			    fs_src,
			    fs_report_skipped(&res->fs, res->warning,
			        sizeof(res->warning)));
		/* RENAME_NOREPLACE: an empty folder would be replaced. */
		if (renameat2(AT_FDCWD, fs_tmp, AT_FDCWD, fs_dst,
		        RENAME_NOREPLACE) != 0) {
			e = errno == EEXIST ? tenant_fail(res, TENANT_EXISTS,
			                          "subdomain: filestore folder "
			                          "%s already exists",
			                          fs_dst)
			                    : tenant_fail(res, TENANT_INTERNAL,
			                          "filestore: rename %s: %s",
			                          fs_dst, strerror(errno));
			goto out;
		}
		fs_moved = 1;
		/* Files and folders are fsynced: now their name, then publish. */
		if (fs_sync_parent(fs_dst, err, sizeof(err)) != 0) {
			e = tenant_fail(res, TENANT_INTERNAL, "filestore: %s",
			    err);
			goto out;
		}
		break;
	case 0:
		if (has_files) {
			e = tenant_fail(res, TENANT_FILESTORE_MISSING,
			    "filestore: template '%s' has file-backed "
			    "attachments but its folder %s is gone",
			    templ, fs_src);
			goto out;
		}
		snprintf(res->warning, sizeof(res->warning),
		    "the template's "
		    "filestore %.300s does not exist; the tenant has none",
		    fs_src);
		log_msg(LOG_WARNING, req->subdomain, "%s", res->warning);
		break;
	default:
		e = tenant_fail(res, TENANT_INTERNAL,
		    "filestore: cannot read %s: %s", fs_src, strerror(errno));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts[3]);
	if ((e = publish(c, tmp, req->subdomain, domain, templ, res)) !=
	        TENANT_OK &&
	    pg_conn_lost(c)) {
		switch (publish_outcome(t, tmp, req->subdomain)) {
		case 0:
			break;
		case 1:
			e = TENANT_OK;
			res->detail[0] = '\0';
			break;
		default:
			/* Maybe committed: a tenant must keep its folder. */
			created = 0;
			fs_moved = 0;
			break;
		}
	}
	if (e != TENANT_OK)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &ts[4]);
	created = 0;
	fs_moved = 0;
	e = TENANT_OK;
out:
	if (!joined)
		pthread_join(th, NULL);
	OPENSSL_cleanse(job.out, sizeof(job.out));
	if (fs_moved && rename(fs_dst, fs_tmp) != 0)
		log_msg(LOG_ERR, req->subdomain, "cannot move %s back: %s",
		    fs_dst, strerror(errno));
	if (e != TENANT_OK && fs_tmp[0] != '\0' && created)
		fs_remove_tree(fs_tmp);
	if (created && c != NULL &&
	    drop_database(c, tmp, err, sizeof(err)) != 0)
		log_msg(LOG_ERR, req->subdomain,
		    "cannot drop %s (removed at "
		    "next start): %s",
		    tmp, err);
	if (c != NULL)
		pg_pool_put(t->pool, c);
	spares_create_end();
	tenant_op_end();
	return e;
}

/*
 * Step 6: the DNS record. A failure leaves the tenant; the watcher
 * retries. Holds no database connection and no lock: a slow Cloudflare
 * cannot starve /health and the lists of connections. Only the name stays
 * busy, so that a delete of it waits for this record (409 meanwhile)
 * rather than racing it and leaving a record without a tenant.
 */
void
dns_create(const struct settings *s, struct cf_client *cf, const char *name,
    const char *domain, struct tenant_dns *dns)
{
	const struct zone *z = settings_zone(s, domain);
	struct cf_result cr;

	snprintf(dns->name, sizeof(dns->name), "%s.%s", name, domain);
	if (!s->dns_enabled || cf == NULL || z == NULL ||
	    s->cf_target == NULL || z->zone_id[0] == '\0') {
		dns->status = CF_DISABLED;
		return;
	}
	cf_ensure_cname(cf, z->zone_id, dns->name, s->cf_target, &cr);
	dns->status = cr.status;
	nodo_strlcpy(dns->record_id, cr.record_id, sizeof(dns->record_id));
	nodo_strlcpy(dns->detail, cr.detail, sizeof(dns->detail));
	log_msg(cr.status == CF_CREATED || cr.status == CF_EXISTS ? LOG_INFO
	                                                          : LOG_WARNING,
	    name, "dns %s: %s%s%s", dns->name, cf_status_str(cr.status),
	    cr.detail[0] ? ": " : "", cr.detail);
}

enum tenant_err
tenant_create(const struct tenant_ctx *t, struct cf_client *cf,
    const struct tenant_request *req, struct tenant_result *res,
    struct tenant *out)
{
	const struct settings *s = t->s;
	const char *templ = req->template ? req->template : s->default_template;
	const char *domain = req->domain ? req->domain : s->odoo_domain;
	static const char *const step_names[] = { "clone", "configure",
		"filestore", "publish", "dns" };
	/* ts[i]: step i starts (clone, configure, filestore, publish, dns) */
	struct timespec start, ts[6];
	char steps[256], extra[400];
	const struct zone *dz;
	enum tenant_err e;
	size_t n;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((e = tenant_validate(t, req, res)) != TENANT_OK)
		return e;
	/* The zone's own spelling: "SAJET.US" is stored as "sajet.us". */
	if ((dz = settings_zone(s, domain)) != NULL)
		domain = dz->domain;
	if ((rc = busy_claim(req->subdomain)) != 0)
		return busy_fail(res, rc, req->subdomain);
	clock_gettime(CLOCK_MONOTONIC, &start);
	memset(ts, 0, sizeof(ts));
	snprintf(extra, sizeof(extra), " from %s (domain %s)", templ, domain);
	if ((e = create_database(t, req, templ, domain, res, ts)) ==
	    TENANT_OK) {
		snprintf(out->name, sizeof(out->name), "%s", req->subdomain);
		snprintf(out->domain, sizeof(out->domain), "%s", domain);
		dns_create(s, cf, req->subdomain, domain, &res->dns);
		clock_gettime(CLOCK_MONOTONIC, &ts[5]);
		n = strlen(extra);
		snprintf(extra + n, sizeof(extra) - n, ", dns %s",
		    cf_status_str(res->dns.status));
	}
	busy_release(req->subdomain);
	steps_text(steps, sizeof(steps), step_names, ts, 5);
	log_outcome(req->subdomain, "created", e, res, &start, steps, extra);
	return e;
}

/* Our record of a deleted tenant; holds no connection (see dns_create). */
void
dns_delete(const struct settings *s, struct cf_client *cf, const char *name,
    const char *domain, struct tenant_dns *dns)
{
	const struct zone *z = settings_zone(s, domain);
	struct cf_result cr;

	snprintf(dns->name, sizeof(dns->name), "%s.%s", name, domain);
	if (!s->dns_enabled || cf == NULL || s->cf_target == NULL) {
		dns->status = CF_DISABLED;
		return;
	}
	if (z == NULL || z->zone_id[0] == '\0') {
		dns->status = CF_PENDING;
		snprintf(dns->detail, sizeof(dns->detail),
		    "domain %.253s is no longer in domains.json: its record "
		    "(if any) was not deleted",
		    domain);
		log_msg(LOG_WARNING, name, "dns %s: %s", dns->name,
		    dns->detail);
		return;
	}
	cf_delete_cname(cf, z->zone_id, dns->name, s->cf_target, &cr);
	dns->status = cr.status;
	nodo_strlcpy(dns->detail, cr.detail, sizeof(dns->detail));
	log_msg(cr.status == CF_PENDING ? LOG_WARNING : LOG_INFO, name,
	    "dns %s: %s%s%s", dns->name, cf_status_str(cr.status),
	    cr.detail[0] ? ": " : "", cr.detail);
}
