/*
 * spares.c - ready clones of DEFAULT_TEMPLATE_DB (spares.h, CONTRACT 11).
 *
 * The making of a spare, as steps (each with what a crash right after it
 * leaves for tenant_cleanup() at the next start):
 *
 *   1. identity of the template (below) before; nothing made yet;
 *   2. CREATE DATABASE _nodo_s<hex> TEMPLATE t ALLOW_CONNECTIONS false:
 *      a database without comment = debris: the clean-up drops it (and
 *      ends the backend that may still be copying it);
 *   3. filestore/t copied to filestore/_nodo_s<hex>, fsynced: debris too
 *      (a folder under the internal prefix whose database is no spare);
 *   4. identity after: not the one of 1 (the template changed during the
 *      copy) = both dropped at once;
 *   5. COMMENT 'nodo:op=spare;template=t;stamp=<identity of 1>': a spare.
 *      The clean-up leaves it (and its folder) alone from now on.
 *
 * The identity of the template, read without connecting to it (a session
 * on it would make every clone fail with 55006): its oid (re-made: a new
 * oid), its tup_inserted + tup_updated + tup_deleted and stats_reset in
 * pg_stat_database (a row written, DDL, which writes catalog rows, a
 * TRUNCATE, which updates pg_class), and a hash of its filestore tree
 * (every regular file's path, size and mtime in ns, walked without
 * following links). Read-only sessions (xact_commit) are left out: a
 * login to the template must not make the spares stale.
 *
 * The counters lag: a backend sends its counts at most once a second
 * while it stays connected, and always when it exits, before it leaves
 * pg_stat_activity (pgstat's shutdown hook runs before_shmem_exit, the
 * activity slot is cleared on_shmem_exit). So the identity is trusted only
 * when no client backend is connected to the template: when one is, no
 * spare is made and none is claimed (the create clones, ending those
 * sessions as it always did). With nobody connected every write committed
 * so far is counted. Step 4 closes the window of the copy itself (a
 * session that came, wrote and left during steps 2-3), and a claim reads
 * the identity again before it renames the spare.
 *
 * Limits: with track_counts off the counters never move: spares are then
 * off (logged). A sequence advanced by nextval() alone, without a row
 * written, is not seen.
 *
 * Priorities: this thread runs at nice 19 and I/O class idle (the filestore
 * copy); the PostgreSQL backend that copies the database is a process of
 * the postgres user and keeps its own priority (no way to lower it from
 * here), hence the rule that a create cancels a clone in flight and that
 * none is started while creates run or for SPARES_QUIET_MS after.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/ioprio.h>
#include <openssl/evp.h>

#include "nodo/filestore.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/pg.h"
#include "nodo/spares.h"
#include "nodo/tenant_steps.h"
#include "nodo/util.h"

#define SPARES_TICK_MS    500  /* the thread looks this often */
#define SPARES_QUIET_MS   1000 /* creates stopped this long: make one */
#define SPARES_RECHECK_MS 5000 /* all spares fresh: look again after */
#define SPARES_HEX        16   /* random hex digits of a spare's name */
#define SPARES_NICE       19   /* nice of the thread */
#define SPARES_STAMP_MAX  160  /* bytes of an identity */
#define SPARES_SQL_MAX    1024 /* bytes of one statement we format */
#define SPARES_JOIN_S     10   /* spares_stop waits this for the thread */
#define SPARES_MAX_SEEN   64   /* spares looked at per pass */
/*
 * PostgreSQL 15's clone strategy for spares (DESIGN.md "Spares"):
 * WAL_LOG writes the template through the WAL, FILE_COPY forces two
 * checkpoints that write every tenant's dirty buffers at once.
 */
#define SPARES_STRATEGY "WAL_LOG"

struct spare {
	char name[NAME_MAX_LEN + 1];
	char stamp[SPARES_STAMP_MAX];
};

