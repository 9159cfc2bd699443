/*
 * test_solver.c — the solver's scheduling decisions, with a counting test op
 * (BuildKit's scheduler_test.go vtx helpers, docs/semantics.md §9.1): how often
 * CacheMap and Exec run for fresh, cached, shared, failing and cancelled builds.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "err.h"
#include "exports.h"
#include "import.h"
#include "prune.h"
#include "keystore.h"
#include "result_storage.h"
#include "strbuf.h"
#include "tree.h"
#include "solver.h"
#include "fixture.h"
#include "tap.h"

static atomic_int n_cache_map, n_exec;
static const char *inner_spec =
    "{\"vertices\":{"
    "\"i1\":{\"op\":\"file\",\"actions\":[{\"mkdir\":{\"path\":\"i1\"}}]},"
    "\"i2\":{\"op\":\"file\",\"base\":\"i1\",\"actions\":[{\"mkdir\":{\"path\":\"i2\"}}]}},"
    "\"outputs\":[\"i2\"]}";
static atomic_bool block_exec, exec_entered, saw_cancel;

static int t_cache_map(struct sfs_op *op, struct sfs_op_ctx *ctx, int index,
		       struct sfs_cache_map *ret, bool *ret_done, char **ret_msg)
{
	atomic_fetch_add(&n_cache_map, 1);
	*ret_done = true;
	return sfs_op_default_cache_map(op->v, ret);
}

static int t_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		  size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	atomic_fetch_add(&n_exec, 1);
	atomic_store(&exec_entered, true);
	while (atomic_load(&block_exec)) {
		if (sfs_op_cancelled(ctx)) {
			atomic_store(&saw_cancel, true);
			return -ECANCELED;
		}
		usleep(1000);
	}
	if (strncmp(op->v->key, "fail", 4) == 0)
		return sfs_errf(ret_msg, -EIO, "boom from %s", op->v->key);
	struct tree_entry e[2] = {{.type = 'd', .mode = 0755, .path = "."},
				  {.type = 'f', .mode = 0644, .path = "value"}};
	/* vertices named "same*" make the same content whatever their op, all
	 * "conv*" the same as each other; "specsrc*" make a tree holding the inner
	 * spec of a sub-build */
	const char *content = strncmp(op->v->key, "same", 4) == 0 ? op->v->key : op->v->op_bytes;
	if (strncmp(op->v->key, "conv", 4) == 0)
		content = "conv";
	if (strncmp(op->v->key, "specsrc", 7) == 0) {
		content = inner_spec;
		e[1].path = "solverfs.json";
	}
	size_t len = strlen(content);
	e[1].size = len;
	int r = cas_put_buf(ctx->cache->cas, content, len, e[1].hex);
	return r < 0 ? r : fx_op_outputs(op, ctx, e, 2, outputs);
}

static const struct sfs_op_type test_op = {"test", t_cache_map, t_exec, NULL, NULL};

static int t_resolve(void *arg, const struct sfs_spec_vertex *v, struct sfs_op **ret)
{
	return fx_op_new(&test_op, v, NULL, ret);
}

/* Two workers and the counting test op. */
static const struct fx_env_opts env_opts = {.workers = 2, .resolve = t_resolve};

static void reset_counts(void)
{
	atomic_store(&n_cache_map, 0);
	atomic_store(&n_exec, 0);
}

/* Submits spec as a new job and returns its number. */
static uint64_t submit(struct fx_env *e, const char *spec)
{
	uint64_t id = 0;
	char *msg = NULL;
	CHECK_EQ_INT(sfs_solver_job_new(e->s, 0, 0, &id), 0);
	int r = sfs_solver_job_submit(e->s, id, 0, spec, strlen(spec), &msg);
	if (r < 0)
		fprintf(stderr, "  submit: %s\n", msg ? msg : "?");
	CHECK_EQ_INT(r, 0);
	free(msg);
	return id;
}

/* Waits (up to 10 s) for job id to end; returns its info (release it). */
static void wait_job(struct fx_env *e, uint64_t id, struct sfs_job_info *info)
{
	for (int i = 0; i < 10000; i++) {
		CHECK_EQ_INT(sfs_solver_job_info(e->s, id, info), 0);
		if (sfs_job_state_final(info->state))
			return;
		sfs_job_info_release(info);
		usleep(1000);
	}
	CHECK(!"job did not end");
	sfs_solver_job_info(e->s, id, info);
}

static const char *chain3 =
    "{\"vertices\":{"
    "\"a\":{\"op\":\"file\",\"actions\":[{\"mkfile\":{\"path\":\"a\",\"data\":\"1\"}}]},"
    "\"b\":{\"op\":\"file\",\"base\":\"a\",\"actions\":[{\"mkdir\":{\"path\":\"b\"}}]},"
    "\"c\":{\"op\":\"file\",\"base\":\"b\",\"actions\":[{\"mkdir\":{\"path\":\"c\"}}]}},"
    "\"outputs\":[\"c\"]}";

static void test_fresh_then_cached(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i1, i2;
	fx_env_open(&e, NULL, &env_opts);
	reset_counts();
	wait_job(&e, submit(&e, chain3), &i1);
	CHECK_EQ_STR(sfs_job_state_name(i1.state), "done");
	CHECK_EQ_INT(n_cache_map, 3);
	CHECK_EQ_INT(n_exec, 3);
	reset_counts();
	wait_job(&e, submit(&e, chain3), &i2);
	CHECK_EQ_STR(sfs_job_state_name(i2.state), "done");
	CHECK_EQ_INT(n_cache_map, 3); /* CacheMap on every vertex */
	CHECK_EQ_INT(n_exec, 0);
	CHECK_EQ_STR(i1.outputs[0].result, i2.outputs[0].result);
	CHECK_EQ_STR(i2.outputs[0].ref, "c");
	sfs_job_info_release(&i1);
	sfs_job_info_release(&i2);
	fx_env_close(&e);
}

