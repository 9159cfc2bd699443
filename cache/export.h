/*
 * export.h — cache export in BuildKit's remote cache format (docs/export.md).
 *
 * The exporter walks the chains of cache keys that lead to a job's outputs
 * (the keys its results were saved or loaded under, with their deps as the
 * solver holds them, plus every chain persisted in the key storage that leads
 * to them through backlinks), turns results into gzip tar layers as the mode
 * says, and writes the cache config (CacheChains: normalized, marshalled,
 * sorted) and its blobs as an OCI image layout directory.  Every result it
 * reads is held (holds.h) from before it is read until the layout is written,
 * so neither a prune nor the GC deletes it meanwhile.
 */
#ifndef SFS_EXPORT_H
#define SFS_EXPORT_H

#include <stdatomic.h>
#include <stddef.h>

#include "cache.h"
#include "manager.h"

/* Which records get a result (docs/export.md §7). */
enum cache_export_mode {
	CACHE_EXPORT_MIN,	  /* down to the first result on each path, then existing layers */
	CACHE_EXPORT_MAX,	  /* every non-root record with a record */
	CACHE_EXPORT_REMOTE_ONLY, /* existing layers only; never makes one */
};

/* How the layout names the config and layers (docs/export.md §3). */
enum cache_export_form {
	CACHE_EXPORT_IMAGE,	    /* OCI image manifest, config = cacheconfig (default) */
	CACHE_EXPORT_MANIFEST_LIST, /* BuildKit v0.7: Docker manifest list, cacheconfig last */
};

/*
 * Exports the cache chains that lead to `keys` (the keys a job's outputs were
 * saved or loaded under: struct cache_key with their deps, as the solver holds
 * them) from manager cm into an OCI image layout created at dir (which must not
 * exist; written to dir.tmp then renamed).  With no records the layout still
 * holds an empty config.
 */
int cache_export(struct sfs_cache *c, struct cache_manager *cm, struct cache_key *const *keys,
		 size_t nkeys, enum cache_export_mode mode, enum cache_export_form form,
		 const char *dir, char **ret_msg);

/*
 * cache_export, where the records whose digest (rootKey of the key's digest and
 * output) is a key of no_results get no result: the records of vertices whose
 * export_cache is false (BuildKit's VertexOptions.ExportCache).  NULL: none.
 */
struct strmap;
int cache_export_except(struct sfs_cache *c, struct cache_manager *cm,
			struct cache_key *const *keys, size_t nkeys, enum cache_export_mode mode,
			enum cache_export_form form, const struct strmap *no_results,
			const char *dir, char **ret_msg);

/*
 * Exports the whole cache: every key of cm's key storage (not one job's
 * chains), each with its backlinks' chains, and for every key with inputs its
 * newest record's result as the mode says (docs/export.md §12; with
 * CACHE_EXPORT_MIN, keys nothing is built on are the outputs).  Written to
 * dir as cache_export does (dir.tmp, then renamed); ret_manifest receives the
 * digest of the layout's manifest, "sha256:<hex>", which names the export.
 * The records' export_cache is not known here: every result may be exported.
 * stop (NULL: none) is read before each key and each layer blob: once set,
 * the export ends with -ECANCELED and leaves neither dir nor dir.tmp.
 */
int cache_export_all(struct sfs_cache *c, struct cache_manager *cm, enum cache_export_mode mode,
		     enum cache_export_form form, const char *dir, const atomic_bool *stop,
		     char ret_manifest[SFS_DIGEST_SIZE], char **ret_msg);

/*
 * The same walk, but only the cache config JSON (compact, the field names of
 * docs/export.md §5) and no layout; layers it needs are still made in the content
 * store.
 * *ret_json is malloc'd.  For tests and for callers that serve the config.
 */
int cache_export_config(struct sfs_cache *c, struct cache_manager *cm,
			struct cache_key *const *keys, size_t nkeys, enum cache_export_mode mode,
			char **ret_json, char **ret_msg);

#endif
