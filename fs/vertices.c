/*
 * vertices.c — vertex directories: vertices/<hex>/ (every vertex of a running
 * job, the solver's shared graph) and jobs/N/vertices/<hex>/ (a job's vertices
 * as they are now or as they ended), each with name, op, state, log, keys,
 * jobs, why, inputs/<i> (symlinks to the input vertices) and results/<N>
 * (symlinks into results/).
 *
 * A descriptor with job 0 names the shared graph.  Each call asks the solver
 * for the vertex list afresh; `op` is immutable (it is the hashed bytes), the
 * rest is dynamic.  Symlinks are relative so the tree can be bind-mounted or
 * copied.  No state, no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

static int vertex_list(struct sfs_fs *fs, uint64_t job, struct sfs_vertex_info **ret, size_t *ret_n)
{
	if (job)
		return sfs_solver_job_vertices(fs->solver, job, ret, ret_n);
	return sfs_solver_vertices(fs->solver, ret, ret_n);
}

static const char *digest_hex(const char *digest)
{
	return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
}

int fs_vertex_find(struct sfs_fs *fs, uint64_t job, const char *hex, struct sfs_vertex_info *ret)
{
	return sfs_solver_vertex(fs->solver, job, hex, ret);
}

/* "0", "1", ... without leading zeros; -ENOENT otherwise. */
static int parse_index(const char *s, size_t *ret)
{
	size_t v = 0;

	if (!s[0] || (s[0] == '0' && s[1]) || strlen(s) > 9)
		return -ENOENT;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -ENOENT;
		v = v * 10 + (size_t)(*p - '0');
	}
	*ret = v;
	return 0;
}

/* Whether the input or result named by d->path exists in vi. */
static bool link_exists(const struct sfs_vertex_info *vi, const struct fs_desc *d)
{
	size_t i;

	if (!d->path || parse_index(d->path, &i) < 0)
		return false;
	if (d->kind == FS_VERTEX_INPUT)
		return i < vi->ninputs && sfs_is_hex(digest_hex(vi->inputs[i]));
	return i < vi->noutputs && sfs_is_digest(vi->results[i]);
}

static int link_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
		       struct fs_desc *ret)
{
	struct sfs_vertex_info vi;
	bool ok;
	int r = fs_vertex_find(fs, d->job, d->hex, &vi);

	if (r < 0)
		return r;
	*ret = *d;
	ret->kind = d->kind == FS_VERTEX_INPUTS ? FS_VERTEX_INPUT : FS_VERTEX_RESULT;
	ret->path = (char *)name;
	ok = link_exists(&vi, ret);
	sfs_vertex_info_release(&vi);
	ret->path = NULL;
	if (!ok)
		return -ENOENT;
	ret->path = strdup(name);
	return ret->path ? 0 : -ENOMEM;
}

static int vertices_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			   struct fs_desc *ret)
{
	struct sfs_vertex_info vi;
	int r;

	if (d->kind == FS_VERTEX_DIR)
		return fs_kind_lookup(d, name, ret);
	if (d->kind == FS_VERTEX_INPUTS || d->kind == FS_VERTEX_RESULTS)
		return link_lookup(fs, d, name, ret);
	if (d->kind != FS_VERTICES_DIR && d->kind != FS_JOB_VERTICES)
		return -ENOTDIR;
	if (!sfs_is_hex(name))
		return -ENOENT;
	r = fs_vertex_find(fs, d->kind == FS_JOB_VERTICES ? d->job : 0, name, &vi);
	if (r < 0)
		return r;
	sfs_vertex_info_release(&vi);
	*ret =
	    (struct fs_desc){.kind = FS_VERTEX_DIR, .job = d->kind == FS_JOB_VERTICES ? d->job : 0};
	memcpy(ret->hex, name, SFS_HEX_SIZE);
	return 0;
}

