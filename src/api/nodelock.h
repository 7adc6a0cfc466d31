/*
 * nodelock.h - one odoo-local-api per node and database role (CONTRACT 8).
 *
 * A session-level advisory lock, keyed by the node's role, held on a
 * dedicated connection for the daemon's lifetime. It lives where the
 * clean-up acts, in PostgreSQL: two APIs of the same role (on one machine
 * or two) would each take the other's creations in progress for leftovers.
 * When the connection dies (PostgreSQL restarted, the backend ended) the
 * lock is gone; nodelock_take() reconnects and takes it again. The lock
 * query carries "pid=N port=P" in a comment, which pg_stat_activity shows
 * to a second daemon of the role so that it can name the first one.
 * Not thread-safe: one thread owns a struct nodelock at a time.
 */
#ifndef NODO_API_NODELOCK_H
#define NODO_API_NODELOCK_H

#include <stddef.h>
#include <libpq-fe.h>

#include "nodo/settings.h"

#define NODELOCK_CLASS 1315923055 /* "Nodo": first advisory lock key */

enum nodelock_state {
	NODELOCK_HELD,        /* this process holds it */
	NODELOCK_BUSY,        /* another session of the role holds it */
	NODELOCK_UNREACHABLE, /* PostgreSQL cannot be asked right now */
};

struct nodelock {
	PGconn *c; /* the connection holding the lock, or NULL */
};

/*
 * Makes sure the lock is held: 0 round trips when its connection is alive,
 * else connects and tries to take it. On NODELOCK_BUSY, holder (len bytes)
 * describes who has it ("pid 123, port 8070 ..."); on NODELOCK_UNREACHABLE
 * it says why. port is ours, written into the lock query for others.
 */
enum nodelock_state nodelock_take(struct nodelock *l, const struct settings *s,
    int port, char *holder, size_t len);

/* 1 while the lock's connection is alive (a poll(), no round trip). */
int nodelock_held(const struct nodelock *l);

/* Lets go: closes the connection (the server releases the lock). */
void nodelock_release(struct nodelock *l);

#endif
