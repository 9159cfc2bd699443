/*
 * cas.c — the content store: immutable blobs named by the SHA-256 of their bytes.
 *
 * Where a blob lives depends on its size once the store has a database
 * (cas_attach_db; docs/durability.md, bench/README.md for the figures):
 *
 *   - at most CAS_ROW_MAX bytes: a row of the blobs table (cache/blobrows.c),
 *     written as a unit of the database's group commit.  It commits with, or
 *     before, the records saved after it that name it, so no crash leaves a
 *     record naming a missing small blob, and a small blob costs no file, no
 *     inode and no sync of its own.
 *   - bigger: a temp file in tmp/ (mkostemp), filled while its bytes are
 *     hashed, made 0444 and queued as "pending": readable under its content
 *     name at once (cas_open_blob and the rest look in the queue), but named
 *     only by cas_flush, which the database runs before every COMMIT
 *     (sfs_db_set_precommit): one syncfs for all queued blobs, their renames
 *     to blobs/sha256/<hex>, one fsync of that directory.  So nothing is
 *     synced per blob or on the solver thread (the flusher thread commits),
 *     and a name never points at bytes that are not durable.  A crash before
 *     the flush leaves only garbage in tmp/, which cas_open empties; the
 *     records naming those blobs had not committed.
 *
 * Without a database (unit tests, tools) every blob is a file written the way
 * the store always did: temp file, fdatasync, rename.  Blob files of a store
 * written before the blobs table existed stay readable: every lookup tries
 * the row, then the queue, then the file.
 *
 * Small inputs (one read buffer) are hashed first and skipped entirely when the
 * blob exists, so re-ingesting an unchanged tree creates no temp files at all.
 *
 * A batch (tree ingest) replaces the per-blob sync of big blobs by one syncfs
 * before a run of renames, at cas_batch_commit; its small blobs are rows at once.
 *
 * Locking: struct cas is immutable after cas_open and cas_attach_db except the
 * pending queue, guarded by plock; sync_lock makes cas_flush (and the removal
 * of a queued blob) one at a time.  Order: database lock, then sync_lock, then
 * plock; plock is never held while calling the database.  A cas_batch belongs
 * to one thread.  Every update of a file is an atomic rename, so concurrent
 * writers of the same content race harmlessly.
 */
#include "cas.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "blobrows.h"
#include "err.h"
#include "fdio.h"

#define CAS_BUF_SIZE (128 * 1024)
/* a blob that fits the first read buffer is hashed before it is stored: rows always do */
_Static_assert(CAS_ROW_MAX < CAS_BUF_SIZE, "a row blob fits one read buffer");

/* The queue holds at most this many big blobs; the put that fills it flushes. */
#define CAS_PENDING_MAX 1024

/* A temp file waiting for a syncfs before it gets its name. */
struct cas_pending {
	char *tmp_name; /* in tmp/ */
	char hex[SFS_HEX_SIZE];
};

struct cas {
	char *root;  /* state_dir */
	char *blobs; /* state_dir/blobs/sha256 */
	char *tmp;   /* state_dir/tmp */
	int blobs_fd;
	int tmp_fd;
	struct sfs_db *db; /* NULL: every blob is a file */

	pthread_mutex_t sync_lock; /* one cas_flush at a time */
	pthread_mutex_t plock;	   /* guards pend */
	struct cas_pending *pend;  /* big blobs in tmp/, oldest first */
	size_t npend, cappend;
};

/* ---- small helpers ---- */

