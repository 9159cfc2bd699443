/*
 * cachectl.c — cache/ctl: commands on the whole cache (docs/tree.md §6.5).
 *
 * One write(2) is one command: a word and its arguments, blanks around them
 * ignored, at most FS_CACHECTL_MAX bytes.  Only the mount owner and root may
 * write (a prune deletes every user's cache); others get EACCES at open.
 * The command table below has one row per command: check runs on the FUSE
 * thread and does no slow work (it parses the arguments: a bad command fails
 * the write with EINVAL and its reason is what reads give), run does the work
 * on the ctl thread, one command at a time (a write while one runs is EBUSY).
 * A read gives the outcome of the last command:
 *     running: CMD
 *     ok: CMD: what it did
 *     error: CMD: why
 * and the same line goes to the daemon log.  Unmounting stops a prune
 * between its units, an export between two keys or blobs, and joins the
 * thread.
 *
 * Locking: cc->lock guards every field of struct fs_cachectl but stop, an
 * atomic the prune reads between units.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"
#include "fs.h"
#include "prune.h"

#define FS_CACHECTL_MAX 256
#define PRUNE_BATCH 256 /* results per database unit: FUSE threads wait for one at most */

struct fs_cachectl {
	pthread_mutex_t lock;
	bool running;  /* the thread runs cmd */
	bool joinable; /* the thread was started and not joined yet */
	atomic_bool stop;
	pthread_t thread;
	const struct fs_cachectl_cmd *cmd;
	char *line; /* the command as written, trimmed (what outcomes name) */
	char *args; /* what follows the word */
	struct strbuf outcome;
	struct sfs_fs *fs;
};

struct fs_cachectl_cmd {
	const char *name;
	/* Parses args (FUSE thread, no slow work): 0, or -EINVAL with *ret_msg. */
	int (*check)(const char *args, char **ret_msg);
	/* Runs the command (ctl thread) and appends what it did to out, one line
	 * without "ok: " and without its newline; ends early once stop is set
	 * (the unmount). */
	int (*run)(struct sfs_fs *fs, const char *args, const atomic_bool *stop, struct strbuf *out,
		   char **ret_msg);
};

/* ---- prune [dry-run] [keep-bytes=SIZE] [keep-duration=DUR] [filter=op=KIND] ---- */

/* The op kinds a filter may name: those whose results the cache keeps. */
static const char *const prune_ops[] = {"exec", "local", "file", "merge", "build"};

struct prune_args {
	struct cache_prune_opts o;
	char op[16];
};

static int parse_op(const char *v, struct prune_args *a, char **ret_msg)
{
	if (strncmp(v, "op=", 3) != 0)
		return sfs_errf(ret_msg, EINVAL, "filter=%s: only op=KIND filters are known", v);
	for (size_t i = 0; i < ARRAY_SIZE(prune_ops); i++)
		if (!strcmp(v + 3, prune_ops[i])) {
			snprintf(a->op, sizeof(a->op), "%s", prune_ops[i]);
			a->o.op = a->op;
			return 0;
		}
	return sfs_errf(ret_msg, EINVAL, "filter=%s: op is one of exec, local, file, merge, build",
			v);
}

static int parse_prune_word(const char *w, struct prune_args *a, char **ret_msg)
{
	const char *eq = strchr(w, '=');
	const char *v = eq ? eq + 1 : NULL;
	uint64_t n;

	if (!strcmp(w, "dry-run")) {
		a->o.dry_run = true;
		return 0;
	}
	if (!eq)
		return sfs_errf(ret_msg, EINVAL, "%s: unknown argument (dry-run, keep-bytes=SIZE, "
						 "keep-duration=DUR, filter=op=KIND)", w);
	size_t klen = (size_t)(eq - w);
	if (klen == 10 && !strncmp(w, "keep-bytes", klen)) {
		if (fs_parse_size(v, &n) < 0)
			return sfs_errf(ret_msg, EINVAL, "%s: not a size (like 500M or 2G)", w);
		a->o.keep_bytes = n;
		return 0;
	}
	if (klen == 13 && !strncmp(w, "keep-duration", klen)) {
		if (fs_parse_duration(v, &n) < 0 || n > INT64_MAX / 1000000000LL)
			return sfs_errf(ret_msg, EINVAL, "%s: not a duration (like 90s, 30m, 48h, 7d)",
					w);
		a->o.keep_ns = (int64_t)n * 1000000000LL;
		return 0;
	}
	if (klen == 6 && !strncmp(w, "filter", klen))
		return parse_op(v, a, ret_msg);
	return sfs_errf(ret_msg, EINVAL, "%s: unknown argument (dry-run, keep-bytes=SIZE, "
					 "keep-duration=DUR, filter=op=KIND)", w);
}

