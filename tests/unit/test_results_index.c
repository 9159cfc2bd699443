/*
 * test_results_index.c — cache/results_index.c over a real database: results
 * rows, records of a result, keys holding them (deduplicated), counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "keystore.h"
#include "results_index.h"
#include "tap.h"

static const char *hex_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void exec_sql(struct sfs_db *db, const char *sql)
{
	sfs_db_lock(db);
	CHECK_EQ_INT(sqlite3_exec(sfs_db_handle(db), sql, NULL, NULL, NULL), SQLITE_OK);
	sfs_db_unlock(db);
}

static int collect(const char *id, void *arg)
{
	char *buf = arg;
	strcat(buf, id);
	strcat(buf, ";");
	return 0;
}

static struct sfs_db *open_db(char **ret_dir)
{
	char path[4096];
	struct sfs_db *db = NULL;

	*ret_dir = tap_tmpdir();
	snprintf(path, sizeof(path), "%s/solverfs.db", *ret_dir);
	CHECK_EQ_INT(sfs_db_open(path, &db, NULL), 0);
	return db;
}

static void test_get_and_walk(void)
{
	char *dir, buf[1024] = "";
	struct sfs_db *db = open_db(&dir);
	struct results_index_entry e;

	exec_sql(db,
		 "INSERT INTO results(id, size, created, last_used) "
		 "VALUES('sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',"
		 " 12, 1700000000000000000, 1700000000500000000);"
		 "INSERT INTO results(id, size, created, last_used) "
		 "VALUES('sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',"
		 " 3, 1700000000, 1700000001);");
	CHECK_EQ_INT(results_index_get(db, hex_a, &e), 0);
	CHECK_EQ_INT(e.size, 12);
	CHECK_EQ_INT(e.created, 1700000000000000000LL);
	CHECK_EQ_INT(e.last_used, 1700000000500000000LL);
	CHECK_EQ_STR(e.id,
		     "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	/* old rows in seconds read as ns */
	CHECK_EQ_INT(
	    results_index_get(
		db, "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", &e),
	    0);
	CHECK_EQ_INT(e.created, 1700000000000000000LL);
	CHECK_EQ_INT(results_index_get(db, "cccc", &e), -ENOENT);
	CHECK_EQ_INT(results_index_walk(db, collect, buf), 0);
	CHECK(strstr(buf, "sha256:aaaa") < strstr(buf, "sha256:bbbb"));
	sfs_db_close(db);
}

static void test_records_keys_counts(void)
{
	char *dir, buf[1024] = "";
	struct sfs_db *db = open_db(&dir);
	struct keystore *ks = NULL;
	struct results_index_counts c;
	char rid[SFS_DIGEST_SIZE];

	snprintf(rid, sizeof(rid), "sha256:%s", hex_a);
	CHECK_EQ_INT(keystore_sqlite_new(db, &ks), 0);
	struct cache_result r1 = {.id = "rec1", .created_at = 1},
			    r2 = {.id = "rec2", .created_at = 2};
	snprintf(r1.result, sizeof(r1.result), "%s", rid);
	snprintf(r2.result, sizeof(r2.result), "%s", rid);
	CHECK_EQ_INT(ks->ops->add_result(ks, "k1", &r1), 0);
	CHECK_EQ_INT(ks->ops->add_result(ks, "k2", &r1), 0);
	CHECK_EQ_INT(ks->ops->add_result(ks, "k1", &r2), 0);
	exec_sql(db,
		 "INSERT INTO results(id, size, created, last_used) "
		 "VALUES('sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',"
		 " 7, 1, 1);");
	CHECK_EQ_INT(results_index_walk_records(db, hex_a, collect, buf), 0);
	CHECK_EQ_STR(buf, "rec1;rec2;");
	buf[0] = '\0';
	CHECK_EQ_INT(results_index_walk_keys(db, ks, hex_a, collect, buf), 0);
	CHECK_EQ_STR(buf, "k1;k2;");
	CHECK_EQ_INT(results_index_counts(db, &c), 0);
	CHECK_EQ_INT(c.results, 1);
	CHECK_EQ_INT(c.result_bytes, 7);
	CHECK_EQ_INT(c.records, 2);
	CHECK_EQ_INT(c.keys, 2);
	CHECK_EQ_INT(c.links, 0);
	keystore_free(ks);
	sfs_db_close(db);
}

int main(void)
{
	RUN(test_get_and_walk);
	RUN(test_records_keys_counts);
	return tap_done();
}
