/*
 * test_prune.c — cache/prune.c: deleting a result releases its records and
 * keys, frees the blobs only it named and keeps the shared ones; a dry run
 * reports exactly what the real prune frees; orphans are collected, never a
 * referenced blob.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "du.h"
#include "fixture.h"
#include "holds.h"
#include "prune.h"
#include "tap.h"
#include "tree.h"

static struct cache_key *mk_key(const char *seed)
{
	char d[SFS_DIGEST_SIZE];
	sfs_sha256_digest(seed, strlen(seed), d);
	return cache_key_new(d, 0, 0);
}

static bool key_exists(struct sfs_cache *c, struct cache_key *k)
{
	struct keystore *ks = cache_manager_keystore(c->main);
	return ks->ops->exists(ks, cache_key_id(k, c->main));
}

static void test_cascade(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE], fa[SFS_HEX_SIZE], shared[SFS_HEX_SIZE];
	struct cache_key *a = mk_key("a"), *b = mk_key("b");
	struct cache_prune_report dry = {0}, real = {0};

	/* same dir and link ("d/f"), different file contents */
	fx_tree(c, "d", 0640, "content-a", ta);
	fx_tree(c, "d", 0640, "content-b", tb);
	CHECK_EQ_INT(cache_manager_save(c->main, a, ta, 10, NULL, NULL), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, b, tb, 20, NULL, NULL), 0);
	CHECK_EQ_INT(cas_put_buf(c->cas, "content-a", 9, fa), 0);
	CHECK_EQ_INT(cas_put_buf(c->cas, "d/f", 3, shared), 0);
	CHECK(cache_blob_referenced(c->db, fa));
	CHECK(key_exists(c, a));

	CHECK_EQ_INT(cache_prune_result(c, ta, true, &dry), 0);
	CHECK(key_exists(c, a));
	CHECK(cas_has(c->cas, fa));
	CHECK_EQ_INT(cache_prune_result(c, ta, false, &real), 0);
	CHECK_EQ_INT(dry.results, 1);
	CHECK_EQ_INT(dry.records, 1);
	CHECK_EQ_INT(dry.blobs, 2); /* the manifest and content-a */
	CHECK_EQ_INT(real.results, dry.results);
	CHECK_EQ_INT(real.records, dry.records);
	CHECK_EQ_INT(real.blobs, dry.blobs);
	CHECK_EQ_INT(real.bytes, dry.bytes);
	CHECK(!key_exists(c, a));
	CHECK(key_exists(c, b));
	CHECK(!cas_has(c->cas, fa));
	CHECK(!cas_has(c->cas, ta + 7));
	CHECK(cas_has(c->cas, shared)); /* b still names it */
	CHECK(cas_has(c->cas, tb + 7));
	cache_key_unref(a);
	cache_key_unref(b);
	sfs_cache_close(c);
}

