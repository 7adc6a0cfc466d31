/*
 * trash.c - the trash (CONTRACT section 9): delete to the trash, restore,
 * purge, and the clean-up of each when a crash interrupted it.
 *
 * Every operation is a short table of steps (docs/DESIGN.md, "Trash and
 * the step machine"); its intent is in the database's comment before
 * anything irreversible, and tenant_cleanup() (trash_cleanup_one) reads
 * that record and finishes or rolls back. The database moves in one
 * transaction each way (rename, comment, connections); the filestore
 * folder follows it with one rename, and a crash between the two is what
 * the clean-up repairs: the folder goes to where the database is.
 *
 * Delete (to the trash; a final delete is the same with purge=1):
 *   1 lookup     the tenant, its domain and template     nothing done
 *   2 move       BEGIN; connections off; RENAME TO _nodo_t<id>; COMMENT
 *                'op=trash;...'; COMMIT          crash: the tenant, or the
 *                entry with its folder still at filestore/<name>: moved
 *   3 filestore  rename filestore/<name> to filestore/_nodo_t<id>
 *                                                undo: step 2 reversed
 *   4 purge      (final only) DROP DATABASE; remove the folder: the
 *                comment said purge=1, the clean-up finishes it
 *   5 dns        our record deleted (the watcher never sees the entry)
 * Restore: 1 lookup; 2 intent (restore=NAME in the comment); 3 web.base.url
 * (connections on for a moment); 4 filestore to filestore/NAME; 5 publish:
 * BEGIN; RENAME TO NAME; COMMENT 'domain=D;template=T'; connections on;
 * COMMIT; 6 dns. A crash before 5 commits is rolled back (the folder
 * returns beside the entry); after it, the tenant is complete.
 * Purge: 1 lookup; 2 intent (purge=1); 3 DROP DATABASE; 4 the folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nodo/filestore.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/odoo.h"
#include "nodo/suspend.h"
#include "nodo/tenant_steps.h"
#include "nodo/trash.h"
#include "nodo/util.h"

#define TRASH_DB_LEN     (sizeof(TRASH_PREFIX) - 1 + TRASH_ID_HEX)
#define TRASH_MOVE_TRIES 250 /* x 20 ms: sessions leaving the database */
#define TRASH_COMMENT    640 /* the longest entry_comment() is 578 bytes */

/* Owned by the node's role: the only databases the node touches. */
#define OWNED_SQL                                                              \
	"datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)"

static double
ms_since(const struct timespec *a)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - a->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - a->tv_nsec) / 1e6;
}

/* 16 lower-case hex digits: an id the trash may have made. */
static int
id_valid(const char *id)
{
	size_t i;

	if (id == NULL || strlen(id) != TRASH_ID_HEX)
		return -1;
	for (i = 0; i < TRASH_ID_HEX; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		        (id[i] >= 'a' && id[i] <= 'f')))
			return -1;
	return 0;
}

static void
db_of(const char *id, char out[TRASH_DB_LEN + 1])
{
	snprintf(out, TRASH_DB_LEN + 1, "%s%s", TRASH_PREFIX, id);
}

/* What a trash record holds besides the entry's public fields. */
struct record {
	int fs;                         /* it had a folder */
	int purge;                      /* being purged */
	char restore[NAME_MAX_LEN + 1]; /* being restored as this name */
};

/* 0 when db/com is a trash entry (te and rec filled), else -1. */
static int
parse_entry(const char *db, const char *com, struct trash_entry *te,
    struct record *rec)
{
	char v[64];

	memset(te, 0, sizeof(*te));
	memset(rec, 0, sizeof(*rec));
	if (strncmp(db, TRASH_PREFIX, strlen(TRASH_PREFIX)) != 0 ||
	    id_valid(db + strlen(TRASH_PREFIX)) != 0)
		return -1;
	tenant_comment_value(com, "op", v, sizeof(v));
	if (strcmp(v, "trash") != 0)
		return -1;
	snprintf(te->id, sizeof(te->id), "%s", db + strlen(TRASH_PREFIX));
	tenant_comment_value(com, "name", te->name, sizeof(te->name));
	tenant_comment_domain(com, te->domain, sizeof(te->domain));
	tenant_comment_value(com, "template", te->template_db,
	    sizeof(te->template_db));
	tenant_comment_value(com, "deleted_at", v, sizeof(v));
	te->deleted_at = strtoll(v, NULL, 10);
	tenant_comment_value(com, "expires_at", v, sizeof(v));
	te->expires_at = strtoll(v, NULL, 10);
	tenant_comment_value(com, "fs", v, sizeof(v));
	rec->fs = strcmp(v, "1") == 0;
	tenant_comment_value(com, "purge", v, sizeof(v));
	rec->purge = strcmp(v, "1") == 0;
	tenant_comment_value(com, "restore", rec->restore,
	    sizeof(rec->restore));
	te->database_bytes = -1;
	return 0;
}

