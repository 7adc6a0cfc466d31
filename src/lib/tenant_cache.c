/*
 * tenant_cache.c - the tenant list in memory (see tenant_cache.h).
 *
 * A snapshot is immutable once built: the list as tenant_list() returned
 * it, one rendered body for "all" and one per zone of the settings, the
 * catalog hash taken just before the list was read and the generation it
 * was built for. The cache holds the newest one; readers take a reference
 * under the mutex and send its bytes after letting go of the mutex.
 * tenant_cache_changed() bumps the generation; a snapshot of an older
 * generation is never served. The checking thread compares the catalog
 * hash to the snapshot's and builds a new one when they differ.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "nodo/log.h"
#include "nodo/pg.h"
#include "nodo/tenant_cache.h"
#include "nodo/util.h"

#define CACHE_HASH_LEN 33 /* md5 in hex, NUL */

/*
 * One row: an md5 over every pg_database row's identity and the columns
 * the list reads, and over every database comment. Any row written gets a
 * new xmin; in-place updates (datconnlimit when a DROP is interrupted) are
 * caught by hashing the values themselves.
 */
static const char *const catalog_sql =
    "SELECT md5(coalesce((SELECT string_agg(concat_ws(':', d.oid, d.xmin,"
    " d.datname, d.datdba, d.datistemplate, d.datallowconn,"
    " d.datconnlimit), ',' ORDER BY d.oid) FROM pg_database d), '')"
    " || '/' || coalesce((SELECT string_agg(concat_ws(':', s.objoid,"
    " s.xmin, md5(s.description)), ',' ORDER BY s.objoid)"
    " FROM pg_shdescription s"
    " WHERE s.classoid = 'pg_database'::regclass), ''))";

struct body {
	const char *domain; /* NULL: all; else the zone's spelling (settings) */
	char *json;
	size_t len;
};

struct tenant_snap {
	atomic_int refs;
	/* The settings it was built with: bodies[].domain borrow from them. */
	const struct settings *s;
	struct settings_live *live; /* where s comes from; NULL: t->s */
	unsigned long gen;
	char hash[CACHE_HASH_LEN];
	size_t nbodies;
	struct body bodies[]; /* [0] is "all" */
};

struct tenant_cache {
	const struct tenant_ctx *t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long gen;        /* under mu */
	struct tenant_snap *snap; /* under mu; NULL: none valid */
	long long verified_ms;    /* under mu: snap last known current */
	int stop;                 /* under mu */
	atomic_ulong reloads;
	pthread_t thread;
	PGconn *c; /* the thread's own connection */
};

static void
snap_free(struct tenant_snap *s)
{
	size_t i;

	for (i = 0; i < s->nbodies; i++)
		cJSON_free(s->bodies[i].json);
	if (s->live != NULL)
		settings_live_put(s->live, s->s);
	free(s);
}

void
tenant_cache_release(void *p)
{
	struct tenant_snap *s = p;

	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		snap_free(s);
}

