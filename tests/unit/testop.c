/*
 * testop.c — BuildKit's scheduler test vertices over the solverfs solver (see
 * testop.h for the model and how it maps onto specs).
 */
#include "testop.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "cache.h"
#include "manager.h"
#include "result_storage.h"
#include "err.h"
#include "sha256.h"
#include "tree.h"
#include "tap.h"

/* --- the registry of test vertices ------------------------------------------ */

static struct tvtx **reg;
static size_t nreg, capreg;
static atomic_int uniq; /* BuildKit's identity.NewID() for default names and seeds */

static char *unique(const char *prefix)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s%d", prefix ? prefix : "id", prefix ? "-" : "",
		     atomic_fetch_add(&uniq, 1)) < 0)
		abort();
	return s;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static struct tvtx *tv_new(enum tv_kind kind, struct tv_opt o)
{
	struct tvtx *v = calloc(1, sizeof(*v));
	if (!v)
		abort();
	if (sfs_grow((void **)&reg, &capreg, nreg + 1, sizeof(*reg)) < 0)
		abort();
	v->id = (int)nreg;
	reg[nreg++] = v;
	v->kind = kind;
	v->o = o;
	v->o.seed = o.seed ? xstrdup(o.seed) : unique(NULL);
	v->o.name = o.name ? xstrdup(o.name) : unique(v->o.seed);
	v->o.value = o.value ? xstrdup(o.value) : NULL;
	while (v->nin < TV_MAX_IN && o.in[v->nin].v)
		v->nin++;
	return v;
}

struct tvtx *vtx(struct tv_opt o)
{
	return tv_new(TV_VTX, o);
}

/* BuildKit's vtxConst/vtxSum/vtxAdd: a seed naming the op, a unique name. */
static struct tvtx *tv_int(enum tv_kind kind, const char *what, int n, struct tv_opt o)
{
	char seed[64];
	size_t nin = 0;
	while (nin < TV_MAX_IN && o.in[nin].v)
		nin++;
	if (kind == TV_CONST)
		snprintf(seed, sizeof(seed), "%s-%d", what, n);
	else
		snprintf(seed, sizeof(seed), "%s-%d-%zu", what, n, nin);
	if (!o.seed)
		o.seed = seed;
	struct tvtx *v = tv_new(kind, o);
	v->n = n;
	return v;
}

struct tvtx *vtx_const(int n, struct tv_opt o)
{
	return tv_int(TV_CONST, "const", n, o);
}

struct tvtx *vtx_sum(int n, struct tv_opt o)
{
	return tv_int(TV_SUM, "sum", n, o);
}

struct tvtx *vtx_add(int n, struct tv_opt o)
{
	return tv_int(TV_ADD, "add", n, o);
}

struct tvtx *vtx_subbuild(struct tvtx *inner, struct tv_opt o)
{
	char *seed = o.seed ? NULL : unique("sub");
	if (seed)
		o.seed = seed;
	struct tvtx *v = tv_new(TV_SUBBUILD, o);
	free(seed);
	v->sub = inner;
	/* the inner spec is fixed once the inner graph is: the carrier's value */
	char *inner_spec = tv_spec(&inner, 1);
	char cseed[128];
	snprintf(cseed, sizeof(cseed), "carrier-%s", v->o.name);
	v->carrier = tv_new(TV_CARRIER, (struct tv_opt){.seed = cseed, .value = inner_spec});
	free(inner_spec);
	return v;
}

void tv_setup_counters(struct tvtx *v, struct tv_counters *c)
{
	if (v == NULL)
		return;
	atomic_store(&c->cache, 0);
	atomic_store(&c->exec, 0);
	v->cnt = c;
	for (size_t i = 0; i < v->nin; i++)
		tv_setup_counters(v->o.in[i].v, c);
}

const char *tv_name(long id)
{
	return id >= 0 && (size_t)id < nreg ? reg[id]->o.name : "?";
}

void tv_reset(void)
{
	for (size_t i = 0; i < nreg; i++) {
		free((char *)reg[i]->o.name);
		free((char *)reg[i]->o.seed);
		free((char *)reg[i]->o.value);
		free(reg[i]);
	}
	free(reg);
	reg = NULL;
	nreg = capreg = 0;
}

/* --- specs --------------------------------------------------------------------- */

static void set(json_t *o, const char *k, json_t *v)
{
	if (!v || json_object_set_new(o, k, v) < 0)
		abort();
}

