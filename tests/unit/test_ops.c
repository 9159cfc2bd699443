/*
 * test_ops.c — the ops of solver/op.h run one vertex at a time over a real
 * content store: specs are parsed with sfs_spec_parse and every vertex of a
 * spec is executed in order by a tiny driver (no solver, no cache keys).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "strbuf.h"
#include "tree.h"
#include "op.h"
#include "tap.h"

static struct sfs_cache cache;
static struct strbuf logbuf = STRBUF_INIT;
static struct sfs_op_signal sig;
static struct sfs_op_ctx ctx;

static void test_log(void *arg, int stream, const char *data, size_t len)
{
	strbuf_add(arg, data, len);
}

static void ctx_reset(void)
{
	strbuf_reset(&logbuf);
	memset(&ctx, 0, sizeof(ctx));
	atomic_store(&sig.cancelled, false);
	atomic_store(&sig.pgid, 0);
	ctx.sig = &sig;
	ctx.cache = &cache;
	ctx.log = test_log;
	ctx.log_arg = &logbuf;
	ctx.log_limit = 1 << 20;
}

static void write_file(const char *dir, const char *rel, const char *data)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(data, f);
	fclose(f);
}

static void make_dir(const char *dir, const char *rel)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (mkdir(p, 0755) < 0) {
		perror(p);
		exit(2);
	}
}

static struct sfs_spec *parse(const char *json)
{
	struct sfs_spec_ctx sc = {.session = 7, .allow_local = true, .allow_network = true};
	struct sfs_spec *s = NULL;
	char *msg = NULL;
	int r = sfs_spec_parse(json, strlen(json), &sc, &s, &msg);

	if (r < 0)
		fprintf(stderr, "  spec: %s\n%s\n", msg ? msg : strerror(-r), json);
	free(msg);
	return s;
}

static const struct sfs_spec_vertex *vertex(const struct sfs_spec *s, const char *key)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->v[i].key, key) == 0)
			return &s->v[i];
	return NULL;
}

#define MAXOUT 4

/*
 * Runs every vertex of the spec in order; on success ret gets output `out` of
 * the spec's first output ref.  On failure *ret_msg holds the op's message.
 */
