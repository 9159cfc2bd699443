/*
 * prunefill.c — sfs-bench-prunefill: fills a STATE_DIR with N results for
 * bench/prune.sh.
 *
 *     sfs-bench-prunefill STATE_DIR N
 *
 * Opens the state the way the daemon does (sfs_cache_open) while nothing has it
 * mounted and stores N result trees, tree i a dir holding one file "f-<i>" (one data
 * blob shared by all, a manifest each), each saved under a root key of its own
 * (digest sha256("bench-prune-<i>")) with one record described as a file op's, as
 * the solver would.  The database saves go BATCH to a transaction (fill.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cas.h"
#include "clock.h"
#include "fill.h"
#include "du.h"
#include "manager.h"
#include "sha256.h"
#include "tree.h"

static int save_one(struct sfs_cache *c, long i, void *state)
{
	const char *data_hex = state;
	char path[32], name[64], digest[SFS_DIGEST_SIZE], what[64];
	struct tree_entry e[2] = {
	    {.type = 'd', .mode = 0755, .path = "."},
	    {.type = 'f', .mode = 0644, .size = 6, .path = path},
	};
	struct cache_result rec;
	struct cache_key *k;
	struct tree *t = NULL;
	int r;

	snprintf(path, sizeof(path), "f-%ld", i);
	memcpy(e[1].hex, data_hex, SFS_HEX_SIZE);
	r = tree_from_entries(c->cas, e, 2, &t);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "bench-prune-%ld", i);
	sfs_sha256_digest(name, strlen(name), digest);
	k = cache_key_new(digest, 0, 0);
	r = k ? cache_manager_save(c->main, k, t->id, sfs_now_ns(), NULL, &rec) : -ENOMEM;
	snprintf(what, sizeof(what), "v%ld: file mkfile f-%ld", i, i);
	if (r == 0)
		r = cache_record_describe(c->db, rec.id, "file", what);
	cache_key_unref(k);
	tree_free(t);
	return r;
}

static int prepare(struct sfs_cache *c, void *state)
{
	return cas_put_buf(c->cas, "bench\n", 6, state);
}

int main(int argc, char **argv)
{
	char data_hex[SFS_HEX_SIZE];
	const struct bench_fill f = {"results", prepare, save_one, data_hex};

	return bench_fill_main(argc, argv, &f);
}