/* Each argument at most once, in any order. */
static int parse_prune(const char *args, struct prune_args *ret, char **ret_msg)
{
	struct prune_args a = {.o = {.batch = PRUNE_BATCH}};
	char *copy = strdup(args), *save = NULL;
	char seen[4][16] = {{0}};
	size_t nseen = 0;
	int r = copy ? 0 : -ENOMEM;

	for (char *w = copy ? strtok_r(copy, " \t", &save) : NULL; r == 0 && w;
	     w = strtok_r(NULL, " \t", &save)) {
		size_t klen = strcspn(w, "=");
		for (size_t i = 0; r == 0 && i < nseen; i++)
			if (strlen(seen[i]) == klen && !strncmp(seen[i], w, klen))
				r = sfs_errf(ret_msg, EINVAL, "%.*s given twice", (int)klen, w);
		if (r == 0)
			r = parse_prune_word(w, &a, ret_msg);
		if (r == 0 && nseen < ARRAY_SIZE(seen))
			snprintf(seen[nseen++], sizeof(seen[0]), "%.*s", (int)klen, w);
	}
	free(copy);
	if (r == 0)
		*ret = a;
	return r;
}

static int prune_check(const char *args, char **ret_msg)
{
	struct prune_args a;
	return parse_prune(args, &a, ret_msg);
}

static void prune_collected(void *arg, const char *result_id)
{
	fs_notify_collected(arg, result_id);
}

static int prune_run(struct sfs_fs *fs, const char *args, const atomic_bool *stop,
		     struct strbuf *out, char **ret_msg)
{
	struct cache_prune_report rep = {0};
	struct prune_args a;
	int r = parse_prune(args, &a, ret_msg);

	if (r < 0)
		return r;
	a.o.op = a.op[0] ? a.op : NULL;
	a.o.collected = prune_collected;
	a.o.arg = fs;
	a.o.stop = stop;
	r = cache_prune_run(fs->cache, &a.o, NULL, &rep);
	if (r < 0)
		return sfs_errf(ret_msg, r, "%s (what was freed before stays freed)", strerror(-r));
	strbuf_addf(out,
		    "%s %" PRIu64 " results, %" PRIu64 " records, %" PRIu64 " blobs, %" PRIu64
		    " bytes",
		    a.o.dry_run ? "would free" : "freed", rep.results, rep.records, rep.blobs,
		    rep.bytes);
	if (rep.exports)
		strbuf_addf(out, "; %" PRIu64 " older exports (%" PRIu64 " bytes)", rep.exports,
			    rep.export_bytes);
	if (!a.o.dry_run && atomic_load(stop))
		strbuf_addstr(out, " (stopped by the unmount)");
	return 0;
}

/* ---- the command table ---- */

static const struct fs_cachectl_cmd cmds[] = {
    {"prune", prune_check, prune_run},
    /* the whole cache into cache/exports/<hex> (cachectl_export.c) */
    {"export", fs_cachectl_export_check, fs_cachectl_export},
};

/* The row of the command line starts with; *ret_args what follows its word. */
static const struct fs_cachectl_cmd *find_cmd(const char *line, const char **ret_args)
{
	size_t n = strcspn(line, " \t");

	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strlen(cmds[i].name) == n && !strncmp(line, cmds[i].name, n)) {
			*ret_args = line + n + strspn(line + n, " \t");
			return &cmds[i];
		}
	return NULL;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The command written, trimmed; NULL with *ret_why when it cannot be one. */
static char *parse_line(const char *buf, size_t size, const char **ret_why)
{
	while (size && blank(buf[size - 1]))
		size--;
	while (size && blank(buf[0]))
		buf++, size--;
	if (!size)
		*ret_why = "no command (prune)";
	else if (size > FS_CACHECTL_MAX)
		*ret_why = "command longer than 256 bytes";
	else if (memchr(buf, '\0', size) || memchr(buf, '\n', size) || memchr(buf, '\r', size))
		*ret_why = "one command on one line";
	else
		return strndup(buf, size);
	return NULL;
}

/* ---- the thread ---- */

int fs_cachectl_init(struct sfs_fs *fs)
{
	struct fs_cachectl *cc = calloc(1, sizeof(*cc));

	if (!cc)
		return -ENOMEM;
	pthread_mutex_init(&cc->lock, NULL);
	atomic_init(&cc->stop, false);
	cc->outcome = (struct strbuf)STRBUF_INIT;
	cc->fs = fs;
	fs->cachectl = cc;
	return 0;
}

void fs_cachectl_stop(struct sfs_fs *fs)
{
	struct fs_cachectl *cc = fs->cachectl;

	if (!cc)
		return;
	atomic_store(&cc->stop, true);
	pthread_mutex_lock(&cc->lock);
	bool join = cc->joinable;
	cc->joinable = false;
	pthread_mutex_unlock(&cc->lock);
	if (join)
		pthread_join(cc->thread, NULL);
}

void fs_cachectl_release(struct sfs_fs *fs)
{
	struct fs_cachectl *cc = fs->cachectl;

	if (!cc)
		return;
	fs_cachectl_stop(fs);
	strbuf_release(&cc->outcome);
	free(cc->line);
	free(cc->args);
	pthread_mutex_destroy(&cc->lock);
	free(cc);
	fs->cachectl = NULL;
}