static int run_spec(const char *json, char ret[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct sfs_spec *s = parse(json);
	char(*outs)[MAXOUT][SFS_DIGEST_SIZE];
	int r = 0;

	if (!s)
		return -EINVAL;
	outs = calloc(s->n, sizeof(*outs));
	for (size_t i = 0; i < s->n && r == 0; i++) {
		const struct sfs_spec_vertex *v = &s->v[i];
		const char *in[16];
		struct sfs_op *op = NULL;

		for (size_t k = 0; k < v->ninputs; k++)
			in[k] = outs[v->inputs[k].ref.vertex][v->inputs[k].ref.output];
		if ((r = sfs_op_resolve(v, &op)) == 0)
			r = op->type->exec(op, &ctx, in, v->ninputs, outs[i], ret_msg);
		sfs_op_free(op);
	}
	if (r == 0)
		memcpy(ret, outs[s->outputs[0].vertex][s->outputs[0].output], SFS_DIGEST_SIZE);
	free(outs);
	sfs_spec_free(s);
	return r;
}

/* The content of path in the tree id, or NULL; valid for the next 8 calls. */
static const char *tree_cat(const char *id, const char *path)
{
	static char *ring[8];
	static int next;
	struct tree *t = NULL;
	const struct tree_entry *e;
	char *buf = NULL;
	size_t len;

	if (tree_load(cache.cas, id, &t) < 0)
		return NULL;
	e = tree_find(t, path);
	if (e && e->type != 'd' && cas_read_all(cache.cas, e->hex, &buf, &len) < 0)
		buf = NULL;
	tree_free(t);
	free(ring[next % 8]);
	ring[next++ % 8] = buf;
	return buf;
}

/* "type mode" of path ("d 0755"), or "" when absent. */
static const char *tree_stat(const char *id, const char *path)
{
	static char out[32];
	struct tree *t = NULL;
	const struct tree_entry *e;

	out[0] = '\0';
	if (tree_load(cache.cas, id, &t) < 0)
		return "no tree";
	if ((e = tree_find(t, path)))
		snprintf(out, sizeof(out), "%c %04o", e->type, e->mode);
	tree_free(t);
	return out;
}

static size_t tree_count(const char *id)
{
	struct tree *t = NULL;
	size_t n;

	if (tree_load(cache.cas, id, &t) < 0)
		return 0;
	n = t->n;
	tree_free(t);
	return n;
}

static char *spec_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *spec_printf(const char *fmt, ...)
{
	static char bufs[4][8192]; /* rotating: results may be arguments of the next call */
	static int next;
	char *buf = bufs[next++ % 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return buf;
}

/* ---- local ---- */

static void test_local_ingest(void)
{
	char *d = tap_tmpdir(), id[SFS_DIGEST_SIZE], *msg = NULL, *s, p[4096];

	ctx_reset();
	make_dir(d, "src");
	make_dir(d, ".git");
	write_file(d, "src/a.c", "int a;\n");
	write_file(d, "src/a.o", "obj");
	write_file(d, ".git/HEAD", "ref");
	write_file(d, "README", "hi\n");
	snprintf(p, sizeof(p), "%s/fifo", d);
	CHECK(mkfifo(p, 0644) == 0);

	s = spec_printf("{\"vertices\":{\"l\":{\"op\":\"local\",\"path\":\"%s\","
			"\"exclude\":[\".git\",\"**/*.o\"]}},\"outputs\":[\"l\"]}",
			d);
	CHECK_EQ_INT(run_spec(s, id, &msg), 0);
	CHECK_EQ_STR(tree_cat(id, "src/a.c"), "int a;\n");
	CHECK_EQ_STR(tree_cat(id, "README"), "hi\n");
	CHECK_EQ_STR(tree_stat(id, "src/a.o"), "");
	CHECK_EQ_STR(tree_stat(id, ".git"), "");
	CHECK_EQ_STR(tree_stat(id, "fifo"), "");
	CHECK(logbuf.buf && strstr(logbuf.buf, "warning: ") && strstr(logbuf.buf, "fifo"));

	s = spec_printf("{\"vertices\":{\"l\":{\"op\":\"local\",\"path\":\"%s\","
			"\"include\":[\"src/*.c\"]}},\"outputs\":[\"l\"]}",
			d);
	CHECK_EQ_INT(run_spec(s, id, &msg), 0);
	CHECK_EQ_INT(tree_count(id), 3); /* ".", "src", "src/a.c" */
	CHECK_EQ_STR(tree_cat(id, "src/a.c"), "int a;\n");

	/* A single file becomes a tree holding that file. */
	s = spec_printf("{\"vertices\":{\"l\":{\"op\":\"local\",\"path\":\"%s/README\"}},"
			"\"outputs\":[\"l\"]}",
			d);
	CHECK_EQ_INT(run_spec(s, id, &msg), 0);
	CHECK_EQ_STR(tree_cat(id, "README"), "hi\n");

	s = spec_printf("{\"vertices\":{\"l\":{\"op\":\"local\",\"path\":\"%s/nope\"}},"
			"\"outputs\":[\"l\"]}",
			d);
	CHECK(run_spec(s, id, &msg) == -ENOENT);
	CHECK(msg && strstr(msg, "/nope"));
	free(msg);
}

/* Map `index` of the local vertex over dir; ret_done tells whether it was final. */
static int local_map(const char *dir, int index, uid_t uid, char ret[SFS_DIGEST_SIZE])
{
	struct sfs_spec *s = parse(spec_printf(
	    "{\"vertices\":{\"l\":{\"op\":\"local\",\"path\":\"%s\"}},\"outputs\":[\"l\"]}", dir));
	struct sfs_op *op = NULL;
	struct sfs_cache_map m = {0};
	bool done = false;
	char *msg = NULL;
	int r = -EINVAL;

	ctx.uid = uid;
	if (s && sfs_op_resolve(&s->v[0], &op) == 0) {
		for (int i = 0; i <= index; i++) {
			sfs_cache_map_release(&m);
			if ((r = sfs_op_cache_map(op, &ctx, i, &m, &done, &msg)) < 0)
				break;
			CHECK(done == (i == 1));
			CHECK_EQ_INT(m.ndeps, 0);
		}
	}
	if (r == 0)
		memcpy(ret, m.digest, SFS_DIGEST_SIZE);
	else
		fprintf(stderr, "  local map: %s\n", msg ? msg : "?");
	free(msg);
	sfs_cache_map_release(&m);
	sfs_op_free(op);
	sfs_spec_free(s);
	ctx.uid = 0;
	return r;
}

static void test_local_cache_maps(void)
{
	char *a = tap_tmpdir(), *b = tap_tmpdir(), p[4096];
	char m0[SFS_DIGEST_SIZE], m0b[SFS_DIGEST_SIZE], m1a[SFS_DIGEST_SIZE], m1b[SFS_DIGEST_SIZE];
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1000000000}};

	ctx_reset();
	chmod(a, 0755); /* readable by uid 1000 below; b alike so the roots match */
	chmod(b, 0755);
	make_dir(a, "d");
	write_file(a, "d/f", "same");
	make_dir(b, "d");
	write_file(b, "d/f", "same");
	/* Changed less than 2 s ago: racily clean, map 0 is never the same twice. */
	CHECK_EQ_INT(local_map(a, 0, 0, m0), 0);
	CHECK_EQ_INT(local_map(a, 0, 0, m0b), 0);
	CHECK(strcmp(m0, m0b) != 0);
	sleep(3); /* every ctime older than the racy window (docs/semantics.md §1.9) */
	CHECK_EQ_INT(local_map(a, 0, 0, m0), 0);
	CHECK_EQ_INT(local_map(a, 0, 0, m0b), 0);
	CHECK_EQ_STR(m0, m0b); /* stable */
	CHECK(sfs_is_digest(m0));
	CHECK_EQ_INT(local_map(a, 0, 1000, m0b), 0);
	CHECK(strcmp(m0, m0b) != 0); /* the uid is in map 0 */

	snprintf(p, sizeof(p), "%s/d/f", a);
	CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0); /* touch: content unchanged */
	CHECK_EQ_INT(local_map(a, 0, 0, m0b), 0);
	CHECK(strcmp(m0, m0b) != 0);

	CHECK_EQ_INT(local_map(a, 1, 0, m1a), 0);
	CHECK_EQ_INT(local_map(b, 1, 0, m1b), 0);
	CHECK_EQ_STR(m1a, m1b); /* equal content, equal map 1 */
	write_file(b, "d/f", "different");
	CHECK_EQ_INT(local_map(b, 1, 0, m1b), 0);
	CHECK(strcmp(m1a, m1b) != 0);
}

