/*
 * spec.c — the graph spec document (README "The spec"): the JSON, the vertices and
 * their options, the job-level fields, the field getters the op normalisers use
 * (specop.h) and the assembly of the parsed spec.  See spec.h for the decisions
 * it implements.
 *
 * sfs_spec_parse() works in three passes, each linear in the spec, with every
 * jansson value (each vertex's JSON, the op trees) in an arena of the parse
 * (specalloc.c), dropped back to a mark or whole, never freed node by node:
 *   1. validate every vertex (in bytewise key order, so the first error reported
 *      is deterministic), its JSON loaded alone from its bytes in the spec and
 *      dropped after (the document is loaded whole only to report an error: see
 *      "pass 1 streamed" below): the fields every vertex has here, its op's own fields
 *      by its type's normaliser (solver/ops/<op>.c, through the table in op.c),
 *      which builds its normalised op tree; a ref is a placeholder string node,
 *      recorded as a `use`.  The tree is then written (specgraph.c) as two
 *      canonical templates with a hole per ref, the op's and its cache map's
 *      (without selector and session), and dropped back to the arena's mark;
 *   2. (specgraph.c) sort the vertices topologically (Kahn, ties by key) or
 *      report a cycle;
 *   3. (specgraph.c) in that order, resolve each vertex's uses into Inputs() (a file op shares
 *      one input between uses of the same "sha256:<hex>:<N>") and fill the
 *      holes: with each ref's "sha256:<hex>:<N>" (the op bytes, hashed into the
 *      vertex digest) and with its input index (the cache map digest).
 * Keys are found through a strmap, never by scanning, so 100,000 vertices parse
 * in well under a second.
 *
 * A parsed spec is immutable and only its reference count changes (atomically),
 * so any thread may read it without a lock.
 */
#include "spec.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "imageref.h"
#include "numtext.h"
#include "op.h"
#include "specint.h"
#include "strbuf.h"
#include "strmap.h"
#include "strv.h"

#define DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define DEFAULT_MAX_VERTICES ((size_t)100000)
#define DEFAULT_MAX_PATH ((size_t)4096)
#define DEFAULT_MAX_INLINE ((size_t)16 << 20)
#define DEFAULT_MAX_NAME ((size_t)1024)
#define NOUTPUTS_LATER SIZE_MAX
const char *sfs_op_kind_name(enum sfs_op_kind k)
{
	const struct sfs_op_type *t = sfs_op_type_of(k);

	return t ? t->name : "?";
}

/* ---- the normaliser's view (specop.h) ---- */

const struct sfs_spec_ctx *sfs_norm_ctx(const struct sfs_norm *c)
{
	return c->p->ctx;
}

const struct sfs_spec_limits *sfs_norm_limits(const struct sfs_norm *c)
{
	return &c->p->lim;
}

struct sfs_spec_vertex *sfs_norm_vertex(struct sfs_norm *c)
{
	return &c->pv->v;
}

void sfs_norm_share_inputs(struct sfs_norm *c)
{
	c->pv->dedup = true;
}

bool sfs_norm_oom(const struct sfs_norm *c)
{
	return c->p->oom;
}

/* ---- errors ---- */

/* A user-written name made safe to quote in a message: escaped and truncated. */
const char *sfs_norm_esc(char *buf, size_t size, const char *s)
{
	size_t o = 0;
	for (; *s && o + 8 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (((unsigned char)*s & 0xc0) == 0x80) { /* cut inside a UTF-8 sequence: drop its start */
		while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0 && (unsigned char)buf[o - 1] >= 0xc0)
			o--;
	}
	if (*s)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o] = '\0';
	return buf;
}

/* `vertex "KEY": field "FP.FIELD": reason`; fp or field may be "". */
void sfs_norm_elem_path(char *fp, size_t size, const char *field, size_t i, const char *sub)
{
	char num[SFS_NUM_SIZE];
	size_t flen = strlen(field), slen = sub ? strlen(sub) : 0;
	size_t nlen = sfs_u64_text(num, i, 10);
	char *p = fp;

	if (flen + nlen + 2 + (sub ? slen + 1 : 0) >= size) { /* rare: cut as snprintf does */
		if (sub)
			snprintf(fp, size, "%s[%zu].%s", field, i, sub);
		else
			snprintf(fp, size, "%s[%zu]", field, i);
		return;
	}
	memcpy(p, field, flen);
	p += flen;
	*p++ = '[';
	memcpy(p, num, nlen);
	p += nlen;
	*p++ = ']';
	if (sub) {
		*p++ = '.';
		memcpy(p, sub, slen);
		p += slen;
	}
	*p = '\0';
}

int sfs_norm_errc(struct sfs_norm *c, int err, const char *fp, const char *field, const char *fmt,
		  ...)
{
	char *why = NULL;
	const char *dot = *fp && *field ? "." : "";
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0)
		why = NULL;
	va_end(ap);
	if (!why)
		return -ENOMEM;
	if (c->key && !*fp && !*field)
		sfs_errf(c->p->ret_msg, err, "vertex \"%s\": %s", c->key, why);
	else if (c->key)
		sfs_errf(c->p->ret_msg, err, "vertex \"%s\": field \"%s%s%s\": %s", c->key, fp, dot,
			 field, why);
	else
		sfs_errf(c->p->ret_msg, err, "field \"%s%s%s\": %s", fp, dot, field, why);
	free(why);
	return -abs(err);
}

int sfs_norm_unknown_fields(struct sfs_norm *c, const char *fp, json_t *obj, const char *const *a,
			    const char *const *b)
{
	const char *k;
	json_t *val;
	char e[128];

	json_object_foreach(obj, k, val)
	{
		bool ok = false;
		for (const char *const *x = a; x && *x && !ok; x++)
			ok = strcmp(*x, k) == 0;
		for (const char *const *x = b; x && *x && !ok; x++)
			ok = strcmp(*x, k) == 0;
		if (!ok)
			return sfs_norm_err(c, fp, sfs_norm_esc(e, sizeof(e), k), "unknown field");
	}
	return 0;
}

/* ---- NUL in strings ----
 * The spec is loaded with JSON_ALLOW_NUL so that mkfile data may hold any bytes.
 * Every other string is used as a C string, where a NUL would cut it short
 * ("file\u0000x" would read as "file"): those are refused first, by path. */

