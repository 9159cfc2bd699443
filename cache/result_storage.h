/*
 * result_storage.h — CacheResultStorage: what a cache record's result is.
 *
 * BuildKit's solver.CacheResultStorage as a struct of
 * function pointers: it maps records to result trees in the content store.  A
 * record "exists" while its result tree's manifest and blobs are present.  A
 * cache manager (manager.h) owns one and asks it on every Records and Load;
 * one implementation, over the content store (result_storage.c), and the
 * unit tests' fakes.
 */
#ifndef SFS_RESULT_STORAGE_H
#define SFS_RESULT_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore.h"

struct result_storage;
struct result_storage_ops {
	/* Allocates a record for a result; fills r->id and r->created_at. */
	int (*save)(struct result_storage *rs, const char *result_id, int64_t created_at,
		    struct cache_result *ret);
	/* Checks the record's result is loadable; fills ret_result_id. */
	int (*load)(struct result_storage *rs, const struct cache_result *r,
		    char ret_result_id[SFS_DIGEST_SIZE], char **ret_msg);
	bool (*exists)(struct result_storage *rs, const struct cache_result *r);
	void (*free)(struct result_storage *rs);
};
struct result_storage {
	const struct result_storage_ops *ops;
};

struct cas;
struct sfs_db;
/* Results in the content store; db (may be NULL) gets results rows (size, times). */
int result_storage_cas_new(struct cas *c, struct sfs_db *db, struct result_storage **ret);

#endif
