/*
 * image_oci.c — the image source of an OCI image layout directory
 * (oci:/ABS/PATH[:TAG], image.h).
 *
 * The tag is the index.json entry whose org.opencontainers.image.ref.name
 * annotation is TAG; without a tag, the only entry or the one tagged "latest"
 * (skopeo's rule).  Blobs are read from blobs/sha256/<hex> and checked against
 * their digest (and a layer against its descriptor's size) before use.
 *
 * A layout is a host directory named by the job: every file of it is opened
 * with the job's credentials (cache/creds.h), relative to the layout's dir fd
 * without following symlinks (oci.h), so nobody reads through an image what
 * they could not read themselves.  Nothing here writes.
 *
 * One thread at a time uses a source; it holds no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "creds.h"
#include "err.h"
#include "fdio.h"
#include "image.h"
#include "oci.h"

struct oci_source {
	struct image_source s;
	char *path;
	char *tag; /* "" when none */
	uid_t uid;
	gid_t gid;
	bool (*cancelled)(void *arg);
	void *arg;
};

/* Opens REL (a file of the layout: "index.json" or a blob's digest) as the
 * job: the layout dir, then blobs/sha256 for a blob, then the file. */
static int open_file(struct oci_source *o, const char *digest, int *ret_fd, off_t *ret_size,
		     char **ret_msg)
{
	char rel[OCI_BLOB_PATH_SIZE];
	int dir = -1, blobs = -1, sha = -1, r;
	struct sfs_creds c;

	if (digest)
		oci_blob_path(digest, rel);
	else
		snprintf(rel, sizeof(rel), "index.json");
	if ((r = sfs_creds_enter(&c, o->uid, o->gid)) < 0)
		return sfs_errf(ret_msg, r, "cannot take the credentials of uid %u",
				(unsigned)o->uid);
	dir = open(o->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = dir < 0 ? -errno : 0;
	if (r < 0) {
		sfs_errf(ret_msg, r, "the layout directory: %s", strerror(-r));
	} else if (!digest) {
		r = oci_open_regular_at(dir, rel, ret_fd, ret_size);
	} else if ((r = oci_open_dir_at(dir, "blobs", &blobs)) == 0 &&
		   (r = oci_open_dir_at(blobs, "sha256", &sha)) == 0) {
		r = oci_open_regular_at(sha, digest + 7, ret_fd, ret_size);
	}
	sfs_creds_leave(&c);
	if (dir >= 0)
		close(dir);
	if (blobs >= 0)
		close(blobs);
	if (sha >= 0)
		close(sha);
	if (r == -ENOENT && digest)
		return sfs_errf(ret_msg, r, "blob %s is not in the layout", digest);
	if (r < 0)
		return sfs_errf(ret_msg, r, "%s: %s", rel, oci_open_strerror(r));
	return 0;
}

/* The whole file (at most max bytes), checked against digest unless NULL. */
static int read_file(struct oci_source *o, const char *digest, uint64_t max, char **ret_buf,
		     size_t *ret_len, char **ret_msg)
{
	off_t size = 0;
	int fd = -1, r = open_file(o, digest, &fd, &size, ret_msg);

	if (r < 0)
		return r;
	r = oci_read_all(fd, size, max, digest, ret_buf, ret_len);
	if (r == -EFBIG)
		return sfs_errf(ret_msg, EFBIG, "%s is larger than %llu bytes",
				digest ? digest : "index.json", (unsigned long long)max);
	if (r == -EBADMSG)
		return sfs_errf(ret_msg, EBADMSG, "blob %s does not match its digest",
				digest ? digest : "index.json");
	if (r < 0)
		return sfs_errf(ret_msg, r, "%s", strerror(-r));
	return 0;
}

static bool tagged(const json_t *e, const char *tag)
{
	return oci_desc_is_tagged(e, tag);
}

static int oci_resolve(struct image_source *s, char ret_digest[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct oci_source *o = (struct oci_source *)s;
	json_t *index, *list, *e, *pick = NULL;
	json_error_t jerr;
	char *buf = NULL;
	size_t len = 0, i;
	int r = read_file(o, NULL, IMAGE_MANIFEST_MAX, &buf, &len, ret_msg);

	if (r < 0)
		return r;
	index = json_loadb(buf, len, 0, &jerr);
	free(buf);
	list = json_object_get(index, "manifests");
	if (!json_is_array(list)) {
		json_decref(index);
		return sfs_errf(ret_msg, EINVAL, "index.json: not an OCI index");
	}
	json_array_foreach(list, i, e) if (tagged(e, o->tag[0] ? o->tag : "latest")) pick = e;
	if (!pick && !o->tag[0] && json_array_size(list) == 1)
		pick = json_array_get(list, 0);
	if (!pick)
		r = o->tag[0] ? sfs_errf(ret_msg, ENOENT, "no image tagged \"%s\"", o->tag)
			      : sfs_errf(ret_msg, ENOENT,
					 "%zu images and none tagged \"latest\" (give a tag)",
					 json_array_size(list));
	else if (!oci_desc_digest(pick))
		r = sfs_errf(ret_msg, EINVAL, "index.json: a digest is not sha256:<hex>");
	else
		sfs_copy_str(ret_digest, SFS_DIGEST_SIZE, oci_desc_digest(pick));
	json_decref(index);
	return r;
}

static int oci_get_manifest(struct image_source *s, const char *digest, uint64_t max,
			    char **ret_buf, size_t *ret_len, char **ret_msg)
{
	return read_file((struct oci_source *)s, digest, max, ret_buf, ret_len, ret_msg);
}

/* Hashes fd from its start; cancellation is polled every few MiB. */
static int hash_fd(struct oci_source *o, int fd, char ret_hex[SFS_HEX_SIZE], char **ret_msg)
{
	struct sfs_sha256 h = {0};
	char buf[65536];
	ssize_t n;
	int r = sfs_sha256_init(&h);

	for (unsigned i = 1; r == 0 && (n = read(fd, buf, sizeof(buf))) != 0; i++) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else if (i % 64 == 0 && o->cancelled && o->cancelled(o->arg))
			r = sfs_errf(ret_msg, ECANCELED, "context canceled");
		else
			sfs_sha256_update(&h, buf, (size_t)n);
	}
	if (r < 0) {
		if (h.ctx)
			sfs_sha256_abort(&h);
		return r;
	}
	sfs_sha256_final_hex(&h, ret_hex);
	return 0;
}

static int oci_open_layer(struct image_source *s, const char *digest, uint64_t size, int *ret_fd,
			  char **ret_msg)
{
	struct oci_source *o = (struct oci_source *)s;
	char hex[SFS_HEX_SIZE];
	off_t st_size = 0;
	int fd = -1, r = open_file(o, digest, &fd, &st_size, ret_msg);

	if (r < 0)
		return r;
	if ((uint64_t)st_size != size)
		r = sfs_errf(ret_msg, EBADMSG, "blob %s has %lld bytes, its descriptor says %llu",
			     digest, (long long)st_size, (unsigned long long)size);
	if (r == 0)
		r = hash_fd(o, fd, hex, ret_msg);
	if (r == 0 && strcmp(hex, digest + 7) != 0)
		r = sfs_errf(ret_msg, EBADMSG, "blob %s does not match its digest", digest);
	if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static void oci_free(struct image_source *s)
{
	struct oci_source *o = (struct oci_source *)s;

	free(o->path);
	free(o->tag);
	free(o->s.name);
	free(o);
}

static const struct image_source_ops oci_ops = {
    .resolve = oci_resolve,
    .get_manifest = oci_get_manifest,
    .open_layer = oci_open_layer,
    .free = oci_free,
};

int image_source_oci_new(const struct imageref *ref, const struct image_source_opts *opts,
			 struct image_source **ret, char **ret_msg)
{
	struct oci_source *o = calloc(1, sizeof(*o));

	if (!o)
		return -ENOMEM;
	o->s.ops = &oci_ops;
	o->path = strdup(ref->path);
	o->tag = strdup(ref->tag);
	if (o->path && o->tag &&
	    asprintf(&o->s.name, "oci:%s%s%s", ref->path, ref->tag[0] ? ":" : "", ref->tag) < 0)
		o->s.name = NULL;
	if (!o->path || !o->tag || !o->s.name) {
		oci_free(&o->s);
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	}
	o->uid = opts->uid;
	o->gid = opts->gid;
	o->cancelled = opts->cancelled;
	o->arg = opts->arg;
	*ret = &o->s;
	return 0;
}
