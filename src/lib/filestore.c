/*
 * filestore.c - copy and remove filestore trees.
 *
 * Files are hard-linked where possible: Odoo names filestore files by their
 * SHA-1 and never rewrites one (ODOO.md section 3), so a link is a safe and
 * nearly free copy. Across file systems, or where linking is refused, bytes
 * are copied. Directories keep their mode, owner and mtime.
 *
 * Both walks go by file descriptor: each entry is looked at with
 * fstatat(AT_SYMLINK_NOFOLLOW) relative to its directory, opened with
 * O_NOFOLLOW and checked to be the entry looked at, so a symbolic link
 * (or a name swapped for one meanwhile) never leads out of the tree. A
 * copy takes regular files and directories only and reports the rest as
 * skipped. Durability: a byte-copied file is fsynced before it is closed,
 * a directory once it is complete (its entries, hard links included, and
 * its metadata), children before parents. Complete directories wait, open,
 * in batches of FS_SYNC_BATCH: the batch's first fsync commits the file
 * system's journal with all of them (ext4, xfs), and the others then find
 * their changes committed, so a template of 256 folders costs a few
 * journal commits rather than 256.
 *
 * The walks keep their stack on the heap, never recurse: a request thread
 * has a small stack (HTTP_THREAD_STACK). A copy descends FS_MAX_DEPTH
 * levels at most (two open descriptors a level); a removal has no limit
 * and keeps FS_RM_OPEN directories open, reopening a parent through ".."
 * (checked to be the same directory) when it climbs back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodo/filestore.h"

#define FS_COPY_BUF   65536 /* bytes per read() in a byte copy */
#define FS_RM_OPEN    16    /* directories a removal keeps open at once */
#define FS_RM_STACK   64    /* first size of a removal's stack, frames */
#define FS_SYNC_BATCH 32    /* complete directories waiting for their fsync */
/* One name per level, separators and the terminator. */
#define FS_REL_MAX ((FS_MAX_DEPTH + 2) * (NAME_MAX + 1))

#define DIR_OPEN (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define STR_(x)  #x
#define STR(x)   STR_(x)

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Splits "a/b/c" into its parent ("a/b", len bytes) and last name ("c").
 * Returns -1 for a path with no last name ("/", "a/", "a/..") or a parent
 * that does not fit.
 */
static int
split_path(const char *path, char *parent, size_t len, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	*base = slash != NULL ? slash + 1 : path;
	if (**base == '\0' || strcmp(*base, ".") == 0 ||
	    strcmp(*base, "..") == 0)
		return -1;
	if (slash == NULL)
		n = 0;
	else if ((n = (size_t)(slash - path)) == 0)
		n = 1; /* "/x": the parent is "/" */
	if (n + 2 > len)
		return -1;
	if (n == 0)
		memcpy(parent, ".", 2);
	else {
		memcpy(parent, path, n);
		parent[n] = '\0';
	}
	return 0;
}

/* -- copy ----------------------------------------------------------------- */

struct copy_frame {
	DIR *src;       /* the source directory being read */
	int dst;        /* the directory made for it */
	struct stat st; /* the source's mode, owner and times */
	size_t rel_len; /* strlen(rel) for this directory */
};

struct copy {
	const char *root;      /* src as given, for messages */
	dev_t dev;             /* the tree's file system */
	char *rel;             /* the entry at hand, relative (FS_REL_MAX) */
	char *buf;             /* FS_COPY_BUF bytes */
	struct fs_report *rep; /* never NULL */
	char *err;
	size_t errlen;
	int pending[FS_SYNC_BATCH]; /* complete directories, not fsynced */
	size_t npending;
};

/* Names the entry at hand in err; reason NULL: strerror(errno). */
static int
copy_fail(struct copy *c, const char *what, const char *reason)
{
	int saved = errno;

	if (c->err != NULL && c->errlen > 0)
		snprintf(c->err, c->errlen, "%s %s%s%s: %s", what, c->root,
		    c->rel != NULL && c->rel[0] != '\0' ? "/" : "",
		    c->rel != NULL ? c->rel : "",
		    reason != NULL ? reason : strerror(saved));
	errno = saved;
	return -1;
}

