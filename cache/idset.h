/*
 * idset.h — a small set of cache key ids (candidates while resolving a key's
 * id from its deps, keys found by a query).  Linear lookups: the sets hold a
 * handful of ids.
 */
#ifndef SFS_IDSET_H
#define SFS_IDSET_H

#include <stdbool.h>
#include <stddef.h>

#include "keystore.h"

struct idset {
	size_t n, cap;
	char (*v)[CACHE_ID_SIZE];
};

bool idset_has(const struct idset *s, const char *id);
/* Adds id unless present; 0 or -ENOMEM.  A keystore_id_fn: arg is the set. */
int idset_add(const char *id, void *arg);
/* Keeps only the members of s that are also in t. */
void idset_intersect(struct idset *s, const struct idset *t);
void idset_release(struct idset *s);

#endif
