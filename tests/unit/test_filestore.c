/*
 * test_filestore.c - unit tests of filestore.c on real trees in a
 * mkdtemp(3) directory: hard-link and byte copies (modes, mtimes, bytes),
 * that every directory made and every byte-copied file is fsynced (fsync
 * and linkat are interposed: this file defines them, so libnodo's calls
 * land here; linkat can be made to answer EXDEV, which forces the byte
 * copy), that symbolic links (to /, to /etc/passwd, to a sibling tenant,
 * dangling, looping), fifos, sockets and mount points are skipped and
 * reported, never followed, a removal that never follows a link out of
 * the tree, trees 10000 levels deep on a small thread stack, failures
 * (fsync, EEXIST, too deep) that leave nothing behind, and no descriptor
 * leaked.
 */
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "nodo/filestore.h"

#define DEEP        10000        /* levels of the deep trees */
#define MAX_SYNCS   4096         /* fsyncs one test records */
#define SMALL_STACK (256 * 1024) /* bytes: under HTTP_THREAD_STACK */

static char root[64]; /* this test's directory */

/* -- interposed system calls ---------------------------------------------- */

static struct {
	dev_t dev;
	ino_t ino;
	mode_t type;
} syncs[MAX_SYNCS];
static size_t nsyncs;
static int max_fds_at_sync;   /* descriptors open at the busiest fsync */
static int force_exdev;       /* linkat answers EXDEV: byte copies */
static mode_t fail_sync_type; /* S_IFREG/S_IFDIR: such fsyncs fail */
static int fail_sync_errno;

static int open_fds(void);

int
fsync(int fd)
{
	struct stat st;

	int n;

	if ((n = open_fds()) > max_fds_at_sync)
		max_fds_at_sync = n;
	if (fstat(fd, &st) == 0) {
		if (nsyncs < MAX_SYNCS) {
			syncs[nsyncs].dev = st.st_dev;
			syncs[nsyncs].ino = st.st_ino;
			syncs[nsyncs].type = st.st_mode & S_IFMT;
			nsyncs++;
		}
		if (fail_sync_type != 0 &&
		    (st.st_mode & S_IFMT) == fail_sync_type) {
			errno = fail_sync_errno;
			return -1;
		}
	}
	return (int)syscall(SYS_fsync, fd);
}

int
linkat(int olddir, const char *oldpath, int newdir, const char *newpath,
    int flags)
{
	if (force_exdev) {
		errno = EXDEV;
		return -1;
	}
	return (
	    int)syscall(SYS_linkat, olddir, oldpath, newdir, newpath, flags);
}

static int
synced(const struct stat *st)
{
	size_t i;

	for (i = 0; i < nsyncs; i++)
		if (syncs[i].dev == st->st_dev && syncs[i].ino == st->st_ino)
			return 1;
	return 0;
}

/* -- helpers -------------------------------------------------------------- */

static const char *
P(const char *fmt, ...)
{
	static char buf[4][PATH_MAX + 64];
	static int k;
	char rel[PATH_MAX];
	va_list ap;

	k = (k + 1) % 4;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", root, rel);
	return buf[k];
}

static void
mkdirs(const char *rel)
{
	char p[PATH_MAX], *s;

	snprintf(p, sizeof(p), "%s", P("%s", rel));
	for (s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
		*s = '/';
	}
	assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
}

static void
put(const char *rel, const char *content, mode_t mode)
{
	char dir[PATH_MAX], *s;
	int fd;

	snprintf(dir, sizeof(dir), "%s", rel);
	if ((s = strrchr(dir, '/')) != NULL) {
		*s = '\0';
		mkdirs(dir);
	}
	fd = open(P("%s", rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, content, strlen(content)),
	    (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
assert_content(const char *path, const char *want)
{
	char buf[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW);

	assert_true(fd != -1);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* What a walk of a copied tree found (nftw gives no context pointer). */
static struct {
	int dirs, files, others, dirs_unsynced, files_synced, files_unsynced;
} seen;

static int
seen_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	if (S_ISDIR(st->st_mode)) {
		seen.dirs++;
		seen.dirs_unsynced += !synced(st);
	} else if (S_ISREG(st->st_mode)) {
		seen.files++;
		if (synced(st))
			seen.files_synced++;
		else
			seen.files_unsynced++;
	} else {
		seen.others++;
	}
	return 0;
}

static void
walk_copy(const char *path)
{
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(nftw(path, seen_cb, 16, FTW_PHYS | FTW_MOUNT), 0);
}

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p) == 0 || errno == ENOENT ? 0 : -1;
}

static int
setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/test_filestore.XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	nsyncs = 0;
	force_exdev = 0;
	fail_sync_type = 0;
	return 0;
}

