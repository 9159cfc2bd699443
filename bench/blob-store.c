/*
 * blob-store.c — sfs-bench-blob-store: what storing one blob of S bytes costs, in the
 * ways the content store can store it (bench/blob-store.sh, bench/README.md).
 *
 *     sfs-bench-blob-store DIR [COUNT]
 *
 * For S = 1 KiB, 4 KiB, 16 KiB, 64 KiB, 128 KiB, 256 KiB and 1 MiB, COUNT blobs
 * (default 200; fewer for the big sizes) of fresh random bytes are stored in DIR:
 *
 *   file+fdatasync  write a temp file, fdatasync, rename (the store before issue 14)
 *   file            the same without fdatasync
 *   file+syncfs/64  without fdatasync, one syncfs and 64 renames per group of 64
 *   row/64          an INSERT of the bytes into a SQLite table (WAL, synchronous=NORMAL,
 *                   the daemon's settings), 64 rows a transaction (group commit)
 *
 * and read back once each (file: open+read+close; row: one SELECT).  Prints µs per
 * blob for every way, tab-separated.  Single-threaded; DIR must not be in use.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GROUP 64

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void fill(unsigned char *buf, size_t len, uint64_t *seed)
{
	for (size_t i = 0; i < len; i++) {
		*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = (unsigned char)(*seed >> 56);
	}
}

static int write_file(const char *dir, int i, const unsigned char *buf, size_t len, int sync,
		      char *tmp, char *name, size_t cap)
{
	snprintf(tmp, cap, "%s/tmp-%d", dir, i);
	snprintf(name, cap, "%s/blob-%d", dir, i);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, buf, len);
	int r = n == (ssize_t)len ? 0 : -EIO;
	if (r == 0 && sync && fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* mode 0: fdatasync each; 1: no sync; 2: syncfs per group, renames after it */
static double bench_files(const char *dir, size_t len, int count, int mode, uint64_t *seed)
{
	unsigned char *buf = malloc(len);
	char tmp[4096], name[4096];
	double t0 = now_us();
	int pending = 0;

	for (int i = 0; i < count; i++) {
		fill(buf, len, seed);
		if (write_file(dir, i, buf, len, mode == 0, tmp, name, sizeof(tmp)) < 0) {
			perror("write");
			exit(1);
		}
		if (mode != 2) {
			if (rename(tmp, name) < 0)
				exit(1);
			continue;
		}
		if (++pending == GROUP || i == count - 1) {
			int dfd = open(dir, O_RDONLY | O_DIRECTORY);
			if (dfd < 0 || syncfs(dfd) < 0)
				exit(1);
			close(dfd);
			for (int k = i - pending + 1; k <= i; k++) {
				snprintf(tmp, sizeof(tmp), "%s/tmp-%d", dir, k);
				snprintf(name, sizeof(name), "%s/blob-%d", dir, k);
				if (rename(tmp, name) < 0)
					exit(1);
			}
			pending = 0;
		}
	}
	double t = (now_us() - t0) / count;
	free(buf);
	return t;
}

static double read_files(const char *dir, size_t len, int count)
{
	unsigned char *buf = malloc(len);
	char name[4096];
	double t0 = now_us();

	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "%s/blob-%d", dir, i);
		int fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, buf, len) != (ssize_t)len)
			exit(1);
		close(fd);
	}
	double t = (now_us() - t0) / count;
	free(buf);
	return t;
}

static void clean_files(const char *dir, int count)
{
	char name[4096];
	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "%s/blob-%d", dir, i);
		unlink(name);
	}
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sqlite: %s: %s\n", sql, err);
		exit(1);
	}
}

static double bench_rows(sqlite3 *db, size_t len, int count, int base, uint64_t *seed)
{
	unsigned char *buf = malloc(len);
	sqlite3_stmt *st;
	char hex[32];
	double t0 = now_us();

	if (sqlite3_prepare_v2(db, "INSERT INTO blobs(hex, size, data) VALUES(?, ?, ?)", -1, &st,
			       NULL) != SQLITE_OK)
		exit(1);
	for (int i = 0; i < count; i++) {
		if (i % GROUP == 0)
			exec_sql(db, "BEGIN IMMEDIATE");
		fill(buf, len, seed);
		snprintf(hex, sizeof(hex), "%d", base + i);
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
		sqlite3_bind_blob(st, 3, buf, (int)len, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			exit(1);
		sqlite3_reset(st);
		if (i % GROUP == GROUP - 1 || i == count - 1)
			exec_sql(db, "COMMIT");
	}
	sqlite3_finalize(st);
	double t = (now_us() - t0) / count;
	free(buf);
	return t;
}

static double read_rows(sqlite3 *db, size_t len, int count, int base)
{
	sqlite3_stmt *st;
	char hex[32];
	double t0 = now_us();
	unsigned char *buf = malloc(len);

	if (sqlite3_prepare_v2(db, "SELECT data FROM blobs WHERE hex = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		exit(1);
	for (int i = 0; i < count; i++) {
		snprintf(hex, sizeof(hex), "%d", base + i);
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW || (size_t)sqlite3_column_bytes(st, 0) != len)
			exit(1);
		memcpy(buf, sqlite3_column_blob(st, 0), len);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	free(buf);
	return (now_us() - t0) / count;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {1024,	   4096,       16384,	   65536,
				       128 * 1024, 256 * 1024, 1024 * 1024};
	uint64_t seed = 42;
	char path[4096];
	sqlite3 *db;
	int base = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [COUNT]\n", argv[0]);
		return 2;
	}
	int count0 = argc > 2 ? atoi(argv[2]) : 200;
	snprintf(path, sizeof(path), "%s/bench.db", argv[1]);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 1;
	exec_sql(db,
		 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		 " PRAGMA cache_size = -16384;"
		 " CREATE TABLE IF NOT EXISTS blobs(hex TEXT PRIMARY KEY, size INTEGER NOT NULL,"
		 " data BLOB NOT NULL)");
	printf("size\tfile+fdatasync\tfile\tfile+syncfs/64\trow/64\tread-file\tread-row\n");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = sizes[k];
		int count = len > 256 * 1024 ? count0 / 4 : count0;
		double fsync_us = bench_files(argv[1], len, count, 0, &seed);
		clean_files(argv[1], count);
		double nosync_us = bench_files(argv[1], len, count, 1, &seed);
		clean_files(argv[1], count);
		double group_us = bench_files(argv[1], len, count, 2, &seed);
		double rf_us = read_files(argv[1], len, count);
		clean_files(argv[1], count);
		double row_us = bench_rows(db, len, count, base, &seed);
		double rr_us = read_rows(db, len, count, base);
		base += count;
		printf("%zu\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", len, fsync_us, nosync_us,
		       group_us, row_us, rf_us, rr_us);
		fflush(stdout);
	}
	exec_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
	return 0;
}