/* The comment of an entry: "nodo:op=trash;name=...". */
static void
entry_comment(const struct trash_entry *te, const struct record *rec, char *buf,
    size_t len)
{
	snprintf(buf, len,
	    TENANT_COMMENT_PREFIX "op=trash;name=%s;domain=%s;template=%s;"
	                          "deleted_at=%lld;expires_at=%lld;fs=%d%s%s%s",
	    te->name, te->domain, te->template_db, te->deleted_at,
	    te->expires_at, rec->fs, rec->purge ? ";purge=1" : "",
	    rec->restore[0] ? ";restore=" : "", rec->restore);
}

static int
set_comment(PGconn *c, const char *db, const char *text, char *err,
    size_t errlen)
{
	char sql[TENANT_SQL_MAX];

	if (fmt_sql(c, sql, sizeof(sql), "COMMENT ON DATABASE %s IS %s", db,
	        NULL, text) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return pg_exec(c, sql, 0, NULL, err, errlen, NULL);
}

static int
set_connections(PGconn *c, const char *db, int allow, char *err, size_t errlen)
{
	char sql[TENANT_SQL_MAX];

	if (fmt_sql(c, sql, sizeof(sql),
	        allow ? "ALTER DATABASE %s ALLOW_CONNECTIONS true"
	              : "ALTER DATABASE %s ALLOW_CONNECTIONS false",
	        db, NULL, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return pg_exec(c, sql, 0, NULL, err, errlen, NULL);
}

/*
 * One transaction moves a database between a tenant and an entry:
 * connections off, RENAME from TO to, its comment, connections on when
 * allow. Sessions on from are ended (and the move retried) first.
 */
static enum tenant_err
move_db(PGconn *c, const char *from, const char *to, const char *comment,
    int allow, struct tenant_result *res)
{
	char off[TENANT_SQL_MAX], ren[TENANT_SQL_MAX], com[TENANT_SQL_MAX];
	char on[TENANT_SQL_MAX], err[512], state[6] = "";
	int tries;

	if (fmt_sql(c, off, sizeof(off),
	        "ALTER DATABASE %s ALLOW_CONNECTIONS false", from, NULL,
	        NULL) != 0 ||
	    fmt_sql(c, ren, sizeof(ren), "ALTER DATABASE %s RENAME TO %s", from,
	        to, NULL) != 0 ||
	    fmt_sql(c, com, sizeof(com), "COMMENT ON DATABASE %s IS %s", to,
	        NULL, comment) != 0 ||
	    fmt_sql(c, on, sizeof(on),
	        "ALTER DATABASE %s ALLOW_CONNECTIONS true", to, NULL,
	        NULL) != 0)
		return tenant_fail(res, TENANT_INTERNAL, "out of memory");
	for (tries = 0;; tries++) {
		terminate_sessions(c, from);
		if (pg_exec(c, "BEGIN", 0, NULL, err, sizeof(err), state) ==
		        0 &&
		    pg_exec(c, off, 0, NULL, err, sizeof(err), state) == 0 &&
		    pg_exec(c, ren, 0, NULL, err, sizeof(err), state) == 0 &&
		    pg_exec(c, com, 0, NULL, err, sizeof(err), state) == 0 &&
		    (!allow ||
		        pg_exec(c, on, 0, NULL, err, sizeof(err), state) ==
		            0) &&
		    pg_exec(c, "COMMIT", 0, NULL, err, sizeof(err), state) == 0)
			return TENANT_OK;
		pg_exec(c, "ROLLBACK", 0, NULL, NULL, 0, NULL);
		if (strcmp(state, "42P04") == 0)
			return tenant_fail(res, TENANT_EXISTS,
			    "subdomain: database '%s' already exists", to);
		/* 55006: a session came back between the end and the move. */
		if (strcmp(state, "55006") != 0 ||
		    tries + 1 >= TRASH_MOVE_TRIES)
			break;
		usleep(20 * 1000);
	}
	return tenant_db_fail(res, c, "renaming the database", err);
}

/*
 * The connection died during move_db: which name has the database now?
 * 1: to, 0: from, -1: nobody can tell (the clean-up sorts it out).
 */
static int
move_outcome(const struct tenant_ctx *t, const char *from, const char *to)
{
	char err[256];
	PGconn *c;
	int f = -1, n = -1;

	if ((c = pg_pool_get(t->pool, err, sizeof(err))) != NULL) {
		f = db_exists(c, from, NULL);
		n = db_exists(c, to, NULL);
		pg_pool_put(t->pool, c);
	}
	if (f == 0 && n == 1)
		return 1;
	if (f == 1)
		return 0;
	return -1;
}

/* rename(2) that never replaces, then the parent's fsync. */
static int
move_folder(const char *from, const char *to, char *err, size_t errlen)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) != 0) {
		snprintf(err, errlen, "rename %s to %s: %s", from, to,
		    strerror(errno));
		return -1;
	}
	return fs_sync_parent(to, err, errlen);
}

