/*
 * job.c — a job's life: started into the shared graph, its outputs requested,
 * ended (done, failed, cancelled), written to history and discarded
 * (BuildKit's Job.Build / Job.Discard, docs/semantics.md §1.3, §8).
 *
 * Everything here runs with sfs_solver.lock held.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "history.h"
#include "internal.h"

struct sfs_job *sfs_job_ref(struct sfs_job *j)
{
	j->refs++;
	return j;
}

void sfs_job_vinfo_free(struct sfs_job *j)
{
	strmap_release(&j->vinfo_by);
	sfs_vertex_infos_free(j->vinfo, j->nvinfo);
	j->vinfo = NULL;
	j->nvinfo = 0;
}

static void ended_vertices_free(struct sfs_job *j)
{
	if (j->ended_vertices)
		textlog_release(j->ended_vertices);
	free(j->ended_vertices);
	j->ended_vertices = NULL;
}

void sfs_job_unref(struct sfs_job *j)
{
	if (!j || --j->refs > 0)
		return;
	free(j->error);
	free(j->ctl_last);
	strbuf_release(&j->ctl_errors);
	free(j->spec_text);
	for (size_t i = 0; i < j->noutputs; i++)
		free(j->outputs[i].ref);
	free(j->outputs);
	sfs_spec_free(j->spec);
	sfs_progress_free(j->progress);
	sfs_job_vinfo_free(j);
	ended_vertices_free(j);
	free(j);
}

void sfs_job_mark_dirty(struct sfs_solver *s, struct sfs_job *j)
{
	SFS_ASSERT_LOCKED(s);
	j->changed = sfs_now_ns();
	for (size_t i = 0; i < s->ndirty; i++)
		if (s->dirty[i] == j->id)
			return;
	if (sfs_grow((void **)&s->dirty, &s->cap_dirty, s->ndirty + 1, sizeof(*s->dirty)) < 0)
		return;
	s->dirty[s->ndirty++] = j->id;
}

const char *sfs_job_vertex_key(struct sfs_job *j, const char *digest)
{
	for (size_t i = 0; j->spec && i < j->spec->n; i++)
		if (strcmp(j->spec->v[i].digest, digest) == 0)
			return j->spec->v[i].key;
	return NULL;
}

char *sfs_job_error_text(const struct sfs_job *j)
{
	struct strbuf sb = STRBUF_INIT;
	const char *e = j->error ? j->error : "";
	strbuf_addstr(&sb, e);
	if (e[0] && e[strlen(e) - 1] != '\n' && j->ctl_errors.len)
		strbuf_addch(&sb, '\n');
	if (j->ctl_errors.len)
		strbuf_add(&sb, j->ctl_errors.buf, j->ctl_errors.len);
	if (sb.oom) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

/* Marks the vertices the outputs need: only those are evaluated. */
bool *sfs_spec_reachable(const struct sfs_spec *sp, const struct sfs_ref *outs, size_t n)
{
	bool *r = calloc(sp->n ? sp->n : 1, sizeof(*r));
	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++)
		r[outs[i].vertex] = true;
	for (size_t i = sp->n; i-- > 0;) /* users come after their inputs */
		if (r[i])
			for (size_t k = 0; k < sp->v[i].ninputs; k++)
				r[sp->v[i].inputs[k].ref.vertex] = true;
	return r;
}

/*
 * A job starts on a worker (lock held here): the thread that accepted its spec
 * does not load a 100,000-vertex graph.  The start task reads its cache_from
 * sources, then loads its graph.
 */
int sfs_job_start(struct sfs_solver *s, struct sfs_job *j, char **ret_msg)
{
	SFS_ASSERT_LOCKED(s);
	int r = sfs_progress_new(s->spill_dir, s->o.status_limit, &j->progress);
	if (r < 0)
		return r;
	sfs_queue_job_task(s, TASK_START, j);
	return 0;
}

void sfs_run_start(struct sfs_solver *s, struct sfs_job *j)
{
	char *msg = NULL;
	int r = sfs_job_read_sources(s, j, &msg);
	sfs_solver_lock(s);
	if (j->state == SFS_JOB_RUNNING) {
		if (r == 0)
			r = sfs_job_start_graph(s, j, &msg);
		if (r < 0)
			sfs_job_end(s, j, SFS_JOB_FAILED, msg ? msg : strerror(-r));
	}
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
	free(msg);
}

