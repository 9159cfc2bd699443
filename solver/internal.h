/*
 * internal.h — the solver's shared structures (not for fs/).  Section numbers (§)
 * are those of docs/semantics.md.
 *
 * Locking: one mutex, sfs_solver.lock, guards the whole shared graph (actives,
 * every vstate and edge field not marked otherwise), the job table and every
 * job field, and the progress of every job.  Nothing slow happens under it:
 * cache lookups, loads and op calls run as tasks on worker threads, which take
 * the lock only to record what they found.  Callbacks to fs/ (notify) are made
 * after the lock is dropped (sfs_solver_flush_notify).  The lock is taken
 * with sfs_solver_lock/unlock, and functions that need it (or must not hold
 * it) say so with SFS_ASSERT_LOCKED/UNLOCKED.
 *
 * State: vstate.phase, edge.phase and sfs_job.state change only through their
 * setters, which check each transition against a table (state.c); a vertex's
 * rounds before an exec are enum sfs_round (rounds.c).
 *
 * Lifetimes: a vstate is reference counted.  The actives map holds one
 * reference while any job uses the vertex; each queued or running task, each
 * waiter entry and each parent's inputs[] hold one more.  A vstate removed from
 * actives is "released": its op is cancelled if it still runs, and it is freed
 * when its last reference goes.
 */
#ifndef SFS_SOLVER_INTERNAL_H
#define SFS_SOLVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "combined.h"
#include "dgstmap.h"
#include "strbuf.h"
#include "strmap.h"
#include "progress.h"
#include "solver.h"

struct vstate;
struct sfs_job;

/* A failure, shared by every edge and job it reaches. */
struct sfs_failure {
	int refs;
	int err;		      /* -errno; -ECANCELED for cancellation */
	char digest[SFS_DIGEST_SIZE]; /* the vertex that failed */
	char *msg;
};

/* Who waits for an edge (or for a vertex's keys). */
enum waiter_kind {
	W_JOB,	    /* job output `out` */
	W_INPUT,    /* vertex vs needs this edge as an input (or its keys) */
	W_SUB,	    /* build vertex vs waits for its sub-build's output */
	W_MERGE,    /* edge `out` of vs was merged into this edge (§1.7) */
	W_DISCOVER, /* vertex vs waits for the keys this edge can find without loading */
};

struct waiter {
	enum waiter_kind kind;
	struct sfs_job *job; /* W_JOB; holds a job reference */
	size_t out;
	struct vstate *vs; /* the others; holds a reference */
};

struct waiters {
	size_t n, cap;
	struct waiter *w;
};

enum edge_phase {
	EDGE_IDLE,
	EDGE_LOADING,
	EDGE_WAIT_EXEC,
	EDGE_MERGED, /* waits for the edge it was merged into */
	EDGE_DONE,
	EDGE_FAILED
};

/* A set of cache keys (references). */
struct keyset {
	struct cache_key **k;
	size_t n;
};

/* A merge signature an edge holds in the edge index, which borrows d as its key. */
struct edge_sig {
	struct edge_sig *next;
	struct sfs_dgst d;
};

/* One output of an active vertex (BuildKit's edge). */
struct edge {
	/* the small fields first, together: no padding between them (a graph has
	 * an edge a vertex, 100,000s of them) */
	struct vstate *vs; /* owner, not a reference */
	int output;
	enum edge_phase phase; /* set with sfs_edge_set_phase only */
	bool want;	       /* someone asked for complete */
	/* some key of keys or late had a loadable record when found: LOAD fetches
	 * the records of those keys then (an edge keeps none: a cached graph has
	 * records under every vertex and loads one) */
	bool loadable;
	bool cached; /* the result came from the cache */
	bool held;   /* result is held (cache/holds.h) until the edge is released */
	/* BuildKit's cache-slow state: a user asked what keys this edge can find
	 * through its inputs' content without being loaded (dwaiters wait) */
	bool discovering, discovered;
	bool merge_asked; /* our W_MERGE waiter is on merged_into */
	char result[SFS_DIGEST_SIZE];
	struct cache_key **keys; /* keys found by definition (advertised to parents) */
	size_t nkeys;
	struct keyset late;	/* keys found later through content keys (not advertised) */
	struct keyset *matches; /* per input: keys of this edge reachable from that input */
	char **bad;		/* records whose load failed: never tried again */
	size_t nbad;
	struct cache_key **result_keys; /* keys the result was saved or loaded under */
	size_t nresult_keys;
	struct sfs_failure *failure;
	struct waiters waiters;
	struct waiters dwaiters;   /* wait for discovering (above) */
	struct edge *merged_into;  /* while EDGE_MERGED */
	struct vstate *merge_hold; /* reference on merged_into's vertex, until unmerged or freed */
	struct edge_sig *sigs;	   /* our entries in the edge index, a list (edgeindex.c) */
};

