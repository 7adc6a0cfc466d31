/*
 * nodo - the node's command line tool (CONTRACT sections 7 and 13): every
 * operation of the local API (odoo-local-api) from the shell, with the
 * seed's conventions: a human summary by default, --json for the API's raw
 * body, exit 0 on success and non-zero with the API's "detail" on stderr
 * otherwise, --help for the tool and each subcommand. The key and the
 * port come from the env file through libnodo's settings parser (cli.c);
 * the key travels only as the X-API-KEY header, never in an argv or a log.
 * Backups and restores are streamed to and from files (never held in
 * memory) with a progress bar on stderr when it is a terminal.
 *
 * The scripts in scripts/ (create_tenant.sh and the others) are thin
 * wrappers over this program.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "nodo/cli.h"
#include "nodo/util.h"

#define MAX_REPLY    (16 * 1024 * 1024) /* bytes, a JSON reply */
#define MAX_PASSWORD 65536              /* bytes, one line of stdin */
#define MAX_PATH_URL 2048               /* bytes, path and query */
#define CONNECT_SECS 10                 /* seconds to connect */
#define PROGRESS_MS  200                /* ms between progress redraws */
#define SHOWN_BODY   200                /* bytes of a non-JSON reply shown */

static const char *prog = "nodo";
static volatile sig_atomic_t interrupted;
static const char *part_to_remove; /* FILE.part while a backup runs */

/* Global state of one run: the settings and the output mode. */
struct ctx {
	struct cli_config cfg;
	int json;
	int loaded;
};

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Replaces control characters so that a reply cannot drive the terminal. */
static void
sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = (*s == '\n' || *s == '\r' || *s == '\t') ? ' '
			                                              : '?';
}

/* ------------------------------------------------------------------ help */

struct cmd;
typedef int (*cmd_fn)(struct ctx *, int, char **);

struct cmd {
	const char *name;
	cmd_fn fn;
	const char *usage; /* after "Usage: nodo " */
	const char *help;  /* what it does, its options */
};

static const char common_help[] =
    "Common options:\n"
    "  --json         print the API's raw JSON reply instead of the summary\n"
    "  -h, --help     show this help\n"
    "\n"
    "Environment:\n"
    "  NODO_ENV_FILE     env file with PROVISIONING_API_KEY and API_PORT\n"
    "                    (default /opt/nodo/config/.env, root:nodo 0640:\n"
    "                    run as root or as a member of the group nodo)\n"
    "  NODO_API_URL      API base URL (default http://127.0.0.1:<API_PORT>)\n"
    "  NODO_API_KEY      key to use instead of the env file's\n"
    "  NODO_API_TIMEOUT  seconds a request may take in all (default 900;\n"
    "                    backups and restores: no limit)\n"
    "\n"
    "Exit status: 0 done, 1 the API refused (its detail is printed) or a\n"
    "question was answered no, 64 usage error, 69 API unreachable or no\n"
    "usable answer (also a transfer cut short), 74 a local file could not\n"
    "be read or written, 78 configuration error.\n";

static const struct cmd *find_cmd(const char *name);

static void
print_cmd_help(const struct cmd *c, FILE *f)
{
	fprintf(f, "Usage: nodo %s\n\n%s\n%s", c->usage, c->help, common_help);
}

static int
usage_error(const struct cmd *c, const char *why)
{
	if (why != NULL)
		warnx_("%s (see nodo %s --help)", why, c->name);
	else
		fprintf(stderr, "Usage: nodo %s\n", c->usage);
	return CLI_EX_USAGE;
}

/* ----------------------------------------------------------------- HTTP */

struct buf {
	char *p;
	size_t len;
	size_t cap;
	int overflow;
};

static int
buf_add(struct buf *b, const void *data, size_t n)
{
	char *np;
	size_t cap;

	if (b->len + n > MAX_REPLY) {
		b->overflow = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap == 0 ? 4096 : b->cap;
		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* The progress bar of one transfer (drawn only when stderr is a tty). */
struct progress {
	int on;
	long long start_ms;
	long long last_ms;
	int drawn;
};

static int
term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col - 1;
	return 79;
}

static void
progress_draw(struct progress *p, unsigned long long done, long long total,
    int final)
{
	char line[256];
	long long now = nodo_mono_ms();

	if (!p->on)
		return;
	if (!final && now - p->last_ms < PROGRESS_MS)
		return;
	p->last_ms = now;
	cli_progress_line(line, sizeof(line), done, total,
	    (double)(now - p->start_ms) / 1000.0, term_width());
	fprintf(stderr, "\r%s\033[K", line);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
	p->drawn = 1;
}

/* One request. */
struct xfer {
	struct ctx *ctx;
	long status;
	struct buf reply;         /* the JSON reply (or an error's body) */
	int out_fd;               /* >= 0: a 200's body goes here */
	int in_fd;                /* >= 0: the request body comes from here */
	long long in_size;        /* its size */
	unsigned long long moved; /* body bytes sent or received */
	int write_errno;          /* set when writing out_fd failed */
	int read_errno;           /* set when reading in_fd failed */
	struct progress pg;
	int upload; /* the bar follows the upload */
	CURL *h;
};

static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, off = 0;
	ssize_t w;
	curl_off_t total = -1;

	if (x->status == 0)
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->out_fd < 0 || x->status != 200) {
		buf_add(&x->reply, data, n); /* an overflow is noted */
		return n;
	}
	while (off < n) {
		w = write(x->out_fd, data + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			x->write_errno = errno;
			return 0; /* curl stops: CURLE_WRITE_ERROR */
		}
		off += (size_t)w;
	}
	x->moved += n;
	if (!x->upload) {
		curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
		    &total);
		progress_draw(&x->pg, x->moved, total, 0);
	}
	return n;
}

