/*
 * main.c - odoo-local-api: the tenant provisioning daemon.
 *
 * Loads the settings (exit 78 naming the key on a bad one), binds its port
 * and takes the node lock (exit 1 when another API has either: one API per
 * node), cleans up what interrupted creations left, serves, tells systemd
 * READY=1, and then the main thread only waits for signals and pings the
 * watchdog; a thread of its own keeps the lock and cleans up now and then.
 * SIGTERM and SIGINT stop accepting, let requests in flight finish, and
 * exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sys/prctl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include "nodo/log.h"
#include "nodo/pg.h"
#include "nodo/settings.h"
#include "nodo/spares.h"
#include "nodo/suspend.h"
#include "nodo/tenant.h"
#include "http.h"
#include "nodelock.h"

#define EX_CONFIG          78
#define STOP_GRACE_MS      25000 /* requests in flight get this long on stop */
#define CLEANUP_INTERVAL   300   /* seconds between clean-ups of leftovers */
#define MAINT_TICK_S       5     /* seconds between looks at the node lock */
#define MAINT_JOIN_S       10    /* seconds the stop waits for the clean-up */
#define LOCK_START_WAIT_MS 3000  /* a dead API's lock may linger this long */
#define LOCK_START_POLL_MS 100   /* ms between tries meanwhile */
#define MALLOC_ARENAS      2     /* poll, job and hash threads: cap arenas */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: odoo-local-api [--config FILE] [--check] [--version] "
	    "[--help]\n"
	    "       odoo-local-api --print-example-env | --print-settings-doc\n"
	    "\n"
	    "The Nodo tenant provisioning API (HTTP, default port 8070).\n"
	    "\n"
	    "  -c, --config FILE  env file (default " SETTINGS_DEFAULT_ENV_FILE
	    ");\n"
	    "                     the process environment overrides it\n"
	    "  -n, --check        validate settings, domains.json and the\n"
	    "                     database connection, print every problem,\n"
	    "                     exit 0 when all is well\n"
	    "  --print-example-env   print the example env file (nodo.env)\n"
	    "  --print-settings-doc  print docs/SETTINGS.md (every key)\n"
	    "  -V, --version      print the version\n"
	    "  -h, --help         this text\n"
	    "\n"
	    "Routes: GET /health, GET /api/tenants[?domain=D], POST "
	    "/api/tenant,\n"
	    "DELETE /api/tenant, GET /api/domains, GET /api/node, GET "
	    "/metrics\n"
	    "(the key, X-API-KEY or Authorization: Bearer, on /api/* and "
	    "/metrics).\n"
	    "One API per node and database role: a second one exits 1.\n"
	    "Exit status: 0 ok, 1 runtime failure, 78 configuration error.\n"
	    "See odoo-local-api(8) in /opt/nodo/docs.\n");
}

/*
 * --check: a template with file-backed attachments needs its filestore
 * folder (CONTRACT 8). Reading them takes a short connection to the
 * template, closed at once: a creation of the daemon beside us may end it
 * (and retries its clone). Returns 1 when the template cannot be copied.
 */
static int
check_template_files(const struct settings *s, int allows_conn)
{
	char err[512], fs[PATH_MAX];
	PGconn *c;
	int files, readable;

	if ((size_t)snprintf(fs, sizeof(fs), "%s/filestore/%s", s->data_dir,
	        s->default_template) >= sizeof(fs)) {
		printf("filestore: FAILED: path too long\n");
		return 1;
	}
	readable = tenant_folder_readable(fs) == 0;
	if (!allows_conn) {
		printf("filestore: %s %s (attachments not checked: '%s' is "
		       "ALLOW_CONNECTIONS false)\n",
		    fs, readable ? "readable" : "missing or unreadable",
		    s->default_template);
		return 0;
	}
	if ((c = pg_connect(s, s->default_template, err, sizeof(err))) ==
	    NULL) {
		printf("filestore: FAILED: cannot connect to '%s' to read its "
		       "attachments: %s\n",
		    s->default_template, err);
		return 1;
	}
	files = tenant_db_has_files(c, err, sizeof(err));
	PQfinish(c);
	if (files == -1) {
		printf("filestore: FAILED: reading ir_attachment of '%s': %s\n",
		    s->default_template, err);
		return 1;
	}
	if (files && !readable) {
		printf("filestore: FAILED: filestore_missing: '%s' has "
		       "file-backed attachments but its folder %s is missing "
		       "or unreadable\n",
		    s->default_template, fs);
		return 1;
	}
	if (!readable)
		printf("filestore: ok (%s absent; '%s' has no file-backed "
		       "attachments: tenants get no folder)\n",
		    fs, s->default_template);
	else
		printf("filestore: ok (%s)\n", fs);
	return 0;
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
		PGresult *r = pg_query(c,
		    "SELECT datallowconn FROM pg_database"
		    " WHERE datname = $1",
		    1, p);

		printf("postgres: ok (user %s)\n", PQuser(c));
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			printf("DEFAULT_TEMPLATE_DB: FAILED: database '%s' "
			       "does not exist\n",
			    s->default_template);
			bad = 1;
		} else {
			printf("DEFAULT_TEMPLATE_DB: ok (%s)\n",
			    s->default_template);
			bad |= check_template_files(s,
			    PQgetvalue(r, 0, 0)[0] == 't');
		}
		PQclear(r);
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
	if (stat(s->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		printf("ODOO_DATA_DIR: FAILED: %s is not a directory\n",
		    s->data_dir);
		bad = 1;
	} else
		printf("ODOO_DATA_DIR: ok (%s)\n", s->data_dir);
	return bad ? 1 : 0;
}