static int mkdir_if_missing(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* ---- open / close ---- */

struct cas *cas_close(struct cas *c)
{
	if (!c)
		return NULL;
	if (c->blobs_fd >= 0)
		close(c->blobs_fd);
	if (c->tmp_fd >= 0)
		close(c->tmp_fd);
	/* not flushed: garbage, like what a crash leaves */
	for (size_t i = 0; i < c->npend; i++) {
		unlink(c->pend[i].tmp_name);
		free(c->pend[i].tmp_name);
	}
	free(c->pend);
	pthread_mutex_destroy(&c->plock);
	pthread_mutex_destroy(&c->sync_lock);
	free(c->root);
	free(c->blobs);
	free(c->tmp);
	free(c);
	return NULL;
}

/* Removes everything inside dirfd (left-overs of a previous run). */
static int empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *p = NULL;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (asprintf(&p, "%s/%s", path, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		int k = cas_rmtree(p);
		free(p);
		if (k < 0 && r == 0)
			r = k;
	}
	closedir(d);
	return r;
}

/* mkdir, and the mode set even on a dir an older version made. */
static int make_dir(const char *path, mode_t mode)
{
	int r = mkdir_if_missing(path, mode);
	struct stat st;

	if (r < 0 || stat(path, &st) < 0 || (st.st_mode & 07777) == mode)
		return r;
	/* a store another user made for us (tests, shared setups) stays as it is */
	if (chmod(path, mode) < 0 && errno != EPERM)
		r = -errno;
	return r;
}

/*
 * Blobs are the daemon's alone.  When the daemon is root, STATE_DIR and tmp/
 * are searchable but not listable by others: an exec's run dir in tmp/ is
 * given to its submitter, whose bwrap must reach it by path (docs/security.md).
 */
static int cas_make_dirs(struct cas *c)
{
	mode_t pass = geteuid() == 0 ? 0711 : 0700;
	char *b = NULL;
	int r;

	if ((r = make_dir(c->root, pass)) < 0)
		return r;
	if (asprintf(&b, "%s/blobs", c->root) < 0)
		return -ENOMEM;
	r = make_dir(b, 0700);
	free(b);
	if (r < 0)
		return r;
	if ((r = make_dir(c->blobs, 0700)) < 0)
		return r;
	return make_dir(c->tmp, pass);
}

int cas_open(const char *state_dir, struct cas **ret)
{
	struct cas *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->blobs_fd = c->tmp_fd = -1;
	pthread_mutex_init(&c->plock, NULL);
	pthread_mutex_init(&c->sync_lock, NULL);
	c->root = strdup(state_dir);
	if (!c->root || asprintf(&c->blobs, "%s/blobs/sha256", state_dir) < 0 ||
	    asprintf(&c->tmp, "%s/tmp", state_dir) < 0) {
		c->blobs = c->tmp = NULL;
		r = -ENOMEM;
		goto fail;
	}
	if ((r = cas_make_dirs(c)) < 0 || (r = empty_dir(c->tmp)) < 0)
		goto fail;
	c->blobs_fd = open(c->blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	c->tmp_fd = open(c->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->blobs_fd < 0 || c->tmp_fd < 0) {
		r = -errno;
		goto fail;
	}
	*ret = c;
	return 0;
fail:
	cas_close(c);
	return r;
}

const char *cas_tmp_dir(const struct cas *c)
{
	return c->tmp;
}

static int precommit(void *arg)
{
	return cas_flush(arg);
}

void cas_attach_db(struct cas *c, struct sfs_db *db)
{
	c->db = db;
	sfs_db_set_precommit(db, precommit, c);
}

/* ---- the pending queue ---- */

/* Index of hex in the queue, or -1.  plock held. */
static ssize_t pending_find_locked(struct cas *c, const char *hex)
{
	for (size_t i = c->npend; i-- > 0;)
		if (!strcmp(c->pend[i].hex, hex))
			return (ssize_t)i;
	return -1;
}

/* Takes over tmp_path (a finished 0444 temp file holding blob hex). */
static int pending_add(struct cas *c, char *tmp_path, const char *hex)
{
	bool full = false;
	int r = 0;

	pthread_mutex_lock(&c->plock);
	if (pending_find_locked(c, hex) >= 0) {
		unlink(tmp_path); /* the same bytes are queued already */
		free(tmp_path);
	} else if (sfs_grow((void **)&c->pend, &c->cappend, c->npend + 1, sizeof(*c->pend)) < 0) {
		unlink(tmp_path);
		free(tmp_path);
		r = -ENOMEM;
	} else {
		c->pend[c->npend].tmp_name = tmp_path;
		memcpy(c->pend[c->npend].hex, hex, SFS_HEX_SIZE);
		full = ++c->npend >= CAS_PENDING_MAX;
	}
	pthread_mutex_unlock(&c->plock);
	return full ? cas_flush(c) : r;
}

/* Opens (fd) or stats (st) a queued blob: -ENOENT when hex is not queued. */
static int pending_get(struct cas *c, const char *hex, int *ret_fd, struct stat *st)
{
	int r = -ENOENT;

	pthread_mutex_lock(&c->plock);
	ssize_t i = pending_find_locked(c, hex);
	if (i >= 0) {
		const char *name = strrchr(c->pend[i].tmp_name, '/') + 1;
		if (ret_fd) {
			int fd = openat(c->tmp_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			r = fd < 0 ? -errno : 0;
			if (fd >= 0)
				*ret_fd = fd;
		} else {
			r = fstatat(c->tmp_fd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
		}
	}
	pthread_mutex_unlock(&c->plock);
	return r;
}

/* Drops hex from the queue (cas_remove); sync_lock held. */
static bool pending_remove(struct cas *c, const char *hex)
{
	pthread_mutex_lock(&c->plock);
	ssize_t i = pending_find_locked(c, hex);
	if (i >= 0) {
		unlink(c->pend[i].tmp_name);
		free(c->pend[i].tmp_name);
		memmove(&c->pend[i], &c->pend[i + 1], (c->npend - (size_t)i - 1) * sizeof(*c->pend));
		c->npend--;
	}
	pthread_mutex_unlock(&c->plock);
	return i >= 0;
}

/*
 * Names the first n queued blobs (their bytes are durable).  One whose rename
 * fails stays queued, so the next flush tries again and the commit waiting for
 * it does not happen meanwhile.  sync_lock held.
 */
static int pending_name(struct cas *c, size_t n)
{
	size_t kept = 0;
	int r = 0;

	pthread_mutex_lock(&c->plock);
	for (size_t i = 0; i < n; i++) {
		const char *name = strrchr(c->pend[i].tmp_name, '/') + 1;
		if (renameat(c->tmp_fd, name, c->blobs_fd, c->pend[i].hex) < 0) {
			if (r == 0)
				r = -errno;
			c->pend[kept++] = c->pend[i];
			continue;
		}
		free(c->pend[i].tmp_name);
	}
	memmove(&c->pend[kept], &c->pend[n], (c->npend - n) * sizeof(*c->pend));
	c->npend -= n - kept;
	pthread_mutex_unlock(&c->plock);
	/* the renames are durable before the records naming them commit */
	if (r == 0 && fsync(c->blobs_fd) < 0)
		r = -errno;
	return r;
}

int cas_flush(struct cas *c)
{
	int r = 0;

	pthread_mutex_lock(&c->sync_lock);
	pthread_mutex_lock(&c->plock);
	size_t n = c->npend; /* blobs queued meanwhile wait for the next flush */
	pthread_mutex_unlock(&c->plock);
	if (n > 0)
		r = syncfs(c->tmp_fd) < 0 ? -errno : pending_name(c, n);
	pthread_mutex_unlock(&c->sync_lock);
	if (r < 0)
		sfs_log(SFS_LOG_ERR, "store: %zu big blobs not made durable: %s", n, strerror(-r));
	return r;
}

/* ---- writing blobs ---- */

struct cas_batch {
	struct cas *c;
	struct cas_pending *v;
	size_t n, cap;
};

/* A batch never holds more than this many unnamed blobs (bounds tmp/ and memory). */
#define CAS_BATCH_MAX 8192

/* A blob being written: the temp file and the running hash (h.ctx NULL when
 * the caller hashed the bytes already). */
struct cas_writer {
	struct sfs_sha256 h;
	char *tmp_path;
	int fd;
	uint64_t size;
};

static int writer_begin(struct cas *c, struct cas_writer *w, bool hash)
{
	int r;

	w->fd = -1;
	w->size = 0;
	w->h.ctx = NULL;
	if (asprintf(&w->tmp_path, "%s/blob-XXXXXX", c->tmp) < 0) {
		w->tmp_path = NULL;
		return -ENOMEM;
	}
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		r = -errno;
		free(w->tmp_path);
		w->tmp_path = NULL;
		return r;
	}
	if (hash && (r = sfs_sha256_init(&w->h)) < 0) {
		close(w->fd);
		unlink(w->tmp_path);
		free(w->tmp_path);
		w->tmp_path = NULL;
		return r;
	}
	return 0;
}

static int writer_add(struct cas_writer *w, const void *buf, size_t len)
{
	if (w->h.ctx)
		sfs_sha256_update(&w->h, buf, len);
	w->size += len;
	return sfs_write_all(w->fd, buf, len);
}

static void writer_abort(struct cas_writer *w)
{
	if (w->h.ctx)
		sfs_sha256_abort(&w->h);
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path)
		unlink(w->tmp_path);
	free(w->tmp_path);
}

/* Queues the finished temp file in the batch (it is already 0444 and closed). */
static int batch_add(struct cas_batch *b, char *tmp_path, const char *hex)
{
	if (sfs_grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v)) < 0)
		return -ENOMEM;
	b->v[b->n].tmp_name = tmp_path;
	memcpy(b->v[b->n].hex, hex, SFS_HEX_SIZE);
	b->n++;
	return b->n >= CAS_BATCH_MAX ? cas_batch_commit(b) : 0;
}

