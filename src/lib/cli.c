/*
 * cli.c - what the nodo command line tool does without the network: its
 * settings (the env file through the daemons' parser), option parsing, URL
 * encoding and the progress bar's text (include/nodo/cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodo/cli.h"
#include "nodo/settings.h"
#include "nodo/util.h"

#define CLI_MAX_TIMEOUT 604800 /* seconds, NODO_API_TIMEOUT at most a week */

static void seterr(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* What the env file holds for the tool: the rest is the daemons'. */
struct envvals {
	char *key;
	char *host;
	char *port;
};

static void
env_cb(void *arg, const char *key, const char *val, int line)
{
	struct envvals *v = arg;
	char **slot = NULL;

	(void)line;
	if (strcmp(key, "PROVISIONING_API_KEY") == 0)
		slot = &v->key;
	else if (strcmp(key, "API_HOST") == 0)
		slot = &v->host;
	else if (strcmp(key, "API_PORT") == 0)
		slot = &v->port;
	if (slot == NULL)
		return;
	free(*slot);
	*slot = strdup(val);
}

/* Reads the whole file (at most SETTINGS_MAX_FILE + 1 bytes) into *out. */
static int
read_env_file(const char *file, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT) {
		seterr(err, errlen,
		    "env file %s not found (is Nodo installed? set "
		    "NODO_ENV_FILE to use another file)",
		    file);
		return -1;
	}
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		seterr(err, errlen,
		    "cannot read the env file %s (it holds the API key and "
		    "is readable by root and the group nodo only: run with "
		    "sudo, or as a member of the group nodo (sudo adduser "
		    "<your user> nodo, then log in again; never Odoo's user, "
		    "which must not read the key); or set NODO_ENV_FILE)",
		    file);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc(SETTINGS_MAX_FILE + 2);
	if (buf == NULL) {
		close(fd);
		seterr(err, errlen, "out of memory");
		return -1;
	}
	while (len <= SETTINGS_MAX_FILE) {
		n = read(fd, buf + len, SETTINGS_MAX_FILE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			seterr(err, errlen, "cannot read the env file %s: %s",
			    file, strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* 1 when s is a decimal number (digits only, no sign) in 0..max. */
static int
parse_uint(const char *s, long max, long *out)
{
	long v = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (*s - '0');
		if (v > max)
			return 0;
	}
	*out = v;
	return 1;
}

static int
has_cntrl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* An http:// or https:// URL with a host, no control characters, no
 * white space. */
static int
url_ok(const char *u)
{
	const char *rest;

	if (strncmp(u, "http://", 7) == 0)
		rest = u + 7;
	else if (strncmp(u, "https://", 8) == 0)
		rest = u + 8;
	else
		return 0;
	if (*rest == '\0' || *rest == '/' || has_cntrl(u) ||
	    strpbrk(u, " \t") != NULL)
		return 0;
	return 1;
}

int
cli_base_url(char *buf, size_t len, const char *host, int port)
{
	int n;

	if (host == NULL || *host == '\0' || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "*") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0)
		host = "[::1]";
	if (host[0] != '[' && strchr(host, ':') != NULL)
		n = snprintf(buf, len, "http://[%s]:%d", host, port);
	else
		n = snprintf(buf, len, "http://%s:%d", host, port);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
cli_config_load(struct cli_config *c, cli_getenv_fn get, char *err,
    size_t errlen)
{
	struct settings_errors errs;
	struct envvals v = { NULL, NULL, NULL };
	const char *file = get("NODO_ENV_FILE");
	const char *ekey = get("NODO_API_KEY");
	const char *eurl = get("NODO_API_URL");
	const char *etime = get("NODO_API_TIMEOUT");
	char *buf = NULL;
	size_t len = 0;
	long port = SETTINGS_DEFAULT_API_PORT;
	char url[512];
	int rc = CLI_EX_CONFIG;

	memset(&errs, 0, sizeof(errs));
	c->timeout = -1;
	if (file == NULL || *file == '\0')
		file = SETTINGS_DEFAULT_ENV_FILE;
	if (ekey != NULL && *ekey == '\0')
		ekey = NULL;
	if (eurl != NULL && *eurl == '\0')
		eurl = NULL;
	c->env_file = strdup(file);
	if (c->env_file == NULL) {
		seterr(err, errlen, "out of memory");
		return CLI_EX_CONFIG;
	}
	if (etime != NULL && *etime != '\0') {
		if (!parse_uint(etime, CLI_MAX_TIMEOUT, &c->timeout)) {
			seterr(err, errlen,
			    "NODO_API_TIMEOUT must be a number of seconds "
			    "(0 to %d)",
			    CLI_MAX_TIMEOUT);
			return CLI_EX_USAGE;
		}
	}

	/* The file is needed unless the environment gives key and URL. */
	if (ekey == NULL || eurl == NULL) {
		if (read_env_file(file, &buf, &len, err, errlen) != 0)
			goto out;
		if (settings_parse_env(buf, len, file, env_cb, &v, &errs) !=
		    0) {
			const struct settings_error *e = &errs.e[0];

			seterr(err, errlen, "%s:%d: %s%s%s", file, e->line,
			    e->key != NULL ? e->key : "",
			    e->key != NULL ? ": " : "", e->msg);
			goto out;
		}
	}

	if (ekey != NULL)
		c->key = strdup(ekey);
	else if (v.key != NULL && *v.key != '\0')
		c->key = strdup(v.key);
	if (c->key == NULL) {
		seterr(err, errlen, "PROVISIONING_API_KEY is not set in %s%s",
		    file, ekey == NULL ? "" : " (out of memory)");
		goto out;
	}
	if (has_cntrl(c->key)) {
		seterr(err, errlen,
		    "PROVISIONING_API_KEY in %s contains control characters",
		    ekey != NULL ? "NODO_API_KEY" : file);
		goto out;
	}

	if (eurl != NULL) {
		if (!url_ok(eurl)) {
			seterr(err, errlen,
			    "NODO_API_URL is not an http:// or https:// URL: "
			    "%.200s",
			    has_cntrl(eurl) ? "(control characters)" : eurl);
			goto out;
		}
		c->url = strdup(eurl);
		if (c->url == NULL) {
			seterr(err, errlen, "out of memory");
			goto out;
		}
		len = strlen(c->url);
		while (len > 0 && c->url[len - 1] == '/')
			c->url[--len] = '\0';
	} else {
		if (v.port != NULL &&
		    (!parse_uint(v.port, 65535, &port) || port == 0 ||
		        v.port[0] == '0')) {
			seterr(err, errlen,
			    "API_PORT in %s is not a port number: %.40s", file,
			    has_cntrl(v.port) ? "?" : v.port);
			goto out;
		}
		if (v.host != NULL && has_cntrl(v.host)) {
			seterr(err, errlen,
			    "API_HOST in %s contains control characters", file);
			goto out;
		}
		if (cli_base_url(url, sizeof(url), v.host, (int)port) != 0 ||
		    (c->url = strdup(url)) == NULL) {
			seterr(err, errlen, "API_HOST in %s is too long", file);
			goto out;
		}
	}
	rc = CLI_EX_OK;
out:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	if (v.key != NULL) {
		explicit_bzero(v.key, strlen(v.key));
		free(v.key);
	}
	free(v.host);
	free(v.port);
	settings_errors_free(&errs);
	return rc;
}

void
cli_config_free(struct cli_config *c)
{
	if (c == NULL)
		return;
	if (c->key != NULL) {
		explicit_bzero(c->key, strlen(c->key));
		free(c->key);
	}
	free(c->env_file);
	free(c->url);
	memset(c, 0, sizeof(*c));
	c->timeout = -1;
}

int
cli_unknown_env(const char *name)
{
	static const char *const known[] = { "NODO_ENV_FILE", "NODO_API_URL",
		"NODO_API_KEY", "NODO_API_TIMEOUT",
		/* the Makefile's, for tests */
		"NODO_BUILD", "NODO_CRASH_TRIALS", NULL };
	size_t i;

	if (strncmp(name, "NODO_", 5) != 0)
		return 0;
	for (i = 0; known[i] != NULL; i++)
		if (strcmp(name, known[i]) == 0)
			return 0;
	return 1;
}

static const struct cli_opt *
find_long(const struct cli_opt *opts, const char *name, size_t n)
{
	for (; opts->name != NULL; opts++)
		if (strlen(opts->name) == n &&
		    strncmp(opts->name, name, n) == 0)
			return opts;
	return NULL;
}

static const struct cli_opt *
find_short(const struct cli_opt *opts, char c)
{
	for (; opts->name != NULL; opts++)
		if (opts->shortc != 0 && opts->shortc == c)
			return opts;
	return NULL;
}

int
cli_parse(int argc, char **argv, const struct cli_opt *opts, char **pos,
    int max, int *npos, char *err, size_t errlen)
{
	const struct cli_opt *o;
	const char *a, *eq;
	int i, only_pos = 0;

	*npos = 0;
	for (i = 0; i < argc; i++) {
		a = argv[i];
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (*npos >= max) {
				seterr(err, errlen,
				    "too many arguments (from '%.60s' on)", a);
				return -1;
			}
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		eq = NULL;
		if (a[1] == '-') {
			eq = strchr(a + 2, '=');
			o = find_long(opts, a + 2,
			    eq != NULL ? (size_t)(eq - (a + 2))
			               : strlen(a + 2));
		} else {
			o = a[2] == '\0' ? find_short(opts, a[1]) : NULL;
		}
		if (o == NULL) {
			seterr(err, errlen, "unknown option: %.60s", a);
			return -1;
		}
		if (!o->has_arg) {
			if (eq != NULL) {
				seterr(err, errlen, "--%s takes no value",
				    o->name);
				return -1;
			}
			if (o->flag != NULL)
				*o->flag = 1;
			continue;
		}
		if (eq != NULL) {
			*o->val = eq + 1;
		} else if (i + 1 < argc) {
			*o->val = argv[++i];
		} else {
			seterr(err, errlen, "--%s needs a value", o->name);
			return -1;
		}
	}
	return 0;
}

int
cli_urlencode(char *buf, size_t len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '~' || c == '-') {
			if (o + 1 >= len)
				return -1;
			buf[o++] = (char)c;
		} else {
			if (o + 3 >= len)
				return -1;
			buf[o++] = '%';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (o >= len)
		return -1;
	buf[o] = '\0';
	return 0;
}

void
cli_human_bytes(char *buf, size_t len, unsigned long long n)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%llu B", n);
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (v >= 100)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else if (v >= 10)
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.2f %s", v, unit[u]);
}

size_t
cli_progress_line(char *buf, size_t len, unsigned long long done,
    long long total, double seconds, int width)
{
	char d[32], t[32], r[40] = "", text[128];
	int n, bar, fill, i, pct;
	size_t o = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (width < 20)
		width = 20;
	cli_human_bytes(d, sizeof(d), done);
	if (seconds > 0) {
		char rate[32];

		cli_human_bytes(rate, sizeof(rate),
		    (unsigned long long)((double)done / seconds));
		snprintf(r, sizeof(r), "  %s/s", rate);
	}
	if (total < 0) {
		n = snprintf(buf, len, "%s%s", d, r);
		if (n < 0)
			return 0;
		return (size_t)n < len ? (size_t)n : len - 1;
	}
	if ((unsigned long long)total < done)
		total = (long long)done;
	pct = total == 0 ? 100 : (int)((double)done * 100 / (double)total);
	cli_human_bytes(t, sizeof(t), (unsigned long long)total);
	n = snprintf(text, sizeof(text), " %3d%%  %s / %s%s", pct, d, t, r);
	if (n < 0)
		return 0;
	bar = width - n - 2;
	if (bar > 50)
		bar = 50;
	if (bar < 5) {
		/* No room for a bar: the figures alone, the rate and the
		 * total dropped while they do not fit, cut at width. */
		if (n - 1 > width)
			n = snprintf(text, sizeof(text), " %3d%%  %s / %s", pct,
			    d, t);
		if (n - 1 > width)
			snprintf(text, sizeof(text), " %3d%%  %s", pct, d);
		text[(size_t)width + 1 < sizeof(text) ? (size_t)width + 1
		                                      : sizeof(text) - 1] =
		    '\0';
		nodo_strlcpy(buf, text + 1, len);
		return strlen(buf);
	}
	fill = total == 0 ? bar : (int)((double)done * bar / (double)total);
	if (o + 1 < len)
		buf[o++] = '[';
	for (i = 0; i < bar && o + 1 < len; i++) {
		if (i < fill)
			buf[o++] = '=';
		else if (i == fill)
			buf[o++] = '>';
		else
			buf[o++] = ' ';
	}
	if (o + 1 < len)
		buf[o++] = ']';
	buf[o] = '\0';
	nodo_strlcpy(buf + o, text, len - o);
	return strlen(buf);
}