/* Loads the job's graph and asks for its outputs (lock held). */
int sfs_job_start_graph(struct sfs_solver *s, struct sfs_job *j, char **ret_msg)
{
	SFS_ASSERT_LOCKED(s);
	int r = sfs_graph_load(s, j, ret_msg);
	if (r < 0)
		return r;
	bool *need = sfs_spec_reachable(j->spec, j->spec->outputs, j->spec->noutputs);
	if (!need)
		return -ENOMEM;
	j->outputs_pending = j->noutputs;
	for (size_t i = 0; i < j->spec->n; i++)
		if (need[i])
			sfs_vstate_request_keys(s, j->vs[i]);
	free(need);
	for (size_t o = 0; o < j->noutputs && j->state == SFS_JOB_RUNNING; o++) {
		struct sfs_ref ref = j->spec->outputs[o];
		struct vstate *vs = j->vs[ref.vertex];
		sfs_edge_request(s, &vs->edges[ref.output], j, o, NULL);
	}
	return 0;
}

void sfs_job_output_done(struct sfs_solver *s, struct sfs_job *j, size_t out, struct edge *e)
{
	SFS_ASSERT_LOCKED(s);
	if (j->state != SFS_JOB_RUNNING)
		return;
	if (e->phase == EDGE_FAILED) {
		struct sfs_failure *f = e->failure;
		if (f->err == -ECANCELED) {
			sfs_job_end(s, j, SFS_JOB_CANCELLED, "cancelled");
			return;
		}
		const char *key = sfs_job_vertex_key(j, f->digest);
		char *msg = NULL;
		if (asprintf(&msg, "vertex \"%s\": %s", key ? key : f->digest, f->msg) < 0)
			msg = NULL;
		sfs_job_end(s, j, SFS_JOB_FAILED, msg ? msg : f->msg);
		free(msg);
		return;
	}
	sfs_copy_str(j->outputs[out].result, sizeof(j->outputs[out].result), e->result);
	sfs_job_mark_dirty(s, j);
	if (--j->outputs_pending == 0)
		sfs_job_outputs_built(s, j);
}

/* "<output> <key id>\n" per key the outputs were found or saved under. */
/* "<output> <key id>\n" */
static void key_line(struct strbuf *sb, size_t o, const char *id)
{
	strbuf_addu(sb, o);
	strbuf_addch(sb, ' ');
	strbuf_addstr(sb, id);
	strbuf_addch(sb, '\n');
}

static void add_keys(struct strbuf *sb, struct vstate *vs)
{
	struct cache_manager *cm = vs->s->cache->main;
	for (size_t o = 0; o < vs->nedges; o++) {
		const struct edge *e = &vs->edges[o];
		for (size_t k = 0; k < e->nresult_keys; k++) {
			const char *id = cache_key_id(e->result_keys[k], cm);
			if (id)
				key_line(sb, o, id);
		}
		for (size_t k = 0; !e->nresult_keys && k < e->nkeys; k++) {
			const char *id = cache_key_id(e->keys[k], cm);
			if (id)
				key_line(sb, o, id);
		}
	}
}

static char *keys_text(struct vstate *vs)
{
	struct strbuf sb = STRBUF_INIT;
	add_keys(&sb, vs);
	return strbuf_detach(&sb, NULL);
}

