/*
 * results_index.c — listing and counting result trees and their records
 * (results_index.h).
 *
 * The listings and counts run rarely (a readdir of cache/results/) and prepare
 * their own statements; results_index_get, which every stat of a result runs,
 * uses db.c's prepared STMT_RESULT_GET.  Rows are copied into a string
 * vector under sfs_db_lock() and handed to the callback after it is dropped.
 *
 * Locking: the database lock, held only while stepping statements.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "db.h"
#include "err.h"
#include "results_index.h"
#include "strmap.h"
#include "strv.h"

/* Old rows kept seconds; everything newer is ns. */
static int64_t to_ns(int64_t t)
{
	return t > 0 && t < 100000000000LL ? t * 1000000000LL : t;
}

/* The stored form of a result id: "sha256:<hex>" for a bare hex. */
static void result_id(const char *id, char ret[SFS_DIGEST_SIZE])
{
	if (sfs_is_hex(id))
		snprintf(ret, SFS_DIGEST_SIZE, "sha256:%s", id);
	else
		sfs_copy_str(ret, SFS_DIGEST_SIZE, id);
}

static sqlite3_stmt *prepare(struct sfs_db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sfs_db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) {
		sfs_log(SFS_LOG_ERR, "results index: %s: %s", sql,
			sqlite3_errmsg(sfs_db_handle(db)));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Runs sql (one optional text binding) and collects column 0 of every row. */
static int query_strings(struct sfs_db *db, const char *sql, const char *bind, struct strv *sv)
{
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = -EIO;

	sfs_db_lock(db);
	st = prepare(db, sql);
	if (st) {
		r = 0;
		if (bind)
			sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
		while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *s = (const char *)sqlite3_column_text(st, 0);
			if (s)
				r = strv_push(sv, s);
		}
		if (r == 0 && rc != SQLITE_DONE)
			r = -EIO;
		sqlite3_finalize(st);
	}
	sfs_db_unlock(db);
	return r;
}

static int walk_strings(struct sfs_db *db, const char *sql, const char *bind, keystore_id_fn fn,
			void *arg)
{
	struct strv sv = {0};
	int r = query_strings(db, sql, bind, &sv);

	if (r == 0)
		r = strv_call(&sv, fn, arg);
	strv_release(&sv);
	return r;
}

int results_index_walk(struct sfs_db *db, keystore_id_fn fn, void *arg)
{
	return walk_strings(db, "SELECT id FROM results ORDER BY id", NULL, fn, arg);
}

int results_index_get(struct sfs_db *db, const char *id, struct results_index_entry *ret)
{
	char rid[SFS_DIGEST_SIZE];
	sqlite3_stmt *st;
	int rc, r = -EIO;

	result_id(id, rid);
	sfs_db_lock(db);
	st = sfs_db_stmt(db, STMT_RESULT_GET);
	if (st) {
		sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			memcpy(ret->id, rid, sizeof(rid));
			ret->size = (uint64_t)sqlite3_column_int64(st, 0);
			ret->created = to_ns(sqlite3_column_int64(st, 1));
			ret->last_used = to_ns(sqlite3_column_int64(st, 2));
			r = 0;
		} else {
			r = rc == SQLITE_DONE ? -ENOENT : -EIO;
		}
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}

int results_index_walk_records(struct sfs_db *db, const char *id, keystore_id_fn fn, void *arg)
{
	char rid[SFS_DIGEST_SIZE];

	result_id(id, rid);
	return walk_strings(db, "SELECT id FROM records WHERE result = ?1 ORDER BY id", rid, fn,
			    arg);
}

struct keys_walk {
	struct keystore *ks;
	struct strmap seen;
	struct strv keys;
};

static int add_key(const char *key, void *arg)
{
	struct keys_walk *w = arg;
	int r;

	if (strmap_get(&w->seen, key))
		return 0;
	r = strmap_put(&w->seen, key, (void *)1, NULL);
	return r < 0 ? r : strv_push(&w->keys, key);
}

static int keys_of_record(const char *record, void *arg)
{
	struct keys_walk *w = arg;

	return w->ks->ops->walk_ids_by_result(w->ks, record, add_key, w);
}

int results_index_walk_keys(struct sfs_db *db, struct keystore *ks, const char *id,
			    keystore_id_fn fn, void *arg)
{
	struct keys_walk w = {.ks = ks, .seen = STRMAP_INIT};
	int r = results_index_walk_records(db, id, keys_of_record, &w);

	if (r == 0)
		r = strv_call(&w.keys, fn, arg);
	strmap_release(&w.seen);
	strv_release(&w.keys);
	return r;
}

static int count_row(struct sfs_db *db, const char *sql, uint64_t *a, uint64_t *b)
{
	sqlite3_stmt *st = prepare(db, sql);
	int r = -EIO;

	if (!st)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*a = (uint64_t)sqlite3_column_int64(st, 0);
		if (b)
			*b = (uint64_t)sqlite3_column_int64(st, 1);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int results_index_counts(struct sfs_db *db, struct results_index_counts *ret)
{
	int r;

	*ret = (struct results_index_counts){0};
	sfs_db_lock(db);
	r = count_row(db, "SELECT count(*), coalesce(sum(size), 0) FROM results", &ret->results,
		      &ret->result_bytes);
	if (r == 0)
		r = count_row(db, "SELECT count(*) FROM records", &ret->records, NULL);
	if (r == 0)
		r = count_row(db,
			      "SELECT count(*) FROM (SELECT key FROM key_records"
			      " UNION SELECT src FROM links UNION SELECT target FROM links)",
			      &ret->keys, NULL);
	if (r == 0)
		r = count_row(db, "SELECT count(*) FROM links", &ret->links, NULL);
	sfs_db_unlock(db);
	return r;
}
