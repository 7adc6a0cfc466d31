/*
 * filestore.c - copy and remove filestore trees.
 *
 * Files are hard-linked where possible: Odoo names filestore files by their
 * SHA-1 and never rewrites one (ODOO.md section 3), so a link is a safe and
 * nearly free copy. Across file systems, or where linking is refused, bytes
 * are copied. Directories keep their mode, owner and mtime; symbolic links
 * are followed, as shutil.copytree(symlinks=False) does. Buffers live on
 * the heap: a request thread has a small stack (HTTP_THREAD_STACK) and a
 * looping tree recurses FS_MAX_DEPTH levels before it is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "nodo/filestore.h"

#define FS_COPY_BUF 65536 /* bytes per read() in a byte copy */

static void
set_err(char *err, size_t errlen, const char *what, const char *path)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
}

static int
copy_file(const char *src, const char *dst, const struct stat *st)
{
	char *buf;
	int in, out, saved;
	ssize_t n;
	struct timespec ts[2];

	if ((buf = malloc(FS_COPY_BUF)) == NULL)
		return -1;
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
		free(buf);
		return -1;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    st->st_mode & 07777);
	if (out == -1) {
		saved = errno;
		close(in);
		free(buf);
		errno = saved;
		return -1;
	}
	while ((n = read(in, buf, FS_COPY_BUF)) != 0) {
		char *p = buf;

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
	if (geteuid() == 0 && fchown(out, st->st_uid, st->st_gid) == -1)
		goto fail;
	ts[0] = st->st_atim;
	ts[1] = st->st_mtim;
	if (futimens(out, ts) == -1 || fchmod(out, st->st_mode & 07777) == -1)
		goto fail;
	if (close(out) == -1) {
		out = -1;
		goto fail;
	}
	close(in);
	free(buf);
	return 0;
fail:
	saved = errno;
	close(in);
	if (out != -1)
		close(out);
	unlink(dst);
	free(buf);
	errno = saved;
	return -1;
}

static int
copy_tree(const char *src, const char *dst, int depth, char *err, size_t errlen)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	struct timespec ts[2];
	char *s, *t;
	int rc = -1;

	if (depth > FS_MAX_DEPTH) {
		errno = ELOOP;
		set_err(err, errlen, "copy", src);
		return -1;
	}
	if (stat(src, &st) == -1) {
		set_err(err, errlen, "stat", src);
		return -1;
	}
	/* 0700 while filling it, the real mode at the end. */
	if (mkdir(dst, 0700) == -1) {
		set_err(err, errlen, "mkdir", dst);
		return -1;
	}
	if ((d = opendir(src)) == NULL) {
		set_err(err, errlen, "open", src);
		return -1;
	}
	if ((s = malloc(2 * PATH_MAX)) == NULL) {
		set_err(err, errlen, "copy", src);
		closedir(d);
		return -1;
	}
	t = s + PATH_MAX;
	for (;;) {
		struct stat est;

		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0) {
				set_err(err, errlen, "read", src);
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(s, PATH_MAX, "%s/%s", src, de->d_name) >=
		        PATH_MAX ||
		    (size_t)snprintf(t, PATH_MAX, "%s/%s", dst, de->d_name) >=
		        PATH_MAX) {
			errno = ENAMETOOLONG;
			set_err(err, errlen, "copy", src);
			goto out;
		}
		if (stat(s, &est) == -1) {
			set_err(err, errlen, "stat", s);
			goto out;
		}
		if (S_ISDIR(est.st_mode)) {
			if (copy_tree(s, t, depth + 1, err, errlen) == -1)
				goto out;
		} else if (S_ISREG(est.st_mode)) {
			if (link(s, t) == 0)
				continue;
			if (errno != EXDEV && errno != EPERM &&
			    errno != EMLINK && errno != ENOTSUP) {
				set_err(err, errlen, "link", t);
				goto out;
			}
			if (copy_file(s, t, &est) == -1) {
				set_err(err, errlen, "copy", t);
				goto out;
			}
		}
		/* Sockets, fifos and devices have no place in a filestore. */
	}
	if (geteuid() == 0 && chown(dst, st.st_uid, st.st_gid) == -1) {
		set_err(err, errlen, "chown", dst);
		goto out;
	}
	if (chmod(dst, st.st_mode & 07777) == -1) {
		set_err(err, errlen, "chmod", dst);
		goto out;
	}
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (utimensat(AT_FDCWD, dst, ts, 0) == -1) {
		set_err(err, errlen, "utime", dst);
		goto out;
	}
	rc = 0;
out:
	free(s);
	closedir(d);
	return rc;
}

int
fs_copy_tree(const char *src, const char *dst, char *err, size_t errlen)
{
	int saved;

	if (fs_exists(dst) != 0) {
		errno = EEXIST;
		set_err(err, errlen, "create", dst);
		return -1;
	}
	if (copy_tree(src, dst, 0, err, errlen) == 0)
		return 0;
	saved = errno;
	fs_remove_tree(dst);
	errno = saved;
	return -1;
}

static int
remove_tree(const char *path, int depth)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char *p;
	int rc = 0;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
	if (depth > FS_MAX_DEPTH) {
		errno = ELOOP;
		return -1;
	}
	if ((d = opendir(path)) == NULL)
		return -1;
	if ((p = malloc(PATH_MAX)) == NULL) {
		closedir(d);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(p, PATH_MAX, "%s/%s", path, de->d_name) >=
		    PATH_MAX) {
			errno = ENAMETOOLONG;
			rc = -1;
			continue;
		}
		if (remove_tree(p, depth + 1) == -1)
			rc = -1;
	}
	free(p);
	closedir(d);
	if (rmdir(path) == -1 && errno != ENOENT)
		rc = -1;
	return rc;
}

int
fs_remove_tree(const char *path)
{
	return remove_tree(path, 0);
}

int
fs_exists(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}
