/*
 * cacheimport.c — cache/import: writing the absolute path of an OCI layout
 * copies its records and blobs into the local cache for good
 * (cache_import_into, docs/export.md §12.3, README.md "The mounted tree").
 *
 * Only the mount owner and root may write it (an imported record serves every
 * user's builds, docs/security.md).  The write is checked on the FUSE thread
 * for what needs no slow work: one absolute path of at most PATH_MAX bytes,
 * which is there (cache_import_absent: two syscalls); a bad one fails the
 * write with EINVAL and the reason is what reads of the file give.  The
 * import itself runs on a thread of its own with the writer's credentials and
 * the mount's import_* limits; one at a time (a write while one runs is
 * EBUSY).  A read gives the outcome of the last import:
 *     running: PATH
 *     ok: PATH: N records imported
 *     error: PATH: why
 * also written to the daemon log.  Unmounting stops a running import between
 * entries (it then reports "context canceled") and joins its thread.
 *
 * Locking: ci->lock guards every field of struct fs_cache_import.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "err.h"
#include "fs.h"
#include "import.h"

struct fs_cache_import {
	pthread_mutex_t lock;
	bool running;  /* a thread imports path */
	bool joinable; /* thread was started and not joined yet */
	bool stop;     /* unmount: the import stops at its next check */
	pthread_t thread;
	char *path;
	uid_t uid;
	gid_t gid;
	struct strbuf outcome; /* what a read gives; "" before the first import */
	struct sfs_fs *fs;
};

int fs_cache_import_init(struct sfs_fs *fs)
{
	struct fs_cache_import *ci = calloc(1, sizeof(*ci));

	if (!ci)
		return -ENOMEM;
	pthread_mutex_init(&ci->lock, NULL);
	ci->outcome = (struct strbuf)STRBUF_INIT;
	ci->fs = fs;
	fs->cache_import = ci;
	return 0;
}

void fs_cache_import_stop(struct sfs_fs *fs)
{
	struct fs_cache_import *ci = fs->cache_import;

	if (!ci)
		return;
	pthread_mutex_lock(&ci->lock);
	ci->stop = true;
	bool join = ci->joinable;
	ci->joinable = false;
	pthread_mutex_unlock(&ci->lock);
	if (join)
		pthread_join(ci->thread, NULL);
}

void fs_cache_import_release(struct sfs_fs *fs)
{
	struct fs_cache_import *ci = fs->cache_import;

	if (!ci)
		return;
	fs_cache_import_stop(fs);
	strbuf_release(&ci->outcome);
	free(ci->path);
	pthread_mutex_destroy(&ci->lock);
	free(ci);
	fs->cache_import = NULL;
}

static bool import_stopped(void *arg)
{
	struct fs_cache_import *ci = arg;

	pthread_mutex_lock(&ci->lock);
	bool stop = ci->stop;
	pthread_mutex_unlock(&ci->lock);
	return stop;
}

static void import_warn(void *arg, const char *msg)
{
	struct fs_cache_import *ci = arg;

	sfs_log(SFS_LOG_WARN, "cache/import %s: %s", ci->path, msg);
}

/* The import of ci->path into the local cache, with the writer's credentials. */
static int run_import(struct fs_cache_import *ci, size_t *ret_n, char **ret_msg)
{
	const struct fs_opts *o = ci->fs->opts;
	struct cache_import_opts io = {.limits = {.json_max = o->import_config_max,
						  .layer_max = o->import_layer_max,
						  .entries_max = o->import_entries_max},
				       .cancelled = import_stopped,
				       .warn = import_warn,
				       .arg = ci};
	struct cache_import *im = NULL;
	struct sfs_creds c;
	int r = sfs_creds_enter(&c, ci->uid, ci->gid);

	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot take the credentials of uid %u",
				(unsigned)ci->uid);
	r = cache_import_open_opts(ci->path, &io, &im, ret_msg);
	if (r == 0)
		r = cache_import_into(im, ci->fs->cache, ret_msg);
	if (r == 0)
		*ret_n = cache_import_nrecords(im);
	cache_import_free(im);
	sfs_creds_leave(&c);
	return r;
}

