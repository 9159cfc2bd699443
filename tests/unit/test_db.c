/*
 * test_db.c — units of work and group commit: what a second connection to the
 * same file sees (what would survive a crash), savepoint rollback of a failed
 * unit, the flusher, sfs_db_sync, commit at close, a job's history durable
 * at once under group commit, and reads and loose writes inside the group.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "history.h"
#include "tap.h"

struct fixture {
	char path[512];
	struct sfs_db *db;
	sqlite3 *peer; /* a second connection: sees only what was committed */
};

static void fixture_open(struct fixture *f)
{
	snprintf(f->path, sizeof(f->path), "%s/solverfs.db", tap_tmpdir());
	f->db = NULL;
	CHECK_EQ_INT(sfs_db_open(f->path, &f->db, NULL), 0);
	CHECK_EQ_INT(sqlite3_open_v2(f->path, &f->peer, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
}

static void fixture_close(struct fixture *f)
{
	sfs_db_close(f->db);
	sqlite3_close(f->peer);
}

/* Sets meta name = value in a unit of its own; fail makes the unit fail after
 * its write. */
static int put_unit(struct sfs_db *db, const char *name, const char *value, bool fail)
{
	sfs_db_lock(db);
	int r = sfs_db_begin(db);
	if (r == 0) {
		int err = -EIO;
		sqlite3_stmt *st = sfs_db_stmt(db, STMT_META_SET);
		if (st) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
			err = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
		}
		r = sfs_db_end(db, err ? err : fail ? -EINVAL : 0);
	}
	sfs_db_unlock(db);
	return r;
}

/* How many meta rows named name the peer connection sees. */
static int peer_count(sqlite3 *peer, const char *name)
{
	sqlite3_stmt *st = NULL;
	int n = -1;

	if (sqlite3_prepare_v2(peer, "SELECT count(*) FROM meta WHERE name = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Reads meta name through the statement table, outside any unit: 1 when the row
 * is there, 0 when not, -1 on error. */
static int read_meta(struct sfs_db *db, const char *name)
{
	sfs_db_lock(db);
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_META_GET);
	int n = -1;
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		n = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return n;
}

/* Whether the connection is inside a transaction (not autocommitting). */
static bool in_tx(struct sfs_db *db)
{
	sfs_db_lock(db);
	bool r = !sqlite3_get_autocommit(sfs_db_handle(db));
	sfs_db_unlock(db);
	return r;
}

/* Under group commit a read outside any unit opens the group's transaction, read
 * only: sfs_db_sync ends it without counting a commit, and a unit after it still
 * commits what it wrote.  Without group commit a read autocommits as before. */
static void test_read_opens_group(void)
{
	struct fixture f;
	fixture_open(&f);
	CHECK_EQ_INT(read_meta(f.db, "nothing"), 0);
	CHECK(!in_tx(f.db)); /* no group: autocommit */
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 3600 * 1000), 0);
	uint64_t c0 = sfs_db_commits(f.db);
	CHECK_EQ_INT(read_meta(f.db, "nothing"), 0);
	CHECK(in_tx(f.db));
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK(!in_tx(f.db));
	CHECK_EQ_INT(sfs_db_commits(f.db), c0); /* a read-only COMMIT counts nothing */

	/* a read, then a unit: the unit's write commits at the next sync */
	CHECK_EQ_INT(read_meta(f.db, "nothing"), 0);
	CHECK_EQ_INT(put_unit(f.db, "after-read", "1", false), 0);
	CHECK_EQ_INT(read_meta(f.db, "after-read"), 1); /* its own write, in the group */
	CHECK_EQ_INT(peer_count(f.peer, "after-read"), 0);
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK_EQ_INT(sfs_db_commits(f.db), c0 + 1);
	CHECK_EQ_INT(peer_count(f.peer, "after-read"), 1);

	/* a failed unit in a group opened by a read rolls back alone */
	CHECK_EQ_INT(read_meta(f.db, "nothing"), 0);
	CHECK(put_unit(f.db, "failed", "1", true) < 0);
	CHECK_EQ_INT(put_unit(f.db, "kept", "1", false), 0);
	CHECK_EQ_INT(read_meta(f.db, "failed"), 0);
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK_EQ_INT(peer_count(f.peer, "failed"), 0);
	CHECK_EQ_INT(peer_count(f.peer, "kept"), 1);
	fixture_close(&f);
}

/* A write outside any unit joins the group and commits with it, its precommit
 * run first; a sync commits it at once. */
static int precommits;
static int count_precommit(void *arg)
{
	(void)arg;
	precommits++;
	return 0;
}

static void test_statement_write_joins_group(void)
{
	struct fixture f;
	fixture_open(&f);
	sfs_db_set_precommit(f.db, count_precommit, NULL);
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 3600 * 1000), 0);
	sfs_db_lock(f.db);
	sqlite3_stmt *st = sfs_db_stmt(f.db, STMT_META_SET);
	CHECK(st != NULL);
	if (st) {
		sqlite3_bind_text(st, 1, "loose", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, "1", -1, SQLITE_STATIC);
		CHECK_EQ_INT(sfs_db_step_done(f.db, STMT_META_SET, st), 0);
	}
	sfs_db_unlock(f.db);
	CHECK_EQ_INT(peer_count(f.peer, "loose"), 0); /* in the group, not autocommitted */
	precommits = 0;
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK(precommits >= 1);
	CHECK_EQ_INT(peer_count(f.peer, "loose"), 1);
	/* a read-only group's COMMIT runs no precommit under the lock (sync runs
	 * it once before, unlocked) */
	CHECK_EQ_INT(read_meta(f.db, "loose"), 1);
	precommits = 0;
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK_EQ_INT(precommits, 1);
	fixture_close(&f);
}

