/*
 * http.h - the REST API of odoo-local-api on libmicrohttpd (CONTRACT 4).
 */
#ifndef NODO_API_HTTP_H
#define NODO_API_HTTP_H

#include <stddef.h>

#include "nodo/settings.h"
#include "nodo/tenant.h"

#define HTTP_MAX_BODY       (64 * 1024) /* bytes, request body (413 past it) */
#define HTTP_CONN_LIMIT     512         /* connections at once */
#define HTTP_PER_IP_LIMIT   32          /* connections at once per address */
#define HTTP_POLL_THREADS   2           /* libmicrohttpd's epoll threads */
#define HTTP_POLL_NICE      (-5) /* their nice, where RLIMIT_NICE allows */
#define HTTP_CONN_TIMEOUT   30   /* seconds of inactivity (backstop) */
#define HTTP_HEADER_S       10   /* s: headers complete after connect/reply */
#define HTTP_BODY_S         5    /* s: a body arrives within this, plus */
#define HTTP_BODY_RATE      8192 /* ... a second per this many bytes */
#define HTTP_REPLY_S        30   /* s: a reply is sent within this */
#define HTTP_HEALTH_WAIT_MS 1000 /* /health waits for a probe while down */
#define HTTP_WARN_S         60 /* a limit is logged once a minute per address */
/* Above 32 KiB libmicrohttpd maps a connection's buffers (mmap), so a closed
 * connection's request bytes go back to the kernel, not to malloc. */
#define HTTP_CONN_MEMORY   (36 * 1024)  /* bytes per connection: headers */
#define HTTP_THREAD_STACK  (512 * 1024) /* bytes, a poll or job thread */
#define HTTP_AUTH_FAILS    10           /* failures a minute per address */
#define HTTP_AUTH_DELAY_MS 1000         /* delay once past that */
#define HTTP_BACKUP_IDLE_S 300 /* s a backup's connection may stay idle */

struct http_server;

/*
 * Serves on listen_fd, a socket bound and listening: HTTP_POLL_THREADS
 * epoll threads serve every connection and run the quick routes; a job
 * pool (jobs.h) runs the slow ones. NULL with a log line on error; the
 * caller closes listen_fd.
 */
struct http_server *http_start(const struct settings *s,
    struct tenant_ctx *tctx, int listen_fd);

/*
 * Stops accepting, waits up to grace_ms for requests in flight, then runs
 * the jobs still queued (a create is never cut short) and stops.
 */
void http_stop(struct http_server *h, int grace_ms);

/* After a reload swapped the settings (tctx->live): drops what they shaped. */
void http_reloaded(struct http_server *h);

/* Requests in flight now (for STATUS= and shutdown). */
int http_inflight(struct http_server *h);

#endif
