/*
 * node.c - the node report (GET /api/node) and the scrape-time gauges of
 * GET /metrics (node.h).
 *
 * One SQL query lists the node's tenants (the rule of tenant_list_sql, so
 * the report and GET /api/tenants always agree) and its templates; their
 * pg_database_size() comes from the last measurement, which the measuring
 * thread renews (the first report measures itself). Templates are DEFAULT_TEMPLATE_DB, Odoo's
 * db_template and the databases of the node's role marked datistemplate.
 * A template's filestore size is a walk (fts, symbolic links not
 * followed) cached NODE_FS_TTL_S; its Odoo version is base's
 * latest_version in ir_module_module, read over a short-lived connection
 * to the template and cached NODE_VERSION_TTL_S, because while anyone is
 * connected to a template PostgreSQL refuses to clone it (a creation
 * that meets us there retries, see clone_template()). Memory and load
 * come from /proc/meminfo and /proc/loadavg, with sysinfo(2) as the
 * fallback where /proc shows only processes (ProcSubset=pid).
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/pg.h"
#include "nodo/spares.h"
#include "nodo/suspend.h"
#include "nodo/trash.h"
#include "nodo/util.h"
#include "node.h"

#define NODE_VERSION_MAX 64   /* bytes kept of latest_version */
#define NODE_EXCL_MAX    512  /* bytes, the text[] of excluded names */
#define NODE_LINE_MAX    4096 /* bytes, one line of /proc/meminfo */
#define NODE_SIZE_TTL_S  30   /* s a measurement of sizes is served */
#define NODE_SIZE_MIN_S  5    /* s at least between two measurements */

struct tmpl_cache {
	char name[NAME_MAX_LEN + 1];
	time_t fs_at; /* 0: never walked */
	uint64_t fs_bytes;
	int fs_ok;
	time_t ver_at; /* 0: never asked */
	int ver_ok;
	char version[NODE_VERSION_MAX];
};

struct dbsize {
	char name[NAME_MAX_LEN + 1];
	uint64_t bytes;
};

struct node {
	const struct tenant_ctx *t;
	char *sql_sizes; /* the report's query with pg_database_size() */
	char *sql_list;  /* the same without: names and kinds only */
	time_t start;
	pthread_mutex_t mu; /* guards everything below */
	struct tmpl_cache c[NODE_MAX_TEMPLATES];
	size_t nc;
	struct dbsize *sz; /* the last measurement, sorted by name */
	size_t nsz;
	time_t sz_at; /* when it was taken; 0: never */
	pthread_cond_t cv;
	int want; /* a report found the sizes stale */
	int stop;
	pthread_t th; /* the measuring thread */
};

/* The size of a database we may connect to; NULL (0) otherwise. */
#define NODE_SIZE_SQL(db)                                                      \
	"CASE WHEN has_database_privilege(" db ", 'CONNECT') THEN "            \
	"pg_database_size(" db ") END"

static void excluded(const struct settings *s, char *buf, size_t len);

/* The report's query; the size expressions for tenants and templates. */
static int
make_sql(char **out, const char *size_t_sql, const char *size_d_sql)
{
	return asprintf(out,
	           "SELECT kind, name, size, comment FROM ("
	           "SELECT 'tenant' AS kind, t.datname AS name, %s AS size,"
	           " t.comment AS comment FROM (%s) AS t(datname, comment)"
	           " UNION ALL"
	           " SELECT 'template', d.datname, %s, '' FROM pg_database d"
	           " WHERE d.datname NOT IN ('postgres', 'template0', "
	           "'template1')"
	           " AND left(d.datname, 6) <> '" NAME_TMP_PREFIX "'"
	           " AND (d.datname = ANY ($1::text[]) OR (d.datistemplate AND"
	           " d.datdba = (SELECT oid FROM pg_roles"
	           " WHERE rolname = current_user)))"
	           " UNION ALL" /* spares count in databases_bytes */
	           " SELECT 'spare', d.datname, %s, '' FROM pg_database d"
	           " WHERE left(d.datname, 7) = '" SPARES_PREFIX "'"
	           " AND d.datdba = (SELECT oid FROM pg_roles"
	           " WHERE rolname = current_user)"
	           " AND shobj_description(d.oid, 'pg_database')"
	           " LIKE 'nodo:op=spare;%%'"
	           ") AS u ORDER BY kind, name COLLATE \"C\"",
	           size_t_sql, tenant_list_sql, size_d_sql, size_d_sql) == -1
	    ? -1
	    : 0;
}

