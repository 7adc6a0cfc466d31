/*
 * backup.c - Odoo-format backups streamed while they are made (backup.h).
 *
 * Consistency: the manifest and pg_dump read one snapshot, exported by a
 * REPEATABLE READ transaction that stays open until pg_dump is done. The
 * filestore is walked after that snapshot was taken: Odoo names its files
 * by their SHA-1 and never rewrites one, so every file a row of the
 * snapshot refers to is already there; files added meanwhile are extra
 * (Odoo's garbage collection removes unreferenced files after a restore),
 * and the only file that can be missing is one whose attachment was
 * deleted after the snapshot and collected before the walk reached it.
 *
 * Threads: the producer (one per backup, detached) is the only user of
 * the archive, the snapshot connection and pg_dump; the ring is shared
 * with the reader under b->mu. The struct is freed by whichever of the two
 * lets go last.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>

#include "nodo/backup.h"
#include "nodo/filestore.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/pgtool.h"
#include "nodo/util.h"

enum { B_RUNNING, B_DONE, B_FAILED };

struct backup {
	pthread_mutex_t mu;
	pthread_cond_t data;  /* the reader waits for bytes */
	pthread_cond_t space; /* the producer waits for room */
	char *ring;
	size_t head, len; /* read position, bytes held */
	int state;
	int cancelled;
	int refs; /* reader and producer */
	struct backup_waker waker;
	int has_waker, armed;
	int halted;                   /* backup_halt_all: the reader fails */
	struct backup *rprev, *rnext; /* readers attached (reg_mu) */

	/* The producer's alone: */
	const struct tenant_ctx *t;
	char name[NAME_MAX_LEN + 1];
	char snapshot[64];
	char *manifest;
	PGconn *snap;
	struct archive *a;
	int discard; /* failed: what libarchive still writes goes nowhere */
	char *io;
	struct pgtool_child ch;
	unsigned long long out_bytes, files;
	struct timespec start;
	char why[600]; /* a failure, for the log */
};

static atomic_int running;

/* The backups a reader holds, for backup_halt_all (then b->mu). */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct backup *readers;

static void
reg_add(struct backup *b)
{
	pthread_mutex_lock(&reg_mu);
	b->rprev = NULL;
	b->rnext = readers;
	if (readers != NULL)
		readers->rprev = b;
	readers = b;
	pthread_mutex_unlock(&reg_mu);
}

static void
reg_del(struct backup *b)
{
	pthread_mutex_lock(&reg_mu);
	if (b->rprev != NULL)
		b->rprev->rnext = b->rnext;
	else if (readers == b)
		readers = b->rnext;
	if (b->rnext != NULL)
		b->rnext->rprev = b->rprev;
	b->rprev = b->rnext = NULL;
	pthread_mutex_unlock(&reg_mu);
}

int
backup_running(void)
{
	return atomic_load(&running);
}

static void
backup_free(struct backup *b)
{
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->data);
	pthread_cond_destroy(&b->space);
	free(b->ring);
	free(b->io);
	free(b->manifest);
	if (b->snap != NULL)
		PQfinish(b->snap);
	free(b);
}

/* Drops one reference (lock held on entry, released here). */
static void
unref_unlock(struct backup *b)
{
	int last = --b->refs == 0;

	pthread_mutex_unlock(&b->mu);
	if (last)
		backup_free(b);
}

/* Tells the reader there is something (lock held). */
static void
wake_reader(struct backup *b)
{
	if (b->armed) {
		b->armed = 0;
		b->waker.resume(b->waker.arg);
	}
	pthread_cond_signal(&b->data);
}

