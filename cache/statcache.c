/*
 * statcache.c — the daemon's memory of host files already read (statcache.h).
 *
 * A strmap keyed by "dev:ino" with borrowed keys: each key is the entry's own
 * buffer, so an entry is one allocation.  Entries put since the last flush are
 * also copied to `pending` (copies, since a later put or a clear frees entries),
 * and `cleared` says the table must be emptied before they are written.
 *
 * The table's SQL is this module's own, run over the cache's connection under its
 * lock (cache/db.h): a cache of host metadata is nobody else's business, and one
 * unit of work a flush keeps it off the solver's path.
 *
 * Locking: lock guards map, pending, cleared and the counters; flush takes the
 * database's lock after dropping it.
 */
#include "statcache.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "db.h"
#include "err.h"
#include "strmap.h"

struct sc_entry {
	char key[48]; /* "dev:ino" */
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
	char hex[SFS_HEX_SIZE];
};

struct sfs_statcache {
	pthread_mutex_t lock;
	struct strmap map; /* key -> struct sc_entry */
	struct sfs_db *db; /* NULL: memory only */
	struct sc_entry *pending;
	size_t npending, cap_pending;
	bool cleared;
	uint64_t reads, reused;
};

static const char sc_schema[] =
    "CREATE TABLE IF NOT EXISTS statcache(dev INTEGER NOT NULL, ino INTEGER NOT NULL,"
    " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
    " blob TEXT NOT NULL, PRIMARY KEY(dev, ino)) WITHOUT ROWID";
static const char sc_load[] = "SELECT dev, ino, size, mtime_ns, ctime_ns, blob FROM statcache";
static const char sc_put[] = "INSERT OR REPLACE INTO statcache(dev, ino, size, mtime_ns,"
			     " ctime_ns, blob) VALUES(?, ?, ?, ?, ?, ?)";
static const char sc_clear[] = "DELETE FROM statcache";

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void key_of(uint64_t dev, uint64_t ino, char key[48])
{
	snprintf(key, 48, "%" PRIu64 ":%" PRIu64, dev, ino);
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

/* Takes e into the map (replacing the entry of its file); frees it on failure. */
static void insert_locked(struct sfs_statcache *sc, struct sc_entry *e)
{
	void *old = NULL;

	if (strmap_put(&sc->map, e->key, e, &old) < 0)
		free(e);
	free(old);
}

/* One SQL text on the connection, prepared, run to its end and finalized. */
static int sc_exec(struct sfs_db *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(sfs_db_handle(db), sql, NULL, NULL, &err);

	if (rc == SQLITE_OK)
		return 0;
	sfs_log(SFS_LOG_ERR, "sqlite: %s in \"%s\"", err ? err : sqlite3_errstr(rc), sql);
	sqlite3_free(err);
	return -EIO;
}

static int load_row(struct sfs_statcache *sc, sqlite3_stmt *st)
{
	const unsigned char *hex = sqlite3_column_text(st, 5);
	struct sc_entry *e;

	if (!hex || strlen((const char *)hex) != SFS_HEX_SIZE - 1)
		return 0; /* not a row this version wrote: ignored */
	if (!(e = malloc(sizeof(*e))))
		return -ENOMEM;
	e->dev = (uint64_t)sqlite3_column_int64(st, 0);
	e->ino = (uint64_t)sqlite3_column_int64(st, 1);
	e->size = sqlite3_column_int64(st, 2);
	e->mtime_ns = sqlite3_column_int64(st, 3);
	e->ctime_ns = sqlite3_column_int64(st, 4);
	key_of(e->dev, e->ino, e->key);
	memcpy(e->hex, hex, SFS_HEX_SIZE);
	insert_locked(sc, e);
	return 0;
}

/* Creates the table and loads its rows; the database lock is held. */
static int load_locked(struct sfs_statcache *sc)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	if ((r = sfs_db_begin(sc->db)) < 0)
		return r;
	r = sc_exec(sc->db, sc_schema);
	if (r == 0 &&
	    sqlite3_prepare_v2(sfs_db_handle(sc->db), sc_load, -1, &st, NULL) != SQLITE_OK)
		r = -EIO;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW && sc->map.len < STATCACHE_MAX)
		r = load_row(sc, st);
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = -EIO;
	if (r == -EIO)
		sfs_log(SFS_LOG_ERR, "sqlite: %s in \"%s\"", sqlite3_errmsg(sfs_db_handle(sc->db)),
			sc_load);
	sqlite3_finalize(st);
	return sfs_db_end(sc->db, r);
}

int sfs_statcache_open(struct sfs_db *db, struct sfs_statcache **ret, char **ret_msg)
{
	struct sfs_statcache *sc = NULL;
	int r = sfs_statcache_new(&sc);

	if (r < 0)
		return sfs_errf(ret_msg, r, "out of memory");
	sc->db = db;
	sfs_db_lock(db);
	r = load_locked(sc);
	sfs_db_unlock(db);
	if (r < 0) {
		sfs_statcache_free(sc);
		return sfs_errf(ret_msg, r, "cannot load the stat cache: %s", strerror(-r));
	}
	*ret = sc;
	return 0;
}

