/*
 * test_prune.c — cache/prune.c: deleting a result releases its records and
 * keys, frees the blobs only it named and keeps the shared ones; a dry run
 * reports exactly what the real prune frees; orphans are collected, never a
 * referenced blob.
 */
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

int main(void)
{
	RUN(test_recover);
	RUN(test_filter_and_du);
	RUN(test_cascade);
	RUN(test_lru_and_orphans);
	RUN(test_dry_run_batches);
	RUN(test_save_sees_collected_blob);
	return tap_done();
}
