/*
 * exports.c — jobs/N/export/: a job's cache export, an OCI image layout the
 * solver wrote to STATE_DIR/exports/N (README.md "The mounted tree", "The spec");
 * and cache/exports/<hex>/, the whole-cache exports of STATE_DIR/exports/<hex>
 * (cache/exports.h), with cache/export a symlink to the newest.
 *
 * The tree is served from that directory as it is on disk: it is complete
 * before it exists under its name (written elsewhere, then renamed) and never
 * changes afterwards, so every node is immutable (long kernel timeouts,
 * keep_cache) and `cp -r jobs/N/export DIR` copies a layout BuildKit reads.
 * Descriptors: kind FS_JOB_EXPORT, job N, or FS_CACHE_EXPORT_ENTRY, hex, and
 * path relative to the layout ("." for its root).  Owners are the mount
 * owner's; write bits are cleared.  cache/exports/ itself lists what is on
 * disk now and cache/export reads `latest` at each call: both are dynamic.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exports.h"
#include "fs.h"

/* The host path of d, malloc'd; -ENOENT when the job has no export. */
static int host_path(struct sfs_fs *fs, const struct fs_desc *d, char **ret)
{
	if (d->kind == FS_CACHE_EXPORT_ENTRY) {
		if (!cache_exports_has(fs->cache, d->hex))
			return -ENOENT;
		*ret = cache_exports_path(fs->cache, d->hex, d->path);
		return *ret ? 0 : -ENOMEM;
	}
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

int fs_cache_export_link(struct sfs_fs *fs, struct fs_desc *ret)
{
	char hex[SFS_HEX_SIZE];
	int r = cache_exports_newest(fs->cache, hex);

	if (r < 0)
		return r;
	*ret = (struct fs_desc){.kind = FS_CACHE_EXPORT_LINK};
	return 0;
}

/* cache/exports/<hex>: the root of an export there is. */
static int lookup_export(struct sfs_fs *fs, const char *name, struct fs_desc *ret)
{
	if (!cache_exports_has(fs->cache, name))
		return -ENOENT;
	*ret = (struct fs_desc){.kind = FS_CACHE_EXPORT_ENTRY, .path = strdup(".")};
	memcpy(ret->hex, name, SFS_HEX_SIZE);
	return ret->path ? 0 : -ENOMEM;
}

static int exports_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			  struct fs_desc *ret)
{
	char *child = NULL;
	struct stat st;
	if (!strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return -ENOENT;
	if (d->kind == FS_CACHE_EXPORTS)
		return lookup_export(fs, name, ret);
	if (d->kind == FS_CACHE_EXPORT_LINK)
		return -ENOTDIR;
	bool top = !d->path || !strcmp(d->path, ".");
	if ((top ? asprintf(&child, "%s", name) : asprintf(&child, "%s/%s", d->path, name)) < 0)
		return -ENOMEM;
	struct fs_desc c = {.kind = d->kind, .job = d->job, .path = child};
	memcpy(c.hex, d->hex, SFS_HEX_SIZE);
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
	char *p = NULL, hex[SFS_HEX_SIZE];
	int r;

	if (d->kind == FS_CACHE_EXPORTS) {
		fs_stat_init(fs, st, fs_kinds[d->kind].mode, fs->uid, fs->gid);
		return 0;
	}
	if (d->kind == FS_CACHE_EXPORT_LINK) {
		if ((r = cache_exports_newest(fs->cache, hex)) < 0)
			return r;
		fs_stat_init(fs, st, fs_kinds[d->kind].mode, fs->uid, fs->gid);
		st->st_size = (off_t)strlen("exports/") + SFS_HEX_SIZE - 1;
		return 0;
	}
	r = host_path(fs, d, &p);
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

/* cache/exports/: the exports on disk now. */
static int list_exports(struct sfs_fs *fs, struct fs_dirlist *l)
{
	struct strv sv = {0};
	int r = cache_exports_list(fs->cache, &sv);

	for (size_t i = 0; r == 0 && i < sv.n; i++) {
		struct fs_desc c = {.kind = FS_CACHE_EXPORT_ENTRY, .path = "."};
		memcpy(c.hex, sv.v[i], SFS_HEX_SIZE);
		r = fs_dirlist_add(l, sv.v[i], S_IFDIR, &c);
	}
	strv_release(&sv);
	return r;
}

static int exports_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	if (d->kind == FS_CACHE_EXPORTS)
		return list_exports(fs, l);
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
		struct fs_desc c = {.kind = d->kind, .job = d->job, .path = child};
		memcpy(c.hex, d->hex, SFS_HEX_SIZE);
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
	int r;

	if (d->kind == FS_CACHE_EXPORT_LINK) {
		if ((r = cache_exports_newest(fs->cache, buf)) < 0)
			return r;
		return asprintf(ret, "exports/%s", buf) < 0 ? -ENOMEM : 0;
	}
	r = host_path(fs, d, &p);
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