static void test_lru_and_orphans(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE], orphan[SFS_HEX_SIZE];
	struct cache_key *a = mk_key("a"), *b = mk_key("b");
	struct cache_prune_report dry = {0}, real = {0}, col = {0};
	uint64_t total = 0;

	fx_tree(c, "d", 0640, "content-a", ta);
	fx_tree(c, "e", 0640, "content-b", tb);
	CHECK_EQ_INT(cache_manager_save(c->main, a, ta, 10, NULL, NULL), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, b, tb, 20, NULL, NULL), 0);
	CHECK_EQ_INT(cas_put_buf(c->cas, "nobody", 6, orphan), 0);
	CHECK_EQ_INT(cache_referenced_bytes(c->db, &total), 0);
	CHECK(total > 0);
	/* keep one byte less than everything: only the least recently used goes */
	CHECK_EQ_INT(cache_prune(c, total - 1, 0, true, &dry), 0);
	CHECK_EQ_INT(cache_prune(c, total - 1, 0, false, &real), 0);
	CHECK_EQ_INT(dry.results, 1);
	CHECK_EQ_INT(real.results, 1);
	CHECK_EQ_INT(real.bytes, dry.bytes);
	CHECK(!cas_has(c->cas, ta + 7));
	CHECK(cas_has(c->cas, tb + 7));
	CHECK(cas_has(c->cas, orphan));
	CHECK_EQ_INT(cache_prune_collect(c, true, &col), 0);
	CHECK_EQ_INT(col.blobs, 1);
	CHECK(!cas_has(c->cas, orphan));
	CHECK(cas_has(c->cas, tb + 7));
	char res[SFS_DIGEST_SIZE];
	struct cache_record *recs = NULL;
	size_t n = 0;
	CHECK_EQ_INT(cache_manager_records(c->main, b, &recs, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(cache_manager_load(c->main, &recs[0], res, NULL), 0);
	free(recs);
	cache_key_unref(a);
	cache_key_unref(b);
	sfs_cache_close(c);
}

/* A store from before blob_refs: recover gives its results their references
 * before it collects orphans, so only the orphan goes. */
static void test_recover(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ta[SFS_DIGEST_SIZE], fa[SFS_HEX_SIZE], orphan[SFS_HEX_SIZE];
	struct cache_key *a = mk_key("a");
	struct cache_prune_report rep = {0};
	uint64_t refs = 0;

	fx_tree(c, "d", 0640, "content-a", ta);
	CHECK_EQ_INT(cache_manager_save(c->main, a, ta, 10, NULL, NULL), 0);
	CHECK_EQ_INT(cas_put_buf(c->cas, "content-a", 9, fa), 0);
	CHECK_EQ_INT(cas_put_buf(c->cas, "killed before its save", 22, orphan), 0);
	sfs_db_lock(c->db);
	CHECK_EQ_INT(sqlite3_exec(sfs_db_handle(c->db), "DELETE FROM blob_refs", NULL, NULL, NULL),
		     SQLITE_OK);
	sfs_db_unlock(c->db);
	CHECK(!cache_blob_referenced(c->db, fa));
	CHECK_EQ_INT(cache_prune_recover(c, &rep, &refs), 0);
	CHECK_EQ_INT(refs, 1);
	CHECK_EQ_INT(rep.blobs, 1);
	CHECK(!cas_has(c->cas, orphan));
	CHECK(cas_has(c->cas, fa));
	CHECK(cas_has(c->cas, ta + 7));
	CHECK(cache_blob_referenced(c->db, fa));
	/* a second mount has nothing to do */
	rep = (struct cache_prune_report){0};
	CHECK_EQ_INT(cache_prune_recover(c, &rep, &refs), 0);
	CHECK_EQ_INT(rep.blobs, 0);
	cache_key_unref(a);
	sfs_cache_close(c);
}

/* The op filter deletes only what an op of that kind made; du's total is what
 * a full prune frees, shared bytes included. */
static void test_filter_and_du(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE];
	struct cache_key *a = mk_key("a"), *b = mk_key("b");
	struct cache_result ra, rb;
	struct cache_prune_report dry = {0}, real = {0};
	struct cache_du du;

	fx_tree(c, "d", 0640, "content-a", ta);
	fx_tree(c, "d", 0640, "content-b", tb); /* the link blob "d/f"-like entries shared */
	CHECK_EQ_INT(cache_manager_save(c->main, a, ta, 10, NULL, &ra), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, b, tb, 20, NULL, &rb), 0);
	CHECK_EQ_INT(cache_record_describe(c->db, ra.id, "exec", "a: sh -c x"), 0);
	CHECK_EQ_INT(cache_record_describe(c->db, rb.id, "file", "b: file mkfile"), 0);
	CHECK_EQ_INT(cache_du_get(c, &du), 0);
	CHECK_EQ_INT(du.n, 2);
	uint64_t lines = 0;
	for (size_t i = 0; i < du.n; i++) {
		CHECK(du.v[i].reclaimable <= du.v[i].size);
		CHECK(du.v[i].op != NULL);
		lines += du.v[i].reclaimable;
	}
	CHECK(du.v[0].size >= du.v[1].size);
	uint64_t want = du.total_reclaimable;
	CHECK(lines <= want);
	cache_du_release(&du);

	struct cache_prune_opts o = {.op = "exec", .dry_run = true};
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &dry), 0);
	o.dry_run = false;
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &real), 0);
	CHECK_EQ_INT(dry.results, 1);
	CHECK_EQ_INT(real.results, 1);
	CHECK_EQ_INT(real.bytes, dry.bytes);
	CHECK(!cas_has(c->cas, ta + 7));
	CHECK(cas_has(c->cas, tb + 7));
	o = (struct cache_prune_opts){.op = "merge"};
	real = (struct cache_prune_report){0};
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &real), 0);
	CHECK_EQ_INT(real.results, 0);
	o = (struct cache_prune_opts){0};
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &real), 0);
	CHECK_EQ_INT(real.results, 1);
	CHECK_EQ_INT(real.bytes + dry.bytes, want);
	CHECK_EQ_INT(cache_du_get(c, &du), 0);
	CHECK_EQ_INT(du.n, 0);
	CHECK_EQ_INT(du.total_size, 0);
	cache_du_release(&du);
	cache_key_unref(a);
	cache_key_unref(b);
	sfs_cache_close(c);
}