static int
cmp_dbsize(const void *a, const void *b)
{
	return strcmp(((const struct dbsize *)a)->name,
	    ((const struct dbsize *)b)->name);
}

/* Keeps the sizes of a result of sql_sizes as the last measurement. */
static void
store_sizes(struct node *n, const PGresult *r)
{
	struct dbsize *v;
	size_t k = 0;
	int i, rows = PQntuples(r);

	if ((v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v))) == NULL)
		return; /* the old one stays; measured again later */
	for (i = 0; i < rows; i++) {
		if (nodo_strlcpy(v[k].name, PQgetvalue(r, i, 1),
		        sizeof(v[k].name)) >= sizeof(v[k].name))
			continue;
		v[k++].bytes = PQgetisnull(r, i, 2)
		    ? 0
		    : strtoull(PQgetvalue(r, i, 2), NULL, 10);
	}
	qsort(v, k, sizeof(*v), cmp_dbsize);
	pthread_mutex_lock(&n->mu);
	free(n->sz);
	n->sz = v;
	n->nsz = k;
	n->sz_at = time(NULL);
	pthread_mutex_unlock(&n->mu);
}

/* The last measured size of a database; -1 when it was not measured. */
static int
size_of(struct node *n, const char *name, uint64_t *out)
{
	struct dbsize key, *hit;

	*out = 0;
	if (nodo_strlcpy(key.name, name, sizeof(key.name)) >= sizeof(key.name))
		return -1;
	pthread_mutex_lock(&n->mu);
	hit = n->nsz > 0
	    ? bsearch(&key, n->sz, n->nsz, sizeof(*n->sz), cmp_dbsize)
	    : NULL;
	if (hit != NULL)
		*out = hit->bytes;
	pthread_mutex_unlock(&n->mu);
	return hit != NULL ? 0 : -1;
}

/* Runs sql_sizes; the result (or NULL with detail) for the caller. */
static PGresult *
run_query(struct node *n, const char *sql, int *status, char *detail,
    size_t len)
{
	char excl[NODE_EXCL_MAX], err[256];
	const char *params[1] = { excl };
	PGresult *r;
	PGconn *c;

	if ((c = pg_pool_get(n->t->pool, err, sizeof(err))) == NULL) {
		snprintf(detail, len, "database: PostgreSQL is unreachable: %s",
		    err);
		*status = 503;
		return NULL;
	}
	excluded(n->t->s, excl, sizeof(excl));
	r = pg_query(c, sql, 1, params);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		*status = pg_conn_lost(c) ? 503 : 500;
		snprintf(detail, len, "database: %s failed: %s",
		    "listing the databases", pg_result_error(c, r));
		detail[strcspn(detail, "\n")] = '\0';
		PQclear(r);
		r = NULL;
	}
	pg_pool_put(n->t->pool, c);
	return r;
}

/*
 * Measures the sizes when a report asked for it, at most every
 * NODE_SIZE_MIN_S: pg_database_size() stats every file of every database
 * (seconds for hundreds of tenants), which no report should wait for.
 */
