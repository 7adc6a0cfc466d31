/*
 * cloudflare.c - the Cloudflare DNS client (libcurl + cJSON).
 *
 * Each tenant owns one proxied CNAME carrying CF_OWNER_COMMENT (CONTRACT
 * section 5; facts in reference/CLOUDFLARE.md). Every request goes through
 * cf_call(), which applies the same limits to all of them: connect and total
 * timeouts, http/https only, no redirects, a capped reply body, and one
 * mapping of "anything went wrong" onto CF_PENDING with a sentence that never
 * holds the token. The easy handle is reused so keep-alive connections to the
 * API survive between calls; a client is therefore not thread-safe.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "nodo/cloudflare.h"
#include "nodo/log.h"

#define CF_DEFAULT_URL     "https://api.cloudflare.com/client/v4"
#define CF_MAX_URL         4096  /* bytes, one request URL */
#define CF_MAX_NAME        253   /* chars, a DNS name in text form */
#define CF_LOOKUP_PER_PAGE 100   /* records, one by-name lookup */
#define CF_MAX_RETRY_AFTER 86400 /* seconds; longer hints are clamped */
#define CF_MAX_ERRMSG      200   /* bytes of a Cloudflare message we quote */
#define CF_MAX_DETAIL      2048  /* bytes, a detail before it is cut */
#define CF_REPLY_CHUNK     4096  /* bytes, first allocation of a reply */

/* Create refusals that mean "something already holds the name". */
#define CF_ERR_NAME_TAKEN  81053 /* A, AAAA or CNAME with that host */
#define CF_ERR_CNAME_TAKEN 81054 /* a CNAME with that host */
#define CF_ERR_OLD_DUP     81057 /* "Record already exists." (older) */
#define CF_ERR_IDENTICAL   81058 /* an identical record */
#define CF_ERR_NO_RECORD   81044 /* record id unknown */

struct cf_client {
	CURL *curl;                   /* NULL when disabled */
	char *base_url;               /* no trailing slash */
	char *token;                  /* secret; kept only to scrub details */
	struct curl_slist *hdrs;      /* Authorization + Accept */
	struct curl_slist *hdrs_body; /* the same + Content-Type */
	int disabled;                 /* no token: every call is CF_DISABLED */
	int bad_token;                /* token unusable in a header */
	long connect_ms;
	long total_ms;
	unsigned long requests;
	cf_observer_fn observe; /* told of every request sent, or NULL */
	void *observe_arg;
	char errbuf[CURL_ERROR_SIZE];
};

/* How one call ended; details are already in the cf_result. */
enum cf_outcome {
	CF_OK,        /* 2xx with success:true; reply->root is set */
	CF_API_ERROR, /* an envelope that reports failure; err_code is set */
	CF_FAILED,    /* transport, 5xx, 429, cut or unreadable reply */
};

struct cf_reply {
	long http;
	int err_code;
	cJSON *root; /* the envelope on CF_OK; the caller deletes it */
};

struct cf_buf {
	char *data;
	size_t len;
	size_t cap;
	int overflow; /* the reply passed CF_MAX_REPLY */
	int nomem;
};

/*
 * libcurl wants curl_global_init() once before any thread uses it. The once
 * flag and its outcome are the module's only globals, written once and never
 * reset: curl_global_cleanup() while another thread holds a client would be
 * unsafe, and the process exits soon enough.
 */
static pthread_once_t cf_once = PTHREAD_ONCE_INIT;
static CURLcode cf_global_rc = CURLE_FAILED_INIT;

static void
cf_global_init(void)
{
	cf_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *
cf_status_str(enum cf_status st)
{
	switch (st) {
	case CF_CREATED:
		return "created";
	case CF_EXISTS:
		return "exists";
	case CF_DELETED:
		return "deleted";
	case CF_ABSENT:
		return "absent";
	case CF_CONFLICT:
		return "conflict";
	case CF_PENDING:
		return "pending";
	case CF_DISABLED:
		return "disabled";
	}
	return "pending";
}

/* Zone and record ids go into URL paths, so only [0-9a-zA-Z] may pass. */
static int
cf_valid_id(const char *id)
{
	size_t n;

	if (id == NULL)
		return 0;
	for (n = 0; id[n] != '\0'; n++) {
		if (n >= CF_MAX_ID || !isalnum((unsigned char)id[n]))
			return 0;
	}
	return n > 0;
}

int
cf_zone_id_valid(const char *id)
{
	size_t n;

	if (id == NULL)
		return 0;
	for (n = 0; id[n] != '\0'; n++) {
		if (n >= CF_ZONE_ID_LEN ||
		    !((id[n] >= '0' && id[n] <= '9') ||
		        (id[n] >= 'a' && id[n] <= 'f')))
			return 0;
	}
	return n == CF_ZONE_ID_LEN;
}

/* Names and targets: the DNS characters, plus '_' which tenants use. */
static int
cf_valid_name(const char *s)
{
	size_t n;
	unsigned char ch;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++) {
		ch = (unsigned char)s[n];
		if (n >= CF_MAX_NAME)
			return 0;
		if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_')
			return 0;
	}
	return n > 0;
}

/* A token lands in a header line: control bytes or spaces would split it. */
static int
cf_valid_token(const char *t)
{
	for (; *t != '\0'; t++) {
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return 0;
	}
	return 1;
}

