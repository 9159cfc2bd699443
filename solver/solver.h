/*
 * solver.h — the solver as fs/ sees it: jobs, their progress streams, their
 * vertices.  BuildKit's Solver / Job (docs/semantics.md §1.2, §8) behind a small,
 * non-blocking API.
 *
 * Every function here returns promptly: solves run on the solver's worker
 * threads.  The caller learns that something about a job changed (state,
 * status, status.json, error, result) through the notify callback, which is
 * called from solver threads with no solver lock held; it must not call back
 * into the solver synchronously in a way that blocks for long.
 *
 * Jobs are numbered from a persisted counter, never reused.  A job is pending
 * until a spec is accepted, then running, then done | failed | cancelled.  When
 * it ends its history (spec, state, error, result, status text, vertices) is
 * written to the database and it is discarded from the shared graph.
 *
 * Returned strings and arrays are malloc'd copies owned by the caller.
 */
#ifndef SFS_SOLVER_H
#define SFS_SOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "import.h"
#include "op.h"
#include "spec.h"

enum sfs_job_state {
	SFS_JOB_PENDING,
	SFS_JOB_RUNNING,
	SFS_JOB_DONE,
	SFS_JOB_FAILED,
	SFS_JOB_CANCELLED
};
const char *sfs_job_state_name(enum sfs_job_state s);
static inline bool sfs_job_state_final(enum sfs_job_state s)
{
	return s >= SFS_JOB_DONE;
}

enum sfs_stream_kind { SFS_STREAM_STATUS, SFS_STREAM_STATUS_JSON };

#define SFS_PENDING_TIMEOUT_DEFAULT_NS (3600LL * 1000000000LL)

struct sfs_solver_opts {
	int workers; /* ops at once; default nproc */
	enum sfs_sandbox sandbox;
	const char *mountpoint; /* absolute; host paths into it are rejected */
	uid_t owner;		/* the mount owner: with root, may import records others trust */
	unsigned jobs_keep;	/* finished jobs kept (default 1000) */
	unsigned max_running;	/* running jobs at once (default 64) */
	unsigned max_pending;	/* pending jobs at once (default 1024) */
	int64_t pending_timeout_ns; /* a pending job without a spec is deleted (default 1 h) */
	size_t log_limit;	/* per vertex log on disk (default 64 MiB) */
	uint64_t output_limit;	/* bytes of one exec output (default 16 GiB) */
	struct cache_import_limits import_limits; /* of cache_from sources */
	/* Registries (cache/registry.h): an extra CA bundle, the HOST:PORTs
	 * spoken to in plain http, the stall timeout (0: 30 s); the strings
	 * outlive the solver. */
	const char *registry_ca;
	const char *insecure_registries;
	int64_t registry_timeout_ns;
	size_t status_limit;	/* per job status / status.json text (default 16 MiB) */
	struct sfs_spec_limits limits;
	void (*notify)(void *arg, uint64_t job); /* something of job changed */
	void *notify_arg;
	/* Some job ended (its history saved, its graph released): called with no
	 * solver lock held, before the notify calls that tell it (the automatic
	 * GC's kick: must return at once). */
	void (*job_ended)(void *arg, uint64_t ended); /* ended: jobs that ran and ended, so far */
	void *job_ended_arg;
	/* ResolveOpFunc: NULL means sfs_op_resolve (tests plug in counting ops). */
	int (*resolve)(void *arg, const struct sfs_spec_vertex *v, struct sfs_op **ret);
	void *resolve_arg;
};
void sfs_solver_opts_default(struct sfs_solver_opts *o);

struct sfs_solver;

/* Starts the worker threads; marks jobs interrupted by a crash as cancelled. */
int sfs_solver_open(struct sfs_cache *cache, const struct sfs_solver_opts *o,
		    struct sfs_solver **ret, char **ret_msg);
/* Cancels running jobs, kills their processes, joins the threads, saves history. */
struct sfs_solver *sfs_solver_close(struct sfs_solver *s); /* accepts NULL */

/* A new pending job owned by uid/gid.  -EAGAIN past max_pending. */
int sfs_solver_job_new(struct sfs_solver *s, uid_t uid, gid_t gid, uint64_t *ret_id);
/*
 * Parses spec and starts job id.  -EINVAL with *ret_msg (the job stays pending
 * and its error says "job N: spec rejected: " and *ret_msg), -EAGAIN past
 * max_running (kept as the error the same way), -EBUSY when the job is not
 * pending, -ENOENT, -EPERM when uid is neither the submitter nor root, -EFBIG
 * over the spec limit.  A refused spec makes the job sfs_solver_job_last_rejected.
 */
