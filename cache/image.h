/*
 * image.h — an image's root filesystem from where images are kept: the
 * `image` source op's library (docs/spec.md "image").
 *
 * An image source is one reference (cache/imageref.h) opened on its backend:
 *   oci:/ABS/PATH[:TAG]   an OCI image layout directory (image_oci.c);
 *   docker://HOST/REPO... a registry, through cache/registry.h (image_registry.c).
 * A backend only answers three questions: which digest the reference names
 * now, the bytes of a manifest of a digest, and a layer blob of a digest.
 * Everything above that is shared (image.c): an index or manifest list is
 * resolved to one platform, media types are checked, and the layers are
 * applied in order by cache/unpack.h (whiteouts, owners dropped, modes kept,
 * hardlinks as copies, devices dropped with a warning) into a tree in the
 * content store.
 *
 * The image manifest's digest is what names the image: two references that
 * resolve to one manifest are one image, and a tag that moves names another.
 * Every manifest and layer is checked against its digest before it is used.
 *
 * An image source is used by one thread at a time.
 */
#ifndef SFS_IMAGE_H
#define SFS_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cas.h"
#include "imageref.h"
#include "sha256.h"

/* Image manifests and indexes this reads. */
#define IMAGE_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IMAGE_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IMAGE_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMAGE_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

#define IMAGE_PLATFORM_DEFAULT "linux/amd64"
#define IMAGE_PLATFORM_MAX 64
/* Bytes of one manifest or index (a registry's own limit is 4 MiB). */
#define IMAGE_MANIFEST_MAX (4u << 20)
/* Layers of one image (overlay stacks hold about 128; Docker refuses more). */
#define IMAGE_LAYERS_MAX 128
/* Indexes inside indexes followed before giving up. */
#define IMAGE_INDEX_DEPTH_MAX 4

struct image_source;
struct registry_opts;

/* A backend; every call returns 0 or -errno with a sentence in *ret_msg. */
struct image_source_ops {
	/* The digest of what the reference names now: its own digest, else
	 * what its tag points at (a manifest or an index). */
	int (*resolve)(struct image_source *s, char ret_digest[SFS_DIGEST_SIZE], char **ret_msg);
	/* The manifest or index of digest, at most max bytes, checked against
	 * it; *ret_buf NUL-terminated and malloc'd. */
	int (*get_manifest)(struct image_source *s, const char *digest, uint64_t max,
			    char **ret_buf, size_t *ret_len, char **ret_msg);
	/* The layer blob of digest and size, checked against both, open for
	 * reading from its start (the caller closes it). */
	int (*open_layer)(struct image_source *s, const char *digest, uint64_t size, int *ret_fd,
			  char **ret_msg);
	void (*free)(struct image_source *s);
};

struct image_source {
	const struct image_source_ops *ops;
	char *name; /* the reference as given, without a digest: for messages */
};

/* What a source needs from its user; copied by image_source_open. */
struct image_source_opts {
	uid_t uid; /* a layout is read with this user's credentials (cache/creds.h) */
	gid_t gid;
	/* registry client options (cache/registry.h) for docker://; NULL: the defaults */
	const struct registry_opts *registry;
	struct cas *cas;	      /* where a registry's layers are fetched to */
	bool (*cancelled)(void *arg); /* polled while bytes move; NULL: never */
	/* A layer's fetch as it goes ("pull sha256:...", bytes of total, done at
	 * its end); NULL: none. */
	void (*status)(void *arg, const char *id, uint64_t current, uint64_t total, bool done);
	void *arg;
};

/* Opens ref on its backend: nothing is read yet. */
int image_source_open(const struct imageref *ref, const struct image_source_opts *o,
		      struct image_source **ret, char **ret_msg);
struct image_source *image_source_free(struct image_source *s); /* accepts NULL */

/* The backends' constructors (image_oci.c, image_registry.c). */
int image_source_oci_new(const struct imageref *ref, const struct image_source_opts *o,
			 struct image_source **ret, char **ret_msg);
int image_source_registry_new(const struct imageref *ref, const struct image_source_opts *o,
			      struct image_source **ret, char **ret_msg);

/* "os/arch[/variant]" with each part [a-z0-9_.-]+: true when s is one. */
bool image_platform_valid(const char *s);

struct image_resolved {
	char top[SFS_DIGEST_SIZE];	/* what the reference names (an index, perhaps) */
	char manifest[SFS_DIGEST_SIZE]; /* the image manifest of the platform */
};

/*
 * Resolves the reference to the image manifest of platform ("os/arch" or
 * "os/arch/variant"): a manifest list or index is followed to its entry of
 * that platform (none given, the first entry of os/arch; a variant given, the
 * first entry naming it, else the first of os/arch naming no variant, as
 * containerd's matcher).  -ENOENT when the index has no such platform.
 */
int image_resolve(struct image_source *s, const char *platform, struct image_resolved *ret,
		  char **ret_msg);

struct image_unpack_opts {
	uint64_t layer_max;   /* decompressed bytes of one layer */
	uint64_t entries_max; /* entries of a layer and of the tree */
	bool (*cancelled)(void *arg);
	void (*warn)(void *arg, const char *msg); /* entries dropped (devices, fifos) */
	void *arg;
};

/*
 * The root filesystem of the image manifest of digest, stored as a tree in
 * cas: its layers applied in order.  A layer of a media type other than
 * (OCI or Docker) tar, tar+gzip or tar+zstd is -EOPNOTSUPP, before any layer
 * is read.
 */
int image_unpack(struct image_source *s, struct cas *cas, const char *manifest,
		 const struct image_unpack_opts *o, char ret_id[SFS_DIGEST_SIZE], char **ret_msg);

#endif