/* Drops entry db and its folder (the comment says purge=1 already). */
static enum tenant_err
purge_db(const struct tenant_ctx *t, PGconn *c, const char *db,
    struct tenant_result *res)
{
	char err[512], fs[PATH_MAX];

	if (drop_database(c, db, err, sizeof(err)) != 0)
		return tenant_db_fail(res, c, "DROP DATABASE", err);
	/* Only once the database is gone, as Odoo's exp_drop(). */
	if (fs_path(t->s, db, fs, sizeof(fs)) == 0 && fs_exists(fs) == 1 &&
	    fs_remove_tree(fs) != 0)
		log_err("cannot remove %s (removed at the next clean-up): %s",
		    fs, strerror(errno));
	return TENANT_OK;
}

/*
 * Entry id on c: TENANT_OK with te, rec (and *allowconn), else
 * TENANT_TRASH_NOT_FOUND (also for one being purged) or a database error.
 */
static enum tenant_err
lookup_entry(PGconn *c, const char *id, struct trash_entry *te,
    struct record *rec, struct tenant_result *res)
{
	static const char q[] =
	    "SELECT coalesce(shobj_description(oid, 'pg_database'), '')"
	    " FROM pg_database WHERE datname = $1 AND " OWNED_SQL;
	char db[TRASH_DB_LEN + 1];
	const char *p[1] = { db };
	PGresult *r;
	enum tenant_err e = TENANT_OK;

	db_of(id, db);
	r = pg_query(c, q, 1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		e = tenant_db_fail(res, c, "looking up the trash entry",
		    pg_result_error(c, r));
	else if (PQntuples(r) == 0 ||
	    parse_entry(db, PQgetvalue(r, 0, 0), te, rec) != 0 || rec->purge)
		e = tenant_fail(res, TENANT_TRASH_NOT_FOUND,
		    "id: no trash entry '%s'", id);
	PQclear(r);
	return e;
}

/* Step 1 of a delete: the tenant, its domain, template and comment. */
static enum tenant_err
lookup_tenant(const struct tenant_ctx *t, PGconn *c, const char *name,
    struct trash_entry *te, char *comment, size_t clen,
    struct tenant_result *res)
{
	static const char q[] =
	    "SELECT datistemplate, datallowconn, " OWNED_SQL ","
	    " coalesce(shobj_description(oid, 'pg_database'), '')"
	    " FROM pg_database WHERE datname = $1";
	const char *p[1] = { name };
	PGresult *r;
	enum tenant_err e = TENANT_OK;

