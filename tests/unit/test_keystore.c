/*
 * test_keystore.c — the CacheKeyStorage test suite (docs/semantics.md §9.4, BuildKit's
 * testutil/cachestorage_testsuite.go), run unchanged against the in-memory and
 * the SQLite storage, plus what only the SQLite storage can show (reopen,
 * rollback, the links listing).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "db.h"
#include "fixture.h"
#include "keystore.h"
#include "tap.h"

/* ---- the backend under test ---- */

static bool use_sqlite;
static struct sfs_db *cur_db;

static struct keystore *store_open(void)
{
	return fx_keystore_open(use_sqlite, &cur_db);
}

static void store_close(struct keystore *ks)
{
	keystore_free(ks);
	cur_db = sfs_db_close(cur_db);
}

/* ---- helpers ---- */

static struct cache_result res(const char *id, int64_t created)
{
	struct cache_result r = {.created_at = created};
	snprintf(r.id, sizeof(r.id), "%s", id);
	sfs_sha256_digest(id, strlen(id), r.result);
	return r;
}

static struct cache_link link_of(int input, int output, const char *seed, const char *sel)
{
	struct cache_link l = {.input = input, .output = output};
	sfs_sha256_digest(seed, strlen(seed), l.digest);
	if (sel)
		sfs_sha256_digest(sel, strlen(sel), l.selector);
	return l;
}

/* Collects walked ids into a space-separated string, in the order given. */
struct ids {
	char buf[1024];
	int n;
};

static int collect_id(const char *id, void *arg)
{
	struct ids *ids = arg;
	size_t len = strlen(ids->buf);
	snprintf(ids->buf + len, sizeof(ids->buf) - len, "%s%s", len ? " " : "", id);
	ids->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The same, sorted, so both backends compare equal whatever their order. */
static void ids_sort(struct ids *ids)
{
	char *v[64], tmp[1024];
	size_t n = 0;

	snprintf(tmp, sizeof(tmp), "%s", ids->buf);
	for (char *s = strtok(tmp, " "); s && n < 64; s = strtok(NULL, " "))
		v[n++] = s;
	qsort(v, n, sizeof(*v), cmp_str);
	ids->buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(ids->buf);
		snprintf(ids->buf + len, sizeof(ids->buf) - len, "%s%s", i ? " " : "", v[i]);
	}
}

static struct ids walk_links(struct keystore *ks, const char *id, const struct cache_link *l)
{
	struct ids ids = {0};
	CHECK_EQ_INT(ks->ops->walk_links(ks, id, l, collect_id, &ids), 0);
	ids_sort(&ids);
	return ids;
}

static struct ids walk_ids_by_result(struct keystore *ks, const char *rec)
{
	struct ids ids = {0};
	CHECK_EQ_INT(ks->ops->walk_ids_by_result(ks, rec, collect_id, &ids), 0);
	ids_sort(&ids);
	return ids;
}

static struct ids walk_all(struct keystore *ks)
{
	struct ids ids = {0};
	CHECK_EQ_INT(ks->ops->walk(ks, collect_id, &ids), 0);
	ids_sort(&ids);
	return ids;
}

static int collect_result(const struct cache_result *r, void *arg)
{
	struct cache_result want = res(r->id, r->created_at);
	CHECK_EQ_STR(r->result, want.result);
	return collect_id(r->id, arg);
}

static struct ids walk_results(struct keystore *ks, const char *id)
{
	struct ids ids = {0};
	CHECK_EQ_INT(ks->ops->walk_results(ks, id, collect_result, &ids), 0);
	ids_sort(&ids);
	return ids;
}

static int add_result(struct keystore *ks, const char *key, const char *rec)
{
	struct cache_result r = res(rec, 1000);
	return ks->ops->add_result(ks, key, &r);
}

/* ---- the suite ---- */

