/*
 * history.c — job history in the jobs table, and the job number counter in
 * meta("next_job").
 *
 * The counter, not MAX(id) + 1, allocates numbers: a deleted or discarded job's
 * number must never come back (docs/tree.md §3.3), even when it was the newest.
 * Times are ns since the epoch.  Text columns hold what the job files show;
 * spec, status and status_json are blobs since they may hold any bytes.
 *
 * Locking: every function runs its statements under sfs_db_lock.
 */
#include "history.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "db.h"
#include "err.h"

#define META_NEXT_JOB "next_job"
#define INTERRUPTED_ERROR "solverfs was restarted"

void history_job_release(struct history_job *j)
{
	if (!j)
		return;
	free(j->state);
	free(j->spec);
	free(j->error);
	free(j->result);
	free(j->status);
	free(j->status_json);
	free(j->vertices);
	memset(j, 0, sizeof(*j));
}

/* The counter's value, 1 when never set.  Lock held. */
static int meta_next(struct sfs_db *db, uint64_t *ret)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_META_GET);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, META_NEXT_JOB, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sfs_db_error(db, STMT_META_GET, rc);
	*ret = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 1;
	sqlite3_reset(st);
	if (*ret < 1)
		*ret = 1;
	return 0;
}

static int meta_set_next(struct sfs_db *db, uint64_t next)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_META_SET);

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, META_NEXT_JOB, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
	return sfs_db_step_done(db, STMT_META_SET, st);
}

static int next_id_locked(struct sfs_db *db, uint64_t *ret_id)
{
	uint64_t next;
	int r = meta_next(db, &next);

	if (r == 0)
		r = meta_set_next(db, next + 1);
	if (r == 0)
		*ret_id = next;
	return r;
}

int history_next_id(struct sfs_db *db, uint64_t *ret_id)
{
	uint64_t id = 0;
	int r;

	sfs_db_lock(db);
	r = sfs_db_begin(db);
	if (r == 0)
		r = sfs_db_end(db, next_id_locked(db, &id));
	sfs_db_unlock(db);
	if (r == 0)
		r = sfs_db_sync(db); /* a number is never handed out twice */
	if (r == 0)
		*ret_id = id;
	return r;
}

static void bind_blob(sqlite3_stmt *st, int i, const char *p, size_t len)
{
	if (p)
		sqlite3_bind_blob64(st, i, p, len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* by enum history_stream */
static const char *const stream_col[] = {"status", "status_json", "vertices", "spec"};

/* Fills the zeroblob of column which in job id's row from t, a piece at a time. */
static int write_text(struct sfs_db *db, uint64_t id, enum history_stream which,
		      const struct history_text *t)
{
	enum { PIECE = 64 * 1024 };
	sqlite3_blob *b = NULL;
	char *buf = NULL;
	int r = 0;

	if (!t->len)
		return 0;
	if (sqlite3_blob_open(sfs_db_handle(db), "main", "jobs", stream_col[which],
			      (sqlite3_int64)id, 1, &b) != SQLITE_OK) {
		sfs_log(SFS_LOG_ERR, "sqlite: writing %s of job %llu: %s", stream_col[which],
			(unsigned long long)id, sqlite3_errmsg(sfs_db_handle(db)));
		sqlite3_blob_close(b);
		return -EIO;
	}
	if (!(buf = malloc(PIECE)))
		r = -ENOMEM;
	for (uint64_t off = 0; r == 0 && off < t->len;) {
		size_t want = t->len - off < PIECE ? (size_t)(t->len - off) : PIECE, got = 0;
		r = t->read(t->arg, off, buf, want, &got);
		if (r == 0 && got != want)
			r = -EIO; /* the text shrank under us */
		if (r == 0 && sqlite3_blob_write(b, buf, (int)got, (int)off) != SQLITE_OK)
			r = -EIO;
		off += got;
	}
	free(buf);
	if (sqlite3_blob_close(b) != SQLITE_OK && r == 0)
		r = -EIO;
	return r;
}

static int save_locked(struct sfs_db *db, const struct history_job *j)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_JOB_INSERT);
	uint64_t next;
	int r;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)j->id);
	sqlite3_bind_int64(st, 2, j->uid);
	sqlite3_bind_int64(st, 3, j->gid);
	sqlite3_bind_text(st, 4, j->state ? j->state : "pending", -1, SQLITE_STATIC);
	bind_blob(st, 5, j->spec, j->spec_len);
	bind_str(st, 6, j->error);
	bind_str(st, 7, j->result);
	sqlite3_bind_int64(st, 8, j->created);
	sqlite3_bind_int64(st, 9, j->ended);
	if (j->texts) {
		for (int k = 0; k < HISTORY_NTEXTS; k++) {
			if (j->texts[k].len)
				sqlite3_bind_zeroblob64(st, 10 + k, j->texts[k].len);
			else
				sqlite3_bind_null(st, 10 + k);
		}
	} else {
		bind_blob(st, 10, j->status, j->status_len);
		bind_blob(st, 11, j->status_json, j->status_json_len);
		bind_str(st, 12, j->vertices);
	}
	r = sfs_db_step_done(db, STMT_JOB_INSERT, st);
	for (int k = 0; r == 0 && j->texts && k < HISTORY_NTEXTS; k++)
		r = write_text(db, j->id, (enum history_stream)k, &j->texts[k]);
	/* A number saved without history_next_id still must never be handed
	 * out again. */
	if (r == 0)
		r = meta_next(db, &next);
	if (r == 0 && j->id >= next)
		r = meta_set_next(db, j->id + 1);
	return r;
}

