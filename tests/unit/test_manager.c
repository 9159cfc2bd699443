/*
 * test_manager.c — the cache manager (docs/semantics.md §2.3, §2.4, §4.4; §9.4:
 * cache_test.go) over both key storages with a fake result storage, then the
 * real result storage over the content store and sfs_cache_open.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "cache.h"
#include "fixture.h"
#include "manager.h"
#include "result_storage.h"
#include "tap.h"
#include "tree.h"

/* ---- a result storage whose results vanish on request ---- */

struct fake_rs {
	struct result_storage rs;
	int saves;
	char missing[8][SFS_DIGEST_SIZE];
	int nmissing;
};

static bool fake_missing(struct fake_rs *f, const char *result)
{
	for (int i = 0; i < f->nmissing; i++)
		if (strcmp(f->missing[i], result) == 0)
			return true;
	return false;
}

static int fake_save(struct result_storage *rs, const char *result_id, int64_t created_at,
		     struct cache_result *ret)
{
	struct fake_rs *f = (struct fake_rs *)rs;
	__atomic_add_fetch(&f->saves, 1, __ATOMIC_RELAXED);
	keystore_new_id(ret->id);
	snprintf(ret->result, sizeof(ret->result), "%s", result_id);
	ret->created_at = created_at;
	return 0;
}

static int fake_load(struct result_storage *rs, const struct cache_result *r,
		     char ret_result_id[SFS_DIGEST_SIZE], char **ret_msg)
{
	if (fake_missing((struct fake_rs *)rs, r->result))
		return -ENOENT;
	snprintf(ret_result_id, SFS_DIGEST_SIZE, "%s", r->result);
	return 0;
}

static bool fake_exists(struct result_storage *rs, const struct cache_result *r)
{
	return !fake_missing((struct fake_rs *)rs, r->result);
}

static void fake_free(struct result_storage *rs)
{
	free(rs);
}

static const struct result_storage_ops fake_ops = {fake_save, fake_load, fake_exists, fake_free};

/* ---- fixture ---- */

static bool use_sqlite;
static struct sfs_db *cur_db;
static struct fake_rs *cur_rs;

static struct cache_manager *cm_open(void)
{
	struct keystore *ks = fx_keystore_open(use_sqlite, &cur_db);
	struct cache_manager *cm = NULL;

	cur_rs = calloc(1, sizeof(*cur_rs));
	cur_rs->rs.ops = &fake_ops;
	CHECK_EQ_INT(cache_manager_new("local", ks, &cur_rs->rs, &cm), 0);
	return cm;
}

static void cm_close(struct cache_manager *cm)
{
	cache_manager_free(cm);
	cur_db = sfs_db_close(cur_db);
	cur_rs = NULL;
}

static void dgst(const char *seed, char ret[SFS_DIGEST_SIZE])
{
	sfs_sha256_digest(seed, strlen(seed), ret);
}

static struct cache_key *root(const char *seed, int output)
{
	char d[SFS_DIGEST_SIZE];
	dgst(seed, d);
	return cache_key_new(d, output, 0);
}

/* A key for op `seed` with one input whose alternatives are deps[0..n). */
static struct cache_key *child(const char *seed, struct cache_key **deps, const char **sels,
			       size_t n)
{
	char d[SFS_DIGEST_SIZE];
	struct cache_key *k;

	dgst(seed, d);
	k = cache_key_new(d, 0, 1);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_INT(cache_key_add_dep(k, 0, sels ? sels[i] : "", deps[i]), 0);
	return k;
}

static int save(struct cache_manager *cm, struct cache_key *k, const char *res_seed,
		int64_t created, struct cache_result *ret)
{
	char res[SFS_DIGEST_SIZE];
	dgst(res_seed, res);
	return cache_manager_save(cm, k, res, created, NULL, ret);
}

