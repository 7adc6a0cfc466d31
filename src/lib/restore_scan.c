/*
 * restore_scan.c - reads a backup's dump.sql the way psql's lexer does
 * (quotes, E'' strings, dollar quotes, comments, COPY data) and refuses,
 * before anything runs, what acts outside the dump's own database or
 * outside SQL (restore.h, docs/DESIGN.md "Restore from a backup").
 *
 * Memory is constant: one word, the first tokens of a statement, one
 * meta-command line. The bytes to run go to an fd; pg_dump's own
 * "\restrict KEY" / "\unrestrict KEY" lines are dropped (the restore puts
 * its own \restrict first). Any other backslash outside strings, comments
 * and COPY data is a psql meta-command and refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "nodo/restore.h"

#define SCAN_TOKENS 16    /* tokens of a statement kept */
#define SCAN_WORD   64    /* bytes of one word kept */
#define SCAN_META   256   /* bytes of a meta-command line */
#define SCAN_OUT    65536 /* output buffer */

enum sstate {
	S_NORMAL,
	S_SQ,     /* '...' */
	S_SQ_END, /* a quote in '...': the end, or '' */
	S_ESQ,    /* E'...' with backslash escapes */
	S_ESQ_END,
	S_DQ, /* "..." */
	S_DQ_END,
	S_TAG,    /* $tag$ being read */
	S_DOLLAR, /* $tag$ ... $tag$ */
	S_LINE_COMMENT,
	S_BLOCK_COMMENT,
	S_COPY, /* COPY data until \. */
	S_META, /* a backslash line */
};

struct restore_scan {
	int out;
	char obuf[SCAN_OUT];
	size_t olen;
	enum sstate st;
	int esc;   /* E'' string: the last byte was a backslash */
	int pend;  /* '-' or '/' waiting for its second byte, else 0 */
	int bpend; /* in a block comment: '*' or '/' seen */
	int depth; /* block comment nesting */
	char tag[SCAN_WORD + 2];
	size_t taglen, tagm;
	long line; /* 1-based line of the byte being read */
	long stmt_line;
	int line_blank; /* only blanks since the line began */
	char word[SCAN_WORD + 2];
	size_t wlen;
	char tok[SCAN_TOKENS][SCAN_WORD + 2];
	int ntok;
	int paren;
	int on, from, stdin_, program, to, strings, tablespace;
	int copy_pending;
	char cl[4];
	size_t cllen;
	char meta[SCAN_META + 1];
	size_t mlen;
	int failed;
	char err[512];
};

/* Server-side file, program and session functions a dump never calls. */
static const char *const bad_funcs[] = { "pg_read_file", "pg_read_binary_file",
	"pg_ls_dir", "pg_stat_file", "lo_import", "lo_export", "pg_file_write",
	"pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_ls_logdir",
	"pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir",
	"pg_logdir_ls", "dblink", "dblink_exec", "dblink_connect",
	"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
	"pg_rotate_logfile", "pg_promote", "pg_switch_wal",
	"pg_create_restore_point", "pg_signal_backend", "pg_backup_start",
	"pg_backup_stop" };

/* Extensions a dump may create: PostgreSQL's trusted ones (no C code of
 * the dump's choosing, nothing outside the database). */
static const char *const ok_exts[] = { "plpgsql", "pg_trgm", "unaccent",
	"btree_gin", "btree_gist", "fuzzystrmatch", "citext", "hstore",
	"intarray", "ltree", "pgcrypto", "tablefunc", "cube", "earthdistance",
	"isn", "seg", "tcn", "tsm_system_rows", "tsm_system_time", "uuid-ossp",
	"lo", "bool_plperl", "plperl", "jsonb_plperl" };

static int
refuse(struct restore_scan *sc, long line, const char *what)
{
	if (!sc->failed)
		snprintf(sc->err, sizeof(sc->err),
		    "dump.sql line %ld: %s (refused: a backup acts inside its "
		    "own database only)",
		    line, what);
	sc->failed = 1;
	return -1;
}

