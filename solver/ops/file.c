/*
 * file.c — the `file` op: mkdir, mkfile, copy, rm and symlink applied in order to
 * a copy of `base` (README.md "The spec"), and the wtree those actions edit (ops.h).
 *
 * Everything happens on manifests: the base tree's entries are loaded into a
 * wtree, actions edit it, and the result is stored with tree_from_entries.
 * Only new content (mkfile data, symlink targets) is written to the store;
 * copied files keep their blobs.  Errors name the action by its index and kind:
 * `action 2 (copy): src "x" not found`.
 *
 * Paths inside the tree never traverse symlinks: a parent that is a link is
 * "not a directory", as nothing here resolves links.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ops.h"

/* ---- wtree ---- */

int wtree_init(struct wtree *w)
{
	struct wt_ent root = {.type = 'd', .mode = 0755};

	w->map = (struct strmap)STRMAP_INIT;
	return wtree_put(w, ".", &root);
}

void wtree_release(struct wtree *w)
{
	const char *k;
	void *v;

	for (size_t i = 0; strmap_next(&w->map, &i, &k, &v);)
		free(v);
	strmap_release(&w->map);
}

struct wt_ent *wtree_get(const struct wtree *w, const char *path)
{
	return strmap_get(&w->map, path);
}

int wtree_put(struct wtree *w, const char *path, const struct wt_ent *e)
{
	struct wt_ent *cur = strmap_get(&w->map, path);
	int r;

	if (cur) {
		*cur = *e;
		return 0;
	}
	cur = malloc(sizeof(*cur));
	if (!cur)
		return -ENOMEM;
	*cur = *e;
	if ((r = strmap_put(&w->map, path, cur, NULL)) < 0)
		free(cur);
	return r;
}

int wtree_add_tree(struct wtree *w, const struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *te = &t->entries[i];
		struct wt_ent e = {.type = te->type, .mode = te->mode, .size = te->size};
		int r;

		memcpy(e.hex, te->hex, sizeof(e.hex));
		if ((r = wtree_put(w, te->path, &e)) < 0)
			return r;
	}
	return 0;
}

bool wtree_rm(struct wtree *w, const char *path)
{
	struct wt_ent *e = strmap_del(&w->map, path);
	const char *k;
	void *v;
	char **gone = NULL;
	size_t n = 0, cap = 0;

	if (!e)
		return false;
	if (e->type == 'd') {
		/* Collect first: the map must not change while we iterate it. */
		for (size_t i = 0; strmap_next(&w->map, &i, &k, &v);) {
			if (!sfs_path_under(k, path))
				continue;
			if (n == cap) {
				char **g = realloc(gone, (cap = cap ? 2 * cap : 16) * sizeof(*g));
				if (!g)
					break; /* leaves orphans that wtree_build drops */
				gone = g;
			}
			gone[n++] = strdup(k);
		}
		for (size_t i = 0; i < n; i++) {
			if (gone[i])
				free(strmap_del(&w->map, gone[i]));
			free(gone[i]);
		}
		free(gone);
	}
	free(e);
	return true;
}

int wtree_mkparents(struct wtree *w, const char *path, char **ret_msg)
{
	struct wt_ent dir = {.type = 'd', .mode = 0755};
	char *p = strdup(path);
	int r = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = strchr(p, '/'); s && r == 0; s = strchr(s + 1, '/')) {
		struct wt_ent *e;

		*s = '\0';
		e = wtree_get(w, p);
		if (!e)
			r = wtree_put(w, p, &dir);
		else if (e->type != 'd')
			r = sfs_errf(ret_msg, ENOTDIR, "\"%s\" is not a directory", p);
		*s = '/';
	}
	free(p);
	return r;
}

