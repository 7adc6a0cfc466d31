/*
 * restore.c - a tenant from a backup zip (see restore.h for the steps).
 *
 * Learnt from Odoo's restore_db (ODOO.md), not copied: the database is
 * made from template0 with the C collation, dump.sql and filestore/ are
 * the only members taken, a copy regenerates the identity. Unlike Odoo
 * the dump is checked first and run in one transaction that stops at the
 * first error, so a failed restore leaves nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <archive.h>
#include <archive_entry.h>

#include "nodo/filestore.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/odoo.h"
#include "nodo/pg.h"
#include "nodo/pgtool.h"
#include "nodo/restore.h"
#include "nodo/tenant_steps.h"
#include "nodo/util.h"

#define RESTORE_TMP_HEX  16    /* random hex digits of the internal name */
#define RESTORE_IO_BYTES 65536 /* one read of the archive */
#define RESTORE_SQL_MAX  1024  /* one statement we format */

static const char *const codes[] = {
	[RESTORE_OK] = "ok",
	[RESTORE_TENANT] = "internal_error",
	[RESTORE_INVALID] = "invalid_backup",
	[RESTORE_INCOMPATIBLE] = "incompatible_backup",
	[RESTORE_NO_SPACE] = "insufficient_storage",
	[RESTORE_NO_ADDONS] = "neutralize_unavailable",
};

const char *
restore_strerror(enum restore_err e, enum tenant_err te)
{
	if (e == RESTORE_TENANT)
		return tenant_strerror(te);
	if ((size_t)e >= sizeof(codes) / sizeof(codes[0]))
		return "internal_error";
	return codes[e];
}

static enum restore_err rfail(struct restore_result *out, enum restore_err e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum restore_err
rfail(struct restore_result *out, enum restore_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->r.detail, sizeof(out->r.detail), fmt, ap);
	va_end(ap);
	return e;
}

static enum restore_err
tfail(struct restore_result *out, enum tenant_err e)
{
	out->e = e;
	return RESTORE_TENANT;
}

/* What the archive holds, read from its directory before anything is made. */
struct inventory {
	int has_dump, has_manifest;
	unsigned long long dump_bytes, fs_bytes, members;
};

