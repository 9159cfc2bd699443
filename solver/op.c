/*
 * op.c — the op table (BuildKit's ResolveOpFunc) and what every op shares: the
 * default cache map built from the spec's digests, and the default content
 * ("slow cache") function over result trees.
 *
 * The functions here hold no state; an op's private state lives in op->priv
 * and is used by one solver worker at a time (the solver serialises the calls
 * of one vertex), so no lock is needed.
 *
 * Content digest of a selector (docs/spec.md §4.6): for one path it is the id of the
 * subtree at that path (tree_subtree), exactly the "digest of a selected path".
 * For several paths it is "sha256:" + sha256 over "path\0subtree-id\0" for each
 * path in the selector's (sorted) order, so that the same content under the
 * same paths always gives the same key and moving a file changes it.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "strbuf.h"
#include "tree.h"
#include "ops/ops.h"

/*
 * The op table, keyed by kind: one row per enum sfs_op_kind, each the type one
 * file of solver/ops/ defines (its fields, its normaliser, its run).  Adding an
 * op means writing solver/ops/<op>.c with its struct sfs_op_type, adding its
 * kind to enum sfs_op_kind (spec.h) and its row here; the spec parser, the
 * cache map and the solver find it through this table.  The kind's normalised
 * form and its digests are then stated in spec.h.
 */
static const struct sfs_op_type *const op_types[SFS_OP_NKINDS] = {
    [SFS_OP_LOCAL] = &sfs_op_local, /* ops/local.c */
    [SFS_OP_FILE] = &sfs_op_file,   /* ops/file.c */
    [SFS_OP_EXEC] = &sfs_op_exec,   /* ops/exec.c */
    [SFS_OP_MERGE] = &sfs_op_merge, /* ops/merge.c */
    [SFS_OP_BUILD] = &sfs_op_build, /* ops/build.c */
    [SFS_OP_IMAGE] = &sfs_op_image, /* ops/image.c */
};

const struct sfs_op_type *sfs_op_type_of(enum sfs_op_kind k)
{
	return (unsigned)k < SFS_OP_NKINDS ? op_types[k] : NULL;
}

int sfs_op_resolve(const struct sfs_spec_vertex *v, struct sfs_op **ret)
{
	const struct sfs_op_type *t = sfs_op_type_of(v->kind);
	struct sfs_op *op;

	/* `build` is solved by the solver itself (a sub-build), not by an op. */
	if (!t || !t->exec)
		return -EOPNOTSUPP;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->type = t;
	op->v = v;
	*ret = op;
	return 0;
}

struct sfs_op *sfs_op_free(struct sfs_op *op)
{
	if (!op)
		return NULL;
	if (op->type && op->type->free)
		op->type->free(op);
	free(op);
	return NULL;
}

void sfs_cache_map_release(struct sfs_cache_map *m)
{
	if (!m)
		return;
	free(m->deps);
	m->deps = NULL;
	m->ndeps = 0;
	m->digest[0] = '\0';
}

int sfs_op_default_cache_map(const struct sfs_spec_vertex *v, struct sfs_cache_map *ret)
{
	struct sfs_cache_map m = {0};

	if (v->ninputs) {
		m.deps = calloc(v->ninputs, sizeof(*m.deps));
		if (!m.deps)
			return -ENOMEM;
	}
	m.ndeps = v->ninputs;
	for (size_t i = 0; i < v->ninputs; i++) {
		sfs_copy_str(m.deps[i].selector, sizeof(m.deps[i].selector),
			     v->inputs[i].selector_digest);
		m.deps[i].content_func = v->inputs[i].content_func;
	}
	sfs_dgst_to_text(&v->cache_map_digest, m.digest);
	*ret = m;
	return 0;
}

int sfs_op_cache_map(struct sfs_op *op, struct sfs_op_ctx *ctx, int index,
		     struct sfs_cache_map *ret, bool *ret_done, char **ret_msg)
{
	if (op->type->cache_map)
		return op->type->cache_map(op, ctx, index, ret, ret_done, ret_msg);
	*ret_done = true;
	int r = sfs_op_default_cache_map(op->v, ret);
	return r < 0 ? sfs_errf(ret_msg, r, "out of memory") : 0;
}

