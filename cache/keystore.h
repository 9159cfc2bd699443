/*
 * keystore.h — CacheKeyStorage: the persistent graph of cache keys.
 *
 * The interface of BuildKit's solver.CacheKeyStorage (docs/semantics.md §4.1) as a
 * struct of function pointers, with two implementations: in memory
 * (keystore_memory_new) and SQLite (keystore_sqlite_new, over cache/db.h).
 *
 * A key is a string id: for keys without deps, rootKey(digest, output)
 * ("sha256:<hex>"); for keys with deps a random 25-char base36 id.  A key holds
 * results (cache records) and outgoing links to dependent keys.  A link stored
 * on dependency key `id` says: "the output `output` of the op with cache map
 * digest `digest`, whose input `input` is `id` through `selector`, is `target`".
 *
 * Exists(id) is true while the key has at least one result or one outgoing
 * link.  Release(record) removes a record from every key and garbage-collects
 * keys left with neither results nor links, cascading to dependency keys
 * (docs/semantics.md §4.2).
 *
 * rootKey and the record form.  A key without deps has the id
 * rootKey(digest, output) = sha256 of "<digest>@<output>" (BuildKit's
 * rootKey), whatever backend stores it.  A record imported from a cache
 * export has a digest that is already rootKey(mapDigest, output); the map
 * digest and output cannot be recovered from it.  The solver's links are
 * {input, output, mapDigest, selector}, so an imported record with inputs is
 * reached through links in the "record form":
 *     {input i, output KEYSTORE_RECORD_LINK_OUTPUT, digest = record.digest, selector}
 * stored on each input alternative's key id, as BuildKit's imported key
 * storage translates a solver link with outputKey(link.Digest, link.Output).
 * The output field says which form a link is in: solver links have
 * output >= 0, so a reader of links (walk_backlinks for export, cache/keys,
 * why) can tell a record-form digest, which is already what rootKey(digest,
 * output) would give, from a map digest.  A record with no inputs is the root
 * key whose id is its digest, which is exactly the id the solver gives that
 * root (or content) key, so no translation is needed there.
 *
 * For Query (and getIDFromDeps) to hit imported records with inputs, the
 * cache manager walks links in both forms:
 *     {input, output, dgst, selector}                                   (solver saves)
 *     {input, KEYSTORE_RECORD_LINK_OUTPUT, rootKey(dgst, output), selector}  (imports)
 * keystore_record_link() spells the second form.  A backend may answer a walk
 * in the record form at once when it knows it stores no such link (the SQLite
 * one does: most caches never import).  walk_backlinks yields a
 * record-form link's digest as is (not rootKey of it) with output 0.
 *
 * Walk callbacks return 0 to continue or a negative errno to stop; that value
 * is returned.  Walks snapshot their rows before calling back, so a callback may
 * call into the storage again.
 */
#ifndef SFS_KEYSTORE_H
#define SFS_KEYSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "sha256.h"

#define CACHE_ID_SIZE 80 /* fits a digest or a random id */

/* cache_link.output of a record-form link (see above); solver links are >= 0. */
#define KEYSTORE_RECORD_LINK_OUTPUT (-2)

/* One save of a result under a key (BuildKit's CacheResult). */
struct cache_result {
	char id[CACHE_ID_SIZE];	      /* record id: one per execution or import */
	char result[SFS_DIGEST_SIZE]; /* the result tree id, "sha256:<hex>" */
	int64_t created_at;	      /* nanoseconds since the epoch */
};

struct cache_link {
	int input;
	int output;
	char digest[SFS_DIGEST_SIZE];	/* cache map digest of the dependent op */
	char selector[SFS_DIGEST_SIZE]; /* "" or "sha256:<hex>" */
};

typedef int (*keystore_id_fn)(const char *id, void *arg);
typedef int (*keystore_result_fn)(const struct cache_result *r, void *arg);
typedef int (*keystore_backlink_fn)(const char *src_id, const struct cache_link *l, void *arg);
typedef int (*keystore_link_fn)(const struct cache_link *l, const char *target, void *arg);

struct keystore;

