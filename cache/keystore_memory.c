/*
 * keystore_memory.c — CacheKeyStorage in memory (BuildKit's memorycachestorage).
 *
 * Used for imported caches and by tests; it must behave exactly like the
 * SQLite storage, which the shared storage test suite checks.
 *
 * Layout, all in string hash maps (struct strmap below, chained, O(1) average):
 *   keys:      key id -> struct mkey { results, links, backlinks }
 *     results:   record id -> struct cache_result
 *     links:     "input\x1foutput\x1fdigest\x1fselector" -> struct mlinkset
 *                (the link fields plus the set of target ids)
 *     backlinks: set of key ids with a link to this key
 *   by_result: record id -> set of key ids holding that record
 *
 * Locking: ks_memory.lock guards everything.  Walks copy what they yield
 * under the lock and call back without it, so callbacks may re-enter.
 */
#include "array.h"
#include "keystore.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "strmap.h"
#include "strv.h"

/* ---- maps and sets (base/strmap.h) ---- */

/* Frees every value with fn (may be NULL), then the map. */
static void map_release(struct strmap *m, void (*fn)(void *val))
{
	const char *key;
	void *val;
	for (size_t it = 0; fn && strmap_next(m, &it, &key, &val);)
		fn(val);
	strmap_release(m);
}

/* Iterates map m; key and val name the current entry. */
#define MAP_FOREACH(m, key, val) for (size_t _it = 0; strmap_next((m), &_it, &(key), &(val));)

/* Sets store this non-NULL marker as value. */
#define SET_MEMBER ((void *)1)

static int set_add(struct strmap *s, const char *k)
{
	return strmap_get(s, k) ? 0 : strmap_put(s, k, SET_MEMBER, NULL);
}

/* ---- snapshots for walks ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copies the set's members (sorted, for the same order as SQLite's walks). */
static int strv_from_set(struct strv *sv, const struct strmap *s)
{
	const char *key;
	void *val;
	MAP_FOREACH(s, key, val)
	{
		if (strv_push(sv, key) < 0)
			return -ENOMEM;
	}
	if (sv->n)
		qsort(sv->v, sv->n, sizeof(*sv->v), cmp_str);
	return 0;
}

/* ---- the storage ---- */

struct mlinkset {
	struct cache_link l;
	struct strmap targets;
};

struct mkey {
	struct strmap results;	 /* record id -> struct cache_result * */
	struct strmap links;	 /* link string -> struct mlinkset * */
	struct strmap backlinks; /* set of src ids */
};

struct ks_memory {
	struct keystore ks;
	pthread_mutex_t lock;
	struct strmap keys;	 /* id -> struct mkey * */
	struct strmap by_result; /* record id -> struct strmap * (set of key ids) */
};

#define LINK_KEY_SIZE (2 * SFS_DIGEST_SIZE + 32)

static void link_key(const struct cache_link *l, char buf[LINK_KEY_SIZE])
{
	snprintf(buf, LINK_KEY_SIZE, "%d\x1f%d\x1f%s\x1f%s", l->input, l->output, l->digest,
		 l->selector);
}

static void linkset_free(void *p)
{
	struct mlinkset *ls = p;
	map_release(&ls->targets, NULL);
	free(ls);
}

static void mkey_free(void *p)
{
	struct mkey *k = p;
	if (!k)
		return;
	map_release(&k->results, free);
	map_release(&k->links, linkset_free);
	map_release(&k->backlinks, NULL);
	free(k);
}

static void set_free(void *p)
{
	struct strmap *s = p;
	map_release(s, NULL);
	free(s);
}

static struct ks_memory *to_mem(struct keystore *ks)
{
	return (struct ks_memory *)ks;
}

static struct mkey *mem_key(struct ks_memory *m, const char *id, bool create)
{
	struct mkey *k = strmap_get(&m->keys, id);

	if (k || !create)
		return k;
	k = calloc(1, sizeof(*k));
	if (k && strmap_put(&m->keys, id, k, NULL) < 0) {
		free(k);
		k = NULL;
	}
	return k;
}

