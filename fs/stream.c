/*
 * stream.c — blocking reads that never block: jobs/N/wait, status, status.json.
 *
 * A read that finds no data yet (the job is still going) is not answered: its
 * fuse_req_t is parked on the job's wait queue and the worker thread returns
 * to the loop.  The solver's notify callback (from solver threads) bumps the
 * queue's generation and retries every parked request of that job; those that
 * now have data or EOF are answered.  An interrupt (Ctrl-C) answers EINTR at
 * once; O_NONBLOCK readers get EAGAIN; past opts->max_parked readers, EAGAIN.
 * The retries run on notify.c's thread, not the solver's (fs_stream_kick): a
 * solver thread that notifies never answers 200 readers itself, and notifies
 * that arrive while a retry runs are served by one more retry.
 * poll() registers the file's pollhandle on the same queue.
 *
 * cache/stats, cache/du and metrics read the same way: a handle's first read or poll
 * binds it to a snapshot (cachesnap.c), whose id stands for the job number
 * here (ids start above every job number), and the builder thread notifies
 * and kicks that id once the content is there.
 *
 * Who answers a parked request: whoever takes it off its queue under the
 * stream lock.  A retrying kicker takes requests off (busy), reads outside the
 * lock, and puts back those still without data; an interrupt that arrives
 * meanwhile only marks the request, and the kicker answers EINTR.  Every live
 * parked request is also on the `all` list so an interrupt can find it by its
 * fuse_req_t without touching the request itself.
 *
 * The queues are struct fs_streams, fs->streams (fs_stream_init).
 *
 * Locking: its lock, the stream lock, guards the queues map, every waitq,
 * every struct parked and the ph / poll links of every fs_file.  Solver calls
 * and replies happen outside it, except fuse_lowlevel_notify_poll, which only
 * writes to the device.  Lock order: the stream lock, then (inside the
 * solver) solver locks.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "strmap.h"
#include "fs.h"

struct parked {
	fuse_req_t req;
	uint64_t job;
	enum fs_kind kind;
	off_t off;
	size_t size;
	bool listed;			      /* on its waitq; false while a kicker holds it */
	bool interrupted;		      /* seen by the interrupt callback while busy */
	struct parked *next, **pprev;	      /* waitq links */
	struct parked *all_next, **all_pprev; /* `all` links */
};

struct waitq {
	uint64_t job;
	uint64_t gen;	 /* bumped by every notify */
	unsigned active; /* kickers working on it: not freed meanwhile */
	struct parked *head;
	struct fs_file *pollers;
};

struct fs_streams {
	pthread_mutex_t lock;
	struct strmap queues; /* "<job>" -> struct waitq */
	struct parked *all;
	size_t nparked; /* job readers (status, wait: the metric, max_parked) */
	size_t nsnap;	/* snapshot readers (stats, du, metrics), max_parked of their own */
	bool closing; /* notify ignored: the solver is closing */
};

int fs_stream_init(struct sfs_fs *fs)
{
	struct fs_streams *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->queues = (struct strmap)STRMAP_INIT;
	fs->streams = s;
	return 0;
}

void fs_stream_release(struct sfs_fs *fs)
{
	struct fs_streams *s = fs->streams;
	const char *k;
	void *v;

	if (!s)
		return;
	for (size_t i = 0; strmap_next(&s->queues, &i, &k, &v);)
		free(v); /* none once fs_stream_shutdown ran */
	strmap_release(&s->queues);
	pthread_mutex_destroy(&s->lock);
	free(s);
	fs->streams = NULL;
}

void fs_stream_closing(struct sfs_fs *fs)
{
	struct fs_streams *s = fs->streams;

	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_mutex_unlock(&s->lock);
}

