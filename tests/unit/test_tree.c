/*
 * test_tree.c — result trees: ingest of host dirs, the manifest format and ids,
 * lookups, subtrees, materialize round trips, verification and globs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "db.h"
#include "statcache.h"
#include "tap.h"
#include "tree.h"

static struct cas *open_store(void)
{
	struct cas *c = NULL;
	CHECK_EQ_INT(cas_open(tap_tmpdir(), &c), 0);
	return c;
}

/* ---- building host trees ---- */

static char pbuf[8192];

static const char *P(const char *root, const char *rel)
{
	snprintf(pbuf, sizeof(pbuf), "%s/%s", root, rel);
	return pbuf;
}

static void mk_file(const char *root, const char *rel, const char *data, unsigned mode)
{
	int fd = open(P(root, rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, data, strlen(data)), (long long)strlen(data));
	close(fd);
	CHECK_EQ_INT(chmod(P(root, rel), mode), 0);
}

static void mk_dir(const char *root, const char *rel, unsigned mode)
{
	CHECK_EQ_INT(mkdir(P(root, rel), 0700), 0);
	CHECK_EQ_INT(chmod(P(root, rel), mode), 0);
}

static void mk_link(const char *root, const char *rel, const char *target)
{
	CHECK_EQ_INT(symlink(target, P(root, rel)), 0);
}

/* A fresh empty dir with mode 0755 (not subject to umask). */
static char *new_dir(void)
{
	char *d = NULL;
	CHECK(asprintf(&d, "%s/t", tap_tmpdir()) > 0);
	CHECK_EQ_INT(mkdir(d, 0755), 0);
	CHECK_EQ_INT(chmod(d, 0755), 0);
	return d;
}

/* The sample tree most tests use. */
static char *sample_dir(void)
{
	char *d = new_dir();
	mk_file(d, "a.txt", "alpha\n", 0644);
	mk_file(d, "run.sh", "#!/bin/sh\n", 0755);
	mk_dir(d, "src", 0750);
	mk_file(d, "src/main.c", "int main(void) { return 0; }\n", 0600);
	mk_dir(d, "src/lib", 0755);
	mk_file(d, "src/lib/x.c", "x\n", 0644);
	mk_file(d, "src/lib/y.h", "y\n", 0644);
	mk_dir(d, "empty", 0700);
	mk_link(d, "link", "src/main.c");
	mk_link(d, "src/dangling", "../nowhere");
	return d;
}

static struct tree *ingest(struct cas *c, const char *dir, const struct tree_ingest_opts *o)
{
	struct tree *t = NULL;
	char *msg = NULL;
	int r = tree_ingest(c, dir, o, &t, &msg);
	if (r < 0)
		fprintf(stderr, "  ingest %s: %d %s\n", dir, r, msg ? msg : "");
	CHECK_EQ_INT(r, 0);
	free(msg);
	return t;
}

static bool has_path(const struct tree *t, const char *p)
{
	return t && tree_find(t, p) != NULL;
}

/* ---- globs ---- */

static void test_glob(void)
{
	CHECK(tree_glob_match("*.c", "main.c"));
	CHECK(!tree_glob_match("*.c", "src/main.c")); /* whole path, FNM_PATHNAME */
	CHECK(tree_glob_match("src/*.c", "src/main.c"));
	CHECK(!tree_glob_match("src/*.c", "src/lib/x.c"));
	CHECK(tree_glob_match("**/x.c", "x.c"));
	CHECK(tree_glob_match("**/x.c", "src/lib/x.c"));
	CHECK(tree_glob_match("**/*.c", "a/b/c/d.c"));
	CHECK(!tree_glob_match("**/*.c", "a/b/c/d.h"));
	CHECK(tree_glob_match("src/**", "src/lib/x.c"));
	CHECK(tree_glob_match("src/**", "src/main.c"));
	CHECK(tree_glob_match("src/**", "src"));
	CHECK(!tree_glob_match("src/**", "srcx/a"));
	CHECK(tree_glob_match("a/**/b", "a/b"));
	CHECK(tree_glob_match("a/**/b", "a/x/y/b"));
	CHECK(!tree_glob_match("a/**/b", "a/x/y/c"));
	CHECK(tree_glob_match("**", "anything/at/all"));
	CHECK(tree_glob_match(".git", ".git"));
	CHECK(!tree_glob_match(".git", "sub/.git"));
	CHECK(tree_glob_match("**/.git", "sub/.git"));
	CHECK(tree_glob_match("[ab]?", "bz"));
	CHECK(tree_glob_match("dir/", "dir")); /* trailing slash ignored */
	CHECK(!tree_glob_match("a", "a/b"));
	/* many stars stay polynomial */
	CHECK(!tree_glob_match("**/**/**/**/**/**/**/**/z", "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/y"));
}

/* ---- ingest ---- */