static void *
measurer(void *arg)
{
	struct node *n = arg;

	pthread_mutex_lock(&n->mu);
	while (!n->stop) {
		struct timespec ts;

		if (n->want && time(NULL) - n->sz_at >= NODE_SIZE_MIN_S) {
			char detail[256];
			int st;
			PGresult *r;

			n->want = 0;
			pthread_mutex_unlock(&n->mu);
			if ((r = run_query(n, n->sql_sizes, &st, detail,
			         sizeof(detail))) != NULL) {
				store_sizes(n, r);
				PQclear(r);
			} else
				log_debug("node report: %s", detail);
			pthread_mutex_lock(&n->mu);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&n->cv, &n->mu, &ts);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

struct node *
node_new(const struct tenant_ctx *t)
{
	struct node *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->t = t;
	n->start = time(NULL);
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	if (make_sql(&n->sql_sizes, NODE_SIZE_SQL("t.datname"),
	        NODE_SIZE_SQL("d.oid")) != 0 ||
	    make_sql(&n->sql_list, "NULL::bigint", "NULL::bigint") != 0 ||
	    pthread_create(&n->th, NULL, measurer, n) != 0) {
		free(n->sql_sizes);
		free(n->sql_list);
		pthread_cond_destroy(&n->cv);
		pthread_mutex_destroy(&n->mu);
		free(n);
		return NULL;
	}
	return n;
}

void
node_free(struct node *n)
{
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = 1;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->th, NULL);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	free(n->sql_sizes);
	free(n->sql_list);
	free(n->sz);
	free(n);
}

/* {"a","b"}: the names that are templates, never tenants ($1). */
static void
excluded(const struct settings *s, char *buf, size_t len)
{
	const char *names[2] = { s->default_template, s->odoo_db_template };
	size_t o = 0, i;

	buf[o++] = '{';
	for (i = 0; i < 2; i++) {
		const char *p = names[i];

		if (p == NULL || *p == '\0' || o + 4 >= len)
			continue;
		if (o > 1)
			buf[o++] = ',';
		buf[o++] = '"';
		for (; *p != '\0' && o + 4 < len; p++) {
			if (*p == '"' || *p == '\\')
				buf[o++] = '\\';
			buf[o++] = *p;
		}
		buf[o++] = '"';
	}
	buf[o++] = '}';
	buf[o] = '\0';
}

/* Apparent size of the regular files under path; -1 when unreadable. */
static int
tree_bytes(const char *path, uint64_t *out)
{
	char *argv[2];
	FTS *f;
	FTSENT *e;
	uint64_t sum = 0;
	int rc = 0;

	argv[0] = (char *)(uintptr_t)path; /* fts_open's prototype */
	argv[1] = NULL;
	if ((f = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR, NULL)) == NULL)
		return -1;
	errno = 0;
	while ((e = fts_read(f)) != NULL) {
		if (e->fts_info == FTS_F)
			sum += (uint64_t)e->fts_statp->st_size;
		else if (e->fts_info == FTS_NS || e->fts_info == FTS_ERR ||
		    (e->fts_info == FTS_DNR && e->fts_level == 0))
			rc = -1;
	}
	if (errno != 0) /* fts_read() ends with NULL and errno 0 */
		rc = -1;
	fts_close(f);
	*out = sum;
	return rc;
}

/* base's latest_version in the template, over a connection of its own. */
static int
read_version(const struct settings *s, const char *db, char *out, size_t len)
{
	static const char q[] =
	    "SELECT latest_version FROM ir_module_module WHERE name = 'base'";
	char err[256];
	PGconn *c;
	PGresult *r;
	int rc = -1;

	if ((c = pg_connect(s, db, err, sizeof(err))) == NULL) {
		log_debug("node report: cannot read the Odoo version of %s: %s",
		    db, err);
		return -1;
	}
	r = pg_query(c, q, 0, NULL);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    !PQgetisnull(r, 0, 0)) {
		nodo_strlcpy(out, PQgetvalue(r, 0, 0), len);
		rc = 0;
	} else
		log_debug("node report: no Odoo version in %s: %s", db,
		    pg_result_error(c, r));
	PQclear(r);
	PQfinish(c);
	return rc;
}