struct keystore_ops {
	bool (*exists)(struct keystore *ks, const char *id);
	int (*walk)(struct keystore *ks, keystore_id_fn fn, void *arg);
	int (*walk_results)(struct keystore *ks, const char *id, keystore_result_fn fn, void *arg);
	/* walk_results in no set order, where that is cheaper (the SQLite one
	 * sorts by created, id otherwise); NULL: walk_results. */
	int (*walk_results_any)(struct keystore *ks, const char *id, keystore_result_fn fn,
				void *arg);
	/* -ENOENT for an unknown key or record. */
	int (*load)(struct keystore *ks, const char *id, const char *record_id,
		    struct cache_result *ret);
	int (*add_result)(struct keystore *ks, const char *id, const struct cache_result *r);
	int (*release)(struct keystore *ks, const char *record_id);
	int (*walk_ids_by_result)(struct keystore *ks, const char *record_id, keystore_id_fn fn,
				  void *arg);
	int (*add_link)(struct keystore *ks, const char *id, const struct cache_link *l,
			const char *target);
	int (*walk_links)(struct keystore *ks, const char *id, const struct cache_link *l,
			  keystore_id_fn fn, void *arg);
	/* Optional (NULL: yes): false when no link of the record form (output
	 * KEYSTORE_RECORD_LINK_OUTPUT) is stored, so that walking one would find
	 * nothing and its rootKey need not be made. */
	bool (*record_links_maybe)(struct keystore *ks);
	bool (*has_link)(struct keystore *ks, const char *id, const struct cache_link *l,
			 const char *target);
	/* Yields every (src, link) with a link to id; link->digest is replaced by
	 * rootKey(link.digest, link.output) and link->output by 0 (§4.1). */
	int (*walk_backlinks)(struct keystore *ks, const char *id, keystore_backlink_fn fn,
			      void *arg);
	/*
	 * Extensions beyond BuildKit's interface, for `why` and cache/keys/; NULL
	 * where a backend does not keep them.  set_info records what key id is
	 * a key of (its cache map or content digest and output); walk_by_digest
	 * yields a key some link says is output `output` of the op with map
	 * digest `digest` (a record of that op, whatever its inputs) — one at
	 * most, so asking costs one index probe however large the cache.
	 */
	int (*set_info)(struct keystore *ks, const char *id, const char *digest, int output);
	int (*get_info)(struct keystore *ks, const char *id, char ret_digest[SFS_DIGEST_SIZE],
			int *ret_output);
	int (*walk_by_digest)(struct keystore *ks, const char *digest, int output,
			      keystore_id_fn fn, void *arg);
	/* Every outgoing link of id, whatever its fields (keystore_walk_all_links). */
	int (*walk_all_links)(struct keystore *ks, const char *id, keystore_link_fn fn, void *arg);
	/* Groups the updates until batch_end into one transaction (may nest). */
	int (*batch_begin)(struct keystore *ks);
	int (*batch_end)(struct keystore *ks, int err); /* commits when err == 0 */
	void (*free)(struct keystore *ks);
};

struct keystore {
	const struct keystore_ops *ops;
};

struct sfs_db;
int keystore_memory_new(struct keystore **ret);
int keystore_sqlite_new(struct sfs_db *db, struct keystore **ret);
struct keystore *keystore_free(struct keystore *ks); /* accepts NULL */

/*
 * Walks every outgoing link of id regardless of link fields (for
 * cache/keys/<id>/links): the optional walk_all_links op; -EOPNOTSUPP where
 * the backend has none (the memory one).
 */
int keystore_walk_all_links(struct keystore *ks, const char *id, keystore_link_fn fn, void *arg);

/* A fresh random key id: 25 chars of base36, like BuildKit's identity.NewID. */
void keystore_new_id(char ret[CACHE_ID_SIZE]);

/* BuildKit's rootKey: the digest of the string "<digest>@<output>" (above). */
void sfs_root_key(const char *digest, int output, char ret_digest[SFS_DIGEST_SIZE]);

/*
 * True: imported records with inputs are linked in the record form (above).
 * A constant, so callers can assert the contract they code against.
 */
bool keystore_record_link_form(void);

/* Fills l with the record form of the solver link {input, output, dgst,
 * selector}: {input, KEYSTORE_RECORD_LINK_OUTPUT, rootKey(dgst, output), selector}. */
void keystore_record_link(int input, int output, const char *dgst, const char *selector,
			  struct cache_link *l);

#endif