static void
copy_skip(struct copy *c, const char *type)
{
	struct fs_report *r = c->rep;
	size_t i, n = strlen(c->rel);
	char *p;

	r->skipped++;
	if (r->shown >= FS_SKIP_SHOWN)
		return;
	p = r->skip[r->shown].path;
	for (i = 0; i < n && i < FS_SKIP_PATH - 1; i++) {
		unsigned char ch = (unsigned char)c->rel[i];

		p[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	p[i] = '\0';
	if (n >= FS_SKIP_PATH)
		memcpy(p + FS_SKIP_PATH - 4, "...", 4);
	r->skip[r->shown].type = type;
	r->shown++;
}

static const char *
skip_type(mode_t m)
{
	if (S_ISLNK(m))
		return "symlink";
	if (S_ISFIFO(m))
		return "fifo";
	if (S_ISSOCK(m))
		return "socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "device";
	return "other";
}

/* Metadata of a copied file or directory: owner (as root), mode, times. */
static int
copy_meta(int fd, const struct stat *st)
{
	struct timespec ts[2];

	if (geteuid() == 0 && fchown(fd, st->st_uid, st->st_gid) == -1)
		return -1;
	if (fchmod(fd, st->st_mode & 07777) == -1)
		return -1;
	ts[0] = st->st_atim;
	ts[1] = st->st_mtim;
	return futimens(fd, ts);
}

/*
 * Byte-copies the regular file name of sdir (looked at as *st) into ddir,
 * fsynced. Returns 0, or -1 with errno (and reason for a file that is not
 * the one looked at); a partial file is removed.
 */
static int
copy_file(struct copy *c, int sdir, int ddir, const char *name,
    const struct stat *st, const char **reason)
{
	struct stat ist;
	int in, out = -1, saved;
	ssize_t n;

	/* O_NONBLOCK: a name swapped for a fifo must not hang the copy. */
	in = openat(sdir, name,
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in == -1)
		return -1;
	if (fstat(in, &ist) == -1)
		goto fail;
	if (!S_ISREG(ist.st_mode) || !same_file(&ist, st)) {
		*reason = "changed while it was copied";
		errno = EAGAIN;
		goto fail;
	}
	out = openat(ddir, name,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out == -1)
		goto fail;
	while ((n = read(in, c->buf, FS_COPY_BUF)) != 0) {
		char *p = c->buf;

		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		while (n > 0) {
			ssize_t w = write(out, p, (size_t)n);

			if (w == -1) {
				if (errno == EINTR)
					continue;
				goto fail;
			}
			p += w;
			n -= w;
		}
	}
	if (copy_meta(out, &ist) == -1 || fsync(out) == -1)
		goto fail;
	if (close(out) == -1) {
		out = -1;
		goto fail;
	}
	close(in);
	return 0;
fail:
	saved = errno;
	close(in);
	if (out != -1) {
		close(out);
		unlinkat(ddir, name, 0);
	}
	errno = saved;
	return -1;
}

/* A regular file: a hard link, else a byte copy. */
static int
copy_regular(struct copy *c, int sdir, int ddir, const char *name,
    const struct stat *st)
{
	const char *reason = NULL;
	struct stat lst;

	/* Flags 0: a name swapped for a link would link the link itself. */
	if (linkat(sdir, name, ddir, name, 0) == 0) {
		if (fstatat(ddir, name, &lst, AT_SYMLINK_NOFOLLOW) == -1)
			return copy_fail(c, "link", NULL);
		if (!S_ISREG(lst.st_mode) || !same_file(&lst, st)) {
			unlinkat(ddir, name, 0);
			errno = EAGAIN;
			return copy_fail(c, "link",
			    "changed while it was copied");
		}
		c->rep->linked++;
		return 0;
	}
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != ENOTSUP && errno != EOPNOTSUPP)
		return copy_fail(c, "link", NULL);
	if (copy_file(c, sdir, ddir, name, st, &reason) == -1)
		return copy_fail(c, "copy", reason);
	c->rep->copied++;
	return 0;
}

/* Opens the source directory name of f and makes its copy: a new frame. */
static int
copy_push(struct copy *c, struct copy_frame *f, struct copy_frame *nf,
    const char *name, const struct stat *st)
{
	int sfd, dfd;

	if ((sfd = openat(dirfd(f->src), name, DIR_OPEN)) == -1)
		return copy_fail(c, "open", NULL);
	if (fstat(sfd, &nf->st) == -1 || !same_file(&nf->st, st)) {
		close(sfd);
		errno = EAGAIN;
		return copy_fail(c, "open", "changed while it was copied");
	}
	if (mkdirat(f->dst, name, 0700) == -1) {
		close(sfd);
		return copy_fail(c, "mkdir", NULL);
	}
	if ((dfd = openat(f->dst, name, DIR_OPEN)) == -1) {
		close(sfd);
		return copy_fail(c, "open copy of", NULL);
	}
	if ((nf->src = fdopendir(sfd)) == NULL) {
		close(sfd);
		close(dfd);
		return copy_fail(c, "open", NULL);
	}
	nf->dst = dfd;
	nf->rel_len = strlen(c->rel);
	c->rep->dirs++;
	return 0;
}

/*
 * fsyncs the complete directories that wait, in the order they were
 * completed (children before parents), and closes them. With ok 0 (a copy
 * that failed) it only closes them.
 */
static int
copy_sync(struct copy *c, int ok)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < c->npending; i++) {
		if (ok && rc == 0 && fsync(c->pending[i]) == -1) {
			c->rel[0] = '\0';
			rc = copy_fail(c, "fsync a folder copied from", NULL);
		}
		close(c->pending[i]);
	}
	c->npending = 0;
	return rc;
}