static size_t
on_read(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	ssize_t r;

	for (;;) {
		r = read(x->in_fd, data, size * nmemb);
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	if (r < 0) {
		x->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	x->moved += (size_t)r;
	progress_draw(&x->pg, x->moved, x->in_size, 0);
	return (size_t)r;
}

static int
on_xferinfo(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
    curl_off_t uln)
{
	(void)arg;
	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	return interrupted ? 1 : 0; /* Ctrl-C: curl stops, we clean up */
}

/*
 * Runs METHOD path (path holds the query). body: a JSON text or NULL.
 * x->out_fd / in_fd say where a transfer goes. Returns CLI_EX_OK when an
 * HTTP answer came back (x->status is set, any status), or an exit status
 * with the reason printed.
 */
static int
http(struct ctx *c, struct xfer *x, const char *method, const char *path,
    const char *body)
{
	char url[MAX_PATH_URL + 600], errbuf[CURL_ERROR_SIZE] = "";
	char *hkey = NULL;
	struct curl_slist *h = NULL, *t;
	size_t klen;
	CURLcode rc;
	long timeout = c->cfg.timeout;
	int ret = CLI_EX_OK;

	x->ctx = c;
	if (snprintf(url, sizeof(url), "%s%s", c->cfg.url, path) >=
	    (int)sizeof(url)) {
		warnx_("the request's URL is too long");
		return CLI_EX_USAGE;
	}
	x->h = curl_easy_init();
	klen = strlen("X-API-KEY: ") + strlen(c->cfg.key) + 1;
	hkey = malloc(klen);
	if (x->h == NULL || hkey == NULL) {
		warnx_("out of memory");
		free(hkey);
		if (x->h != NULL)
			curl_easy_cleanup(x->h);
		x->h = NULL;
		return CLI_EX_UNAVAILABLE;
	}
	snprintf(hkey, klen, "X-API-KEY: %s", c->cfg.key);
	h = curl_slist_append(h, hkey);
	if (h != NULL && (t = curl_slist_append(h, "Accept: application/json")))
		h = t;
	if (h != NULL && body != NULL &&
	    (t = curl_slist_append(h, "Content-Type: application/json")))
		h = t;
	if (h != NULL && x->in_fd >= 0 &&
	    (t = curl_slist_append(h, "Content-Type: application/zip")))
		h = t;
	explicit_bzero(hkey, klen);
	free(hkey);

	if (timeout < 0)
		timeout =
		    (x->in_fd >= 0 || x->out_fd >= 0) ? 0 : CLI_DEFAULT_TIMEOUT;
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(x->h, CURLOPT_USERAGENT, "nodo-cli/" NODO_VERSION);
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_SECS);
	curl_easy_setopt(x->h, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(x->h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	if (body != NULL) {
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)strlen(body));
	} else if (x->in_fd >= 0) {
		curl_easy_setopt(x->h, CURLOPT_POST, 1L);
		curl_easy_setopt(x->h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(x->h, CURLOPT_READDATA, x);
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)x->in_size);
	}
	x->pg.start_ms = x->pg.last_ms = nodo_mono_ms();
	rc = curl_easy_perform(x->h);
	if (x->status == 0)
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
	/* The last frame: also for a transfer too quick for any other. */
	if (x->pg.on &&
	    (x->pg.drawn ||
	        (rc == CURLE_OK && x->status >= 200 && x->status < 300)))
		progress_draw(&x->pg, x->moved,
		    x->upload ? x->in_size : (long long)x->moved, 1);
	curl_slist_free_all(h); /* the key's copy goes with it */
	curl_easy_cleanup(x->h);
	x->h = NULL;

	if (rc == CURLE_OK)
		return CLI_EX_OK;
	if (x->write_errno != 0)
		return CLI_EX_IOERR; /* the caller names the file */
	if (x->read_errno != 0) {
		warnx_("cannot read the backup: %s", strerror(x->read_errno));
		return CLI_EX_IOERR;
	}
	if (interrupted) {
		warnx_("interrupted");
		return 130;
	}
	if (x->status != 0 && rc != CURLE_COULDNT_CONNECT) {
		/* An answer started, then broke off. */
		if (x->status == 200 && x->out_fd >= 0)
			return CLI_EX_UNAVAILABLE; /* caller says it */
		if (x->reply.len > 0 && x->status >= 400)
			return CLI_EX_OK; /* the error body came: report it */
	}
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		warnx_("cannot connect to the Nodo API at %s (%s). Is "
		       "odoo-local-api running? Try: systemctl status "
		       "odoo-local-api",
		    c->cfg.url, errbuf[0] != '\0' ? errbuf : "refused");
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		warnx_("cannot resolve the host of %s (%s)", c->cfg.url,
		    errbuf);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		warnx_("the Nodo API at %s did not answer in time (%s); the "
		       "operation may still complete on the server",
		    c->cfg.url, errbuf);
		break;
	default:
		warnx_("request to the Nodo API at %s failed (%s)", c->cfg.url,
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	}
	ret = CLI_EX_UNAVAILABLE;
	return ret;
}

static void
xfer_init(struct xfer *x)
{
	memset(x, 0, sizeof(*x));
	x->out_fd = -1;
	x->in_fd = -1;
}

/* Prints the raw reply (for --json). */
static void
print_raw(const struct xfer *x)
{
	if (x->reply.len > 0) {
		fwrite(x->reply.p, 1, x->reply.len, stdout);
		if (x->reply.p[x->reply.len - 1] != '\n')
			fputc('\n', stdout);
	}
	fflush(stdout);
}

/* A non-2xx reply: its detail and code on stderr; returns CLI_EX_API. */
static int
fail_reply(struct ctx *c, struct xfer *x)
{
	cJSON *root = NULL, *d, *code;
	char shown[SHOWN_BODY + 1];

	if (c->json)
		print_raw(x);
	if (x->reply.p != NULL)
		root = cJSON_ParseWithLength(x->reply.p, x->reply.len);
	d = cJSON_GetObjectItemCaseSensitive(root, "detail");
	code = cJSON_GetObjectItemCaseSensitive(root, "code");
	if (cJSON_IsString(d) && d->valuestring[0] != '\0') {
		sanitize(d->valuestring);
		if (cJSON_IsString(code)) {
			sanitize(code->valuestring);
			warnx_("%s (HTTP %ld %s)", d->valuestring, x->status,
			    code->valuestring);
		} else {
			warnx_("%s (HTTP %ld)", d->valuestring, x->status);
		}
	} else {
		nodo_strlcpy(shown, x->reply.p != NULL ? x->reply.p : "",
		    sizeof(shown));
		sanitize(shown);
		if (x->status == 401)
			warnx_("unauthorized: the key in %s is not the API's "
			       "(HTTP 401)%s%s",
			    c->cfg.env_file, shown[0] ? ": " : "", shown);
		else
			warnx_("unexpected reply from %s (HTTP %ld)%s%s",
			    c->cfg.url, x->status, shown[0] ? ": " : "", shown);
	}
	cJSON_Delete(root);
	return CLI_EX_API;
}

/*
 * One JSON call: on a 2xx reply *out is the parsed body (caller deletes)
 * and --json printed it; otherwise the failure is reported. Returns an
 * exit status.
 */
static int
call(struct ctx *c, const char *method, const char *path, const char *body,
    cJSON **out)
{
	struct xfer x;
	int rc;

	*out = NULL;
	xfer_init(&x);
	rc = http(c, &x, method, path, body);
	if (rc != CLI_EX_OK)
		goto done;
	if (x.status < 200 || x.status > 299) {
		rc = fail_reply(c, &x);
		goto done;
	}
	if (x.reply.overflow) {
		warnx_("the reply from %s is larger than %d bytes", c->cfg.url,
		    MAX_REPLY);
		rc = CLI_EX_UNAVAILABLE;
		goto done;
	}
	*out = x.reply.p != NULL ? cJSON_ParseWithLength(x.reply.p, x.reply.len)
	                         : NULL;
	if (*out == NULL) {
		warnx_("unexpected reply from %s (HTTP %ld, not JSON)",
		    c->cfg.url, x.status);
		rc = CLI_EX_UNAVAILABLE;
		goto done;
	}
	if (c->json)
		print_raw(&x);
done:
	buf_free(&x.reply);
	return rc;
}

