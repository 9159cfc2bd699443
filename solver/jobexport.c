/*
 * jobexport.c — a job's cache export (docs/export.md §1, §6).
 *
 * When every output of a job whose spec has "export" is built, the job stays
 * running while one EXPORT task writes the chains that lead to its outputs'
 * keys into STATE_DIR/exports/<N> as an OCI layout (cache_export writes to a
 * temporary name and renames, so the directory is complete or absent).  The job
 * then ends: done, or failed with the export's error.  Progress shows it as one
 * more vertex, "[export] exporting cache", as BuildKit shows its exporters.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "array.h"
#include "cas.h"
#include "err.h"
#include "export.h"
#include "exports.h"
#include "imageref.h"
#include "internal.h"
#include "registry.h"
#include "remote.h"

static void export_digest(const struct sfs_job *j, char ret[SFS_DIGEST_SIZE])
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "export:%llu", (unsigned long long)j->id);
	sfs_sha256_digest(buf, (size_t)n, ret);
}

char *sfs_job_export_dir(struct sfs_solver *s, uint64_t id)
{
	char *p = NULL;
	if (asprintf(&p, "%s/exports/%llu", s->cache->state_dir, (unsigned long long)id) < 0)
		return NULL;
	return p;
}

int sfs_job_exports_sweep(struct sfs_solver *s)
{
	char *dir = NULL;
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (asprintf(&dir, "%s/exports", s->cache->state_dir) < 0)
		return -ENOMEM;
	if (!(d = opendir(dir))) {
		r = errno == ENOENT ? 0 : -errno;
		free(dir);
		return r;
	}
	while (r == 0 && (de = readdir(d))) {
		struct sfs_job *j = strmap_get(&s->jobs, de->d_name); /* keyed by the number */
		char *p = NULL;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (cache_exports_is_name(de->d_name))
			continue; /* a whole-cache export (cache/exports.h) */
		if (j && j->state == SFS_JOB_DONE && sfs_job_has_spec(j))
			continue;
		if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
			r = -ENOMEM;
		else
			r = cas_rmtree(p);
		free(p);
	}
	closedir(d);
	free(dir);
	return r;
}

/* All outputs are built (lock held): export first if the spec asks for it. */
void sfs_job_outputs_built(struct sfs_solver *s, struct sfs_job *j)
{
	SFS_ASSERT_LOCKED(s);
	if (j->spec->export_mode == SFS_EXPORT_NONE) {
		sfs_job_end(s, j, SFS_JOB_DONE, NULL);
		return;
	}
	char d[SFS_DIGEST_SIZE];
	export_digest(j, d);
	int64_t now = sfs_now_ns();
	char name[64 + IMAGEREF_HOST_MAX + IMAGEREF_REPO_MAX + IMAGEREF_TAG_MAX];
	snprintf(name, sizeof(name), "[export] exporting cache%s%s", j->spec->export_to ? " to " : "",
		 j->spec->export_to ? j->spec->export_to : "");
	if (sfs_progress_add_vertex(j->progress, d, name, NULL, 0) == 0)
		sfs_progress_started(j->progress, d, now, false);
	sfs_job_mark_dirty(s, j);
	sfs_queue_job_task(s, TASK_EXPORT, j);
}

/*
 * The keys the outputs were saved or loaded under, and the keys of the outputs
 * of the sub-builds the job ran (lock held); references.
 */
static int output_keys(struct sfs_job *j, struct cache_key ***ret, size_t *ret_n)
{
	SFS_ASSERT_LOCKED(j->s);
	const struct cache_combined *cc = &j->s->main_cc;
	struct keyset ks = {0};
	int r = 0;
	for (size_t o = 0; r == 0 && o < j->spec->noutputs; o++) {
		struct sfs_ref ref = j->spec->outputs[o];
		const struct edge *e = &j->vs[ref.vertex]->edges[ref.output];
		for (size_t k = 0; r == 0 && k < e->nresult_keys; k++)
			r = sfs_keyset_add(&ks, cc, e->result_keys[k]);
	}
	for (size_t i = 0; r == 0 && i < j->spec->n; i++) {
		const struct vstate *vs = j->vs[i];
		for (size_t k = 0; r == 0 && vs && vs->sub && k < vs->sub->keys.n; k++)
			r = sfs_keyset_add(&ks, cc, vs->sub->keys.k[k]);
	}
	if (r < 0) {
		sfs_keyset_release(&ks);
		return r;
	}
	*ret = ks.k;
	*ret_n = ks.n;
	return 0;
}

/* Record digests of the vertices whose export_cache is false (lock held). */
static int no_result_digests(struct sfs_job *j, struct strmap *ret)
{
	SFS_ASSERT_LOCKED(j->s);
	int r = 0;
	for (size_t i = 0; r == 0 && i < j->spec->n; i++) {
		const struct vstate *vs = j->vs[i];
		if (!vs || j->spec->v[i].export_cache != 0)
			continue;
		for (size_t o = 0; r == 0 && o < vs->nedges; o++) {
			const struct edge *e = &vs->edges[o];
			for (size_t k = 0; r == 0 && k < e->nresult_keys + e->nkeys; k++) {
				const struct cache_key *key = k < e->nresult_keys
								  ? e->result_keys[k]
								  : e->keys[k - e->nresult_keys];
				char d[SFS_DIGEST_SIZE];
				sfs_root_key(key->digest, key->output, d);
				r = strmap_put(ret, d, (void *)1, NULL);
			}
		}
	}
	return r;
}

