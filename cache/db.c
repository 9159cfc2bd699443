/*
 * db.c — the SQLite database of a STATE_DIR (see db.h for the tables).
 *
 * One connection in WAL mode with synchronous=NORMAL: a commit survives a
 * crash of the daemon (SIGKILL) because the WAL is written before COMMIT
 * returns; only a power loss may drop the last transactions.  Its page cache is
 * 16 MiB (SQLite's default 2 MiB made a 100,000-vertex solve read its B-tree
 * pages back with pread: 60 s against 51 s on tmpfs).  The WAL is checkpointed
 * into the database every SFS_DB_WAL_PAGES pages, not SQLite's 1,000: a page
 * that many groups dirty (an index's hot page) is copied back once a
 * checkpoint, and the checkpoint's syncs come a quarter as often.  A power loss
 * may then drop up to that much of the latest commits (docs/durability.md §4).
 *
 * Statements are named by enum sfs_stmt and prepared on first use, as tup's
 * db.c does, so a statement nobody runs costs nothing and a typo in rarely-used
 * SQL shows up in the log with its text instead of failing the open.
 *
 * Locking: db->lock (recursive) guards the connection, the statement table and
 * the transaction counter.  It is recursive because a keystore batch holds it
 * from batch_begin to batch_end while the same thread calls other keystore
 * methods, which lock again.
 *
 * Group commit (sfs_db_group_commit): a unit of work (sfs_db_begin/end at depth
 * 0) becomes a SAVEPOINT inside one long transaction instead of a transaction of
 * its own, and a flusher thread COMMITs that transaction every few milliseconds,
 * or a unit does when the group has grown to SFS_DB_GROUP_MAX units.  A solve
 * saving thousands of vertices then writes each B-tree page and takes the WAL
 * locks once per group, not once per vertex.  A failed unit rolls back to its
 * savepoint alone, unless SQLite itself rolled back the whole transaction (disk
 * full, I/O error): then the group's earlier units are lost too, and logged.
 * What must be durable before it is reported (a job's end) calls sfs_db_sync;
 * a crash loses at most the last interval of cache saves, which are executed
 * again by the next build, never a finished job.
 *
 * Under group commit every statement runs inside the group's transaction: the
 * first statement when none is open begins one (BEGIN DEFERRED: a read
 * transaction until something writes), and the flusher commits it with the
 * rest.  So a warm solve's thousands of look-ups take SQLite's file locks and
 * the WAL read lock once an interval, not once a statement, and a read
 * snapshot is held at most one interval (the checkpoint waits no longer).  A
 * unit needs the write lock from its start, as without readers: joining a
 * group that has only read so far ends that (a COMMIT that writes nothing and
 * runs no precommit) and begins an IMMEDIATE one.  A statement that writes
 * outside any unit commits with the group, within the interval, its precommit
 * run before that COMMIT like every other.
 */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "sha256.h"

/* 2: the blobs table (small blobs as rows); a version 1 store opens as it is
 * (CREATE ... IF NOT EXISTS), its blob files stay readable (cache/cas.c).
 * 3: results get a stable number (results.num) and blob_refs names owners by it
 * and blobs by their 32 bytes; an older store's two tables are rewritten at open
 * (db_migrate_refs), in the open's transaction. */
#define SFS_DB_SCHEMA_VERSION 3

/* 32 MiB of WAL with 4 KiB pages: the cold 10,001-vertex lattice's daemon CPU fell
 * 12-16 % and its incremental run's 18-21 % against 1,000 (bench/README.md) */
#define SFS_DB_WAL_PAGES 8192
#define SFS_DB_GROUP_MAX 8192 /* units a group holds before a unit commits it */

struct sfs_db {
	sqlite3 *conn;
	pthread_mutex_t lock;
	int tx_depth;	/* nesting of sfs_db_begin; BEGIN/COMMIT only at depth 0 */
	bool tx_failed; /* an inner sfs_db_end(err != 0) dooms the outer COMMIT */
	sqlite3_stmt *stmts[STMT__MAX];

	/* group commit; all under lock except the flusher's sleep */
	bool group;		/* units are savepoints of one open transaction */
	bool group_open;	/* that transaction has begun */
	unsigned group_units;	/* units released into it */
	uint64_t commits;	/* transactions committed (sfs_db_commits) */
	pthread_t flusher;
	bool flusher_started;
	unsigned interval_ms;
	pthread_mutex_t flush_lock; /* guards stopping; flush_cond sleeps on it */
	pthread_cond_t flush_cond;
	bool stopping;

	int (*precommit)(void *arg); /* sfs_db_set_precommit */
	void *precommit_arg;
};

/* The records of a key, and a job row's text lengths in bytes (length() of TEXT
 * counts characters, and rows of older versions hold TEXT): each in two statements. */
#define SQL_KEY_RECORDS                                                                            \
	"SELECT r.id, r.result, r.created FROM key_records kr"                                     \
	" JOIN records r ON r.id = kr.record WHERE kr.key = ?"
