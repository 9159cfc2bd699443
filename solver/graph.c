/*
 * graph.c — the solver's shared graph: active vertices by digest (BuildKit's
 * Solver.actives and Solver.load / Job.Discard, docs/semantics.md §1.2–1.3).
 *
 * A job loads every vertex of its spec; a digest already active is joined (the
 * first loaded definition wins), otherwise a new vstate is made.  When a job is
 * discarded it leaves each of its vertices; a vertex left by its last job is
 * released from the graph and, if its op still runs, cancelled.  A job that
 * joins a vertex is told what the vertex told its jobs before (vlog.c).
 *
 * Everything here runs with sfs_solver.lock held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "sha256.h"
#include "internal.h"

int sfs_waiters_add(struct waiters *w, enum waiter_kind kind, struct sfs_job *job, size_t out,
		    struct vstate *vs)
{
	if (sfs_grow((void **)&w->w, &w->cap, w->n + 1, sizeof(*w->w)) < 0)
		return -ENOMEM;
	w->w[w->n++] = (struct waiter){kind, job ? sfs_job_ref(job) : NULL, out,
				       vs ? sfs_vstate_ref(vs) : NULL};
	return 0;
}

int sfs_vstates_push(struct vstate ***v, size_t *n, size_t *cap, struct vstate *vs)
{
	if (sfs_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
		return -ENOMEM;
	(*v)[(*n)++] = vs;
	return 0;
}

void sfs_waiters_release(struct waiters *w)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->w[i].job)
			sfs_job_unref(w->w[i].job);
		if (w->w[i].vs)
			sfs_vstate_unref(w->w[i].vs);
	}
	free(w->w);
	memset(w, 0, sizeof(*w));
}

struct vstate *sfs_vstate_ref(struct vstate *vs)
{
	vs->refs++;
	return vs;
}

static void edge_release(struct edge *e)
{
	if (e->held)
		cache_unhold(e->vs->s->cache->holds, e->result);
	for (size_t i = 0; i < e->nkeys; i++)
		cache_key_unref(e->keys[i]);
	free(e->keys);
	for (size_t i = 0; i < e->nresult_keys; i++)
		cache_key_unref(e->result_keys[i]);
	free(e->result_keys);
	sfs_keyset_release(&e->late);
	sfs_vstate_unref(e->merge_hold);
	for (size_t i = 0; e->matches && i < e->vs->v->ninputs; i++)
		sfs_keyset_release(&e->matches[i]);
	free(e->matches);
	for (size_t i = 0; i < e->nbad; i++)
		free(e->bad[i]);
	free(e->bad);
	sfs_failure_unref(e->failure);
	sfs_waiters_release(&e->waiters);
	sfs_waiters_release(&e->dwaiters);
}

struct vstate_sub *sfs_vstate_sub(struct vstate *vs)
{
	if (!vs->sub)
		vs->sub = calloc(1, sizeof(*vs->sub));
	return vs->sub;
}

/* Its references are dropped by vstate_free. */
static void vstate_sub_free(struct vstate_sub *sub)
{
	if (!sub)
		return;
	free(sub->parents);
	free(sub->children);
	sfs_spec_free(sub->spec);
	sfs_keyset_release(&sub->keys);
	free(sub->result);
	free(sub);
}

/* Frees one vertex whose last reference went; inputs and children that lose
 * their last reference through it are pushed on *stack instead of recursing. */