enum vstate_phase {
	VSTATE_NEW,	    /* nothing asked yet */
	VSTATE_WAIT_KEYS,   /* waiting for the inputs' keys */
	VSTATE_KEYING,	    /* cache maps and queries running */
	VSTATE_KEYED,	    /* every output knows its keys and records */
	VSTATE_WAIT_INPUTS, /* exec needed: waiting for this round's inputs to complete */
	VSTATE_SLOW,	    /* content keys of this round's inputs being computed and queried */
	VSTATE_EXEC,	    /* exec task queued or running */
	VSTATE_EXECUTED,    /* results of every output known */
	VSTATE_FAILED
};

/* The rounds of a vertex with no record (docs/semantics.md §1.5 step 7, rounds.c). */
enum sfs_round {
	SFS_ROUND_NONE,	    /* not in the rounds */
	SFS_ROUND_DISCOVER, /* inputs asked what keys they find through content */
	SFS_ROUND_HASH,	    /* inputs with a content function completed and hashed */
	SFS_ROUND_ALL,	    /* every input completed, then the exec */
};

/* From byte off of a vertex's log file on, output came at time t on stream
 * (1 stdout, 2 stderr), up to the next mark (vlog.c). */
struct sfs_vlog_mark {
	uint64_t off;
	int64_t t;
	int stream;
};
#define SFS_VLOG_MARKS 1024

/* What a vertex's op printed (vlog.c): its log file and the marks of its bytes. */
struct vstate_log {
	char *path;		     /* NULL until the file could be made */
	uint64_t bytes;		     /* of op output taken, up to log_limit */
	uint64_t file_bytes;	     /* in the file (the clip notice included) */
	struct sfs_vlog_mark *marks; /* when and on which stream the file's bytes came */
	size_t nmarks, capmarks;
};
void sfs_vstate_log_free(struct vstate_log *l);

/*
 * Sub-builds (Builder.Build, docs/semantics.md §1.10): a build vertex holds
 * references to the vertices of its inner spec (children); they point back
 * without a reference (parents) and live while a job or a parent needs them.
 * Allocated by sfs_vstate_sub when a vertex first takes part in one.
 */
struct vstate_sub {
	struct vstate **parents;
	size_t nparents, cap_parents;
	struct vstate **children;
	size_t nchildren, cap_children;
	struct sfs_spec *spec; /* the inner spec of a build vertex */
	char *result;	       /* its output's result (malloc'd when known) */
	struct keyset keys;    /* the keys of that output: exported with the job */
};

struct vstate {
	/* the small fields first, together: no padding between them (a graph has
	 * 100,000s of vertices) */
	int refs;
	enum vstate_phase phase;     /* set with sfs_vstate_set_phase only */
	enum sfs_round round;	     /* set with sfs_vstate_set_round only (rounds.c) */
	int depth;		     /* nesting of sub-builds, 0 for a job's own */
	enum sfs_vertex_state state; /* what users see (vlog.c, with the fields at the end) */
	int log_fd;
	uid_t uid; /* the credentials of the job that loaded it (its ops' sfs_op_ctx) */
	gid_t gid;
	bool released; /* removed from actives */
	bool ignore_cache;
	bool aliased; /* a merged root's TASK_ALIAS is queued */
	bool maps_done;
	bool progress_cached; /* what the jobs were told: cached (and progress_error) */
	bool log_clipped;     /* output past log_limit was dropped (and said so) */
	struct sfs_solver *s;
	/* v->digest, or the ignore-cache digest in nocache_digest: no copy a vertex */
	const char *digest;
	struct sfs_spec *spec; /* reference; owns v */
	const struct sfs_spec_vertex *v;
	struct sfs_op *op;
	/* what cancel tells the op's calls; each call's sfs_op_ctx is made on the
	 * worker's stack (sfs_vstate_op_ctx), not kept a vertex */
	struct sfs_op_signal sig;
	struct cache_combined cc; /* the local cache and the vertex's cache_from sources */

