/*
 * blobrows.h — small blobs as rows of the database's blobs table (cache/cas.c's
 * store for blobs of at most CAS_ROW_MAX bytes; docs/durability.md).
 *
 *   blobs(hex TEXT PRIMARY KEY, size INTEGER, data BLOB)   one row a blob
 *
 * A put is a unit of work of its own (sfs_db_begin/end): under group commit a
 * savepoint of the open group, so it commits with (or before) the records saved
 * after it that name the blob.  All functions take the database lock.
 */
#ifndef SFS_BLOBROWS_H
#define SFS_BLOBROWS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "sha256.h"

/* Stores (or replaces: a damaged row is written again) the row of blob hex. */
int blobrows_put(struct sfs_db *db, const char *hex, const void *buf, size_t len);
/* The number of bytes the row holds (its data, not its size column, so a damaged
 * row shows), or -ENOENT. */
int64_t blobrows_size(struct sfs_db *db, const char *hex);
/* 1 when the row is there, 0 when not, or -errno: one probe of the primary key's
 * index, which a look-up of the size does after a seek of the table too. */
int blobrows_has(struct sfs_db *db, const char *hex);
/* 1 when every one of the n hex (1 to SFS_DB_BATCH_ROWS) is a row, 0 when some
 * is not, or -errno: n probes of blobrows_has in one statement. */
int blobrows_has_all(struct sfs_db *db, const char *const *hex, size_t n);
/* The bytes of the row, malloc'd and NUL-terminated beyond len; -ENOENT. */
int blobrows_read(struct sfs_db *db, const char *hex, char **ret_buf, size_t *ret_len);
/* Deletes the row; -ENOENT when there was none. */
int blobrows_delete(struct sfs_db *db, const char *hex);
/* Appends the hex of every row to *names (grown with sfs_grow). */
int blobrows_names(struct sfs_db *db, char (**names)[SFS_HEX_SIZE], size_t *n, size_t *cap);
/* Rows and their bytes (from the size index: no row is read). */
int blobrows_usage(struct sfs_db *db, uint64_t *ret_blobs, uint64_t *ret_bytes);

#endif