/* Producer: appends n bytes, waiting for room. 0, or -1 when cancelled. */
static int
ring_put(struct backup *b, const char *p, size_t n)
{
	pthread_mutex_lock(&b->mu);
	while (n > 0) {
		size_t tail, k;

		while (b->len == BACKUP_RING_BYTES && !b->cancelled)
			pthread_cond_wait(&b->space, &b->mu);
		if (b->cancelled) {
			pthread_mutex_unlock(&b->mu);
			return -1;
		}
		tail = (b->head + b->len) % BACKUP_RING_BYTES;
		k = BACKUP_RING_BYTES - b->len;
		if (k > BACKUP_RING_BYTES - tail)
			k = BACKUP_RING_BYTES - tail;
		if (k > n)
			k = n;
		memcpy(b->ring + tail, p, k);
		b->len += k;
		p += k;
		n -= k;
		wake_reader(b);
	}
	pthread_mutex_unlock(&b->mu);
	return 0;
}

ssize_t
backup_read(struct backup *b, char *buf, size_t max, int wait_ms)
{
	ssize_t ret = 0;
	int waited = 0;

	pthread_mutex_lock(&b->mu);
	for (;;) {
		if (b->len > 0) {
			size_t k = b->len, first;

			if (k > max)
				k = max;
			first = BACKUP_RING_BYTES - b->head;
			if (first > k)
				first = k;
			memcpy(buf, b->ring + b->head, first);
			memcpy(buf + first, b->ring, k - first);
			b->head = (b->head + k) % BACKUP_RING_BYTES;
			b->len -= k;
			pthread_cond_signal(&b->space);
			ret = (ssize_t)k;
			break;
		}
		if (b->state == B_DONE) {
			ret = BACKUP_EOF;
			break;
		}
		if (b->state == B_FAILED || b->halted) {
			ret = BACKUP_FAILED;
			break;
		}
		if (b->has_waker) {
			b->armed = 1;
			b->waker.suspend(b->waker.arg);
			break;
		}
		if (waited || wait_ms <= 0)
			break;
		{
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait_ms / 1000;
			ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&b->data, &b->mu, &ts);
		}
		waited = 1;
	}
	pthread_mutex_unlock(&b->mu);
	return ret;
}

void
backup_release(struct backup *b)
{
	if (b == NULL)
		return;
	reg_del(b);
	pthread_mutex_lock(&b->mu);
	if (b->state == B_RUNNING)
		b->cancelled = 1;
	b->armed = 0;
	b->has_waker = 0;
	pthread_cond_signal(&b->space);
	unref_unlock(b);
}

void
backup_halt_all(void)
{
	struct backup *b;

	pthread_mutex_lock(&reg_mu);
	for (b = readers; b != NULL; b = b->rnext) {
		pthread_mutex_lock(&b->mu);
		b->halted = 1;
		if (b->state == B_RUNNING)
			b->cancelled = 1;
		wake_reader(b);
		pthread_cond_signal(&b->space);
		pthread_mutex_unlock(&b->mu);
	}
	pthread_mutex_unlock(&reg_mu);
}

/* -- the zip ---------------------------------------------------------- */

