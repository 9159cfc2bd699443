/*
 * combined.c — Query / Records / Load / Save over a main cache manager and
 * extra cache sources (docs/semantics.md §4.5, BuildKit's combinedCacheManager).
 *
 * BuildKit queries the managers in parallel; here they are asked one after
 * the other, main first, which gives the same union and makes "prefer main"
 * simply "first one wins".  Each manager takes its own locks; this file keeps
 * no state, so there is nothing to lock.
 *
 * Deviation kept on purpose: when Query finds one key id in several managers,
 * BuildKit keeps main's key object and drops the others with their ids, so
 * Records never asks the extra source for that key.  Main's object here also
 * learns the other managers' ids (the same id), so their records are seen too,
 * and main's still win ties through priority 1.
 */
#include "combined.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "sha256.h"

#define CHAIN_DEPTH_MAX 1000 /* keys form a DAG; only a broken caller gets deeper */

static size_t nmanagers(const struct cache_combined *cc)
{
	return 1 + cc->nextra;
}

/* Manager i: main first (may be NULL), then the extras. */
static struct cache_manager *manager_at(const struct cache_combined *cc, size_t i)
{
	return i == 0 ? cc->main : cc->extra[i - 1];
}

/*
 * The id k has in cm, copied into ret; false when it has none.  cache_key_id
 * answers a key without deps with its root id even where it was never given
 * one; that fallback (recognised by its address) is not an id in cm's list.
 */
static bool key_id_in(struct cache_key *k, const struct cache_manager *cm, char ret[CACHE_ID_SIZE])
{
	const char *id = cm ? cache_key_id(k, cm) : NULL;

	if (!id || id == k->root_id)
		return false;
	sfs_copy_str(ret, CACHE_ID_SIZE, id);
	return true;
}

void cache_combined_id(const struct cache_combined *cc, char ret[SFS_DIGEST_SIZE])
{
	struct sfs_sha256 h;
	char hex[SFS_HEX_SIZE];
	bool first = true;

	if (sfs_sha256_init(&h) < 0) {
		ret[0] = '\0';
		return;
	}
	for (size_t i = 0; i < nmanagers(cc); i++) {
		struct cache_manager *cm = manager_at(cc, i);
		if (!cm)
			continue;
		if (!first)
			sfs_sha256_update(&h, ",", 1);
		sfs_sha256_update(&h, cache_manager_id(cm), strlen(cache_manager_id(cm)));
		first = false;
	}
	sfs_sha256_final_hex(&h, hex);
	memcpy(ret, "sha256:", 7);
	memcpy(ret + 7, hex, SFS_HEX_SIZE); /* with its NUL */
}

int cache_combined_copy_ids(const struct cache_combined *cc, struct cache_key *dst,
			    struct cache_key *src)
{
	char id[CACHE_ID_SIZE];
	int r = 0;

	for (size_t i = 0; r == 0 && i < nmanagers(cc); i++) {
		struct cache_manager *cm = manager_at(cc, i);
		if (key_id_in(src, cm, id))
			r = cache_key_set_id(dst, cm, id);
	}
	return r;
}

/* ---- Query ---- */

/* The union so far: keys and the id each was found under. */
struct found {
	size_t n, cap_v, cap_ids;
	struct cache_key **v;
	char (*ids)[CACHE_ID_SIZE];
};

static void found_release(struct found *f)
{
	for (size_t i = 0; i < f->n; i++)
		cache_key_unref(f->v[i]);
	free(f->v);
	free(f->ids);
}

/* Adds k (found in cm; takes the reference) unless its id is there already,
 * in which case the earlier key learns k's id in cm. */
