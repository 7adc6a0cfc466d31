/*
 * http.h - the REST API of odoo-local-api on libmicrohttpd (CONTRACT 4).
 */
#ifndef NODO_API_HTTP_H
#define NODO_API_HTTP_H

#include <stddef.h>

#include "nodo/settings.h"
#include "nodo/tenant.h"

#define HTTP_MAX_BODY       (64 * 1024)  /* bytes, request body (413 past it) */
#define HTTP_CONN_LIMIT     256          /* connections at once */
#define HTTP_PER_IP_LIMIT   128          /* connections at once per address */
#define HTTP_CONN_TIMEOUT   30           /* seconds of inactivity */
#define HTTP_CONN_MEMORY    (32 * 1024)  /* bytes per connection: headers */
#define HTTP_THREAD_STACK   (512 * 1024) /* bytes, one connection's thread */
#define HTTP_BACKUP_WAIT_MS 1000 /* a backup's reader waits this for bytes */
#define HTTP_BACKUP_IDLE_S  300  /* s a backup's connection may stay idle */
#define HTTP_AUTH_FAILS     10   /* failures a minute per address */
#define HTTP_AUTH_DELAY_MS  1000 /* delay once past that */

struct http_server;

/* Starts listening (threads run requests). NULL with a log line on error. */
struct http_server *http_start(const struct settings *s,
    struct tenant_ctx *tctx);

/* Stops accepting, waits up to grace_ms for requests in flight, stops. */
void http_stop(struct http_server *h, int grace_ms);

/* Requests in flight now (for STATUS= and shutdown). */
int http_inflight(struct http_server *h);

#endif