static void test_results(void)
{
	struct keystore *ks = store_open();
	struct cache_result r;

	CHECK_EQ_INT(add_result(ks, "foo", "foo0"), 0);
	CHECK_EQ_INT(add_result(ks, "foo", "foo1"), 0);
	CHECK_EQ_INT(add_result(ks, "bar", "bar0"), 0);
	CHECK_EQ_INT(add_result(ks, "foo", "foo1"), 0); /* twice is once */

	CHECK_EQ_STR(walk_results(ks, "foo").buf, "foo0 foo1");
	CHECK_EQ_STR(walk_results(ks, "bar").buf, "bar0");
	CHECK_EQ_INT(walk_results(ks, "baz").n, 0); /* unknown key: no error */

	CHECK_EQ_INT(ks->ops->load(ks, "foo", "foo1", &r), 0);
	CHECK_EQ_STR(r.id, "foo1");
	CHECK_EQ_STR(r.result, res("foo1", 0).result);
	CHECK_EQ_INT(r.created_at, 1000);
	CHECK_EQ_INT(ks->ops->load(ks, "bar", "bar0", &r), 0);
	CHECK_EQ_INT(ks->ops->load(ks, "bar", "foo0", &r), -ENOENT);
	CHECK_EQ_INT(ks->ops->load(ks, "baz", "foo0", &r), -ENOENT);

	CHECK(ks->ops->exists(ks, "foo"));
	CHECK(ks->ops->exists(ks, "bar"));
	CHECK(!ks->ops->exists(ks, "baz"));
	CHECK_EQ_STR(walk_all(ks).buf, "bar foo");
	store_close(ks);
}

static void test_links(void)
{
	struct keystore *ks = store_open();
	struct cache_link l0 = link_of(0, 1, ">target0", NULL);
	struct cache_link l1 = link_of(1, 1, ">target1", NULL);

	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &l0, "target0"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "bar", &l0, "target0-second"), 0);
	CHECK_EQ_STR(walk_links(ks, "foo", &l0).buf, "target0");
	CHECK_EQ_STR(walk_links(ks, "bar", &l0).buf, "target0-second");

	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &l1, "target1"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &l1, "target1-second"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &l1, "target1"), 0); /* twice is once */
	CHECK_EQ_STR(walk_links(ks, "foo", &l1).buf, "target1 target1-second");
	CHECK_EQ_STR(walk_links(ks, "foo", &l0).buf, "target0");

	/* Every link field must match exactly. */
	struct cache_link other = l0;
	other.input = 1;
	CHECK_EQ_INT(walk_links(ks, "foo", &other).n, 0);
	other = l0;
	other.output = 0;
	CHECK_EQ_INT(walk_links(ks, "foo", &other).n, 0);
	other = link_of(0, 1, ">target0", "sel");
	CHECK_EQ_INT(walk_links(ks, "foo", &other).n, 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &other, "target-sel"), 0);
	CHECK_EQ_STR(walk_links(ks, "foo", &other).buf, "target-sel");
	CHECK_EQ_STR(walk_links(ks, "foo", &l0).buf, "target0");

	CHECK(ks->ops->has_link(ks, "foo", &l1, "target1-second"));
	CHECK(!ks->ops->has_link(ks, "foo", &l1, "target0"));
	CHECK(!ks->ops->has_link(ks, "bar", &l1, "target1"));
	CHECK(!ks->ops->has_link(ks, "nope", &l1, "target1"));

	/* A key with only outgoing links exists; a pure target does not. */
	CHECK(ks->ops->exists(ks, "foo"));
	CHECK(!ks->ops->exists(ks, "target0"));
	CHECK_EQ_INT(walk_links(ks, "unknown", &l0).n, 0);
	store_close(ks);
}

static void test_result_release_single_level(void)
{
	struct keystore *ks = store_open();

	CHECK_EQ_INT(add_result(ks, "foo", "foo0"), 0);
	CHECK_EQ_INT(add_result(ks, "foo", "foo1"), 0);
	CHECK_EQ_INT(add_result(ks, "bar", "bar0"), 0);

	CHECK_EQ_INT(ks->ops->release(ks, "foo0"), 0);
	CHECK_EQ_STR(walk_results(ks, "foo").buf, "foo1");
	CHECK_EQ_INT(walk_ids_by_result(ks, "foo0").n, 0);
	CHECK(ks->ops->exists(ks, "foo"));

	CHECK_EQ_INT(ks->ops->release(ks, "foo1"), 0);
	CHECK_EQ_INT(walk_results(ks, "foo").n, 0);
	CHECK(!ks->ops->exists(ks, "foo"));
	CHECK_EQ_STR(walk_all(ks).buf, "bar");
	CHECK_EQ_STR(walk_results(ks, "bar").buf, "bar0");

	CHECK_EQ_INT(ks->ops->release(ks, "never-saved"), 0);
	store_close(ks);
}

