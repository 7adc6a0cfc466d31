/*
 * tenant.c - list and create tenants the way Odoo duplicates databases
 * (ODOO.md), but never half-done. Deletes are trash.c's, the clean-up and
 * the busy-name table op.c's, Odoo's parameters odoo.c's.
 *
 * A creation works on an internal name tmp (NAME_TMP_PREFIX + random
 * hex), never listed and never reachable through Odoo's dbfilter, as a
 * table of steps (create_steps[]; docs/DESIGN.md, "Trash and the step
 * machine"). A failing step leaves nothing of its own; the steps done
 * before it are undone, last first:
 *
 *   1 lookup     names; NAME and filestore/NAME free, the template allowed
 *   2 hash       the admin password's hash starts on a thread (joined by
 *                7, or before anything is undone)
 *   3 clone      a fresh spare claimed (renamed to tmp with its folder and
 *                record), else sessions on the template ended and CREATE
 *                DATABASE tmp TEMPLATE t          undo: DROP tmp, its folder
 *   4 record     COMMENT 'nodo:op=create;target=NAME;domain=D;template=T'
 *                (the claim wrote it already)     undo: dropped with tmp
 *   5 close      REVOKE CONNECT ON tmp FROM PUBLIC (the owner, the node's
 *                role, still connects); other sessions on tmp ended
 *   6 files      asked of the clone: file-backed attachments need the
 *                template's folder (else filestore_missing)
 *   7 configure  in tmp, one transaction: Odoo's init(force) keys,
 *                web.base.url (frozen), the admin password (hash joined)
 *   8 copy       filestore/t to filestore/tmp, fsynced (a spare's is
 *                there already)                   undo: folder removed
 *   9 rename     filestore/tmp to filestore/NAME (RENAME_NOREPLACE),
 *                filestore/ fsynced               undo: renamed back
 *  10 publish    one transaction: RENAME tmp TO NAME, COMMENT
 *                'nodo:domain=D;template=T', GRANT CONNECT TO PUBLIC.
 *                The tenant now exists.
 *  11 dns        the record (a failure there never undoes the tenant)
 *
 * A crash before 10 commits leaves only internal names and perhaps
 * filestore/NAME without its database, which tenant_cleanup() (op.c)
 * removes at start (it reads target=, or the legacy creating=); a crash
 * after it leaves a complete tenant. A crash also leaves backends working
 * on internal names (a CREATE DATABASE commits after its client died): the
 * clean-up ends them before it looks. When the connection is lost during 10
 * the outcome is unknown: nothing is undone unless a new connection shows
 * the rename did not happen.
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
 * Step 6: does the copy need the template's files? Asked of the clone
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

/* Step 7: what Odoo's ir.config_parameter init(force=True) does, and more. */
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

/* Step 3: terminate sessions on the template and clone it. */
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

