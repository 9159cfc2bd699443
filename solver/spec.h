/*
 * spec.h — the graph spec of DESIGN.md §2: parsing, validation, normalisation and
 * the digests of DESIGN.md §3.
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
 *   - Inputs() in the order of DESIGN.md §3 and, per input, the selector: the
 *     sorted, NUL-joined paths the input is used through ("" for a whole input)
 *     and its digest "sha256:<hex>" (empty for a whole input).
 *
 * Every rejection returns -EINVAL (or -EFBIG/-E2BIG for limits) with a message
 * naming the vertex key and field: `vertex "cc": field "args": must be a
 * non-empty array of strings`.
 */
#ifndef SFS_SPEC_H
#define SFS_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../cache/sha256.h"

enum sfs_op_kind { SFS_OP_LOCAL, SFS_OP_FILE, SFS_OP_EXEC, SFS_OP_MERGE, SFS_OP_BUILD };

enum sfs_export_mode { SFS_EXPORT_NONE, SFS_EXPORT_MIN, SFS_EXPORT_MAX, SFS_EXPORT_REMOTE_ONLY };
enum sfs_export_form { SFS_FORM_IMAGE, SFS_FORM_MANIFEST_LIST };

struct sfs_ref {
	size_t vertex; /* index into spec->v */
	int output;
};

struct sfs_spec_input {
	struct sfs_ref ref;
	char *selector;    /* sorted NUL-joined paths; "" for a whole input */
	size_t selector_len;
	char selector_digest[SFS_DIGEST_SIZE]; /* "" for a whole input */
	bool content_func; /* false for an exec output mount that starts from this input */
};

struct sfs_spec_vertex {
	char *key;  /* the name in "vertices" */
	char *name; /* label; default the key */
	enum sfs_op_kind kind;
	json_t *op; /* normalised op object (hashed fields only); refs as "sha256:<hex>:<N>" */
	char *op_bytes; /* canonical JSON of op: exactly the hashed bytes */
	size_t op_len;
	char digest[SFS_DIGEST_SIZE];
	char cache_map_digest[SFS_DIGEST_SIZE];
	size_t ninputs;
	struct sfs_spec_input *inputs; /* Inputs() order */
	size_t noutputs;
	/* VertexOptions, not hashed */
	bool ignore_cache;
	int export_cache; /* -1 absent, 0, 1 */
	char **cache_from; /* NULL-terminated, may be NULL */
	json_t *description; /* object or NULL */
	int timeout; /* exec: seconds, 0 = none */
	char *summary; /* the progress summary: "local /p", args joined, "file mkdir ...", ... */
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
	char **cache_from; /* NULL-terminated, may be NULL */
	bool ignore_cache;
};

struct sfs_spec_limits {
	size_t max_bytes;    /* default 16 MiB */
	size_t max_vertices; /* default 100000 */
	size_t max_path;     /* default 4096 */
	size_t max_inline;   /* default 16 MiB: mkfile data after decoding */
};

struct sfs_spec_ctx {
	uint64_t session; /* the job number, hashed into local vertices */
	const struct sfs_spec_limits *limits; /* NULL: defaults */
	bool allow_local;  /* false inside build sub-specs */
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

/* "key" for output 0 else "key:N"; malloc'd.  For paths, "key@N". */
char *sfs_ref_string(const struct sfs_spec *s, struct sfs_ref r);

const char *sfs_op_kind_name(enum sfs_op_kind k);

#endif
