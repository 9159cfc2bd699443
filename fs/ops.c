/*
 * ops.c — the low-level FUSE operations: turn inode numbers into descriptors
 * (node.c), hand the work to the module that the kind's row names (kinds.c;
 * the blocking reads to stream.c) and answer with exactly one fuse_reply_*.
 *
 * Timeouts follow the kind's flags: FS_KIND_IMMUTABLE nodes (results/,
 * jobs/N/export/, vertex op, README) get a day and keep_cache, the fixed
 * directories a second; everything else gets zero and direct_io so every stat
 * and read reaches us and sees the solver as it is now.
 *
 * Locking: the lock of struct fs_files (fs->files) guards every handle's
 * refs/released and the list of open handles (freed at exit when the kernel
 * never released them); node.c and stream.c have their own locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"

#define IMMUTABLE_TIMEOUT 86400.0

/* Every entry we answer (LOOKUP and READDIRPLUS alike) carries this generation:
 * the kernel takes an inode it knows under another generation for a reused
 * node id and marks it bad, failing every I/O of its open files with EIO. */
#define NODE_GENERATION 1

static struct sfs_fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The fixed directories (FS_KIND_FIXED_DIR): their names never change and
 * their attributes only in size and times, which notify.c invalidates; a short
 * timeout saves the kernel asking for them again on every path walk
 * (`ls -l results/<hex>` stats each entry by its full path). */
#define FIXED_DIR_TIMEOUT 1.0

static double timeout_of(enum fs_kind k)
{
	if (fs_kind_is(k, FS_KIND_IMMUTABLE))
		return IMMUTABLE_TIMEOUT;
	if (fs_kind_is(k, FS_KIND_FIXED_DIR))
		return FIXED_DIR_TIMEOUT;
	return 0.0;
}

/* results/, vertices/ and cache/ are read-only trees (EROFS); the rest refuses
 * with EPERM. */
static int refuse_change(const struct fs_desc *d)
{
	const struct fs_module *m = fs_kinds[d->kind].module;

	if (m == &fs_results_module || m == &fs_cache_module || m == &fs_exports_module ||
	    (m == &fs_vertices_module && d->job == 0))
		return EROFS;
	return EPERM;
}

