/*
 * jobs.c — the jobs/ subtree: jobs/new, jobs/latest, jobs/last-rejected and
 * jobs/N/ with its spec, state, wait, status, status.json, error, result, ctl,
 * why, graph.dot, outputs/ and by-name/.  (jobs/N/vertices/ is vertices.c;
 * the blocking reads are stream.c; why and graph.dot are made by graph.c.)
 *
 * Everything is asked of the solver at each call; nothing is cached here, so
 * attributes are current and the kernel gets zero timeouts for them.  The spec
 * a user writes is kept in the open file's buffer and handed to the solver's
 * parser at the first flush (close) that has data; the parser thread's answer
 * goes to the kernel through ops.c (fs_flush_reply).
 *
 * Locking: a spec file's spec_lock (struct fs_file, fs.h) guards its buffer and
 * flags, since FUSE threads may write and flush one open file at once; the
 * solver is thread-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "fs.h"
#include "results_index.h"

int fs_parse_job(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s[0] || s[0] == '0' || strlen(s) > 19)
		return -ENOENT;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -ENOENT;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*ret = v;
	return 0;
}

/* "key:N" <-> "key@N": names in the mount never contain ':'. */
static char *ref_to_name(const char *ref)
{
	char *s = strdup(ref);

	for (char *p = s; p && *p; p++)
		if (*p == ':')
			*p = '@';
	return s;
}

static const struct sfs_job_output *find_output(const struct sfs_job_info *info, const char *name)
{
	for (size_t i = 0; i < info->noutputs; i++) {
		const struct sfs_job_output *o = &info->outputs[i];
		char *n;
		bool eq;

		if (!o->result[0] || !sfs_is_digest(o->result))
			continue;
		n = ref_to_name(o->ref);
		eq = n && !strcmp(n, name);
		free(n);
		if (eq)
			return o;
	}
	return NULL;
}

/* The job jobs/latest or jobs/last-rejected points at, 0 while there is none. */
static uint64_t link_target(struct sfs_fs *fs, enum fs_kind k)
{
	if (k == FS_JOBS_LATEST)
		return sfs_solver_job_latest(fs->solver);
	return sfs_solver_job_last_rejected(fs->solver);
}

static bool is_jobs_link(enum fs_kind k)
{
	return k == FS_JOBS_LATEST || k == FS_JOBS_LAST_REJECTED;
}

/* new, latest and last-rejected (while they point at a job) or a job number. */
static int jobs_dir_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			   struct fs_desc *ret)
{
	struct sfs_job_info info;
	uint64_t id;
	int r;

	if (fs_kind_lookup(d, name, ret) == 0)
		return is_jobs_link(ret->kind) && link_target(fs, ret->kind) == 0 ? -ENOENT : 0;
	r = fs_parse_job(name, &id);
	if (r < 0)
		return r;
	r = sfs_solver_job_info(fs->solver, id, &info);
	if (r < 0)
		return r;
	sfs_job_info_release(&info);
	*ret = (struct fs_desc){.kind = FS_JOB_DIR, .job = id};
	return 0;
}

static int outputs_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			  struct fs_desc *ret)
{
	struct sfs_job_info info;
	int r = sfs_solver_job_info(fs->solver, d->job, &info);

	if (r < 0)
		return r;
	if (!find_output(&info, name)) {
		r = -ENOENT;
	} else {
		*ret = (struct fs_desc){.kind = FS_JOB_OUTPUT, .job = d->job};
		ret->path = strdup(name);
		r = ret->path ? 0 : -ENOMEM;
	}
	sfs_job_info_release(&info);
	return r;
}

/* by-name/<key>: the entry of that spec key in v, NULL when none. */
static const struct sfs_job_name *find_name(const struct sfs_job_name *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].key, key))
			return &v[i];
	return NULL;
}

static int by_name_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			  struct fs_desc *ret)
{
	struct sfs_job_name *v = NULL;
	size_t n = 0;
	int r = sfs_solver_job_names(fs->solver, d->job, &v, &n);

	if (r < 0)
		return r;
	if (!find_name(v, n, name)) {
		r = -ENOENT;
	} else {
		*ret = (struct fs_desc){.kind = FS_JOB_BY_NAME_LINK, .job = d->job};
		ret->path = strdup(name);
		r = ret->path ? 0 : -ENOMEM;
	}
	sfs_job_names_free(v, n);
	return r;
}

static int jobs_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
		       struct fs_desc *ret)
{
	int r;

