/*
 * prune.c — the release cascade and blob references (prune.h).
 *
 * Locking: the database lock (recursive) around each unit, each removal and
 * each dry-run batch; the store needs none.
 */
#include "prune.h"
#include "exports.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "sha256.h"
#include "strmap.h"
#include "strv.h"

static const char *bare(const char *id)
{
	return strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
}

/* blob_refs.blob of blob hex (bare or "sha256:"): its 32 bytes (db.h), bound
 * SQLITE_STATIC from the caller's buffer, which outlives the statement's step. */
static int blob_bytes(const char *hex, unsigned char ret[SFS_SHA256_LEN])
{
	if (sfs_hex_to_bytes(bare(hex), ret) == 0)
		return 0;
	sfs_log(SFS_LOG_ERR, "blob reference: %s is not a sha256 digest", hex);
	return -EINVAL;
}

/* results.num of result id (lock held): blob_refs's owner; -ENOENT without a row. */
static int result_num_locked(struct sfs_db *db, const char *id, int64_t *ret)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_RESULT_NUM);
	int rc, r;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(st, 0);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sfs_db_error(db, STMT_RESULT_NUM, rc);
	}
	sqlite3_reset(st);
	return r;
}

static int ref_add_locked(struct sfs_db *db, int64_t owner, const char *hex, uint64_t size)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_BLOB_REF_INSERT);
	unsigned char md[SFS_SHA256_LEN];

	if (!st)
		return -EIO;
	if (blob_bytes(hex, md) < 0)
		return -EINVAL;
	sqlite3_bind_int64(st, 1, owner);
	sqlite3_bind_blob(st, 2, md, sizeof(md), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
	return sfs_db_step_done(db, STMT_BLOB_REF_INSERT, st);
}

/* One row of a tree's references: a distinct blob and its size. */
struct ref_row {
	unsigned char md[SFS_SHA256_LEN];
	uint64_t size;
};

static int ref_row_cmp(const void *a, const void *b)
{
	return memcmp(((const struct ref_row *)a)->md, ((const struct ref_row *)b)->md,
		      SFS_SHA256_LEN);
}

/*
 * The rows of tree t (its manifest of msize bytes first, then every entry with a
 * blob), sorted by digest and each blob once: the result's rows then go in the
 * primary key's order (owner, blob), each after the last.  *ret is malloc'd.
 */
static int tree_ref_rows(const struct tree *t, uint64_t msize, struct ref_row **ret, size_t *ret_n)
{
	struct ref_row *v = malloc((t->n + 1) * sizeof(*v));
	size_t n = 0, m = 0;

	if (!v)
		return -ENOMEM;
	if (blob_bytes(t->id, v[n].md) < 0)
		goto bad;
	v[n++].size = msize;
	for (size_t i = 0; i < t->n; i++) {
		if (!t->entries[i].hex[0])
			continue;
		if (blob_bytes(t->entries[i].hex, v[n].md) < 0)
			goto bad;
		v[n++].size = t->entries[i].size;
	}
	qsort(v, n, sizeof(*v), ref_row_cmp);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || memcmp(v[m - 1].md, v[i].md, SFS_SHA256_LEN) != 0)
			v[m++] = v[i];
	*ret = v;
	*ret_n = m;
	return 0;
bad:
	free(v);
	return -EINVAL;
}

/* The n rows (1 to SFS_DB_BATCH_ROWS) of owner in one statement of `rows` rows,
 * the last one repeated (lock held). */
static int refs_insert_batch_locked(struct sfs_db *db, int64_t owner, const struct ref_row *v,
				    size_t n, size_t rows)
{
	enum sfs_stmt id =
	    rows == SFS_DB_BATCH_ROWS ? STMT_BLOB_REF_INSERT_ROWS : STMT_BLOB_REF_INSERT_FEW;
	sqlite3_stmt *st = sfs_db_stmt(db, id);

	if (!st)
		return -EIO;
	for (size_t i = 0; i < rows; i++) {
		const struct ref_row *row = &v[i < n ? i : n - 1];
		int p = 3 * (int)i;
		sqlite3_bind_int64(st, p + 1, owner);
		sqlite3_bind_blob(st, p + 2, row->md, SFS_SHA256_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, p + 3, (sqlite3_int64)row->size);
	}
	return sfs_db_step_done(db, id, st);
}

