/*
 * pins.h — GC roots: the outputs of jobs the user kept (`echo keep >
 * jobs/N/ctl`), after Nix's GC roots.  A pinned result is never a candidate
 * of the automatic GC or of a prune (the LRU statement leaves it out); it
 * still counts in the store's use.
 *
 * A pin is a gc_roots(job, result) row, so it survives remounts.  unkeep, a
 * discarded job and a job dropped from the history delete its rows: no root
 * outlives the job that names it.
 */
#ifndef SFS_PINS_H
#define SFS_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sfs_db;

/* Pins results[0..n) (result ids, "sha256:<hex>") for job, in one unit. */
int cache_pins_set(struct sfs_db *db, uint64_t job, const char *const *results, size_t n);
/* Drops every pin of job (none is fine). */
int cache_pins_clear(struct sfs_db *db, uint64_t job);
/* True while some job pins result_id; true on a database error (keep on doubt). */
bool cache_pinned(struct sfs_db *db, const char *result_id);
/* True while job pins something; false on an error. */
bool cache_job_pinned(struct sfs_db *db, uint64_t job);

#endif
