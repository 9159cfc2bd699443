/*
 * test_cas.c — the content store: naming by content, dedup, crash safety,
 * copies out of the store, scratch dirs and rm -rf of read-only trees.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blobrows.h"
#include "cas.h"
#include "db.h"
#include "tap.h"

/* sha256("hello\n") */
#define HELLO_HEX "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

static struct cas *open_store(char **ret_dir)
{
	struct cas *c = NULL;
	char *dir = tap_tmpdir();
	CHECK_EQ_INT(cas_open(dir, &c), 0);
	if (ret_dir)
		*ret_dir = dir;
	return c;
}

static int write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, data, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static bool dir_empty(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", dir);
	return system(cmd) == 0;
}

static void test_put_and_read(void)
{
	char *dir, hex[SFS_HEX_SIZE], path[4096], *buf = NULL;
	struct cas *c = open_store(&dir);
	struct stat st;
	size_t len = 0;

	CHECK_EQ_INT(cas_put_buf(c, "hello\n", 6, hex), 0);
	CHECK_EQ_STR(hex, HELLO_HEX);
	CHECK(cas_has(c, HELLO_HEX));
	CHECK_EQ_INT(cas_size(c, HELLO_HEX), 6);
	CHECK_EQ_INT(cas_blob_path(c, hex, path, sizeof(path)), 0);
	CHECK(strstr(path, "/blobs/sha256/" HELLO_HEX) != NULL);
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0444);
	CHECK_EQ_INT(cas_read_all(c, hex, &buf, &len), 0);
	CHECK_EQ_INT(len, 6);
	CHECK(buf && memcmp(buf, "hello\n", 6) == 0 && buf[6] == '\0');
	free(buf);

	/* empty blob */
	CHECK_EQ_INT(cas_put_buf(c, "", 0, hex), 0);
	CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_EQ_INT(cas_size(c, hex), 0);

	/* absent and malformed names */
	CHECK(!cas_has(c, "0000000000000000000000000000000000000000000000000000000000000000"));
	CHECK_EQ_INT(
	    cas_size(c, "0000000000000000000000000000000000000000000000000000000000000000"),
	    -ENOENT);
	CHECK(!cas_has(c, "../../etc/passwd"));
	CHECK_EQ_INT(cas_size(c, "nothex"), -EINVAL);
	cas_close(c);
}

static void test_dedup(void)
{
	char *dir, hex1[SFS_HEX_SIZE], hex2[SFS_HEX_SIZE], path[4096];
	struct cas *c = open_store(&dir);
	struct stat st1, st2;
	uint64_t blobs = 0, bytes = 0;

	CHECK_EQ_INT(cas_put_buf(c, "same", 4, hex1), 0);
	CHECK_EQ_INT(cas_blob_path(c, hex1, path, sizeof(path)), 0);
	CHECK_EQ_INT(stat(path, &st1), 0);
	CHECK_EQ_INT(cas_put_buf(c, "same", 4, hex2), 0);
	CHECK_EQ_STR(hex1, hex2);
	CHECK_EQ_INT(stat(path, &st2), 0);
	CHECK_EQ_INT(st1.st_ino, st2.st_ino); /* the second put did not replace it */
	CHECK_EQ_INT(cas_put_buf(c, "other", 5, hex2), 0);
	CHECK_EQ_INT(cas_usage(c, &blobs, &bytes), 0);
	CHECK_EQ_INT(blobs, 2);
	CHECK_EQ_INT(bytes, 9);
	CHECK_EQ_INT(cas_remove(c, hex2), 0);
	CHECK(!cas_has(c, hex2));
	CHECK_EQ_INT(cas_remove(c, hex2), -ENOENT);
	CHECK_EQ_INT(cas_usage(c, &blobs, &bytes), 0);
	CHECK_EQ_INT(blobs, 1);
	/* nothing left behind in tmp/ */
	CHECK(dir_empty(cas_tmp_dir(c)));
	cas_close(c);
}

