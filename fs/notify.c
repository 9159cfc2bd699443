/*
 * notify.c — the solver's notify callback: something about job N changed.
 *
 * It wakes the blocked readers of the job's streams (stream.c), then tells the
 * kernel to drop what it caches of the job's dynamic nodes — attributes (size,
 * mtime), directory listings — with fuse_lowlevel_notify_inval_inode, so that
 * `ls -l`, `stat` and `tail -f` see the new size at once even where a kernel
 * kept an attribute longer than our zero timeout.  Which nodes those are is
 * the kinds' flags in kinds.c: FS_KIND_INVAL_JOB (the job's own files) and
 * FS_KIND_INVAL_GLOBAL (listings and counters every job changes).  Only nodes
 * the kernel holds (an inode in node.c's table) are invalidated.
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

static void inval(struct fuse_session *se, const struct fs_desc *d)
{
	fuse_ino_t ino = fs_node_peek(d);

	if (ino != FUSE_UNKNOWN_INO)
		fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
}

/* The kinds flagged FS_KIND_INVAL_JOB of job, then the FS_KIND_INVAL_GLOBAL ones. */
static void inval_job(struct fuse_session *se, uint64_t job)
{
	for (int k = 0; k < FS_KIND_MAX; k++)
		if (fs_kind_is(k, FS_KIND_INVAL_JOB))
			inval(se, &(struct fs_desc){.kind = k, .job = job});
	for (int k = 0; k < FS_KIND_MAX; k++)
		if (fs_kind_is(k, FS_KIND_INVAL_GLOBAL))
			inval(se, &(struct fs_desc){.kind = k});
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
