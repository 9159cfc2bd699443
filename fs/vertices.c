/*
 * vertices.c — vertex directories: vertices/<hex>/ (every vertex of a running
 * job, the solver's shared graph) and jobs/N/vertices/<hex>/ (a job's vertices
 * as they are now or as they ended), each with name, op, state and log.
 *
 * A descriptor with job 0 names the shared graph.  Each call asks the solver
 * for the vertex list afresh; `op` is immutable (it is the hashed bytes), the
 * rest is dynamic.  No state, no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

static const struct {
	const char *name;
	enum fs_kind kind;
} vertex_children[] = {
    {"log", FS_VERTEX_LOG},
    {"name", FS_VERTEX_NAME},
    {"op", FS_VERTEX_OP},
    {"state", FS_VERTEX_STATE},
};
#define N_VERTEX_CHILDREN (sizeof(vertex_children) / sizeof(vertex_children[0]))

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
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	int r = vertex_list(fs, job, &v, &n);

	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(digest_hex(v[i].digest), hex)) {
			*ret = v[i];
			memset(&v[i], 0, sizeof(v[i])); /* ownership moved to *ret */
			r = 0;
			break;
		}
	sfs_vertex_infos_free(v, n);
	return r;
}

static int vertices_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			   struct fs_desc *ret)
{
	struct sfs_vertex_info vi;
	int r;

	if (d->kind == FS_VERTEX_DIR) {
		for (size_t i = 0; i < N_VERTEX_CHILDREN; i++)
			if (!strcmp(name, vertex_children[i].name)) {
				*ret = *d;
				ret->path = NULL;
				ret->kind = vertex_children[i].kind;
				return 0;
			}
		return -ENOENT;
	}
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

static int vertices_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	uint64_t job = d->kind == FS_JOB_VERTICES ? d->job : 0;
	int r = 0;

	if (d->kind == FS_VERTEX_DIR) {
		for (size_t i = 0; i < N_VERTEX_CHILDREN && r == 0; i++) {
			struct fs_desc c = *d;
			c.path = NULL;
			c.kind = vertex_children[i].kind;
			r = fs_dirlist_add(l, vertex_children[i].name, S_IFREG, &c);
		}
		return r;
	}
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

static uid_t owner_of(struct sfs_fs *fs, uint64_t job, gid_t *ret_gid)
{
	struct sfs_job_info info;
	uid_t uid = fs->uid;

	*ret_gid = fs->gid;
	if (job && sfs_solver_job_info(fs->solver, job, &info) == 0) {
		uid = info.uid;
		*ret_gid = info.gid;
		sfs_job_info_release(&info);
	}
	return uid;
}

static off_t vertex_size(const struct sfs_vertex_info *vi, enum fs_kind k)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat lst;
	off_t size = 0;

	if (k == FS_VERTEX_LOG) {
		if (vi->log_path && stat(vi->log_path, &lst) == 0)
			size = lst.st_size;
		return size;
	}
	vertex_content(vi, k, &sb);
	size = (off_t)sb.len;
	strbuf_release(&sb);
	return size;
}

static int vertices_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	struct sfs_vertex_info vi;
	gid_t gid;
	uid_t uid;
	int r;

	if (d->kind == FS_VERTICES_DIR || d->kind == FS_JOB_VERTICES) {
		uid = owner_of(fs, d->kind == FS_JOB_VERTICES ? d->job : 0, &gid);
		fs_stat_init(fs, st, S_IFDIR | 0555, uid, gid);
		return 0;
	}
	r = fs_vertex_find(fs, d->job, d->hex, &vi);
	if (r < 0)
		return r;
	uid = owner_of(fs, d->job, &gid);
	if (d->kind == FS_VERTEX_DIR) {
		fs_stat_init(fs, st, S_IFDIR | 0555, uid, gid);
	} else {
		fs_stat_init(fs, st, S_IFREG | 0444, uid, gid);
		st->st_size = vertex_size(&vi, d->kind);
	}
	sfs_vertex_info_release(&vi);
	return 0;
}

const struct fs_module fs_vertices_module = {
    .lookup = vertices_lookup,
    .getattr = vertices_getattr,
    .readdir = vertices_readdir,
    .content = vertices_content,
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