struct sfs_statcache *sfs_statcache_free(struct sfs_statcache *sc)
{
	if (!sc)
		return NULL;
	clear_locked(sc);
	free(sc->pending);
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
	key_of((uint64_t)st->st_dev, (uint64_t)st->st_ino, key);
	pthread_mutex_lock(&sc->lock);
	e = strmap_get(&sc->map, key);
	if (e && same_meta(e, st)) {
		memcpy(ret_hex, e->hex, SFS_HEX_SIZE);
		hit = true;
	}
	pthread_mutex_unlock(&sc->lock);
	return hit;
}

/* Queues a copy of e for the next flush; without room it is only not persisted. */
static void pend_locked(struct sfs_statcache *sc, const struct sc_entry *e)
{
	if (!sc->db ||
	    sfs_grow((void **)&sc->pending, &sc->cap_pending, sc->npending + 1, sizeof(*e)) < 0)
		return;
	sc->pending[sc->npending++] = *e;
}

void sfs_statcache_put(struct sfs_statcache *sc, const struct stat *st, const char *hex,
		       int64_t read_start_ns)
{
	struct sc_entry *e;

	/* ctime, which no one can set, says when the file last changed; mtime can lie. */
	if (!sc || !S_ISREG(st->st_mode) || ts_ns(&st->st_ctim) > read_start_ns - STATCACHE_RACY_NS)
		return; /* changed too recently to trust its metadata */
	if (!(e = malloc(sizeof(*e))))
		return;
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	key_of(e->dev, e->ino, e->key);
	e->size = (int64_t)st->st_size;
	e->mtime_ns = ts_ns(&st->st_mtim);
	e->ctime_ns = ts_ns(&st->st_ctim);
	sfs_copy_str(e->hex, sizeof(e->hex), hex);
	pthread_mutex_lock(&sc->lock);
	if (sc->map.len >= STATCACHE_MAX) {
		clear_locked(sc);
		sc->npending = 0;
		sc->cleared = true;
	}
	pend_locked(sc, e);
	insert_locked(sc, e);
	pthread_mutex_unlock(&sc->lock);
}

void sfs_statcache_count(struct sfs_statcache *sc, bool reused)
{
	if (!sc)
		return;
	pthread_mutex_lock(&sc->lock);
	if (reused)
		sc->reused++;
	else
		sc->reads++;
	pthread_mutex_unlock(&sc->lock);
}

static int bind_row(sqlite3_stmt *st, const struct sc_entry *e)
{
	sqlite3_reset(st);
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)e->dev) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)e->ino) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, e->size) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, e->mtime_ns) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, e->ctime_ns) != SQLITE_OK ||
	    sqlite3_bind_text(st, 6, e->hex, -1, SQLITE_STATIC) != SQLITE_OK)
		return -EIO;
	return sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
}

/* Writes rows (and the clear) in one unit of work; the database lock is held. */
static int write_locked(struct sfs_db *db, const struct sc_entry *rows, size_t n, bool cleared)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sfs_db_begin(db)) < 0)
		return r;
	if (cleared)
		r = sc_exec(db, sc_clear);
	if (r == 0 && n &&
	    sqlite3_prepare_v2(sfs_db_handle(db), sc_put, -1, &st, NULL) != SQLITE_OK)
		r = -EIO;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = bind_row(st, &rows[i]);
	if (r < 0 && st)
		sfs_log(SFS_LOG_ERR, "sqlite: %s in \"%s\"", sqlite3_errmsg(sfs_db_handle(db)),
			sc_put);
	sqlite3_finalize(st);
	return sfs_db_end(db, r);
}

int sfs_statcache_flush(struct sfs_statcache *sc)
{
	struct sc_entry *rows;
	size_t n;
	bool cleared;
	int r;

	if (!sc || !sc->db)
		return 0;
	pthread_mutex_lock(&sc->lock);
	rows = sc->pending;
	n = sc->npending;
	cleared = sc->cleared;
	sc->pending = NULL;
	sc->npending = sc->cap_pending = 0;
	sc->cleared = false;
	pthread_mutex_unlock(&sc->lock);
	if (n == 0 && !cleared)
		return 0;
	/* Two flushes may land out of order: each row was true (and not racy) when it
	 * was put, so an older one is still safe to trust with all five values equal,
	 * and a clear that lands late only costs reads. */
	sfs_db_lock(sc->db);
	r = write_locked(sc->db, rows, n, cleared);
	sfs_db_unlock(sc->db);
	free(rows);
	return r;
}

size_t sfs_statcache_len(struct sfs_statcache *sc)
{
	size_t n;

	pthread_mutex_lock(&sc->lock);
	n = sc->map.len;
	pthread_mutex_unlock(&sc->lock);
	return n;
}

void sfs_statcache_stats(struct sfs_statcache *sc, struct sfs_statcache_stats *ret)
{
	*ret = (struct sfs_statcache_stats){0};
	if (!sc)
		return;
	pthread_mutex_lock(&sc->lock);
	ret->reads = sc->reads;
	ret->reused = sc->reused;
	ret->entries = sc->map.len;
	pthread_mutex_unlock(&sc->lock);
}
