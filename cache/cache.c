/*
 * cache.c — opens the cache of one STATE_DIR: the content store, the database
 * STATE_DIR/solverfs.db, and the main cache manager ("local", as buildkitd
 * names its own) with the SQLite key storage and results in the store.
 *
 * No locks: the parts lock themselves; struct sfs_cache is immutable between
 * open and close.
 */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "result_storage.h"
#include "statcache.h"

/* mkdir -p, mode 0700 for what it creates: the state holds other users'
 * build inputs and outputs. */
static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	int r = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s && r == 0; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
	}
	if (r == 0 && mkdir(p, 0700) < 0 && errno != EEXIST)
		r = -errno;
	free(p);
	return r;
}

static int cache_open_manager(struct sfs_cache *c, char **ret_msg)
{
	struct keystore *ks = NULL;
	struct result_storage *rs = NULL;
	int r;

	r = keystore_sqlite_new(c->db, &ks);
	if (r == 0)
		r = result_storage_cas_new(c->cas, c->db, &rs);
	if (r == 0)
		r = cache_manager_new("local", ks, rs, &c->main);
	if (r < 0) {
		keystore_free(ks);
		if (rs)
			rs->ops->free(rs);
		return sfs_errf(ret_msg, r, "cannot create the cache manager: %s", strerror(-r));
	}
	return 0;
}

/*
 * The database holds every job's spec (env secrets included): 0600, made so
 * before SQLite opens it, so that its -wal and -shm files, which SQLite
 * creates with the database's mode, are private too.
 */
static int make_private(const char *db_path)
{
	static const char *const sfx[] = {"-wal", "-shm"};
	char p[PATH_MAX];
	int fd = open(db_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	int r = fchmod(fd, 0600) < 0 ? -errno : 0;
	close(fd);
	for (size_t i = 0; r == 0 && i < 2; i++) {
		snprintf(p, sizeof(p), "%s%s", db_path, sfx[i]);
		if (chmod(p, 0600) < 0 && errno != ENOENT)
			r = -errno;
	}
	return r;
}

int sfs_cache_open(const char *state_dir, struct sfs_cache **ret, char **ret_msg)
{
	struct sfs_cache *c;
	char *db_path = NULL;
	struct stat st;
	int r;

	r = mkdir_p(state_dir);
	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot create %s: %s", state_dir, strerror(-r));
	if (stat(state_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return sfs_errf(ret_msg, ENOTDIR, "%s is not a directory", state_dir);
	c = calloc(1, sizeof(*c));
	if (!c || !(c->state_dir = strdup(state_dir))) {
		free(c);
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	}
	r = cache_holds_new(&c->holds);
	if (r == 0)
		r = cas_open(state_dir, &c->cas);
	if (r < 0) {
		sfs_errf(ret_msg, r, "cannot open the content store in %s: %s", state_dir,
			 strerror(-r));
		goto fail;
	}
	if (asprintf(&db_path, "%s/solverfs.db", state_dir) < 0) {
		db_path = NULL;
		r = sfs_errf(ret_msg, ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = make_private(db_path)) < 0)
		sfs_errf(ret_msg, r, "cannot create %s: %s", db_path, strerror(-r));
	else
		r = sfs_db_open(db_path, &c->db, ret_msg);
	free(db_path);
	if (r == 0)
		cas_attach_db(c->cas, c->db);
	if (r == 0)
		r = sfs_statcache_open(c->db, &c->statcache, ret_msg);
	if (r == 0 && (r = sfs_db_group_commit(c->db, SFS_CACHE_COMMIT_MS)) < 0)
		sfs_errf(ret_msg, r, "cannot start the database's group commit: %s", strerror(-r));
	if (r == 0)
		r = cache_open_manager(c, ret_msg);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	sfs_cache_close(c);
	return r;
}

struct sfs_cache *sfs_cache_close(struct sfs_cache *c)
{
	if (!c)
		return NULL;
	/* The manager's storages use the database and the store: close it first. */
	cache_manager_free(c->main);
	sfs_statcache_free(c->statcache); /* over the database */
	sfs_db_close(c->db);
	cas_close(c->cas);
	cache_holds_free(c->holds);
	free(c->state_dir);
	free(c);
	return NULL;
}