static int desc_stat(struct sfs_fs *fs, const struct fs_desc *d, fuse_ino_t ino, struct stat *st)
{
	int r = fs_kinds[d->kind].module->getattr(fs, d, st);

	st->st_ino = ino;
	return r;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sfs_fs *fs = req_fs(req);
	struct fuse_entry_param e = {0};
	struct fs_desc pd = {0}, cd = {0};
	int r;

	if (strlen(name) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	r = fs_node_get(fs, parent, &pd);
	if (r == 0)
		r = fs_kinds[pd.kind].module->lookup(fs, &pd, name, &cd);
	if (r == 0)
		r = desc_stat(fs, &cd, 0, &e.attr);
	if (r == 0)
		r = fs_node_ref(fs, &cd, &e.ino);
	if (r == 0) {
		e.attr.st_ino = e.ino;
		e.generation = NODE_GENERATION;
		e.attr_timeout = e.entry_timeout = timeout_of(cd.kind);
		fuse_reply_entry(req, &e);
	} else {
		fuse_reply_err(req, -r);
	}
	fs_desc_release(&pd);
	fs_desc_release(&cd);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct sfs_fs *fs = req_fs(req);

	fs_node_forget(fs, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct sfs_fs *fs = req_fs(req);

	for (size_t i = 0; i < count; i++)
		fs_node_forget(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static int setattr_check(fuse_req_t req, const struct fs_desc *d, struct stat *attr, int to_set)
{
	struct sfs_fs *fs = req_fs(req);
	const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			  FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;

	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		return -refuse_change(d);
	if (!fs_kind_is(d->kind, FS_KIND_WRITABLE))
		return (to_set & (FUSE_SET_ATTR_SIZE | times)) ? -refuse_change(d) : 0;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size != 0)
			return -EINVAL; /* only `> file` truncation makes sense */
		if (d->kind == FS_CACHE_IMPORT)
			return fs_cache_import_truncate(fs, req);
		if (d->kind == FS_CACHE_CTL)
			return fs_cachectl_truncate(fs, req);
		return fs_jobs_truncate(fs, req, d);
	}
	return 0; /* touch: accepted, nothing to record */
}

/* Answers with ino's attributes once the change to_set asks for is accepted
 * (to_set 0, attr NULL: a getattr). */
static void reply_attr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_desc d = {0};
	struct stat st;
	int r = fs_node_get(fs, ino, &d);

	if (r == 0 && to_set)
		r = setattr_check(req, &d, attr, to_set);
	if (r == 0)
		r = desc_stat(fs, &d, ino, &st);
	if (r == 0)
		fuse_reply_attr(req, &st, timeout_of(d.kind));
	else
		fuse_reply_err(req, -r);
	fs_desc_release(&d);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	reply_attr(req, ino, NULL, 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	reply_attr(req, ino, attr, to_set);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_desc d = {0};
	const struct fs_module *m;
	char *target = NULL;
	int r = fs_node_get(fs, ino, &d);

	if (r == 0) {
		m = fs_kinds[d.kind].module;
		r = m->readlink ? m->readlink(fs, &d, &target) : -EINVAL;
	}
	if (r == 0)
		fuse_reply_readlink(req, target);
	else
		fuse_reply_err(req, -r);
	free(target);
	fs_desc_release(&d);
}

/* ---- handles ----
 * Open files and dirs are struct fs_file.  A request holds its handle (refs)
 * while it works: a reader killed by a fatal signal does not wait for our
 * answer, so RELEASE can arrive while its READ is still being served.  The
 * handle is freed when released and no request holds it.
 */

struct fs_files {
	pthread_mutex_t lock;
	struct fs_file *open; /* every handle not yet freed */
};

int fs_files_init(struct sfs_fs *fs)
{
	struct fs_files *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	fs->files = t;
	return 0;
}

static void file_release(struct sfs_fs *fs, struct fs_file *f);

static struct fs_file *file_new(struct sfs_fs *fs, fuse_ino_t ino, int *ret_err)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (!f) {
		*ret_err = -ENOMEM;
		return NULL;
	}
	f->fd = -1;
	pthread_mutex_init(&f->spec_lock, NULL);
	*ret_err = fs_node_get(fs, ino, &f->d);
	return f;
}

static struct fs_file *file_free(struct sfs_fs *fs, struct fs_file *f)
{
	if (!f)
		return NULL;
	fs_stream_file_release(fs, f);
	if (f->fd >= 0)
		close(f->fd);
	strbuf_release(&f->data);
	fs_dirlist_release(&f->list);
	fs_desc_release(&f->d);
	pthread_mutex_destroy(&f->spec_lock);
	free(f);
	return NULL;
}

/* Publishes f as fi->fh and answers the open (an interrupted open frees it). */
static void file_publish(fuse_req_t req, struct fs_file *f, struct fuse_file_info *fi, bool dir)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_files *t = fs->files;

	pthread_mutex_lock(&t->lock);
	f->open_next = t->open;
	if (t->open)
		t->open->open_pprev = &f->open_next;
	t->open = f;
	f->open_pprev = &t->open;
	pthread_mutex_unlock(&t->lock);
	fi->fh = (uintptr_t)f;
	if (fs_kind_is(f->d.kind, FS_KIND_IMMUTABLE)) {
		fi->keep_cache = 1;
		fi->cache_readdir = dir;
	} else if (!dir) {
		fi->direct_io = 1;
	}
	if (fuse_reply_open(req, fi) == -ENOENT) {
		f->refs = 1; /* the open was interrupted: the kernel will not release it */
		file_release(fs, f);
	}
}

static struct fs_file *file_hold(struct sfs_fs *fs, struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;

	pthread_mutex_lock(&fs->files->lock);
	f->refs++;
	pthread_mutex_unlock(&fs->files->lock);
	return f;
}

/* Drops a hold; with release, also the kernel's reference. */
static void file_drop(struct sfs_fs *fs, struct fs_file *f, bool release)
{
	struct fs_files *t = fs->files;
	bool last;

	pthread_mutex_lock(&t->lock);
	f->refs--;
	if (release)
		f->released = true;
	last = f->released && f->refs == 0;
	if (last) {
		*f->open_pprev = f->open_next;
		if (f->open_next)
			f->open_next->open_pprev = f->open_pprev;
	}
	pthread_mutex_unlock(&t->lock);
	if (last)
		file_free(fs, f);
}

static void file_release(struct sfs_fs *fs, struct fs_file *f)
{
	file_drop(fs, f, true);
}