struct restore_scan *
restore_scan_new(int out)
{
	struct restore_scan *sc = calloc(1, sizeof(*sc));

	if (sc == NULL)
		return NULL;
	sc->out = out;
	sc->line = 1;
	sc->line_blank = 1;
	return sc;
}

void
restore_scan_free(struct restore_scan *sc)
{
	free(sc);
}

const char *
restore_scan_error(const struct restore_scan *sc)
{
	return sc->failed ? sc->err : "";
}

static int
flush_out(struct restore_scan *sc)
{
	size_t o = 0;

	while (sc->out >= 0 && o < sc->olen) {
		ssize_t n = write(sc->out, sc->obuf + o, sc->olen - o);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(sc->err, sizeof(sc->err),
			    "dump.sql: cannot write the dump: %s",
			    strerror(n < 0 ? errno : EIO));
			sc->failed = 2;
			return -1;
		}
		o += (size_t)n;
	}
	sc->olen = 0;
	return 0;
}

static int
is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

static int
tok_is(const struct restore_scan *sc, int i, const char *kw)
{
	return i < sc->ntok && strcmp(sc->tok[i], kw) == 0;
}

/* A word ended: a bad function anywhere; a token of the statement. */
static int
end_word(struct restore_scan *sc, int quoted, int keep)
{
	size_t i;

	if (sc->wlen == 0 && !quoted)
		return 0;
	sc->word[sc->wlen] = '\0';
	for (i = 0; i < sizeof(bad_funcs) / sizeof(bad_funcs[0]); i++)
		if (strcasecmp(sc->word, bad_funcs[i]) == 0) {
			char what[128];

			snprintf(what, sizeof(what), "the server function %s()",
			    bad_funcs[i]);
			sc->wlen = 0;
			return refuse(sc, sc->line, what);
		}
	if (keep) {
		char t[SCAN_WORD + 2];

		if (sc->ntok == 0)
			sc->stmt_line = sc->line;
		if (quoted)
			snprintf(t, sizeof(t), "\"%.*s", SCAN_WORD, sc->word);
		else {
			for (i = 0; i <= sc->wlen; i++)
				t[i] = (char)((sc->word[i] >= 'a' &&
				                  sc->word[i] <= 'z')
				        ? sc->word[i] - 'a' + 'A'
				        : sc->word[i]);
		}
		if (sc->ntok < SCAN_TOKENS)
			memcpy(sc->tok[sc->ntok++], t, sizeof(t));
		if (!quoted) {
			if (strcmp(t, "TABLESPACE") == 0)
				sc->tablespace = 1;
			if (sc->paren == 0) {
				sc->on |= strcmp(t, "ON") == 0;
				sc->from |= strcmp(t, "FROM") == 0;
				sc->stdin_ |= strcmp(t, "STDIN") == 0;
				sc->program |= strcmp(t, "PROGRAM") == 0;
				sc->to |= strcmp(t, "TO") == 0;
			}
		}
	}
	sc->wlen = 0;
	return 0;
}

static int
ext_ok(const char *name)
{
	size_t i;

	if (name[0] == '"')
		name++;
	for (i = 0; i < sizeof(ok_exts) / sizeof(ok_exts[0]); i++)
		if (strcasecmp(name, ok_exts[i]) == 0)
			return 1;
	return 0;
}

