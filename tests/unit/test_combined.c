/*
 * test_combined.c — the combined cache manager (docs/semantics.md §4.5): a real
 * sfs_cache as main, in-memory managers over the same content store as extra
 * sources, and an imported cache export as a source.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "combined.h"
#include "export.h"
#include "fixture.h"
#include "import.h"
#include "manager.h"
#include "result_storage.h"
#include "tap.h"
#include "tree.h"

/* ---- fixture ---- */

struct fix {
	struct sfs_cache *c;
	struct cache_manager *extra;
	struct cache_combined cc;
};

static struct cache_manager *memory_manager(struct sfs_cache *c, const char *id)
{
	struct keystore *ks = NULL;
	struct result_storage *rs = NULL;
	struct cache_manager *cm = NULL;

	CHECK(keystore_memory_new(&ks) == 0);
	CHECK(result_storage_cas_new(c->cas, NULL, &rs) == 0);
	CHECK(cache_manager_new(id, ks, rs, &cm) == 0);
	return cm;
}

static void fix_open(struct fix *f)
{
	memset(f, 0, sizeof(*f));
	f->c = fx_cache_open();
	f->extra = memory_manager(f->c, "extra");
	f->cc.main = f->c->main;
	f->cc.extra = &f->extra;
	f->cc.nextra = 1;
}

static void fix_close(struct fix *f)
{
	cache_manager_free(f->extra);
	sfs_cache_close(f->c);
}

static void dg(const char *seed, char ret[SFS_DIGEST_SIZE])
{
	sfs_sha256_digest(seed, strlen(seed), ret);
}

static struct cache_key *mk_key(const char *seed, size_t ndeps)
{
	char d[SFS_DIGEST_SIZE];
	dg(seed, d);
	return cache_key_new(d, 0, ndeps);
}

/* A key of op `seed` with one input whose only alternative is dep. */
static struct cache_key *mk_child(const char *seed, struct cache_key *dep)
{
	struct cache_key *k = mk_key(seed, 1);
	CHECK(cache_key_add_dep(k, 0, "", dep) == 0);
	return k;
}

static void keys_free(struct cache_key **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cache_key_unref(v[i]);
	free(v);
}

/* The query of output 0 of op `seed` (the root when dep is NULL) through cc, or
 * on the one manager cm when cc is NULL. */
static size_t query(const struct cache_combined *cc, struct cache_manager *cm,
		    struct cache_key *dep, const char *seed, struct cache_key ***ret)
{
	struct cache_key_with_selector alt = {"", dep};
	const struct cache_key_with_selector *alts = dep ? &alt : NULL;
	char d[SFS_DIGEST_SIZE];
	size_t n = 99, nalts = dep ? 1 : 0;

	dg(seed, d);
	*ret = NULL;
	CHECK_EQ_INT(cc ? cache_combined_query(cc, alts, nalts, 0, d, 0, ret, &n)
			: cache_manager_query(cm, alts, nalts, 0, d, 0, ret, &n),
		     0);
	return n;
}

static size_t cquery(const struct cache_combined *cc, struct cache_key *dep, const char *seed,
		     struct cache_key ***ret)
{
	return query(cc, NULL, dep, seed, ret);
}

static size_t mquery(struct cache_manager *cm, struct cache_key *dep, const char *seed,
		     struct cache_key ***ret)
{
	return query(NULL, cm, dep, seed, ret);
}

/* The solver's mergedKey: found rebuilt with dep as input 0, with found's ids. */
static struct cache_key *merged(const struct cache_combined *cc, struct cache_key *found,
				struct cache_key *dep)
{
	struct cache_key *k = cache_key_new(found->digest, found->output, 1);
	CHECK(cache_key_add_dep(k, 0, "", dep) == 0);
	CHECK(cache_combined_copy_ids(cc, k, found) == 0);
	return k;
}

static bool has_id(struct cache_key *k, const struct cache_manager *cm)
{
	const char *id = cache_key_id(k, cm);
	return id && id != k->root_id;
}

/* ---- tests ---- */

static void test_id(void)
{
	struct fix f;
	char id[SFS_DIGEST_SIZE], want[SFS_DIGEST_SIZE];

	fix_open(&f);
	cache_combined_id(&f.cc, id);
	dg("local,extra", want);
	CHECK_EQ_STR(id, want);
	fix_close(&f);
}

/*
 * Roots are found in whichever manager has them, once; keys with deps have
 * per-manager random ids, so one saved in both managers is found twice.
 */
