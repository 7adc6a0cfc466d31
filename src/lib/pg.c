/*
 * pg.c - connections to PostgreSQL as the node's role.
 *
 * The API keeps a few idle connections to the maintenance database so that
 * a list or a health check costs one round trip, not a connection set-up.
 * Statements are sent with libpq's asynchronous calls and waited for with
 * poll() and a deadline, so that a hung server (pg.h) costs a bounded wait.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "nodo/log.h"
#include "nodo/pg.h"
#include "nodo/util.h"

#define STR2(x) #x
#define STR(x)  STR2(x)

/* Every session's limits (pg.h), as libpq's "options" keyword. */
#define PG_SESSION_OPTIONS                                                     \
	"-c statement_timeout=" STR(                                           \
	    PG_STATEMENT_TIMEOUT_MS) " -c lock_timeout=" STR(PG_LOCK_TIMEOUT_MS)

struct pg_pool {
	const struct settings *s;
	pthread_mutex_t mu;
	pthread_cond_t freed; /* a connection went back or was closed */
	PGconn *idle[PG_POOL_MAX_IDLE]; /* a stack: the newest on top */
	time_t since[PG_POOL_MAX_IDLE]; /* when each went idle (monotonic) */
	unsigned gen[PG_POOL_MAX_IDLE]; /* hung_gen when each went idle */
	size_t nidle;
	size_t nopen; /* idle plus handed out */
};

/*
 * Counts the times a server was found hung (a reply overdue). The only
 * process-wide state here: an idle connection parked before the last such
 * time is retired rather than tried, as it most likely talks to the same
 * server.
 */
static atomic_uint hung_gen;

/* When some connection last got a reply (monotonic ms): pg_ping(). */
static atomic_llong last_reply_ms;

/* The connection this thread last gave up waiting on (pg_result_error). */
static _Thread_local const PGconn *gave_up_on;
static _Thread_local int gave_up_ms;
static _Thread_local int timed_out; /* pg_timed_out() */

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

/*
 * Drives a started connection to the end within PG_CONNECT_TIMEOUT seconds
 * in all (libpq leaves the deadline of PQconnectPoll() to its caller).
 * 0 when it is made; -1 with libpq's message, or why not, in err.
 */
static int
connect_poll(PGconn *c, char *err, size_t errlen)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	long long deadline = nodo_mono_ms() + PG_CONNECT_TIMEOUT * 1000LL;
	long long left;
	struct pollfd pfd;
	int r;

	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED ||
		    PQstatus(c) == CONNECTION_BAD) {
			/* libpq's messages never contain the password. */
			copy_msg(err, errlen, "", PQerrorMessage(c));
			return -1;
		}
		if ((left = deadline - nodo_mono_ms()) <= 0) {
			copy_msg(err, errlen, "", "timeout expired");
			return -1;
		}
		pfd.fd =
		    PQsocket(c); /* it changes when libpq tries another host */
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR) {
			copy_msg(err, errlen, "poll: ", strerror(errno));
			return -1;
		}
		if (r > 0)
			st = PQconnectPoll(c);
	}
	return 0;
}