static int found_add(struct found *f, struct cache_manager *cm, struct cache_key *k)
{
	char id[CACHE_ID_SIZE];
	int r;

	if (!key_id_in(k, cm, id))
		sfs_copy_str(id, sizeof(id), k->ndeps ? "" : k->root_id);
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->ids[i], id) == 0) {
			r = cache_key_set_id(f->v[i], cm, id);
			cache_key_unref(k);
			return r;
		}
	}
	if (sfs_grow((void **)&f->v, &f->cap_v, f->n + 1, sizeof(*f->v)) < 0 ||
	    sfs_grow((void **)&f->ids, &f->cap_ids, f->n + 1, sizeof(*f->ids)) < 0) {
		cache_key_unref(k);
		return -ENOMEM;
	}
	f->v[f->n] = k;
	memcpy(f->ids[f->n], id, CACHE_ID_SIZE);
	f->n++;
	return 0;
}

int cache_combined_query(const struct cache_combined *cc,
			 const struct cache_key_with_selector *deps, size_t ndeps, int input,
			 const char *dgst, int output, struct cache_key ***ret, size_t *ret_n)
{
	struct found f = {0};
	int r = 0;

	for (size_t i = 0; r == 0 && i < nmanagers(cc); i++) {
		struct cache_manager *cm = manager_at(cc, i);
		struct cache_key **keys = NULL;
		size_t n = 0;
		if (!cm)
			continue;
		r = cache_manager_query(cm, deps, ndeps, input, dgst, output, &keys, &n);
		for (size_t j = 0; j < n; j++) {
			if (r == 0)
				r = found_add(&f, cm, keys[j]);
			else
				cache_key_unref(keys[j]);
		}
		free(keys);
	}
	if (r < 0) {
		found_release(&f);
		return r;
	}
	free(f.ids);
	*ret = f.v;
	*ret_n = f.n;
	return 0;
}

/* ---- Records ---- */

struct recs {
	size_t n, cap;
	struct cache_record *v;
};

static bool recs_has(const struct recs *rs, const char *id)
{
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i].id, id) == 0)
			return true;
	return false;
}

/* Appends cm's records of k; earlier managers' records win on equal ids. */
static int recs_add(struct recs *rs, struct cache_manager *cm, bool is_main, struct cache_key *k)
{
	struct cache_record *v = NULL;
	size_t n = 0;
	int r = cache_manager_records(cm, k, &v, &n);

	if (r < 0)
		return r;
	if (sfs_grow((void **)&rs->v, &rs->cap, rs->n + n, sizeof(*rs->v)) < 0) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (recs_has(rs, v[i].id))
			continue;
		v[i].priority = is_main ? 1 : 0;
		rs->v[rs->n++] = v[i];
	}
	free(v);
	return 0;
}

int cache_combined_records(const struct cache_combined *cc, struct cache_key *k,
			   struct cache_record **ret, size_t *ret_n)
{
	char id[CACHE_ID_SIZE];
	struct recs rs = {0};
	size_t asked = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i < nmanagers(cc); i++) {
		struct cache_manager *cm = manager_at(cc, i);
		if (!key_id_in(k, cm, id))
			continue;
		asked++;
		r = recs_add(&rs, cm, i == 0, k);
	}
	if (r == 0 && asked == 0)
		r = -ENOENT; /* BuildKit: "no results" */
	if (r < 0) {
		free(rs.v);
		return r;
	}
	*ret = rs.v;
	*ret_n = rs.n;
	return 0;
}

int cache_combined_has_records(const struct cache_combined *cc, struct cache_key *k,
			       bool (*skip)(const char *record_id, void *arg), void *arg)
{
	char id[CACHE_ID_SIZE];
	bool asked = false;
	int r = 0;

	for (size_t i = 0; r == 0 && i < nmanagers(cc); i++) {
		struct cache_manager *cm = manager_at(cc, i);
		if (!key_id_in(k, cm, id))
			continue;
		asked = true;
		r = cache_manager_has_records(cm, k, skip, arg);
	}
	return r == 0 && !asked ? -ENOENT : r;
}

/* ---- Load: a remote hit becomes local ---- */

struct seen {
	size_t n, cap;
	struct cache_key **v;
};

/* True if k was visited already; else remembers it (false on no memory too:
 * visiting twice only costs a duplicate check). */
