/*
 * oci.h — the OCI image layout a cache export is written as and read from:
 * media types, descriptors and blob paths, for both ends (export.c writes a
 * layout, import.c reads one).
 *
 * A layout is a directory with index.json and blobs/sha256/<hex>; index.json
 * and manifests list blobs by descriptor {"mediaType", "digest", "size",
 * "annotations"?}.  BuildKit's cache config is one more blob, of media type
 * OCI_MT_CACHECONFIG, that a manifest lists beside the layers.
 */
#ifndef SFS_OCI_H
#define SFS_OCI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sha256.h"
#include "strbuf.h"

#define OCI_MT_CACHECONFIG "application/vnd.buildkit.cacheconfig.v0"
#define OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
/* The annotation of index.json's entry naming its tag ("latest"). */
#define OCI_REF_NAME "org.opencontainers.image.ref.name"

/* A blob as a descriptor names it. */
struct oci_desc {
	char digest[SFS_DIGEST_SIZE];
	uint64_t size;
};

/* "blobs/sha256/<hex>": the path of the blob of digest ("sha256:<hex>")
 * relative to the layout. */
#define OCI_BLOB_PATH_SIZE (sizeof("blobs/sha256/") + SFS_HEX_SIZE)
void oci_blob_path(const char *digest, char ret[OCI_BLOB_PATH_SIZE]);

/* ---- writing ---- */

/* Appends {"mediaType":..,"digest":..,"size":.. and leaves the object open,
 * so the caller may add ",\"annotations\":{...}" before its closing '}'. */
void oci_desc_json_open(struct strbuf *sb, const char *media_type, const char *digest,
			uint64_t size);

/* ---- reading ---- */

/* The descriptor's "digest" when it is "sha256:<hex>", else NULL. */
const char *oci_desc_digest(const json_t *d);
/* Its "mediaType", NULL when absent or not a string. */
const char *oci_desc_media_type(const json_t *d);
/* True when d's OCI_REF_NAME annotation is tag. */
bool oci_desc_is_tagged(const json_t *d, const char *tag);
/* True when d is a descriptor of media type mt with a good digest. */
bool oci_desc_is(const json_t *d, const char *mt);

/* ---- opening files of a layout ---- */

/*
 * A layout is named by a user and read by the daemon: every path inside it is
 * opened relative to a directory fd without following a final symlink (so no
 * component is a symlink), files with O_NONBLOCK so a FIFO cannot hold a
 * worker, and anything but a regular file (or dir) is refused: -ELOOP for a
 * symlink, -EINVAL for another type, -ENOTDIR.
 */
int oci_open_dir_at(int dirfd, const char *name, int *ret_fd);
int oci_open_regular_at(int dirfd, const char *name, int *ret_fd, off_t *ret_size);
/* What such an error means, for "REL: why". */
const char *oci_open_strerror(int r);
/*
 * The whole of fd (size bytes, as oci_open_regular_at said), NUL-terminated, into a
 * malloc'd *ret_buf; fd is closed.  -EFBIG when size > max, -EBADMSG when digest
 * ("sha256:HEX", may be NULL) is not the bytes' hash, else -errno of the read.
 */
int oci_read_all(int fd, off_t size, uint64_t max, const char *digest, char **ret_buf,
		 size_t *ret_len);

#endif