/* The cache slot of a template (made when new); NULL when full. */
static struct tmpl_cache *
slot_of(struct node *n, const char *name)
{
	size_t i;

	for (i = 0; i < n->nc; i++)
		if (strcmp(n->c[i].name, name) == 0)
			return &n->c[i];
	if (n->nc >= NODE_MAX_TEMPLATES)
		return NULL;
	memset(&n->c[n->nc], 0, sizeof(n->c[n->nc]));
	nodo_strlcpy(n->c[n->nc].name, name, sizeof(n->c[n->nc].name));
	return &n->c[n->nc++];
}

/*
 * A template's cached filestore size and Odoo version, refreshed when
 * stale. The slow parts (walk, connection) run without the lock; two
 * requests that find the same entry stale may both refresh it.
 */
static void
template_facts(struct node *n, const char *name, struct tmpl_cache *out)
{
	const struct settings *s = n->t->s;
	struct tmpl_cache *sl, cur;
	time_t now = time(NULL);
	int walk, ask;
	char path[4096];

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&n->mu);
	if ((sl = slot_of(n, name)) == NULL) {
		pthread_mutex_unlock(&n->mu);
		return;
	}
	cur = *sl;
	pthread_mutex_unlock(&n->mu);

	walk = cur.fs_at == 0 || now - cur.fs_at >= NODE_FS_TTL_S;
	ask = cur.ver_at == 0 ||
	    now - cur.ver_at >=
	        (cur.ver_ok ? NODE_VERSION_TTL_S : NODE_VERSION_RETRY_S);
	if (walk) {
		cur.fs_at = now;
		cur.fs_ok =
		    (size_t)snprintf(path, sizeof(path), "%s/filestore/%s",
		        s->data_dir, name) < sizeof(path) &&
		    tree_bytes(path, &cur.fs_bytes) == 0;
		if (!cur.fs_ok)
			cur.fs_bytes = 0;
	}
	if (ask) {
		cur.ver_at = now;
		cur.ver_ok = read_version(s, name, cur.version,
		                 sizeof(cur.version)) == 0;
	}
	if (walk || ask) {
		pthread_mutex_lock(&n->mu);
		if ((sl = slot_of(n, name)) != NULL)
			*sl = cur;
		pthread_mutex_unlock(&n->mu);
	}
	*out = cur;
}

/* MemTotal and MemAvailable (bytes) from /proc/meminfo; 0 or -1. */
static int
meminfo(uint64_t *total, uint64_t *avail)
{
	char line[NODE_LINE_MAX];
	unsigned long long kb;
	FILE *f;
	int got = 0;

	if ((f = fopen("/proc/meminfo", "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL && got != 3) {
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
			*total = (uint64_t)kb * 1024;
			got |= 1;
		} else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			*avail = (uint64_t)kb * 1024;
			got |= 2;
		}
	}
	fclose(f);
	return got == 3 ? 0 : -1;
}

struct host {
	long cpus;
	double load[3];
	uint64_t mem_total, mem_avail;
	int disk_ok;
	uint64_t disk_free, disk_total;
};

static void
host_facts(const struct settings *s, struct host *h)
{
	struct statvfs vf;
	struct sysinfo si;
	int have_si = sysinfo(&si) == 0;
	int i;

	memset(h, 0, sizeof(*h));
	h->cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (h->cpus < 1)
		h->cpus = 1;
	if (getloadavg(h->load, 3) != 3) {
		for (i = 0; i < 3; i++)
			h->load[i] = have_si
			    ? (double)si.loads[i] / (double)(1 << SI_LOAD_SHIFT)
			    : 0;
	}
	if (meminfo(&h->mem_total, &h->mem_avail) != 0 && have_si) {
		/* No page cache figure here: an underestimate. */
		h->mem_total = (uint64_t)si.totalram * si.mem_unit;
		h->mem_avail =
		    ((uint64_t)si.freeram + si.bufferram) * si.mem_unit;
	}
	if (statvfs(s->data_dir, &vf) == 0) {
		h->disk_ok = 1;
		h->disk_free = (uint64_t)vf.f_bavail * vf.f_frsize;
		h->disk_total = (uint64_t)vf.f_blocks * vf.f_frsize;
	}
}