static void test_ingest_nested(void)
{
	struct cas *c = open_store();
	char *d = sample_dir();
	struct tree *t = ingest(c, d, NULL);
	const struct tree_entry *e;
	static const char *const order[] = {".",	   "a.txt",	  "empty",	  "link",
					    "run.sh",	   "src",	  "src/dangling", "src/lib",
					    "src/lib/x.c", "src/lib/y.h", "src/main.c"};

	if (!t)
		return;
	CHECK_EQ_INT(t->n, 11);
	for (size_t i = 0; i < t->n && i < 11; i++)
		CHECK_EQ_STR(t->entries[i].path, order[i]);
	CHECK_EQ_INT(t->entries[0].type, 'd');
	CHECK_EQ_INT(t->entries[0].mode, 0755);
	CHECK(strncmp(t->id, "sha256:", 7) == 0 && sfs_is_digest(t->id));

	e = tree_find(t, "run.sh");
	CHECK(e && e->type == 'f' && e->mode == 0755 && e->size == 10);
	e = tree_find(t, "src/main.c");
	CHECK(e && e->mode == 0600);
	e = tree_find(t, "src");
	CHECK(e && e->type == 'd' && e->mode == 0750 && e->size == 0 && e->hex[0] == '\0');
	e = tree_find(t, "empty");
	CHECK(e && e->type == 'd' && e->mode == 0700);

	/* symlinks: not followed, hex = sha256(target), target stored as a blob */
	char hex[SFS_HEX_SIZE], *buf = NULL;
	e = tree_find(t, "link");
	CHECK(e && e->type == 'l' && e->mode == 0777 && e->size == strlen("src/main.c"));
	sfs_sha256_hex("src/main.c", 10, hex);
	CHECK(e && strcmp(e->hex, hex) == 0);
	CHECK_EQ_INT(cas_read_all(c, hex, &buf, NULL), 0);
	CHECK_EQ_STR(buf, "src/main.c");
	free(buf);
	e = tree_find(t, "src/dangling");
	CHECK(e && e->type == 'l' && e->size == 10);

	/* total size: 6 + 10 + 29 + 2 + 2 */
	CHECK_EQ_INT(t->total_size, 49);

	/* same content again: same id, no new blobs */
	uint64_t before = 0, after = 0;
	CHECK_EQ_INT(cas_usage(c, &before, NULL), 0);
	struct tree *t2 = ingest(c, d, NULL);
	CHECK(t2 && strcmp(t->id, t2->id) == 0);
	CHECK_EQ_INT(cas_usage(c, &after, NULL), 0);
	CHECK_EQ_INT(before, after);
	/* a mode change changes the id */
	CHECK_EQ_INT(chmod(P(d, "a.txt"), 0640), 0);
	struct tree *t3 = ingest(c, d, NULL);
	CHECK(t3 && strcmp(t->id, t3->id) != 0);
	tree_free(t3);
	tree_free(t2);
	tree_free(t);
	free(d);
	cas_close(c);
}

static void test_ingest_single_file(void)
{
	struct cas *c = open_store();
	char *d = sample_dir();
	struct tree *t = ingest(c, P(d, "run.sh"), NULL);

	if (t) {
		CHECK_EQ_INT(t->n, 2);
		CHECK_EQ_STR(t->entries[0].path, ".");
		CHECK_EQ_INT(t->entries[0].type, 'd');
		CHECK_EQ_STR(t->entries[1].path, "run.sh");
		CHECK_EQ_INT(t->entries[1].mode, 0755);
	}
	tree_free(t);

	/* a symlink as the root is not followed */
	struct tree *t2 = NULL;
	char *msg = NULL;
	CHECK(tree_ingest(c, P(d, "link"), NULL, &t2, &msg) < 0);
	CHECK(msg && strstr(msg, "link"));
	CHECK(t2 == NULL);
	free(msg);
	free(d);
	cas_close(c);
}

struct warnings {
	int n;
	char last[4096];
};

