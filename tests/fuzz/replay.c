/*
 * replay.c — runs a fuzz target once on every input of its corpus, without
 * libFuzzer: the unit suite's regression check of tests/fuzz/ (see fuzz.h).
 *
 *   replay_spec DIR_OR_FILE...
 *
 * Files of a directory are run in name order (dot files and subdirectories
 * are skipped), each from its own malloc'd copy of exactly its size so the
 * sanitizers see reads past the end.  Prints "ok N - path" per input and
 * tap.h's "N passed, N failed" last; a crash or a sanitizer report ends the
 * process, which the test harness counts as a failure.  No input at all is a
 * failure too (a corpus path that moved).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "array.h"
#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int n_passed, n_failed;

static void replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		printf("not ok %d - %s: %s\n", n_passed + n_failed + 1, path, strerror(errno));
		n_failed++;
		return;
	}
	for (;;) {
		if (sfs_grow((void **)&buf, &cap, len < 4096 ? 4096 : len + 1, 1) < 0) {
			fprintf(stderr, "replay: out of memory\n");
			exit(1);
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	/* exactly len bytes, so ASan catches a read past the input */
	uint8_t *in = malloc(len ? len : 1);
	if (!in) {
		fprintf(stderr, "replay: out of memory\n");
		exit(1);
	}
	memcpy(in, buf, len);
	free(buf);
	fflush(stdout);
	LLVMFuzzerTestOneInput(in, len);
	free(in);
	n_passed++;
	printf("ok %d - %s\n", n_passed + n_failed, path);
}

static int skip_entry(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static void replay_path(const char *path)
{
	struct stat st;
	struct dirent **v = NULL;
	int n;

	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		replay_file(path);
		return;
	}
	n = scandir(path, &v, skip_entry, alphasort);
	if (n < 0) {
		printf("not ok %d - %s: %s\n", n_passed + n_failed + 1, path, strerror(errno));
		n_failed++;
		return;
	}
	for (int i = 0; i < n; i++) {
		char *p = NULL;
		if (asprintf(&p, "%s/%s", path, v[i]->d_name) >= 0 && stat(p, &st) == 0 &&
		    S_ISREG(st.st_mode))
			replay_file(p);
		free(p);
		free(v[i]);
	}
	free(v);
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		replay_path(argv[i]);
	if (n_passed + n_failed == 0) {
		printf("not ok 1 - no input found\n");
		n_failed++;
	}
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed != 0;
}