	switch (d->kind) {
	case FS_JOBS_DIR:
		return jobs_dir_lookup(fs, d, name, ret);
	case FS_JOB_DIR:
		r = fs_kind_lookup(d, name, ret);
		if (r == 0 && ret->kind == FS_JOB_EXPORT)
			return fs_export_root(fs, d->job, ret); /* there when the job has one */
		return r;
	case FS_JOB_OUTPUTS:
		return outputs_lookup(fs, d, name, ret);
	case FS_JOB_BY_NAME:
		return by_name_lookup(fs, d, name, ret);
	default:
		return -ENOTDIR;
	}
}

static int jobs_dir_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	static const enum fs_kind links[] = {FS_JOBS_LAST_REJECTED, FS_JOBS_LATEST};
	struct fs_desc c;
	uint64_t *ids = NULL;
	size_t n = 0;
	char name[24];
	int r;

	r = fs_kind_list(d, l); /* new */
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(links); i++) {
		c = (struct fs_desc){.kind = links[i]};
		if (link_target(fs, links[i]) != 0)
			r = fs_dirlist_add_kind(l, &c);
	}
	if (r == 0)
		r = sfs_solver_job_list(fs->solver, &ids, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		c = (struct fs_desc){.kind = FS_JOB_DIR, .job = ids[i]};
		snprintf(name, sizeof(name), "%" PRIu64, ids[i]);
		r = fs_dirlist_add(l, name, S_IFDIR, &c);
	}
	free(ids);
	return r;
}

static int outputs_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	struct sfs_job_info info;
	int r = sfs_solver_job_info(fs->solver, d->job, &info);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < info.noutputs; i++) {
		struct fs_desc c = {.kind = FS_JOB_OUTPUT, .job = d->job};
		if (!info.outputs[i].result[0] || !sfs_is_digest(info.outputs[i].result))
			continue;
		c.path = ref_to_name(info.outputs[i].ref);
		r = c.path ? fs_dirlist_add(l, c.path, S_IFLNK, &c) : -ENOMEM;
		fs_desc_release(&c);
	}
	sfs_job_info_release(&info);
	return r;
}

static int by_name_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	struct sfs_job_name *v = NULL;
	size_t n = 0;
	int r = sfs_solver_job_names(fs->solver, d->job, &v, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		struct fs_desc c = {.kind = FS_JOB_BY_NAME_LINK, .job = d->job, .path = v[i].key};
		r = fs_dirlist_add(l, v[i].key, S_IFLNK, &c); /* copies c */
	}
	sfs_job_names_free(v, n);
	return r;
}

static int jobs_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	int r = 0;

	switch (d->kind) {
	case FS_JOBS_DIR:
		return jobs_dir_readdir(fs, d, l);
	case FS_JOB_DIR:
		r = fs_kind_list(d, l);
		struct fs_desc ex;
		if (r == 0 && fs_export_root(fs, d->job, &ex) == 0) {
			r = fs_dirlist_add(l, fs_kinds[FS_JOB_EXPORT].name, S_IFDIR, &ex);
			fs_desc_release(&ex);
		}
		return r;
	case FS_JOB_OUTPUTS:
		return outputs_readdir(fs, d, l);
	case FS_JOB_BY_NAME:
		return by_name_readdir(fs, d, l);
	default:
		return -ENOTDIR;
	}
}

/* "<ref> <result>" per built output, then " collected" after a result the GC
 * (or a prune) deleted since (outputs/<ref> then dangles), or " kept" while
 * the job is pinned (docs/gc.md). */
static void result_text(struct sfs_fs *fs, const struct sfs_job_info *info, struct strbuf *out)
{
	struct results_index_entry e;

	for (size_t i = 0; i < info->noutputs; i++) {
		const char *id = info->outputs[i].result;
		if (!id[0])
			continue;
		bool gone = results_index_get(fs->cache->db, id, &e) == -ENOENT;
		strbuf_addf(out, "%s %s%s\n", info->outputs[i].ref, id,
			    gone ? " collected" : info->kept ? " kept" : "");
	}
}

/* The bytes of a snapshot file of job info. */
static int info_content(struct sfs_fs *fs, const struct sfs_job_info *info, enum fs_kind k,
			struct strbuf *out)
{
	switch (k) {
	case FS_JOB_STATE:
		strbuf_addf(out, "%s\n", sfs_job_state_name(info->state));
		break;
	case FS_JOB_ERROR:
		if (info->error && info->error[0]) {
			strbuf_addstr(out, info->error);
			if (info->error[strlen(info->error) - 1] != '\n')
				strbuf_addch(out, '\n');
		}
		break;
	case FS_JOB_RESULT:
		result_text(fs, info, out);
		break;
	case FS_JOB_SPEC:
		if (info->spec)
			strbuf_add(out, info->spec, info->spec_len);
		break;
	case FS_JOB_CTL:
		if (info->ctl && info->ctl[0])
			strbuf_addf(out, "%s\n", info->ctl);
		break;
	default:
		return -EINVAL;
	}
	return out->oom ? -ENOMEM : 0;
}

