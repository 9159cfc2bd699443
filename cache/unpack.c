/*
 * unpack.c — applying layers into a tree (unpack.h).
 *
 * Paths are nodes linked as a tree (parent, first child, siblings) so a
 * whiteout removes a subtree in time proportional to its size instead of
 * scanning every path; a map finds a node by path.  Each node remembers the
 * layer that last put or touched it, which is what an opaque whiteout needs:
 * it removes what layers below its own put in its dir.
 *
 * No locks: an unpack is one thread's.
 */
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "fdio.h"
#include "strbuf.h"
#include "strmap.h"
#include "tree.h"

/* What a tar entry says about a path. */
struct node_data {
	char type; /* 'd', 'f', 'l' */
	unsigned mode;
	uint64_t size;
	char hex[SFS_HEX_SIZE];
};

/*
 * A path of the tree being unpacked.  Nodes are linked as a tree (parent,
 * first child, siblings) so a whiteout removes a subtree in time proportional
 * to its size instead of scanning every path; the map finds a node by path.
 */
struct node {
	struct node_data d;
	int layer; /* the chain position that put it there; -1 for the implicit root */
	struct node *parent, *child, *prev, *next;
	char path[]; /* the map's key (borrowed) */
};

struct unpack {
	struct unpack_opts o;
	struct cas *cas;
	struct cas_batch *batch;
	struct strmap nodes; /* clean path -> struct node, keys borrowed from the nodes */
	struct node *root;   /* "." */
	int tmpfd;	     /* scratch file for file contents */
	int layer;	     /* chain position being applied */
	const char *blob;    /* its digest, for messages */
};

static bool unpack_cancelled(const struct unpack *u)
{
	return u->o.cancelled && u->o.cancelled(u->o.arg);
}

static int cancelled_err(char **ret_msg)
{
	return sfs_errf(ret_msg, ECANCELED, "context canceled");
}

static void unpack_warn(struct unpack *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void unpack_warn(struct unpack *u, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (!u->o.warn)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg)
		u->o.warn(u->o.arg, msg);
	free(msg);
}

/* "./a//b/" -> "a/b"; "" and "." -> "."; absolute names and ".." are refused. */
static int clean_path(const char *name, char **ret)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = name;

	if (name[0] == '/')
		return -EINVAL;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			strbuf_release(&sb);
			return -EINVAL;
		}
		if (n && !(n == 1 && p[0] == '.')) {
			if (sb.len)
				strbuf_addch(&sb, '/');
			strbuf_add(&sb, p, n);
		}
		p += n + (p[n] == '/');
	}
	if (!sb.len)
		strbuf_addch(&sb, '.');
	if (sb.oom)
		return -ENOMEM;
	*ret = strbuf_detach(&sb, NULL);
	return 0;
}

static struct node *node_get(struct unpack *u, const char *path)
{
	return strmap_get(&u->nodes, path);
}

/* A new node at path under parent (NULL only for the root); -EFBIG past
 * entries_max nodes. */
static int node_add(struct unpack *u, const char *path, struct node *parent,
		    const struct node_data *d, struct node **ret)
{
	size_t len = strlen(path);
	struct node *n;
	int r;

	if (u->nodes.len >= u->o.entries_max)
		return -EFBIG; /* apply_entry says what */
	n = calloc(1, sizeof(*n) + len + 1);
	if (!n)
		return -ENOMEM;
	n->d = *d;
	n->layer = u->layer;
	memcpy(n->path, path, len + 1);
	r = strmap_put(&u->nodes, n->path, n, NULL);
	if (r < 0) {
		free(n);
		return r;
	}
	n->parent = parent;
	if (parent) {
		n->next = parent->child;
		if (parent->child)
			parent->child->prev = n;
		parent->child = n;
	}
	*ret = n;
	return 0;
}

/* Unlinks and frees n, which has no children. */
static void node_free(struct unpack *u, struct node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else if (n->parent)
		n->parent->child = n->next;
	if (n->next)
		n->next->prev = n->prev;
	strmap_del(&u->nodes, n->path);
	free(n);
}

/* Frees n and everything under it, deepest first, without recursion. */
static void remove_subtree(struct unpack *u, struct node *top)
{
	struct node *n = top;

	for (;;) {
		while (n->child)
			n = n->child;
		struct node *up = n->parent;
		bool last = n == top;
		node_free(u, n);
		if (last)
			return;
		n = up;
	}
}

/* The node after n in a walk of top's subtree that skips n's children. */
static struct node *walk_skip(struct node *top, struct node *n)
{
	for (; n != top; n = n->parent)
		if (n->next)
			return n->next;
	return NULL;
}

