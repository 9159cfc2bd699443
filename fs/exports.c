/*
 * exports.c — jobs/N/export/: a job's cache export, an OCI image layout the
 * solver wrote to STATE_DIR/exports/N (README.md "The mounted tree", "The spec").
 *
 * The tree is served from that directory as it is on disk: it is complete
 * before it exists under its name (written elsewhere, then renamed) and never
 * changes afterwards, so every node is immutable (long kernel timeouts,
 * keep_cache) and `cp -r jobs/N/export DIR` copies a layout BuildKit reads.
 * Descriptors: kind FS_JOB_EXPORT, job N, path relative to the layout ("." for
 * its root).  Owners are the mount owner's; write bits are cleared.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

/* The host path of d, malloc'd; -ENOENT when the job has no export. */
static int host_path(struct sfs_fs *fs, const struct fs_desc *d, char **ret)
{
	char *dir = sfs_solver_job_export(fs->solver, d->job);
	if (!dir)
		return -ENOENT;
	const char *p = d->path && strcmp(d->path, ".") ? d->path : NULL;
	int r = p ? asprintf(ret, "%s/%s", dir, p) : asprintf(ret, "%s", dir);
	free(dir);
	return r < 0 ? -ENOMEM : 0;
}

int fs_export_root(struct sfs_fs *fs, uint64_t job, struct fs_desc *ret)
{
	char *dir = sfs_solver_job_export(fs->solver, job);
	if (!dir)
		return -ENOENT;
	free(dir);
	*ret = (struct fs_desc){.kind = FS_JOB_EXPORT, .job = job, .path = strdup(".")};
	return ret->path ? 0 : -ENOMEM;
}

static int exports_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			  struct fs_desc *ret)
{
	char *child = NULL;
	struct stat st;
	if (!strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return -ENOENT;
	bool top = !d->path || !strcmp(d->path, ".");
	if ((top ? asprintf(&child, "%s", name) : asprintf(&child, "%s/%s", d->path, name)) < 0)
		return -ENOMEM;
	struct fs_desc c = {.kind = FS_JOB_EXPORT, .job = d->job, .path = child};
	char *p = NULL;
	int r = host_path(fs, &c, &p);
	if (r == 0 && lstat(p, &st) < 0)
		r = -errno;
	free(p);
	if (r < 0) {
		free(child);
		return r;
	}
	*ret = c;
	return 0;
}

static int exports_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	struct stat hs;
	char *p = NULL;
	int r = host_path(fs, d, &p);
	if (r == 0 && lstat(p, &hs) < 0)
		r = -errno;
	free(p);
	if (r < 0)
		return r;
	mode_t mode = (hs.st_mode & S_IFMT) | (hs.st_mode & 0555);
	fs_stat_init(fs, st, mode, fs->uid, fs->gid);
	st->st_size = hs.st_size;
	st->st_nlink = S_ISDIR(hs.st_mode) ? 2 : 1;
	st->st_mtim = st->st_ctim = st->st_atim = hs.st_mtim;
	return 0;
}

static int exports_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	char *p = NULL;
	int r = host_path(fs, d, &p);
	if (r < 0)
		return r;
	DIR *dir = opendir(p);
	free(p);
	if (!dir)
		return -errno;
	bool top = !d->path || !strcmp(d->path, ".");
	struct dirent *de;
	while (r == 0 && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *child = NULL;
		if ((top ? asprintf(&child, "%s", de->d_name)
			 : asprintf(&child, "%s/%s", d->path, de->d_name)) < 0) {
			r = -ENOMEM;
			break;
		}
		struct fs_desc c = {.kind = FS_JOB_EXPORT, .job = d->job, .path = child};
		mode_t type = de->d_type == DT_DIR   ? S_IFDIR
			      : de->d_type == DT_LNK ? S_IFLNK
						     : S_IFREG;
		r = fs_dirlist_add(l, de->d_name, type, &c);
		free(child);
	}
	closedir(dir);
	return r;
}

static int exports_readlink(struct sfs_fs *fs, const struct fs_desc *d, char **ret)
{
	char *p = NULL, buf[4096];
	int r = host_path(fs, d, &p);
	if (r < 0)
		return r;
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);
	free(p);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

/* Opens a layout file for reading into f->fd (blobs can be large: no snapshot). */
int fs_exports_open(struct sfs_fs *fs, struct fs_file *f)
{
	char *p = NULL;
	int r = host_path(fs, &f->d, &p);
	if (r < 0)
		return r;
	f->fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	r = f->fd < 0 ? -errno : 0;
	free(p);
	return r;
}

static int exports_content(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out)
{
	return -EISDIR; /* files are read through fs_exports_open */
}

const struct fs_module fs_exports_module = {
    .lookup = exports_lookup,
    .getattr = exports_getattr,
    .readdir = exports_readdir,
    .content = exports_content,
    .readlink = exports_readlink,
};