static int why(struct backup *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static la_ssize_t
zip_write(struct archive *a, void *cls, const void *buf, size_t n)
{
	struct backup *b = cls;

	/*
	 * Never an error for libarchive: an archive in its FATAL state is
	 * freed without ending its zlib stream (a leak per failed backup).
	 * A failure instead discards the rest, so that the reader never
	 * gets the end of a zip that looks complete.
	 */
	if (b->discard)
		return (la_ssize_t)n;
	if (ring_put(b, buf, n) != 0) {
		b->discard = 1;
		why(b, "the reader went away");
		return (la_ssize_t)n;
	}
	b->out_bytes += n;
	return (la_ssize_t)n;
}

static int
why(struct backup *b, const char *fmt, ...)
{
	va_list ap;

	if (b->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(b->why, sizeof(b->why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* One member's header: a regular file, size < 0 when unknown. */
static int
member_header(struct backup *b, const char *path, long long size, time_t mtime)
{
	struct archive_entry *e = archive_entry_new();
	int rc;

	if (e == NULL)
		return why(b, "out of memory");
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, mtime, 0);
	if (size >= 0)
		archive_entry_set_size(e, size);
	else
		archive_entry_unset_size(e);
	rc = archive_write_header(b->a, e);
	archive_entry_free(e);
	if (rc < ARCHIVE_WARN)
		return why(b, "zip: %s: %s", path, archive_error_string(b->a));
	return 0;
}

static int
member_data(struct backup *b, const char *p, size_t n)
{
	if (b->discard)
		return -1;
	while (n > 0) {
		la_ssize_t w = archive_write_data(b->a, p, n);

		if (w <= 0)
			return why(b, "zip: %s", archive_error_string(b->a));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
add_manifest(struct backup *b)
{
	size_t n = strlen(b->manifest);

	if (member_header(b, "manifest.json", (long long)n, time(NULL)) != 0 ||
	    member_data(b, b->manifest, n) != 0)
		return -1;
	return 0;
}

/* fs_walk_files callback: one filestore file. */
static int
add_file(void *arg, int dirfd, const char *name, const char *rel,
    const struct stat *st)
{
	struct backup *b = arg;
	char path[4200];
	struct stat fst;
	off_t left;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) /* collected meanwhile */
			return 0;
		return why(b, "filestore: cannot open %s: %s", rel,
		    strerror(errno));
	}
	if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) ||
	    fst.st_ino != st->st_ino || fst.st_dev != st->st_dev) {
		close(fd); /* swapped meanwhile: not the file we looked at */
		return 0;
	}
	snprintf(path, sizeof(path), "filestore/%s", rel);
	if (member_header(b, path, (long long)fst.st_size,
	        fst.st_mtim.tv_sec) != 0) {
		close(fd);
		return -1;
	}
	/* Exactly the size declared, even if the file changed. */
	for (left = fst.st_size; left > 0;) {
		size_t want =
		    left < BACKUP_IO_BYTES ? (size_t)left : BACKUP_IO_BYTES;
		ssize_t r = read(fd, b->io, want);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0) /* shrank: pad to the declared size */
				memset(b->io, 0, want);
			else {
				int e = errno;

				close(fd);
				return why(b, "filestore: cannot read %s: %s",
				    rel, strerror(e));
			}
			r = (ssize_t)want;
		}
		if (member_data(b, b->io, (size_t)r) != 0) {
			close(fd);
			return -1;
		}
		left -= r;
	}
	close(fd);
	b->files++;
	return 0;
}

static int
add_filestore(struct backup *b)
{
	char dir[4096], err[512];

	if ((size_t)snprintf(dir, sizeof(dir), "%s/filestore/%s",
	        b->t->s->data_dir, b->name) >= sizeof(dir))
		return why(b, "filestore: path too long");
	if (fs_walk_files(dir, add_file, b, err, sizeof(err)) == 0)
		return 0;
	if (errno == ENOENT && fs_exists(dir) == 0)
		return 0; /* a tenant without files */
	return why(b, "filestore: %s", err);
}