static size_t nrecords(struct cache_manager *cm, struct cache_key *k)
{
	struct cache_record *v = NULL;
	size_t n = 0;
	CHECK_EQ_INT(cache_manager_records(cm, k, &v, &n), 0);
	free(v);
	return n;
}

/* Queries input `input` of op `seed` from one alternative. */
static size_t query1(struct cache_manager *cm, struct cache_key *dep, const char *sel, int input,
		     const char *seed, char ret_id[CACHE_ID_SIZE])
{
	struct cache_key_with_selector d = {.key = dep};
	struct cache_key **v = NULL;
	char dg[SFS_DIGEST_SIZE];
	size_t n = 0;

	snprintf(d.selector, sizeof(d.selector), "%s", sel ? sel : "");
	dgst(seed, dg);
	CHECK_EQ_INT(cache_manager_query(cm, &d, 1, input, dg, 0, &v, &n), 0);
	if (ret_id)
		ret_id[0] = '\0';
	if (n && ret_id)
		snprintf(ret_id, CACHE_ID_SIZE, "%s", cache_key_id(v[0], cm));
	for (size_t i = 0; i < n; i++)
		cache_key_unref(v[i]);
	free(v);
	return n;
}

static void free_keys(struct cache_key **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cache_key_unref(v[i]);
	free(v);
}

/* ---- tests ---- */

