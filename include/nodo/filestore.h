/*
 * filestore.h - copying and removing Odoo filestore folders.
 *
 * Odoo never rewrites a filestore file (they are named by their SHA-1), so a
 * copy may hard-link files; it falls back to a byte copy across devices.
 * Modes, owners and mtimes are kept like shutil.copytree. Trees are walked
 * by file descriptor (openat, fstatat without following, unlinkat) on a
 * heap stack: nothing inside a tree is ever followed out of it, and depth
 * costs no thread stack. Thread-safe.
 */
#ifndef NODO_FILESTORE_H
#define NODO_FILESTORE_H

#include <stddef.h>
#include <sys/stat.h>

#define FS_MAX_DEPTH  32  /* directory levels a copy descends */
#define FS_SKIP_SHOWN 5   /* skipped entries a report names */
#define FS_SKIP_PATH  256 /* bytes of one named entry's relative path */

/*
 * What a copy did. Only regular files and directories are copied; every
 * other entry (symbolic link, fifo, socket, device, a directory on another
 * file system) is skipped, never followed, and counted here.
 */
struct fs_report {
	unsigned long dirs;    /* directories created, each fsynced */
	unsigned long linked;  /* regular files hard-linked */
	unsigned long copied;  /* regular files byte-copied, each fsynced */
	unsigned long skipped; /* entries not copied */
	unsigned int shown;    /* entries named in skip[] */
	struct {
		char path[FS_SKIP_PATH]; /* relative to the tree; bytes
		                            outside printable ASCII are '?' */
		const char *type;        /* "symlink", "fifo", "socket",
		                            "device", "mount point" */
	} skip[FS_SKIP_SHOWN];
};

/*
 * Copies the tree src to dst (dst must not exist; its parent must). The
 * folder src itself may be a symbolic link (an operator may keep a
 * template's files on another disk); nothing inside it is followed. Every
 * byte-copied file and every directory made is fsynced before this
 * returns; the entry of dst in its parent is not (rename dst into place,
 * then fs_sync_parent()). rep may be NULL. Returns 0, or -1 with errno set
 * and err (errlen bytes) naming the path that failed; on failure whatever
 * was copied is removed.
 */
int fs_copy_tree(const char *src, const char *dst, struct fs_report *rep,
    char *err, size_t errlen);

/*
 * fsyncs the directory that holds path, so that an entry made or renamed
 * in it survives a crash. Returns 0, or -1 with errno and err set.
 */
int fs_sync_parent(const char *path, char *err, size_t errlen);

/*
 * Writes one sentence naming what rep skipped ("2 entries not copied
 * (neither files nor folders): a/b (symlink), c (fifo)") into out (len
 * bytes, always terminated; "" when nothing was skipped). Returns out.
 */
char *fs_report_skipped(const struct fs_report *rep, char *out, size_t len);

/*
 * Removes a tree of any depth; a missing path is success. Symbolic links
 * are removed, never followed; the removal never crosses into another file
 * system. The last component of path may itself be a link (the link is
 * removed). Stops at the first error: returns 0 or -1 (errno).
 */
int fs_remove_tree(const char *path);

/* 1 when path exists (any type), 0 when not, -1 on another error. */
int fs_exists(const char *path);

/*
 * One regular file met by fs_walk_files(): dirfd is its directory (valid
 * during the call only), name its entry there, rel its path relative to
 * the tree ("ab/abcdef..."), st what fstatat saw without following.
 * Return 0 to go on, -1 to stop the walk (fs_walk_files then returns -1
 * with errno as the callback left it).
 */
typedef int (*fs_file_cb)(void *arg, int dirfd, const char *name,
    const char *rel, const struct stat *st);

/*
 * Calls cb for every regular file under root, in the order of the sorted
 * paths (bytewise, each folder's entries sorted). Links, fifos, sockets,
 * devices and folders on another file system are skipped, never followed;
 * root itself may be a link. Descends FS_MAX_DEPTH levels. Memory is one
 * folder's names at a time per level. Returns 0, or -1 with errno and err
 * (errlen bytes) naming the path (ENOENT when root does not exist).
 * Thread-safe.
 */
int fs_walk_files(const char *root, fs_file_cb cb, void *arg, char *err,
    size_t errlen);

/*
 * Bytes (st_size summed) and count of the regular files under root, as
 * fs_walk_files() sees them. A missing root is 0 and 0. Returns 0 or -1.
 */
int fs_usage(const char *root, unsigned long long *bytes,
    unsigned long long *files, char *err, size_t errlen);

#endif
