/*
 * tree.h — result trees: immutable file trees kept as a manifest in the content store.
 *
 * A manifest lists every entry in bytewise order of its path ("." is the root
 * and always comes first, even before names such as "-x"; other paths are
 * relative, "a/b"), each entry as five NUL-terminated fields:
 *
 *     type ('d' | 'f' | 'l') \0  mode (4 octal digits of mode & 07777) \0
 *     size (decimal; 0 for dirs, content length for files, target length for links) \0
 *     sha256 hex of the content (file) or of the target (link), empty for dirs \0
 *     path \0
 *
 * The manifest is itself stored as a blob; the tree's id is "sha256:" + that
 * blob's hex, so loading a tree by id is reading one blob.  A symlink's target is
 * stored as a blob too (its hex is the link's hex), so a tree is fully
 * reconstructible from the store.  Equal trees have equal ids.
 *
 * Trees hold dirs, regular files and symlinks only.  A loaded tree is read-only
 * and may be shared between threads.
 */
#ifndef SFS_TREE_H
#define SFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cas.h"
#include "creds.h"

struct tree_entry {
	char type;     /* 'd', 'f' or 'l' */
	unsigned mode; /* & 07777 */
	uint64_t size;
	char hex[SFS_HEX_SIZE]; /* "" for dirs */
	char *path;		/* "." for the root */
};

struct tree {
	char id[SFS_DIGEST_SIZE]; /* "sha256:<hex of manifest>" */
	size_t n;
	struct tree_entry *entries; /* sorted by path, bytewise; entries[0] is "." */
	uint64_t total_size;	    /* sum of file sizes */
};

/* What an ingest does with a path it cannot keep (fifo, socket, device). */
enum tree_special { TREE_SPECIAL_SKIP, TREE_SPECIAL_FAIL };

struct tree_ingest_opts {
	const char *const *include; /* NULL-terminated globs or NULL; see tree_glob_match */
	const char *const *exclude;
	enum tree_special special;
	/* Called for each skipped special file (may be NULL). */
	void (*warn)(void *arg, const char *msg);
	void *arg;
	/* Credentials the caller entered (creds.h), or NULL: host files are then
	 * opened as that user and the store is written with them paused. */
	struct sfs_creds *creds;
	/* More file bytes than this (0: no limit) fail the ingest with -EFBIG. */
	uint64_t max_bytes;
	/* Files already read, or NULL: a regular file it remembers with the same
	 * metadata is not read again (statcache.h). */
	struct sfs_statcache *statcache;
};

/*
 * Ingests a host directory (or a single regular file, which becomes a tree
 * holding that one file under its base name) into the store.  Never follows
 * symlinks, host_path itself included (-ELOOP).  On failure *ret_msg names the
 * offending host path.  File blobs become visible in the store together, just
 * before the manifest is stored (see cas_batch).
 */
int tree_ingest(struct cas *c, const char *host_path, const struct tree_ingest_opts *o,
		struct tree **ret, char **ret_msg);

/*
 * The same for a directory or regular file already open for reading (fd is
 * not closed): a caller that resolved a path itself, without following links
 * (an exec's output), ingests exactly what it opened.  A regular file becomes
 * a tree holding it as `name`; display names the fd in messages.
 */
int tree_ingest_fd(struct cas *c, int fd, const char *display, const char *name,
		   const struct tree_ingest_opts *o, struct tree **ret, char **ret_msg);

/* Loads the tree with this id ("sha256:<hex>" or bare hex); -ENOENT if absent. */
int tree_load(struct cas *c, const char *id, struct tree **ret);

/*
 * Builds a tree from entries (any order; copied; must include ".") and stores
 * its manifest.  File and link blobs must already be in the store.
 */
int tree_from_entries(struct cas *c, const struct tree_entry *e, size_t n, struct tree **ret);

/*
 * The same, when the caller knows some blobs are in the store and stay there:
 * known (NULL: none) has one flag per entry of e, and the blob of an entry
 * flagged true is not looked up.  Only for entries copied from a loaded tree
 * of a result the caller holds (docs/gc.md §4: a held result's blobs are never
 * deleted), such as the inputs of a `merge` or `file` vertex; a blob the caller
 * stored or found itself is looked up as by tree_from_entries.
 */
int tree_from_entries_known(struct cas *c, const struct tree_entry *e, const bool *known, size_t n,
			    struct tree **ret);

/* Computes the id a tree with these sorted entries would have, without storing. */
void tree_compute_id(const struct tree_entry *e, size_t n, char ret_id[SFS_DIGEST_SIZE]);

struct tree *tree_free(struct tree *t); /* accepts NULL, returns NULL */

/* The entry at path ("." or "a/b"), or NULL. O(log n). */
const struct tree_entry *tree_find(const struct tree *t, const char *path);

/*
 * Iterates the direct children of the dir at path in name order: start with
 * *cursor = 0; returns the next child or NULL at the end.
 */
const struct tree_entry *tree_next_child(const struct tree *t, const char *dir, size_t *cursor);

/* The base name of an entry's path ("." for the root). */
const char *tree_entry_name(const struct tree_entry *e);

/*
 * The subtree rooted at path as a new tree (path becomes "."; a file or link at
 * path becomes a one-entry tree named "."), stored in the store.  This is the
 * "digest of a selected path" of docs/spec.md §4.6.
 */
int tree_subtree(struct cas *c, const struct tree *t, const char *path, struct tree **ret);

/*
 * Writes the tree (or the subtree at `path`, NULL for all) into dest, which must
 * not exist (for a file selector dest becomes that file).  Files are copies,
 * never links into the store.  With readonly, write bits are cleared.  The
 * set-uid and set-gid bits are never written: what is materialised is run by
 * an exec, and must not run with its owner's privileges.
 */
int tree_materialize(struct cas *c, const struct tree *t, const char *path, const char *dest,
		     bool readonly, char **ret_msg);

/*
 * fnmatch-based glob where "**" matches any number of directories.  The
 * pattern is matched against the whole relative path, component by component
 * (FNM_PATHNAME-like: '*' and '?' never match '/'); a "**" component matches
 * zero or more components.  So "*.c" matches only top-level names; the pattern
 * of the components "**" and "x" matches "x" and "a/b/x"; the components "a"
 * and "**" match "a" and everything under it.
 * Leading dots are not special; empty components (trailing '/') are ignored.
 * Ingest keeps a path when it or an ancestor dir matches an include (or there
 * are none) and it matches no exclude; excluded dirs are not descended, and
 * the parent dirs of kept paths are kept.
 */
bool tree_glob_match(const char *pattern, const char *path);

/* Host trees deeper than this many levels of directories are refused, by the
 * ingest here and by the local op (a walk holds one fd or frame per level). */
#define TREE_MAX_DEPTH 256

/* Checks that every blob of the tree exists with the recorded size, and that the
 * small ones hash to their names (blobs up to TREE_VERIFY_HASH_FILE bytes, at
 * most TREE_VERIFY_HASH_BUDGET bytes hashed a tree); a corrupt one is removed,
 * so the execution that follows writes it again.  -EIO/-ENOENT with a message
 * naming the path. */
#define TREE_VERIFY_HASH_FILE (64 * 1024)
#define TREE_VERIFY_HASH_BUDGET (1024 * 1024)
int tree_verify(struct cas *c, const struct tree *t, char **ret_msg);

#endif