struct spares {
	const struct tenant_ctx *t;
	pthread_t th;
	pthread_mutex_t mu; /* stop, wake */
	pthread_cond_t cv;
	int stop;
	int wake;
	PGconn *c; /* the thread's own connection */
	int warned_counts;
	int clean; /* the last pass found no spare (SPARE_TENANTS 0) */
};

/*
 * SPARE_TENANTS as it is now: a reload (SIGHUP) may change it; the rest
 * of what the thread reads is restart-only.
 */
static int
want_spares(const struct spares *sp)
{
	const struct settings *s;
	int n;

	if (sp->t->live == NULL)
		return sp->t->s->spare_tenants;
	s = settings_live_get(sp->t->live);
	n = s->spare_tenants;
	settings_live_put(sp->t->live, s);
	return n;
}

/* The state creates share with the thread, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct spares *running;
static struct spare ready[SETTINGS_MAX_SPARES];
static int nready;
static char claiming[SETTINGS_MAX_SPARES][NAME_MAX_LEN + 1];
static PGcancel *inflight;       /* a spare's CREATE DATABASE running */
static struct timespec last_end; /* the last create's end (monotonic) */
static atomic_int creates;       /* creates running */
static atomic_ulong nclaimed;
static unsigned long taken; /* spares taken off the list, ever */

int
spares_ready(void)
{
	int n;

	pthread_mutex_lock(&mu);
	n = running != NULL ? nready : 0;
	pthread_mutex_unlock(&mu);
	return n;
}

unsigned long
spares_claimed(void)
{
	return atomic_load(&nclaimed);
}

static void
wake(void)
{
	struct spares *sp;

	pthread_mutex_lock(&mu);
	if ((sp = running) != NULL) {
		pthread_mutex_lock(&sp->mu);
		sp->wake = 1;
		pthread_cond_signal(&sp->cv);
		pthread_mutex_unlock(&sp->mu);
	}
	pthread_mutex_unlock(&mu);
}

void
spares_create_begin(void)
{
	char err[256];

	atomic_fetch_add(&creates, 1);
	pthread_mutex_lock(&mu);
	/* A request to the server, no reply awaited beyond its receipt. */
	if (inflight != NULL && !PQcancel(inflight, err, sizeof(err)))
		log_debug("spares: cannot cancel a clone: %s", err);
	pthread_mutex_unlock(&mu);
}

void
spares_create_end(void)
{
	pthread_mutex_lock(&mu);
	clock_gettime(CLOCK_MONOTONIC, &last_end);
	pthread_mutex_unlock(&mu);
	atomic_fetch_sub(&creates, 1);
	wake();
}

/* ---- the template's identity ------------------------------------------ */

struct fs_hash {
	EVP_MD_CTX *md;
	unsigned long long files;
};

static int
hash_file(void *arg, int dirfd, const char *name, const char *rel,
    const struct stat *st)
{
	struct fs_hash *h = arg;
	char buf[96];
	int n;

	n = snprintf(buf, sizeof(buf), "%lld %lld.%09ld",
	    (long long)st->st_size, (long long)st->st_mtim.tv_sec,
	    st->st_mtim.tv_nsec);
	h->files++;
	/* rel and buf are each ended by their NUL: no two lists collide. */
	return EVP_DigestUpdate(h->md, rel, strlen(rel) + 1) == 1 &&
	        EVP_DigestUpdate(h->md, buf, (size_t)n + 1) == 1
	    ? 0
	    : -1;
}

/*
 * The filestore tree's stamp into out: "none" when the folder does not
 * exist, else "<files>:<24 hex of SHA-256>". 0 or -1 (logged).
 */
