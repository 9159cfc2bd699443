/*
 * edge.c — who waits for an edge, and how results and failures reach them
 * (docs/semantics.md §1.5 step 9).
 *
 * An edge is one output of an active vertex.  Its waiters are job outputs,
 * vertices that need it as an input, build vertices waiting for a sub-build,
 * edges merged into it, and (dwaiters) vertices that only asked what keys it can
 * find.  When the edge completes or fails every waiter is told at once; a
 * failure spreads to every vertex that waited for the failed vertex's keys.
 *
 * Everything here runs with sfs_solver.lock held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "internal.h"

static void input_discovered(struct sfs_solver *s, struct vstate *parent, struct edge *e);
static void edge_request(struct sfs_solver *s, struct edge *e, enum waiter_kind kind,
			 struct sfs_job *job, size_t out, struct vstate *vs);

struct sfs_failure *sfs_failure_new(int err, const char *digest, const char *msg)
{
	struct sfs_failure *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->refs = 1;
	f->err = err;
	sfs_copy_str(f->digest, sizeof(f->digest), digest);
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

static void input_done(struct sfs_solver *s, struct vstate *parent, struct edge *e)
{
	if (parent->phase != VSTATE_WAIT_INPUTS || parent->released)
		return;
	if (e->phase == EDGE_FAILED) {
		sfs_vstate_fail(s, parent, e->failure);
		return;
	}
	if (--parent->inputs_pending == 0)
		sfs_vstate_round_inputs_done(s, parent);
}

/* An input said what it can find through content: that counts in the discover round only. */
static void input_discovered(struct sfs_solver *s, struct vstate *parent, struct edge *e)
{
	if (parent->round == SFS_ROUND_DISCOVER)
		input_done(s, parent, e);
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
		sfs_edge_merge_done(s, &w->vs->edges[w->out], e);
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
	sfs_waiters_release(&w);
}

void sfs_edge_settle(struct sfs_solver *s, struct edge *e)
{
	SFS_ASSERT_LOCKED(s);
	deliver_all(s, e, &e->waiters);
	e->discovering = false;
	e->discovered = true;
	deliver_all(s, e, &e->dwaiters); /* a result answers "what keys" too */
}

/* The keys edge e can find without loading are known: tell who asked. */
void sfs_edge_discovered(struct sfs_solver *s, struct edge *e)
{
	SFS_ASSERT_LOCKED(s);
	e->discovering = false;
	e->discovered = true;
	deliver_all(s, e, &e->dwaiters);
}

void sfs_edge_fail(struct sfs_solver *s, struct edge *e, struct sfs_failure *f)
{
	SFS_ASSERT_LOCKED(s);
	if (e->phase == EDGE_DONE || e->phase == EDGE_FAILED)
		return;
	sfs_edge_set_phase(e, EDGE_FAILED);
	e->failure = sfs_failure_ref(f);
	sfs_edge_settle(s, e);
}

/* Fails one vertex: its edges (and so their waiters) and its key waiters. */
static void vertex_fail_one(struct sfs_solver *s, struct vstate *vs, struct sfs_failure *f)
{
	if (vs->phase == VSTATE_FAILED || vs->phase == VSTATE_EXECUTED)
		return;
	sfs_vstate_set_phase(vs, VSTATE_FAILED);
	vs->failure = sfs_failure_ref(f);
	for (size_t o = 0; o < vs->nedges; o++)
		sfs_edge_fail(s, &vs->edges[o], f);
	struct waiters w = vs->key_waiters;
	memset(&vs->key_waiters, 0, sizeof(vs->key_waiters));
	for (size_t i = 0; i < w.n; i++)
		sfs_vstate_fail(s, w.w[i].vs, f);
	sfs_waiters_release(&w);
}

/*
 * Runs fn-like work for vs now if nothing is being drained, else queues it for
 * the outermost call's loop.  A failure travels up a chain through waiters and
 * a request (rounds) travels down through inputs; done by recursion, a
 * 100,000-vertex chain would need 100,000 stack frames.
 */
void sfs_defer(struct sfs_solver *s, int kind, struct vstate *vs, struct sfs_failure *f)
{
	SFS_ASSERT_LOCKED(s);
	if (sfs_grow((void **)&s->deferred, &s->capdeferred, s->ndeferred + 1,
		     sizeof(*s->deferred)) < 0) {
		sfs_log(SFS_LOG_ERR, "out of memory deferring solver work");
		return;
	}
	s->deferred[s->ndeferred++] =
	    (struct sfs_deferred){kind, sfs_vstate_ref(vs), f ? sfs_failure_ref(f) : NULL};
	if (s->draining)
		return;
	s->draining = true;
	while (s->deferred_head < s->ndeferred) {
		struct sfs_deferred d = s->deferred[s->deferred_head++];
		if (d.kind == SFS_DEFER_FAIL)
			vertex_fail_one(s, d.vs, d.f);
		else
			sfs_vstate_start_rounds(s, d.vs);
		sfs_vstate_unref(d.vs);
		sfs_failure_unref(d.f);
	}
	s->ndeferred = s->deferred_head = 0;
	s->draining = false;
}