static struct archive *
open_zip(int fd)
{
	struct archive *a = archive_read_new();

	if (a == NULL)
		return NULL;
	archive_read_support_format_zip_seekable(a);
	if (lseek(fd, 0, SEEK_SET) != 0 ||
	    archive_read_open_fd(a, fd, RESTORE_IO_BYTES) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/*
 * A member's path must stay inside the archive: relative, no "." or ".."
 * component, no backslash, no empty component (but a folder's final '/').
 */
static int
path_ok(const char *p)
{
	const char *c = p;

	if (*p == '\0' || *p == '/' || strchr(p, '\\') != NULL)
		return 0;
	while (*c != '\0') {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += n;
		if (*c == '/')
			c++;
	}
	return 1;
}

/* 1: dump.sql, 2: manifest.json, 3: under filestore/, 0: ignored. */
static int
member_kind(const char *p)
{
	if (strcmp(p, "dump.sql") == 0)
		return 1;
	if (strcmp(p, "manifest.json") == 0)
		return 2;
	if (strncmp(p, "filestore/", 10) == 0 && p[10] != '\0')
		return 3;
	return 0;
}

/* Checks one entry's name and type; 0, or -1 with out's detail. */
static int
check_entry(struct archive_entry *en, struct restore_result *out)
{
	const char *p = archive_entry_pathname(en);
	mode_t type = archive_entry_filetype(en);

	if (p == NULL) {
		rfail(out, RESTORE_INVALID, "archive: a member without a name");
		return -1;
	}
	if (!path_ok(p)) {
		rfail(out, RESTORE_INVALID,
		    "archive: member '%.200s' is outside the archive "
		    "(absolute, '..' or '\\')",
		    p);
		return -1;
	}
	if (archive_entry_hardlink(en) != NULL || type == AE_IFLNK ||
	    archive_entry_symlink(en) != NULL) {
		rfail(out, RESTORE_INVALID,
		    "archive: member '%.200s' is a link", p);
		return -1;
	}
	if (type != AE_IFREG && type != AE_IFDIR) {
		rfail(out, RESTORE_INVALID,
		    "archive: member '%.200s' is neither a file nor a folder",
		    p);
		return -1;
	}
	return 0;
}

static enum restore_err
inspect(const struct settings *s, int fd, struct inventory *inv,
    struct restore_result *out)
{
	struct archive *a;
	struct archive_entry *en;
	struct stat st;
	unsigned long long total = 0, cap;
	enum restore_err e = RESTORE_OK;
	int r;

	memset(inv, 0, sizeof(*inv));
	if (fstat(fd, &st) != 0)
		return rfail(out, RESTORE_TENANT, "body: %s", strerror(errno));
	if ((a = open_zip(fd)) == NULL)
		return rfail(out, RESTORE_INVALID, "archive: not a zip file");
	cap = (unsigned long long)s->restore_max_bytes * RESTORE_EXPAND_MAX;
	while ((r = archive_read_next_header(a, &en)) == ARCHIVE_OK) {
		const char *p;
		unsigned long long size;

		if (check_entry(en, out) != 0) {
			e = RESTORE_INVALID;
			goto out;
		}
		p = archive_entry_pathname(en);
		size =
		    archive_entry_size_is_set(en) && archive_entry_size(en) > 0
		    ? (unsigned long long)archive_entry_size(en)
		    : 0;
		if (++inv->members > RESTORE_MEMBERS_MAX) {
			e = rfail(out, RESTORE_INVALID,
			    "archive: more than %d members",
			    RESTORE_MEMBERS_MAX);
			goto out;
		}
		total += size;
		if (archive_entry_filetype(en) == AE_IFDIR)
			continue;
		switch (member_kind(p)) {
		case 1:
			if (inv->has_dump++) {
				e = rfail(out, RESTORE_INVALID,
				    "archive: dump.sql twice");
				goto out;
			}
			inv->dump_bytes = size;
			break;
		case 2: {
			char *buf;
			la_ssize_t n;
			char err[256];

			if (inv->has_manifest++ || size > BACKUP_MANIFEST_MAX) {
				e = rfail(out, RESTORE_INVALID,
				    "manifest.json: %s",
				    size > BACKUP_MANIFEST_MAX ? "too large"
				                               : "twice");
				goto out;
			}
			if ((buf = malloc(BACKUP_MANIFEST_MAX + 1)) == NULL) {
				e = rfail(out, RESTORE_TENANT, "out of memory");
				goto out;
			}
			n = archive_read_data(a, buf, BACKUP_MANIFEST_MAX + 1);
			if (n < 0 || (size_t)n > BACKUP_MANIFEST_MAX ||
			    backup_manifest_parse(buf, (size_t)n, &out->m, err,
			        sizeof(err)) != 0) {
				free(buf);
				e = rfail(out, RESTORE_INVALID,
				    "manifest.json: unreadable (%s)",
				    n < 0 ? archive_error_string(a) : err);
				goto out;
			}
			free(buf);
			break;
		}
		case 3:
			inv->fs_bytes += size;
			break;
		default:
			break;
		}
	}
	if (r != ARCHIVE_EOF) {
		e = rfail(out, RESTORE_INVALID, "archive: %s",
		    inv->members == 0 ? "not a zip file"
		                      : "unreadable directory");
		goto out;
	}
	if (!inv->has_dump) {
		e = rfail(out, RESTORE_INVALID,
		    "archive: no dump.sql at its root (not an Odoo backup)");
		goto out;
	}
	if (total > cap ||
	    total > (unsigned long long)st.st_size * RESTORE_RATIO_MAX + 65536)
		e = rfail(out, RESTORE_INVALID,
		    "archive: a zip bomb (%llu bytes uncompressed from %lld: "
		    "over %d:1 or %d x RESTORE_MAX_BYTES)",
		    total, (long long)st.st_size, RESTORE_RATIO_MAX,
		    RESTORE_EXPAND_MAX);
out:
	archive_read_free(a);
	return e;
}

/* "18.0" of "18.0.1.3" (base's latest_version) or of "saas~17.2". */
static void
major_of(const char *v, char *out, size_t len)
{
	const char *p = v;
	size_t n;

	if (strncmp(p, "saas~", 5) == 0)
		p += 5;
	n = strcspn(p, ".");
	if (p[n] == '.')
		n += 1 + strcspn(p + n + 1, ".");
	if (n >= len)
		n = len - 1;
	memcpy(out, v, (size_t)(p - v) + n < len ? (size_t)(p - v) + n : n);
	out[(size_t)(p - v) + n < len ? (size_t)(p - v) + n : n] = '\0';
}

/* The manifest's major_version against DEFAULT_TEMPLATE_DB's Odoo. */
static enum restore_err
check_version(const struct settings *s, struct restore_result *out)
{
	static const char q[] =
	    "SELECT latest_version FROM ir_module_module WHERE name = 'base'";
	char err[256], have[32], want[32];
	PGconn *c;
	PGresult *r;
	enum restore_err e = RESTORE_OK;

	if (out->m.major_version[0] == '\0')
		return RESTORE_OK; /* no manifest, or no such key */
	if ((c = pg_connect(s, s->default_template, err, sizeof(err))) ==
	    NULL) {
		log_warn("restore: cannot read the Odoo version of %s (%s): "
		         "not compared",
		    s->default_template, err);
		return RESTORE_OK;
	}
	r = pg_query(c, q, 0, NULL);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    !PQgetisnull(r, 0, 0)) {
		major_of(PQgetvalue(r, 0, 0), have, sizeof(have));
		major_of(out->m.major_version, want, sizeof(want));
		if (strcmp(have, want) != 0)
			e = rfail(out, RESTORE_INCOMPATIBLE,
			    "manifest.json: major_version %.31s, but this node "
			    "runs Odoo %.31s (%s)",
			    out->m.major_version, have, s->default_template);
	}
	PQclear(r);
	PQfinish(c);
	return e;
}

static enum restore_err
check_space(const struct settings *s, const struct inventory *inv,
    struct restore_result *out)
{
	struct statvfs v;
	unsigned long long avail, need;

	if (statvfs(s->data_dir, &v) != 0)
		return rfail(out, RESTORE_TENANT, "filestore: statvfs %s: %s",
		    s->data_dir, strerror(errno));
	avail = (unsigned long long)v.f_bavail * v.f_frsize;
	need = inv->fs_bytes + inv->dump_bytes + RESTORE_DISK_MARGIN;
	if (need > avail)
		return rfail(out, RESTORE_NO_SPACE,
		    "filestore: %llu bytes needed in %s (files %llu, dump "
		    "%llu), %llu free",
		    need, s->data_dir, inv->fs_bytes, inv->dump_bytes, avail);
	return RESTORE_OK;
}

/* -- extraction -------------------------------------------------------- */

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Opens (making them) the folders of rel under root; the last one's fd. */
static int
open_parent(int root, char *rel, const char **leaf)
{
	int dfd = dup(root), depth = 0;
	char *c = rel, *slash;

	while (dfd >= 0 && (slash = strchr(c, '/')) != NULL) {
		int nfd;

		*slash = '\0';
		if (++depth > RESTORE_DEPTH_MAX ||
		    (mkdirat(dfd, c, 0700) != 0 && errno != EEXIST)) {
			close(dfd);
			return -1;
		}
		nfd = openat(dfd, c,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
		dfd = nfd;
		*slash = '/';
		c = slash + 1;
	}
	*leaf = c;
	return dfd;
}

/* fsyncs every folder of the tree at dfd (consumed), deepest first. */
static int
sync_tree(int dfd, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (d == NULL) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int sub;

		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 || depth > RESTORE_DEPTH_MAX)
			continue;
		sub = openat(dirfd(d), de->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 || sync_tree(sub, depth + 1) != 0)
			rc = -1;
	}
	if (fsync(dirfd(d)) != 0)
		rc = -1;
	closedir(d);
	return rc;
}