static void test_query_union_dedup(void)
{
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE];
	struct cache_key *a = mk_key("a", 0), *b = mk_key("b", 0);
	struct cache_key *c = mk_child("c", a), *d = mk_child("d", a), *e = mk_child("e", a);
	struct cache_key **v;
	struct fix f;

	fix_open(&f);
	fx_tree(f.c, "d", 0640, "a", ta);
	fx_tree(f.c, "d", 0640, "b", tb);
	CHECK(cache_manager_save(f.c->main, a, ta, 10, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.extra, a, ta, 10, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.extra, b, tb, 10, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.extra, c, tb, 20, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.c->main, d, tb, 20, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.c->main, e, tb, 20, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.extra, e, tb, 20, NULL, NULL) == 0);

	CHECK_EQ_INT(cquery(&f.cc, NULL, "a", &v), 1);
	CHECK(v && has_id(v[0], f.c->main) && has_id(v[0], f.extra));
	CHECK_EQ_STR(cache_key_id(v[0], f.c->main), a->root_id);
	keys_free(v, 1);

	CHECK_EQ_INT(cquery(&f.cc, NULL, "b", &v), 1);
	CHECK(v && !has_id(v[0], f.c->main) && has_id(v[0], f.extra));
	keys_free(v, 1);

	CHECK_EQ_INT(cquery(&f.cc, a, "c", &v), 1);
	CHECK(v && !has_id(v[0], f.c->main) && has_id(v[0], f.extra));
	CHECK_EQ_STR(v ? cache_key_id(v[0], f.extra) : "", cache_key_id(c, f.extra));
	keys_free(v, 1);

	CHECK_EQ_INT(cquery(&f.cc, a, "d", &v), 1);
	CHECK(v && has_id(v[0], f.c->main) && !has_id(v[0], f.extra));
	keys_free(v, 1);

	size_t n = cquery(&f.cc, a, "e", &v);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK(has_id(v[0], f.c->main) && !has_id(v[0], f.extra)); /* main's first */
		CHECK(has_id(v[1], f.extra) && !has_id(v[1], f.c->main));
	}
	keys_free(v, n);

	CHECK_EQ_INT(cquery(&f.cc, NULL, "nothing", &v), 0);
	CHECK_EQ_INT(cquery(&f.cc, b, "c", &v), 0);
	cache_key_unref(a);
	cache_key_unref(b);
	cache_key_unref(c);
	cache_key_unref(d);
	cache_key_unref(e);
	fix_close(&f);
}

/*
 * A key only the extra source has gives priority-0 records from it; one both
 * have gives main's with priority 1, chosen on equal created_at; a record id
 * both hold appears once, as main's; a key with no id anywhere is "no results".
 */
static void test_records_priority(void)
{
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE];
	struct cache_key *a = mk_key("a", 0), *b = mk_key("b", 0), *x = mk_key("x", 0);
	struct cache_key *y = mk_child("y", a);
	struct cache_key **v;
	struct cache_record *recs = NULL;
	struct cache_result shared;
	size_t n = 0;
	struct fix f;

	fix_open(&f);
	fx_tree(f.c, "d", 0640, "a", ta);
	fx_tree(f.c, "d", 0640, "b", tb);
	CHECK(cache_manager_save(f.extra, a, tb, 50, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.c->main, a, ta, 50, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.extra, b, tb, 60, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.c->main, b, ta, 70, NULL, &shared) == 0);
	CHECK(cache_manager_save(f.extra, b, NULL, 0, &shared, NULL) == 0);

	CHECK_EQ_INT(cquery(&f.cc, NULL, "a", &v), 1);
	CHECK_EQ_INT(cache_combined_records(&f.cc, v[0], &recs, &n), 0);
	CHECK_EQ_INT(n, 2);
	const struct cache_record *best = cache_records_best(recs, n);
	CHECK(best && best->cm == f.c->main && best->priority == 1);
	CHECK_EQ_STR(best ? best->result : "", ta);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_INT(recs[i].priority, recs[i].cm == f.c->main);
	free(recs);
	keys_free(v, 1);

	/* b: extra's own record (60) and the shared one (70) once, as main's. */
	CHECK_EQ_INT(cquery(&f.cc, NULL, "b", &v), 1);
	CHECK_EQ_INT(cache_combined_records(&f.cc, v[0], &recs, &n), 0);
	CHECK_EQ_INT(n, 2);
	for (size_t i = 0; i < n; i++) {
		bool is_shared = strcmp(recs[i].id, shared.id) == 0;
		CHECK(is_shared ? recs[i].cm == f.c->main && recs[i].priority == 1
				: recs[i].cm == f.extra && recs[i].priority == 0);
	}
	free(recs);
	keys_free(v, 1);

	/* y only in extra, found through a */
	CHECK(cache_manager_save(f.extra, y, ta, 80, NULL, NULL) == 0);
	CHECK_EQ_INT(cquery(&f.cc, a, "y", &v), 1);
	CHECK_EQ_INT(cache_combined_records(&f.cc, v[0], &recs, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && recs[0].cm == f.extra && recs[0].priority == 0 && recs[0].created_at == 80);
	CHECK_EQ_STR(n == 1 ? recs[0].key_id : "", cache_key_id(y, f.extra));
	free(recs);
	keys_free(v, 1);

	recs = NULL;
	CHECK_EQ_INT(cache_combined_records(&f.cc, x, &recs, &n), -ENOENT);
	struct cache_key *fresh = mk_child("y", a);
	CHECK_EQ_INT(cache_combined_records(&f.cc, fresh, &recs, &n), -ENOENT);
	CHECK(recs == NULL);
	cache_key_unref(fresh);
	cache_key_unref(a);
	cache_key_unref(b);
	cache_key_unref(x);
	cache_key_unref(y);
	fix_close(&f);
}