/* ------------------------------------------------------------- helpers */

static const char *
env_get(const char *name)
{
	return getenv(name);
}

static int
load(struct ctx *c)
{
	char err[CLI_MAX_ERR];
	int rc;

	if (c->loaded)
		return CLI_EX_OK;
	rc = cli_config_load(&c->cfg, env_get, err, sizeof(err));
	if (rc != CLI_EX_OK) {
		warnx_("%s", err);
		return rc;
	}
	c->loaded = 1;
	return CLI_EX_OK;
}

/* "/api/tenants/<name><tail>" with the name percent-encoded. */
static int
tenant_path(char *buf, size_t len, const char *prefix, const char *name,
    const char *tail)
{
	char enc[3 * 256 + 1];

	if (strlen(name) > 255 || cli_urlencode(enc, sizeof(enc), name) != 0)
		return -1;
	return snprintf(buf, len, "%s%s%s", prefix, enc, tail) < (int)len ? 0
	                                                                  : -1;
}

/* The string member key of o, or dflt (sanitized in place). */
static const char *
str(cJSON *o, const char *key, const char *dflt)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsString(v))
		return dflt;
	sanitize(v->valuestring);
	return v->valuestring;
}

static double
num(cJSON *o, const char *key, double dflt)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void
print_bytes_field(const char *label, cJSON *o, const char *key)
{
	char b[32];
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v) || v->valuedouble < 0)
		return;
	cli_human_bytes(b, sizeof(b), (unsigned long long)v->valuedouble);
	printf("%s: %s\n", label, b);
}

/* One line about the "dns" member of a reply. */
static void
print_dns(cJSON *reply)
{
	cJSON *dns = cJSON_GetObjectItemCaseSensitive(reply, "dns");
	const char *st = str(dns, "status", "unknown");
	const char *name = str(dns, "name", NULL);
	const char *detail = str(dns, "detail", NULL);

	printf("DNS: ");
	if (strcmp(st, "created") == 0 || strcmp(st, "exists") == 0 ||
	    strcmp(st, "deleted") == 0) {
		printf("%s", st);
		if (name != NULL && *name != '\0')
			printf(" (%s)", name);
	} else if (strcmp(st, "absent") == 0) {
		printf("absent (no record to delete)");
	} else if (strcmp(st, "pending") == 0) {
		printf("pending%s%s (odoo-db-watcher will retry)",
		    detail != NULL ? " — " : "", detail != NULL ? detail : "");
	} else if (strcmp(st, "conflict") == 0) {
		printf("conflict%s%s (nothing was changed)",
		    detail != NULL ? " — " : "", detail != NULL ? detail : "");
	} else if (strcmp(st, "disabled") == 0) {
		printf("disabled (no CLOUDFLARE_API_TOKEN)");
	} else {
		printf("%s%s%s", st, detail != NULL ? " — " : "",
		    detail != NULL ? detail : "");
	}
	printf("\n");
}

/* The summary of a reply that made a tenant (create, restores). */
static void
print_made(cJSON *r, const char *verb, const char *name)
{
	const char *sub = str(r, "subdomain", name);
	const char *tpl = str(r, "template_db", NULL);
	const char *warn = str(r, "warning", NULL);
	cJSON *from = cJSON_GetObjectItemCaseSensitive(r, "restored_from");

	printf("Tenant %s %s.\n", sub, verb);
	printf("URL: %s\n", str(r, "url", "?"));
	printf("Database: %s\n", str(r, "database", sub));
	printf("Domain: %s\n", str(r, "domain", "?"));
	if (tpl != NULL)
		printf("Template: %s\n", tpl);
	if (cJSON_IsObject(from))
		printf("Restored from: %s (Odoo %s)\n",
		    str(from, "db_name", "?"), str(from, "version", "?"));
	print_dns(r);
	if (warn != NULL && *warn != '\0')
		warnx_("warning: %s", warn);
}

static void
echo_off(int off)
{
	static struct termios saved;
	static int have;
	struct termios t;

	if (off) {
		if (tcgetattr(STDIN_FILENO, &saved) != 0)
			return;
		have = 1;
		t = saved;
		t.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &t);
	} else if (have) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		have = 0;
	}
}

/* Reads one line of stdin (without its line break) into buf. */
static int
read_line(char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		return -1;
	n = strlen(buf);
	if (n == len - 1 && buf[n - 1] != '\n')
		return -2; /* longer than the buffer */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return 0;
}

/*
 * The password: asked twice without echo on a terminal, else the first
 * line of stdin. Returns a malloc'd string, or NULL with the reason
 * printed (*rc set).
 */
static char *
get_password(const char *prompt, int *rc)
{
	char *a = malloc(MAX_PASSWORD), *b = NULL;
	int r;

	*rc = CLI_EX_USAGE;
	if (a == NULL)
		return NULL;
	if (isatty(STDIN_FILENO)) {
		b = malloc(MAX_PASSWORD);
		if (b == NULL)
			goto fail;
		echo_off(1); /* before the prompt: typing may start on it */
		fprintf(stderr, "%s: ", prompt);
		fflush(stderr);
		r = read_line(a, MAX_PASSWORD);
		fprintf(stderr, "\nRepeat it: ");
		fflush(stderr);
		if (r == 0)
			r = read_line(b, MAX_PASSWORD);
		echo_off(0);
		fputc('\n', stderr);
		if (r != 0) {
			warnx_("no password given");
			goto fail;
		}
		if (strcmp(a, b) != 0) {
			warnx_("the passwords differ");
			goto fail;
		}
		explicit_bzero(b, MAX_PASSWORD);
		free(b);
	} else {
		r = read_line(a, MAX_PASSWORD);
		if (r == -1) {
			warnx_("no password on standard input");
			goto fail;
		}
		if (r == -2) {
			warnx_("the password on standard input is longer than "
			       "%d bytes",
			    MAX_PASSWORD - 2);
			goto fail;
		}
	}
	if (a[0] == '\0') {
		warnx_("the password is empty");
		goto fail;
	}
	return a;
fail:
	explicit_bzero(a, MAX_PASSWORD);
	free(a);
	if (b != NULL) {
		explicit_bzero(b, MAX_PASSWORD);
		free(b);
	}
	return NULL;
}

/* Asks QUESTION [y/N] on the terminal; 1 for yes. */
static int
confirm(const char *question)
{
	char ans[64];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (read_line(ans, sizeof(ans)) != 0)
		return 0;
	return strcmp(ans, "y") == 0 || strcmp(ans, "Y") == 0 ||
	    strcmp(ans, "yes") == 0 || strcmp(ans, "YES") == 0 ||
	    strcmp(ans, "Yes") == 0;
}

