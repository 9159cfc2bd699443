/*
 * db.h — the SQLite database in STATE_DIR/solverfs.db.
 *
 * One connection, WAL mode, guarded by one mutex: every statement runs under
 * sfs_db_lock().  Statements are named by an enum and prepared lazily on first
 * use (tup's db.c).  Every SQL error is logged with the message and the
 * statement text.  Schema version lives in PRAGMA user_version.
 *
 * Tables:
 *   records(id, result, created, op, name)  one save of a result (cache record); op the
 *                                           kind of the op that made it, name its vertex
 *                                           name and op summary (NULL: unknown, a record
 *                                           from before the columns, or an import)
 *   key_records(key, record)                which keys hold which records
 *   links(src, input, output, digest, selector, target)
 *   results(num, id, size, created, last_used)  result trees known to the cache;
 *                                           num their number (INTEGER PRIMARY KEY:
 *                                           stable, max + 1 for a new one)
 *   jobs(id, uid, gid, state, spec, error, result, created, ended, status, status_json)
 *   meta(name, value)                       next job number and the like
 *   keys(id, digest, output)                what each persisted key is a key of
 *   layers(result, blob, size, diff_id)     the gzip tar layer made of a result (export)
 *   blob_refs(owner, blob, size)            which result names which blob (its tree's
 *                                           manifest, files and links, its layer):
 *                                           written with the results row, so "is this
 *                                           blob still referenced" is one index probe;
 *                                           owner is results.num, blob the digest's
 *                                           32 bytes (SQL: lower(hex(blob)) gives the
 *                                           hex, sfs_unhex(hex) the bytes)
 *   gc_intent(blob)                         blobs a committed prune will delete
 *                                           (cache/prune.h); finished at the next mount
 *   blobs(hex, size, data)                  the content store's small blobs
 *                                           (cache/blobrows.h)
 */
#ifndef SFS_DB_H
#define SFS_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sfs_stmt {
	/* keystore */
	STMT_KEY_EXISTS,
	STMT_KEY_WALK,
	STMT_KEY_RESULTS,
	STMT_KEY_LOAD,
	STMT_RECORD_INSERT,
	STMT_KEY_RECORD_INSERT,
	STMT_KEY_RECORD_DELETE_BY_RECORD,
	STMT_KEYS_BY_RECORD,
	STMT_RECORD_DELETE,
	STMT_LINK_INSERT,
	STMT_LINK_WALK,
	STMT_LINK_HAS,
	STMT_LINK_ALL,
	STMT_BACKLINK_WALK,
	STMT_LINK_DELETE_SRC_TARGET,
	/* results */
	STMT_RESULT_UPSERT,
	STMT_RESULT_TOUCH,
	STMT_RESULT_GET,
	/* jobs */
	STMT_JOB_INSERT,
	STMT_JOB_DELETE,
	STMT_JOB_LIST,
	STMT_JOB_INTERRUPT,
	STMT_META_GET,
	STMT_META_SET,
	STMT_JOB_DELETE_UNSUBMITTED, /* pending jobs that never got a spec */
	STMT_KEYINFO_SET,
	STMT_KEYINFO_GET,
	STMT_LINK_BY_DIGEST,
	/* export: gzip tar layers made of results */
	STMT_LAYER_GET,
	STMT_LAYER_PUT,
	STMT_JOB_TEXT_LENS, /* history_read_stream: is there a row, a text */
	STMT_JOB_SET_ERROR, /* a finished job's error gets a ctl error appended */
	/* prune: the release cascade and blob references (cache/prune.c) */
	STMT_BLOB_REF_INSERT,
	STMT_BLOB_REF_INSERT_ROWS, /* SFS_DB_BATCH_ROWS rows in one statement */
	STMT_BLOB_REF_INSERT_FEW,  /* SFS_DB_BATCH_FEW */
	STMT_BLOB_REFS_OF,
	STMT_BLOB_REFS_DELETE,
	STMT_BLOB_REFERENCED,
	STMT_RESULT_NUM, /* results.num of an id: blob_refs's owner */
	STMT_RESULT_DELETE,
	STMT_LAYER_DELETE,
	STMT_RECORDS_OF_RESULT,
	STMT_GC_INTENT_ADD,
	STMT_GC_INTENT_DEL,
	STMT_GC_INTENT_LIST,
	STMT_RESULTS_LRU, /* pinned results are not candidates */
	STMT_PIN_ADD, /* gc_roots: jobs/N/ctl keep (cache/pins.h) */
	STMT_PIN_CLEAR,
	STMT_PINNED,
	STMT_JOB_PINNED,
	STMT_RECORD_DESCRIBE, /* records.op and name (cache/du.h) */
	STMT_RESULT_HAS_OP,   /* some record of the result has that op (prune filter) */
	/* the content store's small blobs (cache/blobrows.c) */
	STMT_BLOBROW_PUT,
	STMT_BLOBROW_SIZE,
	STMT_BLOBROW_GET,
	STMT_BLOBROW_DELETE,
	STMT_BLOBROW_NAMES,
	STMT_BLOBROW_USAGE,
	STMT_BLOBROW_HAS, /* the primary key's index alone: no table row read */
	STMT_BLOBROW_ABSENT_ROWS, /* how many of SFS_DB_BATCH_ROWS hex are not rows */
	STMT_BLOBROW_ABSENT_FEW,
	STMT_KEY_RESULTS_ANY,
	STMT_LINK_RECORD_FORM_ANY,
	STMT_UNIT_SAVEPOINT, /* a unit of the group commit (db.c): prepared once, not parsed per unit */
	STMT_UNIT_RELEASE,
	STMT_UNIT_ROLLBACK,
	STMT__MAX
};

