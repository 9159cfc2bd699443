/*
 * test_history.c — job history in the database: numbers never reused, rows
 * round-trip byte for byte, interrupted jobs after a restart.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "history.h"
#include "tap.h"

static struct sfs_db *open_db(const char *dir)
{
	struct sfs_db *db = NULL;
	char path[512];

	snprintf(path, sizeof(path), "%s/solverfs.db", dir);
	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	return db;
}

static struct history_job job(uint64_t id, const char *state, const char *spec)
{
	struct history_job j = {.id = id, .uid = 1000, .gid = 100, .created = 5};
	j.state = (char *)state;
	j.spec = (char *)spec;
	j.spec_len = spec ? strlen(spec) : 0;
	return j;
}

static void list_release(struct history_job *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		history_job_release(&v[i]);
	free(v);
}

/* Does stream `which` of job id read back, from off with room for max bytes, as
 * the len bytes at want?  Says what differs when not. */
static bool stream_is(struct sfs_db *db, uint64_t id, enum history_stream which, uint64_t off,
		      size_t max, const void *want, size_t len)
{
	char *buf = malloc(max ? max : 1);
	size_t got = 0;
	int r = buf ? history_read_stream(db, id, which, off, buf, max, &got) : -ENOMEM;
	bool same = r == 0 && got == len && memcmp(buf, want, len) == 0;

	if (!same)
		fprintf(stderr, "  job %llu stream %d from %llu: r %d, %zu bytes, want %zu%s\n",
			(unsigned long long)id, (int)which, (unsigned long long)off, r, got, len,
			r == 0 && got == len ? " (other bytes)" : "");
	free(buf);
	return same;
}

static void test_ids_never_reused(void)
{
	char *dir = tap_tmpdir();
	struct sfs_db *db = open_db(dir);
	uint64_t a = 0, b = 0, c = 0;

	CHECK_EQ_INT(history_next_id(db, &a), 0);
	CHECK_EQ_INT(a, 1);
	CHECK_EQ_INT(history_next_id(db, &b), 0);
	CHECK_EQ_INT(b, 2);
	struct history_job j = job(b, "done", "{}");
	CHECK_EQ_INT(history_save(db, &j), 0);
	CHECK_EQ_INT(history_delete(db, b), 0); /* the newest job goes */
	CHECK_EQ_INT(history_next_id(db, &c), 0);
	CHECK_EQ_INT(c, 3);
	db = sfs_db_close(db);

	db = open_db(dir); /* and across remounts */
	CHECK_EQ_INT(history_next_id(db, &c), 0);
	CHECK_EQ_INT(c, 4);
	/* A job saved under a number it was not given still blocks it. */
	j = job(10, "done", NULL);
	CHECK_EQ_INT(history_save(db, &j), 0);
	CHECK_EQ_INT(history_next_id(db, &c), 0);
	CHECK_EQ_INT(c, 11);
	j.id = 0;
	CHECK(history_save(db, &j) < 0);
	sfs_db_close(db);
}

