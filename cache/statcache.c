/*
 * statcache.c — the daemon's memory of host files already read (statcache.h).
 *
 * A strmap keyed by "dev:ino" with borrowed keys: each key is the entry's own
 * buffer, so an entry is one allocation.
 */
#include "statcache.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct sc_entry {
	char key[48]; /* "dev:ino" */
	int64_t size, mtime_ns, ctime_ns;
	char hex[SFS_HEX_SIZE];
};

struct sfs_statcache {
	pthread_mutex_t lock;
	struct strmap map; /* key -> struct sc_entry */
};

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void key_of(const struct stat *st, char key[48])
{
	snprintf(key, 48, "%" PRIu64 ":%" PRIu64, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
}

static bool same_meta(const struct sc_entry *e, const struct stat *st)
{
	return e->size == (int64_t)st->st_size && e->mtime_ns == ts_ns(&st->st_mtim) &&
	       e->ctime_ns == ts_ns(&st->st_ctim);
}

int sfs_statcache_new(struct sfs_statcache **ret)
{
	struct sfs_statcache *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return -ENOMEM;
	pthread_mutex_init(&sc->lock, NULL);
	sc->map = (struct strmap)STRMAP_INIT_BORROWED;
	*ret = sc;
	return 0;
}

/* Frees every entry and empties the map; the lock is held (or the cache is ours). */
static void clear_locked(struct sfs_statcache *sc)
{
	const char *k;
	void *v;

	for (size_t i = 0; strmap_next(&sc->map, &i, &k, &v);)
		free(v);
	strmap_release(&sc->map);
	sc->map = (struct strmap)STRMAP_INIT_BORROWED;
}

struct sfs_statcache *sfs_statcache_free(struct sfs_statcache *sc)
{
	if (!sc)
		return NULL;
	clear_locked(sc);
	pthread_mutex_destroy(&sc->lock);
	free(sc);
	return NULL;
}

bool sfs_statcache_get(struct sfs_statcache *sc, const struct stat *st, char ret_hex[SFS_HEX_SIZE])
{
	struct sc_entry *e;
	char key[48];
	bool hit = false;

	if (!sc || !S_ISREG(st->st_mode))
		return false;
	key_of(st, key);
	pthread_mutex_lock(&sc->lock);
	e = strmap_get(&sc->map, key);
	if (e && same_meta(e, st)) {
		memcpy(ret_hex, e->hex, SFS_HEX_SIZE);
		hit = true;
	}
	pthread_mutex_unlock(&sc->lock);
	return hit;
}

void sfs_statcache_put(struct sfs_statcache *sc, const struct stat *st, const char *hex,
		       int64_t read_start_ns)
{
	struct sc_entry *e;
	void *old = NULL;

	/* ctime, which no one can set, says when the file last changed; mtime can lie. */
	if (!sc || !S_ISREG(st->st_mode) || ts_ns(&st->st_ctim) > read_start_ns - STATCACHE_RACY_NS)
		return; /* changed too recently to trust its metadata */
	if (!(e = malloc(sizeof(*e))))
		return;
	key_of(st, e->key);
	e->size = (int64_t)st->st_size;
	e->mtime_ns = ts_ns(&st->st_mtim);
	e->ctime_ns = ts_ns(&st->st_ctim);
	snprintf(e->hex, sizeof(e->hex), "%s", hex);
	pthread_mutex_lock(&sc->lock);
	if (sc->map.len >= STATCACHE_MAX)
		clear_locked(sc);
	if (strmap_put(&sc->map, e->key, e, &old) < 0)
		free(e);
	free(old);
	pthread_mutex_unlock(&sc->lock);
}

size_t sfs_statcache_len(struct sfs_statcache *sc)
{
	size_t n;

	pthread_mutex_lock(&sc->lock);
	n = sc->map.len;
	pthread_mutex_unlock(&sc->lock);
	return n;
}