/* A file larger than one read buffer goes through the streaming path. */
static void test_put_fd_large(void)
{
	char *dir, hex[SFS_HEX_SIZE], hex2[SFS_HEX_SIZE], src[4096];
	struct cas *c = open_store(&dir);
	size_t n = 1000 * 1000 + 7;
	char *data = malloc(n), *back = NULL;
	uint64_t size = 0;
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 131 + (i >> 9));
	snprintf(src, sizeof(src), "%s/big", dir);
	CHECK_EQ_INT(write_file(src, data, n), 0);
	int fd = open(src, O_RDONLY);
	CHECK_EQ_INT(lseek(fd, 7, SEEK_SET), 7); /* from the current offset */
	CHECK_EQ_INT(cas_put_fd(c, fd, hex, &size), 0);
	close(fd);
	CHECK_EQ_INT(size, n - 7);
	sfs_sha256_hex(data + 7, n - 7, hex2);
	CHECK_EQ_STR(hex, hex2);
	CHECK_EQ_INT(cas_read_all(c, hex, &back, &len), 0);
	CHECK(len == n - 7 && memcmp(back, data + 7, len) == 0);
	free(back);

	CHECK_EQ_INT(cas_put_path(c, src, hex, &size), 0);
	CHECK_EQ_INT(size, n);
	sfs_sha256_hex(data, n, hex2);
	CHECK_EQ_STR(hex, hex2);
	/* same large content again: deduplicated, tmp/ stays empty */
	CHECK_EQ_INT(cas_put_path(c, src, hex, &size), 0);
	CHECK_EQ_STR(hex, hex2);
	CHECK(dir_empty(cas_tmp_dir(c)));
	free(data);
	cas_close(c);
}

static void test_put_path_rejects(void)
{
	char *dir, hex[SFS_HEX_SIZE], p[4096], l[4096];
	struct cas *c = open_store(&dir);

	snprintf(p, sizeof(p), "%s/fifo", dir);
	CHECK_EQ_INT(mkfifo(p, 0644), 0);
	CHECK_EQ_INT(cas_put_path(c, p, hex, NULL), -EINVAL); /* and does not hang */
	snprintf(p, sizeof(p), "%s/f", dir);
	CHECK_EQ_INT(write_file(p, "x", 1), 0);
	snprintf(l, sizeof(l), "%s/link", dir);
	CHECK_EQ_INT(symlink(p, l), 0);
	CHECK_EQ_INT(cas_put_path(c, l, hex, NULL), -ELOOP);
	CHECK_EQ_INT(cas_put_path(c, dir, hex, NULL) < 0, 1);
	snprintf(p, sizeof(p), "%s/missing", dir);
	CHECK_EQ_INT(cas_put_path(c, p, hex, NULL), -ENOENT);
	cas_close(c);
}

