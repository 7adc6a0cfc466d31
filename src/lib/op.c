/*
 * op.c - what every lifecycle operation shares: the lock that keeps the
 * clean-up away from live operations, the busy-name table, and the
 * clean-up itself, which reads each internal database's record
 * (TENANT_COMMENT_PREFIX "op=...") and finishes or rolls back what a dead
 * process left (docs/DESIGN.md, "Trash and the step machine").
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nodo/filestore.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/pg.h"
#include "nodo/tenant.h"
#include "nodo/tenant_steps.h"
#include "nodo/trash.h"

#define TENANT_MAX_BUSY    64  /* names being created or deleted at once */
#define TENANT_STALE_TRIES 500 /* x 20 ms: a dead creation's backends end */

/*
 * Held shared by each creation, exclusively by the clean-up, so that the
 * clean-up never takes a live creation's internal names for leftovers.
 */
static pthread_rwlock_t create_lock = PTHREAD_RWLOCK_INITIALIZER;

/* Names with a creation or deletion in progress in this process. */
static pthread_mutex_t busy_mu = PTHREAD_MUTEX_INITIALIZER;
static char busy[TENANT_MAX_BUSY][NAME_MAX_LEN + 1];

int
busy_claim(const char *name)
{
	int i, slot = -1;

	pthread_mutex_lock(&busy_mu);
	for (i = 0; i < TENANT_MAX_BUSY; i++) {
		if (busy[i][0] == '\0') {
			if (slot == -1)
				slot = i;
		} else if (strcmp(busy[i], name) == 0) {
			slot = -2;
			break;
		}
	}
	if (slot >= 0)
		snprintf(busy[slot], sizeof(busy[slot]), "%s", name);
	pthread_mutex_unlock(&busy_mu);
	return slot >= 0 ? 0 : slot == -2 ? -1 : -2;
}

void
busy_release(const char *name)
{
	int i;

	pthread_mutex_lock(&busy_mu);
	for (i = 0; i < TENANT_MAX_BUSY; i++)
		if (strcmp(busy[i], name) == 0) {
			busy[i][0] = '\0';
			break;
		}
	pthread_mutex_unlock(&busy_mu);
}

void
tenant_op_begin(void)
{
	pthread_rwlock_rdlock(&create_lock);
}

void
tenant_op_end(void)
{
	pthread_rwlock_unlock(&create_lock);
}

/* busy_claim() failed: the name is busy (409) or the table is full. */
enum tenant_err
busy_fail(struct tenant_result *res, int rc, const char *name)
{
	if (rc == -1)
		return tenant_fail(res, TENANT_EXISTS,
		    "subdomain: '%s' is being created or deleted right now",
		    name);
	return tenant_fail(res, TENANT_INTERNAL,
	    "too many creations and deletions at once (%d); retry later",
	    TENANT_MAX_BUSY);
}

/*
 * Internal filestore folders nobody owns any more: not the folder of a
 * trash entry or a spare (an internal database kept, named in keep).
 */
static void
cleanup_folders(const struct settings *s, PGconn *c)
{
	static const char q[] =
	    "SELECT coalesce(shobj_description(oid, 'pg_database'), '')"
	    " FROM pg_database WHERE datname = $1";
	char dir[PATH_MAX], p[PATH_MAX];
	DIR *d;
	struct dirent *de;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/filestore", s->data_dir) >=
	        sizeof(dir) ||
	    (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		const char *prm[1] = { de->d_name };
		PGresult *r;
		int keep;

		if (strncmp(de->d_name, NAME_TMP_PREFIX,
		        strlen(NAME_TMP_PREFIX)) != 0)
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >=
		    sizeof(p))
			continue;
		/* Unsure (an error): kept, looked at again next time. */
		r = pg_query(c, q, 1, prm);
		keep = PQresultStatus(r) != PGRES_TUPLES_OK ||
		    (PQntuples(r) == 1 && trash_kept(PQgetvalue(r, 0, 0)));
		PQclear(r);
		if (keep)
			continue;
		log_warn("removing leftover filestore folder %s", p);
		if (fs_remove_tree(p) != 0)
			log_err("cannot remove %s: %s", p, strerror(errno));
	}
	closedir(d);
}