static int links_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	struct sfs_vertex_info vi;
	size_t n;
	char name[24];
	int r = fs_vertex_find(fs, d->job, d->hex, &vi);

	if (r < 0)
		return r;
	n = d->kind == FS_VERTEX_INPUTS ? vi.ninputs : vi.noutputs;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct fs_desc c = *d;
		c.kind = d->kind == FS_VERTEX_INPUTS ? FS_VERTEX_INPUT : FS_VERTEX_RESULT;
		snprintf(name, sizeof(name), "%zu", i);
		c.path = name;
		if (link_exists(&vi, &c))
			r = fs_dirlist_add(l, name, S_IFLNK, &c);
	}
	sfs_vertex_info_release(&vi);
	return r;
}

static int vertices_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	uint64_t job = d->kind == FS_JOB_VERTICES ? d->job : 0;
	int r = 0;

	if (d->kind == FS_VERTEX_DIR)
		return fs_kind_list(d, l);
	if (d->kind == FS_VERTEX_INPUTS || d->kind == FS_VERTEX_RESULTS)
		return links_readdir(fs, d, l);
	r = vertex_list(fs, job, &v, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct fs_desc c = {.kind = FS_VERTEX_DIR, .job = job};
		const char *hex = digest_hex(v[i].digest);
		if (!sfs_is_hex(hex))
			continue;
		memcpy(c.hex, hex, SFS_HEX_SIZE);
		r = fs_dirlist_add(l, hex, S_IFDIR, &c);
	}
	sfs_vertex_infos_free(v, n);
	return r;
}

static int vertex_content(const struct sfs_vertex_info *vi, enum fs_kind k, struct strbuf *out)
{
	switch (k) {
	case FS_VERTEX_NAME:
		strbuf_addf(out, "%s\n", vi->name ? vi->name : "");
		break;
	case FS_VERTEX_OP:
		if (vi->op)
			strbuf_add(out, vi->op, vi->op_len);
		break;
	case FS_VERTEX_STATE:
		strbuf_addf(out, "%s\n", sfs_vertex_state_name(vi->state));
		break;
	case FS_VERTEX_KEYS:
		strbuf_addstr(out, vi->keys ? vi->keys : "");
		break;
	case FS_VERTEX_JOBS:
		for (size_t i = 0; i < vi->njobs; i++)
			strbuf_addf(out, "%" PRIu64 "\n", vi->jobs[i]);
		break;
	case FS_VERTEX_WHY:
		strbuf_addf(out, "%s\n", sfs_vertex_why(vi));
		break;
	default:
		return -EINVAL;
	}
	return out->oom ? -ENOMEM : 0;
}

static int vertices_content(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out)
{
	struct sfs_vertex_info vi;
	int r;

	if (d->kind == FS_VERTEX_LOG)
		return 0; /* read through the log file's fd */
	r = fs_vertex_find(fs, d->job, d->hex, &vi);
	if (r < 0)
		return r;
	r = vertex_content(&vi, d->kind, out);
	sfs_vertex_info_release(&vi);
	return r;
}

static uid_t owner_of(struct sfs_fs *fs, uint64_t job, gid_t *ret_gid, int64_t *ret_changed)
{
	struct sfs_job_info info;
	uid_t uid = fs->uid;

	*ret_gid = fs->gid;
	*ret_changed = 0;
	if (job && sfs_solver_job_info(fs->solver, job, &info) == 0) {
		uid = info.uid;
		*ret_gid = info.gid;
		*ret_changed = info.changed ? info.changed : info.created;
		sfs_job_info_release(&info);
	}
	return uid;
}

/* The target of an inputs/<i> or results/<N> symlink. */
static int link_target(const struct sfs_vertex_info *vi, const struct fs_desc *d, char **ret)
{
	size_t i = 0;

	if (!link_exists(vi, d))
		return -ENOENT;
	parse_index(d->path, &i);
	if (d->kind == FS_VERTEX_INPUT)
		return asprintf(ret, "../../%s", digest_hex(vi->inputs[i])) < 0 ? -ENOMEM : 0;
	/* vertices/<hex>/results/ is 3 levels deep, jobs/N/vertices/<hex>/results/ 5. */
	return asprintf(ret, "%s../results/%s", d->job ? "../../../../" : "../../",
			digest_hex(vi->results[i])) < 0
		   ? -ENOMEM
		   : 0;
}

