/*
 * spec.c — parsing, validation and normalisation of the graph spec (DESIGN.md §2)
 * and the digests of DESIGN.md §3.  See spec.h for the decisions it implements.
 *
 * sfs_spec_parse() works in three passes, each linear in the spec:
 *   1. validate every vertex (in bytewise key order, so the first error reported
 *      is deterministic) and build its normalised op tree; a ref is a placeholder
 *      string node, recorded as a `use`;
 *   2. sort the vertices topologically (Kahn, ties by key) or report a cycle;
 *   3. in that order, resolve each vertex's uses into Inputs() (a file op shares
 *      one input between uses of the same "sha256:<hex>:<N>"), fill the
 *      placeholders in place and hash the tree twice: as is (the vertex digest)
 *      and through hooks that write each placeholder as its input index and
 *      leave out selector and session (the cache map digest).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "strbuf.h"
#include "strmap.h"

#define DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define DEFAULT_MAX_VERTICES ((size_t)100000)
#define DEFAULT_MAX_PATH ((size_t)4096)
#define DEFAULT_MAX_INLINE ((size_t)16 << 20)
#define DEFAULT_MAX_NAME ((size_t)1024)
#define KEY_MAX 128
#define COMPONENT_MAX 255
#define SUMMARY_ACTIONS 8 /* file actions shown in a summary before "..." */
#define SYMLINK_HOPS 40

/* One reference of a vertex to an output of another, in Inputs() order. */
struct use {
	json_t *op_node; /* placeholder string in the op tree */
	size_t vertex;	 /* index in bytewise key order (pass 1 and 2) */
	int output;
	const char *field; /* top-level field, for the cycle message */
	const char *path;  /* the path used through (borrowed from the raw JSON); NULL: whole */
	bool content_func;
};

struct pv {
	struct sfs_spec_vertex v;
	struct use *uses;
	size_t nuses, cap;
	bool dedup; /* file: uses of the same ref share one input */
};

struct parse {
	const struct sfs_spec_ctx *ctx;
	struct sfs_spec_limits lim;
	size_t n;
	const char **keys; /* sorted bytewise; borrowed from the root */
	json_t **raw;
	size_t *noutputs;
	struct strmap index; /* key -> (void *)(index + 1) */
	struct pv *pv;
	bool oom; /* a jansson allocation failed; checked once per vertex */
	char **ret_msg;
};

/* The vertex being validated; key NULL for the job-level fields. */
struct vctx {
	struct parse *p;
	struct pv *pv;
	const char *key;
};

static const char *const op_names[] = {"local", "file", "exec", "merge", "build"};

const char *sfs_op_kind_name(enum sfs_op_kind k)
{
	return (unsigned)k < sizeof(op_names) / sizeof(op_names[0]) ? op_names[k] : "?";
}

/* ---- errors ---- */

/* A user-written name made safe to quote in a message: escaped and truncated. */
static const char *esc(char *buf, size_t size, const char *s)
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
static int __attribute__((format(printf, 5, 6)))
ferr_code(struct vctx *c, int err, const char *fp, const char *field, const char *fmt, ...)
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

#define ferr(c, fp, field, ...) ferr_code(c, EINVAL, fp, field, __VA_ARGS__)

