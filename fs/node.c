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
 * Locking: nodes_lock guards both maps, the counter and every node's nlookup.
 * Callers get copies of descriptors, never pointers into the table.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "fs.h"

struct fs_node {
	fuse_ino_t ino;
	uint64_t nlookup;
	struct fs_desc d;
	char *key; /* by_desc key */
};

static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strmap by_desc = STRMAP_INIT;
static struct strmap by_ino = STRMAP_INIT;
static fuse_ino_t next_ino = FUSE_ROOT_ID + 1;

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

static int node_insert(struct fs_node *n)
{
	char ik[32];
	int r;

	ino_key(n->ino, ik);
	r = strmap_put(&by_desc, n->key, n, NULL);
	if (r < 0)
		return r;
	r = strmap_put(&by_ino, ik, n, NULL);
	if (r < 0)
		strmap_del(&by_desc, n->key);
	return r;
}

static struct fs_node *node_new(const struct fs_desc *d, char *key, fuse_ino_t ino)
{
	struct fs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->key = key;
	n->ino = ino;
	if (fs_desc_copy(&n->d, d) < 0 || node_insert(n) < 0) {
		n->key = NULL;
		return node_free(n);
	}
	return n;
}

int fs_nodes_init(void)
{
	struct fs_desc root = {.kind = FS_ROOT};
	char *key = desc_key(&root);
	struct fs_node *n;

	if (!key)
		return -ENOMEM;
	pthread_mutex_lock(&nodes_lock);
	n = node_new(&root, key, FUSE_ROOT_ID);
	if (n)
		n->nlookup = 1; /* never forgotten */
	pthread_mutex_unlock(&nodes_lock);
	if (!n) {
		free(key);
		return -ENOMEM;
	}
	return 0;
}

void fs_nodes_release(void)
{
	const char *k;
	void *v;

	pthread_mutex_lock(&nodes_lock);
	for (size_t i = 0; strmap_next(&by_ino, &i, &k, &v);)
		node_free(v);
	strmap_release(&by_ino);
	strmap_release(&by_desc);
	pthread_mutex_unlock(&nodes_lock);
}

int fs_node_ref(const struct fs_desc *d, fuse_ino_t *ret_ino)
{
	char *key = desc_key(d);
	struct fs_node *n;
	int r = 0;

	if (!key)
		return -ENOMEM;
	pthread_mutex_lock(&nodes_lock);
	n = strmap_get(&by_desc, key);
	if (n) {
		free(key);
	} else {
		n = node_new(d, key, next_ino);
		if (n)
			next_ino++;
		else
			free(key);
	}
	if (n) {
		n->nlookup++;
		*ret_ino = n->ino;
	} else {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&nodes_lock);
	return r;
}

fuse_ino_t fs_node_peek(const struct fs_desc *d)
{
	char *key = desc_key(d);
	struct fs_node *n;
	fuse_ino_t ino = FUSE_UNKNOWN_INO;

	if (!key)
		return ino;
	pthread_mutex_lock(&nodes_lock);
	n = strmap_get(&by_desc, key);
	if (n)
		ino = n->ino;
	pthread_mutex_unlock(&nodes_lock);
	free(key);
	return ino;
}

int fs_node_get(fuse_ino_t ino, struct fs_desc *ret)
{
	char ik[32];
	struct fs_node *n;
	int r = -ESTALE;

	ino_key(ino, ik);
	pthread_mutex_lock(&nodes_lock);
	n = strmap_get(&by_ino, ik);
	if (n)
		r = fs_desc_copy(ret, &n->d);
	pthread_mutex_unlock(&nodes_lock);
	return r;
}

void fs_node_forget(fuse_ino_t ino, uint64_t nlookup)
{
	char ik[32];
	struct fs_node *n;

	if (ino == FUSE_ROOT_ID)
		return;
	ino_key(ino, ik);
	pthread_mutex_lock(&nodes_lock);
	n = strmap_get(&by_ino, ik);
	if (n) {
		n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
		if (n->nlookup == 0) {
			strmap_del(&by_ino, ik);
			strmap_del(&by_desc, n->key);
			node_free(n);
		}
	}
	pthread_mutex_unlock(&nodes_lock);
}

size_t fs_nodes_count(void)
{
	size_t n;

	pthread_mutex_lock(&nodes_lock);
	n = by_ino.len;
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

int fs_dirlist_add(struct fs_dirlist *l, const char *name, mode_t type, const struct fs_desc *d)
{
	struct fs_dirent *e;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		e = realloc(l->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
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
