/*
 * dgstmap.h — a hash map keyed by 32-byte digests (open addressing, linear
 * probing), for maps of the solver with 100,000s of entries.
 *
 * Keys are borrowed: each must stay valid and unchanged while its entry exists
 * (a digest inside the value, say); a replacing put takes the new pointer.  A
 * digest is uniform already: its first 8 bytes are the hash.  Values are
 * opaque pointers owned by the caller.  Lookups, inserts and deletes are O(1)
 * on average; the table doubles at 70 % load.  Not thread-safe: the owner's
 * lock guards it.
 */
#ifndef SFS_DGSTMAP_H
#define SFS_DGSTMAP_H

#include <stddef.h>

#include "dgst.h"

struct dgstmap_slot {
	const struct sfs_dgst *key; /* NULL: empty; DGSTMAP_TOMB (dgstmap.c): deleted */
	void *value;
};

struct dgstmap {
	size_t cap; /* power of two, 0 when empty */
	size_t len;
	size_t used; /* len + tombstones */
	struct dgstmap_slot *slots;
};

#define DGSTMAP_INIT                                                                               \
	{                                                                                          \
		0, 0, 0, NULL                                                                      \
	}

void *dgstmap_get(const struct dgstmap *m, const struct sfs_dgst *key);
/* Inserts or replaces; 0 or -ENOMEM.  *ret_old (may be NULL) gets the replaced
 * value or NULL. */
int dgstmap_put(struct dgstmap *m, const struct sfs_dgst *key, void *value, void **ret_old);
/* Removes key; returns its value or NULL. */
void *dgstmap_del(struct dgstmap *m, const struct sfs_dgst *key);
/* Frees the table (not the keys or values). */
void dgstmap_release(struct dgstmap *m);

#endif
