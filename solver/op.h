/*
 * op.h — Op: the executable form of a vertex (BuildKit's solver.Op).
 *
 * sfs_op_resolve() is the ResolveOpFunc: it makes an op for a spec vertex.  The
 * solver calls, for one active vertex:
 *   cache_map(i) for i = 0, 1, ... one at a time until done (only roots may
 *     return more than one map, docs/semantics.md §1.9);
 *   exec(inputs) at most once, with one result id per input, returning one
 *     result id per output;
 *   content_digest(i, result) for inputs with a content function (slow cache).
 * Results are result tree ids ("sha256:<hex>") in the content store.
 *
 * Ops run on solver worker threads and may block (file I/O, child processes).
 * They must return promptly with -ECANCELED once sfs_op_cancelled(ctx) is true,
 * and kill what they started.
 */
#ifndef SFS_OP_H
#define SFS_OP_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cache.h"
#include "spec.h"

struct sfs_cache_map_dep {
	char selector[SFS_DIGEST_SIZE]; /* "" or "sha256:<hex>" */
	bool content_func;
};

struct sfs_cache_map {
	char digest[SFS_DIGEST_SIZE];
	size_t ndeps; /* == vertex ninputs */
	struct sfs_cache_map_dep *deps;
};
void sfs_cache_map_release(struct sfs_cache_map *m);

enum sfs_sandbox { SFS_SANDBOX_NONE, SFS_SANDBOX_BWRAP };

/* What a running op and whoever cancels it share: one a vertex, which outlives
 * each call (the call's sfs_op_ctx is made by the caller for that call). */
struct sfs_op_signal {
	atomic_bool cancelled;
	/* An exec registers its process group here so cancel can kill it at once. */
	atomic_int pgid;
};

/* What an op may use while it runs, for one call: the caller's, valid until the
 * call returns (an op keeps no pointer to it past that). */
struct sfs_op_ctx {
	struct sfs_cache *cache;
	uid_t uid; /* the credentials of the job that asked (local reads, exec) */
	gid_t gid;
	enum sfs_sandbox sandbox;
	const char *mountpoint; /* hidden from execs; may be NULL */
	size_t log_limit;	/* bytes of log kept per vertex */
	uint64_t output_limit;	/* bytes of one exec output tree (0: none) */
	/* What an image's layers may cost (the import_* mount options); NULL: the
	 * defaults of cache/import.h. */
	const struct cache_import_limits *import_limits;
	/* The mount's registry client options (cache/registry.h); NULL: defaults. */
	const struct registry_opts *registry;
	/* Appends output of the op to the vertex log (stream 1 stdout, 2 stderr). */
	void (*log)(void *arg, int stream, const char *data, size_t len);
	/* Warnings (e.g. skipped special files) also go to the log. */
	void *log_arg;
	/* A transfer's progress (BuildKit's statuses: "pull sha256:...", bytes so
	 * far of total, done at its end), on log_arg's vertex; may be NULL. */
	void (*status)(void *arg, const char *id, uint64_t current, uint64_t total, bool done);
	struct sfs_op_signal *sig; /* NULL: the call cannot be cancelled */
};

static inline bool sfs_op_cancelled(const struct sfs_op_ctx *ctx)
{
	return ctx->sig && atomic_load(&ctx->sig->cancelled);
}

/* Tells whoever cancels the call the process group it runs (0: none). */
static inline void sfs_op_set_pgid(const struct sfs_op_ctx *ctx, int pgid)
{
	if (ctx->sig)
		atomic_store(&ctx->sig->pgid, pgid);
}

struct sfs_op;
struct cache_import_limits;
struct registry_opts;
struct sfs_norm; /* specop.h */
struct strbuf;

/*
 * One op kind, both sides: how its vertex is read from a spec (the normaliser,
 * pass 1 of sfs_spec_parse) and how it runs.  The table in op.c holds one per
 * enum sfs_op_kind; an op is one file in solver/ops/ defining its type.
 */
struct sfs_op_type {
	const char *name; /* the spec's "op" */

	/* ---- the run side; exec NULL: solved by the solver itself (build) ---- */
	/* NULL: sfs_op_default_cache_map, one map, done */
	int (*cache_map)(struct sfs_op *op, struct sfs_op_ctx *ctx, int index,
			 struct sfs_cache_map *ret, bool *ret_done, char **ret_msg);
	/* outputs: array of v->noutputs digests to fill. */
	int (*exec)(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		    size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg);
	/* The content ("slow") key of input i given its result: the result id for a
	 * whole input, the subtree id of the selected paths otherwise.  NULL:
	 * sfs_op_default_content_digest. */
	int (*content_digest)(struct sfs_op *op, struct sfs_op_ctx *ctx, size_t input,
			      const char *result_id, char ret[SFS_DIGEST_SIZE], char **ret_msg);
	void (*free)(struct sfs_op *op);

	/* ---- the spec side (specop.h) ---- */
	const char *const *fields; /* its own fields of a vertex object; NULL-terminated */
	/* Validates raw, writes the normalised op (spec.h) and the progress summary
	 * and sets the vertex's params (and noutputs, timeout if it has them). */
	int (*normalise)(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *summary);
	/* Its outputs, from the raw vertex before anything is validated (refs to it
	 * are checked against this); NULL: 1. */
	size_t (*noutputs)(json_t *raw);
	/* Members of the normalised op its cache map leaves out; NULL: none. */
	bool (*map_skip)(const json_t *op, const json_t *obj, const char *key);
	void (*params_free)(void *params); /* NULL: free() */
};

struct sfs_op {
	const struct sfs_op_type *type;
	const struct sfs_spec_vertex *v; /* owned by a spec the solver keeps alive */
	void *priv;
};

/* The type of kind k, NULL for none. */
const struct sfs_op_type *sfs_op_type_of(enum sfs_op_kind k);

/* A new op for v; -EOPNOTSUPP for a type the solver runs itself (build). */
int sfs_op_resolve(const struct sfs_spec_vertex *v, struct sfs_op **ret);

/* The op's CacheMap and content function: its type's, or when the type has
 * none (file, exec, merge, build) the defaults below. */
int sfs_op_cache_map(struct sfs_op *op, struct sfs_op_ctx *ctx, int index,
		     struct sfs_cache_map *ret, bool *ret_done, char **ret_msg);
int sfs_op_content_digest(struct sfs_op *op, struct sfs_op_ctx *ctx, size_t input,
			  const char *result_id, char ret[SFS_DIGEST_SIZE], char **ret_msg);
struct sfs_op *sfs_op_free(struct sfs_op *op); /* accepts NULL */

/* The one cache map of file, exec, merge and build: from the spec's digests. */
int sfs_op_default_cache_map(const struct sfs_spec_vertex *v, struct sfs_cache_map *ret);
/* The default content function: result id for a whole input, else the id of the
 * subtree made of the selected paths. */
int sfs_op_default_content_digest(struct sfs_op_ctx *ctx, const struct sfs_spec_input *in,
				  const char *result_id, char ret[SFS_DIGEST_SIZE], char **ret_msg);

extern const struct sfs_op_type sfs_op_local;
extern const struct sfs_op_type sfs_op_file;
extern const struct sfs_op_type sfs_op_exec;
extern const struct sfs_op_type sfs_op_merge;
extern const struct sfs_op_type sfs_op_build;
extern const struct sfs_op_type sfs_op_image;

/* Probes whether bubblewrap works on this host (at mount). */
bool sfs_sandbox_probe(void);

#endif
