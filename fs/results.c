/*
 * results.c — results/<hex>/...: every result tree of the store, read-only,
 * with modes and symlinks as the manifest records them.
 *
 * A result is an immutable tree (cache/tree.h), so what this module shows never
 * changes: the kernel gets long timeouts and keeps file pages.  Loaded trees
 * are kept in a small cache (TREE_SLOTS entries, least recently used evicted
 * when nobody holds them) because one `ls -lR` asks for the same tree once per
 * entry.  File data is read with pread from the blob (cas_open_blob).
 *
 * The slots are struct fs_trees, fs->trees (fs_results_init).
 *
 * Locking: its lock guards the slots (refs, tick); a tree itself is
 * read-only and shared.  Trees are loaded outside the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results_index.h"
#include "tree.h"
#include "fs.h"

#define TREE_SLOTS 32

struct tree_slot {
	struct tree *t; /* NULL: free slot */
	char hex[SFS_HEX_SIZE];
	int64_t created; /* ns */
	unsigned refs;
	uint64_t used;
	bool gone; /* collected by the GC while held: freed at the last tree_put */
};

struct fs_trees {
	pthread_mutex_t lock;
	struct tree_slot slots[TREE_SLOTS];
	uint64_t tick;
};

int fs_results_init(struct sfs_fs *fs)
{
	struct fs_trees *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	fs->trees = c;
	return 0;
}

void fs_results_release(struct sfs_fs *fs)
{
	struct fs_trees *c = fs->trees;

	if (!c)
		return;
	for (size_t i = 0; i < TREE_SLOTS; i++)
		c->slots[i].t = tree_free(c->slots[i].t);
	pthread_mutex_destroy(&c->lock);
	free(c);
	fs->trees = NULL;
}

/*
 * The result's creation time: the results table when it knows the result,
 * else the manifest blob's mtime.
 */
static int64_t result_created(struct sfs_fs *fs, const char *hex)
{
	struct results_index_entry e;
	char path[4096];
	int64_t created = 0;
	struct stat bst;

	if (results_index_get(fs->cache->db, hex, &e) == 0)
		created = e.created;
	if (created <= 0 && cas_blob_path(fs->cache->cas, hex, path, sizeof(path)) == 0 &&
	    stat(path, &bst) == 0)
		created = (int64_t)bst.st_mtim.tv_sec * 1000000000LL + bst.st_mtim.tv_nsec;
	return created;
}

static struct tree_slot *slot_find(struct fs_trees *c, const char *hex)
{
	for (size_t i = 0; i < TREE_SLOTS; i++)
		if (c->slots[i].t && !c->slots[i].gone && !strcmp(c->slots[i].hex, hex))
			return &c->slots[i];
	return NULL;
}

static struct tree_slot *slot_victim(struct fs_trees *c)
{
	struct tree_slot *v = NULL;

	for (size_t i = 0; i < TREE_SLOTS; i++) {
		if (!c->slots[i].t)
			return &c->slots[i];
		if (c->slots[i].refs == 0 && (!v || c->slots[i].used < v->used))
			v = &c->slots[i];
	}
	return v;
}

/* Holds the tree of result hex until tree_put. */
static int tree_get(struct sfs_fs *fs, const char *hex, struct tree **ret, int64_t *ret_created)
{
	struct fs_trees *c = fs->trees;
	struct tree_slot *s;
	struct tree *t;
	int64_t created;
	int r;

	pthread_mutex_lock(&c->lock);
	s = slot_find(c, hex);
	if (s) {
		s->refs++;
		s->used = ++c->tick;
		*ret = s->t;
		*ret_created = s->created;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);

	r = tree_load(fs->cache->cas, hex, &t);
	if (r < 0)
		return r == -ENOENT ? r : -ENOENT; /* not a tree: no such result */
	created = result_created(fs, hex);

	pthread_mutex_lock(&c->lock);
	s = slot_find(c, hex);
	if (s) { /* another thread loaded it meanwhile */
		tree_free(t);
	} else if ((s = slot_victim(c))) {
		tree_free(s->t);
		*s = (struct tree_slot){.t = t, .created = created};
		memcpy(s->hex, hex, SFS_HEX_SIZE);
	}
	if (s) {
		s->refs++;
		s->used = ++c->tick;
		t = s->t;
		created = s->created;
	}
	pthread_mutex_unlock(&c->lock);
	*ret = t; /* uncached when every slot is busy: tree_put frees it */
	*ret_created = created;
	return 0;
}

static void tree_put(struct sfs_fs *fs, struct tree *t)
{
	struct fs_trees *c = fs->trees;
	bool cached = false;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < TREE_SLOTS; i++)
		if (c->slots[i].t == t) {
			cached = --c->slots[i].refs > 0 || !c->slots[i].gone;
			if (!cached)
				c->slots[i] = (struct tree_slot){0};
			break;
		}
	pthread_mutex_unlock(&c->lock);
	if (!cached)
		tree_free(t);
}

void fs_results_forget(struct sfs_fs *fs, const char *hex)
{
	struct fs_trees *c = fs->trees;
	struct tree *t = NULL;

	pthread_mutex_lock(&c->lock);
	struct tree_slot *s = slot_find(c, hex);
	if (s && s->refs == 0) {
		t = s->t;
		*s = (struct tree_slot){0};
	} else if (s) {
		s->gone = true;
	}
	pthread_mutex_unlock(&c->lock);
	tree_free(t);
}