/* The flusher commits a group a read opened: no read snapshot outlives an
 * interval (a checkpoint waits no longer for it). */
static void test_flusher_ends_read_group(void)
{
	struct fixture f;
	fixture_open(&f);
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 20), 0);
	CHECK_EQ_INT(read_meta(f.db, "nothing"), 0);
	bool open = true;
	for (int i = 0; i < 500 && open; i++) { /* at most 5 s */
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
		open = in_tx(f.db);
	}
	CHECK(!open);
	fixture_close(&f);
}

/* An error that makes SQLite roll the whole transaction back leaves the group
 * closed, not believed open: the next statement and the next unit begin anew.
 * (A disk-full or I/O error is what does it in life; the test ends the
 * transaction behind db.c's back with a ROLLBACK.) */
static void test_rolled_back_group_recovers(void)
{
	struct fixture f;
	fixture_open(&f);
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 3600 * 1000), 0);
	CHECK_EQ_INT(put_unit(f.db, "lost", "1", false), 0);
	sfs_db_lock(f.db);
	CHECK_EQ_INT(sqlite3_exec(sfs_db_handle(f.db), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sfs_db_unlock(f.db);
	CHECK_EQ_INT(read_meta(f.db, "lost"), 0);
	CHECK(in_tx(f.db)); /* the read began a new group */
	CHECK_EQ_INT(put_unit(f.db, "next", "1", false), 0);
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK_EQ_INT(peer_count(f.peer, "next"), 1);
	CHECK_EQ_INT(peer_count(f.peer, "lost"), 0);
	/* the same behind a unit: it begins a new group of its own */
	CHECK_EQ_INT(put_unit(f.db, "lost2", "1", false), 0);
	sfs_db_lock(f.db);
	CHECK_EQ_INT(sqlite3_exec(sfs_db_handle(f.db), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sfs_db_unlock(f.db);
	CHECK_EQ_INT(put_unit(f.db, "next2", "1", false), 0);
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK_EQ_INT(peer_count(f.peer, "next2"), 1);
	CHECK_EQ_INT(peer_count(f.peer, "lost2"), 0);
	CHECK(!in_tx(f.db));
	fixture_close(&f);
}

static void test_unit_commits_without_group(void)
{
	struct fixture f;
	fixture_open(&f);
	uint64_t c0 = sfs_db_commits(f.db);
	CHECK_EQ_INT(put_unit(f.db, "a", "1", false), 0);
	CHECK_EQ_INT(peer_count(f.peer, "a"), 1);
	CHECK_EQ_INT(sfs_db_commits(f.db), c0 + 1);
	CHECK(put_unit(f.db, "b", "1", true) < 0);
	CHECK_EQ_INT(peer_count(f.peer, "b"), 0);
	fixture_close(&f);
}

static void test_group_batches_units(void)
{
	struct fixture f;
	fixture_open(&f);
	/* a long interval: only sync and close commit here */
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 3600 * 1000), 0);
	CHECK(sfs_db_group_commit(f.db, 10) < 0); /* once */
	uint64_t c0 = sfs_db_commits(f.db);
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		CHECK_EQ_INT(put_unit(f.db, name, "v", false), 0);
	}
	CHECK_EQ_INT(peer_count(f.peer, "k0"), 0);  /* not committed yet */
	CHECK_EQ_INT(sfs_db_commits(f.db), c0);
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK_EQ_INT(sfs_db_commits(f.db), c0 + 1); /* 100 units, one commit */
	CHECK_EQ_INT(peer_count(f.peer, "k0"), 1);
	CHECK_EQ_INT(peer_count(f.peer, "k99"), 1);
	CHECK_EQ_INT(sfs_db_sync(f.db), 0); /* nothing open: no commit */
	CHECK_EQ_INT(sfs_db_commits(f.db), c0 + 1);
	fixture_close(&f);
}

