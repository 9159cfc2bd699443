/*
 * layer.c — the gzip tar layer of a result tree (see layer.h).
 *
 * libarchive writes the tar, uncompressed, into our own callback, which hashes
 * it (the diff id) and compresses it with zlib's gzip wrapper into a scratch
 * file; the scratch file then goes into the content store.  zlib's default gzip
 * header has mtime 0, no name and a fixed OS byte, and libarchive's pax
 * restricted format adds extended headers only for what ustar cannot say (long
 * names), so the bytes depend on the tree alone.
 *
 * Locking: the layers table is read and written under sfs_db_lock; making a
 * layer holds no lock (two exports racing on one result store the same blob).
 */
#include "layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "array.h"
#include "err.h"
#include "fdio.h"
#include "prune.h"
#include "tree.h"

/* Where the tar goes: hashed, then gzip'd (or not) into fd. */
struct layer_sink {
	int fd;
	bool gzip;
	bool z_live;
	z_stream z;
	struct sfs_sha256 diff;
	int err; /* first failure, -errno */
};

/* Feeds len bytes (or the end, with Z_FINISH) through deflate into the fd. */
static int sink_deflate(struct layer_sink *s, const void *buf, size_t len, int flush)
{
	unsigned char out[65536];
	int zr;

	s->z.next_in = (unsigned char *)buf;
	s->z.avail_in = (uInt)len;
	do {
		s->z.next_out = out;
		s->z.avail_out = sizeof(out);
		zr = deflate(&s->z, flush);
		if (zr == Z_STREAM_ERROR)
			return -EIO;
		int r = sfs_write_all(s->fd, out, sizeof(out) - s->z.avail_out);
		if (r < 0)
			return r;
	} while (s->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

static la_ssize_t sink_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct layer_sink *s = arg;
	int r;

	(void)a;
	if (s->err)
		return -1;
	sfs_sha256_update(&s->diff, buf, len);
	/* deflate takes uInt lengths; libarchive blocks are 10 KiB anyway */
	r = s->gzip ? sink_deflate(s, buf, len, Z_NO_FLUSH) : sfs_write_all(s->fd, buf, len);
	if (r < 0) {
		s->err = r;
		return -1;
	}
	return (la_ssize_t)len;
}

static int sink_init(struct layer_sink *s, int fd, bool gzip)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->gzip = gzip;
	if (gzip) {
		/* 15 + 16: gzip wrapper; no deflateSetHeader, so mtime 0, no name */
		if (deflateInit2(&s->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		s->z_live = true;
	}
	if (sfs_sha256_init(&s->diff) < 0) {
		if (s->z_live)
			deflateEnd(&s->z);
		return -ENOMEM;
	}
	return 0;
}

/* Finishes the gzip stream and the hash; releases everything either way. */
static int sink_finish(struct layer_sink *s, int r, char ret_diff_id[SFS_DIGEST_SIZE])
{
	char hex[SFS_HEX_SIZE];

	if (r == 0 && s->err)
		r = s->err;
	if (r == 0 && s->gzip)
		r = sink_deflate(s, NULL, 0, Z_FINISH);
	if (s->z_live)
		deflateEnd(&s->z);
	s->z_live = false;
	if (r < 0) {
		sfs_sha256_abort(&s->diff);
		return r;
	}
	sfs_sha256_final_hex(&s->diff, hex);
	if (ret_diff_id)
		snprintf(ret_diff_id, SFS_DIGEST_SIZE, "sha256:%s", hex);
	return 0;
}

/* Copies a blob's bytes into the current archive entry. */
static int tar_copy_blob(struct cas *c, struct archive *a, const char *hex)
{
	char buf[65536];
	int fd, r = cas_open_blob(c, hex, &fd);

	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if (archive_write_data(a, buf, (size_t)n) != n) {
			r = -EIO;
			break;
		}
	}
	close(fd);
	return r;
}

/* Header fields every entry gets: nothing but what the tree says. */
static int tar_fill_entry(struct cas *c, const struct tree_entry *te, struct archive_entry *ae)
{
	char *target = NULL;
	size_t len;
	int r = 0;

	archive_entry_set_pathname(ae, strcmp(te->path, ".") == 0 ? "./" : te->path);
	archive_entry_set_perm(ae, te->mode & 07777);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_mtime(ae, 0, 0);
	switch (te->type) {
	case 'd':
		archive_entry_set_filetype(ae, AE_IFDIR);
		break;
	case 'f':
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_size(ae, (la_int64_t)te->size);
		break;
	case 'l':
		archive_entry_set_filetype(ae, AE_IFLNK);
		r = cas_read_all(c, te->hex, &target, &len);
		if (r == 0)
			archive_entry_set_symlink(ae, target);
		free(target);
		break;
	default:
		r = -EINVAL;
	}
	return r;
}

static int tar_write_entries(struct cas *c, const struct tree *t, struct archive *a)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < t->n; i++) {
		const struct tree_entry *te = &t->entries[i];
		struct archive_entry *ae = archive_entry_new();
		if (!ae)
			return -ENOMEM;
		r = tar_fill_entry(c, te, ae);
		if (r == 0 && archive_write_header(a, ae) != ARCHIVE_OK)
			r = -EIO;
		if (r == 0 && te->type == 'f' && te->size)
			r = tar_copy_blob(c, a, te->hex);
		archive_entry_free(ae);
	}
	return r;
}