PGconn *
pg_connect(const struct settings *s, const char *dbname, char *err,
    size_t errlen)
{
	const char *keys[16], *vals[16];
	int n = 0;
	PGconn *c;

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
	keys[n] = "keepalives";
	vals[n++] = "1";
	keys[n] = "keepalives_idle";
	vals[n++] = STR(PG_KEEPALIVES_IDLE);
	keys[n] = "keepalives_interval";
	vals[n++] = STR(PG_KEEPALIVES_INTERVAL);
	keys[n] = "keepalives_count";
	vals[n++] = STR(PG_KEEPALIVES_COUNT);
	keys[n] = "tcp_user_timeout";
	vals[n++] = STR(PG_TCP_USER_TIMEOUT_MS);
	keys[n] = "options";
	vals[n++] = PG_SESSION_OPTIONS;
	/* The clean-up ends only the API's own sessions: it names them. */
	keys[n] = "application_name";
	vals[n++] = s->program == SETTINGS_API ? PG_APP_API : PG_APP_WATCHER;
	keys[n] = NULL;
	vals[n] = NULL;

	/*
	 * Started, not made in one call: the notice processor must be in place
	 * before libpq reads anything. A FATAL sent right after ReadyForQuery
	 * (a fast shutdown racing the connection) arrives in the same read and
	 * is handed to the notice processor at once.
	 */
	if ((c = PQconnectStartParams(keys, vals, 0)) == NULL) {
		copy_msg(err, errlen, "", "out of memory");
		return NULL;
	}
	PQsetNoticeProcessor(c, notice, NULL);
	if (connect_poll(c, err, errlen) != 0) {
		PQfinish(c);
		return NULL;
	}
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
			if (p->gen[p->nidle] == atomic_load(&hung_gen) &&
			    idle_alive(c)) {
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
		p->gen[p->nidle] = atomic_load(&hung_gen);
		p->idle[p->nidle++] = c;
		pthread_cond_signal(&p->freed);
		c = NULL;
	} else
		slot_freed(p);
	pthread_mutex_unlock(&p->mu);
	if (c != NULL)
		PQfinish(c);
}

/*
 * The reply is overdue: the server is hung. Shutting the socket down makes
 * libpq read end-of-file at once, so the connection ends up lost
 * (CONNECTION_BAD) through libpq's own paths.
 */
static void
give_up(PGconn *c, int timeout_ms)
{
	int fd = PQsocket(c);

	if (fd >= 0)
		(void)shutdown(fd, SHUT_RDWR);
	gave_up_on = c;
	gave_up_ms = timeout_ms;
	timed_out = 1;
	atomic_fetch_add(&hung_gen, 1);
	log_warn("PostgreSQL sent no reply in %d ms (is the server hung?): "
	         "connection closed",
	    timeout_ms);
}

/*
 * Until libpq holds a whole result or the connection failed; gives up at
 * deadline (monotonic ms; 0: never). 0, or -1 when it gave up.
 */
static int
wait_input(PGconn *c, long long deadline, int timeout_ms)
{
	struct pollfd pfd;
	long long left;

	while (PQisBusy(c)) {
		if ((pfd.fd = PQsocket(c)) < 0)
			return 0;
		pfd.events = POLLIN;
		pfd.revents = 0;
		left = -1;
		if (deadline > 0 && (left = deadline - nodo_mono_ms()) <= 0) {
			give_up(c, timeout_ms);
			return -1;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			give_up(c, timeout_ms);
			return -1;
		}
		if (!PQconsumeInput(c))
			return 0; /* lost: PQgetResult() has the error */
	}
	return 0;
}

/*
 * What was sent on c, collected as PQexec() does (the last result), at
 * most timeout_ms (-1: no limit). NULL only when out of memory.
 */
static PGresult *
collect(PGconn *c, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? nodo_mono_ms() + timeout_ms : 0;
	PGresult *r, *last = NULL;
	ExecStatusType st;
	const char *code;
	int waiting = 1;

	for (;;) {
		/* Once given up, the socket reads EOF: nothing blocks. */
		if (waiting && wait_input(c, deadline, timeout_ms) != 0)
			waiting = 0;
		if ((r = PQgetResult(c)) == NULL)
			break;
		PQclear(last);
		last = r;
		st = PQresultStatus(r);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
		    st == PGRES_COPY_BOTH || PQstatus(c) == CONNECTION_BAD)
			break;
	}
	if (waiting && last != NULL && PQstatus(c) == CONNECTION_OK)
		atomic_store(&last_reply_ms,
		    nodo_mono_ms()); /* the server answers */
	if (last != NULL &&
	    (code = PQresultErrorField(last, PG_DIAG_SQLSTATE)) != NULL &&
	    (strcmp(code, "57014") == 0 || strcmp(code, "55P03") == 0))
		timed_out = 1;
	return last != NULL ? last : PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
}