static void push(json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v) < 0)
		abort();
}

static json_t *ref(const struct tvtx *v, int output)
{
	char buf[32];
	if (output)
		snprintf(buf, sizeof(buf), "k%d:%d", v->id, output);
	else
		snprintf(buf, sizeof(buf), "k%d", v->id);
	return json_string(buf);
}

static json_t *mount(const char *dest, json_t *input, bool output)
{
	json_t *m = json_object();
	set(m, "dest", json_string(dest));
	if (input)
		set(m, "input", input);
	if (output)
		set(m, "output", json_true());
	return m;
}

static json_t *exec_vertex(const struct tvtx *v)
{
	json_t *o = json_object(), *args = json_array(), *mounts = json_array();
	char dest[32];
	set(o, "op", json_string("exec"));
	push(args, json_string(v->o.name));
	set(o, "args", args);
	/* vtxAdd: one output per input; others: output 0 is "out" */
	if (v->kind != TV_ADD)
		push(mounts, mount("out", NULL, true));
	for (size_t i = 0; i < v->nin; i++) {
		snprintf(dest, sizeof(dest), "in%zu", i);
		push(mounts, mount(dest, ref(v->o.in[i].v, v->o.in[i].output),
				   v->kind == TV_ADD || !v->o.in[i].slow));
	}
	set(o, "mounts", mounts);
	return o;
}

static void add_vertex(json_t *verts, struct tvtx *v)
{
	char key[32], label[32];
	snprintf(key, sizeof(key), "k%d", v->id);
	if (json_object_get(verts, key))
		return;
	json_t *o;
	if (v->kind == TV_SUBBUILD) {
		add_vertex(verts, v->carrier);
		o = json_object();
		set(o, "op", json_string("build"));
		set(o, "input", ref(v->carrier, 0));
	} else {
		for (size_t i = 0; i < v->nin; i++)
			add_vertex(verts, v->o.in[i].v);
		o = exec_vertex(v);
	}
	snprintf(label, sizeof(label), "t%d", v->id);
	set(o, "name", json_string(label));
	if (v->o.ignore_cache)
		set(o, "ignore_cache", json_true());
	set(verts, key, o);
}

char *tv_spec(struct tvtx *const *outs, size_t n)
{
	return tv_spec_export(outs, n, NULL);
}

char *tv_spec_export(struct tvtx *const *outs, size_t n, const char *mode)
{
	json_t *root = json_object(), *verts = json_object(), *o = json_array();
	for (size_t i = 0; i < n; i++) {
		add_vertex(verts, outs[i]);
		push(o, ref(outs[i], 0));
	}
	set(root, "vertices", verts);
	set(root, "outputs", o);
	if (mode) {
		json_t *x = json_object();
		set(x, "mode", json_string(mode));
		set(root, "export", x);
	}
	char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (!s)
		abort();
	return s;
}

/* --- the op ---------------------------------------------------------------------- */

void tv_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

bool tv_wait_cancelled(struct sfs_op_ctx *ctx, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (sfs_op_cancelled(ctx))
			return true;
		tv_sleep_ms(1);
	}
	return sfs_op_cancelled(ctx);
}

/* A ctx-aware delay: -ECANCELED when cancelled meanwhile. */
static int delay(struct sfs_op_ctx *ctx, int ms, char **ret_msg)
{
	if (tv_wait_cancelled(ctx, ms))
		return sfs_errf(ret_msg, -ECANCELED, "context canceled");
	return 0;
}

static void digest_of(const char *s, char ret[SFS_DIGEST_SIZE])
{
	sfs_sha256_digest(s, strlen(s), ret);
}

static void seed_digest(const char *seed, char ret[SFS_DIGEST_SIZE])
{
	char *s = NULL;
	if (asprintf(&s, "seed:%s", seed) < 0)
		abort();
	digest_of(s, ret);
	free(s);
}