static void test_copy_out(void)
{
	char *dir, hex[SFS_HEX_SIZE], dest[4096], *back = NULL;
	struct cas *c = open_store(&dir);
	struct stat st;

	CHECK_EQ_INT(cas_put_buf(c, "hello\n", 6, hex), 0);
	snprintf(dest, sizeof(dest), "%s/out", dir);
	CHECK_EQ_INT(cas_copy_out(c, hex, dest, 0750), 0);
	CHECK_EQ_INT(lstat(dest, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ_INT(st.st_mode & 07777, 0750);
	CHECK_EQ_INT(st.st_size, 6);
	CHECK_EQ_INT(st.st_nlink, 1); /* a copy, not a link into the store */
	int fd = open(dest, O_RDONLY);
	back = calloc(1, 16);
	CHECK_EQ_INT(read(fd, back, 16), 6);
	close(fd);
	CHECK_EQ_STR(back, "hello\n");
	free(back);
	/* dest must not exist; a missing blob is ENOENT and leaves nothing */
	CHECK_EQ_INT(cas_copy_out(c, hex, dest, 0644), -EEXIST);
	snprintf(dest, sizeof(dest), "%s/out2", dir);
	CHECK_EQ_INT(
	    cas_copy_out(c, "1111111111111111111111111111111111111111111111111111111111111111",
			 dest, 0644),
	    -ENOENT);
	CHECK(access(dest, F_OK) != 0);
	cas_close(c);
}

/* A crash mid-write leaves a partial file in tmp/, never under a blob name. */
static void test_crash_leftovers(void)
{
	char *dir, p[4096], hex[SFS_HEX_SIZE];
	struct cas *c = open_store(&dir);
	uint64_t blobs = 9;

	snprintf(p, sizeof(p), "%s/blob-partial", cas_tmp_dir(c));
	CHECK_EQ_INT(write_file(p, "half a bl", 9), 0);
	snprintf(p, sizeof(p), "%s/exec-work", cas_tmp_dir(c));
	CHECK_EQ_INT(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/exec-work/ro", cas_tmp_dir(c));
	CHECK_EQ_INT(mkdir(p, 0555), 0);
	CHECK_EQ_INT(cas_put_buf(c, "kept", 4, hex), 0);
	cas_close(c);

	CHECK_EQ_INT(cas_open(dir, &c), 0);
	CHECK(dir_empty(cas_tmp_dir(c)));
	CHECK(cas_has(c, hex));
	CHECK_EQ_INT(cas_usage(c, &blobs, NULL), 0);
	CHECK_EQ_INT(blobs, 1);
	cas_close(c);
}

/* A tree deeper than the fds allowed (5,000 levels, a file and a sibling dir
 * at each, under RLIMIT_NOFILE of 64) is removed whole. */
static void test_rmtree_deep(void)
{
	char *dir, *work = NULL;
	struct cas *c = open_store(&dir);
	struct rlimit old, low;
	int fd, nfd;

	CHECK_EQ_INT(cas_mkdtemp(c, "deep-", &work), 0);
	fd = open(work, O_RDONLY | O_DIRECTORY);
	CHECK(fd >= 0);
	for (int i = 0; i < 5000 && fd >= 0; i++) {
		CHECK_EQ_INT(mkdirat(fd, "d", 0755), 0);
		CHECK_EQ_INT(mkdirat(fd, "side", 0555), 0);
		nfd = openat(fd, "f", O_WRONLY | O_CREAT, 0444);
		CHECK(nfd >= 0);
		close(nfd);
		nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = nfd;
	}
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
	CHECK_EQ_INT(cas_rmtree(work), 0);
	CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
	CHECK(access(work, F_OK) != 0);
	free(work);
	cas_close(c);
}

/* p = "<dir>/<name>", for a call that takes the path */
static const char *in(char p[4096], const char *dir, const char *name)
{
	snprintf(p, 4096, "%s/%s", dir, name);
	return p;
}

static void test_mkdtemp_rmtree(void)
{
	char *dir, *work = NULL, p[4096], outside[2048];
	struct cas *c = open_store(&dir);
	struct stat st;

	CHECK_EQ_INT(cas_mkdtemp(c, "exec-", &work), 0);
	CHECK(work && strncmp(work, cas_tmp_dir(c), strlen(cas_tmp_dir(c))) == 0);
	CHECK(strstr(work, "/exec-") != NULL);
	CHECK_EQ_INT(stat(work, &st), 0);
	CHECK(S_ISDIR(st.st_mode));

	/* a file outside, reachable through a symlink: must survive */
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	CHECK_EQ_INT(mkdir(outside, 0755), 0);
	CHECK_EQ_INT(write_file(in(p, outside, "keep"), "k", 1), 0);
	CHECK_EQ_INT(symlink(outside, in(p, work, "escape")), 0);
	/* read-only nested dirs with files, and a 0000 dir */
	CHECK_EQ_INT(mkdir(in(p, work, "a"), 0755), 0);
	CHECK_EQ_INT(mkdir(in(p, work, "a/b"), 0755), 0);
	CHECK_EQ_INT(write_file(in(p, work, "a/b/f"), "f", 1), 0);
	chmod(p, 0444);
	CHECK_EQ_INT(chmod(in(p, work, "a/b"), 0555), 0);
	CHECK_EQ_INT(chmod(in(p, work, "a"), 0555), 0);
	CHECK_EQ_INT(mkdir(in(p, work, "closed"), 0755), 0);
	CHECK_EQ_INT(write_file(in(p, work, "closed/x"), "x", 1), 0);
	CHECK_EQ_INT(chmod(in(p, work, "closed"), 0000), 0);

	CHECK_EQ_INT(cas_rmtree(work), 0);
	CHECK(access(work, F_OK) != 0);
	CHECK_EQ_INT(access(in(p, outside, "keep"), F_OK), 0);
	CHECK_EQ_INT(cas_rmtree(work), 0); /* already gone: fine */
	/* a plain file and a symlink */
	CHECK_EQ_INT(cas_rmtree(p), 0);
	CHECK(access(p, F_OK) != 0);
	CHECK_EQ_INT(symlink(outside, in(p, dir, "lnk")), 0);
	CHECK_EQ_INT(cas_rmtree(p), 0);
	CHECK_EQ_INT(lstat(p, &st), -1);
	CHECK_EQ_INT(stat(outside, &st), 0);
	free(work);
	cas_close(c);
}

static void test_batch(void)
{
	char *dir, hex[SFS_HEX_SIZE], hex2[SFS_HEX_SIZE], src[4096];
	struct cas *c = open_store(&dir);
	struct cas_batch *b = NULL;
	uint64_t size = 0;

	CHECK_EQ_INT(cas_put_buf(c, "old", 3, hex2), 0);
	CHECK_EQ_INT(cas_batch_new(c, &b), 0);
	CHECK_EQ_INT(cas_batch_put_buf(b, "new", 3, hex), 0);
	CHECK(!cas_has(c, hex));			       /* no name before the commit */
	CHECK_EQ_INT(cas_batch_put_buf(b, "old", 3, hex2), 0); /* exists: nothing queued */
	snprintf(src, sizeof(src), "%s/f", dir);
	CHECK_EQ_INT(write_file(src, "from fd", 7), 0);
	int fd = open(src, O_RDONLY);
	CHECK_EQ_INT(cas_batch_put_fd(b, fd, hex2, &size), 0);
	close(fd);
	CHECK_EQ_INT(size, 7);
	CHECK(!dir_empty(cas_tmp_dir(c)));
	CHECK_EQ_INT(cas_batch_commit(b), 0);
	CHECK(cas_has(c, hex) && cas_has(c, hex2));
	CHECK(dir_empty(cas_tmp_dir(c)));
	CHECK_EQ_INT(cas_batch_commit(b), 0); /* empty commit */

	/* an abandoned batch leaves neither names nor temp files */
	CHECK_EQ_INT(cas_batch_put_buf(b, "dropped", 7, hex), 0);
	b = cas_batch_free(b);
	CHECK(b == NULL);
	CHECK(!cas_has(c, hex));
	CHECK(dir_empty(cas_tmp_dir(c)));
	cas_close(c);
}

/* ---- with a database: small blobs as rows, big ones named at the commit ---- */

/* A store with its database, as sfs_cache_open makes it; group_ms 0: no group commit. */
static struct cas *open_store_db(const char *dir, struct sfs_db **ret_db, unsigned group_ms)
{
	char path[600];
	struct cas *c = NULL;
	char *msg = NULL;

	CHECK_EQ_INT(cas_open(dir, &c), 0);
	snprintf(path, sizeof(path), "%s/solverfs.db", dir);
	CHECK_EQ_INT(sfs_db_open(path, ret_db, &msg), 0);
	if (msg)
		fprintf(stderr, "  %s\n", msg);
	free(msg);
	cas_attach_db(c, *ret_db);
	if (group_ms)
		CHECK_EQ_INT(sfs_db_group_commit(*ret_db, group_ms), 0);
	return c;
}

static void close_store_db(struct cas *c, struct sfs_db *db)
{
	sfs_db_close(db); /* commits, flushing the store first */
	cas_close(c);
}

static bool file_there(struct cas *c, const char *hex)
{
	char p[600];
	return cas_blob_path(c, hex, p, sizeof(p)) == 0 && access(p, F_OK) == 0;
}

static char *pattern(size_t len, char seed)
{
	char *b = malloc(len + 1);
	for (size_t i = 0; b && i < len; i++)
		b[i] = (char)(seed + (char)(i % 61));
	return b;
}

static int count_hex(const char *hex, void *arg)
{
	(void)hex;
	(*(int *)arg)++;
	return 0;
}

/* A small blob is a row: no file, no temp file; every reader of the store reads it. */
static void test_row_blob(void)
{
	char *dir = tap_tmpdir(), hex[SFS_HEX_SIZE], empty[SFS_HEX_SIZE], dest[600], *buf = NULL;
	struct sfs_db *db = NULL;
	struct cas *c = open_store_db(dir, &db, 0);
	char *data = pattern(1024, 'a');
	uint64_t blobs = 0, bytes = 0;
	size_t len = 0;
	int fd = -1, n = 0;
	struct stat st;

	CHECK_EQ_INT(cas_put_buf(c, data, 1024, hex), 0);
	CHECK_EQ_INT(cas_put_buf(c, "", 0, empty), 0);
	CHECK(cas_has(c, hex));
	CHECK(cas_has(c, empty));
	CHECK_EQ_INT(blobrows_has(db, hex), 1);
	CHECK_EQ_INT(blobrows_has(db, HELLO_HEX), 0);
	CHECK(!cas_has(c, HELLO_HEX));
	CHECK(!cas_has(c, "not-hex"));
	CHECK(!file_there(c, hex));
	CHECK(dir_empty(cas_tmp_dir(c)));
	CHECK_EQ_INT(blobrows_size(db, hex), 1024);
	CHECK_EQ_INT(cas_size(c, hex), 1024);
	CHECK_EQ_INT(cas_size(c, empty), 0);
	CHECK_EQ_INT(cas_read_all(c, hex, &buf, &len), 0);
	CHECK(len == 1024 && buf && memcmp(buf, data, 1024) == 0 && buf[1024] == '\0');
	free(buf);
	CHECK_EQ_INT(cas_open_blob(c, hex, &fd), 0);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 1024);
	buf = malloc(2048);
	CHECK(fd >= 0 && read(fd, buf, 2048) == 1024 && memcmp(buf, data, 1024) == 0);
	CHECK(fd >= 0 && write(fd, "x", 1) < 0); /* read-only */
	free(buf);
	if (fd >= 0)
		close(fd);
	snprintf(dest, sizeof(dest), "%s/out", dir);
	CHECK_EQ_INT(cas_copy_out(c, hex, dest, 0640), 0);
	CHECK(stat(dest, &st) == 0 && st.st_size == 1024 && (st.st_mode & 07777) == 0640);
	CHECK_EQ_INT(cas_usage(c, &blobs, &bytes), 0);
	CHECK_EQ_INT(blobs, 2);
	CHECK_EQ_INT(bytes, 1024);
	CHECK_EQ_INT(cas_walk(c, count_hex, &n), 0);
	CHECK_EQ_INT(n, 2);
	/* survives a reopen; removal deletes the row */
	close_store_db(c, db);
	c = open_store_db(dir, &db, 0);
	CHECK_EQ_INT(cas_size(c, hex), 1024);
	CHECK_EQ_INT(cas_remove(c, hex), 0);
	CHECK(!cas_has(c, hex));
	CHECK_EQ_INT(cas_remove(c, hex), -ENOENT);
	CHECK_EQ_INT(cas_usage(c, &blobs, &bytes), 0);
	CHECK_EQ_INT(blobs, 1);
	close_store_db(c, db);
	free(data);
}

/* cas_has_all: rows asked a statement at a time (more than one statement's, and a
 * shorter last one), a file among them, and which one is missing. */
static void test_has_all(void)
{
	enum { N = 2 * SFS_DB_BATCH_ROWS + 3 };
	char *dir = tap_tmpdir(), hexes[N + 1][SFS_HEX_SIZE], content[32];
	const char *hex[N + 1];
	struct sfs_db *db = NULL;
	struct cas *c = open_store_db(dir, &db, 0);
	char *big = pattern(CAS_ROW_MAX + 1, 'b');
	size_t gone = 99;

	for (int i = 0; i < N; i++) {
		int n = snprintf(content, sizeof(content), "blob %d", i);
		CHECK_EQ_INT(cas_put_buf(c, content, (size_t)n, hexes[i]), 0);
		hex[i] = hexes[i];
	}
	CHECK(cas_has_all(c, hex, N, &gone));
	CHECK_EQ_INT(gone, 99); /* untouched */
	CHECK_EQ_INT(blobrows_has_all(db, hex, SFS_DB_BATCH_ROWS), 1);
	CHECK_EQ_INT(blobrows_has_all(db, hex, 1), 1);
	CHECK(blobrows_has_all(db, hex, SFS_DB_BATCH_ROWS + 1) < 0);
	/* a file (a big blob, not a row) in the second statement's rows */
	CHECK_EQ_INT(cas_put_buf(c, big, CAS_ROW_MAX + 1, hexes[N]), 0);
	hex[SFS_DB_BATCH_ROWS + 2] = hexes[N];
	CHECK_EQ_INT(blobrows_has_all(db, hex + SFS_DB_BATCH_ROWS, SFS_DB_BATCH_ROWS), 0);
	CHECK(cas_has_all(c, hex, N, &gone));
	/* one gone from the short last statement, then one from the first */
	CHECK_EQ_INT(cas_remove(c, hexes[N - 1]), 0);
	CHECK(!cas_has_all(c, hex, N, &gone));
	CHECK_EQ_INT(gone, N - 1);
	CHECK_EQ_INT(cas_remove(c, hexes[3]), 0);
	CHECK(!cas_has_all(c, hex, N, &gone));
	CHECK_EQ_INT(gone, 3);
	hex[3] = "not-hex";
	CHECK(!cas_has_all(c, hex, 4, &gone));
	CHECK_EQ_INT(gone, 3);
	CHECK(cas_has_all(c, hex, 0, &gone));
	/* batches: full ones while more than a full one's repeats are left */
	CHECK_EQ_INT(sfs_db_batch_rows(1), SFS_DB_BATCH_FEW);
	CHECK_EQ_INT(sfs_db_batch_rows(SFS_DB_BATCH_ROWS - SFS_DB_BATCH_FEW), SFS_DB_BATCH_FEW);
	CHECK_EQ_INT(sfs_db_batch_rows(SFS_DB_BATCH_ROWS - SFS_DB_BATCH_FEW + 1),
		     SFS_DB_BATCH_ROWS);
	CHECK_EQ_INT(sfs_db_batch_rows(1000), SFS_DB_BATCH_ROWS);
	close_store_db(c, db);
	free(big);
}

/* CAS_ROW_MAX bytes is a row, one more a file that is readable at once but gets its
 * name only at the flush the next commit runs. */
static void test_row_threshold(void)
{
	char *dir = tap_tmpdir(), row[SFS_HEX_SIZE], big[SFS_HEX_SIZE], big2[SFS_HEX_SIZE];
	char p[600], *buf = NULL;
	struct sfs_db *db = NULL;
	struct cas *c = open_store_db(dir, &db, 60000);
	char *data = pattern(CAS_ROW_MAX + 1, 'A');
	char *large = pattern(300 * 1024, 'k');
	uint64_t blobs = 0, bytes = 0, size = 0;
	size_t len = 0;
	struct stat st;
	int fd;

	CHECK_EQ_INT(cas_put_buf(c, data, CAS_ROW_MAX, row), 0);
	CHECK_EQ_INT(blobrows_size(db, row), CAS_ROW_MAX);
	CHECK(!file_there(c, row));

	CHECK_EQ_INT(cas_put_buf(c, data, CAS_ROW_MAX + 1, big), 0);
	CHECK_EQ_INT(blobrows_size(db, big), -ENOENT);
	CHECK(!file_there(c, big)); /* queued in tmp/ */
	CHECK(!dir_empty(cas_tmp_dir(c)));
	CHECK_EQ_INT(cas_size(c, big), CAS_ROW_MAX + 1);
	CHECK_EQ_INT(cas_read_all(c, big, &buf, &len), 0);
	CHECK(len == CAS_ROW_MAX + 1 && buf && memcmp(buf, data, len) == 0);
	free(buf);
	CHECK_EQ_INT(cas_put_buf(c, data, CAS_ROW_MAX + 1, big), 0); /* queued once */
	/* a stream (more than one read buffer) takes the same way */
	snprintf(p, sizeof(p), "%s/large", dir);
	CHECK_EQ_INT(write_file(p, large, 300 * 1024), 0);
	fd = open(p, O_RDONLY);
	CHECK_EQ_INT(cas_put_fd(c, fd, big2, &size), 0);
	close(fd);
	CHECK_EQ_INT(size, 300 * 1024);
	CHECK(!file_there(c, big2) && cas_has(c, big2));
	/* queued blobs are not in the store yet: prune's walk cannot collect them */
	CHECK_EQ_INT(cas_usage(c, &blobs, &bytes), 0);
	CHECK_EQ_INT(blobs, 1);

	/* the commit names them: durable first, then renamed */
	CHECK_EQ_INT(sfs_db_sync(db), 0);
	CHECK(file_there(c, big) && file_there(c, big2));
	CHECK(dir_empty(cas_tmp_dir(c)));
	cas_blob_path(c, big, p, sizeof(p));
	CHECK(stat(p, &st) == 0 && st.st_size == CAS_ROW_MAX + 1 && (st.st_mode & 0777) == 0444);
	CHECK_EQ_INT(cas_usage(c, &blobs, &bytes), 0);
	CHECK_EQ_INT(blobs, 3);
	CHECK_EQ_INT(bytes, CAS_ROW_MAX + CAS_ROW_MAX + 1 + 300 * 1024);
	CHECK_EQ_INT(cas_remove(c, big), 0);
	CHECK(!cas_has(c, big));
	close_store_db(c, db);
	free(data);
	free(large);
}

/* A statement outside any unit commits by itself without group commit, and with the
 * group under it: either way the big blobs put before it are named before the COMMIT
 * that includes it (SQLite's commit hook; the group's precommit), as for a unit's. */
static void test_autocommit_names_blobs(void)
{
	for (int group = 0; group < 2; group++) {
		char *dir = tap_tmpdir(), big[SFS_HEX_SIZE];
		struct sfs_db *db = NULL;
		struct cas *c = open_store_db(dir, &db, group ? 3600 * 1000 : 0);
		char *data = pattern(CAS_ROW_MAX * 3, 'z');

		CHECK_EQ_INT(cas_put_buf(c, data, CAS_ROW_MAX * 3, big), 0);
		CHECK(!file_there(c, big));
		sfs_db_lock(db);
		CHECK_EQ_INT(sqlite3_exec(sfs_db_handle(db),
					  "INSERT INTO meta(name, value) VALUES('x', 1)", NULL, NULL,
					  NULL),
			     SQLITE_OK);
		sfs_db_unlock(db);
		if (group) /* if the put's look-ups opened the group, the insert is in it */
			CHECK_EQ_INT(sfs_db_sync(db), 0);
		CHECK(file_there(c, big));
		close_store_db(c, db);
		free(data);
	}
}

/* Blob files of a store written before the blobs table (or without a database)
 * stay readable and are not written again as rows. */
static void test_old_files_readable(void)
{
	char *dir = tap_tmpdir(), hex[SFS_HEX_SIZE], again[SFS_HEX_SIZE], *buf = NULL;
	struct sfs_db *db = NULL;
	struct cas *c = NULL;
	size_t len = 0;
	int n = 0;

	CHECK_EQ_INT(cas_open(dir, &c), 0);
	CHECK_EQ_INT(cas_put_buf(c, "hello\n", 6, hex), 0);
	CHECK(file_there(c, hex));
	cas_close(c);
	c = open_store_db(dir, &db, 0);
	CHECK_EQ_INT(cas_read_all(c, hex, &buf, &len), 0);
	CHECK(len == 6 && buf && !memcmp(buf, "hello\n", 6));
	free(buf);
	CHECK_EQ_INT(cas_put_buf(c, "hello\n", 6, again), 0);
	CHECK_EQ_STR(again, HELLO_HEX);
	CHECK_EQ_INT(blobrows_size(db, hex), -ENOENT);
	CHECK_EQ_INT(cas_walk(c, count_hex, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(cas_remove(c, hex), 0);
	CHECK(!file_there(c, hex));
	close_store_db(c, db);
}

/* A "record" naming blobs, saved the way the cache saves: a unit of the group. */
static void save_record(struct sfs_db *db, const char *small, const char *big)
{
	char v[2 * SFS_HEX_SIZE];
	snprintf(v, sizeof(v), "%s %s", small, big);
	sfs_db_lock(db);
	CHECK_EQ_INT(sfs_db_begin(db), 0);
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_META_SET);
	sqlite3_bind_text(st, 1, "record", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, -1, SQLITE_TRANSIENT);
	CHECK_EQ_INT(sfs_db_end(db, sfs_db_step_done(db, STMT_META_SET, st)), 0);
	sfs_db_unlock(db);
}

static bool record_saved(struct sfs_db *db)
{
	sfs_db_lock(db);
	sqlite3_stmt *st = sfs_db_stmt(db, STMT_META_GET);
	sqlite3_bind_text(st, 1, "record", -1, SQLITE_STATIC);
	bool yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	sfs_db_unlock(db);
	return yes;
}

enum crash_at { CRASH_BEFORE_COMMIT, CRASH_AFTER_FLUSH, CRASH_AFTER_COMMIT };

/* A child stores a small and a big blob, saves a record naming them, and is
 * killed (SIGKILL) at the given moment. */
static void crash_child(const char *dir, enum crash_at at, char small[SFS_HEX_SIZE],
			char big[SFS_HEX_SIZE])
{
	char *s = pattern(100, 's'), *b = pattern(CAS_ROW_MAX * 2, 'b');
	struct sfs_db *db = NULL;
	int status = 0;

	/* the names, computed in the parent: the child's are the same */
	sfs_sha256_hex(s, 100, small);
	sfs_sha256_hex(b, CAS_ROW_MAX * 2, big);
	pid_t pid = fork();
	if (pid == 0) {
		struct cas *c = open_store_db(dir, &db, 60000);
		char h1[SFS_HEX_SIZE], h2[SFS_HEX_SIZE];
		if (cas_put_buf(c, s, 100, h1) < 0 || cas_put_buf(c, b, CAS_ROW_MAX * 2, h2) < 0)
			_exit(1);
		save_record(db, h1, h2);
		if (at == CRASH_AFTER_FLUSH && cas_flush(c) < 0)
			_exit(1);
		if (at == CRASH_AFTER_COMMIT && sfs_db_sync(db) < 0)
			_exit(1);
		raise(SIGKILL);
		_exit(1);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	free(s);
	free(b);
}

/* Killed between the writes and the commit, the store has neither the record nor
 * its blobs (the big one was garbage in tmp/, emptied at the next open); killed
 * after the flush, the big blob is an orphan file and there is no record; killed
 * after the commit, the record and both blobs are there. */
static void test_crash_before_commit(void)
{
	char small[SFS_HEX_SIZE], big[SFS_HEX_SIZE];
	struct sfs_db *db = NULL;
	struct cas *c;
	char *dir;

	dir = tap_tmpdir();
	crash_child(dir, CRASH_BEFORE_COMMIT, small, big);
	c = open_store_db(dir, &db, 0);
	CHECK(!record_saved(db));
	CHECK(!cas_has(c, small) && !cas_has(c, big));
	CHECK(dir_empty(cas_tmp_dir(c)));
	close_store_db(c, db);

	dir = tap_tmpdir();
	crash_child(dir, CRASH_AFTER_FLUSH, small, big);
	c = open_store_db(dir, &db, 0);
	CHECK(!record_saved(db));
	CHECK(!cas_has(c, small));
	CHECK(file_there(c, big) && cas_size(c, big) == CAS_ROW_MAX * 2);
	close_store_db(c, db);

	dir = tap_tmpdir();
	crash_child(dir, CRASH_AFTER_COMMIT, small, big);
	c = open_store_db(dir, &db, 0);
	CHECK(record_saved(db));
	CHECK_EQ_INT(cas_size(c, small), 100);
	CHECK(file_there(c, big) && cas_size(c, big) == CAS_ROW_MAX * 2);
	close_store_db(c, db);
}

int main(void)
{
	RUN(test_put_and_read);
	RUN(test_dedup);
	RUN(test_put_fd_large);
	RUN(test_put_path_rejects);
	RUN(test_copy_out);
	RUN(test_batch);
	RUN(test_crash_leftovers);
	RUN(test_mkdtemp_rmtree);
	RUN(test_rmtree_deep);
	RUN(test_row_blob);
	RUN(test_has_all);
	RUN(test_row_threshold);
	RUN(test_autocommit_names_blobs);
	RUN(test_old_files_readable);
	RUN(test_crash_before_commit);
	return tap_done();
}
