/*
 * keys.c — sfs-bench-keys: fills a STATE_DIR with N cache keys, for bench/ls-keys.sh.
 *
 *     sfs-bench-keys STATE_DIR N
 *
 * Opens the state the way the daemon does (sfs_cache_open) while nothing has it
 * mounted, stores one small result tree (a dir holding one file) and saves N root keys
 * (digest "sha256:" + sha256("bench-key-<i>"), output 0) through the main cache
 * manager, each with its own record of that result (fill.h: BATCH saves a
 * transaction).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cas.h"
#include "clock.h"
#include "fill.h"
#include "manager.h"
#include "sha256.h"
#include "tree.h"

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

static int save_key(struct sfs_cache *c, long i, void *state)
{
	const char *result_id = state;
	char name[64], digest[SFS_DIGEST_SIZE];
	struct cache_key *k;
	int r;

	snprintf(name, sizeof(name), "bench-key-%ld", i);
	sfs_sha256_digest(name, strlen(name), digest);
	k = cache_key_new(digest, 0, 0);
	if (!k)
		return -ENOMEM;
	r = cache_manager_save(c->main, k, result_id, sfs_now_ns(), NULL, NULL);
	cache_key_unref(k);
	return r;
}

static int prepare(struct sfs_cache *c, void *state)
{
	return make_result(c->cas, state);
}

int main(int argc, char **argv)
{
	char result_id[SFS_DIGEST_SIZE];
	const struct bench_fill f = {"keys", prepare, save_key, result_id};

	return bench_fill_main(argc, argv, &f);
}