/* The rows, a batch a statement (db.h; lock held): a statement costs about what
 * two of its rows do (cursors, the program's start and end). */
static int refs_insert_locked(struct sfs_db *db, int64_t owner, const struct ref_row *v, size_t n)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < n;) {
		size_t rows = sfs_db_batch_rows(n - i), k = n - i < rows ? n - i : rows;
		r = refs_insert_batch_locked(db, owner, v + i, k, rows);
		i += k;
	}
	return r;
}

int cache_blob_refs_add_tree(struct sfs_db *db, struct cas *c, const struct tree *t)
{
	int64_t owner = 0, msize;
	struct ref_row *v = NULL;
	size_t n = 0;
	int r = result_num_locked(db, t->id, &owner);

	if (r < 0)
		return r;
	msize = cas_size(c, bare(t->id));
	if ((r = tree_ref_rows(t, msize > 0 ? (uint64_t)msize : 0, &v, &n)) < 0)
		return r;
	r = refs_insert_locked(db, owner, v, n);
	free(v);
	return r;
}

int cache_blob_ref_add(struct sfs_db *db, const char *owner, const char *blob, uint64_t size)
{
	int64_t num = 0;

	sfs_db_lock(db);
	int r = result_num_locked(db, owner, &num);
	if (r == 0)
		r = ref_add_locked(db, num, blob, size);
	sfs_db_unlock(db);
	return r == -ENOENT ? 0 : r; /* no results row: nothing to keep it for (prune.h) */
}

static bool exists_locked(struct sfs_db *db, enum sfs_stmt sid, const char *text)
{
	sqlite3_stmt *st = sfs_db_stmt(db, sid);
	bool yes = false;

	if (!st)
		return true; /* an error says yes: never delete on doubt */
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		yes = sqlite3_column_int(st, 0) != 0;
	else
		yes = true;
	sqlite3_reset(st);
	return yes;
}

/* Whether some result names blob hex (lock held); an error says yes: the blob stays. */
static bool referenced_locked(struct sfs_db *db, const char *hex)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_BLOB_REFERENCED);
	unsigned char md[SFS_SHA256_LEN];
	bool yes = true;

	if (!st || blob_bytes(hex, md) < 0)
		return true;
	sqlite3_bind_blob(st, 1, md, sizeof(md), SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		yes = sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	return yes;
}

bool cache_blob_referenced(struct sfs_db *db, const char *hex)
{
	sfs_db_lock(db);
	bool yes = referenced_locked(db, hex);
	sfs_db_unlock(db);
	return yes;
}

