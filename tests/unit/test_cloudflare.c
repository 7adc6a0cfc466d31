/*
 * test_cloudflare.c - the Cloudflare client against canned replies.
 *
 * Tests as data, in the manner of curl's test suite: each test scripts the
 * raw HTTP replies of a tiny server on 127.0.0.1 (ephemeral port, threads
 * inside this process), runs one client call, then checks both what the
 * client concluded and every request it sent (method, target, headers,
 * body). No network beyond loopback is used.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "nodo/cloudflare.h"

#define TOKEN         "tok-SECRET-0123456789abcdef"
#define ZONE          "5a1e7c0de5a1e7c0de5a1e7c0de5a1e7"
#define FQDN          "acme.sajet.us"
#define TARGET        "6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com"
#define LOOKUP_PATH   "/client/v4/zones/" ZONE "/dns_records"
#define LOOKUP_TARGET LOOKUP_PATH "?name=" FQDN "&per_page=100"

#define SRV_MAX_STEPS  16
#define SRV_MAX_REQS   16
#define SRV_MAX_CONNS  32
#define SRV_MAX_OWNED  32
#define SRV_BUF        16384      /* bytes, one request being read */
#define SRV_IO_WAIT_MS 10000      /* a stuck test fails instead of hanging */
#define SRV_FLOOD_MAX  (16 << 20) /* bytes sent by a flooding reply */
#define SRV_ENDED                                                              \
	"HTTP/1.1 599 Script Ended\r\nContent-Length: 0\r\n"                   \
	"Connection: close\r\n\r\n"

/* JSON pieces, kept close to what the live API sends. */
#define OURS ",\"comment\":\"" CF_OWNER_COMMENT "\""
#define REC(id, type, name, content, proxied, extra)                           \
	"{\"id\":\"" id "\",\"type\":\"" type "\",\"name\":\"" name            \
	"\",\"content\":\"" content "\",\"proxied\":" proxied                  \
	",\"ttl\":1,\"proxiable\":true" extra "}"
#define LIST(recs)                                                             \
	"{\"success\":true,\"errors\":[],\"messages\":[],\"result\":[" recs    \
	"],\"result_info\":{\"page\":1,\"per_page\":100,"                      \
	"\"count\":1,\"total_count\":1,\"total_pages\":1}}"
#define ERRJ(code, msg)                                                        \
	"{\"success\":false,\"errors\":[{\"code\":" #code                      \
	",\"message\":\"" msg "\"}],\"messages\":[],\"result\":null}"
#define ONE(id)                                                                \
	"{\"success\":true,\"errors\":[],\"messages\":[],\"result\":"          \
	"{\"id\":\"" id "\"}}"

enum step_act {
	STEP_REPLY,       /* send raw, keep the connection */
	STEP_REPLY_CLOSE, /* send raw, then close */
	STEP_SILENT,      /* never answer */
	STEP_FLOOD,       /* an endless 200 body */
};

struct step {
	enum step_act act;
	char *raw;
};

struct req {
	char method[16];
	char target[2048];
	char headers[4096];
	char body[4096];
};

struct srv {
	int lfd;
	int port;
	int stop[2];
	pthread_t thr;
	pthread_mutex_t mu;
	struct step steps[SRV_MAX_STEPS];
	int nsteps, next;
	struct req reqs[SRV_MAX_REQS];
	int nreqs;
	pthread_t conns[SRV_MAX_CONNS];
	int nconns;
	char base[128];
};

struct conn_arg {
	struct srv *s;
	int fd;
};

/* Waits for fd or the stop pipe; returns what recv returns, -1 on stop. */
static ssize_t
srv_recv(struct srv *s, int fd, char *buf, size_t len)
{
	struct pollfd pf[2];
	int rc;

	pf[0].fd = fd;
	pf[0].events = POLLIN;
	pf[1].fd = s->stop[0];
	pf[1].events = POLLIN;
	do {
		rc = poll(pf, 2, SRV_IO_WAIT_MS);
	} while (rc == -1 && errno == EINTR);
	if (rc <= 0 || (pf[1].revents & POLLIN))
		return -1;
	return recv(fd, buf, len, 0);
}