	struct vstate **inputs;	    /* references, v->ninputs */
	size_t inputs_pending;	    /* inputs not yet keyed / complete, by phase */
	struct cache_key **slow;    /* per input: content ("slow") key once computed */
	struct waiters key_waiters; /* vertices waiting for our keys */

	struct sfs_cache_map *maps; /* fetched cache maps */
	size_t nmaps;

	size_t nedges;
	struct edge *edges; /* one per output */
	struct sfs_failure *failure;

	/* jobs that reference this vertex */
	struct sfs_job **jobs;
	size_t njobs;
	/* a build vertex's sub-build or the build vertices it is part of; NULL for
	 * the others (most: none of that is kept a vertex) */
	struct vstate_sub *sub;

	/* what users see (vlog.c; state and the flags are at the start) */
	int64_t started, completed; /* of the last start and completion told to the jobs */
	char *progress_error;
	struct vstate_log *log; /* NULL until the op's first output (most print nothing) */
	char *why;
	/* the actives key of a vertex keyed under sha256("<digest>-ignorecache")
	 * (graph.c); no room is allocated for it otherwise */
	char nocache_digest[];
};

struct sfs_job {
	int refs;
	struct sfs_solver *s;
	uint64_t id;
	uid_t uid;
	gid_t gid;
	enum sfs_job_state state; /* set with sfs_job_set_state only */
	int64_t created, changed, ended;
	char *error;
	/* what was submitted, while the job runs; once its row is final (texts_saved)
	 * the row holds it and spec_in_row says so (history_read_stream) */
	char *spec_text;
	size_t spec_len;
	bool spec_in_row;
	struct sfs_spec *spec;
	struct vstate **vs; /* per spec vertex, references while running */
	size_t outputs_pending;
	struct sfs_job_output *outputs;
	size_t noutputs;
	/* The status texts: progress (spilled to unlinked files) while the job
	 * lives; once it ended and is saved, the database row (history_read_stream)
	 * and progress is gone. */
	struct sfs_progress *progress;
	bool texts_saved;
	uint64_t saved_len[2]; /* by enum sfs_stream_kind */
	uint64_t vertices_len; /* of the vertices JSON in the row */
	/* A finished job's vertices: written at its end as JSON straight from the
	 * vertex states (ended_vertices, until saved), then read back from the row
	 * when someone looks (vinfo; the solver keeps SFS_VINFO_KEEP jobs' loaded). */
	struct textlog *ended_vertices;
	struct sfs_vertex_info *vinfo;
	size_t nvinfo;
	bool in_graph; /* loaded into the shared graph, not yet discarded */
	/* vertices of other jobs this job joined because one of its edges merged
	 * into theirs (references; left at discard like its own) */
	struct vstate **extra;
	size_t nextra, cap_extra;
	bool exported; /* its cache export is written */
	bool rejected; /* pending, and its last spec was refused (error says why) */
	bool kept;     /* jobs/N/ctl keep: its outputs are GC roots (cache/pins.h) */
	/* jobs/N/ctl: the last command's outcome ("ok: cancel", "error: ..."), and
	 * the refused ones (the newest SFS_JOB_CTL_ERRORS, "ctl: ..." lines), which
	 * jobs/N/error shows after the job's own error (sfs_job_error_text) */
	char *ctl_last;
	struct strbuf ctl_errors;
	unsigned nctl_errors;
	struct strmap vinfo_by; /* digest -> index + 1 into vinfo, built at first lookup */
};

struct task;

/* Threads that parse submitted specs: one user's 16 MiB spec (about a second)
 * does not hold up everyone else's. */
#define SFS_PARSERS 2

/* Finished jobs whose vertex list is kept loaded from the database at once. */
#define SFS_VINFO_KEEP 8

