/*
 * export.c — cache export (see export.h): BuildKit's exporter.ExportTo over our
 * cache manager, a CacheChains target, and the OCI layout writer.
 *
 * Three stages, each over plain arrays indexed by position:
 *   1. the walk (docs/export.md §6) adds items to a CacheChains: one per
 *      Add, with a result (a layer) and per-input link sets;
 *   2. normalize dedupes items (docs/export.md §8), marshal turns them into config
 *      layers and records, sortConfig orders them for determinism;
 *   3. the layout writer copies layer blobs out of the content store and
 *      writes the config, the manifest, index.json and oci-layout.
 * Item and record handles are indexes; NIL is "no record" (BuildKit's nil
 * CacheExporterRecord, whose links are ignored).
 *
 * Locking: none of its own.  One export owns all its state; the manager, key
 * storage, store and database are thread-safe.  Walks recurse along key chains,
 * so the stack grows with the depth of a chain.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "clock.h"
#include "err.h"
#include "fdio.h"
#include "layer.h"
#include "oci.h"
#include "strbuf.h"
#include "strmap.h"
#include "strv.h"

#define NIL SIZE_MAX

/* ---- CacheChains (docs/export.md §6, §8) ---- */

struct cc_link {
	size_t src;
	char selector[SFS_DIGEST_SIZE];
};

struct cc_input {
	size_t n, cap;
	struct cc_link *v;
};

struct cc_item {
	char digest[SFS_DIGEST_SIZE];
	bool has_result;
	int64_t result_time;
	struct cache_layer layer;
	size_t ninputs;
	struct cc_input *inputs;
};

struct cc {
	size_t n, cap;
	struct cc_item *v;
};

static void cc_release(struct cc *cc)
{
	for (size_t i = 0; i < cc->n; i++) {
		for (size_t j = 0; j < cc->v[i].ninputs; j++)
			free(cc->v[i].inputs[j].v);
		free(cc->v[i].inputs);
	}
	free(cc->v);
	memset(cc, 0, sizeof(*cc));
}

/* Add: a new item per call (normalize merges them later). */
static int cc_add(struct cc *cc, const char *digest, size_t *ret)
{
	int r = sfs_grow((void **)&cc->v, &cc->cap, cc->n + 1, sizeof(*cc->v));

	if (r < 0)
		return r;
	memset(&cc->v[cc->n], 0, sizeof(cc->v[cc->n]));
	sfs_copy_str(cc->v[cc->n].digest, sizeof(cc->v[cc->n].digest), digest);
	*ret = cc->n++;
	return 0;
}

/* AddResult replaces the item's single result. */
static void cc_add_result(struct cc *cc, size_t it, int64_t created_at, const struct cache_layer *l)
{
	cc->v[it].has_result = true;
	cc->v[it].result_time = created_at;
	cc->v[it].layer = *l;
}

/* LinkFrom: adds {src, selector} to the set links[input]; a NIL src is ignored. */
static int cc_link_from(struct cc *cc, size_t it, size_t src, size_t input, const char *selector)
{
	struct cc_item *x;
	struct cc_input *in;

	if (src == NIL || it == NIL)
		return 0;
	x = &cc->v[it];
	if (input >= x->ninputs) {
		struct cc_input *v = reallocarray(x->inputs, input + 1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + x->ninputs, 0, (input + 1 - x->ninputs) * sizeof(*v));
		x->inputs = v;
		x->ninputs = input + 1;
	}
	in = &x->inputs[input];
	for (size_t k = 0; k < in->n; k++)
		if (in->v[k].src == src && strcmp(in->v[k].selector, selector) == 0)
			return 0;
	if (sfs_grow((void **)&in->v, &in->cap, in->n + 1, sizeof(*in->v)) < 0)
		return -ENOMEM;
	in->v[in->n].src = src;
	sfs_copy_str(in->v[in->n].selector, sizeof(in->v[in->n].selector), selector);
	in->n++;
	return 0;
}

/* ---- the walk: exporter.ExportTo (docs/export.md §6) ---- */

/* The records a visited key returned (e.res); NULL while in progress. */
struct ex_res {
	size_t n, cap;
	size_t *v;
};

struct ex {
	struct sfs_cache *c;
	struct cache_manager *cm;
	struct keystore *ks;
	struct cc cc;
	struct strmap visited;		 /* "%p" of a key -> struct ex_res * */
	struct strmap bkm;		 /* key id -> item + 2, or 1 while in progress (nil) */
	const struct strmap *no_results; /* record digests whose vertex says export_cache: false */
	struct strv held;		 /* results held (holds.h) until the layout is written */
	const atomic_bool *stop;	 /* set: the whole-cache export ends (NULL: never) */
	char **ret_msg;
};

static bool stopped(const atomic_bool *stop)
{
	return stop && atomic_load(stop);
}

static void ex_release(struct ex *e)
{
	const char *k;
	void *v;

	for (size_t i = 0; strmap_next(&e->visited, &i, &k, &v);) {
		struct ex_res *res = v;
		if (res)
			free(res->v);
		free(res);
	}
	strmap_release(&e->visited);
	strmap_release(&e->bkm);
	cc_release(&e->cc);
	for (size_t i = 0; i < e->held.n; i++)
		cache_unhold(e->c->holds, e->held.v[i]);
	strv_release(&e->held);
}

static int res_add(struct ex_res *res, size_t it)
{
	if (sfs_grow((void **)&res->v, &res->cap, res->n + 1, sizeof(*res->v)) < 0)
		return -ENOMEM;
	res->v[res->n++] = it;
	return 0;
}

/*
 * The transferable form of rec's result: an existing layer (LoadRemote), or,
 * unless the mode forbids it, one made now (Convert).  *ret_ok is false when
 * there is none; a result gone from the store is none, not an error.
 */
static int ex_remote(struct ex *e, const struct cache_record *rec, enum cache_export_mode mode,
		     struct cache_layer *ret, bool *ret_ok)
{
	char result[SFS_DIGEST_SIZE];
	int r;