#define SQL_JOB_TEXT_LENS                                                                          \
	"length(CAST(status AS BLOB)), length(CAST(status_json AS BLOB)),"                         \
	" length(CAST(vertices AS BLOB)), length(CAST(spec AS BLOB))"

/* SFS_DB_BATCH_FEW rows of STMT_BLOB_REF_INSERT_ROWS and of STMT_BLOBROW_ABSENT_ROWS;
 * four of these make SFS_DB_BATCH_ROWS. */
#define REF_ROWS_4 "(?, ?, ?), (?, ?, ?), (?, ?, ?), (?, ?, ?)"
#define HEX_ROWS_4 "(?), (?), (?), (?)"
#define SQL_REF_INSERT "INSERT OR IGNORE INTO blob_refs(owner, blob, size) VALUES"
#define SQL_ABSENT_FROM "SELECT count(*) FROM (VALUES "
#define SQL_ABSENT_WHERE ") v WHERE NOT EXISTS(SELECT 1 FROM blobs WHERE hex = v.column1)"
_Static_assert(SFS_DB_BATCH_FEW == 4, "the _FEW statements have 4 rows");
_Static_assert(SFS_DB_BATCH_ROWS == 16, "the _ROWS statements have 16 rows");

static const char *const stmt_sql[STMT__MAX] = {
    [STMT_KEY_EXISTS] = "SELECT EXISTS(SELECT 1 FROM key_records WHERE key = ?1)"
			" OR EXISTS(SELECT 1 FROM links WHERE src = ?1)",
    [STMT_KEY_WALK] = "SELECT key FROM key_records UNION SELECT src FROM links"
		      " UNION SELECT target FROM links",
    [STMT_KEY_RESULTS] = SQL_KEY_RECORDS " ORDER BY r.created, r.id",
    [STMT_KEY_LOAD] = SQL_KEY_RECORDS " AND kr.record = ?",
    [STMT_RECORD_INSERT] = "INSERT OR IGNORE INTO records(id, result, created) VALUES(?, ?, ?)",
    [STMT_KEY_RECORD_INSERT] = "INSERT OR IGNORE INTO key_records(key, record) VALUES(?, ?)",
    [STMT_KEY_RECORD_DELETE_BY_RECORD] = "DELETE FROM key_records WHERE record = ?",
    [STMT_KEYS_BY_RECORD] = "SELECT key FROM key_records WHERE record = ? ORDER BY key",
    [STMT_RECORD_DELETE] = "DELETE FROM records WHERE id = ?",
    [STMT_LINK_INSERT] = "INSERT OR IGNORE INTO links(src, input, output, digest, selector,"
			 " target) VALUES(?, ?, ?, ?, ?, ?)",
    [STMT_LINK_WALK] = "SELECT target FROM links WHERE src = ? AND input = ? AND output = ?"
		       " AND digest = ? AND selector = ? ORDER BY target",
    [STMT_LINK_HAS] = "SELECT 1 FROM links WHERE src = ? AND input = ? AND output = ?"
		      " AND digest = ? AND selector = ? AND target = ?",
    [STMT_LINK_ALL] = "SELECT input, output, digest, selector, target FROM links"
		      " WHERE src = ? ORDER BY input, output, digest, selector, target",
    [STMT_BACKLINK_WALK] = "SELECT src, input, output, digest, selector FROM links"
			   " WHERE target = ? ORDER BY src, input, output, digest, selector",
    [STMT_LINK_DELETE_SRC_TARGET] = "DELETE FROM links WHERE src = ? AND target = ?",
    [STMT_RESULT_UPSERT] = "INSERT INTO results(id, size, created, last_used)"
			   " VALUES(?1, ?2, ?3, ?3) ON CONFLICT(id) DO UPDATE SET"
			   " size = excluded.size,"
			   " last_used = max(last_used, excluded.last_used)",
    [STMT_RESULT_TOUCH] = "UPDATE results SET last_used = max(last_used, ?2) WHERE id = ?1",
    [STMT_RESULT_GET] = "SELECT size, created, last_used FROM results WHERE id = ?",
    [STMT_JOB_INSERT] = "INSERT OR REPLACE INTO jobs(id, uid, gid, state, spec, error, result,"
			" created, ended, status, status_json, vertices)"
			" VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [STMT_JOB_DELETE] = "DELETE FROM jobs WHERE id = ?",
    /* the texts stay in the row: history_read_stream reads them */
    [STMT_JOB_LIST] = "SELECT id, uid, gid, state, spec IS NOT NULL, error, result, created, "
		      "ended, " SQL_JOB_TEXT_LENS " FROM jobs ORDER BY id",
    [STMT_JOB_INTERRUPT] = "UPDATE jobs SET state = 'cancelled', error = ?2, ended = ?1"
			   " WHERE state IN ('pending', 'running')",
    [STMT_META_GET] = "SELECT value FROM meta WHERE name = ?",
    [STMT_META_SET] = "INSERT OR REPLACE INTO meta(name, value) VALUES(?, ?)",
    [STMT_JOB_DELETE_UNSUBMITTED] = "DELETE FROM jobs WHERE state = 'pending' AND spec IS NULL",
    [STMT_KEYINFO_SET] = "INSERT OR IGNORE INTO keys(id, digest, output) VALUES(?, ?, ?)",
    [STMT_KEYINFO_GET] = "SELECT digest, output FROM keys WHERE id = ?",
    [STMT_LINK_BY_DIGEST] = "SELECT target FROM links WHERE digest = ? AND output = ?"
			    " LIMIT 1",
    [STMT_LAYER_GET] = "SELECT blob, size, diff_id FROM layers WHERE result = ?",
    [STMT_JOB_TEXT_LENS] = "SELECT " SQL_JOB_TEXT_LENS " FROM jobs WHERE id = ?",
    [STMT_LAYER_PUT] = "INSERT OR REPLACE INTO layers(result, blob, size, diff_id)"
		       " VALUES(?, ?, ?, ?)",
    [STMT_JOB_SET_ERROR] = "UPDATE jobs SET error = ?2 WHERE id = ?1",
    /* owner: results.num; blob: the 32 bytes of its digest (db.h) */
    [STMT_BLOB_REF_INSERT] = "INSERT OR IGNORE INTO blob_refs(owner, blob, size) VALUES(?, ?, ?)",
    /* a result's rows a statement at a time, not a row at a time (prune.c) */
    [STMT_BLOB_REF_INSERT_ROWS] = SQL_REF_INSERT REF_ROWS_4 ", " REF_ROWS_4 ", " REF_ROWS_4
				  ", " REF_ROWS_4,
    [STMT_BLOB_REF_INSERT_FEW] = SQL_REF_INSERT REF_ROWS_4,
    [STMT_BLOB_REFS_OF] = "SELECT lower(hex(blob)), size FROM blob_refs"
			  " WHERE owner = (SELECT num FROM results WHERE id = ?) ORDER BY blob",
    [STMT_BLOB_REFS_DELETE] = "DELETE FROM blob_refs"
			      " WHERE owner = (SELECT num FROM results WHERE id = ?)",
    [STMT_BLOB_REFERENCED] = "SELECT EXISTS(SELECT 1 FROM blob_refs WHERE blob = ?)",
    [STMT_RESULT_NUM] = "SELECT num FROM results WHERE id = ?",
    [STMT_RESULT_DELETE] = "DELETE FROM results WHERE id = ?",
    [STMT_LAYER_DELETE] = "DELETE FROM layers WHERE result = ?",
    [STMT_RECORDS_OF_RESULT] = "SELECT id FROM records WHERE result = ? ORDER BY id",
    [STMT_GC_INTENT_ADD] = "INSERT OR IGNORE INTO gc_intent(blob) VALUES(?)",
    [STMT_GC_INTENT_DEL] = "DELETE FROM gc_intent WHERE blob = ?",
    [STMT_GC_INTENT_LIST] = "SELECT blob FROM gc_intent ORDER BY blob",
    /* least recently used first; ties by id so a dry run and the prune agree */
    [STMT_RESULTS_LRU] = "SELECT id, last_used FROM results"
			 " WHERE id NOT IN (SELECT result FROM gc_roots) ORDER BY last_used, id",
    [STMT_PIN_ADD] = "INSERT OR IGNORE INTO gc_roots(job, result) VALUES(?, ?)",
    [STMT_PIN_CLEAR] = "DELETE FROM gc_roots WHERE job = ?",
    [STMT_PINNED] = "SELECT EXISTS(SELECT 1 FROM gc_roots WHERE result = ?)",
    [STMT_RECORD_DESCRIBE] = "UPDATE records SET op = ?, name = ? WHERE id = ?",
    [STMT_RESULT_HAS_OP] = "SELECT EXISTS(SELECT 1 FROM records WHERE result = ? AND op = ?)",
    [STMT_JOB_PINNED] = "SELECT EXISTS(SELECT 1 FROM gc_roots WHERE job = ?)",
    [STMT_BLOBROW_PUT] = "INSERT OR REPLACE INTO blobs(hex, size, data) VALUES(?, ?, ?)",
    /* length() of a BLOB reads no overflow page */
    [STMT_BLOBROW_SIZE] = "SELECT length(data) FROM blobs WHERE hex = ?",
    [STMT_BLOBROW_GET] = "SELECT data FROM blobs WHERE hex = ?",
    [STMT_BLOBROW_DELETE] = "DELETE FROM blobs WHERE hex = ?",
    [STMT_BLOBROW_NAMES] = "SELECT hex FROM blobs",
    [STMT_BLOBROW_USAGE] = "SELECT count(*), total(size) FROM blobs INDEXED BY blobs_by_size",
    [STMT_BLOBROW_HAS] = "SELECT 1 FROM blobs WHERE hex = ?",
    /* the probes of STMT_BLOBROW_HAS, 16 a statement (blobrows_has_all) */
    [STMT_BLOBROW_ABSENT_ROWS] = SQL_ABSENT_FROM HEX_ROWS_4 ", " HEX_ROWS_4 ", " HEX_ROWS_4
				 ", " HEX_ROWS_4 SQL_ABSENT_WHERE,
    [STMT_BLOBROW_ABSENT_FEW] = SQL_ABSENT_FROM HEX_ROWS_4 SQL_ABSENT_WHERE,
    /* a key's records unsorted (no temporary b-tree): whether it has a loadable one */
    [STMT_KEY_RESULTS_ANY] = SQL_KEY_RECORDS,
    /* whether any imported (record-form, output -2) link is stored: one scan, at the
     * first walk of a daemon's life (keystore_sqlite.c; a partial index on it would
     * have SQLite prepare every statement on links again at each new output bound) */
    [STMT_LINK_RECORD_FORM_ANY] = "SELECT EXISTS(SELECT 1 FROM links WHERE output = -2)",
    [STMT_UNIT_SAVEPOINT] = "SAVEPOINT unit",
    [STMT_UNIT_RELEASE] = "RELEASE unit",
    [STMT_UNIT_ROLLBACK] = "ROLLBACK TO unit",
};