static void
cf_result_init(struct cf_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = CF_PENDING;
}

/* Copies src into dst (size n), cut to fit; dst is always terminated. */
static void
cf_copy(char *dst, size_t n, const char *src)
{
	size_t len;

	if (n == 0)
		return;
	len = strlen(src);
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * Masks every copy of the token in buf, and a tail that could be the start
 * of one (text cut to size may end inside it). Shorter tails than
 * CF_MASK_MIN_TAIL are left: they give nothing away and would mask noise.
 */
#define CF_MASK_MIN_TAIL 4

static void
cf_mask(const char *token, char *buf)
{
	size_t tlen, blen, k;
	char *p;

	if (token == NULL || (tlen = strlen(token)) == 0)
		return;
	while ((p = strstr(buf, token)) != NULL)
		memset(p, '*', tlen);
	blen = strlen(buf);
	for (k = tlen - 1; k >= CF_MASK_MIN_TAIL; k--) {
		if (k <= blen && memcmp(buf + blen - k, token, k) == 0) {
			memset(buf + blen - k, '*', k);
			break;
		}
	}
}

/*
 * Writes a detail. Text from the server is quoted in it, so bytes that could
 * forge log lines are replaced and, in case a server echoes our request, any
 * copy of the token is masked, before and after the sentence is cut to size.
 */
static void cf_detail(const struct cf_client *c, struct cf_result *res,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
cf_detail(const struct cf_client *c, struct cf_result *res, const char *fmt,
    ...)
{
	char buf[CF_MAX_DETAIL];
	va_list ap;
	size_t i;
	unsigned char ch;

	va_start(ap, fmt);
	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		cf_copy(buf, sizeof(buf), "cloudflare: error");
	va_end(ap);
	for (i = 0; buf[i] != '\0'; i++) {
		ch = (unsigned char)buf[i];
		if (ch < 0x20 || ch >= 0x7f)
			buf[i] = '?';
	}
	if (c != NULL)
		cf_mask(c->token, buf);
	cf_copy(res->detail, sizeof(res->detail), buf);
	if (c != NULL)
		cf_mask(c->token, res->detail);
}

struct cf_client *
cf_client_new(const char *base_url, const char *token)
{
	struct cf_client *c;
	size_t len, alen = 0;
	char *auth = NULL;
	struct curl_slist *l;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->connect_ms = CF_CONNECT_TIMEOUT_MS;
	c->total_ms = CF_TOTAL_TIMEOUT_MS;
	if (base_url == NULL || *base_url == '\0')
		base_url = CF_DEFAULT_URL;
	if ((c->base_url = strdup(base_url)) == NULL)
		goto fail;
	/* Paths start with '/', so a trailing one would double it. */
	len = strlen(c->base_url);
	while (len > 0 && c->base_url[len - 1] == '/')
		c->base_url[--len] = '\0';

	if (token == NULL || *token == '\0') {
		c->disabled = 1;
		return c;
	}
	if ((c->token = strdup(token)) == NULL)
		goto fail;
	if (!cf_valid_token(token)) {
		/* Reported on every call; the token itself is never shown. */
		c->bad_token = 1;
		return c;
	}

	if (pthread_once(&cf_once, cf_global_init) != 0 ||
	    cf_global_rc != CURLE_OK)
		goto fail;
	if ((c->curl = curl_easy_init()) == NULL)
		goto fail;

	alen = sizeof("Authorization: Bearer ") + strlen(token);
	if ((auth = malloc(alen)) == NULL)
		goto fail;
	if (snprintf(auth, alen, "Authorization: Bearer %s", token) < 0)
		goto fail;
	if ((l = curl_slist_append(NULL, auth)) == NULL)
		goto fail;
	c->hdrs = l;
	if ((l = curl_slist_append(c->hdrs, "Accept: application/json")) ==
	    NULL)
		goto fail;
	if ((l = curl_slist_append(NULL, auth)) == NULL)
		goto fail;
	c->hdrs_body = l;
	if ((l = curl_slist_append(c->hdrs_body, "Accept: application/json")) ==
	    NULL)
		goto fail;
	if ((l = curl_slist_append(c->hdrs_body,
	         "Content-Type: application/json")) == NULL)
		goto fail;
	/* Small bodies: a 100-continue round trip would only add latency. */
	if ((l = curl_slist_append(c->hdrs_body, "Expect:")) == NULL)
		goto fail;
	explicit_bzero(auth, alen);
	free(auth);
	return c;
fail:
	if (auth != NULL) {
		explicit_bzero(auth, alen);
		free(auth);
	}
	cf_client_free(c);
	return NULL;
}

void
cf_client_free(struct cf_client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->hdrs);
	curl_slist_free_all(c->hdrs_body);
	if (c->token != NULL) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c->base_url);
	free(c);
}

unsigned long
cf_client_requests(const struct cf_client *c)
{
	return c == NULL ? 0 : c->requests;
}

void
cf_client_set_observer(struct cf_client *c, cf_observer_fn fn, void *arg)
{
	if (c == NULL)
		return;
	c->observe = fn;
	c->observe_arg = arg;
}

void
cf_client_set_timeouts(struct cf_client *c, long connect_ms, long total_ms)
{
	if (c == NULL)
		return;
	c->connect_ms = connect_ms > 0 ? connect_ms : CF_CONNECT_TIMEOUT_MS;
	c->total_ms = total_ms > 0 ? total_ms : CF_TOTAL_TIMEOUT_MS;
}