/* A dry run in batches of one (read-only, what it would take kept in
 * memory) reports what the real prune then frees: the file three results
 * share counts once, with the last of them, and not at all while a held
 * result still names it. */
static void test_dry_run_batches(void)
{
	struct sfs_cache *c = fx_cache_open();
	const char *dirs[4] = {"d1", "d2", "d3", "d4"};
	const char *data[4] = {"shared", "shared", "own-3", "shared"};
	char t[4][SFS_DIGEST_SIZE], shared[SFS_HEX_SIZE];
	struct cache_key *k[4];
	struct cache_prune_report dry = {0}, real = {0}, dry2 = {0}, real2 = {0};
	struct cache_prune_opts o = {.dry_run = true, .batch = 1};

	for (int i = 0; i < 4; i++) {
		fx_tree(c, dirs[i], 0640, data[i], t[i]);
		k[i] = mk_key(dirs[i]);
		CHECK_EQ_INT(cache_manager_save(c->main, k[i], t[i], 10 + i, NULL, NULL), 0);
	}
	CHECK_EQ_INT(cas_put_buf(c->cas, "shared", 6, shared), 0);
	CHECK_EQ_INT(cache_hold(c->holds, t[3]), 0);
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &dry), 0);
	CHECK(cas_has(c->cas, t[0] + 7)); /* nothing changed */
	o.dry_run = false;
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &real), 0);
	CHECK_EQ_INT(dry.results, 3);
	CHECK_EQ_INT(real.results, dry.results);
	CHECK_EQ_INT(real.records, dry.records);
	CHECK_EQ_INT(real.blobs, dry.blobs);
	CHECK_EQ_INT(real.bytes, dry.bytes);
	CHECK(cas_has(c->cas, shared)); /* the held one names it */
	cache_unhold(c->holds, t[3]);
	o.dry_run = true;
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &dry2), 0);
	o.dry_run = false;
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &real2), 0);
	CHECK_EQ_INT(dry2.results, 1);
	CHECK_EQ_INT(real2.results, 1);
	CHECK_EQ_INT(real2.blobs, dry2.blobs);
	CHECK_EQ_INT(real2.bytes, dry2.bytes);
	CHECK(!cas_has(c->cas, shared));
	for (int i = 0; i < 4; i++)
		cache_key_unref(k[i]);
	sfs_cache_close(c);
}

/* A blob an op found stored and reused, collected before the save names it: the
 * save fails and leaves no row, so no record can point at the missing blob. */
static void test_save_sees_collected_blob(void)
{
	struct sfs_cache *c = fx_cache_open();
	char t[SFS_DIGEST_SIZE], f[SFS_HEX_SIZE];
	struct cache_key *k = mk_key("reused");

	fx_tree(c, "d", 0640, "content-r", t);
	CHECK_EQ_INT(cas_put_buf(c->cas, "content-r", 9, f), 0);
	CHECK_EQ_INT(cas_remove(c->cas, f), 0); /* what a prune did in between */
	CHECK(cache_manager_save(c->main, k, t, 10, NULL, NULL) < 0);
	CHECK(!cache_blob_referenced(c->db, f));
	CHECK(!key_exists(c, k));
	CHECK_EQ_INT(cas_put_buf(c->cas, "content-r", 9, f), 0); /* stored again */
	CHECK_EQ_INT(cache_manager_save(c->main, k, t, 20, NULL, NULL), 0);
	CHECK(cache_blob_referenced(c->db, f));
	cache_key_unref(k);
	sfs_cache_close(c);
}

/* The first column of sql's first row, as an integer (-1: no row or an error). */
static int64_t sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	CHECK_EQ_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (st && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t result_num(sqlite3 *db, const char *id)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT num FROM results WHERE id = '%s'", id);
	return sql_int(db, sql);
}

