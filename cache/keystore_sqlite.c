/*
 * keystore_sqlite.c — CacheKeyStorage in the database (tables key_records,
 * records and links of db.h).
 *
 * It replaces BuildKit's bbolt storage but implements the in-memory semantics,
 * the fixed behaviour of docs/semantics.md §4.2: Release garbage-collects every key
 * left with neither records nor outgoing links and cascades to its dependency
 * keys, link-only keys included.  Keys have no table of their own: a key exists
 * through its key_records and links rows, so a collected key leaves nothing.
 *
 * Locking: every method holds sfs_db_lock while it touches the connection.
 * Walks copy their rows, unlock, then call back, so callbacks may re-enter.  A
 * batch holds the (recursive) lock from batch_begin to batch_end: the
 * connection has one transaction, so another thread's statements must not
 * slip into it.
 */
#include "array.h"
#include "keystore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "err.h"
#include "strv.h"

struct ks_sqlite {
	struct keystore ks;
	struct sfs_db *db;
	/* whether a record-form link (an import's, keystore.h) may be stored: -1
	 * not asked yet, 0 none, 1 some (set by add_link; never cleared, a release
	 * leaving none only costs walks that find nothing); sfs_db_lock */
	int record_links;
};

static struct sfs_db *to_db(struct keystore *ks)
{
	return ((struct ks_sqlite *)ks)->db;
}

/* ---- snapshots for walks ---- */

/* ---- statement helpers (lock held) ---- */

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? (const char *)s : "";
}

static void bind_link(sqlite3_stmt *st, int first, const struct cache_link *l)
{
	sqlite3_bind_int(st, first, l->input);
	sqlite3_bind_int(st, first + 1, l->output);
	sqlite3_bind_text(st, first + 2, l->digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, first + 3, l->selector, -1, SQLITE_STATIC);
}

/* Steps a bound statement, copying its first column into sv. */
static int query_strv(struct sfs_db *db, enum sfs_stmt id, sqlite3_stmt *st, struct strv *sv)
{
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (r == 0)
			r = strv_push(sv, col_text(st, 0));
	if (rc != SQLITE_DONE)
		return sfs_db_error(db, id, rc);
	sqlite3_reset(st);
	return r;
}

/* 1 when the statement yields a row, 0 when not, -errno on error. */
static int query_any(struct sfs_db *db, enum sfs_stmt id, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sfs_db_error(db, id, rc);
	sqlite3_reset(st);
	return rc == SQLITE_ROW;
}

static sqlite3_stmt *stmt_text(struct sfs_db *db, enum sfs_stmt id, const char *a, const char *b)
{
	sqlite3_stmt *st = sfs_db_stmt(db, id);

	if (!st)
		return NULL;
	if (a)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	return st;
}

/* ---- the methods ---- */

/* Whether key id has records or outgoing links: 1, 0, or -EIO (lock held). */
static int exists_locked(struct sfs_db *db, const char *id)
{
	sqlite3_stmt *st = stmt_text(db, STMT_KEY_EXISTS, id, NULL);
	int r = -EIO;

	if (st) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			r = sqlite3_column_int(st, 0) != 0;
		else
			sfs_db_error(db, STMT_KEY_EXISTS, rc);
		sqlite3_reset(st);
	}
	return r;
}

static bool sq_exists(struct keystore *ks, const char *id)
{
	struct sfs_db *db = to_db(ks);

	sfs_db_lock(db);
	int r = exists_locked(db, id);
	sfs_db_unlock(db);
	return r > 0;
}

/* Runs a string-returning statement with up to two text bindings (and what
 * bind adds, when not NULL) under the lock, then calls fn for each row without
 * it. */
