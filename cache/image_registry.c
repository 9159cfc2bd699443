/*
 * image_registry.c — the image source of a registry
 * (docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX], image.h), on the OCI
 * distribution client of cache/registry.h.
 *
 * A reference with a digest resolves without a request; a tag is one GET of
 * its manifest.  Layers are fetched into the content store, checked against
 * their digest as they stream (registry_fetch_blob), and read from there: a
 * layer the store already has (another image shares it, an earlier pull) is
 * not fetched again.  A fetch reports its bytes to the caller's status.
 *
 * One thread at a time uses a source; it holds no locks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "image.h"
#include "registry.h"

struct registry_source {
	struct image_source s;
	struct registry *reg;
	struct cas *cas;
	void (*status)(void *arg, const char *id, uint64_t current, uint64_t total, bool done);
	bool (*cancelled)(void *arg);
	void *arg;
	const char *pulling; /* the layer being fetched, for pull_progress */
	char tag[IMAGEREF_TAG_MAX + 1];
	char digest[SFS_DIGEST_SIZE];
};

/* registry.h's progress of the layer being fetched, as "pull sha256:..."
 * whatever the client calls it (its reports name the blob, then "pull"). */
static void pull_progress(void *arg, const char *what, uint64_t done, uint64_t total)
{
	struct registry_source *rs = arg;
	char id[SFS_DIGEST_SIZE + 8];

	(void)what;
	if (!rs->pulling)
		return;
	snprintf(id, sizeof(id), "pull %s", rs->pulling);
	rs->status(rs->arg, id, done, total, done == total);
}

static bool reg_cancelled(void *arg)
{
	struct registry_source *rs = arg;
	return rs->cancelled && rs->cancelled(rs->arg);
}

static int reg_resolve(struct image_source *s, char ret_digest[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct registry_source *rs = (struct registry_source *)s;

	if (rs->digest[0]) {
		sfs_copy_str(ret_digest, SFS_DIGEST_SIZE, rs->digest);
		return 0;
	}
	return registry_resolve(rs->reg, rs->tag[0] ? rs->tag : "latest", ret_digest, ret_msg);
}

static int reg_get_manifest(struct image_source *s, const char *digest, uint64_t max,
			    char **ret_buf, size_t *ret_len, char **ret_msg)
{
	struct registry_source *rs = (struct registry_source *)s;
	char got[SFS_DIGEST_SIZE];
	char *buf = NULL;
	size_t len = 0;
	int r = registry_get_manifest(rs->reg, digest, &buf, &len, NULL, got, ret_msg);

	if (r < 0)
		return r;
	if (len > max) {
		free(buf);
		return sfs_errf(ret_msg, EFBIG, "manifest %s is larger than %llu bytes", digest,
				(unsigned long long)max);
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

static int reg_open_layer(struct image_source *s, const char *digest, uint64_t size, int *ret_fd,
			  char **ret_msg)
{
	struct registry_source *rs = (struct registry_source *)s;
	int r;

	rs->pulling = digest;
	r = registry_fetch_blob(rs->reg, digest, size, rs->cas, ret_msg);
	rs->pulling = NULL;
	if (r < 0)
		return r;
	r = cas_open_blob(rs->cas, digest + 7, ret_fd);
	if (r < 0)
		return sfs_errf(ret_msg, r, "layer %s: %s", digest, strerror(-r));
	return 0;
}

static void reg_free(struct image_source *s)
{
	struct registry_source *rs = (struct registry_source *)s;

	registry_close(rs->reg);
	free(rs->s.name);
	free(rs);
}

static const struct image_source_ops registry_ops = {
    .resolve = reg_resolve,
    .get_manifest = reg_get_manifest,
    .open_layer = reg_open_layer,
    .free = reg_free,
};

int image_source_registry_new(const struct imageref *ref, const struct image_source_opts *o,
			      struct image_source **ret, char **ret_msg)
{
	struct registry_source *rs = calloc(1, sizeof(*rs));
	struct registry_opts ro;
	int r;

	if (!rs)
		return -ENOMEM;
	rs->s.ops = &registry_ops;
	rs->cas = o->cas;
	rs->status = o->status;
	rs->arg = o->arg;
	sfs_copy_str(rs->tag, sizeof(rs->tag), ref->tag);
	sfs_copy_str(rs->digest, sizeof(rs->digest), ref->digest);
	if (asprintf(&rs->s.name, "docker://%s/%s%s%s", ref->host, ref->repo,
		     ref->tag[0] ? ":" : "", ref->tag) < 0) {
		free(rs);
		return -ENOMEM;
	}
	if (o->registry)
		ro = *o->registry;
	else
		registry_opts_default(&ro);
	ro.cancelled = reg_cancelled;
	ro.progress = rs->status ? pull_progress : NULL;
	ro.arg = rs; /* pull_progress and reg_cancelled pass o->arg on */
	rs->cancelled = o->cancelled;
	r = registry_open(ref, &ro, &rs->reg, ret_msg);
	if (r < 0) {
		reg_free(&rs->s);
		return r;
	}
	*ret = &rs->s;
	return 0;
}
