/*
 * edgeindex.c — merging edges that reach the same cache key while active
 * (BuildKit's edgeIndex and scheduler.mergeTo, docs/semantics.md §1.7).
 *
 * When a vertex knows its cache maps, each of its edges is registered in the
 * solver's edge index under a merge signature:
 *   - a root edge under rootKey(map digest, output) for every map it fetched,
 *     so two `local` vertices of different jobs with equal content meet through
 *     their content map;
 *   - any other edge under sha256 of its map digest, output and, per input, the
 *     selector and the identity of the input edge after merging, so users of
 *     merged inputs merge in turn.
 * A second edge with a signature already taken by a live edge is merged into
 * it: it waits for that edge (EDGE_MERGED) and takes its result, and the op runs
 * once.  Rules kept from BuildKit's fixed versions: an ignore-cache edge never
 * merges into a normal one (it takes the index entry instead); chains resolve
 * to one owner; nothing merges into an edge of its own vertex or inputs; the
 * merged vertex still reports progress; a released target hands its merged
 * edges back to their own vertices.
 *
 * Everything here runs with sfs_solver.lock held.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "numtext.h"
#include "sha256.h"
#include "internal.h"

struct edge *sfs_edge_owner(struct edge *e)
{
	while (e->phase == EDGE_MERGED && e->merged_into)
		e = e->merged_into;
	return e;
}

static int sig_of(struct vstate *vs, const struct sfs_cache_map *m, int o, struct sfs_dgst *ret)
{
	if (vs->v->ninputs == 0) {
		char root[SFS_DIGEST_SIZE];
		sfs_root_key(m->digest, o, root);
		return sfs_dgst_from_text(root, ret);
	}
	/* "merge\n<map digest>@<o>", then "\n<selector>=<owner edge's address>" an
	 * input: built without printf (every vertex of a graph registers) */
	struct strbuf sb = STRBUF_INIT;
	char num[SFS_NUM_SIZE];
	strbuf_addstr(&sb, "merge\n");
	strbuf_addstr(&sb, m->digest);
	strbuf_addch(&sb, '@');
	strbuf_add(&sb, num, sfs_i64_text(num, o));
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		struct edge *ie = &vs->inputs[i]->edges[vs->v->inputs[i].ref.output];
		strbuf_addch(&sb, '\n');
		strbuf_addstr(&sb, m->deps[i].selector);
		strbuf_addstr(&sb, "=0x");
		strbuf_add(&sb, num,
			   sfs_u64_text(num, (uint64_t)(uintptr_t)sfs_edge_owner(ie), 16));
	}
	if (sb.oom) {
		strbuf_release(&sb);
		return -ENOMEM;
	}
	sfs_dgst_of(sb.buf, sb.len, ret);
	strbuf_release(&sb);
	return 0;
}

static bool is_input_of(struct vstate *target, struct vstate *vs)
{
	for (size_t i = 0; i < vs->v->ninputs; i++)
		if (vs->inputs[i] == target)
			return true;
	return false;
}

/* Puts e in the index under sig, which e's list then holds (the index's key). */
static void take_sig(struct sfs_solver *s, struct edge *e, const struct sfs_dgst *sig)
{
	struct edge_sig *n = malloc(sizeof(*n));
	if (!n)
		return; /* no memory: e is not found by the edges that would merge into it */
	n->d = *sig;
	if (dgstmap_put(&s->edge_index, &n->d, e, NULL) < 0) {
		free(n);
		return;
	}
	n->next = e->sigs;
	e->sigs = n;
}

static void merge_into(struct sfs_solver *s, struct edge *e, struct edge *target);

/* Registers e under sig; merges it when a live edge already holds sig. */
static bool register_sig(struct sfs_solver *s, struct edge *e, const struct sfs_dgst *sig)
{
	struct edge *f = dgstmap_get(&s->edge_index, sig);
	if (f)
		f = sfs_edge_owner(f);
	bool take = !f || f->vs->released || f->phase == EDGE_FAILED ||
		    (!f->vs->ignore_cache && e->vs->ignore_cache);
	if (f == e || (f && f->vs == e->vs))
		return false;
	if (!take && !is_input_of(f->vs, e->vs)) {
		merge_into(s, e, f);
		return true;
	}
	if (take)
		take_sig(s, e, sig);
	return false;
}