static enum cache_export_mode export_mode(enum sfs_export_mode m)
{
	return m == SFS_EXPORT_MAX	     ? CACHE_EXPORT_MAX
	       : m == SFS_EXPORT_REMOTE_ONLY ? CACHE_EXPORT_REMOTE_ONLY
					     : CACHE_EXPORT_MIN;
}

/* The job pushing its export, for the registry client's callbacks. */
struct pusher {
	struct sfs_solver *s;
	struct sfs_job *j;
	char digest[SFS_DIGEST_SIZE];
};

static bool push_cancelled(void *arg)
{
	struct pusher *p = arg;
	sfs_solver_lock(p->s);
	bool stop = p->j->state != SFS_JOB_RUNNING;
	sfs_solver_unlock(p->s);
	return stop;
}

/* Each blob's upload as a status of the export vertex. */
static void push_progress(void *arg, const char *what, uint64_t done, uint64_t total)
{
	struct pusher *p = arg;
	sfs_solver_lock(p->s);
	sfs_progress_status(p->j->progress, p->digest, what, done, total, sfs_now_ns(),
			    done == total);
	sfs_job_mark_dirty(p->s, p->j);
	sfs_solver_unlock(p->s);
	sfs_solver_flush_notify(p->s);
}

/* The repository of the first job-level cache_from on to's host, other than
 * to's: blobs missing from to are mounted from it (docs/export.md §11.1). */
static void mount_source(const struct sfs_spec *spec, const struct imageref *to,
			 char ret[IMAGEREF_REPO_MAX])
{
	for (size_t k = 0; spec->cache_from && spec->cache_from[k]; k++) {
		struct imageref from = {0};
		if (imageref_parse(spec->cache_from[k], &from, NULL) < 0)
			continue;
		bool same = from.kind == IMAGEREF_DOCKER && strcmp(from.host, to->host) == 0 &&
			    strcmp(from.repo, to->repo) != 0;
		if (same)
			sfs_copy_str(ret, IMAGEREF_REPO_MAX, from.repo);
		imageref_release(&from);
		if (same)
			return;
	}
}

/* export.to: the layout at dir goes to the registry (cache/remote.h). */
static int push_export(struct sfs_solver *s, struct sfs_job *j, const char *dir, char **ret_msg)
{
	struct pusher p = {.s = s, .j = j};
	struct registry_opts ro;
	struct imageref ref = {0};
	int r = imageref_parse(j->spec->export_to, &ref, ret_msg);

	export_digest(j, p.digest);
	sfs_solver_registry_opts(s, &ro);
	ro.progress = push_progress;
	ro.cancelled = push_cancelled;
	ro.arg = &p;
	char mount_from[IMAGEREF_REPO_MAX] = "";
	if (r == 0)
		mount_source(j->spec, &ref, mount_from);
	if (r == 0)
		r = remote_push_layout(dir, &ref, mount_from[0] ? mount_from : NULL, &ro, ret_msg);
	if (r < 0)
		sfs_err_prefix(ret_msg, r, "pushing to %s", j->spec->export_to);
	else
		sfs_log(SFS_LOG_INFO, "job %llu: cache export pushed to %s",
			(unsigned long long)j->id, j->spec->export_to);
	imageref_release(&ref);
	return r;
}

void sfs_run_export(struct sfs_solver *s, struct sfs_job *j)
{
	struct cache_key **keys = NULL;
	size_t n = 0;
	char *msg = NULL, *dir = NULL;
	int r;

	sfs_solver_lock(s);
	struct strmap skip = STRMAP_INIT;
	r = j->state == SFS_JOB_RUNNING && j->vs ? output_keys(j, &keys, &n) : -ECANCELED;
	if (r == 0)
		r = no_result_digests(j, &skip);
	enum cache_export_mode mode = export_mode(j->spec->export_mode);
	enum cache_export_form form = j->spec->export_form == SFS_FORM_MANIFEST_LIST
					  ? CACHE_EXPORT_MANIFEST_LIST
					  : CACHE_EXPORT_IMAGE;
	sfs_solver_unlock(s);
	if (r == -ECANCELED) {
		strmap_release(&skip);
		return;
	}
	if (r == 0 && !(dir = sfs_job_export_dir(s, j->id)))
		r = -ENOMEM;
	if (r == 0) {
		char *parent = strndup(dir, strrchr(dir, '/') - dir);
		if (parent)
			mkdir(parent, 0755);
		free(parent);
		cas_rmtree(dir); /* a leftover of a crash: never half an export */
		r = cache_export_except(s->cache, s->cache->main, keys, n, mode, form, &skip, dir,
					&msg);
	}
	if (r == 0 && j->spec->export_to)
		r = push_export(s, j, dir, &msg);
	for (size_t k = 0; k < n; k++)
		cache_key_unref(keys[k]);
	free(keys);
	strmap_release(&skip);

	char d[SFS_DIGEST_SIZE];
	export_digest(j, d);
	sfs_solver_lock(s);
	if (j->state == SFS_JOB_RUNNING) {
		if (r < 0)
			sfs_err_prefix(&msg, r, "cache export");
		sfs_progress_completed(j->progress, d, sfs_now_ns(), false, r < 0 ? msg : NULL);
		if (r == 0)
			j->exported = true;
		sfs_job_end(s, j, r < 0 ? SFS_JOB_FAILED : SFS_JOB_DONE, r < 0 ? msg : NULL);
	}
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
	free(msg);
	free(dir);
}