static int
srv_send(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies at most n bytes of src into dst (size dstsz), terminated. */
static void
copy_n(char *dst, size_t dstsz, const char *src, size_t n)
{
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static size_t
content_length(const char *hdrs, size_t hlen)
{
	const char *p = hdrs, *end = hdrs + hlen, *eol;
	char num[32];

	while (p < end &&
	    (eol = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL) {
		if ((size_t)(eol - p) > 15 &&
		    strncasecmp(p, "Content-Length:", 15) == 0) {
			copy_n(num, sizeof(num), p + 15,
			    (size_t)(eol - p - 15));
			return (size_t)strtoul(num, NULL, 10);
		}
		p = eol + 2;
	}
	return 0;
}

/* Records one request and hands back the step that answers it. */
static struct step
srv_take(struct srv *s, const char *buf, size_t hlen, size_t blen)
{
	struct step st = { STEP_REPLY_CLOSE, NULL };
	struct req *r;
	const char *sp1, *sp2, *eol;

	pthread_mutex_lock(&s->mu);
	if (s->nreqs < SRV_MAX_REQS) {
		r = &s->reqs[s->nreqs++];
		memset(r, 0, sizeof(*r));
		eol = memmem(buf, hlen, "\r\n", 2);
		sp1 = memchr(buf, ' ', (size_t)(eol - buf));
		sp2 = sp1 != NULL
		    ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1))
		    : NULL;
		if (sp1 != NULL && sp2 != NULL) {
			copy_n(r->method, sizeof(r->method), buf,
			    (size_t)(sp1 - buf));
			copy_n(r->target, sizeof(r->target), sp1 + 1,
			    (size_t)(sp2 - sp1 - 1));
		}
		copy_n(r->headers, sizeof(r->headers), eol + 2,
		    hlen - (size_t)(eol + 2 - buf));
		copy_n(r->body, sizeof(r->body), buf + hlen, blen);
	}
	if (s->next < s->nsteps)
		st = s->steps[s->next++];
	pthread_mutex_unlock(&s->mu);
	return st;
}

static void
srv_flood(int fd)
{
	static const char head[] =
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nConnection: close\r\n\r\n";
	static char chunk[65536];
	size_t sent;

	memset(chunk, ' ', sizeof(chunk));
	if (srv_send(fd, head, sizeof(head) - 1) == -1)
		return;
	for (sent = 0; sent < SRV_FLOOD_MAX; sent += sizeof(chunk)) {
		if (srv_send(fd, chunk, sizeof(chunk)) == -1)
			return;
	}
}

static void *
conn_main(void *arg)
{
	struct conn_arg *ca = arg;
	struct srv *s = ca->s;
	int fd = ca->fd;
	char buf[SRV_BUF];
	size_t len = 0, hlen, blen;
	const char *end;
	ssize_t n;
	struct step st;

	free(ca);
	for (;;) {
		while ((end = memmem(buf, len, "\r\n\r\n", 4)) == NULL) {
			if (len == sizeof(buf))
				goto out;
			if ((n = srv_recv(s, fd, buf + len,
			         sizeof(buf) - len)) <= 0)
				goto out;
			len += (size_t)n;
		}
		hlen = (size_t)(end - buf) + 4;
		blen = content_length(buf, hlen);
		if (blen > sizeof(buf) - hlen)
			goto out;
		while (len < hlen + blen) {
			if ((n = srv_recv(s, fd, buf + len,
			         sizeof(buf) - len)) <= 0)
				goto out;
			len += (size_t)n;
		}
		st = srv_take(s, buf, hlen, blen);
		memmove(buf, buf + hlen + blen, len - hlen - blen);
		len -= hlen + blen;
		switch (st.act) {
		case STEP_REPLY:
			if (srv_send(fd, st.raw, strlen(st.raw)) == -1)
				goto out;
			break;
		case STEP_REPLY_CLOSE:
			if (st.raw != NULL)
				(void)srv_send(fd, st.raw, strlen(st.raw));
			else
				(void)srv_send(fd, SRV_ENDED,
				    strlen(SRV_ENDED));
			goto out;
		case STEP_SILENT:
			/* Wait for the client to give up and close. */
			break;
		case STEP_FLOOD:
			srv_flood(fd);
			goto out;
		}
	}
out:
	close(fd);
	return NULL;
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	struct pollfd pf[2];
	struct conn_arg *ca;
	int fd, rc;

	for (;;) {
		pf[0].fd = s->lfd;
		pf[0].events = POLLIN;
		pf[1].fd = s->stop[0];
		pf[1].events = POLLIN;
		rc = poll(pf, 2, -1);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1 || (pf[1].revents & POLLIN))
			break;
		if ((fd = accept(s->lfd, NULL, NULL)) == -1)
			continue;
		pthread_mutex_lock(&s->mu);
		if (s->nconns == SRV_MAX_CONNS ||
		    (ca = malloc(sizeof(*ca))) == NULL) {
			pthread_mutex_unlock(&s->mu);
			close(fd);
			continue;
		}
		ca->s = s;
		ca->fd = fd;
		if (pthread_create(&s->conns[s->nconns], NULL, conn_main, ca) ==
		    0)
			s->nconns++;
		else {
			free(ca);
			close(fd);
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static int
srv_setup(void **state)
{
	struct srv *s;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_int_equal(pthread_mutex_init(&s->mu, NULL), 0);
	assert_int_equal(pipe(s->stop), 0);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	/* A path prefix, as in the real base URL, checks path joining. */
	assert_true(snprintf(s->base, sizeof(s->base),
	                "http://127.0.0.1:%d/client/v4/", s->port) > 0);
	assert_int_equal(pthread_create(&s->thr, NULL, srv_main, s), 0);
	*state = s;
	return 0;
}

static int
srv_teardown(void **state)
{
	struct srv *s = *state;
	int i;

	assert_int_equal(write(s->stop[1], "x", 1), 1);
	pthread_join(s->thr, NULL);
	for (i = 0; i < s->nconns; i++)
		pthread_join(s->conns[i], NULL);
	for (i = 0; i < s->nsteps; i++)
		free(s->steps[i].raw);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return 0;
}

static void
srv_push_raw(struct srv *s, enum step_act act, const char *raw)
{
	assert_true(s->nsteps < SRV_MAX_STEPS);
	s->steps[s->nsteps].act = act;
	s->steps[s->nsteps].raw = raw != NULL ? strdup(raw) : NULL;
	if (raw != NULL)
		assert_non_null(s->steps[s->nsteps].raw);
	s->nsteps++;
}

/* Queues a whole reply: status line, headers (each ending \r\n), body. */
static void
srv_push(struct srv *s, int status, const char *extra, const char *ctype,
    const char *body)
{
	char raw[SRV_BUF];
	int n;

	n = snprintf(raw, sizeof(raw),
	    "HTTP/1.1 %d Canned\r\n%s"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
	    status, extra != NULL ? extra : "", ctype, strlen(body), body);
	assert_true(n > 0 && (size_t)n < sizeof(raw));
	srv_push_raw(s, STEP_REPLY, raw);
}

static void
srv_json(struct srv *s, int status, const char *body)
{
	srv_push(s, status, NULL, "application/json", body);
}

static int
srv_nreqs(struct srv *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->nreqs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static const struct req *
srv_req(struct srv *s, int i)
{
	assert_true(i < srv_nreqs(s));
	return &s->reqs[i];
}

/* Value of a request header (case-insensitive name), or NULL. */
static const char *
req_header(const struct req *r, const char *name, char *out, size_t outsz)
{
	const char *p = r->headers, *eol;
	size_t nl = strlen(name);

	while ((eol = strstr(p, "\r\n")) != NULL) {
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ')
				p++;
			copy_n(out, outsz, p, (size_t)(eol - p));
			return out;
		}
		p = eol + 2;
	}
	return NULL;
}

static struct cf_client *
client(struct srv *s)
{
	struct cf_client *c;

	c = cf_client_new(s->base, TOKEN);
	assert_non_null(c);
	return c;
}

/* Checks that apply to every result: no secret, sentence terminated. */
static void
check_res(const struct cf_result *res)
{
	assert_non_null(memchr(res->detail, '\0', sizeof(res->detail)));
	assert_null(strstr(res->detail, TOKEN));
	/* Nor a piece of it long enough to matter. */
	assert_null(strstr(res->detail, "tok-SEC"));
}

static void
check_auth(const struct req *r)
{
	char v[256];

	assert_non_null(req_header(r, "Authorization", v, sizeof(v)));
	assert_string_equal(v, "Bearer " TOKEN);
}

static void
test_create(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	const struct req *r;
	cJSON *b, *v;
	char v1[128];

	srv_json(s, 200,
	    "{\"result\":[],\"result_info\":{\"page\":1,"
	    "\"per_page\":100,\"total_pages\":0,\"count\":0,"
	    "\"total_count\":0},\"success\":true,\"errors\":[],"
	    "\"messages\":[]}");
	srv_json(s, 200,
	    "{\"success\":true,\"errors\":[],\"messages\":[],"
	    "\"result\":" REC("023e105f4ecef8ad9ca31a8372d0c353", "CNAME", FQDN,
	        TARGET, "true", OURS) "}");
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_CREATED);
	assert_string_equal(res.record_id, "023e105f4ecef8ad9ca31a8372d0c353");
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.rate_limited, 0);
	assert_int_equal(srv_nreqs(s), 2);
	assert_int_equal(cf_client_requests(c), 2);

	r = srv_req(s, 0);
	assert_string_equal(r->method, "GET");
	/* No type filter, so A/AAAA records on the name are seen too. */
	assert_string_equal(r->target, LOOKUP_TARGET);
	check_auth(r);
	assert_string_equal(r->body, "");

	r = srv_req(s, 1);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->target, LOOKUP_PATH);
	check_auth(r);
	assert_non_null(req_header(r, "Content-Type", v1, sizeof(v1)));
	assert_string_equal(v1, "application/json");
	b = cJSON_Parse(r->body);
	assert_non_null(b);
	assert_int_equal(cJSON_GetArraySize(b), 6);
	v = cJSON_GetObjectItemCaseSensitive(b, "type");
	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, "CNAME");
	v = cJSON_GetObjectItemCaseSensitive(b, "name");
	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, FQDN);
	v = cJSON_GetObjectItemCaseSensitive(b, "content");
	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, TARGET);
	v = cJSON_GetObjectItemCaseSensitive(b, "ttl");
	assert_true(cJSON_IsNumber(v));
	assert_true(v->valuedouble == 1.0);
	assert_true(
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "proxied")));
	v = cJSON_GetObjectItemCaseSensitive(b, "comment");
	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, CF_OWNER_COMMENT);
	cJSON_Delete(b);
	cf_client_free(c);
}

