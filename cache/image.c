/*
 * image.c — what every image source shares (image.h): resolving an index to a
 * platform's manifest, checking media types, and applying the layers.  No
 * state of its own, no locks.
 */
#include "image.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "oci.h"
#include "unpack.h"

/* Layer media types: all tar, compressed or not (unpack.c finds which). */
static const char *const layer_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    NULL,
};

int image_source_open(const struct imageref *ref, const struct image_source_opts *o,
		      struct image_source **ret, char **ret_msg)
{
	if (ref->kind == IMAGEREF_OCI)
		return image_source_oci_new(ref, o, ret, ret_msg);
	return image_source_registry_new(ref, o, ret, ret_msg);
}

struct image_source *image_source_free(struct image_source *s)
{
	if (s)
		s->ops->free(s);
	return NULL;
}

static bool platform_part(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_.-", s[i]))
			return false;
	return true;
}

bool image_platform_valid(const char *s)
{
	size_t parts = 0;

	if (!s || strlen(s) >= IMAGE_PLATFORM_MAX)
		return false;
	for (const char *p = s;; p++) {
		size_t n = strcspn(p, "/");
		if (!platform_part(p, n) || ++parts > 3)
			return false;
		p += n;
		if (!*p)
			break;
	}
	return parts >= 2;
}

/* ---- manifests ---- */

enum mkind { MK_INDEX, MK_MANIFEST };

/* The kind of m by its mediaType, or by its shape when it has none (an OCI
 * manifest need not say). */
static int manifest_kind(const char *digest, json_t *m, enum mkind *ret, char **ret_msg)
{
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	json_t *sv = json_object_get(m, "schemaVersion");

	if (json_is_integer(sv) && json_integer_value(sv) == 1)
		return sfs_errf(ret_msg, EOPNOTSUPP,
				"manifest %s: Docker schema 1 manifests are not supported", digest);
	if (!mt)
		mt = json_is_array(json_object_get(m, "manifests")) ? IMAGE_MT_OCI_INDEX
		     : json_is_array(json_object_get(m, "layers"))  ? IMAGE_MT_OCI_MANIFEST
								    : "";
	if (!strcmp(mt, IMAGE_MT_OCI_INDEX) || !strcmp(mt, IMAGE_MT_DOCKER_LIST))
		*ret = MK_INDEX;
	else if (!strcmp(mt, IMAGE_MT_OCI_MANIFEST) || !strcmp(mt, IMAGE_MT_DOCKER_MANIFEST))
		*ret = MK_MANIFEST;
	else
		return sfs_errf(ret_msg, EOPNOTSUPP,
				"manifest %s: media type \"%s\" is not an image manifest or index",
				digest, mt);
	return 0;
}

static int load_manifest(struct image_source *s, const char *digest, json_t **ret,
			 enum mkind *ret_kind, char **ret_msg)
{
	json_error_t jerr;
	char *buf = NULL;
	size_t len = 0;
	int r = s->ops->get_manifest(s, digest, IMAGE_MANIFEST_MAX, &buf, &len, ret_msg);
	json_t *m;

	if (r < 0)
		return r;
	m = json_loadb(buf, len, 0, &jerr);
	free(buf);
	if (!m || !json_is_object(m)) {
		json_decref(m);
		return sfs_errf(ret_msg, EINVAL, "manifest %s: not a JSON object", digest);
	}
	r = manifest_kind(digest, m, ret_kind, ret_msg);
	if (r < 0) {
		json_decref(m);
		return r;
	}
	*ret = m;
	return 0;
}

static bool str_is(const json_t *o, const char *key, const char *want, size_t n)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v && strlen(v) == n && strncmp(v, want, n) == 0;
}

/* True when the index entry's platform is plat ("os/arch[/variant]"); with
 * loose, an entry that names no variant matches any variant asked for. */
static bool platform_matches(const json_t *e, const char *plat, bool loose)
{
	json_t *p = json_object_get(e, "platform");
	size_t os = strcspn(plat, "/");
	const char *arch = plat + os + 1;
	size_t an = strcspn(arch, "/");
	const char *variant = arch[an] ? arch + an + 1 : NULL;

	if (!str_is(p, "os", plat, os) || !str_is(p, "architecture", arch, an))
		return false;
	if (!variant)
		return true;
	if (loose && !json_object_get(p, "variant"))
		return true;
	return str_is(p, "variant", variant, strlen(variant));
}

/* The entry of plat: the first that names it exactly, else (a variant asked
 * for) the first of its os/arch that names no variant. */
