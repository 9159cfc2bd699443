/*
 * rounds.c — what a vertex with no record does before it executes: the
 * content ("slow") keys and the two-phase rule (README "How the solver decides").
 *
 * Rounds (enum sfs_round), for the edges that wait for an exec or were asked
 * for their keys:
 *   1. DISCOVER: inputs without definition matches are asked what keys they
 *      can find through content without being loaded (BuildKit's cache-slow
 *      state);
 *   2. HASH: those still without matches that have a content function are
 *      completed and hashed;
 *   3. ALL: only when an exec is wanted: every input is completed, then the
 *      op runs.
 * After each round one SLOW task computes the content keys and probes the cache
 * with what the round learnt; a record found ends the rounds: loaded when a
 * result is wanted, advertised as a key when only keys were asked for.
 *
 * State changes run with sfs_solver.lock held; the SLOW task hashes and queries
 * without it, on the vertex's own maps and matches, which only it touches then.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "internal.h"

/* Takes keys found through content keys into e, and whether they have records (lock held). */
static void absorb_late(const struct cache_combined *cc, struct edge *e, struct keys_found *kf)
{
	for (size_t k = 0; k < kf->nkeys; k++)
		sfs_keyset_add(&e->late, cc, kf->keys[k]);
	e->loadable |= kf->nloadable > 0;
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
 * The rounds of docs/semantics.md §1.5 step 7, for an edge that has no record yet:
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
	if (vs->round == SFS_ROUND_ALL)
		return true;
	if (input_has_match(vs, i))
		return false;
	return vs->round == SFS_ROUND_DISCOVER || vs->v->inputs[i].content_func;
}

static bool discovery_needed(const struct edge *ie)
{
	return (ie->phase == EDGE_IDLE || ie->phase == EDGE_WAIT_EXEC) && !ie->discovered &&
	       ie->nkeys == 0 && ie->vs->v->ninputs > 0 && !ie->vs->released;
}

static bool round_input_ready(struct vstate *vs, const struct edge *ie)
{
	if (vs->round == SFS_ROUND_DISCOVER)
		return !discovery_needed(ie);
	return ie->phase == EDGE_DONE;
}

static void answer_discovering(struct sfs_solver *s, struct vstate *vs, bool all);

/* Asks input edge ie what keys it can find without being loaded. */
static void edge_request_discover(struct sfs_solver *s, struct edge *ie, struct vstate *parent)
{
	if (sfs_waiters_add(&ie->dwaiters, W_DISCOVER, NULL, 0, parent) < 0) {
		struct sfs_failure *f =
		    sfs_failure_new(-ENOMEM, ie->vs->v->digest, "out of memory");
		sfs_edge_fail(s, ie, f);
		sfs_failure_unref(f);
		return;
	}
	if (ie->discovering)
		return;
	ie->discovering = true;
	sfs_defer(s, SFS_DEFER_ROUNDS, ie->vs, NULL);
}