/* Every lookup the statements above make has an index: links by their full
 * identity (the primary key, also serving the src-only lookups), links by
 * target (backlinks, GC), key_records by key (primary key) and by record. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, result TEXT NOT NULL,"
    " created INTEGER NOT NULL, op TEXT, name TEXT);"
    "CREATE TABLE IF NOT EXISTS key_records(key TEXT NOT NULL, record TEXT NOT NULL,"
    " PRIMARY KEY(key, record)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS key_records_by_record ON key_records(record);"
    "CREATE TABLE IF NOT EXISTS links(src TEXT NOT NULL, input INTEGER NOT NULL,"
    " output INTEGER NOT NULL, digest TEXT NOT NULL, selector TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " PRIMARY KEY(src, input, output, digest, selector, target)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS links_by_target ON links(target);"
    "CREATE INDEX IF NOT EXISTS records_by_result ON records(result);"
    /* num: the result's number, max + 1 for a new one and kept by VACUUM (it is the
     * INTEGER PRIMARY KEY), so blob_refs's owners grow with each new result.  The
     * newest result's number is handed out again once it is deleted: safe because
     * its blob_refs rows go in the same unit as its row (prune.h) */
    "CREATE TABLE IF NOT EXISTS results(num INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " size INTEGER NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, uid INTEGER NOT NULL,"
    " gid INTEGER NOT NULL, state TEXT NOT NULL, spec BLOB, error TEXT, result TEXT,"
    " created INTEGER NOT NULL, ended INTEGER NOT NULL, status BLOB, status_json BLOB,"
    " vertices TEXT);"
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state);"
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS keys(id TEXT PRIMARY KEY, digest TEXT NOT NULL,"
    " output INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS links_by_digest ON links(digest, output);"
    "CREATE TABLE IF NOT EXISTS layers(result TEXT PRIMARY KEY, blob TEXT NOT NULL,"
    " size INTEGER NOT NULL, diff_id TEXT NOT NULL) WITHOUT ROWID;"
    /* ~45 bytes a row: a new result's rows append to the primary key, and each
     * blob's run in the index (blob, size, owner) grows at its end; the index
     * covers the scans by blob (cache_referenced, du) */
    "CREATE TABLE IF NOT EXISTS blob_refs(owner INTEGER NOT NULL, blob BLOB NOT NULL,"
    " size INTEGER NOT NULL, PRIMARY KEY(owner, blob)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS blob_refs_by_blob ON blob_refs(blob, size);"
    "CREATE TABLE IF NOT EXISTS gc_intent(blob TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS gc_roots(job INTEGER NOT NULL, result TEXT NOT NULL,"
    " PRIMARY KEY(job, result)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS gc_roots_by_result ON gc_roots(result);"
    "CREATE INDEX IF NOT EXISTS results_by_last_used ON results(last_used, id);"

    /* small blobs; the size index lets cache/stats total them without reading them */
    "CREATE TABLE IF NOT EXISTS blobs(hex TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS blobs_by_size ON blobs(size);";

static void stop_flusher(struct sfs_db *db);

/* The errno of a failed SQLite call: a full disk is ENOSPC, which the user can act on. */
static int db_errno(int rc)
{
	return (rc & 0xff) == SQLITE_FULL ? ENOSPC : EIO;
}

static int db_exec(struct sfs_db *db, const char *sql, char **ret_msg)
{
	char *err = NULL;
	int rc = sqlite3_exec(db->conn, sql, NULL, NULL, &err);

	if (rc == SQLITE_OK)
		return 0;
	sfs_log(SFS_LOG_ERR, "sqlite: %s in \"%s\"", err ? err : sqlite3_errstr(rc), sql);
	rc = sfs_errf(ret_msg, db_errno(rc), "database: %s", err ? err : sqlite3_errstr(rc));
	sqlite3_free(err);
	return rc;
}

static int db_check_version(struct sfs_db *db, char **ret_msg)
{
	sqlite3_stmt *st = NULL;
	int version = 0;

	if (sqlite3_prepare_v2(db->conn, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return sfs_errf(ret_msg, EIO, "database: %s", sqlite3_errmsg(db->conn));
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SFS_DB_SCHEMA_VERSION)
		return sfs_errf(ret_msg, EPROTO,
				"database schema version %d is newer than this solverfs (%d)",
				version, SFS_DB_SCHEMA_VERSION);
	if (version == SFS_DB_SCHEMA_VERSION)
		return 0;
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SFS_DB_SCHEMA_VERSION);
	return db_exec(db, sql, ret_msg);
}

/* Columns added after a table was first shipped: an older database gets them
 * here (NULL in its rows), so it stays readable, and an older solverfs still
 * reads a newer database (it names the columns it knows). */
static const struct {
	const char *table, *column, *type;
} added_columns[] = {
    {"records", "op", "TEXT"},
    {"records", "name", "TEXT"},
};

static int db_has_column(struct sfs_db *db, const char *table, const char *column, bool *ret)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db->conn,
			       "SELECT EXISTS(SELECT 1 FROM pragma_table_info(?) WHERE name = ?)", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*ret = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

static int db_migrate(struct sfs_db *db, char **ret_msg)
{
	for (size_t i = 0; i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
		char sql[160];
		bool has = false;
		int r = db_has_column(db, added_columns[i].table, added_columns[i].column, &has);
		if (r < 0)
			return sfs_errf(ret_msg, EIO, "database: %s", sqlite3_errmsg(db->conn));
		if (has)
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", added_columns[i].table,
			 added_columns[i].column, added_columns[i].type);
		r = db_exec(db, sql, ret_msg);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One integer a statement gives (a pragma, an EXISTS). */
static int db_query_int(struct sfs_db *db, const char *sql, int *ret, char **ret_msg)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) != SQLITE_OK)
		return sfs_errf(ret_msg, EIO, "database: %s", sqlite3_errmsg(db->conn));
	rc = sqlite3_step(st);
	*ret = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sfs_errf(ret_msg, EIO, "database: %s", sqlite3_errmsg(db->conn));
	return 0;
}