/*
 * Checks what every operation needs before it may send anything. Returns 0
 * when the call may go on, -1 with res filled otherwise.
 */
static int
cf_precheck(struct cf_client *c, const char *zone_id, struct cf_result *res)
{
	if (c == NULL) {
		cf_detail(NULL, res, "cloudflare: no client");
		return -1;
	}
	if (c->disabled) {
		res->status = CF_DISABLED;
		cf_detail(c, res, "cloudflare: no API token, DNS is disabled");
		return -1;
	}
	if (c->bad_token) {
		cf_detail(c, res,
		    "cloudflare: API token has invalid characters");
		return -1;
	}
	if (!cf_zone_id_valid(zone_id)) {
		cf_detail(c, res,
		    "cloudflare: invalid zone id (%d characters of 0-9 and "
		    "a-f expected)",
		    CF_ZONE_ID_LEN);
		return -1;
	}
	return 0;
}

static size_t
cf_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct cf_buf *b = arg;
	size_t n, ncap;
	char *nd;

	if (size != 0 && nmemb > SIZE_MAX / size)
		return 0;
	n = size * nmemb;
	if (n > CF_MAX_REPLY - b->len) {
		/* Returning short makes curl abort with CURLE_WRITE_ERROR. */
		b->overflow = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : CF_REPLY_CHUNK;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > (size_t)CF_MAX_REPLY + 1)
			ncap = (size_t)CF_MAX_REPLY + 1;
		if ((nd = realloc(b->data, ncap)) == NULL) {
			b->nomem = 1;
			return 0;
		}
		b->data = nd;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

struct cJSON *
cf_parse_envelope(const char *body, size_t len, int *success, int *err_code,
    char *err_msg, size_t err_msg_len)
{
	cJSON *root, *ok, *errs, *e0, *code, *msg;
	const char *end = NULL;

	if (success != NULL)
		*success = 0;
	if (err_code != NULL)
		*err_code = 0;
	if (err_msg != NULL && err_msg_len > 0)
		err_msg[0] = '\0';
	/* cJSON would skip a NUL as white space; JSON has no room for one. */
	if (body == NULL || len == 0 || memchr(body, '\0', len) != NULL)
		return NULL;
	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (root == NULL)
		return NULL;
	/* One JSON value and nothing after it but white space. */
	for (; end < body + len; end++) {
		if (*end != ' ' && *end != '\t' && *end != '\r' &&
		    *end != '\n') {
			cJSON_Delete(root);
			return NULL;
		}
	}
	ok = cJSON_GetObjectItemCaseSensitive(root, "success");
	if (!cJSON_IsObject(root) || !cJSON_IsBool(ok)) {
		cJSON_Delete(root);
		return NULL;
	}
	if (success != NULL)
		*success = cJSON_IsTrue(ok);
	errs = cJSON_GetObjectItemCaseSensitive(root, "errors");
	e0 = cJSON_IsArray(errs) ? cJSON_GetArrayItem(errs, 0) : NULL;
	if (!cJSON_IsObject(e0))
		return root;
	code = cJSON_GetObjectItemCaseSensitive(e0, "code");
	/* Codes are small positive integers; anything else is not one. */
	if (err_code != NULL && cJSON_IsNumber(code) &&
	    code->valuedouble >= 0 && code->valuedouble <= INT_MAX &&
	    code->valuedouble == (double)(int)code->valuedouble)
		*err_code = (int)code->valuedouble;
	msg = cJSON_GetObjectItemCaseSensitive(e0, "message");
	if (err_msg != NULL && err_msg_len > 0 && cJSON_IsString(msg) &&
	    msg->valuestring != NULL)
		cf_copy(err_msg, err_msg_len, msg->valuestring);
	return root;
}

/* Sets every per-request option; returns the first failure. */
static CURLcode
cf_setup(struct cf_client *c, const char *method, const char *url,
    const char *body, struct cf_buf *buf)
{
	CURLcode rc = CURLE_OK;

#define CF_SET(opt, val)                                                       \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(c->curl, (opt), (val));          \
	} while (0)
	/* reset keeps the connection cache, so keep-alive still works. */
	curl_easy_reset(c->curl);
	CF_SET(CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	CF_SET(CURLOPT_PROTOCOLS_STR, "http,https");
	CF_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	CF_SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	CF_SET(CURLOPT_REDIR_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* A redirect is never part of the API; following one could leak. */
	CF_SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* Signals would break a multi-threaded daemon on DNS timeouts. */
	CF_SET(CURLOPT_NOSIGNAL, 1L);
	CF_SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	CF_SET(CURLOPT_TIMEOUT_MS, c->total_ms);
	CF_SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CF_MAX_REPLY);
	CF_SET(CURLOPT_WRITEFUNCTION, cf_write_cb);
	CF_SET(CURLOPT_WRITEDATA, buf);
	CF_SET(CURLOPT_ERRORBUFFER, c->errbuf);
#ifdef NODO_VERSION
	CF_SET(CURLOPT_USERAGENT, "nodo/" NODO_VERSION);
#else
	CF_SET(CURLOPT_USERAGENT, "nodo");
#endif
	CF_SET(CURLOPT_HTTPHEADER, body != NULL ? c->hdrs_body : c->hdrs);
	if (strcmp(method, "GET") == 0) {
		CF_SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "POST") == 0) {
		CF_SET(CURLOPT_POST, 1L);
	} else {
		CF_SET(CURLOPT_CUSTOMREQUEST, method);
	}
	if (body != NULL) {
		CF_SET(CURLOPT_POSTFIELDS, body);
		CF_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
#undef CF_SET
	return rc;
}

