/*
 * suspend.c - suspending and resuming a tenant (see suspend.h).
 *
 * Suspend, with the name claimed in the busy-name table (a create, delete
 * or restore of it answers 409 meanwhile, and we answer 409 to them):
 *   1. while the tenant still allows connections, count its users and
 *      read its created_at (the detail reports them whatever the state);
 *   2. in one transaction: COMMENT ON DATABASE with ";suspended=1;users=N;
 *      created_at=T" appended, ALTER DATABASE ... ALLOW_CONNECTIONS false;
 *   3. end its sessions (pg_terminate_backend), until none is left.
 * Resume, in one transaction: ALLOW_CONNECTIONS true and the comment
 * without those keys. A crash between 2 and 3 leaves a marked, closed
 * database with sessions; a marked database open to connections comes
 * only from a hand edit or an older build. suspend_recover() finishes
 * both; the mark decides the state in every reply meanwhile.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/pg.h"
#include "nodo/suspend.h"
#include "nodo/tenant.h"
#include "nodo/tenant_steps.h"
#include "nodo/util.h"

#define SUSPEND_COMMENT_MAX 2048 /* bytes of a comment we rewrite */
#define SUSPEND_END_TRIES   250  /* x 20 ms: the ended sessions leave */

/* The keys the mark adds; a resume removes them. */
static const char *const mark_keys[] = { "suspended", "users", "created_at" };

int
suspend_marked(const char *comment)
{
	char v[8];

	tenant_comment_value(comment, "suspended", v, sizeof(v));
	return strcmp(v, "1") == 0;
}

static enum tenant_err sfail(struct tenant_result *res, enum tenant_err e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum tenant_err
sfail(struct tenant_result *res, enum tenant_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	return e;
}

static enum tenant_err
sdb_fail(struct tenant_result *res, PGconn *c, const char *what,
    const char *msg)
{
	if (pg_conn_lost(c) || pg_timed_out())
		return sfail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable or slow (%s): %s",
		    what, msg);
	return sfail(res, TENANT_INTERNAL, "database: %s failed: %s", what,
	    msg);
}

static int
is_mark_key(const char *seg, size_t n)
{
	size_t i, k;

	for (i = 0; i < sizeof(mark_keys) / sizeof(mark_keys[0]); i++) {
		k = strlen(mark_keys[i]);
		if (n > k && strncmp(seg, mark_keys[i], k) == 0 &&
		    seg[k] == '=')
			return 1;
	}
	return 0;
}

int
suspend_strip_mark(const char *comment, char *out, size_t len)
{
	size_t plen = strlen(TENANT_COMMENT_PREFIX), o = plen, n;
	const char *p, *e;

	if (len <= plen)
		return -1;
	memcpy(out, TENANT_COMMENT_PREFIX, plen + 1);
	if (strncmp(comment, TENANT_COMMENT_PREFIX, plen) != 0)
		return 0;
	for (p = comment + plen; *p != '\0'; p = e + 1) {
		e = strchr(p, ';');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n > 0 && !is_mark_key(p, n)) {
			if (o + n + 2 > len)
				return -1;
			if (o > plen)
				out[o++] = ';';
			memcpy(out + o, p, n);
			o += n;
			out[o] = '\0';
		}
		if (e == NULL)
			break;
	}
	return 0;
}

/* The tenant's datallowconn and comment; 0, or an error with res. */
static enum tenant_err
read_state(PGconn *c, const char *name, int *allow, char *comment, size_t len,
    struct tenant_result *res)
{
	const char *p[1] = { name };
	PGresult *r;
	enum tenant_err e;

	r = pg_query(c,
	    "SELECT datallowconn, coalesce(shobj_description(oid,"
	    " 'pg_database'), '') FROM pg_database WHERE datname = $1",
	    1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = sdb_fail(res, c, "reading the tenant's state",
		    pg_result_error(c, r));
		PQclear(r);
		return e;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		return sfail(res, TENANT_NOT_FOUND,
		    "subdomain: no tenant named '%s'", name);
	}
	*allow = PQgetvalue(r, 0, 0)[0] == 't';
	if (nodo_strlcpy(comment, PQgetvalue(r, 0, 1), len) >= len) {
		PQclear(r);
		return sfail(res, TENANT_INTERNAL,
		    "database: the comment of '%s' is too long to rewrite",
		    name);
	}
	PQclear(r);
	return TENANT_OK;
}

/* The comment and ALLOW_CONNECTIONS in one transaction (com NULL: none). */
static enum tenant_err
set_state(PGconn *c, const char *name, const char *com, int allow,
    struct tenant_result *res)
{
	char csql[SUSPEND_COMMENT_MAX + TENANT_SQL_MAX], asql[TENANT_SQL_MAX];
	char err[512];
	enum tenant_err e;

