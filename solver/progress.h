/*
 * progress.h — a job's progress: the SolveStatus stream and its plain rendering.
 *
 * One sfs_progress per job.  The solver reports what happens to each vertex
 * (announced, started, completed, log output); this module turns it into the
 * two append-only texts a reader of `status` and `status.json` sees:
 *
 *   - status.json: one BuildKit SolveStatus object per line (rawjson);
 *   - status: what `buildctl --progress=plain` prints (docs/progress.md §2).
 *
 * It applies BuildKit's Job.Status post-processing (docs/progress.md §4): inputs
 * of a started vertex that never ran are reported CACHED, and at the end every
 * vertex that started but never completed is reported "context canceled".
 *
 * Not thread-safe: the job's lock guards a progress.
 */
#ifndef SFS_PROGRESS_H
#define SFS_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h" /* sfs_now_ns, sfs_format_time: what callers of progress stamp */
#include "strbuf.h"
#include "textlog.h"

struct sfs_progress;

/*
 * spill_dir: where the status texts spill to unlinked files (NULL: memory).
 * limit: bytes of each text (0: none).  Log output that would take a text past
 * it is dropped, with one "[output clipped, ...]" log line saying so; vertex
 * events (headers, DONE, ERROR, the failure summary) still go in, so a text
 * ends within limit plus a few lines per vertex.
 */
int sfs_progress_new(const char *spill_dir, size_t limit, struct sfs_progress **ret);
struct sfs_progress *sfs_progress_free(struct sfs_progress *p); /* accepts NULL */

/* Announces a vertex (unstarted).  #N follows the order of announcements.
 * name is what follows "#N " in the plain header: "[key] summary". */
int sfs_progress_add_vertex(struct sfs_progress *p, const char *digest, const char *name,
			    const char *const *inputs, size_t ninputs);
/* Whether digest was announced (a NULL p has none). */
bool sfs_progress_has_vertex(const struct sfs_progress *p, const char *digest);
void sfs_progress_started(struct sfs_progress *p, const char *digest, int64_t t, bool cached);
/* error NULL on success; "context canceled" for a cancelled vertex. */
void sfs_progress_completed(struct sfs_progress *p, const char *digest, int64_t t, bool cached,
			    const char *error);
void sfs_progress_log(struct sfs_progress *p, const char *digest, int stream, const void *data,
		      size_t len, int64_t t);
/* A transfer's progress on vertex digest (BuildKit's statuses): id names it
 * ("push sha256:..."), done marks its last report. */
void sfs_progress_status(struct sfs_progress *p, const char *digest, const char *id,
			 uint64_t current, uint64_t total, int64_t t, bool done);
/* The stream ends: unfinished vertices become CANCELED; after a failure the
 * error summary is printed. */
void sfs_progress_end(struct sfs_progress *p, int64_t t);

const struct textlog *sfs_progress_plain(const struct sfs_progress *p);
const struct textlog *sfs_progress_json(const struct sfs_progress *p);

#endif
