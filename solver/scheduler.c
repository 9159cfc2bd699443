/*
 * scheduler.c — how an edge gets its result (SEMANTICS.md §1.5), on worker threads.
 *
 * Each active vertex goes through:
 *   keys:  once every input knows its keys, one KEYS task fetches the cache
 *          map(s) and queries the cache for every output: roots look up
 *          rootKey(map, output) (map after map, until records are found or the
 *          op says the maps are done); other vertices query with the keys their
 *          inputs found and keep the keys every input leads to, and their records;
 *   load:  an edge someone wants and that has records loads the best one (a LOAD
 *          task); a failed load drops that record and tries the next;
 *   exec:  otherwise every input is completed, then one EXEC task runs the op for
 *          all outputs and saves each output under its commit key(s).
 * So a fully cached graph calls CacheMap on every vertex and loads one record,
 * and inputs of a hit are never completed.
 *
 * Tasks are "light" (queries, loads) or "heavy" (op calls that read files or run
 * processes): heavy tasks run on `workers` threads, light ones on two more, so
 * cache lookups are never stuck behind long execs.
 *
 * Locking: sfs_solver.lock guards all state; tasks drop it while they work.
 * Everything a task reads without the lock is immutable by then (the keys of
 * keyed inputs, the results of completed edges, the vertex's own maps).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cache/err.h"
#include "internal.h"

enum task_kind { TASK_KEYS, TASK_LOAD, TASK_SLOW, TASK_EXEC, TASK_FINISH };

struct task {
	struct task *next;
	enum task_kind kind;
	struct vstate *vs; /* reference */
	struct edge *e;    /* LOAD */
};

static void vertex_fail(struct sfs_solver *s, struct vstate *vs, struct sfs_failure *f);
static void vertex_request_exec(struct sfs_solver *s, struct vstate *vs);
static void round_inputs_done(struct sfs_solver *s, struct vstate *vs);
static void input_discovered(struct sfs_solver *s, struct vstate *parent, struct edge *e);
static void edge_request(struct sfs_solver *s, struct edge *e, enum waiter_kind kind,
			 struct sfs_job *job, size_t out, struct vstate *vs);

/* --- failures ------------------------------------------------------------ */

struct sfs_failure *sfs_failure_new(int err, const char *digest, const char *msg)
{
	struct sfs_failure *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->refs = 1;
	f->err = err;
	snprintf(f->digest, sizeof(f->digest), "%s", digest);
	f->msg = strdup(msg ? msg : strerror(-err));
	return f;
}

struct sfs_failure *sfs_failure_ref(struct sfs_failure *f)
{
	if (f)
		f->refs++;
	return f;
}

struct sfs_failure *sfs_failure_unref(struct sfs_failure *f)
{
	if (f && --f->refs == 0) {
		free(f->msg);
		free(f);
	}
	return NULL;
}

/* --- the task queues ----------------------------------------------------- */

static bool task_is_heavy(const struct task *t)
{
	if (t->kind == TASK_EXEC)
		return true;
	return t->kind == TASK_KEYS && t->vs->v->ninputs == 0;
}

static void queue_task(struct sfs_solver *s, enum task_kind kind, struct vstate *vs, struct edge *e)
{
	if (vs->released)
		return; /* cancelled: nobody waits for it any more */
	struct task *t = calloc(1, sizeof(*t));
	if (!t) {
		struct sfs_failure *f = sfs_failure_new(-ENOMEM, vs->v->digest, "out of memory");
		vertex_fail(s, vs, f);
		sfs_failure_unref(f);
		return;
	}
	t->kind = kind;
	t->vs = vstate_ref(vs);
	t->e = e;
	struct task **head = task_is_heavy(t) ? &s->heavy_head : &s->light_head;
	struct task **tail = task_is_heavy(t) ? &s->heavy_tail : &s->light_tail;
	if (*tail)
		(*tail)->next = t;
	else
		*head = t;
	*tail = t;
	pthread_cond_broadcast(&s->cond);
}

/* --- delivering results ---------------------------------------------------- */

static void input_discovered(struct sfs_solver *s, struct vstate *parent, struct edge *e)
{
	if (parent->phase != V_WAIT_INPUTS || parent->released || parent->round != 1)
		return;
	if (e->phase == EDGE_FAILED) {
		vertex_fail(s, parent, e->failure);
		return;
	}
	if (--parent->inputs_pending == 0)
		round_inputs_done(s, parent);
}

static void input_done(struct sfs_solver *s, struct vstate *parent, struct edge *e)
{
	if (parent->phase != V_WAIT_INPUTS || parent->released)
		return;
	if (e->phase == EDGE_FAILED) {
		vertex_fail(s, parent, e->failure);
		return;
	}
	if (--parent->inputs_pending == 0)
		round_inputs_done(s, parent);
}

static void deliver(struct sfs_solver *s, struct edge *e, const struct waiter *w)
{
	switch (w->kind) {
	case W_JOB:
		sfs_job_output_done(s, w->job, w->out, e);
		break;
	case W_INPUT:
		input_done(s, w->vs, e);
		break;
	case W_SUB:
		sfs_subbuild_done(s, w->vs, e);
		break;
	case W_MERGE:
		sfs_merge_done(s, &w->vs->edges[w->out], e);
		break;
	case W_DISCOVER:
		input_discovered(s, w->vs, e);
		break;
	}
}

static void deliver_all(struct sfs_solver *s, struct edge *e, struct waiters *list)
{
	struct waiters w = *list;
	memset(list, 0, sizeof(*list));
	for (size_t i = 0; i < w.n; i++)
		deliver(s, e, &w.w[i]);
	waiters_release(&w);
}

void sfs_edge_settle(struct sfs_solver *s, struct edge *e)
{
	deliver_all(s, e, &e->waiters);
	e->discovering = false;
	e->discovered = true;
	deliver_all(s, e, &e->dwaiters); /* a result answers "what keys" too */
}

/* The keys edge e can find without loading are known: tell who asked. */
static void edge_discovered(struct sfs_solver *s, struct edge *e)
{
	e->discovering = false;
	e->discovered = true;
	deliver_all(s, e, &e->dwaiters);
}