int wtree_build(struct wtree *w, struct cas *c, struct tree **ret)
{
	struct tree_entry *es = calloc(w->map.len ? w->map.len : 1, sizeof(*es));
	const char *k;
	void *v;
	size_t n = 0;
	int r;

	if (!es)
		return -ENOMEM;
	for (size_t i = 0; strmap_next(&w->map, &i, &k, &v);) {
		const struct wt_ent *e = v;
		char *parent;

		/* Drop entries whose parent vanished (only after an ENOMEM in wtree_rm). */
		if (strcmp(k, ".") != 0) {
			struct wt_ent *pe;
			if (!(parent = sfs_path_parent(k))) {
				free(es);
				return -ENOMEM;
			}
			pe = wtree_get(w, parent);
			free(parent);
			if (!pe || pe->type != 'd')
				continue;
		}
		es[n] = (struct tree_entry){
		    .type = e->type, .mode = e->mode, .size = e->size, .path = (char *)k};
		memcpy(es[n].hex, e->hex, sizeof(es[n].hex));
		n++;
	}
	r = tree_from_entries(c, es, n, ret);
	free(es);
	return r;
}

/* ---- the op ---- */

struct file_run {
	struct sfs_op_ctx *ctx;
	const json_t *op;
	const char *const *inputs;
	size_t ninputs;
	struct tree **trees; /* loaded lazily, one per input */
	struct strmap index; /* ref string -> (input number + 1) */
	struct wtree w;
	size_t idx;	  /* action being applied */
	const char *kind; /* its name */
};

