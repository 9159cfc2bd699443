/* oci.c — see oci.h.  No state, no locks. */
#include "oci.h"
#include "fdio.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void oci_blob_path(const char *digest, char ret[OCI_BLOB_PATH_SIZE])
{
	snprintf(ret, OCI_BLOB_PATH_SIZE, "blobs/sha256/%s", digest + 7);
}

void oci_desc_json_open(struct strbuf *sb, const char *media_type, const char *digest,
			uint64_t size)
{
	strbuf_addstr(sb, "{\"mediaType\":");
	strbuf_add_json_str(sb, media_type);
	strbuf_addstr(sb, ",\"digest\":");
	strbuf_add_json_str(sb, digest);
	strbuf_addf(sb, ",\"size\":%llu", (unsigned long long)size);
}

static const char *str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const char *oci_desc_digest(const json_t *d)
{
	const char *s = str_of(d, "digest");
	return sfs_is_digest(s) ? s : NULL;
}

const char *oci_desc_media_type(const json_t *d)
{
	return str_of(d, "mediaType");
}

bool oci_desc_is_tagged(const json_t *d, const char *tag)
{
	const char *name = str_of(json_object_get(d, "annotations"), OCI_REF_NAME);
	return name && strcmp(name, tag) == 0;
}

bool oci_desc_is(const json_t *d, const char *mt)
{
	const char *m = oci_desc_media_type(d);
	return m && strcmp(m, mt) == 0 && oci_desc_digest(d);
}

int oci_open_dir_at(int dirfd, const char *name, int *ret_fd)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	/* With O_DIRECTORY a symlink is ENOTDIR: say which it is. */
	if (fd < 0 && errno == ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return -ELOOP;
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int oci_open_regular_at(int dirfd, const char *name, int *ret_fd, off_t *ret_size)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*ret_fd = fd;
	*ret_size = st.st_size;
	return 0;
}

int oci_read_all(int fd, off_t size, uint64_t max, const char *digest, char **ret_buf,
		 size_t *ret_len)
{
	char hex[SFS_HEX_SIZE];
	ssize_t n;
	char *buf;

	if ((uint64_t)size > max) {
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)size + 1);
	n = buf ? sfs_read_full(fd, buf, (size_t)size) : -ENOMEM;
	close(fd);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	buf[n] = '\0';
	sfs_sha256_hex(buf, (size_t)n, hex);
	if (digest && strcmp(hex, digest + 7) != 0) {
		free(buf);
		return -EBADMSG;
	}
	*ret_buf = buf;
	*ret_len = (size_t)n;
	return 0;
}

const char *oci_open_strerror(int r)
{
	return r == -ELOOP     ? "is a symlink (not followed inside a layout)"
	       : r == -EINVAL  ? "not a regular file"
	       : r == -ENOTDIR ? "not a directory"
			       : strerror(-r);
}
