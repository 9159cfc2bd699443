/*
 * test_gc.c — the automatic GC: the policy's arithmetic (cache/gcpolicy.c) as
 * numbers in, targets out; and a pass over a real cache (cache/gc.c,
 * cache_prune_lru) that deletes least recently used first and never a held
 * (cache/holds.h) or pinned (cache/pins.h) result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "cache.h"
#include "clock.h"
#include "fixture.h"
#include "gc.h"
#include "pins.h"
#include "prune.h"
#include "tap.h"
#include "tree.h"

#define G (1ull << 30)
#define M (1ull << 20)

static struct gc_amount bytes(uint64_t v)
{
	return (struct gc_amount){.set = true, .value = v};
}

static struct gc_amount pct(uint64_t v)
{
	return (struct gc_amount){.set = true, .percent = true, .value = v};
}

static struct gc_plan plan(const struct gc_opts *o, uint64_t used, uint64_t size, uint64_t free_)
{
	struct gc_usage u = {.used = used, .fs_size = size, .fs_free = free_};
	struct gc_plan p;
	gc_plan_compute(o, &u, &p);
	return p;
}

static void test_defaults(void)
{
	struct gc_opts o;
	gc_opts_default(&o);
	CHECK_EQ_INT(o.keep_ns, 48LL * 3600 * 1000000000LL);

	/* a large disk: 80 % is capped at 100G, 10 % at 10G */
	struct gc_plan p = plan(&o, 50 * G, 1000 * G, 500 * G);
	CHECK_EQ_INT(p.max_used, 100 * G);
	CHECK_EQ_INT(p.reserved, 10 * G);
	CHECK_EQ_INT(p.min_free, 200 * G);
	CHECK_EQ_INT(p.soft, 100 * G);
	CHECK_EQ_INT(p.hard, 100 * G);
	CHECK_EQ_INT(p.excess, 0);

	/* a small disk: percentages under the caps */
	p = plan(&o, 10 * G, 50 * G, 30 * G);
	CHECK_EQ_INT(p.max_used, 40 * G);
	CHECK_EQ_INT(p.reserved, 5 * G);
	CHECK_EQ_INT(p.min_free, 10 * G);
	CHECK_EQ_INT(p.excess, 0);

	/* over max_used with plenty free: the hard and soft targets agree */
	p = plan(&o, 120 * G, 1000 * G, 500 * G);
	CHECK_EQ_INT(p.soft, 100 * G);
	CHECK_EQ_INT(p.hard, 100 * G);
	CHECK_EQ_INT(p.excess, 20 * G);
}

static void test_min_free(void)
{
	struct gc_opts o;
	gc_opts_default(&o);

	/* 100G disk, 5G free, 20G wanted free: 15G to free from old results */
	struct gc_plan p = plan(&o, 70 * G, 100 * G, 5 * G);
	CHECK_EQ_INT(p.max_used, 80 * G);
	CHECK_EQ_INT(p.soft, 55 * G);
	CHECK_EQ_INT(p.hard, 80 * G);
	CHECK_EQ_INT(p.excess, 15 * G);

	/* the disk is full of something else: never below reserved */
	p = plan(&o, 12 * G, 100 * G, 1 * G);
	CHECK_EQ_INT(p.reserved, 10 * G);
	CHECK_EQ_INT(p.soft, 10 * G);
	CHECK_EQ_INT(p.excess, 2 * G);

	/* under reserved: nothing, however full the disk */
	p = plan(&o, 8 * G, 100 * G, 0);
	CHECK_EQ_INT(p.excess, 0);

	/* min_free as a size */
	o.min_free = bytes(30 * G);
	p = plan(&o, 40 * G, 100 * G, 25 * G);
	CHECK_EQ_INT(p.soft, 35 * G);
	CHECK_EQ_INT(p.excess, 5 * G);
}

static void test_cache_max_form(void)
{
	struct gc_opts o;
	gc_opts_default(&o);
	/* what fs/options.c makes of cache_max=1M */
	o.max_used = bytes(1 * M);
	o.reserved = bytes(0);
	o.min_free = bytes(0);
	struct gc_plan p = plan(&o, 3 * M, 100 * G, 1 * G);
	CHECK_EQ_INT(p.soft, 1 * M);
	CHECK_EQ_INT(p.hard, 1 * M);
	CHECK_EQ_INT(p.reserved, 0);
	CHECK_EQ_INT(p.excess, 2 * M);
	p = plan(&o, 1 * M, 100 * G, 1 * G);
	CHECK_EQ_INT(p.excess, 0);
}