static int jobs_content(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out)
{
	struct sfs_job_info info;
	int r;

	if (d->kind == FS_JOBS_NEW)
		return 0;
	if (d->kind == FS_JOB_WHY)
		return fs_job_why(fs, d->job, out);
	if (d->kind == FS_JOB_GRAPH)
		return fs_job_graph(fs, d->job, out);
	if (d->kind == FS_JOB_SPEC)
		r = sfs_solver_job_info_spec(fs->solver, d->job, &info);
	else
		r = sfs_solver_job_info(fs->solver, d->job, &info);
	if (r < 0)
		return r;
	r = info_content(fs, &info, d->kind, out);
	sfs_job_info_release(&info);
	return r;
}

static int jobs_top_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	uint64_t target = 0;
	char buf[24];

	if (is_jobs_link(d->kind)) {
		target = link_target(fs, d->kind);
		if (target == 0)
			return -ENOENT;
	}
	fs_stat_init(fs, st, fs_kinds[d->kind].mode, fs->uid, fs->gid);
	if (is_jobs_link(d->kind))
		st->st_size = snprintf(buf, sizeof(buf), "%" PRIu64, target);
	return 0;
}

static off_t job_file_size(struct sfs_fs *fs, const struct sfs_job_info *info,
			   const struct fs_desc *d)
{
	struct strbuf sb = STRBUF_INIT;
	off_t size;

	switch (d->kind) {
	case FS_JOB_WAIT:
	case FS_JOB_STATUS:
	case FS_JOB_STATUS_JSON:
		return (off_t)fs_stream_size(info, d->kind);
	case FS_JOB_OUTPUT:
		return (off_t)(strlen("../../../results/") + SFS_HEX_LEN);
	case FS_JOB_BY_NAME_LINK:
		return (off_t)(strlen("../vertices/") + SFS_HEX_LEN);
	case FS_JOB_SPEC:
		return (off_t)info->spec_len; /* info has no bytes: no copy per stat */
	case FS_JOB_WHY:
	case FS_JOB_GRAPH:
		fs_content_size(fs, d, &size); /* an error: the size of what was made */
		return size;
	default:
		info_content(fs, info, d->kind, &sb);
		size = (off_t)sb.len;
		strbuf_release(&sb);
		return size;
	}
}

static bool has_name(struct sfs_fs *fs, const struct fs_desc *d)
{
	struct sfs_job_name *v = NULL;
	size_t n = 0;
	bool found = sfs_solver_job_names(fs->solver, d->job, &v, &n) == 0 &&
		     find_name(v, n, d->path ? d->path : "");

	sfs_job_names_free(v, n);
	return found;
}

static int jobs_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	struct sfs_job_info info;
	mode_t mode;
	int r;

	if (d->kind == FS_JOBS_DIR || d->kind == FS_JOBS_NEW || is_jobs_link(d->kind))
		return jobs_top_getattr(fs, d, st);
	r = sfs_solver_job_info(fs->solver, d->job, &info);
	if (r < 0)
		return r;
	mode = fs_kinds[d->kind].mode;
	fs_stat_init(fs, st, mode, info.uid, info.gid);
	fs_stat_time_ns(st, info.changed ? info.changed : info.created);
	if (d->kind == FS_JOB_OUTPUT && !find_output(&info, d->path ? d->path : ""))
		r = -ENOENT;
	else if (d->kind == FS_JOB_BY_NAME_LINK && !has_name(fs, d))
		r = -ENOENT;
	else if (S_ISDIR(mode))
		st->st_nlink = d->kind == FS_JOB_DIR ? 5 : 2; /* outputs, vertices, by-name */
	else
		st->st_size = job_file_size(fs, &info, d);
	sfs_job_info_release(&info);
	return r;
}

/* by-name/<key> -> ../vertices/<hex>; -ENOENT when the job has no such key. */
static int by_name_readlink(struct sfs_fs *fs, const struct fs_desc *d, char **ret)
{
	struct sfs_job_name *v = NULL;
	size_t n = 0;
	int r = sfs_solver_job_names(fs->solver, d->job, &v, &n);
	const struct sfs_job_name *e = r == 0 ? find_name(v, n, d->path ? d->path : "") : NULL;

	if (r == 0 && !e)
		r = -ENOENT;
	else if (r == 0 && asprintf(ret, "../vertices/%s", e->digest + strlen("sha256:")) < 0)
		r = -ENOMEM;
	sfs_job_names_free(v, n);
	return r;
}