static void test_cached_after_reopen(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i1, i2;
	char *dir = tap_tmpdir();
	fx_env_open(&e, dir, &env_opts);
	wait_job(&e, submit(&e, chain3), &i1);
	fx_env_close(&e);
	fx_env_open(&e, dir, &env_opts);
	reset_counts();
	/* the first job's vertices are kept with its history */
	struct sfs_vertex_info *vi = NULL;
	size_t nvi = 0;
	CHECK_EQ_INT(sfs_solver_job_vertices(e.s, i1.id, &vi, &nvi), 0);
	CHECK_EQ_INT(nvi, 3);
	for (size_t k = 0; k < nvi; k++) {
		CHECK_EQ_STR(sfs_vertex_state_name(vi[k].state), "done");
		CHECK(strncmp(vi[k].why, "executed: ", 10) == 0);
		CHECK(vi[k].op_len > 0 && vi[k].op[0] == '{');
		CHECK(sfs_is_digest(vi[k].results[0]));
	}
	sfs_vertex_infos_free(vi, nvi);
	uint64_t id = submit(&e, chain3);
	CHECK_EQ_INT(id, 2); /* numbers continue across reopen */
	wait_job(&e, id, &i2);
	CHECK_EQ_INT(n_exec, 0);
	CHECK_EQ_STR(i1.outputs[0].result, i2.outputs[0].result);
	sfs_job_info_release(&i1);
	sfs_job_info_release(&i2);
	fx_env_close(&e);
}

/* jobs/N/spec of a finished job: the solver keeps no copy once the row is
 * final, the bytes come back from it, before and after a reopen. */
static void spec_is(struct fx_env *e, uint64_t id, const char *want)
{
	struct sfs_job_info i;
	CHECK_EQ_INT(sfs_solver_job_info_spec(e->s, id, &i), 0);
	CHECK_EQ_INT(i.spec_len, strlen(want));
	CHECK(i.spec && strcmp(i.spec, want) == 0);
	sfs_job_info_release(&i);
	CHECK_EQ_INT(sfs_solver_job_info(e->s, id, &i), 0);
	CHECK_EQ_INT(i.spec_len, strlen(want)); /* stat's size, without the bytes */
	CHECK(i.spec == NULL);
	sfs_job_info_release(&i);
}

static void test_spec_of_ended_job(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i1;
	char *dir = tap_tmpdir();
	fx_env_open(&e, dir, &env_opts);
	wait_job(&e, submit(&e, chain3), &i1);
	spec_is(&e, i1.id, chain3);
	fx_env_close(&e);
	fx_env_open(&e, dir, &env_opts);
	spec_is(&e, i1.id, chain3);
	sfs_job_info_release(&i1);
	fx_env_close(&e);
}

/* A changed middle vertex re-executes itself and its users, not its input. */
static void test_changed_middle(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	fx_env_open(&e, NULL, &env_opts);
	wait_job(&e, submit(&e, chain3), &i);
	sfs_job_info_release(&i);
	reset_counts();
	char *spec = strdup(chain3);
	char *p = strstr(spec, "\"path\":\"b\"");
	p[8] = 'x';
	wait_job(&e, submit(&e, spec), &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK_EQ_INT(n_exec, 2);
	char *why = NULL;
	size_t len;
	CHECK_EQ_INT(sfs_solver_job_why(e.s, i.id, &why, &len), 0);
	/* a: loaded for b; b: its op changed; c: its input b changed */
	CHECK(why && strstr(why, "[a] cached: key sha256:") != NULL);
	CHECK(why && strstr(why, "[b] executed: no record for this op digest sha256:") != NULL);
	CHECK(why && strstr(why, "[c] executed: input 0 \"b\" changed: now content sha256:") &&
	      strstr(why, "the closest record used content sha256:"));
	if (tap_failed_now)
		fprintf(stderr, "%s", why ? why : "(null)\n");
	free(why);
	sfs_job_info_release(&i);
	/* unchanged: the target is a hit and says so */
	wait_job(&e, submit(&e, spec), &i);
	CHECK_EQ_INT(sfs_solver_job_why(e.s, i.id, &why, &len), 0);
	CHECK(why && strstr(why, "[c] cached: key ") && strstr(why, " ago\n"));
	free(why);
	sfs_job_info_release(&i);
	free(spec);
	fx_env_close(&e);
}

/* A changed input that produces the same content lets its user hit (§3, TestSlowCache). */
static void test_same_content_hits(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i1, i2;
	const char *spec1 =
	    "{\"vertices\":{"
	    "\"a\":{\"op\":\"file\",\"actions\":[{\"mkdir\":{\"path\":\"a\"}}]},"
	    "\"same\":{\"op\":\"file\",\"base\":\"a\",\"actions\":[{\"mkdir\":{\"path\":\"1\"}}]},"
	    "\"top\":{\"op\":\"file\",\"base\":\"same\",\"actions\":[{\"mkdir\":{\"path\":\"t\"}}]}"
	    "},"
	    "\"outputs\":[\"top\"]}";
	char *spec2 = strdup(spec1);
	char *p = strstr(spec2, "\"path\":\"1\"");
	p[8] = '2';
	fx_env_open(&e, NULL, &env_opts);
	wait_job(&e, submit(&e, spec1), &i1);
	reset_counts();
	wait_job(&e, submit(&e, spec2), &i2);
	CHECK_EQ_STR(sfs_job_state_name(i2.state), "done");
	CHECK_EQ_INT(n_exec, 1); /* only "same" re-executes; top hits by content */
	CHECK_EQ_INT(n_cache_map, 3);
	CHECK_EQ_STR(i1.outputs[0].result, i2.outputs[0].result);
	sfs_job_info_release(&i1);
	sfs_job_info_release(&i2);
	/* carry-over linking: the third build hits by definition, nothing runs */
	reset_counts();
	wait_job(&e, submit(&e, spec2), &i2);
	CHECK_EQ_INT(n_exec, 0);
	sfs_job_info_release(&i2);
	free(spec2);
	fx_env_close(&e);
}

/* The cache config of the export (an OCI layout) at dir: index -> manifest -> config. */
static json_t *export_config(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/index.json", dir);
	json_t *idx = json_load_file(path, 0, NULL);
	const char *md = json_string_value(
	    json_object_get(json_array_get(json_object_get(idx, "manifests"), 0), "digest"));
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, md ? md + 7 : "");
	json_t *man = md ? json_load_file(path, 0, NULL) : NULL;
	const char *cd =
	    json_string_value(json_object_get(json_object_get(man, "config"), "digest"));
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, cd ? cd + 7 : "");
	json_t *cfg = cd ? json_load_file(path, 0, NULL) : NULL;
	json_decref(man);
	json_decref(idx);
	return cfg;
}

