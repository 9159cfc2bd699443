/*
 * file.c — the `file` op: mkdir, mkfile, copy, rm and symlink applied in order to
 * a copy of `base` (README.md "The spec"), on a wtree (wtree.c).
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

#include "array.h"
#include "err.h"
#include "strv.h"
#include "specop.h"
#include "ops.h"

/* ---- the op ---- */

enum file_act { FA_MKDIR, FA_MKFILE, FA_COPY, FA_RM, FA_SYMLINK };

/* The fields of a file vertex, read once by norm_file (vertex params). */
struct file_action {
	enum file_act act;
	const char *name;	   /* "mkdir", ...: for messages */
	char *path;		   /* mkdir, mkfile, rm, symlink */
	unsigned mode;		   /* mkdir, mkfile */
	bool flag;		   /* mkdir: parents; rm: allow_not_found */
	char *data_base64;	   /* mkfile */
	char *target;		   /* symlink */
	char *src, *dest;	   /* copy; "" is the root */
	char **include, **exclude; /* copy; NULL-terminated */
	size_t from;		   /* copy: the input */
};

struct file_params {
	size_t base; /* the input, or SFS_NORM_NO_INPUT: the empty tree */
	size_t nactions;
	struct file_action *actions;
};

struct file_run {
	struct sfs_op_ctx *ctx;
	const struct file_params *op;
	const char *const *inputs;
	size_t ninputs;
	struct tree **trees; /* loaded lazily, one per input */
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

/* The number of inputs the op's refs use (base, then copy sources, shared). */
static size_t file_ninputs(const struct file_params *fp)
{
	size_t n = fp->base != SFS_NORM_NO_INPUT ? fp->base + 1 : 0;

	for (size_t i = 0; i < fp->nactions; i++)
		if (fp->actions[i].act == FA_COPY && fp->actions[i].from + 1 > n)
			n = fp->actions[i].from + 1;
	return n;
}

static int input_tree(struct file_run *fr, size_t i, struct tree **ret, char **ret_msg)
{
	int r;

	if (i >= fr->ninputs)
		return act_err(fr, ret_msg, EINVAL, "no input %zu", i);
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

static int act_mkdir(struct file_run *fr, const struct file_action *a, char **ret_msg)
{
	const char *path = a->path;
	bool parents = a->flag;
	struct wt_ent e = {.type = 'd'}, *cur;
	int r;

	if ((e.mode = a->mode) > 07777)
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

static int act_mkfile(struct file_run *fr, const struct file_action *a, char **ret_msg)
{
	const char *path = a->path;
	struct wt_ent e = {.type = 'f'}, *cur;
	unsigned char *data;
	size_t len;
	int r;

	if ((e.mode = a->mode) > 07777)
		return act_err(fr, ret_msg, EINVAL, "bad mode");
	cur = wtree_get(&fr->w, path);
	if (cur && cur->type == 'd')
		return act_err(fr, ret_msg, EISDIR, "\"%s\" is a directory", path);
	if ((r = check_parent(fr, path, false, ret_msg)) < 0)
		return r;
	if (b64_decode(a->data_base64, &data, &len) < 0)
		return act_err(fr, ret_msg, EINVAL, "data_base64 is not base64");
	r = cas_put_buf(fr->ctx->cache->cas, data, len, e.hex);
	free(data);
	if (r < 0)
		return act_err(fr, ret_msg, r, "storing \"%s\": %s", path, strerror(-r));
	e.size = len;
	return wtree_put(&fr->w, path, &e);
}

static int act_symlink(struct file_run *fr, const struct file_action *a, char **ret_msg)
{
	const char *path = a->path;
	const char *target = a->target;
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

static int act_rm(struct file_run *fr, const struct file_action *a, char **ret_msg)
{
	const char *path = a->path;

	if (strcmp(path, ".") == 0)
		return act_err(fr, ret_msg, EINVAL, "cannot remove the root");
	if (!wtree_rm(&fr->w, path) && !a->flag)
		return act_err(fr, ret_msg, ENOENT, "\"%s\" not found", path);
	return 0;
}

static bool globs_match(char *const *globs, const char *rel)
{
	for (; globs && *globs; globs++)
		if (tree_glob_match(*globs, rel))
			return true;
	return false;
}

/* Include/exclude of copy: a path is taken when it or an ancestor matches an
 * include (or there are none) and neither it nor an ancestor matches an exclude. */
static bool copy_taken(char *const *inc, char *const *exc, const char *rel)
{
	bool included = !inc || !inc[0];
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
	struct wt_ent e = {
	    .type = te->type, .mode = te->mode, .size = te->size, .from_input = true};

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
		    const struct file_action *a, char **ret_msg)
{
	char *const *inc = a->include, *const *exc = a->exclude;
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

static int act_copy(struct file_run *fr, const struct file_action *a, char **ret_msg)
{
	const char *src = a->src, *dest = a->dest;
	const struct tree_entry *se;
	struct tree *t = NULL;
	struct wt_ent e;
	int r;

	if (!*src)
		src = ".";
	if (!*dest)
		dest = ".";
	if ((r = input_tree(fr, a->from, &t, ret_msg)) < 0)
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

static int apply_action(struct file_run *fr, const struct file_action *a, char **ret_msg)
{
	static int (*const fn[])(struct file_run *, const struct file_action *, char **) = {
	    [FA_MKDIR] = act_mkdir, [FA_MKFILE] = act_mkfile,	[FA_COPY] = act_copy,
	    [FA_RM] = act_rm,	    [FA_SYMLINK] = act_symlink,
	};

	fr->kind = a->name;
	return fn[a->act](fr, a, ret_msg);
}

static int file_run_actions(struct file_run *fr, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct tree *out = NULL;
	int r;

	if (fr->op->base != SFS_NORM_NO_INPUT) {
		struct tree *t = NULL;
		fr->idx = 0;
		fr->kind = "base";
		if ((r = input_tree(fr, fr->op->base, &t, ret_msg)) < 0)
			return r;
		if ((r = wtree_add_tree(&fr->w, t)) < 0)
			return r;
	}
	for (fr->idx = 0; fr->idx < fr->op->nactions; fr->idx++) {
		if (sfs_op_cancelled(fr->ctx))
			return sfs_errf(ret_msg, ECANCELED, "cancelled");
		if ((r = apply_action(fr, &fr->op->actions[fr->idx], ret_msg)) < 0)
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
	struct file_run fr = {
	    .ctx = ctx, .op = op->v->params, .inputs = inputs, .ninputs = ninputs};
	int r = 0;

	fr.trees = calloc(ninputs ? ninputs : 1, sizeof(*fr.trees));
	if (!fr.trees)
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	if (file_ninputs(fr.op) != ninputs)
		r = sfs_errf(ret_msg, EINVAL, "%zu inputs do not match the refs of the op",
			     ninputs);
	if (r == 0 && (r = wtree_init(&fr.w)) == 0)
		r = file_run_actions(&fr, outputs, ret_msg);
	if (r == -ENOMEM)
		sfs_errf(ret_msg, r, "out of memory");
	wtree_release(&fr.w);
	for (size_t i = 0; i < ninputs; i++)
		tree_free(fr.trees[i]);
	free(fr.trees);
	return r;
}

/* ---- the spec side: fields and normaliser (specop.h) ---- */

#define SUMMARY_ACTIONS 8 /* actions shown in a summary before "..." */

static const char *const file_fields[] = {"base", "actions", NULL};

static ssize_t base64_decode(const char *s, size_t len, unsigned char *out)
{
	size_t o = 0;

	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		unsigned v = 0;
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char ch = s[i + k];
			int d;
			if (ch >= 'A' && ch <= 'Z')
				d = ch - 'A';
			else if (ch >= 'a' && ch <= 'z')
				d = ch - 'a' + 26;
			else if (ch >= '0' && ch <= '9')
				d = ch - '0' + 52;
			else if (ch == '+')
				d = 62;
			else if (ch == '/')
				d = 63;
			else if (ch == '=' && i + 4 == len && k >= 2)
				d = -1;
			else
				return -1;
			if (d < 0)
				pad++;
			else if (pad) /* data after '=' */
				return -1;
			v = v << 6 | (unsigned)(d < 0 ? 0 : d);
		}
		out[o++] = (unsigned char)(v >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(v >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)v;
	}
	return (ssize_t)o;
}

static json_t *base64_json(const void *data, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *j;

	strbuf_add_base64(&sb, data, len);
	strbuf_addstr(&sb, "");
	j = sb.oom ? NULL : json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

static int norm_mkdir(struct sfs_norm *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum,
		      struct file_action *fa)
{
	static const char *const f[] = {"path", "mode", "parents", NULL};
	const char *path;
	json_t *mode = NULL;
	bool parents = false;
	int r = sfs_norm_unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = sfs_norm_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = sfs_norm_bool(c, a, fp, "parents", &parents);
	if (r == 0)
		r = sfs_norm_mode(c, a, fp, 0755, &mode);
	if (r < 0)
		return r;
	fa->mode = (unsigned)strtoul(json_string_value(mode), NULL, 8);
	sfs_norm_set(c, o, "path", json_string(path));
	sfs_norm_set(c, o, "mode", mode);
	sfs_norm_set(c, o, "parents", json_boolean(parents));
	strbuf_addstr(sum, "mkdir /");
	strbuf_addstr(sum, path);
	fa->act = FA_MKDIR;
	fa->flag = parents;
	return (fa->path = strdup(path)) ? 0 : -ENOMEM;
}

/* `data` and `data_base64` both become the canonical base64 of the bytes. */
static int mkfile_data(struct sfs_norm *c, json_t *a, const char *fp, json_t **ret)
{
	json_t *d = json_object_get(a, "data"), *b = json_object_get(a, "data_base64");
	size_t max = sfs_norm_limits(c)->max_inline;

	if (d && b)
		return sfs_norm_err(c, fp, "data", "give either data or data_base64, not both");
	if (d) {
		if (!json_is_string(d))
			return sfs_norm_err(c, fp, "data", "must be a string");
		if (json_string_length(d) > max)
			return sfs_norm_errc(
			    c, EFBIG, fp, "data",
			    "is larger than %zu bytes (the inline_max mount option)", max);
		*ret = base64_json(json_string_value(d), json_string_length(d));
		return *ret ? 0 : -ENOMEM;
	}
	if (!b) {
		*ret = json_string("");
		return *ret ? 0 : -ENOMEM;
	}
	if (!json_is_string(b))
		return sfs_norm_err(c, fp, "data_base64", "must be a string");
	size_t len = json_string_length(b);
	if (len / 4 * 3 > max + 2)
		return sfs_norm_errc(c, EFBIG, fp, "data_base64",
				     "is larger than %zu bytes (the inline_max mount option)", max);
	unsigned char *buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = base64_decode(json_string_value(b), len, buf);
	int r = 0;
	if (n < 0)
		r = sfs_norm_err(c, fp, "data_base64",
				 "is not valid base64 (standard alphabet, padded)");
	else if ((size_t)n > max)
		r = sfs_norm_errc(c, EFBIG, fp, "data_base64",
				  "is larger than %zu bytes (the inline_max mount option)", max);
	else if (!(*ret = base64_json(buf, (size_t)n)))
		r = -ENOMEM;
	free(buf);
	return r;
}

static int norm_mkfile(struct sfs_norm *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum,
		       struct file_action *fa)
{
	static const char *const f[] = {"path", "data", "data_base64", "mode", NULL};
	const char *path;
	json_t *mode = NULL, *data = NULL;
	int r = sfs_norm_unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = sfs_norm_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = sfs_norm_mode(c, a, fp, 0644, &mode);
	if (r == 0)
		r = mkfile_data(c, a, fp, &data);
	if (r < 0) {
		json_decref(mode);
		return r;
	}
	fa->mode = (unsigned)strtoul(json_string_value(mode), NULL, 8);
	sfs_norm_set(c, o, "path", json_string(path));
	sfs_norm_set(c, o, "mode", mode);
	fa->act = FA_MKFILE;
	fa->data_base64 = strdup(json_string_value(data));
	fa->path = strdup(path);
	sfs_norm_set(c, o, "data_base64", data);
	strbuf_addstr(sum, "mkfile /");
	strbuf_addstr(sum, path);
	return fa->path && fa->data_base64 ? 0 : -ENOMEM;
}

static int norm_copy(struct sfs_norm *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum,
		     struct file_action *fa)
{
	static const char *const f[] = {"from", "src", "dest", "include", "exclude", NULL};
	const char *src, *dest;
	json_t *inc = NULL, *exc = NULL, *from = json_object_get(a, "from");
	json_t *ph;
	int r = sfs_norm_unknown_fields(c, fp, a, f, NULL);

	if (r == 0 && !from)
		r = sfs_norm_err(c, fp, "from", "is required");
	if (r == 0)
		r = sfs_norm_path(c, a, fp, "src", false, true, "", &src);
	if (r == 0)
		r = sfs_norm_path(c, a, fp, "dest", false, true, "", &dest);
	if (r == 0)
		r = sfs_norm_globs(c, a, fp, "include", &inc);
	if (r == 0)
		r = sfs_norm_globs(c, a, fp, "exclude", &exc);
	if (r == 0)
		r = sfs_norm_ref(c, from, fp, "from", "actions", src, true, &fa->from, &ph);
	if (r < 0) {
		json_decref(inc);
		json_decref(exc);
		return r;
	}
	sfs_norm_put(c, o, "from", ph);
	sfs_norm_set(c, o, "src", json_string(src));
	sfs_norm_set(c, o, "dest", json_string(dest));
	fa->act = FA_COPY;
	fa->src = strdup(src);
	fa->dest = strdup(dest);
	fa->include = sfs_norm_strv(inc);
	fa->exclude = sfs_norm_strv(exc);
	sfs_norm_set(c, o, "include", inc);
	sfs_norm_set(c, o, "exclude", exc);
	strbuf_addf(sum, "copy /%s /%s", src, dest);
	return fa->src && fa->dest && fa->include && fa->exclude ? 0 : -ENOMEM;
}

static int norm_rm(struct sfs_norm *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum,
		   struct file_action *fa)
{
	static const char *const f[] = {"path", "allow_not_found", NULL};
	const char *path;
	bool anf = false;
	int r = sfs_norm_unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = sfs_norm_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = sfs_norm_bool(c, a, fp, "allow_not_found", &anf);
	if (r < 0)
		return r;
	sfs_norm_set(c, o, "path", json_string(path));
	sfs_norm_set(c, o, "allow_not_found", json_boolean(anf));
	strbuf_addstr(sum, "rm /");
	strbuf_addstr(sum, path);
	fa->act = FA_RM;
	fa->flag = anf;
	return (fa->path = strdup(path)) ? 0 : -ENOMEM;
}

static int norm_symlink(struct sfs_norm *c, json_t *a, const char *fp, json_t *o,
			struct strbuf *sum, struct file_action *fa)
{
	static const char *const f[] = {"target", "path", NULL};
	const char *path, *target;
	int r = sfs_norm_unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = sfs_norm_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = sfs_norm_str(c, a, fp, "target", true, NULL, &target);
	if (r == 0 && !*target)
		r = sfs_norm_err(c, fp, "target", "must not be empty");
	if (r < 0)
		return r;
	sfs_norm_set(c, o, "target", json_string(target));
	sfs_norm_set(c, o, "path", json_string(path));
	strbuf_addf(sum, "symlink /%s -> %s", path, target);
	fa->act = FA_SYMLINK;
	fa->path = strdup(path);
	fa->target = strdup(target);
	return fa->path && fa->target ? 0 : -ENOMEM;
}

typedef int norm_act_fn(struct sfs_norm *, json_t *, const char *, json_t *, struct strbuf *,
			struct file_action *);
static const struct {
	const char *name;
	norm_act_fn *fn;
} norm_actions[] = {{"mkdir", norm_mkdir},
		    {"mkfile", norm_mkfile},
		    {"copy", norm_copy},
		    {"rm", norm_rm},
		    {"symlink", norm_symlink}};

/* One action: {"<name>": {...}} normalised to the same shape. */
static int norm_action(struct sfs_norm *c, size_t i, json_t *a, json_t *list, struct strbuf *sum,
		       struct file_action *fa)
{
	char fp[64], e[64];
	const char *name;
	json_t *body;
	size_t k;

	sfs_norm_elem_path(fp, sizeof(fp), "actions", i, NULL);
	if (!json_is_object(a) || json_object_size(a) != 1)
		return sfs_norm_err(c, fp, "", "must be an object with one key: the action");
	name = json_object_iter_key(json_object_iter(a));
	body = json_object_iter_value(json_object_iter(a));
	for (k = 0; k < ARRAY_SIZE(norm_actions); k++)
		if (strcmp(norm_actions[k].name, name) == 0)
			break;
	if (k == ARRAY_SIZE(norm_actions))
		return sfs_norm_err(c, fp, sfs_norm_esc(e, sizeof(e), name), "unknown action");
	sfs_norm_elem_path(fp, sizeof(fp), "actions", i, name);
	if (!json_is_object(body))
		return sfs_norm_err(c, fp, "", "must be an object");
	json_t *wrap = json_object(), *o = json_object();
	if (!sfs_norm_ok(c, wrap) || !sfs_norm_ok(c, o)) {
		json_decref(wrap);
		json_decref(o);
		return -ENOMEM;
	}
	if (i > 0 && i < SUMMARY_ACTIONS)
		strbuf_addstr(sum, ", ");
	struct strbuf ignore = STRBUF_INIT;
	fa->name = norm_actions[k].name;
	int r = norm_actions[k].fn(c, body, fp, o, i < SUMMARY_ACTIONS ? sum : &ignore, fa);
	strbuf_release(&ignore);
	sfs_norm_put(c, wrap, name, o);
	sfs_norm_put(c, list, NULL, wrap);
	return r;
}

static void file_params_free(void *params)
{
	struct file_params *fp = params;

	for (size_t i = 0; fp->actions && i < fp->nactions; i++) {
		struct file_action *a = &fp->actions[i];
		free(a->path);
		free(a->data_base64);
		free(a->target);
		free(a->src);
		free(a->dest);
		strv_free_argv(a->include);
		strv_free_argv(a->exclude);
	}
	free(fp->actions);
	free(fp);
}

static int norm_file(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *base = json_object_get(raw, "base"), *acts = json_object_get(raw, "actions"), *a;
	struct file_params *fp = calloc(1, sizeof(*fp));
	json_t *list;
	size_t i;
	int r = 0;

	if (!(sfs_norm_vertex(c)->params = fp))
		return -ENOMEM;
	fp->base = SFS_NORM_NO_INPUT;
	/* exactly: most file vertices have one action (an action is 88 bytes) */
	if (!(fp->actions = calloc(json_array_size(acts) ? json_array_size(acts) : 1,
				   sizeof(*fp->actions))))
		return -ENOMEM;
	sfs_norm_share_inputs(c);
	if (base && !json_is_null(base)) {
		json_t *ph;
		r = sfs_norm_ref(c, base, "", "base", "base", NULL, true, &fp->base, &ph);
		if (r < 0)
			return r;
		sfs_norm_put(c, op, "base", ph);
	} else {
		sfs_norm_set(c, op, "base", json_null());
	}
	if (acts && !json_is_array(acts))
		return sfs_norm_err(c, "", "actions", "must be an array of actions");
	list = json_array();
	if (!sfs_norm_ok(c, list))
		return -ENOMEM;
	sfs_norm_put(c, op, "actions", list); /* list stays valid: op holds it */
	if (sfs_norm_oom(c))
		return -ENOMEM;
	strbuf_addstr(sum, "file");
	if (json_array_size(acts))
		strbuf_addch(sum, ' ');
	json_array_foreach(acts, i, a)
	{
		fp->nactions = i + 1;
		r = norm_action(c, i, a, list, sum, &fp->actions[i]);
		if (r < 0)
			return r;
	}
	if (json_array_size(acts) > SUMMARY_ACTIONS)
		strbuf_addf(sum, ", ... (%zu more)", json_array_size(acts) - SUMMARY_ACTIONS);
	return 0;
}

const struct sfs_op_type sfs_op_file = {
    .name = "file",
    .fields = file_fields,
    .normalise = norm_file,
    .params_free = file_params_free,
    .exec = file_exec,
};