static int jobs_readlink(struct sfs_fs *fs, const struct fs_desc *d, char **ret)
{
	struct sfs_job_info info;
	const struct sfs_job_output *o;
	int r;

	if (is_jobs_link(d->kind)) {
		uint64_t target = link_target(fs, d->kind);
		if (target == 0)
			return -ENOENT;
		return asprintf(ret, "%" PRIu64, target) < 0 ? -ENOMEM : 0;
	}
	if (d->kind == FS_JOB_BY_NAME_LINK)
		return by_name_readlink(fs, d, ret);
	if (d->kind != FS_JOB_OUTPUT)
		return -EINVAL;
	r = sfs_solver_job_info(fs->solver, d->job, &info);
	if (r < 0)
		return r;
	o = find_output(&info, d->path ? d->path : "");
	if (!o)
		r = -ENOENT;
	else if (asprintf(ret, "../../../results/%s", o->result + strlen("sha256:")) < 0)
		r = -ENOMEM;
	sfs_job_info_release(&info);
	return r;
}

const struct fs_module fs_jobs_module = {
    .lookup = jobs_lookup,
    .getattr = jobs_getattr,
    .readdir = jobs_readdir,
    .content = jobs_content,
    .readlink = jobs_readlink,
};

/* ---- the writable files: jobs/new, jobs/N/spec, jobs/N/ctl ---- */

static int check_writer(struct sfs_fs *fs, uid_t uid, uint64_t job, bool need_pending)
{
	struct sfs_job_info info;
	int r = sfs_solver_job_info(fs->solver, job, &info);

	if (r < 0)
		return r;
	if (uid != 0 && uid != info.uid)
		r = -EACCES;
	else if (need_pending && info.state != SFS_JOB_PENDING)
		r = -EBUSY;
	sfs_job_info_release(&info);
	return r;
}

int fs_jobs_open(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, int flags)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	int r;

	f->uid = ctx->uid;
	f->writable = wr;
	switch (f->d.kind) {
	case FS_JOBS_NEW:
		r = sfs_solver_job_new(fs->solver, ctx->uid, ctx->gid, &f->new_job);
		if (r < 0)
			return r;
		strbuf_addf(&f->data, "%" PRIu64 "\n", f->new_job);
		return f->data.oom ? -ENOMEM : 0;
	case FS_JOB_SPEC:
		if (wr)
			return check_writer(fs, ctx->uid, f->d.job, true);
		break;
	case FS_JOB_CTL:
		if (wr)
			return check_writer(fs, ctx->uid, f->d.job, false);
		break;
	default:
		if (wr)
			return -EACCES;
		break;
	}
	return jobs_content(fs, &f->d, &f->data);
}

static int ctl_write(struct sfs_fs *fs, struct fs_file *f, const char *buf, size_t size)
{
	char *msg = NULL;
	int r = sfs_solver_job_ctl(fs->solver, f->d.job, f->uid, buf, size, &msg);

	if (r < 0)
		sfs_log(SFS_LOG_INFO, "job %" PRIu64 ": ctl: %s", f->d.job,
			msg ? msg : strerror(-r));
	free(msg);
	return r;
}

/* Appends written spec bytes (spec_lock held). */
static int spec_append(struct sfs_fs *fs, struct fs_file *f, const char *buf, size_t size)
{
	if (f->submitting || f->submitted)
		return -EBUSY;
	/* The read side of a jobs/new handle ("N\n") is not part of the spec. */
	if (f->d.kind == FS_JOBS_NEW && !f->wrote_spec) {
		strbuf_reset(&f->data);
		f->wrote_spec = true;
	}
	/* Past the limit the spec is refused whole: what was written is dropped and
	 * the flush reports why, not a parse error of the bytes that fitted. */
	if (f->too_large || f->data.len + size > fs->opts->spec_max) {
		f->too_large = true;
		f->wrote_spec = false;
		strbuf_release(&f->data);
		return -EFBIG;
	}
	strbuf_add(&f->data, buf, size);
	f->wrote_spec = true;
	return f->data.oom ? -ENOMEM : (int)size;
}