/*
 * Sends one request and sorts the answer. path has no query (it is what
 * details show); query may be NULL; body is JSON or NULL. On CF_OK,
 * reply->root holds the envelope for the caller to delete; on anything else
 * res is CF_PENDING with a detail and reply->root is NULL.
 */
static enum cf_outcome
cf_call(struct cf_client *c, const char *method, const char *path,
    const char *query, const char *body, struct cf_reply *reply,
    struct cf_result *res)
{
	char url[CF_MAX_URL], msg[CF_MAX_ERRMSG];
	struct cf_buf buf = { 0 };
	CURLcode rc;
	long http = 0, reqsize = 0;
	curl_off_t retry = 0;
	int n, success = 0;
	enum cf_outcome out = CF_FAILED;

	memset(reply, 0, sizeof(*reply));
	res->status = CF_PENDING;
	res->rate_limited = 0;
	res->retry_after = 0;
	res->http_status = 0;
	n = snprintf(url, sizeof(url), "%s%s%s%s", c->base_url, path,
	    query != NULL ? "?" : "", query != NULL ? query : "");
	if (n < 0 || (size_t)n >= sizeof(url)) {
		cf_detail(c, res, "cloudflare: URL too long for %s %s", method,
		    path);
		return CF_FAILED;
	}
	c->errbuf[0] = '\0';
	if ((rc = cf_setup(c, method, url, body, &buf)) != CURLE_OK) {
		cf_detail(c, res, "cloudflare: cannot set up %s %s: %s", method,
		    path, curl_easy_strerror(rc));
		return CF_FAILED;
	}
	rc = curl_easy_perform(c->curl);

	/* Count what reached the wire, not what we merely attempted. */
	if (curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &reqsize) ==
	        CURLE_OK &&
	    reqsize > 0)
		c->requests++;
	if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http) !=
	    CURLE_OK)
		http = 0;
	res->http_status = (int)http;
	reply->http = http;
	if (reqsize > 0 && c->observe != NULL)
		c->observe(c->observe_arg, method, http);
	log_debug("cloudflare: %s %s -> %ld (%s)", method, path, http,
	    curl_easy_strerror(rc));

	if (rc != CURLE_OK) {
		if (rc == CURLE_OPERATION_TIMEDOUT) {
			/*
			 * Connect time reads 0 on a reused connection, so
			 * "was the request sent" is what tells the two apart.
			 */
			if (reqsize > 0)
				cf_detail(c, res,
				    "cloudflare: timeout after "
				    "%ld ms on %s %s",
				    c->total_ms, method, path);
			else
				cf_detail(c, res,
				    "cloudflare: connect timeout "
				    "after %ld ms on %s %s",
				    c->connect_ms < c->total_ms ? c->connect_ms
				                                : c->total_ms,
				    method, path);
		} else if (rc == CURLE_FILESIZE_EXCEEDED ||
		    (rc == CURLE_WRITE_ERROR && buf.overflow)) {
			cf_detail(c, res,
			    "cloudflare: reply to %s %s is "
			    "larger than %d bytes",
			    method, path, CF_MAX_REPLY);
		} else if (rc == CURLE_WRITE_ERROR && buf.nomem) {
			cf_detail(c, res,
			    "cloudflare: out of memory reading "
			    "the reply to %s %s",
			    method, path);
		} else if (rc == CURLE_PARTIAL_FILE) {
			cf_detail(c, res,
			    "cloudflare: reply to %s %s was cut "
			    "after %zu bytes",
			    method, path, buf.len);
		} else {
			cf_detail(c, res, "cloudflare: %s %s failed: %s",
			    method, path,
			    c->errbuf[0] != '\0' ? c->errbuf
			                         : curl_easy_strerror(rc));
		}
		goto done;
	}
	if (http == 429) {
		res->rate_limited = 1;
		if (curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &retry) !=
		        CURLE_OK ||
		    retry < 0)
			retry = 0;
		if (retry > CF_MAX_RETRY_AFTER)
			retry = CF_MAX_RETRY_AFTER;
		res->retry_after = (int)retry;
		cf_detail(c, res,
		    "cloudflare: rate limited (HTTP 429) on %s "
		    "%s, retry after %d s",
		    method, path, res->retry_after);
		goto done;
	}
	if (http < 200 || http >= 500 || (http >= 300 && http < 400)) {
		/* 5xx bodies are often HTML from an edge; not worth parsing. */
		cf_detail(c, res, "cloudflare: HTTP %ld from %s %s%s", http,
		    method, path,
		    (http >= 300 && http < 400)
		        ? " (redirects are not followed)"
		        : "");
		goto done;
	}
	reply->root = cf_parse_envelope(buf.data, buf.len, &success,
	    &reply->err_code, msg, sizeof(msg));
	/* The message was cut to fit and may end inside an echoed token. */
	cf_mask(c->token, msg);
	if (reply->root == NULL) {
		cf_detail(c, res,
		    "cloudflare: HTTP %ld from %s %s: reply is "
		    "not a Cloudflare envelope",
		    http, method, path);
		goto done;
	}
	if (http < 300 && success) {
		out = CF_OK;
		goto done;
	}
	out = CF_API_ERROR;
	cf_detail(c, res, "cloudflare: HTTP %ld from %s %s: %s (error %d: %s)",
	    http, method, path,
	    success ? "success true on an error status" : "success false",
	    reply->err_code, msg[0] != '\0' ? msg : "no message");
	cJSON_Delete(reply->root);
	reply->root = NULL;