static void start_round(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	size_t pending = 0, ni = vs->v->ninputs;
	bool ask[ni + 1];
	enum sfs_round round = vs->round;

	sfs_vstate_set_phase(vs, VSTATE_WAIT_INPUTS);
	for (size_t i = 0; i < ni; i++) {
		struct edge *ie = sfs_input_edge(vs, i);
		ask[i] = false;
		if (!in_round(vs, i))
			continue;
		if (ie->phase == EDGE_FAILED) {
			sfs_vstate_fail(s, vs, ie->failure);
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
		if (round == SFS_ROUND_DISCOVER)
			edge_request_discover(s, sfs_input_edge(vs, i), vs);
		else
			sfs_edge_request(s, sfs_input_edge(vs, i), NULL, 0, vs);
	}
	if (vs->phase == VSTATE_WAIT_INPUTS && vs->round == round && --vs->inputs_pending == 0)
		sfs_vstate_round_inputs_done(s, vs);
}

static bool wants_exec(const struct vstate *vs)
{
	for (size_t o = 0; o < vs->nedges; o++)
		if (vs->edges[o].phase == EDGE_WAIT_EXEC)
			return true;
	return false;
}

/* Starts the rounds of a keyed vertex for its active edges. */
void sfs_vstate_start_rounds(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	if (vs->phase != VSTATE_KEYED)
		return; /* rounds already running: they answer every active edge */
	if (vs->v->ninputs == 0) {
		if (wants_exec(vs)) {
			sfs_vstate_set_phase(vs, VSTATE_EXEC);
			sfs_queue_task(s, TASK_EXEC, vs, NULL);
		}
		/* a root has nothing more to find: its maps are all fetched */
		answer_discovering(s, vs, true);
		return;
	}
	sfs_vstate_set_round(vs, SFS_ROUND_DISCOVER);
	start_round(s, vs);
}

void sfs_vstate_request_exec(struct sfs_solver *s, struct vstate *vs)
{
	sfs_defer(s, SFS_DEFER_ROUNDS, vs, NULL);
}

static bool needs_slow(struct vstate *vs, size_t i)
{
	return vs->round >= SFS_ROUND_HASH && in_round(vs, i) && vs->v->inputs[i].content_func &&
	       sfs_input_edge(vs, i)->phase == EDGE_DONE && !(vs->slow && vs->slow[i]);
}

/* Keys of input i to probe with after a round: found late, or loaded under. */
static bool has_probe_keys(const struct edge *ie)
{
	return ie->late.n || (ie->phase == EDGE_DONE && ie->cached && ie->nresult_keys);
}

/* Answers the edges asked for keys: those that found some, or all (lock held). */
static void answer_discovering(struct sfs_solver *s, struct vstate *vs, bool all)
{
	SFS_ASSERT_LOCKED(s);
	for (size_t o = 0; o < vs->nedges; o++) {
		struct edge *e = &vs->edges[o];
		if (e->discovering && (all || e->late.n))
			sfs_edge_discovered(s, e);
	}
}

/*
 * After a round: load or advertise what was found, else the next round.  The
 * vertex's next state is set before anyone is answered, because an answer may
 * come straight back as a request to this vertex.
 */
static void after_slow(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	bool need_exec = false, open = false;
	for (size_t o = 0; o < vs->nedges; o++) {
		struct edge *e = &vs->edges[o];
		if (e->phase == EDGE_WAIT_EXEC) {
			if (e->loadable) {
				sfs_edge_set_phase(e, EDGE_LOADING);
				sfs_queue_task(s, TASK_LOAD, vs, e);
			} else {
				need_exec = true;
			}
		} else if (e->discovering && e->phase == EDGE_IDLE && !e->late.n) {
			open = true;
		}
	}
	if (!need_exec && !open) {
		sfs_vstate_set_phase(vs, VSTATE_KEYED); /* a failed load asks for an exec again */
		sfs_vstate_set_round(vs, SFS_ROUND_NONE);
		answer_discovering(s, vs, false);
	} else if (vs->round == SFS_ROUND_DISCOVER || (vs->round == SFS_ROUND_HASH && need_exec)) {
		bool first = vs->round == SFS_ROUND_DISCOVER;
		sfs_vstate_set_round(vs, first ? SFS_ROUND_HASH : SFS_ROUND_ALL);
		answer_discovering(s, vs, false);
		start_round(s, vs);
	} else if (vs->round == SFS_ROUND_HASH) {
		/* only keys were asked for, and not all were found */
		sfs_vstate_set_phase(vs, VSTATE_KEYED);
		sfs_vstate_set_round(vs, SFS_ROUND_NONE);
		answer_discovering(s, vs, true);
	} else if (!need_exec) {
		/* the last round (SFS_ROUND_ALL) found records for every edge that wanted a result;
		 * only key questions are left, and the answer is what was found */
		sfs_vstate_set_phase(vs, VSTATE_KEYED);
		sfs_vstate_set_round(vs, SFS_ROUND_NONE);
		answer_discovering(s, vs, true);
	} else {
		sfs_vstate_set_phase(vs, VSTATE_EXEC);
		sfs_queue_task(s, TASK_EXEC, vs, NULL);
		answer_discovering(s, vs, false);
	}
}

void sfs_vstate_round_inputs_done(struct sfs_solver *s, struct vstate *vs)
{
	SFS_ASSERT_LOCKED(s);
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		bool probe =
		    !vs->ignore_cache && in_round(vs, i) && has_probe_keys(sfs_input_edge(vs, i));
		if (needs_slow(vs, i) || probe) {
			sfs_vstate_set_phase(vs, VSTATE_SLOW);
			sfs_queue_task(s, TASK_SLOW, vs, NULL);
			return;
		}
	}
	after_slow(s, vs);
}

/* The content key of input i (docs/semantics.md §3). */
static int content_key(struct vstate *vs, size_t i, struct cache_key **ret, char **ret_msg)
{
	const char *result = sfs_input_edge(vs, i)->result;
	char d[SFS_DIGEST_SIZE];
	struct sfs_op_ctx ctx;
	sfs_vstate_op_ctx(vs, &ctx);
	int r = sfs_op_content_digest(vs->op, &ctx, i, result, d, ret_msg);
	if (r < 0)
		return r;
	*ret = cache_key_new(d, -1, 0);
	return *ret ? 0 : -ENOMEM;
}