/* Step 10: one transaction makes the tenant visible (and open to all). */
enum tenant_err
publish(PGconn *c, const char *tmp, const char *name, const char *domain,
    const char *templ, struct tenant_result *res)
{
	char ren[TENANT_SQL_MAX], com[TENANT_SQL_MAX], text[400];
	char grant[TENANT_SQL_MAX], err[512], state[6];
	int tries;

	snprintf(text, sizeof(text),
	    TENANT_COMMENT_PREFIX "domain=%s;template=%s", domain, templ);
	if (fmt_sql(c, ren, sizeof(ren), "ALTER DATABASE %s RENAME TO %s", tmp,
	        name, NULL) != 0 ||
	    fmt_sql(c, com, sizeof(com), "COMMENT ON DATABASE %s IS %s", name,
	        NULL, text) != 0 ||
	    fmt_sql(c, grant, sizeof(grant),
	        "GRANT CONNECT ON DATABASE %s TO PUBLIC", name, NULL,
	        NULL) != 0)
		return tenant_fail(res, TENANT_INTERNAL, "out of memory");
	for (tries = 0;; tries++) {
		if (pg_exec(c, "BEGIN", 0, NULL, err, sizeof(err), state) ==
		        0 &&
		    pg_exec(c, ren, 0, NULL, err, sizeof(err), state) == 0 &&
		    pg_exec(c, com, 0, NULL, err, sizeof(err), state) == 0 &&
		    pg_exec(c, grant, 0, NULL, err, sizeof(err), state) == 0 &&
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
 * The connection died during step 10: did the rename commit? Asks on a new
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
 * A creation in progress: what its steps (create_steps[] below) share.
 * A step either succeeds or fails leaving nothing of its own; the steps
 * done before a failure are undone, last first.
 */
struct creation {
	const struct tenant_ctx *t;
	const struct tenant_request *req;
	const char *templ, *domain;
	struct tenant_result *res;
	struct timespec *ts; /* the log line's step times (tenant_create) */
	PGconn *c;
	char tmp[sizeof(NAME_TMP_PREFIX) + TENANT_TMP_HEX];
	char fs_src[PATH_MAX], fs_tmp[PATH_MAX], fs_dst[PATH_MAX];
	char record[512]; /* the intent record: op=create;target=... */
	struct hash_job job;
	pthread_t th;
	int joined;       /* no hash thread runs (configure joins it) */
	int claimed;      /* tmp is a claimed spare, its record written */
	pthread_t copier; /* copies filestore/templ while PostgreSQL clones */
	int copying;      /* copier started, not joined */
	int copy_rc;      /* fs_copy_tree's, once joined */
	char copy_err[512];
	int has_files; /* the clone has file-backed attachments */
	int has_fs;    /* the template has a folder: copied, renamed */
	int maybe;     /* publish's commit unknown: nothing is undone */
};

/* 1 lookup: the names; the subdomain and its folder free, templ allowed. */
static enum tenant_err
step_lookup(struct creation *cr)
{
	const struct settings *s = cr->t->s;
	const char *name = cr->req->subdomain;
	char err[512];
	enum tenant_err e;
	int is_templ = 0, rc;

	snprintf(cr->tmp, sizeof(cr->tmp), "%s", NAME_TMP_PREFIX);
	if (random_hex(cr->tmp + strlen(NAME_TMP_PREFIX), TENANT_TMP_HEX) !=
	        0 ||
	    fs_path(s, cr->templ, cr->fs_src, sizeof(cr->fs_src)) != 0 ||
	    fs_path(s, cr->tmp, cr->fs_tmp, sizeof(cr->fs_tmp)) != 0 ||
	    fs_path(s, name, cr->fs_dst, sizeof(cr->fs_dst)) != 0)
		return tenant_fail(cr->res, TENANT_INTERNAL,
		    "internal: cannot make names");
	if ((cr->c = pg_pool_get(cr->t->pool, err, sizeof(err))) == NULL)
		return tenant_fail(cr->res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
	switch (db_exists(cr->c, name, &is_templ)) {
	case 0:
		break;
	case 1:
		return is_templ
		    ? tenant_fail(cr->res, TENANT_RESERVED,
		          "subdomain: '%s' is a template database", name)
		    : tenant_fail(cr->res, TENANT_EXISTS,
		          "subdomain: '%s' already exists", name);
	default:
		return tenant_db_fail(cr->res, cr->c,
		    "looking up the subdomain", PQerrorMessage(cr->c));
	}
	if ((e = template_allowed(cr->c, s, cr->templ, cr->res)) != TENANT_OK)
		return e;
	if ((rc = fs_exists(cr->fs_dst)) == 1)
		return tenant_fail(cr->res, TENANT_EXISTS,
		    "subdomain: filestore folder %s already exists (left by a "
		    "database dropped outside the node?); move it away",
		    cr->fs_dst);
	if (rc != 0)
		return tenant_fail(cr->res, TENANT_INTERNAL,
		    "filestore: cannot check folder %s: %s", cr->fs_dst,
		    strerror(errno));
	return TENANT_OK;
}

/* 2 hash: the 0.35 s hash runs while PostgreSQL clones. */
static enum tenant_err
step_hash(struct creation *cr)
{
	cr->job.pw = cr->req->password;
	cr->job.len = cr->req->password_len;
	if (pthread_create(&cr->th, NULL, hash_thread, &cr->job) != 0)
		return tenant_fail(cr->res, TENANT_INTERNAL,
		    "internal: cannot start thread");
	cr->joined = 0;
	return TENANT_OK;
}

/* The copier: filestore/templ to filestore/tmp, during the clone. */
static void *
copy_thread(void *arg)
{
	struct creation *cr = arg;

	cr->copy_rc = fs_copy_tree(cr->fs_src, cr->fs_tmp, &cr->res->fs,
	    cr->copy_err, sizeof(cr->copy_err));
	return NULL;
}

/* Waits for the copier, if it runs; its outcome stays in cr. */
static void
copy_join(struct creation *cr)
{
	if (!cr->copying)
		return;
	pthread_join(cr->copier, NULL);
	cr->copying = 0;
}

/*
 * 3 clone: a fresh spare (spares.h) renamed to tmp, else the template's,
 * with the template's folder copied meanwhile by the copier (the copy
 * waits mostly for fsync, the clone for PostgreSQL: together they take
 * about the longer of the two). A spare brings its folder; without a
 * thread for the copier the copy step makes it.
 */
static enum tenant_err
step_clone(struct creation *cr)
{
	enum tenant_err e;

	snprintf(cr->record, sizeof(cr->record),
	    TENANT_COMMENT_PREFIX "op=create;target=%s;domain=%s;template=%s",
	    cr->req->subdomain, cr->domain, cr->templ);
	cr->claimed = spares_claim(cr->c, cr->t->s, cr->templ, cr->tmp,
	                  cr->record, cr->fs_tmp) == 1;
	if (cr->claimed) {
		log_msg(LOG_INFO, cr->req->subdomain, "claimed a spare of %s",
		    cr->templ);
		return TENANT_OK;
	}
	if (fs_exists(cr->fs_src) == 1 &&
	    pthread_create(&cr->copier, NULL, copy_thread, cr) == 0)
		cr->copying = 1;
	if ((e = clone_template(cr->c, cr->templ, cr->tmp, cr->res)) !=
	    TENANT_OK) {
		copy_join(cr);
		fs_remove_tree(cr->fs_tmp);
	}
	return e;
}

/* Undoes 3: tmp dropped, with filestore/tmp (a claimed spare's folder). */
static void
undo_clone(struct creation *cr)
{
	char err[512];

	copy_join(cr);
	fs_remove_tree(cr->fs_tmp);
	if (drop_database(cr->c, cr->tmp, err, sizeof(err)) != 0)
		log_msg(LOG_ERR, cr->req->subdomain,
		    "cannot drop %s (removed at next start): %s", cr->tmp, err);
}

/* 4 record: the intent, for the clean-up (a claimed spare has it). */
static enum tenant_err
step_record(struct creation *cr)
{
	char sql[TENANT_SQL_MAX], err[512];

	if (cr->claimed)
		return TENANT_OK;
	if (fmt_sql(cr->c, sql, sizeof(sql), "COMMENT ON DATABASE %s IS %s",
	        cr->tmp, NULL, cr->record) != 0 ||
	    pg_exec(cr->c, sql, 0, NULL, err, sizeof(err), NULL) != 0)
		return tenant_db_fail(cr->res, cr->c, "COMMENT ON DATABASE",
		    err);
	return TENANT_OK;
}

/*
 * 5 close: until published, nobody but the node's role (the owner) may
 * connect; sessions that came in since the clone are ended. Publishing
 * grants CONNECT to PUBLIC again, as a new database has it.
 */
static enum tenant_err
step_close(struct creation *cr)
{
	char sql[TENANT_SQL_MAX], err[512];

	if (fmt_sql(cr->c, sql, sizeof(sql),
	        "REVOKE CONNECT ON DATABASE %s FROM PUBLIC", cr->tmp, NULL,
	        NULL) != 0 ||
	    pg_exec(cr->c, sql, 0, NULL, err, sizeof(err), NULL) != 0)
		return tenant_db_fail(cr->res, cr->c, "REVOKE CONNECT", err);
	terminate_sessions(cr->c, cr->tmp);
	return TENANT_OK;
}

/* 6 files: file-backed attachments need the template's folder. */
static enum tenant_err
step_files(struct creation *cr)
{
	return check_files(cr->t, cr->tmp, cr->templ, cr->fs_src,
	    &cr->has_files, cr->res);
}

/* 7 configure: Odoo's parameters and the admin password (hash joined). */
static enum tenant_err
step_configure(struct creation *cr)
{
	return configure_clone(cr->t, cr->tmp, cr->req->subdomain, cr->domain,
	    &cr->job, cr->th, &cr->joined, cr->res);
}

/*
 * 8 copy: filestore/tmp complete: the copier's copy joined, else a
 * spare's, else made now.
 */
static enum tenant_err
step_copy(struct creation *cr)
{
	const char *name = cr->req->subdomain;
	struct tenant_result *res = cr->res;
	int started = cr->copying;

	copy_join(cr);
	switch (started ? 1 : fs_exists(cr->fs_src)) {
	case 1:
		cr->has_fs = 1;
		if (!started && cr->claimed && fs_exists(cr->fs_tmp) == 1)
			return TENANT_OK;
		if (!started)
			cr->copy_rc = fs_copy_tree(cr->fs_src, cr->fs_tmp,
			    &res->fs, cr->copy_err, sizeof(cr->copy_err));
		if (cr->copy_rc != 0) {
			fs_remove_tree(cr->fs_tmp);
			return tenant_fail(res, TENANT_INTERNAL,
			    "filestore: %s", cr->copy_err);
		}
		if (res->fs.skipped > 0)
			log_msg(LOG_WARNING, name, "filestore %s: %s",
			    cr->fs_src,
			    fs_report_skipped(&res->fs, res->warning,
			        sizeof(res->warning)));
		return TENANT_OK;
	case 0:
		if (cr->has_files)
			return tenant_fail(res, TENANT_FILESTORE_MISSING,
			    "filestore: template '%s' has file-backed "
			    "attachments but its folder %s is gone",
			    cr->templ, cr->fs_src);
		snprintf(res->warning, sizeof(res->warning),
		    "the template's filestore %.300s does not exist; the "
		    "tenant has none",
		    cr->fs_src);
		log_msg(LOG_WARNING, name, "%s", res->warning);
		return TENANT_OK;
	default:
		return tenant_fail(res, TENANT_INTERNAL,
		    "filestore: cannot read %s: %s", cr->fs_src,
		    strerror(errno));
	}
}

/* Undoes 8: filestore/tmp removed. */
static void
undo_copy(struct creation *cr)
{
	fs_remove_tree(cr->fs_tmp);
}

/* 9 rename: filestore/tmp to filestore/NAME, its name fsynced. */
static enum tenant_err
step_rename(struct creation *cr)
{
	char err[512];

	if (!cr->has_fs)
		return TENANT_OK;
	/* RENAME_NOREPLACE: an empty folder would be replaced. */
	if (renameat2(AT_FDCWD, cr->fs_tmp, AT_FDCWD, cr->fs_dst,
	        RENAME_NOREPLACE) != 0)
		return errno == EEXIST
		    ? tenant_fail(cr->res, TENANT_EXISTS,
		          "subdomain: filestore folder %s already exists",
		          cr->fs_dst)
		    : tenant_fail(cr->res, TENANT_INTERNAL,
		          "filestore: rename %s: %s", cr->fs_dst,
		          strerror(errno));
	/* Files and folders are fsynced: now their name, then publish. */
	if (fs_sync_parent(cr->fs_dst, err, sizeof(err)) != 0) {
		enum tenant_err e =
		    tenant_fail(cr->res, TENANT_INTERNAL, "filestore: %s", err);

		if (rename(cr->fs_dst, cr->fs_tmp) != 0)
			log_msg(LOG_ERR, cr->req->subdomain,
			    "cannot move %s back: %s", cr->fs_dst,
			    strerror(errno));
		return e;
	}
	return TENANT_OK;
}

/* Undoes 9: filestore/NAME back to filestore/tmp. */
static void
undo_rename(struct creation *cr)
{
	if (cr->has_fs && rename(cr->fs_dst, cr->fs_tmp) != 0)
		log_msg(LOG_ERR, cr->req->subdomain, "cannot move %s back: %s",
		    cr->fs_dst, strerror(errno));
}

/* 10 publish: rename and comment in one transaction; the tenant exists. */
static enum tenant_err
step_publish(struct creation *cr)
{
	enum tenant_err e;

	e = publish(cr->c, cr->tmp, cr->req->subdomain, cr->domain, cr->templ,
	    cr->res);
	if (e == TENANT_OK || !pg_conn_lost(cr->c))
		return e;
	switch (publish_outcome(cr->t, cr->tmp, cr->req->subdomain)) {
	case 0:
		return e; /* not published: undone as usual */
	case 1:
		cr->res->detail[0] = '\0';
		return TENANT_OK;
	default:
		cr->maybe = 1; /* maybe committed: a tenant keeps its folder */
		return e;
	}
}

/*
 * The creation up to its publication (docs/DESIGN.md, "Trash and the step
 * machine"), in order. mark: the step of the log line (tenant_create's
 * step_names) that begins with this one, or -1.
 */
static const struct create_step {
	const char *name;
	int mark;
	enum tenant_err (*run)(struct creation *);
	void (*undo)(struct creation *);
} create_steps[] = {
	{ "lookup", -1, step_lookup, NULL },
	{ "hash", -1, step_hash, NULL }, /* joined before any undo */
	{ "clone", 0, step_clone, undo_clone },
	{ "record", 1, step_record, NULL }, /* dropped with tmp */
	{ "close", -1, step_close, NULL },
	{ "files", -1, step_files, NULL },
	{ "configure", -1, step_configure, NULL },
	{ "copy", 2, step_copy, undo_copy },
	{ "rename", -1, step_rename, undo_rename },
	{ "publish", 3, step_publish, NULL },
};
#define CREATE_PUBLISHED 4 /* the log line's time of the end of publish */

/*
 * Runs create_steps[] under a pool connection and the create lock
 * (shared), and releases both before it returns, so that the DNS step
 * after it holds neither. On a failure the steps done are undone, last
 * first, unless the publication may have committed.
 */
static enum tenant_err
create_database(struct creation *cr)
{
	const size_t n = sizeof(create_steps) / sizeof(create_steps[0]);
	enum tenant_err e = TENANT_OK;
	size_t i;

	tenant_op_begin();
	spares_create_begin(); /* a spare's clone in flight gives way */
	for (i = 0; i < n; i++) {
		if (create_steps[i].mark >= 0)
			clock_gettime(CLOCK_MONOTONIC,
			    &cr->ts[create_steps[i].mark]);
		if ((e = create_steps[i].run(cr)) != TENANT_OK)
			break;
	}
	if (e == TENANT_OK)
		clock_gettime(CLOCK_MONOTONIC, &cr->ts[CREATE_PUBLISHED]);
	if (!cr->joined)
		pthread_join(cr->th, NULL);
	copy_join(cr);
	OPENSSL_cleanse(cr->job.out, sizeof(cr->job.out));
	while (e != TENANT_OK && !cr->maybe && i-- > 0)
		if (create_steps[i].undo != NULL)
			create_steps[i].undo(cr);
	if (cr->c != NULL)
		pg_pool_put(cr->t->pool, cr->c);
	spares_create_end();
	tenant_op_end();
	return e;
}

/*
 * Step 11: the DNS record. A failure leaves the tenant; the watcher
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
	static const char *const step_names[] = { "clone", "configure",
		"filestore", "publish", "dns" };
	/* ts[i]: step i starts (clone, configure, filestore, publish, dns) */
	struct timespec start, ts[6];
	struct creation cr = { .t = t,
		.req = req,
		.res = res,
		.ts = ts,
		.joined = 1,
		.templ = req->template ? req->template : s->default_template,
		.domain = req->domain ? req->domain : s->odoo_domain };
	char steps[256], extra[400];
	const struct zone *dz;
	enum tenant_err e;
	size_t n;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((e = tenant_validate(t, req, res)) != TENANT_OK)
		return e;
	/* The zone's own spelling: "SAJET.US" is stored as "sajet.us". */
	if ((dz = settings_zone(s, cr.domain)) != NULL)
		cr.domain = dz->domain;
	if ((rc = busy_claim(req->subdomain)) != 0)
		return busy_fail(res, rc, req->subdomain);
	clock_gettime(CLOCK_MONOTONIC, &start);
	memset(ts, 0, sizeof(ts));
	snprintf(extra, sizeof(extra), " from %s (domain %s)", cr.templ,
	    cr.domain);
	if ((e = create_database(&cr)) == TENANT_OK) {
		snprintf(out->name, sizeof(out->name), "%s", req->subdomain);
		snprintf(out->domain, sizeof(out->domain), "%s", cr.domain);
		/* 11 dns: no connection, no lock; only the name stays busy. */
		dns_create(s, cf, req->subdomain, cr.domain, &res->dns);
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
