/*
 * settings.c - loads the node's settings (settings.h, CONTRACT section 2).
 *
 * Four sources, in this order: the env file (systemd EnvironmentFile=
 * syntax), the process environment (which wins over the file), Odoo's
 * odoo.conf (db_* and data_dir of [options], overridden by PG* and
 * ODOO_DATA_DIR) and domains.json (the Cloudflare zones). Every value
 * remembers where it came from (file and line, or the environment) so that
 * each problem is reported as "file:line: KEY: sentence". Parsing follows
 * "collect every error, then fail": nothing stops at the first problem.
 *
 * The three parsers take a buffer and its length and tolerate any bytes
 * (NUL inside, no final newline, CRLF): they are fuzzed. No error message
 * ever contains the value of a secret (PROVISIONING_API_KEY,
 * CLOUDFLARE_API_TOKEN, PGPASSWORD, db_password).
 */
#include <sys/stat.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cJSON.h>

#include "nodo/cloudflare.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/settings.h"

#define SETTINGS_MAX_DNS_NAME  253  /* bytes, a domain name without final dot */
#define SETTINGS_MAX_DNS_LABEL 63   /* bytes, one label of it */
#define SETTINGS_MAX_ZONE_ID   64   /* bytes, a Cloudflare zone or tunnel id */
#define SETTINGS_MAX_TEMPLATE  63   /* bytes, a PostgreSQL identifier */
#define SETTINGS_MAX_SHOWN     64   /* bytes of a foreign name quoted back */
#define SETTINGS_MIN_API_KEY   16   /* bytes; the API refuses shorter keys */
#define SETTINGS_MAX_INTERVAL  3600 /* seconds, DB_WATCHER_INTERVAL */
#define SETTINGS_MAX_PORT      65535
/* The seed's published example key (CONTRACT section 8): refused by the API. */
#define SETTINGS_EXAMPLE_API_KEY "prov-key-2026-secure"
/* The systemd credential (LoadCredential=) holding the Cloudflare token. */
#define SETTINGS_CF_CREDENTIAL "cloudflare-token"
#define SETTINGS_CF_CREDENTIAL_SHOWN                                           \
	"$CREDENTIALS_DIRECTORY/" SETTINGS_CF_CREDENTIAL

/* The keys of CONTRACT section 2 (plus WATCHER_ORPHAN_GRACE_SECONDS). */
enum key {
	K_ODOO_DOMAIN,
	K_API_KEY,
	K_CF_TOKEN,
	K_CF_TUNNEL_ID,
	K_CF_API_URL,
	K_DOMAINS_FILE,
	K_INTERVAL,
	K_API_HOST,
	K_API_PORT,
	K_TEMPLATE,
	K_ODOO_CONF,
	K_PGHOST,
	K_PGPORT,
	K_PGUSER,
	K_PGPASSWORD,
	K_DATA_DIR,
	K_LOG_LEVEL,
	K_DELETE_ORPHANS,
	K_WATCHER_METRICS,
	K_ORPHAN_GRACE,
	K_TEMPLATE_DBS,
	K_TRASH_DAYS,
	K_COUNT
};

static const struct {
	const char *name;
	int secret; /* never quoted back; makes a loose env file an error */
} keys[K_COUNT] = {
	[K_ODOO_DOMAIN] = { "ODOO_DOMAIN", 0 },
	[K_API_KEY] = { "PROVISIONING_API_KEY", 1 },
	[K_CF_TOKEN] = { "CLOUDFLARE_API_TOKEN", 1 },
	[K_CF_TUNNEL_ID] = { "CF_TUNNEL_ID", 0 },
	[K_CF_API_URL] = { "CLOUDFLARE_API_URL", 0 },
	[K_DOMAINS_FILE] = { "DOMAINS_FILE", 0 },
	[K_INTERVAL] = { "DB_WATCHER_INTERVAL", 0 },
	[K_API_HOST] = { "API_HOST", 0 },
	[K_API_PORT] = { "API_PORT", 0 },
	[K_TEMPLATE] = { "DEFAULT_TEMPLATE_DB", 0 },
	[K_ODOO_CONF] = { "ODOO_CONF", 0 },
	[K_PGHOST] = { "PGHOST", 0 },
	[K_PGPORT] = { "PGPORT", 0 },
	[K_PGUSER] = { "PGUSER", 0 },
	[K_PGPASSWORD] = { "PGPASSWORD", 1 },
	[K_DATA_DIR] = { "ODOO_DATA_DIR", 0 },
	[K_LOG_LEVEL] = { "LOG_LEVEL", 0 },
	[K_DELETE_ORPHANS] = { "WATCHER_DELETE_ORPHANS", 0 },
	[K_WATCHER_METRICS] = { "WATCHER_METRICS_FILE", 0 },
	[K_ORPHAN_GRACE] = { "WATCHER_ORPHAN_GRACE_SECONDS", 0 },
	[K_TEMPLATE_DBS] = { "TEMPLATE_DBS", 0 },
	[K_TRASH_DAYS] = { "TRASH_RETENTION_DAYS", 0 },
};

/* The odoo.conf [options] keys we read. */
enum okey {
	O_DB_HOST,
	O_DB_PORT,
	O_DB_USER,
	O_DB_PASSWORD,
	O_DATA_DIR,
	O_DB_TEMPLATE,
	O_COUNT
};

static const char *const okeys[O_COUNT] = {
	[O_DB_HOST] = "db_host",
	[O_DB_PORT] = "db_port",
	[O_DB_USER] = "db_user",
	[O_DB_PASSWORD] = "db_password",
	[O_DATA_DIR] = "data_dir",
	[O_DB_TEMPLATE] = "db_template",
};

/* One value and where it came from: file == NULL means the environment. */
struct val {
	char *v;          /* owned; NULL when not set anywhere */
	const char *file; /* borrowed from struct settings */
	int line;
};

/* State of one settings_load() call. */
struct loader {
	struct settings *s;
	struct settings_errors *errs;
	struct val v[K_COUNT];
	struct val o[O_COUNT];
	int file_has_secret; /* the env file sets a secret to non-empty */
	int domains_broken;  /* domains.json exists but could not be used */
	int failed;
};

/* ---------------------------------------------------------------- errors */

void
settings_error_add(struct settings_errors *errs, const char *file, int line,
    const char *key, const char *fmt, ...)
{
	struct settings_error *e;
	va_list ap;
	char *msg = NULL;

	if (errs == NULL || errs->n >= SETTINGS_MAX_ERRORS)
		return;
	e = &errs->e[errs->n];
	memset(e, 0, sizeof(*e));
	if (errs->n == SETTINGS_MAX_ERRORS - 1) {
		/* Keep the last slot to say that some were dropped. */
		msg = strdup("too many errors; the rest are not shown");
		if (msg == NULL)
			return;
		e->msg = msg;
		errs->n++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		return;
	e->msg = msg;
	e->line = line;
	if (file != NULL)
		e->file = strdup(file);
	if (key != NULL)
		e->key = strdup(key);
	errs->n++;
}

void
settings_errors_free(struct settings_errors *errs)
{
	size_t i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n && i < SETTINGS_MAX_ERRORS; i++) {
		free(errs->e[i].file);
		free(errs->e[i].key);
		free(errs->e[i].msg);
	}
	memset(errs, 0, sizeof(*errs));
}

void
settings_errors_print(const struct settings_errors *errs)
{
	const struct settings_error *e;
	size_t i;

	if (errs == NULL)
		return;
	/*
	 * Each reason is fatal (the daemon exits 78): logged at err, so that
	 * `journalctl -p err` shows it, not at the stream's default info.
	 */
	for (i = 0; i < errs->n && i < SETTINGS_MAX_ERRORS; i++) {
		char where[PATH_MAX + 64] = "";
		int n = 0;

		e = &errs->e[i];
		if (e->file != NULL && e->line > 0)
			n = snprintf(where, sizeof(where), "%s:%d: ", e->file,
			    e->line);
		else if (e->file != NULL)
			n = snprintf(where, sizeof(where), "%s: ", e->file);
		if (n < 0)
			where[0] = '\0';
		log_msg(LOG_ERR, NULL, "%s%s%s%s", where,
		    e->key != NULL ? e->key : "", e->key != NULL ? ": " : "",
		    e->msg != NULL ? e->msg : "error");
	}
}

