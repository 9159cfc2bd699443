/*
 * cachesnap.c — the content of cache/stats, cache/du and metrics, built on a
 * thread of its own (docs/tree.md §6.3, §6.4).
 *
 * All three walk large things (the whole STATE_DIR, every result row) and wait
 * for the database lock a prune or a save holds, so they are never made on a
 * FUSE thread.  The kinds are stream files (kinds.c): the first read of a
 * handle binds it to a snapshot (fs_cache_snap_want) and parks until the
 * snapshot is built; the builder thread then retries the parked reads through
 * stream.c's queue of that snapshot's id (fs_stream_notify, fs_stream_kick).
 * Every later read of the handle is served from the same bytes, so a reader
 * sees one consistent content however small its reads.
 *
 * A handle binds to a snapshot that has not started yet: the content is of a
 * moment after the first read.  Handles that bind while one is queued share
 * it, so readers arriving together cost one build, and at most one build of a
 * kind runs while the next waits.
 *
 * Snapshot ids start at FS_CACHE_SNAP_ID_BASE, above any job number, so
 * stream.c's queues keyed by job never meet them.  A snapshot lives while a
 * handle holds it (fs_cache_snap_put at release) or while it is being built.
 * getattr reports the size of the last snapshot built of the kind: the files
 * are read with direct_io, so reads go to the end whatever the size says.
 *
 * Locking: sn->lock guards the list, every snapshot, next_id, last_size and
 * the thread's flags; content is built and stream.c called without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"

struct snap {
	uint64_t id;
	enum fs_kind kind;
	unsigned refs; /* handles bound to it */
	bool started, done;
	int err;
	struct strbuf data;
	struct snap *next;
};

struct fs_cache_snaps {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop;
	struct snap *list; /* queued, building and built, oldest first */
	uint64_t next_id;
	uint64_t last_size[3]; /* stats, du, metrics */
};

static int slot_of(enum fs_kind k)
{
	return k == FS_CACHE_DU ? 1 : k == FS_METRICS ? 2 : 0;
}

bool fs_cache_snap_kind(enum fs_kind k)
{
	return k == FS_CACHE_STATS || k == FS_CACHE_DU || k == FS_METRICS;
}

int fs_cache_snaps_init(struct sfs_fs *fs)
{
	struct fs_cache_snaps *sn = calloc(1, sizeof(*sn));

	if (!sn)
		return -ENOMEM;
	pthread_mutex_init(&sn->lock, NULL);
	pthread_cond_init(&sn->cond, NULL);
	sn->next_id = FS_CACHE_SNAP_ID_BASE;
	fs->cache_snaps = sn;
	return 0;
}

static void snap_free(struct snap *s)
{
	strbuf_release(&s->data);
	free(s);
}

static void snap_unlink(struct fs_cache_snaps *sn, struct snap *s)
{
	for (struct snap **pp = &sn->list; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			return;
		}
}

void fs_cache_snaps_stop(struct sfs_fs *fs)
{
	struct fs_cache_snaps *sn = fs->cache_snaps;

	if (!sn)
		return;
	pthread_mutex_lock(&sn->lock);
	sn->stop = true;
	bool join = sn->started;
	sn->started = false;
	pthread_cond_broadcast(&sn->cond);
	pthread_mutex_unlock(&sn->lock);
	if (join)
		pthread_join(sn->thread, NULL);
}

void fs_cache_snaps_release(struct sfs_fs *fs)
{
	struct fs_cache_snaps *sn = fs->cache_snaps;
	struct snap *next;

	if (!sn)
		return;
	fs_cache_snaps_stop(fs);
	for (struct snap *s = sn->list; s; s = next) {
		next = s->next;
		snap_free(s);
	}
	pthread_cond_destroy(&sn->cond);
	pthread_mutex_destroy(&sn->lock);
	free(sn);
	fs->cache_snaps = NULL;
}

/* ---- the builder ---- */

static struct snap *first_queued(struct fs_cache_snaps *sn)
{
	for (struct snap *s = sn->list; s; s = s->next)
		if (!s->started)
			return s;
	return NULL;
}

