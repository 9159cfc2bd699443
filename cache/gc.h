/*
 * gc.h — the automatic garbage collector: a thread of its own that keeps the
 * store within the policy of gcpolicy.h (docs/gc.md).
 *
 * It runs a pass when kicked (the daemon kicks it after each job ends) and
 * every period otherwise.  A pass measures the store (cache_referenced_bytes)
 * and the filesystem holding STATE_DIR (statvfs), asks gc_plan_compute what
 * to free, and deletes least recently used results through cache_prune_lru:
 * first those not used for keep_duration down to the soft target, then, while
 * still over max_used, any unpinned and unheld result down to the hard one.
 * The deletions go in small units (GC_BATCH results), so the FUSE threads and
 * running jobs wait for one unit at most, and while a job runs the pass pauses
 * between units (GC_BUSY_PAUSE) so that it takes a small share of the machine.
 * Pinned results (pins.h) and results held by running jobs and exports
 * (holds.h) are never deleted.
 *
 * Locking: lock guards kicked, stopping and the stats; a pass runs without it
 * (the database locks itself).
 */
#ifndef SFS_GC_H
#define SFS_GC_H

#include <stdint.h>

#include "cache.h"
#include "gcpolicy.h"
#include "prune.h"

#define GC_BATCH 64			    /* results per database unit */
#define GC_PERIOD_NS (300LL * 1000000000LL) /* between passes with no kick */
/* While a job runs, a pass waits this many times a batch's time after it. */
#define GC_BUSY_PAUSE 9

struct cache_gc;

/* Called with each result a pass deleted (no lock held), e.g. to drop what a
 * front caches of it. */
typedef void (*cache_gc_collected_fn)(void *arg, const char *result_id);

/* One pass now, on the calling thread; *rep (may be NULL) gets what it freed
 * and *ret_plan (may be NULL) the plan it followed. */
int cache_gc_pass(struct sfs_cache *c, const struct gc_opts *o, cache_gc_collected_fn fn, void *arg,
		  struct gc_plan *ret_plan, struct cache_prune_report *rep);

/* Starts the thread (none with o->off: *ret is NULL and 0 is returned). */
int cache_gc_start(struct sfs_cache *c, const struct gc_opts *o, int64_t period_ns,
		   cache_gc_collected_fn fn, void *arg, struct cache_gc **ret);
/* Asks for a pass soon; returns at once.  Accepts NULL.  seq: the caller's
 * count of what asked (the jobs ended so far), reported back as seq_done. */
void cache_gc_kick(struct cache_gc *g, uint64_t seq);
/* What the thread did since it started (the mount's metrics). */
struct cache_gc_stats {
	uint64_t kicks;	   /* cache_gc_kick calls */
	uint64_t seq;	   /* the largest seq kicked with */
	uint64_t seq_done; /* seq when the last finished pass began */
	uint64_t passes;
	uint64_t failures;		 /* passes that failed (logged) */
	uint64_t used;			 /* referenced bytes after the last pass */
	struct cache_prune_report freed; /* summed over the passes */
};
/* All zero for NULL (gc=off).  seq_done >= N: every job among the first N to
 * end has had a pass after it (what tests wait for). */
void cache_gc_get_stats(struct cache_gc *g, struct cache_gc_stats *ret);
/* Stops and joins the thread (a pass under way ends after its current batch). */
struct cache_gc *cache_gc_stop(struct cache_gc *g); /* accepts NULL */

#endif
