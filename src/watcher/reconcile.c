/*
 * reconcile.c - one poll of odoo-db-watcher: tenants in, DNS records out.
 *
 * The expensive question, "which tenants lack their record?", is answered
 * from memory (ncache) rather than by asking Cloudflare per tenant: each
 * zone is read once, page by page, at start and then hourly, and every
 * record we create or delete is written into the cache as we go. A poll in
 * which no database appeared or vanished is therefore one SQL query and no
 * Cloudflare request. The cache can be wrong in two ways, and both are
 * bounded: a record someone removes by hand is noticed at the next hourly
 * read, and a name whose database disappeared and came back is looked up
 * again (one GET) before it is trusted.
 *
 * Cloudflare allows 1,200 requests per five minutes per user, shared with
 * odoo-local-api and the dashboard, so every call passes cf_gate(): a
 * per-poll budget, a sliding window, and the backoff that follows a 5xx, a
 * timeout, an unreadable reply or a 429 (never sooner than Retry-After).
 * Failures are retried on later polls; nothing here ends the daemon.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "ncache.h"
#include "nodo/cloudflare.h"
#include "nodo/log.h"
#include "nodo/names.h"
#include "nodo/pg.h"
#include "nodo/tenant.h"
#include "nodo/util.h"
#include "watcher.h"

#define WATCHER_WINDOW_MS      (WATCHER_WINDOW_S * 1000)   /* ms */
#define WATCHER_WINDOW_CAP     (WATCHER_WINDOW_BUDGET * 2) /* timestamps kept */
#define WATCHER_ENSURE_MAX_REQ 4 /* cf_repair_cname: GET, POST, GET, PATCH */
#define WATCHER_DELETE_MAX_REQ 1 /* cf_delete_record: DELETE */

#define WATCHER_ZONE_REFRESH_MS (3600 * 1000) /* ms between zone reads */
#define WATCHER_ORPHAN_FRESH_MS (60 * 1000)   /* ms; older: re-read first */
#define WATCHER_ORPHAN_POLLS    2 /* polls a database is gone before delete */
/* CONTRACT 8's safety valve on orphan removal, per poll. */
#define WATCHER_ORPHAN_MAX_POLL 5   /* records deleted in one poll, all zones */
#define WATCHER_ORPHAN_ZONE_PCT 10  /* % of a zone's own records, at least 1 */
#define WATCHER_ABSENT_MAX      255 /* absent counts saturate here */

#define WATCHER_CF_BACKOFF_MAX_S     300  /* s, cap of Cloudflare backoff */
#define WATCHER_RATE_LIMIT_DEFAULT_S 300  /* s, 429 without Retry-After */
#define WATCHER_PG_BACKOFF_MAX_S     60   /* s, cap of PostgreSQL backoff */
#define WATCHER_NAME_BACKOFF_MAX_S   3600 /* s, cap for one failing name */

#define WATCHER_TARGET_MAX 256 /* bytes, "<tunnel>.cfargotunnel.com" */
#define WATCHER_FQDN_MAX   320 /* bytes, "<label>.<domain>" */

/* What the watcher knows about one zone of domains.json. */
struct zstate {
	int loaded;        /* read at least once: the cache is usable */
	int needed;        /* a tenant (or orphan deletion) needs it */
	int stale;         /* re-read before deleting anything in it */
	long long read_ms; /* when the last read finished */
	long long not_before_ms;
	unsigned fails; /* non-transient read failures in a row */
	unsigned pages; /* requests the last read took */
};

/* Counters of one poll. */
struct tally {
	size_t tenants;
	size_t records;   /* tenants whose record is in place */
	size_t conflicts; /* tenants whose name another record holds */
	size_t waiting;   /* not attempted: budget, backoff, zone unread */
	size_t failed;    /* attempted and failed in this poll */
	size_t nozone;    /* tenants whose domain is no configured zone */
	unsigned created, deleted, new_conflicts, zones_read;
};

struct watcher {
	const struct settings *s;
	struct watcher_hooks hooks;
	struct tenant_ctx tctx;
	int dry_run;
	int stopping; /* a stop is pending: no more calls in this pass */
	char target[WATCHER_TARGET_MAX];
	struct cf_client *cf;
	PGconn *pg;
	struct ncache names;
	struct zstate *zones; /* s->nzones of them */
	unsigned long poll_no;

	/* The Cloudflare gate. */
	long long cf_not_before_ms;
	unsigned cf_fails;
	unsigned poll_used;
	long long win[WATCHER_WINDOW_CAP]; /* request times, a ring */
	size_t win_head, win_len;

	/* PostgreSQL. */
	long long pg_not_before_ms;
	unsigned pg_fails;

	/* Orphan removal held back: warned once until it is over. */
	int orphans_refused; /* the tenant list was empty */
	int orphans_held;    /* more were due than one poll may delete */

