/*
 * subbuild.c — running op `build` (BuildKit's Builder.Build, docs/semantics.md
 * §1.10); its fields and normaliser are in ops/build.c.
 *
 * A build vertex is cached like any other (its one cache map comes from the
 * spec).  When it must execute, its "exec" reads the inner spec from its input
 * tree, parses it (no `local` ops, no network), loads the inner vertices into
 * the shared graph as children of the build vertex — they report progress to
 * the build vertex's jobs and live while it does — and asks for the named
 * output.  When that output settles, the build vertex finishes with that result
 * (saved under its own key) or with the inner failure.  No worker thread waits
 * meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tree.h"
#include "internal.h"
#include "ops/ops.h"

/* Reads the inner spec file from the build vertex's input result. */
static int read_inner(struct sfs_solver *s, struct vstate *vs, const char *path, char **ret_buf,
		      size_t *ret_len, char **ret_msg)
{
	const char *result = vs->inputs[0]->edges[vs->v->inputs[0].ref.output].result;
	struct tree *t = NULL;
	int r = tree_load(s->cache->cas, result, &t);
	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot load the input tree %s: %s", result,
				strerror(-r));
	const struct tree_entry *e = tree_find(t, path);
	if (!e)
		r = sfs_errf(ret_msg, -ENOENT, "%s: not found in the input", path);
	else if (e->type != 'f')
		r = sfs_errf(ret_msg, -EINVAL, "%s: not a regular file", path);
	else if (e->size > s->o.limits.max_bytes)
		r = sfs_errf(ret_msg, -EFBIG, "%s: %llu bytes, over the spec limit", path,
			     (unsigned long long)e->size);
	else
		r = cas_read_all(s->cache->cas, e->hex, ret_buf, ret_len);
	tree_free(t);
	return r;
}

/* The inner ref named by the build op's `output` ("key" or "key:N"). */
static int find_output(const struct sfs_spec *sp, const char *ref, struct sfs_ref *ret,
		       char **ret_msg)
{
	if (!*ref) {
		*ret = sp->outputs[0];
		return 0;
	}
	const char *colon = strrchr(ref, ':');
	size_t klen = colon ? (size_t)(colon - ref) : strlen(ref);
	int out = colon ? atoi(colon + 1) : 0;
	for (size_t i = 0; i < sp->n; i++) {
		if (strlen(sp->v[i].key) != klen || strncmp(sp->v[i].key, ref, klen) != 0)
			continue;
		if (out < 0 || (size_t)out >= sp->v[i].noutputs)
			return sfs_errf(ret_msg, -EINVAL, "output \"%s\": no such output", ref);
		*ret = (struct sfs_ref){i, out};
		return 0;
	}
	return sfs_errf(ret_msg, -EINVAL, "output \"%s\": no such vertex in the inner spec", ref);
}

static int load_and_request(struct sfs_solver *s, struct vstate *vs, struct sfs_spec *sp,
			    struct sfs_ref out, char **ret_msg)
{
	struct vstate **loaded = NULL;
	int r = sfs_graph_load_sub(s, vs, sp, &loaded, ret_msg);
	if (r < 0)
		return r;
	bool *need = sfs_spec_reachable(sp, &out, 1);
	if (!need) {
		free(loaded);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sp->n; i++)
		if (need[i])
			sfs_vstate_request_keys(s, loaded[i]);
	sfs_edge_request_sub(s, &loaded[out.vertex]->edges[out.output], vs);
	free(need);
	free(loaded);
	return 0;
}

int sfs_subbuild_start(struct sfs_solver *s, struct vstate *vs, char **ret_msg)
{
	struct sfs_spec_ctx ctx = {.session = 0,
				   .limits = &s->o.limits,
				   .allow_local = false,
				   .allow_network = false,
				   .mountpoint = s->mountpoint};
	const struct sfs_build_params *b = vs->v->params;
	struct sfs_spec *sp = NULL;
	struct sfs_ref out;
	char *buf = NULL;
	size_t len = 0;

	if (vs->depth + 1 > SFS_MAX_SUBBUILD_DEPTH)
		return sfs_errf(ret_msg, -ELOOP, "sub-builds nest more than %d deep",
				SFS_MAX_SUBBUILD_DEPTH);
	int r = read_inner(s, vs, b->path, &buf, &len, ret_msg);
	if (r == 0)
		r = sfs_spec_parse(buf, len, &ctx, &sp, ret_msg);
	free(buf);
	if (r == 0)
		r = find_output(sp, b->output, &out, ret_msg);
	if (r < 0) {
		sfs_err_prefix(ret_msg, r, "build %s", b->path);
		sfs_spec_free(sp);
		return r;
	}
	sfs_solver_lock(s);
	struct vstate_sub *sub = vs->released ? NULL : sfs_vstate_sub(vs);
	if (!sub) {
		r = vs->released ? -ECANCELED : sfs_errf(ret_msg, -ENOMEM, "out of memory");
		sfs_spec_free(sp);
	} else {
		sfs_spec_free(sub->spec);
		sub->spec = sp;
		r = load_and_request(s, vs, sp, out, ret_msg);
	}
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
	return r;
}

char *sfs_subbuild_error(struct vstate *parent, const struct sfs_failure *f)
{
	const char *key = NULL;
	const struct sfs_spec *sp = parent->sub ? parent->sub->spec : NULL;
	for (size_t i = 0; sp && i < sp->n; i++)
		if (strcmp(sp->v[i].digest, f->digest) == 0)
			key = sp->v[i].key;
	const struct sfs_build_params *b = parent->v->params;
	char *msg = NULL;
	if (asprintf(&msg, "build %s: vertex \"%s\": %s", b->path, key ? key : f->digest,
		     f->msg) < 0)
		msg = NULL;
	return msg;
}
