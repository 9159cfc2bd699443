/*
 * run.c — loading a record and executing an op (docs/semantics.md §1.5 steps 5-6,
 * §2.2).
 *
 * LOAD loads the best record of an edge (newest, then main cache); a failed
 * load is remembered so that record is never tried again, and the edge falls
 * back to the next record, then to executing.  EXEC runs the op once for all
 * outputs (or starts a sub-build), saves every output under its commit key(s)
 * — a root under one key per cache map, sharing one record — and completes the
 * edges.  Both work without the lock and take it to publish.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "du.h"
#include "err.h"
#include "internal.h"

/* The key of e a record was found under (its id in the record's manager). */
static struct cache_key *key_by_id(const struct cache_manager *cm, struct edge *e, const char *id)
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

/* Edge e's keys, referenced (lock held): the records LOAD fetches are theirs. */
static struct cache_key **load_keys(struct edge *e, size_t *ret_n)
{
	size_t n = e->nkeys + e->late.n;
	struct cache_key **v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		v[i] = cache_key_ref(i < e->nkeys ? e->keys[i] : e->late.k[i - e->nkeys]);
	*ret_n = v ? n : 0;
	return v;
}

/* Drops the records of e->bad from v (lock held); how many are left. */
static size_t drop_bad(const struct edge *e, struct cache_record *v, size_t n)
{
	size_t keep = 0;
	for (size_t i = 0; i < n; i++) {
		bool bad = false;
		for (size_t b = 0; b < e->nbad && !bad; b++)
			bad = strcmp(e->bad[b], v[i].id) == 0;
		if (!bad)
			v[keep++] = v[i];
	}
	return keep;
}

/*
 * The loadable records of e, fetched now (the KEYS task only learnt that some
 * key has one): those of its keys, in order, each key's as Records gives them,
 * so the best is the one a list kept since KEYS would give.  *ret malloc'd.
 */
static int load_records(struct sfs_solver *s, struct vstate *vs, struct edge *e,
			struct cache_record **ret, size_t *ret_n)
{
	size_t nk, n = 0;
	struct cache_record *v = NULL;

	sfs_solver_lock(s);
	struct cache_key **keys = load_keys(e, &nk);
	sfs_solver_unlock(s);
	int r = keys ? 0 : -ENOMEM;
	for (size_t i = 0; i < nk; i++) {
		if (r == 0)
			r = sfs_key_records(&vs->cc, NULL, keys[i], &v, &n);
		cache_key_unref(keys[i]);
	}
	free(keys);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* A load that found no record (they went since KEYS) or failed: the next best
 * record, else the exec (lock held). */
static void load_fall_back(struct sfs_solver *s, struct edge *e, bool more)
{
	e->loadable = more;
	sfs_edge_set_phase(e, EDGE_IDLE);
	sfs_edge_proceed(s, e);
}

void sfs_run_load(struct sfs_solver *s, struct vstate *vs, struct edge *e)
{
	char result[SFS_DIGEST_SIZE] = "";
	struct cache_record *recs = NULL;
	size_t nrecs = 0;
	char *msg = NULL;
	int r = load_records(s, vs, e, &recs, &nrecs);

	sfs_solver_lock(s);
	if (e->phase != EDGE_LOADING) {
		/* the vertex executed meanwhile and gave this edge its result */
		sfs_solver_unlock(s);
		free(recs);
		return;
	}
	nrecs = r == 0 ? drop_bad(e, recs, nrecs) : 0;
	if (nrecs == 0) {
		if (r < 0)
			sfs_log(SFS_LOG_WARN, "records of %s: %s; executing", vs->digest,
				strerror(-r));
		load_fall_back(s, e, false);
		sfs_solver_unlock(s);
		free(recs);
		return;
	}
	struct cache_record rec = *cache_records_best(recs, nrecs);
	struct cache_key *k = key_by_id(rec.cm, e, rec.key_id);
	if (k)
		cache_key_ref(k);
	sfs_vstate_progress_started(vs, true);
	s->stats.loads++;
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);

	/* held before the load: a GC either skipped it or deleted it before (holds.h) */
	struct cache_holds *holds = s->cache->holds;
	r = k ? cache_hold(holds, rec.result) : -ENOENT;
	bool pre_held = r == 0;
	/* a record of an extra source is copied into the local cache as it loads */
	if (r == 0)
		r = cache_combined_load(&vs->cc, k, &rec, result, &msg);

