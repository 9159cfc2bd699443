/*
 * mount.c — which solverfs mount a command talks to.
 *
 * In order: -m MOUNT, $SOLVERFS_MOUNT, else the single fuse.solverfs entry of
 * /proc/self/mounts (solverfs always mounts with subtype=solverfs, README
 * "Mount options").  Several entries are an error that lists them, since
 * guessing would submit a build to the wrong cache.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "solverctl.h"

/* /proc/self/mounts escapes blanks, tabs, newlines and backslashes as \ooo. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* An absolute path for P that names a solverfs mount, or NULL after a message. */
static char *check_mount(const char *p, const char *from)
{
	char *abs = realpath(p, NULL);
	struct stat st;

	if (!abs) {
		if (errno == ENOTCONN)
			ctl_err("%s (from %s): %s: its solverfs died; unmount it with "
				"fusermount3 -uz %s",
				p, from, strerror(errno), p);
		else
			ctl_err("%s (from %s): %s", p, from, strerror(errno));
		return NULL;
	}
	char *probe = ctl_xasprintf("%s/jobs/new", abs);
	int r = stat(probe, &st);
	free(probe);
	if (r < 0) {
		ctl_err("%s (from %s) is not a solverfs mount: no jobs/new in it", abs, from);
		free(abs);
		return NULL;
	}
	return abs;
}

char *ctl_mount_find(const char *option)
{
	const char *env = getenv("SOLVERFS_MOUNT");
	char line[4 * PATH_MAX];
	char **found = NULL;
	size_t nfound = 0;
	FILE *f;
	char *ret = NULL;

	if (option && *option)
		return check_mount(option, "-m");
	if (env && *env)
		return check_mount(env, "$SOLVERFS_MOUNT");
	f = fopen("/proc/self/mounts", "re");
	if (!f) {
		ctl_err("cannot read /proc/self/mounts (%s): name the mount with -m MOUNT",
			strerror(errno));
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL;
		char *src = strtok_r(line, " ", &save);
		char *dir = strtok_r(NULL, " ", &save);
		char *type = strtok_r(NULL, " ", &save);
		if (!src || !dir || !type || strcmp(type, "fuse.solverfs") != 0)
			continue;
		unescape(dir);
		char **n = realloc(found, (nfound + 1) * sizeof(*found));
		if (!n)
			break;
		found = n;
		found[nfound++] = ctl_xstrdup(dir);
	}
	fclose(f);
	if (nfound == 0) {
		ctl_err("no solverfs mount found in /proc/self/mounts; mount one "
			"(solverfs STATE_DIR MOUNTPOINT) or name it with -m MOUNT or "
			"$SOLVERFS_MOUNT");
	} else if (nfound > 1) {
		ctl_err("%zu solverfs mounts; choose one with -m MOUNT or $SOLVERFS_MOUNT:",
			nfound);
		for (size_t i = 0; i < nfound; i++)
			fprintf(stderr, "  %s\n", found[i]);
	} else {
		ret = check_mount(found[0], "/proc/self/mounts");
	}
	for (size_t i = 0; i < nfound; i++)
		free(found[i]);
	free(found);
	return ret;
}
