/*
 * manager.c — CacheManager: cache keys, their ids in a key storage, and the
 * Query / Records / Load / Save the solver calls (docs/semantics.md §2, §4.4).
 *
 * A key with deps has no intrinsic id.  Each manager finds it by following
 * links from the ids of its deps (getIDFromDeps) and otherwise makes up a
 * random one, remembered in the key (k->ids) so later calls with the same key
 * object agree, and a Save under it lands where a Records looked.
 *
 * Locking: key_ids_lock (one for all managers) guards every key's list of ids.
 * It is global rather than per manager because one key meets several managers
 * (main and imported caches) and they all add to the same list.  Entries are
 * allocated one by one and never move, so a pointer from cache_key_id stays
 * valid as long as the key, and a key pays for the managers it met only.
 * refs is atomic.  Everything
 * else in a key is immutable once its deps are added, before it is shared.
 * The manager itself holds no mutable state beyond its storages, which lock
 * themselves.
 */
#include "manager.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "idset.h"
#include "result_storage.h"

static pthread_mutex_t key_ids_lock = PTHREAD_MUTEX_INITIALIZER;

struct cache_manager {
	char id[CACHE_ID_SIZE];
	struct keystore *ks;
	struct result_storage *rs;
};

/* ---- keys ---- */

/* A key as cache_key_new makes it, with root_id left empty. */
static struct cache_key *key_alloc(const char *digest, int output, size_t ndeps)
{
	struct cache_key *k = calloc(1, sizeof(*k) + (ndeps ? 0 : SFS_DIGEST_SIZE));

	if (!k)
		return NULL;
	if (ndeps && !(k->deps = calloc(ndeps, sizeof(*k->deps)))) {
		free(k);
		return NULL;
	}
	k->refs = 1;
	sfs_copy_str(k->digest, sizeof(k->digest), digest);
	k->output = output;
	k->ndeps = ndeps;
	return k;
}

struct cache_key *cache_key_new(const char *digest, int output, size_t ndeps)
{
	struct cache_key *k = key_alloc(digest, output, ndeps);

	if (k && !ndeps)
		sfs_root_key(k->digest, output, k->root_id);
	return k;
}

struct cache_key *cache_key_ref(struct cache_key *k)
{
	if (k)
		__atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
	return k;
}

struct cache_key *cache_key_unref(struct cache_key *k)
{
	if (!k || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return NULL;
	for (size_t i = 0; i < k->ndeps; i++) {
		for (size_t j = 0; j < k->deps[i].n; j++)
			cache_key_unref(k->deps[i].v[j].key);
		free(k->deps[i].v);
	}
	free(k->deps);
	while (k->ids) {
		struct cache_key_manager_id *n = k->ids->next;
		free(k->ids);
		k->ids = n;
	}
	free(k);
	return NULL;
}

int cache_key_add_dep(struct cache_key *k, size_t input, const char *selector,
		      struct cache_key *dep)
{
	struct cache_key_alts *a;
	struct cache_key_with_selector *v;

