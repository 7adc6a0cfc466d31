/*
 * watcher.h - the reconcile loop of odoo-db-watcher (CONTRACT section 6).
 *
 * A poll lists the tenants with one query, reads a zone's records only when
 * the cache of that zone is missing or an hour old, and calls Cloudflare only
 * for names the cache says lack our record (or, with WATCHER_DELETE_ORPHANS,
 * for our records whose database has been gone WATCHER_ORPHAN_GRACE_SECONDS,
 * within the limits of CONTRACT section 8: see reconcile.c). Every
 * Cloudflare call goes through one gate: a budget per poll, a sliding
 * five-minute budget, and the backoff after failures and 429s. Not
 * thread-safe: one watcher, one thread.
 */
#ifndef NODO_WATCHER_H
#define NODO_WATCHER_H

#include <stddef.h>

#include "nodo/settings.h"

/*
 * Cloudflare budgets (Cloudflare allows 1,200 requests per five minutes per
 * user, shared with odoo-local-api and the dashboard). A missing record
 * costs one POST after the zone listing (a drifted one a GET and a PATCH).
 * The watcher may use 1,100 of them in any five minutes, leaving 100 to
 * the API and people, and may spend all of that in one poll: Cloudflare
 * counts requests per five minutes, not bursts, so a poll that stops
 * earlier only makes the work take more polls (1,000 missing records: one
 * poll, issue 10). The backoff after a 429 still applies.
 */
#define WATCHER_POLL_BUDGET   1100 /* Cloudflare requests, one poll */
#define WATCHER_WINDOW_BUDGET 1100 /* Cloudflare requests per window */
#define WATCHER_WINDOW_S      300  /* s, Cloudflare's own window */

#define WATCHER_STR_(x) #x
#define WATCHER_STR(x)  WATCHER_STR_(x) /* a constant as a string literal */

/*
 * What the daemon around the loop wants to be told. stop returns 1 when the
 * pass should end now (SIGTERM is pending): it is asked before every
 * Cloudflare call. alive is called between slow steps so the systemd
 * watchdog can be pinged. Either may be NULL.
 */
struct watcher_hooks {
	int (*stop)(void *arg);
	void (*alive)(void *arg);
	void *arg;
};

struct watcher;

/*
 * s must outlive the watcher. dry_run: look and log, change nothing.
 * Returns NULL (logged) when out of memory.
 */
struct watcher *watcher_new(const struct settings *s, int dry_run,
    const struct watcher_hooks *hooks);
void watcher_free(struct watcher *w);

/*
 * One poll. Returns 1 when every tenant has its record, 0 otherwise
 * (PostgreSQL unreachable, Cloudflare failing or rate limited, conflicts,
 * records still waiting for budget, or, with dry_run, records it would
 * create).
 */
int watcher_poll(struct watcher *w);

/* A one-line summary for systemd's STATUS= (always terminated). */
void watcher_status(const struct watcher *w, char *buf, size_t len);

/* Cloudflare HTTP requests sent so far (figures, tests). */
unsigned long watcher_cf_requests(const struct watcher *w);

/* What the last poll found, for the watcher's metrics. */
struct watcher_facts {
	size_t tenants;   /* tenants the last poll listed */
	size_t records;   /* of them, with their record in place */
	size_t conflicts; /* names held by a record that is not ours */
	size_t pending;   /* waiting for budget, backoff, a zone, or failed */
	size_t failed;    /* Cloudflare calls that failed in the last poll */
	int listed;       /* the last poll could list the tenants */
	int cf_backoff;   /* Cloudflare calls are held back right now */
};

void watcher_facts(const struct watcher *w, struct watcher_facts *f);

/* The watcher's Cloudflare client (NULL with DNS disabled). */
struct cf_client;
struct cf_client *watcher_cf(struct watcher *w);

/* CLOCK_MONOTONIC in milliseconds. */
long long watcher_now_ms(void);

#endif