/*
 * Copies a foreign name (a key, a zone) into out for a message: at most
 * SETTINGS_MAX_SHOWN bytes, anything unprintable as '?'.
 */
static const char *
shown(const char *in, size_t len, char out[SETTINGS_MAX_SHOWN + 4])
{
	size_t i, n;

	n = len > SETTINGS_MAX_SHOWN ? SETTINGS_MAX_SHOWN : len;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

/* ----------------------------------------------------------- small checks */

/*
 * The one integer parser: base 10, optional '-', no spaces, no trailing
 * text, min..max. Returns 0 or -1.
 */
static int
parse_int(const char *str, long long min, long long max, long long *out)
{
	char *end;
	long long n;

	if (str == NULL ||
	    !(isdigit((unsigned char)str[0]) ||
	        (str[0] == '-' && isdigit((unsigned char)str[1]))))
		return -1;
	errno = 0;
	n = strtoll(str, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* true/false/1/0/yes/no/on/off; -1 when none of them. */
static int
parse_bool(const char *str)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(str, yes[i]) == 0)
			return 1;
		if (strcasecmp(str, no[i]) == 0)
			return 0;
	}
	return -1;
}

/*
 * A lower-case DNS name: labels of 1..63 [a-z0-9-] not starting or ending
 * with '-', separated by single dots, 253 bytes at most, no final dot.
 * Returns NULL or the reason it is not one.
 */
static const char *
dns_name_problem(const char *name, size_t len)
{
	size_t i, label = 0;
	int upper = 0;

	if (len == 0)
		return "is empty";
	if (len > SETTINGS_MAX_DNS_NAME)
		return "is longer than 253 characters";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return "has an empty label (two dots, or a "
				       "leading or trailing dot)";
			if (name[i - 1] == '-')
				return "has a label ending with '-'";
			label = 0;
			continue;
		}
		if (isupper(c))
			upper = 1;
		else if (!(islower(c) || isdigit(c) || c == '-'))
			return "may contain only a-z, 0-9, '-' and dots";
		if (label == 0 && c == '-')
			return "has a label starting with '-'";
		if (++label > SETTINGS_MAX_DNS_LABEL)
			return "has a label longer than 63 characters";
	}
	if (label == 0)
		return "has an empty label (two dots, or a leading or "
		       "trailing dot)";
	if (name[len - 1] == '-')
		return "has a label ending with '-'";
	if (upper)
		return "must be written in lower case";
	return NULL;
}