struct sfs_solver {
	pthread_mutex_t lock; /* taken and dropped through sfs_solver_lock/unlock only */
	/* &sfs_lock_tag of the thread holding lock, when NDEBUG is not defined (the
	 * field is there either way: one layout whatever a file's NDEBUG) */
	_Atomic(const void *) lock_owner;
	struct sfs_cache *cache;
	struct sfs_solver_opts o;
	char *mountpoint;
	struct registry_opts *registry; /* the mount's, for image ops (sfs_op_ctx.registry) */
	char *spill_dir;		/* STATE_DIR/tmp: live jobs' status texts, unlinked files */
	uint64_t vinfo_kept[SFS_VINFO_KEEP]; /* finished jobs whose vinfo is loaded, a ring */
	size_t vinfo_next;
	struct strmap actives;	       /* digest -> vstate */
	size_t nocache_actives;	       /* of them keyed under an ignore-cache digest */
	struct dgstmap edge_index;     /* merge signature -> edge (§1.7), active edges only */
	struct strmap sources;	       /* cache_from path -> its cache manager (sources.c) */
	struct cache_combined main_cc; /* the local cache alone */
	struct strmap jobs;	       /* decimal id -> sfs_job (live and history) */
	uint64_t *job_ids;	       /* ascending */
	size_t njob_ids, cap_job_ids;
	uint64_t latest;
	uint64_t last_rejected; /* the job whose spec was refused last (jobs/last-rejected) */
	unsigned running, pending;

	/* the parser threads (parser.c) and their queue */
	pthread_t parsers[SFS_PARSERS];
	size_t nparsers;
	uint64_t parsing[SFS_PARSERS]; /* the job each parser has, 0 for none */
	bool parse_stopping;
	pthread_cond_t parse_cond;
	struct parse_req *parse_head, *parse_tail;

	/* workers: each queue wakes one of its own threads per task */
	pthread_cond_t light_cond, heavy_cond;
	struct task *light_head, *light_tail;
	struct task *heavy_head, *heavy_tail;
	pthread_t *threads;
	size_t nthreads;
	bool stopping;

	struct sfs_solver_stats stats; /* guarded by lock */
	/* results saved so far (finish_exec): a KEYS task whose query found no
	 * record queries again when one was saved meanwhile (sfs_run_keys) */
	atomic_uint_fast64_t saves;

	/* work deferred so that chains are walked by a loop, not by recursion:
	 * failures spreading up (sfs_vstate_fail) and requests going down
	 * (rounds of inputs); drained by the outermost call (sfs_defer) */
	struct sfs_deferred {
		int kind;	       /* SFS_DEFER_* */
		struct vstate *vs;     /* reference */
		struct sfs_failure *f; /* reference or NULL */
	} * deferred;
	size_t ndeferred, capdeferred, deferred_head;
	bool draining;

	/* deleted exports, moved into tmp/, removed after the lock is dropped */
	char **trash;
	size_t ntrash;

	/* jobs whose files changed, told to fs/ after the lock is dropped */
	uint64_t *dirty;
	size_t ndirty, cap_dirty;
	unsigned ended_unflushed; /* jobs ended since the last o.job_ended call */
};

/*
 * state.c: the solver lock, checked.  Every lock, unlock and condition wait on
 * sfs_solver.lock goes through these, so that code whose comment says "lock
 * held" (or "no lock held") can assert it: sfs_lock_held(s) is true when the
 * calling thread holds s->lock.  The owner is recorded only when NDEBUG is not
 * defined (the debug, debugoptimized and sanitizer builds: meson's b_ndebug
 * defaults to false); otherwise these are the bare pthread calls and the
 * checks compile to nothing.
 */
#ifndef NDEBUG
extern _Thread_local const char sfs_lock_tag; /* its address names the thread */
#endif

