/*
 * http.c - routes, authentication and JSON replies of odoo-local-api.
 *
 * libmicrohttpd runs one thread per connection, so a tenant creation (about
 * half a second) never delays /health or a list on another connection. The
 * request pattern is journal-remote's: method, path, key and Content-Length
 * are checked on the first callback before anything is allocated for the
 * body; the body is accumulated up to HTTP_MAX_BODY; the answer is given on
 * the final callback; the request is logged and freed on completion.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "nodo/backup.h"
#include "nodo/cloudflare.h"
#include "nodo/jsonreq.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/pg.h"
#include "http.h"

#define AUTH_SLOTS 256 /* addresses whose failures we remember */

struct http_server {
	struct MHD_Daemon *d;
	const struct settings *s;
	struct tenant_ctx *t;
	unsigned char key_digest[SHA256_DIGEST_LENGTH];
	atomic_int inflight;
	int event_loop; /* poll threads serve many connections: never wait */

	pthread_mutex_t auth_mu; /* failed keys per address, a minute */
	struct {
		struct in6_addr addr;
		time_t start;
		int fails;
	} auth[AUTH_SLOTS];
};

enum route_id { R_HEALTH, R_TENANTS, R_TENANT, R_DOMAINS };

struct request {
	struct timespec start;
	int route; /* -1 until routed */
	int status;
	char method[8];
	char path[64]; /* known routes only: never user text */
	char sub[NAME_MAX_LEN +
	    1]; /* {subdomain} of the path ("" if too long) */
	char *body;
	size_t len;
	int too_large;
};

typedef int (
    *route_fn)(struct http_server *, struct MHD_Connection *, struct request *);