static void on_warn(void *arg, const char *msg)
{
	struct warnings *w = arg;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

static void test_ingest_special(void)
{
	struct cas *c = open_store();
	char *d = sample_dir();
	struct warnings w = {0};
	struct tree_ingest_opts skip = {.special = TREE_SPECIAL_SKIP, .warn = on_warn, .arg = &w};
	struct tree_ingest_opts fail = {.special = TREE_SPECIAL_FAIL};
	struct tree *t0 = ingest(c, d, NULL), *t = NULL;
	char *msg = NULL;

	CHECK_EQ_INT(mkfifo(P(d, "src/lib/pipe"), 0644), 0);
	t = ingest(c, d, &skip);
	CHECK_EQ_INT(w.n, 1);
	CHECK(strstr(w.last, "src/lib/pipe") && strstr(w.last, "fifo"));
	CHECK(t && t0 && strcmp(t->id, t0->id) == 0); /* as if it were not there */
	tree_free(t);
	t = NULL;

	CHECK(tree_ingest(c, d, &fail, &t, &msg) < 0);
	CHECK(t == NULL);
	CHECK(msg && strstr(msg, "src/lib/pipe"));
	free(msg);

	/* an excluded fifo is no error */
	const char *const ex[] = {"**/pipe", NULL};
	fail.exclude = ex;
	t = ingest(c, d, &fail);
	CHECK(t && t0 && strcmp(t->id, t0->id) == 0);
	tree_free(t);
	tree_free(t0);
	free(d);
	cas_close(c);
}

static void test_ingest_filters(void)
{
	struct cas *c = open_store();
	char *d = sample_dir();
	struct tree *t;

	/* exclude a dir: not descended, nothing of it kept */
	const char *const ex1[] = {"src", NULL};
	struct tree_ingest_opts o = {.exclude = ex1};
	t = ingest(c, d, &o);
	CHECK(t && !has_path(t, "src") && !has_path(t, "src/main.c") && has_path(t, "a.txt"));
	tree_free(t);

	/* include only *.c anywhere: parents of matches are kept, nothing else */
	const char *const in2[] = {"**/*.c", NULL};
	o = (struct tree_ingest_opts){.include = in2};
	t = ingest(c, d, &o);
	CHECK(t && t->n == 5);
	CHECK(has_path(t, "src") && has_path(t, "src/lib") && has_path(t, "src/main.c") &&
	      has_path(t, "src/lib/x.c"));
	CHECK(!has_path(t, "a.txt") && !has_path(t, "src/lib/y.h") && !has_path(t, "empty"));
	tree_free(t);

	/* include a dir: all of it; exclude wins over include */
	const char *const in3[] = {"src/lib", "a.txt", NULL};
	const char *const ex3[] = {"**/y.h", NULL};
	o = (struct tree_ingest_opts){.include = in3, .exclude = ex3};
	t = ingest(c, d, &o);
	CHECK(t && t->n == 5);
	CHECK(has_path(t, "a.txt") && has_path(t, "src/lib/x.c") && !has_path(t, "src/lib/y.h"));
	CHECK(!has_path(t, "src/main.c"));
	tree_free(t);

	/* top-level only pattern */
	const char *const in4[] = {"*.txt", "*.sh", NULL};
	o = (struct tree_ingest_opts){.include = in4};
	t = ingest(c, d, &o);
	CHECK(t && t->n == 3 && has_path(t, "a.txt") && has_path(t, "run.sh"));
	tree_free(t);
	free(d);
	cas_close(c);
}

/* As root, read permissions do not stop us: check as an unprivileged child. */
static void test_ingest_unreadable(void)
{
	struct cas *c = open_store();
	char *d = new_dir(), *store = tap_tmpdir();
	struct tree *t = NULL;
	char *msg = NULL;
	int r;

	mk_file(d, "ok", "fine", 0644);
	mk_file(d, "secret", "hidden", 0000);
	if (geteuid() != 0) {
		r = tree_ingest(c, d, NULL, &t, &msg);
		CHECK_EQ_INT(r, -EACCES);
		CHECK(msg && strstr(msg, "secret"));
		free(msg);
		cas_close(c);
		free(d);
		return;
	}
	CHECK_EQ_INT(chmod(store, 0777), 0);
	CHECK_EQ_INT(chmod(d, 0755), 0);
	CHECK_EQ_INT(chmod(P(d, ".."), 0755), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct cas *c2 = NULL;
		if (setgid(65534) < 0 || setuid(65534) < 0 || cas_open(store, &c2) < 0)
			_exit(2);
		r = tree_ingest(c2, d, NULL, &t, &msg);
		_exit(r == -EACCES && msg && strstr(msg, "/secret") ? 0 : 1);
	}
	int status = 0;
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	free(d);
	cas_close(c);
}

/* ---- manifest format and ids ---- */

static void test_manifest_bytes(void)
{
	struct cas *c = open_store();
	char *d = new_dir();
	char hi[SFS_HEX_SIZE], tgt[SFS_HEX_SIZE], id[SFS_DIGEST_SIZE], *m = NULL, *exp = NULL;
	size_t mlen = 0;
	struct tree *t;

	mk_file(d, "a", "hi\n", 0644);
	mk_dir(d, "d", 0700);
	mk_link(d, "d/l", "../a");
	sfs_sha256_hex("hi\n", 3, hi);
	sfs_sha256_hex("../a", 4, tgt);
	/* each field NUL-terminated: type, mode, size, hex, path */
	int n = asprintf(&exp,
			 "d%c0755%c0%c%c.%c"
			 "f%c0644%c3%c%s%ca%c"
			 "d%c0700%c0%c%cd%c"
			 "l%c0777%c4%c%s%cd/l%c",
			 0, 0, 0, 0, 0, 0, 0, 0, hi, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, tgt, 0, 0);
	CHECK(n > 0);

	t = ingest(c, d, NULL);
	if (!t)
		return;
	CHECK_EQ_INT(cas_read_all(c, t->id + 7, &m, &mlen), 0);
	CHECK_EQ_INT(mlen, n);
	CHECK(m && memcmp(m, exp, (size_t)n) == 0);
	sfs_sha256_digest(exp, (size_t)n, id);
	CHECK_EQ_STR(t->id, id);
	tree_compute_id(t->entries, t->n, id);
	CHECK_EQ_STR(t->id, id);

	/* load by id and by bare hex */
	struct tree *l1 = NULL, *l2 = NULL;
	CHECK_EQ_INT(tree_load(c, t->id, &l1), 0);
	CHECK_EQ_INT(tree_load(c, t->id + 7, &l2), 0);
	CHECK(l1 && l1->n == 4 && strcmp(l1->id, t->id) == 0 && l1->total_size == 3);
	CHECK(l1 && strcmp(l1->entries[3].path, "d/l") == 0 && l1->entries[3].type == 'l');
	CHECK(l2 && strcmp(l2->id, t->id) == 0);
	struct tree *l3 = NULL;
	CHECK_EQ_INT(
	    tree_load(c, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		      &l3),
	    -ENOENT);
	CHECK_EQ_INT(tree_load(c, "garbage", &l3), -EINVAL);
	/* a blob that is not a manifest */
	char junk[SFS_HEX_SIZE];
	CHECK_EQ_INT(cas_put_buf(c, "not a manifest", 14, junk), 0);
	CHECK(tree_load(c, junk, &l3) < 0);
	CHECK(l3 == NULL);
	tree_free(l1);
	tree_free(l2);
	tree_free(t);
	free(m);
	free(exp);
	free(d);
	cas_close(c);
}

/* ---- trees from entries, find, next_child ---- */

static struct tree *names_tree(struct cas *c)
{
	char e[SFS_HEX_SIZE];
	struct tree *t = NULL;
	CHECK_EQ_INT(cas_put_buf(c, "", 0, e), 0);
	/* deliberately unsorted; "-x" sorts before "." bytewise but the root is first */
	struct tree_entry es[] = {
	    {'f', 0644, 0, "", "a/z"},	 {'d', 0755, 0, "", "a"},	{'f', 0644, 0, "", "b"},
	    {'f', 0644, 0, "", "a.txt"}, {'d', 0755, 0, "", "a/b"},	{'f', 0644, 0, "", "a/b/c"},
	    {'d', 0755, 0, "", "."},	 {'f', 0644, 0, "", "-x"},	{'f', 0644, 0, "", "a/b.c"},
	    {'d', 0755, 0, "", "a/b/d"}, {'f', 0644, 0, "", "a/b/d/e"},
	};
	size_t n = ARRAY_SIZE(es);
	for (size_t i = 0; i < n; i++)
		if (es[i].type == 'f')
			strcpy(es[i].hex, e);
	CHECK_EQ_INT(tree_from_entries(c, es, n, &t), 0);
	return t;
}

static void children(const struct tree *t, const char *dir, char *out, size_t len)
{
	size_t cur = 0;
	const struct tree_entry *e;
	out[0] = '\0';
	while ((e = tree_next_child(t, dir, &cur))) {
		strncat(out, tree_entry_name(e), len - strlen(out) - 1);
		strncat(out, " ", len - strlen(out) - 1);
	}
}

static void test_find_children(void)
{
	struct cas *c = open_store();
	struct tree *t = names_tree(c);
	char buf[256], id[SFS_DIGEST_SIZE];

	if (!t)
		return;
	CHECK_EQ_INT(t->n, 11);
	CHECK_EQ_STR(t->entries[0].path, ".");
	CHECK_EQ_STR(t->entries[1].path, "-x");
	tree_compute_id(t->entries, t->n, id);
	CHECK_EQ_STR(id, t->id);

	CHECK(tree_find(t, "a/b/d/e") && tree_find(t, "a/b/d/e")->type == 'f');
	CHECK(tree_find(t, ".") == &t->entries[0]);
	CHECK(tree_find(t, "-x") != NULL);
	CHECK(tree_find(t, "a/b/x") == NULL);
	CHECK(tree_find(t, "a/") == NULL);
	CHECK_EQ_STR(tree_entry_name(tree_find(t, "a/b/d/e")), "e");
	CHECK_EQ_STR(tree_entry_name(&t->entries[0]), ".");

	children(t, ".", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "-x a a.txt b ");
	children(t, "a", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "b b.c z ");
	children(t, "a/b", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "c d ");
	children(t, "a/b/d", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "e ");
	children(t, "b", buf, sizeof(buf)); /* a file has no children */
	CHECK_EQ_STR(buf, "");
	children(t, "nope", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "");

	/* order of input does not matter; tree_load gives the same tree */
	struct tree *l = NULL;
	CHECK_EQ_INT(tree_load(c, t->id, &l), 0);
	CHECK(l && l->n == t->n);
	tree_free(l);

	/* invalid entry sets */
	char e[SFS_HEX_SIZE];
	sfs_sha256_hex("", 0, e);
	struct tree *bad = NULL;
	struct tree_entry noparent[] = {{'d', 0755, 0, "", "."}, {'f', 0644, 0, "", "x/y"}};
	strcpy(noparent[1].hex, e);
	CHECK_EQ_INT(tree_from_entries(c, noparent, 2, &bad), -EINVAL);
	struct tree_entry noroot[] = {{'f', 0644, 0, "", "y"}};
	strcpy(noroot[0].hex, e);
	CHECK_EQ_INT(tree_from_entries(c, noroot, 1, &bad), -EINVAL);
	struct tree_entry dotdot[] = {{'d', 0755, 0, "", "."}, {'f', 0644, 0, "", ".."}};
	strcpy(dotdot[1].hex, e);
	CHECK_EQ_INT(tree_from_entries(c, dotdot, 2, &bad), -EINVAL);
	struct tree_entry dup[] = {
	    {'d', 0755, 0, "", "."}, {'f', 0644, 0, "", "y"}, {'f', 0644, 0, "", "y"}};
	strcpy(dup[1].hex, e);
	strcpy(dup[2].hex, e);
	CHECK_EQ_INT(tree_from_entries(c, dup, 3, &bad), -EINVAL);
	struct tree_entry noblob[] = {{'d', 0755, 0, "", "."}, {'f', 0644, 5, "", "y"}};
	sfs_sha256_hex("hello", 5, noblob[1].hex);
	CHECK_EQ_INT(tree_from_entries(c, noblob, 2, &bad), -ENOENT);
	CHECK(bad == NULL);
	/* known[] skips the look-up of its entries only, in the caller's order
	 * (here reversed, so the sorted copy's order differs) */
	struct tree_entry mixed[] = {
	    {'f', 0644, 5, "", "y"}, {'f', 0644, 0, "", "z"}, {'d', 0755, 0, "", "."}};
	sfs_sha256_hex("hello", 5, mixed[0].hex);
	strcpy(mixed[1].hex, e);
	bool none[] = {false, false, false}, first[] = {true, false, false},
	     second[] = {false, true, false};
	CHECK_EQ_INT(tree_from_entries_known(c, mixed, none, 3, &bad), -ENOENT);
	CHECK_EQ_INT(tree_from_entries_known(c, mixed, second, 3, &bad), -ENOENT);
	CHECK(bad == NULL);
	CHECK_EQ_INT(tree_from_entries_known(c, mixed, first, 3, &bad), 0);
	CHECK(bad && bad->n == 3 && tree_find(bad, "y") && tree_find(bad, "y")->size == 5);
	bad = tree_free(bad);
	tree_free(t);
	cas_close(c);
}

/* ---- subtrees ---- */

static void test_subtree(void)
{
	struct cas *c = open_store();
	char *d = sample_dir(), *m = NULL, id[SFS_DIGEST_SIZE], hex[SFS_HEX_SIZE];
	struct tree *t = ingest(c, d, NULL), *s = NULL, *alone = NULL;
	size_t mlen = 0;

	if (!t)
		return;
	/* a dir: same id as ingesting that dir by itself */
	CHECK_EQ_INT(tree_subtree(c, t, "src", &s), 0);
	alone = ingest(c, P(d, "src"), NULL);
	CHECK(s && alone && strcmp(s->id, alone->id) == 0);
	CHECK(s && s->n == 6 && strcmp(s->entries[0].path, ".") == 0 && s->entries[0].mode == 0750);
	CHECK(s && tree_find(s, "lib/x.c") != NULL);
	tree_free(s);
	tree_free(alone);

	/* a file: one entry named "." */
	CHECK_EQ_INT(tree_subtree(c, t, "src/lib/x.c", &s), 0);
	CHECK(s && s->n == 1 && s->entries[0].type == 'f' && strcmp(s->entries[0].path, ".") == 0);
	sfs_sha256_hex("x\n", 2, hex);
	char *exp = NULL;
	int n = asprintf(&exp, "f%c0644%c2%c%s%c.%c", 0, 0, 0, hex, 0, 0);
	sfs_sha256_digest(exp, (size_t)n, id);
	CHECK(s && strcmp(s->id, id) == 0);
	CHECK(s && cas_read_all(c, s->id + 7, &m, &mlen) == 0 && mlen == (size_t)n &&
	      memcmp(m, exp, mlen) == 0);
	free(m);
	free(exp);
	/* a loaded one-entry file tree is valid */
	struct tree *l = NULL;
	CHECK(s && tree_load(c, s->id, &l) == 0 && l && l->n == 1 && l->total_size == 2);
	tree_free(l);
	tree_free(s);

	/* a symlink */
	CHECK_EQ_INT(tree_subtree(c, t, "link", &s), 0);
	CHECK(s && s->n == 1 && s->entries[0].type == 'l');
	tree_free(s);

	/* "." is the whole tree */
	CHECK_EQ_INT(tree_subtree(c, t, ".", &s), 0);
	CHECK(s && strcmp(s->id, t->id) == 0 && s->n == t->n);
	tree_free(s);

	/* the empty dir, and a missing path */
	CHECK_EQ_INT(tree_subtree(c, t, "empty", &s), 0);
	CHECK(s && s->n == 1 && s->entries[0].type == 'd' && s->entries[0].mode == 0700);
	tree_free(s);
	s = NULL;
	CHECK_EQ_INT(tree_subtree(c, t, "nope", &s), -ENOENT);
	CHECK(s == NULL);
	tree_free(t);
	free(d);
	cas_close(c);
}

/* ---- materialize and verify ---- */

static void test_materialize(void)
{
	struct cas *c = open_store();
	char *d = sample_dir(), *out = tap_tmpdir(), *msg = NULL, dest[4200], p[4300];
	struct tree *t = ingest(c, d, NULL), *back = NULL;
	struct stat st;

	if (!t)
		return;
	/* round trip */
	snprintf(dest, sizeof(dest), "%s/copy", out);
	CHECK_EQ_INT(tree_materialize(c, t, NULL, dest, false, &msg), 0);
	back = ingest(c, dest, NULL);
	CHECK(back && strcmp(back->id, t->id) == 0);
	tree_free(back);
	snprintf(p, sizeof(p), "%s/link", dest);
	CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
	snprintf(p, sizeof(p), "%s/src/main.c", dest);
	CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1);
	/* dest must not exist */
	CHECK_EQ_INT(tree_materialize(c, t, NULL, dest, false, &msg), -EEXIST);
	CHECK(msg && strstr(msg, dest));
	free(msg);
	msg = NULL;

	/* read-only: write bits cleared everywhere, content identical otherwise */
	snprintf(dest, sizeof(dest), "%s/ro", out);
	CHECK_EQ_INT(tree_materialize(c, t, NULL, dest, true, &msg), 0);
	CHECK(stat(dest, &st) == 0 && (st.st_mode & 07777) == 0555);
	snprintf(p, sizeof(p), "%s/src", dest);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0550);
	snprintf(p, sizeof(p), "%s/src/lib/x.c", dest);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0444);
	snprintf(p, sizeof(p), "%s/run.sh", dest);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0555);
	CHECK_EQ_INT(cas_rmtree(dest), 0);

	/* a selected dir, a selected file, a selected link */
	snprintf(dest, sizeof(dest), "%s/lib", out);
	CHECK_EQ_INT(tree_materialize(c, t, "src/lib", dest, false, &msg), 0);
	snprintf(p, sizeof(p), "%s/y.h", dest);
	CHECK_EQ_INT(access(p, F_OK), 0);
	snprintf(dest, sizeof(dest), "%s/main.c", out);
	CHECK_EQ_INT(tree_materialize(c, t, "src/main.c", dest, true, &msg), 0);
	CHECK(stat(dest, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0400 &&
	      st.st_size == 29);
	snprintf(dest, sizeof(dest), "%s/l", out);
	CHECK_EQ_INT(tree_materialize(c, t, "src/dangling", dest, false, &msg), 0);
	char target[64] = {0};
	CHECK_EQ_INT(readlink(dest, target, sizeof(target) - 1), 10);
	CHECK_EQ_STR(target, "../nowhere");
	snprintf(dest, sizeof(dest), "%s/none", out);
	CHECK_EQ_INT(tree_materialize(c, t, "no/such", dest, false, &msg), -ENOENT);
	CHECK(msg && strstr(msg, "no/such"));
	free(msg);
	msg = NULL;
	CHECK(access(dest, F_OK) != 0);

	/* a missing blob fails and leaves no half-written dest */
	const struct tree_entry *e = tree_find(t, "src/lib/y.h");
	CHECK_EQ_INT(tree_verify(c, t, &msg), 0);
	CHECK_EQ_INT(cas_remove(c, e->hex), 0);
	CHECK(tree_verify(c, t, &msg) < 0);
	CHECK(msg && strstr(msg, "src/lib/y.h"));
	free(msg);
	msg = NULL;
	snprintf(dest, sizeof(dest), "%s/broken", out);
	CHECK(tree_materialize(c, t, NULL, dest, true, &msg) < 0);
	CHECK(msg && strstr(msg, "y.h"));
	free(msg);
	CHECK(access(dest, F_OK) != 0);
	tree_free(t);
	free(d);
	cas_close(c);
}