	if (input >= k->ndeps || !dep)
		return -EINVAL;
	a = &k->deps[input];
	v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	a->v = v;
	sfs_copy_str(v[a->n].selector, sizeof(v[a->n].selector), selector);
	v[a->n].key = cache_key_ref(dep);
	a->n++;
	return 0;
}

/* Call with key_ids_lock held. */
static const char *key_id_locked(const struct cache_key *k, const struct cache_manager *cm)
{
	for (const struct cache_key_manager_id *e = k->ids; e; e = e->next)
		if (e->cm == cm)
			return e->id;
	return NULL;
}

const char *cache_key_id(struct cache_key *k, const struct cache_manager *cm)
{
	const char *id;

	pthread_mutex_lock(&key_ids_lock);
	id = key_id_locked(k, cm);
	pthread_mutex_unlock(&key_ids_lock);
	if (!id && k->ndeps == 0)
		id = k->root_id;
	return id;
}

/* Remembers id as k's id in cm unless another thread got there first; *ret
 * receives the id that won. */
static int key_set_id(struct cache_key *k, const struct cache_manager *cm, const char *id,
		      char ret[CACHE_ID_SIZE])
{
	const char *have;
	int r = 0;

	pthread_mutex_lock(&key_ids_lock);
	have = key_id_locked(k, cm);
	if (have) {
		sfs_copy_str(ret, CACHE_ID_SIZE, have);
		goto out;
	}
	size_t len = strnlen(id, CACHE_ID_SIZE - 1);
	struct cache_key_manager_id *e = malloc(sizeof(*e) + len + 1);
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	e->cm = cm;
	memcpy(e->id, id, len);
	e->id[len] = '\0';
	e->next = k->ids;
	k->ids = e;
	k->nids++;
	sfs_copy_str(ret, CACHE_ID_SIZE, id);
out:
	pthread_mutex_unlock(&key_ids_lock);
	return r;
}

int cache_key_set_id(struct cache_key *k, const struct cache_manager *cm, const char *id)
{
	char out[CACHE_ID_SIZE];
	return key_set_id(k, cm, id, out);
}

/* ---- getID (§2.3) ---- */

static int get_id(struct cache_manager *cm, struct cache_key *k, char ret[CACHE_ID_SIZE]);

static void dep_link(const struct cache_key *k, size_t input,
		     const struct cache_key_with_selector *alt, struct cache_link *l)
{
	memset(l, 0, sizeof(*l));
	l->input = (int)input;
	l->output = k->output;
	sfs_copy_str(l->digest, sizeof(l->digest), k->digest);
	sfs_copy_str(l->selector, sizeof(l->selector), alt->selector);
}

/* The record form of solver link l (keystore.h); false when l has none (a
 * content key's link, output -1) or cm's storage holds no link of that form
 * (then a walk of it finds nothing: its rootKey, a SHA-256 a query, is not made). */
static bool record_form(struct cache_manager *cm, const struct cache_link *l,
			struct cache_link *ret)
{
	if (l->output < 0)
		return false;
	if (cm->ks->ops->record_links_maybe && !cm->ks->ops->record_links_maybe(cm->ks))
		return false;
	*ret = *l;
	ret->output = KEYSTORE_RECORD_LINK_OUTPUT;
	sfs_root_key(l->digest, l->output, ret->digest);
	return true;
}

/*
 * Walks the targets of link l from dep_id in both forms: as the solver saves it
 * ({input, output, map digest, selector}) and as an import stores it, by record
 * digest ({input, KEYSTORE_RECORD_LINK_OUTPUT, rootKey(map digest, output),
 * selector}, keystore.h), so imported records with inputs are found like saved ones.
 * rl is l's record form (record_form) or NULL when it has none.
 */
static int walk_links_both(struct cache_manager *cm, const char *dep_id, const struct cache_link *l,
			   const struct cache_link *rl, int (*fn)(const char *, void *), void *arg)
{
	int r = cm->ks->ops->walk_links(cm->ks, dep_id, l, fn, arg);
	if (r < 0 || !rl)
		return r;
	return cm->ks->ops->walk_links(cm->ks, dep_id, rl, fn, arg);
}

/* The targets of alt's link for (k, input) in cm, added to s. */
static int walk_alt(struct cache_manager *cm, struct cache_key *k, size_t input,
		    const struct cache_key_with_selector *alt, struct idset *s)
{
	char dep_id[CACHE_ID_SIZE];
	struct cache_link l, rl;
	int r = get_id(cm, alt->key, dep_id);

	if (r < 0)
		return r;
	dep_link(k, input, alt, &l);
	return walk_links_both(cm, dep_id, &l, record_form(cm, &l, &rl) ? &rl : NULL, idset_add, s);
}

/*
 * The ids every input of k reaches: with strict, getIDFromDeps's rule (input 0
 * gives the union of its alternatives' targets; each later input narrows the
 * set by each of its alternatives in turn, BuildKit's quirk: for i > 0 every
 * alternative must link); without, each input narrows it by the union of its
 * alternatives (an id some alternative of every input leads to, what a Query
 * through those alternatives would find).
 */
static int deps_targets(struct cache_manager *cm, struct cache_key *k, bool strict,
			struct idset *cand)
{
	struct idset t = {0};
	int r = 0;

