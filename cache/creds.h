/*
 * creds.h — act with another user's file-system credentials on this thread.
 *
 * A daemon running as root reads host files (a `local` source, a `cache_from`
 * layout, an exec's outputs) for the user who asked, so that nobody can read
 * through solverfs what they could not read themselves (docs/security.md).
 * Linux keeps the file-system uid and gid (setfsuid, setfsgid) and, through the
 * raw syscall, the supplementary groups per thread, so one worker can take a
 * job's identity while the others keep root's.
 *
 * sfs_creds_enter does nothing when the daemon is not root or the user is
 * root: the daemon's own credentials are then the right ones.  Between enter
 * and leave, sfs_creds_pause/resume give root's credentials back for a moment
 * (to write into STATE_DIR) without dropping the groups again.
 *
 * A struct sfs_creds belongs to the thread that entered it.
 */
#ifndef SFS_CREDS_H
#define SFS_CREDS_H

#include <stdbool.h>
#include <sys/types.h>

#define SFS_CREDS_MAX_GROUPS 256

struct sfs_creds {
	bool active; /* switched: leave must restore */
	uid_t uid, saved_uid;
	gid_t gid, saved_gid;
	int ngroups;
	gid_t groups[SFS_CREDS_MAX_GROUPS];
};

/* Takes uid/gid (no supplementary groups) on this thread; -errno on failure,
 * after which nothing is switched. */
int sfs_creds_enter(struct sfs_creds *c, uid_t uid, gid_t gid);
/* Restores what enter saved; accepts a struct that was never entered. */
void sfs_creds_leave(struct sfs_creds *c);
/* Back to the saved fsuid/fsgid, and again to the user's; both accept NULL
 * (no credentials taken) and a struct that was never entered. */
void sfs_creds_pause(struct sfs_creds *c);
void sfs_creds_resume(struct sfs_creds *c);

#endif
