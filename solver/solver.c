/*
 * solver.c — the public face of the solver (solver.h): the job table, its
 * history, and the non-blocking queries fs/ makes.
 *
 * The job table holds every job fs/ can show: pending and running ones, and
 * finished ones (up to jobs_keep) loaded from the database at open.  Jobs are
 * keyed by their decimal number in s->jobs; s->job_ids keeps them in order.
 * Locking: sfs_solver.lock (see internal.h).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "history.h"
#include "internal.h"
#include "pins.h"
#include "registry.h"

/* Specs at least this large give back their parse's memory (malloc_trim). */
#define SFS_TRIM_SPEC_BYTES (256 * 1024)

const char *sfs_job_state_name(enum sfs_job_state st)
{
	static const char *const n[] = {"pending", "running", "done", "failed", "cancelled"};
	return n[st];
}

const char *sfs_vertex_state_name(enum sfs_vertex_state st)
{
	static const char *const n[] = {"pending", "running", "cached",
					"done",	   "failed",  "cancelled"};
	return n[st];
}

void sfs_solver_opts_default(struct sfs_solver_opts *o)
{
	memset(o, 0, sizeof(*o));
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	o->workers = n > 0 ? (int)n : 1;
	o->sandbox = SFS_SANDBOX_NONE;
	o->owner = getuid();
	o->jobs_keep = 1000;
	o->max_running = 64;
	o->max_pending = 1024;
	o->pending_timeout_ns = SFS_PENDING_TIMEOUT_DEFAULT_NS;
	o->log_limit = 64u << 20;
	o->output_limit = 16ull << 30;
	struct cache_import_opts io;
	cache_import_opts_default(&io);
	o->import_limits = io.limits;
	o->status_limit = 16u << 20;
	o->limits.max_bytes = 16u << 20;
	o->limits.max_vertices = 100000;
	o->limits.max_path = 4096;
	o->limits.max_inline = 16u << 20;
	o->limits.max_name = 1024;
}

static void id_key(uint64_t id, char buf[24])
{
	snprintf(buf, 24, "%llu", (unsigned long long)id);
}

static struct sfs_job *job_get(struct sfs_solver *s, uint64_t id)
{
	char k[24];
	id_key(id, k);
	return strmap_get(&s->jobs, k);
}

static int job_table_add(struct sfs_solver *s, struct sfs_job *j)
{
	char k[24];
	id_key(j->id, k);
	int r =
	    sfs_grow((void **)&s->job_ids, &s->cap_job_ids, s->njob_ids + 1, sizeof(*s->job_ids));
	if (r < 0 || (r = strmap_put(&s->jobs, k, j, NULL)) < 0)
		return r;
	size_t i = s->njob_ids; /* ids arrive ascending, except at load */
	while (i > 0 && s->job_ids[i - 1] > j->id) {
		s->job_ids[i] = s->job_ids[i - 1];
		i--;
	}
	s->job_ids[i] = j->id;
	s->njob_ids++;
	return 0;
}

static void job_table_del(struct sfs_solver *s, struct sfs_job *j)
{
	char k[24];
	id_key(j->id, k);
	strmap_del(&s->jobs, k);
	size_t keep = 0;
	for (size_t i = 0; i < s->njob_ids; i++)
		if (s->job_ids[i] != j->id)
			s->job_ids[keep++] = s->job_ids[i];
	s->njob_ids = keep;
	sfs_job_unref(j);
}

static struct sfs_job *job_alloc(struct sfs_solver *s, uint64_t id, uid_t uid, gid_t gid)
{
	struct sfs_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->refs = 1;
	j->s = s;
	j->id = id;
	j->uid = uid;
	j->gid = gid;
	j->created = j->changed = sfs_now_ns();
	j->error = strdup("");
	if (!j->error) {
		free(j);
		return NULL;
	}
	return j;
}

static enum sfs_job_state state_from_name(const char *n)
{
	for (int st = SFS_JOB_PENDING; st <= SFS_JOB_CANCELLED; st++)
		if (n && strcmp(n, sfs_job_state_name(st)) == 0)
			return st;
	return SFS_JOB_CANCELLED;
}

/* Output refs of a stored result: "<ref> <digest>" lines. */
static int outputs_from_result(struct sfs_job *j, const char *text)
{
	size_t n = 0;
	for (const char *p = text; p && *p; p++)
		n += *p == '\n';
	j->outputs = calloc(n + 1, sizeof(*j->outputs));
	if (!j->outputs)
		return -ENOMEM;
	for (const char *p = text; p && *p;) {
		const char *nl = strchrnul(p, '\n'), *sp = memchr(p, ' ', (size_t)(nl - p));
		if (sp) {
			struct sfs_job_output *o = &j->outputs[j->noutputs++];
			o->ref = strndup(p, (size_t)(sp - p));
			snprintf(o->result, sizeof(o->result), "%.*s", (int)(nl - sp - 1), sp + 1);
		}
		p = *nl ? nl + 1 : nl;
	}
	return 0;
}

static int job_from_history(struct sfs_solver *s, struct history_job *h)
{
	struct sfs_job *j = job_alloc(s, h->id, h->uid, h->gid);
	if (!j)
		return -ENOMEM;
	j->state = state_from_name(h->state); /* a new job as it was saved: no transition */
	j->created = h->created;
	j->ended = h->ended;
	j->changed = h->ended ? h->ended : h->created;
	free(j->error);
	j->error = h->error ? h->error : strdup("");
	h->error = NULL;
	j->spec_len = h->spec_len; /* the spec stays in the row (history_list) */
	j->spec_in_row = h->has_spec;
	j->texts_saved = true; /* read from the row */
	j->kept = cache_job_pinned(s->cache->db, j->id);
	j->saved_len[SFS_STREAM_STATUS] = h->status_len;
	j->saved_len[SFS_STREAM_STATUS_JSON] = h->status_json_len;
	j->vertices_len = h->vertices_len; /* loaded when someone looks */
	int r = outputs_from_result(j, h->result);
	if (r == 0)
		r = job_table_add(s, j);
	if (r < 0) {
		sfs_job_unref(j);
		return r;
	}
	if (sfs_job_has_spec(j) && j->id > s->latest)
		s->latest = j->id;
	return 0;
}

