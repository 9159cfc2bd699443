/*
 * prune.h — deleting results: the release cascade and countable blob references.
 *
 * Every blob a result needs (its manifest, its files' and links' blobs, its
 * export layer) is a row of blob_refs(owner = the result's results.num, blob =
 * the digest's 32 bytes, size: db.h), written
 * in the same unit as the results row (result_storage.c, layer.c).  So "is
 * this blob still referenced" is one index probe, never a scan of the trees.
 *
 * Deleting a result (docs/semantics.md §4.2) releases each of its records
 * through the key storage (which collects keys left with no records and no
 * links, cascading to their dependency keys), deletes its results, layers and
 * blob_refs rows, and records each blob no longer referenced in gc_intent —
 * all in one unit, committed (sfs_db_sync) before any file is touched.  Only
 * then are the intent's blobs removed, through cas_remove, each re-checked
 * under the database lock.  A kill -9 before the commit loses nothing; after
 * it, cache_prune_collect at the next mount finishes the removals.
 *
 * Blobs are deleted only through cas.h and enumerated only with cas_walk.
 * Locking: the database lock, held for the unit and for each removal.
 */
#ifndef SFS_PRUNE_H
#define SFS_PRUNE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "tree.h"

struct cache_prune_report {
	uint64_t results, records, blobs, bytes; /* bytes: of the blobs freed */
	uint64_t exports, export_bytes; /* whole-cache exports deleted (cache/exports.h) */
};

/* Adds the blob_refs rows of result tree t, whose results row is written (its
 * num is the rows' owner: -ENOENT without one); lock held, inside a unit. */
int cache_blob_refs_add_tree(struct sfs_db *db, struct cas *c, const struct tree *t);
/* One row of result owner; blob "sha256:<hex>" or bare hex (-EINVAL otherwise).
 * Nothing for an owner with no results row (a tree stored by itself): its
 * layer is then an orphan a mount may remove, made again when asked.  Takes
 * the lock. */
int cache_blob_ref_add(struct sfs_db *db, const char *owner, const char *blob, uint64_t size);
/* True while any result names blob (bare hex). */
bool cache_blob_referenced(struct sfs_db *db, const char *hex);

/*
 * Deletes result_id with the cascade above and adds to *rep what it freed.
 * With dry_run nothing is changed: the unit is rolled back, and rep says what
 * the real deletion would free.
 */
int cache_prune_result(struct sfs_cache *c, const char *result_id, bool dry_run,
		       struct cache_prune_report *rep);

/*
 * Deletes the least recently used results until the referenced blob bytes are
 * at most keep_bytes, skipping results used less than keep_ns ago, pinned
 * results (pins.h) and held ones (holds.h).  One database unit for all.
 * Then every whole-cache export but the newest (cache_exports_prune),
 * whatever the budget.
 */
int cache_prune(struct sfs_cache *c, uint64_t keep_bytes, int64_t keep_ns, bool dry_run,
		struct cache_prune_report *rep);

/*
 * Removes the blobs of gc_intent that no result references (the second half of
 * a prune), and with orphans every blob of the store no result references.
 * Orphans only at mount: a running job's blobs are unreferenced until its
 * result is saved.
 */
int cache_prune_collect(struct sfs_cache *c, bool orphans, struct cache_prune_report *rep);

/*
 * What the mount does before any job runs (docs/durability.md): gives the
 * results written before blob_refs existed (and layers whose reference a crash
 * lost) their rows, finishes the removals of a prune killed after its commit,
 * then removes every orphan blob (no result references it: what a job killed
 * before its result was saved wrote).  If a result without references has a
 * tree that does not load, which blobs it needs is unknown: the orphans stay
 * (logged) and only the prune's removals are finished.  *ret_refs gets the
 * results and layers whose references were rebuilt.
 */
int cache_prune_recover(struct sfs_cache *c, struct cache_prune_report *rep, uint64_t *ret_refs);

/*
 * The automatic GC's pass (gc.c): as cache_prune, but in units of at most
 * batch results, the database lock dropped between them, so that the FUSE
 * threads and running jobs wait for one batch at most.  Each batch is
 * committed and its blobs removed before the next.  *used is the referenced
 * bytes at the start (cache_referenced_bytes) and is lowered by what is freed.
 * Each deleted result's id is given to collected (may be NULL), after its
 * batch is committed, with no lock held.  Candidates are re-checked in their
 * batch: still there, not held, not pinned, and (with keep_ns) still not used
 * for keep_ns.  With *stop set (by another thread), it ends after the batch.
 * between (may be NULL) is called after each batch but the last, no lock held,
 * with the batch's wall time: the GC paces itself there (gc.c).
 */
struct cache_prune_lru_opts {
	uint64_t keep_bytes;
	int64_t keep_ns; /* 0: any age */
	size_t batch;	 /* results per unit; 0 is 1 */
	void (*collected)(void *arg, const char *result_id);
	void (*between)(void *arg, int64_t batch_ns);
	void *arg; /* of collected and between */
	const _Atomic bool *stop; /* may be NULL */
};
int cache_prune_lru(struct sfs_cache *c, const struct cache_prune_lru_opts *o, uint64_t *used,
		    struct cache_prune_report *rep);

/*
 * The prune of cache/ctl and the GC's pass in one: least recently used first,
 * until the referenced bytes are at most keep_bytes, in units of batch results
 * as cache_prune_lru.  With op, only results some record of which an op of
 * that kind made ("exec", "local", ...: records.op, du.h).  A dry run takes
 * the same batches read-only, keeping what it would delete in memory: rep says
 * what the prune would free, nothing changes, collected is not called, and
 * jobs and readers get the database between its batches.  used as cache_prune_lru's, or NULL: measured here.
 * With *stop set (by another thread), it ends after the unit under way.
 * Then, without op and unless stopped, every whole-cache export but the newest
 * goes (cache_exports_prune, whatever the budget; dry_run only counts them).
 */
struct cache_prune_opts {
	uint64_t keep_bytes;
	int64_t keep_ns; /* 0: any age */
	const char *op;	 /* NULL: any op */
	bool dry_run;
	size_t batch; /* results per unit; 0 is 1 */
	void (*collected)(void *arg, const char *result_id);
	void (*between)(void *arg, int64_t unit_ns); /* after each unit but the last */
	void *arg; /* of collected and between */
	const _Atomic bool *stop; /* may be NULL */
};
int cache_prune_run(struct sfs_cache *c, const struct cache_prune_opts *o, uint64_t *used,
		    struct cache_prune_report *rep);

/* Bytes of the distinct blobs results reference. */
int cache_referenced_bytes(struct sfs_db *db, uint64_t *ret);
/* Those blobs and their bytes (cache/stats: blobs beyond them are orphans). */
int cache_referenced(struct sfs_db *db, uint64_t *ret_blobs, uint64_t *ret_bytes);

#endif
