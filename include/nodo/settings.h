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
#include <stdio.h>

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

#define SETTINGS_MAX_FILE   (1024 * 1024) /* bytes, any settings file */
#define SETTINGS_MAX_LINE   4096          /* bytes, one env/odoo.conf line */
#define SETTINGS_MAX_ZONES  1000
#define SETTINGS_MAX_ERRORS 64

#define SETTINGS_MAX_TEMPLATES 32 /* names in TEMPLATE_DBS */

/* The v2 keys (CONTRACT 2): trash, spares, restore. */
#define SETTINGS_DEFAULT_TRASH_DAYS  7
#define SETTINGS_MAX_TRASH_DAYS      3650
#define SETTINGS_DEFAULT_SPARES      1
#define SETTINGS_MAX_SPARES          16
#define SETTINGS_DEFAULT_RESTORE_MAX 17179869184LL      /* 16 GiB */
#define SETTINGS_MAX_RESTORE_MAX     1125899906842624LL /* 1 PiB */

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
	char *api_host;             /* API_HOST */
	int api_port;               /* API_PORT, 1..65535 */
	char *default_template;     /* DEFAULT_TEMPLATE_DB */
	char *odoo_conf;            /* ODOO_CONF */
	char *data_dir; /* ODOO_DATA_DIR, else data_dir of odoo.conf */
	int log_level;  /* LOG_LEVEL as a syslog priority */
	/* WATCHER_METRICS_FILE: the watcher writes it, /metrics serves it */
	char *watcher_metrics_file;  /* "" = none */
	int trash_retention_days;    /* TRASH_RETENTION_DAYS, 0..3650 */
	int spare_tenants;           /* SPARE_TENANTS, 0..16 (spares.h) */
	long long restore_max_bytes; /* RESTORE_MAX_BYTES */

	/* Connection to PostgreSQL: PG* over odoo.conf db_*; NULL = libpq's. */
	char *pg_host;
	char *pg_port;
	char *pg_user;
	char *pg_password;      /* secret */
	char *odoo_db_template; /* db_template of odoo.conf, NULL when unset */
	char *addons_path;      /* addons_path of odoo.conf, NULL when unset */

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

/*
 * The table of keys (settings.c), as redis's standardConfig: one row per
 * key drives parsing and validation, the unknown-key warning, the example
 * env file (config/nodo.env), docs/SETTINGS.md and what a reload applies.
 */
enum setting_type {
	SETTING_STRING,  /* any text */
	SETTING_PATH,    /* a file or directory */
	SETTING_SECRET,  /* text never logged nor printed */
	SETTING_INT,     /* a whole number within min..max */
	SETTING_BYTES,   /* a whole number of bytes within min..max */
	SETTING_BOOL,    /* true/false/yes/no/on/off/1/0 */
	SETTING_ENUM,    /* one of a list (doc names them) */
	SETTING_DOMAIN,  /* a lower-case DNS name */
	SETTING_ID,      /* a Cloudflare id */
	SETTING_URL,     /* an http(s) URL */
	SETTING_ADDRESS, /* an IP literal */
	SETTING_NAME,    /* a database name */
	SETTING_LIST,    /* comma-separated names */
	SETTING_PORTS,   /* a port or a comma-separated list of them */
};

#define SETTING_F_SECRET   0x01u /* never quoted back, never logged */
#define SETTING_F_RELOAD   0x02u /* applied by a reload (SIGHUP) */
#define SETTING_F_API      0x04u /* odoo-local-api reads it */
#define SETTING_F_WATCHER  0x08u /* odoo-db-watcher reads it */
#define SETTING_F_CLI      0x10u /* the CLI wrappers read it */
#define SETTING_F_REQUIRED 0x20u /* no default */
#define SETTING_F_SET      0x40u /* uncommented in the example file */

struct settings_loader;
struct setting_def {
	const char *name;
	enum setting_type type;
	const char *def;     /* the default as text; NULL: unset */
	const char *def_doc; /* the default as the docs say it; NULL: def */
	long long min, max;  /* SETTING_INT, SETTING_BYTES */
	unsigned flags;      /* SETTING_F_* */
	const char *doc;     /* one line for docs/SETTINGS.md */
	const char *example; /* comment lines of the example, "\n"-separated;
	                        NULL: continues the previous key's block */
	const char *ex;      /* the example line's value; NULL: def */
	/* Validates the value and stores it in struct settings. */
	void (*parse)(struct settings_loader *, const struct setting_def *);
	long field; /* offsetof(struct settings, x), -1: none */
};

/* The table, in the order of the example file; *n gets its length. */
const struct setting_def *settings_table(size_t *n);
/* The row of a key, or NULL. */
const struct setting_def *settings_def(const char *name);

/* Writes the example env file (config/nodo.env) / docs/SETTINGS.md. */
int settings_print_example(FILE *f);
int settings_print_doc(FILE *f);

/*
 * Reload: given the settings in effect (old) and freshly loaded ones (nw,
 * which passed validation), logs each changed key by name (never a value):
 * at info when a reload applies it, at warning "KEY changed: restart PROG
 * to apply" when it needs a restart, and puts old's value back into nw for
 * those. Returns how many reloadable keys changed (domains.json's zones
 * count as DOMAINS_FILE).
 */
int settings_reload_merge(const struct settings *old, struct settings *nw,
    const char *prog);

/*
 * Settings shared by threads, swapped whole on reload (RCU-like): a reader
 * takes a reference with settings_live_get() and gives it back with
 * settings_live_put(); settings_live_set() installs a new struct (taking
 * ownership of its strings) and frees the old one once its last reader is
 * done. Nothing is ever changed in place, so no read is torn.
 */
struct settings_live;
struct settings_live *settings_live_new(struct settings *s);
const struct settings *settings_live_get(struct settings_live *l);
void settings_live_put(struct settings_live *l, const struct settings *s);
int settings_live_set(struct settings_live *l, struct settings *s);
void settings_live_free(struct settings_live *l);

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