static void *import_thread(void *arg)
{
	struct fs_cache_import *ci = arg;
	char *msg = NULL;
	size_t n = 0;
	int r = run_import(ci, &n, &msg);

	pthread_mutex_lock(&ci->lock);
	strbuf_reset(&ci->outcome);
	if (r < 0)
		strbuf_addf(&ci->outcome, "error: %s: %s\n", ci->path, msg ? msg : strerror(-r));
	else
		strbuf_addf(&ci->outcome, "ok: %s: %zu records imported\n", ci->path, n);
	sfs_log(r < 0 ? SFS_LOG_WARN : SFS_LOG_INFO, "cache/import %.*s", (int)ci->outcome.len - 1,
		ci->outcome.buf);
	ci->running = false;
	pthread_mutex_unlock(&ci->lock);
	free(msg);
	return NULL;
}

static bool may_write(const struct sfs_fs *fs, uid_t uid)
{
	return uid == 0 || uid == fs->uid;
}

int fs_cache_import_open(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, int flags)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	f->uid = ctx->uid;
	f->writable = (flags & O_ACCMODE) != O_RDONLY;
	if (f->writable && !may_write(fs, ctx->uid))
		return -EACCES;
	f->gid = ctx->gid;
	return fs_cache_import_content(fs, &f->data);
}

int fs_cache_import_truncate(struct sfs_fs *fs, fuse_req_t req)
{
	return may_write(fs, fuse_req_ctx(req)->uid) ? 0 : -EACCES;
}

int fs_cache_import_content(struct sfs_fs *fs, struct strbuf *out)
{
	struct fs_cache_import *ci = fs->cache_import;

	pthread_mutex_lock(&ci->lock);
	strbuf_add(out, ci->outcome.buf, ci->outcome.len);
	pthread_mutex_unlock(&ci->lock);
	return out->oom ? -ENOMEM : 0;
}

/* The path written: one line, absolute, without NUL; NULL with *ret_why. */
static char *parse_path(const char *buf, size_t size, const char **ret_why)
{
	while (size && (buf[size - 1] == '\n' || buf[size - 1] == ' ' || buf[size - 1] == '\t'))
		size--;
	if (!size)
		*ret_why = "no path given (write the absolute path of an OCI layout)";
	else if (memchr(buf, '\0', size) || memchr(buf, '\n', size))
		*ret_why = "one path on one line";
	else if (buf[0] != '/')
		*ret_why = "not an absolute path";
	else if (size >= PATH_MAX)
		*ret_why = "path too long";
	else
		return strndup(buf, size);
	return NULL;
}

/* A refused write: its reason is the file's content; EINVAL. */
static int refuse(struct fs_cache_import *ci, const char *path, size_t len, const char *why)
{
	strbuf_reset(&ci->outcome);
	strbuf_addf(&ci->outcome, "error: %.*s: %s\n", (int)(len > 256 ? 256 : len), path, why);
	sfs_log(SFS_LOG_INFO, "cache/import refused: %s", why);
	return -EINVAL;
}

int fs_cache_import_write(struct sfs_fs *fs, struct fs_file *f, const char *buf, size_t size)
{
	struct fs_cache_import *ci = fs->cache_import;
	const char *why = NULL;
	char *path = parse_path(buf, size, &why);
	int r = 0;

	if (!f->writable)
		return -EBADF;
	if (!path && !why)
		return -ENOMEM;
	if (path && cache_import_absent(path))
		why = "not found (no such directory, or no index.json in it)";
	pthread_mutex_lock(&ci->lock);
	if (ci->running)
		r = -EBUSY;
	else if (why)
		r = refuse(ci, path ? path : buf, path ? strlen(path) : size, why);
	if (r == 0 && ci->joinable) { /* the last import has ended: reap it */
		pthread_join(ci->thread, NULL);
		ci->joinable = false;
	}
	if (r == 0) {
		free(ci->path);
		ci->path = path;
		path = NULL;
		ci->uid = f->uid;
		ci->gid = f->gid;
		ci->running = true;
		strbuf_reset(&ci->outcome);
		strbuf_addf(&ci->outcome, "running: %s\n", ci->path);
		r = -pthread_create(&ci->thread, NULL, import_thread, ci);
		if (r < 0) {
			ci->running = false;
			strbuf_reset(&ci->outcome);
		} else {
			ci->joinable = true;
		}
	}
	pthread_mutex_unlock(&ci->lock);
	free(path);
	return r < 0 ? r : (int)size;
}
