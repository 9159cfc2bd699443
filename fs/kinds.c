/*
 * kinds.c — the table of node kinds: every fact about a kind of node of the
 * mount that does not depend on the solver's data, in one row per kind.
 *
 * A row says where the kind sits in the tree (its name in its parent, or NULL
 * when the name comes from the data: a job number, a vertex or result hex, a
 * path), which module (file) answers for it, its mode, and flags that decide
 * the kernel's caching (ops.c), who may write it (ops.c, jobs.c), which reads
 * block (stream.c) and what a job's change invalidates (notify.c).  README.md
 * "The mounted tree" describes the same tree for users.
 *
 * Named children are looked up and listed from the table (fs_kind_lookup,
 * fs_kind_list), in name order; a module adds what only it can know (job
 * numbers, hexes, paths, and the FS_KIND_OPTIONAL names while they exist).
 *
 * The rows are designated initializers keyed by the enum, so reordering the
 * enum cannot shift them; fs_kinds_check (at mount) finds a kind without a row.
 * Read-only data: no locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define DIR(perm) (S_IFDIR | (perm))
#define REG(perm) (S_IFREG | (perm))
#define LNK (S_IFLNK | 0777)

const struct fs_kind_info fs_kinds[FS_KIND_MAX] = {
    /* the root: README, metrics, and the five subtrees (root.c) */
    [FS_ROOT] = {NULL, FS_ROOT, &fs_root_module, DIR(0755), FS_KIND_FIXED_DIR},
    [FS_README] = {"README", FS_ROOT, &fs_root_module, REG(0444), FS_KIND_IMMUTABLE},
    /* metrics: built on cachesnap.c's thread (it walks STATE_DIR), read as a stream */
    [FS_METRICS] = {"metrics", FS_ROOT, &fs_root_module, REG(0444),
		    FS_KIND_STREAM | FS_KIND_INVAL_GLOBAL},

    /* jobs/ (jobs.c; the blocking reads are stream.c's) */
    [FS_JOBS_DIR] = {"jobs", FS_ROOT, &fs_jobs_module, DIR(0755),
		     FS_KIND_FIXED_DIR | FS_KIND_INVAL_GLOBAL},
    [FS_JOBS_NEW] = {"new", FS_JOBS_DIR, &fs_jobs_module, REG(0666), FS_KIND_WRITABLE},
    [FS_JOBS_LATEST] = {"latest", FS_JOBS_DIR, &fs_jobs_module, LNK,
			FS_KIND_OPTIONAL | FS_KIND_INVAL_GLOBAL},
    [FS_JOBS_LAST_REJECTED] = {"last-rejected", FS_JOBS_DIR, &fs_jobs_module, LNK,
			       FS_KIND_OPTIONAL | FS_KIND_INVAL_GLOBAL},
    /* jobs/N: the submitter's and root's only (docs/security.md) */
    [FS_JOB_DIR] = {NULL, FS_JOBS_DIR, &fs_jobs_module, DIR(0700), FS_KIND_INVAL_JOB},
    [FS_JOB_SPEC] = {"spec", FS_JOB_DIR, &fs_jobs_module, REG(0644),
		     FS_KIND_WRITABLE | FS_KIND_INVAL_JOB},
    [FS_JOB_STATE] = {"state", FS_JOB_DIR, &fs_jobs_module, REG(0444), FS_KIND_INVAL_JOB},
    [FS_JOB_WAIT] = {"wait", FS_JOB_DIR, &fs_jobs_module, REG(0444),
		     FS_KIND_STREAM | FS_KIND_INVAL_JOB},
    [FS_JOB_STATUS] = {"status", FS_JOB_DIR, &fs_jobs_module, REG(0444),
		       FS_KIND_STREAM | FS_KIND_INVAL_JOB},
    [FS_JOB_STATUS_JSON] = {"status.json", FS_JOB_DIR, &fs_jobs_module, REG(0444),
			    FS_KIND_STREAM | FS_KIND_INVAL_JOB},
    [FS_JOB_ERROR] = {"error", FS_JOB_DIR, &fs_jobs_module, REG(0444), FS_KIND_INVAL_JOB},
    [FS_JOB_RESULT] = {"result", FS_JOB_DIR, &fs_jobs_module, REG(0444), FS_KIND_INVAL_JOB},
    /* ctl: reads give the last command's outcome */
    [FS_JOB_CTL] = {"ctl", FS_JOB_DIR, &fs_jobs_module, REG(0644),
		    FS_KIND_WRITABLE | FS_KIND_INVAL_JOB},
    [FS_JOB_WHY] = {"why", FS_JOB_DIR, &fs_jobs_module, REG(0444), FS_KIND_INVAL_JOB},
    [FS_JOB_GRAPH] = {"graph.dot", FS_JOB_DIR, &fs_jobs_module, REG(0444), FS_KIND_INVAL_JOB},
    [FS_JOB_OUTPUTS] = {"outputs", FS_JOB_DIR, &fs_jobs_module, DIR(0555), FS_KIND_INVAL_JOB},
    /* outputs/<ref>, the ref with ':' written '@' as path */
    [FS_JOB_OUTPUT] = {NULL, FS_JOB_OUTPUTS, &fs_jobs_module, LNK, 0},
    /* by-name/<key>: a spec key (path) -> ../vertices/<hex> */
    [FS_JOB_BY_NAME] = {"by-name", FS_JOB_DIR, &fs_jobs_module, DIR(0555), FS_KIND_INVAL_JOB},
    [FS_JOB_BY_NAME_LINK] = {NULL, FS_JOB_BY_NAME, &fs_jobs_module, LNK, 0},
    /* export/<path> (exports.c): mode from the layout on disk, path "." its root */
    [FS_JOB_EXPORT] = {"export", FS_JOB_DIR, &fs_exports_module, 0,
		       FS_KIND_OPTIONAL | FS_KIND_IMMUTABLE},

    /* vertices/ and jobs/N/vertices/ (vertices.c); job 0 is the shared graph */
    [FS_VERTICES_DIR] = {"vertices", FS_ROOT, &fs_vertices_module, DIR(0555),
			 FS_KIND_FIXED_DIR | FS_KIND_INVAL_GLOBAL},
    [FS_JOB_VERTICES] = {"vertices", FS_JOB_DIR, &fs_vertices_module, DIR(0555), FS_KIND_INVAL_JOB},
    /* <hex> under either; 0500 under vertices/ (its op and log may hold secrets) */
    [FS_VERTEX_DIR] = {NULL, FS_VERTICES_DIR, &fs_vertices_module, DIR(0555), 0},
    [FS_VERTEX_NAME] = {"name", FS_VERTEX_DIR, &fs_vertices_module, REG(0444), 0},
    [FS_VERTEX_OP] = {"op", FS_VERTEX_DIR, &fs_vertices_module, REG(0444), FS_KIND_IMMUTABLE},
    [FS_VERTEX_STATE] = {"state", FS_VERTEX_DIR, &fs_vertices_module, REG(0444), 0},
    [FS_VERTEX_LOG] = {"log", FS_VERTEX_DIR, &fs_vertices_module, REG(0444), 0},
    [FS_VERTEX_KEYS] = {"keys", FS_VERTEX_DIR, &fs_vertices_module, REG(0444), 0},
    [FS_VERTEX_JOBS] = {"jobs", FS_VERTEX_DIR, &fs_vertices_module, REG(0444), 0},
    [FS_VERTEX_WHY] = {"why", FS_VERTEX_DIR, &fs_vertices_module, REG(0444), 0},
    [FS_VERTEX_INPUTS] = {"inputs", FS_VERTEX_DIR, &fs_vertices_module, DIR(0555), 0},
    /* inputs/<i>, the input index as path */
    [FS_VERTEX_INPUT] = {NULL, FS_VERTEX_INPUTS, &fs_vertices_module, LNK, 0},
    [FS_VERTEX_RESULTS] = {"results", FS_VERTEX_DIR, &fs_vertices_module, DIR(0555), 0},
    /* results/<N>, the output index as path */
    [FS_VERTEX_RESULT] = {NULL, FS_VERTEX_RESULTS, &fs_vertices_module, LNK, 0},

    /* results/ (results.c) */
    [FS_RESULTS_DIR] = {"results", FS_ROOT, &fs_results_module, DIR(0555),
			FS_KIND_FIXED_DIR | FS_KIND_INVAL_GLOBAL},
    /* <hex>/<path>: mode from the manifest, path "." the result's root */
    [FS_RESULT_ENTRY] = {NULL, FS_RESULTS_DIR, &fs_results_module, 0, FS_KIND_IMMUTABLE},

    /* cache/ (cachedir.c) */
    [FS_CACHE_DIR] = {"cache", FS_ROOT, &fs_cache_module, DIR(0555), FS_KIND_FIXED_DIR},
    /* stats and du: built on cachesnap.c's thread, read as streams until then */
    [FS_CACHE_STATS] = {"stats", FS_CACHE_DIR, &fs_cache_module, REG(0444),
			FS_KIND_STREAM | FS_KIND_INVAL_GLOBAL},
    [FS_CACHE_KEYS] = {"keys", FS_CACHE_DIR, &fs_cache_module, DIR(0555), FS_KIND_FIXED_DIR},
    /* keys/<id>, the id as named ("sha256:" dropped) as path */
    [FS_CACHE_KEY] = {NULL, FS_CACHE_KEYS, &fs_cache_module, DIR(0555), 0},
    [FS_CACHE_KEY_DIGEST] = {"digest", FS_CACHE_KEY, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_KEY_OUTPUT] = {"output", FS_CACHE_KEY, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_KEY_RESULTS] = {"results", FS_CACHE_KEY, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_KEY_LINKS] = {"links", FS_CACHE_KEY, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_KEY_BACKLINKS] = {"backlinks", FS_CACHE_KEY, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_RESULTS] = {"results", FS_CACHE_DIR, &fs_cache_module, DIR(0555), FS_KIND_FIXED_DIR},
    /* results/<hex> */
    [FS_CACHE_RESULT] = {NULL, FS_CACHE_RESULTS, &fs_cache_module, DIR(0555), 0},
    [FS_CACHE_RESULT_SIZE] = {"size", FS_CACHE_RESULT, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_RESULT_CREATED] = {"created", FS_CACHE_RESULT, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_RESULT_LAST_USED] = {"last_used", FS_CACHE_RESULT, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_RESULT_RECORDS] = {"records", FS_CACHE_RESULT, &fs_cache_module, REG(0444), 0},
    [FS_CACHE_RESULT_KEYS] = {"keys", FS_CACHE_RESULT, &fs_cache_module, REG(0444), 0},
    /* exports/<hex>/<path> (exports.c): whole-cache exports; export -> the newest */
    [FS_CACHE_EXPORTS] = {"exports", FS_CACHE_DIR, &fs_exports_module, DIR(0555), 0},
    [FS_CACHE_EXPORT_ENTRY] = {NULL, FS_CACHE_EXPORTS, &fs_exports_module, 0, FS_KIND_IMMUTABLE},
    [FS_CACHE_EXPORT_LINK] = {"export", FS_CACHE_DIR, &fs_exports_module, LNK, FS_KIND_OPTIONAL},
    /* import (cacheimport.c): write a layout's path; reads give the outcome */
    [FS_CACHE_IMPORT] = {"import", FS_CACHE_DIR, &fs_cache_module, REG(0644), FS_KIND_WRITABLE},
    /* ctl (cachectl.c): prune; reads give the last command's outcome */
    [FS_CACHE_CTL] = {"ctl", FS_CACHE_DIR, &fs_cache_module, REG(0644), FS_KIND_WRITABLE},
    /* du: one line per result, largest first (docs/tree.md §6.2) */
    [FS_CACHE_DU] = {"du", FS_CACHE_DIR, &fs_cache_module, REG(0444), FS_KIND_STREAM},
};