static void test_local_credentials(void)
{
	char *d = tap_tmpdir(), id[SFS_DIGEST_SIZE], *msg = NULL, p[4096];

	if (geteuid() != 0)
		return; /* needs root to switch to another uid */
	ctx_reset();
	chmod(d, 0755);
	make_dir(d, "secret");
	write_file(d, "secret/key", "k");
	write_file(d, "open", "o");
	snprintf(p, sizeof(p), "%s/secret", d);
	chmod(p, 0700);
	ctx.uid = 65534;
	ctx.gid = 65534;
	CHECK(run_spec(spec_printf("{\"vertices\":{\"l\":{\"op\":\"local\",\"path\":\"%s\"}},"
				   "\"outputs\":[\"l\"]}",
				   d),
		       id, &msg) == -EACCES);
	CHECK(msg && strstr(msg, "secret"));
	free(msg);
	msg = NULL;
	CHECK_EQ_INT(run_spec(spec_printf("{\"vertices\":{\"l\":{\"op\":\"local\",\"path\":\"%s\","
					  "\"exclude\":[\"secret\"]}},\"outputs\":[\"l\"]}",
					  d),
			      id, &msg),
		     0);
	CHECK_EQ_STR(tree_cat(id, "open"), "o");
	free(msg);
	/* The thread got its credentials back. */
	CHECK_EQ_INT(setfsuid(-1), 0);
}

/* ---- file ---- */

static void test_file_actions(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;
	const char *s =
	    "{\"vertices\":{"
	    "\"base\":{\"op\":\"file\",\"actions\":["
	    "  {\"mkdir\":{\"path\":\"etc\",\"mode\":\"0700\"}},"
	    "  {\"mkfile\":{\"path\":\"etc/conf\",\"data\":\"x=1\\n\",\"mode\":\"0600\"}},"
	    "  {\"mkfile\":{\"path\":\"bin\",\"data_base64\":\"aGVsbG8=\"}},"
	    "  {\"mkdir\":{\"path\":\"a/b/c\",\"parents\":true}},"
	    "  {\"mkdir\":{\"path\":\"a/b\",\"parents\":true}},"
	    "  {\"symlink\":{\"target\":\"../etc/conf\",\"path\":\"a/link\"}},"
	    "  {\"mkfile\":{\"path\":\"gone\",\"data\":\"\"}},"
	    "  {\"rm\":{\"path\":\"gone\"}},"
	    "  {\"rm\":{\"path\":\"never\",\"allow_not_found\":true}}]},"
	    "\"top\":{\"op\":\"file\",\"base\":\"base\",\"actions\":["
	    "  {\"rm\":{\"path\":\"a/b\"}}]}},"
	    "\"outputs\":[\"top\"]}";

	ctx_reset();
	CHECK_EQ_INT(run_spec(s, id, &msg), 0);
	CHECK_EQ_STR(tree_stat(id, "etc"), "d 0700");
	CHECK_EQ_STR(tree_stat(id, "etc/conf"), "f 0600");
	CHECK_EQ_STR(tree_cat(id, "etc/conf"), "x=1\n");
	CHECK_EQ_STR(tree_stat(id, "bin"), "f 0644");
	CHECK_EQ_STR(tree_cat(id, "bin"), "hello");
	CHECK_EQ_STR(tree_stat(id, "a"), "d 0755");
	CHECK_EQ_STR(tree_stat(id, "a/b"), "");
	CHECK_EQ_STR(tree_stat(id, "a/b/c"), "");
	CHECK_EQ_STR(tree_stat(id, "a/link"), "l 0777");
	CHECK_EQ_STR(tree_cat(id, "a/link"), "../etc/conf");
	CHECK_EQ_STR(tree_stat(id, "gone"), "");
	CHECK_EQ_INT(tree_count(id), 6);
	free(msg);
}

static void file_fails(const char *actions, const char *want)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;

	ctx_reset();
	CHECK(run_spec(spec_printf("{\"vertices\":{\"src\":{\"op\":\"file\",\"actions\":["
				   "{\"mkfile\":{\"path\":\"f\",\"data\":\"\"}}]},"
				   "\"x\":{\"op\":\"file\",\"actions\":[%s]}},"
				   "\"outputs\":[\"x\"]}",
				   actions),
		       id, &msg) < 0);
	CHECK_EQ_STR(msg, want);
	free(msg);
}

