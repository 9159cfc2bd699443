/*
 * spec.h — the graph spec of docs/spec.md: parsing, validation, normalisation and
 * the digests of docs/spec.md §4.
 *
 * sfs_spec_parse() turns the JSON a user wrote into an immutable sfs_spec whose
 * vertices are in topological order (every input before its user).  For each
 * vertex it computes:
 *   - the normalised op JSON (every optional field present with its default,
 *     refs written "sha256:<hex>:<N>", `data` folded into `data_base64`), and the
 *     canonical bytes of its hashed fields (what `vertices/<hex>/op` shows);
 *   - the vertex digest = "sha256:" + sha256(canonical bytes);
 *   - the cache map digest = sha256 of the same JSON with every ref replaced by
 *     its input index and every `selector` and `session` removed;
 *   - Inputs() in the order of docs/spec.md §4.4 and, per input, the selector: the
 *     sorted, NUL-joined paths the input is used through ("" for a whole input)
 *     and its digest "sha256:<hex>" (empty for a whole input).
 *
 * Each op's part of this (its fields, normaliser, output count, what its cache
 * map leaves out) is its type's, in solver/ops/<op>.c, found through the table
 * in op.c; the shapes are stated here for all of them.
 *
 * Every rejection returns -EINVAL (or -EFBIG/-E2BIG for limits) with a message
 * naming the vertex key and field: `vertex "cc": field "args": must be a
 * non-empty array of strings`.  Nested fields are named by their path
 * (`actions[2].mkfile.mode`, `mounts[0].dest`); job-level fields without a vertex
 * (`field "outputs[0]": no vertex "x"`, `field "export.mode": ...`).
 *
 * Normalised op objects (the hashed bytes; keys sorted in the canonical form):
 *   local  {op, path, include, exclude, session}   path: absolute host path,
 *          lexically cleaned ("//", "." and a trailing "/" dropped; ".." kept);
 *          session: the job number as a decimal string.
 *   file   {op, base, actions}   base: a ref or null (the empty tree); each action is
 *          {"<name>": {...}} with every field present:
 *            mkdir {path, mode "0755", parents false}
 *            mkfile {path, mode "0644", data_base64 ""}  (`data` is folded into
 *              data_base64, canonical padded base64 of the bytes, so both hash alike)
 *            copy {from, src "", dest "", include [], exclude []}  ("" = the root)
 *            rm {path, allow_not_found false}   symlink {target, path}
 *   exec   {op, args, env {}, cwd "", mounts, network false}; each mount is
 *          {dest, input (ref or null), selector "", readonly false, output false};
 *          dest "" mounts at the work dir itself.  `timeout` is not hashed.
 *   merge  {op, inputs}
 *   build  {op, input, path "solverfs.json", output ""}  (output "" = the inner
 *          spec's first output; otherwise "key" or "key:N" of the inner spec).
 * Modes are normalised to 4 octal digits ("755" -> "0755").  Never hashed: name,
 * description, ignore_cache, export_cache, cache_from, timeout.
 *
 * Refs in v->op are "sha256:<hex of the input's digest>:<N>".  The cache map JSON is
 * v->op with each ref replaced by its input index (a JSON integer), the mounts'
 * "selector" keys and local's "session" removed.
 *
 * Inputs(): file: base, then copy `from` refs in action order; a ref already seen
 * (same "sha256:<hex>:<N>" text, so two keys with identical content count as one)
 * reuses its input.  exec: one input per mount with an input, in mount order (no
 * sharing).  merge: inputs in order (no sharing).  build: input.  Ops can thus
 * recompute the index of a ref from v->op alone.
 * Selector of an input: the sorted, deduplicated, NUL-joined paths it is used
 * through (exec mount selector, copy src); if any use is whole (file base, copy
 * with src "", mount without selector) the input is whole: selector "" and
 * selector_digest "".  content_func is false only for an exec output mount that
 * starts from its input.
 * noutputs: local, file, merge, build 1; exec the number of mounts with output
 * true (0 is allowed; any ref to a missing output is rejected).
 *
 * Order: Kahn's algorithm, ready vertices taken in bytewise key order, so equal
 * specs give equal orders.  Vertices with identical digests are both kept.
 *
 * summary (progress): "local <path>"; the exec args joined by spaces;
 * "file mkdir /a, mkfile /a/b, copy /src /dest, rm /p, symlink /p -> target"
 * (the first 8 actions, then ", ... (N more)"; just "file" without actions);
 * "merge N inputs"; "build /<path>".
 *
 * Limits (ctx->limits, 0 = default): spec bytes -> -EFBIG; vertices -> -E2BIG;
 * every path, glob, name and symlink target longer than max_path -> -EINVAL
 * (components longer than 255 bytes too); mkfile data larger than max_inline
 * after decoding -> -EFBIG.
 *
 * Host paths (local.path, cache_from) must be absolute; one that resolves into
 * ctx->mountpoint (symlinks followed as far as the path exists) is rejected with
 * "path is inside the solverfs mount".  The walk compares every prefix with the
 * mount point before lstat'ing it, so it never stats inside the mount;
 * ctx->mountpoint must therefore be canonical (realpath taken before mounting).
 *
 * Canonical JSON (sfs_canonical_json): compact, keys sorted bytewise, UTF-8 kept
 * as is, strings escaped as RFC 8785 (\u00xx in lowercase hex for the control
 * characters without a short escape; jansson's json_dumps writes uppercase, so
 * canon.c has its own writer), integers in decimal.
 */
#ifndef SFS_SPEC_H
#define SFS_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dgst.h"
#include "sha256.h"

/* The op kinds; each one's type (fields, normaliser, run) is a row of the table
 * in op.c. */
