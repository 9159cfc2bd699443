/*
 * sources.c — cache_from: a job's extra cache sources (BuildKit's
 * --import-cache; docs/semantics.md §4.5, docs/export.md §10).
 *
 * Each distinct source path is read once per mount into a cache manager of its
 * own (an in-memory key storage over the shared content store) and kept until
 * the solver closes.  A job whose spec names sources (job-level `cache_from`,
 * or a vertex's) has them read by its start task before its graph is loaded, shown as
 * "[cache_from] importing PATH" in its progress.  Each vertex then asks the
 * local cache and its sources together (cache/combined.h: main first, main's
 * records preferred); a record loaded from a source is copied into the local
 * cache, so the next build hits locally.
 *
 * Trust: a record read from a source serves every later build of every user
 * (it is copied into the local cache, and its key says nothing of who brought
 * it).  So only the mount owner's and root's jobs may use cache_from; another
 * user's source is skipped with a warning in the job's progress
 * (docs/security.md).  A source is read with its submitter's credentials
 * (cache/creds.h), so nobody imports a layout they could not read themselves.
 *
 * Locking: s->sources is guarded by sfs_solver.lock; reading a source happens
 * without it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "cas.h"
#include "creds.h"
#include "err.h"
#include "imageref.h"
#include "import.h"
#include "internal.h"
#include "registry.h"
#include "remote.h"
#include "result_storage.h"

/* The job reading a source and its "[cache_from]" progress vertex. */
struct source_reader {
	struct sfs_solver *s;
	struct sfs_job *j;
	const char *digest;
};

/* The import stops when the job that reads it no longer runs (cancelled). */
static bool reader_cancelled(void *arg)
{
	struct source_reader *sr = arg;
	sfs_solver_lock(sr->s);
	bool stop = sr->j->state != SFS_JOB_RUNNING;
	sfs_solver_unlock(sr->s);
	return stop;
}