/*
 * Whether blob hex is there for a put of size bytes.  One with another size is
 * damaged (a crash, a disk error, a hand edit): the put writes the blob again
 * and its rename replaces the damaged one atomically, so the name never goes
 * missing.  (Damaged bytes of the right size are caught by tree_verify at
 * load, which removes the blob.)
 */
static bool has_intact(struct cas *c, const char *hex, uint64_t size)
{
	int64_t have = cas_size(c, hex);
	if (have < 0)
		return false;
	if ((uint64_t)have != size) {
		sfs_log(SFS_LOG_WARN, "blob %s has %lld bytes, not %llu: writing it again", hex,
			(long long)have, (unsigned long long)size);
		return false;
	}
	return true;
}

/*
 * Finishes a writer.  With name, the temp file becomes blob hex: in a batch
 * after the batch's syncfs, with a database at the next cas_flush, else now
 * (fdatasync + rename); without (the blob is there already), it is garbage.
 */
static int writer_finish(struct cas *c, struct cas_batch *b, struct cas_writer *w,
			 const char *hex, bool name)
{
	bool now = !b && !c->db, named = false;
	int r = 0;

	if (name) {
		if (fchmod(w->fd, 0444) < 0 || (now && fdatasync(w->fd) < 0))
			r = -errno;
		else if (now &&
			 renameat(c->tmp_fd, strrchr(w->tmp_path, '/') + 1, c->blobs_fd, hex) < 0)
			r = -errno;
		named = r == 0;
	}
	close(w->fd);
	w->fd = -1;
	if (named && b) {
		r = batch_add(b, w->tmp_path, hex); /* the batch owns tmp_path now */
		if (r == -ENOMEM) {
			unlink(w->tmp_path);
			free(w->tmp_path);
		}
	} else if (named && !now) {
		r = pending_add(c, w->tmp_path, hex); /* owns tmp_path now */
	} else {
		if (!named)
			unlink(w->tmp_path);
		free(w->tmp_path);
	}
	w->tmp_path = NULL;
	return r;
}