/*
 * The port, bound before anything else is touched: a second API on the
 * same port stops here. MHD serves it later (MHD_OPTION_LISTEN_SOCKET);
 * meanwhile connections wait in the backlog. Options as MHD's own:
 * SO_REUSEADDR, IPV6_V6ONLY. Returns the socket or -1 (logged).
 */
static int
listen_socket(const struct settings *s)
{
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
	const struct sockaddr *sa;
	socklen_t len;
	int fd, on = 1;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (inet_pton(AF_INET, s->api_host, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)s->api_port);
		sa = (const struct sockaddr *)&a4;
		len = sizeof(a4);
	} else if (inet_pton(AF_INET6, s->api_host, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)s->api_port);
		sa = (const struct sockaddr *)&a6;
		len = sizeof(a6);
	} else {
		log_err("API_HOST: '%s' is not an IPv4 or IPv6 address",
		    s->api_host);
		return -1;
	}
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		log_err("socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on));
	if (bind(fd, sa, len) != 0 || listen(fd, SOMAXCONN) != 0) {
		int e = errno;

		log_err("cannot listen on %s port %d: %s%s", s->api_host,
		    s->api_port, strerror(e),
		    e == EADDRINUSE ? " (is another odoo-local-api running? "
		                      "one API per node; this one exits and "
		                      "touches nothing)"
		                    : "");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The node lock at start. Held by another session, it is asked again for
 * LOCK_START_WAIT_MS: after a crash, the dead API's backend may take a
 * moment to notice its client is gone and release it (systemd restarts
 * the service at once).
 */
static enum nodelock_state
take_lock_at_start(struct nodelock *l, const struct settings *s, char *who,
    size_t len)
{
	enum nodelock_state st;
	int waited = 0;

	while ((st = nodelock_take(l, s, s->api_port, who, len)) ==
	        NODELOCK_BUSY &&
	    waited < LOCK_START_WAIT_MS) {
		if (waited == 0)
			log_info("%s holds the node lock; waiting up to %d ms "
			         "for it to go",
			    who, LOCK_START_WAIT_MS);
		usleep(LOCK_START_POLL_MS * 1000);
		waited += LOCK_START_POLL_MS;
	}
	return st;
}

/*
 * The clean-up thread: keeps the node lock, trims idle connections and
 * removes leftovers of interrupted creations, off the main thread so that
 * a slow PostgreSQL can never hold up the watchdog's ping.
 */
struct maint {
	const struct settings *s;
	struct tenant_ctx *t;
	struct nodelock lock;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* stop was set */
	int stop;            /* under mu */
	atomic_int lost;     /* another API took the lock: exit 1 */
	int locked;          /* the lock was held at the last look */
	int cleaned;         /* a clean-up succeeded since the start */
	time_t last_clean;   /* monotonic seconds */
};

static void
maint_tick(struct maint *m)
{
	char who[512];
	struct timespec now;
	int had = nodelock_held(&m->lock);

	switch (
	    nodelock_take(&m->lock, m->s, m->s->api_port, who, sizeof(who))) {
	case NODELOCK_HELD:
		if (!had)
			log_notice("node lock taken%s",
			    m->locked ? " again (its connection had ended)"
			              : "");
		m->locked = 1;
		break;
	case NODELOCK_BUSY:
		log_err("%s took the node lock while this one could not reach "
		        "PostgreSQL: one API per node; this one stops",
		    who);
		atomic_store(&m->lost, 1);
		kill(getpid(), SIGTERM);
		return;
	case NODELOCK_UNREACHABLE:
		if (m->locked)
			log_warn("node lock lost (%s); no clean-up until it is "
			         "taken again",
			    who);
		m->locked = 0;
		pg_pool_trim(m->t->pool, PG_POOL_IDLE_S);
		return;
	}
	pg_pool_trim(m->t->pool, PG_POOL_IDLE_S);
	/*
	 * Leftovers of creations that failed while PostgreSQL was away
	 * (their drop failed too) go now and then, not only at start. The
	 * clean-up skips its turn while creations run.
	 */
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!m->cleaned || now.tv_sec - m->last_clean >= CLEANUP_INTERVAL) {
		m->last_clean = now.tv_sec;
		/* Suspends a crash left half done (suspend.h). */
		suspend_recover(m->t);
		if (tenant_cleanup(m->t) == 0 && !m->cleaned) {
			m->cleaned = 1;
			sd_notify(0, "STATUS=listening, PostgreSQL reachable");
		}
	}
}

static void *
maint_thread(void *arg)
{
	struct maint *m = arg;
	struct timespec until;

	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		pthread_mutex_unlock(&m->mu);
		maint_tick(m);
		pthread_mutex_lock(&m->mu);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += MAINT_TICK_S;
		while (!m->stop &&
		    pthread_cond_timedwait(&m->wake, &m->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/*
 * SIGHUP (systemctl reload): the env file and domains.json again, through
 * settings_load(). Invalid: logged at err, nothing changes. Valid: what
 * can change without a restart is swapped in whole (settings_live); each
 * changed key that needs a restart is named at warning and keeps its old
 * value. systemd hears RELOADING=1 first and READY=1 when done.
 */
static void
reload(struct settings_live *live, struct http_server *h, const char *config,
    int explicit)
{
	struct settings nw;
	struct settings_errors errs;
	const struct settings *cur;
	struct timespec ts;
	int lvl;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0,
	    "RELOADING=1\nSTATUS=reloading the settings\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	        (unsigned long long)ts.tv_nsec / 1000ULL);
	log_notice("SIGHUP: reloading %s and domains.json",
	    config != NULL ? config : SETTINGS_DEFAULT_ENV_FILE);
	memset(&errs, 0, sizeof(errs));
	if (settings_load(&nw, SETTINGS_API, config, explicit, &errs) != 0) {
		log_err("reload refused: the settings have errors (below); the "
		        "settings in effect are kept unchanged");
		settings_errors_print(&errs);
		settings_errors_free(&errs);
		settings_free(&nw);
		sd_notify(0,
		    "READY=1\nSTATUS=reload refused: the settings "
		    "have errors (see the log); old settings kept");
		return;
	}
	settings_errors_free(&errs);
	cur = settings_live_get(live);
	settings_reload_merge(cur, &nw, "odoo-local-api");
	settings_live_put(live, cur);
	lvl = nw.log_level;
	if (!nw.dns_enabled)
		log_notice("DNS disabled: CLOUDFLARE_API_TOKEN is empty; "
		           "tenants get no Cloudflare record");
	if (settings_live_set(live, &nw) != 0) {
		log_err("reload: out of memory; the settings in effect are "
		        "kept");
		settings_free(&nw);
	} else {
		log_set_level(lvl);
		http_reloaded(h);
		log_notice("reload done: new requests use the new settings");
	}
	sd_notify(0, "READY=1\nSTATUS=listening (settings reloaded)");
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "print-example-env", no_argument, NULL, 'E' },
		{ "print-settings-doc", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = SETTINGS_DEFAULT_ENV_FILE;
	int explicit = 0, do_check = 0, ch, fd, rc = 0;
	struct settings s;
	struct settings_live *live;
	const struct settings *sp;
	struct settings_errors errs;
	struct tenant_ctx t;
	struct http_server *h;
	struct maint m;
	struct spares *spares;
	pthread_t mt;
	pthread_condattr_t ca;
	char who[512];
	sigset_t set;
	uint64_t wd_usec = 0;
	struct timespec tick, now;

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
		case 'E':
			return settings_print_example(stdout) == 0 &&
			        fflush(stdout) == 0
			    ? 0
			    : 1;
		case 'D':
			return settings_print_doc(stdout) == 0 &&
			        fflush(stdout) == 0
			    ? 0
			    : 1;
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
	if ((live = settings_live_new(&s)) == NULL) {
		log_err("out of memory");
		settings_free(&s);
		return 1;
	}
	/* Held until exit: what a reload never changes (port, PG...). */
	sp = settings_live_get(live);
	t.live = live;
	if (!sp->dns_enabled)
		log_notice("DNS disabled: CLOUDFLARE_API_TOKEN is empty; "
		           "tenants get no Cloudflare record");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_err("curl_global_init failed");
		settings_live_put(live, sp);
		settings_live_free(live);
		return 1;
	}

	/*
	 * glibc gives threads their own malloc arenas (up to 8 per core);
	 * with a dozen short-lived threads that is memory kept for nothing.
	 */
	mallopt(M_ARENA_MAX, MALLOC_ARENAS);

	/* Signals are taken in this thread only (sigtimedwait below). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	t.s = sp;
	if ((t.pool = pg_pool_new(sp)) == NULL) {
		log_err("out of memory");
		return 1;
	}
	/*
	 * The port, then the node lock, then the clean-up: a second API
	 * started by hand fails at one of the first two and touches nothing
	 * (the clean-up would take the first one's creations in progress
	 * for leftovers).
	 */
	if ((fd = listen_socket(sp)) < 0) {
		pg_pool_free(t.pool);
		settings_live_put(live, sp);
		settings_live_free(live);
		return 1;
	}
	memset(&m, 0, sizeof(m));
	m.s = sp;
	m.t = &t;
	pthread_mutex_init(&m.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m.wake, &ca);
	pthread_condattr_destroy(&ca);
	switch (take_lock_at_start(&m.lock, sp, who, sizeof(who))) {
	case NODELOCK_BUSY:
		log_err("%s already runs for role %s on this PostgreSQL: "
		        "one API per node; this one exits and touches nothing",
		    who, sp->pg_user != NULL ? sp->pg_user : "(libpq default)");
		close(fd);
		pg_pool_free(t.pool);
		settings_live_put(live, sp);
		settings_live_free(live);
		return 1;
	case NODELOCK_UNREACHABLE:
		log_warn("PostgreSQL not reachable at start (%s); serving, and "
		         "taking the node lock and cleaning up leftovers once "
		         "it is",
		    who);
		break;
	case NODELOCK_HELD:
		m.locked = 1;
		m.cleaned = tenant_cleanup(&t) == 0;
		suspend_recover(&t);
		break;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	m.last_clean = now.tv_sec;
	if ((h = http_start(sp, &t, fd)) == NULL) {
		close(fd);
		nodelock_release(&m.lock);
		pg_pool_free(t.pool);
		settings_live_put(live, sp);
		settings_live_free(live);
		return 1;
	}
	log_info("listening on %s:%d (odoo-local-api %s, data_dir %s, "
	         "template %s)",
	    sp->api_host, sp->api_port, NODO_VERSION, sp->data_dir,
	    sp->default_template);
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%d%s", sp->api_host,
	    sp->api_port, m.cleaned ? "" : ", PostgreSQL unreachable");
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
	if (pthread_create(&mt, NULL, maint_thread, &m) != 0) {
		log_err("cannot start the clean-up thread");
		http_stop(h, 0);
		nodelock_release(&m.lock);
		pg_pool_free(t.pool);
		settings_live_put(live, sp);
		settings_live_free(live);
		return 1;
	}

	/* After the start's clean-up: it removed a dead run's half spares. */
	if ((spares = spares_start(&t)) == NULL)
		log_warn("no spares: creates clone the template");

	/* This thread only takes signals and pings the watchdog. */
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
			reload(live, h, config, explicit);
		if (wd_usec)
			sd_notify(0, "WATCHDOG=1");
	}
	sd_notifyf(0, "STOPPING=1\nSTATUS=finishing %d request(s)",
	    http_inflight(h));
	log_info("stopping: finishing %d request(s) in flight",
	    http_inflight(h));
	spares_stop(spares);
	pthread_mutex_lock(&m.mu);
	m.stop = 1;
	pthread_cond_signal(&m.wake);
	pthread_mutex_unlock(&m.mu);
	http_stop(h, STOP_GRACE_MS);
	clock_gettime(CLOCK_REALTIME, &now);
	now.tv_sec += MAINT_JOIN_S;
	if (pthread_timedjoin_np(mt, NULL, &now) != 0) {
		/* A clean-up stuck in PostgreSQL: exiting ends it. */
		log_warn("the clean-up thread is still busy; exiting anyway");
		curl_global_cleanup();
		return atomic_load(&m.lost) ? 1 : 0;
	}
	/* Last: a new API may clean up once ours are all finished. */
	nodelock_release(&m.lock);
	pthread_cond_destroy(&m.wake);
	pthread_mutex_destroy(&m.mu);
	pg_pool_free(t.pool);
	curl_global_cleanup();
	settings_live_put(live, sp);
	settings_live_free(live);
	log_info("stopped");
	return atomic_load(&m.lost) ? 1 : 0;
}