static void test_file_errors(void)
{
	file_fails("{\"mkdir\":{\"path\":\"a/b\"}}",
		   "action 0 (mkdir): parent dir \"a\" of \"a/b\" not found");
	file_fails("{\"mkdir\":{\"path\":\"a\"}},{\"mkdir\":{\"path\":\"a\"}}",
		   "action 1 (mkdir): \"a\" already exists");
	file_fails("{\"mkfile\":{\"path\":\"a/f\",\"data\":\"\"}}",
		   "action 0 (mkfile): parent dir \"a\" of \"a/f\" not found");
	file_fails("{\"mkdir\":{\"path\":\"a\"}},{\"mkfile\":{\"path\":\"a\",\"data\":\"\"}}",
		   "action 1 (mkfile): \"a\" is a directory");
	file_fails("{\"mkfile\":{\"path\":\"f\",\"data\":\"\"}},{\"mkdir\":{\"path\":\"f/d\","
		   "\"parents\":true}}",
		   "action 1 (mkdir): \"f\" is not a directory");
	file_fails("{\"rm\":{\"path\":\"x\"}}", "action 0 (rm): \"x\" not found");
	file_fails("{\"symlink\":{\"target\":\"t\",\"path\":\"l\"}},{\"symlink\":{\"target\":\"t\","
		   "\"path\":\"l\"}}",
		   "action 1 (symlink): \"l\" already exists");
	file_fails("{\"mkdir\":{\"path\":\"d\"}},{\"copy\":{\"from\":\"src\",\"src\":\"nope\","
		   "\"dest\":\"d\"}}",
		   "action 1 (copy): src \"nope\" not found");
}

static void test_file_copy(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;
	const char *s = "{\"vertices\":{"
			"\"src\":{\"op\":\"file\",\"actions\":["
			"  {\"mkdir\":{\"path\":\"dir/sub\",\"parents\":true,\"mode\":\"0750\"}},"
			"  {\"mkfile\":{\"path\":\"dir/a.c\",\"data\":\"A\"}},"
			"  {\"mkfile\":{\"path\":\"dir/a.o\",\"data\":\"O\"}},"
			"  {\"mkfile\":{\"path\":\"dir/sub/b.c\",\"data\":\"B\"}},"
			"  {\"mkfile\":{\"path\":\"one\",\"data\":\"1\",\"mode\":\"0755\"}}]},"
			"\"dst\":{\"op\":\"file\",\"actions\":["
			"  {\"mkdir\":{\"path\":\"out\"}},"
			"  {\"mkfile\":{\"path\":\"out/keep\",\"data\":\"K\"}},"
			"  {\"mkdir\":{\"path\":\"f\"}},"
			"  {\"mkfile\":{\"path\":\"f/x\",\"data\":\"X\"}}]},"
			"\"x\":{\"op\":\"file\",\"base\":\"dst\",\"actions\":["
			"  {\"copy\":{\"from\":\"src\",\"src\":\"dir\",\"dest\":\"out\"}},"
			"  {\"copy\":{\"from\":\"src\",\"src\":\"one\",\"dest\":\"deep/er/one\"}},"
			"  {\"copy\":{\"from\":\"src\",\"src\":\"one\",\"dest\":\"f\"}},"
			"  {\"copy\":{\"from\":\"src\",\"src\":\"dir\",\"dest\":\"filt\","
			"           \"include\":[\"**/*.c\"],\"exclude\":[\"sub\"]}},"
			"  {\"copy\":{\"from\":\"dst\",\"src\":\"out\",\"dest\":\"again\"}}]}},"
			"\"outputs\":[\"x\"]}";

	ctx_reset();
	CHECK_EQ_INT(run_spec(s, id, &msg), 0);
	if (msg)
		fprintf(stderr, "  %s\n", msg);
	/* dir: its contents go into dest, merged with what is there (cp -a src/. dest). */
	CHECK_EQ_STR(tree_cat(id, "out/keep"), "K");
	CHECK_EQ_STR(tree_cat(id, "out/a.c"), "A");
	CHECK_EQ_STR(tree_cat(id, "out/sub/b.c"), "B");
	CHECK_EQ_STR(tree_stat(id, "out/sub"), "d 0750");
	CHECK_EQ_STR(tree_stat(id, "out/dir"), "");
	/* file: replaces dest (even a dir), missing parents created. */
	CHECK_EQ_STR(tree_stat(id, "deep/er/one"), "f 0755");
	CHECK_EQ_STR(tree_stat(id, "deep/er"), "d 0755");
	CHECK_EQ_STR(tree_stat(id, "f"), "f 0755");
	CHECK_EQ_STR(tree_stat(id, "f/x"), "");
	/* include/exclude relative to src. */
	CHECK_EQ_STR(tree_cat(id, "filt/a.c"), "A");
	CHECK_EQ_STR(tree_stat(id, "filt/a.o"), "");
	CHECK_EQ_STR(tree_stat(id, "filt/sub"), "");
	/* the base is also an input; "again" is dst's out, without the copies. */
	CHECK_EQ_STR(tree_cat(id, "again/keep"), "K");
	CHECK_EQ_STR(tree_stat(id, "again/a.c"), "");
	free(msg);
}

