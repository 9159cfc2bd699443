/*
 * exports.c — the whole-cache exports of a STATE_DIR (see exports.h).
 *
 * Locking: exports_lock (process-wide) is held while an export is renamed
 * into place and `latest` pointed at it, and while a prune reads `latest` and
 * deletes the others.  Everything else reads the directory as it is.
 */
#include "exports.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

static pthread_mutex_t exports_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint tmp_counter;

bool cache_exports_is_name(const char *name)
{
	return sfs_is_hex(name) || strcmp(name, CACHE_EXPORTS_LATEST) == 0;
}

static char *exports_dir(struct sfs_cache *c)
{
	char *p = NULL;

	return asprintf(&p, "%s/exports", c->state_dir) < 0 ? NULL : p;
}

char *cache_exports_path(struct sfs_cache *c, const char *hex, const char *rel)
{
	char *p = NULL;
	int n = rel && strcmp(rel, ".") ? asprintf(&p, "%s/exports/%s/%s", c->state_dir, hex, rel)
					: asprintf(&p, "%s/exports/%s", c->state_dir, hex);

	return n < 0 ? NULL : p;
}

/* Reads exports/latest: the newest hex (lock held or not: one readlink). */
static int read_latest(const char *dir, char ret_hex[SFS_HEX_SIZE])
{
	char path[4096], buf[SFS_HEX_SIZE + 1];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_EXPORTS_LATEST);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (!sfs_is_hex(buf))
		return -ENOENT;
	memcpy(ret_hex, buf, SFS_HEX_SIZE);
	return 0;
}

int cache_exports_newest(struct sfs_cache *c, char ret_hex[SFS_HEX_SIZE])
{
	char *dir = exports_dir(c);
	int r = dir ? read_latest(dir, ret_hex) : -ENOMEM;

	free(dir);
	if (r == 0 && !cache_exports_has(c, ret_hex))
		r = -ENOENT;
	return r < 0 ? -ENOENT : 0;
}

bool cache_exports_has(struct sfs_cache *c, const char *hex)
{
	struct stat st;
	char *p;
	bool ok;

	if (!sfs_is_hex(hex) || !(p = cache_exports_path(c, hex, NULL)))
		return false;
	ok = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
	free(p);
	return ok;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cache_exports_list(struct sfs_cache *c, struct strv *ret)
{
	struct strv sv = {0};
	struct dirent *de;
	char *dir = exports_dir(c);
	DIR *d;
	int r = 0;

	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	free(dir);
	if (!d) {
		*ret = sv;
		return errno == ENOENT ? 0 : -errno;
	}
	while (r == 0 && (de = readdir(d)))
		if (sfs_is_hex(de->d_name))
			r = strv_push(&sv, de->d_name);
	closedir(d);
	if (r < 0) {
		strv_release(&sv);
		return r;
	}
	if (sv.n > 1) /* sv.v is NULL when there is none */
		qsort(sv.v, sv.n, sizeof(*sv.v), cmp_str);
	*ret = sv;
	return 0;
}

/* Apparent bytes of everything under dirfd/name, name included. */
static int tree_bytes(int at, const char *name, int depth, uint64_t *bytes)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	*bytes += (uint64_t)st.st_size;
	if (!S_ISDIR(st.st_mode))
		return 0;
	if (depth > 16)
		return -ELOOP; /* a layout is three levels deep */
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = tree_bytes(dirfd(d), de->d_name, depth + 1, bytes);
	closedir(d);
	return r;
}

int cache_exports_usage(struct sfs_cache *c, uint64_t *ret_n, uint64_t *ret_bytes)
{
	struct strv sv = {0};
	char *dir = exports_dir(c);
	uint64_t bytes = 0;
	int dfd, r;

	if (!dir)
		return -ENOMEM;
	r = cache_exports_list(c, &sv);
	dfd = r == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	for (size_t i = 0; r == 0 && dfd >= 0 && i < sv.n; i++)
		r = tree_bytes(dfd, sv.v[i], 0, &bytes);
	if (dfd >= 0)
		close(dfd);
	free(dir);
	if (r == 0) {
		*ret_n = sv.n;
		*ret_bytes = bytes;
	}
	strv_release(&sv);
	return r;
}