/* Finishes a hashing writer: its blob is named unless it is there already. */
static int writer_commit(struct cas *c, struct cas_batch *b, struct cas_writer *w,
			 char ret_hex[SFS_HEX_SIZE])
{
	char hex[SFS_HEX_SIZE];

	sfs_sha256_final_hex(&w->h, hex);
	int r = writer_finish(c, b, w, hex, !has_intact(c, hex, w->size));
	if (r == 0)
		memcpy(ret_hex, hex, SFS_HEX_SIZE);
	return r;
}

static int put_buf(struct cas *c, struct cas_batch *b, const void *buf, size_t len,
		   char ret_hex[SFS_HEX_SIZE])
{
	struct cas_writer w;
	char hex[SFS_HEX_SIZE];
	int r;

	/* Hashing first lets existing content skip the temp file entirely; a new
	 * blob is then written without hashing it again */
	sfs_sha256_hex(buf, len, hex);
	if (has_intact(c, hex, len)) {
		/* stored already */
	} else if (c->db && len <= CAS_ROW_MAX) {
		if ((r = blobrows_put(c->db, hex, buf, len)) < 0)
			return r;
	} else {
		if ((r = writer_begin(c, &w, false)) < 0)
			return r;
		if ((r = writer_add(&w, buf, len)) < 0) {
			writer_abort(&w);
			return r;
		}
		if ((r = writer_finish(c, b, &w, hex, true)) < 0)
			return r;
	}
	memcpy(ret_hex, hex, SFS_HEX_SIZE);
	return 0;
}