static int load_history(struct sfs_solver *s)
{
	struct history_job *hs = NULL;
	size_t n = 0;
	int r = history_mark_interrupted(s->cache->db, sfs_now_ns());
	if (r == 0)
		r = history_list(s->cache->db, &hs, &n);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = job_from_history(s, &hs[i]);
		history_job_release(&hs[i]);
	}
	free(hs);
	return r;
}

int sfs_solver_open(struct sfs_cache *cache, const struct sfs_solver_opts *o,
		    struct sfs_solver **ret, char **ret_msg)
{
	struct sfs_solver *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* keyed by each vertex's digest; the edge index by each edge's sigs (struct edge_sig) */
	s->actives = (struct strmap)STRMAP_INIT_BORROWED;
	s->edge_index = (struct dgstmap)DGSTMAP_INIT;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->parse_cond, NULL);
	pthread_cond_init(&s->light_cond, NULL);
	pthread_cond_init(&s->heavy_cond, NULL);
	s->cache = cache;
	s->main_cc.main = cache->main;
	s->o = *o;
	if (s->o.workers < 1)
		s->o.workers = 1;
	if (o->mountpoint && !(s->mountpoint = strdup(o->mountpoint)))
		goto oom;
	if (!(s->registry = malloc(sizeof(*s->registry))))
		goto oom;
	sfs_solver_registry_opts(s, s->registry);
	if (asprintf(&s->spill_dir, "%s/tmp", cache->state_dir) < 0) {
		s->spill_dir = NULL;
		goto oom;
	}
	int r = load_history(s);
	if (r < 0)
		sfs_errf(ret_msg, r, "reading the job history failed: %s", strerror(-r));
	else if ((r = sfs_job_exports_sweep(s)) < 0)
		sfs_errf(ret_msg, r, "removing what a killed daemon left in %s/exports: %s",
			 cache->state_dir, strerror(-r));
	if (r < 0) {
		sfs_solver_close(s);
		return r;
	}
	r = sfs_sched_start(s);
	if (r == 0)
		r = sfs_parser_start(s);
	if (r < 0) {
		sfs_errf(ret_msg, r, "cannot start worker threads");
		sfs_solver_close(s);
		return r;
	}
	*ret = s;
	return 0;
oom:
	sfs_solver_close(s);
	return -ENOMEM;
}