/* ---- merge ---- */

static void test_merge(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;
	const char *s =
	    "{\"vertices\":{"
	    "\"a\":{\"op\":\"file\",\"actions\":["
	    "  {\"mkdir\":{\"path\":\"d\"}},{\"mkfile\":{\"path\":\"d/a\",\"data\":\"a\"}},"
	    "  {\"mkfile\":{\"path\":\"d/both\",\"data\":\"from a\"}},"
	    "  {\"mkdir\":{\"path\":\"x\"}},{\"mkfile\":{\"path\":\"x/inner\",\"data\":\"i\"}},"
	    "  {\"mkfile\":{\"path\":\"y\",\"data\":\"file y\"}}]},"
	    "\"b\":{\"op\":\"file\",\"actions\":["
	    "  {\"mkdir\":{\"path\":\"d\",\"mode\":\"0700\"}},"
	    "  {\"mkfile\":{\"path\":\"d/b\",\"data\":\"b\"}},"
	    "  {\"mkfile\":{\"path\":\"d/both\",\"data\":\"from b\"}},"
	    "  {\"mkfile\":{\"path\":\"x\",\"data\":\"file x\"}},"
	    "  {\"mkdir\":{\"path\":\"y\"}},{\"mkfile\":{\"path\":\"y/z\",\"data\":\"z\"}}]},"
	    "\"m\":{\"op\":\"merge\",\"inputs\":[\"a\",\"b\"]}},"
	    "\"outputs\":[\"m\"]}";

	ctx_reset();
	CHECK_EQ_INT(run_spec(s, id, &msg), 0);
	CHECK_EQ_STR(tree_cat(id, "d/a"), "a");
	CHECK_EQ_STR(tree_cat(id, "d/b"), "b");
	CHECK_EQ_STR(tree_cat(id, "d/both"), "from b");
	CHECK_EQ_STR(tree_stat(id, "d"), "d 0700");
	CHECK_EQ_STR(tree_cat(id, "x"), "file x");
	CHECK_EQ_STR(tree_stat(id, "x/inner"), "");
	CHECK_EQ_STR(tree_cat(id, "y/z"), "z");
	CHECK_EQ_INT(tree_count(id), 8);
	free(msg);
}

/* ---- exec ---- */

/* A spec with one input vertex "in" (a/x = "X", a/y = "Y") and the exec "e". */
static int run_exec(const char *exec_fields, int timeout, char outs[SFS_DIGEST_SIZE],
		    char **ret_msg)
{
	return run_spec(spec_printf("{\"vertices\":{"
				    "\"in\":{\"op\":\"file\",\"actions\":["
				    "  {\"mkdir\":{\"path\":\"a\"}},"
				    "  {\"mkfile\":{\"path\":\"a/x\",\"data\":\"X\"}},"
				    "  {\"mkfile\":{\"path\":\"a/y\",\"data\":\"Y\"}}]},"
				    "\"e\":{\"op\":\"exec\",%s%s}},\"outputs\":[\"e\"]}",
				    exec_fields,
				    timeout ? spec_printf(",\"timeout\":%d", timeout) : ""),
			outs, ret_msg);
}

/* The process's own output: after the line that says it ran unsandboxed. */
static const char *exec_log(void)
{
	static const char warn[] = "solverfs: warning: no sandbox (sandbox=none)";
	const char *nl;

	if (!logbuf.buf || strncmp(logbuf.buf, warn, strlen(warn)) != 0 ||
	    !(nl = strchr(logbuf.buf, '\n')))
		return "(no sandbox warning in the log)";
	return nl + 1;
}

static void test_exec_outputs(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;

	ctx_reset();
	CHECK_EQ_INT(run_exec("\"args\":[\"sh\",\"-c\",\"cat in/a/x > out/got; echo hi > out/new; "
			      "ls > out/ls; echo err >&2\"],"
			      "\"mounts\":[{\"dest\":\"in\",\"input\":\"in\"},"
			      "{\"dest\":\"out\",\"output\":true}]",
			      0, id, &msg),
		     0);
	if (msg)
		fprintf(stderr, "  %s\n", msg);
	CHECK_EQ_STR(tree_cat(id, "got"), "X");
	CHECK_EQ_STR(tree_cat(id, "new"), "hi\n");
	CHECK_EQ_STR(tree_cat(id, "ls"), "in\nout\n");
	CHECK_EQ_STR(exec_log(), "err\n");
	free(msg);
	msg = NULL;

	/* An output mount with an input starts as a copy of it. */
	ctx_reset();
	CHECK_EQ_INT(run_exec("\"args\":[\"sh\",\"-c\",\"echo more >> w/a/x; rm w/a/y\"],"
			      "\"mounts\":[{\"dest\":\"w\",\"input\":\"in\",\"output\":true}]",
			      0, id, &msg),
		     0);
	CHECK_EQ_STR(tree_cat(id, "a/x"), "Xmore\n");
	CHECK_EQ_STR(tree_stat(id, "a/y"), "");
	free(msg);
}

