/*
 * cache.h — the cache of one STATE_DIR: content store, database, key storage and
 * the main cache manager, opened and closed together.
 */
#ifndef SFS_CACHE_H
#define SFS_CACHE_H

#include "cas.h"
#include "db.h"
#include "holds.h"
#include "manager.h"

/* The database commits the cache's saves in groups at most this far apart
 * (sfs_db_group_commit); a job's history is committed when it is saved.  Each
 * commit writes every B-tree page its group dirtied, and content digests land on
 * random index pages: 250 ms (not 50) wrote 2.5x less WAL for a cold 10,000-vertex
 * solve and took 40-45 % off its daemon CPU (bench/README.md, sixth session); a
 * kill -9 loses that much more of the latest saves (docs/durability.md §3). */
#define SFS_CACHE_COMMIT_MS 250

struct sfs_cache {
	char *state_dir;
	struct cas *cas;
	struct sfs_db *db;
	struct cache_manager *main; /* id "local"; keystore over db, results over cas */
	struct sfs_statcache *statcache; /* host files already read (statcache.h) */
	struct cache_holds *holds;	 /* results in use: GC spares them (holds.h) */
};

/* Creates STATE_DIR if missing. */
int sfs_cache_open(const char *state_dir, struct sfs_cache **ret, char **ret_msg);
struct sfs_cache *sfs_cache_close(struct sfs_cache *c); /* accepts NULL */

#endif