	for (size_t j = 0; r == 0 && j < k->deps[0].n; j++)
		r = walk_alt(cm, k, 0, &k->deps[0].v[j], cand);
	for (size_t i = 1; r == 0 && i < k->ndeps && cand->n; i++) {
		t.n = 0;
		for (size_t j = 0; r == 0 && j < k->deps[i].n && cand->n; j++) {
			if (strict)
				t.n = 0;
			r = walk_alt(cm, k, i, &k->deps[i].v[j], &t);
			if (strict)
				idset_intersect(cand, &t);
		}
		if (!strict)
			idset_intersect(cand, &t);
	}
	idset_release(&t);
	return r;
}

/* getIDFromDeps: the first strict target, else a random id (the key is new to cm). */
static int id_from_deps(struct cache_manager *cm, struct cache_key *k, char ret[CACHE_ID_SIZE])
{
	struct idset cand = {0};
	int r = deps_targets(cm, k, true, &cand);

	if (r == 0) {
		if (cand.n)
			sfs_copy_str(ret, CACHE_ID_SIZE, cand.v[0]);
		else
			keystore_new_id(ret);
	}
	idset_release(&cand);
	return r;
}

static int get_id(struct cache_manager *cm, struct cache_key *k, char ret[CACHE_ID_SIZE])
{
	char id[CACHE_ID_SIZE];
	const char *have;
	int r;

	pthread_mutex_lock(&key_ids_lock);
	have = key_id_locked(k, cm);
	if (have)
		sfs_copy_str(ret, CACHE_ID_SIZE, have);
	pthread_mutex_unlock(&key_ids_lock);
	if (have)
		return 0;
	if (k->ndeps == 0) {
		sfs_copy_str(ret, CACHE_ID_SIZE, k->root_id);
		return 0;
	}
	r = id_from_deps(cm, k, id);
	if (r < 0)
		return r;
	return key_set_id(k, cm, id, ret);
}

/* ---- the manager ---- */

int cache_manager_new(const char *id, struct keystore *ks, struct result_storage *rs,
		      struct cache_manager **ret)
{
	struct cache_manager *cm = calloc(1, sizeof(*cm));
	int r;

	if (!cm)
		return -ENOMEM;
	sfs_copy_str(cm->id, sizeof(cm->id), id);
	cm->ks = ks;
	cm->rs = rs;
	/* Results deleted while we were not running (§4.2); a failure only
	 * leaves records that Records releases lazily. */
	r = cache_manager_release_unreferenced(cm);
	if (r < 0)
		sfs_log(SFS_LOG_WARN, "cache %s: releasing missing records: %s", cm->id,
			strerror(-r));
	*ret = cm;
	return 0;
}

struct cache_manager *cache_manager_free(struct cache_manager *cm)
{
	if (!cm)
		return NULL;
	keystore_free(cm->ks);
	if (cm->rs)
		cm->rs->ops->free(cm->rs);
	free(cm);
	return NULL;
}

const char *cache_manager_id(const struct cache_manager *cm)
{
	return cm->id;
}

struct keystore *cache_manager_keystore(struct cache_manager *cm)
{
	return cm->ks;
}

struct result_storage *cache_manager_storage(struct cache_manager *cm)
{
	return cm->rs;
}

/* ---- Query (§2.4) ---- */

/* A key found in cm under id: no deps, and id as its id in cm (BuildKit's
 * newKeyWithID sets both k.ID and k.ids[c]). */
static struct cache_key *found_key(struct cache_manager *cm, const char *dgst, int output,
				   const char *id)
{
	struct cache_key *k = key_alloc(dgst, output, 0);
	char tmp[CACHE_ID_SIZE];

	if (!k)
		return NULL;
	sfs_copy_str(k->root_id, SFS_DIGEST_SIZE, id); /* not rootKey: the id it was found under */
	if (key_set_id(k, cm, id, tmp) < 0)
		k = cache_key_unref(k);
	return k;
}

static int query_root(struct cache_manager *cm, const char *dgst, int output,
		      struct cache_key ***ret, size_t *ret_n)
{
	char id[SFS_DIGEST_SIZE];
	struct cache_key **v;