static int walk_strings(struct keystore *ks, enum sfs_stmt id, const char *a, const char *b,
			void (*bind)(sqlite3_stmt *st, const void *barg), const void *barg,
			keystore_id_fn fn, void *arg)
{
	struct sfs_db *db = to_db(ks);
	struct strv sv = {0};
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	st = stmt_text(db, id, a, b);
	if (st) {
		if (bind)
			bind(st, barg);
		r = query_strv(db, id, st, &sv);
	}
	sfs_db_unlock(db);
	if (r == 0)
		r = strv_call(&sv, fn, arg);
	strv_release(&sv);
	return r;
}

static int sq_walk(struct keystore *ks, keystore_id_fn fn, void *arg)
{
	return walk_strings(ks, STMT_KEY_WALK, NULL, NULL, NULL, NULL, fn, arg);
}

static void row_result(sqlite3_stmt *st, struct cache_result *r)
{
	sfs_copy_str(r->id, sizeof(r->id), col_text(st, 0));
	sfs_copy_str(r->result, sizeof(r->result), col_text(st, 1));
	r->created_at = sqlite3_column_int64(st, 2);
}

/* The records of key id by statement sid (STMT_KEY_RESULTS or _ANY), copied,
 * then fn on each without the lock. */
static int walk_results_by(struct keystore *ks, enum sfs_stmt sid, const char *id,
			   keystore_result_fn fn, void *arg)
{
	struct sfs_db *db = to_db(ks);
	struct cache_result *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = -EIO;

	sfs_db_lock(db);
	st = stmt_text(db, sid, id, NULL);
	if (st) {
		r = 0;
		while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if ((r = sfs_grow((void **)&v, &cap, n + 1, sizeof(*v))) < 0)
				break;
			row_result(st, &v[n++]);
		}
		if (r == 0 && rc != SQLITE_DONE)
			r = sfs_db_error(db, sid, rc);
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(&v[i], arg);
	free(v);
	return r;
}

static int sq_walk_results(struct keystore *ks, const char *id, keystore_result_fn fn, void *arg)
{
	return walk_results_by(ks, STMT_KEY_RESULTS, id, fn, arg);
}

static int sq_walk_results_any(struct keystore *ks, const char *id, keystore_result_fn fn,
			       void *arg)
{
	return walk_results_by(ks, STMT_KEY_RESULTS_ANY, id, fn, arg);
}

static int sq_load(struct keystore *ks, const char *id, const char *record_id,
		   struct cache_result *ret)
{
	struct sfs_db *db = to_db(ks);
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	st = stmt_text(db, STMT_KEY_LOAD, id, record_id);
	if (st) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			row_result(st, ret);
			r = 0;
		} else if (rc == SQLITE_DONE) {
			r = -ENOENT;
		} else {
			r = sfs_db_error(db, STMT_KEY_LOAD, rc);
		}
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}

static int sq_add_result_locked(struct sfs_db *db, const char *id, const struct cache_result *res)
{
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_RECORD_INSERT);
	int r;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, res->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, res->result, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, res->created_at);
	r = sfs_db_step_done(db, STMT_RECORD_INSERT, st);
	if (r < 0)
		return r;
	st = stmt_text(db, STMT_KEY_RECORD_INSERT, id, res->id);
	return st ? sfs_db_step_done(db, STMT_KEY_RECORD_INSERT, st) : -EIO;
}

static int sq_add_result(struct keystore *ks, const char *id, const struct cache_result *res)
{
	struct sfs_db *db = to_db(ks);
	int r;

	sfs_db_lock(db);
	r = sfs_db_begin(db);
	if (r == 0)
		r = sfs_db_end(db, sq_add_result_locked(db, id, res));
	sfs_db_unlock(db);
	return r;
}

/*
 * emptyBranchWithParents (docs/semantics.md §4.2) in the in-memory form: a key
 * without records and outgoing links loses its incoming links, and each
 * dependency key that linked to it is collected the same way.
 */
