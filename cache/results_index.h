/*
 * results_index.h — what the database knows about result trees: the results
 * table (size, created, last_used) and the records that point at each result.
 *
 * A read-only view for cache/results/ and cache/stats (fs/cachedir.c) and
 * results/ (fs/results.c): the rows are written by the result storage and the
 * key storage; this module only lists and counts them.  Result ids are
 * "sha256:<hex>" as stored; lookups also accept the bare hex.
 *
 * Walks read their rows under the database lock, then call back without it,
 * so a callback may call into the database again.
 */
#ifndef SFS_RESULTS_INDEX_H
#define SFS_RESULTS_INDEX_H

#include <stdint.h>

#include "keystore.h"

struct sfs_db;

struct results_index_entry {
	char id[SFS_DIGEST_SIZE]; /* "sha256:<hex>" */
	uint64_t size;		  /* bytes of file data in the tree */
	int64_t created;	  /* ns since the epoch */
	int64_t last_used;	  /* ns since the epoch */
};

struct results_index_counts {
	uint64_t results;
	uint64_t result_bytes; /* sum of sizes */
	uint64_t records;
	uint64_t keys; /* keys with a record or a link (as the keystore's walk) */
	uint64_t links;
};

/* Calls fn with every result id, ascending. */
int results_index_walk(struct sfs_db *db, keystore_id_fn fn, void *arg);
/* The row of one result (id or bare hex); -ENOENT when unknown. */
int results_index_get(struct sfs_db *db, const char *id, struct results_index_entry *ret);
/* The records whose result is id (ascending record id). */
int results_index_walk_records(struct sfs_db *db, const char *id, keystore_id_fn fn, void *arg);
/* The keys holding any record of result id, each once (ks->walk_ids_by_result). */
int results_index_walk_keys(struct sfs_db *db, struct keystore *ks, const char *id,
			    keystore_id_fn fn, void *arg);
int results_index_counts(struct sfs_db *db, struct results_index_counts *ret);

#endif