done:
	free(buf.data);
	return out;
}

/* The "result" array of a list reply, or NULL with res filled. */
static cJSON *
cf_result_array(struct cf_client *c, cJSON *root, const char *path,
    struct cf_result *res)
{
	cJSON *arr;

	arr = cJSON_GetObjectItemCaseSensitive(root, "result");
	if (!cJSON_IsArray(arr)) {
		cf_detail(c, res,
		    "cloudflare: reply to GET %s has no record "
		    "list",
		    path);
		return NULL;
	}
	return arr;
}

static const char *
cf_jstr(const cJSON *o, const char *key)
{
	const cJSON *v;

	v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return NULL;
	return v->valuestring;
}

static int
cf_is_owned(const cJSON *rec)
{
	const char *cm = cf_jstr(rec, "comment");

	return cm != NULL && strcmp(cm, CF_OWNER_COMMENT) == 0;
}

/* What a by-name lookup found on the name. */
struct cf_found {
	int ours;    /* an owned CNAME */
	int ours_ok; /* ... already right: target, proxied */
	char ours_id[CF_MAX_ID + 1];
	int others;                    /* records we do not own */
	char other[CF_MAX_DETAIL / 4]; /* "A record 1.2.3.4 (id ...)" */
	int owned_elsewhere; /* of those, CNAMEs with our comment, other target */
	char elsewhere_id[CF_MAX_ID + 1];
};

static void
cf_scan(cJSON *arr, const char *fqdn, const char *target, struct cf_found *f)
{
	cJSON *rec;
	const char *id, *type, *name, *content;
	int ok;

	memset(f, 0, sizeof(*f));
	cJSON_ArrayForEach(rec, arr)
	{
		if (!cJSON_IsObject(rec))
			continue;
		id = cf_jstr(rec, "id");
		type = cf_jstr(rec, "type");
		name = cf_jstr(rec, "name");
		content = cf_jstr(rec, "content");
		/* Trust the name filter no more than we must. */
		if (name == NULL || strcasecmp(name, fqdn) != 0)
			continue;
		/*
		 * Ours: our comment AND our tunnel. Several nodes may share a
		 * zone, each with its own tunnel and the same comment; another
		 * node's record is not ours to change.
		 */
		if (type != NULL && strcmp(type, "CNAME") == 0 &&
		    cf_is_owned(rec) && cf_valid_id(id) && content != NULL &&
		    target != NULL && strcasecmp(content, target) == 0) {
			ok = cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(rec, "proxied"));
			/* Prefer the one that needs no fixing. */
			if (!f->ours || (ok && !f->ours_ok)) {
				f->ours = 1;
				f->ours_ok = ok;
				cf_copy(f->ours_id, sizeof(f->ours_id), id);
			}
			continue;
		}
		if (type != NULL && strcmp(type, "CNAME") == 0 &&
		    cf_is_owned(rec) && cf_valid_id(id) &&
		    f->owned_elsewhere++ == 0)
			cf_copy(f->elsewhere_id, sizeof(f->elsewhere_id), id);
		if (f->others++ == 0) {
			if (snprintf(f->other, sizeof(f->other),
			        "%.16s record %.200s (id %.64s)",
			        type != NULL ? type : "untyped",
			        content != NULL ? content : "?",
			        id != NULL ? id : "?") < 0)
				cf_copy(f->other, sizeof(f->other), "a record");
		}
	}
}

/*
 * GET the records holding fqdn, every type, so an A or AAAA conflict shows.
 * Returns 0 with f filled, -1 with res filled.
 */
