/*
 * pgtool.h - running PostgreSQL's own client programs (pg_dump, later psql
 * for restores) as children, connected as the node's role.
 *
 * The program is PostgreSQL 15's (PGTOOL_BINDIR) when installed there,
 * else the one on PATH. The connection parameters reach the child through
 * its environment (PGHOST, PGPORT, PGUSER, PGPASSWORD), never its argv,
 * which any local user can read in /proc. Its stderr goes to an anonymous
 * memory file so that a failure's message can be logged. Thread-safe: the
 * child is started with posix_spawn and every descriptor of ours is
 * close-on-exec.
 */
#ifndef NODO_PGTOOL_H
#define NODO_PGTOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "nodo/settings.h"

#define PGTOOL_BINDIR  "/usr/lib/postgresql/15/bin"
#define PGTOOL_MAX_ARG 16   /* arguments of one child */
#define PGTOOL_ERR_MAX 1024 /* bytes of the child's stderr kept */

struct pgtool_child {
	pid_t pid;
	int out;  /* the read end of its stdout when asked for, else -1 */
	int errf; /* its stderr (a memfd), -1 once read */
};

/*
 * Starts prog ("pg_dump", "psql") with argv (NULL-terminated, argv[0]
 * included; no secret in it) and application_name appname. in is its
 * stdin (-1: /dev/null); its stdout is a pipe whose read end is ch->out.
 * Returns 0, or -1 with err.
 */
int pgtool_spawn(const struct settings *s, const char *prog,
    const char *const argv[], const char *appname, int in,
    struct pgtool_child *ch, char *err, size_t errlen);

/*
 * Waits for the child and closes ch->out. Returns its exit status (0 is
 * success), 128 + the signal that ended it, or -1; msg gets the last
 * line(s) of its stderr ("" when none), with newlines made spaces.
 */
int pgtool_wait(struct pgtool_child *ch, char *msg, size_t msglen);

/* Sends SIGTERM to a running child (then pgtool_wait()s it). */
void pgtool_kill(struct pgtool_child *ch);

/* The path of prog: PGTOOL_BINDIR/prog when executable, else prog. */
const char *pgtool_path(const char *prog, char *buf, size_t len);

#endif