/* A warning of the import is a log line of the job's import vertex. */
static void reader_warn(void *arg, const char *msg)
{
	struct source_reader *sr = arg;
	char line[1024];
	int n = snprintf(line, sizeof(line), "warning: %s\n", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	sfs_solver_lock(sr->s);
	sfs_progress_log(sr->j->progress, sr->digest, 2, line, (size_t)n, sfs_now_ns());
	sfs_job_mark_dirty(sr->s, sr->j);
	sfs_solver_unlock(sr->s);
	sfs_solver_flush_notify(sr->s);
}

/* Reads the layout at path into a new manager, within the mount's import
 * limits. */
static int source_read(struct source_reader *sr, const char *path, struct cache_manager **ret,
		       char **ret_msg)
{
	struct sfs_solver *s = sr->s;
	struct cache_import_opts io = {.limits = s->o.import_limits,
				       .cancelled = reader_cancelled,
				       .warn = reader_warn,
				       .arg = sr};
	struct cache_import *im = NULL;
	struct keystore *ks = NULL;
	struct result_storage *rs = NULL;
	struct cache_manager *cm = NULL;
	char id[PATH_MAX + 16];
	snprintf(id, sizeof(id), "import:%s", path);
	int r = cache_import_open_opts(path, &io, &im, ret_msg);
	if (r == 0)
		r = keystore_memory_new(&ks);
	if (r == 0)
		r = result_storage_cas_new(s->cache->cas, NULL, &rs);
	if (r == 0) {
		r = cache_manager_new(id, ks, rs, &cm); /* takes ks and rs */
		ks = NULL;
		rs = NULL;
	}
	if (r == 0)
		r = cache_import_into_manager(im, s->cache, cm, ret_msg);
	cache_import_free(im);
	keystore_free(ks);
	if (rs)
		rs->ops->free(rs);
	if (r < 0) {
		cache_manager_free(cm);
		return r;
	}
	*ret = cm;
	return 0;
}

void sfs_solver_registry_opts(const struct sfs_solver *s, struct registry_opts *ret)
{
	registry_opts_default(ret);
	ret->ca_file = s->o.registry_ca;
	ret->insecure = s->o.insecure_registries;
	if (s->o.registry_timeout_ns > 0)
		ret->timeout_ns = s->o.registry_timeout_ns;
	ret->owner = s->o.owner;
	if (s->o.import_limits.json_max && s->o.import_limits.json_max < ret->json_max)
		ret->json_max = s->o.import_limits.json_max;
}

/* A registry source's manager id: "import:REF@DIGEST", the manifest read. */
static void remote_id(const char *ref_text, const char *digest, char *buf, size_t size)
{
	snprintf(buf, size, "import:%s@%s", ref_text, digest);
}

/*
 * A registry source (docs/export.md §11): its manifest and cache config into
 * a layout under the store's tmp/, imported lazily: the manager's result
 * storage fetches a layer when a record that needs it is loaded.
 */
static int remote_read(struct source_reader *sr, const char *ref_text, const char *digest,
		       struct cache_manager **ret, char **ret_msg)
{
	struct sfs_solver *s = sr->s;
	struct imageref ref = {0};
	struct registry_opts ro;
	struct remote_source *src = NULL;
	struct cache_import *im = NULL;
	struct keystore *ks = NULL;
	struct result_storage *rs = NULL;
	char *tmp = NULL, *dir = NULL, id[IMAGEREF_HOST_MAX + IMAGEREF_REPO_MAX + 192];
	int r = imageref_parse(ref_text, &ref, ret_msg);

	/* no callbacks: the client outlives this job (layers come later) */
	sfs_solver_registry_opts(s, &ro);
	remote_id(ref_text, digest, id, sizeof(id));
	if (r == 0) /* what was resolved is what is read, whatever the tag does meanwhile */
		sfs_copy_str(ref.digest, sizeof(ref.digest), digest);
	if (r == 0)
		r = cas_mkdtemp(s->cache->cas, "remote-", &tmp);
	if (r == 0 && asprintf(&dir, "%s/layout", tmp) < 0)
		r = -ENOMEM;
	if (r == 0)
		r = remote_source_open(&ref, &ro, s->cache->cas, dir, &src, ret_msg);
	struct cache_import_opts io = {.limits = s->o.import_limits,
				       .cancelled = reader_cancelled,
				       .warn = reader_warn,
				       .arg = sr,
				       .fetch = remote_fetch,
				       .fetch_arg = src,
				       .lazy = true};
	if (r == 0)
		r = cache_import_open_opts(dir, &io, &im, ret_msg);
	if (r == 0)
		r = keystore_memory_new(&ks);
	if (r == 0)
		r = cache_import_lazy_storage(im, s->cache->cas, remote_source_free, &rs);
	if (r == 0) {
		struct cache_import *lazy = im;
		im = NULL; /* rs has it, and src */
		src = NULL;
		r = cache_manager_new(id, ks, rs, ret); /* takes ks and rs */
		ks = NULL;
		rs = NULL;
		if (r == 0 && (r = cache_import_into_manager(lazy, s->cache, *ret, ret_msg)) < 0)
			*ret = cache_manager_free(*ret);
	}
	cache_import_free(im);
	remote_source_free(src);
	keystore_free(ks);
	if (rs)
		rs->ops->free(rs);
	imageref_release(&ref);
	free(dir);
	free(tmp);
	return r;
}

/* source_read with the job's credentials; a source that is not there at all
 * is no error: *ret stays NULL and *ret_absent is set. */
static int source_read_as(struct source_reader *sr, const char *path, struct cache_manager **ret,
			  bool *ret_absent, char **ret_msg)
{
	const struct sfs_job *j = sr->j;
	struct sfs_creds c;
	int r = sfs_creds_enter(&c, j->uid, j->gid);

	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot take the credentials of uid %u",
				(unsigned)j->uid);
	if (cache_import_absent(path))
		*ret_absent = true;
	else
		r = source_read(sr, path, ret, ret_msg);
	sfs_creds_leave(&c);
	return r;
}

/*
 * The manager of registry source ref_text, for the manifest its tag names
 * now: a job after a push sees the new export.  A manager of an older
 * manifest stays (under a "retired:" key, freed with the others) for the
 * jobs that still use it.
 */
