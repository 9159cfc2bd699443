/*
 * cas.h — the content store: immutable blobs named by the SHA-256 of their bytes.
 *
 * Layout under STATE_DIR:
 *   blobs/sha256/<hex>   one file per big blob, mode 0444, never modified
 *   solverfs.db, blobs   one row per small blob (at most CAS_ROW_MAX bytes), once
 *                        the store has its database (cas_attach_db)
 *   tmp/                 scratch space: partial blobs, exec work dirs
 *
 * A small blob is a row written in the database's group commit; a big one a
 * temp file in tmp/ that gets its name at the next cas_flush (one syncfs for
 * all), which the database runs before each COMMIT.  So a crash never leaves a
 * partial blob under a content name, nor a committed record naming a missing
 * blob (docs/durability.md).  Storing the same bytes twice is cheap: the
 * second put finds the blob and writes nothing.  Blob files of an older store
 * are read as they are.  All functions are thread-safe.
 */
#ifndef SFS_CAS_H
#define SFS_CAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

struct cas;
struct sfs_db;

/* Blobs of at most this many bytes are rows once a database is attached:
 * chosen by bench/blob-store.sh (bench/README.md). */
#define CAS_ROW_MAX (64 * 1024)

/* Creates blobs/sha256 and tmp under state_dir if missing, and empties tmp/. */
int cas_open(const char *state_dir, struct cas **ret);
struct cas *cas_close(struct cas *c); /* accepts NULL, returns NULL */

const char *cas_tmp_dir(const struct cas *c);

/* From now on small blobs are rows of db's blobs table and big blobs are named
 * by cas_flush, which db runs before each commit.  Once, before any put; db
 * outlives every put and is closed before the store. */
void cas_attach_db(struct cas *c, struct sfs_db *db);
/* Makes the big blobs put so far durable (one syncfs) and names them. */
int cas_flush(struct cas *c);

int cas_put_buf(struct cas *c, const void *buf, size_t len, char ret_hex[SFS_HEX_SIZE]);
/* Copies the rest of fd (from its current offset) into the store. */
int cas_put_fd(struct cas *c, int fd, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size);
/* Stores a host file by path (regular files only; does not follow a final symlink). */
int cas_put_path(struct cas *c, const char *path, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size);

/*
 * Batches, for storing many blobs at once (tree ingest): big blobs put into a
 * batch are written to tmp/ and get their names only at cas_batch_commit,
 * after one syncfs instead of an fdatasync per blob; until then cas_has does
 * not see them.  Small ones are rows at once (with a database).  A batch commits by itself every
 * few thousand blobs.  Freeing an uncommitted batch discards its blobs.  One thread per batch.
 */
struct cas_batch;
int cas_batch_new(struct cas *c, struct cas_batch **ret);
int cas_batch_put_buf(struct cas_batch *b, const void *buf, size_t len, char ret_hex[SFS_HEX_SIZE]);
int cas_batch_put_fd(struct cas_batch *b, int fd, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size);
int cas_batch_commit(struct cas_batch *b);
struct cas_batch *cas_batch_free(struct cas_batch *b); /* accepts NULL, returns NULL */

bool cas_has(struct cas *c, const char *hex);
/* Whether every one of the n blobs is in the store (else *ret_gone is the index of
 * one that is not): cas_has of each, the rows asked a batch a statement (db.h). */
bool cas_has_all(struct cas *c, const char *const *hex, size_t n, size_t *ret_gone);
/* Size of the blob, or -errno (-ENOENT when absent). */
int64_t cas_size(struct cas *c, const char *hex);
/* Writes "<state_dir>/blobs/sha256/<hex>" into buf (where the blob is when it
 * is a file: a row or a queued blob has no path). */
int cas_blob_path(const struct cas *c, const char *hex, char *buf, size_t len);
/* Opens the blob read-only (O_CLOEXEC); *ret_fd owned by the caller.  A row
 * comes as a sealed memfd of its bytes. */
int cas_open_blob(struct cas *c, const char *hex, int *ret_fd);
/* Reads a whole blob into a malloc'd buffer (NUL-terminated beyond len). */
int cas_read_all(struct cas *c, const char *hex, char **ret_buf, size_t *ret_len);
/* The same for a blob of at most max bytes: a bigger one is -EFBIG, with its size
 * in *ret_len and *ret_buf untouched (a file is not read).  ret_len is required. */
int cas_read_max(struct cas *c, const char *hex, size_t max, char **ret_buf, size_t *ret_len);
/* Copies the blob to a new file at dest with the given mode (copy_file_range). */
int cas_copy_out(struct cas *c, const char *hex, const char *dest, unsigned mode);
/* Deletes a blob, row or file (pruning; missing-blob tests); -ENOENT if absent. */
int cas_remove(struct cas *c, const char *hex);

/* Creates a fresh private directory under tmp/; *ret_path is malloc'd. */
int cas_mkdtemp(struct cas *c, const char *prefix, char **ret_path);
/* rm -rf that does not follow symlinks and first makes dirs writable. */
int cas_rmtree(const char *path);

/* Calls fn with the hex of every blob in the store (any order; a snapshot, so
 * fn may cas_remove what it is given); fn returns 0 or a negative errno that
 * stops the walk and is returned.  The only way to list blobs (prune's orphan
 * collection): callers never read the blob directory themselves. */
typedef int (*cas_walk_fn)(const char *hex, void *arg);
int cas_walk(struct cas *c, cas_walk_fn fn, void *arg);

/* Totals for cache/stats. */
int cas_usage(struct cas *c, uint64_t *ret_blobs, uint64_t *ret_bytes);

#endif
