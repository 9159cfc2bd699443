/*
 * local.c — the `local` op: a snapshot of a host file or directory (README.md "The spec").
 *
 * It is a root with two cache maps (README.md "Identity and digests"):
 *   map 0: sha256 of the canonical JSON of the op's fields without `session`,
 *          plus the submitter's uid and a metadata digest of the selected
 *          entries (path, type, size, mode, mtime, ctime, inode from lstat; no
 *          file is read), so an untouched tree hits without reading contents;
 *   map 1 (final): the content itself: the tree is ingested and its id is the
 *          map digest, so a touched but unchanged tree still hits.
 * exec returns the tree map 1 ingested, ingesting now if map 1 never ran.
 *
 * The metadata walk records a superset of what tree_ingest keeps (every dir is
 * recorded, excluded paths are not descended, as in tree_ingest), so a change
 * to anything the result could hold changes map 0.  ctime and the inode are
 * recorded beside mtime so that a content change hidden by resetting mtime
 * (touch -d, cp -p) still misses map 0.  An entry whose ctime is less than 2 s
 * old makes map 0 unique to this walk (docs/semantics.md §1.9: racily clean).
 *
 * Credentials: host files are read for the job that asked.  When the daemon is
 * root and the job is not, both walks run with the job's fsuid/fsgid and no
 * supplementary groups on this worker thread (cache/creds.h).  The metadata
 * walk also checks that each selected entry is readable (faccessat
 * AT_EACCESS), since it opens no file; the ingest opens every file as the job,
 * walking from the dir fds it opened (never a path again), and writes the
 * blobs into STATE_DIR with the daemon's credentials paused back in.  So a
 * symlink swapped in between the two walks gains nothing.  The job's own
 * supplementary groups are not known here, so files readable only through
 * them are refused.
 *
 * op->priv (struct local_priv) is used by one worker at a time (the solver
 * serialises the calls of one vertex).
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "array.h"
#include "clock.h"
#include "creds.h"
#include "err.h"
#include "strbuf.h"
#include "strv.h"
#include "specop.h"
#include "statcache.h"
#include "ops.h"

struct local_priv {
	bool have_tree;
	char tree_id[SFS_DIGEST_SIZE];
};

/* The fields of a local vertex, read once by norm_local (vertex params). */
struct local_params {
	char *path;	/* absolute, cleaned */
	char **include; /* NULL-terminated */
	char **exclude;
};

/* ---- the metadata walk ---- */

struct lwalk {
	struct sfs_op_ctx *ctx;
	const struct local_params *p;
	bool check; /* access checks under the job's fsuid */
	struct sfs_sha256 h;
	int64_t start; /* CLOCK_REALTIME at the walk's start */
	bool racy;     /* an entry changed within STATCACHE_RACY_NS of start */
	struct strbuf full; /* host path of the current entry */
	struct strbuf rel;  /* its path in the tree */
	char **ret_msg;
	int depth;
	char shown[256]; /* see shown() */
};

static bool match_any(char *const *globs, const char *path)
{
	for (; globs && *globs; globs++)
		if (tree_glob_match(*globs, path))
			return true;
	return false;
}