	/* held before it is read, so a prune or the GC spares it until the
	 * layout holds its layer (holds.h) */
	*ret_ok = false;
	if ((r = cache_hold(e->c->holds, rec->result)) < 0)
		return r;
	if ((r = strv_push(&e->held, rec->result)) < 0) {
		cache_unhold(e->c->holds, rec->result);
		return r;
	}
	r = cache_layer_get(e->c, rec->result, false, ret);
	*ret_ok = r == 0;
	if (r != -ENOENT || mode == CACHE_EXPORT_REMOTE_ONLY)
		return r == -ENOENT ? 0 : r;
	r = cache_manager_load(e->cm, rec, result, NULL);
	if (r == -ENOENT)
		return 0;
	if (r == 0)
		r = cache_layer_get(e->c, result, true, ret);
	*ret_ok = r == 0;
	if (r < 0)
		return sfs_errf(e->ret_msg, r, "making the layer of result %s: %s", rec->result,
				strerror(-r));
	return 0;
}

/* The best record of k in the manager, if any. */
static int ex_best(struct ex *e, struct cache_key *k, struct cache_record *ret, bool *ret_ok)
{
	struct cache_record *v = NULL;
	size_t n = 0;
	int r = cache_manager_records(e->cm, k, &v, &n);

	*ret_ok = false;
	if (r == 0 && n) {
		*ret = *cache_records_best(v, n);
		*ret_ok = true;
	}
	free(v);
	return r;
}

struct backlink {
	char src[CACHE_ID_SIZE];
	struct cache_link link;
};

struct backlinks {
	size_t n, cap;
	struct backlink *v;
};

static int collect_backlink(const char *src, const struct cache_link *l, void *arg)
{
	struct backlinks *b = arg;

	if (sfs_grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v)) < 0)
		return -ENOMEM;
	sfs_copy_str(b->v[b->n].src, sizeof(b->v[b->n].src), src);
	b->v[b->n].link = *l;
	b->n++;
	return 0;
}

static int stop_walk_backlink(const char *src, const struct cache_link *l, void *arg)
{
	*(bool *)arg = true;
	return 1;
}

static int bkm_put(struct ex *e, const char *id, size_t it)
{
	return strmap_put(&e->bkm, id, (void *)(uintptr_t)(it == NIL ? 1 : it + 2), NULL);
}

/* The memoised record of id: 0 absent, 1 present (*ret may be NIL: in progress). */
static int bkm_get(struct ex *e, const char *id, size_t *ret)
{
	uintptr_t v = (uintptr_t)strmap_get(&e->bkm, id);

	if (!v)
		return 0;
	*ret = v == 1 ? NIL : v - 2;
	return 1;
}

/*
 * The record of a key first met through a backlink.  Its digest is the
 * backlink's rootKey(digest, output), unless the storage knows what the key
 * is a key of (set_info, written whenever the solver saved under it): links
 * the importer wrote are in record-digest form (import.h), whose backlink
 * would hash the record digest a second time.
 */
static int ex_backlink_rec(struct ex *e, const char *id, const struct cache_link *l, size_t *ret)
{
	char dgst[SFS_DIGEST_SIZE], rk[SFS_DIGEST_SIZE];
	int output;

	if (e->ks->ops->get_info && e->ks->ops->get_info(e->ks, id, dgst, &output) == 0) {
		sfs_root_key(dgst, output, rk);
		return cc_add(&e->cc, rk, ret);
	}
	return cc_add(&e->cc, l->digest, ret);
}

/*
 * addBacklinks: every chain persisted in storage that leads to id.  rec is
 * id's record, or NIL to find it by memo or make it: from the first backlink's
 * record digest, or for a key with no backlinks (a root) from its id.
 */
static int ex_backlinks(struct ex *e, size_t rec, const char *id, size_t *ret)
{
	struct backlinks b = {0};
	int r;

	if (rec == NIL && bkm_get(e, id, ret))
		return 0;
	r = bkm_put(e, id, NIL); /* cycle guard */
	if (r == 0)
		r = e->ks->ops->walk_backlinks(e->ks, id, collect_backlink, &b);
	for (size_t i = 0; r == 0 && i < b.n; i++) {
		size_t src = NIL;
		if (rec == NIL)
			r = ex_backlink_rec(e, id, &b.v[i].link, &rec);
		if (r == 0 && !bkm_get(e, b.v[i].src, &src))
			r = ex_backlinks(e, NIL, b.v[i].src, &src);
		if (r == 0)
			r = cc_link_from(&e->cc, rec, src, (size_t)b.v[i].link.input,
					 b.v[i].link.selector);
	}
	free(b.v);
	if (r == 0 && rec == NIL)
		r = cc_add(&e->cc, id, &rec);
	if (r == 0)
		r = bkm_put(e, id, rec);
	if (r == 0)
		*ret = rec;
	return r;
}

struct ids_walk {
	struct ex *e;
	const char *self;
	struct ex_res *res;
};

/* The other cache maps of a root: keys holding the same record. */
static int add_other_root(const char *id, void *arg)
{
	struct ids_walk *w = arg;
	size_t it;
	int r;

	if (strcmp(id, w->self) == 0)
		return 0;
	r = cc_add(&w->e->cc, id, &it);
	return r < 0 ? r : res_add(w->res, it);
}

static int ex_export(struct ex *e, struct cache_key *k, enum cache_export_mode mode,
		     const struct ex_res **ret);

/* Step 7: every alternative of every input, exported and linked from rec. */
static int ex_deps(struct ex *e, struct cache_key *k, size_t rec, enum cache_export_mode mode)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < k->ndeps; i++) {
		for (size_t j = 0; r == 0 && j < k->deps[i].n; j++) {
			const struct cache_key_with_selector *alt = &k->deps[i].v[j];
			const struct ex_res *src = NULL;
			r = ex_export(e, alt->key, mode, &src);
			for (size_t s = 0; r == 0 && src && s < src->n; s++)
				r = cc_link_from(&e->cc, rec, src->v[s], i, alt->selector);
		}
	}
	return r;
}

/* Steps 2-10 for a key not visited before; fills res. */
static int ex_key(struct ex *e, struct cache_key *k, enum cache_export_mode mode,
		  struct ex_res *res)
{
	char dgst[SFS_DIGEST_SIZE];
	struct cache_record best;
	struct cache_layer layer;
	bool have_best, have_layer = false;
	const char *id;
	size_t rec = 0; /* set by cc_add (gcc -O2 cannot see it) */
	int r;