/* Column 0 (and 1 as an integer into sizes when not NULL) of every row. */
static int rows(struct sfs_db *db, enum sfs_stmt sid, const char *bind, struct strv *out,
		uint64_t **sizes)
{
	sqlite3_stmt *st = sfs_db_stmt(db, sid);
	size_t cap = 0;
	int rc, r = 0;

	if (!st)
		return -EIO;
	if (bind)
		sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = strv_push(out, (const char *)sqlite3_column_text(st, 0));
		if (r == 0 && sizes) {
			if (out->n > cap) {
				cap = cap ? cap * 2 : 64;
				void *p = realloc(*sizes, cap * sizeof(**sizes));
				if (!p) {
					r = -ENOMEM;
					break;
				}
				*sizes = p;
			}
			(*sizes)[out->n - 1] = (uint64_t)sqlite3_column_int64(st, 1);
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sfs_db_error(db, sid, rc);
	sqlite3_reset(st);
	return r;
}

static int run_text(struct sfs_db *db, enum sfs_stmt sid, const char *text)
{
	sqlite3_stmt *st = sfs_db_stmt(db, sid);

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	return sfs_db_step_done(db, sid, st);
}

/* A result's records and the blobs it names with their sizes (lock held). */
struct result_rows {
	struct strv recs, blobs;
	uint64_t *sizes;
};

static int result_rows_locked(struct sfs_db *db, const char *id, struct result_rows *ret)
{
	int r = rows(db, STMT_RECORDS_OF_RESULT, id, &ret->recs, NULL);

	return r < 0 ? r : rows(db, STMT_BLOB_REFS_OF, id, &ret->blobs, &ret->sizes);
}

/* Counts the result in rep when r is 0; frees rr. */
static int result_rows_done(struct result_rows *rr, int r, struct cache_prune_report *rep)
{
	if (r == 0) {
		rep->results++;
		rep->records += rr->recs.n;
	}
	strv_release(&rr->recs);
	strv_release(&rr->blobs);
	free(rr->sizes);
	return r;
}

/* The cascade of one result, lock held, inside a unit. */
static int prune_result_locked(struct sfs_cache *c, const char *id, struct cache_prune_report *rep)
{
	struct keystore *ks = cache_manager_keystore(c->main);
	struct result_rows rr = {0};
	int r = result_rows_locked(c->db, id, &rr);

	for (size_t i = 0; r == 0 && i < rr.recs.n; i++)
		r = ks->ops->release(ks, rr.recs.v[i]);
	if (r == 0)
		r = run_text(c->db, STMT_BLOB_REFS_DELETE, id);
	if (r == 0)
		r = run_text(c->db, STMT_LAYER_DELETE, id);
	if (r == 0)
		r = run_text(c->db, STMT_RESULT_DELETE, id);
	for (size_t i = 0; r == 0 && i < rr.blobs.n; i++) {
		if (referenced_locked(c->db, rr.blobs.v[i]))
			continue;
		r = run_text(c->db, STMT_GC_INTENT_ADD, rr.blobs.v[i]);
		rep->blobs++;
		rep->bytes += rr.sizes[i];
	}
	return result_rows_done(&rr, r, rep);
}

/* Ends the unit: a dry run rolls back (-ECANCELED is its own success). */
static int end_unit(struct sfs_db *db, int r, bool dry_run)
{
	if (dry_run && r == 0) {
		sfs_db_end(db, -ECANCELED);
		return 0;
	}
	return sfs_db_end(db, r);
}

int cache_prune_result(struct sfs_cache *c, const char *result_id, bool dry_run,
		       struct cache_prune_report *rep)
{
	int r;

	sfs_db_lock(c->db);
	r = sfs_db_begin(c->db);
	if (r == 0)
		r = end_unit(c->db, prune_result_locked(c, result_id, rep), dry_run);
	sfs_db_unlock(c->db);
	/* the intent is durable before a file goes */
	if (r == 0 && !dry_run)
		r = sfs_db_sync(c->db);
	if (r == 0 && !dry_run)
		r = cache_prune_collect(c, false, NULL);
	return r;
}

int cache_referenced(struct sfs_db *db, uint64_t *ret_blobs, uint64_t *ret_bytes)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	sfs_db_lock(db);
	if (sqlite3_prepare_v2(sfs_db_handle(db),
			       "SELECT count(*), coalesce(sum(s), 0) FROM (SELECT max(size) s"
			       " FROM blob_refs GROUP BY blob)",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*ret_blobs = (uint64_t)sqlite3_column_int64(st, 0);
		*ret_bytes = (uint64_t)sqlite3_column_int64(st, 1);
		r = 0;
	}
	sqlite3_finalize(st);
	sfs_db_unlock(db);
	return r;
}

int cache_referenced_bytes(struct sfs_db *db, uint64_t *ret)
{
	uint64_t blobs;

	return cache_referenced(db, &blobs, ret);
}

int cache_prune(struct sfs_cache *c, uint64_t keep_bytes, int64_t keep_ns, bool dry_run,
		struct cache_prune_report *rep)
{
	struct strv ids = {0};
	uint64_t *used = NULL, total = 0;
	int64_t now = sfs_now_ns();
	int r;

	r = cache_referenced_bytes(c->db, &total);
	sfs_db_lock(c->db);
	if (r == 0)
		r = sfs_db_begin(c->db);
	if (r < 0) {
		sfs_db_unlock(c->db);
		return r;
	}
	r = rows(c->db, STMT_RESULTS_LRU, NULL, &ids, &used);
	for (size_t i = 0; r == 0 && i < ids.n && total > keep_bytes; i++) {
		if (keep_ns > 0 && (int64_t)used[i] > now - keep_ns)
			break; /* LRU order: the rest are younger still */
		if (cache_held(c->holds, ids.v[i]))
			continue; /* a running job's or an export's (holds.h) */
		uint64_t before = rep->bytes;
		r = prune_result_locked(c, ids.v[i], rep);
		uint64_t freed = rep->bytes - before;
		total = freed > total ? 0 : total - freed;
	}
	r = end_unit(c->db, r, dry_run);
	sfs_db_unlock(c->db);
	strv_release(&ids);
	free(used);
	if (r == 0 && !dry_run)
		r = sfs_db_sync(c->db);
	if (r == 0 && !dry_run)
		r = cache_prune_collect(c, false, NULL);
	if (r == 0) {
		uint64_t n = 0, bytes = 0;
		r = cache_exports_prune(c, dry_run, &n, &bytes);
		rep->exports += n;
		rep->export_bytes += bytes;
	}
	return r;
}

/* The row of result id (lock held): its last use, or -ENOENT once deleted. */
static int last_used_locked(struct sfs_db *db, const char *id, int64_t *ret)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_RESULT_GET);
	int rc, r = -EIO;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(st, 2);
		r = 0;
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = sfs_db_error(db, STMT_RESULT_GET, rc);
	}
	sqlite3_reset(st);
	return r;
}