static void test_exec_readonly_and_selector(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;

	ctx_reset();
	CHECK(run_exec("\"args\":[\"sh\",\"-c\",\"echo no > in/a/x\"],"
		       "\"mounts\":[{\"dest\":\"in\",\"input\":\"in\"},"
		       "{\"dest\":\"out\",\"output\":true}]",
		       0, id, &msg) < 0);
	CHECK(msg && strstr(msg, "exit code: "));
	free(msg);
	msg = NULL;

	/* A file selector mounts one file; nothing else of the input is there. */
	ctx_reset();
	CHECK_EQ_INT(
	    run_exec("\"args\":[\"sh\",\"-c\",\"cat the/x > out/got; ls -a the > out/ls\"],"
		     "\"mounts\":[{\"dest\":\"the/x\",\"input\":\"in\",\"selector\":\"a/x\"},"
		     "{\"dest\":\"out\",\"output\":true}]",
		     0, id, &msg),
	    0);
	CHECK_EQ_STR(tree_cat(id, "got"), "X");
	CHECK_EQ_STR(tree_cat(id, "ls"), ".\n..\nx\n");
	free(msg);
}

static void test_exec_env_cwd(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;

	ctx_reset();
	CHECK_EQ_INT(run_exec("\"args\":[\"env\"],\"env\":{\"FOO\":\"bar\"},"
			      "\"mounts\":[{\"dest\":\"out\",\"output\":true}]",
			      0, id, &msg),
		     0);
	CHECK_EQ_STR(exec_log(), "FOO=bar\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
				 "/usr/bin:/sbin:/bin\n");
	ctx_reset();
	CHECK_EQ_INT(run_exec("\"args\":[\"env\"],\"env\":{\"PATH\":\"/bin:/usr/bin\"},"
			      "\"mounts\":[{\"dest\":\"out\",\"output\":true}]",
			      0, id, &msg),
		     0);
	CHECK_EQ_STR(exec_log(), "PATH=/bin:/usr/bin\n");

	ctx_reset();
	CHECK_EQ_INT(run_exec("\"args\":[\"sh\",\"-c\",\"echo here > f; test -t 0 || cat > g\"],"
			      "\"cwd\":\"out/sub\","
			      "\"mounts\":[{\"dest\":\"out\",\"output\":true}]",
			      0, id, &msg),
		     0);
	CHECK_EQ_STR(tree_cat(id, "sub/f"), "here\n");
	CHECK_EQ_STR(tree_cat(id, "sub/g"), ""); /* stdin is /dev/null */

	ctx_reset();
	CHECK(
	    run_exec("\"args\":[\"no-such-program\"],\"mounts\":[{\"dest\":\"o\",\"output\":true}]",
		     0, id, &msg) < 0);
	CHECK_EQ_STR(msg,
		     "process \"no-such-program\" did not complete successfully: exit code: "
		     "127\nsolverfs: cannot run \"no-such-program\": No such file or directory");
	free(msg);
}

static void test_exec_failure_message(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;

	ctx_reset();
	CHECK(run_exec("\"args\":[\"sh\",\"-c\",\"for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "
		       "line$i; done; exit 3\"],\"mounts\":[{\"dest\":\"o\",\"output\":true}]",
		       0, id, &msg) == -EIO);
	CHECK_EQ_STR(msg,
		     "process \"sh -c for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i; "
		     "done; exit 3\" did not complete successfully: exit code: 3\n"
		     "line3\nline4\nline5\nline6\nline7\nline8\nline9\nline10\nline11\nline12");
	free(msg);
	msg = NULL;

	ctx_reset();
	CHECK(run_exec("\"args\":[\"sh\",\"-c\",\"kill -9 "
		       "$$\"],\"mounts\":[{\"dest\":\"o\",\"output\":true}]",
		       0, id, &msg) < 0);
	CHECK_EQ_STR(msg, "process \"sh -c kill -9 $$\" did not complete successfully: exit code: "
			  "137");
	free(msg);
}

static void test_exec_timeout(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;
	double t0 = tap_now_s();

	ctx_reset();
	CHECK(run_exec("\"args\":[\"sh\",\"-c\",\"echo start; sleep "
		       "30\"],\"mounts\":[{\"dest\":\"o\",\"output\":true}]",
		       1, id, &msg) < 0);
	CHECK(tap_now_s() - t0 < 3);
	CHECK_EQ_STR(msg, "process \"sh -c echo start; sleep 30\" did not complete successfully: "
			  "timeout after 1s\nstart");
	free(msg);
}

