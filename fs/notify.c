/*
 * notify.c — the solver's notify callback: something about job N changed.
 *
 * It wakes the blocked readers of the job's streams (stream.c), then tells the
 * kernel to drop what it caches of the job's dynamic nodes — attributes (size,
 * mtime), directory listings — with fuse_lowlevel_notify_inval_inode, so that
 * `ls -l`, `stat` and `tail -f` see the new size at once even where a kernel
 * kept an attribute longer than our zero timeout.  Only nodes the kernel holds
 * (an inode in node.c's table) are invalidated.
 *
 * The callback may run on a FUSE worker (a submit or a cancel notifies at
 * once) while the kernel holds locks of the request being served, and libfuse
 * forbids invalidating from such a path.  So the callback only queues the job
 * number; a thread of ours writes the invalidations to the device.
 *
 * Locking: inval_lock guards the queue, `se` and `stop`; the thread writes
 * to the device without it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define QUEUE_MAX 256 /* jobs queued; past it one is dropped (zero timeouts still hold) */

static pthread_mutex_t inval_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inval_cond = PTHREAD_COND_INITIALIZER;
static struct fuse_session *se_cur;
static bool stop, started;
static pthread_t thread;
static uint64_t queue[QUEUE_MAX];
static size_t queued;

static const enum fs_kind job_dynamic[] = {
    FS_JOB_DIR,		FS_JOB_STATE, FS_JOB_ERROR,   FS_JOB_RESULT,   FS_JOB_SPEC, FS_JOB_STATUS,
    FS_JOB_STATUS_JSON, FS_JOB_WAIT,  FS_JOB_OUTPUTS, FS_JOB_VERTICES, FS_JOB_WHY,  FS_JOB_GRAPH,
};
static const enum fs_kind global_dynamic[] = {
    FS_JOBS_DIR, FS_JOBS_LATEST, FS_VERTICES_DIR, FS_METRICS, FS_CACHE_STATS, FS_RESULTS_DIR,
};

static void inval(struct fuse_session *se, const struct fs_desc *d)
{
	fuse_ino_t ino = fs_node_peek(d);

	if (ino != FUSE_UNKNOWN_INO)
		fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
}

static void inval_job(struct fuse_session *se, uint64_t job)
{
	for (size_t i = 0; i < sizeof(job_dynamic) / sizeof(job_dynamic[0]); i++)
		inval(se, &(struct fs_desc){.kind = job_dynamic[i], .job = job});
	for (size_t i = 0; i < sizeof(global_dynamic) / sizeof(global_dynamic[0]); i++)
		inval(se, &(struct fs_desc){.kind = global_dynamic[i]});
}

static void *inval_main(void *arg)
{
	uint64_t jobs[QUEUE_MAX];
	size_t n;

	pthread_mutex_lock(&inval_lock);
	while (!stop) {
		if (queued == 0) {
			pthread_cond_wait(&inval_cond, &inval_lock);
			continue;
		}
		n = queued;
		memcpy(jobs, queue, n * sizeof(jobs[0]));
		queued = 0;
		pthread_mutex_unlock(&inval_lock);
		for (size_t i = 0; i < n; i++)
			inval_job(arg, jobs[i]);
		pthread_mutex_lock(&inval_lock);
	}
	pthread_mutex_unlock(&inval_lock);
	return NULL;
}

void fs_notify_set_session(struct fuse_session *se)
{
	pthread_mutex_lock(&inval_lock);
	se_cur = se;
	stop = se == NULL;
	queued = 0;
	pthread_cond_signal(&inval_cond);
	pthread_mutex_unlock(&inval_lock);
	if (se && !started) {
		started = pthread_create(&thread, NULL, inval_main, se) == 0;
	} else if (!se && started) {
		pthread_join(thread, NULL);
		started = false;
	}
}

void fs_notify(void *arg, uint64_t job)
{
	bool dup = false;

	fs_stream_notify(arg, job);
	pthread_mutex_lock(&inval_lock);
	for (size_t i = 0; i < queued && !dup; i++)
		dup = queue[i] == job;
	if (se_cur && !dup && queued < QUEUE_MAX) {
		queue[queued++] = job;
		pthread_cond_signal(&inval_cond);
	}
	pthread_mutex_unlock(&inval_lock);
}