static int sq_empty_branch(struct sfs_db *db, const char *id, int depth)
{
	struct strv srcs = {0};
	sqlite3_stmt *st;
	int r;

	/* The key graph is acyclic; the bound only keeps a corrupt database
	 * from exhausting the stack. */
	if (depth > 10000)
		return -ELOOP;
	r = exists_locked(db, id);
	if (r != 0)
		return r < 0 ? r : 0;
	/* Distinct sources: the backlink walk yields one row per link. */
	st = stmt_text(db, STMT_BACKLINK_WALK, id, NULL);
	r = st ? query_strv(db, STMT_BACKLINK_WALK, st, &srcs) : -EIO;
	for (size_t i = 0; r == 0 && i < srcs.n; i++) {
		if (i > 0 && strcmp(srcs.v[i], srcs.v[i - 1]) == 0)
			continue; /* rows are ordered by src */
		st = stmt_text(db, STMT_LINK_DELETE_SRC_TARGET, srcs.v[i], id);
		r = st ? sfs_db_step_done(db, STMT_LINK_DELETE_SRC_TARGET, st) : -EIO;
		if (r == 0)
			r = sq_empty_branch(db, srcs.v[i], depth + 1);
	}
	strv_release(&srcs);
	return r;
}

static int sq_release_locked(struct sfs_db *db, const char *record_id)
{
	struct strv keys = {0};
	sqlite3_stmt *st;
	int r;

	st = stmt_text(db, STMT_KEYS_BY_RECORD, record_id, NULL);
	r = st ? query_strv(db, STMT_KEYS_BY_RECORD, st, &keys) : -EIO;
	if (r == 0) {
		st = stmt_text(db, STMT_KEY_RECORD_DELETE_BY_RECORD, record_id, NULL);
		r = st ? sfs_db_step_done(db, STMT_KEY_RECORD_DELETE_BY_RECORD, st) : -EIO;
	}
	if (r == 0) {
		st = stmt_text(db, STMT_RECORD_DELETE, record_id, NULL);
		r = st ? sfs_db_step_done(db, STMT_RECORD_DELETE, st) : -EIO;
	}
	for (size_t i = 0; r == 0 && i < keys.n; i++)
		r = sq_empty_branch(db, keys.v[i], 0);
	strv_release(&keys);
	return r;
}

static int sq_release(struct keystore *ks, const char *record_id)
{
	struct sfs_db *db = to_db(ks);
	int r;

	sfs_db_lock(db);
	r = sfs_db_begin(db);
	if (r == 0)
		r = sfs_db_end(db, sq_release_locked(db, record_id));
	sfs_db_unlock(db);
	return r;
}

static int sq_walk_ids_by_result(struct keystore *ks, const char *record_id, keystore_id_fn fn,
				 void *arg)
{
	return walk_strings(ks, STMT_KEYS_BY_RECORD, record_id, NULL, NULL, NULL, fn, arg);
}

/* Runs statement sid bound to a whole link row (id, l, target) with step, under
 * the lock; returns what step does. */
static int run_link(struct keystore *ks, enum sfs_stmt sid, const char *id,
		    const struct cache_link *l, const char *target,
		    int (*step)(struct sfs_db *db, enum sfs_stmt sid, sqlite3_stmt *st))
{
	struct sfs_db *db = to_db(ks);
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	st = stmt_text(db, sid, id, NULL);
	if (st) {
		bind_link(st, 2, l);
		sqlite3_bind_text(st, 6, target, -1, SQLITE_STATIC);
		r = step(db, sid, st);
	}
	sfs_db_unlock(db);
	return r;
}

static int sq_add_link(struct keystore *ks, const char *id, const struct cache_link *l,
		       const char *target)
{
	struct ks_sqlite *s = (struct ks_sqlite *)ks;

	if (l->output == KEYSTORE_RECORD_LINK_OUTPUT) {
		sfs_db_lock(s->db);
		s->record_links = 1; /* before the row: a walk never misses it */
		sfs_db_unlock(s->db);
	}
	return run_link(ks, STMT_LINK_INSERT, id, l, target, sfs_db_step_done);
}

/* Whether a record-form link may be stored: asked once (a scan of links, a
 * few milliseconds a 100,000 links), then kept up to date by add_link.  On an
 * error, yes. */