static void *builder_main(void *arg)
{
	struct sfs_fs *fs = arg;
	struct fs_cache_snaps *sn = fs->cache_snaps;
	struct snap *s;

	pthread_mutex_lock(&sn->lock);
	while (!sn->stop) {
		if (!(s = first_queued(sn))) {
			pthread_cond_wait(&sn->cond, &sn->lock);
			continue;
		}
		s->started = true;
		pthread_mutex_unlock(&sn->lock);

		struct strbuf out = STRBUF_INIT;
		int r = fs_cache_snap_build(fs, s->kind, &out);

		pthread_mutex_lock(&sn->lock);
		s->data = out;
		s->err = r;
		s->done = true;
		if (r == 0)
			sn->last_size[slot_of(s->kind)] = out.len;
		uint64_t id = s->id;
		if (s->refs == 0) { /* every handle went while it was built */
			snap_unlink(sn, s);
			snap_free(s);
		}
		pthread_mutex_unlock(&sn->lock);
		fs_stream_notify(fs, id);
		fs_stream_kick(fs, id);
		pthread_mutex_lock(&sn->lock);
	}
	pthread_mutex_unlock(&sn->lock);
	return NULL;
}

/* ---- handles ---- */

int fs_cache_snap_want(struct sfs_fs *fs, enum fs_kind kind, uint64_t *ret_id)
{
	struct fs_cache_snaps *sn = fs->cache_snaps;
	struct snap *s, **tail;
	int r = 0;

	pthread_mutex_lock(&sn->lock);
	for (tail = &sn->list; *tail; tail = &(*tail)->next)
		if ((*tail)->kind == kind && !(*tail)->started)
			break;
	s = *tail;
	if (sn->stop) {
		r = -ENOTCONN; /* unmounting */
	} else if (s) {
		s->refs++;
	} else if (!(s = calloc(1, sizeof(*s)))) {
		r = -ENOMEM;
	} else {
		*s = (struct snap){.id = sn->next_id++, .kind = kind, .refs = 1};
		*tail = s;
		if (!sn->started)
			sn->started = pthread_create(&sn->thread, NULL, builder_main, fs) == 0;
		if (!sn->started) {
			*tail = NULL;
			free(s);
			r = -EAGAIN;
		}
		pthread_cond_signal(&sn->cond);
	}
	if (r == 0)
		*ret_id = s->id;
	pthread_mutex_unlock(&sn->lock);
	return r;
}

static struct snap *snap_find(struct fs_cache_snaps *sn, uint64_t id)
{
	struct snap *s = sn->list;

	while (s && s->id != id)
		s = s->next;
	return s;
}

void fs_cache_snap_put(struct sfs_fs *fs, uint64_t id)
{
	struct fs_cache_snaps *sn = fs->cache_snaps;
	struct snap *s;

	pthread_mutex_lock(&sn->lock);
	s = snap_find(sn, id);
	if (s && --s->refs == 0 && (!s->started || s->done)) {
		snap_unlink(sn, s); /* one being built is freed by the builder */
		snap_free(s);
	}
	pthread_mutex_unlock(&sn->lock);
}

int fs_cache_snap_read(struct sfs_fs *fs, uint64_t id, off_t off, size_t size, char **ret_buf,
		       size_t *ret_len, bool *ret_ready)
{
	struct fs_cache_snaps *sn = fs->cache_snaps;
	struct snap *s;
	int r = 0;

	*ret_buf = NULL;
	*ret_len = 0;
	*ret_ready = true;
	pthread_mutex_lock(&sn->lock);
	s = snap_find(sn, id);
	if (!s)
		r = -EBADF; /* its handle is gone: only a killed reader's parked read */
	else if (!s->done)
		*ret_ready = false;
	else if (s->err < 0)
		r = s->err;
	else if ((uint64_t)off < s->data.len) {
		size_t n = s->data.len - (size_t)off;
		n = n < size ? n : size;
		if (!(*ret_buf = malloc(n)))
			r = -ENOMEM;
		else {
			memcpy(*ret_buf, s->data.buf + off, n);
			*ret_len = n;
		}
	}
	pthread_mutex_unlock(&sn->lock);
	return r;
}

uint64_t fs_cache_snap_size(struct sfs_fs *fs, enum fs_kind kind)
{
	struct fs_cache_snaps *sn = fs->cache_snaps;

	pthread_mutex_lock(&sn->lock);
	uint64_t n = sn->last_size[slot_of(kind)];
	pthread_mutex_unlock(&sn->lock);
	return n;
}