int sfs_vstate_snapshot(struct vstate *vs, struct sfs_vertex_info *vi)
{
	memset(vi, 0, sizeof(*vi));
	memcpy(vi->digest, vs->digest, sizeof(vi->digest));
	vi->name = strdup(vs->v->name);
	vi->op = malloc(vs->v->op_len + 1);
	vi->why = strdup(vs->why ? vs->why : "");
	const char *log_path = vs->log ? vs->log->path : NULL;
	vi->log_path = log_path ? strdup(log_path) : NULL;
	vi->inputs = calloc(vs->v->ninputs + 1, sizeof(*vi->inputs));
	vi->results = calloc(vs->nedges + 1, sizeof(*vi->results));
	vi->keys = keys_text(vs);
	vi->names = strdup("");
	vi->jobs = calloc(vs->njobs + 1, sizeof(*vi->jobs));
	if (!vi->name || !vi->op || !vi->why || !vi->inputs || !vi->results || !vi->keys ||
	    !vi->names || !vi->jobs || (log_path && !vi->log_path))
		return -ENOMEM;
	for (size_t k = 0; k < vs->njobs; k++)
		if (!sfs_job_state_final(vs->jobs[k]->state))
			vi->jobs[vi->njobs++] = vs->jobs[k]->id;
	memcpy(vi->op, vs->v->op_bytes, vs->v->op_len);
	vi->op[vs->v->op_len] = '\0';
	vi->op_len = vs->v->op_len;
	vi->state = vs->state;
	vi->ninputs = vs->v->ninputs;
	for (size_t i = 0; i < vi->ninputs; i++)
		memcpy(vi->inputs[i], vs->inputs[i]->digest, SFS_DIGEST_SIZE);
	vi->noutputs = vs->nedges;
	for (size_t o = 0; o < vs->nedges; o++)
		if (vs->edges[o].phase == EDGE_DONE)
			memcpy(vi->results[o], vs->edges[o].result, SFS_DIGEST_SIZE);
	return 0;
}

/*
 * Calls fn for every vertex of the job (lock held): its spec's, each followed by
 * the vertices of the sub-build it ran (children, depth first), every digest
 * once.  Stops when fn returns non-zero (an error, or a find that is done) and
 * returns that.
 */
int sfs_job_walk_vertices(struct sfs_job *j, int (*fn)(void *arg, struct vstate *vs), void *arg)
{
	SFS_ASSERT_LOCKED(j->s);
	struct strmap seen = STRMAP_INIT_BORROWED;
	struct vstate **stack = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && j->vs && i < j->spec->n; i++) {
		if (j->vs[i]) /* NULL: a load that failed part-way */
			r = sfs_vstates_push(&stack, &n, &cap, j->vs[i]);
		while (r == 0 && n) {
			struct vstate *vs = stack[--n];
			if (strmap_get(&seen, vs->digest))
				continue;
			if ((r = strmap_put(&seen, vs->digest, vs, NULL)) < 0 || (r = fn(arg, vs)) != 0)
				break;
			for (size_t c = sfs_vstate_nchildren(vs); r == 0 && c-- > 0;)
				r = sfs_vstates_push(&stack, &n, &cap, vs->sub->children[c]);
		}
	}
	free(stack);
	strmap_release(&seen);
	return r;
}

struct snapshots {
	struct sfs_vertex_info *v;
	size_t n, cap;
};

static int add_snapshot(void *arg, struct vstate *vs)
{
	struct snapshots *sn = arg;
	if (sfs_grow((void **)&sn->v, &sn->cap, sn->n + 1, sizeof(*sn->v)) < 0)
		return -ENOMEM;
	int r = sfs_vstate_snapshot(vs, &sn->v[sn->n]);
	if (r < 0) {
		sfs_vertex_info_release(&sn->v[sn->n]);
		return r;
	}
	sn->n++;
	return 0;
}

int sfs_job_snapshot_vertices(struct sfs_job *j, struct sfs_vertex_info **ret, size_t *ret_n)
{
	struct snapshots sn = {0};
	int r = sfs_job_walk_vertices(j, add_snapshot, &sn);
	if (r == 0 && !sn.v && !(sn.v = calloc(1, sizeof(*sn.v))))
		r = -ENOMEM;
	if (r < 0) {
		sfs_vertex_infos_free(sn.v, sn.n);
		return r;
	}
	*ret = sn.v;
	*ret_n = sn.n;
	return 0;
}

static char *result_text(const struct sfs_job *j)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t o = 0; o < j->noutputs; o++)
		if (j->outputs[o].result[0])
			strbuf_addf(&sb, "%s %s\n", j->outputs[o].ref, j->outputs[o].result);
	return strbuf_detach(&sb, NULL);
}

/* The row was not saved: the vertices stay readable from memory. */
static void keep_vertices_in_memory(struct sfs_job *j)
{
	char *text = NULL;
	size_t len = 0;
	sfs_job_vinfo_free(j);
	if (textlog_read_all(j->ended_vertices, &text, &len) < 0 ||
	    sfs_vinfo_decode(text, len, &j->vinfo, &j->nvinfo) < 0)
		sfs_log(SFS_LOG_WARN, "job %llu: its vertices are lost", (unsigned long long)j->id);
	free(text);
	ended_vertices_free(j);
}