static void
test_exists(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	/* Cloudflare may answer in another case; names and targets match. */
	srv_json(s, 200,
	    LIST(REC("aaaa0000bbbb1111cccc2222dddd3333", "CNAME",
	        "ACME.Sajet.US",
	        "6FF42AE2-765D-4ADF-8112-31C55C1551EF."
	        "cfargotunnel.com",
	        "true", OURS)));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_EXISTS);
	assert_string_equal(res.record_id, "aaaa0000bbbb1111cccc2222dddd3333");
	assert_string_equal(cf_status_str(res.status), "exists");
	assert_int_equal(srv_nreqs(s), 1);
	assert_int_equal(cf_client_requests(c), 1);
	cf_client_free(c);
}

static void
test_exists_fix_drift(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	const struct req *r;
	cJSON *b;

	/* Ours (our comment, our tunnel) but unproxied: fixed. */
	srv_json(s, 200,
	    LIST(REC("aaaa0000bbbb1111cccc2222dddd3333", "CNAME", FQDN, TARGET,
	        "false", OURS)));
	srv_json(s, 200, ONE("aaaa0000bbbb1111cccc2222dddd3333"));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_EXISTS);
	assert_string_equal(res.record_id, "aaaa0000bbbb1111cccc2222dddd3333");
	assert_int_equal(srv_nreqs(s), 2);
	r = srv_req(s, 1);
	assert_string_equal(r->method, "PATCH");
	assert_string_equal(r->target,
	    LOOKUP_PATH "/aaaa0000bbbb1111cccc2222dddd3333");
	check_auth(r);
	b = cJSON_Parse(r->body);
	assert_non_null(b);
	assert_int_equal(cJSON_GetArraySize(b), 2);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(b, "content")
	                        ->valuestring,
	    TARGET);
	assert_true(
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "proxied")));
	cJSON_Delete(b);
	cf_client_free(c);
}

/* Another node's record: our comment, another tunnel. Never touched. */
static void
test_other_node_is_conflict(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200,
	    LIST(REC("aaaa0000bbbb1111cccc2222dddd3333", "CNAME", FQDN,
	        "other-node.cfargotunnel.com", "true", OURS)));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_CONFLICT);
	assert_non_null(strstr(res.detail, "other-node.cfargotunnel.com"));
	assert_int_equal(srv_nreqs(s), 1);
	assert_string_equal(srv_req(s, 0)->method, "GET");
	cf_client_free(c);
}

static void
test_conflict_foreign_a(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200,
	    LIST(REC("a1b2c3d4e5f60718293a4b5c6d7e8f90", "A", FQDN, "1.2.3.4",
	        "false", "")));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_CONFLICT);
	assert_string_equal(res.detail,
	    "name acme.sajet.us is held by A "
	    "record 1.2.3.4 (id a1b2c3d4e5f60718293a4b5c6d7e8f90) not managed "
	    "by this node");
	assert_string_equal(res.record_id, "");
	/* Only the lookup went out: no POST, PATCH or DELETE. */
	assert_int_equal(srv_nreqs(s), 1);
	assert_string_equal(srv_req(s, 0)->method, "GET");
	assert_int_equal(cf_client_requests(c), 1);
	cf_client_free(c);
}

static void
test_conflict_foreign_cname(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	/* Same target, but someone else's comment: still not ours. */
	srv_json(s, 200,
	    LIST(REC("f00df00df00df00df00df00df00df00d", "CNAME", FQDN, TARGET,
	        "true", ",\"comment\":\"by hand\"")));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_CONFLICT);
	assert_non_null(strstr(res.detail, "CNAME record " TARGET));
	assert_non_null(strstr(res.detail, "f00df00df00df00df00df00df00df00d"));
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