	/* For STATUS=. */
	struct tally last;
	int listed; /* the last poll listed the tenants */
	int ever_synced;
	long long last_sync_ms;
};

long long
watcher_now_ms(void)
{
	return nodo_mono_ms();
}

/* interval * 2^(fails - 1), capped: the n-th failure in a row waits this. */
static long long
backoff_ms(int interval_s, unsigned fails, int cap_s)
{
	long long d = interval_s > 0 ? interval_s : 1;
	unsigned i;

	for (i = 1; i < fails && d < cap_s; i++)
		d *= 2;
	if (d > cap_s)
		d = cap_s;
	return d * 1000;
}

static int
stop_requested(struct watcher *w)
{
	if (!w->stopping && w->hooks.stop != NULL &&
	    w->hooks.stop(w->hooks.arg))
		w->stopping = 1;
	return w->stopping;
}

static void
alive(struct watcher *w)
{
	if (w->hooks.alive != NULL)
		w->hooks.alive(w->hooks.arg);
}

struct watcher *
watcher_new(const struct settings *s, int dry_run,
    const struct watcher_hooks *hooks)
{
	struct watcher *w;
	int n;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto nomem;
	w->s = s;
	w->dry_run = dry_run;
	if (hooks != NULL)
		w->hooks = *hooks;
	w->tctx.s = s;
	w->tctx.pool = NULL; /* tenant_list() takes our own connection */
	n = snprintf(w->target, sizeof(w->target), "%s",
	    s->cf_target != NULL ? s->cf_target : "");
	if (n < 0 || (size_t)n >= sizeof(w->target)) {
		log_err("CF_TUNNEL_ID is too long for a CNAME target");
		free(w);
		return NULL;
	}
	if (ncache_init(&w->names) == -1)
		goto nomem;
	if ((w->zones = calloc(s->nzones > 0 ? s->nzones : 1,
	         sizeof(*w->zones))) == NULL)
		goto nomem;
	if (s->dns_enabled &&
	    (w->cf = cf_client_new(s->cf_api_url, s->cf_token)) == NULL)
		goto nomem;
	return w;
nomem:
	log_err("out of memory");
	watcher_free(w);
	return NULL;
}

void
watcher_free(struct watcher *w)
{
	if (w == NULL)
		return;
	if (w->pg != NULL)
		PQfinish(w->pg);
	cf_client_free(w->cf);
	ncache_free(&w->names);
	free(w->zones);
	free(w);
}

unsigned long
watcher_cf_requests(const struct watcher *w)
{
	return cf_client_requests(w->cf);
}

/* ---- the Cloudflare gate ------------------------------------------------ */

static void
win_expire(struct watcher *w, long long now)
{
	while (
	    w->win_len > 0 && w->win[w->win_head] <= now - WATCHER_WINDOW_MS) {
		w->win_head = (w->win_head + 1) % WATCHER_WINDOW_CAP;
		w->win_len--;
	}
}

static void
win_add(struct watcher *w, long long now, unsigned long n)
{
	for (; n > 0; n--) {
		if (w->win_len == WATCHER_WINDOW_CAP) {
			/* Full is far over budget: the oldest matter least. */
			w->win_head = (w->win_head + 1) % WATCHER_WINDOW_CAP;
			w->win_len--;
		}
		w->win[(w->win_head + w->win_len) % WATCHER_WINDOW_CAP] = now;
		w->win_len++;
	}
}

/*
 * 1 when a call that may make up to need requests may start now. Budget
 * refusals are not failures: what is left waits for the next poll.
 */
static int
cf_gate(struct watcher *w, unsigned need)
{
	long long now = watcher_now_ms();

	if (stop_requested(w))
		return 0;
	if (now < w->cf_not_before_ms)
		return 0;
	if (w->poll_used + need > WATCHER_POLL_BUDGET)
		return 0;
	win_expire(w, now);
	if (w->win_len + need > WATCHER_WINDOW_BUDGET)
		return 0;
	alive(w);
	return 1;
}

/* Counts what a call sent; returns the number of requests. */
static unsigned long
cf_account(struct watcher *w, unsigned long before)
{
	unsigned long d = cf_client_requests(w->cf) - before;

	w->poll_used += (unsigned)d;
	win_add(w, watcher_now_ms(), d);
	return d;
}

/*
 * A failure that says nothing about one name (the service, the network,
 * the token or the rate limit) closes the gate; a 4xx about one request
 * does not. A call that sent nothing failed on our side, for that name.
 */
static int
cf_transient(const struct cf_result *r, unsigned long sent)
{
	int h = r->http_status;

	if (sent == 0)
		return 0;
	return !(h >= 400 && h < 500 && h != 401 && h != 403 && h != 408 &&
	    h != 429);
}