static void record(struct lwalk *w, const char *rel, const struct stat *st)
{
	char buf[256];
	int n = snprintf(
	    buf, sizeof(buf), "%o %lld %lld.%09ld %lld.%09ld %llu", (unsigned)st->st_mode,
	    (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
	    (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec, (unsigned long long)st->st_ino);

	sfs_sha256_update(&w->h, rel, strlen(rel) + 1);
	sfs_sha256_update(&w->h, buf, (size_t)n + 1);
	/* Every write moves ctime to now: an entry changed this recently may change
	 * again within its timestamp tick, leaving this record equal (racily clean). */
	if ((int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec >
	    w->start - STATCACHE_RACY_NS)
		w->racy = true;
}

/* w->full for a message: a path longer than fits in one is cut to its end. */
static const char *shown(struct lwalk *w)
{
	size_t keep = sizeof(w->shown) - 4;

	if (w->full.len < sizeof(w->shown))
		return w->full.buf;
	snprintf(w->shown, sizeof(w->shown), "...%s", w->full.buf + w->full.len - keep);
	return w->shown;
}

static int check_access(struct lwalk *w, int mode)
{
	if (!w->check || faccessat(AT_FDCWD, w->full.buf, mode, AT_EACCESS) == 0)
		return 0;
	return sfs_errf(w->ret_msg, errno, "cannot read \"%s\": %m", shown(w));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of the dir w->full. */
static int list_dir(struct lwalk *w, char ***ret, size_t *ret_n)
{
	DIR *d = opendir(w->full.buf);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r = 0;

	if (!d)
		return sfs_errf(w->ret_msg, errno, "cannot read \"%s\": %m", shown(w));
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((r = sfs_grow((void **)&names, &cap, n + 1, sizeof(*names))) < 0)
			break;
		if (!(names[n] = strdup(de->d_name)))
			r = -ENOMEM;
		else
			n++;
	}
	closedir(d);
	if (r == 0)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret = names;
	*ret_n = n;
	return r;
}

static int walk_entry(struct lwalk *w, bool parent_taken);

static int walk_children(struct lwalk *w, bool taken)
{
	size_t flen = w->full.len, rlen = w->rel.len, n = 0;
	char **names = NULL;
	int r;

	if (sfs_op_cancelled(w->ctx))
		return sfs_errf(w->ret_msg, ECANCELED, "cancelled");
	if (++w->depth > TREE_MAX_DEPTH)
		return sfs_errf(w->ret_msg, ELOOP,
				"\"%s\": too deep, more than %d levels of directories", shown(w),
				TREE_MAX_DEPTH);
	r = list_dir(w, &names, &n);
	for (size_t i = 0; i < n; i++) {
		if (r == 0) {
			strbuf_addch(&w->full, '/');
			strbuf_addstr(&w->full, names[i]);
			if (rlen)
				strbuf_addch(&w->rel, '/');
			strbuf_addstr(&w->rel, names[i]);
			r = w->full.oom || w->rel.oom ? -ENOMEM : walk_entry(w, taken);
			w->full.len = flen;
			w->full.buf[flen] = '\0';
			w->rel.len = rlen;
			if (w->rel.buf)
				w->rel.buf[rlen] = '\0';
		}
		free(names[i]);
	}
	free(names);
	w->depth--;
	return r;
}

/* w->full and w->rel name an entry below the root. */
static int walk_entry(struct lwalk *w, bool parent_taken)
{
	struct stat st;
	bool taken;
	int r;

	if (lstat(w->full.buf, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return sfs_errf(w->ret_msg, errno, "cannot read \"%s\": %m", shown(w));
	}
	if (match_any(w->p->exclude, w->rel.buf))
		return 0;
	taken = parent_taken || !w->p->include[0] || match_any(w->p->include, w->rel.buf);
	if (S_ISDIR(st.st_mode)) {
		record(w, w->rel.buf, &st);
		if ((r = check_access(w, R_OK | X_OK)) < 0)
			return r;
		return walk_children(w, taken);
	}
	if (!taken || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
		return 0; /* not selected, or a special file the ingest skips */
	record(w, w->rel.buf, &st);
	return S_ISREG(st.st_mode) ? check_access(w, R_OK) : 0;
}

/*
 * Walks the selected entries of p->path; *ret_meta is their metadata digest, or,
 * when an entry changed too recently to trust its metadata (record()), a digest
 * no other walk makes, so that no later job hits on this one's map 0.
 */
static int local_walk(struct sfs_op_ctx *ctx, const struct local_params *p, bool check,
		      char ret_meta[SFS_DIGEST_SIZE], char **ret_msg)
{
	static uint64_t racy_walks;
	struct lwalk w = {.ctx = ctx,
			  .p = p,
			  .check = check,
			  .start = sfs_now_ns(),
			  .full = STRBUF_INIT,
			  .rel = STRBUF_INIT,
			  .ret_msg = ret_msg};
	char hex[SFS_HEX_SIZE];
	struct stat st;
	int r;

	if ((r = sfs_sha256_init(&w.h)) < 0)
		return r;
	strbuf_addstr(&w.full, p->path);
	if (w.full.oom) {
		sfs_sha256_abort(&w.h);
		return -ENOMEM;
	}
	if (lstat(p->path, &st) < 0) {
		r = sfs_errf(ret_msg, errno, "cannot read \"%s\": %m", p->path);
	} else {
		/* The root is recorded as "." (a file path keeps its own metadata). */
		record(&w, ".", &st);
		if (S_ISDIR(st.st_mode) && (r = check_access(&w, R_OK | X_OK)) == 0)
			r = walk_children(&w, false);
		else if (S_ISREG(st.st_mode))
			r = check_access(&w, R_OK);
	}
	strbuf_release(&w.full);
	strbuf_release(&w.rel);
	if (r < 0) {
		sfs_sha256_abort(&w.h);
		return r;
	}
	if (w.racy) {
		char nonce[64];
		uint64_t k = __atomic_add_fetch(&racy_walks, 1, __ATOMIC_RELAXED);
		int n = snprintf(nonce, sizeof(nonce), "racy %" PRId64 " %d %" PRIu64, w.start,
				 (int)getpid(), k);
		sfs_sha256_update(&w.h, nonce, (size_t)n);
	}
	sfs_sha256_final_hex(&w.h, hex);
	snprintf(ret_meta, SFS_DIGEST_SIZE, "sha256:%s", hex);
	return 0;
}

/* The walk under the job's credentials. */
static int local_walk_as_job(struct sfs_op_ctx *ctx, const struct local_params *p,
			     char ret_meta[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct sfs_creds c;
	int r = sfs_creds_enter(&c, ctx->uid, ctx->gid);

	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot take the credentials of uid %u",
				(unsigned)ctx->uid);
	r = local_walk(ctx, p, c.active, ret_meta, ret_msg);
	sfs_creds_leave(&c);
	return r;
}

/* ---- maps and exec ---- */

static int map0_digest(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *meta,
		       char ret[SFS_DIGEST_SIZE])
{
	json_t *o = sfs_spec_vertex_op(op->v);
	char *s;
	int r = -ENOMEM;

	if (o && o == op->v->op) { /* still the spec's own tree: change a copy */
		json_t *copy = json_deep_copy(o);
		json_decref(o);
		o = copy;
	}
	if (!o)
		return -ENOMEM;
	json_object_del(o, "session");
	if (json_object_set_new(o, "uid", json_integer((json_int_t)ctx->uid)) == 0 &&
	    json_object_set_new(o, "meta", json_string(meta)) == 0 &&
	    json_object_set_new(o, "cache_map", json_string("local/metadata")) == 0 &&
	    (s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS))) {
		sfs_sha256_digest(s, strlen(s), ret);
		free(s);
		r = 0;
	}
	json_decref(o);
	return r;
}

static void warn_to_log(void *arg, const char *msg)
{
	sfs_op_logf(arg, "warning: %s", msg);
}

static int local_ingest(struct sfs_op *op, struct sfs_op_ctx *ctx, char **ret_msg)
{
	struct local_priv *lp = op->priv;
	const struct local_params *p = op->v->params;
	struct tree *t = NULL;
	struct sfs_creds c;
	int r;

	if (lp->have_tree)
		return 0;
	/* Every host file is opened as the job, once: what it opens is what is stored. */
	if ((r = sfs_creds_enter(&c, ctx->uid, ctx->gid)) < 0) {
		sfs_errf(ret_msg, r, "cannot take the credentials of uid %u", (unsigned)ctx->uid);
	} else {
		struct tree_ingest_opts o = {.include = (const char **)p->include,
					     .exclude = (const char **)p->exclude,
					     .special = TREE_SPECIAL_SKIP,
					     .warn = warn_to_log,
					     .arg = ctx,
					     .creds = &c,
					     .statcache = ctx->cache->statcache};
		r = tree_ingest(ctx->cache->cas, p->path, &o, &t, ret_msg);
		sfs_creds_leave(&c);
		/* what this walk read is remembered across a remount; failing that
		 * only costs reads then (logged) */
		sfs_statcache_flush(ctx->cache->statcache);
	}
	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "local \"%s\"", p->path);
	memcpy(lp->tree_id, t->id, SFS_DIGEST_SIZE);
	lp->have_tree = true;
	tree_free(t);
	return 0;
}

static int local_priv(struct sfs_op *op)
{
	if (!op->priv && !(op->priv = calloc(1, sizeof(struct local_priv))))
		return -ENOMEM;
	return 0;
}

static int local_cache_map(struct sfs_op *op, struct sfs_op_ctx *ctx, int index,
			   struct sfs_cache_map *ret, bool *ret_done, char **ret_msg)
{
	struct sfs_cache_map m = {0};
	const struct local_params *p = op->v->params;
	char meta[SFS_DIGEST_SIZE];
	int r;

	if (local_priv(op) < 0)
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	if (index == 0) {
		r = local_walk_as_job(ctx, p, meta, ret_msg);
		if (r < 0)
			sfs_err_prefix(ret_msg, r, "local \"%s\"", p->path);
		else if ((r = map0_digest(op, ctx, meta, m.digest)) < 0)
			sfs_errf(ret_msg, r, "out of memory");
		*ret_done = false;
	} else {
		r = local_ingest(op, ctx, ret_msg);
		if (r == 0)
			memcpy(m.digest, ((struct local_priv *)op->priv)->tree_id, SFS_DIGEST_SIZE);
		*ret_done = true;
	}
	if (r == 0)
		*ret = m;
	return r;
}

static int local_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		      size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	int r;

	if (local_priv(op) < 0)
		return sfs_errf(ret_msg, ENOMEM, "out of memory");
	if ((r = local_ingest(op, ctx, ret_msg)) < 0)
		return r;
	memcpy(outputs[0], ((struct local_priv *)op->priv)->tree_id, SFS_DIGEST_SIZE);
	return 0;
}

static void local_free(struct sfs_op *op)
{
	free(op->priv);
	op->priv = NULL;
}

/* ---- the spec side: fields and normaliser (specop.h) ---- */

static const char *const local_fields[] = {"path", "include", "exclude", NULL};

static void local_params_free(void *params)
{
	struct local_params *p = params;

	free(p->path);
	strv_free_argv(p->include);
	strv_free_argv(p->exclude);
	free(p);
}

static int norm_local(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *inc = NULL, *exc = NULL, *pj = json_object_get(raw, "path");
	struct local_params *lp;
	char *path = NULL, sess[32];
	int r;

	if (!sfs_norm_ctx(c)->allow_local)
		return sfs_norm_err(c, "", "op", "local is not allowed here (inside a build op)");
	if (!pj)
		return sfs_norm_err(c, "", "path", "is required");
	r = sfs_norm_host_path(c, "", "path", pj, &path);
	if (r < 0)
		return r;
	r = sfs_norm_globs(c, raw, "", "include", &inc);
	if (r == 0)
		r = sfs_norm_globs(c, raw, "", "exclude", &exc);
	if (r == 0 && !(lp = sfs_norm_vertex(c)->params = calloc(1, sizeof(*lp))))
		r = -ENOMEM;
	if (r == 0) {
		snprintf(sess, sizeof(sess), "%" PRIu64, sfs_norm_ctx(c)->session);
		sfs_norm_set(c, op, "path", json_string(path));
		sfs_norm_set(c, op, "include", json_incref(inc));
		sfs_norm_set(c, op, "exclude", json_incref(exc));
		sfs_norm_set(c, op, "session", json_string(sess));
		strbuf_addf(sum, "local %s", path);
		lp->include = sfs_norm_strv(inc);
		lp->exclude = sfs_norm_strv(exc);
		lp->path = path;
		path = NULL;
		if (!lp->include || !lp->exclude)
			r = -ENOMEM;
	}
	json_decref(inc);
	json_decref(exc);
	free(path);
	return r;
}

/* The session is hashed into the vertex digest only: a local's cache key is its
 * content (local_cache_map). */
static bool local_map_skip(const json_t *op, const json_t *obj, const char *key)
{
	return obj == op && strcmp(key, "session") == 0;
}

const struct sfs_op_type sfs_op_local = {
    .name = "local",
    .fields = local_fields,
    .normalise = norm_local,
    .params_free = local_params_free,
    .map_skip = local_map_skip,
    .cache_map = local_cache_map,
    .exec = local_exec,
    .free = local_free,
};
