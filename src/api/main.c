/*
 * main.c - odoo-local-api: the tenant provisioning daemon.
 *
 * Loads the settings (exit 78 naming the key on a bad one), cleans up what
 * interrupted creations left, listens, tells systemd READY=1, and then the
 * main thread only waits for signals and pings the watchdog. SIGTERM and
 * SIGINT stop accepting, let requests in flight finish, and exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include "nodo/log.h"
#include "nodo/pg.h"
#include "nodo/settings.h"
#include "nodo/tenant.h"
#include "http.h"

#define EX_CONFIG        78
#define STOP_GRACE_MS    25000 /* requests in flight get this long on stop */
#define CLEANUP_INTERVAL 300   /* seconds between clean-ups of leftovers */
#define MALLOC_ARENAS    2     /* one thread per connection: cap the arenas */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: odoo-local-api [--config FILE] [--check] [--version] "
	    "[--help]\n"
	    "\n"
	    "The Nodo tenant provisioning API (HTTP, default port 8070).\n"
	    "\n"
	    "  -c, --config FILE  env file (default " SETTINGS_DEFAULT_ENV_FILE
	    ");\n"
	    "                     the process environment overrides it\n"
	    "  -n, --check        validate settings, domains.json and the\n"
	    "                     database connection, print every problem,\n"
	    "                     exit 0 when all is well\n"
	    "  -V, --version      print the version\n"
	    "  -h, --help         this text\n"
	    "\n"
	    "Routes: GET /health, GET /api/tenants[?domain=D], POST "
	    "/api/tenant,\n"
	    "DELETE /api/tenant, GET /api/domains, GET /api/node, GET "
	    "/metrics\n"
	    "(the key, X-API-KEY or Authorization: Bearer, on /api/* and "
	    "/metrics).\n"
	    "Exit status: 0 ok, 1 runtime failure, 78 configuration error.\n"
	    "See odoo-local-api(8) in /opt/nodo/docs.\n");
}

/* --check: the settings loaded; now PostgreSQL, the template, data_dir. */
static int
check(const struct settings *s)
{
	char err[512];
	PGconn *c;
	int bad = 0;
	struct stat st;

	printf("settings: ok (%s)\n",
	    s->env_file ? s->env_file : "environment only");
	printf("dns: %s\n",
	    s->dns_enabled ? "enabled"
	                   : "disabled (no "
	                     "CLOUDFLARE_API_TOKEN)");
	if ((c = pg_connect(s, PG_MAINT_DB, err, sizeof(err))) == NULL) {
		printf("postgres: FAILED: %s\n", err);
		bad = 1;
	} else {
		const char *p[1] = { s->default_template };
		PGresult *r = PQexecParams(c,
		    "SELECT 1 FROM pg_database"
		    " WHERE datname = $1",
		    1, NULL, p, NULL, NULL, 0);

		printf("postgres: ok (user %s)\n", PQuser(c));
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			printf("DEFAULT_TEMPLATE_DB: FAILED: database '%s' "
			       "does not exist\n",
			    s->default_template);
			bad = 1;
		} else
			printf("DEFAULT_TEMPLATE_DB: ok (%s)\n",
			    s->default_template);
		PQclear(r);
		PQfinish(c);
	}
	if (stat(s->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		printf("ODOO_DATA_DIR: FAILED: %s is not a directory\n",
		    s->data_dir);
		bad = 1;
	} else
		printf("ODOO_DATA_DIR: ok (%s)\n", s->data_dir);
	return bad ? 1 : 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = SETTINGS_DEFAULT_ENV_FILE;
	int explicit = 0, do_check = 0, ch, cleaned, rc = 0;
	struct settings s;
	struct settings_errors errs;
	struct tenant_ctx t;
	struct http_server *h;
	sigset_t set;
	uint64_t wd_usec = 0;
	struct timespec tick, now;
	time_t last_clean;

	while ((ch = getopt_long(argc, argv, "c:nVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			explicit = 1;
			break;
		case 'n':
			do_check = 1;
			break;
		case 'V':
			printf("odoo-local-api %s\n", NODO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 64;
	}
	log_init("odoo-local-api");
	memset(&s, 0, sizeof(s));
	memset(&errs, 0, sizeof(errs));
	if (settings_load(&s, SETTINGS_API, config, explicit, &errs) != 0) {
		settings_errors_print(&errs);
		settings_errors_free(&errs);
		settings_free(&s);
		return EX_CONFIG;
	}
	settings_errors_free(&errs);
	log_set_level(s.log_level);
	if (do_check) {
		rc = check(&s);
		settings_free(&s);
		return rc;
	}
	if (!s.dns_enabled)
		log_notice("DNS disabled: CLOUDFLARE_API_TOKEN is empty; "
		           "tenants get no Cloudflare record");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_err("curl_global_init failed");
		settings_free(&s);
		return 1;
	}

	/*
	 * glibc gives threads their own malloc arenas (up to 8 per core);
	 * with a thread per connection that is memory kept for nothing.
	 */
	mallopt(M_ARENA_MAX, MALLOC_ARENAS);

	/* Signals are taken in this thread only (sigtimedwait below). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	t.s = &s;
	if ((t.pool = pg_pool_new(&s)) == NULL) {
		log_err("out of memory");
		return 1;
	}
	cleaned = tenant_cleanup(&t) == 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	last_clean = now.tv_sec;
	if (!cleaned)
		log_warn("PostgreSQL not reachable at start; serving, "
		         "and cleaning up leftovers once it is");
	if ((h = http_start(&s, &t)) == NULL) {
		pg_pool_free(t.pool);
		settings_free(&s);
		return 1;
	}
	log_info("listening on %s:%d (odoo-local-api %s, data_dir %s, "
	         "template %s)",
	    s.api_host, s.api_port, NODO_VERSION, s.data_dir,
	    s.default_template);
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%d%s", s.api_host,
	    s.api_port, cleaned ? "" : ", PostgreSQL unreachable");
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;

	for (;;) {
		siginfo_t si;
		int sig;
		uint64_t us = wd_usec ? wd_usec / 2 : 5000000;

		tick.tv_sec = (time_t)(us / 1000000);
		tick.tv_nsec = (long)(us % 1000000) * 1000;
		sig = sigtimedwait(&set, &si, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			log_info("SIGHUP: settings are read at start; "
			         "restart the service to apply changes");
		if (wd_usec)
			sd_notify(0, "WATCHDOG=1");
		pg_pool_trim(t.pool, PG_POOL_IDLE_S);
		/*
		 * Leftovers of creations that failed while PostgreSQL was
		 * away (their drop failed too) go now and then, not only at
		 * start. The clean-up skips its turn while creations run.
		 */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!cleaned || now.tv_sec - last_clean >= CLEANUP_INTERVAL) {
			last_clean = now.tv_sec;
			if (tenant_cleanup(&t) == 0 && !cleaned) {
				cleaned = 1;
				sd_notify(0,
				    "STATUS=listening, PostgreSQL "
				    "reachable");
			}
			/* A clean-up may take seconds: ping again. */
			if (wd_usec)
				sd_notify(0, "WATCHDOG=1");
		}
	}
	sd_notifyf(0, "STOPPING=1\nSTATUS=finishing %d request(s)",
	    http_inflight(h));
	log_info("stopping: finishing %d request(s) in flight",
	    http_inflight(h));
	http_stop(h, STOP_GRACE_MS);
	pg_pool_free(t.pool);
	curl_global_cleanup();
	settings_free(&s);
	log_info("stopped");
	return 0;
}