int sfs_op_content_digest(struct sfs_op *op, struct sfs_op_ctx *ctx, size_t input,
			  const char *result_id, char ret[SFS_DIGEST_SIZE], char **ret_msg)
{
	if (op->type->content_digest)
		return op->type->content_digest(op, ctx, input, result_id, ret, ret_msg);
	if (input >= op->v->ninputs)
		return sfs_errf(ret_msg, EINVAL, "%s has no input %zu", op->type->name, input);
	return sfs_op_default_content_digest(ctx, &op->v->inputs[input], result_id, ret, ret_msg);
}

static int subtree_id(struct sfs_op_ctx *ctx, const struct tree *t, const char *path,
		      char ret[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct tree *sub = NULL;
	int r;

	if (!tree_find(t, path))
		return sfs_errf(ret_msg, ENOENT, "selected path \"%s\" not found in %s", path,
				t->id);
	r = tree_subtree(ctx->cache->cas, t, path, &sub);
	if (r < 0)
		return sfs_errf(ret_msg, r, "subtree \"%s\" of %s: %s", path, t->id, strerror(-r));
	memcpy(ret, sub->id, SFS_DIGEST_SIZE);
	tree_free(sub);
	return 0;
}

int sfs_op_default_content_digest(struct sfs_op_ctx *ctx, const struct sfs_spec_input *in,
				  const char *result_id, char ret[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct tree *t = NULL;
	struct sfs_sha256 h;
	char id[SFS_DIGEST_SIZE], hex[SFS_HEX_SIZE];
	const char *p, *end;
	int r, npaths = 0;

	if (!in->selector || in->selector_len == 0) {
		sfs_copy_str(ret, SFS_DIGEST_SIZE, result_id);
		return 0;
	}
	if ((r = sfs_op_load_tree(ctx, result_id, &t, ret_msg)) < 0)
		return r;
	end = in->selector + in->selector_len;
	for (p = in->selector; p < end; p += strlen(p) + 1)
		npaths++;
	if (npaths == 1) {
		r = subtree_id(ctx, t, in->selector, ret, ret_msg);
		tree_free(t);
		return r;
	}
	if ((r = sfs_sha256_init(&h)) < 0) {
		tree_free(t);
		return sfs_errf(ret_msg, r, "sha256: %s", strerror(-r));
	}
	for (p = in->selector; p < end; p += strlen(p) + 1) {
		if ((r = subtree_id(ctx, t, p, id, ret_msg)) < 0) {
			sfs_sha256_abort(&h);
			tree_free(t);
			return r;
		}
		sfs_sha256_update(&h, p, strlen(p) + 1);
		sfs_sha256_update(&h, id, strlen(id) + 1);
	}
	sfs_sha256_final_hex(&h, hex);
	memcpy(ret, "sha256:", 7);
	memcpy(ret + 7, hex, SFS_HEX_SIZE); /* with its NUL */
	tree_free(t);
	return 0;
}

/* ---- helpers for the ops (ops/ops.h) ---- */

int sfs_op_load_tree(struct sfs_op_ctx *ctx, const char *id, struct tree **ret, char **ret_msg)
{
	int r = tree_load(ctx->cache->cas, id, ret);

	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot load result %s: %s", id, strerror(-r));
	return 0;
}

void sfs_op_logf(struct sfs_op_ctx *ctx, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (!ctx->log)
		return;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	strbuf_addch(&sb, '\n');
	if (!sb.oom)
		ctx->log(ctx->log_arg, 2, sb.buf, sb.len);
	strbuf_release(&sb);
}

char *sfs_path_parent(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	return strndup(path, (size_t)(slash - path));
}

const char *sfs_path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, ".") == 0)
		return strcmp(path, ".") == 0 ? NULL : path;
	if (strncmp(path, dir, n) != 0 || path[n] != '/')
		return NULL;
	return path + n + 1;
}
