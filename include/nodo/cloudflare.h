/*
 * cloudflare.h - the Cloudflare DNS client (libcurl + cJSON).
 *
 * One tenant, one record (CONTRACT section 5): CNAME <sub>.<domain> ->
 * <tunnel>.cfargotunnel.com, proxied, ttl 1, with the ownership comment
 * CF_OWNER_COMMENT. The client never changes or deletes a record without
 * that comment. Every call has a connect and a total timeout. A cf_client is
 * NOT thread-safe: use one per thread (they are cheap; the curl handle is
 * reused across calls so connections are kept alive).
 */
#ifndef NODO_CLOUDFLARE_H
#define NODO_CLOUDFLARE_H

#include <stddef.h>
#include <time.h>

#define CF_OWNER_COMMENT      "managed-by=nodo"
#define CF_CONNECT_TIMEOUT_MS 3000
#define CF_TOTAL_TIMEOUT_MS   8000
#define CF_MAX_REPLY          (8 * 1024 * 1024) /* bytes, one reply body */
#define CF_PER_PAGE           1000              /* records per list page */
#define CF_MAX_PAGES          1000
#define CF_MAX_ID             64 /* chars of a zone or record id, [0-9a-zA-Z] */

#define CF_ZONE_ID_LEN 32 /* a zone id: 32 lower-case hex digits */

/*
 * The one zone-id rule (settings check domains.json with it, the client
 * refuses any other id before a request): 1 when id is CF_ZONE_ID_LEN
 * characters of 0-9 and a-f.
 */
int cf_zone_id_valid(const char *id);

enum cf_status {
	CF_CREATED,  /* we created the record */
	CF_EXISTS,   /* our record (same target, ours) was already there */
	CF_DELETED,  /* we deleted our record */
	CF_ABSENT,   /* no record of ours to delete */
	CF_CONFLICT, /* the name is held by a record we do not own */
	CF_PENDING,  /* Cloudflare failed (5xx, timeout, 429, bad reply...) */
	CF_DISABLED, /* no token */
};

/* "created", "exists", "deleted", "absent", "conflict", "pending", "disabled" */
const char *cf_status_str(enum cf_status st);

/* Result of one operation; detail is a sentence with no secret in it. */
struct cf_result {
	enum cf_status status;
	char record_id[CF_MAX_ID + 1]; /* created/exists/deleted: its id */
	char detail[512]; /* pending/conflict: why (names the other record) */
	int http_status;  /* last HTTP status, 0 when none */
	int retry_after;  /* seconds from Retry-After on 429, else 0 */
	int rate_limited; /* 1 when the last reply was 429 */
};

struct cf_client;

/*
 * base_url: CLOUDFLARE_API_URL (no trailing slash); token may be NULL or ""
 * (then every call answers CF_DISABLED). Returns NULL on allocation failure.
 */
struct cf_client *cf_client_new(const char *base_url, const char *token);
void cf_client_free(struct cf_client *c);

/* Number of HTTP requests this client has sent (for tests and figures). */
unsigned long cf_client_requests(const struct cf_client *c);

/*
 * fn(arg, method, http_status) is called after every request that reached
 * the wire (http_status 0 when no reply came), on the calling thread; NULL
 * removes it. For metrics: keep it cheap.
 */
typedef void (*cf_observer_fn)(void *arg, const char *method, long http);
void cf_client_set_observer(struct cf_client *c, cf_observer_fn fn, void *arg);

/*
 * Overrides CF_CONNECT_TIMEOUT_MS / CF_TOTAL_TIMEOUT_MS for this client
 * (tests use short ones); a value <= 0 restores the default.
 */
void cf_client_set_timeouts(struct cf_client *c, long connect_ms,
    long total_ms);

/*
 * Makes sure fqdn has our CNAME to target in zone_id, for a name believed
 * free (a new tenant, or one a fresh zone listing does not hold): POSTs
 * first, one request in the common case. Only Cloudflare's "already exists"
 * refusal (81053/81054/81057/81058) costs a look-up by full name (all
 * types): CF_EXISTS when ours is there (fixed when it drifted), CF_CONFLICT
 * when another record holds the name (never touched).
 */
void cf_ensure_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res);

/*
 * The same outcome for a name known to hold records (ours drifted, or a
 * record that may have gone): looks up first, creates when absent; an
 * "already exists" on that create is a race: it looks again once.
 */
void cf_repair_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res);

/*
 * cf_repair_cname(), except that a CNAME with our ownership comment that
 * points at another target (another node's tunnel: a tenant moved here)
 * is changed to target (PATCH: CF_CREATED with its id). A record without
 * our comment is never touched (CF_CONFLICT). For restores with
 * dns=takeover.
 */
void cf_takeover_cname(struct cf_client *c, const char *zone_id,
    const char *fqdn, const char *target, struct cf_result *res);

/*
 * Deletes our CNAME for fqdn (ours = our comment and target as content);
 * 404/81044 is CF_ABSENT.
 */
void cf_delete_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res);

/* Deletes one record by id (the caller checked it is ours). */
void cf_delete_record(struct cf_client *c, const char *zone_id,
    const char *record_id, struct cf_result *res);

/* One record as listed. */
struct cf_record {
	char id[CF_MAX_ID + 1];
	char type[16];
	char name[256]; /* FQDN, lower case */
	char content[256];
	int proxied;
	int owned; /* comment is CF_OWNER_COMMENT */
};

/*
 * Lists every record of a zone, page by page (CF_PER_PAGE a page). Calls cb
 * for each; returns 0, or -1 with res filled (status CF_PENDING, or
 * CF_DISABLED without a token). On -1 cb may already have seen the pages
 * read before the failure. Records whose id or name cannot be held are
 * skipped (logged); contents longer than the field are cut.
 */
typedef void (*cf_record_cb)(void *arg, const struct cf_record *r);
int cf_list_zone(struct cf_client *c, const char *zone_id, cf_record_cb cb,
    void *arg, struct cf_result *res);

/*
 * Parses one Cloudflare reply body (the envelope). Exposed for tests and
 * fuzzing: returns the cJSON root when it is an envelope (caller frees with
 * cJSON_Delete), NULL otherwise; *success, first error code and message.
 */
struct cJSON;
struct cJSON *cf_parse_envelope(const char *body, size_t len, int *success,
    int *err_code, char *err_msg, size_t err_msg_len);

#endif
