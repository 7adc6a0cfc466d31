/*
 * http.c - routes, authentication and JSON replies of odoo-local-api.
 *
 * The request pattern is journal-remote's: method, path, key and
 * Content-Length are checked on the first callback before anything is
 * allocated for the body; the body is accumulated up to HTTP_MAX_BODY (a
 * restore's, up to RESTORE_MAX_BYTES, is spooled to an unlinked file); the
 * answer is given on the final callback; the request is logged and freed
 * on completion.
 *
 * The connection model (docs/DESIGN.md, "Connections"): libmicrohttpd's
 * internal epoll, HTTP_POLL_THREADS threads for every connection, so an
 * idle socket costs no thread. Quick routes (/health, /api/domains, every
 * refusal) are answered on the poll thread; the others are handed to the
 * job pool with the connection suspended and are answered when it resumes.
 * Nothing on a poll thread waits for a lock held across I/O, the pool or
 * PostgreSQL: /health reports the probe's state (probe.h). A sweeper thread
 * enforces the deadlines (a request complete within HTTP_HEADER_S, its body
 * within HTTP_BODY_S plus its size at HTTP_BODY_RATE: an absolute bound,
 * not libmicrohttpd's idle timeout) and resumes timed suspensions (the
 * delayed 401, /health waiting for a probe). The accept policy keeps the
 * per-address limit, so that refusals can name the address in the log.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
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
#include "nodo/restore.h"
#include "nodo/suspend.h"
#include "apimetrics.h"
#include "nodo/tenant_cache.h"
#include "nodo/trash.h"
#include "nodo/util.h"
#include "http.h"
#include "node.h"
#include "jobs.h"
#include "pollprio.h"
#include "probe.h"

#define AUTH_SLOTS          256 /* addresses whose failures we remember */
#define WARN_SLOTS          256 /* (address, limit) pairs whose warning we remember */
#define PEND_SLOTS          8 /* accepted, not yet started: one per poll thread */
#define HTTP_FIRST_PROBE_MS 2000 /* http_start waits this for the first probe */

/* What ends a connection at its deadline (struct conn.phase). */
enum phase {
	PH_REQUEST, /* headers or body under way: 408, then close */
	PH_IDLE,    /* kept alive after a reply: close */
	PH_REPLY,   /* a reply being sent: close */
};

/* The limits whose hits are logged (warn_once). */
enum limit { L_PER_IP, L_DEADLINE, L_TOTAL, L_JOBS };

/*
 * One open connection (MHD_OPTION_NOTIFY_CONNECTION), on h->conns under
 * h->conn_mu. Its socket stays open while it is on the list: libmicrohttpd
 * tells us it closed before it closes the socket.
 */
struct conn {
	struct conn *prev, *next;
	struct MHD_Connection *mc;
	int fd;
	struct in6_addr addr;
	atomic_llong deadline; /* ms, monotonic; 0: none (a request runs) */
	atomic_int phase;
	/* A timed suspension the sweeper resumes (under conn_mu): */
	int waiting;
	long long wake;            /* ms: at the latest */
	unsigned long probe_until; /* or once this many probes ended (0: no) */
};

struct http_server {
	struct MHD_Daemon *d;
	const struct settings *s;   /* at start: what a reload never changes */
	struct settings_live *live; /* the reloadable ones (rq->s) */
	struct tenant_ctx *t;
	struct tenant_cache *list; /* GET /api/tenants */
	atomic_int inflight;
	struct apimetrics *m; /* GET /metrics: lock-free counters */
	struct node *node;    /* GET /api/node and /metrics' gauges */
	struct job_pool *jobs;
	struct probe *probe;

	pthread_mutex_t auth_mu; /* failed keys per address, a minute */
	struct {
		struct in6_addr addr;
		time_t start;
		int fails;
	} auth[AUTH_SLOTS];

	pthread_mutex_t conn_mu; /* the connections, the sweeper */
	pthread_cond_t conn_cv;  /* a timed wait was added, a probe ended */
	struct conn *conns;
	int nconns;
	struct {
		struct in6_addr addr;
		pthread_t tid;
		long long ms;
		int used;
	} pend[PEND_SLOTS];
	int sweep_stop;
	int sweeper_started;
	pthread_t sweeper;

	pthread_mutex_t warn_mu; /* limits logged, per address, a minute */
	struct {
		struct in6_addr addr;
		int limit;
		time_t last;
	} warned[WARN_SLOTS];
};

enum route_id { R_HEALTH, R_TENANTS, R_TENANT, R_DOMAINS };

/* Where a route runs (struct route.run); 0, the default, is the safe one. */
enum run { RUN_JOB, RUN_INLINE, RUN_HEAVY };

struct request {
	/* The settings of this request, held until it completes (reload). */
	const struct settings *s;
	struct tenant_ctx t; /* h->t with s */
	struct timespec start;
	int route; /* -1 until routed */
	int status;
	char method[8];
	char path[64];               /* known routes only: never user text */
	char addr[INET6_ADDRSTRLEN]; /* the client's address, for the log */
	char sub[NAME_MAX_LEN +
	    1]; /* {subdomain} of the path ("" if too long) */
	char *body;
	size_t len, cap;
	int too_large;
	int spool_fd;               /* a restore's body: an unlinked file */
	unsigned long long spooled; /* bytes in it */
	int spool_errno;            /* a write to it failed */