static void vstate_free(struct vstate *vs, struct vstate ***stack, size_t *n, size_t *cap)
{
	sfs_index_remove(vs->s, vs); /* normally done at release; never leave a dangling entry */
	for (size_t i = 0; i < vs->nedges; i++)
		edge_release(&vs->edges[i]);
	free(vs->edges);
	size_t nin = vs->inputs ? vs->v->ninputs : 0;
	for (size_t i = 0; i < nin + sfs_vstate_nchildren(vs); i++) {
		struct vstate *d = i < nin ? vs->inputs[i] : vs->sub->children[i - nin];
		if (!d || --d->refs > 0)
			continue;
		if (sfs_vstates_push(stack, n, cap, d) < 0)
			d->refs++; /* no memory: leak it rather than recurse */
	}
	free(vs->inputs);
	for (size_t i = 0; vs->slow && i < vs->v->ninputs; i++)
		cache_key_unref(vs->slow[i]);
	free(vs->slow);
	for (size_t i = 0; i < vs->nmaps; i++)
		sfs_cache_map_release(&vs->maps[i]);
	free(vs->maps);
	sfs_waiters_release(&vs->key_waiters);
	sfs_failure_unref(vs->failure);
	free(vs->jobs);
	vstate_sub_free(vs->sub);
	free(vs->cc.extra);
	if (vs->log_fd >= 0)
		close(vs->log_fd);
	sfs_vstate_log_free(vs->log);
	free(vs->progress_error);
	free(vs->why);
	sfs_op_free(vs->op);
	sfs_spec_free(vs->spec);
	free(vs);
}

/* Drops a reference; freeing a 100,000-vertex chain is a loop, not a recursion. */
void sfs_vstate_unref(struct vstate *vs)
{
	if (!vs || --vs->refs > 0)
		return;
	struct vstate **stack = NULL;
	size_t n = 0, cap = 0;
	for (; vs; vs = n ? stack[--n] : NULL)
		vstate_free(vs, &stack, &n, &cap);
	free(stack);
}

void sfs_vstate_op_ctx(struct vstate *vs, struct sfs_op_ctx *ret)
{
	const struct sfs_solver *s = vs->s;
	*ret = (struct sfs_op_ctx){.cache = s->cache,
				   .uid = vs->uid,
				   .gid = vs->gid,
				   .sandbox = s->o.sandbox,
				   .mountpoint = s->mountpoint,
				   .log_limit = s->o.log_limit,
				   .output_limit = s->o.output_limit,
				   .import_limits = &s->o.import_limits,
				   .registry = s->registry,
				   .log = sfs_vstate_log,
				   .log_arg = vs,
				   .status = sfs_vstate_status,
				   .sig = &vs->sig};
}

/* What a new vertex inherits from whoever loads it. */
struct load_ctx {
	struct sfs_spec *spec;
	char *const *sources;	     /* the job's cache_from, or NULL */
	const struct vstate *parent; /* a sub-build's build vertex, or NULL */
	struct vstate **loaded;	     /* per spec vertex, those loaded so far */
	uid_t uid;
	gid_t gid;
	bool ignore_cache;
	int depth;
};

static int vstate_new(struct sfs_solver *s, const struct load_ctx *lc, size_t idx, const char *key,
		      struct vstate **ret, char **ret_msg)
{
	const struct sfs_spec_vertex *v = &lc->spec->v[idx];
	bool own = key != v->digest;
	struct vstate *vs = calloc(1, sizeof(*vs) + (own ? SFS_DIGEST_SIZE : 0));
	if (!vs)
		return -ENOMEM;
	vs->refs = 1;
	vs->s = s;
	vs->log_fd = -1;
	vs->depth = lc->depth;
	if (own)
		sfs_copy_str(vs->nocache_digest, SFS_DIGEST_SIZE, key);
	vs->digest = own ? vs->nocache_digest : v->digest;
	vs->spec = sfs_spec_ref(lc->spec);
	vs->v = v;
	vs->cc.main = s->cache->main;
	vs->ignore_cache = v->ignore_cache || lc->ignore_cache;
	vs->nedges = v->noutputs;
	vs->edges = calloc(v->noutputs ? v->noutputs : 1, sizeof(*vs->edges));
	vs->inputs = calloc(v->ninputs ? v->ninputs : 1, sizeof(*vs->inputs));
	if (!vs->edges || !vs->inputs) {
		sfs_vstate_unref(vs);
		return -ENOMEM;
	}
	for (size_t o = 0; o < vs->nedges; o++) {
		vs->edges[o].vs = vs;
		vs->edges[o].output = (int)o;
	}
	for (size_t i = 0; i < v->ninputs; i++)
		vs->inputs[i] = sfs_vstate_ref(lc->loaded[v->inputs[i].ref.vertex]);
	int r;
	if (s->o.resolve)
		r = s->o.resolve(s->o.resolve_arg, v, &vs->op);
	else if (v->kind == SFS_OP_BUILD)
		r = sfs_op_build_new(v, &vs->op);
	else
		r = sfs_op_resolve(v, &vs->op);
	if (r < 0) {
		sfs_vstate_unref(vs);
		return sfs_errf(ret_msg, r, "vertex \"%s\": no op for \"%s\"", v->key,
				sfs_op_kind_name(v->kind));
	}
	vs->uid = lc->uid;
	vs->gid = lc->gid;
	atomic_init(&vs->sig.cancelled, false);
	atomic_init(&vs->sig.pgid, 0);
	*ret = vs;
	return 0;
}

