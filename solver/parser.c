/*
 * parser.c — specs are parsed on a thread of the solver's, not on the thread
 * that accepted them (docs/tree.md §9: the FUSE loop never waits on slow work).
 *
 * A FUSE flush hands the bytes of a spec to sfs_solver_job_submit_async and
 * returns; SFS_PARSERS threads take specs in the order they came, parse and
 * submit them (a 16 MiB spec takes about a second) and call the caller's done
 * function, which answers the flush.  They are threads of their own rather
 * than worker tasks so that a spec never waits behind long execs.  Requests
 * still queued at close are answered with -ESHUTDOWN.  The queue is guarded by
 * the solver lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct parse_req {
	struct parse_req *next;
	uint64_t id;
	uid_t uid;
	char *text;
	size_t len;
	sfs_submit_done_fn done;
	void *arg;
};

static void req_finish(struct parse_req *q, int r, const char *msg)
{
	q->done(q->arg, r, msg);
	free(q->text);
	free(q);
}

static bool job_in_parse(const struct sfs_solver *s, uint64_t id)
{
	for (size_t i = 0; i < SFS_PARSERS; i++)
		if (s->parsing[i] == id)
			return true;
	return false;
}

/* The oldest request whose job no other parser has (a job's specs keep their
 * order), unlinked from the queue; NULL if none (lock held). */
static struct parse_req *take(struct sfs_solver *s)
{
	SFS_ASSERT_LOCKED(s);
	struct parse_req *prev = NULL;
	for (struct parse_req *q = s->parse_head; q; prev = q, q = q->next) {
		if (job_in_parse(s, q->id))
			continue;
		if (prev)
			prev->next = q->next;
		else
			s->parse_head = q->next;
		if (s->parse_tail == q)
			s->parse_tail = prev;
		return q;
	}
	return NULL;
}

struct parser_arg {
	struct sfs_solver *s;
	size_t slot; /* ours in s->parsing */
};

static void *parser_main(void *arg)
{
	struct parser_arg *pa = arg;
	struct sfs_solver *s = pa->s;
	size_t me = pa->slot;
	free(pa);

	sfs_solver_lock(s);
	for (;;) {
		struct parse_req *q = take(s);
		if (!q) {
			if (s->parse_stopping && !s->parse_head)
				break;
			sfs_solver_wait(s, &s->parse_cond);
			continue;
		}
		bool stopping = s->parse_stopping;
		s->parsing[me] = q->id;
		sfs_solver_unlock(s);
		char *msg = NULL;
		int r = stopping ? -ESHUTDOWN
				 : sfs_solver_job_submit(s, q->id, q->uid, q->text, q->len, &msg);
		req_finish(q, r, stopping ? "solverfs is shutting down" : msg);
		free(msg);
		sfs_solver_lock(s);
		s->parsing[me] = 0;
		pthread_cond_broadcast(&s->parse_cond); /* a request of that job may wait */
	}
	sfs_solver_unlock(s);
	return NULL;
}

int sfs_parser_start(struct sfs_solver *s)
{
	while (s->nparsers < SFS_PARSERS) {
		struct parser_arg *pa = malloc(sizeof(*pa));
		if (!pa)
			return -ENOMEM;
		*pa = (struct parser_arg){s, s->nparsers};
		int rc = pthread_create(&s->parsers[s->nparsers], NULL, parser_main, pa);
		if (rc != 0) {
			free(pa);
			return -rc;
		}
		s->nparsers++;
	}
	return 0;
}

void sfs_parser_stop(struct sfs_solver *s)
{
	sfs_solver_lock(s);
	s->parse_stopping = true;
	pthread_cond_broadcast(&s->parse_cond);
	sfs_solver_unlock(s);
	for (size_t i = 0; i < s->nparsers; i++)
		pthread_join(s->parsers[i], NULL);
	s->nparsers = 0;
}

int sfs_solver_job_submit_async(struct sfs_solver *s, uint64_t id, uid_t uid, char *text,
				size_t len, sfs_submit_done_fn done, void *arg)
{
	struct parse_req *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	*q = (struct parse_req){.id = id, .uid = uid, .text = text, .len = len, .done = done,
				.arg = arg};
	sfs_solver_lock(s);
	if (s->parse_stopping || !s->nparsers) {
		sfs_solver_unlock(s);
		free(q);
		return -ESHUTDOWN;
	}
	if (s->parse_tail)
		s->parse_tail->next = q;
	else
		s->parse_head = q;
	s->parse_tail = q;
	pthread_cond_signal(&s->parse_cond);
	sfs_solver_unlock(s);
	return 0;
}
