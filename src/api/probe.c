/*
 * probe.c - the PostgreSQL probe behind /health.
 *
 * One connection to the maintenance database, owned by this thread: every
 * PROBE_INTERVAL_MS it makes one round trip (pg_ping(), at most
 * PG_PING_TIMEOUT_MS: a hung server is "unreachable" after that, not a hung
 * probe). Between probes it polls the connection's socket: an idle
 * connection receives nothing, so anything readable is the server ending
 * it (shutdown, restart, terminate), noticed at once. While unreachable it
 * retries every PROBE_RETRY_MS, or at once when /health asks (probe_kick).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "nodo/log.h"
#include "nodo/pg.h"
#include "probe.h"

struct probe {
	const struct settings *s;
	void (*notify)(void *);
	void *arg;
	int efd; /* eventfd: a kick or the stop */
	atomic_int stop;
	int joined;
	atomic_int state;
	atomic_ulong started, ended;
	pthread_t thread;
};

/*
 * Waits up to ms for a kick, the stop, or the server's side of c (then
 * *lost is set when c is dead).
 */
static void
wait_next(struct probe *p, PGconn *c, int ms, int *lost)
{
	struct pollfd pfd[2] = { { .fd = p->efd, .events = POLLIN },
		{ .fd = c != NULL ? PQsocket(c) : -1, .events = POLLIN } };
	uint64_t v;

	*lost = 0;
	if (poll(pfd, 2, ms) <= 0)
		return;
	if (pfd[0].revents & POLLIN) {
		if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_debug("probe: eventfd read: %s", strerror(errno));
	}
	if (c != NULL && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
		if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
			*lost = 1;
		else {
			PGresult *r;

			while ((r = PQgetResult(c)) != NULL)
				PQclear(r);
		}
	}
}

static void
set_state(struct probe *p, int up, const char *err)
{
	int was = atomic_exchange(&p->state, up);
	char msg[256];
	size_t n;

	if (was == up)
		return;
	if (up) {
		if (was == 0)
			log_notice("PostgreSQL reachable again");
		return;
	}
	snprintf(msg, sizeof(msg), "%s", err);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	for (char *q = msg; (q = strchr(q, '\n')) != NULL; q++)
		*q = ' ';
	log_warn("PostgreSQL unreachable: %s (/health answers 503)", msg);
}

static void *
run(void *arg)
{
	struct probe *p = arg;
	PGconn *c = NULL;
	char err[256];
	int up, lost;

	while (!atomic_load(&p->stop)) {
		atomic_fetch_add(&p->started, 1);
		err[0] = '\0';
		if (c == NULL)
			c = pg_connect(p->s, PG_MAINT_DB, err, sizeof(err));
		up = c != NULL && pg_ping(c, err, sizeof(err)) == 0;
		if (!up && c != NULL) {
			PQfinish(c);
			c = NULL;
		}
		set_state(p, up, err);
		atomic_fetch_add(&p->ended, 1);
		p->notify(p->arg);
		wait_next(p, c, up ? PROBE_INTERVAL_MS : PROBE_RETRY_MS, &lost);
		if (lost) {
			/* Noticed now; the next probe (at once) says why. */
			PQfinish(c);
			c = NULL;
		}
	}
	if (c != NULL)
		PQfinish(c);
	return NULL;
}

struct probe *
probe_start(const struct settings *s, void (*notify)(void *), void *arg)
{
	struct probe *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;

	if (p == NULL) {
		log_err("probe: out of memory");
		return NULL;
	}
	p->s = s;
	p->notify = notify;
	p->arg = arg;
	atomic_init(&p->state, -1);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_err("probe: eventfd: %s", strerror(errno));
		free(p);
		return NULL;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&p->thread, &attr, run, p) != 0) {
		log_err("probe: cannot start its thread");
		pthread_attr_destroy(&attr);
		close(p->efd);
		free(p);
		return NULL;
	}
	pthread_attr_destroy(&attr);
	pthread_setname_np(p->thread, "nodo-probe");
	return p;
}

static void
kick(struct probe *p)
{
	uint64_t one = 1;

	if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("probe: eventfd write: %s", strerror(errno));
}

void
probe_halt(struct probe *p)
{
	if (p->joined)
		return;
	atomic_store(&p->stop, 1);
	kick(p);
	pthread_join(p->thread, NULL);
	p->joined = 1;
}

void
probe_free(struct probe *p)
{
	if (p == NULL)
		return;
	probe_halt(p);
	close(p->efd);
	free(p);
}

int
probe_state(struct probe *p)
{
	return atomic_load(&p->state);
}

unsigned long
probe_kick(struct probe *p)
{
	unsigned long target = atomic_load(&p->started) + 1;

	kick(p);
	return target;
}

unsigned long
probe_ended(struct probe *p)
{
	return atomic_load(&p->ended);
}
