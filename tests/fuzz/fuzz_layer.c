/*
 * fuzz_layer.c — the tar layer reader of the cache import (cache/import.h:
 * tar, gzip or zstd layers, whiteouts, hardlinks) and the layer writer
 * (cache/layer.h) on what it read.
 *
 * An input is a layer chain: up to 4 layer blobs, base first, separated by
 * FZ_SEP.  The harness wraps them in a valid layout (index.json, an OCI image
 * manifest, a cache config with one record whose result is the chain) and
 * imports it into an in-memory key storage over a scratch content store.
 * When the import succeeds, the tree it made is written back as a tar by
 * cache_layer_write_tar and that tar imported again: it must give the same
 * tree (what an export of an imported result holds is that result).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "err.h"
#include "import.h"
#include "keystore.h"
#include "layer.h"
#include "strbuf.h"
#include "tree.h"
#include "fuzz.h"

#define MAX_LAYERS 4
#define RESET_EVERY 500
#define RECORD "sha256:e9005788cf813ffb15d65948eb6c8dbb1a69168e5eda3a7a9f2e39be7e49fee0"

static struct sfs_cache *cache;

static void put_blob(const char *dir, const void *buf, size_t len, char ret[SFS_DIGEST_SIZE])
{
	char path[4096];

	sfs_sha256_digest(buf, len, ret);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, ret + 7);
	fz_write_file(path, buf, len);
}

/* A layout whose one record's result is the chain of layers. */
static void write_layout(const char *dir, const struct fz_part *layers, size_t n)
{
	char d[MAX_LAYERS][SFS_DIGEST_SIZE], cfg_d[SFS_DIGEST_SIZE], man_d[SFS_DIGEST_SIZE];
	struct strbuf cfg = STRBUF_INIT, man = STRBUF_INIT, idx = STRBUF_INIT;
	char path[4096];

	fz_rm_rf(dir, false);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	fz_mkdirs(path);
	for (size_t i = 0; i < n; i++)
		put_blob(dir, layers[i].p, layers[i].n, d[i]);
	strbuf_addstr(&cfg, "{\"layers\":[");
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&cfg, "%s{\"blob\":\"%s\",\"parent\":%d}", i ? "," : "", d[i],
			    (int)i - 1);
	strbuf_addf(&cfg, "],\"records\":[{\"digest\":\"%s\",\"layers\":[{\"layer\":%d}]}]}",
		    RECORD, (int)n - 1);
	FZ_CHECK(!cfg.oom);
	put_blob(dir, cfg.buf, cfg.len, cfg_d);
	strbuf_addf(
	    &man,
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"mediaType\":\"application/vnd.buildkit.cacheconfig.v0\","
	    "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
	    cfg_d, cfg.len);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&man,
			    "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
			    "\"digest\":\"%s\",\"size\":%zu}",
			    i ? "," : "", d[i], layers[i].n);
	strbuf_addstr(&man, "]}");
	FZ_CHECK(!man.oom);
	put_blob(dir, man.buf, man.len, man_d);
	strbuf_addf(&idx,
		    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		    "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
		    "\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
		    man_d, man.len);
	FZ_CHECK(!idx.oom);
	snprintf(path, sizeof(path), "%s/index.json", dir);
	fz_write_file(path, idx.buf, idx.len);
	strbuf_release(&cfg);
	strbuf_release(&man);
	strbuf_release(&idx);
}

static int first_result(const struct cache_result *res, void *arg)
{
	snprintf(arg, SFS_DIGEST_SIZE, "%s", res->result);
	return 1;
}

/* Imports the chain; 0 with the tree id in ret_tree, or the error. */
static int import_chain(const struct fz_part *layers, size_t n, char ret_tree[SFS_DIGEST_SIZE])
{
	const char *dir = fz_path(1, "layout");
	struct cache_import *im = NULL;
	struct keystore *ks = NULL;
	struct cache_manager *cm;
	char *msg = NULL;
	int r;

	write_layout(dir, layers, n);
	r = cache_import_open(dir, &im, &msg);
	if (r < 0)
		fprintf(stderr, "fuzz_layer: %s\n", msg ? msg : strerror(-r));
	FZ_CHECK(r == 0); /* the layout is ours: only layers can be wrong */
	cm = fz_memory_manager(cache, &ks);
	r = cache_import_into_manager(im, cache, cm, &msg);
	FZ_CHECK(r == 0 ? !msg : msg || r == -ENOMEM);
	free(msg);
	ret_tree[0] = '\0';
	if (r == 0) {
		/* a record without inputs is the key named by its digest */
		FZ_CHECK(ks->ops->walk_results(ks, RECORD, first_result, ret_tree) >= 0);
		FZ_CHECK(sfs_is_digest(ret_tree));
	}
	cache_manager_free(cm);
	cache_import_free(im);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_part layers[MAX_LAYERS];
	size_t n = fz_split(data, size, layers, MAX_LAYERS);
	char tree_id[SFS_DIGEST_SIZE], again[SFS_DIGEST_SIZE];
	struct tree *t = NULL;
	struct stat st;

	cache = fz_cache(RESET_EVERY);
	if (import_chain(layers, n, tree_id) < 0)
		return 0;
	/* the round trip: tree -> tar -> the same tree */
	FZ_CHECK(tree_load(cache->cas, tree_id, &t) == 0);
	int fd = open(fz_path(2, "roundtrip.tar"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FZ_CHECK(fd >= 0);
	int r = cache_layer_write_tar(cache->cas, t, fd, NULL);
	if (r < 0)
		fprintf(stderr, "fuzz_layer: cache_layer_write_tar: %s\n", strerror(-r));
	FZ_CHECK(r == 0);
	tree_free(t);
	FZ_CHECK(fstat(fd, &st) == 0 && st.st_size > 0);
	void *tar = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	FZ_CHECK(tar != MAP_FAILED);
	struct fz_part one = {tar, (size_t)st.st_size};
	r = import_chain(&one, 1, again);
	munmap(tar, (size_t)st.st_size);
	close(fd);
	FZ_CHECK(r == 0);
	if (strcmp(tree_id, again) != 0)
		fprintf(stderr, "fuzz_layer: %s became %s\n", tree_id, again);
	FZ_CHECK(strcmp(tree_id, again) == 0);
	return 0;
}