/* Whether result id has a record an op of kind op made (lock held). */
static bool made_by_locked(struct sfs_db *db, const char *id, const char *op)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_RESULT_HAS_OP);
	bool yes = false;

	if (!st)
		return false; /* an error keeps the result */
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		yes = sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	return yes;
}

/* Whether candidate id may go now (lock held): there, unheld, unpinned, old
 * enough, and made by the op kind asked for. */
static bool may_go_locked(struct sfs_cache *c, const struct cache_prune_opts *o, const char *id,
			  int64_t cutoff)
{
	int64_t last = 0;

	if (last_used_locked(c->db, id, &last) < 0)
		return false;
	if (cutoff && last > cutoff)
		return false;
	if (cache_held(c->holds, id))
		return false;
	if (o->op && !made_by_locked(c->db, id, o->op))
		return false;
	return !exists_locked(c->db, STMT_PINNED, id); /* pinned since the listing */
}

/* One batch from *next on (lock held, inside a unit): ids deleted go to done. */
/* What a batch does with a result that may go: the prune's cascade or the
 * dry run's simulation (lock held). */
typedef int batch_take_fn(struct sfs_cache *c, const char *id, void *arg,
			  struct cache_prune_report *rep);

static int lru_batch_locked(struct sfs_cache *c, const struct cache_prune_opts *o,
			    const struct strv *ids, size_t *next, size_t batch, int64_t cutoff,
			    uint64_t *used, batch_take_fn *take, void *arg,
			    struct cache_prune_report *rep)
{
	int r = 0;

	for (size_t n = 0; r == 0 && n < batch && *next < ids->n && *used > o->keep_bytes;
	     (*next)++) {
		const char *id = ids->v[*next];
		if (!may_go_locked(c, o, id, cutoff))
			continue;
		uint64_t before = rep->bytes;
		r = take(c, id, arg, rep);
		uint64_t freed = rep->bytes - before;
		*used = freed > *used ? 0 : *used - freed;
		n++;
	}
	return r;
}

/* The prune's take: the cascade; done collects the ids deleted. */
static int prune_take(struct sfs_cache *c, const char *id, void *done,
		      struct cache_prune_report *rep)
{
	int r = prune_result_locked(c, id, rep);

	return r < 0 ? r : strv_push(done, id);
}

static void report_add(struct cache_prune_report *to, const struct cache_prune_report *r)
{
	to->results += r->results;
	to->records += r->records;
	to->blobs += r->blobs;
	to->bytes += r->bytes;
}

/* ---- the dry run: the same batches, read-only ----
 * What the prune would delete is kept in memory instead: per blob, how many
 * of its references the results taken hold (gone_refs).  A blob is freed when
 * that is all of its references (its rows in blob_refs, counted once a batch:
 * results saved between batches count).  Each candidate is visited once (the
 * LRU list has each result once).  Nothing is written, so each batch is a
 * plain read under the lock, and jobs and readers get the database between
 * batches.
 */

