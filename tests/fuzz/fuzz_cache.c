/*
 * fuzz_cache.c — the scratch cache of the targets that import into one
 * (fuzz_import, fuzz_layer): fuzz.h's fz_cache and fz_memory_manager.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cache.h"
#include "fuzz.h"
#include "keystore.h"
#include "manager.h"
#include "result_storage.h"

static struct sfs_cache *cache;
static unsigned inputs;

static void cache_reset(void)
{
	char *msg = NULL;

	cache = sfs_cache_close(cache);
	fz_rm_rf(fz_path(0, "state"), true);
	if (sfs_cache_open(fz_path(0, "state"), &cache, &msg) < 0) {
		fprintf(stderr, "fz_cache: %s\n", msg ? msg : "cannot open the cache");
		abort();
	}
}

static void cache_done(void)
{
	cache = sfs_cache_close(cache);
}

struct sfs_cache *fz_cache(unsigned reset_every)
{
	if (!cache) {
		cache_reset();
		atexit(cache_done);
	}
	if (++inputs % reset_every == 0)
		cache_reset();
	return cache;
}

struct cache_manager *fz_memory_manager(struct sfs_cache *c, struct keystore **ret_ks)
{
	struct keystore *ks = NULL;
	struct result_storage *rs = NULL;
	struct cache_manager *cm = NULL;

	FZ_CHECK(keystore_memory_new(&ks) == 0);
	FZ_CHECK(result_storage_cas_new(c->cas, NULL, &rs) == 0);
	FZ_CHECK(cache_manager_new("fuzz", ks, rs, &cm) == 0);
	if (ret_ks)
		*ret_ks = ks;
	return cm;
}