static void test_result_release_multi_level(void)
{
	struct keystore *ks = store_open();
	struct cache_link l0 = link_of(0, 0, "op-a", NULL);
	struct cache_link l1 = link_of(1, 0, "op-a", NULL);

	/* foo is a dependency of sub0 and sub1. */
	CHECK_EQ_INT(add_result(ks, "foo", "foo-result"), 0);
	CHECK_EQ_INT(add_result(ks, "sub0", "sub0-result"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &l0, "sub0"), 0);
	CHECK_EQ_INT(add_result(ks, "sub1", "sub1-result"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &l1, "sub1"), 0);

	/* Releasing a dependency's result never removes its dependents, and
	 * the dependency stays alive through its links. */
	CHECK_EQ_INT(ks->ops->release(ks, "foo-result"), 0);
	CHECK(ks->ops->exists(ks, "foo"));
	CHECK_EQ_INT(walk_results(ks, "foo").n, 0);
	CHECK(ks->ops->exists(ks, "sub0"));
	CHECK_EQ_STR(walk_links(ks, "foo", &l0).buf, "sub0");

	CHECK_EQ_INT(ks->ops->release(ks, "sub0-result"), 0);
	CHECK(!ks->ops->exists(ks, "sub0"));
	CHECK_EQ_INT(walk_links(ks, "foo", &l0).n, 0);
	CHECK(ks->ops->exists(ks, "foo")); /* still linked to sub1 */

	CHECK_EQ_INT(ks->ops->release(ks, "sub1-result"), 0);
	CHECK(!ks->ops->exists(ks, "sub1"));
	CHECK(!ks->ops->exists(ks, "foo")); /* the cascade reached it */
	CHECK_EQ_INT(walk_all(ks).n, 0);
	store_close(ks);
}

/* A chain of link-only keys (slow keys never get results) unwinds completely:
 * the fixed in-memory behaviour, not bbolt's stop at the first level. */
static void test_release_cascade_link_only(void)
{
	struct keystore *ks = store_open();
	struct cache_link la = link_of(0, 0, "op-mid", NULL);
	struct cache_link lb = link_of(0, 0, "op-top", "sel");

	CHECK_EQ_INT(ks->ops->add_link(ks, "slow", &la, "mid"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "mid", &lb, "top"), 0);
	CHECK_EQ_INT(add_result(ks, "top", "top-result"), 0);
	CHECK_EQ_INT(add_result(ks, "other", "other-result"), 0);
	CHECK(ks->ops->exists(ks, "slow"));
	CHECK(ks->ops->exists(ks, "mid"));

	CHECK_EQ_INT(ks->ops->release(ks, "top-result"), 0);
	CHECK(!ks->ops->exists(ks, "top"));
	CHECK(!ks->ops->exists(ks, "mid"));
	CHECK(!ks->ops->exists(ks, "slow"));
	CHECK_EQ_STR(walk_all(ks).buf, "other");
	store_close(ks);
}

struct backlinks {
	int n;
	char src[4][CACHE_ID_SIZE];
	struct cache_link l[4];
};

static int collect_backlink(const char *src, const struct cache_link *l, void *arg)
{
	struct backlinks *b = arg;
	if (b->n < 4) {
		snprintf(b->src[b->n], CACHE_ID_SIZE, "%s", src);
		b->l[b->n] = *l;
	}
	b->n++;
	return 0;
}