static int textlog_source(void *arg, uint64_t off, void *buf, size_t n, size_t *ret_n)
{
	return textlog_read(arg, off, buf, n, ret_n);
}

static struct history_text text_of(const struct textlog *t)
{
	return (struct history_text){textlog_len(t), textlog_source, (void *)t};
}

/*
 * Saves the job's row.  A finished job's texts then live in the row alone: its
 * progress is freed and reads go to the database.
 */
int sfs_job_save(struct sfs_solver *s, struct sfs_job *j)
{
	struct textlog none;
	struct history_text texts[3];
	if (j->texts_saved)
		return 0; /* a finished job's row is final */
	/* the texts go to the row from their logs, a piece at a time */
	textlog_init(&none, NULL);
	if (j->progress) {
		texts[HISTORY_STATUS] = text_of(sfs_progress_plain(j->progress));
		texts[HISTORY_STATUS_JSON] = text_of(sfs_progress_json(j->progress));
	} else {
		texts[HISTORY_STATUS] = texts[HISTORY_STATUS_JSON] = (struct history_text){0};
	}
	texts[HISTORY_VERTICES] = text_of(j->ended_vertices ? j->ended_vertices : &none);
	char *result = result_text(j), *error = sfs_job_error_text(j);
	struct history_job h = {
	    .id = j->id,
	    .uid = j->uid,
	    .gid = j->gid,
	    .state = (char *)sfs_job_state_name(j->state),
	    .spec = j->spec_text,
	    .spec_len = j->spec_len,
	    .error = error ? error : j->error,
	    .result = result,
	    .created = j->created,
	    .ended = j->ended,
	    .texts = texts,
	};
	int r = history_save(s->cache->db, &h);
	free(result);
	free(error);
	if (r == 0 && sfs_job_state_final(j->state)) {
		j->texts_saved = true;
		j->saved_len[SFS_STREAM_STATUS] = texts[HISTORY_STATUS].len;
		j->saved_len[SFS_STREAM_STATUS_JSON] = texts[HISTORY_STATUS_JSON].len;
		j->vertices_len = texts[HISTORY_VERTICES].len;
		/* the row holds the spec now: no copy kept for jobs/N/spec */
		j->spec_in_row = j->spec_text != NULL;
		free(j->spec_text);
		j->spec_text = NULL;
		j->progress = sfs_progress_free(j->progress);
		ended_vertices_free(j);
	} else if (r < 0 && j->ended_vertices) {
		keep_vertices_in_memory(j);
	}
	if (r < 0)
		sfs_log(SFS_LOG_ERR, "saving job %llu to the database failed: %s",
			(unsigned long long)j->id, strerror(-r));
	return r;
}

/*
 * The states a finished job's history shows (state, graph.dot, why): what
 * still runs for other jobs was cancelled for this one; a vertex nobody needed
 * to load or run was satisfied by the cache: every one in a job that is done,
 * and in one that failed or was cancelled those below a vertex that started
 * (progress prints them CACHED the same way, progress.c's mark_inputs_cached);
 * any other that never ran was cancelled by the job's end, and says so, never
 * that the cache had it.
 */
struct settle {
	const struct sfs_job *j;
	struct strmap satisfied; /* digest -> vstate, borrowed keys */
	struct vstate **stack;
	size_t n, cap;
};

static int push_inputs(struct settle *st, struct vstate *vs)
{
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		if (sfs_grow((void **)&st->stack, &st->cap, st->n + 1, sizeof(*st->stack)) < 0)
			return -ENOMEM;
		st->stack[st->n++] = vs->inputs[i];
	}
	return 0;
}

/* A vertex that started: the pending vertices below it were not needed. */
static int mark_satisfied(void *arg, struct vstate *vs)
{
	struct settle *st = arg;
	int r = 0;
	if (vs->state == SFS_VERTEX_PENDING)
		return 0;
	r = push_inputs(st, vs);
	while (r == 0 && st->n) {
		struct vstate *in = st->stack[--st->n];
		if (in->state != SFS_VERTEX_PENDING || strmap_get(&st->satisfied, in->digest))
			continue;
		r = strmap_put(&st->satisfied, in->digest, in, NULL);
		if (r == 0)
			r = push_inputs(st, in);
	}
	return r;
}