/* GCC 12 with -fsanitize=address says the store below writes "into a region
 * of size 0" where sfs_solver_vertex inlines it (a false positive: s is a
 * whole struct sfs_solver there). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
static inline void sfs_solver_lock(struct sfs_solver *s)
{
	pthread_mutex_lock(&s->lock);
#ifndef NDEBUG
	atomic_store_explicit(&s->lock_owner, &sfs_lock_tag, memory_order_relaxed);
#endif
}
#pragma GCC diagnostic pop

static inline void sfs_solver_unlock(struct sfs_solver *s)
{
#ifndef NDEBUG
	atomic_store_explicit(&s->lock_owner, NULL, memory_order_relaxed);
#endif
	pthread_mutex_unlock(&s->lock);
}

/* pthread_cond_wait on s->lock, which the caller holds. */
static inline void sfs_solver_wait(struct sfs_solver *s, pthread_cond_t *cond)
{
#ifndef NDEBUG
	atomic_store_explicit(&s->lock_owner, NULL, memory_order_relaxed);
#endif
	pthread_cond_wait(cond, &s->lock);
#ifndef NDEBUG
	atomic_store_explicit(&s->lock_owner, &sfs_lock_tag, memory_order_relaxed);
#endif
}

#ifndef NDEBUG
/* Only the holder writes its own tag, and clears it before it unlocks: a
 * thread reads its own tag back exactly while it holds the lock. */
static inline bool sfs_lock_held(struct sfs_solver *s)
{
	return atomic_load_explicit(&s->lock_owner, memory_order_relaxed) == &sfs_lock_tag;
}
void sfs_lock_check_failed(const char *want, const char *func, const char *file, int line);
#define SFS_ASSERT_LOCKED(s)                                                                       \
	((void)(sfs_lock_held(s) ||                                                                \
		(sfs_lock_check_failed("the solver lock held", __func__, __FILE__, __LINE__), 0)))
#define SFS_ASSERT_UNLOCKED(s)                                                                     \
	((void)(!sfs_lock_held(s) ||                                                               \
		(sfs_lock_check_failed("no solver lock held", __func__, __FILE__, __LINE__), 0)))
#else
#define SFS_ASSERT_LOCKED(s) ((void)sizeof(s))
#define SFS_ASSERT_UNLOCKED(s) ((void)sizeof(s))
#endif

/* state.c: the only writers of vstate.phase, vstate.round, edge.phase and
 * sfs_job.state (lock held); without NDEBUG each checks its transition against
 * its table and aborts on one that is not there */
void sfs_vstate_set_phase(struct vstate *vs, enum vstate_phase to);
void sfs_vstate_set_round(struct vstate *vs, enum sfs_round to);
void sfs_edge_set_phase(struct edge *e, enum edge_phase to);
void sfs_job_set_state(struct sfs_job *j, enum sfs_job_state to);

/* vs->sub, allocated on first use (graph.c); NULL without memory. */
struct vstate_sub *sfs_vstate_sub(struct vstate *vs);

static inline size_t sfs_vstate_nparents(const struct vstate *vs)
{
	return vs->sub ? vs->sub->nparents : 0;
}

static inline size_t sfs_vstate_nchildren(const struct vstate *vs)
{
	return vs->sub ? vs->sub->nchildren : 0;
}

/* The edge of input i of vs. */
static inline struct edge *sfs_input_edge(struct vstate *vs, size_t i)
{
	return &vs->inputs[i]->edges[vs->v->inputs[i].ref.output];
}

/* graph.c: the shared graph, and what a vertex tells its jobs */
int sfs_graph_load(struct sfs_solver *s, struct sfs_job *j, char **ret_msg);
/* for sub-builds (subbuild.c) */
int sfs_graph_load_sub(struct sfs_solver *s, struct vstate *parent, struct sfs_spec *sp,
		       struct vstate ***ret, char **ret_msg);
void sfs_graph_join(struct sfs_solver *s, struct vstate *from, struct vstate *target);
void sfs_graph_discard(struct sfs_solver *s, struct sfs_job *j);
struct vstate *sfs_vstate_ref(struct vstate *vs);
void sfs_vstate_unref(struct vstate *vs);
/* The context of one op call of vs: the mount's settings, vs's credentials
 * and vs's signal (valid while vs is). */
void sfs_vstate_op_ctx(struct vstate *vs, struct sfs_op_ctx *ret);
int sfs_waiters_add(struct waiters *w, enum waiter_kind kind, struct sfs_job *job, size_t out,
		    struct vstate *vs);
void sfs_waiters_release(struct waiters *w);
/* Appends vs (not a reference) to the array *v of *n vertices with room for
 * *cap, grown by sfs_grow; 0 or -ENOMEM. */