static void test_root_query(void)
{
	struct cache_manager *cm = cm_open();
	struct cache_key *k = root("seed0", 0), **v = NULL;
	char d[SFS_DIGEST_SIZE];
	size_t n = 9;

	dgst("seed0", d);
	CHECK_EQ_INT(cache_manager_query(cm, NULL, 0, 0, d, 0, &v, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(save(cm, k, "result0", 100, NULL), 0);
	CHECK_EQ_INT(cache_manager_query(cm, NULL, 0, 0, d, 0, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_STR(cache_key_id(v[0], cm), k->root_id);
		CHECK_EQ_INT(nrecords(cm, v[0]), 1);
	}
	free_keys(v, n);
	/* Another output of the same op is another key. */
	CHECK_EQ_INT(cache_manager_query(cm, NULL, 0, 0, d, 1, &v, &n), 0);
	CHECK_EQ_INT(n, 0);
	cache_key_unref(k);
	cm_close(cm);
}

static void test_get_id_reuses_linked_key(void)
{
	struct cache_manager *cm = cm_open();
	struct cache_key *r0 = root("seed0", 0);
	struct cache_key *k1 = child("seed1", &r0, NULL, 1);
	struct cache_key *k1b = child("seed1", &r0, NULL, 1);
	struct cache_key *other = child("seed2", &r0, NULL, 1);
	char id1[CACHE_ID_SIZE], found[CACHE_ID_SIZE];

	CHECK_EQ_INT(save(cm, r0, "result0", 100, NULL), 0);
	CHECK(cache_key_id(k1, cm) == NULL);
	CHECK_EQ_INT(save(cm, k1, "result1", 200, NULL), 0);
	snprintf(id1, sizeof(id1), "%s", cache_key_id(k1, cm));
	/* A fresh id: 25 chars of base36. */
	CHECK_EQ_INT(strlen(id1), 25);
	CHECK(strspn(id1, "0123456789abcdefghijklmnopqrstuvwxyz") == 25);

	/* An equal key built again finds that id through the links. */
	CHECK(cache_key_id(k1b, cm) == NULL);
	CHECK_EQ_INT(nrecords(cm, k1b), 1);
	CHECK_EQ_STR(cache_key_id(k1b, cm), id1);
	CHECK_EQ_INT(query1(cm, r0, NULL, 0, "seed1", found), 1);
	CHECK_EQ_STR(found, id1);

	/* A key nothing links to gets a new random id, and no records. */
	CHECK_EQ_INT(nrecords(cm, other), 0);
	CHECK(cache_key_id(other, cm) != NULL);
	CHECK(strcmp(cache_key_id(other, cm), id1) != 0);
	CHECK_EQ_INT(strlen(cache_key_id(other, cm)), 25);
	CHECK_EQ_INT(query1(cm, r0, NULL, 0, "seed2", NULL), 0);

	cache_key_unref(k1);
	cache_key_unref(k1b);
	cache_key_unref(other);
	cache_key_unref(r0);
	cm_close(cm);
}

static void test_selector_must_match(void)
{
	struct cache_manager *cm = cm_open();
	struct cache_key *r0 = root("seed0", 0);
	const char *sel[] = {
	    "sha256:5e1e000000000000000000000000000000000000000000000000000000000000"};
	struct cache_key *k = child("seed1", &r0, sel, 1);

	CHECK_EQ_INT(save(cm, k, "result1", 200, NULL), 0);
	CHECK_EQ_INT(query1(cm, r0, sel[0], 0, "seed1", NULL), 1);
	CHECK_EQ_INT(query1(cm, r0, NULL, 0, "seed1", NULL), 0);
	CHECK_EQ_INT(query1(cm, r0, sel[0], 1, "seed1", NULL), 0); /* other input */
	cache_key_unref(k);
	cache_key_unref(r0);
	cm_close(cm);
}

/* getIDFromDeps: input 0 is a union over alternatives, later inputs
 * intersect per alternative. */
static void test_get_id_multi_input(void)
{
	struct cache_manager *cm = cm_open();
	struct cache_key *a = root("a", 0), *b = root("b", 0), *c = root("c", 0);
	char d[SFS_DIGEST_SIZE], id[CACHE_ID_SIZE];
	struct cache_key *k, *k2, *k3;

	dgst("op", d);
	k = cache_key_new(d, 0, 2);
	CHECK_EQ_INT(cache_key_add_dep(k, 0, "", a), 0);
	CHECK_EQ_INT(cache_key_add_dep(k, 1, "", b), 0);
	CHECK_EQ_INT(save(cm, k, "res", 1, NULL), 0);
	snprintf(id, sizeof(id), "%s", cache_key_id(k, cm));

	/* Input 0: a or c (c has no link) still finds it; input 1: b. */
	k2 = cache_key_new(d, 0, 2);
	CHECK_EQ_INT(cache_key_add_dep(k2, 0, "", c), 0);
	CHECK_EQ_INT(cache_key_add_dep(k2, 0, "", a), 0);
	CHECK_EQ_INT(cache_key_add_dep(k2, 1, "", b), 0);
	CHECK_EQ_INT(nrecords(cm, k2), 1);
	CHECK_EQ_STR(cache_key_id(k2, cm), id);

	/* Input 1 with alternatives b and c: c does not link, so no match. */
	k3 = cache_key_new(d, 0, 2);
	CHECK_EQ_INT(cache_key_add_dep(k3, 0, "", a), 0);
	CHECK_EQ_INT(cache_key_add_dep(k3, 1, "", b), 0);
	CHECK_EQ_INT(cache_key_add_dep(k3, 1, "", c), 0);
	CHECK_EQ_INT(nrecords(cm, k3), 0);
	CHECK(strcmp(cache_key_id(k3, cm), id) != 0);

	cache_key_unref(k);
	cache_key_unref(k2);
	cache_key_unref(k3);
	cache_key_unref(a);
	cache_key_unref(b);
	cache_key_unref(c);
	cm_close(cm);
}

/* TestCarryOverFromSublink: querying two alternatives together links the
 * one that did not match, so it finds the key alone afterwards. */
static void test_carry_over(void)
{
	struct cache_manager *cm = cm_open();
	struct cache_key *def = root("def", 0), *slow = root("content", -1);
	struct cache_key *k = child("op", &slow, NULL, 1);
	struct cache_key_with_selector alts[2] = {{"", def}, {"", slow}};
	struct cache_key **v = NULL;
	char d[SFS_DIGEST_SIZE], id[CACHE_ID_SIZE];
	size_t n = 0;

	CHECK_EQ_INT(save(cm, k, "res", 1, NULL), 0);
	snprintf(id, sizeof(id), "%s", cache_key_id(k, cm));
	/* Only the content key was linked; the slow key exists though it has
	 * no results of its own. */
	CHECK(cache_manager_keystore(cm)->ops->exists(cache_manager_keystore(cm), slow->root_id));
	CHECK_EQ_INT(query1(cm, def, NULL, 0, "op", NULL), 0);

	dgst("op", d);
	CHECK_EQ_INT(cache_manager_query(cm, alts, 2, 0, d, 0, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1)
		CHECK_EQ_STR(cache_key_id(v[0], cm), id);
	free_keys(v, n);

	char found[CACHE_ID_SIZE];
	CHECK_EQ_INT(query1(cm, def, NULL, 0, "op", found), 1);
	CHECK_EQ_STR(found, id);
	cache_key_unref(k);
	cache_key_unref(def);
	cache_key_unref(slow);
	cm_close(cm);
}

/* Save links every alternative of every input, making the deps persistent
 * recursively (a dep that never got a result of its own). */
static void test_save_ensures_deps(void)
{
	struct cache_manager *cm = cm_open();
	struct keystore *ks = cache_manager_keystore(cm);
	struct cache_key *r0 = root("seed0", 0);
	struct cache_key *mid = child("mid", &r0, NULL, 1);
	struct cache_key *top = child("top", &mid, NULL, 1);
	char mid_id[CACHE_ID_SIZE], found[CACHE_ID_SIZE];

	CHECK_EQ_INT(save(cm, top, "res-top", 5, NULL), 0);
	CHECK(ks->ops->exists(ks, r0->root_id)); /* linked to mid */
	snprintf(mid_id, sizeof(mid_id), "%s", cache_key_id(mid, cm));
	CHECK(ks->ops->exists(ks, mid_id)); /* linked to top */
	CHECK_EQ_INT(nrecords(cm, mid), 0);
	CHECK_EQ_INT(nrecords(cm, r0), 0);

	CHECK_EQ_INT(query1(cm, r0, NULL, 0, "mid", found), 1);
	CHECK_EQ_STR(found, mid_id);
	/* From the found key object (no deps, its id known to cm) to top. */
	struct cache_key_with_selector from_mid = {"", NULL};
	struct cache_key **v = NULL;
	char dg[SFS_DIGEST_SIZE];
	size_t n = 0;

	dgst("mid", dg);
	CHECK_EQ_INT(cache_manager_query(cm, (struct cache_key_with_selector[]){{"", r0}}, 1, 0, dg,
					 0, &v, &n),
		     0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		from_mid.key = v[0];
		CHECK_EQ_STR(cache_key_id(v[0], cm), mid_id);
		CHECK_EQ_INT(query1(cm, from_mid.key, NULL, 0, "top", found), 1);
		CHECK_EQ_STR(found, cache_key_id(top, cm));
	}
	free_keys(v, n);

	cache_key_unref(top);
	cache_key_unref(mid);
	cache_key_unref(r0);
	cm_close(cm);
}

static void test_records_release_missing(void)
{
	struct cache_manager *cm = cm_open();
	struct keystore *ks = cache_manager_keystore(cm);
	struct cache_key *r0 = root("seed0", 0);
	struct cache_key *k = child("op", &r0, NULL, 1);
	struct cache_result rec_old, rec_new;
	struct cache_record *v = NULL;
	size_t n = 0;
	char id[CACHE_ID_SIZE];

	CHECK_EQ_INT(save(cm, k, "gone", 10, &rec_old), 0);
	CHECK_EQ_INT(save(cm, k, "kept", 20, &rec_new), 0);
	CHECK_EQ_INT(cur_rs->saves, 2);
	CHECK(strcmp(rec_old.id, rec_new.id) != 0);
	CHECK_EQ_INT(nrecords(cm, k), 2);

	dgst("gone", cur_rs->missing[cur_rs->nmissing++]);
	CHECK_EQ_INT(cache_manager_records(cm, k, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_STR(v[0].id, rec_new.id);
		CHECK_EQ_INT(v[0].created_at, 20);
		CHECK(v[0].cm == cm);
		CHECK_EQ_STR(v[0].key_id, cache_key_id(k, cm));
	}
	free(v);
	/* Released from the key storage, not just filtered. */
	struct cache_result tmp;
	snprintf(id, sizeof(id), "%s", cache_key_id(k, cm));
	CHECK_EQ_INT(ks->ops->load(ks, id, rec_old.id, &tmp), -ENOENT);
	CHECK_EQ_INT(ks->ops->load(ks, id, rec_new.id, &tmp), 0);

	/* The last record going away cascades: key and dep link are gone. */
	dgst("kept", cur_rs->missing[cur_rs->nmissing++]);
	CHECK_EQ_INT(nrecords(cm, k), 0);
	CHECK(!ks->ops->exists(ks, id));
	CHECK(!ks->ops->exists(ks, r0->root_id));
	CHECK_EQ_INT(query1(cm, r0, NULL, 0, "op", NULL), 0);
	cache_key_unref(k);
	cache_key_unref(r0);
	cm_close(cm);
}

static bool skip_id(const char *record_id, void *arg)
{
	return strcmp(record_id, arg) == 0;
}

/* HasRecords answers what Records would: yes while a record's result is there
 * and skip does not refuse it, releasing the missing ones the same way. */
static void test_has_records(void)
{
	struct cache_manager *cm = cm_open();
	struct keystore *ks = cache_manager_keystore(cm);
	struct cache_key *r0 = root("seed0", 0), *none = root("nothing", 0);
	struct cache_key *k = child("op", &r0, NULL, 1);
	struct cache_result rec_old, rec_new;
	struct cache_result tmp;
	char id[CACHE_ID_SIZE];

	CHECK_EQ_INT(cache_manager_has_records(cm, none, NULL, NULL), 0);
	CHECK_EQ_INT(save(cm, k, "gone", 10, &rec_old), 0);
	CHECK_EQ_INT(save(cm, k, "kept", 20, &rec_new), 0);
	CHECK_EQ_INT(cache_manager_has_records(cm, k, NULL, NULL), 1);
	CHECK_EQ_INT(cache_manager_has_records(cm, k, skip_id, rec_old.id), 1);
	CHECK_EQ_INT(cache_manager_has_records(cm, r0, NULL, NULL), 0); /* links only */

	dgst("gone", cur_rs->missing[cur_rs->nmissing++]);
	CHECK_EQ_INT(cache_manager_has_records(cm, k, NULL, NULL), 1);
	CHECK_EQ_INT(cache_manager_has_records(cm, k, skip_id, rec_new.id), 0);
	snprintf(id, sizeof(id), "%s", cache_key_id(k, cm));
	CHECK_EQ_INT(ks->ops->load(ks, id, rec_old.id, &tmp), -ENOENT); /* released */
	CHECK_EQ_INT(ks->ops->load(ks, id, rec_new.id, &tmp), 0);
	CHECK_EQ_INT(nrecords(cm, k), 1);

	/* the last one going: no, and the key and its dep link went (as Records) */
	dgst("kept", cur_rs->missing[cur_rs->nmissing++]);
	CHECK_EQ_INT(cache_manager_has_records(cm, k, NULL, NULL), 0);
	CHECK(!ks->ops->exists(ks, id));
	CHECK(!ks->ops->exists(ks, r0->root_id));
	cache_key_unref(k);
	cache_key_unref(none);
	cache_key_unref(r0);
	cm_close(cm);
}

static int count_id(const char *id, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void test_save_shared_record_and_load(void)
{
	struct cache_manager *cm = cm_open();
	struct keystore *ks = cache_manager_keystore(cm);
	struct cache_key *m0 = root("map0", 0), *m1 = root("map1", 0);
	struct cache_result rec, rec2;
	struct cache_record *v = NULL;
	char res[SFS_DIGEST_SIZE], got[SFS_DIGEST_SIZE];
	size_t n = 0;
	int count = 0;

	CHECK_EQ_INT(save(cm, m0, "res", 42, &rec), 0);
	CHECK_EQ_INT(cache_manager_save(cm, m1, NULL, 0, &rec, &rec2), 0);
	CHECK_EQ_STR(rec2.id, rec.id);
	CHECK_EQ_INT(rec2.created_at, 42);
	CHECK_EQ_INT(cur_rs->saves, 1); /* one execution, one record */

	CHECK_EQ_INT(ks->ops->walk_ids_by_result(ks, rec.id, count_id, &count), 0);
	CHECK_EQ_INT(count, 2);

	CHECK_EQ_INT(cache_manager_records(cm, m1, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		dgst("res", res);
		CHECK_EQ_INT(cache_manager_load(cm, &v[0], got, NULL), 0);
		CHECK_EQ_STR(got, res);
		struct cache_record bad = v[0];
		char *msg = NULL;
		snprintf(bad.key_id, sizeof(bad.key_id), "nokey");
		CHECK_EQ_INT(cache_manager_load(cm, &bad, got, &msg), -ENOENT);
		CHECK(msg && strstr(msg, "not found"));
		free(msg);
	}
	free(v);
	cache_key_unref(m0);
	cache_key_unref(m1);
	cm_close(cm);
}

static void test_best_record(void)
{
	struct cache_record r[4] = {0};

	CHECK(cache_records_best(r, 0) == NULL);
	r[0].created_at = 10, r[0].priority = 0;
	r[1].created_at = 30, r[1].priority = 0;
	r[2].created_at = 30, r[2].priority = 1;
	r[3].created_at = 20, r[3].priority = 5;
	CHECK(cache_records_best(r, 4) == &r[2]); /* newest, then higher priority */
	CHECK(cache_records_best(r, 2) == &r[1]);
	r[2].priority = 0;
	CHECK(cache_records_best(r, 4) == &r[1]); /* full tie: the first */
}

static void test_key_refs(void)
{
	struct cache_key *r0 = root("seed0", 0);
	struct cache_key *k = child("op", &r0, NULL, 1);

	CHECK_EQ_INT(r0->refs, 2);
	CHECK(cache_key_ref(k) == k);
	CHECK_EQ_INT(k->refs, 2);
	CHECK(cache_key_unref(k) == NULL);
	CHECK(cache_key_unref(k) == NULL);
	CHECK_EQ_INT(r0->refs, 1);
	CHECK_EQ_INT(cache_key_add_dep(r0, 0, "", r0), -EINVAL);
	char want[SFS_DIGEST_SIZE];
	sfs_root_key(r0->digest, 0, want);
	CHECK_EQ_STR(r0->root_id, want);
	cache_key_unref(r0);
	CHECK(cache_key_unref(NULL) == NULL);
}

/* ---- the real result storage and the cache of a STATE_DIR ---- */

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
	close(fd);
}

static void test_cache_open_save_reopen(void)
{
	char *state = tap_tmpdir(), *src = tap_tmpdir(), dir[512], path[600];
	struct sfs_cache *c = NULL;
	struct tree *t = NULL;
	struct cache_key *k = root("seed0", 0);
	struct cache_record *v = NULL;
	struct cache_result rec;
	char got[SFS_DIGEST_SIZE], *msg = NULL;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/a/b", state); /* created with parents */
	snprintf(path, sizeof(path), "%s/file", src);
	write_file(path, "hello world\n");
	CHECK_EQ_INT(sfs_cache_open(dir, &c, &msg), 0);
	if (!c) {
		fprintf(stderr, "  %s\n", msg);
		free(msg);
		cache_key_unref(k);
		return;
	}
	CHECK_EQ_STR(cache_manager_id(c->main), "local");
	CHECK_EQ_INT(tree_ingest(c->cas, src, &(struct tree_ingest_opts){0}, &t, NULL), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, k, t->id, 7, NULL, &rec), 0);
	CHECK_EQ_INT(strlen(rec.id), 25);
	CHECK_EQ_STR(rec.result, t->id);
	/* Saving a result that is not in the store is refused. */
	CHECK_EQ_INT(cache_manager_save(c->main, k,
					"sha256:00000000000000000000000000000000"
					"00000000000000000000000000000000",
					7, NULL, NULL),
		     -ENOENT);
	c = sfs_cache_close(c);

	CHECK_EQ_INT(sfs_cache_open(dir, &c, NULL), 0);
	CHECK_EQ_INT(cache_manager_records(c->main, k, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(cache_manager_load(c->main, &v[0], got, NULL), 0);
		CHECK_EQ_STR(got, t->id);
	}
	/* The results row: size, created, last_used touched by the load. */
	sqlite3_stmt *st = sfs_db_stmt(c->db, STMT_RESULT_GET);
	sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int64(st, 0), 12);
	CHECK_EQ_INT(sqlite3_column_int64(st, 1), 7);
	CHECK(sqlite3_column_int64(st, 2) > 7);
	sqlite3_reset(st);

	/* A truncated blob makes the load fail (the solver falls back); a
	 * missing manifest makes the record go away. */
	if (n == 1) {
		/* the file is small: a row of the blobs table, cut short */
		char sql[256];
		snprintf(sql, sizeof(sql),
			 "UPDATE blobs SET data = substr(data, 1, 3) WHERE hex = '%s'",
			 t->entries[1].hex);
		sfs_db_lock(c->db);
		CHECK_EQ_INT(sqlite3_exec(sfs_db_handle(c->db), sql, NULL, NULL, NULL), SQLITE_OK);
		CHECK_EQ_INT(sqlite3_changes(sfs_db_handle(c->db)), 1);
		sfs_db_unlock(c->db);
		CHECK(cache_manager_load(c->main, &v[0], got, &msg) < 0);
		CHECK(msg && strstr(msg, "has 3 bytes, expected"));
		free(msg);
		CHECK_EQ_INT(cache_manager_has_records(c->main, k, NULL, NULL), 1);
		CHECK_EQ_INT(cas_remove(c->cas, t->id + 7), 0);
		CHECK_EQ_INT(cache_manager_has_records(c->main, k, NULL, NULL), 0);
		free(v);
		v = NULL;
		CHECK_EQ_INT(cache_manager_records(c->main, k, &v, &n), 0);
		CHECK_EQ_INT(n, 0);
		struct keystore *ks = cache_manager_keystore(c->main);
		CHECK(!ks->ops->exists(ks, k->root_id));
	}
	free(v);
	tree_free(t);
	cache_key_unref(k);
	sfs_cache_close(c);
}

/* ReleaseUnreferenced: records whose results vanished while nobody looked. */
static void test_release_unreferenced(void)
{
	struct cache_manager *cm = cm_open();
	struct keystore *ks = cache_manager_keystore(cm);
	struct cache_key *a = root("a", 0), *b = root("b", 0);
	struct cache_key *k = child("op", &a, NULL, 1);

	CHECK_EQ_INT(save(cm, a, "res-a", 1, NULL), 0);
	CHECK_EQ_INT(save(cm, b, "res-b", 1, NULL), 0);
	CHECK_EQ_INT(save(cm, k, "res-k", 1, NULL), 0);
	dgst("res-a", cur_rs->missing[cur_rs->nmissing++]);
	dgst("res-k", cur_rs->missing[cur_rs->nmissing++]);
	CHECK_EQ_INT(cache_manager_release_unreferenced(cm), 0);
	CHECK(!ks->ops->exists(ks, a->root_id)); /* its only dependent went too */
	CHECK(ks->ops->exists(ks, b->root_id));
	CHECK_EQ_INT(nrecords(cm, b), 1);
	cache_key_unref(k);
	cache_key_unref(a);
	cache_key_unref(b);
	cm_close(cm);
}

/* TestInMemoryCacheRestoreOfflineDeletion: a new manager over a database
 * whose results were deleted offline starts without those records. */
static void test_construction_releases_missing(void)
{
	char path[512];
	struct sfs_db *db = NULL;
	struct keystore *ks = NULL;
	struct cache_manager *cm = NULL;
	struct fake_rs *rs = calloc(1, sizeof(*rs));
	struct cache_key *a = root("a", 0);

	snprintf(path, sizeof(path), "%s/solverfs.db", tap_tmpdir());
	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	CHECK_EQ_INT(keystore_sqlite_new(db, &ks), 0);
	rs->rs.ops = &fake_ops;
	CHECK_EQ_INT(cache_manager_new("local", ks, &rs->rs, &cm), 0);
	CHECK_EQ_INT(save(cm, a, "res-a", 1, NULL), 0);
	cm = cache_manager_free(cm);

	rs = calloc(1, sizeof(*rs));
	rs->rs.ops = &fake_ops;
	dgst("res-a", rs->missing[rs->nmissing++]);
	CHECK_EQ_INT(keystore_sqlite_new(db, &ks), 0);
	CHECK_EQ_INT(cache_manager_new("local", ks, &rs->rs, &cm), 0);
	CHECK(!ks->ops->exists(ks, a->root_id));
	cache_manager_free(cm);
	cache_key_unref(a);
	sfs_db_close(db);
}

#define NTHREADS 4
#define NSAVES 40

struct worker {
	struct cache_manager *cm;
	struct cache_key *base;
	int n;
	int failed;
};

/* Each thread saves its own chain of keys over a shared base, querying and
 * listing records as the solver does. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	char seed[64], found[CACHE_ID_SIZE];

	for (int i = 0; i < NSAVES; i++) {
		snprintf(seed, sizeof(seed), "op-%d-%d", w->n, i);
		struct cache_key *k = child(seed, &w->base, NULL, 1);
		if (save(w->cm, k, seed, i, NULL) < 0)
			w->failed++;
		if (query1(w->cm, w->base, NULL, 0, seed, found) != 1 ||
		    strcmp(found, cache_key_id(k, w->cm)) != 0)
			w->failed++;
		if (nrecords(w->cm, k) != 1)
			w->failed++;
		cache_key_unref(k);
	}
	return NULL;
}

static void test_threads(void)
{
	struct cache_manager *cm = cm_open();
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	struct cache_key *base = root("base", 0);

	CHECK_EQ_INT(save(cm, base, "base", 0, NULL), 0);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.cm = cm, .base = base, .n = i};
		CHECK_EQ_INT(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(w[i].failed, 0);
	}
	CHECK_EQ_INT(cur_rs->saves, 1 + NTHREADS * NSAVES);
	cache_key_unref(base);
	cm_close(cm);
}

static const struct fx_case suite[] = {
    {"root query", test_root_query},
    {"getID reuses a linked key, random otherwise", test_get_id_reuses_linked_key},
    {"selectors match exactly", test_selector_must_match},
    {"getID over several inputs", test_get_id_multi_input},
    {"carry-over linking", test_carry_over},
    {"save makes deps persistent", test_save_ensures_deps},
    {"records of missing results are released", test_records_release_missing},
    {"whether a key has records, as Records says", test_has_records},
    {"one record under several keys; load", test_save_shared_record_and_load},
    {"release unreferenced records", test_release_unreferenced},
    {"threads save and query at once", test_threads},
};

int main(void)
{
	fx_run_backends(suite, ARRAY_SIZE(suite), &use_sqlite);
	RUN(test_best_record);
	RUN(test_key_refs);
	RUN(test_construction_releases_missing);
	RUN(test_cache_open_save_reopen);
	return tap_done();
}