/* The directory is complete: its metadata, then it waits for its fsync. */
static int
copy_pop(struct copy *c, struct copy_frame *f)
{
	int rc = 0;

	c->rel[f->rel_len] = '\0';
	closedir(f->src);
	if (copy_meta(f->dst, &f->st) == -1) {
		rc = copy_fail(c, "set owner, mode or times of", NULL);
		close(f->dst);
		return rc;
	}
	c->pending[c->npending++] = f->dst;
	if (c->npending == FS_SYNC_BATCH)
		rc = copy_sync(c, 1);
	return rc;
}

/*
 * Walks the tree open at frames[0] (a heap stack FS_MAX_DEPTH + 1 deep).
 * Closes every frame it opened, on success and on failure.
 */
static int
copy_walk(struct copy *c, struct copy_frame *frames)
{
	struct copy_frame *f;
	struct dirent *de;
	struct stat st;
	size_t n = 1, len;
	int saved;

	while (n > 0) {
		f = &frames[n - 1];
		errno = 0;
		if ((de = readdir(f->src)) == NULL) {
			c->rel[f->rel_len] = '\0';
			if (errno != 0) {
				copy_fail(c, "read", NULL);
				goto fail;
			}
			n--;
			if (copy_pop(c, f) == -1)
				goto fail;
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		len = strlen(de->d_name);
		c->rel[f->rel_len] = '\0';
		if (f->rel_len > 0)
			c->rel[f->rel_len] = '/';
		memcpy(c->rel + f->rel_len + (f->rel_len > 0), de->d_name,
		    len + 1);
		if (fstatat(dirfd(f->src), de->d_name, &st,
		        AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT) /* removed meanwhile */
				continue;
			copy_fail(c, "stat", NULL);
			goto fail;
		}
		if (S_ISREG(st.st_mode)) {
			if (copy_regular(c, dirfd(f->src), f->dst, de->d_name,
			        &st) == -1)
				goto fail;
		} else if (!S_ISDIR(st.st_mode)) {
			copy_skip(c, skip_type(st.st_mode));
		} else if (st.st_dev != c->dev) {
			copy_skip(c, "mount point");
		} else if (n > FS_MAX_DEPTH) {
			errno = ELOOP;
			copy_fail(c, "copy",
			    "deeper than " STR(FS_MAX_DEPTH) " levels");
			goto fail;
		} else {
			if (copy_push(c, f, &frames[n], de->d_name, &st) == -1)
				goto fail;
			n++;
		}
	}
	return 0;
fail:
	saved = errno;
	while (n > 0) {
		n--;
		closedir(frames[n].src);
		close(frames[n].dst);
	}
	errno = saved;
	return -1;
}

static int remove_at(int pfd, const char *base);

int
fs_copy_tree(const char *src, const char *dst, struct fs_report *rep, char *err,
    size_t errlen)
{
	struct fs_report scratch;
	struct copy_frame *frames = NULL;
	struct copy c;
	char *parent = NULL;
	const char *base;
	int pfd = -1, sfd = -1, dfd = -1, made = 0, rc = -1, saved;

	if (rep == NULL)
		rep = &scratch;
	memset(rep, 0, sizeof(*rep));
	memset(&c, 0, sizeof(c));
	c.root = src;
	c.rep = rep;
	c.err = err;
	c.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	parent = malloc(PATH_MAX);
	c.rel = malloc(FS_REL_MAX);
	c.buf = malloc(FS_COPY_BUF);
	frames = calloc(FS_MAX_DEPTH + 1, sizeof(*frames));
	if (parent == NULL || c.rel == NULL || c.buf == NULL ||
	    frames == NULL) {
		free(c.rel);
		c.rel = NULL;
		errno = ENOMEM;
		copy_fail(&c, "copy", NULL);
		goto out;
	}
	c.rel[0] = '\0';
	if (split_path(dst, parent, PATH_MAX, &base) != 0) {
		errno = EINVAL;
		c.root = dst;
		copy_fail(&c, "create", NULL);
		goto out;
	}
	/* The template's folder itself may be a link (kept on another disk). */
	if ((sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fstat(sfd, &frames[0].st) == -1) {
		copy_fail(&c, "open", NULL);
		goto out;
	}
	c.dev = frames[0].st.st_dev;
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    mkdirat(pfd, base, 0700) == -1) {
		c.root = dst;
		copy_fail(&c, pfd == -1 ? "open parent of" : "create", NULL);
		goto out;
	}
	made = 1;
	if ((dfd = openat(pfd, base, DIR_OPEN)) == -1 ||
	    (frames[0].src = fdopendir(sfd)) == NULL) {
		c.root = dst;
		copy_fail(&c, "open", NULL);
		goto out;
	}
	sfd = -1; /* the DIR owns it */
	frames[0].dst = dfd;
	dfd = -1;
	rep->dirs = 1;
	rc = copy_walk(&c, frames);
	if (copy_sync(&c, rc == 0) != 0)
		rc = -1;
out:
	saved = errno;
	if (sfd != -1)
		close(sfd);
	if (dfd != -1)
		close(dfd);
	if (rc != 0 && made)
		remove_at(pfd, base);
	if (pfd != -1)
		close(pfd);
	free(parent);
	free(c.rel);
	free(c.buf);
	free(frames);
	errno = saved;
	return rc;
}

int
fs_sync_parent(const char *path, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	const char *base;
	int fd, saved;

	if (split_path(path, parent, sizeof(parent), &base) != 0) {
		errno = EINVAL;
		goto fail;
	}
	if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	if (fsync(fd) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		goto fail;
	}
	close(fd);
	return 0;
fail:
	saved = errno;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "fsync folder of %s: %s", path,
		    strerror(saved));
	errno = saved;
	return -1;
}