/* Cloudflare answered: the backoff is over. */
static void
cf_ok(struct watcher *w)
{
	if (w->cf_fails > 0)
		log_info("Cloudflare answers again after %u failed attempt(s)",
		    w->cf_fails);
	w->cf_fails = 0;
}

static void
cf_failed(struct watcher *w, const struct cf_result *res)
{
	long long wait, ra;

	w->cf_fails++;
	wait = backoff_ms(w->s->watcher_interval, w->cf_fails,
	    WATCHER_CF_BACKOFF_MAX_S);
	if (res->rate_limited) {
		/* Never sooner than Retry-After; Cloudflare blocks 5 min. */
		ra = (long long)(res->retry_after > 0
		             ? res->retry_after
		             : WATCHER_RATE_LIMIT_DEFAULT_S) *
		    1000;
		if (ra > wait)
			wait = ra;
	}
	w->cf_not_before_ms = watcher_now_ms() + wait;
	log_warn("%s; no Cloudflare request for %lld s (failure %u in a row)",
	    res->detail, (wait + 999) / 1000, w->cf_fails);
}

/* One name failed on its own: it waits, the others go on. */
static void
name_failed(struct watcher *w, struct ncache_entry *e, const char *fqdn,
    const char *what, const struct cf_result *res)
{
	long long wait;

	e->fails++;
	wait = backoff_ms(w->s->watcher_interval, e->fails,
	    WATCHER_NAME_BACKOFF_MAX_S);
	e->not_before_ms = watcher_now_ms() + wait;
	log_msg(LOG_WARNING, e->label,
	    "DNS record %s not %s: %s; retrying "
	    "in %lld s",
	    fqdn, what, res->detail, wait / 1000);
}