static int unknown_fields(struct vctx *c, const char *fp, json_t *obj, const char *const *a,
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
			return ferr(c, fp, esc(e, sizeof(e), k), "unknown field");
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
static int no_nul_at(struct vctx *c, json_t *j, struct strbuf *fp)
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
		return fp->oom ? -ENOMEM
			       : ferr(c, "", fp->buf ? fp->buf : "", "must not contain NUL");
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
		strbuf_addf(fp, "%s%s", len ? "." : "", esc(ek, sizeof(ek), k));
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
static int no_nul(struct vctx *c, json_t *obj, const char *skip)
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
		strbuf_addstr(&fp, esc(ek, sizeof(ek), k));
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

/* ---- small validators ---- */

static bool valid_key(const char *s, size_t len)
{
	if (len == 0 || len > KEY_MAX)
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
static int split_ref(const char *s, size_t *ret_keylen, int *ret_output)
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

/* Why a path inside a tree is bad, or NULL when it is fine. */
static const char *tree_path_problem(const char *s, size_t len, bool allow_root)
{
	if (len == 0)
		return allow_root ? NULL : "must not be empty";
	if (memchr(s, '\0', len))
		return "must not contain NUL";
	if (s[0] == '/')
		return "must be relative (no leading /)";
	for (size_t i = 0; i <= len;) {
		const char *e = memchr(s + i, '/', len - i);
		size_t clen = (e ? (size_t)(e - s) : len) - i;
		if (clen == 0)
			return "must not have an empty component";
		if ((clen == 1 && s[i] == '.') || (clen == 2 && s[i] == '.' && s[i + 1] == '.'))
			return "must not have a . or .. component";
		if (clen > COMPONENT_MAX)
			return "has a component longer than 255 bytes";
		i += clen + 1;
	}
	return NULL;
}

/* "/a//b/./c/" -> "/a/b/c"; ".." is kept (it depends on symlinks). */
static char *clean_host_path(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	while (*s) {
		size_t l = strcspn(s, "/");
		if (l && !(l == 1 && s[0] == '.')) {
			strbuf_addch(&sb, '/');
			strbuf_add(&sb, s, l);
		}
		s += l;
		s += *s == '/';
	}
	if (sb.len == 0)
		strbuf_addch(&sb, '/');
	if (sb.oom) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

static bool under(const char *p, const char *mp, size_t mplen)
{
	if (mplen == 0) /* the mount point is "/" */
		return true;
	return strncmp(p, mp, mplen) == 0 && (p[mplen] == '\0' || p[mplen] == '/');
}

/*
 * Does host path p resolve into the mount point mp?  Symlinks are followed as far
 * as the path exists; the rest is taken literally.  Every prefix is compared with
 * mp BEFORE it is lstat'ed, so the check never stats anything inside the mount:
 * the daemon must not call into itself through the kernel.  mp must be canonical.
 */
static int host_path_inside(const char *p, const char *mp, bool *ret_inside)
{
	struct strbuf res = STRBUF_INIT, rest = STRBUF_INIT;
	size_t mplen = strlen(mp);
	bool missing = false, inside = false;
	int hops = 0;

	while (mplen > 0 && mp[mplen - 1] == '/')
		mplen--;
	strbuf_addstr(&rest, p);
	for (size_t at = 0; at < rest.len && !inside && !res.oom && !rest.oom;) {
		char comp[COMPONENT_MAX + 1 + 1];
		size_t l = strcspn(rest.buf + at, "/");
		size_t keep = res.len;
		struct stat st;

		if (l >= sizeof(comp))
			l = sizeof(comp) - 1; /* only for a component we will not find anyway */
		memcpy(comp, rest.buf + at, l);
		comp[l] = '\0';
		at += strcspn(rest.buf + at, "/");
		at += rest.buf[at] == '/';
		if (l == 0 || strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *slash = res.len ? strrchr(res.buf, '/') : NULL;
			res.len = slash ? (size_t)(slash - res.buf) : 0;
			if (res.buf)
				res.buf[res.len] = '\0';
			continue;
		}
		strbuf_addch(&res, '/');
		strbuf_addstr(&res, comp);
		if (res.oom)
			break;
		inside = under(res.buf, mp, mplen);
		if (inside || missing)
			continue;
		if (lstat(res.buf, &st) < 0) {
			missing = true; /* not there (or not readable): the rest is literal */
			continue;
		}
		if (S_ISLNK(st.st_mode) && ++hops <= SYMLINK_HOPS) {
			char target[PATH_MAX];
			ssize_t tl = readlink(res.buf, target, sizeof(target) - 1);
			if (tl <= 0) {
				missing = true;
				continue;
			}
			target[tl] = '\0';
			res.len = target[0] == '/' ? 0 : keep;
			res.buf[res.len] = '\0';
			struct strbuf nr = STRBUF_INIT;
			strbuf_addstr(&nr, target);
			strbuf_addch(&nr, '/');
			strbuf_addstr(&nr, rest.buf + at);
			strbuf_release(&rest);
			rest = nr;
			at = 0;
		}
	}
	if (!inside && !res.oom)
		inside = under(res.len ? res.buf : "/", mp, mplen);
	int r = res.oom || rest.oom ? -ENOMEM : 0;
	strbuf_release(&res);
	strbuf_release(&rest);
	if (r == 0)
		*ret_inside = inside;
	return r;
}

/* An absolute host path; *ret gets it cleaned and malloc'd. */
static int host_path(struct vctx *c, const char *fp, const char *field, json_t *j, char **ret)
{
	const struct sfs_spec_ctx *ctx = c->p->ctx;
	bool inside = false;
	char *clean;
	int r;

	if (!json_is_string(j))
		return ferr(c, fp, field, "must be a string (an absolute host path)");
	const char *s = json_string_value(j);
	if (s[0] != '/')
		return ferr(c, fp, field, "must be an absolute host path");
	if (json_string_length(j) > c->p->lim.max_path)
		return ferr(c, fp, field, "is longer than %zu bytes (the path_max mount option)",
			    c->p->lim.max_path);
	clean = clean_host_path(s);
	if (!clean)
		return -ENOMEM;
	if (ctx->mountpoint && ctx->mountpoint[0] == '/') {
		r = host_path_inside(clean, ctx->mountpoint, &inside);
		if (r < 0 || inside) {
			free(clean);
			return r < 0 ? r : ferr(c, fp, field, "path is inside the solverfs mount");
		}
	}
	*ret = clean;
	return 0;
}

/* Strict standard base64 (padded, no whitespace).  Returns the decoded length or -1. */
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

/* ---- field getters: j is the field's value or NULL when absent ---- */

static int get_str(struct vctx *c, json_t *obj, const char *fp, const char *field, bool required,
		   const char *def, const char **ret)
{
	json_t *j = json_object_get(obj, field);

	if (!j) {
		if (required)
			return ferr(c, fp, field, "is required");
		*ret = def;
		return 0;
	}
	if (!json_is_string(j))
		return ferr(c, fp, field, "must be a string");
	if (json_string_length(j) > c->p->lim.max_path)
		return ferr(c, fp, field, "is longer than %zu bytes (the path_max mount option)",
			    c->p->lim.max_path);
	*ret = json_string_value(j);
	return 0;
}

static int get_bool(struct vctx *c, json_t *obj, const char *fp, const char *field, bool *ret)
{
	json_t *j = json_object_get(obj, field);

	if (j && !json_is_boolean(j))
		return ferr(c, fp, field, "must be true or false");
	*ret = j && json_is_true(j);
	return 0;
}

/* A path inside a tree; "" (the root) only when allow_root. */
static int get_path(struct vctx *c, json_t *obj, const char *fp, const char *field, bool required,
		    bool allow_root, const char *def, const char **ret)
{
	const char *s, *why;
	int r = get_str(c, obj, fp, field, required, def, &s);

	if (r < 0)
		return r;
	why = tree_path_problem(s, strlen(s), allow_root);
	if (why)
		return ferr(c, fp, field, "%s", why);
	*ret = s;
	return 0;
}

/* A list of fnmatch patterns, as a new array. */
static int get_globs(struct vctx *c, json_t *obj, const char *fp, const char *field, json_t **ret)
{
	json_t *j = json_object_get(obj, field), *out, *g;
	size_t i;

	if (j && !json_is_array(j))
		return ferr(c, fp, field, "must be an array of glob patterns");
	out = json_array();
	if (!out)
		return -ENOMEM;
	json_array_foreach(j, i, g)
	{
		const char *s = json_string_value(g);
		if (!s || !*s || s[0] == '/' || json_string_length(g) > c->p->lim.max_path) {
			json_decref(out);
			return ferr(c, fp, field,
				    "element %zu: must be a non-empty relative glob pattern", i);
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
static int get_mode(struct vctx *c, json_t *obj, const char *fp, unsigned def, json_t **ret)
{
	json_t *j = json_object_get(obj, "mode");
	unsigned long m = def;
	char buf[8];

	if (j) {
		const char *s = json_string_value(j);
		size_t l = s ? strlen(s) : 0;
		if (!s || l == 0 || l > 8 || strspn(s, "01234567") != l)
			return ferr(c, fp, "mode",
				    "must be a string of octal digits like \"0755\"");
		m = strtoul(s, NULL, 8);
		if (m > 07777)
			return ferr(c, fp, "mode", "must be at most \"7777\"");
	}
	snprintf(buf, sizeof(buf), "%04lo", m);
	*ret = json_string(buf);
	return *ret ? 0 : -ENOMEM;
}

/* ---- refs ---- */

static int add_use(struct pv *pv, struct use u)
{
	if (pv->nuses == pv->cap) {
		size_t ncap = pv->cap ? 2 * pv->cap : 4;
		struct use *n = realloc(pv->uses, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		pv->uses = n;
		pv->cap = ncap;
	}
	pv->uses[pv->nuses++] = u;
	return 0;
}

/*
 * A reference "key" / "key:N" in field fp.field: checks it, records the use and
 * returns its two placeholders (filled in pass 3).  path: the selector used
 * through (NULL or "" for the whole input).
 */
static int ref_use(struct vctx *c, json_t *j, const char *fp, const char *field, const char *top,
		   const char *path, bool content_func, json_t **ret)
{
	struct parse *p = c->p;
	char key[KEY_MAX + 1];
	size_t klen;
	int out, r;
	void *idx;

	if (!json_is_string(j) || split_ref(json_string_value(j), &klen, &out) < 0)
		return ferr(c, fp, field, "must be a reference \"key\" or \"key:N\"");
	memcpy(key, json_string_value(j), klen);
	key[klen] = '\0';
	idx = strmap_get(&p->index, key);
	if (!idx)
		return ferr(c, fp, field, "no vertex \"%s\"", key);
	size_t vi = (size_t)(uintptr_t)idx - 1;
	if ((size_t)out >= p->noutputs[vi])
		return ferr(c, fp, field, "vertex \"%s\" has %zu output(s), no output %d", key,
			    p->noutputs[vi], out);
	json_t *ph = json_string("");
	if (!jp_ok(p, ph))
		return -ENOMEM;
	struct use u = {ph, vi, out, top, path && *path ? path : NULL, content_func};
	r = add_use(c->pv, u);
	if (r < 0) {
		json_decref(ph);
		return r;
	}
	*ret = ph;
	return 0;
}

/* ---- ops ---- */

static const char *const local_fields[] = {"path", "include", "exclude", NULL};
static const char *const file_fields[] = {"base", "actions", NULL};
static const char *const exec_fields[] = {"args",    "env",	  "cwd",    "mounts",
					  "timeout", "network", "rootfs", NULL};
static const char *const merge_fields[] = {"inputs", NULL};
static const char *const build_fields[] = {"input", "path", "output", NULL};
static const char *const *const op_fields[] = {local_fields, file_fields, exec_fields, merge_fields,
					       build_fields};

static int norm_local(struct vctx *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	struct parse *p = c->p;
	json_t *inc = NULL, *exc = NULL, *pj = json_object_get(raw, "path");
	char *path = NULL, sess[32];
	int r;

	if (!p->ctx->allow_local)
		return ferr(c, "", "op", "local is not allowed here (inside a build op)");
	if (!pj)
		return ferr(c, "", "path", "is required");
	r = host_path(c, "", "path", pj, &path);
	if (r < 0)
		return r;
	r = get_globs(c, raw, "", "include", &inc);
	if (r == 0)
		r = get_globs(c, raw, "", "exclude", &exc);
	if (r == 0) {
		snprintf(sess, sizeof(sess), "%" PRIu64, p->ctx->session);
		jp_set(p, op, "path", json_string(path));
		jp_set(p, op, "include", json_incref(inc));
		jp_set(p, op, "exclude", json_incref(exc));
		jp_set(p, op, "session", json_string(sess));
		strbuf_addf(sum, "local %s", path);
	}
	json_decref(inc);
	json_decref(exc);
	free(path);
	return r;
}

static int act_mkdir(struct vctx *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum)
{
	static const char *const f[] = {"path", "mode", "parents", NULL};
	const char *path;
	json_t *mode = NULL;
	bool parents = false;
	int r = unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = get_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = get_bool(c, a, fp, "parents", &parents);
	if (r == 0)
		r = get_mode(c, a, fp, 0755, &mode);
	if (r < 0)
		return r;
	jp_set(c->p, o, "path", json_string(path));
	jp_set(c->p, o, "mode", mode);
	jp_set(c->p, o, "parents", json_boolean(parents));
	strbuf_addf(sum, "mkdir /%s", path);
	return 0;
}

/* `data` and `data_base64` both become the canonical base64 of the bytes. */
static int mkfile_data(struct vctx *c, json_t *a, const char *fp, json_t **ret)
{
	json_t *d = json_object_get(a, "data"), *b = json_object_get(a, "data_base64");
	size_t max = c->p->lim.max_inline;

	if (d && b)
		return ferr(c, fp, "data", "give either data or data_base64, not both");
	if (d) {
		if (!json_is_string(d))
			return ferr(c, fp, "data", "must be a string");
		if (json_string_length(d) > max)
			return ferr_code(c, EFBIG, fp, "data",
					 "is larger than %zu bytes (the inline_max mount option)", max);
		*ret = base64_json(json_string_value(d), json_string_length(d));
		return *ret ? 0 : -ENOMEM;
	}
	if (!b) {
		*ret = json_string("");
		return *ret ? 0 : -ENOMEM;
	}
	if (!json_is_string(b))
		return ferr(c, fp, "data_base64", "must be a string");
	size_t len = json_string_length(b);
	if (len / 4 * 3 > max + 2)
		return ferr_code(c, EFBIG, fp, "data_base64",
				 "is larger than %zu bytes (the inline_max mount option)", max);
	unsigned char *buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = base64_decode(json_string_value(b), len, buf);
	int r = 0;
	if (n < 0)
		r = ferr(c, fp, "data_base64", "is not valid base64 (standard alphabet, padded)");
	else if ((size_t)n > max)
		r = ferr_code(c, EFBIG, fp, "data_base64",
			      "is larger than %zu bytes (the inline_max mount option)", max);
	else if (!(*ret = base64_json(buf, (size_t)n)))
		r = -ENOMEM;
	free(buf);
	return r;
}

static int act_mkfile(struct vctx *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum)
{
	static const char *const f[] = {"path", "data", "data_base64", "mode", NULL};
	const char *path;
	json_t *mode = NULL, *data = NULL;
	int r = unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = get_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = get_mode(c, a, fp, 0644, &mode);
	if (r == 0)
		r = mkfile_data(c, a, fp, &data);
	if (r < 0) {
		json_decref(mode);
		return r;
	}
	jp_set(c->p, o, "path", json_string(path));
	jp_set(c->p, o, "mode", mode);
	jp_set(c->p, o, "data_base64", data);
	strbuf_addf(sum, "mkfile /%s", path);
	return 0;
}

static int act_copy(struct vctx *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum)
{
	static const char *const f[] = {"from", "src", "dest", "include", "exclude", NULL};
	const char *src, *dest;
	json_t *inc = NULL, *exc = NULL, *from = json_object_get(a, "from");
	json_t *ph;
	int r = unknown_fields(c, fp, a, f, NULL);

	if (r == 0 && !from)
		r = ferr(c, fp, "from", "is required");
	if (r == 0)
		r = get_path(c, a, fp, "src", false, true, "", &src);
	if (r == 0)
		r = get_path(c, a, fp, "dest", false, true, "", &dest);
	if (r == 0)
		r = get_globs(c, a, fp, "include", &inc);
	if (r == 0)
		r = get_globs(c, a, fp, "exclude", &exc);
	if (r == 0)
		r = ref_use(c, from, fp, "from", "actions", src, true, &ph);
	if (r < 0) {
		json_decref(inc);
		json_decref(exc);
		return r;
	}
	jp_put(c->p, o, "from", ph);
	jp_set(c->p, o, "src", json_string(src));
	jp_set(c->p, o, "dest", json_string(dest));
	jp_set(c->p, o, "include", inc);
	jp_set(c->p, o, "exclude", exc);
	strbuf_addf(sum, "copy /%s /%s", src, dest);
	return 0;
}

static int act_rm(struct vctx *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum)
{
	static const char *const f[] = {"path", "allow_not_found", NULL};
	const char *path;
	bool anf = false;
	int r = unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = get_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = get_bool(c, a, fp, "allow_not_found", &anf);
	if (r < 0)
		return r;
	jp_set(c->p, o, "path", json_string(path));
	jp_set(c->p, o, "allow_not_found", json_boolean(anf));
	strbuf_addf(sum, "rm /%s", path);
	return 0;
}

static int act_symlink(struct vctx *c, json_t *a, const char *fp, json_t *o, struct strbuf *sum)
{
	static const char *const f[] = {"target", "path", NULL};
	const char *path, *target;
	int r = unknown_fields(c, fp, a, f, NULL);

	if (r == 0)
		r = get_path(c, a, fp, "path", true, false, NULL, &path);
	if (r == 0)
		r = get_str(c, a, fp, "target", true, NULL, &target);
	if (r == 0 && !*target)
		r = ferr(c, fp, "target", "must not be empty");
	if (r < 0)
		return r;
	jp_set(c->p, o, "target", json_string(target));
	jp_set(c->p, o, "path", json_string(path));
	strbuf_addf(sum, "symlink /%s -> %s", path, target);
	return 0;
}

typedef int act_fn(struct vctx *, json_t *, const char *, json_t *, struct strbuf *);
static const struct {
	const char *name;
	act_fn *fn;
} actions[] = {{"mkdir", act_mkdir},
	       {"mkfile", act_mkfile},
	       {"copy", act_copy},
	       {"rm", act_rm},
	       {"symlink", act_symlink}};

/* One action: {"<name>": {...}} normalised to the same shape. */
static int norm_action(struct vctx *c, size_t i, json_t *a, json_t *list, struct strbuf *sum)
{
	char fp[64], e[64];
	const char *name;
	json_t *body;
	size_t k;

	snprintf(fp, sizeof(fp), "actions[%zu]", i);
	if (!json_is_object(a) || json_object_size(a) != 1)
		return ferr(c, fp, "", "must be an object with one key: the action");
	name = json_object_iter_key(json_object_iter(a));
	body = json_object_iter_value(json_object_iter(a));
	for (k = 0; k < sizeof(actions) / sizeof(actions[0]); k++)
		if (strcmp(actions[k].name, name) == 0)
			break;
	if (k == sizeof(actions) / sizeof(actions[0]))
		return ferr(c, fp, esc(e, sizeof(e), name), "unknown action");
	snprintf(fp, sizeof(fp), "actions[%zu].%s", i, name);
	if (!json_is_object(body))
		return ferr(c, fp, "", "must be an object");
	json_t *wrap = json_object(), *o = json_object();
	if (!jp_ok(c->p, wrap) || !jp_ok(c->p, o)) {
		json_decref(wrap);
		json_decref(o);
		return -ENOMEM;
	}
	if (i > 0 && i < SUMMARY_ACTIONS)
		strbuf_addstr(sum, ", ");
	struct strbuf ignore = STRBUF_INIT;
	int r = actions[k].fn(c, body, fp, o, i < SUMMARY_ACTIONS ? sum : &ignore);
	strbuf_release(&ignore);
	jp_put(c->p, wrap, name, o);
	jp_put(c->p, list, NULL, wrap);
	return r;
}

static int norm_file(struct vctx *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *base = json_object_get(raw, "base"), *acts = json_object_get(raw, "actions"), *a;
	json_t *list;
	size_t i;
	int r = 0;

	c->pv->dedup = true;
	if (base && !json_is_null(base)) {
		json_t *ph;
		r = ref_use(c, base, "", "base", "base", NULL, true, &ph);
		if (r < 0)
			return r;
		jp_put(c->p, op, "base", ph);
	} else {
		jp_set(c->p, op, "base", json_null());
	}
	if (acts && !json_is_array(acts))
		return ferr(c, "", "actions", "must be an array of actions");
	list = json_array();
	if (!jp_ok(c->p, list))
		return -ENOMEM;
	jp_put(c->p, op, "actions", list); /* list stays valid: op holds it */
	if (c->p->oom)
		return -ENOMEM;
	strbuf_addstr(sum, "file");
	if (json_array_size(acts))
		strbuf_addch(sum, ' ');
	json_array_foreach(acts, i, a)
	{
		r = norm_action(c, i, a, list, sum);
		if (r < 0)
			return r;
	}
	if (json_array_size(acts) > SUMMARY_ACTIONS)
		strbuf_addf(sum, ", ... (%zu more)", json_array_size(acts) - SUMMARY_ACTIONS);
	return 0;
}

static int norm_args(struct vctx *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *args = json_object_get(raw, "args"), *out, *a;
	size_t i;

	if (!args)
		return ferr(c, "", "args", "is required");
	if (!json_is_array(args) || json_array_size(args) == 0)
		return ferr(c, "", "args", "must be a non-empty array of strings");
	out = json_array();
	if (!out)
		return -ENOMEM;
	json_array_foreach(args, i, a)
	{
		if (!json_is_string(a) || (i == 0 && json_string_length(a) == 0)) {
			json_decref(out);
			return ferr(c, "", "args", "must be a non-empty array of strings");
		}
		jp_check(c->p, json_array_append(out, a));
		strbuf_addf(sum, "%s%s", i ? " " : "", json_string_value(a));
	}
	jp_set(c->p, op, "args", out);
	return 0;
}

static int norm_env(struct vctx *c, json_t *raw, json_t *op)
{
	json_t *env = json_object_get(raw, "env"), *out, *val;
	const char *k;
	char e[128];

	if (env && !json_is_object(env))
		return ferr(c, "", "env", "must be an object of strings");
	out = json_object();
	if (!out)
		return -ENOMEM;
	json_object_foreach(env, k, val)
	{
		if (!*k || strchr(k, '=') || !json_is_string(val)) {
			json_decref(out);
			return ferr(c, "env", esc(e, sizeof(e), k),
				    "must be a string, named without '='");
		}
		jp_check(c->p, json_object_set(out, k, val));
	}
	jp_set(c->p, op, "env", out);
	return 0;
}

static int norm_mount(struct vctx *c, size_t i, json_t *m, json_t *list, struct strmap *dests,
		      size_t *noutputs)
{
	static const char *const f[] = {"dest", "input", "selector", "readonly", "output", NULL};
	char fp[32];
	const char *dest, *sel;
	bool ro = false, out = false;
	json_t *in;
	json_t *ph = json_null();
	int r;

	snprintf(fp, sizeof(fp), "mounts[%zu]", i);
	if (!json_is_object(m))
		return ferr(c, fp, "", "must be an object");
	in = json_object_get(m, "input");
	r = unknown_fields(c, fp, m, f, NULL);
	if (r == 0)
		r = get_path(c, m, fp, "dest", true, true, NULL, &dest);
	if (r == 0)
		r = get_path(c, m, fp, "selector", false, true, "", &sel);
	if (r == 0)
		r = get_bool(c, m, fp, "readonly", &ro);
	if (r == 0)
		r = get_bool(c, m, fp, "output", &out);
	if (r == 0 && ro && out)
		r = ferr(c, fp, "readonly", "an output mount cannot be read-only");
	if (r == 0 && *sel && (!in || json_is_null(in)))
		r = ferr(c, fp, "selector", "needs an input");
	if (r == 0 && strmap_get(dests, dest))
		r = ferr(c, fp, "dest", "another mount has the same dest");
	if (r == 0)
		r = strmap_put(dests, dest, (void *)1, NULL);
	if (r == 0 && in && !json_is_null(in)) {
		ph = NULL;
		r = ref_use(c, in, fp, "input", "mounts", sel, !out, &ph);
	}
	if (r < 0)
		return r;
	json_t *o = json_object();
	if (!jp_ok(c->p, o)) {
		json_decref(ph);
		return -ENOMEM;
	}
	jp_put(c->p, o, "input", ph);
	jp_set(c->p, o, "dest", json_string(dest));
	jp_set(c->p, o, "selector", json_string(sel));
	jp_set(c->p, o, "readonly", json_boolean(ro));
	jp_set(c->p, o, "output", json_boolean(out));
	jp_put(c->p, list, NULL, o);
	*noutputs += out;
	return 0;
}

/*
 * `rootfs`: the last input of the exec, a whole tree.  Written only when given,
 * so that the digests of execs without it stay what they were before the
 * field existed.
 */
static int norm_rootfs(struct vctx *c, json_t *raw, json_t *op)
{
	json_t *rf = json_object_get(raw, "rootfs"), *ph;
	int r;

	if (!rf || json_is_null(rf))
		return 0;
	if ((r = ref_use(c, rf, "", "rootfs", "rootfs", NULL, true, &ph)) < 0)
		return r;
	jp_put(c->p, op, "rootfs", ph);
	return c->p->oom ? -ENOMEM : 0;
}

static int norm_exec(struct vctx *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	struct parse *p = c->p;
	json_t *mounts = json_object_get(raw, "mounts"), *m, *t = json_object_get(raw, "timeout");
	struct strmap dests = STRMAP_INIT;
	const char *cwd;
	bool net = false;
	size_t i;
	int r = norm_args(c, raw, op, sum);

	if (r == 0)
		r = norm_env(c, raw, op);
	if (r == 0)
		r = get_path(c, raw, "", "cwd", false, true, "", &cwd);
	if (r == 0)
		r = get_bool(c, raw, "", "network", &net);
	if (r == 0 && net && !p->ctx->allow_network)
		r = ferr(c, "", "network", "network access is not allowed here");
	if (r == 0 && t &&
	    (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT_MAX))
		r = ferr(c, "", "timeout", "must be a whole number of seconds (0: none)");
	if (r == 0 && mounts && !json_is_array(mounts))
		r = ferr(c, "", "mounts", "must be an array of mounts");
	if (r < 0)
		return r;
	c->pv->v.timeout = t ? (int)json_integer_value(t) : 0;
	jp_set(p, op, "cwd", json_string(cwd));
	jp_set(p, op, "network", json_boolean(net));
	json_t *list = json_array();
	if (!jp_ok(p, list))
		return -ENOMEM;
	jp_put(p, op, "mounts", list);
	if (p->oom)
		return -ENOMEM;
	c->pv->v.noutputs = 0;
	json_array_foreach(mounts, i, m)
	{
		r = norm_mount(c, i, m, list, &dests, &c->pv->v.noutputs);
		if (r < 0)
			break;
	}
	strmap_release(&dests);
	return r == 0 ? norm_rootfs(c, raw, op) : r;
}

static int norm_merge(struct vctx *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *ins = json_object_get(raw, "inputs"), *in;
	char fp[32];
	size_t i;

	if (!ins)
		return ferr(c, "", "inputs", "is required");
	if (!json_is_array(ins) || json_array_size(ins) < 2)
		return ferr(c, "", "inputs", "must be an array of 2 or more references");
	json_t *list = json_array();
	if (!jp_ok(c->p, list))
		return -ENOMEM;
	jp_put(c->p, op, "inputs", list);
	if (c->p->oom)
		return -ENOMEM;
	json_array_foreach(ins, i, in)
	{
		json_t *ph;
		snprintf(fp, sizeof(fp), "inputs[%zu]", i);
		int r = ref_use(c, in, fp, "", "inputs", NULL, true, &ph);
		if (r < 0)
			return r;
		jp_put(c->p, list, NULL, ph);
	}
	strbuf_addf(sum, "merge %zu inputs", json_array_size(ins));
	return 0;
}

static int norm_build(struct vctx *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *in = json_object_get(raw, "input");
	const char *path, *out;
	size_t klen;
	int n, r;
	json_t *ph;

	if (!in)
		return ferr(c, "", "input", "is required");
	r = get_path(c, raw, "", "path", false, false, "solverfs.json", &path);
	if (r == 0)
		r = get_str(c, raw, "", "output", false, "", &out);
	if (r == 0 && *out && split_ref(out, &klen, &n) < 0)
		r = ferr(c, "", "output",
			 "must be a reference \"key\" or \"key:N\" of the inner spec");
	if (r == 0)
		r = ref_use(c, in, "", "input", "input", NULL, true, &ph);
	if (r < 0)
		return r;
	jp_put(c->p, op, "input", ph);
	jp_set(c->p, op, "path", json_string(path));
	jp_set(c->p, op, "output", json_string(out));
	strbuf_addf(sum, "build /%s", path);
	return 0;
}

typedef int op_fn(struct vctx *, json_t *, json_t *, struct strbuf *);
static op_fn *const op_norm[] = {norm_local, norm_file, norm_exec, norm_merge, norm_build};

/* ---- vertices ---- */

static int strv_host_paths(struct vctx *c, json_t *j, const char *field, char ***ret)
{
	char **v, fp[48];
	json_t *e;
	size_t i;

	if (!json_is_array(j))
		return ferr(c, "", field, "must be an array of absolute host paths");
	if (json_array_size(j) == 0) {
		*ret = NULL;
		return 0;
	}
	v = calloc(json_array_size(j) + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	json_array_foreach(j, i, e)
	{
		snprintf(fp, sizeof(fp), "%s[%zu]", field, i);
		int r = host_path(c, fp, "", e, &v[i]);
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

static int vertex_options(struct vctx *c, json_t *raw)
{
	struct sfs_spec_vertex *v = &c->pv->v;
	json_t *d = json_object_get(raw, "description"), *e = json_object_get(raw, "export_cache");
	json_t *cf = json_object_get(raw, "cache_from"), *val;
	const char *name, *k;
	char ek[64];
	int r = get_str(c, raw, "", "name", false, c->key, &name);

	if (r == 0 && strlen(name) > c->p->lim.max_name)
		return ferr(c, "", "name", "is longer than %zu bytes (the name_max mount option)",
			    c->p->lim.max_name);
	if (r == 0)
		r = get_bool(c, raw, "", "ignore_cache", &v->ignore_cache);
	if (r < 0)
		return r;
	if (e && !json_is_boolean(e))
		return ferr(c, "", "export_cache", "must be true or false");
	v->export_cache = e ? json_is_true(e) : -1;
	if (d && !json_is_object(d))
		return ferr(c, "", "description", "must be an object of strings");
	json_object_foreach(d, k, val) if (!json_is_string(val)) return ferr(
	    c, "description", esc(ek, sizeof(ek), k), "must be a string");
	v->description = json_incref(d);
	if (!(v->name = strdup(name)))
		return -ENOMEM;
	return cf ? strv_host_paths(c, cf, "cache_from", &v->cache_from) : 0;
}

static int op_kind(const char *s, enum sfs_op_kind *ret)
{
	for (size_t k = 0; s && k < sizeof(op_names) / sizeof(op_names[0]); k++)
		if (strcmp(s, op_names[k]) == 0) {
			*ret = (enum sfs_op_kind)k;
			return 0;
		}
	return -EINVAL;
}

static const char *const vertex_fields[] = {
    "op", "name", "description", "ignore_cache", "export_cache", "cache_from", NULL};

/* Pass 1 for vertex i. */
static int parse_vertex(struct parse *p, size_t i)
{
	struct pv *pv = &p->pv[i];
	struct vctx c = {p, pv, p->keys[i]};
	json_t *raw = p->raw[i], *opj;
	struct strbuf sum = STRBUF_INIT;
	enum sfs_op_kind kind;
	int r;

	if (!json_is_object(raw))
		return ferr(&c, "", "", "a vertex must be an object");
	r = no_nul(&c, raw, NULL);
	if (r < 0)
		return r;
	opj = json_object_get(raw, "op");
	if (!opj)
		return ferr(&c, "", "op", "is required");
	if (op_kind(json_string_value(opj), &kind) < 0)
		return ferr(&c, "", "op", "unknown op (local, file, exec, merge or build)");
	pv->v.kind = kind;
	pv->v.noutputs = 1;
	if (!(pv->v.key = strdup(p->keys[i])))
		return -ENOMEM;
	r = unknown_fields(&c, "", raw, vertex_fields, op_fields[kind]);
	if (r == 0)
		r = vertex_options(&c, raw);
	if (r < 0)
		return r;
	json_t *op = json_object();
	if (!jp_ok(p, op))
		return -ENOMEM;
	pv->v.op = op;
	jp_set(p, op, "op", json_string(op_names[kind]));
	r = op_norm[kind](&c, raw, op, &sum);
	if (r == 0 && (sum.oom || p->oom))
		r = -ENOMEM;
	pv->v.summary = r == 0 ? strbuf_detach(&sum, NULL) : NULL;
	strbuf_release(&sum);
	return r;
}

/* How many outputs each vertex has, before any is validated: refs are checked
 * against it while the vertices are walked in key order. */
static size_t count_outputs(json_t *raw)
{
	enum sfs_op_kind kind;
	json_t *m;
	size_t i, n = 0;

	if (op_kind(json_string_value(json_object_get(raw, "op")), &kind) < 0)
		return 0;
	if (kind != SFS_OP_EXEC)
		return 1;
	json_array_foreach(json_object_get(raw, "mounts"), i, m) n +=
	    json_is_true(json_object_get(m, "output"));
	return n;
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
	struct vctx c = {p, NULL, NULL};

	if (!json_is_object(verts))
		return ferr(&c, "", "vertices", "must be an object of vertices");
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
					esc(e, sizeof(e), k));
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

/* ---- pass 2: topological order ---- */

static void heap_push(size_t *h, size_t *n, size_t x)
{
	size_t i = (*n)++;
	for (; i > 0 && h[(i - 1) / 2] > x; i = (i - 1) / 2)
		h[i] = h[(i - 1) / 2];
	h[i] = x;
}

static size_t heap_pop(size_t *h, size_t *n)
{
	size_t top = h[0], x = h[--*n], i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[c] >= x)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
	return top;
}

/* The first use of vertex i that points at a vertex not yet ordered. */
static const struct use *pending_use(struct parse *p, size_t i, const size_t *indeg)
{
	for (size_t k = 0; k < p->pv[i].nuses; k++)
		if (indeg[p->pv[i].uses[k].vertex])
			return &p->pv[i].uses[k];
	return NULL;
}

/* Some vertices were left over by Kahn: every one waits on another left over, so
 * following those edges from any of them must come back to a vertex on a cycle. */
static int report_cycle(struct parse *p, const size_t *indeg)
{
	size_t start = 0, w;
	struct strbuf sb = STRBUF_INIT;
	struct vctx c = {p, NULL, NULL};
	unsigned char *seen = calloc(p->n, 1);

	if (!seen)
		return -ENOMEM;
	while (!indeg[start])
		start++;
	for (w = start; !seen[w]; w = pending_use(p, w, indeg)->vertex)
		seen[w] = 1;
	free(seen);
	c.key = p->keys[w];
	const char *field = pending_use(p, w, indeg)->field;
	size_t x = w, hops = 0;
	do {
		strbuf_addf(&sb, "%s -> ", p->keys[x]);
		x = pending_use(p, x, indeg)->vertex;
	} while (x != w && ++hops < 8);
	strbuf_addstr(&sb, x == w ? p->keys[w] : "...");
	int r = sb.oom ? -ENOMEM : ferr(&c, "", field, "dependency cycle: %s", sb.buf);
	strbuf_release(&sb);
	return r;
}

/* Fills order[] with old indexes so inputs come first; ties by key. */
static int topo_sort(struct parse *p, size_t *order)
{
	size_t n = p->n, nheap = 0, done = 0, nedges = 0;
	size_t *indeg = calloc(n + 1, sizeof(size_t)), *start = calloc(n + 2, sizeof(size_t));
	size_t *heap = malloc((n + 1) * sizeof(size_t)), *users = NULL;
	int r = -ENOMEM;

	if (!indeg || !start || !heap)
		goto out;
	for (size_t i = 0; i < n; i++) {
		indeg[i] = p->pv[i].nuses;
		nedges += p->pv[i].nuses;
		for (size_t k = 0; k < p->pv[i].nuses; k++)
			start[p->pv[i].uses[k].vertex + 1]++;
	}
	for (size_t i = 0; i < n; i++)
		start[i + 1] += start[i];
	users = malloc((nedges + 1) * sizeof(size_t));
	if (!users)
		goto out;
	size_t *fill = heap; /* reuse as a cursor before the heap is needed */
	memcpy(fill, start, n * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < p->pv[i].nuses; k++)
			users[fill[p->pv[i].uses[k].vertex]++] = i;
	for (size_t i = 0; i < n; i++)
		if (!indeg[i])
			heap_push(heap, &nheap, i);
	while (nheap) {
		size_t u = heap_pop(heap, &nheap);
		order[done++] = u;
		for (size_t e = start[u]; e < start[u + 1]; e++)
			if (--indeg[users[e]] == 0)
				heap_push(heap, &nheap, users[e]);
	}
	r = done == n ? 0 : report_cycle(p, indeg);
out:
	free(indeg);
	free(start);
	free(heap);
	free(users);
	return r;
}

/* ---- pass 3: inputs, selectors, digests ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted, NUL-joined set of paths; "" when a use is whole. */
static int make_selector(struct sfs_spec_input *in, const char **paths, size_t n, bool whole)
{
	struct strbuf sb = STRBUF_INIT;

	in->selector_digest[0] = '\0';
	if (!whole) {
		qsort(paths, n, sizeof(*paths), cmp_str);
		for (size_t k = 0; k < n; k++) {
			if (k && strcmp(paths[k], paths[k - 1]) == 0)
				continue;
			if (sb.len)
				strbuf_addch(&sb, '\0');
			strbuf_addstr(&sb, paths[k]);
		}
		sfs_sha256_digest(sb.buf, sb.len, in->selector_digest);
	}
	strbuf_addstr(&sb, "");
	if (sb.oom) {
		strbuf_release(&sb);
		return -ENOMEM;
	}
	in->selector = strbuf_detach(&sb, &in->selector_len);
	return 0;
}

/* Gives each use its input index (uidx), creating the inputs. */
static int assign_inputs(struct parse *p, struct pv *pv, size_t *uidx)
{
	struct strmap seen = STRMAP_INIT;
	char ref[SFS_DIGEST_SIZE + 16];
	int r = 0;

	for (size_t k = 0; k < pv->nuses && r == 0; k++) {
		struct use *u = &pv->uses[k];
		void *old = NULL;
		snprintf(ref, sizeof(ref), "%s:%d", p->pv[u->vertex].v.digest, u->output);
		if (pv->dedup)
			old = strmap_get(&seen, ref);
		uidx[k] = old ? (size_t)(uintptr_t)old - 1 : pv->v.ninputs++;
		if (!old) {
			struct sfs_spec_input *in = &pv->v.inputs[uidx[k]];
			in->ref = (struct sfs_ref){u->vertex, u->output};
			in->content_func = u->content_func;
			if (pv->dedup && k + 1 < pv->nuses) /* no lookups after the last */
				r = strmap_put(&seen, ref, (void *)(uintptr_t)(pv->v.ninputs),
					       NULL);
		}
		if (json_string_set(u->op_node, ref) < 0)
			r = -ENOMEM;
	}
	strmap_release(&seen);
	return r;
}

static int make_selectors(struct pv *pv, const size_t *uidx)
{
	size_t ni = pv->v.ninputs, nu = pv->nuses;
	size_t *start = calloc(ni + 2, sizeof(size_t));
	const char **paths = malloc((nu + 1) * sizeof(*paths));
	bool *whole = calloc(ni + 1, sizeof(bool));
	int r = -ENOMEM;

	if (!start || !paths || !whole)
		goto out;
	for (size_t k = 0; k < nu; k++) {
		start[uidx[k] + 2]++;
		whole[uidx[k]] |= !pv->uses[k].path;
	}
	for (size_t i = 0; i < ni; i++)
		start[i + 2] += start[i + 1];
	for (size_t k = 0; k < nu; k++) /* start[i + 1] is the fill cursor of input i */
		paths[start[uidx[k] + 1]++] = pv->uses[k].path ? pv->uses[k].path : "";
	r = 0;
	for (size_t i = 0; i < ni && r == 0; i++)
		r = make_selector(&pv->v.inputs[i], paths + start[i], start[i + 1] - start[i],
				  whole[i]);
out:
	free(start);
	free(paths);
	free(whole);
	return r;
}

/* The cache map is written from v->op (no second tree): each ref placeholder as
 * its input index, without the mounts' "selector" and local's "session". */
struct map_writer {
	const struct pv *pv;
	struct map_ref {
		const json_t *node;
		size_t input;
	} * refs; /* sorted by node */
};

static int cmp_map_ref(const void *a, const void *b)
{
	const json_t *x = ((const struct map_ref *)a)->node, *y = ((const struct map_ref *)b)->node;
	return x < y ? -1 : x > y;
}

static bool map_subst(void *arg, const json_t *value, json_int_t *ret)
{
	const struct map_writer *w = arg;
	struct map_ref key = {value, 0}, *hit;

	if (!json_is_string(value))
		return false;
	hit = bsearch(&key, w->refs, w->pv->nuses, sizeof(key), cmp_map_ref);
	if (hit)
		*ret = (json_int_t)hit->input;
	return hit != NULL;
}

/* Structural, not by name alone: an env variable may be called "selector". */
static bool map_skip(void *arg, const json_t *obj, const char *key)
{
	const struct map_writer *w = arg;
	const json_t *op = w->pv->v.op;

	if (w->pv->v.kind == SFS_OP_LOCAL)
		return obj == op && strcmp(key, "session") == 0;
	if (w->pv->v.kind == SFS_OP_EXEC) /* mounts are the only other objects but env */
		return obj != op && obj != json_object_get(op, "env") &&
		       strcmp(key, "selector") == 0;
	return false;
}

static int cache_map_digest(struct pv *pv, const size_t *uidx)
{
	struct map_writer w = {pv, calloc(pv->nuses + 1, sizeof(struct map_ref))};
	struct sfs_canon_hooks h = {map_subst, map_skip, &w};
	size_t len;
	char *map;

	if (!w.refs)
		return -ENOMEM;
	for (size_t k = 0; k < pv->nuses; k++)
		w.refs[k] = (struct map_ref){pv->uses[k].op_node, uidx[k]};
	qsort(w.refs, pv->nuses, sizeof(*w.refs), cmp_map_ref);
	map = sfs_canonical_json_hooks(pv->v.op, &h, &len);
	free(w.refs);
	if (!map)
		return -ENOMEM;
	sfs_sha256_digest(map, len, pv->v.cache_map_digest);
	free(map);
	return 0;
}

static int finish_vertex(struct parse *p, struct pv *pv)
{
	size_t *uidx = malloc((pv->nuses + 1) * sizeof(size_t));
	int r = -ENOMEM;

	pv->v.inputs = calloc(pv->nuses ? pv->nuses : 1, sizeof(*pv->v.inputs));
	if (!uidx || !pv->v.inputs)
		goto out;
	r = assign_inputs(p, pv, uidx);
	if (r == 0)
		r = make_selectors(pv, uidx);
	if (r < 0)
		goto out;
	pv->v.op_bytes = sfs_canonical_json(pv->v.op, &pv->v.op_len);
	if (!pv->v.op_bytes) {
		r = -ENOMEM;
		goto out;
	}
	sfs_sha256_digest(pv->v.op_bytes, pv->v.op_len, pv->v.digest);
	r = cache_map_digest(pv, uidx);
	if (r == 0) {
		/* the bytes are the op from now on (sfs_spec_vertex_op); the uses'
		 * op_node pointers die with the tree and are not read again */
		json_decref(pv->v.op);
		pv->v.op = NULL;
	}
out:
	free(uidx);
	return r;
}

/* ---- job-level fields ---- */

static int parse_outputs(struct parse *p, json_t *outs, struct sfs_spec *s)
{
	struct vctx c = {p, NULL, NULL};
	char key[KEY_MAX + 1], fp[32];
	json_t *o;
	size_t i, klen;
	int out;

	if (!outs)
		return ferr(&c, "", "outputs", "is required");
	if (!json_is_array(outs) || json_array_size(outs) == 0)
		return ferr(&c, "", "outputs", "must be a non-empty array of references");
	s->noutputs = json_array_size(outs);
	s->outputs = calloc(s->noutputs, sizeof(*s->outputs));
	s->output_refs = calloc(s->noutputs + 1, sizeof(*s->output_refs));
	if (!s->outputs || !s->output_refs)
		return -ENOMEM;
	json_array_foreach(outs, i, o)
	{
		snprintf(fp, sizeof(fp), "outputs[%zu]", i);
		if (!json_is_string(o) || split_ref(json_string_value(o), &klen, &out) < 0)
			return ferr(&c, fp, "", "must be a reference \"key\" or \"key:N\"");
		memcpy(key, json_string_value(o), klen);
		key[klen] = '\0';
		void *idx = strmap_get(&p->index, key);
		if (!idx)
			return ferr(&c, fp, "", "no vertex \"%s\"", key);
		size_t vi = (size_t)(uintptr_t)idx - 1;
		if ((size_t)out >= p->noutputs[vi])
			return ferr(&c, fp, "", "vertex \"%s\" has %zu output(s), no output %d",
				    key, p->noutputs[vi], out);
		s->outputs[i] = (struct sfs_ref){vi, out};
		if (out ? asprintf(&s->output_refs[i], "%s:%d", key, out) < 0
			: !(s->output_refs[i] = strdup(key)))
			return -ENOMEM;
	}
	return 0;
}

static int parse_export(struct parse *p, json_t *e, struct sfs_spec *s)
{
	static const char *const f[] = {"mode", "form", NULL};
	static const char *const modes[] = {"min", "max", "remote-only"};
	struct vctx c = {p, NULL, NULL};
	const char *mode = "min", *form = "image";
	size_t k;
	int r;

	s->export_mode = SFS_EXPORT_NONE;
	s->export_form = SFS_FORM_IMAGE;
	if (!e)
		return 0;
	if (!json_is_object(e))
		return ferr(&c, "", "export", "must be an object {\"mode\", \"form\"}");
	r = unknown_fields(&c, "export", e, f, NULL);
	if (r == 0)
		r = get_str(&c, e, "export", "mode", false, "min", &mode);
	if (r == 0)
		r = get_str(&c, e, "export", "form", false, "image", &form);
	if (r < 0)
		return r;
	for (k = 0; k < 3 && strcmp(mode, modes[k]); k++)
		;
	if (k == 3)
		return ferr(&c, "export", "mode", "must be \"min\", \"max\" or \"remote-only\"");
	s->export_mode = (enum sfs_export_mode)(SFS_EXPORT_MIN + k);
	if (strcmp(form, "image") && strcmp(form, "manifest-list"))
		return ferr(&c, "export", "form", "must be \"image\" or \"manifest-list\"");
	s->export_form = strcmp(form, "image") ? SFS_FORM_MANIFEST_LIST : SFS_FORM_IMAGE;
	return 0;
}

static const char *const job_fields[] = {"vertices",   "outputs",      "export",
					 "cache_from", "ignore_cache", NULL};

static int parse_job(struct parse *p, json_t *root, struct sfs_spec *s)
{
	struct vctx c = {p, NULL, NULL};
	json_t *verts = json_object_get(root, "vertices"),
	       *cf = json_object_get(root, "cache_from");
	int r = unknown_fields(&c, "", root, job_fields, NULL);

	if (r == 0)
		r = no_nul(&c, root, "vertices");
	if (r == 0 && !verts)
		r = ferr(&c, "", "vertices", "is required");
	if (r == 0)
		r = index_vertices(p, verts);
	for (size_t i = 0; r == 0 && i < p->n; i++)
		r = parse_vertex(p, i);
	if (r == 0)
		r = parse_outputs(p, json_object_get(root, "outputs"), s);
	if (r == 0)
		r = parse_export(p, json_object_get(root, "export"), s);
	if (r == 0)
		r = get_bool(&c, root, "", "ignore_cache", &s->ignore_cache);
	if (r == 0 && cf)
		r = strv_host_paths(&c, cf, "cache_from", &s->cache_from);
	return r;
}

/* ---- assembly ---- */

static void strv_free(char **v)
{
	for (char **x = v; x && *x; x++)
		free(*x);
	free(v);
}

static void vertex_release(struct sfs_spec_vertex *v)
{
	free(v->key);
	free(v->name);
	json_decref(v->op);
	free(v->op_bytes);
	for (size_t i = 0; v->inputs && i < v->ninputs; i++)
		free(v->inputs[i].selector);
	free(v->inputs);
	strv_free(v->cache_from);
	json_decref(v->description);
	free(v->summary);
}

static void parse_release(struct parse *p)
{
	for (size_t i = 0; p->pv && i < p->n; i++) {
		vertex_release(&p->pv[i].v);
		free(p->pv[i].uses);
	}
	free(p->pv);
	free(p->keys);
	free(p->raw);
	free(p->noutputs);
	strmap_release(&p->index);
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

static int parse_root(struct parse *p, const char *buf, size_t len, struct sfs_spec *s)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	size_t *order = NULL;
	int r;

	if (!root)
		return invalid_json(p, &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return sfs_errf(p->ret_msg, EINVAL, "a spec must be a JSON object");
	}
	r = parse_job(p, root, s);
	if (r == 0) {
		order = malloc((p->n + 1) * sizeof(size_t));
		r = order ? topo_sort(p, order) : -ENOMEM;
	}
	for (size_t k = 0; r == 0 && k < p->n; k++)
		r = finish_vertex(p, &p->pv[order[k]]);
	if (r == 0)
		r = place_vertices(p, order, s);
	free(order);
	json_decref(root);
	return r;
}

int sfs_spec_parse(const char *buf, size_t len, const struct sfs_spec_ctx *ctx,
		   struct sfs_spec **ret, char **ret_msg)
{
	static const struct sfs_spec_limits defaults = {DEFAULT_MAX_BYTES, DEFAULT_MAX_VERTICES,
							DEFAULT_MAX_PATH, DEFAULT_MAX_INLINE,
							DEFAULT_MAX_NAME};
	struct parse p = {.ctx = ctx, .ret_msg = ret_msg, .index = STRMAP_INIT};
	struct sfs_spec *s;
	int r;

	p.lim = ctx->limits ? *ctx->limits : defaults;
	if (!p.lim.max_bytes)
		p.lim.max_bytes = DEFAULT_MAX_BYTES;
	if (!p.lim.max_vertices)
		p.lim.max_vertices = DEFAULT_MAX_VERTICES;
	if (!p.lim.max_path)
		p.lim.max_path = DEFAULT_MAX_PATH;
	if (!p.lim.max_inline)
		p.lim.max_inline = DEFAULT_MAX_INLINE;
	if (!p.lim.max_name)
		p.lim.max_name = DEFAULT_MAX_NAME;
	if (len > p.lim.max_bytes)
		return sfs_errf(ret_msg, EFBIG, "the spec is larger than %zu bytes",
				p.lim.max_bytes);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	r = parse_root(&p, buf, len, s);
	parse_release(&p);
	if (r < 0) {
		sfs_spec_free(s);
		if (r == -ENOMEM)
			sfs_errf(ret_msg, ENOMEM, "out of memory while parsing the spec");
		return r;
	}
	*ret = s;
	return 0;
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
	strv_free(s->output_refs);
	strv_free(s->cache_from);
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