int sfs_vstates_push(struct vstate ***v, size_t *n, size_t *cap, struct vstate *vs);
/* All jobs a vertex reports to: its own and, through sub-build parents, theirs. */
bool sfs_vstate_has_job(const struct vstate *vs, const struct sfs_job *j);
size_t sfs_vstate_jobs(struct vstate *vs, struct sfs_job **out, size_t max);
#define SFS_MAX_VSTATE_JOBS 256

/* vlog.c: progress and log fan-out to every job of a vertex (lock held), and
 * the replay of what a vertex told its jobs so far to one that just joined */
void sfs_vstate_progress_started(struct vstate *vs, bool cached);
void sfs_vstate_progress_completed(struct vstate *vs, bool cached, const char *err);
/* The op's output callback (struct sfs_op_ctx.log, arg the vstate): takes the lock. */
void sfs_vstate_log(void *arg, int stream, const char *data, size_t len);
/* A transfer's progress on the vertex, for every job it belongs to (op.h's status). */
void sfs_vstate_status(void *arg, const char *id, uint64_t current, uint64_t total, bool done);
/* Tells job j (which announced vs) its start, its log and its completion so far. */
void sfs_vstate_replay(struct vstate *vs, struct sfs_job *j);

/* scheduler.c: the task queues and workers */
enum task_kind {
	TASK_KEYS,
	TASK_LOAD,
	TASK_SLOW,
	TASK_EXEC,
	TASK_FINISH,
	TASK_EXPORT, /* a job's */
	TASK_START,  /* a job's: sources, then the graph */
	TASK_TRASH,  /* the solver's: remove deleted exports */
	TASK_ALIAS,  /* a merged root's result saved under its own cache maps' keys */
};
int sfs_sched_start(struct sfs_solver *s);
void sfs_sched_stop(struct sfs_solver *s);
void sfs_queue_task(struct sfs_solver *s, enum task_kind kind, struct vstate *vs, struct edge *e);
void sfs_queue_job_task(struct sfs_solver *s, enum task_kind kind, struct sfs_job *j);
/* A task that empties the trash of deleted exports (sfs_solver_empty_trash). */
void sfs_queue_trash_task(struct sfs_solver *s);

/* parser.c */
int sfs_parser_start(struct sfs_solver *s);
void sfs_parser_stop(struct sfs_solver *s);

/* job.c: a job's life in the graph */
int sfs_job_start(struct sfs_solver *s, struct sfs_job *j, char **ret_msg);
void sfs_run_start(struct sfs_solver *s, struct sfs_job *j);
int sfs_job_start_graph(struct sfs_solver *s, struct sfs_job *j, char **ret_msg);
bool *sfs_spec_reachable(const struct sfs_spec *sp, const struct sfs_ref *outs, size_t n);
int sfs_job_save(struct sfs_solver *s, struct sfs_job *j);
int sfs_job_snapshot_vertices(struct sfs_job *j, struct sfs_vertex_info **ret, size_t *ret_n);
int sfs_job_walk_vertices(struct sfs_job *j, int (*fn)(void *arg, struct vstate *vs), void *arg);
void sfs_job_vinfo_free(struct sfs_job *j);
int sfs_vstate_snapshot(struct vstate *vs, struct sfs_vertex_info *vi);
struct sfs_job *sfs_job_ref(struct sfs_job *j);
void sfs_job_unref(struct sfs_job *j);
void sfs_job_output_done(struct sfs_solver *s, struct sfs_job *j, size_t out, struct edge *e);
void sfs_job_end(struct sfs_solver *s, struct sfs_job *j, enum sfs_job_state st, const char *err);
void sfs_job_mark_dirty(struct sfs_solver *s, struct sfs_job *j);
const char *sfs_job_vertex_key(struct sfs_job *j, const char *digest);
/* A spec was accepted (in memory or in the job's row). */
static inline bool sfs_job_has_spec(const struct sfs_job *j)
{
	return j->spec_text || j->spec_in_row;
}
/* The text of jobs/N/error: the job's error, then its refused ctl commands;
 * malloc'd, NULL without memory. */
