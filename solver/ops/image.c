/*
 * image.c — the `image` op: an image's root filesystem as a tree (docs/spec.md
 * "image"), from an OCI layout (oci:/ABS/PATH[:TAG]) or a registry
 * (docker://HOST/REPO[:TAG|@sha256:HEX]), through cache/image.h.
 *
 * It is a root with one cache map, computed when the job reaches it (at its
 * start: it has no inputs): the reference is resolved, a tag to the digest it
 * names now, an index to the manifest of the vertex's platform, and the log
 * says so (`resolve REF@sha256:...`).  The map digest is that image
 * manifest's digest, so an image already solved is never read again, the same
 * image under two names is one result, and a tag that moved is a clean miss.
 * exec unpacks the manifest the map resolved, never the tag again, so what
 * runs is what the key names.
 *
 * op->priv (struct image_priv) is used by one worker at a time (the solver
 * serialises the calls of one vertex).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "image.h"
#include "imageref.h"
#include "import.h"
#include "ops.h"
#include "specop.h"

/* Entries dropped (devices) are logged up to this many, then counted. */
#define IMAGE_WARN_MAX 10

/* The fields of an image vertex, read once by norm_image (vertex params). */
struct image_params {
	struct imageref ref;
	char platform[IMAGE_PLATFORM_MAX];
};

struct image_priv {
	struct image_source *src;
	bool resolved;
	struct image_resolved res;
	struct sfs_op_ctx *ctx; /* of the call running (for the callbacks) */
	size_t nwarnings;
};

static bool image_cancelled(void *arg)
{
	return sfs_op_cancelled(((struct image_priv *)arg)->ctx);
}

static void image_warn(void *arg, const char *msg)
{
	struct image_priv *ip = arg;

	if (++ip->nwarnings <= IMAGE_WARN_MAX)
		sfs_op_logf(ip->ctx, "warning: %s", msg);
}

static void image_status(void *arg, const char *id, uint64_t current, uint64_t total, bool done)
{
	struct sfs_op_ctx *ctx = ((struct image_priv *)arg)->ctx;

	if (ctx->status)
		ctx->status(ctx->log_arg, id, current, total, done);
}

static int image_priv(struct sfs_op *op, struct sfs_op_ctx *ctx, char **ret_msg)
{
	const struct image_params *p = op->v->params;
	struct image_priv *ip = op->priv;

	if (!ip && !(ip = op->priv = calloc(1, sizeof(*ip))))
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	ip->ctx = ctx;
	if (ip->src)
		return 0;
	const struct image_source_opts so = {.uid = ctx->uid,
					     .gid = ctx->gid,
					     .registry = ctx->registry,
					     .cas = ctx->cache->cas,
					     .cancelled = image_cancelled,
					     .status = image_status,
					     .arg = ip};
	return image_source_open(&p->ref, &so, &ip->src, ret_msg);
}

/* The log line of a resolve: "resolve REF@sha256:..." (REF without a digest
 * of its own), and the platform's manifest when the reference is an index. */
static void log_resolved(struct sfs_op_ctx *ctx, const struct image_priv *ip, const char *plat)
{
	sfs_op_logf(ctx, "resolve %s@%s", ip->src->name, ip->res.top);
	if (strcmp(ip->res.top, ip->res.manifest) != 0)
		sfs_op_logf(ctx, "platform %s: manifest %s", plat, ip->res.manifest);
}

static int image_resolve_once(struct sfs_op *op, struct sfs_op_ctx *ctx, char **ret_msg)
{
	const struct image_params *p = op->v->params;
	struct image_priv *ip;
	int r = image_priv(op, ctx, ret_msg);

	if (r < 0)
		return r;
	ip = op->priv;
	if (ip->resolved)
		return 0;
	if ((r = image_resolve(ip->src, p->platform, &ip->res, ret_msg)) < 0)
		return r;
	ip->resolved = true;
	log_resolved(ctx, ip, p->platform);
	return 0;
}

/* The map digest: the image manifest's digest, under a name of its own. */
static int map_digest(const char *manifest, char ret[SFS_DIGEST_SIZE])
{
	char *s = NULL;

	if (asprintf(&s, "{\"cache_map\":\"image/manifest\",\"manifest\":\"%s\"}", manifest) < 0)
		return -ENOMEM;
	sfs_sha256_digest(s, strlen(s), ret);
	free(s);
	return 0;
}

