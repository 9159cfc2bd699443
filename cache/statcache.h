/*
 * statcache.h — what the daemon remembers of host files it has read: for a file
 * (device, inode) with a given size, mtime and ctime, the blob its content became.
 * A snapshot (tree_ingest) that meets the file again with the same metadata names
 * that blob without reading the file, the way git's index skips unchanged files
 * (docs/semantics.md §1.9).
 *
 * A file is remembered only when its ctime is older than RACY_NS before the moment
 * its reading began: a write within the timestamp granularity of the last change
 * could otherwise leave the metadata equal and the content different (git's
 * "racily clean" entries).  A write during or after the read moves ctime past that
 * moment, so the remembered entry no longer matches.  Entries are bounded: at
 * STATCACHE_MAX entries the cache is emptied and starts over.
 *
 * Persistence: opened over the cache's database (sfs_statcache_open), the entries
 * are rows of a table of this module's own,
 *     statcache(dev, ino, size, mtime_ns, ctime_ns, blob)  PRIMARY KEY(dev, ino)
 * loaded into memory at open and written back by sfs_statcache_flush (one unit of
 * work for all the entries put since the last flush), so a remount remembers what
 * the previous mount read.  The rows are a cache: a lost or stale row costs a read,
 * never a wrong tree, because a hit also requires the blob to be in the store and a
 * row is trusted only with all five values equal.  Opened with sfs_statcache_new,
 * it lives in memory only.
 *
 * Thread-safe: one mutex guards the map, the rows to flush and the counters.  The
 * database is touched only by open and flush, which take the database's lock (never
 * with ours held).  get, put and count never touch the database, so a walk under a
 * job's credentials may call them.
 */
#ifndef SFS_STATCACHE_H
#define SFS_STATCACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "sha256.h"

#define STATCACHE_MAX 200000
#define STATCACHE_RACY_NS 2000000000LL

struct sfs_db;
struct sfs_statcache;

/* In memory only. */
int sfs_statcache_new(struct sfs_statcache **ret);
/* Over db (kept, not owned: free the statcache before closing db), with the rows
 * a previous mount wrote.  Creates the table if missing. */
int sfs_statcache_open(struct sfs_db *db, struct sfs_statcache **ret, char **ret_msg);
struct sfs_statcache *sfs_statcache_free(struct sfs_statcache *sc); /* accepts NULL */

/* The blob of the file st describes, if remembered with exactly this metadata. */
bool sfs_statcache_get(struct sfs_statcache *sc, const struct stat *st, char ret_hex[SFS_HEX_SIZE]);

/*
 * Remembers that the file st describes (stat'ed before its read began at
 * read_start_ns, CLOCK_REALTIME) holds the blob hex; a file changed too recently
 * is not remembered.  Out of memory only means it is not remembered.
 */
void sfs_statcache_put(struct sfs_statcache *sc, const struct stat *st, const char *hex,
		       int64_t read_start_ns);

/* Counts one regular file a walk met: named by a remembered blob (reused), or read. */
void sfs_statcache_count(struct sfs_statcache *sc, bool reused);

/* Writes what was put since the last flush to the database (a no-op in memory
 * only or when nothing changed).  0 or -errno (logged); on failure the rows are
 * dropped, which only costs reads after a remount. */
int sfs_statcache_flush(struct sfs_statcache *sc);

/* Entries remembered now (for metrics and tests). */
size_t sfs_statcache_len(struct sfs_statcache *sc);

struct sfs_statcache_stats {
	uint64_t reads;	  /* regular files walks read (sfs_statcache_count) */
	uint64_t reused;  /* regular files walks named by a remembered blob, unread */
	uint64_t entries; /* remembered now */
};
void sfs_statcache_stats(struct sfs_statcache *sc, struct sfs_statcache_stats *ret);

#endif