char *sfs_job_error_text(const struct sfs_job *j);
#define SFS_JOB_CTL_ERRORS 16

/* sources.c: cache_from */
int sfs_job_read_sources(struct sfs_solver *s, struct sfs_job *j, char **ret_msg);
/* The registry client options of the mount (progress and cancellation unset). */
struct registry_opts;
void sfs_solver_registry_opts(const struct sfs_solver *s, struct registry_opts *ret);
int sfs_vstate_add_sources(struct sfs_solver *s, struct vstate *vs, char *const *paths);
int sfs_vstate_inherit_sources(struct vstate *vs, const struct vstate *parent);
void sfs_sources_free(struct sfs_solver *s);

/* jobexport.c */
void sfs_job_outputs_built(struct sfs_solver *s, struct sfs_job *j);
void sfs_run_export(struct sfs_solver *s, struct sfs_job *j);
char *sfs_job_export_dir(struct sfs_solver *s, uint64_t id);
/* At open, after the history is loaded: removes from STATE_DIR/exports what a
 * killed daemon left, a half-written export (N.tmp) or the export of a job
 * that is not done (interrupted after the export was renamed in place). */
int sfs_job_exports_sweep(struct sfs_solver *s);

/* edge.c: who waits for an edge; results and failures reaching them */
struct sfs_failure *sfs_failure_new(int err, const char *digest, const char *msg);
struct sfs_failure *sfs_failure_ref(struct sfs_failure *f);
struct sfs_failure *sfs_failure_unref(struct sfs_failure *f);
enum { SFS_DEFER_FAIL, SFS_DEFER_ROUNDS };
void sfs_defer(struct sfs_solver *s, int kind, struct vstate *vs, struct sfs_failure *f);
void sfs_vstate_fail(struct sfs_solver *s, struct vstate *vs, struct sfs_failure *f);
void sfs_vstate_request_keys(struct sfs_solver *s, struct vstate *vs);
void sfs_vstate_cancel(struct vstate *vs);
void sfs_edge_request(struct sfs_solver *s, struct edge *e, struct sfs_job *job, size_t out,
		      struct vstate *parent);
void sfs_edge_request_sub(struct sfs_solver *s, struct edge *e, struct vstate *build);
void sfs_edge_request_merged(struct sfs_solver *s, struct edge *e);
void sfs_edge_proceed(struct sfs_solver *s, struct edge *e);
void sfs_edge_fail(struct sfs_solver *s, struct edge *e, struct sfs_failure *f);
/* Holds e->result for as long as the edge lives (cache/holds.h: GC spares it). */
void sfs_edge_hold(struct sfs_solver *s, struct edge *e);
void sfs_edge_complete(struct sfs_solver *s, struct edge *e, const char *result,
		       struct cache_key **keys, size_t nkeys, bool cached);
void sfs_edge_discovered(struct sfs_solver *s, struct edge *e);
void sfs_edge_settle(struct sfs_solver *s, struct edge *e);
/* Frees e's matches: what only a search through its inputs' keys weighs. */
void sfs_edge_drop_matches(struct edge *e);

/* keys.c: a vertex's keys by definition (the KEYS task) */
int sfs_keyset_add(struct keyset *ks, const struct cache_combined *cc, struct cache_key *k);
void sfs_keyset_release(struct keyset *ks);
bool sfs_keyset_has(const struct cache_combined *cc, const struct keyset *ks, struct cache_key *k);
struct keys_found {
	struct cache_key **keys;
	size_t nkeys;
	size_t nloadable; /* keys with a loadable record */
	/* the loadable records of every key, fetched only once a second key with
	 * records needs comparing (sfs_intersect's results_known) */
	struct cache_record *records;
	size_t nrecords;
	bool fetched;
	size_t ncandidates; /* keys sfs_intersect weighed (sfs_solver_stats.key_candidates) */
};
void sfs_keys_found_release(struct keys_found *k);
const char *sfs_key_ident(const struct cache_combined *cc, struct cache_key *k);
/* The loadable records of k (not those of e->bad when e is not NULL), appended
 * to *v of *n; 0 or -errno. */
int sfs_key_records(const struct cache_combined *cc, const struct edge *e, struct cache_key *k,
		    struct cache_record **v, size_t *n);
