/*
 * vlog.c — what a vertex tells its jobs: its start and completion, and its
 * log (the op's output, kept in STATE_DIR/logs/<hex>-<random>.log), fanned out
 * to the progress of every job that has the vertex; and the same replayed to a
 * job that joins a vertex another job already runs (README "How it works":
 * two jobs building the same vertex share one execution).
 *
 * The replay is BuildKit's progress MultiWriter.Add: a writer added late gets
 * every item written before it, then follows live.  Here the items are the
 * vertex's own state (started, completed, cached, error) and its log file;
 * what a log file lacks, the time and stream of each write, is kept beside it
 * as marks: one per write (a write in the same millisecond on the same stream
 * as the last extends it), at most SFS_VLOG_MARKS, every other one dropped
 * when full, so a long loud exec keeps coarser times, not more memory.
 *
 * Everything here runs with sfs_solver.lock held, except sfs_vstate_log (an
 * op's output callback), which takes it.  The replay reads the log file under
 * the lock: at most status_max bytes (past that the job's texts clip it
 * anyway), once per job that joins a vertex that has logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "internal.h"

/* Creates STATE_DIR/logs/<hex>-<random>.log for this execution (lock held). */
static int open_log(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	char rnd[CACHE_ID_SIZE], *dir = NULL, *path = NULL;
	keystore_new_id(rnd);
	if (asprintf(&dir, "%s/logs", s->cache->state_dir) < 0)
		return -ENOMEM;
	mkdir(dir, 0700);
	int r = asprintf(&path, "%s/%s-%s.log", dir, vs->digest + 7, rnd);
	free(dir);
	if (r < 0)
		return -ENOMEM;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		sfs_log(SFS_LOG_WARN, "cannot create %s: %s", path, strerror(errno));
		free(path);
		return r;
	}
	struct vstate_log *l = vs->log;
	vs->log_fd = fd;
	free(l->path);
	l->path = path;
	l->file_bytes = 0;
	l->nmarks = 0;
	return 0;
}

void sfs_vstate_log_free(struct vstate_log *l)
{
	if (!l)
		return;
	free(l->path);
	free(l->marks);
	free(l);
}

/* Keeps every other mark (the first included): each left covers what the
 * dropped one after it did, stamped with the earlier time. */
static void thin_marks(struct vstate_log *l)
{
	size_t k = 0;
	for (size_t i = 0; i < l->nmarks; i += 2)
		l->marks[k++] = l->marks[i];
	l->nmarks = k;
}

/* n bytes of stream were appended to the log file at time t (lock held). */
static void add_mark(struct vstate_log *l, int stream, size_t n, int64_t t)
{
	struct sfs_vlog_mark *last = l->nmarks ? &l->marks[l->nmarks - 1] : NULL;
	uint64_t off = l->file_bytes;

	l->file_bytes += n;
	if (last && last->stream == stream && t - last->t < 1000000)
		return;
	if (l->nmarks == SFS_VLOG_MARKS)
		thin_marks(l);
	if (sfs_grow((void **)&l->marks, &l->capmarks, l->nmarks + 1, sizeof(*l->marks)) < 0)
		return; /* no memory: these bytes replay with the time of the mark before */
	l->marks[l->nmarks++] = (struct sfs_vlog_mark){off, t, stream};
}

static void log_write(struct vstate *vs, int stream, const char *data, size_t n, int64_t t)
{
	ssize_t w = vs->log_fd >= 0 && n ? write(vs->log_fd, data, n) : 0;
	if (w > 0)
		add_mark(vs->log, stream, (size_t)w, t);
}

/* An op's output: to the vertex log file and every job's progress. */
void sfs_vstate_log(void *arg, int stream, const char *data, size_t len)
{
	struct vstate *vs = arg;
	struct sfs_solver *s = vs->s;
	int64_t now = sfs_now_ns();

	sfs_solver_lock(s);
	/* made at the first output, so ops that print nothing hold no file and
	 * no log state */
	if (!vs->log && !(vs->log = calloc(1, sizeof(*vs->log)))) {
		sfs_solver_unlock(s);
		sfs_log(SFS_LOG_WARN, "out of memory: output of %s dropped", vs->digest);
		return;
	}
	struct vstate_log *l = vs->log;
	if (vs->log_fd < 0 && !l->path)
		open_log(s, vs);
	/* the log limit bounds the file and the progress streams alike: past it
	 * the output is dropped, with one line saying so in both */
	static const char clipped[] = "[output clipped, log limit reached]\n";
	uint64_t room = l->bytes < s->o.log_limit ? s->o.log_limit - l->bytes : 0;
	size_t n = len < room ? len : (size_t)room;
	bool clip_now = n < len && !vs->log_clipped;
	log_write(vs, stream, data, n, now);
	if (clip_now)
		log_write(vs, 2, clipped, sizeof(clipped) - 1, now);
	l->bytes += n;
	vs->log_clipped |= clip_now;
	struct sfs_job *jobs[SFS_MAX_VSTATE_JOBS];
	size_t nj = sfs_vstate_jobs(vs, jobs, SFS_MAX_VSTATE_JOBS);
	for (size_t k = 0; k < nj && (n || clip_now); k++) {
		if (n)
			sfs_progress_log(jobs[k]->progress, vs->digest, stream, data, n, now);
		if (clip_now)
			sfs_progress_log(jobs[k]->progress, vs->digest, 2, clipped,
					 sizeof(clipped) - 1, now);
		sfs_job_mark_dirty(s, jobs[k]);
	}
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
}