static int do_health(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_list(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_create(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_delete(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_domains(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_detail(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_backup(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_password(struct http_server *, struct MHD_Connection *,
    struct request *);

static const struct route {
	const char *path;
	const char *method;
	route_fn fn;
	int needs_key;
	int has_body;
} routes[] = {
	{ "/health", "GET", do_health, 0, 0 },
	{ "/api/tenants", "GET", do_list, 1, 0 },
	{ "/api/tenant", "POST", do_create, 1, 1 },
	{ "/api/tenant", "DELETE", do_delete, 1, 1 },
	{ "/api/domains", "GET", do_domains, 1, 0 },
	/* "{subdomain}": one path segment, kept in rq->sub. */
	{ "/api/tenants/{subdomain}", "GET", do_detail, 1, 0 },
	{ "/api/tenants/{subdomain}/backup", "GET", do_backup, 1, 0 },
	{ "/api/tenants/{subdomain}/password", "POST", do_password, 1, 1 },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Takes ownership of root. Returns MHD_YES/MHD_NO. */
static int
reply_json(struct MHD_Connection *conn, struct request *rq, int status,
    cJSON *root, const char *allow)
{
	struct MHD_Response *resp;
	char *text;
	int ret;

	text = root != NULL ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (text == NULL) {
		static char oom[] = "{\"detail\":\"out of memory\","
		                    "\"code\":\"internal_error\"}";

		status = 500;
		resp = MHD_create_response_from_buffer(strlen(oom), oom,
		    MHD_RESPMEM_PERSISTENT);
	} else {
		size_t n = strlen(text);

		resp = MHD_create_response_from_buffer(n, text,
		    MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			cJSON_free(text);
	}
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (allow != NULL)
		MHD_add_response_header(resp, "Allow", allow);
	rq->status = status;
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int
reply_error(struct MHD_Connection *conn, struct request *rq, int status,
    const char *code, const char *detail)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "detail", detail);
	cJSON_AddStringToObject(o, "code", code);
	return reply_json(conn, rq, status, o, NULL);
}

static int
tenant_status(enum tenant_err e)
{
	switch (e) {
	case TENANT_OK:
		return 200;
	case TENANT_INVALID_SUBDOMAIN:
	case TENANT_RESERVED:
	case TENANT_UNKNOWN_DOMAIN:
	case TENANT_INVALID_PASSWORD:
		return 422;
	case TENANT_TEMPLATE_NOT_FOUND:
	case TENANT_NOT_FOUND:
		return 404;
	case TENANT_EXISTS:
		return 409;
	case TENANT_DB_UNAVAILABLE:
		return 503;
	case TENANT_INTERNAL:
		break;
	}
	return 500;
}

static int
reply_tenant_error(struct MHD_Connection *conn, struct request *rq,
    enum tenant_err e, const struct tenant_result *res)
{
	return reply_error(conn, rq, tenant_status(e), tenant_strerror(e),
	    res->detail);
}

static void
add_url(cJSON *o, const char *sub, const char *domain)
{
	char url[400];

	snprintf(url, sizeof(url), "https://%s.%s", sub, domain);
	cJSON_AddStringToObject(o, "url", url);
}

static int
do_health(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	char err[256];
	PGconn *c = pg_pool_get(h->t->pool, err, sizeof(err));
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "status", c != NULL ? "ok" : "degraded");
	cJSON_AddStringToObject(o, "postgres",
	    c != NULL ? "ok" : "unreachable");
	cJSON_AddStringToObject(o, "version", NODO_VERSION);
	cJSON_AddStringToObject(o, "dns",
	    h->s->dns_enabled ? "enabled" : "disabled");
	pg_pool_put(h->t->pool, c);
	return reply_json(conn, rq, c != NULL ? 200 : 503, o, NULL);
}

static int
check_domain_arg(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq, const char *domain)
{
	char detail[400];

	if (domain == NULL || settings_zone(h->s, domain) != NULL)
		return 0;
	snprintf(detail, sizeof(detail),
	    "domain: '%.253s' is not a domain of "
	    "this node (see GET /api/domains)",
	    domain);
	reply_error(conn, rq, 422, "unknown_domain", detail);
	return -1;
}

static int
do_list(struct http_server *h, struct MHD_Connection *conn, struct request *rq)
{
	const char *domain =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "domain");
	struct tenant_result res;
	struct tenant *v;
	size_t n, i;
	char err[256];
	PGconn *c;
	enum tenant_err e;
	cJSON *o, *a;

	if (domain != NULL && domain[0] == '\0')
		domain = NULL;
	if (check_domain_arg(h, conn, rq, domain) != 0)
		return MHD_YES;
	if (domain != NULL) /* the zone's own spelling, as tenants store it */
		domain = settings_zone(h->s, domain)->domain;
	if ((c = pg_pool_get(h->t->pool, err, sizeof(err))) == NULL) {
		char detail[400];

		snprintf(detail, sizeof(detail),
		    "database: PostgreSQL is unreachable: %s", err);
		return reply_error(conn, rq, 503, "database_unavailable",
		    detail);
	}
	memset(&res, 0, sizeof(res));
	e = tenant_list(h->t, c, domain, &v, &n, &res);
	pg_pool_put(h->t->pool, c);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	o = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(o, "tenants");
	for (i = 0; i < n; i++) {
		cJSON *t = cJSON_CreateObject();

		cJSON_AddStringToObject(t, "subdomain", v[i].name);
		cJSON_AddStringToObject(t, "database", v[i].name);
		cJSON_AddStringToObject(t, "domain", v[i].domain);
		add_url(t, v[i].name, v[i].domain);
		cJSON_AddItemToArray(a, t);
	}
	cJSON_AddNumberToObject(o, "count", (double)n);
	free(v);
	return reply_json(conn, rq, 200, o, NULL);
}

/* The body as a JSON object, or NULL after replying 400 invalid_json. */
static cJSON *
parse_body(struct MHD_Connection *conn, struct request *rq, int allow_empty)
{
	char detail[160] = "body: out of memory";
	cJSON *root;

	root = jsonreq_parse_object(rq->body, rq->len, allow_empty, detail,
	    sizeof(detail));
	if (root == NULL)
		reply_error(conn, rq, 400, "invalid_json", detail);
	return root;
}

/* A string field, or -1 after replying 400 invalid_request. */
static int
get_string(struct MHD_Connection *conn, struct request *rq, cJSON *root,
    const char *field, int required, const char **out)
{
	char detail[160];

	if (jsonreq_string(root, field, required, out, detail,
	        sizeof(detail)) == 0)
		return 0;
	reply_error(conn, rq, 400, "invalid_request", detail);
	return -1;
}

static struct cf_client *
cf_for(struct http_server *h)
{
	if (!h->s->dns_enabled)
		return NULL;
	return cf_client_new(h->s->cf_api_url, h->s->cf_token);
}

static void
add_dns(cJSON *o, const struct tenant_dns *dns)
{
	cJSON *d = cJSON_AddObjectToObject(o, "dns");

	cJSON_AddStringToObject(d, "status", cf_status_str(dns->status));
	if (dns->record_id[0] != '\0')
		cJSON_AddStringToObject(d, "record_id", dns->record_id);
	cJSON_AddStringToObject(d, "name", dns->name);
	if (dns->detail[0] != '\0')
		cJSON_AddStringToObject(d, "detail", dns->detail);
}

/* What the filestore copy skipped (links, fifos ...): only when anything. */
static void
add_filestore(cJSON *o, const struct fs_report *fs)
{
	cJSON *f, *a, *e;
	unsigned int i;

	if (fs->skipped == 0)
		return;
	f = cJSON_AddObjectToObject(o, "filestore");
	cJSON_AddNumberToObject(f, "skipped", (double)fs->skipped);
	a = cJSON_AddArrayToObject(f, "skipped_entries");
	for (i = 0; i < fs->shown; i++) {
		if ((e = cJSON_CreateObject()) == NULL)
			break;
		cJSON_AddStringToObject(e, "path", fs->skip[i].path);
		cJSON_AddStringToObject(e, "type", fs->skip[i].type);
		if (!cJSON_AddItemToArray(a, e))
			cJSON_Delete(e);
	}
}

static int
do_create(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct tenant_request req;
	struct tenant_result res;
	struct tenant out;
	struct cf_client *cf;
	enum tenant_err e;
	cJSON *root, *o;

	if ((root = parse_body(conn, rq, 0)) == NULL)
		return MHD_YES;
	memset(&req, 0, sizeof(req));
	if (get_string(conn, rq, root, "subdomain", 1, &req.subdomain) != 0 ||
	    get_string(conn, rq, root, "admin_password", 1, &req.password) !=
	        0 ||
	    get_string(conn, rq, root, "domain", 0, &req.domain) != 0 ||
	    get_string(conn, rq, root, "template_db", 0, &req.template) != 0) {
		cJSON_Delete(root);
		return MHD_YES;
	}
	req.password_len = strlen(req.password);
	memset(&res, 0, sizeof(res));
	if ((e = tenant_validate(h->t, &req, &res)) != TENANT_OK) {
		cJSON_Delete(root);
		return reply_tenant_error(conn, rq, e, &res);
	}
	cf = cf_for(h);
	memset(&out, 0, sizeof(out));
	e = tenant_create(h->t, cf, &req, &res, &out);
	cf_client_free(cf);
	if (e != TENANT_OK) {
		cJSON_Delete(root);
		return reply_tenant_error(conn, rq, e, &res);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "subdomain", out.name);
	cJSON_AddStringToObject(o, "database", out.name);
	cJSON_AddStringToObject(o, "domain", out.domain);
	add_url(o, out.name, out.domain);
	cJSON_AddStringToObject(o, "template_db",
	    req.template != NULL ? req.template : h->s->default_template);
	add_dns(o, &res.dns);
	add_filestore(o, &res.fs);
	if (res.warning[0] != '\0')
		cJSON_AddStringToObject(o, "warning", res.warning);
	cJSON_Delete(root);
	return reply_json(conn, rq, 201, o, NULL);
}

static int
do_delete(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
	    "subdomain");
	const char *b = NULL;
	struct tenant_result res;
	struct cf_client *cf;
	enum tenant_err e;
	cJSON *root, *o;
	char name[NAME_MAX_LEN + 1];

	if ((root = parse_body(conn, rq, 1)) == NULL)
		return MHD_YES;
	if (get_string(conn, rq, root, "subdomain", 0, &b) != 0) {
		cJSON_Delete(root);
		return MHD_YES;
	}
	if (q != NULL && b != NULL && strcmp(q, b) != 0) {
		cJSON_Delete(root);
		return reply_error(conn, rq, 400, "invalid_request",
		    "subdomain: the query and the body name different tenants");
	}
	if (q == NULL && b == NULL) {
		cJSON_Delete(root);
		return reply_error(conn, rq, 400, "invalid_request",
		    "subdomain: required (?subdomain=NAME or a JSON body)");
	}
	snprintf(name, sizeof(name), "%s", q != NULL ? q : b);
	if (strlen(q != NULL ? q : b) > NAME_MAX_LEN)
		name[0] = '\0'; /* too long: invalid below */
	cJSON_Delete(root);
	cf = cf_for(h);
	e = tenant_delete(h->t, cf, name, &res);
	cf_client_free(cf);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "subdomain", name);
	cJSON_AddBoolToObject(o, "deleted", 1);
	add_dns(o, &res.dns);
	return reply_json(conn, rq, 200, o, NULL);
}

static int
do_domains(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	cJSON *o = cJSON_CreateObject(), *a;
	size_t i;

	a = cJSON_AddArrayToObject(o, "domains");
	for (i = 0; i < h->s->nzones; i++) {
		cJSON *z = cJSON_CreateObject();

		cJSON_AddStringToObject(z, "domain", h->s->zones[i].domain);
		cJSON_AddStringToObject(z, "zone_id", h->s->zones[i].zone_id);
		cJSON_AddBoolToObject(z, "default",
		    strcmp(h->s->zones[i].domain, h->s->odoo_domain) == 0);
		cJSON_AddItemToArray(a, z);
	}
	if (h->s->cf_tunnel_id != NULL)
		cJSON_AddStringToObject(o, "tunnel_id", h->s->cf_tunnel_id);
	else
		cJSON_AddNullToObject(o, "tunnel_id");
	cJSON_AddBoolToObject(o, "dns_enabled", h->s->dns_enabled);
	return reply_json(conn, rq, 200, o, NULL);
}

static void
add_detail(cJSON *o, const struct tenant_detail *d)
{
	cJSON_AddStringToObject(o, "subdomain", d->name);
	cJSON_AddStringToObject(o, "database", d->name);
	cJSON_AddStringToObject(o, "domain", d->domain);
	add_url(o, d->name, d->domain);
	cJSON_AddStringToObject(o, "state",
	    d->suspended ? "suspended" : "active");
	if (d->created_at[0] != '\0')
		cJSON_AddStringToObject(o, "created_at", d->created_at);
	else
		cJSON_AddNullToObject(o, "created_at");
	if (d->template_db[0] != '\0')
		cJSON_AddStringToObject(o, "template_db", d->template_db);
	else
		cJSON_AddNullToObject(o, "template_db");
	cJSON_AddNumberToObject(o, "database_bytes", (double)d->database_bytes);
	cJSON_AddNumberToObject(o, "filestore_bytes",
	    (double)d->filestore_bytes);
	cJSON_AddNumberToObject(o, "filestore_files",
	    (double)d->filestore_files);
	if (d->users >= 0)
		cJSON_AddNumberToObject(o, "users", (double)d->users);
	else
		cJSON_AddNullToObject(o, "users");
}

static int
reply_detail(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq, const char *name)
{
	struct tenant_detail d;
	struct tenant_result res;
	enum tenant_err e;
	cJSON *o;

	memset(&res, 0, sizeof(res));
	if ((e = tenant_get_detail(h->t, name, &d, &res)) != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	o = cJSON_CreateObject();
	add_detail(o, &d);
	return reply_json(conn, rq, 200, o, NULL);
}

static int
do_detail(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	return reply_detail(h, conn, rq, rq->sub);
}

/* The body, password included, is wiped as soon as it is parsed. */
static int
do_password(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct tenant_result res;
	const char *pw = NULL;
	enum tenant_err e;
	cJSON *root;
	int ret;

	root = parse_body(conn, rq, 0);
	if (rq->body != NULL)
		explicit_bzero(rq->body, rq->len);
	if (root == NULL)
		return MHD_YES;
	if (get_string(conn, rq, root, "admin_password", 1, &pw) != 0) {
		cJSON_Delete(root);
		return MHD_YES;
	}
	memset(&res, 0, sizeof(res));
	e = tenant_set_password(h->t, rq->sub, pw, strlen(pw), &res);
	explicit_bzero((char *)(uintptr_t)pw, strlen(pw));
	cJSON_Delete(root);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	ret = reply_detail(h, conn, rq, rq->sub);
	return ret;
}

/*
 * The zip's bytes for libmicrohttpd. With one thread per connection (the
 * model today) waiting here blocks only this connection; an event-loop
 * model passes a backup_waker instead (see DESIGN "Backups").
 */
static ssize_t
backup_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n = backup_read(cls, buf, max, HTTP_BACKUP_WAIT_MS);

	if (n == BACKUP_EOF)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n == BACKUP_FAILED)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void
backup_done(void *cls)
{
	backup_release(cls);
}

/* Event-loop model: the connection is parked while the ring is empty. */
static void
conn_suspend(void *arg)
{
	MHD_suspend_connection(arg);
}

static void
conn_resume(void *arg)
{
	MHD_resume_connection(arg);
}

static int
do_backup(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct MHD_Response *resp;
	struct tenant_result res;
	struct backup *b;
	enum tenant_err e;
	char disp[160], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int busy, ret;
	struct backup_waker waker = { conn_suspend, conn_resume, conn };

	memset(&res, 0, sizeof(res));
	e = backup_start(h->t, rq->sub, h->event_loop ? &waker : NULL, &b,
	    &busy, &res);
	if (busy)
		return reply_error(conn, rq, 503, "server_busy", res.detail);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
	    BACKUP_IO_BYTES, backup_reader, b, backup_done);
	if (resp == NULL) {
		backup_release(b);
		return MHD_NO;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", &tm);
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s_%s.zip\"",
	    rq->sub, stamp);
	MHD_add_response_header(resp, "Content-Type", "application/zip");
	MHD_add_response_header(resp, "Content-Disposition", disp);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	/* A big tenant's dump may pause (locks, a slow table). */
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    (unsigned)HTTP_BACKUP_IDLE_S);
	rq->status = 200;
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Constant time whatever the lengths: compare SHA-256 digests. */
static int
key_ok(const struct http_server *h, const char *key)
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	if (key == NULL)
		key = "";
	SHA256((const unsigned char *)key, strlen(key), d);
	return CRYPTO_memcmp(d, h->key_digest, sizeof(d)) == 0 &&
	    key[0] != '\0';
}

static void
client_addr(struct MHD_Connection *conn, struct in6_addr *out)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	memset(out, 0, sizeof(*out));
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ci->client_addr;

		out->s6_addr[10] = 0xff;
		out->s6_addr[11] = 0xff;
		memcpy(&out->s6_addr[12], &a->sin_addr, 4);
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ci->client_addr;

		*out = a->sin6_addr;
	}
}