/* Removes the descendants of dir put by layers below `below` (all of them
 * when below is INT32_MAX).  A node this layer touched has only such
 * ancestors (make_parents marks them), so an older node goes with its
 * whole subtree. */
static void remove_children(struct unpack *u, struct node *dir, int below)
{
	struct node *n = dir->child;

	while (n) {
		struct node *next = n->child && n->layer >= below ? n->child : walk_skip(dir, n);
		if (n->layer < below)
			remove_subtree(u, n);
		n = next;
	}
}

/* Sets path (whose parent dir is parent) to d, for this layer. */
static int put_node(struct unpack *u, const char *path, struct node *parent,
		    const struct node_data *d)
{
	struct node *n = node_get(u, path);

	if (!n)
		return node_add(u, path, parent, d, &n);
	/* A dir over a dir keeps its children; anything else replaces the tree. */
	if (n->d.type == 'd' && d->type != 'd')
		remove_children(u, n, INT32_MAX);
	n->d = *d;
	n->layer = u->layer;
	return 0;
}

/* Marks n and its ancestors as touched by this layer (an ancestor already
 * marked has marked ancestors). */
static void mark_layer(struct unpack *u, struct node *n)
{
	for (; n && n != u->root && n->layer != u->layer; n = n->parent)
		n->layer = u->layer;
}

/*
 * The parent dir of path (the root for a top-level name), creating missing
 * ones (0755, as containerd's mkparent); a parent that exists as something
 * else is -ENOTDIR.  Existing parents count as put by this layer, so an
 * opaque whiteout of this layer does not take them from under the entry.
 * path is modified while this runs and restored.
 */
static int make_parents(struct unpack *u, char *path, struct node **ret)
{
	const struct node_data dir = {.type = 'd', .mode = 0755};
	char *slash = strrchr(path, '/');
	struct node *p = u->root;
	int r = 0;

	if (!slash) {
		*ret = strcmp(path, ".") ? u->root : NULL;
		return 0;
	}
	*slash = '\0';
	p = node_get(u, path); /* the usual case: the parent is there */
	*slash = '/';
	if (p && p->d.type == 'd') {
		mark_layer(u, p);
		*ret = p;
		return 0;
	}
	p = u->root;
	for (slash = strchr(path, '/'); r == 0 && slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		struct node *n = node_get(u, path);
		if (!n)
			r = node_add(u, path, p, &dir, &n);
		else if (n->d.type != 'd')
			r = -ENOTDIR;
		else
			mark_layer(u, n);
		*slash = '/';
		p = n;
	}
	*ret = p;
	return r;
}

static int unpack_msg(struct unpack *u, char **ret_msg, int r, const char *name, const char *what)
{
	return sfs_errf(ret_msg, r, "layer %s: \"%s\": %s", u->blob, name, what);
}

/* ".wh.<name>" deletes <name>; ".wh..wh..opq" empties its dir of what lower
 * layers put there.  dir is the whiteout's parent. */
static int whiteout(struct unpack *u, struct node *dir, const char *path, char **ret_msg)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	struct node *target;
	char *tpath = NULL;

	if (strcmp(base, ".wh..wh..opq") == 0) {
		remove_children(u, dir, u->layer);
		return 0;
	}
	if (!base[4] || strcmp(base + 4, ".") == 0 || strcmp(base + 4, "..") == 0)
		return unpack_msg(u, ret_msg, EINVAL, path, "invalid whiteout");
	if (dir == u->root)
		target = node_get(u, base + 4);
	else if (asprintf(&tpath, "%s/%s", dir->path, base + 4) < 0)
		return -ENOMEM;
	else
		target = node_get(u, tpath);
	free(tpath);
	if (target)
		remove_subtree(u, target);
	return 0;
}

static int too_big(struct unpack *u, char **ret_msg)
{
	return sfs_errf(ret_msg, EFBIG,
			"layer %s: more than %llu bytes uncompressed (mount option import_layer_max)",
			u->blob, (unsigned long long)u->o.layer_max);
}

/* Bytes of the uncompressed tar read so far (the format's input). */
static uint64_t tar_pos(struct archive *a)
{
	la_int64_t n = archive_filter_bytes(a, 0);
	return n > 0 ? (uint64_t)n : 0;
}

/* Copies the entry's data into the scratch file, block by block: the layer's
 * size limit and cancellation are checked as it goes. */