static int pick_platform(const char *digest, json_t *index, const char *plat,
			 char ret[SFS_DIGEST_SIZE], char **ret_msg)
{
	json_t *list = json_object_get(index, "manifests"), *e, *pick = NULL;
	size_t i;

	json_array_foreach(list, i, e) if (!pick && platform_matches(e, plat, false)) pick = e;
	json_array_foreach(list, i, e) if (!pick && platform_matches(e, plat, true)) pick = e;
	if (!pick)
		return sfs_errf(ret_msg, ENOENT, "index %s has no image for platform %s", digest,
				plat);
	const char *d = oci_desc_digest(pick);
	if (!d)
		return sfs_errf(ret_msg, EINVAL,
				"index %s: the %s entry's digest is not sha256:<hex>", digest,
				plat);
	sfs_copy_str(ret, SFS_DIGEST_SIZE, d);
	return 0;
}

int image_resolve(struct image_source *s, const char *platform, struct image_resolved *ret,
		  char **ret_msg)
{
	char d[SFS_DIGEST_SIZE];
	int r = s->ops->resolve(s, d, ret_msg);

	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "%s", s->name);
	sfs_copy_str(ret->top, SFS_DIGEST_SIZE, d);
	for (int depth = 0; r == 0; depth++) {
		enum mkind k;
		json_t *m = NULL;
		if (depth > IMAGE_INDEX_DEPTH_MAX)
			r = sfs_errf(ret_msg, ELOOP, "more than %d indexes inside indexes",
				     IMAGE_INDEX_DEPTH_MAX);
		if (r == 0)
			r = load_manifest(s, d, &m, &k, ret_msg);
		if (r == 0 && k == MK_MANIFEST) {
			sfs_copy_str(ret->manifest, SFS_DIGEST_SIZE, d);
			json_decref(m);
			return 0;
		}
		if (r == 0)
			r = pick_platform(d, m, platform, d, ret_msg);
		json_decref(m);
	}
	return sfs_err_prefix(ret_msg, r, "%s", s->name);
}

/* ---- layers ---- */

static bool layer_type_ok(const char *mt)
{
	for (const char *const *t = layer_types; *t; t++)
		if (!strcmp(mt, *t))
			return true;
	return false;
}

/* The layers of manifest m, checked: digest, size, media type. */
static int check_layers(const char *digest, json_t *m, json_t **ret, char **ret_msg)
{
	json_t *layers = json_object_get(m, "layers"), *l;
	size_t i;

	if (!json_is_array(layers))
		return sfs_errf(ret_msg, EINVAL, "manifest %s: no \"layers\" list", digest);
	if (json_array_size(layers) > IMAGE_LAYERS_MAX)
		return sfs_errf(ret_msg, EFBIG, "manifest %s: more than %d layers", digest,
				IMAGE_LAYERS_MAX);
	json_array_foreach(layers, i, l)
	{
		const char *mt = oci_desc_media_type(l);
		json_t *size = json_object_get(l, "size");
		if (!oci_desc_digest(l))
			return sfs_errf(ret_msg, EINVAL,
					"manifest %s: layer %zu: digest is not sha256:<hex>",
					digest, i);
		if (!json_is_integer(size) || json_integer_value(size) < 0)
			return sfs_errf(ret_msg, EINVAL, "manifest %s: layer %zu: bad size", digest,
					i);
		if (!mt || !layer_type_ok(mt))
			return sfs_errf(ret_msg, EOPNOTSUPP,
					"manifest %s: layer %s: media type \"%s\" is not supported "
					"(tar, tar+gzip or tar+zstd)",
					digest, oci_desc_digest(l), mt ? mt : "");
	}
	*ret = layers;
	return 0;
}

static int apply_layer(struct image_source *s, struct unpack *u, json_t *l, char **ret_msg)
{
	const char *digest = oci_desc_digest(l);
	uint64_t size = (uint64_t)json_integer_value(json_object_get(l, "size"));
	int fd = -1, r = s->ops->open_layer(s, digest, size, &fd, ret_msg);

	if (r < 0)
		return r;
	r = unpack_apply(u, fd, digest, ret_msg);
	close(fd);
	return r;
}

int image_unpack(struct image_source *s, struct cas *cas, const char *manifest,
		 const struct image_unpack_opts *o, char ret_id[SFS_DIGEST_SIZE], char **ret_msg)
{
	const struct unpack_opts uo = {.layer_max = o->layer_max,
				       .entries_max = o->entries_max,
				       .cancelled = o->cancelled,
				       .warn = o->warn,
				       .arg = o->arg};
	json_t *m = NULL, *layers = NULL, *l;
	struct unpack *u = NULL;
	enum mkind k;
	size_t i;
	int r = load_manifest(s, manifest, &m, &k, ret_msg);

	if (r == 0 && k != MK_MANIFEST)
		r = sfs_errf(ret_msg, EINVAL, "%s is an index, not an image manifest", manifest);
	if (r == 0)
		r = check_layers(manifest, m, &layers, ret_msg);
	if (r == 0)
		r = unpack_new(cas, &uo, &u);
	json_array_foreach(layers, i, l) if (r == 0) r = apply_layer(s, u, l, ret_msg);
	if (r == 0)
		r = unpack_finish(u, ret_id);
	unpack_free(u);
	json_decref(m);
	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "%s", s->name);
	return 0;
}