/* The trash's entries now (CONTRACT 9), 0 when PostgreSQL cannot say. */
static long
trash_now(struct node *n)
{
	char err[256];
	PGconn *c;
	long k = -1;

	if ((c = pg_pool_get(n->t->pool, err, sizeof(err))) != NULL) {
		k = trash_count(c);
		pg_pool_put(n->t->pool, c);
	}
	return k > 0 ? k : 0;
}

int
node_report(struct node *n, cJSON **out, char *detail, size_t len)
{
	const struct settings *s = n->t->s;
	uint64_t dbsum = 0;
	long tenants = 0, suspended = 0;
	struct host h;
	PGresult *r;
	cJSON *o, *a, *d, *dd, *m, *l;
	int i, st, never, stale, missing = 0;

	*out = NULL;
	pthread_mutex_lock(&n->mu);
	never = n->sz_at == 0;
	stale = time(NULL) - n->sz_at >= NODE_SIZE_TTL_S;
	pthread_mutex_unlock(&n->mu);
	/* Sizes are measured here once; later by the measuring thread. */
	if ((r = run_query(n, never ? n->sql_sizes : n->sql_list, &st, detail,
	         len)) == NULL)
		return st;
	if (never)
		store_sizes(n, r);

	if ((o = cJSON_CreateObject()) == NULL) {
		PQclear(r);
		snprintf(detail, len, "out of memory");
		return 500;
	}
	cJSON_AddStringToObject(o, "version", NODO_VERSION);
	a = cJSON_CreateArray();
	for (i = 0; i < PQntuples(r); i++) {
		const char *kind = PQgetvalue(r, i, 0);
		const char *name = PQgetvalue(r, i, 1);
		uint64_t size;

		/* A database newer than the measurement counts 0 till the next. */
		if (size_of(n, name, &size) != 0)
			missing = 1;

		if (strcmp(kind, "tenant") == 0) {
			/* As tenant_list(): no host reaches such a name. */
			if (name_valid(name) != 0)
				continue;
			tenants++;
			suspended += suspend_marked(PQgetvalue(r, i, 3));
			dbsum += size;
		} else if (strcmp(kind, "spare") == 0) {
			dbsum += size;
		} else {
			struct tmpl_cache tc;
			cJSON *t = cJSON_CreateObject();

			template_facts(n, name, &tc);
			cJSON_AddStringToObject(t, "name", name);
			cJSON_AddNumberToObject(t, "database_bytes",
			    (double)size);
			cJSON_AddNumberToObject(t, "filestore_bytes",
			    (double)tc.fs_bytes);
			if (tc.ver_ok)
				cJSON_AddStringToObject(t, "odoo_version",
				    tc.version);
			else
				cJSON_AddNullToObject(t, "odoo_version");
			cJSON_AddItemToArray(a, t);
		}
	}
	PQclear(r);
	if (!never && (stale || missing)) {
		pthread_mutex_lock(&n->mu);
		n->want = 1;
		pthread_cond_signal(&n->cv);
		pthread_mutex_unlock(&n->mu);
	}
	cJSON_AddNumberToObject(o, "tenants", (double)tenants);
	cJSON_AddNumberToObject(o, "suspended", (double)suspended);
	cJSON_AddNumberToObject(o, "trash", (double)trash_now(n));
	cJSON_AddNumberToObject(o, "spares", (double)spares_ready());
	cJSON_AddItemToObject(o, "templates", a);
	host_facts(s, &h);
	d = cJSON_AddObjectToObject(o, "disk");
	dd = cJSON_AddObjectToObject(d, "data_dir");
	if (h.disk_ok) {
		cJSON_AddNumberToObject(dd, "free_bytes", (double)h.disk_free);
		cJSON_AddNumberToObject(dd, "total_bytes",
		    (double)h.disk_total);
	} else {
		cJSON_AddNullToObject(dd, "free_bytes");
		cJSON_AddNullToObject(dd, "total_bytes");
	}
	cJSON_AddNumberToObject(o, "databases_bytes", (double)dbsum);
	cJSON_AddNumberToObject(o, "cpus", (double)h.cpus);
	l = cJSON_AddArrayToObject(o, "load");
	for (i = 0; i < 3; i++)
		cJSON_AddItemToArray(l, cJSON_CreateNumber(h.load[i]));
	m = cJSON_AddObjectToObject(o, "memory");
	cJSON_AddNumberToObject(m, "total_bytes", (double)h.mem_total);
	cJSON_AddNumberToObject(m, "available_bytes", (double)h.mem_avail);
	if (cJSON_GetObjectItem(o, "memory") == NULL || a == NULL ||
	    l == NULL || dd == NULL) {
		cJSON_Delete(o);
		snprintf(detail, len, "out of memory");
		return 500;
	}
	*out = o;
	return 200;
}

