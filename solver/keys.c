/*
 * keys.c — the keys of a vertex, found before anything is loaded or run
 * (docs/semantics.md §1.5 steps 1-4, §1.9).
 *
 * Once every input knows its keys, one KEYS task fetches the vertex's cache
 * map(s) and queries the cache for every output: a root looks up
 * rootKey(map digest, output), map after map until records are found or the op
 * says the maps are done; any other vertex asks, input by input, which keys of
 * its op that input's keys lead to (matches[]), and keeps the keys every input
 * leads to, and whether each has a loadable record (LOAD fetches the records,
 * solver/run.c).  So a fully cached graph calls CacheMap on every vertex and
 * loads one record, and inputs of a hit are never completed.
 *
 * The task works without the lock on what is stable by then (the inputs' keys,
 * the vertex's own maps and matches) and takes it to publish what it found.
 *
 * A cache key's computation starts here and spans these files; read them in
 * this order (functions named so they can be found if a file moves):
 *   1. solver/spec.c (finish_vertex, make_selectors, cache_map_digest) over
 *      solver/canon.c: at parse time, a vertex's digest is the sha256 of its
 *      op's canonical bytes, its cache map digest that of the same bytes with
 *      each input replaced by its index and what does not count left out, and
 *      each input gets its selector digest.
 *   2. solver/op.c (sfs_op_cache_map, sfs_op_default_cache_map) and an op's
 *      own cache_map (solver/ops/local.c: metadata, then content): the map or
 *      maps this file's KEYS task fetches (sfs_fetch_map).
 *   3. this file: a root's key is rootKey(map digest, output) (cache_key_new
 *      in cache/manager.c, sfs_root_key in cache/sha256.c); any other vertex's
 *      keys are those of its map that every input's keys lead to
 *      (query_deps, sfs_intersect; cache_combined_query in cache/combined.c,
 *      over cache_manager_query in cache/manager.c), rebuilt with the inputs'
 *      keys of now as deps (merged_key).
 *   4. solver/rounds.c (content_key, probe_slow): content keys, from the op's
 *      content digest (sfs_op_content_digest, sfs_op_default_content_digest in
 *      solver/op.c: the result id, or the digest of the selected paths),
 *      probed like definition keys and linked for carry-over.
 *   5. solver/edgeindex.c (sig_of): the merge signature of an active edge,
 *      from its map digest and its inputs' edges.
 *   6. solver/run.c (commit_key, save_output, alias_keys): the keys a result
 *      is saved under: the map digest with each input's result keys and
 *      content key as deps; a root under every map it fetched.
 *   7. cache/manager.c (cache_manager_save) and the key storage
 *      (cache/keystore.h, cache/keystore_sqlite.c): how keys, their links and
 *      records are stored and found again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "internal.h"

/* A key's identity across the managers of cc: its id in the first one that knows it. */
const char *sfs_key_ident(const struct cache_combined *cc, struct cache_key *k)
{
	const char *id = cache_key_id(k, cc->main);
	for (size_t i = 0; !id && i < cc->nextra; i++)
		id = cache_key_id(k, cc->extra[i]);
	return id;
}

static void vertex_keys_ready(struct sfs_solver *s, struct vstate *vs)
{
	sfs_vstate_set_phase(vs, VSTATE_KEYED);
	struct waiters w = vs->key_waiters;
	memset(&vs->key_waiters, 0, sizeof(vs->key_waiters));
	for (size_t i = 0; i < w.n; i++) {
		struct vstate *p = w.w[i].vs;
		if (p->phase == VSTATE_WAIT_KEYS && !p->released && --p->inputs_pending == 0) {
			sfs_vstate_set_phase(p, VSTATE_KEYING);
			sfs_queue_task(s, TASK_KEYS, p, NULL);
		}
	}
	sfs_waiters_release(&w);
	sfs_index_register(s, vs);
	for (size_t o = 0; o < vs->nedges; o++)
		sfs_edge_proceed(s, &vs->edges[o]);
}