	sfs_root_key(k->digest, k->output, dgst);
	r = cc_add(&e->cc, dgst, &rec);
	if (r == 0)
		r = res_add(res, rec);
	if (r == 0)
		r = ex_best(e, k, &best, &have_best);
	/* Results only for keys with deps: roots never carry one (v0.7.2); and
	 * not for a vertex whose export_cache is false (VertexOptions.ExportCache). */
	bool add = !e->no_results || !strmap_get(e->no_results, dgst);
	if (r == 0 && have_best && k->ndeps > 0 && add)
		r = ex_remote(e, &best, mode, &layer, &have_layer);
	if (r < 0)
		return r;
	if (have_layer) {
		cc_add_result(&e->cc, rec, best.created_at, &layer);
		if (mode == CACHE_EXPORT_MIN)
			mode = CACHE_EXPORT_REMOTE_ONLY;
	}
	r = ex_deps(e, k, rec, mode);
	id = cache_key_id(k, e->cm);
	if (r == 0 && id) {
		size_t ignored;
		r = ex_backlinks(e, rec, id, &ignored);
	}
	if (r == 0 && have_best && k->ndeps == 0 && e->ks->ops->walk_ids_by_result) {
		struct ids_walk w = {e, id ? id : k->root_id, res};
		r = e->ks->ops->walk_ids_by_result(e->ks, best.id, add_other_root, &w);
	}
	return r;
}

static int ex_export(struct ex *e, struct cache_key *k, enum cache_export_mode mode,
		     const struct ex_res **ret)
{
	char name[32];
	struct ex_res *res;
	int r;

	snprintf(name, sizeof(name), "%p", (void *)k);
	res = strmap_get(&e->visited, name);
	if (res) {
		*ret = res; /* e.res: empty while the key is still being exported */
		return 0;
	}
	res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	r = strmap_put(&e->visited, name, res, NULL);
	if (r < 0) {
		free(res);
		return r;
	}
	/* The records are published only once complete, as e.res is. */
	struct ex_res done = {0};
	r = ex_key(e, k, mode, &done);
	if (r == 0) {
		*res = done;
		*ret = res;
	} else {
		free(done.v);
	}
	return r;
}

/* ---- the whole cache: every key of the storage (docs/export.md §12) ---- */

static int push_id(const char *id, void *arg)
{
	return strv_push(arg, id);
}

static int stop_at_first(const struct cache_link *l, const char *target, void *arg)
{
	*(bool *)arg = true;
	return 1;
}

static int note_result(const struct cache_result *res, void *arg)
{
	*(bool *)arg = true;
	return 1;
}

/* Memo of need(): 1 while being computed (a loop counts as no), 2 no, 3 yes. */
struct need_walk {
	struct ex *e;
	struct strmap *memo;
	bool yes;
	int err;
};

static bool ex_need(struct ex *e, struct strmap *memo, const char *id);

/* A target of a link from the key being asked about. */
static int need_target(const struct cache_link *l, const char *target, void *arg)
{
	struct need_walk *w = arg;
	bool has = false;

	if (!ex_need(w->e, w->memo, target))
		return 0;
	w->e->ks->ops->walk_results(w->e->ks, target, note_result, &has);
	if (!has) {
		w->yes = true;
		return 1;
	}
	return 0;
}

/*
 * mode=min over the whole cache: does the key make a layer?  The outputs of
 * the walk are the keys no link leads from (nothing was built on them); a
 * key gets a made layer when it is one, or when some key built on it needs
 * one and has no record of its own: down to the first result on each path
 * from an output, as §7 says for a job.  Without walk_all_links every key
 * needs one (the memory storage: mode min is max there).
 */
static bool ex_need(struct ex *e, struct strmap *memo, const char *id)
{
	uintptr_t v = (uintptr_t)strmap_get(memo, id);
	struct need_walk w = {.e = e, .memo = memo};
	bool any = false;
	int r;

	if (v)
		return v == 3;
	if (strmap_put(memo, id, (void *)(uintptr_t)1, NULL) < 0)
		return true;
	r = keystore_walk_all_links(e->ks, id, stop_at_first, &any);
	if (r == -EOPNOTSUPP || (r >= 0 && !any))
		w.yes = true;
	else if (r >= 0)
		keystore_walk_all_links(e->ks, id, need_target, &w);
	strmap_put(memo, id, (void *)(uintptr_t)(w.yes ? 3 : 2), NULL);
	return w.yes;
}

/* The newest record of key id, as cache_records_best picks it. */
struct best_walk {
	struct cache_record best;
	bool ok;
};

static int pick_best(const struct cache_result *res, void *arg)
{
	struct best_walk *b = arg;

	if (b->ok && res->created_at <= b->best.created_at)
		return 0;
	memset(&b->best, 0, sizeof(b->best));
	sfs_copy_str(b->best.id, sizeof(b->best.id), res->id);
	sfs_copy_str(b->best.result, sizeof(b->best.result), res->result);
	b->best.created_at = res->created_at;
	b->ok = true;
	return 0;
}

/* One key of the storage: its record (with its backlinks' chains) and, when
 * it has inputs, its best record's result as the mode says. */
static int ex_storage_key(struct ex *e, struct strmap *need, const char *id,
			  enum cache_export_mode mode)
{
	struct best_walk b = {0};
	struct cache_layer layer;
	bool have_layer = false;
	size_t rec;
	int r;

	/* a random id nothing links to names no record BuildKit could read */
	if (strncmp(id, "sha256:", 7) && !bkm_get(e, id, &rec)) {
		bool linked = false;
		r = e->ks->ops->walk_backlinks(e->ks, id, stop_walk_backlink, &linked);
		if (r < 0 || !linked)
			return r < 0 ? r : 0;
	}
	r = ex_backlinks(e, NIL, id, &rec);
	if (r < 0 || rec == NIL || e->cc.v[rec].ninputs == 0 || e->cc.v[rec].has_result)
		return r;
	r = e->ks->ops->walk_results(e->ks, id, pick_best, &b);
	if (r < 0 || !b.ok)
		return r;
	b.best.cm = e->cm;
	sfs_copy_str(b.best.key_id, sizeof(b.best.key_id), id);
	if (mode == CACHE_EXPORT_MIN && !ex_need(e, need, id))
		mode = CACHE_EXPORT_REMOTE_ONLY;
	r = ex_remote(e, &b.best, mode, &layer, &have_layer);
	if (r == 0 && have_layer)
		cc_add_result(&e->cc, rec, b.best.created_at, &layer);
	return r;
}

