/*
 * probe.h - the PostgreSQL state that /health reports, kept by a thread of
 * its own on a connection of its own, so that /health never waits for a
 * lock, the pool or PostgreSQL.
 */
#ifndef NODO_API_PROBE_H
#define NODO_API_PROBE_H

#include "nodo/settings.h"

#define PROBE_INTERVAL_MS 2000 /* between two round trips while reachable */
#define PROBE_RETRY_MS    1000 /* between connection attempts while down */

struct probe;

/*
 * Starts the thread; notify(arg) is called on it after every probe ends.
 * NULL with a log line on error.
 */
struct probe *probe_start(const struct settings *s, void (*notify)(void *),
    void *arg);

/*
 * Stops the thread (it may be connecting: up to PG_CONNECT_TIMEOUT s);
 * the state stays readable until probe_free (NULL is fine).
 */
void probe_halt(struct probe *p);
void probe_free(struct probe *p);

/* 1 reachable, 0 not, -1 before the first probe ended. Thread-safe. */
int probe_state(struct probe *p);

/*
 * Asks for a probe now. Returns the number of probes that will have ended
 * (see probe_ended) once one that started after this call has ended.
 */
unsigned long probe_kick(struct probe *p);

/* Probes ended so far. Thread-safe. */
unsigned long probe_ended(struct probe *p);

#endif