/* Statements that take several rows at once (STMT_BLOB_REF_INSERT_ROWS: (owner, blob,
 * size), 3 parameters a row; STMT_BLOBROW_ABSENT_ROWS: a hex) hold SFS_DB_BATCH_ROWS
 * rows, their _FEW twins SFS_DB_BATCH_FEW.  A batch of fewer repeats its last row,
 * which changes neither an OR IGNORE insert nor whether all are present. */
#define SFS_DB_BATCH_ROWS 16
#define SFS_DB_BATCH_FEW 4

struct sfs_db;

int sfs_db_open(const char *path, struct sfs_db **ret, char **ret_msg);
struct sfs_db *sfs_db_close(struct sfs_db *db); /* accepts NULL */

void sfs_db_lock(struct sfs_db *db);
void sfs_db_unlock(struct sfs_db *db);

/* A unit of work.  Units nest by count; only the outermost begin/end reaches
 * SQLite: a transaction of its own (COMMIT when err == 0, else ROLLBACK), or,
 * under group commit, a savepoint of the open group (RELEASE or ROLLBACK TO).
 * Call with the lock held. */
int sfs_db_begin(struct sfs_db *db);
int sfs_db_end(struct sfs_db *db, int err);

/* Group commit: from now on units are savepoints of one long transaction that a
 * flusher thread commits every interval_ms milliseconds (and a unit commits when
 * the group is large).  A statement from sfs_db_stmt outside any unit runs in it
 * too, and begins it (read-only until something writes) when none is open: reads
 * take SQLite's locks once an interval, and a write outside a unit commits with
 * the group.  sfs_db_close stops the flusher and commits. */
int sfs_db_group_commit(struct sfs_db *db, unsigned interval_ms);
/* Commits the open group now: what was saved before is durable when it returns.
 * Takes the lock; a no-op without group commit or with a unit open. */
int sfs_db_sync(struct sfs_db *db);
/* fn(arg) runs before every COMMIT (and once more, without the lock, at the start
 * of sfs_db_sync, so that the locked call finds little left to do): the content
 * store makes the big blobs written so far durable and named there, before any
 * record naming them can commit (not before a COMMIT of a group that only read).
 * A failure keeps the transaction open (under group commit: for the next try) and
 * is returned.  A statement that commits by itself (no group commit, or no group
 * open and a statement not from sfs_db_stmt): fn runs then too (SQLite's commit
 * hook), and a failure rolls that statement back.  Set once, before use. */
void sfs_db_set_precommit(struct sfs_db *db, int (*fn)(void *arg), void *arg);
/* Transactions committed so far (tests, metrics). */
uint64_t sfs_db_commits(struct sfs_db *db);

/* The rows of the next batch of n (> 0) left: SFS_DB_BATCH_ROWS or SFS_DB_BATCH_FEW,
 * whichever binds fewer repeats for the statements it saves. */
size_t sfs_db_batch_rows(size_t n);

/* The prepared statement, reset and with bindings cleared; NULL on error (logged).
 * Call with the lock held. */
sqlite3_stmt *sfs_db_stmt(struct sfs_db *db, enum sfs_stmt id);
/* Steps statement id (from sfs_db_stmt) to its end and resets it: 0, or the
 * error sfs_db_error returns.  Lock held. */
int sfs_db_step_done(struct sfs_db *db, enum sfs_stmt id, sqlite3_stmt *st);
/* Logs the error of a failed step for statement id and returns -EIO. */
int sfs_db_error(struct sfs_db *db, enum sfs_stmt id, int rc);
sqlite3 *sfs_db_handle(struct sfs_db *db);

#endif