/* Parses a subcommand's argv with the common --json and --help added. */
static int
parse(struct ctx *c, const struct cmd *cmd, int argc, char **argv,
    const struct cli_opt *extra, char **pos, int minpos, int maxpos, int *npos,
    int *help)
{
	struct cli_opt opts[16];
	char err[CLI_MAX_ERR];
	size_t n = 0;

	opts[n++] = (struct cli_opt){ "json", 0, 0, &c->json, NULL };
	opts[n++] = (struct cli_opt){ "help", 'h', 0, help, NULL };
	for (; extra != NULL && extra->name != NULL && n < 15; extra++)
		opts[n++] = *extra;
	opts[n] = (struct cli_opt){ NULL, 0, 0, NULL, NULL };
	if (cli_parse(argc, argv, opts, pos, maxpos, npos, err, sizeof(err)) !=
	    0)
		return usage_error(cmd, err);
	if (*help) {
		print_cmd_help(cmd, stdout);
		return -1;
	}
	if (*npos < minpos)
		return usage_error(cmd, NULL);
	return CLI_EX_OK;
}

#define PARSE(extra, minp, maxp)                                               \
	do {                                                                   \
		int prc_ = parse(c, find_cmd(argv[0]), argc - 1, argv + 1,     \
		    (extra), pos, (minp), (maxp), &npos, &help);               \
		if (prc_ == -1)                                                \
			return CLI_EX_OK;                                      \
		if (prc_ != CLI_EX_OK)                                         \
			return prc_;                                           \
		if ((prc_ = load(c)) != CLI_EX_OK)                             \
			return prc_;                                           \
	} while (0)

/* Adds a string member, giving up quietly on memory exhaustion (the
 * request then lacks it and the API says which field is missing). */
static void
add_str(cJSON *o, const char *k, const char *v)
{
	cJSON_AddStringToObject(o, k, v);
}

/* ----------------------------------------------------------- commands */

static int
cmd_create(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], *pw, *body;
	int npos, help = 0, rc;
	const char *domain = NULL, *tpl = NULL;
	const struct cli_opt ex[] = { { "domain", 0, 1, NULL, &domain },
		{ "template", 0, 1, NULL, &tpl }, { NULL, 0, 0, NULL, NULL } };
	char prompt[320];
	cJSON *o, *r;

	PARSE(ex, 1, 3);
	if (npos >= 2)
		domain = pos[1];
	if (npos >= 3)
		tpl = pos[2];
	snprintf(prompt, sizeof(prompt), "Admin password for %.255s", pos[0]);
	if ((pw = get_password(prompt, &rc)) == NULL)
		return rc;
	o = cJSON_CreateObject();
	add_str(o, "subdomain", pos[0]);
	add_str(o, "admin_password", pw);
	if (domain != NULL && *domain != '\0')
		add_str(o, "domain", domain);
	if (tpl != NULL && *tpl != '\0')
		add_str(o, "template_db", tpl);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o); /* the password's copy in the tree: freed */
	if (body == NULL) {
		warnx_("out of memory");
		return CLI_EX_UNAVAILABLE;
	}
	rc = call(c, "POST", "/api/tenant", body, &r);
	explicit_bzero(body, strlen(body));
	free(body);
	if (rc == CLI_EX_OK && !c->json)
		print_made(r, "created", pos[0]);
	cJSON_Delete(r);
	return rc;
}

static int
cmd_list(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL], enc[1024];
	int npos, help = 0, rc, n, i;
	size_t w1 = 9, w2 = 6;
	cJSON *r, *arr, *t;

	PARSE(NULL, 0, 1);
	if (npos == 1 && pos[0][0] != '\0') {
		if (cli_urlencode(enc, sizeof(enc), pos[0]) != 0)
			return usage_error(find_cmd("list"), "domain too long");
		snprintf(path, sizeof(path), "/api/tenants?domain=%s", enc);
	} else {
		nodo_strlcpy(path, "/api/tenants", sizeof(path));
	}
	if ((rc = call(c, "GET", path, NULL, &r)) != CLI_EX_OK || c->json) {
		cJSON_Delete(r);
		return rc;
	}
	arr = cJSON_GetObjectItemCaseSensitive(r, "tenants");
	if (!cJSON_IsArray(arr)) {
		warnx_("unexpected reply from %s (no \"tenants\" array)",
		    c->cfg.url);
		cJSON_Delete(r);
		return CLI_EX_UNAVAILABLE;
	}
	cJSON_ArrayForEach(t, arr)
	{
		size_t a = strlen(str(t, "subdomain", "")),
		       b = strlen(str(t, "domain", ""));

		w1 = a > w1 ? a : w1;
		w2 = b > w2 ? b : w2;
	}
	n = cJSON_GetArraySize(arr);
	if (n == 0) {
		printf("No tenants%s%s.\n", npos == 1 ? " in " : "",
		    npos == 1 ? pos[0] : "");
	} else {
		printf("%-*s  %-*s  %s\n", (int)w1, "SUBDOMAIN", (int)w2,
		    "DOMAIN", "URL");
		cJSON_ArrayForEach(t, arr)
		{
			const char *st = str(t, "state", "active");

			printf("%-*s  %-*s  %s%s\n", (int)w1,
			    str(t, "subdomain", ""), (int)w2,
			    str(t, "domain", ""), str(t, "url", ""),
			    strcmp(st, "active") != 0 ? "  (suspended)" : "");
		}
	}
	i = (int)num(r, "count", n);
	printf("%d tenant%s\n", i, i == 1 ? "" : "s");
	cJSON_Delete(r);
	return CLI_EX_OK;
}

/* 1 when the daemon has a trash (GET /api/trash answers 2xx): a delete
 * then goes there; 0 when the route is unknown (an older daemon: every
 * delete is final); -1 when it cannot be told. */
static int
has_trash(struct ctx *c)
{
	struct xfer x;
	int rc, ret = -1;

	xfer_init(&x);
	rc = http(c, &x, "GET", "/api/trash", NULL);
	if (rc == CLI_EX_OK)
		ret = x.status >= 200 && x.status < 300 ? 1
		    : x.status == 404                   ? 0
		                                        : -1;
	buf_free(&x.reply);
	return ret;
}

