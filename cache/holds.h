/*
 * holds.h — results in use: a running job's inputs and outputs, the trees an
 * export in progress reads.  Garbage collection and prune never delete a held
 * result (docs/gc.md).
 *
 * In memory only: holds are taken by the live daemon and die with it, so a
 * crash leaves none behind.  Counted: two jobs holding one result each take a
 * hold, and the result is free again after both released theirs.
 *
 * Closing the race with a prune: whoever is about to use a result it found in
 * the database takes the hold first and then loads it; a prune checks the
 * holds inside its database unit.  Either the prune saw the hold and skipped
 * the result, or it deleted the result before the load, and the load fails
 * cleanly (the solver then executes the vertex).
 *
 * Locking: a mutex of its own, a leaf (nothing is called under it), so holds
 * may be taken and checked with the solver's or the database's lock held.
 */
#ifndef SFS_HOLDS_H
#define SFS_HOLDS_H

#include <stdbool.h>
#include <stddef.h>

struct cache_holds;

int cache_holds_new(struct cache_holds **ret);
struct cache_holds *cache_holds_free(struct cache_holds *h); /* accepts NULL */

/* result_id: "sha256:<hex>" or the bare hex, either names the same result.
 * A NULL h or an empty id is a no-op (tests open caches without holds). */
int cache_hold(struct cache_holds *h, const char *result_id); /* 0 or -ENOMEM */
void cache_unhold(struct cache_holds *h, const char *result_id);
bool cache_held(struct cache_holds *h, const char *result_id);
/* Distinct results held now (metrics, tests). */
size_t cache_holds_count(struct cache_holds *h);

#endif