static void test_reserved_clamped(void)
{
	struct gc_opts o;
	gc_opts_default(&o);
	/* the default reserved (10G) above a small max_used: clamped to it */
	o.max_used = bytes(1 * G);
	struct gc_plan p = plan(&o, 2 * G, 1000 * G, 0);
	CHECK_EQ_INT(p.reserved, 1 * G);
	CHECK_EQ_INT(p.soft, 1 * G);
	/* percentages against a size */
	o.max_used = pct(50);
	o.reserved = pct(60);
	p = plan(&o, 0, 200 * G, 200 * G);
	CHECK_EQ_INT(p.max_used, 100 * G);
	CHECK_EQ_INT(p.reserved, 100 * G);
	o.reserved = bytes(300 * G);
	p = plan(&o, 0, 200 * G, 200 * G);
	CHECK_EQ_INT(p.reserved, 100 * G);
}

static void test_off_and_huge(void)
{
	struct gc_opts o;
	gc_opts_default(&o);
	o.off = true;
	struct gc_plan p = plan(&o, UINT64_MAX, 1, 0);
	CHECK_EQ_INT(p.excess, 0);
	CHECK(p.soft == UINT64_MAX && p.hard == UINT64_MAX);
	/* no overflow in the percentages of a huge filesystem */
	o.off = false;
	o.max_used = pct(100);
	p = plan(&o, 0, UINT64_MAX, UINT64_MAX);
	CHECK(p.max_used == UINT64_MAX);
	o.max_used = pct(80);
	p = plan(&o, 0, UINT64_MAX, UINT64_MAX);
	CHECK(p.max_used > UINT64_MAX / 100 * 79 && p.max_used <= UINT64_MAX / 100 * 81);
}

/* Sets the last use of result id to t (ns), as a load at t would. */
static void touch(struct sfs_cache *c, const char *id, int64_t t)
{
	sqlite3_stmt *st = NULL;
	sfs_db_lock(c->db);
	CHECK_EQ_INT(sqlite3_prepare_v2(sfs_db_handle(c->db),
					"UPDATE results SET last_used = ? WHERE id = ?", -1, &st,
					NULL),
		     SQLITE_OK);
	sqlite3_bind_int64(st, 1, t);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sfs_db_unlock(c->db);
}

/* N results, each its own file of 1000 bytes; ids[i] used at time 10 * (i + 1) ns */
#define N 5
static void fill(struct sfs_cache *c, char ids[N][SFS_DIGEST_SIZE])
{
	for (int i = 0; i < N; i++) {
		char seed[16], d[SFS_DIGEST_SIZE], content[1000];
		snprintf(seed, sizeof(seed), "k%d", i);
		memset(content, 'a' + i, sizeof(content) - 1);
		content[sizeof(content) - 1] = '\0';
		fx_tree(c, seed, 0644, content, ids[i]);
		sfs_sha256_digest(seed, strlen(seed), d);
		struct cache_key *k = cache_key_new(d, 0, 0);
		CHECK_EQ_INT(cache_manager_save(c->main, k, ids[i], 10 * (i + 1), NULL, NULL), 0);
		cache_key_unref(k);
		touch(c, ids[i], 10 * (i + 1));
	}
}

static bool there(struct sfs_cache *c, const char *id)
{
	return cas_has(c->cas, id + 7);
}

struct seen {
	size_t n;
	char ids[N][SFS_DIGEST_SIZE];
};

static void collected(void *arg, const char *id)
{
	struct seen *s = arg;
	if (s->n < N)
		snprintf(s->ids[s->n++], SFS_DIGEST_SIZE, "%s", id);
}

