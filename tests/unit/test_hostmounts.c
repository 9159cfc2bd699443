/*
 * test_hostmounts.c — the solverfs mounts an exec detaches: read from a
 * mountinfo text, by type or by the daemon's own mount point, escapes decoded,
 * the last mounted first (solver/ops/hostmounts.h).
 */
#include <stdio.h>
#include <string.h>

#include "ops/hostmounts.h"
#include "strv.h"
#include "tap.h"

/* Optional fields (shared:N, master:N) come between the options and "-". */
static const char mountinfo[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "40 22 0:39 / /var/tmp/a/mnt rw,nosuid,nodev,relatime shared:20 - fuse.solverfs solverfs "
    "rw,user_id=0,group_id=0\n"
    "41 22 0:40 / /home/u/my\\040builds rw,nosuid,nodev - fuse.solverfs solverfs rw\n"
    "42 22 0:41 / /mnt/sshfs rw,nosuid,nodev master:3 - fuse.sshfs host:/ rw\n"
    "43 40 0:42 / /var/tmp/a/mnt/inner rw - fuse.solverfs solverfs rw\n"
    "44 22 0:43 / /srv/own rw - fuse solverfs rw\n"
    "45 22 0:44 / /srv/fuse.solverfs rw - tmpfs tmpfs rw\n";

static char **parse(const char *text, const char *also)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	char **v = NULL;

	CHECK(f != NULL);
	if (!f)
		return NULL;
	CHECK_EQ_INT(sfs_hostmounts_parse(f, also, &v), 0);
	fclose(f);
	return v;
}

static size_t count(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static void test_by_type(void)
{
	char **v = parse(mountinfo, NULL);

	CHECK_EQ_INT(count(v), 3);
	if (count(v) == 3) {
		CHECK_EQ_STR(v[0], "/var/tmp/a/mnt/inner"); /* nested: detached before its parent */
		CHECK_EQ_STR(v[1], "/home/u/my builds");    /* \040 is a space */
		CHECK_EQ_STR(v[2], "/var/tmp/a/mnt");
	}
	strv_free_argv(v);
}

static void test_own_mount_point(void)
{
	/* the daemon's own mount point counts whatever type the kernel shows for it */
	char **v = parse(mountinfo, "/srv/own");

	CHECK_EQ_INT(count(v), 4);
	if (count(v) == 4)
		CHECK_EQ_STR(v[0], "/srv/own");
	strv_free_argv(v);
}

static void test_nothing_to_detach(void)
{
	char **v = parse("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
			 "23 22 0:5 / /broken\n" /* a short line names no type */
			 "",
			 "/not/mounted");

	CHECK(v != NULL);
	CHECK_EQ_INT(count(v), 0);
	strv_free_argv(v);
}

static void test_this_process(void)
{
	char **v = NULL;

	CHECK_EQ_INT(sfs_hostmounts_read(NULL, &v), 0);
	CHECK(v != NULL);
	strv_free_argv(v);
}

int main(void)
{
	RUN(test_by_type);
	RUN(test_own_mount_point);
	RUN(test_nothing_to_detach);
	RUN(test_this_process);
	return tap_done();
}