static void edge_fail(struct sfs_solver *s, struct edge *e, struct sfs_failure *f)
{
	if (e->phase == EDGE_DONE || e->phase == EDGE_FAILED)
		return;
	e->phase = EDGE_FAILED;
	e->failure = sfs_failure_ref(f);
	sfs_edge_settle(s, e);
}

/*
 * Fails a vertex and, through the key waiters, every vertex that waited for its
 * keys.  Iterative: a failing root of a long chain must not recurse per level.
 */
static void vertex_fail(struct sfs_solver *s, struct vstate *first, struct sfs_failure *f)
{
	struct vstate **stack = NULL;
	size_t n = 0, cap = 0;
	struct vstate *vs = first;

	while (vs) {
		if (vs->phase != V_FAILED && vs->phase != V_EXECUTED) {
			vs->phase = V_FAILED;
			vs->failure = sfs_failure_ref(f);
			for (size_t o = 0; o < vs->nedges; o++)
				edge_fail(s, &vs->edges[o], f);
			struct waiters w = vs->key_waiters;
			memset(&vs->key_waiters, 0, sizeof(vs->key_waiters));
			for (size_t i = 0; i < w.n; i++) {
				if (n == cap) {
					cap = cap ? cap * 2 : 16;
					struct vstate **ns = realloc(stack, cap * sizeof(*ns));
					if (!ns)
						break;
					stack = ns;
				}
				stack[n++] = vstate_ref(w.w[i].vs);
			}
			waiters_release(&w);
		}
		if (vs != first)
			vstate_unref(vs);
		vs = n ? stack[--n] : NULL;
	}
	free(stack);
}

/* --- keys ------------------------------------------------------------------ */

static void vertex_keys_ready(struct sfs_solver *s, struct vstate *vs);

/* Asks for the keys of vs; its inputs must have been asked before (topological order). */
void sfs_vertex_request_keys(struct sfs_solver *s, struct vstate *vs)
{
	if (vs->phase != V_NEW)
		return;
	vs->phase = V_WAIT_KEYS;
	size_t pending = 0;
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		struct vstate *in = vs->inputs[i];
		if (in->phase == V_FAILED) {
			vertex_fail(s, vs, in->failure);
			return;
		}
		if (in->phase < V_KEYED) {
			if (waiters_add(&in->key_waiters, W_INPUT, NULL, 0, vs) < 0)
				continue;
			pending++;
		}
	}
	vs->inputs_pending = pending;
	if (pending == 0) {
		vs->phase = V_KEYING;
		queue_task(s, TASK_KEYS, vs, NULL);
	}
}

void sfs_edge_proceed(struct sfs_solver *s, struct edge *e)
{
	if (e->phase != EDGE_IDLE || !e->want)
		return;
	struct vstate *vs = e->vs;
	if (vs->phase == V_EXECUTED || e->nrecords == 0) {
		e->phase = EDGE_WAIT_EXEC;
		vertex_request_exec(s, vs);
		return;
	}
	e->phase = EDGE_LOADING;
	queue_task(s, TASK_LOAD, vs, e);
}

static void vertex_keys_ready(struct sfs_solver *s, struct vstate *vs)
{
	vs->phase = V_KEYED;
	struct waiters w = vs->key_waiters;
	memset(&vs->key_waiters, 0, sizeof(vs->key_waiters));
	for (size_t i = 0; i < w.n; i++) {
		struct vstate *p = w.w[i].vs;
		if (p->phase == V_WAIT_KEYS && !p->released && --p->inputs_pending == 0) {
			p->phase = V_KEYING;
			queue_task(s, TASK_KEYS, p, NULL);
		}
	}
	waiters_release(&w);
	sfs_index_register(s, vs);
	for (size_t o = 0; o < vs->nedges; o++)
		sfs_edge_proceed(s, &vs->edges[o]);
}

struct keys_found {
	struct cache_key **keys;
	size_t nkeys;
	struct cache_record *records;
	size_t nrecords;
};

static void keys_found_release(struct keys_found *k)
{
	for (size_t i = 0; i < k->nkeys; i++)
		cache_key_unref(k->keys[i]);
	free(k->keys);
	free(k->records);
	memset(k, 0, sizeof(*k));
}

static int add_found(struct cache_manager *cm, struct keys_found *kf, struct cache_key *k)
{
	struct cache_record *recs = NULL;
	size_t n = 0;
	int r = cache_manager_records(cm, k, &recs, &n);
	if (r < 0)
		return r;
	struct cache_key **nk = realloc(kf->keys, (kf->nkeys + 1) * sizeof(*nk));
	struct cache_record *nr = realloc(kf->records, (kf->nrecords + n + 1) * sizeof(*nr));
	if (nk)
		kf->keys = nk;
	if (nr)
		kf->records = nr;
	if (!nk || !nr) {
		free(recs);
		return -ENOMEM;
	}
	kf->keys[kf->nkeys++] = cache_key_ref(k);
	memcpy(kf->records + kf->nrecords, recs, n * sizeof(*recs));
	kf->nrecords += n;
	free(recs);
	return 0;
}

/* Root: the key of output o under one cache map. */
static int query_root(struct cache_manager *cm, const struct sfs_cache_map *m, int o,
		      struct keys_found *kf)
{
	struct cache_key **found = NULL;
	size_t n = 0;
	int r = cache_manager_query(cm, NULL, 0, 0, m->digest, o, &found, &n);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = add_found(cm, kf, found[i]);
		cache_key_unref(found[i]);
	}
	free(found);
	return r;
}