static void test_lru_spares_held_and_pinned(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ids[N][SFS_DIGEST_SIZE];
	struct cache_prune_report rep = {0};
	struct seen seen = {0};
	uint64_t used = 0;

	fill(c, ids);
	CHECK_EQ_INT(cache_hold(c->holds, ids[0]), 0); /* the oldest: a running job's */
	const char *pin[] = {ids[1]};
	CHECK_EQ_INT(cache_pins_set(c->db, 7, pin, 1), 0);
	CHECK(cache_pinned(c->db, ids[1]));
	CHECK(cache_job_pinned(c->db, 7));
	CHECK_EQ_INT(cache_referenced_bytes(c->db, &used), 0);
	/* keep nothing: all but the held and the pinned go, a batch of 2 at a time */
	struct cache_prune_lru_opts lo = {.batch = 2, .collected = collected, .arg = &seen};
	CHECK_EQ_INT(cache_prune_lru(c, &lo, &used, &rep), 0);
	CHECK_EQ_INT(rep.results, N - 2);
	CHECK_EQ_INT(seen.n, N - 2);
	CHECK_EQ_STR(seen.ids[0], ids[2]); /* least recently used first */
	CHECK(there(c, ids[0]));
	CHECK(there(c, ids[1]));
	for (int i = 2; i < N; i++)
		CHECK(!there(c, ids[i]));
	uint64_t now = 0;
	CHECK_EQ_INT(cache_referenced_bytes(c->db, &now), 0);
	CHECK_EQ_INT(now, used);

	/* released and unpinned: they go too */
	cache_unhold(c->holds, ids[0]);
	CHECK_EQ_INT(cache_pins_clear(c->db, 7), 0);
	CHECK(!cache_job_pinned(c->db, 7));
	memset(&rep, 0, sizeof(rep));
	lo = (struct cache_prune_lru_opts){.batch = 64};
	CHECK_EQ_INT(cache_prune_lru(c, &lo, &used, &rep), 0);
	CHECK_EQ_INT(rep.results, 2);
	CHECK_EQ_INT(used, 0);
	sfs_cache_close(c);
}

static void test_holds_count(void)
{
	struct cache_holds *h = NULL;
	CHECK_EQ_INT(cache_holds_new(&h), 0);
	CHECK_EQ_INT(cache_hold(h, "sha256:ab"), 0);
	CHECK_EQ_INT(cache_hold(h, "ab"), 0); /* the same result */
	CHECK(cache_held(h, "sha256:ab"));
	CHECK_EQ_INT(cache_holds_count(h), 1);
	cache_unhold(h, "ab");
	CHECK(cache_held(h, "ab"));
	cache_unhold(h, "sha256:ab");
	CHECK(!cache_held(h, "ab"));
	cache_unhold(h, "ab"); /* one too many: nothing */
	CHECK_EQ_INT(cache_holds_count(h), 0);
	cache_holds_free(h);
}

static void test_pass_keep_duration(void)
{
	struct sfs_cache *c = fx_cache_open();
	char ids[N][SFS_DIGEST_SIZE];
	struct cache_prune_report rep = {0};
	struct gc_opts o;
	struct gc_plan p;

	fill(c, ids);
	/* make the newest two "young": used now */
	for (int i = N - 2; i < N; i++)
		touch(c, ids[i], sfs_now_ns());
	gc_opts_default(&o);
	o.keep_ns = 3600LL * 1000000000LL;
	o.reserved = bytes(0);
	o.min_free = pct(100); /* a disk never free enough: the soft pass wants it all... */
	o.max_used = bytes(1ull << 40); /* ...and max_used is far away */
	CHECK_EQ_INT(cache_gc_pass(c, &o, NULL, NULL, &p, &rep), 0);
	CHECK_EQ_INT(rep.results, N - 2);
	CHECK(there(c, ids[N - 1]));
	CHECK(there(c, ids[N - 2]));
	/* over max_used: the young go too, whatever their age */
	o.max_used = bytes(1);
	memset(&rep, 0, sizeof(rep));
	CHECK_EQ_INT(cache_gc_pass(c, &o, NULL, NULL, &p, &rep), 0);
	CHECK_EQ_INT(rep.results, 2);
	CHECK(!there(c, ids[N - 1]));
	/* gc=off: nothing at all */
	o.off = true;
	CHECK_EQ_INT(cache_gc_pass(c, &o, NULL, NULL, &p, &rep), 0);
	sfs_cache_close(c);
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_min_free);
	RUN(test_cache_max_form);
	RUN(test_reserved_clamped);
	RUN(test_off_and_huge);
	RUN(test_holds_count);
	RUN(test_lru_spares_held_and_pinned);
	RUN(test_pass_keep_duration);
	return tap_done();
}