int history_save(struct sfs_db *db, const struct history_job *j)
{
	int r;

	if (j->id == 0)
		return -EINVAL;
	sfs_db_lock(db);
	r = sfs_db_begin(db);
	if (r == 0)
		r = sfs_db_end(db, save_locked(db, j));
	sfs_db_unlock(db);
	if (r == 0)
		r = sfs_db_sync(db); /* a job reported done is on disk */
	return r;
}

/* Runs statement which on job id, with text (may be NULL) as ?2 when the statement
 * has one.  Takes the database lock. */
static int run_on_job(struct sfs_db *db, enum sfs_stmt which, uint64_t id, const char *text)
{
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	st = sfs_db_stmt(db, which);
	if (st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		if (sqlite3_bind_parameter_count(st) >= 2)
			bind_str(st, 2, text);
		r = sfs_db_step_done(db, which, st);
	}
	sfs_db_unlock(db);
	return r;
}

int history_delete(struct sfs_db *db, uint64_t id)
{
	int r = run_on_job(db, STMT_JOB_DELETE, id, NULL);

	if (r == 0) /* no GC root outlives its job (cache/pins.h) */
		r = run_on_job(db, STMT_PIN_CLEAR, id, NULL);

	return r == 0 ? sfs_db_sync(db) : r;
}

int history_set_error(struct sfs_db *db, uint64_t id, const char *error)
{
	return run_on_job(db, STMT_JOB_SET_ERROR, id, error);
}

/* A malloc'd, NUL-terminated copy of column i (NULL for SQL NULL). */
static int col_dup(sqlite3_stmt *st, int i, char **ret, size_t *ret_len)
{
	const void *p;
	size_t n;

	*ret = NULL;
	if (ret_len)
		*ret_len = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	p = sqlite3_column_blob(st, i);
	n = (size_t)sqlite3_column_bytes(st, i);
	*ret = malloc(n + 1);
	if (!*ret)
		return -ENOMEM;
	if (n)
		memcpy(*ret, p, n);
	(*ret)[n] = '\0';
	if (ret_len)
		*ret_len = n;
	return 0;
}