/* Every key id of the storage through ex_storage_key. */
static int ex_storage(struct ex *e, enum cache_export_mode mode)
{
	struct strv ids = {0};
	struct strmap need = STRMAP_INIT;
	int r = e->ks->ops->walk(e->ks, push_id, &ids);

	for (size_t i = 0; r == 0 && i < ids.n; i++)
		r = stopped(e->stop) ? -ECANCELED : ex_storage_key(e, &need, ids.v[i], mode);
	strmap_release(&need);
	strv_release(&ids);
	return r;
}

/* ---- normalize (docs/export.md §8) ---- */

/* The ids (canonical items) some canonical src links to under one nlink. */
struct idxlist {
	size_t n, cap;
	size_t *v;
};

struct norm {
	struct cc *cc;
	size_t *added;		   /* item -> canonical item, or NIL */
	char (*ids)[SFS_HEX_SIZE]; /* canonical item with links -> its tmp id */
	struct strmap by_digest;   /* digest of a link-less item -> item + 1 */
	struct strmap links;	   /* "src input dgst selector" -> struct idxlist * */
	size_t next;
};

static void norm_release(struct norm *s)
{
	const char *k;
	void *v;

	for (size_t i = 0; strmap_next(&s->links, &i, &k, &v);) {
		struct idxlist *l = v;
		free(l->v);
		free(l);
	}
	strmap_release(&s->links);
	strmap_release(&s->by_digest);
	free(s->added);
	free(s->ids);
}

static void nlink_name(char *buf, size_t size, size_t src, size_t input, const char *dgst,
		       const char *selector)
{
	snprintf(buf, size, "%zu %zu %s %s", src, input, dgst, selector);
}

static struct idxlist *norm_links(struct norm *s, size_t src, size_t input, const char *dgst,
				  const char *selector)
{
	char name[64 + 2 * SFS_DIGEST_SIZE];

	nlink_name(name, sizeof(name), src, input, dgst, selector);
	return strmap_get(&s->links, name);
}

static int norm_links_add(struct norm *s, size_t src, size_t input, const char *dgst,
			  const char *selector, size_t id)
{
	char name[64 + 2 * SFS_DIGEST_SIZE];
	struct idxlist *l;

	nlink_name(name, sizeof(name), src, input, dgst, selector);
	l = strmap_get(&s->links, name);
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l || strmap_put(&s->links, name, l, NULL) < 0) {
			free(l);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == id)
			return 0;
	if (sfs_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
		return -ENOMEM;
	l->v[l->n++] = id;
	return 0;
}

static bool idx_in(const struct idxlist *l, size_t id)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (l->v[i] == id)
			return true;
	return false;
}

/* A duplicate keeps nothing of its own but its links; its result is taken only
 * when the canonical item has none (BuildKit v0.7.2 drops it). */
static void norm_take_result(struct cc *cc, size_t canon, size_t dup)
{
	if (canon != dup && !cc->v[canon].has_result && cc->v[dup].has_result)
		cc_add_result(cc, canon, cc->v[dup].result_time, &cc->v[dup].layer);
}

/* added[] of an item whose links are being normalized (a loop if met again) */
#define NORM_BUSY (SIZE_MAX - 1)

static int norm_item(struct norm *s, size_t it, size_t *ret);

/* The canonical items every input of it links to from the same sources
 * (input 0: any link; later inputs: every link), as a list in m. */
static int norm_matches(struct norm *s, size_t it, struct idxlist *m)
{
	struct cc_item *x = &s->cc->v[it];
	int r = 0;

	for (size_t i = 0; r == 0 && i < x->ninputs; i++) {
		if (x->inputs[i].n == 0)
			return sfs_errf(NULL, EINVAL, "invalid incomplete links");
		for (size_t j = 0; r == 0 && j < x->inputs[i].n; j++) {
			size_t src;
			r = norm_item(s, x->inputs[i].v[j].src, &src);
			if (r < 0)
				break;
			struct idxlist *l =
			    norm_links(s, src, i, x->digest, x->inputs[i].v[j].selector);
			if (i == 0) {
				for (size_t k = 0; r == 0 && l && k < l->n; k++)
					if (!idx_in(m, l->v[k]) &&
					    (r = sfs_grow((void **)&m->v, &m->cap, m->n + 1,
							  sizeof(size_t))) == 0)
						m->v[m->n++] = l->v[k];
				continue;
			}
			size_t n = 0;
			for (size_t k = 0; k < m->n; k++)
				if (idx_in(l, m->v[k]))
					m->v[n++] = m->v[k];
			m->n = n;
		}
	}
	return r;
}

/* A fresh canonical item with links: empty link sets, a deterministic tmp id. */
static int norm_new_canonical(struct norm *s, size_t it, struct cc_input **ret_old, size_t *ret_n)
{
	struct cc_item *x = &s->cc->v[it];
	char buf[32];

	snprintf(buf, sizeof(buf), "%zu", ++s->next);
	sfs_sha256_hex(buf, strlen(buf), s->ids[it]);
	*ret_old = x->inputs;
	*ret_n = x->ninputs;
	x->inputs = calloc(x->ninputs, sizeof(*x->inputs));
	return x->inputs ? 0 : -ENOMEM;
}

static int norm_union_links(struct norm *s, size_t canon, const char *dgst,
			    const struct cc_input *in, size_t nin)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < nin; i++) {
		for (size_t j = 0; r == 0 && j < in[i].n; j++) {
			size_t sub;
			r = norm_item(s, in[i].v[j].src, &sub);
			if (r == 0)
				r = cc_link_from(s->cc, canon, sub, i, in[i].v[j].selector);
			if (r == 0)
				r = norm_links_add(s, sub, i, dgst, in[i].v[j].selector, canon);
		}
	}
	return r;
}