/* Every loader adds its cache sources: the job's, the vertex's, a build vertex's. */
static int add_sources(struct sfs_solver *s, const struct load_ctx *lc, size_t idx,
		       struct vstate *vs)
{
	int r = sfs_vstate_add_sources(s, vs, lc->sources);
	if (r == 0)
		r = sfs_vstate_add_sources(s, vs, lc->spec->v[idx].cache_from);
	if (r == 0 && lc->parent)
		r = sfs_vstate_inherit_sources(vs, lc->parent);
	return r;
}

/*
 * The active vertex for spec vertex idx: joined by digest or made (the first
 * loaded definition wins).  An ignore-cache vertex never joins an active normal
 * one: it is keyed under sha256("<digest>-ignorecache") instead, which normal
 * vertices of that digest then join (docs/semantics.md §1.2 step 2).
 */
static void nocache_digest(const char *digest, char ret[SFS_DIGEST_SIZE])
{
	char buf[SFS_DIGEST_SIZE + 16];
	int n = snprintf(buf, sizeof(buf), "%s-ignorecache", digest);
	sfs_sha256_digest(buf, (size_t)n, ret);
}

static int vstate_get(struct sfs_solver *s, const struct load_ctx *lc, size_t idx,
		      struct vstate **ret, char **ret_msg)
{
	const struct sfs_spec_vertex *v = &lc->spec->v[idx];
	char nocache[SFS_DIGEST_SIZE];
	bool ignore = v->ignore_cache || lc->ignore_cache;
	/* the digest is needed only where an ignore-cache vertex is active under
	 * one or this vertex may take one: a graph without either hashes nothing */
	if (ignore || s->nocache_actives)
		nocache_digest(v->digest, nocache);
	const char *key = v->digest;
	struct vstate *vs = s->nocache_actives ? strmap_get(&s->actives, nocache) : NULL;
	if (!vs) {
		vs = strmap_get(&s->actives, v->digest);
		if (vs && !vs->ignore_cache && ignore) {
			vs = NULL;
			key = nocache;
		}
	}
	if (vs) {
		*ret = sfs_vstate_ref(vs);
		return add_sources(s, lc, idx, vs);
	}
	int r = vstate_new(s, lc, idx, key, &vs, ret_msg);
	if (r < 0)
		return r;
	r = strmap_put(&s->actives, vs->digest, vs, NULL);
	if (r < 0) {
		sfs_vstate_unref(vs);
		return r;
	}
	s->nocache_actives += key == nocache;
	sfs_vstate_ref(vs); /* the actives' reference */
	*ret = vs;
	return add_sources(s, lc, idx, vs);
}