/* ---- scale ---- */

/* Verify: sizes for every blob, hashes for the small ones. */
static void test_verify_corrupt(void)
{
	struct cas *c = open_store();
	char *d = sample_dir();
	struct tree *t = ingest(c, d, NULL);
	const struct tree_entry *e = t ? tree_find(t, "a.txt") : NULL;
	char blob[600], *msg = NULL;
	CHECK(e != NULL);
	if (!e)
		goto out;
	CHECK_EQ_INT(tree_verify(c, t, &msg), 0);
	/* same size, other bytes: only the hash can tell */
	cas_blob_path(c, e->hex, blob, sizeof(blob));
	CHECK_EQ_INT(chmod(blob, 0644), 0);
	FILE *f = fopen(blob, "r+");
	CHECK(f && fputs("ALPHA\n", f) >= 0);
	if (f)
		fclose(f);
	CHECK_EQ_INT(tree_verify(c, t, &msg), -EIO);
	CHECK(msg && strstr(msg, "a.txt") && strstr(msg, "corrupt"));
	CHECK(!cas_has(c, e->hex)); /* removed: the next put writes it again */
	char hex[SFS_HEX_SIZE];
	CHECK_EQ_INT(cas_put_buf(c, "alpha\n", 6, hex), 0);
	CHECK_EQ_STR(hex, e->hex);
	free(msg);
	msg = NULL;
	CHECK_EQ_INT(tree_verify(c, t, &msg), 0);
	/* longer or shorter: the size tells, from the one read the hash makes (a longer
	 * blob is not read), and the blob stays */
	static const char *const damaged[] = {"alpha\nand more\n", "alp"};
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(chmod(blob, 0644), 0);
		f = fopen(blob, "w");
		CHECK(f && fputs(damaged[i], f) >= 0);
		if (f)
			fclose(f);
		CHECK_EQ_INT(tree_verify(c, t, &msg), -EIO);
		char want[64];
		snprintf(want, sizeof(want), "has %zu bytes, expected 6", strlen(damaged[i]));
		CHECK(msg && strstr(msg, "a.txt") && strstr(msg, want));
		CHECK(cas_has(c, e->hex));
		free(msg);
		msg = NULL;
	}
	CHECK_EQ_INT(cas_remove(c, e->hex), 0);
	CHECK_EQ_INT(tree_verify(c, t, &msg), -ENOENT);
	CHECK(msg && strstr(msg, "a.txt"));
