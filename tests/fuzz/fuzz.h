/*
 * fuzz.h — what the libFuzzer targets of tests/fuzz/ share.
 *
 * Each target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Built with -Dfuzz=true it is linked with libFuzzer;
 * otherwise with replay.c, which runs it once on every file of the corpus
 * directories given on its command line (the unit suite's regression check).
 *
 * A target that needs files gets one scratch directory per process
 * (fz_scratch), made under $TMPDIR on first use and removed at exit, and the
 * helpers below to fill and empty it.  A broken invariant is reported by
 * fz_fail, which aborts: libFuzzer (or the replay) then keeps the input.
 */
#ifndef SFS_FUZZ_H
#define SFS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The separator of the parts of a multi-part input (fz_split). */
#define FZ_SEP "\n--8<--\n"

struct fz_part {
	const uint8_t *p;
	size_t n;
};

/* Splits data at each FZ_SEP into at most max parts (the last part keeps any
 * further separators); returns the number of parts, at least 1. */
size_t fz_split(const uint8_t *data, size_t size, struct fz_part *parts, size_t max);

/* The process's scratch directory (absolute), created on the first call;
 * it and everything under it is removed at exit. */
const char *fz_scratch(void);
/* A path under the scratch directory: "<scratch>/<name>"; static storage
 * per slot (0..3), so up to four may be held at once. */
const char *fz_path(int slot, const char *name);
/* Removes path and everything under it (not path itself unless self). */
void fz_rm_rf(const char *path, bool self);
/* mkdir -p. */
void fz_mkdirs(const char *path);
/* Writes a file (created or truncated); aborts on failure. */
void fz_write_file(const char *path, const void *buf, size_t len);

/*
 * The cache of the targets that import into one (fuzz_cache.c, linked only
 * into them).  fz_cache: a cache over the scratch dir's "state", opened on the
 * first call (on the first input, not in LLVMFuzzerInitialize: libFuzzer's
 * -jobs parent runs that too and never fuzzes), emptied and reopened every
 * reset_every calls, closed at exit; aborts if it cannot open.
 * fz_memory_manager: a cache manager over an in-memory key storage (its
 * keystore also in *ret_ks unless NULL) and c's content store; free it with
 * cache_manager_free.
 */
struct sfs_cache;
struct keystore;
struct cache_manager;
struct sfs_cache *fz_cache(unsigned reset_every);
struct cache_manager *fz_memory_manager(struct sfs_cache *c, struct keystore **ret_ks);

/* Reports a broken invariant and aborts. */
void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));
#define FZ_CHECK(e)                                                                                \
	do {                                                                                       \
		if (!(e))                                                                          \
			fz_fail(__FILE__, __LINE__, #e);                                           \
	} while (0)

#endif