static int copy_data(struct unpack *u, struct archive *a, char **ret_msg)
{
	const void *buf;
	size_t len;
	la_int64_t off, want = 0;
	int ar, r = 0;

	for (unsigned i = 1; r == 0; i++) {
		ar = archive_read_data_block(a, &buf, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK)
			return sfs_errf(ret_msg, EIO, "layer %s: %s", u->blob,
					archive_error_string(a));
		if (off != want) /* a hole: only sparse entries have them */
			return sfs_errf(ret_msg, EINVAL, "layer %s: a file with holes", u->blob);
		if (tar_pos(a) > u->o.layer_max)
			return too_big(u, ret_msg);
		if (i % 256 == 0 && unpack_cancelled(u))
			return cancelled_err(ret_msg);
		r = sfs_write_all(u->tmpfd, buf, len);
		want += (la_int64_t)len;
	}
	return r;
}

static int read_data(struct unpack *u, struct archive *a, struct node_data *n, char **ret_msg)
{
	int r;

	if (ftruncate(u->tmpfd, 0) < 0 || lseek(u->tmpfd, 0, SEEK_SET) < 0)
		return -errno;
	r = copy_data(u, a, ret_msg);
	if (r < 0)
		return r;
	if (lseek(u->tmpfd, 0, SEEK_SET) < 0)
		return -errno;
	return cas_batch_put_fd(u->batch, u->tmpfd, n->hex, &n->size);
}

/* Fills n from a tar entry; 1 when the entry is of a type trees do not keep. */
static int entry_node(struct unpack *u, struct archive *a, struct archive_entry *e,
		      const char *name, struct node_data *n, char **ret_msg)
{
	const char *hl = archive_entry_hardlink(e), *target;
	char *hpath = NULL;
	int r;

	memset(n, 0, sizeof(*n));
	n->mode = archive_entry_perm(e) & 07777;
	if (hl) {
		/* A hardlink becomes a copy of what its target is now. */
		const struct node *t = NULL;
		if (clean_path(hl, &hpath) == 0)
			t = node_get(u, hpath);
		free(hpath);
		if (!t || t->d.type == 'd')
			return unpack_msg(u, ret_msg, EINVAL, name, "hardlink to a missing file");
		*n = t->d;
		return 0;
	}
	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		n->type = 'd';
		return 0;
	case AE_IFREG:
		n->type = 'f';
		return read_data(u, a, n, ret_msg);
	case AE_IFLNK:
		target = archive_entry_symlink(e);
		if (!target || !target[0])
			return unpack_msg(u, ret_msg, EINVAL, name, "symlink without a target");
		n->type = 'l';
		n->size = strlen(target);
		r = cas_batch_put_buf(u->batch, target, n->size, n->hex);
		return r;
	default:
		unpack_warn(u, "layer %s: \"%s\": not a dir, file or symlink; dropped", u->blob,
			name);
		return 1;
	}
}

static int apply_entry(struct unpack *u, struct archive *a, struct archive_entry *e, char **ret_msg)
{
	const char *name = archive_entry_pathname(e);
	struct node *parent = NULL;
	struct node_data n;
	char *path = NULL;
	const char *base;
	int r;

	if (!name)
		return sfs_errf(ret_msg, EINVAL, "layer %s: an entry has no readable name",
				u->blob);
	r = clean_path(name, &path);
	if (r < 0)
		return r == -EINVAL ? unpack_msg(u, ret_msg, r, name, "absolute or \"..\" name")
				    : r;
	r = make_parents(u, path, &parent);
	if (r == -ENOTDIR)
		r = unpack_msg(u, ret_msg, EINVAL, name, "path under a non-directory");
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (r == 0 && strncmp(base, ".wh.", 4) == 0) {
		r = whiteout(u, parent, path, ret_msg);
		goto out;
	}
	if (r == 0)
		r = entry_node(u, a, e, name, &n, ret_msg);
	if (r != 0)
		goto out;
	if (strcmp(path, ".") == 0 && n.type != 'd') {
		r = unpack_msg(u, ret_msg, EINVAL, name, "the root is not a directory");
		goto out;
	}
	r = put_node(u, path, parent, &n);
out:
	if (r == -EFBIG && ret_msg && !*ret_msg)
		r = sfs_errf(ret_msg, EFBIG,
			     "layer %s: the tree would have more than %llu entries (mount option "
			     "import_entries_max)",
			     u->blob, (unsigned long long)u->o.entries_max);
	free(path);
	return r < 0 ? r : 0;
}

/*
 * What one more entry (the n-th of its layer) may cost: at most entries_max
 * entries and layer_max uncompressed bytes, its declared size included before
 * anything reads or skips it; no sparse entries (their holes would be lost).
 */