/*
 * Ends the backends a dead creation left working on internal names (a
 * CREATE DATABASE goes on, and commits, after its client is gone) and
 * waits for them, so that what is listed next stays the truth. Only the
 * API's own (application_name PG_APP_API, the node's role): never a
 * session of anyone else, whatever it is doing.
 */
static void
end_stale_sessions(PGconn *c)
{
	static const char q[] =
	    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	    " WHERE pid <> pg_backend_pid() AND usename = current_user"
	    " AND application_name = '" PG_APP_API "'"
	    " AND state <> 'idle' AND (left(datname, 6) = '" NAME_TMP_PREFIX
	    "' OR strpos(query, 'DATABASE \"" NAME_TMP_PREFIX "') > 0)";
	PGresult *r;
	int tries;

	for (tries = 0; tries < TENANT_STALE_TRIES; tries++) {
		long n = -1;

		r = pg_query(c, q, 0, NULL);
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		if (n <= 0)
			return;
		if (tries == 0)
			log_warn("clean-up: ending %ld session(s) left by an "
			         "interrupted creation",
			    n);
		usleep(20 * 1000);
	}
	log_warn("clean-up: sessions of an interrupted creation still run");
}

int
tenant_cleanup(const struct tenant_ctx *t)
{
	static const char q[] =
	    "SELECT datname, coalesce(shobj_description(oid, 'pg_database'),"
	    " ''), datallowconn FROM pg_database WHERE left(datname, 6) = "
	    "'" NAME_TMP_PREFIX "' AND datdba = (SELECT oid FROM pg_roles"
	    " WHERE rolname = current_user)";
	char err[512], fs[PATH_MAX];
	PGconn *c;
	PGresult *r;
	int i, rc = 0;

	/* Creations in progress: not now, the caller tries again later. */
	if (pthread_rwlock_trywrlock(&create_lock) != 0)
		return -1;
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
		log_err("clean-up: PostgreSQL is unreachable: %s", err);
		pthread_rwlock_unlock(&create_lock);
		return -1;
	}
	end_stale_sessions(c);
	r = pg_query(c, q, 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_err("clean-up: %s", pg_result_error(c, r));
		PQclear(r);
		pg_pool_put(t->pool, c);
		pthread_rwlock_unlock(&create_lock);
		return -1;
	}
	for (i = 0; i < PQntuples(r); i++) {
		const char *tmp = PQgetvalue(r, i, 0);
		const char *com = PQgetvalue(r, i, 1);
		char target[NAME_MAX_LEN + 1];

		/* Trash entries and spares: their own modules decide. */
		if (trash_kept(PQgetvalue(r, i, 1))) {
			trash_cleanup_one(t, c, tmp, PQgetvalue(r, i, 1),
			    PQgetvalue(r, i, 2)[0] == 't');
			continue;
		}
		/*
		 * The rest is a dead creation's (op=create, a create's or a
		 * restore's; the legacy "domain=D;creating=NAME"; a missing
		 * or unknown op): dropped.
		 */
		tenant_comment_value(com, "target", target, sizeof(target));
		if (target[0] == '\0')
			tenant_comment_value(com, "creating", target,
			    sizeof(target));
		log_warn("removing %s, left by an interrupted creation%s%s",
		    tmp, target[0] ? " of " : "", target);
		if (drop_database(c, tmp, err, sizeof(err)) != 0) {
			/* Logged; tried again at the next clean-up. */
			log_err("cannot drop %s: %s", tmp, err);
			continue;
		}
		/*
		 * A crash between the folder's rename and the database's
		 * leaves filestore/<target> without its database: ours.
		 */
		if (name_valid(target) == 0 &&
		    db_exists(c, target, NULL) == 0 &&
		    fs_path(t->s, target, fs, sizeof(fs)) == 0 &&
		    fs_exists(fs) == 1) {
			log_warn("removing %s, left by that creation", fs);
			fs_remove_tree(fs);
		}
	}
	PQclear(r);
	cleanup_folders(t->s, c);
	pg_pool_put(t->pool, c);
	pthread_rwlock_unlock(&create_lock);
	return rc;
}