enum sfs_op_kind {
	SFS_OP_LOCAL,
	SFS_OP_FILE,
	SFS_OP_EXEC,
	SFS_OP_MERGE,
	SFS_OP_BUILD,
	SFS_OP_IMAGE,
	SFS_OP_NKINDS
};

enum sfs_export_mode { SFS_EXPORT_NONE, SFS_EXPORT_MIN, SFS_EXPORT_MAX, SFS_EXPORT_REMOTE_ONLY };
enum sfs_export_form { SFS_FORM_IMAGE, SFS_FORM_MANIFEST_LIST };

struct sfs_ref {
	size_t vertex; /* index into spec->v */
	int output;
};

struct sfs_spec_input {
	struct sfs_ref ref;
	char *selector; /* sorted NUL-joined paths; "" for a whole input (shared: never freed) */
	size_t selector_len;
	/* "" for a whole input; else in the selector's block, after its paths (64
	 * bytes an input less than an array: most inputs are whole) */
	const char *selector_digest;
	bool content_func; /* false for an exec output mount that starts from this input */
};

struct sfs_spec_vertex {
	char *key;  /* the name in "vertices" */
	char *name; /* label; default the key (then the same string as key) */
	enum sfs_op_kind kind;
	/* normalised op object (hashed fields only; refs as "sha256:<hex>:<N>"), only
	 * while parsing: NULL in a parsed spec, whose vertices keep just op_bytes (a
	 * tree would cost ~1 KiB a vertex).  Ops read their params instead; local's
	 * cache map hashes the op itself (sfs_spec_vertex_op). */
	json_t *op;
	char *op_bytes; /* canonical JSON of op: exactly the hashed bytes */
	size_t op_len;
	char digest[SFS_DIGEST_SIZE];
	/* of the default cache map (the op with refs as input indexes): its bytes,
	 * spelt "sha256:<hex>" by the map (sfs_op_default_cache_map) */
	struct sfs_dgst cache_map_digest;
	size_t ninputs;
	struct sfs_spec_input *inputs; /* Inputs() order */
	size_t noutputs;
	/* VertexOptions, not hashed */
	bool ignore_cache;
	int export_cache;    /* -1 absent, 0, 1 */
	char **cache_from;   /* NULL-terminated, may be NULL */
	json_t *description; /* object or NULL */
	int timeout;	     /* exec: seconds, 0 = none */
	char *summary; /* the progress summary: "local /p", args joined, "file mkdir ...", ... */
	/* The op's fields, read once by its normaliser into its own typed struct
	 * (solver/ops/<op>.c); freed by its type's params_free. */
	void *params;
};

struct sfs_spec {
	int refs; /* atomic; sfs_spec_ref / sfs_spec_free */
	size_t n;
	struct sfs_spec_vertex *v; /* topological order */
	size_t noutputs;
	struct sfs_ref *outputs;
	char **output_refs; /* as written by the user, normalised: "key" or "key:N" */
	enum sfs_export_mode export_mode;
	enum sfs_export_form export_form;
	char *export_to;   /* export.to: "docker://..." to push to, or NULL */
	char **cache_from; /* NULL-terminated, may be NULL */
	bool ignore_cache;
};

struct sfs_spec_limits {
	size_t max_bytes;    /* default 16 MiB */
	size_t max_vertices; /* default 100000 */
	size_t max_path;     /* default 4096 */
	size_t max_inline;   /* default 16 MiB: mkfile data after decoding */
	size_t max_name;     /* default 1024: a vertex's display name */
};

struct sfs_spec_ctx {
	uint64_t session;		      /* the job number, hashed into local vertices */
	const struct sfs_spec_limits *limits; /* NULL: defaults */
	bool allow_local;		      /* false inside build sub-specs */
	bool allow_network;
	/* Host paths resolving into this prefix are rejected (the mount point); may be NULL. */
	const char *mountpoint;
};

int sfs_spec_parse(const char *buf, size_t len, const struct sfs_spec_ctx *ctx,
		   struct sfs_spec **ret, char **ret_msg);
/* Specs are reference counted: the solver's shared graph keeps the spec whose
 * vertex won a digest alive.  sfs_spec_free drops one reference. */
struct sfs_spec *sfs_spec_ref(struct sfs_spec *s);
struct sfs_spec *sfs_spec_free(struct sfs_spec *s); /* accepts NULL, returns NULL */

/* Canonical JSON (compact, sorted keys) of any value; malloc'd, NUL-terminated. */
char *sfs_canonical_json(const json_t *v, size_t *ret_len);

/* The same, appended to sb (sticky oom, strbuf.h) with hooks (h may be NULL).
 * hole (may be NULL): return true to write nothing for value, a hole the caller
 * fills later; at is where in sb it would have started.  skip (may be NULL):
 * return true to leave the member key of object obj out.  (Added by the spec
 * module.) */
struct strbuf;
struct sfs_canon_hooks {
	bool (*hole)(void *arg, const json_t *value, size_t at);
	bool (*skip)(void *arg, const json_t *obj, const char *key);
	void *arg;
};
void sfs_canonical_json_add(struct strbuf *sb, const json_t *v, const struct sfs_canon_hooks *h);

/* The normalised op object of v, parsed from v->op_bytes: a new reference the
 * caller decrefs; NULL when out of memory. */
json_t *sfs_spec_vertex_op(const struct sfs_spec_vertex *v);

/* "key" for output 0 else "key:N"; malloc'd.  For paths, "key@N". */
char *sfs_ref_string(const struct sfs_spec *s, struct sfs_ref r);

const char *sfs_op_kind_name(enum sfs_op_kind k);

#endif
