/*
 * result_storage.c — CacheResultStorage over the content store: a record names
 * one save of a result tree (docs/semantics.md §4.3), and the tree is what a load checks.
 *
 * Records get random ids, so two executions producing the same tree are two
 * records of one result, and releasing one never touches the other.
 *
 * A record "exists" while its manifest blob does: that is one stat, cheap
 * enough for every Records call.  Load goes further and verifies every blob of
 * the tree with its size, so a result damaged under our feet (a pruned or
 * truncated blob) is a load error and the solver falls back to executing.
 *
 * With a database, the results table follows along: a row per result tree
 * with its size (sum of file sizes), created and last_used, in ns since the
 * epoch; a load touches last_used, which pruning orders by.
 *
 * Locking: none of its own; the store is thread-safe and rows are written
 * under sfs_db_lock.
 */
#include "result_storage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "cas.h"
#include "clock.h"
#include "db.h"
#include "err.h"
#include "prune.h"
#include "tree.h"

struct rs_cas {
	struct result_storage rs;
	struct cas *cas;
	struct sfs_db *db; /* may be NULL */
};

static struct rs_cas *to_rs(struct result_storage *rs)
{
	return (struct rs_cas *)rs;
}

/*
 * Whether every blob of t is still in the store, asked once its references are
 * written, with the database lock held.  An op that found a blob already stored
 * wrote nothing and held nothing: a prune could take that blob, unreferenced then,
 * before this save names it.  A prune removes a blob only after checking, under the
 * same lock, that nothing references it (cache/prune.c), so from here on the blob
 * stays, and a blob gone before is seen now (docs/gc.md §4).
 */
static int blobs_present(struct cas *c, const struct tree *t)
{
	const char **hex = malloc((t->n + 1) * sizeof(*hex));
	size_t n = 0, gone = 0;
	int r = 0;

	if (!hex)
		return -ENOMEM;
	hex[n++] = t->id + 7;
	for (size_t i = 0; i < t->n; i++)
		if (t->entries[i].hex[0])
			hex[n++] = t->entries[i].hex;
	if (!cas_has_all(c, hex, n, &gone)) {
		sfs_log(SFS_LOG_WARN, "result %s: blob %s was collected while the result was saved",
			t->id, hex[gone]);
		r = -ENOENT;
	}
	free(hex);
	return r;
}

/* The results row and the tree's blob references (cache/prune.h), in one unit
 * so a prune never sees a result whose blobs it could take for orphans. */
static int row_upsert(struct sfs_db *db, struct cas *c, const struct tree *t, int64_t created)
{
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	r = sfs_db_begin(db);
	if (r < 0) {
		sfs_db_unlock(db);
		return r;
	}
	st = sfs_db_stmt(db, STMT_RESULT_UPSERT);
	if (st) {
		sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)t->total_size);
		sqlite3_bind_int64(st, 3, created);
		r = sfs_db_step_done(db, STMT_RESULT_UPSERT, st);
	}
	if (r == 0)
		r = cache_blob_refs_add_tree(db, c, t);
	if (r == 0)
		r = blobs_present(c, t);
	r = sfs_db_end(db, r);
	sfs_db_unlock(db);
	return r;
}

static int row_touch(struct sfs_db *db, const char *result_id)
{
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	st = sfs_db_stmt(db, STMT_RESULT_TOUCH);
	if (st) {
		sqlite3_bind_text(st, 1, result_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, sfs_now_ns());
		r = sfs_db_step_done(db, STMT_RESULT_TOUCH, st);
	}
	sfs_db_unlock(db);
	return r;
}

static int rs_save(struct result_storage *rs, const char *result_id, int64_t created_at,
		   struct cache_result *ret)
{
	struct rs_cas *s = to_rs(rs);
	struct tree *t = NULL;
	int r;

	if (!sfs_is_digest(result_id))
		return -EINVAL;
	/* Saving a result that is not in the store would make a record that
	 * can never load; refuse it here rather than at the next build. */
	r = tree_load(s->cas, result_id, &t);
	if (r < 0)
		return r;
	if (s->db)
		r = row_upsert(s->db, s->cas, t, created_at);
	tree_free(t);
	if (r < 0)
		return r;
	keystore_new_id(ret->id);
	sfs_copy_str(ret->result, sizeof(ret->result), result_id);
	ret->created_at = created_at;
	return 0;
}

static int rs_load(struct result_storage *rs, const struct cache_result *res,
		   char ret_result_id[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct rs_cas *s = to_rs(rs);
	struct tree *t = NULL;
	int r;

	if (!sfs_is_digest(res->result))
		return sfs_errf(ret_msg, EINVAL, "cache record %s: bad result id \"%s\"", res->id,
				res->result);
	r = tree_load(s->cas, res->result, &t);
	if (r < 0)
		return sfs_errf(ret_msg, r, "result %s of cache record %s: %s", res->result,
				res->id, r == -ENOENT ? "missing from the store" : strerror(-r));
	r = tree_verify(s->cas, t, ret_msg);
	tree_free(t);
	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "result %s", res->result);
	/* last_used is advisory (prune order): a failed touch is logged by db.c
	 * and does not fail the load. */
	if (s->db)
		row_touch(s->db, res->result);
	sfs_copy_str(ret_result_id, SFS_DIGEST_SIZE, res->result);
	return 0;
}

static bool rs_exists(struct result_storage *rs, const struct cache_result *res)
{
	return sfs_is_digest(res->result) && cas_has(to_rs(rs)->cas, res->result + 7);
}

static void rs_free(struct result_storage *rs)
{
	free(rs);
}

static const struct result_storage_ops rs_cas_ops = {
    .save = rs_save,
    .load = rs_load,
    .exists = rs_exists,
    .free = rs_free,
};

int result_storage_cas_new(struct cas *c, struct sfs_db *db, struct result_storage **ret)
{
	struct rs_cas *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->rs.ops = &rs_cas_ops;
	s->cas = c;
	s->db = db;
	*ret = &s->rs;
	return 0;
}
