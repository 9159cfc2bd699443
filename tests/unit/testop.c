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

#include "../../cache/cache.h"
#include "../../cache/err.h"
#include "../../cache/sha256.h"
#include "../../cache/tree.h"
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
	if (nreg == capreg) {
		capreg = capreg ? capreg * 2 : 64;
		reg = realloc(reg, capreg * sizeof(*reg));
		if (!reg)
			abort();
	}
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
	json_t *root = json_object(), *verts = json_object(), *o = json_array();
	for (size_t i = 0; i < n; i++) {
		add_vertex(verts, outs[i]);
		push(o, ref(outs[i], 0));
	}
	set(root, "vertices", verts);
	set(root, "outputs", o);
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
static int output_value(struct tvtx *v, struct sfs_op_ctx *ctx, const char *const *inputs,
			size_t o, char buf[64], const char **ret, char **ret_msg)
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
static int t_content(struct sfs_op *op, struct sfs_op_ctx *ctx, size_t input,
		     const char *result_id, char ret[SFS_DIGEST_SIZE], char **ret_msg)
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
	struct sfs_op *op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->type = &tv_op;
	op->v = v;
	op->priv = reg[id];
	*ret = op;
	return 0;
}

/* --- hooks ------------------------------------------------------------------------- */

void tv_block_init(struct tv_block *b, int n)
{
	atomic_store(&b->left, n);
}

/* Times out (an error, not a hang) when the solver serializes what must run at once. */
int tv_block_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg)
{
	struct tv_block *b = arg;
	(void)v;
	atomic_fetch_sub(&b->left, 1);
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(&b->left) <= 0)
			return 0;
		if (sfs_op_cancelled(ctx))
			return sfs_errf(ret_msg, -ECANCELED, "context canceled");
		tv_sleep_ms(1);
	}
	return sfs_errf(ret_msg, -ETIMEDOUT, "blocking function timed out: calls were serialized");
}

int tv_gate_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg)
{
	struct tv_gate *g = arg;
	(void)v;
	atomic_fetch_add(&g->entered, 1);
	for (int i = 0; i < 20000; i++) {
		if (atomic_load(&g->open))
			return 0;
		if (sfs_op_cancelled(ctx))
			return sfs_errf(ret_msg, -ECANCELED, "context canceled");
		tv_sleep_ms(1);
	}
	return sfs_errf(ret_msg, -ETIMEDOUT, "gate never opened");
}

int tv_fail_hook(struct tvtx *v, struct sfs_op_ctx *ctx, void *arg, char **ret_msg)
{
	(void)v;
	(void)ctx;
	return sfs_errf(ret_msg, -EIO, "%s", (const char *)arg);
}

/* --- the solver -------------------------------------------------------------------- */

void tv_env_open(struct tv_env *e)
{
	struct sfs_solver_opts o;
	char *msg = NULL;
	memset(e, 0, sizeof(*e));
	e->dir = tap_tmpdir();
	sfs_solver_opts_default(&o);
	o.workers = 8; /* blockers and blocking functions hold workers */
	o.resolve = tv_resolve;
	CHECK_EQ_INT(sfs_cache_open(e->dir, &e->cache, &msg), 0);
	CHECK_EQ_INT(sfs_solver_open(e->cache, &o, &e->s, &msg), 0);
	free(msg);
}

void tv_env_close(struct tv_env *e)
{
	e->s = sfs_solver_close(e->s);
	e->cache = sfs_cache_close(e->cache);
}

uint64_t tv_job_new(struct tv_env *e)
{
	uint64_t id = 0;
	CHECK_EQ_INT(sfs_solver_job_new(e->s, 0, 0, &id), 0);
	return id;
}

void tv_job_submit(struct tv_env *e, uint64_t id, const char *spec)
{
	char *msg = NULL;
	int r = sfs_solver_job_submit(e->s, id, 0, spec, strlen(spec), &msg);
	if (r < 0)
		fprintf(stderr, "  submit: %s\n  spec: %s\n", msg ? msg : "?", spec);
	CHECK_EQ_INT(r, 0);
	free(msg);
}

uint64_t tv_start(struct tv_env *e, struct tvtx *const *outs, size_t n)
{
	char *spec = tv_spec(outs, n);
	uint64_t id = tv_job_new(e);
	tv_job_submit(e, id, spec);
	free(spec);
	return id;
}

bool tv_wait(struct tv_env *e, uint64_t id, struct sfs_job_info *info)
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

bool tv_wait_output(struct tv_env *e, uint64_t id, size_t k, char **ret_value)
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

char *tv_build(struct tv_env *e, struct tvtx *target, char **ret_err)
{
	struct sfs_job_info info;
	char *val = NULL;
	uint64_t id = tv_start(e, &target, 1);
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

char *tv_value(struct tv_env *e, const char *result_id)
{
	return tv_value_cas(e->cache->cas, result_id);
}

uint64_t tv_loads(struct tv_env *e)
{
	struct sfs_solver_stats st;
	sfs_solver_get_stats(e->s, &st);
	return st.loads;
}

void tv_break_values(struct tv_env *e, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char hex[SFS_HEX_SIZE];
		sfs_sha256_hex(values[i], strlen(values[i]), hex);
		cas_remove(e->cache->cas, hex);
	}
}
