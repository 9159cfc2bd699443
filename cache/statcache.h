/*
 * statcache.h — what the daemon remembers of host files it has read: for a file
 * (device, inode) with a given size, mtime and ctime, the blob its content became.
 * A snapshot (tree_ingest) that meets the file again with the same metadata names
 * that blob without reading the file, the way git's index skips unchanged files
 * (docs/semantics.md §1.9).
 *
 * A file is remembered only when its ctime is older than RACY_NS before the moment
 * its reading began: a write within the timestamp granularity of the last change
 * could otherwise leave the metadata equal and the content different.  A write
 * during or after the read moves ctime past that moment, so the remembered entry
 * no longer matches.  Entries live in memory only (a remount forgets them) and
 * are bounded: at STATCACHE_MAX entries the cache is emptied and starts over.
 *
 * Thread-safe: one mutex guards the map.
 */
#ifndef SFS_STATCACHE_H
#define SFS_STATCACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "sha256.h"

#define STATCACHE_MAX 200000
#define STATCACHE_RACY_NS 2000000000LL

struct sfs_statcache;

int sfs_statcache_new(struct sfs_statcache **ret);
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

/* Entries remembered now (for metrics and tests). */
size_t sfs_statcache_len(struct sfs_statcache *sc);

#endif
