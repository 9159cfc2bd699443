/*
 * manager.h — CacheManager: cache keys, records and the lookups the solver makes.
 *
 * BuildKit's solver.CacheManager (docs/semantics.md §2, §4.4) over a keystore
 * (keys and links) and a result storage (records -> result trees).
 *
 * A cache_key is reference counted (cache_key_ref/unref) because keys are
 * shared as dependencies of other keys.  A key without deps has a fixed id,
 * rootKey(digest, output).  A key with deps has a per-manager id, found by
 * walking links from its deps (getIDFromDeps) or freshly random on first save;
 * the key remembers the id it has in each manager it met.
 *
 * Thread-safety: a manager may be called from any thread; keys are immutable
 * after creation except for their per-manager id list, which is guarded by the
 * manager's lock.
 */
#ifndef SFS_MANAGER_H
#define SFS_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore.h"

struct cache_manager;
struct cache_key;

struct cache_key_with_selector {
	char selector[SFS_DIGEST_SIZE]; /* "" or "sha256:<hex>" */
	struct cache_key *key;		/* a reference is held */
};

struct cache_key_alts {
	size_t n;
	struct cache_key_with_selector *v;
};

/* A key's id in one manager; entries never move once made, so the id a
 * cache_key_id returns stays valid as long as the key.  id is allocated to its
 * length (a random id is 25 bytes, not CACHE_ID_SIZE): a large graph holds
 * several keys a vertex. */
struct cache_key_manager_id {
	const struct cache_manager *cm;
	struct cache_key_manager_id *next;
	char id[];
};

struct cache_key {
	int refs;
	char digest[SFS_DIGEST_SIZE]; /* cache map digest (or content digest, output -1) */
	int output;
	size_t ndeps; /* one per input of the op; 0 for roots */
	struct cache_key_alts *deps;
	size_t nids;
	struct cache_key_manager_id *ids; /* list, one per manager met; key_ids_lock */
	/* rootKey(digest, output): only a key without deps has it (its id where it
	 * has none of its own); not allocated for the others */
	char root_id[];
};

/* A new key with ndeps empty alternative lists; refs = 1. */
struct cache_key *cache_key_new(const char *digest, int output, size_t ndeps);
struct cache_key *cache_key_ref(struct cache_key *k);
struct cache_key *cache_key_unref(struct cache_key *k); /* accepts NULL, returns NULL */
/* Appends an alternative to deps[input]; takes a new reference on dep. */
int cache_key_add_dep(struct cache_key *k, size_t input, const char *selector,
		      struct cache_key *dep);
/* The key's id in cm, or NULL if it has none yet (roots always have root_id). */
const char *cache_key_id(struct cache_key *k, const struct cache_manager *cm);
/* Gives k the id it has in cm (a key found by Query, rebuilt with its deps:
 * BuildKit's mergedKey).  No-op when k already has one there. */
int cache_key_set_id(struct cache_key *k, const struct cache_manager *cm, const char *id);

struct cache_record {
	char id[CACHE_ID_SIZE];	      /* record id */
	char result[SFS_DIGEST_SIZE]; /* result tree id */
	int64_t created_at;	      /* ns */
	int priority;
	struct cache_manager *cm;   /* the manager it came from (not owned) */
	char key_id[CACHE_ID_SIZE]; /* the key it was found under in cm */
};

struct result_storage; /* result_storage.h */

/* The manager.  Takes ownership of ks and rs. */
int cache_manager_new(const char *id, struct keystore *ks, struct result_storage *rs,
		      struct cache_manager **ret);
struct cache_manager *cache_manager_free(struct cache_manager *cm); /* accepts NULL */
const char *cache_manager_id(const struct cache_manager *cm);
struct keystore *cache_manager_keystore(struct cache_manager *cm);
struct result_storage *cache_manager_storage(struct cache_manager *cm);

/*
 * Query (§2.4): keys for output `output` of the op with map digest `dgst`
 * reachable from any of `deps` (alternatives for input `input`).  With no deps,
 * the root key when it exists.  Adds carry-over links between the queried
 * alternatives and every found key.  *ret is a malloc'd array of new key
 * references (cache_key_unref each, then free the array).
 */
int cache_manager_query(struct cache_manager *cm, const struct cache_key_with_selector *deps,
			size_t ndeps, int input, const char *dgst, int output,
			struct cache_key ***ret, size_t *ret_n);

/* Records of key k in cm (missing ones are released); malloc'd array. */
int cache_manager_records(struct cache_manager *cm, struct cache_key *k, struct cache_record **ret,
			  size_t *ret_n);

/*
 * Whether k has a record in cm that Records would give and skip (may be NULL)
 * does not refuse: 1 or 0, or -errno.  Releases missing ones as Records does,
 * but copies no record and sorts none: the KEYS task asks this of every vertex
 * and fetches the records at LOAD, of the one vertex it loads.
 */
int cache_manager_has_records(struct cache_manager *cm, struct cache_key *k,
			      bool (*skip)(const char *record_id, void *arg), void *arg);

/* Loads a record: on success ret_result_id is a result tree present in the store. */
int cache_manager_load(struct cache_manager *cm, const struct cache_record *rec,
		       char ret_result_id[SFS_DIGEST_SIZE], char **ret_msg);

/*
 * Save (§2.4): allocates a record for result_id (or reuses `record` when not
 * NULL, so several keys of one execution share it), adds it to k's id (getID,
 * random when new) and links every alternative of every dep to it, all in one
 * batch.  ret_record (may be NULL) receives the record.  A key new to cm whose
 * every input already leads to a key holding a record of result_id takes that
 * key's id and record rather than a random id and a record of its own, so equal
 * content saved by many vertices is one key, not one each (reuse_same_result).
 */
int cache_manager_save(struct cache_manager *cm, struct cache_key *k, const char *result_id,
		       int64_t created_at, const struct cache_result *record,
		       struct cache_result *ret_record);

/*
 * ReleaseUnreferenced (§4.2): releases every record whose result is gone from
 * the result storage.  cache_manager_new runs it once; call it after a prune.
 */
int cache_manager_release_unreferenced(struct cache_manager *cm);

/* getBestResult: newest created_at, then higher priority.  NULL if n == 0. */
const struct cache_record *cache_records_best(const struct cache_record *r, size_t n);

#endif
