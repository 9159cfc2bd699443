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
 * the solver would.  The database saves go BATCH to a transaction; each manifest
 * is one fdatasync'd blob, as a real save's is.
 *
 * Single-threaded; no locks of its own (the database lock is taken around each
 * batch because sfs_db_begin/sfs_db_end want it held).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cas.h"
#include "clock.h"
#include "db.h"
#include "du.h"
#include "manager.h"
#include "sha256.h"
#include "tree.h"

#define BATCH 5000

static int save_one(struct sfs_cache *c, long i, const char *data_hex)
{
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

static int fill(struct sfs_cache *c, long n)
{
	char data_hex[SFS_HEX_SIZE];
	int r = cas_put_buf(c->cas, "bench\n", 6, data_hex);

	for (long i = 0; r == 0 && i < n; i += BATCH) {
		sfs_db_lock(c->db);
		r = sfs_db_begin(c->db);
		for (long j = i; r == 0 && j < n && j < i + BATCH; j++)
			r = save_one(c, j, data_hex);
		r = sfs_db_end(c->db, r);
		sfs_db_unlock(c->db);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct sfs_cache *c = NULL;
	char *msg = NULL, *end;
	long n;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s STATE_DIR N\n", argv[0]);
		return 2;
	}
	n = strtol(argv[2], &end, 10);
	if (*end || n < 0) {
		fprintf(stderr, "%s: bad count '%s'\n", argv[0], argv[2]);
		return 2;
	}
	r = sfs_cache_open(argv[1], &c, &msg);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], msg ? msg : strerror(-r));
		free(msg);
		return 1;
	}
	r = fill(c, n);
	if (r < 0)
		fprintf(stderr, "%s: saving results: %s\n", argv[0], strerror(-r));
	sfs_cache_close(c);
	return r < 0 ? 1 : 0;
}