static void test_backlinks(void)
{
	struct keystore *ks = store_open();
	struct cache_link l0 = link_of(0, 1, "op-x", NULL);
	struct cache_link l1 = link_of(1, 1, "op-x", "sel1");
	struct backlinks b = {0};
	char want[SFS_DIGEST_SIZE];

	CHECK_EQ_INT(add_result(ks, "foo", "foo-result"), 0);
	CHECK_EQ_INT(add_result(ks, "sub0", "sub0-result"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "foo", &l0, "sub0"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "bar", &l1, "sub0"), 0);

	CHECK_EQ_INT(ks->ops->walk_backlinks(ks, "sub0", collect_backlink, &b), 0);
	CHECK_EQ_INT(b.n, 2);
	sfs_root_key(l0.digest, 1, want);
	for (int i = 0; i < 2 && b.n == 2; i++) {
		bool is_foo = strcmp(b.src[i], "foo") == 0;
		const struct cache_link *orig = is_foo ? &l0 : &l1;
		CHECK(is_foo || strcmp(b.src[i], "bar") == 0);
		CHECK_EQ_STR(b.l[i].digest, want); /* rootKey(digest, output) */
		CHECK_EQ_INT(b.l[i].output, 0);
		CHECK_EQ_INT(b.l[i].input, orig->input);
		CHECK_EQ_STR(b.l[i].selector, orig->selector);
	}
	CHECK(strcmp(b.src[0], b.src[1]) != 0);

	struct backlinks none = {0};
	CHECK_EQ_INT(ks->ops->walk_backlinks(ks, "foo", collect_backlink, &none), 0);
	CHECK_EQ_INT(none.n, 0);
	CHECK_EQ_INT(ks->ops->walk_backlinks(ks, "unknown", collect_backlink, &none), 0);
	CHECK_EQ_INT(none.n, 0);
	store_close(ks);
}

static void test_walk_ids_by_result(void)
{
	struct keystore *ks = store_open();

	/* One execution saved under several root keys shares one record. */
	CHECK_EQ_INT(add_result(ks, "foo", "foo-result"), 0);
	CHECK_EQ_INT(add_result(ks, "bar", "foo-result"), 0);
	CHECK_EQ_INT(add_result(ks, "baz", "baz-result"), 0);
	CHECK_EQ_STR(walk_ids_by_result(ks, "foo-result").buf, "bar foo");
	CHECK_EQ_STR(walk_ids_by_result(ks, "baz-result").buf, "baz");
	CHECK_EQ_INT(walk_ids_by_result(ks, "nothing").n, 0);

	CHECK_EQ_INT(ks->ops->release(ks, "foo-result"), 0);
	CHECK_EQ_INT(walk_ids_by_result(ks, "foo-result").n, 0);
	CHECK(!ks->ops->exists(ks, "foo"));
	CHECK(!ks->ops->exists(ks, "bar"));
	store_close(ks);
}

static int stop_at_first(const char *id, void *arg)
{
	(*(int *)arg)++;
	return -ECANCELED;
}

struct reenter {
	struct keystore *ks;
	int n;
};

/* Walk callbacks may call back into the storage, even to update it. */
static int release_from_walk(const struct cache_result *r, void *arg)
{
	struct reenter *re = arg;
	re->n++;
	return re->ks->ops->release(re->ks, r->id);
}

static void test_walk_stop_and_reenter(void)
{
	struct keystore *ks = store_open();
	struct reenter re = {ks, 0};
	int n = 0;

	CHECK_EQ_INT(add_result(ks, "a", "r1"), 0);
	CHECK_EQ_INT(add_result(ks, "a", "r2"), 0);
	CHECK_EQ_INT(add_result(ks, "b", "r3"), 0);
	CHECK_EQ_INT(ks->ops->walk(ks, stop_at_first, &n), -ECANCELED);
	CHECK_EQ_INT(n, 1);

	CHECK_EQ_INT(ks->ops->walk_results(ks, "a", release_from_walk, &re), 0);
	CHECK_EQ_INT(re.n, 2);
	CHECK(!ks->ops->exists(ks, "a"));
	CHECK(ks->ops->exists(ks, "b"));

	/* A batch around updates commits them. */
	CHECK_EQ_INT(ks->ops->batch_begin(ks), 0);
	CHECK_EQ_INT(ks->ops->batch_begin(ks), 0);
	CHECK_EQ_INT(add_result(ks, "c", "r4"), 0);
	CHECK_EQ_INT(ks->ops->batch_end(ks, 0), 0);
	CHECK_EQ_INT(add_result(ks, "d", "r5"), 0);
	CHECK_EQ_INT(ks->ops->batch_end(ks, 0), 0);
	CHECK_EQ_STR(walk_all(ks).buf, "b c d");
	store_close(ks);
}