static int
cmd_delete(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], q[400], *body;
	int npos, help = 0, rc, yes = 0, purge = 0, ask = 0;
	const struct cli_opt ex[] = { { "yes", 'y', 0, &yes, NULL },
		{ "purge", 0, 0, &purge, NULL }, { NULL, 0, 0, NULL, NULL } };
	cJSON *o, *r, *trash;

	PARSE(ex, 1, 1);
	if (pos[0][0] == '\0')
		return usage_error(find_cmd("delete"),
		    "the tenant's name is empty");
	/* Only a person at a terminal is asked, and only before a delete
	 * that cannot be undone (CONTRACT 13). */
	if (!yes && isatty(STDIN_FILENO)) {
		if (purge)
			ask = 1;
		else if (has_trash(c) != 1)
			ask = 1;
	}
	if (ask) {
		snprintf(q, sizeof(q),
		    "Delete tenant %.255s and all its data%s?", pos[0],
		    purge ? " for good (no trash)" : "");
		if (!confirm(q)) {
			fprintf(stderr, "Not deleted.\n");
			return CLI_EX_API;
		}
	}
	o = cJSON_CreateObject();
	add_str(o, "subdomain", pos[0]);
	if (purge)
		cJSON_AddBoolToObject(o, "purge", 1);
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (body == NULL)
		return CLI_EX_UNAVAILABLE;
	rc = call(c, "DELETE", purge ? "/api/tenant?purge=true" : "/api/tenant",
	    body, &r);
	free(body);
	if (rc == CLI_EX_OK && !c->json) {
		const char *sub = str(r, "subdomain", pos[0]);

		trash = cJSON_GetObjectItemCaseSensitive(r, "trash");
		if (cJSON_IsObject(trash))
			printf("Tenant %s moved to the trash (id %s, "
			       "restorable "
			       "until %s; nodo trash-restore %s).\n",
			    sub, str(trash, "id", "?"),
			    str(trash, "expires_at", "?"),
			    str(trash, "id", "?"));
		else
			printf("Tenant %s deleted (database and filestore).\n",
			    sub);
		print_dns(r);
	}
	cJSON_Delete(r);
	return rc;
}

static int
cmd_trash(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], size[32];
	int npos, help = 0, rc, n;
	size_t w1 = 2, w2 = 9;
	cJSON *r, *arr, *t;

	PARSE(NULL, 0, 0);
	if ((rc = call(c, "GET", "/api/trash", NULL, &r)) != CLI_EX_OK ||
	    c->json) {
		cJSON_Delete(r);
		return rc;
	}
	arr = cJSON_GetObjectItemCaseSensitive(r, "trash");
	if (!cJSON_IsArray(arr)) {
		warnx_("unexpected reply from %s (no \"trash\" array)",
		    c->cfg.url);
		cJSON_Delete(r);
		return CLI_EX_UNAVAILABLE;
	}
	cJSON_ArrayForEach(t, arr)
	{
		size_t a = strlen(str(t, "id", "")),
		       b = strlen(str(t, "subdomain", ""));

		w1 = a > w1 ? a : w1;
		w2 = b > w2 ? b : w2;
	}
	n = cJSON_GetArraySize(arr);
	if (n == 0) {
		printf("The trash is empty.\n");
	} else {
		printf("%-*s  %-*s  %-20s  %-20s  %s\n", (int)w1, "ID", (int)w2,
		    "SUBDOMAIN", "DELETED", "EXPIRES", "SIZE");
		cJSON_ArrayForEach(t, arr)
		{
			cli_human_bytes(size, sizeof(size),
			    (unsigned long long)(num(t, "database_bytes", 0) +
			        num(t, "filestore_bytes", 0)));
			printf("%-*s  %-*s  %-20s  %-20s  %s\n", (int)w1,
			    str(t, "id", ""), (int)w2, str(t, "subdomain", ""),
			    str(t, "deleted_at", ""), str(t, "expires_at", ""),
			    size);
		}
	}
	n = (int)num(r, "count", n);
	printf("%d in the trash\n", n);
	cJSON_Delete(r);
	return CLI_EX_OK;
}

static int
cmd_trash_restore(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL], *body = NULL;
	int npos, help = 0, rc;
	const char *sub = NULL, *dom = NULL;
	const struct cli_opt ex[] = { { "subdomain", 0, 1, NULL, &sub },
		{ "domain", 0, 1, NULL, &dom }, { NULL, 0, 0, NULL, NULL } };
	cJSON *o, *r;

	PARSE(ex, 1, 1);
	if (tenant_path(path, sizeof(path), "/api/trash/", pos[0],
	        "/restore") != 0)
		return usage_error(find_cmd("trash-restore"), "id too long");
	o = cJSON_CreateObject();
	if (sub != NULL)
		add_str(o, "subdomain", sub);
	if (dom != NULL)
		add_str(o, "domain", dom);
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (body == NULL)
		return CLI_EX_UNAVAILABLE;
	rc = call(c, "POST", path, body, &r);
	free(body);
	if (rc == CLI_EX_OK && !c->json)
		print_made(r, "restored from the trash", sub ? sub : "?");
	cJSON_Delete(r);
	return rc;
}

static int
cmd_trash_purge(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL], q[400];
	int npos, help = 0, rc, yes = 0;
	const struct cli_opt ex[] = { { "yes", 'y', 0, &yes, NULL },
		{ NULL, 0, 0, NULL, NULL } };
	cJSON *r;

	PARSE(ex, 1, 1);
	if (tenant_path(path, sizeof(path), "/api/trash/", pos[0], "") != 0)
		return usage_error(find_cmd("trash-purge"), "id too long");
	if (!yes && isatty(STDIN_FILENO)) {
		snprintf(q, sizeof(q),
		    "Delete trash entry %.255s and all its data for good?",
		    pos[0]);
		if (!confirm(q)) {
			fprintf(stderr, "Not deleted.\n");
			return CLI_EX_API;
		}
	}
	rc = call(c, "DELETE", path, NULL, &r);
	if (rc == CLI_EX_OK && !c->json)
		printf("Trash entry %s purged.\n", str(r, "id", pos[0]));
	cJSON_Delete(r);
	return rc;
}

static void
print_detail(cJSON *r)
{
	cJSON *u = cJSON_GetObjectItemCaseSensitive(r, "users");
	cJSON *ff = cJSON_GetObjectItemCaseSensitive(r, "filestore_files");

	printf("Tenant: %s\n", str(r, "subdomain", "?"));
	printf("URL: %s\n", str(r, "url", "?"));
	printf("State: %s\n", str(r, "state", "?"));
	printf("Domain: %s\n", str(r, "domain", "?"));
	printf("Database: %s\n", str(r, "database", "?"));
	printf("Created: %s\n", str(r, "created_at", "unknown"));
	printf("Template: %s\n", str(r, "template_db", "unknown"));
	print_bytes_field("Database size", r, "database_bytes");
	print_bytes_field("Filestore size", r, "filestore_bytes");
	if (cJSON_IsNumber(ff))
		printf("Filestore files: %.0f\n", ff->valuedouble);
	if (cJSON_IsNumber(u))
		printf("Users: %.0f\n", u->valuedouble);
}

static int
cmd_show(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL];
	int npos, help = 0, rc;
	cJSON *r;

	PARSE(NULL, 1, 1);
	if (tenant_path(path, sizeof(path), "/api/tenants/", pos[0], "") != 0)
		return usage_error(find_cmd("show"), "name too long");
	rc = call(c, "GET", path, NULL, &r);
	if (rc == CLI_EX_OK && !c->json)
		print_detail(r);
	cJSON_Delete(r);
	return rc;
}