static int
add_dump(struct backup *b)
{
	char snap[96], db[96], msg[PGTOOL_ERR_MAX + 1], err[512];
	const char *argv[] = { "pg_dump", "--no-owner", "--no-password", snap,
		db, NULL };
	int rc, failed = 0;

	snprintf(snap, sizeof(snap), "--snapshot=%s", b->snapshot);
	snprintf(db, sizeof(db), "--dbname=%s", b->name);
	if (member_header(b, "dump.sql", -1, time(NULL)) != 0)
		return -1;
	if (pgtool_spawn(b->t->s, "pg_dump", argv, BACKUP_APPNAME, -1, &b->ch,
	        err, sizeof(err)) != 0)
		return why(b, "%s", err);
	for (;;) {
		ssize_t r = read(b->ch.out, b->io, BACKUP_IO_BYTES);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			failed = why(b, "pg_dump: reading its output: %s",
			    strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (member_data(b, b->io, (size_t)r) != 0) {
			failed = -1;
			break;
		}
	}
	if (failed)
		pgtool_kill(&b->ch);
	rc = pgtool_wait(&b->ch, msg, sizeof(msg));
	if (failed)
		return -1;
	if (rc != 0)
		return why(b, "pg_dump exited with status %d: %s", rc,
		    msg[0] ? msg : "(no message)");
	return 0;
}

static void *
producer(void *arg)
{
	struct backup *b = arg;
	struct timespec end;
	int rc = -1;

	if ((b->a = archive_write_new()) == NULL) {
		why(b, "out of memory");
		goto done;
	}
	if (archive_write_set_format_zip(b->a) != ARCHIVE_OK ||
	    archive_write_zip_set_compression_deflate(b->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(b->a, BACKUP_IO_BYTES) !=
	        ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(b->a, 1) != ARCHIVE_OK ||
	    archive_write_open(b->a, b, NULL, zip_write, NULL) != ARCHIVE_OK) {
		why(b, "zip: %s", archive_error_string(b->a));
		goto done;
	}
	if (add_manifest(b) == 0 && add_filestore(b) == 0 && add_dump(b) == 0)
		rc = 0;
	/* A failure: libarchive ends its streams, writing to nowhere. */
	b->discard = rc != 0;
	if (archive_write_close(b->a) != ARCHIVE_OK && rc == 0)
		rc = why(b, "zip: %s", archive_error_string(b->a));
done:
	if (b->a != NULL)
		archive_write_free(b->a);
	b->a = NULL;
	/* The snapshot's transaction is not needed any more. */
	if (b->snap != NULL) {
		PQfinish(b->snap);
		b->snap = NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	pthread_mutex_lock(&b->mu);
	{
		double s = (double)(end.tv_sec - b->start.tv_sec) +
		    (double)(end.tv_nsec - b->start.tv_nsec) / 1e9;

		if (rc == 0)
			log_msg(LOG_INFO, b->name,
			    "backup of %s complete: %llu bytes, %llu "
			    "filestore files, %.1f s",
			    b->name, b->out_bytes, b->files, s);
		else if (b->cancelled)
			log_msg(LOG_WARNING, b->name,
			    "backup of %s cancelled after %llu bytes, %.1f s: "
			    "the client went away",
			    b->name, b->out_bytes, s);
		else
			log_msg(LOG_ERR, b->name,
			    "backup of %s failed after %llu bytes, %.1f s: %s "
			    "(the download is aborted)",
			    b->name, b->out_bytes, s, b->why);
	}
	b->state = rc == 0 ? B_DONE : B_FAILED;
	wake_reader(b);
	atomic_fetch_sub(&running, 1);
	unref_unlock(b);
	return NULL;
}

/* -- the manifest ----------------------------------------------------- */

/* "18.0.1.3" (base's latest_version) -> Odoo's release "18.0". */
static void
odoo_release(const char *v, char *out, size_t len)
{
	const char *dot = strchr(v, '.');
	const char *end = dot != NULL ? strchr(dot + 1, '.') : NULL;
	size_t n = end != NULL ? (size_t)(end - v) : strlen(v);

	if (n >= len)
		n = len - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

/* Odoo's version_info: [18, 0, 0, "final", 0, ""]. */
static cJSON *
version_info(const char *release)
{
	cJSON *a = cJSON_CreateArray();
	char major[32];
	const char *dot = strchr(release, '.');
	size_t n = dot != NULL ? (size_t)(dot - release) : strlen(release);
	char *end;
	long minor = dot != NULL ? strtol(dot + 1, &end, 10) : 0;
	long mj;

	if (a == NULL)
		return NULL;
	if (n >= sizeof(major))
		n = sizeof(major) - 1;
	memcpy(major, release, n);
	major[n] = '\0';
	mj = strtol(major, &end, 10);
	if (*major != '\0' && *end == '\0')
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)mj));
	else /* "saas~17" */
		cJSON_AddItemToArray(a, cJSON_CreateString(major));
	cJSON_AddItemToArray(a, cJSON_CreateNumber((double)minor));
	cJSON_AddItemToArray(a, cJSON_CreateNumber(0));
	cJSON_AddItemToArray(a, cJSON_CreateString("final"));
	cJSON_AddItemToArray(a, cJSON_CreateNumber(0));
	cJSON_AddItemToArray(a, cJSON_CreateString(""));
	return a;
}

char *
backup_manifest_json(PGconn *c, const char *db, char *err, size_t errlen)
{
	static const char sql[] =
	    "SELECT name, coalesce(latest_version, '') FROM ir_module_module"
	    " WHERE state = 'installed' ORDER BY name COLLATE \"C\"";
	char release[32] = "", pgv[32];
	int sv = PQserverVersion(c), i;
	cJSON *o, *mods;
	PGresult *r;
	char *text;

	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "manifest: reading ir_module_module: %s",
		    PQresultErrorMessage(r));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		return NULL;
	}
	if ((o = cJSON_CreateObject()) == NULL) {
		PQclear(r);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, 0), "base") == 0)
			odoo_release(PQgetvalue(r, i, 1), release,
			    sizeof(release));
	/* Odoo writes "%d.%d" % divmod(server_version / 100, 100). */
	snprintf(pgv, sizeof(pgv), "%d.%d", sv / 10000, (sv / 100) % 100);
	cJSON_AddStringToObject(o, "odoo_dump", "1");
	cJSON_AddStringToObject(o, "db_name", db);
	cJSON_AddStringToObject(o, "version", release);
	cJSON_AddItemToObject(o, "version_info", version_info(release));
	cJSON_AddStringToObject(o, "major_version", release);
	cJSON_AddStringToObject(o, "pg_version", pgv);
	mods = cJSON_AddObjectToObject(o, "modules");
	for (i = 0; i < PQntuples(r); i++)
		cJSON_AddStringToObject(mods, PQgetvalue(r, i, 0),
		    PQgetvalue(r, i, 1));
	PQclear(r);
	text = cJSON_Print(o);
	cJSON_Delete(o);
	if (text == NULL)
		snprintf(err, errlen, "out of memory");
	return text;
}

