/*
 * scheduler.c — the worker threads and their task queues.
 *
 * Tasks are "light" (queries, loads, content keys) or "heavy" (op calls that
 * read files or run processes): heavy tasks run on `workers` threads, light
 * ones on two more, so cache lookups are never stuck behind long execs.  A task
 * holds a reference on its vertex; a task of a cancelled vertex does nothing.
 *
 * A task a worker queues while it runs a task (the next step of the same
 * vertex, or of the vertex its result unblocks) is kept by that worker as its
 * next task, in its own slot, instead of waking another thread: a chain then
 * runs on one thread with no hand-off a vertex (bench/README.md, "coldpath").
 * Only one task is kept, and a light worker keeps no heavy task, so the split
 * of the pools holds; the rest go to the queues.  Tasks are queued as a task
 * publishes what it did, at its end, so the kept task waits for no long work.
 *
 * Locking: sfs_solver.lock guards the queues (and everything else, see
 * internal.h); a worker drops it while it runs a task.  A worker's slot is its
 * own thread's.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct task {
	struct task *next;
	enum task_kind kind;
	struct vstate *vs;   /* reference; NULL for a job's task */
	struct edge *e;	     /* LOAD */
	struct sfs_job *job; /* EXPORT; reference */
};

/* The worker running on this thread, if any: its kind and its next task. */
struct worker {
	struct sfs_solver *s;
	bool heavy;
	struct task *next;
};
static _Thread_local struct worker *this_worker;

static bool task_is_heavy(const struct task *t)
{
	if (t->kind == TASK_EXEC || t->kind == TASK_EXPORT || t->kind == TASK_TRASH)
		return true;
	return t->kind == TASK_KEYS && t->vs->v->ninputs == 0;
}

static void enqueue(struct sfs_solver *s, struct task *t)
{
	bool heavy = task_is_heavy(t);
	struct worker *w = this_worker;
	/* a heavy worker keeps a light task only while no heavy one waits for it */
	if (w && w->s == s && !w->next && (w->heavy == heavy || (w->heavy && !s->heavy_head))) {
		w->next = t; /* run by this thread after its task: no wakeup */
		return;
	}
	struct task **head = heavy ? &s->heavy_head : &s->light_head;
	struct task **tail = heavy ? &s->heavy_tail : &s->light_tail;
	if (*tail)
		(*tail)->next = t;
	else
		*head = t;
	*tail = t;
	/* one task, one thread of its kind: a broadcast woke them all for nothing */
	pthread_cond_signal(heavy ? &s->heavy_cond : &s->light_cond);
}

void sfs_queue_task(struct sfs_solver *s, enum task_kind kind, struct vstate *vs, struct edge *e)
{
	if (vs->released)
		return; /* cancelled: nobody waits for it any more */
	struct task *t = calloc(1, sizeof(*t));
	if (!t) {
		struct sfs_failure *f = sfs_failure_new(-ENOMEM, vs->v->digest, "out of memory");
		sfs_vstate_fail(s, vs, f);
		sfs_failure_unref(f);
		return;
	}
	t->kind = kind;
	t->vs = sfs_vstate_ref(vs);
	t->e = e;
	enqueue(s, t);
}

/* A task of a job rather than of a vertex (the cache export). */
void sfs_queue_job_task(struct sfs_solver *s, enum task_kind kind, struct sfs_job *j)
{
	struct task *t = calloc(1, sizeof(*t));
	if (!t) {
		sfs_job_end(s, j, SFS_JOB_FAILED, "out of memory");
		return;
	}
	t->kind = kind;
	t->job = sfs_job_ref(j);
	enqueue(s, t);
}

void sfs_queue_trash_task(struct sfs_solver *s)
{
	struct task *t = calloc(1, sizeof(*t));
	if (!t)
		return; /* the next mount empties tmp/ */
	t->kind = TASK_TRASH;
	enqueue(s, t);
}

static void run_task(struct sfs_solver *s, struct task *t)
{
	if (t->kind == TASK_TRASH) {
		sfs_solver_empty_trash(s);
		free(t);
		return;
	}
	if (t->job) {
		if (t->kind == TASK_START)
			sfs_run_start(s, t->job);
		else
			sfs_run_export(s, t->job);
		sfs_solver_lock(s);
		sfs_job_unref(t->job);
		sfs_solver_unlock(s);
		free(t);
		return;
	}
	if (!atomic_load(&t->vs->sig.cancelled)) {
		switch (t->kind) {
		case TASK_KEYS:
			sfs_run_keys(s, t->vs);
			break;
		case TASK_LOAD:
			sfs_run_load(s, t->vs, t->e);
			break;
		case TASK_SLOW:
			sfs_run_slow(s, t->vs);
			break;
		case TASK_FINISH:
			sfs_run_finish(s, t->vs);
			break;
		case TASK_ALIAS:
			sfs_run_alias(s, t->vs);
			break;
		case TASK_EXEC:
			sfs_run_exec(s, t->vs);
			break;
		case TASK_EXPORT:
		case TASK_START:
		case TASK_TRASH:
			break; /* not a vertex task: above */
		}
	}
	sfs_solver_lock(s);
	sfs_vstate_unref(t->vs);
	sfs_solver_unlock(s);
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
	struct worker me = {.s = s, .heavy = heavy};
	free(wa);

	this_worker = &me;
	sfs_solver_lock(s);
	for (;;) {
		struct task *t = me.next;
		me.next = NULL;
		if (!t)
			t = heavy ? pop(&s->heavy_head, &s->heavy_tail)
				  : pop(&s->light_head, &s->light_tail);
		if (!t) {
			if (s->stopping)
				break;
			sfs_solver_wait(s, heavy ? &s->heavy_cond : &s->light_cond);
			continue;
		}
		sfs_solver_unlock(s);
		run_task(s, t);
		sfs_solver_lock(s);
	}
	sfs_solver_unlock(s);
	this_worker = NULL;
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
	SFS_ASSERT_UNLOCKED(s);
	sfs_solver_lock(s);
	s->stopping = true;
	/* queued tasks of cancelled vertices return at once */
	pthread_cond_broadcast(&s->light_cond);
	pthread_cond_broadcast(&s->heavy_cond);
	sfs_solver_unlock(s);
	for (size_t i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	free(s->threads);
	s->threads = NULL;
	s->nthreads = 0;
}