out:
	free(msg);
	tree_free(t);
	free(d);
	cas_close(c);
}

static void test_large_tree(void)
{
	struct cas *c = open_store();
	char *d = new_dir(), name[64], data[64];
	struct tree *t, *t2;
	double t0;

	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "dir%03d", i);
		mk_dir(d, name, 0755);
		for (int j = 0; j < 100; j++) {
			snprintf(name, sizeof(name), "dir%03d/f%03d", i, j);
			snprintf(data, sizeof(data), "%d %d\n", i, j);
			mk_file(d, name, data, 0644);
		}
	}
	t0 = tap_now_s();
	t = ingest(c, d, NULL);
	double first = tap_now_s() - t0;
	t0 = tap_now_s();
	t2 = ingest(c, d, NULL);
	double second = tap_now_s() - t0;
	fprintf(stderr, "  # 10100 entries: first ingest %.2fs, again %.2fs\n", first, second);
	CHECK(t && t->n == 10101);
	CHECK(t && t2 && strcmp(t->id, t2->id) == 0);

	/* next_child over the root skips the 100 x 100 grandchildren */
	size_t cur = 0, n = 0;
	for (int k = 0; k < 100 && t; k++)
		for (cur = 0, n = 0; tree_next_child(t, ".", &cur);)
			n++;
	CHECK_EQ_INT(n, 100);
	CHECK(t && tree_find(t, "dir042/f042") != NULL);
	tree_free(t);
	tree_free(t2);
	free(d);
	cas_close(c);
}