struct sim {
	struct strmap gone_refs; /* blob hex -> references held by the results taken */
	struct strmap refs;	 /* blob hex -> rows in blob_refs, this batch */
	sqlite3_stmt *count;	 /* the rows of one blob */
};

#define SQL_BLOB_REF_COUNT "SELECT count(*) FROM blob_refs WHERE blob = ?"

static void sim_release(struct sim *m)
{
	strmap_release(&m->gone_refs);
	strmap_release(&m->refs);
}

/* The rows naming blob hex (lock held), counted once a batch, into *ret. */
static int sim_refs_locked(struct sfs_db *db, struct sim *m, const char *hex, uintptr_t *ret)
{
	uintptr_t n = (uintptr_t)strmap_get(&m->refs, hex);
	unsigned char md[SFS_SHA256_LEN];
	int rc;

	if (n) {
		*ret = n;
		return 0;
	}
	if (blob_bytes(hex, md) < 0)
		return -EINVAL;
	sqlite3_bind_blob(m->count, 1, md, sizeof(md), SQLITE_STATIC);
	rc = sqlite3_step(m->count);
	if (rc == SQLITE_ROW)
		n = (uintptr_t)sqlite3_column_int64(m->count, 0);
	sqlite3_reset(m->count);
	if (rc != SQLITE_ROW) {
		sfs_log(SFS_LOG_ERR, "prune: %s: %s", SQL_BLOB_REF_COUNT,
			sqlite3_errmsg(sfs_db_handle(db)));
		return -EIO;
	}
	*ret = n;
	return n ? strmap_put(&m->refs, hex, (void *)n, NULL) : 0;
}

/* The dry run's take: what deleting result id would free, given what the
 * run took before (lock held, read-only): prune_result_locked's report. */
static int sim_take(struct sfs_cache *c, const char *id, void *arg,
		    struct cache_prune_report *rep)
{
	struct sim *m = arg;
	struct result_rows rr = {0};
	int r = result_rows_locked(c->db, id, &rr);

	for (size_t i = 0; r == 0 && i < rr.blobs.n; i++) {
		uintptr_t all = 0, held = (uintptr_t)strmap_get(&m->gone_refs, rr.blobs.v[i]) + 1;
		r = sim_refs_locked(c->db, m, rr.blobs.v[i], &all);
		if (r == 0)
			r = strmap_put(&m->gone_refs, rr.blobs.v[i], (void *)held, NULL);
		if (r == 0 && all && held >= all) { /* its last reference goes */
			rep->blobs++;
			rep->bytes += rr.sizes[i];
		}
	}
	return result_rows_done(&rr, r, rep);
}

static int sim_unit(struct sfs_cache *c, const struct cache_prune_opts *o, const struct strv *ids,
		    size_t *next, int64_t cutoff, uint64_t *used, struct sim *m,
		    struct cache_prune_report *rep)
{
	size_t batch = o->batch ? o->batch : 1;
	int r;

	sfs_db_lock(c->db);
	strmap_release(&m->refs); /* counted again: saves since the last batch */
	m->refs = (struct strmap)STRMAP_INIT;
	if (sqlite3_prepare_v2(sfs_db_handle(c->db), SQL_BLOB_REF_COUNT, -1, &m->count, NULL) !=
	    SQLITE_OK) {
		sfs_log(SFS_LOG_ERR, "prune: %s: %s", SQL_BLOB_REF_COUNT,
			sqlite3_errmsg(sfs_db_handle(c->db)));
		r = -EIO;
	} else {
		r = lru_batch_locked(c, o, ids, next, batch, cutoff, used, sim_take, m, rep);
	}
	sqlite3_finalize(m->count);
	m->count = NULL;
	sfs_db_unlock(c->db);
	sched_yield(); /* the lock is not fair: let a waiting reader or job take it */
	return r;
}