size_t fs_stream_parked(struct sfs_fs *fs)
{
	struct fs_streams *s = fs->streams;
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nparked;
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t fs_stream_size(const struct sfs_job_info *info, enum fs_kind k)
{
	switch (k) {
	case FS_JOB_WAIT:
		return sfs_job_state_final(info->state)
			   ? strlen(sfs_job_state_name(info->state)) + 1
			   : 0;
	case FS_JOB_STATUS:
		return info->status_len;
	case FS_JOB_STATUS_JSON:
		return info->status_json_len;
	default:
		return 0;
	}
}

/* ---- one attempt at a read ---- */

static int wait_try(struct sfs_fs *fs, uint64_t job, off_t off, size_t size, char **ret_buf,
		    size_t *ret_len, bool *ret_ready)
{
	struct sfs_job_info info;
	const char *name;
	size_t len;
	int r = sfs_solver_job_info(fs->solver, job, &info);

	if (r < 0)
		return r;
	*ret_ready = sfs_job_state_final(info.state);
	*ret_len = 0;
	*ret_buf = NULL;
	if (*ret_ready) {
		name = sfs_job_state_name(info.state);
		len = strlen(name) + 1;
		if ((uint64_t)off < len) {
			len -= (size_t)off;
			len = len < size ? len : size;
			*ret_buf = malloc(len + 1);
			if (!*ret_buf)
				r = -ENOMEM;
			else {
				snprintf(*ret_buf, len + 1, "%s\n", name + off);
				*ret_len = len;
			}
		}
	}
	sfs_job_info_release(&info);
	return r;
}

/* Reads what there is: *ret_ready is false when the reader must wait. */
static int stream_try(struct sfs_fs *fs, enum fs_kind k, uint64_t job, off_t off, size_t size,
		      char **ret_buf, size_t *ret_len, bool *ret_ready)
{
	bool ended = false;
	int r;

	if (off < 0)
		return -EINVAL;
	if (fs_cache_snap_kind(k))
		return fs_cache_snap_read(fs, job, off, size, ret_buf, ret_len, ret_ready);
	if (k == FS_JOB_WAIT)
		return wait_try(fs, job, off, size, ret_buf, ret_len, ret_ready);
	*ret_buf = NULL;
	*ret_len = 0;
	r = sfs_solver_job_read(fs->solver, job,
				k == FS_JOB_STATUS ? SFS_STREAM_STATUS : SFS_STREAM_STATUS_JSON,
				(uint64_t)off, size, ret_buf, ret_len, &ended);
	if (r < 0)
		return r;
	*ret_ready = *ret_len > 0 || ended;
	return 0;
}

/*
 * Answers req with what stream_try found (or its error).  f is NULL for a
 * parked request: its file may have been released meanwhile (a reader killed
 * by a fatal signal does not wait for our EINTR), so it is never touched; only
 * O_NONBLOCK readers, which never park, rely on pos for poll().
 */
static void answer(fuse_req_t req, struct fs_file *f, off_t off, int r, char *buf, size_t len)
{
	if (r < 0) {
		fuse_reply_err(req, -r);
	} else {
		if (f)
			__atomic_store_n(&f->pos, (uint64_t)off + len, __ATOMIC_RELAXED);
		fuse_reply_buf(req, buf, len);
	}
	free(buf);
}

/* ---- wait queues (the stream lock held) ---- */

static struct waitq *waitq_get(struct fs_streams *s, uint64_t job, bool create)
{
	char key[24];
	struct waitq *q;

	snprintf(key, sizeof(key), "%" PRIu64, job);
	q = strmap_get(&s->queues, key);
	if (q || !create)
		return q;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->job = job;
	if (strmap_put(&s->queues, key, q, NULL) < 0) {
		free(q);
		return NULL;
	}
	return q;
}

static void waitq_maybe_free(struct fs_streams *s, struct waitq *q)
{
	char key[24];

	if (q->head || q->pollers || q->active)
		return;
	snprintf(key, sizeof(key), "%" PRIu64, q->job);
	strmap_del(&s->queues, key);
	free(q);
}

static void parked_link(struct waitq *q, struct parked *p)
{
	p->next = q->head;
	if (q->head)
		q->head->pprev = &p->next;
	q->head = p;
	p->pprev = &q->head;
	p->listed = true;
}

static void parked_unlink(struct parked *p)
{
	if (!p->listed)
		return;
	*p->pprev = p->next;
	if (p->next)
		p->next->pprev = p->pprev;
	p->listed = false;
}

/* The count p is in: snapshot readers are not "blocked status/wait reads", and a
 * metrics read must get through while max_parked job readers wait. */
static size_t *count_of(struct fs_streams *s, const struct parked *p)
{
	return fs_cache_snap_kind(p->kind) ? &s->nsnap : &s->nparked;
}

static void all_link(struct fs_streams *s, struct parked *p)
{
	p->all_next = s->all;
	if (s->all)
		s->all->all_pprev = &p->all_next;
	s->all = p;
	p->all_pprev = &s->all;
	(*count_of(s, p))++;
}

static void all_unlink(struct fs_streams *s, struct parked *p)
{
	*p->all_pprev = p->all_next;
	if (p->all_next)
		p->all_next->all_pprev = p->all_pprev;
	(*count_of(s, p))--;
}

static void parked_free(struct fs_streams *s, struct parked *p)
{
	pthread_mutex_lock(&s->lock);
	all_unlink(s, p);
	pthread_mutex_unlock(&s->lock);
	free(p);
}

/* ---- retrying parked readers ---- */

/* Tries every request in list; returns those still waiting (busy, unlisted). */
static struct parked *retry_list(struct sfs_fs *fs, struct parked *list)
{
	struct parked *keep = NULL, *next;
	char *buf;
	size_t len;
	bool ready;
	int r;

	for (struct parked *p = list; p; p = next) {
		next = p->next;
		r = stream_try(fs, p->kind, p->job, p->off, p->size, &buf, &len, &ready);
		if (r == 0 && !ready) {
			free(buf);
			p->next = keep;
			keep = p;
			continue;
		}
		answer(p->req, NULL, p->off, r, buf, len);
		parked_free(fs->streams, p);
	}
	return keep;
}

/* Puts back what is still waiting; returns the interrupted ones (to answer). */
static struct parked *requeue(struct waitq *q, struct parked *keep)
{
	struct parked *intr = NULL, *next;

	for (struct parked *p = keep; p; p = next) {
		next = p->next;
		if (p->interrupted) {
			p->next = intr;
			intr = p;
		} else {
			parked_link(q, p);
		}
	}
	return intr;
}

static void answer_eintr(struct fs_streams *s, struct parked *list)
{
	struct parked *next;

	for (struct parked *p = list; p; p = next) {
		next = p->next;
		fuse_reply_err(p->req, EINTR);
		parked_free(s, p);
	}
}

/* Retries the parked readers of job until no notify came in meanwhile. */
static void kick(struct sfs_fs *fs, uint64_t job)
{
	struct fs_streams *s = fs->streams;
	struct parked *list, *intr;
	struct waitq *q;
	uint64_t gen;

	pthread_mutex_lock(&s->lock);
	q = waitq_get(s, job, false);
	if (!q) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	q->active++;
	do {
		gen = q->gen;
		list = q->head;
		for (struct parked *p = list; p; p = p->next)
			p->listed = false;
		q->head = NULL;
		pthread_mutex_unlock(&s->lock);

		list = retry_list(fs, list);

		pthread_mutex_lock(&s->lock);
		intr = requeue(q, list);
		if (intr) {
			pthread_mutex_unlock(&s->lock);
			answer_eintr(s, intr);
			pthread_mutex_lock(&s->lock);
		}
	} while (q->gen != gen && q->head);
	q->active--;
	waitq_maybe_free(s, q);
	pthread_mutex_unlock(&s->lock);
}

static void notify_pollers(struct waitq *q)
{
	struct fs_file *f, *next;

	for (f = q->pollers; f; f = next) {
		next = f->poll_next;
		if (f->ph) {
			fuse_lowlevel_notify_poll(f->ph);
			fuse_pollhandle_destroy(f->ph);
			f->ph = NULL;
		}
		f->poll_next = NULL;
		f->poll_pprev = NULL;
	}
	q->pollers = NULL;
}

void fs_stream_notify(void *arg, uint64_t job)
{
	struct sfs_fs *fs = arg;
	struct fs_streams *s = fs->streams;
	struct waitq *q;

	pthread_mutex_lock(&s->lock);
	q = s->closing ? NULL : waitq_get(s, job, false);
	if (q) {
		q->gen++;
		notify_pollers(q);
		waitq_maybe_free(s, q);
	}
	pthread_mutex_unlock(&s->lock);
}

void fs_stream_kick(struct sfs_fs *fs, uint64_t job)
{
	kick(fs, job);
}

/* ---- parking ---- */

/* data is the struct fs_streams. */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct fs_streams *s = data;
	struct parked *p;

	pthread_mutex_lock(&s->lock);
	for (p = s->all; p && p->req != req; p = p->all_next)
		;
	if (p && !p->listed) {
		p->interrupted = true; /* a kicker holds it and will answer */
		p = NULL;
	} else if (p) {
		parked_unlink(p);
		all_unlink(s, p);
	}
	pthread_mutex_unlock(&s->lock);
	if (p) {
		fuse_reply_err(req, EINTR);
		free(p);
	}
}

