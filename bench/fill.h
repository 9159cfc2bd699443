/*
 * fill.h — the part the fill programs share (sfs-bench-keys, sfs-bench-prunefill):
 * parse "STATE_DIR N", open the state the way the daemon does (sfs_cache_open) while
 * nothing has it mounted, call prepare once, then save(i) for i in [0, N), BATCH
 * saves to a transaction so that 100,000 take seconds, not minutes of fsyncs.
 *
 * Single-threaded; the database lock is taken around each batch because
 * sfs_db_begin/sfs_db_end want it held.
 */
#ifndef SFS_BENCH_FILL_H
#define SFS_BENCH_FILL_H

struct sfs_cache;

struct bench_fill {
	const char *what; /* "keys", "results": for the error message */
	/* Run once before the first batch (may be NULL); fills state. */
	int (*prepare)(struct sfs_cache *c, void *state);
	int (*save)(struct sfs_cache *c, long i, void *state);
	void *state;
};

/* The program's main: 0 when all were saved, 1 on an error, 2 on bad usage. */
int bench_fill_main(int argc, char **argv, const struct bench_fill *f);

#endif