void fs_files_release(struct sfs_fs *fs)
{
	struct fs_files *t = fs->files;
	struct fs_file *f;

	if (!t)
		return;
	while ((f = t->open)) {
		t->open = f->open_next;
		file_free(fs, f);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
	fs->files = NULL;
}

/* ---- directories: the listing is made at opendir and served in slices ---- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = req_fs(req);
	struct stat st;
	int r;
	struct fs_file *f = file_new(fs, ino, &r);

	if (r == 0)
		r = desc_stat(fs, &f->d, ino, &st);
	if (r == 0 && !S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	if (r == 0)
		r = fs_kinds[f->d.kind].module->readdir(fs, &f->d, &f->list);
	f->ino = ino;
	if (r < 0) {
		file_free(fs, f);
		fuse_reply_err(req, -r);
		return;
	}
	file_publish(req, f, fi, true);
}

/* Serves bytes of a handle's buffer (dir listings and snapshot files). */
static void reply_slice(fuse_req_t req, const struct strbuf *b, size_t size, off_t off)
{
	size_t n;

	if (off < 0 || (size_t)off >= b->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	n = b->len - (size_t)off;
	fuse_reply_buf(req, b->buf + off, n < size ? n : size);
}

/*
 * Listings are served from the handle's list, with offsets that count entries
 * (0 ".", 1 "..", then the list), so READDIR and READDIRPLUS can alternate on
 * one handle.  READDIRPLUS answers each entry's lookup and attributes at once:
 * `ls -l` of a 10,000-file result dir then needs no LOOKUP per file.
 */
static int dir_entry(struct sfs_fs *fs, struct fs_file *f, size_t idx, bool plus,
		     struct fuse_entry_param *e, const char **ret_name)
{
	memset(e, 0, sizeof(*e));
	if (idx < 2) {
		*ret_name = idx ? ".." : ".";
		e->attr.st_mode = S_IFDIR;
		e->attr.st_ino = idx ? FUSE_UNKNOWN_INO : f->ino;
		return 0;
	}
	const struct fs_dirent *de = &f->list.e[idx - 2];
	*ret_name = de->name;
	e->attr.st_mode = de->type;
	if (!plus) {
		e->attr.st_ino = fs_node_peek(fs, &de->d);
		return 0;
	}
	int r = fs_node_ref(fs, &de->d, &e->ino);
	if (r == 0 && (r = desc_stat(fs, &de->d, e->ino, &e->attr)) < 0)
		fs_node_forget(fs, e->ino, 1);
	e->generation = NODE_GENERATION;
	e->attr_timeout = e->entry_timeout = timeout_of(de->d.kind);
	return r;
}

static void dir_reply(fuse_req_t req, struct fuse_file_info *fi, size_t size, off_t off, bool plus)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_file *f = file_hold(fs, fi);
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	for (size_t idx = off < 0 ? 0 : (size_t)off; buf && idx < f->list.n + 2; idx++) {
		struct fuse_entry_param e;
		const char *name;
		if (dir_entry(fs, f, idx, plus, &e, &name) < 0)
			continue; /* vanished since opendir */
		size_t n = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e,
							 (off_t)idx + 1)
				: fuse_add_direntry(req, buf + used, size - used, name, &e.attr,
						    (off_t)idx + 1);
		if (n > size - used) {
			if (plus && idx >= 2)
				fs_node_forget(fs, e.ino, 1); /* not sent: no lookup to count */
			break;
		}
		used += n;
	}
	if (buf)
		fuse_reply_buf(req, buf, used);
	else
		fuse_reply_err(req, ENOMEM);
	free(buf);
	file_drop(fs, f, false);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	dir_reply(req, fi, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	dir_reply(req, fi, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = req_fs(req);

	file_release(fs, file_hold(fs, fi));
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

static int file_open(fuse_req_t req, struct fs_file *f, int flags)
{
	struct sfs_fs *fs = req_fs(req);
	const struct fs_module *m = fs_kinds[f->d.kind].module;
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	struct stat st;
	int r = desc_stat(fs, &f->d, 0, &st);

	if (r < 0)
		return r;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (wr && !fs_kind_is(f->d.kind, FS_KIND_WRITABLE))
		return m == &fs_jobs_module ? -EACCES : -refuse_change(&f->d);
	f->nonblock = (flags & O_NONBLOCK) != 0;
	if (m == &fs_results_module)
		return fs_results_open(fs, f);
	if (m == &fs_exports_module)
		return fs_exports_open(fs, f);
	if (f->d.kind == FS_CACHE_IMPORT)
		return fs_cache_import_open(fs, req, f, flags);
	if (f->d.kind == FS_CACHE_CTL)
		return fs_cachectl_open(fs, req, f, flags);
	if (f->d.kind == FS_VERTEX_LOG)
		return fs_vertex_log_open(fs, f);
	if (fs_kind_is(f->d.kind, FS_KIND_STREAM))
		return 0;
	if (m == &fs_jobs_module)
		return fs_jobs_open(fs, req, f, flags);
	return m->content(fs, &f->d, &f->data);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = req_fs(req);
	int r;
	struct fs_file *f = file_new(fs, ino, &r);

	if (r == 0)
		r = file_open(req, f, fi->flags);
	if (r < 0) {
		file_free(fs, f);
		fuse_reply_err(req, -r);
		return;
	}
	file_publish(req, f, fi, false);
}

static void reply_fd(fuse_req_t req, int fd, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_file *f = file_hold(fs, fi);

	if (fs_kind_is(f->d.kind, FS_KIND_STREAM))
		fs_stream_read(fs, req, f, size, off);
	else if (f->fd >= 0)
		reply_fd(req, f->fd, size, off);
	else if (!f->writable)
		reply_slice(req, &f->data, size, off);
	else {
		/* a jobs/new or spec handle: a write on another thread may grow
		 * the buffer (spec_append) while this reads it */
		pthread_mutex_lock(&f->spec_lock);
		reply_slice(req, &f->data, size, off);
		pthread_mutex_unlock(&f->spec_lock);
	}
	file_drop(fs, f, false);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_file *f = file_hold(fs, fi);
	int r;

	if (!fs_kind_is(f->d.kind, FS_KIND_WRITABLE))
		r = -refuse_change(&f->d);
	else if (f->d.kind == FS_CACHE_IMPORT)
		r = fs_cache_import_write(fs, f, buf, size);
	else if (f->d.kind == FS_CACHE_CTL)
		r = fs_cachectl_write(fs, f, buf, size);
	else
		r = fs_jobs_write(fs, req, f, buf, size);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, (size_t)r);
	file_drop(fs, f, false);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_file *f = file_hold(fs, fi);
	int r = fs_jobs_flush(fs, req, f);

	if (r == FS_REPLY_LATER)
		return; /* answered from the parser thread (fs_flush_reply) */
	fuse_reply_err(req, -r);
	file_drop(fs, f, false);
}

void fs_flush_reply(fuse_req_t req, struct fs_file *f, int err)
{
	struct sfs_fs *fs = req_fs(req); /* req is gone once answered */

	fuse_reply_err(req, err);
	file_drop(fs, f, false);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = req_fs(req);

	file_release(fs, file_hold(fs, fi));
	fuse_reply_err(req, 0);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_file *f = file_hold(fs, fi);

	if (fs_kind_is(f->d.kind, FS_KIND_STREAM)) {
		fs_stream_poll(fs, req, f, ph);
	} else {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, POLLIN | POLLRDNORM |
					 (fs_kind_is(f->d.kind, FS_KIND_WRITABLE) ? POLLOUT : 0));
	}
	file_drop(fs, f, false);
}

/* ---- what the tree refuses ---- */

static void refuse_in(fuse_req_t req, fuse_ino_t parent)
{
	struct sfs_fs *fs = req_fs(req);
	struct fs_desc d = {0};
	int r = fs_node_get(fs, parent, &d);

	fuse_reply_err(req, r < 0 ? -r : refuse_change(&d));
	fs_desc_release(&d);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	refuse_in(req, parent);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	refuse_in(req, parent);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	refuse_in(req, parent);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	refuse_in(req, parent);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	refuse_in(req, parent);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	refuse_in(req, newparent);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	refuse_in(req, parent);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	fuse_reply_err(req, ENOTSUP);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	fuse_reply_err(req, ENOTSUP);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fuse_reply_err(req, ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, ENOTSUP);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs_fs *fs = req_fs(req);
	struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096, .f_namemax = NAME_MAX};

	sv.f_files = fs_nodes_count(fs);
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops fs_ops = {
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .create = op_create,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .poll = op_poll,
};
