/*
 * log.c - the one logging API of the node (log.h).
 *
 * log_init() decides once where lines go: when $JOURNAL_STREAM names the
 * device and inode of stderr (systemd sets it for StandardError=journal),
 * each line is sent with sd_journal_send() carrying PRIORITY=,
 * SYSLOG_IDENTIFIER= and TENANT= as separate fields. Otherwise each line is
 * written to stderr as "<N>message\n" (sd-daemon(3) priority prefixes) with
 * a single write(2), so lines from different threads never interleave: a
 * line is at most LOG_MAX_LINE bytes, below PIPE_BUF, and such writes to a
 * pipe are atomic. Messages longer than LOG_MAX_MSG are truncated; control
 * characters (newlines included) are replaced by spaces on stderr so one
 * call is always one line and a value cannot forge another log line.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "nodo/log.h"

#define LOG_MAX_MSG    2048 /* bytes, one message after formatting */
#define LOG_MAX_IDENT  64   /* bytes, SYSLOG_IDENTIFIER= */
#define LOG_MAX_TENANT 128  /* bytes, TENANT= */
#define LOG_PREFIX_MAX 8    /* bytes, "<7>" and room to spare */
#define LOG_MAX_LINE   (LOG_PREFIX_MAX + LOG_MAX_MSG + 1) /* + '\n' */

/*
 * Written by log_init() before any thread starts, read afterwards; the
 * level may change at any time, hence atomic.
 */
static char log_ident[LOG_MAX_IDENT] = "nodo";
static atomic_int log_journal;
static atomic_int log_level = LOG_INFO;

/* 1 when $JOURNAL_STREAM is "dev:ino" of our stderr. */
static int
log_stderr_is_journal(void)
{
	const char *js;
	char *end;
	uintmax_t dev, ino;
	struct stat st;

	if ((js = getenv("JOURNAL_STREAM")) == NULL || *js == '\0')
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	errno = 0;
	dev = strtoumax(js, &end, 10);
	if (errno != 0 || end == js || *end != ':')
		return 0;
	js = end + 1;
	ino = strtoumax(js, &end, 10);
	if (errno != 0 || end == js || *end != '\0')
		return 0;
	return dev == (uintmax_t)st.st_dev && ino == (uintmax_t)st.st_ino;
}

void
log_init(const char *ident)
{
	if (ident != NULL && *ident != '\0')
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	atomic_store(&log_journal, log_stderr_is_journal());
}

void
log_set_level(int prio)
{
	if (prio < LOG_EMERG)
		prio = LOG_EMERG;
	if (prio > LOG_DEBUG)
		prio = LOG_DEBUG;
	atomic_store(&log_level, prio);
}

int
log_get_level(void)
{
	return atomic_load(&log_level);
}

int
log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int prio;
	} levels[] = {
		{ "debug", LOG_DEBUG },
		{ "info", LOG_INFO },
		{ "warning", LOG_WARNING },
		{ "warn", LOG_WARNING },
		{ "error", LOG_ERR },
	};
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(s, levels[i].name) == 0)
			return levels[i].prio;
	return -1;
}

/* Writes all of buf with one write(2) where possible; never fails loudly. */
static void
log_write_stderr(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
log_to_stderr(int prio, const char *msg)
{
	char line[LOG_MAX_LINE];
	size_t i, len;
	int n;

	n = snprintf(line, sizeof(line), "<%d>", prio);
	if (n < 0 || (size_t)n >= LOG_PREFIX_MAX)
		return;
	len = (size_t)n;
	for (i = 0; msg[i] != '\0' && len < sizeof(line) - 1; i++) {
		unsigned char c = (unsigned char)msg[i];

		line[len++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	line[len++] = '\n';
	log_write_stderr(line, len);
}

void
log_msg(int prio, const char *tenant, const char *fmt, ...)
{
	char msg[LOG_MAX_MSG + 1];
	va_list ap;
	int r;

	if (prio < LOG_EMERG)
		prio = LOG_EMERG;
	if (prio > LOG_DEBUG)
		prio = LOG_DEBUG;
	if (prio > atomic_load(&log_level))
		return;

	va_start(ap, fmt);
	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r < 0)
		snprintf(msg, sizeof(msg), "(unformattable log message)");

	if (atomic_load(&log_journal)) {
		if (tenant != NULL)
			r = sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d",
			    prio, "SYSLOG_IDENTIFIER=%s", log_ident,
			    "TENANT=%.*s", LOG_MAX_TENANT, tenant, NULL);
		else
			r = sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d",
			    prio, "SYSLOG_IDENTIFIER=%s", log_ident, NULL);
		if (r >= 0)
			return;
		/* journald is gone: stderr is the best we still have. */
	}
	log_to_stderr(prio, msg);
}