/* The state and why line vertex digest ended with, from those it has now. */
static void settle_vertex_state(const struct settle *st, const char *digest,
				enum sfs_vertex_state *state, const char **why)
{
	const struct sfs_job *j = st->j;
	if (*state == SFS_VERTEX_RUNNING) {
		*state = SFS_VERTEX_CANCELLED;
		if (!(*why)[0])
			*why = "cancelled: the job ended while it ran";
	} else if (*state == SFS_VERTEX_PENDING &&
		   (j->state == SFS_JOB_DONE || strmap_get(&st->satisfied, digest))) {
		*state = SFS_VERTEX_CACHED;
		*why = SFS_WHY_NOT_NEEDED;
	} else if (*state == SFS_VERTEX_PENDING) {
		*state = SFS_VERTEX_CANCELLED;
		*why = j->state == SFS_JOB_FAILED ? "not run: the job failed first"
						  : "not run: the job was cancelled first";
	}
}

/*
 * The spec keys of the job's own vertices (jobs/N/by-name, kept in the
 * history), in spec order: the first spec index (+ 1) of each vertex digest in
 * by_digest, and from each index the next one of the same vertex in next (+ 1,
 * 0 at the end).  Made with one array, not a buffer a vertex: the "key\n"
 * lines are written when the vertex is (key_names_text).
 */
struct key_names {
	struct strmap by_digest; /* digest -> (void *)(first index + 1), borrowed keys */
	size_t *next;
};

static int key_names(const struct sfs_job *j, struct key_names *ret)
{
	if (!j->vs || !j->spec->n)
		return 0;
	if (!(ret->next = calloc(j->spec->n, sizeof(*ret->next))))
		return -ENOMEM;
	/* last to first, each index put before its vertex's chain: spec order, and
	 * one step a key however many keys a vertex has */
	for (size_t i = j->spec->n; i-- > 0;) {
		if (!j->vs[i])
			continue;
		void *head = NULL;
		int r = strmap_put(&ret->by_digest, j->vs[i]->digest, (void *)(i + 1), &head);
		if (r < 0)
			return r;
		ret->next[i] = (uintptr_t)head;
	}
	return 0;
}

/* The "key\n" lines of vertex digest into sb (reset first). */
static void key_names_text(const struct sfs_job *j, const struct key_names *kn, const char *digest,
			   struct strbuf *sb)
{
	strbuf_reset(sb);
	for (uintptr_t k = (uintptr_t)strmap_get(&kn->by_digest, digest); k; k = kn->next[k - 1]) {
		strbuf_addstr(sb, j->spec->v[k - 1].key);
		strbuf_addch(sb, '\n');
	}
}

static void key_names_release(struct key_names *kn)
{
	strmap_release(&kn->by_digest);
	free(kn->next);
	kn->next = NULL;
}

struct ended_writer {
	struct settle *st;
	const struct sfs_job *j;
	const struct key_names *names;
	struct strbuf name_lines; /* one vertex's, reused */
	struct textlog *t;
	struct strbuf keys;	 /* one vertex's keys, reused */
	const char **digests;	 /* one vertex's inputs, then results, reused */
	size_t cap_digests;
};

/* One vertex into the list, borrowed from vs: nothing of it is copied. */
static int write_ended_vertex(void *arg, struct vstate *vs)
{
	struct ended_writer *w = arg;
	size_t nin = vs->v->ninputs, nout = vs->nedges;
	if (sfs_grow((void **)&w->digests, &w->cap_digests, nin + nout + 1,
		     sizeof(*w->digests)) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < nin; i++)
		w->digests[i] = vs->inputs[i]->digest;
	for (size_t o = 0; o < nout; o++)
		w->digests[nin + o] = vs->edges[o].phase == EDGE_DONE ? vs->edges[o].result : "";
	strbuf_reset(&w->keys);
	add_keys(&w->keys, vs);
	key_names_text(w->j, w->names, vs->digest, &w->name_lines);
	struct sfs_vinfo_view v = {
	    .digest = vs->digest,
	    .name = vs->v->name,
	    .op = vs->v->op_bytes,
	    .op_len = vs->v->op_len,
	    .state = vs->state,
	    .log_path = vs->log ? vs->log->path : NULL,
	    .ninputs = nin,
	    .inputs = w->digests,
	    .noutputs = nout,
	    .results = w->digests + nin,
	    .why = vs->why ? vs->why : "",
	    .keys = w->keys.buf ? w->keys.buf : "",
	    .names = w->name_lines.len ? w->name_lines.buf : "",
	};
	settle_vertex_state(w->st, vs->digest, &v.state, &v.why);
	sfs_vinfo_write(&w->t->tail, &v);
	textlog_commit(w->t);
	return w->keys.oom || w->name_lines.oom || w->t->tail.oom ? -ENOMEM : 0;
}