static bool seen_check(struct seen *s, struct cache_key *k)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == k)
			return true;
	if (sfs_grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) == 0)
		s->v[s->n++] = k;
	return false;
}

static bool has_record(const struct cache_record *v, size_t n, const char *result,
		       int64_t created_at)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].created_at == created_at && strcmp(v[i].result, result) == 0)
			return true;
	return false;
}

/* Saves result under k into main unless main has that record already. */
static int save_local(struct cache_manager *main, struct cache_key *k, const char *result,
		      int64_t created_at)
{
	struct cache_record *v = NULL;
	size_t n = 0;
	int r = cache_manager_records(main, k, &v, &n);
	bool have = r == 0 && has_record(v, n, result, created_at);

	free(v);
	if (r < 0 || have)
		return r;
	return cache_manager_save(main, k, result, created_at, NULL, NULL);
}

static void copy_deps(struct cache_manager *main, struct cache_manager *from, struct cache_key *k,
		      struct seen *seen, int depth);

/* Dep d's best record in from, loaded and saved into main after its own deps. */
static void copy_dep(struct cache_manager *main, struct cache_manager *from, struct cache_key *d,
		     struct seen *seen, int depth)
{
	char id[CACHE_ID_SIZE], result[SFS_DIGEST_SIZE];
	struct cache_record *v = NULL;
	const struct cache_record *best;
	size_t n = 0;
	char *msg = NULL;
	int r;

	if (!key_id_in(d, from, id) || seen_check(seen, d))
		return;
	copy_deps(main, from, d, seen, depth + 1);
	r = cache_manager_records(from, d, &v, &n);
	best = r == 0 ? cache_records_best(v, n) : NULL;
	if (best)
		r = cache_manager_load(from, best, result, &msg);
	if (best && r == 0)
		r = save_local(main, d, result, best->created_at);
	if (r < 0)
		sfs_log(SFS_LOG_WARN, "cache %s: copying dependency key %s into %s: %s",
			cache_manager_id(from), id, cache_manager_id(main),
			msg ? msg : strerror(-r));
	free(msg);
	free(v);
}

static void copy_deps(struct cache_manager *main, struct cache_manager *from, struct cache_key *k,
		      struct seen *seen, int depth)
{
	if (depth > CHAIN_DEPTH_MAX)
		return;
	for (size_t i = 0; i < k->ndeps; i++)
		for (size_t j = 0; j < k->deps[i].n; j++)
			copy_dep(main, from, k->deps[i].v[j].key, seen, depth);
}

int cache_combined_load(const struct cache_combined *cc, struct cache_key *k,
			const struct cache_record *rec, char ret_result_id[SFS_DIGEST_SIZE],
			char **ret_msg)
{
	struct cache_manager *from = rec->cm;
	struct seen seen = {0};
	int r;

	if (!from)
		return sfs_errf(ret_msg, EINVAL, "cache record %s has no cache manager", rec->id);
	r = cache_manager_load(from, rec, ret_result_id, ret_msg);
	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "failed to load deleted cache");
	if (!cc->main || from == cc->main || !k)
		return 0;
	copy_deps(cc->main, from, k, &seen, 0);
	free(seen.v);
	r = save_local(cc->main, k, ret_result_id, rec->created_at);
	if (r < 0)
		return sfs_errf(ret_msg, r, "saving cache record %s from %s into %s: %s", rec->id,
				cache_manager_id(from), cache_manager_id(cc->main), strerror(-r));
	return 0;
}

/* ---- Save ---- */

int cache_combined_save(const struct cache_combined *cc, struct cache_key *k, const char *result_id,
			int64_t created_at, const struct cache_result *record,
			struct cache_result *ret_record)
{
	if (!cc->main) {
		if (ret_record)
			memset(ret_record, 0, sizeof(*ret_record));
		return 0;
	}
	return cache_manager_save(cc->main, k, result_id, created_at, record, ret_record);
}