/* Does the export at dir have a record with this digest? */
static bool export_has_record(const char *dir, const char *digest)
{
	json_t *cfg = export_config(dir), *recs = json_object_get(cfg, "records");
	bool found = false;
	for (size_t k = 0; k < json_array_size(recs); k++) {
		const char *d =
		    json_string_value(json_object_get(json_array_get(recs, k), "digest"));
		found |= d && !strcmp(d, digest);
	}
	json_decref(cfg);
	return found;
}

/* How many records of the export at dir carry a result. */
static int export_results(const char *dir)
{
	json_t *cfg = export_config(dir), *recs = json_object_get(cfg, "records");
	int n = 0;
	for (size_t k = 0; k < json_array_size(recs); k++)
		n += json_array_size(json_object_get(json_array_get(recs, k), "layers")) > 0;
	json_decref(cfg);
	return n;
}

/*
 * The spec of a lattice whose content converges: W roots r<j>, then vertex
 * conv<l>_<j> merges (l-1, j) and (l-1, j+1 mod W), and "top" merges the whole
 * last layer.  Every merge makes the same content here (the test op does for
 * vertices named conv*), so from layer 2 on every vertex has inputs of equal
 * content: the shape of branches that all end in one toolchain.  Free it.
 */
static char *lattice_spec(int w, int l)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addstr(&sb, "{\"vertices\":{");
	for (int j = 0; j < w; j++)
		strbuf_addf(&sb,
			    "\"r%d\":{\"op\":\"file\",\"actions\":[{\"mkfile\":{\"path\":\"f\","
			    "\"data\":\"%d\"}}]},",
			    j, j);
	for (int y = 1; y < l; y++)
		for (int j = 0; j < w; j++) {
			char a[32], b[32];
			const char *p = y == 1 ? "r" : "conv";
			snprintf(a, sizeof(a), y == 1 ? "%s%d" : "%s%d_%d", p, y == 1 ? j : y - 1,
				 j);
			snprintf(b, sizeof(b), y == 1 ? "%s%d" : "%s%d_%d", p,
				 y == 1 ? (j + 1) % w : y - 1, (j + 1) % w);
			strbuf_addf(&sb,
				    "\"conv%d_%d\":{\"op\":\"merge\",\"inputs\":[\"%s\",\"%s\"]},",
				    y, j, a, b);
		}
	strbuf_addstr(&sb, "\"top\":{\"op\":\"merge\",\"inputs\":[");
	for (int j = 0; j < w; j++)
		strbuf_addf(&sb, "%s\"conv%d_%d\"", j ? "," : "", l - 1, j);
	strbuf_addstr(&sb, "]}},\"outputs\":[\"top\"]}");
	CHECK(!sb.oom);
	return strbuf_detach(&sb, NULL);
}

/*
 * The converging lattice on the real key storage: each vertex of a deep layer
 * found the keys every vertex of the layer before saved the same result
 * under; those are dropped as duplicates, so the keys kept stay a few a vertex,
 * where they grew with the width layer after layer (and the memory with them).
 */
static void test_converging_lattice(void)
{
	enum { W = 16, L = 48 };
	struct fx_env e = {0};
	struct sfs_job_info info;
	struct sfs_solver_stats st;
	char *spec = lattice_spec(W, L);

	fx_env_open(&e, NULL, &env_opts);
	wait_job(&e, submit(&e, spec), &info);
	CHECK_EQ_STR(sfs_job_state_name(info.state), "done");
	sfs_job_info_release(&info);
	sfs_solver_get_stats(e.s, &st);
	fprintf(stderr, "  lattice %dx%d: %llu execs, %llu keys found\n", W, L,
		(unsigned long long)st.execs, (unsigned long long)st.keys_found);
	CHECK(st.keys_found <= 3 * W * L);
	fx_env_close(&e);
	free(spec);
}

