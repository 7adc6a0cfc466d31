/*
 * main.c - odoo-db-watcher: keeps a Cloudflare CNAME for every tenant.
 *
 * Loads the settings (exit 78 naming the key on a bad one), then polls
 * every DB_WATCHER_INTERVAL seconds (reconcile.c) and, between polls, waits
 * in sigtimedwait() on the blocked signal set: that wait is the only sleep,
 * so SIGTERM ends the daemon at once, and it wakes often enough to feed the
 * systemd watchdog. A pending SIGTERM also stops a pass between two
 * Cloudflare calls. READY=1 follows the first poll whatever its outcome
 * (PostgreSQL or Cloudflare being down is a state to report in STATUS=, not
 * a reason to be restarted); with DNS disabled the daemon idles and says so.
 */
#include <errno.h>
#include <getopt.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include "nodo/cloudflare.h"
#include "nodo/log.h"
#include "nodo/pg.h"
#include "nodo/settings.h"
#include "nodo/tenant.h"
#include "watcher.h"
#include "wmetrics.h"

#define EX_USAGE     64
#define EX_CONFIG    78
#define IDLE_TICK_MS 5000 /* ms between wake-ups without a watchdog */
#define STATUS_MAX   256  /* bytes, one STATUS= line */

/* The daemon's side of the loop: signals and the watchdog. */
struct ctl {
	sigset_t set;     /* blocked; taken by sigtimedwait() only */
	uint64_t wd_usec; /* WatchdogSec= in us, 0 when off */
	long long last_ping_ms;
};

static void
usage(FILE *f)
{
	fprintf(f, "%s",
	    "usage: odoo-db-watcher [--config FILE] [--once] [--dry-run]\n"
	    "                       [--check] [--version] [--help]\n"
	    "\n"
	    "Keeps one Cloudflare DNS record per Nodo tenant: CNAME\n"
	    "<tenant>.<domain> -> <CF_TUNNEL_ID>.cfargotunnel.com, proxied,\n"
	    "with the comment \"" CF_OWNER_COMMENT "\" marking it as the "
	    "node's.\n"
	    "\n"
	    "Every DB_WATCHER_INTERVAL seconds (default 10) it lists the\n"
	    "tenant databases with one query and creates the missing\n"
	    "records. It reads each zone's records at start and hourly and\n"
	    "otherwise remembers them, so a poll with nothing new makes no\n"
	    "Cloudflare request. A name held by a record it does not own\n"
	    "is a conflict: logged once and never touched. With\n"
	    "WATCHER_DELETE_ORPHANS=1 it also deletes its own records\n"
	    "whose database has been gone for WATCHER_ORPHAN_GRACE_SECONDS\n"
	    "(default 600), never while no tenant is listed, and at most 5\n"
	    "records (and 10% of a zone's own) per poll.\n"
	    "Cloudflare failures (5xx, timeouts, 429 with Retry-After) and\n"
	    "PostgreSQL failures are retried with backoff; they never end\n"
	    "the daemon.\n"
	    "\n"
	    "  -c, --config FILE  env file (default\n"
	    "                     " SETTINGS_DEFAULT_ENV_FILE ");\n"
	    "                     the process environment overrides it\n"
	    "  -1, --once         one pass, then exit: 0 when every tenant\n"
	    "                     has its record, 1 otherwise (conflicts,\n"
	    "                     failures, records the budget left for a\n"
	    "                     later pass)\n"
	    "  -n, --dry-run      log what would be created or deleted,\n"
	    "                     change nothing\n"
	    "  -k, --check        validate the settings, the database\n"
	    "                     connection and (DNS enabled) that every\n"
	    "                     zone can be read; print every problem,\n"
	    "                     exit 0 when all is well\n"
	    "  -V, --version      print the version\n"
	    "  -h, --help         this text\n"
	    "\n"
	    "Limits: at most " WATCHER_STR(
	        WATCHER_POLL_BUDGET) " Cloudflare "
	                             "requests per poll and " WATCHER_STR(WATCHER_WINDOW_BUDGET) " per\n" WATCHER_STR(
	                                 WATCHER_WINDOW_S) " s (Cloudflare "
	                                                   "allows 1,200 per "
	                                                   "300 s). Without\n"
	                                                   "CLOUDFLARE_API_"
	                                                   "TOKEN DNS is "
	                                                   "disabled: the "
	                                                   "daemon idles and\n"
	                                                   "--once exits 0.\n"
	                                                   "Exit status: 0 ok, "
	                                                   "1 not in sync "
	                                                   "(--once) or a "
	                                                   "failed check,\n"
	                                                   "64 usage, 78 "
	                                                   "configuration "
	                                                   "error.\n"
	                                                   "See DB_WATCHER.md "
	                                                   "and "
	                                                   "odoo-db-watcher.8."
	                                                   "md in "
	                                                   "/opt/nodo/docs.\n");
}