struct sfs_solver *sfs_solver_close(struct sfs_solver *s)
{
	if (!s)
		return NULL;
	sfs_parser_stop(s); /* specs still queued are answered -ESHUTDOWN */
	sfs_solver_lock(s);
	for (size_t i = 0; i < s->njob_ids; i++) {
		struct sfs_job *j = job_get(s, s->job_ids[i]);
		if (j && j->state == SFS_JOB_RUNNING)
			sfs_job_end(s, j, SFS_JOB_CANCELLED, "solverfs was unmounted");
	}
	sfs_solver_unlock(s);
	if (s->threads)
		sfs_sched_stop(s);
	sfs_solver_lock(s);
	while (s->njob_ids) {
		struct sfs_job *j = job_get(s, s->job_ids[s->njob_ids - 1]);
		if (!j) {
			s->njob_ids--;
			continue;
		}
		job_table_del(s, j);
	}
	sfs_solver_unlock(s);
	strmap_release(&s->jobs);
	strmap_release(&s->actives);
	dgstmap_release(&s->edge_index);
	sfs_sources_free(s);
	free(s->job_ids);
	free(s->dirty);
	for (size_t i = 0; i < s->ntrash; i++) {
		cas_rmtree(s->trash[i]);
		free(s->trash[i]);
	}
	free(s->trash);
	free(s->deferred);
	free(s->mountpoint);
	free(s->registry);
	free(s->spill_dir);
	pthread_cond_destroy(&s->parse_cond);
	pthread_cond_destroy(&s->light_cond);
	pthread_cond_destroy(&s->heavy_cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}

void sfs_solver_flush_notify(struct sfs_solver *s)
{
	SFS_ASSERT_UNLOCKED(s);
	sfs_solver_lock(s);
	uint64_t *d = s->dirty;
	size_t n = s->ndirty;
	unsigned ended = s->ended_unflushed;
	uint64_t ran = s->stats.jobs_done + s->stats.jobs_failed + s->stats.jobs_cancelled;
	s->dirty = NULL;
	s->ndirty = s->cap_dirty = 0;
	s->ended_unflushed = 0;
	sfs_solver_unlock(s);
	/* before the notify calls: a reader woken by a job's end finds it counted */
	if (ended && s->o.job_ended)
		s->o.job_ended(s->o.job_ended_arg, ran);
	for (size_t i = 0; i < n && s->o.notify; i++)
		s->o.notify(s->o.notify_arg, d[i]);
	free(d);
}

/* Removes the deleted exports; on a worker, no lock held. */
void sfs_solver_empty_trash(struct sfs_solver *s)
{
	SFS_ASSERT_UNLOCKED(s);
	sfs_solver_lock(s);
	char **trash = s->trash;
	size_t n = s->ntrash;
	s->trash = NULL;
	s->ntrash = 0;
	sfs_solver_unlock(s);
	for (size_t i = 0; i < n; i++) {
		cas_rmtree(trash[i]);
		free(trash[i]);
	}
	free(trash);
}

/* Deletes a finished or pending job: its history row, its export, its entry. */
static void job_delete(struct sfs_solver *s, struct sfs_job *j)
{
	/* an export can be large: moved into tmp/ now (a rename), removed by a
	 * worker without the lock (sfs_solver_empty_trash), or at the next mount */
	char *dir = sfs_job_export_dir(s, j->id), *trash = NULL;
	if (dir &&
	    asprintf(&trash, "%s/deleted-export-%llu", cas_tmp_dir(s->cache->cas),
		     (unsigned long long)j->id) > 0 &&
	    rename(dir, trash) == 0) {
		char **n = realloc(s->trash, (s->ntrash + 1) * sizeof(*n));
		if (n) {
			s->trash = n;
			s->trash[s->ntrash++] = trash;
			trash = NULL;
			sfs_queue_trash_task(s);
		}
	}
	free(trash);
	free(dir);
	history_delete(s->cache->db, j->id);
	job_table_del(s, j);
}

static bool pending_expired(const struct sfs_solver *s, const struct sfs_job *j, int64_t now)
{
	return j->state == SFS_JOB_PENDING && now - j->created >= s->o.pending_timeout_ns;
}

/*
 * Deletes pending jobs that got no spec within pending_timeout (an hour by
 * default; lock held).  Nothing waits for the moment: every listing and every
 * lookup of a job comes here first, so no one sees an expired job.
 */
static void drop_stale_pending(struct sfs_solver *s)
{
	SFS_ASSERT_LOCKED(s);
	int64_t now = sfs_now_ns();
	for (size_t i = 0; i < s->njob_ids;) {
		struct sfs_job *j = job_get(s, s->job_ids[i]);
		if (!j || !pending_expired(s, j, now)) {
			i++;
			continue;
		}
		s->pending--;
		sfs_job_mark_dirty(s, j);
		job_delete(s, j);
	}
}

/* Deletes the oldest finished jobs beyond jobs_keep (lock held). */
static void trim_history(struct sfs_solver *s)
{
	SFS_ASSERT_LOCKED(s);
	drop_stale_pending(s);
	size_t finished = 0;
	for (size_t i = 0; i < s->njob_ids; i++) {
		struct sfs_job *j = job_get(s, s->job_ids[i]);
		finished += j && sfs_job_state_final(j->state) && !j->kept;
	}
	for (size_t i = 0; i < s->njob_ids && finished > s->o.jobs_keep;) {
		struct sfs_job *j = job_get(s, s->job_ids[i]);
		if (!j || !sfs_job_state_final(j->state) || j->kept) {
			i++;
			continue;
		}
		job_delete(s, j);
		finished--;
	}
}

int sfs_solver_job_new(struct sfs_solver *s, uid_t uid, gid_t gid, uint64_t *ret_id)
{
	uint64_t id;
	sfs_solver_lock(s);
	int r = s->pending >= s->o.max_pending ? -EAGAIN : history_next_id(s->cache->db, &id);
	struct sfs_job *j = r == 0 ? job_alloc(s, id, uid, gid) : NULL;
	if (r == 0 && !j)
		r = -ENOMEM;
	if (r == 0)
		r = job_table_add(s, j);
	if (r == 0) {
		s->pending++;
		sfs_job_save(s, j);
		*ret_id = id;
	} else if (j) {
		sfs_job_unref(j);
	}
	sfs_solver_unlock(s);
	return r;
}

static int job_outputs_init(struct sfs_job *j)
{
	j->noutputs = j->spec->noutputs;
	j->outputs = calloc(j->noutputs ? j->noutputs : 1, sizeof(*j->outputs));
	if (!j->outputs)
		return -ENOMEM;
	for (size_t o = 0; o < j->noutputs; o++)
		if (!(j->outputs[o].ref = strdup(j->spec->output_refs[o])))
			return -ENOMEM;
	return 0;
}

/*
 * A refused spec (lock held): the pending job's error says so with its number,
 * which the writer's close cannot carry (README "The mounted tree": EINVAL and
 * jobs/N/error), and jobs/last-rejected points at it.
 */
static void job_reject(struct sfs_solver *s, struct sfs_job *j, const char *why)
{
	SFS_ASSERT_LOCKED(s);
	char *e = NULL;
	if (asprintf(&e, "job %llu: spec rejected: %s", (unsigned long long)j->id, why) < 0)
		e = NULL;
	free(j->error);
	j->error = e ? e : strdup(why);
	j->rejected = true;
	s->last_rejected = j->id;
	sfs_job_mark_dirty(s, j);
}

/* -EAGAIN past max_running (lock held): the spec is not taken, and the job
 * says why, as for a rejection, so that the writer can write it again later. */
static int too_many_running(struct sfs_solver *s, struct sfs_job *j, char **ret_msg)
{
	int r = sfs_errf(ret_msg, -EAGAIN,
			 "too many running jobs (max_running=%u): write the spec again later",
			 s->o.max_running);
	job_reject(s, j, *ret_msg ? *ret_msg : strerror(-r));
	return r;
}

static int submit_locked(struct sfs_solver *s, struct sfs_job *j, struct sfs_spec *sp,
			 const char *text, size_t len, char **ret_msg)
{
	if (!(j->spec_text = malloc(len + 1)))
		return -ENOMEM;
	memcpy(j->spec_text, text, len);
	j->spec_text[len] = '\0';
	j->spec_len = len;
	j->spec = sp;
	sfs_job_set_state(j, SFS_JOB_RUNNING);
	sfs_job_ref(j); /* the graph's: dropped when the job ends, whatever fails below */
	s->pending--;
	s->running++;
	if (j->id > s->latest) /* the newest job, whichever parse ended first */
		s->latest = j->id;
	free(j->error);
	j->error = strdup("");
	j->rejected = false;
	int r = job_outputs_init(j);
	if (r == 0)
		r = sfs_job_save(s, j);
	if (r == 0)
		r = sfs_job_start(s, j, ret_msg);
	if (r < 0)
		sfs_job_end(s, j, SFS_JOB_FAILED, *ret_msg ? *ret_msg : strerror(-r));
	sfs_job_mark_dirty(s, j);
	return 0;
}

int sfs_solver_job_submit(struct sfs_solver *s, uint64_t id, uid_t uid, const char *text,
			  size_t len, char **ret_msg)
{
	struct sfs_spec *sp = NULL;
	struct sfs_spec_ctx ctx = {.session = id,
				   .limits = &s->o.limits,
				   .allow_local = true,
				   .allow_network = true,
				   .mountpoint = s->mountpoint};
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	int r = 0;
	if (!j)
		r = sfs_errf(ret_msg, -ENOENT, "no job %llu", (unsigned long long)id);
	else if (uid != 0 && uid != j->uid)
		r = sfs_errf(ret_msg, -EPERM, "job %llu belongs to uid %u", (unsigned long long)id,
			     (unsigned)j->uid);
	else if (j->state != SFS_JOB_PENDING)
		r = sfs_errf(ret_msg, -EBUSY, "job %llu is %s", (unsigned long long)id,
			     sfs_job_state_name(j->state));
	else if (s->running >= s->o.max_running)
		r = too_many_running(s, j, ret_msg);
	if (j)
		sfs_job_ref(j);
	sfs_solver_unlock(s);
	if (r < 0) {
		sfs_job_unref(j);
		sfs_solver_flush_notify(s);
		return r;
	}
	/* parsing is CPU work (on the parser thread for the mount): outside the lock */
	r = sfs_spec_parse(text, len, &ctx, &sp, ret_msg);
	/* A large spec's JSON tree was freed on this thread's malloc arena, which
	 * the solve's allocations may not reuse: hand those pages back. */
	if (len >= SFS_TRIM_SPEC_BYTES)
		malloc_trim(0);
	sfs_solver_lock(s);
	if (r < 0 && j->state == SFS_JOB_PENDING) {
		job_reject(s, j, *ret_msg ? *ret_msg : strerror(-r));
	} else if (r < 0) {
		/* cancelled while its spec was parsed: that is what its error says */
	} else if (j->state != SFS_JOB_PENDING) {
		sp = sfs_spec_free(sp);
		r = sfs_errf(ret_msg, -EBUSY, "job %llu is %s", (unsigned long long)id,
			     sfs_job_state_name(j->state));
	} else if (s->running >= s->o.max_running) { /* another parser's job got in first */
		sp = sfs_spec_free(sp);
		r = too_many_running(s, j, ret_msg);
	} else {
		r = submit_locked(s, j, sp, text, len, ret_msg);
	}
	sfs_job_unref(j);
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
	return r;
}

int sfs_solver_job_refuse(struct sfs_solver *s, uint64_t id, uid_t uid, const char *msg)
{
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	int r = 0;
	if (!j)
		r = -ENOENT;
	else if (uid != 0 && uid != j->uid)
		r = -EPERM;
	else if (j->state != SFS_JOB_PENDING)
		r = -EBUSY;
	if (r == 0)
		job_reject(s, j, msg);
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
	return r;
}

static bool ctl_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What was written, without the blanks around it: *buf and *len are moved. */
static void ctl_trim(const char **buf, size_t *len)
{
	while (*len > 0 && ctl_blank((*buf)[*len - 1]))
		(*len)--;
	while (*len > 0 && ctl_blank((*buf)[0])) {
		(*buf)++;
		(*len)--;
	}
}

/* The command as messages show it: trimmed, unprintable bytes as '?', at most
 * 32 bytes and "..." (so a message never carries what a terminal would run). */
#define CTL_SHOWN 32
static void ctl_shown(const char *buf, size_t len, char ret[CTL_SHOWN + 4])
{
	ctl_trim(&buf, &len);
	if (len == 0) {
		strcpy(ret, "(empty)");
		return;
	}
	size_t n = len < CTL_SHOWN ? len : CTL_SHOWN;
	for (size_t i = 0; i < n; i++)
		ret[i] = buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?';
	strcpy(ret + n, len > n ? "..." : "");
}

int sfs_job_ctl_parse(const char *buf, size_t len, enum sfs_job_cmd *ret, char **ret_msg)
{
	static const struct {
		const char *name;
		enum sfs_job_cmd cmd;
	} cmds[] = {{"cancel", SFS_JOB_CMD_CANCEL},
		    {"discard", SFS_JOB_CMD_DISCARD},
		    {"keep", SFS_JOB_CMD_KEEP},
		    {"unkeep", SFS_JOB_CMD_UNKEEP}};

	if (len > SFS_JOB_CTL_MAX)
		return sfs_errf(ret_msg, -EINVAL, "command longer than %d bytes", SFS_JOB_CTL_MAX);
	ctl_trim(&buf, &len);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		size_t n = strlen(cmds[i].name);
		if (len < n || memcmp(buf, cmds[i].name, n) != 0)
			continue;
		if (len == n) {
			*ret = cmds[i].cmd;
			return 0;
		}
		if (ctl_blank(buf[n])) /* "cancel now": the word is right, the rest is not */
			return sfs_errf(ret_msg, -EINVAL, "%s takes no argument", cmds[i].name);
	}
	return sfs_errf(ret_msg, -EINVAL, "unknown command (cancel, discard, keep, unkeep)");
}