static int norm_linked(struct norm *s, size_t it, size_t *ret)
{
	struct idxlist m = {0};
	struct cc_input *links = s->cc->v[it].inputs, *fresh_old = NULL;
	size_t nlinks = s->cc->v[it].ninputs, canon = NIL;
	int r = norm_matches(s, it, &m);

	for (size_t k = 0; r == 0 && k < m.n; k++) /* the smallest tmp id wins */
		if (canon == NIL || strcmp(s->ids[m.v[k]], s->ids[canon]) < 0)
			canon = m.v[k];
	free(m.v);
	if (r == 0 && canon == NIL) {
		canon = it;
		r = norm_new_canonical(s, it, &fresh_old, &nlinks);
		links = fresh_old;
	}
	if (r < 0)
		return r;
	s->added[it] = canon;
	norm_take_result(s->cc, canon, it);
	/* it's own link arrays are still walked (a duplicate keeps them) */
	r = norm_union_links(s, canon, s->cc->v[it].digest, links, nlinks);
	for (size_t i = 0; fresh_old && i < nlinks; i++)
		free(fresh_old[i].v);
	free(fresh_old);
	*ret = canon;
	return r;
}

static int norm_item(struct norm *s, size_t it, size_t *ret)
{
	struct cc_item *x = &s->cc->v[it];
	uintptr_t have;

	if (s->added[it] == NORM_BUSY)
		return sfs_errf(NULL, ELOOP, "invalid looping record");
	if (s->added[it] != NIL) {
		*ret = s->added[it];
		return 0;
	}
	if (x->ninputs > 0) {
		s->added[it] = NORM_BUSY;
		return norm_linked(s, it, ret);
	}
	have = (uintptr_t)strmap_get(&s->by_digest, x->digest);
	if (have) {
		s->added[it] = have - 1;
		norm_take_result(s->cc, have - 1, it);
	} else {
		if (strmap_put(&s->by_digest, x->digest, (void *)(uintptr_t)(it + 1), NULL) < 0)
			return -ENOMEM;
		s->added[it] = it;
	}
	*ret = s->added[it];
	return 0;
}

/* Normalizes cc in place; *ret_canon[i] says whether item i is canonical. */
static int cc_normalize(struct cc *cc, bool **ret_canon)
{
	struct norm s = {.cc = cc, .by_digest = STRMAP_INIT, .links = STRMAP_INIT};
	bool *canon = NULL;
	int r = 0;

	s.added = malloc((cc->n + 1) * sizeof(*s.added));
	s.ids = calloc(cc->n + 1, sizeof(*s.ids));
	canon = calloc(cc->n + 1, sizeof(*canon));
	if (!s.added || !s.ids || !canon)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < cc->n; i++)
		s.added[i] = NIL;
	for (size_t i = 0; r == 0 && i < cc->n; i++) {
		size_t c;
		r = norm_item(&s, i, &c);
	}
	for (size_t i = 0; r == 0 && i < cc->n; i++)
		canon[i] = s.added[i] == i;
	norm_release(&s);
	if (r < 0) {
		free(canon);
		return r;
	}
	*ret_canon = canon;
	return 0;
}

/* ---- marshal and sortConfig (docs/export.md §5, §8) ---- */

struct cfg_layer {
	struct cache_layer l; /* blob, size, diff id */
	int64_t created;      /* earliest record using it: the buildkit/createdat */
};

struct cfg_input {
	size_t link; /* record index */
	const char *selector;
};

struct cfg_links {
	size_t n;
	struct cfg_input *v;
};

struct cfg_record {
	const char *digest;
	size_t ninputs;
	struct cfg_links *inputs;
	bool has_result;
	size_t layer;
	int64_t created;
};

struct cfg {
	size_t nlayers, layers_cap;
	struct cfg_layer *layers;
	size_t nrecs, recs_cap;
	struct cfg_record *recs;
};

static void cfg_release(struct cfg *g)
{
	for (size_t i = 0; i < g->nrecs; i++) {
		for (size_t j = 0; j < g->recs[i].ninputs; j++)
			free(g->recs[i].inputs[j].v);
		free(g->recs[i].inputs);
	}
	free(g->recs);
	free(g->layers);
	memset(g, 0, sizeof(*g));
}

struct marshal {
	struct cc *cc;
	struct cfg *g;
	size_t *rec_by_item;
	struct strmap layer_by_blob; /* blob -> layer + 1 */
};

/* marshalRemote: one descriptor, so one layer with no parent, by blob. */
static int marshal_layer(struct marshal *m, const struct cc_item *x, size_t *ret)
{
	uintptr_t have = (uintptr_t)strmap_get(&m->layer_by_blob, x->layer.blob);
	struct cfg *g = m->g;

	if (have) {
		*ret = have - 1;
		if (x->result_time < g->layers[*ret].created)
			g->layers[*ret].created = x->result_time;
		return 0;
	}
	if (sfs_grow((void **)&g->layers, &g->layers_cap, g->nlayers + 1, sizeof(*g->layers)) < 0 ||
	    strmap_put(&m->layer_by_blob, x->layer.blob, (void *)(uintptr_t)(g->nlayers + 1),
		       NULL) < 0)
		return -ENOMEM;
	g->layers[g->nlayers].l = x->layer;
	g->layers[g->nlayers].created = x->result_time;
	*ret = g->nlayers++;
	return 0;
}

static int marshal_item(struct marshal *m, size_t it)
{
	const struct cc_item *x = &m->cc->v[it];
	struct cfg_record rec = {.digest = x->digest, .ninputs = x->ninputs};
	int r = 0;

	if (m->rec_by_item[it] != NIL)
		return 0;
	if (x->ninputs && !(rec.inputs = calloc(x->ninputs, sizeof(*rec.inputs))))
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < x->ninputs; i++) {
		const struct cc_input *in = &x->inputs[i];
		if (!(rec.inputs[i].v = calloc(in->n + 1, sizeof(*rec.inputs[i].v))))
			r = -ENOMEM;
		for (size_t j = 0; r == 0 && j < in->n; j++) {
			r = marshal_item(m, in->v[j].src);
			rec.inputs[i].v[j].link = m->rec_by_item[in->v[j].src];
			rec.inputs[i].v[j].selector = in->v[j].selector;
			rec.inputs[i].n = j + 1;
		}
	}
	if (r == 0 && x->has_result) {
		rec.has_result = true;
		rec.created = x->result_time;
		r = marshal_layer(m, x, &rec.layer);
	}
	if (r == 0)
		r = sfs_grow((void **)&m->g->recs, &m->g->recs_cap, m->g->nrecs + 1,
			     sizeof(*m->g->recs));
	if (r < 0) {
		for (size_t i = 0; i < rec.ninputs; i++)
			free(rec.inputs[i].v);
		free(rec.inputs);
		return r;
	}
	m->rec_by_item[it] = m->g->nrecs;
	m->g->recs[m->g->nrecs++] = rec;
	return 0;
}