static int
cf_lookup(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_found *f, struct cf_result *res)
{
	char path[CF_MAX_URL / 4], query[CF_MAX_URL / 2];
	struct cf_reply reply;
	cJSON *arr;
	char *esc;
	int n;

	n = snprintf(path, sizeof(path), "/zones/%s/dns_records", zone_id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	if ((esc = curl_easy_escape(c->curl, fqdn, 0)) == NULL) {
		cf_detail(c, res, "cloudflare: out of memory");
		return -1;
	}
	n = snprintf(query, sizeof(query), "name=%s&per_page=%d", esc,
	    CF_LOOKUP_PER_PAGE);
	curl_free(esc);
	if (n < 0 || (size_t)n >= sizeof(query)) {
		cf_detail(c, res, "cloudflare: name too long");
		return -1;
	}
	if (cf_call(c, "GET", path, query, NULL, &reply, res) != CF_OK)
		return -1;
	if ((arr = cf_result_array(c, reply.root, path, res)) == NULL) {
		cJSON_Delete(reply.root);
		return -1;
	}
	cf_scan(arr, fqdn, target, f);
	cJSON_Delete(reply.root);
	return 0;
}

/* Serializes a request body; NULL when out of memory. */
static char *
cf_cname_body(const char *fqdn, const char *target, int full)
{
	cJSON *o;
	char *s = NULL;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	if (full &&
	    (cJSON_AddStringToObject(o, "type", "CNAME") == NULL ||
	        cJSON_AddStringToObject(o, "name", fqdn) == NULL))
		goto out;
	if (cJSON_AddStringToObject(o, "content", target) == NULL)
		goto out;
	/* ttl is required by the current schema; 1 means automatic. */
	if (full && cJSON_AddNumberToObject(o, "ttl", 1) == NULL)
		goto out;
	/* proxied defaults to false, and a tunnel CNAME only works proxied. */
	if (cJSON_AddTrueToObject(o, "proxied") == NULL)
		goto out;
	if (full &&
	    cJSON_AddStringToObject(o, "comment", CF_OWNER_COMMENT) == NULL)
		goto out;
	s = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return s;
}

/* Our record exists; fix it when it drifted. Fills res (CF_EXISTS). */
static void
cf_settle_ours(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, const struct cf_found *f, struct cf_result *res)
{
	char path[CF_MAX_URL / 4];
	struct cf_reply reply;
	char *body;
	int n;

	if (!f->ours_ok) {
		n = snprintf(path, sizeof(path), "/zones/%s/dns_records/%s",
		    zone_id, f->ours_id);
		if (n < 0 || (size_t)n >= sizeof(path))
			return;
		if ((body = cf_cname_body(fqdn, target, 0)) == NULL) {
			cf_detail(c, res, "cloudflare: out of memory");
			return;
		}
		n = cf_call(c, "PATCH", path, NULL, body, &reply, res);
		cJSON_free(body);
		if (n != CF_OK)
			return;
		cJSON_Delete(reply.root);
		log_info("cloudflare: fixed our record %s for %s (now %s, "
		         "proxied)",
		    f->ours_id, fqdn, target);
	}
	res->status = CF_EXISTS;
	res->detail[0] = '\0';
	cf_copy(res->record_id, sizeof(res->record_id), f->ours_id);
}

/* Decides from a lookup; returns 1 when it did, 0 when the name is free. */
static int
cf_decide(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, const struct cf_found *f, struct cf_result *res)
{
	if (f->ours) {
		cf_settle_ours(c, zone_id, fqdn, target, f, res);
		return 1;
	}
	if (f->others) {
		res->status = CF_CONFLICT;
		cf_detail(c, res,
		    "name %s is held by %s not managed by this "
		    "node",
		    fqdn, f->other);
		return 1;
	}
	return 0;
}

/* The refusals of a create that mean "a record already holds the name". */
static int
cf_name_taken(int code)
{
	return code == CF_ERR_NAME_TAKEN || code == CF_ERR_CNAME_TAKEN ||
	    code == CF_ERR_OLD_DUP || code == CF_ERR_IDENTICAL;
}

/*
 * POSTs our CNAME. Returns 1 when the name was taken (res untouched beyond
 * the call's detail), 0 when res holds the outcome.
 */
static int
cf_post_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, int *taken_code, struct cf_result *res)
{
	char path[CF_MAX_URL / 4];
	struct cf_reply reply;
	const char *id;
	enum cf_outcome out;
	char *body;
	int n;

	n = snprintf(path, sizeof(path), "/zones/%s/dns_records", zone_id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	if ((body = cf_cname_body(fqdn, target, 1)) == NULL) {
		cf_detail(c, res, "cloudflare: out of memory");
		return 0;
	}
	out = cf_call(c, "POST", path, NULL, body, &reply, res);
	cJSON_free(body);
	if (out == CF_API_ERROR && cf_name_taken(reply.err_code)) {
		*taken_code = reply.err_code;
		return 1;
	}
	if (out != CF_OK)
		return 0;
	id = cf_jstr(cJSON_GetObjectItemCaseSensitive(reply.root, "result"),
	    "id");
	if (!cf_valid_id(id)) {
		/* It may exist now; the next ensure will find it as ours. */
		cf_detail(c, res,
		    "cloudflare: reply to POST %s has no valid "
		    "record id",
		    path);
		cJSON_Delete(reply.root);
		return 0;
	}
	res->status = CF_CREATED;
	res->detail[0] = '\0';
	cf_copy(res->record_id, sizeof(res->record_id), id);
	cJSON_Delete(reply.root);
	return 0;
}

/* The checks both ensure functions start with; -1 when res is final. */
static int
cf_ensure_precheck(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res)
{
	cf_result_init(res);
	if (cf_precheck(c, zone_id, res) == -1)
		return -1;
	if (!cf_valid_name(fqdn) || !cf_valid_name(target)) {
		cf_detail(c, res, "cloudflare: invalid record name or target");
		return -1;
	}
	return 0;
}

/* After a refused create: look at the name once and decide. */
static void
cf_after_taken(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, int code, struct cf_result *res)
{
	struct cf_found f;

	if (cf_lookup(c, zone_id, fqdn, target, &f, res) == -1)
		return;
	if (cf_decide(c, zone_id, fqdn, target, &f, res))
		return;
	cf_detail(c, res,
	    "cloudflare: create of %s refused (error %d) "
	    "but no record holds the name",
	    fqdn, code);
}

void
cf_ensure_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res)
{
	int code = 0;

	if (cf_ensure_precheck(c, zone_id, fqdn, target, res) == -1)
		return;
	/*
	 * The common case is a free name: one POST. Only Cloudflare's
	 * "already exists" answer costs a look-up, which then tells ours
	 * (settled) from another's (a conflict, never touched).
	 */
	if (cf_post_cname(c, zone_id, fqdn, target, &code, res))
		cf_after_taken(c, zone_id, fqdn, target, code, res);
}