char *
fs_report_skipped(const struct fs_report *rep, char *out, size_t len)
{
	size_t off;
	unsigned int i;

	if (len == 0)
		return out;
	out[0] = '\0';
	if (rep->skipped == 0)
		return out;
	off = (size_t)snprintf(out, len,
	    "%lu %s not copied (neither files nor folders, never followed):",
	    rep->skipped, rep->skipped == 1 ? "entry" : "entries");
	for (i = 0; i < rep->shown && off < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%s %s (%s)",
		    i > 0 ? "," : "", rep->skip[i].path, rep->skip[i].type);
	if (rep->skipped > rep->shown && off < len)
		snprintf(out + off, len - off, ", ...");
	return out;
}

/* -- removal -------------------------------------------------------------- */

struct rm_frame {
	DIR *d;    /* NULL while closed (see FS_RM_OPEN) */
	dev_t dev; /* identity, checked when reopened through ".." */
	ino_t ino;
	char *name;  /* its name in its parent (frame 0: NULL) */
	int removed; /* entries removed in this pass over d */
};

static void
rm_free(struct rm_frame *fr, size_t n)
{
	while (n > 0) {
		n--;
		if (fr[n].d != NULL)
			closedir(fr[n].d);
		free(fr[n].name);
	}
	free(fr);
}

/* Opens the child name of dir, checked to be what fstatat saw as *st. */
static DIR *
rm_open(int dir, const char *name, const struct stat *st)
{
	struct stat ost;
	DIR *d;
	int fd;

	if ((fd = openat(dir, name, DIR_OPEN)) == -1)
		return NULL;
	if (fstat(fd, &ost) == -1 || !same_file(&ost, st)) {
		close(fd);
		errno = EAGAIN; /* swapped meanwhile */
		return NULL;
	}
	if ((d = fdopendir(fd)) == NULL)
		close(fd);
	return d;
}

/*
 * Removes the entry base of the directory pfd, a tree of any depth: a
 * stack of frames on the heap, at most FS_RM_OPEN of them open. Each pass
 * over a directory removes what it reads; a directory is read again until
 * a pass removes nothing (a removal during readdir may hide entries on
 * some file systems), then removed from its parent.
 */