	r = pg_query(c, q, 1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		e = tenant_db_fail(res, c, "looking up the tenant",
		    pg_result_error(c, r));
	else if (PQntuples(r) == 0)
		e = tenant_fail(res, TENANT_NOT_FOUND,
		    "subdomain: no tenant named '%s'", name);
	else if (PQgetvalue(r, 0, 0)[0] == 't')
		e = tenant_fail(res, TENANT_RESERVED,
		    "subdomain: '%s' is a template database and cannot be "
		    "deleted",
		    name);
	/* A suspended tenant (closed, with the mark) is one too. */
	else if ((PQgetvalue(r, 0, 1)[0] != 't' &&
	             !suspend_marked(PQgetvalue(r, 0, 3))) ||
	    PQgetvalue(r, 0, 2)[0] != 't')
		e = tenant_fail(res, TENANT_NOT_FOUND,
		    "subdomain: database '%s' is not a tenant of this node "
		    "(not owned by its role, or not accepting connections)",
		    name);
	else {
		const char *com = PQgetvalue(r, 0, 3);

		snprintf(comment, clen, "%s", com);
		snprintf(te->name, sizeof(te->name), "%s", name);
		tenant_comment_domain(com, te->domain, sizeof(te->domain));
		if (te->domain[0] == '\0')
			snprintf(te->domain, sizeof(te->domain), "%s",
			    t->s->odoo_domain);
		tenant_comment_value(com, "template", te->template_db,
		    sizeof(te->template_db));
		if (template_name_valid(te->template_db) != 0)
			te->template_db[0] = '\0';
	}
	PQclear(r);
	return e;
}

/* Steps 1 to 4 of a delete; ts[i] is when step i began. */
static enum tenant_err
to_trash(const struct tenant_ctx *t, const char *name, int final,
    struct trash_entry *te, struct tenant_result *res, struct timespec ts[5])
{
	const struct settings *s = t->s;
	char db[TRASH_DB_LEN + 1], old[TRASH_COMMENT], text[TRASH_COMMENT];
	char fs_name[PATH_MAX], fs_db[PATH_MAX], err[512];
	struct record rec;
	enum tenant_err e;
	PGconn *c;
	int rc;

	memset(&rec, 0, sizeof(rec));
	tenant_op_begin();
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
		tenant_op_end();
		return tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
	}
	clock_gettime(CLOCK_MONOTONIC, &ts[0]);
	if ((e = lookup_tenant(t, c, name, te, old, sizeof(old), res)) !=
	    TENANT_OK)
		goto out;
	if (random_hex(te->id, TRASH_ID_HEX) != 0 ||
	    fs_path(s, name, fs_name, sizeof(fs_name)) != 0) {
		e = tenant_fail(res, TENANT_INTERNAL,
		    "no randomness available");
		goto out;
	}
	db_of(te->id, db);
	if (fs_path(s, db, fs_db, sizeof(fs_db)) != 0 ||
	    (rc = fs_exists(fs_name)) == -1) {
		e = tenant_fail(res, TENANT_INTERNAL,
		    "filestore: cannot check folder %s: %s", fs_name,
		    strerror(errno));
		goto out;
	}
	rec.fs = rc == 1;
	rec.purge = final;
	te->deleted_at = (long long)time(NULL);
	te->expires_at =
	    te->deleted_at + (long long)s->trash_retention_days * 86400;
	entry_comment(te, &rec, text, sizeof(text));