static int cc_marshal(struct cc *cc, const bool *canon, struct cfg *g)
{
	struct marshal m = {.cc = cc, .g = g, .layer_by_blob = STRMAP_INIT};
	int r = 0;

	m.rec_by_item = malloc((cc->n + 1) * sizeof(*m.rec_by_item));
	if (!m.rec_by_item)
		return -ENOMEM;
	for (size_t i = 0; i < cc->n; i++)
		m.rec_by_item[i] = NIL;
	for (size_t i = 0; r == 0 && i < cc->n; i++)
		if (canon[i])
			r = marshal_item(&m, i);
	free(m.rec_by_item);
	strmap_release(&m.layer_by_blob);
	return r;
}

/* sortConfig.  Go's comparator looks at the first link of input 0 only and
 * leaves the rest to an unstable sort; this one refines it (every link of
 * every input, then the result, then marshal order), so the output is one of
 * the orders Go could give, always the same one. */
static int cmp_input(const void *a, const void *b, void *arg)
{
	const struct cfg_input *x = a, *y = b;
	const struct cfg *g = arg;
	int c = strcmp(x->selector, y->selector);

	if (c)
		return c;
	c = strcmp(g->recs[x->link].digest, g->recs[y->link].digest);
	if (c)
		return c;
	return (x->link > y->link) - (x->link < y->link);
}

static int cmp_links(const struct cfg *g, const struct cfg_links *a, const struct cfg_links *b)
{
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (size_t j = 0; j < a->n; j++) {
		int c = strcmp(a->v[j].selector, b->v[j].selector);
		if (c)
			return c;
		c = strcmp(g->recs[a->v[j].link].digest, g->recs[b->v[j].link].digest);
		if (c)
			return c;
	}
	return 0;
}

static int cmp_record(const void *a, const void *b, void *arg)
{
	const struct cfg *g = arg;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	const struct cfg_record *x = &g->recs[ia], *y = &g->recs[ib];
	int c = strcmp(x->digest, y->digest);

	if (c)
		return c;
	if (x->ninputs != y->ninputs)
		return x->ninputs < y->ninputs ? -1 : 1;
	for (size_t i = 0; i < x->ninputs; i++)
		if ((c = cmp_links(g, &x->inputs[i], &y->inputs[i])))
			return c;
	if (x->has_result != y->has_result)
		return x->has_result ? 1 : -1;
	if (x->has_result && (c = strcmp(g->layers[x->layer].l.blob, g->layers[y->layer].l.blob)))
		return c;
	return (ia > ib) - (ia < ib);
}

static int cmp_layer(const void *a, const void *b, void *arg)
{
	const struct cfg *g = arg;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int c = strcmp(g->layers[ia].l.blob, g->layers[ib].l.blob);

	return c ? c : (ia > ib) - (ia < ib);
}

static int cmp_link_index(const void *a, const void *b)
{
	const struct cfg_input *x = a, *y = b;

	if (x->link != y->link)
		return x->link < y->link ? -1 : 1;
	return strcmp(x->selector, y->selector);
}

/* Orders of n indexes by cmp; *ret_new maps old index -> new index. */
static int sort_order(size_t n, int (*cmp)(const void *, const void *, void *), struct cfg *g,
		      size_t **ret_order, size_t **ret_new)
{
	size_t *order = malloc((n + 1) * sizeof(*order)), *new = malloc((n + 1) * sizeof(*new));

	if (!order || !new) {
		free(order);
		free(new);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), cmp, g);
	for (size_t i = 0; i < n; i++)
		new[order[i]] = i;
	*ret_order = order;
	*ret_new = new;
	return 0;
}