static void test_failed_unit_rolls_back_alone(void)
{
	struct fixture f;
	fixture_open(&f);
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 3600 * 1000), 0);
	CHECK_EQ_INT(put_unit(f.db, "before", "1", false), 0);
	CHECK(put_unit(f.db, "failed", "1", true) < 0);
	CHECK_EQ_INT(put_unit(f.db, "after", "1", false), 0);
	CHECK_EQ_INT(sfs_db_sync(f.db), 0);
	CHECK_EQ_INT(peer_count(f.peer, "before"), 1);
	CHECK_EQ_INT(peer_count(f.peer, "failed"), 0);
	CHECK_EQ_INT(peer_count(f.peer, "after"), 1);
	fixture_close(&f);
}

static void test_flusher_and_close_commit(void)
{
	struct fixture f;
	fixture_open(&f);
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 20), 0);
	CHECK_EQ_INT(put_unit(f.db, "flushed", "1", false), 0);
	int seen = 0;
	for (int i = 0; i < 500 && !seen; i++) { /* at most 5 s */
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
		seen = peer_count(f.peer, "flushed");
	}
	CHECK_EQ_INT(seen, 1);
	sqlite3_close(f.peer);

	/* the close commits what the flusher has not */
	sfs_db_close(f.db);
	f.db = NULL;
	CHECK_EQ_INT(sfs_db_open(f.path, &f.db, NULL), 0);
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 3600 * 1000), 0);
	CHECK_EQ_INT(put_unit(f.db, "at-close", "1", false), 0);
	sfs_db_close(f.db);
	CHECK_EQ_INT(sqlite3_open_v2(f.path, &f.peer, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	CHECK_EQ_INT(peer_count(f.peer, "at-close"), 1);
	sqlite3_close(f.peer);
}

static void test_history_is_durable_at_once(void)
{
	struct fixture f;
	fixture_open(&f);
	CHECK_EQ_INT(sfs_db_group_commit(f.db, 3600 * 1000), 0);
	CHECK_EQ_INT(put_unit(f.db, "cache-save", "1", false), 0);
	struct history_job j = {.id = 7, .uid = 1, .gid = 1, .state = "done", .created = 1};
	CHECK_EQ_INT(history_save(f.db, &j), 0);
	/* the job row, and the cache saves before it, without waiting for the flusher */
	sqlite3_stmt *st = NULL;
	CHECK_EQ_INT(sqlite3_prepare_v2(f.peer, "SELECT state FROM jobs WHERE id = 7", -1, &st,
					NULL),
		     SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "done");
	sqlite3_finalize(st);
	CHECK_EQ_INT(peer_count(f.peer, "cache-save"), 1);
	fixture_close(&f);
}

int main(void)
{
	RUN(test_unit_commits_without_group);
	RUN(test_group_batches_units);
	RUN(test_failed_unit_rolls_back_alone);
	RUN(test_flusher_and_close_commit);
	RUN(test_history_is_durable_at_once);
	RUN(test_read_opens_group);
	RUN(test_statement_write_joins_group);
	RUN(test_flusher_ends_read_group);
	RUN(test_rolled_back_group_recovers);
	return tap_done();
}
