/*
 * wtree.c — the working tree of `file` and `merge` (ops.h): a mutable map of
 * path -> entry over blobs already in the store, edited in memory and stored as
 * one new manifest (tree_from_entries_known: a blob copied from an input is
 * not looked up again).  Lookups and edits are O(1) in the
 * strmap but removing a dir walks every entry, O(n).  Owned by one op call; no
 * lock.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "ops.h"

int wtree_init(struct wtree *w)
{
	struct wt_ent root = {.type = 'd', .mode = 0755};

	w->map = (struct strmap)STRMAP_INIT;
	return wtree_put(w, ".", &root);
}

void wtree_release(struct wtree *w)
{
	const char *k;
	void *v;

	for (size_t i = 0; strmap_next(&w->map, &i, &k, &v);)
		free(v);
	strmap_release(&w->map);
}

struct wt_ent *wtree_get(const struct wtree *w, const char *path)
{
	return strmap_get(&w->map, path);
}

int wtree_put(struct wtree *w, const char *path, const struct wt_ent *e)
{
	struct wt_ent *cur = strmap_get(&w->map, path);
	int r;

	if (cur) {
		*cur = *e;
		return 0;
	}
	cur = malloc(sizeof(*cur));
	if (!cur)
		return -ENOMEM;
	*cur = *e;
	if ((r = strmap_put(&w->map, path, cur, NULL)) < 0)
		free(cur);
	return r;
}

int wtree_add_tree(struct wtree *w, const struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *te = &t->entries[i];
		struct wt_ent e = {
		    .type = te->type, .mode = te->mode, .size = te->size, .from_input = true};
		int r;

		memcpy(e.hex, te->hex, sizeof(e.hex));
		if ((r = wtree_put(w, te->path, &e)) < 0)
			return r;
	}
	return 0;
}

bool wtree_rm(struct wtree *w, const char *path)
{
	struct wt_ent *e = strmap_del(&w->map, path);
	const char *k;
	void *v;
	char **gone = NULL;
	size_t n = 0, cap = 0;

	if (!e)
		return false;
	if (e->type == 'd') {
		/* Collect first: the map must not change while we iterate it. */
		for (size_t i = 0; strmap_next(&w->map, &i, &k, &v);) {
			if (!sfs_path_under(k, path))
				continue;
			if (sfs_grow((void **)&gone, &cap, n + 1, sizeof(*gone)) < 0)
				break; /* leaves orphans that wtree_build drops */
			gone[n++] = strdup(k);
		}
		for (size_t i = 0; i < n; i++) {
			if (gone[i])
				free(strmap_del(&w->map, gone[i]));
			free(gone[i]);
		}
		free(gone);
	}
	free(e);
	return true;
}

int wtree_mkparents(struct wtree *w, const char *path, char **ret_msg)
{
	struct wt_ent dir = {.type = 'd', .mode = 0755};
	char *p = strdup(path);
	int r = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = strchr(p, '/'); s && r == 0; s = strchr(s + 1, '/')) {
		struct wt_ent *e;

		*s = '\0';
		e = wtree_get(w, p);
		if (!e)
			r = wtree_put(w, p, &dir);
		else if (e->type != 'd')
			r = sfs_errf(ret_msg, ENOTDIR, "\"%s\" is not a directory", p);
		*s = '/';
	}
	free(p);
	return r;
}

int wtree_build(struct wtree *w, struct cas *c, struct tree **ret)
{
	struct tree_entry *es = calloc(w->map.len ? w->map.len : 1, sizeof(*es));
	bool *known = calloc(w->map.len ? w->map.len : 1, sizeof(*known));
	const char *k;
	void *v;
	size_t n = 0;
	int r;

	if (!es || !known) {
		free(es);
		free(known);
		return -ENOMEM;
	}
	for (size_t i = 0; strmap_next(&w->map, &i, &k, &v);) {
		const struct wt_ent *e = v;
		char *parent;

		/* Drop entries whose parent vanished (only after an ENOMEM in wtree_rm). */
		if (strcmp(k, ".") != 0) {
			struct wt_ent *pe;
			if (!(parent = sfs_path_parent(k))) {
				free(es);
				free(known);
				return -ENOMEM;
			}
			pe = wtree_get(w, parent);
			free(parent);
			if (!pe || pe->type != 'd')
				continue;
		}
		es[n] = (struct tree_entry){
		    .type = e->type, .mode = e->mode, .size = e->size, .path = (char *)k};
		memcpy(es[n].hex, e->hex, sizeof(es[n].hex));
		known[n] = e->from_input;
		n++;
	}
	r = tree_from_entries_known(c, es, known, n, ret);
	free(es);
	free(known);
	return r;
}
