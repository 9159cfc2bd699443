/*
 * du.c — per-result disk use and record descriptions (du.h).
 *
 * One statement reads every result with its sizes, pin, op kinds and newest
 * described record; a second walks blob_refs by blob for the full prune's total.  Both
 * run under the database lock; the holds are checked after (their own lock).
 */
#include "du.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "holds.h"
#include "sha256.h"
#include "strmap.h"

#define SQL_DU                                                                                     \
	"SELECT r.id, r.created, r.last_used,"                                                     \
	" coalesce((SELECT sum(b.size) FROM blob_refs b WHERE b.owner = r.num), 0) AS sz,"         \
	" coalesce((SELECT sum(b.size) FROM blob_refs b WHERE b.owner = r.num AND NOT EXISTS"      \
	"  (SELECT 1 FROM blob_refs o WHERE o.blob = b.blob AND o.owner <> r.num)), 0),"           \
	" EXISTS(SELECT 1 FROM gc_roots g WHERE g.result = r.id),"                                 \
	" (SELECT group_concat(op, ',') FROM (SELECT DISTINCT op FROM records"                     \
	"  WHERE result = r.id AND op IS NOT NULL ORDER BY op)),"                                  \
	" (SELECT name FROM records WHERE result = r.id AND name IS NOT NULL"                      \
	"  ORDER BY created DESC, id DESC LIMIT 1)"                                                \
	" FROM results r ORDER BY sz DESC, r.id"

/* every reference by blob (the covering index), with its owner's id (NULL: no results row) */
#define SQL_REFS                                                                                   \
	"SELECT b.blob, b.size, r.id FROM blob_refs b LEFT JOIN results r ON r.num = b.owner"      \
	" ORDER BY b.blob"

int cache_record_describe(struct sfs_db *db, const char *record_id, const char *op,
			  const char *name)
{
	sfs_db_lock(db);
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_RECORD_DESCRIBE);
	int r = -EIO;

	if (st) {
		sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, record_id, -1, SQLITE_STATIC);
		r = sfs_db_step_done(db, STMT_RECORD_DESCRIBE, st);
	}
	sfs_db_unlock(db);
	return r;
}

static sqlite3_stmt *prepare(struct sfs_db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sfs_db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) {
		sfs_log(SFS_LOG_ERR, "du: %s: %s", sql, sqlite3_errmsg(sfs_db_handle(db)));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static char *dup_col(sqlite3_stmt *st, int col, int *r)
{
	const char *s = (const char *)sqlite3_column_text(st, col);
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*r = -ENOMEM;
	return d;
}

static int read_entry(sqlite3_stmt *st, struct cache_du *du)
{
	int r = sfs_grow((void **)&du->v, &du->cap, du->n + 1, sizeof(*du->v));
	const char *id = (const char *)sqlite3_column_text(st, 0);

	if (r < 0)
		return r;
	struct cache_du_entry *e = &du->v[du->n];
	*e = (struct cache_du_entry){0};
	sfs_copy_str(e->id, sizeof(e->id), id ? id : "");
	e->created = sqlite3_column_int64(st, 1);
	e->last_used = sqlite3_column_int64(st, 2);
	e->size = (uint64_t)sqlite3_column_int64(st, 3);
	e->reclaimable = (uint64_t)sqlite3_column_int64(st, 4);
	e->pinned = sqlite3_column_int(st, 5) != 0;
	e->op = dup_col(st, 6, &r);
	e->name = dup_col(st, 7, &r);
	du->n++;
	return r;
}

static int read_entries(struct sfs_db *db, struct cache_du *du)
{
	sqlite3_stmt *st = prepare(db, SQL_DU);
	int rc = SQLITE_DONE, r = 0;

	if (!st)
		return -EIO;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = read_entry(st, du);
	if (r == 0 && rc != SQLITE_DONE) {
		sfs_log(SFS_LOG_ERR, "du: %s", sqlite3_errmsg(sfs_db_handle(db)));
		r = -EIO;
	}
	sqlite3_finalize(st);
	return r;
}

/* Whether owner is a result a full prune deletes (map: id -> entry). */
static bool owner_goes(const struct strmap *m, const char *owner)
{
	const struct cache_du_entry *e = strmap_get(m, owner);
	return e && !e->pinned && !e->held;
}

/* Sums the distinct blob bytes, and those every owner of which goes. */
static int sum_blobs(struct sfs_db *db, const struct strmap *m, struct cache_du *du)
{
	sqlite3_stmt *st = prepare(db, SQL_REFS);
	unsigned char blob[SFS_SHA256_LEN] = {0};
	uint64_t size = 0;
	bool goes = false, first = true;
	int rc;

	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(st, 0);
		const char *owner = (const char *)sqlite3_column_text(st, 2);
		uint64_t sz = (uint64_t)sqlite3_column_int64(st, 1);
		if (!b || sqlite3_column_bytes(st, 0) != SFS_SHA256_LEN)
			continue;
		/* a new blob: the previous one is complete */
		if (first || memcmp(b, blob, sizeof(blob)) != 0) {
			du->total_size += size;
			du->total_reclaimable += goes ? size : 0;
			memcpy(blob, b, sizeof(blob));
			size = 0;
			goes = true;
			first = false;
		}
		size = sz > size ? sz : size;
		goes = goes && owner && owner_goes(m, owner); /* no results row: it stays */
	}
	du->total_size += size;
	du->total_reclaimable += goes ? size : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		sfs_log(SFS_LOG_ERR, "du: %s", sqlite3_errmsg(sfs_db_handle(db)));
		return -EIO;
	}
	return 0;
}

int cache_du_get(struct sfs_cache *c, struct cache_du *ret)
{
	struct cache_du du = {0};
	struct strmap m = STRMAP_INIT_BORROWED;
	int r;

	sfs_db_lock(c->db);
	r = read_entries(c->db, &du);
	for (size_t i = 0; r == 0 && i < du.n; i++) {
		du.v[i].held = cache_held(c->holds, du.v[i].id);
		r = strmap_put(&m, du.v[i].id, &du.v[i], NULL);
	}
	if (r == 0)
		r = sum_blobs(c->db, &m, &du);
	sfs_db_unlock(c->db);
	strmap_release(&m);
	if (r < 0) {
		cache_du_release(&du);
		return r;
	}
	*ret = du;
	return 0;
}

void cache_du_release(struct cache_du *du)
{
	for (size_t i = 0; du && i < du->n; i++) {
		free(du->v[i].op);
		free(du->v[i].name);
	}
	if (du) {
		free(du->v);
		*du = (struct cache_du){0};
	}
}