int keyset_add(struct keyset *ks, struct cache_manager *cm, struct cache_key *k)
{
	const char *id = cache_key_id(k, cm);
	for (size_t i = 0; id && i < ks->n; i++) {
		const char *o = cache_key_id(ks->k[i], cm);
		if (o && strcmp(o, id) == 0)
			return 0;
	}
	struct cache_key **n = realloc(ks->k, (ks->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ks->k = n;
	ks->k[ks->n++] = cache_key_ref(k);
	return 0;
}

void keyset_release(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		cache_key_unref(ks->k[i]);
	free(ks->k);
	memset(ks, 0, sizeof(*ks));
}

static bool keyset_has(struct cache_manager *cm, const struct keyset *ks, struct cache_key *k)
{
	const char *id = cache_key_id(k, cm);
	for (size_t i = 0; id && i < ks->n; i++) {
		const char *o = cache_key_id(ks->k[i], cm);
		if (o && strcmp(o, id) == 0)
			return true;
	}
	return false;
}

static struct edge *input_edge(struct vstate *vs, size_t i)
{
	return &vs->inputs[i]->edges[vs->v->inputs[i].ref.output];
}

/* Queries the keys of output o reachable from alternatives of input i, into out. */
static int query_into(struct cache_manager *cm, const struct cache_key_with_selector *alts,
		      size_t n, size_t i, const struct sfs_cache_map *m, int o, struct keyset *out)
{
	struct cache_key **found = NULL;
	size_t nfound = 0;
	int r = n ? cache_manager_query(cm, alts, n, (int)i, m->digest, o, &found, &nfound) : 0;
	for (size_t k = 0; k < nfound; k++) {
		if (r == 0 && out)
			r = keyset_add(out, cm, found[k]);
		cache_key_unref(found[k]);
	}
	free(found);
	return r;
}

/* §1.5 step 3: keys of output o reachable from input i's definition keys. */
static int probe_input(struct cache_manager *cm, struct vstate *vs, const struct sfs_cache_map *m,
		       int o, size_t i, struct keyset *out)
{
	struct edge *ie = input_edge(vs, i);
	struct cache_key_with_selector alts[ie->nkeys + 1];
	for (size_t a = 0; a < ie->nkeys; a++) {
		memcpy(alts[a].selector, m->deps[i].selector, SFS_DIGEST_SIZE);
		alts[a].key = ie->keys[a];
	}
	return query_into(cm, alts, ie->nkeys, i, m, o, out);
}

static bool record_is_bad(const struct edge *e, const char *id)
{
	for (size_t i = 0; i < e->nbad; i++)
		if (strcmp(e->bad[i], id) == 0)
			return true;
	return false;
}

/*
 * §1.5 step 4: the keys every input leads to (from matches[]), except those in
 * `known`, with their records (minus records that failed to load) into kf.
 */
static int intersect(struct cache_manager *cm, const struct edge *e, size_t ninputs,
		     const struct keyset *known, struct keys_found *kf)
{
	if (ninputs == 0)
		return 0;
	for (size_t k = 0; k < e->matches[0].n; k++) {
		struct cache_key *key = e->matches[0].k[k];
		bool all = true;
		for (size_t i = 1; i < ninputs && all; i++)
			all = keyset_has(cm, &e->matches[i], key);
		if (!all || (known && keyset_has(cm, known, key)))
			continue;
		size_t before = kf->nrecords;
		int r = add_found(cm, kf, key);
		if (r < 0)
			return r;
		size_t keep = before;
		for (size_t j = before; j < kf->nrecords; j++)
			if (!record_is_bad(e, kf->records[j].id))
				kf->records[keep++] = kf->records[j];
		kf->nrecords = keep;
	}
	return 0;
}

/* Non-root keying of output o: probe every input, keep what all of them reach. */
static int query_deps(struct cache_manager *cm, struct vstate *vs, const struct sfs_cache_map *m,
		      int o, struct keys_found *kf)
{
	struct edge *e = &vs->edges[o];
	size_t ni = vs->v->ninputs;
	int r = 0;
	if (!e->matches && !(e->matches = calloc(ni, sizeof(*e->matches))))
		return -ENOMEM;
	for (size_t i = 0; i < ni && r == 0; i++)
		r = probe_input(cm, vs, m, o, i, &e->matches[i]);
	return r < 0 ? r : intersect(cm, e, ni, NULL, kf);
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
static int fetch_map(struct vstate *vs, char **ret_msg)
{
	struct sfs_cache_map m = {0};
	bool done = true;
	int r = vs->op->type->cache_map(vs->op, &vs->opctx, (int)vs->nmaps, &m, &done, ret_msg);
	pthread_mutex_lock(&vs->s->lock);
	vs->s->stats.cache_maps++;
	pthread_mutex_unlock(&vs->s->lock);
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

static void run_keys(struct sfs_solver *s, struct vstate *vs)
{
	struct cache_manager *cm = s->cache->main;
	size_t ne = vs->nedges;
	struct keys_found kf[ne ? ne : 1];
	char *msg = NULL;
	int r = 0;
	bool root = vs->v->ninputs == 0;
	/* BuildKit reports a root's CacheMap as progress; only `local` does real
	 * work there (it reads the host), so only it shows DONE in a cached build */
	bool report = root && vs->v->kind == SFS_OP_LOCAL;

	memset(kf, 0, sizeof(kf));
	if (report) {
		pthread_mutex_lock(&s->lock);
		sfs_vs_progress_started(vs, false);
		pthread_mutex_unlock(&s->lock);
		sfs_solver_flush_notify(s);
	}
	bool any = false;
	while (r == 0 && !any && !(vs->nmaps && vs->maps_done)) {
		if (sfs_op_cancelled(&vs->opctx)) {
			r = -ECANCELED;
			break;
		}
		r = fetch_map(vs, &msg);
		if (r < 0 || vs->ignore_cache)
			continue;
		const struct sfs_cache_map *m = &vs->maps[vs->nmaps - 1];
		for (size_t o = 0; o < ne && r == 0; o++) {
			r = root ? query_root(cm, m, (int)o, &kf[o])
				 : query_deps(cm, vs, m, (int)o, &kf[o]);
			any |= kf[o].nrecords > 0;
		}
		if (r < 0)
			sfs_errf(&msg, r, "cache lookup failed");
	}

	pthread_mutex_lock(&s->lock);
	bool failed = r < 0 && r != -ECANCELED;
	if (report || failed)
		sfs_vs_progress_completed(vs, false, failed ? msg : NULL);
	if (r < 0) {
		struct sfs_failure *f = sfs_failure_new(r, vs->v->digest, msg);
		if (f)
			vertex_fail(s, vs, f);
		sfs_failure_unref(f);
	} else {
		for (size_t o = 0; o < ne; o++) {
			vs->edges[o].keys = kf[o].keys;
			vs->edges[o].nkeys = kf[o].nkeys;
			vs->edges[o].records = kf[o].records;
			vs->edges[o].nrecords = kf[o].nrecords;
			memset(&kf[o], 0, sizeof(kf[o]));
		}
		vertex_keys_ready(s, vs);
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t o = 0; o < ne; o++)
		keys_found_release(&kf[o]);
	free(msg);
}

/* --- load ------------------------------------------------------------------ */

static struct cache_key *key_by_id(struct cache_manager *cm, struct edge *e, const char *id)
{
	for (size_t i = 0; i < e->nkeys; i++) {
		const char *kid = cache_key_id(e->keys[i], cm);
		if (kid && strcmp(kid, id) == 0)
			return e->keys[i];
	}
	for (size_t i = 0; i < e->late.n; i++) {
		const char *kid = cache_key_id(e->late.k[i], cm);
		if (kid && strcmp(kid, id) == 0)
			return e->late.k[i];
	}
	return e->nkeys ? e->keys[0] : e->late.n ? e->late.k[0] : NULL;
}

static void edge_complete(struct sfs_solver *s, struct edge *e, const char *result,
			  struct cache_key **keys, size_t nkeys, bool cached)
{
	snprintf(e->result, sizeof(e->result), "%s", result);
	e->result_keys = keys;
	e->nresult_keys = nkeys;
	e->cached = cached;
	e->phase = EDGE_DONE;
	sfs_edge_settle(s, e);
}

static void drop_record(struct edge *e, const char *id)
{
	size_t keep = 0;
	for (size_t i = 0; i < e->nrecords; i++)
		if (strcmp(e->records[i].id, id) != 0)
			e->records[keep++] = e->records[i];
	e->nrecords = keep;
}

static void run_load(struct sfs_solver *s, struct vstate *vs, struct edge *e)
{
	struct cache_manager *cm = s->cache->main;
	char result[SFS_DIGEST_SIZE] = "";
	char *msg = NULL;

	pthread_mutex_lock(&s->lock);
	struct cache_record rec = *cache_records_best(e->records, e->nrecords);
	sfs_vs_progress_started(vs, true);
	s->stats.loads++;
	pthread_mutex_unlock(&s->lock);
	sfs_solver_flush_notify(s);

	int r = cache_manager_load(cm, &rec, result, &msg);

	pthread_mutex_lock(&s->lock);
	if (e->phase != EDGE_LOADING) {
		/* the vertex executed meanwhile and gave this edge its result */
		pthread_mutex_unlock(&s->lock);
		free(msg);
		return;
	}
	if (r == 0) {
		struct cache_key **keys = calloc(1, sizeof(*keys));
		struct cache_key *k = key_by_id(cm, e, rec.key_id);
		if (keys && k) {
			keys[0] = cache_key_ref(k);
			free(vs->why);
			vs->why = sfs_why_cached(&rec, sfs_now_ns());
			sfs_vs_progress_completed(vs, true, NULL);
			edge_complete(s, e, result, keys, 1, true);
		} else {
			free(keys);
			r = -ENOMEM;
		}
	}
	if (r < 0) {
		s->stats.load_failures++;
		sfs_log(SFS_LOG_WARN, "loading record %s of %s failed: %s", rec.id, vs->digest,
			msg ? msg : strerror(-r));
		char line[512];
		int n = snprintf(line, sizeof(line), "cache load of record %s failed (%s); executing\n",
				 rec.id, msg ? msg : strerror(-r));
		struct sfs_job *jobs[SFS_MAX_VS_JOBS];
		size_t nj = sfs_vs_jobs(vs, jobs, SFS_MAX_VS_JOBS);
		for (size_t k = 0; n > 0 && k < nj; k++)
			sfs_progress_log(jobs[k]->progress, vs->digest, 2, line, (size_t)n,
					 sfs_now_ns());
		drop_record(e, rec.id);
		char **nb = realloc(e->bad, (e->nbad + 1) * sizeof(*nb));
		if (nb) {
			e->bad = nb;
			if ((e->bad[e->nbad] = strdup(rec.id)))
				e->nbad++;
		}
		e->phase = EDGE_IDLE;
		sfs_edge_proceed(s, e);
	}
	pthread_mutex_unlock(&s->lock);
	free(msg);
}

/* --- exec ------------------------------------------------------------------ */

static void exec_failed(struct sfs_solver *s, struct vstate *vs, int r, const char *msg)
{
	const char *line = msg ? msg : strerror(-r);
	char *first = strndup(line, strcspn(line, "\n"));
	sfs_vs_progress_completed(vs, false, r == -ECANCELED ? "context canceled" : first);
	free(first);
	struct sfs_failure *f = sfs_failure_new(r, vs->v->digest, msg);
	if (f)
		vertex_fail(s, vs, f);
	sfs_failure_unref(f);
}

/* Takes keys and records found through content keys into e (lock held). */
static void absorb_late(struct cache_manager *cm, struct edge *e, struct keys_found *kf)
{
	for (size_t k = 0; k < kf->nkeys; k++)
		keyset_add(&e->late, cm, kf->keys[k]);
	if (!kf->nrecords)
		return;
	struct cache_record *n = realloc(e->records, (e->nrecords + kf->nrecords) * sizeof(*n));
	if (!n)
		return;
	e->records = n;
	memcpy(e->records + e->nrecords, kf->records, kf->nrecords * sizeof(*n));
	e->nrecords += kf->nrecords;
}

/* An edge whose needs drive the rounds: it waits for an exec, or was asked for keys. */
static bool edge_active(const struct edge *e)
{
	return e->phase == EDGE_WAIT_EXEC || (e->discovering && e->phase == EDGE_IDLE);
}

/* Does input i lead to a key of some active edge? */
static bool input_has_match(struct vstate *vs, size_t i)
{
	for (size_t o = 0; o < vs->nedges; o++) {
		struct edge *e = &vs->edges[o];
		if (edge_active(e) && e->matches && e->matches[i].n)
			return true;
	}
	return false;
}

/*
 * The rounds of §1.5 step 7, for an edge that has no record yet:
 *   1. inputs without definition matches are asked for the keys they can find
 *      through content without being loaded (BuildKit's cache-slow state);
 *   2. those still without matches that have a content function are completed
 *      and hashed;
 *   3. only when an exec is wanted: every input is completed, then the op runs.
 * After each round the vertex probes the cache with what it learnt; a record
 * found ends the rounds (loaded if someone wants the result, advertised as a
 * key if someone only asked for keys).  Inputs that match are thus not loaded
 * when the vertex can hit without them.
 */
static bool in_round(struct vstate *vs, size_t i)
{
	if (vs->round == 3)
		return true;
	if (input_has_match(vs, i))
		return false;
	return vs->round == 1 || vs->v->inputs[i].content_func;
}

static bool discovery_needed(const struct edge *ie)
{
	return (ie->phase == EDGE_IDLE || ie->phase == EDGE_WAIT_EXEC) && !ie->discovered &&
	       ie->nkeys == 0 && ie->vs->v->ninputs > 0 && !ie->vs->released;
}

static bool round_input_ready(struct vstate *vs, const struct edge *ie)
{
	if (vs->round == 1)
		return !discovery_needed(ie);
	return ie->phase == EDGE_DONE;
}

static void vertex_start_rounds(struct sfs_solver *s, struct vstate *vs);
static void answer_discovering(struct sfs_solver *s, struct vstate *vs, bool all);

/* Asks input edge ie what keys it can find without being loaded. */
static void edge_request_discover(struct sfs_solver *s, struct edge *ie, struct vstate *parent)
{
	if (waiters_add(&ie->dwaiters, W_DISCOVER, NULL, 0, parent) < 0) {
		struct sfs_failure *f = sfs_failure_new(-ENOMEM, ie->vs->v->digest, "out of memory");
		edge_fail(s, ie, f);
		sfs_failure_unref(f);
		return;
	}
	if (ie->discovering)
		return;
	ie->discovering = true;
	vertex_start_rounds(s, ie->vs);
}

static void start_round(struct sfs_solver *s, struct vstate *vs)
{
	size_t pending = 0, ni = vs->v->ninputs;
	bool ask[ni + 1];
	int round = vs->round;

	vs->phase = V_WAIT_INPUTS;
	for (size_t i = 0; i < ni; i++) {
		struct edge *ie = input_edge(vs, i);
		ask[i] = false;
		if (!in_round(vs, i))
			continue;
		if (ie->phase == EDGE_FAILED) {
			vertex_fail(s, vs, ie->failure);
			return;
		}
		ask[i] = !round_input_ready(vs, ie);
		pending += ask[i];
	}
	/* one extra count while the requests go out: an answer can come back
	 * synchronously (a merged input whose target is done, a root asked for
	 * keys), and must not end the round before every request is made */
	vs->inputs_pending = pending + 1;
	for (size_t i = 0; i < ni; i++) {
		if (!ask[i])
			continue;
		if (round == 1)
			edge_request_discover(s, input_edge(vs, i), vs);
		else
			sfs_edge_request(s, input_edge(vs, i), NULL, 0, vs);
	}
	if (vs->phase == V_WAIT_INPUTS && vs->round == round && --vs->inputs_pending == 0)
		round_inputs_done(s, vs);
}

static bool wants_exec(const struct vstate *vs)
{
	for (size_t o = 0; o < vs->nedges; o++)
		if (vs->edges[o].phase == EDGE_WAIT_EXEC)
			return true;
	return false;
}

/* Starts the rounds of a keyed vertex for its active edges. */
static void vertex_start_rounds(struct sfs_solver *s, struct vstate *vs)
{
	if (vs->phase != V_KEYED)
		return; /* rounds already running: they answer every active edge */
	if (vs->v->ninputs == 0) {
		if (wants_exec(vs)) {
			vs->phase = V_EXEC;
			queue_task(s, TASK_EXEC, vs, NULL);
		}
		/* a root has nothing more to find: its maps are all fetched */
		answer_discovering(s, vs, true);
		return;
	}
	vs->round = 1;
	start_round(s, vs);
}

static void vertex_request_exec(struct sfs_solver *s, struct vstate *vs)
{
	vertex_start_rounds(s, vs);
}

static bool needs_slow(struct vstate *vs, size_t i)
{
	return vs->round >= 2 && in_round(vs, i) && vs->v->inputs[i].content_func &&
	       input_edge(vs, i)->phase == EDGE_DONE && !(vs->slow && vs->slow[i]);
}

/* Keys of input i to probe with after a round: found late, or loaded under. */
static bool has_probe_keys(const struct edge *ie)
{
	return ie->late.n || (ie->phase == EDGE_DONE && ie->cached && ie->nresult_keys);
}

/* Answers the edges asked for keys: those that found some, or all (lock held). */
static void answer_discovering(struct sfs_solver *s, struct vstate *vs, bool all)
{
	for (size_t o = 0; o < vs->nedges; o++) {
		struct edge *e = &vs->edges[o];
		if (e->discovering && (all || e->late.n))
			edge_discovered(s, e);
	}
}

/*
 * After a round: load or advertise what was found, else the next round.  The
 * vertex's next state is set before anyone is answered, because an answer may
 * come straight back as a request to this vertex.
 */
static void after_slow(struct sfs_solver *s, struct vstate *vs)
{
	bool need_exec = false, open = false;
	for (size_t o = 0; o < vs->nedges; o++) {
		struct edge *e = &vs->edges[o];
		if (e->phase == EDGE_WAIT_EXEC) {
			if (e->nrecords) {
				e->phase = EDGE_LOADING;
				queue_task(s, TASK_LOAD, vs, e);
			} else {
				need_exec = true;
			}
		} else if (e->discovering && e->phase == EDGE_IDLE && !e->late.n) {
			open = true;
		}
	}
	if (!need_exec && !open) {
		vs->phase = V_KEYED; /* a failed load asks for an exec again */
		vs->round = 0;
		answer_discovering(s, vs, false);
	} else if (vs->round == 1 || (vs->round == 2 && need_exec)) {
		vs->round++;
		answer_discovering(s, vs, false);
		start_round(s, vs);
	} else if (vs->round == 2) {
		/* only keys were asked for, and not all were found */
		vs->phase = V_KEYED;
		vs->round = 0;
		answer_discovering(s, vs, true);
	} else {
		vs->phase = V_EXEC;
		queue_task(s, TASK_EXEC, vs, NULL);
		answer_discovering(s, vs, false);
	}
}

static void round_inputs_done(struct sfs_solver *s, struct vstate *vs)
{
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		bool probe = !vs->ignore_cache && in_round(vs, i) && has_probe_keys(input_edge(vs, i));
		if (needs_slow(vs, i) || probe) {
			vs->phase = V_SLOW;
			queue_task(s, TASK_SLOW, vs, NULL);
			return;
		}
	}
	after_slow(s, vs);
}

/* The content key of input i (§3). */
static int content_key(struct vstate *vs, size_t i, struct cache_key **ret, char **ret_msg)
{
	const char *result = input_edge(vs, i)->result;
	char d[SFS_DIGEST_SIZE];
	int r = vs->op->type->content_digest
			? vs->op->type->content_digest(vs->op, &vs->opctx, i, result, d, ret_msg)
			: sfs_op_default_content_digest(&vs->opctx, &vs->v->inputs[i], result, d,
							ret_msg);
	if (r < 0)
		return r;
	*ret = cache_key_new(d, -1, 0);
	return *ret ? 0 : -ENOMEM;
}

/* Probes with a content key, and links it to the input's result keys (carry-over). */
static int probe_slow(struct cache_manager *cm, struct vstate *vs, size_t i, int o,
		      struct cache_key *slow)
{
	const struct sfs_cache_map *m = &vs->maps[0];
	struct edge *ie = input_edge(vs, i);
	struct cache_key_with_selector alts[ie->nresult_keys + 1];
	memset(alts[0].selector, 0, SFS_DIGEST_SIZE);
	alts[0].key = slow;
	int r = query_into(cm, alts, 1, i, m, o, &vs->edges[o].matches[i]);
	for (size_t a = 0; a < ie->nresult_keys; a++) {
		memcpy(alts[a + 1].selector, m->deps[i].selector, SFS_DIGEST_SIZE);
		alts[a + 1].key = ie->result_keys[a];
	}
	if (r == 0)
		r = query_into(cm, alts, ie->nresult_keys + 1, i, m, o, NULL);
	return r;
}

/* Probes output o with keys of input i (each with the map's selector for i). */
static int probe_keys(struct cache_manager *cm, struct vstate *vs, size_t i, int o,
		      const struct keyset *keys)
{
	const struct sfs_cache_map *m = &vs->maps[0];
	struct cache_key_with_selector alts[keys->n + 1];
	for (size_t a = 0; a < keys->n; a++) {
		memcpy(alts[a].selector, m->deps[i].selector, SFS_DIGEST_SIZE);
		alts[a].key = keys->k[a];
	}
	return query_into(cm, alts, keys->n, i, m, o, &vs->edges[o].matches[i]);
}

/* The keys of input i to probe with after a round (lock held): see has_probe_keys. */
static void probe_keys_of(struct cache_manager *cm, struct edge *ie, struct keyset *ret)
{
	for (size_t k = 0; k < ie->late.n; k++)
		keyset_add(ret, cm, ie->late.k[k]);
	if (ie->phase == EDGE_DONE && ie->cached)
		for (size_t k = 0; k < ie->nresult_keys; k++)
			keyset_add(ret, cm, ie->result_keys[k]);
}

static void run_slow(struct sfs_solver *s, struct vstate *vs)
{
	struct cache_manager *cm = s->cache->main;
	size_t ni = vs->v->ninputs, ne = vs->nedges;
	struct cache_key *slow[ni];
	struct keyset known[ni];
	struct keys_found kf[ne ? ne : 1];
	bool want[ne ? ne : 1], todo[ni];
	char *msg = NULL;
	int r = 0;

	memset(slow, 0, sizeof(slow));
	memset(known, 0, sizeof(known));
	memset(kf, 0, sizeof(kf));
	pthread_mutex_lock(&s->lock);
	for (size_t o = 0; o < ne; o++)
		want[o] = edge_active(&vs->edges[o]) && vs->edges[o].matches;
	for (size_t i = 0; i < ni; i++) {
		todo[i] = needs_slow(vs, i);
		if (in_round(vs, i))
			probe_keys_of(cm, input_edge(vs, i), &known[i]);
	}
	pthread_mutex_unlock(&s->lock);

	for (size_t i = 0; i < ni && r == 0; i++) {
		if (!todo[i])
			continue;
		r = content_key(vs, i, &slow[i], &msg);
		pthread_mutex_lock(&s->lock);
		s->stats.slow_keys++;
		pthread_mutex_unlock(&s->lock);
	}
	for (size_t o = 0; o < ne && r == 0 && !vs->ignore_cache; o++) {
		if (!want[o])
			continue;
		struct edge *e = &vs->edges[o];
		for (size_t i = 0; i < ni && r == 0; i++) {
			if (known[i].n)
				r = probe_keys(cm, vs, i, (int)o, &known[i]);
			if (r == 0 && slow[i])
				r = probe_slow(cm, vs, i, (int)o, slow[i]);
		}
		struct keyset def = {e->keys, e->nkeys};
		if (r == 0)
			r = intersect(cm, e, ni, &def, &kf[o]);
	}
	for (size_t i = 0; i < ni; i++)
		keyset_release(&known[i]);

	pthread_mutex_lock(&s->lock);
	if (r < 0) {
		sfs_err_prefix(&msg, r, "failed to compute cache key");
		sfs_vs_progress_started(vs, false);
		exec_failed(s, vs, r, msg);
	} else {
		if (!vs->slow)
			vs->slow = calloc(ni, sizeof(*vs->slow));
		for (size_t i = 0; i < ni && vs->slow; i++)
			if (slow[i])
				vs->slow[i] = cache_key_ref(slow[i]);
		for (size_t o = 0; o < ne; o++)
			absorb_late(cm, &vs->edges[o], &kf[o]);
		after_slow(s, vs);
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < ni; i++)
		cache_key_unref(slow[i]);
	for (size_t o = 0; o < ne; o++)
		keys_found_release(&kf[o]);
	free(msg);
}

void sfs_edge_request(struct sfs_solver *s, struct edge *e, struct sfs_job *job, size_t out,
		      struct vstate *parent)
{
	edge_request(s, e, job ? W_JOB : W_INPUT, job, out, parent);
}

void sfs_edge_request_sub(struct sfs_solver *s, struct edge *e, struct vstate *build)
{
	edge_request(s, e, W_SUB, NULL, 0, build);
}

/* Asks edge e for its result on behalf of the waiter (kind, job, out, vs). */
static void edge_request(struct sfs_solver *s, struct edge *e, enum waiter_kind kind,
			 struct sfs_job *job, size_t out, struct vstate *vs)
{
	struct waiter w = {kind, job, out, vs};
	if (e->phase == EDGE_DONE || e->phase == EDGE_FAILED) {
		deliver(s, e, &w);
		return;
	}
	if (waiters_add(&e->waiters, kind, job, out, vs) < 0) {
		struct sfs_failure *f = sfs_failure_new(-ENOMEM, e->vs->v->digest, "out of memory");
		edge_fail(s, e, f);
		sfs_failure_unref(f);
		return;
	}
	e->want = true;
	if (e->phase == EDGE_MERGED)
		sfs_edge_request_merged(s, e);
	else if (e->vs->phase >= V_KEYED)
		sfs_edge_proceed(s, e);
}

/* A merged edge that is wanted asks the edge it was merged into, once. */
void sfs_edge_request_merged(struct sfs_solver *s, struct edge *e)
{
	if (e->merge_asked)
		return;
	e->merge_asked = true;
	edge_request(s, sfs_edge_owner(e->merged_into), W_MERGE, NULL, (size_t)e->output, e->vs);
}

static int open_log(struct sfs_solver *s, struct vstate *vs)
{
	char rnd[CACHE_ID_SIZE];
	keystore_new_id(rnd);
	char *dir = NULL, *path = NULL;
	if (asprintf(&dir, "%s/logs", s->cache->state_dir) < 0)
		return -ENOMEM;
	mkdir(dir, 0700);
	int r = asprintf(&path, "%s/%s-%s.log", dir, vs->digest + 7, rnd);
	free(dir);
	if (r < 0)
		return -ENOMEM;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(path);
		return -errno;
	}
	pthread_mutex_lock(&s->lock);
	vs->log_fd = fd;
	free(vs->log_path);
	vs->log_path = path;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The commit key of output o of a vertex with inputs (§2.2). */
static struct cache_key *commit_key(struct vstate *vs, const struct sfs_cache_map *m, int o)
{
	struct cache_key *k = cache_key_new(m->digest, o, vs->v->ninputs);
	if (!k)
		return NULL;
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		struct edge *ie = &vs->inputs[i]->edges[vs->v->inputs[i].ref.output];
		for (size_t a = 0; a < ie->nresult_keys; a++) {
			if (cache_key_add_dep(k, i, m->deps[i].selector, ie->result_keys[a]) < 0) {
				cache_key_unref(k);
				return NULL;
			}
		}
		/* the content key is one more alternative, with no selector (§3) */
		if (vs->slow && vs->slow[i] && cache_key_add_dep(k, i, "", vs->slow[i]) < 0) {
			cache_key_unref(k);
			return NULL;
		}
	}
	return k;
}

/* Saves output o under its commit key(s); returns the keys (malloc'd). */
static int save_output(struct sfs_solver *s, struct vstate *vs, int o, const char *result,
		       int64_t now, struct cache_key ***ret, size_t *ret_n)
{
	bool root = vs->v->ninputs == 0;
	size_t nk = root ? vs->nmaps : 1;
	struct cache_key **keys = calloc(nk, sizeof(*keys));
	struct cache_result rec;
	int r = 0;

	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < nk; i++) {
		keys[i] = root ? cache_key_new(vs->maps[i].digest, o, 0)
			       : commit_key(vs, &vs->maps[0], o);
		if (!keys[i]) {
			r = -ENOMEM;
			break;
		}
		r = cache_manager_save(s->cache->main, keys[i], result, now, i ? &rec : NULL,
				       i ? NULL : &rec);
		if (r < 0)
			break;
	}
	if (r < 0) {
		for (size_t i = 0; i < nk; i++)
			cache_key_unref(keys[i]);
		free(keys);
		return r;
	}
	*ret = keys;
	*ret_n = nk;
	return 0;
}

static int exec_op(struct sfs_solver *s, struct vstate *vs, char (*outs)[SFS_DIGEST_SIZE],
		   char **ret_msg)
{
	size_t ni = vs->v->ninputs;
	const char *in[ni + 1];
	int r = 0;

	while (!vs->maps_done && r == 0)
		r = fetch_map(vs, ret_msg);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ni; i++)
		in[i] = vs->inputs[i]->edges[vs->v->inputs[i].ref.output].result;
	r = open_log(s, vs);
	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot create the log file: %s", strerror(-r));
	pthread_mutex_lock(&s->lock);
	s->stats.execs++;
	pthread_mutex_unlock(&s->lock);
	return vs->op->type->exec(vs->op, &vs->opctx, in, ni, outs, ret_msg);
}