/* blob_refs's encoding (db.h): owners are results.num, growing with each new result and
 * kept by a second save; blobs are the 32 bytes of their digest; a prune takes the rows. */
static void test_encoding(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE], fa[SFS_HEX_SIZE], sql[256];
	struct cache_key *a = mk_key("a"), *b = mk_key("b"), *a2 = mk_key("a2");
	struct cache_prune_report rep = {0};
	sqlite3 *db = sfs_db_handle(c->db);

	fx_tree(c, "d", 0640, "content-a", ta);
	fx_tree(c, "d", 0640, "content-b", tb);
	CHECK_EQ_INT(cache_manager_save(c->main, a, ta, 10, NULL, NULL), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, b, tb, 20, NULL, NULL), 0);
	CHECK_EQ_INT(cas_put_buf(c->cas, "content-a", 9, fa), 0);
	sfs_db_lock(c->db);
	int64_t na = result_num(db, ta), nb = result_num(db, tb);
	CHECK(na > 0);
	CHECK(nb > na);
	CHECK_EQ_INT(sql_int(db, "SELECT count(*) FROM blob_refs WHERE typeof(owner) <> 'integer'"
				 " OR typeof(blob) <> 'blob' OR length(blob) <> 32"),
		     0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blob_refs WHERE owner = %lld",
		 (long long)na);
	int64_t rows_a = sql_int(db, sql);
	CHECK(rows_a >= 2); /* the manifest and the file, at least */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM blob_refs WHERE owner = %lld AND blob = sfs_unhex('%s')"
		 " AND lower(hex(blob)) = '%s'",
		 (long long)na, fa, fa);
	CHECK_EQ_INT(sql_int(db, sql), 1);
	sfs_db_unlock(c->db);
	/* a second save of the same tree (another key) keeps its number and rows */
	CHECK_EQ_INT(cache_manager_save(c->main, a2, ta, 30, NULL, NULL), 0);
	sfs_db_lock(c->db);
	CHECK_EQ_INT(result_num(db, ta), na);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blob_refs WHERE owner = %lld",
		 (long long)na);
	CHECK_EQ_INT(sql_int(db, sql), rows_a);
	sfs_db_unlock(c->db);
	CHECK(cache_blob_referenced(c->db, fa));
	CHECK(cache_blob_referenced(c->db, ta)); /* "sha256:" or bare */
	CHECK(!cache_blob_referenced(
	    c->db, "0000000000000000000000000000000000000000000000000000000000000000"));
	CHECK(cache_blob_referenced(c->db, "not a digest")); /* doubt keeps */
	CHECK_EQ_INT(cache_prune_result(c, ta, false, &rep), 0);
	CHECK(!cache_blob_referenced(c->db, fa));
	sfs_db_lock(c->db);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blob_refs WHERE owner = %lld",
		 (long long)na);
	CHECK_EQ_INT(sql_int(db, sql), 0);
	sfs_db_unlock(c->db);
	cache_key_unref(a);
	cache_key_unref(b);
	cache_key_unref(a2);
	sfs_cache_close(c);
}

/* What the prune and du say of a store, to compare a store before and after migration. */
struct figures {
	uint64_t blobs, bytes, du_total, du_reclaimable, du_sizes, dry_results, dry_blobs,
	    dry_bytes;
	size_t du_n;
};

static struct figures figures_of(struct sfs_cache *c)
{
	struct figures f = {0};
	struct cache_du du;
	struct cache_prune_report dry = {0};
	struct cache_prune_opts o = {.dry_run = true, .batch = 1};

	CHECK_EQ_INT(cache_referenced(c->db, &f.blobs, &f.bytes), 0);
	CHECK_EQ_INT(cache_du_get(c, &du), 0);
	f.du_n = du.n;
	f.du_total = du.total_size;
	f.du_reclaimable = du.total_reclaimable;
	for (size_t i = 0; i < du.n; i++)
		f.du_sizes += du.v[i].size * 1000 + du.v[i].reclaimable;
	cache_du_release(&du);
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &dry), 0);
	f.dry_results = dry.results;
	f.dry_blobs = dry.blobs;
	f.dry_bytes = dry.bytes;
	return f;
}