static void *cancel_later(void *arg)
{
	usleep(300000);
	atomic_store(&sig.cancelled, true);
	return NULL;
}

static void test_exec_cancel(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;
	pthread_t th;
	double t0;

	ctx_reset();
	pthread_create(&th, NULL, cancel_later, NULL);
	t0 = tap_now_s();
	CHECK(run_exec("\"args\":[\"sh\",\"-c\",\"sleep 30 & sleep "
		       "30\"],\"mounts\":[{\"dest\":\"o\",\"output\":true}]",
		       0, id, &msg) == -ECANCELED);
	CHECK(tap_now_s() - t0 < 1.3);
	CHECK_EQ_INT(atomic_load(&sig.pgid), 0);
	pthread_join(th, NULL);
	free(msg);
}

static void test_exec_background_killed(void)
{
	char *d = tap_tmpdir(), id[SFS_DIGEST_SIZE], *msg = NULL, marker[4096];

	ctx_reset();
	snprintf(marker, sizeof(marker), "%s/marker", d);
	CHECK_EQ_INT(run_exec(spec_printf("\"args\":[\"sh\",\"-c\",\"(sleep 0.5; touch %s; "
					  "echo late > out/late) & echo main > out/main\"],"
					  "\"mounts\":[{\"dest\":\"out\",\"output\":true}]",
					  marker),
			      0, id, &msg),
		     0);
	CHECK_EQ_STR(tree_cat(id, "main"), "main\n");
	CHECK_EQ_STR(tree_stat(id, "late"), "");
	usleep(800000);
	CHECK(access(marker, F_OK) < 0);
	free(msg);
}

static void test_exec_special_output(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;

	ctx_reset();
	CHECK(run_exec("\"args\":[\"sh\",\"-c\",\"mkfifo out/pipe\"],"
		       "\"mounts\":[{\"dest\":\"out\",\"output\":true}]",
		       0, id, &msg) < 0);
	CHECK(msg && strstr(msg, "output \"out\"") && strstr(msg, "out/pipe") &&
	      !strstr(msg, "exec-"));
	free(msg);
}

static void test_exec_as_user(void)
{
	char id[SFS_DIGEST_SIZE], *msg = NULL;

	if (geteuid() != 0)
		return;
	ctx_reset();
	ctx.uid = 1234;
	ctx.gid = 4321;
	CHECK_EQ_INT(run_exec("\"args\":[\"sh\",\"-c\",\"id -u > out/u; id -g > out/g; "
			      "cat in/a/x > out/x; ! echo no 2>/dev/null > in/a/x\"],"
			      "\"mounts\":[{\"dest\":\"in\",\"input\":\"in\"},"
			      "{\"dest\":\"out\",\"output\":true}]",
			      0, id, &msg),
		     0);
	if (msg)
		fprintf(stderr, "  %s\n", msg);
	CHECK_EQ_STR(tree_cat(id, "u"), "1234\n");
	CHECK_EQ_STR(tree_cat(id, "g"), "4321\n");
	CHECK_EQ_STR(tree_cat(id, "x"), "X");
	free(msg);
}

/* ---- cache maps and content digests ---- */