void sfs_keys_found_release(struct keys_found *k)
{
	for (size_t i = 0; i < k->nkeys; i++)
		cache_key_unref(k->keys[i]);
	free(k->keys);
	free(k->records);
	memset(k, 0, sizeof(*k));
}

/* A record whose load failed on edge arg (never tried again). */
static bool record_is_bad(const char *id, void *arg)
{
	const struct edge *e = arg;
	for (size_t i = 0; i < e->nbad; i++)
		if (strcmp(e->bad[i], id) == 0)
			return true;
	return false;
}

int sfs_key_records(const struct cache_combined *cc, const struct edge *e, struct cache_key *k,
		    struct cache_record **v, size_t *n)
{
	struct cache_record *recs = NULL;
	size_t nr = 0;
	int r = cache_combined_records(cc, k, &recs, &nr);
	if (r == -ENOENT) /* a key no manager has an id for: no records */
		return 0;
	struct cache_record *nv = r == 0 && nr ? realloc(*v, (*n + nr) * sizeof(*nv)) : *v;
	if (r == 0 && !nv)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < nr; i++)
		if (!e || !record_is_bad(recs[i].id, (void *)e))
			nv[(*n)++] = recs[i];
	if (nv)
		*v = nv;
	free(recs);
	return r;
}

/*
 * Adds k to kf, noting whether it has a loadable record (not one of e->bad
 * when e is not NULL): only whether, until kf->fetched asks for the records
 * themselves.
 */
static int keys_found_add(const struct cache_combined *cc, struct keys_found *kf,
			  const struct edge *e, struct cache_key *k)
{
	size_t before = kf->nrecords;
	int r = kf->fetched ? sfs_key_records(cc, e, k, &kf->records, &kf->nrecords)
			    : cache_combined_has_records(cc, k, e ? record_is_bad : NULL, (void *)e);
	if (r == -ENOENT) /* a key no manager has an id for: no records */
		r = 0;
	if (r < 0)
		return r;
	bool loadable = kf->fetched ? kf->nrecords > before : r > 0;
	/* exact sizes: a cached graph's edges keep these until they are done */
	struct cache_key **nk = realloc(kf->keys, (kf->nkeys + 1) * sizeof(*nk));
	if (!nk) {
		kf->nrecords = before;
		return -ENOMEM;
	}
	kf->keys = nk;
	kf->keys[kf->nkeys++] = cache_key_ref(k);
	kf->nloadable += loadable;
	return 0;
}

/* The records of every key of kf so far, from now on kept with each key added. */
static int keys_found_fetch(const struct cache_combined *cc, struct keys_found *kf,
			    const struct edge *e)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < kf->nkeys; i++)
		r = sfs_key_records(cc, e, kf->keys[i], &kf->records, &kf->nrecords);
	kf->fetched = r == 0;
	return r;
}

/* Root: the key of output o under one cache map. */
static int query_root(const struct cache_combined *cc, const struct sfs_cache_map *m, int o,
		      struct keys_found *kf)
{
	struct cache_key **found = NULL;
	size_t n = 0;
	int r = cache_combined_query(cc, NULL, 0, 0, m->digest, o, &found, &n);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = keys_found_add(cc, kf, NULL, found[i]);
		cache_key_unref(found[i]);
	}
	free(found);
	return r;
}

