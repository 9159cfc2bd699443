/*
 * cas.h — the content store: immutable blobs named by the SHA-256 of their bytes.
 *
 * Layout under STATE_DIR:
 *   blobs/sha256/<hex>   one file per blob, mode 0444, never modified
 *   tmp/                 scratch space: partial blobs, exec work dirs
 *
 * A blob is written to a temp file in tmp/, fsync'd, then renamed to its name,
 * so a crash never leaves a partial blob under a content name.  Storing the same
 * bytes twice is cheap: the second rename is skipped when the name exists.
 * All functions are thread-safe (the store holds no mutable in-memory state).
 */
#ifndef SFS_CAS_H
#define SFS_CAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

struct cas;

/* Creates blobs/sha256 and tmp under state_dir if missing, and empties tmp/. */
int cas_open(const char *state_dir, struct cas **ret);
struct cas *cas_close(struct cas *c); /* accepts NULL, returns NULL */

const char *cas_tmp_dir(const struct cas *c);

int cas_put_buf(struct cas *c, const void *buf, size_t len, char ret_hex[SFS_HEX_SIZE]);
/* Copies the rest of fd (from its current offset) into the store. */
int cas_put_fd(struct cas *c, int fd, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size);
/* Stores a host file by path (regular files only; does not follow a final symlink). */
int cas_put_path(struct cas *c, const char *path, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size);

/*
 * Batches, for storing many blobs at once (tree ingest): blobs put into a
 * batch are written to tmp/ and get their names only at cas_batch_commit,
 * after one syncfs instead of an fdatasync per blob; until then cas_has does
 * not see them.  A batch commits by itself every few thousand blobs.  Freeing
 * an uncommitted batch discards its blobs.  One thread per batch.
 */
struct cas_batch;
int cas_batch_new(struct cas *c, struct cas_batch **ret);
int cas_batch_put_buf(struct cas_batch *b, const void *buf, size_t len, char ret_hex[SFS_HEX_SIZE]);
int cas_batch_put_fd(struct cas_batch *b, int fd, char ret_hex[SFS_HEX_SIZE], uint64_t *ret_size);
int cas_batch_commit(struct cas_batch *b);
struct cas_batch *cas_batch_free(struct cas_batch *b); /* accepts NULL, returns NULL */

bool cas_has(struct cas *c, const char *hex);
/* Size of the blob, or -errno (-ENOENT when absent). */
int64_t cas_size(struct cas *c, const char *hex);
/* Writes "<state_dir>/blobs/sha256/<hex>" into buf. */
int cas_blob_path(const struct cas *c, const char *hex, char *buf, size_t len);
/* Opens the blob read-only (O_CLOEXEC); *ret_fd owned by the caller. */
int cas_open_blob(struct cas *c, const char *hex, int *ret_fd);
/* Reads a whole blob into a malloc'd buffer (NUL-terminated beyond len). */
int cas_read_all(struct cas *c, const char *hex, char **ret_buf, size_t *ret_len);
/* Copies the blob to a new file at dest with the given mode (copy_file_range). */
int cas_copy_out(struct cas *c, const char *hex, const char *dest, unsigned mode);
/* Deletes a blob (pruning; missing-blob tests). */
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