/* suspend and resume: the same call, another verb. */
static int
state_change(struct ctx *c, int argc, char **argv, const char *what,
    const char *done)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL], tail[32];
	int npos, help = 0, rc;
	cJSON *r;

	PARSE(NULL, 1, 1);
	snprintf(tail, sizeof(tail), "/%s", what);
	if (tenant_path(path, sizeof(path), "/api/tenants/", pos[0], tail) != 0)
		return usage_error(find_cmd(what), "name too long");
	rc = call(c, "POST", path, NULL, &r); /* the route takes no body */
	if (rc == CLI_EX_OK && !c->json)
		printf("Tenant %s %s (state: %s).\n",
		    str(r, "subdomain", pos[0]), done, str(r, "state", "?"));
	cJSON_Delete(r);
	return rc;
}

static int
cmd_suspend(struct ctx *c, int argc, char **argv)
{
	return state_change(c, argc, argv, "suspend", "suspended");
}

static int
cmd_resume(struct ctx *c, int argc, char **argv)
{
	return state_change(c, argc, argv, "resume", "resumed");
}

static int
cmd_password(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL], prompt[320];
	char *pw, *body;
	int npos, help = 0, rc;
	cJSON *o, *r;

	PARSE(NULL, 1, 1);
	if (tenant_path(path, sizeof(path), "/api/tenants/", pos[0],
	        "/password") != 0)
		return usage_error(find_cmd("password"), "name too long");
	snprintf(prompt, sizeof(prompt), "New admin password for %.255s",
	    pos[0]);
	if ((pw = get_password(prompt, &rc)) == NULL)
		return rc;
	o = cJSON_CreateObject();
	add_str(o, "admin_password", pw);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (body == NULL)
		return CLI_EX_UNAVAILABLE;
	rc = call(c, "POST", path, body, &r);
	explicit_bzero(body, strlen(body));
	free(body);
	if (rc == CLI_EX_OK && !c->json)
		printf("Admin password of %s replaced.\n",
		    str(r, "subdomain", pos[0]));
	cJSON_Delete(r);
	return rc;
}

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Writes {"subdomain","file","bytes"} for backup --json. */
static void
print_backup_json(const char *name, const char *file, unsigned long long n)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	add_str(o, "subdomain", name);
	add_str(o, "file", file);
	cJSON_AddNumberToObject(o, "bytes", (double)n);
	s = cJSON_PrintUnformatted(o);
	if (s != NULL)
		printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
}

static int
cmd_backup(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL], dflt[400];
	char *part = NULL;
	const char *file = NULL;
	int npos, help = 0, rc, fd = -1, tostdout;
	const struct cli_opt ex[] = { { "output", 'o', 1, NULL, &file },
		{ NULL, 0, 0, NULL, NULL } };
	struct xfer x;
	struct stat st;
	time_t now = time(NULL);
	struct tm tm;

	PARSE(ex, 1, 2);
	if (npos == 2)
		file = pos[1];
	if (pos[0][0] == '\0')
		return usage_error(find_cmd("backup"),
		    "the tenant's name is empty");
	if (tenant_path(path, sizeof(path), "/api/tenants/", pos[0],
	        "/backup") != 0)
		return usage_error(find_cmd("backup"), "name too long");
	if (file == NULL || *file == '\0') {
		gmtime_r(&now, &tm);
		snprintf(dflt, sizeof(dflt),
		    "./%.255s_%04d-%02d-%02d_%02d-%02d-%02d.zip", pos[0],
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		file = dflt;
	}
	tostdout = strcmp(file, "-") == 0;
	if (tostdout && isatty(STDOUT_FILENO)) {
		warnx_("standard output is a terminal: not writing a zip "
		       "there (give a file, or redirect it)");
		return CLI_EX_USAGE;
	}
	if (!tostdout) {
		size_t n = strlen(file) + sizeof(".part");

		if (lstat(file, &st) == 0) {
			warnx_("%s exists already (nothing was downloaded)",
			    file);
			return CLI_EX_USAGE;
		}
		part = malloc(n);
		if (part == NULL)
			return CLI_EX_UNAVAILABLE;
		snprintf(part, n, "%s.part", file);
		fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			warnx_("cannot create %s: %s", part, strerror(errno));
			free(part);
			return errno == ENOENT ? CLI_EX_USAGE : CLI_EX_IOERR;
		}
		part_to_remove = part;
	} else {
		fd = STDOUT_FILENO;
	}

	xfer_init(&x);
	x.out_fd = fd;
	x.pg.on = isatty(STDERR_FILENO);
	rc = http(c, &x, "GET", path, NULL);
	if (rc == CLI_EX_IOERR)
		warnx_("cannot write %s: %s",
		    tostdout ? "standard output" : part,
		    strerror(x.write_errno));
	else if (rc == CLI_EX_UNAVAILABLE && x.status == 200)
		warnx_("the backup of %s broke off after %llu bytes; nothing "
		       "was kept. The daemon's log says why: journalctl -u "
		       "odoo-local-api",
		    pos[0], x.moved);
	else if (rc == CLI_EX_OK && x.status != 200)
		rc = fail_reply(c, &x);
	if (!tostdout) {
		int e = 0;

		if (rc == CLI_EX_OK && fsync(fd) != 0)
			e = errno;
		if (close(fd) != 0 && e == 0)
			e = errno;
		if (e != 0 && rc == CLI_EX_OK) {
			warnx_("cannot write %s: %s", part, strerror(e));
			rc = CLI_EX_IOERR;
		}
	}
	fd = -1;
	/* link() then unlink(), not rename(): a FILE made meanwhile by
	 * someone else is never replaced. */
	if (rc == CLI_EX_OK && !tostdout) {
		int e = 0;

		if (link(part, file) != 0) {
			e = errno;
			/* a file system without hard links: rename, once more
			 * making sure FILE is not there */
			if ((e == EPERM || e == EOPNOTSUPP) &&
			    lstat(file, &st) != 0)
				e = rename(part, file) == 0 ? 0 : errno;
		}
		if (e != 0) {
			warnx_("cannot rename %s to %s: %s", part, file,
			    strerror(e));
			rc = e == EEXIST ? CLI_EX_USAGE : CLI_EX_IOERR;
		}
	}
	if (part != NULL)
		unlink(part); /* done: FILE is its other name; failed: gone */
	part_to_remove = NULL;
	if (rc == CLI_EX_OK) {
		if (c->json)
			print_backup_json(pos[0], file, x.moved);
		else if (!tostdout)
			printf("Backup of %s written to %s (%llu bytes).\n",
			    pos[0], file, x.moved);
	}
	buf_free(&x.reply);
	free(part);
	return rc;
}