static int t_cache_map(struct sfs_op *op, struct sfs_op_ctx *ctx, int index,
		       struct sfs_cache_map *ret, bool *ret_done, char **ret_msg)
{
	struct tvtx *v = op->priv;
	size_t nseeds = 0;
	while (nseeds < TV_MAX_SEEDS && v->o.seeds[nseeds])
		nseeds++;
	struct sfs_cache_map m = {0};
	if (index > 0) {
		atomic_fetch_add(&v->later_maps, 1);
		if ((size_t)index > nseeds)
			return sfs_errf(ret_msg, -EINVAL, "no cache map %d", index);
		seed_digest(v->o.seeds[index - 1], m.digest);
		*ret_done = nseeds == (size_t)index;
		*ret = m;
		return 0;
	}
	if (v->o.cache_pre) {
		int r = v->o.cache_pre(v, ctx, v->o.cache_arg, ret_msg);
		if (r < 0)
			return r;
	}
	if (v->cnt)
		atomic_fetch_add(&v->cnt->cache, 1);
	int r = delay(ctx, v->o.cache_delay_ms, ret_msg);
	if (r < 0)
		return r;
	/* deps: one per input of the spec vertex (a sub-build has its carrier) */
	m.ndeps = op->v->ninputs;
	if (m.ndeps && !(m.deps = calloc(m.ndeps, sizeof(*m.deps))))
		return -ENOMEM;
	for (size_t i = 0; i < m.ndeps; i++) {
		if (i < v->nin && v->o.in[i].sel)
			digest_of(v->o.in[i].sel, m.deps[i].selector);
		m.deps[i].content_func = op->v->inputs[i].content_func;
	}
	seed_digest(v->o.seed, m.digest);
	*ret_done = nseeds == 0;
	*ret = m;
	return 0;
}

static char *tv_value_cas(struct cas *c, const char *result_id)
{
	struct tree *t = NULL;
	char *buf = NULL;
	size_t len = 0;
	if (tree_load(c, result_id, &t) < 0)
		return NULL;
	const struct tree_entry *e = tree_find(t, "value");
	if (e && cas_read_all(c, e->hex, &buf, &len) < 0)
		buf = NULL;
	tree_free(t);
	return buf;
}

static int input_int(struct sfs_op_ctx *ctx, const char *result, int *ret, char **ret_msg)
{
	char *s = tv_value_cas(ctx->cache->cas, result);
	if (!s)
		return sfs_errf(ret_msg, -EINVAL, "input %s has no value", result);
	*ret = atoi(s);
	free(s);
	return 0;
}

/* A result tree holding value (and, for a carrier, the inner spec). */
static int put_result(struct sfs_op_ctx *ctx, const char *value, const char *spec,
		      char ret[SFS_DIGEST_SIZE])
{
	struct tree_entry e[3] = {{.type = 'd', .mode = 0755, .path = "."}};
	size_t n = 1;
	int r = 0;
	if (spec) {
		e[n] = (struct tree_entry){.type = 'f', .mode = 0644, .path = "solverfs.json"};
		e[n].size = strlen(spec);
		r = cas_put_buf(ctx->cache->cas, spec, e[n].size, e[n].hex);
		n++;
	}
	e[n] = (struct tree_entry){.type = 'f', .mode = 0644, .path = "value"};
	e[n].size = strlen(value);
	if (r == 0)
		r = cas_put_buf(ctx->cache->cas, value, e[n].size, e[n].hex);
	n++;
	struct tree *t = NULL;
	if (r == 0)
		r = tree_from_entries(ctx->cache->cas, e, n, &t);
	if (r == 0)
		memcpy(ret, t->id, SFS_DIGEST_SIZE);
	tree_free(t);
	return r;
}

/* The value of output o (BuildKit's Exec of each vertex kind). */
static int output_value(struct tvtx *v, struct sfs_op_ctx *ctx, const char *const *inputs, size_t o,
			char buf[64], const char **ret, char **ret_msg)
{
	int sum = v->n, x = 0, r = 0;
	switch (v->kind) {
	case TV_VTX:
	case TV_CARRIER:
		*ret = v->o.value ? v->o.value : "";
		return 0;
	case TV_CONST:
		break;
	case TV_SUM:
		for (size_t i = 0; i < v->nin && r == 0; i++) {
			r = input_int(ctx, inputs[i], &x, ret_msg);
			sum += x;
		}
		break;
	case TV_ADD:
		r = input_int(ctx, inputs[o], &x, ret_msg);
		sum += x;
		break;
	case TV_SUBBUILD:
		return sfs_errf(ret_msg, -EINVAL, "a sub-build is not executed by its op");
	}
	snprintf(buf, 64, "%d", sum);
	*ret = buf;
	return r;
}

