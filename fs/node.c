/*
 * node.c — the inode table: inode numbers <-> node descriptors.
 *
 * The kernel names files by inode number; solverfs names them by descriptor
 * (kind, job, hex, path).  Two hash maps tie them: by_desc (descriptor key ->
 * node) so that looking up the same name twice gives the same inode, and by_ino
 * (inode number -> node).  Each node carries the kernel's lookup count and is
 * dropped at forget when it reaches zero.  Inode numbers come from a counter
 * and are never reused within a mount, so a stale inode can never name a
 * different file.  The root (FUSE_ROOT_ID) is permanent.
 *
 * The table is struct fs_nodes, fs->nodes (made by fs_nodes_init).
 *
 * Locking: its lock guards both maps, the counter and every node's nlookup.
 * Callers get copies of descriptors, never pointers into the table.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "strmap.h"
#include "fs.h"

struct fs_node {
	fuse_ino_t ino;
	uint64_t nlookup;
	struct fs_desc d;
	char *key; /* by_desc key */
};

struct fs_nodes {
	pthread_mutex_t lock;
	struct strmap by_desc; /* desc_key -> struct fs_node */
	struct strmap by_ino;  /* ino_key -> the same node */
	fuse_ino_t next_ino;
};

void fs_desc_release(struct fs_desc *d)
{
	if (!d)
		return;
	free(d->path);
	d->path = NULL;
}

int fs_desc_copy(struct fs_desc *dst, const struct fs_desc *src)
{
	*dst = *src;
	dst->path = NULL;
	if (src->path && !(dst->path = strdup(src->path)))
		return -ENOMEM;
	return 0;
}

static char *desc_key(const struct fs_desc *d)
{
	char *k = NULL;

	if (asprintf(&k, "%d/%" PRIu64 "/%s/%s", (int)d->kind, d->job, d->hex,
		     d->path ? d->path : "") < 0)
		return NULL;
	return k;
}

static void ino_key(fuse_ino_t ino, char buf[32])
{
	snprintf(buf, 32, "%" PRIx64, (uint64_t)ino);
}

static struct fs_node *node_free(struct fs_node *n)
{
	if (n) {
		fs_desc_release(&n->d);
		free(n->key);
		free(n);
	}
	return NULL;
}

static int node_insert(struct fs_nodes *t, struct fs_node *n)
{
	char ik[32];
	int r;

	ino_key(n->ino, ik);
	r = strmap_put(&t->by_desc, n->key, n, NULL);
	if (r < 0)
		return r;
	r = strmap_put(&t->by_ino, ik, n, NULL);
	if (r < 0)
		strmap_del(&t->by_desc, n->key);
	return r;
}

static struct fs_node *node_new(struct fs_nodes *t, const struct fs_desc *d, char *key,
				fuse_ino_t ino)
{
	struct fs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->key = key;
	n->ino = ino;
	if (fs_desc_copy(&n->d, d) < 0 || node_insert(t, n) < 0) {
		n->key = NULL;
		return node_free(n);
	}
	return n;
}

int fs_nodes_init(struct sfs_fs *fs)
{
	struct fs_desc root = {.kind = FS_ROOT};
	struct fs_nodes *t = calloc(1, sizeof(*t));
	struct fs_node *n;
	char *key;

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->by_desc = (struct strmap)STRMAP_INIT;
	t->by_ino = (struct strmap)STRMAP_INIT;
	t->next_ino = FUSE_ROOT_ID + 1;
	fs->nodes = t; /* fs_nodes_release frees it, whatever fails next */
	key = desc_key(&root);
	n = key ? node_new(t, &root, key, FUSE_ROOT_ID) : NULL;
	if (!n) {
		free(key);
		return -ENOMEM;
	}
	n->nlookup = 1; /* never forgotten */
	return 0;
}

void fs_nodes_release(struct sfs_fs *fs)
{
	struct fs_nodes *t = fs->nodes;
	const char *k;
	void *v;

	if (!t)
		return;
	for (size_t i = 0; strmap_next(&t->by_ino, &i, &k, &v);)
		node_free(v);
	strmap_release(&t->by_ino);
	strmap_release(&t->by_desc);
	pthread_mutex_destroy(&t->lock);
	free(t);
	fs->nodes = NULL;
}

int fs_node_ref(struct sfs_fs *fs, const struct fs_desc *d, fuse_ino_t *ret_ino)
{
	struct fs_nodes *t = fs->nodes;
	char *key = desc_key(d);
	struct fs_node *n;
	int r = 0;

	if (!key)
		return -ENOMEM;
	pthread_mutex_lock(&t->lock);
	n = strmap_get(&t->by_desc, key);
	if (n) {
		free(key);
	} else {
		n = node_new(t, d, key, t->next_ino);
		if (n)
			t->next_ino++;
		else
			free(key);
	}
	if (n) {
		n->nlookup++;
		*ret_ino = n->ino;
	} else {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

fuse_ino_t fs_node_peek(struct sfs_fs *fs, const struct fs_desc *d)
{
	struct fs_nodes *t = fs->nodes;
	char *key = desc_key(d);
	struct fs_node *n;
	fuse_ino_t ino = FUSE_UNKNOWN_INO;

	if (!key)
		return ino;
	pthread_mutex_lock(&t->lock);
	n = strmap_get(&t->by_desc, key);
	if (n)
		ino = n->ino;
	pthread_mutex_unlock(&t->lock);
	free(key);
	return ino;
}

int fs_node_get(struct sfs_fs *fs, fuse_ino_t ino, struct fs_desc *ret)
{
	struct fs_nodes *t = fs->nodes;
	char ik[32];
	struct fs_node *n;
	int r = -ESTALE;

	ino_key(ino, ik);
	pthread_mutex_lock(&t->lock);
	n = strmap_get(&t->by_ino, ik);
	if (n)
		r = fs_desc_copy(ret, &n->d);
	pthread_mutex_unlock(&t->lock);
	return r;
}

void fs_node_forget(struct sfs_fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs_nodes *t = fs->nodes;
	char ik[32];
	struct fs_node *n;

	if (ino == FUSE_ROOT_ID)
		return;
	ino_key(ino, ik);
	pthread_mutex_lock(&t->lock);
	n = strmap_get(&t->by_ino, ik);
	if (n) {
		n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
		if (n->nlookup == 0) {
			strmap_del(&t->by_ino, ik);
			strmap_del(&t->by_desc, n->key);
			node_free(n);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

size_t fs_nodes_count(struct sfs_fs *fs)
{
	struct fs_nodes *t = fs->nodes;
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->by_ino.len;
	pthread_mutex_unlock(&t->lock);
	return n;
}

int fs_dirlist_add(struct fs_dirlist *l, const char *name, mode_t type, const struct fs_desc *d)
{
	struct fs_dirent *e;

	if (sfs_grow((void **)&l->e, &l->cap, l->n + 1, sizeof(*l->e)) < 0)
		return -ENOMEM;
	e = &l->e[l->n];
	e->type = type;
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	if (fs_desc_copy(&e->d, d) < 0) {
		free(e->name);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

void fs_dirlist_release(struct fs_dirlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].name);
		fs_desc_release(&l->e[i].d);
	}
	free(l->e);
	l->e = NULL;
	l->n = l->cap = 0;
}