	clock_gettime(CLOCK_MONOTONIC, &ts[1]);
	if ((e = move_db(c, name, db, text, 0, res)) != TENANT_OK) {
		if (!pg_conn_lost(c))
			goto out;
		switch (move_outcome(t, name, db)) {
		case 1:
			res->detail[0] = '\0';
			break; /* it did move: go on */
		case 0:
			goto out;
		default:
			goto out; /* the clean-up finishes it */
		}
		pg_pool_put(t->pool, c);
		if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
			e = tenant_fail(res, TENANT_DB_UNAVAILABLE,
			    "database: PostgreSQL is unreachable: %s", err);
			goto out;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &ts[2]);
	if (rec.fs && move_folder(fs_name, fs_db, err, sizeof(err)) != 0) {
		e = tenant_fail(res, TENANT_INTERNAL, "filestore: %s", err);
		if (fs_exists(fs_name) == 1 &&
		    move_db(c, db, name, old, 1, res) == TENANT_OK)
			goto out; /* the tenant is as it was */
		log_msg(LOG_ERR, name,
		    "deleted to %s, but its folder %s stays: the next "
		    "clean-up moves it",
		    db, fs_name);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts[3]);
	/* A final delete whose drop failed is gone all the same (purge=1). */
	if (final && purge_db(t, c, db, res) != TENANT_OK)
		log_msg(LOG_ERR, name,
		    "%s is deleted but not dropped yet (%s): the next "
		    "clean-up drops it",
		    db, res->detail);
	res->detail[0] = '\0';
	e = TENANT_OK;
	if (final)
		clock_gettime(CLOCK_MONOTONIC, &ts[4]);
out:
	if (c != NULL)
		pg_pool_put(t->pool, c);
	tenant_op_end();
	return e;
}

enum tenant_err
tenant_delete(const struct tenant_ctx *t, struct cf_client *cf,
    const char *subdomain, int purge, struct tenant_result *res,
    struct trash_entry *te)
{
	static const char *const final_steps[] = { "lookup", "move",
		"filestore", "purge", "dns" };
	static const char *const trash_steps[] = { "lookup", "move",
		"filestore", "dns" };
	const struct settings *s = t->s;
	int final = purge || s->trash_retention_days == 0;
	char steps[256], extra[64] = "";
	struct timespec start, ts[6];
	enum tenant_err e;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(te, 0, sizeof(*te));
	switch (name_check(subdomain, s->default_template)) {
	case NAME_OK:
		break;
	case NAME_INVALID:
		return tenant_fail(res, TENANT_INVALID_SUBDOMAIN,
		    "subdomain: not a valid tenant name");
	case NAME_RESERVED:
		return tenant_fail(res, TENANT_RESERVED,
		    "subdomain: '%s' is a system or template database and "
		    "cannot be deleted",
		    subdomain);
	}
	if (s->odoo_db_template && strcmp(subdomain, s->odoo_db_template) == 0)
		return tenant_fail(res, TENANT_RESERVED,
		    "subdomain: '%s' is Odoo's db_template and cannot be "
		    "deleted",
		    subdomain);
	if (template_listed(s, subdomain))
		return tenant_fail(res, TENANT_RESERVED,
		    "subdomain: '%s' is one of the node's templates "
		    "(TEMPLATE_DBS) and cannot be deleted",
		    subdomain);
	if ((rc = busy_claim(subdomain)) != 0)
		return busy_fail(res, rc, subdomain);
	clock_gettime(CLOCK_MONOTONIC, &start);
	memset(ts, 0, sizeof(ts));
	/* The name stays busy during DNS: a create of it waits (409). */
	if ((e = to_trash(t, subdomain, final, te, res, ts)) == TENANT_OK) {
		/* To the trash: no purge step, the DNS step is the fourth. */
		dns_delete(s, cf, subdomain, te->domain, &res->dns);
		clock_gettime(CLOCK_MONOTONIC, &ts[final ? 5 : 4]);
		snprintf(extra, sizeof(extra), "%s%.20s, dns %s",
		    final ? "" : " to the trash as ", final ? "" : te->id,
		    cf_status_str(res->dns.status));
		if (final)
			te->id[0] = '\0';
	}
	busy_release(subdomain);
	steps_text(steps, sizeof(steps), final ? final_steps : trash_steps, ts,
	    final ? 5 : 4);
	log_outcome(subdomain, "deleted", e, res, &start, steps, extra);
	return e;
}

static int
cmp_newest(const void *a, const void *b)
{
	const struct trash_entry *x = a, *y = b;

	if (x->deleted_at != y->deleted_at)
		return x->deleted_at < y->deleted_at ? 1 : -1;
	return strcmp(x->id, y->id);
}

enum tenant_err
trash_list(const struct tenant_ctx *t, struct trash_entry **out, size_t *n,
    struct tenant_result *res)
{
	static const char q[] =
	    "SELECT datname, coalesce(shobj_description(oid, 'pg_database'),"
	    " ''), CASE WHEN has_database_privilege(oid, 'CONNECT') THEN"
	    " pg_database_size(oid) END FROM pg_database"
	    " WHERE left(datname, 7) = '" TRASH_PREFIX "' AND " OWNED_SQL;
	char err[512], fs[PATH_MAX];
	struct trash_entry *v;
	struct record rec;
	unsigned long long files;
	PGconn *c;
	PGresult *r;
	int i, rows;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL)
		return tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
	r = pg_query(c, q, 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum tenant_err e = tenant_db_fail(res, c, "listing the trash",
		    pg_result_error(c, r));

		PQclear(r);
		pg_pool_put(t->pool, c);
		return e;
	}
	pg_pool_put(t->pool, c);
	rows = PQntuples(r);
	if ((v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v))) == NULL) {
		PQclear(r);
		return tenant_fail(res, TENANT_INTERNAL, "out of memory");
	}
	for (i = 0; i < rows; i++) {
		if (parse_entry(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &v[k],
		        &rec) != 0 ||
		    rec.purge)
			continue;
		if (!PQgetisnull(r, i, 2))
			v[k].database_bytes =
			    strtoll(PQgetvalue(r, i, 2), NULL, 10);
		if (fs_path(t->s, PQgetvalue(r, i, 0), fs, sizeof(fs)) == 0)
			(void)fs_usage(fs, &v[k].filestore_bytes, &files, err,
			    sizeof(err));
		k++;
	}
	PQclear(r);
	qsort(v, k, sizeof(*v), cmp_newest);
	*out = v;
	*n = k;
	return TENANT_OK;
}

