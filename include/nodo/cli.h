/*
 * cli.h - the parts of the `nodo` command line tool that need no network
 * (CONTRACT sections 7 and 13): its settings (the env file read with the
 * daemons' own parser, settings_parse_env(), and the NODO_* environment),
 * option parsing, URL encoding and the progress bar's text. src/cli/main.c
 * does the HTTP calls and the printing; keeping these here puts them in
 * libnodo, where the unit tests reach them. Every function is thread-safe
 * (none keeps state).
 */
#ifndef NODO_CLI_H
#define NODO_CLI_H

#include <stddef.h>

/* Exit statuses of nodo and of the scripts over it (sysexits.h). */
#define CLI_EX_OK 0 /* done */
/* the API refused (its detail on stderr), or a question was answered no */
#define CLI_EX_API         1
#define CLI_EX_USAGE       64 /* bad command line */
#define CLI_EX_UNAVAILABLE 69 /* no usable answer from the API */
#define CLI_EX_IOERR       74 /* a local file could not be read or written */
#define CLI_EX_CONFIG      78 /* env file unreadable, no key, bad port/URL */

#define CLI_DEFAULT_TIMEOUT 900 /* seconds, a JSON request in all */
#define CLI_MAX_POSITIONAL  8
#define CLI_MAX_ERR         512 /* bytes, one error sentence */

/* Looks a variable up (getenv, or a table in the tests). */
typedef const char *(*cli_getenv_fn)(const char *name);

struct cli_config {
	char *env_file; /* the env file named (read or not); owned */
	char *key;      /* the API key (secret); owned */
	char *url;      /* API base URL without a trailing slash; owned */
	long timeout;   /* NODO_API_TIMEOUT in seconds, -1 when unset */
};

/*
 * Fills c from NODO_ENV_FILE (default SETTINGS_DEFAULT_ENV_FILE: its
 * PROVISIONING_API_KEY, API_HOST, API_PORT) and the overrides NODO_API_KEY,
 * NODO_API_URL, NODO_API_TIMEOUT, as the daemons read the file. The file is
 * not needed when NODO_API_KEY and NODO_API_URL are both set. Returns
 * CLI_EX_OK, or CLI_EX_CONFIG / CLI_EX_USAGE with a sentence in err naming
 * the file and key (never the key's value). c must be zeroed; free it with
 * cli_config_free() in every case.
 */
int cli_config_load(struct cli_config *c, cli_getenv_fn get, char *err,
    size_t errlen);

void cli_config_free(struct cli_config *c);

/*
 * The base URL for a daemon listening on host:port: a wildcard address is
 * reached on the loopback, an IPv6 literal is bracketed. Returns 0, or -1
 * when buf is too small.
 */
int cli_base_url(char *buf, size_t len, const char *host, int port);

/* 1 when name is a NODO_* variable nodo does not read (a typo), else 0. */
int cli_unknown_env(const char *name);

/* One option of a subcommand. */
struct cli_opt {
	const char *name; /* "json" for --json */
	char shortc;      /* 'y' for -y, 0 for none */
	int has_arg;      /* takes a value: --name V, --name=V, -x V */
	int *flag;        /* set to 1 when seen (options without a value) */
	const char **val; /* set to the value (options with one) */
};

/*
 * Parses argv[0..argc) against opts (terminated by a NULL name): options
 * anywhere (the seed wrote `delete_tenant.sh NAME --yes`), "--" ends them,
 * "-" alone is a positional. Positionals are stored in pos (at most max).
 * Returns 0, or -1 with a sentence in err (unknown option, missing value,
 * too many arguments, a value given to a flag).
 */
int cli_parse(int argc, char **argv, const struct cli_opt *opts, char **pos,
    int max, int *npos, char *err, size_t errlen);

/*
 * Percent-encodes s (every byte but A-Z a-z 0-9 . _ ~ -) into buf. Returns
 * 0, or -1 when buf is too small.
 */
int cli_urlencode(char *buf, size_t len, const char *s);

/* "512 B", "1.5 KiB", "12.3 MiB", "1.02 GiB" (binary units). */
void cli_human_bytes(char *buf, size_t len, unsigned long long n);

/*
 * One line of the transfer progress bar, at most width columns (width
 * under 20 counts as 20): with a known total (total >= 0)
 *   "[=======>        ]  45%  12.3 MiB / 27.1 MiB  3.2 MiB/s"
 * and without one "12.3 MiB  3.2 MiB/s"; the rate is left out while
 * seconds <= 0. Returns the length written (buf is always terminated).
 */
size_t cli_progress_line(char *buf, size_t len, unsigned long long done,
    long long total, double seconds, int width);

#endif