static int
fs_stamp(const char *root, char *out, size_t len)
{
	struct fs_hash h = { .md = EVP_MD_CTX_new(), .files = 0 };
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0, i;
	char err[512];
	int rc = -1, o;

	if (fs_exists(root) == 0) {
		EVP_MD_CTX_free(h.md);
		snprintf(out, len, "none");
		return 0;
	}
	if (h.md == NULL || EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1)
		goto out;
	if (fs_walk_files(root, hash_file, &h, err, sizeof(err)) != 0) {
		log_warn("spares: cannot read the template's filestore: %s",
		    err);
		goto out;
	}
	if (EVP_DigestFinal_ex(h.md, d, &dl) != 1 || dl < 12)
		goto out;
	o = snprintf(out, len, "%llu:", h.files);
	for (i = 0; i < 12 && o > 0 && (size_t)o + 3 <= len; i++)
		o += snprintf(out + o, len - (size_t)o, "%02x", d[i]);
	rc = 0;
out:
	EVP_MD_CTX_free(h.md);
	return rc;
}

enum ident_state {
	IDENT_OK,
	IDENT_BUSY,    /* a client is connected to it: not trusted now */
	IDENT_GONE,    /* no such database */
	IDENT_NOCOUNT, /* track_counts is off */
	IDENT_ERROR,
};

/* The template's identity (see the top of this file) into out. */
static enum ident_state
identity(PGconn *c, const struct settings *s, const char *templ, char *out,
    size_t len)
{
	static const char q[] =
	    "SELECT d.oid, coalesce(st.tup_inserted, 0),"
	    " coalesce(st.tup_updated, 0), coalesce(st.tup_deleted, 0),"
	    " coalesce(extract(epoch FROM st.stats_reset)::bigint, 0),"
	    " (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid"
	    " AND a.backend_type IS DISTINCT FROM 'autovacuum worker'),"
	    " current_setting('track_counts')::bool"
	    " FROM pg_database d LEFT JOIN pg_stat_database st"
	    " ON st.datid = d.oid WHERE d.datname = $1";
	const char *p[1] = { templ };
	char fs[PATH_MAX], fst[64];
	PGresult *r;
	enum ident_state st;

	r = pg_query(c, q, 1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warn("spares: reading the template's identity: %s",
		    pg_result_error(c, r));
		PQclear(r);
		return IDENT_ERROR;
	}
	if (PQntuples(r) == 0)
		st = IDENT_GONE;
	else if (PQgetvalue(r, 0, 6)[0] != 't')
		st = IDENT_NOCOUNT;
	else if (strcmp(PQgetvalue(r, 0, 5), "0") != 0)
		st = IDENT_BUSY;
	else if (fs_path(s, templ, fs, sizeof(fs)) != 0 ||
	    fs_stamp(fs, fst, sizeof(fst)) != 0)
		st = IDENT_ERROR;
	else {
		snprintf(out, len, "%s.%s.%s.%s.%s.%s", PQgetvalue(r, 0, 0),
		    PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
		    PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4), fst);
		st = IDENT_OK;
	}
	PQclear(r);
	return st;
}

/* ---- claims ------------------------------------------------------------ */

static int
is_claiming(const char *name)
{
	int i;

	for (i = 0; i < SETTINGS_MAX_SPARES; i++)
		if (strcmp(claiming[i], name) == 0)
			return 1;
	return 0;
}

static void
claim_done(const char *name)
{
	int i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < SETTINGS_MAX_SPARES; i++)
		if (strcmp(claiming[i], name) == 0)
			claiming[i][0] = '\0';
	pthread_mutex_unlock(&mu);
}

/* Takes a ready spare off the list into *sp: 1, or 0 when none. */
static int
take_ready(struct spare *sp)
{
	int i, got = 0;

	pthread_mutex_lock(&mu);
	for (i = 0; running != NULL && nready > 0 && i < SETTINGS_MAX_SPARES;
	     i++) {
		if (claiming[i][0] != '\0')
			continue;
		*sp = ready[--nready];
		taken++;
		nodo_strlcpy(claiming[i], sp->name, sizeof(claiming[i]));
		got = 1;
		break;
	}
	pthread_mutex_unlock(&mu);
	return got;
}