static int t_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		  size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct tvtx *v = op->priv;
	int r = 0;
	if (ninputs != v->nin)
		return sfs_errf(ret_msg, -EINVAL, "invalid number of inputs");
	if (v->o.exec_pre && (r = v->o.exec_pre(v, ctx, v->o.exec_arg, ret_msg)) < 0)
		return r;
	if (v->cnt)
		atomic_fetch_add(&v->cnt->exec, 1);
	if ((r = delay(ctx, v->o.exec_delay_ms, ret_msg)) < 0)
		return r;
	for (size_t o = 0; o < op->v->noutputs && r == 0; o++) {
		char buf[64];
		const char *val = NULL;
		r = output_value(v, ctx, inputs, v->kind == TV_ADD ? o : 0, buf, &val, ret_msg);
		if (r == 0)
			r = put_result(ctx, val, v->kind == TV_CARRIER ? v->o.value : NULL,
				       outputs[o]);
	}
	return r;
}

/* digestFromResult: sha256 of the input's value. */
static int t_content(struct sfs_op *op, struct sfs_op_ctx *ctx, size_t input, const char *result_id,
		     char ret[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct tvtx *v = op->priv;
	atomic_fetch_add(&v->slow_calls, 1);
	if (v->o.slow_err)
		return sfs_errf(ret_msg, -EIO, "%s", v->o.slow_err);
	char *s = tv_value_cas(ctx->cache->cas, result_id);
	if (!s)
		return sfs_errf(ret_msg, -EINVAL, "input %zu: result %s has no value", input,
				result_id);
	digest_of(s, ret);
	free(s);
	return 0;
}

static const struct sfs_op_type tv_op = {"test", t_cache_map, t_exec, t_content, NULL};

int tv_resolve(void *arg, const struct sfs_spec_vertex *v, struct sfs_op **ret)
{
	(void)arg;
	if (!v->name || v->name[0] != 't')
		return -EINVAL;
	long id = strtol(v->name + 1, NULL, 10);
	if (id < 0 || (size_t)id >= nreg)
		return -EINVAL;
	return fx_op_new(&tv_op, v, reg[id], ret);
}

/* --- hooks ------------------------------------------------------------------------- */

void tv_block_init(struct tv_block *b, int n)
{
	atomic_store(&b->left, n);
}

/* Polls ready(arg) every millisecond for up to ms: 0 once it holds, a cancellation
 * error when the op is cancelled first, -ETIMEDOUT saying why after ms (an error,
 * not a hang). */
static int hook_wait(struct sfs_op_ctx *ctx, int ms, bool (*ready)(void *arg), void *arg,
		     const char *why, char **ret_msg)
{
	for (int i = 0; i < ms; i++) {
		if (ready(arg))
			return 0;
		if (sfs_op_cancelled(ctx))
			return sfs_errf(ret_msg, -ECANCELED, "context canceled");
		tv_sleep_ms(1);
	}
	return sfs_errf(ret_msg, -ETIMEDOUT, "%s", why);
}

static bool block_left(void *arg)
{
	return atomic_load(&((struct tv_block *)arg)->left) <= 0;
}

/* Times out when the solver serializes what must run at once. */
int tv_block_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg)
{
	struct tv_block *b = arg;
	(void)v;
	atomic_fetch_sub(&b->left, 1);
	return hook_wait(ctx, 5000, block_left, b,
			 "blocking function timed out: calls were serialized", ret_msg);
}

static bool gate_open(void *arg)
{
	return atomic_load(&((struct tv_gate *)arg)->open);
}

int tv_gate_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg)
{
	struct tv_gate *g = arg;
	(void)v;
	atomic_fetch_add(&g->entered, 1);
	return hook_wait(ctx, 20000, gate_open, g, "gate never opened", ret_msg);
}

int tv_fail_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg)
{
	(void)v;
	(void)ctx;
	return sfs_errf(ret_msg, -EIO, "%s", (const char *)arg);
}

/* --- the solver -------------------------------------------------------------------- */

const struct fx_env_opts tv_env_opts = {.workers = 8, .resolve = tv_resolve, .after = tv_reset};

void tv_env_open(struct fx_env *e)
{
	fx_env_open(e, NULL, &tv_env_opts);
}

uint64_t tv_job_new(struct fx_env *e)
{
	uint64_t id = 0;
	CHECK_EQ_INT(sfs_solver_job_new(e->s, 0, 0, &id), 0);
	return id;
}