static void
copy_str(const cJSON *o, const char *key, char *out, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	out[0] = '\0';
	if (cJSON_IsString(v) && strlen(v->valuestring) < len)
		nodo_strlcpy(out, v->valuestring, len);
}

int
backup_manifest_parse(const char *text, size_t len, struct backup_manifest *m,
    char *err, size_t errlen)
{
	cJSON *o;

	memset(m, 0, sizeof(*m));
	if (len > BACKUP_MANIFEST_MAX) {
		snprintf(err, errlen, "manifest.json: larger than %d bytes",
		    BACKUP_MANIFEST_MAX);
		return -1;
	}
	o = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		snprintf(err, errlen, "manifest.json: not a JSON object");
		return -1;
	}
	copy_str(o, "db_name", m->db_name, sizeof(m->db_name));
	copy_str(o, "version", m->version, sizeof(m->version));
	copy_str(o, "major_version", m->major_version,
	    sizeof(m->major_version));
	cJSON_Delete(o);
	return 0;
}

/* -- start ------------------------------------------------------------ */

static enum tenant_err
start_fail(struct tenant_result *res, enum tenant_err e, const char *what,
    const char *msg)
{
	size_t n =
	    (size_t)snprintf(res->detail, sizeof(res->detail), "%s: ", what);

	if (n < sizeof(res->detail))
		nodo_strlcpy(res->detail + n, msg, sizeof(res->detail) - n);
	res->detail[strcspn(res->detail, "\n")] = '\0';
	return e;
}

