/*
 * workdir.c — component-wise path resolution below a directory fd (workdir.h).
 */
#include "workdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* One component below dfd; ELOOP/ENOTDIR when it is not a real directory. */
static int open_component(int dfd, const char *name, bool create)
{
	int fd = openat(dfd, name, DIR_FLAGS);

	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
			return -errno;
		fd = openat(dfd, name, DIR_FLAGS);
	}
	if (fd < 0) {
		struct stat st;
		int e = errno;
		/* O_NOFOLLOW on a symlink says ELOOP or ENOTDIR: say which */
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			return -ELOOP;
		return -e;
	}
	return fd;
}

int sfs_wd_open_dir(int base, const char *rel, bool create, int *ret_fd)
{
	char name[NAME_MAX + 1];
	int fd = openat(base, ".", DIR_FLAGS);

	if (fd < 0)
		return -errno;
	for (const char *p = rel; *p;) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		p = *e ? e + 1 : e;
		if (n == 0 || strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			close(fd);
			return -EINVAL;
		}
		int next = open_component(fd, name, create);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	*ret_fd = fd;
	return 0;
}

int sfs_wd_open(int base, const char *rel, int flags, int *ret_fd)
{
	const char *slash = strrchr(rel, '/');
	char parent[PATH_MAX];
	int dfd, fd, r;

	if (!slash)
		return (fd = openat(base, *rel ? rel : ".", flags | O_NOFOLLOW | O_CLOEXEC)) < 0
			   ? -errno
			   : (*ret_fd = fd, 0);
	if ((size_t)(slash - rel) >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, rel, (size_t)(slash - rel));
	parent[slash - rel] = '\0';
	if ((r = sfs_wd_open_dir(base, parent, false, &dfd)) < 0)
		return r;
	fd = openat(dfd, slash + 1, flags | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	close(dfd);
	if (r == 0)
		*ret_fd = fd;
	return r;
}

int sfs_wd_fd_path(int dirfd, const char *name, char *buf, size_t size)
{
	int n = snprintf(buf, size, "/proc/self/fd/%d%s%s", dirfd, *name ? "/" : "", name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
