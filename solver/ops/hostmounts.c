/*
 * hostmounts.c — the solverfs mounts an exec must not hold (hostmounts.h).
 *
 * A line of /proc/self/mountinfo (proc(5)) is
 *
 *   ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
 *
 * with space, tab, newline and backslash in paths written as \ooo octal.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "hostmounts.h"
#include "strv.h"

#define SOLVERFS_TYPE "fuse.solverfs"

/* Decodes mountinfo's \ooo escapes of s in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The line's mount point (decoded, in place) if its mount is one to detach, else NULL. */
static char *line_mount_point(char *line, const char *also)
{
	char *save = NULL, *point = NULL, *tok = strtok_r(line, " \n", &save);
	bool type_next = false;

	for (int field = 0; tok; tok = strtok_r(NULL, " \n", &save), field++) {
		if (field == 4)
			point = tok;
		else if (field > 5 && strcmp(tok, "-") == 0)
			type_next = true;
		else if (type_next)
			break;
	}
	if (!point || !tok)
		return NULL;
	unescape(point);
	if (strcmp(tok, SOLVERFS_TYPE) == 0 || (also && strcmp(point, also) == 0))
		return point;
	return NULL;
}

static int push(char ***v, size_t *n, size_t *cap, const char *s)
{
	char *copy = strdup(s);

	if (!copy || sfs_grow((void **)v, cap, *n + 2, sizeof(**v)) < 0) {
		free(copy);
		return -ENOMEM;
	}
	(*v)[(*n)++] = copy;
	(*v)[*n] = NULL;
	return 0;
}

int sfs_hostmounts_parse(FILE *f, const char *also, char ***ret)
{
	char **v = calloc(1, sizeof(*v)), *line = NULL, *point;
	size_t n = 0, cap = 1, linecap = 0;
	int r = v ? 0 : -ENOMEM;

	while (r == 0 && getline(&line, &linecap, f) >= 0)
		if ((point = line_mount_point(line, also)))
			r = push(&v, &n, &cap, point);
	free(line);
	if (r == 0 && ferror(f))
		r = -EIO;
	if (r < 0) {
		strv_free_argv(v);
		return r;
	}
	for (size_t i = 0; i < n / 2; i++) { /* the last mounted first */
		char *t = v[i];
		v[i] = v[n - 1 - i];
		v[n - 1 - i] = t;
	}
	*ret = v;
	return 0;
}

int sfs_hostmounts_read(const char *also, char ***ret)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int r;

	if (!f)
		return -errno;
	r = sfs_hostmounts_parse(f, also, ret);
	fclose(f);
	return r;
}
