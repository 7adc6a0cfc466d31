/*
 * nodelock.c - the node lock of odoo-local-api (nodelock.h).
 *
 * pg_try_advisory_lock(NODELOCK_CLASS, hashtext(current_user)) on a
 * connection of its own: session level, so it lasts as long as that
 * connection and is released by the server whatever way the process ends
 * (a crash, SIGKILL). A lock file under /run would also survive PostgreSQL
 * restarts, but it is per machine and not per role, and the clean-up it
 * guards works on the cluster's databases.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nodo/pg.h"
#include "nodelock.h"

#define STR2(x) #x
#define STR(x)  STR2(x)

int
nodelock_held(const struct nodelock *l)
{
	struct pollfd pfd;

	if (l->c == NULL || PQstatus(l->c) != CONNECTION_OK ||
	    (pfd.fd = PQsocket(l->c)) < 0)
		return 0;
	/* An idle connection receives nothing unless the server ended it. */
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 0;
}

void
nodelock_release(struct nodelock *l)
{
	if (l->c != NULL)
		PQfinish(l->c);
	l->c = NULL;
}

/* Who holds it: the lock query's comment, as pg_stat_activity shows it. */
static void
describe_holder(PGconn *c, char *holder, size_t len)
{
	static const char q[] =
	    "SELECT a.pid, coalesce(substring(a.query from"
	    " '/\\* odoo-local-api (pid=[0-9]+ port=[0-9]+) \\*/'), ''),"
	    " coalesce(host(a.client_addr), 'local socket')"
	    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
	    " WHERE l.locktype = 'advisory' AND l.granted"
	    " AND l.classid = " STR(
	        NODELOCK_CLASS) "::int4::oid"
	                        " AND l.objid = hashtext(current_user)::oid "
	                        "AND l.objsubid = 2";
	PGresult *r = pg_query(c, q, 0, NULL);

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    PQgetvalue(r, 0, 1)[0] != '\0')
		snprintf(holder, len,
		    "odoo-local-api %s (connected from %s, backend %s)",
		    PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
		    PQgetvalue(r, 0, 0));
	else if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		snprintf(holder, len,
		    "a session of role %s (backend pid %s, from %s)", PQuser(c),
		    PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 2));
	else
		snprintf(holder, len, "another session of role %s", PQuser(c));
	PQclear(r);
}

enum nodelock_state
nodelock_take(struct nodelock *l, const struct settings *s, int port,
    char *holder, size_t len)
{
	char q[256];
	PGresult *r;
	enum nodelock_state st = NODELOCK_UNREACHABLE;

	if (nodelock_held(l))
		return NODELOCK_HELD;
	nodelock_release(l);
	holder[0] = '\0';
	if ((l->c = pg_connect(s, PG_MAINT_DB, holder, len)) == NULL)
		return NODELOCK_UNREACHABLE;
	/* Our own numbers only: nothing from outside goes into q. */
	snprintf(q, sizeof(q),
	    "SELECT pg_try_advisory_lock(" STR(
	        NODELOCK_CLASS) ","
	                        " hashtext(current_user)) /* odoo-local-api "
	                        "pid=%ld port=%d */",
	    (long)getpid(), port);
	r = pg_query(l->c, q, 0, NULL);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		st = PQgetvalue(r, 0, 0)[0] == 't' ? NODELOCK_HELD
		                                   : NODELOCK_BUSY;
	else
		snprintf(holder, len, "%s", PQresultErrorMessage(r));
	PQclear(r);
	if (st == NODELOCK_BUSY)
		describe_holder(l->c, holder, len);
	if (st != NODELOCK_HELD)
		nodelock_release(l);
	return st;
}