static void *ctl_thread(void *arg)
{
	struct fs_cachectl *cc = arg;
	struct strbuf done = STRBUF_INIT;
	char *msg = NULL;
	int r = cc->cmd->run(cc->fs, cc->args, &cc->stop, &done, &msg);

	if (r == 0 && done.oom)
		r = -ENOMEM;
	pthread_mutex_lock(&cc->lock);
	strbuf_reset(&cc->outcome);
	if (r < 0)
		strbuf_addf(&cc->outcome, "error: %s: %s\n", cc->line, msg ? msg : strerror(-r));
	else
		strbuf_addf(&cc->outcome, "ok: %s: %s\n", cc->line, done.buf ? done.buf : "");
	sfs_log(r < 0 ? SFS_LOG_WARN : SFS_LOG_INFO, "cache/ctl %.*s",
		(int)cc->outcome.len - 1, cc->outcome.buf);
	cc->running = false;
	pthread_mutex_unlock(&cc->lock);
	strbuf_release(&done);
	free(msg);
	return NULL;
}

static bool may_write(const struct sfs_fs *fs, uid_t uid)
{
	return uid == 0 || uid == fs->uid;
}

int fs_cachectl_open(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, int flags)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	f->uid = ctx->uid;
	f->writable = (flags & O_ACCMODE) != O_RDONLY;
	if (f->writable && !may_write(fs, ctx->uid))
		return -EACCES;
	return fs_cachectl_content(fs, &f->data);
}

int fs_cachectl_truncate(struct sfs_fs *fs, fuse_req_t req)
{
	return may_write(fs, fuse_req_ctx(req)->uid) ? 0 : -EACCES;
}

int fs_cachectl_content(struct sfs_fs *fs, struct strbuf *out)
{
	struct fs_cachectl *cc = fs->cachectl;

	pthread_mutex_lock(&cc->lock);
	strbuf_add(out, cc->outcome.buf, cc->outcome.len);
	pthread_mutex_unlock(&cc->lock);
	return out->oom ? -ENOMEM : 0;
}

/* A refused command (lock held): its reason is the file's content; EINVAL. */
static int refuse(struct fs_cachectl *cc, const char *line, size_t len, const char *why)
{
	strbuf_reset(&cc->outcome);
	strbuf_addf(&cc->outcome, "error: %.*s: %s\n", (int)(len > 64 ? 64 : len), line, why);
	sfs_log(SFS_LOG_INFO, "cache/ctl refused: %.*s: %s", (int)(len > 64 ? 64 : len), line, why);
	return -EINVAL;
}

/* Starts cmd on the thread (lock held); line and args become the thread's. */
static int start(struct fs_cachectl *cc, const struct fs_cachectl_cmd *cmd, char *line,
		 char *args)
{
	if (cc->joinable) { /* the last command has ended: reap it */
		pthread_join(cc->thread, NULL);
		cc->joinable = false;
	}
	free(cc->line);
	free(cc->args);
	cc->cmd = cmd;
	cc->line = line;
	cc->args = args;
	cc->running = true;
	strbuf_reset(&cc->outcome);
	strbuf_addf(&cc->outcome, "running: %s\n", line);
	int r = -pthread_create(&cc->thread, NULL, ctl_thread, cc);
	if (r < 0) {
		cc->running = false;
		strbuf_reset(&cc->outcome);
		return r;
	}
	cc->joinable = true;
	return 0;
}

int fs_cachectl_write(struct sfs_fs *fs, struct fs_file *f, const char *buf, size_t size)
{
	struct fs_cachectl *cc = fs->cachectl;
	const char *why = NULL, *args = "";
	char *msg = NULL, *line = parse_line(buf, size, &why), *args_copy = NULL;
	const struct fs_cachectl_cmd *cmd = NULL;
	int r = 0;

	if (!f->writable) {
		free(line);
		return -EBADF;
	}
	if (!line && !why)
		return -ENOMEM;
	if (line && !(cmd = find_cmd(line, &args)))
		why = "unknown command (prune)";
	if (cmd && cmd->check && cmd->check(args, &msg) < 0)
		why = msg ? msg : "bad arguments";
	if (cmd && !why && !(args_copy = strdup(args)))
		r = -ENOMEM;
	pthread_mutex_lock(&cc->lock);
	if (r == 0 && cc->running)
		r = -EBUSY;
	else if (r == 0 && why)
		r = refuse(cc, line ? line : buf, line ? strlen(line) : size, why);
	if (r == 0) {
		r = start(cc, cmd, line, args_copy);
		if (r == 0)
			line = args_copy = NULL;
	}
	pthread_mutex_unlock(&cc->lock);
	free(line);
	free(args_copy);
	free(msg);
	return r < 0 ? r : (int)size;
}