int sfs_query_into(const struct cache_combined *cc, const struct cache_key_with_selector *alts,
		   size_t n, size_t i, const struct sfs_cache_map *m, int o, struct keyset *out);
int sfs_intersect(const struct cache_combined *cc, struct edge *e, size_t ninputs,
		  const struct keyset *known, const struct keyset *deps, struct keys_found *kf);
int sfs_fetch_map(struct vstate *vs, char **ret_msg);
void sfs_run_keys(struct sfs_solver *s, struct vstate *vs);

/* rounds.c: content keys and the rounds before an exec (the SLOW task) */
void sfs_vstate_start_rounds(struct sfs_solver *s, struct vstate *vs);
void sfs_vstate_request_exec(struct sfs_solver *s, struct vstate *vs);
void sfs_vstate_round_inputs_done(struct sfs_solver *s, struct vstate *vs);
void sfs_run_slow(struct sfs_solver *s, struct vstate *vs);

/* run.c: the LOAD, EXEC, FINISH and ALIAS tasks */
void sfs_vstate_exec_failed(struct sfs_solver *s, struct vstate *vs, int r, const char *msg);
void sfs_run_load(struct sfs_solver *s, struct vstate *vs, struct edge *e);
/* A root merged into another vertex's edge (equal content through another
 * map): the result it took is saved under its own maps' keys too, so its own
 * source hits through its metadata map next time (docs/semantics.md §1.9: a root
 * is saved under every map). */
void sfs_run_alias(struct sfs_solver *s, struct vstate *vs);
void sfs_run_exec(struct sfs_solver *s, struct vstate *vs);
void sfs_run_finish(struct sfs_solver *s, struct vstate *vs);
/* A sub-build's output settled: its build vertex finishes with it. */
void sfs_subbuild_done(struct sfs_solver *s, struct vstate *parent, struct edge *e);

/* edgeindex.c: merging of edges that reach the same cache key */
void sfs_index_register(struct sfs_solver *s, struct vstate *vs);
void sfs_index_remove(struct sfs_solver *s, struct vstate *vs);
void sfs_edge_unmerge(struct sfs_solver *s, struct edge *e);
struct edge *sfs_edge_owner(struct edge *e);
void sfs_edge_merge_done(struct sfs_solver *s, struct edge *merged, struct edge *target);

/* subbuild.c */
#define SFS_MAX_SUBBUILD_DEPTH 8
int sfs_subbuild_start(struct sfs_solver *s, struct vstate *vs, char **ret_msg);
char *sfs_subbuild_error(struct vstate *parent, const struct sfs_failure *f);
int sfs_op_build_new(const struct sfs_spec_vertex *v, struct sfs_op **ret);

/* why.c; a vertex nobody needed (job.c settles the history's states) */
#define SFS_WHY_NOT_NEEDED "not needed: what uses it was found in the cache"
char *sfs_why_cached(const struct cache_record *rec, int64_t now);
char *sfs_why_executed(struct sfs_solver *s, struct vstate *vs);

/* vinfo.c: a job's vertices as they ended, in its history row (compact binary) */
/* A vertex to write, every field borrowed (from the live vertex). */
struct sfs_vinfo_view {
	const char *digest, *name;
	const char *op; /* op_len bytes, the hashed bytes */
	size_t op_len;
	enum sfs_vertex_state state;
	const char *log_path; /* NULL if none */
	size_t ninputs;
	const char *const *inputs; /* vertex digests */
	size_t noutputs;
	const char *const *results;	/* "" where not built */
	const char *why, *keys, *names; /* "" when none */
};
/* The list starts with sfs_vinfo_begin, then one sfs_vinfo_write a vertex. */
void sfs_vinfo_begin(struct strbuf *sb);
void sfs_vinfo_write(struct strbuf *sb, const struct sfs_vinfo_view *v);
/* The list back (also the JSON array older rows hold); -EINVAL when damaged. */
int sfs_vinfo_decode(const char *data, size_t len, struct sfs_vertex_info **ret, size_t *ret_n);

/* solver.c */
void sfs_solver_flush_notify(struct sfs_solver *s);
void sfs_solver_empty_trash(struct sfs_solver *s);

#endif