/* "actions[N].mkfile.data" of a vertex: the one field whose bytes are data. */
static bool is_data_field(const char *fp)
{
	size_t nd;

	if (strncmp(fp, "actions[", 8) != 0)
		return false;
	nd = strspn(fp + 8, "0123456789");
	return nd > 0 && strcmp(fp + 8 + nd, "].mkfile.data") == 0;
}

static void fp_cut(struct strbuf *fp, size_t len)
{
	fp->len = len;
	if (fp->buf)
		fp->buf[len] = '\0';
}

/* Walks j (whose field path is fp) for a string holding NUL. */
static int no_nul_at(struct sfs_norm *c, json_t *j, struct strbuf *fp)
{
	size_t len = fp->len, i;
	const char *k;
	json_t *e;
	char ek[64];
	int r = 0;

	if (json_is_string(j)) {
		if (!memchr(json_string_value(j), '\0', json_string_length(j)) ||
		    (c->key && is_data_field(fp->buf ? fp->buf : "")))
			return 0;
		return fp->oom
			   ? -ENOMEM
			   : sfs_norm_err(c, "", fp->buf ? fp->buf : "", "must not contain NUL");
	}
	json_array_foreach(j, i, e)
	{
		strbuf_addf(fp, "[%zu]", i);
		r = no_nul_at(c, e, fp);
		fp_cut(fp, len);
		if (r < 0)
			return r;
	}
	json_object_foreach(j, k, e)
	{
		strbuf_addf(fp, "%s%s", len ? "." : "", sfs_norm_esc(ek, sizeof(ek), k));
		r = no_nul_at(c, e, fp);
		fp_cut(fp, len);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Any string holding NUL in j: the quick look, before paths are made. */
static bool has_nul(json_t *j)
{
	const char *k;
	json_t *e;
	size_t i;

	if (json_is_string(j))
		return memchr(json_string_value(j), '\0', json_string_length(j)) != NULL;
	json_array_foreach(j, i, e) if (has_nul(e)) return true;
	json_object_foreach(j, k, e) if (has_nul(e)) return true;
	return false;
}

/* Every member of obj but `skip` (may be NULL) is free of NUL. */
static int no_nul(struct sfs_norm *c, json_t *obj, const char *skip)
{
	struct strbuf fp = STRBUF_INIT;
	const char *k;
	json_t *e;
	int r = 0;

	json_object_foreach(obj, k, e)
	{
		if ((skip && strcmp(k, skip) == 0) || !has_nul(e))
			continue;
		char ek[64];
		strbuf_addstr(&fp, sfs_norm_esc(ek, sizeof(ek), k));
		r = no_nul_at(c, e, &fp);
		strbuf_reset(&fp);
		if (r < 0)
			break;
	}
	strbuf_release(&fp);
	return r;
}

/* ---- the normalised tree (allocation failures are sticky in p->oom) ---- */

static void jp_check(struct parse *p, int r)
{
	if (r < 0)
		p->oom = true;
}

/* Sets v (a new reference, stolen; NULL means out of memory) under k. */
static void jp_set(struct parse *p, json_t *o, const char *k, json_t *v)
{
	jp_check(p, v ? json_object_set_new(o, k, v) : -1);
}

/* Sets child (stolen) under k, or appends it when k is NULL. */
static void jp_put(struct parse *p, json_t *o, const char *k, json_t *child)
{
	if (!child)
		p->oom = true;
	else if (k)
		jp_check(p, json_object_set_new(o, k, child));
	else
		jp_check(p, json_array_append_new(o, child));
}

static bool jp_ok(struct parse *p, json_t *o)
{
	if (!o)
		p->oom = true;
	return o != NULL;
}

char **sfs_norm_strv(const json_t *arr)
{
	size_t n = json_array_size(arr), i;
	char **v = calloc(n + 1, sizeof(*v));
	json_t *s;

	json_array_foreach(arr, i, s) if (v && !(v[i] = strdup(json_string_value(s)))) v =
	    strv_free_argv(v);
	return v;
}

void sfs_norm_check(struct sfs_norm *c, int r)
{
	jp_check(c->p, r);
}

void sfs_norm_set(struct sfs_norm *c, json_t *o, const char *k, json_t *v)
{
	jp_set(c->p, o, k, v);
}

void sfs_norm_put(struct sfs_norm *c, json_t *o, const char *k, json_t *child)
{
	jp_put(c->p, o, k, child);
}

bool sfs_norm_ok(struct sfs_norm *c, json_t *o)
{
	return jp_ok(c->p, o);
}

/* ---- small validators ---- */

static bool valid_key(const char *s, size_t len)
{
	if (len == 0 || len > SFS_SPEC_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || ch == '_';
		if (!alnum && (i == 0 || (ch != '.' && ch != '-')))
			return false;
	}
	return true;
}

/* Splits "key" / "key:N"; 0 or -EINVAL for bad syntax. */
int sfs_spec_split_ref(const char *s, size_t *ret_keylen, int *ret_output)
{
	const char *colon = strchr(s, ':');
	size_t klen = colon ? (size_t)(colon - s) : strlen(s);
	long out = 0;

	if (!valid_key(s, klen))
		return -EINVAL;
	if (colon) {
		const char *d = colon + 1;
		size_t nd = strlen(d);
		/* canonical decimal only: "a:01" is not another name of "a:1" */
		if (nd == 0 || nd > 9 || strspn(d, "0123456789") != nd || (nd > 1 && d[0] == '0'))
			return -EINVAL;
		out = strtol(d, NULL, 10);
	}
	*ret_keylen = klen;
	*ret_output = (int)out;
	return 0;
}

/* An absolute host path; *ret gets it cleaned and malloc'd. */
int sfs_norm_host_path(struct sfs_norm *c, const char *fp, const char *field, json_t *j, char **ret)
{
	const struct sfs_spec_ctx *ctx = c->p->ctx;
	bool inside = false;
	char *clean;
	int r;

	if (!json_is_string(j))
		return sfs_norm_err(c, fp, field, "must be a string (an absolute host path)");
	const char *s = json_string_value(j);
	if (s[0] != '/')
		return sfs_norm_err(c, fp, field, "must be an absolute host path");
	if (json_string_length(j) > c->p->lim.max_path)
		return sfs_norm_err(c, fp, field,
				    "is longer than %zu bytes (the path_max mount option)",
				    c->p->lim.max_path);
	clean = sfs_spec_clean_host_path(s);
	if (!clean)
		return -ENOMEM;
	if (ctx->mountpoint && ctx->mountpoint[0] == '/') {
		r = sfs_spec_host_path_inside(clean, ctx->mountpoint, &inside);
		if (r < 0 || inside) {
			free(clean);
			return r < 0 ? r
				     : sfs_norm_err(c, fp, field,
						    "path is inside the solverfs mount");
		}
	}
	*ret = clean;
	return 0;
}

/* Strict standard base64 (padded, no whitespace).  Returns the decoded length or -1. */

/* ---- field getters: j is the field's value or NULL when absent ---- */

int sfs_norm_str(struct sfs_norm *c, json_t *obj, const char *fp, const char *field, bool required,
		 const char *def, const char **ret)
{
	json_t *j = json_object_get(obj, field);

	if (!j) {
		if (required)
			return sfs_norm_err(c, fp, field, "is required");
		*ret = def;
		return 0;
	}
	if (!json_is_string(j))
		return sfs_norm_err(c, fp, field, "must be a string");
	if (json_string_length(j) > c->p->lim.max_path)
		return sfs_norm_err(c, fp, field,
				    "is longer than %zu bytes (the path_max mount option)",
				    c->p->lim.max_path);
	*ret = json_string_value(j);
	return 0;
}

int sfs_norm_bool(struct sfs_norm *c, json_t *obj, const char *fp, const char *field, bool *ret)
{
	json_t *j = json_object_get(obj, field);

	if (j && !json_is_boolean(j))
		return sfs_norm_err(c, fp, field, "must be true or false");
	*ret = j && json_is_true(j);
	return 0;
}

/* A path inside a tree; "" (the root) only when allow_root. */
int sfs_norm_path(struct sfs_norm *c, json_t *obj, const char *fp, const char *field, bool required,
		  bool allow_root, const char *def, const char **ret)
{
	const char *s, *why;
	int r = sfs_norm_str(c, obj, fp, field, required, def, &s);

	if (r < 0)
		return r;
	why = sfs_spec_tree_path_problem(s, strlen(s), allow_root);
	if (why)
		return sfs_norm_err(c, fp, field, "%s", why);
	*ret = s;
	return 0;
}

/* A list of fnmatch patterns, as a new array. */
int sfs_norm_globs(struct sfs_norm *c, json_t *obj, const char *fp, const char *field, json_t **ret)
{
	json_t *j = json_object_get(obj, field), *out, *g;
	size_t i;

	if (j && !json_is_array(j))
		return sfs_norm_err(c, fp, field, "must be an array of glob patterns");
	out = json_array();
	if (!out)
		return -ENOMEM;
	json_array_foreach(j, i, g)
	{
		const char *s = json_string_value(g);
		if (!s || !*s || s[0] == '/' || json_string_length(g) > c->p->lim.max_path) {
			json_decref(out);
			return sfs_norm_err(
			    c, fp, field, "element %zu: must be a non-empty relative glob pattern",
			    i);
		}
		if (json_array_append_new(out, json_stringn(s, json_string_length(g))) < 0) {
			json_decref(out);
			return -ENOMEM;
		}
	}
	*ret = out;
	return 0;
}

/* A mode: a string of octal digits <= 07777, normalised to 4 digits. */
int sfs_norm_mode(struct sfs_norm *c, json_t *obj, const char *fp, unsigned def, json_t **ret)
{
	json_t *j = json_object_get(obj, "mode");
	unsigned long m = def;
	char buf[16];

	if (j) {
		const char *s = json_string_value(j);
		size_t l = s ? strlen(s) : 0;
		if (!s || l == 0 || l > 8 || strspn(s, "01234567") != l)
			return sfs_norm_err(c, fp, "mode",
					    "must be a string of octal digits like \"0755\"");
		m = strtoul(s, NULL, 8);
		if (m > 07777)
			return sfs_norm_err(c, fp, "mode", "must be at most \"7777\"");
	}
	for (int d = 3; d >= 0; d--, m >>= 3) /* "%04lo" of m <= 07777 */
		buf[d] = (char)('0' + (m & 7));
	buf[4] = '\0';
	*ret = json_string(buf);
	return *ret ? 0 : -ENOMEM;
}

/* ---- refs ---- */

static void uses_free(struct pv *pv)
{
	for (size_t k = 0; k < pv->nuses; k++)
		free(pv->uses[k].path);
	free(pv->uses);
	pv->uses = NULL;
	pv->nuses = pv->cap = 0;
}

/* The array grows 1, 2, 4, ...: most vertices have one or two inputs, and
 * sfs_grow's first four uses of 72 bytes were a tenth of a parse's peak. */
static int add_use(struct pv *pv, struct use u)
{
	if (sfs_grow_from((void **)&pv->uses, &pv->cap, pv->nuses + 1, sizeof(*pv->uses), 1) < 0)
		return -ENOMEM;
	pv->uses[pv->nuses++] = u;
	return 0;
}

/*
 * A reference "key" / "key:N" in field fp.field: checks it, records the use and
 * returns its placeholder (filled in pass 3).  path: the selector used
 * through (NULL or "" for the whole input); input: the slot for its index.
 */
int sfs_norm_ref(struct sfs_norm *c, json_t *j, const char *fp, const char *field, const char *top,
		 const char *path, bool content_func, size_t *input, json_t **ret)
{
	struct parse *p = c->p;
	char key[SFS_SPEC_KEY_MAX + 1];
	size_t klen;
	int out, r;
	void *idx;

	if (!json_is_string(j) || sfs_spec_split_ref(json_string_value(j), &klen, &out) < 0)
		return sfs_norm_err(c, fp, field, "must be a reference \"key\" or \"key:N\"");
	memcpy(key, json_string_value(j), klen);
	key[klen] = '\0';
	idx = strmap_get(&p->index, key);
	if (!idx)
		return sfs_norm_err(c, fp, field, "no vertex \"%s\"", key);
	size_t vi = (size_t)(uintptr_t)idx - 1;
	/* not known yet: checked once every vertex is parsed (parse_spans) */
	if (p->noutputs[vi] != NOUTPUTS_LATER && (size_t)out >= p->noutputs[vi])
		return sfs_norm_err(c, fp, field, "vertex \"%s\" has %zu output(s), no output %d",
				    key, p->noutputs[vi], out);
	json_t *ph = json_string("");
	if (!jp_ok(p, ph))
		return -ENOMEM;
	struct use u = {ph, 0, 0, vi, out, top, NULL, content_func, input};
	if (path && *path && !(u.path = strdup(path)))
		r = -ENOMEM;
	else
		r = add_use(c->pv, u);
	if (r < 0) {
		free(u.path);
		json_decref(ph);
		return r;
	}
	*ret = ph;
	return 0;
}

/* ---- vertices ---- */

/*
 * A cache source: a layout directory (an absolute host path, or oci:PATH) or a
 * registry (docker://..., cache/imageref.h), kept as written; oci:PATH
 * becomes PATH.
 */
static int norm_source(struct sfs_norm *c, const char *fp, json_t *e, char **ret)
{
	const char *s = json_string_value(e);
	struct imageref ref = {0};
	char *msg = NULL;
	int r;

	if (!s || !imageref_is_ref(s))
		return sfs_norm_host_path(c, fp, "", e, ret);
	r = imageref_parse(s, &ref, &msg);
	if (r == -EINVAL) {
		r = sfs_norm_err(c, fp, "", "%s", msg);
	} else if (r == 0 && ref.kind == IMAGEREF_DOCKER) {
		r = (*ret = strdup(s)) ? 0 : -ENOMEM;
	} else if (r == 0 && ref.tag[0] && strcmp(ref.tag, "latest") != 0) {
		r = sfs_norm_err(c, fp, "", "oci: a layout's tag other than latest is not read");
	} else if (r == 0) {
		json_t *p = json_string(ref.path);
		r = p ? sfs_norm_host_path(c, fp, "", p, ret) : -ENOMEM;
		json_decref(p);
	}
	free(msg);
	imageref_release(&ref);
	return r;
}

static int strv_host_paths(struct sfs_norm *c, json_t *j, const char *field, char ***ret)
{
	char **v, fp[48];
	json_t *e;
	size_t i;

	if (!json_is_array(j))
		return sfs_norm_err(c, "", field, "must be an array of absolute host paths");
	if (json_array_size(j) == 0) {
		*ret = NULL;
		return 0;
	}
	v = calloc(json_array_size(j) + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	json_array_foreach(j, i, e)
	{
		sfs_norm_elem_path(fp, sizeof(fp), field, i, NULL);
		int r = norm_source(c, fp, e, &v[i]);
		if (r < 0) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return r;
		}
	}
	*ret = v;
	return 0;
}

static int vertex_options(struct sfs_norm *c, json_t *raw)
{
	struct sfs_spec_vertex *v = &c->pv->v;
	json_t *d = json_object_get(raw, "description"), *e = json_object_get(raw, "export_cache");
	json_t *cf = json_object_get(raw, "cache_from"), *val;
	const char *name, *k;
	char ek[64];
	int r = sfs_norm_str(c, raw, "", "name", false, c->key, &name);

	if (r == 0 && strlen(name) > c->p->lim.max_name)
		return sfs_norm_err(c, "", "name",
				    "is longer than %zu bytes (the name_max mount option)",
				    c->p->lim.max_name);
	if (r == 0)
		r = sfs_norm_bool(c, raw, "", "ignore_cache", &v->ignore_cache);
	if (r < 0)
		return r;
	if (e && !json_is_boolean(e))
		return sfs_norm_err(c, "", "export_cache", "must be true or false");
	v->export_cache = e ? json_is_true(e) : -1;
	if (d && !json_is_object(d))
		return sfs_norm_err(c, "", "description", "must be an object of strings");
	json_object_foreach(d, k, val) if (!json_is_string(val)) return sfs_norm_err(
	    c, "description", sfs_norm_esc(ek, sizeof(ek), k), "must be a string");
	if (d && !(v->description = sfs_jarena_copy_out(d)))
		return -ENOMEM;
	if (strcmp(name, v->key) == 0) /* the default: one string for both */
		v->name = v->key;
	else if (!(v->name = strdup(name)))
		return -ENOMEM;
	return cf ? strv_host_paths(c, cf, "cache_from", &v->cache_from) : 0;
}

static int op_kind(const char *s, enum sfs_op_kind *ret)
{
	for (int k = 0; s && k < SFS_OP_NKINDS; k++)
		if (strcmp(s, sfs_op_type_of((enum sfs_op_kind)k)->name) == 0) {
			*ret = (enum sfs_op_kind)k;
			return 0;
		}
	return -EINVAL;
}

/* "unknown op (local, file, exec, merge or build)": the names in the table. */
static int unknown_op(struct sfs_norm *c)
{
	struct strbuf sb = STRBUF_INIT;

	for (int k = 0; k < SFS_OP_NKINDS; k++)
		strbuf_addf(&sb, "%s%s",
			    k == 0		    ? ""
			    : k + 1 < SFS_OP_NKINDS ? ", "
						    : " or ",
			    sfs_op_type_of((enum sfs_op_kind)k)->name);
	int r = sb.oom ? -ENOMEM : sfs_norm_err(c, "", "op", "unknown op (%s)", sb.buf);
	strbuf_release(&sb);
	return r;
}

static const char *const vertex_fields[] = {
    "op", "name", "description", "ignore_cache", "export_cache", "cache_from", NULL};

/* Pass 1 for vertex i. */
static int parse_vertex(struct parse *p, size_t i)
{
	struct pv *pv = &p->pv[i];
	struct sfs_norm c = {p, pv, p->keys[i]};
	json_t *raw = p->raw[i], *opj;
	struct strbuf sum = STRBUF_INIT;
	const struct sfs_op_type *type;
	enum sfs_op_kind kind;
	int r;

	if (!json_is_object(raw))
		return sfs_norm_err(&c, "", "", "a vertex must be an object");
	r = no_nul(&c, raw, NULL);
	if (r < 0)
		return r;
	opj = json_object_get(raw, "op");
	if (!opj)
		return sfs_norm_err(&c, "", "op", "is required");
	if (op_kind(json_string_value(opj), &kind) < 0)
		return unknown_op(&c);
	type = sfs_op_type_of(kind);
	pv->v.kind = kind;
	pv->v.noutputs = 1;
	if (!(pv->v.key = strdup(p->keys[i])))
		return -ENOMEM;
	r = sfs_norm_unknown_fields(&c, "", raw, vertex_fields, type->fields);
	if (r == 0)
		r = vertex_options(&c, raw);
	if (r < 0)
		return r;
	struct sfs_jarena_mark mark = sfs_jarena_mark(&p->arena);
	json_t *op = json_object();
	if (!jp_ok(p, op))
		return -ENOMEM;
	pv->v.op = op;
	jp_set(p, op, "op", json_string(type->name));
	r = type->normalise(&c, raw, op, &sum);
	if (r == 0 && (sum.oom || p->oom))
		r = -ENOMEM;
	if (r == 0)
		r = sfs_spec_write_templates(p, pv);
	/* the tree is in the templates now: dropped, never decref'd */
	pv->v.op = NULL;
	sfs_jarena_release(&p->arena, mark);
	pv->v.summary = r == 0 ? strbuf_detach(&sum, NULL) : NULL;
	strbuf_release(&sum);
	return r;
}

/* How many outputs each vertex has, before any is validated: refs are checked
 * against it while the vertices are walked in key order. */
static size_t count_outputs(json_t *raw)
{
	enum sfs_op_kind kind;

	if (op_kind(json_string_value(json_object_get(raw, "op")), &kind) < 0)
		return 0;
	const struct sfs_op_type *t = sfs_op_type_of(kind);
	return t->noutputs ? t->noutputs(raw) : 1;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Collects, sorts and indexes the keys; counts outputs. */
static int index_vertices(struct parse *p, json_t *verts)
{
	const char *k;
	json_t *val;
	size_t i = 0;
	char e[200];
	struct sfs_norm c = {p, NULL, NULL};

	if (!json_is_object(verts))
		return sfs_norm_err(&c, "", "vertices", "must be an object of vertices");
	p->n = json_object_size(verts);
	if (p->n > p->lim.max_vertices)
		return sfs_errf(p->ret_msg, E2BIG, "field \"vertices\": more than %zu vertices",
				p->lim.max_vertices);
	p->keys = calloc(p->n + 1, sizeof(*p->keys));
	p->raw = calloc(p->n + 1, sizeof(*p->raw));
	p->noutputs = calloc(p->n + 1, sizeof(*p->noutputs));
	p->pv = calloc(p->n + 1, sizeof(*p->pv));
	if (!p->keys || !p->raw || !p->noutputs || !p->pv)
		return -ENOMEM;
	json_object_foreach(verts, k, val)
	{
		if (!valid_key(k, strlen(k)))
			return sfs_errf(p->ret_msg, EINVAL,
					"vertex \"%s\": invalid name: must match "
					"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
					sfs_norm_esc(e, sizeof(e), k));
		p->keys[i++] = k;
	}
	qsort(p->keys, p->n, sizeof(*p->keys), cmp_key);
	for (i = 0; i < p->n; i++) {
		p->raw[i] = json_object_get(verts, p->keys[i]);
		p->noutputs[i] = count_outputs(p->raw[i]);
		if (strmap_put(&p->index, p->keys[i], (void *)(uintptr_t)(i + 1), NULL) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- job-level fields ---- */

static int parse_outputs(struct parse *p, json_t *outs, struct sfs_spec *s)
{
	struct sfs_norm c = {p, NULL, NULL};
	char key[SFS_SPEC_KEY_MAX + 1], fp[32];
	json_t *o;
	size_t i, klen;
	int out;

	if (!outs)
		return sfs_norm_err(&c, "", "outputs", "is required");
	if (!json_is_array(outs) || json_array_size(outs) == 0)
		return sfs_norm_err(&c, "", "outputs", "must be a non-empty array of references");
	s->noutputs = json_array_size(outs);
	s->outputs = calloc(s->noutputs, sizeof(*s->outputs));
	s->output_refs = calloc(s->noutputs + 1, sizeof(*s->output_refs));
	if (!s->outputs || !s->output_refs)
		return -ENOMEM;
	json_array_foreach(outs, i, o)
	{
		sfs_norm_elem_path(fp, sizeof(fp), "outputs", i, NULL);
		if (!json_is_string(o) || sfs_spec_split_ref(json_string_value(o), &klen, &out) < 0)
			return sfs_norm_err(&c, fp, "", "must be a reference \"key\" or \"key:N\"");
		memcpy(key, json_string_value(o), klen);
		key[klen] = '\0';
		void *idx = strmap_get(&p->index, key);
		if (!idx)
			return sfs_norm_err(&c, fp, "", "no vertex \"%s\"", key);
		size_t vi = (size_t)(uintptr_t)idx - 1;
		if ((size_t)out >= p->noutputs[vi])
			return sfs_norm_err(&c, fp, "",
					    "vertex \"%s\" has %zu output(s), no output %d", key,
					    p->noutputs[vi], out);
		s->outputs[i] = (struct sfs_ref){vi, out};
		if (out ? asprintf(&s->output_refs[i], "%s:%d", key, out) < 0
			: !(s->output_refs[i] = strdup(key)))
			return -ENOMEM;
	}
	return 0;
}

/* export.to: a registry reference (docker://HOST/REPO:TAG), image form only. */
static int export_to(struct sfs_norm *c, const char *to, struct sfs_spec *s)
{
	struct imageref ref = {0};
	char *msg = NULL;
	int r = imageref_parse(to, &ref, &msg);

	if (r == -EINVAL)
		r = sfs_norm_err(c, "export", "to", "%s", msg);
	else if (r == 0 && ref.kind != IMAGEREF_DOCKER)
		r = sfs_norm_err(c, "export", "to", "must be a registry reference docker://HOST/REPO:TAG");
	else if (r == 0 && s->export_form != SFS_FORM_IMAGE)
		r = sfs_norm_err(c, "export", "to",
				 "a registry takes the \"image\" form only, not \"manifest-list\"");
	else if (r == 0 && !(s->export_to = strdup(to)))
		r = -ENOMEM;
	free(msg);
	imageref_release(&ref);
	return r;
}

static int parse_export(struct parse *p, json_t *e, struct sfs_spec *s)
{
	static const char *const f[] = {"mode", "form", "to", NULL};
	static const char *const modes[] = {"min", "max", "remote-only"};
	struct sfs_norm c = {p, NULL, NULL};
	const char *mode = "min", *form = "image", *to = NULL;
	size_t k;
	int r;

	s->export_mode = SFS_EXPORT_NONE;
	s->export_form = SFS_FORM_IMAGE;
	if (!e)
		return 0;
	if (!json_is_object(e))
		return sfs_norm_err(&c, "", "export", "must be an object {\"mode\", \"form\"}");
	r = sfs_norm_unknown_fields(&c, "export", e, f, NULL);
	if (r == 0)
		r = sfs_norm_str(&c, e, "export", "mode", false, "min", &mode);
	if (r == 0)
		r = sfs_norm_str(&c, e, "export", "form", false, "image", &form);
	if (r == 0)
		r = sfs_norm_str(&c, e, "export", "to", false, NULL, &to);
	if (r < 0)
		return r;
	for (k = 0; k < ARRAY_SIZE(modes) && strcmp(mode, modes[k]); k++)
		;
	if (k == ARRAY_SIZE(modes))
		return sfs_norm_err(&c, "export", "mode",
				    "must be \"min\", \"max\" or \"remote-only\"");
	s->export_mode = (enum sfs_export_mode)(SFS_EXPORT_MIN + k);
	if (strcmp(form, "image") && strcmp(form, "manifest-list"))
		return sfs_norm_err(&c, "export", "form", "must be \"image\" or \"manifest-list\"");
	s->export_form = strcmp(form, "image") ? SFS_FORM_MANIFEST_LIST : SFS_FORM_IMAGE;
	return to ? export_to(&c, to, s) : 0;
}

static const char *const job_fields[] = {"vertices",   "outputs",      "export",
					 "cache_from", "ignore_cache", NULL};

/* The job-level fields the vertices come before. */
static int parse_job_head(struct parse *p, json_t *root)
{
	struct sfs_norm c = {p, NULL, NULL};
	int r = sfs_norm_unknown_fields(&c, "", root, job_fields, NULL);

	if (r == 0)
		r = no_nul(&c, root, "vertices");
	if (r == 0 && !json_object_get(root, "vertices"))
		r = sfs_norm_err(&c, "", "vertices", "is required");
	return r;
}

/* The job-level fields after the vertices. */
static int parse_job_tail(struct parse *p, json_t *root, struct sfs_spec *s)
{
	struct sfs_norm c = {p, NULL, NULL};
	json_t *cf = json_object_get(root, "cache_from");
	int r = parse_outputs(p, json_object_get(root, "outputs"), s);

	if (r == 0)
		r = parse_export(p, json_object_get(root, "export"), s);
	if (r == 0)
		r = sfs_norm_bool(&c, root, "", "ignore_cache", &s->ignore_cache);
	if (r == 0 && cf)
		r = strv_host_paths(&c, cf, "cache_from", &s->cache_from);
	return r;
}

/* Pass 1 on the document loaded whole. */
static int parse_job(struct parse *p, json_t *root, struct sfs_spec *s)
{
	int r = parse_job_head(p, root);

	if (r == 0)
		r = index_vertices(p, json_object_get(root, "vertices"));
	for (size_t i = 0; r == 0 && i < p->n; i++)
		r = parse_vertex(p, i);
	return r == 0 ? parse_job_tail(p, root, s) : r;
}

/* ---- pass 1 streamed: one vertex's JSON at a time ----
 * The document whole was the parse's peak (~2 KB a vertex of jansson's values
 * for some 90 bytes of JSON).  Streamed, the top level is walked by its byte
 * spans (specscan.c): its other fields are loaded one by one into a root of
 * their own, each vertex is loaded alone when its turn comes (bytewise key
 * order, as when whole), checked and normalised, and dropped back to the
 * arena's mark before the next.  A ref to a vertex not parsed yet is checked
 * against its outputs once all are.
 *
 * The streamed parse only ever succeeds: at the first thing it would reject
 * (a scan that is not plain, jansson refusing a span, a vertex or field that
 * is wrong, too many vertices) it gives up with WHOLE, and the spec is parsed
 * again loaded whole, which finds the same first error with the same message
 * as always (jansson's line and column of the document, duplicate keys,
 * trailing bytes, the order of the checks).  When it succeeds, pass 1 did
 * what it does on the whole document: the same JSON values, vertex by vertex
 * in the same order, so the rest of the parse is the same too. */

#define WHOLE 1
#define TOO_MANY 2 /* more vertices than the limit, and the JSON is valid */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* The value at buf[at, at + len) loaded alone; NULL: *ret_r is WHOLE or -ENOMEM. */
static json_t *load_span(const char *buf, size_t at, size_t len, int *ret_r)
{
	json_error_t jerr;
	json_t *j = json_loadb(buf + at, len, LOAD_FLAGS | JSON_DECODE_ANY, &jerr);

	if (!j)
		*ret_r = json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : WHOLE;
	return j;
}

/* The top level, its fields loaded but "vertices" (an empty object stands in
 * for it; *ret_verts is its span). */
static int load_top(const char *buf, size_t len, json_t **ret_root, struct sfs_jmember *ret_verts)
{
	json_t *root = json_object(), *v;
	struct sfs_jobj o;
	struct sfs_jmember m;
	bool have = false;
	char key[32];
	int r;

	if (!root)
		return -ENOMEM;
	if (sfs_jobj_open(&o, buf, len, 0, 1) < 0)
		return WHOLE;
	while ((r = sfs_jobj_next(&o, &m)) == 1) {
		if (m.klen >= sizeof(key)) /* an unknown field */
			return WHOLE;
		memcpy(key, m.key, m.klen);
		key[m.klen] = '\0';
		if (json_object_get(root, key)) /* a duplicate key */
			return WHOLE;
		if (strcmp(key, "vertices") == 0) {
			*ret_verts = m;
			have = true;
			v = json_object();
		} else if (!(v = load_span(buf, m.at, m.len, &r))) {
			return r;
		}
		if (json_object_set_new(root, key, v) < 0)
			return -ENOMEM;
	}
	if (r < 0 || !sfs_jscan_rest_blank(&o) || !have)
		return WHOLE;
	*ret_root = root;
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	return strcmp(((const struct span *)a)->key, ((const struct span *)b)->key);
}

/* The n members of "vertices" (keys of `bytes` in all) as spans, sorted by key;
 * WHOLE for a duplicate key. */
static int collect_spans(struct parse *p, const char *buf, size_t len,
			 const struct sfs_jmember *verts, size_t n, size_t bytes)
{
	struct sfs_jobj o;
	struct sfs_jmember m;
	char *kb;
	size_t i;

	p->spans = malloc((n + 1) * sizeof(*p->spans));
	p->key_bytes = kb = malloc(bytes + 1);
	if (!p->spans || !kb)
		return -ENOMEM;
	(void)sfs_jobj_open(&o, buf, len, verts->at, 2);
	for (i = 0; i < n && sfs_jobj_next(&o, &m) == 1; i++) {
		memcpy(kb, m.key, m.klen);
		kb[m.klen] = '\0';
		p->spans[i] = (struct span){kb, m.at, m.len};
		kb += m.klen + 1;
	}
	qsort(p->spans, n, sizeof(*p->spans), cmp_span);
	for (i = 1; i < n; i++)
		if (strcmp(p->spans[i - 1].key, p->spans[i].key) == 0)
			return WHOLE;
	return 0;
}

/* More vertices than the limit: rejected as when whole (that check comes before
 * the keys' and the vertices'), once the rest is known to be valid JSON, each
 * vertex's JSON loaded and dropped at once (TOO_MANY); else WHOLE. */
static int too_many(struct parse *p, const char *buf)
{
	for (size_t i = 0; i < p->n; i++) {
		struct sfs_jarena_mark mark = sfs_jarena_mark(&p->arena);
		int r = 0;
		json_t *raw = load_span(buf, p->spans[i].at, p->spans[i].len, &r);

		sfs_jarena_release(&p->arena, mark);
		if (!raw)
			return r;
	}
	return TOO_MANY;
}

/* index_vertices on the spans of the members of "vertices". */
static int index_spans(struct parse *p, const char *buf, size_t len, const struct sfs_jmember *verts)
{
	struct sfs_jobj o;
	struct sfs_jmember m;
	size_t n = 0, bytes = 0, i;
	bool bad_key = false;
	int r;

	if (sfs_jobj_open(&o, buf, len, verts->at, 2) < 0)
		return WHOLE;
	while ((r = sfs_jobj_next(&o, &m)) == 1) {
		bad_key = bad_key || !valid_key(m.key, m.klen);
		n++;
		bytes += m.klen + 1;
	}
	if (r < 0)
		return WHOLE;
	p->n = n;
	r = collect_spans(p, buf, len, verts, n, bytes);
	if (r == 0 && n > p->lim.max_vertices)
		return too_many(p, buf);
	if (r != 0 || bad_key)
		return r != 0 ? r : WHOLE;
	p->keys = calloc(n + 1, sizeof(*p->keys));
	p->raw = calloc(n + 1, sizeof(*p->raw));
	p->noutputs = malloc((n + 1) * sizeof(*p->noutputs));
	p->pv = calloc(n + 1, sizeof(*p->pv));
	if (!p->keys || !p->raw || !p->noutputs || !p->pv)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		p->keys[i] = p->spans[i].key;
		p->noutputs[i] = NOUTPUTS_LATER;
		if (strmap_put(&p->index, p->keys[i], (void *)(uintptr_t)(i + 1), NULL) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Pass 1 for every vertex, each loaded from its span and dropped after. */
static int parse_spans(struct parse *p, const char *buf)
{
	for (size_t i = 0; i < p->n; i++) {
		struct sfs_jarena_mark mark = sfs_jarena_mark(&p->arena);
		int r = 0;
		json_t *raw = load_span(buf, p->spans[i].at, p->spans[i].len, &r);

		if (raw) {
			p->raw[i] = raw;
			p->noutputs[i] = count_outputs(raw);
			r = parse_vertex(p, i);
			p->raw[i] = NULL;
		}
		sfs_jarena_release(&p->arena, mark);
		if (r != 0)
			return r;
	}
	for (size_t i = 0; i < p->n; i++)
		for (size_t k = 0; k < p->pv[i].nuses; k++) {
			const struct use *u = &p->pv[i].uses[k];
			if ((size_t)u->output >= p->noutputs[u->vertex])
				return WHOLE;
		}
	return 0;
}

/* Pass 1 streamed: 0, -ENOMEM, TOO_MANY, or WHOLE (any other error). */
static int parse_streamed(struct parse *p, const char *buf, size_t len, struct sfs_spec *s)
{
	struct sfs_jmember verts = {0};
	json_t *root = NULL;
	int r = load_top(buf, len, &root, &verts);

	if (r == 0)
		r = parse_job_head(p, root);
	if (r == 0)
		r = index_spans(p, buf, len, &verts);
	if (r == 0)
		r = parse_spans(p, buf);
	if (r == 0)
		r = parse_job_tail(p, root, s);
	return r < 0 && r != -ENOMEM ? WHOLE : r;
}

/* ---- assembly ---- */

static void vertex_release(struct sfs_spec_vertex *v)
{
	if (v->name != v->key)
		free(v->name);
	free(v->key);
	json_decref(v->op);
	free(v->op_bytes);
	for (size_t i = 0; v->inputs && i < v->ninputs; i++)
		if (v->inputs[i].selector_len) /* else the shared "" (specgraph.c) */
			free(v->inputs[i].selector);
	free(v->inputs);
	strv_free_argv(v->cache_from);
	json_decref(v->description);
	free(v->summary);
	if (v->params) {
		const struct sfs_op_type *t = sfs_op_type_of(v->kind);
		if (t->params_free)
			t->params_free(v->params);
		else
			free(v->params);
	}
}

static void parse_release(struct parse *p)
{
	for (size_t i = 0; p->pv && i < p->n; i++) {
		vertex_release(&p->pv[i].v);
		uses_free(&p->pv[i]);
		free(p->pv[i].tpl);
	}
	free(p->pv);
	free(p->keys);
	free(p->raw);
	free(p->spans);
	free(p->key_bytes);
	free(p->noutputs);
	strmap_release(&p->index);
	strbuf_release(&p->scratch);
}

/* Moves the vertices into s in topological order and renumbers every ref. */
static int place_vertices(struct parse *p, const size_t *order, struct sfs_spec *s)
{
	size_t *pos = malloc((p->n + 1) * sizeof(size_t));

	s->v = calloc(p->n + 1, sizeof(*s->v));
	if (!pos || !s->v) {
		free(pos);
		return -ENOMEM;
	}
	for (size_t k = 0; k < p->n; k++)
		pos[order[k]] = k;
	for (size_t k = 0; k < p->n; k++) {
		struct pv *pv = &p->pv[order[k]];
		for (size_t i = 0; i < pv->v.ninputs; i++)
			pv->v.inputs[i].ref.vertex = pos[pv->v.inputs[i].ref.vertex];
		s->v[k] = pv->v;
		memset(&pv->v, 0, sizeof(pv->v));
	}
	s->n = p->n;
	for (size_t i = 0; i < s->noutputs; i++)
		s->outputs[i].vertex = pos[s->outputs[i].vertex];
	free(pos);
	return 0;
}

/* jansson's reason, its bytes quoted from the input made printable. */
static int invalid_json(struct parse *p, const json_error_t *jerr)
{
	enum json_error_code code = json_error_code(jerr);
	const char *hint = code == json_error_invalid_utf8     ? "not valid UTF-8: "
			   : code == json_error_stack_overflow ? "nested too deep: "
							       : "";
	char text[4 * sizeof(jerr->text)];
	size_t o = 0;

	for (const char *t = jerr->text; *t && o + 5 < sizeof(text); t++) {
		unsigned char ch = (unsigned char)*t;
		if (ch < 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "\\x%02x", ch);
		else
			text[o++] = (char)ch;
	}
	text[o] = '\0';
	if (code == json_error_out_of_memory)
		return -ENOMEM;
	return sfs_errf(p->ret_msg, EINVAL, "invalid JSON: line %d column %d: %s%s", jerr->line,
			jerr->column, hint, text);
}

/* Pass 1 on the document loaded whole. */
static int parse_whole(struct parse *p, const char *buf, size_t len, struct sfs_spec *s)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, LOAD_FLAGS, &jerr);

	if (!root)
		return invalid_json(p, &jerr);
	if (!json_is_object(root))
		return sfs_errf(p->ret_msg, EINVAL, "a spec must be a JSON object");
	return parse_job(p, root, s); /* root is in the arena, dropped with it */
}

/* whole: the document loaded whole; else streamed, which may return WHOLE. */
static int parse_root(struct parse *p, const char *buf, size_t len, bool whole,
		      struct sfs_spec *s)
{
	size_t *order = NULL;
	int r;

	if (whole) {
		r = parse_whole(p, buf, len, s);
	} else {
		char **ret_msg = p->ret_msg;
		p->ret_msg = NULL; /* its errors are found again whole, with their text */
		r = parse_streamed(p, buf, len, s);
		p->ret_msg = ret_msg;
		if (r == TOO_MANY)
			return sfs_errf(p->ret_msg, E2BIG, "field \"vertices\": more than %zu vertices",
					p->lim.max_vertices);
	}
	if (r == 0) {
		order = malloc((p->n + 1) * sizeof(size_t));
		r = order ? sfs_spec_topo_sort(p, order) : -ENOMEM;
	}
	for (size_t k = 0; r == 0 && k < p->n; k++) {
		struct pv *pv = &p->pv[order[k]];
		r = sfs_spec_finish_vertex(p, pv);
		uses_free(pv); /* resolved into pv->v.inputs */
	}
	/* Every vertex is finished and holds nothing of the arena (its op tree went
	 * back to a mark, its description was copied out): the document goes now,
	 * before the spec's vertex array is made beside it (the parse's peak). */
	if (r == 0)
		sfs_jarena_release(&p->arena, (struct sfs_jarena_mark){0});
	if (r == 0)
		r = place_vertices(p, order, s);
	free(order);
	return r;
}

/* One parse of the spec, whole or streamed (then it may return WHOLE). */
static int parse_spec(const char *buf, size_t len, const struct sfs_spec_ctx *ctx,
		      const struct sfs_spec_limits *lim, bool whole, struct sfs_spec **ret,
		      char **ret_msg)
{
	struct parse p = {.ctx = ctx, .lim = *lim, .ret_msg = ret_msg, .index = STRMAP_INIT,
			  .scratch = STRBUF_INIT};
	struct sfs_spec *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->refs = 1;
	sfs_jarena_begin(&p.arena);
	r = parse_root(&p, buf, len, whole, s);
	parse_release(&p);
	sfs_jarena_end(&p.arena);
	if (r != 0) {
		sfs_spec_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

int sfs_spec_parse(const char *buf, size_t len, const struct sfs_spec_ctx *ctx,
		   struct sfs_spec **ret, char **ret_msg)
{
	static const struct sfs_spec_limits defaults = {DEFAULT_MAX_BYTES, DEFAULT_MAX_VERTICES,
							DEFAULT_MAX_PATH, DEFAULT_MAX_INLINE,
							DEFAULT_MAX_NAME};
	struct sfs_spec_limits lim = ctx->limits ? *ctx->limits : defaults;
	int r;

	if (!lim.max_bytes)
		lim.max_bytes = DEFAULT_MAX_BYTES;
	if (!lim.max_vertices)
		lim.max_vertices = DEFAULT_MAX_VERTICES;
	if (!lim.max_path)
		lim.max_path = DEFAULT_MAX_PATH;
	if (!lim.max_inline)
		lim.max_inline = DEFAULT_MAX_INLINE;
	if (!lim.max_name)
		lim.max_name = DEFAULT_MAX_NAME;
	if (len > lim.max_bytes)
		return sfs_errf(ret_msg, EFBIG, "the spec is larger than %zu bytes",
				lim.max_bytes);
	r = parse_spec(buf, len, ctx, &lim, false, ret, ret_msg);
	if (r == WHOLE)
		r = parse_spec(buf, len, ctx, &lim, true, ret, ret_msg);
	if (r == -ENOMEM)
		sfs_errf(ret_msg, ENOMEM, "out of memory while parsing the spec");
	return r;
}

struct sfs_spec *sfs_spec_ref(struct sfs_spec *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

struct sfs_spec *sfs_spec_free(struct sfs_spec *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return NULL;
	for (size_t i = 0; s->v && i < s->n; i++)
		vertex_release(&s->v[i]);
	free(s->v);
	free(s->outputs);
	strv_free_argv(s->output_refs);
	strv_free_argv(s->cache_from);
	free(s->export_to);
	free(s);
	return NULL;
}

json_t *sfs_spec_vertex_op(const struct sfs_spec_vertex *v)
{
	if (v->op)
		return json_incref(v->op);
	/* canonical JSON of a tree jansson built: it parses back to the same tree */
	return json_loadb(v->op_bytes, v->op_len, JSON_ALLOW_NUL, NULL);
}

char *sfs_ref_string(const struct sfs_spec *s, struct sfs_ref r)
{
	char *out = NULL;

	if (!s || r.vertex >= s->n)
		return NULL;
	if (r.output == 0)
		return strdup(s->v[r.vertex].key);
	if (asprintf(&out, "%s:%d", s->v[r.vertex].key, r.output) < 0)
		return NULL;
	return out;
}