/*
 * Schema 3's results and blob_refs (db.h) from an older store's: results had no
 * num (its rowid is implicit, which VACUUM may renumber), blob_refs named owners
 * by their id and blobs by their hex (TEXT, ~140 bytes a row).  The old tables
 * are renamed first (their indexes dropped, so schema_sql makes the new ones),
 * then copied into the new ones and dropped (db_migrate_refs_copy): all inside
 * the open's transaction, so a kill -9 leaves the old schema and the next open
 * migrates again.  A row of an owner with no results row names nothing the
 * cache keeps and is not copied.
 */
struct refs_migration {
	int results, refs; /* the old table is there, renamed *_v2 */
};

static int db_migrate_refs_prepare(struct sfs_db *db, struct refs_migration *m, char **ret_msg)
{
	int r = db_query_int(db,
			     "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table'"
			     " AND name = 'results') AND NOT EXISTS(SELECT 1 FROM"
			     " pragma_table_info('results') WHERE name = 'num')",
			     &m->results, ret_msg);

	if (r == 0)
		r = db_query_int(db,
				 "SELECT EXISTS(SELECT 1 FROM pragma_table_info('blob_refs')"
				 " WHERE name = 'owner' AND type = 'TEXT')",
				 &m->refs, ret_msg);
	if (r == 0 && m->results)
		r = db_exec(db,
			    "DROP INDEX IF EXISTS results_by_last_used;"
			    " ALTER TABLE results RENAME TO results_v2",
			    ret_msg);
	if (r == 0 && m->refs)
		r = db_exec(db,
			    "DROP INDEX IF EXISTS blob_refs_by_blob;"
			    " ALTER TABLE blob_refs RENAME TO blob_refs_v2",
			    ret_msg);
	return r;
}