static void park(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, size_t size, off_t off)
{
	struct fs_streams *s = fs->streams;
	struct parked *p = calloc(1, sizeof(*p));
	struct waitq *q = NULL;
	uint64_t job = f->d.job; /* p may be answered and freed once queued */
	int err = 0;

	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	*p = (struct parked){
	    .req = req, .job = f->d.job, .kind = f->d.kind, .off = off, .size = size};
	/* Registered first: an interrupt that already came calls on_interrupt now,
	 * which finds nothing, and fuse_req_interrupted() below tells us. */
	fuse_req_interrupt_func(req, on_interrupt, s);
	pthread_mutex_lock(&s->lock);
	if (fuse_req_interrupted(req))
		err = EINTR;
	else if (*count_of(s, p) >= fs->opts->max_parked)
		err = EAGAIN;
	else if (!(q = waitq_get(s, p->job, true)))
		err = ENOMEM;
	if (!err) {
		parked_link(q, p);
		all_link(s, p);
	}
	pthread_mutex_unlock(&s->lock);
	if (err) {
		if (err == EAGAIN)
			sfs_log(SFS_LOG_WARN, "too many blocked readers (max_parked=%u)",
				fs->opts->max_parked);
		fuse_reply_err(req, err);
		free(p);
		return;
	}
	/* A notify between our read and the parking would be lost otherwise. */
	kick(fs, job);
}