int sfs_keyset_add(struct keyset *ks, const struct cache_combined *cc, struct cache_key *k)
{
	if (sfs_keyset_has(cc, ks, k))
		return 0;
	struct cache_key **n = realloc(ks->k, (ks->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ks->k = n;
	ks->k[ks->n++] = cache_key_ref(k);
	return 0;
}

void sfs_keyset_release(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		cache_key_unref(ks->k[i]);
	free(ks->k);
	memset(ks, 0, sizeof(*ks));
}

bool sfs_keyset_has(const struct cache_combined *cc, const struct keyset *ks, struct cache_key *k)
{
	const char *id = sfs_key_ident(cc, k);
	for (size_t i = 0; id && i < ks->n; i++) {
		const char *o = sfs_key_ident(cc, ks->k[i]);
		if (o && strcmp(o, id) == 0)
			return true;
	}
	return false;
}

/* Queries the keys of output o reachable from alternatives of input i, into out. */
int sfs_query_into(const struct cache_combined *cc, const struct cache_key_with_selector *alts,
		   size_t n, size_t i, const struct sfs_cache_map *m, int o, struct keyset *out)
{
	struct cache_key **found = NULL;
	size_t nfound = 0;
	int r = n ? cache_combined_query(cc, alts, n, (int)i, m->digest, o, &found, &nfound) : 0;
	for (size_t k = 0; k < nfound; k++) {
		if (r == 0 && out)
			r = sfs_keyset_add(out, cc, found[k]);
		cache_key_unref(found[k]);
	}
	free(found);
	return r;
}

/* §1.5 step 3: keys of output o reachable from input i's definition keys. */
static int probe_input(const struct cache_combined *cc, struct vstate *vs,
		       const struct sfs_cache_map *m, int o, size_t i, struct keyset *out)
{
	struct edge *ie = sfs_input_edge(vs, i);
	struct cache_key_with_selector alts[ie->nkeys + 1];
	for (size_t a = 0; a < ie->nkeys; a++) {
		memcpy(alts[a].selector, m->deps[i].selector, SFS_DIGEST_SIZE);
		alts[a].key = ie->keys[a];
	}
	return sfs_query_into(cc, alts, ie->nkeys, i, m, o, out);
}

/*
 * The key a query found, rebuilt with the keys its inputs have now as deps
 * (BuildKit's mergedKey), so what is loaded through it can be exported with
 * its chain.  deps[i] are extra alternatives of input i besides its definition
 * keys (content keys, loaded result keys), or NULL.
 */
static struct cache_key *merged_key(const struct cache_combined *cc, struct edge *e,
				    const struct keyset *deps, struct cache_key *found)
{
	struct vstate *vs = e->vs;
	const struct sfs_cache_map *m = &vs->maps[0];
	const char *id = sfs_key_ident(cc, found);
	struct cache_key *k =
	    id ? cache_key_new(found->digest, found->output, vs->v->ninputs) : NULL;
	int r = k ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < vs->v->ninputs; i++) {
		const struct edge *ie = sfs_input_edge(vs, i);
		for (size_t a = 0; r == 0 && a < ie->nkeys; a++)
			r = cache_key_add_dep(k, i, m->deps[i].selector, ie->keys[a]);
		for (size_t a = 0; r == 0 && deps && a < deps[i].n; a++) {
			bool content = deps[i].k[a]->output == -1;
			r = cache_key_add_dep(k, i, content ? "" : m->deps[i].selector,
					      deps[i].k[a]);
		}
	}
	if (r == 0)
		r = cache_combined_copy_ids(cc, k, found);
	if (r < 0) {
		cache_key_unref(k);
		return cache_key_ref(found);
	}
	return k;
}

/*
 * Do the records of the key just added (from index `from` on) all name results
 * that the keys found before it already give?  Then it adds nothing to load,
 * and is dropped: where many vertices converge on equal content, every one of
 * them saved the same result under a key of its own, and keeping them all made
 * each layer find every key of the one before (a lattice of 100 wide grew by
 * megabytes a vertex after its content converged).  Only asked once a key
 * before it has a record (kf->fetched): until then nothing can be known.
 */
static bool results_known(const struct keys_found *kf, size_t from)
{
	for (size_t j = from; j < kf->nrecords; j++) {
		bool seen = false;
		for (size_t i = 0; i < from && !seen; i++)
			seen = strcmp(kf->records[i].result, kf->records[j].result) == 0;
		if (!seen)
			return false;
	}
	return true;
}

int sfs_intersect(const struct cache_combined *cc, struct edge *e, size_t ninputs,
		  const struct keyset *known, const struct keyset *deps, struct keys_found *kf)
{
	if (ninputs == 0)
		return 0;
	kf->ncandidates += e->matches[0].n;
	for (size_t k = 0; k < e->matches[0].n; k++) {
		struct cache_key *key = e->matches[0].k[k];
		bool all = true;
		for (size_t i = 1; i < ninputs && all; i++)
			all = sfs_keyset_has(cc, &e->matches[i], key);
		if (!all || (known && sfs_keyset_has(cc, known, key)))
			continue;
		int r = kf->nloadable && !kf->fetched ? keys_found_fetch(cc, kf, e) : 0;
		size_t before = kf->nrecords;
		struct cache_key *mk = merged_key(cc, e, deps, key);
		if (r == 0)
			r = keys_found_add(cc, kf, e, mk);
		cache_key_unref(mk);
		if (r < 0)
			return r;
		if (kf->nrecords > before && results_known(kf, before)) {
			kf->nrecords = before;
			kf->nloadable--;
			cache_key_unref(kf->keys[--kf->nkeys]);
		}
	}
	return 0;
}

/* Non-root keying of output o: probe every input, keep what all of them reach. */
static int query_deps(const struct cache_combined *cc, struct vstate *vs,
		      const struct sfs_cache_map *m, int o, struct keys_found *kf)
{
	struct edge *e = &vs->edges[o];
	size_t ni = vs->v->ninputs;
	int r = 0;
	if (!e->matches && !(e->matches = calloc(ni, sizeof(*e->matches))))
		return -ENOMEM;
	for (size_t i = 0; i < ni && r == 0; i++)
		r = probe_input(cc, vs, m, o, i, &e->matches[i]);
	return r < 0 ? r : sfs_intersect(cc, e, ni, NULL, NULL, kf);
}

static int append_map(struct vstate *vs, struct sfs_cache_map *m)
{
	struct sfs_cache_map *n = realloc(vs->maps, (vs->nmaps + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	vs->maps = n;
	vs->maps[vs->nmaps++] = *m;
	return 0;
}

/* Fetches the next cache map of vs (the task owns vs->maps while keying/executing). */
int sfs_fetch_map(struct vstate *vs, char **ret_msg)
{
	struct sfs_cache_map m = {0};
	bool done = true;
	struct sfs_op_ctx ctx;
	sfs_vstate_op_ctx(vs, &ctx);
	int r = sfs_op_cache_map(vs->op, &ctx, (int)vs->nmaps, &m, &done, ret_msg);
	sfs_solver_lock(vs->s);
	vs->s->stats.cache_maps++;
	sfs_solver_unlock(vs->s);
	if (r < 0)
		return r;
	if (vs->v->ninputs && m.ndeps != vs->v->ninputs) {
		sfs_cache_map_release(&m);
		return sfs_errf(ret_msg, -EINVAL, "cache map has %zu deps for %zu inputs", m.ndeps,
				vs->v->ninputs);
	}
	if (vs->v->ninputs)
		done = true; /* only roots may return several maps */
	r = append_map(vs, &m);
	if (r < 0) {
		sfs_cache_map_release(&m);
		return r;
	}
	vs->maps_done = done;
	return 0;
}

/* Queries every map fetched so far again, into fresh kf (no lock held). */
static int requery(const struct cache_combined *cc, struct vstate *vs, bool root,
		   struct keys_found *kf, bool *any, char **ret_msg)
{
	int r = 0;
	for (size_t o = 0; o < vs->nedges; o++)
		sfs_keys_found_release(&kf[o]);
	for (size_t i = 0; i < vs->nmaps && r == 0; i++)
		for (size_t o = 0; o < vs->nedges && r == 0; o++) {
			r = root ? query_root(cc, &vs->maps[i], (int)o, &kf[o])
				 : query_deps(cc, vs, &vs->maps[i], (int)o, &kf[o]);
			*any |= kf[o].nloadable > 0;
		}
	if (r < 0)
		sfs_errf(ret_msg, r, "cache lookup failed");
	return r;
}

void sfs_run_keys(struct sfs_solver *s, struct vstate *vs)
{
	const struct cache_combined *cc = &vs->cc;
	size_t ne = vs->nedges;
	struct keys_found kf[ne ? ne : 1];
	char *msg = NULL;
	int r = 0;
	bool root = vs->v->ninputs == 0;
	/* BuildKit reports a root's CacheMap as progress; only `local` (it reads
	 * the host) and `image` (it resolves its reference) do real work there,
	 * so only they show DONE in a cached build */
	bool report = root && (vs->v->kind == SFS_OP_LOCAL || vs->v->kind == SFS_OP_IMAGE);

	memset(kf, 0, sizeof(kf));
	if (report) {
		sfs_solver_lock(s);
		sfs_vstate_progress_started(vs, false);
		sfs_solver_unlock(s);
		sfs_solver_flush_notify(s);
	}
	bool any = false;
	uint_fast64_t saves = atomic_load(&s->saves);
	while (r == 0 && !any && !(vs->nmaps && vs->maps_done)) {
		if (atomic_load(&vs->sig.cancelled)) {
			r = -ECANCELED;
			break;
		}
		r = sfs_fetch_map(vs, &msg);
		if (r < 0 || vs->ignore_cache)
			continue;
		const struct sfs_cache_map *m = &vs->maps[vs->nmaps - 1];
		for (size_t o = 0; o < ne && r == 0; o++) {
			r = root ? query_root(cc, m, (int)o, &kf[o])
				 : query_deps(cc, vs, m, (int)o, &kf[o]);
			any |= kf[o].nloadable > 0;
		}
		if (r < 0)
			sfs_errf(&msg, r, "cache lookup failed");
	}

	sfs_solver_lock(s);
	/* An equal edge may have saved its result and left the index since the
	 * query: merging finds it no more, so the query must see its record
	 * (BuildKit: merged edges execute once). */
	while (r == 0 && !any && !vs->ignore_cache && atomic_load(&s->saves) != saves) {
		saves = atomic_load(&s->saves);
		sfs_solver_unlock(s);
		r = requery(cc, vs, root, kf, &any, &msg);
		sfs_solver_lock(s);
	}
	bool failed = r < 0 && r != -ECANCELED;
	if (report || failed)
		sfs_vstate_progress_completed(vs, false, failed ? msg : NULL);
	if (r < 0) {
		struct sfs_failure *f = sfs_failure_new(r, vs->v->digest, msg);
		if (f)
			sfs_vstate_fail(s, vs, f);
		sfs_failure_unref(f);
	} else {
		for (size_t o = 0; o < ne; o++) {
			s->stats.keys_found += kf[o].nkeys;
			s->stats.key_candidates += kf[o].ncandidates;
			vs->edges[o].keys = kf[o].keys;
			vs->edges[o].nkeys = kf[o].nkeys;
			vs->edges[o].loadable = kf[o].nloadable > 0;
			/* an edge with records loads one; only the rounds of an edge
			 * without (a failed load's fall-back) weigh matches, and they
			 * query again without them: a cached graph does not keep the
			 * keys its inputs led to, a few hundred bytes a vertex */
			if (kf[o].nloadable)
				sfs_edge_drop_matches(&vs->edges[o]);
			kf[o].keys = NULL;
			kf[o].nkeys = 0;
		}
		vertex_keys_ready(s, vs);
	}
	sfs_solver_unlock(s);
	for (size_t o = 0; o < ne; o++)
		sfs_keys_found_release(&kf[o]);
	free(msg);
}