/* Saves the outputs of an execution and completes every edge (no lock held). */
static void finish_exec(struct sfs_solver *s, struct vstate *vs, char (*outs)[SFS_DIGEST_SIZE],
			int r, char *msg)
{
	size_t no = vs->nedges;
	struct cache_key **keys[no ? no : 1];
	size_t nkeys[no ? no : 1];
	int64_t now = sfs_now_ns();

	memset(keys, 0, sizeof(keys));
	for (size_t o = 0; o < no && r == 0; o++) {
		r = save_output(s, vs, (int)o, outs[o], now, &keys[o], &nkeys[o]);
		if (r < 0)
			sfs_errf(&msg, r, "saving the result to the cache failed: %s", strerror(-r));
	}
	pthread_mutex_lock(&s->lock);
	if (r < 0) {
		exec_failed(s, vs, r, msg);
		for (size_t o = 0; o < no; o++) {
			for (size_t k = 0; keys[o] && k < nkeys[o]; k++)
				cache_key_unref(keys[o][k]);
			free(keys[o]);
		}
	} else {
		sfs_vs_progress_completed(vs, false, NULL);
		vs->phase = V_EXECUTED;
		for (size_t o = 0; o < no; o++) {
			struct edge *e = &vs->edges[o];
			if (e->phase == EDGE_DONE) {
				for (size_t k = 0; k < nkeys[o]; k++)
					cache_key_unref(keys[o][k]);
				free(keys[o]);
				continue;
			}
			edge_complete(s, e, outs[o], keys[o], nkeys[o], false);
		}
	}
	pthread_mutex_unlock(&s->lock);
	free(msg);
}