/*
 * Remembers what a ctl write did to job j (lock held), for a read of ctl: "ok:
 * CMD" or "error: CMD: why" (msg is "CMD: why").  A refused command also
 * becomes a "ctl: CMD: why" line of the job's error (the newest
 * SFS_JOB_CTL_ERRORS are kept), which a finished job's row gets at once.
 */
static void ctl_record(struct sfs_solver *s, struct sfs_job *j, const char *shown, int r,
		       const char *msg)
{
	SFS_ASSERT_LOCKED(s);
	char *last = NULL;
	if (r == 0 ? asprintf(&last, "ok: %s", shown) < 0 : asprintf(&last, "error: %s", msg) < 0)
		last = NULL;
	free(j->ctl_last);
	j->ctl_last = last;
	sfs_job_mark_dirty(s, j);
	if (r == 0)
		return;
	if (j->nctl_errors == SFS_JOB_CTL_ERRORS) { /* the oldest line goes */
		char *nl = memchr(j->ctl_errors.buf, '\n', j->ctl_errors.len);
		size_t cut = nl ? (size_t)(nl - j->ctl_errors.buf) + 1 : j->ctl_errors.len;
		memmove(j->ctl_errors.buf, j->ctl_errors.buf + cut, j->ctl_errors.len - cut + 1);
		j->ctl_errors.len -= cut;
		j->nctl_errors--;
	}
	strbuf_addf(&j->ctl_errors, "ctl: %s\n", msg);
	j->nctl_errors++;
	if (!j->texts_saved) /* a live job's row gets it when the job ends */
		return;
	char *text = sfs_job_error_text(j);
	if (!text || history_set_error(s->cache->db, j->id, text) < 0)
		sfs_log(SFS_LOG_WARN, "job %llu: the ctl error is not saved",
			(unsigned long long)j->id);
	free(text);
}