int
pg_timed_out(void)
{
	return timed_out;
}

static PGresult *
run(PGconn *c, const char *sql, int nparams, const char *const *params,
    int timeout_ms)
{
	gave_up_on = NULL;
	timed_out = 0;
	if (!PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0))
		return PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
	return collect(c, timeout_ms);
}

PGresult *
pg_query(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	return run(c, sql, nparams, params, PG_REPLY_TIMEOUT_MS);
}

const char *
pg_result_error(PGconn *c, const PGresult *r)
{
	static _Thread_local char buf[160];
	const char *m;

	if (c != NULL && gave_up_on == c) {
		snprintf(buf, sizeof(buf),
		    "PostgreSQL sent no reply in %d ms (is the server hung?); "
		    "the connection was closed",
		    gave_up_ms);
		return buf;
	}
	if (r != NULL && *(m = PQresultErrorMessage(r)) != '\0')
		return m;
	return c != NULL ? PQerrorMessage(c) : "out of memory";
}

/* 0 when r is a success, else -1 with err and *sqlstate; clears r. */
static int
result_rc(PGconn *c, PGresult *r, char *err, size_t errlen, char sqlstate[6])
{
	ExecStatusType st = PQresultStatus(r);
	const char *code;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
	    st == PGRES_EMPTY_QUERY) {
		PQclear(r);
		return 0;
	}
	if (sqlstate != NULL && r != NULL &&
	    (code = PQresultErrorField(r, PG_DIAG_SQLSTATE)) != NULL)
		snprintf(sqlstate, 6, "%s", code);
	copy_msg(err, errlen, "", pg_result_error(c, r));
	PQclear(r);
	return -1;
}

int
pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
    char *err, size_t errlen, char sqlstate[6])
{
	if (sqlstate != NULL)
		sqlstate[0] = '\0';
	return result_rc(c, pg_query(c, sql, nparams, params), err, errlen,
	    sqlstate);
}

int
pg_exec_long(PGconn *c, const char *sql, char *err, size_t errlen,
    char sqlstate[6])
{
	char rerr[256];
	int rc, was_timeout;

	if (pg_exec(c, "SET statement_timeout = 0", 0, NULL, err, errlen,
	        sqlstate) != 0)
		return -1;
	if (sqlstate != NULL)
		sqlstate[0] = '\0';
	rc = result_rc(c, run(c, sql, 0, NULL, -1), err, errlen, sqlstate);
	was_timeout = timed_out;
	/* A lost connection is closed by its owner: nothing to reset. */
	if (!pg_conn_lost(c) &&
	    pg_exec(c, "RESET statement_timeout", 0, NULL, rerr, sizeof(rerr),
	        NULL) != 0)
		log_warn("RESET statement_timeout failed: %s", rerr);
	timed_out = was_timeout; /* the statement's, not RESET's */
	return rc;
}

int
pg_ping(PGconn *c, char *err, size_t errlen)
{
	gave_up_on = NULL;
	timed_out = 0;
	/* The server answered a moment ago: that is the round trip. */
	if (nodo_mono_ms() - atomic_load(&last_reply_ms) < PG_PING_FRESH_MS)
		return 0;
	if (!PQsendQuery(c, "")) {
		copy_msg(err, errlen, "", PQerrorMessage(c));
		return -1;
	}
	return result_rc(c, collect(c, PG_PING_TIMEOUT_MS), err, errlen, NULL);
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
		p->gen[i - k] = p->gen[i];
	}
	p->nidle -= k;
	p->nopen -= k;
	if (k > 0)
		pthread_cond_broadcast(&p->freed);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < n; i++)
		PQfinish(old[i]);
}