	sfs_root_key(dgst, output, id);
	*ret = NULL;
	*ret_n = 0;
	if (!cm->ks->ops->exists(cm->ks, id))
		return 0;
	v = calloc(1, sizeof(*v));
	if (!v || !(v[0] = found_key(cm, dgst, output, id))) {
		free(v);
		return -ENOMEM;
	}
	*ret = v;
	*ret_n = 1;
	return 0;
}

/* What each queried alternative reaches: found[j] is alternative j's set. */
struct query {
	size_t n;
	char (*dep_ids)[CACHE_ID_SIZE];
	struct cache_link *links;
	struct idset *found;
	struct idset all; /* union, in discovery order */
};

static void query_release(struct query *q)
{
	for (size_t j = 0; j < q->n; j++)
		free(q->found[j].v);
	free(q->found);
	free(q->dep_ids);
	free(q->links);
	idset_release(&q->all);
}

static int query_walk(struct cache_manager *cm, const struct cache_key_with_selector *deps,
		      int input, const char *dgst, int output, struct query *q)
{
	struct cache_link rl;
	bool has_rl = false;
	int r = 0;

	q->dep_ids = calloc(q->n, sizeof(*q->dep_ids));
	q->links = calloc(q->n, sizeof(*q->links));
	q->found = calloc(q->n, sizeof(*q->found));
	if (!q->dep_ids || !q->links || !q->found)
		return -ENOMEM;
	for (size_t j = 0; r == 0 && j < q->n; j++) {
		struct cache_link *l = &q->links[j];
		r = get_id(cm, deps[j].key, q->dep_ids[j]);
		if (r < 0)
			break;
		l->input = input;
		l->output = output;
		sfs_copy_str(l->digest, sizeof(l->digest), dgst);
		sfs_copy_str(l->selector, sizeof(l->selector), deps[j].selector);
		/* one rootKey for all alternatives: only the selector differs */
		if (j == 0)
			has_rl = record_form(cm, l, &rl);
		else if (has_rl)
			sfs_copy_str(rl.selector, sizeof(rl.selector), l->selector);
		r = walk_links_both(cm, q->dep_ids[j], l, has_rl ? &rl : NULL, idset_add,
				    &q->found[j]);
		for (size_t i = 0; r == 0 && i < q->found[j].n; i++)
			r = idset_add(q->found[j].v[i], &q->all);
	}
	return r;
}

/* Carry-over linking: every queried alternative gets linked to every found
 * key, so alternatives queried together become equivalent from now on. */
static int query_carry_over(struct cache_manager *cm, struct query *q)
{
	int r;

	/* A batch even when every link is there (a warm graph): it opens the
	 * database's group transaction (db.c), in which the lookups that follow
	 * read without taking the file's locks statement by statement; skipping
	 * it made a warm chain's KEYS tasks slower, not faster. */
	if (q->all.n == 0)
		return 0;
	r = cm->ks->ops->batch_begin(cm->ks);
	if (r < 0)
		return r;
	for (size_t t = 0; r == 0 && t < q->all.n; t++)
		for (size_t j = 0; r == 0 && j < q->n; j++)
			if (!idset_has(&q->found[j], q->all.v[t]))
				r = cm->ks->ops->add_link(cm->ks, q->dep_ids[j], &q->links[j],
							  q->all.v[t]);
	return cm->ks->ops->batch_end(cm->ks, r);
}

int cache_manager_query(struct cache_manager *cm, const struct cache_key_with_selector *deps,
			size_t ndeps, int input, const char *dgst, int output,
			struct cache_key ***ret, size_t *ret_n)
{
	struct query q = {.n = ndeps};
	struct cache_key **v = NULL;
	int r;

