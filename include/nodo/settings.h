/*
 * settings.h - the node's settings: the env file, the process environment,
 * domains.json and Odoo's odoo.conf (CONTRACT section 2).
 *
 * Loading follows "collect every error, then fail": settings_load() records
 * each problem (file, line, key, sentence) in a settings_errors list and only
 * reports failure at the end, so --check can print them all. The loaded
 * struct is read-only afterwards and may be shared by every thread.
 * No secret value ever appears in an error message.
 */
#ifndef NODO_SETTINGS_H
#define NODO_SETTINGS_H

#include <stddef.h>

#define SETTINGS_DEFAULT_ENV_FILE     "/opt/nodo/config/.env"
#define SETTINGS_DEFAULT_DOMAINS_FILE "/opt/nodo/cloudflare/domains.json"
#define SETTINGS_DEFAULT_ODOO_CONF    "/etc/odoo/odoo.conf"
#define SETTINGS_DEFAULT_DATA_DIR     "/var/lib/odoo"
#define SETTINGS_DEFAULT_CF_URL       "https://api.cloudflare.com/client/v4"
#define SETTINGS_DEFAULT_TEMPLATE     "tcs"
#define SETTINGS_DEFAULT_API_HOST     "0.0.0.0"
#define SETTINGS_DEFAULT_API_PORT     8070
#define SETTINGS_DEFAULT_INTERVAL     10 /* seconds */
#define SETTINGS_DEFAULT_METRICS      "/run/nodo/watcher.prom"
/* WATCHER_ORPHAN_GRACE_SECONDS: CONTRACT 8's 10 minutes, at most a week. */
#define SETTINGS_DEFAULT_ORPHAN_GRACE 600    /* seconds */
#define SETTINGS_MAX_ORPHAN_GRACE     604800 /* seconds */
#define SETTINGS_DEFAULT_TRASH_DAYS   7      /* TRASH_RETENTION_DAYS */
#define SETTINGS_MAX_TRASH_DAYS       3650

#define SETTINGS_MAX_FILE   (1024 * 1024) /* bytes, any settings file */
#define SETTINGS_MAX_LINE   4096          /* bytes, one env/odoo.conf line */
#define SETTINGS_MAX_ZONES  1000
#define SETTINGS_MAX_ERRORS 64

#define SETTINGS_MAX_TEMPLATES 32 /* names in TEMPLATE_DBS */

/* Which program loads them: the API needs the key, the watcher does not. */
enum settings_program { SETTINGS_API, SETTINGS_WATCHER };

struct zone {
	char *domain;  /* "sajet.us", lower case */
	char *zone_id; /* Cloudflare zone id */
};

struct settings {
	enum settings_program program; /* who loaded them (application_name) */
	char *env_file; /* the file read, or NULL when none was */

	char *odoo_domain; /* ODOO_DOMAIN */
	char *api_key;     /* PROVISIONING_API_KEY (secret) */
	size_t api_key_len;
	char *cf_token; /* CLOUDFLARE_API_TOKEN (secret); NULL/"" = DNS off */
	char *cf_tunnel_id;   /* CF_TUNNEL_ID, else tunnel_id of domains.json */
	char *cf_target;      /* "<cf_tunnel_id>.cfargotunnel.com", or NULL */
	char *cf_api_url;     /* CLOUDFLARE_API_URL, no trailing slash */
	char *domains_file;   /* DOMAINS_FILE */
	int watcher_interval; /* DB_WATCHER_INTERVAL, seconds, 1..3600 */
	int watcher_delete_orphans; /* WATCHER_DELETE_ORPHANS, 0/1 */
	int watcher_orphan_grace;   /* WATCHER_ORPHAN_GRACE_SECONDS, s */
	int trash_retention_days;   /* TRASH_RETENTION_DAYS, 0..3650 */
	char *api_host;             /* API_HOST */
	int api_port;               /* API_PORT, 1..65535 */
	char *default_template;     /* DEFAULT_TEMPLATE_DB */
	char *odoo_conf;            /* ODOO_CONF */
	char *data_dir; /* ODOO_DATA_DIR, else data_dir of odoo.conf */
	int log_level;  /* LOG_LEVEL as a syslog priority */
	/* WATCHER_METRICS_FILE: the watcher writes it, /metrics serves it */
	char *watcher_metrics_file; /* "" = none */