	if ((com != NULL ? fmt_sql(c, csql, sizeof(csql),
	                       "COMMENT ON DATABASE %s IS %s", name, NULL, com)
	                 : fmt_sql(c, csql, sizeof(csql),
	                       "COMMENT ON DATABASE %s IS NULL", name, NULL,
	                       NULL)) != 0 ||
	    fmt_sql(c, asql, sizeof(asql),
	        allow ? "ALTER DATABASE %s ALLOW_CONNECTIONS true"
	              : "ALTER DATABASE %s ALLOW_CONNECTIONS false",
	        name, NULL, NULL) != 0)
		return sfail(res, TENANT_INTERNAL,
		    "database: statement for '%s' too long", name);
	if (pg_exec(c, "BEGIN", 0, NULL, err, sizeof(err), NULL) != 0)
		return sdb_fail(res, c, "BEGIN", err);
	/* The mark first, as a reader of the comment alone would want. */
	if (pg_exec(c, allow ? asql : csql, 0, NULL, err, sizeof(err), NULL) !=
	        0 ||
	    pg_exec(c, allow ? csql : asql, 0, NULL, err, sizeof(err), NULL) !=
	        0 ||
	    pg_exec(c, "COMMIT", 0, NULL, err, sizeof(err), NULL) != 0) {
		char rerr[256];

		e = sdb_fail(res, c, allow ? "resuming" : "suspending", err);
		pg_exec(c, "ROLLBACK", 0, NULL, rerr, sizeof(rerr), NULL);
		return e;
	}
	return TENANT_OK;
}

/* Ends every session on name and waits (a while) until none is left. */
static void
end_sessions(PGconn *c, const char *name)
{
	const char *p[1] = { name };
	struct timespec ms20 = { 0, 20 * 1000 * 1000 };
	PGresult *r;
	int i, left = -1;

	for (i = 0; i < SUSPEND_END_TRIES; i++) {
		/* Client backends only: autovacuum is not ours to end. */
		pg_exec(c,
		    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		    " WHERE datname = $1 AND pid <> pg_backend_pid()"
		    " AND backend_type = 'client backend'",
		    1, p, NULL, 0, NULL);
		r = pg_query(c,
		    "SELECT count(*) FROM pg_stat_activity"
		    " WHERE datname = $1 AND pid <> pg_backend_pid()"
		    " AND backend_type = 'client backend'",
		    1, p);
		left = PQresultStatus(r) == PGRES_TUPLES_OK
		    ? (int)strtol(PQgetvalue(r, 0, 0), NULL, 10)
		    : -1;
		PQclear(r);
		if (left <= 0)
			break;
		nanosleep(&ms20, NULL);
	}
	if (left != 0)
		log_msg(LOG_WARNING, name,
		    "suspend: sessions of %s may remain (%d); the next "
		    "clean-up ends them",
		    name, left);
}

/* Suspends name (claimed, found a tenant) on c. */
static enum tenant_err
do_suspend(const struct tenant_ctx *t, PGconn *c, const char *name,
    struct tenant_result *res)
{
	char com[SUSPEND_COMMENT_MAX], base[SUSPEND_COMMENT_MAX];
	struct tenant_detail d;
	enum tenant_err e;
	int allow, n;

	if ((e = read_state(c, name, &allow, com, sizeof(com), res)) !=
	    TENANT_OK)
		return e;
	if (suspend_marked(com) && !allow) {
		end_sessions(c, name); /* a crash may have left some */
		return TENANT_OK;
	}
	memset(&d, 0, sizeof(d));
	d.users = -1;
	nodo_strlcpy(d.name, name, sizeof(d.name));
	if (allow && (e = tenant_inside(t, &d, res)) != TENANT_OK)
		return e;
	if (suspend_strip_mark(com, base, sizeof(base)) != 0)
		return sfail(res, TENANT_INTERNAL,
		    "database: the comment of '%s' is too long to rewrite",
		    name);
	n = snprintf(com, sizeof(com), "%s%ssuspended=1", base,
	    base[strlen(base) - 1] == ':' ? "" : ";");
	if (n > 0 && (size_t)n < sizeof(com) && d.users >= 0)
		n += snprintf(com + n, sizeof(com) - (size_t)n, ";users=%lld",
		    d.users);
	if (n > 0 && (size_t)n < sizeof(com) && d.created_at[0] != '\0')
		n += snprintf(com + n, sizeof(com) - (size_t)n,
		    ";created_at=%s", d.created_at);
	if (n < 0 || (size_t)n >= sizeof(com))
		return sfail(res, TENANT_INTERNAL,
		    "database: the comment of '%s' is too long to rewrite",
		    name);
	if ((e = set_state(c, name, com, 0, res)) != TENANT_OK)
		return e;
	end_sessions(c, name);
	log_msg(LOG_NOTICE, name, "suspended %s (connections refused)", name);
	return TENANT_OK;
}