static int db_migrate_refs_copy(struct sfs_db *db, const struct refs_migration *m, char **ret_msg)
{
	int r = 0;

	if (m->results)
		r = db_exec(db,
			    "INSERT INTO results(num, id, size, created, last_used)"
			    " SELECT rowid, id, size, created, last_used FROM results_v2"
			    " ORDER BY rowid; DROP TABLE results_v2",
			    ret_msg);
	if (r == 0 && m->refs)
		r = db_exec(db,
			    "INSERT OR IGNORE INTO blob_refs(owner, blob, size)"
			    " SELECT r.num, sfs_unhex(b.blob), b.size FROM blob_refs_v2 b"
			    " JOIN results r ON r.id = b.owner WHERE sfs_unhex(b.blob) IS NOT NULL"
			    " ORDER BY 1, 2; DROP TABLE blob_refs_v2",
			    ret_msg);
	if (r == 0 && (m->results || m->refs))
		sfs_log(SFS_LOG_INFO, "database: results and blob references migrated to schema %d",
			SFS_DB_SCHEMA_VERSION);
	return r;
}

/* sfs_unhex(s): the 32 bytes of a hex or "sha256:" digest, NULL for anything
 * else: blob_refs.blob in SQL (db.h). */
static void sql_unhex(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *s = (const char *)sqlite3_value_text(argv[0]);
	unsigned char md[SFS_SHA256_LEN];

	(void)argc;
	if (s && strncmp(s, "sha256:", 7) == 0)
		s += 7;
	if (s && sfs_hex_to_bytes(s, md) == 0)
		sqlite3_result_blob(ctx, md, sizeof(md), SQLITE_TRANSIENT);
	else
		sqlite3_result_null(ctx);
}

