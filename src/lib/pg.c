/*
 * pg.c - connections to PostgreSQL as the node's role.
 *
 * The API keeps a few idle connections to the maintenance database so that
 * a list or a health check costs one round trip, not a connection set-up.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nodo/log.h"
#include "nodo/pg.h"

#define STR2(x) #x
#define STR(x)  STR2(x)

struct pg_pool {
	const struct settings *s;
	pthread_mutex_t mu;
	pthread_cond_t freed; /* a connection went back or was closed */
	PGconn *idle[PG_POOL_MAX_IDLE]; /* a stack: the newest on top */
	time_t since[PG_POOL_MAX_IDLE]; /* when each went idle (monotonic) */
	size_t nidle;
	size_t nopen; /* idle plus handed out */
};

/* libpq's message without its trailing newline. */
static void
copy_msg(char *err, size_t errlen, const char *prefix, const char *msg)
{
	size_t n;

	if (err == NULL || errlen == 0)
		return;
	snprintf(err, errlen, "%s%s", prefix, msg != NULL ? msg : "");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/*
 * libpq prints server notices (WARNING: terminating connection due to
 * immediate shutdown...) on stderr by default; they go through the log.
 */
static void
notice(void *arg, const char *msg)
{
	char buf[512], *p;

	copy_msg(buf, sizeof(buf), "postgres: ", msg);
	for (p = buf; (p = strchr(p, '\n')) != NULL; p++)
		*p = ' ';
	log_debug("%s", buf);
}

PGconn *
pg_connect(const struct settings *s, const char *dbname, char *err,
    size_t errlen)
{
	const char *keys[8], *vals[8];
	char timeout[16];
	int n = 0;
	PGconn *c;

	snprintf(timeout, sizeof(timeout), "%d", PG_CONNECT_TIMEOUT);
	if (s->pg_host != NULL) {
		keys[n] = "host";
		vals[n++] = s->pg_host;
	}
	if (s->pg_port != NULL) {
		keys[n] = "port";
		vals[n++] = s->pg_port;
	}
	if (s->pg_user != NULL) {
		keys[n] = "user";
		vals[n++] = s->pg_user;
	}
	if (s->pg_password != NULL) {
		keys[n] = "password";
		vals[n++] = s->pg_password;
	}
	keys[n] = "dbname";
	vals[n++] = dbname;
	keys[n] = "connect_timeout";
	vals[n++] = timeout;
	/* The clean-up ends only the API's own sessions: it names them. */
	keys[n] = "application_name";
	vals[n++] = s->program == SETTINGS_API ? PG_APP_API : PG_APP_WATCHER;
	keys[n] = NULL;
	vals[n] = NULL;

	c = PQconnectdbParams(keys, vals, 0);
	if (c == NULL) {
		copy_msg(err, errlen, "", "out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		/* libpq's messages never contain the password. */
		copy_msg(err, errlen, "", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, notice, NULL);
	return c;
}

struct pg_pool *
pg_pool_new(const struct settings *s)
{
	struct pg_pool *p;
	pthread_condattr_t ca;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->s = s;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->freed, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

void
pg_pool_free(struct pg_pool *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nidle; i++)
		PQfinish(p->idle[i]);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/*
 * An idle connection receives nothing (no LISTEN, no query): anything to
 * read means the server ended it (restart, shutdown, terminate) or is
 * about to. That costs a poll(), not a round trip.
 */
static int
idle_alive(PGconn *c)
{
	struct pollfd pfd;

	if (PQstatus(c) != CONNECTION_OK || (pfd.fd = PQsocket(c)) < 0)
		return 0;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 0;
}

/* A connection slot is gone: wake one waiter. Called with mu held. */
static void
slot_freed(struct pg_pool *p)
{
	p->nopen--;
	pthread_cond_signal(&p->freed);
}

PGconn *
pg_pool_get(struct pg_pool *p, char *err, size_t errlen)
{
	struct timespec deadline;
	PGconn *c;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += PG_POOL_WAIT_MS / 1000;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->nidle > 0) {
			c = p->idle[--p->nidle];
			if (idle_alive(c)) {
				pthread_mutex_unlock(&p->mu);
				return c;
			}
			PQfinish(c);
			slot_freed(p);
			continue;
		}
		if (p->nopen < PG_POOL_MAX_OPEN)
			break;
		log_debug("all %d database connections in use: waiting",
		    PG_POOL_MAX_OPEN);
		if (pthread_cond_timedwait(&p->freed, &p->mu, &deadline) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&p->mu);
			copy_msg(err, errlen, "",
			    "all " STR(
			        PG_POOL_MAX_OPEN) " database connections are "
			                          "in use");
			return NULL;
		}
	}
	p->nopen++;
	pthread_mutex_unlock(&p->mu);
	if ((c = pg_connect(p->s, PG_MAINT_DB, err, errlen)) == NULL) {
		pthread_mutex_lock(&p->mu);
		slot_freed(p);
		pthread_mutex_unlock(&p->mu);
	}
	return c;
}

void
pg_pool_put(struct pg_pool *p, PGconn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	if (PQstatus(c) == CONNECTION_OK &&
	    PQtransactionStatus(c) == PQTRANS_IDLE &&
	    p->nidle < PG_POOL_MAX_IDLE) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		p->since[p->nidle] = now.tv_sec;
		p->idle[p->nidle++] = c;
		pthread_cond_signal(&p->freed);
		c = NULL;
	} else
		slot_freed(p);
	pthread_mutex_unlock(&p->mu);
	if (c != NULL)
		PQfinish(c);
}

int
pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
    char *err, size_t errlen, char sqlstate[6])
{
	PGresult *r;
	ExecStatusType st;
	const char *code;

	if (sqlstate != NULL)
		sqlstate[0] = '\0';
	r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return 0;
	}
	if (sqlstate != NULL && r != NULL &&
	    (code = PQresultErrorField(r, PG_DIAG_SQLSTATE)) != NULL)
		snprintf(sqlstate, 6, "%s", code);
	copy_msg(err, errlen, "",
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	return -1;
}

int
pg_conn_lost(PGconn *c)
{
	return c == NULL || PQstatus(c) != CONNECTION_OK;
}

void
pg_pool_trim(struct pg_pool *p, int max_idle_s)
{
	PGconn *old[PG_POOL_MAX_IDLE];
	struct timespec now;
	size_t i, k = 0, n = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&p->mu);
	/* The stack's bottom has been idle longest. */
	while (k < p->nidle && now.tv_sec - p->since[k] >= max_idle_s)
		old[n++] = p->idle[k++];
	for (i = k; i < p->nidle; i++) {
		p->idle[i - k] = p->idle[i];
		p->since[i - k] = p->since[i];
	}
	p->nidle -= k;
	p->nopen -= k;
	if (k > 0)
		pthread_cond_broadcast(&p->freed);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < n; i++)
		PQfinish(old[i]);
}