static int remote_get(struct source_reader *sr, const char *ref_text, char **ret_msg)
{
	struct sfs_solver *s = sr->s;
	struct imageref ref = {0};
	struct registry_opts ro;
	char digest[SFS_DIGEST_SIZE], id[PATH_MAX + 128], retired[64];
	int r = imageref_parse(ref_text, &ref, ret_msg);

	sfs_solver_registry_opts(s, &ro);
	ro.cancelled = reader_cancelled;
	ro.arg = sr;
	if (r == 0)
		r = remote_resolve(&ref, &ro, digest, ret_msg);
	imageref_release(&ref);
	if (r < 0)
		return r;
	remote_id(ref_text, digest, id, sizeof(id));
	sfs_solver_lock(s);
	struct cache_manager *cur = strmap_get(&s->sources, ref_text);
	bool same = cur && strcmp(cache_manager_id(cur), id) == 0;
	sfs_solver_unlock(s);
	if (same)
		return 0;
	struct cache_manager *cm = NULL, *old = NULL;
	if ((r = remote_read(sr, ref_text, digest, &cm, ret_msg)) < 0)
		return r;
	sfs_solver_lock(s);
	cur = strmap_get(&s->sources, ref_text);
	if (cur && strcmp(cache_manager_id(cur), id) == 0)
		cm = cache_manager_free(cm); /* another job read it meanwhile */
	else if ((r = strmap_put(&s->sources, ref_text, cm, (void **)&old)) < 0)
		cm = cache_manager_free(cm);
	if (old) {
		snprintf(retired, sizeof(retired), "retired:%p", (void *)old);
		if ((r = strmap_put(&s->sources, retired, old, NULL)) < 0)
			sfs_log(SFS_LOG_WARN, "cache_from %s: the manager of the older manifest is "
					      "kept nowhere; it leaks", ref_text);
	}
	sfs_solver_unlock(s);
	return r;
}

/*
 * The manager of source path, read now if this mount has not read it yet.  An
 * absent source is not remembered, so a later job reads it once it is there
 * (a CI cache directory the first build exports to).
 */
static int source_get(struct source_reader *sr, const char *path, bool *ret_absent,
		      char **ret_msg)
{
	struct sfs_solver *s = sr->s;
	if (imageref_is_ref(path))
		return remote_get(sr, path, ret_msg);
	sfs_solver_lock(s);
	bool have = strmap_get(&s->sources, path) != NULL;
	sfs_solver_unlock(s);
	if (have)
		return 0;
	struct cache_manager *cm = NULL;
	int r = source_read_as(sr, path, &cm, ret_absent, ret_msg);
	if (r < 0 || *ret_absent)
		return r;
	sfs_solver_lock(s);
	if (strmap_get(&s->sources, path))
		cm = cache_manager_free(cm); /* another job read it meanwhile */
	else if ((r = strmap_put(&s->sources, path, cm, NULL)) < 0)
		cm = cache_manager_free(cm);
	sfs_solver_unlock(s);
	return r;
}

/* May this job's sources add records that everybody's builds trust? */
static bool job_trusted(const struct sfs_solver *s, const struct sfs_job *j)
{
	return j->uid == 0 || j->uid == s->o.owner;
}

/*
 * Reads each source of paths, each shown as a "[cache_from]" vertex.  A source
 * the job may not use, or one that is not there, is a warning in that
 * vertex's log (a literal or the local buffer `warn`, never *ret_msg) and
 * the job goes on without it; a source that is there but cannot be read
 * fails the job with *ret_msg (docs/export.md §10.3).
 */