/* A Cloudflare zone or tunnel id: 1..64 of [0-9A-Za-z_-]. */
static int
id_ok(const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len > SETTINGS_MAX_ZONE_ID)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (!(isalnum(c) || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* The listen address is a literal: no resolver at start. */
static int
ip_literal(const char *h)
{
	struct in6_addr a;

	return inet_pton(AF_INET, h, &a) == 1 ||
	    inet_pton(AF_INET6, h, &a) == 1;
}

/* The same rule as requests: names.h template_name_valid(). */
static int
template_ok(const char *t)
{
	return template_name_valid(t) == 0;
}

/* Printable ASCII without spaces: safe inside an HTTP header. */
static int
header_token_ok(const char *t)
{
	for (; *t != '\0'; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return 0;
	return 1;
}

static int
is_key_start(unsigned char c)
{
	return isalpha(c) || c == '_';
}

static int
is_key_char(unsigned char c)
{
	return isalnum(c) || c == '_';
}

static int
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

/* ------------------------------------------------------------ line split */

/*
 * Walks buf line by line: *line gets the next line without its "\n" or
 * "\r\n", *llen its length. Returns 0 at the end of the buffer.
 */
struct lines {
	const char *buf;
	size_t len;
	size_t off;
	int lineno;
};

static int
lines_next(struct lines *l, const char **line, size_t *llen)
{
	const char *nl;
	size_t n;

	if (l->off >= l->len)
		return 0;
	*line = l->buf + l->off;
	nl = memchr(*line, '\n', l->len - l->off);
	n = nl != NULL ? (size_t)(nl - *line) : l->len - l->off;
	l->off += n + (nl != NULL);
	if (n > 0 && (*line)[n - 1] == '\r')
		n--;
	/* A UTF-8 byte order mark before the first line is not content. */
	if (l->lineno == 0 && n >= 3 && memcmp(*line, "\xef\xbb\xbf", 3) == 0) {
		*line += 3;
		n -= 3;
	}
	*llen = n;
	l->lineno++;
	return 1;
}

/* Checks the length and NUL bytes common to both line formats. */
static int
line_ok(const char *line, size_t n, const char *file, int lineno,
    struct settings_errors *errs)
{
	if (n > SETTINGS_MAX_LINE) {
		settings_error_add(errs, file, lineno, NULL,
		    "line is longer than %d bytes", SETTINGS_MAX_LINE);
		return 0;
	}
	if (memchr(line, '\0', n) != NULL) {
		settings_error_add(errs, file, lineno, NULL,
		    "line contains a NUL byte");
		return 0;
	}
	return 1;
}

/* -------------------------------------------------------------- env file */

/*
 * Decodes the value part of an env line (v, n bytes, leading blanks
 * already skipped) into out (at least n + 1 bytes). Returns NULL or the
 * reason it is malformed.
 */
static const char *
env_value(const char *v, size_t n, char *out)
{
	size_t i, o = 0;
	char q;

	if (n == 0 || (v[0] != '\'' && v[0] != '"')) {
		/* Unquoted: taken literally, surrounding blanks trimmed. */
		while (n > 0 && is_blank((unsigned char)v[n - 1]))
			n--;
		memcpy(out, v, n);
		out[n] = '\0';
		return NULL;
	}
	q = v[0];
	for (i = 1; i < n; i++) {
		if (v[i] == q)
			break;
		if (q == '"' && v[i] == '\\' && i + 1 < n) {
			switch (v[i + 1]) {
			case 'n':
				out[o++] = '\n';
				i++;
				continue;
			case '"':
			case '\\':
			case '$':
			case '`':
				out[o++] = v[++i];
				continue;
			default:
				break; /* the backslash stays */
			}
		}
		out[o++] = v[i];
	}
	if (i >= n)
		return q == '"' ? "missing closing double quote"
		                : "missing closing single quote";
	for (i++; i < n; i++)
		if (!is_blank((unsigned char)v[i]))
			return "unexpected text after the closing quote";
	out[o] = '\0';
	return NULL;
}

int
settings_parse_env(const char *buf, size_t len, const char *file,
    settings_kv_cb cb, void *arg, struct settings_errors *errs)
{
	struct lines l = { buf, len, 0, 0 };
	char key[SETTINGS_MAX_LINE + 1], val[SETTINGS_MAX_LINE + 1];
	char sh[SETTINGS_MAX_SHOWN + 4];
	const char *line, *eq, *why;
	size_t n, i, klen;
	int bad = 0;

	if (len > SETTINGS_MAX_FILE) {
		settings_error_add(errs, file, 0, NULL,
		    "file is larger than %d bytes", SETTINGS_MAX_FILE);
		return -1;
	}
	if (buf == NULL)
		return 0;
	while (lines_next(&l, &line, &n)) {
		if (!line_ok(line, n, file, l.lineno, errs)) {
			bad = 1;
			continue;
		}
		i = 0;
		while (i < n && is_blank((unsigned char)line[i]))
			i++;
		if (i == n || line[i] == '#' || line[i] == ';')
			continue;
		if (n - i > 7 && memcmp(line + i, "export", 6) == 0 &&
		    is_blank((unsigned char)line[i + 6])) {
			i += 7;
			while (i < n && is_blank((unsigned char)line[i]))
				i++;
		}
		eq = memchr(line + i, '=', n - i);
		if (eq == NULL) {
			settings_error_add(errs, file, l.lineno, NULL,
			    "expected KEY=value");
			bad = 1;
			continue;
		}
		klen = (size_t)(eq - (line + i));
		while (klen > 0 && is_blank((unsigned char)line[i + klen - 1]))
			klen--;
		memcpy(key, line + i, klen);
		key[klen] = '\0';
		if (klen == 0) {
			settings_error_add(errs, file, l.lineno, NULL,
			    "missing key name before '='");
			bad = 1;
			continue;
		}
		for (i = 0; i < klen; i++)
			if (!(i == 0 ? is_key_start((unsigned char)key[0])
			             : is_key_char((unsigned char)key[i])))
				break;
		if (i < klen) {
			settings_error_add(errs, file, l.lineno,
			    shown(key, klen, sh),
			    "invalid key name (letters, "
			    "digits and '_', not starting with a digit)");
			bad = 1;
			continue;
		}
		i = (size_t)(eq + 1 - line);
		while (i < n && is_blank((unsigned char)line[i]))
			i++;
		if ((why = env_value(line + i, n - i, val)) != NULL) {
			settings_error_add(errs, file, l.lineno, key, "%s",
			    why);
			bad = 1;
			continue;
		}
		if (cb != NULL)
			cb(arg, key, val, l.lineno);
	}
	return bad ? -1 : 0;
}

/* ------------------------------------------------------------- odoo.conf */

/* odoo.conf option waiting for possible continuation lines. */
struct pending {
	char key[SETTINGS_MAX_LINE + 1];
	char val[SETTINGS_MAX_LINE + 1];
	size_t vlen;
	size_t indent;
	int line;
	int set;
};

/* Appends "\n" and n bytes to the pending value; -1 when it gets too long. */
static int
pending_append(struct pending *p, const char *s, size_t n)
{
	if (p->vlen + 1 + n > SETTINGS_MAX_LINE)
		return -1;
	p->val[p->vlen++] = '\n';
	memcpy(p->val + p->vlen, s, n);
	p->vlen += n;
	p->val[p->vlen] = '\0';
	return 0;
}

static void
pending_flush(struct pending *p, settings_kv_cb cb, void *arg)
{
	/* Python joins the lines and strips the end (blank lines kept). */
	while (p->vlen > 0 &&
	    (p->val[p->vlen - 1] == '\n' ||
	        is_blank((unsigned char)p->val[p->vlen - 1])))
		p->val[--p->vlen] = '\0';
	if (p->set && cb != NULL)
		cb(arg, p->key, p->val, p->line);
	p->set = 0;
}

/*
 * Follows Python's RawConfigParser as Odoo uses it: sections in brackets,
 * "key = value" or "key: value" (the first of '=' or ':' separates), keys
 * lower-cased, '#' and ';' comments on their own line only (a ';' later in
 * a line is part of the value), lines indented deeper than their option
 * continue its value (blank lines inside are kept, comments skipped). Only
 * [options] reaches cb; a duplicate option is passed twice, so the last
 * value wins (Python would refuse the file; Odoo would not start either,
 * and that is for Odoo to report).
 */
int
settings_parse_odoo_conf(const char *buf, size_t len, const char *file,
    settings_kv_cb cb, void *arg, struct settings_errors *errs)
{
	struct lines l = { buf, len, 0, 0 };
	struct pending *p;
	const char *line, *sep, *end;
	size_t n, i, klen, k;
	int bad = 0, in_section = 0, in_options = 0;

	if (len > SETTINGS_MAX_FILE) {
		settings_error_add(errs, file, 0, NULL,
		    "file is larger than %d bytes", SETTINGS_MAX_FILE);
		return -1;
	}
	if (buf == NULL)
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		settings_error_add(errs, file, 0, NULL, "out of memory");
		return -1;
	}
	while (lines_next(&l, &line, &n)) {
		if (!line_ok(line, n, file, l.lineno, errs)) {
			bad = 1;
			continue;
		}
		i = 0;
		while (i < n && is_blank((unsigned char)line[i]))
			i++;
		end = line + n;
		while (end > line + i && is_blank((unsigned char)end[-1]))
			end--;
		if (i < n && (line[i] == '#' || line[i] == ';'))
			continue;
		if (i == n) {
			if (p->set && pending_append(p, "", 0) == -1)
				pending_flush(p, cb, arg);
			continue;
		}
		if (p->set && i > p->indent) {
			if (pending_append(p, line + i,
			        (size_t)(end - (line + i))) == -1) {
				settings_error_add(errs, file, l.lineno, NULL,
				    "continued value is longer than %d bytes",
				    SETTINGS_MAX_LINE);
				bad = 1;
				p->set = 0;
			}
			continue;
		}
		pending_flush(p, cb, arg);
		if (line[i] == '[') {
			sep = end - 1;
			while (sep > line + i && *sep != ']')
				sep--;
			if (sep <= line + i + 1) {
				settings_error_add(errs, file, l.lineno, NULL,
				    "malformed section header");
				bad = 1;
				in_section = in_options = 0;
				continue;
			}
			in_section = 1;
			in_options = (size_t)(sep - (line + i + 1)) == 7 &&
			    memcmp(line + i + 1, "options", 7) == 0;
			continue;
		}
		if (!in_section) {
			settings_error_add(errs, file, l.lineno, NULL,
			    "option outside any section (expected "
			    "[options] first)");
			bad = 1;
			continue;
		}
		for (sep = line + i; sep < end; sep++)
			if (*sep == '=' || *sep == ':')
				break;
		if (sep == end) {
			settings_error_add(errs, file, l.lineno, NULL,
			    "expected 'key = value' or 'key: value'");
			bad = 1;
			continue;
		}
		klen = (size_t)(sep - (line + i));
		while (klen > 0 && is_blank((unsigned char)line[i + klen - 1]))
			klen--;
		if (klen == 0) {
			settings_error_add(errs, file, l.lineno, NULL,
			    "missing option name before '%c'", *sep);
			bad = 1;
			continue;
		}
		if (!in_options)
			continue;
		for (k = 0; k < klen; k++)
			p->key[k] = (char)tolower((unsigned char)line[i + k]);
		p->key[klen] = '\0';
		sep++;
		while (sep < end && is_blank((unsigned char)*sep))
			sep++;
		p->vlen = (size_t)(end - sep);
		memcpy(p->val, sep, p->vlen);
		p->val[p->vlen] = '\0';
		p->indent = i;
		p->line = l.lineno;
		p->set = 1;
	}
	pending_flush(p, cb, arg);
	free(p);
	return bad ? -1 : 0;
}

/* ---------------------------------------------------------- domains.json */

static void
zones_free(struct zone *zones, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(zones[i].domain);
		free(zones[i].zone_id);
	}
	free(zones);
}

/* Line (1-based) and column of position pos in buf. */
static void
line_col(const char *buf, size_t pos, int *line, int *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < pos; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (*line < INT_MAX && *col < INT_MAX)
			(*col)++;
	}
}