/* A snapshot file's handle is bound to its snapshot at its first read or poll
 * (f->d.job, 0 until then); two first reads at once keep one. */
static int bind_snapshot(struct sfs_fs *fs, struct fs_file *f)
{
	uint64_t none = 0, id;
	int r;

	if (!fs_cache_snap_kind(f->d.kind) || __atomic_load_n(&f->d.job, __ATOMIC_ACQUIRE))
		return 0;
	if ((r = fs_cache_snap_want(fs, f->d.kind, &id)) < 0)
		return r;
	if (!__atomic_compare_exchange_n(&f->d.job, &none, id, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		fs_cache_snap_put(fs, id);
	return 0;
}

void fs_stream_read(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, size_t size, off_t off)
{
	char *buf = NULL;
	size_t len = 0;
	bool ready = false;
	int r = bind_snapshot(fs, f);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = stream_try(fs, f->d.kind, f->d.job, off, size, &buf, &len, &ready);

	if (r < 0 || ready) {
		answer(req, f, off, r, buf, len);
		return;
	}
	free(buf);
	if (f->nonblock) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	park(fs, req, f, size, off);
}

/* ---- poll ---- */

static void poller_unlink(struct fs_file *f)
{
	if (!f->poll_pprev)
		return;
	*f->poll_pprev = f->poll_next;
	if (f->poll_next)
		f->poll_next->poll_pprev = f->poll_pprev;
	f->poll_next = NULL;
	f->poll_pprev = NULL;
}

static void poller_register(struct fs_streams *s, struct fs_file *f, struct fuse_pollhandle *ph)
{
	struct waitq *q;

	pthread_mutex_lock(&s->lock);
	if (f->ph)
		fuse_pollhandle_destroy(f->ph);
	f->ph = ph;
	q = waitq_get(s, f->d.job, true);
	if (!q) {
		fuse_pollhandle_destroy(f->ph);
		f->ph = NULL;
	} else if (!f->poll_pprev) {
		f->poll_next = q->pollers;
		if (q->pollers)
			q->pollers->poll_pprev = &f->poll_next;
		q->pollers = f;
		f->poll_pprev = &q->pollers;
	}
	pthread_mutex_unlock(&s->lock);
}

void fs_stream_poll(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f,
		    struct fuse_pollhandle *ph)
{
	uint64_t pos = __atomic_load_n(&f->pos, __ATOMIC_RELAXED);
	char *buf = NULL;
	size_t len = 0;
	bool ready = false;
	int r;

	if ((r = bind_snapshot(fs, f)) < 0) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, POLLERR);
		return;
	}
	/* Registered before looking, so a change in between still notifies. */
	if (ph)
		poller_register(fs->streams, f, ph);
	r = stream_try(fs, f->d.kind, f->d.job, (off_t)pos, 1, &buf, &len, &ready);
	free(buf);
	if (r < 0)
		fuse_reply_poll(req, POLLERR);
	else
		fuse_reply_poll(req, ready ? POLLIN | POLLRDNORM : 0);
}

void fs_stream_file_release(struct sfs_fs *fs, struct fs_file *f)
{
	struct fs_streams *s = fs->streams;
	struct waitq *q;

	pthread_mutex_lock(&s->lock);
	if (f->ph) {
		fuse_pollhandle_destroy(f->ph);
		f->ph = NULL;
	}
	if (f->poll_pprev) {
		poller_unlink(f);
		q = waitq_get(s, f->d.job, false);
		if (q)
			waitq_maybe_free(s, q);
	}
	pthread_mutex_unlock(&s->lock);
	if (fs_cache_snap_kind(f->d.kind) && f->d.job)
		fs_cache_snap_put(fs, f->d.job);
}

void fs_stream_shutdown(struct sfs_fs *fs)
{
	struct fs_streams *s = fs->streams;
	struct parked *list = NULL, *next;
	const char *k;
	void *v;

	pthread_mutex_lock(&s->lock);
	for (struct parked *p = s->all; p; p = p->all_next)
		if (p->listed) {
			parked_unlink(p);
			p->next = list;
			list = p;
		}
	for (size_t i = 0; strmap_next(&s->queues, &i, &k, &v);)
		notify_pollers(v);
	pthread_mutex_unlock(&s->lock);
	/* Not EINTR: readers retry that, and the mount is about to go away. */
	for (struct parked *p = list; p; p = next) {
		next = p->next;
		fuse_reply_err(p->req, ENOTCONN);
		parked_free(s, p);
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; strmap_next(&s->queues, &i, &k, &v);)
		if (!((struct waitq *)v)->active)
			free(v);
	strmap_release(&s->queues);
	pthread_mutex_unlock(&s->lock);
}