/* The JSON of do_list before the cache, byte for byte. */
static char *
render(const struct tenant *v, size_t n, const char *domain)
{
	cJSON *o = cJSON_CreateObject(), *a;
	size_t i, k = 0;
	char url[400], *text;

	if (o == NULL || (a = cJSON_AddArrayToObject(o, "tenants")) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		cJSON *t;

		if (domain != NULL && strcmp(domain, v[i].domain) != 0)
			continue;
		if ((t = cJSON_CreateObject()) == NULL) {
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddItemToArray(a, t);
		cJSON_AddStringToObject(t, "subdomain", v[i].name);
		cJSON_AddStringToObject(t, "database", v[i].name);
		cJSON_AddStringToObject(t, "domain", v[i].domain);
		snprintf(url, sizeof(url), "https://%s.%s", v[i].name,
		    v[i].domain);
		cJSON_AddStringToObject(t, "url", url);
		cJSON_AddStringToObject(t, "state",
		    v[i].suspended ? "suspended" : "active");
		k++;
	}
	cJSON_AddNumberToObject(o, "count", (double)k);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/* The catalog hash into out; 0, or -1 with err. */
static int
catalog_hash(PGconn *c, char out[CACHE_HASH_LEN], char *err, size_t errlen)
{
	PGresult *r = PQexec(c, catalog_sql);
	int rc = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		snprintf(out, CACHE_HASH_LEN, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	} else {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
	}
	PQclear(r);
	return rc;
}

/* A new snapshot for generation gen, read on c (no lock held). */
static enum tenant_err
build(struct tenant_cache *tc, PGconn *c, unsigned long gen,
    struct tenant_snap **out, struct tenant_result *res)
{
	/* The settings in effect now (a reload may swap the zones). */
	const struct settings *s =
	    tc->t->live != NULL ? settings_live_get(tc->t->live) : tc->t->s;
	struct tenant_ctx t = *tc->t;
	struct tenant_snap *sn;
	struct tenant *v;
	size_t n, i;
	char err[256];
	enum tenant_err e;

	*out = NULL;
	t.s = s;
	if ((sn = calloc(1,
	         sizeof(*sn) + (s->nzones + 1) * sizeof(sn->bodies[0]))) ==
	    NULL) {
		if (tc->t->live != NULL)
			settings_live_put(tc->t->live, s);
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		return TENANT_INTERNAL;
	}
	sn->s = s;
	sn->live = tc->t->live;
	if (catalog_hash(c, sn->hash, err, sizeof(err)) != 0)
		sn->hash[0] = '\0'; /* the list says what went wrong */
	if ((e = tenant_list(&t, c, NULL, &v, &n, res)) != TENANT_OK) {
		snap_free(sn);
		return e;
	}
	atomic_init(&sn->refs, 1);
	sn->gen = gen;
	sn->nbodies = s->nzones + 1;
	for (i = 0; i < sn->nbodies; i++) {
		struct body *b = &sn->bodies[i];

		b->domain = i == 0 ? NULL : s->zones[i - 1].domain;
		if ((b->json = render(v, n, b->domain)) == NULL) {
			free(v);
			snap_free(sn);
			snprintf(res->detail, sizeof(res->detail),
			    "out of memory");
			return TENANT_INTERNAL;
		}
		b->len = strlen(b->json);
	}
	free(v);
	atomic_fetch_add(&tc->reloads, 1);
	*out = sn;
	return TENANT_OK;
}

/*
 * Makes sn the cache's snapshot unless one of a later generation is there
 * already. Takes the caller's reference to sn.
 */
static void
install(struct tenant_cache *tc, struct tenant_snap *sn)
{
	struct tenant_snap *old = NULL;

	pthread_mutex_lock(&tc->mu);
	if (tc->snap == NULL || tc->snap->gen <= sn->gen) {
		old = tc->snap;
		tc->snap = sn;
		tc->verified_ms = nodo_mono_ms();
		sn = NULL;
	}
	pthread_mutex_unlock(&tc->mu);
	tenant_cache_release(old);
	tenant_cache_release(sn);
}

static void
drop(struct tenant_cache *tc)
{
	struct tenant_snap *old;

	pthread_mutex_lock(&tc->mu);
	old = tc->snap;
	tc->snap = NULL;
	pthread_mutex_unlock(&tc->mu);
	tenant_cache_release(old);
}

static void
check_once(struct tenant_cache *tc)
{
	char hash[CACHE_HASH_LEN], err[256];
	struct tenant_result res;
	struct tenant_snap *sn;
	unsigned long gen;
	int same;

	if (tc->c == NULL || pg_conn_lost(tc->c)) {
		if (tc->c != NULL)
			PQfinish(tc->c);
		tc->c = pg_connect(tc->t->s, PG_MAINT_DB, err, sizeof(err));
		if (tc->c == NULL) {
			drop(tc);
			return;
		}
	}
	if (catalog_hash(tc->c, hash, err, sizeof(err)) != 0) {
		log_debug("tenant list cache: catalog check failed: %s", err);
		PQfinish(tc->c);
		tc->c = NULL;
		drop(tc);
		return;
	}
	pthread_mutex_lock(&tc->mu);
	same = tc->snap != NULL && tc->snap->gen == tc->gen &&
	    strcmp(tc->snap->hash, hash) == 0;
	if (same)
		tc->verified_ms = nodo_mono_ms();
	gen = tc->gen;
	pthread_mutex_unlock(&tc->mu);
	if (same)
		return;
	memset(&res, 0, sizeof(res));
	if (build(tc, tc->c, gen, &sn, &res) != TENANT_OK) {
		log_debug("tenant list cache: reload failed: %s", res.detail);
		drop(tc);
		return;
	}
	install(tc, sn);
}

static void *
check_thread(void *arg)
{
	struct tenant_cache *tc = arg;
	struct timespec ts;

	pthread_mutex_lock(&tc->mu);
	while (!tc->stop) {
		pthread_mutex_unlock(&tc->mu);
		check_once(tc);
		pthread_mutex_lock(&tc->mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)TENANT_CACHE_POLL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!tc->stop &&
		    pthread_cond_timedwait(&tc->cv, &tc->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&tc->mu);
	if (tc->c != NULL)
		PQfinish(tc->c);
	tc->c = NULL;
	return NULL;
}

struct tenant_cache *
tenant_cache_new(const struct tenant_ctx *t)
{
	struct tenant_cache *tc = calloc(1, sizeof(*tc));
	pthread_condattr_t ca;

	if (tc == NULL)
		return NULL;
	tc->t = t;
	atomic_init(&tc->reloads, 0);
	pthread_mutex_init(&tc->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tc->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&tc->thread, NULL, check_thread, tc) != 0) {
		log_err("tenant list cache: cannot start its thread");
		pthread_cond_destroy(&tc->cv);
		pthread_mutex_destroy(&tc->mu);
		free(tc);
		return NULL;
	}
	return tc;
}

void
tenant_cache_free(struct tenant_cache *tc)
{
	if (tc == NULL)
		return;
	pthread_mutex_lock(&tc->mu);
	tc->stop = 1;
	pthread_cond_signal(&tc->cv);
	pthread_mutex_unlock(&tc->mu);
	pthread_join(tc->thread, NULL);
	drop(tc);
	pthread_cond_destroy(&tc->cv);
	pthread_mutex_destroy(&tc->mu);
	free(tc);
}

void
tenant_cache_changed(struct tenant_cache *tc)
{
	pthread_mutex_lock(&tc->mu);
	tc->gen++;
	pthread_mutex_unlock(&tc->mu);
}

unsigned long
tenant_cache_reloads(struct tenant_cache *tc)
{
	return atomic_load(&tc->reloads);
}

enum tenant_err
tenant_cache_get(struct tenant_cache *tc, const char *domain,
    struct tenant_snap **snap, char **json, size_t *len,
    struct tenant_result *res)
{
	struct tenant_snap *sn = NULL;
	unsigned long gen;
	size_t i;

	pthread_mutex_lock(&tc->mu);
	/*
	 * Only a snapshot the catalog confirmed a moment ago: while the check
	 * hangs (a hung server) the list asks PostgreSQL itself, and answers
	 * 503 as it did before the cache, never an old list.
	 */
	if (tc->snap != NULL && tc->snap->gen == tc->gen &&
	    nodo_mono_ms() - tc->verified_ms < TENANT_CACHE_FRESH_MS) {
		sn = tc->snap;
		atomic_fetch_add(&sn->refs, 1);
	}
	gen = tc->gen;
	pthread_mutex_unlock(&tc->mu);
	if (sn == NULL) {
		char err[256];
		PGconn *c = pg_pool_get(tc->t->pool, err, sizeof(err));
		enum tenant_err e;

		if (c == NULL) {
			snprintf(res->detail, sizeof(res->detail),
			    "database: PostgreSQL is unreachable: %s", err);
			return TENANT_DB_UNAVAILABLE;
		}
		e = build(tc, c, gen, &sn, res);
		pg_pool_put(tc->t->pool, c);
		if (e != TENANT_OK)
			return e;
		atomic_fetch_add(&sn->refs, 1); /* ours; install takes one */
		install(tc, sn);
	}
	for (i = 0; i < sn->nbodies; i++) {
		const char *d = sn->bodies[i].domain;

		if ((domain == NULL && d == NULL) ||
		    (domain != NULL && d != NULL && strcmp(domain, d) == 0))
			break;
	}
	if (i == sn->nbodies) { /* not a zone: validated before, never here */
		tenant_cache_release(sn);
		snprintf(res->detail, sizeof(res->detail),
		    "domain: not a domain of this node");
		return TENANT_UNKNOWN_DOMAIN;
	}
	*snap = sn;
	*json = sn->bodies[i].json;
	*len = sn->bodies[i].len;
	return TENANT_OK;
}