static void run_exec(struct sfs_solver *s, struct vstate *vs)
{
	size_t no = vs->nedges;
	char outs[no ? no : 1][SFS_DIGEST_SIZE];
	char *msg = NULL;
	int r;

	memset(outs, 0, sizeof(outs));
	char *why = sfs_why_executed(s, vs);
	pthread_mutex_lock(&s->lock);
	free(vs->why);
	vs->why = why;
	sfs_vs_progress_started(vs, false);
	pthread_mutex_unlock(&s->lock);
	sfs_solver_flush_notify(s);

	if (vs->v->kind == SFS_OP_BUILD) {
		/* a sub-build finishes later, through sfs_subbuild_done */
		r = sfs_subbuild_start(s, vs, &msg);
		if (r == 0)
			return;
		finish_exec(s, vs, outs, r, msg);
		return;
	}
	r = exec_op(s, vs, outs, &msg);
	finish_exec(s, vs, outs, r, msg);
}

/* The sub-build of a build vertex is done: its result becomes the vertex's. */
static void run_finish(struct sfs_solver *s, struct vstate *vs)
{
	char outs[1][SFS_DIGEST_SIZE];
	pthread_mutex_lock(&s->lock);
	memcpy(outs[0], vs->sub_result, SFS_DIGEST_SIZE);
	pthread_mutex_unlock(&s->lock);
	finish_exec(s, vs, outs, 0, NULL);
}

