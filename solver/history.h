/*
 * history.h — jobs as persisted in the database: what `jobs/N/` shows after the
 * job has left the solver, and across remounts.
 *
 * Job numbers are allocated from a persisted counter and never reused.
 */
#ifndef SFS_HISTORY_H
#define SFS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sfs_db;

/* The texts of a row that history_read_stream reads a piece at a time; the
 * first HISTORY_NTEXTS are those history_save writes from history_text. */
enum history_stream { HISTORY_STATUS, HISTORY_STATUS_JSON, HISTORY_VERTICES, HISTORY_SPEC };
#define HISTORY_NTEXTS 3

/* A text saved in pieces from where it lives (a file-backed log), so saving a
 * large job does not copy it into memory. */
struct history_text {
	uint64_t len;
	int (*read)(void *arg, uint64_t off, void *buf, size_t n, size_t *ret_n);
	void *arg;
};

struct history_job {
	uint64_t id;
	uid_t uid;
	gid_t gid;
	char *state; /* "pending" ... "cancelled" */
	/* may be NULL; history_list leaves it NULL and says only whether the row
	 * has one and its length (history_read_stream reads it) */
	char *spec;
	size_t spec_len;
	bool has_spec;	 /* history_list */
	char *error;	 /* may be NULL */
	char *result;	 /* "<ref> sha256:<hex>\n" lines, may be NULL */
	int64_t created; /* ns */
	int64_t ended;	 /* ns, 0 while not ended */
	/* The texts (status, status_json, vertices): saved from these;
	 * history_list gives their lengths only (NULL pointers), and
	 * history_read_stream their bytes. */
	char *status; /* the plain progress text, may be NULL */
	size_t status_len;
	char *status_json; /* status.json lines, may be NULL */
	size_t status_json_len;
	char *vertices; /* the job's vertices as they ended, JSON (solver's format), may be NULL */
	size_t vertices_len; /* history_list: its length (vertices NULL) */
	/* history_save: when set, status, status_json and vertices come from these
	 * (by enum history_stream) instead of the three fields above */
	const struct history_text *texts;
};

void history_job_release(struct history_job *j); /* frees the fields */

/* Copies up to n bytes of job id's saved text from off; *ret_n is what was
 * copied (0 past the end).  -ENOENT for a job without a row. */
int history_read_stream(struct sfs_db *db, uint64_t id, enum history_stream which, uint64_t off,
			void *buf, size_t n, size_t *ret_n);

int history_next_id(struct sfs_db *db, uint64_t *ret_id);
/* Inserts or replaces the row for j->id. */
int history_save(struct sfs_db *db, const struct history_job *j);
int history_delete(struct sfs_db *db, uint64_t id);
/* Replaces the error of job id's row (a finished job's row is otherwise final). */
int history_set_error(struct sfs_db *db, uint64_t id, const char *error);
/* Every job, ascending id; *ret is a malloc'd array (release each, free the array). */
int history_list(struct sfs_db *db, struct history_job **ret, size_t *ret_n);
/* At mount: pending and running jobs become cancelled with `solverfs was restarted`;
 * pending jobs without a spec are deleted. */
int history_mark_interrupted(struct sfs_db *db, int64_t now);

#endif