static int count_id(const char *id, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

struct lattice_count {
	uint64_t execs, candidates;
	size_t ids; /* keys in the key storage */
};

/* Solves the converging lattice W x L on a fresh solver whose main cache keeps its
 * keys in memory, and counts what it weighed and stored. */
static void count_lattice(int w, int l, struct lattice_count *ret)
{
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = NULL;
	struct result_storage *rs = NULL;
	struct cache_manager *cm = NULL, *sqlite_main;
	struct sfs_solver_opts so;
	struct sfs_solver *s = NULL;
	struct sfs_job_info info;
	struct sfs_solver_stats st;
	struct fx_env e = {0};
	char *spec = lattice_spec(w, l);

	memset(ret, 0, sizeof(*ret));
	CHECK(c != NULL);
	CHECK_EQ_INT(keystore_memory_new(&ks), 0);
	CHECK_EQ_INT(result_storage_cas_new(c->cas, NULL, &rs), 0);
	CHECK_EQ_INT(cache_manager_new("local", ks, rs, &cm), 0);
	sqlite_main = c->main;
	c->main = cm;
	sfs_solver_opts_default(&so);
	so.workers = env_opts.workers;
	so.resolve = env_opts.resolve;
	CHECK_EQ_INT(sfs_solver_open(c, &so, &s, NULL), 0);
	e.s = s;
	e.cache = c;
	wait_job(&e, submit(&e, spec), &info);
	CHECK_EQ_STR(sfs_job_state_name(info.state), "done");
	sfs_job_info_release(&info);
	sfs_solver_get_stats(s, &st);
	ret->execs = st.execs;
	ret->candidates = st.key_candidates;
	CHECK_EQ_INT(ks->ops->walk(ks, count_id, &ret->ids), 0);
	sfs_solver_close(s);
	c->main = sqlite_main;
	cache_manager_free(cm);
	sfs_cache_close(c);
	free(spec);
}

/*
 * The same lattice twice as deep costs no more a vertex: past the layer where
 * content converges, every vertex saving the same result under a key of its
 * own (linked from the same content keys) made each later vertex weigh all of
 * them (W a vertex, a 100-wide lattice of 112 layers took 1.7 GB), and the
 * store hold a key for each.  A save of a result some key that every input
 * leads to already holds takes that key, so the keys weighed stay a few a
 * vertex and the keys stored do not grow with depth.
 */
static void test_converging_lattice_depth(void)
{
	enum { W = 24, L = 12 };
	struct lattice_count a, b;

	count_lattice(W, L, &a);
	count_lattice(W, 2 * L, &b);
	fprintf(stderr,
		"  lattice %dx%d: %llu execs, %llu candidates, %zu keys; %dx%d: %llu execs, "
		"%llu candidates, %zu keys\n",
		W, L, (unsigned long long)a.execs, (unsigned long long)a.candidates, a.ids, W,
		2 * L, (unsigned long long)b.execs, (unsigned long long)b.candidates, b.ids);
	/* the vertices of the deeper layers hit: they add no key (how many of the
	 * first converged layer execute before one of them saved depends on the
	 * workers' timing, so the execs are shown, not checked) */
	CHECK(b.ids <= a.ids + W / 2);
	/* what each vertex weighs does not grow with the width or the depth */
	CHECK(b.candidates <= 4ull * W * 2 * L);
	CHECK(b.candidates - a.candidates <= 4ull * W * L);
}

/* op `build` solves the spec found in its input as part of the job (TestSubbuild). */
static void test_subbuild(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i1, i2;
	const char *spec =
	    "{\"vertices\":{"
	    "\"specsrc\":{\"op\":\"file\",\"actions\":[{\"mkdir\":{\"path\":\"s\"}}]},"
	    "\"b\":{\"op\":\"build\",\"input\":\"specsrc\",\"output\":\"i2\"}},"
	    "\"outputs\":[\"b\"],\"export\":{\"mode\":\"max\"}}";
	fx_env_open(&e, NULL, &env_opts);
	reset_counts();
	uint64_t id = submit(&e, spec);
	wait_job(&e, id, &i1);
	if (i1.state != SFS_JOB_DONE)
		fprintf(stderr, "  error: %s\n", i1.error);
	CHECK_EQ_STR(sfs_job_state_name(i1.state), "done");
	CHECK_EQ_INT(n_cache_map, 4); /* specsrc, b, i1, i2 */
	CHECK_EQ_INT(n_exec, 3);      /* specsrc, i1, i2: b itself is the sub-build */
	char *buf = NULL;
	size_t len = 0;
	bool ended;
	CHECK_EQ_INT(
	    sfs_solver_job_read(e.s, id, SFS_STREAM_STATUS, 0, 1 << 20, &buf, &len, &ended), 0);
	CHECK(buf && strstr(buf, "[i2]") != NULL); /* inner vertices report to the job */
	free(buf);
	/* the export of a job that ran the sub-build includes the inner chain */
	char *dir = sfs_solver_job_export(e.s, id);
	CHECK(dir != NULL);
	struct sfs_spec *inner = NULL;
	struct sfs_spec_ctx sctx = {.session = 0};
	CHECK_EQ_INT(sfs_spec_parse(inner_spec, strlen(inner_spec), &sctx, &inner, NULL), 0);
	char want[SFS_DIGEST_SIZE];
	for (size_t k = 0; inner && k < inner->n; k++)
		if (!strcmp(inner->v[k].key, "i1")) {
			char map[SFS_DIGEST_SIZE];
			sfs_dgst_to_text(&inner->v[k].cache_map_digest, map);
			sfs_root_key(map, 0, want);
		}
	CHECK(dir && export_has_record(dir, want));
	sfs_spec_free(inner);
	free(dir);
	reset_counts();
	wait_job(&e, submit(&e, spec), &i2);
	CHECK_EQ_INT(n_cache_map, 2); /* cached: the inner spec is not even read */
	CHECK_EQ_INT(n_exec, 0);
	CHECK_EQ_STR(i1.outputs[0].result, i2.outputs[0].result);
	sfs_job_info_release(&i1);
	sfs_job_info_release(&i2);
	fx_env_close(&e);
}

static void test_failure_names_vertex(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	const char *spec =
	    "{\"vertices\":{"
	    "\"a\":{\"op\":\"file\",\"actions\":[{\"mkdir\":{\"path\":\"a\"}}]},"
	    "\"fail1\":{\"op\":\"file\",\"base\":\"a\",\"actions\":[{\"mkdir\":{\"path\":\"f\"}}]},"
	    "\"top\":{\"op\":\"file\",\"base\":\"fail1\",\"actions\":[{\"mkdir\":{\"path\":\"t\"}}]"
	    "}},"
	    "\"outputs\":[\"top\"]}";
	fx_env_open(&e, NULL, &env_opts);
	reset_counts();
	uint64_t id = submit(&e, spec);
	wait_job(&e, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "failed");
	CHECK(strstr(i.error, "vertex \"fail1\"") != NULL);
	CHECK(strstr(i.error, "boom from fail1") != NULL);
	CHECK_EQ_INT(n_exec, 2); /* a and fail1; top never runs */
	char *buf = NULL;
	size_t len = 0;
	bool ended = false;
	CHECK_EQ_INT(
	    sfs_solver_job_read(e.s, id, SFS_STREAM_STATUS, 0, 1 << 20, &buf, &len, &ended), 0);
	CHECK(ended);
	CHECK(strstr(buf, "ERROR: boom from fail1") != NULL);
	CHECK(strstr(buf, " > [fail1]") != NULL);
	free(buf);
	sfs_job_info_release(&i);
	fx_env_close(&e);
}

/* The spec keys of a finished job, from its saved vertex list: two keys of one
 * vertex (equal ops) both name it, in key order, and a third its own. */
static void test_names_of_shared_vertex(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	const char *spec =
	    "{\"vertices\":{"
	    "\"b\":{\"op\":\"file\",\"actions\":[{\"mkdir\":{\"path\":\"x\"}}]},"
	    "\"c\":{\"op\":\"file\",\"actions\":[{\"mkdir\":{\"path\":\"y\"}}]},"
	    "\"a\":{\"op\":\"file\",\"actions\":[{\"mkdir\":{\"path\":\"x\"}}]}"
	    "},\"outputs\":[\"a\",\"b\",\"c\"]}";
	fx_env_open(&e, NULL, &env_opts);
	uint64_t id = submit(&e, spec);
	wait_job(&e, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	struct sfs_job_name *v = NULL;
	size_t n = 0;
	CHECK_EQ_INT(sfs_solver_job_names(e.s, id, &v, &n), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_STR(v[0].key, "a");
		CHECK_EQ_STR(v[1].key, "b");
		CHECK_EQ_STR(v[2].key, "c");
		CHECK_EQ_STR(v[0].digest, v[1].digest);
		CHECK(strcmp(v[0].digest, v[2].digest) != 0);
	}
	sfs_job_names_free(v, n);
	sfs_job_info_release(&i);
	fx_env_close(&e);
}

/* A spec with "export" writes the job's cache export before the job is done (docs/export.md §1). */
static void test_export_at_job_end(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	char *spec = strdup(chain3), *p = strrchr(spec, '}');
	char *withexp = NULL;
	*p = '\0';
	CHECK(asprintf(&withexp, "%s,\"export\":{\"mode\":\"max\"}}", spec) > 0);
	fx_env_open(&e, NULL, &env_opts);
	uint64_t id = submit(&e, withexp);
	wait_job(&e, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	char *dir = sfs_solver_job_export(e.s, id);
	CHECK(dir != NULL);
	char path[4096];
	snprintf(path, sizeof(path), "%s/index.json", dir ? dir : "");
	json_t *idx = json_load_file(path, 0, NULL);
	CHECK(idx && json_array_size(json_object_get(idx, "manifests")) == 1);
	snprintf(path, sizeof(path), "%s/oci-layout", dir ? dir : "");
	CHECK(access(path, R_OK) == 0);
	json_decref(idx);
	/* the status shows the export as one more step */
	char *buf = NULL;
	size_t len = 0;
	bool ended;
	CHECK_EQ_INT(
	    sfs_solver_job_read(e.s, id, SFS_STREAM_STATUS, 0, 1 << 20, &buf, &len, &ended), 0);
	CHECK(buf && strstr(buf, "[export] exporting cache") != NULL);
	free(buf);
	CHECK_EQ_INT(export_results(dir ? dir : "/"), 2); /* max: b and c, not the root a */
	/* export_cache: false on c keeps its result out (VertexOptions.ExportCache) */
	sfs_job_info_release(&i);
	char *nocache = strdup(withexp), *q = strstr(nocache, "\"c\":{\"op\":\"file\",");
	CHECK(q != NULL);
	char *nc = NULL;
	if (q) {
		q[strlen("\"c\":{")] = '\0';
		CHECK(asprintf(&nc, "%s\"export_cache\":false,%s", nocache,
			       strstr(withexp, "\"c\":{") + strlen("\"c\":{")) > 0);
	}
	id = submit(&e, nc ? nc : withexp);
	wait_job(&e, id, &i);
	free(dir);
	dir = sfs_solver_job_export(e.s, id);
	CHECK_EQ_INT(export_results(dir ? dir : "/"), 1);
	free(nocache);
	free(nc);
	/* no export asked: none written */
	sfs_job_info_release(&i);
	id = submit(&e, chain3);
	wait_job(&e, id, &i);
	CHECK(sfs_solver_job_export(e.s, id) == NULL);
	sfs_job_info_release(&i);
	free(dir);
	free(spec);
	free(withexp);
	fx_env_close(&e);
}

/* cache_from: another mount's export is an extra cache source; a hit becomes local (§4.5). */
static void test_cache_from(void)
{
	struct fx_env a = {0}, b = {0};
	struct sfs_job_info i;
	char *spec = strdup(chain3), *p = strrchr(spec, '}');
	*p = '\0';
	char *exp = NULL, *from = NULL;
	CHECK(asprintf(&exp, "%s,\"export\":{\"mode\":\"max\"}}", spec) > 0);
	fx_env_open(&a, NULL, &env_opts);
	uint64_t id = submit(&a, exp);
	wait_job(&a, id, &i);
	sfs_job_info_release(&i);
	char *dir = sfs_solver_job_export(a.s, id);
	CHECK(dir != NULL);
	CHECK(asprintf(&from, "%s,\"cache_from\":[\"%s\"]}", spec, dir ? dir : "/") > 0);
	/* a fresh state dir: everything comes from the source */
	fx_env_open(&b, NULL, &env_opts);
	reset_counts();
	id = submit(&b, from);
	wait_job(&b, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK_EQ_INT(n_exec, 0);
	char *buf = NULL;
	size_t len = 0;
	bool ended;
	CHECK_EQ_INT(
	    sfs_solver_job_read(b.s, id, SFS_STREAM_STATUS, 0, 1 << 20, &buf, &len, &ended), 0);
	CHECK(buf && memmem(buf, len, "[cache_from] importing ", 23) != NULL);
	free(buf);
	sfs_job_info_release(&i);
	/* and it was copied into the local cache: no source needed any more */
	reset_counts();
	wait_job(&b, submit(&b, chain3), &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK_EQ_INT(n_exec, 0);
	sfs_job_info_release(&i);
	/* a source that is not there is a warning: the job builds without it */
	char *missing = NULL;
	CHECK(asprintf(&missing, "%s,\"cache_from\":[\"/nonexistent-layout\"]}", spec) > 0);
	id = submit(&b, missing);
	wait_job(&b, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK_EQ_STR(i.error, "");
	sfs_job_info_release(&i);
	CHECK_EQ_INT(
	    sfs_solver_job_read(b.s, id, SFS_STREAM_STATUS, 0, 1 << 20, &buf, &len, &ended), 0);
	static const char warning[] = "WARNING: local cache import at /nonexistent-layout not found";
	CHECK(buf && memmem(buf, len, warning, strlen(warning)));
	CHECK(buf && !memmem(buf, len, "ERROR", 5));
	free(buf);
	free(missing);
	/* the same for a vertex's own cache_from, and an empty directory is not there either */
	char *vmissing = NULL, *empty = tap_tmpdir();
	CHECK(asprintf(&vmissing,
		       "{\"vertices\":{\"v\":{\"op\":\"file\",\"cache_from\":[\"%s\"],"
		       "\"actions\":[{\"mkfile\":{\"path\":\"v\",\"data\":\"2\"}}]}},"
		       "\"outputs\":[\"v\"]}",
		       empty) > 0);
	id = submit(&b, vmissing);
	wait_job(&b, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK_EQ_STR(i.error, "");
	sfs_job_info_release(&i);
	CHECK_EQ_INT(
	    sfs_solver_job_read(b.s, id, SFS_STREAM_STATUS, 0, 1 << 20, &buf, &len, &ended), 0);
	CHECK(buf && memmem(buf, len, "not found", 9));
	free(buf);
	free(vmissing);
	/* a source that is there but is no layout still fails the job, naming it */
	char *bad = NULL, *notlayout = tap_tmpdir(), idx[4096];
	snprintf(idx, sizeof(idx), "%s/index.json", notlayout);
	FILE *f = fopen(idx, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("{\"manifests\":[]}", f);
		fclose(f);
	}
	CHECK(asprintf(&bad, "%s,\"cache_from\":[\"%s\"]}", spec, notlayout) > 0);
	wait_job(&b, submit(&b, bad), &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "failed");
	CHECK(strstr(i.error, "cache_from ") != NULL);
	sfs_job_info_release(&i);
	free(bad);
	free(dir);
	free(exp);
	free(from);
	free(spec);
	fx_env_close(&b);
	fx_env_close(&a);
}

/* Builds spec on e, expecting done; its first output's result id into ret. */
static void build_one(struct fx_env *e, const char *spec, char ret[SFS_DIGEST_SIZE])
{
	struct sfs_job_info i;
	wait_job(e, submit(e, spec), &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK(i.noutputs == 1);
	snprintf(ret, SFS_DIGEST_SIZE, "%s", i.noutputs ? i.outputs[0].result : "");
	sfs_job_info_release(&i);
}

/* The whole cache exported (every job's records), imported into a fresh
 * STATE_DIR for good, solves every spec with nothing executed
 * (docs/export.md §12); a prune keeps only the newest export. */
static void test_whole_cache_export(void)
{
	static const char *chain3b =
	    "{\"vertices\":{"
	    "\"a\":{\"op\":\"file\",\"actions\":[{\"mkfile\":{\"path\":\"a\",\"data\":\"2\"}}]},"
	    "\"b\":{\"op\":\"file\",\"base\":\"a\",\"actions\":[{\"mkdir\":{\"path\":\"x\"}}]}},"
	    "\"outputs\":[\"b\"]}";
	const char *specs[] = {chain3, chain3b};
	char want[2][SFS_DIGEST_SIZE], got[SFS_DIGEST_SIZE];
	char hex[SFS_HEX_SIZE], hex2[SFS_HEX_SIZE], newest[SFS_HEX_SIZE];
	struct fx_env a = {0}, b = {0};
	struct cache_import *im = NULL;
	char *msg = NULL, *path = NULL;

	fx_env_open(&a, NULL, &env_opts);
	for (int k = 0; k < 2; k++)
		build_one(&a, specs[k], want[k]);
	CHECK_EQ_INT(cache_exports_newest(a.cache, newest), -ENOENT);
	CHECK_EQ_INT(cache_exports_make(a.cache, CACHE_EXPORT_MAX, CACHE_EXPORT_IMAGE, NULL, hex, &msg),
		     0);
	CHECK_EQ_INT(cache_exports_newest(a.cache, newest), 0);
	CHECK_EQ_STR(newest, hex);
	/* the same cache again is the same directory */
	CHECK_EQ_INT(cache_exports_make(a.cache, CACHE_EXPORT_MAX, CACHE_EXPORT_IMAGE, NULL, hex2, &msg),
		     0);
	CHECK_EQ_STR(hex2, hex);
	/* what the export held against a prune is released */
	CHECK_EQ_INT((int)cache_holds_count(a.cache->holds), 0);

	fx_env_open(&b, NULL, &env_opts);
	path = cache_exports_path(a.cache, hex, NULL);
	CHECK_EQ_INT(cache_import_open(path, &im, &msg), 0);
	CHECK(im && cache_import_nrecords(im) >= 5);
	if (im)
		CHECK_EQ_INT(cache_import_into(im, b.cache, &msg), 0);
	im = cache_import_free(im);
	reset_counts();
	for (int k = 0; k < 2; k++) {
		build_one(&b, specs[k], got);
		CHECK_EQ_STR(got, want[k]);
	}
	CHECK_EQ_INT(n_exec, 0);

	/* another form is another export and the newest; a prune deletes the older */
	CHECK_EQ_INT(
	    cache_exports_make(a.cache, CACHE_EXPORT_MIN, CACHE_EXPORT_MANIFEST_LIST, NULL, hex2, &msg), 0);
	CHECK(strcmp(hex2, hex) != 0);
	CHECK_EQ_INT(cache_exports_newest(a.cache, newest), 0);
	CHECK_EQ_STR(newest, hex2);
	struct strv sv = {0};
	CHECK_EQ_INT(cache_exports_list(a.cache, &sv), 0);
	CHECK_EQ_INT((int)sv.n, 2);
	strv_release(&sv);
	uint64_t n = 0, bytes = 0, un = 0, ubytes = 0;
	CHECK_EQ_INT(cache_exports_usage(a.cache, &un, &ubytes), 0);
	CHECK_EQ_INT((int)un, 2);
	struct cache_prune_report rep = {0};
	CHECK_EQ_INT(cache_prune(a.cache, UINT64_MAX, 0, true, &rep), 0);
	CHECK_EQ_INT((int)rep.exports, 1);
	CHECK(cache_exports_has(a.cache, hex));
	CHECK_EQ_INT(cache_exports_prune(a.cache, false, &n, &bytes), 0);
	CHECK_EQ_INT((int)n, 1);
	CHECK(bytes > 0 && bytes < ubytes);
	CHECK(!cache_exports_has(a.cache, hex));
	CHECK(cache_exports_has(a.cache, hex2));
	CHECK_EQ_INT(cache_exports_prune(a.cache, false, &n, &bytes), 0);
	CHECK_EQ_INT((int)n, 0);
	/* a job export's sweep at the next open keeps the whole-cache export */
	fx_env_close(&a);
	fx_env_open(&a, a.dir, &env_opts);
	CHECK(cache_exports_has(a.cache, hex2));
	if (msg)
		fprintf(stderr, "  %s\n", msg);
	free(msg);
	free(path);
	fx_env_close(&b);
	fx_env_close(&a);
}

/* The arguments of cache/ctl's export command. */
static void test_export_args(void)
{
	enum cache_export_mode m;
	enum cache_export_form f;
	char *msg = NULL;

	CHECK_EQ_INT(cache_exports_parse("", &m, &f, &msg), 0);
	CHECK(m == CACHE_EXPORT_MAX && f == CACHE_EXPORT_IMAGE);
	CHECK_EQ_INT(cache_exports_parse(" form=manifest-list  mode=min\n", &m, &f, &msg), 0);
	CHECK(m == CACHE_EXPORT_MIN && f == CACHE_EXPORT_MANIFEST_LIST);
	CHECK_EQ_INT(cache_exports_parse("mode=max form=image", &m, &f, &msg), 0);
	CHECK(m == CACHE_EXPORT_MAX && f == CACHE_EXPORT_IMAGE);
	CHECK_EQ_INT(cache_exports_parse("mode=remote-only", &m, &f, &msg), -EINVAL);
	CHECK(msg && strstr(msg, "unknown argument \"mode=remote-only\""));
	free(msg);
	msg = NULL;
	CHECK_EQ_INT(cache_exports_parse("mode=min mode=max", &m, &f, &msg), -EINVAL);
	CHECK(msg && strstr(msg, "mode given twice"));
	free(msg);
}

/* A failure at the bottom of a long chain reaches the job without recursing per level. */
static void test_deep_chain_failure(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	struct strbuf sb = STRBUF_INIT;
	const int n = 50000;
	strbuf_addstr(&sb, "{\"vertices\":{\"fail0\":{\"op\":\"file\",\"actions\":["
			   "{\"mkdir\":{\"path\":\"d\"}}]}");
	for (int k = 1; k < n; k++)
		strbuf_addf(&sb,
			    ",\"v%d\":{\"op\":\"file\",\"base\":\"%s%d\",\"actions\":"
			    "[{\"mkdir\":{\"path\":\"d%d\"}}]}",
			    k, k == 1 ? "fail" : "v", k - 1, k);
	strbuf_addf(&sb, "},\"outputs\":[\"v%d\"]}", n - 1);
	fx_env_open(&e, NULL, &env_opts);
	reset_counts();
	wait_job(&e, submit(&e, sb.buf), &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "failed");
	CHECK(strstr(i.error, "vertex \"fail0\"") != NULL);
	CHECK_EQ_INT(n_exec, 1);
	sfs_job_info_release(&i);
	strbuf_release(&sb);
	fx_env_close(&e);
}

/* Some vertex of the shared graph is used by two running jobs. */
static bool vertex_shared(struct fx_env *e)
{
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	bool shared = false;

	if (sfs_solver_vertices(e->s, &v, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		shared |= v[i].njobs >= 2;
	sfs_vertex_infos_free(v, n);
	return shared;
}

/* Both jobs of test_merge_concurrent had the CacheMap of their two vertices. */
static bool both_mapped(struct fx_env *e)
{
	(void)e;
	return atomic_load(&n_cache_map) >= 4;
}

/*
 * Submits spec twice while the first job's exec is blocked, releases the exec only
 * once joined(e) says the second job is in (a bounded wait on what the solver shows,
 * not a sleep), and waits for both jobs.
 */
static void run_two_blocked(struct fx_env *e, const char *spec, bool (*joined)(struct fx_env *e),
			    struct sfs_job_info *ret1, struct sfs_job_info *ret2)
{
	reset_counts();
	atomic_store(&exec_entered, false);
	atomic_store(&block_exec, true);
	uint64_t j1 = submit(e, spec);
	for (int k = 0; k < 5000 && !atomic_load(&exec_entered); k++)
		usleep(1000);
	uint64_t j2 = submit(e, spec);
	for (int k = 0; k < 5000 && !joined(e); k++)
		usleep(1000);
	CHECK(joined(e));
	atomic_store(&block_exec, false);
	wait_job(e, j1, ret1);
	wait_job(e, j2, ret2);
}

/* Two jobs with the same vertex share one execution (§11, item 1). */
static void test_shared_vertex(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i1, i2;
	const char *spec = "{\"vertices\":{\"a\":{\"op\":\"file\",\"actions\":["
			   "{\"mkdir\":{\"path\":\"shared\"}}]}},\"outputs\":[\"a\"]}";
	fx_env_open(&e, NULL, &env_opts);
	run_two_blocked(&e, spec, vertex_shared, &i1, &i2);
	CHECK_EQ_INT(n_exec, 1);
	CHECK_EQ_INT(n_cache_map, 1);
	CHECK_EQ_STR(i1.outputs[0].result, i2.outputs[0].result);
	sfs_job_info_release(&i1);
	sfs_job_info_release(&i2);
	fx_env_close(&e);
}

/* Different vertices with the same cache keys execute once while active (§1.7). */
static void test_merge_concurrent(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i1, i2;
	/* local vertices of two jobs differ by session, not by cache map */
	const char *spec = "{\"vertices\":{"
			   "\"src\":{\"op\":\"local\",\"path\":\"/nonexistent-merge-test\"},"
			   "\"use\":{\"op\":\"file\",\"base\":\"src\",\"actions\":["
			   "{\"mkdir\":{\"path\":\"m\"}}]}},\"outputs\":[\"use\"]}";
	fx_env_open(&e, NULL, &env_opts);
	run_two_blocked(&e, spec, both_mapped, &i1, &i2);
	CHECK_EQ_STR(sfs_job_state_name(i1.state), "done");
	CHECK_EQ_STR(sfs_job_state_name(i2.state), "done");
	CHECK_EQ_INT(n_cache_map, 4); /* every vertex still gets its CacheMap */
	CHECK_EQ_INT(n_exec, 2);      /* src and use once each */
	CHECK_EQ_STR(i1.outputs[0].result, i2.outputs[0].result);
	sfs_job_info_release(&i1);
	sfs_job_info_release(&i2);
	fx_env_close(&e);
}

/* ignore_cache: never reads the cache, always executes, still writes (§1.8). */
static void test_ignore_cache(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	const char *two = "{\"vertices\":{"
			  "\"a\":{\"op\":\"file\",%s\"actions\":[{\"mkdir\":{\"path\":\"ic\"}}]},"
			  "\"b\":{\"op\":\"file\",\"base\":\"a\",\"actions\":["
			  "{\"mkdir\":{\"path\":\"b\"}}]}},\"outputs\":[\"b\"]%s}";
	char spec[1024];
	fx_env_open(&e, NULL, &env_opts);
	snprintf(spec, sizeof(spec), two, "", "");
	wait_job(&e, submit(&e, spec), &i);
	sfs_job_info_release(&i);
	/* the whole job ignores the cache */
	reset_counts();
	snprintf(spec, sizeof(spec), two, "", ",\"ignore_cache\":true");
	wait_job(&e, submit(&e, spec), &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK_EQ_INT(n_cache_map, 2);
	CHECK_EQ_INT(n_exec, 2);
	sfs_job_info_release(&i);
	/* only the input: its user cannot match by definition and runs too */
	reset_counts();
	snprintf(spec, sizeof(spec), two, "\"ignore_cache\":true,", "");
	wait_job(&e, submit(&e, spec), &i);
	CHECK_EQ_INT(n_exec, 1 + 0); /* a runs; b hits through a's content key */
	sfs_job_info_release(&i);
	/* it still wrote the cache: a normal build executes nothing */
	reset_counts();
	snprintf(spec, sizeof(spec), two, "", "");
	wait_job(&e, submit(&e, spec), &i);
	CHECK_EQ_INT(n_exec, 0);
	sfs_job_info_release(&i);
	fx_env_close(&e);
}

static void test_cancel(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	const char *spec = "{\"vertices\":{\"a\":{\"op\":\"file\",\"actions\":["
			   "{\"mkdir\":{\"path\":\"slow\"}}]}},\"outputs\":[\"a\"]}";
	fx_env_open(&e, NULL, &env_opts);
	reset_counts();
	atomic_store(&exec_entered, false);
	atomic_store(&saw_cancel, false);
	atomic_store(&block_exec, true);
	uint64_t id = submit(&e, spec);
	for (int k = 0; k < 5000 && !atomic_load(&exec_entered); k++)
		usleep(1000);
	CHECK_EQ_INT(sfs_solver_job_ctl(e.s, id, 0, "cancel\n", 7, NULL), 0);
	wait_job(&e, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "cancelled");
	for (int k = 0; k < 2000 && !atomic_load(&saw_cancel); k++)
		usleep(1000);
	CHECK(atomic_load(&saw_cancel));
	atomic_store(&block_exec, false);
	sfs_job_info_release(&i);
	/* not memoized: the same spec runs again */
	reset_counts();
	wait_job(&e, submit(&e, spec), &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	CHECK_EQ_INT(n_exec, 1);
	sfs_job_info_release(&i);
	fx_env_close(&e);
}

static void test_bad_spec_stays_pending(void)
{
	struct fx_env e = {0};
	struct sfs_job_info i;
	uint64_t id = 0;
	char *msg = NULL;
	const char *bad = "{\"vertices\":{\"a\":{\"op\":\"nope\"}},\"outputs\":[\"a\"]}";
	fx_env_open(&e, NULL, &env_opts);
	CHECK_EQ_INT(sfs_solver_job_new(e.s, 0, 0, &id), 0);
	CHECK_EQ_INT(sfs_solver_job_submit(e.s, id, 0, bad, strlen(bad), &msg), -EINVAL);
	CHECK(msg && strstr(msg, "\"a\""));
	CHECK_EQ_INT(sfs_solver_job_info(e.s, id, &i), 0);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "pending");
	CHECK(strstr(i.error, "\"a\"") != NULL);
	sfs_job_info_release(&i);
	CHECK_EQ_INT(sfs_solver_job_submit(e.s, id, 1000, chain3, strlen(chain3), NULL), -EPERM);
	CHECK_EQ_INT(sfs_solver_job_submit(e.s, id, 0, chain3, strlen(chain3), NULL), 0);
	CHECK_EQ_INT(sfs_solver_job_submit(e.s, id, 0, chain3, strlen(chain3), NULL), -EBUSY);
	wait_job(&e, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	sfs_job_info_release(&i);
	free(msg);
	fx_env_close(&e);
}

/* What the parser thread answered, and on which thread. */
struct answer {
	atomic_int calls;
	int r;
	char msg[256];
	pthread_t thread;
};

static void record_answer(void *arg, int r, const char *msg)
{
	struct answer *a = arg;
	a->r = r;
	snprintf(a->msg, sizeof(a->msg), "%s", msg ? msg : "");
	a->thread = pthread_self();
	atomic_fetch_add(&a->calls, 1);
}

static void wait_answer(struct answer *a)
{
	for (int i = 0; i < 10000 && !atomic_load(&a->calls); i++)
		usleep(1000);
	CHECK_EQ_INT(atomic_load(&a->calls), 1);
}

/* Specs submitted for the parser threads: answered there, a job's in order,
 * with what a synchronous submit returns. */
static void test_submit_async(void)
{
	struct fx_env e = {0};
	struct answer bad = {0}, good = {0};
	struct sfs_job_info i;
	uint64_t id = 0;
	const char *badspec = "{\"vertices\":{\"a\":{\"op\":\"nope\"}},\"outputs\":[\"a\"]}";
	fx_env_open(&e, NULL, &env_opts);
	CHECK_EQ_INT(sfs_solver_job_new(e.s, 0, 0, &id), 0);
	CHECK_EQ_INT(sfs_solver_job_submit_async(e.s, id, 0, strdup(badspec), strlen(badspec),
						 record_answer, &bad),
		     0);
	CHECK_EQ_INT(sfs_solver_job_submit_async(e.s, id, 0, strdup(chain3), strlen(chain3),
						 record_answer, &good),
		     0);
	wait_answer(&bad);
	wait_answer(&good);
	CHECK_EQ_INT(bad.r, -EINVAL);
	CHECK(strstr(bad.msg, "\"a\"") != NULL);
	CHECK(!pthread_equal(bad.thread, pthread_self()));
	CHECK_EQ_INT(good.r, 0); /* after the bad one, the same job accepts a good spec */
	wait_job(&e, id, &i);
	CHECK_EQ_STR(sfs_job_state_name(i.state), "done");
	sfs_job_info_release(&i);
	fx_env_close(&e);
}

int main(void)
{
	RUN(test_fresh_then_cached);
	RUN(test_cached_after_reopen);
	RUN(test_spec_of_ended_job);
	RUN(test_changed_middle);
	RUN(test_same_content_hits);
	RUN(test_converging_lattice);
	RUN(test_converging_lattice_depth);
	RUN(test_subbuild);
	RUN(test_failure_names_vertex);
	RUN(test_names_of_shared_vertex);
	RUN(test_export_at_job_end);
	RUN(test_cache_from);
	RUN(test_whole_cache_export);
	RUN(test_export_args);
	RUN(test_deep_chain_failure);
	RUN(test_shared_vertex);
	RUN(test_merge_concurrent);
	RUN(test_ignore_cache);
	RUN(test_cancel);
	RUN(test_bad_spec_stays_pending);
	RUN(test_submit_async);
	return tap_done();
}