void tv_job_submit(struct fx_env *e, uint64_t id, const char *spec)
{
	char *msg = NULL;
	int r = sfs_solver_job_submit(e->s, id, 0, spec, strlen(spec), &msg);
	if (r < 0)
		fprintf(stderr, "  submit: %s\n  spec: %s\n", msg ? msg : "?", spec);
	CHECK_EQ_INT(r, 0);
	free(msg);
}

uint64_t tv_start(struct fx_env *e, struct tvtx *const *outs, size_t n)
{
	return tv_start_export(e, outs, n, NULL);
}

uint64_t tv_start_export(struct fx_env *e, struct tvtx *const *outs, size_t n, const char *mode)
{
	char *spec = tv_spec_export(outs, n, mode);
	uint64_t id = tv_job_new(e);
	tv_job_submit(e, id, spec);
	free(spec);
	return id;
}

bool tv_wait(struct fx_env *e, uint64_t id, struct sfs_job_info *info)
{
	for (int i = 0; i < 20000; i++) {
		CHECK_EQ_INT(sfs_solver_job_info(e->s, id, info), 0);
		if (sfs_job_state_final(info->state))
			return true;
		sfs_job_info_release(info);
		tv_sleep_ms(1);
	}
	fprintf(stderr, "  job %llu did not end (deadlock?)\n", (unsigned long long)id);
	CHECK(!"job did not end");
	sfs_solver_job_info(e->s, id, info);
	return false;
}

bool tv_wait_output(struct fx_env *e, uint64_t id, size_t k, char **ret_value)
{
	struct sfs_job_info info;
	*ret_value = NULL;
	for (int i = 0; i < 20000; i++) {
		CHECK_EQ_INT(sfs_solver_job_info(e->s, id, &info), 0);
		bool have = k < info.noutputs && info.outputs[k].result[0];
		if (have)
			*ret_value = tv_value(e, info.outputs[k].result);
		bool final = sfs_job_state_final(info.state);
		if (final && !have)
			fprintf(stderr, "  job %llu ended %s: %s\n", (unsigned long long)id,
				sfs_job_state_name(info.state), info.error);
		sfs_job_info_release(&info);
		if (have || final)
			return have;
		tv_sleep_ms(1);
	}
	CHECK(!"output never built");
	return false;
}

uint64_t tv_last_job;

char *tv_build(struct fx_env *e, struct tvtx *target, char **ret_err)
{
	return tv_build_export(e, target, NULL, ret_err);
}

char *tv_build_export(struct fx_env *e, struct tvtx *target, const char *mode, char **ret_err)
{
	struct sfs_job_info info;
	char *val = NULL;
	uint64_t id = tv_start_export(e, &target, 1, mode);
	tv_last_job = id;
	tv_wait(e, id, &info);
	if (info.state == SFS_JOB_DONE && info.noutputs)
		val = tv_value(e, info.outputs[0].result);
	else if (ret_err)
		*ret_err = xstrdup(info.error ? info.error : "");
	else
		fprintf(stderr, "  job %llu %s: %s\n", (unsigned long long)id,
			sfs_job_state_name(info.state), info.error);
	sfs_job_info_release(&info);
	return val;
}

char *tv_value(struct fx_env *e, const char *result_id)
{
	return tv_value_cas(e->cache->cas, result_id);
}

uint64_t tv_loads(struct fx_env *e)
{
	struct sfs_solver_stats st;
	sfs_solver_get_stats(e->s, &st);
	return st.loads;
}

void tv_break_values(struct fx_env *e, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char hex[SFS_HEX_SIZE];
		sfs_sha256_hex(values[i], strlen(values[i]), hex);
		cas_remove(e->cache->cas, hex);
	}
}

/*
 * BuildKit's forceFail: while on, every load of a stored result fails, whatever an
 * exec puts back meanwhile (so the counts do not depend on which vertex runs first).
 * The ops table of the cache's result storage is swapped for one whose load fails;
 * the env must be idle when it is switched.
 */
static const struct result_storage_ops *tv_real_ops;
static struct result_storage_ops tv_failing_ops;

static int tv_failing_load(struct result_storage *rs, const struct cache_result *r,
			   char ret_result_id[SFS_DIGEST_SIZE], char **ret_msg)
{
	(void)rs;
	(void)r;
	(void)ret_result_id;
	return sfs_errf(ret_msg, -EIO, "force fail");
}