/* ---- SQLite only ---- */

static void test_sqlite_reopen(void)
{
	char *dir = tap_tmpdir(), path[512];
	struct sfs_db *db = NULL;
	struct keystore *ks = NULL;
	struct cache_link l0 = link_of(0, 0, "op", "sel");
	struct cache_result r;

	snprintf(path, sizeof(path), "%s/solverfs.db", dir);
	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	CHECK_EQ_INT(keystore_sqlite_new(db, &ks), 0);
	CHECK_EQ_INT(add_result(ks, "dep", "rec-dep"), 0);
	CHECK_EQ_INT(add_result(ks, "top", "rec-top"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "dep", &l0, "top"), 0);
	keystore_free(ks);
	db = sfs_db_close(db);

	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	CHECK_EQ_INT(keystore_sqlite_new(db, &ks), 0);
	CHECK_EQ_INT(ks->ops->load(ks, "top", "rec-top", &r), 0);
	CHECK_EQ_STR(r.result, res("rec-top", 0).result);
	CHECK(ks->ops->has_link(ks, "dep", &l0, "top"));
	CHECK_EQ_STR(walk_all(ks).buf, "dep top");
	keystore_free(ks);
	sfs_db_close(db);
}

/* Record-form links (an import's, keystore.h) are found whether the store held
 * some when it was opened, got its first one since, or had none when asked. */
static void test_sqlite_record_form_links(void)
{
	char *dir = tap_tmpdir(), path[512];
	struct sfs_db *db = NULL;
	struct keystore *ks = NULL;
	struct cache_link l0 = link_of(0, 0, "op", "sel");
	struct cache_link rl;

	keystore_record_link(0, 0, l0.digest, l0.selector, &rl);
	snprintf(path, sizeof(path), "%s/solverfs.db", dir);
	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	CHECK_EQ_INT(keystore_sqlite_new(db, &ks), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "dep", &l0, "top"), 0);
	CHECK_EQ_INT(walk_links(ks, "dep", &rl).n, 0); /* asked: none stored */
	CHECK_EQ_INT(ks->ops->add_link(ks, "dep", &rl, "imported"), 0);
	CHECK_EQ_STR(walk_links(ks, "dep", &rl).buf, "imported");
	CHECK_EQ_STR(walk_links(ks, "dep", &l0).buf, "top");
	keystore_free(ks);
	db = sfs_db_close(db);

	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	CHECK_EQ_INT(keystore_sqlite_new(db, &ks), 0);
	CHECK_EQ_STR(walk_links(ks, "dep", &rl).buf, "imported");
	keystore_free(ks);
	sfs_db_close(db);
}

static void test_sqlite_batch_rollback(void)
{
	struct keystore *ks;
	bool saved = use_sqlite;

	use_sqlite = true;
	ks = store_open();
	CHECK_EQ_INT(add_result(ks, "kept", "r0"), 0);
	CHECK_EQ_INT(ks->ops->batch_begin(ks), 0);
	CHECK_EQ_INT(add_result(ks, "lost", "r1"), 0);
	CHECK_EQ_INT(ks->ops->batch_begin(ks), 0);
	CHECK_EQ_INT(add_result(ks, "lost2", "r2"), 0);
	CHECK_EQ_INT(ks->ops->batch_end(ks, -EIO), -EIO); /* an inner failure dooms all */
	CHECK_EQ_INT(ks->ops->batch_end(ks, 0), -EIO);
	CHECK_EQ_STR(walk_all(ks).buf, "kept");
	CHECK(!ks->ops->exists(ks, "lost"));
	store_close(ks);
	use_sqlite = saved;
}