/* Two extra sources and no main: a root both have is found once and its
 * records come from both, all priority 0. */
static void test_two_extras_no_main(void)
{
	char ta[SFS_DIGEST_SIZE], tb[SFS_DIGEST_SIZE], got[SFS_DIGEST_SIZE];
	struct cache_key *a = mk_key("a", 0), **v = NULL;
	struct cache_record *recs = NULL;
	struct cache_manager *ex[2];
	size_t n = 0;
	struct fix f;

	fix_open(&f);
	ex[0] = f.extra;
	ex[1] = memory_manager(f.c, "extra2");
	struct cache_combined cc = {.main = NULL, .extra = ex, .nextra = 2};
	fx_tree(f.c, "d", 0640, "a", ta);
	fx_tree(f.c, "d", 0640, "b", tb);
	CHECK(cache_manager_save(ex[0], a, ta, 7, NULL, NULL) == 0);
	CHECK(cache_manager_save(ex[1], a, tb, 8, NULL, NULL) == 0);
	CHECK_EQ_INT(cquery(&cc, NULL, "a", &v), 1);
	CHECK_EQ_INT(cache_combined_records(&cc, v[0], &recs, &n), 0);
	CHECK_EQ_INT(n, 2);
	for (size_t i = 0; i < n; i++)
		CHECK(recs[i].priority == 0 && recs[i].cm == ex[i]);
	const struct cache_record *best = cache_records_best(recs, n);
	CHECK(best && best->cm == ex[1]);
	if (best) {
		CHECK_EQ_INT(cache_combined_load(&cc, v[0], best, got, NULL), 0);
		CHECK_EQ_STR(got, tb);
	}
	free(recs);
	keys_free(v, 1);
	CHECK_EQ_INT(mquery(f.c->main, NULL, "a", &v), 0); /* no main: nothing copied */
	cache_key_unref(a);
	cache_manager_free(ex[1]);
	fix_close(&f);
}

/* Main's records of the key of op `seed` under dep (a root when NULL): exactly
 * one, with result and created_at as given; none when result is NULL (the key
 * exists through its links only). */
static void check_main_has(struct fix *f, struct cache_key *dep, const char *seed,
			   const char *result, int64_t created_at)
{
	struct cache_key **v = NULL;
	struct cache_record *recs = NULL;
	size_t n = 0, nk = mquery(f->c->main, dep, seed, &v);

	CHECK_EQ_INT(nk, 1);
	if (nk == 1)
		CHECK_EQ_INT(cache_manager_records(f->c->main, v[0], &recs, &n), 0);
	CHECK_EQ_INT(n, result ? 1 : 0);
	if (result && n == 1) {
		CHECK_EQ_STR(recs[0].result, result);
		CHECK_EQ_INT(recs[0].created_at, created_at);
	}
	free(recs);
	keys_free(v, nk);
}

/*
 * A chain a <- c only in the extra source: loading c's record through the
 * combined manager returns its tree and copies a's and c's records into main,
 * linked, with their created_at; a second load adds nothing; afterwards the
 * local record wins the choice.
 */