static int
parse_zones(const cJSON *zobj, const char *file, struct zone **zonesp,
    size_t *nzonesp, struct settings_errors *errs)
{
	const cJSON *z, *y;
	struct zone *zones;
	char sh[SETTINGS_MAX_SHOWN + 4];
	const char *why, *name;
	size_t n = 0;
	int bad = 0;

	cJSON_ArrayForEach(z, zobj) if (++n > SETTINGS_MAX_ZONES) break;
	if (n == 0) {
		settings_error_add(errs, file, 0, NULL,
		    "zones: no zone is listed");
		return -1;
	}
	if (n > SETTINGS_MAX_ZONES) {
		settings_error_add(errs, file, 0, NULL,
		    "zones: more than %d zones", SETTINGS_MAX_ZONES);
		return -1;
	}
	if ((zones = calloc(n, sizeof(*zones))) == NULL) {
		settings_error_add(errs, file, 0, NULL, "out of memory");
		return -1;
	}
	n = 0;
	cJSON_ArrayForEach(z, zobj)
	{
		name = z->string != NULL ? z->string : "";
		shown(name, strlen(name), sh);
		if ((why = dns_name_problem(name, strlen(name))) != NULL) {
			settings_error_add(errs, file, 0, NULL,
			    "zones.%s: zone name %s", sh, why);
			bad = 1;
			continue;
		}
		for (y = zobj->child; y != z; y = y->next)
			if (y->string != NULL && strcmp(y->string, name) == 0)
				break;
		if (y != z) {
			settings_error_add(errs, file, 0, NULL,
			    "zones.%s: zone listed twice", sh);
			bad = 1;
			continue;
		}
		if (!cJSON_IsString(z) || z->valuestring == NULL) {
			settings_error_add(errs, file, 0, NULL,
			    "zones.%s: zone id must be a string", sh);
			bad = 1;
			continue;
		}
		if (!id_ok(z->valuestring, strlen(z->valuestring))) {
			settings_error_add(errs, file, 0, NULL,
			    "zones.%s: zone id must be 1 to %d characters of "
			    "A-Z, a-z, 0-9, '_' and '-'",
			    sh, SETTINGS_MAX_ZONE_ID);
			bad = 1;
			continue;
		}
		zones[n].domain = strdup(name);
		zones[n].zone_id = strdup(z->valuestring);
		n++;
		if (zones[n - 1].domain == NULL ||
		    zones[n - 1].zone_id == NULL) {
			settings_error_add(errs, file, 0, NULL,
			    "out of memory");
			bad = 1;
			break;
		}
	}
	if (bad) {
		zones_free(zones, n);
		return -1;
	}
	*zonesp = zones;
	*nzonesp = n;
	return 0;
}

int
settings_parse_domains(const char *buf, size_t len, const char *file,
    struct zone **zones, size_t *nzones, char **tunnel_id,
    struct settings_errors *errs)
{
	cJSON *root = NULL;
	const cJSON *item;
	const char *end = NULL;
	char *copy = NULL;
	char sh[SETTINGS_MAX_SHOWN + 4];
	size_t i;
	int line, col, bad = 0;

