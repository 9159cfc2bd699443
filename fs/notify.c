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
 * The same thread retries the job's parked readers (fs_stream_kick) before the
 * invalidations, and rests KICK_GAP_US after each round, so a job whose status
 * changes thousands of times a second costs its blocked readers at most 10
 * rounds a second, none of them on a solver thread (docs/progress.md).
 *
 * The queue and the thread are struct fs_inval, fs->inval (fs_notify_init).
 *
 * The GC's thread (fs_notify_collected) writes entry invalidations for the
 * results it deleted itself: it is not a FUSE worker.
 *
 * Locking: its lock guards the queue, se, stop and writers; the threads write
 * to the device without it.  started and thread are main's (fs_notify_set_session).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define QUEUE_MAX 256	   /* jobs queued; past it one is served at once by the notifier */
#define KICK_GAP_US 100000 /* after a round of retries: notifies meanwhile are one round */

struct fs_inval {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fuse_session *se; /* NULL: notify queues nothing */
	bool stop, started;
	pthread_t thread;
	uint64_t queue[QUEUE_MAX];
	size_t queued;
	unsigned writers; /* fs_notify_collected calls writing to se without the lock */
};

static void inval(struct sfs_fs *fs, struct fuse_session *se, const struct fs_desc *d)
{
	fuse_ino_t ino = fs_node_peek(fs, d);

	if (ino != FUSE_UNKNOWN_INO)
		fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
}

/* The kinds flagged FS_KIND_INVAL_JOB of job, then the FS_KIND_INVAL_GLOBAL ones. */
static void inval_job(struct sfs_fs *fs, struct fuse_session *se, uint64_t job)
{
	for (int k = 0; k < FS_KIND_MAX; k++)
		if (fs_kind_is(k, FS_KIND_INVAL_JOB))
			inval(fs, se, &(struct fs_desc){.kind = k, .job = job});
	for (int k = 0; k < FS_KIND_MAX; k++)
		if (fs_kind_is(k, FS_KIND_INVAL_GLOBAL))
			inval(fs, se, &(struct fs_desc){.kind = k});
}

static void *inval_main(void *arg)
{
	struct sfs_fs *fs = arg;
	struct fs_inval *q = fs->inval;
	struct fuse_session *se;
	uint64_t jobs[QUEUE_MAX];
	size_t n;

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		if (q->queued == 0) {
			pthread_cond_wait(&q->cond, &q->lock);
			continue;
		}
		n = q->queued;
		memcpy(jobs, q->queue, n * sizeof(jobs[0]));
		q->queued = 0;
		se = q->se; /* not NULL while !stop; destroyed only after the join */
		pthread_mutex_unlock(&q->lock);
		for (size_t i = 0; i < n; i++) {
			fs_stream_kick(fs, jobs[i]);
			inval_job(fs, se, jobs[i]);
		}
		usleep(KICK_GAP_US);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int fs_notify_init(struct sfs_fs *fs)
{
	struct fs_inval *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	fs->inval = q;
	return 0;
}

void fs_notify_release(struct sfs_fs *fs)
{
	struct fs_inval *q = fs->inval;

	if (!q)
		return;
	fs_notify_set_session(fs, NULL); /* joins the thread */
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
	fs->inval = NULL;
}

void fs_notify_set_session(struct sfs_fs *fs, struct fuse_session *se)
{
	struct fs_inval *q = fs->inval;

	pthread_mutex_lock(&q->lock);
	q->se = se;
	q->stop = se == NULL;
	q->queued = 0;
	pthread_cond_broadcast(&q->cond);
	while (!se && q->writers)
		pthread_cond_wait(&q->cond, &q->lock);
	pthread_mutex_unlock(&q->lock);
	if (se && !q->started) {
		q->started = pthread_create(&q->thread, NULL, inval_main, fs) == 0;
	} else if (!se && q->started) {
		pthread_join(q->thread, NULL);
		q->started = false;
	}
}

void fs_notify_collected(void *arg, const char *result_id)
{
	struct sfs_fs *fs = arg;
	struct fs_inval *q = fs->inval;
	const char *hex = strncmp(result_id, "sha256:", 7) == 0 ? result_id + 7 : result_id;

	fs_results_forget(fs, hex);
	pthread_mutex_lock(&q->lock);
	struct fuse_session *se = q->stop ? NULL : q->se;
	q->writers += se != NULL; /* set_session(NULL) waits for us: se stays valid */
	pthread_mutex_unlock(&q->lock);
	if (!se)
		return;
	fuse_ino_t dir = fs_node_peek(fs, &(struct fs_desc){.kind = FS_RESULTS_DIR});
	if (dir != FUSE_UNKNOWN_INO)
		fuse_lowlevel_notify_inval_entry(se, dir, hex, strlen(hex));
	pthread_mutex_lock(&q->lock);
	if (--q->writers == 0)
		pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void fs_notify(void *arg, uint64_t job)
{
	struct sfs_fs *fs = arg;
	struct fs_inval *q = fs->inval;
	bool dup = false, queued = false;

	fs_stream_notify(arg, job);
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < q->queued && !dup; i++)
		dup = q->queue[i] == job;
	if (q->se && !dup && q->queued < QUEUE_MAX) {
		q->queue[q->queued++] = job;
		pthread_cond_signal(&q->cond);
		dup = true;
	}
	queued = dup && q->se && q->started;
	pthread_mutex_unlock(&q->lock);
	if (!queued) /* no thread to retry them (not mounted, or the queue is full) */
		fs_stream_kick(fs, job);
}