/* keep: the job's built outputs become GC roots (lock held). */
static int job_keep_locked(struct sfs_solver *s, struct sfs_job *j, char **ret_msg)
{
	if (!sfs_job_state_final(j->state))
		return sfs_errf(ret_msg, -EBUSY, "job %llu is %s: keep it once it has ended",
				(unsigned long long)j->id, sfs_job_state_name(j->state));
	const char *ids[j->noutputs ? j->noutputs : 1];
	size_t n = 0;
	for (size_t o = 0; o < j->noutputs; o++)
		if (j->outputs[o].result[0])
			ids[n++] = j->outputs[o].result;
	if (n == 0)
		return sfs_errf(ret_msg, -EINVAL, "job %llu built no output to keep",
				(unsigned long long)j->id);
	int r = cache_pins_set(s->cache->db, j->id, ids, n);
	if (r < 0)
		return sfs_errf(ret_msg, r, "saving the pins failed: %s", strerror(-r));
	j->kept = true;
	return 0;
}

static int job_ctl_locked(struct sfs_solver *s, struct sfs_job *j, enum sfs_job_cmd cmd,
			  char **ret_msg)
{
	int r;

	switch (cmd) {
	case SFS_JOB_CMD_CANCEL:
		if (sfs_job_state_final(j->state))
			return sfs_errf(ret_msg, -EINVAL, "job %llu is already %s",
					(unsigned long long)j->id, sfs_job_state_name(j->state));
		sfs_job_end(s, j, SFS_JOB_CANCELLED, "cancelled");
		return 0;
	case SFS_JOB_CMD_DISCARD:
		if (j->state == SFS_JOB_RUNNING)
			return sfs_errf(ret_msg, -EBUSY, "job %llu is running",
					(unsigned long long)j->id);
		if (j->state == SFS_JOB_PENDING)
			s->pending--;
		sfs_job_mark_dirty(s, j);
		job_delete(s, j);
		return 0;
	case SFS_JOB_CMD_KEEP:
		return job_keep_locked(s, j, ret_msg);
	case SFS_JOB_CMD_UNKEEP:
		if ((r = cache_pins_clear(s->cache->db, j->id)) < 0)
			return sfs_errf(ret_msg, r, "dropping the pins failed: %s", strerror(-r));
		j->kept = false;
		return 0;
	}
	return -EINVAL;
}

int sfs_solver_job_ctl(struct sfs_solver *s, uint64_t id, uid_t uid, const char *buf, size_t len,
		       char **ret_msg)
{
	enum sfs_job_cmd cmd = SFS_JOB_CMD_CANCEL;
	char *msg = NULL, shown[CTL_SHOWN + 4];
	int r = sfs_job_ctl_parse(buf, len, &cmd, &msg);

	ctl_shown(buf, len, shown);
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	if (!j) {
		if (r == 0)
			r = sfs_errf(&msg, -ENOENT, "no job %llu", (unsigned long long)id);
	} else if (uid != 0 && uid != j->uid) { /* not theirs: nothing to record either */
		if (r == 0)
			r = sfs_errf(&msg, -EPERM, "job %llu belongs to uid %u",
				     (unsigned long long)id, (unsigned)j->uid);
	} else {
		if (r == 0)
			r = job_ctl_locked(s, j, cmd, &msg);
		if (r < 0)
			sfs_err_prefix(&msg, r, "%s", shown);
		if (r < 0 || cmd != SFS_JOB_CMD_DISCARD) /* a discarded job is gone */
			ctl_record(s, j, shown, r, msg ? msg : strerror(-r));
	}
	if (r == 0)
		trim_history(s);
	sfs_solver_unlock(s);
	sfs_solver_flush_notify(s);
	if (ret_msg)
		*ret_msg = msg;
	else
		free(msg);
	return r;
}

int sfs_solver_job_list(struct sfs_solver *s, uint64_t **ret_ids, size_t *ret_n)
{
	sfs_solver_lock(s);
	trim_history(s);
	size_t n = s->njob_ids;
	uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	if (ids && n)
		memcpy(ids, s->job_ids, n * sizeof(*ids));
	sfs_solver_unlock(s);
	if (!ids)
		return -ENOMEM;
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}

uint64_t sfs_solver_job_latest(struct sfs_solver *s)
{
	sfs_solver_lock(s);
	uint64_t id = s->latest;
	if (id && !job_get(s, id))
		id = 0;
	sfs_solver_unlock(s);
	return id;
}

uint64_t sfs_solver_job_last_rejected(struct sfs_solver *s)
{
	sfs_solver_lock(s);
	struct sfs_job *j = s->last_rejected ? job_get(s, s->last_rejected) : NULL;
	uint64_t id = j && j->rejected && j->state == SFS_JOB_PENDING ? j->id : 0;
	sfs_solver_unlock(s);
	return id;
}

/* The live text of stream k, or NULL when it is in the database (or none). */
static const struct textlog *job_stream(const struct sfs_job *j, enum sfs_stream_kind k)
{
	if (!j->progress)
		return NULL;
	return k == SFS_STREAM_STATUS ? sfs_progress_plain(j->progress)
				      : sfs_progress_json(j->progress);
}

static uint64_t job_stream_len(const struct sfs_job *j, enum sfs_stream_kind k)
{
	const struct textlog *t = job_stream(j, k);
	return t ? textlog_len(t) : j->texts_saved ? j->saved_len[k] : 0;
}

/* With with_spec, a spec that is in the job's row only gets a buffer of
 * spec_len + 1 bytes and *ret_read true: the caller fills it without the lock. */
