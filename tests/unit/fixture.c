/*
 * fixture.c — the shared fixtures of the unit tests (fixture.h).
 *
 * fx_run_env hands its test and options to a trampoline through two file-scope
 * variables, because tap_run takes a plain void (*)(void); the tests run one at a
 * time on the main thread.
 */
#include "fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "fdio.h"
#include "keystore.h"
#include "sha256.h"
#include "tap.h"
#include "tree.h"

void fx_env_open(struct fx_env *e, const char *dir, const struct fx_env_opts *o)
{
	struct sfs_solver_opts so;
	char *msg = NULL;

	memset(e, 0, sizeof(*e));
	e->dir = dir ? (char *)dir : tap_tmpdir();
	sfs_solver_opts_default(&so);
	if (o && o->workers)
		so.workers = o->workers;
	so.resolve = o ? o->resolve : NULL;
	CHECK_EQ_INT(sfs_cache_open(e->dir, &e->cache, &msg), 0);
	if (msg)
		fprintf(stderr, "  cache: %s\n", msg);
	free(msg);
	msg = NULL;
	if (!e->cache)
		return;
	CHECK_EQ_INT(sfs_solver_open(e->cache, &so, &e->s, &msg), 0);
	if (msg)
		fprintf(stderr, "  solver: %s\n", msg);
	free(msg);
}

void fx_env_close(struct fx_env *e)
{
	e->s = sfs_solver_close(e->s);
	e->cache = sfs_cache_close(e->cache);
}

static void (*run_fn)(struct fx_env *e);
static const struct fx_env_opts *run_opts;

static void run_in_env(void)
{
	struct fx_env e;

	fx_env_open(&e, NULL, run_opts);
	if (e.s)
		run_fn(&e);
	fx_env_close(&e);
	if (run_opts && run_opts->after)
		run_opts->after();
}

void fx_run_env(const char *name, void (*fn)(struct fx_env *e), const struct fx_env_opts *o)
{
	run_fn = fn;
	run_opts = o;
	tap_run(name, run_in_env);
}

struct sfs_cache *fx_cache_open(void)
{
	struct sfs_cache *c = NULL;

	CHECK_EQ_INT(sfs_cache_open(tap_tmpdir(), &c, NULL), 0);
	return c;
}

void fx_tree(struct sfs_cache *c, const char *dir, unsigned fmode, const char *content,
	     char ret[SFS_DIGEST_SIZE])
{
	char fhex[SFS_HEX_SIZE], lhex[SFS_HEX_SIZE], file[256];
	struct tree *t = NULL;

	snprintf(file, sizeof(file), "%s/f", dir);
	CHECK_EQ_INT(cas_put_buf(c->cas, content, strlen(content), fhex), 0);
	CHECK_EQ_INT(cas_put_buf(c->cas, file, strlen(file), lhex), 0);
	struct tree_entry e[] = {
	    {'d', 0755, 0, "", "."},
	    {'d', 0750, 0, "", (char *)dir},
	    {'f', fmode, strlen(content), "", file},
	    {'l', 0777, strlen(file), "", "l"},
	};
	memcpy(e[2].hex, fhex, sizeof(fhex));
	memcpy(e[3].hex, lhex, sizeof(lhex));
	CHECK_EQ_INT(tree_from_entries(c->cas, e, 4, &t), 0);
	snprintf(ret, SFS_DIGEST_SIZE, "%s", t ? t->id : "");
	tree_free(t);
}

void fx_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(sfs_write_all(fd, buf, len) == 0);
	close(fd);
}

void fx_layout_put_blob(const char *dir, const void *buf, size_t len,
			char ret[SFS_DIGEST_SIZE])
{
	char path[4096];

	sfs_sha256_digest(buf, len, ret);
	snprintf(path, sizeof(path), "%s/blobs", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, ret + 7);
	fx_write_file(path, buf, len);
}

struct keystore *fx_keystore_open(bool sqlite, struct sfs_db **ret_db)
{
	struct keystore *ks = NULL;
	char path[512];

	if (!sqlite) {
		CHECK_EQ_INT(keystore_memory_new(&ks), 0);
		return ks;
	}
	snprintf(path, sizeof(path), "%s/solverfs.db", tap_tmpdir());
	CHECK_EQ_INT(sfs_db_open(path, ret_db, NULL), 0);
	CHECK_EQ_INT(keystore_sqlite_new(*ret_db, &ks), 0);
	return ks;
}

void fx_run_backends(const struct fx_case *suite, size_t n, bool *sqlite)
{
	char name[160];

	for (int b = 0; b < 2; b++) {
		*sqlite = b == 1;
		for (size_t i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s: %s", *sqlite ? "sqlite" : "memory",
				 suite[i].name);
			tap_run(name, suite[i].fn);
		}
	}
}