void sfs_vstate_status(void *arg, const char *id, uint64_t current, uint64_t total, bool done)
{
	struct vstate *vs = arg;
	struct sfs_solver *s = vs->s;
	int64_t now = sfs_now_ns();

	sfs_solver_lock(s);
	struct sfs_job *jobs[SFS_MAX_VSTATE_JOBS];
	size_t nj = sfs_vstate_jobs(vs, jobs, SFS_MAX_VSTATE_JOBS);
	for (size_t k = 0; k < nj; k++) {
		sfs_progress_status(jobs[k]->progress, vs->digest, id, current, total, now, done);
		sfs_job_mark_dirty(s, jobs[k]);
	}
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
}

void sfs_vstate_progress_started(struct vstate *vs, bool cached)
{
	SFS_ASSERT_LOCKED(vs->s);
	int64_t now = sfs_now_ns();
	vs->started = now;
	vs->state = SFS_VERTEX_RUNNING;
	vs->progress_cached = cached;
	struct sfs_job *jobs[SFS_MAX_VSTATE_JOBS];
	size_t nj = sfs_vstate_jobs(vs, jobs, SFS_MAX_VSTATE_JOBS);
	for (size_t k = 0; k < nj; k++) {
		sfs_progress_started(jobs[k]->progress, vs->digest, now, cached);
		sfs_job_mark_dirty(vs->s, jobs[k]);
	}
}

void sfs_vstate_progress_completed(struct vstate *vs, bool cached, const char *err)
{
	SFS_ASSERT_LOCKED(vs->s);
	int64_t now = sfs_now_ns();
	vs->completed = now;
	if (err)
		vs->state =
		    strcmp(err, "context canceled") == 0 ? SFS_VERTEX_CANCELLED : SFS_VERTEX_FAILED;
	else
		vs->state = cached ? SFS_VERTEX_CACHED : SFS_VERTEX_DONE;
	vs->progress_cached = cached;
	free(vs->progress_error);
	vs->progress_error = err ? strdup(err) : NULL;
	struct sfs_job *jobs[SFS_MAX_VSTATE_JOBS];
	size_t nj = sfs_vstate_jobs(vs, jobs, SFS_MAX_VSTATE_JOBS);
	for (size_t k = 0; k < nj; k++) {
		sfs_progress_completed(jobs[k]->progress, vs->digest, now, cached, err);
		sfs_job_mark_dirty(vs->s, jobs[k]);
	}
}

/* The log file's bytes [0, max) into p, each piece with its mark's time and
 * stream (lock held). */
static void replay_log(struct vstate *vs, struct sfs_progress *p, uint64_t max)
{
	const struct vstate_log *l = vs->log;
	char buf[64 * 1024];
	int fd;

	if (!l)
		return;
	uint64_t end = l->file_bytes < max ? l->file_bytes : max;
	if (!l->path || !end || !l->nmarks)
		return;
	fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sfs_log(SFS_LOG_WARN, "cannot replay %s: %s", l->path, strerror(errno));
		return;
	}
	for (size_t m = 0; m < l->nmarks && l->marks[m].off < end; m++) {
		const struct sfs_vlog_mark *k = &l->marks[m];
		uint64_t stop = m + 1 < l->nmarks ? l->marks[m + 1].off : end;
		for (uint64_t off = k->off; off < stop && off < end;) {
			uint64_t want = (stop < end ? stop : end) - off;
			ssize_t got =
			    pread(fd, buf, want < sizeof(buf) ? want : sizeof(buf), (off_t)off);
			if (got <= 0) {
				m = l->nmarks; /* a short file: replay what there was */
				break;
			}
			sfs_progress_log(p, vs->digest, k->stream, buf, (size_t)got, k->t);
			off += (uint64_t)got;
		}
	}
	close(fd);
}

void sfs_vstate_replay(struct vstate *vs, struct sfs_job *j)
{
	struct sfs_solver *s = vs->s;
	SFS_ASSERT_LOCKED(s);
	if (!vs->started || !j->progress)
		return;
	sfs_progress_started(j->progress, vs->digest, vs->started, vs->progress_cached);
	/* past status_max bytes of log the job's texts say "clipped" and keep no more */
	replay_log(vs, j->progress, s->o.status_limit ? s->o.status_limit : UINT64_MAX);
	if (vs->completed >= vs->started)
		sfs_progress_completed(j->progress, vs->digest, vs->completed, vs->progress_cached,
				       vs->progress_error);
	sfs_job_mark_dirty(s, j);
}