static long long
now_ms(void)
{
	return watcher_now_ms();
}

static void
ctl_alive(void *arg)
{
	struct ctl *c = arg;
	long long now;

	if (c->wd_usec == 0)
		return;
	/* Four pings per period: one late wake-up never costs a restart. */
	now = now_ms();
	if (now - c->last_ping_ms >= (long long)(c->wd_usec / 4000)) {
		sd_notify(0, "WATCHDOG=1");
		c->last_ping_ms = now;
	}
}

/* 1 when SIGTERM or SIGINT is pending (left pending for ctl_wait). */
static int
ctl_stop(void *arg)
{
	sigset_t pend;

	if (sigpending(&pend) == -1)
		return 0;
	return sigismember(&pend, SIGTERM) == 1 ||
	    sigismember(&pend, SIGINT) == 1;
}

/*
 * Waits until the monotonic time until_ms, feeding the watchdog. Returns
 * the stop signal (or SIGHUP, a reload) that arrived, or 0 when the time
 * came.
 */
static int
ctl_wait(struct ctl *c, long long until_ms)
{
	struct timespec ts;
	siginfo_t si;
	long long now, slice, tick;
	int sig;

	tick = c->wd_usec ? (long long)(c->wd_usec / 4000) : IDLE_TICK_MS;
	if (tick < 1)
		tick = 1;
	for (;;) {
		ctl_alive(c);
		/*
		 * Even when the time has already come (a poll ran late) the
		 * signals are looked at, with a zero timeout: otherwise polls
		 * that always overrun would never see SIGTERM.
		 */
		now = now_ms();
		slice = until_ms - now < tick ? until_ms - now : tick;
		if (slice < 0)
			slice = 0;
		ts.tv_sec = (time_t)(slice / 1000);
		ts.tv_nsec = (long)(slice % 1000) * 1000000;
		sig = sigtimedwait(&c->set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			return sig;
		if (sig == -1 && errno != EAGAIN && errno != EINTR) {
			log_err("sigtimedwait: %s", strerror(errno));
			return SIGTERM;
		}
		if (now_ms() >= until_ms)
			return 0;
	}
}

/* Zone read for --check: counts records and ours. */
struct check_count {
	size_t n, ours;
};

static void
check_cb(void *arg, const struct cf_record *r)
{
	struct check_count *k = arg;

	k->n++;
	if (r->owned)
		k->ours++;
}

/* --check: the settings loaded; now PostgreSQL and each zone. */
static int
check(const struct settings *s)
{
	struct tenant_ctx t = { .s = s, .pool = NULL };
	struct tenant_result tr;
	struct tenant *tv;
	struct cf_client *cf;
	struct cf_result res;
	struct check_count k;
	char err[512];
	PGconn *c;
	size_t n, i;
	int bad = 0;

	printf("settings: ok (%s)\n",
	    s->env_file ? s->env_file : "environment only");
	printf("DB_WATCHER_INTERVAL: %d s; WATCHER_DELETE_ORPHANS: %s "
	       "(after %d s)\n",
	    s->watcher_interval, s->watcher_delete_orphans ? "on" : "off",
	    s->watcher_orphan_grace);
	if ((c = pg_connect(s, PG_MAINT_DB, err, sizeof(err))) == NULL) {
		printf("postgres: FAILED: %s\n", err);
		bad = 1;
	} else {
		memset(&tr, 0, sizeof(tr));
		if (tenant_list(&t, c, NULL, &tv, &n, &tr) != TENANT_OK) {
			printf("postgres: FAILED: %s\n", tr.detail);
			bad = 1;
		} else {
			printf("postgres: ok (user %s, %zu tenants)\n",
			    PQuser(c), n);
			free(tv);
		}
		PQfinish(c);
	}
	/* The seed's example ids ("zone_id_1") start the node, not DNS. */
	for (size_t z = 0; z < s->nzones; z++) {
		char why[512];

		if (settings_zone_id_problem(&s->zones[z], why, sizeof(why))) {
			printf("DOMAINS_FILE: FAILED: %s: %s\n",
			    s->domains_file, why);
			bad = 1;
		}
	}
	if (!s->dns_enabled) {
		printf("dns: disabled (no CLOUDFLARE_API_TOKEN); the watcher "
		       "will idle\n");
		return bad;
	}
	printf("dns: enabled, CNAME target %s.cfargotunnel.com\n",
	    s->cf_tunnel_id);
	if ((cf = cf_client_new(s->cf_api_url, s->cf_token)) == NULL) {
		printf("cloudflare: FAILED: out of memory\n");
		return 1;
	}
	for (i = 0; i < s->nzones; i++) {
		memset(&k, 0, sizeof(k));
		if (cf_list_zone(cf, s->zones[i].zone_id, check_cb, &k, &res) ==
		    0)
			printf("cloudflare: zone %s (%s): ok, %zu records, %zu "
			       "managed by this node\n",
			    s->zones[i].domain, s->zones[i].zone_id, k.n,
			    k.ours);
		else {
			printf("cloudflare: zone %s (%s): FAILED: %s\n",
			    s->zones[i].domain, s->zones[i].zone_id,
			    res.detail);
			bad = 1;
		}
	}
	cf_client_free(cf);
	return bad;
}

/*
 * DNS disabled: nothing to do, but stay up so systemd does not loop.
 * Returns the signal that ended the wait (SIGHUP: a reload).
 */
static int
idle(struct ctl *c, struct wmetrics *wm)
{
	int sig;

	sd_notify(0,
	    "READY=1\nSTATUS=DNS disabled (CLOUDFLARE_API_TOKEN is "
	    "empty); idle");
	do
		wmetrics_idle(wm);
	while ((sig = ctl_wait(c, now_ms() + IDLE_TICK_MS * 12)) == 0);
	return sig;
}

/*
 * SIGHUP (systemctl reload): the settings again, through settings_load().
 * Invalid: logged at err, 0, nothing changes. Valid: restart-only keys
 * named at warning and kept as in s, *nw filled; 1 (the caller frees its
 * watcher, then reload_apply(); the new watcher reads each zone again).
 */
static int
reload(const struct settings *s, struct settings *nw, const char *config,
    int explicit)
{
	struct settings_errors errs;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0,
	    "RELOADING=1\nSTATUS=reloading the settings\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	        (unsigned long long)ts.tv_nsec / 1000ULL);
	log_notice("SIGHUP: reloading %s and domains.json",
	    config != NULL ? config : SETTINGS_DEFAULT_ENV_FILE);
	memset(&errs, 0, sizeof(errs));
	if (settings_load(nw, SETTINGS_WATCHER, config, explicit, &errs) != 0) {
		log_err("reload refused: the settings have errors (below); the "
		        "settings in effect are kept unchanged");
		settings_errors_print(&errs);
		settings_errors_free(&errs);
		settings_free(nw);
		sd_notify(0,
		    "READY=1\nSTATUS=reload refused: the settings "
		    "have errors (see the log); old settings kept");
		return 0;
	}
	settings_errors_free(&errs);
	settings_reload_merge(s, nw, "odoo-db-watcher");
	return 1;
}

/* The second half of a reload: s (no watcher uses it now) becomes nw. */
static void
reload_apply(struct settings *s, struct settings *nw)
{
	settings_free(s);
	*s = *nw;
	memset(nw, 0, sizeof(*nw));
	log_set_level(s->log_level);
	log_notice("reload done: the next poll uses the new settings");
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, '1' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "check", no_argument, NULL, 'k' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = SETTINGS_DEFAULT_ENV_FILE;
	int explicit = 0, do_check = 0, once = 0, dry_run = 0, ch, rc = 0;
	int insync = 0, ready = 0;
	struct settings s, nw;
	struct settings_errors errs;
	struct watcher_hooks hooks;
	struct watcher *w;
	struct wmetrics *wm = NULL;
	struct ctl ctl;
	char status[STATUS_MAX];
	long long start;

	while (
	    (ch = getopt_long(argc, argv, "c:1nkVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			explicit = 1;
			break;
		case '1':
			once = 1;
			break;
		case 'n':
			dry_run = 1;
			break;
		case 'k':
			do_check = 1;
			break;
		case 'V':
			printf("odoo-db-watcher %s\n", NODO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	log_init("odoo-db-watcher");
	/*
	 * Before any secret is read: not dumpable, so that another process
	 * of the same uid (Odoo's, for the API) cannot read this one's memory
	 * or environment through ptrace or /proc/<pid>/mem, and no core file
	 * holds the key, the token or the database password.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_warn("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	memset(&s, 0, sizeof(s));
	memset(&errs, 0, sizeof(errs));
	if (settings_load(&s, SETTINGS_WATCHER, config, explicit, &errs) != 0) {
		settings_errors_print(&errs);
		settings_errors_free(&errs);
		settings_free(&s);
		return EX_CONFIG;
	}
	settings_errors_free(&errs);
	log_set_level(s.log_level);

	/* Blocked before anything can start a thread (curl's resolver). */
	memset(&ctl, 0, sizeof(ctl));
	sigemptyset(&ctl.set);
	sigaddset(&ctl.set, SIGTERM);
	sigaddset(&ctl.set, SIGINT);
	sigaddset(&ctl.set, SIGHUP);
	sigprocmask(SIG_BLOCK, &ctl.set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_err("curl_global_init failed");
		settings_free(&s);
		return 1;
	}
	if (do_check) {
		rc = check(&s) ? 1 : 0;
		goto out;
	}
	if (sd_watchdog_enabled(0, &ctl.wd_usec) <= 0)
		ctl.wd_usec = 0;
	ctl.last_ping_ms = now_ms();

	/* --once is a manual run: the daemon's file is not ours to write. */
	if (!once && (wm = wmetrics_new(s.watcher_metrics_file)) == NULL) {
		log_err("out of memory");
		rc = 1;
		goto out;
	}
	hooks.stop = ctl_stop;
	hooks.alive = ctl_alive;
	hooks.arg = &ctl;
	/* One turn per settings: a reload (SIGHUP) starts the next. */
	for (;;) {
		int sig = 0;

		if (!s.dns_enabled) {
			log_notice("DNS disabled: CLOUDFLARE_API_TOKEN is "
			           "empty; nothing to watch%s",
			    once ? "" : ", idling");
			if (once) {
				printf("odoo-db-watcher: DNS is disabled "
				       "(CLOUDFLARE_API_TOKEN is empty); "
				       "nothing to do\n");
				goto out;
			}
			sig = idle(&ctl, wm);
			ready = 1;
			if (sig != SIGHUP)
				goto stopping;
			if (reload(&s, &nw, config, explicit)) {
				reload_apply(&s, &nw);
				ready = 2;
			}
			continue;
		}
		if ((w = watcher_new(&s, dry_run, &hooks)) == NULL) {
			rc = 1;
			goto out;
		}
		if (wm != NULL)
			cf_client_set_observer(watcher_cf(w), wmetrics_cf, wm);
		log_info("watching every %d s (odoo-db-watcher %s%s%s; orphan "
		         "deletion %s)",
		    s.watcher_interval, NODO_VERSION,
		    dry_run ? ", dry run" : "", once ? ", once" : "",
		    s.watcher_delete_orphans ? "on" : "off");
		if (s.watcher_delete_orphans &&
		    s.watcher_orphan_grace < SETTINGS_DEFAULT_ORPHAN_GRACE)
			log_warn("WATCHER_ORPHAN_GRACE_SECONDS=%d is under the "
			         "%d s CONTRACT 8 asks for: a record goes %d s "
			         "after its database (meant for tests)",
			    s.watcher_orphan_grace,
			    SETTINGS_DEFAULT_ORPHAN_GRACE,
			    s.watcher_orphan_grace);
		for (;;) {
			start = now_ms();
			insync = watcher_poll(w);
			if (wm != NULL)
				wmetrics_poll(wm, w);
			watcher_status(w, status, sizeof(status));
			/* After a reload too: READY=1 ends RELOADING=1. */
			sd_notifyf(0, "%sSTATUS=%s",
			    ready != 1 ? "READY=1\n" : "", status);
			ready = 1;
			if (once)
				break;
			/* A fixed cadence: a slow poll shortens the wait. */
			sig = ctl_wait(&ctl,
			    start + (long long)s.watcher_interval * 1000);
			if (sig == SIGHUP) {
				if (reload(&s, &nw, config, explicit))
					break; /* a new watcher below */
				continue;      /* refused: as before */
			}
			if (sig != 0)
				break;
		}
		if (once) {
			log_info("once: %s (%lu Cloudflare requests)", status,
			    watcher_cf_requests(w));
			rc = insync ? 0 : 1;
			watcher_free(w);
			goto out;
		}
		if (sig == SIGHUP) {
			watcher_free(w);
			w = NULL;
			reload_apply(&s, &nw);
			ready = 2; /* READY=1 after the next poll */
			continue;
		}
		sd_notify(0, "STOPPING=1\nSTATUS=stopping");
		watcher_free(w);
		log_info("stopped");
		goto out;
	}
stopping:
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	log_info("stopped");
out:
	wmetrics_free(wm);
	curl_global_cleanup();
	settings_free(&s);
	return rc;
}