static int info_fill(const struct sfs_job *j, struct sfs_job_info *i, bool with_spec,
		     bool *ret_read)
{
	memset(i, 0, sizeof(*i));
	i->id = j->id;
	i->uid = j->uid;
	i->gid = j->gid;
	i->state = j->state;
	i->created = j->created;
	i->changed = j->changed;
	i->ended = j->ended;
	i->error = sfs_job_error_text(j);
	i->ctl = strdup(j->ctl_last ? j->ctl_last : "");
	i->spec_len = sfs_job_has_spec(j) ? j->spec_len : 0;
	if (sfs_job_has_spec(j) && with_spec) {
		i->spec = malloc(j->spec_len + 1);
		if (i->spec && j->spec_text)
			memcpy(i->spec, j->spec_text, j->spec_len + 1);
		*ret_read = i->spec && !j->spec_text;
	}
	i->outputs = calloc(j->noutputs + 1, sizeof(*i->outputs));
	if (!i->error || !i->ctl || (sfs_job_has_spec(j) && with_spec && !i->spec) || !i->outputs)
		return -ENOMEM;
	for (size_t o = 0; o < j->noutputs; o++) {
		i->outputs[o] = j->outputs[o];
		if (!(i->outputs[o].ref = strdup(j->outputs[o].ref)))
			return -ENOMEM;
		i->noutputs++;
	}
	i->status_len = job_stream_len(j, SFS_STREAM_STATUS);
	i->status_json_len = job_stream_len(j, SFS_STREAM_STATUS_JSON);
	i->has_export = j->spec && j->spec->export_mode != SFS_EXPORT_NONE;
	i->kept = j->kept;
	return 0;
}

static int job_info(struct sfs_solver *s, uint64_t id, struct sfs_job_info *ret, bool with_spec)
{
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	if (j && pending_expired(s, j, sfs_now_ns())) {
		drop_stale_pending(s);
		j = NULL;
	}
	bool read = false;
	int r = j ? info_fill(j, ret, with_spec, &read) : -ENOENT;
	sfs_solver_unlock(s);
	/* a finished job's row is final: its spec is read without the solver lock */
	if (r == 0 && read) {
		size_t n = 0;
		r = history_read_stream(s->cache->db, id, HISTORY_SPEC, 0, ret->spec, ret->spec_len,
					&n);
		if (r == 0 && n != ret->spec_len)
			r = -EIO;
		if (r == 0)
			ret->spec[n] = '\0';
	}
	if (r < 0 && j)
		sfs_job_info_release(ret);
	return r;
}

int sfs_solver_job_info(struct sfs_solver *s, uint64_t id, struct sfs_job_info *ret)
{
	return job_info(s, id, ret, false);
}

int sfs_solver_job_info_spec(struct sfs_solver *s, uint64_t id, struct sfs_job_info *ret)
{
	return job_info(s, id, ret, true);
}

void sfs_job_info_release(struct sfs_job_info *i)
{
	if (!i)
		return;
	free(i->error);
	free(i->ctl);
	free(i->spec);
	for (size_t o = 0; o < i->noutputs; o++)
		free(i->outputs[o].ref);
	free(i->outputs);
	memset(i, 0, sizeof(*i));
}

int sfs_solver_job_read(struct sfs_solver *s, uint64_t id, enum sfs_stream_kind k, uint64_t off,
			size_t size, char **ret_buf, size_t *ret_len, bool *ret_ended)
{
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	if (!j) {
		sfs_solver_unlock(s);
		return -ENOENT;
	}
	const struct textlog *t = job_stream(j, k);
	uint64_t len = job_stream_len(j, k);
	size_t n = off < len ? (len - off < size ? (size_t)(len - off) : size) : 0;
	bool saved = !t && j->texts_saved;
	char *b = malloc(n ? n : 1);
	int r = b ? 0 : -ENOMEM;
	if (r == 0 && t)
		r = textlog_read(t, off, b, n, &n);
	*ret_ended = sfs_job_state_final(j->state);
	sfs_solver_unlock(s);
	/* a finished job's text is in its row: read it without the solver lock */
	if (r == 0 && saved && n)
		r = history_read_stream(
		    s->cache->db, id, k == SFS_STREAM_STATUS ? HISTORY_STATUS : HISTORY_STATUS_JSON,
		    off, b, n, &n);
	if (r < 0) {
		free(b);
		return r;
	}
	*ret_buf = b;
	*ret_len = n;
	return 0;
}

static int copy_infos(const struct sfs_vertex_info *src, size_t n, struct sfs_vertex_info **ret)
{
	struct sfs_vertex_info *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sfs_vertex_info *a = &src[i];
		struct sfs_vertex_info *b = &v[i];
		*b = *a;
		b->name = strdup(a->name);
		b->op = malloc(a->op_len + 1);
		b->why = strdup(a->why ? a->why : "");
		b->log_path = a->log_path ? strdup(a->log_path) : NULL;
		b->inputs = calloc(a->ninputs + 1, sizeof(*b->inputs));
		b->results = calloc(a->noutputs + 1, sizeof(*b->results));
		b->keys = strdup(a->keys ? a->keys : "");
		b->names = strdup(a->names ? a->names : "");
		b->jobs = calloc(a->njobs + 1, sizeof(*b->jobs));
		if (!b->name || !b->op || !b->why || !b->inputs || !b->results || !b->keys ||
		    !b->names || !b->jobs) {
			sfs_vertex_infos_free(v, i + 1);
			return -ENOMEM;
		}
		memcpy(b->op, a->op, a->op_len + 1);
		memcpy(b->inputs, a->inputs, a->ninputs * sizeof(*b->inputs));
		memcpy(b->results, a->results, a->noutputs * sizeof(*b->results));
		memcpy(b->jobs, a->jobs, a->njobs * sizeof(*b->jobs));
	}
	*ret = v;
	return 0;
}