/* Probes with a content key, and links it to the input's result keys (carry-over). */
static int probe_slow(const struct cache_combined *cc, struct vstate *vs, size_t i, int o,
		      struct cache_key *slow)
{
	const struct sfs_cache_map *m = &vs->maps[0];
	struct edge *ie = sfs_input_edge(vs, i);
	struct cache_key_with_selector alts[ie->nresult_keys + 1];
	memset(alts[0].selector, 0, SFS_DIGEST_SIZE);
	alts[0].key = slow;
	int r = sfs_query_into(cc, alts, 1, i, m, o, &vs->edges[o].matches[i]);
	for (size_t a = 0; a < ie->nresult_keys; a++) {
		memcpy(alts[a + 1].selector, m->deps[i].selector, SFS_DIGEST_SIZE);
		alts[a + 1].key = ie->result_keys[a];
	}
	if (r == 0)
		r = sfs_query_into(cc, alts, ie->nresult_keys + 1, i, m, o, NULL);
	return r;
}

/* Probes output o with keys of input i (each with the map's selector for i). */
static int probe_keys(const struct cache_combined *cc, struct vstate *vs, size_t i, int o,
		      const struct keyset *keys)
{
	const struct sfs_cache_map *m = &vs->maps[0];
	struct cache_key_with_selector alts[keys->n + 1];
	for (size_t a = 0; a < keys->n; a++) {
		memcpy(alts[a].selector, m->deps[i].selector, SFS_DIGEST_SIZE);
		alts[a].key = keys->k[a];
	}
	return sfs_query_into(cc, alts, keys->n, i, m, o, &vs->edges[o].matches[i]);
}

/* The keys of input i to probe with after a round (lock held): see has_probe_keys. */
static void probe_keys_of(const struct cache_combined *cc, struct edge *ie, struct keyset *ret)
{
	for (size_t k = 0; k < ie->late.n; k++)
		sfs_keyset_add(ret, cc, ie->late.k[k]);
	if (ie->phase == EDGE_DONE && ie->cached)
		for (size_t k = 0; k < ie->nresult_keys; k++)
			sfs_keyset_add(ret, cc, ie->result_keys[k]);
}

void sfs_run_slow(struct sfs_solver *s, struct vstate *vs)
{
	const struct cache_combined *cc = &vs->cc;
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
	sfs_solver_lock(s);
	for (size_t o = 0; o < ne; o++)
		want[o] = edge_active(&vs->edges[o]) && vs->edges[o].matches;
	for (size_t i = 0; i < ni; i++) {
		todo[i] = needs_slow(vs, i);
		if (in_round(vs, i))
			probe_keys_of(cc, sfs_input_edge(vs, i), &known[i]);
	}
	sfs_solver_unlock(s);

	for (size_t i = 0; i < ni && r == 0; i++) {
		if (!todo[i])
			continue;
		r = content_key(vs, i, &slow[i], &msg);
		sfs_solver_lock(s);
		s->stats.slow_keys++;
		sfs_solver_unlock(s);
	}
	for (size_t o = 0; o < ne && r == 0 && !vs->ignore_cache; o++) {
		if (!want[o])
			continue;
		struct edge *e = &vs->edges[o];
		for (size_t i = 0; i < ni && r == 0; i++) {
			if (known[i].n)
				r = probe_keys(cc, vs, i, (int)o, &known[i]);
			if (r == 0 && slow[i])
				r = probe_slow(cc, vs, i, (int)o, slow[i]);
		}
		struct keyset def = {e->keys, e->nkeys}, deps[ni];
		memset(deps, 0, sizeof(deps));
		for (size_t i = 0; i < ni && r == 0; i++) {
			for (size_t a = 0; r == 0 && a < known[i].n; a++)
				r = sfs_keyset_add(&deps[i], cc, known[i].k[a]);
			if (r == 0 && slow[i])
				r = sfs_keyset_add(&deps[i], cc, slow[i]);
		}
		if (r == 0)
			r = sfs_intersect(cc, e, ni, &def, deps, &kf[o]);
		for (size_t i = 0; i < ni; i++)
			sfs_keyset_release(&deps[i]);
	}
	for (size_t i = 0; i < ni; i++)
		sfs_keyset_release(&known[i]);

	sfs_solver_lock(s);
	if (r < 0) {
		sfs_err_prefix(&msg, r, "failed to compute cache key");
		sfs_vstate_progress_started(vs, false);
		sfs_vstate_exec_failed(s, vs, r, msg);
	} else {
		if (!vs->slow)
			vs->slow = calloc(ni, sizeof(*vs->slow));
		for (size_t i = 0; i < ni && vs->slow; i++)
			if (slow[i])
				vs->slow[i] = cache_key_ref(slow[i]);
		for (size_t o = 0; o < ne; o++) {
			s->stats.keys_found += kf[o].nkeys;
			s->stats.key_candidates += kf[o].ncandidates;
			absorb_late(cc, &vs->edges[o], &kf[o]);
		}
		after_slow(s, vs);
	}
	sfs_solver_unlock(s);
	for (size_t i = 0; i < ni; i++)
		cache_key_unref(slow[i]);
	for (size_t o = 0; o < ne; o++)
		sfs_keys_found_release(&kf[o]);
	free(msg);
}
