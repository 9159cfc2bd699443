/*
 * fuzz_spec.c — the graph spec parser and normaliser (solver/spec.h): the
 * input is what a user writes into jobs/N/spec.
 *
 * Each input is parsed twice: as the mount does (default limits, local and
 * network allowed) and as a sub-build does (no local, no network) under
 * small limits, so the limit paths are reached with small inputs.  Checked:
 * a rejection is one of the documented errors with a message; an accepted
 * spec is in topological order, its refs in range, each vertex digest the
 * sha256 of its op bytes, those bytes canonical (re-serialising the parsed
 * op gives them back), and a second parse gives the same digests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "fuzz.h"

static void check_spec(const struct sfs_spec *sp)
{
	FZ_CHECK(sp->n > 0 && sp->noutputs > 0);
	for (size_t i = 0; i < sp->n; i++) {
		const struct sfs_spec_vertex *v = &sp->v[i];
		char d[SFS_DIGEST_SIZE];
		size_t len = 0;

		FZ_CHECK(v->key && v->name && v->op_bytes && v->summary);
		FZ_CHECK(strlen(v->op_bytes) == v->op_len);
		sfs_sha256_digest(v->op_bytes, v->op_len, d);
		FZ_CHECK(strcmp(d, v->digest) == 0);
		sfs_dgst_to_text(&v->cache_map_digest, d);
		FZ_CHECK(sfs_is_digest(d));
		json_t *op = sfs_spec_vertex_op(v);
		FZ_CHECK(op);
		char *again = sfs_canonical_json(op, &len);
		FZ_CHECK(again && len == v->op_len && memcmp(again, v->op_bytes, len) == 0);
		free(again);
		json_decref(op);
		for (size_t k = 0; k < v->ninputs; k++) {
			const struct sfs_spec_input *in = &v->inputs[k];
			FZ_CHECK(in->ref.vertex < i); /* topological order */
			FZ_CHECK(in->ref.output >= 0 &&
				 (size_t)in->ref.output < sp->v[in->ref.vertex].noutputs);
			FZ_CHECK(in->selector_len ? sfs_is_digest(in->selector_digest)
						  : !in->selector_digest[0]);
		}
	}
	for (size_t o = 0; o < sp->noutputs; o++) {
		struct sfs_ref r = sp->outputs[o];
		FZ_CHECK(r.vertex < sp->n && r.output >= 0 &&
			 (size_t)r.output < sp->v[r.vertex].noutputs);
		char *s = sfs_ref_string(sp, r);
		FZ_CHECK(s && strcmp(s, sp->output_refs[o]) == 0);
		free(s);
	}
}

static struct sfs_spec *parse(const uint8_t *data, size_t size, const struct sfs_spec_ctx *ctx)
{
	struct sfs_spec *sp = NULL;
	char *msg = NULL;
	int r = sfs_spec_parse((const char *)data, size, ctx, &sp, &msg);

	if (r < 0) {
		FZ_CHECK(!sp);
		FZ_CHECK(r == -EINVAL || r == -EFBIG || r == -E2BIG || r == -ENOMEM);
		FZ_CHECK(msg || r == -ENOMEM);
		free(msg);
		return NULL;
	}
	FZ_CHECK(r == 0 && sp && !msg);
	check_spec(sp);
	return sp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sfs_spec_limits small = {
	    .max_bytes = 2048, .max_vertices = 6, .max_path = 40, .max_inline = 16};
	const struct sfs_spec_ctx mount = {.session = 7,
					   .allow_local = true,
					   .allow_network = true,
					   .mountpoint = "/nonexistent/sfs-fuzz-mnt"};
	const struct sfs_spec_ctx sub = {.session = 8, .limits = &small, .mountpoint = "/proc"};
	struct sfs_spec *a = parse(data, size, &mount), *b;

	if (a) {
		b = parse(data, size, &mount);
		FZ_CHECK(b && b->n == a->n);
		for (size_t i = 0; i < a->n; i++)
			FZ_CHECK(strcmp(a->v[i].digest, b->v[i].digest) == 0 &&
				 sfs_dgst_eq(&a->v[i].cache_map_digest, &b->v[i].cache_map_digest));
		sfs_spec_free(b);
		sfs_spec_free(a);
	}
	sfs_spec_free(parse(data, size, &sub));
	return 0;
}