static int read_list(struct sfs_solver *s, struct sfs_job *j, char *const *paths, char **ret_msg)
{
	int r = 0;
	for (size_t k = 0; r == 0 && paths && paths[k]; k++) {
		char d[SFS_DIGEST_SIZE], name[PATH_MAX + 32], warn[PATH_MAX + 2048];
		snprintf(name, sizeof(name), "[cache_from] importing %s", paths[k]);
		sfs_sha256_digest(name, strlen(name), d);
		sfs_solver_lock(s);
		if (sfs_progress_add_vertex(j->progress, d, name, NULL, 0) == 0)
			sfs_progress_started(j->progress, d, sfs_now_ns(), false);
		sfs_job_mark_dirty(s, j);
		sfs_solver_unlock(s);
		sfs_solver_flush_notify(s);
		const char *skip = NULL;
		bool absent = false;
		struct source_reader sr = {.s = s, .j = j, .digest = d};
		if (!job_trusted(s, j))
			skip = "WARNING: cache_from skipped: only the mount owner and root may import "
			       "cache records\n";
		else if ((r = source_get(&sr, paths[k], &absent, ret_msg)) < 0 &&
			 imageref_is_ref(paths[k]) && r != -ECANCELED && r != -ENOMEM) {
			/* a registry that cannot be reached or has no such tag: the
			 * job builds without it (docs/export.md §11) */
			sfs_solver_lock(s);
			bool earlier = strmap_get(&s->sources, paths[k]) != NULL;
			sfs_solver_unlock(s);
			snprintf(warn, sizeof(warn), "WARNING: cache_from %s: %s; %s\n", paths[k],
				 *ret_msg ? *ret_msg : strerror(-r),
				 earlier ? "using the copy read before" : "building without it");
			skip = warn;
			free(*ret_msg);
			*ret_msg = NULL;
			r = 0;
		} else if (r < 0) {
			sfs_err_prefix(ret_msg, r, "cache_from %s", paths[k]);
		} else if (absent) {
			snprintf(warn, sizeof(warn), "WARNING: local cache import at %s not found\n",
				 paths[k]);
			skip = warn;
		}
		sfs_solver_lock(s);
		if (skip)
			sfs_progress_log(j->progress, d, 2, skip, strlen(skip), sfs_now_ns());
		sfs_progress_completed(j->progress, d, sfs_now_ns(), false,
				       r < 0 ? *ret_msg : NULL);
		sfs_solver_unlock(s);
	}
	return r;
}

/* Reads every source the job's spec names (a worker, no lock held). */
int sfs_job_read_sources(struct sfs_solver *s, struct sfs_job *j, char **ret_msg)
{
	SFS_ASSERT_UNLOCKED(s);
	int r = read_list(s, j, j->spec->cache_from, ret_msg);
	for (size_t i = 0; r == 0 && i < j->spec->n; i++)
		r = read_list(s, j, j->spec->v[i].cache_from, ret_msg);
	return r;
}

static int add_extra(struct vstate *vs, struct cache_manager *cm)
{
	for (size_t k = 0; k < vs->cc.nextra; k++)
		if (vs->cc.extra[k] == cm)
			return 0;
	struct cache_manager **n = realloc(vs->cc.extra, (vs->cc.nextra + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	vs->cc.extra = n;
	vs->cc.extra[vs->cc.nextra++] = cm;
	return 0;
}

/* Gives vs the sources named by paths (read before, lock held). */
int sfs_vstate_add_sources(struct sfs_solver *s, struct vstate *vs, char *const *paths)
{
	SFS_ASSERT_LOCKED(s);
	int r = 0;
	for (size_t k = 0; r == 0 && paths && paths[k]; k++) {
		struct cache_manager *cm = strmap_get(&s->sources, paths[k]);
		if (cm)
			r = add_extra(vs, cm);
	}
	return r;
}

/* A sub-build's vertices use their build vertex's sources too (§1.2 step 6). */
int sfs_vstate_inherit_sources(struct vstate *vs, const struct vstate *parent)
{
	int r = 0;
	for (size_t k = 0; r == 0 && k < parent->cc.nextra; k++)
		r = add_extra(vs, parent->cc.extra[k]);
	return r;
}

void sfs_sources_free(struct sfs_solver *s)
{
	const char *key;
	void *val;
	for (size_t it = 0; strmap_next(&s->sources, &it, &key, &val);)
		cache_manager_free(val);
	strmap_release(&s->sources);
}
