/*
 * metrics.c — the root's `metrics` file in the Prometheus text exposition
 * format (version 0.0.4): a HELP and a TYPE line before each family.
 *
 * Made at open from the solver (jobs, counters), the cache (cachedir.c) and
 * the FUSE front (parked readers, inodes).  The solve-duration histogram is
 * computed from the created -> ended times of every finished job the solver
 * still knows (live and history), so it survives a remount.
 *
 * No state, no locks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "array.h"
#include "fs.h"
#include "gc.h"
#include "statcache.h"

static const double duration_buckets[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600};

struct job_counts {
	uint64_t by_state[SFS_JOB_CANCELLED + 1];
	uint64_t in_bucket[ARRAY_SIZE(duration_buckets)]; /* not cumulative */
	uint64_t ended;
	double sum; /* seconds */
};

static void family(struct strbuf *out, const char *name, const char *type, const char *help)
{
	strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void count_job(const struct sfs_job_info *info, struct job_counts *c)
{
	double secs;

	c->by_state[info->state]++;
	if (!sfs_job_state_final(info->state) || info->ended <= 0 || info->created <= 0)
		return;
	secs = (double)(info->ended - info->created) / 1e9;
	if (secs < 0)
		secs = 0;
	c->ended++;
	c->sum += secs;
	for (size_t b = 0; b < ARRAY_SIZE(duration_buckets); b++)
		if (secs <= duration_buckets[b]) {
			c->in_bucket[b]++;
			break;
		}
}

static int jobs_count(struct sfs_fs *fs, struct job_counts *c)
{
	struct sfs_job_info info;
	uint64_t *ids = NULL;
	size_t n = 0;
	int r = sfs_solver_job_list(fs->solver, &ids, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (sfs_solver_job_info(fs->solver, ids[i], &info) == 0) {
			if (info.state <= SFS_JOB_CANCELLED)
				count_job(&info, c);
			sfs_job_info_release(&info);
		}
	free(ids);
	return 0;
}

static void add_jobs(struct strbuf *out, const struct job_counts *c)
{
	uint64_t cum = 0;

	family(out, "solverfs_jobs", "gauge", "Jobs known (live and history) by state.");
	for (int s = SFS_JOB_PENDING; s <= SFS_JOB_CANCELLED; s++)
		strbuf_addf(out, "solverfs_jobs{state=\"%s\"} %" PRIu64 "\n",
			    sfs_job_state_name((enum sfs_job_state)s), c->by_state[s]);
	family(out, "solverfs_solve_duration_seconds", "histogram",
	       "Time from a job's creation to its end, of the finished jobs kept.");
	for (size_t b = 0; b < ARRAY_SIZE(duration_buckets); b++) {
		cum += c->in_bucket[b];
		strbuf_addf(out, "solverfs_solve_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
			    duration_buckets[b], cum);
	}
	strbuf_addf(out, "solverfs_solve_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
		    c->ended);
	strbuf_addf(out, "solverfs_solve_duration_seconds_sum %.9g\n", c->sum);
	strbuf_addf(out, "solverfs_solve_duration_seconds_count %" PRIu64 "\n", c->ended);
}

static void add_counter(struct strbuf *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "counter", help);
	strbuf_addf(out, "%s %" PRIu64 "\n", name, v);
}

static void add_gauge(struct strbuf *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "gauge", help);
	strbuf_addf(out, "%s %" PRIu64 "\n", name, v);
}

static void add_solver(struct strbuf *out, const struct sfs_solver_stats *s)
{
	uint64_t hits = s->loads - s->load_failures;

	add_counter(out, "solverfs_vertices_executed_total", "Vertices executed since the mount.",
		    s->execs);
	add_counter(out, "solverfs_vertices_cached_total",
		    "Vertices whose result was loaded from the cache since the mount.", hits);
	add_counter(out, "solverfs_cache_hits_total", "Cache record loads that succeeded.", hits);
	add_counter(out, "solverfs_cache_misses_total", "Executions (no usable record).", s->execs);
	add_counter(out, "solverfs_cache_load_failures_total",
		    "Cache record loads that failed and fell back to executing.", s->load_failures);
	add_counter(out, "solverfs_jobs_ended_total", "Jobs that ran and ended since the mount.",
		    s->jobs_done + s->jobs_failed + s->jobs_cancelled);
}