static int db_setup(struct sfs_db *db, char **ret_msg)
{
	struct refs_migration m = {0};
	int r;

	sqlite3_busy_timeout(db->conn, 5000);
	if (sqlite3_create_function(db->conn, "sfs_unhex", 1,
				    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
				    sql_unhex, NULL, NULL) != SQLITE_OK)
		return sfs_errf(ret_msg, EIO, "database: %s", sqlite3_errmsg(db->conn));
	r = db_exec(db,
		    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		    " PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;"
		    " PRAGMA journal_size_limit = 33554432;",
		    ret_msg);
	if (r == 0 && sqlite3_wal_autocheckpoint(db->conn, SFS_DB_WAL_PAGES) != SQLITE_OK)
		r = sfs_errf(ret_msg, EIO, "database: %s", sqlite3_errmsg(db->conn));
	if (r < 0)
		return r;
	r = db_exec(db, "BEGIN IMMEDIATE", ret_msg);
	if (r < 0)
		return r;
	r = db_migrate_refs_prepare(db, &m, ret_msg);
	if (r == 0)
		r = db_exec(db, schema_sql, ret_msg);
	if (r == 0)
		r = db_migrate_refs_copy(db, &m, ret_msg);
	if (r == 0)
		r = db_check_version(db, ret_msg);
	if (r == 0)
		r = db_migrate(db, ret_msg);
	if (db_exec(db, r == 0 ? "COMMIT" : "ROLLBACK", r == 0 ? ret_msg : NULL) < 0 && r == 0)
		r = -EIO;
	return r;
}