int
spares_claim(PGconn *c, const struct settings *s, const char *templ,
    const char *tmp, const char *comment, const char *fs_tmp)
{
	char now[SPARES_STAMP_MAX], ren[SPARES_SQL_MAX], allow[SPARES_SQL_MAX];
	char com[SPARES_SQL_MAX], err[512], fs[PATH_MAX];
	struct spare sp;
	enum ident_state st;

	if (s->spare_tenants == 0 || s->default_template == NULL ||
	    strcmp(templ, s->default_template) != 0 || !take_ready(&sp))
		return 0;
	if ((st = identity(c, s, templ, now, sizeof(now))) != IDENT_OK ||
	    strcmp(now, sp.stamp) != 0) {
		/* Stale (the thread drops it) or not to be trusted now. */
		log_info("spares: %s not used: %s", sp.name,
		    st == IDENT_BUSY ? "sessions are connected to the template"
		        : st == IDENT_OK
		        ? "the template changed since it was made"
		        : "the template's identity is unknown");
		claim_done(sp.name);
		wake();
		return 0;
	}
	if (fmt_sql(c, ren, sizeof(ren), "ALTER DATABASE %s RENAME TO %s",
	        sp.name, tmp, NULL) != 0 ||
	    fmt_sql(c, allow, sizeof(allow),
	        "ALTER DATABASE %s ALLOW_CONNECTIONS true", tmp, NULL,
	        NULL) != 0 ||
	    fmt_sql(c, com, sizeof(com), "COMMENT ON DATABASE %s IS %s", tmp,
	        NULL, comment) != 0) {
		claim_done(sp.name);
		return 0;
	}
	/* One transaction: the spare becomes a creation in progress. */
	if (pg_exec(c, "BEGIN", 0, NULL, err, sizeof(err), NULL) != 0 ||
	    pg_exec(c, ren, 0, NULL, err, sizeof(err), NULL) != 0 ||
	    pg_exec(c, allow, 0, NULL, err, sizeof(err), NULL) != 0 ||
	    pg_exec(c, com, 0, NULL, err, sizeof(err), NULL) != 0 ||
	    pg_exec(c, "COMMIT", 0, NULL, err, sizeof(err), NULL) != 0) {
		pg_exec(c, "ROLLBACK", 0, NULL, NULL, 0, NULL);
		log_warn("spares: claiming %s failed (cloning instead): %s",
		    sp.name, err);
		claim_done(sp.name);
		wake();
		return 0;
	}
	claim_done(sp.name);
	/* Its folder; if that fails the create copies the template's. */
	if (fs_path(s, sp.name, fs, sizeof(fs)) == 0 && fs_exists(fs) == 1 &&
	    rename(fs, fs_tmp) != 0)
		log_warn("spares: cannot move %s to %s (copying instead): %s",
		    fs, fs_tmp, strerror(errno));
	atomic_fetch_add(&nclaimed, 1);
	log_info("spares: %s claimed as %s", sp.name, tmp);
	wake();
	return 1;
}

/* ---- the thread --------------------------------------------------------- */

/* Drops a spare's database, then its folder (logged). 0 or -1. */
static int
drop_spare(struct spares *sp, const char *name, const char *why)
{
	char err[512], fs[PATH_MAX];

	log_info("spares: dropping %s (%s)", name, why);
	if (drop_database(sp->c, name, err, sizeof(err)) != 0) {
		log_warn("spares: cannot drop %s: %s", name, err);
		return -1;
	}
	if (fs_path(sp->t->s, name, fs, sizeof(fs)) == 0 &&
	    fs_remove_tree(fs) != 0)
		log_warn("spares: cannot remove %s: %s", fs, strerror(errno));
	return 0;
}

/* 1 when a create runs or ended less than SPARES_QUIET_MS ago. */
static int
creates_near(void)
{
	struct timespec now;
	long long ms;

	if (atomic_load(&creates) > 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&mu);
	ms = (long long)(now.tv_sec - last_end.tv_sec) * 1000 +
	    (now.tv_nsec - last_end.tv_nsec) / 1000000;
	pthread_mutex_unlock(&mu);
	return (last_end.tv_sec != 0 || last_end.tv_nsec != 0) &&
	    ms < SPARES_QUIET_MS;
}