	/* Connection to PostgreSQL: PG* over odoo.conf db_*; NULL = libpq's. */
	char *pg_host;
	char *pg_port;
	char *pg_user;
	char *pg_password;      /* secret */
	char *odoo_db_template; /* db_template of odoo.conf, NULL when unset */

	struct zone *zones; /* from domains.json, in file order */
	size_t nzones;
	int dns_enabled; /* cf_token set and non-empty */

	/*
	 * TEMPLATE_DBS, the only databases a create may copy (CONTRACT 8).
	 * ntemplate_dbs == 0: unset, the default is resolved in SQL at run
	 * time (DEFAULT_TEMPLATE_DB plus the role's IS_TEMPLATE databases).
	 * When set, it names default_template.
	 */
	char **template_dbs;
	size_t ntemplate_dbs;
};

struct settings_error {
	char *file; /* may be NULL (environment) */
	int line;   /* 0 when not about one line */
	char *key;  /* may be NULL */
	char *msg;
};

struct settings_errors {
	struct settings_error e[SETTINGS_MAX_ERRORS];
	size_t n;
	size_t nwarn_start; /* unused by callers */
};

/*
 * Loads everything. config: the env file (NULL: the default); explicit: it
 * was given with --config (then it must be readable; otherwise a missing
 * default is fine). errs collects errors and must be zeroed by the caller;
 * warnings (unknown keys) are logged, not collected. An env file that group
 * or others may access is an error for the API, and for the watcher when it
 * sets a secret (else a warning). Not thread-safe (reads the environment).
 * Returns 0 when there is no error, -1 otherwise (s is then still filled as
 * far as it could be, and must be freed with settings_free()).
 */
int settings_load(struct settings *s, enum settings_program prog,
    const char *config, int explicit, struct settings_errors *errs);

/* Frees every string the struct owns; safe on a zeroed struct. */
void settings_free(struct settings *s);

/* Frees the strings of the collected errors. */
void settings_errors_free(struct settings_errors *errs);

/* Prints each error as "file:line: KEY: message" on stream-like stderr. */
void settings_errors_print(const struct settings_errors *errs);

/*
 * 1 with a sentence in buf when z's zone id breaks Cloudflare's rule
 * (cf_zone_id_valid; an empty id, DNS off for the zone, is fine), else 0.
 */
int settings_zone_id_problem(const struct zone *z, char *buf, size_t len);

/* The zone of a domain (case-insensitive), or NULL. */
const struct zone *settings_zone(const struct settings *s, const char *domain);

/*
 * Lower-level parsers, exposed for tests and fuzzing. Each takes a buffer
 * (not NUL-terminated necessarily) and calls back per entry; they return 0
 * or -1 after adding errors to errs (file names the source for messages).
 */
typedef void (
    *settings_kv_cb)(void *arg, const char *key, const char *val, int line);
int settings_parse_env(const char *buf, size_t len, const char *file,
    settings_kv_cb cb, void *arg, struct settings_errors *errs);
/* odoo.conf: only the [options] section is passed to cb; keys lower-cased. */
int settings_parse_odoo_conf(const char *buf, size_t len, const char *file,
    settings_kv_cb cb, void *arg, struct settings_errors *errs);
/* domains.json: fills zones/nzones and *tunnel_id (caller frees). */
int settings_parse_domains(const char *buf, size_t len, const char *file,
    struct zone **zones, size_t *nzones, char **tunnel_id,
    struct settings_errors *errs);

/* Adds one error (formats msg). */
void settings_error_add(struct settings_errors *errs, const char *file,
    int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