static int row_job(sqlite3_stmt *st, struct history_job *j)
{
	memset(j, 0, sizeof(*j));
	j->id = (uint64_t)sqlite3_column_int64(st, 0);
	j->uid = (uid_t)sqlite3_column_int64(st, 1);
	j->gid = (gid_t)sqlite3_column_int64(st, 2);
	j->created = sqlite3_column_int64(st, 7);
	j->ended = sqlite3_column_int64(st, 8);
	j->status_len = (size_t)sqlite3_column_int64(st, 9);
	j->status_json_len = (size_t)sqlite3_column_int64(st, 10);
	j->vertices_len = (size_t)sqlite3_column_int64(st, 11);
	/* the spec stays in the row: a finished job's is read when someone looks */
	j->has_spec = sqlite3_column_int(st, 4) != 0;
	j->spec_len = (size_t)sqlite3_column_int64(st, 12);
	if (col_dup(st, 3, &j->state, NULL) < 0 || col_dup(st, 5, &j->error, NULL) < 0 ||
	    col_dup(st, 6, &j->result, NULL) < 0 ||

	    (!j->state && !(j->state = strdup("pending")))) {
		history_job_release(j);
		return -ENOMEM;
	}
	return 0;
}

static int list_locked(struct sfs_db *db, struct history_job **v, size_t *n)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_JOB_LIST);
	size_t cap = 0;
	int rc, r = 0;

	if (!st)
		return -EIO;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = sfs_grow((void **)v, &cap, *n + 1, sizeof(**v))) < 0)
			break;
		r = row_job(st, &(*v)[*n]);
		if (r == 0)
			(*n)++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sfs_db_error(db, STMT_JOB_LIST, rc);
	sqlite3_reset(st);
	return r;
}

int history_list(struct sfs_db *db, struct history_job **ret, size_t *ret_n)
{
	struct history_job *v = NULL;
	size_t n = 0;
	int r;

	sfs_db_lock(db);
	r = list_locked(db, &v, &n);
	sfs_db_unlock(db);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			history_job_release(&v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int interrupt_locked(struct sfs_db *db, int64_t now)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_JOB_DELETE_UNSUBMITTED);
	int r;

	if (!st)
		return -EIO;
	r = sfs_db_step_done(db, STMT_JOB_DELETE_UNSUBMITTED, st);
	if (r < 0)
		return r;
	st = sfs_db_stmt(db, STMT_JOB_INTERRUPT);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, INTERRUPTED_ERROR, -1, SQLITE_STATIC);
	return sfs_db_step_done(db, STMT_JOB_INTERRUPT, st);
}

int history_mark_interrupted(struct sfs_db *db, int64_t now)
{
	int r;

	sfs_db_lock(db);
	r = sfs_db_begin(db);
	if (r == 0)
		r = sfs_db_end(db, interrupt_locked(db, now));
	sfs_db_unlock(db);
	if (r == 0)
		r = sfs_db_sync(db);
	return r;
}

/* The byte length of job id's text (0 for NULL); -ENOENT without a row. */
static int text_len_locked(struct sfs_db *db, uint64_t id, enum history_stream which,
			   uint64_t *ret)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_JOB_TEXT_LENS);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sfs_db_error(db, STMT_JOB_TEXT_LENS, rc);
	if (r == 0)
		*ret = (uint64_t)sqlite3_column_int64(st, (int)which); /* NULL reads 0 */
	sqlite3_reset(st);
	return r;
}

int history_read_stream(struct sfs_db *db, uint64_t id, enum history_stream which, uint64_t off,
			void *buf, size_t n, size_t *ret_n)
{
	const char *col = stream_col[which];
	sqlite3_blob *b = NULL;
	uint64_t len = 0;

	*ret_n = 0;
	sfs_db_lock(db);
	int r = text_len_locked(db, id, which, &len);
	size_t m = r == 0 && off < len ? (size_t)(len - off < n ? len - off : n) : 0;
	if (m && (sqlite3_blob_open(sfs_db_handle(db), "main", "jobs", col, (sqlite3_int64)id, 0,
				    &b) != SQLITE_OK ||
		  sqlite3_blob_read(b, buf, (int)m, (int)off) != SQLITE_OK)) {
		sfs_log(SFS_LOG_ERR, "sqlite: reading %s of job %llu: %s", col,
			(unsigned long long)id, sqlite3_errmsg(sfs_db_handle(db)));
		r = -EIO;
	}
	if (r == 0)
		*ret_n = m;
	sqlite3_blob_close(b);
	sfs_db_unlock(db);
	return r;
}