int fs_jobs_write(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, const char *buf,
		  size_t size)
{
	switch (f->d.kind) {
	case FS_JOB_CTL: {
		int r = ctl_write(fs, f, buf, size);
		return r < 0 ? r : (int)size;
	}
	case FS_JOBS_NEW:
	case FS_JOB_SPEC:
		if (!f->writable)
			return -EBADF;
		pthread_mutex_lock(&f->spec_lock);
		int r = spec_append(fs, f, buf, size);
		pthread_mutex_unlock(&f->spec_lock);
		return r;
	default:
		return -EBADF;
	}
}

/* A flush waiting for the parser's answer. */
struct flush_wait {
	fuse_req_t req;
	struct fs_file *f; /* held until answered */
	uint64_t job;
};

/* The errno a writer's close sees for what the submit returned.  The close
 * cannot say which job or why: the log line and jobs/N/error (with
 * jobs/last-rejected pointing at it) do. */
static int submit_errno(uint64_t job, int r, const char *msg)
{
	if (r == 0) {
		sfs_log(SFS_LOG_DEBUG, "job %" PRIu64 " submitted", job);
		return 0;
	}
	sfs_log(SFS_LOG_INFO, "job %" PRIu64 ": spec rejected: %s", job, msg ? msg : strerror(-r));
	if (r == -ESHUTDOWN)
		return -EIO;
	if (r != -EBUSY && r != -EPERM && r != -EFBIG && r != -ENOENT && r != -ENOMEM &&
	    r != -EAGAIN)
		return -EINVAL;
	return r;
}

/* On the solver's parser thread. */
static void flush_answer(void *arg, int r, const char *msg)
{
	struct flush_wait *w = arg;
	pthread_mutex_lock(&w->f->spec_lock);
	w->f->submitted = r == 0;
	w->f->submitting = false;
	pthread_mutex_unlock(&w->f->spec_lock);
	fs_flush_reply(w->req, w->f, -submit_errno(w->job, r, msg));
	free(w);
}

/* The flush after a write that passed spec_max: the job's error says so. */
static int refuse_too_large(struct sfs_fs *fs, struct fs_file *f, uint64_t job)
{
	char *msg = NULL;
	int r;

	if (asprintf(&msg, "the spec is larger than %" PRIu64 " bytes (the spec_max mount option)",
		     fs->opts->spec_max) < 0)
		return -ENOMEM;
	r = sfs_solver_job_refuse(fs->solver, job, f->uid, msg);
	sfs_log(SFS_LOG_INFO, "job %" PRIu64 ": spec rejected: %s", job, msg);
	free(msg);
	return r < 0 ? r : -EFBIG;
}

int fs_jobs_flush(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f)
{
	uint64_t job = f->d.kind == FS_JOBS_NEW ? f->new_job : f->d.job;
	struct flush_wait *w = NULL;
	char *text = NULL;
	size_t len = 0;
	int r = 0;

	if ((f->d.kind != FS_JOBS_NEW && f->d.kind != FS_JOB_SPEC) || !f->writable)
		return 0;
	pthread_mutex_lock(&f->spec_lock);
	bool too_large = f->too_large;
	f->too_large = false;
	/* nothing new, or a flush through another fd has the spec: that one answers */
	bool take = f->wrote_spec && !f->submitting && !f->submitted && f->data.len;
	if (take && (f->data.oom || !(w = malloc(sizeof(*w))))) {
		take = false;
		r = -ENOMEM;
	}
	if (take) {
		f->submitting = true;
		f->wrote_spec = false;
		text = strbuf_detach(&f->data, &len);
	}
	pthread_mutex_unlock(&f->spec_lock);
	if (too_large)
		return refuse_too_large(fs, f, job);
	if (!take)
		return r;
	*w = (struct flush_wait){req, f, job};
	/* parsing a large spec is slow work: not on this FUSE thread */
	r = sfs_solver_job_submit_async(fs->solver, job, f->uid, text, len, flush_answer, w);
	if (r == 0)
		return FS_REPLY_LATER;
	pthread_mutex_lock(&f->spec_lock);
	f->submitting = false;
	pthread_mutex_unlock(&f->spec_lock);
	free(text);
	free(w);
	return submit_errno(job, r, NULL);
}

int fs_jobs_truncate(struct sfs_fs *fs, fuse_req_t req, const struct fs_desc *d)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	switch (d->kind) {
	case FS_JOBS_NEW:
		return 0;
	case FS_JOB_SPEC:
		return check_writer(fs, ctx->uid, d->job, true);
	case FS_JOB_CTL:
		return check_writer(fs, ctx->uid, d->job, false);
	default:
		return -EPERM;
	}
}