long
trash_count(PGconn *c)
{
	static const char q[] =
	    "SELECT count(*) FROM pg_database WHERE left(datname, 7) = "
	    "'" TRASH_PREFIX "' AND " OWNED_SQL
	    " AND coalesce(shobj_description(oid,"
	    " 'pg_database'), '') LIKE 'nodo:op=trash;%'"
	    " AND strpos(shobj_description(oid, 'pg_database'),"
	    " ';purge=1') = 0";
	PGresult *r = pg_query(c, q, 0, NULL);
	long n = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return n;
}

enum tenant_err
trash_purge(const struct tenant_ctx *t, const char *id,
    struct tenant_result *res)
{
	char db[TRASH_DB_LEN + 1], text[TRASH_COMMENT], err[512];
	struct trash_entry te;
	struct record rec;
	struct timespec start;
	enum tenant_err e;
	PGconn *c;
	int rc;

	memset(res, 0, sizeof(*res));
	if (id_valid(id) != 0)
		return tenant_fail(res, TENANT_TRASH_NOT_FOUND,
		    "id: not a trash id (16 hexadecimal digits)");
	db_of(id, db);
	if ((rc = busy_claim(db)) != 0)
		return busy_fail(res, rc, db);
	clock_gettime(CLOCK_MONOTONIC, &start);
	tenant_op_begin();
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
		e = tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
		goto out;
	}
	if ((e = lookup_entry(c, id, &te, &rec, res)) != TENANT_OK)
		goto out;
	/* The intent first: a crash from here on is a purge finished. */
	rec.purge = 1;
	rec.restore[0] = '\0';
	entry_comment(&te, &rec, text, sizeof(text));
	if (set_comment(c, db, text, err, sizeof(err)) != 0) {
		e = tenant_db_fail(res, c, "COMMENT ON DATABASE", err);
		goto out;
	}
	e = purge_db(t, c, db, res);
out:
	if (c != NULL)
		pg_pool_put(t->pool, c);
	tenant_op_end();
	busy_release(db);
	if (e == TENANT_OK)
		log_msg(LOG_INFO, te.name,
		    "trash entry %s (%s) purged in %.0f ms", id, te.name,
		    ms_since(&start));
	else
		log_msg(e == TENANT_TRASH_NOT_FOUND ? LOG_WARNING : LOG_ERR,
		    NULL, "trash entry %s not purged (%s): %s", id,
		    tenant_strerror(e), res->detail);
	return e;
}

/* Step 3 of a restore: web.base.url (frozen) is the new URL. */
static enum tenant_err
set_url(const struct tenant_ctx *t, PGconn *m, const char *db, const char *name,
    const char *domain, struct tenant_result *res)
{
	char err[512], vals[400];
	enum tenant_err e = TENANT_OK;
	PGconn *c;

	/* Names and zones are [a-z0-9._-]: no quoting needed. */
	snprintf(vals, sizeof(vals), "{https://%s.%s,True}", name, domain);
	if (set_connections(m, db, 1, err, sizeof(err)) != 0)
		return tenant_db_fail(res, m, "ALTER DATABASE", err);
	if ((c = pg_connect(t->s, db, err, sizeof(err))) == NULL)
		e = tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: cannot connect to the trashed database: %s",
		    err);
	else {
		if (odoo_set_params(c, "{web.base.url,web.base.url.freeze}",
		        vals, err, sizeof(err)) != 0)
			e = tenant_db_fail(res, c, "setting web.base.url", err);
		PQfinish(c);
	}
	if (set_connections(m, db, 0, err, sizeof(err)) != 0 && e == TENANT_OK)
		e = tenant_db_fail(res, m, "ALTER DATABASE", err);
	return e;
}