static int act_err(struct file_run *fr, char **ret_msg, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int act_err(struct file_run *fr, char **ret_msg, int err, const char *fmt, ...)
{
	char *m = NULL;
	va_list ap;

	va_start(ap, fmt);
	sfs_verrf(&m, err, fmt, ap);
	va_end(ap);
	err = sfs_errf(ret_msg, err, "action %zu (%s): %s", fr->idx, fr->kind,
		       m ? m : strerror(err < 0 ? -err : err));
	free(m);
	return err;
}

/* Inputs() of a file op: base, then copy sources in action order, no repeats;
 * fills fr->index (ref -> input number + 1). */
static int file_index_inputs(struct file_run *fr)
{
	const char *base = json_string_value(json_object_get(fr->op, "base"));
	uintptr_t n = 0;
	size_t i;
	json_t *a;
	int r;

	if (base && (r = strmap_put(&fr->index, base, (void *)++n, NULL)) < 0)
		return r;
	json_array_foreach(json_object_get(fr->op, "actions"), i, a)
	{
		const char *from =
		    json_string_value(json_object_get(json_object_get(a, "copy"), "from"));

		if (!from || strmap_get(&fr->index, from))
			continue;
		if ((r = strmap_put(&fr->index, from, (void *)++n, NULL)) < 0)
			return r;
	}
	return n == fr->ninputs ? 0 : -EINVAL;
}

static int input_tree(struct file_run *fr, const char *ref, struct tree **ret, char **ret_msg)
{
	uintptr_t i = (uintptr_t)strmap_get(&fr->index, ref);
	int r;

	if (i == 0 || i > fr->ninputs)
		return act_err(fr, ret_msg, EINVAL, "no input for ref \"%s\"", ref);
	i--;
	if (!fr->trees[i] &&
	    (r = sfs_op_load_tree(fr->ctx, fr->inputs[i], &fr->trees[i], ret_msg)) < 0)
		return r;
	*ret = fr->trees[i];
	return 0;
}

/* The parent of path must be an existing dir (mkparents creates it first). */
static int check_parent(struct file_run *fr, const char *path, bool mkparents, char **ret_msg)
{
	char *parent, *m = NULL;
	struct wt_ent *pe;
	int r = 0;

	if (mkparents && (r = wtree_mkparents(&fr->w, path, &m)) < 0) {
		r = act_err(fr, ret_msg, r, "%s", m ? m : strerror(-r));
		free(m);
		return r;
	}
	if (!(parent = sfs_path_parent(path)))
		return -ENOMEM;
	pe = wtree_get(&fr->w, parent);
	if (!pe)
		r = act_err(fr, ret_msg, ENOENT, "parent dir \"%s\" of \"%s\" not found", parent,
			    path);
	else if (pe->type != 'd')
		r = act_err(fr, ret_msg, ENOTDIR, "\"%s\" is not a directory", parent);
	free(parent);
	return r;
}

static int act_mkdir(struct file_run *fr, const json_t *a, char **ret_msg)
{
	const char *path = sfs_op_json_str(a, "path");
	bool parents = json_is_true(json_object_get(a, "parents"));
	struct wt_ent e = {.type = 'd'}, *cur;
	int r;

	if (sfs_op_json_mode(json_object_get(a, "mode"), 0755, &e.mode) < 0)
		return act_err(fr, ret_msg, EINVAL, "bad mode");
	cur = wtree_get(&fr->w, path);
	if (cur && cur->type == 'd' && parents)
		return 0;
	if (cur)
		return act_err(fr, ret_msg, EEXIST, "\"%s\" already exists", path);
	if ((r = check_parent(fr, path, parents, ret_msg)) < 0)
		return r;
	return wtree_put(&fr->w, path, &e);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Standard or URL-safe base64, padding optional; *ret malloc'd. */
static int b64_decode(const char *s, unsigned char **ret, size_t *ret_len)
{
	size_t n = strlen(s), o = 0;
	unsigned char *out = malloc(n / 4 * 3 + 3);
	unsigned acc = 0;
	int bits = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return -EINVAL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	*ret = out;
	*ret_len = o;
	return 0;
}

static int act_mkfile(struct file_run *fr, const json_t *a, char **ret_msg)
{
	const char *path = sfs_op_json_str(a, "path");
	struct wt_ent e = {.type = 'f'}, *cur;
	unsigned char *data;
	size_t len;
	int r;

	if (sfs_op_json_mode(json_object_get(a, "mode"), 0644, &e.mode) < 0)
		return act_err(fr, ret_msg, EINVAL, "bad mode");
	cur = wtree_get(&fr->w, path);
	if (cur && cur->type == 'd')
		return act_err(fr, ret_msg, EISDIR, "\"%s\" is a directory", path);
	if ((r = check_parent(fr, path, false, ret_msg)) < 0)
		return r;
	if (b64_decode(sfs_op_json_str(a, "data_base64"), &data, &len) < 0)
		return act_err(fr, ret_msg, EINVAL, "data_base64 is not base64");
	r = cas_put_buf(fr->ctx->cache->cas, data, len, e.hex);
	free(data);
	if (r < 0)
		return act_err(fr, ret_msg, r, "storing \"%s\": %s", path, strerror(-r));
	e.size = len;
	return wtree_put(&fr->w, path, &e);
}

static int act_symlink(struct file_run *fr, const json_t *a, char **ret_msg)
{
	const char *path = sfs_op_json_str(a, "path");
	const char *target = sfs_op_json_str(a, "target");
	struct wt_ent e = {.type = 'l', .mode = 0777, .size = strlen(target)};
	int r;

	if (wtree_get(&fr->w, path))
		return act_err(fr, ret_msg, EEXIST, "\"%s\" already exists", path);
	if ((r = check_parent(fr, path, false, ret_msg)) < 0)
		return r;
	if ((r = cas_put_buf(fr->ctx->cache->cas, target, e.size, e.hex)) < 0)
		return act_err(fr, ret_msg, r, "storing link \"%s\": %s", path, strerror(-r));
	return wtree_put(&fr->w, path, &e);
}

static int act_rm(struct file_run *fr, const json_t *a, char **ret_msg)
{
	const char *path = sfs_op_json_str(a, "path");

	if (strcmp(path, ".") == 0)
		return act_err(fr, ret_msg, EINVAL, "cannot remove the root");
	if (!wtree_rm(&fr->w, path) && !json_is_true(json_object_get(a, "allow_not_found")))
		return act_err(fr, ret_msg, ENOENT, "\"%s\" not found", path);
	return 0;
}

static bool globs_match(const json_t *globs, const char *rel)
{
	size_t i;
	json_t *g;

	json_array_foreach(globs, i, g)
	{
		if (json_is_string(g) && tree_glob_match(json_string_value(g), rel))
			return true;
	}
	return false;
}

/* Include/exclude of copy: a path is taken when it or an ancestor matches an
 * include (or there are none) and neither it nor an ancestor matches an exclude. */
static bool copy_taken(const json_t *inc, const json_t *exc, const char *rel)
{
	bool included = json_array_size(inc) == 0;
	char *p = strdup(rel);
	bool excluded = false;

	if (!p)
		return false;
	for (char *s = p;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			included = included || globs_match(inc, p);
			excluded = excluded || globs_match(exc, p);
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return included && !excluded;
}

static char *join(const char *dir, const char *rel)
{
	char *s = NULL;

	if (strcmp(dir, ".") == 0)
		return strdup(rel);
	if (strcmp(rel, ".") == 0)
		return strdup(dir);
	return asprintf(&s, "%s/%s", dir, rel) < 0 ? NULL : s;
}

static struct wt_ent ent_of(const struct tree_entry *te)
{
	struct wt_ent e = {.type = te->type, .mode = te->mode, .size = te->size};

	memcpy(e.hex, te->hex, sizeof(e.hex));
	return e;
}

/* Creates the missing ancestors of dest/rel (skipped by include) with the modes
 * their source dirs have. */
static int copy_ancestors(struct file_run *fr, const struct tree *t, const char *src,
			  const char *dest, const char *rel, char **ret_msg)
{
	char *p = strdup(rel);
	int r = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = strchr(p, '/'); s && r == 0; s = strchr(s + 1, '/')) {
		char *target, *from;
		struct wt_ent *cur, d = {.type = 'd', .mode = 0755};
		const struct tree_entry *se;

		*s = '\0';
		target = join(dest, p);
		from = join(src, p);
		if (!target || !from) {
			r = -ENOMEM;
		} else if (!(cur = wtree_get(&fr->w, target))) {
			if ((se = tree_find(t, from)))
				d.mode = se->mode;
			r = wtree_put(&fr->w, target, &d);
		} else if (cur->type != 'd') {
			r = act_err(fr, ret_msg, ENOTDIR, "\"%s\" is not a directory", target);
		}
		free(target);
		free(from);
		*s = '/';
	}
	free(p);
	return r;
}

/* Copies one entry of the source dir (rel to src) to dest/rel. */
static int copy_one(struct file_run *fr, const struct tree *t, const char *src, const char *dest,
		    const struct tree_entry *te, const char *rel, char **ret_msg)
{
	char *target = join(dest, rel);
	struct wt_ent e = ent_of(te), *cur;
	int r;

	if (!target)
		return -ENOMEM;
	r = copy_ancestors(fr, t, src, dest, rel, ret_msg);
	cur = r == 0 ? wtree_get(&fr->w, target) : NULL;
	if (r == 0 && cur && cur->type == 'd' && e.type == 'd')
		cur->mode = e.mode;
	else if (r == 0 && cur && cur->type == 'd')
		r = act_err(fr, ret_msg, EISDIR,
			    "cannot overwrite directory \"%s\" with non-directory", target);
	else if (r == 0)
		r = wtree_put(&fr->w, target, &e);
	free(target);
	return r;
}

static int copy_dir(struct file_run *fr, const struct tree *t, const char *src, const char *dest,
		    const json_t *a, char **ret_msg)
{
	const json_t *inc = json_object_get(a, "include"), *exc = json_object_get(a, "exclude");
	const struct tree_entry *se = tree_find(t, src);
	struct wt_ent *cur = wtree_get(&fr->w, dest), d = ent_of(se);
	int r;

	if (cur && cur->type != 'd')
		wtree_rm(&fr->w, dest);
	if (strcmp(dest, ".") != 0 && (r = check_parent(fr, dest, true, ret_msg)) < 0)
		return r;
	if ((r = wtree_put(&fr->w, dest, &d)) < 0)
		return r;
	for (size_t i = 0; i < t->n; i++) {
		const char *rel = sfs_path_under(t->entries[i].path, src);

		if (!rel || !copy_taken(inc, exc, rel))
			continue;
		if ((r = copy_one(fr, t, src, dest, &t->entries[i], rel, ret_msg)) < 0)
			return r;
	}
	return 0;
}

static int act_copy(struct file_run *fr, const json_t *a, char **ret_msg)
{
	const char *src = sfs_op_json_str(a, "src"), *dest = sfs_op_json_str(a, "dest");
	const struct tree_entry *se;
	struct tree *t;
	struct wt_ent e;
	int r;

	if (!*src)
		src = ".";
	if (!*dest)
		dest = ".";
	if ((r = input_tree(fr, sfs_op_json_str(a, "from"), &t, ret_msg)) < 0)
		return r;
	if (!(se = tree_find(t, src)))
		return act_err(fr, ret_msg, ENOENT, "src \"%s\" not found", src);
	if (se->type == 'd')
		return copy_dir(fr, t, src, dest, a, ret_msg);
	if (strcmp(dest, ".") == 0)
		return act_err(fr, ret_msg, EISDIR, "cannot replace the root with file \"%s\"",
			       src);
	wtree_rm(&fr->w, dest);
	if ((r = check_parent(fr, dest, true, ret_msg)) < 0)
		return r;
	e = ent_of(se);
	return wtree_put(&fr->w, dest, &e);
}

static int apply_action(struct file_run *fr, const json_t *action, char **ret_msg)
{
	static const struct {
		const char *name;
		int (*fn)(struct file_run *, const json_t *, char **);
	} acts[] = {{"mkdir", act_mkdir},
		    {"mkfile", act_mkfile},
		    {"copy", act_copy},
		    {"rm", act_rm},
		    {"symlink", act_symlink}};
	const char *name;
	json_t *args;

	fr->kind = "?";
	json_object_foreach((json_t *)action, name, args)
	{
		for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
			if (strcmp(acts[i].name, name) == 0) {
				fr->kind = acts[i].name;
				return acts[i].fn(fr, args, ret_msg);
			}
		}
	}
	return act_err(fr, ret_msg, EINVAL, "unknown action");
}

static int file_run_actions(struct file_run *fr, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	const char *base = json_string_value(json_object_get(fr->op, "base"));
	struct tree *out = NULL;
	json_t *a;
	int r;

	if (base) {
		struct tree *t;
		fr->idx = 0;
		fr->kind = "base";
		if ((r = input_tree(fr, base, &t, ret_msg)) < 0)
			return r;
		if ((r = wtree_add_tree(&fr->w, t)) < 0)
			return r;
	}
	json_array_foreach(json_object_get(fr->op, "actions"), fr->idx, a)
	{
		if (sfs_op_cancelled(fr->ctx))
			return sfs_errf(ret_msg, ECANCELED, "cancelled");
		if ((r = apply_action(fr, a, ret_msg)) < 0)
			return r;
	}
	if ((r = wtree_build(&fr->w, fr->ctx->cache->cas, &out)) < 0)
		return sfs_errf(ret_msg, r, "storing the result: %s", strerror(-r));
	memcpy(outputs[0], out->id, SFS_DIGEST_SIZE);
	tree_free(out);
	return 0;
}

static int file_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		     size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	json_t *json = sfs_spec_vertex_op(op->v);
	struct file_run fr = {.ctx = ctx, .op = json, .inputs = inputs, .ninputs = ninputs};
	int r;

	fr.trees = calloc(ninputs ? ninputs : 1, sizeof(*fr.trees));
	if (!fr.trees || !json) {
		free(fr.trees);
		json_decref(json);
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	}
	fr.index = (struct strmap)STRMAP_INIT;
	r = file_index_inputs(&fr);
	if (r == -EINVAL)
		sfs_errf(ret_msg, r, "%zu inputs do not match the refs of the op", ninputs);
	if (r == 0 && (r = wtree_init(&fr.w)) == 0)
		r = file_run_actions(&fr, outputs, ret_msg);
	if (r == -ENOMEM)
		sfs_errf(ret_msg, r, "out of memory");
	wtree_release(&fr.w);
	strmap_release(&fr.index);
	for (size_t i = 0; i < ninputs; i++)
		tree_free(fr.trees[i]);
	free(fr.trees);
	json_decref(json);
	return r;
}

const struct sfs_op_type sfs_op_file = {
    .name = "file",
    .exec = file_exec,
};