static void test_load_copies_into_main(void)
{
	char ta[SFS_DIGEST_SIZE], tc[SFS_DIGEST_SIZE], got[SFS_DIGEST_SIZE] = "";
	struct cache_key *a = mk_key("a", 0), *c;
	struct cache_key **ka = NULL, **kc = NULL;
	struct cache_record *recs = NULL;
	size_t n = 0;
	char *msg = NULL;
	struct fix f;

	fix_open(&f);
	fx_tree(f.c, "d", 0640, "a", ta);
	fx_tree(f.c, "d", 0640, "c", tc);
	c = mk_child("c", a);
	CHECK(cache_manager_save(f.extra, a, ta, 1000, NULL, NULL) == 0);
	CHECK(cache_manager_save(f.extra, c, tc, 2000, NULL, NULL) == 0);
	cache_key_unref(c);
	CHECK_EQ_INT(mquery(f.c->main, NULL, "a", &ka), 0);

	CHECK_EQ_INT(cquery(&f.cc, NULL, "a", &ka), 1);
	CHECK_EQ_INT(cquery(&f.cc, ka[0], "c", &kc), 1);
	struct cache_key *m = merged(&f.cc, kc[0], ka[0]);
	CHECK_EQ_INT(cache_combined_records(&f.cc, m, &recs, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && recs[0].cm == f.extra);
	for (int round = 0; round < 2 && n == 1; round++) {
		CHECK_EQ_INT(cache_combined_load(&f.cc, m, &recs[0], got, &msg), 0);
		CHECK_EQ_STR(got, tc);
		struct cache_key *a2 = mk_key("a", 0);
		check_main_has(&f, NULL, "a", ta, 1000);
		check_main_has(&f, a2, "c", tc, 2000);
		cache_key_unref(a2);
	}
	free(recs);

	/* Both now: main's copy (priority 1) wins the tie with extra's. */
	CHECK_EQ_INT(cache_combined_records(&f.cc, m, &recs, &n), 0);
	CHECK_EQ_INT(n, 2);
	const struct cache_record *best = cache_records_best(recs, n);
	CHECK(best && best->cm == f.c->main && best->created_at == 2000);
	if (best) {
		CHECK_EQ_INT(cache_combined_load(&f.cc, m, best, got, &msg), 0);
		CHECK_EQ_STR(got, tc);
	}
	free(recs);
	free(msg);
	cache_key_unref(m);
	keys_free(ka, 1);
	keys_free(kc, 1);
	cache_key_unref(a);
	fix_close(&f);
}

/* A record whose result is gone: the load fails and main gets nothing. */
static void test_load_deleted(void)
{
	char ta[SFS_DIGEST_SIZE], got[SFS_DIGEST_SIZE];
	struct cache_key *a = mk_key("a", 0);
	struct cache_record rec = {0};
	struct cache_result res;
	struct cache_key **v = NULL;
	char *msg = NULL;
	struct fix f;

	fix_open(&f);
	fx_tree(f.c, "d", 0640, "a", ta);
	CHECK(cache_manager_save(f.extra, a, ta, 5, NULL, &res) == 0);
	snprintf(rec.id, sizeof(rec.id), "%s", "no-such-record");
	snprintf(rec.key_id, sizeof(rec.key_id), "%s", a->root_id);
	rec.cm = f.extra;
	CHECK(cache_combined_load(&f.cc, a, &rec, got, &msg) < 0);
	CHECK(msg && strstr(msg, "failed to load deleted cache"));
	CHECK_EQ_INT(mquery(f.c->main, NULL, "a", &v), 0);
	free(msg);
	cache_key_unref(a);
	fix_close(&f);
}

/* Save lands in main only; with no main it does nothing. */
static void test_save_main_only(void)
{
	char ta[SFS_DIGEST_SIZE];
	struct cache_key *a = mk_key("a", 0), **v = NULL;
	struct cache_result res;
	struct cache_combined none = {.extra = NULL, .nextra = 0};
	struct fix f;

	fix_open(&f);
	fx_tree(f.c, "d", 0640, "a", ta);
	CHECK_EQ_INT(cache_combined_save(&f.cc, a, ta, 42, NULL, &res), 0);
	CHECK_EQ_STR(res.result, ta);
	check_main_has(&f, NULL, "a", ta, 42);
	CHECK_EQ_INT(mquery(f.extra, NULL, "a", &v), 0);
	none.extra = &f.extra;
	none.nextra = 1;
	CHECK_EQ_INT(cache_combined_save(&none, a, ta, 43, NULL, &res), 0);
	CHECK_EQ_STR(res.id, "");
	CHECK_EQ_INT(mquery(f.extra, NULL, "a", &v), 0);
	cache_key_unref(a);
	fix_close(&f);
}

/*
 * A chain one <- mid <- top exported from cache A and imported into an
 * in-memory source of cache B: B's main stays empty until a combined load of
 * top through the import copies the chain into it.
 */
static void test_import_source(void)
{
	char r_one[SFS_DIGEST_SIZE], r_mid[SFS_DIGEST_SIZE], r_top[SFS_DIGEST_SIZE];
	char got[SFS_DIGEST_SIZE] = "", dir[4096], *msg = NULL;
	struct sfs_cache *a = NULL;
	struct cache_key *one = mk_key("one", 0), *mid = mk_child("mid", one);
	struct cache_key *top = mk_child("top", mid);
	struct cache_key **ko = NULL, **km = NULL, **kt = NULL;
	struct cache_import *im = NULL;
	struct cache_record *recs = NULL;
	size_t n = 0;
	struct fix f;

	CHECK(sfs_cache_open(tap_tmpdir(), &a, NULL) == 0);
	fx_tree(a, "d", 0640, "one", r_one);
	fx_tree(a, "d", 0640, "mid", r_mid);
	fx_tree(a, "d", 0640, "top", r_top);
	CHECK(cache_manager_save(a->main, one, r_one, 1000000000LL, NULL, NULL) == 0);
	CHECK(cache_manager_save(a->main, mid, r_mid, 3000000000LL, NULL, NULL) == 0);
	CHECK(cache_manager_save(a->main, top, r_top, 4000000000LL, NULL, NULL) == 0);
	snprintf(dir, sizeof(dir), "%s/export", tap_tmpdir());
	CHECK_EQ_INT(
	    cache_export(a, a->main, &top, 1, CACHE_EXPORT_MAX, CACHE_EXPORT_IMAGE, dir, &msg), 0);
	sfs_cache_close(a);

	fix_open(&f);
	CHECK_EQ_INT(cache_import_open(dir, &im, &msg), 0);
	CHECK_EQ_INT(cache_import_into_manager(im, f.c, f.extra, &msg), 0);
	if (msg)
		fprintf(stderr, "  # %s\n", msg);
	cache_import_free(im);
	CHECK_EQ_INT(mquery(f.c->main, NULL, "one", &ko), 0);

	CHECK_EQ_INT(cquery(&f.cc, NULL, "one", &ko), 1);
	CHECK_EQ_INT(cquery(&f.cc, ko[0], "mid", &km), 1);
	struct cache_key *mm = merged(&f.cc, km[0], ko[0]);
	CHECK_EQ_INT(cquery(&f.cc, mm, "top", &kt), 1);
	struct cache_key *mt = merged(&f.cc, kt[0], mm);
	CHECK_EQ_INT(cache_combined_records(&f.cc, mt, &recs, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && recs[0].cm == f.extra && recs[0].priority == 0);
	if (n == 1) {
		CHECK_EQ_INT(recs[0].created_at, 4000000000LL);
		CHECK_EQ_INT(cache_combined_load(&f.cc, mt, &recs[0], got, &msg), 0);
		CHECK_EQ_STR(got, r_top);
	}
	/* A max export gives roots no result: "one" comes over as a key. */
	struct cache_key *one2 = mk_key("one", 0), *mid2 = mk_child("mid", one2);
	check_main_has(&f, NULL, "one", NULL, 0);
	check_main_has(&f, one2, "mid", r_mid, 3000000000LL);
	check_main_has(&f, mid2, "top", r_top, 4000000000LL);
	cache_key_unref(one2);
	cache_key_unref(mid2);
	free(recs);
	free(msg);
	cache_key_unref(mm);
	cache_key_unref(mt);
	keys_free(ko, 1);
	keys_free(km, 1);
	keys_free(kt, 1);
	cache_key_unref(one);
	cache_key_unref(mid);
	cache_key_unref(top);
	fix_close(&f);
}

int main(void)
{
	RUN(test_id);
	RUN(test_query_union_dedup);
	RUN(test_records_priority);
	RUN(test_two_extras_no_main);
	RUN(test_load_copies_into_main);
	RUN(test_load_deleted);
	RUN(test_save_main_only);
	RUN(test_import_source);
	return tap_done();
}
