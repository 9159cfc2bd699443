/*
 * pins.c — the gc_roots rows (pins.h).
 *
 * Locking: the database lock around each statement and unit.
 */
#include "pins.h"

#include <errno.h>

#include "db.h"

static int pin_add_locked(struct sfs_db *db, uint64_t job, const char *result)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_PIN_ADD);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)job);
	sqlite3_bind_text(st, 2, result, -1, SQLITE_STATIC);
	return sfs_db_step_done(db, STMT_PIN_ADD, st);
}

int cache_pins_set(struct sfs_db *db, uint64_t job, const char *const *results, size_t n)
{
	sfs_db_lock(db);
	int r = sfs_db_begin(db);
	if (r == 0) {
		for (size_t i = 0; r == 0 && i < n; i++)
			r = pin_add_locked(db, job, results[i]);
		r = sfs_db_end(db, r);
	}
	sfs_db_unlock(db);
	return r == 0 ? sfs_db_sync(db) : r;
}

int cache_pins_clear(struct sfs_db *db, uint64_t job)
{
	sfs_db_lock(db);
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_PIN_CLEAR);
	int r = -EIO;
	if (st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)job);
		r = sfs_db_step_done(db, STMT_PIN_CLEAR, st);
	}
	sfs_db_unlock(db);
	return r == 0 ? sfs_db_sync(db) : r;
}

/* The EXISTS of statement sid bound to text or job; doubt (an error) is `err`. */
static bool exists(struct sfs_db *db, enum sfs_stmt sid, const char *text, uint64_t job, bool err)
{
	bool yes = err;

	sfs_db_lock(db);
	sqlite3_stmt *st = sfs_db_stmt(db, sid);
	if (st) {
		if (text)
			sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, 1, (sqlite3_int64)job);
		if (sqlite3_step(st) == SQLITE_ROW)
			yes = sqlite3_column_int(st, 0) != 0;
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return yes;
}

bool cache_pinned(struct sfs_db *db, const char *result_id)
{
	return exists(db, STMT_PINNED, result_id, 0, true);
}

bool cache_job_pinned(struct sfs_db *db, uint64_t job)
{
	return exists(db, STMT_JOB_PINNED, NULL, job, false);
}
