/*
 * unpack.h — applies a stack of image layers (tar, gzip- or zstd-compressed or
 * not) into one result tree, the way containerd applies a diff: in order, with
 * OCI whiteouts (".wh.<name>" deletes <name>, ".wh..wh..opq" empties its dir of
 * what lower layers put there).  Used by the cache import (import.c) and the
 * image op.
 *
 * Trees keep dirs, regular files and symlinks: owners and times are dropped,
 * permission bits kept, a hardlink becomes a copy of what its target is at
 * that point, other types (devices, fifos) are dropped with a warning.  Names
 * are cleaned ("./a//b/" is "a/b"); an absolute name or a ".." component
 * fails the layer, and so does a path under a non-directory (a symlink
 * included): nothing is extracted on the host, the tree is built in memory
 * over blobs put into the content store, so no entry can reach outside it.
 *
 * An unpack is used by one thread at a time; it holds no locks.
 */
#ifndef SFS_UNPACK_H
#define SFS_UNPACK_H

#include <stdbool.h>
#include <stdint.h>

#include "cas.h"

struct unpack_opts {
	uint64_t layer_max;   /* decompressed bytes of one layer (mount option import_layer_max) */
	uint64_t entries_max; /* entries of a layer and of the tree (import_entries_max) */
	/* Polled as layers are read; true stops with -ECANCELED.  NULL: never. */
	bool (*cancelled)(void *arg);
	/* Entries dropped, one line each (may be NULL). */
	void (*warn)(void *arg, const char *msg);
	void *arg;
};

struct unpack;

/* An empty tree (the root dir, 0755) to apply layers to; o is copied. */
int unpack_new(struct cas *cas, const struct unpack_opts *o, struct unpack **ret);
/* Applies the next layer, read from fd (not closed); name (its digest) is
 * what messages call it. */
int unpack_apply(struct unpack *u, int fd, const char *name, char **ret_msg);
/* Stores the file blobs and the tree's manifest; ret_id is its id. */
int unpack_finish(struct unpack *u, char ret_id[SFS_DIGEST_SIZE]);
struct unpack *unpack_free(struct unpack *u); /* accepts NULL, returns NULL */

#endif