static void
test_race_81053_ours(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200, LIST(""));
	srv_json(s, 400,
	    ERRJ(81053,
	        "An A, AAAA, or CNAME record with that "
	        "host already exists."));
	srv_json(s, 200,
	    LIST(REC("0123456789abcdef0123456789abcdef", "CNAME", FQDN, TARGET,
	        "true", OURS)));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_EXISTS);
	assert_string_equal(res.record_id, "0123456789abcdef0123456789abcdef");
	assert_int_equal(srv_nreqs(s), 3);
	assert_string_equal(srv_req(s, 0)->method, "GET");
	assert_string_equal(srv_req(s, 1)->method, "POST");
	assert_string_equal(srv_req(s, 2)->method, "GET");
	assert_string_equal(srv_req(s, 2)->target, LOOKUP_TARGET);
	cf_client_free(c);
}

static void
test_race_81058_foreign(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200, LIST(""));
	srv_json(s, 400, ERRJ(81058, "An identical record already exists."));
	srv_json(s, 200,
	    LIST(REC("0123456789abcdef0123456789abcdef", "AAAA", FQDN,
	        "2001:db8::1", "false", "")));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_CONFLICT);
	assert_non_null(strstr(res.detail, "AAAA record 2001:db8::1"));
	assert_int_equal(srv_nreqs(s), 3);
	cf_client_free(c);
}

static void
test_race_then_nothing(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	/* Refused, yet the name looks free: look only once, then give up. */
	srv_json(s, 200, LIST(""));
	srv_json(s, 400, ERRJ(81057, "Record already exists."));
	srv_json(s, 200, LIST(""));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "81057"));
	assert_int_equal(srv_nreqs(s), 3);
	cf_client_free(c);
}

static void
test_create_forbidden(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200, LIST(""));
	srv_json(s, 403, ERRJ(10000, "Authentication error"));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 403);
	assert_string_equal(res.detail,
	    "cloudflare: HTTP 403 from POST "
	    "/zones/5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/dns_records: success "
	    "false (error 10000: "
	    "Authentication error)");
	/* Not a race code: no second lookup. */
	assert_int_equal(srv_nreqs(s), 2);
	cf_client_free(c);
}

/* ---- cf_ensure_cname: POST first, look up only when refused ---------- */

#define TAKEN_81053                                                            \
	ERRJ(81053,                                                            \
	    "An A, AAAA, or CNAME record with that host already "              \
	    "exists.")

static void
test_ensure_free_name_one_post(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	const struct req *r;
	cJSON *b;

	srv_json(s, 200,
	    "{\"success\":true,\"errors\":[],\"messages\":[],"
	    "\"result\":" REC("023e105f4ecef8ad9ca31a8372d0c353", "CNAME", FQDN,
	        TARGET, "true", OURS) "}");
	cf_ensure_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_CREATED);
	assert_string_equal(res.record_id, "023e105f4ecef8ad9ca31a8372d0c353");
	/* One call in the common case: the POST, no look-up. */
	assert_int_equal(srv_nreqs(s), 1);
	assert_int_equal(cf_client_requests(c), 1);
	r = srv_req(s, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->target, LOOKUP_PATH);
	check_auth(r);
	b = cJSON_Parse(r->body);
	assert_non_null(b);
	assert_int_equal(cJSON_GetArraySize(b), 6);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(b, "comment")
	                        ->valuestring,
	    CF_OWNER_COMMENT);
	cJSON_Delete(b);
	cf_client_free(c);
}

static void
test_ensure_taken_by_ours(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 400, TAKEN_81053);
	srv_json(s, 200,
	    LIST(REC("0123456789abcdef0123456789abcdef", "CNAME", FQDN, TARGET,
	        "true", OURS)));
	cf_ensure_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_EXISTS);
	assert_string_equal(res.record_id, "0123456789abcdef0123456789abcdef");
	assert_string_equal(res.detail, "");
	assert_int_equal(srv_nreqs(s), 2);
	assert_string_equal(srv_req(s, 0)->method, "POST");
	assert_string_equal(srv_req(s, 1)->method, "GET");
	assert_string_equal(srv_req(s, 1)->target, LOOKUP_TARGET);
	cf_client_free(c);
}

static void
test_ensure_taken_by_ours_drifted(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 400, ERRJ(81058, "An identical record already exists."));
	srv_json(s, 200,
	    LIST(REC("aaaa0000bbbb1111cccc2222dddd3333", "CNAME", FQDN, TARGET,
	        "false", OURS)));
	srv_json(s, 200, ONE("aaaa0000bbbb1111cccc2222dddd3333"));
	cf_ensure_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_EXISTS);
	assert_int_equal(srv_nreqs(s), 3);
	assert_string_equal(srv_req(s, 2)->method, "PATCH");
	assert_string_equal(srv_req(s, 2)->target,
	    LOOKUP_PATH "/aaaa0000bbbb1111cccc2222dddd3333");
	cf_client_free(c);
}

static void
test_ensure_taken_by_foreign_untouched(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 400, TAKEN_81053);
	srv_json(s, 200,
	    LIST(REC("a1b2c3d4e5f60718293a4b5c6d7e8f90", "A", FQDN, "1.2.3.4",
	        "false", "")));
	cf_ensure_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_CONFLICT);
	assert_string_equal(res.detail,
	    "name acme.sajet.us is held by A "
	    "record 1.2.3.4 (id a1b2c3d4e5f60718293a4b5c6d7e8f90) not managed "
	    "by this node");
	/* The refused POST and the look-up; nothing changed, nothing deleted. */
	assert_int_equal(srv_nreqs(s), 2);
	assert_string_equal(srv_req(s, 0)->method, "POST");
	assert_string_equal(srv_req(s, 1)->method, "GET");
	cf_client_free(c);
}

static void
test_ensure_refused_then_nothing(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 400, ERRJ(81057, "Record already exists."));
	srv_json(s, 200, LIST(""));
	cf_ensure_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "81057"));
	assert_int_equal(srv_nreqs(s), 2);
	cf_client_free(c);
}