void tv_force_fail_loads(struct fx_env *e, bool on)
{
	struct result_storage *rs = cache_manager_storage(e->cache->main);

	if (on && rs->ops != &tv_failing_ops) {
		tv_real_ops = rs->ops;
		tv_failing_ops = *rs->ops;
		tv_failing_ops.load = tv_failing_load;
		rs->ops = &tv_failing_ops;
	} else if (!on && rs->ops == &tv_failing_ops) {
		rs->ops = tv_real_ops;
	}
}

/* --- cache exports ------------------------------------------------------------------- */

/* The JSON blob named by digest in the OCI layout dir. */
static json_t *layout_blob(const char *dir, json_t *digest, char **ret_msg)
{
	const char *d = json_string_value(digest);
	char *path = NULL;
	json_error_t err;
	if (!d || strncmp(d, "sha256:", 7) != 0) {
		sfs_errf(ret_msg, -EINVAL, "%s: bad descriptor digest", dir);
		return NULL;
	}
	if (asprintf(&path, "%s/blobs/sha256/%s", dir, d + 7) < 0)
		abort();
	json_t *j = json_load_file(path, 0, &err);
	if (!j)
		sfs_errf(ret_msg, -EINVAL, "%s: %s", path, err.text);
	free(path);
	return j;
}

static bool media_type_is(json_t *desc, const char *want)
{
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	return mt && strcmp(mt, want) == 0;
}

/* index.json -> image manifest -> the cache config (form "image"). */
static int export_config(const char *dir, json_t **ret, char **ret_msg)
{
	char *path = NULL;
	json_error_t err;
	if (asprintf(&path, "%s/index.json", dir) < 0)
		abort();
	json_t *index = json_load_file(path, 0, &err), *man = NULL;
	free(path);
	if (!index)
		return sfs_errf(ret_msg, -ENOENT, "%s/index.json: %s", dir, err.text);
	json_t *desc = json_array_get(json_object_get(index, "manifests"), 0);
	if (!media_type_is(desc, "application/vnd.oci.image.manifest.v1+json"))
		sfs_errf(ret_msg, -EINVAL, "%s: index.json has no image manifest", dir);
	else if ((man = layout_blob(dir, json_object_get(desc, "digest"), ret_msg)) != NULL) {
		json_t *cfg = json_object_get(man, "config");
		if (!media_type_is(cfg, "application/vnd.buildkit.cacheconfig.v0"))
			sfs_errf(ret_msg, -EINVAL, "%s: the manifest's config is no cacheconfig",
				 dir);
		else
			*ret = layout_blob(dir, json_object_get(cfg, "digest"), ret_msg);
	}
	json_decref(man);
	json_decref(index);
	return *ret ? 0 : -EINVAL;
}

/* A record after deduplication by digest (testExporterTarget.normalize). */
struct urec {
	const char *digest;
	bool result, linked;
	const char *srcs[64]; /* unique source digests of its links */
	size_t nsrcs;
};

static size_t urec_find(struct urec *u, size_t n, const char *digest)
{
	size_t i = 0;
	while (i < n && strcmp(u[i].digest, digest) != 0)
		i++;
	return i;
}

static void urec_link(struct urec *dst, struct urec *src)
{
	src->linked = true;
	for (size_t i = 0; i < dst->nsrcs; i++)
		if (strcmp(dst->srcs[i], src->digest) == 0)
			return;
	if (dst->nsrcs < ARRAY_SIZE(dst->srcs))
		dst->srcs[dst->nsrcs++] = src->digest;
}

/* The links of config record r into its unique record u[k]. */
static void urec_links(json_t *records, json_t *r, struct urec *u, size_t nu, size_t k)
{
	size_t i, j;
	json_t *alts, *in;
	json_array_foreach(json_object_get(r, "inputs"), i, alts)
	{
		json_array_foreach(alts, j, in)
		{
			json_t *src = json_array_get(
			    records, (size_t)json_integer_value(json_object_get(in, "link")));
			const char *d = json_string_value(json_object_get(src, "digest"));
			size_t s = d ? urec_find(u, nu, d) : nu;
			if (s < nu)
				urec_link(&u[k], &u[s]);
		}
	}
}