static int check_entry(struct unpack *u, struct archive *a, struct archive_entry *e, uint64_t n,
		       char **ret_msg)
{
	const struct unpack_opts *l = &u->o;
	const char *name = archive_entry_pathname(e);
	la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;

	if (n > l->entries_max)
		return sfs_errf(ret_msg, EFBIG,
				"layer %s: more than %llu entries (mount option import_entries_max)",
				u->blob, (unsigned long long)l->entries_max);
	if (size < 0 || tar_pos(a) + (uint64_t)size > l->layer_max)
		return too_big(u, ret_msg);
	if (archive_entry_sparse_count(e) > 0)
		return unpack_msg(u, ret_msg, EINVAL, name ? name : "?",
				  "a sparse file (not supported)");
	if (n % 16 == 0 && unpack_cancelled(u))
		return cancelled_err(ret_msg);
	return 0;
}

int unpack_apply(struct unpack *u, int fd, const char *name, char **ret_msg)
{
	struct archive *a;
	struct archive_entry *e;
	int r = 0, ar = ARCHIVE_OK;

	u->layer++;
	u->blob = name;
	if (unpack_cancelled(u))
		return cancelled_err(ret_msg);
	a = archive_read_new();
	if (!a)
		return -ENOMEM;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK)
		r = sfs_errf(ret_msg, EINVAL, "layer %s: %s", name, archive_error_string(a));
	for (uint64_t n = 1; r == 0 && (ar = archive_read_next_header(a, &e)) == ARCHIVE_OK; n++) {
		r = check_entry(u, a, e, n, ret_msg);
		if (r == 0)
			r = apply_entry(u, a, e, ret_msg);
	}
	if (r == 0 && ar != ARCHIVE_EOF)
		r = sfs_errf(ret_msg, EINVAL, "layer %s: %s", name, archive_error_string(a));
	archive_read_free(a);
	return r;
}

static int open_tmp(struct cas *cas, int *ret_fd)
{
	int fd = open(cas_tmp_dir(cas), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/unpack-XXXXXX", cas_tmp_dir(cas));
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return -errno;
		unlink(path);
	}
	*ret_fd = fd;
	return 0;
}

static int store_tree(struct unpack *u, char ret_id[SFS_DIGEST_SIZE])
{
	struct tree_entry *v = calloc(u->nodes.len ? u->nodes.len : 1, sizeof(*v));
	struct tree *t = NULL;
	size_t it = 0, n = 0;
	const char *k;
	void *val;
	int r;

	if (!v)
		return -ENOMEM;
	while (strmap_next(&u->nodes, &it, &k, &val)) {
		const struct node_data *nd = &((const struct node *)val)->d;
		v[n] = (struct tree_entry){.type = nd->type,
					   .mode = nd->mode,
					   .size = nd->type == 'd' ? 0 : nd->size,
					   .path = (char *)k};
		sfs_copy_str(v[n].hex, SFS_HEX_SIZE, nd->type == 'd' ? "" : nd->hex);
		n++;
	}
	r = tree_from_entries(u->cas, v, n, &t);
	if (r == 0)
		sfs_copy_str(ret_id, SFS_DIGEST_SIZE, t->id);
	tree_free(t);
	free(v);
	return r;
}

struct unpack *unpack_free(struct unpack *u)
{
	size_t it = 0;
	const char *k;
	void *val;

	if (!u)
		return NULL;
	while (strmap_next(&u->nodes, &it, &k, &val))
		free(val);
	strmap_release(&u->nodes);
	cas_batch_free(u->batch);
	if (u->tmpfd >= 0)
		close(u->tmpfd);
	free(u);
	return NULL;
}

int unpack_new(struct cas *cas, const struct unpack_opts *o, struct unpack **ret)
{
	const struct node_data root = {.type = 'd', .mode = 0755};
	struct unpack *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	u->o = *o;
	u->cas = cas;
	u->nodes = (struct strmap)STRMAP_INIT_BORROWED;
	u->tmpfd = -1;
	u->layer = -1;
	r = node_add(u, ".", NULL, &root, &u->root);
	if (r == 0)
		r = cas_batch_new(cas, &u->batch);
	if (r == 0)
		r = open_tmp(cas, &u->tmpfd);
	if (r < 0) {
		unpack_free(u);
		return r;
	}
	*ret = u;
	return 0;
}

int unpack_finish(struct unpack *u, char ret_id[SFS_DIGEST_SIZE])
{
	int r = cas_batch_commit(u->batch);

	return r < 0 ? r : store_tree(u, ret_id);
}