	if (ndeps == 0)
		return query_root(cm, dgst, output, ret, ret_n);
	r = query_walk(cm, deps, input, dgst, output, &q);
	if (r == 0)
		r = query_carry_over(cm, &q);
	if (r == 0 && q.all.n && !(v = calloc(q.all.n, sizeof(*v))))
		r = -ENOMEM;
	for (size_t t = 0; r == 0 && t < q.all.n; t++)
		if (!(v[t] = found_key(cm, dgst, output, q.all.v[t])))
			r = -ENOMEM;
	if (r < 0) {
		for (size_t t = 0; v && t < q.all.n; t++)
			cache_key_unref(v[t]);
		free(v);
		query_release(&q);
		return r;
	}
	*ret = v;
	*ret_n = q.all.n;
	query_release(&q);
	return 0;
}

/* ---- Records, Load ---- */

struct results {
	size_t n, cap;
	struct cache_result *v;
};

static int collect_result(const struct cache_result *r, void *arg)
{
	struct results *rs = arg;

	if (sfs_grow((void **)&rs->v, &rs->cap, rs->n + 1, sizeof(*rs->v)) < 0)
		return -ENOMEM;
	rs->v[rs->n++] = *r;
	return 0;
}

int cache_manager_records(struct cache_manager *cm, struct cache_key *k, struct cache_record **ret,
			  size_t *ret_n)
{
	char id[CACHE_ID_SIZE];
	struct results all = {0};
	struct cache_record *v = NULL;
	size_t n = 0;
	int r = get_id(cm, k, id);

	if (r == 0)
		r = cm->ks->ops->walk_results(cm->ks, id, collect_result, &all);
	if (r == 0 && all.n && !(v = calloc(all.n, sizeof(*v))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < all.n; i++) {
		const struct cache_result *res = &all.v[i];
		if (!cm->rs->ops->exists(cm->rs, res)) {
			/* Lazy GC (§4.2): the result is gone from the store. */
			r = cm->ks->ops->release(cm->ks, res->id);
			continue;
		}
		struct cache_record *rec = &v[n++];
		sfs_copy_str(rec->id, sizeof(rec->id), res->id);
		sfs_copy_str(rec->result, sizeof(rec->result), res->result);
		rec->created_at = res->created_at;
		rec->priority = 0;
		rec->cm = cm;
		sfs_copy_str(rec->key_id, sizeof(rec->key_id), id);
	}
	free(all.v);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

struct has_walk {
	struct cache_manager *cm;
	bool (*skip)(const char *record_id, void *arg);
	void *arg;
	bool found;
	struct results missing;
};

static int has_result(const struct cache_result *r, void *arg)
{
	struct has_walk *w = arg;

	if (w->found || (w->skip && w->skip(r->id, w->arg)))
		return 0;
	if (!w->cm->rs->ops->exists(w->cm->rs, r))
		return collect_result(r, &w->missing);
	w->found = true;
	return 0;
}

int cache_manager_has_records(struct cache_manager *cm, struct cache_key *k,
			      bool (*skip)(const char *record_id, void *arg), void *arg)
{
	char id[CACHE_ID_SIZE];
	struct has_walk w = {.cm = cm, .skip = skip, .arg = arg};
	int (*walk)(struct keystore *, const char *, keystore_result_fn, void *) =
	    cm->ks->ops->walk_results_any ? cm->ks->ops->walk_results_any
					  : cm->ks->ops->walk_results;
	int r = get_id(cm, k, id);

	if (r == 0)
		r = walk(cm->ks, id, has_result, &w);
	/* Lazy GC (§4.2), as in Records: after the walk, which copied its rows */
	for (size_t i = 0; r == 0 && i < w.missing.n; i++)
		r = cm->ks->ops->release(cm->ks, w.missing.v[i].id);
	free(w.missing.v);
	return r < 0 ? r : w.found;
}

int cache_manager_load(struct cache_manager *cm, const struct cache_record *rec,
		       char ret_result_id[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct cache_result res;
	int r = cm->ks->ops->load(cm->ks, rec->key_id, rec->id, &res);

	if (r < 0)
		return sfs_errf(ret_msg, r, "cache record %s of key %s: %s", rec->id, rec->key_id,
				r == -ENOENT ? "not found" : strerror(-r));
	return cm->rs->ops->load(cm->rs, &res, ret_result_id, ret_msg);
}

/* ---- Save (§2.4) ---- */

/*
 * ensurePersistentKey: links every alternative of every input of k to k's
 * id, first making each dep persistent itself (recursively), so a later
 * Query from any alternative finds k.  Deps already linked are skipped.
 */
static int ensure_persistent(struct cache_manager *cm, struct cache_key *k, int depth)
{
	char id[CACHE_ID_SIZE], dep_id[CACHE_ID_SIZE];
	struct cache_link l;
	int r;

	if (depth > 1000)
		return -ELOOP; /* keys form a DAG; only a broken caller gets here */
	r = get_id(cm, k, id);
	if (r == 0 && cm->ks->ops->set_info)
		r = cm->ks->ops->set_info(cm->ks, id, k->digest, k->output);
	for (size_t i = 0; r == 0 && i < k->ndeps; i++) {
		for (size_t j = 0; r == 0 && j < k->deps[i].n; j++) {
			const struct cache_key_with_selector *alt = &k->deps[i].v[j];
			dep_link(k, i, alt, &l);
			r = get_id(cm, alt->key, dep_id);
			if (r < 0 || cm->ks->ops->has_link(cm->ks, dep_id, &l, id))
				continue;
			r = ensure_persistent(cm, alt->key, depth + 1);
			if (r == 0)
				r = cm->ks->ops->add_link(cm->ks, dep_id, &l, id);
		}
	}
	return r;
}

static int save_batch(struct cache_manager *cm, struct cache_key *k, const struct cache_result *res)
{
	char id[CACHE_ID_SIZE];
	int r = get_id(cm, k, id);

	if (r == 0)
		r = cm->ks->ops->add_result(cm->ks, id, res);
	if (r == 0)
		r = ensure_persistent(cm, k, 0);
	return r;
}

struct same_result {
	const char *result;
	struct cache_result *ret;
	bool found;
};

static int match_result(const struct cache_result *r, void *arg)
{
	struct same_result *w = arg;

	if (w->found || strcmp(r->result, w->result) != 0)
		return 0;
	*w->ret = *r;
	w->found = true;
	return 0;
}

/*
 * A key with deps that getIDFromDeps finds no id for would get a random one.
 * When some key already holds a record of the same result and every input of
 * k leads to it through one of its alternatives, k takes that key's id and its
 * record instead (*ret_found): where many vertices converge on equal content
 * (a lattice past its width, branches ending in one toolchain), each would
 * otherwise save the same result under a key of its own, all linked from the
 * same content keys, and every later vertex would find, and keep, them all.
 * Saving under the key found only adds our alternatives' links to it.
 */
static int reuse_same_result(struct cache_manager *cm, struct cache_key *k, const char *result_id,
			     struct cache_result *ret, bool *ret_found)
{
	struct idset cand = {0};
	struct same_result w = {.result = result_id, .ret = ret};
	char id[CACHE_ID_SIZE];
	int r = 0;

	*ret_found = false;
	pthread_mutex_lock(&key_ids_lock);
	bool have = k->ndeps == 0 || key_id_locked(k, cm);
	pthread_mutex_unlock(&key_ids_lock);
	if (have)
		return 0;
	r = deps_targets(cm, k, true, &cand);
	if (r == 0 && cand.n) /* getIDFromDeps has an answer: keep to it */
		r = key_set_id(k, cm, cand.v[0], id);
	if (r < 0 || cand.n)
		goto out;
	r = deps_targets(cm, k, false, &cand);
	for (size_t i = 0; r == 0 && i < cand.n && !w.found; i++) {
		r = cm->ks->ops->walk_results(cm->ks, cand.v[i], match_result, &w);
		if (r == 0 && w.found && !cm->rs->ops->exists(cm->rs, ret))
			w.found = false; /* a record whose result is gone: not one to share */
		if (w.found)
			r = key_set_id(k, cm, cand.v[i], id);
	}
	*ret_found = r == 0 && w.found;
out:
	idset_release(&cand);
	return r;
}

/* Save's batch when k took an existing key's record: only the links are new. */
static int link_batch(struct cache_manager *cm, struct cache_key *k)
{
	return ensure_persistent(cm, k, 0);
}

int cache_manager_save(struct cache_manager *cm, struct cache_key *k, const char *result_id,
		       int64_t created_at, const struct cache_result *record,
		       struct cache_result *ret_record)
{
	struct cache_result res, same;
	bool shared = false;
	int r;

	if (!record && (r = reuse_same_result(cm, k, result_id, &same, &shared)) < 0)
		return r;
	/* The record first, outside the batch: the result storage reads the
	 * store, and a batch holds the database for its whole length.  A shared
	 * record still has the result saved again, which checks it is in the store
	 * and makes it as new as this save for pruning. */
	if (record)
		res = *record;
	else if ((r = cm->rs->ops->save(cm->rs, result_id, created_at, &res)) < 0)
		return r;
	if (shared)
		res = same;
	r = cm->ks->ops->batch_begin(cm->ks);
	if (r < 0)
		return r;
	r = cm->ks->ops->batch_end(cm->ks, shared ? link_batch(cm, k) : save_batch(cm, k, &res));
	if (r == 0 && ret_record)
		*ret_record = res;
	return r;
}

struct unref_walk {
	struct cache_manager *cm;
	struct results missing;
};

static int unref_result(const struct cache_result *r, void *arg)
{
	struct unref_walk *w = arg;

	if (w->cm->rs->ops->exists(w->cm->rs, r))
		return 0;
	return collect_result(r, &w->missing);
}

static int unref_key(const char *id, void *arg)
{
	struct unref_walk *w = arg;
	return w->cm->ks->ops->walk_results(w->cm->ks, id, unref_result, w);
}

int cache_manager_release_unreferenced(struct cache_manager *cm)
{
	struct unref_walk w = {.cm = cm};
	int r = cm->ks->ops->walk(cm->ks, unref_key, &w);

	/* Release after the walk: a release collects keys the walk would
	 * otherwise visit half-gone.  A record under several keys appears
	 * several times; releasing it again is a no-op. */
	for (size_t i = 0; r == 0 && i < w.missing.n; i++)
		r = cm->ks->ops->release(cm->ks, w.missing.v[i].id);
	free(w.missing.v);
	return r;
}

const struct cache_record *cache_records_best(const struct cache_record *r, size_t n)
{
	const struct cache_record *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (!best || r[i].created_at > best->created_at ||
		    (r[i].created_at == best->created_at && r[i].priority > best->priority))
			best = &r[i];
	return best;
}
