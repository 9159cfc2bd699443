/*
 * layer.h — the gzip tar layer of a result tree, for cache export.
 *
 * BuildKit exports a result as a stack of layer blobs (a Remote); solverfs
 * exports each result as one layer holding the whole tree (docs/export.md §4).  The
 * layer is deterministic so equal trees give byte-identical blobs: entries in
 * the tree's bytewise path order (the root as "./" first, then relative paths),
 * uid/gid 0, no user or group names, mtime 0, permission bits kept, dirs,
 * regular files and symlinks only, POSIX (pax restricted) tar, gzip with
 * header mtime 0 and no file name.
 *
 * The blob lives in the content store; the layers table of the database
 * remembers which blob a result became, so a later export reuses it (this is
 * BuildKit's LoadRemote: an already existing transferable form).
 */
#ifndef SFS_LAYER_H
#define SFS_LAYER_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"

struct cache_layer {
	char blob[SFS_DIGEST_SIZE];    /* "sha256:<hex>" of the gzip blob */
	uint64_t size;		       /* of the gzip blob */
	char diff_id[SFS_DIGEST_SIZE]; /* "sha256:<hex>" of the uncompressed tar */
};

/*
 * The layer of result tree result_id.  An existing layer (a layers row whose
 * blob is still in the store) is returned as is.  Otherwise, with create the
 * layer is made from the tree, stored and remembered; without, -ENOENT.
 * -ENOENT too when the tree itself is gone.
 */
int cache_layer_get(struct sfs_cache *c, const char *result_id, bool create,
		    struct cache_layer *ret);

/* Writes the uncompressed tar of tree t to fd (what the layer's gzip holds);
 * ret_diff_id (may be NULL) receives its digest.  For tests and tools. */
struct tree;
int cache_layer_write_tar(struct cas *c, const struct tree *t, int fd,
			  char ret_diff_id[SFS_DIGEST_SIZE]);

#endif