static bool mem_exists(struct keystore *ks, const char *id)
{
	struct ks_memory *m = to_mem(ks);
	bool ret;

	pthread_mutex_lock(&m->lock);
	struct mkey *k = mem_key(m, id, false);
	ret = k && (k->results.len > 0 || k->links.len > 0);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_walk(struct keystore *ks, keystore_id_fn fn, void *arg)
{
	struct ks_memory *m = to_mem(ks);
	struct strv sv = {0};
	int r;

	pthread_mutex_lock(&m->lock);
	r = strv_from_set(&sv, &m->keys);
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		r = strv_call(&sv, fn, arg);
	strv_release(&sv);
	return r;
}

static int cmp_result(const void *a, const void *b)
{
	const struct cache_result *x = a, *y = b;
	if (x->created_at != y->created_at)
		return x->created_at < y->created_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int mem_walk_results(struct keystore *ks, const char *id, keystore_result_fn fn, void *arg)
{
	struct ks_memory *m = to_mem(ks);
	struct cache_result *v = NULL;
	size_t n = 0;
	int r = 0;

	pthread_mutex_lock(&m->lock);
	struct mkey *k = mem_key(m, id, false);
	if (k && k->results.len) {
		v = malloc(k->results.len * sizeof(*v));
		if (!v)
			r = -ENOMEM;
	}
	if (v) {
		const char *key;
		void *val;
		MAP_FOREACH(&k->results, key, val)
		{
			v[n++] = *(struct cache_result *)val;
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (n)
		qsort(v, n, sizeof(*v), cmp_result);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(&v[i], arg);
	free(v);
	return r;
}

static int mem_load(struct keystore *ks, const char *id, const char *record_id,
		    struct cache_result *ret)
{
	struct ks_memory *m = to_mem(ks);
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	struct mkey *k = mem_key(m, id, false);
	struct cache_result *res = k ? strmap_get(&k->results, record_id) : NULL;
	if (res) {
		*ret = *res;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mem_add_result_locked(struct ks_memory *m, const char *id, const struct cache_result *r)
{
	struct mkey *k = mem_key(m, id, true);
	struct strmap *ids;

	if (!k)
		return -ENOMEM;
	if (!strmap_get(&k->results, r->id)) {
		struct cache_result *c = malloc(sizeof(*c));
		if (!c)
			return -ENOMEM;
		*c = *r;
		if (strmap_put(&k->results, r->id, c, NULL) < 0) {
			free(c);
			return -ENOMEM;
		}
	}
	ids = strmap_get(&m->by_result, r->id);
	if (!ids) {
		ids = calloc(1, sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		if (strmap_put(&m->by_result, r->id, ids, NULL) < 0) {
			free(ids);
			return -ENOMEM;
		}
	}
	return set_add(ids, id);
}

static int mem_add_result(struct keystore *ks, const char *id, const struct cache_result *res)
{
	struct ks_memory *m = to_mem(ks);
	int r;

	pthread_mutex_lock(&m->lock);
	r = mem_add_result_locked(m, id, res);
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Removes every link from src to target. */
static void mem_unlink(struct ks_memory *m, const char *src, const char *target)
{
	struct mkey *s = mem_key(m, src, false);
	struct strv empty = {0};

	if (!s)
		return;
	const char *key;
	void *val;
	MAP_FOREACH(&s->links, key, val)
	{
		struct mlinkset *ls = val;
		strmap_del(&ls->targets, target);
		if (ls->targets.len == 0 && strv_push(&empty, key) < 0)
			break; /* out of memory: an empty set only costs memory */
	}
	for (size_t i = 0; i < empty.n; i++)
		linkset_free(strmap_del(&s->links, empty.v[i]));
	strv_release(&empty);
}

/*
 * emptyBranchWithParents (docs/semantics.md §4.2): a key left with neither results
 * nor outgoing links goes away; the dependency keys linking to it lose those
 * links and are collected the same way, so a chain of link-only keys unwinds.
 */
static void mem_empty_branch(struct ks_memory *m, const char *id)
{
	struct mkey *k = mem_key(m, id, false);
	struct strv srcs = {0};

	if (!k || k->results.len > 0 || k->links.len > 0)
		return;
	if (strv_from_set(&srcs, &k->backlinks) < 0) {
		strv_release(&srcs);
		return; /* out of memory: the key stays, harmlessly */
	}
	mkey_free(strmap_del(&m->keys, id));
	for (size_t i = 0; i < srcs.n; i++) {
		mem_unlink(m, srcs.v[i], id);
		mem_empty_branch(m, srcs.v[i]);
	}
	strv_release(&srcs);
}

static int mem_release(struct keystore *ks, const char *record_id)
{
	struct ks_memory *m = to_mem(ks);
	struct strv ids = {0};
	int r = 0;

	pthread_mutex_lock(&m->lock);
	struct strmap *set = strmap_del(&m->by_result, record_id);
	if (set) {
		r = strv_from_set(&ids, set);
		set_free(set);
	}
	for (size_t i = 0; i < ids.n; i++) {
		struct mkey *k = mem_key(m, ids.v[i], false);
		if (k)
			free(strmap_del(&k->results, record_id));
	}
	for (size_t i = 0; i < ids.n; i++)
		mem_empty_branch(m, ids.v[i]);
	pthread_mutex_unlock(&m->lock);
	strv_release(&ids);
	return r;
}

static int mem_walk_ids_by_result(struct keystore *ks, const char *record_id, keystore_id_fn fn,
				  void *arg)
{
	struct ks_memory *m = to_mem(ks);
	struct strv sv = {0};
	int r = 0;

	pthread_mutex_lock(&m->lock);
	struct strmap *set = strmap_get(&m->by_result, record_id);
	if (set)
		r = strv_from_set(&sv, set);
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		r = strv_call(&sv, fn, arg);
	strv_release(&sv);
	return r;
}

static int mem_add_link_locked(struct ks_memory *m, const char *id, const struct cache_link *l,
			       const char *target)
{
	char lk[LINK_KEY_SIZE];
	struct mkey *src = mem_key(m, id, true), *dst = mem_key(m, target, true);
	struct mlinkset *ls;

	if (!src || !dst)
		return -ENOMEM;
	link_key(l, lk);
	ls = strmap_get(&src->links, lk);
	if (!ls) {
		ls = calloc(1, sizeof(*ls));
		if (!ls)
			return -ENOMEM;
		ls->l = *l;
		if (strmap_put(&src->links, lk, ls, NULL) < 0) {
			free(ls);
			return -ENOMEM;
		}
	}
	if (set_add(&ls->targets, target) < 0)
		return -ENOMEM;
	return set_add(&dst->backlinks, id);
}

static int mem_add_link(struct keystore *ks, const char *id, const struct cache_link *l,
			const char *target)
{
	struct ks_memory *m = to_mem(ks);
	int r;

	pthread_mutex_lock(&m->lock);
	r = mem_add_link_locked(m, id, l, target);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static struct mlinkset *mem_linkset(struct ks_memory *m, const char *id, const struct cache_link *l)
{
	char lk[LINK_KEY_SIZE];
	struct mkey *k = mem_key(m, id, false);

	if (!k)
		return NULL;
	link_key(l, lk);
	return strmap_get(&k->links, lk);
}

static int mem_walk_links(struct keystore *ks, const char *id, const struct cache_link *l,
			  keystore_id_fn fn, void *arg)
{
	struct ks_memory *m = to_mem(ks);
	struct strv sv = {0};
	int r = 0;

	pthread_mutex_lock(&m->lock);
	struct mlinkset *ls = mem_linkset(m, id, l);
	if (ls)
		r = strv_from_set(&sv, &ls->targets);
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		r = strv_call(&sv, fn, arg);
	strv_release(&sv);
	return r;
}

static bool mem_has_link(struct keystore *ks, const char *id, const struct cache_link *l,
			 const char *target)
{
	struct ks_memory *m = to_mem(ks);
	bool ret;

	pthread_mutex_lock(&m->lock);
	struct mlinkset *ls = mem_linkset(m, id, l);
	ret = ls && strmap_get(&ls->targets, target);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

struct backlink {
	char *src;
	struct cache_link l;
};

static int cmp_backlink(const void *a, const void *b)
{
	const struct backlink *x = a, *y = b;
	int c = strcmp(x->src, y->src);
	if (c == 0)
		c = x->l.input - y->l.input;
	if (c == 0)
		c = strcmp(x->l.digest, y->l.digest);
	if (c == 0)
		c = strcmp(x->l.selector, y->l.selector);
	return c;
}

/* Appends the links src -> id to *v, in the record-digest form of docs/semantics.md §4.1. */
static int mem_collect_backlinks(struct ks_memory *m, const char *src, const char *id,
				 struct backlink **v, size_t *n, size_t *cap)
{
	struct mkey *s = mem_key(m, src, false);

	if (!s)
		return 0;
	const char *key;
	void *val;
	MAP_FOREACH(&s->links, key, val)
	{
		struct mlinkset *ls = val;
		if (!strmap_get(&ls->targets, id))
			continue;
		if (sfs_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
			return -ENOMEM;
		struct backlink *b = &(*v)[*n];
		if (!(b->src = strdup(src)))
			return -ENOMEM;
		b->l = ls->l;
		/* an imported link (output KEYSTORE_RECORD_LINK_OUTPUT) already
		 * holds the record digest */
		if (ls->l.output >= 0)
			sfs_root_key(ls->l.digest, ls->l.output, b->l.digest);
		b->l.output = 0;
		(*n)++;
	}
	return 0;
}

static int mem_walk_backlinks(struct keystore *ks, const char *id, keystore_backlink_fn fn,
			      void *arg)
{
	struct ks_memory *m = to_mem(ks);
	struct backlink *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	pthread_mutex_lock(&m->lock);
	struct mkey *k = mem_key(m, id, false);
	if (k) {
		const char *key;
		void *val;
		MAP_FOREACH(&k->backlinks, key, val)
		{
			r = mem_collect_backlinks(m, key, id, &v, &n, &cap);
			if (r < 0)
				goto unlock;
		}
	}
unlock:
	pthread_mutex_unlock(&m->lock);
	if (r == 0 && n)
		qsort(v, n, sizeof(*v), cmp_backlink);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(v[i].src, &v[i].l, arg);
	for (size_t i = 0; i < n; i++)
		free(v[i].src);
	free(v);
	return r;
}

/* Each update is atomic on its own in memory; a batch needs no journal. */
static int mem_batch_begin(struct keystore *ks)
{
	return 0;
}

static int mem_batch_end(struct keystore *ks, int err)
{
	return err;
}

static void mem_free(struct keystore *ks)
{
	struct ks_memory *m = to_mem(ks);

	map_release(&m->keys, mkey_free);
	map_release(&m->by_result, set_free);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct keystore_ops mem_ops = {
    .exists = mem_exists,
    .walk = mem_walk,
    .walk_results = mem_walk_results,
    .load = mem_load,
    .add_result = mem_add_result,
    .release = mem_release,
    .walk_ids_by_result = mem_walk_ids_by_result,
    .add_link = mem_add_link,
    .walk_links = mem_walk_links,
    .has_link = mem_has_link,
    .walk_backlinks = mem_walk_backlinks,
    .batch_begin = mem_batch_begin,
    .batch_end = mem_batch_end,
    .free = mem_free,
};

int keystore_memory_new(struct keystore **ret)
{
	struct ks_memory *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->ks.ops = &mem_ops;
	pthread_mutex_init(&m->lock, NULL);
	*ret = &m->ks;
	return 0;
}
