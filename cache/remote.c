/*
 * remote.c — pushing a cache layout to a registry and reading one back
 * lazily (remote.h).
 *
 * Locking: a remote_source is used by one thread at a time (the lazy result
 * storage of import.c serializes its loads).
 */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "err.h"
#include "oci.h"
#include "strbuf.h"

struct remote_source {
	struct registry *reg;
	struct cas *cas;
};

/* ---- push ---- */

static int read_file_at(int dirfd, const char *rel, uint64_t max, char **ret, size_t *ret_len)
{
	int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	int r = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if ((uint64_t)st.st_size > max)
		r = -EFBIG;
	char *buf = r == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	if (r == 0 && !buf)
		r = -ENOMEM;
	size_t got = 0;
	while (r == 0 && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		else
			got += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[got] = '\0';
	*ret = buf;
	*ret_len = got;
	return 0;
}

/* The manifest index.json tags "latest" (or its only one). */
static const json_t *index_pick(const json_t *index)
{
	const json_t *list = json_object_get(index, "manifests"), *d, *only = NULL;
	size_t i;
	json_array_foreach(list, i, d)
	{
		if (oci_desc_is_tagged(d, "latest"))
			return d;
		only = d;
	}
	return json_array_size(list) == 1 ? only : NULL;
}

static int push_desc(struct registry *reg, int dirfd, const json_t *d, const char *repo,
		     char **ret_msg)
{
	const char *digest = oci_desc_digest(d);
	json_t *size = json_object_get(d, "size");
	char rel[OCI_BLOB_PATH_SIZE];
	if (!digest || !json_is_integer(size) || json_integer_value(size) < 0)
		return sfs_errf(ret_msg, EINVAL, "a descriptor of the manifest is malformed");
	oci_blob_path(digest, rel);
	int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sfs_errf(ret_msg, errno, "%s: %s", rel, strerror(errno));
	int r = registry_push_blob(reg, digest, (uint64_t)json_integer_value(size), fd, repo, NULL,
				   ret_msg);
	close(fd);
	return r;
}

static int push_manifest_of(struct registry *reg, int dirfd, const struct imageref *ref,
			    const char *mdigest, const char *mount_from, char **ret_msg)
{
	char rel[OCI_BLOB_PATH_SIZE], *buf = NULL;
	size_t len = 0;
	oci_blob_path(mdigest, rel);
	int r = read_file_at(dirfd, rel, 64u << 20, &buf, &len);
	if (r < 0)
		return sfs_errf(ret_msg, r, "%s: %s", rel, strerror(-r));
	json_t *m = json_loadb(buf, len, 0, NULL);
	const json_t *cfg = json_object_get(m, "config"), *d;
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	size_t i;
	if (!m || !json_is_object(cfg) || !json_is_array(json_object_get(m, "layers")))
		r = sfs_errf(ret_msg, EINVAL,
			     "the export is not of the image form (export.form \"image\"), which "
			     "registries take");
	if (r == 0)
		r = push_desc(reg, dirfd, cfg, mount_from, ret_msg);
	json_array_foreach(json_object_get(m, "layers"), i, d) if (r == 0) r =
	    push_desc(reg, dirfd, d, mount_from, ret_msg);
	if (r == 0)
		r = registry_push_manifest(reg, ref->tag[0] ? ref->tag : mdigest,
					   mt ? mt : OCI_MT_MANIFEST, buf, len, ret_msg);
	json_decref(m);
	free(buf);
	return r;
}

int remote_push_layout(const char *dir, const struct imageref *ref, const char *mount_from,
		       const struct registry_opts *o, char **ret_msg)
{
	struct registry *reg = NULL;
	char *buf = NULL;
	size_t len = 0;
	json_t *index = NULL;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = dirfd < 0 ? sfs_errf(ret_msg, errno, "%s: %s", dir, strerror(errno)) : 0;

	if (r == 0 && (r = read_file_at(dirfd, "index.json", 64u << 20, &buf, &len)) < 0)
		sfs_errf(ret_msg, r, "%s/index.json: %s", dir, strerror(-r));
	if (r == 0 && !(index = json_loadb(buf, len, 0, NULL)))
		r = sfs_errf(ret_msg, EINVAL, "%s/index.json: not JSON", dir);
	const json_t *pick = r == 0 ? index_pick(index) : NULL;
	if (r == 0 && (!pick || !oci_desc_digest(pick)))
		r = sfs_errf(ret_msg, EINVAL, "%s/index.json: no manifest tagged latest", dir);
	if (r == 0)
		r = registry_open(ref, o, &reg, ret_msg);
	if (r == 0)
		r = push_manifest_of(reg, dirfd, ref, oci_desc_digest(pick), mount_from, ret_msg);
	registry_close(reg);
	json_decref(index);
	free(buf);
	if (dirfd >= 0)
		close(dirfd);
	return r;
}

/* ---- pull ---- */

int remote_resolve(const struct imageref *ref, const struct registry_opts *o,
		   char ret_digest[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct registry *reg = NULL;
	if (ref->digest[0]) {
		memcpy(ret_digest, ref->digest, SFS_DIGEST_SIZE);
		return 0;
	}
	int r = registry_open(ref, o, &reg, ret_msg);
	if (r == 0)
		r = registry_resolve(reg, ref->tag, ret_digest, ret_msg);
	registry_close(reg);
	return r;
}

void remote_source_free(void *p)
{
	struct remote_source *src = p;
	if (!src)
		return;
	registry_close(src->reg);
	free(src);
}

static int write_at(int dirfd, const char *rel, const void *buf, size_t len)
{
	int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	int r = 0;
	const char *p = buf;
	while (r == 0 && len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else {
			p += n;
			len -= (size_t)n;
		}
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int write_blob(int dirfd, const char *digest, const char *buf, size_t len)
{
	char rel[OCI_BLOB_PATH_SIZE];
	oci_blob_path(digest, rel);
	return write_at(dirfd, rel, buf, len);
}

/* The cache config's descriptor in a manifest of any of the three forms. */
static const json_t *config_desc(const json_t *m)
{
	const json_t *cfg = json_object_get(m, "config"), *d;
	size_t i;
	if (oci_desc_is(cfg, OCI_MT_CACHECONFIG))
		return cfg;
	json_array_foreach(json_object_get(m, "manifests"), i, d) if (oci_desc_is(
	    d, OCI_MT_CACHECONFIG)) return d;
	return NULL;
}

static int make_layout(int *ret_fd, const char *dir)
{
	char sub[4096];
	if (mkdir(dir, 0700) < 0)
		return -errno;
	snprintf(sub, sizeof(sub), "%s/blobs", dir);
	if (mkdir(sub, 0700) < 0)
		return -errno;
	snprintf(sub, sizeof(sub), "%s/blobs/sha256", dir);
	if (mkdir(sub, 0700) < 0)
		return -errno;
	*ret_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *ret_fd < 0 ? -errno : 0;
}

static int fetch_layout(struct registry *reg, const struct imageref *ref, uint64_t json_max,
			int dirfd, char **ret_msg)
{
	char *mbuf = NULL, *cbuf = NULL, *mt = NULL, mdigest[SFS_DIGEST_SIZE];
	size_t mlen = 0, clen = 0;
	json_t *m = NULL;
	const char *want = ref->digest[0] ? ref->digest : ref->tag;
	int r = registry_get_manifest(reg, want, &mbuf, &mlen, &mt, mdigest, ret_msg);
	if (r == 0 && !(m = json_loadb(mbuf, mlen, 0, NULL)))
		r = sfs_errf(ret_msg, EINVAL, "manifest %s: not JSON", want);
	const json_t *cd = r == 0 ? config_desc(m) : NULL;
	json_t *csize = cd ? json_object_get(cd, "size") : NULL;
	if (r == 0 && !cd)
		r = sfs_errf(ret_msg, EINVAL, "manifest %s has no %s config (not a cache export)",
			     want, OCI_MT_CACHECONFIG);
	if (r == 0 && json_is_integer(csize) && (uint64_t)json_integer_value(csize) > json_max)
		r = sfs_errf(ret_msg, EFBIG, "the cache config is larger than %llu bytes",
			     (unsigned long long)json_max);
	if (r == 0)
		r = registry_get_blob_buf(reg, oci_desc_digest(cd), json_max, &cbuf, &clen, ret_msg);
	if (r == 0 && (r = write_blob(dirfd, mdigest, mbuf, mlen)) == 0)
		r = write_blob(dirfd, oci_desc_digest(cd), cbuf, clen);
	if (r == 0) {
		struct strbuf sb = STRBUF_INIT;
		const char *mmt = json_string_value(json_object_get(m, "mediaType"));
		strbuf_addstr(&sb, "{\"schemaVersion\":2,\"manifests\":[");
		oci_desc_json_open(&sb, mmt ? mmt : OCI_MT_MANIFEST, mdigest, mlen);
		strbuf_addstr(&sb, ",\"annotations\":{\"" OCI_REF_NAME "\":\"latest\"}}]}");
		r = sb.oom ? -ENOMEM : write_at(dirfd, "index.json", sb.buf, sb.len);
		strbuf_release(&sb);
	}
	json_decref(m);
	free(mbuf);
	free(cbuf);
	free(mt);
	return r;
}

int remote_source_open(const struct imageref *ref, const struct registry_opts *o, struct cas *cas,
		       const char *dir, struct remote_source **ret, char **ret_msg)
{
	struct remote_source *src = calloc(1, sizeof(*src));
	int dirfd = -1, r = src ? 0 : -ENOMEM;
	uint64_t json_max = o && o->json_max ? o->json_max : REGISTRY_MANIFEST_MAX_DEFAULT;

	if (r == 0)
		src->cas = cas;
	if (r == 0 && (r = make_layout(&dirfd, dir)) < 0)
		sfs_errf(ret_msg, r, "%s: %s", dir, strerror(-r));
	if (r == 0)
		r = registry_open(ref, o, &src->reg, ret_msg);
	if (r == 0)
		r = fetch_layout(src->reg, ref, json_max, dirfd, ret_msg);
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0) {
		remote_source_free(src);
		return r;
	}
	*ret = src;
	return 0;
}

int remote_fetch(void *p, const char *digest, uint64_t size, int *ret_fd, char **ret_msg)
{
	struct remote_source *src = p;
	int r = registry_fetch_blob(src->reg, digest, size, src->cas, ret_msg);
	if (r == -ENOENT)
		return 1;
	if (r == 0)
		r = cas_open_blob(src->cas, digest + 7, ret_fd);
	return r;
}