/* One unit of the prune. */
static int lru_unit(struct sfs_cache *c, const struct cache_prune_opts *o, const struct strv *ids,
		    size_t *next, int64_t cutoff, uint64_t *used, struct cache_prune_report *rep)
{
	size_t batch = o->batch ? o->batch : 1;
	struct strv done = {0};
	struct cache_prune_report br = {0};
	int64_t t0 = sfs_now_ns();
	int r;

	sfs_db_lock(c->db);
	r = sfs_db_begin(c->db);
	if (r == 0)
		r = end_unit(c->db,
			     lru_batch_locked(c, o, ids, next, batch, cutoff, used, prune_take, &done,
					      &br),
			     o->dry_run);
	sfs_db_unlock(c->db);
	if (r == 0 && !o->dry_run)
		r = sfs_db_sync(c->db); /* the intent is durable before a file goes */
	if (r == 0 && !o->dry_run)
		r = cache_prune_collect(c, false, NULL);
	if (r == 0)
		report_add(rep, &br);
	for (size_t i = 0; r == 0 && !o->dry_run && o->collected && i < done.n; i++)
		o->collected(o->arg, done.v[i]);
	strv_release(&done);
	if (r == 0 && o->between && *next < ids->n && *used > o->keep_bytes)
		o->between(o->arg, sfs_now_ns() - t0);
	return r;
}

int cache_prune_run(struct sfs_cache *c, const struct cache_prune_opts *o, uint64_t *used,
		    struct cache_prune_report *rep)
{
	struct strv ids = {0};
	uint64_t *last = NULL, total = 0;
	int64_t cutoff = o->keep_ns > 0 ? sfs_now_ns() - o->keep_ns : 0;
	size_t next = 0;
	int r = 0;

	if (!used) {
		r = cache_referenced_bytes(c->db, &total);
		used = &total;
	}
	if (r == 0 && *used > o->keep_bytes) {
		sfs_db_lock(c->db);
		r = rows(c->db, STMT_RESULTS_LRU, NULL, &ids, &last);
		sfs_db_unlock(c->db);
	}
	struct sim m = {.gone_refs = STRMAP_INIT, .refs = STRMAP_INIT};
	while (r == 0 && next < ids.n && *used > o->keep_bytes && !(o->stop && *o->stop))
		r = o->dry_run ? sim_unit(c, o, &ids, &next, cutoff, used, &m, rep)
			       : lru_unit(c, o, &ids, &next, cutoff, used, rep);
	sim_release(&m);
	strv_release(&ids);
	free(last);
	if (r == 0 && !o->op && !(o->stop && *o->stop)) {
		uint64_t n = 0, bytes = 0;
		r = cache_exports_prune(c, o->dry_run, &n, &bytes);
		rep->exports += n;
		rep->export_bytes += bytes;
	}
	return r;
}

int cache_prune_lru(struct sfs_cache *c, const struct cache_prune_lru_opts *lo, uint64_t *used,
		    struct cache_prune_report *rep)
{
	struct cache_prune_opts o = {.keep_bytes = lo->keep_bytes,
				     .keep_ns = lo->keep_ns,
				     .batch = lo->batch,
				     .collected = lo->collected,
				     .between = lo->between,
				     .arg = lo->arg,
				     .stop = lo->stop};

	return cache_prune_run(c, &o, used, rep);
}

static int remove_if_unreferenced(struct sfs_cache *c, const char *hex,
				  struct cache_prune_report *rep)
{
	int r = 0;

	sfs_db_lock(c->db);
	if (!referenced_locked(c->db, hex)) {
		int64_t size = cas_size(c->cas, hex);
		r = cas_remove(c->cas, hex);
		if (r == -ENOENT)
			r = 0;
		if (r == 0 && rep && size >= 0) {
			rep->blobs++;
			rep->bytes += (uint64_t)size;
		}
	}
	if (r == 0)
		r = run_text(c->db, STMT_GC_INTENT_DEL, hex);
	sfs_db_unlock(c->db);
	return r;
}

struct orphan_walk {
	struct sfs_cache *c;
	struct cache_prune_report *rep;
};

static int orphan_blob(const char *hex, void *arg)
{
	struct orphan_walk *w = arg;
	return remove_if_unreferenced(w->c, hex, w->rep);
}

/* Result trees with no blob_refs row, and layers (of a result) whose blob has no row
 * of its result. */
#define SQL_UNREFERENCED_RESULTS                                                                   \
	"SELECT id FROM results r WHERE NOT EXISTS (SELECT 1 FROM blob_refs b"                     \
	" WHERE b.owner = r.num) ORDER BY id"