static void test_default_map_and_content(void)
{
	const char *s = "{\"vertices\":{"
			"\"in\":{\"op\":\"file\",\"actions\":["
			"  {\"mkdir\":{\"path\":\"a\"}},"
			"  {\"mkfile\":{\"path\":\"a/x\",\"data\":\"X\"}},"
			"  {\"mkfile\":{\"path\":\"b\",\"data\":\"B\"}}]},"
			"\"e\":{\"op\":\"exec\",\"args\":[\"true\"],\"mounts\":["
			"  {\"dest\":\"w\",\"input\":\"in\"},"
			"  {\"dest\":\"x\",\"input\":\"in\",\"selector\":\"a/x\"},"
			"  {\"dest\":\"o\",\"input\":\"in\",\"output\":true}]},"
			"\"f\":{\"op\":\"file\",\"actions\":["
			"  {\"copy\":{\"from\":\"in\",\"src\":\"a\",\"dest\":\"a\"}},"
			"  {\"copy\":{\"from\":\"in\",\"src\":\"b\",\"dest\":\"b\"}}]}},"
			"\"outputs\":[\"e\",\"f\"]}";
	struct sfs_spec *sp = parse(s);
	const struct sfs_spec_vertex *e = vertex(sp, "e"), *f = vertex(sp, "f");
	char in_id[SFS_DIGEST_SIZE], got[SFS_DIGEST_SIZE], *msg = NULL, hex[SFS_HEX_SIZE];
	struct sfs_cache_map m = {0};
	struct sfs_op *op = NULL;
	struct tree *t = NULL, *sub = NULL;
	struct strbuf sb = STRBUF_INIT;
	bool done = false;

	ctx_reset();
	CHECK(e && f);
	if (!e || !f)
		return;
	CHECK_EQ_INT(run_spec(spec_printf("{\"vertices\":{\"in\":%s}},\"outputs\":[\"in\"]}",
					  "{\"op\":\"file\",\"actions\":["
					  "  {\"mkdir\":{\"path\":\"a\"}},"
					  "  {\"mkfile\":{\"path\":\"a/x\",\"data\":\"X\"}},"
					  "  {\"mkfile\":{\"path\":\"b\",\"data\":\"B\"}}]"),
			      in_id, &msg),
		     0);
	CHECK_EQ_INT(tree_load(cache.cas, in_id, &t), 0);

	CHECK_EQ_INT(sfs_op_resolve(e, &op), 0);
	CHECK_EQ_INT(sfs_op_cache_map(op, &ctx, 0, &m, &done, &msg), 0);
	CHECK(done);
	char map[SFS_DIGEST_SIZE];
	sfs_dgst_to_text(&e->cache_map_digest, map);
	CHECK_EQ_STR(m.digest, map);
	CHECK_EQ_INT(m.ndeps, 3);
	CHECK_EQ_STR(m.deps[0].selector, "");
	CHECK(m.deps[0].content_func && m.deps[1].content_func && !m.deps[2].content_func);
	CHECK_EQ_STR(m.deps[1].selector, e->inputs[1].selector_digest);
	sfs_cache_map_release(&m);

	/* whole input: the result id; one path: the subtree id of that path. */
	CHECK_EQ_INT(sfs_op_content_digest(op, &ctx, 0, in_id, got, &msg), 0);
	CHECK_EQ_STR(got, in_id);
	CHECK_EQ_INT(sfs_op_content_digest(op, &ctx, 1, in_id, got, &msg), 0);
	CHECK_EQ_INT(tree_subtree(cache.cas, t, "a/x", &sub), 0);
	CHECK_EQ_STR(got, sub->id);
	sub = tree_free(sub);
	op = sfs_op_free(op);

	/* several paths: sha256 over "path\0subtree-id\0" in selector order. */
	CHECK_EQ_INT(f->ninputs, 1);
	CHECK_EQ_INT(sfs_op_resolve(f, &op), 0);
	CHECK_EQ_INT(sfs_op_content_digest(op, &ctx, 0, in_id, got, &msg), 0);
	for (const char *p = "a\0b\0"; *p; p += strlen(p) + 1) {
		CHECK_EQ_INT(tree_subtree(cache.cas, t, p, &sub), 0);
		strbuf_add(&sb, p, strlen(p) + 1);
		strbuf_add(&sb, sub->id, strlen(sub->id) + 1);
		sub = tree_free(sub);
	}
	sfs_sha256_hex(sb.buf, sb.len, hex);
	CHECK_EQ_STR(got + 7, hex);
	strbuf_release(&sb);
	sfs_op_free(op);
	tree_free(t);
	sfs_spec_free(sp);
	free(msg);
}

/* The bwrap run the probe makes (solver/sandbox.c), by hand through the shell: as
 * ourselves, and as root also as nobody. */
static bool bwrap_runs(const char *bwrap)
{
	static const char *const as[] = {"", "setpriv --reuid=65534 --regid=65534 --clear-groups "};
	char cmd[512];

	for (size_t i = 0; i < (geteuid() == 0 ? 2 : 1); i++) {
		snprintf(cmd, sizeof(cmd),
			 "%s%s --die-with-parent --unshare-all --ro-bind / / --dev /dev --proc /proc "
			 "--tmpfs /tmp true </dev/null >/dev/null 2>&1",
			 as[i], bwrap);
		if (system(cmd) != 0)
			return false;
	}
	return true;
}

/* The probe says yes exactly when the first bwrap on its path list runs a trivial
 * sandbox on this host, and gives the same answer when asked again. */
static void test_sandbox_probe(void)
{
	static const char *const paths[] = {"/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"};
	const char *found = NULL;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !found; i++)
		if (access(paths[i], X_OK) == 0)
			found = paths[i];
	bool ok = sfs_sandbox_probe();
	CHECK_EQ_INT(ok, found && bwrap_runs(found));
	CHECK_EQ_INT(sfs_sandbox_probe(), ok);
}

int main(void)
{
	char *state = tap_tmpdir();

	if (cas_open(state, &cache.cas) < 0) {
		fprintf(stderr, "cas_open failed\n");
		return 2;
	}
	cache.state_dir = state;
	RUN(test_local_ingest);
	RUN(test_local_cache_maps);
	RUN(test_local_credentials);
	RUN(test_file_actions);
	RUN(test_file_errors);
	RUN(test_file_copy);
	RUN(test_merge);
	RUN(test_exec_outputs);
	RUN(test_exec_readonly_and_selector);
	RUN(test_exec_env_cwd);
	RUN(test_exec_failure_message);
	RUN(test_exec_timeout);
	RUN(test_exec_cancel);
	RUN(test_exec_background_killed);
	RUN(test_exec_special_output);
	RUN(test_exec_as_user);
	RUN(test_default_map_and_content);
	RUN(test_sandbox_probe);
	cas_close(cache.cas);
	strbuf_release(&logbuf);
	return tap_done();
}
