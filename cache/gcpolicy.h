/*
 * gcpolicy.h — how much the automatic GC frees: BuildKit's modern GC policy
 * (reservedSpace, maxUsedSpace, minFreeSpace, keepDuration) as one pure
 * function of the store's use and the filesystem's size and free space.
 *
 * The rule (docs/gc.md):
 *   soft = min(max_used, used - (min_free - free))  when free < min_free,
 *          else max_used;  then soft = max(soft, reserved)
 *   hard = max_used
 * GC deletes least recently used results not used for keep_duration until
 * used <= soft, then, if still over max_used, the least recently used whatever
 * their age until used <= hard.  reserved is clamped to max_used.  Pinned
 * results and results held by running jobs or exports are never candidates
 * (gc.c); they still count as used.
 *
 * No I/O and no state: tests/unit/test_gcpolicy.c drives it with numbers.
 */
#ifndef SFS_GCPOLICY_H
#define SFS_GCPOLICY_H

#include <stdbool.h>
#include <stdint.h>

/* A size given as bytes or as a percentage of the filesystem's size. */
struct gc_amount {
	bool set;     /* given on the command line; else the default */
	bool percent; /* value is a percentage (0..100) of the filesystem */
	uint64_t value;
};

struct gc_opts {
	bool off;		   /* gc=off */
	struct gc_amount max_used; /* default 80 %, at most 100 GiB */
	struct gc_amount reserved; /* default 10 %, at most 10 GiB */
	struct gc_amount min_free; /* default 20 % */
	int64_t keep_ns;	   /* default 48 h; younger results kept unless over max_used */
};

#define GC_MAX_USED_PCT 80
#define GC_MAX_USED_CAP (100ull << 30)
#define GC_RESERVED_PCT 10
#define GC_RESERVED_CAP (10ull << 30)
#define GC_MIN_FREE_PCT 20
#define GC_KEEP_NS_DEFAULT (48LL * 3600 * 1000000000LL)

/* What the store uses and what its filesystem has, in bytes. */
struct gc_usage {
	uint64_t used;	  /* the store's referenced blob bytes, or a bound above them (gc.c) */
	uint64_t fs_size; /* of the filesystem holding STATE_DIR */
	uint64_t fs_free; /* available to the daemon there */
};

struct gc_plan {
	uint64_t max_used, reserved, min_free; /* resolved bytes */
	uint64_t soft;	 /* keep at most this many bytes of results older than keep_ns */
	uint64_t hard;	 /* keep at most this many bytes whatever their age */
	int64_t keep_ns; /* age under which results are spared by the soft pass */
	uint64_t excess; /* used - soft, 0 when nothing needs freeing */
};

/* Defaults: nothing set, keep_ns 48 h. */
void gc_opts_default(struct gc_opts *o);
/* The plan for usage u under o; with o->off, excess is 0 and soft = hard = UINT64_MAX. */
void gc_plan_compute(const struct gc_opts *o, const struct gc_usage *u, struct gc_plan *ret);

#endif
