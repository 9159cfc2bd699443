/*
 * fixture_op.c — fixture.h's helpers for the ops a test plugs into the solver
 * (sfs_solver_opts.resolve).  It uses no tap.h, so the fuzz targets that run a
 * solver link it too.
 */
#include "fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../solver/op.h"
#include "tree.h"

int fx_op_new(const struct sfs_op_type *t, const struct sfs_spec_vertex *v, void *priv,
	      struct sfs_op **ret)
{
	struct sfs_op *op = calloc(1, sizeof(*op));

	if (!op)
		return -ENOMEM;
	op->type = t;
	op->v = v;
	op->priv = priv;
	*ret = op;
	return 0;
}

int fx_op_outputs(const struct sfs_op *op, struct sfs_op_ctx *ctx, const struct tree_entry *e,
		  size_t n, char (*outputs)[SFS_DIGEST_SIZE])
{
	struct tree *t = NULL;
	int r = tree_from_entries(ctx->cache->cas, e, n, &t);

	if (r < 0)
		return r;
	for (size_t o = 0; o < op->v->noutputs; o++)
		memcpy(outputs[o], t->id, SFS_DIGEST_SIZE);
	tree_free(t);
	return 0;
}