static off_t vertex_size(const struct sfs_vertex_info *vi, const struct fs_desc *d)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat lst;
	char *target = NULL;
	off_t size = 0;

	if (d->kind == FS_VERTEX_LOG) {
		if (vi->log_path && stat(vi->log_path, &lst) == 0)
			size = lst.st_size;
		return size;
	}
	if (d->kind == FS_VERTEX_INPUT || d->kind == FS_VERTEX_RESULT) {
		if (link_target(vi, d, &target) == 0)
			size = (off_t)strlen(target);
		free(target);
		return size;
	}
	vertex_content(vi, d->kind, &sb);
	size = (off_t)sb.len;
	strbuf_release(&sb);
	return size;
}

static int vertices_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	struct sfs_vertex_info vi;
	int64_t changed;
	gid_t gid;
	uid_t uid;
	int r;

	if (d->kind == FS_VERTICES_DIR || d->kind == FS_JOB_VERTICES) {
		uid = owner_of(fs, d->kind == FS_JOB_VERTICES ? d->job : 0, &gid, &changed);
		fs_stat_init(fs, st, fs_kinds[d->kind].mode, uid, gid);
		fs_stat_time_ns(st, changed);
		return 0;
	}
	r = fs_vertex_find(fs, d->job, d->hex, &vi);
	if (r < 0)
		return r;
	/* A running vertex is its (first) job's submitter's, like that job's files:
	 * its op and log may hold secrets (docs/security.md). */
	uid = owner_of(fs, d->job ? d->job : vi.njobs ? vi.jobs[0] : 0, &gid, &changed);
	if (d->kind == FS_VERTEX_DIR && !d->job)
		fs_stat_init(fs, st, S_IFDIR | 0500, uid, gid);
	else
		fs_stat_init(fs, st, fs_kinds[d->kind].mode, uid, gid);
	if ((d->kind == FS_VERTEX_INPUT || d->kind == FS_VERTEX_RESULT) && !link_exists(&vi, d))
		r = -ENOENT;
	if (r == 0 && !S_ISDIR(st->st_mode))
		st->st_size = vertex_size(&vi, d);
	if (d->kind != FS_VERTEX_OP)
		fs_stat_time_ns(st, changed);
	sfs_vertex_info_release(&vi);
	return r;
}

static int vertices_readlink(struct sfs_fs *fs, const struct fs_desc *d, char **ret)
{
	struct sfs_vertex_info vi;
	int r;

	if (d->kind != FS_VERTEX_INPUT && d->kind != FS_VERTEX_RESULT)
		return -EINVAL;
	r = fs_vertex_find(fs, d->job, d->hex, &vi);
	if (r < 0)
		return r;
	r = link_target(&vi, d, ret);
	sfs_vertex_info_release(&vi);
	return r;
}

const struct fs_module fs_vertices_module = {
    .lookup = vertices_lookup,
    .getattr = vertices_getattr,
    .readdir = vertices_readdir,
    .content = vertices_content,
    .readlink = vertices_readlink,
};

/* Opens the vertex log for reading (no log yet: an empty file). */
int fs_vertex_log_open(struct sfs_fs *fs, struct fs_file *f)
{
	struct sfs_vertex_info vi;
	int r = fs_vertex_find(fs, f->d.job, f->d.hex, &vi);

	if (r < 0)
		return r;
	if (vi.log_path) {
		f->fd = open(vi.log_path, O_RDONLY | O_CLOEXEC);
		if (f->fd < 0 && errno != ENOENT)
			r = -errno;
	}
	sfs_vertex_info_release(&vi);
	return r;
}