static int tar_write(struct cas *c, const struct tree *t, struct layer_sink *s)
{
	struct archive *a = archive_write_new();
	int r = 0;

	if (!a)
		return -ENOMEM;
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open2(a, s, NULL, sink_write, NULL, NULL) != ARCHIVE_OK)
		r = -EIO;
	if (r == 0)
		r = tar_write_entries(c, t, a);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = -EIO;
	if (r < 0 && s->err)
		r = s->err;
	archive_write_free(a);
	return r;
}

static int layer_write(struct cas *c, const struct tree *t, int fd, bool gzip,
		       char ret_diff_id[SFS_DIGEST_SIZE])
{
	struct layer_sink s;
	int r = sink_init(&s, fd, gzip);

	if (r < 0)
		return r;
	return sink_finish(&s, tar_write(c, t, &s), ret_diff_id);
}

int cache_layer_write_tar(struct cas *c, const struct tree *t, int fd,
			  char ret_diff_id[SFS_DIGEST_SIZE])
{
	return layer_write(c, t, fd, false, ret_diff_id);
}

/* ---- the layers table ---- */

static int layer_row_get(struct sfs_db *db, const char *result_id, struct cache_layer *ret)
{
	sqlite3_stmt *st;
	int rc, r = -ENOENT;

	sfs_db_lock(db);
	st = sfs_db_stmt(db, STMT_LAYER_GET);
	if (!st) {
		sfs_db_unlock(db);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, result_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sfs_copy_str(ret->blob, sizeof(ret->blob),
			     (const char *)sqlite3_column_text(st, 0));
		ret->size = (uint64_t)sqlite3_column_int64(st, 1);
		sfs_copy_str(ret->diff_id, sizeof(ret->diff_id),
			     (const char *)sqlite3_column_text(st, 2));
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = sfs_db_error(db, STMT_LAYER_GET, rc);
	}
	sqlite3_reset(st);
	sfs_db_unlock(db);
	return r;
}

static int layer_row_put(struct sfs_db *db, const char *result_id, const struct cache_layer *l)
{
	sqlite3_stmt *st;
	int r;

	sfs_db_lock(db);
	st = sfs_db_stmt(db, STMT_LAYER_PUT);
	if (!st) {
		sfs_db_unlock(db);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, result_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, l->blob, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)l->size);
	sqlite3_bind_text(st, 4, l->diff_id, -1, SQLITE_STATIC);
	r = sfs_db_step_done(db, STMT_LAYER_PUT, st);
	/* the layer lives and dies with its result (cache/prune.h) */
	if (r == 0)
		r = cache_blob_ref_add(db, result_id, l->blob, l->size);
	sfs_db_unlock(db);
	return r;
}

/* An unnamed scratch file under the store's tmp/ (same filesystem as blobs). */
static int scratch_open(struct cas *c, int *ret_fd)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/layer-XXXXXX", cas_tmp_dir(c)) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	*ret_fd = fd;
	return 0;
}

static int layer_create(struct sfs_cache *c, const char *result_id, struct cache_layer *ret)
{
	struct tree *t = NULL;
	char hex[SFS_HEX_SIZE];
	int fd = -1, r = tree_load(c->cas, result_id, &t);

	if (r == 0)
		r = scratch_open(c->cas, &fd);
	if (r == 0)
		r = layer_write(c->cas, t, fd, true, ret->diff_id);
	if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r == 0)
		r = cas_put_fd(c->cas, fd, hex, &ret->size);
	if (r == 0) {
		snprintf(ret->blob, sizeof(ret->blob), "sha256:%s", hex);
		r = layer_row_put(c->db, result_id, ret);
	}
	if (fd >= 0)
		close(fd);
	tree_free(t);
	return r;
}

int cache_layer_get(struct sfs_cache *c, const char *result_id, bool create,
		    struct cache_layer *ret)
{
	struct cache_layer l;
	int r = layer_row_get(c->db, result_id, &l);

	/* A row whose blob was pruned is no layer: make it again (or report none). */
	if (r == 0 && sfs_is_digest(l.blob) && cas_has(c->cas, l.blob + 7)) {
		*ret = l;
		return 0;
	}
	if (r < 0 && r != -ENOENT)
		return r;
	if (!create)
		return -ENOENT;
	return layer_create(c, result_id, ret);
}
