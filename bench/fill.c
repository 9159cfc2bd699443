/*
 * fill.c — bench_fill_main, the main of the fill programs (fill.h).
 */
#include "fill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "db.h"

#define BATCH 5000

static int fill(struct sfs_cache *c, long n, const struct bench_fill *f)
{
	int r = f->prepare ? f->prepare(c, f->state) : 0;

	for (long i = 0; r == 0 && i < n; i += BATCH) {
		sfs_db_lock(c->db);
		r = sfs_db_begin(c->db);
		for (long j = i; r == 0 && j < n && j < i + BATCH; j++)
			r = f->save(c, j, f->state);
		r = sfs_db_end(c->db, r);
		sfs_db_unlock(c->db);
	}
	return r;
}

int bench_fill_main(int argc, char **argv, const struct bench_fill *f)
{
	struct sfs_cache *c = NULL;
	char *msg = NULL, *end;
	long n;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s STATE_DIR N\n", argv[0]);
		return 2;
	}
	n = strtol(argv[2], &end, 10);
	if (*end || n < 0) {
		fprintf(stderr, "%s: bad count '%s'\n", argv[0], argv[2]);
		return 2;
	}
	r = sfs_cache_open(argv[1], &c, &msg);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], msg ? msg : strerror(-r));
		free(msg);
		return 1;
	}
	r = fill(c, n, f);
	if (r < 0)
		fprintf(stderr, "%s: saving %s: %s\n", argv[0], f->what, strerror(-r));
	sfs_cache_close(c);
	return r < 0 ? 1 : 0;
}