/* The job's vertices as they ended, in the history's form (vinfo.c), one
 * vertex at a time into a log that spills to a file (lock held, before the
 * discard). */
static int write_ended_vertices(struct sfs_solver *s, struct sfs_job *j)
{
	SFS_ASSERT_LOCKED(s);
	struct settle st = {.j = j, .satisfied = STRMAP_INIT_BORROWED};
	struct key_names names = {.by_digest =
				      STRMAP_INIT_BORROWED}; /* keys: the vstates' digests */
	int r = j->state == SFS_JOB_DONE ? 0 : sfs_job_walk_vertices(j, mark_satisfied, &st);
	free(st.stack);
	if (r == 0)
		r = key_names(j, &names);
	struct textlog *t = r == 0 ? malloc(sizeof(*t)) : NULL;
	if (!t) {
		strmap_release(&st.satisfied);
		key_names_release(&names);
		return r < 0 ? r : -ENOMEM;
	}
	textlog_init(t, s->spill_dir);
	sfs_vinfo_begin(&t->tail);
	struct ended_writer w = {.st = &st,
				 .j = j,
				 .names = &names,
				 .name_lines = STRBUF_INIT,
				 .t = t,
				 .keys = STRBUF_INIT};
	r = sfs_job_walk_vertices(j, write_ended_vertex, &w);
	strbuf_release(&w.keys);
	strbuf_release(&w.name_lines);
	free(w.digests);
	strmap_release(&st.satisfied);
	key_names_release(&names);
	if (r == 0 && t->tail.oom)
		r = -ENOMEM;
	if (r < 0) {
		textlog_release(t);
		free(t);
		return r;
	}
	j->ended_vertices = t;
	return 0;
}

void sfs_job_end(struct sfs_solver *s, struct sfs_job *j, enum sfs_job_state st, const char *err)
{
	SFS_ASSERT_LOCKED(s);
	if (sfs_job_state_final(j->state))
		return;
	bool was_running = j->state == SFS_JOB_RUNNING;
	sfs_job_set_state(j, st);
	s->ended_unflushed++;
	if (was_running) {
		s->stats.jobs_done += st == SFS_JOB_DONE;
		s->stats.jobs_failed += st == SFS_JOB_FAILED;
		s->stats.jobs_cancelled += st == SFS_JOB_CANCELLED;
	}
	j->ended = sfs_now_ns();
	free(j->error);
	j->error = strdup(err ? err : "");
	if (j->progress)
		sfs_progress_end(j->progress, j->ended);
	if (j->vs) {
		sfs_job_vinfo_free(j);
		ended_vertices_free(j);
		if (write_ended_vertices(s, j) < 0)
			sfs_log(SFS_LOG_WARN, "job %llu: out of memory keeping its vertices",
				(unsigned long long)j->id);
	}
	sfs_graph_discard(s, j);
	if (was_running) {
		s->running--;
		sfs_job_unref(j); /* the graph's */
	} else {
		s->pending--;
	}
	int r = sfs_job_save(s, j);
	if (r < 0 && st == SFS_JOB_DONE) {
		/* A job is reported done only once its history is on disk (a crash
		 * must not lose it): without the row it failed. */
		char *msg = NULL;
		if (asprintf(&msg, "saving the job's history failed: %s", strerror(-r)) < 0)
			msg = NULL;
		sfs_job_set_state(j, SFS_JOB_FAILED);
		free(j->error);
		j->error = msg ? msg : strdup("saving the job's history failed");
		if (was_running) {
			s->stats.jobs_done--;
			s->stats.jobs_failed++;
		}
		sfs_job_save(s, j);
	}
	sfs_job_mark_dirty(s, j);
}