void
cf_repair_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res)
{
	struct cf_found f;
	int code = 0;

	if (cf_ensure_precheck(c, zone_id, fqdn, target, res) == -1)
		return;
	if (cf_lookup(c, zone_id, fqdn, target, &f, res) == -1)
		return;
	if (cf_decide(c, zone_id, fqdn, target, &f, res))
		return;
	/* Someone took the name since our GET: look once more. */
	if (cf_post_cname(c, zone_id, fqdn, target, &code, res))
		cf_after_taken(c, zone_id, fqdn, target, code, res);
}

/*
 * DELETE one record by id. 404 with an envelope, or 81044 anywhere, means it
 * is already gone: CF_ABSENT. A 404 page that is not an envelope (a proxy's)
 * proves nothing and stays CF_PENDING.
 */
static void
cf_delete_id(struct cf_client *c, const char *zone_id, const char *id,
    struct cf_result *res)
{
	char path[CF_MAX_URL / 4];
	struct cf_reply reply;
	enum cf_outcome out;
	int n;

	n = snprintf(path, sizeof(path), "/zones/%s/dns_records/%s", zone_id,
	    id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	out = cf_call(c, "DELETE", path, NULL, NULL, &reply, res);
	if (out == CF_OK) {
		cJSON_Delete(reply.root);
		res->status = CF_DELETED;
		res->detail[0] = '\0';
		cf_copy(res->record_id, sizeof(res->record_id), id);
		return;
	}
	if (out == CF_API_ERROR &&
	    (reply.http == 404 || reply.err_code == CF_ERR_NO_RECORD)) {
		res->status = CF_ABSENT;
		res->detail[0] = '\0';
		cf_copy(res->record_id, sizeof(res->record_id), id);
	}
}

void
cf_delete_record(struct cf_client *c, const char *zone_id,
    const char *record_id, struct cf_result *res)
{
	cf_result_init(res);
	if (cf_precheck(c, zone_id, res) == -1)
		return;
	if (!cf_valid_id(record_id)) {
		cf_detail(c, res, "cloudflare: invalid record id");
		return;
	}
	cf_delete_id(c, zone_id, record_id, res);
}

void
cf_delete_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res)
{
	char path[CF_MAX_URL / 4], query[CF_MAX_URL / 2];
	char deleted[CF_MAX_ID + 1] = "";
	struct cf_reply reply;
	struct cf_result one;
	cJSON *arr, *rec;
	const char *id, *type, *name;
	char *esc;
	int n, others = 0;

	cf_result_init(res);
	if (cf_precheck(c, zone_id, res) == -1)
		return;
	if (!cf_valid_name(fqdn)) {
		cf_detail(c, res, "cloudflare: invalid record name");
		return;
	}
	n = snprintf(path, sizeof(path), "/zones/%s/dns_records", zone_id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	if ((esc = curl_easy_escape(c->curl, fqdn, 0)) == NULL) {
		cf_detail(c, res, "cloudflare: out of memory");
		return;
	}
	n = snprintf(query, sizeof(query), "name=%s&per_page=%d", esc,
	    CF_LOOKUP_PER_PAGE);
	curl_free(esc);
	if (n < 0 || (size_t)n >= sizeof(query))
		return;
	if (cf_call(c, "GET", path, query, NULL, &reply, res) != CF_OK)
		return;
	if ((arr = cf_result_array(c, reply.root, path, res)) == NULL) {
		cJSON_Delete(reply.root);
		return;
	}
	/*
	 * Every CNAME of ours (our comment, our tunnel) on the name goes;
	 * nothing else is touched, another node's record included.
	 */
	cJSON_ArrayForEach(rec, arr)
	{
		const char *content = cf_jstr(rec, "content");

		id = cf_jstr(rec, "id");
		type = cf_jstr(rec, "type");
		name = cf_jstr(rec, "name");
		if (name == NULL || strcasecmp(name, fqdn) != 0)
			continue;
		if (type == NULL || strcmp(type, "CNAME") != 0 ||
		    !cf_is_owned(rec) || !cf_valid_id(id) || content == NULL ||
		    strcasecmp(content, target) != 0) {
			others++;
			continue;
		}
		cf_result_init(&one);
		cf_delete_id(c, zone_id, id, &one);
		if (one.status == CF_PENDING) {
			/* Stop: the rest waits for the next attempt. */
			*res = one;
			cJSON_Delete(reply.root);
			return;
		}
		res->http_status = one.http_status;
		if (one.status == CF_DELETED)
			cf_copy(deleted, sizeof(deleted), id);
	}
	cJSON_Delete(reply.root);
	if (deleted[0] != '\0') {
		res->status = CF_DELETED;
		cf_copy(res->record_id, sizeof(res->record_id), deleted);
		return;
	}
	res->status = CF_ABSENT;
	if (others > 0)
		cf_detail(c, res,
		    "name %s is held only by records not managed "
		    "by this node; left alone",
		    fqdn);
}

/* Fills r from one listed record; -1 when it cannot be represented. */
static int
cf_fill_record(const cJSON *rec, struct cf_record *r)
{
	const char *id, *type, *name, *content;
	size_t i;

	memset(r, 0, sizeof(*r));
	id = cf_jstr(rec, "id");
	type = cf_jstr(rec, "type");
	name = cf_jstr(rec, "name");
	content = cf_jstr(rec, "content");
	/* A cut id or name would point at another record: skip instead. */
	if (!cf_valid_id(id) || type == NULL || name == NULL ||
	    strlen(type) >= sizeof(r->type) || strlen(name) >= sizeof(r->name))
		return -1;
	cf_copy(r->id, sizeof(r->id), id);
	cf_copy(r->type, sizeof(r->type), type);
	for (i = 0; name[i] != '\0'; i++)
		r->name[i] = (char)tolower((unsigned char)name[i]);
	r->name[i] = '\0';
	/* Long contents (TXT) are cut; only CNAME targets get compared. */
	cf_copy(r->content, sizeof(r->content), content != NULL ? content : "");
	r->proxied =
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "proxied"));
	r->owned = cf_is_owned(rec);
	return 0;
}