/* ---- the stat cache (statcache.h) ---- */

/* The module alone: exact metadata hits, any change misses, racy files are refused. */
static void test_statcache_rules(void)
{
	struct sfs_statcache *sc = NULL;
	struct stat st = {.st_mode = S_IFREG | 0644, .st_dev = 7, .st_ino = 42, .st_size = 5};
	char hex[SFS_HEX_SIZE];
	const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
	int64_t later = INT64_MAX / 2; /* a read that began long after st's times */

	CHECK_EQ_INT(sfs_statcache_new(&sc), 0);
	st.st_mtim.tv_sec = st.st_ctim.tv_sec = 1000;
	sfs_statcache_put(sc, &st, h1, 1000 * 1000000000LL + 1); /* changed 1 ns before */
	CHECK(!sfs_statcache_get(sc, &st, hex));
	CHECK_EQ_INT(sfs_statcache_len(sc), 0);
	sfs_statcache_put(sc, &st, h1, later);
	CHECK(sfs_statcache_get(sc, &st, hex) && strcmp(hex, h1) == 0);
	struct stat other = st;
	other.st_size = 6;
	CHECK(!sfs_statcache_get(sc, &other, hex));
	other = st;
	other.st_ctim.tv_nsec = 1;
	CHECK(!sfs_statcache_get(sc, &other, hex));
	other = st;
	other.st_mtim.tv_sec = 999;
	CHECK(!sfs_statcache_get(sc, &other, hex));
	other = st;
	other.st_ino = 43;
	CHECK(!sfs_statcache_get(sc, &other, hex));
	other = st;
	other.st_mode = S_IFLNK | 0777; /* only regular files */
	CHECK(!sfs_statcache_get(sc, &other, hex));
	sfs_statcache_free(sc);
}