/* The records of cfg deduplicated by digest into *ret (digests point into cfg). */
static size_t export_unique(json_t *cfg, struct urec **ret)
{
	json_t *records = json_object_get(cfg, "records"), *r;
	size_t n = json_array_size(records), nu = 0, i;
	struct urec *u = calloc(n + 1, sizeof(*u));
	if (!u)
		abort();
	json_array_foreach(records, i, r)
	{
		const char *d = json_string_value(json_object_get(r, "digest"));
		size_t k = urec_find(u, nu, d ? d : "");
		if (k == nu)
			u[nu++].digest = d ? d : "";
		if (json_array_size(json_object_get(r, "layers")))
			u[k].result = true;
	}
	json_array_foreach(records, i, r)
	{
		const char *d = json_string_value(json_object_get(r, "digest"));
		urec_links(records, r, u, nu, urec_find(u, nu, d ? d : ""));
	}
	*ret = u;
	return nu;
}

static bool skipped(const char *const *skip, const char *digest)
{
	for (size_t s = 0; skip && skip[s]; s++)
		if (strcmp(skip[s], digest) == 0)
			return true;
	return false;
}

static void export_count(json_t *cfg, const char *const *skip, struct tv_export *ret)
{
	struct urec *u = NULL;
	size_t nu = export_unique(cfg, &u);
	memset(ret, 0, sizeof(*ret));
	ret->top_links = -1;
	for (size_t i = 0; i < nu; i++) {
		if (skipped(skip, u[i].digest))
			continue;
		ret->records++;
		ret->with_results += u[i].result;
		if (!u[i].linked && (int)u[i].nsrcs > ret->top_links) {
			ret->top_links = (int)u[i].nsrcs;
			snprintf(ret->top, sizeof(ret->top), "%s", u[i].digest);
		}
	}
	free(u);
}

/* The cache config of job's export; *ret_cfg must be json_decref'd. */
static int job_config(struct fx_env *e, uint64_t job, json_t **ret_cfg, char **ret_msg)
{
	char *dir = sfs_solver_job_export(e->s, job);
	if (!dir)
		return sfs_errf(ret_msg, -ENOENT, "job %llu has no export",
				(unsigned long long)job);
	int r = export_config(dir, ret_cfg, ret_msg);
	free(dir);
	return r;
}

int tv_export_records(struct fx_env *e, uint64_t job, const char *const *skip,
		      struct tv_export *ret, char **ret_msg)
{
	json_t *cfg = NULL;
	int r = job_config(e, job, &cfg, ret_msg);
	if (r == 0)
		export_count(cfg, skip, ret);
	if (r == 0 && getenv("TV_DUMP_EXPORT")) /* to see what a passing check counted */
		tv_export_dump(e, job);
	json_decref(cfg);
	return r;
}

int tv_export_record(struct fx_env *e, uint64_t job, const char *digest, int *ret_links,
		     bool *ret_result, char **ret_msg)
{
	json_t *cfg = NULL;
	struct urec *u = NULL;
	int r = job_config(e, job, &cfg, ret_msg);
	if (r < 0)
		return r;
	size_t nu = export_unique(cfg, &u), k = urec_find(u, nu, digest);
	if (k == nu)
		r = sfs_errf(ret_msg, -ENOENT, "no record %s", digest);
	else {
		*ret_links = (int)u[k].nsrcs;
		*ret_result = u[k].result;
	}
	free(u);
	json_decref(cfg);
	return r;
}

void tv_export_dump(struct fx_env *e, uint64_t job)
{
	char *msg = NULL;
	json_t *cfg = NULL;
	if (job_config(e, job, &cfg, &msg) == 0) {
		char *s = json_dumps(json_object_get(cfg, "records"), JSON_INDENT(1));
		fprintf(stderr, "  export of job %llu: %s\n", (unsigned long long)job, s);
		free(s);
	} else
		fprintf(stderr, "  export of job %llu: %s\n", (unsigned long long)job,
			msg ? msg : "none");
	json_decref(cfg);
	free(msg);
}

/* sha256("<sha256("seed:"+seed)>@output"): the record digest of a root key. */
void tv_root_record(const char *seed, int output, char ret[SFS_DIGEST_SIZE])
{
	char map[SFS_DIGEST_SIZE], *s = NULL;
	seed_digest(seed, map);
	if (asprintf(&s, "%s@%d", map, output) < 0)
		abort();
	digest_of(s, ret);
	free(s);
}