int sfs_db_open(const char *path, struct sfs_db **ret, char **ret_msg)
{
	pthread_mutexattr_t attr;
	struct sfs_db *db;
	int rc, r;

	db = calloc(1, sizeof(*db));
	if (!db)
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&db->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&db->flush_lock, NULL);
	pthread_cond_init(&db->flush_cond, NULL);

	rc = sqlite3_open_v2(path, &db->conn,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		r = sfs_errf(ret_msg, EIO, "cannot open database %s: %s", path,
			     db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
		sfs_db_close(db);
		return r;
	}
	r = db_setup(db, ret_msg);
	if (r < 0) {
		sfs_err_prefix(ret_msg, r, "%s", path);
		sfs_db_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

struct sfs_db *sfs_db_close(struct sfs_db *db)
{
	if (!db)
		return NULL;
	stop_flusher(db);
	if (db->conn && sfs_db_sync(db) < 0)
		sfs_log(SFS_LOG_ERR, "sqlite: the last group of saves was not committed");
	for (int i = 0; i < STMT__MAX; i++)
		sqlite3_finalize(db->stmts[i]);
	if (db->conn && sqlite3_close(db->conn) != SQLITE_OK)
		sfs_log(SFS_LOG_ERR, "sqlite: close: %s", sqlite3_errmsg(db->conn));
	pthread_mutex_destroy(&db->lock);
	pthread_cond_destroy(&db->flush_cond);
	pthread_mutex_destroy(&db->flush_lock);
	free(db);
	return NULL;
}

void sfs_db_lock(struct sfs_db *db)
{
	pthread_mutex_lock(&db->lock);
}

void sfs_db_unlock(struct sfs_db *db)
{
	pthread_mutex_unlock(&db->lock);
}

/*
 * After an error: SQLite may have rolled back the whole transaction (disk full,
 * I/O error, out of memory), and the group with it.  Then the group is over,
 * and the next unit begins a new one.
 */
static void group_check_locked(struct sfs_db *db)
{
	if (!db->group_open || !sqlite3_get_autocommit(db->conn))
		return;
	if (db->group_units) /* a group that only read lost nothing */
		sfs_log(SFS_LOG_ERR, "sqlite: a group of %u saves was rolled back after an error",
			db->group_units);
	db->group_open = false;
	db->group_units = 0;
}

/* Whether the open transaction has written (or holds the write lock). */
static bool tx_writes(struct sfs_db *db)
{
	return sqlite3_txn_state(db->conn, NULL) == SQLITE_TXN_WRITE;
}

/*
 * A statement about to run outside any unit joins the group: one is begun
 * when none is open; lock held.  A failed BEGIN leaves the statement to
 * autocommit, as it would without group commit.
 */
static void group_join_locked(struct sfs_db *db)
{
	if (!db->group || db->tx_depth > 0 || !sqlite3_get_autocommit(db->conn))
		return;
	group_check_locked(db);
	if (db_exec(db, "BEGIN DEFERRED", NULL) == 0)
		db->group_open = true;
}

/* What must be durable before a COMMIT (sfs_db_set_precommit); lock held or not. */
static int run_precommit(struct sfs_db *db)
{
	int r = db->precommit ? db->precommit(db->precommit_arg) : 0;

	if (r < 0)
		sfs_log(SFS_LOG_ERR, "sqlite: not committing: the blobs it names: %s", strerror(-r));
	return r;
}

/* SQLite's commit hook: the same before a COMMIT that is not ours (a statement
 * run outside any unit autocommits); non-zero turns the commit into a rollback. */
static int commit_hook(void *arg)
{
	return run_precommit(arg) < 0;
}

void sfs_db_set_precommit(struct sfs_db *db, int (*fn)(void *arg), void *arg)
{
	sfs_db_lock(db);
	db->precommit = fn;
	db->precommit_arg = arg;
	sqlite3_commit_hook(db->conn, fn ? commit_hook : NULL, db);
	sfs_db_unlock(db);
}

/* Commits the open group, if any; lock held, no unit open.  A busy database
 * keeps the group for the next try; another error loses it. */
static int group_commit_locked(struct sfs_db *db)
{
	group_check_locked(db);
	if (!db->group_open)
		return 0;
	bool wrote = tx_writes(db); /* a read-only COMMIT names no blob, counts no commit */
	int r = wrote ? run_precommit(db) : 0;
	if (r < 0)
		return r; /* the group stays open for the next try */
	int rc = sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return -EAGAIN;
	if (rc != SQLITE_OK) {
		sfs_log(SFS_LOG_ERR, "sqlite: a group of %u saves was lost: COMMIT: %s",
			db->group_units, sqlite3_errmsg(db->conn));
		if (!sqlite3_get_autocommit(db->conn))
			db_exec(db, "ROLLBACK", NULL);
	} else {
		db->commits += wrote;
	}
	db->group_open = false;
	db->group_units = 0;
	return rc == SQLITE_OK ? 0 : -db_errno(rc);
}

int sfs_db_sync(struct sfs_db *db)
{
	int r = 0;

	/* the slow part (a syncfs) without the lock; what is put meanwhile is
	 * seen by the locked call in group_commit_locked */
	if (db->precommit)
		run_precommit(db);
	sfs_db_lock(db);
	if (db->tx_depth == 0)
		r = group_commit_locked(db);
	sfs_db_unlock(db);
	return r;
}

/* Runs one of the unit statements (no bindings, no rows); lock held.  A vertex's
 * save is several units: sqlite3_exec would parse each statement each time. */
static int unit_stmt(struct sfs_db *db, enum sfs_stmt id)
{
	sqlite3_stmt *st = sfs_db_stmt(db, id);
	return st ? sfs_db_step_done(db, id, st) : -EIO;
}

/* Opens the unit of work at depth 0: a transaction, or a savepoint in the group. */
static int unit_begin(struct sfs_db *db)
{
	int r;

	if (!db->group)
		return db_exec(db, "BEGIN IMMEDIATE", NULL);
	group_check_locked(db);
	if (db->group_open && !tx_writes(db)) {
		/* only read so far: its COMMIT writes nothing and cannot lose a save */
		r = db_exec(db, "COMMIT", NULL);
		if (r < 0)
			return r;
		db->group_open = false;
	}
	if (!db->group_open) {
		r = db_exec(db, "BEGIN IMMEDIATE", NULL);
		if (r < 0)
			return r;
		db->group_open = true;
	}
	r = unit_stmt(db, STMT_UNIT_SAVEPOINT);
	if (r < 0)
		group_check_locked(db);
	return r;
}

/* Undoes the unit's savepoint (the group's earlier units stay). */
static void unit_rollback(struct sfs_db *db)
{
	if (sqlite3_get_autocommit(db->conn)) { /* SQLite rolled back the whole group */
		group_check_locked(db);
		return;
	}
	unit_stmt(db, STMT_UNIT_ROLLBACK);
	unit_stmt(db, STMT_UNIT_RELEASE);
	group_check_locked(db);
}

/* Ends the unit of work at depth 0. */
static int unit_end(struct sfs_db *db, bool ok)
{
	int r;

	if (!db->group) {
		if (!ok) {
			db_exec(db, "ROLLBACK", NULL);
			return -EIO;
		}
		r = run_precommit(db);
		if (r == 0)
			r = db_exec(db, "COMMIT", NULL);
		if (r < 0)
			db_exec(db, "ROLLBACK", NULL);
		else
			db->commits++;
		return r;
	}
	if (!ok) {
		unit_rollback(db);
		return -EIO; /* the caller's err is what sfs_db_end reports */
	}
	r = unit_stmt(db, STMT_UNIT_RELEASE);
	if (r < 0) {
		unit_rollback(db);
		return r;
	}
	/* this unit is in the group now: a failed commit is the group's, logged */
	if (++db->group_units >= SFS_DB_GROUP_MAX)
		group_commit_locked(db);
	return 0;
}

int sfs_db_begin(struct sfs_db *db)
{
	if (db->tx_depth == 0) {
		int r = unit_begin(db);
		if (r < 0)
			return r;
		db->tx_failed = false;
	}
	db->tx_depth++;
	return 0;
}

int sfs_db_end(struct sfs_db *db, int err)
{
	if (db->tx_depth <= 0) {
		sfs_log(SFS_LOG_ERR, "sqlite: sfs_db_end without sfs_db_begin");
		return err ? err : -EINVAL;
	}
	if (err)
		db->tx_failed = true;
	if (--db->tx_depth > 0)
		return err;
	bool ok = !db->tx_failed;
	db->tx_failed = false;
	int r = unit_end(db, ok);
	return err ? err : r;
}

uint64_t sfs_db_commits(struct sfs_db *db)
{
	sfs_db_lock(db);
	uint64_t n = db->commits;
	sfs_db_unlock(db);
	return n;
}

/* The flusher: commits the group every interval_ms until stopped. */
static void *flusher_main(void *arg)
{
	struct sfs_db *db = arg;
	bool stop = false;

	while (!stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)db->interval_ms * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&db->flush_lock);
		while (!db->stopping &&
		       pthread_cond_timedwait(&db->flush_cond, &db->flush_lock, &until) == 0)
			;
		stop = db->stopping;
		pthread_mutex_unlock(&db->flush_lock);
		sfs_db_sync(db);
	}
	return NULL;
}