static int
remove_at(int pfd, const char *base)
{
	struct rm_frame *fr, *f, *p;
	struct dirent *de;
	struct stat st;
	size_t n = 1, cap = FS_RM_STACK, open_n = 1;
	int saved;

	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(pfd, base, 0) == -1 && errno != ENOENT ? -1 : 0;
	if ((fr = calloc(cap, sizeof(*fr))) == NULL)
		return -1;
	if ((fr[0].d = rm_open(pfd, base, &st)) == NULL) {
		free(fr);
		return errno == ENOENT ? 0 : -1;
	}
	fr[0].dev = st.st_dev;
	fr[0].ino = st.st_ino;
	while (n > 0) {
		f = &fr[n - 1];
		errno = 0;
		if ((de = readdir(f->d)) == NULL) {
			if (errno != 0)
				goto fail;
			if (f->removed) {
				f->removed = 0;
				rewinddir(f->d);
				continue;
			}
			if (n == 1) {
				closedir(f->d);
				f->d = NULL;
				n = 0;
				if (unlinkat(pfd, base, AT_REMOVEDIR) == -1 &&
				    errno != ENOENT)
					goto fail;
				break;
			}
			p = &fr[n - 2];
			if (p->d == NULL) {
				struct stat pst;

				pst.st_dev = p->dev;
				pst.st_ino = p->ino;
				/* Moved meanwhile: EAGAIN, nothing outside. */
				if ((p->d = rm_open(dirfd(f->d), "..", &pst)) ==
				    NULL)
					goto fail;
				open_n++;
			}
			closedir(f->d);
			f->d = NULL;
			open_n--;
			if (unlinkat(dirfd(p->d), f->name, AT_REMOVEDIR) ==
			        -1 &&
			    errno != ENOENT)
				goto fail;
			free(f->name);
			f->name = NULL;
			n--;
			p->removed = 1;
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		/* The common case costs one call: a file or a link. */
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
			if (unlinkat(dirfd(f->d), de->d_name, 0) == 0 ||
			    errno == ENOENT) {
				f->removed = 1;
				continue;
			}
			if (errno != EISDIR)
				goto fail;
		}
		if (fstatat(dirfd(f->d), de->d_name, &st,
		        AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)
				continue;
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dirfd(f->d), de->d_name, 0) == -1 &&
			    errno != ENOENT)
				goto fail;
			f->removed = 1;
			continue;
		}
		if (st.st_dev != fr[0].dev) {
			errno = EXDEV; /* a mount point: not ours to empty */
			goto fail;
		}
		if (n == cap) {
			struct rm_frame *nfr;

			if ((nfr = realloc(fr, 2 * cap * sizeof(*fr))) == NULL)
				goto fail;
			fr = nfr;
			memset(fr + cap, 0, cap * sizeof(*fr));
			cap *= 2;
			f = &fr[n - 1];
		}
		if ((fr[n].name = strdup(de->d_name)) == NULL)
			goto fail;
		if ((fr[n].d = rm_open(dirfd(f->d), de->d_name, &st)) == NULL) {
			free(fr[n].name);
			fr[n].name = NULL;
			if (errno == ENOENT)
				continue;
			goto fail;
		}
		fr[n].dev = st.st_dev;
		fr[n].ino = st.st_ino;
		fr[n].removed = 0;
		n++;
		if (++open_n > FS_RM_OPEN) {
			/* The open frames are the top open_n ones. */
			closedir(fr[n - open_n].d);
			fr[n - open_n].d = NULL;
			open_n--;
		}
	}
	free(fr);
	return 0;
fail:
	saved = errno;
	rm_free(fr, n);
	errno = saved;
	return -1;
}

int
fs_remove_tree(const char *path)
{
	char parent[PATH_MAX];
	const char *base;
	int pfd, rc, saved;

	if (split_path(path, parent, sizeof(parent), &base) != 0) {
		errno = EINVAL;
		return -1;
	}
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = remove_at(pfd, base);
	saved = errno;
	close(pfd);
	errno = saved;
	return rc;
}

