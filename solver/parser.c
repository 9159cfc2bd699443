/*
 * parser.c — specs are parsed on a thread of the solver's, not on the thread
 * that accepted them (DESIGN: the FUSE loop never waits on slow work).
 *
 * A FUSE flush hands the bytes of a spec to sfs_solver_job_submit_async and
 * returns; this thread parses and submits them in order (a 16 MiB spec takes
 * about a second) and calls the caller's done function, which answers the
 * flush.  It is a thread of its own rather than a worker task so that a spec
 * never waits behind long execs.  Requests still queued at close are answered
 * with -ESHUTDOWN.  The queue is guarded by the solver lock.
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

static void *parser_main(void *arg)
{
	struct sfs_solver *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct parse_req *q = s->parse_head;
		if (!q) {
			if (s->parse_stopping)
				break;
			pthread_cond_wait(&s->parse_cond, &s->lock);
			continue;
		}
		s->parse_head = q->next;
		if (!s->parse_head)
			s->parse_tail = NULL;
		bool stopping = s->parse_stopping;
		pthread_mutex_unlock(&s->lock);
		char *msg = NULL;
		int r = stopping ? -ESHUTDOWN
				 : sfs_solver_job_submit(s, q->id, q->uid, q->text, q->len, &msg);
		req_finish(q, r, stopping ? "solverfs is shutting down" : msg);
		free(msg);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int sfs_parser_start(struct sfs_solver *s)
{
	int rc = pthread_create(&s->parser, NULL, parser_main, s);
	if (rc != 0)
		return -rc;
	s->parser_started = true;
	return 0;
}

void sfs_parser_stop(struct sfs_solver *s)
{
	if (!s->parser_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->parse_stopping = true;
	pthread_cond_signal(&s->parse_cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->parser, NULL);
	s->parser_started = false;
}

int sfs_solver_job_submit_async(struct sfs_solver *s, uint64_t id, uid_t uid, char *text,
				size_t len, sfs_submit_done_fn done, void *arg)
{
	struct parse_req *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	*q = (struct parse_req){.id = id, .uid = uid, .text = text, .len = len, .done = done,
				.arg = arg};
	pthread_mutex_lock(&s->lock);
	if (s->parse_stopping || !s->parser_started) {
		pthread_mutex_unlock(&s->lock);
		free(q);
		return -ESHUTDOWN;
	}
	if (s->parse_tail)
		s->parse_tail->next = q;
	else
		s->parse_head = q;
	s->parse_tail = q;
	pthread_cond_signal(&s->parse_cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