/* The snapshot and the manifest, on a connection to the tenant. */
static enum tenant_err
open_snapshot(struct backup *b, struct tenant_result *res)
{
	char err[512];
	PGresult *r;

	if ((b->snap = pg_connect(b->t->s, b->name, err, sizeof(err))) == NULL)
		return start_fail(res, TENANT_DB_UNAVAILABLE, "database", err);
	if (pg_exec(b->snap, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
	        0, NULL, err, sizeof(err), NULL) != 0)
		return start_fail(res, TENANT_INTERNAL, "database", err);
	r = PQexec(b->snap, "SELECT pg_export_snapshot()");
	if (PQresultStatus(r) != PGRES_TUPLES_OK ||
	    strlen(PQgetvalue(r, 0, 0)) >= sizeof(b->snapshot)) {
		enum tenant_err e = start_fail(res, TENANT_INTERNAL,
		    "database: exporting a snapshot", PQresultErrorMessage(r));

		PQclear(r);
		return e;
	}
	nodo_strlcpy(b->snapshot, PQgetvalue(r, 0, 0), sizeof(b->snapshot));
	PQclear(r);
	if ((b->manifest = backup_manifest_json(b->snap, b->name, err,
	         sizeof(err))) == NULL)
		return start_fail(res, TENANT_INTERNAL, "backup", err);
	return TENANT_OK;
}

enum tenant_err
backup_start(const struct tenant_ctx *t, const char *name,
    const struct backup_waker *waker, struct backup **out, int *busy,
    struct tenant_result *res)
{
	struct tenant_detail d;
	struct backup *b;
	pthread_attr_t attr;
	pthread_t th;
	enum tenant_err e;
	char err[256];
	PGconn *c;

	*out = NULL;
	*busy = 0;
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL)
		return start_fail(res, TENANT_DB_UNAVAILABLE,
		    "database: PostgreSQL is unreachable", err);
	e = tenant_find(t, c, name, &d, res);
	pg_pool_put(t->pool, c);
	if (e != TENANT_OK)
		return e;
	if (d.suspended)
		return start_fail(res, TENANT_NOT_FOUND, "subdomain",
		    "the tenant is suspended; resume it to back it up");
	if (atomic_fetch_add(&running, 1) >= BACKUP_MAX_RUNNING) {
		atomic_fetch_sub(&running, 1);
		*busy = 1;
		snprintf(res->detail, sizeof(res->detail),
		    "backup: %d backups are running already; retry later",
		    BACKUP_MAX_RUNNING);
		return TENANT_INTERNAL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->ring = malloc(BACKUP_RING_BYTES)) == NULL ||
	    (b->io = malloc(BACKUP_IO_BYTES)) == NULL) {
		if (b != NULL) {
			free(b->ring);
			free(b);
		}
		atomic_fetch_sub(&running, 1);
		return start_fail(res, TENANT_INTERNAL, "backup",
		    "out of memory");
	}
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->data, NULL);
	pthread_cond_init(&b->space, NULL);
	b->t = t;
	b->refs = 2;
	b->ch.pid = -1;
	b->ch.out = b->ch.errf = -1;
	nodo_strlcpy(b->name, name, sizeof(b->name));
	if (waker != NULL) {
		b->waker = *waker;
		b->has_waker = 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b->start);
	if ((e = open_snapshot(b, res)) != TENANT_OK) {
		atomic_fetch_sub(&running, 1);
		backup_free(b);
		return e;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, producer, b) != 0) {
		pthread_attr_destroy(&attr);
		atomic_fetch_sub(&running, 1);
		backup_free(b);
		return start_fail(res, TENANT_INTERNAL, "backup",
		    "cannot start a thread");
	}
	pthread_attr_destroy(&attr);
	log_msg(LOG_INFO, name, "backup of %s started", name);
	reg_add(b);
	*out = b;
	return TENANT_OK;
}