/* Steps 2 to 5 of a restore, on c; *undo: the record to go back to. */
static enum tenant_err
restore_steps(const struct tenant_ctx *t, PGconn **cp, const char *db,
    struct trash_entry *te, struct record *rec, const char *name,
    const char *domain, struct tenant_result *res)
{
	char base[TRASH_COMMENT], text[TRASH_COMMENT], pub[TRASH_COMMENT];
	char fs_db[PATH_MAX], fs_dst[PATH_MAX], err[512];
	PGconn *c = *cp;
	enum tenant_err e;
	int rc, moved = 0;

	if (fs_path(t->s, db, fs_db, sizeof(fs_db)) != 0 ||
	    fs_path(t->s, name, fs_dst, sizeof(fs_dst)) != 0)
		return tenant_fail(res, TENANT_INTERNAL, "path too long");
	switch (db_exists(c, name, NULL)) {
	case 0:
		break;
	case 1:
		return tenant_fail(res, TENANT_EXISTS,
		    "subdomain: '%s' already exists", name);
	default:
		return tenant_db_fail(res, c, "looking up the subdomain",
		    PQerrorMessage(c));
	}
	if ((rc = fs_exists(fs_dst)) != 0)
		return rc == 1 ? tenant_fail(res, TENANT_EXISTS,
		                     "subdomain: filestore folder %s already "
		                     "exists; move it away",
		                     fs_dst)
		               : tenant_fail(res, TENANT_INTERNAL,
		                     "filestore: cannot check folder %s: %s",
		                     fs_dst, strerror(errno));
	rec->restore[0] = '\0';
	entry_comment(te, rec, base, sizeof(base));
	snprintf(rec->restore, sizeof(rec->restore), "%s", name);
	entry_comment(te, rec, text, sizeof(text));
	if (set_comment(c, db, text, err, sizeof(err)) != 0)
		return tenant_db_fail(res, c, "COMMENT ON DATABASE", err);
	if ((e = set_url(t, c, db, name, domain, res)) != TENANT_OK)
		goto undo;
	if (fs_exists(fs_db) == 1) {
		if (move_folder(fs_db, fs_dst, err, sizeof(err)) != 0) {
			e = tenant_fail(res, TENANT_INTERNAL, "filestore: %s",
			    err);
			if (fs_exists(fs_db) == 1)
				goto undo;
			return e; /* the clean-up brings it back */
		}
		moved = 1;
	}
	if (te->template_db[0] != '\0')
		snprintf(pub, sizeof(pub),
		    TENANT_COMMENT_PREFIX "domain=%s;template=%s", domain,
		    te->template_db);
	else
		snprintf(pub, sizeof(pub), TENANT_COMMENT_PREFIX "domain=%s",
		    domain);
	if ((e = move_db(c, db, name, pub, 1, res)) == TENANT_OK)
		return TENANT_OK;
	if (pg_conn_lost(c)) {
		switch (move_outcome(t, db, name)) {
		case 1:
			res->detail[0] = '\0';
			return TENANT_OK;
		case 0:
			break;
		default:
			return e; /* the clean-up decides */
		}
		pg_pool_put(t->pool, c);
		if ((*cp = c = pg_pool_get(t->pool, err, sizeof(err))) == NULL)
			return e;
	}
undo:
	if (moved && move_folder(fs_dst, fs_db, err, sizeof(err)) != 0)
		log_err("cannot move %s back: %s (the clean-up does)", fs_dst,
		    err);
	if (set_comment(c, db, base, err, sizeof(err)) != 0)
		log_err("cannot reset the record of %s: %s", db, err);
	return e;
}

enum tenant_err
trash_restore(const struct tenant_ctx *t, struct cf_client *cf, const char *id,
    const char *subdomain, const char *domain, struct tenant_result *res,
    struct tenant *out, struct trash_entry *te)
{
	static const char *const step_names[] = { "restore", "dns" };
	const struct settings *s = t->s;
	char db[TRASH_DB_LEN + 1], err[512], name[NAME_MAX_LEN + 1];
	char dom[256], steps[128], extra[64] = "";
	struct timespec start, ts[3];
	const struct zone *z;
	struct record rec;
	enum tenant_err e;
	PGconn *c = NULL;
	int rc, named = 0;