static char *child_path(const char *dir, const char *name)
{
	char *p = NULL;

	if (!strcmp(dir, "."))
		return strdup(name);
	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static int results_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			  struct fs_desc *ret)
{
	const struct tree_entry *e;
	struct tree *t;
	int64_t created;
	char *path;
	int r;

	if (d->kind == FS_RESULTS_DIR) {
		if (!sfs_is_hex(name))
			return -ENOENT;
		r = tree_get(fs, name, &t, &created);
		if (r < 0)
			return r;
		tree_put(fs, t);
		*ret = (struct fs_desc){.kind = FS_RESULT_ENTRY};
		memcpy(ret->hex, name, SFS_HEX_SIZE);
		ret->path = strdup(".");
		return ret->path ? 0 : -ENOMEM;
	}
	if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -ENOENT;
	path = child_path(d->path, name);
	if (!path)
		return -ENOMEM;
	r = tree_get(fs, d->hex, &t, &created);
	if (r == 0) {
		e = tree_find(t, path);
		r = e ? 0 : -ENOENT;
		tree_put(fs, t);
	}
	if (r < 0) {
		free(path);
		return r;
	}
	*ret = (struct fs_desc){.kind = FS_RESULT_ENTRY, .path = path};
	memcpy(ret->hex, d->hex, SFS_HEX_SIZE);
	return 0;
}

static int list_one(const char *id, void *arg)
{
	struct fs_dirlist *l = arg;
	struct fs_desc c = {.kind = FS_RESULT_ENTRY, .path = "."};

	if (!strncmp(id, "sha256:", 7))
		id += 7;
	if (!sfs_is_hex(id))
		return 0;
	memcpy(c.hex, id, SFS_HEX_SIZE);
	return fs_dirlist_add(l, c.hex, S_IFDIR, &c);
}

/* Every result the cache knows (the results table). */
static int results_list(struct sfs_fs *fs, struct fs_dirlist *l)
{
	return results_index_walk(fs->cache->db, list_one, l);
}

static mode_t entry_type(char type)
{
	return type == 'd' ? S_IFDIR : type == 'l' ? S_IFLNK : S_IFREG;
}

static int results_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	const struct tree_entry *e;
	struct tree *t;
	int64_t created;
	size_t cursor = 0;
	int r;

	if (d->kind == FS_RESULTS_DIR)
		return results_list(fs, l);
	r = tree_get(fs, d->hex, &t, &created);
	if (r < 0)
		return r;
	while (r == 0 && (e = tree_next_child(t, d->path, &cursor))) {
		struct fs_desc c = {.kind = FS_RESULT_ENTRY, .path = e->path};
		memcpy(c.hex, d->hex, SFS_HEX_SIZE);
		r = fs_dirlist_add(l, tree_entry_name(e), entry_type(e->type), &c);
	}
	tree_put(fs, t);
	return r;
}

static int results_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	const struct tree_entry *e;
	struct tree *t;
	int64_t created;
	int r;

	if (d->kind == FS_RESULTS_DIR) {
		fs_stat_init(fs, st, fs_kinds[FS_RESULTS_DIR].mode, fs->uid, fs->gid);
		return 0;
	}
	r = tree_get(fs, d->hex, &t, &created);
	if (r < 0)
		return r;
	e = tree_find(t, d->path);
	if (!e) {
		r = -ENOENT;
	} else {
		/* Modes as recorded, but never set-uid/set-gid in a shared mount. */
		fs_stat_init(fs, st, entry_type(e->type) | (e->mode & 01777), fs->uid, fs->gid);
		st->st_size = e->type == 'd' ? 0 : (off_t)e->size;
		st->st_blocks = (blkcnt_t)((e->size + 511) / 512);
		fs_stat_time_ns(st, created);
	}
	tree_put(fs, t);
	return r;
}

static int entry_copy(struct sfs_fs *fs, const struct fs_desc *d, struct tree_entry *ret)
{
	const struct tree_entry *e;
	struct tree *t;
	int64_t created;
	int r = tree_get(fs, d->hex, &t, &created);

	if (r < 0)
		return r;
	e = tree_find(t, d->path);
	if (e) {
		*ret = *e;
		ret->path = NULL;
	}
	tree_put(fs, t);
	return e ? 0 : -ENOENT;
}

static int results_readlink(struct sfs_fs *fs, const struct fs_desc *d, char **ret)
{
	struct tree_entry e;
	size_t len;
	int r = entry_copy(fs, d, &e);

	if (r < 0)
		return r;
	if (e.type != 'l')
		return -EINVAL;
	return cas_read_all(fs->cache->cas, e.hex, ret, &len);
}

const struct fs_module fs_results_module = {
    .lookup = results_lookup,
    .getattr = results_getattr,
    .readdir = results_readdir,
    .readlink = results_readlink,
};

int fs_results_open(struct sfs_fs *fs, struct fs_file *f)
{
	struct tree_entry e;
	int r = entry_copy(fs, &f->d, &e);

	if (r < 0)
		return r;
	if (e.type == 'd')
		return -EISDIR;
	if (e.type != 'f')
		return -ELOOP;
	return cas_open_blob(fs->cache->cas, e.hex, &f->fd);
}