static int
teardown(void **state)
{
	force_exdev = 0;
	fail_sync_type = 0;
	umount2(P("tpl/mnt"), MNT_DETACH);
	return nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* The template of most tests: Odoo's shape, odd modes and an mtime. */
static void
make_template(void)
{
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

	put("tpl/0a/0a1b2c3d", "asset bundle css\n", 0640);
	put("tpl/d7/d7e8f9a0", "web.assets js", 0444);
	put("tpl/checklist/.keep", "", 0600);
	mkdirs("tpl/empty");
	assert_int_equal(chmod(P("tpl/d7"), 0750), 0);
	assert_int_equal(utimensat(AT_FDCWD, P("tpl/0a/0a1b2c3d"), ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, P("tpl/d7"), ts, 0), 0);
}

static void
check_template_copy(const char *dst)
{
	struct stat st;

	assert_content(P("%s/0a/0a1b2c3d", dst), "asset bundle css\n");
	assert_content(P("%s/d7/d7e8f9a0", dst), "web.assets js");
	assert_content(P("%s/checklist/.keep", dst), "");
	assert_int_equal(lstat(P("%s/empty", dst), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(lstat(P("%s/0a/0a1b2c3d", dst), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(lstat(P("%s/d7/d7e8f9a0", dst), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_int_equal(lstat(P("%s/d7", dst), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
}

/* -- copies --------------------------------------------------------------- */

static void
test_hard_link_copy(void **state)
{
	struct fs_report rep;
	struct stat a, b;
	char err[512];
	int fds = open_fds();

	make_template();
	assert_int_equal(fs_copy_tree(P("tpl"), P("new"), &rep, err,
	                     sizeof(err)),
	    0);
	check_template_copy("new");
	assert_int_equal(lstat(P("tpl/0a/0a1b2c3d"), &a), 0);
	assert_int_equal(lstat(P("new/0a/0a1b2c3d"), &b), 0);
	assert_true(a.st_ino == b.st_ino); /* linked, not copied */
	assert_int_equal(rep.linked, 3);
	assert_int_equal(rep.copied, 0);
	assert_int_equal(rep.dirs, 5);
	assert_int_equal(rep.skipped, 0);
	/* Every directory made is fsynced; linked files need no fsync. */
	walk_copy(P("new"));
	assert_int_equal(seen.dirs, 5);
	assert_int_equal(seen.dirs_unsynced, 0);
	assert_int_equal(seen.files_synced, 0);
	assert_int_equal(nsyncs, 5);
	assert_int_equal(open_fds(), fds);
}

/* The index of the fsync of st in syncs[], -1 when none. */
static int
sync_index(const struct stat *st)
{
	size_t i;

	for (i = 0; i < nsyncs; i++)
		if (syncs[i].dev == st->st_dev && syncs[i].ino == st->st_ino)
			return (int)i;
	return -1;
}

/*
 * More folders than a batch of fsyncs: each folder fsynced once, after
 * the folders inside it, with a bounded number of descriptors open.
 */
static void
test_many_folders_batched(void **state)
{
	struct fs_report rep;
	struct stat top, mid, leaf;
	char err[512];
	int fds = open_fds(), i, ileaf, imid;

	for (i = 0; i < 100; i++)
		put(P("tpl/%02x/sub/f%d", i, i) + strlen(root) + 1, "x", 0644);
	nsyncs = 0;
	max_fds_at_sync = 0;
	assert_int_equal(fs_copy_tree(P("tpl"), P("new"), &rep, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(rep.dirs, 201);
	assert_int_equal(nsyncs, 201);
	assert_int_equal(stat(P("new"), &top), 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(stat(P("new/%02x", i), &mid), 0);
		assert_int_equal(stat(P("new/%02x/sub", i), &leaf), 0);
		ileaf = sync_index(&leaf);
		imid = sync_index(&mid);
		assert_true(ileaf >= 0 && imid > ileaf);
		assert_true(sync_index(&top) > imid);
	}
	/* A batch, the walk's two per level, the count itself: no more. */
	assert_true(max_fds_at_sync <= fds + 32 + 2 * 3 + 2);
	assert_int_equal(open_fds(), fds);
}

static void
test_byte_copy(void **state)
{
	struct fs_report rep;
	struct stat a, b;
	char err[512];
	int fds = open_fds();

	make_template();
	force_exdev = 1;
	assert_int_equal(fs_copy_tree(P("tpl"), P("new"), &rep, err,
	                     sizeof(err)),
	    0);
	check_template_copy("new");
	assert_int_equal(lstat(P("tpl/0a/0a1b2c3d"), &a), 0);
	assert_int_equal(lstat(P("new/0a/0a1b2c3d"), &b), 0);
	assert_true(a.st_ino != b.st_ino);
	assert_int_equal(rep.linked, 0);
	assert_int_equal(rep.copied, 3);
	/* Every byte-copied file and every directory is fsynced, once. */
	walk_copy(P("new"));
	assert_int_equal(seen.files, 3);
	assert_int_equal(seen.files_unsynced, 0);
	assert_int_equal(seen.dirs_unsynced, 0);
	assert_int_equal(nsyncs, 3 + 5);
	assert_int_equal(open_fds(), fds);
}

static void
test_big_byte_copy(void **state)
{
	char *big = malloc(300001), err[512];
	struct stat st;
	size_t i;

	assert_non_null(big);
	for (i = 0; i < 300000; i++)
		big[i] = (char)('a' + i % 26);
	big[300000] = '\0';
	put("tpl/big", big, 0644);
	force_exdev = 1;
	assert_int_equal(fs_copy_tree(P("tpl"), P("new"), NULL, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(lstat(P("new/big"), &st), 0);
	assert_int_equal(st.st_size, 300000);
	free(big);
}

static void
test_links_and_specials_are_skipped(void **state)
{
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	struct sockaddr_un sa;
	struct fs_report rep;
	char err[512], line[1024];
	unsigned int i;
	int s, fds;

	make_template();
	put("tenant_b/secret", "sibling's data", 0600);
	put("outside/sentinel", "outside", 0600);
	assert_int_equal(symlink("/", P("tpl/rootlink")), 0);
	assert_int_equal(symlink("/etc/passwd", P("tpl/0a/passwd")), 0);
	assert_int_equal(symlink("../tenant_b", P("tpl/sibling")), 0);
	assert_int_equal(symlink(P("outside"), P("tpl/d7/abs")), 0);
	assert_int_equal(symlink("/nonexistent/gone", P("tpl/dangling")), 0);
	assert_int_equal(symlink("..", P("tpl/checklist/loop")), 0);
	assert_int_equal(mkfifo(P("tpl/fifo"), 0600), 0);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s != -1);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", P("tpl/sock"));
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(utimensat(AT_FDCWD, P("tpl/d7"), ts, 0), 0);
	fds = open_fds();

	for (i = 0; i < 2; i++) { /* links, then byte copies */
		const char *dst = i == 0 ? "new" : "new2";

		force_exdev = (int)i;
		assert_int_equal(fs_copy_tree(P("tpl"), P("%s", dst), &rep, err,
		                     sizeof(err)),
		    0);
		check_template_copy(dst);
		assert_int_equal(rep.skipped, 8);
		assert_int_equal(rep.shown, FS_SKIP_SHOWN);
		assert_int_equal(rep.linked + rep.copied, 3);
		walk_copy(P("%s", dst));
		assert_int_equal(seen.others, 0); /* no link, no fifo */
		assert_int_equal(seen.files, 3);  /* nothing from outside */
		assert_int_equal(seen.dirs, 5);
		assert_false(exists(P("%s/rootlink", dst)));
		assert_false(exists(P("%s/sibling", dst)));
		assert_false(exists(P("%s/0a/passwd", dst)));
		assert_int_equal(open_fds(), fds);
	}
	fs_report_skipped(&rep, line, sizeof(line));
	assert_non_null(strstr(line, "8 entries not copied"));
	assert_non_null(strstr(line, ", ..."));
	/* Every skip is named with its type (order is readdir's). */
	for (i = 0; i < rep.shown; i++) {
		const char *p = rep.skip[i].path, *t = rep.skip[i].type;

		if (strcmp(p, "fifo") == 0)
			assert_string_equal(t, "fifo");
		else if (strcmp(p, "sock") == 0)
			assert_string_equal(t, "socket");
		else
			assert_string_equal(t, "symlink");
		assert_non_null(strstr(line, p));
	}
	/* What the links pointed at is untouched. */
	assert_content(P("tenant_b/secret"), "sibling's data");
	assert_content(P("outside/sentinel"), "outside");
	close(s);
}

static void
test_report_names(void **state)
{
	struct fs_report rep;
	char err[512], line[512];

	put("tpl/a/b/file", "x", 0644);
	assert_int_equal(symlink("/", P("tpl/a/b/to\001root\xff")), 0);
	assert_int_equal(fs_copy_tree(P("tpl"), P("new"), &rep, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(rep.skipped, 1);
	assert_int_equal(rep.shown, 1);
	assert_string_equal(rep.skip[0].path, "a/b/to?root?");
	assert_string_equal(rep.skip[0].type, "symlink");
	assert_string_equal(fs_report_skipped(&rep, line, sizeof(line)),
	    "1 entry not copied (neither files nor folders, never "
	    "followed): a/b/to?root? (symlink)");
	memset(&rep, 0, sizeof(rep));
	assert_string_equal(fs_report_skipped(&rep, line, sizeof(line)), "");
	/* A short buffer is cut, still terminated. */
	rep.skipped = 1;
	rep.shown = 1;
	snprintf(rep.skip[0].path, sizeof(rep.skip[0].path), "x");
	rep.skip[0].type = "fifo";
	assert_int_equal(strlen(fs_report_skipped(&rep, line, 10)), 9);
}

static void
test_template_folder_may_be_a_link(void **state)
{
	struct fs_report rep;
	char err[512];

	make_template();
	assert_int_equal(symlink(P("tpl"), P("tpllink")), 0);
	assert_int_equal(fs_copy_tree(P("tpllink"), P("new"), &rep, err,
	                     sizeof(err)),
	    0);
	check_template_copy("new");
	/* A dangling one fails, naming it, leaving nothing. */
	assert_int_equal(symlink("/nonexistent/x", P("gone")), 0);
	assert_int_equal(fs_copy_tree(P("gone"), P("new2"), &rep, err,
	                     sizeof(err)),
	    -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, P("gone")));
	assert_false(exists(P("new2")));
}

static void
test_mount_point_is_skipped(void **state)
{
	struct fs_report rep;
	char err[512];

	make_template();
	mkdirs("tpl/mnt");
	if (mount("nodo-test", P("tpl/mnt"), "tmpfs", 0, "size=64k") != 0)
		skip(); /* needs root outside a restricted container */
	put("tpl/mnt/other-fs", "not ours", 0644);
	assert_int_equal(fs_copy_tree(P("tpl"), P("new"), &rep, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(rep.skipped, 1);
	assert_string_equal(rep.skip[0].path, "mnt");
	assert_string_equal(rep.skip[0].type, "mount point");
	assert_false(exists(P("new/mnt")));
	/* A removal does not empty another file system either. */
	assert_int_equal(fs_remove_tree(P("tpl")), -1);
	assert_int_equal(errno, EXDEV);
	assert_content(P("tpl/mnt/other-fs"), "not ours");
}

/* -- failures leave nothing ----------------------------------------------- */

static void
test_destination_exists(void **state)
{
	char err[512];

	make_template();
	put("new/precious", "keep", 0644);
	assert_int_equal(fs_copy_tree(P("tpl"), P("new"), NULL, err,
	                     sizeof(err)),
	    -1);
	assert_int_equal(errno, EEXIST);
	assert_non_null(strstr(err, P("new")));
	assert_content(P("new/precious"), "keep");
	/* A link in the destination's place is not followed either. */
	assert_int_equal(symlink(P("outside"), P("new3")), 0);
	assert_int_equal(fs_copy_tree(P("tpl"), P("new3"), NULL, err,
	                     sizeof(err)),
	    -1);
	assert_int_equal(errno, EEXIST);
	assert_false(exists(P("outside")));
}

static void
test_fsync_failure_leaves_nothing(void **state)
{
	static const mode_t types[] = { S_IFREG, S_IFDIR };
	static const int errs[] = { ENOSPC, EIO };
	char err[512];
	size_t i;
	int fds;

	make_template();
	fds = open_fds();
	for (i = 0; i < 2; i++) {
		force_exdev = 1;
		fail_sync_type = types[i];
		fail_sync_errno = errs[i];
		assert_int_equal(fs_copy_tree(P("tpl"), P("new"), NULL, err,
		                     sizeof(err)),
		    -1);
		assert_int_equal(errno, errs[i]);
		assert_non_null(strstr(err, strerror(errs[i])));
		assert_non_null(strstr(err, P("tpl")));
		assert_false(exists(P("new")));
		assert_int_equal(open_fds(), fds);
	}
	fail_sync_type = 0;
	check_template_copy("tpl");
}

/* -- depth ---------------------------------------------------------------- */

/* Makes levels nested "d" directories under rel, a file at the bottom. */
static void
make_deep(const char *rel, int levels, int extras)
{
	int fd, nfd, i;

	mkdirs(rel);
	fd = open(P("%s", rel), O_RDONLY | O_DIRECTORY);
	assert_true(fd != -1);
	for (i = 0; i < levels; i++) {
		assert_int_equal(mkdirat(fd, "d", 0755), 0);
		if (extras && i % 97 == 0) {
			/* Siblings, so a reopened parent has more to read. */
			assert_int_equal(mkdirat(fd, "e", 0755), 0);
			close(openat(fd, "f", O_WRONLY | O_CREAT, 0644));
			assert_int_equal(symlinkat("/", fd, "root"), 0);
		}
		nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		assert_true(nfd != -1);
		close(fd);
		fd = nfd;
	}
	close(openat(fd, "bottom", O_WRONLY | O_CREAT, 0644));
	close(fd);
}

static void
test_depth_limit_boundary(void **state)
{
	char err[512];

	make_deep("ok", FS_MAX_DEPTH, 0);
	assert_int_equal(fs_copy_tree(P("ok"), P("okcopy"), NULL, err,
	                     sizeof(err)),
	    0);
	make_deep("deep", FS_MAX_DEPTH + 1, 0);
	assert_int_equal(fs_copy_tree(P("deep"), P("deepcopy"), NULL, err,
	                     sizeof(err)),
	    -1);
	assert_int_equal(errno, ELOOP);
	assert_non_null(strstr(err, "deeper than 32 levels"));
	assert_false(exists(P("deepcopy")));
}

struct deep_job {
	int copy_rc, copy_errno, remove_rc;
	char err[512];
	int fds_before, fds_after;
};

static void *
deep_thread(void *arg)
{
	struct deep_job *j = arg;

	j->fds_before = open_fds();
	j->copy_rc =
	    fs_copy_tree(P("deep"), P("copy"), NULL, j->err, sizeof(j->err));
	j->copy_errno = errno;
	j->remove_rc = fs_remove_tree(P("deep"));
	j->fds_after = open_fds();
	return NULL;
}

/*
 * 10000 levels on a thread whose stack is smaller than a request thread's:
 * the copy refuses cleanly (nothing left), the removal removes it all.
 */
static void
test_deep_tree_small_stack(void **state)
{
	struct deep_job j;
	pthread_attr_t a;
	pthread_t th;

	make_deep("deep", DEEP, 1);
	memset(&j, 0, sizeof(j));
	assert_int_equal(pthread_attr_init(&a), 0);
	assert_int_equal(pthread_attr_setstacksize(&a, SMALL_STACK), 0);
	assert_int_equal(pthread_create(&th, &a, deep_thread, &j), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	pthread_attr_destroy(&a);
	assert_int_equal(j.copy_rc, -1);
	assert_int_equal(j.copy_errno, ELOOP);
	assert_non_null(strstr(j.err, "deeper than"));
	assert_false(exists(P("copy")));
	assert_int_equal(j.remove_rc, 0);
	assert_false(exists(P("deep")));
	assert_int_equal(j.fds_after, j.fds_before);
}

/* -- removal -------------------------------------------------------------- */

static void
test_remove_never_follows(void **state)
{
	put("tenant_b/secret", "sibling's data", 0600);
	put("outside/dir/sentinel", "outside", 0600);
	put("victim/0a/file", "x", 0644);
	assert_int_equal(symlink("/", P("victim/rootlink")), 0);
	assert_int_equal(symlink("../tenant_b", P("victim/0a/sibling")), 0);
	assert_int_equal(symlink(P("outside/dir/sentinel"), P("victim/passwd")),
	    0);
	assert_int_equal(symlink(P("outside"), P("victim/0a/abs")), 0);
	assert_int_equal(mkfifo(P("victim/fifo"), 0600), 0);
	assert_int_equal(fs_remove_tree(P("victim")), 0);
	assert_false(exists(P("victim")));
	assert_content(P("tenant_b/secret"), "sibling's data");
	assert_content(P("outside/dir/sentinel"), "outside");
	/* The folder itself a link: the link goes, not its target. */
	assert_int_equal(symlink(P("outside"), P("tenant_c")), 0);
	assert_int_equal(fs_remove_tree(P("tenant_c")), 0);
	assert_false(exists(P("tenant_c")));
	assert_content(P("outside/dir/sentinel"), "outside");
	/* Missing is success; a path with no name is refused. */
	assert_int_equal(fs_remove_tree(P("nothing/here")), 0);
	assert_int_equal(fs_remove_tree(P("outside/..")), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fs_remove_tree("/"), -1);
	assert_content(P("outside/dir/sentinel"), "outside");
}

static void
test_remove_many_entries(void **state)
{
	char name[64];
	int i, j;

	for (i = 0; i < 40; i++)
		for (j = 0; j < 30; j++) {
			snprintf(name, sizeof(name), "big/%02x/%040x", i, j);
			put(name, "z", 0444);
		}
	assert_int_equal(chmod(P("big/00"), 0555), 0);
	assert_int_equal(fs_remove_tree(P("big")), 0);
	assert_false(exists(P("big")));
}

static void
test_sync_parent(void **state)
{
	struct stat st;
	char err[256];

	mkdirs("filestore/acme");
	assert_int_equal(fs_sync_parent(P("filestore/acme"), err, sizeof(err)),
	    0);
	assert_int_equal(nsyncs, 1);
	assert_int_equal(lstat(P("filestore"), &st), 0);
	assert_true(synced(&st));
	assert_int_equal(fs_sync_parent(P("missing/acme"), err, sizeof(err)),
	    -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "missing/acme"));
	fail_sync_type = S_IFDIR;
	fail_sync_errno = EIO;
	assert_int_equal(fs_sync_parent(P("filestore/acme"), err, sizeof(err)),
	    -1);
	assert_int_equal(errno, EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hard_link_copy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_byte_copy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_big_byte_copy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_links_and_specials_are_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_template_folder_may_be_a_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_point_is_skipped,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_destination_exists, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_fsync_failure_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_folders_batched,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth_limit_boundary,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_tree_small_stack,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_never_follows,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_many_entries, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_parent, setup,
		    teardown),
	};

	alarm(300); /* a fifo opened by mistake would hang: fail instead */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
