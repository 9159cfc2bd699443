/*
 * exports.h — the whole-cache exports of a STATE_DIR (docs/export.md §12).
 *
 * An export of the whole cache (cache_export_all) lives in
 * STATE_DIR/exports/<hex>, <hex> being the hex of its manifest's digest, so
 * equal caches give one directory.  It is written under a temporary name of
 * the same directory (".whole-…", never a job number nor a hex, so the job
 * exports' sweep at mount removes what a crash left) and renamed into place:
 * complete or absent.  STATE_DIR/exports/latest is a symlink to the newest
 * ("<hex>"), replaced by a rename too.  Job exports (STATE_DIR/exports/N,
 * solver/jobexport.c) share the directory; the names never collide.
 *
 * Only the newest is kept by a prune: cache_exports_prune deletes every
 * other one.  A reader holding a file open keeps reading it (unlinked files
 * live on).
 *
 * Locking: one process-wide mutex orders "rename into place, point latest at
 * it" against a prune's "read latest, delete the others", so a prune never
 * deletes an export being made the newest.  Writing the layout runs without it.
 */
#ifndef SFS_EXPORTS_H
#define SFS_EXPORTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "export.h"
#include "strv.h"

#define CACHE_EXPORTS_LATEST "latest"

/* Is name one of the whole-cache exports' names in STATE_DIR/exports
 * (a 64-char hex or "latest")? */
bool cache_exports_is_name(const char *name);

/*
 * Exports the whole cache of c (its main manager) in mode and form into
 * STATE_DIR/exports/<hex> and makes it the newest; ret_hex receives <hex>.
 * An export equal to an existing one keeps that directory and makes it the newest.
 * Once stop (NULL: none) is set it ends with -ECANCELED between two keys or
 * two blobs: its temporary directory removed, the newest one unchanged.
 */
int cache_exports_make(struct sfs_cache *c, enum cache_export_mode mode,
		       enum cache_export_form form, const atomic_bool *stop,
		       char ret_hex[SFS_HEX_SIZE], char **ret_msg);

/*
 * The arguments of the `export` command of cache/ctl (docs/export.md §12):
 * space-separated `mode=max|min` and `form=image|manifest-list`, each at most
 * once, in any order; defaults mode=max (the whole cache is for moving a
 * cache, so every result goes) and form=image.  -EINVAL with *ret_msg naming
 * the bad word.
 */
int cache_exports_parse(const char *args, enum cache_export_mode *ret_mode,
			enum cache_export_form *ret_form, char **ret_msg);

/* The two names, as the command spells them. */
const char *cache_exports_mode_name(enum cache_export_mode m);
const char *cache_exports_form_name(enum cache_export_form f);

/* The hex of the newest export; -ENOENT when there is none. */
int cache_exports_newest(struct sfs_cache *c, char ret_hex[SFS_HEX_SIZE]);

/* Is hex an export of c that is there? */
bool cache_exports_has(struct sfs_cache *c, const char *hex);

/* The hexes of the exports there are, sorted (strv_release it). */
int cache_exports_list(struct sfs_cache *c, struct strv *ret);

/* STATE_DIR/exports/<hex>/<rel> (rel NULL or "." for the root), malloc'd. */
char *cache_exports_path(struct sfs_cache *c, const char *hex, const char *rel);

/* How many whole-cache exports there are and their bytes (files and
 * directories, apparent sizes as `du -sb` counts them). */
int cache_exports_usage(struct sfs_cache *c, uint64_t *ret_n, uint64_t *ret_bytes);

/*
 * Deletes every export but the newest; *ret_n and *ret_bytes (may be NULL)
 * receive how many and their bytes.  With dry_run nothing is deleted and
 * they say what would be.
 */
int cache_exports_prune(struct sfs_cache *c, bool dry_run, uint64_t *ret_n, uint64_t *ret_bytes);

#endif
