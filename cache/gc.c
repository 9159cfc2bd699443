/*
 * gc.c — the automatic GC's thread and pass (gc.h, docs/gc.md).
 *
 * Locking: g->lock guards kicked, stopping and stats; cond wakes the thread.
 */
#include "gc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "cas.h"
#include "err.h"

struct cache_gc {
	struct sfs_cache *c;
	struct gc_opts opts;
	int64_t period_ns;
	cache_gc_collected_fn fn;
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool kicked, stopping;
	_Atomic bool stop; /* stopping, for a pass under way (read without the lock) */
	struct cache_gc_stats stats;
	pthread_t thread;
};

/*
 * What the pass weighs (docs/gc.md §1).  u->used is first the bytes of every blob in
 * the store (rows and files: cas_usage, cheap), which is never less than what results
 * reference once the group commit has flushed; a pass under its targets by that bound
 * has nothing to do, and is spared the scan of blob_refs that gives the exact figure
 * (seconds for a store of millions of references, with the database lock held).
 */
static int measure(struct sfs_cache *c, struct gc_usage *u)
{
	struct statvfs vfs;
	int r = cas_usage(c->cas, NULL, &u->used);

	if (r < 0)
		return r;
	if (statvfs(c->state_dir, &vfs) < 0)
		return -errno;
	u->fs_size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	u->fs_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

static void deadline(struct timespec *ts, int64_t ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ns / 1000000000LL;
	ts->tv_nsec += ns % 1000000000LL;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The thread's collected callback: counts, then tells the front. */
static void gc_collected(void *arg, const char *result_id)
{
	struct cache_gc *g = arg;

	pthread_mutex_lock(&g->lock);
	g->stats.freed.results++;
	pthread_mutex_unlock(&g->lock);
	if (g->fn)
		g->fn(g->arg, result_id);
}

/*
 * Between two batches of the thread's pass: while some job runs (a result is
 * held), wait GC_BUSY_PAUSE times as long as the batch took, so that the GC
 * takes at most 1 / (GC_BUSY_PAUSE + 1) of the database lock and of a CPU
 * from the job (bench/gc.sh measures it).  An idle daemon collects at full
 * speed.  A stop ends the wait.
 */
static void gc_pace(void *arg, int64_t batch_ns)
{
	struct cache_gc *g = arg;
	struct timespec ts;

	if (cache_holds_count(g->c->holds) == 0)
		return;
	deadline(&ts, batch_ns * GC_BUSY_PAUSE);
	pthread_mutex_lock(&g->lock);
	while (!g->stopping)
		if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&g->lock);
}

/* One pass; g is the thread's (pacing, counting, stop), NULL for cache_gc_pass. */
static int pass(struct sfs_cache *c, const struct gc_opts *o, cache_gc_collected_fn fn, void *arg,
		struct cache_gc *g, struct gc_plan *ret_plan, struct cache_prune_report *rep,
		uint64_t *ret_used);

int cache_gc_pass(struct sfs_cache *c, const struct gc_opts *o, cache_gc_collected_fn fn, void *arg,
		  struct gc_plan *ret_plan, struct cache_prune_report *rep)
{
	return pass(c, o, fn, arg, NULL, ret_plan, rep, NULL);
}

static int pass(struct sfs_cache *c, const struct gc_opts *o, cache_gc_collected_fn fn, void *arg,
		struct cache_gc *g, struct gc_plan *ret_plan, struct cache_prune_report *rep,
		uint64_t *ret_used)
{
	const _Atomic bool *stop = g ? &g->stop : NULL;
	struct cache_prune_report mine = {0};
	struct gc_usage u;
	struct gc_plan p;
	int r;

	if (!rep)
		rep = &mine;
	if (o->off)
		return 0;
	if ((r = measure(c, &u)) < 0)
		return r;
	gc_plan_compute(o, &u, &p);
	if (u.used > p.soft || u.used > p.hard) { /* maybe work to do: the exact figure */
		if ((r = cache_referenced_bytes(c->db, &u.used)) < 0)
			return r;
		gc_plan_compute(o, &u, &p);
	}
	if (ret_plan)
		*ret_plan = p;
	uint64_t used = u.used;
	struct cache_prune_lru_opts lo = {.keep_bytes = p.soft,
					  .keep_ns = p.keep_ns > 0 ? p.keep_ns : 0,
					  .batch = GC_BATCH,
					  .collected = g ? gc_collected : fn,
					  .between = g ? gc_pace : NULL,
					  .arg = g ? (void *)g : arg,
					  .stop = stop};
	/* old results first, down to the soft target */
	if (used > p.soft)
		r = cache_prune_lru(c, &lo, &used, rep);
	/* then, over max_used, whatever their age */
	lo.keep_bytes = p.hard;
	lo.keep_ns = 0;
	if (r == 0 && used > p.hard && !(stop && *stop))
		r = cache_prune_lru(c, &lo, &used, rep);
	if (r == 0 && rep->results)
		sfs_log(SFS_LOG_INFO,
			"gc: %" PRIu64 " results, %" PRIu64 " records, %" PRIu64 " blobs, %" PRIu64
			" bytes freed; %" PRIu64 " bytes used (max %" PRIu64 ", soft %" PRIu64 ")",
			rep->results, rep->records, rep->blobs, rep->bytes, used, p.hard, p.soft);
	if (used > p.hard && r == 0)
		sfs_log(SFS_LOG_WARN,
			"gc: %" PRIu64 " bytes used, over gc_max_used=%" PRIu64
			" (the rest is pinned or in use)",
			used, p.hard);
	if (ret_used)
		*ret_used = used;
	return r;
}


static void *gc_main(void *arg)
{
	struct cache_gc *g = arg;
	struct timespec ts;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		deadline(&ts, g->period_ns);
		while (!g->kicked && !g->stopping)
			if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT)
				break;
		if (g->stopping)
			break;
		g->kicked = false;
		uint64_t seq = g->stats.seq, used = g->stats.used;
		struct cache_prune_report rep = {0};
		pthread_mutex_unlock(&g->lock);
		int r = pass(g->c, &g->opts, g->fn, g->arg, g, NULL, &rep, &used);
		if (r < 0)
			sfs_log(SFS_LOG_WARN, "gc: pass failed: %s", strerror(-r));
		pthread_mutex_lock(&g->lock);
		g->stats.passes++;
		g->stats.failures += r < 0;
		g->stats.seq_done = seq;
		g->stats.used = used;
		/* freed.results: counted as they go (gc_collected) */
		g->stats.freed.records += rep.records;
		g->stats.freed.blobs += rep.blobs;
		g->stats.freed.bytes += rep.bytes;
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int cache_gc_start(struct sfs_cache *c, const struct gc_opts *o, int64_t period_ns,
		   cache_gc_collected_fn fn, void *arg, struct cache_gc **ret)
{
	pthread_condattr_t ca;
	struct cache_gc *g;

	*ret = NULL;
	if (o->off)
		return 0;
	if (!(g = calloc(1, sizeof(*g))))
		return -ENOMEM;
	*g = (struct cache_gc){.c = c, .opts = *o, .period_ns = period_ns, .fn = fn, .arg = arg};
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cond, &ca);
	pthread_condattr_destroy(&ca);
	g->kicked = true; /* a first pass at start: the store may be over already */
	g->stats.kicks = 1;
	int r = -pthread_create(&g->thread, NULL, gc_main, g);
	if (r < 0) {
		pthread_cond_destroy(&g->cond);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return r;
	}
	*ret = g;
	return 0;
}

void cache_gc_kick(struct cache_gc *g, uint64_t seq)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->kicked = true;
	g->stats.kicks++;
	if (seq > g->stats.seq)
		g->stats.seq = seq;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void cache_gc_get_stats(struct cache_gc *g, struct cache_gc_stats *ret)
{
	*ret = (struct cache_gc_stats){0};
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	*ret = g->stats;
	pthread_mutex_unlock(&g->lock);
}

struct cache_gc *cache_gc_stop(struct cache_gc *g)
{
	if (!g)
		return NULL;
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	g->stop = true; /* a pass under way ends after its batch */
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
	return NULL;
}