struct extract {
	int dump_fd;    /* the filtered dump, unlinked */
	const char *fs; /* filestore/<tmp> */
	int fs_made;
	char key[33]; /* our \restrict key */
};

/*
 * Copies one member's data to fd (or through the scanner), refusing more
 * than it declared and a ratio over RESTORE_RATIO_MAX of what was read of
 * the archive meanwhile.
 */
static int
copy_member(struct archive *a, struct archive_entry *en, int fd,
    struct restore_scan *sc, struct restore_result *out)
{
	const char *p = archive_entry_pathname(en);
	unsigned long long declared =
	    archive_entry_size_is_set(en) && archive_entry_size(en) > 0
	    ? (unsigned long long)archive_entry_size(en)
	    : 0;
	unsigned long long produced = 0;
	la_int64_t start = archive_filter_bytes(a, -1);
	const void *buf;
	size_t n;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(a, &buf, &n, &off)) == ARCHIVE_OK) {
		unsigned long long read_in =
		    (unsigned long long)(archive_filter_bytes(a, -1) - start);

		produced += n;
		if (produced > declared ||
		    produced > (read_in + 65536) * RESTORE_RATIO_MAX) {
			rfail(out, RESTORE_INVALID,
			    "archive: member '%.200s' is a zip bomb (%llu "
			    "bytes from %llu, declared %llu)",
			    p, produced, read_in, declared);
			return -1;
		}
		if (sc != NULL) {
			if (restore_scan_feed(sc, buf, n) != 0) {
				rfail(out, RESTORE_INVALID, "%s",
				    restore_scan_error(sc));
				return -1;
			}
		} else if (write_all(fd, buf, n) != 0) {
			if (errno == ENOSPC)
				rfail(out, RESTORE_NO_SPACE,
				    "filestore: no space left writing '%.200s'",
				    p);
			else
				rfail(out, RESTORE_TENANT,
				    "filestore: cannot write '%.200s': %s", p,
				    strerror(errno));
			return -1;
		}
	}
	if (r != ARCHIVE_EOF) {
		rfail(out, RESTORE_INVALID, "archive: member '%.200s': %s", p,
		    archive_error_string(a));
		return -1;
	}
	return 0;
}