static int image_cache_map(struct sfs_op *op, struct sfs_op_ctx *ctx, int index,
			   struct sfs_cache_map *ret, bool *ret_done, char **ret_msg)
{
	struct sfs_cache_map m = {0};
	int r = image_resolve_once(op, ctx, ret_msg);

	(void)index;
	if (r == 0 && (r = map_digest(((struct image_priv *)op->priv)->res.manifest, m.digest)) < 0)
		sfs_errf(ret_msg, r, "out of memory");
	if (r < 0)
		return r;
	*ret_done = true;
	*ret = m;
	return 0;
}

static int image_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		      size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct image_priv *ip;
	int r = image_resolve_once(op, ctx, ret_msg);

	(void)inputs;
	(void)ninputs;
	if (r < 0)
		return r;
	ip = op->priv;
	ip->nwarnings = 0;
	const struct image_unpack_opts uo = {
	    .layer_max =
		ctx->import_limits ? ctx->import_limits->layer_max : CACHE_IMPORT_LAYER_MAX,
	    .entries_max =
		ctx->import_limits ? ctx->import_limits->entries_max : CACHE_IMPORT_ENTRIES_MAX,
	    .cancelled = image_cancelled,
	    .warn = image_warn,
	    .arg = ip};
	r = image_unpack(ip->src, ctx->cache->cas, ip->res.manifest, &uo, outputs[0], ret_msg);
	if (ip->nwarnings > IMAGE_WARN_MAX)
		sfs_op_logf(ctx, "warning: ... and %zu more entries dropped",
			    ip->nwarnings - IMAGE_WARN_MAX);
	return r;
}

static void image_free(struct sfs_op *op)
{
	struct image_priv *ip = op->priv;

	if (ip)
		image_source_free(ip->src);
	free(ip);
	op->priv = NULL;
}

/* ---- the spec side: fields and normaliser (specop.h) ---- */

static const char *const image_fields[] = {"ref", "platform", NULL};

static void image_params_free(void *params)
{
	struct image_params *p = params;

	imageref_release(&p->ref);
	free(p);
}

/* An oci: layout is a host path: absolute, outside the mount, and not read
 * from inside a build op (as `local`). */
static int norm_layout_path(struct sfs_norm *c, struct image_params *p)
{
	json_t *j;
	char *clean = NULL;
	int r;

	if (!sfs_norm_ctx(c)->allow_local)
		return sfs_norm_err(c, "", "ref",
				    "an oci: layout is not allowed here (inside a build op)");
	if (!(j = json_string(p->ref.path)))
		return -ENOMEM;
	r = sfs_norm_host_path(c, "", "ref", j, &clean);
	json_decref(j);
	if (r < 0)
		return r;
	free(p->ref.path);
	p->ref.path = clean;
	return 0;
}

static int norm_image(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	struct image_params *p = calloc(1, sizeof(*p));
	const char *ref = NULL, *plat = NULL;
	char *msg = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	sfs_norm_vertex(c)->params = p;
	r = sfs_norm_str(c, raw, "", "ref", true, NULL, &ref);
	if (r == 0)
		r = sfs_norm_str(c, raw, "", "platform", false, IMAGE_PLATFORM_DEFAULT, &plat);
	if (r < 0)
		return r;
	if (!image_platform_valid(plat))
		return sfs_norm_err(c, "", "platform",
				    "must be \"os/arch\" or \"os/arch/variant\"");
	sfs_copy_str(p->platform, sizeof(p->platform), plat);
	r = imageref_parse(ref, &p->ref, &msg);
	if (r < 0) {
		r = sfs_norm_err(c, "", "ref", "%s", msg ? msg : "not an image reference");
		free(msg);
		return r;
	}
	if (p->ref.kind == IMAGEREF_OCI && (r = norm_layout_path(c, p)) < 0)
		return r;
	sfs_norm_set(c, op, "ref", json_string(ref));
	sfs_norm_set(c, op, "platform", json_string(plat));
	strbuf_addf(sum, "image %s", ref);
	return 0;
}

const struct sfs_op_type sfs_op_image = {
    .name = "image",
    .fields = image_fields,
    .normalise = norm_image,
    .params_free = image_params_free,
    .cache_map = image_cache_map,
    .exec = image_exec,
    .free = image_free,
};