/* ---- GET /metrics: the gauges read when scraped ------------------------ */

static void
process_metrics(const struct node *n, struct metrics_buf *b)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long long vsz = 0, rss = 0;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f;
	DIR *d;
	long fds = 0;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		metrics_family(b, "process_cpu_seconds_total", "counter",
		    "User and system CPU time spent, seconds.");
		metrics_sample(b, "process_cpu_seconds_total", "",
		    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	if ((f = fopen("/proc/self/statm", "re")) != NULL) {
		if (fscanf(f, "%llu %llu", &vsz, &rss) == 2 && page > 0) {
			metrics_family(b, "process_virtual_memory_bytes",
			    "gauge", "Virtual memory size, bytes.");
			metrics_sample_u64(b, "process_virtual_memory_bytes",
			    "", vsz * (unsigned long long)page);
			metrics_family(b, "process_resident_memory_bytes",
			    "gauge", "Resident memory size, bytes.");
			metrics_sample_u64(b, "process_resident_memory_bytes",
			    "", rss * (unsigned long long)page);
		}
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		struct dirent *de;

		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				fds++;
		closedir(d);
		metrics_family(b, "process_open_fds", "gauge",
		    "Open file descriptors (this count's own included).");
		metrics_sample_u64(b, "process_open_fds", "", (uint64_t)fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		metrics_family(b, "process_max_fds", "gauge",
		    "The limit of open file descriptors.");
		metrics_sample_u64(b, "process_max_fds", "",
		    (uint64_t)rl.rlim_cur);
	}
	metrics_family(b, "process_start_time_seconds", "gauge",
	    "Start of the process, seconds since the Unix epoch.");
	metrics_sample_u64(b, "process_start_time_seconds", "",
	    (uint64_t)n->start);
}

/* 1 when a line is one of the watcher's (its samples or comments). */
static int
watcher_line(const char *p, size_t len)
{
	static const char *const ok[] = { "nodo_watcher_",
		"# HELP nodo_watcher_", "# TYPE nodo_watcher_" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (len > strlen(ok[i]) &&
		    strncmp(p, ok[i], strlen(ok[i])) == 0)
			return 1;
	return 0;
}

/*
 * The file the watcher rewrites after every poll (rename(2): never half
 * written). Only its own lines pass; nodo_watcher_up says whether it is
 * there and fresh.
 */
static void
watcher_metrics(const struct settings *s, struct metrics_buf *b)
{
	const char *path = s->watcher_metrics_file;
	char *buf = NULL;
	struct stat st;
	ssize_t got = 0;
	time_t fresh = NODE_WATCHER_FRESH_S;
	int fd = -1, up = 0;

	if (3 * (time_t)s->watcher_interval > fresh)
		fresh = 3 * (time_t)s->watcher_interval;
	if (path != NULL && path[0] != '\0' &&
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1 &&
	    fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size <= NODE_WATCHER_MAX &&
	    (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		while (got < st.st_size) {
			ssize_t k =
			    read(fd, buf + got, (size_t)(st.st_size - got));

			if (k <= 0) {
				if (k == -1 && errno == EINTR)
					continue;
				break;
			}
			got += k;
		}
		up = time(NULL) - st.st_mtime <= fresh;
	}
	if (fd != -1)
		close(fd);
	metrics_family(b, "nodo_watcher_up", "gauge",
	    "1 when odoo-db-watcher's metrics file is there and was written "
	    "in the last polls.");
	metrics_sample_u64(b, "nodo_watcher_up", "", (uint64_t)up);
	if (buf != NULL && got > 0) {
		const char *p = buf, *end = buf + got;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = nl != NULL ? (size_t)(nl - p) : 0;

			if (nl == NULL)
				break; /* a last line without newline: cut */
			if (watcher_line(p, l)) {
				metrics_append(b, p, l);
				metrics_append(b, "\n", 1);
			}
			p = nl + 1;
		}
	}
	free(buf);
}

void
node_metrics(struct node *n, struct metrics_buf *b)
{
	const struct settings *s = n->t->s;
	struct tenant_result res;
	struct tenant *v = NULL;
	struct statvfs vf;
	size_t nt = 0, ns = 0, i;
	char err[256], lab[METRICS_MAX_LABELS];
	PGconn *c;
	int up = 0;

	if ((c = pg_pool_get(n->t->pool, err, sizeof(err))) != NULL) {
		memset(&res, 0, sizeof(res));
		up = tenant_list(n->t, c, NULL, &v, &nt, &res) == TENANT_OK;
		pg_pool_put(n->t->pool, c);
		for (i = 0; up && i < nt; i++)
			ns += v[i].suspended != 0;
		free(v);
	}
	metrics_family(b, "nodo_build_info", "gauge",
	    "The node's version, as a label; always 1.");
	metrics_labels(lab, sizeof(lab), "version", NODO_VERSION, (char *)NULL);
	metrics_sample_u64(b, "nodo_build_info", lab, 1);
	metrics_family(b, "nodo_postgres_up", "gauge",
	    "1 when PostgreSQL answered the tenant list of this scrape.");
	metrics_sample_u64(b, "nodo_postgres_up", "", (uint64_t)up);
	if (up) {
		metrics_family(b, "nodo_tenants", "gauge",
		    "Tenants by state (suspended: closed to connections).");
		metrics_sample_u64(b, "nodo_tenants", "state=\"active\"",
		    (uint64_t)(nt - ns));
		metrics_sample_u64(b, "nodo_tenants", "state=\"suspended\"",
		    (uint64_t)ns);
	}
	metrics_family(b, "nodo_trash_tenants", "gauge",
	    "Deleted tenants kept in the trash for restore.");
	metrics_sample_u64(b, "nodo_trash_tenants", "", (uint64_t)trash_now(n));
	metrics_family(b, "nodo_spare_tenants", "gauge",
	    "Fresh spares ready for the next creates (SPARE_TENANTS).");
	metrics_sample_u64(b, "nodo_spare_tenants", "",
	    (uint64_t)spares_ready());
	metrics_family(b, "nodo_spare_claims_total", "counter",
	    "Creates that used a spare instead of cloning the template.");
	metrics_sample_u64(b, "nodo_spare_claims_total", "",
	    (uint64_t)spares_claimed());
	if (statvfs(s->data_dir, &vf) == 0) {
		metrics_family(b, "nodo_data_dir_free_bytes", "gauge",
		    "Free space for the service user where the filestores "
		    "live (statvfs f_bavail).");
		metrics_sample_u64(b, "nodo_data_dir_free_bytes", "",
		    (uint64_t)vf.f_bavail * vf.f_frsize);
		metrics_family(b, "nodo_data_dir_size_bytes", "gauge",
		    "Size of the file system where the filestores live.");
		metrics_sample_u64(b, "nodo_data_dir_size_bytes", "",
		    (uint64_t)vf.f_blocks * vf.f_frsize);
	}
	process_metrics(n, b);
	watcher_metrics(s, b);
}
