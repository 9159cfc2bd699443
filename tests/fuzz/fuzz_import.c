/*
 * fuzz_import.c — the cache import parser (cache/import.h): index.json, the
 * manifest in its three forms and the BuildKit cache config, then the import
 * of what they describe.
 *
 * An input is up to 8 parts separated by FZ_SEP: part 0 is index.json, each
 * further part a blob of blobs/sha256/ named by its digest.  In part k the
 * text "@N" (a digit N > k) is replaced by "sha256:<hex>" of part N as
 * written, so a mutated manifest still names its config and layers and the
 * fuzzer gets past the digest checks.  An opened layout is imported into an
 * in-memory key storage over a scratch content store, which is emptied every
 * few hundred inputs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "err.h"
#include "import.h"
#include "fuzz.h"

#define MAX_PARTS 8
#define RESET_EVERY 500

static struct sfs_cache *cache;

/* Part k with its "@N" references resolved (digests of later parts). */
static char *resolve(const struct fz_part *parts, size_t n, size_t k,
		     char (*digests)[SFS_DIGEST_SIZE], size_t *ret_len)
{
	const uint8_t *p = parts[k].p;
	size_t len = parts[k].n, out = 0;
	char *buf = malloc(len * (SFS_DIGEST_SIZE / 2) + 1);

	FZ_CHECK(buf);
	for (size_t i = 0; i < len; i++) {
		size_t ref = i + 1 < len ? (size_t)(p[i + 1] - '0') : 0;
		if (p[i] == '@' && i + 1 < len && p[i + 1] >= '1' && p[i + 1] <= '9' && ref > k &&
		    ref < n) {
			memcpy(buf + out, digests[ref], SFS_DIGEST_SIZE - 1);
			out += SFS_DIGEST_SIZE - 1;
			i++;
		} else {
			buf[out++] = (char)p[i];
		}
	}
	*ret_len = out;
	return buf;
}

static void write_layout(const char *dir, const uint8_t *data, size_t size)
{
	struct fz_part parts[MAX_PARTS];
	char digests[MAX_PARTS][SFS_DIGEST_SIZE];
	size_t n = fz_split(data, size, parts, MAX_PARTS);
	char path[4096];

	fz_rm_rf(dir, false);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	fz_mkdirs(path);
	for (size_t k = n; k-- > 0;) {
		size_t len;
		char *buf = resolve(parts, n, k, digests, &len);
		sfs_sha256_digest(buf, len, digests[k]);
		if (k == 0)
			snprintf(path, sizeof(path), "%s/index.json", dir);
		else
			snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, digests[k] + 7);
		fz_write_file(path, buf, len);
		free(buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_path(1, "layout");
	struct cache_import *im = NULL;
	char *msg = NULL;
	int r;

	cache = fz_cache(RESET_EVERY);
	write_layout(dir, data, size);
	r = cache_import_open(dir, &im, &msg);
	if (r < 0) {
		FZ_CHECK(!im && (msg || r == -ENOMEM));
		free(msg);
		return 0;
	}
	FZ_CHECK(im && !msg);
	struct cache_manager *cm = fz_memory_manager(cache, NULL);
	r = cache_import_into_manager(im, cache, cm, &msg);
	FZ_CHECK(r == 0 ? !msg : msg || r == -ENOMEM);
	free(msg);
	msg = NULL;
	/* a second import of the same layout adds nothing and succeeds alike */
	if (r == 0) {
		FZ_CHECK(cache_import_into_manager(im, cache, cm, &msg) == 0);
		FZ_CHECK(!msg);
	}
	cache_manager_free(cm);
	cache_import_free(im);
	return 0;
}