/* Through tree_ingest: a remembered file is named by its remembered blob without
 * being read; a changed file, or one whose blob left the store, is read again. */
static void test_statcache_ingest(void)
{
	struct cas *c = open_store();
	struct sfs_statcache *sc = NULL;
	char *d = new_dir(), stand_in[SFS_HEX_SIZE], gone[SFS_HEX_SIZE];
	struct tree_ingest_opts o = {0};
	struct stat st;
	struct tree *t;

	CHECK_EQ_INT(sfs_statcache_new(&sc), 0);
	o.statcache = sc;
	mk_file(d, "a", "alpha\n", 0644);
	mk_file(d, "b", "beta\n", 0644);
	/* Fresh files are too new to remember. */
	t = ingest(c, d, &o);
	CHECK_EQ_INT(sfs_statcache_len(sc), 0);
	tree_free(t);
	/* Say "a" was read long ago and held other bytes: the ingest believes it. */
	CHECK_EQ_INT(cas_put_buf(c, "other\n", 6, stand_in), 0);
	CHECK_EQ_INT(stat(P(d, "a"), &st), 0);
	sfs_statcache_put(sc, &st, stand_in, INT64_MAX / 2);
	t = ingest(c, d, &o);
	CHECK(t && strcmp(tree_find(t, "a")->hex, stand_in) == 0);
	CHECK(t && tree_find(t, "a")->size == 6); /* the file's size, as stat'ed */
	tree_free(t);
	/* A write changes ctime: the file is read again. */
	mk_file(d, "a", "gamma\n", 0644);
	t = ingest(c, d, &o);
	CHECK(t && strcmp(tree_find(t, "a")->hex, stand_in) != 0);
	tree_free(t);
	/* A remembered blob that is no longer in the store is not trusted. */
	CHECK_EQ_INT(cas_put_buf(c, "gone!\n", 6, gone), 0);
	CHECK_EQ_INT(cas_remove(c, gone), 0);
	CHECK_EQ_INT(stat(P(d, "b"), &st), 0);
	sfs_statcache_put(sc, &st, gone, INT64_MAX / 2);
	t = ingest(c, d, &o);
	CHECK(t && strcmp(tree_find(t, "b")->hex, gone) != 0 && cas_has(c, tree_find(t, "b")->hex));
	tree_free(t);
	sfs_statcache_free(sc);
	free(d);
	cas_close(c);
}

