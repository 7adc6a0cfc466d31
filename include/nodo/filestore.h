/*
 * filestore.h - copying and removing Odoo filestore folders.
 *
 * Odoo never rewrites a filestore file (they are named by their SHA-1), so a
 * copy may hard-link files; it falls back to a byte copy across devices.
 * Modes, owners and mtimes are kept like shutil.copytree. Thread-safe.
 */
#ifndef NODO_FILESTORE_H
#define NODO_FILESTORE_H

#include <stddef.h>

#define FS_MAX_DEPTH 32 /* directory levels we follow */

/*
 * Copies the tree src to dst (dst must not exist). Returns 0, or -1 with
 * errno set and err (errlen bytes) naming the path that failed. On failure
 * whatever was copied is removed.
 */
int fs_copy_tree(const char *src, const char *dst, char *err, size_t errlen);

/* Removes a tree; a missing path is success. Returns 0 or -1 (errno). */
int fs_remove_tree(const char *path);

/* 1 when path exists (any type), 0 when not, -1 on another error. */
int fs_exists(const char *path);

#endif
