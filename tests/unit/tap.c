#include "tap.h"

#include <ftw.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int tap_failed_now;
static int n_run, n_passed, n_failed;
static char *dirs[256];
static int ndirs;

void tap_fail(const char *file, int line, const char *expr)
{
	fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, expr);
	tap_failed_now = 1;
}

void tap_run(const char *name, void (*fn)(void))
{
	tap_failed_now = 0;
	fn();
	n_run++;
	if (tap_failed_now) {
		n_failed++;
		printf("not ok %d - %s\n", n_run, name);
	} else {
		n_passed++;
		printf("ok %d - %s\n", n_run, name);
	}
	fflush(stdout);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	chmod(p, 0700);
	remove(p);
	return 0;
}

char *tap_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p = NULL;
	if (asprintf(&p, "%s/sfs-unit-XXXXXX", base) < 0 || !mkdtemp(p)) {
		perror("mkdtemp");
		exit(2);
	}
	if (ndirs < 256)
		dirs[ndirs++] = p;
	return p;
}

double tap_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tap_done(void)
{
	for (int i = 0; i < ndirs; i++) {
		nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(dirs[i]);
	}
	printf("1..%d\n%d passed, %d failed\n", n_run, n_passed, n_failed);
	return n_failed ? 1 : 0;
}