#define SQL_UNREFERENCED_LAYERS                                                                    \
	"SELECT l.result, l.blob, l.size FROM layers l JOIN results r ON r.id = l.result"          \
	" WHERE NOT EXISTS (SELECT 1 FROM blob_refs b WHERE b.owner = r.num"                       \
	" AND b.blob = sfs_unhex(l.blob)) AND sfs_unhex(l.blob) IS NOT NULL"

static int query_rows(struct sfs_db *db, const char *sql, int ncols, struct strv *out)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE, r = 0;

	sfs_db_lock(db);
	if (sqlite3_prepare_v2(sfs_db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) {
		sfs_log(SFS_LOG_ERR, "prune: %s: %s", sql, sqlite3_errmsg(sfs_db_handle(db)));
		r = -EIO;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		for (int i = 0; r == 0 && i < ncols; i++) {
			const char *s = (const char *)sqlite3_column_text(st, i);
			r = strv_push(out, s ? s : "");
		}
	if (r == 0 && rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(st);
	sfs_db_unlock(db);
	return r;
}

/* The references of one result tree, in a unit; -ENOENT etc. when it does not load. */
static int rebuild_result_refs(struct sfs_cache *c, const char *id)
{
	struct tree *t = NULL;
	int r = tree_load(c->cas, id, &t);

	if (r < 0)
		return r;
	sfs_db_lock(c->db);
	r = sfs_db_begin(c->db);
	if (r == 0)
		r = sfs_db_end(c->db, cache_blob_refs_add_tree(c->db, c->cas, t));
	sfs_db_unlock(c->db);
	tree_free(t);
	return r;
}

/* Rebuilds what is missing; *ret_sure false when some result's blobs are unknown. */
static int rebuild_refs(struct sfs_cache *c, uint64_t *ret_n, bool *ret_sure)
{
	struct strv ids = {0}, layers = {0};
	int r = query_rows(c->db, SQL_UNREFERENCED_RESULTS, 1, &ids);

	for (size_t i = 0; r == 0 && i < ids.n; i++) {
		int lr = rebuild_result_refs(c, ids.v[i]);
		if (lr == 0) {
			(*ret_n)++;
			continue;
		}
		sfs_log(SFS_LOG_WARN, "result %s: its tree does not load (%s): orphan blobs are kept",
			ids.v[i], strerror(-lr));
		*ret_sure = false;
	}
	if (r == 0)
		r = query_rows(c->db, SQL_UNREFERENCED_LAYERS, 3, &layers);
	for (size_t i = 0; r == 0 && i + 2 < layers.n; i += 3) {
		r = cache_blob_ref_add(c->db, layers.v[i], layers.v[i + 1],
				       strtoull(layers.v[i + 2], NULL, 10));
		(*ret_n) += r == 0;
	}
	strv_release(&ids);
	strv_release(&layers);
	return r;
}

int cache_prune_recover(struct sfs_cache *c, struct cache_prune_report *rep, uint64_t *ret_refs)
{
	uint64_t n = 0;
	bool sure = true;
	int r = rebuild_refs(c, &n, &sure);

	if (r == 0)
		r = sfs_db_sync(c->db); /* the references are durable before a blob goes */
	if (r == 0)
		r = cache_prune_collect(c, sure, rep);
	if (r == 0 && ret_refs)
		*ret_refs = n;
	return r;
}

int cache_prune_collect(struct sfs_cache *c, bool orphans, struct cache_prune_report *rep)
{
	struct strv hexes = {0};
	int r;

	sfs_db_lock(c->db);
	r = rows(c->db, STMT_GC_INTENT_LIST, NULL, &hexes, NULL);
	sfs_db_unlock(c->db);
	for (size_t i = 0; r == 0 && i < hexes.n; i++) {
		r = remove_if_unreferenced(c, hexes.v[i], rep);
		sched_yield(); /* an unlink may take a millisecond (discard): let readers in */
	}
	strv_release(&hexes);
	if (r == 0 && orphans) {
		struct orphan_walk w = {c, rep};
		r = cas_walk(c->cas, orphan_blob, &w);
	}
	return r;
}
