/*
 * wmetrics.h - the watcher's metrics (CONTRACT section 12): polls,
 * Cloudflare requests by method and status, the last successful poll and
 * what it found, written after every poll to WATCHER_METRICS_FILE in
 * Prometheus text format. odoo-local-api appends that file to GET
 * /metrics, so one scrape of the API covers both daemons. The file is
 * written whole under a temporary name and renamed over the old one: a
 * reader never sees half of it. Not thread-safe: the watcher has one
 * thread.
 */
#ifndef NODO_WATCHER_WMETRICS_H
#define NODO_WATCHER_WMETRICS_H

#include "nodo/settings.h"
#include "watcher.h"

struct wmetrics;

/* NULL when out of memory; a NULL or "" path means no file. */
struct wmetrics *wmetrics_new(const char *path);

/* Removes the file (the API then reports nodo_watcher_up 0) and frees. */
void wmetrics_free(struct wmetrics *m);

/* A cf_observer_fn: one Cloudflare request and its status. */
void wmetrics_cf(void *arg, const char *method, long http);

/* After a poll: counts it, notes success, writes the file. */
void wmetrics_poll(struct wmetrics *m, struct watcher *w);

/* With DNS disabled: nothing to poll, but the file says we are alive. */
void wmetrics_idle(struct wmetrics *m);

#endif