void sfs_subbuild_done(struct sfs_solver *s, struct vstate *parent, struct edge *e)
{
	if (parent->phase != V_EXEC || parent->released)
		return;
	if (e->phase == EDGE_FAILED) {
		char *msg = sfs_subbuild_error(parent, e->failure);
		exec_failed(s, parent, e->failure->err, msg ? msg : e->failure->msg);
		free(msg);
		return;
	}
	memcpy(parent->sub_result, e->result, SFS_DIGEST_SIZE);
	queue_task(s, TASK_FINISH, parent, NULL);
}

/* --- workers ---------------------------------------------------------------- */

void sfs_vstate_cancel(struct vstate *vs)
{
	atomic_store(&vs->opctx.cancelled, true);
	int pg = atomic_load(&vs->opctx.pgid);
	if (pg > 0)
		kill(-pg, SIGKILL);
}

static void run_task(struct sfs_solver *s, struct task *t)
{
	if (!sfs_op_cancelled(&t->vs->opctx)) {
		switch (t->kind) {
		case TASK_KEYS:
			run_keys(s, t->vs);
			break;
		case TASK_LOAD:
			run_load(s, t->vs, t->e);
			break;
		case TASK_SLOW:
			run_slow(s, t->vs);
			break;
		case TASK_FINISH:
			run_finish(s, t->vs);
			break;
		case TASK_EXEC:
			run_exec(s, t->vs);
			break;
		}
	}
	pthread_mutex_lock(&s->lock);
	vstate_unref(t->vs);
	pthread_mutex_unlock(&s->lock);
	sfs_solver_flush_notify(s);
	free(t);
}