static int
cmd_restore(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], path[MAX_PATH_URL], enc[1024];
	const char *dom = NULL, *mode = NULL;
	int npos, help = 0, rc, neut = 0, take = 0, fd;
	const struct cli_opt ex[] = { { "domain", 0, 1, NULL, &dom },
		{ "mode", 0, 1, NULL, &mode },
		{ "neutralize", 0, 0, &neut, NULL },
		{ "dns-takeover", 0, 0, &take, NULL },
		{ NULL, 0, 0, NULL, NULL } };
	struct xfer x;
	struct stat st;
	size_t o;
	cJSON *r;

	PARSE(ex, 2, 2);
	if (mode != NULL && strcmp(mode, "move") != 0 &&
	    strcmp(mode, "copy") != 0)
		return usage_error(find_cmd("restore"),
		    "--mode is move or copy");
	if (tenant_path(path, sizeof(path),
	        "/api/tenant/restore?subdomain=", pos[0], "") != 0)
		return usage_error(find_cmd("restore"), "name too long");
	o = strlen(path);
	if (dom != NULL) {
		if (cli_urlencode(enc, sizeof(enc), dom) != 0)
			return usage_error(find_cmd("restore"),
			    "domain too long");
		snprintf(path + o, sizeof(path) - o, "&domain=%s", enc);
		o = strlen(path);
	}
	snprintf(path + o, sizeof(path) - o, "%s%s%s%s",
	    mode != NULL ? "&mode=" : "", mode != NULL ? mode : "",
	    neut ? "&neutralize=true" : "", take ? "&dns=takeover" : "");

	fd = open(pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		warnx_("cannot read the backup %s: %s", pos[1],
		    fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return CLI_EX_IOERR;
	}
	xfer_init(&x);
	x.in_fd = fd;
	x.in_size = (long long)st.st_size;
	x.upload = 1;
	x.pg.on = isatty(STDERR_FILENO);
	rc = http(c, &x, "POST", path, NULL);
	close(fd);
	r = NULL;
	if (rc == CLI_EX_OK && (x.status < 200 || x.status > 299)) {
		rc = fail_reply(c, &x);
	} else if (rc == CLI_EX_OK) {
		r = cJSON_ParseWithLength(x.reply.p != NULL ? x.reply.p : "",
		    x.reply.len);
		if (r == NULL) {
			warnx_("unexpected reply from %s (HTTP %ld, not JSON)",
			    c->cfg.url, x.status);
			rc = CLI_EX_UNAVAILABLE;
		} else if (c->json) {
			print_raw(&x);
		} else {
			print_made(r, "restored", pos[0]);
		}
	}
	cJSON_Delete(r);
	buf_free(&x.reply);
	return rc;
}

static int
cmd_node(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL], b1[32], b2[32];
	int npos, help = 0, rc;
	cJSON *r, *d, *m, *l, *t, *tpls;

	PARSE(NULL, 0, 0);
	if ((rc = call(c, "GET", "/api/node", NULL, &r)) != CLI_EX_OK ||
	    c->json) {
		cJSON_Delete(r);
		return rc;
	}
	printf("Version: %s\n", str(r, "version", "?"));
	printf("Tenants: %.0f (%.0f suspended)\n", num(r, "tenants", 0),
	    num(r, "suspended", 0));
	printf("Trash: %.0f\n", num(r, "trash", 0));
	printf("Spares: %.0f\n", num(r, "spares", 0));
	print_bytes_field("Databases size", r, "databases_bytes");
	d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r,
	                                         "disk"),
	    "data_dir");
	if (cJSON_IsObject(d)) {
		cli_human_bytes(b1, sizeof(b1),
		    (unsigned long long)num(d, "free_bytes", 0));
		cli_human_bytes(b2, sizeof(b2),
		    (unsigned long long)num(d, "total_bytes", 0));
		printf("Disk (data_dir): %s free of %s\n", b1, b2);
	}
	m = cJSON_GetObjectItemCaseSensitive(r, "memory");
	if (cJSON_IsObject(m)) {
		cli_human_bytes(b1, sizeof(b1),
		    (unsigned long long)num(m, "available_bytes", 0));
		cli_human_bytes(b2, sizeof(b2),
		    (unsigned long long)num(m, "total_bytes", 0));
		printf("Memory: %s available of %s\n", b1, b2);
	}
	printf("CPUs: %.0f\n", num(r, "cpus", 0));
	l = cJSON_GetObjectItemCaseSensitive(r, "load");
	if (cJSON_IsArray(l) && cJSON_GetArraySize(l) == 3)
		printf("Load: %.2f %.2f %.2f\n",
		    cJSON_GetArrayItem(l, 0)->valuedouble,
		    cJSON_GetArrayItem(l, 1)->valuedouble,
		    cJSON_GetArrayItem(l, 2)->valuedouble);
	tpls = cJSON_GetObjectItemCaseSensitive(r, "templates");
	cJSON_ArrayForEach(t, tpls)
	{
		cli_human_bytes(b1, sizeof(b1),
		    (unsigned long long)(num(t, "database_bytes", 0) +
		        num(t, "filestore_bytes", 0)));
		printf("Template: %s (Odoo %s, %s)\n", str(t, "name", "?"),
		    str(t, "odoo_version", "?"), b1);
	}
	cJSON_Delete(r);
	return CLI_EX_OK;
}

static int
cmd_domains(struct ctx *c, int argc, char **argv)
{
	char *pos[CLI_MAX_POSITIONAL];
	int npos, help = 0, rc;
	size_t w = 6;
	cJSON *r, *arr, *t;

	PARSE(NULL, 0, 0);
	if ((rc = call(c, "GET", "/api/domains", NULL, &r)) != CLI_EX_OK ||
	    c->json) {
		cJSON_Delete(r);
		return rc;
	}
	arr = cJSON_GetObjectItemCaseSensitive(r, "domains");
	cJSON_ArrayForEach(t, arr)
	{
		size_t a = strlen(str(t, "domain", ""));

		w = a > w ? a : w;
	}
	printf("%-*s  %s\n", (int)w, "DOMAIN", "ZONE_ID");
	cJSON_ArrayForEach(t, arr)
	{
		cJSON *def = cJSON_GetObjectItemCaseSensitive(t, "default");

		printf("%-*s  %s%s\n", (int)w, str(t, "domain", ""),
		    str(t, "zone_id", ""),
		    cJSON_IsTrue(def) ? "  (default)" : "");
	}
	printf("Tunnel: %s\n", str(r, "tunnel_id", "none"));
	cJSON_Delete(r);
	return CLI_EX_OK;
}

/* ---------------------------------------------------------------- main */