static int vstate_add_job(struct vstate *vs, struct sfs_job *j)
{
	struct sfs_job **n = realloc(vs->jobs, (vs->njobs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	vs->jobs = n;
	vs->jobs[vs->njobs++] = j;
	return 0;
}

static int announce(struct sfs_job *j, struct vstate *vs)
{
	const char *in[vs->v->ninputs + 1];
	for (size_t i = 0; i < vs->v->ninputs; i++)
		in[i] = vs->inputs[i]->digest;
	if (sfs_progress_has_vertex(j->progress, vs->digest))
		return 0;
	/* "[name] summary", on the stack when short (most are): no allocation and
	 * no format a vertex */
	const char *summary = vs->v->summary ? vs->v->summary : "";
	size_t nlen = strlen(vs->v->name), slen = strlen(summary);
	char small[256];
	char *name = nlen + slen + 4 <= sizeof(small) ? small : malloc(nlen + slen + 4);
	if (!name)
		return -ENOMEM;
	name[0] = '[';
	memcpy(name + 1, vs->v->name, nlen);
	memcpy(name + 1 + nlen, "] ", 2);
	memcpy(name + 3 + nlen, summary, slen + 1);
	int r = sfs_progress_add_vertex(j->progress, vs->digest, name, in, vs->v->ninputs);
	if (name != small)
		free(name);
	/* a vertex another job runs already: this job sees all it said so far */
	if (r == 0)
		sfs_vstate_replay(vs, j);
	return r;
}

static void join_job(struct sfs_job *j, struct vstate *target);

/* A job joining a build vertex whose sub-build runs sees its inner vertices too. */
static int announce_children(struct sfs_job *j, struct vstate *vs, int depth)
{
	int r = 0;
	for (size_t k = 0; r == 0 && k < sfs_vstate_nchildren(vs) && depth < SFS_MAX_SUBBUILD_DEPTH;
	     k++) {
		r = announce(j, vs->sub->children[k]);
		if (r == 0)
			r = announce_children(j, vs->sub->children[k], depth + 1);
	}
	return r;
}

/*
 * A joined vertex may have inputs that are not this job's vertices for those
 * refs (its inputs are the first loader's: an ignore-cache input of this job
 * got its own variant).  The job needs them all the same: it joins them, so
 * they stay active while it runs and its key requests reach them.
 */
static void join_foreign_inputs(struct sfs_job *j, size_t idx)
{
	struct vstate *vs = j->vs[idx];
	const struct sfs_spec_vertex *v = &j->spec->v[idx];
	for (size_t k = 0; k < vs->v->ninputs && k < v->ninputs; k++)
		if (vs->inputs[k] != j->vs[v->inputs[k].ref.vertex])
			join_job(j, vs->inputs[k]);
}

int sfs_graph_load(struct sfs_solver *s, struct sfs_job *j, char **ret_msg)
{
	SFS_ASSERT_LOCKED(s);
	j->vs = calloc(j->spec->n ? j->spec->n : 1, sizeof(*j->vs));
	if (!j->vs)
		return -ENOMEM;
	j->in_graph = true;
	struct load_ctx lc = {.spec = j->spec,
			      .sources = j->spec->cache_from,
			      .loaded = j->vs,
			      .uid = j->uid,
			      .gid = j->gid,
			      .ignore_cache = j->spec->ignore_cache};
	for (size_t i = 0; i < j->spec->n; i++) {
		struct vstate *vs;
		int r = vstate_get(s, &lc, i, &vs, ret_msg);
		if (r < 0)
			return r;
		j->vs[i] = vs;
		r = vstate_add_job(vs, j);
		if (r == 0)
			r = announce(j, vs);
		if (r == 0)
			r = announce_children(j, vs, 0);
		if (r < 0)
			return r;
		join_foreign_inputs(j, i);
	}
	return 0;
}

/* Is a the vertex b or one of the sub-build parents above b? */
static bool is_ancestor(const struct vstate *a, const struct vstate *b, int depth)
{
	if (a == b)
		return true;
	for (size_t k = 0; k < sfs_vstate_nparents(b) && depth <= SFS_MAX_SUBBUILD_DEPTH; k++)
		if (is_ancestor(a, b->sub->parents[k], depth + 1))
			return true;
	return false;
}

/* Loads the inner spec of build vertex parent; *ret gets its vertices (not references). */
int sfs_graph_load_sub(struct sfs_solver *s, struct vstate *parent, struct sfs_spec *sp,
		       struct vstate ***ret, char **ret_msg)
{
	SFS_ASSERT_LOCKED(s);
	struct vstate **loaded = calloc(sp->n ? sp->n : 1, sizeof(*loaded));
	struct sfs_job *jobs[SFS_MAX_VSTATE_JOBS];
	size_t nj = sfs_vstate_jobs(parent, jobs, SFS_MAX_VSTATE_JOBS);
	struct load_ctx lc = {.spec = sp,
			      .parent = parent,
			      .loaded = loaded,
			      .uid = parent->uid,
			      .gid = parent->gid,
			      .ignore_cache = parent->ignore_cache,
			      .depth = parent->depth + 1};
	int r = loaded ? 0 : -ENOMEM;
	for (size_t i = 0; i < sp->n && r == 0; i++) {
		r = vstate_get(s, &lc, i, &loaded[i], ret_msg);
		if (r < 0)
			break;
		if (is_ancestor(loaded[i], parent, 0)) {
			/* a spec that builds itself would be its own parent: never released */
			r = sfs_errf(ret_msg, -ELOOP,
				     "vertex \"%s\" of the inner spec is the build "
				     "vertex itself or one of its parents",
				     sp->v[i].key);
			sfs_vstate_unref(loaded[i]);
			loaded[i] = NULL;
			break;
		}
		if (loaded[i]->depth < parent->depth + 1)
			loaded[i]->depth = parent->depth + 1;
		/* the child reference of the parent keeps it alive */
		struct vstate_sub *ps = sfs_vstate_sub(parent), *cs = sfs_vstate_sub(loaded[i]);
		r = ps && cs ? 0 : -ENOMEM;
		if (r == 0)
			r = sfs_vstates_push(&ps->children, &ps->nchildren, &ps->cap_children,
					     loaded[i]);
		if (r == 0)
			r = sfs_vstates_push(&cs->parents, &cs->nparents, &cs->cap_parents, parent);
		if (r < 0) {
			sfs_vstate_unref(loaded[i]);
			loaded[i] = NULL;
			break;
		}
		for (size_t k = 0; k < nj && r == 0; k++)
			r = announce(jobs[k], loaded[i]);
	}
	if (r < 0) {
		free(loaded);
		return r;
	}
	*ret = loaded;
	return 0;
}

static void vstate_remove_job(struct vstate *vs, struct sfs_job *j)
{
	for (size_t k = 0; k < vs->njobs; k++) {
		if (vs->jobs[k] == j) {
			vs->jobs[k] = vs->jobs[--vs->njobs];
			return;
		}
	}
}

static void vstate_remove_parent(struct vstate *vs, struct vstate *p)
{
	for (size_t k = 0; k < sfs_vstate_nparents(vs); k++) {
		if (vs->sub->parents[k] == p) {
			vs->sub->parents[k] = vs->sub->parents[--vs->sub->nparents];
			return;
		}
	}
}

/*
 * Removes a vertex nobody needs from the graph (deleteIfUnreferenced): its op
 * is cancelled, its waiters dropped (which also breaks input <-> parent
 * reference cycles), and its sub-build children lose it as a parent.
 */
static void vstate_release(struct sfs_solver *s, struct vstate *vs)
{
	if (vs->released || vs->njobs || sfs_vstate_nparents(vs))
		return;
	vs->released = true;
	if (strmap_get(&s->actives, vs->digest) == vs) {
		strmap_del(&s->actives, vs->digest);
		/* keyed under its ignore-cache digest (vstate_get) */
		s->nocache_actives -= strcmp(vs->digest, vs->v->digest) != 0;
	}
	sfs_vstate_cancel(vs);
	sfs_index_remove(s, vs);
	for (size_t o = 0; o < vs->nedges; o++) {
		sfs_waiters_release(&vs->edges[o].waiters);
		sfs_waiters_release(&vs->edges[o].dwaiters);
	}
	sfs_waiters_release(&vs->key_waiters);
	for (size_t i = 0; i < sfs_vstate_nchildren(vs); i++) {
		vstate_remove_parent(vs->sub->children[i], vs);
		vstate_release(s, vs->sub->children[i]);
	}
	sfs_vstate_unref(vs); /* the actives' reference */
}

void sfs_graph_discard(struct sfs_solver *s, struct sfs_job *j)
{
	SFS_ASSERT_LOCKED(s);
	if (!j->in_graph)
		return;
	j->in_graph = false;
	for (size_t i = 0; j->vs && i < j->spec->n; i++) {
		if (!j->vs[i])
			continue;
		vstate_remove_job(j->vs[i], j);
		vstate_release(s, j->vs[i]);
	}
	for (size_t i = 0; i < j->nextra; i++) {
		vstate_remove_job(j->extra[i], j);
		vstate_release(s, j->extra[i]);
	}
	for (size_t i = 0; j->vs && i < j->spec->n; i++) {
		/* a digest may appear twice in one spec: drop each reference once */
		if (j->vs[i])
			sfs_vstate_unref(j->vs[i]);
	}
	for (size_t i = 0; i < j->nextra; i++)
		sfs_vstate_unref(j->extra[i]);
	free(j->vs);
	free(j->extra);
	j->vs = NULL;
	j->extra = NULL;
	j->nextra = j->cap_extra = 0;
}

bool sfs_vstate_has_job(const struct vstate *vs, const struct sfs_job *j)
{
	for (size_t k = 0; k < vs->njobs; k++)
		if (vs->jobs[k] == j)
			return true;
	return false;
}

/* Adds job j to target and every vertex it depends on, remembering them in j->extra. */
static void join_job(struct sfs_job *j, struct vstate *target)
{
	struct vstate **stack = NULL;
	size_t n = 0, cap = 0;
	struct vstate *vs = target;

	while (vs) {
		if (!vs->released && !sfs_vstate_has_job(vs, j) && vstate_add_job(vs, j) == 0 &&
		    sfs_vstates_push(&j->extra, &j->nextra, &j->cap_extra, vs) == 0) {
			sfs_vstate_ref(vs);
			for (size_t i = 0; i < vs->v->ninputs; i++) {
				if (sfs_vstates_push(&stack, &n, &cap, vs->inputs[i]) < 0)
					break;
			}
		}
		vs = n ? stack[--n] : NULL;
	}
	free(stack);
}

/*
 * An edge of `from` merged into an edge of `target`: the jobs of `from` now
 * need target and its inputs, so those stay active while any of them runs,
 * even when target's own jobs end (BuildKit's fixed TestStaleEdgeMerge).
 */
void sfs_graph_join(struct sfs_solver *s, struct vstate *from, struct vstate *target)
{
	SFS_ASSERT_LOCKED(s);
	for (size_t k = 0; k < from->njobs; k++)
		if (from->jobs[k]->in_graph)
			join_job(from->jobs[k], target);
}

static void collect_jobs(struct vstate *vs, struct sfs_job **out, size_t max, size_t *n, int depth)
{
	for (size_t k = 0; k < vs->njobs; k++) {
		bool seen = false;
		for (size_t i = 0; i < *n && !seen; i++)
			seen = out[i] == vs->jobs[k];
		if (!seen && *n < max)
			out[(*n)++] = vs->jobs[k];
	}
	for (size_t p = 0; p < sfs_vstate_nparents(vs) && depth <= SFS_MAX_SUBBUILD_DEPTH; p++)
		collect_jobs(vs->sub->parents[p], out, max, n, depth + 1);
}

size_t sfs_vstate_jobs(struct vstate *vs, struct sfs_job **out, size_t max)
{
	SFS_ASSERT_LOCKED(vs->s);
	size_t n = 0;
	collect_jobs(vs, out, max, &n, 0);
	return n;
}
