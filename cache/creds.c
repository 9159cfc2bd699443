/*
 * creds.c — per-thread file-system credentials (see creds.h).
 *
 * glibc's setgroups() changes every thread of the process (it broadcasts the
 * change), so the groups are set with the raw syscall, which is per-thread.
 */
#include "creds.h"

#include <errno.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

int sfs_creds_enter(struct sfs_creds *c, uid_t uid, gid_t gid)
{
	*c = (struct sfs_creds){.uid = uid, .gid = gid};
	if (geteuid() != 0 || uid == 0)
		return 0;
	c->ngroups = getgroups(SFS_CREDS_MAX_GROUPS, c->groups);
	if (c->ngroups < 0)
		return -errno;
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		return -errno;
	c->saved_gid = (gid_t)setfsgid(gid);
	c->saved_uid = (uid_t)setfsuid(uid);
	c->active = true;
	/* setfsuid reports no error: read the values back */
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid) {
		sfs_creds_leave(c);
		return -EPERM;
	}
	return 0;
}

void sfs_creds_leave(struct sfs_creds *c)
{
	if (!c->active)
		return;
	setfsuid(c->saved_uid);
	setfsgid(c->saved_gid);
	syscall(SYS_setgroups, (size_t)c->ngroups, c->groups);
	c->active = false;
}

void sfs_creds_pause(struct sfs_creds *c)
{
	if (!c || !c->active)
		return;
	setfsuid(c->saved_uid);
	setfsgid(c->saved_gid);
}

void sfs_creds_resume(struct sfs_creds *c)
{
	if (!c || !c->active)
		return;
	setfsgid(c->gid);
	setfsuid(c->uid);
}
