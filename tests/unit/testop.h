/*
 * testop.h — BuildKit's scheduler test vertices (docs/semantics.md §9.1) on top of
 * the solverfs solver, for tests/unit/test_scheduler.c.
 *
 * A test vertex (struct tvtx) is what BuildKit's vtx()/vtxConst()/vtxSum()/
 * vtxAdd()/vtxSubBuild() return: an identity `name` (BuildKit's digest =
 * sha256(name)), a cache key seed, inputs with per-input selector and content
 * ("slow") function, a value, hooks and delays.  tv_spec() writes a graph of
 * them as a JSON spec (docs/spec.md): every vertex is an `exec` vertex whose
 * args are [name] (so the vertex digest follows the name, as in BuildKit, plus
 * the inputs, which BuildKit leaves out), whose `name` label is "t<id>" (the
 * behaviour: not hashed, so two objects with one name share a digest and the
 * first loaded wins, as in BuildKit), and whose inputs are mounts: a plain
 * mount for an input with a content function, an output mount starting from
 * the input for one without (the spec has no other way to say "no content
 * function"; such a vertex therefore has extra outputs, which nobody asks for).
 * A sub-build vertex is a `build` vertex over a carrier vertex whose result
 * holds the inner spec.
 *
 * The solver is given tv_resolve, which finds the tvtx by the label and
 * returns an op that behaves like BuildKit's test op: CacheMap digest
 * sha256("seed:" + seed), deps with the selector digests sha256(sel), Exec
 * writes a result tree holding "value", content digest = sha256(value).
 *
 * Results are trees in the content store: equal values give equal result ids.
 *
 * Threads: ops run on solver worker threads; counters are atomics; the
 * registry is written only by the test thread between builds.
 */
#ifndef SFS_TESTOP_H
#define SFS_TESTOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "solver.h"
#include "fixture.h"

#define TV_MAX_IN 8
#define TV_MAX_SEEDS 4

struct tvtx;

/* BuildKit's cachePreFunc / execPreFunc: 0 or -errno with *ret_msg. */
typedef int (*tv_hook)(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg);

struct tv_counters {
	atomic_int cache; /* CacheMap(0) calls */
	atomic_int exec;  /* Exec calls */
};

struct tv_in {
	struct tvtx *v;
	int output;
	const char *sel; /* selector = sha256(sel) when set */
	bool slow;	 /* content function digestFromResult */
};

struct tv_opt {
	const char *name;		 /* default: "<seed>-<unique>" or a unique id */
	const char *seed;		 /* cacheKeySeed; default unique */
	const char *seeds[TV_MAX_SEEDS]; /* cacheKeySeeds: further cache maps (roots) */
	const char *value;
	struct tv_in in[TV_MAX_IN]; /* until .v == NULL */
	bool ignore_cache;
	tv_hook cache_pre, exec_pre;
	void *cache_arg, *exec_arg;
	int cache_delay_ms, exec_delay_ms;
	const char *slow_err; /* content functions fail with this message */
};

enum tv_kind { TV_VTX, TV_CONST, TV_SUM, TV_ADD, TV_SUBBUILD, TV_CARRIER };

struct tvtx {
	int id;
	enum tv_kind kind;
	struct tv_opt o; /* strings owned: name, seed, value */
	size_t nin;
	int n;		      /* const / sum / add */
	struct tvtx *sub;     /* TV_SUBBUILD: inner graph */
	struct tvtx *carrier; /* TV_SUBBUILD: the input holding the inner spec */
	struct tv_counters *cnt;
	atomic_int later_maps; /* CacheMap(i > 0) calls: BuildKit's `called` */
	atomic_int slow_calls;
};

struct tvtx *vtx(struct tv_opt o);
struct tvtx *vtx_const(int n, struct tv_opt o);
struct tvtx *vtx_sum(int n, struct tv_opt o);
struct tvtx *vtx_add(int n, struct tv_opt o);
struct tvtx *vtx_subbuild(struct tvtx *inner, struct tv_opt o);

/* Gives v and its transitive inputs (not sub-build graphs) counter c, zeroed. */
void tv_setup_counters(struct tvtx *v, struct tv_counters *c);
/* The identity name of test vertex id (for messages). */
const char *tv_name(long id);
/* Frees every test vertex made so far (end of a test). */
void tv_reset(void);