static void
test_ensure_other_refusal_no_lookup(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 403, ERRJ(10000, "Authentication error"));
	cf_ensure_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 403);
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

/* Another node's CNAME (our comment, another tunnel) is not deleted. */
static void
test_delete_other_node_kept(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200,
	    LIST(REC("0123456789abcdef0123456789abcdef", "CNAME", FQDN,
	        "other-node.cfargotunnel.com", "true", OURS)));
	cf_delete_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_ABSENT);
	assert_int_equal(srv_nreqs(s), 1);
	assert_string_equal(srv_req(s, 0)->method, "GET");
	cf_client_free(c);
}

static void
test_delete_owned(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	const struct req *r;

	srv_json(s, 200,
	    LIST(REC("0123456789abcdef0123456789abcdef", "CNAME", FQDN, TARGET,
	        "true", OURS)));
	srv_json(s, 200, ONE("0123456789abcdef0123456789abcdef"));
	cf_delete_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_DELETED);
	assert_string_equal(res.record_id, "0123456789abcdef0123456789abcdef");
	assert_int_equal(srv_nreqs(s), 2);
	assert_string_equal(srv_req(s, 0)->target, LOOKUP_TARGET);
	r = srv_req(s, 1);
	assert_string_equal(r->method, "DELETE");
	assert_string_equal(r->target,
	    LOOKUP_PATH "/0123456789abcdef0123456789abcdef");
	check_auth(r);
	assert_string_equal(r->body, "");
	cf_client_free(c);
}

static void
test_delete_foreign_only(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200,
	    LIST(REC("11111111111111111111111111111111", "A", FQDN, "1.2.3.4",
	        "true", "") "," REC("22222222222222222222222222222222", "TXT",
	        FQDN, "hello", "false", OURS)));
	cf_delete_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_ABSENT);
	assert_non_null(strstr(res.detail, "left alone"));
	/* The lookup only: nothing was deleted. */
	assert_int_equal(srv_nreqs(s), 1);
	assert_string_equal(srv_req(s, 0)->method, "GET");
	cf_client_free(c);
}

static void
test_delete_nothing(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200, LIST(""));
	cf_delete_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_ABSENT);
	assert_string_equal(res.detail, "");
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

static void
test_delete_81044(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200,
	    LIST(REC("0123456789abcdef0123456789abcdef", "CNAME", FQDN, TARGET,
	        "true", OURS)));
	srv_json(s, 404, ERRJ(81044, "Record does not exist."));
	cf_delete_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_ABSENT);
	assert_int_equal(res.http_status, 404);
	assert_int_equal(srv_nreqs(s), 2);
	assert_string_equal(srv_req(s, 1)->method, "DELETE");

	/* By id, directly. */
	srv_json(s, 404, ERRJ(81044, "Record does not exist."));
	cf_delete_record(c, ZONE, "0123456789abcdef0123456789abcdef", &res);
	check_res(&res);
	assert_int_equal(res.status, CF_ABSENT);
	assert_int_equal(srv_nreqs(s), 3);
	cf_client_free(c);
}

static void
test_delete_record_html_404(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	/* A 404 page from something that is not the API proves nothing. */
	srv_push(s, 404, NULL, "text/html", "<html>Not Found</html>");
	cf_delete_record(c, ZONE, "0123456789abcdef0123456789abcdef", &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "not a Cloudflare envelope"));
	cf_client_free(c);
}

static void
test_rate_limited(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_push(s, 429, "Retry-After: 4\r\n", "application/json",
	    ERRJ(10429,
	        "Rate limited. Please wait and consider throttling "
	        "your request speed"));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 429);
	assert_int_equal(res.rate_limited, 1);
	assert_int_equal(res.retry_after, 4);
	assert_non_null(strstr(res.detail, "rate limited"));
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

static void
test_500_empty(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_push(s, 500, NULL, "application/json", "");
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 500);
	assert_int_equal(res.rate_limited, 0);
	assert_int_equal(res.retry_after, 0);
	assert_string_equal(res.detail,
	    "cloudflare: HTTP 500 from GET "
	    "/zones/5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/dns_records");
	cf_client_free(c);
}

static void
test_502_html(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200, LIST(""));
	srv_push(s, 502, NULL, "text/html",
	    "<html><body>502 Bad Gateway"
	    "</body></html>");
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 502);
	assert_string_equal(res.detail,
	    "cloudflare: HTTP 502 from POST "
	    "/zones/5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/dns_records");
	assert_int_equal(srv_nreqs(s), 2);
	cf_client_free(c);
}

static void
test_not_envelope(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200, "{\"result\":[],\"ok\":true}");
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "not a Cloudflare envelope"));

	srv_json(s, 200, "[{\"success\":true}]");
	cf_delete_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "not a Cloudflare envelope"));

	/* An envelope whose result is not a list cannot be read either. */
	srv_json(s, 200, "{\"success\":true,\"result\":{\"id\":\"x\"}}");
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "no record list"));
	assert_int_equal(srv_nreqs(s), 3);
	cf_client_free(c);
}

static void
test_success_false_200(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_json(s, 200,
	    ERRJ(7003,
	        "Could not route to /zones/5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/"
	        "dns_records, perhaps your object identifier is invalid?"));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 200);
	assert_non_null(strstr(res.detail,
	    "success false (error 7003: "
	    "Could not route"));
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

static void
test_cut_reply(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	/* Content-Length promises 500 bytes; 20 come, then the close. */
	srv_push_raw(s, STEP_REPLY_CLOSE,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
	    "{\"success\":true,\"res");
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	if (strstr(res.detail, "was cut after 20 bytes") == NULL)
		fail_msg("detail: %s", res.detail);
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

static void
test_oversized_reply(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	srv_push_raw(s, STEP_FLOOD, NULL);
	cf_client_set_timeouts(c, 2000, 20000);
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "is larger than"));
	cf_client_free(c);
}

static void
test_redirect_not_followed(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	char loc[128];

	assert_true(snprintf(loc, sizeof(loc),
	                "Location: http://127.0.0.1:"
	                "%d/elsewhere\r\n",
	                s->port) > 0);
	srv_push(s, 301, loc, "text/html", "moved");
	srv_json(s, 200, LIST(""));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 301);
	assert_non_null(strstr(res.detail, "redirects are not followed"));
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