	struct conn *c;        /* its connection's record, or NULL */
	struct http_server *h; /* for a job */
	struct MHD_Connection *mc;
	struct job job;
	int deferred;              /* replies go to resp, not queued */
	int stream;                /* a backup: no reply deadline */
	struct MHD_Response *resp; /* made off the poll thread or delayed */
	int job_done;              /* the job ran: resp, or close */
	int probed;                /* /health waited for a probe once */
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
static int do_node(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_metrics(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_detail(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_backup(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_password(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_restore(struct http_server *, struct MHD_Connection *,
    struct request *);

/* struct route.has_body: none, JSON up to HTTP_MAX_BODY, spooled to disk. */
enum { BODY_NONE, BODY_JSON, BODY_SPOOL };
static int do_suspend(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_resume(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_trash_list(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_trash_restore(struct http_server *, struct MHD_Connection *,
    struct request *);
static int do_trash_purge(struct http_server *, struct MHD_Connection *,
    struct request *);

/*
 * run: RUN_INLINE only for routes that never wait (no PostgreSQL, no pool,
 * no lock held across I/O): they run on a poll thread. RUN_HEAVY routes
 * (creates, deletes) count against JOBS_HEAVY.
 */
static const struct route {
	const char *path;
	const char *method;
	route_fn fn;
	int needs_key;
	int has_body;
	int run;
} routes[] = {
	{ "/health", "GET", do_health, 0, 0, RUN_INLINE },
	{ "/api/tenants", "GET", do_list, 1, 0, RUN_JOB },
	{ "/api/tenant", "POST", do_create, 1, 1, RUN_HEAVY },
	{ "/api/tenant", "DELETE", do_delete, 1, 1, RUN_HEAVY },
	{ "/api/domains", "GET", do_domains, 1, 0, RUN_INLINE },
	{ "/api/node", "GET", do_node, 1, 0, RUN_JOB },
	{ "/metrics", "GET", do_metrics, 1, 0, RUN_JOB },
	/* "{subdomain}": one path segment, kept in rq->sub. */
	{ "/api/tenants/{subdomain}", "GET", do_detail, 1, 0, RUN_JOB },
	{ "/api/tenants/{subdomain}/backup", "GET", do_backup, 1, 0, RUN_JOB },
	{ "/api/tenants/{subdomain}/password", "POST", do_password, 1, 1,
	    RUN_HEAVY },
	/* The body (a zip up to RESTORE_MAX_BYTES) is spooled to disk. */
	{ "/api/tenant/restore", "POST", do_restore, 1, BODY_SPOOL, RUN_HEAVY },
	{ "/api/tenants/{subdomain}/suspend", "POST", do_suspend, 1, 0,
	    RUN_HEAVY },
	{ "/api/tenants/{subdomain}/resume", "POST", do_resume, 1, 0,
	    RUN_HEAVY },
	/* "{id}": a trash id, one path segment, kept in rq->sub as well. */
	{ "/api/trash", "GET", do_trash_list, 1, 0, RUN_JOB },
	{ "/api/trash/{id}", "DELETE", do_trash_purge, 1, 0, RUN_HEAVY },
	{ "/api/trash/{id}/restore", "POST", do_trash_restore, 1, 1,
	    RUN_HEAVY },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Sets what ends c, and when (ms from now; 0: nothing, a request runs). */
static void
arm(struct conn *c, enum phase ph, long long ms)
{
	if (c == NULL)
		return;
	atomic_store(&c->phase, (int)ph);
	atomic_store(&c->deadline, ms > 0 ? nodo_mono_ms() + ms : 0);
}

/*
 * A 503 says why in the log once per outage, at err, not once per request
 * (each request still gets its info line); the first reply that needed
 * PostgreSQL and got it ends the outage.
 */
static pthread_mutex_t outage_mu = PTHREAD_MUTEX_INITIALIZER;
static int outage; /* 1 from the first 503 until a success */

static void
outage_note(int status, int route, const char *why)
{
	pthread_mutex_lock(&outage_mu);
	if (status == 503 && !outage) {
		outage = 1;
		log_err("answering 503 until PostgreSQL is usable: %s",
		    why != NULL ? why : "database unavailable");
	} else if (status >= 200 && status < 300 && route != R_DOMAINS &&
	    outage) {
		outage = 0;
		log_notice("PostgreSQL usable again: no more 503");
	}
	pthread_mutex_unlock(&outage_mu);
}

/* Queues resp (consumed) on the poll thread. MHD_YES/MHD_NO. */
static int
queue_reply(struct MHD_Connection *conn, struct request *rq,
    struct MHD_Response *resp)
{
	int ret;

	if (resp == NULL)
		return MHD_NO;
	if (rq->stream) {
		/* A backup: as long as it takes, while the client reads. */
		arm(rq->c, PH_REPLY, 0);
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
		    (unsigned)HTTP_BACKUP_IDLE_S);
	} else
		arm(rq->c, PH_REPLY, HTTP_REPLY_S * 1000LL);
	ret = MHD_queue_response(conn, (unsigned)rq->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * Queues resp now, or, on a job thread (rq->deferred), keeps it in rq->resp
 * for the poll thread to queue when the connection resumes.
 */
static int
finish_reply(struct MHD_Connection *conn, struct request *rq, int status,
    struct MHD_Response *resp)
{
	if (resp == NULL)
		return MHD_NO;
	rq->status = status;
	if (rq->deferred) {
		if (rq->resp != NULL)
			MHD_destroy_response(rq->resp);
		rq->resp = resp;
		return MHD_YES;
	}
	return queue_reply(conn, rq, resp);
}

/* The JSON body of root (consumed); *status becomes 500 on OOM. */
static struct MHD_Response *
json_response(cJSON *root, int *status)
{
	struct MHD_Response *resp;
	char *text;

	text = root != NULL ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (text == NULL) {
		static char oom[] = "{\"detail\":\"out of memory\","
		                    "\"code\":\"internal_error\"}";

		*status = 500;
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
		return NULL;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	return resp;
}

/* Takes ownership of root. Returns MHD_YES/MHD_NO. */
static int
reply_json(struct MHD_Connection *conn, struct request *rq, int status,
    cJSON *root, const char *allow)
{
	struct MHD_Response *resp = json_response(root, &status);

	if (resp != NULL && allow != NULL)
		MHD_add_response_header(resp, "Allow", allow);
	if (status != 503) /* a 503's reason is noted by its caller */
		outage_note(status, rq->route, NULL);
	return finish_reply(conn, rq, status, resp);
}

static int
reply_error(struct MHD_Connection *conn, struct request *rq, int status,
    const char *code, const char *detail)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "detail", detail);
	cJSON_AddStringToObject(o, "code", code);
	if (status == 503)
		outage_note(status, rq->route, detail);
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
	case TENANT_TEMPLATE_NOT_ALLOWED:
		return 422;
	case TENANT_TEMPLATE_NOT_FOUND:
	case TENANT_NOT_FOUND:
	case TENANT_TRASH_NOT_FOUND:
		return 404;
	case TENANT_EXISTS:
		return 409;
	case TENANT_DB_UNAVAILABLE:
		return 503;
	case TENANT_INTERNAL:
	case TENANT_FILESTORE_MISSING:
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

static double
seconds_since(const struct timespec *a)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - a->tv_sec) +
	    (double)(now.tv_nsec - a->tv_nsec) / 1e9;
}

static void
add_url(cJSON *o, const char *sub, const char *domain)
{
	char url[400];

	snprintf(url, sizeof(url), "https://%s.%s", sub, domain);
	cJSON_AddStringToObject(o, "url", url);
}

/* "2026-12-08T19:00:00Z" from seconds since the epoch. */
static void
add_time(cJSON *o, const char *key, long long t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(o, key, buf);
}

static int wait_timed(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq, int ms, unsigned long probe_until);

/*
 * Runs on a poll thread: the probe's state, no lock, no pool. While the
 * last probe failed (or none ended yet), the request waits, suspended, for
 * a probe that starts after it (at most HTTP_HEALTH_WAIT_MS): a 503 is
 * never stale, and PostgreSQL back is seen at once.
 */
static int
do_health(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	int up = probe_state(h->probe) == 1;
	cJSON *o;

	if (!up && !rq->probed) {
		rq->probed = 1;
		if (wait_timed(h, conn, rq, HTTP_HEALTH_WAIT_MS,
		        probe_kick(h->probe)) == 0)
			return MHD_YES;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", up ? "ok" : "degraded");
	cJSON_AddStringToObject(o, "postgres", up ? "ok" : "unreachable");
	cJSON_AddStringToObject(o, "version", NODO_VERSION);
	cJSON_AddStringToObject(o, "dns",
	    rq->s->dns_enabled ? "enabled" : "disabled");
	if (!up)
		outage_note(503, rq->route,
		    "PostgreSQL is unreachable (/health's probe failed)");
	return reply_json(conn, rq, up ? 200 : 503, o, NULL);
}

/*
 * ---- NUL characters in arguments -------------------------------------------
 * A value is a string of known length; C code that cuts it at a NUL would
 * act on a shorter, different value ("victima%00" -> "victima"). Every
 * query parameter, the key header and every JSON string field is checked
 * against its length, and a NUL is that field's invalid value.
 */

/* The status and code of an invalid value of each field. */
static enum tenant_err
field_err(const char *field)
{
	if (strcmp(field, "subdomain") == 0)
		return TENANT_INVALID_SUBDOMAIN;
	if (strcmp(field, "admin_password") == 0)
		return TENANT_INVALID_PASSWORD;
	if (strcmp(field, "domain") == 0)
		return TENANT_UNKNOWN_DOMAIN;
	if (strcmp(field, "template_db") == 0)
		return TENANT_TEMPLATE_NOT_FOUND;
	return TENANT_OK; /* no field code: 400 invalid_request */
}

static int
reply_nul(struct MHD_Connection *conn, struct request *rq, const char *field)
{
	enum tenant_err e = field_err(field);
	char detail[160];

	snprintf(detail, sizeof(detail), "%.64s: contains a NUL character",
	    field);
	if (e == TENANT_OK)
		return reply_error(conn, rq, 400, "invalid_request", detail);
	return reply_error(conn, rq, tenant_status(e), tenant_strerror(e),
	    detail);
}

struct nul_find {
	char key[65]; /* the first parameter holding a NUL */
	int found;
};

static enum MHD_Result
nul_arg_cb(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size)
{
	struct nul_find *f = cls;

	(void)kind;
	if ((key != NULL && strlen(key) != key_size) ||
	    (value != NULL && strlen(value) != value_size)) {
		size_t i;

		/*
		 * The name as far as its NUL, and only name characters: it is
		 * the client's text going into the reply.
		 */
		for (i = 0;
		     key != NULL && key[i] != '\0' && i < sizeof(f->key) - 1;
		     i++) {
			unsigned char c = (unsigned char)key[i];

			f->key[i] =
			    (isalnum(c) || c == '_' || c == '-' || c == '.')
			    ? (char)c
			    : '?';
		}
		f->key[i] = '\0';
		f->found = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

/* 0, or -1 after replying when a query parameter holds a NUL. */
static int
check_query_nul(struct MHD_Connection *conn, struct request *rq)
{
	struct nul_find f = { .found = 0 };

	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, nul_arg_cb,
	    &f);
	if (!f.found)
		return 0;
	reply_nul(conn, rq, f.key);
	return -1;
}

/* A header's value, or NULL when absent or holding a NUL. */
static const char *
header_value(struct MHD_Connection *conn, const char *name)
{
	const char *v = NULL;
	size_t n = 0;

	if (MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, name,
	        strlen(name), &v, &n) != MHD_YES ||
	    v == NULL || strlen(v) != n)
		return NULL;
	return v;
}

static int
check_domain_arg(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq, const char *domain)
{
	char detail[400];

	if (domain == NULL || settings_zone(rq->s, domain) != NULL)
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
	struct tenant_snap *snap;
	struct MHD_Response *resp;
	char *json; /* the snapshot's: MHD only reads it */
	size_t len;
	enum tenant_err e;

	if (check_query_nul(conn, rq) != 0)
		return MHD_YES;
	if (domain != NULL && domain[0] == '\0')
		domain = NULL;
	if (check_domain_arg(h, conn, rq, domain) != 0)
		return MHD_YES;
	if (domain != NULL) /* the zone's own spelling, as tenants store it */
		domain = settings_zone(rq->s, domain)->domain;
	memset(&res, 0, sizeof(res));
	e = tenant_cache_get(h->list, domain, &snap, &json, &len, &res);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	/* The cached bytes, sent as they are; the reference ends with it. */
	resp = MHD_create_response_from_buffer_with_free_callback_cls(len, json,
	    tenant_cache_release, snap);
	if (resp == NULL) {
		tenant_cache_release(snap);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	outage_note(200, rq->route, NULL);
	/* On a job thread: kept for the poll thread to queue (finish_reply). */
	return finish_reply(conn, rq, 200, resp);
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
	        sizeof(detail)) != 0) {
		reply_error(conn, rq, 400, "invalid_request", detail);
		return -1;
	}
	if (*out != NULL && jsonreq_has_nul(rq->body, rq->len, field)) {
		reply_nul(conn, rq, field);
		return -1;
	}
	return 0;
}

static struct cf_client *
cf_for(const struct settings *s)
{
	if (!s->dns_enabled)
		return NULL;
	return cf_client_new(s->cf_api_url, s->cf_token);
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
	struct timespec t0;
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
	if ((e = tenant_validate(&rq->t, &req, &res)) != TENANT_OK) {
		cJSON_Delete(root);
		return reply_tenant_error(conn, rq, e, &res);
	}
	cf = cf_for(rq->s);
	memset(&out, 0, sizeof(out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	e = tenant_create(&rq->t, cf, &req, &res, &out);
	apimetrics_op(h->m, APIMETRICS_CREATE, seconds_since(&t0), e);
	if (e == TENANT_OK)
		apimetrics_dns(h->m, res.dns.status);
	cf_client_free(cf);
	tenant_cache_changed(h->list);
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
	    req.template != NULL ? req.template : rq->s->default_template);
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
	const char *qp =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "purge");
	const char *b = NULL;
	struct tenant_result res;
	struct trash_entry te;
	struct cf_client *cf;
	struct timespec t0;
	enum tenant_err e;
	cJSON *root, *o, *bp;
	char name[NAME_MAX_LEN + 1];
	int purge = 0;

	if (check_query_nul(conn, rq) != 0)
		return MHD_YES;
	if ((root = parse_body(conn, rq, 1)) == NULL)
		return MHD_YES;
	if (get_string(conn, rq, root, "subdomain", 0, &b) != 0) {
		cJSON_Delete(root);
		return MHD_YES;
	}
	if (qp != NULL) {
		if (strcmp(qp, "true") != 0 && strcmp(qp, "false") != 0) {
			cJSON_Delete(root);
			return reply_error(conn, rq, 400, "invalid_request",
			    "purge: must be true or false");
		}
		purge = strcmp(qp, "true") == 0;
	}
	bp = cJSON_GetObjectItemCaseSensitive(root, "purge");
	if (bp != NULL && !cJSON_IsNull(bp)) {
		if (!cJSON_IsBool(bp)) {
			cJSON_Delete(root);
			return reply_error(conn, rq, 400, "invalid_request",
			    "purge: must be a boolean");
		}
		if (qp != NULL && purge != cJSON_IsTrue(bp)) {
			cJSON_Delete(root);
			return reply_error(conn, rq, 400, "invalid_request",
			    "purge: the query and the body disagree");
		}
		purge = cJSON_IsTrue(bp);
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
	cf = cf_for(rq->s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	e = tenant_delete(&rq->t, cf, name, purge, &res, &te);
	apimetrics_op(h->m, APIMETRICS_DELETE, seconds_since(&t0), e);
	if (e == TENANT_OK)
		apimetrics_dns(h->m, res.dns.status);
	cf_client_free(cf);
	tenant_cache_changed(h->list);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "subdomain", name);
	cJSON_AddBoolToObject(o, "deleted", 1);
	cJSON_AddBoolToObject(o, "purged", te.id[0] == '\0');
	if (te.id[0] != '\0') {
		cJSON *tr = cJSON_AddObjectToObject(o, "trash");

		cJSON_AddStringToObject(tr, "id", te.id);
		add_time(tr, "expires_at", te.expires_at);
	}
	add_dns(o, &res.dns);
	return reply_json(conn, rq, 200, o, NULL);
}

static int
do_trash_list(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct tenant_result res;
	struct trash_entry *v = NULL;
	enum tenant_err e;
	size_t n = 0, i;
	cJSON *o, *a;

	memset(&res, 0, sizeof(res));
	if ((e = trash_list(&rq->t, &v, &n, &res)) != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	o = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(o, "trash");
	for (i = 0; i < n; i++) {
		cJSON *x = cJSON_CreateObject();

		cJSON_AddStringToObject(x, "id", v[i].id);
		cJSON_AddStringToObject(x, "subdomain", v[i].name);
		cJSON_AddStringToObject(x, "domain", v[i].domain);
		if (v[i].template_db[0] != '\0')
			cJSON_AddStringToObject(x, "template_db",
			    v[i].template_db);
		else
			cJSON_AddNullToObject(x, "template_db");
		add_time(x, "deleted_at", v[i].deleted_at);
		add_time(x, "expires_at", v[i].expires_at);
		if (v[i].database_bytes >= 0)
			cJSON_AddNumberToObject(x, "database_bytes",
			    (double)v[i].database_bytes);
		else
			cJSON_AddNullToObject(x, "database_bytes");
		cJSON_AddNumberToObject(x, "filestore_bytes",
		    (double)v[i].filestore_bytes);
		cJSON_AddItemToArray(a, x);
	}
	cJSON_AddNumberToObject(o, "count", (double)n);
	free(v);
	outage_note(200, rq->route, NULL);
	return reply_json(conn, rq, 200, o, NULL);
}

static int
do_trash_restore(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	const char *sub = NULL, *dom = NULL;
	struct tenant_result res;
	struct trash_entry te;
	struct tenant out;
	struct cf_client *cf;
	enum tenant_err e;
	cJSON *root, *o;

	if ((root = parse_body(conn, rq, 1)) == NULL)
		return MHD_YES;
	if (get_string(conn, rq, root, "subdomain", 0, &sub) != 0 ||
	    get_string(conn, rq, root, "domain", 0, &dom) != 0) {
		cJSON_Delete(root);
		return MHD_YES;
	}
	cf = cf_for(rq->s);
	memset(&out, 0, sizeof(out));
	e = trash_restore(&rq->t, cf, rq->sub, sub, dom, &res, &out, &te);
	if (e == TENANT_OK)
		apimetrics_dns(h->m, res.dns.status);
	cf_client_free(cf);
	cJSON_Delete(root);
	tenant_cache_changed(h->list);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "subdomain", out.name);
	cJSON_AddStringToObject(o, "database", out.name);
	cJSON_AddStringToObject(o, "domain", out.domain);
	add_url(o, out.name, out.domain);
	if (te.template_db[0] != '\0')
		cJSON_AddStringToObject(o, "template_db", te.template_db);
	else
		cJSON_AddNullToObject(o, "template_db");
	cJSON_AddStringToObject(o, "restored_from_trash", te.id);
	add_dns(o, &res.dns);
	return reply_json(conn, rq, 201, o, NULL);
}

static int
do_trash_purge(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct tenant_result res;
	enum tenant_err e;
	cJSON *o;

	e = trash_purge(&rq->t, rq->sub, &res);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", rq->sub);
	cJSON_AddBoolToObject(o, "purged", 1);
	return reply_json(conn, rq, 200, o, NULL);
}

static int
do_domains(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	cJSON *o = cJSON_CreateObject(), *a;
	size_t i;

	a = cJSON_AddArrayToObject(o, "domains");
	for (i = 0; i < rq->s->nzones; i++) {
		cJSON *z = cJSON_CreateObject();

		cJSON_AddStringToObject(z, "domain", rq->s->zones[i].domain);
		cJSON_AddStringToObject(z, "zone_id", rq->s->zones[i].zone_id);
		cJSON_AddBoolToObject(z, "default",
		    strcmp(rq->s->zones[i].domain, rq->s->odoo_domain) == 0);
		cJSON_AddItemToArray(a, z);
	}
	if (rq->s->cf_tunnel_id != NULL)
		cJSON_AddStringToObject(o, "tunnel_id", rq->s->cf_tunnel_id);
	else
		cJSON_AddNullToObject(o, "tunnel_id");
	cJSON_AddBoolToObject(o, "dns_enabled", rq->s->dns_enabled);
	return reply_json(conn, rq, 200, o, NULL);
}

static int
do_node(struct http_server *h, struct MHD_Connection *conn, struct request *rq)
{
	char detail[400];
	cJSON *o;
	int st = node_report(h->node, &o, detail, sizeof(detail));

	if (st != 200)
		return reply_error(conn, rq, st,
		    st == 503 ? "database_unavailable" : "internal_error",
		    detail);
	return reply_json(conn, rq, 200, o, NULL);
}

/* Prometheus text format 0.0.4, rendered now (CONTRACT 12). */
static int
do_metrics(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct MHD_Response *resp;
	struct metrics_buf b;

	metrics_buf_init(&b);
	apimetrics_render(h->m, &b);
	node_metrics(h->node, &b);
	if (b.nomem || b.p == NULL) {
		metrics_buf_free(&b);
		return reply_error(conn, rq, 500, "internal_error",
		    "metrics: out of memory");
	}
	resp =
	    MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		metrics_buf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	/* Not through reply_json: a 200 here says nothing of PostgreSQL. */
	return finish_reply(conn, rq, 200, resp);
}

/*
 * The key a request carries: X-API-KEY, else "Authorization: Bearer KEY"
 * (the scheme is case-insensitive, RFC 7235). NULL when neither, or when
 * the value holds a NUL (header_value).
 */
static const char *
request_key(struct MHD_Connection *conn)
{
	const char *k;

	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-KEY") !=
	    NULL)
		return header_value(conn, "X-API-KEY");
	k = header_value(conn, MHD_HTTP_HEADER_AUTHORIZATION);
	if (k == NULL || strncasecmp(k, "Bearer ", 7) != 0)
		return NULL;
	for (k += 7; *k == ' '; k++)
		;
	return k;
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
	if ((e = tenant_get_detail(&rq->t, name, &d, &res)) != TENANT_OK)
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

static int
do_password(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct tenant_result res;
	const char *pw = NULL;
	enum tenant_err e;
	cJSON *root;
	int ret;

	/* The body is wiped when the request is freed (request_free). */
	root = parse_body(conn, rq, 0);
	if (root == NULL)
		return MHD_YES;
	if (get_string(conn, rq, root, "admin_password", 1, &pw) != 0) {
		cJSON_Delete(root);
		return MHD_YES;
	}
	memset(&res, 0, sizeof(res));
	e = tenant_set_password(&rq->t, rq->sub, pw, strlen(pw), &res);
	explicit_bzero((char *)(uintptr_t)pw, strlen(pw));
	cJSON_Delete(root);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	ret = reply_detail(h, conn, rq, rq->sub);
	return ret;
}

/* POST .../suspend and .../resume: the detail after the change. */
static int
suspend_or_resume(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq, int suspend)
{
	struct tenant_result res;
	enum tenant_err e;

	memset(&res, 0, sizeof(res));
	e = tenant_suspend(&rq->t, rq->sub, suspend, &res);
	tenant_cache_changed(h->list);
	if (e != TENANT_OK)
		return reply_tenant_error(conn, rq, e, &res);
	return reply_detail(h, conn, rq, rq->sub);
}

static int
do_suspend(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	return suspend_or_resume(h, conn, rq, 1);
}

static int
do_resume(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	return suspend_or_resume(h, conn, rq, 0);
}

/*
 * The zip's bytes for libmicrohttpd, on a poll thread: it never waits.
 * While the ring is empty the connection is suspended (conn_suspend) and
 * the backup's producer resumes it when bytes or the end arrive.
 */
static ssize_t
backup_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n = backup_read(cls, buf, max, 0);

	(void)pos;
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

/*
 * A job: checks the tenant and starts the producer; the poll thread
 * queues the stream (queue_reply: no reply deadline, a longer idle one).
 */
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
	int busy;
	struct backup_waker waker = { conn_suspend, conn_resume, conn };

	memset(&res, 0, sizeof(res));
	e = backup_start(&rq->t, rq->sub, &waker, &b, &busy, &res);
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
	rq->stream = 1;
	return finish_reply(conn, rq, 200, resp);
}

/* A query flag: 0 absent, 1 when it is one of yes, -1 after a 400. */
static int
query_choice(struct MHD_Connection *conn, struct request *rq, const char *name,
    const char *no, const char *yes)
{
	const char *v =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
	char detail[160];

	if (v == NULL || strcmp(v, no) == 0)
		return 0;
	if (strcmp(v, yes) == 0)
		return 1;
	snprintf(detail, sizeof(detail), "%s: must be %s or %s", name, no, yes);
	reply_error(conn, rq, 400, "invalid_request", detail);
	return -1;
}

static int
restore_status(enum restore_err e, enum tenant_err te)
{
	switch (e) {
	case RESTORE_OK:
		return 201;
	case RESTORE_INVALID:
		return 400;
	case RESTORE_INCOMPATIBLE:
	case RESTORE_NO_ADDONS:
		return 422;
	case RESTORE_NO_SPACE:
		return 507;
	case RESTORE_TENANT:
		break;
	}
	return tenant_status(te);
}

/* POST /api/tenant/restore?subdomain=S...: the body is in rq->spool_fd. */
static int
do_restore(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq)
{
	struct restore_request req;
	struct restore_result *res;
	struct cf_client *cf;
	struct timespec t0;
	enum restore_err e;
	cJSON *o, *from;
	int ret;

	if (check_query_nul(conn, rq) != 0)
		return MHD_YES;
	memset(&req, 0, sizeof(req));
	req.subdomain = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
	    "subdomain");
	req.domain =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "domain");
	if (req.domain != NULL && req.domain[0] == '\0')
		req.domain = NULL;
	if (req.subdomain == NULL)
		return reply_error(conn, rq, 400, "invalid_request",
		    "subdomain: required (?subdomain=NAME)");
	if ((req.copy = query_choice(conn, rq, "mode", "move", "copy")) < 0 ||
	    (req.neutralize = query_choice(conn, rq, "neutralize", "false",
	         "true")) < 0 ||
	    (req.takeover =
	            query_choice(conn, rq, "dns", "create", "takeover")) < 0)
		return MHD_YES;
	if (rq->spool_fd < 0 || rq->spooled == 0)
		return reply_error(conn, rq, 400, "invalid_backup",
		    "body: empty (send the backup zip as the body)");
	req.fd = rq->spool_fd;
	if ((res = calloc(1, sizeof(*res))) == NULL)
		return MHD_NO;
	cf = cf_for(rq->s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	e = restore_run(&rq->t, cf, &req, res);
	apimetrics_op(h->m, APIMETRICS_CREATE, seconds_since(&t0),
	    e == RESTORE_OK ? TENANT_OK : TENANT_INTERNAL);
	if (e == RESTORE_OK)
		apimetrics_dns(h->m, res->r.dns.status);
	cf_client_free(cf);
	tenant_cache_changed(h->list);
	if (e != RESTORE_OK) {
		ret = reply_error(conn, rq, restore_status(e, res->e),
		    restore_strerror(e, res->e), res->r.detail);
		free(res);
		return ret;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "subdomain", req.subdomain);
	cJSON_AddStringToObject(o, "database", req.subdomain);
	cJSON_AddStringToObject(o, "domain", res->domain);
	add_url(o, req.subdomain, res->domain);
	cJSON_AddNullToObject(o, "template_db");
	add_dns(o, &res->r.dns);
	from = cJSON_AddObjectToObject(o, "restored_from");
	if (res->m.db_name[0] != '\0')
		cJSON_AddStringToObject(from, "db_name", res->m.db_name);
	else
		cJSON_AddNullToObject(from, "db_name");
	if (res->m.version[0] != '\0')
		cJSON_AddStringToObject(from, "version", res->m.version);
	else
		cJSON_AddNullToObject(from, "version");
	cJSON_AddStringToObject(o, "mode", req.copy ? "copy" : "move");
	cJSON_AddBoolToObject(o, "neutralized", req.neutralize);
	free(res);
	return reply_json(conn, rq, 201, o, NULL);
}

/* Constant time whatever the lengths: compare SHA-256 digests. */
static int
key_ok(const struct settings *s, const char *key)
{
	unsigned char d[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];

	if (key == NULL)
		key = "";
	SHA256((const unsigned char *)key, strlen(key), d);
	/* The key of this request's settings: a reload may rotate it. */
	SHA256((const unsigned char *)s->api_key, s->api_key_len, want);
	return CRYPTO_memcmp(d, want, sizeof(d)) == 0 && key[0] != '\0';
}

/* An address as IPv6 (IPv4 mapped), zero when unknown. */
static void
sockaddr_in6_of(const struct sockaddr *sa, struct in6_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		out->s6_addr[10] = 0xff;
		out->s6_addr[11] = 0xff;
		memcpy(&out->s6_addr[12], &a->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;

		*out = a->sin6_addr;
	}
}

static void
client_addr(struct MHD_Connection *conn, struct in6_addr *out)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	sockaddr_in6_of(ci != NULL ? ci->client_addr : NULL, out);
}

static void
addr_str(const struct in6_addr *a, char *buf, size_t len)
{
	if (IN6_IS_ADDR_V4MAPPED(a))
		inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

/* The client's address as text (IPv4 without its ::ffff: prefix). */
static void
client_text(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct in6_addr a;

	snprintf(buf, len, "unknown");
	if (ci == NULL || ci->client_addr == NULL ||
	    (ci->client_addr->sa_family != AF_INET &&
	        ci->client_addr->sa_family != AF_INET6))
		return;
	sockaddr_in6_of(ci->client_addr, &a);
	addr_str(&a, buf, len);
}

/*
 * 1 when the hit of limit by a (NULL: the whole server) has not been logged
 * in the last HTTP_WARN_S seconds; it counts as logged then.
 */
static int
warn_due(struct http_server *h, const struct in6_addr *a, enum limit limit)
{
	static const struct in6_addr none;
	time_t now = time(NULL);
	int i, slot = -1, oldest = 0, due = 0;

	if (a == NULL)
		a = &none;
	pthread_mutex_lock(&h->warn_mu);
	for (i = 0; i < WARN_SLOTS; i++) {
		if (h->warned[i].last != 0 &&
		    h->warned[i].limit == (int)limit &&
		    memcmp(&h->warned[i].addr, a, sizeof(*a)) == 0) {
			slot = i;
			break;
		}
		if (h->warned[i].last < h->warned[oldest].last)
			oldest = i;
	}
	if (slot == -1) {
		slot = oldest;
		h->warned[slot].addr = *a;
		h->warned[slot].limit = (int)limit;
		h->warned[slot].last = 0;
	}
	if (h->warned[slot].last == 0 ||
	    now - h->warned[slot].last >= HTTP_WARN_S) {
		h->warned[slot].last = now;
		due = 1;
	}
	pthread_mutex_unlock(&h->warn_mu);
	return due;
}

/*
 * Records a failure; returns the delay (ms) before its 401 once an address
 * passed HTTP_AUTH_FAILS failures this minute. The connection waits
 * suspended (no thread sleeps): other requests are not affected.
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

/* -- suspensions: timed (sweeper) and jobs ------------------------------ */

/*
 * Suspends the connection until ms have passed or probe_until probes have
 * ended (0: time only); the handler is called again then. 0, or -1 when it
 * cannot wait (stopping, untracked): the caller answers now. Poll thread.
 */
static int
wait_timed(struct http_server *h, struct MHD_Connection *conn,
    struct request *rq, int ms, unsigned long probe_until)
{
	struct conn *c = rq->c;

	if (c == NULL)
		return -1;
	pthread_mutex_lock(&h->conn_mu);
	if (h->sweep_stop) {
		pthread_mutex_unlock(&h->conn_mu);
		return -1;
	}
	arm(c, PH_REQUEST, 0);
	MHD_suspend_connection(conn);
	c->waiting = 1;
	c->wake = nodo_mono_ms() + ms;
	c->probe_until = probe_until;
	pthread_cond_signal(&h->conn_cv);
	pthread_mutex_unlock(&h->conn_mu);
	return 0;
}

/* The probe thread, after each probe: waiters may go. */
static void
probe_ended_cb(void *arg)
{
	struct http_server *h = arg;

	pthread_mutex_lock(&h->conn_mu);
	pthread_cond_signal(&h->conn_cv);
	pthread_mutex_unlock(&h->conn_mu);
}

/* A job thread: the route runs with its reply kept, then resumes. */
static void
run_job(struct job *j)
{
	struct request *rq = (struct request *)(void *)((char *)j -
	    offsetof(struct request, job));
	struct MHD_Connection *mc = rq->mc;

	routes[rq->route].fn(rq->h, mc, rq);
	rq->job_done = 1;
	/* From here on rq belongs to the poll thread again. */
	MHD_resume_connection(mc);
}

static int
reply_busy(struct MHD_Connection *conn, struct request *rq)
{
	cJSON *o = cJSON_CreateObject();
	struct MHD_Response *resp;
	int status = 503;

	cJSON_AddStringToObject(o, "detail",
	    "server: too many requests waiting; retry in a second");
	cJSON_AddStringToObject(o, "code", "server_busy");
	if ((resp = json_response(o, &status)) != NULL)
		MHD_add_response_header(resp, "Retry-After", "1");
	return finish_reply(conn, rq, status, resp);
}

/* Hands a slow route to the job pool; 503 server_busy when it is full. */
static int
dispatch(struct http_server *h, struct MHD_Connection *conn, struct request *rq)
{
	const struct route *r = &routes[rq->route];

	if (jobs_reserve(h->jobs) != 0) {
		if (warn_due(h, NULL, L_JOBS))
			log_warn("job pool full (%d requests waiting or "
			         "running): answering 503 server_busy",
			    JOBS_QUEUE);
		return reply_busy(conn, rq);
	}
	rq->h = h;
	rq->mc = conn;
	rq->deferred = 1;
	rq->job.fn = run_job;
	rq->job.heavy = r->run == RUN_HEAVY;
	arm(rq->c, PH_REQUEST, 0);
	MHD_suspend_connection(conn);
	jobs_submit(h->jobs, &rq->job);
	return MHD_YES;
}

/* The reply kept while suspended, queued now. */
static int
queue_kept(struct MHD_Connection *conn, struct request *rq)
{
	struct MHD_Response *resp = rq->resp;

	rq->resp = NULL;
	rq->deferred = 0;
	return queue_reply(conn, rq, resp);
}

/*
 * The body so far, copied into a buffer that grows without realloc, so
 * that no unwiped copy of a password is left behind in freed memory; the
 * bytes in libmicrohttpd's read buffer are wiped once copied.
 */
static int
body_append(struct request *rq, const char *data, size_t n)
{
	if (rq->len + n + 1 > rq->cap) {
		size_t cap = rq->cap != 0 ? rq->cap : 1024;
		char *nb;

		while (cap < rq->len + n + 1)
			cap *= 2;
		if (cap > HTTP_MAX_BODY + 1)
			cap = HTTP_MAX_BODY + 1;
		if ((nb = malloc(cap)) == NULL)
			return -1;
		if (rq->body != NULL) {
			memcpy(nb, rq->body, rq->len);
			explicit_bzero(rq->body, rq->cap);
			free(rq->body);
		}
		rq->body = nb;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	rq->body[rq->len] = '\0';
	/* Handed over and consumed: libmicrohttpd reads it no more. */
	explicit_bzero((void *)(uintptr_t)data, n);
	return 0;
}

/*
 * 0 when url matches pattern, where a "{subdomain}" or "{id}" stands for
 * one non-empty path segment, copied into sub ("" when it does not fit:
 * the handler then refuses it as an invalid name or an unknown id).
 */
static int
route_match(const char *pattern, const char *url, char *sub, size_t len)
{
	const char *ph = strchr(pattern, '{'), *end;
	size_t pre, seg;

	if (ph == NULL || (end = strchr(ph, '}')) == NULL)
		return strcmp(pattern, url);
	end++;
	pre = (size_t)(ph - pattern);
	if (strncmp(pattern, url, pre) != 0)
		return -1;
	url += pre;
	seg = strcspn(url, "/");
	if (seg == 0 || strcmp(url + seg, end) != 0)
		return -1;
	if (seg < len) {
		memcpy(sub, url, seg);
		sub[seg] = '\0';
	} else
		sub[0] = '\0';
	return 0;
}

/* The body limit of rq's route: RESTORE_MAX_BYTES for a spooled one. */
static unsigned long long
body_limit(const struct http_server *h, const struct request *rq)
{
	if (rq->route >= 0 && routes[rq->route].has_body == BODY_SPOOL)
		return (unsigned long long)rq->s->restore_max_bytes;
	return HTTP_MAX_BODY;
}

static int
reply_too_large(struct MHD_Connection *conn, struct request *rq,
    const struct http_server *h)
{
	char detail[160];

	if (body_limit(h, rq) == HTTP_MAX_BODY)
		return reply_error(conn, rq, 413, "payload_too_large",
		    "body: larger than 65536 bytes");
	snprintf(detail, sizeof(detail),
	    "body: larger than RESTORE_MAX_BYTES (%llu bytes)",
	    body_limit(h, rq));
	return reply_error(conn, rq, 413, "payload_too_large", detail);
}

/*
 * A restore's body goes to an unlinked file under the data folder as it
 * arrives: never held in memory. Past the limit it is dropped (413 at the
 * end); a failed write is kept for the final reply (507 on ENOSPC).
 */
static void
spool_append(struct http_server *h, struct request *rq, const char *data,
    size_t n)
{
	if (rq->too_large || rq->spool_errno != 0)
		return;
	if (rq->spooled + n > body_limit(h, rq)) {
		rq->too_large = 1;
		return;
	}
	if (rq->spool_fd < 0 &&
	    (rq->spool_fd = restore_tmpfile(rq->s->data_dir)) < 0) {
		rq->spool_errno = errno != 0 ? errno : EIO;
		return;
	}
	while (n > 0) {
		ssize_t w = write(rq->spool_fd, data, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rq->spool_errno = w < 0 ? errno : EIO;
			return;
		}
		data += w;
		n -= (size_t)w;
		rq->spooled += (unsigned long long)w;
	}
}

/*
 * libmicrohttpd's unescaping, except that in the path (it starts with
 * '/') "%00" stays as it is: a decoded NUL would end the path early, and
 * "/api/trash/ID%00" would be a request about ID. Query arguments are
 * decoded as always (check_query_nul refuses their NULs).
 */
static size_t
path_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *r = s, *w = s;

	(void)cls;
	(void)conn;
	if (s[0] != '/')
		return MHD_http_unescape(s);
	while (*r != '\0') {
		if (r[0] == '%' && isxdigit((unsigned char)r[1]) &&
		    isxdigit((unsigned char)r[2]) &&
		    !(r[1] == '0' && r[2] == '0')) {
			char hex[3] = { r[1], r[2], '\0' };

			*w++ = (char)strtol(hex, NULL, 16);
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
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
		const union MHD_ConnectionInfo *ci;
		const char *cl, *allow = NULL, *key;
		int known = 0, keyed = 0, ret;
		char allowbuf[32] = "";
		unsigned long long body_max = HTTP_MAX_BODY;

		/* The poll thread's priority and budget (pollprio.h). */
		pollprio_tick(HTTP_POLL_NICE);
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		rq->spool_fd = -1;
		atomic_fetch_add(&h->inflight, 1);
		rq->s = settings_live_get(h->live);
		rq->t = *h->t;
		rq->t.s = rq->s;
		clock_gettime(CLOCK_MONOTONIC, &rq->start);
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		rq->c = ci != NULL ? ci->socket_context : NULL;
		rq->route = -1;
		snprintf(rq->method, sizeof(rq->method), "%s", method);
		snprintf(rq->path, sizeof(rq->path), "(other)");
		client_text(conn, rq->addr, sizeof(rq->addr));
		for (i = 0; i < NROUTES; i++) {
			if (route_match(routes[i].path, url, rq->sub,
			        sizeof(rq->sub)) != 0)
				continue;
			known = 1;
			keyed |= routes[i].needs_key;
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
		key = request_key(conn);
		if ((strncmp(url, "/api/", 5) == 0 || keyed) &&
		    !key_ok(rq->s, key)) {
			int delay = auth_failed(h, conn);

			apimetrics_auth_refused(h->m);
			/* Past the limit the flood is delayed, not logged. */
			log_msg(delay > 0 ? LOG_DEBUG : LOG_WARNING, NULL,
			    "refused %s %s from %s: %s", rq->method, rq->path,
			    rq->addr,
			    key == NULL || key[0] == '\0'
			        ? "no API key"
			        : "the API key does not match");
			/* Kept, then queued after the delay (suspended). */
			rq->deferred = 1;
			reply_error(conn, rq, 401, "unauthorized",
			    "X-API-KEY: missing or wrong API key");
			if (delay > 0 && wait_timed(h, conn, rq, delay, 0) == 0)
				return MHD_YES;
			return queue_kept(conn, rq);
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
			if (errno != 0 || end == cl || n > body_limit(h, rq)) {
				rq->too_large = 1;
				return reply_too_large(conn, rq, h);
			}
			body_max = n;
		}
		/* The headers are in; the body gets a bound by its size. */
		arm(rq->c, PH_REQUEST,
		    HTTP_BODY_S * 1000LL +
		        (long long)(body_max * 1000 / HTTP_BODY_RATE));
		return MHD_YES;
	}
	if (rq->resp != NULL) /* resumed with a reply kept */
		return queue_kept(conn, rq);
	if (rq->job_done) /* resumed, the job made no reply (OOM) */
		return MHD_NO;
	if (rq->status != 0) {
		/* Answered already (401, 404, 405, 413): drop the body. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size != 0 && routes[rq->route].has_body == BODY_SPOOL) {
		spool_append(h, rq, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		if (rq->too_large || rq->len + *upload_size > HTTP_MAX_BODY) {
			rq->too_large = 1;
		} else if (body_append(rq, upload, *upload_size) != 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	/* The request is complete: no deadline while it runs. */
	arm(rq->c, PH_REQUEST, 0);
	if (rq->too_large)
		return reply_too_large(conn, rq, h);
	if (rq->spool_errno != 0) {
		char detail[160];

		snprintf(detail, sizeof(detail),
		    "body: cannot be spooled to disk: %s",
		    strerror(rq->spool_errno));
		return reply_error(conn, rq,
		    rq->spool_errno == ENOSPC ? 507 : 500,
		    rq->spool_errno == ENOSPC ? "insufficient_storage"
		                              : "internal_error",
		    detail);
	}
	r = &routes[rq->route];
	if (!r->has_body && rq->len > 0)
		return reply_error(conn, rq, 400, "invalid_request",
		    "body: this route takes no body");
	if (r->run == RUN_INLINE)
		return r->fn(h, conn, rq);
	return dispatch(h, conn, rq);
}

/*
 * Wipes the stack below the caller (as libgcrypt's burn_stack): the frames
 * that handled a body on this poll thread are gone but their bytes stay.
 */
static void __attribute__((noinline)) burn_stack(void)
{
	char scrub[32 * 1024];

	explicit_bzero(scrub, sizeof(scrub));
	__asm__ volatile("" : : "r"(scrub) : "memory");
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
	apimetrics_request(h->m, rq->path, rq->status, ms / 1e3);
	/* /health and /metrics are polled by monitors: not in info logs. */
	log_msg(strcmp(rq->path, "/health") == 0 ||
	            strcmp(rq->path, "/metrics") == 0
	        ? LOG_DEBUG
	        : LOG_INFO,
	    NULL, "%s %s %d %.1f ms from %s%s", rq->method, rq->path,
	    rq->status, ms, rq->addr,
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	/* Kept alive: the next request is due like a new connection's. */
	arm(rq->c, PH_IDLE, HTTP_HEADER_S * 1000LL);
	if (rq->resp != NULL)
		MHD_destroy_response(rq->resp);
	if (rq->spool_fd >= 0)
		close(rq->spool_fd); /* unlinked: its blocks go with it */
	if (rq->body != NULL) {
		explicit_bzero(rq->body, rq->cap);
		burn_stack();
	}
	free(rq->body);
	settings_live_put(h->live, rq->s);
	free(rq);
	*con_cls = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

/* -- connections: the per-address limit and the deadlines ---------------- */

/* Connections from a, open or accepted and not yet started. conn_mu held. */
static int
count_from(struct http_server *h, const struct in6_addr *a, long long now)
{
	struct conn *c;
	int i, n = 0;

	for (c = h->conns; c != NULL; c = c->next)
		if (memcmp(&c->addr, a, sizeof(*a)) == 0)
			n++;
	for (i = 0; i < PEND_SLOTS; i++) {
		if (!h->pend[i].used)
			continue;
		if (now - h->pend[i].ms > 1000) /* never started (OOM) */
			h->pend[i].used = 0;
		else if (memcmp(&h->pend[i].addr, a, sizeof(*a)) == 0)
			n++;
	}
	return n;
}

/*
 * The accept policy: at most HTTP_PER_IP_LIMIT connections per address.
 * Here rather than MHD_OPTION_PER_IP_CONNECTION_LIMIT, which refuses
 * before this callback and logs no address. An accepted connection is
 * pending until libmicrohttpd starts it (notify_conn), on the same thread.
 */
static enum MHD_Result
accept_ok(void *cls, const struct sockaddr *sa, socklen_t salen)
{
	struct http_server *h = cls;
	struct in6_addr a;
	long long now = nodo_mono_ms();
	int i, n;

	(void)salen;
	pollprio_tick(HTTP_POLL_NICE);
	sockaddr_in6_of(sa, &a);
	pthread_mutex_lock(&h->conn_mu);
	n = count_from(h, &a, now);
	if (n < HTTP_PER_IP_LIMIT) {
		for (i = 0; i < PEND_SLOTS; i++) {
			if (!h->pend[i].used) {
				h->pend[i].used = 1;
				h->pend[i].addr = a;
				h->pend[i].tid = pthread_self();
				h->pend[i].ms = now;
				break;
			}
		}
	}
	pthread_mutex_unlock(&h->conn_mu);
	if (n < HTTP_PER_IP_LIMIT)
		return MHD_YES;
	if (warn_due(h, &a, L_PER_IP)) {
		char as[INET6_ADDRSTRLEN];

		addr_str(&a, as, sizeof(as));
		log_warn("connection limit: %s has %d connections open "
		         "(HTTP_PER_IP_LIMIT); refusing more (logged once a "
		         "minute)",
		    as, n);
	}
	return MHD_NO;
}

static void
notify_conn(void *cls, struct MHD_Connection *mc, void **sc,
    enum MHD_ConnectionNotificationCode code)
{
	struct http_server *h = cls;
	struct conn *c;
	int i, n;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if ((c = *sc) == NULL)
			return;
		pthread_mutex_lock(&h->conn_mu);
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			h->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		h->nconns--;
		pthread_mutex_unlock(&h->conn_mu);
		free(c);
		*sc = NULL;
		return;
	}
	c = calloc(1, sizeof(*c));
	pthread_mutex_lock(&h->conn_mu);
	for (i = 0; i < PEND_SLOTS; i++) {
		if (h->pend[i].used &&
		    pthread_equal(h->pend[i].tid, pthread_self())) {
			h->pend[i].used = 0;
			break;
		}
	}
	if (c != NULL) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc,
		    MHD_CONNECTION_INFO_CONNECTION_FD);

		c->mc = mc;
		c->fd = ci != NULL ? ci->connect_fd : -1;
		client_addr(mc, &c->addr);
		arm(c, PH_REQUEST, HTTP_HEADER_S * 1000LL);
		c->next = h->conns;
		if (h->conns != NULL)
			h->conns->prev = c;
		h->conns = c;
		h->nconns++;
	}
	n = h->nconns;
	pthread_mutex_unlock(&h->conn_mu);
	*sc = c; /* NULL on OOM: served, but without a deadline */
	if (n >= HTTP_CONN_LIMIT && warn_due(h, NULL, L_TOTAL))
		log_warn("connection limit: %d connections open "
		         "(HTTP_CONN_LIMIT); new ones wait in the listen "
		         "queue (logged once a minute)",
		    n);
}

/* A connection past its deadline: 408 if a request was under way, close. */
static void
expire(struct http_server *h, struct conn *c)
{
	static const char body[] =
	    "{\"detail\":\"request: not complete in time (headers within "
	    "10 s, a body within 5 s plus 1 s per 8 KiB)\","
	    "\"code\":\"request_timeout\"}";
	char msg[512];
	int n;

	if (c->fd < 0)
		return;
	if (atomic_load(&c->phase) == PH_REQUEST) {
		n = snprintf(msg, sizeof(msg),
		    "HTTP/1.1 408 Request Timeout\r\n"
		    "Content-Type: application/json\r\n"
		    "Cache-Control: no-store\r\nConnection: close\r\n"
		    "Content-Length: %zu\r\n\r\n%s",
		    sizeof(body) - 1, body);
		if (send(c->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) <
		    0)
			log_debug("408: %s", strerror(errno));
		if (warn_due(h, &c->addr, L_DEADLINE)) {
			char as[INET6_ADDRSTRLEN];

			addr_str(&c->addr, as, sizeof(as));
			log_warn("request deadline: closing a connection from "
			         "%s that did not complete its request in time "
			         "(logged once a minute per address)",
			    as);
		}
	}
	/* libmicrohttpd sees the end of the stream and closes it. */
	shutdown(c->fd, SHUT_RDWR);
}

static void *
sweep(void *arg)
{
	struct http_server *h = arg;
	struct conn *c;

	pthread_mutex_lock(&h->conn_mu);
	while (!h->sweep_stop) {
		long long now = nodo_mono_ms(), next = now + 1000;
		unsigned long ended = probe_ended(h->probe);
		struct timespec ts;

		for (c = h->conns; c != NULL; c = c->next) {
			long long d;

			if (c->waiting) {
				if (now >= c->wake ||
				    (c->probe_until != 0 &&
				        ended >= c->probe_until)) {
					c->waiting = 0;
					MHD_resume_connection(c->mc);
				} else if (c->wake < next)
					next = c->wake;
				continue;
			}
			if ((d = atomic_load(&c->deadline)) == 0)
				continue;
			if (now < d) {
				if (d < next)
					next = d;
				continue;
			}
			if (atomic_compare_exchange_strong(&c->deadline, &d, 0))
				expire(h, c);
		}
		ts.tv_sec = (time_t)(next / 1000);
		ts.tv_nsec = (long)(next % 1000) * 1000000;
		pthread_cond_timedwait(&h->conn_cv, &h->conn_mu, &ts);
	}
	/* Stopping: nothing stays suspended (MHD_stop_daemon requires it). */
	for (c = h->conns; c != NULL; c = c->next) {
		if (c->waiting) {
			c->waiting = 0;
			MHD_resume_connection(c->mc);
		}
	}
	pthread_mutex_unlock(&h->conn_mu);
	return NULL;
}

/*
 * cJSON's memory is wiped when freed: request trees hold admin_password,
 * replies from Cloudflare may echo what we sent.
 */
static void
wipe_free(void *p)
{
	if (p != NULL)
		explicit_bzero(p, malloc_usable_size(p));
	free(p);
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

/* Enough descriptors for every connection, the pool and the rest. */
static void
raise_nofile(void)
{
	struct rlimit rl;
	rlim_t want = HTTP_CONN_LIMIT + PG_POOL_MAX_OPEN + 128;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		log_warn("only %llu file descriptors (RLIMIT_NOFILE): fewer "
		         "than %d connections may be served",
		    (unsigned long long)rl.rlim_cur, HTTP_CONN_LIMIT);
}

static void
free_server(struct http_server *h)
{
	tenant_cache_free(h->list);
	pthread_cond_destroy(&h->conn_cv);
	pthread_mutex_destroy(&h->conn_mu);
	pthread_mutex_destroy(&h->warn_mu);
	pthread_mutex_destroy(&h->auth_mu);
	node_free(h->node);
	apimetrics_free(h->m);
	free(h);
}

/*
 * Stops the threads http_start started, in the order that leaves no
 * connection suspended (MHD_stop_daemon requires it). Their state stays
 * readable until free_workers(): poll threads may still ask.
 */
static void
stop_workers(struct http_server *h)
{
	if (h->jobs != NULL)
		jobs_drain(h->jobs); /* every queued job runs and resumes */
	if (h->sweeper_started) {
		pthread_mutex_lock(&h->conn_mu);
		h->sweep_stop = 1;
		pthread_cond_signal(&h->conn_cv);
		pthread_mutex_unlock(&h->conn_mu);
		pthread_join(h->sweeper, NULL);
		h->sweeper_started = 0;
	}
	if (h->probe != NULL)
		probe_halt(h->probe);
	backup_halt_all(); /* backups' readers resume and fail */
}

static void
free_workers(struct http_server *h)
{
	jobs_free(h->jobs);
	probe_free(h->probe);
	h->jobs = NULL;
	h->probe = NULL;
}

struct http_server *
http_start(const struct settings *s, struct tenant_ctx *tctx, int listen_fd)
{
	static cJSON_Hooks hooks = { malloc, wipe_free };
	struct http_server *h;
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	const struct sockaddr *sa;
	pthread_condattr_t ca;
	pthread_attr_t attr;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->s = s;
	h->t = tctx;
	h->live = tctx->live;
	if ((h->m = apimetrics_new()) == NULL ||
	    (h->node = node_new(tctx)) == NULL) {
		log_err("out of memory");
		apimetrics_free(h->m);
		free(h);
		return NULL;
	}
	for (size_t i = 0; i < NROUTES; i++)
		apimetrics_route(h->m, routes[i].path);
	pthread_mutex_init(&h->auth_mu, NULL);
	pthread_mutex_init(&h->warn_mu, NULL);
	pthread_mutex_init(&h->conn_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->conn_cv, &ca);
	pthread_condattr_destroy(&ca);
	cJSON_InitHooks(&hooks);
	raise_nofile();
	if ((h->list = tenant_cache_new(tctx)) == NULL) {
		free_server(h);
		return NULL;
	}

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
		free_server(h);
		return NULL;
	}
	if ((h->probe = probe_start(s, probe_ended_cb, h)) == NULL ||
	    (h->jobs = jobs_start(JOBS_THREADS, JOBS_HEAVY, JOBS_QUEUE,
	         HTTP_THREAD_STACK)) == NULL) {
		stop_workers(h);
		free_workers(h);
		free_server(h);
		return NULL;
	}
	/* /health's first answers should not wait for the first probe. */
	for (int i = 0;
	     i < HTTP_FIRST_PROBE_MS / 5 && probe_ended(h->probe) == 0; i++)
		usleep(5 * 1000);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&h->sweeper, &attr, sweep, h) != 0) {
		pthread_attr_destroy(&attr);
		log_err("cannot start the connection sweeper");
		stop_workers(h);
		free_workers(h);
		free_server(h);
		return NULL;
	}
	pthread_attr_destroy(&attr);
	pthread_setname_np(h->sweeper, "nodo-sweep");
	h->sweeper_started = 1;
	/* The logger first, so that option errors reach it too. */
	h->d = MHD_start_daemon(flags, (uint16_t)s->api_port, accept_ok, h,
	    handler, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)HTTP_POLL_THREADS, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)HTTP_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_CONN_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)HTTP_CONN_MEMORY, MHD_OPTION_THREAD_STACK_SIZE,
	    (size_t)HTTP_THREAD_STACK, MHD_OPTION_NOTIFY_COMPLETED, completed,
	    h, MHD_OPTION_NOTIFY_CONNECTION, notify_conn, h,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
	    MHD_OPTION_UNESCAPE_CALLBACK, path_unescape, NULL, MHD_OPTION_END);
	if (h->d == NULL) {
		log_err("cannot listen on %s port %d: %s", s->api_host,
		    s->api_port, strerror(errno));
		stop_workers(h);
		free_workers(h);
		free_server(h);
		return NULL;
	}
	return h;
}

void
http_reloaded(struct http_server *h)
{
	/* The list's bodies follow the zones: rebuild it. */
	tenant_cache_changed(h->list);
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
	stop_workers(h);
	MHD_stop_daemon(h->d);
	free_workers(h);
	free_server(h);
}