/* The JSON spec building output 0 of each of outs[0..n); malloc'd. */
char *tv_spec(struct tvtx *const *outs, size_t n);
/* The same with the job's "export": {"mode": mode} ("min", "max"; NULL: none). */
char *tv_spec_export(struct tvtx *const *outs, size_t n, const char *mode);

int tv_resolve(void *arg, const struct sfs_spec_vertex *v, struct sfs_op **ret);

/* Hooks. */
struct tv_block { /* blockingFuncion(n): returns once called n times */
	atomic_int left;
};
void tv_block_init(struct tv_block *b, int n);
int tv_block_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg);

struct tv_gate { /* blocks until opened (keeps a job running) */
	atomic_bool open;
	atomic_int entered;
};
int tv_gate_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg);
/* Returns the error message arg (a const char *). */
int tv_fail_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg);
/* Waits (ctx-aware) until cancelled, then returns -ECANCELED. */
bool tv_wait_cancelled(struct sfs_op_ctx *ctx, int ms);
void tv_sleep_ms(int ms);

/* The solver under test (fixture.h) with 8 workers, since blockers and blocking
 * functions hold workers, and tv_resolve; tv_env_opts.after is tv_reset.  A test runs
 * on one with RUN_ENV(test, &tv_env_opts), or opens its own with tv_env_open and
 * closes it with fx_env_close. */
extern const struct fx_env_opts tv_env_opts;
void tv_env_open(struct fx_env *e);
uint64_t tv_job_new(struct fx_env *e);
void tv_job_submit(struct fx_env *e, uint64_t id, const char *spec);
/* Builds output 0 of each outs[] in a new job (no wait); returns the job. */
uint64_t tv_start(struct fx_env *e, struct tvtx *const *outs, size_t n);
uint64_t tv_start_export(struct fx_env *e, struct tvtx *const *outs, size_t n, const char *mode);
/* Waits up to 20 s for the job to end; info must be released. */
bool tv_wait(struct fx_env *e, uint64_t id, struct sfs_job_info *info);
/* Waits up to 20 s until output k of job id has a result; *ret_value malloc'd. */
bool tv_wait_output(struct fx_env *e, uint64_t id, size_t k, char **ret_value);
/* Builds target in a new job and waits: the value of its output, or NULL on
 * failure (then *ret_err, when not NULL, gets the job's error, malloc'd). */
char *tv_build(struct fx_env *e, struct tvtx *target, char **ret_err);
/* tv_build with the job's cache export in mode ("min", "max"; NULL: none). */
char *tv_build_export(struct fx_env *e, struct tvtx *target, const char *mode, char **ret_err);
extern uint64_t tv_last_job; /* the job of the last tv_build */
/* The "value" file of a result tree; malloc'd, NULL if none. */
char *tv_value(struct fx_env *e, const char *result_id);
uint64_t tv_loads(struct fx_env *e);
/* Makes every later load of a stored result fail (BuildKit's forceFail) by
 * removing the blobs of these values from the store; exec puts them back. */
void tv_break_values(struct fx_env *e, const char *const *values, size_t n);
/* BuildKit's forceFail: while on, every load of a stored result fails (the env idle
 * when switched; off again before it closes). */
void tv_force_fail_loads(struct fx_env *e, bool on);

/*
 * A job's cache export (STATE_DIR/exports/<job>, form "image"), counted as
 * BuildKit's testExporterTarget does after normalize(): records deduplicated
 * by digest (the copies' results and links are pooled), the records that
 * carry a result, and the unique source records linked into the top record
 * (the unlinked record with the most links).  Records whose digest is in skip
 * (NULL-terminated, may be NULL) are left out, e.g. a blocker output's root.
 */
struct tv_export {
	int records;
	int with_results;
	int top_links; /* -1 when every record is linked from another */
	char top[SFS_DIGEST_SIZE];
};
int tv_export_records(struct fx_env *e, uint64_t job, const char *const *skip,
		      struct tv_export *ret, char **ret_msg);
/* The unique source records linked into the record digest of job's export and
 * whether it carries a result; -ENOENT when the export lacks it. */
int tv_export_record(struct fx_env *e, uint64_t job, const char *digest, int *ret_links,
		     bool *ret_result, char **ret_msg);
/* Prints the records of job's export (for a failing check; always when the
 * environment has TV_DUMP_EXPORT). */
void tv_export_dump(struct fx_env *e, uint64_t job);
/* The record digest of a root key: sha256("<sha256("seed:"+seed)>@output"). */
void tv_root_record(const char *seed, int output, char ret[SFS_DIGEST_SIZE]);

#endif
