/*
 * wmetrics.c - the watcher's metrics file (wmetrics.h).
 *
 * A poll counts as a success when it listed the tenants, no Cloudflare
 * call failed and Cloudflare is not in backoff; conflicts and records
 * waiting for the budget are states of the zone, not failures of the
 * watcher, so they do not hold back nodo_watcher_last_success_*. A
 * failure to write the file is logged once at warning (then at debug
 * until a write works again): metrics must never stop the watcher.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nodo/cloudflare.h"
#include "nodo/log.h"
#include "nodo/metrics.h"
#include "wmetrics.h"

#define WM_CODE_MAX  599 /* status codes 0 (no reply) .. 599 */
#define WM_FILE_MODE 0640

static const char *const wm_methods[] = { "GET", "POST", "PUT", "PATCH",
	"DELETE", "other" };
#define WM_NMETHODS (sizeof(wm_methods) / sizeof(wm_methods[0]))

struct wmetrics {
	char *path; /* NULL: no file */
	char *tmp;  /* path + ".tmp" */
	uint64_t polls;
	uint64_t cf[WM_NMETHODS][WM_CODE_MAX + 1];
	time_t last_success; /* 0: never */
	int have_facts, dns;
	struct watcher_facts f;
	int write_failed; /* logged at warning already */
};

struct wmetrics *
wmetrics_new(const char *path)
{
	struct wmetrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if (path != NULL && path[0] != '\0' &&
	    ((m->path = strdup(path)) == NULL ||
	        asprintf(&m->tmp, "%s.tmp", path) == -1)) {
		free(m->path);
		free(m);
		return NULL;
	}
	return m;
}

void
wmetrics_free(struct wmetrics *m)
{
	if (m == NULL)
		return;
	if (m->path != NULL && unlink(m->path) == -1 && errno != ENOENT)
		log_debug("metrics: cannot remove %s: %s", m->path,
		    strerror(errno));
	free(m->path);
	free(m->tmp);
	free(m);
}

void
wmetrics_cf(void *arg, const char *method, long http)
{
	struct wmetrics *m = arg;
	size_t i;

	for (i = 0; i < WM_NMETHODS - 1; i++)
		if (strcmp(method, wm_methods[i]) == 0)
			break;
	if (http < 0 || http > WM_CODE_MAX)
		http = 0;
	m->cf[i][http]++;
}

static void
render(const struct wmetrics *m, struct metrics_buf *b)
{
	char lab[METRICS_MAX_LABELS], code[8];
	size_t i, c;

	metrics_family(b, "nodo_watcher_polls_total", "counter",
	    "Polls of PostgreSQL's tenant list by odoo-db-watcher.");
	metrics_sample_u64(b, "nodo_watcher_polls_total", "", m->polls);
	metrics_family(b, "nodo_watcher_cloudflare_requests_total", "counter",
	    "Cloudflare API requests of the watcher by method and status "
	    "(code 0: no reply).");
	for (i = 0; i < WM_NMETHODS; i++)
		for (c = 0; c <= WM_CODE_MAX; c++) {
			if (m->cf[i][c] == 0)
				continue;
			snprintf(code, sizeof(code), "%zu", c);
			metrics_labels(lab, sizeof(lab), "method",
			    wm_methods[i], "code", code, (char *)NULL);
			metrics_sample_u64(b,
			    "nodo_watcher_cloudflare_requests_total", lab,
			    m->cf[i][c]);
		}
	metrics_family(b, "nodo_watcher_last_success_timestamp_seconds",
	    "gauge",
	    "End of the last successful poll, seconds since the Unix epoch "
	    "(0: none yet).");
	metrics_sample_u64(b, "nodo_watcher_last_success_timestamp_seconds", "",
	    (uint64_t)m->last_success);
	metrics_family(b, "nodo_watcher_dns_enabled", "gauge",
	    "1 when CLOUDFLARE_API_TOKEN is set and the watcher keeps "
	    "records.");
	metrics_sample_u64(b, "nodo_watcher_dns_enabled", "", (uint64_t)m->dns);
	if (!m->have_facts)
		return;
	metrics_family(b, "nodo_watcher_postgres_up", "gauge",
	    "1 when the last poll could list the tenants.");
	metrics_sample_u64(b, "nodo_watcher_postgres_up", "",
	    (uint64_t)m->f.listed);
	metrics_family(b, "nodo_watcher_tenants", "gauge",
	    "Tenants the last poll listed.");
	metrics_sample_u64(b, "nodo_watcher_tenants", "", m->f.tenants);
	metrics_family(b, "nodo_watcher_records", "gauge",
	    "Tenants whose CNAME is in place.");
	metrics_sample_u64(b, "nodo_watcher_records", "", m->f.records);
	metrics_family(b, "nodo_watcher_conflicts", "gauge",
	    "Tenants whose name is held by a record the node does not own.");
	metrics_sample_u64(b, "nodo_watcher_conflicts", "", m->f.conflicts);
	metrics_family(b, "nodo_watcher_pending_records", "gauge",
	    "Tenants still without their record (budget, backoff, failure).");
	metrics_sample_u64(b, "nodo_watcher_pending_records", "", m->f.pending);
}

/* Writes the whole file under tmp, then renames it over path. */
static void
write_file(struct wmetrics *m)
{
	struct metrics_buf b;
	size_t off = 0;
	int fd, ok = 0;

	if (m->path == NULL)
		return;
	metrics_buf_init(&b);
	render(m, &b);
	if (b.nomem || b.p == NULL) {
		log_warn("metrics: out of memory");
		metrics_buf_free(&b);
		return;
	}
	fd = open(m->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    WM_FILE_MODE);
	if (fd != -1) {
		ok = 1;
		while (off < b.len) {
			ssize_t n = write(fd, b.p + off, b.len - off);

			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				ok = 0;
				break;
			}
			off += (size_t)n;
		}
		/* UMask=0077 would leave it to us: the API's group reads. */
		if (ok && fchmod(fd, WM_FILE_MODE) != 0)
			ok = 0;
		if (close(fd) != 0)
			ok = 0;
		if (ok && rename(m->tmp, m->path) != 0)
			ok = 0;
		if (!ok)
			unlink(m->tmp);
	}
	if (!ok)
		log_msg(m->write_failed ? LOG_DEBUG : LOG_WARNING, NULL,
		    "metrics: cannot write %s: %s (WATCHER_METRICS_FILE; "
		    "GET /metrics will lack the watcher's figures)",
		    m->path, strerror(errno));
	else if (m->write_failed)
		log_info("metrics: %s written again", m->path);
	m->write_failed = !ok;
	metrics_buf_free(&b);
}

void
wmetrics_poll(struct wmetrics *m, struct watcher *w)
{
	if (m == NULL)
		return;
	m->polls++;
	m->dns = 1;
	watcher_facts(w, &m->f);
	m->have_facts = 1;
	if (m->f.listed && m->f.failed == 0 && !m->f.cf_backoff)
		m->last_success = time(NULL);
	write_file(m);
}

void
wmetrics_idle(struct wmetrics *m)
{
	if (m == NULL)
		return;
	m->dns = 0;
	m->last_success = time(NULL);
	write_file(m);
}