int sfs_db_group_commit(struct sfs_db *db, unsigned interval_ms)
{
	sfs_db_lock(db);
	if (db->group || interval_ms == 0) {
		sfs_db_unlock(db);
		return interval_ms ? -EBUSY : -EINVAL;
	}
	db->interval_ms = interval_ms;
	db->group = true;
	sfs_db_unlock(db);
	int rc = pthread_create(&db->flusher, NULL, flusher_main, db);
	if (rc != 0) {
		sfs_db_lock(db);
		db->group = false;
		sfs_db_unlock(db);
		return -rc;
	}
	db->flusher_started = true;
	return 0;
}

static void stop_flusher(struct sfs_db *db)
{
	if (!db->flusher_started)
		return;
	pthread_mutex_lock(&db->flush_lock);
	db->stopping = true;
	pthread_cond_signal(&db->flush_cond);
	pthread_mutex_unlock(&db->flush_lock);
	pthread_join(db->flusher, NULL);
	db->flusher_started = false;
}

size_t sfs_db_batch_rows(size_t n)
{
	/* a statement costs about two rows' probes: a full batch once it has fewer
	 * repeats than the few-row statements it replaces */
	return n > SFS_DB_BATCH_ROWS - SFS_DB_BATCH_FEW ? SFS_DB_BATCH_ROWS : SFS_DB_BATCH_FEW;
}

sqlite3_stmt *sfs_db_stmt(struct sfs_db *db, enum sfs_stmt id)
{
	sqlite3_stmt **st = &db->stmts[id];

	group_join_locked(db);

	if (!*st) {
		if (sqlite3_prepare_v3(db->conn, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, st,
				       NULL) != SQLITE_OK) {
			sfs_log(SFS_LOG_ERR, "sqlite: %s in \"%s\"", sqlite3_errmsg(db->conn),
				stmt_sql[id]);
			*st = NULL;
			return NULL;
		}
		return *st;
	}
	sqlite3_reset(*st);
	sqlite3_clear_bindings(*st);
	return *st;
}

int sfs_db_step_done(struct sfs_db *db, enum sfs_stmt id, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		return sfs_db_error(db, id, rc);
	sqlite3_reset(st);
	return 0;
}

int sfs_db_error(struct sfs_db *db, enum sfs_stmt id, int rc)
{
	sfs_log(SFS_LOG_ERR, "sqlite: %s (%s) in \"%s\"", sqlite3_errmsg(db->conn),
		sqlite3_errstr(rc), stmt_sql[id]);
	if (db->stmts[id])
		sqlite3_reset(db->stmts[id]);
	if (db->tx_depth == 0)
		group_check_locked(db); /* SQLite may have rolled the group back */
	return -db_errno(rc);
}

sqlite3 *sfs_db_handle(struct sfs_db *db)
{
	return db->conn;
}