/*
 * Records a failure; returns the delay (ms) the caller sleeps before its
 * 401 once an address passed HTTP_AUTH_FAILS failures this minute. Other
 * addresses are not affected: each connection has its own thread.
 */
static int
auth_failed(struct http_server *h, struct MHD_Connection *conn)
{
	struct in6_addr a;
	time_t now = time(NULL);
	int i, slot = -1, oldest = 0, delay = 0;

	client_addr(conn, &a);
	pthread_mutex_lock(&h->auth_mu);
	for (i = 0; i < AUTH_SLOTS; i++) {
		if (memcmp(&h->auth[i].addr, &a, sizeof(a)) == 0 &&
		    h->auth[i].start != 0) {
			slot = i;
			break;
		}
		if (h->auth[i].start < h->auth[oldest].start)
			oldest = i;
	}
	if (slot == -1) {
		slot = oldest;
		h->auth[slot].addr = a;
		h->auth[slot].start = now;
		h->auth[slot].fails = 0;
	}
	if (now - h->auth[slot].start >= 60) {
		h->auth[slot].start = now;
		h->auth[slot].fails = 0;
	}
	if (++h->auth[slot].fails > HTTP_AUTH_FAILS)
		delay = HTTP_AUTH_DELAY_MS;
	pthread_mutex_unlock(&h->auth_mu);
	return delay;
}