/* Streams fd into a writer whose first `len` bytes are already in buf. */
static int put_stream(struct cas *c, struct cas_batch *b, int fd, char *buf, size_t len,
		      char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size)
{
	struct cas_writer w;
	int r;

	if ((r = writer_begin(c, &w, true)) < 0)
		return r;
	for (;;) {
		if ((r = writer_add(&w, buf, len)) < 0)
			goto fail;
		ssize_t n = sfs_read_full(fd, buf, CAS_BUF_SIZE);
		if (n < 0) {
			r = (int)n;
			goto fail;
		}
		if (n == 0)
			break;
		len = (size_t)n;
	}
	uint64_t size = w.size;
	if ((r = writer_commit(c, b, &w, ret_hex)) < 0)
		return r;
	if (ret_size)
		*ret_size = size;
	return 0;
fail:
	writer_abort(&w);
	return r;
}

static int put_fd(struct cas *c, struct cas_batch *b, int fd, char ret_hex[SFS_HEX_SIZE],
		  uint64_t *ret_size)
{
	char *buf = malloc(CAS_BUF_SIZE);
	ssize_t n;
	int r;

	if (!buf)
		return -ENOMEM;
	n = sfs_read_full(fd, buf, CAS_BUF_SIZE);
	if (n < 0) {
		r = (int)n;
	} else if (n < CAS_BUF_SIZE) {
		/* The whole content fits: hash first, write only when new. */
		r = put_buf(c, b, buf, (size_t)n, ret_hex);
		if (r == 0 && ret_size)
			*ret_size = (uint64_t)n;
	} else {
		r = put_stream(c, b, fd, buf, (size_t)n, ret_hex, ret_size);
	}
	free(buf);
	return r;
}

int cas_put_buf(struct cas *c, const void *buf, size_t len, char ret_hex[SFS_HEX_SIZE])
{
	return put_buf(c, NULL, buf, len, ret_hex);
}

int cas_put_fd(struct cas *c, int fd, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size)
{
	return put_fd(c, NULL, fd, ret_hex, ret_size);
}

/* ---- batches ---- */

int cas_batch_new(struct cas *c, struct cas_batch **ret)
{
	struct cas_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->c = c;
	*ret = b;
	return 0;
}

int cas_batch_put_buf(struct cas_batch *b, const void *buf, size_t len, char ret_hex[SFS_HEX_SIZE])
{
	return put_buf(b->c, b, buf, len, ret_hex);
}

int cas_batch_put_fd(struct cas_batch *b, int fd, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size)
{
	return put_fd(b->c, b, fd, ret_hex, ret_size);
}

static void batch_drop(struct cas_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		unlink(b->v[i].tmp_name);
		free(b->v[i].tmp_name);
	}
	b->n = 0;
}

/*
 * One syncfs makes every queued temp file durable, then the renames name them.
 * The same content queued twice is renamed twice: identical bytes, harmless.
 */
int cas_batch_commit(struct cas_batch *b)
{
	struct cas *c = b->c;
	int r = 0;

	if (b->n == 0)
		return 0;
	if (syncfs(c->tmp_fd) < 0) {
		r = -errno;
		batch_drop(b);
		return r;
	}
	for (size_t i = 0; i < b->n; i++) {
		const char *name = strrchr(b->v[i].tmp_name, '/') + 1;
		if (renameat(c->tmp_fd, name, c->blobs_fd, b->v[i].hex) < 0) {
			if (r == 0)
				r = -errno;
			unlink(b->v[i].tmp_name);
		}
		free(b->v[i].tmp_name);
	}
	b->n = 0;
	/* the names are durable before a tree naming them can be committed */
	if (r == 0 && fsync(c->blobs_fd) < 0)
		r = -errno;
	return r;
}

struct cas_batch *cas_batch_free(struct cas_batch *b)
{
	if (!b)
		return NULL;
	batch_drop(b);
	free(b->v);
	free(b);
	return NULL;
}