/* Reads and decodes finished job id's vertices from its row (no lock). */
static int read_vinfo(struct sfs_solver *s, uint64_t id, uint64_t len, struct sfs_vertex_info **ret,
		      size_t *ret_n)
{
	if (len >= SIZE_MAX)
		return -EFBIG;
	char *text = malloc((size_t)len + 1);
	size_t n = 0;
	if (!text)
		return -ENOMEM;
	int r = history_read_stream(s->cache->db, id, HISTORY_VERTICES, 0, text, (size_t)len, &n);
	if (r == 0)
		r = sfs_vinfo_decode(text, n, ret, ret_n);
	free(text);
	if (r == -EINVAL) { /* a damaged row shows no vertices rather than an error */
		sfs_log(SFS_LOG_WARN, "job %llu: its saved vertices are damaged",
			(unsigned long long)id);
		*ret = NULL;
		*ret_n = 0;
		r = 0;
	}
	if (r < 0)
		sfs_log(SFS_LOG_ERR, "job %llu: reading its vertices from the database: %s",
			(unsigned long long)id, strerror(-r));
	return r;
}

/* Gives finished job j the vertex list v (lock held); the last SFS_VINFO_KEEP
 * jobs given one keep theirs, an older one's goes. */
static void vinfo_install(struct sfs_solver *s, struct sfs_job *j, struct sfs_vertex_info *v,
			  size_t n)
{
	SFS_ASSERT_LOCKED(s);
	if (j->vinfo || !v) { /* another reader was first, or nothing to show */
		sfs_vertex_infos_free(v, n);
		if (!v)
			j->vertices_len = 0;
		return;
	}
	j->vinfo = v;
	j->nvinfo = n;
	uint64_t *slot = &s->vinfo_kept[s->vinfo_next];
	struct sfs_job *old = *slot && *slot != j->id ? job_get(s, *slot) : NULL;
	if (old && old->texts_saved)
		sfs_job_vinfo_free(old);
	*slot = j->id;
	s->vinfo_next = (s->vinfo_next + 1) % SFS_VINFO_KEEP;
}

/* Whether finished job j's vertex list is still to be read (lock held). */
static bool vinfo_missing(const struct sfs_job *j)
{
	SFS_ASSERT_LOCKED(j->s);
	return !j->vs && !j->vinfo && j->texts_saved && j->vertices_len;
}

/*
 * A finished job's vertices are read from its row at the first look, without
 * the solver lock (a 100,000-vertex job's JSON takes a while): no lock held.
 */
static int job_vinfo_prefetch(struct sfs_solver *s, uint64_t id)
{
	SFS_ASSERT_UNLOCKED(s);
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	uint64_t len = j && vinfo_missing(j) ? j->vertices_len : 0;
	sfs_solver_unlock(s);
	if (!len)
		return 0;
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	int r = read_vinfo(s, id, len, &v, &n);
	sfs_solver_lock(s);
	j = job_get(s, id);
	if (r == 0 && j)
		vinfo_install(s, j, v, n);
	else
		sfs_vertex_infos_free(v, n);
	sfs_solver_unlock(s);
	return r;
}

/* The same with the lock held, for the rare list evicted again meanwhile. */
static int job_vinfo_load(struct sfs_solver *s, struct sfs_job *j)
{
	SFS_ASSERT_LOCKED(s);
	if (!vinfo_missing(j))
		return 0;
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	int r = read_vinfo(s, j->id, j->vertices_len, &v, &n);
	if (r == 0)
		vinfo_install(s, j, v, n);
	return r;
}

int sfs_solver_job_vertices(struct sfs_solver *s, uint64_t id, struct sfs_vertex_info **ret,
			    size_t *ret_n)
{
	int r = job_vinfo_prefetch(s, id);
	if (r < 0)
		return r;
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	r = -ENOENT;
	if (j && j->vs) {
		r = sfs_job_snapshot_vertices(j, ret, ret_n);
	} else if (j && (r = job_vinfo_load(s, j)) == 0) {
		r = copy_infos(j->vinfo, j->nvinfo, ret);
		if (r == 0)
			*ret_n = j->nvinfo;
	}
	sfs_solver_unlock(s);
	return r;
}

static int names_add(struct sfs_job_name **v, size_t *n, size_t *cap, const char *key, size_t len,
		     const char *digest)
{
	if (sfs_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
		return -ENOMEM;
	struct sfs_job_name *e = &(*v)[*n];
	if (!(e->key = strndup(key, len)))
		return -ENOMEM;
	sfs_copy_str(e->digest, sizeof(e->digest), digest);
	(*n)++;
	return 0;
}

/* The names of job j (lock held): a live job's from its spec, a finished
 * one's from its saved vertices. */
static int job_names_locked(struct sfs_solver *s, struct sfs_job *j, struct sfs_job_name **v,
			    size_t *n, size_t *cap)
{
	int r = 0;
	if (j->vs) {
		for (size_t i = 0; r == 0 && i < j->spec->n; i++) {
			const struct sfs_spec_vertex *sv = &j->spec->v[i];
			r = names_add(v, n, cap, sv->key, strlen(sv->key),
				      j->vs[i] ? j->vs[i]->digest : sv->digest);
		}
		return r;
	}
	r = job_vinfo_load(s, j);
	for (size_t i = 0; r == 0 && i < j->nvinfo; i++) {
		for (const char *p = j->vinfo[i].names; r == 0 && p && *p;) {
			const char *nl = strchrnul(p, '\n');
			if (nl > p)
				r = names_add(v, n, cap, p, (size_t)(nl - p), j->vinfo[i].digest);
			p = *nl ? nl + 1 : nl;
		}
	}
	return r;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct sfs_job_name *)a)->key, ((const struct sfs_job_name *)b)->key);
}

int sfs_solver_job_names(struct sfs_solver *s, uint64_t id, struct sfs_job_name **ret,
			 size_t *ret_n)
{
	struct sfs_job_name *v = NULL;
	size_t n = 0, cap = 0;
	int r = job_vinfo_prefetch(s, id);
	if (r < 0)
		return r;
	sfs_solver_lock(s);
	struct sfs_job *j = job_get(s, id);
	r = j ? job_names_locked(s, j, &v, &n, &cap) : -ENOENT;
	sfs_solver_unlock(s);
	if (r == 0 && !v && !(v = calloc(1, sizeof(*v))))
		r = -ENOMEM;
	if (r < 0) {
		sfs_job_names_free(v, n);
		return r;
	}
	qsort(v, n, sizeof(*v), by_key);
	*ret = v;
	*ret_n = n;
	return 0;
}