	memset(res, 0, sizeof(*res));
	memset(te, 0, sizeof(*te));
	memset(ts, 0, sizeof(ts));
	if (id_valid(id) != 0)
		return tenant_fail(res, TENANT_TRASH_NOT_FOUND,
		    "id: not a trash id (16 hexadecimal digits)");
	/* A name given is checked before anything is looked at. */
	if ((subdomain != NULL || domain != NULL) &&
	    (e = tenant_validate_target(t, subdomain != NULL ? subdomain : "xx",
	         domain != NULL ? domain : s->odoo_domain, res)) != TENANT_OK)
		return e;
	db_of(id, db);
	if ((rc = busy_claim(db)) != 0)
		return busy_fail(res, rc, db);
	clock_gettime(CLOCK_MONOTONIC, &start);
	tenant_op_begin();
	clock_gettime(CLOCK_MONOTONIC, &ts[0]);
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
		e = tenant_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable: %s", err);
		goto out;
	}
	if ((e = lookup_entry(c, id, te, &rec, res)) != TENANT_OK)
		goto out;
	snprintf(name, sizeof(name), "%s",
	    subdomain != NULL ? subdomain : te->name);
	snprintf(dom, sizeof(dom), "%s", domain != NULL ? domain : te->domain);
	if ((e = tenant_validate_target(t, name, dom, res)) != TENANT_OK)
		goto out;
	if ((z = settings_zone(s, dom)) != NULL)
		snprintf(dom, sizeof(dom), "%s", z->domain);
	if ((rc = busy_claim(name)) != 0) {
		e = busy_fail(res, rc, name);
		goto out;
	}
	named = 1;
	e = restore_steps(t, &c, db, te, &rec, name, dom, res);
out:
	if (c != NULL)
		pg_pool_put(t->pool, c);
	tenant_op_end();
	busy_release(db);
	if (e == TENANT_OK) {
		clock_gettime(CLOCK_MONOTONIC, &ts[1]);
		snprintf(out->name, sizeof(out->name), "%s", name);
		snprintf(out->domain, sizeof(out->domain), "%s", dom);
		dns_create(s, cf, name, dom, &res->dns);
		clock_gettime(CLOCK_MONOTONIC, &ts[2]);
		snprintf(extra, sizeof(extra), " from the trash (%s), dns %s",
		    id, cf_status_str(res->dns.status));
	}
	if (named)
		busy_release(name);
	steps_text(steps, sizeof(steps), step_names, ts, 2);
	log_outcome(named ? name : id, "restored", e, res, &start, steps,
	    extra);
	return e;
}

int
trash_kept(const char *com)
{
	char op[16];

	tenant_comment_value(com, "op", op, sizeof(op));
	return strcmp(op, "trash") == 0 || strcmp(op, "spare") == 0;
}

void
trash_cleanup_one(const struct tenant_ctx *t, PGconn *c, const char *db,
    const char *com, int allowconn)
{
	char fs_db[PATH_MAX], fs[PATH_MAX], err[512], text[TRASH_COMMENT];
	struct trash_entry te;
	struct record rec;
	struct tenant_result res;
	const char *cand[2];
	int i;

	if (parse_entry(db, com, &te, &rec) != 0 ||
	    fs_path(t->s, db, fs_db, sizeof(fs_db)) != 0)
		return;
	/* A restore stopped while web.base.url was being set. */
	if (allowconn) {
		log_warn("clean-up: closing %s to connections again", db);
		if (set_connections(c, db, 0, err, sizeof(err)) != 0)
			log_err("clean-up: %s: %s", db, err);
	}
	/*
	 * Its folder is beside it, unless a crash stopped a delete after
	 * the database's move (the folder is still filestore/<name>) or a
	 * restore after the folder's (filestore/<restore>). Neither name
	 * can be a tenant's folder: a name with a folder and no database is
	 * refused by creates and restores.
	 */
	cand[0] = rec.restore;
	cand[1] = te.name;
	if (rec.fs && fs_exists(fs_db) == 0)
		for (i = 0; i < 2; i++) {
			if (name_valid(cand[i]) != 0 ||
			    fs_path(t->s, cand[i], fs, sizeof(fs)) != 0 ||
			    fs_exists(fs) != 1 ||
			    db_exists(c, cand[i], NULL) != 0)
				continue;
			log_warn("clean-up: moving %s back beside %s (an "
			         "interrupted %s)",
			    fs, db, i == 0 ? "restore" : "delete");
			if (move_folder(fs, fs_db, err, sizeof(err)) != 0)
				log_err("clean-up: %s", err);
			break;
		}
	if (rec.restore[0] != '\0') {
		rec.restore[0] = '\0';
		entry_comment(&te, &rec, text, sizeof(text));
		if (set_comment(c, db, text, err, sizeof(err)) != 0)
			log_err("clean-up: %s: %s", db, err);
	}
	if (rec.purge || te.expires_at <= (long long)time(NULL)) {
		memset(&res, 0, sizeof(res));
		log_notice("clean-up: purging trash entry %s (%s, %s)", te.id,
		    te.name, rec.purge ? "being purged" : "expired");
		if (purge_db(t, c, db, &res) != TENANT_OK)
			log_err("clean-up: cannot purge %s: %s", db,
			    res.detail);
	}
}
