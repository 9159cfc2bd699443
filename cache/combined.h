/*
 * combined.h — several cache managers seen as one: BuildKit's
 * combinedCacheManager (docs/semantics.md §4.5), for builds with extra cache
 * sources (--import-cache, cache_from) besides the local cache.
 *
 * Not a new kind of manager: a struct cache_combined names the main manager
 * and the extra ones, and the functions below stand in for
 * cache_manager_query/records/load/save where the solver has more than one
 * source.  With no extras they behave as the main manager's, except that
 * Records gives main's records priority 1 and refuses a key with no id.
 *
 *   Query    every manager; the union, deduplicated by key id.  Main's key
 *            object is kept, and learns the id of every duplicate, so Records
 *            asks every manager that found it.
 *   Records  only the managers the key has an id in (cache_key_id): a key a
 *            query found in an extra source only has an id there.  Main's
 *            records get priority 1, so cache_records_best prefers a local
 *            record on equal created_at; duplicate record ids keep main's.
 *   Load     from rec->cm; when that is not main, the loaded chain (the
 *            record's key and, recursively, its deps that have an id in
 *            rec->cm) is saved into main with the original created_at, so a
 *            remote hit becomes local cache (LoadWithParents + Save).
 *   Save     to main only.
 *
 * Ownership: a cache_combined borrows its managers; it owns nothing and
 * needs no free.  The managers must outlive every record that points to them
 * (cache_record.cm).  Keys and arrays returned follow manager.h.
 *
 * Thread-safety: the struct is read only; every function may be called from
 * any thread, as the managers lock themselves.
 */
#ifndef SFS_COMBINED_H
#define SFS_COMBINED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager.h"

struct cache_combined {
	struct cache_manager *main;   /* the local cache; may be NULL (then Save does nothing) */
	struct cache_manager **extra; /* extra sources, in priority order; none is main */
	size_t nextra;
};

/* BuildKit's combined ID: sha256 of the managers' ids joined by ",", main first. */
void cache_combined_id(const struct cache_combined *cc, char ret[SFS_DIGEST_SIZE]);

/*
 * Query on every manager (main first, then extras in order).  Keys are
 * deduplicated by their id in the manager that found them; the first one
 * (main's) is kept and given the duplicates' ids.  *ret as cache_manager_query.
 */
int cache_combined_query(const struct cache_combined *cc,
			 const struct cache_key_with_selector *deps, size_t ndeps, int input,
			 const char *dgst, int output, struct cache_key ***ret, size_t *ret_n);

/*
 * Records of k from every manager of cc that k has an id in (for a key without
 * deps: an id it was given by a query or cache_key_set_id, not its root id
 * alone).  Main's records get priority 1, the others 0; a record id seen twice
 * keeps main's.  -ENOENT ("no results") when k has an id in none of them.
 * *ret is malloc'd (free it).
 */
int cache_combined_records(const struct cache_combined *cc, struct cache_key *k,
			   struct cache_record **ret, size_t *ret_n);

/*
 * Whether cache_combined_records would give k a record that skip (may be NULL)
 * does not refuse: 1 or 0, -ENOENT when k has an id in no manager, or -errno
 * (cache_manager_has_records on each manager k has an id in).
 */
int cache_combined_has_records(const struct cache_combined *cc, struct cache_key *k,
			       bool (*skip)(const char *record_id, void *arg), void *arg);

/*
 * Loads rec (from one of cache_combined_records) from rec->cm.  When rec->cm
 * is not main and k is not NULL, k's record (result, rec->created_at) is saved
 * into main, after the best record of each dep of k (recursively) that has an
 * id in rec->cm; deps are best effort (a failed one is logged and skipped), k's
 * own save is not.  k should be the key rec was found under with its deps
 * (the solver's mergedKey) so main links the chain; a key without deps is saved
 * under its id.  A record main already has (same key, tree and created_at) is
 * not saved twice (checked, not locked: two loads of one record racing may
 * both save it, as BuildKit always does).
 */
int cache_combined_load(const struct cache_combined *cc, struct cache_key *k,
			const struct cache_record *rec, char ret_result_id[SFS_DIGEST_SIZE],
			char **ret_msg);

/* cache_manager_save into main; 0 and nothing done when main is NULL
 * (ret_record is then zeroed). */
int cache_combined_save(const struct cache_combined *cc, struct cache_key *k, const char *result_id,
			int64_t created_at, const struct cache_result *record,
			struct cache_result *ret_record);

/*
 * Gives dst the id src has in each manager of cc (cache_key_set_id), e.g. to
 * build the solver's mergedKey from a key a combined query found.  Managers
 * where dst already has an id are left alone.
 */
int cache_combined_copy_ids(const struct cache_combined *cc, struct cache_key *dst,
			    struct cache_key *src);

#endif