/* Over a database: what one open put and flushed, the next open remembers. */
static void test_statcache_persist(void)
{
	struct stat st = {.st_mode = S_IFREG | 0644, .st_dev = 7, .st_ino = 42, .st_size = 5};
	const char *h1 = "2222222222222222222222222222222222222222222222222222222222222222";
	struct sfs_statcache_stats stats;
	struct sfs_statcache *sc = NULL;
	struct sfs_db *db = NULL;
	char path[512], hex[SFS_HEX_SIZE];

	snprintf(path, sizeof(path), "%s/statcache.db", tap_tmpdir());
	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	CHECK_EQ_INT(sfs_statcache_open(db, &sc, NULL), 0);
	st.st_mtim.tv_sec = st.st_ctim.tv_sec = 1000;
	st.st_ctim.tv_nsec = 123456789;
	sfs_statcache_put(sc, &st, h1, INT64_MAX / 2);
	sfs_statcache_count(sc, false);
	CHECK_EQ_INT(sfs_statcache_flush(sc), 0);
	CHECK_EQ_INT(sfs_statcache_flush(sc), 0); /* nothing more to write */
	sfs_statcache_free(sc);
	sfs_db_close(db);

	db = NULL;
	sc = NULL;
	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	CHECK_EQ_INT(sfs_statcache_open(db, &sc, NULL), 0);
	CHECK(sfs_statcache_get(sc, &st, hex) && strcmp(hex, h1) == 0);
	struct stat other = st;
	other.st_ctim.tv_nsec++; /* every nanosecond of ctime counts */
	CHECK(!sfs_statcache_get(sc, &other, hex));
	sfs_statcache_stats(sc, &stats);
	/* the counts are a mount's */
	CHECK(stats.entries == 1 && stats.reads == 0 && stats.reused == 0);
	sfs_statcache_free(sc);
	sfs_db_close(db);
}

int main(void)
{
	RUN(test_glob);
	RUN(test_ingest_nested);
	RUN(test_ingest_single_file);
	RUN(test_ingest_special);
	RUN(test_ingest_filters);
	RUN(test_ingest_unreadable);
	RUN(test_manifest_bytes);
	RUN(test_find_children);
	RUN(test_subtree);
	RUN(test_materialize);
	RUN(test_verify_corrupt);
	RUN(test_large_tree);
	RUN(test_statcache_rules);
	RUN(test_statcache_ingest);
	RUN(test_statcache_persist);
	return tap_done();
}