struct all_links {
	char buf[1024];
};

static int collect_all_link(const struct cache_link *l, const char *target, void *arg)
{
	struct all_links *a = arg;
	size_t len = strlen(a->buf);
	snprintf(a->buf + len, sizeof(a->buf) - len, "%d %d %.12s %.12s %s;", l->input, l->output,
		 l->digest, l->selector[0] ? l->selector : "-", target);
	return 0;
}

static void test_sqlite_walk_all_links(void)
{
	struct keystore *ks, *mem = NULL;
	struct cache_link l0 = link_of(0, 2, "op", NULL), l1 = link_of(1, 0, "op", "s");
	struct all_links a = {{0}};
	bool saved = use_sqlite;

	use_sqlite = true;
	ks = store_open();
	CHECK_EQ_INT(ks->ops->add_link(ks, "k", &l1, "t2"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "k", &l0, "t1"), 0);
	CHECK_EQ_INT(ks->ops->add_link(ks, "other", &l0, "t3"), 0);
	CHECK_EQ_INT(keystore_walk_all_links(ks, "k", collect_all_link, &a), 0);
	char want[1024];
	snprintf(want, sizeof(want), "0 2 %.12s - t1;1 0 %.12s %.12s t2;", l0.digest, l1.digest,
		 l1.selector);
	CHECK_EQ_STR(a.buf, want);
	store_close(ks);

	CHECK_EQ_INT(keystore_memory_new(&mem), 0);
	CHECK_EQ_INT(keystore_walk_all_links(mem, "k", collect_all_link, &a), -EOPNOTSUPP);
	keystore_free(mem);
	use_sqlite = saved;
}

static void test_new_id(void)
{
	char a[CACHE_ID_SIZE], b[CACHE_ID_SIZE];

	keystore_new_id(a);
	keystore_new_id(b);
	CHECK_EQ_INT(strlen(a), 25);
	CHECK(strspn(a, "0123456789abcdefghijklmnopqrstuvwxyz") == 25);
	CHECK(strcmp(a, b) != 0);
}

static const struct fx_case suite[] = {
    {"testResults", test_results},
    {"testLinks", test_links},
    {"testResultReleaseSingleLevel", test_result_release_single_level},
    {"testResultReleaseMultiLevel", test_result_release_multi_level},
    {"release cascades through link-only keys", test_release_cascade_link_only},
    {"testBacklinks", test_backlinks},
    {"testWalkIDsByResult", test_walk_ids_by_result},
    {"walks stop on error and allow re-entry", test_walk_stop_and_reenter},
};

/* rootKey is sha256("<digest>@<output>") whatever was asked before it (the
 * thread remembers its last one): repeats, other outputs and other digests in turn. */
static void test_root_key_repeats(void)
{
	const char *d[2] = {
	    "sha256:1111111111111111111111111111111111111111111111111111111111111111",
	    "sha256:2222222222222222222222222222222222222222222222222222222222222222"};
	int seq[][2] = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 1}, {0, 0}, {1, 0}, {0, 0}};
	for (size_t i = 0; i < ARRAY_SIZE(seq); i++) {
		char got[SFS_DIGEST_SIZE], want[SFS_DIGEST_SIZE], buf[128];
		sfs_root_key(d[seq[i][0]], seq[i][1], got);
		int n = snprintf(buf, sizeof(buf), "%s@%d", d[seq[i][0]], seq[i][1]);
		sfs_sha256_digest(buf, (size_t)n, want);
		CHECK_EQ_STR(got, want);
	}
}

int main(void)
{
	RUN(test_root_key_repeats);
	fx_run_backends(suite, ARRAY_SIZE(suite), &use_sqlite);
	RUN(test_sqlite_reopen);
	RUN(test_sqlite_record_form_links);
	RUN(test_sqlite_batch_rollback);
	RUN(test_sqlite_walk_all_links);
	RUN(test_new_id);
	return tap_done();
}
