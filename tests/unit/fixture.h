/*
 * fixture.h — the shared fixtures of the C unit tests (tests/unit/), on top of tap.h.
 *
 *   - fx_env: a solver over a fresh cache, what every solver test opens first;
 *     fx_run_env runs a test on one, opened before and closed after, so a test body
 *     holds only its scenario:
 *
 *         static void test_x(struct fx_env *e) { ... tv_build(e, v, NULL) ... }
 *         RUN_ENV(test_x, &opts);
 *
 *   - fx_cache_open: a fresh sfs_cache in a scratch dir of tap's;
 *   - fx_tree: the small tree the cache tests store, export and import;
 *   - fx_keystore_open, fx_run_backends: a suite run once on each key storage;
 *   - fx_op_new, fx_op_outputs: the plumbing of a test's own op type
 *     (fixture_op.c, without tap.h: the fuzz targets link it too).
 *
 * A fixture that fails marks the current test failed (CHECK) and leaves the fields
 * it could not open NULL; it never exits.
 */
#ifndef SFS_FIXTURE_H
#define SFS_FIXTURE_H

#include "cache.h"
#include "solver.h"

/* ---- a solver over a fresh cache ---- */

struct fx_env {
	char *dir; /* STATE_DIR of the cache: tap's, removed by tap_done */
	struct sfs_cache *cache;
	struct sfs_solver *s;
};

struct fx_env_opts {
	int workers; /* sfs_solver_opts.workers */
	/* sfs_solver_opts.resolve: the test's ops (NULL: the real ones) */
	int (*resolve)(void *arg, const struct sfs_spec_vertex *v, struct sfs_op **ret);
	void (*after)(void); /* run by fx_run_env once the env is closed (may be NULL) */
};

/* Opens a solver with o's workers and resolve over a cache in dir (NULL: a fresh
 * scratch dir). */
void fx_env_open(struct fx_env *e, const char *dir, const struct fx_env_opts *o);
/* Closes the solver, which cancels its jobs and joins its workers, then the cache.
 * Closing again does nothing: a test that checks what the workers counted closes
 * the env itself first. */
void fx_env_close(struct fx_env *e);

/* Runs fn as tap_run does, on an env opened with o before and closed after, then
 * calls o->after. */
void fx_run_env(const char *name, void (*fn)(struct fx_env *e), const struct fx_env_opts *o);
#define RUN_ENV(fn, o) fx_run_env(#fn, fn, (o))

/* ---- the cache ---- */

/* A fresh cache in a scratch dir of tap's (NULL, with the test failed, if it does
 * not open); close it with sfs_cache_close. */
struct sfs_cache *fx_cache_open(void);

/*
 * Stores the tree ".", "<dir>/" (0750), "<dir>/f" (content, fmode), "l" -> "<dir>/f"
 * in c's store and writes its id to ret ("" on failure).  It survives an export and
 * an import with the same id.
 */
void fx_tree(struct sfs_cache *c, const char *dir, unsigned fmode, const char *content,
	     char ret[SFS_DIGEST_SIZE]);

/* ---- files and OCI layouts ---- */

/* Writes len bytes of buf to path (created or truncated, 0644). */
void fx_write_file(const char *path, const void *buf, size_t len);
/* Stores buf as the blob blobs/sha256/<hex> of the OCI layout in dir (its dirs made
 * as needed); ret gets its digest. */
void fx_layout_put_blob(const char *dir, const void *buf, size_t len,
			char ret[SFS_DIGEST_SIZE]);

/* ---- the two key storages ---- */

struct keystore;
struct sfs_db;

/* A fresh key storage: in memory, or with sqlite an SQLite one over a new db in a
 * scratch dir of tap's, left in *ret_db (close it after keystore_free). */
struct keystore *fx_keystore_open(bool sqlite, struct sfs_db **ret_db);

struct fx_case {
	const char *name;
	void (*fn)(void);
};

/* Runs the n cases of suite as tap_run does, as "memory: NAME" with *sqlite false,
 * then all again as "sqlite: NAME" with *sqlite true. */
void fx_run_backends(const struct fx_case *suite, size_t n, bool *sqlite);

/* ---- a test's own ops (sfs_solver_opts.resolve) ---- */

struct tree_entry;

/* A new op of type t for v with priv, in *ret; -ENOMEM. */
int fx_op_new(const struct sfs_op_type *t, const struct sfs_spec_vertex *v, void *priv,
	      struct sfs_op **ret);
/* Stores the tree of the n entries e (tree_from_entries) in ctx's cache and makes
 * it every output of op; 0 or tree_from_entries's error. */
int fx_op_outputs(const struct sfs_op *op, struct sfs_op_ctx *ctx, const struct tree_entry *e,
		  size_t n, char (*outputs)[SFS_DIGEST_SIZE]);

#endif