/* The statement ended (';' or the end of the dump): is it allowed? */
static int
check_stmt(struct restore_scan *sc)
{
	static const char *const objs[] = { "ROLE", "USER", "GROUP", "DATABASE",
		"TABLESPACE", "SUBSCRIPTION", "PUBLICATION", "SERVER",
		"FOREIGN", "EVENT", "SYSTEM", "OWNED" };
	char what[256];
	long l = sc->stmt_line;
	int i = 1;
	size_t k;

	if (sc->ntok == 0)
		goto ok;
	if (tok_is(sc, 0, "CREATE") || tok_is(sc, 0, "ALTER") ||
	    tok_is(sc, 0, "DROP")) {
		while (tok_is(sc, i, "OR") || tok_is(sc, i, "REPLACE") ||
		    tok_is(sc, i, "IF") || tok_is(sc, i, "NOT") ||
		    tok_is(sc, i, "EXISTS"))
			i++;
		for (k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
			if (tok_is(sc, i, objs[k])) {
				snprintf(what, sizeof(what), "%s %s",
				    sc->tok[0], objs[k]);
				return refuse(sc, l, what);
			}
		if (tok_is(sc, 0, "CREATE") && tok_is(sc, i, "EXTENSION")) {
			i++;
			while (tok_is(sc, i, "IF") || tok_is(sc, i, "NOT") ||
			    tok_is(sc, i, "EXISTS"))
				i++;
			if (i >= sc->ntok || !ext_ok(sc->tok[i])) {
				snprintf(what, sizeof(what),
				    "CREATE EXTENSION %.64s (not a trusted "
				    "extension)",
				    i < sc->ntok ? sc->tok[i] : "?");
				return refuse(sc, l, what);
			}
		}
	} else if (tok_is(sc, 0, "COMMENT") && tok_is(sc, 1, "ON")) {
		for (k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
			if (tok_is(sc, 2, objs[k])) {
				snprintf(what, sizeof(what), "COMMENT ON %s",
				    objs[k]);
				return refuse(sc, l, what);
			}
	} else if (tok_is(sc, 0, "GRANT") || tok_is(sc, 0, "REVOKE")) {
		if (!sc->on) {
			snprintf(what, sizeof(what),
			    "%s of a role (role membership)", sc->tok[0]);
			return refuse(sc, l, what);
		}
		for (i = 1; i + 1 < sc->ntok; i++)
			if (tok_is(sc, i, "ON") &&
			    tok_is(sc, i + 1, "DATABASE")) {
				snprintf(what, sizeof(what), "%s ON DATABASE",
				    sc->tok[0]);
				return refuse(sc, l, what);
			}
	} else if (tok_is(sc, 0, "SET") || tok_is(sc, 0, "RESET")) {
		i = 1;
		if (tok_is(sc, i, "LOCAL") ||
		    (tok_is(sc, i, "SESSION") &&
		        !tok_is(sc, i + 1, "AUTHORIZATION")))
			i++;
		if (tok_is(sc, i, "ROLE") ||
		    (tok_is(sc, i, "SESSION") &&
		        tok_is(sc, i + 1, "AUTHORIZATION")))
			return refuse(sc, l,
			    tok_is(sc, i, "ROLE")
			        ? "SET ROLE"
			        : "SET SESSION AUTHORIZATION");
		if (tok_is(sc, i, "STANDARD_CONFORMING_STRINGS") &&
		    !(tok_is(sc, 0, "SET") && tok_is(sc, i + 1, "ON") &&
		        sc->ntok == i + 2))
			return refuse(sc, l,
			    "standard_conforming_strings other than on");
	} else if (tok_is(sc, 0, "SECURITY") || tok_is(sc, 0, "LOAD") ||
	    tok_is(sc, 0, "DO") || tok_is(sc, 0, "REASSIGN")) {
		snprintf(what, sizeof(what), "%s", sc->tok[0]);
		return refuse(sc, l, what);
	} else if (tok_is(sc, 0, "COPY")) {
		if (!sc->from || !sc->stdin_ || sc->program || sc->to ||
		    sc->strings)
			return refuse(sc, l,
			    "COPY to or from a file or a program (only COPY "
			    "... FROM stdin)");
		sc->copy_pending = 1;
	}
	if (sc->tablespace)
		return refuse(sc, l, "TABLESPACE");
ok:
	sc->ntok = 0;
	sc->paren = 0;
	sc->on = sc->from = sc->stdin_ = sc->program = sc->to = 0;
	sc->strings = sc->tablespace = 0;
	return 0;
}

/* A backslash line: pg_dump's own \restrict / \unrestrict pass. */
static int
check_meta(struct restore_scan *sc)
{
	char *p = sc->meta;
	size_t n = sc->mlen, k;
	char what[96];

	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	p[n] = '\0';
	if (strncmp(p, "\\restrict ", 10) == 0)
		k = 10;
	else if (strncmp(p, "\\unrestrict ", 12) == 0)
		k = 12;
	else
		k = 0;
	if (k > 0 && p[k] != '\0' &&
	    strspn(p + k,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
	        "nopqrstuvwxyz0123456789") == n - k)
		return 0;
	snprintf(what, sizeof(what), "the psql meta-command '%.40s'",
	    p[0] == '\\' ? p : "\\");
	return refuse(sc, sc->line, what);
}

/* One byte: 0 to pass it on, 1 to drop it, -1 refused. */
static int
step(struct restore_scan *sc, unsigned char c)
{
again:
	switch (sc->st) {
	case S_NORMAL:
		if (sc->pend != 0) {
			int p = sc->pend;

			sc->pend = 0;
			if (p == '-' && c == '-') {
				sc->st = S_LINE_COMMENT;
				return 0;
			}
			if (p == '/' && c == '*') {
				sc->st = S_BLOCK_COMMENT;
				sc->depth = 1;
				return 0;
			}
		}
		if (is_word(c) || (c == '$' && sc->wlen > 0)) {
			if (sc->wlen < SCAN_WORD)
				sc->word[sc->wlen++] = (char)c;
			return 0;
		}
		if (c == '\'') {
			int e = sc->wlen == 1 &&
			    (sc->word[0] == 'E' || sc->word[0] == 'e');

			if (e)
				sc->wlen = 0;
			else if (end_word(sc, 0, 1) != 0)
				return -1;
			if (sc->paren == 0)
				sc->strings++;
			sc->st = e ? S_ESQ : S_SQ;
			sc->esc = 0;
			return 0;
		}
		if (end_word(sc, 0, 1) != 0)
			return -1;
		switch (c) {
		case '"':
			sc->st = S_DQ;
			return 0;
		case '$':
			sc->st = S_TAG;
			sc->tag[0] = '$';
			sc->taglen = 1;
			return 0;
		case '-':
		case '/':
			sc->pend = c;
			return 0;
		case '(':
			sc->paren++;
			return 0;
		case ')':
			if (sc->paren > 0)
				sc->paren--;
			return 0;
		case ';':
			if (check_stmt(sc) != 0)
				return -1;
			return 0;
		case '\\':
			if (sc->line_blank && sc->ntok == 0) {
				sc->st = S_META;
				sc->meta[0] = '\\';
				sc->mlen = 1;
				return 1;
			}
			return refuse(sc, sc->line,
			    "a psql meta-command (a backslash outside "
			    "strings)");
		case '\n':
			if (sc->copy_pending) {
				sc->copy_pending = 0;
				sc->st = S_COPY;
				sc->cllen = 0;
			}
			return 0;
		default:
			return 0;
		}
	case S_SQ:
	case S_ESQ:
		if (sc->st == S_ESQ && sc->esc) {
			sc->esc = 0;
			return 0;
		}
		if (sc->st == S_ESQ && c == '\\') {
			sc->esc = 1;
			return 0;
		}
		if (c == '\'')
			sc->st = sc->st == S_SQ ? S_SQ_END : S_ESQ_END;
		else if (is_word(c)) {
			if (sc->wlen < SCAN_WORD)
				sc->word[sc->wlen++] = (char)c;
		} else if (end_word(sc, 0, 0) != 0)
			return -1;
		return 0;
	case S_SQ_END:
	case S_ESQ_END:
		if (c == '\'') { /* '' inside the string */
			sc->st = sc->st == S_SQ_END ? S_SQ : S_ESQ;
			return 0;
		}
		if (end_word(sc, 0, 0) != 0)
			return -1;
		sc->st = S_NORMAL;
		goto again;
	case S_DQ:
		if (c == '"')
			sc->st = S_DQ_END;
		else if (sc->wlen < SCAN_WORD)
			sc->word[sc->wlen++] = (char)c;
		return 0;
	case S_DQ_END:
		if (c == '"') {
			if (sc->wlen < SCAN_WORD)
				sc->word[sc->wlen++] = '"';
			sc->st = S_DQ;
			return 0;
		}
		if (end_word(sc, 1, 1) != 0)
			return -1;
		sc->st = S_NORMAL;
		goto again;
	case S_TAG:
		if (c == '$') {
			sc->tag[sc->taglen++] = '$';
			sc->tagm = 0;
			sc->st = S_DOLLAR;
			if (sc->paren == 0)
				sc->strings++;
			return 0;
		}
		if ((is_word(c) &&
		        !(sc->taglen == 1 && c >= '0' && c <= '9')) &&
		    sc->taglen < SCAN_WORD) {
			sc->tag[sc->taglen++] = (char)c;
			return 0;
		}
		/* $1 or a lone $: not a quote. */
		sc->st = S_NORMAL;
		goto again;
	case S_DOLLAR:
		if (c == (unsigned char)sc->tag[sc->tagm]) {
			if (++sc->tagm == sc->taglen) {
				if (end_word(sc, 0, 0) != 0)
					return -1;
				sc->st = S_NORMAL;
			}
			return 0;
		}
		sc->tagm = c == (unsigned char)sc->tag[0] ? 1 : 0;
		if (is_word(c)) {
			if (sc->wlen < SCAN_WORD)
				sc->word[sc->wlen++] = (char)c;
		} else if (end_word(sc, 0, 0) != 0)
			return -1;
		return 0;
	case S_LINE_COMMENT:
		if (c == '\n')
			sc->st = S_NORMAL;
		return 0;
	case S_BLOCK_COMMENT:
		if (sc->bpend == '*' && c == '/') {
			sc->bpend = 0;
			if (--sc->depth == 0)
				sc->st = S_NORMAL;
			return 0;
		}
		if (sc->bpend == '/' && c == '*') {
			sc->bpend = 0;
			sc->depth++;
			return 0;
		}
		sc->bpend = c == '*' || c == '/' ? c : 0;
		return 0;
	case S_COPY:
		if (c == '\n') {
			if ((sc->cllen == 2 ||
			        (sc->cllen == 3 && sc->cl[2] == '\r')) &&
			    sc->cl[0] == '\\' && sc->cl[1] == '.')
				sc->st = S_NORMAL;
			sc->cllen = 0;
		} else if (sc->cllen < sizeof(sc->cl))
			sc->cl[sc->cllen++] = (char)c;
		return 0;
	case S_META:
		if (c == '\n') {
			/* Dropped, but its newline kept: line numbers hold. */
			sc->st = S_NORMAL;
			return check_meta(sc) != 0 ? -1 : 0;
		}
		if (sc->mlen >= SCAN_META)
			return refuse(sc, sc->line,
			    "a psql meta-command line too long");
		sc->meta[sc->mlen++] = (char)c;
		return 1;
	}
	return 0;
}

int
restore_scan_feed(struct restore_scan *sc, const char *buf, size_t len)
{
	size_t i;

	if (sc->failed)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		int r = step(sc, c);

		if (r < 0)
			return -1;
		if (r == 0) {
			if (sc->olen == sizeof(sc->obuf) && flush_out(sc) != 0)
				return -1;
			sc->obuf[sc->olen++] = (char)c;
		}
		if (c == '\n') {
			sc->line++;
			sc->line_blank = 1;
		} else if (c != ' ' && c != '\t' && c != '\r')
			sc->line_blank = 0;
	}
	return 0;
}

int
restore_scan_end(struct restore_scan *sc)
{
	if (sc->failed)
		return -1;
	if (sc->st == S_META && check_meta(sc) != 0)
		return -1;
	if (sc->st == S_NORMAL &&
	    (end_word(sc, 0, 1) != 0 || check_stmt(sc) != 0))
		return -1;
	return flush_out(sc);
}