/*
 * 0 when url matches pattern, where "{subdomain}" stands for one non-empty
 * path segment, copied into sub ("" when it does not fit: the handler
 * then refuses it as an invalid name).
 */
static int
route_match(const char *pattern, const char *url, char *sub, size_t len)
{
	const char *ph = strstr(pattern, "{subdomain}");
	size_t pre, seg;

	if (ph == NULL)
		return strcmp(pattern, url);
	pre = (size_t)(ph - pattern);
	if (strncmp(pattern, url, pre) != 0)
		return -1;
	url += pre;
	seg = strcspn(url, "/");
	if (seg == 0 || strcmp(url + seg, ph + strlen("{subdomain}")) != 0)
		return -1;
	if (seg < len) {
		memcpy(sub, url, seg);
		sub[seg] = '\0';
	} else
		sub[0] = '\0';
	return 0;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct http_server *h = cls;
	struct request *rq = *con_cls;
	const struct route *r;
	size_t i;

	if (rq == NULL) {
		const char *cl, *allow = NULL;
		int known = 0, ret;
		char allowbuf[32] = "";

		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		atomic_fetch_add(&h->inflight, 1);
		clock_gettime(CLOCK_MONOTONIC, &rq->start);
		rq->route = -1;
		snprintf(rq->method, sizeof(rq->method), "%s", method);
		snprintf(rq->path, sizeof(rq->path), "(other)");
		for (i = 0; i < NROUTES; i++) {
			if (route_match(routes[i].path, url, rq->sub,
			        sizeof(rq->sub)) != 0)
				continue;
			known = 1;
			snprintf(rq->path, sizeof(rq->path), "%s",
			    routes[i].path);
			if (strcmp(method, routes[i].method) == 0)
				rq->route = (int)i;
			else {
				size_t n = strlen(allowbuf);

				snprintf(allowbuf + n, sizeof(allowbuf) - n,
				    "%s%s", n ? ", " : "", routes[i].method);
			}
		}
		/* Every /api/ path needs the key, known route or not. */
		if (strncmp(url, "/api/", 5) == 0 &&
		    !key_ok(h,
		        MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		            "X-API-KEY"))) {
			int delay = auth_failed(h, conn);

			if (delay > 0)
				usleep((useconds_t)delay * 1000);
			return reply_error(conn, rq, 401, "unauthorized",
			    "X-API-KEY: missing or wrong API key");
		}
		if (!known)
			return reply_error(conn, rq, 404, "not_found",
			    "no such route");
		if (rq->route == -1) {
			char detail[96];

			allow = allowbuf;
			snprintf(detail, sizeof(detail),
			    "method %s not allowed "
			    "here (allowed: %s)",
			    strcmp(method, "HEAD") == 0 ? "HEAD" : "used",
			    allow);
			{
				cJSON *o = cJSON_CreateObject();

				cJSON_AddStringToObject(o, "detail", detail);
				cJSON_AddStringToObject(o, "code",
				    "method_not_allowed");
				ret = reply_json(conn, rq, 405, o, allow);
			}
			return ret;
		}
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			if (errno != 0 || end == cl || n > HTTP_MAX_BODY) {
				rq->too_large = 1;
				return reply_error(conn, rq, 413,
				    "payload_too_large",
				    "body: larger than 65536 bytes");
			}
		}
		return MHD_YES;
	}
	if (rq->status != 0) {
		/* Answered already (401, 404, 405, 413): drop the body. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		if (rq->too_large || rq->len + *upload_size > HTTP_MAX_BODY) {
			rq->too_large = 1;
		} else {
			char *nb =
			    realloc(rq->body, rq->len + *upload_size + 1);

			if (nb == NULL)
				return MHD_NO;
			rq->body = nb;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
			rq->body[rq->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_large)
		return reply_error(conn, rq, 413, "payload_too_large",
		    "body: larger than 65536 bytes");
	r = &routes[rq->route];
	if (!r->has_body && rq->len > 0)
		return reply_error(conn, rq, 400, "invalid_request",
		    "body: this route takes no body");
	return r->fn(h, conn, rq);
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_server *h = cls;
	struct request *rq = *con_cls;
	struct timespec now;
	double ms;

	if (rq == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - rq->start.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - rq->start.tv_nsec) / 1e6;
	/* /health is polled by monitors: keep it out of info logs. */
	log_msg(strcmp(rq->path, "/health") == 0 ? LOG_DEBUG : LOG_INFO, NULL,
	    "%s %s %d %.1f ms%s", rq->method, rq->path, rq->status, ms,
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	free(rq->body);
	free(rq);
	*con_cls = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(buf, sizeof(buf), fmt, ap);
#pragma GCC diagnostic pop
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("microhttpd: %s", buf);
}

struct http_server *
http_start(const struct settings *s, struct tenant_ctx *tctx)
{
	struct http_server *h;
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	const struct sockaddr *sa;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
#ifdef NODO_TEST_EVENT_LOOP /* a test build: one epoll thread */
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
	    MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
#endif

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->s = s;
	h->t = tctx;
	h->event_loop = (flags & MHD_USE_THREAD_PER_CONNECTION) == 0;
	pthread_mutex_init(&h->auth_mu, NULL);
	SHA256((const unsigned char *)s->api_key, strlen(s->api_key),
	    h->key_digest);

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (inet_pton(AF_INET, s->api_host, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)s->api_port);
		sa = (const struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, s->api_host, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)s->api_port);
		sa = (const struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		log_err("API_HOST: '%s' is not an IPv4 or IPv6 address",
		    s->api_host);
		free(h);
		return NULL;
	}
	/* The logger first, so that option errors reach it too. */
	h->d = MHD_start_daemon(flags, (uint16_t)s->api_port, NULL, NULL,
	    handler, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)HTTP_CONN_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)HTTP_PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_CONN_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)HTTP_CONN_MEMORY, MHD_OPTION_THREAD_STACK_SIZE,
	    (size_t)HTTP_THREAD_STACK, MHD_OPTION_NOTIFY_COMPLETED, completed,
	    h, MHD_OPTION_END);
	if (h->d == NULL) {
		log_err("cannot listen on %s port %d: %s", s->api_host,
		    s->api_port, strerror(errno));
		free(h);
		return NULL;
	}
	return h;
}

int
http_inflight(struct http_server *h)
{
	return atomic_load(&h->inflight);
}

void
http_stop(struct http_server *h, int grace_ms)
{
	int waited = 0;

	if (h == NULL)
		return;
	/* Stop accepting; requests in flight go on. */
	MHD_quiesce_daemon(h->d);
	while (atomic_load(&h->inflight) > 0 && waited < grace_ms) {
		usleep(10 * 1000);
		waited += 10;
	}
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->auth_mu);
	free(h);
}