/* Fails a vertex and, in time, everything that waited for it. */
void sfs_vstate_fail(struct sfs_solver *s, struct vstate *vs, struct sfs_failure *f)
{
	sfs_defer(s, SFS_DEFER_FAIL, vs, f);
}

/* Asks for the keys of vs; its inputs must have been asked before (topological order). */
void sfs_vstate_request_keys(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	if (vs->phase != VSTATE_NEW)
		return;
	sfs_vstate_set_phase(vs, VSTATE_WAIT_KEYS);
	size_t pending = 0;
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		struct vstate *in = vs->inputs[i];
		if (in->phase == VSTATE_FAILED) {
			sfs_vstate_fail(s, vs, in->failure);
			return;
		}
		if (in->phase == VSTATE_NEW)
			sfs_vstate_request_keys(s, in); /* an input of another job's definition */
		if (in->phase < VSTATE_KEYED) {
			if (sfs_waiters_add(&in->key_waiters, W_INPUT, NULL, 0, vs) < 0)
				continue;
			pending++;
		}
	}
	vs->inputs_pending = pending;
	if (pending == 0) {
		sfs_vstate_set_phase(vs, VSTATE_KEYING);
		sfs_queue_task(s, TASK_KEYS, vs, NULL);
	}
}

void sfs_edge_proceed(struct sfs_solver *s, struct edge *e)
{
	SFS_ASSERT_LOCKED(s);
	if (e->phase != EDGE_IDLE || !e->want)
		return;
	struct vstate *vs = e->vs;
	if (vs->phase == VSTATE_EXECUTED || !e->loadable) {
		sfs_edge_set_phase(e, EDGE_WAIT_EXEC);
		sfs_vstate_request_exec(s, vs);
		return;
	}
	sfs_edge_set_phase(e, EDGE_LOADING);
	sfs_queue_task(s, TASK_LOAD, vs, e);
}

void sfs_edge_hold(struct sfs_solver *s, struct edge *e)
{
	SFS_ASSERT_LOCKED(s);
	if (e->held || !e->result[0])
		return;
	if (cache_hold(s->cache->holds, e->result) < 0) /* GC may take it: a load then fails */
		sfs_log(SFS_LOG_WARN, "out of memory holding result %s", e->result);
	else
		e->held = true;
}

void sfs_edge_complete(struct sfs_solver *s, struct edge *e, const char *result,
		       struct cache_key **keys, size_t nkeys, bool cached)
{
	SFS_ASSERT_LOCKED(s);
	sfs_copy_str(e->result, sizeof(e->result), result);
	sfs_edge_hold(s, e);
	e->result_keys = keys;
	e->nresult_keys = nkeys;
	e->cached = cached;
	sfs_edge_set_phase(e, EDGE_DONE);
	/* what only the search for a record needed: a done edge keeps its keys
	 * (later users query with them) and drops its candidates */
	e->loadable = false;
	sfs_edge_drop_matches(e);
	sfs_edge_settle(s, e);
}

void sfs_edge_drop_matches(struct edge *e)
{
	for (size_t i = 0; e->matches && i < e->vs->v->ninputs; i++)
		sfs_keyset_release(&e->matches[i]);
	free(e->matches);
	e->matches = NULL;
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
	SFS_ASSERT_LOCKED(s);
	struct waiter w = {kind, job, out, vs};
	if (e->phase == EDGE_DONE || e->phase == EDGE_FAILED) {
		deliver(s, e, &w);
		return;
	}
	if (sfs_waiters_add(&e->waiters, kind, job, out, vs) < 0) {
		struct sfs_failure *f = sfs_failure_new(-ENOMEM, e->vs->v->digest, "out of memory");
		sfs_edge_fail(s, e, f);
		sfs_failure_unref(f);
		return;
	}
	e->want = true;
	if (e->phase == EDGE_MERGED)
		sfs_edge_request_merged(s, e);
	else if (e->vs->phase >= VSTATE_KEYED)
		sfs_edge_proceed(s, e);
}

/* A merged edge that is wanted asks the edge it was merged into, once. */
void sfs_edge_request_merged(struct sfs_solver *s, struct edge *e)
{
	if (e->merge_asked)
		return;
	struct edge *owner = sfs_edge_owner(e->merged_into);
	if (owner->vs->released) {
		sfs_edge_unmerge(s, e); /* its target was cancelled: do the work here */
		return;
	}
	e->merge_asked = true;
	edge_request(s, owner, W_MERGE, NULL, (size_t)e->output, e->vs);
}

void sfs_vstate_cancel(struct vstate *vs)
{
	atomic_store(&vs->sig.cancelled, true);
	int pg = atomic_load(&vs->sig.pgid);
	if (pg > 0)
		kill(-pg, SIGKILL);
}