enum fs_kind fs_kind_child(enum fs_kind parent, const char *name)
{
	for (int k = 0; k < FS_KIND_MAX; k++)
		if (fs_kinds[k].name && fs_kinds[k].parent == parent &&
		    !strcmp(fs_kinds[k].name, name))
			return (enum fs_kind)k;
	return FS_KIND_MAX;
}

int fs_kind_lookup(const struct fs_desc *d, const char *name, struct fs_desc *ret)
{
	enum fs_kind k = fs_kind_child(d->kind, name);

	if (k == FS_KIND_MAX)
		return -ENOENT;
	if (fs_desc_copy(ret, d) < 0)
		return -ENOMEM;
	ret->kind = k;
	return 0;
}

int fs_dirlist_add_kind(struct fs_dirlist *l, const struct fs_desc *c)
{
	const struct fs_kind_info *ki = &fs_kinds[c->kind];

	return fs_dirlist_add(l, ki->name, ki->mode & S_IFMT, c);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(fs_kinds[*(const int *)a].name, fs_kinds[*(const int *)b].name);
}

int fs_kind_list(const struct fs_desc *d, struct fs_dirlist *l)
{
	int kids[FS_KIND_MAX];
	size_t n = 0;
	int r = 0;

	for (int k = 0; k < FS_KIND_MAX; k++)
		if (fs_kinds[k].name && fs_kinds[k].parent == d->kind &&
		    !(fs_kinds[k].flags & FS_KIND_OPTIONAL))
			kids[n++] = k;
	qsort(kids, n, sizeof(kids[0]), by_name);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct fs_desc c = *d; /* the child's copy of job, hex and path is the list's */
		c.kind = (enum fs_kind)kids[i];
		r = fs_dirlist_add_kind(l, &c);
	}
	return r;
}

int fs_kinds_check(enum fs_kind *ret_bad)
{
	for (int k = 0; k < FS_KIND_MAX; k++) {
		const struct fs_kind_info *ki = &fs_kinds[k];
		bool bad = !ki->module || ki->parent >= FS_KIND_MAX ||
			   ((ki->flags & FS_KIND_OPTIONAL) && !ki->name) ||
			   (ki->name && fs_kind_child(ki->parent, ki->name) != (enum fs_kind)k);
		if (bad) {
			*ret_bad = (enum fs_kind)k;
			return -EINVAL;
		}
	}
	return 0;
}