int sfs_solver_job_submit(struct sfs_solver *s, uint64_t id, uid_t uid, const char *spec,
			  size_t len, char **ret_msg);
/*
 * The same on the solver's parser thread: takes text (malloc'd) and returns at
 * once; done(arg, r, msg) is called on that thread with what
 * sfs_solver_job_submit returned (-ESHUTDOWN when the solver closes first).
 * A negative return (no memory, closing) means done will not be called and
 * text is still the caller's.
 */
typedef void (*sfs_submit_done_fn)(void *arg, int r, const char *msg);
int sfs_solver_job_submit_async(struct sfs_solver *s, uint64_t id, uid_t uid, char *text,
				size_t len, sfs_submit_done_fn done, void *arg);
/*
 * A spec refused before it reached the parser (larger than the limit at write):
 * msg becomes pending job id's error, as a rejection by the parser's would.
 * -ENOENT, -EPERM and -EBUSY as sfs_solver_job_submit.
 */
int sfs_solver_job_refuse(struct sfs_solver *s, uint64_t id, uid_t uid, const char *msg);
/*
 * The commands of jobs/N/ctl.  sfs_job_ctl_parse reads what one write(2) gave:
 * the command word, optionally surrounded by blanks (space, tab, CR, LF), so
 * `echo cancel > ctl` works.  Anything else (another word after it, a NUL
 * byte, more than SFS_JOB_CTL_MAX bytes) is -EINVAL with *ret_msg.
 * sfs_solver_job_ctl keeps each command's outcome for the job's info (ctl,
 * and error for a refused one), except for a stranger's write or a job that
 * the command deleted.
 */
enum sfs_job_cmd { SFS_JOB_CMD_CANCEL, SFS_JOB_CMD_DISCARD, SFS_JOB_CMD_KEEP, SFS_JOB_CMD_UNKEEP };
#define SFS_JOB_CTL_MAX 64
int sfs_job_ctl_parse(const char *buf, size_t len, enum sfs_job_cmd *ret, char **ret_msg);
/* Parses buf as above and runs the command on job id: "cancel" is -EINVAL on a
 * finished job; "discard" is -EBUSY while running (and drops the job's pins);
 * "keep" pins the built outputs of a finished job (cache/pins.h: -EBUSY while
 * pending or running, -EINVAL when none was built), "unkeep" drops them.  A
 * kept job is not dropped from the history past jobs_keep. */
int sfs_solver_job_ctl(struct sfs_solver *s, uint64_t id, uid_t uid, const char *buf, size_t len,
		       char **ret_msg);

/* Ascending ids of every job known (live and history). */
int sfs_solver_job_list(struct sfs_solver *s, uint64_t **ret_ids, size_t *ret_n);
/* The newest accepted job, 0 if none.  A refused spec does not change it. */
uint64_t sfs_solver_job_latest(struct sfs_solver *s);
/* The job whose spec was refused last (since the open), while it is still
 * pending with that refusal as its error; 0 if none. */
uint64_t sfs_solver_job_last_rejected(struct sfs_solver *s);

struct sfs_job_output {
	char *ref;		      /* "key" or "key:N" */
	char result[SFS_DIGEST_SIZE]; /* "" until built */
};

struct sfs_job_info {
	uint64_t id;
	uid_t uid;
	gid_t gid;
	enum sfs_job_state state;
	int64_t created; /* ns */
	int64_t changed; /* ns: last change of anything dynamic */
	int64_t ended;	 /* ns, 0 while not ended */
	char *error;	 /* "" when none; then the refused ctl commands, "ctl: ..." lines */
	char *ctl;	 /* the last ctl command's outcome, "ok: CMD" or "error: CMD: why"; "" */
	char *spec;	 /* as written (sfs_solver_job_info_spec only), else NULL */
	size_t spec_len; /* 0 while none accepted */
	size_t noutputs;
	struct sfs_job_output *outputs;
	uint64_t status_len; /* bytes in the status stream so far */
	uint64_t status_json_len;
	bool has_export;
	bool kept; /* jobs/N/ctl keep */
};
/* -ENOENT for an unknown job.  Without the spec's bytes (a getattr must not copy
 * a 16 MiB spec): sfs_solver_job_info_spec gives them too. */
int sfs_solver_job_info(struct sfs_solver *s, uint64_t id, struct sfs_job_info *ret);
int sfs_solver_job_info_spec(struct sfs_solver *s, uint64_t id, struct sfs_job_info *ret);
void sfs_job_info_release(struct sfs_job_info *i);

