/*
 * fuzz.c — the helpers of fuzz.h: input splitting and the per-process
 * scratch directory.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *scratch;
static pid_t scratch_pid;

size_t fz_split(const uint8_t *data, size_t size, struct fz_part *parts, size_t max)
{
	size_t seplen = strlen(FZ_SEP), n = 0;
	const uint8_t *p = data, *end = data + size;

	while (n + 1 < max) {
		const uint8_t *s = size ? memmem(p, (size_t)(end - p), FZ_SEP, seplen) : NULL;
		if (!s)
			break;
		parts[n++] = (struct fz_part){p, (size_t)(s - p)};
		p = s + seplen;
	}
	parts[n++] = (struct fz_part){p, (size_t)(end - p)};
	return n;
}

void fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level == 0)
		return 0;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void fz_rm_rf(const char *path, bool self)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (self)
		rmdir(path);
}

void fz_mkdirs(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(buf, 0755);
		*s = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		fz_fail(__FILE__, __LINE__, path);
}

void fz_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const char *p = buf;

	if (fd < 0)
		fz_fail(__FILE__, __LINE__, path);
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			fz_fail(__FILE__, __LINE__, path);
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

/* Only the process that made it removes it (a forked child exits too). */
static void scratch_remove(void)
{
	if (scratch && getpid() == scratch_pid)
		fz_rm_rf(scratch, true);
	free(scratch);
	scratch = NULL;
}

const char *fz_scratch(void)
{
	const char *tmp = getenv("TMPDIR");
	char buf[4096];

	if (scratch)
		return scratch;
	snprintf(buf, sizeof(buf), "%s/sfs-fuzz.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(buf) || !(scratch = realpath(buf, NULL)))
		fz_fail(__FILE__, __LINE__, "cannot make a scratch directory under $TMPDIR");
	scratch_pid = getpid();
	atexit(scratch_remove);
	return scratch;
}

const char *fz_path(int slot, const char *name)
{
	static char bufs[4][4096];

	snprintf(bufs[slot & 3], sizeof(bufs[0]), "%s/%s", fz_scratch(), name);
	return bufs[slot & 3];
}
