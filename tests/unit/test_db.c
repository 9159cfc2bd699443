/*
 * test_db.c — units of work and group commit: what a second connection to the
 * same file sees (what would survive a crash), savepoint rollback of a failed
 * unit, the flusher, sfs_db_sync, commit at close, and a job's history durable
 * at once under group commit.
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
	return tap_done();
}