static void add_store(struct strbuf *out, const struct fs_cache_stats *c)
{
	add_gauge(out, "solverfs_store_bytes", "Bytes of blobs in the content store.",
		  c->blob_bytes);
	add_gauge(out, "solverfs_store_blobs", "Blobs in the content store.", c->blobs);
	add_gauge(out, "solverfs_disk_bytes",
		  "Bytes under STATE_DIR (blobs, database, logs, exports, temp files), as du -sb counts them.",
		  c->disk_bytes);
	add_gauge(out, "solverfs_cache_keys", "Cache keys.", c->keys);
	add_gauge(out, "solverfs_cache_records", "Cache records.", c->records);
	add_gauge(out, "solverfs_cache_results", "Result trees known to the cache.", c->results);
	add_counter(out, "solverfs_db_commits_total",
		    "Database transactions committed since the mount (saves are grouped).",
		    c->db_commits);
}

static void add_gc(struct strbuf *out, struct cache_gc *g)
{
	struct cache_gc_stats s;

	cache_gc_get_stats(g, &s);
	add_counter(out, "solverfs_gc_kicks_total",
		    "Automatic GC passes asked for (one per job ended, one at the mount).",
		    s.kicks);
	add_gauge(out, "solverfs_gc_jobs_seen",
		  "Jobs ended since the mount that the last finished GC pass began after.",
		  s.seq_done);
	add_counter(out, "solverfs_gc_passes_total", "Automatic GC passes finished.", s.passes);
	add_counter(out, "solverfs_gc_failures_total", "Automatic GC passes that failed.",
		    s.failures);
	add_counter(out, "solverfs_gc_results_collected_total",
		    "Results the automatic GC deleted since the mount.", s.freed.results);
	add_counter(out, "solverfs_gc_bytes_freed_total",
		    "Blob bytes the automatic GC freed since the mount.", s.freed.bytes);
	add_gauge(out, "solverfs_gc_used_bytes",
		  "Blob bytes results reference, as the last GC pass left them.", s.used);
}

/* The stat cache of `local` snapshots (cache/statcache.h). */
static void add_snapshots(struct strbuf *out, struct sfs_statcache *sc)
{
	struct sfs_statcache_stats st;

	sfs_statcache_stats(sc, &st);
	add_counter(out, "solverfs_snapshot_files_read_total",
		    "Host files that local snapshots read since the mount.", st.reads);
	add_counter(out, "solverfs_snapshot_files_reused_total",
		    "Host files that local snapshots named by the blob remembered for their"
		    " device, inode, size, mtime and ctime, without reading them.",
		    st.reused);
	add_gauge(out, "solverfs_snapshot_files_remembered",
		  "Host files the stat cache remembers (kept across remounts).", st.entries);
}

int fs_metrics_content(struct sfs_fs *fs, struct strbuf *out)
{
	struct job_counts jc = {0};
	struct sfs_solver_stats ss;
	struct fs_cache_stats cs;

	if (jobs_count(fs, &jc) == 0)
		add_jobs(out, &jc);
	sfs_solver_get_stats(fs->solver, &ss);
	add_solver(out, &ss);
	if (fs_cache_stats_get(fs, false, &cs) == 0) /* metrics show no referenced_* */
		add_store(out, &cs);
	add_snapshots(out, fs->cache->statcache);
	add_gauge(out, "solverfs_parked_readers", "Blocked status/wait reads.",
		  fs_stream_parked(fs));
	add_gauge(out, "solverfs_inodes", "Inodes the kernel holds.", fs_nodes_count(fs));
	add_gc(out, fs->gc);
	return out->oom ? -ENOMEM : 0;
}