struct worker_arg {
	struct sfs_solver *s;
	bool heavy;
};

static struct task *pop(struct task **head, struct task **tail)
{
	struct task *t = *head;
	if (t) {
		*head = t->next;
		if (!*head)
			*tail = NULL;
	}
	return t;
}

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct sfs_solver *s = wa->s;
	bool heavy = wa->heavy;
	free(wa);

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct task *t = heavy ? pop(&s->heavy_head, &s->heavy_tail)
				       : pop(&s->light_head, &s->light_tail);
		if (!t) {
			if (s->stopping)
				break;
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		run_task(s, t);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int sfs_sched_start(struct sfs_solver *s)
{
	size_t n = (size_t)s->o.workers + 2;
	s->threads = calloc(n, sizeof(*s->threads));
	if (!s->threads)
		return -ENOMEM;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 8 << 20);
	for (size_t i = 0; i < n; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));
		if (!wa)
			break;
		wa->s = s;
		wa->heavy = i >= 2;
		if (pthread_create(&s->threads[i], &attr, worker_main, wa) != 0) {
			free(wa);
			break;
		}
		s->nthreads++;
	}
	pthread_attr_destroy(&attr);
	return s->nthreads == n ? 0 : -EAGAIN;
}

/* Called with no lock held, after every job has been cancelled. */
void sfs_sched_stop(struct sfs_solver *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	/* queued tasks of cancelled vertices return at once */
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	free(s->threads);
	s->threads = NULL;
	s->nthreads = 0;
}