static double
now_ms(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void
test_timeout(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	double t0, el;

	srv_push_raw(s, STEP_SILENT, NULL);
	cf_client_set_timeouts(c, 1000, 300);
	t0 = now_ms();
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	el = now_ms() - t0;
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 0);
	assert_string_equal(res.detail,
	    "cloudflare: timeout after 300 ms on "
	    "GET /zones/5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/dns_records");
	assert_true(el >= 250 && el < 3000);
	assert_int_equal(srv_nreqs(s), 1);
	assert_int_equal(cf_client_requests(c), 1);
	cf_client_free(c);
}

static void
test_refused_counts_nothing(void **state)
{
	struct cf_client *c;
	struct cf_result res;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[64];
	int fd;

	(void)state;
	/* A port that was just free: nothing listens there. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	assert_true(snprintf(url, sizeof(url), "http://127.0.0.1:%d",
	                ntohs(sa.sin_port)) > 0);
	close(fd);
	c = cf_client_new(url, TOKEN);
	assert_non_null(c);
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail,
	    "cloudflare: GET /zones/5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/"
	    "dns_records failed: "));
	assert_int_equal(cf_client_requests(c), 0);
	cf_client_free(c);
}

static void
record_cb(void *arg, const struct cf_record *r)
{
	int *n = arg;

	(void)r;
	(*n)++;
}

static void
test_disabled(void **state)
{
	struct srv *s = *state;
	const char *tokens[] = { NULL, "" };
	struct cf_client *c;
	struct cf_result res;
	size_t i;
	int n = 0;

	srv_json(s, 200, LIST(""));
	for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		c = cf_client_new(s->base, tokens[i]);
		assert_non_null(c);
		cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
		assert_int_equal(res.status, CF_DISABLED);
		assert_string_equal(cf_status_str(res.status), "disabled");
		cf_delete_cname(c, ZONE, FQDN, TARGET, &res);
		assert_int_equal(res.status, CF_DISABLED);
		cf_delete_record(c, ZONE, "0123456789abcdef", &res);
		assert_int_equal(res.status, CF_DISABLED);
		assert_int_equal(cf_list_zone(c, ZONE, record_cb, &n, &res),
		    -1);
		assert_int_equal(res.status, CF_DISABLED);
		assert_int_equal(res.http_status, 0);
		assert_int_equal(cf_client_requests(c), 0);
		cf_client_free(c);
	}
	assert_int_equal(n, 0);
	assert_int_equal(srv_nreqs(s), 0);
}

static void
test_bad_token_and_ids(void **state)
{
	struct srv *s = *state;
	struct cf_client *c;
	struct cf_result res;
	const char *bad_zones[] = { "", "abc/def", "../../x", "a?b", "zone 1",
		"z%2e", "zone_id_1", "zone123",
		"5A1E7C0DE5A1E7C0DE5A1E7C0DE5A1E7",  /* upper case */
		"5a1e7c0de5a1e7c0de5a1e7c0de5a1e",   /* 31 */
		"5a1e7c0de5a1e7c0de5a1e7c0de5a1e7a", /* 33 */
		"0123456789012345678901234567890123456789012345678901234"
		"5678901234" /* 65 */ };
	size_t i;
	int n = 0;

	srv_json(s, 200, LIST(""));
	/* A token that would split the header line is refused, not sent. */
	c = cf_client_new(s->base, "abc\r\nX-Evil: 1");
	assert_non_null(c);
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	assert_int_equal(res.status, CF_PENDING);
	assert_null(strstr(res.detail, "Evil"));
	cf_client_free(c);

	c = client(s);
	for (i = 0; i < sizeof(bad_zones) / sizeof(bad_zones[0]); i++) {
		cf_repair_cname(c, bad_zones[i], FQDN, TARGET, &res);
		assert_int_equal(res.status, CF_PENDING);
		assert_string_equal(res.detail,
		    "cloudflare: invalid zone id (32 characters of 0-9 and a-f "
		    "expected)");
		cf_delete_cname(c, bad_zones[i], FQDN, TARGET, &res);
		assert_string_equal(res.detail,
		    "cloudflare: invalid zone id (32 characters of 0-9 and a-f "
		    "expected)");
		assert_int_equal(cf_list_zone(c, bad_zones[i], record_cb, &n,
		                     &res),
		    -1);
		assert_string_equal(res.detail,
		    "cloudflare: invalid zone id (32 characters of 0-9 and a-f "
		    "expected)");
	}
	cf_repair_cname(c, NULL, FQDN, TARGET, &res);
	assert_int_equal(res.status, CF_PENDING);
	cf_delete_record(c, ZONE, "0123/../x", &res);
	assert_int_equal(res.status, CF_PENDING);
	assert_string_equal(res.detail, "cloudflare: invalid record id");
	cf_repair_cname(c, ZONE, "acme.sajet.us&type=A", TARGET, &res);
	assert_int_equal(res.status, CF_PENDING);
	cf_repair_cname(c, ZONE, FQDN, "", &res);
	assert_int_equal(res.status, CF_PENDING);
	cf_delete_cname(c, ZONE, "a b", TARGET, &res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(n, 0);
	assert_int_equal(cf_client_requests(c), 0);
	assert_int_equal(srv_nreqs(s), 0);
	cf_client_free(c);
}