static void check_figures(const struct figures *a, const struct figures *b)
{
	CHECK_EQ_INT(a->blobs, b->blobs);
	CHECK_EQ_INT(a->bytes, b->bytes);
	CHECK_EQ_INT(a->du_n, b->du_n);
	CHECK_EQ_INT(a->du_total, b->du_total);
	CHECK_EQ_INT(a->du_reclaimable, b->du_reclaimable);
	CHECK_EQ_INT(a->du_sizes, b->du_sizes);
	CHECK_EQ_INT(a->dry_results, b->dry_results);
	CHECK_EQ_INT(a->dry_blobs, b->dry_blobs);
	CHECK_EQ_INT(a->dry_bytes, b->dry_bytes);
}

/* A tree of more blobs than one statement's rows (db.h SFS_DB_BATCH_ROWS), some of
 * them named twice: each blob is one row of the result, with its size, however many
 * statements wrote them. */
static void test_many_refs(void)
{
	enum { NFILES = 2 * SFS_DB_BATCH_ROWS + 7, NDISTINCT = NFILES - 3 };
	struct sfs_cache *c = fx_cache_open();
	struct tree_entry e[NFILES + 1] = {{.type = 'd', .mode = 0755, .path = "."}};
	char paths[NFILES][16], content[32], sql[256];
	struct cache_key *k = mk_key("many");
	struct tree *t = NULL;
	sqlite3 *db = sfs_db_handle(c->db);

	for (int i = 0; i < NFILES; i++) {
		/* the last three repeat the first three's content */
		int n = snprintf(content, sizeof(content), "content %d", i % NDISTINCT);
		snprintf(paths[i], sizeof(paths[i]), "f%02d", i);
		e[i + 1] = (struct tree_entry){
		    .type = 'f', .mode = 0644, .size = (uint64_t)n, .path = paths[i]};
		CHECK_EQ_INT(cas_put_buf(c->cas, content, (size_t)n, e[i + 1].hex), 0);
	}
	CHECK_EQ_INT(tree_from_entries(c->cas, e, NFILES + 1, &t), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, k, t->id, 10, NULL, NULL), 0);
	sfs_db_lock(c->db);
	int64_t num = result_num(db, t->id);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blob_refs WHERE owner = %lld",
		 (long long)num);
	CHECK_EQ_INT(sql_int(db, sql), NDISTINCT + 1); /* and the manifest */
	for (int i = 0; i < NFILES; i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM blob_refs WHERE owner = %lld"
			 " AND blob = sfs_unhex('%s') AND size = %llu",
			 (long long)num, e[i + 1].hex, (unsigned long long)e[i + 1].size);
		CHECK_EQ_INT(sql_int(db, sql), 1);
	}
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM blob_refs WHERE owner = %lld AND blob = sfs_unhex('%s')"
		 " AND size > 0",
		 (long long)num, t->id + 7);
	CHECK_EQ_INT(sql_int(db, sql), 1);
	sfs_db_unlock(c->db);
	for (int i = 0; i < NFILES; i++)
		CHECK(cache_blob_referenced(c->db, e[i + 1].hex));
	tree_free(t);
	cache_key_unref(k);
	sfs_cache_close(c);
}

/* Schema 2's results (no num) and blob_refs (owner id, blob hex TEXT), as that version
 * wrote them, from this version's rows. */
#define SQL_TO_SCHEMA_2                                                                            \
	"CREATE TABLE results_old(id TEXT PRIMARY KEY, size INTEGER NOT NULL,"                     \
	" created INTEGER NOT NULL, last_used INTEGER NOT NULL);"                                  \
	"INSERT INTO results_old SELECT id, size, created, last_used FROM results ORDER BY num;"   \
	"CREATE TABLE blob_refs_old(owner TEXT NOT NULL, blob TEXT NOT NULL,"                      \
	" size INTEGER NOT NULL, PRIMARY KEY(owner, blob)) WITHOUT ROWID;"                         \
	"INSERT INTO blob_refs_old SELECT r.id, lower(hex(b.blob)), b.size FROM blob_refs b"       \
	" JOIN results r ON r.num = b.owner;"                                                      \
	"DROP TABLE blob_refs; DROP TABLE results;"                                                \
	"ALTER TABLE results_old RENAME TO results; ALTER TABLE blob_refs_old RENAME TO "          \
	"blob_refs;"                                                                               \
	"CREATE INDEX blob_refs_by_blob ON blob_refs(blob);"                                       \
	"CREATE INDEX results_by_last_used ON results(last_used, id);"                             \
	"PRAGMA user_version = 2;"

