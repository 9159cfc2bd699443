/*
 * ops.h — helpers shared by the op implementations in solver/ops/ (private to
 * the ops; the solver only sees op.h).
 *
 * A wtree (wtree.c) is a mutable, in-memory file tree keyed by path, used by
 * `file` and `merge` to build a result out of entries whose blobs are already in
 * the store (no file is copied: a result is a new manifest).  It is owned by one
 * op call and not thread-safe.
 */
#ifndef SFS_OPS_H
#define SFS_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "strmap.h"
#include "tree.h"
#include "op.h"

struct wt_ent {
	char type; /* 'd', 'f', 'l' */
	unsigned mode;
	uint64_t size;
	char hex[SFS_HEX_SIZE];
	/* Copied from an input's tree: the job holds that result, so its blob
	 * stays in the store and wtree_build does not look it up (tree.h,
	 * tree_from_entries_known).  False for a blob the op stored itself. */
	bool from_input;
};

struct wtree {
	struct strmap map; /* path ("." or "a/b") -> struct wt_ent * */
};

/* An empty tree: just the root dir (0755). */
int wtree_init(struct wtree *w);
void wtree_release(struct wtree *w);
/* Adds every entry of t, a loaded tree of an input (replacing what is there). */
int wtree_add_tree(struct wtree *w, const struct tree *t);
struct wt_ent *wtree_get(const struct wtree *w, const char *path);
/* Sets path to a copy of e; the caller has made sure the parent is a dir. */
int wtree_put(struct wtree *w, const char *path, const struct wt_ent *e);
/* Removes path and everything under it; false when nothing was there. */
bool wtree_rm(struct wtree *w, const char *path);
/* mkdir -p of path's missing ancestors (mode 0755); -ENOTDIR naming the
 * component that is not a dir. */
int wtree_mkparents(struct wtree *w, const char *path, char **ret_msg);
/* Stores the manifest; *ret is the new tree.  Looks up only the blobs of
 * entries not from_input. */
int wtree_build(struct wtree *w, struct cas *c, struct tree **ret);

/* The fields of a build vertex (its params), read by the solver's sub-build
 * (subbuild.c). */
struct sfs_build_params {
	char *path;   /* the inner spec file in the input */
	char *output; /* "" for the inner spec's first output, else "key" or "key:N" */
};

/* "a/b/c" -> "a/b"; "a" -> "."; malloc'd (NULL on ENOMEM). */
char *sfs_path_parent(const char *path);
/* "a/b" under "a" -> "b", under "." -> itself; NULL when path is not under dir
 * (a path is not under itself). */
const char *sfs_path_under(const char *path, const char *dir);

/* Loads a result tree of an input, with a message naming the id on failure. */
int sfs_op_load_tree(struct sfs_op_ctx *ctx, const char *id, struct tree **ret, char **ret_msg);
/* Appends one line to the vertex log (stream 2), adding the newline. */
void sfs_op_logf(struct sfs_op_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