static double
ms_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 +
	    (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/*
 * Steps 1 to 5 (top of the file). 0 when a spare was made, -1 when not
 * (logged; what was made is dropped).
 */
static int
make_spare(struct spares *sp, const char *templ, const char *before)
{
	const struct settings *s = sp->t->s;
	char name[sizeof(SPARES_PREFIX) + SPARES_HEX], sql[SPARES_SQL_MAX];
	char err[512], state[6] = "", after[SPARES_STAMP_MAX], text[400];
	char fs_src[PATH_MAX], fs_dst[PATH_MAX];
	struct timespec t0, t1;
	PGcancel *cancel;
	int rc, i;

	snprintf(name, sizeof(name), "%s", SPARES_PREFIX);
	if (random_hex(name + strlen(SPARES_PREFIX), SPARES_HEX) != 0 ||
	    fs_path(s, templ, fs_src, sizeof(fs_src)) != 0 ||
	    fs_path(s, name, fs_dst, sizeof(fs_dst)) != 0 ||
	    fmt_sql(sp->c, sql, sizeof(sql),
	        "CREATE DATABASE %s ENCODING 'unicode' TEMPLATE %s"
	        " STRATEGY " SPARES_STRATEGY " ALLOW_CONNECTIONS false",
	        name, templ, NULL) != 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cancel = PQgetCancel(sp->c);
	pthread_mutex_lock(&mu);
	inflight = cancel;
	pthread_mutex_unlock(&mu);
	/* A create that began before inflight was set: it did not cancel. */
	rc = creates_near() ? -1
	                    : pg_exec_long(sp->c, sql, err, sizeof(err), state);
	pthread_mutex_lock(&mu);
	inflight = NULL;
	pthread_mutex_unlock(&mu);
	PQfreeCancel(cancel);
	if (rc != 0) {
		/* A failed CREATE DATABASE leaves nothing behind. */
		if (strcmp(state, "57014") == 0)
			log_info("spares: clone cancelled: a create needs the "
			         "template; retried later");
		else if (strcmp(state, "55006") == 0)
			log_debug("spares: template %s in use; retried later",
			    templ);
		else if (state[0] != '\0')
			log_warn("spares: cloning %s failed: %s", templ, err);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if ((rc = fs_exists(fs_src)) == 1) {
		if (fs_copy_tree(fs_src, fs_dst, NULL, err, sizeof(err)) != 0 ||
		    fs_sync_parent(fs_dst, err, sizeof(err)) != 0) {
			log_warn("spares: copying the filestore: %s", err);
			drop_spare(sp, name, "its filestore copy failed");
			return -1;
		}
	} else if (rc != 0) {
		log_warn("spares: cannot read %s: %s", fs_src, strerror(errno));
		drop_spare(sp, name, "the template's filestore is unreadable");
		return -1;
	}
	if (identity(sp->c, s, templ, after, sizeof(after)) != IDENT_OK ||
	    strcmp(after, before) != 0) {
		drop_spare(sp, name,
		    "the template changed while it was copied");
		return -1;
	}
	snprintf(text, sizeof(text),
	    TENANT_COMMENT_PREFIX "op=spare;template=%s;stamp=%s", templ,
	    before);
	if (fmt_sql(sp->c, sql, sizeof(sql), "COMMENT ON DATABASE %s IS %s",
	        name, NULL, text) != 0 ||
	    pg_exec(sp->c, sql, 0, NULL, err, sizeof(err), NULL) != 0) {
		log_warn("spares: marking %s: %s", name, err);
		drop_spare(sp, name, "it could not be marked");
		return -1;
	}
	pthread_mutex_lock(&mu);
	for (i = 0; i < nready; i++)
		if (strcmp(ready[i].name, name) == 0)
			break;
	if (i == nready && nready < SETTINGS_MAX_SPARES) {
		nodo_strlcpy(ready[nready].name, name, sizeof(ready[0].name));
		nodo_strlcpy(ready[nready].stamp, before,
		    sizeof(ready[0].stamp));
		nready++;
	}
	pthread_mutex_unlock(&mu);
	log_info("spares: %s of %s ready in %.0f ms (clone %.0f ms, %s)", name,
	    templ, ms_since(&t0),
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	        (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	    SPARES_STRATEGY);
	return 0;
}

/*
 * One pass: the spares in the catalog, the stale and the extra dropped,
 * the list of ready ones replaced, and one more made when short.
 */
static void
pass(struct spares *sp)
{
	static const char q[] =
	    "SELECT datname, coalesce(shobj_description(oid, 'pg_database'),"
	    " '') FROM pg_database WHERE left(datname, 7) = '" SPARES_PREFIX
	    "' AND datdba = (SELECT oid FROM pg_roles"
	    " WHERE rolname = current_user) ORDER BY oid";
	const struct settings *s = sp->t->s;
	const char *templ = s->default_template;
	char ident[SPARES_STAMP_MAX] = "", err[256], op[16], tp[64];
	char stamp[SPARES_STAMP_MAX];
	struct spare keep[SETTINGS_MAX_SPARES];
	int want = want_spares(sp), nkeep = 0, nseen = 0, i;
	enum ident_state st = IDENT_ERROR;
	unsigned long gen;
	PGresult *r;

	pthread_mutex_lock(&mu);
	gen = taken;
	pthread_mutex_unlock(&mu);
	if (sp->c == NULL &&
	    (sp->c = pg_connect(s, PG_MAINT_DB, err, sizeof(err))) == NULL)
		return;
	if (templ != NULL && want > 0)
		st = identity(sp->c, s, templ, ident, sizeof(ident));
	if (st == IDENT_NOCOUNT && !sp->warned_counts) {
		log_warn("spares: track_counts is off: changes to the template "
		         "cannot be seen, so no spares are kept");
		sp->warned_counts = 1;
	}
	r = pg_query(sp->c, q, 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		if (pg_conn_lost(sp->c)) {
			PQfinish(sp->c);
			sp->c = NULL;
		}
		return;
	}
	for (i = 0; i < PQntuples(r) && i < SPARES_MAX_SEEN; i++) {
		const char *name = PQgetvalue(r, i, 0);
		const char *com = PQgetvalue(r, i, 1);
		int busy;

		tenant_comment_value(com, "op", op, sizeof(op));
		/* Being made (ours, under the lock: none now) or debris. */
		if (strcmp(op, "spare") != 0)
			continue;
		pthread_mutex_lock(&mu);
		busy = is_claiming(name);
		pthread_mutex_unlock(&mu);
		if (busy)
			continue;
		tenant_comment_value(com, "template", tp, sizeof(tp));
		tenant_comment_value(com, "stamp", stamp, sizeof(stamp));
		nseen++;
		if (want == 0)
			drop_spare(sp, name, "SPARE_TENANTS is 0");
		else if (st == IDENT_BUSY || st == IDENT_ERROR)
			; /* judged later: kept, not offered now */
		else if (st != IDENT_OK || templ == NULL ||
		    strcmp(tp, templ) != 0 || strcmp(stamp, ident) != 0)
			drop_spare(sp, name, "stale: the template changed");
		else if (nkeep >= want)
			drop_spare(sp, name, "more than SPARE_TENANTS");
		else {
			nodo_strlcpy(keep[nkeep].name, name,
			    sizeof(keep[0].name));
			nodo_strlcpy(keep[nkeep].stamp, stamp,
			    sizeof(keep[0].stamp));
			nkeep++;
		}
	}
	sp->clean = want == 0 && nseen == 0;
	PQclear(r);
	if (sp->clean) {
		/* Off: no connection of the role kept for nothing. */
		PQfinish(sp->c);
		sp->c = NULL;
	}
	pthread_mutex_lock(&mu);
	/* A claim since the query: what it took may be gone; look again. */
	if (gen != taken) {
		pthread_mutex_unlock(&mu);
		wake();
		return;
	}
	memcpy(ready, keep, sizeof(keep[0]) * (size_t)nkeep);
	nready = nkeep;
	pthread_mutex_unlock(&mu);
	if (st == IDENT_OK && nkeep < want && !creates_near())
		make_spare(sp, templ, ident);
}

static void
lower_priority(void)
{
	/* Linux: both are per thread. Failure only loses the courtesy. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), SPARES_NICE) != 0)
		log_debug("spares: setpriority: %s", strerror(errno));
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, gettid(),
	        IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)) != 0)
		log_debug("spares: ioprio_set: %s", strerror(errno));
}

static void *
run(void *arg)
{
	struct spares *sp = arg;
	struct timespec until, last = { 0, 0 };
	int woken = 1;

	lower_priority();
	pthread_mutex_lock(&sp->mu);
	while (!sp->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)SPARES_TICK_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!sp->stop && !sp->wake &&
		    pthread_cond_timedwait(&sp->cv, &sp->mu, &until) == 0)
			;
		woken |= sp->wake;
		sp->wake = 0;
		if (sp->stop)
			break;
		pthread_mutex_unlock(&sp->mu);
		/*
		 * A full pass walks the template's filestore: when woken (a
		 * claim), when short of spares, else every SPARES_RECHECK_MS.
		 */
		int want = want_spares(sp);

		if (want == 0 && sp->clean)
			; /* off, and none left: nothing to look at */
		else if (!creates_near() &&
		    (woken || spares_ready() < want ||
		        ms_since(&last) >= SPARES_RECHECK_MS)) {
			tenant_op_begin();
			pass(sp);
			tenant_op_end();
			clock_gettime(CLOCK_MONOTONIC, &last);
			woken = 0;
		}
		pthread_mutex_lock(&sp->mu);
	}
	pthread_mutex_unlock(&sp->mu);
	if (sp->c != NULL)
		PQfinish(sp->c);
	sp->c = NULL;
	return NULL;
}

struct spares *
spares_start(const struct tenant_ctx *t)
{
	struct spares *sp = calloc(1, sizeof(*sp));
	pthread_condattr_t ca;

	if (sp == NULL) {
		log_err("spares: out of memory");
		return NULL;
	}
	sp->t = t;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&mu);
	if (running != NULL) {
		pthread_mutex_unlock(&mu);
		log_err("spares: already started");
		goto fail;
	}
	running = sp;
	nready = 0;
	pthread_mutex_unlock(&mu);
	if (pthread_create(&sp->th, NULL, run, sp) != 0) {
		log_err("spares: cannot start the thread");
		pthread_mutex_lock(&mu);
		running = NULL;
		pthread_mutex_unlock(&mu);
		goto fail;
	}
	pthread_setname_np(sp->th, "nodo-spares");
	return sp;
fail:
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	free(sp);
	return NULL;
}

void
spares_stop(struct spares *sp)
{
	struct timespec until;
	char err[256];

	if (sp == NULL)
		return;
	pthread_mutex_lock(&mu);
	running = NULL;
	nready = 0;
	if (inflight != NULL && !PQcancel(inflight, err, sizeof(err)))
		log_debug("spares: cannot cancel a clone: %s", err);
	pthread_mutex_unlock(&mu);
	pthread_mutex_lock(&sp->mu);
	sp->stop = 1;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SPARES_JOIN_S;
	if (pthread_timedjoin_np(sp->th, NULL, &until) != 0) {
		/* A filestore copy still running: exiting ends it. */
		log_warn("spares: the thread is still busy; leaving it");
		return;
	}
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	free(sp);
}
