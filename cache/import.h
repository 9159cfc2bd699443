/*
 * import.h — reading a BuildKit cache export (an OCI image layout directory)
 * into the local cache (docs/export.md §10).
 *
 * The layout is what `buildctl --export-cache type=local` or cache/export.c
 * writes: index.json, blobs/sha256/<hex>, with a manifest in one of three forms
 * (Docker manifest list, OCI index, OCI image manifest) whose config entry of
 * media type application/vnd.buildkit.cacheconfig.v0 lists layers and records.
 *
 * Imported records with inputs are linked in the record form that
 * keystore.h describes (keystore_record_link), so the cache manager's
 * queries reach them.
 */
#ifndef SFS_IMPORT_H
#define SFS_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "keystore.h"

/*
 * Limits on what one import may cost (docs/export.md §10.3).  A layout is named by a
 * user and read by the daemon, so every size it controls is bounded:
 *   json_max     bytes of index.json, the manifest and the cache config
 *                (BuildKit reads 1 MiB manifests; our exports list more layers);
 *   layer_max    decompressed bytes of one layer (a gzip bomb stops there);
 *   entries_max  tar entries of one layer, and entries of the tree a chain of
 *                layers makes.
 * A chain longer than CACHE_IMPORT_CHAIN_MAX layers is refused (overlay stacks
 * hold about 128; containerd and Docker refuse more).
 */
#define CACHE_IMPORT_JSON_MAX (64ull << 20)
#define CACHE_IMPORT_LAYER_MAX (16ull << 30)
#define CACHE_IMPORT_ENTRIES_MAX 1000000ull
#define CACHE_IMPORT_CHAIN_MAX 1024

struct cache_import_limits {
	uint64_t json_max;
	uint64_t layer_max;
	uint64_t entries_max;
};

/* Warnings shown to the user (entries dropped) go to warn, at most
 * CACHE_IMPORT_WARN_MAX of them and then one line counting the rest. */
#define CACHE_IMPORT_WARN_MAX 10

struct cache_import_opts {
	struct cache_import_limits limits;
	/* Polled between layers and entries; true stops the import with
	 * -ECANCELED ("context canceled").  NULL: never. */
	bool (*cancelled)(void *arg);
	/* A line for the user (the job's progress); NULL: the daemon log only. */
	void (*warn)(void *arg, const char *msg);
	void *arg;
	/*
	 * A layer blob the layout's directory lacks is asked of fetch (a remote
	 * source: cache/remote.h), which stores it in the content store and
	 * opens it; size is its descriptor's.  0 with *ret_fd, 1 when it has
	 * none, or -errno.  NULL: such a result is absent.
	 */
	int (*fetch)(void *fetch_arg, const char *digest, uint64_t size, int *ret_fd,
		     char **ret_msg);
	void *fetch_arg;
	/*
	 * Lazy (BuildKit's lazy remote cache): cache_import_into_manager unpacks
	 * nothing; each result gets a stand-in id, and cache_import_lazy_storage
	 * unpacks (and fetches) a chain when a record naming it is loaded.
	 */
	bool lazy;
};

/* The defaults above, no callbacks. */
void cache_import_opts_default(struct cache_import_opts *o);

struct cache_import;

/*
 * Reads the layout at dir (index.json entry tagged "latest", or the only
 * one): the manifest (OCI image manifest whose config is
 * application/vnd.buildkit.cacheconfig.v0, or a manifest list / OCI index
 * whose entry of that media type is the config — the v0.7 form puts it last),
 * the cacheconfig JSON, and the layer descriptors.  Records are checked here:
 * links to missing records ("invalid record ID: N"), loops ("invalid looping
 * record"), bad digests and selectors are errors.  Layer blobs are read only
 * by cache_import_into.
 */
int cache_import_open(const char *dir, struct cache_import **ret, char **ret_msg);
/*
 * The same with limits and callbacks (o may be NULL: the defaults; it is
 * copied).  The layout's own paths (index.json, blobs/, blobs/sha256/, each
 * blob) are opened without following symlinks and without blocking: a symlink
 * is -ELOOP, a FIFO or anything not a regular file (or directory) -EINVAL.
 * The directory dir itself may be a symlink.
 */
int cache_import_open_opts(const char *dir, const struct cache_import_opts *o,
			   struct cache_import **ret, char **ret_msg);
struct cache_import *cache_import_free(struct cache_import *im); /* accepts NULL */

/*
 * True when there is no layout at dir at all: dir does not exist, or it is a
 * directory without an index.json (a cache directory not yet written to).  A
 * cache_from source that is absent is a warning, not an error (BuildKit's
 * "local cache import at PATH not found"); anything else wrong with a layout
 * that is there (a dangling or symlinked index.json, a missing blob, bad JSON)
 * is not absence and fails cache_import_open as before (docs/export.md §10.3).
 * Call it with the credentials the layout is read with.
 */
bool cache_import_absent(const char *dir);

/*
 * Copies every record into the local cache for good: each layer chain is
 * unpacked (base first, whiteouts applied) into a result tree in the content
 * store, a record is saved for it, and keys and links are created so later
 * Query/Records on c->main find them (given the manager change described
 * above).  A result whose chain names a blob missing from the manifest or the
 * directory is silently absent; a layer with `..`, an absolute name or a path
 * under a non-directory fails the whole import, before any key is written.
 * Importing the same layout twice adds nothing the second time.
 */
int cache_import_into(struct cache_import *im, struct sfs_cache *c, char **ret_msg);

/*
 * The same into the key storage of manager cm instead of c->main: trees still
 * go to c's content store, records to cm's keys.  For an extra cache source
 * (docs/semantics.md §4.5) kept apart from the local cache, e.g. an in-memory
 * manager (keystore_memory_new, result_storage_cas_new(c->cas, NULL),
 * cache_manager_new(id, ...)) queried through cache/combined.h, so only what a
 * build loads from it becomes local.  Results rows are written only when cm is
 * c->main.  cache_import_into(im, c) is cache_import_into_manager(im, c, c->main).
 */
int cache_import_into_manager(struct cache_import *im, struct sfs_cache *c,
			      struct cache_manager *cm, char **ret_msg);

/*
 * The result storage of a lazy import's manager (o.lazy): exists() is true
 * for the stand-in ids of its records; load() unpacks the chain into c's
 * content store (once; later loads find the tree) and answers the tree's id,
 * so a combined load copies a real result into the local cache.  save() is
 * -EROFS.  It takes im (use it for cache_import_into_manager after this, and
 * do not free it) and drops the open's cancelled/warn callbacks; freeing it
 * frees im and calls fetch_free(o.fetch_arg) when both are set.  Loads may
 * come from any thread: one unpacks at a time.
 */
struct result_storage;
struct cas;
int cache_import_lazy_storage(struct cache_import *im, struct cas *cas,
			      void (*fetch_free)(void *arg), struct result_storage **ret);

/* Number of records and of results that will be (or were) imported. */
size_t cache_import_nrecords(const struct cache_import *im);

#endif