static const struct cmd cmds[] = {
	{ "create", cmd_create, "create [--json] <name> [domain] [template]",
	    "Creates the tenant <name> (its subdomain and database): a copy "
	    "of\n"
	    "the template (default: DEFAULT_TEMPLATE_DB) with its own admin\n"
	    "password, filestore and DNS record, served at "
	    "https://<name>.<domain>\n"
	    "(default domain: ODOO_DOMAIN). The password is asked twice on a\n"
	    "terminal, or read from the first line of standard input; it is "
	    "never\n"
	    "an argument.\n"
	    "  --domain D     the same as the second argument\n"
	    "  --template T   the same as the third argument\n" },
	{ "list", cmd_list, "list [--json] [domain]",
	    "Lists the tenants (of one domain) as a table of SUBDOMAIN, DOMAIN "
	    "and\n"
	    "URL (a suspended one is marked), then their number.\n" },
	{ "delete", cmd_delete, "delete [--json] [--purge] [--yes] <name>",
	    "Deletes the tenant <name>: it goes to the trash (restorable for\n"
	    "TRASH_RETENTION_DAYS with trash-restore) without a question.\n"
	    "  --purge        delete it for good (database, filestore, DNS "
	    "record)\n"
	    "  -y, --yes      do not ask. A final delete (--purge, or a "
	    "daemon\n"
	    "                 without a trash) asks \"[y/N]\" when standard "
	    "input\n"
	    "                 is a terminal, never otherwise.\n" },
	{ "trash", cmd_trash, "trash [--json]",
	    "Lists the trash, newest first: ID, SUBDOMAIN, when it was "
	    "deleted,\n"
	    "when it will be purged, its size.\n" },
	{ "trash-restore", cmd_trash_restore,
	    "trash-restore [--json] [--subdomain S] [--domain D] <id>",
	    "Brings the trash entry <id> back as it was, under its own name "
	    "and\n"
	    "domain, or under S and D.\n" },
	{ "trash-purge", cmd_trash_purge, "trash-purge [--json] [--yes] <id>",
	    "Deletes the trash entry <id> for good (asks on a terminal unless\n"
	    "--yes).\n" },
	{ "show", cmd_show, "show [--json] <name>",
	    "Shows the tenant's detail: URL, state, domain, creation date,\n"
	    "template, sizes, active users.\n" },
	{ "backup", cmd_backup, "backup [--json] [-o FILE] <name> [FILE]",
	    "Downloads a backup of <name>, a zip in Odoo's own format "
	    "(dump.sql,\n"
	    "filestore/, manifest.json), streamed to FILE.part and renamed to "
	    "FILE\n"
	    "when complete: a broken transfer leaves nothing. FILE defaults "
	    "to\n"
	    "./<name>_<UTC YYYY-MM-DD_HH-MM-SS>.zip; \"-\" is standard output; "
	    "an\n"
	    "existing file is never overwritten. A progress bar is drawn on\n"
	    "standard error when it is a terminal.\n"
	    "  -o, --output FILE  where to write the zip\n"
	    "  --json         print {\"subdomain\",\"file\",\"bytes\"}\n" },
	{ "restore", cmd_restore,
	    "restore [--json] [--domain D] [--mode move|copy] [--neutralize]\n"
	    "            [--dns-takeover] <name> <zip>",
	    "Creates the tenant <name> from a backup (ours, or Odoo's "
	    "database\n"
	    "manager's), uploaded from the file as it is read, with a progress "
	    "bar.\n"
	    "  --domain D     its domain (default ODOO_DOMAIN)\n"
	    "  --mode M       move (default: keeps database.uuid and secret) "
	    "or copy\n"
	    "  --neutralize   run Odoo's neutralization (no mail, no "
	    "crons...)\n"
	    "  --dns-takeover replace this node family's record pointing at\n"
	    "                 another node's tunnel (the second half of a "
	    "move)\n" },
	{ "suspend", cmd_suspend, "suspend [--json] <name>",
	    "Suspends the tenant: its sessions end, it refuses connections, "
	    "it\n"
	    "keeps its data, files and DNS record.\n" },
	{ "resume", cmd_resume, "resume [--json] <name>",
	    "Resumes a suspended tenant.\n" },
	{ "password", cmd_password, "password [--json] <name>",
	    "Replaces the password of the tenant's admin user (1 to 1024 "
	    "bytes):\n"
	    "asked twice on a terminal, else the first line of standard "
	    "input;\n"
	    "never an argument.\n" },
	{ "node", cmd_node, "node [--json]",
	    "Shows the node's report: tenants, trash, spares, templates, "
	    "disk,\n"
	    "memory, load.\n" },
	{ "domains", cmd_domains, "domains [--json]",
	    "Lists the node's domains (zones of domains.json) and its "
	    "tunnel.\n" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cmd *
find_cmd(const char *name)
{
	const struct cmd *c;

	for (c = cmds; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void
tool_help(FILE *f)
{
	const struct cmd *c;

	fprintf(f,
	    "Usage: nodo [--json] <command> [arguments]\n"
	    "       nodo <command> --help\n\n"
	    "The node's command line: every operation of the local Nodo "
	    "API\n(odoo-local-api), with the key and port of the env "
	    "file.\n\nCommands:\n");
	for (c = cmds; c->name != NULL; c++)
		fprintf(f, "  nodo %s\n", c->usage);
	fprintf(f, "\n%s", common_help);
}

extern char **environ;

static void
warn_unknown_env(void)
{
	char **e, name[128];
	const char *eq;

	for (e = environ; e != NULL && *e != NULL; e++) {
		eq = strchr(*e, '=');
		if (eq == NULL || (size_t)(eq - *e) >= sizeof(name))
			continue;
		memcpy(name, *e, (size_t)(eq - *e));
		name[eq - *e] = '\0';
		if (cli_unknown_env(name))
			warnx_("unknown environment variable %s ignored (nodo "
			       "reads NODO_ENV_FILE NODO_API_URL NODO_API_KEY "
			       "NODO_API_TIMEOUT)",
			    name);
	}
}

int
main(int argc, char **argv)
{
	struct ctx c;
	const struct cmd *cmd;
	struct sigaction sa;
	int i, rc;

	memset(&c, 0, sizeof(c));
	c.cfg.timeout = -1;
	/* Global options before the command: --json, --help, --version. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c.json = 1;
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			tool_help(stdout);
			return CLI_EX_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("nodo %s\n", NODO_VERSION);
			return CLI_EX_OK;
		} else {
			warnx_("unknown option: %.60s (see nodo --help)",
			    argv[i]);
			return CLI_EX_USAGE;
		}
	}
	if (i >= argc) {
		tool_help(stderr);
		return CLI_EX_USAGE;
	}
	cmd = find_cmd(argv[i]);
	if (cmd == NULL) {
		warnx_("unknown command: %.60s (see nodo --help)", argv[i]);
		return CLI_EX_USAGE;
	}
	warn_unknown_env();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		warnx_("cannot initialise libcurl");
		return CLI_EX_UNAVAILABLE;
	}
	rc = cmd->fn(&c, argc - i, argv + i);
	if (part_to_remove != NULL)
		unlink(part_to_remove);
	fflush(stdout);
	if (ferror(stdout) && rc == CLI_EX_OK) {
		warnx_("cannot write to standard output");
		rc = CLI_EX_IOERR;
	}
	cli_config_free(&c.cfg);
	curl_global_cleanup();
	return rc;
}
