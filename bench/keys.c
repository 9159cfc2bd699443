/*
 * keys.c — sfs-bench-keys: fills a STATE_DIR with N cache keys, for bench/ls-keys.sh.
 *
 *     sfs-bench-keys STATE_DIR N
 *
 * Opens the state the way the daemon does (sfs_cache_open) while nothing has it
 * mounted, stores one small result tree (a dir holding one file) and saves N root keys
 * (digest "sha256:" + sha256("bench-key-<i>"), output 0) through the main cache
 * manager, each with its own record of that result, committing every BATCH saves in
 * one transaction so filling 100,000 keys takes seconds, not minutes of fsyncs.
 *
 * Single-threaded; no locks of its own (the database lock is taken around each batch
 * because sfs_db_begin/sfs_db_end want it held).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cas.h"
#include "clock.h"
#include "db.h"
#include "manager.h"
#include "sha256.h"
#include "tree.h"

#define BATCH 5000

/* The result every key points to: "./key" holding "bench\n". */
static int make_result(struct cas *c, char ret_id[SFS_DIGEST_SIZE])
{
	static const char data[] = "bench\n";
	struct tree_entry e[2] = {
	    {.type = 'd', .mode = 0755, .path = "."},
	    {.type = 'f', .mode = 0644, .size = sizeof(data) - 1, .path = "key"},
	};
	struct tree *t = NULL;
	int r;

	r = cas_put_buf(c, data, sizeof(data) - 1, e[1].hex);
	if (r == 0)
		r = tree_from_entries(c, e, 2, &t);
	if (r == 0)
		memcpy(ret_id, t->id, SFS_DIGEST_SIZE);
	tree_free(t);
	return r;
}

static int save_key(struct cache_manager *cm, long i, const char *result_id)
{
	char name[64], digest[SFS_DIGEST_SIZE];
	struct cache_key *k;
	int r;

	snprintf(name, sizeof(name), "bench-key-%ld", i);
	sfs_sha256_digest(name, strlen(name), digest);
	k = cache_key_new(digest, 0, 0);
	if (!k)
		return -ENOMEM;
	r = cache_manager_save(cm, k, result_id, sfs_now_ns(), NULL, NULL);
	cache_key_unref(k);
	return r;
}

static int fill(struct sfs_cache *c, long n)
{
	char result_id[SFS_DIGEST_SIZE];
	int r = make_result(c->cas, result_id);

	for (long i = 0; r == 0 && i < n; i += BATCH) {
		sfs_db_lock(c->db);
		r = sfs_db_begin(c->db);
		for (long j = i; r == 0 && j < n && j < i + BATCH; j++)
			r = save_key(c->main, j, result_id);
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
		fprintf(stderr, "%s: saving keys: %s\n", argv[0], strerror(-r));
	sfs_cache_close(c);
	return r < 0 ? 1 : 0;
}