static int cfg_sort(struct cfg *g)
{
	size_t *lorder = NULL, *lnew = NULL, *rorder = NULL, *rnew = NULL;
	struct cfg_layer *layers = NULL;
	struct cfg_record *recs = NULL;
	int r;

	/* links within an input in a fixed order before records compare them */
	for (size_t i = 0; i < g->nrecs; i++)
		for (size_t j = 0; j < g->recs[i].ninputs; j++)
			qsort_r(g->recs[i].inputs[j].v, g->recs[i].inputs[j].n,
				sizeof(struct cfg_input), cmp_input, g);
	r = sort_order(g->nlayers, cmp_layer, g, &lorder, &lnew);
	if (r == 0)
		r = sort_order(g->nrecs, cmp_record, g, &rorder, &rnew);
	if (r == 0 && (!(layers = malloc((g->nlayers + 1) * sizeof(*layers))) ||
		       !(recs = malloc((g->nrecs + 1) * sizeof(*recs)))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < g->nlayers; i++)
		layers[i] = g->layers[lorder[i]];
	for (size_t i = 0; r == 0 && i < g->nrecs; i++) {
		struct cfg_record *x = &recs[i];
		*x = g->recs[rorder[i]];
		if (x->has_result)
			x->layer = lnew[x->layer];
		for (size_t j = 0; j < x->ninputs; j++) {
			for (size_t k = 0; k < x->inputs[j].n; k++)
				x->inputs[j].v[k].link = rnew[x->inputs[j].v[k].link];
			qsort(x->inputs[j].v, x->inputs[j].n, sizeof(struct cfg_input),
			      cmp_link_index);
		}
	}
	if (r == 0) {
		free(g->layers);
		free(g->recs);
		g->layers = layers;
		g->recs = recs;
		g->layers_cap = g->nlayers;
		g->recs_cap = g->nrecs;
	} else {
		free(layers);
		free(recs);
	}
	free(lorder);
	free(lnew);
	free(rorder);
	free(rnew);
	return r;
}

/* ---- JSON ---- */

/* The cache config of docs/export.md §5, in Go's field order, compact. */
static void cfg_json(const struct cfg *g, struct strbuf *sb)
{
	char t[SFS_TIME_SIZE];

	strbuf_addch(sb, '{');
	if (g->nlayers) {
		strbuf_addstr(sb, "\"layers\":[");
		for (size_t i = 0; i < g->nlayers; i++) {
			strbuf_addstr(sb, i ? ",{\"blob\":" : "{\"blob\":");
			strbuf_add_json_str(sb, g->layers[i].l.blob);
			strbuf_addstr(sb, ",\"parent\":-1}");
		}
		strbuf_addstr(sb, g->nrecs ? "]," : "]");
	}
	if (g->nrecs)
		strbuf_addstr(sb, "\"records\":[");
	for (size_t i = 0; i < g->nrecs; i++) {
		const struct cfg_record *x = &g->recs[i];
		strbuf_addstr(sb, i ? ",{" : "{");
		if (x->has_result) {
			sfs_format_time_go(x->created, t);
			strbuf_addf(sb, "\"layers\":[{\"layer\":%zu,\"createdAt\":\"%s\"}],",
				    x->layer, t);
		}
		strbuf_addstr(sb, "\"digest\":");
		strbuf_add_json_str(sb, x->digest);
		if (x->ninputs)
			strbuf_addstr(sb, ",\"inputs\":[");
		for (size_t j = 0; j < x->ninputs; j++) {
			strbuf_addstr(sb, j ? ",[" : "[");
			for (size_t k = 0; k < x->inputs[j].n; k++) {
				const struct cfg_input *in = &x->inputs[j].v[k];
				strbuf_addstr(sb, k ? ",{" : "{");
				if (in->selector[0]) {
					strbuf_addstr(sb, "\"selector\":");
					strbuf_add_json_str(sb, in->selector);
					strbuf_addch(sb, ',');
				}
				strbuf_addf(sb, "\"link\":%zu}", in->link);
			}
			strbuf_addch(sb, ']');
		}
		strbuf_addstr(sb, x->ninputs ? "]}" : "}");
	}
	strbuf_addstr(sb, g->nrecs ? "]}" : "}");
}

/* The walk, normalize, marshal and sort: the config of keys, and with all of
 * every key of the storage (the whole cache). */
static int export_cfg(struct sfs_cache *c, struct cache_manager *cm, struct cache_key *const *keys,
		      size_t nkeys, bool all, enum cache_export_mode mode, struct ex *e,
		      struct cfg *g, char **ret_msg)
{
	bool *canon = NULL;
	int r = 0;

	e->c = c;
	e->cm = cm;
	e->ks = cache_manager_keystore(cm);
	e->ret_msg = ret_msg;
	for (size_t i = 0; r == 0 && i < nkeys; i++) {
		const struct ex_res *res;
		if (keys[i])
			r = ex_export(e, keys[i], mode, &res);
	}
	if (r == 0 && all)
		r = ex_storage(e, mode);
	if (r == -ECANCELED)
		return sfs_errf(ret_msg, r, "cache export: stopped by the unmount");
	if (r < 0)
		return sfs_errf(ret_msg, r, "cache export: %s", strerror(-r));
	r = cc_normalize(&e->cc, &canon);
	if (r == 0)
		r = cc_marshal(&e->cc, canon, g);
	if (r == 0)
		r = cfg_sort(g);
	free(canon);
	if (r < 0)
		return sfs_errf(ret_msg, r, "cache export: %s",
				r == -ELOOP    ? "invalid looping record"
				: r == -EINVAL ? "invalid incomplete links"
					       : strerror(-r));
	return 0;
}

int cache_export_config(struct sfs_cache *c, struct cache_manager *cm,
			struct cache_key *const *keys, size_t nkeys, enum cache_export_mode mode,
			char **ret_json, char **ret_msg)
{
	struct ex e = {.visited = STRMAP_INIT, .bkm = STRMAP_INIT};
	struct strbuf sb = STRBUF_INIT;
	struct cfg g = {0};
	int r = export_cfg(c, cm, keys, nkeys, false, mode, &e, &g, ret_msg);

	if (r == 0) {
		cfg_json(&g, &sb);
		if (sb.oom)
			r = sfs_errf(ret_msg, ENOMEM, "cache export: out of memory");
	}
	if (r == 0)
		*ret_json = strbuf_detach(&sb, NULL);
	strbuf_release(&sb);
	cfg_release(&g);
	ex_release(&e);
	return r;
}

/* ---- the OCI layout (docs/export.md §2, §3) ---- */

static int write_file(const char *path, const void *buf, size_t len, unsigned mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int r;

	if (fd < 0)
		return -errno;
	r = sfs_write_all(fd, buf, len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Writes a blob under tmp/blobs/sha256 and describes it. */
static int put_blob(const char *tmp, const char *buf, size_t len, struct oci_desc *ret)
{
	char rel[OCI_BLOB_PATH_SIZE], path[4096];

	sfs_sha256_digest(buf, len, ret->digest);
	ret->size = len;
	oci_blob_path(ret->digest, rel);
	if (snprintf(path, sizeof(path), "%s/%s", tmp, rel) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return write_file(path, buf, len, 0444);
}

/* A layer descriptor as the worker gives it (annotations sorted by key, as Go does). */
static void layer_desc_json(struct strbuf *sb, const char *mt, const struct cfg_layer *l)
{
	char t[SFS_TIME_SIZE];

	sfs_format_time_go(l->created, t);
	oci_desc_json_open(sb, mt, l->l.blob, l->l.size);
	strbuf_addf(sb,
		    ",\"annotations\":{\"buildkit/createdat\":\"%s\","
		    "\"containerd.io/uncompressed\":",
		    t);
	strbuf_add_json_str(sb, l->l.diff_id);
	strbuf_addstr(sb, "}}");
}

static void manifest_json(struct strbuf *sb, const struct cfg *g, enum cache_export_form form,
			  const struct oci_desc *config)
{
	bool image = form == CACHE_EXPORT_IMAGE;
	const char *lmt = image ? OCI_MT_LAYER : OCI_MT_DOCKER_LAYER;

	strbuf_addf(sb, "{\"schemaVersion\":2,\"mediaType\":\"%s\",",
		    image ? OCI_MT_MANIFEST : OCI_MT_DOCKER_LIST);
	if (image) {
		strbuf_addstr(sb, "\"config\":");
		oci_desc_json_open(sb, OCI_MT_CACHECONFIG, config->digest, config->size);
		strbuf_addstr(sb, "},\"layers\":[");
	} else {
		strbuf_addstr(sb, "\"manifests\":[");
	}
	for (size_t i = 0; i < g->nlayers; i++) {
		if (i)
			strbuf_addch(sb, ',');
		layer_desc_json(sb, lmt, &g->layers[i]);
	}
	if (!image) { /* the config last, as remotecache.Finalize appends it */
		if (g->nlayers)
			strbuf_addch(sb, ',');
		oci_desc_json_open(sb, OCI_MT_CACHECONFIG, config->digest, config->size);
		strbuf_addch(sb, '}');
	}
	strbuf_addstr(sb, "]}");
}

static void index_json(struct strbuf *sb, enum cache_export_form form, const struct oci_desc *m)
{
	strbuf_addstr(sb,
		      "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_INDEX "\",\"manifests\":[");
	oci_desc_json_open(sb, form == CACHE_EXPORT_IMAGE ? OCI_MT_MANIFEST : OCI_MT_DOCKER_LIST,
			   m->digest, m->size);
	strbuf_addstr(sb, ",\"annotations\":{\"" OCI_REF_NAME "\":\"latest\"}}]}");
}

static int copy_layers(struct sfs_cache *c, const struct cfg *g, const char *tmp,
		       const atomic_bool *stop)
{
	char rel[OCI_BLOB_PATH_SIZE], path[4096];
	int r = 0;

	for (size_t i = 0; r == 0 && i < g->nlayers; i++) {
		if (stopped(stop))
			return -ECANCELED;
		oci_blob_path(g->layers[i].l.blob, rel);
		if (snprintf(path, sizeof(path), "%s/%s", tmp, rel) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		r = cas_copy_out(c->cas, g->layers[i].l.blob + 7, path, 0444);
	}
	return r;
}

static int mkdirs(const char *tmp)
{
	char path[4096];

	if (mkdir(tmp, 0755) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/blobs", tmp);
	if (mkdir(path, 0755) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/blobs/sha256", tmp);
	return mkdir(path, 0755) < 0 ? -errno : 0;
}

/* Config, manifest, index.json and oci-layout into tmp. */
static int write_meta(const struct cfg *g, enum cache_export_form form, const char *tmp,
		      struct oci_desc *ret_manifest)
{
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	struct strbuf sb = STRBUF_INIT;
	struct oci_desc config, manifest;
	char path[4096];
	int r;

	cfg_json(g, &sb);
	r = sb.oom ? -ENOMEM : put_blob(tmp, sb.buf, sb.len, &config);
	strbuf_reset(&sb);
	if (r == 0)
		manifest_json(&sb, g, form, &config);
	if (r == 0)
		r = sb.oom ? -ENOMEM : put_blob(tmp, sb.buf, sb.len, &manifest);
	strbuf_reset(&sb);
	if (r == 0)
		index_json(&sb, form, &manifest);
	if (r == 0 && sb.oom)
		r = -ENOMEM;
	if (r == 0 && ret_manifest)
		*ret_manifest = manifest;
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/index.json", tmp);
		r = write_file(path, sb.buf, sb.len, 0644);
	}
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/oci-layout", tmp);
		r = write_file(path, layout, sizeof(layout) - 1, 0644);
	}
	strbuf_release(&sb);
	return r;
}

static int write_layout(struct sfs_cache *c, const struct cfg *g, enum cache_export_form form,
			const char *dir, const atomic_bool *stop, struct oci_desc *ret_manifest,
			char **ret_msg)
{
	struct stat st;
	char *tmp = NULL;
	int r;

	if (lstat(dir, &st) == 0)
		return sfs_errf(ret_msg, EEXIST, "cache export: %s already exists", dir);
	if (asprintf(&tmp, "%s.tmp", dir) < 0)
		return -ENOMEM;
	if (strlen(tmp) > 3000) {
		free(tmp);
		return sfs_errf(ret_msg, ENAMETOOLONG, "cache export: %s: path too long", dir);
	}
	if (lstat(tmp, &st) == 0)
		cas_rmtree(tmp); /* left by an export that died */
	r = mkdirs(tmp);
	if (r == 0)
		r = copy_layers(c, g, tmp, stop);
	if (r == 0)
		r = write_meta(g, form, tmp, ret_manifest);
	if (r == 0 && rename(tmp, dir) < 0)
		r = -errno;
	if (r < 0) {
		cas_rmtree(tmp);
		r = sfs_errf(ret_msg, r, "cache export to %s: %s", dir,
			     r == -ECANCELED ? "stopped by the unmount" : strerror(-r));
	}
	free(tmp);
	return r;
}

int cache_export(struct sfs_cache *c, struct cache_manager *cm, struct cache_key *const *keys,
		 size_t nkeys, enum cache_export_mode mode, enum cache_export_form form,
		 const char *dir, char **ret_msg)
{
	return cache_export_except(c, cm, keys, nkeys, mode, form, NULL, dir, ret_msg);
}

int cache_export_except(struct sfs_cache *c, struct cache_manager *cm,
			struct cache_key *const *keys, size_t nkeys, enum cache_export_mode mode,
			enum cache_export_form form, const struct strmap *no_results,
			const char *dir, char **ret_msg)
{
	struct ex e = {.visited = STRMAP_INIT, .bkm = STRMAP_INIT, .no_results = no_results};
	struct cfg g = {0};
	int r = export_cfg(c, cm, keys, nkeys, false, mode, &e, &g, ret_msg);

	if (r == 0)
		r = write_layout(c, &g, form, dir, NULL, NULL, ret_msg);
	cfg_release(&g);
	ex_release(&e);
	return r;
}

int cache_export_all(struct sfs_cache *c, struct cache_manager *cm, enum cache_export_mode mode,
		     enum cache_export_form form, const char *dir, const atomic_bool *stop,
		     char ret_manifest[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct ex e = {.visited = STRMAP_INIT, .bkm = STRMAP_INIT, .stop = stop};
	struct oci_desc manifest;
	struct cfg g = {0};
	int r = export_cfg(c, cm, NULL, 0, true, mode, &e, &g, ret_msg);

	if (r == 0)
		r = write_layout(c, &g, form, dir, stop, &manifest, ret_msg);
	if (r == 0)
		sfs_copy_str(ret_manifest, SFS_DIGEST_SIZE, manifest.digest);
	cfg_release(&g);
	ex_release(&e);
	return r;
}