	sfs_solver_lock(s);
	if (e->phase != EDGE_LOADING) {
		/* the vertex executed meanwhile and gave this edge its result */
		cache_key_unref(k);
		sfs_solver_unlock(s);
		if (pre_held)
			cache_unhold(holds, rec.result);
		free(recs);
		free(msg);
		return;
	}
	if (r == 0) {
		struct cache_key **keys = calloc(1, sizeof(*keys));
		if (keys && k) {
			keys[0] = k;
			k = NULL;
			free(vs->why);
			vs->why = sfs_why_cached(&rec, sfs_now_ns());
			sfs_vstate_progress_completed(vs, true, NULL);
			sfs_edge_complete(s, e, result, keys, 1, true);
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
		int n =
		    snprintf(line, sizeof(line), "cache load of record %s failed (%s); executing\n",
			     rec.id, msg ? msg : strerror(-r));
		struct sfs_job *jobs[SFS_MAX_VSTATE_JOBS];
		size_t nj = sfs_vstate_jobs(vs, jobs, SFS_MAX_VSTATE_JOBS);
		for (size_t jk = 0; n > 0 && jk < nj; jk++)
			sfs_progress_log(jobs[jk]->progress, vs->digest, 2, line, (size_t)n,
					 sfs_now_ns());
		char **nb = realloc(e->bad, (e->nbad + 1) * sizeof(*nb));
		bool marked = false;
		if (nb) {
			e->bad = nb;
			if ((e->bad[e->nbad] = strdup(rec.id))) {
				e->nbad++;
				marked = true;
			}
		}
		/* the others, as a list kept since KEYS would still hold them; not when
		 * the bad one could not be marked (out of memory): LOAD would pick it again */
		size_t more = 0;
		for (size_t i = 0; i < nrecs; i++)
			more += strcmp(recs[i].id, rec.id) != 0;
		load_fall_back(s, e, marked && more > 0);
	}
	cache_key_unref(k);
	sfs_solver_unlock(s);
	if (pre_held) /* the edge holds its result now */
		cache_unhold(holds, rec.result);
	free(recs);
	free(msg);
}

void sfs_vstate_exec_failed(struct sfs_solver *s, struct vstate *vs, int r, const char *msg)
{
	const char *line = msg ? msg : strerror(-r);
	char *first = strndup(line, strcspn(line, "\n"));
	sfs_vstate_progress_completed(vs, false, r == -ECANCELED ? "context canceled" : first);
	free(first);
	struct sfs_failure *f = sfs_failure_new(r, vs->v->digest, msg);
	if (f)
		sfs_vstate_fail(s, vs, f);
	sfs_failure_unref(f);
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

/* Keeps with record rec what made it, for cache/du and prune's op filter
 * (cache/du.h): a failure costs only the description, so it is logged. */
static void describe_record(struct sfs_solver *s, const struct vstate *vs,
			    const struct cache_result *rec)
{
	const struct sfs_spec_vertex *v = vs->v;
	char *name = NULL;

	if (asprintf(&name, "%s: %s", v->name ? v->name : "", v->summary ? v->summary : "") < 0)
		name = NULL;
	for (char *p = name; p && *p; p++)
		if (*p == '\n' || *p == '\t' || *p == '\r')
			*p = ' '; /* one field of one line of cache/du */
	if (cache_record_describe(s->cache->db, rec->id, sfs_op_kind_name(v->kind), name) < 0)
		sfs_log(SFS_LOG_WARN, "record %s: its description is not saved", rec->id);
	free(name);
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
		if (i == 0)
			describe_record(s, vs, &rec);
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
		r = sfs_fetch_map(vs, ret_msg);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ni; i++)
		in[i] = vs->inputs[i]->edges[vs->v->inputs[i].ref.output].result;
	sfs_solver_lock(s);
	s->stats.execs++;
	sfs_solver_unlock(s);
	struct sfs_op_ctx ctx;
	sfs_vstate_op_ctx(vs, &ctx);
	r = vs->op->type->exec(vs->op, &ctx, in, ni, outs, ret_msg);
	for (size_t o = 0; r == 0 && o < vs->nedges; o++) /* until the edges hold them */
		if (cache_hold(s->cache->holds, outs[o]) < 0)
			sfs_log(SFS_LOG_WARN, "out of memory holding result %s", outs[o]);
	/* the log file (opened at the first output) is complete: hold no fd for it */
	sfs_solver_lock(s);
	if (vs->log_fd >= 0)
		close(vs->log_fd);
	vs->log_fd = -1;
	sfs_solver_unlock(s);
	return r;
}

/* Saves the outputs of an execution and completes every edge (no lock held). */
static void finish_exec(struct sfs_solver *s, struct vstate *vs, char (*outs)[SFS_DIGEST_SIZE],
			int r, char *msg)
{
	SFS_ASSERT_UNLOCKED(s);
	size_t no = vs->nedges;
	struct cache_key **keys[no ? no : 1];
	size_t nkeys[no ? no : 1];
	int64_t now = sfs_now_ns();

	memset(keys, 0, sizeof(keys));
	for (size_t o = 0; o < no && r == 0; o++) {
		r = save_output(s, vs, (int)o, outs[o], now, &keys[o], &nkeys[o]);
		if (r == 0) /* before the edges complete and leave the index */
			atomic_fetch_add(&s->saves, 1);
		if (r < 0)
			sfs_errf(&msg, r, "saving the result to the cache failed: %s",
				 strerror(-r));
	}
	sfs_solver_lock(s);
	if (r < 0) {
		sfs_vstate_exec_failed(s, vs, r, msg);
		for (size_t o = 0; o < no; o++) {
			for (size_t k = 0; keys[o] && k < nkeys[o]; k++)
				cache_key_unref(keys[o][k]);
			free(keys[o]);
		}
	} else {
		sfs_vstate_progress_completed(vs, false, NULL);
		sfs_vstate_set_phase(vs, VSTATE_EXECUTED);
		for (size_t o = 0; o < no; o++) {
			struct edge *e = &vs->edges[o];
			if (e->phase == EDGE_DONE) {
				for (size_t k = 0; k < nkeys[o]; k++)
					cache_key_unref(keys[o][k]);
				free(keys[o]);
				continue;
			}
			sfs_edge_complete(s, e, outs[o], keys[o], nkeys[o], false);
		}
	}
	sfs_solver_unlock(s);
	free(msg);
}

void sfs_run_exec(struct sfs_solver *s, struct vstate *vs)
{
	size_t no = vs->nedges;
	char outs[no ? no : 1][SFS_DIGEST_SIZE];
	char *msg = NULL;
	int r;

	memset(outs, 0, sizeof(outs));
	char *why = sfs_why_executed(s, vs);
	sfs_solver_lock(s);
	free(vs->why);
	vs->why = why;
	sfs_vstate_progress_started(vs, false);
	sfs_solver_unlock(s);
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
	for (size_t o = 0; r == 0 && o < no; o++) /* exec_op's holds: the edges have theirs */
		cache_unhold(s->cache->holds, outs[o]);
}

/* The keys of root vs's maps for output o that e's result keys lack (lock held). */
static size_t alias_keys(struct vstate *vs, const struct edge *e, int o, struct cache_key **out)
{
	SFS_ASSERT_LOCKED(vs->s);
	size_t n = 0;
	for (size_t m = 0; m < vs->nmaps; m++) {
		char id[SFS_DIGEST_SIZE];
		bool have = false;
		sfs_root_key(vs->maps[m].digest, o, id);
		for (size_t k = 0; k < e->nresult_keys && !have; k++)
			have = strcmp(e->result_keys[k]->root_id, id) == 0;
		if (!have && (out[n] = cache_key_new(vs->maps[m].digest, o, 0)))
			n++;
	}
	return n;
}

void sfs_run_alias(struct sfs_solver *s, struct vstate *vs)
{
	sfs_solver_lock(s);
	struct edge *e = vs->nedges ? &vs->edges[0] : NULL;
	/* the edge it took its result from, or would have: it may never be wanted */
	if (e && e->phase == EDGE_MERGED)
		e = sfs_edge_owner(e);
	struct cache_key *keys[vs->nmaps ? vs->nmaps : 1];
	char result[SFS_DIGEST_SIZE];
	size_t n = 0;
	if (e && e->phase == EDGE_DONE && vs->v->ninputs == 0) {
		memcpy(result, e->result, sizeof(result));
		n = alias_keys(vs, e, 0, keys);
	}
	sfs_solver_unlock(s);

	int64_t now = sfs_now_ns();
	struct cache_result rec;
	bool have_rec = false; /* the keys share one record */
	for (size_t i = 0; i < n; i++) {
		int r = cache_manager_save(s->cache->main, keys[i], result, now,
					   have_rec ? &rec : NULL, have_rec ? NULL : &rec);
		if (r == 0 && !have_rec)
			describe_record(s, vs, &rec);
		have_rec |= r == 0;
		if (r < 0)
			sfs_log(SFS_LOG_WARN, "saving %s under its own cache map failed: %s",
				vs->digest, strerror(-r));
		sfs_solver_lock(s);
		cache_key_unref(keys[i]);
		sfs_solver_unlock(s);
	}
}

/* The sub-build of a build vertex is done: its result becomes the vertex's. */
void sfs_run_finish(struct sfs_solver *s, struct vstate *vs)
{
	char outs[1][SFS_DIGEST_SIZE];
	sfs_solver_lock(s);
	sfs_copy_str(outs[0], SFS_DIGEST_SIZE, vs->sub->result); /* set by sfs_subbuild_done */
	sfs_solver_unlock(s);
	finish_exec(s, vs, outs, 0, NULL);
}

void sfs_subbuild_done(struct sfs_solver *s, struct vstate *parent, struct edge *e)
{
	if (parent->phase != VSTATE_EXEC || parent->released)
		return;
	if (e->phase == EDGE_FAILED) {
		char *msg = sfs_subbuild_error(parent, e->failure);
		sfs_vstate_exec_failed(s, parent, e->failure->err, msg ? msg : e->failure->msg);
		free(msg);
		return;
	}
	struct vstate_sub *sub = sfs_vstate_sub(parent);
	char *result = sub ? strdup(e->result) : NULL;
	if (!result) {
		sfs_vstate_exec_failed(s, parent, -ENOMEM, "out of memory");
		return;
	}
	free(sub->result);
	sub->result = result;
	/* BuildKit attaches the sub-build's exporter to the build op's result:
	 * a job's cache export includes the inner chain */
	for (size_t k = 0; k < e->nresult_keys; k++)
		sfs_keyset_add(&sub->keys, &s->main_cc, e->result_keys[k]);
	sfs_queue_task(s, TASK_FINISH, parent, NULL);
}