static void test_round_trip(void)
{
	char *dir = tap_tmpdir();
	struct sfs_db *db = open_db(dir);
	static const char spec[] = "{\"vertices\":{}}\0binary";
	static const char status[] = "#1 step\n\0x";
	struct history_job j = job(7, "failed", NULL), *v = NULL;
	size_t n = 0;

	j.spec = (char *)spec;
	j.spec_len = sizeof(spec);
	j.error = "exec failed";
	j.result = "out sha256:abcd\n";
	j.ended = 99;
	j.status = (char *)status;
	j.status_len = sizeof(status);
	j.status_json = "{}\n";
	j.status_json_len = 3;
	CHECK_EQ_INT(history_save(db, &j), 0);
	struct history_job j3 = job(3, "pending", NULL);
	CHECK_EQ_INT(history_save(db, &j3), 0);
	db = sfs_db_close(db);

	db = open_db(dir);
	CHECK_EQ_INT(history_list(db, &v, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_INT(v[0].id, 3); /* ascending */
		CHECK(v[0].spec == NULL && v[0].error == NULL && v[0].status == NULL);
		CHECK(!v[0].has_spec && v[0].spec_len == 0);
		CHECK_EQ_STR(v[0].state, "pending");
		CHECK_EQ_INT(v[1].id, 7);
		CHECK_EQ_INT(v[1].uid, 1000);
		CHECK_EQ_INT(v[1].gid, 100);
		CHECK_EQ_STR(v[1].state, "failed");
		/* the spec stays in the row too: its length here, its bytes read */
		CHECK(v[1].spec == NULL && v[1].has_spec);
		CHECK_EQ_INT(v[1].spec_len, sizeof(spec));
		CHECK_EQ_STR(v[1].error, "exec failed");
		CHECK_EQ_STR(v[1].result, "out sha256:abcd\n");
		CHECK_EQ_INT(v[1].created, 5);
		CHECK_EQ_INT(v[1].ended, 99);
		/* the texts stay in the row: their lengths here, their bytes read */
		CHECK(v[1].status == NULL && v[1].status_json == NULL);
		CHECK_EQ_INT(v[1].status_len, sizeof(status));
		CHECK_EQ_INT(v[1].status_json_len, 3);
	}
	list_release(v, n);
	char buf[64];
	size_t got = 0;
	CHECK(stream_is(db, 7, HISTORY_STATUS, 0, 64, status, sizeof(status)));
	CHECK(stream_is(db, 7, HISTORY_STATUS, 3, 4, status + 3, 4));
	CHECK(stream_is(db, 7, HISTORY_STATUS_JSON, 0, 64, "{}\n", 3));
	CHECK(stream_is(db, 7, HISTORY_SPEC, 0, 64, spec, sizeof(spec)));
	CHECK(stream_is(db, 7, HISTORY_SPEC, 16, 6, spec + 16, 6));
	CHECK(stream_is(db, 3, HISTORY_SPEC, 0, 4, "", 0));	/* none */
	CHECK(stream_is(db, 7, HISTORY_STATUS, 100, 4, "", 0)); /* past the end */
	CHECK(stream_is(db, 3, HISTORY_STATUS, 0, 4, "", 0));	/* no text saved */
	CHECK_EQ_INT(history_read_stream(db, 99, HISTORY_STATUS, 0, buf, 4, &got), -ENOENT);

	/* A TEXT vertices column (rows of older versions) with non-ASCII text:
	 * its length is in bytes, and it reads back whole. */
	static const char utf8[] = "[{\"name\":\"caf\xc3\xa9 \xe2\x86\x92 build\"}]";
	struct history_job jt = job(8, "done", NULL);
	jt.vertices = (char *)utf8;
	CHECK_EQ_INT(history_save(db, &jt), 0);
	CHECK_EQ_INT(history_list(db, &v, &n), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3)
		CHECK_EQ_INT(v[2].vertices_len, strlen(utf8));
	list_release(v, n);
	CHECK(stream_is(db, 8, HISTORY_VERTICES, 0, 64, utf8, strlen(utf8)));
	CHECK_EQ_INT(history_delete(db, 8), 0);

	/* Saving again replaces the row. */
	j.state = "done";
	j.error = NULL;
	CHECK_EQ_INT(history_save(db, &j), 0);
	CHECK_EQ_INT(history_list(db, &v, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_STR(v[1].state, "done");
		CHECK(v[1].error == NULL);
	}
	list_release(v, n);
	sfs_db_close(db);
}

static void test_mark_interrupted(void)
{
	char *dir = tap_tmpdir();
	struct sfs_db *db = open_db(dir);
	struct history_job jobs[] = {
	    job(1, "done", "{}"),    job(2, "running", "{}"), job(3, "pending", "{}"),
	    job(4, "pending", NULL), job(5, "failed", "{}"),  job(6, "cancelled", "{}"),
	};
	struct history_job *v = NULL;
	size_t n = 0;

	jobs[0].ended = 50;
	for (size_t i = 0; i < 6; i++)
		CHECK_EQ_INT(history_save(db, &jobs[i]), 0);
	CHECK_EQ_INT(history_mark_interrupted(db, 1234), 0);
	CHECK_EQ_INT(history_list(db, &v, &n), 0);
	CHECK_EQ_INT(n, 5); /* the pending job without a spec is gone */
	if (n == 5) {
		CHECK_EQ_INT(v[0].id, 1);
		CHECK_EQ_STR(v[0].state, "done");
		CHECK_EQ_INT(v[0].ended, 50);
		CHECK(v[0].error == NULL);
		for (int i = 1; i <= 2; i++) {
			CHECK_EQ_INT(v[i].id, i + 1);
			CHECK_EQ_STR(v[i].state, "cancelled");
			CHECK_EQ_STR(v[i].error, "solverfs was restarted");
			CHECK_EQ_INT(v[i].ended, 1234);
		}
		CHECK_EQ_INT(v[3].id, 5);
		CHECK_EQ_STR(v[3].state, "failed");
		CHECK_EQ_INT(v[4].id, 6);
		CHECK(v[4].error == NULL);
	}
	list_release(v, n);
	/* Job 4's number is not handed out again. */
	uint64_t id = 0;
	CHECK_EQ_INT(history_next_id(db, &id), 0);
	CHECK_EQ_INT(id, 7);
	sfs_db_close(db);
}

static int buf_source(void *arg, uint64_t off, void *buf, size_t n, size_t *ret_n)
{
	memcpy(buf, (const char *)arg + off, n);
	*ret_n = n;
	return 0;
}

/* Texts saved from sources in pieces (the solver's large jobs) read back whole. */
static void test_texts_from_sources(void)
{
	char *dir = tap_tmpdir();
	struct sfs_db *db = open_db(dir);
	size_t big = 200 * 1000 + 7; /* several 64 KiB pieces */
	char *status = malloc(big);
	for (size_t i = 0; status && i < big; i++)
		status[i] = (char)('a' + i % 26);
	static char vertices[] = "[{\"digest\":\"sha256:00\"}]";
	struct history_text texts[3] = {
	    {big, buf_source, status},
	    {0, buf_source, NULL},
	    {strlen(vertices), buf_source, vertices},
	};
	struct history_job j = job(4, "done", "{}");
	j.texts = texts;
	CHECK_EQ_INT(history_save(db, &j), 0);
	db = sfs_db_close(db);

	db = open_db(dir);
	struct history_job *v = NULL;
	size_t n = 0;
	CHECK_EQ_INT(history_list(db, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(v[0].status_len, big);
		CHECK_EQ_INT(v[0].status_json_len, 0);
		CHECK(v[0].vertices == NULL); /* its length only */
		CHECK_EQ_INT(v[0].vertices_len, strlen(vertices));
	}
	list_release(v, n);
	CHECK(stream_is(db, 4, HISTORY_VERTICES, 0, 64, vertices, strlen(vertices)));
	CHECK(status && stream_is(db, 4, HISTORY_STATUS, 0, big, status, big));
	free(status);
	sfs_db_close(db);
}

int main(void)
{
	RUN(test_ids_never_reused);
	RUN(test_round_trip);
	RUN(test_mark_interrupted);
	RUN(test_texts_from_sources);
	return tap_done();
}