static bool record_links_maybe(struct keystore *ks)
{
	struct ks_sqlite *s = (struct ks_sqlite *)ks;
	bool maybe;

	sfs_db_lock(s->db);
	if (s->record_links < 0) {
		sqlite3_stmt *st = stmt_text(s->db, STMT_LINK_RECORD_FORM_ANY, NULL, NULL);
		int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
		if (rc == SQLITE_ROW)
			s->record_links = sqlite3_column_int(st, 0) != 0;
		else if (st)
			sfs_db_error(s->db, STMT_LINK_RECORD_FORM_ANY, rc);
		if (st)
			sqlite3_reset(st);
	}
	maybe = s->record_links != 0;
	sfs_db_unlock(s->db);
	return maybe;
}

/* The link fields after the source id (parameters 2-5). */
static void bind_link_after_id(sqlite3_stmt *st, const void *l)
{
	bind_link(st, 2, l);
}

static int sq_walk_links(struct keystore *ks, const char *id, const struct cache_link *l,
			 keystore_id_fn fn, void *arg)
{
	if (l->output == KEYSTORE_RECORD_LINK_OUTPUT && !record_links_maybe(ks))
		return 0; /* nothing was imported: the cache manager's second walk */
	return walk_strings(ks, STMT_LINK_WALK, id, NULL, bind_link_after_id, l, fn, arg);
}

static bool sq_has_link(struct keystore *ks, const char *id, const struct cache_link *l,
			const char *target)
{
	return run_link(ks, STMT_LINK_HAS, id, l, target, query_any) > 0;
}

/* A link row (src or target in column 0, then input, output, digest, selector). */
struct link_row {
	char *key;
	struct cache_link l;
};

struct link_rows {
	size_t n, cap;
	struct link_row *v;
};

static void link_rows_release(struct link_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++)
		free(rows->v[i].key);
	free(rows->v);
	memset(rows, 0, sizeof(*rows));
}

static int link_rows_push(struct link_rows *rows, sqlite3_stmt *st, int kcol, int lcol)
{
	struct link_row *row;

	if (sfs_grow((void **)&rows->v, &rows->cap, rows->n + 1, sizeof(*rows->v)) < 0)
		return -ENOMEM;
	row = &rows->v[rows->n];
	if (!(row->key = strdup(col_text(st, kcol))))
		return -ENOMEM;
	row->l.input = sqlite3_column_int(st, lcol);
	row->l.output = sqlite3_column_int(st, lcol + 1);
	sfs_copy_str(row->l.digest, sizeof(row->l.digest), col_text(st, lcol + 2));
	sfs_copy_str(row->l.selector, sizeof(row->l.selector), col_text(st, lcol + 3));
	rows->n++;
	return 0;
}

/* Reads all link rows of statement sid bound to id; key in kcol, link from lcol. */
static int read_link_rows(struct sfs_db *db, enum sfs_stmt sid, const char *id, int kcol, int lcol,
			  struct link_rows *rows)
{
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = -EIO;