void sfs_job_names_free(struct sfs_job_name *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].key);
	free(v);
}

/* Whether vs belongs to job j: its own, or inside a sub-build of one of its
 * vertices (up through the parents, as deep as sub-builds nest). */
static bool vs_of_job(const struct vstate *vs, const struct sfs_job *j, int depth)
{
	if (sfs_vstate_has_job(vs, j))
		return true;
	for (size_t p = 0; depth <= SFS_MAX_SUBBUILD_DEPTH && p < sfs_vstate_nparents(vs); p++)
		if (vs_of_job(vs->sub->parents[p], j, depth + 1))
			return true;
	return false;
}

/* A live job's vertex by digest: the shared graph's, when the job uses it, or
 * the job's ignore-cache variant. */
static struct vstate *job_vstate(struct sfs_solver *s, struct sfs_job *j, const char *digest)
{
	struct vstate *vs = strmap_get(&s->actives, digest);
	if (vs && vs_of_job(vs, j, 0))
		return vs;
	for (size_t i = 0; j->vs && i < j->spec->n; i++) /* an ignore-cache variant */
		if (j->vs[i] && strcmp(j->vs[i]->digest, digest) == 0)
			return j->vs[i];
	return NULL;
}

/* A finished job's vertex by digest, through an index made at the first lookup. */
static const struct sfs_vertex_info *job_vinfo(struct sfs_job *j, const char *digest)
{
	if (!j->vinfo_by.len)
		for (size_t i = 0; i < j->nvinfo; i++)
			strmap_put(&j->vinfo_by, j->vinfo[i].digest, (void *)(uintptr_t)(i + 1),
				   NULL);
	uintptr_t k = (uintptr_t)strmap_get(&j->vinfo_by, digest);
	return k ? &j->vinfo[k - 1] : NULL;
}

int sfs_solver_vertex(struct sfs_solver *s, uint64_t job, const char *hex,
		      struct sfs_vertex_info *ret)
{
	char digest[SFS_DIGEST_SIZE];
	snprintf(digest, sizeof(digest), "sha256:%s", hex);
	int r = job ? job_vinfo_prefetch(s, job) : 0;
	if (r < 0)
		return r;
	r = -ENOENT;
	sfs_solver_lock(s);
	struct sfs_job *j = job ? job_get(s, job) : NULL;
	if (!job) {
		struct vstate *vs = strmap_get(&s->actives, digest);
		if (vs)
			r = sfs_vstate_snapshot(vs, ret);
	} else if (j && j->vs) {
		struct vstate *vs = job_vstate(s, j, digest);
		if (vs)
			r = sfs_vstate_snapshot(vs, ret);
	} else if (j && (r = job_vinfo_load(s, j)) == 0) {
		r = -ENOENT;
		const struct sfs_vertex_info *vi = job_vinfo(j, digest);
		struct sfs_vertex_info *copy = NULL;
		if (vi && (r = copy_infos(vi, 1, &copy)) == 0) {
			*ret = copy[0];
			free(copy);
		}
	}
	sfs_solver_unlock(s);
	return r;
}

int sfs_solver_vertices(struct sfs_solver *s, struct sfs_vertex_info **ret, size_t *ret_n)
{
	sfs_solver_lock(s);
	size_t n = s->actives.len, k = 0;
	struct sfs_vertex_info *v = calloc(n ? n : 1, sizeof(*v));
	const char *key;
	void *val;
	int r = v ? 0 : -ENOMEM;
	for (size_t it = 0; r == 0 && strmap_next(&s->actives, &it, &key, &val);) {
		r = sfs_vstate_snapshot(val, &v[k++]);
	}
	sfs_solver_unlock(s);
	if (r < 0) {
		sfs_vertex_infos_free(v, k);
		return r;
	}
	*ret = v;
	*ret_n = k;
	return 0;
}

char *sfs_solver_job_export(struct sfs_solver *s, uint64_t id)
{
	struct stat st;
	char *dir = sfs_job_export_dir(s, id);
	if (dir && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)))
		dir = (free(dir), NULL);
	return dir;
}

int sfs_solver_job_why(struct sfs_solver *s, uint64_t id, char **ret, size_t *ret_len)
{
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	int r = sfs_solver_job_vertices(s, id, &v, &n);
	if (r < 0)
		return r;
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "[%s] %s\n", v[i].name, sfs_vertex_why(&v[i]));
	sfs_vertex_infos_free(v, n);
	if (sb.oom) {
		strbuf_release(&sb);
		return -ENOMEM;
	}
	*ret = strbuf_detach(&sb, ret_len);
	return 0;
}

void sfs_solver_get_stats(struct sfs_solver *s, struct sfs_solver_stats *ret)
{
	sfs_solver_lock(s);
	*ret = s->stats;
	sfs_solver_unlock(s);
}

const char *sfs_vertex_why(const struct sfs_vertex_info *v)
{
	static const char *const by_state[] = {
	    [SFS_VERTEX_PENDING] = "not started yet",
	    [SFS_VERTEX_RUNNING] = "running",
	    /* a finished job's rows before the states were settled (job.c) */
	    [SFS_VERTEX_CACHED] = SFS_WHY_NOT_NEEDED,
	    [SFS_VERTEX_DONE] = "done",
	    [SFS_VERTEX_FAILED] = "failed",
	    [SFS_VERTEX_CANCELLED] = "cancelled",
	};
	return v->why && v->why[0] ? v->why : by_state[v->state];
}

void sfs_vertex_info_release(struct sfs_vertex_info *v)
{
	if (!v)
		return;
	free(v->name);
	free(v->op);
	free(v->log_path);
	free(v->inputs);
	free(v->results);
	free(v->why);
	free(v->keys);
	free(v->names);
	free(v->jobs);
	memset(v, 0, sizeof(*v));
}

void sfs_vertex_infos_free(struct sfs_vertex_info *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		sfs_vertex_info_release(&v[i]);
	free(v);
}
