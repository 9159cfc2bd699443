/*
 * merge.c — the `merge` op: the union of its input trees (README "The spec").
 *
 * Inputs are laid over each other in order on a wtree: for the same path a later
 * input wins; two dirs merge recursively (the later one's mode wins); a file
 * replacing a dir removes everything under it.  No file is read or copied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "specop.h"
#include "ops.h"

/* Lays t over w. */
static int merge_tree(struct wtree *w, const struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *te = &t->entries[i];
		struct wt_ent e = {
		    .type = te->type, .mode = te->mode, .size = te->size, .from_input = true};
		struct wt_ent *cur = wtree_get(w, te->path);
		int r;

		if (cur && cur->type == 'd' && te->type != 'd')
			wtree_rm(w, te->path);
		memcpy(e.hex, te->hex, sizeof(e.hex));
		/* Entries are sorted, so a parent replaced by this tree's dir came first. */
		if ((r = wtree_put(w, te->path, &e)) < 0)
			return r;
	}
	return 0;
}

static int merge_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		      size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct wtree w;
	struct tree *out = NULL;
	int r;

	if ((r = wtree_init(&w)) < 0)
		return sfs_errf(ret_msg, r, "out of memory");
	for (size_t i = 0; i < ninputs && r == 0; i++) {
		struct tree *t = NULL;

		if (sfs_op_cancelled(ctx)) {
			r = sfs_errf(ret_msg, ECANCELED, "cancelled");
			break;
		}
		if ((r = sfs_op_load_tree(ctx, inputs[i], &t, ret_msg)) < 0)
			break;
		if ((r = merge_tree(&w, t)) < 0)
			sfs_errf(ret_msg, r, "merging input %zu: %s", i, strerror(-r));
		tree_free(t);
	}
	if (r == 0 && (r = wtree_build(&w, ctx->cache->cas, &out)) < 0)
		sfs_errf(ret_msg, r, "storing the result: %s", strerror(-r));
	if (r == 0)
		memcpy(outputs[0], out->id, SFS_DIGEST_SIZE);
	tree_free(out);
	wtree_release(&w);
	return r;
}

/* ---- the spec side: fields and normaliser (specop.h) ---- */

static const char *const merge_fields[] = {"inputs", NULL};

static int norm_merge(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *ins = json_object_get(raw, "inputs"), *in;
	char fp[32];
	size_t i;

	if (!ins)
		return sfs_norm_err(c, "", "inputs", "is required");
	if (!json_is_array(ins) || json_array_size(ins) < 2)
		return sfs_norm_err(c, "", "inputs", "must be an array of 2 or more references");
	json_t *list = json_array();
	if (!sfs_norm_ok(c, list))
		return -ENOMEM;
	sfs_norm_put(c, op, "inputs", list);
	if (sfs_norm_oom(c))
		return -ENOMEM;
	json_array_foreach(ins, i, in)
	{
		json_t *ph;
		sfs_norm_elem_path(fp, sizeof(fp), "inputs", i, NULL);
		int r = sfs_norm_ref(c, in, fp, "", "inputs", NULL, true, NULL, &ph);
		if (r < 0)
			return r;
		sfs_norm_put(c, list, NULL, ph);
	}
	strbuf_addf(sum, "merge %zu inputs", json_array_size(ins));
	return 0;
}

const struct sfs_op_type sfs_op_merge = {
    .name = "merge",
    .fields = merge_fields,
    .normalise = norm_merge,
    .exec = merge_exec,
};