	sfs_db_lock(db);
	st = stmt_text(db, sid, id, NULL);
	if (st) {
		r = 0;
		while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
			r = link_rows_push(rows, st, kcol, lcol);
		if (r == 0 && rc != SQLITE_DONE)
			r = sfs_db_error(db, sid, rc);
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}

static int sq_walk_backlinks(struct keystore *ks, const char *id, keystore_backlink_fn fn,
			     void *arg)
{
	struct link_rows rows = {0};
	int r = read_link_rows(to_db(ks), STMT_BACKLINK_WALK, id, 0, 1, &rows);

	for (size_t i = 0; r == 0 && i < rows.n; i++) {
		struct cache_link l = rows.v[i].l;
		/* The record digest the exporter uses (docs/semantics.md §4.1). */
		/* an imported link (output KEYSTORE_RECORD_LINK_OUTPUT) already
		 * holds the record digest */
		if (rows.v[i].l.output >= 0)
			sfs_root_key(rows.v[i].l.digest, rows.v[i].l.output, l.digest);
		l.output = 0;
		r = fn(rows.v[i].key, &l, arg);
	}
	link_rows_release(&rows);
	return r;
}

static int sq_walk_all_links(struct keystore *ks, const char *id, keystore_link_fn fn, void *arg)
{
	struct link_rows rows = {0};
	int r = read_link_rows(to_db(ks), STMT_LINK_ALL, id, 4, 0, &rows);

	for (size_t i = 0; r == 0 && i < rows.n; i++)
		r = fn(&rows.v[i].l, rows.v[i].key, arg);
	link_rows_release(&rows);
	return r;
}

static int sq_set_info(struct keystore *ks, const char *id, const char *digest, int output)
{
	struct sfs_db *db = to_db(ks);
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	st = stmt_text(db, STMT_KEYINFO_SET, id, digest);
	if (st) {
		sqlite3_bind_int(st, 3, output);
		r = sfs_db_step_done(db, STMT_KEYINFO_SET, st);
	}
	sfs_db_unlock(db);
	return r;
}

static int sq_get_info(struct keystore *ks, const char *id, char ret_digest[SFS_DIGEST_SIZE],
		       int *ret_output)
{
	struct sfs_db *db = to_db(ks);
	sqlite3_stmt *st;
	int r = -EIO;

	sfs_db_lock(db);
	st = stmt_text(db, STMT_KEYINFO_GET, id, NULL);
	if (st) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			sfs_copy_str(ret_digest, SFS_DIGEST_SIZE, col_text(st, 0));
			*ret_output = sqlite3_column_int(st, 1);
			r = 0;
		} else {
			r = rc == SQLITE_DONE ? -ENOENT : sfs_db_error(db, STMT_KEYINFO_GET, rc);
		}
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}

static void bind_output(sqlite3_stmt *st, const void *output)
{
	sqlite3_bind_int(st, 2, *(const int *)output);
}

static int sq_walk_by_digest(struct keystore *ks, const char *digest, int output, keystore_id_fn fn,
			     void *arg)
{
	return walk_strings(ks, STMT_LINK_BY_DIGEST, digest, NULL, bind_output, &output, fn, arg);
}

static int sq_batch_begin(struct keystore *ks)
{
	struct sfs_db *db = to_db(ks);
	int r;

	sfs_db_lock(db);
	r = sfs_db_begin(db);
	if (r < 0)
		sfs_db_unlock(db);
	return r;
}

static int sq_batch_end(struct keystore *ks, int err)
{
	struct sfs_db *db = to_db(ks);
	int r = sfs_db_end(db, err);

	sfs_db_unlock(db);
	return r;
}

static void sq_free(struct keystore *ks)
{
	free(ks);
}

static const struct keystore_ops sq_ops = {
    .exists = sq_exists,
    .walk = sq_walk,
    .walk_results = sq_walk_results,
    .walk_results_any = sq_walk_results_any,
    .load = sq_load,
    .add_result = sq_add_result,
    .release = sq_release,
    .walk_ids_by_result = sq_walk_ids_by_result,
    .add_link = sq_add_link,
    .walk_links = sq_walk_links,
    .record_links_maybe = record_links_maybe,
    .has_link = sq_has_link,
    .walk_backlinks = sq_walk_backlinks,
    .set_info = sq_set_info,
    .get_info = sq_get_info,
    .walk_by_digest = sq_walk_by_digest,
    .walk_all_links = sq_walk_all_links,
    .batch_begin = sq_batch_begin,
    .batch_end = sq_batch_end,
    .free = sq_free,
};

int keystore_sqlite_new(struct sfs_db *db, struct keystore **ret)
{
	struct ks_sqlite *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ks.ops = &sq_ops;
	s->db = db;
	s->record_links = -1;
	*ret = &s->ks;
	return 0;
}