int cas_put_path(struct cas *c, const char *path, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size)
{
	struct stat st;
	int fd, r;

	/* O_NONBLOCK so a fifo in place of the file cannot hang us. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else
		r = cas_put_fd(c, fd, ret_hex, ret_size);
	close(fd);
	return r;
}

/* ---- reading blobs ---- */

/* An fd of the bytes of a row: a sealed memfd, so that callers of
 * cas_open_blob read rows and files alike. */
static int row_open(struct cas *c, const char *hex, int *ret_fd)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, r = blobrows_read(c->db, hex, &buf, &len);

	if (r < 0)
		return r;
	fd = memfd_create("sfs-blob", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		r = -errno;
		free(buf);
		return r;
	}
	r = sfs_write_all(fd, buf, len);
	free(buf);
	if (r == 0 && (fcntl(fd, F_ADD_SEALS,
			     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
		       lseek(fd, 0, SEEK_SET) < 0))
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* As cas_size >= 0, without reading a row's size: a result's existence is
 * asked for every record a warm solve finds (cache/result_storage.c). */
bool cas_has(struct cas *c, const char *hex)
{
	struct stat st;
	int r;

	if (!sfs_is_hex(hex))
		return false;
	if (c->db && (r = blobrows_has(c->db, hex)) != 0)
		return r > 0;
	if ((r = pending_get(c, hex, NULL, &st)) == -ENOENT)
		r = fstatat(c->blobs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	return r == 0;
}

bool cas_has_all(struct cas *c, const char *const *hex, size_t n, size_t *ret_gone)
{
	for (size_t i = 0; i < n;) {
		size_t rows = sfs_db_batch_rows(n - i), k = n - i < rows ? n - i : rows;

		/* all rows: the usual case, one statement; else (files, queued, gone,
		 * an error) each asked as cas_has does */
		if (!c->db || blobrows_has_all(c->db, hex + i, k) != 1)
			for (size_t j = i; j < i + k; j++)
				if (!cas_has(c, hex[j])) {
					*ret_gone = j;
					return false;
				}
		i += k;
	}
	return true;
}

/* Rows first (most blobs of a store with a database), then the queue, then files. */
int64_t cas_size(struct cas *c, const char *hex)
{
	struct stat st;
	int r;

	if (!sfs_is_hex(hex))
		return -EINVAL;
	if (c->db) {
		int64_t s = blobrows_size(c->db, hex);
		if (s != -ENOENT)
			return s;
	}
	if ((r = pending_get(c, hex, NULL, &st)) == -ENOENT)
		r = fstatat(c->blobs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	return r < 0 ? r : (int64_t)st.st_size;
}

int cas_blob_path(const struct cas *c, const char *hex, char *buf, size_t len)
{
	int n;

	if (!sfs_is_hex(hex))
		return -EINVAL;
	n = snprintf(buf, len, "%s/%s", c->blobs, hex);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int cas_open_blob(struct cas *c, const char *hex, int *ret_fd)
{
	int fd, r;

	if (!sfs_is_hex(hex))
		return -EINVAL;
	if (c->db && (r = row_open(c, hex, ret_fd)) != -ENOENT)
		return r;
	if ((r = pending_get(c, hex, ret_fd, NULL)) != -ENOENT)
		return r;
	fd = openat(c->blobs_fd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int cas_read_all(struct cas *c, const char *hex, char **ret_buf, size_t *ret_len)
{
	size_t len = 0;
	int r = cas_read_max(c, hex, SIZE_MAX, ret_buf, &len);

	if (r == 0 && ret_len)
		*ret_len = len;
	return r;
}

int cas_read_max(struct cas *c, const char *hex, size_t max, char **ret_buf, size_t *ret_len)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, r;

	if (!sfs_is_hex(hex))
		return -EINVAL;
	if (c->db && (r = blobrows_read(c->db, hex, &buf, ret_len)) != -ENOENT) {
		if (r == 0 && *ret_len > max) { /* a row is small: read, then refused */
			free(buf);
			return -EFBIG;
		}
		if (r == 0)
			*ret_buf = buf;
		return r;
	}
	if ((r = cas_open_blob(c, hex, &fd)) < 0)
		return r;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		*ret_len = (size_t)st.st_size;
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = sfs_read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n < 0 || n != (ssize_t)st.st_size) {
		free(buf);
		return n < 0 ? (int)n : -EIO;
	}
	buf[n] = '\0';
	*ret_buf = buf;
	*ret_len = (size_t)n;
	return 0;
}

static int copy_fallback(int in, int out)
{
	char *buf = malloc(CAS_BUF_SIZE);
	ssize_t n;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while ((n = sfs_read_full(in, buf, CAS_BUF_SIZE)) > 0)
		if ((r = sfs_write_all(out, buf, (size_t)n)) < 0)
			break;
	if (n < 0)
		r = (int)n;
	free(buf);
	return r;
}

/* copy_file_range for the whole of in (shares extents on reflink filesystems). */
static int copy_fd(int in, int out)
{
	bool copied = false;

	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n > 0) {
			copied = true;
			continue;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (!copied && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
				errno == EOPNOTSUPP || errno == EPERM))
			return copy_fallback(in, out);
		return -errno;
	}
}

int cas_copy_out(struct cas *c, const char *hex, const char *dest, unsigned mode)
{
	int in, out, r;

	if ((r = cas_open_blob(c, hex, &in)) < 0)
		return r;
	out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	r = copy_fd(in, out);
	if (r == 0 && fchmod(out, mode & 07777) < 0)
		r = -errno;
	if (close(out) < 0 && r == 0)
		r = -errno;
	close(in);
	if (r < 0)
		unlink(dest);
	return r;
}

/* Removes every copy of the blob: its row, its queued temp file, its file. */
int cas_remove(struct cas *c, const char *hex)
{
	bool found = false;
	int r;

	if (!sfs_is_hex(hex))
		return -EINVAL;
	if (c->db) {
		if ((r = blobrows_delete(c->db, hex)) < 0 && r != -ENOENT)
			return r;
		found = r == 0;
	}
	pthread_mutex_lock(&c->sync_lock);
	found = pending_remove(c, hex) || found;
	pthread_mutex_unlock(&c->sync_lock);
	if (unlinkat(c->blobs_fd, hex, 0) < 0) {
		if (errno != ENOENT)
			return -errno;
	} else {
		found = true;
	}
	return found ? 0 : -ENOENT;
}

/* ---- scratch directories ---- */

int cas_mkdtemp(struct cas *c, const char *prefix, char **ret_path)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%sXXXXXX", c->tmp, prefix ? prefix : "d") < 0)
		return -ENOMEM;
	if (!mkdtemp(p)) {
		int r = -errno;
		free(p);
		return r;
	}
	*ret_path = p;
	return 0;
}

/*
 * Opens the directory `name` in dirfd for removal, making it searchable and
 * writable.  O_NOFOLLOW guarantees we never leave the tree through a link.
 */
static int open_dir_for_rm(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == EACCES) {
		/* A 0000 dir (lstat'd as a dir by the caller) must be opened to be emptied. */
		if (fchmodat(dirfd, name, 0700, 0) < 0)
			return -errno;
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0700) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Emptying a tree walks down it with a stack of open dirs.  At most
 * RM_OPEN_MAX of them hold a stream: deeper than that, the oldest are closed
 * and reopened through their child's ".." on the way back, so an exec's tree
 * of 100,000 levels is removed without 100,000 fds or frames.  A reopened dir
 * is read from its start again, which is right since what was read is gone;
 * so the walk stops at the first error rather than meet it again.
 */
#define RM_OPEN_MAX 32

struct rm_level {
	DIR *d;	    /* NULL while closed to save fds */
	char *name; /* in its parent; NULL for the top */
};

struct rm_walk {
	struct rm_level *v;
	size_t n, cap;
};

static int rm_push(struct rm_walk *w, int fd, const char *name)
{
	struct rm_level *l;
	DIR *d;

	if (sfs_grow((void **)&w->v, &w->cap, w->n + 1, sizeof(*w->v)) < 0) {
		close(fd);
		return -ENOMEM;
	}
	if (!(d = fdopendir(fd))) {
		int r = -errno;
		close(fd);
		return r;
	}
	l = &w->v[w->n];
	l->d = d;
	l->name = NULL;
	if (name && !(l->name = strdup(name))) {
		closedir(d);
		return -ENOMEM;
	}
	w->n++;
	if (w->n > RM_OPEN_MAX && w->v[w->n - 1 - RM_OPEN_MAX].d) {
		closedir(w->v[w->n - 1 - RM_OPEN_MAX].d);
		w->v[w->n - 1 - RM_OPEN_MAX].d = NULL;
	}
	return 0;
}

/* The top dir is empty: close it and remove it from its parent (reopened if
 * it was closed). */
static int rm_pop(struct rm_walk *w)
{
	struct rm_level *l = &w->v[w->n - 1], *parent = &w->v[w->n - 2];
	int r = 0;

	if (!parent->d) {
		int fd = openat(dirfd(l->d), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || !(parent->d = fdopendir(fd)))
			r = -errno;
		if (fd >= 0 && !parent->d)
			close(fd);
	}
	closedir(l->d);
	if (r == 0 && unlinkat(dirfd(parent->d), l->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	free(l->name);
	w->n--;
	return r;
}

/* One entry of the top dir: a file is unlinked, a dir pushed. */
static int rm_entry(struct rm_walk *w, const char *name)
{
	DIR *d = w->v[w->n - 1].d;
	struct stat st;
	int fd;

	if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd(d), name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if ((fd = open_dir_for_rm(dirfd(d), name)) < 0)
		return fd;
	return rm_push(w, fd, name);
}

/* Empties the directory fd (which it takes over and closes). */
static int rm_contents(int fd)
{
	struct rm_walk w = {0};
	int r = rm_push(&w, fd, NULL);

	while (r == 0 && w.n > 0) {
		struct dirent *de;

		errno = 0;
		if ((de = readdir(w.v[w.n - 1].d))) {
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				r = rm_entry(&w, de->d_name);
		} else if (errno) {
			r = -errno;
		} else if (w.n > 1) {
			r = rm_pop(&w);
		} else {
			break;
		}
	}
	for (size_t i = 0; i < w.n; i++) {
		if (w.v[i].d)
			closedir(w.v[i].d);
		free(w.v[i].name);
	}
	free(w.v);
	return r;
}

int cas_rmtree(const char *path)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	fd = open_dir_for_rm(AT_FDCWD, path);
	if (fd < 0)
		return fd;
	if ((r = rm_contents(fd)) < 0)
		return r;
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* ---- statistics ---- */

/* The blob directory, open for readdir; NULL with errno set. */
static DIR *open_blobs_dir(struct cas *c)
{
	int fd = openat(c->blobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	if (!(d = fdopendir(fd))) {
		close(fd);
		errno = ENOMEM;
	}
	return d;
}

int cas_usage(struct cas *c, uint64_t *ret_blobs, uint64_t *ret_bytes)
{
	uint64_t blobs = 0, bytes = 0;
	struct dirent *de;
	DIR *d;
	int r;

	if (c->db && (r = blobrows_usage(c->db, &blobs, &bytes)) < 0)
		return r;
	if (!(d = open_blobs_dir(c)))
		return -errno;
	while ((de = readdir(d))) {
		struct stat st;
		if (!sfs_is_hex(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* pruned meanwhile */
		blobs++;
		bytes += (uint64_t)st.st_size;
	}
	closedir(d);
	if (ret_blobs)
		*ret_blobs = blobs;
	if (ret_bytes)
		*ret_bytes = bytes;
	return 0;
}

int cas_walk(struct cas *c, cas_walk_fn fn, void *arg)
{
	char (*names)[SFS_HEX_SIZE] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int r = 0;

	/* Names first, callbacks after: a callback may remove what it is given.
	 * Rows, then files; queued blobs are not in the store yet. */
	if (c->db && (r = blobrows_names(c->db, &names, &n, &cap)) < 0) {
		free(names);
		return r;
	}
	if (!(d = open_blobs_dir(c))) {
		free(names);
		return -errno;
	}
	while (r == 0 && (de = readdir(d))) {
		if (!sfs_is_hex(de->d_name) || strlen(de->d_name) != SFS_HEX_LEN)
			continue;
		if ((r = sfs_grow((void **)&names, &cap, n + 1, sizeof(*names))) < 0)
			break;
		memcpy(names[n], de->d_name, SFS_HEX_SIZE - 1); /* sfs_is_hex: exact length */
		names[n++][SFS_HEX_SIZE - 1] = '\0';
	}
	closedir(d);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(names[i], arg);
	free(names);
	return r;
}
