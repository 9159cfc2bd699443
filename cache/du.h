/*
 * du.h — what each result costs on disk and what deleting it would give back
 * (cache/du of the mount, docs/tree.md §6), and the description a record
 * keeps of the vertex that made it.
 *
 * A result's size is the bytes of the distinct blobs it references (blob_refs:
 * its manifest, files, links and export layer), so two results sharing a file
 * both count it.  Its reclaimable bytes are those of the blobs no other result
 * references: what deleting it alone frees.  Bytes shared between results are
 * freed only when the last of them goes, so the sum of the reclaimable column
 * is at most what a full prune frees; cache_du's total_reclaimable is exactly
 * that (blobs every owner of which is a result a prune may delete: not pinned,
 * not held), and cache_prune_lru with no limits frees that many bytes.
 *
 * Locking: the database lock while the rows are read; none after.
 */
#ifndef SFS_DU_H
#define SFS_DU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

/*
 * Records what made record_id: op is the op kind ("exec", "local", "file",
 * "merge", "build", ...), name the vertex name and the op summary, one line.
 * The solver calls it after each save; a record it never describes (an import,
 * one written before the columns existed) shows "-".
 */
int cache_record_describe(struct sfs_db *db, const char *record_id, const char *op,
			  const char *name);

struct cache_du_entry {
	char id[SFS_DIGEST_SIZE]; /* "sha256:<hex>" */
	uint64_t size;		  /* bytes of the distinct blobs it references */
	uint64_t reclaimable;	  /* of those, the bytes no other result references */
	int64_t created, last_used; /* ns since the epoch */
	bool pinned;		    /* a GC root (pins.h) */
	bool held;		    /* in use by a running job or an export (holds.h) */
	char *op;   /* the op kinds of its described records, sorted, comma-separated */
	char *name; /* of its newest described record; NULL if none */
};

struct cache_du {
	struct cache_du_entry *v; /* largest first, ties by id */
	size_t n, cap;
	uint64_t total_size;	    /* distinct blob bytes results reference */
	uint64_t total_reclaimable; /* what a full prune (cache/ctl prune) frees now */
};

int cache_du_get(struct sfs_cache *c, struct cache_du *ret);
void cache_du_release(struct cache_du *du);

#endif