	*zones = NULL;
	*nzones = 0;
	*tunnel_id = NULL;
	if (len > SETTINGS_MAX_FILE) {
		settings_error_add(errs, file, 0, NULL,
		    "file is larger than %d bytes", SETTINGS_MAX_FILE);
		return -1;
	}
	if (buf == NULL || len == 0) {
		settings_error_add(errs, file, 0, NULL, "file is empty");
		return -1;
	}
	if (memchr(buf, '\0', len) != NULL) {
		settings_error_add(errs, file, 0, NULL,
		    "file contains a NUL byte");
		return -1;
	}
	/* cJSON is happiest with a terminated copy; it is small. */
	if ((copy = malloc(len + 1)) == NULL) {
		settings_error_add(errs, file, 0, NULL, "out of memory");
		return -1;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';
	root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
	if (root == NULL) {
		i = end != NULL && end >= copy && end <= copy + len
		    ? (size_t)(end - copy)
		    : 0;
		line_col(copy, i, &line, &col);
		settings_error_add(errs, file, line, NULL,
		    "invalid JSON near column %d", col);
		goto fail;
	}
	for (i = (size_t)(end - copy); i < len; i++)
		if (!isspace((unsigned char)copy[i]))
			break;
	if (i < len) {
		line_col(copy, i, &line, &col);
		settings_error_add(errs, file, line, NULL,
		    "unexpected text after the JSON object at column %d", col);
		goto fail;
	}
	if (!cJSON_IsObject(root)) {
		settings_error_add(errs, file, 0, NULL,
		    "the top level must be a JSON object "
		    "{\"zones\": {...}, \"tunnel_id\": \"...\"}");
		goto fail;
	}
	cJSON_ArrayForEach(item, root)
	{
		if (item->string == NULL)
			continue;
		if (strcmp(item->string, "zones") != 0 &&
		    strcmp(item->string, "tunnel_id") != 0)
			log_warn("%s: unknown field %s ignored", file,
			    shown(item->string, strlen(item->string), sh));
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "tunnel_id");
	if (item != NULL && !cJSON_IsNull(item)) {
		if (!cJSON_IsString(item) || item->valuestring == NULL) {
			settings_error_add(errs, file, 0, NULL,
			    "tunnel_id: must be a string");
			bad = 1;
		} else if (item->valuestring[0] == '\0') {
			/* An empty placeholder is the same as no tunnel. */
		} else if (!id_ok(item->valuestring,
		               strlen(item->valuestring))) {
			settings_error_add(errs, file, 0, NULL,
			    "tunnel_id: must be 1 to %d characters of A-Z, "
			    "a-z, 0-9, '_' and '-'",
			    SETTINGS_MAX_ZONE_ID);
			bad = 1;
		} else if ((*tunnel_id = strdup(item->valuestring)) == NULL) {
			settings_error_add(errs, file, 0, NULL,
			    "out of memory");
			bad = 1;
		}
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "zones");
	if (item == NULL) {
		settings_error_add(errs, file, 0, NULL,
		    "zones: missing (expected \"zones\": "
		    "{\"example.com\": \"<zone id>\"})");
		bad = 1;
	} else if (!cJSON_IsObject(item)) {
		settings_error_add(errs, file, 0, NULL,
		    "zones: must be an object mapping each domain to its "
		    "zone id");
		bad = 1;
	} else if (parse_zones(item, file, zones, nzones, errs) == -1)
		bad = 1;
	if (bad)
		goto fail;
	cJSON_Delete(root);
	free(copy);
	return 0;

fail:
	cJSON_Delete(root);
	free(copy);
	zones_free(*zones, *nzones);
	*zones = NULL;
	*nzones = 0;
	free(*tunnel_id);
	*tunnel_id = NULL;
	return -1;
}

/* ---------------------------------------------------------------- files */

/*
 * Reads a whole regular file of at most SETTINGS_MAX_FILE bytes into a
 * malloc'd buffer. Returns 0, 1 when it does not exist (and missing_ok),
 * or -1 after adding an error. st receives its fstat.
 */
static int
read_file(const char *path, const char *key, int missing_ok, char **bufp,
    size_t *lenp, struct stat *st, struct settings_errors *errs)
{
	char *buf;
	size_t len = 0;
	ssize_t r;
	int fd;

	*bufp = NULL;
	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		if (errno == ENOENT && missing_ok)
			return 1;
		settings_error_add(errs, path, 0, key, "cannot open: %s",
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		settings_error_add(errs, path, 0, key, "cannot stat: %s",
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		settings_error_add(errs, path, 0, key, "is not a regular file");
		close(fd);
		return -1;
	}
	if (st->st_size > SETTINGS_MAX_FILE) {
		settings_error_add(errs, path, 0, key,
		    "file is larger than %d bytes", SETTINGS_MAX_FILE);
		close(fd);
		return -1;
	}
	if ((buf = malloc(SETTINGS_MAX_FILE + 1)) == NULL) {
		settings_error_add(errs, path, 0, key, "out of memory");
		close(fd);
		return -1;
	}
	for (;;) {
		r = read(fd, buf + len, SETTINGS_MAX_FILE + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			settings_error_add(errs, path, 0, key,
			    "cannot read: %s", strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > SETTINGS_MAX_FILE) {
			settings_error_add(errs, path, 0, key,
			    "file is larger than %d bytes", SETTINGS_MAX_FILE);
			free(buf);
			close(fd);
			return -1;
		}
	}
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* ---------------------------------------------------------------- load */

static void
val_set(struct val *v, const char *value, const char *file, int line,
    struct loader *ld)
{
	char *copy;

	if ((copy = strdup(value)) == NULL) {
		settings_error_add(ld->errs, file, line, NULL, "out of memory");
		ld->failed = 1;
		return;
	}
	if (v->v != NULL)
		explicit_bzero(v->v, strlen(v->v));
	free(v->v);
	v->v = copy;
	v->file = file;
	v->line = line;
}

/* Frees a value, wiping it first when it is a secret. */
static void
val_free(struct val *v, int secret)
{
	if (v->v != NULL && secret)
		explicit_bzero(v->v, strlen(v->v));
	free(v->v);
	v->v = NULL;
}

/*
 * An error about a value: names its key and where it came from. Never
 * pass a secret's value in fmt's arguments.
 */
static void val_error(struct loader *ld, const struct val *v, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
val_error(struct loader *ld, const struct val *v, const char *key,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ld->failed = 1;
	if (v != NULL && v->v != NULL && v->file == NULL)
		settings_error_add(ld->errs, NULL, 0, key,
		    "%s (set in the environment)", msg);
	else
		settings_error_add(ld->errs, v != NULL ? v->file : NULL,
		    v != NULL ? v->line : 0, key, "%s", msg);
}

/*
 * The CLI wrappers' own keys (scripts/nodo-common.sh): they may sit in the
 * env file without a warning; any other NODO_* key is a typo.
 */
static const char *const cli_keys[] = {
	"NODO_ENV_FILE",
	"NODO_API_URL",
	"NODO_API_KEY",
	"NODO_API_TIMEOUT",
};

static int
cli_key(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(cli_keys) / sizeof(cli_keys[0]); i++)
		if (strcmp(key, cli_keys[i]) == 0)
			return 1;
	return 0;
}

static void
env_cb(void *arg, const char *key, const char *val, int line)
{
	struct loader *ld = arg;
	size_t i;

	for (i = 0; i < K_COUNT; i++)
		if (strcmp(key, keys[i].name) == 0)
			break;
	if (i == K_COUNT) {
		if (!cli_key(key))
			log_warn("%s:%d: unknown key %s ignored",
			    ld->s->env_file, line, key);
		return;
	}
	if (keys[i].secret && *val != '\0')
		ld->file_has_secret = 1;
	val_set(&ld->v[i], val, ld->s->env_file, line, ld);
}

static void
odoo_cb(void *arg, const char *key, const char *val, int line)
{
	struct loader *ld = arg;
	size_t i;

	for (i = 0; i < O_COUNT; i++)
		if (strcmp(key, okeys[i]) == 0)
			break;
	if (i == O_COUNT)
		return;
	/* RawConfigParser gives "False" for unset keys; Odoo reads it so. */
	if (*val == '\0' || strcmp(val, "False") == 0 ||
	    strcmp(val, "false") == 0) {
		val_free(&ld->o[i], i == O_DB_PASSWORD);
		return;
	}
	val_set(&ld->o[i], val, ld->s->odoo_conf, line, ld);
}

/*
 * The env file must not be open to others (OpenBSD's check_file_secrecy).
 * Accepted: mode 0600/0400 (any owner: the seed's layout), or 0640/0440
 * owned by root (install.sh's root:nodo layout: the daemons and the
 * operators of group nodo read it, nobody but root writes it). Refused:
 * any access for others, a group that may write or execute it, and a
 * group-readable file owned by someone else than root (that owner could
 * open it further). For the API a refusal is always an error: the file is
 * where PROVISIONING_API_KEY lives. For the watcher it is an error when the
 * file sets a secret (CLOUDFLARE_API_TOKEN, PROVISIONING_API_KEY or
 * PGPASSWORD) to a non-empty value, because that secret is leaked whichever
 * daemon reads it; a file holding no secret only gets a warning.
 */
static void
check_secrecy(struct loader *ld, const struct stat *st, const char *path,
    enum settings_program prog)
{
	const char *how;
	unsigned mode = (unsigned)st->st_mode & 07777;

	if ((st->st_mode & 077) == 0)
		return;
	if ((st->st_mode & 077) == 040 && st->st_uid == 0)
		return;
	if (st->st_mode & 04)
		how = "readable by others";
	else if (st->st_mode & 02)
		how = "writable by others";
	else if (st->st_mode & 01)
		how = "accessible to others";
	else if (st->st_mode & 020)
		how = "writable by its group";
	else if (st->st_mode & 010)
		how = "accessible to its group";
	else
		how = "readable by its group but not owned by root";
	if (prog == SETTINGS_API || ld->file_has_secret) {
		ld->failed = 1;
		settings_error_add(ld->errs, path, 0, NULL,
		    "is %s (mode 0%03o); run chmod 600 %s (or chown "
		    "root:nodo and chmod 640 it)",
		    how, mode, path);
	} else
		log_warn("%s is %s (mode 0%03o); run chmod 600 %s (or chown "
		         "root:nodo and chmod 640 it)",
		    path, how, mode, path);
}

static char *
dup_or_fail(struct loader *ld, const char *str)
{
	char *copy;

	if (str == NULL)
		return NULL;
	if ((copy = strdup(str)) == NULL) {
		ld->failed = 1;
		settings_error_add(ld->errs, NULL, 0, NULL, "out of memory");
	}
	return copy;
}

/* The value of key k, or def when it is unset (or empty and !empty_ok). */
static const char *
val_or(const struct loader *ld, enum key k, const char *def, int empty_ok)
{
	const char *v = ld->v[k].v;

	if (v == NULL || (*v == '\0' && !empty_ok))
		return def;
	return v;
}

static int
int_setting(struct loader *ld, enum key k, long long min, long long max,
    int def)
{
	long long n;

	if (ld->v[k].v == NULL)
		return def;
	if (parse_int(ld->v[k].v, min, max, &n) == -1) {
		val_error(ld, &ld->v[k], keys[k].name,
		    "must be a whole number from %lld to %lld", min, max);
		return def;
	}
	return (int)n;
}

/* A path setting must be absolute. */
static void
check_path(struct loader *ld, const struct val *v, const char *key,
    const char *path)
{
	if (path != NULL && path[0] != '/')
		val_error(ld, v, key, "must be an absolute path");
}

/* PGPORT / db_port: one port, or a comma-separated list for multi-host. */
static int
port_list_ok(const char *p)
{
	char one[16];
	const char *c;
	long long n;
	size_t len;

	for (;;) {
		c = strchr(p, ',');
		len = c != NULL ? (size_t)(c - p) : strlen(p);
		if (len == 0 || len >= sizeof(one))
			return 0;
		memcpy(one, p, len);
		one[len] = '\0';
		if (parse_int(one, 1, SETTINGS_MAX_PORT, &n) == -1)
			return 0;
		if (c == NULL)
			return 1;
		p = c + 1;
	}
}

static void
load_env_file(struct loader *ld, enum settings_program prog, const char *path,
    int explicit)
{
	struct stat st;
	char *buf;
	size_t len;
	int r;

	r = read_file(path, explicit ? "--config" : NULL, !explicit, &buf, &len,
	    &st, ld->errs);
	if (r == 1) {
		log_debug("%s does not exist; settings come from the "
		          "environment",
		    path);
		return;
	}
	if (r == -1) {
		ld->failed = 1;
		return;
	}
	if ((ld->s->env_file = dup_or_fail(ld, path)) == NULL) {
		free(buf);
		return;
	}
	if (settings_parse_env(buf, len, ld->s->env_file, env_cb, ld,
	        ld->errs) == -1)
		ld->failed = 1;
	free(buf);
	check_secrecy(ld, &st, ld->s->env_file, prog);
}

static void
load_environment(struct loader *ld)
{
	const char *e;
	size_t i;

	for (i = 0; i < K_COUNT; i++)
		if ((e = getenv(keys[i].name)) != NULL)
			val_set(&ld->v[i], e, NULL, 0, ld);
}

/*
 * The Cloudflare token from the systemd credential cloudflare-token
 * (LoadCredential=, in $CREDENTIALS_DIRECTORY): when that file exists and
 * is not empty (white space around it ignored) it wins over
 * CLOUDFLARE_API_TOKEN of the environment and of the env file, with a
 * warning naming where the ignored token was set.
 */
static void
load_credential(struct loader *ld)
{
	struct stat st;
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const struct val *old = &ld->v[K_CF_TOKEN];
	char *path, *buf, *b, *e;
	size_t len;
	int r;

	if (dir == NULL || *dir == '\0')
		return;
	if (asprintf(&path, "%s/%s", dir, SETTINGS_CF_CREDENTIAL) == -1) {
		ld->failed = 1;
		settings_error_add(ld->errs, NULL, 0, NULL, "out of memory");
		return;
	}
	r = read_file(path, keys[K_CF_TOKEN].name, 1, &buf, &len, &st,
	    ld->errs);
	free(path);
	if (r == -1) {
		ld->failed = 1;
		return;
	}
	if (r == 1)
		return;
	b = buf;
	e = buf + len;
	while (
	    b < e && (is_blank((unsigned char)*b) || *b == '\n' || *b == '\r'))
		b++;
	while (e > b &&
	    (is_blank((unsigned char)e[-1]) || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	if (b == e) {
		log_debug("%s is empty; the token comes from the settings",
		    SETTINGS_CF_CREDENTIAL_SHOWN);
	} else if (memchr(b, '\0', (size_t)(e - b)) != NULL) {
		ld->failed = 1;
		settings_error_add(ld->errs, SETTINGS_CF_CREDENTIAL_SHOWN, 0,
		    keys[K_CF_TOKEN].name, "contains a NUL byte");
	} else {
		*e = '\0';
		if (old->v != NULL && *old->v != '\0')
			log_warn("CLOUDFLARE_API_TOKEN of %s is ignored: the "
			         "token of the credential %s is used",
			    old->file != NULL ? old->file : "the environment",
			    SETTINGS_CF_CREDENTIAL);
		val_set(&ld->v[K_CF_TOKEN], b, SETTINGS_CF_CREDENTIAL_SHOWN, 0,
		    ld);
	}
	explicit_bzero(buf, len);
	free(buf);
}

static void
load_odoo_conf(struct loader *ld)
{
	struct stat st;
	char *buf;
	size_t len;
	int r;

	r = read_file(ld->s->odoo_conf, keys[K_ODOO_CONF].name, 1, &buf, &len,
	    &st, ld->errs);
	if (r == 1) {
		log_debug("%s does not exist; not reading Odoo's settings",
		    ld->s->odoo_conf);
		return;
	}
	if (r == -1) {
		ld->failed = 1;
		return;
	}
	if (settings_parse_odoo_conf(buf, len, ld->s->odoo_conf, odoo_cb, ld,
	        ld->errs) == -1)
		ld->failed = 1;
	free(buf);
}

/* Adds ODOO_DOMAIN as a zone without id (DNS disabled). */
static void
add_default_zone(struct loader *ld)
{
	struct settings *s = ld->s;
	struct zone *z;

	if (s->odoo_domain == NULL || settings_zone(s, s->odoo_domain) != NULL)
		return;
	if ((z = reallocarray(s->zones, s->nzones + 1, sizeof(*z))) == NULL) {
		ld->failed = 1;
		settings_error_add(ld->errs, NULL, 0, NULL, "out of memory");
		return;
	}
	s->zones = z;
	z = &s->zones[s->nzones];
	z->domain = dup_or_fail(ld, s->odoo_domain);
	z->zone_id = dup_or_fail(ld, "");
	if (z->domain == NULL || z->zone_id == NULL) {
		free(z->domain);
		free(z->zone_id);
		return;
	}
	s->nzones++;
}

static void
load_domains(struct loader *ld)
{
	struct settings *s = ld->s;
	struct stat st;
	char *buf, *tunnel = NULL;
	int r;
	size_t len;

	r = read_file(s->domains_file, keys[K_DOMAINS_FILE].name, 1, &buf, &len,
	    &st, ld->errs);
	if (r == -1) {
		ld->failed = ld->domains_broken = 1;
		return;
	}
	if (r == 1) {
		if (s->dns_enabled) {
			val_error(ld, &ld->v[K_DOMAINS_FILE],
			    keys[K_DOMAINS_FILE].name,
			    "%s does not exist; it "
			    "is required when DNS is enabled "
			    "(CLOUDFLARE_API_TOKEN is set)",
			    s->domains_file);
		} else
			log_debug("%s does not exist; DNS is disabled",
			    s->domains_file);
		return;
	}
	if (settings_parse_domains(buf, len, s->domains_file, &s->zones,
	        &s->nzones, &tunnel, ld->errs) == -1)
		ld->failed = ld->domains_broken = 1;
	free(buf);
	if (s->cf_tunnel_id == NULL)
		s->cf_tunnel_id = tunnel;
	else
		free(tunnel);
}

/*
 * TEMPLATE_DBS: comma-separated template names (spaces around commas are
 * ignored, duplicates too). Each follows the DEFAULT_TEMPLATE_DB rule and is
 * no system database; the list must name DEFAULT_TEMPLATE_DB, which a
 * create without template_db copies. Unset or empty: the run-time default.
 */
static void
load_template_dbs(struct loader *ld)
{
	static const char *const system_dbs[] = { "postgres", "template0",
		"template1" };
	struct val *tv = &ld->v[K_TEMPLATE_DBS];
	const char *key = keys[K_TEMPLATE_DBS].name, *p = tv->v, *e;
	char name[SETTINGS_MAX_TEMPLATE + 1], sh[SETTINGS_MAX_SHOWN + 4];
	struct settings *s = ld->s;
	int has_default = 0, bad = 0;
	size_t n, i;

	if (p == NULL || p[strspn(p, " \t")] == '\0')
		return;
	if ((s->template_dbs = calloc(SETTINGS_MAX_TEMPLATES,
	         sizeof(*s->template_dbs))) == NULL) {
		ld->failed = 1;
		settings_error_add(ld->errs, NULL, 0, NULL, "out of memory");
		return;
	}
	for (;; p = e + 1) {
		p += strspn(p, " \t");
		e = strchr(p, ',');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0 || n > SETTINGS_MAX_TEMPLATE) {
			val_error(ld, tv, key,
			    "has an empty or too long name: a comma-separated "
			    "list of template database names");
			bad = 1;
		} else {
			memcpy(name, p, n);
			name[n] = '\0';
			for (i = 0;
			     i < sizeof(system_dbs) / sizeof(*system_dbs); i++)
				if (strcmp(name, system_dbs[i]) == 0)
					break;
			if (!template_ok(name) ||
			    i < sizeof(system_dbs) / sizeof(*system_dbs)) {
				val_error(ld, tv, key,
				    "\"%s\" is not a template name: 1 to %d "
				    "characters of a-z, 0-9, '_' and '-', not "
				    "a "
				    "system database",
				    shown(name, n, sh), SETTINGS_MAX_TEMPLATE);
				bad = 1;
			}
			for (i = 0; i < s->ntemplate_dbs; i++)
				if (strcmp(s->template_dbs[i], name) == 0)
					break;
			if (!bad && i == s->ntemplate_dbs) {
				if (s->ntemplate_dbs ==
				    SETTINGS_MAX_TEMPLATES) {
					val_error(ld, tv, key,
					    "names more than %d templates",
					    SETTINGS_MAX_TEMPLATES);
					bad = 1;
				} else if ((s->template_dbs[s->ntemplate_dbs] =
				                   dup_or_fail(ld, name)) !=
				    NULL)
					s->ntemplate_dbs++;
			}
			if (s->default_template != NULL &&
			    strcmp(name, s->default_template) == 0)
				has_default = 1;
		}
		if (e == NULL || bad)
			break;
	}
	if (!bad && s->default_template != NULL && !has_default)
		val_error(ld, tv, key,
		    "does not name DEFAULT_TEMPLATE_DB (%s), which a create "
		    "without template_db copies",
		    s->default_template);
}

int
settings_zone_id_problem(const struct zone *z, char *buf, size_t len)
{
	char sh[SETTINGS_MAX_SHOWN + 4], id[SETTINGS_MAX_SHOWN + 4];

	if (z->zone_id == NULL || z->zone_id[0] == '\0' ||
	    cf_zone_id_valid(z->zone_id))
		return 0;
	shown(z->domain, strlen(z->domain), sh);
	shown(z->zone_id, strlen(z->zone_id), id);
	snprintf(buf, len,
	    "zones.%s: zone id '%s' is not a Cloudflare zone id "
	    "(%d characters of 0-9 and a-f, shown on the zone's Overview "
	    "page of the dashboard under API)",
	    sh, id, CF_ZONE_ID_LEN);
	return 1;
}

/*
 * The zone-id rule is the Cloudflare client's (cf_zone_id_valid): an id
 * every DNS call would refuse is an error when DNS is enabled, a warning
 * when it is not (the seed's example file still lets the node start; its
 * --check reports it).
 */
static void
check_zone_ids(struct loader *ld)
{
	struct settings *s = ld->s;
	char why[512];
	size_t i;

	for (i = 0; i < s->nzones; i++) {
		if (!settings_zone_id_problem(&s->zones[i], why, sizeof(why)))
			continue;
		if (s->dns_enabled) {
			ld->failed = 1;
			settings_error_add(ld->errs, s->domains_file, 0, NULL,
			    "%s", why);
		} else
			log_warn("%s: %s; DNS is disabled, so it is not "
			         "used yet",
			    s->domains_file, why);
	}
}

int
settings_load(struct settings *s, enum settings_program prog,
    const char *config, int explicit, struct settings_errors *errs)
{
	struct loader ld;
	const char *v, *why;
	char sh[SETTINGS_MAX_SHOWN + 4];
	struct val *dv;
	size_t i, n;
	int lvl;

	memset(s, 0, sizeof(*s));
	memset(&ld, 0, sizeof(ld));
	ld.s = s;
	ld.errs = errs;
	s->program = prog;

	if (config == NULL || *config == '\0') {
		config = SETTINGS_DEFAULT_ENV_FILE;
		explicit = 0;
	}
	load_env_file(&ld, prog, config, explicit);
	load_environment(&ld);
	load_credential(&ld);

	/* ODOO_DOMAIN */
	v = ld.v[K_ODOO_DOMAIN].v;
	if (v == NULL || *v == '\0')
		val_error(&ld, &ld.v[K_ODOO_DOMAIN], keys[K_ODOO_DOMAIN].name,
		    "is required: the default domain of tenants, e.g. "
		    "example.com");
	else if ((why = dns_name_problem(v, strlen(v))) != NULL)
		val_error(&ld, &ld.v[K_ODOO_DOMAIN], keys[K_ODOO_DOMAIN].name,
		    "\"%s\" is not a valid domain name: it %s",
		    shown(v, strlen(v), sh), why);
	else
		s->odoo_domain = dup_or_fail(&ld, v);

	/* PROVISIONING_API_KEY: its value is never quoted back. */
	v = ld.v[K_API_KEY].v;
	if (v != NULL && *v != '\0' && !header_token_ok(v))
		val_error(&ld, &ld.v[K_API_KEY], keys[K_API_KEY].name,
		    "must contain only printable ASCII characters, without "
		    "spaces");
	else if (v != NULL && *v != '\0') {
		s->api_key = dup_or_fail(&ld, v);
		s->api_key_len = strlen(v);
		if (prog == SETTINGS_API &&
		    strcmp(v, SETTINGS_EXAMPLE_API_KEY) == 0)
			val_error(&ld, &ld.v[K_API_KEY], keys[K_API_KEY].name,
			    "is the seed's published example key: anyone who "
			    "read the docs could use it. Put a random key "
			    "there (od -An -tx1 -N32 /dev/urandom | tr -d "
			    "' \\n') and give it to the APP server");
		else if (prog == SETTINGS_API &&
		    s->api_key_len < SETTINGS_MIN_API_KEY)
			val_error(&ld, &ld.v[K_API_KEY], keys[K_API_KEY].name,
			    "is shorter than %d bytes: put a random key there "
			    "(od -An -tx1 -N32 /dev/urandom | tr -d ' \\n')",
			    SETTINGS_MIN_API_KEY);
	} else if (prog == SETTINGS_API)
		val_error(&ld, &ld.v[K_API_KEY], keys[K_API_KEY].name,
		    "is required by the API and must not be empty");

	/* CLOUDFLARE_API_TOKEN: empty disables DNS. */
	v = ld.v[K_CF_TOKEN].v;
	if (v != NULL && *v != '\0') {
		if (!header_token_ok(v))
			val_error(&ld, &ld.v[K_CF_TOKEN], keys[K_CF_TOKEN].name,
			    "must contain only "
			    "printable ASCII characters, without spaces");
		else {
			s->cf_token = dup_or_fail(&ld, v);
			s->dns_enabled = s->cf_token != NULL;
		}
	}

	/* CF_TUNNEL_ID (else tunnel_id of domains.json, below) */
	v = ld.v[K_CF_TUNNEL_ID].v;
	if (v != NULL && *v != '\0') {
		if (!id_ok(v, strlen(v)))
			val_error(&ld, &ld.v[K_CF_TUNNEL_ID],
			    keys[K_CF_TUNNEL_ID].name,
			    "must be 1 to %d "
			    "characters of A-Z, a-z, 0-9, '_' and '-'",
			    SETTINGS_MAX_ZONE_ID);
		else
			s->cf_tunnel_id = dup_or_fail(&ld, v);
	}

	/* CLOUDFLARE_API_URL, stored without trailing slashes */
	v = val_or(&ld, K_CF_API_URL, SETTINGS_DEFAULT_CF_URL, 0);
	if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
	    !header_token_ok(v))
		val_error(&ld, &ld.v[K_CF_API_URL], keys[K_CF_API_URL].name,
		    "must be an http:// or https:// URL without spaces");
	else if ((s->cf_api_url = dup_or_fail(&ld, v)) != NULL) {
		n = strlen(s->cf_api_url);
		while (n > 0 && s->cf_api_url[n - 1] == '/')
			s->cf_api_url[--n] = '\0';
		if (strcmp(s->cf_api_url, "http:") == 0 ||
		    strcmp(s->cf_api_url, "https:") == 0)
			val_error(&ld, &ld.v[K_CF_API_URL],
			    keys[K_CF_API_URL].name, "has no host");
	}

	s->domains_file = dup_or_fail(&ld,
	    val_or(&ld, K_DOMAINS_FILE, SETTINGS_DEFAULT_DOMAINS_FILE, 0));
	s->odoo_conf = dup_or_fail(&ld,
	    val_or(&ld, K_ODOO_CONF, SETTINGS_DEFAULT_ODOO_CONF, 0));
	/* An empty value is kept: no watcher metrics file. */
	s->watcher_metrics_file = dup_or_fail(&ld,
	    val_or(&ld, K_WATCHER_METRICS, SETTINGS_DEFAULT_METRICS, 1));
	if (s->watcher_metrics_file != NULL &&
	    s->watcher_metrics_file[0] != '\0' &&
	    s->watcher_metrics_file[0] != '/')
		val_error(&ld, &ld.v[K_WATCHER_METRICS],
		    keys[K_WATCHER_METRICS].name,
		    "must be an absolute path, or empty for none");
	s->api_host = dup_or_fail(&ld,
	    val_or(&ld, K_API_HOST, SETTINGS_DEFAULT_API_HOST, 0));
	if (s->api_host != NULL && !ip_literal(s->api_host))
		val_error(&ld, &ld.v[K_API_HOST], keys[K_API_HOST].name,
		    "must be an IPv4 or IPv6 address such as 0.0.0.0, "
		    "127.0.0.1 or ::");

	s->watcher_interval = int_setting(&ld, K_INTERVAL, 1,
	    SETTINGS_MAX_INTERVAL, SETTINGS_DEFAULT_INTERVAL);
	s->api_port = int_setting(&ld, K_API_PORT, 1, SETTINGS_MAX_PORT,
	    SETTINGS_DEFAULT_API_PORT);
	/* Under the default only for tests: the watcher warns at start. */
	s->watcher_orphan_grace = int_setting(&ld, K_ORPHAN_GRACE, 1,
	    SETTINGS_MAX_ORPHAN_GRACE, SETTINGS_DEFAULT_ORPHAN_GRACE);
	s->trash_retention_days = int_setting(&ld, K_TRASH_DAYS, 0,
	    SETTINGS_MAX_TRASH_DAYS, SETTINGS_DEFAULT_TRASH_DAYS);

	v = ld.v[K_DELETE_ORPHANS].v;
	if (v != NULL && *v != '\0') {
		if ((s->watcher_delete_orphans = parse_bool(v)) == -1) {
			s->watcher_delete_orphans = 0;
			val_error(&ld, &ld.v[K_DELETE_ORPHANS],
			    keys[K_DELETE_ORPHANS].name,
			    "must be true, "
			    "false, yes, no, 1 or 0");
		}
	}

	v = val_or(&ld, K_TEMPLATE, SETTINGS_DEFAULT_TEMPLATE, 0);
	if (!template_ok(v))
		val_error(&ld, &ld.v[K_TEMPLATE], keys[K_TEMPLATE].name,
		    "must be 1 to %d characters of a-z, 0-9, '_' and '-' "
		    "(not starting with '-' nor with '_nodo_')",
		    SETTINGS_MAX_TEMPLATE);
	else
		s->default_template = dup_or_fail(&ld, v);
	load_template_dbs(&ld);

	v = val_or(&ld, K_LOG_LEVEL, "info", 0);
	if ((lvl = log_level_parse(v)) == -1) {
		s->log_level = LOG_INFO;
		val_error(&ld, &ld.v[K_LOG_LEVEL], keys[K_LOG_LEVEL].name,
		    "must be debug, info, warning or error");
	} else
		s->log_level = lvl;

	/* odoo.conf, then PG* and ODOO_DATA_DIR over it */
	if (s->odoo_conf != NULL)
		load_odoo_conf(&ld);
	{
		static const enum key pk[] = { K_PGHOST, K_PGPORT, K_PGUSER,
			K_PGPASSWORD };
		static const enum okey po[] = { O_DB_HOST, O_DB_PORT, O_DB_USER,
			O_DB_PASSWORD };
		char **dst[] = { &s->pg_host, &s->pg_port, &s->pg_user,
			&s->pg_password };
		const struct val *pv[4];

		for (i = 0; i < 4; i++) {
			/* An empty PG* is no override: odoo.conf applies. */
			pv[i] = ld.v[pk[i]].v != NULL && *ld.v[pk[i]].v != '\0'
			    ? &ld.v[pk[i]]
			    : &ld.o[po[i]];
			*dst[i] = dup_or_fail(&ld, pv[i]->v);
		}
		if (s->pg_port != NULL && !port_list_ok(s->pg_port))
			val_error(&ld, pv[1],
			    pv[1] == &ld.v[K_PGPORT] ? keys[K_PGPORT].name
			                             : okeys[O_DB_PORT],
			    "must be a port from 1 to %d (or a comma-separated "
			    "list of them)",
			    SETTINGS_MAX_PORT);
	}
	s->odoo_db_template = dup_or_fail(&ld, ld.o[O_DB_TEMPLATE].v);
	if (ld.v[K_DATA_DIR].v != NULL && *ld.v[K_DATA_DIR].v != '\0')
		dv = &ld.v[K_DATA_DIR];
	else if (ld.o[O_DATA_DIR].v != NULL)
		dv = &ld.o[O_DATA_DIR];
	else
		dv = NULL;
	s->data_dir =
	    dup_or_fail(&ld, dv != NULL ? dv->v : SETTINGS_DEFAULT_DATA_DIR);
	check_path(&ld, dv,
	    dv == &ld.o[O_DATA_DIR] ? okeys[O_DATA_DIR] : keys[K_DATA_DIR].name,
	    s->data_dir);

	/* domains.json */
	if (s->domains_file != NULL)
		load_domains(&ld);
	check_zone_ids(&ld);
	if (s->dns_enabled) {
		if (s->odoo_domain != NULL && s->domains_file != NULL &&
		    s->zones != NULL &&
		    settings_zone(s, s->odoo_domain) == NULL)
			val_error(&ld, &ld.v[K_ODOO_DOMAIN],
			    keys[K_ODOO_DOMAIN].name,
			    "%s is not a zone in %s; "
			    "DNS is enabled, so the default domain must be "
			    "one",
			    s->odoo_domain, s->domains_file);
		if (s->cf_tunnel_id == NULL && !ld.domains_broken) {
			ld.failed = 1;
			settings_error_add(errs, NULL, 0,
			    keys[K_CF_TUNNEL_ID].name,
			    "a tunnel id is "
			    "required when DNS is enabled: set CF_TUNNEL_ID "
			    "or \"tunnel_id\" in %s",
			    s->domains_file != NULL ? s->domains_file
			                            : "domains.json");
		}
	} else
		add_default_zone(&ld);
	if (s->cf_tunnel_id != NULL &&
	    asprintf(&s->cf_target, "%s.cfargotunnel.com", s->cf_tunnel_id) ==
	        -1) {
		s->cf_target = NULL;
		ld.failed = 1;
		settings_error_add(errs, NULL, 0, NULL, "out of memory");
	}

	for (i = 0; i < K_COUNT; i++)
		val_free(&ld.v[i], keys[i].secret);
	for (i = 0; i < O_COUNT; i++)
		val_free(&ld.o[i], i == O_DB_PASSWORD);
	if (errs != NULL && errs->n >= SETTINGS_MAX_ERRORS)
		ld.failed = 1;
	return ld.failed ? -1 : 0;
}

void
settings_free(struct settings *s)
{
	size_t i;

	if (s == NULL)
		return;
	free(s->env_file);
	free(s->odoo_domain);
	if (s->api_key != NULL) {
		explicit_bzero(s->api_key, strlen(s->api_key));
		free(s->api_key);
	}
	if (s->cf_token != NULL) {
		explicit_bzero(s->cf_token, strlen(s->cf_token));
		free(s->cf_token);
	}
	free(s->cf_tunnel_id);
	free(s->cf_target);
	free(s->cf_api_url);
	free(s->domains_file);
	free(s->api_host);
	free(s->default_template);
	for (i = 0; i < s->ntemplate_dbs; i++)
		free(s->template_dbs[i]);
	free(s->template_dbs);
	free(s->odoo_conf);
	free(s->watcher_metrics_file);
	free(s->data_dir);
	free(s->pg_host);
	free(s->pg_port);
	free(s->pg_user);
	if (s->pg_password != NULL) {
		explicit_bzero(s->pg_password, strlen(s->pg_password));
		free(s->pg_password);
	}
	free(s->odoo_db_template);
	zones_free(s->zones, s->nzones);
	memset(s, 0, sizeof(*s));
}

const struct zone *
settings_zone(const struct settings *s, const char *domain)
{
	size_t i;

	if (s == NULL || domain == NULL)
		return NULL;
	for (i = 0; i < s->nzones; i++)
		if (s->zones[i].domain != NULL &&
		    strcasecmp(s->zones[i].domain, domain) == 0)
			return &s->zones[i];
	return NULL;
}