/* A schema 2 store migrates at open, in one transaction: a failed migration (here a
 * table in the way of the rename) leaves the old schema whole, and the next open
 * migrates; the prune, du and stats figures are those from before the conversion. */
static void test_migrate_schema_2(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE], tc[SFS_DIGEST_SIZE], path[4200], dir[4096];
	struct cache_key *a = mk_key("a"), *b = mk_key("b"), *k = mk_key("c");
	sqlite3 *raw = NULL;

	fx_tree(c, "d", 0640, "content-a", ta);
	fx_tree(c, "d", 0640, "content-b", tb); /* shares the link blob with a */
	fx_tree(c, "e", 0640, "content-a", tc); /* shares the file blob with a */
	CHECK_EQ_INT(cache_manager_save(c->main, a, ta, 10, NULL, NULL), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, b, tb, 20, NULL, NULL), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, k, tc, 30, NULL, NULL), 0);
	struct figures before = figures_of(c);
	CHECK_EQ_INT(before.du_n, 3);
	CHECK(before.dry_blobs >= 5);
	snprintf(dir, sizeof(dir), "%s", c->state_dir);
	snprintf(path, sizeof(path), "%s/solverfs.db", dir);
	sfs_db_lock(c->db);
	int64_t rows = sql_int(sfs_db_handle(c->db), "SELECT count(*) FROM blob_refs");
	sfs_db_unlock(c->db);
	sfs_cache_close(c);

	CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
	CHECK_EQ_INT(
	    sqlite3_exec(raw, SQL_TO_SCHEMA_2 "CREATE TABLE results_v2(x);", NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_EQ_INT(sqlite3_close(raw), SQLITE_OK);
	c = NULL;
	CHECK(sfs_cache_open(dir, &c, NULL) < 0);
	CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
	CHECK_EQ_INT(sql_int(raw, "PRAGMA user_version"), 2);
	CHECK_EQ_INT(sql_int(raw, "SELECT count(*) FROM pragma_table_info('blob_refs')"
				  " WHERE name = 'owner' AND type = 'TEXT'"),
		     1);
	CHECK_EQ_INT(sql_int(raw, "SELECT count(*) FROM blob_refs"), rows);
	CHECK_EQ_INT(sql_int(raw, "SELECT count(*) FROM results"), 3);
	CHECK_EQ_INT(sqlite3_exec(raw, "DROP TABLE results_v2", NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_close(raw), SQLITE_OK);

	CHECK_EQ_INT(sfs_cache_open(dir, &c, NULL), 0);
	sqlite3 *db = sfs_db_handle(c->db);
	sfs_db_lock(c->db);
	CHECK_EQ_INT(sql_int(db, "PRAGMA user_version"), 3);
	CHECK_EQ_INT(sql_int(db, "SELECT count(*) FROM blob_refs"), rows);
	CHECK_EQ_INT(sql_int(db, "SELECT count(*) FROM blob_refs WHERE typeof(owner) <> 'integer'"
				 " OR length(blob) <> 32"),
		     0);
	CHECK_EQ_INT(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v2'"), 0);
	CHECK(result_num(db, ta) < result_num(db, tb));
	sfs_db_unlock(c->db);
	struct figures after = figures_of(c);
	check_figures(&before, &after);
	/* and a real prune of everything frees what the dry run said */
	struct cache_prune_report real = {0};
	struct cache_prune_opts o = {.batch = 2};
	CHECK_EQ_INT(cache_prune_run(c, &o, NULL, &real), 0);
	CHECK_EQ_INT(real.results, before.dry_results);
	CHECK_EQ_INT(real.bytes, before.dry_bytes);
	CHECK(!cas_has(c->cas, ta + 7));
	cache_key_unref(a);
	cache_key_unref(b);
	cache_key_unref(k);
	sfs_cache_close(c);
}

int main(void)
{
	RUN(test_encoding);
	RUN(test_many_refs);
	RUN(test_migrate_schema_2);
	RUN(test_recover);
	RUN(test_filter_and_du);
	RUN(test_cascade);
	RUN(test_lru_and_orphans);
	RUN(test_dry_run_batches);
	RUN(test_save_sees_collected_blob);
	return tap_done();
}