/*
 * Reads up to size bytes of a stream from off.  *ret_ended is true when the job
 * has ended and nothing more will be appended.  A read with *ret_len == 0 and
 * !*ret_ended means "no data yet": wait for notify and retry.
 */
int sfs_solver_job_read(struct sfs_solver *s, uint64_t id, enum sfs_stream_kind k, uint64_t off,
			size_t size, char **ret_buf, size_t *ret_len, bool *ret_ended);

enum sfs_vertex_state {
	SFS_VERTEX_PENDING,
	SFS_VERTEX_RUNNING,
	SFS_VERTEX_CACHED,
	SFS_VERTEX_DONE,
	SFS_VERTEX_FAILED,
	SFS_VERTEX_CANCELLED
};
const char *sfs_vertex_state_name(enum sfs_vertex_state s);

struct sfs_vertex_info {
	char digest[SFS_DIGEST_SIZE];
	char *name;
	char *op; /* the hashed bytes */
	size_t op_len;
	enum sfs_vertex_state state;
	char *log_path; /* file with the vertex's output, NULL if none */
	size_t ninputs;
	char (*inputs)[SFS_DIGEST_SIZE]; /* vertex digests of the inputs */
	size_t noutputs;
	char (*results)[SFS_DIGEST_SIZE]; /* "" where not built */
	char *why;			  /* one line, may be "" */
	char *keys; /* "<output> <key id>\n" per cache key the outputs were found or saved
		     * under (the main cache's ids); "" when none */
	size_t njobs;
	uint64_t *jobs; /* the running jobs that use the vertex (empty in history) */
	char *names;	/* a finished job's spec keys for this vertex, "key\n" each; "" */
};
void sfs_vertex_info_release(struct sfs_vertex_info *v);
/* v's why line: its own, else what its state says ("not started yet", ...). */
const char *sfs_vertex_why(const struct sfs_vertex_info *v);

/* jobs/N/by-name: a spec key of a job and the digest of its vertex (the one
 * sfs_solver_job_vertices lists: an ignore-cache vertex's own). */
struct sfs_job_name {
	char *key;
	char digest[SFS_DIGEST_SIZE];
};
/* Every key of job id's spec with its vertex, in key order; none while the job
 * is pending, and none for a finished job saved before keys were kept. */
int sfs_solver_job_names(struct sfs_solver *s, uint64_t id, struct sfs_job_name **ret,
			 size_t *ret_n);
void sfs_job_names_free(struct sfs_job_name *v, size_t n);

/* The vertices of job id, as they are now or as they ended. */
int sfs_solver_job_vertices(struct sfs_solver *s, uint64_t id, struct sfs_vertex_info **ret,
			    size_t *ret_n);
/* Counters since the solver opened (metrics, tests). */
struct sfs_solver_stats {
	uint64_t cache_maps;	/* CacheMap calls */
	uint64_t execs;		/* Exec calls */
	uint64_t loads;		/* cache record loads attempted */
	uint64_t load_failures; /* of which failed (fell back) */
	uint64_t slow_keys;	/* content keys computed */
	uint64_t keys_found;	/* keys cache lookups kept for edges (after dropping duplicates) */
	uint64_t key_candidates; /* keys queries led to, weighed for every input (keys.c) */
	uint64_t jobs_done, jobs_failed, jobs_cancelled; /* of the jobs that ran */
};
void sfs_solver_get_stats(struct sfs_solver *s, struct sfs_solver_stats *ret);

/* The directory holding job id's cache export (an OCI layout), or NULL when the job
 * has none (yet); malloc'd.  Immutable once it exists. */
char *sfs_solver_job_export(struct sfs_solver *s, uint64_t id);

/* jobs/N/why: one line per vertex, "[name] why"; malloc'd. */
int sfs_solver_job_why(struct sfs_solver *s, uint64_t id, char **ret, size_t *ret_len);

/* One vertex: of the shared graph (job 0) or of job `job`, by its digest's hex.
 * -ENOENT when there is none.  Costs one lookup, not a walk of the graph. */
int sfs_solver_vertex(struct sfs_solver *s, uint64_t job, const char *hex,
		      struct sfs_vertex_info *ret);

/* Every vertex of a running job (the shared graph). */
int sfs_solver_vertices(struct sfs_solver *s, struct sfs_vertex_info **ret, size_t *ret_n);
void sfs_vertex_infos_free(struct sfs_vertex_info *v, size_t n);

#endif