int
cf_list_zone(struct cf_client *c, const char *zone_id, cf_record_cb cb,
    void *arg, struct cf_result *res)
{
	char path[CF_MAX_URL / 4], query[64];
	struct cf_reply reply;
	struct cf_record r;
	cJSON *arr, *rec, *info, *tp;
	int page, n, count, skipped = 0;
	double total_pages;

	cf_result_init(res);
	if (cf_precheck(c, zone_id, res) == -1)
		return -1;
	n = snprintf(path, sizeof(path), "/zones/%s/dns_records", zone_id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	for (page = 1;; page++) {
		if (page > CF_MAX_PAGES) {
			/* A partial list would look like missing records. */
			cf_detail(c, res,
			    "cloudflare: zone %s has more than "
			    "%d pages of records",
			    zone_id, CF_MAX_PAGES);
			return -1;
		}
		n = snprintf(query, sizeof(query), "per_page=%d&page=%d",
		    CF_PER_PAGE, page);
		if (n < 0 || (size_t)n >= sizeof(query))
			return -1;
		if (cf_call(c, "GET", path, query, NULL, &reply, res) != CF_OK)
			return -1;
		if ((arr = cf_result_array(c, reply.root, path, res)) == NULL) {
			cJSON_Delete(reply.root);
			return -1;
		}
		count = 0;
		cJSON_ArrayForEach(rec, arr)
		{
			count++;
			if (!cJSON_IsObject(rec) ||
			    cf_fill_record(rec, &r) == -1) {
				skipped++;
				continue;
			}
			if (cb != NULL)
				cb(arg, &r);
		}
		info =
		    cJSON_GetObjectItemCaseSensitive(reply.root, "result_info");
		tp = cJSON_GetObjectItemCaseSensitive(info, "total_pages");
		total_pages = cJSON_IsNumber(tp) ? tp->valuedouble : -1;
		cJSON_Delete(reply.root);
		/*
		 * total_pages is not in the 2024 schema but the live API sends
		 * it; without it a short page is the last one.
		 */
		if (count == 0)
			break;
		if (total_pages >= 0 ? page >= total_pages
		                     : count < CF_PER_PAGE)
			break;
	}
	if (skipped > 0)
		log_warn("cloudflare: skipped %d unreadable records in zone %s",
		    skipped, zone_id);
	res->status = CF_EXISTS;
	return 0;
}

void
cf_takeover_cname(struct cf_client *c, const char *zone_id, const char *fqdn,
    const char *target, struct cf_result *res)
{
	struct cf_found f;
	char path[CF_MAX_URL / 4];
	struct cf_reply reply;
	char *body;
	int code = 0, n;

	if (cf_ensure_precheck(c, zone_id, fqdn, target, res) == -1)
		return;
	if (cf_lookup(c, zone_id, fqdn, target, &f, res) == -1)
		return;
	/*
	 * Only when every record holding the name is a CNAME of ours that
	 * points elsewhere (another node's tunnel): a foreign record, or a
	 * mix, stays a conflict and nothing is changed.
	 */
	if (!f.ours && f.others > 0 && f.owned_elsewhere == f.others &&
	    f.others == 1) {
		n = snprintf(path, sizeof(path), "/zones/%s/dns_records/%s",
		    zone_id, f.elsewhere_id);
		if (n < 0 || (size_t)n >= sizeof(path))
			return;
		if ((body = cf_cname_body(fqdn, target, 0)) == NULL) {
			cf_detail(c, res, "cloudflare: out of memory");
			return;
		}
		n = cf_call(c, "PATCH", path, NULL, body, &reply, res);
		cJSON_free(body);
		if (n != CF_OK)
			return;
		cJSON_Delete(reply.root);
		log_info("cloudflare: took over record %s for %s (now %s)",
		    f.elsewhere_id, fqdn, target);
		res->status = CF_CREATED;
		res->detail[0] = '\0';
		cf_copy(res->record_id, sizeof(res->record_id), f.elsewhere_id);
		return;
	}
	if (cf_decide(c, zone_id, fqdn, target, &f, res))
		return;
	if (cf_post_cname(c, zone_id, fqdn, target, &code, res))
		cf_after_taken(c, zone_id, fqdn, target, code, res);
}
