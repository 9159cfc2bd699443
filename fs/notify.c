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
 * The callback runs on solver threads with no solver lock held; the kernel
 * never waits on a solver thread to answer a request, so writing an
 * invalidation to the device cannot deadlock.
 *
 * Locking: `session` is atomic: it is set when the loop starts and cleared
 * before the session is destroyed, while solver threads may be calling in.
 */
#include <stdatomic.h>

#include "fs.h"

static _Atomic(struct fuse_session *) session;

void fs_notify_set_session(struct fuse_session *se)
{
	atomic_store(&session, se);
}

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

void fs_notify(void *arg, uint64_t job)
{
	struct fuse_session *se;

	fs_stream_notify(arg, job);
	se = atomic_load(&session);
	if (!se)
		return;
	for (size_t i = 0; i < sizeof(job_dynamic) / sizeof(job_dynamic[0]); i++)
		inval(se, &(struct fs_desc){.kind = job_dynamic[i], .job = job});
	for (size_t i = 0; i < sizeof(global_dynamic) / sizeof(global_dynamic[0]); i++)
		inval(se, &(struct fs_desc){.kind = global_dynamic[i]});
}