static int
fqdn_of(const struct watcher *w, const struct ncache_entry *e, char *buf,
    size_t len)
{
	int n;

	n = snprintf(buf, len, "%s.%s", e->label, w->s->zones[e->zone].domain);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ---- PostgreSQL ---------------------------------------------------------- */

static void
pg_failed(struct watcher *w, const char *why)
{
	long long wait;

	w->pg_fails++;
	wait = backoff_ms(w->s->watcher_interval, w->pg_fails,
	    WATCHER_PG_BACKOFF_MAX_S);
	w->pg_not_before_ms = watcher_now_ms() + wait;
	/* Once per outage at warning; the retries are only debug noise. */
	log_msg(w->pg_fails == 1 ? LOG_WARNING : LOG_DEBUG, NULL,
	    "PostgreSQL: %s; retrying in %lld s", why, wait / 1000);
}

/*
 * The tenants, by tenant_list()'s rule (one query). A connection that died
 * since the last poll (a server restart) is replaced at once, so a restart
 * long ago costs nothing; a server that is down is retried with backoff.
 * Returns 0 with *out (caller frees), or -1.
 */
static int
list_tenants(struct watcher *w, struct tenant **out, size_t *n)
{
	char err[512];
	struct tenant_result res;
	enum tenant_err e;
	int fresh = 0;

	*out = NULL;
	*n = 0;
	for (;;) {
		if (w->pg == NULL) {
			if (watcher_now_ms() < w->pg_not_before_ms)
				return -1;
			alive(w); /* a hung server may have cost a deadline */
			w->pg = pg_connect(w->s, PG_MAINT_DB, err, sizeof(err));
			if (w->pg == NULL) {
				pg_failed(w, err);
				return -1;
			}
			fresh = 1;
		}
		memset(&res, 0, sizeof(res));
		e = tenant_list(&w->tctx, w->pg, NULL, out, n, &res);
		if (e == TENANT_OK)
			break;
		if (!pg_conn_lost(w->pg)) {
			pg_failed(w, res.detail);
			return -1;
		}
		PQfinish(w->pg);
		w->pg = NULL;
		if (fresh) {
			pg_failed(w, res.detail);
			return -1;
		}
		log_debug("PostgreSQL connection lost (%s); reconnecting",
		    res.detail);
	}
	if (w->pg_fails > 0)
		log_info("PostgreSQL reachable again after %u failed "
		         "attempt(s)",
		    w->pg_fails);
	w->pg_fails = 0;
	w->pg_not_before_ms = 0;
	return 0;
}

/* ---- zone reads -------------------------------------------------------- */

struct zread {
	struct watcher *w;
	uint32_t zone;
	const char *domain;
	size_t dlen;
	struct ncache tmp; /* what this read found */
	size_t nrec, nours, nforeign;
	int nomem;
};

/* The sentence cf_ensure_cname would give, so both compare equal. */
static char *
describe_foreign(const char *fqdn, const struct cf_record *r)
{
	char buf[sizeof(((struct cf_result *)0)->detail)];
	int n;

	n = snprintf(buf, sizeof(buf),
	    "name %s is held by %.16s record "
	    "%.200s (id %.64s) not managed by this node",
	    fqdn, r->type, r->content, r->id);
	if (n < 0)
		return NULL;
	return strdup(buf);
}

static void
zread_cb(void *arg, const struct cf_record *r)
{
	struct zread *zr = arg;
	struct ncache_entry *e;
	char label[NAME_MAX_LEN + 1];
	size_t len = strlen(r->name), llen;
	enum ncache_state st;

	zr->nrec++;
	/* Only "<one label>.<zone>" can be a tenant's name. */
	if (len <= zr->dlen + 1 || r->name[len - zr->dlen - 1] != '.' ||
	    strcmp(r->name + len - zr->dlen, zr->domain) != 0)
		return;
	llen = len - zr->dlen - 1;
	if (llen > NAME_MAX_LEN)
		return;
	memcpy(label, r->name, llen);
	label[llen] = '\0';
	if (strchr(label, '.') != NULL || name_valid(label) != 0)
		return;
	if ((e = ncache_get(&zr->tmp, zr->zone, label)) == NULL) {
		zr->nomem = 1;
		return;
	}
	/*
	 * Ours: our comment and our tunnel (another node sharing the zone
	 * uses the same comment with its own tunnel: that is foreign).
	 */
	if (strcmp(r->type, "CNAME") == 0 && r->owned &&
	    strcasecmp(r->content, zr->w->target) == 0) {
		st = r->proxied ? NC_OURS : NC_DRIFT;
		/* Ours wins over others, a right one over a drifted one. */
		if (e->state < st) {
			if (e->state == NC_FOREIGN)
				zr->nforeign--;
			if (e->state != NC_DRIFT)
				zr->nours++;
			free(e->conflict);
			e->conflict = NULL;
			e->state = st;
			nodo_strlcpy(e->id, r->id, sizeof(e->id));
		}
		return;
	}
	if (e->state == NC_NONE) {
		e->state = NC_FOREIGN;
		zr->nforeign++;
		if ((e->conflict = describe_foreign(r->name, r)) == NULL)
			zr->nomem = 1;
	}
}

/* Main-cache entries of the zone take what the read found, or NC_NONE. */
static int
commit_main_cb(void *arg, struct ncache_entry *e)
{
	struct zread *zr = arg;
	struct ncache_entry *t;
	int same;

	if (e->zone != zr->zone)
		return 0;
	t = ncache_find(&zr->tmp, e->zone, e->label);
	if (t == NULL) {
		e->state = NC_NONE;
		e->id[0] = '\0';
		free(e->conflict);
		e->conflict = NULL;
		e->conflict_logged = 0;
		return 0;
	}
	/* The same conflict as before was already logged; a new one is news. */
	same = e->state == NC_FOREIGN && t->state == NC_FOREIGN &&
	    e->conflict != NULL && t->conflict != NULL &&
	    strcmp(e->conflict, t->conflict) == 0;
	if (!same)
		e->conflict_logged = 0;
	e->state = t->state;
	nodo_strlcpy(e->id, t->id, sizeof(e->id));
	free(e->conflict);
	e->conflict = t->conflict;
	t->conflict = NULL;
	ncache_unlink(&zr->tmp, t);
	ncache_entry_free(t);
	return 0;
}

/* What is left of the read are names the cache did not know: move them. */
static int
commit_move_cb(void *arg, struct ncache_entry *e)
{
	struct watcher *w = arg;

	return ncache_link(&w->names, e) == 0 ? 2 : 1;
}

static void
read_zone(struct watcher *w, uint32_t zi, struct tally *t)
{
	const struct zone *z = &w->s->zones[zi];
	struct zstate *zs = &w->zones[zi];
	struct zread zr;
	struct cf_result res;
	unsigned long before, sent;
	int rc, first = !zs->loaded;

	memset(&zr, 0, sizeof(zr));
	zr.w = w;
	zr.zone = zi;
	zr.domain = z->domain;
	zr.dlen = strlen(z->domain);
	if (ncache_init(&zr.tmp) == -1) {
		log_err("out of memory reading zone %s", z->domain);
		return;
	}
	before = cf_client_requests(w->cf);
	rc = cf_list_zone(w->cf, z->zone_id, zread_cb, &zr, &res);
	sent = cf_account(w, before);
	if (rc == 0 && !zr.nomem) {
		ncache_each(&w->names, commit_main_cb, &zr);
		ncache_each(&zr.tmp, commit_move_cb, w);
		ncache_free(&zr.tmp);
		zs->loaded = 1;
		zs->stale = 0;
		zs->read_ms = watcher_now_ms();
		zs->pages = (unsigned)(sent > 0 ? sent : 1);
		zs->fails = 0;
		t->zones_read++;
		log_msg(first ? LOG_INFO : LOG_DEBUG, NULL,
		    "zone %s read: %lu "
		    "request(s), %zu records; %zu names carry our CNAME, %zu "
		    "names that could be tenants' are held by records not ours",
		    z->domain, sent, zr.nrec, zr.nours, zr.nforeign);
		cf_ok(w);
		return;
	}
	ncache_free(&zr.tmp);
	if (zr.nomem) {
		log_err("out of memory reading zone %s", z->domain);
		return;
	}
	if (cf_transient(&res, sent)) {
		cf_failed(w, &res);
		return;
	}
	cf_ok(w);
	zs->fails++;
	zs->not_before_ms = watcher_now_ms() +
	    backoff_ms(w->s->watcher_interval, zs->fails,
	        WATCHER_NAME_BACKOFF_MAX_S);
	log_warn("zone %s (%s) cannot be read: %s", z->domain, z->zone_id,
	    res.detail);
}

static void
read_zones(struct watcher *w, struct tally *t)
{
	long long now = watcher_now_ms();
	struct zstate *zs;
	unsigned need;
	size_t i;

	for (i = 0; i < w->s->nzones; i++) {
		zs = &w->zones[i];
		if (!zs->needed || now < zs->not_before_ms)
			continue;
		if (zs->loaded && !zs->stale &&
		    now - zs->read_ms < WATCHER_ZONE_REFRESH_MS)
			continue;
		/*
		 * The last read's page count is the best guess of this one. A
		 * zone of more pages than a poll's budget (over 100,000
		 * records) is read at the start of a poll, and overshoots it.
		 */
		need = zs->pages > 0 ? zs->pages : 1;
		if (need > WATCHER_POLL_BUDGET)
			need = WATCHER_POLL_BUDGET;
		if (!cf_gate(w, need))
			continue;
		read_zone(w, (uint32_t)i, t);
	}
}

/* ---- creating ------------------------------------------------------------ */

static void
ensure_one(struct watcher *w, struct ncache_entry *e, struct tally *t)
{
	const struct zone *z = &w->s->zones[e->zone];
	char fqdn[WATCHER_FQDN_MAX];
	struct cf_result res;
	unsigned long before, sent;

	if (fqdn_of(w, e, fqdn, sizeof(fqdn)) == -1) {
		t->failed++;
		return;
	}
	if (w->dry_run) {
		if (!e->dry_logged)
			log_msg(LOG_INFO, e->label,
			    "dry run: would create "
			    "CNAME %s -> %s",
			    fqdn, w->target);
		e->dry_logged = 1;
		t->waiting++;
		return;
	}
	if (watcher_now_ms() < e->not_before_ms ||
	    !cf_gate(w, WATCHER_ENSURE_MAX_REQ)) {
		t->waiting++;
		return;
	}
	before = cf_client_requests(w->cf);
	/*
	 * The zone listing is trusted (CONTRACT section 6): a name it does
	 * not hold gets one POST, a race shows as "already exists". A name
	 * it holds (our record drifted, or gone and back) is looked up first.
	 */
	if (e->state == NC_NONE)
		cf_ensure_cname(w->cf, z->zone_id, fqdn, w->target, &res);
	else
		cf_repair_cname(w->cf, z->zone_id, fqdn, w->target, &res);
	sent = cf_account(w, before);
	switch (res.status) {
	case CF_CREATED:
	case CF_EXISTS:
		cf_ok(w);
		e->state = NC_OURS;
		e->fails = 0;
		e->not_before_ms = 0;
		nodo_strlcpy(e->id, res.record_id, sizeof(e->id));
		t->records++;
		if (res.status == CF_CREATED) {
			t->created++;
			log_msg(LOG_INFO, e->label,
			    "DNS record created: %s "
			    "CNAME %s (id %s)",
			    fqdn, w->target, e->id);
		} else
			log_msg(LOG_DEBUG, e->label,
			    "DNS record %s already in "
			    "place (id %s)",
			    fqdn, e->id);
		return;
	case CF_CONFLICT:
		cf_ok(w);
		e->state = NC_FOREIGN;
		free(e->conflict);
		e->conflict = strdup(res.detail);
		e->conflict_logged = 1;
		t->conflicts++;
		t->new_conflicts++;
		log_msg(LOG_WARNING, e->label,
		    "DNS conflict: %s; left alone "
		    "until the name changes hands",
		    res.detail);
		return;
	default:
		break;
	}
	t->failed++;
	if (cf_transient(&res, sent))
		cf_failed(w, &res);
	else {
		cf_ok(w);
		name_failed(w, e, fqdn, "created", &res);
	}
}

/* ---- orphans ----------------------------------------------------------- */

/*
 * Orphans are our records whose database is gone. A wrong PGUSER or
 * ODOO_CONF makes every tenant look gone at once, so removal has a safety
 * valve (CONTRACT 8): nothing while the tenant list is empty; a record only
 * once its tenant has been missing for WATCHER_ORPHAN_GRACE_SECONDS (and two
 * polls), counted in memory from the first poll that missed it, so that a
 * restart starts counting again (it only delays); and per poll at most
 * WATCHER_ORPHAN_MAX_POLL records, and in each zone at most
 * WATCHER_ORPHAN_ZONE_PCT % of the records we own there (at least one), the
 * longest missing first. What the valve holds back is logged at warning.
 */
struct orphans {
	struct watcher *w;
	long long now_ms;
	struct ncache_entry **v; /* due for deletion */
	size_t n, cap;
	size_t missing; /* our records whose tenant is not listed */
	size_t *owned;  /* per zone: our records (s->nzones) */
	int nomem;
};

/*
 * After the tenants were listed: count our records per zone, note since
 * when each has been without its database, collect the ones due for
 * deletion, and forget entries that only held the state of a tenant that
 * is gone.
 */
static int
orphan_cb(void *arg, struct ncache_entry *e)
{
	struct orphans *o = arg;
	struct watcher *w = o->w;
	struct ncache_entry **nv;
	size_t ncap;

	if (e->zone != NCACHE_NO_ZONE &&
	    (e->state == NC_OURS || e->state == NC_DRIFT))
		o->owned[e->zone]++;
	if (e->seen_poll == w->poll_no)
		return 0;
	if (e->zone == NCACHE_NO_ZONE || e->state == NC_NONE)
		return 1;
	if (e->state != NC_OURS)
		return 0; /* a mirror of the zone, not ours to count */
	o->missing++;
	if (e->absent < WATCHER_ABSENT_MAX)
		e->absent++;
	if (e->absent_since_ms == 0)
		e->absent_since_ms = o->now_ms > 0 ? o->now_ms : 1;
	if (!w->s->watcher_delete_orphans || e->absent < WATCHER_ORPHAN_POLLS ||
	    o->now_ms - e->absent_since_ms <
	        (long long)w->s->watcher_orphan_grace * 1000)
		return 0;
	if (o->n == o->cap) {
		ncap = o->cap ? o->cap * 2 : 16;
		if ((nv = realloc(o->v, ncap * sizeof(*nv))) == NULL) {
			o->nomem = 1;
			return 0;
		}
		o->v = nv;
		o->cap = ncap;
	}
	o->v[o->n++] = e;
	return 0;
}

/* The longest missing first; then by zone and name, for a stable order. */
static int
orphan_cmp(const void *a, const void *b)
{
	const struct ncache_entry *x = *(const struct ncache_entry *const *)a;
	const struct ncache_entry *y = *(const struct ncache_entry *const *)b;

	if (x->absent_since_ms != y->absent_since_ms)
		return x->absent_since_ms < y->absent_since_ms ? -1 : 1;
	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	return strcmp(x->label, y->label);
}

/* 1 when a deletion was sent, 0 when it waits (or dry run). */
static int
delete_one(struct watcher *w, struct ncache_entry *e, long long now_ms,
    struct tally *t)
{
	struct zstate *zs = &w->zones[e->zone];
	const struct zone *z = &w->s->zones[e->zone];
	char fqdn[WATCHER_FQDN_MAX];
	struct cf_result res;
	unsigned long before, sent;
	long long gone_s = (now_ms - e->absent_since_ms) / 1000;

	if (fqdn_of(w, e, fqdn, sizeof(fqdn)) == -1)
		return 0;
	if (w->dry_run) {
		if (!e->dry_logged)
			log_msg(LOG_INFO, e->label,
			    "dry run: would delete "
			    "record %s (id %s): its database has been gone "
			    "for %lld s",
			    fqdn, e->id, gone_s);
		e->dry_logged = 1;
		return 0;
	}
	if (watcher_now_ms() < e->not_before_ms)
		return 0;
	/*
	 * The cache may be an hour old and someone may have taken the record
	 * over since: delete only on a recent read (one request per page),
	 * which the next poll makes.
	 */
	if (watcher_now_ms() - zs->read_ms > WATCHER_ORPHAN_FRESH_MS) {
		zs->stale = 1;
		return 0;
	}
	if (!cf_gate(w, WATCHER_DELETE_MAX_REQ))
		return 0;
	before = cf_client_requests(w->cf);
	cf_delete_record(w->cf, z->zone_id, e->id, &res);
	sent = cf_account(w, before);
	if (res.status == CF_DELETED || res.status == CF_ABSENT) {
		cf_ok(w);
		if (res.status == CF_DELETED) {
			t->deleted++;
			log_msg(LOG_NOTICE, e->label,
			    "DNS record deleted: %s "
			    "(id %s); its database has been gone for %lld s",
			    fqdn, e->id, gone_s);
		} else
			log_msg(LOG_DEBUG, e->label,
			    "DNS record %s (id %s) "
			    "was already gone",
			    fqdn, e->id);
		e->state = NC_NONE; /* freed by the next orphan pass */
		e->id[0] = '\0';
		return 1;
	}
	if (cf_transient(&res, sent))
		cf_failed(w, &res);
	else {
		cf_ok(w);
		name_failed(w, e, fqdn, "deleted", &res);
	}
	return 1;
}

/* The orphans due, through the valve. ntenants: tenants listed. */
static void
remove_orphans(struct watcher *w, struct orphans *o, size_t ntenants,
    struct tally *t)
{
	size_t *done = NULL, i, sent = 0, held = 0, cap;
	struct ncache_entry *e;

	if (!w->s->watcher_delete_orphans)
		return;
	if (ntenants == 0) {
		if (o->missing > 0 && !w->orphans_refused)
			log_warn("orphan removal refused: PostgreSQL lists no "
			         "tenant, yet %zu DNS record(s) of this node "
			         "have no database (a wrong PGUSER or "
			         "ODOO_CONF?); nothing is deleted while the "
			         "tenant list is empty",
			    o->missing);
		w->orphans_refused = o->missing > 0;
		return;
	}
	if (w->orphans_refused)
		log_info("orphan removal: tenants are listed again");
	w->orphans_refused = 0;
	if (o->n == 0) {
		w->orphans_held = 0;
		return;
	}
	if (w->dry_run) {
		for (i = 0; i < o->n; i++)
			delete_one(w, o->v[i], o->now_ms, t);
		return;
	}
	if ((done = calloc(w->s->nzones > 0 ? w->s->nzones : 1,
	         sizeof(*done))) == NULL) {
		log_err("out of memory removing orphan records");
		return;
	}
	qsort(o->v, o->n, sizeof(*o->v), orphan_cmp);
	for (i = 0; i < o->n; i++) {
		e = o->v[i];
		cap = o->owned[e->zone] * WATCHER_ORPHAN_ZONE_PCT / 100;
		if (cap < 1)
			cap = 1;
		if (sent >= WATCHER_ORPHAN_MAX_POLL || done[e->zone] >= cap) {
			held++;
			continue;
		}
		if (delete_one(w, e, o->now_ms, t)) {
			sent++;
			done[e->zone]++;
		}
	}
	free(done);
	if (held > 0)
		log_msg(w->orphans_held ? LOG_DEBUG : LOG_WARNING, NULL,
		    "orphan removal held back: %zu more record(s) are due; "
		    "one poll deletes at most %d records, and in each zone at "
		    "most %d %% of the records it owns there",
		    held, WATCHER_ORPHAN_MAX_POLL, WATCHER_ORPHAN_ZONE_PCT);
	w->orphans_held = held > 0;
}

/* ---- one poll ---------------------------------------------------------- */

/* Sorts the tenants of a poll out: in place, conflict, or work to do. */
static void
classify(struct watcher *w, const struct tenant *tv, size_t n,
    struct ncache_entry **work, size_t *nwork, struct tally *t)
{
	const struct zone *z;
	struct ncache_entry *e;
	uint32_t zi;
	size_t i;
	int reverify;

	*nwork = 0;
	for (i = 0; i < n; i++) {
		z = settings_zone(w->s, tv[i].domain);
		zi = z != NULL ? (uint32_t)(z - w->s->zones) : NCACHE_NO_ZONE;
		if ((e = ncache_get(&w->names, zi, tv[i].name)) == NULL) {
			log_err("out of memory");
			t->failed++;
			continue;
		}
		e->seen_poll = w->poll_no;
		if (zi == NCACHE_NO_ZONE) {
			if (!e->zone_warned)
				log_msg(LOG_WARNING, e->label,
				    "tenant %s: "
				    "domain %s is not a zone of %s; it gets no "
				    "DNS record",
				    e->label, tv[i].domain, w->s->domains_file);
			e->zone_warned = 1;
			t->nozone++;
			continue;
		}
		if (!w->zones[zi].loaded) {
			t->waiting++;
			continue;
		}
		/* Gone and back: the record may have been deleted since. */
		reverify = e->absent > 0 && e->state == NC_OURS;
		e->absent = 0;
		e->absent_since_ms = 0;
		if (e->state == NC_OURS && !reverify) {
			t->records++;
			continue;
		}
		if (e->state == NC_FOREIGN) {
			t->conflicts++;
			if (!e->conflict_logged) {
				log_msg(LOG_WARNING, e->label,
				    "DNS conflict: "
				    "%s; left alone until the name changes "
				    "hands",
				    e->conflict != NULL
				        ? e->conflict
				        : "name held by a record not ours");
				t->new_conflicts++;
			}
			e->conflict_logged = 1;
			continue;
		}
		work[(*nwork)++] = e;
	}
}

static void
summarize(struct watcher *w, const struct tally *t, unsigned long sent)
{
	int changed = t->created || t->deleted || t->new_conflicts ||
	    t->failed || t->zones_read;

	log_msg(changed ? LOG_INFO : LOG_DEBUG, NULL,
	    "poll %lu: %zu tenants, "
	    "%zu records in place; created %u, deleted %u, conflicts %zu, "
	    "failed %zu, waiting %zu; %lu Cloudflare requests",
	    w->poll_no, t->tenants, t->records, t->created, t->deleted,
	    t->conflicts, t->failed, t->waiting + t->nozone, sent);
}

int
watcher_poll(struct watcher *w)
{
	struct tenant *tv = NULL;
	struct ncache_entry **work = NULL;
	struct orphans o;
	struct tally t;
	size_t n = 0, nwork = 0, i;
	unsigned long before;
	int insync;

	memset(&t, 0, sizeof(t));
	w->poll_no++;
	w->poll_used = 0;
	w->stopping = 0;
	before = cf_client_requests(w->cf);
	if (list_tenants(w, &tv, &n) == -1) {
		w->listed = 0;
		return 0;
	}
	w->listed = 1;
	t.tenants = n;
	alive(w);

	/* Which zones this poll needs read. */
	for (i = 0; i < w->s->nzones; i++)
		w->zones[i].needed = w->s->watcher_delete_orphans;
	for (i = 0; i < n; i++) {
		const struct zone *z = settings_zone(w->s, tv[i].domain);

		if (z != NULL)
			w->zones[z - w->s->zones].needed = 1;
	}
	read_zones(w, &t);

	if (n > 0 && (work = calloc(n, sizeof(*work))) == NULL) {
		log_err("out of memory");
		free(tv);
		return 0;
	}
	classify(w, tv, n, work, &nwork, &t);
	free(tv);
	for (i = 0; i < nwork; i++)
		ensure_one(w, work[i], &t);
	free(work);

	memset(&o, 0, sizeof(o));
	o.w = w;
	o.now_ms = watcher_now_ms();
	if ((o.owned = calloc(w->s->nzones > 0 ? w->s->nzones : 1,
	         sizeof(*o.owned))) == NULL)
		o.nomem = 1;
	else
		ncache_each(&w->names, orphan_cb, &o);
	if (o.nomem)
		log_err("out of memory collecting orphan records");
	else
		remove_orphans(w, &o, n, &t);
	free(o.owned);
	free(o.v);

	summarize(w, &t, cf_client_requests(w->cf) - before);
	insync = t.records == t.tenants;
	w->last = t;
	if (insync) {
		w->ever_synced = 1;
		w->last_sync_ms = watcher_now_ms();
	}
	return insync;
}

/* ---- STATUS= ----------------------------------------------------------- */

static void append(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

void
watcher_status(const struct watcher *w, char *buf, size_t len)
{
	long long now = watcher_now_ms();
	size_t off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (w->dry_run)
		append(buf, len, &off, "dry run: ");
	append(buf, len, &off, "%zu tenants, %zu records, ", w->last.tenants,
	    w->last.records);
	if (w->ever_synced)
		append(buf, len, &off, "last sync %lld s ago",
		    (now - w->last_sync_ms) / 1000);
	else
		append(buf, len, &off, "not in sync yet");
	if (w->last.conflicts > 0)
		append(buf, len, &off, "; %zu conflicts", w->last.conflicts);
	if (w->last.waiting + w->last.nozone > 0)
		append(buf, len, &off, "; %zu waiting",
		    w->last.waiting + w->last.nozone);
	if (!w->listed)
		append(buf, len, &off, "; PostgreSQL unreachable");
	if (w->orphans_refused)
		append(buf, len, &off,
		    "; orphan removal refused (no tenant listed)");
	if (now < w->cf_not_before_ms)
		append(buf, len, &off, "; Cloudflare retry in %lld s",
		    (w->cf_not_before_ms - now + 999) / 1000);
}

/* ---- metrics ------------------------------------------------------------ */

void
watcher_facts(const struct watcher *w, struct watcher_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->tenants = w->last.tenants;
	f->records = w->last.records;
	f->conflicts = w->last.conflicts;
	f->pending = w->last.waiting + w->last.nozone + w->last.failed;
	f->failed = w->last.failed;
	f->listed = w->listed;
	f->cf_backoff = watcher_now_ms() < w->cf_not_before_ms;
}

struct cf_client *
watcher_cf(struct watcher *w)
{
	return w->cf;
}