void sfs_index_register(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	if (vs->released)
		return; /* only live edges are in the index */
	for (size_t o = 0; o < vs->nedges; o++) {
		struct edge *e = &vs->edges[o];
		if (e->phase != EDGE_IDLE)
			continue;
		for (size_t m = 0; m < vs->nmaps; m++) {
			struct sfs_dgst sig;
			if (sig_of(vs, &vs->maps[m], (int)o, &sig) < 0)
				break;
			if (register_sig(s, e, &sig))
				break;
		}
	}
}

/* A merged root saves the result under its own maps' keys (sfs_run_alias) once
 * it is known: at the merge when the target is already done (nobody needs to
 * want the root), else when the root receives it (sfs_edge_merge_done).  A root that
 * merged into a running target and is never wanted is not aliased. */
static void alias_root(struct sfs_solver *s, struct edge *e)
{
	struct edge *owner = e->phase == EDGE_MERGED ? sfs_edge_owner(e) : e;
	if (e->vs->v->ninputs || e->vs->aliased || owner->phase != EDGE_DONE)
		return;
	e->vs->aliased = true;
	sfs_queue_task(s, TASK_ALIAS, e->vs, NULL);
}

static void merge_into(struct sfs_solver *s, struct edge *e, struct edge *target)
{
	sfs_edge_set_phase(e, EDGE_MERGED);
	e->merged_into = target;
	e->merge_hold = sfs_vstate_ref(target->vs);
	sfs_graph_join(s, e->vs, target->vs);
	free(e->vs->why);
	e->vs->why = NULL;
	if (asprintf(&e->vs->why, "merged: same cache key as active vertex %s",
		     target->vs->digest) < 0)
		e->vs->why = NULL;
	if (e->want)
		sfs_edge_request_merged(s, e);
	alias_root(s, e);
}

void sfs_edge_merge_done(struct sfs_solver *s, struct edge *e, struct edge *target)
{
	SFS_ASSERT_LOCKED(s);
	if (e->phase != EDGE_MERGED || e->vs->released)
		return;
	e->merged_into = NULL;
	if (target->phase == EDGE_FAILED) {
		e->failure = sfs_failure_ref(target->failure);
		sfs_edge_set_phase(e, EDGE_FAILED);
	} else {
		sfs_copy_str(e->result, sizeof(e->result), target->result);
		sfs_edge_hold(s, e);
		e->result_keys = calloc(target->nresult_keys + 1, sizeof(*e->result_keys));
		for (size_t k = 0; e->result_keys && k < target->nresult_keys; k++)
			e->result_keys[e->nresult_keys++] = cache_key_ref(target->result_keys[k]);
		e->cached = true;
		sfs_edge_set_phase(e, EDGE_DONE);
		alias_root(s, e);
	}
	struct vstate *vs = e->vs;
	bool all = true;
	for (size_t o = 0; o < vs->nedges; o++)
		all &= vs->edges[o].phase == EDGE_DONE || vs->edges[o].phase == EDGE_FAILED;
	if (all && vs->state != SFS_VERTEX_DONE && vs->state != SFS_VERTEX_CACHED) {
		if (!vs->started)
			sfs_vstate_progress_started(vs, true);
		sfs_vstate_progress_completed(vs, true, e->failure ? e->failure->msg : NULL);
	}
	sfs_edge_settle(s, e);
}

/* A merged edge whose target went away does its own work again (lock held). */
void sfs_edge_unmerge(struct sfs_solver *s, struct edge *e)
{
	SFS_ASSERT_LOCKED(s);
	if (e->phase != EDGE_MERGED)
		return;
	sfs_edge_set_phase(e, EDGE_IDLE);
	e->merged_into = NULL;
	e->merge_asked = false;
	struct vstate *hold = e->merge_hold;
	e->merge_hold = NULL;
	sfs_edge_proceed(s, e);
	sfs_vstate_unref(hold);
}

void sfs_index_remove(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	for (size_t o = 0; o < vs->nedges; o++) {
		struct edge *e = &vs->edges[o];
		for (struct edge_sig *g = e->sigs, *next; g; g = next) {
			next = g->next;
			if (dgstmap_get(&s->edge_index, &g->d) == e)
				dgstmap_del(&s->edge_index, &g->d);
			free(g);
		}
		e->sigs = NULL;
		/* edges merged into ours go back to doing their own work */
		for (size_t i = 0; i < e->waiters.n; i++) {
			struct waiter *w = &e->waiters.w[i];
			if (w->kind != W_MERGE || w->vs->released)
				continue;
			struct edge *me = &w->vs->edges[w->out];
			if (me->phase != EDGE_MERGED)
				continue;
			sfs_edge_unmerge(s, me);
		}
	}
}
