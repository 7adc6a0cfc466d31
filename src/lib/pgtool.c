/*
 * pgtool.c - PostgreSQL client programs as children (see pgtool.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nodo/log.h"
#include "nodo/pgtool.h"
#include "nodo/util.h"

extern char **environ;

#define PGTOOL_ENV_MAX 512 /* variables of ours passed on */

const char *
pgtool_path(const char *prog, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s", PGTOOL_BINDIR, prog) < len &&
	    access(buf, X_OK) == 0)
		return buf;
	return prog; /* posix_spawnp looks it up on PATH */
}

/* "KEY=value" in a fresh allocation; NULL on ENOMEM. */
static char *
env_pair(const char *key, const char *val)
{
	size_t n = strlen(key) + strlen(val) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s=%s", key, val);
	return p;
}

static int
env_is(const char *e, const char *key)
{
	size_t n = strlen(key);

	return strncmp(e, key, n) == 0 && e[n] == '=';
}

static void
env_free(char **env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; env[i] != NULL; i++) {
		explicit_bzero(env[i], strlen(env[i]));
		free(env[i]);
	}
	free(env);
}

/*
 * Our environment without the PG* keys we set, plus the settings'
 * connection parameters: what pg_connect() uses, so the child reaches the
 * same server as the same role.
 */
static char **
child_env(const struct settings *s, const char *appname)
{
	static const char *const keys[] = { "PGHOST", "PGPORT", "PGUSER",
		"PGPASSWORD", "PGAPPNAME", "PGCONNECT_TIMEOUT", "PGDATABASE" };
	const char *vals[] = { s->pg_host, s->pg_port, s->pg_user,
		s->pg_password, appname, "5", NULL };
	size_t nk = sizeof(keys) / sizeof(keys[0]), n = 0, i, k;
	char **env = calloc(PGTOOL_ENV_MAX + nk + 1, sizeof(*env));

	if (env == NULL)
		return NULL;
	for (i = 0; environ[i] != NULL && n < PGTOOL_ENV_MAX; i++) {
		for (k = 0; k < nk; k++)
			/* The database is named in argv; PGDATABASE never. */
			if (env_is(environ[i], keys[k]) &&
			    (vals[k] != NULL || k == 6))
				break;
		if (k < nk)
			continue;
		if ((env[n++] = strdup(environ[i])) == NULL)
			goto fail;
	}
	for (k = 0; k < nk; k++) {
		if (vals[k] == NULL)
			continue;
		if ((env[n++] = env_pair(keys[k], vals[k])) == NULL)
			goto fail;
	}
	return env;
fail:
	env_free(env);
	return NULL;
}

int
pgtool_spawn(const struct settings *s, const char *prog,
    const char *const argv[], const char *appname, int in,
    struct pgtool_child *ch, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	char path[256], **env = NULL;
	int pfd[2] = { -1, -1 }, efd = -1, rc;

	ch->pid = -1;
	ch->out = ch->errf = -1;
	if (pipe2(pfd, O_CLOEXEC) != 0 ||
	    (efd = memfd_create("nodo-pgtool-stderr", MFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: cannot make a pipe: %s", prog,
		    strerror(errno));
		goto fail;
	}
	if ((env = child_env(s, appname)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", prog);
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	if (in >= 0)
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
		    0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, efd, 2);
	rc = posix_spawnp(&ch->pid, pgtool_path(prog, path, sizeof(path)), &fa,
	    NULL, (char *const *)(uintptr_t)argv, env);
	posix_spawn_file_actions_destroy(&fa);
	env_free(env);
	env = NULL;
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot run %s: %s", prog, path,
		    strerror(rc));
		ch->pid = -1;
		goto fail;
	}
	close(pfd[1]);
	ch->out = pfd[0];
	ch->errf = efd;
	return 0;
fail:
	env_free(env);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (efd >= 0)
		close(efd);
	return -1;
}

void
pgtool_kill(struct pgtool_child *ch)
{
	if (ch->pid > 0)
		kill(ch->pid, SIGTERM);
}

/* The tail of the child's stderr, on one line. */
static void
read_stderr(struct pgtool_child *ch, char *msg, size_t msglen)
{
	off_t size;
	ssize_t n;
	size_t i, want;

	if (msglen == 0)
		return;
	msg[0] = '\0';
	if (ch->errf < 0)
		return;
	size = lseek(ch->errf, 0, SEEK_END);
	want = msglen - 1 < PGTOOL_ERR_MAX ? msglen - 1 : PGTOOL_ERR_MAX;
	if (size > 0) {
		off_t from = size > (off_t)want ? size - (off_t)want : 0;

		n = pread(ch->errf, msg, want, from);
		if (n < 0)
			n = 0;
		msg[n] = '\0';
		for (i = 0; i < (size_t)n; i++)
			if (msg[i] == '\n' || msg[i] == '\r' || msg[i] == '\t')
				msg[i] = ' ';
		while (n > 0 && msg[n - 1] == ' ')
			msg[--n] = '\0';
	}
	close(ch->errf);
	ch->errf = -1;
}

int
pgtool_wait(struct pgtool_child *ch, char *msg, size_t msglen)
{
	int st = 0, rc = -1;
	pid_t w;

	if (ch->out >= 0) {
		close(ch->out);
		ch->out = -1;
	}
	if (ch->pid > 0) {
		while ((w = waitpid(ch->pid, &st, 0)) < 0 && errno == EINTR)
			;
		if (w == ch->pid && WIFEXITED(st))
			rc = WEXITSTATUS(st);
		else if (w == ch->pid && WIFSIGNALED(st))
			rc = 128 + WTERMSIG(st);
		ch->pid = -1;
	}
	read_stderr(ch, msg, msglen);
	return rc;
}