static enum restore_err
extract(int zfd, struct extract *x, struct restore_result *out)
{
	struct archive *a;
	struct archive_entry *en;
	struct restore_scan *sc = NULL;
	enum restore_err e = RESTORE_OK;
	int root = -1, r;
	char hdr[64];

	if ((a = open_zip(zfd)) == NULL)
		return rfail(out, RESTORE_INVALID, "archive: not a zip file");
	if (mkdir(x->fs, 0700) != 0) {
		e = rfail(out, RESTORE_TENANT, "filestore: mkdir %s: %s", x->fs,
		    strerror(errno));
		goto out;
	}
	x->fs_made = 1;
	root = open(x->fs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	snprintf(hdr, sizeof(hdr), "\\restrict %s\n", x->key);
	if (root < 0 || write_all(x->dump_fd, hdr, strlen(hdr)) != 0 ||
	    (sc = restore_scan_new(x->dump_fd)) == NULL) {
		e = rfail(out, RESTORE_TENANT, "restore: %s", strerror(errno));
		goto out;
	}
	while ((r = archive_read_next_header(a, &en)) == ARCHIVE_OK) {
		char rel[PATH_MAX];
		const char *leaf;
		int kind, dfd, fd;

		if (check_entry(en, out) != 0) {
			e = RESTORE_INVALID;
			goto out;
		}
		kind = member_kind(archive_entry_pathname(en));
		if (kind == 1) {
			if (copy_member(a, en, -1, sc, out) != 0 ||
			    restore_scan_end(sc) != 0) {
				if (out->r.detail[0] == '\0')
					rfail(out, RESTORE_INVALID, "%s",
					    restore_scan_error(sc));
				/* Our disk, not the dump: 507 or 500. */
				e = strstr(out->r.detail, "cannot write") ==
				        NULL
				    ? RESTORE_INVALID
				    : strstr(out->r.detail, "No space") != NULL
				    ? RESTORE_NO_SPACE
				    : RESTORE_TENANT;
				goto out;
			}
			continue;
		}
		if (kind != 3)
			continue;
		if (snprintf(rel, sizeof(rel), "%s",
		        archive_entry_pathname(en) + 10) >= (int)sizeof(rel)) {
			e = rfail(out, RESTORE_INVALID,
			    "archive: a path too long");
			goto out;
		}
		if (archive_entry_filetype(en) == AE_IFDIR) {
			size_t l = strlen(rel);

			if (l > 0 && rel[l - 1] != '/' && l + 1 < sizeof(rel))
				memcpy(rel + l, "/", 2);
			if ((dfd = open_parent(root, rel, &leaf)) < 0) {
				e = rfail(out, RESTORE_INVALID,
				    "archive: folder '%.200s' cannot be made "
				    "(%s)",
				    rel, strerror(errno));
				goto out;
			}
			close(dfd);
			continue;
		}
		if ((dfd = open_parent(root, rel, &leaf)) < 0 ||
		    (fd = openat(dfd, leaf,
		         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		         0600)) < 0) {
			e = rfail(out, RESTORE_INVALID,
			    "archive: filestore/%.200s cannot be made (%s)",
			    rel,
			    errno == EEXIST ? "twice in the archive"
			                    : strerror(errno));
			if (dfd >= 0)
				close(dfd);
			goto out;
		}
		close(dfd);
		if (copy_member(a, en, fd, NULL, out) != 0 || fsync(fd) != 0) {
			if (out->r.detail[0] == '\0')
				rfail(out, RESTORE_TENANT, "filestore: fsync");
			close(fd);
			e = strncmp(out->r.detail, "archive", 7) == 0
			    ? RESTORE_INVALID
			    : strstr(out->r.detail, "no space") != NULL
			    ? RESTORE_NO_SPACE
			    : RESTORE_TENANT;
			goto out;
		}
		close(fd);
	}
	if (r != ARCHIVE_EOF) {
		e = rfail(out, RESTORE_INVALID, "archive: %s",
		    archive_error_string(a));
		goto out;
	}
	if (fsync(x->dump_fd) != 0 || sync_tree(root, 0) != 0) {
		root = -1;
		e = rfail(out, RESTORE_TENANT, "filestore: fsync: %s",
		    strerror(errno));
		goto out;
	}
	root = -1;
out:
	if (root >= 0)
		close(root);
	restore_scan_free(sc);
	archive_read_free(a);
	return e;
}

/* -- the database ------------------------------------------------------ */

static enum restore_err
create_db(PGconn *c, const char *tmp, const char *name, const char *domain,
    struct restore_result *out)
{
	char sql[RESTORE_SQL_MAX], text[400], err[512];

	snprintf(text, sizeof(text),
	    TENANT_COMMENT_PREFIX "op=create;target=%s;domain=%s", name,
	    domain);
	if (fmt_sql(c, sql, sizeof(sql),
	        "CREATE DATABASE %s ENCODING 'unicode' LC_COLLATE 'C' "
	        "TEMPLATE template0",
	        tmp, NULL, NULL) != 0)
		return rfail(out, RESTORE_TENANT, "out of memory");
	if (pg_exec_long(c, sql, err, sizeof(err), NULL) != 0)
		return tfail(out,
		    tenant_db_fail(&out->r, c, "CREATE DATABASE", err));
	if (fmt_sql(c, sql, sizeof(sql), "COMMENT ON DATABASE %s IS %s", tmp,
	        NULL, text) != 0 ||
	    pg_exec(c, sql, 0, NULL, err, sizeof(err), NULL) != 0)
		return tfail(out,
		    tenant_db_fail(&out->r, c, "COMMENT ON DATABASE", err));
	/* Only the node's role (the owner) until publish() grants it. */
	if (fmt_sql(c, sql, sizeof(sql),
	        "REVOKE CONNECT ON DATABASE %s FROM PUBLIC", tmp, NULL,
	        NULL) != 0 ||
	    pg_exec(c, sql, 0, NULL, err, sizeof(err), NULL) != 0)
		return tfail(out,
		    tenant_db_fail(&out->r, c, "REVOKE CONNECT", err));
	terminate_sessions(c, tmp);
	return RESTORE_OK;
}

/* psql runs the filtered dump (stdin), as the node's role. */
static enum restore_err
run_psql(const struct settings *s, const char *tmp, int dump_fd,
    struct restore_result *out)
{
	char dbarg[128], msg[PGTOOL_ERR_MAX];
	const char *argv[] = { "psql", "-X", "-q", "--single-transaction", "-v",
		"ON_ERROR_STOP=1", "-o", "/dev/null", "-d", dbarg, "-f", "-",
		NULL };
	struct pgtool_child ch;
	char err[256];
	int rc;

	snprintf(dbarg, sizeof(dbarg), "dbname=%s", tmp);
	if (lseek(dump_fd, 0, SEEK_SET) != 0 ||
	    pgtool_spawn(s, "psql", argv, RESTORE_APPNAME, dump_fd, &ch, err,
	        sizeof(err)) != 0)
		return rfail(out, RESTORE_TENANT, "restore: %s", err);
	/* Results go to /dev/null (-o): its stdout pipe stays empty. */
	rc = pgtool_wait(&ch, msg, sizeof(msg));
	if (rc == 0)
		return RESTORE_OK;
	if (strstr(msg, "connection to server") != NULL) {
		out->e = TENANT_DB_UNAVAILABLE;
		rfail(out, RESTORE_TENANT, "database: psql: %.400s", msg);
		return RESTORE_TENANT;
	}
	/* "psql:<stdin>:N: ERROR: ...": N counts our \restrict line. */
	if (strncmp(msg, "psql:<stdin>:", 13) == 0) {
		char *end;
		long line = strtol(msg + 13, &end, 10);

		if (end != msg + 13 && *end == ':')
			return rfail(out, RESTORE_INVALID,
			    "dump.sql line %ld: psql stopped (exit %d), "
			    "nothing "
			    "was restored:%.400s",
			    line - 1, rc, end + 1);
	}
	return rfail(out, RESTORE_INVALID,
	    "dump.sql: psql stopped (exit %d), nothing was restored: %.400s",
	    rc, msg[0] ? msg : "no message");
}

/* Runs each installed module's data/neutralize.sql, as Odoo does. */
static enum restore_err
neutralize(const struct settings *s, PGconn *c, struct restore_result *out)
{
	static const char q[] =
	    "SELECT name FROM ir_module_module WHERE state IN"
	    " ('installed', 'to upgrade', 'to remove') ORDER BY name";
	PGresult *r = pg_query(c, q, 0, NULL);
	enum restore_err e = RESTORE_OK;
	int i, ran = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = rfail(out, RESTORE_INVALID,
		    "dump.sql: no module table (ir_module_module): %.300s",
		    pg_result_error(c, r));
		PQclear(r);
		return e;
	}
	for (i = 0; i < PQntuples(r) && e == RESTORE_OK; i++) {
		const char *mod = PQgetvalue(r, i, 0);
		const char *d = s->addons_path;

		if (strspn(mod, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
		        strlen(mod) ||
		    strlen(mod) > NAME_MAX)
			continue;
		while (*d != '\0') {
			size_t n = strcspn(d, ",");
			char dir[PATH_MAX], path[PATH_MAX];
			const char *b = d, *en = d + n;
			int fd;

			while (b < en && (*b == ' ' || *b == '\t'))
				b++;
			while (en > b && (en[-1] == ' ' || en[-1] == '\t'))
				en--;
			d += n + (d[n] == ',');
			if (en == b || (size_t)(en - b) >= sizeof(dir))
				continue;
			memcpy(dir, b, (size_t)(en - b));
			dir[en - b] = '\0';
			if ((size_t)snprintf(path, sizeof(path),
			        "%s/%s/data/neutralize.sql", dir,
			        mod) >= sizeof(path) ||
			    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				continue;
			{
				char *sql = malloc(RESTORE_SQL_FILE_MAX + 1);
				ssize_t got = 0, k;
				PGresult *x;

				while (sql != NULL &&
				    (k = read(fd, sql + got,
				         (size_t)(RESTORE_SQL_FILE_MAX -
				             got))) > 0 &&
				    got < RESTORE_SQL_FILE_MAX)
					got += k;
				close(fd);
				if (sql == NULL) {
					e = rfail(out, RESTORE_TENANT,
					    "out of memory");
					break;
				}
				sql[got] = '\0';
				x = PQexec(c, sql);
				free(sql);
				if (PQresultStatus(x) != PGRES_COMMAND_OK &&
				    PQresultStatus(x) != PGRES_TUPLES_OK)
					e = rfail(out, RESTORE_TENANT,
					    "neutralize: %.200s: %.200s", path,
					    pg_result_error(c, x));
				PQclear(x);
				ran++;
			}
			break; /* the first folder that has the module */
		}
	}
	PQclear(r);
	if (e == RESTORE_OK)
		log_info("restore: neutralized (%d module script(s))", ran);
	return e;
}

/* Step 5: the URL, a new identity for a copy, neutralization. */
static enum restore_err
configure(const struct tenant_ctx *t, const char *tmp,
    const struct restore_request *req, const char *domain,
    struct restore_result *out)
{
	char err[512], keys[256], vals[512], secret[37], uuid[37], date[32];
	PGconn *c;
	struct tm tm;
	time_t now = time(NULL);
	enum restore_err e = RESTORE_OK;

	if (req->copy) {
		if (odoo_uuid(secret, 4) != 0 || odoo_uuid(uuid, 1) != 0)
			return rfail(out, RESTORE_TENANT, "no randomness");
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(keys, sizeof(keys),
		    "{web.base.url,web.base.url.freeze,database.secret,"
		    "database.uuid,database.create_date}");
		snprintf(vals, sizeof(vals),
		    "{https://%s.%s,True,%s,%s,\"%s\"}", req->subdomain, domain,
		    secret, uuid, date);
	} else {
		snprintf(keys, sizeof(keys),
		    "{web.base.url,web.base.url.freeze}");
		snprintf(vals, sizeof(vals), "{https://%s.%s,True}",
		    req->subdomain, domain);
	}
	if ((c = pg_connect(t->s, tmp, err, sizeof(err))) == NULL) {
		out->e = TENANT_DB_UNAVAILABLE;
		rfail(out, RESTORE_TENANT,
		    "database: cannot connect to the restored database: %s",
		    err);
		return RESTORE_TENANT;
	}
	if (pg_exec(c, "BEGIN", 0, NULL, err, sizeof(err), NULL) != 0) {
		e = tfail(out, tenant_db_fail(&out->r, c, "BEGIN", err));
		goto done;
	}
	if (odoo_set_params(c, keys, vals, err, sizeof(err)) != 0) {
		e = pg_conn_lost(c)
		    ? tfail(out, tenant_db_fail(&out->r, c, "configure", err))
		    : rfail(out, RESTORE_INVALID,
		          "dump.sql: not an Odoo database "
		          "(ir_config_parameter: "
		          "%.300s)",
		          err);
		goto done;
	}
	if (req->neutralize && (e = neutralize(t->s, c, out)) != RESTORE_OK)
		goto done;
	if (pg_exec(c, "COMMIT", 0, NULL, err, sizeof(err), NULL) != 0)
		e = tfail(out, tenant_db_fail(&out->r, c, "COMMIT", err));
done:
	PQfinish(c);
	return e;
}

int
restore_tmpfile(const char *dir)
{
	char path[PATH_MAX];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 ||
	    (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	if ((size_t)snprintf(path, sizeof(path), "%s/.nodo-restore-XXXXXX",
	        dir) >= sizeof(path))
		return -1;
	if ((fd = mkostemp(path, O_CLOEXEC)) >= 0)
		unlink(path);
	return fd;
}

static void
dns_step(const struct settings *s, struct cf_client *cf,
    const struct restore_request *req, const char *domain,
    struct tenant_dns *dns)
{
	const struct zone *z = settings_zone(s, domain);
	struct cf_result cr;

	if (!req->takeover) {
		dns_create(s, cf, req->subdomain, domain, dns);
		return;
	}
	snprintf(dns->name, sizeof(dns->name), "%s.%s", req->subdomain, domain);
	if (!s->dns_enabled || cf == NULL || z == NULL ||
	    s->cf_target == NULL || z->zone_id[0] == '\0') {
		dns->status = CF_DISABLED;
		return;
	}
	cf_takeover_cname(cf, z->zone_id, dns->name, s->cf_target, &cr);
	dns->status = cr.status;
	nodo_strlcpy(dns->record_id, cr.record_id, sizeof(dns->record_id));
	nodo_strlcpy(dns->detail, cr.detail, sizeof(dns->detail));
	log_msg(cr.status == CF_CREATED || cr.status == CF_EXISTS ? LOG_INFO
	                                                          : LOG_WARNING,
	    req->subdomain, "dns %s (takeover): %s%s%s", dns->name,
	    cf_status_str(cr.status), cr.detail[0] ? ": " : "", cr.detail);
}

/* The steps of restore.h, as the log names them. */
enum {
	ST_INSPECT,
	ST_CREATE,
	ST_EXTRACT,
	ST_PSQL,
	ST_CONFIGURE,
	ST_PUBLISH,
	ST_DNS,
	ST_COUNT
};

static const char *const step_names[ST_COUNT] = { "inspect", "create",
	"extract", "psql", "configure", "publish", "dns" };

/*
 * Step i begins: its time, and a debug line, so that the log of a process
 * killed part-way says where it was (test_restore_crash.py reads it).
 */
static void
step(struct timespec ts[], int i, const char *sub)
{
	clock_gettime(CLOCK_MONOTONIC, &ts[i]);
	if (i < ST_COUNT)
		log_msg(LOG_DEBUG, sub, "restore of %s: step %s", sub,
		    step_names[i]);
}

/* Steps 1 to 6 under the create lock and a pool connection. */
static enum restore_err
restore_database(const struct tenant_ctx *t, const struct restore_request *req,
    const char *domain, struct restore_result *out, struct timespec ts[])
{
	const struct settings *s = t->s;
	char tmp[sizeof(NAME_TMP_PREFIX) + RESTORE_TMP_HEX], err[512];
	char fs_tmp[PATH_MAX], fs_dst[PATH_MAX], fsdir[PATH_MAX];
	struct inventory inv;
	struct extract x;
	PGconn *c = NULL;
	enum restore_err e;
	int created = 0, moved = 0, rc, is_templ = 0;

	memset(&x, 0, sizeof(x));
	x.dump_fd = -1;
	snprintf(tmp, sizeof(tmp), "%s", NAME_TMP_PREFIX);
	if (random_hex(tmp + strlen(NAME_TMP_PREFIX), RESTORE_TMP_HEX) != 0 ||
	    random_hex(x.key, 32) != 0 ||
	    fs_path(s, tmp, fs_tmp, sizeof(fs_tmp)) != 0 ||
	    fs_path(s, req->subdomain, fs_dst, sizeof(fs_dst)) != 0 ||
	    (size_t)snprintf(fsdir, sizeof(fsdir), "%s/filestore",
	        s->data_dir) >= sizeof(fsdir))
		return rfail(out, RESTORE_TENANT,
		    "internal: cannot make names");
	x.fs = fs_tmp;
	step(ts, ST_INSPECT, req->subdomain);
	if ((e = inspect(s, req->fd, &inv, out)) != RESTORE_OK ||
	    (e = check_version(s, out)) != RESTORE_OK ||
	    (e = check_space(s, &inv, out)) != RESTORE_OK)
		return e;
	step(ts, ST_CREATE, req->subdomain);
	tenant_op_begin();
	if ((c = pg_pool_get(t->pool, err, sizeof(err))) == NULL) {
		out->e = TENANT_DB_UNAVAILABLE;
		e = rfail(out, RESTORE_TENANT,
		    "database: PostgreSQL is unreachable: %s", err);
		goto out;
	}
	switch (db_exists(c, req->subdomain, &is_templ)) {
	case 0:
		break;
	case 1:
		out->e = is_templ ? TENANT_RESERVED : TENANT_EXISTS;
		e = rfail(out, RESTORE_TENANT, "subdomain: '%s' %s",
		    req->subdomain,
		    is_templ ? "is a template database" : "already exists");
		goto out;
	default:
		e = tfail(out,
		    tenant_db_fail(&out->r, c, "looking up the subdomain",
		        PQerrorMessage(c)));
		goto out;
	}
	if ((rc = fs_exists(fs_dst)) != 0) {
		out->e = rc == 1 ? TENANT_EXISTS : TENANT_INTERNAL;
		e = rfail(out, RESTORE_TENANT,
		    "subdomain: filestore folder %s %s", fs_dst,
		    rc == 1 ? "already exists; move it away" : "unreadable");
		goto out;
	}
	if (mkdir(fsdir, 0700) != 0 && errno != EEXIST) {
		e = rfail(out, RESTORE_TENANT, "filestore: mkdir %s: %s", fsdir,
		    strerror(errno));
		goto out;
	}
	if ((x.dump_fd = restore_tmpfile(s->data_dir)) < 0) {
		e = rfail(out, RESTORE_TENANT, "restore: temp file in %s: %s",
		    s->data_dir, strerror(errno));
		goto out;
	}
	if ((e = create_db(c, tmp, req->subdomain, domain, out)) != RESTORE_OK)
		goto out;
	created = 1;
	step(ts, ST_EXTRACT, req->subdomain);
	if ((e = extract(req->fd, &x, out)) != RESTORE_OK)
		goto out;
	step(ts, ST_PSQL, req->subdomain);
	if ((e = run_psql(s, tmp, x.dump_fd, out)) != RESTORE_OK)
		goto out;
	close(x.dump_fd);
	x.dump_fd = -1;
	step(ts, ST_CONFIGURE, req->subdomain);
	if ((e = configure(t, tmp, req, domain, out)) != RESTORE_OK)
		goto out;
	step(ts, ST_PUBLISH, req->subdomain);
	if (renameat2(AT_FDCWD, fs_tmp, AT_FDCWD, fs_dst, RENAME_NOREPLACE) !=
	    0) {
		out->e = errno == EEXIST ? TENANT_EXISTS : TENANT_INTERNAL;
		e = rfail(out, RESTORE_TENANT, "filestore: rename to %s: %s",
		    fs_dst, strerror(errno));
		goto out;
	}
	moved = 1;
	if (fs_sync_parent(fs_dst, err, sizeof(err)) != 0) {
		e = rfail(out, RESTORE_TENANT, "filestore: %s", err);
		goto out;
	}
	terminate_sessions(c, tmp);
	out->e = publish(c, tmp, req->subdomain, domain, "", &out->r);
	if (out->e != TENANT_OK && pg_conn_lost(c)) {
		switch (publish_outcome(t, tmp, req->subdomain)) {
		case 1:
			out->e = TENANT_OK;
			out->r.detail[0] = '\0';
			break;
		case -1:
			created = moved = 0; /* maybe published: keep all */
			break;
		default:
			break;
		}
	}
	if (out->e != TENANT_OK) {
		e = RESTORE_TENANT;
		goto out;
	}
	created = moved = 0;
	e = RESTORE_OK;
out:
	if (x.dump_fd >= 0)
		close(x.dump_fd);
	if (moved && rename(fs_dst, fs_tmp) != 0)
		log_msg(LOG_ERR, req->subdomain, "cannot move %s back: %s",
		    fs_dst, strerror(errno));
	if (e != RESTORE_OK && x.fs_made)
		fs_remove_tree(fs_tmp);
	if (created && c != NULL &&
	    drop_database(c, tmp, err, sizeof(err)) != 0)
		log_msg(LOG_ERR, req->subdomain,
		    "cannot drop %s (removed at next clean-up): %s", tmp, err);
	if (c != NULL)
		pg_pool_put(t->pool, c);
	tenant_op_end();
	return e;
}

enum restore_err
restore_run(const struct tenant_ctx *t, struct cf_client *cf,
    const struct restore_request *req, struct restore_result *out)
{
	const struct settings *s = t->s;
	struct tenant_request tr;
	const struct zone *z;
	const char *domain;
	struct timespec ts[ST_COUNT + 1];
	char steps[256];
	long long t0;
	enum restore_err e;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&tr, 0, sizeof(tr));
	tr.subdomain = req->subdomain;
	tr.domain = req->domain;
	tr.password = "-"; /* no password: the backup's own is kept */
	tr.password_len = 1;
	if ((out->e = tenant_validate(t, &tr, &out->r)) != TENANT_OK)
		return RESTORE_TENANT;
	if (req->neutralize &&
	    (s->addons_path == NULL || s->addons_path[0] == '\0'))
		return rfail(out, RESTORE_NO_ADDONS,
		    "neutralize: odoo.conf (%s) has no addons_path: the "
		    "modules' data/neutralize.sql cannot be found",
		    s->odoo_conf != NULL ? s->odoo_conf : "ODOO_CONF");
	domain = req->domain != NULL ? req->domain : s->odoo_domain;
	if ((z = settings_zone(s, domain)) != NULL)
		domain = z->domain;
	snprintf(out->domain, sizeof(out->domain), "%s", domain);
	if ((rc = busy_claim(req->subdomain)) != 0) {
		out->e = rc == -1 ? TENANT_EXISTS : TENANT_INTERNAL;
		return rfail(out, RESTORE_TENANT,
		    rc == -1 ? "subdomain: '%s' is being created or deleted "
		               "right now"
		             : "too many operations at once (%s); retry later",
		    req->subdomain);
	}
	t0 = nodo_mono_ms();
	memset(ts, 0, sizeof(ts));
	e = restore_database(t, req, domain, out, ts);
	if (e == RESTORE_OK) {
		step(ts, ST_DNS, req->subdomain);
		dns_step(s, cf, req, domain, &out->r.dns);
		step(ts, ST_COUNT, req->subdomain);
	}
	busy_release(req->subdomain);
	steps_text(steps, sizeof(steps), step_names, ts, ST_COUNT);
	if (e == RESTORE_TENANT && out->e == TENANT_OK)
		out->e = TENANT_INTERNAL;
	if (e == RESTORE_OK)
		log_msg(LOG_INFO, req->subdomain,
		    "tenant %s restored (%s%s, from %s %s) in %lld ms, dns "
		    "%s: %s",
		    req->subdomain, req->copy ? "copy" : "move",
		    req->neutralize ? ", neutralized" : "",
		    out->m.db_name[0] ? out->m.db_name : "?",
		    out->m.version[0] ? out->m.version : "?",
		    nodo_mono_ms() - t0, cf_status_str(out->r.dns.status),
		    steps);
	else
		log_msg(e == RESTORE_TENANT &&
		            (out->e == TENANT_INTERNAL ||
		                out->e == TENANT_DB_UNAVAILABLE)
		        ? LOG_ERR
		        : LOG_WARNING,
		    req->subdomain, "tenant %s not restored (%s): %s: %s",
		    req->subdomain, restore_strerror(e, out->e), out->r.detail,
		    steps);
	return e;
}