int
fs_exists(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

/*
 * A walk in path order (backups): one frame per open folder, holding its
 * sorted entry names; the stack lives on the heap, as the other walks'.
 */
struct walk_frame {
	int fd;
	char **names;
	size_t n, i;
	size_t rel_len; /* length of the walk's rel path at this folder */
};

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
walk_frame_free(struct walk_frame *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	if (f->fd >= 0)
		close(f->fd);
	f->names = NULL;
	f->n = 0;
	f->fd = -1;
}

/* Reads and sorts the names of the folder fd (kept open). 0 or -1. */
static int
walk_frame_load(struct walk_frame *f)
{
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	int dfd;

	f->names = NULL;
	f->n = f->i = 0;
	if ((dfd = dup(f->fd)) < 0)
		return -1;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (f->n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **nn = realloc(f->names, nc * sizeof(*nn));

			if (nn == NULL)
				goto fail;
			f->names = nn;
			cap = nc;
		}
		if ((f->names[f->n] = strdup(de->d_name)) == NULL)
			goto fail;
		f->n++;
		errno = 0;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	if (f->n > 1)
		qsort(f->names, f->n, sizeof(*f->names), name_cmp);
	return 0;
fail : {
	int e = errno ? errno : ENOMEM;

	closedir(d);
	errno = e;
	return -1;
}
}

static int
walk_fail(char *err, size_t errlen, const char *what, const char *rel)
{
	int e = errno;

	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s '%s': %s", what, rel, strerror(e));
	errno = e;
	return -1;
}

int
fs_walk_files(const char *root, fs_file_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct walk_frame st[FS_MAX_DEPTH + 1];
	char rel[FS_REL_MAX] = "";
	struct stat rst;
	int depth = 0, rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	/* The root may be a link (a template kept on another disk). */
	st[0].fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st[0].fd < 0)
		return walk_fail(err, errlen, "cannot open", root);
	if (fstat(st[0].fd, &rst) != 0 || walk_frame_load(&st[0]) != 0) {
		walk_fail(err, errlen, "cannot read", root);
		close(st[0].fd);
		return -1;
	}
	st[0].rel_len = 0;
	for (;;) {
		struct walk_frame *f = &st[depth];
		const char *name;
		struct stat es;
		size_t n;

		if (f->i == f->n) {
			walk_frame_free(f);
			if (depth == 0)
				break;
			depth--;
			rel[st[depth].rel_len] = '\0';
			continue;
		}
		name = f->names[f->i++];
		n = f->rel_len;
		if (n + strlen(name) + 2 > sizeof(rel)) {
			errno = ENAMETOOLONG;
			walk_fail(err, errlen, "path too long under", rel);
			goto out;
		}
		snprintf(rel + n, sizeof(rel) - n, "%s%s", n ? "/" : "", name);
		if (fstatat(f->fd, name, &es, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT) /* gone meanwhile */
				goto next;
			walk_fail(err, errlen, "cannot stat", rel);
			goto out;
		}
		if (S_ISREG(es.st_mode)) {
			if (cb(arg, f->fd, name, rel, &es) != 0) {
				if (err != NULL && errlen > 0 && err[0] == '\0')
					walk_fail(err, errlen, "stopped at",
					    rel);
				goto out;
			}
		} else if (S_ISDIR(es.st_mode) && es.st_dev == rst.st_dev &&
		    depth < FS_MAX_DEPTH) {
			struct walk_frame *nf = &st[depth + 1];

			nf->fd = openat(f->fd, name, DIR_OPEN);
			if (nf->fd < 0) {
				if (errno == ENOENT)
					goto next;
				walk_fail(err, errlen, "cannot open", rel);
				goto out;
			}
			if (walk_frame_load(nf) != 0) {
				walk_fail(err, errlen, "cannot read", rel);
				close(nf->fd);
				goto out;
			}
			nf->rel_len = strlen(rel);
			depth++;
			continue;
		}
	next:
		rel[n] = '\0';
	}
	rc = 0;
out:
	if (rc != 0) {
		int e = errno;

		for (; depth >= 0; depth--)
			walk_frame_free(&st[depth]);
		errno = e;
	}
	return rc;
}

struct usage {
	unsigned long long bytes, files;
};

static int
usage_file(void *arg, int dirfd, const char *name, const char *rel,
    const struct stat *st)
{
	struct usage *u = arg;

	u->bytes += (unsigned long long)st->st_size;
	u->files++;
	return 0;
}

int
fs_usage(const char *root, unsigned long long *bytes, unsigned long long *files,
    char *err, size_t errlen)
{
	struct usage u = { 0, 0 };
	int rc = fs_walk_files(root, usage_file, &u, err, errlen);

	if (rc != 0 && errno == ENOENT && fs_exists(root) == 0)
		rc = 0;
	*bytes = u.bytes;
	*files = u.files;
	return rc;
}