static enum tenant_err
do_resume(PGconn *c, const char *name, struct tenant_result *res)
{
	char com[SUSPEND_COMMENT_MAX], base[SUSPEND_COMMENT_MAX];
	enum tenant_err e;
	int allow;

	if ((e = read_state(c, name, &allow, com, sizeof(com), res)) !=
	    TENANT_OK)
		return e;
	if (!suspend_marked(com))
		return TENANT_OK; /* active already: unchanged */
	if (suspend_strip_mark(com, base, sizeof(base)) != 0)
		return sfail(res, TENANT_INTERNAL,
		    "database: the comment of '%s' is too long to rewrite",
		    name);
	if ((e = set_state(c, name,
	         strcmp(base, TENANT_COMMENT_PREFIX) == 0 ? NULL : base, 1,
	         res)) != TENANT_OK)
		return e;
	log_msg(LOG_NOTICE, name, "resumed %s (connections allowed)", name);
	return TENANT_OK;
}

enum tenant_err
tenant_suspend(const struct tenant_ctx *t, const char *name, int suspend,
    struct tenant_result *res)
{
	struct tenant_detail d;
	char err[256];
	enum tenant_err e;
	PGconn *c;
	int rc;

	if (name == NULL || name_valid(name) != 0)
		return sfail(res, TENANT_INVALID_SUBDOMAIN,
		    "subdomain: must be 2 to 63 characters of a-z, 0-9, '-' "
		    "and '_', starting and ending with a letter or digit");
	if ((rc = busy_claim(name)) != 0)
		return rc == -1
		    ? sfail(res, TENANT_EXISTS,
		          "subdomain: '%s' is busy (being created, "
		          "deleted, restored, suspended or resumed "
		          "right now); retry",
		          name)
		    : sfail(res, TENANT_INTERNAL,
		          "too many operations at once; retry later");
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
		busy_release(name);
		return sfail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
	}
	if ((e = tenant_find(t, c, name, &d, res)) == TENANT_OK)
		e = suspend ? do_suspend(t, c, name, res)
		            : do_resume(c, name, res);
	pg_pool_put(t->pool, c);
	busy_release(name);
	if (e != TENANT_OK)
		log_msg(LOG_WARNING, name, "%s of %s failed: %s",
		    suspend ? "suspend" : "resume", name, res->detail);
	return e;
}

int
suspend_recover(const struct tenant_ctx *t)
{
	static const char q[] =
	    "SELECT d.datname FROM pg_database d"
	    " WHERE d.datdba = (SELECT oid FROM pg_roles WHERE rolname ="
	    " current_user) AND NOT d.datistemplate"
	    " AND left(d.datname, 6) <> '" NAME_TMP_PREFIX "'"
	    " AND coalesce(shobj_description(d.oid, 'pg_database'), '') "
	    "~ " SUSPEND_MARK_RE " AND (d.datallowconn OR EXISTS (SELECT 1"
	    " FROM pg_stat_activity a WHERE a.datname = d.datname"
	    " AND a.backend_type = 'client backend'"
	    " AND a.pid <> pg_backend_pid()))"
	    " ORDER BY d.datname COLLATE \"C\"";
	struct tenant_result res;
	struct tenant_detail d;
	char err[256];
	PGresult *r;
	PGconn *c;
	int i;

	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL)
		return -1;
	r = pg_query(c, q, 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_msg(LOG_WARNING, NULL, "suspend clean-up: %s",
		    pg_result_error(c, r));
		PQclear(r);
		pg_pool_put(t->pool, c);
		return -1;
	}
	for (i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 0);

		if (name_valid(name) != 0 || busy_claim(name) != 0)
			continue; /* busy: its own operation decides */
		memset(&res, 0, sizeof(res));
		/* tenant_find: never a template's nor a reserved name. */
		if (tenant_find(t, c, name, &d, &res) == TENANT_OK &&
		    d.suspended) {
			log_msg(LOG_NOTICE, name,
			    "suspend clean-up: finishing the suspend of %s",
			    name);
			if (do_suspend(t, c, name, &res) != TENANT_OK)
				log_msg(LOG_WARNING, name,
				    "suspend clean-up: %s", res.detail);
		}
		busy_release(name);
	}
	PQclear(r);
	pg_pool_put(t->pool, c);
	return 0;
}