static void
test_token_never_in_detail(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;

	/* A server that echoes the header back into its error message. */
	srv_json(s, 400,
	    ERRJ(6003,
	        "Invalid request headers: "
	        "Authorization: Bearer " TOKEN));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_non_null(strstr(res.detail, "error 6003"));
	assert_non_null(strstr(res.detail, "****"));

	/* Control bytes from the server cannot forge log lines. */
	srv_json(s, 400, ERRJ(1004, "bad\\nline\\u0007 " TOKEN));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_null(strchr(res.detail, '\n'));
	assert_null(strchr(res.detail, '\a'));
	assert_non_null(strstr(res.detail, "bad?line?"));

	/* Echoed so that the quoted message is cut inside the token. */
	srv_json(s, 400,
	    ERRJ(6003,
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxx" TOKEN));
	cf_repair_cname(c, ZONE, FQDN, TARGET, &res);
	check_res(&res);
	assert_non_null(strstr(res.detail, "xxx*****"));
	assert_int_equal(srv_nreqs(s), 3);
	cf_client_free(c);
}

#define LIST_PAGE(recs, page, count, pages)                                    \
	"{\"success\":true,\"errors\":[],\"messages\":[],\"result\":[" recs    \
	"],\"result_info\":{\"page\":" #page ",\"per_page\":1000,"             \
	"\"count\":" #count ",\"total_count\":5,\"total_pages\":" #pages "}}"

struct seen {
	int n;
	struct cf_record r[8];
};

static void
seen_cb(void *arg, const struct cf_record *r)
{
	struct seen *sn = arg;

	if (sn->n < 8)
		sn->r[sn->n] = *r;
	sn->n++;
}

static void
test_list_paging(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	struct seen sn = { 0 };

	srv_json(s, 200,
	    LIST_PAGE(REC("11111111111111111111111111111111", "CNAME",
	                  "Acme.SAJET.us", TARGET, "true",
	                  OURS) "," REC("22222222222222222222222222222222", "A",
	                  "www.sajet.us", "1.2.3.4", "false", ""),
	        1, 2, 3));
	srv_json(s, 200,
	    LIST_PAGE(REC("33333333333333333333333333333333", "CNAME",
	                  "beta.sajet.us", TARGET, "false",
	                  ",\"comment\":\"someone\"") ","
	        /* An id that cannot be used is skipped, not cut. */
	        REC("bad/id", "CNAME", "x.sajet.us", TARGET, "true", OURS),
	        2, 2, 3));
	srv_json(s, 200,
	    LIST_PAGE(REC("44444444444444444444444444444444", "TXT", "sajet.us",
	                  "v=spf1 -all", "false", ""),
	        3, 1, 3));
	assert_int_equal(cf_list_zone(c, ZONE, seen_cb, &sn, &res), 0);
	check_res(&res);
	assert_int_equal(srv_nreqs(s), 3);
	assert_string_equal(srv_req(s, 0)->target,
	    LOOKUP_PATH "?per_page=1000&page=1");
	assert_string_equal(srv_req(s, 1)->target,
	    LOOKUP_PATH "?per_page=1000&page=2");
	assert_string_equal(srv_req(s, 2)->target,
	    LOOKUP_PATH "?per_page=1000&page=3");
	check_auth(srv_req(s, 2));
	assert_int_equal(sn.n, 4);
	assert_string_equal(sn.r[0].id, "11111111111111111111111111111111");
	assert_string_equal(sn.r[0].name, "acme.sajet.us");
	assert_string_equal(sn.r[0].type, "CNAME");
	assert_string_equal(sn.r[0].content, TARGET);
	assert_int_equal(sn.r[0].proxied, 1);
	assert_int_equal(sn.r[0].owned, 1);
	assert_string_equal(sn.r[1].content, "1.2.3.4");
	assert_int_equal(sn.r[1].owned, 0);
	assert_int_equal(sn.r[2].owned, 0);
	assert_int_equal(sn.r[2].proxied, 0);
	assert_string_equal(sn.r[3].id, "44444444444444444444444444444444");
	assert_string_equal(sn.r[3].type, "TXT");
	assert_int_equal(cf_client_requests(c), 3);
	cf_client_free(c);
}

static void
test_list_no_total_pages(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	struct seen sn = { 0 };

	/* Without total_pages a short page is the last one. */
	srv_json(s, 200,
	    "{\"success\":true,\"errors\":[],\"messages\":[],"
	    "\"result\":[" REC("11111111111111111111111111111111", "CNAME",
	        "a.sajet.us", TARGET, "true",
	        OURS) "],\"result_info\":{"
	              "\"page\":1,\"per_page\":1000,\"count\":1}}");
	assert_int_equal(cf_list_zone(c, ZONE, seen_cb, &sn, &res), 0);
	assert_int_equal(sn.n, 1);
	assert_int_equal(srv_nreqs(s), 1);
	cf_client_free(c);
}

static void
test_list_fails_midway(void **state)
{
	struct srv *s = *state;
	struct cf_client *c = client(s);
	struct cf_result res;
	struct seen sn = { 0 };

	srv_json(s, 200,
	    LIST_PAGE(REC("11111111111111111111111111111111", "CNAME",
	                  "a.sajet.us", TARGET, "true", OURS),
	        1, 1, 2));
	srv_push(s, 503, NULL, "text/plain", "busy");
	assert_int_equal(cf_list_zone(c, ZONE, seen_cb, &sn, &res), -1);
	check_res(&res);
	assert_int_equal(res.status, CF_PENDING);
	assert_int_equal(res.http_status, 503);
	assert_string_equal(res.detail,
	    "cloudflare: HTTP 503 from GET "
	    "/zones/5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/dns_records");
	assert_int_equal(sn.n, 1);
	assert_int_equal(srv_nreqs(s), 2);
	cf_client_free(c);
}

struct env_case {
	const char *body;
	int is_env;
	int success;
	int code;
	const char *msg;
};

static void
test_envelope_parser(void **state)
{
	static const struct env_case cases[] = {
		{ "", 0, 0, 0, "" },
		{ "null", 0, 0, 0, "" },
		{ "true", 0, 0, 0, "" },
		{ "[]", 0, 0, 0, "" },
		{ "{}", 0, 0, 0, "" },
		{ "{\"success\":1}", 0, 0, 0, "" },
		{ "{\"success\":\"true\"}", 0, 0, 0, "" },
		{ "{\"success\":null}", 0, 0, 0, "" },
		{ "{\"success\":true", 0, 0, 0, "" },
		{ "{\"success\":true}}", 0, 0, 0, "" },
		{ "<html>502</html>", 0, 0, 0, "" },
		{ "\xff\xfe{\"success\":true}", 0, 0, 0, "" },
		{ "[{\"success\":true}]", 0, 0, 0, "" },
		{ "{\"success\":true}", 1, 1, 0, "" },
		{ " {\"success\" : false } ", 1, 0, 0, "" },
		{ "{\"success\":false,\"errors\":[{\"code\":81053,"
		  "\"message\":\"taken\"}]}",
		    1, 0, 81053, "taken" },
		{ "{\"success\":false,\"errors\":[{\"code\":\"81053\"}]}", 1, 0,
		    0, "" },
		{ "{\"success\":false,\"errors\":[{\"code\":1e30,"
		  "\"message\":7}]}",
		    1, 0, 0, "" },
		{ "{\"success\":false,\"errors\":[{\"code\":-5}]}", 1, 0, 0,
		    "" },
		{ "{\"success\":false,\"errors\":[{\"code\":10.5}]}", 1, 0, 0,
		    "" },
		{ "{\"success\":false,\"errors\":{\"code\":9109}}", 1, 0, 0,
		    "" },
		{ "{\"success\":false,\"errors\":[7,{\"code\":9109}]}", 1, 0, 0,
		    "" },
		{ "{\"success\":false,\"errors\":[{\"code\":9109,\"message\":"
		  "\"0123456789abcdefXYZ\"}]}",
		    1, 0, 9109,
		    "0123456789abcde" /* cut to the 16-byte buffer */ },
	};
	char msg[16], deep[4096];
	int ok, code;
	size_t i;
	cJSON *root;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ok = code = -1;
		root = cf_parse_envelope(cases[i].body, strlen(cases[i].body),
		    &ok, &code, msg, sizeof(msg));
		if (cases[i].is_env != (root != NULL))
			fail_msg("case %zu (%s): envelope %d", i, cases[i].body,
			    root != NULL);
		assert_int_equal(ok, cases[i].success);
		assert_int_equal(code, cases[i].code);
		assert_string_equal(msg, cases[i].msg);
		cJSON_Delete(root);
	}

	/* NULL and length 0, NULL outputs, a length that stops early. */
	assert_null(cf_parse_envelope(NULL, 10, &ok, &code, msg, sizeof(msg)));
	assert_null(
	    cf_parse_envelope("{\"success\":true}", 0, NULL, NULL, NULL, 0));
	root = cf_parse_envelope("{\"success\":true}", 16, NULL, NULL, NULL, 0);
	assert_non_null(root);
	cJSON_Delete(root);
	assert_null(cf_parse_envelope("{\"success\":true}", 10, &ok, &code, msg,
	    sizeof(msg)));
	/* Embedded NUL: the length is what counts. */
	assert_null(cf_parse_envelope("{\"success\":\0true}", 17, &ok, &code,
	    msg, sizeof(msg)));

	/* Nesting past cJSON's limit fails cleanly instead of recursing. */
	memset(deep, '[', sizeof(deep));
	assert_null(cf_parse_envelope(deep, sizeof(deep), &ok, &code, msg,
	    sizeof(msg)));
	assert_int_equal(ok, 0);
}

static void
test_zone_id_rule(void **state)
{
	(void)state;
	assert_true(cf_zone_id_valid("5a1e7c0de5a1e7c0de5a1e7c0de5a1e7"));
	assert_true(cf_zone_id_valid("0123456789abcdef0123456789abcdef"));
	assert_false(cf_zone_id_valid("zone_id_1"));
	assert_false(cf_zone_id_valid("0123456789ABCDEF0123456789ABCDEF"));
	assert_false(cf_zone_id_valid("0123456789abcdef0123456789abcde"));
	assert_false(cf_zone_id_valid("0123456789abcdef0123456789abcdef0"));
	assert_false(cf_zone_id_valid("0123456789abcdeg0123456789abcdef"));
	assert_false(cf_zone_id_valid(""));
	assert_false(cf_zone_id_valid(NULL));
}

static void
test_status_str(void **state)
{
	(void)state;
	assert_string_equal(cf_status_str(CF_CREATED), "created");
	assert_string_equal(cf_status_str(CF_EXISTS), "exists");
	assert_string_equal(cf_status_str(CF_DELETED), "deleted");
	assert_string_equal(cf_status_str(CF_ABSENT), "absent");
	assert_string_equal(cf_status_str(CF_CONFLICT), "conflict");
	assert_string_equal(cf_status_str(CF_PENDING), "pending");
	assert_string_equal(cf_status_str(CF_DISABLED), "disabled");
	assert_int_equal(cf_client_requests(NULL), 0);
	cf_client_free(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, srv_setup, srv_teardown)

int
main(void)
{
	static const char *proxies[] = { "http_proxy", "https_proxy",
		"HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
	const struct CMUnitTest tests[] = {
		T(test_create),
		T(test_exists),
		T(test_exists_fix_drift),
		T(test_ensure_free_name_one_post),
		T(test_ensure_taken_by_ours),
		T(test_ensure_taken_by_ours_drifted),
		T(test_ensure_taken_by_foreign_untouched),
		T(test_ensure_refused_then_nothing),
		T(test_ensure_other_refusal_no_lookup),
		T(test_other_node_is_conflict),
		T(test_delete_other_node_kept),
		T(test_conflict_foreign_a),
		T(test_conflict_foreign_cname),
		T(test_race_81053_ours),
		T(test_race_81058_foreign),
		T(test_race_then_nothing),
		T(test_create_forbidden),
		T(test_delete_owned),
		T(test_delete_foreign_only),
		T(test_delete_nothing),
		T(test_delete_81044),
		T(test_delete_record_html_404),
		T(test_rate_limited),
		T(test_500_empty),
		T(test_502_html),
		T(test_not_envelope),
		T(test_success_false_200),
		T(test_cut_reply),
		T(test_oversized_reply),
		T(test_redirect_not_followed),
		T(test_timeout),
		cmocka_unit_test(test_refused_counts_nothing),
		T(test_disabled),
		T(test_bad_token_and_ids),
		T(test_token_never_in_detail),
		T(test_list_paging),
		T(test_list_no_total_pages),
		T(test_list_fails_midway),
		cmocka_unit_test(test_envelope_parser),
		cmocka_unit_test(test_zone_id_rule),
		cmocka_unit_test(test_status_str),
	};
	size_t i;

	/* The canned server is on loopback; a proxy would get in the way. */
	for (i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
		unsetenv(proxies[i]);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
