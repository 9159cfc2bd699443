/*
 * build.c — the `build` op (BuildKit's Builder.Build; README "The spec" and
 * "How the solver decides"): its fields and normaliser.  It has no exec: the
 * solver runs it itself as a sub-build (subbuild.c), reading the inner spec
 * at `path` of its input and asking for `output` of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "specop.h"
#include "ops.h"

/* ---- the spec side: fields and normaliser (specop.h) ---- */

static const char *const build_fields[] = {"input", "path", "output", NULL};

static void build_params_free(void *params)
{
	struct sfs_build_params *b = params;

	free(b->path);
	free(b->output);
	free(b);
}

static int norm_build(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *in = json_object_get(raw, "input");
	const char *path, *out;
	size_t klen;
	int n, r;
	json_t *ph;

	if (!in)
		return sfs_norm_err(c, "", "input", "is required");
	r = sfs_norm_path(c, raw, "", "path", false, false, "solverfs.json", &path);
	if (r == 0)
		r = sfs_norm_str(c, raw, "", "output", false, "", &out);
	if (r == 0 && *out && sfs_spec_split_ref(out, &klen, &n) < 0)
		r = sfs_norm_err(c, "", "output",
				 "must be a reference \"key\" or \"key:N\" of the inner spec");
	if (r == 0)
		r = sfs_norm_ref(c, in, "", "input", "input", NULL, true, NULL, &ph);
	if (r < 0)
		return r;
	sfs_norm_put(c, op, "input", ph);
	sfs_norm_set(c, op, "path", json_string(path));
	sfs_norm_set(c, op, "output", json_string(out));
	strbuf_addf(sum, "build /%s", path);
	struct sfs_build_params *b = calloc(1, sizeof(*b));
	if (!(sfs_norm_vertex(c)->params = b))
		return -ENOMEM;
	b->path = strdup(path);
	b->output = strdup(out);
	return b->path && b->output ? 0 : -ENOMEM;
}

const struct sfs_op_type sfs_op_build = {
    .name = "build",
    .fields = build_fields,
    .normalise = norm_build,
    .params_free = build_params_free,
};

int sfs_op_build_new(const struct sfs_spec_vertex *v, struct sfs_op **ret)
{
	struct sfs_op *op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->type = &sfs_op_build;
	op->v = v;
	*ret = op;
	return 0;
}