/* Points exports/latest at hex: a new symlink renamed over the old (lock held). */
static int set_latest(const char *dir, const char *hex)
{
	char tmp[4096], path[4096];

	snprintf(tmp, sizeof(tmp), "%s/.latest-%d-%u", dir, (int)getpid(),
		 atomic_fetch_add(&tmp_counter, 1));
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_EXPORTS_LATEST);
	if (symlink(hex, tmp) < 0)
		return -errno;
	if (rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

/* Renames the finished layout tmp to dir/<hex> and makes it the newest. */
static int publish(const char *dir, const char *tmp, const char *hex)
{
	char *path = NULL;
	int r = 0;

	if (asprintf(&path, "%s/%s", dir, hex) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&exports_lock);
	if (rename(tmp, path) < 0) {
		r = -errno;
		if (r == -EEXIST || r == -ENOTEMPTY) /* the same export is there */
			r = cas_rmtree(tmp);
	}
	if (r == 0)
		r = set_latest(dir, hex);
	pthread_mutex_unlock(&exports_lock);
	free(path);
	return r;
}

int cache_exports_make(struct sfs_cache *c, enum cache_export_mode mode,
		       enum cache_export_form form, const atomic_bool *stop,
		       char ret_hex[SFS_HEX_SIZE], char **ret_msg)
{
	char manifest[SFS_DIGEST_SIZE];
	char *dir = exports_dir(c), *tmp = NULL;
	int r;

	if (!dir || asprintf(&tmp, "%s/.whole-%d-%u", dir, (int)getpid(),
			     atomic_fetch_add(&tmp_counter, 1)) < 0) {
		free(dir);
		return sfs_errf(ret_msg, ENOMEM, "cache export: out of memory");
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		r = sfs_errf(ret_msg, errno, "cache export: %s: %s", dir, strerror(errno));
	else
		r = cache_export_all(c, c->main, mode, form, tmp, stop, manifest, ret_msg);
	if (r == 0 && (r = publish(dir, tmp, manifest + 7)) < 0)
		sfs_errf(ret_msg, r, "cache export: %s", strerror(-r));
	if (r < 0)
		cas_rmtree(tmp);
	else
		memcpy(ret_hex, manifest + 7, SFS_HEX_SIZE);
	free(tmp);
	free(dir);
	return r;
}

int cache_exports_prune(struct sfs_cache *c, bool dry_run, uint64_t *ret_n, uint64_t *ret_bytes)
{
	char newest[SFS_HEX_SIZE] = "", *dir = exports_dir(c);
	struct strv sv = {0};
	uint64_t n = 0, bytes = 0;
	int dfd = -1, r;

	if (!dir)
		return -ENOMEM;
	pthread_mutex_lock(&exports_lock);
	if (read_latest(dir, newest) < 0)
		newest[0] = '\0'; /* none is the newest: there is no export to keep */
	r = cache_exports_list(c, &sv);
	if (r == 0 && sv.n && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	for (size_t i = 0; r == 0 && i < sv.n; i++) {
		char *p = NULL;
		if (!strcmp(sv.v[i], newest))
			continue;
		r = tree_bytes(dfd, sv.v[i], 0, &bytes);
		n++;
		if (r == 0 && !dry_run)
			r = (p = cache_exports_path(c, sv.v[i], NULL)) ? cas_rmtree(p) : -ENOMEM;
		free(p);
	}
	pthread_mutex_unlock(&exports_lock);
	if (dfd >= 0)
		close(dfd);
	strv_release(&sv);
	free(dir);
	if (r == 0 && ret_n)
		*ret_n = n;
	if (r == 0 && ret_bytes)
		*ret_bytes = bytes;
	return r;
}

const char *cache_exports_mode_name(enum cache_export_mode m)
{
	return m == CACHE_EXPORT_MAX ? "max" : m == CACHE_EXPORT_MIN ? "min" : "remote-only";
}

const char *cache_exports_form_name(enum cache_export_form f)
{
	return f == CACHE_EXPORT_MANIFEST_LIST ? "manifest-list" : "image";
}

/* One word of the command: "key=value" into mode or form. */
static int parse_word(const char *w, size_t n, bool *seen_mode, bool *seen_form,
		      enum cache_export_mode *mode, enum cache_export_form *form, char **ret_msg)
{
#define IS(lit) (n == sizeof(lit) - 1 && !memcmp(w, lit, n))
	if (IS("mode=max") || IS("mode=min")) {
		if (*seen_mode)
			return sfs_errf(ret_msg, EINVAL, "export: mode given twice");
		*seen_mode = true;
		*mode = IS("mode=max") ? CACHE_EXPORT_MAX : CACHE_EXPORT_MIN;
		return 0;
	}
	if (IS("form=image") || IS("form=manifest-list")) {
		if (*seen_form)
			return sfs_errf(ret_msg, EINVAL, "export: form given twice");
		*seen_form = true;
		*form = IS("form=image") ? CACHE_EXPORT_IMAGE : CACHE_EXPORT_MANIFEST_LIST;
		return 0;
	}
#undef IS
	return sfs_errf(ret_msg, EINVAL,
			"export: unknown argument \"%.*s\" (export [mode=max|min] "
			"[form=image|manifest-list])",
			(int)(n > 64 ? 64 : n), w);
}

int cache_exports_parse(const char *args, enum cache_export_mode *ret_mode,
			enum cache_export_form *ret_form, char **ret_msg)
{
	enum cache_export_mode mode = CACHE_EXPORT_MAX;
	enum cache_export_form form = CACHE_EXPORT_IMAGE;
	bool seen_mode = false, seen_form = false;
	const char *p = args ? args : "";
	int r = 0;

	while (r == 0 && *p) {
		size_t n;
		p += strspn(p, " \t\n");
		n = strcspn(p, " \t\n");
		if (n)
			r = parse_word(p, n, &seen_mode, &seen_form, &mode, &form, ret_msg);
		p += n;
	}
	if (r < 0)
		return r;
	*ret_mode = mode;
	*ret_form = form;
	return 0;
}
